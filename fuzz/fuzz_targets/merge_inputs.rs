//! `cargo fuzz run merge_inputs`: see castoff_fuzz::targets::merge_inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::merge_inputs(data));
