//! OCI images built straight from a compiled binary: layers, config, manifests, index,
//! image layout and `docker load` archives, reproducibly and without a daemon.
//!
//! [`build_images`] writes, for one app:
//!
//! - `dist/oci/<app>/`: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`)
//!   with every platform's image and the multi-platform index, which `index.json` names, as
//!   its only entry, with `org.opencontainers.image.ref.name` = the version tag; the SBOM
//!   artifacts are listed in a referrers index that entry names
//!   ([`LAYOUT_REFERRERS_ANNOTATION`]);
//! - `dist/oci/<app>-<os>-<arch>[-<variant>].tar`, one per platform: a `docker load`-able
//!   archive (that platform's OCI layout plus the legacy `manifest.json`).
//!
//! [`write_deploy_examples`] then writes `dist/deploy/compose.yaml` and
//! `dist/deploy/kubernetes.yaml` for the apps that have ports or a health check: compose names
//! the image by its version tag (what `docker load` registers), Kubernetes by the index digest.
//!
//! Same inputs and `SOURCE_DATE_EPOCH` give the same bytes, hence the same digests. Nothing is
//! half-written: the layout is assembled under a temporary name and renamed into place, and
//! every file goes through a temporary name.

mod archive;
mod assemble;
mod base;
mod blobs;
mod deploy;
mod dockerfile;
mod document;
mod error;
mod files;
mod json;
mod layer;
mod probe;
mod userland;

use std::fs;
use std::path::{Path, PathBuf};

use castoff_archive::deflate::DeflateCache;
use castoff_archive::elf::{ElfFile, ElfKind, Interpreter};
use castoff_plan::Target;
use castoff_plan::plan::{App, BaseImage, LayerCompression, OciChannel};
use castoff_plan::target::OciPlatform;
use serde_json::json;

pub use assemble::assemble_images;
pub use castoff_archive::oci::{
    CONFIG_MEDIA_TYPE, EMPTY_MEDIA_TYPE, INDEX_MEDIA_TYPE, LAYER_GZIP_MEDIA_TYPE,
    LAYER_ZSTD_MEDIA_TYPE, LAYOUT_REFERRERS_ANNOTATION, MANIFEST_MEDIA_TYPE,
    REFERRER_SUBJECT_ANNOTATION,
};
pub use deploy::write_deploy_examples;
pub use dockerfile::{
    BINARY_DOCKERIGNORE, DockerfileOptions, SOURCE_DOCKERIGNORE, write_dockerfiles,
};
pub use error::OciError;
pub use layer::{BIN_DIR, binary_layer_prefix};
pub use userland::{
    CA_BUNDLE_PATH, CA_SOURCE, LAYER_SOURCE_ANNOTATION, TZDATA_SOURCE, ZONEINFO_DIR, ca_bundle,
    ca_certificate_count, tzdata_version,
};

use castoff_archive::oci::{Descriptor, LAYOUT_MARKER, REF_NAME_ANNOTATION};

use crate::blobs::BlobStore;
use crate::document::ConfigInput;
use crate::json::canonical;
use crate::layer::{EntryContent, LayerEntry, LayerPlan};
use castoff_archive::tar::OwnerFields;

/// One platform's image to build: the target and its compiled binaries.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// A Linux target (one with an OCI platform).
    pub target: &'static Target,
    /// `(bin name, path of the compiled binary)`: every binary in the app's `bins`, once.
    pub binaries: Vec<(String, PathBuf)>,
    /// The CycloneDX SBOM of this platform's binaries: stored in the layout as an OCI 1.1
    /// artifact whose `subject` is this platform's image manifest (see [`SBOM_ARTIFACT_TYPE`]).
    pub sbom: Option<Vec<u8>>,
}

impl ImageInput {
    /// The path of binary `bin` (present: [`build_images`] checks every input first).
    fn binary(&self, bin: &str) -> &PathBuf {
        let (_, path) = self
            .binaries
            .iter()
            .find(|(name, _)| name == bin)
            .expect("checked by check_binaries");
        path
    }
}

