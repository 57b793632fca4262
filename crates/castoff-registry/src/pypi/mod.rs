//! PyPI's legacy upload API (PyPI, TestPyPI, pypiserver, devpi and other compatible indexes):
//! state from the simple index, multipart upload of every metadata field, verify, Trusted
//! Publishing.

mod index;
mod pypirc;
mod wheel;
mod yank;

use std::fs::File;
use std::sync::{Arc, PoisonError};

use reqwest::blocking::multipart::{Form, Part};
use reqwest::{Method, StatusCode, Url};

pub use index::{
    IndexFile, derive_index_url, normalize_project_name, parse_html_page, parse_json_page,
};
pub use pypirc::{Pypirc, PypircRepository};
pub use wheel::{CoreMetadata, WheelFile};
pub use yank::{IndexKind, Removal, file_project, file_version};

use crate::env::{self, Environment};
use crate::error::{RegistryError, display_url};
use crate::http::{
    Authorization, Body, HttpClient, Payload, Request, RetryDecision, Sent, UploadProgress,
    auth_hint, read_text, status_error,
};
use crate::oidc::{GithubOidc, json_string_field};
use crate::secret::Secret;
use crate::source::{CredentialSource, SentCredentials};
use crate::{RemoteState, UploadKind, UploadOutcome};

/// PyPI's upload URL.
pub const PYPI_UPLOAD_URL: &str = "https://upload.pypi.org/legacy/";
/// TestPyPI's upload URL (alias `testpypi`).
pub const TESTPYPI_UPLOAD_URL: &str = "https://test.pypi.org/legacy/";

/// How to log in to the upload URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PypiCredentials {
    None,
    /// An API token or a minted Trusted Publishing token: user `__token__`.
    Token(Secret),
    /// User name and password (pypiserver, devpi, private indexes; PyPI itself refuses them).
    Password {
        username: String,
        password: Secret,
    },
}

impl PypiCredentials {
    /// Credentials for one upload destination and where they came from, first found wins:
    /// 1. `CASTOFF_PYPI_TOKEN_<KEY>`, else `CASTOFF_PYPI_USERNAME_<KEY>` +
    ///    `CASTOFF_PYPI_PASSWORD_<KEY>`, for the destination `key` (a `python.repositories`
    ///    name such as `testpypi` or a `.pypirc` section, or an upload URL's host;
    ///    [`env::host_qualified`]);
    /// 2. `CASTOFF_PYPI_TOKEN`, else `TWINE_USERNAME` + `TWINE_PASSWORD`, only when
    ///    `sole_destination`: with several indexes, one token is never sent to all of them;
    /// 3. the `.pypirc` repository's username and password (`pypirc`: the section and where
    ///    it was read);
    /// 4. none.
    pub fn resolve(
        environment: &dyn Environment,
        pypirc: Option<(&PypircRepository, &CredentialSource)>,
        key: Option<&str>,
        sole_destination: bool,
    ) -> (PypiCredentials, Option<CredentialSource>) {
        // A user name variable counts as a source only when it was set.
        let with_user = |user_variable: String, password_variable: String| {
            let username = environment.var(&user_variable);
            let names = match &username {
                Some(_) => vec![user_variable, password_variable],
                None => vec![password_variable],
            };
            (
                username.unwrap_or_else(|| "__token__".to_owned()),
                CredentialSource::Variables(names),
            )
        };
        if let Some(key) = key {
            let name = env::host_qualified(env::CASTOFF_PYPI_TOKEN, key);
            if let Some(token) = environment.var(&name) {
                return (
                    PypiCredentials::Token(Secret::new(token)),
                    Some(CredentialSource::Variables(vec![name])),
                );
            }
            let password_name = env::host_qualified(env::CASTOFF_PYPI_PASSWORD, key);
            if let Some(password) = environment.var(&password_name) {
                let (username, source) = with_user(
                    env::host_qualified(env::CASTOFF_PYPI_USERNAME, key),
                    password_name,
                );
                return (
                    PypiCredentials::from_user_password(username, Secret::new(password)),
                    Some(source),
                );
            }
        }
        if sole_destination {
            if let Some(token) = environment.var(env::CASTOFF_PYPI_TOKEN) {
                return (
                    PypiCredentials::Token(Secret::new(token)),
                    Some(CredentialSource::variables([env::CASTOFF_PYPI_TOKEN])),
                );
            }
            if let Some(password) = environment.var(env::TWINE_PASSWORD) {
                let (username, source) = with_user(
                    env::TWINE_USERNAME.to_owned(),
                    env::TWINE_PASSWORD.to_owned(),
                );
                return (
                    PypiCredentials::from_user_password(username, Secret::new(password)),
                    Some(source),
                );
            }
        }
        if let Some((repository, source)) = pypirc
            && let Some(password) = &repository.password
        {
            let username = repository
                .username
                .clone()
                .unwrap_or_else(|| "__token__".to_owned());
            return (
                PypiCredentials::from_user_password(username, password.clone()),
                Some(source.clone()),
            );
        }
        (PypiCredentials::None, None)
    }

