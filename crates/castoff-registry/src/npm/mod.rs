//! The npm registry protocol (npmjs, Verdaccio, GitHub Packages…): state from the packument,
//! `PUT /<name>` with the tarball streamed as base64 inside the JSON document, verify, `whoami`,
//! and the trusted-publishing token exchange.

mod document;
mod npmrc;
mod tarball;
mod yank;

use reqwest::{Method, StatusCode, Url};

pub use document::Base64Reader;
pub use npmrc::Npmrc;
pub use tarball::NpmTarball;

use crate::env::{self, Environment};
use crate::error::{RegistryError, display_url};
use crate::http::{
    Authorization, Body, HttpClient, Request, RetryDecision, Sent, UploadProgress, auth_hint,
    read_text, status_error,
};
use crate::oidc::json_string_field;
use crate::secret::Secret;
use crate::source::{CredentialSource, SentCredentials};
use crate::{RemoteState, UploadKind, UploadOutcome};

/// The public npm registry.
pub const NPMJS_REGISTRY: &str = "https://registry.npmjs.org/";

/// How to log in to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpmCredentials {
    None,
    /// `_authToken` / `NODE_AUTH_TOKEN`: `Authorization: Bearer`.
    Token(Secret),
    /// `username` + `_password` (decoded): `Authorization: Basic`.
    Basic {
        username: String,
        password: Secret,
    },
    /// Legacy `_auth`: base64 of `user:password`, sent as `Basic` as it is.
    LegacyAuth(Secret),
}

impl NpmCredentials {
    /// The `.npmrc` credentials for the registry, else `NODE_AUTH_TOKEN`, else `NPM_TOKEN`,
    /// the variables only when the registry is the release's `sole_destination`, with where
    /// they came from. The file comes first because it names the registry a token belongs
    /// to; with several registries (`npm.registries`) a bare variable is sent to none of
    /// them, since it names none.
    pub fn resolve(
        environment: &dyn Environment,
        npmrc: &Npmrc,
        registry: &Url,
        sole_destination: bool,
    ) -> (NpmCredentials, Option<CredentialSource>) {
        if let Some((credentials, source)) = npmrc.credentials_with_source(registry) {
            return (credentials, Some(source));
        }
        if !sole_destination {
            return (NpmCredentials::None, None);
        }
        [env::NODE_AUTH_TOKEN, env::NPM_TOKEN]
            .iter()
            .find_map(|name| Some((*name, environment.var(name)?)))
            .map_or((NpmCredentials::None, None), |(name, token)| {
                (
                    NpmCredentials::Token(Secret::new(token)),
                    Some(CredentialSource::variables([name])),
                )
            })
    }
}

/// A registry and how to log in to it.
#[derive(Debug, Clone)]
pub struct NpmRegistry {
    /// Base URL, ending in `/`.
    pub url: Url,
    pub credentials: NpmCredentials,
}

impl NpmRegistry {
    pub fn new(url: &str, credentials: NpmCredentials) -> Result<NpmRegistry, RegistryError> {
        let mut url = Url::parse(url).map_err(|error| RegistryError::Config {
            what: format!("npm registry `{url}`"),
            message: format!("not a URL: {error}"),
            hint: "give an absolute URL such as https://registry.npmjs.org/".to_owned(),
        })?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(NpmRegistry { url, credentials })
    }
}

/// `@scope/name` → `@scope%2fname` (npm-package-arg's `escapedName`).
pub fn escape_name(name: &str) -> String {
    name.replace('/', "%2f")
}

/// Publishes tarballs to one registry.
#[derive(Debug, Clone)]
pub struct NpmClient {
    http: HttpClient,
    registry: NpmRegistry,
    auth: Option<Authorization>,
    /// Where the credentials came from, named when the registry refuses them.
    credential_source: Option<CredentialSource>,
}

