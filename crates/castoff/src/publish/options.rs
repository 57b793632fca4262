//! What a `publish` run is asked to do.

use std::path::PathBuf;

use castoff_registry::HttpConfig;

use super::scope::{ReleaseTag, TagOrigin};

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
    /// Set by GitHub Actions: `tag` when the run is for a tag push (then `publish` checks
    /// `GITHUB_REF_NAME` against the release's tag pattern, unless `--tag` names the tag).
    pub const GITHUB_REF_TYPE: &str = "GITHUB_REF_TYPE";
    /// Set by GitHub Actions: the branch or tag name of the run.
    pub const GITHUB_REF_NAME: &str = "GITHUB_REF_NAME";
}

/// The tag a run publishes for: `--tag` when given, else the one GitHub Actions runs for
/// (`GITHUB_REF_TYPE=tag`, `GITHUB_REF_NAME`), else none (no tag check).
pub fn release_tag(flag: Option<&str>) -> Option<ReleaseTag> {
    if let Some(name) = flag {
        return Some(ReleaseTag {
            name: name.to_owned(),
            origin: TagOrigin::Flag,
        });
    }
    let ref_type = std::env::var(vars::GITHUB_REF_TYPE).ok()?;
    let name = std::env::var(vars::GITHUB_REF_NAME).ok()?;
    (ref_type == "tag" && !name.is_empty()).then_some(ReleaseTag {
        name,
        origin: TagOrigin::GithubRef,
    })
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
    /// The release tag of this run (`release_tag`): only the apps released under it are
    /// published, and a tag that names none of them stops the run.
    pub tag: Option<ReleaseTag>,
    /// Publish a dist/ that lacks some configured targets (otherwise refused).
    pub allow_partial: bool,
}