    fn from_user_password(username: String, password: Secret) -> PypiCredentials {
        if username == "__token__" {
            PypiCredentials::Token(password)
        } else {
            PypiCredentials::Password { username, password }
        }
    }
}

/// An upload destination: upload URL, the simple index that lists its files, credentials.
#[derive(Debug, Clone)]
pub struct PypiRepository {
    pub upload_url: Url,
    pub index_url: Url,
    pub credentials: PypiCredentials,
}

impl PypiRepository {
    /// `upload_url` may be `pypi` or `testpypi`. Without `index_url` the index is derived
    /// ([`derive_index_url`]); when that is impossible the error asks for `--pypi-index-url`.
    pub fn new(
        upload_url: &str,
        index_url: Option<&str>,
        credentials: PypiCredentials,
    ) -> Result<PypiRepository, RegistryError> {
        let upload_text = match upload_url {
            "pypi" => PYPI_UPLOAD_URL,
            "testpypi" => TESTPYPI_UPLOAD_URL,
            other => other,
        };
        let parse = |text: &str, what: &str| {
            let mut url = Url::parse(text).map_err(|error| RegistryError::Config {
                what: format!("{what} `{text}`"),
                message: format!("not a URL: {error}"),
                hint: "give an absolute http(s) URL such as https://upload.pypi.org/legacy/"
                    .to_owned(),
            })?;
            if !url.path().ends_with('/') {
                // `/legacy` answers 308 and devpi needs the index path with its slash.
                url.set_path(&format!("{}/", url.path()));
            }
            Ok::<Url, RegistryError>(url)
        };
        let upload = parse(upload_text, "PyPI upload URL")?;
        let index = match index_url {
            Some(text) => parse(text, "PyPI index URL")?,
            None if matches!(
                upload.path_segments().and_then(|mut segments| segments
                    .rfind(|segment| !segment.is_empty())),
                Some("simple" | "+simple")
            ) =>
            {
                // The index users install from, given where uploads go.
                return Err(RegistryError::Config {
                    what: format!("PyPI upload URL {}", display_url(&upload)),
                    message: "this is a simple index (where pip reads), not an upload URL".to_owned(),
                    hint: "give the URL uploads go to (twine's --repository-url: pypiserver's root, devpi's `/<user>/<index>/`, https://upload.pypi.org/legacy/); a server that takes uploads at its simple index (pypicloud) needs that index named again with --pypi-index-url".to_owned(),
                });
            }
            None => derive_index_url(&upload).ok_or_else(|| RegistryError::Config {
                what: format!("PyPI upload URL {}", display_url(&upload)),
                message: "castoff cannot tell where this server's simple index is, and needs it to find files that are already uploaded".to_owned(),
                hint: "pass the simple index URL with --pypi-index-url (e.g. https://example.com/simple/)".to_owned(),
            })?,
        };
        Ok(PypiRepository {
            upload_url: upload,
            index_url: index,
            credentials,
        })
    }
}

/// Uploads wheels to one repository.
#[derive(Debug, Clone)]
pub struct PypiClient {
    http: HttpClient,
    repository: PypiRepository,
    auth: Option<Authorization>,
    /// Where the credentials came from, named when the index refuses them.
    credential_source: Option<CredentialSource>,
    /// Project pages as read by [`PypiClient::state_before_upload`], by project: one read per
    /// project and run, however many files the release has.
    pages_before_upload: ProjectPages,
}

/// Per project, the files its page listed, or why it could not be read (`None` until read);
/// shared by the client's clones.
type ProjectPages = Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<PageAsAsked>>>>;

/// One project's page as step 3 read it: its files, or the failure's message and hint.
type PageAsAsked = std::sync::Mutex<Option<Result<Arc<Vec<IndexFile>>, (String, String)>>>;

