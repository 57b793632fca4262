//! Read-only pulls for base images: digest-pinned references, manifests and indexes by
//! digest (the bytes served must hash to the digest asked for), and blobs by digest streamed
//! to disk through a temporary file, verified, then renamed into place. Tokens are asked for
//! `pull` only: a base image is never written to.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::{AuthState, OciClient, OciCredentials, OciRepository, PushOptions, Scheme};
use super::{Descriptor, Digest, ManifestBlob, is_retryable};
use crate::error::{RegistryError, display_url};
use crate::http::{HttpClient, Request};

/// A reference pinned by digest: `ghcr.io/acme/base:1@sha256:<hex>` (the tag is informative
/// only; the digest decides what is pulled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedReference {
    pub repository: OciRepository,
    pub tag: Option<String>,
    pub digest: Digest,
}

impl PinnedReference {
    pub fn parse(reference: &str) -> Result<PinnedReference, RegistryError> {
        let fail = |message: String| {
            RegistryError::Config {
            what: format!("image reference `{reference}`"),
            message,
            hint: "write it as registry/repository@sha256:<digest>, e.g. gcr.io/distroless/static-debian12@sha256:… (find the digest with `skopeo inspect`)".to_owned(),
        }
        };
        let (name, digest) = reference
            .split_once('@')
            .ok_or_else(|| fail("not pinned by a digest (`@sha256:…`)".to_owned()))?;
        let digest: Digest = digest.parse().map_err(fail)?;
        // A tag follows the last `/` (a `:` before it belongs to the host's port).
        let last_slash = name.rfind('/').unwrap_or(0);
        let (name, tag) = match name[last_slash..].find(':') {
            Some(at) => (
                &name[..last_slash + at],
                Some(name[last_slash + at + 1..].to_owned()),
            ),
            None => (name, None),
        };
        Ok(PinnedReference {
            repository: OciRepository::parse(name)?,
            tag,
            digest,
        })
    }
}

impl OciClient {
    /// A client that only reads from `repository`: the token it asks for has `pull` scope
    /// alone, so read-only credentials (or none, for a public image) are enough.
    pub fn for_pull(
        http: &HttpClient,
        repository: OciRepository,
        credentials: OciCredentials,
    ) -> Result<OciClient, RegistryError> {
        http.check_url(&repository.registry, "registry")?;
        let scopes = vec![format!("repository:{}:pull", repository.name)];
        Ok(OciClient {
            http: http.clone(),
            repository,
            credentials,
            options: PushOptions::default(),
            scopes,
            state: Mutex::new(AuthState {
                scheme: Scheme::Unknown,
                token: None,
            }),
            credential_source: None,
            registry: std::sync::OnceLock::new(),
            referrers_api: std::sync::OnceLock::new(),
            present_blobs: std::sync::Mutex::default(),
            pushed_manifests: std::sync::Mutex::default(),
        })
    }

    /// `GET /v2/<name>/manifests/<digest>`: the manifest or index, whose bytes must hash to
    /// `digest`. Absent is an error naming the reference (a pinned digest never moves).
    pub fn pull_manifest(&self, digest: &Digest) -> Result<ManifestBlob, RegistryError> {
        let artifact = self.artifact(&format!("@{digest}"));
        let url = self.url(&format!("manifests/{digest}"));
        match self.fetch_manifest(digest.as_str())? {
            None => Err(RegistryError::Status {
                artifact,
                method: "GET".to_owned(),
                url: display_url(&url),
                status: 404,
                explanation: "MANIFEST_UNKNOWN: the registry has no manifest with this digest"
                    .to_owned(),
                hint: "check the reference: the repository name and the digest (`skopeo inspect docker://<image>` shows it); a deleted image cannot be pulled by digest".to_owned(),
            }),
            Some((served, _)) if &served != digest => Err(RegistryError::Verify {
                artifact,
                url: display_url(&url),
                expected: digest.to_string(),
                found: format!("bytes hashing to {served}"),
                hint: "the registry serves other content than asked for; check the registry or a proxy in between".to_owned(),
            }),
            Some((_, bytes)) => {
                ManifestBlob::parse(digest, bytes).map_err(|message| RegistryError::Protocol {
                    artifact,
                    url: display_url(&url),
                    message,
                    hint: "the manifest is not a valid OCI or Docker manifest".to_owned(),
                })
            }
        }
    }

