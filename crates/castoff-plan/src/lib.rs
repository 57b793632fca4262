//! castoff's release plan: configuration and `cargo metadata` in, a `Release` DAG of apps,
//! artifacts and publish steps out. No network, no processes; the only IO is reading files.

pub mod config;
pub mod error;
pub mod manifest;
pub mod names;
pub mod plan;
pub mod readme;
pub mod render;
pub mod report;
pub mod tag;
pub mod target;
pub mod version;
pub mod yank_report;

pub use error::{ConfigError, PlanError};
pub use manifest::Manifest;
pub use plan::{
    App, AppId, Artifact, ArtifactId, ArtifactKind, BuildSettings, BuildTool, Channel, PlanOptions,
    Release, Step, StepId, StepKind, StepKindName, plan,
};
pub use target::Target;
