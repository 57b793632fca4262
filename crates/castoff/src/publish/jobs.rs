//! The steps of a run as jobs: each resolved once to its client and files, then asked about,
//! uploaded (with progress) and verified.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use castoff_plan::manifest::ManifestStep;
use castoff_plan::report::{StepOutcome, StepReport, StepState};
use castoff_plan::{ArtifactKind, Manifest, StepKindName};
use castoff_registry::crates::{CrateFile, CratesClient};
use castoff_registry::error::display_url;
use castoff_registry::http::UploadProgress;
use castoff_registry::npm::{NpmClient, NpmTarball};
use castoff_registry::oci::{Digest, OciClient, OciLayout};
use castoff_registry::pypi::{PypiClient, WheelFile};
use castoff_registry::{RemoteState, UploadKind, UploadOutcome};

use super::connect::Destinations;
use super::options::PublishOptions;
use crate::hint::Hinted;
use crate::hint::{LIST_HINT, render, render_with};
use crate::report::{Reporter, Task};

/// One step, with everything needed to run it: its client is resolved once, here.
pub(super) struct Job<'a> {
    pub(super) step: &'a ManifestStep,
    pub(super) destination: String,
    pub(super) action: Action<'a>,
}

/// What a step does, with the client of its destination.
pub(super) enum Action<'a> {
    Pypi {
        client: &'a PypiClient,
        wheel: WheelFile,
    },
    Npm {
        client: &'a NpmClient,
        tarball: NpmTarball,
        dist_tag: String,
    },
    /// An image manifest, or the index, by digest.
    OciManifest {
        client: &'a OciClient,
        layout: OciLayout,
        digest: Digest,
    },
    OciTag {
        client: &'a OciClient,
        layout: OciLayout,
        digest: Digest,
        tag: String,
        /// Any tag but the first (the full version) may move: `latest`, `1`, `1.2`.
        floating: bool,
    },
    /// A `.crate` to a Cargo registry.
    Crate {
        client: &'a CratesClient,
        krate: CrateFile,
    },
    /// The SBOM as an OCI artifact referring to its image.
    OciSbom {
        client: &'a OciClient,
        layout: OciLayout,
        /// The image manifest the SBOM refers to.
        subject: Digest,
        /// The SBOM artifact's manifest.
        artifact: Digest,
    },
}

