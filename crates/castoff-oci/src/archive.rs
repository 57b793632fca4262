//! The `docker load` archive of one platform's image: an OCI image layout holding just that
//! image, plus the legacy `manifest.json` that Docker's classic image store reads (Docker ≥ 25
//! `docker save` writes the same pair). One platform per archive: the classic store cannot load
//! a multi-platform index.
//!
//! The tar is deterministic like the layers: sorted entries, owner 0, `SOURCE_DATE_EPOCH`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use castoff_archive::digest::{HashingWriter, hex};
use serde_json::json;

use castoff_archive::oci::{Descriptor, INDEX_MEDIA_TYPE, LAYOUT_MARKER, REF_NAME_ANNOTATION};

use crate::blobs;
use crate::error::OciError;
use crate::json::canonical;
use castoff_archive::tar::{OwnerFields, TarWriter};

/// What goes into one archive.
#[derive(Debug)]
pub(crate) struct ArchiveInput<'a> {
    pub(crate) app: &'a str,
    /// The image layout the blobs are read from.
    pub(crate) layout: &'a Path,
    pub(crate) manifest: &'a Descriptor,
    pub(crate) config: &'a Descriptor,
    pub(crate) layers: &'a [Descriptor],
    /// `registry/repo:tag`, the name `docker load` gives the image.
    pub(crate) repo_tag: &'a str,
    /// The tag alone (`org.opencontainers.image.ref.name` of the archive's `index.json`).
    pub(crate) tag: &'a str,
    pub(crate) mtime: u64,
}

/// Writes the archive to `path` (through a temporary name); returns `(size, sha256 hex)`.
pub(crate) fn write_docker_archive(
    input: &ArchiveInput<'_>,
    path: &Path,
) -> Result<(u64, String), OciError> {
    let blob_path = |descriptor: &Descriptor| format!("blobs/sha256/{}", descriptor.digest.hex());
    let legacy = json!([{
        "Config": blob_path(input.config),
        "RepoTags": [input.repo_tag],
        "Layers": input.layers.iter().map(blob_path).collect::<Vec<_>>(),
    }]);
    let mut entry = input.manifest.clone();
    entry
        .annotations
        .insert("io.containerd.image.name".to_owned(), json!(input.repo_tag));
    entry
        .annotations
        .insert(REF_NAME_ANNOTATION.to_owned(), json!(input.tag));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [entry.to_json()],
    });

    // Blobs in name order, each once (a base layer could repeat).
    let mut blobs: Vec<&Descriptor> = input
        .layers
        .iter()
        .chain([input.config, input.manifest])
        .collect();
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);

    let temp = blobs::temp_sibling(path);
    let file = File::create(&temp).map_err(OciError::io("create", &temp))?;
    let mut tar = TarWriter::new(HashingWriter::new(BufWriter::new(file)), OwnerFields::Zero);
    let tar_error = |source| OciError::Tar {
        app: input.app.to_owned(),
        source,
    };
    tar.append_directory("blobs", 0o755, input.mtime)
        .map_err(tar_error)?;
    tar.append_directory("blobs/sha256", 0o755, input.mtime)
        .map_err(tar_error)?;
    for descriptor in blobs {
        let source: PathBuf = input
            .layout
            .join("blobs")
            .join("sha256")
            .join(descriptor.digest.hex());
        let file = File::open(&source).map_err(OciError::io("open", &source))?;
        tar.append_file(
            &blob_path(descriptor),
            0o644,
            input.mtime,
            descriptor.size,
            file,
        )
        .map_err(tar_error)?;
    }
    tar.append_bytes("index.json", 0o644, input.mtime, &canonical(&index))
        .map_err(tar_error)?;
    tar.append_bytes("manifest.json", 0o644, input.mtime, &canonical(&legacy))
        .map_err(tar_error)?;
    tar.append_bytes("oci-layout", 0o644, input.mtime, LAYOUT_MARKER)
        .map_err(tar_error)?;
    let hashing = tar.finish().map_err(OciError::io("write", &temp))?;
    let (mut buffered, digest, size) = hashing.finish();
    buffered.flush().map_err(OciError::io("write", &temp))?;
    drop(buffered);
    std::fs::rename(&temp, path).map_err(OciError::io("rename into place", path))?;
    Ok((size, hex(&digest)))
}
