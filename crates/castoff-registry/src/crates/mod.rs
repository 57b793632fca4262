//! Cargo registries (crates.io, kellnr, any registry with a sparse index and Cargo's web API):
//! state from the sparse index entry, `PUT /api/v1/crates/new`, verify by the index entry and
//! the download, and yank / unyank.
//!
//! Only the sparse protocol is spoken (`sparse+https://…/`); a git index is refused with the
//! fix. The token goes to the API's origin only, and to the index's origin only when the
//! registry's `config.json` says `auth-required`.

mod cargo_config;
mod crate_file;
mod trusted;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub use cargo_config::{
    CRATES_IO, CRATES_IO_GIT_INDEX, CRATES_IO_INDEX, cargo_home, index_url, registry_variable,
    token,
};
pub use crate_file::{CRATE_LIMIT, CrateFile};
pub use trusted::{CRATES_IO_AUDIENCE, revoke_trusted_publishing_token, trusted_publishing_token};

use crate::error::{RegistryError, display_url};
use crate::http::{
    Authorization, Body, HttpClient, Request, RetryDecision, Sent, auth_hint, read_answer,
    status_error,
};
use crate::secret::Secret;
use crate::source::{CredentialSource, SentCredentials};
use crate::{RemoteState, UploadKind, UploadOutcome};

/// The largest `config.json` read.
const CONFIG_LIMIT: u64 = 64 * 1024;
/// The largest index file read (a crate with thousands of versions is a few MiB).
const INDEX_FILE_LIMIT: u64 = 64 * 1024 * 1024;
/// The largest answer of the publish and yank endpoints read.
const ANSWER_LIMIT: u64 = 1024 * 1024;

const HOW_TO_LOG_IN: &str = "set CARGO_REGISTRY_TOKEN (crates.io) or CARGO_REGISTRIES_<NAME>_TOKEN, or add the token to $CARGO_HOME/credentials.toml (`cargo login`)";

/// A registry by Cargo's name, with its sparse index.
#[derive(Debug, Clone)]
pub struct CratesRegistry {
    /// Cargo's name for it (`crates-io`, `[registries.<name>]`).
    pub name: String,
    /// The index's base URL without `sparse+`, ending in `/`.
    pub index: Url,
}

impl CratesRegistry {
    /// The registry `name` at `index` (`sparse+https://…`); a git index is refused.
    pub fn new(name: &str, index: &str) -> Result<CratesRegistry, RegistryError> {
        let refuse = |message: String| RegistryError::Config {
            what: format!("Cargo registry `{name}` (index `{index}`)"),
            message,
            hint: format!(
                "use the registry's sparse index: `index = \"sparse+https://<host>/<path>/\"` in `[registries.{name}]` (crates.io: {CRATES_IO_INDEX}); castoff speaks only the sparse protocol"
            ),
        };
        let Some(url) = index.strip_prefix("sparse+") else {
            return Err(refuse(
                "it is a git index (no `sparse+` prefix), which castoff does not read".to_owned(),
            ));
        };
        let mut url = Url::parse(url).map_err(|error| refuse(format!("not a URL: {error}")))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(CratesRegistry {
            name: name.to_owned(),
            index: url,
        })
    }

    /// The index URL as Cargo writes it, `sparse+…`.
    pub fn index_url(&self) -> String {
        format!("sparse+{}", self.index)
    }
}

/// The registry's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    pub dl: String,
    /// The web API's base URL (no trailing `/`).
    pub api: Url,
    pub auth_required: bool,
}

/// One version's line of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub cksum: String,
    pub yanked: bool,
}

/// The index file's path of a crate: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…` (lower case).
pub fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// The download URL of a version from the `dl` template: `{crate}`, `{version}`, `{prefix}`,
/// `{lowerprefix}`, `{sha256-checksum}` replaced, or `/{crate}/{version}/download` appended
/// when it has none of them.
pub fn download_url(dl: &str, name: &str, version: &str, sha256: &str) -> String {
    let markers = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !markers.iter().any(|marker| dl.contains(marker)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    // The index directories of the name, in its own case (`{prefix}`) or lower case.
    let prefix = |name: &str| match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    };
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{lowerprefix}", &prefix(&name.to_ascii_lowercase()))
        .replace("{prefix}", &prefix(name))
        .replace("{sha256-checksum}", sha256)
}

/// A client of one Cargo registry.
#[derive(Debug, Clone)]
pub struct CratesClient {
    http: HttpClient,
    registry: CratesRegistry,
    config: IndexConfig,
    token: Option<Secret>,
    credential_source: Option<CredentialSource>,
}