/// Refuses, before any upload, every wheel and npm tarball larger than its destination's
/// limit (`limits.rs`: configured, else the registry's known default); all at once.
pub(super) fn check_upload_limits(manifest: &Manifest, jobs: &[Job<'_>]) -> anyhow::Result<()> {
    use crate::limits::{Channel, check};
    let mut problems = Vec::new();
    let artifacts = manifest.artifacts_by_id();
    for job in jobs {
        let app = manifest.app(&job.step.app);
        let size = artifacts
            .get(job.step.artifact.as_str())
            .and_then(|artifact| artifact.size);
        let checked = match (&job.action, size) {
            (Action::Pypi { client, wheel }, Some(size)) => check(
                Channel::Pypi,
                &wheel.filename,
                size,
                &display_url(&client.repository().upload_url),
                app.and_then(|app| app.python.as_ref())
                    .and_then(|python| python.upload_limit),
            ),
            (
                Action::Npm {
                    client, tarball, ..
                },
                Some(size),
            ) => check(
                Channel::Npm,
                &format!("{}@{}", tarball.name, tarball.version),
                size,
                &display_url(&client.registry().url),
                app.and_then(|app| app.npm.as_ref())
                    .and_then(|npm| npm.upload_limit),
            ),
            _ => Ok(()),
        };
        if let Err(problem) = checked {
            problems.push(format!(
                "{}: {}",
                job.step.id,
                render_with(&problem, LIST_HINT)
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot publish: {} artifact(s) too large for their registry, found before any upload:\n  {}",
        problems.len(),
        crate::hint::list_items(&problems)
    )
}

/// A digest the manifest records, parsed.
fn recorded_digest(digest: Option<&str>) -> anyhow::Result<Digest> {
    digest
        .context("the manifest records no digest for this image")?
        .parse()
        .map_err(|problem: String| anyhow!("the manifest's digest is invalid: {problem}"))
}

pub(super) fn prepare_jobs<'a>(
    manifest: &'a Manifest,
    steps: &[&'a ManifestStep],
    options: &PublishOptions,
    destinations: &'a Destinations,
) -> anyhow::Result<Vec<Job<'a>>> {
    let mut jobs = Vec::new();
    let artifacts = manifest.artifacts_by_id();
    for step in steps {
        if step.kind == StepKindName::CratePublish {
            jobs.push(crate_job(manifest, step, options, destinations)?);
            continue;
        }
        let artifact = *artifacts
            .get(step.artifact.as_str())
            .with_context(|| format!("the manifest's step {} names no known artifact", step.id))?;
        let path = || {
            artifact
                .path
                .as_ref()
                .map(|path| options.dist_dir.join(path))
                .with_context(|| format!("{} was not built: dist/ has no file for it", artifact.id))
        };
        let (destination, action) = match step.kind {
            StepKindName::PypiUpload => {
                let client = destinations
                    .pypi
                    .get(&step.destination)
                    .context("internal error: no PyPI client")?;
                let wheel = WheelFile::open(&path()?)?;
                let url = display_url(&client.repository().upload_url);
                (
                    format!("{url} ({})", wheel.filename),
                    Action::Pypi { client, wheel },
                )
            }
            StepKindName::NpmPublish => {
                let name = artifact.registry_name.clone().unwrap_or_default();
                let client = destinations
                    .npm
                    .get(&(name, step.destination.clone()))
                    .context("internal error: no npm client")?;
                let tarball = NpmTarball::open(&path()?)?;
                let dist_tag = manifest
                    .app(&step.app)
                    .and_then(|app| app.npm.as_ref())
                    .map_or_else(
                        || tarball.default_dist_tag().to_owned(),
                        |npm| npm.dist_tag.clone(),
                    );
                let url = display_url(&client.registry().url);
                (
                    format!("{url} ({}@{})", tarball.name, tarball.version),
                    Action::Npm {
                        client,
                        tarball,
                        dist_tag,
                    },
                )
            }
            StepKindName::CratePublish => unreachable!("crate steps are prepared above"),
            kind @ (StepKindName::OciPushImage
            | StepKindName::OciPushIndex
            | StepKindName::OciTag
            | StepKindName::OciAttachSbom) => {
                let client = destinations
                    .oci
                    .get(&(step.app.clone(), step.destination.clone()))
                    .context("internal error: no registry client")?;
                // Images and the index all live in the app's layout.
                let index = manifest
                    .artifacts
                    .iter()
                    .find(|a| a.kind == ArtifactKind::OciIndex && a.app == step.app)
                    .context("the manifest has no image index for this app")?;
                let layout_dir = options.dist_dir.join(
                    index
                        .path
                        .as_ref()
                        .context("the image index was not built")?,
                );
                let layout = OciLayout::open(&layout_dir)?;
                let digest = recorded_digest(
                    if matches!(
                        kind,
                        StepKindName::OciPushImage | StepKindName::OciAttachSbom
                    ) {
                        artifact.digest.as_deref()
                    } else {
                        index.digest.as_deref()
                    },
                )?;
                let repository = format!(
                    "{}/{}",
                    client.repository().host(),
                    client.repository().name
                );
                match (kind, &step.tag) {
                    (StepKindName::OciAttachSbom, _) => {
                        // The subject: this target's image manifest.
                        let subject = recorded_digest(
                            manifest
                                .artifacts
                                .iter()
                                .find(|a| {
                                    a.kind == ArtifactKind::OciImage
                                        && a.app == step.app
                                        && a.target == artifact.target
                                })
                                .context("the manifest has no image for this SBOM")?
                                .digest
                                .as_deref(),
                        )?;
                        (
                            format!("{repository}@{digest} (referrer of {subject})"),
                            Action::OciSbom {
                                client,
                                layout,
                                subject,
                                artifact: digest,
                            },
                        )
                    }
                    (_, Some(tag)) => {
                        let full_version = manifest
                            .app(&step.app)
                            .and_then(|app| app.oci.as_ref())
                            .and_then(|oci| oci.tags.first())
                            .is_some_and(|first| first == tag);
                        (
                            format!("{repository}:{tag}"),
                            Action::OciTag {
                                client,
                                layout,
                                digest,
                                tag: tag.clone(),
                                floating: !full_version,
                            },
                        )
                    }
                    (_, None) => (
                        format!("{repository}@{digest}"),
                        Action::OciManifest {
                            client,
                            layout,
                            digest,
                        },
                    ),
                }
            }
        };
        jobs.push(Job {
            step,
            destination,
            action,
        });
    }
    Ok(jobs)
}

/// A crate step's job: its `.crate` read from dist/ (the upload's metadata comes from the
/// crate itself) and its registry's client.
fn crate_job<'a>(
    manifest: &'a Manifest,
    step: &'a ManifestStep,
    options: &PublishOptions,
    destinations: &'a Destinations,
) -> anyhow::Result<Job<'a>> {
    let krate = manifest
        .crates
        .iter()
        .find(|k| k.id == step.artifact)
        .with_context(|| format!("the manifest's step {} names no known crate", step.id))?;
    let path = krate
        .path
        .as_ref()
        .map(|path| options.dist_dir.join(path))
        .with_context(|| format!("{} was not built: dist/ has no file for it", krate.id))?;
    let client = destinations
        .crates
        .get(&krate.registry)
        .context("internal error: no Cargo registry client")?;
    let file = CrateFile::read(&path, &krate.name, &krate.version)?;
    if Some(&file.sha256) != krate.sha256.as_ref() {
        bail!(Hinted::new(
            format!("{} changed after it was verified", path.display()),
            "leave dist/ alone while publish runs, and run it again"
        ));
    }
    Ok(Job {
        step,
        destination: format!(
            "{} ({}@{})",
            display_url(&client.registry().index),
            krate.name,
            krate.version
        ),
        action: Action::Crate {
            client,
            krate: file,
        },
    })
}

pub(super) fn query_state(job: &Job<'_>) -> anyhow::Result<RemoteState> {
    Ok(match &job.action {
        Action::Crate { client, krate } => client.state(krate)?,
        Action::Pypi { client, wheel } => client.state_before_upload(wheel)?,
        Action::Npm {
            client, tarball, ..
        } => client.state(tarball)?,
        Action::OciManifest { client, digest, .. } => client.manifest_state(digest)?,
        Action::OciTag {
            client,
            digest,
            tag,
            floating,
            ..
        } => client.tag_state(tag, digest, *floating)?,
        Action::OciSbom {
            client,
            subject,
            artifact,
            ..
        } => client.referrer_state(subject, artifact)?,
    })
}

/// Uploads (with a progress task: bytes, rate, a line with size and rate at the end), then
/// verifies what the registry serves.
fn run_job(job: &Job<'_>, reporter: &dyn Reporter) -> anyhow::Result<UploadOutcome> {
    let (label, total) = task_of(job);
    let task = reporter.task(&label, total);
    let (result, counted) = watched(&*task, |progress| upload_job(job, progress));
    match &result {
        Ok(outcome) => {
            // Bodies the hook does not watch (manifests, tags): counted when they are done.
            task.advance(outcome.bytes.saturating_sub(counted));
            task.finish(match outcome.kind {
                UploadKind::Uploaded => "uploaded",
                UploadKind::AlreadyPresent => "already-present",
            });
        }
        Err(_) => task.finish("failed"),
    }
    drop(task);
    let outcome = result?;
    verify_job(job)?;
    Ok(outcome)
}

/// Whether the job's blobs go ahead of it: an SBOM attachment the registry lacks, whose
/// step waits for its image. Blobs are invisible until a manifest names them, so only the
/// attachment's manifest needs its subject; its blobs (a few KiB: an SBOM, an empty config)
/// go at once, and the attachment costs its image's chain a few round trips instead of ten.
/// Not images: a mirror's image waits for the primary's so that its blobs are mounted from
/// there, not sent again.
pub(super) fn has_head_start(job: &Job<'_>, state: &RemoteState, waits: bool) -> bool {
    waits && state.needs_upload() && matches!(job.action, Action::OciSbom { .. })
}

/// A head start: the job's blobs, with a progress task of their own; the bytes sent.
pub(super) fn run_head_start(job: &Job<'_>, reporter: &dyn Reporter) -> anyhow::Result<u64> {
    let Action::OciSbom {
        client,
        layout,
        artifact: digest,
        ..
    } = &job.action
    else {
        return Ok(0);
    };
    let total = layout.manifest(digest).map_or(0, |manifest| {
        manifest.blobs.iter().map(|blob| blob.size).sum()
    });
    let task = reporter.task(
        &format!("oci {} (blobs)", short_digests(&job.destination)),
        total,
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The step's first bytes go here: its test hook's `before` and `mid-upload` too.
        kill_point(&job.step.id, "before");
        watched(&*task, |progress| {
            client
                .push_blobs(layout, digest, progress)
                .map_err(anyhow::Error::from)
        })
        .0
    }))
    .unwrap_or_else(|panic| Err(panicked(&job.step.id, &*panic)));
    task.finish(if result.is_ok() { "uploaded" } else { "failed" });
    result
}

