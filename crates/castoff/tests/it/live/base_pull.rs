//! Base images pulled from a registry, end to end against the harness's registries: castoff
//! builds greeter's image, skopeo pushes it, and pinger's `dist` builds on it by digest. The
//! pull goes into the base cache once; later runs use the cache without any request (proven by
//! deleting the base from the registry and giving a wrong password), a damaged cached blob is
//! fetched again, the result runs under chroot and runc, and `publish` pushes it elsewhere.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, release_for_host_only};
use serde_json::Value;

const EPOCH: &str = "1700000000";

/// `castoff <args>` in a clean credential environment: no Docker or podman config of the
/// machine, the workspace's own target directory (so the base cache is this test's), and
/// `credentials` (registry host, user, password) as the host-bound
/// `CASTOFF_OCI_USERNAME_<HOST>` / `CASTOFF_OCI_PASSWORD_<HOST>` when given: the bare pair is
/// for the push registry only, never sent to a base image's registry.
fn castoff(
    workspace: &Path,
    args: &[&str],
    credentials: Option<(&str, &str, &str)>,
    scratch: &Path,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", workspace.join("target"))
        .env("DOCKER_CONFIG", scratch.join("no-docker-config"))
        .env("SOURCE_DATE_EPOCH", EPOCH);
    for name in [
        "CASTOFF_OCI_USERNAME",
        "CASTOFF_OCI_PASSWORD",
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "GITHUB_ACTIONS",
    ] {
        command.env_remove(name);
    }
    if let Some((host, user, password)) = credentials {
        use castoff_registry::env::host_qualified;
        command
            .env(host_qualified("CASTOFF_OCI_USERNAME", host), user)
            .env(host_qualified("CASTOFF_OCI_PASSWORD", host), password);
    }
    command.output().expect("running castoff")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(env: &TestEnv, output: &Output, what: &str) {
    let text = stderr(output);
    env.assert_no_secret(&text);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{text}",
        output.status
    );
}

/// Runs a tool, asserting success; returns stdout.
fn run(command: &mut Command) -> String {
    let output = command.output().expect("running a tool");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn sha256_of(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    format!(
        "sha256:{}",
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes))
    )
}

/// The digest `index.json` of a layout names with `ref_name`.
fn layout_ref(layout: &Path, ref_name: &str) -> String {
    json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .unwrap_or_else(|| panic!("{} names no {ref_name}", layout.display()))["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The image manifests (JSON) of the index `digest` in `layout`.
fn platform_manifests(layout: &Path, digest: &str) -> Vec<(String, Value)> {
    json(&blob(layout, digest))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let digest = entry["digest"].as_str().unwrap().to_owned();
            let manifest = json(&blob(layout, &digest));
            (digest, manifest)
        })
        .collect()
}

