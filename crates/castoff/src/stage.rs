//! Where `dist` and `dist --merge` write: the guard that lets castoff replace only a directory
//! it wrote, the lock that serializes runs on one dist directory, the staging directory beside
//! it, the sweep of what killed runs left behind, and the crash-safe swap.
//!
//! The swap keeps a complete dist directory in place at every instant. On Linux the staging
//! directory and the old dist directory trade places in one `renameat2(RENAME_EXCHANGE)`; the
//! old one, now under the staging name, is removed afterwards. Elsewhere (or on a filesystem
//! without the exchange) the old directory is renamed aside under a name unique to the run
//! (`.<dist>.castoff-old-<pid>`) and the new one renamed into place; a run killed between the
//! two renames leaves no dist directory but a complete aside copy, which the next run (under
//! the lock) renames back before doing anything else.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use castoff_archive::digest;
use castoff_plan::Manifest;

use crate::hint::Hinted;
use crate::report::Reporter;

/// Largest `manifest.json` or `SHA256SUMS` the guard reads from an existing dist directory.
const MAX_LISTING_BYTES: u64 = 64 * 1024 * 1024;

/// How many foreign paths a refusal names before it says "and N more".
const NAMED_FOREIGN_PATHS: usize = 5;

/// castoff refuses to replace the dist directory: it is not one castoff wrote, or replacing it
/// would delete the workspace. Nothing was touched. The CLI maps it to the usage exit code.
#[derive(Debug)]
pub(crate) struct RefusedDistDir(Hinted);

impl RefusedDistDir {
    /// What to do about it.
    pub(crate) fn hint(&self) -> &str {
        self.0.hint()
    }
}

impl fmt::Display for RefusedDistDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RefusedDistDir {}

fn refuse(refusal: Hinted) -> RefusedDistDir {
    RefusedDistDir(refusal)
}

