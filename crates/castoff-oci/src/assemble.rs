//! Assembling one app's multi-platform image from per-platform images that other machines
//! already built (the partial dist folders of a distributed release): every blob is copied and
//! re-verified (the SBOM artifacts found through each layout's referrers index), the index,
//! the referrers index and the layout's `index.json` are written by the same code as
//! [`crate::build_images`], and each platform's `docker load` archive is copied as it is.
//!
//! Nothing is rebuilt from binaries, so the merged layout holds exactly the image manifests
//! (hence digests) each runner produced.

use std::fs;
use std::path::{Path, PathBuf};

use castoff_archive::digest::{hex, sha256_reader};
use castoff_plan::Target;
use castoff_plan::plan::{App, OciChannel};
use castoff_plan::target::OciPlatform;
use serde_json::{Map, Value};

use castoff_archive::oci::{Descriptor, INDEX_MEDIA_TYPE, LAYOUT_REFERRERS_ANNOTATION};

use crate::blobs::{self, BlobStore};
use crate::error::OciError;
use crate::{
    BuiltImage, BuiltIndex, BuiltLayer, PartialDir, SBOM_ARTIFACT_TYPE, archive_name,
    referrer_descriptor, write_layout_index,
};

/// One platform's image found in a partial dist.
struct FoundImage {
    target: &'static Target,
    platform: OciPlatform,
    manifest: Descriptor,
    config: Descriptor,
    layers: Vec<Descriptor>,
    diff_ids: Vec<String>,
    sbom: Option<Descriptor>,
    /// The partial dist it came from (for its `docker load` archive).
    part: PathBuf,
}

