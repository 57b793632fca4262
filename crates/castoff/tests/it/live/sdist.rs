//! The source distribution with real clients (issue 20): `twine check --strict` passes it;
//! pip (`--no-binary :all:`) and uv (`--no-binary <name>`) build it from source on this
//! machine with maturin, and the installed command and `python -m <module>` run; after
//! `publish` to pypiserver, `pip download` for a platform without a wheel picks the sdist,
//! and a second `publish` skips it as identical.
//!
//! maturin is the harness's (xtask/tools/python-requirements.txt), never public PyPI: each
//! test venv sees the tools venv's packages through a `.pth` file, every install runs with
//! `--no-build-isolation`, and the tools venv's `bin/` is on PATH for maturin's own binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::report::PublishReport;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text};

const SDIST: &str = "dist/python/hello_paths-0.2.0.tar.gz";

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        output_text(&output)
    );
    output
}

/// The path-deps fixture in a scratch directory, its distribution renamed to be unique to
/// this test process (pypiserver is shared), built with `dist`.
fn built_workspace(env: &TestEnv, name: &str) -> (PathBuf, String) {
    let scratch = env.scratch_dir(&format!("sdist-{name}"));
    let workspace = scratch.join("workspace");
    copy_fixture("path-deps", &workspace);
    let distribution = format!("hello-paths-{name}{}", std::process::id());
    let manifest = workspace.join("crates/hello/Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap().replace(
        "name = \"hello-paths\"",
        &format!("name = \"{distribution}\""),
    );
    fs::write(&manifest, text).unwrap();
    run(
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["dist", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .env("SOURCE_DATE_EPOCH", "1700000000"),
        "castoff dist",
    );
    (workspace, distribution)
}

/// `dist/python/<normalized>-0.2.0.tar.gz` of a renamed workspace.
fn sdist_of(workspace: &Path, distribution: &str) -> PathBuf {
    let path = workspace.join(SDIST.replace(
        "hello_paths",
        &castoff_plan::names::wheel_distribution_name(distribution),
    ));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A fresh venv beside `workspace` that sees the tools venv's packages (maturin) through a
/// `.pth` file.
fn venv(env: &TestEnv, workspace: &Path, name: &str) -> PathBuf {
    let venv = workspace.parent().unwrap().join(name);
    let _ = fs::remove_dir_all(&venv);
    run(
        Command::new(env.tool("python3"))
            .args(["-m", "venv"])
            .arg(&venv),
        "python3 -m venv",
    );
    let site_packages = |venv: &Path| -> PathBuf {
        let lib = venv.join("lib");
        let python = fs::read_dir(&lib)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("python"))
            })
            .expect("lib/pythonX.Y");
        python.join("site-packages")
    };
    let tools = site_packages(env.venv_bin().parent().unwrap());
    fs::write(
        site_packages(&venv).join("castoff-test-tools.pth"),
        format!("{}\n", tools.display()),
    )
    .unwrap();
    venv
}

/// PATH with the tools venv's `bin/` (maturin) first, then the caller's (cargo).
fn path_with_tools(env: &TestEnv) -> std::ffi::OsString {
    let mut dirs = vec![env.venv_bin()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap()
}

/// The installed command and `python -m <module>` print the version; the finder finds it.
fn assert_installed_runs(venv: &Path, module: &str) {
    let bin = venv.join("bin");
    let version = run(Command::new(bin.join("hello")).arg("--version"), "hello");
    assert_eq!(String::from_utf8_lossy(&version.stdout), "hello 0.2.0\n");
    let greeting = run(Command::new(bin.join("hello")).arg("sdist"), "hello sdist");
    assert_eq!(String::from_utf8_lossy(&greeting.stdout), "Hello, sdist!\n");
    let module_run = run(
        Command::new(bin.join("python")).args(["-m", module, "--version"]),
        "python -m",
    );
    assert_eq!(String::from_utf8_lossy(&module_run.stdout), "hello 0.2.0\n");
    let found = run(
        Command::new(bin.join("python")).args([
            "-c",
            &format!("import {module}; print({module}.find_hello_bin())"),
        ]),
        "find_hello_bin()",
    );
    assert_eq!(
        PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()),
        bin.join("hello")
    );
}

#[test]
fn twine_check_strict_passes_the_sdist() {
    let env = TestEnv::get();
    let (workspace, distribution) = built_workspace(&env, "twine");
    let sdist = sdist_of(&workspace, &distribution);
    let check = run(
        Command::new(env.tool("twine"))
            .args(["check", "--strict"])
            .arg(&sdist),
        "twine check --strict",
    );
    assert!(
        output_text(&check).contains("PASSED"),
        "{}",
        output_text(&check)
    );
}

