//! The source distribution of an app: `<name>-<version>.tar.gz` (PEP 625: the normalized
//! distribution name, one top-level directory `<name>-<version>/`) holding `PKG-INFO` (the
//! wheels' core metadata), a `pyproject.toml` that builds the same binary with maturin
//! (`bindings = "bin"`, the wheels' features and profile), castoff's finder module, and the
//! Rust sources the caller gathered (the package, its path dependencies, the trimmed
//! workspace manifest, `Cargo.lock`).
//!
//! Byte-reproducible like the other artifacts: entries sorted, every mtime
//! `SOURCE_DATE_EPOCH`, owner 0:0 with empty names, modes 0644/0755, a gzip header without
//! name or time (castoff-archive's tar and gzip writers).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use castoff_archive::digest::{HashingWriter, hex};
use castoff_archive::tar::{OwnerFields, TarWriter, gzip_writer};
use castoff_plan::App;
use castoff_plan::plan::{BuildSettings, PythonChannel};

use crate::error::WheelError;
use crate::metadata::CoreMetadata;
use crate::module;

/// The maturin versions the generated `pyproject.toml` accepts: 1.9.2 is the first that
/// writes core metadata 2.4 with PEP 639's `License-Expression` from `project.license`.
pub const MATURIN_REQUIREMENT: &str = "maturin>=1.9.2,<2.0";

/// Where the finder module lives in the sdist (maturin's `python-source`).
pub const PYTHON_SOURCE: &str = "python";

/// One file of the Rust sources, as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the sdist's top directory, `/`-separated, no `..`.
    pub path: String,
    /// `0o755` for an executable file, `0o644` otherwise.
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// What one sdist is built from.
#[derive(Debug, Clone)]
pub struct SdistInput<'a> {
    pub workspace_root: &'a Path,
    pub app: &'a App,
    pub python: &'a PythonChannel,
    /// The build settings every wheel of the app shares (the plan refuses differing ones).
    pub build: &'a BuildSettings,
    /// The app's `Cargo.toml`, relative to the sdist's top directory (`crates/hello/Cargo.toml`).
    pub manifest_path: String,
    /// The Rust sources: the packages' files, the workspace manifest, `Cargo.lock`.
    pub sources: Vec<SourceFile>,
    /// SBOM documents, `(file name, contents)`, stored as `sboms/<file name>` (as a wheel's
    /// `.dist-info/sboms/`, PEP 770).
    pub sboms: Vec<(String, Vec<u8>)>,
    /// SOURCE_DATE_EPOCH (seconds): every entry's mtime.
    pub source_date_epoch: u64,
}

/// An sdist written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSdist {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// Everything an sdist holds, rendered but not yet written.
#[derive(Debug, Clone)]
pub struct SdistContents {
    /// `hello_paths-0.2.0.tar.gz`
    pub file_name: String,
    /// `hello_paths-0.2.0`: the one top-level directory.
    pub top: String,
    pub metadata: CoreMetadata,
    /// Paths relative to `top`, sorted.
    pub entries: Vec<SourceFile>,
}

impl SdistContents {
    /// The contents of the entry at `path` (relative to the top directory).
    pub fn entry(&self, path: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|entry| entry.path == path)
            .map(|entry| entry.contents.as_slice())
    }
}

/// `<normalized name>-<version>.tar.gz` (PEP 625).
pub fn sdist_file_name(python: &PythonChannel) -> String {
    format!("{}.tar.gz", sdist_top(python))
}

fn sdist_top(python: &PythonChannel) -> String {
    format!(
        "{}-{}",
        castoff_plan::names::wheel_distribution_name(&python.name),
        python.version
    )
}

/// Builds the sdist of `input` into `out_dir` (which must exist). Nothing appears under the
/// final file name unless the whole file was written.
pub fn build_sdist(
    input: &SdistInput<'_>,
    out_dir: &Path,
    level: u32,
) -> Result<BuiltSdist, WheelError> {
    let contents = sdist_contents(input)?;
    write_sdist(&contents, out_dir, input.source_date_epoch, level)
}

