//! `publish`: executes the publish half of the plan from `dist/manifest.json` alone. Verify
//! every file, resolve and check every credential, ask each registry what it already has,
//! then upload in dependency order (independent steps in parallel), verify what the registry
//! serves, and record everything in `dist/publish-report.json`. Re-running after any failure
//! finishes the release: identical content is skipped, different content is a conflict.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use castoff_archive::digest;
use castoff_plan::Manifest;
use castoff_plan::manifest::{ManifestArtifact, ManifestStep};
use castoff_plan::report::{PublishReport, REPORT_SCHEMA_VERSION, StepReport};
use castoff_registry::env::{Environment, ProcessEnvironment};
use castoff_registry::http::UploadProgress;
use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry, NpmTarball, Npmrc};
use castoff_registry::oci::{
    Digest, OciClient, OciCredentials, OciLayout, OciRepository, PushOptions,
};
use castoff_registry::oidc::GithubOidc;
use castoff_registry::pypi::{
    PypiClient, PypiCredentials, PypiRepository, Pypirc, PypircRepository, WheelFile,
};
use castoff_registry::{HttpClient, HttpConfig, RemoteState, UploadKind, UploadOutcome};

/// Environment variables of the publish command (beside castoff-registry's credentials).
pub mod vars {
    /// Upload URL of the Python index (`pypi`, `testpypi` or a URL); default `pypi`.
    pub const PYPI_URL: &str = "CASTOFF_PYPI_URL";
    /// Simple index of that upload URL, when castoff cannot derive it.
    pub const PYPI_INDEX_URL: &str = "CASTOFF_PYPI_INDEX_URL";
    /// npm registry URL; default: `.npmrc`'s `registry`, else registry.npmjs.org.
    pub const NPM_REGISTRY: &str = "CASTOFF_NPM_REGISTRY";
    /// Image repository replacing the configured one (only when one app has images).
    pub const OCI_REPOSITORY: &str = "CASTOFF_OCI_REPOSITORY";
    /// Registry host replacing the configured one in every app's repository.
    pub const OCI_REGISTRY: &str = "CASTOFF_OCI_REGISTRY";
}

/// How to run `publish`.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub dist_dir: PathBuf,
    /// The workspace root, for the project's `.npmrc`.
    pub workspace_root: PathBuf,
    /// The workspace (`cargo metadata`): its plan says where every step goes, and
    /// `dist/manifest.json` must agree with it before anything is sent.
    pub workspace: cargo_metadata::Metadata,
    /// A minisign public key: `dist/manifest.json` must carry a valid signature by it
    /// (`manifest.json.minisig`), checked before anything else.
    pub verify_key: Option<crate::sign::VerifyingKey>,
    /// Verify, check credentials and ask the registries, then stop.
    pub dry_run: bool,
    /// Run only steps whose id contains one of these (empty: all).
    pub only: Vec<String>,
    /// Leave out steps whose id contains one of these.
    pub skip: Vec<String>,
    pub pypi_url: Option<String>,
    pub pypi_index_url: Option<String>,
    /// A `.pypirc` section to take the URL and credentials from.
    pub pypi_repository: Option<String>,
    pub npm_registry: Option<String>,
    pub oci_repository: Option<String>,
    pub oci_registry: Option<String>,
    pub http: HttpConfig,
    /// Steps running at once.
    pub jobs: usize,
}

/// Receives one line per event of the run, and the progress of byte-counted work (uploads,
/// compression); the CLI draws them. Libraries report through this trait; only the CLI draws.
pub trait Reporter: Sync {
    fn line(&self, text: &str);
    /// Starts a byte-counted piece of work (an upload, a compression); the handle reports
    /// progress and the end. Default: nothing is drawn.
    fn task(&self, label: &str, total_bytes: u64) -> Box<dyn Task + '_> {
        let _ = (label, total_bytes);
        Box::new(NoTask)
    }
}

/// Progress of one byte-counted piece of work started with [`Reporter::task`].
pub trait Task: Send + Sync {
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The work ended; `outcome` is a short word or phrase ("uploaded", "failed: …").
    fn finish(&self, outcome: &str);
}

/// A [`Task`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTask;

impl Task for NoTask {
    fn advance(&self, _bytes: u64) {}
    fn finish(&self, _outcome: &str) {}
}

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
        write!(
            f,
            "\nhint: a published version is immutable: bump the version and run `dist` again, or leave these steps out with --skip"
        )
    }
}

impl std::error::Error for ConflictError {}

/// The clients of one run, one per destination. Keys carry the step's configured
/// destination (`None`: the channel's default); npm by package, OCI by app.
struct Destinations {
    pypi: BTreeMap<Option<String>, PypiClient>,
    npm: BTreeMap<(String, Option<String>), NpmClient>,
    oci: BTreeMap<(String, Option<String>), OciClient>,
}

/// One step, with everything needed to run it.
struct Job<'a> {
    step: &'a ManifestStep,
    destination: String,
    action: Action,
}

enum Action {
    Pypi(WheelFile),
    Npm(NpmTarball, String),
    OciManifest(OciLayout, Digest),
    OciTag(OciLayout, Digest, String, bool),
    /// (layout, subject image manifest, SBOM artifact manifest)
    OciSbom(OciLayout, Digest, Digest),
}

