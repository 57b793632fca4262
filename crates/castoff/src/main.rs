//! The standalone `castoff` binary.

fn main() -> std::process::ExitCode {
    castoff::cli::main_from(std::env::args_os())
}
