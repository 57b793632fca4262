//! `castoff publish` end to end against the real local registries of `cargo xtask test`: a
//! fixture is built with `dist`, published to pypiserver / devpi, Verdaccio and distribution
//! registries (open, htpasswd over TLS, token auth), installed back with pip, npm and skopeo;
//! a re-run skips everything; changed content is a conflict before any upload; bad
//! credentials stop the run before any upload; secrets never show.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::Manifest;
use castoff_plan::report::PublishReport;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text as text, release_for_host_only};

/// `<what><pid>`: names unique to this test process, so re-running the tests against servers
/// that are still up (`cargo xtask test --serve`) never meets the previous run's packages.
fn unique(what: &str) -> String {
    format!("{what}{}", std::process::id())
}

/// A copy of a fixture workspace with every registry name made unique to `tag`, so tests
/// sharing one set of servers never see each other's packages.
fn workspace(env: &TestEnv, fixture: &str, tag: &str) -> PathBuf {
    let target = env.scratch_dir(&format!("publish-{tag}")).join("workspace");
    copy_fixture(fixture, &target);
    let cargo_toml = target.join("Cargo.toml");
    let text = fs::read_to_string(&cargo_toml)
        .unwrap()
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"greeter-{tag}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"@{tag}/greeter\""));
    fs::write(&cargo_toml, text).unwrap();
    // What this machine builds is the whole release: publish takes it as it is.
    release_for_host_only(&target);
    target
}

