//! A package's files, in `npm pack`'s order and with its modes, written either as the tarball
//! npm would publish (`package/` prefix, npm's mtime, owner 0, deterministic gzip, digests
//! computed while the bytes flow) or as a plain directory (for `npm pack` comparisons and dry
//! runs). One list of files, two sinks, so both always hold the same thing.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use std::sync::Arc;

use castoff_archive::NPM_EPOCH;
use castoff_archive::deflate::Deflated;
use castoff_archive::digest::{HashingWriter, hex};
use castoff_archive::tar::{OwnerFields, TarWriter, gzip_writer};
use sha1::Sha1;
use sha2::{Digest as _, Sha512};

use crate::NpmError;
use crate::packlist;

/// Mode of ordinary files: what npm gives a 0644 source (`(mode | 0o600) & !0o022`).
pub const FILE_MODE: u32 = 0o644;
/// Mode of executables: the native binary (npm never fixes it at install, since it is not a
/// `bin` entry) and the JS launchers.
pub const EXECUTABLE_MODE: u32 = 0o755;

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// Generated text (package.json, launcher JS, README).
    Bytes(Vec<u8>),
    /// A file on disk (the binary, LICENSE), streamed; `size` as seen when the package was
    /// planned (a change is detected while archiving).
    Path { path: PathBuf, size: u64 },
    /// A binary compressed once for every artifact of the `dist`: spliced into the tarball.
    Deflated(Arc<Deflated>),
}

/// One file of a package.
#[derive(Debug, Clone)]
pub struct PackageFile {
    /// Path inside the package, `/`-separated, without the tarball's `package/` prefix.
    pub path: String,
    pub mode: u32,
    pub source: FileSource,
}

/// Everything an npm package holds, ready to be written.
#[derive(Debug, Clone)]
pub struct PackageContents {
    pub name: String,
    pub version: String,
    /// The text of `package.json` (also among `files`).
    pub package_json: String,
    /// In `npm pack`'s order.
    pub files: Vec<PackageFile>,
}

/// A package written as a tarball, with the digests registries and the manifest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPackage {
    pub name: String,
    pub version: String,
    /// The `.tgz`.
    pub path: PathBuf,
    /// `acme-greeter-0.3.1.tgz`, as `npm pack` names it.
    pub file_name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the tarball (dist/manifest.json, SHA256SUMS).
    pub sha256: String,
    /// `dist.integrity`: `sha512-` + base64 SHA-512 of the tarball.
    pub integrity: String,
    /// `dist.shasum`: lower-case hex SHA-1 of the tarball.
    pub shasum: String,
    pub package_json: String,
}

impl PackageContents {
    /// Builds the contents from files in any order: sorts them as npm-packlist does.
    pub(crate) fn new(
        name: String,
        version: String,
        package_json: String,
        mut files: Vec<PackageFile>,
    ) -> Self {
        files.sort_by(|a, b| packlist::compare(&a.path, &b.path));
        PackageContents {
            name,
            version,
            package_json,
            files,
        }
    }

    /// The tarball's file name as `npm pack` writes it: `@acme/greeter` 0.3.1 →
    /// `acme-greeter-0.3.1.tgz`.
    pub fn file_name(&self) -> String {
        tarball_file_name(&self.name, &self.version)
    }

