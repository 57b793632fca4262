//! `cargo fuzz run www_authenticate`: see castoff_fuzz::targets::www_authenticate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::www_authenticate(data));