/// Assembles `dist_dir/oci/<app>/` and `dist_dir/oci/<app>-<platform>.tar` from the image
/// layouts `<part>/oci/<app>/` of `partial_dists` (parts without one are skipped). Refuses a
/// platform found twice, an image for a platform the app does not target, and parts whose
/// index annotations (version, revision, creation time) disagree.
pub fn assemble_images(
    app: &App,
    oci: &OciChannel,
    partial_dists: &[PathBuf],
    dist_dir: &Path,
) -> Result<BuiltIndex, OciError> {
    let name = app.package.name.clone();
    let refuse = |part: &Path, problem: String, hint: &str| OciError::Assemble {
        app: name.clone(),
        part: part.to_owned(),
        problem,
        cause_hint: None,
        hint: hint.to_owned(),
    };
    // A blob that could not be copied: its own hint comes first.
    let refuse_blob = |part: &Path, problem: BlobProblem, hint: &str| OciError::Assemble {
        app: name.clone(),
        part: part.to_owned(),
        problem: problem.text,
        cause_hint: problem.hint,
        hint: hint.to_owned(),
    };
    let rebuild = "build that partial dist again with the same castoff (`dist --target …`); never edit it by hand";

    let oci_dir = dist_dir.join("oci");
    fs::create_dir_all(&oci_dir).map_err(OciError::io("create the directory", &oci_dir))?;
    let layout_dir = oci_dir.join(&name);
    let partial = PartialDir::new(blobs::temp_sibling(&layout_dir))?;
    let store = BlobStore::create(&partial.path)?;

    let mut annotations: Option<(Map<String, Value>, PathBuf)> = None;
    let mut found: Vec<FoundImage> = Vec::new();
    for part in partial_dists {
        let layout = part.join("oci").join(&name);
        if !layout.join("index.json").is_file() {
            continue;
        }
        let layout_index = read_json(&layout.join("index.json"))
            .map_err(|problem| refuse(part, problem, rebuild))?;
        // castoff writes one entry: the image index, which names the referrers index of the
        // SBOM artifacts (crate::write_layout_index).
        let entries = layout_index["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let image_index = match entries.as_slice() {
            [entry] => descriptor(entry).map_err(|problem| refuse(part, problem, rebuild))?,
            _ => {
                return Err(refuse(
                    part,
                    format!(
                        "its `index.json` lists {} entries; castoff writes exactly one, the image index",
                        entries.len()
                    ),
                    rebuild,
                ));
            }
        };
        if image_index.media_type != INDEX_MEDIA_TYPE {
            return Err(refuse(
                part,
                "its `index.json` names no image index".to_owned(),
                rebuild,
            ));
        }
        let mut sboms: Vec<(String, Descriptor)> = Vec::new();
        if let Some(referrers) = image_index.annotations.get(LAYOUT_REFERRERS_ANNOTATION) {
            let referrers = referrers
                .as_str()
                .and_then(castoff_archive::oci::sha256_hex)
                .ok_or_else(|| {
                    refuse(
                        part,
                        format!(
                            "its `index.json` annotation `{LAYOUT_REFERRERS_ANNOTATION}` is {referrers}, not a sha256 digest"
                        ),
                        rebuild,
                    )
                })?;
            let bytes = blobs::read_verified(&layout, &format!("sha256:{referrers}"))
                .map_err(|problem| refuse(part, problem, rebuild))?;
            let referrers_index: Value = serde_json::from_slice(&bytes)
                .map_err(|error| refuse(part, error.to_string(), rebuild))?;
            for entry in referrers_index["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let listed =
                    descriptor(&entry).map_err(|problem| refuse(part, problem, rebuild))?;
                if listed.artifact_type.as_deref() != Some(SBOM_ARTIFACT_TYPE) {
                    return Err(refuse(
                        part,
                        format!(
                            "its referrers index lists {} of artifact type {}; castoff writes SBOMs ({SBOM_ARTIFACT_TYPE}) only",
                            listed.digest,
                            listed.artifact_type.as_deref().unwrap_or("(none)")
                        ),
                        rebuild,
                    ));
                }
                let bytes = blobs::read_verified(&layout, listed.digest.as_str())
                    .map_err(|problem| refuse(part, problem, rebuild))?;
                let manifest: Value = serde_json::from_slice(&bytes)
                    .map_err(|error| refuse(part, error.to_string(), rebuild))?;
                let referrer = referrer_descriptor(&listed, &manifest)
                    .map_err(|problem| refuse(part, problem, rebuild))?;
                if referrer != listed {
                    return Err(refuse(
                        part,
                        format!(
                            "its referrers index lists {} as {}, but the artifact manifest says {}",
                            listed.digest,
                            listed.to_json(),
                            referrer.to_json()
                        ),
                        rebuild,
                    ));
                }
                let subject = manifest["subject"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                copy_children(&store, &layout, &manifest)
                    .map_err(|problem| refuse_blob(part, problem, rebuild))?;
                put_verified(&store, &layout, &listed)
                    .map_err(|problem| refuse_blob(part, problem, rebuild))?;
                sboms.push((subject, referrer));
            }
        }
        let bytes = blobs::read_verified(&layout, image_index.digest.as_str())
            .map_err(|problem| refuse(part, problem, rebuild))?;
        let index: Value = serde_json::from_slice(&bytes)
            .map_err(|error| refuse(part, error.to_string(), rebuild))?;
        let these = index["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        match &annotations {
            None => annotations = Some((these, part.clone())),
            Some((first, first_part)) if *first != these => {
                return Err(refuse(
                    part,
                    format!(
                        "its image annotations differ from those of `{}` ({} vs {})",
                        first_part.display(),
                        Value::Object(these),
                        Value::Object(first.clone())
                    ),
                    "build every partial dist from the same commit with the same SOURCE_DATE_EPOCH",
                ));
            }
            Some(_) => {}
        }
        for entry in index["manifests"].as_array().cloned().unwrap_or_default() {
            let manifest_descriptor =
                descriptor(&entry).map_err(|problem| refuse(part, problem, rebuild))?;
            let platform_json = entry["platform"].clone();
            // A platform with both a glibc and a musl target has its image built from the
            // musl one (the plan's rule): prefer it, whatever the order of `targets`.
            let matching = || {
                app.targets.iter().copied().filter(|target| {
                    target
                        .oci
                        .is_some_and(|p| crate::document::platform_json(&p) == platform_json)
                })
            };
            let target = matching()
                .find(|target| target.libc == Some(castoff_plan::target::Libc::Musl))
                .or_else(|| matching().next())
                .ok_or_else(|| {
                    refuse(
                        part,
                        format!(
                            "it holds an image for {platform_json}, which `{name}` does not target"
                        ),
                        "merge only partial dists of this workspace's release",
                    )
                })?;
            let platform = target.oci.expect("found by its platform");
            if let Some(other) = found.iter().find(|image| image.platform == platform) {
                return Err(refuse(
                    part,
                    format!("the {platform} image is also in `{}`", other.part.display()),
                    "pass each target's partial dist once",
                ));
            }
            let bytes = blobs::read_verified(&layout, manifest_descriptor.digest.as_str())
                .map_err(|problem| refuse(part, problem, rebuild))?;
            let manifest: Value = serde_json::from_slice(&bytes)
                .map_err(|error| refuse(part, error.to_string(), rebuild))?;
            copy_children(&store, &layout, &manifest)
                .map_err(|problem| refuse_blob(part, problem, rebuild))?;
            put_verified(&store, &layout, &manifest_descriptor)
                .map_err(|problem| refuse_blob(part, problem, rebuild))?;
            let config = descriptor(&manifest["config"])
                .map_err(|problem| refuse(part, problem, rebuild))?;
            let config_bytes = blobs::read_verified(&layout, config.digest.as_str())
                .map_err(|problem| refuse(part, problem, rebuild))?;
            let config_json: Value = serde_json::from_slice(&config_bytes)
                .map_err(|error| refuse(part, error.to_string(), rebuild))?;
            let layers = manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(descriptor)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|problem| refuse(part, problem, rebuild))?;
            let diff_ids = config_json["rootfs"]["diff_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect();
            let sbom = sboms
                .iter()
                .find(|(subject, _)| manifest_descriptor.digest == **subject)
                .map(|(_, sbom)| sbom.clone());
            let mut manifest_descriptor = manifest_descriptor;
            manifest_descriptor.annotations = Map::new();
            manifest_descriptor.platform = Some(platform_json);
            found.push(FoundImage {
                target,
                platform,
                manifest: manifest_descriptor,
                config,
                layers,
                diff_ids,
                sbom,
                part: part.clone(),
            });
        }
        if let Some((subject, sbom)) = sboms.iter().find(|(subject, _)| {
            !found
                .iter()
                .any(|image| image.part == *part && image.manifest.digest == **subject)
        }) {
            return Err(refuse(
                part,
                format!(
                    "its SBOM artifact {} is attached to {subject}, which is not an image of its index",
                    sbom.digest
                ),
                rebuild,
            ));
        }
    }
    let Some((annotations, _)) = annotations else {
        return Err(OciError::NoPlatforms { app: name });
    };
    found.sort_by_key(|image| {
        (
            image.platform.os,
            image.platform.architecture,
            image.platform.variant,
        )
    });

    let tag = oci
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| app.package.version.to_string());
    let manifests: Vec<Descriptor> = found.iter().map(|image| image.manifest.clone()).collect();
    let referrers: Vec<Descriptor> = found
        .iter()
        .filter_map(|image| image.sbom.clone())
        .collect();
    let index = write_layout_index(&store, &manifests, &referrers, &annotations, &tag)?;
    partial.commit(&layout_dir)?;

    let mut images = Vec::new();
    for image in found {
        let file_name = archive_name(&name, &image.platform);
        let source = image.part.join("oci").join(&file_name);
        let archive = oci_dir.join(&file_name);
        let temp = blobs::temp_sibling(&archive);
        fs::copy(&source, &temp).map_err(OciError::io("copy", &source))?;
        fs::rename(&temp, &archive).map_err(OciError::io("rename into place", &archive))?;
        let file = fs::File::open(&archive).map_err(OciError::io("read", &archive))?;
        let (sha, archive_size) = sha256_reader(file).map_err(OciError::io("read", &archive))?;
        let compressed_size = image.manifest.size
            + image.config.size
            + image.layers.iter().map(|layer| layer.size).sum::<u64>();
        images.push(BuiltImage {
            target: image.target,
            platform: image.platform.to_string(),
            manifest_digest: image.manifest.digest.to_string(),
            manifest_size: image.manifest.size,
            config_digest: image.config.digest.to_string(),
            config_size: image.config.size,
            layers: image
                .layers
                .iter()
                .zip(
                    image
                        .diff_ids
                        .iter()
                        .chain(std::iter::repeat(&String::new())),
                )
                .map(|(layer, diff_id)| BuiltLayer {
                    digest: layer.digest.to_string(),
                    size: layer.size,
                    diff_id: diff_id.clone(),
                })
                .collect(),
            compressed_size,
            archive,
            archive_size,
            archive_sha256: hex(&sha),
            sbom_manifest_digest: image.sbom.map(|sbom| sbom.digest.to_string()),
        });
    }
    Ok(BuiltIndex {
        app: name,
        repository: oci.repository.clone(),
        tag,
        layout_dir,
        index_digest: index.digest.to_string(),
        index_size: index.size,
        images,
    })
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = castoff_archive::foreign::read_regular(path, blobs::MAX_DOCUMENT_BYTES)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| format!("`{}` is not JSON: {error}", path.display()))
}

