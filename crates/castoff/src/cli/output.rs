//! Writing results to stdout: a closed pipe (`castoff plan | head`) ends the output quietly.

use std::io::Write as _;

pub(super) fn print_stdout(text: &str) {
    print_bytes(text.as_bytes());
}

pub(super) fn print_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`castoff plan | head`) is not an error worth a panic.
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}
