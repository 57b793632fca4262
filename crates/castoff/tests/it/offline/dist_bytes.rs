//! A dist's bytes survive changes to castoff's code: each fixture, given synthesized binaries
//! for every target it configures (`dist --no-build`, so no compiler is involved), must give
//! exactly the `manifest.json` and `SHA256SUMS` checked in under `snapshots/dist-bytes/`, which
//! castoff 53421e2 wrote before the crate's renovation (#19), except for the manifest's
//! `builds` records (issue 15: how each target's binaries came, and their digests), the one
//! intended change since, and the files of `deploy/` listed in `SHA256SUMS` with each image's
//! Dockerfiles (issue 20). `SHA256SUMS` covers every file of the dist, so equal sums mean
//! equal bytes.
//!
//! `UPDATE_EXPECT=1` rewrites the expected files when a change of output is intended;
//! `CASTOFF_BYTES_BIN=<castoff binary>` runs another build of castoff instead (how the
//! expected files were made).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use castoff_test_support::binaries::{
    CPU_TYPE_ARM64, EM_AARCH64, EM_X86_64, IMAGE_FILE_MACHINE_AMD64, macho_executable,
    pe_executable, static_elf,
};
use castoff_test_support::workspace::{assert_success, copy_tree, fixture_dir};

/// A fixture copy with a synthesized binary for each `(target, bin)`.
fn planted(fixture: &str, binaries: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "castoff-dist-bytes-{}-{fixture}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    copy_tree(&fixture_dir(fixture), &dir);
    for (target, bin) in binaries {
        let bytes = if target.contains("apple") {
            macho_executable(CPU_TYPE_ARM64, 11, 0)
        } else if target.contains("windows") {
            pe_executable(IMAGE_FILE_MACHINE_AMD64)
        } else if target.starts_with("aarch64") {
            static_elf(EM_AARCH64, &format!("{bin} {target}"))
        } else {
            static_elf(EM_X86_64, &format!("{bin} {target}"))
        };
        let name = if target.contains("windows") {
            format!("{bin}.exe")
        } else {
            (*bin).to_owned()
        };
        let release = dir.join("target").join(target).join("release");
        fs::create_dir_all(&release).unwrap();
        let path = release.join(name);
        fs::write(&path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

fn check(fixture: &str, binaries: &[(&str, &str)]) {
    let workspace = planted(fixture, binaries);
    let dist = workspace.join("dist");
    let program = std::env::var_os("CASTOFF_BYTES_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_castoff")),
        PathBuf::from,
    );
    let mut command = Command::new(program);
    command
        .arg("dist")
        .arg("--no-build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CARGO_TARGET_DIR")
        // Outside any git repository: no revision annotation.
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir());
    let mut targets: Vec<&str> = binaries.iter().map(|(target, _)| *target).collect();
    targets.dedup();
    for target in targets {
        command.arg("--target").arg(target);
    }
    let output = command.output().unwrap();
    assert_success(&output, &format!("dist of {fixture}"));
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/dist-bytes")
        .join(fixture);
    for file in ["manifest.json", "SHA256SUMS"] {
        let actual = fs::read_to_string(dist.join(file)).unwrap();
        let expected_path = expected_dir.join(file);
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            fs::create_dir_all(&expected_dir).unwrap();
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap();
        assert!(
            actual == expected,
            "{fixture}: {file} differs from {}:\n{actual}",
            expected_path.display()
        );
    }
    fs::remove_dir_all(&workspace).unwrap();
}

#[test]
fn single_cli_on_four_platforms() {
    check(
        "single-cli",
        &[
            ("x86_64-unknown-linux-gnu", "greeter"),
            ("aarch64-unknown-linux-musl", "greeter"),
            ("aarch64-apple-darwin", "greeter"),
            ("x86_64-pc-windows-msvc", "greeter"),
        ],
    );
}

#[test]
fn two_apps() {
    // One of its two targets: both are linux/amd64, which one image index cannot hold.
    check(
        "two-apps",
        &[
            ("x86_64-unknown-linux-gnu", "tk"),
            ("x86_64-unknown-linux-gnu", "tk-core"),
        ],
    );
}

#[test]
fn http_service_images_on_two_platforms() {
    check(
        "http-service",
        &[
            ("x86_64-unknown-linux-gnu", "pinger"),
            ("aarch64-unknown-linux-gnu", "pinger"),
        ],
    );
}
