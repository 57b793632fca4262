//! The clients `verify` installs with: how each is found, pointed at a registry, kept in its
//! own throwaway directory, and asked to install and run one binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The channel a client installs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Python,
    Npm,
    Oci,
    InstallScript,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Python => "python",
            Channel::Npm => "npm",
            Channel::Oci => "oci",
            Channel::InstallScript => "install-script",
        }
    }
}

/// Every client `verify` knows, in the table's order: name (what `--require` takes),
/// channel, the program it needs on `PATH`.
pub const CLIENTS: &[(&str, Channel, &str)] = &[
    ("pip", Channel::Python, "python3"),
    ("uv", Channel::Python, "uv"),
    ("pipx", Channel::Python, "pipx"),
    ("npm", Channel::Npm, "npx"),
    ("pnpm", Channel::Npm, "pnpm"),
    ("yarn", Channel::Npm, "yarn"),
    ("bun", Channel::Npm, "bun"),
    ("deno", Channel::Npm, "deno"),
    ("docker", Channel::Oci, "docker"),
    ("podman", Channel::Oci, "podman"),
    // With skopeo (the pull) and umoci (the unpack) on PATH too.
    ("runc", Channel::Oci, "runc"),
    ("install.sh", Channel::InstallScript, "sh"),
];

/// `name` found in the directories of `path` as an executable file.
pub(super) fn find(name: &str, path: &OsString) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Variables a client run keeps from castoff's environment: trust stores, proxies, the
/// container engine's address. Everything else (the user's registry settings, tokens,
/// `PIP_FIND_LINKS`, `CI`) is left out, so the run sees what a new user's machine sees.
const KEPT: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "DENO_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "DOCKER_HOST",
    "CONTAINER_HOST",
    "USER",
    "LOGNAME",
];

/// Where one client run lives: everything it writes (home, caches, the installed package)
/// is under `root`, removed after the run.
#[derive(Debug)]
pub(super) struct Sandbox {
    pub(super) root: PathBuf,
    pub(super) path: OsString,
}

impl Sandbox {
    pub(super) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A command with an environment of its own: `PATH`, the kept variables, and every
    /// client's home, cache and configuration pointed into the sandbox.
    pub(super) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear().env("PATH", &self.path);
        for name in KEPT {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let dir = |name: &str| self.root.join(name);
        command
            .current_dir(dir("work"))
            .env("HOME", dir("home"))
            .env("TMPDIR", dir("tmp"))
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", dir("xdg/cache"))
            .env("XDG_CONFIG_HOME", dir("xdg/config"))
            .env("XDG_DATA_HOME", dir("xdg/data"))
            .env("XDG_STATE_HOME", dir("xdg/state"))
            .env("XDG_RUNTIME_DIR", dir("xdg/runtime"))
            // pip, uv, pipx
            .env("PIP_CACHE_DIR", dir("cache/pip"))
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("UV_CACHE_DIR", dir("cache/uv"))
            .env("UV_TOOL_DIR", dir("uv-tools"))
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("PIPX_HOME", dir("pipx"))
            .env("PIPX_BIN_DIR", dir("pipx/bin"))
            .env("PIPX_MAN_DIR", dir("pipx/man"))
            // npm, pnpm, yarn, bun, deno
            .env("npm_config_cache", dir("cache/npm"))
            .env("npm_config_userconfig", dir("home/.npmrc"))
            .env("npm_config_globalconfig", dir("npmrc-global"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("PNPM_HOME", dir("pnpm"))
            .env("YARN_CACHE_FOLDER", dir("cache/yarn"))
            .env("YARN_GLOBAL_FOLDER", dir("yarn"))
            .env("YARN_ENABLE_GLOBAL_CACHE", "false")
            .env("YARN_ENABLE_TELEMETRY", "0")
            .env("YARN_RC_FILENAME", ".castoff-verify-yarnrc.yml")
            // yarn (npmMinimalAgeGate) and deno (minimumDependencyAge, a flag below) hold
            // back versions younger than a day by default; verify runs right after publish.
            .env("YARN_NPM_MINIMAL_AGE_GATE", "0")
            .env("BUN_INSTALL", dir("bun"))
            .env("BUN_INSTALL_CACHE_DIR", dir("cache/bun"))
            .env("DENO_DIR", dir("cache/deno"))
            .env("DENO_NO_UPDATE_CHECK", "1")
            // docker, podman
            .env("DOCKER_CONFIG", dir("docker"));
        command
    }

    /// Creates the directories the commands start in and write to.
    pub(super) fn create(&self) -> std::io::Result<()> {
        for name in [
            "work",
            "home",
            "tmp",
            "xdg/cache",
            "xdg/config",
            "xdg/data",
            "xdg/state",
            "xdg/runtime",
            "docker",
            "bin",
        ] {
            std::fs::create_dir_all(self.root.join(name))?;
        }
        std::fs::write(self.root.join("home/.npmrc"), "")?;
        std::fs::write(self.root.join("npmrc-global"), "")?;
        Ok(())
    }
}

/// Points `command` at the npm registry `url` for every npm-family client (each reads its
/// own variable).
pub(super) fn npm_registry(command: &mut Command, url: &str) {
    command
        .env("npm_config_registry", url)
        .env("NPM_CONFIG_REGISTRY", url)
        .env("BUN_CONFIG_REGISTRY", url)
        .env("YARN_NPM_REGISTRY_SERVER", url.trim_end_matches('/'));
    if let Some(rest) = url.strip_prefix("http://") {
        // yarn refuses plain http except to hosts it is told to trust.
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        };
        command.env("YARN_UNSAFE_HTTP_WHITELIST", host);
    }
}

/// The path of the Python a venv made by `python3 -m venv` runs.
pub(super) fn venv_bin(venv: &Path, name: &str) -> PathBuf {
    venv.join("bin").join(name)
}
