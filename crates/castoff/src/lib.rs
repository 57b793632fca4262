//! castoff as a library: the command-line interface and the orchestration of `plan`, `dist`
//! and `publish`, callable from another workspace's xtask.

pub mod archive;
pub mod base;
mod cache;
pub mod cli;
pub mod completions;
pub mod dist;
pub mod dist_cli;
pub mod init;
pub mod install_script;
pub mod limits;
pub mod merge;
mod metadata_cache;
pub mod progress;
pub mod publish;
pub mod sbom;
pub mod sign;
pub mod stage;
pub mod summary;
pub mod workspace;
