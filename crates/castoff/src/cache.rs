//! The `dist` cache: when every input is unchanged (the binaries, the plan with all its
//! configuration, castoff's version, `SOURCE_DATE_EPOCH`, the planned targets and the dist
//! directory), `dist` checks that the previous `dist/` is untouched and reuses it instead of
//! building again. The record lives in `<target dir>/castoff/dist-cache/`, outside `dist/`, so
//! a cached dist holds exactly the files of a fresh one.
//!
//! Large files are compared by identity, not re-hashed: a binary cargo built by (device,
//! inode, size, mtime, ctime) — what Cargo changes whenever it links again — (a supplied one,
//! prebuilt.rs, by the digest read when it was checked), and every dist file by the same
//! identity recorded when it was written. Any write to a file changes its ctime, which no
//! user-space tool can set back, so an edited, truncated or replaced file is noticed without
//! reading it. (`publish` still re-verifies every digest before uploading.) Small inputs
//! (sources, configuration, a base layout) are hashed. Where there is no such identity
//! (Windows), files are hashed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use castoff_archive::digest;
use castoff_plan::plan::BaseImage;
use castoff_plan::{Manifest, Release};
use serde_json::json;

use crate::cargo::Binaries;
use crate::prebuilt::BinarySource;

/// Every input of one `dist` run that its output depends on, named.
#[derive(Debug)]
pub(crate) struct CacheInputs<'a> {
    pub(crate) release: &'a Release,
    pub(crate) dist_dir: &'a Path,
    pub(crate) source_date_epoch: u64,
    pub(crate) planned_targets: &'a [String],
    pub(crate) archive_extras: &'a BTreeMap<String, Vec<(String, Vec<u8>)>>,
    /// The binaries: cargo's compared by identity, supplied ones by content.
    pub(crate) binaries: &'a Binaries,
    /// What `oci.files` and `oci.volumes` add to each image: (app, entry, source file).
    pub(crate) extra_files: &'a [(String, String, Option<PathBuf>)],
    /// The commit being released.
    pub(crate) revision: Option<&'a str>,
    /// The crates channel's `.crate` files, by digest (what Cargo packaged this run).
    pub(crate) crates: &'a [crate::crates::PackagedCrate],
}

/// What identifies one `dist` run's inputs, and where its record is kept.
#[derive(Debug)]
pub(crate) struct CacheKey {
    key: String,
    record: PathBuf,
}

/// Bumped whenever the lines of the key change meaning, or what the same inputs give (7: the
/// sdist of a root package no longer holds dist's staging directory).
const KEY_FORMAT: u32 = 7;

