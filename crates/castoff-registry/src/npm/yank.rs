//! What `castoff yank` asks of an npm registry: the packument by package name, a dist-tag
//! moved or removed (`/-/package/<name>/dist-tags/<tag>`), and a version deprecated (the
//! packument PUT back with `deprecated` set on that version, as `npm deprecate` does).

use reqwest::{Method, StatusCode};

use super::{HOW_TO_LOG_IN, NpmClient, escape_name};
use crate::error::{RegistryError, display_url};
use crate::http::{Body, Request, auth_hint, read_text, status_error};

/// The largest packument castoff reads (the same bound as publish's state query).
const PACKUMENT_LIMIT: u64 = 256 * 1024 * 1024;

impl NpmClient {
    /// The full packument of `name`, `None` for an unknown package.
    pub fn packument_of(&self, name: &str) -> Result<Option<serde_json::Value>, RegistryError> {
        self.read_packument(name, false)
    }

    /// The packument; `for_write` asks for the primary's copy (`?write=true`, as npm's own
    /// read-modify-write commands do), whose `_rev` a PUT must carry: a cached copy's is stale.
    fn read_packument(
        &self,
        name: &str,
        for_write: bool,
    ) -> Result<Option<serde_json::Value>, RegistryError> {
        let url = self.package_url(name)?;
        let mut get = url.clone();
        if for_write {
            get.set_query(Some("write=true"));
        }
        let request = Request::new(Method::GET, get.clone())
            .header("Accept", "application/json")
            .header("Cache-Control", "no-cache")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, name)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(name, &Method::GET, &get, response, hint));
        }
        let body =
            read_text(response, PACKUMENT_LIMIT).map_err(|error| RegistryError::Protocol {
                artifact: name.to_owned(),
                url: display_url(&url),
                message: format!("cannot read the packument: {error}"),
                hint: "run the command again".to_owned(),
            })?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|error| RegistryError::Protocol {
                artifact: name.to_owned(),
                url: display_url(&url),
                message: format!("the packument is not JSON: {error}"),
                hint: "check that the URL is an npm registry".to_owned(),
            })
    }

    fn dist_tag_url(&self, name: &str, tag: &str) -> Result<reqwest::Url, RegistryError> {
        self.registry
            .url
            .join(&format!(
                "-/package/{}/dist-tags/{}",
                escape_name(name),
                urlencode(tag)
            ))
            .map_err(|error| RegistryError::Config {
                what: format!("npm dist-tag `{tag}` of `{name}`"),
                message: format!("cannot build its registry URL: {error}"),
                hint: "check the package name".to_owned(),
            })
    }

    /// Points `tag` of `name` at `version` (`PUT /-/package/<name>/dist-tags/<tag>`, the JSON
    /// string of the version as the body, as `npm dist-tag add` sends it).
    pub fn set_dist_tag(&self, name: &str, tag: &str, version: &str) -> Result<(), RegistryError> {
        let url = self.dist_tag_url(name, tag)?;
        let artifact = format!("{name} dist-tag {tag}");
        let body = serde_json::to_vec(version).expect("a string serializes");
        let request = Request::new(Method::PUT, url.clone())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("npm-command", "dist-tag")
            .auth(self.auth.as_ref())
            .body(Body::Bytes(body));
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        if response.status().is_success() {
            return Ok(());
        }
        let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
        Err(status_error(&artifact, &Method::PUT, &url, response, hint))
    }

    /// Removes `tag` of `name` (`DELETE /-/package/<name>/dist-tags/<tag>`); a tag that is
    /// already gone is fine.
    pub fn remove_dist_tag(&self, name: &str, tag: &str) -> Result<(), RegistryError> {
        let url = self.dist_tag_url(name, tag)?;
        let artifact = format!("{name} dist-tag {tag}");
        let request = Request::new(Method::DELETE, url.clone())
            .header("Accept", "application/json")
            .header("npm-command", "dist-tag")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
        Err(status_error(
            &artifact,
            &Method::DELETE,
            &url,
            response,
            hint,
        ))
    }

    /// Deprecates `version` of `name` with `message`: reads the packument, sets
    /// `versions[version].deprecated`, and PUTs the document back without its attachments.
    pub fn deprecate(&self, name: &str, version: &str, message: &str) -> Result<(), RegistryError> {
        let artifact = format!("{name}@{version}");
        let url = self.package_url(name)?;
        let Some(mut packument) = self.read_packument(name, true)? else {
            return Err(RegistryError::Protocol {
                artifact,
                url: display_url(&url),
                message: "the package is not on the registry".to_owned(),
                hint: "check the registry URL and the package name".to_owned(),
            });
        };
        let Some(entry) = packument
            .get_mut("versions")
            .and_then(|versions| versions.get_mut(version))
            .and_then(|entry| entry.as_object_mut())
        else {
            return Err(RegistryError::Protocol {
                artifact,
                url: display_url(&url),
                message: format!("the packument lists no version {version}"),
                hint: "check the version".to_owned(),
            });
        };
        entry.insert("deprecated".into(), message.into());
        if let Some(object) = packument.as_object_mut() {
            object.remove("_attachments");
        }
        let body = serde_json::to_vec(&packument).expect("JSON values serialize");
        let request = Request::new(Method::PUT, url.clone())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("npm-command", "deprecate")
            .auth(self.auth.as_ref())
            .body(Body::Bytes(body));
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        if response.status().is_success() {
            return Ok(());
        }
        let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
        Err(status_error(&artifact, &Method::PUT, &url, response, hint))
    }
}

/// Percent-encodes what is not unreserved in a URL path segment.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