/// A panic inside a job (a bug, or a server answer nobody foresaw) as the step's error.
fn panicked(step: &str, panic: &(dyn std::any::Any + Send)) -> anyhow::Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    anyhow::Error::new(Hinted::new(
        format!("castoff panicked while publishing {step}: {message}"),
        "this is a bug in castoff; please report it with the output above. Re-running publish is safe: finished steps are skipped",
    ))
}

/// A task's label and size: `pypi <wheel file>`, `npm <name>@<version>`, `oci <reference>`
/// (an image's size is all its blobs and manifests; the ones the registry has are not sent,
/// so its bar may end short of the total).
fn task_of(job: &Job<'_>) -> (String, u64) {
    match &job.action {
        Action::Crate { krate, .. } => (
            format!("crate {}@{}", krate.name, krate.version),
            krate.bytes.len() as u64,
        ),
        Action::Pypi { wheel, .. } => (format!("pypi {}", wheel.filename), wheel.size),
        Action::Npm { tarball, .. } => (
            format!("npm {}@{}", tarball.name, tarball.version),
            tarball.size,
        ),
        Action::OciManifest { layout, digest, .. } => (
            format!("oci {}", short_digests(&job.destination)),
            image_size(layout, digest, 0),
        ),
        // A tag sends the manifest again.
        Action::OciTag { layout, digest, .. } => (
            format!("oci {}", short_digests(&job.destination)),
            layout
                .manifest(digest)
                .map_or(0, |manifest| manifest.bytes.len() as u64),
        ),
        // Without the fallback referrers index, if the registry needs one (a few hundred bytes).
        Action::OciSbom {
            layout, artifact, ..
        } => (
            format!("oci {}", short_digests(&job.destination)),
            image_size(layout, artifact, 0),
        ),
    }
}

