//! The other platforms the harness provides (docs/testing.md, "Other platforms"), each proven
//! to work: the platform probe's builds for every target (the foreign Linux ones run through
//! binfmt_misc and qemu as any program runs, with exit codes and SIGTERM passed through; the
//! macOS and Windows ones carry the headers castoff's binary check wants), the arm64 Debian
//! root (Python and node say aarch64 and arm64), the musl-only root (musl runs, glibc does
//! not, no `ldd`), and the package managers.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;

use castoff_plan::Target;
use castoff_test_support::TestEnv;
use castoff_test_support::platforms::{
    EMULATORS, PROBE_BIN, PROBE_SIGTERM_EXIT, PROBE_SIGTERM_LINE, PROBE_TARGETS, PROBE_VERSION,
    ProbeOs, ProbeTarget, Rootfs, terminate_sleeping_probe,
};
use castoff_test_support::workspace::{output_text, repository_root};
use castoff_test_support::workspace::{run_to_end as run, stdout_trimmed as stdout};
use castoff_wheel::WheelError;
use castoff_wheel::platform::{BinaryPlatform, inspect_binary};

/// Runs one probe build with `args` as this machine runs any program (binfmt_misc hands a
/// foreign one to qemu).
fn probe(env: &TestEnv, target: &ProbeTarget, args: &[&str]) -> Output {
    let mut command = target.command(&env.probe_binary(target.triple));
    command.args(args);
    run(command, &format!("{} {}", target.triple, args.join(" ")))
}

#[test]
fn every_linux_build_of_the_probe_runs_here_and_says_where() {
    let env = TestEnv::get();
    let linux: Vec<&ProbeTarget> = PROBE_TARGETS.iter().filter(|t| t.runs_here()).collect();
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = linux
            .iter()
            .map(|target| {
                let env = &env;
                scope.spawn(move || check_one_build(env, target))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().expect("no panic").err())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let emulated: Vec<&str> = linux.iter().filter_map(|t| t.emulator).collect();
    env.figure(format!(
        "platforms: {} Linux builds of the probe ran ({} under qemu through binfmt_misc: {}; {} native), each with exit codes 0, 7, 255",
        linux.len(),
        emulated.len(),
        dedup(&emulated).join(", "),
        linux.len() - emulated.len()
    ));
}

fn dedup<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(name) {
            seen.push(name);
        }
    }
    seen
}

/// The contract of the Rust greeter plus the platform line, for one build.
fn check_one_build(env: &TestEnv, target: &ProbeTarget) -> Result<(), String> {
    let fail = |what: &str, output: &Output| {
        Err(format!(
            "{}: {what}: {}",
            target.triple,
            output_text(output)
        ))
    };
    let output = probe(env, target, &["platform"]);
    let expected = target.platform_line_here().expect("a Linux build");
    if !output.status.success() || stdout(&output) != expected {
        return fail(&format!("expected `{expected}`"), &output);
    }
    let output = probe(env, target, &["--version"]);
    if stdout(&output) != format!("{PROBE_BIN} {PROBE_VERSION}") {
        return fail("--version", &output);
    }
    let output = probe(env, target, &["healthcheck"]);
    if !output.status.success() || stdout(&output) != "greeter: healthy" {
        return fail("healthcheck", &output);
    }
    for code in [0, 7, 255] {
        let output = probe(env, target, &["exit", &code.to_string()]);
        if output.status.code() != Some(code) {
            return fail(&format!("exit {code}"), &output);
        }
    }
    let output = probe(env, target, &["args", "a b", "ü", "--x"]);
    if stdout(&output) != "a b\nü\n--x" {
        return fail("args arrive verbatim", &output);
    }
    Ok(())
}

/// `greeter sleep` under qemu: once it says it sleeps, SIGTERM to the process (qemu, which
/// binfmt_misc started in its place) reaches the program's handler, which prints its line and
/// exits 143.
#[test]
fn sigterm_reaches_the_probe_under_every_emulator() {
    let env = TestEnv::get();
    let mut checked = Vec::new();
    for target in PROBE_TARGETS.iter().filter(|t| t.runs_here()) {
        let mut command = target.command(&env.probe_binary(target.triple));
        let mut child = command
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{}: {error}", target.triple));
        assert_eq!(
            terminate_sleeping_probe(&mut child, target.triple),
            (Some(PROBE_SIGTERM_EXIT), PROBE_SIGTERM_LINE.to_owned()),
            "{}",
            target.triple
        );
        checked.push(target.triple);
    }
    env.figure(format!(
        "platforms: SIGTERM ended `greeter sleep` with {PROBE_SIGTERM_EXIT} on {} Linux builds ({} emulators)",
        checked.len(),
        EMULATORS.len()
    ));
}

