//! `cargo xtask test --offline`: the inner loop. No installs, no servers, no fmt or clippy:
//! `cargo test` of the unit tests, the doc tests and the `offline` module of every crate's
//! test binary (`tests/it`), with `--skip live::`. It then says what it left out, so nothing
//! is skipped silently: the `live` tests (counted from `--list`), fmt and clippy, all of which
//! `cargo xtask test` runs.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use castoff_test_support::vars;

use super::install::which;
use super::{Paths, names_a_package, without_xtask_cargo_env};

/// The module every test binary keeps its harness-bound tests in; `--skip` takes a substring
/// of the test's path.
const LIVE: &str = "live::";

/// What the offline tests run beyond cargo and coreutils, and the Debian package of each. The
/// harness does not install these for the offline loop; a missing one stops it before the
/// build, naming the package.
const BASE_TOOLS: &[(&str, &str)] = &[
    // castoff-npm's unit test of the launcher's platform logic runs under `node --test`.
    ("node", "nodejs"),
    // offline::cli_ux draws the spinner on `script`'s pseudo-terminal.
    ("script", "bsdutils"),
    // offline::dist_safety reads each merge's peak RSS from GNU time.
    ("/usr/bin/time", "time"),
    ("bash", "bash"),
];

pub(crate) fn run(paths: &Paths, test_args: &[OsString]) -> ExitCode {
    println!("==> test --offline: unit tests, doc tests and the `offline` tests of every crate");
    println!("    (no installs, no servers; the CASTOFF_TEST_* variables are removed)");
    let missing: Vec<String> = BASE_TOOLS
        .iter()
        .filter(|(command, _)| !available(command))
        .map(|(command, package)| format!("{command} (Debian package {package})"))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "error: the offline tests need {}; install it, or run `cargo xtask test`",
            missing.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let (cargo_args, binary_args) = split_at_separator(test_args);
    let clock = Instant::now();
    let tested = test(paths, cargo_args, binary_args);
    let seconds = clock.elapsed().as_secs_f64();
    let left_out = count_live(paths, cargo_args, binary_args);

    println!("\n==> summary");
    let verdict = match &tested {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("FAILED: {error:#}"),
    };
    println!("    {:<14} {seconds:>7.1} s  {verdict}", "offline tests");
    let live = match left_out {
        Ok(count) => format!("the {count} tests of the `live` modules (servers, installed tools)"),
        Err(error) => format!("the tests of the `live` modules (not counted: {error:#})"),
    };
    println!("    not run: {live}, fmt and clippy; `cargo xtask test` runs them all");
    if tested.is_ok() {
        println!("cargo xtask test --offline: passed");
        ExitCode::SUCCESS
    } else {
        println!("cargo xtask test --offline: failed");
        ExitCode::FAILURE
    }
}

/// `cargo test --no-fail-fast [--workspace] ARGS -- --skip live:: TEST-ARGS`.
fn test(paths: &Paths, cargo_args: &[OsString], binary_args: &[OsString]) -> Result<()> {
    let mut command = cargo_test(paths, cargo_args);
    command
        .arg("--no-fail-fast")
        .args(cargo_args)
        .args(["--", "--skip", LIVE])
        .args(binary_args);
    let status = command.status().context("running cargo test")?;
    if !status.success() {
        bail!("cargo test exited with {status}");
    }
    Ok(())
}

/// How many of the tests the same selection lists are in a `live` module.
fn count_live(paths: &Paths, cargo_args: &[OsString], binary_args: &[OsString]) -> Result<usize> {
    let mut command = cargo_test(paths, cargo_args);
    command
        .arg("--quiet")
        .args(cargo_args)
        .args(["--", "--list"])
        .args(binary_args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let output = command.output().context("running cargo test -- --list")?;
    if !output.status.success() {
        bail!("cargo test -- --list exited with {}", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .filter(|name| name.contains(LIVE))
        .count())
}

/// `cargo test` in the workspace (all of it unless ARGS name a package), without the
/// harness's variables: a test in an `offline` module that needs them fails instead of
/// quietly using servers started by `--serve`.
fn cargo_test(paths: &Paths, cargo_args: &[OsString]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("test").current_dir(&paths.workspace);
    without_xtask_cargo_env(&mut command);
    if !names_a_package(cargo_args) {
        command.arg("--workspace");
    }
    for name in vars::ALL {
        command.env_remove(name);
    }
    command
}

/// ARGS before the first `--` go to cargo, the rest to the test binaries.
fn split_at_separator(args: &[OsString]) -> (&[OsString], &[OsString]) {
    match args.iter().position(|arg| arg == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[]),
    }
}

fn available(command: &str) -> bool {
    if command.contains('/') {
        Path::new(command).is_file()
    } else {
        which(command).is_some()
    }
}
