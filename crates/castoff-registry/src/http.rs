//! The HTTP core every client shares: one reqwest blocking client (rustls), the trust store
//! (`SSL_CERT_FILE`, `--ca-cert`), the plain-http rule, manual redirects that never carry
//! `Authorization` to another origin, bodies that are re-opened per attempt, and the retry loop.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::blocking::{Client, Response, multipart::Form};
use reqwest::{Method, StatusCode, Url};

use crate::error::{RegistryError, display_url, explain_body};
use crate::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use crate::secret::Secret;
use crate::source::SentCredentials;

/// Transport settings shared by all clients of one run.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Extra trusted CA certificates (PEM bundles), e.g. from `--ca-cert`.
    pub ca_certificates: Vec<PathBuf>,
    /// The PEM bundle named by `SSL_CERT_FILE` ([`HttpConfig::from_env`] fills it). Added to
    /// the trust store like `ca_certificates`.
    pub ssl_cert_file: Option<PathBuf>,
    /// Allow `http://` to hosts that are not loopback. Off by default: credentials and
    /// artifacts would cross the network in clear text.
    pub allow_insecure_http: bool,
    pub connect_timeout: Duration,
    /// Time allowed for one whole exchange (connect, request, response headers and the whole
    /// response body), plus one second for every [`MIN_TRANSFER_RATE`] bytes of the request
    /// body or of the response body the caller expects: a server that drips bytes or never
    /// ends its body is cut off, a large upload on a slow link is not.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Redirects followed per request.
    pub max_redirects: u32,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            ca_certificates: Vec::new(),
            ssl_cert_file: None,
            allow_insecure_http: false,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(900),
            retry: RetryPolicy::default(),
            max_redirects: 10,
        }
    }
}

impl HttpConfig {
    /// Defaults plus `SSL_CERT_FILE` from the environment, and `CASTOFF_HTTP_TIMEOUT_SECS`
    /// (whole-request and connect timeout in seconds; tests of stalled servers lower it).
    pub fn from_env() -> HttpConfig {
        let defaults = HttpConfig::default();
        let timeout = std::env::var("CASTOFF_HTTP_TIMEOUT_SECS")
            .ok()
            .and_then(|value| value.parse::<u64>().ok())
            .filter(|seconds| *seconds > 0)
            .map(Duration::from_secs);
        HttpConfig {
            ssl_cert_file: std::env::var_os(crate::env::SSL_CERT_FILE)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            request_timeout: timeout.unwrap_or(defaults.request_timeout),
            connect_timeout: timeout.map_or(defaults.connect_timeout, |t| {
                t.min(defaults.connect_timeout)
            }),
            ..defaults
        }
    }
}

/// The slowest transfer a large body may keep up (bytes per second): the deadline of an
/// exchange grows by one second for each this many bytes of its body.
pub const MIN_TRANSFER_RATE: u64 = 64 * 1024;

/// Test hook (docs/testing.md, `CASTOFF_TEST_KILL_AT=<step>:mid-upload`): when non-zero, the
/// process aborts once this many request-body bytes have been read for sending, counted from
/// the last [`abort_after_body_bytes`]. Zero (the default) disables it. Only in debug builds
/// (what the tests run): a release build has no tripwire and no process-wide counter.
#[cfg(debug_assertions)]
static ABORT_AFTER_BODY_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(debug_assertions)]
static BODY_BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Arms the test hook above: abort the process (like SIGKILL: no cleanup) in the middle of an
/// upload body, after `bytes` more bytes of request bodies. Only `castoff`'s test hook calls it.
#[cfg(debug_assertions)]
pub fn abort_after_body_bytes(bytes: u64) {
    use std::sync::atomic::Ordering;
    BODY_BYTES_READ.store(0, Ordering::SeqCst);
    ABORT_AFTER_BODY_BYTES.store(bytes, Ordering::SeqCst);
}

fn abort_armed() -> bool {
    #[cfg(debug_assertions)]
    {
        ABORT_AFTER_BODY_BYTES.load(std::sync::atomic::Ordering::SeqCst) != 0
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}

/// A body reader that trips the test hook; a plain pass-through when it is not armed.
pub(crate) struct Tripwire<R>(pub(crate) R);

impl<R: Read> Read for Tripwire<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = self.0.read(buf)?;
        #[cfg(debug_assertions)]
        {
            use std::sync::atomic::Ordering;
            let limit = ABORT_AFTER_BODY_BYTES.load(Ordering::SeqCst);
            if limit != 0 {
                let total =
                    BODY_BYTES_READ.fetch_add(count as u64, Ordering::SeqCst) + count as u64;
                if total >= limit {
                    std::process::abort();
                }
            }
        }
        Ok(count)
    }
}

