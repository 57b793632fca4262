//! Cargo and git, as `dist` runs them: this machine's target, `cargo build` of every app
//! and target (or the binaries already built, with `--no-build`; none for the targets whose
//! binaries were supplied, prebuilt.rs), the commit being released.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use castoff_plan::{App, AppId, BuildTool, Release, Target};

use crate::hint::Hinted;
use crate::prebuilt::BinarySource;
use crate::report::Reporter;

/// The triple `rustc` builds for by default on this machine.
pub fn host_target() -> anyhow::Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("could not run `rustc -vV` to find this machine's target")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}

/// The compiled binaries of one app for one target.
#[derive(Debug, Clone)]
pub(crate) struct BuiltBinaries {
    pub(crate) app: AppId,
    pub(crate) target: &'static str,
    /// `(bin name, path)`, in the app's `bins` order (what the builders take).
    pub(crate) paths: Vec<(String, PathBuf)>,
    /// Cargo's, or supplied (with the digests they were checked with).
    pub(crate) source: BinarySource,
}

/// Every app's binaries for every target of the release.
pub(crate) type Binaries = Vec<BuiltBinaries>;

/// Every app's binaries for every target: `supplied` (prebuilt.rs) where given, otherwise
/// built by cargo (or, with `no_build`, found in its output directory).
pub(crate) fn binaries(
    release: &Release,
    no_build: bool,
    supplied: Binaries,
    reporter: &dyn Reporter,
) -> anyhow::Result<Binaries> {
    let mut all = Vec::new();
    // One lookup per build, not a scan of the supplied ones.
    let supplied: std::collections::HashMap<(AppId, &str), BuiltBinaries> = supplied
        .into_iter()
        .map(|given| ((given.app, given.target), given))
        .collect();
    for (index, app) in release.apps.iter().enumerate() {
        for &target in &app.targets {
            if let Some(given) = supplied.get(&(AppId(index), target.triple)) {
                all.push(given.clone());
                continue;
            }
            if !no_build {
                reporter.child_output(&format!(
                    "compiling {} for {}",
                    app.package.name, target.triple
                ));
                cargo_build(release, index, target)?;
            }
            let build = app.build(target);
            let dir = release
                .target_directory
                .join(target.triple)
                .join(build.profile_dir());
            let mut paths = Vec::new();
            for bin in &app.bins {
                let path = dir.join(target.executable_name(bin));
                if !path.is_file() {
                    bail!(Hinted::new(
                        format!(
                            "binary `{bin}` for {} is missing at {}",
                            target.triple,
                            path.display()
                        ),
                        format!(
                            "build it with `{}`, or run `dist` without --no-build",
                            shown_command(app, target)
                        )
                    ));
                }
                paths.push((bin.clone(), path));
            }
            all.push(BuiltBinaries {
                app: AppId(index),
                target: target.triple,
                paths,
                source: BinarySource::Cargo,
            });
        }
    }
    Ok(all)
}

/// `cargo build` (or `cargo zigbuild`) of one app for one target, with its build settings.
fn build_command(app: &App, target: &Target) -> Command {
    let settings = app.build(target);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg(match settings.tool {
        BuildTool::Cargo => "build",
        BuildTool::Zigbuild => "zigbuild",
    });
    command
        .arg("--profile")
        .arg(&settings.profile)
        .arg("--manifest-path")
        .arg(&app.package.manifest_path)
        .arg("--target")
        .arg(settings.target_arg(target.triple))
        .args(settings.feature_args());
    for bin in &app.bins {
        command.arg("--bin").arg(bin);
    }
    command.args(&settings.cargo_args);
    command.envs(&settings.build_env);
    if settings.crt_static {
        // With an explicit --target these flags reach only the target's artifacts, never
        // build scripts or proc-macros (which cannot be static).
        let flag = "-C target-feature=+crt-static";
        let configured = |name: &str| {
            settings
                .build_env
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        };
        match configured("RUSTFLAGS") {
            Some(flags) => {
                command.env("RUSTFLAGS", format!("{flags} {flag}"));
            }
            None => {
                let name = target_rustflags_variable(target);
                let flags =
                    configured(&name).map_or_else(|| flag.to_owned(), |f| format!("{f} {flag}"));
                command.env(name, flags);
            }
        }
    }
    command
}

fn target_rustflags_variable(target: &Target) -> String {
    format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        target.triple.to_uppercase().replace('-', "_")
    )
}

/// The build as a user would type it in a shell: for hints, and for `--no-build` users who
/// build by hand.
pub(crate) fn shown_command(app: &App, target: &Target) -> String {
    let command = build_command(app, target);
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(name, value)| {
            Some(format!(
                "{}={}",
                name.to_string_lossy(),
                shell_quote(&value?.to_string_lossy())
            ))
        })
        .collect();
    words.push("cargo".to_owned());
    words.extend(
        command
            .get_args()
            .map(|arg| shell_quote(&arg.to_string_lossy())),
    );
    words.join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn cargo_build(release: &Release, app: usize, target: &Target) -> anyhow::Result<()> {
    let app = &release.apps[app];
    let mut command = build_command(app, target);
    let status = command
        .status()
        .with_context(|| format!("could not run cargo to build {}", app.package.name))?;
    if !status.success() {
        bail!(Hinted::new(
            format!(
                "`{}` failed for package `{}`",
                shown_command(app, target),
                app.package.name
            ),
            "fix the build error above; for a target this machine cannot build, run `dist --target <triple>` on a machine that can (see `plan --format github-matrix`), or pass a binary built elsewhere with `dist --prebuilt`"
        ));
    }
    Ok(())
}

