//! The `dist` cache: when every input is unchanged (the binaries, the plan with all its
//! configuration, castoff's version, `SOURCE_DATE_EPOCH`, the planned targets and the dist
//! directory), `dist` checks that the previous `dist/` is untouched and reuses it instead of
//! building again. The record lives in `<target dir>/castoff/dist-cache/`, outside `dist/`, so
//! a cached dist holds exactly the files of a fresh one.
//!
//! Large files are compared by identity, not re-hashed: a binary by (device, inode, size,
//! mtime, ctime) — what Cargo changes whenever it links again — and every dist file by the same
//! identity recorded when it was written. Any write to a file changes its ctime, which no
//! user-space tool can set back, so an edited, truncated or replaced file is noticed without
//! reading it. (`publish` still re-verifies every digest before uploading.) Small inputs
//! (sources, configuration, a base layout) are hashed. Where there is no such identity
//! (Windows), files are hashed.

use std::fs;
use std::path::{Path, PathBuf};

use castoff_archive::digest;
use castoff_plan::{Manifest, Release};
use serde_json::json;

use crate::dist::{DistOptions, DistOutcome};

/// What identifies one `dist` run's inputs, and where its record is kept.
#[derive(Debug)]
pub(crate) struct CacheKey {
    key: String,
    record: PathBuf,
}

impl CacheKey {
    /// Hashes every input of the run. `None` when the run is not cacheable: signing writes
    /// signatures with a secret key the cache cannot compare.
    pub(crate) fn compute<'a>(
        release: &Release,
        options: &DistOptions,
        binaries: impl Iterator<Item = &'a Path>,
        revision: Option<&str>,
    ) -> anyhow::Result<Option<CacheKey>> {
        if options.signing_key.is_some() {
            return Ok(None);
        }
        let mut inputs = format!(
            "castoff {}\nSOURCE_DATE_EPOCH {}\ntargets {:?}\ndist {}\nplan {release:?}\n",
            env!("CARGO_PKG_VERSION"),
            options.source_date_epoch,
            options.planned_targets,
            options.dist_dir.display(),
        );
        for path in binaries {
            inputs.push_str(&format!(
                "binary {} {}\n",
                path.display(),
                file_identity(path)?
            ));
        }
        // Files the builders read beside the binary (README, license, extra files, an
        // `oci-layout:` base, Cargo.lock for the SBOM): everything in the package directories
        // and the workspace root's own files, except build output and hidden directories.
        let canonical = |path: &Path| fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let skip = [
            canonical(&release.target_directory),
            canonical(&options.dist_dir),
        ];
        let mut sources = Vec::new();
        list_files(&release.workspace_root, false, &skip, &mut sources)?;
        for app in &release.apps {
            if let Some(dir) = app.package.manifest_path.parent() {
                list_files(dir, true, &skip, &mut sources)?;
            }
        }
        sources.sort();
        sources.dedup();
        for path in sources {
            let (sha, size) = digest::sha256_reader(fs::File::open(&path)?)?;
            inputs.push_str(&format!(
                "source {} {size} {}\n",
                path.display(),
                digest::hex(&sha)
            ));
        }
        inputs.push_str(&format!("revision {revision:?}\n"));
        let dist_name = digest::hex(&digest::sha256(
            options.dist_dir.to_string_lossy().as_bytes(),
        ));
        Ok(Some(CacheKey {
            key: digest::hex(&digest::sha256(inputs.as_bytes())),
            record: release
                .target_directory
                .join("castoff/dist-cache")
                .join(format!("{}.json", &dist_name[..16])),
        }))
    }

    /// The previous `dist/`, when it was built from the same inputs and every file still
    /// matches the manifest (and the manifest and `SHA256SUMS` are the ones recorded).
    /// Anything else (no record, other inputs, a changed file) means: build again.
    pub(crate) fn reuse(&self, options: &DistOptions) -> Option<DistOutcome> {
        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&self.record).ok()?).ok()?;
        if record["key"].as_str()? != self.key {
            return None;
        }
        let dist_dir = &options.dist_dir;
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
        Some(DistOutcome {
            dist_dir: dist_dir.clone(),
            manifest,
            warnings,
            cached: true,
        })
    }

    /// Records a finished run, so the next one with the same inputs can reuse it. A record
    /// that cannot be written only costs the next run its cache hit.
    pub(crate) fn remember(&self, outcome: &DistOutcome) {
        let _ = self.try_remember(&outcome.dist_dir, &outcome.warnings);
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

/// Every regular file under `dist_dir` (relative path, `/`-separated) with its identity.
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
