//! The OCI client against real distribution registries (from `cargo xtask test`): open,
//! htpasswd (Basic), TLS with a private CA, and token auth (Bearer flow with a token server).
//! Pushes an index of two images, tags it, skips what exists, refuses a moved version tag,
//! uploads in chunks, mounts across repositories, and checks the result with skopeo.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::*;
use castoff_registry::oci::{
    Digest, OciClient, OciCredentials, OciLayout, OciRepository, PushOptions, resolve_credentials,
};
use castoff_registry::{HttpClient, RegistryError, RemoteState, Secret, UploadKind};
use castoff_test_support::TestEnv;

fn repository(base: &str, name: &str) -> OciRepository {
    OciRepository::parse(&format!("{base}/{name}")).expect("repository")
}

fn basic(env: &TestEnv) -> OciCredentials {
    OciCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(env.password.clone()),
    }
}

fn client(
    env: &TestEnv,
    http: &HttpClient,
    base: &str,
    name: &str,
    credentials: OciCredentials,
    options: PushOptions,
) -> OciClient {
    let client =
        OciClient::new(http, repository(base, name), credentials, options).expect("client");
    env.assert_no_secret(&format!("{client:?}"));
    client
}

fn check_error(env: &TestEnv, error: &RegistryError) -> String {
    let text = format!(
        "{}\n{error:?}",
        castoff_test_support::with_hint(error, error.hint())
    );
    env.assert_no_secret(&text);
    text
}

fn layout(
    env: &TestEnv,
    name: &str,
    marker: &str,
    padding: usize,
) -> (OciLayout, Digest, Vec<Digest>) {
    let dir = env.scratch_dir(name);
    let (index, manifests) = write_oci_layout(
        &dir,
        "1.0.0",
        marker,
        &["linux/amd64", "linux/arm64"],
        padding,
    );
    let layout = OciLayout::open(&dir).expect("layout");
    (
        layout,
        index.parse().unwrap(),
        manifests.iter().map(|d| d.parse().unwrap()).collect(),
    )
}

/// Images children first, then the index, then tags; what exists is skipped; the version tag
/// never moves; skopeo reads back the same digests.
#[test]
fn open_registry_push_tag_skip_conflict_verify_with_skopeo() {
    let env = TestEnv::get();
    let name = format!("castoff-test/open-{}", unique_suffix());
    let (layout, index, manifests) = layout(&env, "oci-open", "first", 0);
    let client = client(
        &env,
        &http(),
        &env.registry_open,
        &name,
        OciCredentials::Anonymous,
        PushOptions::default(),
    );
    client.preflight().expect("preflight");

    assert_eq!(client.manifest_state(&index).unwrap(), RemoteState::Absent);
    assert_eq!(
        client.tag_state("1.0.0", &index, false).unwrap(),
        RemoteState::Absent
    );
    for manifest in &manifests {
        assert_eq!(
            client.push(&layout, manifest).unwrap().kind,
            UploadKind::Uploaded
        );
        client
            .verify(manifest.as_str(), manifest)
            .expect("verify image");
    }
    let outcome = client.push(&layout, &index).expect("push index");
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    // The images were there already: only the index's own bytes went up.
    let index_size = std::fs::metadata(layout.blob_path(&index)).unwrap().len();
    assert_eq!(outcome.bytes, index_size);
    for tag in ["1.0.0", "latest"] {
        client.tag(&layout, &index, tag).expect("tag");
        client.verify(tag, &index).expect("verify tag");
        assert_eq!(
            client.tag_state(tag, &index, tag == "latest").unwrap(),
            RemoteState::Identical
        );
    }
    assert_eq!(
        client.push(&layout, &index).unwrap().kind,
        UploadKind::AlreadyPresent
    );

    // Rebuilt with other content: the version tag is a conflict, `latest` may move.
    let (_, other_index, _) = layout_other(&env);
    assert_eq!(
        client.tag_state("1.0.0", &other_index, false).unwrap(),
        RemoteState::Conflict {
            local: other_index.to_string(),
            remote: index.to_string()
        }
    );
    assert_eq!(
        client.tag_state("latest", &other_index, true).unwrap(),
        RemoteState::Replaceable {
            remote: index.to_string()
        }
    );

    // skopeo sees the same index and images.
    let host = TestEnv::host_port(&env.registry_open);
    let reference = format!("docker://{host}/{name}:1.0.0");
    let raw = run(
        &env,
        Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", &reference]),
    );
    assert_eq!(Digest::of(raw.as_bytes()), index);
    let copy = env.scratch_dir("oci-open-skopeo-copy");
    run(
        &env,
        Command::new("skopeo")
            .args([
                "copy",
                "--all",
                "--insecure-policy",
                "--src-tls-verify=false",
                &reference,
            ])
            .arg(format!("oci:{}:copied", copy.display())),
    );
    let copied = OciLayout::open(&copy).unwrap();
    let (root, _) = copied.roots().unwrap().into_iter().next().unwrap();
    assert_eq!(root.digest, index);
    let copied_index = copied.manifest(&index).unwrap();
    assert_eq!(
        copied_index
            .children
            .iter()
            .map(|c| c.digest.clone())
            .collect::<Vec<_>>(),
        manifests
    );
}

