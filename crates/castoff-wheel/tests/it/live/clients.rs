//! The wheels as real clients see them: twine, check-wheel-contents, auditwheel, pip (venv,
//! `--user`, `--prefix`, `--target`) and uv, all from the harness's tools venv
//! (`CASTOFF_TEST_TOOLS`). Without the harness these tests panic with instructions; they never
//! skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::vars;
use castoff_test_support::workspace::fixture_release;
use castoff_wheel::build_wheel;

use crate::support::{Scratch, Variant, greeter_binary, greeter_wheel, input};

/// `$CASTOFF_TEST_TOOLS/venv/bin`, checked to hold `name`.
fn tool(name: &str) -> PathBuf {
    let tools = std::env::var_os(vars::TOOLS).unwrap_or_else(|| {
        panic!(
            "{} is not set: run `cargo xtask test`, or `source target/castoff-test/env.sh` \
             (written by `cargo xtask test --serve`) before `cargo test -p castoff-wheel`",
            vars::TOOLS
        )
    });
    let path = Path::new(&tools).join("venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: the harness installs it from xtask/tools/python-requirements.txt",
        path.display()
    );
    path
}

/// Runs a command with a clean Python environment; returns its output whatever the status.
fn run_unchecked(command: &mut Command) -> Output {
    // Variables the caller set on purpose (a test's PYTHONPATH) stay; inherited ones go.
    for inherited in [
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUSERBASE",
        "VIRTUAL_ENV",
        "PIP_USER",
    ] {
        if !command.get_envs().any(|(name, _)| name == inherited) {
            command.env_remove(inherited);
        }
    }
    command
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1");
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

/// Runs a command that must succeed; returns its stdout.
fn run(command: &mut Command) -> String {
    let output = run_unchecked(command);
    assert!(
        output.status.success(),
        "{command:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh virtual environment without pip (the tools' pip installs into it with `--python`).
fn fresh_venv(dir: &Path, system_site_packages: bool) -> PathBuf {
    let mut command = Command::new(tool("python"));
    command.args(["-m", "venv", "--without-pip"]);
    if system_site_packages {
        command.arg("--system-site-packages");
    }
    run(command.arg(dir));
    dir.join("bin/python")
}

fn pip(python: &Path) -> Command {
    let mut command = Command::new(tool("pip"));
    command.arg("--python").arg(python);
    command
}

/// Every file under `dir`, relative, except bytecode caches (pip writes and removes them).
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files
}

fn python_prints(python: &Path, code: &str, pythonpath: Option<&Path>) -> String {
    let mut command = Command::new(python);
    command.args(["-c", code]);
    let output = run_unchecked(match pythonpath {
        Some(path) => command.env("PYTHONPATH", path),
        None => &mut command,
    });
    assert!(
        output.status.success(),
        "python -c {code:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

const FIND: &str = "import greeter; print(greeter.find_greeter_bin())";

#[test]
fn twine_and_check_wheel_contents_accept_the_wheels() {
    let scratch = Scratch::new("twine");
    let mut wheels = vec![
        greeter_wheel(Variant::Dynamic, scratch.path()),
        greeter_wheel(Variant::Static, scratch.path()),
    ];
    // The two-apps fixture: a workspace dependency pinned in Requires-Dist, `rc` versions.
    let release = fixture_release("two-apps");
    let binary = greeter_binary(Variant::Static);
    for (package, bin) in [("toolkit", "tk"), ("toolkit-core", "tk-core")] {
        wheels.push(
            build_wheel(
                &input(
                    &release,
                    package,
                    "x86_64-unknown-linux-musl",
                    &[(bin, &binary)],
                ),
                scratch.path(),
            )
            .unwrap(),
        );
    }
    for wheel in &wheels {
        let twine = run(Command::new(tool("twine"))
            .args(["check", "--strict"])
            .arg(&wheel.path));
        assert!(twine.contains("PASSED"), "{}: {twine}", wheel.file_name);
        // No check is ignored: the module package keeps W007/W008 (empty library) away, and
        // `py.typed` is empty, which W002 (duplicate files) disregards.
        let contents = run(Command::new(tool("check-wheel-contents")).arg(&wheel.path));
        assert!(contents.contains(": OK"), "{}: {contents}", wheel.file_name);
    }
}

#[test]
fn auditwheel_agrees_with_the_tags() {
    let scratch = Scratch::new("auditwheel");
    let dynamic = greeter_wheel(Variant::Dynamic, scratch.path());
    let shown = run(Command::new(tool("auditwheel"))
        .arg("show")
        .arg(&dynamic.path));
    let consistent = auditwheel_tag(&shown);
    assert_eq!(
        dynamic.tags,
        std::slice::from_ref(&consistent),
        "castoff tagged {:?}, auditwheel says {consistent}:\n{shown}",
        dynamic.tags
    );

    // A static binary needs no shared library and no symbol version, so every policy accepts
    // it and auditwheel names the most compatible one, manylinux_2_5 (manylinux1). castoff
    // tags it manylinux_2_17 instead (Rust's own floor) plus musllinux_1_1, which auditwheel
    // does not consider for a glibc-built wheel.
    let r#static = greeter_wheel(Variant::Static, scratch.path());
    let shown = run(Command::new(tool("auditwheel"))
        .arg("show")
        .arg(&r#static.path));
    assert_eq!(auditwheel_tag(&shown), "manylinux_2_5_x86_64", "{shown}");
    assert_eq!(
        r#static.tags,
        [
            "manylinux2014_x86_64",
            "manylinux_2_17_x86_64",
            "musllinux_1_1_x86_64"
        ]
    );
}

/// The tag in `is consistent with the following platform tag: "manylinux_2_34_x86_64"`.
fn auditwheel_tag(shown: &str) -> String {
    let flat = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    let after = flat
        .split_once("consistent with the following platform tag: \"")
        .unwrap_or_else(|| panic!("unexpected auditwheel output:\n{shown}"))
        .1;
    after.split('"').next().unwrap().to_owned()
}

#[test]
fn pip_installs_runs_and_uninstalls() {
    let scratch = Scratch::new("pip");
    let wheel = greeter_wheel(Variant::Dynamic, scratch.path());
    let venv = scratch.path().join("venv");
    let python = fresh_venv(&venv, false);
    let before = files_under(&venv);

    run(pip(&python)
        .args(["install", "--no-index", "--no-deps"])
        .arg(&wheel.path));

    // On PATH: the venv's bin directory holds the binary itself, executable.
    let installed = venv.join("bin/greeter");
    let version = run(Command::new(&installed).arg("--version"));
    assert_eq!(version, "greeter 0.3.1\n");
    let via_module = run(Command::new(&python).args(["-m", "greeter", "--version"]));
    assert_eq!(via_module, "greeter 0.3.1\n");
    let status = run_unchecked(Command::new(&python).args(["-m", "greeter", "exit", "7"])).status;
    assert_eq!(status.code(), Some(7));
    let arguments = run(Command::new(&python).args(["-m", "greeter", "args", "a b", "", "ü"]));
    assert_eq!(arguments, "a b\n\nü\n");
    assert_eq!(
        python_prints(&python, FIND, None),
        installed.display().to_string()
    );

    run(pip(&python).args(["uninstall", "--yes", "greeter"]));
    let after = files_under(&venv);
    let leftover: Vec<_> = after.difference(&before).collect();
    assert!(
        leftover.is_empty(),
        "left behind after uninstall: {leftover:?}"
    );
}

#[test]
fn uv_installs_the_static_wheel() {
    let scratch = Scratch::new("uv");
    let wheel = greeter_wheel(Variant::Static, scratch.path());
    let venv = scratch.path().join("venv");
    let uv = |args: &[&str]| {
        let mut command = Command::new(tool("uv"));
        command
            .args(args)
            .env("UV_CACHE_DIR", scratch.path().join("uv-cache"))
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_CONFIG", "1");
        command
    };
    run(uv(&["venv", "--quiet", "--python"])
        .arg(tool("python"))
        .arg(&venv));
    let python = venv.join("bin/python");
    run(
        uv(&["pip", "install", "--offline", "--no-deps", "--python"])
            .arg(&python)
            .arg(&wheel.path),
    );
    let version = run(Command::new(venv.join("bin/greeter")).arg("--version"));
    assert_eq!(version, "greeter 0.3.1\n");
    let status = run_unchecked(Command::new(&python).args(["-m", "greeter", "exit", "7"])).status;
    assert_eq!(status.code(), Some(7));
    assert_eq!(
        python_prints(&python, FIND, None),
        venv.join("bin/greeter").display().to_string()
    );
    run(uv(&["pip", "uninstall", "--python"])
        .arg(&python)
        .arg("greeter"));
    assert!(!venv.join("bin/greeter").exists());
}

#[test]
fn pip_install_user_finds_the_binary() {
    let scratch = Scratch::new("pip-user");
    let wheel = greeter_wheel(Variant::Dynamic, scratch.path());
    // `--user` needs an interpreter whose user site is visible: a venv that includes the
    // system site-packages (a plain venv refuses `--user`), with its own user base.
    let python = fresh_venv(&scratch.path().join("venv"), true);
    let user_base = scratch.path().join("userbase");
    run(pip(&python)
        .args(["install", "--user", "--no-index", "--no-deps"])
        .arg(&wheel.path)
        .env("PYTHONUSERBASE", &user_base));
    let mut command = Command::new(&python);
    command.args(["-c", FIND]).env("PYTHONUSERBASE", &user_base);
    let found = run(&mut command);
    assert_eq!(
        found.trim(),
        user_base.join("bin/greeter").display().to_string()
    );
    let version = run(Command::new(found.trim()).arg("--version"));
    assert_eq!(version, "greeter 0.3.1\n");
}

#[test]
fn pip_install_target_finds_the_binary() {
    let scratch = Scratch::new("pip-target");
    let wheel = greeter_wheel(Variant::Dynamic, scratch.path());
    let python = fresh_venv(&scratch.path().join("venv"), false);
    let target = scratch.path().join("target-dir");
    run(pip(&python)
        .args(["install", "--no-index", "--no-deps", "--target"])
        .arg(&target)
        .arg(&wheel.path));
    let found = python_prints(&python, FIND, Some(&target));
    assert_eq!(found, target.join("bin/greeter").display().to_string());
    let status = run_unchecked(
        Command::new(&python)
            .args(["-m", "greeter", "exit", "7"])
            .env("PYTHONPATH", &target),
    )
    .status;
    assert_eq!(status.code(), Some(7));
}

#[test]
fn pip_install_prefix_finds_the_binary() {
    let scratch = Scratch::new("pip-prefix");
    let wheel = greeter_wheel(Variant::Dynamic, scratch.path());
    let python = fresh_venv(&scratch.path().join("venv"), false);
    let prefix = scratch.path().join("prefix");
    run(pip(&python)
        .args(["install", "--no-index", "--no-deps", "--prefix"])
        .arg(&prefix)
        .arg(&wheel.path));
    // Where pip put the package: the purelib path of the prefix.
    let site_packages = python_prints(
        &python,
        &format!(
            "import sysconfig; print(sysconfig.get_path('purelib', vars={{'base': {:?}}}))",
            prefix.display().to_string()
        ),
        None,
    );
    let found = python_prints(&python, FIND, Some(Path::new(&site_packages)));
    assert_eq!(found, prefix.join("bin/greeter").display().to_string());
}

/// PyPI's own metadata and file-name rules, offline: `packaging` (the library warehouse uses)
/// parses the file name and validates METADATA, and every License-File is in the wheel.
#[test]
fn packaging_validates_metadata_and_file_names() {
    let scratch = Scratch::new("packaging");
    let wheels = [
        greeter_wheel(Variant::Dynamic, scratch.path()),
        greeter_wheel(Variant::Static, scratch.path()),
    ];
    let script = r#"
import sys, zipfile
from packaging.metadata import Metadata
from packaging.utils import parse_wheel_filename
for path in sys.argv[1:]:
    name, version, build, tags = parse_wheel_filename(path.rsplit("/", 1)[-1])
    archive = zipfile.ZipFile(path)
    stem = f"{name.replace('-', '_')}-{version}"
    metadata = Metadata.from_email(archive.read(f"{stem}.dist-info/METADATA"), validate=True)
    assert metadata.name == name and metadata.version == version, (metadata.name, name)
    for license_file in metadata.license_files:
        archive.getinfo(f"{stem}.dist-info/licenses/{license_file}")
    print(name, version, metadata.license_expression, sorted(str(tag) for tag in tags))
"#;
    let mut command = Command::new(tool("python"));
    command.args(["-c", script]);
    for wheel in &wheels {
        command.arg(&wheel.path);
    }
    let printed = run(&mut command);
    assert!(
        printed.contains("greeter 0.3.1 MIT ['py3-none-manylinux2014_x86_64', 'py3-none-manylinux_2_17_x86_64', 'py3-none-musllinux_1_1_x86_64']"),
        "{printed}"
    );
}

/// Resolvers pick the static wheel on Alpine (musllinux) and on old glibc (manylinux2014),
/// and the dynamic one only where the glibc is at least its tag's. uv models whole platforms
/// (`--python-platform`, with every compatible older tag); pip's `--platform` matches tags
/// exactly, which shows that each tag of the compressed set counts on its own (old pip knows
/// only `manylinux2014`).
#[test]
fn resolvers_select_wheels_by_platform() {
    let scratch = Scratch::new("resolver-platform");
    let static_dir = scratch.path().join("static");
    let dynamic_dir = scratch.path().join("dynamic");
    std::fs::create_dir_all(&static_dir).unwrap();
    std::fs::create_dir_all(&dynamic_dir).unwrap();
    greeter_wheel(Variant::Static, &static_dir);
    let dynamic_wheel = greeter_wheel(Variant::Dynamic, &dynamic_dir);
    let requirements = scratch.file("requirements.in", b"greeter\n");
    let uv_resolves = |links: &Path, platform: &str| {
        run_unchecked(
            Command::new(tool("uv"))
                .args([
                    "pip",
                    "compile",
                    "--quiet",
                    "--no-index",
                    "--only-binary",
                    ":all:",
                ])
                .args(["--python-version", "3.12", "--python-platform", platform])
                // An explicit interpreter: uv's discovery of one can take seconds.
                .arg("--python")
                .arg(tool("python"))
                .arg("--find-links")
                .arg(links)
                .arg(&requirements)
                .env("UV_CACHE_DIR", scratch.path().join("uv-cache"))
                .env("UV_NO_CONFIG", "1"),
        )
        .status
        .success()
    };
    let pip_downloads = |links: &Path, platform: &str| {
        run_unchecked(
            Command::new(tool("pip"))
                .args(["download", "--no-index", "--no-deps", "--only-binary=:all:"])
                .args([
                    "--python-version",
                    "3.12",
                    "--platform",
                    platform,
                    "--find-links",
                ])
                .arg(links)
                .arg("--dest")
                .arg(scratch.path().join("downloads"))
                .arg("greeter"),
        )
        .status
        .success()
    };
    for platform in [
        "x86_64-unknown-linux-musl",
        "x86_64-manylinux_2_17",
        "x86_64-manylinux_2_28",
        "x86_64-manylinux_2_40",
    ] {
        assert!(
            uv_resolves(&static_dir, platform),
            "static wheel on {platform}"
        );
    }
    for platform in [
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
        "musllinux_1_1_x86_64",
    ] {
        assert!(
            pip_downloads(&static_dir, platform),
            "static wheel on {platform}"
        );
    }
    assert!(!uv_resolves(&static_dir, "aarch64-unknown-linux-musl"));

    let glibc_minor: u32 = dynamic_wheel.tags[0]
        .strip_prefix("manylinux_2_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|minor| minor.parse().ok())
        .unwrap();
    let on = |minor: u32| format!("x86_64-manylinux_2_{minor}");
    assert!(uv_resolves(&dynamic_dir, &on(glibc_minor)), "{glibc_minor}");
    assert!(
        !uv_resolves(&dynamic_dir, &on(glibc_minor - 1)),
        "{glibc_minor}"
    );
    assert!(!uv_resolves(&dynamic_dir, "x86_64-unknown-linux-musl"));
}

/// The generated module with several binaries imports on the tools' Python, and a missing
/// binary is a FileNotFoundError that lists where it looked.
#[test]
fn module_reports_a_missing_binary() {
    let scratch = Scratch::new("module");
    let package = scratch.path().join("tools_pkg");
    std::fs::create_dir_all(&package).unwrap();
    let binaries = [
        ("tool".to_owned(), "tool".to_owned()),
        ("tool-admin".to_owned(), "tool-admin".to_owned()),
    ];
    std::fs::write(
        package.join("__init__.py"),
        castoff_wheel::module::init_py("tools", "1.0.0", &binaries),
    )
    .unwrap();
    std::fs::write(
        package.join("__main__.py"),
        castoff_wheel::module::main_py("tools_pkg", "tool"),
    )
    .unwrap();
    let python = tool("python");
    let output = run_unchecked(
        Command::new(&python)
            .args([
                "-c",
                "import tools_pkg; print(tools_pkg.__all__, tools_pkg.__version__); tools_pkg.find_tool_admin_bin()",
            ])
            .env("PYTHONPATH", scratch.path()),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stdout, "['find_tool_bin', 'find_tool_admin_bin'] 1.0.0\n");
    assert!(
        stderr.contains("FileNotFoundError: tools: cannot find `tool-admin` in any of: ")
            && stderr.contains(&scratch.path().join("bin").display().to_string())
            && stderr.contains("python -m pip install --force-reinstall tools"),
        "{stderr}"
    );
    // `python -m` fails the same way, with a non-zero exit code.
    let output = run_unchecked(
        Command::new(&python)
            .args(["-m", "tools_pkg", "--version"])
            .env("PYTHONPATH", scratch.path()),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot find `tool`"));
}
