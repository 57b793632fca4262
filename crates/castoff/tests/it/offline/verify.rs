//! `castoff verify`'s refusals before anything runs (no server, no client needed): an unknown
//! `--require`, a zero `--timeout`, a dist/ without a manifest. Installs are `live::verify`.

use std::process::Command;

use castoff_test_support::workspace::{fixture_dir, output_text as text};

fn verify(args: &[&str]) -> (Option<i32>, String) {
    let workspace = fixture_dir("single-cli");
    let scratch =
        std::env::temp_dir().join(format!("castoff-verify-offline-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("verify")
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--dist-dir")
        .arg(&scratch)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    (output.status.code(), text(&output))
}

#[test]
fn an_unknown_client_is_a_usage_error_naming_the_known_ones() {
    let (code, output) = verify(&["--require", "npx"]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("--require npx: castoff verify knows no client named `npx`")
            && output.contains(
                "hint: name one of pip, uv, pipx, npm, pnpm, yarn, bun, deno, docker, podman, runc, install.sh"
            ),
        "{output}"
    );
}

#[test]
fn a_zero_timeout_is_a_usage_error() {
    let (code, output) = verify(&["--timeout", "0"]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("--timeout 0 leaves no client any time"),
        "{output}"
    );
}

#[test]
fn a_dist_without_a_manifest_says_to_run_dist_first() {
    let (code, output) = verify(&[]);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("could not read") && output.contains("manifest.json"),
        "{output}"
    );
    assert!(output.contains("hint: run `castoff dist`"), "{output}");
}

/// Faults no real client shows on demand, from stand-ins on an otherwise empty PATH (the real
/// clients are `live::verify`'s): a client that hangs is killed at `--timeout` with what it
/// started, one that prints another version fails naming the text it wanted, one that exits
/// non-zero fails with its code and last words; the clients not on PATH are absent.
/// The single-cli fixture for x86_64 only, its dist made with a stand-in binary: what the
/// stand-in clients below are asked to install.
fn dist_for_stand_ins(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let scratch = super::dist::scratch(name);
    let workspace = super::dist::single_cli_workspace(&scratch, |toml| {
        toml.lines()
            .map(|line| {
                if line.starts_with("targets = ") {
                    "targets = [\"x86_64-unknown-linux-gnu\"]".to_owned()
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    castoff_test_support::binaries::write_static_elf(
        &workspace.join("target/x86_64-unknown-linux-gnu/release"),
        "greeter",
        castoff_test_support::binaries::EM_X86_64,
        "hello from greeter",
    );
    let dist = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args([
            "dist",
            "--no-build",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(dist.status.success(), "{}", text(&dist));

    (scratch, workspace)
}

/// Writes executable stand-in scripts into `bin`.
fn stand_ins(bin: &std::path::Path, scripts: &[(&str, String)]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(bin).unwrap();
    for (name, script) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Ctrl-C ends the clients verify started (they run in process groups of their own, which
/// the terminal's SIGINT does not reach) and the scratch directory, and exits 130.
#[test]
fn an_interrupt_ends_the_clients_and_removes_the_scratch_directory() {
    let (scratch, workspace) = dist_for_stand_ins("verify-interrupt");
    let bin = scratch.join("bin");
    let pid_file = scratch.join("sleeper.pid");
    stand_ins(
        &bin,
        &[(
            "npx",
            format!(
                "#!/bin/sh\n/bin/sleep 600 &\necho $! > {}.tmp\n/bin/mv {}.tmp {}\nwait\n",
                pid_file.display(),
                pid_file.display(),
                pid_file.display()
            ),
        )],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["verify", "--timeout", "600", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("PATH", &bin)
        .env(
            "CARGO",
            std::env::var("CARGO").expect("cargo test sets CARGO"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The client is running once its grandchild has written its pid.
    while !pid_file.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "verify ended ({status}) before the stand-in npx ran: {}",
                text(&output)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let grandchild = std::fs::read_to_string(&pid_file).unwrap();
    let castoff = child.id();
    let scratch_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("castoff-verify-{castoff}-")))
            })
            .collect()
    };
    assert_eq!(scratch_dirs().len(), 1, "verify's scratch directory");
    let kill = Command::new("kill")
        .args(["-INT", &castoff.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        text(&output).contains("interrupted; the clients were stopped"),
        "{}",
        text(&output)
    );
    let state =
        std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim())).unwrap_or_default();
    let state = state.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        state.is_empty() || state.starts_with('Z'),
        "{grandchild} survived: {state}"
    );
    assert_eq!(scratch_dirs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn hanging_lying_and_failing_clients_are_each_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let (scratch, workspace) = dist_for_stand_ins("verify-faults");
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pid_file = scratch.join("sleeper.pid");
    for (name, script) in [
        // Starts a grandchild that would hold the pipes for ten minutes, then waits on it.
        (
            "npx",
            format!(
                "#!/bin/sh\n/bin/sleep 600 &\necho $! > {}\nwait\n",
                pid_file.display()
            ),
        ),
        ("uv", "#!/bin/sh\necho 'greeter 9.9.9'\n".to_owned()),
        (
            "bun",
            "#!/bin/sh\necho 'error: no such package' >&2\nexit 3\n".to_owned(),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["--json", "verify", "--timeout", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("PATH", &bin)
        .env(
            "CARGO",
            std::env::var("CARGO").expect("cargo test sets CARGO"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cell = |client: &str| {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["client"] == client)
            .unwrap_or_else(|| panic!("no {client} in {json:#}"))
            .clone()
    };
    let npm = cell("npm");
    assert_eq!(npm["status"], "failed");
    assert!(
        npm["reason"]
            .as_str()
            .unwrap()
            .starts_with("installing and running greeter did not finish within 1 s"),
        "{npm:#}"
    );
    // The grandchild went with it: the process group was killed.
    let grandchild = std::fs::read_to_string(&pid_file).unwrap();
    let state =
        std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim())).unwrap_or_default();
    let state = state.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        state.is_empty() || state.starts_with('Z'),
        "{grandchild} survived: {state}"
    );

    let uv = cell("uv");
    assert_eq!(uv["status"], "failed");
    assert_eq!(
        uv["reason"], "`greeter --version` printed no `0.3.1`: greeter 9.9.9",
        "{uv:#}"
    );
    let bun = cell("bun");
    assert_eq!(bun["status"], "failed");
    let reason = bun["reason"].as_str().unwrap();
    assert!(
        reason.contains("(exit code 3)") && reason.ends_with("error: no such package"),
        "{reason}"
    );
    for absent in [
        "pip",
        "pipx",
        "pnpm",
        "yarn",
        "deno",
        "docker",
        "podman",
        "runc",
        "install.sh",
    ] {
        assert_eq!(cell(absent)["status"], "absent", "{absent}");
    }

    // `verify.smoke` and `verify.expect` replace `greeter --version`: the client is asked to
    // run the configured command ({version} filled in), whose output must hold `expect`.
    let cargo_toml = workspace.join("Cargo.toml");
    let configured = std::fs::read_to_string(&cargo_toml).unwrap().replace(
        "bins = [\"greeter\"]",
        "bins = [\"greeter\"]\nverify = { smoke = [\"greeter\", \"greet\", \"v{version}\"], expect = \"greet v{version}\" }",
    );
    assert!(configured.contains("verify = "), "{configured}");
    std::fs::write(&cargo_toml, configured).unwrap();
    std::fs::write(bin.join("uv"), "#!/bin/sh\necho \"$@\"\n").unwrap();
    std::fs::remove_file(bin.join("npx")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["--json", "verify", "--manifest-path"])
        .arg(&cargo_toml)
        .env("PATH", &bin)
        .env("CARGO", std::env::var("CARGO").unwrap())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
    let uv = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["client"] == "uv")
        .unwrap();
    assert_eq!(uv["status"], "ok", "{uv:#}");
    let command = uv["commands"][0].as_str().unwrap();
    assert!(
        command.ends_with("--from greeter==0.3.1 greeter greet v0.3.1"),
        "{command}"
    );

    // A password in --pypi-index-url reaches the client, never the table or the JSON, not
    // even through what the client prints back.
    std::fs::write(bin.join("uv"), "#!/bin/sh\necho \"$@\" >&2\nexit 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["--json", "verify", "--manifest-path"])
        .arg(&cargo_toml)
        .args([
            "--pypi-index-url",
            "http://ci:s3cret-pw@127.0.0.1:9/simple/",
        ])
        .env("PATH", &bin)
        .env("CARGO", std::env::var("CARGO").unwrap())
        .output()
        .unwrap();
    let all = text(&output);
    assert!(!all.contains("s3cret-pw"), "{all}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let uv = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["client"] == "uv")
        .unwrap();
    assert_eq!(uv["status"], "failed", "{uv:#}");
    let command = uv["commands"][0].as_str().unwrap();
    assert!(
        command.contains("--default-index http://<redacted>@127.0.0.1:9/simple/"),
        "{command}"
    );
    assert!(
        uv["reason"]
            .as_str()
            .unwrap()
            .contains("http://<redacted>@127.0.0.1:9/simple/"),
        "{uv:#}"
    );
}
