//! `cargo fuzz run version`: see castoff_fuzz::targets::version_mappers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::version_mappers(data));
