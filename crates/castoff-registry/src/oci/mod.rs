//! OCI distribution push (any registry: distribution, GHCR, Docker Hub, ECR…): blobs by HEAD →
//! cross-repository mount → monolithic POST + PUT or chunked PATCH with resume; manifests
//! children first, then the index, then tags; anonymous, Basic and Bearer-token auth. Read-only
//! pulls of digest-pinned base images live in `pull.rs`.

mod auth;
mod credentials;
mod layout;
mod pull;
mod yank;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use castoff_archive::oci::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPES};
use reqwest::blocking::Response;
use reqwest::{Method, StatusCode, Url};

pub use auth::{Challenge, parse_www_authenticate};
pub use castoff_archive::oci::{Descriptor, Digest};
pub use credentials::{DockerConfig, resolve_credentials, unbound_variables_note};
pub use layout::{ManifestBlob, OciLayout};
pub use pull::PinnedReference;

use crate::error::{RegistryError, display_url};
use crate::http::{
    Authorization, Body, HttpClient, Payload, Request, UploadProgress, auth_hint, header,
    status_error,
};
use crate::secret::Secret;
use crate::source::{CredentialSource, SentCredentials};
use crate::{RemoteState, UploadKind, UploadOutcome};

/// Longest a token server's `expires_in` is believed: a token is fetched again after an
/// hour at the latest, and an absurd lifetime (`u64::MAX`) cannot overflow the expiry instant.
const MAX_TOKEN_LIFETIME_SECS: u64 = 3600;

const HOW_TO_LOG_IN: &str = "log in with `docker login <registry>` (Docker config.json / credential helpers), set CASTOFF_OCI_USERNAME and CASTOFF_OCI_PASSWORD (the push registry) or CASTOFF_OCI_USERNAME_<HOST> and CASTOFF_OCI_PASSWORD_<HOST> (any registry), or use GITHUB_TOKEN for ghcr.io in GitHub Actions";

/// A repository in a registry: `https://ghcr.io` + `acme/greeter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRepository {
    /// `scheme://host[:port]/`: https until a probe says otherwise ([`RegistryScheme`]).
    pub registry: Url,
    pub name: String,
    /// Whether `registry`'s scheme is settled or left to a probe.
    pub scheme: RegistryScheme,
}

/// How an [`OciRepository`]'s scheme is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryScheme {
    /// Written in the reference (`https://`, `http://`), or https for a host that is not
    /// loopback.
    Settled,
    /// A loopback host written without a scheme: Docker's rule for its insecure registries,
    /// https when a TLS server answers there, else plain http at `http` (the host as written,
    /// so a port written is kept and none means http's own). The client's first request
    /// probes it, once per run ([`crate::HttpClient`] remembers the answer).
    HttpsElseHttp { http: Url },
}

impl OciRepository {
    /// `ghcr.io/acme/app`; `127.0.0.1:5000/team/app` (a loopback host without a scheme:
    /// https if a TLS server answers there, else http, as Docker does for its built-in
    /// insecure range; [`RegistryScheme::HttpsElseHttp`]); or with an explicit `http://` /
    /// `https://`. `docker.io/x` is Docker Hub's API host, single names get `library/`.
    pub fn parse(reference: &str) -> Result<OciRepository, RegistryError> {
        let fail = |message: &str| RegistryError::Config {
            what: format!("image repository `{reference}`"),
            message: message.to_owned(),
            hint: "write it as host/name, e.g. ghcr.io/acme/greeter".to_owned(),
        };
        let (scheme, rest) = match reference.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, reference),
        };
        if rest
            .split('/')
            .next()
            .is_some_and(|host| host.contains('@'))
        {
            return Err(RegistryError::Config {
                what: "image repository `<redacted>@…`".to_owned(),
                message: "credentials written into the repository are refused (they would show in logs and process lists)".to_owned(),
                hint: "pass the repository as host/name and the credentials through CASTOFF_OCI_USERNAME/CASTOFF_OCI_PASSWORD (the push registry), CASTOFF_OCI_USERNAME_<HOST>/CASTOFF_OCI_PASSWORD_<HOST>, or docker's config.json".to_owned(),
            });
        }
        let (host, name) = rest
            .split_once('/')
            .ok_or_else(|| fail("no repository name after the host"))?;

        let name = name.trim_matches('/');
        let (host, name) = match host {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => (
                "registry-1.docker.io",
                if name.contains('/') {
                    name.to_owned()
                } else {
                    format!("library/{name}")
                },
            ),
            _ => (host, name.to_owned()),
        };
        if name.is_empty()
            || name
                .bytes()
                .any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)))
        {
            return Err(fail(
                "repository names use lower-case letters, digits and . _ - / only",
            ));
        }
        let http = Url::parse(&format!("http://{host}/")).map_err(|_| fail("invalid host"))?;
        let (registry_scheme, scheme) = match scheme {
            Some(scheme) => (RegistryScheme::Settled, scheme),
            None if crate::http::is_loopback(&http) => {
                (RegistryScheme::HttpsElseHttp { http }, "https")
            }
            None => (RegistryScheme::Settled, "https"),
        };
        let registry =
            Url::parse(&format!("{scheme}://{host}/")).map_err(|_| fail("invalid host"))?;
        Ok(OciRepository {
            registry,
            name,
            scheme: registry_scheme,
        })
    }

    /// `host[:port]`, the key of credential stores.
    pub fn host(&self) -> String {
        match self.registry.port() {
            Some(port) => format!("{}:{port}", self.registry.host_str().unwrap_or("")),
            None => self.registry.host_str().unwrap_or("").to_owned(),
        }
    }
}

/// Registry credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciCredentials {
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in config.json, helper user `<token>`).
    IdentityToken(Secret),
}

/// How blobs are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// Other repositories of the same registry that may already hold the blobs: tried with a
    /// cross-repository mount before uploading.
    pub mount_from: Vec<String>,
    /// Blobs larger than this go in chunks (PATCH); smaller ones in one PUT.
    pub chunk_threshold: u64,
    /// Chunk size; at most 4 MiB because GHCR refuses larger PATCH bodies, raised to the
    /// registry's `OCI-Chunk-Min-Length` when that is larger.
    pub chunk_size: u64,
}

