//! `oci.files` on disk: each entry (a file, a directory tree or a glob) expanded into layer
//! entries, every source checked to be a regular file or directory inside the workspace, and
//! the whole bounded in count and size. `oci.volumes`: a directory owned by the image user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use castoff_archive::tar::OwnerFields;
use castoff_plan::plan::{App, ExtraFile, OciChannel};

use crate::error::OciError;
use crate::layer::{EntryContent, LayerEntry};

/// At most this many files across all of `oci.files`.
pub(crate) const MAX_FILES: usize = 10_000;
/// At most this many bytes across all of `oci.files`.
pub(crate) const MAX_TOTAL_BYTES: u64 = 1 << 30;
/// A glob looks at no more than this many directory entries (a `**` from the package root
/// would otherwise walk `target/`).
const MAX_WALKED: usize = 200_000;

const HINT_FILES: &str =
    "fix `src` in [package.metadata.castoff.oci.files] (it is relative to the package directory)";

/// The layer entries of `oci.files` and `oci.volumes`, volumes first (so a volume directory
/// keeps its owner when files go into it).
pub(crate) fn expand(
    workspace_root: &Path,
    app: &App,
    oci: &OciChannel,
) -> Result<Vec<LayerEntry>, OciError> {
    let mut entries = Vec::new();
    let (uid, gid) = oci.user_ids();
    for volume in &oci.volumes {
        entries.push(LayerEntry {
            path: volume.trim_start_matches('/').to_owned(),
            mode: 0o755,
            content: EntryContent::Directory,
            origin: format!("the volume `{volume}`"),
            owner: owner_fields((uid, gid)),
        });
    }
    if oci.files.is_empty() {
        return Ok(entries);
    }
    let workspace =
        fs::canonicalize(workspace_root).map_err(OciError::io("resolve", workspace_root))?;
    let mut budget = Budget::default();
    for file in &oci.files {
        let expander = Expander {
            app,
            file,
            workspace: &workspace,
        };
        expander.expand(&mut budget, &mut entries)?;
    }
    Ok(entries)
}

fn owner_fields((uid, gid): (u32, u32)) -> OwnerFields {
    match (uid, gid) {
        (0, 0) => OwnerFields::Zero,
        (uid, gid) => OwnerFields::Numeric { uid, gid },
    }
}

/// The state of one source's walk.
struct Walk<'a> {
    /// A glob's matcher; `None` for a directory source (everything).
    matcher: Option<&'a globset::GlobMatcher>,
    /// How many directory levels to descend: a glob's components without `**`.
    depth: usize,
    /// Entries looked at so far.
    walked: usize,
}

#[derive(Default)]
struct Budget {
    files: usize,
    bytes: u64,
}

struct Expander<'a> {
    app: &'a App,
    file: &'a ExtraFile,
    workspace: &'a Path,
}

