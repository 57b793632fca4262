//! Reads a workspace through `cargo metadata` and turns it into a release plan.

use std::path::Path;

use anyhow::Context as _;
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
    let mut command = cargo_metadata::MetadataCommand::new();
    command.no_deps();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    let metadata = command
        .exec()
        .map_err(anyhow::Error::from)
        .with_context(|| match manifest_path {
            Some(path) => format!(
                "could not read the workspace at {}\nhint: fix what Cargo reports above; `cargo metadata` must succeed",
                path.display()
            ),
            None => "could not read the workspace in the current directory\nhint: run castoff inside a Cargo workspace or pass --manifest-path; `cargo metadata` must succeed".to_owned(),
        })
        .map_err(LoadError::Cargo)?;
    castoff_plan::plan(&metadata, options).map_err(LoadError::Config)
}