impl CratesClient {
    /// Reads the registry's `config.json` (with the token on the index's origin only when the
    /// registry refuses anonymous reads) and binds the token to its API origin.
    pub fn connect(
        http: &HttpClient,
        registry: CratesRegistry,
        token: Option<(Secret, CredentialSource)>,
    ) -> Result<CratesClient, RegistryError> {
        http.check_url(&registry.index, "Cargo registry index")?;
        let (token, credential_source) = match token {
            Some((token, source)) => (Some(token), Some(source)),
            None => (None, None),
        };
        let url = registry.index.join("config.json").expect("static path");
        let what = format!("Cargo registry `{}`", registry.name);
        let mut answer = None;
        for with_token in [false, true] {
            let auth = token
                .as_ref()
                .filter(|_| with_token)
                .map(|token| raw_token(&registry.index, token));
            if with_token && auth.is_none() {
                break;
            }
            let request = Request::new(Method::GET, url.clone())
                .header("Accept", "application/json")
                .auth(auth.as_ref());
            let (response, _) = http.send_simple(&request, &what)?;
            if response.status() == StatusCode::UNAUTHORIZED && !with_token {
                continue;
            }
            if !response.status().is_success() {
                let sent = SentCredentials::of(with_token, credential_source.as_ref());
                let hint = match response.status().as_u16() {
                    401 | 403 => auth_hint(response.status(), sent, HOW_TO_LOG_IN),
                    _ => "check the registry's index URL: it must serve config.json".to_owned(),
                };
                return Err(status_error(&what, &Method::GET, &url, response, hint));
            }
            answer = Some(read_answer(
                response,
                CONFIG_LIMIT,
                &what,
                &Method::GET,
                &url,
            )?);
            break;
        }
        let Some(text) = answer else {
            return Err(RegistryError::Status {
                artifact: what,
                method: "GET".to_owned(),
                url: display_url(&url),
                status: 401,
                explanation: "the index asks for a token".to_owned(),
                hint: auth_hint(
                    StatusCode::UNAUTHORIZED,
                    SentCredentials::None,
                    HOW_TO_LOG_IN,
                ),
            });
        };
        let config = parse_config(&text).map_err(|message| RegistryError::Protocol {
            artifact: what.clone(),
            url: display_url(&url),
            message,
            hint: "check that the URL is a Cargo registry's sparse index".to_owned(),
        })?;
        http.check_url(&config.api, "Cargo registry API")?;
        Ok(CratesClient {
            http: http.clone(),
            registry,
            config,
            token,
            credential_source,
        })
    }

    pub fn registry(&self) -> &CratesRegistry {
        &self.registry
    }

    /// The client with `token` from `source` (a trusted publishing token minted after
    /// [`CratesClient::connect`] read the API's address).
    pub fn with_token(self, token: Secret, source: CredentialSource) -> CratesClient {
        CratesClient {
            token: Some(token),
            credential_source: Some(source),
            ..self
        }
    }

