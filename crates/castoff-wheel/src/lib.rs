//! Python wheels that carry a Rust binary: platform tags from the binary's headers,
//! METADATA, WHEEL, RECORD and a small module that finds the binary.
//!
//! [`build_wheel`] = [`wheel_contents`] (read the binaries, decide the tags, render every file
//! in memory) + [`write_wheel`] (a deterministic ZIP, written to a temporary file and renamed
//! into place). A dry run calls only the first and lists [`WheelContents::entries`].
//!
//! castoff-wheel knows nothing about the network, never spawns a process and never prints.

pub mod error;
pub mod filename;
pub mod metadata;
pub mod module;
pub mod platform;
mod policy;
pub mod sdist;

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use castoff_archive::deflate::{DeflateCache, Deflated};
use castoff_archive::digest::{HashingWriter, hex};
use castoff_archive::zip;
use castoff_plan::plan::PythonChannel;
use castoff_plan::{App, Target};

pub use error::WheelError;
pub use filename::WheelFileName;
pub use metadata::CoreMetadata;
pub use platform::{BinaryFacts, BinaryPlatform};

/// The Python and ABI tags of a wheel holding only binaries: any Python 3, no ABI.
pub const PYTHON_ABI_TAG: &str = "py3-none";

/// What one wheel is built from.
#[derive(Debug, Clone)]
pub struct WheelInput<'a> {
    /// The workspace root (license files found there too).
    pub workspace_root: &'a Path,
    pub app: &'a App,
    /// The app's Python channel.
    pub python: &'a PythonChannel,
    pub target: &'static Target,
    /// (binary name without suffix, path of the compiled file) for every bin of the app.
    pub binaries: Vec<(String, PathBuf)>,
    /// SOURCE_DATE_EPOCH (seconds); zip timestamps are clamped to >= 1980-01-01.
    pub source_date_epoch: u64,
    /// SBOM documents, `(file name, contents)`, stored as `.dist-info/sboms/<file name>`
    /// (PEP 770), e.g. `("greeter.cyclonedx.json", …)`.
    pub sboms: Vec<(String, Vec<u8>)>,
    /// Where the binaries are compressed (once per `dist`, shared with the other builders);
    /// its level is every entry's deflate level.
    pub deflate: &'a DeflateCache,
}

/// A wheel written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltWheel {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Expanded platform tags (`manylinux2014_x86_64`, `manylinux_2_17_x86_64`, …).
    pub tags: Vec<String>,
    /// Things worth telling the user that do not stop the build (e.g. debug info present).
    pub warnings: Vec<String>,
}

/// One file in the wheel.
#[derive(Debug, Clone)]
pub struct WheelEntry {
    /// Path inside the wheel, `/`-separated.
    pub path: String,
    /// Unix permission bits: `0o755` for binaries, `0o644` for everything else.
    pub mode: u32,
    pub contents: EntryData,
}

/// Where an entry's bytes are.
#[derive(Debug, Clone)]
pub enum EntryData {
    /// Rendered text (metadata, the Python module, licenses, SBOMs).
    Bytes(Vec<u8>),
    /// A binary, compressed once for every artifact of the `dist`.
    Deflated(Arc<Deflated>),
}

impl EntryData {
    /// The bytes of a rendered entry; `None` for a binary (never loaded into memory).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            EntryData::Bytes(bytes) => Some(bytes),
            EntryData::Deflated(_) => None,
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            EntryData::Bytes(bytes) => bytes.len() as u64,
            EntryData::Deflated(deflated) => deflated.size(),
        }
    }

    /// SHA-256 of the contents.
    pub fn sha256(&self) -> [u8; 32] {
        match self {
            EntryData::Bytes(bytes) => castoff_archive::digest::sha256(bytes),
            EntryData::Deflated(deflated) => deflated.sha256(),
        }
    }
}

/// Everything a wheel holds, rendered but not yet written: entries in archive order (sorted,
/// `.dist-info` last, `RECORD` at the very end).
#[derive(Debug, Clone)]
pub struct WheelContents {
    pub file_name: WheelFileName,
    pub metadata: CoreMetadata,
    pub entries: Vec<WheelEntry>,
    pub warnings: Vec<String>,
}

