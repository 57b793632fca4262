//! Build settings end to end: the `build-settings` fixture has a feature (`fancy`) that pulls
//! in an optional dependency (itoa) and prints a line only it compiles in, and a custom
//! profile (`dist`) that strips the symbol table. Built with and without them, the shipped
//! binary, its SBOM, the manifest and `plan` must all tell the same story.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use castoff_plan::Manifest;
use castoff_test_support::workspace::{assert_success, copy_fixture, output_text};

use super::dist::scratch;

/// A copy of the fixture with `settings` added to its `[package.metadata.castoff]` table.
fn workspace(scratch: &Path, settings: &str) -> PathBuf {
    let workspace = scratch.join("workspace");
    copy_fixture("build-settings", &workspace);
    let manifest = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "python = { name = \"finder\" }\n",
        &format!("python = {{ name = \"finder\" }}\n{settings}"),
    );
    fs::write(&manifest, text).unwrap();
    workspace
}

fn castoff(workspace: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("NO_COLOR", "1")
        .output()
        .expect("running castoff")
}

/// What the release of one configuration shows: the `plan` line, the shipped binary's
/// output, whether it keeps its symbol table, the SBOM's itoa component, the manifest's record.
struct Shipped {
    plan_line: String,
    output: String,
    has_symbols: bool,
    sbom_has_itoa: bool,
    recorded: castoff_plan::BuildSettings,
}

fn ship(name: &str, settings: &str) -> Shipped {
    let scratch = scratch(&format!("build-settings-{name}"));
    let workspace = workspace(&scratch, settings);
    let plan = castoff(&workspace, &["plan"]);
    assert_success(&plan, "plan");
    let plan_line = String::from_utf8(plan.stdout)
        .unwrap()
        .lines()
        .find(|line| line.trim_start().starts_with("build "))
        .expect("a build line in the plan")
        .trim()
        .to_owned();
    let dist_dir = scratch.join("dist");
    let dist = castoff(
        &workspace,
        &["dist", "--dist-dir", dist_dir.to_str().unwrap()],
    );
    assert_success(&dist, "dist");

    // The binary as users get it: out of the archive dist shipped.
    let unpacked = scratch.join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    let archive = dist_dir.join("archives/finder-1.4.0-x86_64-unknown-linux-gnu.tar.gz");
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert_success(&tar, "tar -x");
    let binary = unpacked.join("finder-1.4.0-x86_64-unknown-linux-gnu/finder");
    let run = Command::new(&binary).output().unwrap();
    assert_success(&run, "the shipped finder");
    let bytes = fs::read(&binary).unwrap();
    let elf = object::read::File::parse(bytes.as_slice()).unwrap();
    let has_symbols = object::Object::section_by_name(&elf, ".symtab").is_some();

    let sbom: serde_json::Value = serde_json::from_slice(
        &fs::read(dist_dir.join("sbom/finder-1.4.0-x86_64-unknown-linux-gnu.cdx.json")).unwrap(),
    )
    .unwrap();
    let sbom_has_itoa = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|component| component["name"] == "itoa");

    let manifest: Manifest =
        serde_json::from_slice(&fs::read(dist_dir.join("manifest.json")).unwrap()).unwrap();
    let build = &manifest.apps[0].builds[0];
    assert_eq!(build.target, "x86_64-unknown-linux-gnu");
    Shipped {
        plan_line,
        output: String::from_utf8(run.stdout).unwrap(),
        has_symbols,
        sbom_has_itoa,
        recorded: build.settings.clone(),
    }
}

#[test]
fn the_feature_and_the_profile_reach_binary_sbom_and_manifest() {
    let with = ship("on", "features = [\"fancy\"]\nprofile = \"dist\"\n");
    assert_eq!(
        with.plan_line,
        "build         cargo, profile dist, features fancy"
    );
    assert_eq!(with.output, "finder 1.4.0\nfancy: 42\n");
    assert!(
        !with.has_symbols,
        "the dist profile strips the symbol table"
    );
    assert!(
        with.sbom_has_itoa,
        "the feature's optional dependency is in the SBOM"
    );
    assert_eq!(with.recorded.profile, "dist");
    assert_eq!(with.recorded.features, ["fancy"]);

    let without = ship("off", "");
    assert_eq!(without.plan_line, "build         cargo, profile release");
    assert_eq!(without.output, "finder 1.4.0\n");
    assert!(
        without.has_symbols,
        "the release profile keeps the symbol table"
    );
    assert!(
        !without.sbom_has_itoa,
        "no feature, no optional dependency in the SBOM"
    );
    assert_eq!(without.recorded, castoff_plan::BuildSettings::default());
}

/// A profile nothing defines stops `dist` before any build, as bad input (exit 2), with
/// dist/ untouched.
#[test]
fn an_undefined_profile_stops_dist_before_any_build() {
    let scratch = scratch("build-settings-undefined-profile");
    let workspace = workspace(&scratch, "profile = \"release-lto\"\n");
    let dist_dir = scratch.join("dist");
    let output = castoff(
        &workspace,
        &["dist", "--dist-dir", dist_dir.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.replace(workspace.to_str().unwrap(), "$WORKSPACE"),
        "error: the Cargo profile `release-lto` (`profile` in [workspace|package.metadata.castoff]) is not defined in $WORKSPACE/Cargo.toml\n\
         hint: add it to that file, e.g. `[profile.release-lto]` with `inherits = \"release\"`, or set `profile` to a profile that exists\n"
    );
    assert!(!dist_dir.exists());
    assert!(!workspace.join("target").exists(), "nothing was built");
    // `plan` sees it too: every configuration mistake stops there.
    let plan = castoff(&workspace, &["plan"]);
    assert_eq!(plan.status.code(), Some(2), "{}", output_text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stderr)
            .starts_with("error: the Cargo profile `release-lto` (`profile` in"),
        "{}",
        output_text(&plan)
    );
}

/// A target whose standard library is not installed stops `dist` before any build, naming
/// the target and the command that installs it; targets that can build are not built either.
#[test]
fn a_missing_standard_library_is_named_before_any_build() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .expect("rustup runs (castoff's tests run with a rustup toolchain)");
    let installed = String::from_utf8(installed.stdout).unwrap();
    let missing = castoff_plan::Target::all()
        .iter()
        .map(|target| target.triple)
        .find(|triple| triple.contains("linux") && !installed.lines().any(|line| line == *triple))
        .expect("this test needs a Linux target whose standard library is not installed");
    let scratch = scratch("build-settings-missing-std");
    let workspace = workspace(&scratch, "");
    let manifest = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "targets = [\"x86_64-unknown-linux-gnu\"]",
        &format!("targets = [\"x86_64-unknown-linux-gnu\", \"{missing}\"]"),
    );
    fs::write(&manifest, text).unwrap();
    let dist_dir = scratch.join("dist");
    let output = castoff(
        &workspace,
        &[
            "dist",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--target",
            missing,
            "--dist-dir",
            dist_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "error: the Rust standard library for {missing} is not installed"
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!("hint: rustup target add {missing}\n")),
        "{stderr}"
    );
    assert!(!dist_dir.exists());
    assert!(!workspace.join("target").exists(), "nothing was built");
}
