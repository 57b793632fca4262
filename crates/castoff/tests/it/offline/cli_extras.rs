//! The pictures and generated files of the CLI (issue 10), where no tool is needed: a missing
//! Graphviz is a hinted error naming `dot`. The plan's SVG, the completions under `bash -n`,
//! the man page under groff and castoff's own archive are checked in `live::cli_extras`.

use std::fs;
use std::process::{Command, Output};

use castoff_test_support::workspace::{output_text as text, repository_root};
use expect_test::expect_file;

pub(crate) fn castoff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .current_dir(repository_root())
        .output()
        .expect("running castoff")
}

#[test]
fn plan_svg_without_graphviz_names_dot_and_how_to_install_it() {
    let empty = repository_root().join("target/castoff-test-scratch/cli-extras/empty-path");
    fs::create_dir_all(&empty).unwrap();
    let cargo = std::env::var("CARGO").expect("cargo test sets CARGO");
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["plan", "--format", "svg"])
        .current_dir(repository_root())
        .env("PATH", &empty)
        .env("CARGO", cargo)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8(output.stderr).unwrap();
    expect_file!["../../snapshots/errors/plan-svg-without-dot.stderr"].assert_eq(&stderr);
}
