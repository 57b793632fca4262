//! The Rust sources of an app's sdist: the package and the path dependencies it reaches
//! inside the workspace, each with the files `cargo package --list` names for it, the
//! workspace `Cargo.toml` trimmed to those packages, and `Cargo.lock`.
//!
//! Cargo is asked (`cargo package --list --allow-dirty --offline`, about 30 ms a package)
//! rather than its rules re-implemented: `include`/`exclude`, `.gitignore` and the git index,
//! sub-packages and the target directory are all Cargo's decisions, and they change between
//! Cargo versions. Files Cargo generates for a `.crate` (`Cargo.toml.orig`,
//! `.cargo_vcs_info.json`, a normalized `Cargo.toml`, a package's own `Cargo.lock`) are left
//! out: the sdist holds the workspace as written, which the build then reads in place.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use castoff_plan::{App, Release};
use castoff_wheel::sdist::SourceFile;

use crate::hint::Hinted;

/// What [`gather`] found.
#[derive(Debug)]
pub(crate) struct Sources {
    /// The app's `Cargo.toml` relative to the sdist's top directory.
    pub(crate) manifest_path: String,
    pub(crate) files: Vec<SourceFile>,
    /// Files Cargo lists that git does not track (in a git checkout): left out, since they are
    /// not the commit's sources and may be anything lying about, secrets included.
    pub(crate) untracked: Vec<String>,
}

/// The sources of `app`'s sdist. `dist_dir` is left out wherever it is.
pub(crate) fn gather(release: &Release, app: &App, dist_dir: &Path) -> anyhow::Result<Sources> {
    let root = &release.workspace_root;
    let included = reached_packages(release, app)?;
    let dist_dir = std::path::absolute(dist_dir).unwrap_or_else(|_| dist_dir.to_owned());
    let excluded_dirs = [release.target_directory.clone(), dist_dir.clone()];
    let mut files: Vec<SourceFile> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // Only where the workspace is committed: a workspace git does not track (a scratch copy
    // inside another repository's ignored directory) has no commit to compare with.
    let tracked = git_tracked(root).filter(|tracked| tracked.contains("Cargo.toml"));
    let mut untracked: Vec<String> = Vec::new();
    let real_root = fs::canonicalize(root).unwrap_or_else(|_| root.clone());
    let mut add = |absolute: &Path, files: &mut Vec<SourceFile>| -> anyhow::Result<()> {
        let Some(relative) = relative_inside(root, absolute) else {
            return Ok(());
        };
        // The dist directory, and the staging directory this very run is filling beside it
        // (Cargo lists it: an untracked directory `.gitignore`'s `/dist` does not cover).
        if excluded_dirs.iter().any(|dir| absolute.starts_with(dir))
            || crate::stage::in_dist_sibling(&dist_dir, absolute)
            || relative.split('/').any(|part| part == ".git")
            || !seen.insert(relative.clone())
        {
            return Ok(());
        }
        if tracked
            .as_ref()
            .is_some_and(|tracked| !tracked.contains(&relative))
        {
            untracked.push(relative);
            return Ok(());
        }
        // A link is followed only to a file inside the workspace: one pointing elsewhere
        // (`creds -> ~/.aws/credentials`) would publish whatever it names.
        let link = fs::symlink_metadata(absolute)
            .with_context(|| format!("could not read {}", absolute.display()))?;
        if link.file_type().is_symlink() {
            let target = fs::canonicalize(absolute).ok();
            if !target
                .as_ref()
                .is_some_and(|target| target.starts_with(&real_root))
            {
                bail!(Hinted::new(
                    format!(
                        "cannot build the source distribution: {} is a symbolic link to {}, outside the workspace at {}",
                        absolute.display(),
                        target.map_or_else(
                            || "a path that does not exist".to_owned(),
                            |t| t.display().to_string()
                        ),
                        root.display()
                    ),
                    "replace the link with the file, leave it out with `exclude` in its package's Cargo.toml, or set `python.sdist = false` in [package.metadata.castoff]",
                ));
            }
        }
        let metadata = fs::metadata(absolute)
            .with_context(|| format!("could not read {}", absolute.display()))?;
        if !metadata.is_file() {
            return Ok(());
        }
        let contents =
            fs::read(absolute).with_context(|| format!("could not read {}", absolute.display()))?;
        files.push(SourceFile {
            path: relative,
            mode: if is_executable(&metadata) {
                0o755
            } else {
                0o644
            },
            contents,
        });
        Ok(())
    };

    let root_manifest = root.join("Cargo.toml");
    for package in &included {
        let directory = directory_of(package);
        for listed in cargo_package_list(package.manifest_path.as_std_path())? {
            if matches!(
                listed.as_str(),
                ".cargo_vcs_info.json" | "Cargo.toml.orig" | "Cargo.lock"
            ) {
                continue;
            }
            let path = directory.join(&listed);
            if path == root_manifest {
                continue; // written trimmed below
            }
            // A file Cargo copies in from elsewhere (a `readme` or `license-file` outside the
            // package) is not at `path`: it is added from where it is, below.
            if path.is_file() {
                add(&path, &mut files)?;
            }
        }
        for outside in [&package.readme, &package.license_file]
            .into_iter()
            .flatten()
        {
            let path = normalize(&directory.join(outside.as_std_path()));
            if path.is_file() && path != root_manifest {
                add(&path, &mut files)?;
            }
        }
    }

    // The workspace manifest, trimmed to the packages in the sdist.
    let member_dirs: Vec<String> = included
        .iter()
        .filter_map(|package| relative_inside(root, &directory_of(package)))
        .filter(|dir| !dir.is_empty())
        .collect();
    files.push(SourceFile {
        path: "Cargo.toml".to_owned(),
        mode: 0o644,
        contents: trimmed_workspace_manifest(&root_manifest, member_dirs)?.into_bytes(),
    });
    let lock = root.join("Cargo.lock");
    let lock_contents = fs::read(&lock).map_err(|error| {
        Hinted::new(
            format!(
                "cannot build the source distribution of `{}`: could not read {}: {error}",
                app.package.name,
                lock.display()
            ),
            "run `cargo generate-lockfile` (a source build needs the versions the wheels were built with), or set `python.sdist = false`",
        )
    })?;
    files.push(SourceFile {
        path: "Cargo.lock".to_owned(),
        mode: 0o644,
        contents: lock_contents,
    });

    let manifest_path = relative_inside(root, &app.package.manifest_path)
        .context("internal error: the app's manifest is outside the workspace")?;
    untracked.sort();
    Ok(Sources {
        manifest_path,
        files,
        untracked,
    })
}

