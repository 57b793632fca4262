//! Upload progress (`UploadProgress`): the bytes the hook reports add up to the artifact bytes
//! sent, against the real local registries of `cargo xtask test` (a wheel to pypiserver, a
//! tarball to Verdaccio, an image index to distribution in one PUT per blob and in chunks),
//! and on a retry (a stand-in server that fails the first attempt after reading its body):
//! the re-sent bytes are not counted twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::*;
use castoff_registry::http::UploadProgress;
use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry, NpmTarball};
use castoff_registry::oci::{
    Digest, OciClient, OciCredentials, OciLayout, OciRepository, PushOptions,
};
use castoff_registry::pypi::{PypiClient, PypiCredentials, PypiRepository, WheelFile};
use castoff_registry::{Secret, UploadKind};
use castoff_test_support::TestEnv;

/// A hook that adds up what it is told, and counts its calls.
fn counter() -> (UploadProgress, Arc<AtomicU64>, Arc<AtomicU64>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let (sum, count) = (Arc::clone(&bytes), Arc::clone(&calls));
    let progress = UploadProgress::new(move |n| {
        sum.fetch_add(n, Ordering::SeqCst);
        count.fetch_add(1, Ordering::SeqCst);
    });
    (progress, bytes, calls)
}

#[test]
fn pypi_upload_reports_the_wheel_bytes() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("progress-pypi");
    let project = format!("castoff-progress-{}", unique_suffix());
    let wheel = WheelFile::open(&write_wheel(&dir, &project, &unique_version(), "first")).unwrap();
    let repository = PypiRepository::new(
        &env.pypiserver,
        None,
        PypiCredentials::Password {
            username: env.user.clone(),
            password: Secret::new(env.password.clone()),
        },
    )
    .unwrap();
    let client = PypiClient::new(&http(), repository).unwrap();
    let (progress, bytes, calls) = counter();
    let outcome = client.upload_with_progress(&wheel, &progress).unwrap();
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    assert_eq!(bytes.load(Ordering::SeqCst), wheel.size);
    assert_eq!(outcome.bytes, wheel.size);
    assert!(calls.load(Ordering::SeqCst) >= 1);
}

fn npm_client(url: &str, token: &str) -> NpmClient {
    let registry = NpmRegistry::new(url, NpmCredentials::Token(Secret::new(token))).unwrap();
    NpmClient::new(&http(), registry).unwrap()
}

#[test]
fn npm_publish_reports_the_tarball_bytes() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("progress-npm");
    let name = format!("castoff-progress-{}", unique_suffix());
    let tarball =
        NpmTarball::open(&write_npm_tarball(&dir, &name, &unique_version(), "first")).unwrap();
    let client = npm_client(&env.verdaccio, &env.npm_token);
    let (progress, bytes, _) = counter();
    let outcome = client
        .upload_with_progress(&tarball, None, &progress)
        .unwrap();
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    // Counted before base64: the tarball's size, not the JSON document's.
    assert_eq!(bytes.load(Ordering::SeqCst), tarball.size);
}

/// A publish whose first PUT the server reads completely and answers 503: the client asks
/// for the packument (404: not there), sends the whole document again, and the hook's total
/// is still the tarball's size.
#[test]
fn a_retried_upload_is_not_counted_twice() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("progress-retry");
    let tarball = NpmTarball::open(&write_npm_tarball(
        &dir,
        "castoff-progress-retry",
        "1.0.0",
        "first",
    ))
    .unwrap();
    let puts = Arc::new(AtomicU64::new(0));
    let seen_puts = Arc::clone(&puts);
    let server = StandIn::start(move |request, _| match request.method.as_str() {
        "PUT" if seen_puts.fetch_add(1, Ordering::SeqCst) == 0 => (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0".into(),
            String::new(),
        ),
        "PUT" => ("HTTP/1.1 201 Created".into(), r#"{"ok":true}"#.into()),
        _ => (
            "HTTP/1.1 404 Not Found".into(),
            r#"{"error":"not found"}"#.into(),
        ),
    });
    let client = npm_client(&server.url, "stand-in-token");
    let (progress, bytes, _) = counter();
    let outcome = client
        .upload_with_progress(&tarball, None, &progress)
        .unwrap();
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    assert_eq!(outcome.attempts, 2);
    let bodies: Vec<usize> = server
        .requests()
        .iter()
        .filter(|request| request.method == "PUT")
        .map(|request| request.body.len())
        .collect();
    assert_eq!(bodies.len(), 2, "the document was sent twice");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bytes.load(Ordering::SeqCst), tarball.size);
}

/// Blobs in one PUT each, then (another repository, small chunks) in PATCHes: the hook's
/// total is the blob bytes, i.e. the outcome's bytes without the manifests.
#[test]
fn oci_push_reports_blob_bytes_monolithic_and_chunked() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("progress-oci");
    let (index, manifests) = write_oci_layout(
        &dir,
        "1.0.0",
        &unique_suffix(),
        &["linux/amd64", "linux/arm64"],
        300_000,
    );
    let layout = OciLayout::open(&dir).unwrap();
    let index: Digest = index.parse().unwrap();
    let manifest_bytes: u64 = std::iter::once(index.clone())
        .chain(manifests.iter().map(|digest| digest.parse().unwrap()))
        .map(|digest| layout.manifest(&digest).unwrap().bytes.len() as u64)
        .sum();
    for (name, options) in [
        ("monolithic", PushOptions::default()),
        (
            "chunked",
            PushOptions {
                chunk_threshold: 64 * 1024,
                chunk_size: 64 * 1024,
                ..PushOptions::default()
            },
        ),
    ] {
        let repository = OciRepository::parse(&format!(
            "{}/castoff-test/progress-{name}-{}",
            env.registry_open,
            unique_suffix()
        ))
        .unwrap();
        let client =
            OciClient::new(&http(), repository, OciCredentials::Anonymous, options).unwrap();
        let (progress, bytes, calls) = counter();
        let outcome = client
            .push_with_progress(&layout, &index, &progress)
            .unwrap();
        assert_eq!(outcome.kind, UploadKind::Uploaded, "{name}");
        let blob_bytes = outcome.bytes - manifest_bytes;
        assert!(blob_bytes > 600_000, "{name}: {blob_bytes}");
        assert_eq!(bytes.load(Ordering::SeqCst), blob_bytes, "{name}");
        if name == "chunked" {
            // Two 300 KB layers in 64 KiB chunks: several reports each.
            assert!(calls.load(Ordering::SeqCst) >= 10, "{name}");
        }
        // Pushed again: everything is there, nothing is sent or counted.
        let (progress, bytes, _) = counter();
        let again = client
            .push_with_progress(&layout, &index, &progress)
            .unwrap();
        assert_eq!(again.kind, UploadKind::AlreadyPresent, "{name}");
        assert_eq!(bytes.load(Ordering::SeqCst), 0, "{name}");
    }
}
