//! Direct-download archives, one per app and target: `<app>-<version>-<target>/` holding the
//! binaries, the README, the license files and any generated files the caller adds
//! (`DistOptions::archive_extras`: castoff's own `completions/` and `man/man1/castoff.1`),
//! as `.tar.gz` on Unix and `.zip` on Windows.
//!
//! Reproducible like every other artifact: entries sorted, owner 0, every timestamp
//! `SOURCE_DATE_EPOCH`, gzip header without name or time (castoff-archive's writers, and
//! castoff-wheel's deterministic ZIP writer).

use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use castoff_archive::deflate::DeflateCache;
use castoff_archive::digest::{HashingWriter, hex};
use castoff_archive::tar::{OwnerFields, TarWriter, gzip_writer};
use castoff_plan::Target;
use castoff_plan::plan::App;
use castoff_plan::target::Os;
use castoff_wheel::EntryData as Contents;

/// An archive written into dist/.
#[derive(Debug)]
pub(crate) struct BuiltArchive {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// One file of an archive: path inside the top directory, mode, contents (a binary arrives
/// compressed once for every artifact of the `dist`).
struct Entry {
    path: String,
    mode: u32,
    contents: Contents,
}

/// What one archive is built from.
#[derive(Debug)]
pub(crate) struct ArchiveInput<'a> {
    /// The workspace root (license files found there too).
    pub workspace_root: &'a Path,
    pub app: &'a App,
    pub target: &'static Target,
    /// `(bin name, path)` of the app's binaries for `target`.
    pub binaries: &'a [(String, PathBuf)],
    /// Generated files: `(path in the archive, contents)`.
    pub extras: &'a [(String, Vec<u8>)],
    pub source_date_epoch: u64,
}

/// Writes `out_dir/<app>-<version>-<target>.{tar.gz,zip}`.
pub(crate) fn build_archive(
    input: &ArchiveInput<'_>,
    deflate: &DeflateCache,
    out_dir: &Path,
) -> anyhow::Result<BuiltArchive> {
    let ArchiveInput {
        workspace_root,
        app,
        target,
        binaries,
        extras,
        source_date_epoch,
    } = *input;
    let file_name = app.archive_file_name(target);
    let top = file_name
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".zip")
        .to_owned();
    let mut entries = Vec::new();
    for bin in &app.bins {
        let (_, path) = binaries
            .iter()
            .find(|(name, _)| name == bin)
            .with_context(|| format!("binary `{bin}` for {} was not built", target.triple))?;
        entries.push(Entry {
            path: target.executable_name(bin),
            mode: 0o755,
            contents: Contents::Deflated(
                deflate
                    .get(path, &|_| {})
                    .with_context(|| format!("could not read {}", path.display()))?,
            ),
        });
    }
    for (name, path) in documents(workspace_root, app) {
        entries.push(Entry {
            path: name,
            mode: 0o644,
            contents: Contents::Bytes(
                fs::read(&path).with_context(|| format!("could not read {}", path.display()))?,
            ),
        });
    }
    // Generated files the caller adds (castoff's own completions and man page).
    for (name, contents) in extras {
        entries.push(Entry {
            path: name.clone(),
            mode: 0o644,
            contents: Contents::Bytes(contents.clone()),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);

    fs::create_dir_all(out_dir)
        .with_context(|| format!("could not create {}", out_dir.display()))?;
    let path = out_dir.join(&file_name);
    let temp = out_dir.join(format!(".{file_name}.partial-{}", std::process::id()));
    let written = if target.os == Os::Windows {
        write_zip(&temp, &top, &entries, source_date_epoch, deflate.level())
    } else {
        write_tar_gz(&temp, &top, &entries, source_date_epoch, deflate.level())
    };
    let (size, sha256) = match written {
        Ok(done) => done,
        Err(error) => {
            let _ = fs::remove_file(&temp);
            return Err(error.context(format!("could not write {}", path.display())));
        }
    };
    fs::rename(&temp, &path).with_context(|| format!("could not write {}", path.display()))?;
    Ok(BuiltArchive { path, size, sha256 })
}

/// The README and license files that go next to the binaries, `(name in archive, path)`.
fn documents(workspace_root: &Path, app: &App) -> Vec<(String, PathBuf)> {
    let package = &app.package;
    let mut found = Vec::new();
    if let Some(readme) = &package.readme
        && let Some(name) = readme.file_name()
    {
        found.push((name.to_string_lossy().into_owned(), readme.clone()));
    }
    for license in package.license_files(workspace_root) {
        let name = license.file_name().map_or_else(
            || "LICENSE".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        // Two files of one name (a `license-file` elsewhere and a LICENSE here): the first.
        if !found.iter().any(|(known, _)| known == &name) {
            found.push((name, license));
        }
    }
    found
}

fn write_tar_gz(
    path: &Path,
    top: &str,
    entries: &[Entry],
    mtime: u64,
    level: u32,
) -> anyhow::Result<(u64, String)> {
    let file = fs::File::create(path)?;
    let hashing = HashingWriter::new(BufWriter::new(file));
    let mut tar = TarWriter::new(gzip_writer(hashing, level), OwnerFields::Zero);
    tar.append_directory(top, 0o755, mtime)?;
    for entry in entries {
        let name = format!("{top}/{}", entry.path);
        match &entry.contents {
            Contents::Bytes(bytes) => tar.append_bytes(&name, entry.mode, mtime, bytes)?,
            Contents::Deflated(binary) => tar.append_deflated(&name, entry.mode, mtime, binary)?,
        }
    }
    let gzip = tar.finish()?;
    let hashing = gzip.finish()?;
    let (mut buffered, digest, size) = hashing.finish();
    buffered.flush()?;
    Ok((size, hex(&digest)))
}

fn write_zip(
    path: &Path,
    top: &str,
    entries: &[Entry],
    mtime: u64,
    level: u32,
) -> anyhow::Result<(u64, String)> {
    let file = fs::File::create(path)?;
    let mut zip = castoff_archive::zip::ZipWriter::new(
        HashingWriter::new(BufWriter::new(file)),
        castoff_archive::zip::DosDateTime::from_unix_seconds(mtime),
        level,
    );
    for entry in entries {
        let name = format!("{top}/{}", entry.path);
        match &entry.contents {
            Contents::Bytes(bytes) => zip.add(&name, entry.mode, bytes)?,
            Contents::Deflated(binary) => zip.add_deflated(&name, entry.mode, binary)?,
        }
    }
    let (mut buffered, digest, size) = zip.finish()?.finish();
    buffered.flush()?;
    Ok((size, hex(&digest)))
}