fn castoff(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        // Nothing from the developer's own configuration leaks into the test.
        .env("HOME", home)
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for name in [
        "CASTOFF_PYPI_TOKEN",
        "TWINE_USERNAME",
        "TWINE_PASSWORD",
        "NODE_AUTH_TOKEN",
        "NPM_TOKEN",
        "CASTOFF_OCI_USERNAME",
        "CASTOFF_OCI_PASSWORD",
        "REGISTRY_AUTH_FILE",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GITHUB_ACTIONS",
        "GITHUB_REF_TYPE",
        "GITHUB_REF_NAME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied());
    command.output().expect("running castoff")
}

fn dist(workspace: &Path, epoch: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", epoch)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dist failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn report(workspace: &Path) -> PublishReport {
    serde_json::from_str(&fs::read_to_string(workspace.join("dist/publish-report.json")).unwrap())
        .unwrap()
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{}: {error}", program.display()))
}

/// A fresh venv next to `workspace` with `requirements` pip-installed from `index`; returns
/// the venv's `bin/`.
fn pip_install(env: &TestEnv, workspace: &Path, index: &str, requirements: &[&str]) -> PathBuf {
    let venv = workspace.parent().unwrap().join("venv");
    let created = run(
        &env.tool("python3"),
        &["-m", "venv", venv.to_str().unwrap()],
    );
    assert!(created.status.success(), "{}", text(&created));
    let mut args = vec!["install", "--quiet", "--no-cache-dir", "--index-url", index];
    args.extend_from_slice(requirements);
    let pip = run(&venv.join("bin/pip"), &args);
    assert!(pip.status.success(), "{}", text(&pip));
    venv.join("bin")
}

/// The flags and credentials that point every channel at the local servers.
fn destinations(env: &TestEnv, workspace: &Path, oci_repository: &str) -> Vec<String> {
    vec![
        "publish".into(),
        "--manifest-path".into(),
        workspace.join("Cargo.toml").to_string_lossy().into_owned(),
        "--pypi-url".into(),
        env.pypiserver.clone(),
        "--npm-registry".into(),
        env.verdaccio.clone(),
        "--oci-repository".into(),
        oci_repository.into(),
    ]
}

#[test]
fn publish_installs_back_and_a_rerun_skips_everything() {
    let env = TestEnv::get();
    let tag = &unique("e2e");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    dist(&workspace, "1700000000");
    let manifest: Manifest =
        Manifest::from_json(&fs::read_to_string(workspace.join("dist/manifest.json")).unwrap())
            .unwrap();

    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{tag}/greeter");
    let args = destinations(&env, &workspace, &repository);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let credentials = [
        ("TWINE_USERNAME", env.user.as_str()),
        ("TWINE_PASSWORD", env.password.as_str()),
        ("NPM_TOKEN", env.npm_token.as_str()),
    ];

    // A dry run checks everything, says what it would upload, and uploads nothing.
    let mut dry_args = args.clone();
    dry_args.push("--dry-run");
    let dry = castoff(&dry_args, &credentials, &home);
    assert!(dry.status.success(), "{}", text(&dry));
    env.assert_no_secret(&text(&dry));
    let dry_report = report(&workspace);
    assert!(dry_report.dry_run);
    for step in &dry_report.steps {
        assert_eq!(step.outcome, "would-upload", "{step:?}");
    }
    let simple = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}simple/greeter-{tag}/", env.pypiserver))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&simple.stdout),
        "404",
        "the dry run uploaded"
    );

    let first = castoff(&args, &credentials, &home);
    let first_text = text(&first);
    env.assert_no_secret(&first_text);
    assert!(first.status.success(), "{first_text}");
    let first_report = report(&workspace);
    env.assert_no_secret(&serde_json::to_string(&first_report).unwrap());
    for step in &first_report.steps {
        assert_eq!(step.outcome, "uploaded", "{step:?}");
    }

    // Order: every step started after each step it waits for had finished.
    for step in &first_report.steps {
        let edges = &manifest
            .steps
            .iter()
            .find(|s| s.id == step.id)
            .unwrap()
            .after;
        for after in edges {
            let before = first_report.steps.iter().find(|s| &s.id == after).unwrap();
            assert!(
                before.finished_at_ms <= step.started_at_ms,
                "{} started before {after} finished",
                step.id
            );
        }
    }
    let launcher = manifest
        .steps
        .iter()
        .find(|s| s.id == "npm-publish/greeter")
        .unwrap();
    assert!(
        launcher
            .after
            .iter()
            .any(|a| a.starts_with("npm-publish/greeter/"))
    );

    // pip installs the wheel from the index and the binary runs.
    let index = format!("{}simple/", env.pypiserver);
    let bin = pip_install(
        &env,
        &workspace,
        &index,
        &[&format!("greeter-{tag}==0.3.1")],
    );
    let version = run(&bin.join("greeter"), &["--version"]);
    assert_eq!(String::from_utf8_lossy(&version.stdout), "greeter 0.3.1\n");

    // npm installs the launcher; only this platform's package comes along; npx runs it.
    let project = workspace.parent().unwrap().join("npm-project");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        "{\"name\":\"consumer\",\"private\":true}",
    )
    .unwrap();
    let npm = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--registry",
            &env.verdaccio,
            "--userconfig",
            "/dev/null",
            "--cache",
        ])
        .arg(project.join(".npm-cache"))
        .arg(format!("@{tag}/greeter@0.3.1"))
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(npm.status.success(), "{}", text(&npm));
    let mut installed: Vec<String> = fs::read_dir(project.join(format!("node_modules/@{tag}")))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    assert_eq!(installed, ["greeter", "greeter-linux-x64-gnu"]);
    let npx = Command::new("npx")
        .args(["--no-install", "greeter", "--version"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&npx.stdout),
        "greeter 0.3.1\n",
        "{}",
        text(&npx)
    );

    // skopeo sees the pushed index under every tag, with the digest dist/ recorded.
    let index_digest = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "oci-index")
        .unwrap()
        .digest
        .clone()
        .unwrap();
    for image_tag in ["0.3.1", "0.3", "latest"] {
        let inspect = run(
            &env.tool("skopeo"),
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{repository}:{image_tag}"),
            ],
        );
        assert!(inspect.status.success(), "{}", text(&inspect));
        let digest =
            castoff_archive::digest::hex(&castoff_archive::digest::sha256(&inspect.stdout));
        assert_eq!(format!("sha256:{digest}"), index_digest, "tag {image_tag}");
    }
    let copy_dir = workspace.parent().unwrap().join("pulled");
    let copy = run(
        &env.tool("skopeo"),
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--insecure-policy",
            &format!("docker://{repository}:0.3.1"),
            &format!("oci:{}:pulled", copy_dir.display()),
        ],
    );
    assert!(copy.status.success(), "{}", text(&copy));

    // The SBOM is findable as a referrer of its image: distribution 2.8 has no referrers
    // API, so through the `sha256-<hex>` fallback index, listing the artifact manifest.
    let image = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "oci-image")
        .unwrap();
    let sbom = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "sbom")
        .unwrap();
    let image_hex = image
        .digest
        .as_deref()
        .unwrap()
        .trim_start_matches("sha256:");
    let fallback = run(
        &env.tool("skopeo"),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repository}:sha256-{image_hex}"),
        ],
    );
    assert!(fallback.status.success(), "{}", text(&fallback));
    let fallback: serde_json::Value = serde_json::from_slice(&fallback.stdout).unwrap();
    assert_eq!(
        fallback["manifests"][0]["digest"],
        sbom.digest.as_deref().unwrap()
    );
    assert_eq!(
        fallback["manifests"][0]["artifactType"],
        "application/vnd.cyclonedx+json"
    );
    // It is the artifact that dist/'s layout lists for that image: its `index.json` has the
    // one entry, whose referrers index names the artifact and its subject
    // (docs/channels/oci.md, "The SBOMs in the layout").
    let layout = workspace.join("dist/oci/greeter");
    let layout_index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        layout_index["manifests"].as_array().unwrap().len(),
        1,
        "{layout_index:#}"
    );
    let referrers = layout_index["manifests"][0]["annotations"]["io.github.castoff-rs.referrers"]
        .as_str()
        .unwrap();
    let referrers: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(referrers.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let listed: Vec<(&str, &str)> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["annotations"]["io.github.castoff-rs.referrer.subject"]
                    .as_str()
                    .unwrap(),
                entry["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(
            image.digest.as_deref().unwrap(),
            sbom.digest.as_deref().unwrap()
        )]
    );
    let artifact = run(
        &env.tool("skopeo"),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repository}@{}", sbom.digest.as_deref().unwrap()),
        ],
    );
    let artifact: serde_json::Value = serde_json::from_slice(&artifact.stdout).unwrap();
    assert_eq!(
        artifact["subject"]["digest"],
        image.digest.as_deref().unwrap()
    );

    // A second run finds everything in place and uploads nothing.
    let second = castoff(&args, &credentials, &home);
    assert!(second.status.success(), "{}", text(&second));
    for step in &report(&workspace).steps {
        assert_eq!(step.outcome, "skipped", "{step:?}");
        assert_eq!(step.bytes, 0);
    }
    env.assert_no_secret(&text(&second));
}