/// `artifactType` of the SBOM artifacts (and media type of their one layer).
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// Settings shared by every platform of a build.
#[derive(Debug, Clone)]
pub struct ImageOptions<'a> {
    /// The workspace root: `oci.files` sources must lie inside it.
    pub workspace_root: &'a Path,
    /// Cargo's target directory, whose `castoff/base-cache/` holds the pulled base images.
    pub target_directory: &'a Path,
    /// Every timestamp: layer mtimes, `created`, the `created` annotation.
    pub source_date_epoch: u64,
    /// The source revision (git commit) for `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// Where the binaries are compressed (once per `dist`, shared with the other builders);
    /// its level is every layer's gzip level. Register [`binary_layer_prefix`] with it before
    /// the binaries are compressed, so their layers' diff_ids come from that one pass.
    pub deflate: &'a DeflateCache,
}

/// One layer of a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// `sha256:` of the compressed blob.
    pub digest: String,
    pub size: u64,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
}

/// One platform's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub target: &'static Target,
    /// `linux/amd64`, `linux/arm64/v8`.
    pub platform: String,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub config_size: u64,
    /// Base layers first, castoff's layer last.
    pub layers: Vec<BuiltLayer>,
    /// What a pull transfers: manifest + config + every compressed layer, in bytes.
    pub compressed_size: u64,
    /// The `docker load` archive of this platform.
    pub archive: PathBuf,
    pub archive_size: u64,
    /// Lower-case hex SHA-256 of the archive file.
    pub archive_sha256: String,
    /// `sha256:` of the SBOM artifact manifest whose subject is this image, when one was
    /// attached. A registry with the referrers API lists it under the image; without one, it is
    /// pushed under the tag `sha256-<hex of the image manifest digest>` (the OCI 1.1 fallback).
    pub sbom_manifest_digest: Option<String>,
}

/// Everything [`build_images`] wrote for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    /// The package name (also the layout directory's name).
    pub app: String,
    /// `registry/namespace/name` the images are published to.
    pub repository: String,
    /// The version tag the layout's `index.json` names the index with.
    pub tag: String,
    /// `dist/oci/<app>/`.
    pub layout_dir: PathBuf,
    pub index_digest: String,
    pub index_size: u64,
    /// In platform order (os, architecture, variant).
    pub images: Vec<BuiltImage>,
}

impl BuiltIndex {
    /// The multi-platform image by digest: `ghcr.io/acme/pinger@sha256:…`.
    pub fn pinned_reference(&self) -> String {
        format!("{}@{}", self.repository, self.index_digest)
    }

