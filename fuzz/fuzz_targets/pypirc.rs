//! `cargo fuzz run pypirc`: see castoff_fuzz::targets::pypirc.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::pypirc(data));