    /// Writes `<out_dir>/<file_name>` through a temporary file renamed into place, so a reader
    /// never sees half a tarball. `level` is the gzip level of what is not spliced in.
    pub fn write_tarball(&self, out_dir: &Path, level: u32) -> Result<BuiltPackage, NpmError> {
        let file_name = self.file_name();
        let path = out_dir.join(&file_name);
        let temporary = out_dir.join(format!(".{file_name}.{}.partial", std::process::id()));
        let write_error = |path: &Path, source: io::Error| NpmError::Write {
            name: self.name.clone(),
            path: path.to_owned(),
            source,
        };
        fs::create_dir_all(out_dir).map_err(|source| write_error(out_dir, source))?;
        let result = self
            .write_tarball_to(&temporary, level)
            .and_then(|digests| {
                fs::rename(&temporary, &path).map_err(|source| write_error(&path, source))?;
                Ok(digests)
            });
        let digests = match result {
            Ok(digests) => digests,
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                return Err(error);
            }
        };
        Ok(BuiltPackage {
            name: self.name.clone(),
            version: self.version.clone(),
            path,
            file_name,
            size: digests.size,
            sha256: digests.sha256,
            integrity: digests.integrity,
            shasum: digests.shasum,
            package_json: self.package_json.clone(),
        })
    }

    fn write_tarball_to(&self, temporary: &Path, level: u32) -> Result<Digests, NpmError> {
        let write_error = |source: io::Error| NpmError::Write {
            name: self.name.clone(),
            path: temporary.to_owned(),
            source,
        };
        let file = File::create(temporary).map_err(write_error)?;
        let npm_digests = NpmDigestWriter::new(BufWriter::new(file));
        let mut tar = TarWriter::new(
            gzip_writer(HashingWriter::new(npm_digests), level),
            OwnerFields::Empty,
        );
        for file in &self.files {
            let entry = format!("package/{}", file.path);
            let tar_error = |source| NpmError::Tar {
                name: self.name.clone(),
                source,
            };
            match &file.source {
                FileSource::Bytes(bytes) => tar
                    .append_bytes(&entry, file.mode, NPM_EPOCH, bytes)
                    .map_err(tar_error)?,
                FileSource::Path { path, size } => {
                    let reader = File::open(path).map_err(|source| NpmError::Read {
                        name: self.name.clone(),
                        path: path.clone(),
                        source,
                        hint: "check that the file exists and is readable",
                    })?;
                    tar.append_file(&entry, file.mode, NPM_EPOCH, *size, reader)
                        .map_err(tar_error)?;
                }
                FileSource::Deflated(binary) => tar
                    .append_deflated(&entry, file.mode, NPM_EPOCH, binary)
                    .map_err(tar_error)?,
            }
        }
        let gzip = tar.finish().map_err(write_error)?;
        let hashing = gzip.finish().map_err(write_error)?;
        let (npm_digests, sha256, size) = hashing.finish();
        let (buffered, sha512, sha1) = npm_digests.finish();
        // Flushed, not fsynced: the tarball is renamed into place, so an interrupted dist never
        // leaves half of one, and `publish` re-verifies every digest before uploading.
        buffered
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        Ok(Digests {
            size,
            sha256: hex(&sha256),
            integrity: format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(sha512)
            ),
            shasum: hex(&sha1),
        })
    }

    /// Writes the files into `dir` (created if needed) with their modes: the package directory
    /// `npm pack` would turn into the same tarball.
    pub fn write_directory(&self, dir: &Path) -> Result<(), NpmError> {
        use std::os::unix::fs::PermissionsExt as _;
        let write_error = |path: &Path, source: io::Error| NpmError::Write {
            name: self.name.clone(),
            path: path.to_owned(),
            source,
        };
        for file in &self.files {
            let target = dir.join(&file.path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|source| write_error(parent, source))?;
            }
            match &file.source {
                FileSource::Bytes(bytes) => fs::write(&target, bytes),
                FileSource::Path { path, .. } => fs::copy(path, &target).map(drop),
                FileSource::Deflated(binary) => fs::copy(binary.source(), &target).map(drop),
            }
            .map_err(|source| write_error(&target, source))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))
                .map_err(|source| write_error(&target, source))?;
        }
        Ok(())
    }
}

/// `npm pack`'s file name: the name without `@`, `/` replaced by `-`, then `-<version>.tgz`.
pub fn tarball_file_name(name: &str, version: &str) -> String {
    let flat = name.trim_start_matches('@').replace('/', "-");
    format!("{flat}-{version}.tgz")
}

struct Digests {
    size: u64,
    sha256: String,
    integrity: String,
    shasum: String,
}

/// Computes the two digests npm's registry checks (`dist.integrity`, `dist.shasum`) over the
/// bytes as they are written.
struct NpmDigestWriter<W> {
    inner: W,
    sha512: Sha512,
    sha1: Sha1,
}

impl<W: Write> NpmDigestWriter<W> {
    fn new(inner: W) -> Self {
        NpmDigestWriter {
            inner,
            sha512: Sha512::new(),
            sha1: Sha1::new(),
        }
    }

    fn finish(self) -> (W, [u8; 64], [u8; 20]) {
        (
            self.inner,
            self.sha512.finalize().into(),
            self.sha1.finalize().into(),
        )
    }
}

impl<W: Write> Write for NpmDigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.sha512.update(&buf[..written]);
        self.sha1.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            tarball_file_name("@acme/greeter", "0.3.1"),
            "acme-greeter-0.3.1.tgz"
        );
        assert_eq!(
            tarball_file_name("greeter-linux-x64-gnu", "2.0.0-rc.1"),
            "greeter-linux-x64-gnu-2.0.0-rc.1.tgz"
        );
    }
}