#[test]
fn changed_content_is_a_conflict_before_any_upload() {
    let env = TestEnv::get();
    let tag = &unique("conflict");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{tag}/greeter");
    let args = destinations(&env, &workspace, &repository);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let credentials = [
        ("TWINE_USERNAME", env.user.as_str()),
        ("TWINE_PASSWORD", env.password.as_str()),
        ("NPM_TOKEN", env.npm_token.as_str()),
    ];
    dist(&workspace, "1700000000");
    let first = castoff(&args, &credentials, &home);
    assert!(first.status.success(), "{}", text(&first));

    // The same version rebuilt at another time: different wheel and image bytes.
    dist(&workspace, "1800000000");
    let second = castoff(&args, &credentials, &home);
    let second_text = text(&second);
    env.assert_no_secret(&second_text);
    assert_eq!(second.status.code(), Some(3), "{second_text}");
    assert!(
        second_text
            .contains("conflict with what the registries already hold; nothing was uploaded"),
        "{second_text}"
    );
    assert!(
        second_text.contains("pypi-upload/greeter/x86_64-unknown-linux-gnu"),
        "{second_text}"
    );
    assert!(
        second_text.contains("oci-tag/greeter/0.3.1"),
        "{second_text}"
    );
    assert!(second_text.contains("hint: "), "{second_text}");
    // The floating tags may move, but nothing moved: the version tag still has the old index.
    let inspect = run(
        &env.tool("skopeo"),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repository}:latest"),
        ],
    );
    let served = format!(
        "sha256:{}",
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(&inspect.stdout))
    );
    let new_index =
        Manifest::from_json(&fs::read_to_string(workspace.join("dist/manifest.json")).unwrap())
            .unwrap()
            .artifacts
            .into_iter()
            .find(|a| a.kind == "oci-index")
            .unwrap()
            .digest
            .unwrap();
    assert_ne!(served, new_index, "`latest` moved although the run stopped");
}