/// Bytes of a manifest or index and everything below it in the layout (0 if unreadable:
/// then the bar is a spinner).
fn image_size(layout: &OciLayout, digest: &Digest, depth: u32) -> u64 {
    let Ok(manifest) = layout.manifest(digest) else {
        return 0;
    };
    let below: u64 = if depth > 4 {
        0
    } else if manifest.is_index() {
        manifest
            .children
            .iter()
            .map(|child| image_size(layout, &child.digest, depth + 1))
            .sum()
    } else {
        manifest.blobs.iter().map(|blob| blob.size).sum()
    };
    manifest.bytes.len() as u64 + below
}

/// `sha256:<64 hex>` → `sha256:<12 hex>` (labels stay readable).
pub(super) fn short_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sha256:") {
        let hex_start = at + "sha256:".len();
        let hex_len = rest[hex_start..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .count();
        out.push_str(&rest[..hex_start]);
        if hex_len == 64 {
            out.push_str(&rest[hex_start..hex_start + 12]);
            out.push('…');
        } else {
            out.push_str(&rest[hex_start..hex_start + hex_len]);
        }
        rest = &rest[hex_start + hex_len..];
    }
    out.push_str(rest);
    out
}

/// Runs `upload` with an [`UploadProgress`] feeding `task`. The registry client calls the
/// hook from the thread that sends the body and needs it `'static`, while the task may
/// borrow the reporter: a scoped thread relays the counts. Returns the result and the bytes
/// relayed.
fn watched<T>(task: &dyn Task, upload: impl FnOnce(&UploadProgress) -> T) -> (T, u64) {
    let (sender, receiver) = std::sync::mpsc::channel::<u64>();
    let sender = Arc::new(Mutex::new(Some(sender)));
    let hook = Arc::clone(&sender);
    let progress = UploadProgress::new(move |bytes| {
        if let Some(sender) = hook.lock().expect("progress relay lock").as_ref() {
            let _ = sender.send(bytes);
        }
    });
    std::thread::scope(|scope| {
        let relay = scope.spawn(move || {
            let mut relayed = 0;
            for bytes in receiver {
                task.advance(bytes);
                relayed += bytes;
            }
            relayed
        });
        let result = {
            // Closes the channel when the upload ends, even if the HTTP client still holds a
            // body reader, and even if the upload panics (the scope would wait forever).
            let _close = CloseRelay(&sender);
            upload(&progress)
        };
        drop(progress);
        let relayed = relay.join().expect("the progress relay does not panic");
        (result, relayed)
    })
}