impl PushOptions {
    /// Caps every request body at `max_body` bytes: blobs larger than it go in chunks of at
    /// most that size (still raised to the registry's `OCI-Chunk-Min-Length`).
    pub fn with_max_body(self, max_body: u64) -> PushOptions {
        let max_body = max_body.max(1);
        PushOptions {
            chunk_threshold: self.chunk_threshold.min(max_body),
            chunk_size: self.chunk_size.min(max_body),
            ..self
        }
    }
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            mount_from: Vec::new(),
            chunk_threshold: 32 * 1024 * 1024,
            chunk_size: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
enum Scheme {
    /// No request answered 401 yet.
    Unknown,
    Basic,
    Bearer {
        realm: Url,
        service: Option<String>,
    },
}

#[derive(Debug)]
struct AuthState {
    scheme: Scheme,
    token: Option<(Secret, Instant)>,
}

/// Pushes to one repository.
#[derive(Debug)]
pub struct OciClient {
    http: HttpClient,
    repository: OciRepository,
    credentials: OciCredentials,
    options: PushOptions,
    /// Scopes asked of a token server: push first ("a few registries just look at the first
    /// scope"), then pull on every mount source.
    scopes: Vec<String>,
    state: Mutex<AuthState>,
    /// Where the credentials came from, named when the registry refuses them.
    credential_source: Option<CredentialSource>,
    /// The registry's base URL with its scheme settled, on the first request
    /// ([`OciClient::registry`]).
    registry: std::sync::OnceLock<Url>,
    /// Whether the registry answers the referrers API, once it answered
    /// ([`OciClient::referrers_api`]): a property of the registry, asked once per run.
    referrers_api: std::sync::OnceLock<bool>,
    /// Blobs (by digest) this repository is known to hold, this run: the registry took them
    /// (upload, mount) or said so (HEAD). None is asked about again ([`OciClient::push_blob`]).
    present_blobs: Mutex<std::collections::HashSet<String>>,
    /// Manifests (by digest) this client pushed this run: an index's push finds the platforms
    /// just pushed without a HEAD each ([`OciClient::manifest_state`]).
    pushed_manifests: Mutex<std::collections::HashSet<String>>,
}

impl OciClient {
    pub fn new(
        http: &HttpClient,
        repository: OciRepository,
        credentials: OciCredentials,
        options: PushOptions,
    ) -> Result<OciClient, RegistryError> {
        http.check_url(&repository.registry, "registry")?;
        let mut scopes = vec![format!("repository:{}:pull,push", repository.name)];
        scopes.extend(
            options
                .mount_from
                .iter()
                .filter(|source| **source != repository.name)
                .map(|source| format!("repository:{source}:pull")),
        );
        Ok(OciClient {
            http: http.clone(),
            repository,
            credentials,
            options,
            scopes,
            state: Mutex::new(AuthState {
                scheme: Scheme::Unknown,
                token: None,
            }),
            credential_source: None,
            registry: std::sync::OnceLock::new(),
            referrers_api: std::sync::OnceLock::new(),
            present_blobs: Mutex::default(),
            pushed_manifests: Mutex::default(),
        })
    }

    /// The registry's base URL for requests. A loopback registry written without a scheme
    /// is probed here, on the first request, not when the client is made (a client that
    /// sends nothing opens no connection): https when a TLS server answers, else http
    /// ([`RegistryScheme::HttpsElseHttp`]), the same for every client of the run. http is
    /// chosen for loopback hosts only, which [`HttpClient::check_url`] allows.
    fn registry(&self) -> &Url {
        self.registry.get_or_init(|| match &self.repository.scheme {
            RegistryScheme::Settled => self.repository.registry.clone(),
            RegistryScheme::HttpsElseHttp { http } => {
                match self.http.loopback_scheme(&self.repository.host()) {
                    "http" => http.clone(),
                    _ => self.repository.registry.clone(),
                }
            }
        })
    }

    /// The client, naming `source` as where its credentials came from when the registry
    /// refuses them.
    pub fn with_credential_source(self, source: Option<CredentialSource>) -> OciClient {
        OciClient {
            credential_source: source,
            ..self
        }
    }

    /// The credentials this client sends, for a refusal's hint.
    fn sent_credentials(&self) -> SentCredentials<'_> {
        SentCredentials::of(
            !matches!(self.credentials, OciCredentials::Anonymous),
            self.credential_source.as_ref(),
        )
    }

    pub fn repository(&self) -> &OciRepository {
        &self.repository
    }

    fn url(&self, path: &str) -> Url {
        self.registry()
            .join(&format!("v2/{}/{path}", self.repository.name))
            .expect("valid repository path")
    }

    fn artifact(&self, what: &str) -> String {
        format!("{}/{}{what}", self.repository.host(), self.repository.name)
    }