#[test]
fn bad_credentials_stop_the_run_before_any_upload() {
    let env = TestEnv::get();
    let tag = &unique("badcreds");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    dist(&workspace, "1700000000");
    let registry = TestEnv::host_port(&env.registry_basic).to_owned();
    let args = destinations(&env, &workspace, &format!("{registry}/{tag}/greeter"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let wrong = format!("{}-wrong", env.password);
    let output = castoff(
        &args,
        &[
            ("TWINE_USERNAME", env.user.as_str()),
            ("TWINE_PASSWORD", env.password.as_str()),
            // No npm token at all, and a wrong registry password.
            ("CASTOFF_OCI_USERNAME", env.user.as_str()),
            ("CASTOFF_OCI_PASSWORD", wrong.as_str()),
        ],
        &home,
    );
    let output_text = text(&output);
    env.assert_no_secret(&output_text);
    assert!(!output_text.contains(&wrong), "the wrong password leaked");
    assert_eq!(output.status.code(), Some(1), "{output_text}");
    assert!(
        output_text.contains("problem(s) found before any upload"),
        "{output_text}"
    );
    // Once for the launcher and its platform packages alike, not once per package.
    assert!(
        output_text.contains(&format!(
            "npm (@{tag}/greeter and 1 more package(s) alike): no credentials for"
        )),
        "{output_text}"
    );
    assert_eq!(
        output_text.matches("no credentials for").count(),
        1,
        "{output_text}"
    );
    assert!(
        output_text.contains(&format!("image {registry}/{tag}/greeter")),
        "{output_text}"
    );
    // Nothing reached any registry.
    let simple = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}simple/greeter-{tag}/", env.pypiserver),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&simple.stdout), "404");
    assert!(!workspace.join("dist/publish-report.json").exists());
}

/// The other server kinds: devpi for wheels (with the dependent app after its dependency),
/// a token-auth registry and a TLS registry with a private CA for images.
#[test]
fn devpi_token_registry_and_tls_registry() {
    let env = TestEnv::get();
    let workspace = env.scratch_dir("publish-two-apps").join("workspace");
    copy_fixture("two-apps", &workspace);
    release_for_host_only(&workspace);
    let suffix = unique("r");
    for (file, from, to) in [
        (
            "core/Cargo.toml",
            "name = \"toolkit-core\" }",
            format!("name = \"toolkit-core-{suffix}\" }}"),
        ),
        (
            "core/Cargo.toml",
            "ghcr.io/acme/",
            format!("ghcr.io/acme-{suffix}/"),
        ),
        (
            "cli/Cargo.toml",
            "name = \"toolkit\",",
            format!("name = \"toolkit-{suffix}\","),
        ),
    ] {
        let path = workspace.join(file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        fs::write(&path, text.replace(from, &to)).unwrap();
    }
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    dist(&workspace, "1700000000");
    let token_registry = TestEnv::host_port(&env.registry_token).to_owned();
    let output = castoff(
        &[
            "publish",
            "--manifest-path",
            workspace.join("Cargo.toml").to_str().unwrap(),
            "--pypi-url",
            &env.devpi,
            "--oci-registry",
            &token_registry,
            "--skip",
            "npm-publish/",
        ],
        &[
            ("TWINE_USERNAME", env.user.as_str()),
            ("TWINE_PASSWORD", env.password.as_str()),
            ("CASTOFF_OCI_USERNAME", env.user.as_str()),
            ("CASTOFF_OCI_PASSWORD", env.password.as_str()),
        ],
        &home,
    );
    let output_text = text(&output);
    env.assert_no_secret(&output_text);
    assert!(output.status.success(), "{output_text}");
    let published = report(&workspace);
    let finished = |id: &str| {
        published
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .finished_at_ms
    };
    let started = |id: &str| {
        published
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .started_at_ms
    };
    for target in ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"] {
        let step = format!("pypi-upload/toolkit/{target}");
        if published.steps.iter().any(|s| s.id == step) {
            assert!(
                finished("pypi-upload/toolkit-core/x86_64-unknown-linux-gnu") <= started(&step)
            );
        }
    }
    assert!(
        published
            .steps
            .iter()
            .filter(|s| s.id.starts_with("npm-publish/"))
            .all(|s| s.outcome == "excluded")
    );
    let index = format!("{}+simple/", env.devpi);
    let toolkit = format!("toolkit-{suffix}==2.0.0rc1");
    let toolkit_core = format!("toolkit-core-{suffix}==2.0.0rc1");
    let requirements = ["--pre", "--no-deps", &toolkit, &toolkit_core];
    let bin = pip_install(&env, &workspace, &index, &requirements);
    assert_eq!(
        String::from_utf8_lossy(&run(&bin.join("tk"), &["--version"]).stdout),
        "tk 2.0.0-rc.1\n"
    );

    // The same image to the TLS registry, trusting the harness's private CA.
    let tls_registry = TestEnv::host_port(&env.registry_tls).to_owned();
    let tls = castoff(
        &[
            "publish",
            "--manifest-path",
            workspace.join("Cargo.toml").to_str().unwrap(),
            "--only",
            "oci-",
            "--oci-registry",
            &format!("https://{tls_registry}"),
            "--ca-cert",
            env.ca_cert.to_str().unwrap(),
        ],
        &[
            ("CASTOFF_OCI_USERNAME", env.user.as_str()),
            ("CASTOFF_OCI_PASSWORD", env.password.as_str()),
        ],
        &home,
    );
    assert!(tls.status.success(), "{}", text(&tls));
    env.assert_no_secret(&text(&tls));

    // The system trust store counts too (a company CA installed there): the CA in a
    // directory named by SSL_CERT_DIR, which is where the platform's store is read from, and
    // no --ca-cert. Without it the private CA is not trusted.
    let store = workspace.parent().unwrap().join("system-store");
    fs::create_dir_all(&store).unwrap();
    fs::copy(&env.ca_cert, store.join("castoff-test-ca.pem")).unwrap();
    let publish_tls = |extra: &[(&str, &str)]| {
        let mut envs = vec![
            ("CASTOFF_OCI_USERNAME", env.user.as_str()),
            ("CASTOFF_OCI_PASSWORD", env.password.as_str()),
        ];
        envs.extend_from_slice(extra);
        castoff(
            &[
                "publish",
                "--manifest-path",
                workspace.join("Cargo.toml").to_str().unwrap(),
                "--only",
                "oci-",
                "--oci-registry",
                &format!("https://{tls_registry}"),
            ],
            &envs,
            &home,
        )
    };
    let empty_store = workspace.parent().unwrap().join("empty-store");
    fs::create_dir_all(&empty_store).unwrap();
    let untrusted = publish_tls(&[("SSL_CERT_DIR", empty_store.to_str().unwrap())]);
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        text(&untrusted).contains("the server's TLS certificate is not trusted"),
        "{}",
        text(&untrusted)
    );
    let trusted = publish_tls(&[("SSL_CERT_DIR", store.to_str().unwrap())]);
    assert!(trusted.status.success(), "{}", text(&trusted));
}

