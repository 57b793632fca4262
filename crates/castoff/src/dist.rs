//! `dist`: executes the artifact half of the plan. Compiles (or picks up) the binaries, runs
//! the builders into a staging directory, writes `manifest.json` and `SHA256SUMS`, then swaps
//! the staging directory into place, so `dist/` is never half-written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use castoff_archive::digest;
use castoff_plan::manifest::ManifestArtifact;
use castoff_plan::{AppId, ArtifactKind, Manifest, Release, Target};

/// How to run `dist`.
#[derive(Debug, Clone)]
pub struct DistOptions {
    /// Where the artifacts go (default `<workspace>/dist`).
    pub dist_dir: PathBuf,
    /// Package binaries already built instead of running `cargo build`.
    pub no_build: bool,
    /// `SOURCE_DATE_EPOCH`: every timestamp in every artifact.
    pub source_date_epoch: u64,
}

/// What `dist` produced.
#[derive(Debug)]
pub struct DistOutcome {
    pub dist_dir: PathBuf,
    pub manifest: Manifest,
    /// Things the user should know (debug info shipped, channels not built yet).
    pub warnings: Vec<String>,
}

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

/// `SOURCE_DATE_EPOCH` from the environment, or a fixed default so that builds are
/// reproducible even when nobody sets it (npm's 1985-10-26, as `npm pack` uses).
pub fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH=`{value}` is not a number of seconds\nhint: set it to a Unix timestamp, e.g. `git log -1 --format=%ct`")
        }),
        Err(_) => Ok(castoff_archive::NPM_EPOCH),
    }
}