    /// The `Authorization` for the next request: Basic once the registry asked for it, a
    /// cached unexpired Bearer token, or a fresh one from the token server.
    fn authorization(&self, artifact: &str) -> Result<Option<Authorization>, RegistryError> {
        let mut state = self.state.lock().expect("auth state lock");
        let origin = self.registry();
        match state.scheme.clone() {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => Ok(match &self.credentials {
                OciCredentials::Basic { username, password } => {
                    Some(Authorization::basic(origin, username, password))
                }
                _ => None,
            }),
            Scheme::Bearer { realm, service } => {
                if let Some((token, expires)) = &state.token
                    && Instant::now() < *expires
                {
                    return Ok(Some(Authorization::bearer(origin, token)));
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), artifact)?;
                // Renew a little early: a token that expires between check and use is a 401.
                // `lifetime` is capped where it is read, so this cannot overflow.
                let expires = Instant::now()
                    + lifetime
                        .saturating_sub(Duration::from_secs(10))
                        .max(Duration::from_secs(1));
                state.token = Some((token.clone(), expires));
                Ok(Some(Authorization::bearer(origin, &token)))
            }
        }
    }

    /// Learns from a 401's challenges; `true` when a retry with new auth makes sense.
    fn learn(&self, response: &Response) -> bool {
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(parse_www_authenticate)
            .collect();
        let mut state = self.state.lock().expect("auth state lock");
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let Some(realm) = bearer
                .params
                .get("realm")
                .and_then(|realm| Url::parse(realm).ok())
            else {
                return false;
            };
            state.scheme = Scheme::Bearer {
                realm,
                service: bearer.params.get("service").cloned(),
            };
            // The token expired or lacks a scope: fetch a new one.
            state.token = None;
            return true;
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let changed = !matches!(state.scheme, Scheme::Basic);
            state.scheme = Scheme::Basic;
            return changed && matches!(self.credentials, OciCredentials::Basic { .. });
        }
        false
    }

    /// `GET <realm>?service=…&scope=…` (Basic with the credentials when there are any), or the
    /// OAuth2 refresh-token POST for identity tokens.
    fn fetch_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        artifact: &str,
    ) -> Result<(Secret, Duration), RegistryError> {
        self.http.check_url(realm, "token realm")?;
        let mut url = realm.clone();
        let response = match &self.credentials {
            OciCredentials::IdentityToken(refresh) => {
                let mut pairs: Vec<(&str, &str)> =
                    vec![("grant_type", "refresh_token"), ("client_id", "castoff")];
                if let Some(service) = service {
                    pairs.push(("service", service));
                }
                for scope in &self.scopes {
                    pairs.push(("scope", scope));
                }
                pairs.push(("refresh_token", refresh.expose()));
                let form = url::form_urlencoded_pairs(&pairs);
                let request = Request::new(Method::POST, url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(Body::Bytes(form.into_bytes()));
                self.http.send_simple(&request, artifact)?.0
            }
            credentials => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in &self.scopes {
                        query.append_pair("scope", scope);
                    }
                }
                let auth = match credentials {
                    OciCredentials::Basic { username, password } => {
                        Some(Authorization::basic(&url, username, password))
                    }
                    _ => None,
                };
                let request = Request::new(Method::GET, url.clone())
                    .header("Accept", "application/json")
                    .auth(auth.as_ref());
                self.http.send_simple(&request, artifact)?.0
            }
        };
        if !response.status().is_success() {
            let hint = auth_hint(response.status(), self.sent_credentials(), HOW_TO_LOG_IN);
            return Err(status_error(
                artifact,
                &Method::GET,
                realm,
                response,
                format!("the token server refused a token: {hint}"),
            ));
        }
        let body = crate::http::read_answer(response, 64 * 1024, artifact, &Method::GET, realm)?;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let token = json
            .get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|v| v.as_str())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                artifact: artifact.to_owned(),
                url: display_url(realm),
                message: "the token server's answer has neither `token` nor `access_token`"
                    .to_owned(),
                hint: "check the registry's token service".to_owned(),
            })?;
        let lifetime = json
            .get("expires_in")
            .and_then(|v| v.as_u64())
            .unwrap_or(60)
            .min(MAX_TOKEN_LIFETIME_SECS);
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }

    /// Sends a request built for the current auth; on 401 learns the challenge and sends once
    /// more (this is also how an expired token is refreshed mid-push). `retry`: use the retry
    /// policy (idempotent requests) or a single attempt (the caller resumes itself).
    fn execute<'b>(
        &self,
        artifact: &str,
        retry: bool,
        build: &dyn Fn(Option<&Authorization>) -> Request<'b>,
    ) -> Result<Response, RegistryError> {
        let mut relearned = false;
        loop {
            let auth = self.authorization(artifact)?;
            let request = build(auth.as_ref());
            let response = if retry {
                self.http.send_simple(&request, artifact)?.0
            } else {
                self.http.send_single(&request, artifact)?
            };
            if response.status() == StatusCode::UNAUTHORIZED && !relearned && self.learn(&response)
            {
                relearned = true;
                continue;
            }
            return Ok(response);
        }
    }

    fn error(
        &self,
        artifact: &str,
        method: &Method,
        url: &Url,
        response: Response,
        hint: &str,
    ) -> RegistryError {
        let status = response.status();
        let hint = match status.as_u16() {
            401 | 403 => auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN),
            _ => hint.to_owned(),
        };
        status_error(artifact, method, url, response, hint)
    }

    /// Preflight: `GET /v2/` with the credentials and, for token registries, a token whose
    /// claims grant `push` on the repository (token servers grant what they can and stay
    /// silent about the rest, so without this check a missing permission shows up mid-push).
    pub fn preflight(&self) -> Result<(), RegistryError> {
        let artifact = self.artifact("");
        let url = self.registry().join("v2/").expect("static path");
        let response = self.execute(&artifact, true, &|auth| {
            Request::new(Method::GET, url.clone()).auth(auth)
        })?;
        if !response.status().is_success() {
            return Err(self.error(
                &artifact,
                &Method::GET,
                &url,
                response,
                "check the registry URL",
            ));
        }
        let state = self.state.lock().expect("auth state lock");
        if let Some((token, _)) = &state.token
            && let Some(actions) = jwt_actions(token.expose(), &self.repository.name)
            && !actions
                .iter()
                .any(|action| action == "push" || action == "*")
        {
            return Err(RegistryError::Status {
                artifact,
                method: "GET".to_owned(),
                url: display_url(&url),
                status: 403,
                explanation: format!(
                    "the registry's token grants {:?} on {}, not push",
                    actions, self.repository.name
                ),
                hint: auth_hint(
                    StatusCode::FORBIDDEN,
                    self.sent_credentials(),
                    HOW_TO_LOG_IN,
                ),
            });
        }
        Ok(())
    }

    /// `HEAD /v2/<name>/blobs/<digest>`.
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.exists(
            &format!("blobs/{digest}"),
            &self.artifact(&format!("@{digest}")),
        )
    }

    fn exists(&self, path: &str, artifact: &str) -> Result<bool, RegistryError> {
        let url = self.url(path);
        let response = self.execute(artifact, true, &|auth| {
            Request::new(Method::HEAD, url.clone())
                .header("Accept", MANIFEST_MEDIA_TYPES.join(", "))
                .auth(auth)
        })?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.error(
                artifact,
                &Method::HEAD,
                &url,
                response,
                "check the repository name",
            )),
        }
    }

    /// The digest a manifest reference (tag or digest) resolves to, `None` when absent.
    pub fn resolve(&self, reference: &str) -> Result<Option<Digest>, RegistryError> {
        Ok(self.fetch_manifest(reference)?.map(|(digest, _)| digest))
    }

    /// `GET /v2/<name>/manifests/<reference>` → (digest of the bytes served, bytes). The
    /// digest is computed, not taken from `Docker-Content-Digest`, which must agree.
    fn fetch_manifest(&self, reference: &str) -> Result<Option<(Digest, Vec<u8>)>, RegistryError> {
        // An answer whose body breaks off (a reset mid-answer) is asked for again, like a
        // request that failed before its answer (`HttpClient::send`'s retries).
        let retry = &self.http.config().retry;
        let mut attempt = 1;
        loop {
            match self.fetch_manifest_once(reference) {
                Err((_, true)) if attempt < retry.max_attempts => {
                    std::thread::sleep(retry.delay(attempt, None));
                    attempt += 1;
                }
                Err((error, _)) => return Err(error),
                Ok(found) => return Ok(found),
            }
        }
    }

    /// One [`OciClient::fetch_manifest`]; an error says whether the body broke off.
    #[allow(clippy::type_complexity)]
    fn fetch_manifest_once(
        &self,
        reference: &str,
    ) -> Result<Option<(Digest, Vec<u8>)>, (RegistryError, bool)> {
        let artifact = self.artifact(&format!(":{reference}"));
        let url = self.url(&format!("manifests/{reference}"));
        let response = self
            .execute(&artifact, true, &|auth| {
                Request::new(Method::GET, url.clone())
                    .header("Accept", MANIFEST_MEDIA_TYPES.join(", "))
                    .auth(auth)
            })
            .map_err(|error| (error, false))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err((
                self.error(
                    &artifact,
                    &Method::GET,
                    &url,
                    response,
                    "check the repository name",
                ),
                false,
            ));
        }
        let claimed = header(&response, "docker-content-digest");
        let mut bytes = Vec::new();
        response
            .take(4 * 1024 * 1024)
            .read_to_end(&mut bytes)
            .map_err(|error| {
                let error = RegistryError::Protocol {
                    artifact: artifact.clone(),
                    url: display_url(&url),
                    message: format!("cannot read the manifest: {error}"),
                    hint: "run publish again".to_owned(),
                };
                (error, true)
            })?;
        let digest = Digest::of(&bytes);
        if let Some(claimed) = claimed.filter(|claimed| claimed != digest.as_str()) {
            return Err((
                RegistryError::Verify {
                    artifact,
                    url: display_url(&url),
                    expected: format!("Docker-Content-Digest {claimed}"),
                    found: format!("bytes hashing to {digest}"),
                    hint: "the registry serves inconsistent data; check its storage".to_owned(),
                },
                false,
            ));
        }
        Ok(Some((digest, bytes)))
    }

    /// State of a manifest or index pushed by digest: present → identical (a digest names
    /// its content), else absent.
    pub fn manifest_state(&self, digest: &Digest) -> Result<RemoteState, RegistryError> {
        if self
            .pushed_manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest.as_str())
        {
            return Ok(RemoteState::Identical);
        }
        let present = self.exists(
            &format!("manifests/{digest}"),
            &self.artifact(&format!("@{digest}")),
        )?;
        Ok(if present {
            RemoteState::Identical
        } else {
            RemoteState::Absent
        })
    }

    /// State of a tag: absent; identical when it points at `expected`; elsewhere → a conflict
    /// for a version tag, replaceable for a floating one (`latest`, `1.2`) that moves on
    /// purpose.
    pub fn tag_state(
        &self,
        tag: &str,
        expected: &Digest,
        floating: bool,
    ) -> Result<RemoteState, RegistryError> {
        Ok(match self.resolve(tag)? {
            None => RemoteState::Absent,
            Some(digest) if &digest == expected => RemoteState::Identical,
            Some(digest) if floating => RemoteState::Replaceable {
                remote: digest.to_string(),
            },
            Some(digest) => RemoteState::Conflict {
                local: expected.to_string(),
                remote: digest.to_string(),
            },
        })
    }

    /// Pushes a manifest or index and everything below it, by digest: blobs (HEAD, mount,
    /// upload), child manifests first, the manifest itself last. Tags are separate
    /// ([`OciClient::tag`]). Already-present parts are skipped.
    pub fn push(
        &self,
        layout: &OciLayout,
        digest: &Digest,
    ) -> Result<UploadOutcome, RegistryError> {
        self.push_with_progress(layout, digest, &UploadProgress::none())
    }

    /// [`OciClient::push`], reporting the bytes of the blobs it uploads to `progress` as they
    /// are sent (blobs already present or mounted, and the manifests, are not counted).
    pub fn push_with_progress(
        &self,
        layout: &OciLayout,
        digest: &Digest,
        progress: &UploadProgress,
    ) -> Result<UploadOutcome, RegistryError> {
        if self.manifest_state(digest)? == RemoteState::Identical {
            return Ok(UploadOutcome {
                kind: UploadKind::AlreadyPresent,
                attempts: 1,
                bytes: 0,
            });
        }
        self.push_absent(layout, digest, progress)
    }

    /// [`OciClient::push_with_progress`] of a manifest the registry was just asked about and
    /// lacked (publish's questions): it is not asked again, a round trip on the way to the
    /// release's end. Pushed anyway if someone else pushed it meanwhile: the same bytes under
    /// the same digest.
    pub fn push_absent(
        &self,
        layout: &OciLayout,
        digest: &Digest,
        progress: &UploadProgress,
    ) -> Result<UploadOutcome, RegistryError> {
        let manifest = layout.manifest(digest)?;
        // An index's platforms, and a manifest's blobs, go up side by side: each is a few
        // round trips that wait for nothing but the network (ARCHITECTURE.md, Publishing).
        let mut bytes = if manifest.is_index() {
            in_parallel(&manifest.children, |child| {
                self.push_with_progress(layout, &child.digest, progress)
                    .map(|outcome| outcome.bytes)
            })?
        } else {
            self.push_blobs_of(layout, &manifest, progress)?
        };
        bytes += self.put_manifest(&manifest, digest.as_str())?;
        self.pushed_manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.as_str().to_owned());
        Ok(UploadOutcome {
            kind: UploadKind::Uploaded,
            attempts: 1,
            bytes,
        })
    }

    /// The blobs of the image manifest `digest` (an index has none of its own), side by
    /// side, without the manifest: a registry serves nothing new until a manifest names them,
    /// so they may go before the steps the manifest waits for (publish's head starts,
    /// ARCHITECTURE.md). The manifest's push later finds them present without asking.
    pub fn push_blobs(
        &self,
        layout: &OciLayout,
        digest: &Digest,
        progress: &UploadProgress,
    ) -> Result<u64, RegistryError> {
        let manifest = layout.manifest(digest)?;
        if manifest.is_index() {
            return Ok(0);
        }
        self.push_blobs_of(layout, &manifest, progress)
    }

    /// An image manifest's blobs, side by side; the bytes sent.
    fn push_blobs_of(
        &self,
        layout: &OciLayout,
        manifest: &ManifestBlob,
        progress: &UploadProgress,
    ) -> Result<u64, RegistryError> {
        in_parallel(&manifest.blobs, |blob| {
            self.push_blob(layout, blob, progress)
        })
    }

    fn known_present(&self, digest: &Digest) -> bool {
        self.present_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest.as_str())
    }

    fn remember_present(&self, digest: &Digest) {
        self.present_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.as_str().to_owned());
    }

    /// Points `tag` at an already pushed manifest or index (PUT of the same bytes).
    pub fn tag(
        &self,
        layout: &OciLayout,
        digest: &Digest,
        tag: &str,
    ) -> Result<UploadOutcome, RegistryError> {
        let manifest = layout.manifest(digest)?;
        let bytes = self.put_manifest(&manifest, tag)?;
        Ok(UploadOutcome {
            kind: UploadKind::Uploaded,
            attempts: 1,
            bytes,
        })
    }

    /// Whether the registry answers the OCI 1.1 referrers API (distribution 2.8 and GHCR do
    /// not: 404 or another 4xx), asked about `subject` the first time, then remembered: each
    /// SBOM attachment would otherwise ask it again, in its push and in its read-back, a round
    /// trip each on the way to the release's end.
    fn referrers_api(&self, subject: &Digest) -> Result<bool, RegistryError> {
        if let Some(known) = self.referrers_api.get() {
            return Ok(*known);
        }
        let answer = self.ask_referrers_api(subject)?;
        Ok(*self.referrers_api.get_or_init(|| answer))
    }

    fn ask_referrers_api(&self, subject: &Digest) -> Result<bool, RegistryError> {
        let artifact = self.artifact(&format!("@{subject} referrers"));
        let url = self.url(&format!("referrers/{subject}"));
        let response = self.execute(&artifact, true, &|auth| {
            Request::new(Method::GET, url.clone())
                .header("Accept", INDEX_MEDIA_TYPE)
                .auth(auth)
        })?;
        let index_served = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(INDEX_MEDIA_TYPE));
        Ok(response.status().is_success() && index_served)
    }

    /// The tag of the referrers fallback index for `subject` (OCI distribution spec 1.1).
    fn referrers_tag(subject: &Digest) -> String {
        format!("sha256-{}", subject.hex())
    }

    /// The descriptors listed in the fallback index of `subject`, if it exists.
    fn fallback_referrers(
        &self,
        subject: &Digest,
    ) -> Result<Vec<serde_json::Value>, RegistryError> {
        let Some((_, bytes)) = self.fetch_manifest(&Self::referrers_tag(subject))? else {
            return Ok(Vec::new());
        };
        let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(index
            .get("manifests")
            .and_then(|list| list.as_array())
            .cloned()
            .unwrap_or_default())
    }

    /// State of an artifact attached to `subject`: identical when the artifact is there *and*
    /// findable as a referrer (through the API, or listed in the fallback index).
    pub fn referrer_state(
        &self,
        subject: &Digest,
        artifact: &Digest,
    ) -> Result<RemoteState, RegistryError> {
        if self.manifest_state(artifact)? == RemoteState::Absent {
            return Ok(RemoteState::Absent);
        }
        self.referrer_listed(subject, artifact)
    }

    /// Whether `artifact`, known to be in the repository, is findable as a referrer of
    /// `subject`: the registry indexes it (referrers API), or the fallback index lists it.
    pub fn referrer_listed(
        &self,
        subject: &Digest,
        artifact: &Digest,
    ) -> Result<RemoteState, RegistryError> {
        if self.referrers_api(subject)? {
            return Ok(RemoteState::Identical);
        }
        let listed = self
            .fallback_referrers(subject)?
            .iter()
            .any(|entry| entry.get("digest").and_then(|d| d.as_str()) == Some(artifact.as_str()));
        Ok(if listed {
            RemoteState::Identical
        } else {
            RemoteState::Absent
        })
    }

    /// Pushes `artifact` (a manifest whose `subject` is `subject`) and makes it findable: a
    /// registry with the referrers API indexes it by itself; for the others the fallback index
    /// tagged `sha256-<hex of subject>` gains its descriptor (sorted by digest, so the index
    /// is the same whoever writes it).
    pub fn attach_referrer(
        &self,
        layout: &OciLayout,
        subject: &Digest,
        artifact: &Digest,
    ) -> Result<UploadOutcome, RegistryError> {
        let mut outcome = self.push_absent(layout, artifact, &UploadProgress::none())?;
        if self.referrers_api(subject)? {
            return Ok(outcome);
        }
        let manifest = layout.manifest(artifact)?;
        let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
        let mut descriptor = serde_json::json!({
            "mediaType": manifest.media_type,
            "digest": artifact.as_str(),
            "size": manifest.bytes.len(),
        });
        if let Some(artifact_type) = parsed.get("artifactType") {
            descriptor["artifactType"] = artifact_type.clone();
        }
        if let Some(annotations) = parsed.get("annotations") {
            descriptor["annotations"] = annotations.clone();
        }
        let mut referrers = self.fallback_referrers(subject)?;
        if referrers
            .iter()
            .any(|entry| entry.get("digest").and_then(|d| d.as_str()) == Some(artifact.as_str()))
        {
            return Ok(outcome);
        }
        referrers.push(descriptor);
        referrers.sort_by(|a, b| {
            let key = |entry: &serde_json::Value| {
                entry
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            key(a).cmp(&key(b))
        });
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": referrers,
        });
        let bytes = serde_json::to_vec(&index).map_err(|error| RegistryError::Protocol {
            artifact: self.artifact(&format!("@{subject} referrers")),
            url: display_url(&self.url("manifests/")),
            message: error.to_string(),
            hint: "run publish again".to_owned(),
        })?;
        let fallback = ManifestBlob {
            digest: Digest::of(&bytes),
            media_type: INDEX_MEDIA_TYPE.to_owned(),
            bytes,
            children: Vec::new(),
            blobs: Vec::new(),
        };
        outcome.bytes += self.put_manifest(&fallback, &Self::referrers_tag(subject))?;
        outcome.kind = UploadKind::Uploaded;
        Ok(outcome)
    }

    /// After a push: the reference (tag or digest) serves exactly `expected`.
    pub fn verify(&self, reference: &str, expected: &Digest) -> Result<(), RegistryError> {
        let found = self.fetch_manifest(reference)?;
        match found {
            Some((digest, _)) if &digest == expected => Ok(()),
            other => Err(RegistryError::Verify {
                artifact: self.artifact(&format!(":{reference}")),
                url: display_url(&self.url(&format!("manifests/{reference}"))),
                expected: expected.to_string(),
                found: other.map_or_else(|| "nothing (404)".to_owned(), |(digest, _)| digest.to_string()),
                hint: "another push may have moved the tag meanwhile; run publish again to see the state".to_owned(),
            }),
        }
    }

    fn put_manifest(&self, manifest: &ManifestBlob, reference: &str) -> Result<u64, RegistryError> {
        let artifact = self.artifact(&format!(":{reference}"));
        let url = self.url(&format!("manifests/{reference}"));
        let response = self.execute(&artifact, true, &|auth| {
            Request::new(Method::PUT, url.clone())
                .header("Content-Type", manifest.media_type.clone())
                .auth(auth)
                .body(Body::Bytes(manifest.bytes.clone()))
        })?;
        if !response.status().is_success() {
            return Err(self.error(&artifact, &Method::PUT, &url, response, "MANIFEST_BLOB_UNKNOWN means a blob or child manifest is missing: push them first (publish does)"));
        }
        if let Some(claimed) = header(&response, "docker-content-digest")
            .filter(|claimed| claimed != manifest.digest.as_str())
        {
            return Err(RegistryError::Verify {
                artifact,
                url: display_url(&url),
                expected: manifest.digest.to_string(),
                found: claimed,
                hint: "the registry rewrote the manifest (some convert media types); push to a registry that stores manifests as sent".to_owned(),
            });
        }
        Ok(manifest.bytes.len() as u64)
    }

    /// One blob: skip when present, mount when another repository has it, else upload.
    /// Returns the bytes sent.
    fn push_blob(
        &self,
        layout: &OciLayout,
        blob: &Descriptor,
        progress: &UploadProgress,
    ) -> Result<u64, RegistryError> {
        let artifact = self.artifact(&format!("@{}", blob.digest));
        // One push of a blob to a repository at a time: images pushed side by side share
        // blobs (the empty config of every SBOM attachment, a files layer), and the second of
        // two uploads of the same blob racing to completion left distribution without the
        // blob when the manifest naming it arrived (MANIFEST_BLOB_UNKNOWN). The second waits,
        // then finds the blob present.
        let _pushing = InFlight::claim(self.url(&format!("blobs/{}", blob.digest)).to_string());
        if self.known_present(&blob.digest) || self.blob_exists(&blob.digest)? {
            self.remember_present(&blob.digest);
            return Ok(0);
        }
        let path = layout.blob_path(&blob.digest);
        let size = std::fs::metadata(&path)
            .map_err(|error| {
                RegistryError::artifact_file(
                    &path,
                    format!("cannot read: {error}"),
                    "the image layout is incomplete: rebuild it",
                )
            })?
            .len();
        if size != blob.size {
            return Err(RegistryError::artifact_file(
                &path,
                format!("{size} bytes, but the manifest says {}", blob.size),
                "the image layout changed since `castoff dist`: rebuild it",
            ));
        }
        // One counter for every attempt: a retry is not counted twice.
        let payload = progress.payload();
        let mut attempt = 1;
        loop {
            match self.upload_blob_once(layout, blob, &artifact, &payload) {
                Ok(sent) => {
                    self.remember_present(&blob.digest);
                    return Ok(sent);
                }
                Err(error)
                    if attempt < self.http.config().retry.max_attempts
                        && (is_retryable(&error) || upload_session_lost(&error)) =>
                {
                    std::thread::sleep(self.http.config().retry.delay(attempt, None));
                    // The failed attempt may have completed the upload.
                    if self.blob_exists(&blob.digest)? {
                        self.remember_present(&blob.digest);
                        return Ok(0);
                    }
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn upload_blob_once(
        &self,
        layout: &OciLayout,
        blob: &Descriptor,
        artifact: &str,
        payload: &Payload,
    ) -> Result<u64, RegistryError> {
        let uploads = self.url("blobs/uploads/");
        // Cross-repository mount: 201 = done; 202 = not mounted, but an upload session.
        let mut session = None;
        for source in self
            .options
            .mount_from
            .iter()
            .filter(|source| **source != self.repository.name)
        {
            let mut url = uploads.clone();
            url.query_pairs_mut()
                .append_pair("mount", blob.digest.as_str())
                .append_pair("from", source);
            let response = self.execute(artifact, false, &|auth| {
                Request::new(Method::POST, url.clone())
                    .header("Content-Length", "0")
                    .auth(auth)
            })?;
            match response.status() {
                StatusCode::CREATED => return Ok(0),
                StatusCode::ACCEPTED => {
                    session = Some(self.session(&url, &response, artifact)?);
                    break;
                }
                _ => continue,
            }
        }
        let (location, min_chunk) = match session {
            Some(session) => session,
            None => {
                let response = self.execute(artifact, false, &|auth| {
                    Request::new(Method::POST, uploads.clone())
                        .header("Content-Length", "0")
                        .auth(auth)
                })?;
                if response.status() != StatusCode::ACCEPTED {
                    return Err(self.error(
                        artifact,
                        &Method::POST,
                        &uploads,
                        response,
                        "the registry refused to start an upload; check the repository name",
                    ));
                }
                self.session(&uploads, &response, artifact)?
            }
        };
        let path = layout.blob_path(&blob.digest);
        if blob.size <= self.options.chunk_threshold {
            self.finish(
                location,
                &blob.digest,
                artifact,
                Some((&path, blob.size, payload)),
            )?;
        } else {
            let chunk = self.options.chunk_size.max(min_chunk).max(1);
            let location =
                self.upload_chunks(location, &path, blob.size, chunk, artifact, payload)?;
            self.finish(location, &blob.digest, artifact, None)?;
        }
        Ok(blob.size)
    }

    /// The upload session's `Location` (relative or absolute, query kept as given) and the
    /// registry's minimum chunk length.
    fn session(
        &self,
        request_url: &Url,
        response: &Response,
        artifact: &str,
    ) -> Result<(Url, u64), RegistryError> {
        let location = header(response, "location")
            .and_then(|location| request_url.join(&location).ok())
            .ok_or_else(|| RegistryError::Protocol {
                artifact: artifact.to_owned(),
                url: display_url(request_url),
                message: "202 without a usable Location header".to_owned(),
                hint: "the registry does not follow the distribution spec".to_owned(),
            })?;
        self.http.check_url(&location, "upload location")?;
        let min_chunk = header(response, "oci-chunk-min-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((location, min_chunk))
    }

    /// `PUT <location>&digest=…`, with the whole blob (monolithic) or empty (after chunks).
    fn finish(
        &self,
        location: Url,
        digest: &Digest,
        artifact: &str,
        body: Option<(&std::path::Path, u64, &Payload)>,
    ) -> Result<(), RegistryError> {
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let response = match body {
            Some((path, length, payload)) => {
                let open_file = || -> std::io::Result<Box<dyn Read + Send>> {
                    Ok(Box::new(payload.reader(0, File::open(path)?)))
                };
                self.execute(artifact, false, &|auth| {
                    Request::new(Method::PUT, url.clone())
                        .header("Content-Type", "application/octet-stream")
                        .auth(auth)
                        .body(Body::Stream {
                            length,
                            open: &open_file,
                        })
                })?
            }
            None => self.execute(artifact, false, &|auth| {
                Request::new(Method::PUT, url.clone())
                    .header("Content-Length", "0")
                    .auth(auth)
            })?,
        };
        if response.status() != StatusCode::CREATED && !response.status().is_success() {
            return Err(self.error(artifact, &Method::PUT, &url, response, "DIGEST_INVALID means the bytes changed on the way or on disk: rebuild and run publish again"));
        }
        Ok(())
    }

    /// PATCH the blob in chunks. After a failed chunk, `GET <location>` tells how much the
    /// registry has (`Range: 0-<last>`), and the upload resumes from there.
    fn upload_chunks(
        &self,
        mut location: Url,
        path: &std::path::Path,
        size: u64,
        chunk: u64,
        artifact: &str,
        payload: &Payload,
    ) -> Result<Url, RegistryError> {
        let mut offset = 0u64;
        let mut failures = 0u32;
        let policy = self.http.config().retry.clone();
        while offset < size {
            let length = chunk.min(size - offset);
            let start = offset;
            let open = move || -> std::io::Result<Box<dyn Read + Send>> {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(start))?;
                Ok(Box::new(payload.reader(start, file.take(length))))
            };
            let url = location.clone();
            let result = self.execute(artifact, false, &|auth| {
                Request::new(Method::PATCH, url.clone())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{start}-{}", start + length - 1))
                    .auth(auth)
                    .body(Body::Stream {
                        length,
                        open: &open,
                    })
            });
            match result {
                Ok(response)
                    if response.status() == StatusCode::ACCEPTED
                        || response.status() == StatusCode::CREATED =>
                {
                    if let Some(next) =
                        header(&response, "location").and_then(|l| url.join(&l).ok())
                    {
                        location = next;
                    }
                    offset = header(&response, "range")
                        .and_then(|range| range_end(&range))
                        .map_or(start + length, |end| end + 1);
                    failures = 0;
                }
                Ok(response)
                    if !(crate::retry::is_retryable_status(response.status())
                        || response.status() == StatusCode::RANGE_NOT_SATISFIABLE)
                        || failures + 1 >= policy.max_attempts =>
                {
                    return Err(self.error(
                        artifact,
                        &Method::PATCH,
                        &url,
                        response,
                        "run publish again: it resumes the upload",
                    ));
                }
                Err(error) if !is_retryable(&error) || failures + 1 >= policy.max_attempts => {
                    return Err(error);
                }
                _ => {
                    failures += 1;
                    std::thread::sleep(policy.delay(failures, None));
                    let (resumed_location, resumed_offset) =
                        self.upload_status(&location, artifact)?;
                    location = resumed_location;
                    offset = resumed_offset;
                }
            }
        }
        Ok(location)
    }

    /// `GET <location>` → (location, bytes the registry holds).
    fn upload_status(&self, location: &Url, artifact: &str) -> Result<(Url, u64), RegistryError> {
        let response = self.execute(artifact, true, &|auth| {
            Request::new(Method::GET, location.clone()).auth(auth)
        })?;
        if !response.status().is_success() {
            return Err(self.error(
                artifact,
                &Method::GET,
                location,
                response,
                "the upload session is gone; run publish again to start over",
            ));
        }
        let next = header(&response, "location")
            .and_then(|l| location.join(&l).ok())
            .unwrap_or_else(|| location.clone());
        // distribution writes `0-0` for an empty session as well as for one byte; chunks are
        // far longer than a byte, so `0-0` means nothing arrived.
        let offset = header(&response, "range")
            .and_then(|range| range_end(&range))
            .map_or(0, |end| if end == 0 { 0 } else { end + 1 });
        Ok((next, offset))
    }
}

/// Blobs being pushed now, by URL (registry, repository, digest); see [`OciClient::push_blob`].
static IN_FLIGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());
static IN_FLIGHT_DONE: std::sync::Condvar = std::sync::Condvar::new();

/// A claim on one blob's push, released on drop (also on an error or a panic).
struct InFlight(String);

impl InFlight {
    /// Waits until no other thread pushes `key`, then claims it.
    fn claim(key: String) -> InFlight {
        let mut pushing = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        while pushing.contains(&key) {
            pushing = IN_FLIGHT_DONE
                .wait(pushing)
                .unwrap_or_else(PoisonError::into_inner);
        }
        pushing.push(key.clone());
        InFlight(key)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut pushing = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        pushing.retain(|key| *key != self.0);
        drop(pushing);
        IN_FLIGHT_DONE.notify_all();
    }
}

/// At most this many blobs or platforms of one manifest are pushed at once.
const PARALLEL_PUSHES: usize = 8;

/// Runs `push` for every item on up to [`PARALLEL_PUSHES`] threads, each taking the next item
/// as soon as it is free (a slow blob holds up no other); the sum of what they sent, or the
/// first error in the items' order. After an error no item starts; the pushes already
/// started finish first.
fn in_parallel<T: Sync>(
    items: &[T],
    push: impl Fn(&T) -> Result<u64, RegistryError> + Sync,
) -> Result<u64, RegistryError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    if let [only] = items {
        return push(only);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<u64, RegistryError>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL_PUSHES.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        // A panic stops the others taking items, like an error; it is raised
                        // again when the scope joins.
                        let result =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| push(item)))
                                .unwrap_or_else(|panic| {
                                    failed.store(true, Ordering::Relaxed);
                                    std::panic::resume_unwind(panic)
                                });
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((index, result));
                    }
                })
            })
            .collect();
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).sum()
}