impl CacheKey {
    /// Hashes every input of the run into a key of named lines: the format, castoff's
    /// version, `SOURCE_DATE_EPOCH`, the planned targets, the dist directory, the plan (as the
    /// manifest JSON `plan --format json` prints: a stable serialization, not a `Debug`
    /// rendering), each app's build settings per target, generated archive files, each binary's identity (a supplied binary's
    /// digest: its path is where the user keeps it, its content is what ships), each source
    /// file's digest and the revision. The configuration itself is covered by the sources: every
    /// `Cargo.toml` of the workspace root and the released packages.
    pub(crate) fn compute(inputs: &CacheInputs<'_>) -> anyhow::Result<CacheKey> {
        let release = inputs.release;
        let plan = Manifest::from_release(release, env!("CARGO_PKG_VERSION")).to_json();
        let mut key = format!(
            "castoff-dist-cache {KEY_FORMAT}\ncastoff {}\nSOURCE_DATE_EPOCH {}\ntargets {}\ndist {}\nplan {}\n",
            env!("CARGO_PKG_VERSION"),
            inputs.source_date_epoch,
            inputs.planned_targets.join(" "),
            inputs.dist_dir.display(),
            digest::hex(&digest::sha256(plan.as_bytes())),
        );
        // castoff's own build, beyond its version: a checkout's castoff (`init --castoff-path`)
        // keeps its version across changes, and its artifacts must not outlive them. The
        // running executable (the xtask, which links castoff) by size and modification time.
        let executable = std::env::current_exe()
            .and_then(fs::metadata)
            .ok()
            .and_then(|metadata| {
                let modified = metadata.modified().ok()?;
                let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
                Some(format!("{} {}", metadata.len(), since.as_nanos()))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        key.push_str(&format!("castoff-executable {executable}\n"));
        // The build settings (features, profile, …): they decide the binary, and through the
        // features the SBOM's dependency graph.
        for app in &release.apps {
            for target in &app.targets {
                key.push_str(&format!(
                    "build {} {} {}\n",
                    app.package.name,
                    target.triple,
                    serde_json::to_string(app.build(target)).expect("settings serialize")
                ));
            }
        }
        for packaged in inputs.crates {
            key.push_str(&format!(
                "crate {} {} sha256:{}\n",
                release.crates[packaged.index].name, packaged.size, packaged.sha256
            ));
        }
        for (package, files) in inputs.archive_extras {
            for (path, contents) in files {
                key.push_str(&format!(
                    "archive-extra {package} {path} {}\n",
                    digest::hex(&digest::sha256(contents))
                ));
            }
        }
        for built in inputs.binaries {
            match &built.source {
                BinarySource::Cargo => {
                    for (_, path) in &built.paths {
                        key.push_str(&format!(
                            "binary {} {}\n",
                            path.display(),
                            file_identity(path)?
                        ));
                    }
                }
                BinarySource::Prebuilt(digests) => {
                    for ((bin, _), (size, sha256)) in built.paths.iter().zip(digests) {
                        key.push_str(&format!(
                            "prebuilt {} {} {bin} {size} sha256:{}\n",
                            release.apps[built.app.0].package.name,
                            built.target,
                            digest::hex(sha256)
                        ));
                    }
                }
            }
        }
        // Files the builders read beside the binary (README, license, extra files, an
        // `oci-layout:` base, Cargo.lock for the SBOM): everything in the package directories
        // and the workspace root's own files, except build output and hidden directories.
        let canonical = |path: &Path| fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let skip = [
            canonical(&release.target_directory),
            canonical(inputs.dist_dir),
        ];
        let mut sources = Vec::new();
        list_files(&release.workspace_root, false, &skip, &mut sources)?;
        for app in &release.apps {
            if let Some(dir) = app.package.manifest_path.parent() {
                list_files(dir, true, &skip, &mut sources)?;
            }
        }
        // An sdist holds its path dependencies' sources too.
        for app in &release.apps {
            if app.python.as_ref().is_some_and(|python| python.sdist) {
                for dir in crate::sdist::package_directories(release, app)? {
                    list_files(&dir, true, &skip, &mut sources)?;
                }
            }
        }
        sources.sort();
        sources.dedup();
        for path in sources {
            let (sha, size) = digest::sha256_reader(fs::File::open(&path)?)?;
            key.push_str(&format!(
                "source {} {size} {}\n",
                path.display(),
                digest::hex(&sha)
            ));
        }
        // The image's extra files, by content: a tree may hold hidden files and may lie
        // outside the package directory, where the listing above does not look.
        for (app, entry, source) in inputs.extra_files {
            let content = match source {
                Some(path) => {
                    // Regular files only, as the image builder reads them (a FIFO swapped in
                    // since the check would block here).
                    let (file, _) =
                        castoff_archive::foreign::open_regular(path, 1 << 30).map_err(|error| {
                            anyhow::anyhow!("could not read `{}`: {error}", path.display())
                        })?;
                    let (sha, size) = digest::sha256_reader(file)?;
                    format!("{size} {}", digest::hex(&sha))
                }
                None => "-".to_owned(),
            };
            key.push_str(&format!("oci-file {app} {entry} {content}\n"));
        }
        // An `oci-layout:` base, which may lie outside the package directory: its index and
        // layout marker by content, its blobs by (digest) name and size.
        for app in &release.apps {
            if let Some(BaseImage::Layout(layout)) = app.oci.as_ref().map(|oci| &oci.base) {
                for line in layout_identity(layout)? {
                    key.push_str(&format!("oci-base {} {line}\n", app.package.name));
                }
            }
        }
        key.push_str(&format!("revision {}\n", inputs.revision.unwrap_or("-")));
        let dist_name = digest::hex(&digest::sha256(
            inputs.dist_dir.to_string_lossy().as_bytes(),
        ));
        Ok(CacheKey {
            key: digest::hex(&digest::sha256(key.as_bytes())),
            record: release
                .target_directory
                .join("castoff/dist-cache")
                .join(format!("{}.json", &dist_name[..16])),
        })
    }

    /// The previous `dist/`, when it was built from the same inputs and every file still
    /// matches the manifest (and the manifest and `SHA256SUMS` are the ones recorded).
    /// Anything else (no record, other inputs, a changed file) means: build again.
    /// Returns the manifest and the warnings of the run that built it.
    pub(crate) fn reuse(&self, dist_dir: &Path) -> Option<(Manifest, Vec<String>)> {
        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&self.record).ok()?).ok()?;
        if record["key"].as_str()? != self.key {
            return None;
        }
        let manifest_text = fs::read(dist_dir.join("manifest.json")).ok()?;
        let sums = fs::read(dist_dir.join("SHA256SUMS")).ok()?;
        if record["manifest_sha256"].as_str()? != digest::hex(&digest::sha256(&manifest_text))
            || record["sums_sha256"].as_str()? != digest::hex(&digest::sha256(&sums))
        {
            return None;
        }
        let manifest = Manifest::from_json(std::str::from_utf8(&manifest_text).ok()?).ok()?;
        // Exactly the files written then, each untouched since.
        if record["files"] != json!(dist_identities(dist_dir).ok()?) {
            return None;
        }
        let warnings = record["warnings"]
            .as_array()?
            .iter()
            .filter_map(|warning| warning.as_str().map(str::to_owned))
            .collect();
        Some((manifest, warnings))
    }

