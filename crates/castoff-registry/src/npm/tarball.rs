//! An npm tarball as the publisher sees it: `package/package.json` and the README read from
//! the gzip'd tar, and the two hashes npm records (`sha512-…` integrity, sha1 shasum).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest, Sha512};

use crate::error::RegistryError;

/// A package tarball ready for publishing.
#[derive(Debug, Clone, PartialEq)]
pub struct NpmTarball {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub size: u64,
    /// `sha512-<base64>` of the tarball bytes.
    pub integrity: String,
    /// sha1 hex of the tarball bytes (the only hash Verdaccio checks).
    pub shasum: String,
    /// `package.json` as written in the tarball.
    pub package_json: serde_json::Map<String, serde_json::Value>,
    pub readme: Option<String>,
    pub readme_filename: Option<String>,
}

const JSON_LIMIT: u64 = 8 * 1024 * 1024;

impl NpmTarball {
    pub fn open(path: &Path) -> Result<NpmTarball, RegistryError> {
        let hint = "the tarball is damaged: rebuild it with `castoff dist`";
        let fail = |message: String| RegistryError::artifact_file(path, message, hint);
        let mut file = File::open(path).map_err(|error| fail(format!("cannot open: {error}")))?;
        let mut sha512 = Sha512::new();
        let mut sha1 = Sha1::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let read = file
                .read(&mut buffer)
                .map_err(|error| fail(format!("cannot read: {error}")))?;
            if read == 0 {
                break;
            }
            sha512.update(&buffer[..read]);
            sha1.update(&buffer[..read]);
            size += read as u64;
        }
        let integrity = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(sha512.finalize())
        );
        let shasum = castoff_archive::digest::hex(&sha1.finalize());

        let file = File::open(path).map_err(|error| fail(format!("cannot open: {error}")))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut package_json = None;
        let mut readme: Option<(String, String)> = None;
        let entries = archive
            .entries()
            .map_err(|error| fail(format!("not a tar.gz: {error}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|error| fail(format!("not a tar.gz: {error}")))?;
            let entry_path = entry
                .path()
                .map_err(|error| fail(error.to_string()))?
                .to_string_lossy()
                .into_owned();
            // npm accepts any name for the top directory (`package/` by convention).
            let Some((_, inner)) = entry_path.split_once('/') else {
                continue;
            };
            let is_readme =
                !inner.contains('/') && inner.to_ascii_lowercase().starts_with("readme");
            if inner != "package.json" && !(is_readme && readme.is_none()) {
                continue;
            }
            let mut text = String::new();
            (&mut entry)
                .take(JSON_LIMIT)
                .read_to_string(&mut text)
                .map_err(|error| fail(format!("cannot read {entry_path}: {error}")))?;
            if inner == "package.json" {
                package_json = Some(text);
            } else {
                readme = Some((inner.to_owned(), text));
            }
        }
        let text = package_json
            .ok_or_else(|| fail("no package/package.json in the tarball".to_owned()))?;
        let package_json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|error| fail(format!("package.json is not a JSON object: {error}")))?;
        let field = |name: &str| {
            package_json
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let name = field("name").ok_or_else(|| fail("package.json has no `name`".to_owned()))?;
        let version =
            field("version").ok_or_else(|| fail("package.json has no `version`".to_owned()))?;
        let (readme_filename, readme) = match readme {
            Some((name, text)) => (Some(name), Some(text)),
            None => (None, None),
        };
        Ok(NpmTarball {
            path: path.to_owned(),
            name,
            version,
            size,
            integrity,
            shasum,
            package_json,
            readme,
            readme_filename,
        })
    }

    /// A prerelease (`1.0.0-rc.1`) must not move `latest`: its default dist-tag is `next`.
    pub fn default_dist_tag(&self) -> &'static str {
        if self.version.split('+').next().unwrap_or("").contains('-') {
            "next"
        } else {
            "latest"
        }
    }
}
