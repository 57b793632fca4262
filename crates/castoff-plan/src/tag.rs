//! Release tag patterns (`tag = "v{version}"`): the git tag a package's version is released
//! under. Parsed and checked against git's rules for tag names, expanded per package, and
//! turned into the glob a GitHub Actions `on.push.tags` filter takes.

use std::fmt;
use std::str::FromStr;

/// The pattern when neither the workspace nor the package sets `tag`.
pub const DEFAULT_TAG_PATTERN: &str = "v{version}";

/// What every refusal of a pattern says to do about the placeholders.
const PLACEHOLDERS_HINT: &str = "the placeholders are {name} (the Cargo package name) and {version} (the Cargo version), e.g. \"v{version}\", \"{version}\" or \"{name}-v{version}\"";

/// A checked tag pattern: literal text, `{name}` and `{version}`. Round-trips through
/// `FromStr` / `Display`; serialized (in `dist/manifest.json`) as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagPattern {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Literal(String),
    Name,
    Version,
}

/// A pattern castoff cannot use, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag pattern `{pattern}` {problem}")]
pub struct TagPatternError {
    pub pattern: String,
    pub problem: String,
    pub hint: String,
}

impl TagPattern {
    /// The tag of one package's version: `v1.2.0`, `cli-v1.2.0`.
    pub fn expand(&self, name: &str, version: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.as_str(),
                Part::Name => name,
                Part::Version => version,
            })
            .collect()
    }

    /// The version `tag` names for package `name` under this pattern, if it is one of its
    /// tags with another text in place of `{version}` (`v1.2.4` → `1.2.4` for `v{version}`):
    /// for telling a user the tag names another version than the one being released.
    pub fn version_in<'t>(&self, name: &str, tag: &'t str) -> Option<&'t str> {
        const MARK: &str = "\u{0}";
        let expanded = self.expand(name, MARK);
        let (prefix, suffix) = expanded.split_once(MARK)?;
        if suffix.contains(MARK) {
            return None;
        }
        tag.strip_prefix(prefix)?
            .strip_suffix(suffix)
            .filter(|version| semver::Version::parse(version).is_ok())
    }

    /// Whether each package gets a tag of its own (the pattern holds `{name}`), so that a tag
    /// selects the packages it names instead of the whole release.
    pub fn names_the_package(&self) -> bool {
        self.parts.contains(&Part::Name)
    }

    /// The GitHub Actions tag filter matching every tag of package `name`:
    /// `v[0-9]+.[0-9]+.[0-9]+*` for `v{version}`, `cli-v[0-9]+.[0-9]+.[0-9]+*` for
    /// `{name}-v{version}`. Characters the filter syntax reserves are escaped with `\`.
    pub fn github_tag_filter(&self, name: &str) -> String {
        let escape = |text: &str| {
            text.chars()
                .map(|c| {
                    if "*?+[]!\\".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        };
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => escape(text),
                Part::Name => escape(name),
                Part::Version => "[0-9]+.[0-9]+.[0-9]+*".to_owned(),
            })
            .collect()
    }
}

impl Default for TagPattern {
    fn default() -> TagPattern {
        DEFAULT_TAG_PATTERN
            .parse()
            .expect("the default tag pattern is valid")
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for TagPattern {
    type Err = TagPatternError;

    fn from_str(text: &str) -> Result<TagPattern, TagPatternError> {
        let refuse = |problem: String, hint: &str| TagPatternError {
            pattern: text.to_owned(),
            problem,
            hint: hint.to_owned(),
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err(refuse(
                            "has a `{` without its closing `}`".to_owned(),
                            PLACEHOLDERS_HINT,
                        ));
                    };
                    let part = match &rest[..=end] {
                        "{name}" => Part::Name,
                        "{version}" => Part::Version,
                        other => {
                            return Err(refuse(
                                format!("has an unknown placeholder `{other}`"),
                                PLACEHOLDERS_HINT,
                            ));
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = &rest[end + 1..];
                }
                '}' => {
                    return Err(refuse(
                        "has a `}` without its opening `{`".to_owned(),
                        PLACEHOLDERS_HINT,
                    ));
                }
                c => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.contains(&Part::Version) {
            return Err(refuse(
                "has no `{version}`".to_owned(),
                "a tag names one version of a package: put {version} in it, e.g. \"v{version}\" or \"{name}-v{version}\"",
            ));
        }
        let pattern = TagPattern {
            text: text.to_owned(),
            parts,
        };
        // The literal text decides what git thinks of a tag: names and versions hold only
        // letters, digits, `-`, `_`, `.` (never at either end) and `+`.
        let sample = pattern.expand("name", "1.0.0");
        if let Some(reason) = git_refuses(&sample) {
            return Err(refuse(
                format!("gives tags git refuses (`{sample}`): {reason}"),
                "a git tag cannot contain spaces, control characters, `~ ^ : ? * [ \\`, `..` or `@{`, begin with `-` or `/`, end with `/` or `.`, or have a `/`-separated part that begins with `.` or ends in `.lock`",
            ));
        }
        Ok(pattern)
    }
}

/// Why git would refuse `tag` as a tag name (`git check-ref-format refs/tags/<tag>`), if it
/// would. A leading `-` is refused too: git and most tools would read the tag as an option.
fn git_refuses(tag: &str) -> Option<&'static str> {
    if tag.starts_with('-') {
        return Some("it begins with `-`");
    }
    if tag == "@" {
        return Some("it is `@`");
    }
    if let Some(c) = tag
        .chars()
        .find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c))
    {
        return Some(match c {
            ' ' => "it contains a space",
            c if c.is_ascii_control() => "it contains a control character",
            '~' => "it contains `~`",
            '^' => "it contains `^`",
            ':' => "it contains `:`",
            '?' => "it contains `?`",
            '*' => "it contains `*`",
            '[' => "it contains `[`",
            _ => "it contains `\\`",
        });
    }
    if tag.contains("..") {
        return Some("it contains `..`");
    }
    if tag.contains("@{") {
        return Some("it contains `@{`");
    }
    if tag.starts_with('/') || tag.ends_with('/') || tag.contains("//") {
        return Some("it begins or ends with `/`, or has an empty part between two `/`");
    }
    if tag.ends_with('.') {
        return Some("it ends with `.`");
    }
    for component in tag.split('/') {
        if component.starts_with('.') {
            return Some("a `/`-separated part begins with `.`");
        }
        if component.ends_with(".lock") {
            return Some("a `/`-separated part ends in `.lock`");
        }
    }
    None
}

