//! Faults on the wire, registries that say no, and tokens that stop working mid-push: castoff
//! publishes through fault-injecting proxies (`hardening/proxy.rs`) in front of pypiserver,
//! Verdaccio and the distribution registries. Transient faults (resets, 503, 429 with
//! `Retry-After`, stalls past the timeout, truncated answers) at several rates end in a complete
//! publish within a bounded number of runs; refusals (400, 401, 403, 413) stop the run with a
//! message naming the artifact, the registry and the server's explanation, and a re-run after
//! the fix completes; an unexpected 401 with a fresh challenge mid-push is answered by a new
//! token, transparently; a chunked image blob upload whose chunk breaks off resumes from the
//! registry's `Range`. Every run's output is checked for secrets.

use std::fs;
use std::time::{Duration, Instant};

use super::hardening;
use super::hardening::proxy::{ALL_FAULTS, Cut, Fault, Logged, Proxy, Refusal};
use super::hardening::{
    Endpoints, assert_served_exactly, json, publish_to, sequence_workspace, text,
};
use castoff_test_support::TestEnv;

/// Proxies in front of pypiserver, Verdaccio, the registry and devpi (last: the tests that
/// script refusals leave it alone).
fn proxies(env: &TestEnv, registry: &str) -> (Proxy, Proxy, Proxy, Endpoints, Proxy) {
    let pypi = Proxy::start(TestEnv::host_port(&env.pypiserver));
    let npm = Proxy::start(TestEnv::host_port(&env.verdaccio));
    let oci = Proxy::start(TestEnv::host_port(registry));
    let devpi = Proxy::start(TestEnv::host_port(&env.devpi));
    // devpi's index path (`ci/dev/`) on the proxy's origin.
    let index_path = env
        .devpi
        .splitn(4, '/')
        .nth(3)
        .unwrap_or_default()
        .to_owned();
    let endpoints = Endpoints {
        pypi: pypi.url(),
        devpi: format!("{}{index_path}", devpi.url()),
        npm: npm.url(),
        registry: oci.host_port(),
    };
    (pypi, npm, oci, endpoints, devpi)
}

/// Retries in the last report: attempts beyond the first, over every step.
fn retries_in_report(workspace: &std::path::Path) -> u64 {
    let Ok(bytes) = fs::read(workspace.join("dist/publish-report.json")) else {
        return 0;
    };
    json(&bytes)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["attempts"].as_u64().unwrap_or(0).saturating_sub(1))
        .sum()
}

#[test]
fn transient_faults_at_several_rates_end_in_a_complete_publish() {
    let env = TestEnv::get();
    let timeout = [("CASTOFF_HTTP_TIMEOUT_SECS", "1")];
    for period in [5, 3] {
        let started = Instant::now();
        let name = format!("f{}p{period}", std::process::id());
        let workspace = sequence_workspace(&env, &name);
        let (pypi, npm, oci, endpoints, devpi) = proxies(&env, &env.registry_open);
        let all = [&pypi, &devpi, &npm, &oci];
        for proxy in all {
            proxy.inject(period, &ALL_FAULTS, Duration::from_millis(1500));
        }
        let mut runs = 0;
        let mut upload_retries = 0;
        loop {
            runs += 1;
            for proxy in all {
                proxy.begin_run();
            }
            let output = publish_to(&env, &workspace, &name, &endpoints, None, &timeout);
            upload_retries += retries_in_report(&workspace);
            if output.status.success() {
                break;
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("hint:"),
                "a failure without a hint:\n{stderr}"
            );
            assert!(
                runs < 4,
                "1 fault in {period}: still failing after {runs} runs\n{}",
                text(&output)
            );
        }
        for proxy in all {
            proxy.inject(0, &[], Duration::ZERO);
        }
        assert_served_exactly(&env, &workspace, &name, &format!("1 fault in {period}"));
        let injected: Vec<Fault> = all.iter().flat_map(|proxy| proxy.injected()).collect();
        let requests: u64 = all.iter().map(|proxy| proxy.requests()).sum();
        // Every retry, whatever the request (registry queries, uploads, credential checks):
        // a request that repeats one that got a fault earlier in the same run.
        let retries: u64 = all.iter().map(|proxy| proxy.retries()).sum();
        let count = |fault: Fault| injected.iter().filter(|f| **f == fault).count();
        env.figure(format!(
            "faults 1 in {period}: {} requests, {} faults injected (reset {}, 503 {}, 429 {}, stall {}, truncated {}), {retries} retries (queries, uploads, credential checks; {upload_retries} of uploads per the reports), {} faults answered without a repeat (the registry had the upload, or the run ended), {runs} run(s), {:.0}s",
            requests,
            injected.len(),
            count(Fault::Reset),
            count(Fault::Unavailable),
            count(Fault::TooManyRequests),
            count(Fault::Stall),
            count(Fault::Truncate),
            injected.len() as u64 - retries.min(injected.len() as u64),
            started.elapsed().as_secs_f64()
        ));
        assert!(
            injected.len() >= 5,
            "too few faults were injected: {injected:?}"
        );
        assert!(retries >= 1, "no faulted request was retried");
    }
}

