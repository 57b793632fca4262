//! A README as the registries show it: PyPI's and npm's pages show the README of the package
//! without the repository around it, so a relative link (`[guide](GUIDE.md)`, a logo
//! `![](docs/logo.svg)`) leads nowhere there. Relative links and images of a Markdown README
//! become absolute URLs into the repository at the release's tag, on the hosts whose URL
//! layout is known (GitHub, GitLab, Codeberg); anything else is left as it is.

use std::ops::Range;
use std::path::Path;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};

use crate::plan::App;

/// Where the files of one git ref of a repository are shown and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBase {
    /// Prefix of a file's page: `https://github.com/o/r/blob/v1.2.3/`.
    pub page: String,
    /// Prefix of a file's raw bytes (for images): `https://raw.githubusercontent.com/o/r/v1.2.3/`.
    pub raw: String,
    /// The README's directory inside the repository (`""` or `crates/tool/`).
    pub dir: String,
}

impl LinkBase {
    /// The base for `app`'s README at its release tag, when the repository's host is known and
    /// the README lies in the workspace (taken as the repository's root).
    pub fn of(app: &App, workspace_root: &Path) -> Option<LinkBase> {
        let repository = app.package.repository.as_deref()?;
        let repository = repository
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_owned();
        let rest = repository.strip_prefix("https://")?;
        let (host, path) = rest.split_once('/')?;
        if path.split('/').filter(|part| !part.is_empty()).count() < 2 {
            return None;
        }
        let tag = app.git_tag();
        let (page, raw) = match host {
            "github.com" => (
                format!("{repository}/blob/{tag}/"),
                format!("https://raw.githubusercontent.com/{path}/{tag}/"),
            ),
            "gitlab.com" => (
                format!("{repository}/-/blob/{tag}/"),
                format!("{repository}/-/raw/{tag}/"),
            ),
            "codeberg.org" => (
                format!("{repository}/src/tag/{tag}/"),
                format!("{repository}/raw/tag/{tag}/"),
            ),
            _ => return None,
        };
        let readme = app.package.readme.as_deref()?;
        let dir = readme.parent()?.strip_prefix(workspace_root).ok()?;
        let mut dir: String = dir
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if !dir.is_empty() {
            dir.push('/');
        }
        Some(LinkBase { page, raw, dir })
    }

    fn absolute(&self, link: &str, image: bool) -> Option<String> {
        if !is_relative(link) {
            return None;
        }
        let prefix = if image { &self.raw } else { &self.page };
        Some(match link.strip_prefix('/') {
            Some(from_root) => format!("{prefix}{from_root}"),
            None => format!("{prefix}{}{}", self.dir, link.trim_start_matches("./")),
        })
    }
}

/// A link that names a file of the repository: no scheme, no `//host`, no `#fragment` alone.
fn is_relative(link: &str) -> bool {
    if link.is_empty() || link.starts_with('#') || link.starts_with("//") {
        return false;
    }
    let scheme = link.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    !scheme
}

/// The README text `app` publishes: a Markdown README with its relative links made absolute
/// ([`absolute_links`]) when the repository's host is known; anything else as it is.
pub fn for_registries(app: &App, workspace_root: &Path, text: &str) -> String {
    let markdown = app.package.readme.as_deref().is_some_and(|path| {
        path.extension()
            .and_then(|ext| ext.to_str())
            .is_none_or(|ext| {
                ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("markdown")
            })
    });
    match LinkBase::of(app, workspace_root) {
        Some(base) if markdown => absolute_links(text, &base),
        _ => text.to_owned(),
    }
}