    /// Records a finished run, so the next one with the same inputs can reuse it. A record
    /// that cannot be written only costs the next run its cache hit.
    pub(crate) fn remember(&self, dist_dir: &Path, warnings: &[String]) {
        let _ = self.try_remember(dist_dir, warnings);
    }

    fn try_remember(&self, dist_dir: &Path, warnings: &[String]) -> anyhow::Result<()> {
        let manifest_text = fs::read(dist_dir.join("manifest.json"))?;
        let sums = fs::read(dist_dir.join("SHA256SUMS"))?;
        let manifest = manifest_text;
        let record = json!({
            "files": dist_identities(dist_dir)?,
            "key": self.key,
            "dist_dir": dist_dir.display().to_string(),
            "manifest_sha256": digest::hex(&digest::sha256(&manifest)),
            "sums_sha256": digest::hex(&digest::sha256(&sums)),
            "warnings": warnings,
        });
        let parent = self.record.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)?;
        // Written aside and renamed: a reader never sees half a record.
        let temporary = self
            .record
            .with_extension(format!("json.{}", std::process::id()));
        fs::write(&temporary, serde_json::to_string_pretty(&record)? + "\n")?;
        fs::rename(&temporary, &self.record)?;
        Ok(())
    }
}

/// The regular files under `dir` (only its own when not `recursive`), leaving out hidden
/// entries, `target` directories, `node_modules` and the paths in `skip`.
fn list_files(
    dir: &Path,
    recursive: bool,
    skip: &[PathBuf],
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || skip.contains(&path) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_file() {
            out.push(path);
        } else if kind.is_dir() && recursive && name != "target" && name != "node_modules" {
            list_files(&path, true, skip, out)?;
        }
    }
    Ok(())
}

/// An OCI image layout as cache key lines: `index.json` and `oci-layout` by content, every
/// other file (the blobs, named by their digests, which the build verifies) by name and size.
/// A layout that cannot be read is one `unreadable` line: the image builder then refuses it
/// with its own message, naming the layout and the fix.
fn layout_identity(layout: &Path) -> anyhow::Result<Vec<String>> {
    let Ok(lines) = layout_lines(layout) else {
        return Ok(vec!["unreadable".to_owned()]);
    };
    Ok(lines)
}

fn layout_lines(layout: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![layout.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(layout)
            .unwrap_or(&path)
            .display()
            .to_string();
        let metadata = fs::symlink_metadata(&path)?;
        if matches!(relative.as_str(), "index.json" | "oci-layout") && metadata.is_file() {
            let (sha, size) = digest::sha256_reader(fs::File::open(&path)?)?;
            lines.push(format!("{relative} {size} {}", digest::hex(&sha)));
        } else {
            lines.push(format!("{relative} {}", metadata.len()));
        }
    }
    Ok(lines)
}

/// Every regular file under `dist_dir` (relative path, `/`-separated) with its identity, but
/// `publish`'s report.
fn dist_identities(dist_dir: &Path) -> std::io::Result<std::collections::BTreeMap<String, String>> {
    fn walk(
        dir: &Path,
        prefix: &str,
        out: &mut std::collections::BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), &format!("{name}/"), out)?;
            } else {
                out.insert(name, file_identity(&entry.path())?);
            }
        }
        Ok(())
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dist_dir, "", &mut out)?;
    // `publish` writes its report beside the artifacts: it changes no artifact, so a dist it
    // was written into is still the same dist (and a reuse keeps the report).
    out.remove(crate::publish::REPORT);
    out.remove(crate::publish::REPORT_PARTIAL);
    Ok(out)
}

/// Who a file is, cheaply: device, inode, size, mtime and ctime (nanoseconds) on Unix, where
/// any write changes the ctime; its size and SHA-256 elsewhere.
fn file_identity(path: &Path) -> std::io::Result<String> {
    #[cfg(unix)]
    {
        stat_identity(path).map(|(identity, _)| identity)
    }
    #[cfg(not(unix))]
    {
        let (sha, size) = digest::sha256_reader(fs::File::open(path)?)?;
        Ok(format!("{size} {}", digest::hex(&sha)))
    }
}

/// A file's or directory's identity from its status alone (device, inode, size, mode, mtime,
/// ctime), and when its status last changed.
#[cfg(unix)]
pub(crate) fn stat_identity(path: &Path) -> std::io::Result<(String, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path)?;
    let changed = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        );
    let identity = format!(
        "{}:{} {} {:o} m{}.{:09} c{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mode(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    Ok((identity, changed))
}