/// Watches an upload's bytes as they are handed to the connection, for progress displays: a
/// callback called with each number of bytes sent (the artifact's bytes: a wheel's file part,
/// an npm tarball before base64, OCI blobs; not the form fields, JSON or manifests around
/// them). Over a whole upload the numbers add up to the artifact bytes sent: a body sent
/// again (a retry, a redirect, a resumed chunk) is counted only beyond the furthest point
/// already reported, so the total never counts a byte twice and the display simply holds
/// still while a retry catches up. Blobs the registry already has are never counted.
///
/// The callback runs on the thread that sends the body, for every read (a few KiB to a few
/// hundred KiB); keep it cheap (an atomic add, a channel send). [`UploadProgress::none`]
/// (also the `Default`) watches nothing.
#[derive(Clone, Default)]
pub struct UploadProgress {
    sink: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl fmt::Debug for UploadProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.sink.is_some() {
            "UploadProgress(watched)"
        } else {
            "UploadProgress(none)"
        })
    }
}

impl UploadProgress {
    /// Calls `sink` with each number of bytes sent.
    pub fn new(sink: impl Fn(u64) + Send + Sync + 'static) -> UploadProgress {
        UploadProgress {
            sink: Some(Arc::new(sink)),
        }
    }

    /// Watches nothing.
    pub fn none() -> UploadProgress {
        UploadProgress::default()
    }

    /// A counter for one payload (a file, a blob) that may be sent in several bodies and
    /// more than once.
    pub(crate) fn payload(&self) -> Payload {
        Payload {
            sink: self.sink.clone(),
            reached: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// One payload's counter: reports bytes only beyond the furthest offset already reported.
#[derive(Clone)]
pub(crate) struct Payload {
    sink: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    reached: Arc<AtomicU64>,
}

impl Payload {
    /// Wraps the reader of the payload's bytes from `offset` on (0 for a whole file, the
    /// chunk's start for a chunk).
    pub(crate) fn reader<R: Read>(&self, offset: u64, inner: R) -> Counted<R> {
        Counted {
            inner,
            position: offset,
            payload: self.clone(),
        }
    }

    /// The payload's bytes up to `position` were sent (a body that was not streamed).
    pub(crate) fn reach(&self, position: u64) {
        if let Some(sink) = &self.sink {
            let before = self.reached.fetch_max(position, Ordering::SeqCst);
            if position > before {
                sink(position - before);
            }
        }
    }
}

/// A body reader that reports through its [`Payload`].
pub(crate) struct Counted<R> {
    inner: R,
    position: u64,
    payload: Payload,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buf)?;
        if count > 0 {
            self.position += count as u64;
            self.payload.reach(self.position);
        }
        Ok(count)
    }
}

/// The blocking HTTP client. Cheap to clone (reqwest's client is reference-counted).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client,
    config: HttpConfig,
    /// The scheme each loopback registry written without one answered on (`host[:port]` →
    /// `https` or `http`), shared by every clone of this client: one probe per registry and
    /// run ([`HttpClient::loopback_scheme`]).
    loopback_schemes: Arc<std::sync::Mutex<std::collections::BTreeMap<String, &'static str>>>,
}

/// The longest the https probe of a loopback registry waits for a TLS answer (Docker's TLS
/// handshake timeout), or the connect timeout when that is shorter.
const HTTPS_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// An `Authorization` header value bound to the origin (scheme, host, port) it was issued for.
/// It is attached only to requests to that origin, so neither a redirect nor an absolute upload
/// `Location` on another host ever receives it.
#[derive(Clone)]
pub(crate) struct Authorization {
    origin: Url,
    value: Secret,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Authorization(<redacted> for {})",
            display_url(&self.origin)
        )
    }
}