/// Drops the relay's sender: the relay thread then ends.
struct CloseRelay<'a>(&'a Mutex<Option<std::sync::mpsc::Sender<u64>>>);

impl Drop for CloseRelay<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// Runs only for a step that needs an upload: a manifest by digest then is one step 3 found
/// absent, and is not asked about again ([`OciClient::push_absent`]).
fn upload_job(job: &Job<'_>, progress: &UploadProgress) -> anyhow::Result<UploadOutcome> {
    Ok(match &job.action {
        Action::Crate { client, krate } => {
            // One small body (a `.crate` is a few hundred KiB at most): counted when sent.
            let _ = progress;
            client.upload(krate)?
        }
        Action::Pypi { client, wheel } => client.upload_with_progress(wheel, progress)?,
        Action::Npm {
            client,
            tarball,
            dist_tag,
        } => client.upload_with_progress(tarball, Some(dist_tag), progress)?,
        Action::OciManifest {
            client,
            layout,
            digest,
        } => client.push_absent(layout, digest, progress)?,
        Action::OciTag {
            client,
            layout,
            digest,
            tag,
            ..
        } => client.tag(layout, digest, tag)?,
        Action::OciSbom {
            client,
            layout,
            subject,
            artifact,
        } => client.attach_referrer(layout, subject, artifact)?,
    })
}

/// After an upload: the registry serves what was sent.
fn verify_job(job: &Job<'_>) -> anyhow::Result<()> {
    match &job.action {
        Action::Crate { client, krate } => client.verify(krate)?,
        Action::Pypi { client, wheel } => client.verify(wheel)?,
        Action::Npm {
            client, tarball, ..
        } => client.verify(tarball)?,
        Action::OciManifest { client, digest, .. } => client.verify(digest.as_str(), digest)?,
        Action::OciTag {
            client,
            digest,
            tag,
            ..
        } => client.verify(tag, digest)?,
        Action::OciSbom {
            client,
            subject,
            artifact,
            ..
        } => {
            // The artifact read back, and whether it is findable as a referrer: side by side,
            // a round trip each.
            let (served, listed) = std::thread::scope(|scope| {
                let listed = scope.spawn(|| {
                    client
                        .referrer_listed(subject, artifact)
                        .map_err(anyhow::Error::from)
                });
                let served = client.verify(artifact.as_str(), artifact);
                (
                    served,
                    listed
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                )
            });
            served?;
            if listed? != RemoteState::Identical {
                bail!(Hinted::new(
                    format!("{artifact} was pushed but is not findable as a referrer of {subject}"),
                    "run publish again"
                ));
            }
        }
    }
    Ok(())
}

