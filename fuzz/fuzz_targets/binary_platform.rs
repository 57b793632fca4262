//! `cargo fuzz run binary_platform`: see castoff_fuzz::targets::binary_platform.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::binary_platform(data));