impl Authorization {
    pub(crate) fn basic(origin: &Url, username: &str, password: &Secret) -> Authorization {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()));
        Authorization {
            origin: origin.clone(),
            value: Secret::new(format!("Basic {encoded}")),
        }
    }

    /// Basic auth from an already encoded `user:password` (npm `_auth`, Docker `auth`).
    pub(crate) fn basic_encoded(origin: &Url, encoded: &Secret) -> Authorization {
        Authorization {
            origin: origin.clone(),
            value: Secret::new(format!("Basic {}", encoded.expose())),
        }
    }

    pub(crate) fn bearer(origin: &Url, token: &Secret) -> Authorization {
        Authorization {
            origin: origin.clone(),
            value: Secret::new(format!("Bearer {}", token.expose())),
        }
    }

    /// The token as it is, without a scheme (Cargo's registries).
    pub(crate) fn raw(origin: &Url, token: &Secret) -> Authorization {
        Authorization {
            origin: origin.clone(),
            value: token.clone(),
        }
    }

    fn applies_to(&self, url: &Url) -> bool {
        self.origin.origin() == url.origin()
    }
}

/// A request body that can be produced again for every attempt and redirect: files are
/// re-opened and streamed, never read whole into memory.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(Vec<u8>),
    Stream {
        length: u64,
        open: &'a dyn Fn() -> std::io::Result<Box<dyn Read + Send>>,
    },
    /// A form whose file part holds `length` bytes (0 without a file).
    Multipart {
        length: u64,
        form: &'a dyn Fn() -> std::io::Result<Form>,
    },
}

impl Body<'_> {
    /// The bytes the body sends (for a form, its file part's).
    fn length(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Stream { length, .. } | Body::Multipart { length, .. } => *length,
        }
    }
}

pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) auth: Option<Authorization>,
    pub(crate) body: Body<'a>,
    /// The size of the response body the caller expects (a blob it downloads), which extends
    /// the exchange's deadline like a request body does.
    pub(crate) expected_response_bytes: u64,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, url: Url) -> Request<'a> {
        Request {
            method,
            url,
            headers: Vec::new(),
            auth: None,
            body: Body::Empty,
            expected_response_bytes: 0,
        }
    }

    pub(crate) fn expect_response_bytes(mut self, bytes: u64) -> Self {
        self.expected_response_bytes = bytes;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn auth(mut self, auth: Option<&Authorization>) -> Self {
        self.auth = auth.cloned();
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

/// What the retry loop tells the caller's hook about a failed attempt.
#[derive(Debug)]
pub struct FailedAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `status 503` or the transport error, for logs.
    pub failure: String,
    /// How long the loop waited before asking the hook.
    pub waited: Duration,
}

/// The hook's answer: send again, or stop because the caller found out (by asking the
/// registry) that the upload landed after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    Retry,
    Stop,
}

/// The outcome of [`HttpClient::send`].
pub(crate) enum Sent {
    /// The final answer (success, a non-retryable status, or the last retryable one).
    Response { response: Response, attempts: u32 },
    /// The hook stopped the loop.
    Stopped { attempts: u32 },
}