/// The directory of a package (where its `Cargo.toml` is).
fn directory_of(package: &cargo_metadata::Package) -> PathBuf {
    package
        .manifest_path
        .parent()
        .map(|dir| dir.as_std_path().to_owned())
        .unwrap_or_default()
}

/// The directories of the packages in `app`'s sdist (the dist cache hashes their files).
pub(crate) fn package_directories(release: &Release, app: &App) -> anyhow::Result<Vec<PathBuf>> {
    Ok(reached_packages(release, app)?
        .iter()
        .map(directory_of)
        .collect())
}

/// `app`'s package and every workspace package it reaches by path (any dependency kind:
/// Cargo loads the manifests of dev-dependencies too), the app first. A path dependency
/// outside the workspace is an error naming both packages and the fix.
fn reached_packages(release: &Release, app: &App) -> anyhow::Result<Vec<cargo_metadata::Package>> {
    let root = &release.workspace_root;
    let metadata =
        crate::workspace::metadata(Some(&root.join("Cargo.toml"))).map_err(
            |error| match error {
                crate::workspace::LoadError::Cargo(error)
                | crate::workspace::LoadError::Host(error) => error,
                crate::workspace::LoadError::Config(error) => anyhow::anyhow!("{error}"),
            },
        )?;
    let members: Vec<&cargo_metadata::Package> = metadata.workspace_packages();
    let Some(start) = members
        .iter()
        .find(|package| package.manifest_path.as_std_path() == app.package.manifest_path)
    else {
        bail!(
            "internal error: package `{}` is not a member of the workspace's `cargo metadata`",
            app.package.name
        );
    };
    let mut included: Vec<&cargo_metadata::Package> = vec![start];
    // A package at the workspace root is a member whatever `members` says: Cargo loads it
    // (and its path dependencies) to build any other, so the sdist holds it too.
    if let Some(root_package) = members.iter().find(|package| {
        package.manifest_path.as_std_path() == root.join("Cargo.toml") && package.id != start.id
    }) {
        included.push(root_package);
    }
    let mut next = 0;
    while next < included.len() {
        let package = included[next];
        next += 1;
        for dependency in &package.dependencies {
            let Some(path) = &dependency.path else {
                continue;
            };
            let member = members
                .iter()
                .find(|member| directory_of(member) == path.as_std_path());
            let inside = path.as_std_path().starts_with(root);
            match member {
                Some(member) if inside => {
                    if !included.iter().any(|known| known.id == member.id) {
                        included.push(member);
                    }
                }
                _ => bail!(Hinted::new(
                    format!(
                        "cannot build the source distribution of `{}`: package `{}` depends on `{}` by path at {}, which is outside the workspace at {}, so the sdist cannot hold it",
                        app.package.name,
                        package.name,
                        dependency.name,
                        path,
                        root.display()
                    ),
                    format!(
                        "set `python.sdist = false` in [package.metadata.castoff] of `{}` (the wheels are built as before), or move `{}` into the workspace as a member",
                        app.package.name, dependency.name
                    ),
                )),
            }
        }
    }
    Ok(included.into_iter().cloned().collect())
}

