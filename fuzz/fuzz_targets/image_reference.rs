//! `cargo fuzz run image_reference`: see castoff_fuzz::targets::image_reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::image_reference(data));
