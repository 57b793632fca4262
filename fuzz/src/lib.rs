//! The fuzz targets' bodies as a library, so `fuzz_targets/*.rs` stay one line each.

pub use ::semver;

#[path = "targets.rs"]
pub mod targets;