impl WheelContents {
    /// The contents of the rendered (not binary) entry at `path`, if the wheel has one.
    pub fn entry(&self, path: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|entry| entry.path == path)
            .and_then(|entry| entry.contents.bytes())
    }
}

/// Builds the wheel of `input` into `out_dir` (which must exist). Nothing appears under the
/// final file name unless the whole wheel was written.
pub fn build_wheel(input: &WheelInput<'_>, out_dir: &Path) -> Result<BuiltWheel, WheelError> {
    let contents = wheel_contents(input)?;
    write_wheel(
        &contents,
        out_dir,
        input.source_date_epoch,
        input.deflate.level(),
    )
}

/// Reads the binaries, decides the platform tags and renders every file of the wheel.
pub fn wheel_contents(input: &WheelInput<'_>) -> Result<WheelContents, WheelError> {
    let app = input.app;
    let package = &app.package;
    let python = input.python;
    let target = input.target;

    // Exactly the app's binaries, in the app's order (the first is what `python -m` runs).
    for (bin, _) in &input.binaries {
        if !app.bins.contains(bin) {
            return Err(WheelError::UnexpectedBinary {
                package: package.name.clone(),
                bin: bin.clone(),
                known: app.bins.join(", "),
            });
        }
    }
    let mut binaries = Vec::with_capacity(app.bins.len());
    let mut warnings = Vec::new();
    let mut platforms = Vec::with_capacity(app.bins.len());
    for bin in &app.bins {
        let Some((_, path)) = input.binaries.iter().find(|(name, _)| name == bin) else {
            return Err(WheelError::MissingBinary {
                package: package.name.clone(),
                bin: bin.clone(),
            });
        };
        let read_error = |source| WheelError::Read {
            path: path.clone(),
            source,
            hint: format!(
                "build it first: cargo build --release --target {} --bin {bin}",
                target.triple
            ),
        };
        // Only the headers are read: memory stays flat whatever the size.
        let file = fs::File::open(path).map_err(read_error)?;
        let facts = platform::inspect_file(&file, path, target)?;
        drop(file);
        let bytes = input.deflate.get(path, &|_| {}).map_err(read_error)?;
        if facts.has_debug_info {
            warnings.push(format!(
                "{} carries debug info (.debug_info), which makes the wheel larger; castoff never strips, \
                 set `strip = \"debuginfo\"` (or `debug = false`) in the profile it is built with (`profile`, default `release`) to leave it out",
                path.display()
            ));
        }
        platforms.push(facts.platform);
        binaries.push((bin.clone(), target.executable_name(bin), bytes));
    }
    let static_tags = if python.glibc_and_musl_arches.contains(&target.python_arch) {
        platform::StaticLinuxTags::OwnLibc
    } else {
        platform::StaticLinuxTags::BothLibcs
    };
    let platform_tags = platform::platform_tags(&platforms, target, static_tags);

    let (python_tag, abi_tag) = PYTHON_ABI_TAG
        .split_once('-')
        .expect("PYTHON_ABI_TAG is `python-abi`");
    let file_name = WheelFileName {
        distribution: castoff_plan::names::wheel_distribution_name(&python.name),
        version: python.version.clone(),
        build: None,
        python_tag: python_tag.to_owned(),
        abi_tag: abi_tag.to_owned(),
        platform_tags,
    };
    let stem = file_name.stem();
    let (metadata, license_files) = CoreMetadata::from_app(input.workspace_root, app, python)?;

    let finders: Vec<(String, String)> = binaries
        .iter()
        .map(|(bin, file_name, _)| (bin.clone(), file_name.clone()))
        .collect();
    let mut payload = Vec::new();
    for (_, file_name, bytes) in binaries {
        payload.push(WheelEntry {
            path: format!("{stem}.data/scripts/{file_name}"),
            // Installers take the executable bit from the Unix mode stored in the archive.
            mode: 0o755,
            contents: EntryData::Deflated(bytes),
        });
    }
    let module = &python.module;
    let text_entry = |path: String, text: String| WheelEntry {
        path,
        mode: 0o644,
        contents: EntryData::Bytes(text.into_bytes()),
    };
    payload.push(text_entry(
        format!("{module}/__init__.py"),
        module::init_py(&python.name, &python.version, &finders),
    ));
    payload.push(text_entry(
        format!("{module}/__main__.py"),
        module::main_py(module, &app.bins[0]),
    ));
    payload.push(text_entry(format!("{module}/py.typed"), String::new()));
    payload.sort_by(|a, b| a.path.cmp(&b.path));

    let dist_info = format!("{stem}.dist-info");
    let mut dist_info_entries = vec![
        text_entry(format!("{dist_info}/METADATA"), metadata.render()),
        text_entry(
            format!("{dist_info}/WHEEL"),
            metadata::render_wheel_file(&file_name.tags()),
        ),
    ];
    for license in license_files {
        dist_info_entries.push(WheelEntry {
            path: format!("{dist_info}/licenses/{}", license.path),
            mode: 0o644,
            contents: EntryData::Bytes(license.contents),
        });
    }
    for (file_name, contents) in &input.sboms {
        if file_name.is_empty() || file_name.contains(['/', '\\']) || file_name.starts_with('.') {
            return Err(WheelError::SbomFileName {
                package: package.name.clone(),
                file_name: file_name.clone(),
            });
        }
        dist_info_entries.push(WheelEntry {
            path: format!("{dist_info}/sboms/{file_name}"),
            mode: 0o644,
            contents: EntryData::Bytes(contents.clone()),
        });
    }
    dist_info_entries.sort_by(|a, b| a.path.cmp(&b.path));

    let mut entries = payload;
    entries.extend(dist_info_entries);
    let record_path = format!("{dist_info}/RECORD");
    let mut record = String::new();
    for entry in &entries {
        record.push_str(&metadata::record_line_for(
            &entry.path,
            &entry.contents.sha256(),
            entry.contents.size(),
        ));
    }
    record.push_str(&format!("{record_path},,\n"));
    entries.push(text_entry(record_path, record));

    Ok(WheelContents {
        file_name,
        metadata,
        entries,
        warnings,
    })
}