impl HttpClient {
    pub fn new(config: HttpConfig) -> Result<HttpClient, RegistryError> {
        let mut builder = Client::builder()
            .user_agent(crate::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout);
        let mut bundles: Vec<(&str, &PathBuf)> = config
            .ca_certificates
            .iter()
            .map(|path| ("CA certificate", path))
            .collect();
        if let Some(path) = &config.ssl_cert_file {
            bundles.push(("SSL_CERT_FILE", path));
        }
        for (what, path) in bundles {
            let hint = "give a PEM file holding one or more `-----BEGIN CERTIFICATE-----` blocks";
            let pem = std::fs::read(path).map_err(|error| RegistryError::Config {
                what: format!("{what} {}", path.display()),
                message: format!("cannot read it: {error}"),
                hint: hint.to_owned(),
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or_else(|| RegistryError::Config {
                    what: format!("{what} {}", path.display()),
                    message: "no PEM certificate in it".to_owned(),
                    hint: hint.to_owned(),
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|error| RegistryError::Config {
            what: "HTTP client".to_owned(),
            message: error_chain(&error),
            hint: "this is a bug in castoff's TLS setup; please report it".to_owned(),
        })?;
        Ok(HttpClient {
            client,
            config,
            loopback_schemes: Arc::default(),
        })
    }

    /// The scheme of a registry on a loopback `host` (`host[:port]`) that was written without
    /// one, by Docker's rule for its insecure registries: `https` when a TLS server answers
    /// `GET https://<host>/v2/` (whatever its status, and also when its certificate is not
    /// trusted: the request that follows reports that), `http` only when the TLS connection
    /// itself fails (refused, reset, not TLS, no answer in time). Probed once per host, without
    /// credentials, and remembered by this client and its clones, so every later request of
    /// the run, in every client, uses the same scheme; `https` for a host that is not loopback.
    pub(crate) fn loopback_scheme(&self, host: &str) -> &'static str {
        let mut known = self
            .loopback_schemes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The lock is held through the probe: clients starting together wait for one probe.
        if let Some(scheme) = known.get(host) {
            return scheme;
        }
        let scheme = match Url::parse(&format!("https://{host}/v2/")) {
            Ok(url) if is_loopback(&url) => {
                let answered = self
                    .client
                    .get(url)
                    .timeout(self.config.connect_timeout.min(HTTPS_PROBE_TIMEOUT))
                    .send();
                match answered {
                    Ok(_) => "https",
                    Err(error) if is_certificate_error(&error) => "https",
                    Err(_) => "http",
                }
            }
            _ => "https",
        };
        known.insert(host.to_owned(), scheme);
        scheme
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Refuses URLs castoff must not talk to: non-http(s) schemes, and plain `http://` to a
    /// host that is not loopback unless [`HttpConfig::allow_insecure_http`].
    pub fn check_url(&self, url: &Url, what: &str) -> Result<(), RegistryError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.config.allow_insecure_http || is_loopback(url) => Ok(()),
            "http" => Err(RegistryError::Config {
                what: format!("{what} {}", display_url(url)),
                message: "plain http:// is refused for a host that is not loopback: credentials and artifacts would travel unencrypted".to_owned(),
                hint: "use https://, or allow insecure http explicitly (--allow-insecure-http) for a trusted network".to_owned(),
            }),
            other => Err(RegistryError::Config {
                what: format!("{what} {}", display_url(url)),
                message: format!("unsupported URL scheme `{other}`"),
                hint: "use an https:// URL".to_owned(),
            }),
        }
    }

    /// One attempt, following redirects by hand: `Authorization` is re-attached per hop only
    /// when the hop's origin is the credential's origin; a 307/308 re-sends the method and a
    /// fresh body; a 301/302/303 of a request with a body is returned as it is (the caller
    /// reports it: silently turning an upload into a GET would lose it).
    ///
    /// The whole exchange, redirects and the response body included, must end by one deadline
    /// ([`HttpConfig::request_timeout`] plus the time its bodies take at
    /// [`MIN_TRANSFER_RATE`]); reqwest enforces it on reads of the body too, so a response
    /// dripping a byte at a time ends with a timeout error.
    fn send_once(&self, request: &Request<'_>) -> Result<Response, Unsent> {
        let mut url = request.url.clone();
        let mut method = request.method.clone();
        let mut hops = 0;
        let bytes = request
            .body
            .length()
            .saturating_add(request.expected_response_bytes);
        let deadline = Instant::now()
            + self
                .config
                .request_timeout
                .saturating_add(Duration::from_secs(bytes / MIN_TRANSFER_RATE));
        loop {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .timeout(remaining);
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            if let Some(auth) = request.auth.as_ref().filter(|auth| auth.applies_to(&url)) {
                let mut value = reqwest::header::HeaderValue::from_str(auth.value.expose())
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
                value.set_sensitive(true);
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            let has_body = !matches!(request.body, Body::Empty);
            builder = match &request.body {
                Body::Empty => builder,
                Body::Bytes(bytes) if abort_armed() => {
                    builder.body(reqwest::blocking::Body::sized(
                        Tripwire(std::io::Cursor::new(bytes.clone())),
                        bytes.len() as u64,
                    ))
                }
                Body::Bytes(bytes) => builder.body(bytes.clone()),
                Body::Stream { length, open } => match open() {
                    Ok(reader) => {
                        builder.body(reqwest::blocking::Body::sized(Tripwire(reader), *length))
                    }
                    Err(error) => return FailingReader::send(builder, error),
                },
                Body::Multipart { form, .. } => match form() {
                    Ok(form) => builder.multipart(form),
                    Err(error) => return FailingReader::send(builder, error),
                },
            };
            let response = builder.send().map_err(Unsent::Transport)?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|location| url.join(location).ok());
            let follow = match status.as_u16() {
                307 | 308 => true,
                301..=303 => !has_body || method == Method::GET || method == Method::HEAD,
                _ => false,
            };
            let Some(next) = location.filter(|_| follow) else {
                return Ok(response);
            };
            let refused = if hops >= self.config.max_redirects {
                Some(format!(
                    "more than {} redirects (a redirect loop?)",
                    self.config.max_redirects
                ))
            } else if url.scheme() == "https" && next.scheme() != "https" {
                // Never downgrade from https to http, even to loopback.
                Some("a redirect from https to plain http".to_owned())
            } else if self.check_url(&next, "redirect").is_err() {
                Some("a redirect to a URL castoff does not talk to (plain http to a host that is not loopback, or another scheme)".to_owned())
            } else {
                None
            };
            if let Some(reason) = refused {
                return Err(Unsent::Redirect {
                    reason,
                    location: display_url(&next),
                });
            }
            if status.as_u16() == 303 && method != Method::HEAD {
                method = Method::GET;
            }
            hops += 1;
            url = next;
        }
    }

    /// Sends with the retry policy. Before every retry the `hook` is asked: an upload's hook
    /// asks the registry whether the failed attempt landed after all, and stops the loop if so.
    pub(crate) fn send(
        &self,
        request: &Request<'_>,
        artifact: &str,
        hook: &mut dyn FnMut(&FailedAttempt) -> Result<RetryDecision, RegistryError>,
    ) -> Result<Sent, RegistryError> {
        let policy = &self.config.retry;
        let mut attempt = 1;
        loop {
            let result = self.send_once(request);
            let (failure, retry_after) = match &result {
                Ok(response) if is_retryable_status(response.status()) => {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| parse_retry_after(value, SystemTime::now()));
                    (format!("status {}", response.status()), retry_after)
                }
                Ok(_) => {
                    return Ok(Sent::Response {
                        response: result.expect("matched Ok"),
                        attempts: attempt,
                    });
                }
                Err(Unsent::Transport(error)) if is_retryable_error(error) => {
                    (error_chain(error), None)
                }
                Err(_) => {
                    return Err(self.unsent_error(
                        request,
                        artifact,
                        result.expect_err("matched Err"),
                        attempt,
                    ));
                }
            };
            if attempt >= policy.max_attempts {
                return match result {
                    Ok(response) => Ok(Sent::Response {
                        response,
                        attempts: attempt,
                    }),
                    Err(unsent) => Err(self.unsent_error(request, artifact, unsent, attempt)),
                };
            }
            drop(result);
            let waited = policy.delay(attempt, retry_after);
            std::thread::sleep(waited);
            let decision = hook(&FailedAttempt {
                attempt,
                failure,
                waited,
            })?;
            if decision == RetryDecision::Stop {
                return Ok(Sent::Stopped { attempts: attempt });
            }
            attempt += 1;
        }
    }

    /// Exactly one attempt (for protocols that resume themselves, like chunked uploads).
    pub(crate) fn send_single(
        &self,
        request: &Request<'_>,
        artifact: &str,
    ) -> Result<Response, RegistryError> {
        self.send_once(request)
            .map_err(|unsent| self.unsent_error(request, artifact, unsent, 1))
    }

    /// [`HttpClient::send`] without a hook, for reads and idempotent writes.
    pub(crate) fn send_simple(
        &self,
        request: &Request<'_>,
        artifact: &str,
    ) -> Result<(Response, u32), RegistryError> {
        match self.send(request, artifact, &mut |_| Ok(RetryDecision::Retry))? {
            Sent::Response { response, attempts } => Ok((response, attempts)),
            Sent::Stopped { .. } => unreachable!("the hook never stops"),
        }
    }

    fn unsent_error(
        &self,
        request: &Request<'_>,
        artifact: &str,
        unsent: Unsent,
        attempts: u32,
    ) -> RegistryError {
        match unsent {
            Unsent::Transport(error) => self.transport_error(request, artifact, error, attempts),
            Unsent::Redirect { reason, location } => RegistryError::Protocol {
                artifact: artifact.to_owned(),
                url: display_url(&request.url),
                message: format!("stopped following redirects at {location}: {reason}"),
                hint: "check the registry URL; a registry that redirects in a circle or to plain http is misconfigured or not the registry you meant".to_owned(),
            },
        }
    }

    fn transport_error(
        &self,
        request: &Request<'_>,
        artifact: &str,
        error: reqwest::Error,
        attempts: u32,
    ) -> RegistryError {
        let reason = error_chain(&error);
        let lower = reason.to_lowercase();
        let hint = if lower.contains("certificate")
            || lower.contains("unknownissuer")
            || lower.contains("tls")
        {
            "the server's TLS certificate is not trusted: pass its CA with --ca-cert FILE (or set SSL_CERT_FILE), or check that the URL names the right host"
        } else if lower.contains("connection refused")
            || lower.contains("dns")
            || lower.contains("resolve")
        {
            "check the registry URL and that the registry is reachable from here"
        } else if error.is_timeout() {
            "the registry did not answer in time; run publish again: it resumes where it stopped"
        } else {
            "the connection failed; run publish again: it asks the registry what it has and resumes"
        };
        RegistryError::Transport {
            artifact: artifact.to_owned(),
            method: request.method.to_string(),
            url: display_url(&request.url),
            reason,
            attempts,
            hint: hint.to_owned(),
        }
    }
}

/// Why [`HttpClient::send_once`] has no answer to hand back.
#[derive(Debug)]
enum Unsent {
    Transport(reqwest::Error),
    /// A redirect castoff would not follow: too many, a downgrade to plain http, or a URL it
    /// refuses. Not retried: the same request gets the same redirect.
    Redirect {
        reason: String,
        location: String,
    },
}

/// A body that fails at once: reports a file that could not be re-opened through the normal
/// error path instead of a panic.
struct FailingReader(Option<std::io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("body unavailable")))
    }
}

