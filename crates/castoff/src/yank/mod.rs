//! `castoff yank VERSION`: undoes one release on every registry it reached. The workspace's
//! plan says which channels, packages and destinations the release has (as `publish` resolves
//! them, with the same credentials); each channel's [`Undo`] asks its registry what is left to
//! undo ([`Inspection`]), the plan is shown, and after confirmation the changes are made and
//! recorded in `dist/yank-report.json`. Every step starts from the registry's state, so a
//! re-run after a failure finishes the yank and a re-run of a finished one changes nothing.
//!
//! A channel is one module with one [`Undo`] impl: `crates.rs`, `npm.rs`, `oci.rs`, `pypi.rs`.

mod crates;
mod npm;
mod oci;
mod previous;
mod pypi;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use castoff_plan::manifest::ManifestStep;
use castoff_plan::yank_report::{
    YANK_REPORT_SCHEMA_VERSION, YankOutcome, YankReport, YankState, YankStepReport,
};
use castoff_plan::{Channel, Manifest, PlanOptions, StepKindName};
use castoff_registry::HttpClient;
use castoff_registry::connect::{PypiDestination, Sources};
use castoff_registry::env::{Environment, ProcessEnvironment};
use castoff_registry::oidc::GithubOidc;
use castoff_registry::pypi::{IndexKind, PypiClient, PypiCredentials, PypiRepository};
use semver::Version;

use crate::hint::{Hinted, LIST_HINT, render_with};
use crate::publish::{PublishOptions, vars};
use crate::report::Reporter;

/// How to run `yank`.
#[derive(Debug, Clone)]
pub struct YankOptions {
    /// The release to undo, as Cargo spells it.
    pub version: Version,
    /// The deprecation message npm shows (default: [`default_message`]).
    pub message: Option<String>,
    /// Where `yank-report.json` goes (created when missing).
    pub dist_dir: PathBuf,
    /// Ask the registries and show the plan, change nothing.
    pub dry_run: bool,
    /// The packages whose release is undone (empty: all).
    pub packages: Vec<String>,
    /// The workspace and the destination flags, exactly as `publish` takes them: the
    /// registries and credentials are resolved the same way. Its publish-only fields are
    /// unused.
    pub destinations: PublishOptions,
}

/// The deprecation message when `--message` is not given.
pub fn default_message(version: &Version) -> String {
    format!("version {version} was yanked by its maintainers: install an earlier version")
}

/// One change a channel makes to undo the release. A new channel adds its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// npm: point a dist-tag at an earlier version, or remove it (`to: None`).
    MoveDistTag {
        package: String,
        tag: String,
        to: Option<String>,
    },
    /// npm: deprecate the version.
    Deprecate {
        package: String,
        version: String,
        message: String,
    },
    /// Images: point a floating tag at the manifest of an earlier version's tag.
    MoveImageTag {
        repository: String,
        tag: String,
        to: String,
    },
    /// Cargo registry: yank the version.
    YankCrate { name: String, version: String },
    /// PyPI-compatible index: remove the release's files through the index's API.
    RemovePython {
        project: String,
        version: String,
        files: usize,
        kind: IndexKind,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::MoveDistTag {
                package,
                tag,
                to: Some(to),
            } => write!(f, "move dist-tag `{tag}` of {package} back to {to}"),
            Change::MoveDistTag {
                package,
                tag,
                to: None,
            } => write!(
                f,
                "remove dist-tag `{tag}` of {package} (no earlier version to move it to)"
            ),
            Change::Deprecate {
                package,
                version,
                message,
            } => write!(f, "deprecate {package}@{version}: {message:?}"),
            Change::MoveImageTag {
                repository,
                tag,
                to,
            } => write!(f, "move {repository}:{tag} back to the index of {to}"),
            Change::YankCrate { name, version } => write!(f, "yank {name}@{version}"),
            Change::RemovePython {
                project,
                version,
                files,
                kind,
            } => {
                let how = match kind {
                    IndexKind::Devpi => "devpi: DELETE of the release",
                    _ => "pypiserver: :action=remove_pkg",
                };
                write!(f, "remove {project} {version} ({files} file(s); {how})")
            }
        }
    }
}

