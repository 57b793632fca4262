//! The OCI vocabulary shared by the image builder (castoff-oci), the registry client
//! (castoff-registry) and the base-image puller (castoff's `base.rs`): media types, content
//! digests, descriptors, annotation keys and the rule that matches an image to a platform.
//! It lives here, below both castoff-oci and castoff-registry, so neither a builder nor the
//! network has to depend on the other for words.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::digest::{hex, sha256};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker image manifest (schema 2).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of a Docker manifest list (Docker's index).
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of an OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed OCI layer.
pub const LAYER_TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer (what castoff writes by default).
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer (`oci.layer-compression = "zstd"`).
pub const LAYER_ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Media type of a Docker gzip layer (byte for byte an OCI gzip layer).
pub const DOCKER_LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of the empty JSON object `{}` (the config of an artifact manifest).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Media type of an unknown blob (a descriptor that names none).
pub const OCTET_STREAM_MEDIA_TYPE: &str = "application/octet-stream";

/// Every manifest media type castoff pushes or reads back: indexes first.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    DOCKER_LIST_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
];

/// The annotation naming an entry of an image layout's `index.json` (a tag, or the pinned
/// reference of a pulled base).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// castoff's annotation on the one entry of its image layout's `index.json`: the digest of the
/// layout's *referrers index*, a blob listing the artifacts (the SBOMs) whose `subject` is an
/// image of that entry. The artifacts are not `index.json` entries themselves: skopeo, podman
/// and Buildah open `oci:<dir>` without a tag only when `index.json` lists exactly one entry
/// (docs/channels/oci.md, "What dist/ gets").
pub const LAYOUT_REFERRERS_ANNOTATION: &str = "io.github.castoff-rs.referrers";

/// castoff's annotation on each descriptor of a layout's referrers index: the digest of the
/// artifact's `subject`, so a reader finds the artifact of one image without opening the others.
pub const REFERRER_SUBJECT_ANNOTATION: &str = "io.github.castoff-rs.referrer.subject";

/// The `oci-layout` file of an image layout.
pub const LAYOUT_MARKER: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Whether a manifest of this media type lists other manifests (an OCI index or a Docker
/// manifest list, including vendor variants of either).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type.contains("index") || media_type.contains("manifest.list")
}

/// The media type of a manifest or index: its `mediaType`, else (the field is optional in
/// OCI) what its shape says.
pub fn manifest_media_type(manifest: &Value) -> String {
    match manifest.get("mediaType").and_then(Value::as_str) {
        Some(media_type) => media_type.to_owned(),
        None if manifest.get("manifests").is_some() => INDEX_MEDIA_TYPE.to_owned(),
        None => MANIFEST_MEDIA_TYPE.to_owned(),
    }
}

/// `<hex>` of a well-formed `sha256:<64 lower-case hex>` digest; `None` for anything else, so
/// a digest read from a foreign file can never become a path like `../../etc`.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// A `sha256:<64 lower-case hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of bytes in memory.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(&sha256(bytes))
    }

    /// The digest of a SHA-256 computed elsewhere (while the bytes were written).
    pub fn from_sha256(sha256: &[u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex(sha256)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part: a blob's file name in an image layout.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Digest, String> {
        if !text.starts_with("sha256:") {
            return Err(format!("`{text}` is not a sha256 digest"));
        }
        match sha256_hex(text) {
            Some(_) => Ok(Digest(text.to_owned())),
            None => Err(format!(
                "`{text}` is not `sha256:` followed by 64 lower-case hex digits"
            )),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A content descriptor: what a manifest or index says about a blob or a child manifest,
/// with the optional platform, artifact type and annotations of an index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Value>,
    /// OCI 1.1's `artifactType`: what an artifact manifest (an SBOM, a signature) holds.
    pub artifact_type: Option<String>,
    pub annotations: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            artifact_type: None,
            annotations: Map::new(),
        }
    }

    /// Reads a descriptor from a manifest, an index or `index.json`: the digest and size are
    /// required, the media type defaults to `application/octet-stream`.
    pub fn from_json(value: &Value) -> Result<Descriptor, String> {
        let media_type = value
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(OCTET_STREAM_MEDIA_TYPE);
        let digest = value
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("a descriptor without digest")?
            .parse()?;
        let size = value
            .get("size")
            .and_then(Value::as_u64)
            .ok_or("a descriptor without size")?;
        Ok(Descriptor {
            platform: value.get("platform").cloned(),
            artifact_type: value
                .get("artifactType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            annotations: value
                .get("annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            ..Descriptor::new(media_type, digest, size)
        })
    }

    /// The JSON object, with `platform`, `artifactType` and `annotations` only when present.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "mediaType": self.media_type,
            "digest": self.digest.as_str(),
            "size": self.size,
        });
        if let Some(platform) = &self.platform {
            value["platform"] = platform.clone();
        }
        if let Some(artifact_type) = &self.artifact_type {
            value["artifactType"] = json!(artifact_type);
        }
        if !self.annotations.is_empty() {
            value["annotations"] = Value::Object(self.annotations.clone());
        }
        value
    }
}

