//! The layers castoff adds to an image: the app's binaries under `/usr/local/bin`, the
//! minimum a non-root service needs when the base is `scratch` (`/etc/passwd`, `/etc/group`,
//! the homes they name, `/tmp`), the configured extra files, and the optional system data of
//! `userland.rs`, with every parent directory listed explicitly.
//!
//! Entries are sorted by path, owned by 0:0 (a home, a volume or a file with an `owner` by theirs)
//! with empty owner names, stamped with
//! `SOURCE_DATE_EPOCH`, in plain ustar (no PAX records, no xattrs), so the uncompressed bytes —
//! the `diff_id` — depend on nothing but the inputs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use castoff_archive::deflate::{Deflated, GzipWriter};
use castoff_archive::digest::HashingWriter;
use castoff_archive::oci::Digest;
use castoff_archive::tar::{self, EntryHeader, EntryKind};
use castoff_plan::plan::LayerCompression;
use sha2::{Digest as _, Sha256};

use crate::blobs::{BlobStore, BlobWriter};
use crate::error::OciError;
use castoff_archive::tar::{OwnerFields, TarWriter};

/// Where binaries go in the image.
pub const BIN_DIR: &str = "/usr/local/bin";

/// `/etc/passwd` of a scratch image: root and distroless' `nonroot` (65532), no login shells.
/// Each home it names is in [`HOMES`].
pub(crate) const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                                 nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
/// The homes [`PASSWD`] names, `(path, mode, uid, gid)`: owned by their users, root's private
/// as on every distribution, nonroot's 0755 as the user's own directory.
pub(crate) const HOMES: [(&str, u32, u32, u32); 2] =
    [("root", 0o700, 0, 0), ("home/nonroot", 0o755, 65532, 65532)];
/// `/etc/group` of a scratch image.
pub(crate) const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

/// The origin of the directories [`LayerPlan::entries`] adds.
pub(crate) const PARENT_ORIGIN: &str = "a parent directory";

/// What one layer entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryContent {
    Directory,
    Bytes(Vec<u8>),
    /// A file on disk, streamed into the layer; its size is read when it is appended.
    File(PathBuf),
}

/// One entry, before sorting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerEntry {
    /// Relative path in the image, no leading or trailing `/`.
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) content: EntryContent,
    /// What put it there, for the duplicate-path error.
    pub(crate) origin: String,
    /// `Zero` but for a home directory, which its user owns.
    pub(crate) owner: OwnerFields,
}

/// The entries of a layer, keyed (and therefore sorted) by path, with parents added.
#[derive(Debug, Default)]
pub(crate) struct LayerPlan {
    entries: BTreeMap<String, LayerEntry>,
}

impl LayerPlan {
    /// Adds a file entry (its parent directories are added at [`LayerPlan::entries`]). A
    /// second entry at the same path is refused: tar layers must not repeat paths.
    pub(crate) fn add(&mut self, entry: LayerEntry) -> Result<(), (String, String)> {
        if let Some(existing) = self.entries.get(&entry.path) {
            // Two directory entries at one path are the same directory.
            if existing.content == EntryContent::Directory
                && entry.content == EntryContent::Directory
            {
                return Ok(());
            }
            return Err((
                entry.path.clone(),
                format!("{} and {}", existing.origin, entry.origin),
            ));
        }
        self.entries.insert(entry.path.clone(), entry);
        Ok(())
    }

    /// Every entry in path order, parents (mode 0755) before their children. Paths are
    /// compared without a trailing `/`, so `etc` sorts before `etc/group`.
    pub(crate) fn entries(&self) -> Result<Vec<LayerEntry>, (String, String)> {
        let mut all = self.entries.clone();
        for path in self.entries.keys() {
            let mut parent = path.as_str();
            while let Some((dir, _)) = parent.rsplit_once('/') {
                match all.get(dir) {
                    Some(existing) if existing.content != EntryContent::Directory => {
                        return Err((
                            dir.to_owned(),
                            format!("{} and the parent directory of `/{path}`", existing.origin),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        all.insert(
                            dir.to_owned(),
                            LayerEntry {
                                path: dir.to_owned(),
                                mode: 0o755,
                                content: EntryContent::Directory,
                                origin: PARENT_ORIGIN.to_owned(),
                                owner: OwnerFields::Zero,
                            },
                        );
                    }
                }
                parent = dir;
            }
        }
        Ok(all.into_values().collect())
    }
}

/// A layer written to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrittenLayer {
    /// `sha256:` of the gzip bytes (the blob).
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// `sha256:` of the uncompressed tar.
    pub(crate) diff_id: String,
}

/// How a layer is compressed: the format and castoff's `compression-level`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compression {
    pub(crate) format: LayerCompression,
    /// 0-9; for zstd the same number is zstd's level (0 is zstd's default, 3).
    pub(crate) level: u32,
}