impl Expander<'_> {
    fn refuse(&self, problem: String, hint: &str) -> OciError {
        OciError::ExtraFile {
            app: self.app.package.name.clone(),
            src: self.file.src.clone(),
            dst: self.file.dst.clone(),
            problem,
            hint: hint.to_owned(),
        }
    }

    fn expand(&self, budget: &mut Budget, entries: &mut Vec<LayerEntry>) -> Result<(), OciError> {
        let file = self.file;
        let metadata = match fs::symlink_metadata(&file.src) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.refuse(
                    "does not exist".to_owned(),
                    &format!("create it, or {HINT_FILES}"),
                ));
            }
            Err(error) => return Err(OciError::io("read the metadata of", &file.src)(error)),
        };
        if metadata.file_type().is_symlink() {
            return Err(self.refuse(
                "is a symbolic link".to_owned(),
                "point `src` at the file or directory itself: links are not followed, so nothing outside the workspace can end up in the image",
            ));
        }
        let resolved = fs::canonicalize(&file.src).map_err(OciError::io("resolve", &file.src))?;
        if !resolved.starts_with(self.workspace) {
            return Err(self.refuse(
                format!(
                    "resolves to `{}`, outside the workspace `{}` (a directory on the way is a symbolic link)",
                    resolved.display(),
                    self.workspace.display()
                ),
                "copy the file into the workspace and name that copy in `src`",
            ));
        }
        let dst = file.dst.trim_start_matches('/');
        if metadata.is_file() {
            if file.glob.is_some() {
                return Err(self.refuse(
                    "is a file, but a glob needs a directory before its first wildcard".to_owned(),
                    HINT_FILES,
                ));
            }
            return self.add_file(&file.src, &metadata, dst, budget, entries);
        }
        if !metadata.is_dir() {
            return Err(self.refuse(
                "is not a regular file or directory".to_owned(),
                "devices, FIFOs and sockets cannot be copied into an image; name regular files",
            ));
        }
        let matcher = match &file.glob {
            Some(pattern) => Some(
                globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|error| {
                        self.refuse(format!("has an invalid glob: {error}"), HINT_FILES)
                    })?
                    .compile_matcher(),
            ),
            None => None,
        };
        // A glob without `**` matches at one depth only: no need to look deeper.
        let depth = match &file.glob {
            Some(pattern) if !pattern.contains("**") => pattern.split('/').count(),
            _ => usize::MAX,
        };
        let mut found = Vec::new();
        let mut walk = Walk {
            matcher: matcher.as_ref(),
            depth,
            walked: 0,
        };
        self.walk(&file.src, "", 1, &mut walk, &mut found)?;
        if let Some(pattern) = &file.glob
            && !found.iter().any(|(_, is_dir, _)| !is_dir)
        {
            return Err(self.refuse(
                format!("matches no file with `{pattern}`"),
                "fix the pattern (`*` stays within a directory, `**/` crosses them), or remove the entry",
            ));
        }
        entries.push(self.directory(dst.to_owned()));
        for (relative, is_dir, metadata) in found {
            let path = format!("{dst}/{relative}");
            if is_dir {
                entries.push(self.directory(path));
            } else {
                // The directories between `dst` and a glob's match take `dir-mode` too.
                let mut parent = relative.as_str();
                while let Some((dir, _)) = parent.rsplit_once('/') {
                    entries.push(self.directory(format!("{dst}/{dir}")));
                    parent = dir;
                }
                self.add_file(&file.src.join(&relative), &metadata, &path, budget, entries)?;
            }
        }
        Ok(())
    }

    fn directory(&self, path: String) -> LayerEntry {
        LayerEntry {
            path,
            mode: self.file.dir_mode,
            content: EntryContent::Directory,
            origin: format!("the directory `{}`", self.file.src.display()),
            owner: owner_fields(self.file.owner),
        }
    }

    fn add_file(
        &self,
        source: &Path,
        metadata: &fs::Metadata,
        path: &str,
        budget: &mut Budget,
        entries: &mut Vec<LayerEntry>,
    ) -> Result<(), OciError> {
        budget.files += 1;
        budget.bytes += metadata.len();
        if budget.files > MAX_FILES {
            return Err(self.refuse(
                format!("brings the number of extra files over {MAX_FILES}"),
                "narrow `src` (a glob like `static/**/*.css`), or pack the files into an archive the service unpacks",
            ));
        }
        if budget.bytes > MAX_TOTAL_BYTES {
            return Err(self.refuse(
                format!("brings the extra files over {} MiB", MAX_TOTAL_BYTES >> 20),
                "leave large data out of the image: mount it as a volume (`oci.volumes`)",
            ));
        }
        let executable = metadata.permissions().mode() & 0o111 != 0;
        let mode = self
            .file
            .mode
            .unwrap_or(if executable { 0o755 } else { 0o644 });
        entries.push(LayerEntry {
            path: path.to_owned(),
            mode,
            content: EntryContent::File(source.to_owned()),
            origin: format!("the extra file `{}`", source.display()),
            owner: owner_fields(self.file.owner),
        });
        Ok(())
    }

    /// Collects `(path relative to the source, is a directory, metadata)` under `dir` in
    /// name order: every entry of a directory source; the matching files of a glob.
    fn walk(
        &self,
        dir: &Path,
        relative: &str,
        level: usize,
        walk: &mut Walk<'_>,
        found: &mut Vec<(String, bool, fs::Metadata)>,
    ) -> Result<(), OciError> {
        let matcher = walk.matcher;
        let mut names: Vec<PathBuf> = Vec::new();
        for item in fs::read_dir(dir).map_err(OciError::io("read the directory", dir))? {
            let item = item.map_err(OciError::io("read the directory", dir))?;
            names.push(item.path());
        }
        names.sort();
        for path in names {
            walk.walked += 1;
            if walk.walked > MAX_WALKED {
                return Err(self.refuse(
                    format!("has more than {MAX_WALKED} entries to look at"),
                    "start the glob deeper (`static/**/*.css`, not `**/*.css`)",
                ));
            }
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                return Err(self.refuse(
                    format!("holds `{}`, whose name is not UTF-8", path.display()),
                    "rename the file",
                ));
            };
            let rel = if relative.is_empty() {
                name.to_owned()
            } else {
                format!("{relative}/{name}")
            };
            let metadata =
                fs::symlink_metadata(&path).map_err(OciError::io("read the metadata of", &path))?;
            let wanted = matcher.is_none_or(|matcher| matcher.is_match(&rel));
            if metadata.is_dir() {
                if matcher.is_none() {
                    found.push((rel.clone(), true, metadata));
                }
                if level < walk.depth {
                    self.walk(&path, &rel, level + 1, walk, found)?;
                }
            } else if metadata.file_type().is_symlink() {
                // A link is refused when it matches, and when it leads to a directory the walk
                // would have entered (its matches would otherwise vanish without a word).
                let into_walked_dir =
                    level < walk.depth && fs::metadata(&path).is_ok_and(|m| m.is_dir());
                if !wanted && !into_walked_dir {
                    continue;
                }
                let target = fs::canonicalize(&path)
                    .map(|target| target.display().to_string())
                    .unwrap_or_else(|_| "nowhere".to_owned());
                let outside = !fs::canonicalize(&path).is_ok_and(|t| t.starts_with(self.workspace));
                return Err(self.refuse(
                    format!(
                        "holds the symbolic link `{}` (to {target}{})",
                        path.display(),
                        if outside { ", outside the workspace" } else { "" }
                    ),
                    "replace the link with the file itself: links are not followed, so nothing outside the workspace can end up in the image",
                ));
            } else if !wanted {
                continue;
            } else if !metadata.is_file() {
                return Err(self.refuse(
                    format!("holds `{}`, which is not a regular file", path.display()),
                    "remove the device, FIFO or socket from the tree, or narrow `src` with a glob",
                ));
            } else {
                found.push((rel, false, metadata));
            }
        }
        Ok(())
    }
}
