//! `castoff plan` run as a user runs it (the real binary): dependent apps publish after their
//! dependencies, `--package` / `--target` narrow the plan, and broken fixtures fail with a
//! named, hinted error. The snapshots of every format, whose DOT Graphviz must render, are in
//! `live::plan`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::Manifest;
use castoff_test_support::workspace::{fixture_dir, repository_root};
use expect_test::{ExpectFile, expect_file};

fn castoff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running castoff")
}

pub(crate) fn plan(manifest: &Path, format: &str) -> String {
    let manifest = manifest.to_str().unwrap();
    let output = castoff(&["plan", "--manifest-path", manifest, "--format", format]);
    assert!(
        output.status.success(),
        "castoff plan --format {format} failed on {manifest}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `Cargo.toml` of `tests/fixtures/<name>`.
pub(crate) fn fixture_manifest(name: &str) -> PathBuf {
    fixture_dir(name).join("Cargo.toml")
}

/// The dependent app's publish steps wait for those of the app it depends on.
#[test]
fn dependent_app_is_published_after_its_dependency() {
    let json = plan(&fixture_manifest("two-apps"), "json");
    let manifest = Manifest::from_json(&json).unwrap();
    let step = |id: &str| {
        manifest
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    let wheel = step("pypi-upload/toolkit/x86_64-unknown-linux-gnu");
    assert!(
        wheel
            .after
            .contains(&"pypi-upload/toolkit-core/x86_64-unknown-linux-gnu".to_owned())
    );
    let launcher = step("npm-publish/toolkit");
    assert!(
        launcher
            .after
            .contains(&"npm-publish/toolkit-core".to_owned())
    );
    assert!(
        launcher
            .after
            .contains(&"npm-publish/toolkit/x86_64-unknown-linux-musl".to_owned())
    );
    let toolkit = manifest
        .apps
        .iter()
        .find(|app| app.name == "toolkit")
        .unwrap();
    assert_eq!(
        toolkit.python.as_ref().unwrap().requires_dist,
        ["toolkit-core==2.0.0rc1", "colorama>=0.4"]
    );
}

/// `--package` and `--target` narrow the plan; unknown values are usage errors.
#[test]
fn narrowing() {
    let manifest = fixture_manifest("two-apps");
    let manifest = manifest.to_str().unwrap();
    let output = castoff(&[
        "plan",
        "--manifest-path",
        manifest,
        "-p",
        "toolkit-core",
        "--target",
        "x86_64-unknown-linux-musl",
        "--format",
        "json",
    ]);
    assert!(output.status.success());
    let parsed = Manifest::from_json(std::str::from_utf8(&output.stdout).unwrap()).unwrap();
    assert_eq!(parsed.apps.len(), 1);
    assert_eq!(parsed.apps[0].targets, ["x86_64-unknown-linux-musl"]);

    let output = castoff(&["plan", "--manifest-path", manifest, "-p", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`nope` is not a released package"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: released packages: toolkit-core, toolkit"),
        "{stderr}"
    );

    let output = castoff(&[
        "plan",
        "--manifest-path",
        manifest,
        "--target",
        "aarch64-apple-darwin",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no released package is built for `aarch64-apple-darwin`"),
        "{stderr}"
    );
}

/// Each broken fixture fails before any work with exit code 2 and a message naming the
/// file, the key, the value and a fix.
fn check_broken(name: &str, expect: ExpectFile) {
    let manifest = fixture_manifest(&format!("broken/{name}"));
    let output = castoff(&["plan", "--manifest-path", manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{name}: exit code");
    assert!(output.stdout.is_empty(), "{name}: nothing on stdout");
    let fixtures = repository_root().join("tests/fixtures");
    let stderr = String::from_utf8(output.stderr)
        .unwrap()
        .replace(fixtures.to_str().unwrap(), "$FIXTURES");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert!(
        stderr.contains("$FIXTURES/broken/"),
        "names the file: {stderr}"
    );
    expect.assert_eq(&stderr);
}

#[test]
fn broken_unknown_key() {
    check_broken(
        "unknown-key",
        expect_file!["../../snapshots/broken-unknown-key.stderr"],
    );
}

#[test]
fn broken_bad_version() {
    check_broken(
        "bad-version",
        expect_file!["../../snapshots/broken-bad-version.stderr"],
    );
}

#[test]
fn broken_unknown_target() {
    check_broken(
        "unknown-target",
        expect_file!["../../snapshots/broken-unknown-target.stderr"],
    );
}

#[test]
fn broken_dependency_cycle() {
    check_broken(
        "dependency-cycle",
        expect_file!["../../snapshots/broken-dependency-cycle.stderr"],
    );
}

#[test]
fn broken_missing_binary() {
    check_broken(
        "missing-binary",
        expect_file!["../../snapshots/broken-missing-binary.stderr"],
    );
}

#[test]
fn not_a_workspace() {
    let output = castoff(&["plan", "--manifest-path", "/nonexistent/Cargo.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: could not read the workspace at /nonexistent/Cargo.toml"),
        "{stderr}"
    );
}