/// Builds greeter's image with castoff and pushes it with `skopeo copy --all` to
/// `registry/repository:1` (with the harness's credentials); returns the index digest, which
/// the registry serves unchanged.
fn push_greeter_base(env: &TestEnv, scratch: &Path, registry: &str, repository: &str) -> String {
    let workspace = scratch.join("single-cli");
    copy_fixture("single-cli", &workspace);
    let base_dist = scratch.join("base-dist");
    let output = castoff(
        &workspace,
        &["dist", "--dist-dir", base_dist.to_str().unwrap()],
        None,
        scratch,
    );
    assert_success(env, &output, "dist of the base");
    let layout = base_dist.join("oci/greeter");
    let digest = layout_ref(&layout, "0.3.1");
    let host = TestEnv::host_port(registry);
    let creds = format!("{}:{}", env.user, env.password);
    run(Command::new(env.tool("skopeo"))
        .args(["copy", "--all", "--dest-tls-verify=false", "--dest-creds"])
        .arg(&creds)
        .arg(format!("oci:{}:0.3.1", layout.display()))
        .arg(format!("docker://{host}/{repository}:1")));
    let raw = Command::new(env.tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false", "--creds"])
        .arg(&creds)
        .arg(format!("docker://{host}/{repository}:1"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    assert_eq!(
        format!(
            "sha256:{}",
            castoff_archive::digest::hex(&castoff_archive::digest::sha256(&raw.stdout))
        ),
        digest,
        "the registry serves the index castoff built"
    );
    digest
}

/// A copy of http-service whose image is based on `reference`.
fn pinger_on(scratch: &Path, reference: &str) -> PathBuf {
    let workspace = scratch.join("http-service");
    copy_fixture("http-service", &workspace);
    let manifest = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let configured = "oci = { repository = \"ghcr.io/acme/pinger\",";
    assert!(text.contains(configured));
    fs::write(
        &manifest,
        text.replace(configured, &format!("{configured} base = \"{reference}\",")),
    )
    .unwrap();
    workspace
}

/// Unpacks the host image from its `docker load` archive with umoci; returns the bundle.
fn unpack(env: &TestEnv, dist: &Path, scratch: &Path) -> PathBuf {
    let layout = scratch.join("host-layout");
    let bundle = scratch.join("bundle");
    let _ = fs::remove_dir_all(&layout);
    let _ = fs::remove_dir_all(&bundle);
    fs::create_dir_all(&layout).unwrap();
    run(Command::new(env.tool("tar"))
        .arg("-xf")
        .arg(dist.join("oci/pinger-linux-amd64.tar"))
        .arg("-C")
        .arg(&layout));
    run(Command::new(env.tool("umoci"))
        .args(["unpack", "--image"])
        .arg(format!("{}:1.4.0", layout.display()))
        .arg(&bundle));
    bundle
}

/// `runc run` of the bundle with `args`, without a terminal.
fn runc(env: &TestEnv, bundle: &Path, args: &[&str]) -> String {
    let config_path = bundle.join("config.json");
    let mut config = json(&config_path);
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = args.iter().map(|arg| Value::from(*arg)).collect();
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let id = format!("castoff-base-pull-{}", std::process::id());
    let output = Command::new(env.tool("runc"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = Command::new(env.tool("runc"))
        .args(["delete", "--force", &id])
        .output();
    assert!(output.status.success(), "runc run: {}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Flips the bytes of a file in place (same size, other digest).
fn tamper(path: &Path) {
    let bytes: Vec<u8> = fs::read(path).unwrap().iter().map(|b| !b).collect();
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_registry_base_is_pulled_once_cached_and_built_upon() {
    let env = TestEnv::get();
    let scratch = env.scratch_dir("base-pull-token");
    // The token registry: Bearer challenge, token with pull scope, credentials from the env.
    let host = TestEnv::host_port(&env.registry_token).to_owned();
    let repository = format!("base/greeter-{}", std::process::id());
    let index_digest = push_greeter_base(&env, &scratch, &env.registry_token, &repository);
    let base_layout = scratch.join("base-dist/oci/greeter");
    let base_manifests = platform_manifests(&base_layout, &index_digest);
    assert_eq!(
        base_manifests.len(),
        1,
        "the base is built for the host only"
    );
    let (base_manifest_digest, base_manifest) = &base_manifests[0];

    let reference = format!("{host}/{repository}@{index_digest}");
    let workspace = pinger_on(&scratch, &reference);
    // This machine's dist is then the whole release, which publish takes below.
    release_for_host_only(&workspace);
    let good = Some((host.as_str(), env.user.as_str(), env.password.as_str()));
    let output = castoff(&workspace, &["dist"], good, &scratch);
    assert_success(&env, &output, "first dist");
    let dist = workspace.join("dist");
    let layout = dist.join("oci/pinger");
    let image_index = layout_ref(&layout, "1.4.0");

    // The cache: an image layout naming the pinned digest with the reference, holding the
    // base's index, manifest, config and layers, each under its own digest.
    let cache = workspace.join("target/castoff/base-cache");
    assert_eq!(layout_ref(&cache, &reference), index_digest);
    let base_blobs: Vec<String> = std::iter::once(base_manifest["config"].clone())
        .chain(base_manifest["layers"].as_array().unwrap().iter().cloned())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    for digest in [&index_digest, base_manifest_digest]
        .into_iter()
        .chain(&base_blobs)
    {
        assert_eq!(&sha256_of(&blob(&cache, digest)), digest);
    }

    // The image: base layers first, annotations naming the base, every blob in dist/ (so
    // publish has what it pushes).
    let manifests = platform_manifests(&layout, &image_index);
    assert_eq!(manifests.len(), 1);
    let manifest = &manifests[0].1;
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.base.name"],
        format!("{host}/{repository}")
    );
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base_manifest_digest.as_str()
    );
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), base_blobs.len());
    assert_eq!(layers[..layers.len() - 1], base_blobs[1..]);
    for digest in layers
        .iter()
        .copied()
        .chain([manifest["config"]["digest"].as_str().unwrap()])
    {
        assert_eq!(sha256_of(&blob(&layout, digest)), digest);
    }

    // Both binaries run: greeter from the base, pinger from castoff's layer.
    let bundle = unpack(&env, &dist, &scratch);
    assert_eq!(
        run(Command::new(env.tool("chroot"))
            .arg(bundle.join("rootfs"))
            .args(["/usr/local/bin/greeter", "--version"])),
        "greeter 0.3.1\n"
    );
    assert_eq!(
        runc(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );

    // publish pushes the image, base layers included, to another registry.
    let destination = format!(
        "{}/pulled/pinger-{}",
        TestEnv::host_port(&env.registry_open),
        std::process::id()
    );
    let output = castoff(
        &workspace,
        &["publish", "--oci-repository", &destination],
        None,
        &scratch,
    );
    assert_success(&env, &output, "publish");
    let pushed = run(Command::new(env.tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{destination}:1.4.0")));
    assert_eq!(
        format!(
            "sha256:{}",
            castoff_archive::digest::hex(&castoff_archive::digest::sha256(pushed.as_bytes()))
        ),
        image_index
    );

    // A damaged cached layer is noticed and fetched again; the image is the same.
    let base_layer = blob(&cache, &base_blobs[1]);
    tamper(&base_layer);
    let output = castoff(&workspace, &["dist"], good, &scratch);
    assert_success(&env, &output, "dist after damaging the cache");
    assert_eq!(sha256_of(&base_layer), base_blobs[1]);
    assert_eq!(layout_ref(&layout, "1.4.0"), image_index);

    // The base leaves the registry, and the password is wrong: a dist that sent any request
    // would fail. It succeeds from the cache alone, with the same image.
    let creds = format!("{}:{}", env.user, env.password);
    for digest in [&index_digest, base_manifest_digest] {
        run(Command::new(env.tool("skopeo"))
            .args(["delete", "--tls-verify=false", "--creds"])
            .arg(&creds)
            .arg(format!("docker://{host}/{repository}@{digest}")));
    }
    let gone = Command::new(env.tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false", "--creds"])
        .arg(&creds)
        .arg(format!("docker://{host}/{repository}@{index_digest}"))
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the base is still in the registry");
    let wrong = Some((host.as_str(), env.user.as_str(), "not-the-password"));
    let output = castoff(&workspace, &["dist"], wrong, &scratch);
    assert_success(&env, &output, "dist from the cache");
    assert_eq!(layout_ref(&layout, "1.4.0"), image_index);

    // Now the cache is damaged and the registry refuses: a clear error naming the base, and
    // the previous dist/ stays.
    tamper(&base_layer);
    let output = castoff(&workspace, &["dist"], wrong, &scratch);
    let text = stderr(&output);
    env.assert_no_secret(&text);
    assert!(!output.status.success(), "dist succeeded:\n{text}");
    assert!(
        text.contains(&format!(
            "could not pull the base image `{reference}` of `pinger`"
        )),
        "{text}"
    );
    assert!(text.contains("401"), "{text}");
    assert!(
        text.contains("the registry rejected the credentials"),
        "{text}"
    );
    assert!(!base_layer.exists(), "the damaged blob was kept");
    assert_eq!(layout_ref(&layout, "1.4.0"), image_index);
}

#[test]
fn a_digest_the_registry_does_not_have_is_an_error_naming_the_reference() {
    let env = TestEnv::get();
    let scratch = env.scratch_dir("base-pull-missing");
    // The htpasswd registry: Basic auth with the credentials from the env.
    let host = TestEnv::host_port(&env.registry_basic).to_owned();
    let reference = format!("{host}/base/nothing-here@sha256:{}", "e".repeat(64));
    let workspace = pinger_on(&scratch, &reference);
    let good = Some((host.as_str(), env.user.as_str(), env.password.as_str()));
    let output = castoff(&workspace, &["dist"], good, &scratch);
    let text = stderr(&output);
    env.assert_no_secret(&text);
    assert!(!output.status.success(), "dist succeeded:\n{text}");
    let text = text.replace(&host, "<registry>");
    let hex = "e".repeat(64);
    let expected = format!(
        "could not pull the base image `<registry>/base/nothing-here@sha256:{hex}` of `pinger`\n\
         caused by: <registry>/base/nothing-here@sha256:{hex}: GET http://<registry>/v2/base/nothing-here/manifests/sha256:{hex} answered 404: MANIFEST_UNKNOWN: the registry has no manifest with this digest\n\
         hint: check the reference: the repository name and the digest (`skopeo inspect docker://<image>` shows it); a deleted image cannot be pulled by digest"
    );
    assert!(text.contains(&expected), "{text}");
    // Nothing was built, and the cache names nothing.
    assert!(!workspace.join("dist").exists());
    let index = workspace.join("target/castoff/base-cache/index.json");
    assert!(!index.exists(), "{}", fs::read_to_string(&index).unwrap());
}

#[test]
fn an_unpinned_reference_is_refused_by_the_plan() {
    let env = TestEnv::get();
    let scratch = env.scratch_dir("base-pull-unpinned");
    let host = TestEnv::host_port(&env.registry_open).to_owned();
    let workspace = pinger_on(&scratch, &format!("{host}/base/greeter:1"));
    let output = castoff(&workspace, &["dist"], None, &scratch);
    let text = stderr(&output);
    assert!(!output.status.success(), "dist succeeded:\n{text}");
    assert!(
        text.contains(&format!(
            "base image `{host}/base/greeter:1` is not pinned by digest"
        )),
        "{text}"
    );
    assert!(!workspace.join("target/castoff/base-cache").exists());
}

/// Several `dist` runs pulling different bases into one base cache at once (workspaces that
/// share a target directory): every reference keeps its `index.json` entry, because the
/// read-modify-write of the index takes the cache's lock.
#[test]
fn parallel_dists_sharing_a_base_cache_keep_every_index_entry() {
    use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
    let env = TestEnv::get();
    let scratch = env.scratch_dir("base-pull-parallel");
    let host = TestEnv::host_port(&env.registry_open).to_owned();
    let first = format!("base/parallel-{}-0", std::process::id());
    let digest = push_greeter_base(&env, &scratch, &env.registry_open, &first);
    let runs = 6;
    let mut references = vec![format!("{host}/{first}@{digest}")];
    for k in 1..runs {
        let repository = format!("base/parallel-{}-{k}", std::process::id());
        run(Command::new(env.tool("skopeo"))
            .args([
                "copy",
                "--all",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{host}/{first}:1"))
            .arg(format!("docker://{host}/{repository}:1")));
        references.push(format!("{host}/{repository}@{digest}"));
    }
    let shared_target = scratch.join("shared-target");
    write_static_elf(
        &shared_target.join("x86_64-unknown-linux-gnu/release"),
        "pinger",
        EM_X86_64,
        "pinger 1.4.0",
    );
    let children: Vec<_> = references
        .iter()
        .enumerate()
        .map(|(k, reference)| {
            let workspace = pinger_on(&scratch.join(format!("ws-{k}")), reference);
            Command::new(env!("CARGO_BIN_EXE_castoff"))
                .args([
                    "dist",
                    "--no-build",
                    "--target",
                    "x86_64-unknown-linux-gnu",
                    "--manifest-path",
                ])
                .arg(workspace.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &shared_target)
                .env("DOCKER_CONFIG", scratch.join("no-docker-config"))
                .env("SOURCE_DATE_EPOCH", EPOCH)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_success(&env, &output, "one of the parallel dists");
    }
    let cache = shared_target.join("castoff/base-cache");
    for reference in &references {
        assert_eq!(
            layout_ref(&cache, reference),
            digest,
            "the cache's index.json lost {reference}"
        );
    }
    env.figure(format!(
        "filesystem: {runs} parallel dists pulling {runs} references into one base cache, every index entry kept"
    ));
}
