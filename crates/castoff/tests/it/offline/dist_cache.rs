//! The `dist` cache (cache.rs): a second run with unchanged inputs reuses the verified
//! previous dist/ (same files, nothing rewritten, "cached" reported), while a changed binary,
//! configuration or README, or a tampered dist/, makes it build again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{assert_success, copy_fixture, files, repository_root};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The single-cli fixture with a prebuilt static binary at `target/<triple>/release/greeter`.
fn workspace(name: &str) -> PathBuf {
    let scratch = repository_root()
        .join("target/castoff-test-scratch/dist-cache")
        .join(name);
    let _ = fs::remove_dir_all(&scratch);
    let workspace = scratch.join("workspace");
    copy_fixture("single-cli", &workspace);
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
    // The summary table's outcome says which: `built`, then `reused`.
    let table = |output: &Output| String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        table(&first).contains("  built  ") && !table(&first).contains("  reused  "),
        "{}",
        table(&first)
    );
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
    assert!(
        table(&second).contains("  reused  ") && !table(&second).contains("  built  "),
        "{}",
        table(&second)
    );
}

/// `publish` writes `dist/publish-report.json` beside the artifacts it published. That is not
/// a changed dist: the next `dist` with the same inputs is cached and keeps the report (it
/// rebuilt everything and dropped the report before).
#[test]
fn a_publish_report_keeps_the_cache_and_is_kept() {
    let workspace = workspace("report");
    dist(&workspace);
    let report = workspace.join("dist/publish-report.json");
    fs::write(&report, "{\"schema_version\": 1, \"steps\": []}\n").unwrap();
    let again = dist(&workspace);
    assert!(
        cached(&again),
        "a publish report made the next dist rebuild: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        report.is_file(),
        "the cached dist dropped the publish report"
    );
    // A changed input still rebuilds, and the report of the old dist goes with it.
    write_binary(&workspace, "a different greeting");
    assert!(!cached(&dist(&workspace)));
    assert!(
        !report.exists(),
        "a new dist kept the old dist's publish report"
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

/// The cache compares files by identity, not by reading them: an edit that keeps the size and
/// puts the old modification time back is still noticed (the change time moves on any write),
/// and so is a file added to dist/: castoff refuses to replace a dist/ holding a file it did
/// not write (exit 2, the file kept), and reuses the dist/ again once the file is gone.
#[test]
fn a_same_size_edit_with_the_old_mtime_is_noticed() {
    let workspace = workspace("same-size-edit");
    dist(&workspace);
    let dist_dir = workspace.join("dist");
    let before = files(&dist_dir);
    let wheel_name = before
        .keys()
        .find(|path| path.ends_with(".whl"))
        .unwrap()
        .clone();
    let wheel = dist_dir.join(&wheel_name);
    let modified = fs::metadata(&wheel).unwrap().modified().unwrap();
    let mut bytes = fs::read(&wheel).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&wheel, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&wheel)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(fs::metadata(&wheel).unwrap().modified().unwrap(), modified);
    let again = dist(&workspace);
    assert!(!cached(&again), "an edited wheel was reused");
    assert_eq!(files(&dist_dir), before);

    assert!(cached(&dist(&workspace)), "an untouched dist/ is reused");
    fs::write(dist_dir.join("python/extra.txt"), b"added by hand").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--no-build", "--target", TRIPLE, "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a dist/ with an extra file was replaced"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("holds files castoff did not write: python/extra.txt")
    );
    assert_eq!(
        fs::read(dist_dir.join("python/extra.txt")).unwrap(),
        b"added by hand"
    );
    fs::remove_file(dist_dir.join("python/extra.txt")).unwrap();
    assert!(cached(&dist(&workspace)), "the dist/ is castoff's again");
    assert_eq!(files(&dist_dir), before);
}

/// The one compression pass gives the same bytes on 1 thread as on many: every artifact of a
/// binary several blocks long is identical with `CASTOFF_COMPRESSION_THREADS=1` and `=3`.
#[test]
fn artifacts_are_identical_with_one_and_many_compression_threads() {
    let workspace = workspace("threads");
    // Several 128 KiB blocks of compressible but varied bytes after the ELF (loaders ignore
    // what follows the segments).
    let binary = workspace
        .join("target")
        .join(TRIPLE)
        .join("release/greeter");
    let mut bytes = fs::read(&binary).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for line in 0..120_000u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(format!("{line} {}\n", state % 1000).as_bytes());
    }
    fs::write(&binary, &bytes).unwrap();

    let run = |threads: &str| {
        let _ = fs::remove_dir_all(workspace.join("dist"));
        let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["dist", "--no-build", "--target", TRIPLE, "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("CASTOFF_COMPRESSION_THREADS", threads)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("running castoff dist");
        assert_success(&output, &format!("dist on {threads} thread(s)"));
        files(&workspace.join("dist"))
    };
    let one = run("1");
    let three = run("3");
    assert!(bytes.len() > 6 * 128 * 1024, "{} bytes", bytes.len());
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        three.keys().collect::<Vec<_>>()
    );
    for (path, contents) in &one {
        assert!(
            contents == &three[path],
            "{path} differs between 1 and 3 threads"
        );
    }

    // A cold run (no dist/ to reuse) with a nonsensical thread count stops with a hint.
    let _ = fs::remove_dir_all(workspace.join("dist"));
    let refused = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--no-build", "--target", TRIPLE, "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("CASTOFF_COMPRESSION_THREADS", "0")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running castoff dist");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("CASTOFF_COMPRESSION_THREADS=`0`") && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// `oci.files` by content (issue 23's newcomer trial): a hidden file of a copied tree, which
/// the workspace listing leaves out, rebuilds when it changes; a link added to the tree is
/// refused even though nothing else changed (the cache never hides a refusal), and before
/// anything is built.
#[test]
fn a_changed_hidden_file_in_oci_files_rebuilds_and_a_link_is_refused() {
    let workspace = workspace("oci-files");
    let site = workspace.join("site");
    fs::create_dir_all(site.join(".well-known")).unwrap();
    fs::write(site.join("index.html"), "<h1>greeter</h1>\n").unwrap();
    fs::write(
        site.join(".well-known/security.txt"),
        "Contact: mailto:a@example.com\n",
    )
    .unwrap();
    let cargo_toml = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&cargo_toml).unwrap();
    let configured = text.replace(
        "oci = { repository = \"ghcr.io/acme/greeter\",",
        "oci = { repository = \"ghcr.io/acme/greeter\", files = [{ src = \"site\", dst = \"/srv/www\" }],",
    );
    assert_ne!(text, configured, "the fixture's oci line moved");
    fs::write(&cargo_toml, configured).unwrap();
    dist(&workspace);
    let first = files(&workspace.join("dist"));
    assert!(cached(&dist(&workspace)), "unchanged inputs rebuilt");

    fs::write(
        site.join(".well-known/security.txt"),
        "Contact: mailto:b@example.com\n",
    )
    .unwrap();
    assert!(
        !cached(&dist(&workspace)),
        "a changed hidden file of `oci.files` reused the cache"
    );
    let second = files(&workspace.join("dist"));
    assert_ne!(first["manifest.json"], second["manifest.json"]);

    std::os::unix::fs::symlink("/etc/passwd", site.join("pw")).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--target", TRIPLE, "--manifest-path"])
        .arg(&cargo_toml)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("holds the symbolic link"), "{stderr}");
    // Refused before the build: cargo never ran, and the previous dist/ is untouched.
    assert!(!stderr.contains("Compiling"), "{stderr}");
    assert_eq!(files(&workspace.join("dist")), second);
}
