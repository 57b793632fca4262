//! The crates channel's `dist` half (issue 21): `dist` puts each planned crate's `.crate` in
//! `dist/crates/`, byte-identical to what a plain `cargo package` makes, lists it in the
//! manifest (with the digest the registry's index will show as `cksum`) and in `SHA256SUMS`,
//! and leaves out the members the plan leaves out; all offline.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use castoff_plan::Manifest;
use castoff_test_support::workspace::{assert_success, copy_fixture, output_text};
use expect_test::expect;

use super::dist::scratch;

fn castoff(args: &[&str], workspace: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("running castoff")
}

#[test]
fn dist_crates_are_what_cargo_package_makes() {
    let scratch = scratch("crates-dist");
    let workspace = scratch.join("workspace");
    copy_fixture("crates-channel", &workspace);
    let dist_dir = workspace.join("dist");
    let output = castoff(
        &["dist", "--dist-dir", dist_dir.to_str().unwrap()],
        &workspace,
    );
    assert_success(&output, "dist");

    let mut listed: Vec<String> = fs::read_dir(dist_dir.join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "cc-cli-0.1.0.crate",
            "cc-core-0.1.0.crate",
            "cc-util-0.1.0.crate"
        ]
    );

    // A plain `cargo package` of the same crates, by the test, into a target directory of
    // its own: the same bytes.
    let plain = scratch.join("plain-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let packaged = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "package",
            "--no-verify",
            "--allow-dirty",
            "--offline",
            "-p",
            "cc-core",
            "-p",
            "cc-util",
            "-p",
            "cc-cli",
            "--target-dir",
        ])
        .arg(&plain)
        .output()
        .unwrap();
    assert_success(&packaged, "cargo package");

    let manifest =
        Manifest::from_json(&fs::read_to_string(dist_dir.join("manifest.json")).unwrap()).unwrap();
    let sums = fs::read_to_string(dist_dir.join("SHA256SUMS")).unwrap();
    for name in &listed {
        let ours = fs::read(dist_dir.join("crates").join(name)).unwrap();
        let cargos = fs::read(plain.join("package").join(name)).unwrap();
        assert!(ours == cargos, "{name} differs from cargo package's");
        let sha = castoff_archive::digest::hex(&castoff_archive::digest::sha256(&ours));
        assert!(
            sums.contains(&format!("{sha}  crates/{name}\n")),
            "{name} not in SHA256SUMS:\n{sums}"
        );
        let entry = manifest
            .crates
            .iter()
            .find(|k| k.path.as_deref() == Some(&format!("crates/{name}")))
            .unwrap_or_else(|| panic!("{name} not in the manifest"));
        assert_eq!(entry.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(entry.size, Some(ours.len() as u64));
    }
    let order: Vec<(&str, &str, Vec<String>)> = manifest
        .crates
        .iter()
        .map(|k| (k.id.as_str(), k.registry.as_str(), k.after.clone()))
        .collect();
    expect![[r#"
        [
            (
                "crate/cc-core",
                "crates-io",
                [],
            ),
            (
                "crate/cc-util",
                "crates-io",
                [
                    "crate-publish/cc-core",
                ],
            ),
            (
                "crate/cc-cli",
                "crates-io",
                [
                    "crate-publish/cc-core",
                    "crate-publish/cc-util",
                ],
            ),
        ]
    "#]]
    .assert_debug_eq(&order);

    // Unchanged inputs: the cache reuses the dist; a changed source packs a new crate.
    let again = castoff(
        &["dist", "--dist-dir", dist_dir.to_str().unwrap()],
        &workspace,
    );
    assert_success(&again, "dist again");
    assert!(
        output_text(&again).contains("cached"),
        "{}",
        output_text(&again)
    );
    let before = fs::read(dist_dir.join("crates/cc-core-0.1.0.crate")).unwrap();
    fs::write(
        workspace.join("crates/cc-core/src/lib.rs"),
        "//! cc-core, changed.\n\n/// The greeting for `name`.\npub fn greeting(name: &str) -> String {\n    format!(\"hi, {name}\")\n}\n",
    )
    .unwrap();
    let changed = castoff(
        &["dist", "--dist-dir", dist_dir.to_str().unwrap()],
        &workspace,
    );
    assert_success(&changed, "dist after a change");
    assert_ne!(
        before,
        fs::read(dist_dir.join("crates/cc-core-0.1.0.crate")).unwrap()
    );
}

/// A crate Cargo refuses to package is a dist error that shows Cargo's reason.
#[test]
fn a_crate_cargo_cannot_package_is_a_dist_error() {
    let scratch = scratch("crates-dist-refused");
    let workspace = scratch.join("workspace");
    copy_fixture("crates-channel", &workspace);
    // A dependency on a member without a version: Cargo cannot publish it.
    let manifest = workspace.join("crates/cc-util/Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace(
            "cc-core.workspace = true",
            "cc-core = { path = \"../cc-core\" }",
        ),
    )
    .unwrap();
    let output = castoff(&["dist"], &workspace);
    assert!(!output.status.success());
    let text = output_text(&output);
    assert!(
        text.contains("`cargo package` failed for the crates cc-core, cc-util, cc-cli")
            && text.contains("cc-core"),
        "{text}"
    );
}

/// `dist --merge`: the partial dists of two CI runners merge into one dist whose crates are
/// the ones Cargo packs (as in each partial), recorded and summed like the rest.
#[test]
fn merged_dists_hold_the_crates() {
    let scratch = scratch("crates-merge");
    let workspace = scratch.join("workspace");
    copy_fixture("crates-channel", &workspace);
    let manifest_path = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path).unwrap().replace(
        "targets = [\"x86_64-unknown-linux-gnu\"]",
        "targets = [\"x86_64-unknown-linux-gnu\", \"aarch64-unknown-linux-gnu\"]",
    );
    fs::write(&manifest_path, text).unwrap();
    let targets = [
        (
            "x86_64-unknown-linux-gnu",
            castoff_test_support::binaries::EM_X86_64,
        ),
        (
            "aarch64-unknown-linux-gnu",
            castoff_test_support::binaries::EM_AARCH64,
        ),
    ];
    let mut parts = Vec::new();
    for (triple, machine) in targets {
        castoff_test_support::binaries::write_static_elf(
            &workspace.join("target").join(triple).join("release"),
            "cc-greet",
            machine,
            "hello\n",
        );
        let part = scratch.join(format!("partial-{triple}"));
        let output = castoff(
            &[
                "dist",
                "--no-build",
                "--target",
                triple,
                "--dist-dir",
                part.to_str().unwrap(),
            ],
            &workspace,
        );
        assert_success(&output, "dist --no-build --target");
        parts.push(part);
    }
    let merged = scratch.join("merged");
    let output = castoff(
        &[
            "dist",
            "--dist-dir",
            merged.to_str().unwrap(),
            "--merge",
            parts[0].to_str().unwrap(),
            parts[1].to_str().unwrap(),
        ],
        &workspace,
    );
    assert_success(&output, "dist --merge");
    let manifest =
        Manifest::from_json(&fs::read_to_string(merged.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.crates.len(), 3);
    let sums = fs::read_to_string(merged.join("SHA256SUMS")).unwrap();
    for krate in &manifest.crates {
        let path = krate.path.as_deref().expect("a merged crate has its file");
        let bytes = fs::read(merged.join(path)).unwrap();
        assert_eq!(bytes, fs::read(parts[0].join(path)).unwrap(), "{path}");
        assert!(sums.contains(&format!("  {path}\n")), "{path} not summed");
    }
}

/// A workspace of libraries alone (no released app) releases its crates: dist builds for no
/// target and lists the crates in its summary.
#[test]
fn a_release_of_crates_alone() {
    let scratch = scratch("crates-alone");
    let workspace = scratch.join("workspace");
    copy_fixture("crates-channel", &workspace);
    let cli = workspace.join("crates/cc-cli/Cargo.toml");
    let text = fs::read_to_string(&cli)
        .unwrap()
        .replace("[package.metadata.castoff]\nbins = [\"cc-greet\"]\n", "");
    fs::write(&cli, text).unwrap();
    let output = castoff(&["dist", "--json"], &workspace);
    assert_success(&output, "dist");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows: Vec<(&str, &str)> = summary["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["channel"].as_str().unwrap(),
                row["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("crates", "cc-core"),
            ("crates", "cc-util"),
            ("crates", "cc-cli")
        ]
    );
    // The plan's header counts the crates and their steps.
    let plan = castoff(&["plan"], &workspace);
    assert_success(&plan, "plan");
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.starts_with(
            "release plan: 0 app(s), 0 target(s), 0 artifact(s), 3 crate(s), 3 publish step(s)"
        ),
        "{plan}"
    );
}