/// The one stand-in of the suite: GitHub's OIDC token endpoint, PyPI's `/_/oidc/*` and npm's
/// token-exchange endpoint cannot run here. It sits in front of the real pypiserver and
/// Verdaccio: the OIDC paths are answered by the stand-in, everything else is passed through
/// byte for byte. Like PyPI, it accepts the token it minted on uploads (by presenting the
/// index's own credentials upstream); npm's exchange hands out Verdaccio's real token.
mod stand_in {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;

    pub(super) const REQUEST_TOKEN: &str = "github-request-token-5f1c";
    pub(super) const MINTED: &str = "pypi-minted-token-9a7e";

    #[derive(Default)]
    pub(super) struct Log {
        pub(super) audiences: Vec<String>,
        pub(super) minted: usize,
        pub(super) exchanged: Vec<String>,
        pub(super) translated_uploads: usize,
    }

    pub(super) struct StandIn {
        pub(super) url: String,
        pub(super) log: Arc<Mutex<Log>>,
    }

    /// `upstream`: `host:port` of the real server; `upstream_basic`: its credentials as
    /// `user:password`, presented instead of the minted token; `npm_token`: what the exchange
    /// returns.
    pub(super) fn start(upstream: String, upstream_basic: String, npm_token: String) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (upstream, basic, npm_token, log) = (
                    upstream.clone(),
                    upstream_basic.clone(),
                    npm_token.clone(),
                    Arc::clone(&shared),
                );
                std::thread::spawn(move || {
                    let _ = serve(stream, &upstream, &basic, &npm_token, &log);
                });
            }
        });
        StandIn { url, log }
    }

    fn respond(mut stream: TcpStream, status: &str, body: &str) -> std::io::Result<()> {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn serve(
        stream: TcpStream,
        upstream: &str,
        basic: &str,
        npm_token: &str,
        log: &Mutex<Log>,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let request_line = head[0].clone();
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let header = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let body_of = |reader: &mut BufReader<TcpStream>| -> std::io::Result<String> {
            let length: usize = header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            Ok(String::from_utf8_lossy(&body).into_owned())
        };
        let bearer = header("authorization").and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .map(str::to_owned)
        });

        if path.starts_with("/github/idtoken") {
            if bearer.as_deref() != Some(REQUEST_TOKEN) {
                return respond(
                    stream,
                    "401 Unauthorized",
                    "{\"message\":\"bad request token\"}",
                );
            }
            let audience = path
                .split("audience=")
                .nth(1)
                .unwrap_or("")
                .replace("%3A", ":");
            log.lock().unwrap().audiences.push(audience.clone());
            return respond(
                stream,
                "200 OK",
                &format!("{{\"value\":\"id-token-for-{audience}\"}}"),
            );
        }
        if path == "/_/oidc/audience" {
            return respond(stream, "200 OK", "{\"audience\":\"pypi\"}");
        }
        if path == "/_/oidc/mint-token" {
            let body = body_of(&mut reader)?;
            if !body.contains("id-token-for-pypi") {
                return respond(
                    stream,
                    "422 Unprocessable Entity",
                    "{\"message\":\"Token request failed\",\"errors\":[{\"code\":\"invalid-token\",\"description\":\"unknown ID token\"}]}",
                );
            }
            log.lock().unwrap().minted += 1;
            return respond(
                stream,
                "200 OK",
                &format!("{{\"success\":true,\"token\":\"{MINTED}\",\"expires\":4102444800}}"),
            );
        }
        if let Some(package) = path.strip_prefix("/-/npm/v1/oidc/token/exchange/package/") {
            if !bearer
                .as_deref()
                .is_some_and(|token| token.starts_with("id-token-for-npm:"))
            {
                return respond(stream, "401 Unauthorized", "{\"message\":\"bad ID token\"}");
            }
            log.lock().unwrap().exchanged.push(package.to_owned());
            return respond(
                stream,
                "201 Created",
                &format!("{{\"token\":\"{npm_token}\"}}"),
            );
        }

        // Everything else goes to the real server, unchanged but for the minted token.
        let minted_basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("__token__:{MINTED}"))
        );
        let mut upstream_stream = TcpStream::connect(upstream)?;
        for line in &head {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") {
                continue;
            }
            if lower.starts_with("authorization:") && line.trim_end().ends_with(&minted_basic) {
                log.lock().unwrap().translated_uploads += 1;
                let real = base64::engine::general_purpose::STANDARD.encode(basic);
                write!(upstream_stream, "Authorization: Basic {real}\r\n")?;
                continue;
            }
            if line == "\r\n" {
                upstream_stream.write_all(b"Connection: close\r\n")?;
            }
            upstream_stream.write_all(line.as_bytes())?;
        }
        let buffered = reader.buffer().to_vec();
        upstream_stream.write_all(&buffered)?;
        let mut client_in = reader.into_inner();
        let mut to_upstream = upstream_stream.try_clone()?;
        let forward = std::thread::spawn(move || {
            let _ = std::io::copy(&mut client_in, &mut to_upstream);
        });
        let mut client_out = stream;
        std::io::copy(&mut upstream_stream, &mut client_out)?;
        let _ = client_out.shutdown(std::net::Shutdown::Both);
        let _ = upstream_stream.shutdown(std::net::Shutdown::Both);
        let _ = forward.join();
        Ok(())
    }
}