/// Renders PKG-INFO, pyproject.toml and the finder module, and merges them with the sources.
pub fn sdist_contents(input: &SdistInput<'_>) -> Result<SdistContents, WheelError> {
    let app = input.app;
    let python = input.python;
    let (metadata, license_files) = CoreMetadata::from_app(input.workspace_root, app, python)?;
    let text = |path: String, text: String| SourceFile {
        path,
        mode: 0o644,
        contents: text.into_bytes(),
    };
    let mut generated = vec![
        text("PKG-INFO".to_owned(), metadata.render()),
        text(
            "pyproject.toml".to_owned(),
            pyproject_toml(&metadata, python, input.build, &input.manifest_path),
        ),
    ];
    let module = &python.module;
    let finders: Vec<(String, String)> = app
        .bins
        .iter()
        .map(|bin| (bin.clone(), bin.clone()))
        .collect();
    generated.push(text(
        format!("{PYTHON_SOURCE}/{module}/__init__.py"),
        module::init_py_any_platform(&python.name, &python.version, &finders),
    ));
    generated.push(text(
        format!("{PYTHON_SOURCE}/{module}/__main__.py"),
        module::main_py(module, &app.bins[0]),
    ));
    generated.push(text(
        format!("{PYTHON_SOURCE}/{module}/py.typed"),
        String::new(),
    ));

    for (file_name, contents) in &input.sboms {
        if file_name.is_empty() || file_name.contains(['/', '\\']) || file_name.starts_with('.') {
            return Err(WheelError::SbomFileName {
                package: app.package.name.clone(),
                file_name: file_name.clone(),
            });
        }
        generated.push(SourceFile {
            path: format!("sboms/{file_name}"),
            mode: 0o644,
            contents: contents.clone(),
        });
    }

    let mut entries: Vec<SourceFile> = Vec::new();
    for file in input.sources.iter().cloned().chain(generated) {
        let clean = !file.path.is_empty()
            && file
                .path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !clean {
            return Err(WheelError::Metadata {
                path: app.package.manifest_path.clone(),
                problem: format!(
                    "would put `{}` in the source distribution, which is not a plain relative path",
                    file.path
                ),
                hint: "this is a castoff bug; set `python.sdist = false` until it is fixed"
                    .to_owned(),
            });
        }
        match entries.iter().position(|known| known.path == file.path) {
            // A generated file wins over a source of the same name (a checked-in PKG-INFO).
            Some(at) => entries[at] = file,
            None => entries.push(file),
        }
    }
    // PEP 639: License-File paths are relative to the sdist's root, and the files are there.
    for license in license_files {
        if !entries.iter().any(|entry| entry.path == license.path) {
            entries.push(SourceFile {
                path: license.path,
                mode: 0o644,
                contents: license.contents,
            });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SdistContents {
        file_name: sdist_file_name(python),
        top: sdist_top(python),
        metadata,
        entries,
    })
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_array(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|value| toml_string(value)).collect();
    format!("[{}]", items.join(", "))
}

/// The `pyproject.toml`: maturin as the build backend, the project's metadata as in PKG-INFO
/// (maturin writes the built wheel's METADATA from it), and the build settings of the wheels.
pub fn pyproject_toml(
    metadata: &CoreMetadata,
    python: &PythonChannel,
    build: &BuildSettings,
    manifest_path: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by castoff: `pip install` builds the same binary as the wheels with maturin\n\
         # (a Rust toolchain is needed)."
    );
    let _ = writeln!(out, "[build-system]");
    let _ = writeln!(out, "requires = [{}]", toml_string(MATURIN_REQUIREMENT));
    let _ = writeln!(out, "build-backend = \"maturin\"\n");
    let _ = writeln!(out, "[project]");
    let _ = writeln!(out, "name = {}", toml_string(&metadata.name));
    let _ = writeln!(out, "version = {}", toml_string(&metadata.version));
    if let Some(summary) = &metadata.summary {
        let _ = writeln!(out, "description = {}", toml_string(summary));
    }
    if let Some(requires_python) = &metadata.requires_python {
        let _ = writeln!(out, "requires-python = {}", toml_string(requires_python));
    }
    if let Some(license) = &metadata.license_expression {
        let _ = writeln!(out, "license = {}", toml_string(license));
    }
    if !metadata.license_files.is_empty() {
        let _ = writeln!(
            out,
            "license-files = {}",
            toml_array(&metadata.license_files)
        );
    }
    if !metadata.keywords.is_empty() {
        let _ = writeln!(out, "keywords = {}", toml_array(&metadata.keywords));
    }
    if !metadata.requires_dist.is_empty() {
        let _ = writeln!(
            out,
            "dependencies = {}",
            toml_array(&metadata.requires_dist)
        );
    }
    let _ = writeln!(out, "classifiers = {}", toml_array(&metadata.classifiers));
    if !metadata.project_urls.is_empty() {
        let _ = writeln!(out, "\n[project.urls]");
        for (label, url) in &metadata.project_urls {
            let _ = writeln!(out, "{} = {}", toml_string(label), toml_string(url));
        }
    }
    let _ = writeln!(out, "\n[tool.maturin]");
    let _ = writeln!(out, "bindings = \"bin\"");
    let _ = writeln!(out, "manifest-path = {}", toml_string(manifest_path));
    let _ = writeln!(out, "python-source = {}", toml_string(PYTHON_SOURCE));
    let _ = writeln!(out, "module-name = {}", toml_string(&python.module));
    let _ = writeln!(out, "profile = {}", toml_string(&build.profile));
    let mut features = build.features.clone();
    features.sort();
    if !features.is_empty() {
        let _ = writeln!(out, "features = {}", toml_array(&features));
    }
    if build.all_features {
        let _ = writeln!(out, "all-features = true");
    }
    if build.no_default_features {
        let _ = writeln!(out, "no-default-features = true");
    }
    let _ = writeln!(out, "locked = true");
    out
}

