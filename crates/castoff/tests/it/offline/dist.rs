//! `castoff dist` end to end, as a user runs it: every channel's artifacts land in dist/ with a
//! manifest and checksums that stock tools verify, twice byte-identically, and a failed run
//! leaves the previous dist/ exactly as it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::Manifest;
use castoff_test_support::workspace::{
    assert_success, copy_fixture, files, fixture_dir, repository_root,
};
use expect_test::expect;

pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = repository_root()
        .join("target/castoff-test-scratch/dist")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the single-cli fixture in `scratch/workspace`, its Cargo.toml passed through
/// `edit`.
pub(super) fn single_cli_workspace(scratch: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let workspace = scratch.join("workspace");
    copy_fixture("single-cli", &workspace);
    let cargo_toml = edit(fs::read_to_string(workspace.join("Cargo.toml")).unwrap());
    fs::write(workspace.join("Cargo.toml"), cargo_toml).unwrap();
    workspace
}

fn dist(manifest: &Path, dist_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--manifest-path"])
        .arg(manifest)
        .arg("--dist-dir")
        .arg(dist_dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("running castoff dist")
}

#[test]
fn single_cli_dist_is_complete_verified_and_reproducible() {
    let manifest = fixture_dir("single-cli").join("Cargo.toml");
    let scratch = scratch("single-cli");
    let (first, second) = (scratch.join("first"), scratch.join("second"));
    assert_success(&dist(&manifest, &first), "first dist");
    assert_success(&dist(&manifest, &second), "second dist");

    let first_files = files(&first);
    let second_files = files(&second);
    assert_eq!(
        first_files.keys().collect::<Vec<_>>(),
        second_files.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &first_files {
        assert!(
            bytes == &second_files[path],
            "{path} differs between two dist runs"
        );
    }

    // Only the blobs' names depend on the binary's bytes; the rest of the layout is fixed.
    let listing: String = first_files
        .keys()
        .filter(|path| !path.contains("/blobs/sha256/"))
        .map(|path| format!("{path}\n"))
        .collect();
    expect![[r#"
        SHA256SUMS
        archives/greeter-0.3.1-x86_64-unknown-linux-gnu.tar.gz
        deploy/greeter/Dockerfile
        deploy/greeter/Dockerfile.dockerignore
        install.sh
        manifest.json
        npm/acme-greeter-0.3.1.tgz
        npm/acme-greeter-linux-x64-gnu-0.3.1.tgz
        oci/greeter-linux-amd64.tar
        oci/greeter/index.json
        oci/greeter/oci-layout
        python/greeter-0.3.1-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.musllinux_1_1_x86_64.whl
        python/greeter-0.3.1.tar.gz
        sbom/greeter-0.3.1-x86_64-unknown-linux-gnu.cdx.json
    "#]]
    .assert_eq(&listing);

    // The manifest describes every file it names, by size and digest.
    let manifest_json = String::from_utf8(first_files["manifest.json"].clone()).unwrap();
    let parsed = Manifest::from_json(&manifest_json).unwrap();
    for artifact in &parsed.artifacts {
        match artifact.kind.as_str() {
            "binary" => assert!(artifact.sha256.is_some(), "{artifact:?}"),
            "oci-index" => {
                assert!(
                    artifact
                        .digest
                        .as_deref()
                        .is_some_and(|d| d.starts_with("sha256:"))
                );
                assert_eq!(artifact.path.as_deref(), Some("oci/greeter"));
            }
            _ => {
                let path = artifact.path.as_ref().expect("built artifacts have a path");
                let bytes = &first_files[path];
                assert_eq!(artifact.size, Some(bytes.len() as u64), "{path}");
                assert_eq!(
                    artifact.sha256.as_deref(),
                    Some(
                        castoff_archive::digest::hex(&castoff_archive::digest::sha256(bytes))
                            .as_str()
                    ),
                    "{path}"
                );
            }
        }
    }
    let npm = parsed
        .artifacts
        .iter()
        .find(|a| a.kind == "npm-launcher")
        .unwrap();
    assert!(
        npm.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha512-")),
        "{npm:?}"
    );

    // `sha256sum -c` (GNU coreutils) accepts SHA256SUMS as written.
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&first)
        .output()
        .expect("sha256sum (coreutils) is required");
    assert_success(&check, "sha256sum --check");
    let checked = String::from_utf8_lossy(&check.stdout);
    // Seven artifacts (the sdist among them), the install script, the Dockerfile and its
    // ignore file (deploy files are listed too).
    assert_eq!(checked.matches(": OK").count(), 10, "{checked}");
}

/// A dist that fails part-way (here: the image of a dynamically linked binary on `scratch`,
/// after the wheel and npm packages were already built) changes nothing in dist/.
#[test]
fn failed_dist_leaves_the_previous_dist_untouched() {
    use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
    let scratch = scratch("failing");
    let workspace = single_cli_workspace(&scratch, |toml| toml);
    // The previous dist: a complete one, from a planted static binary.
    write_static_elf(
        &workspace.join("target/x86_64-unknown-linux-gnu/release"),
        "greeter",
        EM_X86_64,
        "hello from greeter",
    );
    let dist_dir = scratch.join("dist");
    let dist_no_build = || {
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["dist", "--no-build", "--target", "x86_64-unknown-linux-gnu"])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--dist-dir")
            .arg(&dist_dir)
            .env("SOURCE_DATE_EPOCH", "1600000000")
            .output()
            .unwrap()
    };
    assert_success(&dist_no_build(), "the previous dist");
    let before = files(&dist_dir);
    // This run takes a dynamically linked binary (`--no-build` of one built some other way),
    // which the wheel and npm packages take and the image on `scratch` refuses.
    fs::copy(
        "/bin/true",
        workspace.join("target/x86_64-unknown-linux-gnu/release/greeter"),
    )
    .unwrap();
    let output = dist_no_build();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: could not build the image of greeter"),
        "{stderr}"
    );
    assert!(stderr.contains("is dynamically linked"), "{stderr}");
    assert!(
        stderr.contains("hint: `crt-static = true` is set"),
        "{stderr}"
    );

    assert_eq!(files(&dist_dir), before, "dist/ changed after a failed run");
    let leftovers: Vec<String> = fs::read_dir(&scratch)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("castoff-staging"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directories left behind: {leftovers:?}"
    );
}

#[test]
fn no_build_names_the_missing_binary() {
    let workspace = single_cli_workspace(&scratch("no-build"), |toml| toml);
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--no-build", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: binary `greeter` for x86_64-unknown-linux-gnu is missing at "),
        "{stderr}"
    );
    // The command dist would have run, with the crt-static flag the fixture configures.
    let command = format!(
        "hint: build it with `CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile release --manifest-path {} --target x86_64-unknown-linux-gnu --bin greeter`, or run `dist` without --no-build",
        workspace.join("Cargo.toml").display()
    );
    assert!(stderr.contains(&command), "{stderr}");
    assert!(!workspace.join("dist").exists());
}