const HOW_TO_LOG_IN: &str = "set CASTOFF_PYPI_TOKEN to an API token (or TWINE_USERNAME/TWINE_PASSWORD, or a .pypirc entry), or use Trusted Publishing in GitHub Actions";

impl PypiClient {
    pub fn new(http: &HttpClient, repository: PypiRepository) -> Result<PypiClient, RegistryError> {
        http.check_url(&repository.upload_url, "PyPI upload URL")?;
        http.check_url(&repository.index_url, "PyPI index URL")?;
        let origin = &repository.upload_url;
        let auth = match &repository.credentials {
            PypiCredentials::None => None,
            PypiCredentials::Token(token) => Some(Authorization::basic(origin, "__token__", token)),
            PypiCredentials::Password { username, password } => {
                Some(Authorization::basic(origin, username, password))
            }
        };
        Ok(PypiClient {
            http: http.clone(),
            repository,
            auth,
            credential_source: None,
            pages_before_upload: ProjectPages::default(),
        })
    }

    /// The client, naming `source` as where its credentials came from when the index
    /// refuses them.
    pub fn with_credential_source(self, source: Option<CredentialSource>) -> PypiClient {
        PypiClient {
            credential_source: source,
            ..self
        }
    }

    /// The credentials this client sends, for a refusal's hint.
    fn sent_credentials(&self) -> SentCredentials<'_> {
        SentCredentials::of(self.auth.is_some(), self.credential_source.as_ref())
    }

    pub fn repository(&self) -> &PypiRepository {
        &self.repository
    }

    /// The project page of the simple index.
    fn project_page(&self, name: &str) -> Result<Url, RegistryError> {
        self.repository
            .index_url
            .join(&format!("{}/", normalize_project_name(name)))
            .map_err(|error| RegistryError::Config {
                what: format!("PyPI project `{name}`"),
                message: format!("cannot build its index URL: {error}"),
                hint: "check the project name in METADATA".to_owned(),
            })
    }

    /// The files the index lists for the wheel's project (empty when the project is unknown).
    pub fn list_files(&self, wheel: &WheelFile) -> Result<Vec<IndexFile>, RegistryError> {
        self.project_files(wheel.name(), &wheel.filename)
    }

    /// The files the index lists for project `name` (empty when the project is unknown);
    /// `artifact` names what is asked about in errors.
    pub fn project_files(
        &self,
        name: &str,
        artifact: &str,
    ) -> Result<Vec<IndexFile>, RegistryError> {
        // A page whose body breaks off (a reset mid-answer) is asked again, like a request
        // that failed before its answer (`HttpClient::send`'s retries).
        let retry = &self.http.config().retry;
        let mut attempt = 1;
        loop {
            match self.project_files_once(name, artifact) {
                Err(ProjectPage::BodyBroken(_)) if attempt < retry.max_attempts => {
                    std::thread::sleep(retry.delay(attempt, None));
                    attempt += 1;
                }
                Err(ProjectPage::BodyBroken(error) | ProjectPage::Failed(error)) => {
                    return Err(error);
                }
                Ok(files) => return Ok(files),
            }
        }
    }

    fn project_files_once(
        &self,
        name: &str,
        artifact: &str,
    ) -> Result<Vec<IndexFile>, ProjectPage> {
        let url = self.project_page(name)?;
        // The index may be on another origin (pypi.org vs upload.pypi.org): the credential is
        // bound to the upload origin and goes along only when they match (private devpi).
        let request = Request::new(Method::GET, url.clone())
            .header(
                "Accept",
                "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
            )
            .header("Cache-Control", "no-cache")
            .auth(self.auth.as_ref());
        let (response, _) = self.http.send_simple(&request, artifact)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            let hint = if status.is_redirection() {
                "the index redirects (pypiserver without --disable-fallback sends unknown projects to pypi.org); give the right index with --pypi-index-url".to_owned()
            } else {
                auth_hint(
                    status,
                    self.sent_credentials(),
                    "check --pypi-index-url and the credentials",
                )
            };
            return Err(status_error(artifact, &Method::GET, &url, response, hint).into());
        }
        let is_json =
            crate::http::header(&response, "content-type").is_some_and(|ct| ct.contains("json"));
        let body = read_text(response, 32 * 1024 * 1024).map_err(|error| {
            ProjectPage::BodyBroken(RegistryError::Protocol {
                artifact: artifact.to_owned(),
                url: display_url(&url),
                message: format!("cannot read the project page: {error}"),
                hint: "run publish again".to_owned(),
            })
        })?;
        if is_json {
            parse_json_page(&body).ok_or_else(|| {
                RegistryError::Protocol {
                    artifact: artifact.to_owned(),
                    url: display_url(&url),
                    message: "the PEP 691 JSON page has no `files` list".to_owned(),
                    hint: "check --pypi-index-url: it must be the simple index (…/simple/)"
                        .to_owned(),
                }
                .into()
            })
        } else {
            Ok(parse_html_page(&body))
        }
    }

    /// Absent / identical / conflict, by the sha256 the index lists for the wheel's file name.
    pub fn state(&self, wheel: &WheelFile) -> Result<RemoteState, RegistryError> {
        let files = self.list_files(wheel)?;
        self.state_in(wheel, &files)
    }

    /// [`PypiClient::state`] for the questions before any upload: the project page is read
    /// once for all of a release's files (their questions run side by side; the first reads
    /// the page, the others wait for it), not once per file — a page lists every file of the
    /// project, so reading it per file costs bytes in the square of the file count. Only
    /// before this client uploads: the pages it keeps do not show its own uploads.
    pub fn state_before_upload(&self, wheel: &WheelFile) -> Result<RemoteState, RegistryError> {
        let page = Arc::clone(
            self.pages_before_upload
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(wheel.name().to_owned())
                .or_default(),
        );
        let mut page = page.lock().unwrap_or_else(PoisonError::into_inner);
        let files = match &*page {
            Some(Ok(files)) => Arc::clone(files),
            // The first question's read failed (after its retries): the others fail with it
            // at once, rather than each waiting out the same server in turn.
            Some(Err((message, hint))) => {
                return Err(RegistryError::Protocol {
                    artifact: wheel.filename.clone(),
                    url: display_url(&self.project_page(wheel.name())?),
                    message: format!("the project page could not be read: {message}"),
                    hint: hint.clone(),
                });
            }
            None => match self.list_files(wheel) {
                Ok(files) => {
                    let files = Arc::new(files);
                    *page = Some(Ok(Arc::clone(&files)));
                    files
                }
                Err(error) => {
                    *page = Some(Err((
                        error.to_string(),
                        error
                            .hint()
                            .unwrap_or_else(|| "run publish again".to_owned()),
                    )));
                    return Err(error);
                }
            },
        };
        drop(page);
        self.state_in(wheel, &files)
    }

    fn state_in(
        &self,
        wheel: &WheelFile,
        files: &[IndexFile],
    ) -> Result<RemoteState, RegistryError> {
        let Some(file) = files.iter().find(|file| file.filename == wheel.filename) else {
            return Ok(RemoteState::Absent);
        };
        let url = self.project_page(wheel.name())?;
        match &file.sha256 {
            Some(remote) if *remote == wheel.sha256 => Ok(RemoteState::Identical),
            Some(remote) => Ok(RemoteState::Conflict { local: format!("sha256:{}", wheel.sha256), remote: format!("sha256:{remote}") }),
            None => Err(RegistryError::Protocol {
                artifact: wheel.filename.clone(),
                url: display_url(&url),
                message: "the index lists the file without a sha256 hash, so castoff cannot tell whether it is the same file".to_owned(),
                hint: "configure the index to publish sha256 hashes (pypiserver: --hash-algo sha256)".to_owned(),
            }),
        }
    }

    fn conflict(&self, wheel: &WheelFile, local: String, remote: String) -> RegistryError {
        RegistryError::Conflict {
            artifact: wheel.filename.clone(),
            url: display_url(&self.repository.index_url),
            what: format!("a file named {}", wheel.filename),
            local,
            remote,
            hint: "a published file name can never be reused with other bytes: release a new version (bump the version in Cargo.toml)".to_owned(),
        }
    }

    /// The multipart form: protocol fields, every METADATA field, digests, then the file
    /// streamed from disk.
    fn form(&self, wheel: &WheelFile, payload: &Payload) -> std::io::Result<Form> {
        let mut form = Form::new()
            .text(":action", "file_upload")
            .text("protocol_version", "1")
            .text("filetype", wheel.filetype)
            .text("pyversion", wheel.python_tag.clone());
        for (name, value) in wheel.metadata.form_fields() {
            form = form.text(name, value);
        }
        form = form
            .text("sha256_digest", wheel.sha256.clone())
            .text("blake2_256_digest", wheel.blake2_256.clone());
        let file = File::open(&wheel.path)?;
        let part =
            Part::reader_with_length(crate::http::Tripwire(payload.reader(0, file)), wheel.size)
                .file_name(wheel.filename.clone())
                .mime_str("application/octet-stream")
                .map_err(std::io::Error::other)?;
        Ok(form.part("content", part))
    }

    /// Preflight: are the credentials accepted? PyPI has no "who am I" endpoint, so this sends
    /// an upload request without a file: the index authenticates first (401/403 for bad or
    /// missing credentials) and then refuses the incomplete form (400), so nothing is created.
    pub fn check_credentials(&self) -> Result<(), RegistryError> {
        let url = &self.repository.upload_url;
        let form = || {
            Ok(Form::new()
                .text(":action", "file_upload")
                .text("protocol_version", "1"))
        };
        let request = Request::new(Method::POST, url.clone())
            .header("Accept", "application/json;q=0.9, text/plain;q=0.8")
            .auth(self.auth.as_ref())
            .body(Body::Multipart {
                length: 0,
                form: &form,
            });
        let (response, _) = self.http.send_simple(&request, "credential check")?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let hint = match self.sent_credentials() {
                SentCredentials::None => {
                    format!("no credentials were configured: {HOW_TO_LOG_IN}")
                }
                SentCredentials::Given => {
                    format!("the index rejected the credentials: {HOW_TO_LOG_IN}")
                }
                SentCredentials::From(source) => format!(
                    "the index rejected the credentials from {source}: correct them there, or log in another way: {HOW_TO_LOG_IN}"
                ),
            };
            return Err(status_error(
                "credential check",
                &Method::POST,
                url,
                response,
                hint,
            ));
        }
        Ok(())
    }

    /// Uploads the wheel. A duplicate answer (409, or 400 "File already exists") and every
    /// retry are resolved by asking the index: identical → [`UploadKind::AlreadyPresent`],
    /// different → [`RegistryError::Conflict`].
    pub fn upload(&self, wheel: &WheelFile) -> Result<UploadOutcome, RegistryError> {
        self.upload_with_progress(wheel, &UploadProgress::none())
    }

    /// [`PypiClient::upload`], reporting the wheel's bytes to `progress` as they are sent.
    pub fn upload_with_progress(
        &self,
        wheel: &WheelFile,
        progress: &UploadProgress,
    ) -> Result<UploadOutcome, RegistryError> {
        let url = &self.repository.upload_url;
        let payload = progress.payload();
        let form = || self.form(wheel, &payload);
        let request = Request::new(Method::POST, url.clone())
            .header(
                "Accept",
                "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7",
            )
            .auth(self.auth.as_ref())
            .body(Body::Multipart {
                length: wheel.size,
                form: &form,
            });
        let mut hook = |_: &crate::http::FailedAttempt| match self.state(wheel)? {
            RemoteState::Identical => Ok(RetryDecision::Stop),
            RemoteState::Conflict { local, remote } => Err(self.conflict(wheel, local, remote)),
            _ => Ok(RetryDecision::Retry),
        };
        let (response, attempts) = match self.http.send(&request, &wheel.filename, &mut hook)? {
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
                bytes: wheel.size,
            });
        }
        let body_status = status;
        if status == StatusCode::CONFLICT || status == StatusCode::BAD_REQUEST {
            let body = read_text(response, 64 * 1024).unwrap_or_default();
            let explanation = crate::error::explain_body(body_status, &body);
            let duplicate = status == StatusCode::CONFLICT
                || explanation.to_lowercase().contains("already exist");
            if duplicate {
                return match self.state(wheel)? {
                    RemoteState::Identical => Ok(UploadOutcome {
                        kind: UploadKind::AlreadyPresent,
                        attempts,
                        bytes: 0,
                    }),
                    RemoteState::Conflict { local, remote } => {
                        Err(self.conflict(wheel, local, remote))
                    }
                    _ => Err(RegistryError::Status {
                        artifact: wheel.filename.clone(),
                        method: "POST".to_owned(),
                        url: display_url(url),
                        status: status.as_u16(),
                        explanation,
                        hint: format!(
                            "the server says the file exists but {} does not list it: check --pypi-index-url",
                            display_url(&self.repository.index_url)
                        ),
                    }),
                };
            }
            return Err(RegistryError::Status {
                artifact: wheel.filename.clone(),
                method: "POST".to_owned(),
                url: display_url(url),
                status: status.as_u16(),
                explanation,
                hint: "the index refused the wheel or its metadata; fix what the message names and rebuild".to_owned(),
            });
        }
        let hint = match status.as_u16() {
            401 | 403 => auth_hint(status, self.sent_credentials(), HOW_TO_LOG_IN),
            301..=308 => format!(
                "the upload URL redirects to {}: use that URL",
                crate::http::header(&response, "location").unwrap_or_default()
            ),
            413 => {
                "the file is larger than the index allows; PyPI's limit can be raised per project"
                    .to_owned()
            }
            _ => "run publish again: it re-checks the index and resumes".to_owned(),
        };
        Err(status_error(
            &wheel.filename,
            &Method::POST,
            url,
            response,
            hint,
        ))
    }

    /// After an upload: the index must list the file with the local sha256. Indexes behind a
    /// CDN can lag a few seconds, so an absent file is asked for again a few times.
    pub fn verify(&self, wheel: &WheelFile) -> Result<(), RegistryError> {
        let url = self.project_page(wheel.name())?;
        let mut found = "no such file".to_owned();
        for attempt in 1..=5u32 {
            match self.state(wheel)? {
                RemoteState::Identical => return Ok(()),
                RemoteState::Conflict { remote, .. } => {
                    found = remote;
                    break;
                }
                _ => std::thread::sleep(self.http.config().retry.delay(attempt, None)),
            }
        }
        Err(RegistryError::Verify {
            artifact: wheel.filename.clone(),
            url: display_url(&url),
            expected: format!("{} with sha256:{}", wheel.filename, wheel.sha256),
            found,
            hint: "the index does not serve what was uploaded; check --pypi-index-url and the index's logs".to_owned(),
        })
    }
}

