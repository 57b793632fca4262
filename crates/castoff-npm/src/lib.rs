//! npm packages that carry a Rust binary: one package per platform, plus a launcher package
//! that picks the right one at run time (no install scripts, no downloads).

/// `engines.node` written into launcher packages unless configured.
pub const DEFAULT_NODE_ENGINES: &str = ">=18";