/// Writes `contents` as `out_dir/{file name}`: first to a temporary file, then renamed.
pub fn write_sdist(
    contents: &SdistContents,
    out_dir: &Path,
    source_date_epoch: u64,
    level: u32,
) -> Result<BuiltSdist, WheelError> {
    let final_path = out_dir.join(&contents.file_name);
    let temporary_path = out_dir.join(format!(
        ".{}.{}.partial",
        contents.file_name,
        std::process::id()
    ));
    let written = (|| -> std::io::Result<([u8; 32], u64)> {
        let file = fs::File::create(&temporary_path)?;
        let hashing = HashingWriter::new(BufWriter::new(file));
        let mut tar = TarWriter::new(gzip_writer(hashing, level), OwnerFields::Zero);
        let io = |error: castoff_archive::tar::TarError| std::io::Error::other(error.to_string());
        tar.append_directory(&contents.top, 0o755, source_date_epoch)
            .map_err(io)?;
        for entry in &contents.entries {
            let name = format!("{}/{}", contents.top, entry.path);
            tar.append_bytes(&name, entry.mode, source_date_epoch, &entry.contents)
                .map_err(io)?;
        }
        let gzip = tar.finish()?;
        let hashing = gzip.finish()?;
        let (mut buffered, digest, size) = hashing.finish();
        buffered.flush()?;
        Ok((digest, size))
    })();
    let (digest, size) = match written {
        Ok(done) => done,
        Err(source) => {
            let _ = fs::remove_file(&temporary_path);
            return Err(WheelError::Write {
                path: temporary_path,
                source,
            });
        }
    };
    if let Err(source) = fs::rename(&temporary_path, &final_path) {
        let _ = fs::remove_file(&temporary_path);
        return Err(WheelError::Write {
            path: final_path,
            source,
        });
    }
    Ok(BuiltSdist {
        path: final_path,
        file_name: contents.file_name.clone(),
        size,
        sha256: hex(&digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_what_toml_requires() {
        assert_eq!(toml_string("plain"), "\"plain\"");
        assert_eq!(
            toml_string("a \"quote\", a \\ and\na line"),
            r#""a \"quote\", a \\ and\na line""#
        );
        assert_eq!(toml_string("bell\u{7}"), r#""bell\u0007""#);
        assert_eq!(
            toml_array(&["x".to_owned(), "y\"".to_owned()]),
            r#"["x", "y\""]"#
        );
    }

    #[test]
    fn the_sdist_finder_adds_the_platform_suffix_at_run_time() {
        let text = module::init_py_any_platform(
            "tk",
            "1.0",
            &[
                ("tk".to_owned(), "tk".to_owned()),
                ("tk-core".to_owned(), "tk-core".to_owned()),
            ],
        );
        assert!(text.contains("_EXE_SUFFIX = \".exe\" if os.name == \"nt\" else \"\"\n"));
        assert!(text.contains("return _find_binary(\"tk\" + _EXE_SUFFIX)"));
        assert!(text.contains("return _find_binary(\"tk-core\" + _EXE_SUFFIX)"));
        // The suffix is defined before any function uses it.
        assert!(text.find("_EXE_SUFFIX =").unwrap() < text.find("def find_tk_bin").unwrap());
    }
}
