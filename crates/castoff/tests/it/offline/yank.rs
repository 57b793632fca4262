//! `castoff yank` before any registry is asked: without a terminal and without --yes it is
//! refused, naming the flag; a version Cargo would not write is a usage error. (The yank
//! itself, the previous-version choice and the plan run in live::yank and the unit tests of
//! `castoff::yank`.)

use super::cli_ux::{castoff, scratch, single_cli};
use castoff_test_support::workspace::output_text as text;

#[test]
fn without_a_terminal_and_without_yes_yank_is_refused_naming_the_flag() {
    let dist = scratch("yank-refused").join("dist");
    let manifest = single_cli();
    let output = castoff(
        &[
            "yank",
            "0.3.1",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--dist-dir",
            dist.to_str().unwrap(),
            // Never asked: the refusal comes first.
            "--npm-registry",
            "http://127.0.0.1:9/",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: `castoff yank 0.3.1`"),
        "{stderr}"
    );
    assert!(stderr.contains("no terminal"), "{stderr}");
    assert!(stderr.contains("hint: pass --yes"), "{stderr}");
    assert!(!dist.exists(), "nothing is written");
}

#[test]
fn a_version_cargo_would_not_write_is_a_usage_error() {
    let output = castoff(&["yank", "1.2", "--yes"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`1.2` is not a version"), "{stderr}");
}
