//! Shared by castoff-oci's integration tests: fixture binaries (static and
//! dynamic builds of the real fixtures, and tiny hand-made ELF files for snapshots), building
//! a fixture's images, and running external tools with readable failures.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use castoff_oci::{BuiltIndex, ImageInput, ImageOptions};
use castoff_plan::{AppId, Release};
use castoff_test_support::workspace::repository_root;

pub const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// How a fixture binary is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linking {
    /// `-C target-feature=+crt-static`: static-pie, runs on `scratch` (`target/fixtures/static`).
    Static,
    /// The default glibc build, with an ELF interpreter (`target/fixtures/host`).
    Dynamic,
}

/// Builds `tests/fixtures/<fixture>` for the host once per test process and returns the path
/// of its binary `bin`.
pub fn fixture_binary(fixture: &str, bin: &str, linking: Linking) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashSet<(String, Linking)>>> = OnceLock::new();
    let root = repository_root();
    let target_dir = root.join(match linking {
        Linking::Static => "target/fixtures/static",
        Linking::Dynamic => "target/fixtures/host",
    });
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if !built.contains(&(fixture.to_owned(), linking)) {
        let mut command = Command::new(env!("CARGO"));
        command
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("tests/fixtures").join(fixture).join("Cargo.toml"))
            .args(["--target", HOST_TRIPLE, "--target-dir"])
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if linking == Linking::Static {
            command.env("RUSTFLAGS", "-C target-feature=+crt-static");
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the {fixture} fixture ({linking:?}) failed"
        );
        built.insert((fixture.to_owned(), linking));
    }
    target_dir.join(HOST_TRIPLE).join("release").join(bin)
}

/// A tiny static ELF executable for `machine` (no interpreter), different per `text`. On
/// x86-64 it really runs: it prints `text` and exits 0. Snapshots use it so that their digests
/// do not depend on the compiler.
pub fn fake_static_elf(dir: &Path, name: &str, machine: u16, text: &str) -> PathBuf {
    castoff_test_support::binaries::write_static_elf(dir, name, machine, text)
}

