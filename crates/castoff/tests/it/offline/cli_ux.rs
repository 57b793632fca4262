//! The command line as a user meets it (issue 10), where no tool is needed: error messages
//! (snapshots, each with a `hint:` and the documented exit code), `--help` documenting the
//! exit codes, and a spinner on a pseudo-terminal (`script -qfec`). The `dist` and `publish`
//! summaries and progress, checked with check-jsonschema and the harness's registries, are in
//! `live::cli_ux`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::workspace::{fixture_dir, output_text as text, repository_root};
use expect_test::{ExpectFile, expect_file};

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = repository_root()
        .join("target/castoff-test-scratch/cli-ux")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn single_cli() -> PathBuf {
    fixture_dir("single-cli").join("Cargo.toml")
}

pub(crate) fn castoff(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .envs(envs.iter().copied())
        .output()
        .expect("running castoff")
}

/// Runs a failing command and checks its exit code, that stderr is `error: …` with a final
/// `hint:`, and the message against its snapshot (paths replaced by `$ROOT` / `$SCRATCH`).
fn check_error(
    args: &[&str],
    envs: &[(&str, &str)],
    code: i32,
    scratch: &Path,
    snapshot: ExpectFile,
) {
    let output = castoff(args, envs);
    assert_eq!(output.status.code(), Some(code), "{}", text(&output));
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&output)
    );
    let stderr = String::from_utf8(output.stderr)
        .unwrap()
        .replace(scratch.to_str().unwrap(), "$SCRATCH")
        .replace(repository_root().to_str().unwrap(), "$ROOT");
    // Cargo's own output (a build runs before some of these errors) is not castoff's message.
    let message = &stderr[stderr.find("error: ").expect("an `error: ` line")..];
    let last = message.trim_end().lines().last().unwrap();
    assert!(last.starts_with("hint: "), "ends with a hint: {message}");
    snapshot.assert_eq(message);
}

#[test]
fn help_documents_the_exit_codes() {
    let output = castoff(&["--help"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    let help = String::from_utf8(output.stdout).unwrap();
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  failure",
        "  2  usage or configuration error",
        "  3  publish conflict",
        "--json",
    ] {
        assert!(help.contains(line), "`{line}` missing from --help:\n{help}");
    }
}

#[test]
fn usage_error_exits_2() {
    let output = castoff(&["plan", "--format", "nope"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("possible values"), "{stderr}");
}

#[test]
fn merge_of_a_folder_without_manifest() {
    let dir = scratch("merge-missing");
    let missing = dir.join("dist-x86_64-unknown-linux-gnu");
    check_error(
        &[
            "dist",
            "--manifest-path",
            single_cli().to_str().unwrap(),
            "--merge",
            missing.to_str().unwrap(),
        ],
        &[],
        2,
        &dir,
        expect_file!["../../snapshots/errors/merge-missing-manifest.stderr"],
    );
}

#[test]
fn merge_with_target() {
    let dir = scratch("merge-target");
    check_error(
        &[
            "dist",
            "--manifest-path",
            single_cli().to_str().unwrap(),
            "--merge",
            dir.to_str().unwrap(),
            "--target",
            "x86_64-unknown-linux-gnu",
        ],
        &[],
        2,
        &dir,
        expect_file!["../../snapshots/errors/merge-with-target.stderr"],
    );
}

#[test]
fn bad_source_date_epoch() {
    let dir = scratch("bad-epoch");
    check_error(
        &[
            "dist",
            "--manifest-path",
            single_cli().to_str().unwrap(),
            "--dist-dir",
            dir.join("dist").to_str().unwrap(),
        ],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
        2,
        &dir,
        expect_file!["../../snapshots/errors/bad-source-date-epoch.stderr"],
    );
}

#[test]
fn publish_without_dist() {
    let dir = scratch("publish-without-dist");
    check_error(
        &["publish", "--dist-dir", dir.join("dist").to_str().unwrap()],
        &[],
        1,
        &dir,
        expect_file!["../../snapshots/errors/publish-without-dist.stderr"],
    );
}

/// An error without a hint of its own (an I/O error) still ends in the generic hint.
#[test]
fn unwritable_dist_dir_gets_the_generic_hint() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    fs::write(&file, "not a directory").unwrap();
    check_error(
        &[
            "dist",
            "--manifest-path",
            single_cli().to_str().unwrap(),
            "--dist-dir",
            file.join("dist").to_str().unwrap(),
        ],
        &[],
        1,
        &dir,
        expect_file!["../../snapshots/errors/unwritable-dist-dir.stderr"],
    );
}

/// On a terminal `dist` draws a spinner: run under `script`, which gives castoff a
/// pseudo-terminal and records what it drew.
#[test]
fn dist_on_a_terminal_draws_a_spinner() {
    let dir = scratch("pty");
    let typescript = dir.join("typescript");
    let command = format!(
        "'{}' dist --manifest-path '{}' --dist-dir '{}' >/dev/null",
        env!("CARGO_BIN_EXE_castoff"),
        single_cli().display(),
        dir.join("dist").display()
    );
    let output = Command::new("script")
        .arg("-qfec")
        .arg(&command)
        .arg(&typescript)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CASTOFF_PROGRESS")
        .output()
        .expect("running script (util-linux)");
    assert!(output.status.success(), "{}", text(&output));
    let drawn = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    assert!(
        drawn.contains("\u{1b}[2K"),
        "indicatif redraws its line: {drawn:?}"
    );
    assert!(
        drawn.contains("] building wheel/greeter/x86_64-unknown-linux-gnu"),
        "the spinner shows the step and its elapsed time: {drawn:?}"
    );
    // The spinner is down while cargo writes to the terminal itself.
    let compiling = drawn
        .lines()
        .find(|line| line.contains("compiling greeter for x86_64-unknown-linux-gnu"))
        .expect("the compiling line");
    assert!(
        !compiling.contains('\u{1b}'),
        "no spinner while cargo runs: {compiling:?}"
    );
    // The finished steps stay readable above the spinner.
    assert!(drawn.contains("building oci-index/greeter"), "{drawn:?}");
}
