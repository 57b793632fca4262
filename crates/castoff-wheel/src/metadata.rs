//! The text files of `.dist-info`: METADATA (core metadata 2.4, from Cargo's package facts
//! and the `python` table), WHEEL and RECORD, plus the license files METADATA names.

use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path};

use base64::Engine as _;
use castoff_plan::App;
use castoff_plan::plan::PythonChannel;

use crate::error::WheelError;

/// The `Generator:` of WHEEL: this crate and its version (the same as castoff's).
pub const GENERATOR: &str = concat!("castoff ", env!("CARGO_PKG_VERSION"));

/// Classifiers every castoff wheel carries: the wheel installs a console program built from
/// Rust. Nothing per operating system: every wheel of a release must carry the same METADATA
/// (PyPI shows the first file's), and the platform is in the wheel's tags already.
pub const DEFAULT_CLASSIFIERS: &[&str] =
    &["Environment :: Console", "Programming Language :: Rust"];

/// PyPI's limit for `Summary`.
const SUMMARY_MAX_CHARS: usize = 512;
/// PyPI's limit for a `Project-URL` label.
const PROJECT_URL_LABEL_MAX_CHARS: usize = 32;

/// Core metadata 2.4 of a wheel, field by field (rendered by [`CoreMetadata::render`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// As configured (`Name:` is not normalized; file names are).
    pub name: String,
    /// PEP 440, normalized.
    pub version: String,
    pub summary: Option<String>,
    pub keywords: Vec<String>,
    /// Authors without an e-mail address, comma-separated.
    pub author: Option<String>,
    /// `Name <address>` of authors with one, comma-separated.
    pub author_email: Option<String>,
    /// SPDX expression; never together with the deprecated `License:`.
    pub license_expression: Option<String>,
    /// Paths under `.dist-info/licenses/`.
    pub license_files: Vec<String>,
    pub classifiers: Vec<String>,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
    /// (label, URL)
    pub project_urls: Vec<(String, String)>,
    pub description_content_type: String,
    /// The README, or the summary when there is none (twine and PyPI want a description).
    pub description: String,
}

/// A license file copied to `.dist-info/licenses/{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseFile {
    /// Relative path under `licenses/`, `/`-separated, no `..`.
    pub path: String,
    pub contents: Vec<u8>,
}

