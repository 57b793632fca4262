//! castoff as a library: the command-line interface and the orchestration of `plan`, `dist`
//! and `publish`, callable from another workspace's xtask.

pub mod cli;
pub mod dist;
pub mod workspace;
