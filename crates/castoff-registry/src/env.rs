//! The environment variables castoff-registry reads, in one place (style rule 7). Clients take
//! an [`Environment`] so tests pass a map instead of mutating the process environment.

/// Extra trusted CA certificates (PEM bundle), as in OpenSSL and Go.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// PyPI API token (sent as user `__token__`).
pub const CASTOFF_PYPI_TOKEN: &str = "CASTOFF_PYPI_TOKEN";
/// Bases of the destination-bound PyPI variables (`CASTOFF_PYPI_USERNAME_<KEY>` and
/// `CASTOFF_PYPI_PASSWORD_<KEY>`, [`host_qualified`]), for indexes that take a user name and
/// password (pypiserver, devpi, private indexes).
pub const CASTOFF_PYPI_USERNAME: &str = "CASTOFF_PYPI_USERNAME";
pub const CASTOFF_PYPI_PASSWORD: &str = "CASTOFF_PYPI_PASSWORD";
/// twine's conventional username / password variables.
pub const TWINE_USERNAME: &str = "TWINE_USERNAME";
pub const TWINE_PASSWORD: &str = "TWINE_PASSWORD";
/// npm token, as set by `actions/setup-node` (`NODE_AUTH_TOKEN`) or by hand (`NPM_TOKEN`).
pub const NODE_AUTH_TOKEN: &str = "NODE_AUTH_TOKEN";
pub const NPM_TOKEN: &str = "NPM_TOKEN";
/// Explicit OCI registry credentials, for the release's own push registry only (the host of
/// the image's `oci.repository`, or of `--oci-repository`). Any registry, that one included,
/// can be given its own pair with a host suffix: [`host_qualified`].
pub const CASTOFF_OCI_USERNAME: &str = "CASTOFF_OCI_USERNAME";
pub const CASTOFF_OCI_PASSWORD: &str = "CASTOFF_OCI_PASSWORD";
/// The largest request body to send to an OCI registry, in bytes: larger blobs go in chunks
/// of at most this size (for registries behind proxies that cap request bodies).
pub const CASTOFF_OCI_MAX_BODY: &str = "CASTOFF_OCI_MAX_BODY";
/// Directory of Docker's `config.json` (default `~/.docker`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// podman / skopeo credentials file (same `auths` format as Docker's).
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const HOME: &str = "HOME";
/// GitHub Actions: set to `true` inside a workflow run.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// GitHub Actions: the workflow token (GHCR password) and the user that triggered the run.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// GitHub Actions OIDC: present only with `permissions: id-token: write`.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// npm trusted publishing: an ID token supplied directly (other CI providers).
pub const NPM_ID_TOKEN: &str = "NPM_ID_TOKEN";

/// A credential variable bound to one destination: `<base>_<KEY>`, where KEY is the host
/// (with its port) or the repository name, upper-cased, every character but letters and digits
/// turned into `_`: `CASTOFF_OCI_PASSWORD_GHCR_IO`, `CASTOFF_OCI_PASSWORD_REGISTRY_EXAMPLE_5000`,
/// `CASTOFF_PYPI_TOKEN_TESTPYPI`.
pub fn host_qualified(base: &str, destination: &str) -> String {
    let key: String = destination
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}_{key}")
}

/// Where variables come from: the process environment, or a map in tests. `Sync`: publish
/// checks several destinations' credentials at once.
pub trait Environment: Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment. Empty values count as unset (CI systems often export
/// `NPM_TOKEN=` for a secret that is not configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Environment for std::collections::BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|value| !value.is_empty()).cloned()
    }
}
