//! Shared by castoff-npm's integration tests: the fixture binary, and building
//! every npm package of a fixture into a directory.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use castoff_npm::{BuiltPackage, LauncherInput, PlatformInput};
use castoff_plan::{App, Release, Target};
use castoff_test_support::workspace::{fixture_release, repository_root};

pub const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The `greeter` binary of `single-cli`, built once per test process for the host (shared
/// target dir `target/fixtures/host`).
pub fn greeter_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let root = repository_root();
            let target_dir = root.join("target/fixtures/host");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(root.join("tests/fixtures/single-cli/Cargo.toml"))
                .args(["--target", HOST_TRIPLE, "--target-dir"])
                .arg(&target_dir)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the greeter fixture failed");
            target_dir.join(HOST_TRIPLE).join("release/greeter")
        })
        .clone()
}

/// A placeholder "binary" for a target the tests never run (non-host targets).
pub fn placeholder_binary(dir: &Path, target: &Target, bin: &str) -> PathBuf {
    let path = dir.join("placeholders").join(target.triple);
    std::fs::create_dir_all(&path).unwrap();
    let file = path.join(target.executable_name(bin));
    std::fs::write(
        &file,
        format!("placeholder {bin} for {}\n", target.triple).as_bytes(),
    )
    .unwrap();
    file
}

/// `(bin, path)` of every binary of `app` for `target`: the real greeter for `single-cli` on
/// the host target, placeholders (written under `scratch`) everywhere else.
pub fn fixture_binaries(
    fixture: &str,
    app: &App,
    target: &'static Target,
    scratch: &Path,
) -> Vec<(String, PathBuf)> {
    app.bins
        .iter()
        .map(|bin| {
            let path = if fixture == "single-cli" && target.triple == HOST_TRIPLE {
                greeter_binary()
            } else {
                placeholder_binary(scratch, target, bin)
            };
            (bin.clone(), path)
        })
        .collect()
}

/// Every package of every npm app of a fixture: platform packages first, then the launcher.
#[derive(Debug)]
pub struct BuiltFixture {
    pub release: Release,
    /// Per app: (platform packages in target order, launcher).
    pub apps: Vec<(Vec<(&'static Target, BuiltPackage)>, BuiltPackage)>,
}

/// Builds all npm packages of `fixture` into `out_dir`. Host-target binaries are real for
/// `single-cli` (greeter); everything else is a placeholder.
pub fn build_fixture(fixture: &str, out_dir: &Path) -> BuiltFixture {
    let release = fixture_release(fixture);
    let scratch = out_dir.join("inputs");
    let mut apps = Vec::new();
    for app in &release.apps {
        let Some(npm) = &app.npm else { continue };
        let mut platforms = Vec::new();
        for &target in &app.targets {
            let built = castoff_npm::build_platform_package(
                &PlatformInput {
                    workspace_root: &release.workspace_root,
                    app,
                    npm,
                    target,
                    binaries: fixture_binaries(fixture, app, target, &scratch),
                    sbom: None,
                    deflate: castoff_test_support::deflate_cache(),
                },
                out_dir,
            )
            .unwrap_or_else(|error| panic!("{error}"));
            platforms.push((target, built));
        }
        let launcher = castoff_npm::build_launcher(
            &LauncherInput {
                workspace_root: &release.workspace_root,
                app,
                npm,
                targets: app.targets.clone(),
                level: castoff_archive::deflate::DEFAULT_LEVEL,
            },
            out_dir,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        apps.push((platforms, launcher));
    }
    BuiltFixture { release, apps }
}

/// A fresh directory under the workspace's `target/castoff-npm-tests/<name>`.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = repository_root()
        .join("target/castoff-npm-tests")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
