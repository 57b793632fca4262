//! `publish`: executes the publish half of the plan from `dist/manifest.json` alone. Verify
//! every file (`verify.rs`), resolve and check every credential (`connect.rs`), ask each
//! registry what it already has, then upload in dependency order (independent steps in
//! parallel, `crate::schedule`), verify what the registry serves (`jobs.rs`), and record
//! everything in `dist/publish-report.json`. Re-running after any failure finishes the
//! release: identical content is skipped, different content is a conflict.

mod connect;
mod jobs;
mod options;
mod scope;
mod verify;

use std::collections::BTreeMap;
use std::fs;

use anyhow::Context as _;
use castoff_plan::Manifest;
use castoff_plan::manifest::ManifestStep;
use castoff_plan::report::{
    PublishReport, REPORT_SCHEMA_VERSION, StepOutcome, StepReport, StepState,
};
use castoff_registry::env::ProcessEnvironment;
use castoff_registry::{HttpClient, RemoteState};

use crate::hint::Hinted;
use crate::report::Reporter;
pub(crate) use connect::connect;
pub(crate) use connect::oci_repository_of;
use jobs::{Job, check_upload_limits, prepare_jobs, query_state, short_digests};
pub use options::{PublishOptions, release_tag, vars};
pub use scope::{RefusedRelease, ReleaseTag, TagOrigin};
pub(crate) use verify::check_against_workspace;
pub(crate) use verify::verify_files;

/// Several registries hold different content under names this release wants: nothing was
/// uploaded. Exit code 3.
#[derive(Debug)]
pub struct ConflictError {
    pub conflicts: Vec<String>,
}

impl std::fmt::Display for ConflictError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} step(s) conflict with what the registries already hold; nothing was uploaded",
            self.conflicts.len()
        )?;
        for conflict in &self.conflicts {
            write!(f, "\n  {}", conflict.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl ConflictError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        "a published version is immutable: bump the version and run `dist` again, or leave these steps out with --skip"
    }
}

impl std::error::Error for ConflictError {}