/// Trusted Publishing: `GET <upload origin>/_/oidc/audience` → the GitHub ID token for that
/// audience → `POST <upload origin>/_/oidc/mint-token` → a short-lived API token.
pub fn trusted_publishing_token(
    http: &HttpClient,
    upload_url: &Url,
    oidc: &GithubOidc,
) -> Result<Secret, RegistryError> {
    let what = "PyPI Trusted Publishing";
    http.check_url(upload_url, "PyPI upload URL")?;
    let audience_url =
        upload_url
            .join("/_/oidc/audience")
            .map_err(|error| RegistryError::Config {
                what: what.to_owned(),
                message: error.to_string(),
                hint: "check the upload URL".to_owned(),
            })?;
    let (response, _) = http.send_simple(
        &Request::new(Method::GET, audience_url.clone()).header("Accept", "application/json"),
        what,
    )?;
    if !response.status().is_success() {
        let hint = match response.status().as_u16() {
            404 => {
                "this index does not support Trusted Publishing: use an API token (CASTOFF_PYPI_TOKEN)"
            }
            403 => "Trusted Publishing is disabled on this index right now: use an API token",
            _ => "run publish again",
        };
        return Err(status_error(
            what,
            &Method::GET,
            &audience_url,
            response,
            hint,
        ));
    }
    let body = crate::http::read_answer(response, 64 * 1024, what, &Method::GET, &audience_url)?;
    let audience = json_string_field(&body, "audience").ok_or_else(|| RegistryError::Protocol {
        artifact: what.to_owned(),
        url: display_url(&audience_url),
        message: "no `audience` in the answer".to_owned(),
        hint: "the upload URL does not point at a warehouse (PyPI) instance".to_owned(),
    })?;
    let id_token = oidc.id_token(http, &audience)?;
    let mint_url = upload_url.join("/_/oidc/mint-token").expect("joined above");
    crate::oidc::exchange_id_token(
        http,
        &mint_url,
        &serde_json::json!({ "token": id_token.expose() }),
        what,
        "PyPI rejected the workflow's identity: check the project's trusted publisher (owner, repository, workflow file name, environment) on pypi.org",
    )
}

/// Why one read of a project page failed: its body broke off (asked again), or anything else.
enum ProjectPage {
    BodyBroken(RegistryError),
    Failed(RegistryError),
}

impl From<RegistryError> for ProjectPage {
    fn from(error: RegistryError) -> ProjectPage {
        ProjectPage::Failed(error)
    }
}
