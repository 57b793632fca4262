//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs each `cargo fuzz` target of `fuzz/`
//! (default: all of them) for a fixed budget, starting from its committed seed corpus
//! (`fuzz/corpus/<target>/`, read only; new inputs go to `target/fuzz-corpus/<target>/`).
//! Installs cargo-fuzz (`cargo install --locked cargo-fuzz`) when it is missing and needs a
//! nightly toolchain (libFuzzer's sanitizer instrumentation). A crash stops the run, naming
//! the input under `fuzz/artifacts/<target>/`: copy it to `fuzz/regressions/<target>/`, where
//! the normal suite (`crates/castoff/tests/it/offline/fuzz_seeds.rs`) replays it, and fix the
//! parser.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Seconds each target runs by default.
const DEFAULT_SECONDS: u64 = 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The targets: one file per target in `fuzz/fuzz_targets/`.
fn all_targets(fuzz: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    entry
                        .file_name()
                        .to_str()
                        .and_then(|name| name.strip_suffix(".rs"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn has_cargo_fuzz() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("nightly"))
}

pub(crate) fn main(args: &[std::ffi::OsString]) -> ExitCode {
    let root = root();
    let fuzz = root.join("fuzz");
    let mut seconds = DEFAULT_SECONDS;
    let mut chosen = Vec::new();
    let mut args = args.iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            match args.next().and_then(|value| value.parse().ok()) {
                Some(value) => seconds = value,
                None => {
                    eprintln!("error: --seconds takes a number of seconds");
                    return ExitCode::from(2);
                }
            }
        } else {
            chosen.push(arg);
        }
    }
    let targets = all_targets(&fuzz);
    for name in &chosen {
        if !targets.contains(name) {
            eprintln!(
                "error: no fuzz target `{name}`\nhint: targets: {}",
                targets.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let chosen = if chosen.is_empty() { targets } else { chosen };
    if !has_nightly() {
        eprintln!(
            "error: cargo fuzz needs a nightly toolchain\nhint: `rustup toolchain install nightly`; the seed corpora also run in the normal suite (crates/castoff/tests/it/offline/fuzz_seeds.rs)"
        );
        return ExitCode::FAILURE;
    }
    if !has_cargo_fuzz() {
        eprintln!("installing cargo-fuzz (cargo install --locked cargo-fuzz)");
        let installed = Command::new("cargo")
            .args(["install", "--locked", "cargo-fuzz"])
            .status();
        if !installed.is_ok_and(|status| status.success()) {
            eprintln!("error: could not install cargo-fuzz");
            return ExitCode::FAILURE;
        }
    }
    let mut failed = Vec::new();
    for name in &chosen {
        let started = Instant::now();
        let scratch = root.join("target/fuzz-corpus").join(name);
        if let Err(error) = std::fs::create_dir_all(&scratch) {
            eprintln!("error: {}: {error}", scratch.display());
            return ExitCode::FAILURE;
        }
        eprintln!("fuzz {name}: {seconds} s");
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", name])
            .arg(&scratch)
            .arg(fuzz.join("corpus").join(name))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ])
            .current_dir(&fuzz)
            .status();
        let ok = status.is_ok_and(|status| status.success());
        eprintln!(
            "fuzz {name}: {} in {:.0} s",
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        eprintln!(
            "fuzz: {} target(s), {seconds} s each: no crash",
            chosen.len()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: fuzz target(s) failed: {}\nhint: the crashing input is under fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ (the normal suite replays it) and fix the parser",
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}