const HOW_TO_LOG_IN: &str = "set NODE_AUTH_TOKEN (or NPM_TOKEN), or add `//<registry host>/:_authToken=…` to .npmrc, or use npm trusted publishing in GitHub Actions";

impl NpmClient {
    pub fn new(http: &HttpClient, registry: NpmRegistry) -> Result<NpmClient, RegistryError> {
        http.check_url(&registry.url, "npm registry")?;
        let origin = &registry.url;
        let auth = match &registry.credentials {
            NpmCredentials::None => None,
            NpmCredentials::Token(token) => Some(Authorization::bearer(origin, token)),
            NpmCredentials::Basic { username, password } => {
                Some(Authorization::basic(origin, username, password))
            }
            NpmCredentials::LegacyAuth(encoded) => {
                Some(Authorization::basic_encoded(origin, encoded))
            }
        };
        Ok(NpmClient {
            http: http.clone(),
            registry,
            auth,
            credential_source: None,
        })
    }

    /// The client, naming `source` as where its credentials came from when the registry
    /// refuses them.
    pub fn with_credential_source(self, source: Option<CredentialSource>) -> NpmClient {
        NpmClient {
            credential_source: source,
            ..self
        }
    }

    /// The credentials this client sends, for a refusal's hint.
    fn sent_credentials(&self) -> SentCredentials<'_> {
        SentCredentials::of(self.auth.is_some(), self.credential_source.as_ref())
    }

    pub fn registry(&self) -> &NpmRegistry {
        &self.registry
    }

    fn package_url(&self, name: &str) -> Result<Url, RegistryError> {
        self.registry
            .url
            .join(&escape_name(name))
            .map_err(|error| RegistryError::Config {
                what: format!("npm package `{name}`"),
                message: format!("cannot build its registry URL: {error}"),
                hint: "check the package name".to_owned(),
            })
    }

    /// `GET /-/whoami` → the user name the credentials belong to (preflight).
    pub fn whoami(&self) -> Result<String, RegistryError> {
        let url = self.registry.url.join("-/whoami").expect("static path");
        let what = format!("npm login at {}", display_url(&self.registry.url));
        let request = Request::new(Method::GET, url.clone())
            .header("Accept", "application/json")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, &what)?;
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(&what, &Method::GET, &url, response, hint));
        }
        let body = crate::http::read_answer(response, 64 * 1024, &what, &Method::GET, &url)?;
        // Verdaccio answers an unknown token with 200 `{}`: no user name means not logged in.
        json_string_field(&body, "username").ok_or_else(|| RegistryError::Protocol {
            artifact: what,
            url: display_url(&url),
            message: "the registry does not know these credentials (whoami names no user)"
                .to_owned(),
            hint: auth_hint(
                StatusCode::UNAUTHORIZED,
                self.sent_credentials(),
                HOW_TO_LOG_IN,
            ),
        })
    }

    /// The packument (`GET /<escaped name>`, full document), `None` for an unknown package.
    pub fn packument(
        &self,
        tarball: &NpmTarball,
    ) -> Result<Option<serde_json::Value>, RegistryError> {
        let url = self.package_url(&tarball.name)?;
        let artifact = format!("{}@{}", tarball.name, tarball.version);
        let request = Request::new(Method::GET, url.clone())
            .header("Accept", "application/json")
            .header("Cache-Control", "no-cache")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, &artifact)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(&artifact, &Method::GET, &url, response, hint));
        }
        let body =
            read_text(response, 256 * 1024 * 1024).map_err(|error| RegistryError::Protocol {
                artifact: artifact.clone(),
                url: display_url(&url),
                message: format!("cannot read the packument: {error}"),
                hint: "run publish again".to_owned(),
            })?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|error| RegistryError::Protocol {
                artifact,
                url: display_url(&url),
                message: format!("the packument is not JSON: {error}"),
                hint: "check that the URL is an npm registry".to_owned(),
            })
    }

    /// Absent / identical / conflict by `versions[v].dist.integrity` (or `shasum` when the
    /// registry records no integrity).
    pub fn state(&self, tarball: &NpmTarball) -> Result<RemoteState, RegistryError> {
        let Some(packument) = self.packument(tarball)? else {
            return Ok(RemoteState::Absent);
        };
        let Some(dist) = packument
            .get("versions")
            .and_then(|v| v.get(&tarball.version))
            .map(|v| v.get("dist"))
        else {
            return Ok(RemoteState::Absent);
        };
        let field = |name: &str| {
            dist.and_then(|d| d.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Ok(match (field("integrity"), field("shasum")) {
            (Some(remote), _) if remote == tarball.integrity => RemoteState::Identical,
            (Some(remote), _) => RemoteState::Conflict {
                local: tarball.integrity.clone(),
                remote,
            },
            (None, Some(remote)) if remote == tarball.shasum => RemoteState::Identical,
            (None, Some(remote)) => RemoteState::Conflict {
                local: format!("sha1:{}", tarball.shasum),
                remote: format!("sha1:{remote}"),
            },
            // A version without dist (it happens on Verdaccio): present but unverifiable.
            (None, None) => RemoteState::Conflict {
                local: tarball.integrity.clone(),
                remote: "a version without dist hashes".to_owned(),
            },
        })
    }

    fn conflict(&self, tarball: &NpmTarball, local: String, remote: String) -> RegistryError {
        RegistryError::Conflict {
            artifact: format!("{}@{}", tarball.name, tarball.version),
            url: display_url(&self.registry.url),
            what: format!("version {} of {}", tarball.version, tarball.name),
            local,
            remote,
            hint: "a published npm version can never be replaced: release a new version (bump the version in Cargo.toml)".to_owned(),
        }
    }

    /// Publishes the tarball under `dist_tag` (default: `latest`, or `next` for prereleases).
    /// 403/409 and retries are resolved through the packument: identical →
    /// [`UploadKind::AlreadyPresent`], different → [`RegistryError::Conflict`].
    pub fn upload(
        &self,
        tarball: &NpmTarball,
        dist_tag: Option<&str>,
    ) -> Result<UploadOutcome, RegistryError> {
        self.upload_with_progress(tarball, dist_tag, &UploadProgress::none())
    }

    /// [`NpmClient::upload`], reporting the tarball's bytes to `progress` as they are sent
    /// (counted before base64, so they add up to the tarball's size).
    pub fn upload_with_progress(
        &self,
        tarball: &NpmTarball,
        dist_tag: Option<&str>,
        progress: &UploadProgress,
    ) -> Result<UploadOutcome, RegistryError> {
        let artifact = format!("{}@{}", tarball.name, tarball.version);
        let url = self.package_url(&tarball.name)?;
        let dist_tag = dist_tag.unwrap_or_else(|| tarball.default_dist_tag());
        let document = document::PublishDocument::new(tarball, &self.registry.url, dist_tag);
        let payload = progress.payload();
        let open = || document.open(&payload);
        let request = Request::new(Method::PUT, url.clone())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("npm-command", "publish")
            .auth(self.auth.as_ref())
            .body(Body::Stream {
                length: document.length(),
                open: &open,
            });
        let mut hook = |_: &crate::http::FailedAttempt| match self.state(tarball)? {
            RemoteState::Identical => Ok(RetryDecision::Stop),
            RemoteState::Conflict { local, remote } => Err(self.conflict(tarball, local, remote)),
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
            return Ok(UploadOutcome {
                kind: UploadKind::Uploaded,
                attempts,
                bytes: tarball.size,
            });
        }
        if status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT {
            // npmjs answers 403 "cannot publish over", Verdaccio 409; a 403 has also been seen
            // after the version was stored. Only the packument can tell.
            match self.state(tarball)? {
                RemoteState::Identical => {
                    return Ok(UploadOutcome {
                        kind: UploadKind::AlreadyPresent,
                        attempts,
                        bytes: 0,
                    });
                }
                RemoteState::Conflict { local, remote } => {
                    return Err(self.conflict(tarball, local, remote));
                }
                _ => {}
            }
        }
        let otp = crate::http::header(&response, "www-authenticate")
            .is_some_and(|h| h.to_lowercase().contains("otp"));
        let hint = match status.as_u16() {
            401 if otp => "the registry wants a one-time password: use a granular access token with \"bypass 2FA\", or trusted publishing".to_owned(),
            401 | 403 => auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN),
            402 => "scoped packages are private by default on npmjs; castoff sends access: public — check that the scope belongs to you".to_owned(),
            413 => "the document is larger than the registry accepts (Verdaccio: raise max_body_size); shrink the binary (strip debug info)".to_owned(),
            _ => "run publish again: it re-checks the registry and resumes".to_owned(),
        };
        Err(status_error(&artifact, &Method::PUT, &url, response, hint))
    }

    /// After an upload: the packument's integrity for the version equals the tarball's.
    pub fn verify(&self, tarball: &NpmTarball) -> Result<(), RegistryError> {
        match self.state(tarball)? {
            RemoteState::Identical => Ok(()),
            state => Err(RegistryError::Verify {
                artifact: format!("{}@{}", tarball.name, tarball.version),
                url: display_url(&self.package_url(&tarball.name)?),
                expected: tarball.integrity.clone(),
                found: match state {
                    RemoteState::Conflict { remote, .. } => remote,
                    _ => "no such version".to_owned(),
                },
                hint: "the registry does not serve what was uploaded; check its logs and storage"
                    .to_owned(),
            }),
        }
    }
}

