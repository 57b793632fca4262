//! `cargo xtask test`: installs the tools the suite needs, starts real registries on free
//! loopback ports, runs fmt, clippy and the tests against them, and stops everything it started.
//! `cargo xtask test --offline` is the inner loop: no installs and no servers, only the tests
//! that need neither. `cargo xtask test --serve` only starts the servers (and writes
//! `target/castoff-test/env.sh`) until Ctrl-C, for running single tests during development.
//! See docs/testing.md.

mod binfmt;
mod install;
mod offline;
mod probe;
mod process;
mod rootfs;
mod servers;

pub(crate) use servers::ScratchPypi;

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use castoff_test_support::vars;

/// Where everything lives. The target directory follows `CARGO_TARGET_DIR` like cargo does.
pub(crate) struct Paths {
    pub(crate) workspace: PathBuf,
    /// `TARGET/castoff-tools`: the venv and Node tools, kept across runs.
    pub(crate) tools: PathBuf,
    /// `TARGET/castoff-test`: install logs and `env.sh`.
    pub(crate) test_dir: PathBuf,
    /// `TARGET/castoff-test/state`: this run's server configs, data, logs and PID files.
    pub(crate) state: PathBuf,
}

impl Paths {
    fn discover() -> Result<Paths> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or_else(|| anyhow!("xtask has no parent directory"))?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => std::path::absolute(PathBuf::from(dir))?,
            _ => workspace.join("target"),
        };
        let test_dir = target.join("castoff-test");
        Ok(Paths {
            tools: target.join("castoff-tools"),
            state: test_dir.join("state"),
            test_dir,
            workspace,
        })
    }

    fn env_file(&self) -> PathBuf {
        self.test_dir.join("env.sh")
    }
}

struct Options {
    serve: bool,
    offline: bool,
    /// Everything after `--`, passed to `cargo test`.
    test_args: Vec<OsString>,
}

const USAGE: &str = "usage: cargo xtask test [--offline | --serve] [-- <cargo test args>]

  (no flag)  everything, as CI runs it: install tools, start the test servers, run fmt, clippy
             and cargo test, stop the servers; arguments after `--` go to
             `cargo test --workspace --no-fail-fast`
  --offline  the inner loop: no installs, no servers, no fmt or clippy; unit tests, doc tests
             and the `offline` module of every crate's test binary (`-- --skip live::`), then
             how many `live` tests it left to the full run; arguments after `--` as above
  --serve    install tools, start the servers, write target/castoff-test/env.sh, wait for
             Ctrl-C; then `source` it and run single tests, for example
             `cargo test -p castoff-registry --test it -- live::servers`";

