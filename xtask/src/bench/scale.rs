//! `cargo xtask bench --scale`: plan, dist, `dist --merge` and publish of generated releases
//! of growing size (N apps x T targets), with the growth exponent of each.

use std::path::Path;

use anyhow::{Result, bail};

use super::{Bench, Options};

pub(super) fn run(
    _bench: &mut Bench,
    _options: &Options,
    _out_dir: &Path,
    _target_dir: &Path,
) -> Result<()> {
    bail!("`cargo xtask bench --scale` is not written yet")
}
