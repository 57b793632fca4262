//! Reads a workspace through `cargo metadata` and turns it into a release plan.

use std::path::Path;

use crate::hint::Hinted;
use cargo_metadata::Metadata;
use castoff_plan::{PlanError, PlanOptions, Release};

/// Why a workspace could not be planned: Cargo itself failed, or the configuration is wrong.
#[derive(Debug)]
pub enum LoadError {
    /// `cargo metadata` failed (no Cargo.toml, a broken manifest, ...).
    Cargo(anyhow::Error),
    /// The castoff configuration is invalid.
    Config(PlanError),
    /// `rustc -vV` could not tell this machine's target.
    Host(anyhow::Error),
}

/// Runs `cargo metadata --no-deps` (no network, no dependency resolution) and plans the
/// release of the workspace at `manifest_path` (default: the current directory's).
pub fn load(manifest_path: Option<&Path>, options: &PlanOptions) -> Result<Release, LoadError> {
    plan(&metadata(manifest_path)?, options)
}

/// The workspace's `cargo metadata --no-deps`, for planning it several ways without asking
/// Cargo again. Remembered between runs while nothing Cargo reads changes
/// (metadata_cache.rs).
pub fn metadata(manifest_path: Option<&Path>) -> Result<Metadata, LoadError> {
    Ok(metadata_and_host(manifest_path, false)?.0)
}

/// [`metadata`], and with `want_host` this machine's target (`rustc -vV`), asked while Cargo
/// reads the workspace: two process start-ups at once instead of one after the other, and
/// neither when both answers are remembered.
pub fn metadata_and_host(
    manifest_path: Option<&Path>,
    want_host: bool,
) -> Result<(Metadata, Option<String>), LoadError> {
    let start = crate::metadata_cache::Start::new(manifest_path);
    if let Some(hit) = start.as_ref().and_then(|start| start.lookup())
        && (!want_host || hit.host.is_some())
    {
        return Ok((hit.metadata, hit.host.filter(|_| want_host)));
    }
    let started = std::time::SystemTime::now();
    let host = want_host.then(|| std::thread::spawn(crate::cargo::host_target));
    let metadata = cargo_metadata(manifest_path)?;
    let host = match host {
        Some(thread) => Some(
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("finding this machine's target panicked"))
                .and_then(|host| host)
                .map_err(LoadError::Host)?,
        ),
        None => None,
    };
    if let Some(start) = start {
        start.store(&metadata, host.as_deref(), started);
    }
    Ok((metadata, host))
}

fn cargo_metadata(manifest_path: Option<&Path>) -> Result<Metadata, LoadError> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.no_deps();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    command
        .exec()
        .map_err(|error| {
            let refusal = match manifest_path {
                Some(path) => Hinted::new(
                    format!("could not read the workspace at {}", path.display()),
                    "fix what Cargo reports above; `cargo metadata` must succeed",
                ),
                None => Hinted::new(
                    "could not read the workspace in the current directory",
                    "run castoff inside a Cargo workspace or pass --manifest-path; `cargo metadata` must succeed",
                ),
            };
            LoadError::Cargo(refusal.because(error).into())
        })
}

/// Plans the release of a workspace read with [`metadata`].
pub fn plan(metadata: &Metadata, options: &PlanOptions) -> Result<Release, LoadError> {
    castoff_plan::plan(metadata, options).map_err(LoadError::Config)
}
