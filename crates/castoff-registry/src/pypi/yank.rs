//! What `castoff yank` asks of a Python index: which files of a version it lists, what kind
//! of index it is, and the removal of a release where the index offers one (devpi's
//! `DELETE /<user>/<index>/<project>/<version>`, pypiserver's `:action=remove_pkg`). PyPI
//! and TestPyPI offer no API for it: their yank is a form in the web UI.

use reqwest::{Method, StatusCode, Url};

use super::{HOW_TO_LOG_IN, IndexFile, PypiClient, normalize_project_name};
use crate::error::{RegistryError, display_url};
use crate::http::{Body, Request, auth_hint, read_text, status_error};

/// What kind of index an upload URL belongs to, as far as removing a release goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKind {
    /// pypi.org or test.pypi.org: no API; `manage` is the release's page in the web UI.
    Warehouse { manage: String },
    /// devpi-server: `DELETE` of the release.
    Devpi,
    /// Anything else: pypiserver's `:action=remove_pkg` is tried.
    Other,
}

/// How a removal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// The index holds no such release (already removed, or never uploaded).
    AlreadyGone,
    /// The index refuses the removal form: there is no API for it here.
    Unsupported {
        explanation: String,
    },
}

/// The version in a distribution's file name (`name-1.2.3-py3-none-any.whl`,
/// `name-1.2.3.tar.gz`), as written there.
pub fn file_version(filename: &str) -> Option<&str> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').nth(1);
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2"]
        .iter()
        .find_map(|extension| filename.strip_suffix(extension))?;
    stem.rsplit_once('-').map(|(_, version)| version)
}

/// The project name in a distribution's file name, as written there (`greeter_x` of
/// `greeter_x-1.0.0-py3-none-any.whl`): what pypiserver's removal form matches.
pub fn file_project(filename: &str) -> Option<&str> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').next();
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2"]
        .iter()
        .find_map(|extension| filename.strip_suffix(extension))?;
    stem.rsplit_once('-').map(|(name, _)| name)
}

impl PypiClient {
    /// The files the index lists for `version` of project `name`.
    pub fn release_files(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Vec<IndexFile>, RegistryError> {
        let wanted = version.to_ascii_lowercase();
        Ok(self
            .project_files(name, &format!("{name} {version}"))?
            .into_iter()
            .filter(|file| {
                file_version(&file.filename).is_some_and(|v| v.to_ascii_lowercase() == wanted)
            })
            .collect())
    }

    /// What kind of index the upload URL is: Warehouse by host, devpi by its JSON answer
    /// about the index (`"type": "indexconfig"`), else other.
    pub fn index_kind(&self, name: &str, version: &str) -> Result<IndexKind, RegistryError> {
        let upload = &self.repository.upload_url;
        let host = upload.host_str().unwrap_or_default();
        let web = match host {
            "upload.pypi.org" | "pypi.org" => Some("https://pypi.org"),
            "test.pypi.org" => Some("https://test.pypi.org"),
            _ => None,
        };
        if let Some(web) = web {
            return Ok(IndexKind::Warehouse {
                manage: format!(
                    "{web}/manage/project/{}/release/{version}/",
                    normalize_project_name(name)
                ),
            });
        }
        let request = Request::new(Method::GET, upload.clone())
            .header("Accept", "application/json")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, "index kind")?;
        if !response.status().is_success() {
            return Ok(IndexKind::Other);
        }
        let body = read_text(response, 4 * 1024 * 1024).unwrap_or_default();
        let devpi = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|json| json.get("type").and_then(|t| t.as_str()) == Some("indexconfig"));
        Ok(if devpi {
            IndexKind::Devpi
        } else {
            IndexKind::Other
        })
    }

    /// Removes every file of `version` of project `name` from the index, through the API
    /// `kind` offers. For pypiserver, `name` and `version` must be spelled as in the file
    /// names ([`file_project`], [`file_version`]): its form compares them as written.
    pub fn remove_release(
        &self,
        kind: &IndexKind,
        name: &str,
        version: &str,
    ) -> Result<Removal, RegistryError> {
        let artifact = format!("{name} {version}");
        let upload = &self.repository.upload_url;
        let project = normalize_project_name(name);
        let (method, url, request) = match kind {
            IndexKind::Warehouse { .. } => {
                return Ok(Removal::Unsupported {
                    explanation: "PyPI offers no API to yank or delete a release".to_owned(),
                });
            }
            IndexKind::Devpi => {
                // `force`: the index is non-volatile (uploads immutable, like PyPI's), and
                // devpi removes a release from it only when asked to on purpose.
                let mut url = join(upload, &format!("{project}/{version}"), &artifact)?;
                url.query_pairs_mut().append_pair("force", "1");
                let request = Request::new(Method::DELETE, url.clone())
                    .header("Accept", "application/json")
                    .auth(self.auth.as_ref());
                (Method::DELETE, url, request)
            }
            IndexKind::Other => {
                let mut encoder = Url::parse("http://x/").expect("static URL");
                encoder.query_pairs_mut().extend_pairs([
                    (":action", "remove_pkg"),
                    ("name", name),
                    ("version", version),
                ]);
                let form = encoder.query().unwrap_or_default().to_owned();
                let request = Request::new(Method::POST, upload.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .auth(self.auth.as_ref())
                    .body(Body::Bytes(form.into_bytes()));
                (Method::POST, upload.clone(), request)
            }
        };
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Removal::Removed);
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(Removal::AlreadyGone);
        }
        if matches!(status.as_u16(), 400 | 405 | 501) && *kind == IndexKind::Other {
            let body = read_text(response, 64 * 1024).unwrap_or_default();
            return Ok(Removal::Unsupported {
                explanation: format!(
                    "the index answered {status} to pypiserver's removal form: {}",
                    crate::error::explain_body(status, &body)
                ),
            });
        }
        let hint = auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN);
        Err(status_error(&artifact, &method, &url, response, hint))
    }
}

fn join(base: &Url, path: &str, artifact: &str) -> Result<Url, RegistryError> {
    base.join(path).map_err(|error| RegistryError::Config {
        what: artifact.to_owned(),
        message: format!(
            "cannot build the release's URL under {}: {error}",
            display_url(base)
        ),
        hint: "check the upload URL".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::file_version;

    #[test]
    fn versions_of_file_names() {
        assert_eq!(
            file_version("greeter-0.3.1-py3-none-manylinux_2_17_x86_64.whl"),
            Some("0.3.1")
        );
        assert_eq!(file_version("greeter_x-1.0.0rc1.tar.gz"), Some("1.0.0rc1"));
        assert_eq!(file_version("README"), None);
        assert_eq!(
            super::file_project("greeter_x-0.3.1-py3-none-any.whl"),
            Some("greeter_x")
        );
        assert_eq!(
            super::file_project("greeter_x-0.3.1.tar.gz"),
            Some("greeter_x")
        );
    }
}