/// The compressing writer between a layer's tar stream and its blob.
enum Compressor {
    Gzip(GzipWriter<BlobWriter>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter>),
}

impl Compressor {
    fn new(store: &BlobStore, compression: Compression, app: &str) -> Result<Compressor, OciError> {
        let blob = store.writer()?;
        Ok(match compression.format {
            LayerCompression::Gzip => Compressor::Gzip(GzipWriter::new(blob, compression.level)),
            LayerCompression::Zstd => {
                // One thread and fixed parameters: the same bytes on every machine.
                let mut encoder = zstd::stream::write::Encoder::new(blob, compression.level as i32)
                    .map_err(write_error(app))?;
                encoder.include_checksum(true).map_err(write_error(app))?;
                Compressor::Zstd(encoder)
            }
        })
    }

    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Compressor::Gzip(gzip) => gzip.finish(),
            Compressor::Zstd(zstd) => zstd.finish(),
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(gzip) => gzip.write(buf),
            Compressor::Zstd(zstd) => zstd.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(gzip) => gzip.flush(),
            Compressor::Zstd(zstd) => zstd.flush(),
        }
    }
}

/// Writes the entries as a compressed tar blob, hashing the tar (diff_id) and the compressed
/// stream (digest) while the bytes are written: nothing is read back.
pub(crate) fn write_layer(
    app: &str,
    entries: &[LayerEntry],
    mtime: u64,
    compression: Compression,
    store: &BlobStore,
) -> Result<WrittenLayer, OciError> {
    let compressor = Compressor::new(store, compression, app)?;
    let mut tar = TarWriter::new(HashingWriter::new(compressor), OwnerFields::Zero);
    let tar_error = |source| OciError::Tar {
        app: app.to_owned(),
        source,
    };
    for entry in entries {
        match &entry.content {
            EntryContent::Directory => tar
                .append_directory_owned_by(&entry.path, entry.mode, mtime, entry.owner)
                .map_err(tar_error)?,
            EntryContent::Bytes(bytes) => tar
                .append_bytes(&entry.path, entry.mode, mtime, bytes)
                .map_err(tar_error)?,
            EntryContent::File(source) => {
                // Only extra files come here, checked and counted against the size limit.
                let (file, size) =
                    castoff_archive::foreign::open_regular(source, crate::files::MAX_TOTAL_BYTES)
                        .map_err(OciError::io("open", source))?;
                let previous = tar.set_owner(entry.owner);
                tar.append_file(&entry.path, entry.mode, mtime, size, file)
                    .map_err(tar_error)?;
                tar.set_owner(previous);
            }
        }
    }
    let hashing = tar.finish().map_err(write_error(app))?;
    let (compressor, diff_id, _) = hashing.finish();
    commit_layer(app, compressor, diff_id)
}

fn write_error(app: &str) -> impl Fn(io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        action: "write the layer of",
        path: PathBuf::from(app),
        source,
    }
}

/// Ends the compressed stream and stores the blob under its digest.
fn commit_layer(
    app: &str,
    compressor: Compressor,
    diff_id: [u8; 32],
) -> Result<WrittenLayer, OciError> {
    let mut blob = compressor.finish().map_err(write_error(app))?;
    blob.flush().map_err(write_error(app))?;
    let (digest, size) = blob.commit()?;
    Ok(WrittenLayer {
        digest,
        size,
        diff_id: Digest::from_sha256(&diff_id).to_string(),
    })
}

