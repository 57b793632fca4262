//! Tests that need no server and no installed tool: `cargo xtask test --offline` runs them.

mod dockerfile;
mod health;
mod images;
mod refusals;
mod userland;