/// `markdown` with its relative links and images made absolute against `base`: inline links
/// and images, reference definitions, and `src`/`href` attributes of inline HTML. Everything
/// else, byte for byte as it was.
pub fn absolute_links(markdown: &str, base: &LinkBase) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let parser = Parser::new_ext(markdown, Options::all());
    for (_, definition) in parser.reference_definitions().iter() {
        let span = definition.span.clone();
        if let Some(at) = markdown[span.clone()].find(definition.dest.as_ref()) {
            let start = span.start + at;
            if let Some(url) = base.absolute(&definition.dest, false) {
                edits.push((start..start + definition.dest.len(), url));
            }
        }
    }
    for (event, range) in Parser::new_ext(markdown, Options::all()).into_offset_iter() {
        match event {
            Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                ..
            }) => inline(markdown, range, &dest_url, false, base, &mut edits),
            Event::Start(Tag::Image {
                link_type: LinkType::Inline,
                dest_url,
                ..
            }) => inline(markdown, range, &dest_url, true, base, &mut edits),
            Event::Html(_) | Event::InlineHtml(_) => html(markdown, range, base, &mut edits),
            _ => {}
        }
    }
    edits.sort_by_key(|(range, _)| range.start);
    edits.dedup_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(markdown.len());
    let mut at = 0;
    for (range, url) in edits {
        if range.start < at {
            continue;
        }
        out.push_str(&markdown[at..range.start]);
        out.push_str(&url);
        at = range.end;
    }
    out.push_str(&markdown[at..]);
    out
}

/// An inline `[text](dest)` / `![alt](dest)`: the destination is the last `](dest` of the span.
fn inline(
    markdown: &str,
    range: Range<usize>,
    dest: &str,
    image: bool,
    base: &LinkBase,
    edits: &mut Vec<(Range<usize>, String)>,
) {
    let Some(url) = base.absolute(dest, image) else {
        return;
    };
    let text = &markdown[range.clone()];
    let Some(open) = text.rfind("](") else {
        return;
    };
    let after = open + 2;
    let Some(at) = text[after..].find(dest) else {
        return;
    };
    let start = range.start + after + at;
    edits.push((start..start + dest.len(), url));
}

/// `src="…"` and `href="…"` attributes in HTML (a logo `<img src="docs/logo.svg">`).
fn html(
    markdown: &str,
    range: Range<usize>,
    base: &LinkBase,
    edits: &mut Vec<(Range<usize>, String)>,
) {
    let text = &markdown[range.clone()];
    for (attribute, image) in [("src=", true), ("href=", false)] {
        let mut from = 0;
        while let Some(found) = text[from..].find(attribute) {
            let value_start = from + found + attribute.len();
            from = value_start;
            let Some(quote) = text[value_start..]
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
            else {
                continue;
            };
            let inner = value_start + 1;
            let Some(end) = text[inner..].find(quote) else {
                continue;
            };
            let value = &text[inner..inner + end];
            if let Some(url) = base.absolute(value, image) {
                let start = range.start + inner;
                edits.push((start..start + value.len(), url));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> LinkBase {
        LinkBase {
            page: "https://github.com/o/r/blob/v1.0.0/".to_owned(),
            raw: "https://raw.githubusercontent.com/o/r/v1.0.0/".to_owned(),
            dir: "crates/tool/".to_owned(),
        }
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let readme = "\
# Tool ![logo](docs/logo.svg)

See [the guide](GUIDE.md), [changes](./CHANGELOG.md#v1), [home](https://example.com),
[top](#usage), [mail](mailto:a@example.com), [root file](/LICENSE) and [ref][r].

<img src=\"docs/shot.png\" width=\"300\"> <a href='https://example.com/x'>x</a>

```sh
see [not a link](GUIDE.md)
```

[r]: docs/ref.md \"Title\"
";
        let expected = "\
# Tool ![logo](https://raw.githubusercontent.com/o/r/v1.0.0/crates/tool/docs/logo.svg)

See [the guide](https://github.com/o/r/blob/v1.0.0/crates/tool/GUIDE.md), [changes](https://github.com/o/r/blob/v1.0.0/crates/tool/CHANGELOG.md#v1), [home](https://example.com),
[top](#usage), [mail](mailto:a@example.com), [root file](https://github.com/o/r/blob/v1.0.0/LICENSE) and [ref][r].

<img src=\"https://raw.githubusercontent.com/o/r/v1.0.0/crates/tool/docs/shot.png\" width=\"300\"> <a href='https://example.com/x'>x</a>

```sh
see [not a link](GUIDE.md)
```

[r]: https://github.com/o/r/blob/v1.0.0/crates/tool/docs/ref.md \"Title\"
";
        assert_eq!(absolute_links(readme, &github()), expected);
    }

    #[test]
    fn text_without_relative_links_is_unchanged() {
        let readme = "# T\n\n[a](https://a.example) `[b](c.md)` ü\r\n";
        assert_eq!(absolute_links(readme, &github()), readme);
    }
}