/// Writes `contents` as `out_dir/{file name}`: first to a temporary file in `out_dir`, then
/// renamed, so a failure leaves no partial wheel under the final name.
pub fn write_wheel(
    contents: &WheelContents,
    out_dir: &Path,
    source_date_epoch: u64,
    level: u32,
) -> Result<BuiltWheel, WheelError> {
    let file_name = contents.file_name.to_string();
    let final_path = out_dir.join(&file_name);
    let temporary_path = out_dir.join(format!(".{file_name}.{}.partial", std::process::id()));
    let write_error = |source| WheelError::Write {
        path: temporary_path.clone(),
        source,
    };
    let written = (|| {
        let file = fs::File::create(&temporary_path)?;
        let mut zip = zip::ZipWriter::new(
            HashingWriter::new(BufWriter::new(file)),
            zip::DosDateTime::from_unix_seconds(source_date_epoch),
            level,
        );
        for entry in &contents.entries {
            match &entry.contents {
                EntryData::Bytes(bytes) => zip.add(&entry.path, entry.mode, bytes)?,
                EntryData::Deflated(binary) => zip.add_deflated(&entry.path, entry.mode, binary)?,
            }
        }
        let (buffered, digest, size) = zip.finish()?.finish();
        // Flushed, not fsynced (like every other artifact): the rename below is what keeps a
        // partial wheel from its final name, and `publish` re-verifies every digest.
        buffered.into_inner().map_err(|error| error.into_error())?;
        Ok((digest, size))
    })();
    let (digest, size) = match written {
        Ok(done) => done,
        Err(source) => {
            let _ = fs::remove_file(&temporary_path);
            return Err(write_error(source));
        }
    };
    if let Err(source) = fs::rename(&temporary_path, &final_path) {
        let _ = fs::remove_file(&temporary_path);
        return Err(WheelError::Write {
            path: final_path,
            source,
        });
    }
    Ok(BuiltWheel {
        path: final_path,
        file_name,
        size,
        sha256: hex(&digest),
        tags: contents.file_name.platform_tags.clone(),
        warnings: contents.warnings.clone(),
    })
}