    /// Whether the client has a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Revokes the client's token when it was minted by trusted publishing; nothing else.
    pub fn revoke_trusted_token(&self) -> Result<bool, RegistryError> {
        match (&self.token, &self.credential_source) {
            (Some(token), Some(CredentialSource::TrustedPublishing { .. })) => {
                revoke_trusted_publishing_token(&self.http, &self.config.api, token)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// The token, bound to the API's origin.
    fn api_auth(&self) -> Option<Authorization> {
        self.token
            .as_ref()
            .map(|token| raw_token(&self.config.api, token))
    }

    /// The token for the index, only where the registry requires it.
    fn index_auth(&self) -> Option<Authorization> {
        self.token
            .as_ref()
            .filter(|_| self.config.auth_required)
            .map(|token| raw_token(&self.registry.index, token))
    }

    fn sent_credentials(&self) -> SentCredentials<'_> {
        SentCredentials::of(self.token.is_some(), self.credential_source.as_ref())
    }

    /// The index entry of `name` at `version`, `None` when the index does not list it. The
    /// request asks caches to revalidate (`Cache-Control: no-cache`) and carries a query that
    /// changes every call, so a read right after an upload sees it.
    pub fn index_entry(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<IndexEntry>, RegistryError> {
        let artifact = format!("{name}@{version}");
        let mut url = self
            .registry
            .index
            .join(&index_path(name))
            .map_err(|error| RegistryError::Config {
                what: format!("crate `{name}`"),
                message: format!("cannot build its index URL: {error}"),
                hint: "check the crate name".to_owned(),
            })?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        url.set_query(Some(&format!("castoff={nonce}")));
        let request = Request::new(Method::GET, url.clone())
            .header("Cache-Control", "no-cache")
            .auth(self.index_auth().as_ref());
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        // A sparse index answers an unknown crate with 404 (or 410, or 451 on crates.io).
        if matches!(response.status().as_u16(), 404 | 410 | 451) {
            return Ok(None);
        }
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(&artifact, &Method::GET, &url, response, hint));
        }
        let text = read_answer(response, INDEX_FILE_LIMIT, &artifact, &Method::GET, &url)?;
        Ok(find_version(&text, version))
    }

    /// Absent / identical / conflict by the index entry's `cksum`.
    pub fn state(&self, krate: &CrateFile) -> Result<RemoteState, RegistryError> {
        Ok(match self.index_entry(&krate.name, &krate.version)? {
            None => RemoteState::Absent,
            Some(entry) if entry.cksum == krate.sha256 => RemoteState::Identical,
            Some(entry) => RemoteState::Conflict {
                local: format!("sha256:{}", krate.sha256),
                remote: format!("sha256:{}", entry.cksum),
            },
        })
    }

    fn conflict(&self, krate: &CrateFile, local: String, remote: String) -> RegistryError {
        RegistryError::Conflict {
            artifact: format!("{}@{}", krate.name, krate.version),
            url: display_url(&self.registry.index),
            what: format!("version {} of crate {}", krate.version, krate.name),
            local,
            remote,
            hint: "a published crate version can never be replaced: release a new version (bump the version in Cargo.toml)".to_owned(),
        }
    }

    /// The publish metadata with `registry` as Cargo sends it to this registry: absent for a
    /// dependency on this registry, the index URL of another (crates.io's git URL for a
    /// dependency from crates.io when publishing elsewhere).
    fn metadata_for_this_registry(&self, krate: &CrateFile) -> Value {
        let mut metadata = krate.metadata.clone();
        let own = [self.registry.index_url(), self.registry.index.to_string()];
        let to_crates_io = self.registry.name == CRATES_IO;
        if let Some(deps) = metadata.get_mut("deps").and_then(|d| d.as_array_mut()) {
            for dep in deps {
                let registry = dep
                    .get("registry")
                    .and_then(|r| r.as_str())
                    .map(str::to_owned);
                let value = match registry {
                    Some(index)
                        if own.iter().any(|own| {
                            own.trim_end_matches('/') == index.trim_end_matches('/')
                        }) =>
                    {
                        Value::Null
                    }
                    Some(index) => Value::String(index),
                    None if to_crates_io => Value::Null,
                    None => Value::String(CRATES_IO_GIT_INDEX.to_owned()),
                };
                dep["registry"] = value;
            }
        }
        metadata
    }

    /// `PUT {api}/api/v1/crates/new`. Retries ask the index first: a failed attempt may have
    /// landed. A refusal of a version that exists is resolved through the index too.
    pub fn upload(&self, krate: &CrateFile) -> Result<UploadOutcome, RegistryError> {
        let artifact = format!("{}@{}", krate.name, krate.version);
        let url = self.api_url("api/v1/crates/new")?;
        let with_registry = CrateFile {
            metadata: self.metadata_for_this_registry(krate),
            ..krate.clone()
        };
        let body = with_registry.upload_body();
        let auth = self.api_auth();
        let request = Request::new(Method::PUT, url.clone())
            .header("Accept", "application/json")
            .header("Content-Type", "application/octet-stream")
            .auth(auth.as_ref())
            .body(Body::Bytes(body));
        let mut hook = |_: &crate::http::FailedAttempt| match self.state(krate)? {
            RemoteState::Identical => Ok(RetryDecision::Stop),
            RemoteState::Conflict { local, remote } => Err(self.conflict(krate, local, remote)),
            _ => Ok(RetryDecision::Retry),
        };
        let (response, attempts) = match self.http.send(&request, &artifact, &mut hook)? {
            Sent::Stopped { attempts } => {
                return Ok(UploadOutcome {
                    kind: UploadKind::AlreadyPresent,
                    attempts,
                    bytes: 0,
                });
            }
            Sent::Response { response, attempts } => (response, attempts),
        };
        let status = response.status();
        if status.is_success() {
            // Cargo's registries answer 200 with `{"errors": [...]}` for some refusals.
            let text = read_answer(response, ANSWER_LIMIT, &artifact, &Method::PUT, &url)?;
            if let Some(errors) = api_errors(&text) {
                return Err(RegistryError::Status {
                    artifact,
                    method: "PUT".to_owned(),
                    url: display_url(&url),
                    status: status.as_u16(),
                    explanation: errors,
                    hint: "fix what the registry reports and run publish again".to_owned(),
                });
            }
            return Ok(UploadOutcome {
                kind: UploadKind::Uploaded,
                attempts,
                bytes: krate.bytes.len() as u64,
            });
        }
        if matches!(status.as_u16(), 400 | 409 | 422) {
            match self.state(krate)? {
                RemoteState::Identical => {
                    return Ok(UploadOutcome {
                        kind: UploadKind::AlreadyPresent,
                        attempts,
                        bytes: 0,
                    });
                }
                RemoteState::Conflict { local, remote } => {
                    return Err(self.conflict(krate, local, remote));
                }
                _ => {}
            }
        }
        let hint = match status.as_u16() {
            401 | 403 => auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN),
            413 => "the crate is larger than the registry accepts; leave files out with `exclude` in Cargo.toml".to_owned(),
            _ => "run publish again: it re-checks the registry and resumes".to_owned(),
        };
        Err(status_error(&artifact, &Method::PUT, &url, response, hint))
    }