/// Every build for a target castoff supports passes the check `dist --prebuilt` makes (the
/// builders' header reader), with what the target needs: macOS builds name Rust's minimum
/// OS, Windows builds are PE files of the target's machine, musl builds are static, glibc
/// builds need nothing newer than their floor. And the check is not blind: a build is
/// refused for another architecture's target.
#[test]
fn every_build_for_a_supported_target_passes_castoff_s_binary_check() {
    let env = TestEnv::get();
    let mut kinds = Vec::new();
    for target in Target::all() {
        let path = env.probe_binary(target.triple);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let facts = inspect_binary(&data[..], &path, target)
            .unwrap_or_else(|error| panic!("{}: {error}", target.triple));
        let probe = castoff_test_support::platforms::probe_target(target.triple);
        match (probe.os, facts.platform) {
            (ProbeOs::MacOs, BinaryPlatform::Macos { major, minor, .. }) => {
                let wanted = if target.triple.starts_with("aarch64") {
                    (11, 0)
                } else {
                    (10, 12)
                };
                assert_eq!((major, minor), wanted, "{}", target.triple);
            }
            (ProbeOs::Windows, BinaryPlatform::Windows) => {}
            (ProbeOs::Linux, BinaryPlatform::StaticLinux) if !probe.glibc() => {}
            (ProbeOs::Linux, BinaryPlatform::Manylinux { glibc_minor }) if probe.glibc() => {
                // The oldest manylinux policy of the architecture: auditwheel's riscv64
                // policies start at 2.31 (the probe needs 2.27, riscv64's first glibc).
                let oldest = if target.python_arch == "riscv64" {
                    31
                } else {
                    17
                };
                assert!(
                    glibc_minor <= oldest,
                    "{}: glibc 2.{glibc_minor}",
                    target.triple
                );
            }
            (os, platform) => panic!("{}: {os:?} build read as {platform:?}", target.triple),
        }
        assert!(!facts.has_debug_info, "{}: stripped", target.triple);
        kinds.push(format!("{:?}", probe.os));
    }
    // The other way round: each build against a target of another architecture (same OS).
    let mut refused = 0;
    for target in Target::all() {
        let other = Target::all()
            .iter()
            .find(|other| other.os == target.os && other.python_arch != target.python_arch)
            .expect("another architecture of the same OS");
        let path = env.probe_binary(other.triple);
        let data = std::fs::read(&path).unwrap();
        let error = inspect_binary(&data[..], &path, target)
            .expect_err(&format!("{} taken for {}", other.triple, target.triple));
        assert!(
            matches!(error, WheelError::WrongArchitecture { .. }),
            "{} for {}: {error}",
            other.triple,
            target.triple
        );
        refused += 1;
    }
    let count = |os: &str| kinds.iter().filter(|kind| *kind == os).count();
    env.figure(format!(
        "platforms: castoff's binary check accepts the probe for all {} supported targets ({} Linux, {} macOS, {} Windows) and refuses {refused} builds of another architecture",
        kinds.len(),
        count("Linux"),
        count("MacOs"),
        count("Windows")
    ));
}

/// Which handler runs each architecture, and that it has the `F` flag (so it works inside
/// the roots).
#[test]
fn every_emulated_architecture_has_a_fix_binary_handler() {
    let env = TestEnv::get();
    let mut handlers = Vec::new();
    for emulator in EMULATORS {
        let name = env
            .binfmt
            .split(',')
            .find_map(|pair| pair.strip_prefix(&format!("{}=", emulator.name)))
            .unwrap_or_else(|| panic!("no handler for {} in `{}`", emulator.name, env.binfmt));
        let text = std::fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(name))
            .unwrap_or_else(|error| panic!("handler {name}: {error}"));
        assert!(text.starts_with("enabled\n"), "{name}: {text}");
        let flags = text
            .lines()
            .find_map(|line| line.strip_prefix("flags: "))
            .unwrap_or_default();
        assert!(flags.contains('F'), "{name}: flags `{flags}`");
        handlers.push(name.to_owned());
    }
    env.figure(format!(
        "platforms: binfmt_misc handlers {}",
        handlers.join(", ")
    ));
}

fn in_root(root: &Rootfs, program: &str, args: &[&str]) -> Output {
    let mut command = root.command(program);
    command.args(args);
    run(command, &format!("{program} in {}", root.dir.display()))
}

