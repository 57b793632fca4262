//! `cargo fuzz run npm_tarball`: see castoff_fuzz::targets::npm_tarball.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::npm_tarball(data));