impl CoreMetadata {
    /// Collects the metadata of an app's wheel, reading its README and license files.
    pub fn from_app(
        workspace_root: &Path,
        app: &App,
        python: &PythonChannel,
    ) -> Result<(CoreMetadata, Vec<LicenseFile>), WheelError> {
        let package = &app.package;
        let manifest = &package.manifest_path;
        let metadata_error = |problem: String, hint: String| WheelError::Metadata {
            path: manifest.clone(),
            problem,
            hint,
        };

        let summary = package.summary();
        if let Some(summary) = &summary
            && summary.chars().count() > SUMMARY_MAX_CHARS
        {
            return Err(metadata_error(
                format!(
                    "has a `description` of {} characters; PyPI's Summary holds at most {SUMMARY_MAX_CHARS}",
                    summary.chars().count()
                ),
                "shorten `description` to one sentence; the README is the long description"
                    .to_owned(),
            ));
        }

        let (author, author_email) = split_authors(&package.authors);

        let license_expression = package.license.as_deref().map(spdx_expression);
        let license_files = collect_license_files(workspace_root, app)?;

        let mut classifiers: Vec<String> = DEFAULT_CLASSIFIERS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        for classifier in &python.classifiers {
            if license_expression.is_some() && classifier.starts_with("License ::") {
                return Err(metadata_error(
                    format!(
                        "lists the classifier `{classifier}` in package.metadata.castoff.python.classifiers, \
                         but PyPI rejects license classifiers next to License-Expression (from `license`)"
                    ),
                    "remove the classifier: `license` already says it".to_owned(),
                ));
            }
            classifiers.push(classifier.clone());
        }
        classifiers.sort();
        classifiers.dedup();

        let mut project_urls = Vec::new();
        if let Some(homepage) = &package.homepage {
            project_urls.push(("Homepage".to_owned(), homepage.clone()));
        }
        if let Some(repository) = &package.repository {
            project_urls.push(("Source".to_owned(), repository.clone()));
            if let Some(issues) = issue_tracker(repository) {
                project_urls.push(("Issues".to_owned(), issues));
            }
        }
        if let Some(documentation) = &package.documentation {
            project_urls.push(("Documentation".to_owned(), documentation.clone()));
        }
        debug_assert!(
            project_urls
                .iter()
                .all(|(label, _)| label.len() <= PROJECT_URL_LABEL_MAX_CHARS)
        );

        let (description, description_content_type) = match &package.readme {
            Some(readme) => {
                let bytes = fs::read(readme).map_err(|source| WheelError::Read {
                    path: readme.clone(),
                    source,
                    hint: format!(
                        "`readme` of package `{}` in {} names this file; create it or correct the key",
                        package.name,
                        manifest.display()
                    ),
                })?;
                let text = String::from_utf8(bytes).map_err(|_| WheelError::Metadata {
                    path: readme.clone(),
                    problem: "is not valid UTF-8, which METADATA requires".to_owned(),
                    hint: "save the README as UTF-8".to_owned(),
                })?;
                let text = castoff_plan::readme::for_registries(app, workspace_root, &text);
                (text.replace("\r\n", "\n"), readme_content_type(readme))
            }
            None => (
                summary.clone().unwrap_or_else(|| python.name.clone()),
                "text/plain; charset=UTF-8".to_owned(),
            ),
        };

        let metadata = CoreMetadata {
            name: python.name.clone(),
            version: python.version.clone(),
            summary,
            keywords: package.keywords.clone(),
            author,
            author_email,
            license_expression,
            license_files: license_files.iter().map(|file| file.path.clone()).collect(),
            classifiers,
            requires_dist: python
                .requires
                .iter()
                .map(|requirement| requirement.to_requires_dist())
                .collect(),
            requires_python: python.requires_python.clone(),
            project_urls,
            description_content_type,
            description,
        };
        metadata.check_single_line_values(manifest)?;
        Ok((metadata, license_files))
    }