    /// The image by its version tag, `ghcr.io/acme/pinger:1.4.0`: the name `docker load` of a
    /// platform archive registers, and the tag `publish` pushes.
    pub fn tagged_reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// The base cache under a Cargo target directory: `<target>/castoff/base-cache/`, one OCI image
/// layout holding every base image pulled from a registry (blobs shared between bases), with an
/// `index.json` entry per pinned reference (`org.opencontainers.image.ref.name` = the reference
/// as configured). `castoff dist` fills it before building; [`build_images`] only reads it.
pub fn base_cache_dir(target_directory: &Path) -> PathBuf {
    target_directory.join("castoff").join("base-cache")
}

/// What `oci.files` and `oci.volumes` add to `app`'s image, read from disk exactly as
/// [`build_images`] reads them, with its refusals of the sources (missing, a link, not a
/// regular file, outside the workspace, over the limits; collisions between entries and
/// over-long tar paths are found only when the layer is planned): one line per entry (its
/// path, mode and owner) with, for a file, the source it is copied from. `dist` calls this
/// before any build, so a missing or refused source stops the run before the compile, and
/// keys its cache on the lines and the sources' contents (hidden files and sources outside
/// the package directory included).
pub fn extra_file_inputs(
    workspace_root: &Path,
    app: &App,
    oci: &OciChannel,
) -> Result<Vec<(String, Option<PathBuf>)>, OciError> {
    Ok(files::expand(workspace_root, app, oci)?
        .into_iter()
        .map(|entry| {
            let source = match entry.content {
                EntryContent::File(path) => Some(path),
                EntryContent::Directory | EntryContent::Bytes(_) => None,
            };
            (
                format!("/{} {:o} {:?}", entry.path, entry.mode, entry.owner),
                source,
            )
        })
        .collect())
}

/// Builds one image per input platform of `app`, the index over them, the image layout
/// `dist_dir/oci/<app>/` and one `docker load` archive per platform.
pub fn build_images(
    app: &App,
    oci: &OciChannel,
    inputs: Vec<ImageInput>,
    options: &ImageOptions<'_>,
    dist_dir: &Path,
) -> Result<BuiltIndex, OciError> {
    let name = app.package.name.clone();
    let platforms = check_platforms(&name, inputs)?;
    for (_, input) in &platforms {
        check_binaries(app, oci, input)?;
    }
    let extra_entries = files::expand(options.workspace_root, app, oci)?;
    let base = match &oci.base {
        BaseImage::Scratch => None,
        BaseImage::Reference(reference) => Some(base::BaseLayout::open_pulled(
            &name,
            &base_cache_dir(options.target_directory),
            reference,
        )?),
        BaseImage::Layout(dir) => Some(base::BaseLayout::open(&name, dir)?),
    };

    let oci_dir = dist_dir.join("oci");
    fs::create_dir_all(&oci_dir).map_err(OciError::io("create the directory", &oci_dir))?;
    let layout_dir = oci_dir.join(&name);
    let partial = PartialDir::new(blobs::temp_sibling(&layout_dir))?;
    let store = BlobStore::create(&partial.path)?;

    let annotations =
        document::app_annotations(app, options.revision.as_deref(), options.source_date_epoch);
    let tag = oci.tags.first().cloned().unwrap_or_else(|| {
        // The plan always derives at least the full version tag.
        app.package.version.to_string()
    });

    struct Written {
        image: BuiltImage,
        sbom: Option<Descriptor>,
        manifest: Descriptor,
        config: Descriptor,
        layers: Vec<Descriptor>,
    }
    let mut written: Vec<Written> = Vec::new();
    for (platform, input) in &platforms {
        let base_image = match &base {
            Some(layout) => Some(layout.image_for(platform, &store)?),
            None => None,
        };
        let duplicate = |(path, what)| OciError::DuplicatePath {
            app: name.clone(),
            path,
            what,
        };
        // Every path once across all of castoff's layers (checked on the union), then: the
        // system data (CA certificates, time zones) and the health probe of an `http` or
        // `tcp` check, each in a layer of its own, the files
        // (extra files, and what a scratch image needs) in one layer, and each binary in a
        // layer of its own, last, so a new release changes only the binary layers.
        let (mut layer_plan, files_plan) =
            plan_layer(app, input, &extra_entries, base_image.is_none())?;
        let mut data_layers = Vec::new();
        if oci.userland.ca_certificates {
            data_layers.push(userland::ca_certificates_layer());
        }
        if oci.userland.tzdata {
            data_layers.push(userland::tzdata_layer());
        }
        if oci
            .healthcheck
            .as_ref()
            .is_some_and(|check| check.check.uses_probe())
        {
            data_layers.push(
                userland::probe_layer(platform).ok_or_else(|| OciError::NoProbe {
                    app: name.clone(),
                    platform: platform.to_string(),
                })?,
            );
        }
        for data in &data_layers {
            for entry in &data.entries {
                layer_plan.add(entry.clone()).map_err(duplicate)?;
            }
        }
        layer_plan.entries().map_err(duplicate)?;
        let files_entries = files_plan.entries().map_err(duplicate)?;
        let compression = layer::Compression {
            format: oci.layer_compression,
            level: options.deflate.level(),
        };
        // Each layer with its history line and, for system data, where the data comes from.
        let mut own_layers: Vec<(layer::WrittenLayer, String, Option<String>)> = Vec::new();
        for data in data_layers {
            let mut plan = LayerPlan::default();
            for entry in data.entries {
                plan.add(entry).map_err(duplicate)?;
            }
            let entries = plan.entries().map_err(duplicate)?;
            let layer = layer::write_layer(
                &name,
                &entries,
                options.source_date_epoch,
                compression,
                &store,
            )?;
            own_layers.push((layer, data.summary, Some(data.source)));
        }
        if !files_entries.is_empty() {
            let layer = layer::write_layer(
                &name,
                &files_entries,
                options.source_date_epoch,
                compression,
                &store,
            )?;
            own_layers.push((layer, layer_summary(&files_entries), None));
        }
        for bin in &app.bins {
            let path = input.binary(bin);
            let deflated = options
                .deflate
                .get(path, &|_| {})
                .map_err(OciError::io("compress", path))?;
            let layer = layer::write_binary_layer(
                &name,
                bin,
                &deflated,
                options.source_date_epoch,
                compression,
                &store,
            )?;
            own_layers.push((layer, format!("added {BIN_DIR}/{bin}"), None));
        }

        let mut layers: Vec<Descriptor> = Vec::new();
        let mut diff_ids: Vec<String> = Vec::new();
        let mut manifest_annotations = annotations.clone();
        if let Some(base_image) = &base_image {
            layers.extend(base_image.layers.iter().cloned());
            diff_ids.extend(base_image.diff_ids.iter().cloned());
            manifest_annotations.insert(
                "org.opencontainers.image.base.digest".to_owned(),
                json!(base_image.manifest_digest),
            );
        }
        if let Some(base_name) = base.as_ref().and_then(base::BaseLayout::base_name) {
            manifest_annotations.insert(
                "org.opencontainers.image.base.name".to_owned(),
                json!(base_name),
            );
        }
        for (layer, _, source) in &own_layers {
            let media_type = match oci.layer_compression {
                LayerCompression::Gzip => LAYER_GZIP_MEDIA_TYPE,
                LayerCompression::Zstd => LAYER_ZSTD_MEDIA_TYPE,
            };
            let mut descriptor = Descriptor::new(media_type, layer.digest.clone(), layer.size);
            if let Some(source) = source {
                descriptor
                    .annotations
                    .insert(LAYER_SOURCE_ANNOTATION.to_owned(), json!(source));
            }
            layers.push(descriptor);
            diff_ids.push(layer.diff_id.clone());
        }

        let config = document::image_config(&ConfigInput {
            app,
            oci,
            platform,
            base: base_image.as_ref().map(|image| &image.config),
            diff_ids: diff_ids.clone(),
            annotations: &annotations,
            source_date_epoch: options.source_date_epoch,
            layer_summaries: own_layers
                .iter()
                .map(|(_, summary, _)| summary.clone())
                .collect(),
        });
        let config = store.put(CONFIG_MEDIA_TYPE, &canonical(&config))?;
        let manifest_json = document::image_manifest(&config, &layers, &manifest_annotations);
        let mut manifest = store.put(MANIFEST_MEDIA_TYPE, &canonical(&manifest_json))?;
        manifest.platform = Some(document::platform_json(platform));

        let built_layers: Vec<BuiltLayer> = layers
            .iter()
            .zip(&diff_ids)
            .map(|(layer, diff_id)| BuiltLayer {
                digest: layer.digest.to_string(),
                size: layer.size,
                diff_id: diff_id.clone(),
            })
            .collect();
        let compressed_size =
            manifest.size + config.size + layers.iter().map(|layer| layer.size).sum::<u64>();
        let sbom = match &input.sbom {
            Some(sbom) => Some(put_sbom_artifact(
                &store,
                &name,
                sbom,
                &manifest,
                options.source_date_epoch,
            )?),
            None => None,
        };
        written.push(Written {
            image: BuiltImage {
                target: input.target,
                platform: platform.to_string(),
                manifest_digest: manifest.digest.to_string(),
                manifest_size: manifest.size,
                config_digest: config.digest.to_string(),
                config_size: config.size,
                layers: built_layers,
                compressed_size,
                archive: oci_dir.join(archive_name(&name, platform)),
                archive_size: 0,
                archive_sha256: String::new(),
                sbom_manifest_digest: sbom.as_ref().map(|sbom| sbom.digest.to_string()),
            },
            sbom,
            manifest,
            config,
            layers,
        });
    }

    let manifests: Vec<Descriptor> = written.iter().map(|w| w.manifest.clone()).collect();
    let referrers: Vec<Descriptor> = written.iter().filter_map(|w| w.sbom.clone()).collect();
    let index = write_layout_index(&store, &manifests, &referrers, &annotations, &tag)?;
    partial.commit(&layout_dir)?;

    let repo_tag = format!("{}:{tag}", oci.repository);
    let mut images = Vec::new();
    for mut w in written {
        let (size, sha256) = archive::write_docker_archive(
            &archive::ArchiveInput {
                app: &name,
                layout: &layout_dir,
                manifest: &w.manifest,
                config: &w.config,
                layers: &w.layers,
                repo_tag: &repo_tag,
                tag: &tag,
                mtime: options.source_date_epoch,
            },
            &w.image.archive,
        )?;
        w.image.archive_size = size;
        w.image.archive_sha256 = sha256;
        images.push(w.image);
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

/// Writes the multi-platform index over `manifests` (already in platform order) into the
/// store, then the layout's `oci-layout` and `index.json`: **one** entry, the index named by
/// the version tag. When there are `referrers` (the SBOM artifacts, in the order of their
/// subjects, each described by [`referrer_descriptor`]), they are listed in the layout's
/// referrers index, a blob that entry names with [`LAYOUT_REFERRERS_ANNOTATION`]: skopeo and
/// podman open `oci:<dir>` without a tag only when `index.json` has a single entry. One code
/// path for `build_images` and `assemble_images`, so a merged layout is byte-identical to one
/// built in a single run.
pub(crate) fn write_layout_index(
    store: &BlobStore,
    manifests: &[Descriptor],
    referrers: &[Descriptor],
    annotations: &serde_json::Map<String, serde_json::Value>,
    tag: &str,
) -> Result<Descriptor, OciError> {
    let index_json = document::image_index(manifests, annotations);
    let index = store.put(INDEX_MEDIA_TYPE, &canonical(&index_json))?;
    let mut entry = index.clone();
    entry
        .annotations
        .insert(REF_NAME_ANNOTATION.to_owned(), json!(tag));
    if !referrers.is_empty() {
        let referrers_index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": referrers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        let referrers_index = store.put(INDEX_MEDIA_TYPE, &canonical(&referrers_index))?;
        entry.annotations.insert(
            LAYOUT_REFERRERS_ANNOTATION.to_owned(),
            json!(referrers_index.digest.as_str()),
        );
    }
    let layout_index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [entry.to_json()],
    });
    blobs::write_file_atomically(&store.root().join("oci-layout"), LAYOUT_MARKER)?;
    blobs::write_file_atomically(&store.root().join("index.json"), &canonical(&layout_index))?;
    Ok(index)
}

/// How the layout's referrers index lists an artifact manifest stored as `artifact`: as a
/// referrers API answer lists it (`artifactType` and the manifest's annotations), plus
/// [`REFERRER_SUBJECT_ANNOTATION`] = its `subject`'s digest. Derived from the manifest alone,
/// so a build and a merge that reads the manifest back list it identically.
pub(crate) fn referrer_descriptor(
    artifact: &Descriptor,
    manifest: &serde_json::Value,
) -> Result<Descriptor, String> {
    let subject = manifest["subject"]["digest"]
        .as_str()
        .ok_or_else(|| format!("the artifact manifest {} has no subject", artifact.digest))?;
    let mut annotations = manifest["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert(REFERRER_SUBJECT_ANNOTATION.to_owned(), json!(subject));
    Ok(Descriptor {
        artifact_type: manifest["artifactType"].as_str().map(str::to_owned),
        annotations,
        platform: None,
        ..Descriptor::new(&artifact.media_type, artifact.digest.clone(), artifact.size)
    })
}

/// Stores `sbom` and an OCI 1.1 artifact manifest (empty config, the SBOM as its one layer)
/// whose `subject` is `image`; returns how the layout's referrers index lists it.
fn put_sbom_artifact(
    store: &BlobStore,
    app: &str,
    sbom: &[u8],
    image: &Descriptor,
    source_date_epoch: u64,
) -> Result<Descriptor, OciError> {
    let empty = store.put(EMPTY_MEDIA_TYPE, b"{}")?;
    let mut layer = store.put(SBOM_ARTIFACT_TYPE, sbom)?;
    layer.annotations.insert(
        "org.opencontainers.image.title".to_owned(),
        json!(format!("{app}.cdx.json")),
    );
    let subject = Descriptor::new(MANIFEST_MEDIA_TYPE, image.digest.clone(), image.size);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": SBOM_ARTIFACT_TYPE,
        "config": empty.to_json(),
        "layers": [layer.to_json()],
        "subject": subject.to_json(),
        "annotations": {
            "org.opencontainers.image.created": castoff_archive::date::rfc3339(source_date_epoch),
        },
    });
    let artifact = store.put(MANIFEST_MEDIA_TYPE, &canonical(&manifest))?;
    Ok(referrer_descriptor(&artifact, &manifest).expect("the manifest names its subject"))
}

