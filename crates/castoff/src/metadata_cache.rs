//! Remembers what `cargo metadata --no-deps` (and `rustc -vV`'s host triple) said about a
//! workspace, so a run whose inputs Cargo would read are unchanged does not start Cargo again:
//! those two process start-ups (each through rustup's proxy) are most of a cached `dist`. The
//! SBOM's `cargo metadata --filter-platform <target>` (the dependency graph) is remembered the
//! same way (and so is an sdist's graph for every platform), with Cargo.lock and the path
//! dependencies' manifests among its inputs: it is the
//! one Cargo start of a `dist` whose binaries changed but whose dependencies did not.
//!
//! A record holds the answer with the identity (device, inode, size, mtime, ctime) of
//! everything that decides it, or the fact that it was absent:
//! - in the current directory's and the starting manifest's ancestors: `Cargo.toml` (workspace
//!   discovery), `.cargo/config{,.toml}`, `rust-toolchain{,.toml}`;
//! - Cargo's and rustup's own configuration (`$CARGO_HOME/config{,.toml}`,
//!   `$RUSTUP_HOME/settings.toml`);
//! - every member's (and path dependency's) manifest; its `build.rs`, `src/main.rs` and
//!   `src/lib.rs`; its `src/bin`, `examples`, `tests` and `benches` directories and their
//!   subdirectories (Cargo discovers targets there) and its `README.md`, `README.txt` or
//!   `README` (the readme Cargo assumes);
//! - the directories between the workspace root and each member, with their subdirectories,
//!   and the root's subdirectories, by identity and by name (a member added under a `members`
//!   glob adds an entry to one of them). The root's own timestamps are left out, and so are
//!   `target`, `node_modules` and `dist`, because every `dist` changes them;
//! - rustup's toolchains, each one's `bin` directory, and its `update-hashes` (a toolchain
//!   installed or updated);
//!
//! and a digest of the environment Cargo and rustup read (`CARGO*`, `RUST*`, `PATH`, `HOME`,
//! leaving out tokens and passwords; only the digest is written, never a value). Any write
//! changes a file's ctime, and adding or removing an entry changes its directory's, so a
//! record whose identities all still match describes what Cargo would answer now. A record is
//! not written when one of those files (or, for a missing one, its directory) changed within a
//! second of the run's start (two for whole-second timestamps): it may have changed after
//! Cargo read it, and file clocks lag (a network file system's is another machine's).
//!
//! Records live in `<target dir>/castoff/metadata/`; before asking Cargo, castoff looks for
//! them in `$CARGO_TARGET_DIR` and in `target/` beside the starting directory and each of its
//! ancestors. A workspace whose target directory is elsewhere (`build.target-dir`) simply
//! always asks Cargo. Unix only: elsewhere there is no ctime to rely on.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cargo_metadata::Metadata;
use castoff_archive::digest;
use serde_json::json;

/// Where records live, under a target directory.
const RECORDS: &str = "castoff/metadata";
/// A file stamped this close to the start of the run may have changed after Cargo read it:
/// file timestamps come from a coarse clock that lags the precise one, and a network file
/// system's from another machine's clock.
const CLOCK_SLACK: Duration = Duration::from_secs(1);
/// The same for a timestamp without a fraction of a second: file systems that keep whole
/// seconds (or two, FAT) round down by that much.
const COARSE_CLOCK_SLACK: Duration = Duration::from_secs(2);
/// Directories whose entries change on every `dist` (never where Cargo finds packages).
const NOT_PACKAGES: [&str; 3] = ["target", "node_modules", "dist"];

/// What Cargo (and rustc) said last time.
pub(crate) struct Hit {
    pub metadata: Metadata,
    pub host: Option<String>,
}

/// Where the run starts: the current directory and the `--manifest-path` given, if any, and
/// which question Cargo is asked there.
pub(crate) struct Start {
    cwd: PathBuf,
    manifest_path: Option<PathBuf>,
    /// `None` for the workspace (`--no-deps`); the target for the SBOM's dependency graph.
    sbom_target: Option<String>,
}

impl Start {
    /// For `cargo metadata --no-deps` (and `rustc -vV`).
    pub(crate) fn new(manifest_path: Option<&Path>) -> Option<Start> {
        let cwd = std::env::current_dir().ok()?;
        Some(Start {
            // Cargo resolves `..` in the path as text, not through symbolic links.
            manifest_path: manifest_path.map(|path| lexically_normal(&cwd.join(path))),
            cwd,
            sbom_target: None,
        })
    }

