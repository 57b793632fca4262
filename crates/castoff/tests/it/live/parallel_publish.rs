//! Publishing waits on the network, not on the machine, so castoff keeps several requests in
//! flight: the credential checks of the npm packages, the questions it asks the registries
//! before the first upload, the blobs of an image, and those of its SBOM attachment. A gate in the proxy in front of the registry holds the first two matching requests
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
    // Two blob uploads opened together (an image's config and layer, or its SBOM's blobs).
    registry.gate(&["POST /v2/", "/blobs/uploads/"], 2);
    // The last request of each blob's upload: the image's two and its SBOM artifact's two
    // (the document and the empty config). The SBOM's step waits for the image, but its blobs
    // go ahead of it: all four are in flight together only if they do.
    registry.gate(&["PUT /v2/", "/blobs/uploads/"], 4);
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
        "the blobs went one at a time:\n{}",
        log.join("\n")
    );
    assert!(
        registry.gate_opened(2),
        "the SBOM's blobs waited for the image's manifest:\n{}",
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

/// Before any upload, castoff asks the index what it holds of each file: from the project
/// page, which lists every file of the project. The page is read once for the release's files
/// (here a wheel and the sdist), not once per file: per file, the bytes read would grow with
/// the square of the file count. After the uploads each file is read back on a fresh page.
#[test]
fn the_project_page_is_read_once_before_the_uploads() {
    let env = TestEnv::get();
    let name = format!("pages{}", std::process::id());
    let workspace = hardening::sequence_workspace(&env, &name);
    let pypi = Proxy::start(TestEnv::host_port(&env.pypiserver));
    let endpoints = hardening::Endpoints {
        pypi: pypi.url(),
        ..hardening::Endpoints::direct(&env)
    };
    let output = hardening::publish_to(&env, &workspace, &name, &endpoints, None, &[]);
    assert!(output.status.success(), "{}", text(&output));
    let log: Vec<String> = pypi
        .log()
        .into_iter()
        .map(|logged| logged.request_line)
        .collect();
    let is_page = |line: &&String| line.starts_with("GET ") && line.contains("/simple/");
    // The credential check is a POST too (an upload without a file), before any question:
    // the first upload is the first POST after a page was read.
    let first_page = log
        .iter()
        .position(|line| is_page(&line))
        .expect("no page read");
    let first_upload = first_page
        + log[first_page..]
            .iter()
            .position(|line| line.starts_with("POST "))
            .expect("no upload");
    let pages_before = log[..first_upload].iter().filter(is_page).count();
    assert_eq!(pages_before, 1, "{}", log.join("\n"));
    let pages_after = log[first_upload..].iter().filter(is_page).count();
    assert!(
        pages_after >= 2,
        "no read-back of each file:\n{}",
        log.join("\n")
    );
}