/// Runs `publish` and returns its report (also written to `dist/publish-report.json`).
pub fn publish(options: &PublishOptions, reporter: &dyn Reporter) -> anyhow::Result<PublishReport> {
    let manifest_path = options.dist_dir.join("manifest.json");
    let manifest_text = fs::read_to_string(&manifest_path).map_err(|error| {
        {
            Hinted::new(
                format!("could not read {}", manifest_path.display()),
                "run `castoff dist` first; `publish` uploads only what `dist` built",
            )
        }
        .because(error)
    })?;
    // 0. A signed dist is checked first: nothing of an unsigned or altered manifest is used.
    if let Some(key) = &options.verify_key {
        key.verify_file(&manifest_path, manifest_text.as_bytes())?;
        reporter.line(&format!(
            "verified the signature of {} (key {})",
            manifest_path.display(),
            key.key_id_hex()
        ));
    }
    let manifest = Manifest::from_json(&manifest_text)
        .with_context(|| format!("{} is not a castoff manifest", manifest_path.display()))?;
    check_against_workspace(&manifest, &options.workspace, &manifest_path)?;

    // What this run may publish: the apps of the release tag, and (unless --allow-partial)
    // only apps dist/ holds whole. Refused here, before any file is read or request sent.
    let apps = scope::apps_for_tag(&manifest, options.tag.as_ref(), &options.dist_dir)?;
    if let Some(tag) = &options.tag {
        let left_out: Vec<String> = manifest
            .apps
            .iter()
            .filter(|app| !apps.contains(&app.name))
            .map(|app| format!("{} (tag {})", app.name, app.git_tag()))
            .collect();
        reporter.line(&format!(
            "tag {tag}: publishing {}{}",
            apps.join(", "),
            if left_out.is_empty() {
                String::new()
            } else {
                format!("; leaving out {}", left_out.join(", "))
            }
        ));
    }
    // The crates channel's steps first; every other step waits for them.
    let all_steps = manifest.publish_steps();
    let selected: Vec<&ManifestStep> = all_steps
        .iter()
        .filter(|step| {
            (step.kind == castoff_plan::StepKindName::CratePublish || apps.contains(&step.app))
                && is_selected(step, options)
        })
        .collect();
    if !options.allow_partial {
        let publishing: Vec<String> = apps
            .into_iter()
            .filter(|app| selected.iter().any(|step| &step.app == app))
            .collect();
        let configured = scope::configured_targets(&manifest, &options.workspace)?;
        scope::check_whole(&manifest, &configured, &publishing, &options.dist_dir)?;
    }

    // 1. Every file must be exactly what `dist` described, before any network traffic.
    verify_files(&manifest, &options.dist_dir)?;
    reporter.line(&format!(
        "verified {} file(s) of {} in {}",
        manifest
            .artifacts
            .iter()
            .filter(|a| a.path.is_some())
            .count()
            + manifest.crates.iter().filter(|k| k.path.is_some()).count(),
        crate::contents::Contents::of(&manifest).units(),
        options.dist_dir.display()
    ));

    // 2. Credentials and clients for every destination; all problems at once.
    let environment = ProcessEnvironment;
    let http = HttpClient::new(options.http.clone())?;
    let destinations = connect(&manifest, &selected, options, &http, &environment)?;
    // However the run ends (done, dry run, conflict, failure), a token crates.io trusted
    // publishing minted is revoked when no step needs it any more.
    let _revoke = RevokeTrustedTokens {
        destinations: &destinations,
        reporter,
    };
    let jobs = prepare_jobs(&manifest, &selected, options, &destinations)?;
    check_upload_limits(&manifest, &jobs)?;

    // 3. Ask each registry what it has: every question at once (up to `--jobs`), each a
    //    round trip or more that waits for nothing but the network; answered in plan order.
    let answers = crate::schedule::run(
        &vec![Vec::new(); jobs.len()],
        options.jobs.max(1),
        |index| {
            let job = &jobs[index];
            // A spinner while the registry answers (0 bytes: it prints nothing itself).
            let query = reporter.task(&format!("asking {}", short_digests(&job.destination)), 0);
            let state = query_state(job);
            query.finish(if state.is_ok() { "asked" } else { "failed" });
            state
        },
        Result::is_err,
    );
    let mut states: BTreeMap<String, RemoteState> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (job, state) in jobs.iter().zip(answers) {
        // Questions start in plan order and stop after a failure: the first one not asked
        // comes after the failed one, which returns first.
        let state = state
            .context("internal error: a registry question was never asked")?
            .with_context(|| format!("could not ask {} about {}", job.destination, job.step.id))?;
        let label = match &state {
            RemoteState::Absent => "upload",
            RemoteState::Replaceable { .. } => "move",
            RemoteState::Identical => "skip (identical)",
            RemoteState::Conflict { local, remote } => {
                conflicts.push(format!(
                    "{}: {} holds {remote}, dist/ has {local}",
                    job.step.id, job.destination
                ));
                "CONFLICT"
            }
        };
        reporter.line(&format!(
            "{label:<16} {}  → {}",
            job.step.id, job.destination
        ));
        states.insert(job.step.id.clone(), state);
    }
    if !conflicts.is_empty() {
        return Err(ConflictError { conflicts }.into());
    }

    let mut reports: BTreeMap<String, StepReport> = all_steps
        .iter()
        .map(|step| {
            let job = jobs.iter().find(|job| job.step.id == step.id);
            (
                step.id.clone(),
                StepReport {
                    id: step.id.clone(),
                    destination: job.map_or_else(String::new, |job| job.destination.clone()),
                    state: states
                        .get(&step.id)
                        .map_or(StepState::Unknown, jobs::state_of),
                    outcome: if job.is_some() {
                        StepOutcome::NotRun
                    } else {
                        StepOutcome::Excluded
                    },
                    bytes: 0,
                    attempts: 0,
                    started_at_ms: 0,
                    finished_at_ms: 0,
                    error: None,
                },
            )
        })
        .collect();

    if options.dry_run {
        for job in &jobs {
            let report = reports
                .get_mut(&job.step.id)
                .expect("every step has a report");
            report.outcome = if states[&job.step.id].needs_upload() {
                StepOutcome::WouldUpload
            } else {
                StepOutcome::Skipped
            };
        }
        return finish(options, &all_steps, reports, true);
    }

    // 4. + 5. Upload in dependency order, in parallel where the edges allow, and verify.
    let uploads = jobs
        .iter()
        .filter(|job| states[&job.step.id].needs_upload())
        .count();
    if uploads > 0 {
        reporter.line(&format!("uploading {uploads} step(s)"));
    }
    let failures = execute(&jobs, &states, options.jobs.max(1), reporter, &mut reports);
    let report = finish(options, &all_steps, reports, false)?;
    if let Some((step, error)) = failures.into_iter().next() {
        return Err(Hinted::new(
            format!(
                "publishing stopped at {step}; what finished is recorded in {}",
                options.dist_dir.join(REPORT).display()
            ),
            "fix the cause and run `publish` again: finished steps are skipped",
        )
        .because(error)
        .into());
    }
    Ok(report)
}