/// `<app>-<os>-<arch>.tar`, with `-<variant>` for 32-bit arm where the variant matters.
pub(crate) fn archive_name(app: &str, platform: &OciPlatform) -> String {
    match platform.variant {
        Some(variant) if platform.architecture == "arm" => {
            format!(
                "{app}-{}-{}-{variant}.tar",
                platform.os, platform.architecture
            )
        }
        _ => format!("{app}-{}-{}.tar", platform.os, platform.architecture),
    }
}

/// Each input with its platform, sorted by platform; refuses non-Linux targets and two
/// targets for one platform.
fn check_platforms(
    app: &str,
    inputs: Vec<ImageInput>,
) -> Result<Vec<(OciPlatform, ImageInput)>, OciError> {
    if inputs.is_empty() {
        return Err(OciError::NoPlatforms {
            app: app.to_owned(),
        });
    }
    let mut platforms = Vec::new();
    for input in inputs {
        let platform = input.target.oci.ok_or_else(|| OciError::NotLinux {
            app: app.to_owned(),
            target: input.target.triple.to_owned(),
        })?;
        platforms.push((platform, input));
    }
    platforms.sort_by_key(|(p, _)| (p.os, p.architecture, p.variant));
    for pair in platforms.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(OciError::DuplicatePlatform {
                app: app.to_owned(),
                platform: pair[0].0.to_string(),
                first: pair[0].1.target.triple.to_owned(),
                second: pair[1].1.target.triple.to_owned(),
            });
        }
    }
    Ok(platforms)
}