    /// Every header as (field, value), in the order METADATA lists them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Metadata-Version", "2.4".to_owned()),
            ("Name", self.name.clone()),
            ("Version", self.version.clone()),
        ];
        let mut optional = |field: &'static str, value: &Option<String>| {
            if let Some(value) = value {
                headers.push((field, value.clone()));
            }
        };
        optional("Summary", &self.summary);
        optional(
            "Keywords",
            &(!self.keywords.is_empty()).then(|| self.keywords.join(",")),
        );
        optional("Author", &self.author);
        optional("Author-email", &self.author_email);
        optional("License-Expression", &self.license_expression);
        for file in &self.license_files {
            headers.push(("License-File", file.clone()));
        }
        for classifier in &self.classifiers {
            headers.push(("Classifier", classifier.clone()));
        }
        for requirement in &self.requires_dist {
            headers.push(("Requires-Dist", requirement.clone()));
        }
        if let Some(requires_python) = &self.requires_python {
            headers.push(("Requires-Python", requires_python.clone()));
        }
        for (label, url) in &self.project_urls {
            headers.push(("Project-URL", format!("{label}, {url}")));
        }
        headers.push((
            "Description-Content-Type",
            self.description_content_type.clone(),
        ));
        headers
    }

    /// The METADATA file: headers, a blank line, the description as the body.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (field, value) in self.headers() {
            let _ = writeln!(text, "{field}: {value}");
        }
        text.push('\n');
        text.push_str(&self.description);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// A line break inside a header value would end the header early (and inject another).
    fn check_single_line_values(&self, manifest: &Path) -> Result<(), WheelError> {
        for (field, value) in self.headers() {
            if value.contains(['\n', '\r']) {
                return Err(WheelError::Metadata {
                    path: manifest.to_owned(),
                    problem: format!(
                        "gives METADATA field `{field}` a value with a line break: {value:?}"
                    ),
                    hint: "keep the value on one line".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Cargo accepts the legacy `MIT/Apache-2.0`; SPDX (and PyPI) want `MIT OR Apache-2.0`.
fn spdx_expression(license: &str) -> String {
    license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Splits Cargo's `authors` (`Name <address>`, `Name`, `address`) into METADATA's
/// `Author` (names without an address) and `Author-email` (RFC 5322 mailboxes).
pub fn split_authors(authors: &[String]) -> (Option<String>, Option<String>) {
    let mut names = Vec::new();
    let mut mailboxes = Vec::new();
    for author in authors {
        let author = author.trim();
        if author.is_empty() {
            continue;
        }
        match author.rsplit_once('<') {
            Some((name, rest)) if rest.ends_with('>') && rest.contains('@') => {
                let address = rest.trim_end_matches('>').trim();
                let name = name.trim();
                if name.is_empty() {
                    mailboxes.push(address.to_owned());
                } else {
                    mailboxes.push(format!("{} <{address}>", quote_display_name(name)));
                }
            }
            _ if author.contains('@') && !author.contains(char::is_whitespace) => {
                mailboxes.push(author.to_owned());
            }
            _ => names.push(author.to_owned()),
        }
    }
    let join = |items: Vec<String>| (!items.is_empty()).then(|| items.join(", "));
    (join(names), join(mailboxes))
}

/// A display name with RFC 5322 specials (`,` would split the list, `.` is not an atom
/// character) goes in double quotes.
fn quote_display_name(name: &str) -> String {
    if name.contains(|c| "()<>[]:;@\\,.\"".contains(c)) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_owned()
    }
}

/// `Description-Content-Type` from the README's extension, as PyPI renders it.
fn readme_content_type(readme: &Path) -> String {
    let extension = readme
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("md" | "markdown") => "text/markdown; charset=UTF-8; variant=GFM",
        Some("rst") => "text/x-rst; charset=UTF-8",
        _ => "text/plain; charset=UTF-8",
    }
    .to_owned()
}

/// The issue tracker of a repository on a forge whose URL scheme castoff knows.
fn issue_tracker(repository: &str) -> Option<String> {
    let base = repository.trim_end_matches('/').trim_end_matches(".git");
    let forge = [
        "https://github.com/",
        "https://gitlab.com/",
        "https://codeberg.org/",
    ];
    let path = forge.iter().find_map(|prefix| base.strip_prefix(prefix))?;
    // owner/name exactly; deeper paths (trees, subgroups) are not guessed.
    (path.split('/').count() == 2 && !path.contains(['?', '#'])).then(|| format!("{base}/issues"))
}

/// The package's license files ([`castoff_plan::Package::license_files`]), read, each under
/// the path PEP 639 gives it.
fn collect_license_files(workspace_root: &Path, app: &App) -> Result<Vec<LicenseFile>, WheelError> {
    let package = &app.package;
    let mut files: Vec<LicenseFile> = Vec::new();
    for path in package.license_files(workspace_root) {
        let hint = if package.license_file.as_deref() == Some(path.as_path()) {
            format!(
                "`license-file` of package `{}` in {} names this file; create it or correct the key",
                package.name,
                package.manifest_path.display()
            )
        } else {
            "check the file's permissions".to_owned()
        };
        let contents = fs::read(&path).map_err(|source| WheelError::Read {
            path: path.clone(),
            source,
            hint,
        })?;
        let directory = if path.starts_with(package.directory()) {
            package.directory()
        } else {
            workspace_root
        };
        let inside = license_path(&path, directory);
        // Two files of one name (a `license-file` elsewhere and a LICENSE here): the first.
        if !files.iter().any(|file| file.path == inside) {
            files.push(LicenseFile {
                path: inside,
                contents,
            });
        }
    }
    Ok(files)
}

/// The path under `licenses/`: relative to the package directory when the file is inside
/// it, else just the file name (PyPI refuses `..` in License-File).
fn license_path(file: &Path, package_directory: &Path) -> String {
    let relative = file
        .strip_prefix(package_directory)
        .ok()
        .filter(|relative| {
            relative
                .components()
                .all(|component| matches!(component, Component::Normal(_)))
        });
    match relative {
        Some(relative) => relative
            .components()
            .map(|component| component.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        None => file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "LICENSE".to_owned()),
    }
}

/// The WHEEL file.
pub fn render_wheel_file(tags: &[String]) -> String {
    let mut text = format!("Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: false\n");
    for tag in tags {
        let _ = writeln!(text, "Tag: {tag}");
    }
    text
}

/// One RECORD line: `path,sha256=<urlsafe base64, no padding>,size`.
pub fn record_line(path: &str, contents: &[u8]) -> String {
    record_line_for(
        path,
        &castoff_archive::digest::sha256(contents),
        contents.len() as u64,
    )
}

/// One RECORD line from a digest computed elsewhere (a binary's, during its compression).
pub fn record_line_for(path: &str, sha256: &[u8; 32], size: u64) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256);
    format!("{path},sha256={encoded},{size}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors() {
        let check = |authors: &[&str], expect: (Option<&str>, Option<&str>)| {
            let authors: Vec<String> = authors.iter().map(|a| (*a).to_owned()).collect();
            let (author, email) = split_authors(&authors);
            assert_eq!((author.as_deref(), email.as_deref()), expect, "{authors:?}");
        };
        check(
            &["Jane Doe <jane@example.com>", "The Acme Team"],
            (Some("The Acme Team"), Some("Jane Doe <jane@example.com>")),
        );
        check(
            &[
                "Doe, Jane <jane@example.com>",
                "J. R. Smith <jrs@example.org>",
            ],
            (
                None,
                Some("\"Doe, Jane\" <jane@example.com>, \"J. R. Smith\" <jrs@example.org>"),
            ),
        );
        check(
            &["<x@example.com>", "y@example.com"],
            (None, Some("x@example.com, y@example.com")),
        );
        check(
            &["Alice", "Bob <not an address>"],
            (Some("Alice, Bob <not an address>"), None),
        );
        check(&[], (None, None));
    }

    #[test]
    fn licenses_and_urls() {
        assert_eq!(spdx_expression("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(spdx_expression("MIT OR Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(
            issue_tracker("https://github.com/acme/greeter.git").as_deref(),
            Some("https://github.com/acme/greeter/issues")
        );
        assert_eq!(
            issue_tracker("https://gitlab.com/acme/tools/greeter"),
            None,
            "subgroups are not guessed"
        );
        assert_eq!(issue_tracker("https://example.com/acme/greeter"), None);
        assert_eq!(
            license_path(Path::new("/w/p/LICENSE"), Path::new("/w/p")),
            "LICENSE"
        );
        assert_eq!(
            license_path(Path::new("/w/p/legal/MIT.txt"), Path::new("/w/p")),
            "legal/MIT.txt"
        );
        assert_eq!(
            license_path(Path::new("/w/LICENSE"), Path::new("/w/p")),
            "LICENSE"
        );
        assert_eq!(
            readme_content_type(Path::new("README.rst")),
            "text/x-rst; charset=UTF-8"
        );
        assert_eq!(
            readme_content_type(Path::new("README")),
            "text/plain; charset=UTF-8"
        );
    }

    #[test]
    fn record_lines() {
        assert_eq!(
            record_line("a/b.py", b""),
            "a/b.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
        );
    }
}