/// The platform an index entry or an image config says an image is for; a missing field
/// reads as `unknown`, as in the attestation entries buildx puts in indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// From a `platform` object or an image config.
    pub fn from_json(value: &Value) -> Platform {
        Platform {
            os: value["os"].as_str().unwrap_or("unknown").to_owned(),
            architecture: value["architecture"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            variant: value["variant"].as_str().map(str::to_owned),
        }
    }

    /// Not an image for any platform (an attestation, or a platform nobody stated).
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }

    /// Whether an image for this platform serves `os`/`architecture`[/`variant`]: os and
    /// architecture equal, variants equal when both name one.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (self.variant.as_deref(), variant) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
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
        assert_eq!(sha256_hex("sha256:../../etc/passwd"), None);
    }

    #[test]
    fn descriptors_round_trip() {
        let digest = Digest::of(b"{}");
        let value = json!({
            "mediaType": INDEX_MEDIA_TYPE,
            "digest": digest.as_str(),
            "size": 2,
            "platform": { "os": "linux", "architecture": "arm64", "variant": "v8" },
            "annotations": { REF_NAME_ANNOTATION: "1.0" },
        });
        let descriptor = Descriptor::from_json(&value).unwrap();
        assert_eq!(descriptor.digest, digest);
        assert_eq!(descriptor.to_json(), value);
        let bare = Descriptor::from_json(&json!({ "digest": digest.as_str(), "size": 2 }));
        assert_eq!(bare.unwrap().media_type, OCTET_STREAM_MEDIA_TYPE);
        assert!(Descriptor::from_json(&json!({ "size": 2 })).is_err());
        assert!(Descriptor::from_json(&json!({ "digest": digest.as_str() })).is_err());
    }

    #[test]
    fn platforms_match_by_os_architecture_and_stated_variants() {
        let platform = |value: Value| Platform::from_json(&value);
        let arm64 = platform(json!({ "os": "linux", "architecture": "arm64" }));
        let arm64_v8 = platform(json!({ "os": "linux", "architecture": "arm64", "variant": "v8" }));
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64_v8.matches("linux", "arm64", None));
        assert!(arm64_v8.matches("linux", "arm64", Some("v8")));
        assert!(!arm64_v8.matches("linux", "arm64", Some("v7")));
        assert!(!arm64.matches("linux", "amd64", None));
        assert_eq!(arm64_v8.to_string(), "linux/arm64/v8");
        assert!(platform(json!({ "architecture": "amd64" })).is_unknown());
        assert!(!arm64.is_unknown());
        assert!(is_index_media_type(DOCKER_LIST_MEDIA_TYPE));
        assert!(!is_index_media_type(MANIFEST_MEDIA_TYPE));
        assert_eq!(
            manifest_media_type(&json!({ "manifests": [] })),
            INDEX_MEDIA_TYPE
        );
        assert_eq!(
            manifest_media_type(&json!({ "layers": [] })),
            MANIFEST_MEDIA_TYPE
        );
    }
}
