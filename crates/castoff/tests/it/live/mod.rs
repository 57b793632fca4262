//! Tests that need the harness's tools or servers: only `cargo xtask test` (or `cargo test`
//! after sourcing the env.sh of `cargo xtask test --serve`) runs them.

mod bad_input;
mod base_pull;
mod cli_extras;
mod cli_ux;
mod crates_channel;
mod credential_hints;
mod credential_routing;
mod distributed;
mod docs_commands;
mod faults;
mod getting_started;
mod hardening;
mod http_server;
mod kill_points;
mod loopback_scheme;
pub(crate) mod matrix;
mod parallel_publish;
mod plan;
mod platforms;
mod prebuilt;
mod publish;
pub(crate) mod release_tags;
mod sdist;
mod self_release;
mod toolchain;
mod verify;
mod workflows;
mod yank;