/// `oci.layer-compression = "zstd"` through the command line: the image's layers are
/// `tar+zstd` (castoff-oci's `live::real_tools` runs such an image), the rest of dist/ is as usual.
#[test]
fn zstd_layers_from_the_configuration() {
    use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
    let workspace = single_cli_workspace(&scratch("zstd"), |toml| {
        toml.replace(
            "oci = { repository = \"ghcr.io/acme/greeter\",",
            "oci = { layer-compression = \"zstd\", repository = \"ghcr.io/acme/greeter\",",
        )
    });
    assert!(
        fs::read_to_string(workspace.join("Cargo.toml"))
            .unwrap()
            .contains("layer-compression")
    );
    write_static_elf(
        &workspace.join("target/x86_64-unknown-linux-gnu/release"),
        "greeter",
        EM_X86_64,
        "hello from greeter",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--no-build", "--target", "x86_64-unknown-linux-gnu"])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert_success(&output, "dist with zstd layers");
    let layout = workspace.join("dist/oci/greeter");
    let blob = |digest: &str| -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let image_index = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let manifest = blob(image_index["manifests"][0]["digest"].as_str().unwrap());
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["mediaType"].as_str().unwrap())
        .collect();
    assert!(!types.is_empty());
    assert!(
        types
            .iter()
            .all(|media_type| *media_type == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{types:?}"
    );
    assert!(workspace.join("dist/python").is_dir() && workspace.join("dist/npm").is_dir());
}

/// Runs git in `dir` with a fixed identity; panics with its output when it fails.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=castoff",
            "-c",
            "user.email=castoff@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("running git");
    assert_success(&output, &format!("git {}", args.join(" ")));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `org.opencontainers.image.revision` annotation of the image index in `dist_dir`.
fn image_revision(dist_dir: &Path) -> Option<String> {
    let layout = dist_dir.join("oci/greeter");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let image_index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap();
    image_index["annotations"]["org.opencontainers.image.revision"]
        .as_str()
        .map(str::to_owned)
}

/// The single-cli fixture committed to a fresh git repository in `scratch/workspace`, with an
/// untracked note and a planted x86_64 binary (`dist --no-build`); returns it and the commit.
pub(crate) fn committed_single_cli(scratch: &Path) -> (PathBuf, String) {
    use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
    let workspace = single_cli_workspace(scratch, |toml| toml);
    git(&workspace, &["init", "--quiet"]);
    git(&workspace, &["add", "--all"]);
    git(&workspace, &["commit", "--quiet", "--message", "release"]);
    let commit = git(&workspace, &["rev-parse", "HEAD"]).trim().to_owned();
    // Not part of any commit: an untracked note, and the binary under target/.
    fs::write(workspace.join("NOTES.txt"), "to do\n").unwrap();
    write_static_elf(
        &workspace.join("target/x86_64-unknown-linux-gnu/release"),
        "greeter",
        EM_X86_64,
        "hello from greeter",
    );
    (workspace, commit)
}

/// Revision honesty on a scratch git repository: a clean tree gives the plain commit (an
/// untracked file and the untracked dist/ and target/ do not count); a modified tracked file,
/// staged or not, gives `<commit>-dirty` and the summary's "built from a dirty tree" line; with
/// `--require-clean` the run refuses, naming the file, and writes nothing.
#[test]
fn a_dirty_tree_is_named_and_require_clean_refuses_it() {
    let scratch = scratch("dirty-tree");
    let (workspace, commit) = committed_single_cli(&scratch);
    let dist_dir = workspace.join("dist");
    let dist_run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["dist", "--no-build", "--target", "x86_64-unknown-linux-gnu"])
            .args(extra)
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    };

    let clean = dist_run(&["--require-clean"]);
    assert_success(&clean, "dist of a clean tree");
    assert_eq!(image_revision(&dist_dir), Some(commit.clone()));
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(!stdout.contains("built from a dirty tree"), "{stdout}");

    // A second dist over the first one's dist/ (untracked) is still clean.
    assert_success(&dist_run(&["--require-clean"]), "dist again");

    let main_rs = workspace.join("src/main.rs");
    fs::write(
        &main_rs,
        format!("{}// edited\n", fs::read_to_string(&main_rs).unwrap()),
    )
    .unwrap();
    for staged in [false, true] {
        if staged {
            git(&workspace, &["add", "src/main.rs"]);
        }
        let dirty = dist_run(&[]);
        assert_success(&dirty, "dist of a dirty tree");
        assert_eq!(image_revision(&dist_dir), Some(format!("{commit}-dirty")));
        let stdout = String::from_utf8_lossy(&dirty.stdout);
        assert!(
            stdout.contains("built from a dirty tree: 1 changed file (src/main.rs); the images' revision ends in `-dirty`"),
            "{stdout}"
        );
    }
    let json = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args([
            "--json",
            "dist",
            "--no-build",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert_success(&json, "dist --json of a dirty tree");
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(summary["dirty_files"], serde_json::json!(["src/main.rs"]));

    // --require-clean refuses before anything is written, into a dist dir that does not exist.
    let fresh = scratch.join("fresh-dist");
    let refused = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args([
            "dist",
            "--require-clean",
            "--no-build",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--dist-dir")
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    expect![[r#"
        error: the working tree has uncommitted changes to 1 tracked file (`src/main.rs`), and `--require-clean` builds only what commit <commit> holds
        hint: commit the changes (`git commit -a`) or set them aside (`git stash`), then run `dist` again; without `--require-clean`, dist builds the tree as it is and labels the images' revision `<commit>-dirty`
    "#]]
    .assert_eq(&stderr.replace(&commit, "<commit>"));
    assert!(!fresh.exists(), "a refused dist wrote {}", fresh.display());
}