/// The report `publish` writes into dist/ (and the name it is written under first): the one
/// file of a dist that a command after `dist` writes (`stage.rs` owns it, `cache.rs` leaves
/// it out of a dist's identity).
pub(crate) const REPORT: &str = "publish-report.json";
pub(crate) const REPORT_PARTIAL: &str = ".publish-report.json.partial";

fn is_selected(step: &ManifestStep, options: &PublishOptions) -> bool {
    (options.only.is_empty()
        || options
            .only
            .iter()
            .any(|only| step.id.contains(only.as_str())))
        && !options
            .skip
            .iter()
            .any(|skip| step.id.contains(skip.as_str()))
}

/// Runs the jobs on up to `parallel` threads (`crate::schedule`), each as soon as every step
/// it comes after has finished; steps outside this run (excluded) hold nothing up. An SBOM
/// attachment's blobs go ahead of its step, which waits for its image (a head start,
/// `jobs::has_head_start`); the step then waits for them too. After a failure no new step
/// starts; the ones running finish. Returns the failures in plan order.
fn execute(
    jobs: &[Job<'_>],
    states: &BTreeMap<String, RemoteState>,
    parallel: usize,
    reporter: &dyn Reporter,
    reports: &mut BTreeMap<String, StepReport>,
) -> Vec<(String, anyhow::Error)> {
    enum Node {
        HeadStart(usize),
        Step(usize),
    }
    enum Done {
        /// The job, when it started and finished (ms), the bytes sent.
        HeadStart(usize, u64, u64, anyhow::Result<u64>),
        Step(StepReport, Option<anyhow::Error>),
    }
    let index_of: std::collections::HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(index, job)| (job.step.id.as_str(), index))
        .collect();
    let after: Vec<Vec<usize>> = jobs
        .iter()
        .map(|job| {
            job.step
                .after
                .iter()
                .filter_map(|after| index_of.get(after.as_str()).copied())
                .collect()
        })
        .collect();
    // Nodes in plan order, each head start just before its step (the scheduler starts the
    // first ready node in order).
    let mut nodes = Vec::new();
    let mut step_node = vec![0; jobs.len()];
    let mut head_start_node = vec![None; jobs.len()];
    for (index, job) in jobs.iter().enumerate() {
        if jobs::has_head_start(job, &states[&job.step.id], !after[index].is_empty()) {
            head_start_node[index] = Some(nodes.len());
            nodes.push(Node::HeadStart(index));
        }
        step_node[index] = nodes.len();
        nodes.push(Node::Step(index));
    }
    let waits_for: Vec<Vec<usize>> = nodes
        .iter()
        .map(|node| match *node {
            Node::HeadStart(_) => Vec::new(),
            Node::Step(index) => after[index]
                .iter()
                .map(|&before| step_node[before])
                .chain(head_start_node[index])
                .collect(),
        })
        .collect();
    let results = crate::schedule::run(
        &waits_for,
        parallel,
        |node| match nodes[node] {
            Node::HeadStart(index) => {
                let started = jobs::now_ms();
                let result = jobs::run_head_start(&jobs[index], reporter);
                if result.is_err() {
                    reporter.line(&format!("failed           {}", jobs[index].step.id));
                }
                Done::HeadStart(index, started, jobs::now_ms(), result)
            }
            Node::Step(index) => {
                let job = &jobs[index];
                let (report, error) = jobs::run_step(job, &states[&job.step.id], reporter);
                Done::Step(report, error)
            }
        },
        |done| match done {
            Done::HeadStart(.., result) => result.is_err(),
            Done::Step(_, error) => error.is_some(),
        },
    );
    let mut failures = Vec::new();
    let mut head_start_bytes = vec![0; jobs.len()];
    for done in results.into_iter().flatten() {
        match done {
            // Counted in the step's bytes whatever became of the step: they were sent.
            Done::HeadStart(index, _, _, Ok(bytes)) => head_start_bytes[index] = bytes,
            Done::HeadStart(index, started, finished, Err(error)) => {
                if let Some(report) = reports.get_mut(&jobs[index].step.id) {
                    report.outcome = StepOutcome::Failed;
                    report.error = Some(crate::hint::render(&*error));
                    report.started_at_ms = started;
                    report.finished_at_ms = finished;
                }
                failures.push((index, error));
            }
            Done::Step(report, error) => {
                if let Some(error) = error {
                    failures.push((index_of[report.id.as_str()], error));
                }
                reports.insert(report.id.clone(), report);
            }
        }
    }
    for (job, bytes) in jobs.iter().zip(head_start_bytes) {
        if let Some(report) = reports.get_mut(&job.step.id) {
            report.bytes += bytes;
        }
    }
    failures.sort_by_key(|(index, _)| *index);
    failures
        .into_iter()
        .map(|(index, error)| (jobs[index].step.id.clone(), error))
        .collect()
}

