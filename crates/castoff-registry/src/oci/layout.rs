//! The OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`) and the parts
//! of manifests and indexes the pusher needs: media type, children, blobs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::RegistryError;

/// A `sha256:<64 hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!(
            "sha256:{}",
            crate::pypi::hex_digest(&Sha256::digest(bytes))
        ))
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(text: &str) -> Result<Digest, String> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("`{text}` is not a sha256 digest"))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "`{text}` is not `sha256:` followed by 64 lower-case hex digits"
            ));
        }
        Ok(Digest(text.to_owned()))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A content descriptor: what a manifest or index says about a blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// A manifest or index read from the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBlob {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// For an index: its child manifests. Empty for an image manifest.
    pub children: Vec<Descriptor>,
    /// For an image manifest: config then layers. Empty for an index.
    pub blobs: Vec<Descriptor>,
}

impl ManifestBlob {
    pub fn is_index(&self) -> bool {
        self.media_type.contains("index") || self.media_type.contains("manifest.list")
    }
}

/// An image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    pub root: PathBuf,
}

const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

impl OciLayout {
    pub fn open(root: &Path) -> Result<OciLayout, RegistryError> {
        let marker = root.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|error| {
            RegistryError::artifact_file(
                root,
                format!("not an OCI image layout (cannot read oci-layout: {error})"),
                "run `castoff dist` to build the image layout",
            )
        })?;
        if !text.contains("imageLayoutVersion") {
            return Err(RegistryError::artifact_file(
                &marker,
                "no imageLayoutVersion",
                "rebuild the image layout",
            ));
        }
        Ok(OciLayout {
            root: root.to_owned(),
        })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// The descriptors `index.json` lists, with their `org.opencontainers.image.ref.name`.
    pub fn roots(&self) -> Result<Vec<(Descriptor, Option<String>)>, RegistryError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(|error| {
            RegistryError::artifact_file(
                &path,
                format!("cannot read: {error}"),
                "rebuild the image layout",
            )
        })?;
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| {
            RegistryError::artifact_file(
                &path,
                format!("not JSON: {error}"),
                "rebuild the image layout",
            )
        })?;
        let list = json
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        list.iter()
            .map(|entry| {
                let descriptor = parse_descriptor(entry).map_err(|message| {
                    RegistryError::artifact_file(&path, message, "rebuild the image layout")
                })?;
                let name = entry
                    .pointer("/annotations/org.opencontainers.image.ref.name")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                Ok((descriptor, name))
            })
            .collect()
    }

    /// Reads a manifest or index blob, checks its digest, and lists what it references.
    pub fn manifest(&self, digest: &Digest) -> Result<ManifestBlob, RegistryError> {
        let path = self.blob_path(digest);
        let hint = "the image layout is incomplete or changed since `castoff dist`: rebuild it";
        let fail = |message: String| RegistryError::artifact_file(&path, message, hint);
        let size = std::fs::metadata(&path)
            .map_err(|error| fail(format!("cannot read: {error}")))?
            .len();
        if size > MANIFEST_LIMIT {
            return Err(fail(format!("{size} bytes is too large for a manifest")));
        }
        let bytes = std::fs::read(&path).map_err(|error| fail(format!("cannot read: {error}")))?;
        if &Digest::of(&bytes) != digest {
            return Err(fail(format!("content does not match its digest {digest}")));
        }
        ManifestBlob::parse(digest, bytes).map_err(fail)
    }
}

impl ManifestBlob {
    /// Parses the bytes of a manifest or index whose digest was already checked: its media
    /// type (from `mediaType`, else from its shape) and what it references.
    pub fn parse(digest: &Digest, bytes: Vec<u8>) -> Result<ManifestBlob, String> {
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| format!("not JSON: {error}"))?;
        let descriptors = |key: &str| -> Result<Vec<Descriptor>, String> {
            json.get(key)
                .and_then(|v| v.as_array())
                .map(|list| list.iter().map(parse_descriptor).collect())
                .unwrap_or_else(|| Ok(Vec::new()))
        };
        let children = descriptors("manifests")?;
        let mut blobs = Vec::new();
        if let Some(config) = json.get("config") {
            blobs.push(parse_descriptor(config)?);
        }
        blobs.extend(descriptors("layers")?);
        let media_type = match json.get("mediaType").and_then(|v| v.as_str()) {
            Some(media_type) => media_type.to_owned(),
            // `mediaType` is optional in OCI; the shape tells.
            None if json.get("manifests").is_some() => {
                "application/vnd.oci.image.index.v1+json".to_owned()
            }
            None => "application/vnd.oci.image.manifest.v1+json".to_owned(),
        };
        Ok(ManifestBlob {
            digest: digest.clone(),
            media_type,
            bytes,
            children,
            blobs,
        })
    }
}

fn parse_descriptor(value: &serde_json::Value) -> Result<Descriptor, String> {
    let media_type = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let digest = value
        .get("digest")
        .and_then(|v| v.as_str())
        .ok_or("a descriptor without digest")?
        .parse()?;
    let size = value
        .get("size")
        .and_then(|v| v.as_u64())
        .ok_or("a descriptor without size")?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(good.parse::<Digest>().unwrap().hex(), "a".repeat(64));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            format!("sha512:{}", "a".repeat(64))
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            format!("sha256:{}", "A".repeat(64))
                .parse::<Digest>()
                .is_err()
        );
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