    /// After an upload: the index lists the version with the crate's checksum, and the
    /// download serves bytes with that checksum.
    pub fn verify(&self, krate: &CrateFile) -> Result<(), RegistryError> {
        let artifact = format!("{}@{}", krate.name, krate.version);
        let verify_error = |url: &str, found: String| RegistryError::Verify {
            artifact: artifact.clone(),
            url: url.to_owned(),
            expected: format!("sha256:{}", krate.sha256),
            found,
            hint: "the registry does not serve what was uploaded; check its logs and storage"
                .to_owned(),
        };
        match self.state(krate)? {
            RemoteState::Identical => {}
            RemoteState::Conflict { remote, .. } => {
                return Err(verify_error(&display_url(&self.registry.index), remote));
            }
            _ => {
                return Err(verify_error(
                    &display_url(&self.registry.index),
                    "no such version in the index".to_owned(),
                ));
            }
        }
        let url = download_url(&self.config.dl, &krate.name, &krate.version, &krate.sha256);
        let url = Url::parse(&url).map_err(|error| RegistryError::Protocol {
            artifact: artifact.clone(),
            url: url.clone(),
            message: format!("the download URL from config.json's `dl` is not a URL: {error}"),
            hint: "check the registry's config.json".to_owned(),
        })?;
        self.http.check_url(&url, "Cargo registry download")?;
        // Cargo sends the token with downloads only to a registry that requires it.
        let auth = self
            .token
            .as_ref()
            .filter(|_| self.config.auth_required)
            .map(|token| raw_token(&url, token));
        let request = Request::new(Method::GET, url.clone())
            .expect_response_bytes(krate.bytes.len() as u64)
            .auth(auth.as_ref());
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(&artifact, &Method::GET, &url, response, hint));
        }
        let mut bytes = Vec::new();
        use std::io::Read as _;
        response
            .take(krate.bytes.len() as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| RegistryError::Transport {
                artifact: artifact.clone(),
                method: "GET".to_owned(),
                url: display_url(&url),
                reason: crate::http::io_error_chain(&error),
                attempts: 1,
                hint: "run publish again".to_owned(),
            })?;
        let found = castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes));
        if found != krate.sha256 {
            return Err(verify_error(&display_url(&url), format!("sha256:{found}")));
        }
        Ok(())
    }

    /// `DELETE {api}/api/v1/crates/{name}/{version}/yank`.
    pub fn yank(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        self.yank_request(Method::DELETE, name, version, "yank")
    }

    /// `PUT {api}/api/v1/crates/{name}/{version}/unyank`.
    pub fn unyank(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        self.yank_request(Method::PUT, name, version, "unyank")
    }

    fn yank_request(
        &self,
        method: Method,
        name: &str,
        version: &str,
        action: &str,
    ) -> Result<(), RegistryError> {
        let artifact = format!("{name}@{version}");
        let url = self.api_url(&format!("api/v1/crates/{name}/{version}/{action}"))?;
        let auth = self.api_auth();
        let request = Request::new(method.clone(), url.clone())
            .header("Accept", "application/json")
            .auth(auth.as_ref());
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN),
                404 => format!("the registry has no version {version} of {name}"),
                _ => format!("run {action} again"),
            };
            return Err(status_error(&artifact, &method, &url, response, hint));
        }
        let text = read_answer(response, ANSWER_LIMIT, &artifact, &method, &url)?;
        if let Some(errors) = api_errors(&text) {
            return Err(RegistryError::Status {
                artifact,
                method: method.to_string(),
                url: display_url(&url),
                status: status.as_u16(),
                explanation: errors,
                hint: format!("run {action} again"),
            });
        }
        Ok(())
    }

    fn api_url(&self, path: &str) -> Result<Url, RegistryError> {
        let base = format!("{}/", self.config.api.as_str().trim_end_matches('/'));
        Url::parse(&base)
            .and_then(|base| base.join(path))
            .map_err(|error| RegistryError::Config {
                what: format!("Cargo registry `{}`", self.registry.name),
                message: format!("cannot build an API URL: {error}"),
                hint: "check the registry's config.json (`api`)".to_owned(),
            })
    }
}

