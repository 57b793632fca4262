//! What a `publish` run is asked to do.

use std::path::PathBuf;

use castoff_registry::HttpConfig;

/// Environment variables of the publish command (beside castoff-registry's credentials).
pub mod vars {
    /// Upload URL of the Python index (`pypi`, `testpypi` or a URL); default `pypi`.
    pub const PYPI_URL: &str = "CASTOFF_PYPI_URL";
    /// Simple index of that upload URL, when castoff cannot derive it.
    pub const PYPI_INDEX_URL: &str = "CASTOFF_PYPI_INDEX_URL";
    /// npm registry URL; default: `.npmrc`'s `registry`, else registry.npmjs.org.
    pub const NPM_REGISTRY: &str = "CASTOFF_NPM_REGISTRY";
    /// Image repository replacing the configured one (only when one app has images).
    pub const OCI_REPOSITORY: &str = "CASTOFF_OCI_REPOSITORY";
    /// Registry host replacing the configured one in every app's repository.
    pub const OCI_REGISTRY: &str = "CASTOFF_OCI_REGISTRY";
}

/// How to run `publish`.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub dist_dir: PathBuf,
    /// The workspace root, for the project's `.npmrc`.
    pub workspace_root: PathBuf,
    /// The workspace (`cargo metadata`): its plan says where every step goes, and
    /// `dist/manifest.json` must agree with it before anything is sent.
    pub workspace: cargo_metadata::Metadata,
    /// A minisign public key: `dist/manifest.json` must carry a valid signature by it
    /// (`manifest.json.minisig`), checked before anything else.
    pub verify_key: Option<crate::sign::VerifyingKey>,
    /// Verify, check credentials and ask the registries, then stop.
    pub dry_run: bool,
    /// Run only steps whose id contains one of these (empty: all).
    pub only: Vec<String>,
    /// Leave out steps whose id contains one of these.
    pub skip: Vec<String>,
    pub pypi_url: Option<String>,
    pub pypi_index_url: Option<String>,
    /// A `.pypirc` section to take the URL and credentials from.
    pub pypi_repository: Option<String>,
    pub npm_registry: Option<String>,
    pub oci_repository: Option<String>,
    pub oci_registry: Option<String>,
    pub http: HttpConfig,
    /// Steps running at once.
    pub jobs: usize,
}