/// Runs `publish` and returns its report (also written to `dist/publish-report.json`).
pub fn publish(options: &PublishOptions, reporter: &dyn Reporter) -> anyhow::Result<PublishReport> {
    let manifest_path = options.dist_dir.join("manifest.json");
    let manifest_text = fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "could not read {}\nhint: run `castoff dist` first; `publish` uploads only what `dist` built",
            manifest_path.display()
        )
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

    // 1. Every file must be exactly what `dist` described, before any network traffic.
    verify_files(&manifest, &options.dist_dir)?;
    reporter.line(&format!(
        "verified {} artifact(s) in {}",
        manifest
            .artifacts
            .iter()
            .filter(|a| a.path.is_some())
            .count(),
        options.dist_dir.display()
    ));

    let selected: Vec<&ManifestStep> = manifest
        .steps
        .iter()
        .filter(|step| is_selected(step, options))
        .collect();

    // 2. Credentials and clients for every destination; all problems at once.
    let environment = ProcessEnvironment;
    let http = HttpClient::new(options.http.clone())?;
    let destinations = connect(&manifest, &selected, options, &http, &environment)?;
    let jobs = prepare_jobs(&manifest, &selected, options, &destinations)?;
    check_upload_limits(&manifest, &jobs, &destinations)?;

    // 3. Ask each registry what it has.
    let mut states: BTreeMap<String, RemoteState> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for job in &jobs {
        // A spinner while the registry answers (0 bytes: it prints nothing itself).
        let query = reporter.task(&format!("asking {}", short_digests(&job.destination)), 0);
        let state = query_state(job, &destinations);
        query.finish(if state.is_ok() { "asked" } else { "failed" });
        drop(query);
        let state = state
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

    let mut reports: BTreeMap<String, StepReport> = manifest
        .steps
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
                        .map_or("unknown", state_name)
                        .to_owned(),
                    outcome: if job.is_some() { "not-run" } else { "excluded" }.to_owned(),
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
                "would-upload"
            } else {
                "skipped"
            }
            .to_owned();
        }
        return finish(options, &manifest, reports, true);
    }

    // 4. + 5. Upload in dependency order, in parallel where the edges allow, and verify.
    let uploads = jobs
        .iter()
        .filter(|job| states[&job.step.id].needs_upload())
        .count();
    if uploads > 0 {
        reporter.line(&format!("uploading {uploads} step(s)"));
    }
    let failures = execute(
        &jobs,
        &states,
        &destinations,
        options.jobs.max(1),
        reporter,
        &mut reports,
    );
    let report = finish(options, &manifest, reports, false)?;
    if let Some((step, error)) = failures.into_iter().next() {
        return Err(error.context(format!(
            "publishing stopped at {step}; what finished is recorded in {}\nhint: fix the cause and run `publish` again: finished steps are skipped",
            options.dist_dir.join("publish-report.json").display()
        )));
    }
    Ok(report)
}

