//! `cargo fuzz run wheel_file`: see castoff_fuzz::targets::wheel_file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::wheel_file(data));