/// ELF machine numbers the tests use.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// Inputs for every Linux target of every binary of `app`, each binary from `binary`.
pub fn inputs(
    release: &Release,
    app: AppId,
    mut binary: impl FnMut(&'static castoff_plan::Target, &str) -> PathBuf,
) -> Vec<ImageInput> {
    let app = &release.apps[app.0];
    app.targets
        .iter()
        .filter(|target| target.oci.is_some())
        .map(|&target| ImageInput {
            target,
            binaries: app
                .bins
                .iter()
                .map(|bin| (bin.clone(), binary(target, bin)))
                .collect(),
            sbom: None,
        })
        .collect()
}

/// The host target's binaries built from `fixture` (static), a fake static aarch64 ELF under
/// `fake_dir` for every other target: what the tests that run an image need.
pub fn host_inputs(release: &Release, fixture: &str, fake_dir: &Path) -> Vec<ImageInput> {
    inputs(release, AppId(0), |target, bin| {
        if target.triple == HOST_TRIPLE {
            fixture_binary(fixture, bin, Linking::Static)
        } else {
            fake_static_elf(&fake_dir.join(target.triple), bin, EM_AARCH64, "fake\n")
        }
    })
}

/// Fake static binaries for every target: `<bin> <version> (<triple>)`.
pub fn fake_inputs(release: &Release, app: AppId, dir: &Path) -> Vec<ImageInput> {
    let version = release.apps[app.0].package.version.to_string();
    inputs(release, app, |target, bin| {
        let machine = match target.oci.unwrap().architecture {
            "arm64" => EM_AARCH64,
            _ => EM_X86_64,
        };
        fake_static_elf(
            &dir.join(target.triple),
            bin,
            machine,
            &format!("{bin} {version} (fake, {})\n", target.triple),
        )
    })
}

/// The http-service fixture with every deploy setting of issue 23 in its configuration:
/// ports in their three forms (a UDP one, a named one), labels (one that Kubernetes takes as a
/// label, one only as an annotation), a readiness probe of its own, a start interval, and
/// `oci.deploy`.
pub fn service_release_with_deploy_settings() -> Release {
    castoff_test_support::workspace::fixture_release_with("http-service", |metadata| {
        deploy_settings(&mut metadata.packages[0].metadata["castoff"]["oci"]);
    })
}

/// [`service_release_with_deploy_settings`] with an `http` health check (castoff's probe in
/// the image, `httpGet` probes in Kubernetes) in place of the fixture's command.
pub fn service_release_with_http_check() -> Release {
    castoff_test_support::workspace::fixture_release_with("http-service", |metadata| {
        let oci = &mut metadata.packages[0].metadata["castoff"]["oci"];
        deploy_settings(oci);
        oci["healthcheck"] = serde_json::json!({
            "http": "/healthz",
            "port": 8080,
            "interval": "2s",
            "timeout": "1s",
            "start-period": "10s",
            "start-interval": "500ms",
            "retries": 3,
            "readiness": { "interval": "5s", "retries": 1 },
        });
    })
}

fn deploy_settings(oci: &mut serde_json::Value) {
    oci["ports"] = serde_json::json!([
        8080,
        "53/udp",
        { "name": "metrics", "port": 9090, "protocol": "tcp" },
    ]);
    oci["labels"] = serde_json::json!({
        "team": "payments",
        "org.opencontainers.image.vendor": "Acme Inc.",
    });
    oci["healthcheck"]["start-interval"] = serde_json::json!("500ms");
    oci["healthcheck"]["start-period"] = serde_json::json!("10s");
    oci["healthcheck"]["readiness"] = serde_json::json!({ "interval": "5s", "retries": 1 });
    oci["volumes"] = serde_json::json!(["/var/cache/pinger", "/data"]);
    oci["deploy"] = serde_json::json!({
        "replicas": 2,
        "cpu": "500m",
        "cpu-limit": "1",
        "memory": "128Mi",
        "stop-grace-period": "30s",
    });
}

/// The options every test uses: a fixed epoch (2023-11-14T22:13:20Z) and revision.
pub fn options(release: &Release) -> ImageOptions<'_> {
    ImageOptions {
        workspace_root: &release.workspace_root,
        target_directory: &release.target_directory,
        source_date_epoch: 1_700_000_000,
        revision: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
        deflate: castoff_test_support::deflate_cache(),
    }
}

/// Builds the images of the first app of `release` into `dist`.
pub fn build(release: &Release, inputs: Vec<ImageInput>, dist: &Path) -> BuiltIndex {
    build_first(release, inputs, &options(release), dist)
        .unwrap_or_else(|error| panic!("build_images failed:\n{error}"))
}

/// Builds the images of the first app of `release` (which has an image channel).
#[allow(clippy::result_large_err)] // OciError as the builder returns it
pub fn build_first(
    release: &Release,
    inputs: Vec<ImageInput>,
    options: &ImageOptions<'_>,
    dist: &Path,
) -> Result<BuiltIndex, castoff_oci::OciError> {
    let app = &release.apps[0];
    let oci = app
        .oci
        .as_ref()
        .expect("the first app has an image channel");
    castoff_oci::build_images(app, oci, inputs, options, dist)
}

/// A fresh scratch directory under Cargo's per-test-target temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("castoff-oci")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a command, panics with its output unless it succeeds, returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = output(command);
    assert!(
        output.status.success(),
        "`{command:?}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command and returns its output, panicking only if it cannot start.
pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{command:?}`: {error}"))
}

/// Parses a blob of the layout as JSON.
pub fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The blob's raw bytes.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// Pretty JSON with a final newline, for snapshots.
pub fn pretty(value: &serde_json::Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap())
}