/// `dist/manifest.json` must say what the workspace's configuration says about where each
/// artifact goes: destinations are never taken from a file alone (it could have been edited,
/// or built from another configuration), so any difference stops the run before a request.
fn check_against_workspace(
    manifest: &Manifest,
    workspace: &cargo_metadata::Metadata,
    manifest_path: &Path,
) -> anyhow::Result<()> {
    let mut targets: Vec<String> = Vec::new();
    for app in &manifest.apps {
        for target in &app.targets {
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
    }
    let release = castoff_plan::plan(
        workspace,
        &castoff_plan::PlanOptions {
            packages: manifest.apps.iter().map(|app| app.name.clone()).collect(),
            targets,
        },
    )
    .map_err(|error| {
        anyhow!(
            "{error}\nhint: publish checks {} against the workspace's configuration; fix the configuration (or run publish in the workspace that built dist/)",
            manifest_path.display()
        )
    })?;
    let planned = Manifest::from_release(&release, &manifest.castoff_version);
    let mut differences = manifest.differences_from(&planned);
    // File names are what registries know artifacts by (a wheel's name on PyPI): each path
    // must be the one dist gives the artifact.
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let id = &planned.artifacts[index].id;
        let Some(path) = manifest
            .artifacts
            .iter()
            .find(|a| &a.id == id)
            .and_then(|a| a.path.as_deref())
        else {
            continue;
        };
        let app = &release.apps[artifact.app.0];
        if let Some(expected) =
            crate::dist::expected_path_problem(app, artifact.kind, artifact.target, path)
        {
            differences.push(format!(
                "artifact `{id}` path: dist/manifest.json has `{path}`, dist names it {expected}"
            ));
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = differences.iter().take(10).cloned().collect();
    let more = differences
        .len()
        .checked_sub(10)
        .filter(|more| *more > 0)
        .map_or_else(String::new, |more| format!("\n  and {more} more"));
    bail!(
        "{} does not match the workspace's configuration; nothing was sent\n  {}{more}\nhint: run `castoff dist` again: dist/ was built from another configuration, or edited after it was built",
        manifest_path.display(),
        shown.join("\n  ")
    )
}

fn state_name(state: &RemoteState) -> &'static str {
    match state {
        RemoteState::Absent => "absent",
        RemoteState::Identical => "identical",
        RemoteState::Replaceable { .. } => "replaceable",
        RemoteState::Conflict { .. } => "conflict",
    }
}

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

/// Re-hashes every file the manifest names; for an image layout, every blob against its name.
pub(crate) fn verify_files(manifest: &Manifest, dist_dir: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for artifact in &manifest.artifacts {
        let Some(relative) = &artifact.path else {
            continue;
        };
        // A hand-edited manifest must not make publish read (and upload) a file outside dist/.
        if Path::new(relative)
            .components()
            .any(|component| !matches!(component, std::path::Component::Normal(_)))
        {
            problems.push(format!(
                "{}: path `{relative}` leaves dist/ (paths in the manifest are relative, without `..`)",
                artifact.id
            ));
            continue;
        }
        let path = dist_dir.join(relative);
        // Not followed through a link: dist/ may come from another machine (a CI artifact),
        // and only what `dist` wrote there is published.
        if fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir()) {
            if let Err(problem) = verify_layout(&path, artifact.digest.as_deref()) {
                problems.push(format!("{}: {problem}", path.display()));
            }
            continue;
        }
        let Some(expected) = &artifact.sha256 else {
            continue;
        };
        // A regular file of at most the recorded size, never a link, FIFO or device.
        let size_limit = artifact.size.unwrap_or(0);
        match castoff_archive::foreign::open_regular(&path, size_limit)
            .map_err(anyhow::Error::from)
            .and_then(|(file, _)| {
                Ok(digest::sha256_reader(std::io::Read::take(
                    file,
                    size_limit.saturating_add(1),
                ))?)
            }) {
            Ok((sha, size)) => {
                let actual = digest::hex(&sha);
                if &actual != expected || Some(size) != artifact.size {
                    problems.push(format!(
                        "{}: sha256 {actual} ({size} bytes) but the manifest says {expected} ({} bytes)",
                        path.display(),
                        artifact.size.unwrap_or(0)
                    ));
                }
            }
            // castoff_archive::foreign's errors name the file already.
            Err(error) if error.to_string().starts_with(&path.display().to_string()) => {
                problems.push(error.to_string())
            }
            Err(error) => problems.push(format!("{}: {error}", path.display())),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "dist/ does not match its manifest; nothing was uploaded:\n  {}\nhint: run `castoff dist` again; never edit dist/ by hand",
        problems.join("\n  ")
    )
}

fn verify_layout(dir: &Path, index_digest: Option<&str>) -> Result<(), String> {
    let blobs = dir.join("blobs/sha256");
    let entries = fs::read_dir(&blobs).map_err(|error| format!("cannot list blobs: {error}"))?;
    for entry in entries {
        let entry = entry.map_err(|error| error.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (file, _) = castoff_archive::foreign::open_regular(&entry.path(), u64::MAX)
            .map_err(|error| error.to_string())?;
        let (sha, _) = digest::sha256_reader(file).map_err(|error| error.to_string())?;
        if digest::hex(&sha) != name {
            return Err(format!("blob {name} has sha256 {}", digest::hex(&sha)));
        }
    }
    if let Some(index) = index_digest {
        let hex = index.strip_prefix("sha256:").unwrap_or(index);
        if !blobs.join(hex).is_file() {
            return Err(format!("the index {index} is missing"));
        }
        // Every manifest, config and layer the index reaches must be there too, so a missing
        // blob stops the run before the first upload rather than in the middle of it.
        let layout = OciLayout::open(dir).map_err(|error| error.to_string())?;
        let mut pending: Vec<Digest> = vec![index.parse()?];
        while let Some(digest) = pending.pop() {
            let blob = layout
                .manifest(&digest)
                .map_err(|error| error.to_string())?;
            for descriptor in &blob.blobs {
                if !layout.blob_path(&descriptor.digest).is_file() {
                    return Err(format!(
                        "blob {} (referenced by {digest}) is missing",
                        descriptor.digest
                    ));
                }
            }
            pending.extend(blob.children.into_iter().map(|child| child.digest));
        }
    }
    Ok(())
}

/// The image repository an app's steps go to, after --oci-repository / --oci-registry.
fn oci_repository_of(
    manifest: &Manifest,
    app: &str,
    options: &PublishOptions,
) -> anyhow::Result<String> {
    let configured = manifest
        .apps
        .iter()
        .find(|a| a.name == app)
        .and_then(|a| a.oci.as_ref())
        .map(|oci| oci.repository.clone())
        .context("internal error: an image step of an app without images")?;
    let override_repository = options
        .oci_repository
        .clone()
        .or_else(|| ProcessEnvironment.var(vars::OCI_REPOSITORY));
    if let Some(repository) = override_repository {
        let apps_with_images = manifest.apps.iter().filter(|a| a.oci.is_some()).count();
        if apps_with_images > 1 {
            bail!(
                "--oci-repository names one repository, but {apps_with_images} apps have images\nhint: use --oci-registry HOST[:PORT] to move every app's repository to another registry"
            );
        }
        return Ok(repository);
    }
    let registry = options
        .oci_registry
        .clone()
        .or_else(|| ProcessEnvironment.var(vars::OCI_REGISTRY));
    Ok(match registry {
        Some(registry) => {
            let path = configured.split_once('/').map_or("", |(_, path)| path);
            format!("{}/{path}", registry.trim_end_matches('/'))
        }
        None => configured,
    })
}

/// Resolves credentials and builds one client per destination. Every problem is collected
/// and reported together, before anything is uploaded.
fn connect(
    manifest: &Manifest,
    steps: &[&ManifestStep],
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<Destinations> {
    let mut problems: Vec<String> = Vec::new();
    let mut destinations = Destinations {
        pypi: BTreeMap::new(),
        npm: BTreeMap::new(),
        oci: BTreeMap::new(),
    };
    let oidc = GithubOidc::from_env(environment);

    // Bare credential variables go only to a channel's sole destination: counted over the
    // whole manifest, so `--only` one destination does not make it the sole one.
    let distinct = |kind: &str| -> usize {
        manifest
            .steps
            .iter()
            .filter(|step| step.kind == kind)
            .map(|step| &step.destination)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let pypi_sole = distinct("pypi-upload") <= 1;
    let npm_sole = distinct("npm-publish") <= 1;
    let pypi_destinations: BTreeSet<Option<String>> = steps
        .iter()
        .filter(|step| step.kind == "pypi-upload")
        .map(|step| step.destination.clone())
        .collect();
    for destination in pypi_destinations {
        match connect_pypi(
            options,
            http,
            environment,
            oidc.as_ref(),
            destination.as_deref(),
            pypi_sole,
        ) {
            Ok(client) => {
                destinations.pypi.insert(destination, client);
            }
            Err(error) => problems.push(format!(
                "PyPI{}: {}",
                destination.map_or_else(String::new, |d| format!(" ({d})")),
                error_text(&error)
            )),
        }
    }

    let npm_packages: BTreeSet<(String, Option<String>)> = steps
        .iter()
        .filter(|step| step.kind == "npm-publish")
        .filter_map(|step| {
            let name = artifact_of(manifest, step)?.registry_name.clone()?;
            Some((name, step.destination.clone()))
        })
        .collect();
    if !npm_packages.is_empty() {
        match load_npmrc(&options.workspace_root, environment) {
            Err(error) => problems.push(format!("npm: {error}")),
            Ok(npmrc) => {
                for (package, registry) in npm_packages {
                    let connected = connect_npm(
                        &package,
                        registry.as_deref(),
                        npm_sole,
                        &npmrc,
                        options,
                        http,
                        environment,
                        oidc.as_ref(),
                    );
                    match connected {
                        Ok(client) => {
                            destinations.npm.insert((package, registry), client);
                        }
                        Err(error) => {
                            problems.push(format!("npm ({package}): {}", error_text(&error)))
                        }
                    }
                }
            }
        }
    }

    let oci_keys: BTreeSet<(String, Option<String>)> = steps
        .iter()
        .filter(|step| step.kind.starts_with("oci-"))
        .map(|step| (step.app.clone(), step.destination.clone()))
        .collect();
    let mut repositories: Vec<((String, Option<String>), String)> = Vec::new();
    for (app, mirror) in oci_keys {
        let repository = match &mirror {
            Some(mirror) => Ok(mirror.clone()),
            None => oci_repository_of(manifest, &app, options),
        };
        match repository {
            Ok(repository) => repositories.push(((app, mirror), repository)),
            Err(error) => problems.push(format!("image of {app}: {}", error_text(&error))),
        }
    }
    let all_repositories: Vec<String> = repositories.iter().map(|(_, r)| r.clone()).collect();
    for (key, repository) in repositories {
        // The app's own repository is the push registry the bare variables are for; its
        // mirrors get them only when they are on that same registry.
        let push_host = oci_repository_of(manifest, &key.0, options)
            .ok()
            .and_then(|primary| OciRepository::parse(&primary).ok())
            .map(|primary| primary.host());
        match connect_oci(
            &repository,
            &all_repositories,
            push_host.as_deref(),
            http,
            environment,
        ) {
            Ok(client) => {
                destinations.oci.insert(key, client);
            }
            Err(error) => problems.push(format!(
                "image {}: {}",
                castoff_plan::names::redact_userinfo(&repository),
                error_text(&error)
            )),
        }
    }

    if problems.is_empty() {
        return Ok(destinations);
    }
    bail!(
        "cannot publish: {} problem(s) found before any upload:\n  {}",
        problems.len(),
        problems.join("\n  ").replace("\nhint: ", "\n    hint: ")
    )
}

/// Refuses, before any upload, every wheel and npm tarball larger than its destination's
/// limit (`limits.rs`: configured, else the registry's known default); all at once.
fn check_upload_limits(
    manifest: &Manifest,
    jobs: &[Job<'_>],
    destinations: &Destinations,
) -> anyhow::Result<()> {
    use crate::limits::{Channel, check};
    let mut problems = Vec::new();
    for job in jobs {
        let app = manifest.apps.iter().find(|app| app.name == job.step.app);
        let size = artifact_of(manifest, job.step).and_then(|artifact| artifact.size);
        let checked = match (&job.action, size) {
            (Action::Pypi(wheel), Some(size)) => check(
                Channel::Pypi,
                &wheel.filename,
                size,
                &castoff_registry::error::display_url(
                    &destinations.pypi[&job.step.destination]
                        .repository()
                        .upload_url,
                ),
                app.and_then(|app| app.python.as_ref())
                    .and_then(|python| python.upload_limit),
            ),
            (Action::Npm(tarball, _), Some(size)) => check(
                Channel::Npm,
                &format!("{}@{}", tarball.name, tarball.version),
                size,
                &castoff_registry::error::display_url(
                    &destinations.npm[&(tarball.name.clone(), job.step.destination.clone())]
                        .registry()
                        .url,
                ),
                app.and_then(|app| app.npm.as_ref())
                    .and_then(|npm| npm.upload_limit),
            ),
            _ => Ok(()),
        };
        if let Err(problem) = checked {
            problems.push(format!("{}: {problem}", job.step.id));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot publish: {} artifact(s) too large for their registry, found before any upload:\n  {}",
        problems.len(),
        problems.join("\n  ").replace("\nhint: ", "\n    hint: ")
    )
}

/// The message of an error and its causes, on one line each.
fn error_text(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn read_pypirc_section(
    environment: &dyn Environment,
    name: &str,
    required: bool,
) -> anyhow::Result<Option<PypircRepository>> {
    let path = home_dir(environment).join(".pypirc");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !required => return Ok(None),
        Err(error) => bail!(
            "the PyPI repository `{name}` needs {}, which cannot be read: {error}\nhint: add a [{name}] section with `repository`, `username` and `password`, or name an upload URL",
            path.display()
        ),
    };
    let pypirc = Pypirc::parse(&text).map_err(|problem| {
        anyhow!(
            "{}: {problem}\nhint: fix the file's syntax (INI)",
            path.display()
        )
    })?;
    match pypirc.repository(name) {
        Some(section) => Ok(Some(section)),
        None if !required => Ok(None),
        None => bail!(
            "{} has no repository `{name}`\nhint: add a [{name}] section, or name an upload URL",
            path.display()
        ),
    }
}

/// One PyPI destination: `None` is the default (`--pypi-url`, `CASTOFF_PYPI_URL`,
/// `--pypi-repository`, else PyPI); `Some` is an entry of `python.repositories` (`pypi`,
/// `testpypi`, an upload URL, or a `~/.pypirc` section, whose credentials then come first).
fn connect_pypi(
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
    oidc: Option<&GithubOidc>,
    destination: Option<&str>,
    sole_destination: bool,
) -> anyhow::Result<PypiClient> {
    let (url, index, pypirc_repository) = match destination {
        Some(name) => {
            let is_url = name.starts_with("https://") || name.starts_with("http://");
            let builtin = matches!(name, "pypi" | "testpypi");
            let section = if is_url {
                None
            } else {
                read_pypirc_section(environment, name, !builtin)?
            };
            let url = match (&section, is_url || builtin) {
                (_, true) => name.to_owned(),
                (Some(section), false) => section.repository.clone().with_context(|| {
                    format!("the ~/.pypirc section [{name}] has no `repository` URL\nhint: add `repository = <upload URL>` to it")
                })?,
                (None, false) => unreachable!("a required section was read or refused"),
            };
            (url, None, section)
        }
        None => {
            let pypirc_repository = match &options.pypi_repository {
                Some(name) => read_pypirc_section(environment, name, true)?,
                None => None,
            };
            let url = options
                .pypi_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_URL))
                .or_else(|| {
                    pypirc_repository
                        .as_ref()
                        .and_then(|r| r.repository.clone())
                })
                .unwrap_or_else(|| "pypi".to_owned());
            let index = options
                .pypi_index_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_INDEX_URL));
            (url, index, pypirc_repository)
        }
    };
    refuse_credentials_in_url("PyPI upload URL", &url, PYPI_CREDENTIALS_HINT)?;
    if let Some(index) = &index {
        refuse_credentials_in_url("PyPI index URL", index, PYPI_CREDENTIALS_HINT)?;
    }
    // The destination's own variable, then the bare variables when this is the only index,
    // then its ~/.pypirc section (castoff_registry::pypi::PypiCredentials::resolve).
    let key = pypi_destination_key(destination, &url);
    let mut credentials = PypiCredentials::resolve(
        environment,
        pypirc_repository.as_ref(),
        Some(&key),
        sole_destination,
    );
    if credentials == PypiCredentials::None {
        let repository = PypiRepository::new(&url, index.as_deref(), PypiCredentials::None)?;
        match oidc {
            Some(oidc) => {
                let token = castoff_registry::pypi::trusted_publishing_token(
                    http,
                    &repository.upload_url,
                    oidc,
                )?;
                credentials = PypiCredentials::Token(token);
            }
            None if !sole_destination => bail!(
                "no credentials for {}\nhint: python.repositories names several indexes, so CASTOFF_PYPI_TOKEN and TWINE_USERNAME/TWINE_PASSWORD go to none of them; set {} for this one, give it a ~/.pypirc section with a password, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&repository.upload_url),
                castoff_registry::env::host_qualified(
                    castoff_registry::env::CASTOFF_PYPI_TOKEN,
                    &key
                ),
            ),
            None => bail!(
                "no credentials for {}\nhint: set CASTOFF_PYPI_TOKEN (an API token), TWINE_USERNAME/TWINE_PASSWORD, pass --pypi-repository with a ~/.pypirc section, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&repository.upload_url)
            ),
        }
    }
    let repository = PypiRepository::new(&url, index.as_deref(), credentials)?;
    let client = PypiClient::new(http, repository)?;
    // Wrong credentials must stop the run before any channel uploads anything.
    client.check_credentials()?;
    Ok(client)
}

/// The name a PyPI destination's own credential variable carries: a `python.repositories`
/// name (`testpypi`, a `~/.pypirc` section), else the upload URL's host.
fn pypi_destination_key(destination: Option<&str>, url: &str) -> String {
    match destination {
        Some(name) if !name.starts_with("https://") && !name.starts_with("http://") => {
            name.to_owned()
        }
        _ => match url {
            "pypi" | "testpypi" => url.to_owned(),
            _ => url_host(url).unwrap_or_else(|| url.to_owned()),
        },
    }
}

/// `host[:port]` of a URL, if it is one.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

const PYPI_CREDENTIALS_HINT: &str = "remove `user:password@` from the URL and set CASTOFF_PYPI_TOKEN (an API token) or TWINE_USERNAME/TWINE_PASSWORD, or put them in a ~/.pypirc section";

/// Credentials written into a URL are refused, never silently dropped or used: they would
/// show in logs, process lists and shell history. The message shows the URL redacted.
fn refuse_credentials_in_url(what: &str, url: &str, hint: &str) -> anyhow::Result<()> {
    let redacted = castoff_plan::names::redact_userinfo(url);
    if redacted == url {
        return Ok(());
    }
    bail!(
        "{what} {redacted}: credentials written into the URL are refused (they would show in logs and process lists)\nhint: {hint}"
    )
}

fn home_dir(environment: &dyn Environment) -> PathBuf {
    environment
        .var(castoff_registry::env::HOME)
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The project's `.npmrc` layered over the user's, like npm reads them.
fn load_npmrc(workspace_root: &Path, environment: &dyn Environment) -> anyhow::Result<Npmrc> {
    let read = |path: PathBuf| -> anyhow::Result<Npmrc> {
        match fs::read_to_string(&path) {
            Ok(text) => Npmrc::parse(&text, environment).map_err(|problem| {
                anyhow!(
                    "{}: {problem}\nhint: fix the line, or the variable it names",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Npmrc::default()),
            Err(error) => Err(anyhow!("cannot read {}: {error}", path.display())),
        }
    };
    let user_path = environment
        .var("NPM_CONFIG_USERCONFIG")
        .map_or_else(|| home_dir(environment).join(".npmrc"), PathBuf::from);
    let user = read(user_path)?;
    let project = read(workspace_root.join(".npmrc"))?;
    Ok(project.layered_over(user))
}

/// One npm destination: `configured` is an entry of `npm.registries`; without one, the
/// registry comes from `--npm-registry`, `CASTOFF_NPM_REGISTRY`, `.npmrc`, else npmjs.
#[allow(clippy::too_many_arguments)]
fn connect_npm(
    package: &str,
    configured: Option<&str>,
    sole_destination: bool,
    npmrc: &Npmrc,
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
    oidc: Option<&GithubOidc>,
) -> anyhow::Result<NpmClient> {
    let url = match configured {
        Some(url) => url.to_owned(),
        None => options
            .npm_registry
            .clone()
            .or_else(|| environment.var(vars::NPM_REGISTRY))
            .or_else(|| npmrc.registry_for(package).map(str::to_owned))
            .unwrap_or_else(|| castoff_registry::npm::NPMJS_REGISTRY.to_owned()),
    };
    refuse_credentials_in_url(
        "npm registry URL",
        &url,
        "remove `user:password@` from the URL and put the token in .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN",
    )?;
    let registry = NpmRegistry::new(&url, NpmCredentials::None)?;
    let mut credentials =
        NpmCredentials::resolve(environment, npmrc, &registry.url, sole_destination);
    if credentials == NpmCredentials::None {
        let id_token = match environment.var(castoff_registry::env::NPM_ID_TOKEN) {
            Some(token) => Some(castoff_registry::Secret::new(token)),
            None => match oidc {
                Some(oidc) => {
                    Some(oidc.id_token(http, &castoff_registry::npm::oidc_audience(&registry.url))?)
                }
                None => None,
            },
        };
        match id_token {
            Some(id_token) => {
                let token = castoff_registry::npm::oidc_token_exchange(
                    http,
                    &registry.url,
                    package,
                    &id_token,
                )?;
                credentials = NpmCredentials::Token(token);
            }
            None if !sole_destination => bail!(
                "no credentials for {}\nhint: npm.registries names several registries, so NODE_AUTH_TOKEN and NPM_TOKEN go to none of them; add `{}:_authToken=${{A_VARIABLE}}` for this registry to .npmrc (each registry its own variable), or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&registry.url),
                castoff_registry::error::display_url(&registry.url)
                    .split_once(':')
                    .map_or_else(String::new, |(_, rest)| rest.to_owned()),
            ),
            None => bail!(
                "no credentials for {}\nhint: add `//host/:_authToken=${{NPM_TOKEN}}` to .npmrc, set NODE_AUTH_TOKEN or NPM_TOKEN, or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&registry.url)
            ),
        }
    }
    let client = NpmClient::new(http, NpmRegistry::new(&url, credentials)?)?;
    client.whoami()?;
    Ok(client)
}

fn connect_oci(
    repository: &str,
    all_repositories: &[String],
    push_host: Option<&str>,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<OciClient> {
    let parsed = OciRepository::parse(repository)?;
    let credentials = castoff_registry::oci::resolve_credentials(environment, &parsed, push_host)?;
    let unbound_note =
        castoff_registry::oci::unbound_variables_note(environment, &parsed, push_host);
    // Blobs shared with another app's image on the same registry are mounted, not re-sent.
    let mount_from = all_repositories
        .iter()
        .filter(|other| other.as_str() != repository)
        .filter_map(|other| OciRepository::parse(other).ok())
        .filter(|other| other.registry == parsed.registry)
        .map(|other| other.name)
        .collect();
    let anonymous = matches!(credentials, OciCredentials::Anonymous);
    let mut options = PushOptions {
        mount_from,
        ..PushOptions::default()
    };
    if let Some(value) = environment.var(castoff_registry::env::CASTOFF_OCI_MAX_BODY) {
        let max_body = value.trim().parse::<u64>().ok().filter(|&bytes| bytes > 0);
        let Some(max_body) = max_body else {
            anyhow::bail!(
                "{}=`{value}` is not a number of bytes\nhint: set the largest request body the registry (or the proxy in front of it) accepts, e.g. 50000000, or unset it",
                castoff_registry::env::CASTOFF_OCI_MAX_BODY
            );
        };
        options = options.with_max_body(max_body);
    }
    let client = OciClient::new(http, parsed, credentials, options)?;
    client.preflight().map_err(|error| {
        let error = anyhow::Error::from(error);
        if anonymous {
            match &unbound_note {
                Some(note) => error.context(format!(
                    "no credentials were found for this registry\nhint: {note}"
                )),
                None => error.context("no credentials were found for this registry"),
            }
        } else {
            error
        }
    })?;
    Ok(client)
}

fn artifact_of<'a>(manifest: &'a Manifest, step: &ManifestStep) -> Option<&'a ManifestArtifact> {
    manifest
        .artifacts
        .iter()
        .find(|artifact| artifact.id == step.artifact)
}

fn prepare_jobs<'a>(
    manifest: &'a Manifest,
    steps: &[&'a ManifestStep],
    options: &PublishOptions,
    destinations: &Destinations,
) -> anyhow::Result<Vec<Job<'a>>> {
    let mut jobs = Vec::new();
    for step in steps {
        let artifact = artifact_of(manifest, step)
            .with_context(|| format!("the manifest's step {} names no known artifact", step.id))?;
        let path = || {
            artifact
                .path
                .as_ref()
                .map(|path| options.dist_dir.join(path))
                .with_context(|| format!("{} was not built: dist/ has no file for it", artifact.id))
        };
        let (destination, action) = match step.kind.as_str() {
            "pypi-upload" => {
                let client = destinations
                    .pypi
                    .get(&step.destination)
                    .context("internal error: no PyPI client")?;
                let wheel = WheelFile::open(&path()?)?;
                let url = castoff_registry::error::display_url(&client.repository().upload_url);
                (format!("{url} ({})", wheel.filename), Action::Pypi(wheel))
            }
            "npm-publish" => {
                let name = artifact.registry_name.clone().unwrap_or_default();
                let client = destinations
                    .npm
                    .get(&(name.clone(), step.destination.clone()))
                    .context("internal error: no npm client")?;
                let tarball = NpmTarball::open(&path()?)?;
                let tag = manifest
                    .apps
                    .iter()
                    .find(|app| app.name == step.app)
                    .and_then(|app| app.npm.as_ref())
                    .map_or_else(
                        || tarball.default_dist_tag().to_owned(),
                        |npm| npm.dist_tag.clone(),
                    );
                let url = castoff_registry::error::display_url(&client.registry().url);
                (
                    format!("{url} ({}@{})", tarball.name, tarball.version),
                    Action::Npm(tarball, tag),
                )
            }
            kind @ ("oci-push-image" | "oci-push-index" | "oci-tag" | "oci-attach-sbom") => {
                let client = destinations
                    .oci
                    .get(&(step.app.clone(), step.destination.clone()))
                    .context("internal error: no registry client")?;
                // Images and the index all live in the app's layout.
                let index = manifest
                    .artifacts
                    .iter()
                    .find(|a| a.kind == "oci-index" && a.app == step.app)
                    .context("the manifest has no image index for this app")?;
                let layout_dir = options.dist_dir.join(
                    index
                        .path
                        .as_ref()
                        .context("the image index was not built")?,
                );
                let layout = OciLayout::open(&layout_dir)?;
                let digest_text = if kind == "oci-push-image" || kind == "oci-attach-sbom" {
                    &artifact.digest
                } else {
                    &index.digest
                };
                let digest: Digest = digest_text
                    .as_deref()
                    .context("the manifest records no digest for this image")?
                    .parse()
                    .map_err(|problem: String| {
                        anyhow!("the manifest's digest is invalid: {problem}")
                    })?;
                let repository = format!(
                    "{}/{}",
                    client.repository().host(),
                    client.repository().name
                );
                if kind == "oci-attach-sbom" {
                    // The subject: this target's image manifest.
                    let image = manifest
                        .artifacts
                        .iter()
                        .find(|a| {
                            a.kind == "oci-image"
                                && a.app == step.app
                                && a.target == artifact.target
                        })
                        .and_then(|image| image.digest.as_deref())
                        .context("the manifest has no image for this SBOM")?;
                    let subject: Digest = image.parse().map_err(|problem: String| {
                        anyhow!("the manifest's digest is invalid: {problem}")
                    })?;
                    jobs.push(Job {
                        step,
                        destination: format!("{repository}@{digest} (referrer of {subject})"),
                        action: Action::OciSbom(layout, subject, digest),
                    });
                    continue;
                }
                match &step.tag {
                    Some(tag) => {
                        let full_version = manifest
                            .apps
                            .iter()
                            .find(|app| app.name == step.app)
                            .and_then(|app| app.oci.as_ref())
                            .and_then(|oci| oci.tags.first())
                            .is_some_and(|first| first == tag);
                        (
                            format!("{repository}:{tag}"),
                            Action::OciTag(layout, digest, tag.clone(), !full_version),
                        )
                    }
                    None => (
                        format!("{repository}@{digest}"),
                        Action::OciManifest(layout, digest),
                    ),
                }
            }
            other => bail!("the manifest has a step kind this castoff does not know: {other}"),
        };
        jobs.push(Job {
            step,
            destination,
            action,
        });
    }
    Ok(jobs)
}

fn query_state(job: &Job<'_>, destinations: &Destinations) -> anyhow::Result<RemoteState> {
    match &job.action {
        Action::Pypi(wheel) => Ok(destinations.pypi[&job.step.destination].state(wheel)?),
        Action::Npm(tarball, _) => Ok(destinations.npm
            [&(tarball.name.clone(), job.step.destination.clone())]
            .state(tarball)?),
        Action::OciManifest(_, digest) => Ok(destinations.oci
            [&(job.step.app.clone(), job.step.destination.clone())]
            .manifest_state(digest)?),
        Action::OciTag(_, digest, tag, floating) => Ok(destinations.oci
            [&(job.step.app.clone(), job.step.destination.clone())]
            .tag_state(tag, digest, *floating)?),
        Action::OciSbom(_, subject, artifact) => Ok(destinations.oci
            [&(job.step.app.clone(), job.step.destination.clone())]
            .referrer_state(subject, artifact)?),
    }
}

/// Uploads (with a progress task: bytes, rate, a line with size and rate at the end), then
/// verifies what the registry serves.
fn run_job(
    job: &Job<'_>,
    destinations: &Destinations,
    reporter: &dyn Reporter,
) -> anyhow::Result<UploadOutcome> {
    let (label, total) = task_of(job);
    let task = reporter.task(&label, total);
    let (result, counted) = watched(&*task, |progress| upload_job(job, destinations, progress));
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
    verify_job(job, destinations)?;
    Ok(outcome)
}

/// A task's label and size: `pypi <wheel file>`, `npm <name>@<version>`, `oci <reference>`
/// (an image's size is all its blobs and manifests; the ones the registry has are not sent,
/// so its bar may end short of the total).
fn task_of(job: &Job<'_>) -> (String, u64) {
    match &job.action {
        Action::Pypi(wheel) => (format!("pypi {}", wheel.filename), wheel.size),
        Action::Npm(tarball, _) => (
            format!("npm {}@{}", tarball.name, tarball.version),
            tarball.size,
        ),
        Action::OciManifest(layout, digest) => (
            format!("oci {}", short_digests(&job.destination)),
            image_size(layout, digest, 0),
        ),
        // A tag sends the manifest again.
        Action::OciTag(layout, digest, ..) => (
            format!("oci {}", short_digests(&job.destination)),
            layout
                .manifest(digest)
                .map_or(0, |manifest| manifest.bytes.len() as u64),
        ),
        // Without the fallback referrers index, if the registry needs one (a few hundred bytes).
        Action::OciSbom(layout, _, artifact) => (
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
fn short_digests(text: &str) -> String {
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

fn upload_job(
    job: &Job<'_>,
    destinations: &Destinations,
    progress: &UploadProgress,
) -> anyhow::Result<UploadOutcome> {
    let oci = || &destinations.oci[&(job.step.app.clone(), job.step.destination.clone())];
    Ok(match &job.action {
        Action::Pypi(wheel) => {
            destinations.pypi[&job.step.destination].upload_with_progress(wheel, progress)?
        }
        Action::Npm(tarball, tag) => destinations.npm
            [&(tarball.name.clone(), job.step.destination.clone())]
            .upload_with_progress(tarball, Some(tag), progress)?,
        Action::OciManifest(layout, digest) => {
            oci().push_with_progress(layout, digest, progress)?
        }
        Action::OciTag(layout, digest, tag, _) => oci().tag(layout, digest, tag)?,
        Action::OciSbom(layout, subject, artifact) => {
            oci().attach_referrer(layout, subject, artifact)?
        }
    })
}

/// After an upload: the registry serves what was sent.
fn verify_job(job: &Job<'_>, destinations: &Destinations) -> anyhow::Result<()> {
    let oci = || &destinations.oci[&(job.step.app.clone(), job.step.destination.clone())];
    match &job.action {
        Action::Pypi(wheel) => destinations.pypi[&job.step.destination].verify(wheel)?,
        Action::Npm(tarball, _) => destinations.npm
            [&(tarball.name.clone(), job.step.destination.clone())]
            .verify(tarball)?,
        Action::OciManifest(_, digest) => oci().verify(digest.as_str(), digest)?,
        Action::OciTag(_, digest, tag, _) => oci().verify(tag, digest)?,
        Action::OciSbom(_, subject, artifact) => {
            let client = oci();
            client.verify(artifact.as_str(), artifact)?;
            if client.referrer_state(subject, artifact)? != RemoteState::Identical {
                bail!(
                    "{artifact} was pushed but is not findable as a referrer of {subject}\nhint: run publish again"
                );
            }
        }
    }
    Ok(())
}

/// Test hook (docs/testing.md): `CASTOFF_TEST_KILL_AT=<step id>:<phase>` aborts the process,
/// as a SIGKILL would (no cleanup, no report), at `before` or `after` the upload of that step,
/// or with `mid-upload[:<bytes>]` once that many bytes of its request bodies were sent
/// (default 1), or panics `before` the upload with `panic` (the worker's panic handling).
/// Unset, it does nothing.
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Runs the jobs on up to `parallel` threads, each as soon as every step it waits for has
/// finished. After a failure no new step starts; the ones running finish.
fn execute(
    jobs: &[Job<'_>],
    states: &BTreeMap<String, RemoteState>,
    destinations: &Destinations,
    parallel: usize,
    reporter: &dyn Reporter,
    reports: &mut BTreeMap<String, StepReport>,
) -> Vec<(String, anyhow::Error)> {
    struct Shared {
        done: BTreeSet<String>,
        started: BTreeSet<String>,
        failed: bool,
        failures: Vec<(String, anyhow::Error)>,
    }
    let job_ids: BTreeSet<&str> = jobs.iter().map(|job| job.step.id.as_str()).collect();
    let shared = Mutex::new(Shared {
        done: BTreeSet::new(),
        started: BTreeSet::new(),
        failed: false,
        failures: Vec::new(),
    });
    let results: Mutex<Vec<(String, StepReport)>> = Mutex::new(Vec::new());
    let wake = std::sync::Condvar::new();

    std::thread::scope(|scope| {
        for _ in 0..parallel.min(jobs.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let mut guard = shared.lock().expect("publish state lock");
                    let next = loop {
                        if guard.failed || guard.started.len() == jobs.len() {
                            break None;
                        }
                        let ready = jobs.iter().find(|job| {
                            !guard.started.contains(&job.step.id)
                                && job.step.after.iter().all(|after| {
                                    // Steps outside this run (excluded) do not hold it up.
                                    guard.done.contains(after) || !job_ids.contains(after.as_str())
                                })
                        });
                        match ready {
                            Some(job) => {
                                guard.started.insert(job.step.id.clone());
                                break Some(job);
                            }
                            None => guard = wake.wait(guard).expect("publish state lock"),
                        }
                    };
                    drop(guard);
                    let Some(job) = next else {
                        wake.notify_all();
                        return;
                    };
                    let started_at_ms = now_ms();
                    let state = &states[&job.step.id];
                    let result = if state.needs_upload() {
                        // A panic inside a job (a bug, or a server answer nobody foresaw) fails
                        // that step like any error: the other workers are not left waiting for
                        // it, and the report is written.
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            kill_point(&job.step.id, "before");
                            let result = run_job(job, destinations, reporter);
                            kill_point(&job.step.id, "after");
                            result
                        }))
                        .unwrap_or_else(|panic| {
                            let message = panic
                                .downcast_ref::<&str>()
                                .map(|text| (*text).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "no message".to_owned());
                            Err(anyhow::anyhow!(
                                "castoff panicked while publishing {}: {message}\nhint: this is a bug in castoff; please report it with the output above. Re-running publish is safe: finished steps are skipped",
                                job.step.id
                            ))
                        })
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
                        state: state_name(state).to_owned(),
                        outcome: String::new(),
                        bytes: 0,
                        attempts: 0,
                        started_at_ms,
                        finished_at_ms,
                        error: None,
                    };
                    let mut guard = shared.lock().expect("publish state lock");
                    match result {
                        Ok(outcome) => {
                            report.outcome = match (state.needs_upload(), outcome.kind) {
                                (false, _) => "skipped",
                                (true, UploadKind::Uploaded) => "uploaded",
                                (true, UploadKind::AlreadyPresent) => "already-present",
                            }
                            .to_owned();
                            report.bytes = outcome.bytes;
                            report.attempts = outcome.attempts;
                            // An upload printed its own line (size and rate) when it ended.
                            if !state.needs_upload() {
                                reporter.line(&format!(
                                    "{:<16} {}  ({} bytes, {:.1}s)",
                                    report.outcome,
                                    job.step.id,
                                    outcome.bytes,
                                    Duration::from_millis(finished_at_ms - started_at_ms)
                                        .as_secs_f64()
                                ));
                            }
                            guard.done.insert(job.step.id.clone());
                        }
                        Err(error) => {
                            report.outcome = "failed".to_owned();
                            report.error = Some(error_text(&error));
                            reporter.line(&format!("failed           {}", job.step.id));
                            guard.failed = true;
                            guard.failures.push((job.step.id.clone(), error));
                        }
                    }
                    results
                        .lock()
                        .expect("results lock")
                        .push((job.step.id.clone(), report));
                    drop(guard);
                    wake.notify_all();
                }
            });
        }
    });
    for (id, report) in results.into_inner().expect("results lock") {
        reports.insert(id, report);
    }
    shared.into_inner().expect("publish state lock").failures
}

fn finish(
    options: &PublishOptions,
    manifest: &Manifest,
    mut reports: BTreeMap<String, StepReport>,
    dry_run: bool,
) -> anyhow::Result<PublishReport> {
    let report = PublishReport {
        schema_version: REPORT_SCHEMA_VERSION,
        castoff_version: env!("CARGO_PKG_VERSION").to_owned(),
        dry_run,
        steps: manifest
            .steps
            .iter()
            .filter_map(|step| reports.remove(&step.id))
            .collect(),
    };
    let path = options.dist_dir.join("publish-report.json");
    let temporary = options.dist_dir.join(".publish-report.json.partial");
    fs::write(&temporary, report.to_json())
        .and_then(|()| fs::rename(&temporary, &path))
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(report)
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
