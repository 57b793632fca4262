//! Base images read from an OCI image layout on disk (`base = "oci-layout:<dir>"`, or the base
//! cache that `castoff dist` pulls registry references into before building): pick the
//! manifest for a platform from its index (nested indexes and Docker manifest lists
//! included, attestation entries skipped), read its config as generic JSON (so fields castoff
//! does not know survive), and copy its layers into the output layout, checking every digest.
//!
//! The layout is input, not trusted: digests are verified, digests never become paths
//! unchecked, and nothing in it is written to.

use std::path::{Path, PathBuf};

use castoff_archive::oci::{
    DOCKER_LAYER_GZIP_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Descriptor,
    Digest, INDEX_MEDIA_TYPE, LAYER_GZIP_MEDIA_TYPE, LAYER_TAR_MEDIA_TYPE, LAYER_ZSTD_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, Platform, REF_NAME_ANNOTATION,
};
use castoff_plan::target::OciPlatform;
use serde_json::Value;

use crate::blobs::{self, BlobStore};
use crate::error::OciError;

/// Layer media types castoff copies, and the OCI type each becomes in the output (Docker's
/// gzip layer is byte-for-byte an OCI gzip layer; some registries reject mixed families).
const LAYER_TYPES: &[(&str, &str)] = &[
    (LAYER_GZIP_MEDIA_TYPE, LAYER_GZIP_MEDIA_TYPE),
    (DOCKER_LAYER_GZIP_MEDIA_TYPE, LAYER_GZIP_MEDIA_TYPE),
    (LAYER_TAR_MEDIA_TYPE, LAYER_TAR_MEDIA_TYPE),
    (LAYER_ZSTD_MEDIA_TYPE, LAYER_ZSTD_MEDIA_TYPE),
];

/// How deep nested indexes are followed (a loop in a hostile layout must end).
const MAX_INDEX_DEPTH: usize = 4;

/// An opened base layout.
#[derive(Debug)]
pub(crate) struct BaseLayout {
    app: String,
    dir: PathBuf,
    index: Value,
    /// For a pulled base, the configured reference (`registry/repo@sha256:…`).
    reference: Option<String>,
}

/// The base image of one platform, its layers already copied into the output store.
#[derive(Debug, Clone)]
pub(crate) struct BaseImage {
    /// Digest of the base manifest (`org.opencontainers.image.base.digest`).
    pub(crate) manifest_digest: String,
    /// The base config, as generic JSON.
    pub(crate) config: Value,
    /// The base layers, retyped to OCI media types.
    pub(crate) layers: Vec<Descriptor>,
    /// The `diff_id` of each base layer, from the base config.
    pub(crate) diff_ids: Vec<String>,
}

/// One image manifest found in the layout.
#[derive(Debug)]
struct Candidate {
    digest: String,
    manifest: Value,
    /// What the index or the config says the image is for.
    platform: Platform,
}

impl BaseLayout {
    /// Reads `dir/oci-layout` and `dir/index.json`.
    pub(crate) fn open(app: &str, dir: &Path) -> Result<BaseLayout, OciError> {
        let layout = BaseLayout {
            app: app.to_owned(),
            dir: dir.to_owned(),
            index: Value::Null,
            reference: None,
        };
        let hint_copy =
            "create it with `skopeo copy docker://<image>@sha256:<digest> oci:<dir>:<tag>`";
        let marker = std::fs::read(dir.join("oci-layout")).map_err(|error| {
            layout.error(
                format!("cannot read `oci-layout`: {error}"),
                hint_copy.to_owned(),
            )
        })?;
        let version = serde_json::from_slice::<Value>(&marker)
            .ok()
            .and_then(|value| value["imageLayoutVersion"].as_str().map(str::to_owned));
        if version.as_deref() != Some("1.0.0") {
            return Err(layout.error(
                "`oci-layout` does not say `imageLayoutVersion` 1.0.0".to_owned(),
                hint_copy.to_owned(),
            ));
        }
        let index_bytes = std::fs::read(dir.join("index.json")).map_err(|error| {
            layout.error(
                format!("cannot read `index.json`: {error}"),
                hint_copy.to_owned(),
            )
        })?;
        let index = serde_json::from_slice(&index_bytes).map_err(|error| {
            layout.error(
                format!("`index.json` is not JSON: {error}"),
                hint_copy.to_owned(),
            )
        })?;
        Ok(BaseLayout { index, ..layout })
    }

