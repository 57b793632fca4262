//! The fuzz targets of `fuzz/` (run with `cargo xtask fuzz`) over their committed seed corpora
//! (`fuzz/corpus/<target>/`) and their regression inputs (`fuzz/regressions/<target>/`,
//! crashes found by fuzzing), as an ordinary test: the same function bodies, included from
//! `fuzz/src/targets.rs`.

use std::fs;
use std::path::{Path, PathBuf};

#[allow(dead_code, unreachable_pub)]
#[path = "../../../../../fuzz/src/targets.rs"]
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

/// Without a nightly toolchain for libFuzzer, the suite still mutates every seed: byte flips
/// across the input, truncations and appended garbage, deterministically (the same inputs on
/// every run), through every target. None may panic.
#[test]
fn every_target_survives_deterministic_mutations_of_its_seeds() {
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        for seed in inputs(&fuzz_dir().join("corpus").join(name)) {
            let data = fs::read(&seed).unwrap();
            for mutation in mutations(&data) {
                let outcome = std::panic::catch_unwind(|| target(&mutation));
                assert!(
                    outcome.is_ok(),
                    "{name} fails on a mutation of {} ({} bytes)",
                    seed.display(),
                    mutation.len()
                );
                total += 1;
            }
        }
    }
    castoff_test_support::figure(format!(
        "fuzz seeds: {total} deterministic mutations through {} targets, no panic",
        targets::TARGETS.len()
    ));
}

/// 48 variants of `data`: single-byte flips spread over it, truncations, and the input with
/// bytes that often break parsers appended or spliced in.
fn mutations(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let len = data.len().max(1);
    for i in 0..16usize {
        let mut flipped = data.to_vec();
        if !flipped.is_empty() {
            let at = (i * 7919 + 13) % len;
            flipped[at] ^= [0xff, 0x80, 0x01, 0x20][i % 4];
        }
        out.push(flipped);
        out.push(data[..data.len() * i / 16].to_vec());
        let mut spliced = data.to_vec();
        let at = (i * 104_729) % len;
        let insert: &[u8] = match i % 4 {
            0 => b"\x00\xff\xfe",
            1 => b"{\"\":[[[[[[[[",
            2 => b"\"18446744073709551616\"",
            _ => b"../../../../",
        };
        spliced.splice(
            at.min(spliced.len())..at.min(spliced.len()),
            insert.iter().copied(),
        );
        out.push(spliced);
    }
    out
}