/// Every binary is there, is an executable for the image's machine, and — on `scratch` —
/// needs no dynamic loader.
fn check_binaries(app: &App, oci: &OciChannel, input: &ImageInput) -> Result<(), OciError> {
    let target = input.target;
    let platform = target.oci.expect("checked by check_platforms");
    let on_scratch = oci.base == BaseImage::Scratch;
    for bin in &app.bins {
        let Some((_, path)) = input.binaries.iter().find(|(name, _)| name == bin) else {
            return Err(OciError::MissingBinary {
                app: app.package.name.clone(),
                bin: bin.clone(),
                target: target.triple.to_owned(),
            });
        };
        let facts = elf_facts(path).map_err(OciError::io("read", path))?;
        match facts {
            None if on_scratch => {
                return Err(OciError::NotElf {
                    app: app.package.name.clone(),
                    bin: bin.clone(),
                    target: target.triple.to_owned(),
                    path: path.clone(),
                });
            }
            None => {}
            Some(facts) => {
                if let Some(expected) = ElfKind::of_oci_architecture(platform.architecture)
                    && facts.kind != expected
                {
                    return Err(OciError::WrongArchitecture {
                        app: app.package.name.clone(),
                        bin: bin.clone(),
                        target,
                        path: path.clone(),
                        found: facts.kind,
                        expected,
                    });
                }
                if let (true, Some(interpreter)) = (on_scratch, facts.interpreter) {
                    return Err(OciError::DynamicOnScratch {
                        app: app.package.name.clone(),
                        bin: bin.clone(),
                        target: target.triple.to_owned(),
                        path: path.clone(),
                        interpreter,
                        crt_static: app.build(target).crt_static,
                    });
                }
            }
        }
    }
    Ok(())
}

