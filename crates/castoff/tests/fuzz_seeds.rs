//! The fuzz targets of `fuzz/` (run with `cargo xtask fuzz`) over their committed seed corpora
//! (`fuzz/corpus/<target>/`) and their regression inputs (`fuzz/regressions/<target>/`,
//! crashes found by fuzzing), as an ordinary test: the same function bodies, included from
//! `fuzz/src/targets.rs`.

use std::fs;
use std::path::{Path, PathBuf};

// `fuzz/src/targets.rs` names its semver as `crate::semver`; castoff-plan's is this one.
use cargo_metadata::semver;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_input_passes_its_fuzz_target() {
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let seeds = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seeds");
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        for input in seeds.iter().chain(&regressions) {
            let data = fs::read(input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", input.display());
            total += 1;
        }
    }
    assert!(total >= targets::TARGETS.len());
}

#[test]
fn every_fuzz_target_has_a_cargo_fuzz_entry_point() {
    for (name, _) in targets::TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(source.is_file(), "{} is missing", source.display());
    }
}
