//! A loopback registry written without a scheme (`127.0.0.1:5000/acme/greeter`) is reached the
//! way Docker reaches its insecure registries (issue 17): https first, plain http only when
//! the TLS connection fails, probed once per run and never downgraded once an https server
//! answered. Against the harness's distribution registries: the plain-http one (behind a
//! recording proxy, which counts the TLS handshakes it refuses) and the TLS one with its
//! private CA.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use castoff_plan::report::PublishReport;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{
    copy_fixture, isolated_command, output_text as text, release_for_host_only,
};

use super::hardening::proxy::Proxy;

/// A copy of single-cli released for this machine's target, its image repository (and
/// mirror, when given) set in its configuration, dist'ed; returns the workspace.
fn released(env: &TestEnv, name: &str, oci: Option<(&str, &str)>) -> PathBuf {
    let root = env.scratch_dir(&format!("loopback-{name}-{}", std::process::id()));
    let workspace = root.join("workspace");
    copy_fixture("single-cli", &workspace);
    release_for_host_only(&workspace);
    if let Some((repository, mirror)) = oci {
        let cargo_toml = workspace.join("Cargo.toml");
        let text = fs::read_to_string(&cargo_toml).unwrap();
        let configured = text.replace(
            "oci = { repository = \"ghcr.io/acme/greeter\"",
            &format!("oci = {{ repository = \"{repository}\", mirrors = [\"{mirror}\"]"),
        );
        assert_ne!(configured, text, "single-cli's oci table changed shape");
        fs::write(&cargo_toml, configured).unwrap();
    }
    let output = castoff(&workspace, &["dist"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    workspace
}

fn castoff(workspace: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), &home)
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env_remove("SSL_CERT_FILE")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn report(workspace: &Path) -> PublishReport {
    serde_json::from_str(&fs::read_to_string(workspace.join("dist/publish-report.json")).unwrap())
        .unwrap()
}

/// The plain-http registry, written without a scheme, as the image's repository and its
/// mirror: two clients, one https probe (refused: the proxy closes a TLS handshake as a
/// plain-http server does), then everything over http; the next run probes once again.
#[test]
fn a_plain_http_loopback_registry_is_reached_after_one_https_probe() {
    let env = TestEnv::get();
    let proxy = Proxy::start(TestEnv::host_port(&env.registry_open));
    let tag = format!("loopback{}", std::process::id());
    let repository = format!("{}/{tag}/greeter", proxy.host_port());
    let mirror = format!("{}/{tag}/mirror", proxy.host_port());
    let workspace = released(&env, "http", Some((&repository, &mirror)));

    let publish = || castoff(&workspace, &["publish", "--only", "oci-"], &[]);
    let first = publish();
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        proxy.tls_hellos(),
        1,
        "one https probe for the run, whatever the number of clients and requests"
    );
    let requests = proxy.requests();
    assert!(
        requests > 10,
        "the push itself went over http: {requests} requests"
    );
    let oci_steps = |workspace: &Path| -> Vec<_> {
        report(workspace)
            .steps
            .into_iter()
            .filter(|step| step.id.starts_with("oci-"))
            .collect()
    };
    // Per repository: the platform image, its SBOM, the index and three tags.
    let steps = oci_steps(&workspace);
    assert!(
        steps.len() == 12 && steps.iter().all(|step| step.outcome == "uploaded"),
        "{steps:?}"
    );
    // Both repositories hold the image, asked of the registry itself.
    for name in ["greeter", "mirror"] {
        let served = std::process::Command::new("curl")
            .args(["-sSf", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg("Accept: application/vnd.oci.image.index.v1+json")
            .arg(format!(
                "{}/v2/{tag}/{name}/manifests/0.3.1",
                env.registry_open
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&served.stdout), "200", "{name}");
    }

    let second = publish();
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(proxy.tls_hellos(), 2, "each run probes once");
    assert!(
        oci_steps(&workspace)
            .iter()
            .all(|step| step.outcome == "skipped"),
        "{}",
        text(&second)
    );
}

/// The TLS registry, written without a scheme: reached over https (plain http to its port
/// would get distribution's "Client sent an HTTP request to an HTTPS server"). An https
/// server that refuses the credentials, or whose certificate is not trusted, is not a
/// reason to try http: the error names the https URL.
#[test]
fn a_tls_loopback_registry_is_reached_over_https_and_never_downgraded() {
    let env = TestEnv::get();
    let workspace = released(&env, "tls", None);
    let host = TestEnv::host_port(&env.registry_tls).to_owned();
    let repository = format!("{host}/loopback{}/greeter", std::process::id());
    let ca = env.ca_cert.to_str().unwrap();
    let empty_store = workspace.parent().unwrap().join("empty-store");
    fs::create_dir_all(&empty_store).unwrap();
    let publish = |password: &str, trust: &[&str]| {
        let mut args = vec!["publish", "--only", "oci-", "--oci-repository", &repository];
        args.extend_from_slice(trust);
        castoff(
            &workspace,
            &args,
            &[
                ("CASTOFF_OCI_USERNAME", env.user.as_str()),
                ("CASTOFF_OCI_PASSWORD", password),
                // Only what --ca-cert names is trusted beyond the system's store.
                ("SSL_CERT_DIR", empty_store.to_str().unwrap()),
            ],
        )
    };
    let http_url = format!("http://{host}");
    let https_url = format!("https://{host}/v2/");

    let pushed = publish(&env.password, &["--ca-cert", ca]);
    assert!(pushed.status.success(), "{}", text(&pushed));
    env.assert_no_secret(&text(&pushed));
    assert!(
        report(&workspace)
            .steps
            .iter()
            .filter(|step| step.id.starts_with("oci-"))
            .all(|step| step.outcome == "uploaded"),
        "{}",
        text(&pushed)
    );

    let wrong = format!("{}-wrong", env.password);
    let refused = publish(&wrong, &["--ca-cert", ca]);
    let refused_text = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{refused_text}");
    assert!(
        refused_text.contains(&https_url) && refused_text.contains("answered 401"),
        "{refused_text}"
    );
    assert!(!refused_text.contains(&http_url), "{refused_text}");
    assert!(!refused_text.contains(&wrong), "the password leaked");

    let untrusted = publish(&env.password, &[]);
    let untrusted_text = text(&untrusted);
    assert_eq!(untrusted.status.code(), Some(1), "{untrusted_text}");
    assert!(
        untrusted_text.contains(&https_url)
            && untrusted_text.contains("the server's TLS certificate is not trusted"),
        "{untrusted_text}"
    );
    assert!(!untrusted_text.contains(&http_url), "{untrusted_text}");
}
