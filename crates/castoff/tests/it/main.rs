//! castoff's integration tests, in one binary (docs/testing.md, "Test layout"): the `castoff`
//! binary run as a user runs it, on fixture workspaces and on this repository.
//!
//! - [`offline`]: `plan`, `dist`, `dist --merge`, the caches, `init`, error messages and the
//!   fuzz seeds; needs cargo and a Linux base system (bash, tar, util-linux `script`, GNU
//!   `time`), no server and no installed tool.
//! - [`live`]: everything that meets the harness of `cargo xtask test`: `publish` against its
//!   registries, faults and kill points, the bad-input corpus, installs with pip, npm, skopeo,
//!   runc and Docker, Graphviz, groff and the workflow validators; without it these tests fail
//!   with instructions, never skip.

mod live;
mod offline;

// `fuzz/src/targets.rs`, included by `offline::fuzz_seeds`, names its semver as
// `crate::semver`; castoff-plan's is this one.
use cargo_metadata::semver;