/// The files git tracks under `root` (paths relative to it, `/`-separated), or None outside a
/// git checkout (or without git): then Cargo's list is taken as it is.
fn git_tracked(root: &Path) -> Option<BTreeSet<String>> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--cached"])
        .current_dir(root)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|path| !path.is_empty())
            .filter_map(|path| std::str::from_utf8(path).ok())
            .map(str::to_owned)
            .collect(),
    )
}

/// `cargo package --list` of one package: paths relative to its directory.
fn cargo_package_list(manifest_path: &Path) -> anyhow::Result<Vec<String>> {
    let mut last_error = String::new();
    // Offline first (dist opens no socket); once more online when Cargo wants an index.
    for offline in [true, false] {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["package", "--list", "--allow-dirty", "--quiet"])
            .arg("--manifest-path")
            .arg(manifest_path);
        if offline {
            command.arg("--offline");
        }
        let output = command
            .output()
            .context("could not run `cargo package --list` for the sdist")?;
        if output.status.success() {
            let text = String::from_utf8(output.stdout)
                .context("`cargo package --list` printed a path that is not UTF-8")?;
            return Ok(text
                .lines()
                .map(|line| line.trim().replace('\\', "/"))
                .filter(|line| !line.is_empty())
                .collect());
        }
        last_error = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    }
    bail!(Hinted::new(
        format!(
            "`cargo package --list --manifest-path {}` failed, so the sdist's files are unknown:\n{last_error}",
            manifest_path.display()
        ),
        "fix what Cargo reports, or set `python.sdist = false` in [package.metadata.castoff]",
    ))
}

/// The workspace's `Cargo.toml` with `workspace.members` the packages of the sdist, and no
/// `default-members` or `exclude`; everything the packages inherit (`[workspace.package]`,
/// `[workspace.dependencies]`, `[workspace.lints]`, profiles, patches) stays.
fn trimmed_workspace_manifest(path: &Path, members: Vec<String>) -> anyhow::Result<String> {
    let text =
        fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("could not parse {}", path.display()))?;
    if let Some(toml::Value::Table(workspace)) = manifest.get_mut("workspace") {
        workspace.remove("default-members");
        workspace.remove("exclude");
        workspace.insert(
            "members".to_owned(),
            toml::Value::Array(members.into_iter().map(toml::Value::String).collect()),
        );
    }
    let trimmed = toml::to_string(&manifest)
        .with_context(|| format!("could not write the trimmed {}", path.display()))?;
    Ok(format!(
        "# The workspace manifest, trimmed by castoff to the packages of this source distribution.\n{trimmed}"
    ))
}

/// `path` relative to `root`, `/`-separated, when it is inside it (`""` for `root` itself).
fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let relative = normalize(path).strip_prefix(root).ok()?.to_owned();
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(unix)]
fn is_executable(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}