/// Checks that `dist_dir` may be replaced: absent, an empty directory, or a directory every
/// file of which castoff wrote (its `manifest.json`, `SHA256SUMS`, their artifacts and
/// signatures, the deploy examples, `publish-report.json`). Never the workspace root or a
/// directory that contains it, never a symbolic link or a file.
pub(crate) fn check_dist_dir(dist_dir: &Path, workspace_root: &Path) -> Result<(), RefusedDistDir> {
    let shown = dist_dir.display();
    let metadata = match fs::symlink_metadata(dist_dir) {
        Ok(metadata) => metadata,
        // Absent, or not reachable at all (a parent is a file, no permission): nothing there
        // that castoff could delete; creating the directory fails later with its own error.
        Err(_) => return Ok(()),
    };
    if metadata.file_type().is_symlink() {
        let target = fs::read_link(dist_dir)
            .map(|target| target.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(refuse(Hinted::new(
            format!(
                "the dist directory {shown} is a symbolic link (to {target}); castoff replaces the dist directory as a whole and would replace the link, not write into its target"
            ),
            format!("pass the directory itself: --dist-dir {target}"),
        )));
    }
    if !metadata.is_dir() {
        return Err(refuse(Hinted::new(
            format!("the dist directory {shown} is a file, not a directory"),
            "pass a directory castoff may create and replace with --dist-dir",
        )));
    }
    let canonical = fs::canonicalize(dist_dir).map_err(|error| {
        refuse(Hinted::new(
            format!("could not resolve the dist directory {shown}: {error}"),
            "pass a directory castoff may create and replace with --dist-dir",
        ))
    })?;
    let workspace = fs::canonicalize(workspace_root).unwrap_or_else(|_| workspace_root.into());
    if workspace.starts_with(&canonical) {
        let what = if workspace == canonical {
            "is the workspace root"
        } else {
            "contains the workspace"
        };
        return Err(refuse(Hinted::new(
            format!(
                "the dist directory {shown} {what} ({}); castoff replaces the dist directory as a whole",
                workspace.display()
            ),
            format!(
                "pass a directory of its own, e.g. --dist-dir {}",
                workspace.join("dist").display()
            ),
        )));
    }
    let empty = fs::read_dir(dist_dir)
        .map_err(|error| {
            refuse(Hinted::new(
                format!("could not list the dist directory {shown}: {error}"),
                "pass a directory castoff may read and replace with --dist-dir",
            ))
        })?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    let owned = owned_paths(dist_dir).map_err(|problem| {
        refuse(Hinted::new(format!("the dist directory {shown} is not empty and not a castoff dist ({problem}); castoff replaces the dist directory as a whole and would delete what it holds"), "pass an empty or new directory with --dist-dir, or move that directory's files elsewhere"))
    })?;
    let mut foreign = Vec::new();
    list_foreign(dist_dir, Path::new(""), &owned, &mut foreign).map_err(|error| {
        refuse(Hinted::new(
            format!("could not list the dist directory {shown}: {error}"),
            "pass a directory castoff may read and replace with --dist-dir",
        ))
    })?;
    if foreign.is_empty() {
        return Ok(());
    }
    let mut named: Vec<String> = foreign
        .iter()
        .take(NAMED_FOREIGN_PATHS)
        .map(|path| path.display().to_string())
        .collect();
    if foreign.len() > NAMED_FOREIGN_PATHS {
        named.push(format!("and {} more", foreign.len() - NAMED_FOREIGN_PATHS));
    }
    Err(refuse(Hinted::new(
        format!(
            "the dist directory {shown} holds files castoff did not write: {}; castoff replaces the dist directory as a whole and would delete them",
            named.join(", ")
        ),
        format!("move them out of {shown}, or pass another directory with --dist-dir"),
    )))
}

/// What castoff writes into a dist directory, as paths relative to it: files, and directories
/// whose whole content is castoff's (image layouts).
struct Owned {
    files: BTreeSet<PathBuf>,
    trees: BTreeSet<PathBuf>,
}

/// Reads the existing dist's `manifest.json` and `SHA256SUMS` (bounded, regular files only)
/// to learn what castoff wrote there. An error says why the directory is not a castoff dist.
fn owned_paths(dist_dir: &Path) -> Result<Owned, String> {
    let text = read_listing(&dist_dir.join("manifest.json"))?;
    let manifest = Manifest::from_json(&text)
        .map_err(|_| "its manifest.json is not a castoff manifest".to_owned())?;
    let mut files: BTreeSet<PathBuf> = [
        "manifest.json",
        "SHA256SUMS",
        crate::publish::REPORT,
        crate::publish::REPORT_PARTIAL,
        "deploy/compose.yaml",
        "deploy/kubernetes.yaml",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    let mut trees = BTreeSet::new();
    for artifact in &manifest.artifacts {
        let Some(path) = artifact.path.as_deref().and_then(relative_path) else {
            continue;
        };
        if artifact.sha256.is_some() {
            files.insert(path);
        } else {
            // An image layout: a directory of castoff's blobs.
            trees.insert(path);
        }
    }
    if let Ok(sums) = read_listing(&dist_dir.join("SHA256SUMS")) {
        for line in sums.lines() {
            if let Some(path) = line.split_once("  ").and_then(|(_, p)| relative_path(p)) {
                files.insert(path);
            }
        }
    }
    let signatures: Vec<PathBuf> = files
        .iter()
        .map(|path| {
            let mut signature = path.clone().into_os_string();
            signature.push(".minisig");
            PathBuf::from(signature)
        })
        .collect();
    files.extend(signatures);
    Ok(Owned { files, trees })
}

/// A manifest-relative path without `..`, root or prefix components.
fn relative_path(text: &str) -> Option<PathBuf> {
    let path = Path::new(text);
    path.components()
        .all(|component| matches!(component, Component::Normal(_)))
        .then(|| path.to_owned())
}

fn read_listing(path: &Path) -> Result<String, String> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let metadata = fs::symlink_metadata(path).map_err(|_| format!("it has no {name}"))?;
    if !metadata.is_file() {
        return Err(format!("its {name} is not a regular file"));
    }
    if metadata.len() > MAX_LISTING_BYTES {
        return Err(format!("its {name} is larger than castoff writes"));
    }
    let mut text = String::new();
    File::open(path)
        .and_then(|file| file.take(MAX_LISTING_BYTES).read_to_string(&mut text))
        .map_err(|_| format!("its {name} is not readable text"))?;
    Ok(text)
}

/// Every path below `dir` (relative to the dist directory, as `relative`) that castoff did not
/// write. Empty directories count as castoff's: deleting one loses nothing.
fn list_foreign(
    dir: &Path,
    relative: &Path,
    owned: &Owned,
    foreign: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() && owned.trees.contains(&path) {
            if !only_regular_files(&entry.path())? {
                foreign.push(path);
            }
        } else if kind.is_dir() {
            list_foreign(&entry.path(), &path, owned, foreign)?;
        } else if !(kind.is_file() && owned.files.contains(&path)) {
            foreign.push(path);
        }
    }
    Ok(())
}

