//! `cargo fuzz run docker_config`: see castoff_fuzz::targets::docker_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff_fuzz::targets::docker_config(data));
