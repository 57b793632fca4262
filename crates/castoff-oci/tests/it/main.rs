//! castoff-oci's integration tests, in one binary (docs/testing.md, "Test layout").
//!
//! - [`offline`]: the images as bytes and every refusal; needs cargo and nothing else.
//! - [`live`]: the images checked and run by oci-image-tool, skopeo, umoci, runc, Docker and
//!   the deploy validators, which `cargo xtask test` provides; without it these tests fail
//!   with instructions, never skip.

mod common;
mod live;
mod offline;