fn finish(
    options: &PublishOptions,
    steps: &[ManifestStep],
    mut reports: BTreeMap<String, StepReport>,
    dry_run: bool,
) -> anyhow::Result<PublishReport> {
    let report = PublishReport {
        schema_version: REPORT_SCHEMA_VERSION,
        castoff_version: env!("CARGO_PKG_VERSION").to_owned(),
        dry_run,
        steps: steps
            .iter()
            .filter_map(|step| reports.remove(&step.id))
            .collect(),
    };
    let path = options.dist_dir.join(REPORT);
    let temporary = options.dist_dir.join(REPORT_PARTIAL);
    fs::write(&temporary, report.to_json())
        .and_then(|()| fs::rename(&temporary, &path))
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(report)
}

/// Revokes, when dropped, every token crates.io trusted publishing minted for the run.
pub(crate) struct RevokeTrustedTokens<'a> {
    pub(crate) destinations: &'a connect::Destinations,
    pub(crate) reporter: &'a dyn Reporter,
}

impl Drop for RevokeTrustedTokens<'_> {
    fn drop(&mut self) {
        for client in self.destinations.crates.values() {
            match client.revoke_trusted_token() {
                Ok(true) => self.reporter.line(&format!(
                    "revoked the trusted publishing token of {}",
                    client.registry().name
                )),
                Ok(false) => {}
                Err(error) => self.reporter.line(&format!(
                    "could not revoke the trusted publishing token (it expires on its own): {}",
                    crate::hint::render(&error)
                )),
            }
        }
    }
}