/// What the image needs to know about a binary before putting it on an image: its machine,
/// class and byte order (so an arm64 binary never lands in an amd64 image, nor a big-endian
/// ppc64 one in a ppc64le image) and whether it asks for a dynamic loader,
/// which `scratch` does not have. Only the headers are read (binaries can be large).
/// `Ok(None)` when the file is not ELF, or its headers cannot be read as ELF.
fn elf_facts(path: &Path) -> std::io::Result<Option<ElfFacts>> {
    let cache = object::ReadCache::new(fs::File::open(path)?);
    let Ok(Some(file)) = ElfFile::parse(&cache) else {
        return Ok(None);
    };
    let Ok(interpreter) = file.interpreter() else {
        return Ok(None);
    };
    Ok(Some(ElfFacts {
        kind: file.kind(),
        interpreter: interpreter.map(|interpreter| match interpreter {
            Interpreter::Path(path) => path,
            Interpreter::Unreadable(_) => "(unreadable)".to_owned(),
        }),
    }))
}

/// The facts of one ELF file that decide whether it fits an image.
#[derive(Debug)]
struct ElfFacts {
    /// Machine, class and byte order.
    kind: ElfKind,
    /// The requested program interpreter (`/lib64/ld-linux-x86-64.so.2`), if any.
    interpreter: Option<String>,
}

