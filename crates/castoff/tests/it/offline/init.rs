//! `castoff init` on a fresh workspace (a small bin crate written into a scratch directory):
//! it adds the xtask crate, the alias, the metadata table and the release workflow; then
//! `cargo xtask dist` there, with no other edit, builds the wheel, the npm packages and the
//! image; a second `init` changes nothing, and a file the user changed is kept without
//! `--force`.

use std::fs;
use std::path::Path;
use std::process::Command;

use castoff_plan::Manifest;
use castoff_test_support::workspace::{output_text as text, repository_root};

/// A bin crate as `cargo new` leaves it, plus the fields a registry wants.
fn fresh_workspace(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"hello-tool\"\nversion = \"1.2.0\"\nedition = \"2021\"\n\
         description = \"Says hello\"\nlicense = \"MIT\"\n\
         repository = \"https://github.com/Acme/hello-tool\"\n\n\
         [profile.release]\nstrip = \"debuginfo\"\n",
    )
    .unwrap();
    fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
    // The versions this repository is tested with, so the xtask builds offline.
    fs::copy(repository_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

fn init(dir: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("init")
        .arg("--castoff-path")
        .arg(repository_root().join("crates/castoff"))
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(String, String)> {
    [
        "Cargo.toml",
        ".cargo/config.toml",
        "xtask/Cargo.toml",
        "xtask/src/main.rs",
        ".github/workflows/release.yml",
    ]
    .iter()
    .map(|file| {
        (
            (*file).to_owned(),
            fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}")),
        )
    })
    .collect()
}

#[test]
fn init_then_xtask_dist_builds_all_three_channels() {
    let root = repository_root();
    // Outside this repository: inside it, Cargo would take the scratch crate for a member of
    // castoff's own workspace.
    let dir = std::env::temp_dir().join(format!("castoff-init-{}/hello-tool", std::process::id()));
    fresh_workspace(&dir);

    let first = init(&dir, &[]);
    for line in [
        "+ xtask/Cargo.toml\n",
        "+ xtask/src/main.rs\n",
        "~ Cargo.toml: workspace member `xtask`\n",
        "+ .cargo/config.toml\n",
        "~ Cargo.toml: [package.metadata.castoff] for `hello-tool`\n",
        "    + python = { name = \"hello-tool\" }\n",
        "    + npm = { name = \"hello-tool\" }\n",
        "    + oci = { repository = \"ghcr.io/acme/hello-tool\" }\n",
        "+ .github/workflows/release.yml\n",
        "+ .gitignore\n",
    ] {
        assert!(first.contains(line), "`{line}` missing from:\n{first}");
    }
    let after_first = snapshot(&dir);

    // Idempotent.
    let second = init(&dir, &[]);
    assert!(
        second.ends_with("nothing to do: the workspace is set up\n"),
        "{second}"
    );
    assert!(!second.contains("+ "), "{second}");
    assert_eq!(snapshot(&dir), after_first, "a second init changed files");

    // The user's change is kept, and replaced only with --force.
    let main_rs = dir.join("xtask/src/main.rs");
    let original = fs::read_to_string(&main_rs).unwrap();
    fs::write(&main_rs, format!("{original}// mine\n")).unwrap();
    let kept = init(&dir, &[]);
    assert!(
        kept.contains("! xtask/src/main.rs differs from what castoff writes: kept"),
        "{kept}"
    );
    assert!(fs::read_to_string(&main_rs).unwrap().ends_with("// mine\n"));
    let forced = init(&dir, &["--force"]);
    assert!(
        forced.contains("~ xtask/src/main.rs (overwritten)"),
        "{forced}"
    );
    assert_eq!(fs::read_to_string(&main_rs).unwrap(), original);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/dist\n"
    );

    // --castoff-path is written relative to the xtask crate (committable), and another
    // castoff (here: the released version) replaces castoff's line alone, without --force.
    let xtask_manifest = dir.join("xtask/Cargo.toml");
    let with_path = fs::read_to_string(&xtask_manifest).unwrap();
    let path_line = with_path
        .lines()
        .find(|line| line.starts_with("castoff = { path = \"../"))
        .unwrap_or_else(|| panic!("no relative castoff path in:\n{with_path}"))
        .to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("init")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let released = String::from_utf8(output.stdout).unwrap();
    assert!(
        released.contains(&format!(
            "~ xtask/Cargo.toml: castoff's dependency (was `{path_line}`)\n    + castoff = \"{}\"\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{released}"
    );
    let back = init(&dir, &[]);
    assert!(
        back.contains("~ xtask/Cargo.toml: castoff's dependency"),
        "{back}"
    );
    assert_eq!(fs::read_to_string(&xtask_manifest).unwrap(), with_path);

    // `cargo xtask dist` in the new workspace, exactly as the user runs it.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["xtask", "dist"])
        .current_dir(&dir)
        .env("CARGO_NET_OFFLINE", "true")
        // Shared between runs, so castoff is compiled once, not per run.
        .env(
            "CARGO_TARGET_DIR",
            root.join("target/castoff-test-scratch/init-target"),
        )
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo xtask dist: {}",
        text(&output)
    );
    let manifest =
        Manifest::from_json(&fs::read_to_string(dir.join("dist/manifest.json")).unwrap()).unwrap();
    for kind in [
        "wheel",
        "npm-platform",
        "npm-launcher",
        "oci-image",
        "oci-index",
    ] {
        let artifact = manifest
            .artifacts
            .iter()
            .find(|a| a.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} in {manifest:?}"));
        let path = dir.join("dist").join(artifact.path.as_ref().unwrap());
        assert!(path.exists(), "{}", path.display());
    }
    assert!(
        fs::read_dir(dir.join("dist/python")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("hello_tool-1.2.0-")),
        "the wheel is named after the package"
    );
}

/// A release workflow castoff did not write (no `Written by `castoff init`` line) is the
/// project's: kept, even with `--force`, and the summary says castoff's is not installed and
/// how to put it beside; `--workflow-path` does. `/dist` joins an existing `.gitignore` once.
#[test]
fn init_never_replaces_the_project_s_own_workflow() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-own-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let own = dir.join(".github/workflows/release.yml");
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    let theirs = "name: release\non: push\njobs: {}\n";
    fs::write(&own, theirs).unwrap();
    fs::write(dir.join(".gitignore"), "/target").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let summary = init(&dir, extra);
        assert!(
            summary.contains(
                "! .github/workflows/release.yml is not castoff's (it lacks the `Written by `castoff init`` line): kept; castoff's release workflow is not installed: write it beside yours with `castoff init --workflow-path .github/workflows/castoff-release.yml`"
            ),
            "{summary}"
        );
        assert!(
            summary.ends_with(
                "not set up completely: castoff did not install .github/workflows/release.yml (see above)\n"
            ),
            "{summary}"
        );
        assert_eq!(fs::read_to_string(&own).unwrap(), theirs);
    }
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\n/dist\n"
    );
    let beside = init(
        &dir,
        &["--workflow-path", ".github/workflows/castoff-release.yml"],
    );
    assert!(
        beside.contains("+ .github/workflows/castoff-release.yml\n"),
        "{beside}"
    );
    assert!(
        beside.ends_with("next: `cargo xtask plan`, then `cargo xtask dist`\n"),
        "{beside}"
    );
    assert_eq!(fs::read_to_string(&own).unwrap(), theirs);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\n/dist\n"
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}