/// npm trusted publishing: `POST <registry>/-/npm/v1/oidc/token/exchange/package/<escaped>`
/// with the CI's ID token (audience `npm:<registry host>`) as Bearer → a publish token.
pub fn oidc_token_exchange(
    http: &HttpClient,
    registry: &Url,
    package: &str,
    id_token: &Secret,
) -> Result<Secret, RegistryError> {
    let what = format!("npm trusted publishing for {package}");
    http.check_url(registry, "npm registry")?;
    let url = registry
        .join(&format!(
            "-/npm/v1/oidc/token/exchange/package/{}",
            escape_name(package)
        ))
        .map_err(|error| RegistryError::Config {
            what: what.clone(),
            message: error.to_string(),
            hint: "check the registry URL".to_owned(),
        })?;
    let auth = Authorization::bearer(registry, id_token);
    let request = Request::new(Method::POST, url.clone())
        .header("Accept", "application/json")
        .auth(Some(&auth));
    // The ID token is single-use: no retries.
    let mut hook = |_: &crate::http::FailedAttempt| Ok(RetryDecision::Stop);
    let response = match http.send(&request, &what, &mut hook)? {
        Sent::Response { response, .. } => response,
        Sent::Stopped { .. } => {
            return Err(RegistryError::Transport {
                artifact: what,
                method: "POST".to_owned(),
                url: display_url(&url),
                reason: "the token exchange failed and an ID token cannot be used twice".to_owned(),
                attempts: 1,
                hint: "run publish again".to_owned(),
            });
        }
    };
    if !response.status().is_success() {
        return Err(status_error(
            &what,
            &Method::POST,
            &url,
            response,
            "configure the package's trusted publisher on npmjs (`npm trust github …`); the first version of a new package must be published with a token",
        ));
    }
    let body = crate::http::read_answer(response, 64 * 1024, &what, &Method::POST, &url)?;
    json_string_field(&body, "token")
        .map(Secret::new)
        .ok_or_else(|| RegistryError::Protocol {
            artifact: what,
            url: display_url(&url),
            message: "no `token` in the answer".to_owned(),
            hint: "run publish again".to_owned(),
        })
}

/// The audience npm expects in the ID token: `npm:<registry host>`.
pub fn oidc_audience(registry: &Url) -> String {
    format!("npm:{}", registry.host_str().unwrap_or(""))
}
