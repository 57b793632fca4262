//! The network side of castoff: PyPI uploads, npm publishes and OCI distribution pushes,
//! with credentials that never leak. The only crate that opens sockets.
//!
//! Every client offers the same three operations per artifact, which the `publish` command
//! runs in this order:
//!
//! 1. **state**: ask the registry what it has under the artifact's immutable name
//!    ([`RemoteState`]: absent, identical, or conflicting content);
//! 2. **upload**: only when absent; retried per [`RetryPolicy`], and before each retry the
//!    client asks the registry again, because a failed attempt may have landed
//!    ([`UploadOutcome`]);
//! 3. **verify**: read back what the registry serves and compare digests.
//!
//! Errors are [`RegistryError`]s naming the artifact, the URL (without credentials) and the
//! server's explanation, with a `hint:`. Secrets live in [`Secret`], which never formats.

// `RegistryError` carries the artifact, URL, server explanation and hint as text (a few
// `String`s): bigger than clippy's threshold, irrelevant next to a network round trip, and
// boxing would only make every error site noisier.
#![allow(clippy::result_large_err)]

pub mod connect;
pub mod crates;
pub mod env;
pub mod error;
pub mod http;
pub mod npm;
pub mod oci;
pub mod oidc;
pub mod pypi;
pub mod retry;
pub mod secret;
pub mod serve;
pub mod source;

pub use error::RegistryError;
pub use http::{FailedAttempt, HttpClient, HttpConfig, RetryDecision};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use source::CredentialSource;

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("castoff/", env!("CARGO_PKG_VERSION"));

/// What a registry holds under an artifact's name, compared with the local artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
    /// Nothing under that name: upload.
    Absent,
    /// The same bytes (same digest) are there: skip.
    Identical,
    /// Other content under a name that may move (a floating OCI tag such as `latest` or `1.2`):
    /// upload replaces it.
    Replaceable { remote: String },
    /// Other content under an immutable name: stop, never overwrite. `local` and `remote` are
    /// the two digests (or integrity strings).
    Conflict { local: String, remote: String },
}

impl RemoteState {
    /// Whether an upload is needed (absent or replaceable).
    pub fn needs_upload(&self) -> bool {
        matches!(self, RemoteState::Absent | RemoteState::Replaceable { .. })
    }
}

/// The result of an upload call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// `Uploaded`, or `AlreadyPresent` when the registry turned out to hold the identical
    /// artifact (a duplicate answer or a retry after an attempt that landed).
    pub kind: UploadKind,
    /// HTTP attempts of the main upload request (1 when nothing was retried).
    pub attempts: u32,
    /// Bytes sent (artifact bytes; 0 when nothing was sent).
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Uploaded,
    AlreadyPresent,
}