/// Trusted Publishing: no token is configured; castoff asks the (stand-in) GitHub OIDC
/// endpoint for ID tokens, trades them at PyPI's mint-token and npm's exchange endpoints, and
/// the uploads that follow land in the real pypiserver and Verdaccio.
#[test]
fn trusted_publishing_without_any_configured_token() {
    let env = TestEnv::get();
    let tag = &unique("oidc");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    dist(&workspace, "1700000000");

    let pypi = stand_in::start(
        TestEnv::host_port(&env.pypiserver).to_owned(),
        format!("{}:{}", env.user, env.password),
        String::new(),
    );
    let npm = stand_in::start(
        TestEnv::host_port(&env.verdaccio).to_owned(),
        String::new(),
        env.npm_token.clone(),
    );
    let id_token_url = format!("{}github/idtoken?api-version=2.0", pypi.url);
    let output = castoff(
        &[
            "publish",
            "--manifest-path",
            workspace.join("Cargo.toml").to_str().unwrap(),
            "--pypi-url",
            &pypi.url,
            "--npm-registry",
            &npm.url,
            "--skip",
            "oci-",
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &id_token_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", stand_in::REQUEST_TOKEN),
        ],
        &home,
    );
    let output_text = text(&output);
    assert!(output.status.success(), "{output_text}");
    for secret in [
        stand_in::REQUEST_TOKEN,
        stand_in::MINTED,
        env.npm_token.as_str(),
    ] {
        assert!(
            !output_text.contains(secret),
            "a token leaked into the output"
        );
    }
    env.assert_no_secret(&output_text);
    let published = report(&workspace);
    assert!(
        published
            .steps
            .iter()
            .filter(|s| !s.id.starts_with("oci-"))
            .all(|s| s.outcome == "uploaded"),
        "{published:?}"
    );

    let pypi_log = pypi.log.lock().unwrap();
    // The channels' credential checks run side by side: PyPI's token is asked for once, in
    // no particular order among npm's.
    assert_eq!(
        pypi_log.audiences.iter().filter(|a| *a == "pypi").count(),
        1,
        "{:?}",
        pypi_log.audiences
    );
    assert_eq!(pypi_log.minted, 1);
    assert!(
        pypi_log.translated_uploads >= 1,
        "no upload carried the minted token"
    );
    let npm_audiences: Vec<&String> = pypi_log
        .audiences
        .iter()
        .filter(|a| a.starts_with("npm:"))
        .collect();
    assert_eq!(
        npm_audiences.len(),
        2,
        "one single-use ID token per npm package"
    );
    let npm_log = npm.log.lock().unwrap();
    let mut exchanged = npm_log.exchanged.clone();
    exchanged.sort();
    assert_eq!(
        exchanged,
        [
            format!("@{tag}%2fgreeter"),
            format!("@{tag}%2fgreeter-linux-x64-gnu")
        ]
    );

    // What landed is in the real servers, reachable without the stand-in.
    let index = format!("{}simple/", env.pypiserver);
    let bin = pip_install(
        &env,
        &workspace,
        &index,
        &[&format!("greeter-{tag}==0.3.1")],
    );
    assert_eq!(
        String::from_utf8_lossy(&run(&bin.join("greeter"), &["--version"]).stdout),
        "greeter 0.3.1\n"
    );
    let packument = Command::new("curl")
        .args(["-sf", &format!("{}@{tag}%2fgreeter", env.verdaccio)])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&packument.stdout).contains("\"0.3.1\""));
}

