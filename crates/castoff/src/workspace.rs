//! Reads a workspace through `cargo metadata` and turns it into a release plan.

use std::path::Path;

use anyhow::Context as _;
use cargo_metadata::Metadata;
use castoff_plan::{PlanError, PlanOptions, Release};

/// Why a workspace could not be planned: Cargo itself failed, or the configuration is wrong.
#[derive(Debug)]
pub enum LoadError {
    /// `cargo metadata` failed (no Cargo.toml, a broken manifest, ...).
    Cargo(anyhow::Error),
    /// The castoff configuration is invalid.
    Config(PlanError),
}

/// Runs `cargo metadata --no-deps` (no network, no dependency resolution) and plans the
/// release of the workspace at `manifest_path` (default: the current directory's).
pub fn load(manifest_path: Option<&Path>, options: &PlanOptions) -> Result<Release, LoadError> {
    plan(&metadata(manifest_path)?, options)
}

/// The workspace's `cargo metadata --no-deps`, for planning it several ways without asking
/// Cargo again.
pub fn metadata(manifest_path: Option<&Path>) -> Result<Metadata, LoadError> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.no_deps();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    command
        .exec()
        .map_err(anyhow::Error::from)
        .with_context(|| match manifest_path {
            Some(path) => format!(
                "could not read the workspace at {}\nhint: fix what Cargo reports above; `cargo metadata` must succeed",
                path.display()
            ),
            None => "could not read the workspace in the current directory\nhint: run castoff inside a Cargo workspace or pass --manifest-path; `cargo metadata` must succeed".to_owned(),
        })
        .map_err(LoadError::Cargo)
}

/// Plans the release of a workspace read with [`metadata`].
pub fn plan(metadata: &Metadata, options: &PlanOptions) -> Result<Release, LoadError> {
    castoff_plan::plan(metadata, options).map_err(LoadError::Config)
}