/// Test hook (docs/testing.md): `CASTOFF_TEST_KILL_AT=<step id>:<phase>` aborts the process,
/// as a SIGKILL would (no cleanup, no report), at `before` or `after` the upload of that step,
/// or with `mid-upload[:<bytes>]` once that many bytes of its request bodies were sent
/// (default 1), or panics `before` the upload with `panic` (the worker's panic handling).
/// Unset, it does nothing. Only in debug builds (what the tests run): a release build of
/// castoff has no test hooks.
#[cfg(debug_assertions)]
fn kill_point(step: &str, phase: &str) {
    let Ok(spec) = std::env::var("CASTOFF_TEST_KILL_AT") else {
        return;
    };
    let mut parts = spec.split(':');
    if parts.next() != Some(step) {
        return;
    }
    match (parts.next(), phase) {
        (Some("mid-upload"), "before") => {
            let bytes = parts.next().and_then(|b| b.parse().ok()).unwrap_or(1u64);
            castoff_registry::http::abort_after_body_bytes(bytes.max(1));
        }
        (Some("panic"), "before") => panic!("CASTOFF_TEST_KILL_AT asked for a panic"),
        (Some(at), phase) if at == phase => std::process::abort(),
        _ => {}
    }
}

#[cfg(not(debug_assertions))]
fn kill_point(_step: &str, _phase: &str) {}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Runs one step: uploads and verifies it if the registry needs it, else records the skip.
/// Returns its report and, if it failed, the error. A panic inside a job (a bug, or a server
/// answer nobody foresaw) fails that step like any error: the other workers are not left
/// waiting for it, and the report is written.
pub(super) fn run_step(
    job: &Job<'_>,
    state: &RemoteState,
    reporter: &dyn Reporter,
) -> (StepReport, Option<anyhow::Error>) {
    let started_at_ms = now_ms();
    let result = if state.needs_upload() {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            kill_point(&job.step.id, "before");
            let result = run_job(job, reporter);
            kill_point(&job.step.id, "after");
            result
        }))
        .unwrap_or_else(|panic| Err(panicked(&job.step.id, &*panic)))
    } else {
        Ok(UploadOutcome {
            kind: UploadKind::AlreadyPresent,
            attempts: 0,
            bytes: 0,
        })
    };
    let finished_at_ms = now_ms();
    let mut report = StepReport {
        id: job.step.id.clone(),
        destination: job.destination.clone(),
        state: state_of(state),
        outcome: StepOutcome::Failed,
        bytes: 0,
        attempts: 0,
        started_at_ms,
        finished_at_ms,
        error: None,
    };
    match result {
        Ok(outcome) => {
            report.outcome = match (state.needs_upload(), outcome.kind) {
                (false, _) => StepOutcome::Skipped,
                (true, UploadKind::Uploaded) => StepOutcome::Uploaded,
                (true, UploadKind::AlreadyPresent) => StepOutcome::AlreadyPresent,
            };
            report.bytes = outcome.bytes;
            report.attempts = outcome.attempts;
            // An upload printed its own line (size and rate) when it ended.
            if !state.needs_upload() {
                reporter.line(&format!(
                    "{:<16} {}  ({} bytes, {:.1}s)",
                    report.outcome,
                    job.step.id,
                    outcome.bytes,
                    Duration::from_millis(finished_at_ms - started_at_ms).as_secs_f64()
                ));
            }
            (report, None)
        }
        Err(error) => {
            report.outcome = StepOutcome::Failed;
            report.error = Some(render(&*error));
            reporter.line(&format!("failed           {}", job.step.id));
            (report, Some(error))
        }
    }
}

pub(super) fn state_of(state: &RemoteState) -> StepState {
    match state {
        RemoteState::Absent => StepState::Absent,
        RemoteState::Identical => StepState::Identical,
        RemoteState::Replaceable { .. } => StepState::Replaceable,
        RemoteState::Conflict { .. } => StepState::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_labels_are_shortened() {
        let hex = "ff310ed721d7cf7bbd7da89d9a115955903824cdbf2adb0a418eeffd396daa06";
        assert_eq!(
            short_digests(&format!("r/x@sha256:{hex} (referrer of sha256:{hex})")),
            "r/x@sha256:ff310ed721d7… (referrer of sha256:ff310ed721d7…)"
        );
        assert_eq!(short_digests("r/x:0.3.1"), "r/x:0.3.1");
        assert_eq!(short_digests("sha256:abc"), "sha256:abc");
    }
}
