//! A wheel built from a supplied binary (`offline::prebuilt`'s `dist --prebuilt` of greeter as
//! a separate `cargo build` made it) installs with pip and runs.

use std::fs;
use std::process::Command;

use castoff_test_support::TestEnv;

use super::distributed::{make_venv, run};
use crate::offline::prebuilt::shared;

#[test]
fn the_wheel_of_a_prebuilt_binary_installs_with_pip_and_runs() {
    let env = TestEnv::get();
    let shared = shared();
    let wheel = fs::read_dir(shared.supplied.join("python"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .expect("a wheel in the supplied dist");
    let venv = shared.root.join("venv");
    make_venv(&env, &venv);
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--no-index", "--quiet"])
            .arg(&wheel),
        "pip install",
    );
    let greeting = run(
        Command::new(venv.join("bin/greeter")).args(["hello", "prebuilt"]),
        "greeter from the wheel of the prebuilt binary",
    );
    assert_eq!(greeting, "Hello, prebuilt!\n");
}