impl serde::Serialize for TagPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for TagPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TagPattern, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_expand_and_filter() {
        let check = |pattern: &str, tag: &str, filter: &str, per_package: bool| {
            let parsed: TagPattern = pattern.parse().unwrap();
            assert_eq!(parsed.to_string(), pattern);
            assert_eq!(parsed.expand("cli", "1.2.0-rc.1"), tag, "{pattern}");
            assert_eq!(parsed.github_tag_filter("cli"), filter, "{pattern}");
            assert_eq!(parsed.names_the_package(), per_package, "{pattern}");
        };
        check("v{version}", "v1.2.0-rc.1", "v[0-9]+.[0-9]+.[0-9]+*", false);
        check("{version}", "1.2.0-rc.1", "[0-9]+.[0-9]+.[0-9]+*", false);
        check(
            "{name}-v{version}",
            "cli-v1.2.0-rc.1",
            "cli-v[0-9]+.[0-9]+.[0-9]+*",
            true,
        );
        check(
            "release/{name}/{version}",
            "release/cli/1.2.0-rc.1",
            "release/cli/[0-9]+.[0-9]+.[0-9]+*",
            true,
        );
        check(
            "c++!{version}",
            "c++!1.2.0-rc.1",
            "c\\+\\+\\![0-9]+.[0-9]+.[0-9]+*",
            false,
        );
        assert_eq!(TagPattern::default().to_string(), DEFAULT_TAG_PATTERN);
    }

    #[test]
    fn the_version_a_tag_names() {
        let check = |pattern: &str, tag: &str, version: Option<&str>| {
            let parsed: TagPattern = pattern.parse().unwrap();
            assert_eq!(parsed.version_in("cli", tag), version, "{pattern} {tag}");
        };
        check("v{version}", "v1.2.4", Some("1.2.4"));
        check("v{version}", "v1.2.4-rc.1", Some("1.2.4-rc.1"));
        check("v{version}", "1.2.4", None);
        check("v{version}", "vnext", None);
        check("{name}-v{version}", "cli-v2.0.0", Some("2.0.0"));
        check("{name}-v{version}", "core-v2.0.0", None);
        check("{version}-{version}", "1.0.0-1.0.0", None);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let check = |pattern: &str, problem: &str| {
            let error = pattern.parse::<TagPattern>().unwrap_err();
            assert_eq!(error.problem, problem, "{pattern}");
            assert!(!error.hint.is_empty());
        };
        check("{nme}-v{version}", "has an unknown placeholder `{nme}`");
        check("v{{version}}", "has an unknown placeholder `{{version}`");
        check("v{version", "has a `{` without its closing `}`");
        check("v}{version}", "has a `}` without its opening `{`");
        check("release", "has no `{version}`");
        check("", "has no `{version}`");
        check("{name}", "has no `{version}`");
        check(
            "v {version}",
            "gives tags git refuses (`v 1.0.0`): it contains a space",
        );
        check(
            "v:{version}",
            "gives tags git refuses (`v:1.0.0`): it contains `:`",
        );
        check(
            "v{version}.lock",
            "gives tags git refuses (`v1.0.0.lock`): a `/`-separated part ends in `.lock`",
        );
        check(
            "{version}.",
            "gives tags git refuses (`1.0.0.`): it ends with `.`",
        );
        check(
            "v..{version}",
            "gives tags git refuses (`v..1.0.0`): it contains `..`",
        );
        check(
            ".{version}",
            "gives tags git refuses (`.1.0.0`): a `/`-separated part begins with `.`",
        );
        check(
            "-{version}",
            "gives tags git refuses (`-1.0.0`): it begins with `-`",
        );
        check(
            "a//{version}",
            "gives tags git refuses (`a//1.0.0`): it begins or ends with `/`, or has an empty part between two `/`",
        );
        check("v@{{version}", "has an unknown placeholder `{{version}`");
        check(
            "v*{version}",
            "gives tags git refuses (`v*1.0.0`): it contains `*`",
        );
    }

    #[test]
    fn the_manifest_form_is_the_text() {
        let pattern: TagPattern = "{name}-v{version}".parse().unwrap();
        let json = serde_json::to_string(&pattern).unwrap();
        assert_eq!(json, "\"{name}-v{version}\"");
        assert_eq!(serde_json::from_str::<TagPattern>(&json).unwrap(), pattern);
        assert!(serde_json::from_str::<TagPattern>("\"release\"").is_err());
    }
}