/// A descriptor read from a foreign document; the digest must be a well-formed sha256.
fn descriptor(value: &Value) -> Result<Descriptor, String> {
    Descriptor::from_json(value).map_err(|_| format!("`{value}` is not a valid descriptor"))
}

/// Copies the config and layers a manifest names.
/// Why a blob could not be copied, with the hint of the error behind it (if any).
struct BlobProblem {
    text: String,
    hint: Option<String>,
}

impl From<String> for BlobProblem {
    fn from(text: String) -> BlobProblem {
        BlobProblem { text, hint: None }
    }
}

fn copy_children(store: &BlobStore, layout: &Path, manifest: &Value) -> Result<(), BlobProblem> {
    let mut children = vec![descriptor(&manifest["config"])?];
    for layer in manifest["layers"].as_array().cloned().unwrap_or_default() {
        children.push(descriptor(&layer)?);
    }
    for child in &children {
        put_verified(store, layout, child)?;
    }
    Ok(())
}

/// Copies one blob, checking digest and size (a partial dist came from another machine).
fn put_verified(store: &BlobStore, layout: &Path, blob: &Descriptor) -> Result<(), BlobProblem> {
    if store.path_of_hex(blob.digest.hex()).is_file() {
        return Ok(());
    }
    let source = layout.join("blobs").join("sha256").join(blob.digest.hex());
    store
        .copy_verified(&source, blob)
        .map_err(|error| BlobProblem {
            text: error.to_string(),
            hint: error.hint(),
        })?
        .map_err(BlobProblem::from)
}
