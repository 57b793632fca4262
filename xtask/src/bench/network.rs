//! `cargo xtask bench --network`: publish through a shaping proxy (added latency, a bandwidth
//! cap) in front of the harness registries, castoff against the peers, and the link's limit.

use std::path::Path;

use anyhow::{Result, bail};

use super::{Bench, Options};

pub(super) fn run(
    _bench: &mut Bench,
    _options: &Options,
    _out_dir: &Path,
    _target_dir: &Path,
) -> Result<()> {
    bail!("`cargo xtask bench --network` is not written yet")
}
