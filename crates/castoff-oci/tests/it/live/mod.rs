//! Tests that need the harness's tools or servers: only `cargo xtask test` (or `cargo test`
//! after sourcing the env.sh of `cargo xtask test --serve`) runs them.

mod docker;
mod probe;
mod real_tools;
mod userland;