    /// The base cache `cache` (an image layout shared by every pulled base) narrowed to the
    /// entry `castoff dist` added for `reference`: its `index.json` entry names the reference
    /// (`org.opencontainers.image.ref.name`) and has the pinned digest.
    pub(crate) fn open_pulled(
        app: &str,
        cache: &Path,
        reference: &str,
    ) -> Result<BaseLayout, OciError> {
        let not_pulled = || OciError::BaseNotPulled {
            app: app.to_owned(),
            reference: reference.to_owned(),
            cache: cache.to_owned(),
        };
        let pinned = reference
            .split_once('@')
            .map(|(_, digest)| digest)
            .ok_or_else(not_pulled)?;
        if !cache.join("oci-layout").is_file() {
            return Err(not_pulled());
        }
        let mut layout = BaseLayout::open(app, cache)?;
        let entries: Vec<Value> = layout.index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| {
                entry["digest"] == pinned && entry["annotations"][REF_NAME_ANNOTATION] == reference
            })
            .take(1)
            .cloned()
            .collect();
        if entries.is_empty() {
            return Err(not_pulled());
        }
        layout.index = serde_json::json!({ "manifests": entries });
        layout.reference = Some(reference.to_owned());
        Ok(layout)
    }

    /// `org.opencontainers.image.base.name` of a pulled base: the reference without its digest.
    pub(crate) fn base_name(&self) -> Option<&str> {
        let reference = self.reference.as_deref()?;
        Some(
            reference
                .split_once('@')
                .map_or(reference, |(name, _)| name),
        )
    }

    fn error(&self, problem: String, hint: String) -> OciError {
        OciError::BaseLayout {
            app: self.app.clone(),
            dir: self.dir.clone(),
            problem,
            hint,
        }
    }

    fn integrity(&self, problem: String) -> OciError {
        let hint = match &self.reference {
            Some(reference) => format!(
                "the base cache changed after `{reference}` was pulled; run `castoff dist` again: it checks every cached blob and fetches damaged ones again"
            ),
            None => {
                "the layout is damaged or was edited; copy the base image again with `skopeo copy`"
                    .to_owned()
            }
        };
        self.error(problem, hint)
    }

    /// Finds the image for `platform`, copies its layers into `store` and returns it.
    pub(crate) fn image_for(
        &self,
        platform: &OciPlatform,
        store: &BlobStore,
    ) -> Result<BaseImage, OciError> {
        let mut candidates = Vec::new();
        self.collect(&self.index, 0, None, &mut candidates)?;
        let available: Vec<String> = candidates.iter().map(|c| c.platform.to_string()).collect();
        let mut matching: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| {
                c.platform
                    .matches(platform.os, platform.architecture, platform.variant)
            })
            .collect();
        matching.dedup_by(|a, b| a.digest == b.digest);
        let candidate = match matching.len() {
            1 => matching.remove(0),
            0 => {
                return Err(self.error(
                    format!(
                        "it has no image for {platform} (it has: {})",
                        if available.is_empty() {
                            "no images".to_owned()
                        } else {
                            available.join(", ")
                        }
                    ),
                    format!(
                        "copy every platform of the base: `skopeo copy --all docker://<image>@sha256:<digest> oci:{}:base`",
                        self.dir.display()
                    ),
                ));
            }
            _ => {
                return Err(self.error(
                    format!(
                        "it has {} different images for {platform}: {}",
                        matching.len(),
                        matching
                            .iter()
                            .map(|c| c.digest.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "keep one base image per platform in the layout".to_owned(),
                ));
            }
        };

        let config_descriptor = &candidate.manifest["config"];
        let config_digest = config_descriptor["digest"].as_str().unwrap_or_default();
        let config_bytes =
            blobs::read_verified(&self.dir, config_digest).map_err(|p| self.integrity(p))?;
        let config: Value = serde_json::from_slice(&config_bytes).map_err(|error| {
            self.integrity(format!("config {config_digest} is not JSON: {error}"))
        })?;

        let mut layers = Vec::new();
        for layer in candidate.manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let media_type = layer["mediaType"].as_str().unwrap_or_default();
            let Some((_, output_type)) = LAYER_TYPES.iter().find(|(from, _)| *from == media_type)
            else {
                return Err(self.error(
                    format!("layer media type `{media_type}` is not supported (foreign or non-distributable layers cannot be copied)"),
                    "use a base image whose layers are plain tar, gzip or zstd".to_owned(),
                ));
            };
            let digest = layer["digest"].as_str().unwrap_or_default();
            let digest: Digest = digest.parse().map_err(|_| {
                self.integrity(format!("layer digest `{digest}` is not a sha256 digest"))
            })?;
            let source = self.dir.join("blobs").join("sha256").join(digest.hex());
            let descriptor =
                Descriptor::new(output_type, digest, layer["size"].as_u64().unwrap_or(0));
            store
                .copy_verified(&source, &descriptor)?
                .map_err(|problem| self.integrity(problem))?;
            layers.push(descriptor);
        }
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();
        if diff_ids.len() != layers.len() {
            return Err(self.integrity(format!(
                "the base manifest {} has {} layers but its config lists {} diff_ids",
                candidate.digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        Ok(BaseImage {
            manifest_digest: candidate.digest,
            config,
            layers,
            diff_ids,
        })
    }

    /// Walks an index (`index.json` or a nested one) and collects its image manifests.
    fn collect(
        &self,
        index: &Value,
        depth: usize,
        parent_platform: Option<&Value>,
        out: &mut Vec<Candidate>,
    ) -> Result<(), OciError> {
        if depth > MAX_INDEX_DEPTH {
            return Err(self.integrity(format!(
                "indexes are nested more than {MAX_INDEX_DEPTH} levels deep"
            )));
        }
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let media_type = entry["mediaType"].as_str().unwrap_or_default();
            let digest = entry["digest"].as_str().unwrap_or_default();
            let platform = entry.get("platform").or(parent_platform);
            // Buildx attestations sit in indexes as `unknown/unknown` manifests.
            if platform.is_some_and(|p| p["os"] == "unknown" || p["architecture"] == "unknown") {
                continue;
            }
            match media_type {
                INDEX_MEDIA_TYPE | DOCKER_LIST_MEDIA_TYPE => {
                    let bytes =
                        blobs::read_verified(&self.dir, digest).map_err(|p| self.integrity(p))?;
                    let nested: Value = serde_json::from_slice(&bytes).map_err(|error| {
                        self.integrity(format!("index {digest} is not JSON: {error}"))
                    })?;
                    self.collect(&nested, depth + 1, platform, out)?;
                }
                MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST_MEDIA_TYPE => {
                    let bytes =
                        blobs::read_verified(&self.dir, digest).map_err(|p| self.integrity(p))?;
                    let manifest: Value = serde_json::from_slice(&bytes).map_err(|error| {
                        self.integrity(format!("manifest {digest} is not JSON: {error}"))
                    })?;
                    let platform = match platform {
                        Some(platform) => Platform::from_json(platform),
                        None => {
                            // No platform in the index: the config knows.
                            let config_digest =
                                manifest["config"]["digest"].as_str().unwrap_or_default();
                            let config = blobs::read_verified(&self.dir, config_digest)
                                .map_err(|p| self.integrity(p))?;
                            let config: Value =
                                serde_json::from_slice(&config).unwrap_or(Value::Null);
                            Platform::from_json(&config)
                        }
                    };
                    if platform.is_unknown() {
                        continue;
                    }
                    out.push(Candidate {
                        digest: digest.to_owned(),
                        manifest,
                        platform,
                    });
                }
                // Artifacts (signatures, SBOMs) and unknown types are not base images.
                _ => {}
            }
        }
        Ok(())
    }
}