    /// For the SBOM's `cargo metadata --filter-platform <target>`: the same inputs, plus
    /// Cargo.lock and the manifests of path dependencies outside the workspace. (Registry and
    /// git dependencies are pinned by the lock file and never change in place.)
    /// `target` none: the graph for every platform (an sdist's), recorded under a key no
    /// target triple can take.
    pub(crate) fn for_sbom(
        manifest_path: &Path,
        target: Option<&str>,
        features: &[String],
    ) -> Option<Start> {
        let mut start = Start::new(Some(manifest_path))?;
        let target = target.unwrap_or("* all platforms");
        start.sbom_target = Some(if features.is_empty() {
            target.to_owned()
        } else {
            format!("{target} {}", features.join(" "))
        });
        Some(start)
    }

    /// The directory Cargo starts from.
    fn dir(&self) -> &Path {
        match &self.manifest_path {
            Some(path) => path.parent().unwrap_or(&self.cwd),
            None => &self.cwd,
        }
    }

    fn record_name(&self) -> String {
        let text = format!(
            "castoff {}\ncwd {}\nmanifest {:?}\nsbom {:?}\n",
            env!("CARGO_PKG_VERSION"),
            self.cwd.display(),
            self.manifest_path,
            self.sbom_target
        );
        format!(
            "{}.json",
            &digest::hex(&digest::sha256(text.as_bytes()))[..16]
        )
    }

    /// The target directories a record may be in, most likely first.
    fn candidates(&self) -> Vec<PathBuf> {
        let mut candidates = Vec::new();
        if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(self.cwd.join(dir));
        }
        candidates.extend(self.dir().ancestors().map(|dir| dir.join("target")));
        candidates
    }

    /// The record, if one matches the environment and every identity it lists.
    pub(crate) fn lookup(&self) -> Option<Hit> {
        if !cfg!(unix) {
            return None;
        }
        let name = self.record_name();
        let env = environment_digest();
        self.candidates().iter().find_map(|target| {
            let text = fs::read(target.join(RECORDS).join(&name)).ok()?;
            let record: serde_json::Value = serde_json::from_slice(&text).ok()?;
            if record["env"].as_str()? != env {
                return None;
            }
            let files = record["files"].as_object()?;
            for (path, recorded) in files {
                if state(path) != recorded.as_str()? {
                    return None;
                }
            }
            Some(Hit {
                metadata: serde_json::from_value(record["metadata"].clone()).ok()?,
                host: record["host"].as_str().map(str::to_owned),
            })
        })
    }

    /// Records what Cargo answered for a run that started at `started`. Best effort: a record
    /// that cannot be written only costs the next run a `cargo metadata`.
    pub(crate) fn store(&self, metadata: &Metadata, host: Option<&str>, started: SystemTime) {
        if cfg!(unix) {
            let _ = self.try_store(metadata, host, started);
        }
    }

    fn try_store(
        &self,
        metadata: &Metadata,
        host: Option<&str>,
        started: SystemTime,
    ) -> anyhow::Result<()> {
        let mut files = BTreeMap::new();
        let settled = |changed: SystemTime| {
            let whole_seconds = changed
                .duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|since| since.subsec_nanos() == 0);
            let slack = if whole_seconds {
                COARSE_CLOCK_SLACK
            } else {
                CLOCK_SLACK
            };
            changed + slack < started
        };
        let root = metadata.workspace_root.as_std_path();
        for path in self.inputs(metadata) {
            let (recorded, changed) = identity(&path);
            // A file of the workspace deleted while Cargo read it shows as absent: its
            // directory changed then. (Not for the root, whose entries `dist` itself changes
            // while the SBOM's graph is asked for, nor outside the workspace, where
            // directories such as $HOME change too often for that to be worth a record.)
            let changed = changed.or_else(|| {
                path.parent()
                    .filter(|dir| dir.starts_with(root) && *dir != root)
                    .and_then(|dir| identity(dir).1)
            });
            if changed.is_some_and(|changed| !settled(changed)) {
                // Possibly changed while Cargo read it: the next run asks Cargo again.
                return Ok(());
            }
            files.insert(path.display().to_string(), recorded);
        }
        // The root's subdirectories by name: where a `members` glob at the root finds a new
        // package (the root's own timestamps change with every `dist`).
        let listing = format!("{}/{LISTING}", root.display());
        files.insert(listing.clone(), state(&listing));
        let record = json!({
            "env": environment_digest(),
            "files": files,
            "host": host,
            "metadata": metadata,
        });
        let dir = metadata.target_directory.as_std_path().join(RECORDS);
        fs::create_dir_all(&dir)?;
        let path = dir.join(self.record_name());
        // Written aside and renamed: a reader never sees half a record.
        let temporary = path.with_extension(format!("json.{}", std::process::id()));
        fs::write(&temporary, serde_json::to_vec(&record)?)?;
        fs::rename(&temporary, &path)?;
        Ok(())
    }

    /// Every path whose state decides Cargo's answer (see the module's documentation).
    fn inputs(&self, metadata: &Metadata) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for dir in self.cwd.ancestors().chain(self.dir().ancestors()) {
            for name in [
                "Cargo.toml",
                ".cargo/config",
                ".cargo/config.toml",
                "rust-toolchain",
                "rust-toolchain.toml",
            ] {
                paths.push(dir.join(name));
            }
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let tool_home = |variable: &str, default: &str| {
            std::env::var_os(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(default)))
        };
        if let Some(cargo_home) = tool_home("CARGO_HOME", ".cargo") {
            paths.push(cargo_home.join("config"));
            paths.push(cargo_home.join("config.toml"));
        }
        if let Some(rustup_home) = tool_home("RUSTUP_HOME", ".rustup") {
            // The default toolchain, and installed or updated toolchains (an update replaces
            // the toolchain's directory and rewrites its hash file).
            paths.push(rustup_home.join("settings.toml"));
            paths.push(rustup_home.join("toolchains"));
            for toolchain in subdirectories(&rustup_home.join("toolchains")) {
                paths.push(toolchain.join("bin"));
            }
            if let Ok(hashes) = fs::read_dir(rustup_home.join("update-hashes")) {
                paths.extend(hashes.flatten().map(|entry| entry.path()));
            }
        }
        let root = metadata.workspace_root.as_std_path();
        if self.sbom_target.is_some() {
            paths.push(root.join("Cargo.lock"));
        }
        // Where a `members` glob finds packages right under the root.
        with_subdirectories(root, &mut paths);
        paths.retain(|path| path != root);
        // Workspace members and path dependencies; registry and git packages are immutable.
        for package in metadata.packages.iter().filter(|p| p.source.is_none()) {
            paths.push(package.manifest_path.clone().into_std_path_buf());
            let Some(package_dir) = package.manifest_path.parent() else {
                continue;
            };
            let package_dir = package_dir.as_std_path();
            // What Cargo discovers by a file's presence: targets, and the readme when the
            // manifest names none.
            for file in [
                "build.rs",
                "src/main.rs",
                "src/lib.rs",
                "README.md",
                "README.txt",
                "README",
            ] {
                paths.push(package_dir.join(file));
            }
            for discovered in ["src/bin", "examples", "tests", "benches"] {
                with_subdirectories(&package_dir.join(discovered), &mut paths);
            }
            // The directories strictly between the workspace root and the package, where a
            // `members` glob finds packages. (Not the root itself nor the package directory:
            // every `dist` changes the root's entries, and anything that matters in the package
            // directory is listed above.)
            let mut dir = package_dir.parent();
            while let Some(current) = dir {
                if current == root || !current.starts_with(root) {
                    break;
                }
                with_subdirectories(current, &mut paths);
                dir = current.parent();
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }
}