fn parse(args: &[OsString]) -> Result<Options> {
    let mut options = Options {
        serve: false,
        offline: false,
        test_args: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.to_str() {
            Some("--") => {
                options.test_args = iter.cloned().collect();
                break;
            }
            Some("--serve") => options.serve = true,
            Some("--offline") => options.offline = true,
            Some("-h" | "--help") => bail!("{USAGE}"),
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    if options.serve && options.offline {
        bail!("--offline starts no servers: use one of --offline and --serve\n{USAGE}");
    }
    Ok(options)
}

/// One line of the closing summary.
struct Step {
    name: &'static str,
    seconds: f64,
    failure: Option<String>,
}

pub(crate) fn main(args: &[OsString]) -> ExitCode {
    if args
        .first()
        .is_some_and(|arg| arg == "-h" || arg == "--help")
    {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let paths = match Paths::discover() {
        Ok(paths) => paths,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    if options.offline {
        // No servers and no state of its own: neither the run lock nor the signal handler
        // (Ctrl-C reaches cargo and the tests through the terminal's process group).
        return offline::run(&paths, &options.test_args);
    }
    let lock = match process::RunLock::acquire(&paths.test_dir) {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C / SIGTERM: stop the servers by PID (the Drop guards do not run when the process
    // is ended by a signal), remove env.sh and the run lock, and exit.
    let env_file = paths.env_file();
    let lock_file = lock.path().to_path_buf();
    let serve = options.serve;
    if let Err(error) = ctrlc::set_handler(move || {
        eprintln!("\n==> interrupted: stopping the test servers");
        process::stop_all_running();
        servers::remove_docker_exec_root(&servers::docker_exec_root());
        rootfs::unmount_all();
        match binfmt::release_held() {
            Ok(Some(done)) => eprintln!("    binfmt_misc: {done}"),
            Ok(None) => {}
            Err(error) => eprintln!("warning: releasing the binfmt_misc handlers: {error:#}"),
        }
        let _ = fs::remove_file(&env_file);
        process::RunLock::release_path(&lock_file);
        std::process::exit(if serve { 0 } else { 130 });
    }) {
        eprintln!("error: cannot install the signal handler: {error}");
        return ExitCode::FAILURE;
    }

    let mut steps = Vec::new();
    let installed = run_step(&mut steps, "install", || install::install(&paths));
    if let Some(installed) = installed {
        if options.serve {
            serve_until_signal(&paths, &installed, &mut steps);
        } else {
            run_suite(&paths, &installed, &options, &mut steps);
        }
    }
    drop(lock);
    summarize(&steps)
}

fn run_step<T>(
    steps: &mut Vec<Step>,
    name: &'static str,
    step: impl FnOnce() -> Result<T>,
) -> Option<T> {
    println!("==> {name}");
    let clock = Instant::now();
    let result = step();
    let seconds = clock.elapsed().as_secs_f64();
    match result {
        Ok(value) => {
            steps.push(Step {
                name,
                seconds,
                failure: None,
            });
            Some(value)
        }
        Err(error) => {
            let message = format!("{error:#}");
            eprintln!("error: {name} failed: {message}");
            steps.push(Step {
                name,
                seconds,
                failure: Some(first_line(&message)),
            });
            None
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn run_suite(
    paths: &Paths,
    installed: &install::Installed,
    options: &Options,
    steps: &mut Vec<Step>,
) {
    // The servers take a few seconds to come up (devpi, Verdaccio): start them while fmt and
    // clippy run. The thread only spawns and waits; the Started guard stops them on drop,
    // also when the tests fail or this function panics.
    let starter = {
        let paths = Paths::discover();
        let installed = installed.clone();
        thread::spawn(move || -> Result<(servers::Started, f64)> {
            let clock = Instant::now();
            let paths = paths?;
            let started = servers::start(&paths, &installed)?;
            Ok((started, clock.elapsed().as_secs_f64()))
        })
    };
    run_step(steps, "fmt", || {
        cargo(paths, &["fmt", "--all", "--", "--check"], &[], &[])
    });
    run_step(steps, "clippy", || {
        cargo(
            paths,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
            &[],
        )
    });
    let started = run_step(steps, "servers", || {
        println!("    (started in the background during fmt and clippy)");
        let (started, seconds) = starter
            .join()
            .map_err(|_| anyhow!("server start-up panicked"))??;
        println!("    start-up took {seconds:.1} s");
        Ok(started)
    });
    let Some(mut started) = started else {
        steps.push(Step {
            name: "test",
            seconds: 0.0,
            failure: Some("not run: the servers did not start".into()),
        });
        return;
    };
    run_step(steps, "env.sh", || write_env_file(paths, &started.env));
    // The README's main job, on this repository: castoff's own release, which the tests then
    // install and run (wheel, npm packages, image under runc and docker).
    run_step(steps, "dist (castoff's own release)", || {
        let dir = paths.test_dir.join("self-dist");
        let dir = dir.to_string_lossy();
        cargo(
            paths,
            &[
                "run",
                "--quiet",
                "--package",
                "castoff",
                "--",
                "dist",
                "--dist-dir",
                &dir,
            ],
            &[],
            &[],
        )
    });
    run_step(steps, "test", || {
        // --no-fail-fast: one failing test binary must not hide the results of the others.
        // `-p`/`--package` after `--` narrows the run, so --workspace is left out then.
        let base: &[&str] = if names_a_package(&options.test_args) {
            &["test", "--no-fail-fast"]
        } else {
            &["test", "--workspace", "--no-fail-fast"]
        };
        // The hardening suites append their figures here (TestEnv::figure); shown below,
        // since cargo captures the output of passing tests.
        let figures = paths.state.join("figures.txt");
        let _ = fs::remove_file(&figures);
        let result = cargo(paths, base, &options.test_args, &started.env);
        if let Ok(text) = fs::read_to_string(&figures) {
            println!(
                "\n==> figures (what the suites exercised: kill points, faults, platforms, …)"
            );
            let (cells, lines): (Vec<&str>, Vec<&str>) = text
                .lines()
                .partition(|line| line.starts_with("matrix-cell\t"));
            for line in lines {
                println!("    {line}");
            }
            if !cells.is_empty() {
                println!("\n==> figures: platform × client (what ran where)");
                for line in matrix_table(&cells) {
                    println!("    {line}");
                }
            }
        }
        result
    });
    run_step(steps, "stop servers", || {
        let count = started.count();
        started.stop();
        let _ = fs::remove_file(paths.env_file());
        println!("    stopped {count} servers");
        installed.platforms.rootfs_arm64.release()?;
        println!("    arm64 root unmounted");
        let released = installed.platforms.emulation.release()?;
        println!("    binfmt_misc: {released}");
        Ok(())
    });
}

fn serve_until_signal(paths: &Paths, installed: &install::Installed, steps: &mut Vec<Step>) {
    let Some(started) = run_step(steps, "servers", || servers::start(paths, installed)) else {
        return;
    };
    if run_step(steps, "env.sh", || write_env_file(paths, &started.env)).is_none() {
        return;
    }
    print!("{}", server_table(&started.env, &paths.env_file()));
    println!("\nServers are running. In another shell:\n");
    println!("    source {}", paths.env_file().display());
    println!("    cargo test -p castoff-registry --test it -- live::servers\n");
    println!(
        "(every crate's integration tests are `--test it`, in modules `offline::` and `live::`)"
    );
    println!(
        "Press Ctrl-C (or send SIGTERM to pid {}) to stop them.",
        std::process::id()
    );
    // The signal handler stops the servers and exits; nothing else ends this loop.
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// What `--serve` prints about the servers: each one's URL and which variables of env.sh
/// (mode 0600) hold its credentials; no secret is printed.
fn server_table(env: &[(&'static str, String)], env_file: &Path) -> String {
    let value = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map_or("(not started)", |(_, value)| value.as_str())
    };
    let rows = [
        (
            "OCI registry, no auth",
            vars::REGISTRY_OPEN,
            "none".to_owned(),
        ),
        (
            "OCI registry, Basic auth",
            vars::REGISTRY_BASIC,
            format!("${}, ${}", vars::USER, vars::PASSWORD),
        ),
        (
            "OCI registry, Basic over TLS",
            vars::REGISTRY_TLS,
            format!(
                "${}, ${}; CA ${}",
                vars::USER,
                vars::PASSWORD,
                vars::CA_CERT
            ),
        ),
        (
            "OCI registry, token auth",
            vars::REGISTRY_TOKEN,
            format!(
                "${}, ${} at ${}",
                vars::USER,
                vars::PASSWORD,
                vars::TOKEN_SERVER
            ),
        ),
        (
            "pypiserver (upload URL)",
            vars::PYPISERVER,
            format!("${}, ${}", vars::USER, vars::PASSWORD),
        ),
        (
            "devpi (upload URL)",
            vars::DEVPI,
            format!("${}, ${}", vars::USER, vars::PASSWORD),
        ),
        (
            "Verdaccio",
            vars::VERDACCIO,
            format!("token ${}", vars::NPM_TOKEN),
        ),
        (
            "kellnr (Cargo sparse index)",
            vars::KELLNR_INDEX,
            format!("token ${}", vars::KELLNR_TOKEN),
        ),
    ];
    let mut out = format!(
        "\nTest servers (credentials: the variables named, in {}; never printed):\n",
        env_file.display()
    );
    for (what, variable, credentials) in rows {
        out.push_str(&format!(
            "    {what:<30} {:<36} {variable}\n    {:<30} credentials: {credentials}\n",
            value(variable),
            ""
        ));
    }
    out.push_str(&format!(
        "  A workspace of yours, published to them (docs/publishing.md, \"Rehearse on registries of your own\"):\n\
         \x20   CASTOFF_PYPI_URL=${} TWINE_USERNAME=${} TWINE_PASSWORD=${} \\\n\
         \x20   CASTOFF_NPM_REGISTRY=${} NPM_TOKEN=${} \\\n\
         \x20   CASTOFF_OCI_REGISTRY=<host:port of ${}> cargo xtask publish\n",
        vars::PYPISERVER,
        vars::USER,
        vars::PASSWORD,
        vars::VERDACCIO,
        vars::NPM_TOKEN,
        vars::REGISTRY_OPEN
    ));
    out
}

/// Whether `cargo test` arguments select packages (`-p`, `--package`): then the run leaves
/// out `--workspace`.
fn names_a_package(args: &[OsString]) -> bool {
    args.iter().any(|arg| {
        arg.to_str()
            .is_some_and(|a| a.starts_with("-p") || a.starts_with("--package"))
    })
}

/// Removes the variables `cargo run` set for xtask itself from a nested cargo's environment.
/// Build scripts that watch them (ring's watches `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`)
/// would otherwise rerun whenever `cargo test` and `cargo xtask test` take turns, rebuilding
/// ring, rustls, reqwest and everything above them each time.
pub(crate) fn without_xtask_cargo_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name);
        }
    }
}

/// Runs cargo with the test environment; `Err` when it exits non-zero.
fn cargo(
    paths: &Paths,
    args: &[&str],
    extra: &[OsString],
    env: &[(&'static str, String)],
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(args).args(extra).current_dir(&paths.workspace);
    without_xtask_cargo_env(&mut command);
    for (name, value) in env {
        command.env(name, value);
        if *name == vars::ZIG_BIN {
            command.env("PATH", path_with(Path::new(value))?);
        }
    }
    let status = process::run_foreground(command)
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} exited with {status}", args.join(" "));
    }
    Ok(())
}

/// This process's `PATH` with `dir` first.
fn path_with(dir: &Path) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .with_context(|| format!("putting {} on PATH", dir.display()))
}

/// `env.sh`, mode 0600 (it holds the password): `source` it to run single tests against
/// servers started by `--serve`. Removed when the servers stop.
fn write_env_file(paths: &Paths, env: &[(&'static str, String)]) -> Result<()> {
    let path = paths.env_file();
    let _ = fs::remove_file(&path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut text = String::from(
        "# Written by `cargo xtask test`: the test servers of the running harness (docs/testing.md).\n",
    );
    for (name, value) in env {
        text.push_str(&format!(
            "export {name}='{}'\n",
            value.replace('\'', r"'\''")
        ));
    }
    if env.iter().any(|(name, _)| *name == vars::ZIG_BIN) {
        // zig and cargo-zigbuild, first on PATH (as `cargo xtask test` runs the tests).
        text.push_str(&format!("export PATH=\"${}:$PATH\"\n", vars::ZIG_BIN));
    }
    file.write_all(text.as_bytes())?;
    println!("    wrote {}", path.display());
    Ok(())
}

fn summarize(steps: &[Step]) -> ExitCode {
    println!("\n==> summary");
    for step in steps {
        let verdict = step
            .failure
            .as_deref()
            .map_or_else(|| "ok".to_owned(), |why| format!("FAILED: {why}"));
        println!("    {:<14} {:>7.1} s  {verdict}", step.name, step.seconds);
    }
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s.failure.is_some())
        .map(|s| s.name)
        .collect();
    if failed.is_empty() {
        println!("cargo xtask test: all steps passed");
        ExitCode::SUCCESS
    } else {
        println!("cargo xtask test: failed step(s): {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// The `matrix-cell` figure lines (`castoff_test_support::platforms::record_cell`) as a
/// table: one row per platform, in the order first reported, one column per client; a cell
/// reported twice shows both outcomes.
fn matrix_table(cells: &[&str]) -> Vec<String> {
    let mut platforms: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    let mut outcomes: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
    for line in cells {
        let mut parts = line.splitn(4, '\t').skip(1);
        let (Some(platform), Some(client), Some(outcome)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
        if !clients.contains(&client) {
            clients.push(client);
        }
        let cell = outcomes.entry((platform, client)).or_default();
        if !cell.contains(&outcome) {
            cell.push(outcome);
        }
    }
    let text = |platform: &str, client: &str| {
        outcomes
            .get(&(platform, client))
            .map_or_else(|| "-".to_owned(), |cell| cell.join(", "))
    };
    let first = platforms
        .iter()
        .map(|p| p.len())
        .max()
        .unwrap_or(0)
        .max("platform".len());
    let widths: Vec<usize> = clients
        .iter()
        .map(|client| {
            platforms
                .iter()
                .map(|platform| text(platform, client).len())
                .max()
                .unwrap_or(0)
                .max(client.len())
        })
        .collect();
    let row = |head: &str, rest: Vec<String>| {
        let mut line = format!("{head:<first$}");
        for (cell, width) in rest.iter().zip(&widths) {
            line.push_str(&format!("  {cell:<width$}"));
        }
        line.trim_end().to_owned()
    };
    let mut out = vec![row(
        "platform",
        clients.iter().map(|c| (*c).to_owned()).collect(),
    )];
    for platform in &platforms {
        out.push(row(
            platform,
            clients
                .iter()
                .map(|client| text(platform, client))
                .collect(),
        ));
    }
    out
}

#[cfg(test)]
mod serve_tests {
    use super::*;

    #[test]
    fn the_server_table_names_urls_and_credential_variables_never_secrets() {
        let env = vec![
            (vars::REGISTRY_OPEN, "http://127.0.0.1:5001".to_owned()),
            (vars::PYPISERVER, "http://127.0.0.1:5002/".to_owned()),
            (vars::VERDACCIO, "http://127.0.0.1:5003/".to_owned()),
            (vars::NPM_TOKEN, "npm-secret-token".to_owned()),
            (vars::PASSWORD, "secret-password".to_owned()),
        ];
        let table = server_table(&env, Path::new("/x/env.sh"));
        for needle in [
            "http://127.0.0.1:5001",
            "http://127.0.0.1:5002/",
            "http://127.0.0.1:5003/",
            "token $CASTOFF_TEST_NPM_TOKEN",
            "in /x/env.sh",
            "(not started)",
        ] {
            assert!(table.contains(needle), "{needle} missing:\n{table}");
        }
        assert!(!table.contains("secret"), "a secret in the table:\n{table}");
    }
}

#[cfg(test)]
mod matrix_table_tests {
    #[test]
    fn cells_become_rows_and_columns() {
        let table = super::matrix_table(&[
            "matrix-cell\tx86_64-unknown-linux-gnu\tpip\tok",
            "matrix-cell\tx86_64-unknown-linux-gnu\tnpm\tok",
            "matrix-cell\ts390x-unknown-linux-musl\tpip\tok",
            "matrix-cell\ts390x-unknown-linux-musl\tpip\tok",
            "matrix-cell\tfreebsd\tpip\tnone (no wheel)",
        ]);
        assert_eq!(
            table,
            [
                "platform                  pip              npm",
                "x86_64-unknown-linux-gnu  ok               ok",
                "s390x-unknown-linux-musl  ok               -",
                "freebsd                   none (no wheel)  -",
            ]
        );
    }
}

/// Stops every server this process started and is still running (for a signal handler: the
/// servers run in process groups of their own, which Ctrl-C in the terminal does not reach).
pub(crate) fn stop_started_servers() {
    process::stop_all_running();
}