#[test]
fn pip_builds_the_path_deps_sdist_from_source_and_it_runs() {
    let env = TestEnv::get();
    let (workspace, distribution) = built_workspace(&env, "pip");
    let sdist = sdist_of(&workspace, &distribution);
    let venv = venv(&env, &workspace, "venv-pip");
    let install = run(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--no-index",
                "--no-cache-dir",
                "--no-build-isolation",
                "--no-binary",
                ":all:",
            ])
            .arg(&sdist)
            .env("PATH", path_with_tools(&env)),
        "pip install --no-binary :all:",
    );
    // Built here, from the sources: maturin compiled the package and its path dependency.
    let shown = output_text(&install);
    let normalized = castoff_plan::names::wheel_distribution_name(&distribution);
    assert!(
        shown.contains(&format!("Building wheel for {distribution}"))
            && shown.contains(&format!(
                "filename={normalized}-0.2.0-py3-none-linux_x86_64.whl"
            )),
        "pip did not build the wheel here:\n{shown}"
    );
    let module = castoff_plan::names::wheel_distribution_name(&distribution);
    assert_installed_runs(&venv, &module);
}

#[test]
fn uv_builds_the_sdist_from_source_and_it_runs() {
    let env = TestEnv::get();
    let (workspace, distribution) = built_workspace(&env, "uv");
    let sdist = sdist_of(&workspace, &distribution);
    let venv = venv(&env, &workspace, "venv-uv");
    run(
        Command::new(env.tool("uv"))
            .args([
                "pip",
                "install",
                "--no-index",
                "--no-cache",
                "--no-build-isolation",
                "--no-binary",
                &distribution,
                "--python",
            ])
            .arg(venv.join("bin/python"))
            .arg(&sdist)
            .env("PATH", path_with_tools(&env)),
        "uv pip install --no-binary",
    );
    let module = castoff_plan::names::wheel_distribution_name(&distribution);
    assert_installed_runs(&venv, &module);
}

#[test]
fn published_sdist_is_what_a_platform_without_a_wheel_downloads_and_a_rerun_skips_it() {
    let env = TestEnv::get();
    let (workspace, distribution) = built_workspace(&env, "publish");
    let sdist = sdist_of(&workspace, &distribution);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    // `castoff publish` to the harness's pypiserver, with its credentials.
    let publish_output = || {
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["publish", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .args(["--pypi-url", &env.pypiserver])
            .env("HOME", &home)
            .env("TWINE_USERNAME", &env.user)
            .env("TWINE_PASSWORD", &env.password)
            .env_remove("CASTOFF_PYPI_TOKEN")
            .output()
            .expect("running castoff publish")
    };
    let publish = || {
        let output = publish_output();
        let shown = output_text(&output);
        env.assert_no_secret(&shown);
        assert!(output.status.success(), "{shown}");
        let report: PublishReport = serde_json::from_str(
            &fs::read_to_string(workspace.join("dist/publish-report.json")).unwrap(),
        )
        .unwrap();
        report
            .steps
            .iter()
            .find(|step| step.id == "pypi-upload/hello")
            .map(|step| step.outcome)
            .expect("the report has the sdist's upload")
    };
    assert_eq!(publish(), "uploaded");

    // riscv64 has no wheel in this release: pip takes the sdist, byte for byte.
    let venv = venv(&env, &workspace, "venv-download");
    let downloads = workspace.parent().unwrap().join("downloads");
    run(
        Command::new(venv.join("bin/pip"))
            .args([
                "download",
                "--no-deps",
                "--no-cache-dir",
                "--no-build-isolation",
                "--platform",
                "manylinux_2_17_riscv64",
                "--python-version",
                "3.12",
                "--index-url",
                &format!("{}simple/", env.pypiserver),
                "--dest",
            ])
            .arg(&downloads)
            .arg(format!("{distribution}==0.2.0"))
            .env("PATH", path_with_tools(&env)),
        "pip download --platform manylinux_2_17_riscv64",
    );
    let downloaded: Vec<PathBuf> = fs::read_dir(&downloads)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(downloaded.len(), 1, "{downloaded:?}");
    assert_eq!(downloaded[0].file_name(), sdist.file_name());
    assert!(
        fs::read(&downloaded[0]).unwrap() == fs::read(&sdist).unwrap(),
        "the index holds other bytes than dist/"
    );

    // Published again: the index holds identical bytes, so the step is skipped.
    assert_eq!(publish(), "skipped");

    // Other bytes under the same name (one second later changes the sdist's tar times) are
    // refused before any upload, with exit code 3.
    run(
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(["dist", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .env("SOURCE_DATE_EPOCH", "1700000001"),
        "castoff dist one second later",
    );
    assert!(fs::read(&sdist).unwrap() != fs::read(&downloaded[0]).unwrap());
    let refused = publish_output();
    let shown = output_text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{shown}");
    let file_name = sdist.file_name().unwrap().to_string_lossy().into_owned();
    assert!(shown.contains(&file_name), "{shown}");
}
