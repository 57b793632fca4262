//! `cargo xtask`: castoff's own commands on this workspace, plus the repository chores
//! (`test` runs the whole suite against real registries).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod fuzz;
mod harness;
mod probes;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some("test") => harness::main(&args[2..]),
        Some("fuzz") => fuzz::main(&args[2..]),
        Some("bench") => bench::main(&args[2..]),
        Some("probes") => probes::main(&args[2..]),
        // Everything else is castoff itself, run on this workspace: the same code as the
        // standalone `castoff` binary.
        _ => castoff::cli::main_from(args),
    }
}
