//! One release of every target castoff supports, made as a maintainer would make it from
//! binaries built elsewhere: the single-cli fixture with every target of the table, its
//! binaries the platform probe's builds (`dist --prebuilt-dir`, no compiler involved), published
//! once per test process to the harness's pypiserver, Verdaccio and open registry. The modules
//! beside this one prove that each platform's users get the right build from it, with the
//! clients they install with.

mod images;
mod npm;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use castoff_plan::{Manifest, Target};
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{assert_success, copy_fixture, isolated_command};

mod downloads;
mod wheels;

/// The release every module here reads; made by the first test that asks.
#[allow(dead_code)] // the modules proving each channel read the rest
pub(crate) struct Matrix {
    /// The workspace copy: single-cli with every target and this run's names.
    pub(crate) workspace: PathBuf,
    /// Its `dist/`.
    pub(crate) dist: PathBuf,
    /// `HOME` of the castoff runs (empty: nothing of the developer's).
    pub(crate) home: PathBuf,
    /// The PyPI project name, unique to this test process.
    pub(crate) python_name: String,
    /// The npm launcher's name (`@<scope>/greeter`).
    pub(crate) npm_name: String,
    /// `host:port/path` of the image repository on the harness's open registry.
    pub(crate) oci_repository: String,
    /// `dist/manifest.json`.
    pub(crate) manifest: Manifest,
}

#[allow(dead_code)]
impl Matrix {
    /// The pypiserver index pip and uv read (`…/simple/`).
    pub(crate) fn index_url(&self, env: &TestEnv) -> String {
        format!("{}simple/", env.pypiserver)
    }

    /// The npm platform package of `target` (`@scope/greeter-linux-x64-gnu`).
    pub(crate) fn npm_platform_package(&self, target: &Target) -> String {
        format!("{}-{}", self.npm_name, target.npm_platform_suffix())
    }

    /// The file `path` of the dist (relative to `dist/`) of the artifact `id`.
    pub(crate) fn artifact_path(&self, id: &str) -> PathBuf {
        let artifact = self
            .manifest
            .artifacts
            .iter()
            .find(|artifact| artifact.id == id)
            .unwrap_or_else(|| panic!("no artifact `{id}` in the matrix release"));
        self.dist.join(
            artifact
                .path
                .as_deref()
                .unwrap_or_else(|| panic!("artifact `{id}` has no file")),
        )
    }
}

static MATRIX: OnceLock<Matrix> = OnceLock::new();

/// `castoff dist` of the workspace of `manifest_path` into `dist_dir`, from the probe's builds
/// of `triples` (linked into `binaries`, which must not exist yet), as `home`; its manifest.
pub(crate) fn dist_from_probe(
    env: &TestEnv,
    home: &Path,
    manifest_path: &Path,
    triples: &[&str],
    binaries: &Path,
    dist_dir: &Path,
) -> Manifest {
    let binaries = env.probe_prebuilt_dir(triples, binaries);
    let output = isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), home)
        .arg("dist")
        .arg("--manifest-path")
        .arg(manifest_path)
        .arg("--prebuilt-dir")
        .arg(&binaries)
        .arg("--dist-dir")
        .arg(dist_dir)
        .output()
        .expect("running castoff dist");
    assert_success(
        &output,
        &format!("dist of {} from the probe's builds", triples.join(", ")),
    );
    Manifest::from_json(&fs::read_to_string(dist_dir.join("manifest.json")).unwrap()).unwrap()
}

/// The release of every target, dist'ed and published (once per test process).
pub(crate) fn matrix() -> &'static Matrix {
    MATRIX.get_or_init(make)
}

fn make() -> Matrix {
    let env = TestEnv::get();
    let scope = format!("mx{}", std::process::id());
    let root = env.scratch_dir(&format!("matrix-{scope}"));
    let workspace = root.join("workspace");
    let home = root.join("home");
    fs::create_dir_all(&home).unwrap();
    copy_fixture("single-cli", &workspace);

    let python_name = format!("greeter-{scope}");
    let npm_name = format!("@{scope}/greeter");
    let all: Vec<&str> = Target::all().iter().map(|target| target.triple).collect();
    let manifest_path = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path).unwrap();
    let targets_line = text
        .lines()
        .find(|line| line.starts_with("targets = "))
        .expect("single-cli names its targets")
        .to_owned();
    let quoted: Vec<String> = all.iter().map(|triple| format!("\"{triple}\"")).collect();
    let text = text
        .replace(&targets_line, &format!("targets = [{}]", quoted.join(", ")))
        // The probe's glibc builds are dynamic, as most projects' are.
        .replace("crt-static = true\n", "")
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"{python_name}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"{npm_name}\""));
    assert!(
        text.contains(&python_name) && text.contains(&npm_name) && !text.contains("crt-static"),
        "single-cli's Cargo.toml changed shape:\n{text}"
    );
    fs::write(&manifest_path, text).unwrap();

    let dist_dir = workspace.join("dist");
    let manifest = dist_from_probe(
        &env,
        &home,
        &manifest_path,
        &all,
        &root.join("binaries"),
        &dist_dir,
    );
    let castoff = Path::new(env!("CARGO_BIN_EXE_castoff"));
    assert_eq!(manifest.partial, None, "every target is in the release");

    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let oci_repository = format!("{registry}/{scope}/greeter");
    let publish = isolated_command(castoff, &home)
        .arg("publish")
        .arg("--manifest-path")
        .arg(&manifest_path)
        .args(["--pypi-url", &env.pypiserver])
        .args(["--npm-registry", &env.verdaccio])
        .args(["--oci-repository", &oci_repository])
        .env("TWINE_USERNAME", &env.user)
        .env("TWINE_PASSWORD", &env.password)
        .env("NPM_TOKEN", &env.npm_token)
        .output()
        .expect("running castoff publish");
    assert_success(
        &publish,
        "publish of every target to the harness's registries",
    );
    env.assert_no_secret(&String::from_utf8_lossy(&publish.stderr));

    Matrix {
        workspace,
        dist: dist_dir,
        home,
        python_name,
        npm_name,
        oci_repository,
        manifest,
    }
}

/// The release holds every target's artifacts in every channel that can express it, and the
/// image index one image per Linux platform, built from the musl target.
#[test]
fn the_release_holds_every_target_in_every_channel() {
    let env = TestEnv::get();
    let matrix = matrix();
    let ids: Vec<&str> = matrix
        .manifest
        .artifacts
        .iter()
        .map(|artifact| artifact.id.as_str())
        .collect();
    let mut missing = Vec::new();
    for target in Target::all() {
        for kind in ["binary", "archive", "wheel", "npm-platform", "sbom"] {
            let id = format!("{kind}/greeter/{}", target.triple);
            if !ids.contains(&id.as_str()) {
                missing.push(id);
            }
        }
        let image = format!("oci-image/greeter/{}", target.triple);
        let wanted = target.oci.is_some() && target.libc == Some(castoff_plan::target::Libc::Musl);
        if wanted != ids.contains(&image.as_str()) {
            missing.push(format!("{image}: expected {wanted}"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    let images = ids.iter().filter(|id| id.starts_with("oci-image/")).count();
    env.figure(format!(
        "matrix release: {} targets from the probe's builds (dist --prebuilt-dir): {} wheels, {} npm platform packages, {} images in one index, published to pypiserver, Verdaccio and distribution",
        Target::all().len(),
        Target::all().len(),
        Target::all().len(),
        images
    ));
}
