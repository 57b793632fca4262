//! The per-channel planners: each checks its part of `[package.metadata.castoff]` and resolves
//! it into the channel's settings, reporting every problem through the caller's error sink.

pub(super) mod crates;
pub(super) mod npm;
pub(super) mod oci;
pub(super) mod python;
