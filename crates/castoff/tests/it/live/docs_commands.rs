//! Every command in the ```sh blocks of README.md, docs/cli.md, docs/getting-started.md and
//! docs/troubleshooting.md is exercised: each parses with castoff's own clap definitions; the
//! read-only ones (`plan` in every format, `completions`, `man`, `--help`) are run here on this
//! repository and must succeed; the ones that build, upload or edit a workspace are mirrored by
//! the integration test named in [`MIRRORED`] (which runs them on a fixture or scratch copy).

use std::fs;
use std::process::Command;

use castoff_test_support::workspace::repository_root;
use clap::Parser as _;

/// Command prefixes (after `castoff`) that are not run here, and the test that runs them.
const MIRRORED: &[(&str, &str)] = &[
    (
        "dist",
        "live::cli_ux::dist_summary_table_json_and_plain_progress, offline::init::init_then_xtask_dist_builds_all_three_channels, live::getting_started",
    ),
    (
        "publish",
        "live::cli_ux::publish_summary_table_and_json (publish), live::publish (--dry-run), live::getting_started",
    ),
    (
        "verify",
        "live::verify::a_good_release_installs_with_every_client, live::verify::broken_artifacts_are_caught_by_name",
    ),
    (
        "yank",
        "live::yank::yank_moves_tags_back_deprecates_removes_and_reruns_finish (--dry-run, --yes), offline::yank",
    ),
    (
        "init",
        "offline::init::init_then_xtask_dist_builds_all_three_channels, live::getting_started",
    ),
];

/// Subcommands safe to run on this repository: they only print.
const RUN_HERE: &[&str] = &["plan", "completions", "man", "--help"];

/// `(file, command line)` of every castoff command in a ```sh block, as castoff arguments
/// (`cargo xtask X` is `castoff X`), without comments and redirections.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for file in [
        "README.md",
        "docs/cli.md",
        "docs/getting-started.md",
        "docs/troubleshooting.md",
    ] {
        let text = fs::read_to_string(repository_root().join(file)).unwrap();
        let mut in_sh = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_sh = !in_sh && trimmed == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            let command = trimmed
                .split(" #")
                .next()
                .unwrap()
                .split(" > ")
                .next()
                .unwrap();
            let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            let args = match words.as_slice() {
                [first, rest @ ..] if first == "castoff" => rest.to_vec(),
                [cargo, xtask, rest @ ..] if cargo == "cargo" && xtask == "xtask" => rest.to_vec(),
                _ => continue,
            };
            found.push((file.to_owned(), args));
        }
    }
    found
}

#[test]
fn every_documented_command_parses_and_runs_or_is_mirrored() {
    let commands = documented_commands();
    assert!(commands.len() >= 10, "found only {commands:?}");
    for (file, args) in &commands {
        let shown = format!("{file}: castoff {}", args.join(" "));
        let first = args.first().map(String::as_str).unwrap_or_default();
        if first == "--help" {
            assert!(castoff::cli::Cli::try_parse_from(["castoff", "--help"]).is_err());
        } else if let Err(error) = castoff::cli::Cli::try_parse_from(
            std::iter::once("castoff".to_owned()).chain(args.iter().cloned()),
        ) {
            panic!("{shown} does not parse: {error}");
        }
        if RUN_HERE.contains(&first) {
            let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
                .args(args)
                .current_dir(repository_root())
                .output()
                .unwrap();
            assert!(
                output.status.success() && !output.stdout.is_empty(),
                "{shown} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        } else {
            assert!(
                MIRRORED.iter().any(|(prefix, _)| *prefix == first),
                "{shown} is neither run here nor mirrored by a test: add it to MIRRORED with the test that runs it"
            );
        }
    }
}