/// `(bin name, path)` of every binary built for `app` and `target`.
pub(crate) fn binaries_for(
    binaries: &Binaries,
    app: AppId,
    target: &Target,
) -> Vec<(String, PathBuf)> {
    binaries
        .iter()
        .find(|built| built.app == app && built.target == target.triple)
        .map(|built| built.paths.clone())
        .unwrap_or_default()
}

/// The commit being released and how the working tree differs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// Tracked files with uncommitted changes (modified, staged, deleted, renamed), relative to
    /// the repository's top directory, sorted. Untracked and ignored files do not count, nor
    /// anything under the dist or target directory.
    pub changed_files: Vec<String>,
}

impl Revision {
    /// What the images record as `org.opencontainers.image.revision`: the commit, with
    /// `-dirty` when tracked files differ from it (as `git describe --dirty` marks it).
    pub fn label(&self) -> String {
        if self.changed_files.is_empty() {
            self.commit.clone()
        } else {
            format!("{}-dirty", self.commit)
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.changed_files.is_empty()
    }
}

/// The commit being released, for the image's `revision` annotation, and the tracked files
/// that differ from it outside `outputs` (the dist and target directories); none outside git
/// or before the first commit.
pub(crate) fn git_revision(workspace_root: &Path, outputs: &[&Path]) -> Option<Revision> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(workspace_root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
    };
    let output = git(&["rev-parse", "--show-toplevel", "HEAD"])?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let top = PathBuf::from(lines.next()?);
    let commit = lines.next()?.trim().to_owned();
    if commit.is_empty() {
        return None;
    }
    // Porcelain v1 with NUL separators: `XY path`, and for renames and copies the original
    // path as the next field. `--untracked-files=no`: a file git does not track is not part
    // of any commit, so it cannot make the tree differ from HEAD.
    let status = git(&[
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=no",
        "--ignore-submodules=none",
    ])?;
    let outputs: Vec<PathBuf> = outputs
        .iter()
        .map(|dir| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
        .collect();
    let mut changed_files = Vec::new();
    let mut fields = status.stdout.split(|byte| *byte == 0);
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        if matches!(field[0], b'R' | b'C') {
            fields.next();
        }
        let path = String::from_utf8_lossy(&field[3..]).into_owned();
        let full = top.join(&path);
        if outputs.iter().any(|dir| full.starts_with(dir)) {
            continue;
        }
        changed_files.push(path);
    }
    changed_files.sort();
    changed_files.dedup();
    Some(Revision {
        commit,
        changed_files,
    })
}

/// The commit time of HEAD (`git log -1 --format=%ct`) of the repository holding the
/// workspace; none outside git or before the first commit.
pub(crate) fn git_commit_time(workspace_root: &Path) -> Option<u64> {
    let output = Command::new("git")
        .arg("-C")
        .arg(workspace_root)
        .args(["log", "-1", "--format=%ct", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    std::str::from_utf8(&output.stdout)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The custom profiles (not `dev`, `release`, `test` or `bench`) the builds of `building` use
/// that nothing defines: neither the workspace's `Cargo.toml`, nor a `.cargo/config.toml` Cargo
/// would read from here, nor `CARGO_PROFILE_<NAME>_INHERITS`. Cargo would refuse each at the
/// start of that build; found here, they are all reported before the first one.
pub(crate) fn undefined_profiles(
    release: &Release,
    building: &[(AppId, &'static Target)],
) -> Vec<Hinted> {
    let mut wanted: Vec<&str> = Vec::new();
    for (app, target) in building {
        let profile = release.apps[app.0].build(target).profile.as_str();
        if !["dev", "release", "test", "bench"].contains(&profile) && !wanted.contains(&profile) {
            wanted.push(profile);
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let manifest = release.workspace_root.join("Cargo.toml");
    let mut files = vec![manifest.clone()];
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            files.push(dir.join(".cargo/config.toml"));
            files.push(dir.join(".cargo/config"));
        }
    }
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
    {
        files.push(home.join("config.toml"));
        files.push(home.join("config"));
    }
    let mut defined: Vec<String> = Vec::new();
    for file in &files {
        // Cargo's own files, bounded like every file castoff reads; one it cannot read or
        // parse is left for Cargo to complain about.
        let Ok(bytes) = castoff_archive::foreign::read_regular(file, 16 << 20) else {
            continue;
        };
        let Ok(table) = toml::from_slice::<toml::Table>(&bytes) else {
            continue;
        };
        if let Some(profiles) = table.get("profile").and_then(toml::Value::as_table) {
            defined.extend(profiles.keys().cloned());
        }
    }
    wanted
        .into_iter()
        .filter(|profile| {
            let variable = format!(
                "CARGO_PROFILE_{}_INHERITS",
                profile.to_uppercase().replace('-', "_")
            );
            !defined.iter().any(|name| name == profile) && std::env::var_os(variable).is_none()
        })
        .map(|profile| {
            Hinted::new(
                format!(
                    "the Cargo profile `{profile}` (`profile` in [workspace|package.metadata.castoff]) is not defined in {}",
                    manifest.display()
                ),
                format!(
                    "add it to that file, e.g. `[profile.{profile}]` with `inherits = \"release\"`, or set `profile` to a profile that exists"
                ),
            )
            .bad_input()
        })
        .collect()
}
