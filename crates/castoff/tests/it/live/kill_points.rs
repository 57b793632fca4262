//! Kill at every point: a release (wheel, npm platform + launcher, image + index + tags) is
//! published to pypiserver, Verdaccio and a distribution registry while castoff is aborted
//! (the `CASTOFF_TEST_KILL_AT` test hook: no cleanup, like SIGKILL) before and after each step
//! and in the middle of each upload body; `publish` is then re-run until it succeeds. Every
//! run resumes what the killed one before it left; at the end the registries serve exactly
//! dist/'s bytes, nothing duplicated, and pip / npm / skopeo install the release. The crates
//! channel's kill points run against kellnr with the crates-channel fixture.

use std::fs;
use std::os::unix::process::ExitStatusExt;

use super::hardening::{
    Endpoints, assert_installable, assert_served_exactly, json, publish_to, sequence_workspace,
    text,
};
use castoff_plan::Manifest;
use castoff_test_support::TestEnv;

/// Every OCI request body is capped at this (`CASTOFF_OCI_MAX_BODY`), so the image's binary
/// layer goes up in chunks (POST, PATCH…, PUT) and the mid-upload kill lands inside a PATCH.
const MAX_BODY: u64 = 128 * 1024;

fn publish(
    env: &TestEnv,
    workspace: &std::path::Path,
    name: &str,
    kill_at: Option<&str>,
) -> std::process::Output {
    let max_body = MAX_BODY.to_string();
    publish_to(
        env,
        workspace,
        name,
        &Endpoints::direct(env),
        kill_at,
        &[("CASTOFF_OCI_MAX_BODY", &max_body)],
    )
}