impl FailingReader {
    /// Sends `builder` with a body that fails with `error` at once, so the failure goes
    /// through reqwest's error path like any other broken body.
    fn send(
        builder: reqwest::blocking::RequestBuilder,
        error: std::io::Error,
    ) -> Result<Response, Unsent> {
        builder
            .body(FailingReader(Some(error)))
            .send()
            .map_err(Unsent::Transport)
    }
}

impl From<FailingReader> for reqwest::blocking::Body {
    fn from(reader: FailingReader) -> reqwest::blocking::Body {
        reqwest::blocking::Body::new(reader)
    }
}

fn is_retryable_error(error: &reqwest::Error) -> bool {
    if error.is_builder() || error.is_redirect() || error.is_decode() {
        return false;
    }
    // A certificate the client does not trust stays untrusted on the next attempt.
    !is_certificate_error(error)
}

/// Whether the TLS handshake failed on the server's certificate (a TLS server answered, but
/// castoff does not trust it), rather than on the connection.
fn is_certificate_error(error: &reqwest::Error) -> bool {
    let text = error_chain(error).to_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}

/// The error and its sources as one line, without the URL (reqwest's `Display` includes the
/// full URL, query string and all).
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    source_chain(error)
}

/// An error and its sources as one line, each said once, without reqwest's ` for url (…)`.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        let text = match text.find(" for url (") {
            Some(index) => text[..index].to_owned(),
            None => text,
        };
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

