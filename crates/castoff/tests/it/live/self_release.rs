//! castoff releases itself: the dist/ that `cargo xtask test` builds of this repository with
//! `castoff dist` (the README's main job) installs and runs in every channel: the wheel with
//! pip, the npm packages with npm, the image under runc (after `umoci unpack`) and docker.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::Manifest;
use castoff_test_support::TestEnv;

const VERSION_LINE: &str = concat!("castoff ", env!("CARGO_PKG_VERSION"), "\n");

fn self_dist(env: &TestEnv) -> (PathBuf, Manifest) {
    let manifest_path = env.self_dist.join("manifest.json");
    let text = fs::read_to_string(&manifest_path).unwrap_or_else(|error| {
        panic!(
            "{} is missing ({error}): `cargo xtask test` builds it before the tests; by hand: \
             `cargo run -p castoff -- dist --dist-dir {}`",
            manifest_path.display(),
            env.self_dist.display()
        )
    });
    (env.self_dist.clone(), Manifest::from_json(&text).unwrap())
}

fn path_of(dist: &Path, manifest: &Manifest, kind: &str) -> PathBuf {
    let artifact = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("castoff's dist has no {kind}"));
    dist.join(artifact.path.as_ref().unwrap())
}

fn checked(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn wheel_installs_and_runs() {
    let env = TestEnv::get();
    let (dist, manifest) = self_dist(&env);
    let wheel = path_of(&dist, &manifest, "wheel");
    // castoff's Linux build is static (`crt-static`): one wheel for glibc and musl systems.
    assert!(
        wheel
            .to_string_lossy()
            .contains("manylinux_2_17_x86_64.musllinux_1_1_x86_64"),
        "{}",
        wheel.display()
    );
    let venv = env.scratch_dir("self-wheel").join("venv");
    checked(
        Command::new(env.tool("python3"))
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap(),
        "python -m venv",
    );
    checked(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--no-index"])
            .arg(&wheel)
            .output()
            .unwrap(),
        "pip install",
    );
    let version = checked(
        Command::new(venv.join("bin/castoff"))
            .arg("--version")
            .output()
            .unwrap(),
        "castoff --version",
    );
    assert_eq!(version, VERSION_LINE);
}

#[test]
fn npm_packages_install_and_run() {
    let env = TestEnv::get();
    let (dist, manifest) = self_dist(&env);
    let platform = path_of(&dist, &manifest, "npm-platform");
    let launcher = path_of(&dist, &manifest, "npm-launcher");
    let project = env.scratch_dir("self-npm");
    fs::write(
        project.join("package.json"),
        "{\"name\":\"consumer\",\"private\":true}",
    )
    .unwrap();
    checked(
        Command::new("npm")
            .args([
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--userconfig",
                "/dev/null",
                "--cache",
            ])
            .arg(project.join(".npm-cache"))
            .arg(&platform)
            .arg(&launcher)
            .current_dir(&project)
            .output()
            .unwrap(),
        "npm install",
    );
    let version = checked(
        Command::new("npx")
            .args(["--no-install", "castoff", "--version"])
            .current_dir(&project)
            .output()
            .unwrap(),
        "npx castoff --version",
    );
    assert_eq!(version, VERSION_LINE);
}

#[test]
fn image_runs_under_runc() {
    let env = TestEnv::get();
    let (dist, manifest) = self_dist(&env);
    let layout = path_of(&dist, &manifest, "oci-index");
    let scratch = env.scratch_dir("self-runc");
    let bundle = scratch.join("bundle");
    let tag = env!("CARGO_PKG_VERSION");
    checked(
        Command::new(env.tool("umoci"))
            .args(["unpack", "--image", &format!("{}:{tag}", layout.display())])
            .arg(&bundle)
            .output()
            .unwrap(),
        "umoci unpack",
    );
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config_path).unwrap()).unwrap();
    // umoci asks for a terminal; tests have none. Run `castoff --version` as the entrypoint.
    config["process"]["terminal"] = serde_json::json!(false);
    config["process"]["args"] = serde_json::json!(["/usr/local/bin/castoff", "--version"]);
    fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();
    let id = format!("castoff-self-{}", std::process::id());
    let output = Command::new(env.tool("runc"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = Command::new(env.tool("runc"))
        .args(["delete", "--force", &id])
        .output();
    assert_eq!(checked(output, "runc run"), VERSION_LINE);
}

#[test]
fn image_loads_and_runs_in_docker() {
    let env = TestEnv::get();
    let (dist, manifest) = self_dist(&env);
    let archive = path_of(&dist, &manifest, "oci-image");
    let config = env.scratch_dir("self-docker").join("docker-config");
    fs::create_dir_all(&config).unwrap();
    let docker = || {
        let mut command = Command::new(env.tool("docker"));
        command
            .env("DOCKER_HOST", &env.docker_host)
            .env("DOCKER_CONFIG", &config);
        command
    };
    let loaded = checked(
        docker()
            .args(["load", "--input"])
            .arg(&archive)
            .output()
            .unwrap(),
        "docker load",
    );
    let reference = format!("ghcr.io/castoff-rs/castoff:{}", env!("CARGO_PKG_VERSION"));
    assert!(loaded.contains(&reference), "{loaded}");
    let version = checked(
        docker()
            .args(["run", "--rm", "--network", "none", &reference, "--version"])
            .output()
            .unwrap(),
        "docker run",
    );
    assert_eq!(version, VERSION_LINE);
    let user = checked(
        docker()
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Config.User}}",
                &reference,
            ])
            .output()
            .unwrap(),
        "docker image inspect",
    );
    assert_eq!(user.trim(), "65532:65532");
}