#[test]
fn a_publish_killed_at_any_point_completes_on_a_rerun_with_exactly_dists_bytes() {
    let env = TestEnv::get();
    let started = std::time::Instant::now();
    let name = format!("k{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let manifest =
        Manifest::from_json(&fs::read_to_string(workspace.join("dist/manifest.json")).unwrap())
            .unwrap();
    // The binary layer is larger than one request body: the image is pushed in chunks.
    let largest_blob = fs::read_dir(workspace.join("dist/oci/badin/blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    assert!(largest_blob > 2 * MAX_BODY, "{largest_blob} bytes");
    // Every kill point, in the order one worker (`--jobs 1`) reaches them: before each step,
    // in the middle of its upload body, and after it. Each run resumes from what the previous
    // killed run left behind (nothing, a partial upload, or a finished but unrecorded step),
    // so every kill point is also a re-run after the one before it.
    let mut points: Vec<String> = Vec::new();
    for step in &manifest.steps {
        let size = manifest
            .artifacts
            .iter()
            .find(|a| a.id == step.artifact)
            .and_then(|a| a.size)
            .unwrap_or(2);
        points.push(format!("{}:before", step.id));
        points.push(format!("{}:mid-upload:{}", step.id, (size / 2).max(1)));
        points.push(format!("{}:after", step.id));
    }
    for point in &points {
        let killed = publish(&env, &workspace, &name, Some(point));
        assert_eq!(
            killed.status.signal(),
            Some(6),
            "{point}: castoff was not aborted at the kill point\n{}",
            text(&killed)
        );
    }
    let mut reruns = 0;
    loop {
        reruns += 1;
        let rerun = publish(&env, &workspace, &name, None);
        if rerun.status.success() {
            break;
        }
        assert!(reruns < 3, "re-runs keep failing\n{}", text(&rerun));
    }
    // A last run finds everything in place.
    let last = publish(&env, &workspace, &name, None);
    assert!(last.status.success(), "{}", text(&last));
    let report: serde_json::Value =
        json(&fs::read(workspace.join("dist/publish-report.json")).unwrap());
    for step in report["steps"].as_array().unwrap() {
        assert_eq!(step["outcome"], "skipped", "{step}");
    }
    assert_served_exactly(&env, &workspace, &name, "after every kill point");
    assert_installable(&env, &workspace, &name);
    env.figure(format!(
        "kill points exercised: {} ({} steps x before/mid-upload/after), re-runs to completion: {reruns}, {:.0}s",
        points.len(),
        manifest.steps.len(),
        started.elapsed().as_secs_f64()
    ));
}

/// A panic inside a publish worker (the test hook's `panic` phase stands in for a bug or an
/// unforeseen server answer) fails that step like an error: the run ends with exit code 1,
/// not a panic's 101 or a hang, `publish-report.json` records the step as failed, and a
/// re-run completes the release.
#[test]
fn a_panicking_publish_worker_fails_its_step_and_writes_the_report() {
    let env = TestEnv::get();
    let name = format!("p{}", std::process::id());
    let workspace = sequence_workspace(&env, &name);
    let manifest =
        Manifest::from_json(&fs::read_to_string(workspace.join("dist/manifest.json")).unwrap())
            .unwrap();
    let first = &manifest.steps[0].id;
    let panicked = publish(&env, &workspace, &name, Some(&format!("{first}:panic")));
    let output = text(&panicked);
    assert_eq!(panicked.status.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!("error: publishing stopped at {first}"))
            && output.contains(&format!("castoff panicked while publishing {first}")),
        "{output}"
    );
    assert!(
        output.contains("hint: this is a bug in castoff"),
        "{output}"
    );
    let report: serde_json::Value =
        json(&fs::read(workspace.join("dist/publish-report.json")).unwrap());
    let failed: Vec<&serde_json::Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["id"], first.as_str());
    let rerun = publish(&env, &workspace, &name, None);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_served_exactly(&env, &workspace, &name, "after the panicking run");
    env.figure(
        "publish worker panic: exit 1, report written with the step failed, re-run completed"
            .to_owned(),
    );
}

/// Kill points of the crates channel: castoff aborted (`CASTOFF_TEST_KILL_AT`, no cleanup,
/// like SIGKILL) before, in the middle of and after each crate's upload, in publish order;
/// every next run resumes what the killed one left, and the last one finishes with exactly
/// dist/'s crates in the index.
#[test]
fn a_crates_publish_killed_at_any_point_completes_on_a_rerun() {
    use super::crates_channel::{client, fixture};
    let env = TestEnv::get();
    let fixture = fixture(&env, "kill", 5);
    fixture.dist();
    let token = env.kellnr_token.as_str();
    let mut killed = 0;
    for name in ["cc-core", "cc-util", "cc-cli"] {
        for phase in ["before", "mid-upload:512", "after"] {
            let point = format!("crate-publish/{name}:{phase}");
            let output = fixture.castoff(
                &["publish", "--jobs", "1"],
                &[
                    ("CARGO_REGISTRIES_KELLNR_TOKEN", token),
                    ("CASTOFF_TEST_KILL_AT", &point),
                ],
            );
            // A step the previous run finished is skipped, and its kill point is never reached.
            if output.status.success() {
                continue;
            }
            assert_eq!(
                output.status.signal(),
                Some(6),
                "{point}: not aborted:\n{}",
                text(&output)
            );
            killed += 1;
        }
    }
    // Before and mid-upload of each crate at least.
    assert!(killed >= 6, "only {killed} runs were killed");
    let output = fixture.castoff(&["publish"], &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)]);
    assert!(output.status.success(), "{}", text(&output));
    let kellnr = client(&env);
    for name in ["cc-core", "cc-util", "cc-cli"] {
        let bytes = fs::read(
            fixture
                .workspace
                .join(format!("dist/crates/{name}-{}.crate", fixture.version)),
        )
        .unwrap();
        let entry = kellnr
            .index_entry(name, &fixture.version)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} missing after the re-runs"));
        assert_eq!(
            entry.cksum,
            castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes)),
            "{name}"
        );
    }
}