/// Cargo sends the token as it is, without a scheme.
fn raw_token(origin: &Url, token: &Secret) -> Authorization {
    Authorization::raw(origin, token)
}

/// `config.json`: `dl` and `api` are required for publishing; `auth-required` is optional.
fn parse_config(text: &str) -> Result<IndexConfig, String> {
    let json: Value =
        serde_json::from_str(text).map_err(|error| format!("config.json is not JSON: {error}"))?;
    let dl = json
        .get("dl")
        .and_then(|v| v.as_str())
        .ok_or("config.json has no `dl`")?
        .to_owned();
    let api = json
        .get("api")
        .and_then(|v| v.as_str())
        .ok_or("config.json has no `api`: the registry does not take uploads")?;
    let api =
        Url::parse(api).map_err(|error| format!("config.json's `api` is not a URL: {error}"))?;
    Ok(IndexConfig {
        dl,
        api,
        auth_required: json
            .get("auth-required")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// The line of `version` in an index file (one JSON object a line; lines that are not
/// JSON are skipped).
fn find_version(text: &str, version: &str) -> Option<IndexEntry> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line.get("vers").and_then(|v| v.as_str()) == Some(version))
        .map(|line| IndexEntry {
            cksum: line
                .get("cksum")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            yanked: line
                .get("yanked")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
}

/// The `detail`s of an `{"errors": [{"detail": …}]}` answer, joined; `None` without errors.
fn api_errors(text: &str) -> Option<String> {
    let json: Value = serde_json::from_str(text).ok()?;
    let errors = json.get("errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    Some(
        errors
            .iter()
            .map(|error| {
                error
                    .get("detail")
                    .and_then(|d| d.as_str())
                    .unwrap_or("an error without detail")
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_and_download_templates() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
        assert_eq!(
            download_url("https://dl.example/api/v1/crates", "serde", "1.0.0", "ff"),
            "https://dl.example/api/v1/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "https://static.example/{lowerprefix}/{crate}/{crate}-{version}.crate?c={sha256-checksum}",
                "Serde",
                "1.0.0",
                "ff"
            ),
            "https://static.example/se/rd/Serde/Serde-1.0.0.crate?c=ff"
        );
    }

    #[test]
    fn hostile_index_and_config_answers_never_panic() {
        for text in ["", "{", "[]", "null", "{\"vers\": 1}", "\u{0}\n{}\n"] {
            assert_eq!(find_version(text, "1.0.0"), None);
            assert!(parse_config(text).is_err());
            let _ = api_errors(text);
        }
        let index = "{\"name\":\"a\",\"vers\":\"1.0.0\",\"cksum\":\"aa\",\"yanked\":true}\nnot json\n{\"vers\":\"2.0.0\"}";
        assert_eq!(
            find_version(index, "1.0.0"),
            Some(IndexEntry {
                cksum: "aa".to_owned(),
                yanked: true
            })
        );
        assert_eq!(find_version(index, "2.0.0").unwrap().cksum, "");
        assert!(
            parse_config("{\"dl\":\"x\",\"api\":\"http://127.0.0.1:1\",\"auth-required\":true}")
                .unwrap()
                .auth_required
        );
    }

    #[test]
    fn a_git_index_is_refused_with_the_fix() {
        let error = CratesRegistry::new("acme", "https://github.com/acme/index")
            .unwrap_err()
            .to_string();
        assert!(error.contains("git index"), "{error}");
        let registry = CratesRegistry::new("acme", "sparse+http://127.0.0.1:9/index").unwrap();
        assert_eq!(registry.index.as_str(), "http://127.0.0.1:9/index/");
    }
}
