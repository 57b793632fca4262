//! The content-addressed blob store of an OCI image layout (`blobs/sha256/<hex>`); the
//! descriptors that point into it are castoff-archive's OCI vocabulary. Every blob is written to a temporary name while its digest
//! is computed, then renamed to its digest: a blob file that exists is always complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use castoff_archive::digest::HashingWriter;
use castoff_archive::oci::{Descriptor, Digest, sha256_hex};

use crate::error::OciError;

/// The `blobs/sha256` directory of one image layout being written.
#[derive(Debug)]
pub(crate) struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    temp_counter: AtomicU64,
}

impl BlobStore {
    /// Creates `root/blobs/sha256/`.
    pub(crate) fn create(root: &Path) -> Result<BlobStore, OciError> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(OciError::io("create the directory", &blobs))?;
        Ok(BlobStore {
            root: root.to_owned(),
            blobs,
            temp_counter: AtomicU64::new(0),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this `<hex>` lives.
    pub(crate) fn path_of_hex(&self, hex: &str) -> PathBuf {
        self.blobs.join(hex)
    }

    /// Stores bytes held in memory (configs, manifests, indexes) and describes them.
    pub(crate) fn put(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, OciError> {
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(OciError::io("write", writer.temp.clone()))?;
        let (digest, size) = writer.commit()?;
        debug_assert_eq!(digest, Digest::of(bytes));
        Ok(Descriptor::new(media_type, digest, size))
    }

    /// Copies a blob from another layout, checking that its bytes have the digest and size its
    /// descriptor promised (a base image layout is input: never trusted).
    pub(crate) fn copy_verified(
        &self,
        source: &Path,
        expected: &Descriptor,
    ) -> Result<Result<(), String>, OciError> {
        // A regular file of at most the descriptor's size, read no further than one byte past
        // it: a blob swapped for `/dev/zero`, a FIFO or a link is refused, not copied.
        let (input, _) = match castoff_archive::foreign::open_regular(source, expected.size) {
            Ok(opened) => opened,
            Err(error) => {
                return Ok(Err(format!("cannot read blob: {error}")));
            }
        };
        let mut writer = self.writer()?;
        io::copy(&mut input.take(expected.size + 1), &mut writer)
            .map_err(OciError::io("copy", source))?;
        let temp = writer.temp.clone();
        let (inner, digest, size) = writer.finish_hashing()?;
        drop(inner);
        let digest = Digest::from_sha256(&digest);
        if digest != expected.digest || size != expected.size {
            let _ = fs::remove_file(&temp);
            return Ok(Err(format!(
                "blob `{}` has digest {digest} and {size} bytes, but its descriptor says {} and {} bytes",
                source.display(),
                expected.digest,
                expected.size
            )));
        }
        let target = self.path_of_hex(expected.digest.hex());
        fs::rename(&temp, &target).map_err(OciError::io("rename into place", &target))?;
        Ok(Ok(()))
    }

    /// A writer to a temporary file in the store; [`BlobWriter::commit`] names it by digest.
    pub(crate) fn writer(&self) -> Result<BlobWriter, OciError> {
        let number = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .blobs
            .join(format!(".partial-{}-{number}", std::process::id()));
        let file = File::create(&temp).map_err(OciError::io("create", &temp))?;
        Ok(BlobWriter {
            inner: HashingWriter::new(BufWriter::new(file)),
            temp,
            blobs: self.blobs.clone(),
        })
    }
}

/// A blob being written: hashes what passes through, then is renamed to its digest.
#[derive(Debug)]
pub(crate) struct BlobWriter {
    inner: HashingWriter<BufWriter<File>>,
    temp: PathBuf,
    blobs: PathBuf,
}

impl BlobWriter {
    fn finish_hashing(self) -> Result<(File, [u8; 32], u64), OciError> {
        let temp = self.temp;
        let (buffered, digest, size) = self.inner.finish();
        let file = buffered.into_inner().map_err(|error| OciError::Io {
            action: "write",
            path: temp.clone(),
            source: error.into_error(),
        })?;
        Ok((file, digest, size))
    }

    /// Flushes, renames the file to `blobs/sha256/<hex>` and returns its digest and size.
    pub(crate) fn commit(self) -> Result<(Digest, u64), OciError> {
        let temp = self.temp.clone();
        let blobs = self.blobs.clone();
        let (file, digest, size) = self.finish_hashing()?;
        drop(file);
        let digest = Digest::from_sha256(&digest);
        let target = blobs.join(digest.hex());
        fs::rename(&temp, &target).map_err(OciError::io("rename into place", &target))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Largest JSON document (manifest, config, index, a layout's `index.json`) read from a
/// layout castoff did not write in this run: the distribution spec's manifest limit is 4 MiB,
/// and image configs are far smaller.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a whole small blob (manifest, config, index) of a layout and checks its digest: a
/// regular file of at most [`MAX_DOCUMENT_BYTES`] (castoff_archive::foreign).
pub(crate) fn read_verified(layout: &Path, digest: &str) -> Result<Vec<u8>, String> {
    let hex = sha256_hex(digest).ok_or_else(|| format!("`{digest}` is not a sha256 digest"))?;
    let path = layout.join("blobs").join("sha256").join(hex);
    let bytes = castoff_archive::foreign::read_regular(&path, MAX_DOCUMENT_BYTES)
        .map_err(|error| format!("cannot read blob `{}`: {error}", path.display()))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(format!(
            "blob `{}` has digest {actual}, not the {digest} it is named by",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let temp = temp_sibling(path);
    fs::write(&temp, bytes).map_err(OciError::io("write", &temp))?;
    fs::rename(&temp, path).map_err(OciError::io("rename into place", path))
}

/// `dir/.name.partial-<pid>` next to `path`.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}