/// PATCH body bytes of one blob upload session path, as (sent by castoff, stored upstream).
fn patch_bytes(log: &[Logged], repository: &str) -> (u64, u64) {
    log.iter()
        .filter(|l| {
            l.request_line
                .starts_with(&format!("PATCH /v2/{repository}/blobs/uploads/"))
        })
        .fold((0, 0), |(sent, stored), l| {
            (sent + l.body, stored + l.forwarded)
        })
}

fn count(log: &[Logged], prefix: &str) -> usize {
    log.iter()
        .filter(|l| l.request_line.starts_with(prefix))
        .count()
}

/// Chunked image blob uploads under a connection that breaks during a PATCH, against the real
/// distribution registry: castoff asks the upload URL for its `Range` (a GET) and continues
/// from there in the same session when the chunk never arrived, so the bytes stored upstream
/// are exactly the blob's; when part of the chunk was stored, distribution drops the session
/// and castoff starts the blob again in a new one, in the same push. Either way the registry
/// ends with the exact blob. Judged from the proxy's log, never by timing.
#[test]
fn a_chunked_upload_broken_mid_blob_resumes_from_the_registrys_range() {
    use castoff_registry::oci::{Digest, OciClient, OciCredentials, OciLayout, OciRepository};
    use castoff_registry::{HttpClient, HttpConfig, oci::PushOptions};

    let env = TestEnv::get();
    let name = format!("c{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let manifest = castoff_plan::Manifest::from_json(
        &fs::read_to_string(workspace.join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let image: Digest = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "oci-image")
        .and_then(|a| a.digest.clone())
        .unwrap()
        .parse()
        .unwrap();
    let layout = OciLayout::open(&workspace.join("dist/oci/badin")).unwrap();
    let blobs = layout.manifest(&image).unwrap().blobs;
    let layer = blobs.iter().max_by_key(|blob| blob.size).unwrap().clone();
    // Five chunks for the layer; the config blob stays monolithic.
    let chunk = layer.size.div_ceil(5);
    assert!(
        chunk > 1024,
        "the layer is too small to chunk: {}",
        layer.size
    );
    let options = PushOptions {
        mount_from: Vec::new(),
        chunk_threshold: 1024,
        chunk_size: chunk,
    };
    let proxy = Proxy::start(TestEnv::host_port(&env.registry_open));
    let http = HttpClient::new(HttpConfig::from_env()).unwrap();
    let push = |repository: &str| {
        let client = OciClient::new(
            &http,
            OciRepository::parse(&format!("{}/{repository}", proxy.host_port())).unwrap(),
            OciCredentials::Anonymous,
            options.clone(),
        )
        .unwrap();
        client
            .push(&layout, &image)
            .unwrap_or_else(|e| panic!("{repository}: {e}"));
        client
            .verify(image.as_str(), &image)
            .unwrap_or_else(|e| panic!("{repository}: {e}"));
        let (status, served) = hardening::fetch(
            &format!(
                "{}/v2/{repository}/blobs/{}",
                env.registry_open, layer.digest
            ),
            &[],
        );
        assert_eq!(status, "200", "{repository}: layer");
        assert!(
            served == fs::read(layout.blob_path(&layer.digest)).unwrap(),
            "{repository}: the layer served differs from dist/'s"
        );
    };

    // 1. The third chunk breaks before reaching the registry: resumed from `Range`.
    let resumed = format!("{name}/resumed");
    proxy.cut(Some(Cut {
        matching: format!("PATCH /v2/{resumed}/blobs/uploads/"),
        nth: 3,
        forward: None,
    }));
    push(&resumed);
    let log = proxy.log();
    let (sent, stored) = patch_bytes(&log, &resumed);
    let status_requests = count(&log, &format!("GET /v2/{resumed}/blobs/uploads/"));
    let sessions = count(&log, &format!("POST /v2/{resumed}/blobs/uploads/"));
    assert!(
        log.iter().any(|l| l.faulted),
        "the cut was not reached: {log:#?}"
    );
    assert!(
        status_requests >= 1,
        "no upload status request (GET): {log:#?}"
    );
    assert_eq!(
        stored, layer.size,
        "the registry received bytes twice or missed some: {log:#?}"
    );
    assert!(
        sent < 2 * layer.size && sent == layer.size + chunk,
        "castoff resent more than the broken chunk ({sent} bytes for a {} byte blob): {log:#?}",
        layer.size
    );
    // One session per blob (config and layers): the layer was not started over.
    assert_eq!(sessions, blobs.len(), "the upload was restarted: {log:#?}");
    env.figure(format!(
        "chunked resume: {} byte layer in {} chunks of {chunk}; chunk 3 cut before the registry; {status_requests} status GET, {sent} bytes sent ({} resent), {stored} stored, {sessions} upload sessions for {} blobs",
        layer.size,
        layer.size.div_ceil(chunk),
        sent - layer.size,
        blobs.len()
    ));

    // 2. The second chunk breaks after half of it was stored.
    let restarted = format!("{name}/partial");
    proxy.cut(Some(Cut {
        matching: format!("PATCH /v2/{restarted}/blobs/uploads/"),
        nth: 2,
        forward: Some((chunk / 2) as usize),
    }));
    let before = proxy.log().len();
    push(&restarted);
    let log = proxy.log()[before..].to_vec();
    let (sent, stored) = patch_bytes(&log, &restarted);
    let status_requests = count(&log, &format!("GET /v2/{restarted}/blobs/uploads/"));
    let sessions = count(&log, &format!("POST /v2/{restarted}/blobs/uploads/"));
    assert!(
        status_requests >= 1,
        "no upload status request (GET): {log:#?}"
    );
    // distribution answered the status request with 404 (the stored half-chunk no longer
    // matches the session's state token): one more session, in the same push, for the layer.
    assert_eq!(
        sessions,
        blobs.len() + 1,
        "the layer was not started again: {log:#?}"
    );
    assert_eq!(
        stored,
        layer.size + chunk + chunk / 2,
        "bytes stored: the abandoned session's, then the whole layer once: {log:#?}"
    );
    env.figure(format!(
        "chunked, chunk 2 cut after {} of its bytes were stored: {status_requests} status GET, {sent} bytes sent, {stored} stored, {sessions} upload sessions for {} blobs",
        chunk / 2,
        blobs.len()
    ));
}

fn refusal(matching: &str, status: u16, reason: &str, body: &str) -> Refusal {
    Refusal {
        matching: matching.to_owned(),
        status,
        reason: reason.to_owned(),
        body: body.to_owned(),
        headers: Vec::new(),
        times: 1,
    }
}

#[test]
fn refusals_stop_the_run_naming_artifact_registry_and_reason_and_a_rerun_completes() {
    let env = TestEnv::get();
    let name = format!("r{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let (pypi, npm, oci, endpoints, _devpi) = proxies(&env, &env.registry_open);
    // One refusal per run, in publish order; each run gets past the previous one.
    let cases: Vec<(&Proxy, Refusal, &str, &str)> = vec![
        (
            &pypi,
            // Twice: publish's preflight first sends a file-less upload request to check the
            // credentials (any answer but 401/403 passes it), then the real upload gets the 400.
            Refusal {
                times: 2,
                ..refusal(
                    "POST /",
                    400,
                    "Invalid distribution metadata",
                    "400 Invalid distribution metadata: classifier is unknown",
                )
            },
            "pypi-upload/",
            "classifier is unknown",
        ),
        (
            &npm,
            refusal(
                &format!("PUT /@{name}%2fbadin-linux-x64-gnu"),
                403,
                "Forbidden",
                "{\"error\":\"user ci is not allowed to publish package badin-linux-x64-gnu\"}",
            ),
            "npm-publish/badin/",
            "not allowed to publish",
        ),
        (
            &npm,
            refusal(
                &format!("PUT /@{name}%2fbadin "),
                401,
                "Unauthorized",
                "{\"error\":\"token expired\"}",
            ),
            "npm-publish/badin",
            "token expired",
        ),
        (
            &oci,
            refusal(
                "/blobs/uploads/",
                413,
                "Request Entity Too Large",
                "{\"errors\":[{\"code\":\"SIZE_INVALID\",\"message\":\"blob too large for this registry\"}]}",
            ),
            "oci-push-image/",
            "too large",
        ),
    ];
    for (proxy, refusal, artifact, explanation) in &cases {
        proxy.refuse(Some(refusal.clone()));
        let output = publish_to(&env, &workspace, &name, &endpoints, None, &[]);
        let all = text(&output);
        assert!(
            !output.status.success(),
            "{} was not refused\n{all}",
            refusal.status
        );
        assert!(proxy.refused() >= 1, "the refusal was not reached\n{all}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(artifact),
            "the message does not name {artifact}:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("127.0.0.1:{}", proxy.port)),
            "the message does not name the registry:\n{stderr}"
        );
        assert!(
            stderr.contains(explanation),
            "the message does not carry the server's explanation `{explanation}`:\n{stderr}"
        );
        assert!(stderr.contains("hint:"), "{stderr}");
        proxy.refuse(None);
    }
    let output = publish_to(&env, &workspace, &name, &endpoints, None, &[]);
    assert!(
        output.status.success(),
        "the re-run after the fixes failed\n{}",
        text(&output)
    );
    assert_served_exactly(&env, &workspace, &name, "after the refusals");
    env.figure(format!(
        "refusals: {} (400, 403, 401, 413), each named and resumed",
        cases.len()
    ));
}

#[test]
fn an_unexpected_401_mid_push_gets_a_fresh_token_transparently() {
    let env = TestEnv::get();
    let name = format!("t{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let (_pypi, _npm, oci, endpoints, _devpi) = proxies(&env, &env.registry_token);
    // The registry's token "expires" while the image is pushed: the manifest PUT, after the
    // blobs went up with the first token, is answered once with 401 and a fresh challenge.
    let challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\",scope=\"repository:{name}/badin:pull,push\",error=\"invalid_token\"",
        env.token_server, env.token_service
    );
    oci.refuse(Some(Refusal {
        headers: vec![("WWW-Authenticate".to_owned(), challenge)],
        ..refusal(
            &format!("PUT /v2/{name}/badin/manifests/"),
            401,
            "Unauthorized",
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"token expired\"}]}",
        )
    }));
    let credentials = [
        ("CASTOFF_OCI_USERNAME", env.user.as_str()),
        ("CASTOFF_OCI_PASSWORD", env.password.as_str()),
    ];
    let output = publish_to(&env, &workspace, &name, &endpoints, None, &credentials);
    assert_eq!(
        oci.refused(),
        1,
        "the 401 was not reached\n{}",
        text(&output)
    );
    assert!(
        output.status.success(),
        "a 401 mid-push was not answered with a fresh token\n{}",
        text(&output)
    );
}

#[test]
fn a_redirect_to_another_host_never_carries_the_credentials() {
    let env = TestEnv::get();
    let name = format!("d{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let index_digest = castoff_plan::Manifest::from_json(
        &fs::read_to_string(workspace.join("dist/manifest.json")).unwrap(),
    )
    .unwrap()
    .artifacts
    .iter()
    .find(|a| a.id.starts_with("oci-index/"))
    .and_then(|a| a.digest.clone())
    .unwrap();
    // `front` is the registry castoff talks to (with Basic credentials); it redirects the
    // requests for the index to `storage`, another origin that plays a pre-signed storage URL:
    // it needs nothing from the client and fetches from the registry with its own credentials.
    let front = Proxy::start(TestEnv::host_port(&env.registry_basic));
    let storage = Proxy::start(TestEnv::host_port(&env.registry_basic));
    storage.authorize_upstream(Some(format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", env.user, env.password)
        )
    )));
    let path = format!("/v2/{name}/badin/manifests/{index_digest}");
    front.refuse(Some(Refusal {
        headers: vec![(
            "Location".to_owned(),
            format!("http://{}{path}", storage.host_port()),
        )],
        times: 100,
        ..refusal(&format!("{path} "), 307, "Temporary Redirect", "")
    }));
    let endpoints = Endpoints {
        registry: front.host_port(),
        ..Endpoints::direct(&env)
    };
    let credentials = [
        ("CASTOFF_OCI_USERNAME", env.user.as_str()),
        ("CASTOFF_OCI_PASSWORD", env.password.as_str()),
    ];
    let output = publish_to(&env, &workspace, &name, &endpoints, None, &credentials);
    assert!(output.status.success(), "{}", text(&output));
    assert!(front.refused() >= 1, "no request was redirected");
    assert!(
        front.authorized() >= 1,
        "castoff sent no credentials to the registry"
    );
    assert!(storage.requests() >= 1, "the redirect was not followed");
    assert_eq!(
        storage.authorized(),
        0,
        "the other host received the registry's Authorization"
    );
}
