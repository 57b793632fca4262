//! castoff-registry's integration tests, in one binary (docs/testing.md, "Test layout").
//!
//! - [`offline`]: protocol edges against small servers written in the tests (redirects,
//!   retries, Trusted Publishing, hostile answers) and the redaction of credentials; needs
//!   nothing but cargo.
//! - [`live`]: the clients against the real registries and tools of `cargo xtask test`
//!   (distribution, pypiserver, devpi, Verdaccio, skopeo, pip, npm); without it these tests
//!   fail with instructions, never skip.

mod live;
mod offline;
mod support;
