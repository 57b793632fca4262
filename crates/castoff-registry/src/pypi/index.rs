//! The simple repository API as castoff reads it: the index URL derived from an upload URL,
//! and a project page (PEP 691 JSON or PEP 503 HTML) reduced to file name → sha256.

use reqwest::Url;

/// The simple index that matches an upload URL, where the server's convention is known:
/// PyPI and TestPyPI (`/legacy/` → `pypi.org/simple/`), warehouse-like `/legacy/` elsewhere
/// (`<origin>/simple/`), pypiserver (`/` → `/simple/`), devpi (`/<user>/<index>/` →
/// `…/+simple/`). `None` means: ask the user (`--pypi-index-url`).
pub fn derive_index_url(upload: &Url) -> Option<Url> {
    let host = upload.host_str()?;
    let path = upload.path();
    let origin = |url: &str| Url::parse(url).ok();
    match host {
        "upload.pypi.org" => return origin("https://pypi.org/simple/"),
        "test.pypi.org" => return origin("https://test.pypi.org/simple/"),
        _ => {}
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => upload.join("/simple/").ok(),
        ["legacy"] => upload.join("/simple/").ok(),
        [user, index] if !user.starts_with('+') && !index.starts_with('+') => {
            upload.join(&format!("/{user}/{index}/+simple/")).ok()
        }
        _ => None,
    }
}

/// PEP 503 name normalization: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_project_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator = false;
    for ch in name.chars() {
        if matches!(ch, '-' | '_' | '.') {
            in_separator = true;
        } else {
            if in_separator && !normalized.is_empty() {
                normalized.push('-');
            }
            in_separator = false;
            normalized.push(ch.to_ascii_lowercase());
        }
    }
    normalized
}

/// One file of a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// sha256 hex when the index publishes it.
    pub sha256: Option<String>,
}

/// Files of a PEP 691 JSON page (`{"files": [{"filename", "hashes": {"sha256"}}]}`).
pub fn parse_json_page(body: &str) -> Option<Vec<IndexFile>> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let files = json.get("files")?.as_array()?;
    Some(
        files
            .iter()
            .filter_map(|file| {
                Some(IndexFile {
                    filename: file.get("filename")?.as_str()?.to_owned(),
                    sha256: file
                        .get("hashes")
                        .and_then(|hashes| hashes.get("sha256"))
                        .and_then(|hash| hash.as_str())
                        .map(|hash| hash.to_ascii_lowercase()),
                })
            })
            .collect(),
    )
}

/// Files of a PEP 503 HTML page: every `<a href="…#sha256=…">filename</a>`. The file name is
/// the anchor text, else the last path segment of the link.
pub fn parse_html_page(body: &str) -> Vec<IndexFile> {
    let mut files = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<a ").map(|i| from + i) {
        let Some(tag_end) = body[start..].find('>').map(|i| start + i) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</a>").map(|i| tag_end + i) else {
            break;
        };
        let tag = &body[start..tag_end];
        let text = unescape_html(body[tag_end + 1..close].trim());
        from = close + 4;
        let Some(href) = attribute(tag, "href") else {
            continue;
        };
        let href = unescape_html(&href);
        let (link, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let sha256 = fragment
            .strip_prefix("sha256=")
            .map(|hash| hash.to_ascii_lowercase());
        let from_link = link
            .split('?')
            .next()
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or("")
            .to_owned();
        let filename = if text.is_empty() { from_link } else { text };
        files.push(IndexFile { filename, sha256 });
    }
    files
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let quote = rest.chars().next()?;
    if quote == '"' || quote == '\'' {
        let end = rest[1..].find(quote)?;
        Some(rest[1..1 + end].to_owned())
    } else {
        Some(rest.split([' ', '>']).next()?.to_owned())
    }
}

fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_urls_follow_each_servers_convention() {
        let check = |upload: &str, expected: Option<&str>| {
            let derived = derive_index_url(&Url::parse(upload).unwrap()).map(|url| url.to_string());
            assert_eq!(derived.as_deref(), expected, "{upload}");
        };
        check(
            "https://upload.pypi.org/legacy/",
            Some("https://pypi.org/simple/"),
        );
        check(
            "https://test.pypi.org/legacy/",
            Some("https://test.pypi.org/simple/"),
        );
        check(
            "https://pypi.example.com/legacy/",
            Some("https://pypi.example.com/simple/"),
        );
        check(
            "http://127.0.0.1:8080/",
            Some("http://127.0.0.1:8080/simple/"),
        );
        check(
            "http://127.0.0.1:3141/ci/dev/",
            Some("http://127.0.0.1:3141/ci/dev/+simple/"),
        );
        check(
            "http://127.0.0.1:3141/ci/dev",
            Some("http://127.0.0.1:3141/ci/dev/+simple/"),
        );
        check(
            "https://gitlab.example.com/api/v4/projects/7/packages/pypi",
            None,
        );
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_project_name("My_Tool.cli"), "my-tool-cli");
        assert_eq!(normalize_project_name("a--b__c"), "a-b-c");
    }

    #[test]
    fn pages_in_both_formats() {
        let json = r#"{"meta":{"api-version":"1.1"},"name":"a","files":[{"filename":"a-1-py3-none-any.whl","url":"../../a-1.whl","hashes":{"sha256":"ABCD"}},{"filename":"a-1.tar.gz","hashes":{}}]}"#;
        assert_eq!(
            parse_json_page(json).unwrap(),
            vec![
                IndexFile {
                    filename: "a-1-py3-none-any.whl".into(),
                    sha256: Some("abcd".into())
                },
                IndexFile {
                    filename: "a-1.tar.gz".into(),
                    sha256: None
                },
            ]
        );
        let html = "<!DOCTYPE html><html><body><h1>Links for a</h1>\n<a href=\"/packages/a-1-py3-none-any.whl#sha256=00ff\">a-1-py3-none-any.whl</a><br>\n<A HREF='../../p/a-2.whl?x=1&amp;y=2'></A></body></html>";
        assert_eq!(
            parse_html_page(html),
            vec![
                IndexFile {
                    filename: "a-1-py3-none-any.whl".into(),
                    sha256: Some("00ff".into())
                },
                IndexFile {
                    filename: "a-2.whl".into(),
                    sha256: None
                },
            ]
        );
    }
}