/// Whether `dir` holds nothing but directories and regular files (what an image layout holds).
fn only_regular_files(dir: &Path) -> std::io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let fine = if kind.is_dir() {
            only_regular_files(&entry.path())?
        } else {
            kind.is_file()
        };
        if !fine {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A staging directory beside the dist directory, under the dist directory's lock. Dropped
/// without [`Stage::commit`], it removes the staging directory and leaves the dist directory
/// as it was.
#[derive(Debug)]
pub(crate) struct Stage {
    dist_dir: PathBuf,
    staging: PathBuf,
    committed: bool,
    /// Held until the stage is dropped: the exclusive lock of this dist directory.
    _lock: File,
}

impl Stage {
    /// Checks `dist_dir` ([`check_dist_dir`]), takes its lock (waiting, with a line on
    /// `reporter`, while another castoff run holds it), repairs and sweeps what killed runs
    /// left beside it, and creates a fresh staging directory `.<dist>.castoff-staging-<pid>`.
    /// The lock file lives in `lock_dir` (the target directory's `castoff/locks/`), so nothing
    /// but the dist directory and its transient staging appear in the workspace.
    pub(crate) fn open(
        dist_dir: &Path,
        workspace_root: &Path,
        lock_dir: &Path,
        reporter: &dyn Reporter,
    ) -> anyhow::Result<Stage> {
        check_dist_dir(dist_dir, workspace_root)?;
        let parent = parent_of(dist_dir)?;
        fs::create_dir_all(&parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
        let lock = lock(dist_dir, &parent, lock_dir, reporter)?;
        // Under the lock: another run may have replaced the directory while this one waited.
        check_dist_dir(dist_dir, workspace_root)?;
        recover_and_sweep(dist_dir, &parent)?;
        let staging = sibling(dist_dir, &parent, "staging", std::process::id());
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)
            .with_context(|| format!("could not create {}", staging.display()))?;
        Ok(Stage {
            dist_dir: dist_dir.to_owned(),
            staging,
            committed: false,
            _lock: lock,
        })
    }

    /// [`Stage::open`] for `release`'s workspace, with the lock in its target directory.
    pub(crate) fn for_release(
        dist_dir: &Path,
        release: &castoff_plan::Release,
        reporter: &dyn Reporter,
    ) -> anyhow::Result<Stage> {
        Stage::open(
            dist_dir,
            &release.workspace_root,
            &release.target_directory.join("castoff/locks"),
            reporter,
        )
    }

    /// The staging directory the builders write into.
    pub(crate) fn path(&self) -> &Path {
        &self.staging
    }

    /// Replaces the dist directory with the staging directory (see the module documentation:
    /// a complete dist directory is in place at every instant), then releases the lock.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        kill_point("before");
        swap(&self.staging, &self.dist_dir)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

fn parent_of(dist_dir: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(dist_dir)
        .with_context(|| format!("could not resolve {}", dist_dir.display()))?;
    absolute
        .parent()
        .map(Path::to_owned)
        .with_context(|| format!("the dist directory {} has no parent", dist_dir.display()))
}

fn dist_name(dist_dir: &Path) -> String {
    dist_dir
        .file_name()
        .map_or_else(|| "dist".into(), |name| name.to_string_lossy().into_owned())
}

/// Whether `path` lies in one of the directories castoff keeps beside `dist_dir` while it
/// works (`.<dist>.castoff-staging-<pid>`, `.<dist>.castoff-old-<pid>`): transient, and this
/// run's artifacts-in-progress, which no other artifact may take for sources.
pub(crate) fn in_dist_sibling(dist_dir: &Path, path: &Path) -> bool {
    let Some(parent) = dist_dir.parent() else {
        return false;
    };
    let prefix = format!(".{}.castoff-", dist_name(dist_dir));
    path.strip_prefix(parent)
        .ok()
        .and_then(|rest| rest.components().next())
        .is_some_and(|first| first.as_os_str().to_string_lossy().starts_with(&prefix))
}

/// `.<dist>.castoff-<role>-<pid>` beside the dist directory.
fn sibling(dist_dir: &Path, parent: &Path, role: &str, pid: u32) -> PathBuf {
    parent.join(format!(".{}.castoff-{role}-{pid}", dist_name(dist_dir)))
}

/// Takes the exclusive lock of `dist_dir`: a file in `lock_dir` named after the dist
/// directory's resolved path, locked with the operating system's advisory file lock (released
/// by the kernel when the process ends, however it ends).
fn lock(
    dist_dir: &Path,
    parent: &Path,
    lock_dir: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<File> {
    let resolved = fs::canonicalize(parent)
        .unwrap_or_else(|_| parent.to_owned())
        .join(dist_name(dist_dir));
    let key = digest::hex(&digest::sha256(resolved.to_string_lossy().as_bytes()));
    fs::create_dir_all(lock_dir)
        .with_context(|| format!("could not create {}", lock_dir.display()))?;
    let path = lock_dir.join(format!("dist-{}.lock", &key[..16]));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            reporter.line(&format!(
                "waiting for another castoff run writing {} to finish",
                dist_dir.display()
            ));
            file.lock()
                .with_context(|| format!("could not lock {}", path.display()))?;
        }
        Err(fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("could not lock {}", path.display()));
        }
    }
    Ok(file)
}