/// `dir` and its subdirectories, leaving out hidden ones and those that hold no packages.
fn with_subdirectories(dir: &Path, paths: &mut Vec<PathBuf>) {
    paths.push(dir.to_owned());
    paths.extend(subdirectories(dir));
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !NOT_PACKAGES.contains(&name.as_ref())
        })
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// The name of a record entry that stands for a directory's list of subdirectories.
const LISTING: &str = "<subdirectories>";

/// What a record holds for `entry`: a path's identity, or for `<dir>/<subdirectories>` a
/// digest of that directory's subdirectory names.
fn state(entry: &str) -> String {
    match entry.strip_suffix(LISTING) {
        Some(dir) => {
            let names: String = subdirectories(Path::new(dir))
                .iter()
                .map(|path| format!("{}\0", path.display()))
                .collect();
            format!("names {}", digest::hex(&digest::sha256(names.as_bytes())))
        }
        None => identity(Path::new(entry)).0,
    }
}

/// `path` with `.` and `..` resolved as text (no symbolic link followed), the way Cargo reads a
/// `--manifest-path`.
pub(crate) fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// A path's identity and its last status change, or `absent`.
fn identity(path: &Path) -> (String, Option<SystemTime>) {
    #[cfg(unix)]
    {
        match crate::cache::stat_identity(path) {
            Ok((identity, changed)) => (identity, Some(changed)),
            Err(_) => ("absent".to_owned(), None),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        ("unsupported".to_owned(), None)
    }
}

/// A digest of the variables Cargo, rustc and rustup read.
fn environment_digest() -> String {
    let mut variables: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let read = name.starts_with("CARGO") || name.starts_with("RUST") || name == "PATH";
            // Registry tokens are not Cargo's answer's business, and rotate.
            let secret = ["TOKEN", "PASSWORD", "SECRET", "CREDENTIAL"]
                .iter()
                .any(|word| name.contains(word));
            ((read || name == "HOME") && !secret)
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect();
    variables.sort();
    let text: String = variables
        .iter()
        .map(|(name, value)| format!("{name}={value}\0"))
        .collect();
    digest::hex(&digest::sha256(text.as_bytes()))
}