/// Builds every artifact of `release` into `options.dist_dir`.
pub fn dist(release: &Release, options: &DistOptions) -> anyhow::Result<DistOutcome> {
    let binaries = binaries(release, options.no_build)?;

    let parent = options
        .dist_dir
        .parent()
        .context("the dist directory has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("could not create {}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}.castoff-staging-{}",
        options
            .dist_dir
            .file_name()
            .map_or("dist".into(), |name| name.to_string_lossy()),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)
        .with_context(|| format!("could not create {}", staging.display()))?;
    let result = build_into(release, options, &binaries, &staging);
    match result {
        Ok((manifest, warnings)) => {
            swap_into_place(&staging, &options.dist_dir)?;
            Ok(DistOutcome {
                dist_dir: options.dist_dir.clone(),
                manifest,
                warnings,
            })
        }
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// Compiled binaries per (app, target): `(bin name, path)`.
type Binaries = Vec<((AppId, &'static str), Vec<(String, PathBuf)>)>;

fn binaries(release: &Release, no_build: bool) -> anyhow::Result<Binaries> {
    let mut all = Vec::new();
    for (index, app) in release.apps.iter().enumerate() {
        for &target in &app.targets {
            if !no_build {
                cargo_build(release, index, target)?;
            }
            let dir = release.target_directory.join(target.triple).join("release");
            let mut paths = Vec::new();
            for bin in &app.bins {
                let path = dir.join(target.executable_name(bin));
                if !path.is_file() {
                    bail!(
                        "binary `{bin}` for {} is missing at {}\nhint: build it with `cargo build --release --target {} -p {}`, or run `dist` without --no-build",
                        target.triple,
                        path.display(),
                        target.triple,
                        app.package.name
                    );
                }
                paths.push((bin.clone(), path));
            }
            all.push(((AppId(index), target.triple), paths));
        }
    }
    Ok(all)
}

fn cargo_build(release: &Release, app: usize, target: &Target) -> anyhow::Result<()> {
    let app = &release.apps[app];
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(&app.package.manifest_path)
        .arg("--target")
        .arg(target.triple);
    for bin in &app.bins {
        command.arg("--bin").arg(bin);
    }
    if app.crt_static && target.libc == Some(castoff_plan::target::Libc::Glibc) {
        // With an explicit --target these flags reach only the target's artifacts, never
        // build scripts or proc-macros (which cannot be static).
        let flag = "-C target-feature=+crt-static";
        match std::env::var("RUSTFLAGS") {
            Ok(flags) => {
                command.env("RUSTFLAGS", format!("{flags} {flag}"));
            }
            Err(_) => {
                let name = format!(
                    "CARGO_TARGET_{}_RUSTFLAGS",
                    target.triple.to_uppercase().replace('-', "_")
                );
                let flags = std::env::var(&name)
                    .map_or_else(|_| flag.to_owned(), |f| format!("{f} {flag}"));
                command.env(name, flags);
            }
        }
    }
    let status = command
        .status()
        .with_context(|| format!("could not run cargo to build {}", app.package.name))?;
    if !status.success() {
        bail!(
            "`cargo build --release --target {}` failed for package `{}`\nhint: fix the build error above; for a target this machine cannot build, run `dist --target <triple>` on a machine that can (see `plan --format github-matrix`)",
            target.triple,
            app.package.name
        );
    }
    Ok(())
}

fn build_into(
    release: &Release,
    options: &DistOptions,
    binaries: &Binaries,
    staging: &Path,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let mut manifest = Manifest::from_release(release, env!("CARGO_PKG_VERSION"));
    let mut warnings = Vec::new();
    let binaries_of = |app: AppId, target: &Target| {
        binaries
            .iter()
            .find(|((a, t), _)| *a == app && *t == target.triple)
            .map(|(_, paths)| paths.clone())
            .unwrap_or_default()
    };
    let revision = git_revision(&release.workspace_root);
    let mut built_indexes: Vec<(AppId, castoff_oci::BuiltIndex)> = Vec::new();
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let entry = &mut manifest.artifacts[index];
        let app = &release.apps[artifact.app.0];
        match (artifact.kind, artifact.target) {
            (ArtifactKind::Binary, Some(target)) => {
                // Binaries are inputs, not shipped files: record their digest for provenance.
                let paths = binaries_of(artifact.app, target);
                if let [(_, path)] = paths.as_slice() {
                    let file = fs::File::open(path)
                        .with_context(|| format!("could not read {}", path.display()))?;
                    let (sha, size) = digest::sha256_reader(file)?;
                    entry.sha256 = Some(digest::hex(&sha));
                    entry.size = Some(size);
                }
            }
            (ArtifactKind::Wheel, Some(target)) => {
                let dir = staging.join("python");
                fs::create_dir_all(&dir)?;
                let wheel = castoff_wheel::build_wheel(
                    &castoff_wheel::WheelInput {
                        release,
                        app: artifact.app,
                        target,
                        binaries: binaries_of(artifact.app, target),
                        source_date_epoch: options.source_date_epoch,
                    },
                    &dir,
                )
                .with_context(|| {
                    format!(
                        "could not build the wheel of {} for {}",
                        app.package.name, target.triple
                    )
                })?;
                warnings.extend(wheel.warnings.iter().cloned());
                record(entry, staging, &wheel.path, wheel.size, &wheel.sha256, None);
            }
            (ArtifactKind::NpmPlatform, Some(target)) => {
                let dir = staging.join("npm");
                fs::create_dir_all(&dir)?;
                let package = castoff_npm::build_platform_package(
                    &castoff_npm::PlatformInput {
                        release,
                        app: artifact.app,
                        target,
                        binaries: binaries_of(artifact.app, target),
                    },
                    &dir,
                )
                .with_context(|| {
                    format!(
                        "could not build the npm package of {} for {}",
                        app.package.name, target.triple
                    )
                })?;
                record(
                    entry,
                    staging,
                    &package.path,
                    package.size,
                    &package.sha256,
                    Some(package.integrity),
                );
            }
            (ArtifactKind::NpmLauncher, _) => {
                let dir = staging.join("npm");
                fs::create_dir_all(&dir)?;
                let package = castoff_npm::build_launcher(
                    &castoff_npm::LauncherInput {
                        release,
                        app: artifact.app,
                        targets: app.targets.clone(),
                    },
                    &dir,
                )
                .with_context(|| {
                    format!("could not build the npm launcher of {}", app.package.name)
                })?;
                record(
                    entry,
                    staging,
                    &package.path,
                    package.size,
                    &package.sha256,
                    Some(package.integrity),
                );
            }
            (ArtifactKind::OciImage, Some(_)) => {
                // Built with the index, which needs every platform at once.
            }
            (ArtifactKind::OciIndex, _) => {
                let inputs = artifact
                    .inputs
                    .iter()
                    .filter_map(|input| release.artifacts[input.0].target)
                    .map(|target| castoff_oci::ImageInput {
                        target,
                        binaries: binaries_of(artifact.app, target),
                    })
                    .collect();
                let built = castoff_oci::build_images(
                    release,
                    artifact.app,
                    inputs,
                    &castoff_oci::ImageOptions {
                        source_date_epoch: options.source_date_epoch,
                        revision: revision.clone(),
                    },
                    staging,
                )
                .with_context(|| format!("could not build the image of {}", app.package.name))?;
                let layout = built
                    .layout_dir
                    .strip_prefix(staging)
                    .unwrap_or(&built.layout_dir);
                entry.path = Some(layout.to_string_lossy().replace('\\', "/"));
                entry.size = Some(built.index_size);
                entry.digest = Some(built.index_digest.clone());
                for image in &built.images {
                    let image_entry = manifest
                        .artifacts
                        .iter_mut()
                        .find(|a| {
                            a.kind == "oci-image"
                                && a.app == app.package.name
                                && a.target.as_deref() == Some(image.target.triple)
                        })
                        .context("internal error: an image the plan does not know")?;
                    record(
                        image_entry,
                        staging,
                        &image.archive,
                        image.archive_size,
                        &image.archive_sha256,
                        Some(image.manifest_digest.clone()),
                    );
                }
                built_indexes.push((artifact.app, built));
            }
            (kind, None) => bail!(
                "internal error: {} artifact without a target",
                kind.as_str()
            ),
        }
    }
    if !built_indexes.is_empty() {
        let indexes: Vec<(AppId, &castoff_oci::BuiltIndex)> = built_indexes
            .iter()
            .map(|(app, built)| (*app, built))
            .collect();
        castoff_oci::write_deploy_examples(release, &indexes, staging)
            .context("could not write the deploy examples")?;
    }
    write_checksums(&manifest, staging)?;
    fs::write(staging.join("manifest.json"), manifest.to_json())?;
    Ok((manifest, warnings))
}

fn record(
    entry: &mut ManifestArtifact,
    staging: &Path,
    path: &Path,
    size: u64,
    sha256: &str,
    digest: Option<String>,
) {
    let relative = path.strip_prefix(staging).unwrap_or(path);
    entry.path = Some(relative.to_string_lossy().replace('\\', "/"));
    entry.size = Some(size);
    entry.sha256 = Some(sha256.to_owned());
    entry.digest = digest;
}

/// The commit being released, for the image's `revision` annotation; none outside git.
fn git_revision(workspace_root: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(workspace_root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

/// `SHA256SUMS` in the format `sha256sum -c` reads: `<hex>  <path>`, sorted by path.
fn write_checksums(manifest: &Manifest, staging: &Path) -> anyhow::Result<()> {
    let mut lines: Vec<(String, String)> = manifest
        .artifacts
        .iter()
        .filter_map(|a| Some((a.path.clone()?, a.sha256.clone()?)))
        .collect();
    lines.sort();
    let text: String = lines
        .iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect();
    fs::write(staging.join("SHA256SUMS"), text)?;
    Ok(())
}

/// Replaces `dist_dir` with `staging`: the old directory is moved aside first and removed
/// last, so at every moment `dist_dir` is either the complete old or the complete new one.
fn swap_into_place(staging: &Path, dist_dir: &Path) -> anyhow::Result<()> {
    let old = staging.with_extension("old");
    let _ = fs::remove_dir_all(&old);
    if dist_dir.exists() {
        fs::rename(dist_dir, &old)
            .with_context(|| format!("could not move the previous {} aside", dist_dir.display()))?;
    }
    fs::rename(staging, dist_dir)
        .with_context(|| format!("could not move the new artifacts to {}", dist_dir.display()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}
