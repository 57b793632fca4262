//! `cargo fuzz run oci_layout`: see castoff_fuzz::targets::oci_layout.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::oci_layout(data));