/// Several destinations per channel (`python.repositories`, `oci.mirrors`) become separate
/// steps, each after the same artifact's step for the destination before it.
#[test]
fn mirrors_are_separate_ordered_steps() {
    let env = TestEnv::get();
    let tag = &unique("mirror");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    let open = format!("{}/{tag}/greeter", TestEnv::host_port(&env.registry_open));
    let basic = format!("{}/{tag}/greeter", TestEnv::host_port(&env.registry_basic));
    let cargo_toml = workspace.join("Cargo.toml");
    let configured = fs::read_to_string(&cargo_toml)
        .unwrap()
        .replace(
            &format!("python = {{ name = \"greeter-{tag}\" }}"),
            &format!(
                "python = {{ name = \"greeter-{tag}\", repositories = [\"{}\", \"{}\"] }}",
                env.devpi, env.pypiserver
            ),
        )
        .replace(
            "oci = { repository = \"ghcr.io/acme/greeter\"",
            &format!("oci = {{ repository = \"{open}\", mirrors = [\"{basic}\"]"),
        );
    assert!(
        configured.contains("repositories = [") && configured.contains("mirrors = ["),
        "{configured}"
    );
    fs::write(&cargo_toml, configured).unwrap();
    dist(&workspace, "1700000000");

    use castoff_registry::env::host_qualified;
    let mut bound: Vec<(String, String)> = vec![
        ("NPM_TOKEN".into(), env.npm_token.clone()),
        ("CASTOFF_OCI_USERNAME".into(), env.user.clone()),
        ("CASTOFF_OCI_PASSWORD".into(), env.password.clone()),
        (
            host_qualified(
                "CASTOFF_OCI_USERNAME",
                TestEnv::host_port(&env.registry_basic),
            ),
            env.user.clone(),
        ),
        (
            host_qualified(
                "CASTOFF_OCI_PASSWORD",
                TestEnv::host_port(&env.registry_basic),
            ),
            env.password.clone(),
        ),
    ];
    for index in [&env.devpi, &env.pypiserver] {
        let host = TestEnv::host_port(index);
        bound.push((
            host_qualified("CASTOFF_PYPI_USERNAME", host),
            env.user.clone(),
        ));
        bound.push((
            host_qualified("CASTOFF_PYPI_PASSWORD", host),
            env.password.clone(),
        ));
    }
    let output = castoff(
        &[
            "publish",
            "--manifest-path",
            workspace.join("Cargo.toml").to_str().unwrap(),
            "--npm-registry",
            &env.verdaccio,
        ],
        // Several indexes and registries: each destination its own host-bound variables
        // (the bare ones go only to a channel's sole destination, or the push registry).
        &bound
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
        &home,
    );
    let output_text = text(&output);
    env.assert_no_secret(&output_text);
    assert!(output.status.success(), "{output_text}");
    let published = report(&workspace);
    let step = |id: String| {
        published
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}"))
            .clone()
    };
    let wheel = "pypi-upload/greeter/x86_64-unknown-linux-gnu";
    let first = step(format!("{wheel}@{}", env.devpi));
    let second = step(format!("{wheel}@{}", env.pypiserver));
    assert_eq!(
        (first.outcome.as_str(), second.outcome.as_str()),
        ("uploaded", "uploaded")
    );
    assert!(
        first.finished_at_ms <= second.started_at_ms,
        "PyPI destinations out of order"
    );
    let primary = step("oci-push-index/greeter".to_owned());
    let mirror = step(format!("oci-push-index/greeter@{basic}"));
    assert!(
        primary.finished_at_ms <= mirror.started_at_ms,
        "the mirror went first"
    );
    assert_eq!(
        step(format!("oci-tag/greeter/latest@{basic}")).outcome,
        "uploaded"
    );

    // Both repositories serve the same index under the version tag.
    let digest = |repository: &str, creds: &[&str]| {
        let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
        args.extend_from_slice(creds);
        let reference = format!("docker://{repository}:0.3.1");
        args.push(&reference);
        let output = run(&env.tool("skopeo"), &args);
        assert!(output.status.success(), "{}", text(&output));
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(&output.stdout))
    };
    let creds = format!("{}:{}", env.user, env.password);
    assert_eq!(digest(&open, &[]), digest(&basic, &["--creds", &creds]));
    // Both indexes list the wheel.
    for index in [
        format!("{}+simple/greeter-{tag}/", env.devpi),
        format!("{}simple/greeter-{tag}/", env.pypiserver),
    ] {
        let page = Command::new("curl").args(["-sf", &index]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&page.stdout).contains(".whl"),
            "{index} lists no wheel"
        );
    }
}