/// 127.0.0.0/8, ::1 and `localhost` (with subdomains): the only hosts plain http is fine for.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A response header as text.
pub(crate) fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads at most `limit` bytes of a response body as text (error pages and JSON documents;
/// a hostile or broken server cannot make castoff buffer gigabytes).
pub(crate) fn read_text(response: Response, limit: u64) -> std::io::Result<String> {
    let mut text = String::new();
    let mut bytes = Vec::new();
    response.take(limit).read_to_end(&mut bytes)?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(text)
}

/// [`read_text`] of a successful answer that the caller needs: a body that breaks off or
/// does not arrive by the exchange's deadline is a [`RegistryError::Transport`] naming that,
/// not an empty answer that later reads as "no token" or "unknown credentials".
pub(crate) fn read_answer(
    response: Response,
    limit: u64,
    artifact: &str,
    method: &Method,
    url: &Url,
) -> Result<String, RegistryError> {
    let mut bytes = Vec::new();
    if let Err(error) = response.take(limit + 1).read_to_end(&mut bytes) {
        return Err(RegistryError::Transport {
            artifact: artifact.to_owned(),
            method: method.to_string(),
            url: display_url(url),
            reason: format!(
                "the answer's body did not arrive whole: {}",
                io_error_chain(&error)
            ),
            attempts: 1,
            hint: "the server stopped or slowed down mid-answer (the deadline is CASTOFF_HTTP_TIMEOUT_SECS, 900 s by default); run again, and check the server if it persists".to_owned(),
        });
    }
    if bytes.len() as u64 > limit {
        return Err(RegistryError::Protocol {
            artifact: artifact.to_owned(),
            url: display_url(url),
            message: format!("the answer is larger than the {limit} bytes such an answer takes"),
            hint: "check that the URL points at the registry you meant".to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An I/O error and its sources as one line (a body read's timeout is two levels down).
pub(crate) fn io_error_chain(error: &std::io::Error) -> String {
    source_chain(error)
}

/// A [`RegistryError::Status`] from an unexpected answer, with the server's explanation.
pub(crate) fn status_error(
    artifact: &str,
    method: &Method,
    url: &Url,
    response: Response,
    hint: impl Into<String>,
) -> RegistryError {
    let status = response.status();
    let explanation = read_text(response, 64 * 1024)
        .map(|body| explain_body(status, &body))
        .unwrap_or_else(|_| status.canonical_reason().unwrap_or("").to_owned());
    RegistryError::Status {
        artifact: artifact.to_owned(),
        method: method.to_string(),
        url: display_url(url),
        status: status.as_u16(),
        explanation,
        hint: hint.into(),
    }
}

/// A hint for a status that means "who are you" or "not you", naming the source of the
/// credentials that were sent when it is known.
pub(crate) fn auth_hint(status: StatusCode, sent: SentCredentials<'_>, how_to: &str) -> String {
    match (status.as_u16(), sent) {
        (401 | 403, SentCredentials::None) => {
            format!("no credentials were configured for this registry: {how_to}")
        }
        (401, SentCredentials::Given) => {
            format!("the registry rejected the credentials: {how_to}")
        }
        (401, SentCredentials::From(source)) => format!(
            "the registry rejected the credentials from {source}: correct them there, or log in another way: {how_to}"
        ),
        (403, SentCredentials::Given) => format!(
            "the credentials are valid but lack permission for this name, or the name belongs to someone else: {how_to}"
        ),
        (403, SentCredentials::From(source)) => format!(
            "the credentials from {source} are valid but lack permission for this name, or the name belongs to someone else: {how_to}"
        ),
        _ => how_to.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:5000/",
            "http://127.8.9.10/",
            "http://[::1]:80/",
            "http://localhost/",
            "http://a.localhost/",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://example.com/",
            "http://localhost.example.com/",
            "http://[::2]/",
        ] {
            assert!(!is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
    }

    /// The https probe of a loopback registry: a server that closes a TLS handshake (as a
    /// plain-http server does) means http; the answer is asked once and shared by every clone
    /// of the client; a host that is not loopback is https without any probe.
    #[test]
    fn a_loopback_registry_is_probed_once_per_client() {
        use std::sync::atomic::AtomicUsize;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        let client = HttpClient::new(HttpConfig::default()).unwrap();
        let clone = client.clone();
        assert_eq!(client.loopback_scheme(&host), "http");
        assert_eq!(clone.loopback_scheme(&host), "http");
        assert_eq!(connections.load(Ordering::SeqCst), 1, "one probe");
        // Another run (another client) asks again.
        let next = HttpClient::new(HttpConfig::default()).unwrap();
        assert_eq!(next.loopback_scheme(&host), "http");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert_eq!(client.loopback_scheme("ghcr.io"), "https");
    }

    #[test]
    fn plain_http_only_for_loopback_unless_allowed() {
        let client = HttpClient::new(HttpConfig::default()).unwrap();
        assert!(
            client
                .check_url(&Url::parse("http://127.0.0.1:1/").unwrap(), "registry")
                .is_ok()
        );
        assert!(
            client
                .check_url(&Url::parse("https://example.com/").unwrap(), "registry")
                .is_ok()
        );
        let error = client
            .check_url(
                &Url::parse("http://example.com/simple/").unwrap(),
                "registry",
            )
            .unwrap_err();
        expect_test::expect![[r#"
            registry http://example.com/simple/: plain http:// is refused for a host that is not loopback: credentials and artifacts would travel unencrypted
            hint: use https://, or allow insecure http explicitly (--allow-insecure-http) for a trusted network"#]]
        .assert_eq(&format!("{error}\nhint: {}", error.hint().unwrap()));
        let insecure = HttpClient::new(HttpConfig {
            allow_insecure_http: true,
            ..HttpConfig::default()
        })
        .unwrap();
        assert!(
            insecure
                .check_url(&Url::parse("http://example.com/").unwrap(), "registry")
                .is_ok()
        );
    }

    /// A recording hook: every number it was called with.
    fn recorder() -> (UploadProgress, Arc<std::sync::Mutex<Vec<u64>>>) {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&calls);
        let progress = UploadProgress::new(move |bytes| sink.lock().unwrap().push(bytes));
        (progress, calls)
    }

    fn drain(mut reader: impl Read, step: usize) -> usize {
        let mut buf = vec![0; step];
        let mut total = 0;
        loop {
            match reader.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    }

    #[test]
    fn progress_counts_a_body_once_even_when_it_is_sent_again() {
        let body = vec![7u8; 100_000];
        let (progress, calls) = recorder();
        let payload = progress.payload();
        // A first attempt that breaks off after 30 000 bytes…
        let mut first = payload.reader(0, std::io::Cursor::new(body.clone()));
        let mut buf = vec![0; 10_000];
        for _ in 0..3 {
            first.read_exact(&mut buf).unwrap();
        }
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 30_000);
        // …and a retry that sends the whole body again: only the new part counts, and the
        // hook is silent until the retry passes the furthest point.
        let calls_before = calls.lock().unwrap().len();
        let mut second = payload.reader(0, std::io::Cursor::new(body.clone()));
        for _ in 0..3 {
            second.read_exact(&mut buf).unwrap();
        }
        assert_eq!(calls.lock().unwrap().len(), calls_before);
        assert_eq!(drain(second, 4096), 70_000);
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 100_000);
        // A third, complete resend adds nothing.
        assert_eq!(
            drain(payload.reader(0, std::io::Cursor::new(body.clone())), 8192),
            100_000
        );
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn progress_of_chunks_resumed_at_the_registry_offset() {
        // A 10-byte blob in chunks of 4: 0-3, 4-7 breaks after 2 bytes, the registry says it
        // holds 0-5, so the upload resumes at 6 and sends 6-9.
        let blob: Vec<u8> = (0..10).collect();
        let (progress, calls) = recorder();
        let payload = progress.payload();
        assert_eq!(drain(payload.reader(0, &blob[0..4]), 3), 4);
        let mut broken = payload.reader(4, &blob[4..8]);
        let mut two = [0; 2];
        broken.read_exact(&mut two).unwrap();
        assert_eq!(drain(payload.reader(6, &blob[6..10]), 3), 4);
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 10);
        // A resume further back than what was sent re-sends without counting.
        assert_eq!(drain(payload.reader(2, &blob[2..10]), 5), 8);
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 10);
        // Another payload of the same upload counts on its own.
        let other = progress.payload();
        assert_eq!(drain(other.reader(0, &blob[..]), 10), 10);
        assert_eq!(calls.lock().unwrap().iter().sum::<u64>(), 20);
    }

    #[test]
    fn no_progress_is_a_plain_pass_through() {
        let payload = UploadProgress::none().payload();
        assert_eq!(drain(payload.reader(0, &[1u8, 2, 3][..]), 2), 3);
        payload.reach(10);
        assert_eq!(
            format!("{:?}", UploadProgress::none()),
            "UploadProgress(none)"
        );
    }

    #[test]
    fn authorization_is_bound_to_its_origin_and_redacted() {
        let origin = Url::parse("https://registry.example:443/v2/").unwrap();
        let auth = Authorization::bearer(&origin, &Secret::new("tok-123"));
        assert!(
            auth.applies_to(&Url::parse("https://registry.example/v2/x/blobs/uploads/").unwrap())
        );
        assert!(!auth.applies_to(&Url::parse("https://s3.example/bucket").unwrap()));
        assert!(!auth.applies_to(&Url::parse("http://registry.example/v2/").unwrap()));
        assert!(!auth.applies_to(&Url::parse("https://registry.example:8443/v2/").unwrap()));
        assert!(!format!("{auth:?}").contains("tok-123"));
    }
}
