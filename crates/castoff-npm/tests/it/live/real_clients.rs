//! castoff's npm packages in the hands of real clients: npm installs them (from the files,
//! offline, and from a Verdaccio registry with platform selection), the launcher runs the
//! binary with exit codes and signals intact, Node uses the API, tsc type-checks the TS example,
//! publint and attw lint both kinds of package. Tools and the registry come from the harness
//! (`cargo xtask test`); a missing one fails the test, it is never skipped.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use castoff_npm::{BuiltPackage, LauncherInput, PlatformInput};
use castoff_plan::Release;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::fixture_release;

use crate::common::{self, HOST_TRIPLE, build_fixture, fixture_binaries};

/// The single-cli packages, built once per test process.
fn greeter_packages() -> &'static common::BuiltFixture {
    static BUILT: OnceLock<common::BuiltFixture> = OnceLock::new();
    BUILT.get_or_init(|| build_fixture("single-cli", &common::fresh_dir("real-clients-dist")))
}

/// `npm …` with no user config, a private cache, and no notifier/audit/fund traffic.
fn npm(env: &TestEnv, cwd: &Path, cache: &Path) -> Command {
    let mut command = Command::new(env.tool("npm"));
    command
        .current_dir(cwd)
        .arg("--cache")
        .arg(cache)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_userconfig", "/dev/null");
    command
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh npm project directory with an empty package.json.
fn project(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.scratch_dir(&format!("castoff-npm-{name}"));
    std::fs::write(
        dir.join("package.json"),
        "{\"name\": \"test-project\", \"version\": \"1.0.0\", \"private\": true}\n",
    )
    .unwrap();
    dir
}

/// The host platform package and the launcher of the greeter fixture.
fn host_and_launcher() -> (&'static BuiltPackage, &'static BuiltPackage) {
    let (platforms, launcher) = &greeter_packages().apps[0];
    let host = platforms
        .iter()
        .find(|(target, _)| target.triple == HOST_TRIPLE)
        .map(|(_, package)| package)
        .unwrap();
    (host, launcher)
}

/// A project where the launcher and the host's platform package were installed from the
/// tarballs, offline. (The other platform packages are optional dependencies npm cannot fetch
/// offline; npm skips them, as it would skip non-matching ones.)
fn installed_from_files(env: &TestEnv, name: &str) -> PathBuf {
    let dir = project(env, name);
    let (host, launcher) = host_and_launcher();
    let output = run(npm(env, &dir, &dir.join(".npm-cache"))
        .args(["install", "--offline", "--no-save"])
        .arg(&launcher.path)
        .arg(&host.path));
    assert_success("npm install (offline, from the files)", &output);
    dir
}

fn greeter(dir: &Path) -> Command {
    let mut command = Command::new(dir.join("node_modules/.bin/greeter"));
    command.current_dir(dir);
    command
}

#[test]
fn npm_installs_from_the_files_and_the_launcher_behaves_like_the_binary() {
    let env = TestEnv::get();
    let dir = installed_from_files(&env, "files");

    // npx finds the bin and prints the version.
    let output = run(npm(&env, &dir, &dir.join(".npm-cache")).args([
        "exec",
        "--offline",
        "--",
        "greeter",
        "--version",
    ]));
    assert_success("npx greeter --version", &output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "greeter 0.3.1\n");

    // The binary's own exit codes come through.
    let output = run(greeter(&dir).arg("bogus-args"));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown command `bogus-args`"));
    assert_eq!(
        run(greeter(&dir).args(["exit", "7"])).status.code(),
        Some(7)
    );
    assert_eq!(
        run(greeter(&dir).args(["exit", "0"])).status.code(),
        Some(0)
    );

    // Arguments arrive verbatim: spaces, empty strings, quotes, globs, non-ASCII.
    let args = ["a", "b c", "", "\"q\"", "*", "$HOME", "héllo"];
    let output = run(greeter(&dir).arg("args").args(args));
    assert_success("greeter args", &output);
    let expected: String = args.iter().map(|arg| format!("{arg}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

    // stdin is inherited too: the binary reads nothing, so this only must not hang.
    let output = run(greeter(&dir).arg("--version").stdin(Stdio::null()));
    assert_success("greeter with stdin closed", &output);
}

/// The pid of `parent`'s only child process, waiting for it to appear.
fn child_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        let found: Vec<u32> = std::fs::read_dir(format!("/proc/{parent}/task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
                    .chain([children.clone()])
                    .flat_map(|text| {
                        text.split_whitespace()
                            .filter_map(|pid| pid.parse().ok())
                            .collect::<Vec<u32>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(&pid) = found.first() {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "process {parent} started no child"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

fn wait_with_timeout(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the launcher did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_are_passed_through_both_ways() {
    let env = TestEnv::get();
    let dir = installed_from_files(&env, "signals");

    // The child is killed by SIGTERM: the launcher dies of SIGTERM too (not exit 0, not 1).
    let mut launcher = greeter(&dir).args(["sleep", "60"]).spawn().unwrap();
    let binary = child_of(launcher.id());
    kill("TERM", binary);
    let status = wait_with_timeout(&mut launcher);
    assert_eq!(status.signal(), Some(15), "launcher: {status:?}");

    // SIGKILL of the child, same story.
    let mut launcher = greeter(&dir).args(["sleep", "60"]).spawn().unwrap();
    let binary = child_of(launcher.id());
    kill("KILL", binary);
    let status = wait_with_timeout(&mut launcher);
    assert_eq!(status.signal(), Some(9), "launcher: {status:?}");

    // SIGTERM, SIGINT and SIGHUP sent to the launcher reach the binary, which dies of it; the
    // launcher then dies of the same signal.
    for (name, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let mut launcher = greeter(&dir).args(["sleep", "60"]).spawn().unwrap();
        let binary = child_of(launcher.id());
        kill(name, launcher.id());
        let status = wait_with_timeout(&mut launcher);
        assert_eq!(
            status.signal(),
            Some(number),
            "SIG{name}: launcher {status:?}"
        );
        assert!(
            !Path::new(&format!("/proc/{binary}")).exists()
                || std::fs::read_to_string(format!("/proc/{binary}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z ")),
            "SIG{name}: the binary {binary} is still running"
        );
    }
}

#[test]
fn api_from_node() {
    let env = TestEnv::get();
    let dir = installed_from_files(&env, "api");
    let script = r#"
        const assert = require("node:assert/strict");
        const fs = require("node:fs");
        const greeter = require("@acme/greeter");
        (async () => {
          const path = greeter.binaryPath();
          assert.ok(path.endsWith("node_modules/@acme/greeter-linux-x64-gnu/bin/greeter"), path);
          fs.accessSync(path, fs.constants.X_OK);
          assert.equal(greeter.binaryPath("greeter"), path);
          assert.throws(() => greeter.binaryPath("nope"), /has no binary named "nope"; it has: greeter/);
          assert.equal(greeter.version, "0.3.1");
          assert.equal(greeter.packageName, "@acme/greeter");
          assert.deepEqual(greeter.bins, ["greeter"]);

          const version = await greeter.run(["--version"]);
          assert.deepEqual(version, { code: 0, signal: null, stdout: "greeter 0.3.1\n", stderr: "" });
          const bytes = await greeter.run(["--version"], { encoding: "buffer" });
          assert.ok(Buffer.isBuffer(bytes.stdout));
          const failed = await greeter.run(["exit", "7"]);
          assert.equal(failed.code, 7);
          const args = await greeter.run(["args", "x y", ""]);
          assert.equal(args.stdout, "x y\n\n");
          const inherited = await greeter.run(["exit", "3"], { stdio: "inherit" });
          assert.deepEqual(inherited, { code: 3, signal: null });
          const timedOut = await greeter.run(["sleep", "60"], { timeout: 200 });
          assert.deepEqual([timedOut.code, timedOut.signal], [null, "SIGTERM"]);

          const child = greeter.spawn(["sleep", "60"]);
          assert.ok(child.pid > 0);
          child.kill("SIGINT");
          assert.deepEqual(await child.exited, { code: null, signal: "SIGINT" });

          // ES modules get the same named exports.
          const esm = await import("@acme/greeter");
          assert.equal(typeof esm.run, "function");
          assert.equal(esm.binaryPath(), path);
          console.log("api ok");
        })().catch((error) => { console.error(error); process.exit(1); });
    "#;
    let output = run(Command::new(env.tool("node"))
        .current_dir(&dir)
        .args(["-e", script]));
    assert_success("the API script", &output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "api ok\n");

    // The shipped JS example runs as written.
    std::fs::copy(
        dir.join("node_modules/@acme/greeter/examples/run.js"),
        dir.join("example.js"),
    )
    .unwrap();
    let output = run(Command::new(env.tool("node"))
        .current_dir(&dir)
        .arg("example.js"));
    assert_success("examples/run.js", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("exit code 0: greeter 0.3.1"), "{stdout}");
}

#[test]
fn the_override_variable_replaces_the_binary() {
    let env = TestEnv::get();
    let dir = installed_from_files(&env, "override");
    let fake = dir.join("fake-greeter");
    std::fs::write(&fake, "#!/bin/sh\necho \"fake $*\"\nexit 5\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = run(greeter(&dir).arg("x").env("GREETER_BINARY_PATH", &fake));
    assert_eq!(output.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "fake x\n");
    let output = run(greeter(&dir)
        .arg("--version")
        .env("GREETER_BINARY_PATH", dir.join("missing")));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("greeter: GREETER_BINARY_PATH is set to"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
}

#[test]
fn typescript_example_compiles_and_packages_pass_the_linters() {
    let env = TestEnv::get();
    let dir = installed_from_files(&env, "lint");
    std::fs::copy(
        dir.join("node_modules/@acme/greeter/examples/run.ts"),
        dir.join("example.ts"),
    )
    .unwrap();
    let output = run(Command::new(env.tool("tsc")).current_dir(&dir).args([
        "--noEmit",
        "--strict",
        "--module",
        "nodenext",
        "--target",
        "es2022",
        "example.ts",
    ]));
    assert_success("tsc --noEmit --strict example.ts", &output);

    // A deliberate type error is caught, so the check above is not vacuous.
    std::fs::write(
        dir.join("wrong.ts"),
        "import { run } from \"@acme/greeter\";\nrun([\"--version\"]).then((r) => { const n: number = r.stdout; console.log(n); });\n",
    )
    .unwrap();
    let output = run(Command::new(env.tool("tsc")).current_dir(&dir).args([
        "--noEmit", "--strict", "--module", "nodenext", "--target", "es2022", "wrong.ts",
    ]));
    assert!(!output.status.success(), "tsc accepted a type error");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("TS2322"),
        "{output:?}"
    );

    let (platforms, launcher) = &greeter_packages().apps[0];
    for package in platforms.iter().map(|(_, p)| p).chain([launcher]) {
        let output = run(Command::new(env.tool("publint"))
            .current_dir(&dir)
            .args(["run", "--level", "suggestion", "--strict"])
            .arg(&package.path));
        assert_success(&format!("publint {}", package.file_name), &output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("All good!"),
            "publint {}: {stdout}",
            package.file_name
        );
    }
    let output = run(Command::new(env.tool("attw"))
        .current_dir(&dir)
        .args(["--format", "ascii"])
        .arg(&launcher.path));
    assert_success("attw (are the types wrong)", &output);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("No problems found"),
        "{output:?}"
    );
}

/// The greeter fixture under a name no other test or run used, so it can be published to the
/// shared Verdaccio.
fn unique_release() -> Release {
    let mut release = fixture_release("single-cli");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let npm = release.apps[0].npm.as_mut().unwrap();
    npm.name = format!("@castoff-npm-test/greeter-{nanos:x}");
    release
}

/// Publishes every package of `release` (platforms first, launcher last, as castoff does).
fn publish_all(env: &TestEnv, release: &Release, work: &Path) -> Vec<BuiltPackage> {
    let dist = work.join("dist");
    let app = &release.apps[0];
    let channel = app.npm.as_ref().expect("single-cli has an npm channel");
    let mut packages = Vec::new();
    for &target in &app.targets {
        packages.push(
            castoff_npm::build_platform_package(
                &PlatformInput {
                    workspace_root: &release.workspace_root,
                    app,
                    npm: channel,
                    target,
                    binaries: fixture_binaries("single-cli", app, target, work),
                    sbom: None,
                    deflate: castoff_test_support::deflate_cache(),
                },
                &dist,
            )
            .unwrap(),
        );
    }
    packages.push(
        castoff_npm::build_launcher(
            &LauncherInput {
                workspace_root: &release.workspace_root,
                app,
                npm: channel,
                targets: app.targets.clone(),
                level: castoff_archive::deflate::DEFAULT_LEVEL,
            },
            &dist,
        )
        .unwrap(),
    );
    let npmrc = work.join("publish.npmrc");
    let registry_host = env.verdaccio.trim_start_matches("http:");
    std::fs::write(
        &npmrc,
        format!("{registry_host}:_authToken={}\n", env.npm_token),
    )
    .unwrap();
    for package in &packages {
        let output = run(npm(env, work, &work.join(".npm-cache"))
            .args([
                "publish",
                "--access",
                "public",
                "--registry",
                &env.verdaccio,
            ])
            .env("npm_config_userconfig", &npmrc)
            .arg(&package.path));
        env.assert_no_secret(&format!("{output:?}"));
        assert_success(&format!("npm publish {}", package.file_name), &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("auto-corrected") && !stderr.contains("npm warn"),
            "npm publish warned about {}:\n{stderr}",
            package.file_name
        );
        // The registry serves what castoff computed.
        let output = run(npm(env, work, &work.join(".npm-cache"))
            .args(["view", "--json", "--registry", &env.verdaccio])
            .arg(format!("{}@{}", package.name, package.version))
            .arg("dist"));
        assert_success("npm view", &output);
        let dist: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            dist["integrity"],
            package.integrity.as_str(),
            "{}",
            package.name
        );
        assert_eq!(dist["shasum"], package.shasum.as_str(), "{}", package.name);
    }
    packages
}

/// Installs the launcher from the registry into a fresh project with extra npm flags; returns
/// the project and the platform packages that ended up in node_modules.
fn install_from_registry(
    env: &TestEnv,
    name: &str,
    launcher: &str,
    flags: &[&str],
) -> (PathBuf, Vec<String>) {
    let dir = project(env, name);
    let output = run(npm(env, &dir, &dir.join(".npm-cache"))
        .args(["install", "--registry", &env.verdaccio])
        .args(flags)
        .arg(launcher));
    assert_success(&format!("npm install {flags:?}"), &output);
    let scope = dir.join("node_modules/@castoff-npm-test");
    let launcher_dir = launcher
        .rsplit('/')
        .next()
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    let mut installed: Vec<String> = std::fs::read_dir(&scope)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != launcher_dir)
        .map(|name| {
            name.rsplit_once(&format!("{launcher_dir}-"))
                .map_or(name.clone(), |(_, suffix)| suffix.to_owned())
        })
        .collect();
    installed.sort();
    (dir, installed)
}

#[test]
fn registry_install_selects_the_platform_package() {
    let env = TestEnv::get();
    let work = env.scratch_dir("castoff-npm-registry");
    let release = unique_release();
    let packages = publish_all(&env, &release, &work);
    let launcher = packages.last().unwrap();
    let spec = format!("{}@{}", launcher.name, launcher.version);

    // The host: only its own package; the bin runs.
    let (dir, installed) = install_from_registry(&env, "registry-host", &spec, &[]);
    assert_eq!(installed, ["linux-x64-gnu"]);
    let output = run(greeter(&dir).arg("--version"));
    assert_success("greeter --version from the registry", &output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "greeter 0.3.1\n");
    // The lockfile records every platform package with its constraints (npm ci relies on it).
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package-lock.json")).unwrap())
            .unwrap();
    let gnu = &lock["packages"][format!("node_modules/{}-linux-x64-gnu", launcher.name)];
    // The fixture builds glibc with crt-static: the binary runs on musl systems too, so the
    // package states no libc constraint (see `libc_field`).
    assert_eq!(gnu["libc"], serde_json::Value::Null, "{lock:#}");
    assert_eq!(gnu["optional"], true);

    // Overrides of the platform pick the matching package, or none.
    for (flags, expected) in [
        (&["--os=darwin", "--cpu=arm64"][..], &["darwin-arm64"][..]),
        (&["--os=win32", "--cpu=x64"], &["win32-x64"]),
        // The musl build is the only arm64 Linux build: no libc field, it serves glibc too.
        (
            &["--os=linux", "--cpu=arm64", "--libc=glibc"],
            &["linux-arm64-musl"],
        ),
        (
            &["--os=linux", "--cpu=arm64", "--libc=musl"],
            &["linux-arm64-musl"],
        ),
        // The x64 glibc build is static (crt-static): it serves musl systems too.
        (
            &["--os=linux", "--cpu=x64", "--libc=musl"],
            &["linux-x64-gnu"],
        ),
        (&["--os=darwin", "--cpu=x64"], &[]),
    ] {
        let (_, installed) = install_from_registry(&env, "registry-override", &spec, flags);
        assert_eq!(installed, expected, "npm install {flags:?}");
    }

    // --omit=optional: no platform package, and the launcher says what happened.
    let (dir, installed) =
        install_from_registry(&env, "registry-omit", &spec, &["--omit=optional"]);
    assert!(installed.is_empty(), "{installed:?}");
    let output = run(greeter(&dir).arg("--version"));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected_package = format!("{}-linux-x64-gnu@0.3.1", launcher.name);
    for needle in [
        "greeter: the greeter binary for this platform is not installed.",
        "platform: linux x64 (glibc)",
        expected_package.as_str(),
        "--omit=optional",
        "\nhint: reinstall with optional dependencies",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }

    // node_modules made for another platform: the launcher names what it found instead.
    let (dir, _) = install_from_registry(
        &env,
        "registry-foreign",
        &spec,
        &["--os=darwin", "--cpu=arm64"],
    );
    let output = run(greeter(&dir).arg("--version"));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("-darwin-arm64 instead: it was installed on another platform"),
        "{stderr}"
    );
}