/// Under the lock, every staging or aside directory of this dist directory belongs to a run
/// that ended (a live castoff run would hold the lock). An aside copy is the complete previous
/// dist: renamed back when no dist directory is in place (the run died between its two
/// renames), removed otherwise. Staging directories are removed. A directory whose process is
/// still alive (a castoff from before the lock) is left alone.
fn recover_and_sweep(dist_dir: &Path, parent: &Path) -> anyhow::Result<()> {
    let prefix = format!(".{}.castoff-", dist_name(dist_dir));
    let own = std::process::id();
    let mut leftovers: Vec<(String, u32, PathBuf)> = Vec::new();
    for entry in fs::read_dir(parent)
        .with_context(|| format!("could not list {}", parent.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((role, pid)) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(role, pid)| Some((role.to_owned(), pid.parse::<u32>().ok()?)))
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if !is_dir || !matches!(role.as_str(), "staging" | "old") {
            continue;
        }
        if pid != own && process_alive(pid) {
            continue;
        }
        leftovers.push((role, pid, entry.path()));
    }
    // The newest aside copy first: if several runs died, the last one's is the latest dist.
    leftovers.sort_by_key(|(role, _, path)| {
        (
            role != "old",
            std::cmp::Reverse(fs::metadata(path).and_then(|m| m.modified()).ok()),
        )
    });
    for (role, _, path) in leftovers {
        if role == "old" && fs::symlink_metadata(dist_dir).is_err() {
            fs::rename(&path, dist_dir).map_err(|error| {
                {
                    Hinted::new(
                        format!(
                            "could not restore the previous dist directory from {}",
                            path.display()
                        ),
                        format!("rename it to {} by hand", dist_dir.display()),
                    )
                }
                .because(error)
            })?;
        } else {
            fs::remove_dir_all(&path)
                .with_context(|| format!("could not remove the leftover {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Without a cheap liveness check, every leftover counts as dead: all runs that write a dist
/// directory hold its lock.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    false
}

fn swap(staging: &Path, dist_dir: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(dist_dir).is_err() {
        return fs::rename(staging, dist_dir).with_context(|| {
            format!("could not move the new artifacts to {}", dist_dir.display())
        });
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, staging, CWD, dist_dir, RenameFlags::EXCHANGE) {
            Ok(()) => {
                kill_point("exchanged");
                // The staging name now holds the previous dist; a run killed here leaves it
                // for the next run's sweep.
                let _ = fs::remove_dir_all(staging);
                return Ok(());
            }
            // Filesystems or kernels without the exchange: the two-rename way below.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(error) => {
                return Err(std::io::Error::from(error)).with_context(|| {
                    format!("could not move the new artifacts to {}", dist_dir.display())
                });
            }
        }
    }
    let parent = parent_of(dist_dir)?;
    let aside = sibling(dist_dir, &parent, "old", std::process::id());
    let _ = fs::remove_dir_all(&aside);
    fs::rename(dist_dir, &aside)
        .with_context(|| format!("could not move the previous {} aside", dist_dir.display()))?;
    kill_point("aside");
    if let Err(error) = fs::rename(staging, dist_dir) {
        let _ = fs::rename(&aside, dist_dir);
        return Err(error).with_context(|| {
            format!("could not move the new artifacts to {}", dist_dir.display())
        });
    }
    let _ = fs::remove_dir_all(&aside);
    Ok(())
}

/// Test hook (docs/testing.md): `CASTOFF_TEST_KILL_AT=dist-swap:<phase>` aborts the process,
/// as a SIGKILL would, `before` the swap, once the directories were `exchanged` (Linux), or
/// once the old directory was moved `aside` (the two-rename way). Unset, it does nothing.
/// Only in debug builds (what the tests run): a release build has no test hooks.
fn kill_point(phase: &str) {
    if cfg!(debug_assertions)
        && std::env::var("CASTOFF_TEST_KILL_AT")
            .is_ok_and(|spec| spec == format!("dist-swap:{phase}"))
    {
        std::process::abort();
    }
}
