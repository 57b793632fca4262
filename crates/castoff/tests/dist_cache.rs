//! The `dist` cache (cache.rs): a second run with unchanged inputs reuses the verified
//! previous dist/ (same files, nothing rewritten, "cached" reported), while a changed binary,
//! configuration or README, or a tampered dist/, makes it build again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{assert_success, files, repository_root};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The single-cli fixture with a prebuilt static binary at `target/<triple>/release/greeter`.
fn workspace(name: &str) -> PathBuf {
    let scratch = repository_root()
        .join("target/castoff-test-scratch/dist-cache")
        .join(name);
    let _ = fs::remove_dir_all(&scratch);
    let workspace = scratch.join("workspace");
    let fixture = repository_root().join("tests/fixtures/single-cli");
    fs::create_dir_all(workspace.join("src")).unwrap();
    for file in [
        "README.md",
        "LICENSE",
        "Cargo.lock",
        "Cargo.toml",
        "src/main.rs",
    ] {
        fs::copy(fixture.join(file), workspace.join(file)).unwrap();
    }
    write_binary(&workspace, "hello from greeter");
    workspace
}

fn write_binary(workspace: &Path, text: &str) {
    let dir = workspace.join("target").join(TRIPLE).join("release");
    write_static_elf(&dir, "greeter", EM_X86_64, text);
}

fn dist(workspace: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--no-build", "--target", TRIPLE, "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running castoff dist");
    assert_success(&output, "dist");
    output
}

fn cached(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("cached: inputs unchanged")
}

fn manifest_modified(workspace: &Path) -> std::time::SystemTime {
    fs::metadata(workspace.join("dist/manifest.json"))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn unchanged_inputs_reuse_the_verified_dist() {
    let workspace = workspace("unchanged");
    let first = dist(&workspace);
    assert!(!cached(&first), "a first run cannot be cached");
    let before = files(&workspace.join("dist"));
    let written = manifest_modified(&workspace);

    let second = dist(&workspace);
    assert!(
        cached(&second),
        "second run rebuilt: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(files(&workspace.join("dist")), before);
    assert_eq!(
        manifest_modified(&workspace),
        written,
        "a cached run rewrote dist/"
    );
}

#[test]
fn a_changed_binary_or_configuration_rebuilds() {
    let workspace = workspace("changed");
    dist(&workspace);
    let first = files(&workspace.join("dist"));

    write_binary(&workspace, "a different greeting");
    let after_binary = dist(&workspace);
    assert!(!cached(&after_binary), "a changed binary reused the cache");
    let second = files(&workspace.join("dist"));
    assert_ne!(first["manifest.json"], second["manifest.json"]);
    assert!(
        cached(&dist(&workspace)),
        "the new inputs are cached in turn"
    );

    let cargo_toml = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&cargo_toml).unwrap();
    fs::write(
        &cargo_toml,
        text.replace("\"greeters\"", "\"other-greeters\""),
    )
    .unwrap();
    let after_config = dist(&workspace);
    assert!(
        !cached(&after_config),
        "a changed configuration reused the cache"
    );
    assert_ne!(
        second["manifest.json"],
        files(&workspace.join("dist"))["manifest.json"]
    );

    // A file a builder reads (the README becomes the wheel's long description) counts too.
    assert!(cached(&dist(&workspace)));
    fs::write(
        workspace.join("README.md"),
        "# greeter\n\nAnother description.\n",
    )
    .unwrap();
    assert!(
        !cached(&dist(&workspace)),
        "a changed README reused the cache"
    );
}

#[test]
fn a_tampered_dist_is_rebuilt_not_reused() {
    let workspace = workspace("tampered");
    dist(&workspace);
    let before = files(&workspace.join("dist"));
    let wheel = before
        .keys()
        .find(|path| path.ends_with(".whl"))
        .unwrap()
        .clone();
    fs::write(workspace.join("dist").join(&wheel), b"not a wheel").unwrap();

    let again = dist(&workspace);
    assert!(!cached(&again), "a tampered dist/ was reused");
    assert_eq!(files(&workspace.join("dist")), before);
}