/// The arm64 root: Python, pip and node are arm64 builds running under qemu, and the
/// aarch64 probe builds run there without help (the glibc one finds the root's glibc).
#[test]
fn the_arm64_root_runs_python_node_and_the_aarch64_builds() {
    let env = TestEnv::get();
    let root = env.arm64_root();
    let output = in_root(
        &root,
        "/usr/bin/python3",
        &["-c", "import platform; print(platform.machine())"],
    );
    assert_eq!(stdout(&output), "aarch64", "{}", output_text(&output));
    let output = in_root(&root, "/usr/bin/python3", &["-m", "pip", "--version"]);
    assert!(output.status.success(), "{}", output_text(&output));
    let pip = stdout(&output);
    let output = in_root(&root, "/usr/local/bin/node", &["-p", "process.arch"]);
    assert_eq!(stdout(&output), "arm64", "{}", output_text(&output));
    let output = in_root(&root, "/usr/local/bin/node", &["--version"]);
    let node = stdout(&output);
    let output = in_root(&root, "/bin/busybox", &["sh", "-c", "echo $((6 * 7))"]);
    assert_eq!(stdout(&output), "42", "{}", output_text(&output));

    for triple in ["aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl"] {
        let inside = format!("/tmp/{triple}-{}", std::process::id());
        root.install_file(&env.probe_binary(triple), &inside);
        let output = in_root(&root, &inside, &["platform"]);
        let target = castoff_test_support::platforms::probe_target(triple);
        assert_eq!(
            Some(stdout(&output)),
            target.platform_line_here(),
            "{}",
            output_text(&output)
        );
        let output = in_root(&root, &inside, &["exit", "9"]);
        assert_eq!(output.status.code(), Some(9));
        std::fs::remove_file(root.host_path(&inside)).unwrap();
    }
    env.figure(format!(
        "platforms: arm64 Debian root: python3 says aarch64 ({pip}), node {node} says arm64, aarch64 glibc and musl probes run"
    ));
}

/// The musl root: a musl build runs, a glibc build cannot (its loader is missing), and there
/// is no `ldd` and no glibc anywhere.
#[test]
fn the_musl_root_runs_musl_builds_only() {
    let env = TestEnv::get();
    let root = env.musl_root();
    let pid = std::process::id();
    let musl = format!("/tmp/musl-{pid}");
    let glibc = format!("/tmp/glibc-{pid}");
    root.install_file(&env.probe_binary("x86_64-unknown-linux-musl"), &musl);
    root.install_file(&env.probe_binary("x86_64-unknown-linux-gnu"), &glibc);

    let output = in_root(&root, &musl, &["platform"]);
    assert_eq!(
        Some(stdout(&output)),
        castoff_test_support::platforms::probe_target("x86_64-unknown-linux-musl")
            .platform_line_here(),
        "{}",
        output_text(&output)
    );
    let output = in_root(&root, &glibc, &["platform"]);
    assert!(!output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("No such file or directory"),
        "the missing loader: {}",
        output_text(&output)
    );
    let output = in_root(&root, "/bin/sh", &["-c", "command -v ldd"]);
    assert!(
        !output.status.success(),
        "ldd found: {}",
        output_text(&output)
    );
    let output = in_root(
        &root,
        "/bin/sh",
        &["-c", "command -v wget sha256sum tar uname"],
    );
    assert!(output.status.success(), "{}", output_text(&output));

    let mut glibc_files = Vec::new();
    walk(&root.dir, &mut |path| {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("libc.so.6") || name.starts_with("ld-linux") || name == "ldd" {
            glibc_files.push(path.display().to_string());
        }
    });
    assert!(glibc_files.is_empty(), "{glibc_files:?}");
    for inside in [&musl, &glibc] {
        std::fs::remove_file(root.host_path(inside)).unwrap();
    }
    env.figure(
        "platforms: musl root: the x86_64 musl probe runs, the glibc one does not, no ldd"
            .to_owned(),
    );
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        visit(&path);
        if entry.file_type().unwrap().is_dir() {
            walk(&path, visit);
        }
    }
}

/// pnpm, yarn (berry) and bun from the Node tools, uv from the venv: each answers with the
/// version pinned in xtask/tools.
#[test]
fn the_package_managers_answer_with_their_pinned_versions() {
    let env = TestEnv::get();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repository_root().join("xtask/tools/node/package.json")).unwrap(),
    )
    .unwrap();
    let requirements =
        std::fs::read_to_string(repository_root().join("xtask/tools/python-requirements.txt"))
            .unwrap();
    let uv_pin = requirements
        .lines()
        .find_map(|line| line.trim().strip_prefix("uv=="))
        .expect("uv is pinned");
    let mut answers = Vec::new();
    for (tool, package) in [
        ("pnpm", "pnpm"),
        ("yarn", "@yarnpkg/cli-dist"),
        ("bun", "bun"),
    ] {
        let pinned = manifest["dependencies"][package]
            .as_str()
            .unwrap_or_else(|| panic!("{package} is not in xtask/tools/node/package.json"));
        let scratch = env.scratch_dir(&format!("platforms-{tool}-{}", std::process::id()));
        let mut command = Command::new(env.tool(tool));
        command.arg("--version").current_dir(&scratch);
        let output = run(command, tool);
        assert_eq!(stdout(&output), pinned, "{tool}: {}", output_text(&output));
        answers.push(format!("{tool} {pinned}"));
    }
    let mut command = Command::new(env.tool("uv"));
    command.arg("--version");
    let output = run(command, "uv");
    assert!(
        stdout(&output).starts_with(&format!("uv {uv_pin}")),
        "{}",
        output_text(&output)
    );
    answers.push(format!("uv {uv_pin}"));
    env.figure(format!(
        "platforms: package managers {}",
        answers.join(", ")
    ));
}
