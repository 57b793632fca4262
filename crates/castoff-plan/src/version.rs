//! One Cargo (SemVer) version, spelled the way each registry wants it: PEP 440 for PyPI,
//! SemVer plus a dist-tag for npm, and the set of tags for a container image.

use semver::{Prerelease, Version};

/// A version a registry cannot express, with the spelling that would work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version `{version}` cannot be published to {registry}: {reason}")]
pub struct VersionError {
    pub version: String,
    pub registry: &'static str,
    pub reason: String,
    pub hint: String,
}

const PRERELEASE_HINT: &str = "use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N";

/// The PEP 440 spelling of a Cargo version, normalized as PyPI and wheel file names need it.
///
/// `1.0.0-alpha.1` → `1.0.0a1`, `-beta.2` → `b2`, `-rc.1` → `rc1`, `-dev.3` → `.dev3`.
/// Refused: build metadata (PyPI rejects local versions) and pre-releases PEP 440 has no
/// spelling for (`-alpha.beta`, `-x.7`, a numeric `-1`, which PEP 440 would read as a
/// post-release sorting *after* the release).
pub fn pep440(version: &Version) -> Result<String, VersionError> {
    let refuse = |reason: String, hint: String| VersionError {
        version: version.to_string(),
        registry: "PyPI",
        reason,
        hint,
    };
    let release = format!("{}.{}.{}", version.major, version.minor, version.patch);
    if !version.build.is_empty() {
        return Err(refuse(
            format!(
                "build metadata `+{}` makes it a local version, which PyPI rejects",
                version.build
            ),
            format!(
                "drop the build metadata: version = \"{}\"",
                strip_build(version)
            ),
        ));
    }
    if version.pre.is_empty() {
        return Ok(release);
    }
    match parse_prerelease(&version.pre) {
        Some((kind, number)) => Ok(match kind {
            PreKind::Alpha => format!("{release}a{number}"),
            PreKind::Beta => format!("{release}b{number}"),
            PreKind::ReleaseCandidate => format!("{release}rc{number}"),
            PreKind::Dev => format!("{release}.dev{number}"),
        }),
        None => Err(refuse(
            format!(
                "pre-release `-{}` has no PEP 440 spelling",
                version.pre.as_str()
            ),
            format!("{PRERELEASE_HINT}, e.g. version = \"{release}-rc.1\""),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreKind {
    Alpha,
    Beta,
    ReleaseCandidate,
    Dev,
}

/// `alpha`, `alpha.1`, `alpha1`, `a.1`, `beta.2`, `rc.1`, `rc1`, `pre.1`, `preview.1`, `c.1`,
/// `dev.3` → (kind, number). Anything with more parts, or an unknown word, is `None`.
fn parse_prerelease(pre: &Prerelease) -> Option<(PreKind, u64)> {
    let mut parts = pre.as_str().split('.');
    let first = parts.next()?;
    let second = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let word_end = first
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(first.len());
    let (word, glued_number) = first.split_at(word_end);
    let kind = match word.to_ascii_lowercase().as_str() {
        "a" | "alpha" => PreKind::Alpha,
        "b" | "beta" => PreKind::Beta,
        "c" | "rc" | "pre" | "preview" => PreKind::ReleaseCandidate,
        "dev" => PreKind::Dev,
        _ => return None,
    };
    let number = match (glued_number, second) {
        ("", None) => 0,
        ("", Some(number)) | (number, None) => parse_number(number)?,
        (_, Some(_)) => return None,
    };
    Some((kind, number))
}

fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn strip_build(version: &Version) -> Version {
    let mut stripped = version.clone();
    stripped.build = semver::BuildMetadata::EMPTY;
    stripped
}

/// The version npm publishes, and the dist-tag it goes under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmVersion {
    pub version: String,
    /// `latest` for a release, `next` for a pre-release (which must never become `latest`).
    pub dist_tag: &'static str,
}

/// npm takes SemVer as is; a pre-release goes to `next`. Build metadata is refused: npm
/// strips it on publish (`semver.clean`), so `1.0.0+a` and `1.0.0+b` would collide as `1.0.0`.
pub fn npm(version: &Version) -> Result<NpmVersion, VersionError> {
    if !version.build.is_empty() {
        return Err(VersionError {
            version: version.to_string(),
            registry: "npm",
            reason: format!(
                "npm drops build metadata `+{}` on publish, so this version would collide with `{}`",
                version.build,
                strip_build(version)
            ),
            hint: format!(
                "drop the build metadata: version = \"{}\"",
                strip_build(version)
            ),
        });
    }
    let dist_tag = if version.pre.is_empty() {
        "latest"
    } else {
        "next"
    };
    Ok(NpmVersion {
        version: version.to_string(),
        dist_tag,
    })
}

/// The tags a container image of this version is pushed under, most specific first.
///
/// A release gets `1.2.3`, `1.2`, `1`, `latest` (no bare major tag for `0.x`, which makes no
/// compatibility promise). A pre-release, or a version with build metadata, gets only its
/// full version: floating tags must never move to it. `+` is not legal in a tag, so build
/// metadata is joined with `_` (`1.2.3+build.5` → `1.2.3_build.5`), as Helm and Flux do.
pub fn oci_tags(version: &Version) -> Vec<String> {
    let mut full = format!("{}.{}.{}", version.major, version.minor, version.patch);
    if !version.pre.is_empty() {
        full.push('-');
        full.push_str(version.pre.as_str());
    }
    if !version.build.is_empty() {
        full.push('_');
        full.push_str(version.build.as_str());
    }
    if !version.pre.is_empty() || !version.build.is_empty() {
        return vec![full];
    }
    let mut tags = vec![full, format!("{}.{}", version.major, version.minor)];
    if version.major > 0 {
        tags.push(version.major.to_string());
    }
    tags.push("latest".to_owned());
    tags
}

/// Whether `tag` is a legal OCI tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_oci_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_pep440(cargo: &str, expect: Result<&str, &str>) {
        let version = Version::parse(cargo).unwrap();
        let got = pep440(&version).map_err(|error| format!("{error}\nhint: {}", error.hint));
        match (&got, expect) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{cargo}"),
            (Err(got), Err(expected)) => assert_eq!(got, expected, "{cargo}"),
            _ => panic!("{cargo}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn pep440_table() {
        check_pep440("1.0.0", Ok("1.0.0"));
        check_pep440("0.1.0", Ok("0.1.0"));
        check_pep440("1.0.0-alpha.1", Ok("1.0.0a1"));
        check_pep440("1.0.0-alpha", Ok("1.0.0a0"));
        check_pep440("1.0.0-a.3", Ok("1.0.0a3"));
        check_pep440("1.0.0-alpha2", Ok("1.0.0a2"));
        check_pep440("1.0.0-beta.2", Ok("1.0.0b2"));
        check_pep440("1.0.0-rc.1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-rc1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-RC.1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-pre.1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-preview.1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-c.1", Ok("1.0.0rc1"));
        check_pep440("1.0.0-dev.3", Ok("1.0.0.dev3"));
        check_pep440("10.20.30-rc.12", Ok("10.20.30rc12"));
        check_pep440(
            "1.0.0-alpha.beta",
            Err(
                "version `1.0.0-alpha.beta` cannot be published to PyPI: pre-release `-alpha.beta` has no PEP 440 spelling\n\
                 hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = \"1.0.0-rc.1\"",
            ),
        );
        check_pep440(
            "1.0.0-1",
            Err(
                "version `1.0.0-1` cannot be published to PyPI: pre-release `-1` has no PEP 440 spelling\n\
                 hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = \"1.0.0-rc.1\"",
            ),
        );
        check_pep440(
            "1.0.0-alpha.1.2",
            Err(
                "version `1.0.0-alpha.1.2` cannot be published to PyPI: pre-release `-alpha.1.2` has no PEP 440 spelling\n\
                 hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = \"1.0.0-rc.1\"",
            ),
        );
        check_pep440(
            "2.0.0-x.7.z.92",
            Err(
                "version `2.0.0-x.7.z.92` cannot be published to PyPI: pre-release `-x.7.z.92` has no PEP 440 spelling\n\
                 hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = \"2.0.0-rc.1\"",
            ),
        );
        check_pep440(
            "1.0.0-rc1.2",
            Err(
                "version `1.0.0-rc1.2` cannot be published to PyPI: pre-release `-rc1.2` has no PEP 440 spelling\n\
                 hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = \"1.0.0-rc.1\"",
            ),
        );
        check_pep440(
            "1.0.0+build.5",
            Err(
                "version `1.0.0+build.5` cannot be published to PyPI: build metadata `+build.5` makes it a local version, which PyPI rejects\n\
                 hint: drop the build metadata: version = \"1.0.0\"",
            ),
        );
        check_pep440(
            "1.0.0-alpha+001",
            Err(
                "version `1.0.0-alpha+001` cannot be published to PyPI: build metadata `+001` makes it a local version, which PyPI rejects\n\
                 hint: drop the build metadata: version = \"1.0.0-alpha\"",
            ),
        );
    }

    #[test]
    fn npm_table() {
        let check = |cargo: &str, expect: Result<(&str, &str), &str>| {
            let got = npm(&Version::parse(cargo).unwrap());
            match (got, expect) {
                (Ok(got), Ok((version, tag))) => {
                    assert_eq!((got.version.as_str(), got.dist_tag), (version, tag));
                }
                (Err(got), Err(expected)) => {
                    assert_eq!(format!("{got}\nhint: {}", got.hint), expected)
                }
                (got, expect) => panic!("{cargo}: got {got:?}, expected {expect:?}"),
            }
        };
        check("1.2.3", Ok(("1.2.3", "latest")));
        check("0.0.1", Ok(("0.0.1", "latest")));
        check("1.2.3-rc.1", Ok(("1.2.3-rc.1", "next")));
        check("1.0.0-alpha.beta", Ok(("1.0.0-alpha.beta", "next")));
        check(
            "1.2.3+build.5",
            Err(
                "version `1.2.3+build.5` cannot be published to npm: npm drops build metadata `+build.5` on publish, so this version would collide with `1.2.3`\n\
                 hint: drop the build metadata: version = \"1.2.3\"",
            ),
        );
    }

    #[test]
    fn oci_tag_table() {
        let check = |cargo: &str, expect: &[&str]| {
            let tags = oci_tags(&Version::parse(cargo).unwrap());
            assert_eq!(tags, expect, "{cargo}");
            assert!(tags.iter().all(|tag| is_valid_oci_tag(tag)), "{tags:?}");
        };
        check("1.2.3", &["1.2.3", "1.2", "1", "latest"]);
        check("0.4.1", &["0.4.1", "0.4", "latest"]);
        check("1.2.3-rc.1", &["1.2.3-rc.1"]);
        check("1.2.3+build.5", &["1.2.3_build.5"]);
        check("1.2.3-beta.2+sha.abc", &["1.2.3-beta.2_sha.abc"]);
    }

    #[test]
    fn oci_tag_syntax() {
        assert!(is_valid_oci_tag("latest"));
        assert!(is_valid_oci_tag("_x"));
        assert!(!is_valid_oci_tag(""));
        assert!(!is_valid_oci_tag("-x"));
        assert!(!is_valid_oci_tag(".x"));
        assert!(!is_valid_oci_tag("1.0.0+b"));
        assert!(is_valid_oci_tag(&"a".repeat(128)));
        assert!(!is_valid_oci_tag(&"a".repeat(129)));
    }
}
