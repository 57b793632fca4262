//! castoff as a library: the engine that runs `plan`, `dist`, `publish` and `verify`, and the command
//! line over it (`cli`), callable from another workspace's xtask.
//!
//! The API other crates use: [`cli::main_from`] (the whole command line, what `cargo xtask`
//! calls), [`dist::dist`], [`merge::merge`], [`publish::publish`] and [`verify::verify`]
//! with their options, the [`report::Reporter`] they report through, [`workspace`] to plan a workspace, and
//! [`toolchain`], the check that this machine can build the targets it is asked to.

// The command line: parsing, handlers, progress, summaries, completions, `init`.
pub mod cli;

// The engine. `cli` calls into it; nothing here imports `cli`. Public: what a run needs
// (options, outcomes, the reporter, the keys), nothing of how it is done.
mod archive;
mod artifacts;
mod base;
mod cache;
mod cargo;
mod contents;
mod crates;
mod install_script;
mod limits;
mod metadata_cache;
mod prebuilt;
mod record;
mod sbom;
mod schedule;
mod sdist;
mod stage;

pub mod dist;
pub mod hint;
pub mod merge;
pub mod publish;
pub mod report;
pub mod sign;
pub mod toolchain;
pub mod verify;
pub mod workspace;
pub mod yank;
