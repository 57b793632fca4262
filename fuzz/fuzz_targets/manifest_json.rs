//! `cargo fuzz run manifest_json`: see castoff_fuzz::targets::manifest_json.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::manifest_json(data));
