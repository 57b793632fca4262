//! castoff-npm's integration tests, in one binary (docs/testing.md, "Test layout").
//!
//! - [`offline`]: the packages as data; needs cargo and nothing else.
//! - [`live`]: the packages in the hands of npm, Node, tsc, the linters and Verdaccio, which
//!   `cargo xtask test` provides; without it these tests fail with instructions, never skip.

mod common;
mod live;
mod offline;