    /// `GET /v2/<name>/blobs/<digest>` streamed into `destination` through a temporary file
    /// beside it, checked against the descriptor's digest and size, then renamed into place.
    /// A broken connection is retried per the retry policy; wrong bytes are an error at once.
    /// Returns the bytes received.
    pub fn pull_blob(&self, blob: &Descriptor, destination: &Path) -> Result<u64, RegistryError> {
        let artifact = self.artifact(&format!("@{}", blob.digest));
        let policy = self.http.config().retry.clone();
        let mut attempt = 1;
        loop {
            match self.pull_blob_once(blob, destination, &artifact, attempt) {
                Ok(size) => return Ok(size),
                Err(error) if attempt < policy.max_attempts && is_retryable(&error) => {
                    std::thread::sleep(policy.delay(attempt, None));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn pull_blob_once(
        &self,
        blob: &Descriptor,
        destination: &Path,
        artifact: &str,
        attempt: u32,
    ) -> Result<u64, RegistryError> {
        let url = self.url(&format!("blobs/{}", blob.digest));
        // Redirects (to a CDN or object store) are followed without the Authorization header.
        let response = self.execute(artifact, true, &|auth| {
            Request::new(Method::GET, url.clone())
                .auth(auth)
                .expect_response_bytes(blob.size)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(self.error(
                artifact,
                &Method::GET,
                &url,
                response,
                "the registry lacks a blob its manifest names; check the repository or pull another digest",
            ));
        }
        if !response.status().is_success() {
            return Err(self.error(
                artifact,
                &Method::GET,
                &url,
                response,
                "check the repository name",
            ));
        }
        let file_error = |path: &Path, error: std::io::Error| {
            RegistryError::artifact_file(
                path,
                format!("cannot write: {error}"),
                "check that the cache directory is writable and the disk has room",
            )
        };
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(|error| file_error(parent, error))?;
        }
        let temp = temp_beside(destination);
        let mut file = File::create(&temp).map_err(|error| file_error(&temp, error))?;
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        // One byte more than promised is enough to know the registry sent too much.
        let mut body = response.take(blob.size + 1);
        let result = loop {
            let read = match body.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(error) => {
                    break Err(RegistryError::Transport {
                        artifact: artifact.to_owned(),
                        method: "GET".to_owned(),
                        url: display_url(&url),
                        reason: format!(
                            "the download broke off after {received} bytes: {}",
                            crate::http::io_error_chain(&error)
                        ),
                        attempts: attempt,
                        hint: "check the connection to the registry and run again".to_owned(),
                    });
                }
            };
            hasher.update(&buffer[..read]);
            received += read as u64;
            if let Err(error) = file.write_all(&buffer[..read]) {
                break Err(file_error(&temp, error));
            }
        };
        let result = result
            .and_then(|()| file.sync_all().map_err(|error| file_error(&temp, error)))
            .and_then(|()| {
                let digest = Digest::from_sha256(&hasher.finalize().into());
                if digest != blob.digest || received != blob.size {
                    return Err(RegistryError::Verify {
                        artifact: artifact.to_owned(),
                        url: display_url(&url),
                        expected: format!("{} ({} bytes)", blob.digest, blob.size),
                        found: format!("{digest} ({received} bytes)"),
                        hint: "the registry serves other bytes than the manifest names; check the registry or a proxy in between".to_owned(),
                    });
                }
                Ok(())
            });
        drop(file);
        match result {
            Ok(()) => {
                std::fs::rename(&temp, destination)
                    .map_err(|error| file_error(destination, error))?;
                Ok(received)
            }
            Err(error) => {
                let _ = std::fs::remove_file(&temp);
                Err(error)
            }
        }
    }
}

/// `.<name>.partial-<pid>` beside `path`: never a blob name, unique per process.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "blob".into(), |name| name.to_string_lossy());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_references() {
        let hex = "a".repeat(64);
        let check = |reference: String, registry: &str, name: &str, tag: Option<&str>| {
            let pinned = PinnedReference::parse(&reference).unwrap();
            assert_eq!(pinned.repository.registry.as_str(), registry, "{reference}");
            assert_eq!(pinned.repository.name, name, "{reference}");
            assert_eq!(pinned.tag.as_deref(), tag, "{reference}");
            assert_eq!(pinned.digest.hex(), "a".repeat(64));
        };
        check(
            format!("127.0.0.1:5000/base/greeter@sha256:{hex}"),
            "https://127.0.0.1:5000/",
            "base/greeter",
            None,
        );
        check(
            format!("127.0.0.1:5000/base/greeter:1@sha256:{hex}"),
            "https://127.0.0.1:5000/",
            "base/greeter",
            Some("1"),
        );
        check(
            format!("gcr.io/distroless/cc-debian12:nonroot@sha256:{hex}"),
            "https://gcr.io/",
            "distroless/cc-debian12",
            Some("nonroot"),
        );
        assert!(PinnedReference::parse("gcr.io/distroless/static:latest").is_err());
        assert!(PinnedReference::parse("gcr.io/distroless/static@sha256:abc").is_err());
    }
}