/// `0-1234` (or `bytes=0-1234`) → 1234.
fn range_end(range: &str) -> Option<u64> {
    range
        .trim()
        .trim_start_matches("bytes=")
        .split_once('-')?
        .1
        .trim()
        .parse()
        .ok()
}

/// A chunked upload's session is gone when the registry answers the status request (`GET`
/// on the upload URL, after a failed chunk) with 404: distribution drops the session when a
/// chunk broke off after some of its bytes were stored (they no longer match the session's
/// state token). The blob is then uploaded again, in a new session.
fn upload_session_lost(error: &RegistryError) -> bool {
    matches!(error, RegistryError::Status { method, status: 404, .. } if method == "GET")
}

fn is_retryable(error: &RegistryError) -> bool {
    match error {
        RegistryError::Transport { reason, .. } => !reason.to_lowercase().contains("certificate"),
        RegistryError::Status { status, .. } => crate::retry::is_retryable_status(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
        ),
        _ => false,
    }
}

/// The actions a registry token's JWT claims grant on `repository` (`None` when the token is
/// not a readable JWT: then the push itself will tell).
fn jwt_actions(token: &str, repository: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let access = claims.get("access")?.as_array()?;
    Some(
        access
            .iter()
            .filter(|entry| {
                entry.get("type").and_then(|v| v.as_str()) == Some("repository")
                    && entry.get("name").and_then(|v| v.as_str()) == Some(repository)
            })
            .flat_map(|entry| {
                entry
                    .get("actions")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|action| action.as_str().map(str::to_owned))
            .collect(),
    )
}

mod url {
    /// `application/x-www-form-urlencoded` pairs.
    pub(super) fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
        let mut url = reqwest::Url::parse("http://x/").expect("static URL");
        url.query_pairs_mut().extend_pairs(pairs);
        url.query().unwrap_or("").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_cap_sends_larger_blobs_in_chunks_of_at_most_the_cap() {
        let options = PushOptions::default().with_max_body(128 * 1024);
        assert_eq!(options.chunk_threshold, 128 * 1024);
        assert_eq!(options.chunk_size, 128 * 1024);
        // A cap above the defaults changes nothing.
        assert_eq!(
            PushOptions::default().with_max_body(1 << 40).chunk_size,
            PushOptions::default().chunk_size
        );
    }

    #[test]
    fn repository_references() {
        let check = |reference: &str, registry: &str, name: &str| {
            let repository = OciRepository::parse(reference).unwrap();
            assert_eq!(
                (repository.registry.as_str(), repository.name.as_str()),
                (registry, name),
                "{reference}"
            );
        };
        check("ghcr.io/acme/greeter", "https://ghcr.io/", "acme/greeter");
        // A loopback host without a scheme: https first, the http URL kept for the probe.
        check(
            "127.0.0.1:5000/team/app",
            "https://127.0.0.1:5000/",
            "team/app",
        );
        check("localhost:5000/app", "https://localhost:5000/", "app");
        for (reference, http) in [
            ("127.0.0.1:5000/team/app", Some("http://127.0.0.1:5000/")),
            ("localhost/app", Some("http://localhost/")),
            ("localhost:443/app", Some("http://localhost:443/")),
            ("[::1]:5000/app", Some("http://[::1]:5000/")),
            ("http://127.0.0.1:5000/team/app", None),
            ("https://127.0.0.1:5000/team/app", None),
            ("ghcr.io/acme/greeter", None),
            ("registry.example:5000/acme/greeter", None),
        ] {
            let scheme = OciRepository::parse(reference).unwrap().scheme;
            let expected = match http {
                Some(http) => RegistryScheme::HttpsElseHttp {
                    http: Url::parse(http).unwrap(),
                },
                None => RegistryScheme::Settled,
            };
            assert_eq!(scheme, expected, "{reference}");
        }
        check(
            "http://127.0.0.1:5000/team/app",
            "http://127.0.0.1:5000/",
            "team/app",
        );
        check(
            "https://127.0.0.1:5443/team/app",
            "https://127.0.0.1:5443/",
            "team/app",
        );
        check(
            "docker.io/alpine",
            "https://registry-1.docker.io/",
            "library/alpine",
        );
        check(
            "docker.io/acme/tool",
            "https://registry-1.docker.io/",
            "acme/tool",
        );
        assert!(OciRepository::parse("ghcr.io").is_err());
        assert!(OciRepository::parse("ghcr.io/Acme/Tool").is_err());
    }

    #[test]
    fn parallel_pushes_sum_in_order_and_stop_starting_after_an_error() {
        let sent = in_parallel(&(1..=20).collect::<Vec<u64>>(), |&n| Ok(n)).unwrap();
        assert_eq!(sent, 210);
        // Item 3 fails; the error of the first failing item in order is the one returned,
        // and at most the pushes already running when it failed start after it.
        let started = Mutex::new(Vec::new());
        let error = in_parallel(&(0..100).collect::<Vec<usize>>(), |&n| {
            started.lock().unwrap().push(n);
            if n == 3 || n == 5 {
                Err(RegistryError::Protocol {
                    artifact: format!("item {n}"),
                    url: String::new(),
                    message: String::new(),
                    hint: String::new(),
                })
            } else {
                std::thread::sleep(Duration::from_millis(20));
                Ok(1)
            }
        })
        .unwrap_err();
        assert!(
            matches!(&error, RegistryError::Protocol { artifact, .. } if artifact == "item 3"),
            "{error:?}"
        );
        let started = started.into_inner().unwrap().len();
        assert!(
            started < 100,
            "every item started after the error: {started}"
        );
    }

    #[test]
    fn ranges_and_token_claims() {
        assert_eq!(range_end("0-4194303"), Some(4_194_303));
        assert_eq!(range_end("bytes=0-9"), Some(9));
        assert_eq!(range_end("junk"), None);
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"access":[{"type":"repository","name":"team/app","actions":["pull"]}]}"#);
        assert_eq!(
            jwt_actions(&format!("h.{claims}.s"), "team/app"),
            Some(vec!["pull".to_owned()])
        );
        assert_eq!(jwt_actions(&format!("h.{claims}.s"), "other"), Some(vec![]));
        assert_eq!(jwt_actions("opaque-token", "team/app"), None);
    }
}