fn layout_other(env: &TestEnv) -> (OciLayout, Digest, Vec<Digest>) {
    layout(env, "oci-open-other", "second", 0)
}

/// Large blobs in chunks (forced by a small threshold), then the same blobs mounted into a
/// second repository instead of uploaded again; credentials from a Docker config.json.
#[test]
fn basic_auth_chunked_upload_and_cross_repository_mount() {
    let env = TestEnv::get();
    let suffix = unique_suffix();
    let first = format!("castoff-test/chunked-{suffix}");
    let second = format!("castoff-test/mounted-{suffix}");
    let (layout, index, _) = layout(&env, "oci-chunked", "chunked", 300 * 1024);

    // Credentials the Docker way.
    let config_dir = env.scratch_dir("oci-docker-config");
    let host = TestEnv::host_port(&env.registry_basic);
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", env.user, env.password))
    };
    std::fs::write(
        config_dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let vars: BTreeMap<String, String> =
        [("DOCKER_CONFIG".to_owned(), config_dir.display().to_string())].into();
    let (credentials, source) =
        resolve_credentials(&vars, &repository(&env.registry_basic, &first), None)
            .expect("credentials");
    assert_eq!(credentials, basic(&env));
    env.assert_no_secret(&format!("{credentials:?} {source:?}"));
    assert_eq!(
        source.map(|source| source.to_string()),
        Some(format!(
            "the auths entry `{host}` of {}",
            config_dir.join("config.json").display()
        ))
    );

    let chunked = PushOptions {
        chunk_threshold: 64 * 1024,
        chunk_size: 100 * 1024,
        ..PushOptions::default()
    };
    let pusher = client(
        &env,
        &http(),
        &env.registry_basic,
        &first,
        credentials.clone(),
        chunked,
    );
    pusher.preflight().expect("preflight with Basic");
    let outcome = pusher.push(&layout, &index).expect("chunked push");
    assert!(outcome.bytes > 600 * 1024, "{outcome:?}");
    pusher.tag(&layout, &index, "1.0.0").unwrap();
    pusher.verify("1.0.0", &index).expect("verify");

    let mounter = client(
        &env,
        &http(),
        &env.registry_basic,
        &second,
        credentials,
        PushOptions {
            mount_from: vec![first.clone()],
            ..PushOptions::default()
        },
    );
    let outcome = mounter.push(&layout, &index).expect("push with mount");
    let manifest_bytes: u64 = std::iter::once(&index)
        .chain(
            layout
                .manifest(&index)
                .unwrap()
                .children
                .iter()
                .map(|c| &c.digest),
        )
        .map(|digest| std::fs::metadata(layout.blob_path(digest)).unwrap().len())
        .sum();
    assert_eq!(
        outcome.bytes, manifest_bytes,
        "blobs must be mounted, not uploaded"
    );
    mounter
        .verify(index.as_str(), &index)
        .expect("verify mounted");

    // Wrong and missing credentials.
    let wrong = OciCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(format!("{}-wrong", env.password)),
    };
    let error = client(
        &env,
        &http(),
        &env.registry_basic,
        &first,
        wrong,
        PushOptions::default(),
    )
    .preflight()
    .expect_err("wrong password");
    let text = check_error(&env, &error);
    assert_eq!(error.status(), Some(401), "{text}");
    assert!(text.contains("rejected the credentials"), "{text}");
    let error = client(
        &env,
        &http(),
        &env.registry_basic,
        &first,
        OciCredentials::Anonymous,
        PushOptions::default(),
    )
    .preflight()
    .expect_err("anonymous");
    let text = check_error(&env, &error);
    assert!(text.contains("no credentials were configured"), "{text}");
}