/// What a channel found on its registry: the state, and what is left to do.
#[derive(Debug, Clone)]
pub(crate) struct Inspection {
    pub(crate) state: YankState,
    pub(crate) changes: Vec<Change>,
    pub(crate) manual: Vec<String>,
    pub(crate) notes: Vec<String>,
}

impl Inspection {
    fn new() -> Inspection {
        Inspection {
            state: YankState::ToUndo,
            changes: Vec::new(),
            manual: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The version was never published there: nothing to undo, and why.
    fn nothing(why: String) -> Inspection {
        Inspection {
            state: YankState::NothingToUndo,
            notes: vec![why],
            ..Inspection::new()
        }
    }
}

/// One channel's undo of one package or image repository on one registry.
pub(crate) trait Undo {
    /// `<channel>/<name>`.
    fn id(&self) -> String;
    fn channel(&self) -> &'static str;
    /// Registry (without credentials) and name, for the report.
    fn destination(&self) -> String;
    /// Asks the registry what is left to undo. Changes nothing.
    fn inspect(&self) -> anyhow::Result<Inspection>;
    /// Makes one change that [`Undo::inspect`] returned.
    fn apply(&self, change: &Change) -> anyhow::Result<()>;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Runs `yank`: plans, asks every registry, and (unless a dry run, and only when `confirm`
/// says yes to the planned report) makes the changes. Returns the report, also written to
/// `yank-report.json`; a step that failed is in it as `failed`, and the others still ran.
/// An error is returned only when nothing could be asked (configuration, credentials).
pub fn yank(
    options: &YankOptions,
    reporter: &dyn Reporter,
    confirm: &dyn Fn(&YankReport) -> bool,
) -> anyhow::Result<YankReport> {
    let workspace = &options.destinations.workspace;
    let release = crate::workspace::plan(
        workspace,
        &PlanOptions {
            packages: options.packages.clone(),
            targets: Vec::new(),
        },
    )
    .map_err(|error| match error {
        crate::workspace::LoadError::Config(error) => anyhow::Error::from(error),
        crate::workspace::LoadError::Cargo(error) | crate::workspace::LoadError::Host(error) => {
            error
        }
    })?;
    let manifest = Manifest::from_release(&release, env!("CARGO_PKG_VERSION"));
    let version = &options.version;
    let npm_version = castoff_plan::version::npm(version).ok().map(|v| v.version);
    let pep440 = castoff_plan::version::pep440(version).ok();
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| default_message(version));

    // The steps that reached a registry: their destinations are the yank's.
    let npm_steps: Vec<&ManifestStep> = manifest
        .steps
        .iter()
        .filter(|step| step.kind == StepKindName::NpmPublish && npm_version.is_some())
        .collect();
    let oci_steps: Vec<&ManifestStep> = manifest
        .steps
        .iter()
        .filter(|step| step.kind.channel() == Channel::Oci)
        .collect();
    let pypi_steps: Vec<&ManifestStep> = manifest
        .steps
        .iter()
        .filter(|step| step.kind == StepKindName::PypiUpload && pep440.is_some())
        .collect();
    // The crates channel's steps are the manifest's crates (publish adds them the same way).
    let crate_publish: Vec<ManifestStep> = manifest.crates.iter().map(|k| k.step()).collect();
    let crate_steps: Vec<&ManifestStep> = crate_publish.iter().collect();
    if npm_steps.is_empty()
        && oci_steps.is_empty()
        && pypi_steps.is_empty()
        && crate_steps.is_empty()
    {
        anyhow::bail!(Hinted::new(
            format!(
                "the workspace's plan publishes {version} to no registry castoff can yank from"
            ),
            "check -p/--package and the workspace's `[package.metadata.castoff]` channels (`castoff plan` shows them)",
        ));
    }

    // Credentials and clients, as publish resolves them; every problem at once.
    let environment = ProcessEnvironment;
    let http = HttpClient::new(options.destinations.http.clone())?;
    let channel_steps: Vec<&ManifestStep> = npm_steps
        .iter()
        .chain(&oci_steps)
        .chain(&crate_steps)
        .copied()
        .collect();
    let connected = if channel_steps.is_empty() {
        None
    } else {
        Some(
            crate::publish::connect(
                &manifest,
                &channel_steps,
                &options.destinations,
                &http,
                &environment,
            )
            // publish's words for the same problems; nothing is changed here either.
            .map_err(|error| {
                anyhow::anyhow!(
                    "{}",
                    error
                        .to_string()
                        .replacen("cannot publish:", "cannot yank:", 1)
                        .replacen("before any upload", "before any change", 1)
                )
            })?,
        )
    };
    let pypi_clients = match &pep440 {
        Some(_) => connect_pypi(&manifest, &pypi_steps, options, &http, &environment)?,
        None => Vec::new(),
    };

    let mut undos: Vec<Box<dyn Undo + '_>> = Vec::new();
    if let (Some(connected), Some(npm_version)) = (&connected, &npm_version) {
        for ((package, _), client) in &connected.npm {
            undos.push(Box::new(npm::NpmUndo {
                client,
                package: package.clone(),
                version: npm_version.clone(),
                semver: version.clone(),
                message: message.clone(),
            }));
        }
    }
    if let Some(connected) = &connected {
        for client in connected.oci.values() {
            undos.push(Box::new(oci::OciUndo {
                client,
                semver: version.clone(),
            }));
        }
    }
    for (project, client) in pypi_clients {
        undos.push(Box::new(pypi::PypiUndo {
            client,
            project,
            version: pep440.clone().unwrap_or_default(),
        }));
    }
    // Each crate at the release's version (a crate versioned apart from the release has
    // nothing at it: its step says so).
    if let Some(connected) = &connected {
        for step in &crate_steps {
            let client = step
                .destination
                .as_ref()
                .and_then(|registry| connected.crates.get(registry))
                .context("internal error: no client for a crate's registry")?;
            undos.push(Box::new(crates::CratesUndo {
                client,
                name: step.app.clone(),
                version: version.to_string(),
            }));
        }
    }
    // A token crates.io trusted publishing minted goes when the yank ends, as after publish.
    let _revoke = connected
        .as_ref()
        .map(|destinations| crate::publish::RevokeTrustedTokens {
            destinations,
            reporter,
        });

    // Ask every registry; a registry that cannot be asked fails its step only.
    let mut steps: Vec<(usize, Option<Inspection>, YankStepReport)> = Vec::new();
    for (index, undo) in undos.iter().enumerate() {
        let asking = reporter.task(&format!("asking {}", undo.destination()), 0);
        let inspected = undo.inspect();
        asking.finish(if inspected.is_ok() { "asked" } else { "failed" });
        drop(asking);
        let mut report = YankStepReport {
            id: undo.id(),
            channel: undo.channel().to_owned(),
            destination: undo.destination(),
            state: YankState::Unknown,
            outcome: YankOutcome::NotRun,
            changes: Vec::new(),
            manual: Vec::new(),
            notes: Vec::new(),
            started_at_ms: 0,
            finished_at_ms: 0,
            error: None,
        };
        let inspection = match inspected {
            Ok(inspection) => {
                report.state = inspection.state;
                report.changes = inspection.changes.iter().map(ToString::to_string).collect();
                report.manual = inspection.manual.clone();
                report.notes = inspection.notes.clone();
                report.outcome = match inspection.state {
                    YankState::ToUndo if options.dry_run => YankOutcome::WouldUndo,
                    YankState::ToUndo => YankOutcome::NotRun,
                    YankState::Manual => YankOutcome::Manual,
                    _ => YankOutcome::Skipped,
                };
                reporter.line(&format!(
                    "{:<16} {}  → {}",
                    inspection.state.as_str(),
                    report.id,
                    report.destination
                ));
                Some(inspection)
            }
            Err(error) => {
                report.outcome = YankOutcome::Failed;
                report.error = Some(render_with(&*error, LIST_HINT));
                reporter.line(&format!(
                    "{:<16} {}  → {}",
                    "FAILED", report.id, report.destination
                ));
                None
            }
        };
        steps.push((index, inspection, report));
    }
    // A package on several registries (`npm.registries`, `python.repositories`,
    // `oci.mirrors`) has one step per registry: the id names it.
    let ids: Vec<String> = steps
        .iter()
        .map(|(_, _, report)| report.id.clone())
        .collect();
    for (_, _, report) in &mut steps {
        if ids.iter().filter(|id| **id == report.id).count() > 1 {
            report.id = format!("{} → {}", report.id, report.destination);
        }
    }
    let mut report = YankReport {
        schema_version: YANK_REPORT_SCHEMA_VERSION,
        castoff_version: env!("CARGO_PKG_VERSION").to_owned(),
        version: version.to_string(),
        dry_run: options.dry_run,
        steps: steps.iter().map(|(_, _, report)| report.clone()).collect(),
    };
    let pending = steps
        .iter()
        .filter(|(_, inspection, _)| inspection.as_ref().is_some_and(|i| !i.changes.is_empty()))
        .count();
    if options.dry_run || pending == 0 {
        write_report(&options.dist_dir, &report)?;
        return Ok(report);
    }
    if !confirm(&report) {
        write_report(&options.dist_dir, &report)?;
        return Err(Hinted::new(
            "yank cancelled: nothing was changed",
            "run it again and answer y to make the changes listed above, or pass --yes",
        )
        .into());
    }

    for (index, inspection, step) in &mut steps {
        let Some(inspection) = inspection else {
            continue;
        };
        if inspection.changes.is_empty() {
            continue;
        }
        let undo = &undos[*index];
        step.started_at_ms = now_ms();
        let mut failed = None;
        for change in &inspection.changes {
            reporter.line(&format!("{change}"));
            if let Err(error) = undo.apply(change) {
                failed = Some(
                    Hinted::new(
                        format!("could not {change}"),
                        "run `castoff yank` again: it asks the registries again and finishes what is left",
                    )
                    .because(error),
                );
                break;
            }
        }
        step.finished_at_ms = now_ms();
        match failed {
            Some(error) => {
                step.outcome = YankOutcome::Failed;
                step.error = Some(render_with(&error, LIST_HINT));
            }
            None if !inspection.manual.is_empty() => step.outcome = YankOutcome::Manual,
            None => step.outcome = YankOutcome::Done,
        }
    }
    report.steps = steps.into_iter().map(|(_, _, report)| report).collect();
    write_report(&options.dist_dir, &report)?;
    Ok(report)
}

/// One PyPI client per destination of the release's uploads, with the project name. pypi.org
/// and TestPyPI get a client without credentials: castoff only reads their index, and the
/// yank itself is a manual step.
// `RegistryError` is large (castoff-registry allows it crate-wide: a few strings, next to a
// network round trip).
#[allow(clippy::result_large_err)]
fn connect_pypi(
    manifest: &Manifest,
    steps: &[&ManifestStep],
    options: &YankOptions,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<Vec<(String, PypiClient)>> {
    let publish = &options.destinations;
    let sole = manifest
        .steps
        .iter()
        .filter(|step| step.kind == StepKindName::PypiUpload)
        .map(|step| &step.destination)
        .collect::<BTreeSet<_>>()
        .len()
        <= 1;
    let oidc = GithubOidc::from_env(environment);
    let sources = Sources {
        environment,
        oidc: oidc.as_ref(),
    };
    let wanted: BTreeSet<(String, Option<String>)> = steps
        .iter()
        .filter_map(|step| {
            let project = manifest.app(&step.app)?.python.as_ref()?.name.clone();
            Some((project, step.destination.clone()))
        })
        .collect();
    let mut clients = Vec::new();
    let mut problems = Vec::new();
    for (project, destination) in wanted {
        let url = publish
            .pypi_url
            .clone()
            .or_else(|| environment.var(vars::PYPI_URL));
        let index_url = publish
            .pypi_index_url
            .clone()
            .or_else(|| environment.var(vars::PYPI_INDEX_URL));
        let effective = destination
            .clone()
            .or_else(|| url.clone())
            .or_else(|| publish.pypi_repository.is_none().then(|| "pypi".to_owned()));
        let warehouse = effective.as_deref().is_some_and(is_warehouse);
        let connected = if warehouse {
            let index = if destination.is_none() {
                index_url.as_deref()
            } else {
                None
            };
            PypiRepository::new(
                effective.as_deref().unwrap_or("pypi"),
                index,
                PypiCredentials::None,
            )
            .and_then(|repository| PypiClient::new(http, repository))
        } else {
            castoff_registry::connect::pypi(
                http,
                sources,
                &PypiDestination {
                    configured: destination.as_deref(),
                    url: url.as_deref(),
                    index_url: index_url.as_deref(),
                    pypirc_section: publish.pypi_repository.as_deref(),
                    sole_destination: sole,
                },
            )
        };
        match connected {
            Ok(client) => clients.push((project, client)),
            Err(error) => problems.push(format!(
                "PyPI{}: {}",
                destination.map_or_else(String::new, |d| format!(" ({d})")),
                render_with(&error, LIST_HINT)
            )),
        }
    }
    if problems.is_empty() {
        return Ok(clients);
    }
    anyhow::bail!(
        "cannot yank: {} problem(s) found before any change:\n  {}",
        problems.len(),
        problems.join("\n  ")
    )
}

/// pypi.org or TestPyPI, by alias or upload URL: indexes without a yank API.
fn is_warehouse(destination: &str) -> bool {
    matches!(destination, "pypi" | "testpypi")
        || reqwest_host(destination).is_some_and(|host| {
            matches!(
                host.as_str(),
                "upload.pypi.org" | "pypi.org" | "test.pypi.org"
            )
        })
}

fn reqwest_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit('@').next()?;
    Some(host.split(':').next()?.to_ascii_lowercase())
}

fn write_report(dist_dir: &std::path::Path, report: &YankReport) -> anyhow::Result<()> {
    fs::create_dir_all(dist_dir)
        .with_context(|| format!("could not create {}", dist_dir.display()))?;
    let path = dist_dir.join("yank-report.json");
    let temporary = dist_dir.join(".yank-report.json.partial");
    fs::write(&temporary, report.to_json())
        .and_then(|()| fs::rename(&temporary, &path))
        .with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypi_org_and_testpypi_are_manual() {
        for destination in [
            "pypi",
            "testpypi",
            "https://upload.pypi.org/legacy/",
            "https://test.pypi.org/legacy/",
        ] {
            assert!(is_warehouse(destination), "{destination}");
        }
        for destination in ["http://127.0.0.1:8080/", "https://pypi.example.com/legacy/"] {
            assert!(!is_warehouse(destination), "{destination}");
        }
        let steps = pypi::warehouse_steps(
            "https://pypi.org/manage/project/greeter/release/0.3.2/",
            "greeter",
            "0.3.2",
        );
        assert!(steps[0].contains("https://pypi.org/manage/project/greeter/release/0.3.2/"));
        assert!(steps[1].contains("typing 0.3.2"));
    }

    #[test]
    fn the_default_message_names_the_version() {
        let message = default_message(&Version::parse("1.2.3").unwrap());
        assert!(message.contains("1.2.3"), "{message}");
    }
}
