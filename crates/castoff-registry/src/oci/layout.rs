//! The OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`) and the parts
//! of manifests and indexes the pusher needs: media type, children, blobs. Digests and
//! descriptors are castoff-archive's OCI vocabulary.

use std::path::{Path, PathBuf};

use castoff_archive::oci::{
    Descriptor, Digest, LAYOUT_REFERRERS_ANNOTATION, REF_NAME_ANNOTATION, is_index_media_type,
    manifest_media_type,
};

use crate::error::RegistryError;

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
        is_index_media_type(&self.media_type)
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
        let bytes =
            castoff_archive::foreign::read_regular(&path, MANIFEST_LIMIT).map_err(|error| {
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
                let descriptor = Descriptor::from_json(entry).map_err(|message| {
                    RegistryError::artifact_file(&path, message, "rebuild the image layout")
                })?;
                let name = descriptor
                    .annotations
                    .get(REF_NAME_ANNOTATION)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                Ok((descriptor, name))
            })
            .collect()
    }

    /// The artifacts castoff attached to the layout's images (the SBOMs): the descriptors of
    /// the referrers index that an `index.json` entry names with
    /// `io.github.castoff-rs.referrers` (docs/channels/oci.md), each with its `artifactType`
    /// and its subject's digest (`io.github.castoff-rs.referrer.subject`). Empty when no entry
    /// names one. The referrers index is read like any manifest: bounded, digest checked.
    pub fn referrers(&self) -> Result<Vec<Descriptor>, RegistryError> {
        let mut referrers = Vec::new();
        for (root, _) in self.roots()? {
            let Some(value) = root.annotations.get(LAYOUT_REFERRERS_ANNOTATION) else {
                continue;
            };
            let digest: Digest = value
                .as_str()
                .ok_or_else(|| format!("`{value}` is not a digest"))
                .and_then(str::parse)
                .map_err(|message| {
                    RegistryError::artifact_file(
                        &self.root.join("index.json"),
                        format!("annotation `{LAYOUT_REFERRERS_ANNOTATION}`: {message}"),
                        "rebuild the image layout",
                    )
                })?;
            referrers.extend(self.manifest(&digest)?.children);
        }
        Ok(referrers)
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
                .map(|list| list.iter().map(Descriptor::from_json).collect())
                .unwrap_or_else(|| Ok(Vec::new()))
        };
        let children = descriptors("manifests")?;
        let mut blobs = Vec::new();
        if let Some(config) = json.get("config") {
            blobs.push(Descriptor::from_json(config)?);
        }
        blobs.extend(descriptors("layers")?);
        let media_type = manifest_media_type(&json);
        Ok(ManifestBlob {
            digest: digest.clone(),
            media_type,
            bytes,
            children,
            blobs,
        })
    }
}