/// The Bearer challenge flow against distribution's token auth: token with push scope, pull
/// scope for the mount source, refusal for anonymous and wrong passwords.
#[test]
fn token_registry_bearer_flow_push_and_mount() {
    let env = TestEnv::get();
    let suffix = unique_suffix();
    let first = format!("castoff-test/token-{suffix}");
    let second = format!("castoff-test/token-mounted-{suffix}");
    let (layout, index, _) = layout(&env, "oci-token", "token", 0);

    let pusher = client(
        &env,
        &http(),
        &env.registry_token,
        &first,
        basic(&env),
        PushOptions::default(),
    );
    pusher.preflight().expect("preflight with a token");
    pusher.push(&layout, &index).expect("push");
    pusher.tag(&layout, &index, "1.0.0").unwrap();
    pusher.verify("1.0.0", &index).unwrap();

    let mounter = client(
        &env,
        &http(),
        &env.registry_token,
        &second,
        basic(&env),
        PushOptions {
            mount_from: vec![first],
            ..PushOptions::default()
        },
    );
    let outcome = mounter.push(&layout, &index).expect("push with mount");
    assert!(outcome.bytes < 4096, "blobs must be mounted: {outcome:?}");
    mounter.verify(index.as_str(), &index).unwrap();

    let anonymous = client(
        &env,
        &http(),
        &env.registry_token,
        &second,
        OciCredentials::Anonymous,
        PushOptions::default(),
    );
    let error = anonymous.preflight().expect_err("anonymous");
    let text = check_error(&env, &error);
    assert!(
        text.contains("not push") && text.contains("no credentials were configured"),
        "{text}"
    );

    let wrong = OciCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(format!("{}-wrong", env.password)),
    };
    let error = client(
        &env,
        &http(),
        &env.registry_token,
        &second,
        wrong,
        PushOptions::default(),
    )
    .preflight()
    .expect_err("wrong password");
    let text = check_error(&env, &error);
    assert!(
        text.contains("token server refused") && text.contains("rejected the credentials"),
        "{text}"
    );
}

/// HTTPS with a private CA: trusted through the CA option; without it, a clear TLS error.
#[test]
fn tls_registry_with_private_ca_and_wrong_ca() {
    let env = TestEnv::get();
    let name = format!("castoff-test/tls-{}", unique_suffix());
    let (layout, index, _) = layout(&env, "oci-tls", "tls", 0);
    let trusted = http_with_ca(&env.ca_cert);
    let pusher = client(
        &env,
        &trusted,
        &env.registry_tls,
        &name,
        basic(&env),
        PushOptions::default(),
    );
    pusher.preflight().expect("preflight over TLS");
    pusher.push(&layout, &index).expect("push over TLS");
    pusher.verify(index.as_str(), &index).unwrap();

    // A CA bundle that does not contain the test CA.
    let untrusted = http_with_ca(std::path::Path::new("/etc/ssl/certs/ca-certificates.crt"));
    let error = client(
        &env,
        &untrusted,
        &env.registry_tls,
        &name,
        basic(&env),
        PushOptions::default(),
    )
    .preflight()
    .expect_err("wrong CA");
    let text = check_error(&env, &error);
    assert!(
        matches!(error, RegistryError::Transport { attempts: 1, .. }),
        "{text}"
    );
    assert!(
        text.contains(
            "hint: the server's TLS certificate is not trusted: pass its CA with --ca-cert"
        ),
        "{text}"
    );
}
