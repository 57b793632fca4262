//! `castoff plan` on every fixture workspace and on this repository, in every format
//! (snapshots): the JSON is a valid manifest whose edges point at real steps, the DOT renders
//! with Graphviz (installed by the harness), the matrix is what `strategy.matrix` takes.

use std::path::Path;
use std::process::Command;

use castoff_plan::Manifest;
use castoff_test_support::workspace::repository_root;
use expect_test::{ExpectFile, expect_file};

use crate::offline::plan::{fixture_manifest, plan};

/// Checks all four formats of one workspace against its snapshots, and what each format
/// promises beyond its text: JSON is a valid manifest whose edges point at real steps, DOT
/// renders with Graphviz, the matrix is what `strategy.matrix` takes.
fn check_workspace(
    manifest: &Path,
    text: ExpectFile,
    json: ExpectFile,
    dot: ExpectFile,
    matrix: ExpectFile,
) {
    text.assert_eq(&plan(manifest, "text"));

    let json_text = plan(manifest, "json");
    json.assert_eq(&json_text);
    let parsed = Manifest::from_json(&json_text).expect("plan JSON is a valid manifest");
    assert_eq!(parsed.to_json(), json_text, "the manifest round-trips");
    let step_ids: Vec<&str> = parsed.steps.iter().map(|step| step.id.as_str()).collect();
    let artifact_ids: Vec<&str> = parsed.artifacts.iter().map(|a| a.id.as_str()).collect();
    for step in &parsed.steps {
        assert!(artifact_ids.contains(&step.artifact.as_str()), "{step:?}");
        for after in &step.after {
            assert!(
                step_ids.contains(&after.as_str()),
                "{step:?} waits for unknown {after}"
            );
        }
    }

    let dot_text = plan(manifest, "dot");
    dot.assert_eq(&dot_text);
    assert_renders_with_graphviz(&dot_text);

    let matrix_text = plan(manifest, "github-matrix");
    matrix.assert_eq(&matrix_text);
    let matrix_json: serde_json::Value = serde_json::from_str(&matrix_text).unwrap();
    let include = matrix_json["include"]
        .as_array()
        .expect("matrix has `include`");
    assert!(!include.is_empty());
    for entry in include {
        for key in ["target", "runner", "packages"] {
            assert!(entry[key].is_string(), "matrix entry lacks {key}: {entry}");
        }
    }
}

fn assert_renders_with_graphviz(dot_text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` is required (`cargo xtask test` installs the graphviz package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot_text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dot rejected the graph: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let svg = String::from_utf8_lossy(&output.stdout);
    assert!(svg.contains("<svg"), "dot produced no SVG");
}

#[test]
fn single_cli() {
    check_workspace(
        &fixture_manifest("single-cli"),
        expect_file!["../../snapshots/single-cli.plan.txt"],
        expect_file!["../../snapshots/single-cli.plan.json"],
        expect_file!["../../snapshots/single-cli.plan.dot"],
        expect_file!["../../snapshots/single-cli.matrix.json"],
    );
}

#[test]
fn two_apps() {
    check_workspace(
        &fixture_manifest("two-apps"),
        expect_file!["../../snapshots/two-apps.plan.txt"],
        expect_file!["../../snapshots/two-apps.plan.json"],
        expect_file!["../../snapshots/two-apps.plan.dot"],
        expect_file!["../../snapshots/two-apps.matrix.json"],
    );
}

#[test]
fn http_service() {
    check_workspace(
        &fixture_manifest("http-service"),
        expect_file!["../../snapshots/http-service.plan.txt"],
        expect_file!["../../snapshots/http-service.plan.json"],
        expect_file!["../../snapshots/http-service.plan.dot"],
        expect_file!["../../snapshots/http-service.matrix.json"],
    );
}

/// castoff releases itself: the plan of this repository.
#[test]
fn this_repository() {
    check_workspace(
        &repository_root().join("Cargo.toml"),
        expect_file!["../../snapshots/castoff.plan.txt"],
        expect_file!["../../snapshots/castoff.plan.json"],
        expect_file!["../../snapshots/castoff.plan.dot"],
        expect_file!["../../snapshots/castoff.matrix.json"],
    );
}
