//! [`RegistryError`]: every way a registry operation fails, naming the artifact, the registry URL
//! (never with credentials or query strings) and the server's explanation, with a `hint:` line.

use std::path::PathBuf;

use reqwest::Url;

/// An error of a registry client. Each variant's message is complete on its own: what failed,
/// for which artifact, at which URL, what the server said, and what to do (`hint:`).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP answer: DNS, connection refused or reset, timeout, TLS handshake.
    #[error("{artifact}: {method} {url} failed after {attempts} attempt(s): {reason}")]
    Transport {
        artifact: String,
        method: String,
        url: String,
        reason: String,
        attempts: u32,
        hint: String,
    },
    /// The server answered with a status the client cannot continue from.
    #[error("{artifact}: {method} {url} answered {status}: {explanation}")]
    Status {
        artifact: String,
        method: String,
        url: String,
        status: u16,
        explanation: String,
        hint: String,
    },
    /// The registry already holds different content under the same immutable name.
    #[error(
        "{artifact}: {url} already has {what} with different content (registry: {remote}, local: {local}); castoff never overwrites it"
    )]
    Conflict {
        artifact: String,
        url: String,
        what: String,
        local: String,
        remote: String,
        hint: String,
    },
    /// After an upload, the registry serves something other than what was uploaded.
    #[error("{artifact}: after the upload {url} serves {found}, expected {expected}")]
    Verify {
        artifact: String,
        url: String,
        expected: String,
        found: String,
        hint: String,
    },
    /// The server answered, but not in a way the protocol allows (missing header, bad JSON).
    #[error("{artifact}: unexpected answer from {url}: {message}")]
    Protocol {
        artifact: String,
        url: String,
        message: String,
        hint: String,
    },
    /// A URL, CA certificate or option is unusable; found before any request is sent.
    #[error("{what}: {message}")]
    Config {
        what: String,
        message: String,
        hint: String,
    },
    /// The file to upload cannot be read or is not what it claims to be.
    #[error("{}: {message}", path.display())]
    Artifact {
        path: PathBuf,
        message: String,
        hint: String,
    },
    /// A destination cannot be used as configured: credentials missing or written into its
    /// URL, a `~/.pypirc` section or `.npmrc` line that does not parse, a bad setting.
    /// Found before any upload.
    #[error("{message}")]
    Setup { message: String, hint: String },
    /// A configuration file exists but cannot be read.
    #[error("{message}")]
    Unreadable { message: String },
    /// A registry refused anonymous access, and no credentials were found for it.
    #[error("no credentials were found for this registry")]
    Anonymous {
        /// Which variables would have applied to another host (never their values).
        note: Option<String>,
        #[source]
        source: Box<RegistryError>,
    },
    /// Credentials could not be resolved (bad config file, failing credential helper).
    #[error("{source_name}: {message}")]
    Credentials {
        source_name: String,
        message: String,
        hint: String,
    },
}

impl RegistryError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Transport { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Status { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Conflict { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Verify { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Protocol { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Config { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Artifact { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Setup { hint, .. } => Some((*hint).to_owned()),
            RegistryError::Unreadable { .. } => None,
            RegistryError::Anonymous { note, .. } => note.clone(),
            RegistryError::Credentials { hint, .. } => Some((*hint).to_owned()),
        }
    }
}

impl RegistryError {
    /// HTTP status of a [`RegistryError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn artifact_file(
        path: &std::path::Path,
        message: impl Into<String>,
        hint: &str,
    ) -> Self {
        RegistryError::Artifact {
            path: path.to_owned(),
            message: message.into(),
            hint: hint.to_owned(),
        }
    }
}

/// `scheme://host[:port]/path` of a URL: no user info, query or fragment. Queries are dropped
/// because upload locations and redirects can carry signatures (S3 presigned URLs).
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// The server's explanation from an error body: the registry JSON error shapes
/// (`{"errors":[{code,message,detail}]}`, `{"error":…}`, `{"message":…}`), else the text,
/// shortened. Always prefixed by the reason phrase when the body says nothing.
pub(crate) fn explain_body(status: reqwest::StatusCode, body: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let trimmed = body.trim();
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(trimmed) {
        if let Some(errors) = json.get("errors").and_then(|v| v.as_array()) {
            let parts: Vec<String> = errors
                .iter()
                .map(|error| {
                    let field = |name: &str| error.get(name).and_then(|v| v.as_str()).unwrap_or("");
                    let mut text = String::new();
                    for name in ["code", "message", "description"] {
                        let value = field(name);
                        if !value.is_empty() {
                            if !text.is_empty() {
                                text.push_str(": ");
                            }
                            text.push_str(value);
                        }
                    }
                    if let Some(detail) = error.get("detail").filter(|d| !d.is_null()) {
                        text.push_str(&format!(" ({})", shorten(&detail.to_string(), 200)));
                    }
                    text
                })
                .collect();
            if !parts.is_empty() {
                return shorten(&parts.join("; "), 500);
            }
        }
        for key in ["error", "message", "reason", "detail"] {
            if let Some(text) = json.get(key).and_then(|v| v.as_str()) {
                return shorten(text, 500);
            }
        }
    }
    if trimmed.is_empty() {
        return reason.to_owned();
    }
    // HTML error pages: keep the text, drop the tags.
    let text = if trimmed.starts_with('<') {
        strip_tags(trimmed)
    } else {
        trimmed.to_owned()
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        reason.to_owned()
    } else {
        shorten(&text, 500)
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out
}

/// At most `max_chars` characters of a server's text, with control characters (terminal
/// escape sequences, bells, carriage returns) and bidirectional overrides escaped (`\u{1b}`),
/// so a registry's answer cannot rewrite or hide what the terminal shows.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let mut short = String::new();
    for (index, ch) in text.chars().enumerate() {
        if index == max_chars {
            short.push('…');
            break;
        }
        let bidi = matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if ch.is_control() || bidi {
            short.push_str(&format!("\\u{{{:x}}}", u32::from(ch)));
        } else {
            short.push(ch);
        }
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn urls_lose_credentials_and_queries() {
        let url = Url::parse(
            "https://user:pw@example.com:8443/v2/a/blobs/uploads/x?_state=abc&X-Amz-Signature=s",
        )
        .unwrap();
        assert_eq!(
            display_url(&url),
            "https://example.com:8443/v2/a/blobs/uploads/x"
        );
    }

    #[test]
    fn explanations_from_registry_error_shapes() {
        let check = |status: u16, body: &str, expected: &str| {
            assert_eq!(
                explain_body(StatusCode::from_u16(status).unwrap(), body),
                expected
            );
        };
        check(
            400,
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":null}]}"#,
            "DIGEST_INVALID: provided digest did not match uploaded content",
        );
        check(
            409,
            r#"{"error":"this package is already present"}"#,
            "this package is already present",
        );
        check(403, "", "Forbidden");
        check(
            409,
            "<html><body><h1>409</h1> Package 'a.whl' already exists!</body></html>",
            "409 Package 'a.whl' already exists!",
        );
    }
}