/// The uncompressed bytes of a binary's layer before the binary itself: the parent
/// directories of [`BIN_DIR`] and the binary's header. `size` is the binary's size, `mtime`
/// `SOURCE_DATE_EPOCH`. Register it with the `dist`'s compression cache
/// ([`castoff_archive::deflate::DeflateCache::want_prefix`]) before the binary is compressed,
/// and the layer's diff_id is known without reading the binary again.
pub fn binary_layer_prefix(bin: &str, size: u64, mtime: u64) -> Result<Vec<u8>, tar::TarError> {
    let mut prefix = Vec::with_capacity(4 * 512);
    let bin_dir = BIN_DIR.trim_start_matches('/');
    let mut parent = String::new();
    for component in bin_dir.split('/') {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(component);
        prefix.extend_from_slice(&tar::encode_header(&EntryHeader {
            path: &parent,
            mode: 0o755,
            mtime,
            size: 0,
            kind: EntryKind::Directory,
            owner: OwnerFields::Zero,
        })?);
    }
    prefix.extend_from_slice(&tar::encode_header(&EntryHeader {
        path: &format!("{bin_dir}/{bin}"),
        mode: 0o755,
        mtime,
        size,
        kind: EntryKind::File,
        owner: OwnerFields::Zero,
    })?);
    Ok(prefix)
}

/// Writes the layer holding one binary at `/usr/local/bin/<bin>`. With gzip, the binary's
/// compressed stream is spliced between the compressed headers and the end of the archive, and
/// the diff_id comes from the digest computed while the binary was compressed (when its prefix
/// was registered); otherwise the binary is read once more, and must still be what was
/// compressed. With zstd the binary is read and compressed again (the tar is the same, so is
/// the diff_id).
pub(crate) fn write_binary_layer(
    app: &str,
    bin: &str,
    binary: &Deflated,
    mtime: u64,
    compression: Compression,
    store: &BlobStore,
) -> Result<WrittenLayer, OciError> {
    let tar_error = |source| OciError::Tar {
        app: app.to_owned(),
        source,
    };
    let prefix = binary_layer_prefix(bin, binary.size(), mtime).map_err(tar_error)?;
    let mut suffix = tar::padding(binary.size()).to_vec();
    suffix.extend_from_slice(&tar::END_OF_ARCHIVE);
    let mut compressor = Compressor::new(store, compression, app)?;
    compressor.write_all(&prefix).map_err(write_error(app))?;
    let mut diff_id = match (&mut compressor, binary.hasher_after(&prefix)) {
        (Compressor::Gzip(gzip), Some(state)) => {
            gzip.splice(binary).map_err(write_error(app))?;
            state
        }
        (Compressor::Gzip(gzip), None) => {
            let state = copy_binary(&prefix, binary, &mut io::sink())?;
            gzip.splice(binary).map_err(write_error(app))?;
            state
        }
        (zstd @ Compressor::Zstd(_), _) => copy_binary(&prefix, binary, zstd)?,
    };
    diff_id.update(&suffix);
    compressor.write_all(&suffix).map_err(write_error(app))?;
    commit_layer(app, compressor, diff_id.finalize().into())
}

/// Copies the binary to `out` and returns the SHA-256 of `prefix` + the binary; refuses a
/// binary that changed since it was compressed.
fn copy_binary(prefix: &[u8], binary: &Deflated, out: &mut impl Write) -> Result<Sha256, OciError> {
    let source = binary.source();
    let file = File::open(source).map_err(OciError::io("open", source))?;
    let mut with_prefix = Sha256::new_with_prefix(prefix);
    let mut plain = Sha256::new();
    let mut reader = io::BufReader::with_capacity(1 << 16, file);
    loop {
        let chunk = io::BufRead::fill_buf(&mut reader).map_err(OciError::io("read", source))?;
        if chunk.is_empty() {
            break;
        }
        with_prefix.update(chunk);
        plain.update(chunk);
        out.write_all(chunk)
            .map_err(OciError::io("write", source))?;
        let len = chunk.len();
        io::BufRead::consume(&mut reader, len);
    }
    if <[u8; 32]>::from(plain.finalize()) != binary.sha256() {
        return Err(OciError::io("read", source)(io::Error::other(
            "the file changed while the image was built; build again",
        )));
    }
    Ok(with_prefix)
}
