//! Tests that need no server and no installed tool: `cargo xtask test --offline` runs them.

mod clients;
mod platform;
mod wheel;
