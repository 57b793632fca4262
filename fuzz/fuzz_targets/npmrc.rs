//! `cargo fuzz run npmrc`: see castoff_fuzz::targets::npmrc.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::npmrc(data));