/// A wrong PyPI password is found before anything moves: the other channels, whose
/// credentials are right, upload nothing either.
#[test]
fn wrong_pypi_password_stops_every_channel_before_any_upload() {
    let env = TestEnv::get();
    let tag = &unique("pypibad");
    let workspace = workspace(&env, "single-cli", tag);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    dist(&workspace, "1700000000");
    let repository = format!("{}/{tag}/greeter", TestEnv::host_port(&env.registry_open));
    let args = destinations(&env, &workspace, &repository);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let wrong = format!("{}-wrong", env.password);
    for (pypi, what) in [
        (env.pypiserver.as_str(), "pypiserver"),
        (env.devpi.as_str(), "devpi"),
    ] {
        let mut args = args.clone();
        let position = args.iter().position(|a| *a == "--pypi-url").unwrap();
        args[position + 1] = pypi;
        let output = castoff(
            &args,
            &[
                ("TWINE_USERNAME", env.user.as_str()),
                ("TWINE_PASSWORD", wrong.as_str()),
                ("NPM_TOKEN", env.npm_token.as_str()),
            ],
            &home,
        );
        let output_text = text(&output);
        env.assert_no_secret(&output_text);
        assert!(!output_text.contains(&wrong), "the wrong password leaked");
        assert_eq!(output.status.code(), Some(1), "{what}: {output_text}");
        assert!(
            output_text.contains("problem(s) found before any upload"),
            "{what}: {output_text}"
        );
        assert!(output_text.contains("PyPI: "), "{what}: {output_text}");
        assert!(
            output_text.contains("hint: the index rejected the credentials"),
            "{what}: {output_text}"
        );
    }
    let packument = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}@{tag}%2fgreeter", env.verdaccio))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&packument.stdout),
        "404",
        "npm received a package"
    );
    let tags = run(
        &env.tool("skopeo"),
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repository}"),
        ],
    );
    assert!(!tags.status.success(), "the registry received the image");
}