/// The entries castoff adds for one platform: all of them (to check that no path repeats), and
/// those of the files layer (everything but the binaries).
fn plan_layer(
    app: &App,
    input: &ImageInput,
    extra_entries: &[LayerEntry],
    on_scratch: bool,
) -> Result<(LayerPlan, LayerPlan), OciError> {
    let mut plan = LayerPlan::default();
    let mut files = LayerPlan::default();
    let duplicate = |(path, what): (String, String)| OciError::DuplicatePath {
        app: app.package.name.clone(),
        path,
        what,
    };
    let bin_dir = BIN_DIR.trim_start_matches('/');
    for bin in &app.bins {
        let path = input.binary(bin);
        plan.add(LayerEntry {
            path: format!("{bin_dir}/{bin}"),
            mode: 0o755,
            content: EntryContent::File(path.clone()),
            origin: format!("the binary `{bin}`"),
            owner: OwnerFields::Zero,
        })
        .map_err(duplicate)?;
    }
    if on_scratch {
        let fixed = [
            (
                "etc/passwd",
                0o644,
                EntryContent::Bytes(layer::PASSWD.into()),
            ),
            ("etc/group", 0o644, EntryContent::Bytes(layer::GROUP.into())),
            // World-writable with the sticky bit, like every /tmp.
            ("tmp", 0o1777, EntryContent::Directory),
        ];
        let fixed = fixed
            .into_iter()
            .map(|(path, mode, content)| (path, mode, content, OwnerFields::Zero));
        let homes = layer::HOMES.into_iter().map(|(path, mode, uid, gid)| {
            let owner = match (uid, gid) {
                (0, 0) => OwnerFields::Zero,
                (uid, gid) => OwnerFields::Numeric { uid, gid },
            };
            (path, mode, EntryContent::Directory, owner)
        });
        for (path, mode, content, owner) in fixed.chain(homes) {
            let entry = LayerEntry {
                path: path.to_owned(),
                mode,
                content,
                origin: format!("the scratch image's `/{path}`"),
                owner,
            };
            plan.add(entry.clone()).map_err(duplicate)?;
            files.add(entry).map_err(duplicate)?;
        }
    }
    for entry in extra_entries.iter().cloned() {
        plan.add(entry.clone()).map_err(duplicate)?;
        files.add(entry).map_err(duplicate)?;
    }
    Ok((plan, files))
}

/// How many paths a layer's history entry names before it only counts the rest.
const SUMMARY_PATHS: usize = 16;

/// The files of the layer, for its history entry: `/etc/group, /usr/local/bin/pinger`; past
/// [`SUMMARY_PATHS`] (a copied tree), `and N more`.
fn layer_summary(entries: &[LayerEntry]) -> String {
    let files: Vec<String> = entries
        .iter()
        .filter(|entry| {
            entry.content != EntryContent::Directory || entry.origin != layer::PARENT_ORIGIN
        })
        .map(|entry| format!("/{}", entry.path))
        .collect();
    if files.len() > SUMMARY_PATHS {
        let more = files.len() - SUMMARY_PATHS;
        return format!(
            "added {} and {more} more",
            files[..SUMMARY_PATHS].join(", ")
        );
    }
    format!("added {}", files.join(", "))
}

/// A directory being assembled under a temporary name: removed on drop unless committed.
#[derive(Debug)]
pub(crate) struct PartialDir {
    pub(crate) path: PathBuf,
    committed: bool,
}

impl PartialDir {
    pub(crate) fn new(path: PathBuf) -> Result<PartialDir, OciError> {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(OciError::io("remove the leftover", &path))?;
        }
        fs::create_dir_all(&path).map_err(OciError::io("create the directory", &path))?;
        Ok(PartialDir {
            path,
            committed: false,
        })
    }

    /// Replaces `target` with this directory.
    pub(crate) fn commit(mut self, target: &Path) -> Result<(), OciError> {
        if target.exists() {
            fs::remove_dir_all(target).map_err(OciError::io("remove the previous", target))?;
        }
        fs::rename(&self.path, target).map_err(OciError::io("rename into place", target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
