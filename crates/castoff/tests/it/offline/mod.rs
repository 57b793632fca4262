//! Tests that need no server and no installed tool: `cargo xtask test --offline` runs them.
//! Where a file's tests are split between the two halves, the helpers both use live here.

mod build_settings;
pub(crate) mod cli_extras;
pub(crate) mod cli_ux;
mod crates_channel;
pub(crate) mod dist;
mod dist_bytes;
mod dist_cache;
mod dist_safety;
pub(crate) mod distributed;
mod fuzz_seeds;
mod init;
mod launch;
mod metadata_cache;
pub(crate) mod plan;
pub(crate) mod prebuilt;
mod registry_metadata;
pub(crate) mod release_tags;
mod sdist;
mod verify;
mod yank;
