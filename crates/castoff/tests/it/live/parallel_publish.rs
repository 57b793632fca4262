//! Publishing waits on the network, not on the machine, so castoff keeps several requests in
//! flight: the credential checks of the npm packages, the questions it asks the registries
//! before the first upload, and the blobs of an image. A gate in the proxy in front of the registry holds the first two matching requests
//! until both have arrived: a castoff that sent them one at a time would leave the gate closed
//! (each request goes on alone after the gate's patience) and the test fails. No timing is
//! asserted: the gate counts requests in flight.

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::output_text as text;

use super::hardening::{self, proxy::Proxy};

#[test]
fn registry_questions_and_image_blobs_are_in_flight_together() {
    let env = TestEnv::get();
    let name = format!("parallel{}", std::process::id());
    let workspace = hardening::sequence_workspace(&env, &name);
    let npm = Proxy::start(TestEnv::host_port(&env.verdaccio));
    // Step 2: one `whoami` per npm package (the platform package and the launcher).
    npm.gate(&["GET /-/whoami"], 2);
    let registry = Proxy::start(TestEnv::host_port(&env.registry_open));
    // Step 3: what the registry holds, one question per image step (push, SBOM, index, tags).
    registry.gate(&["HEAD /v2/", "/manifests/"], 2);
    // An image's config and layer (the SBOM artifact's blobs come in their own step).
    registry.gate(&["POST /v2/", "/blobs/uploads/"], 2);
    let home = workspace.parent().unwrap().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let output = hardening::castoff(&home)
        .args([
            "publish",
            "--only",
            "oci-",
            "--only",
            "npm-",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .args(["--npm-registry", &npm.url()])
        .env("NPM_TOKEN", &env.npm_token)
        .args([
            "--oci-repository",
            &format!("{}/{name}/badin", registry.host_port()),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let log: Vec<String> = npm
        .log()
        .into_iter()
        .chain(registry.log())
        .map(|logged| logged.request_line)
        .collect();
    assert!(
        npm.gate_opened(0),
        "the npm credential checks went one at a time:\n{}",
        log.join("\n")
    );
    assert!(
        registry.gate_opened(0),
        "the registry questions went one at a time:\n{}",
        log.join("\n")
    );
    assert!(
        registry.gate_opened(1),
        "the image's blobs went one at a time:\n{}",
        log.join("\n")
    );
    // Whether the registry has the referrers API is asked once per run, not by both the SBOM
    // attachment's push and its read-back.
    let referrers = log
        .iter()
        .filter(|line| line.contains("/referrers/"))
        .count();
    assert_eq!(referrers, 1, "{}", log.join("\n"));
}
