//! Runs the builders: one artifact of the plan (an archive, a wheel, an npm package, the npm
//! launcher, an app's images) from the compiled binaries and their compressed streams.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use castoff_archive::deflate::DeflateCache;
use castoff_plan::{AppId, ArtifactKind, Release, Target};

use crate::cargo::{Binaries, binaries_for};

/// The npm launcher of `app`, whose optional dependencies are the platform packages of
/// `targets`, into `staging/npm/`.
pub(crate) fn build_npm_launcher(
    release: &Release,
    app: AppId,
    targets: Vec<&'static Target>,
    staging: &Path,
) -> anyhow::Result<castoff_npm::BuiltPackage> {
    let dir = staging.join("npm");
    fs::create_dir_all(&dir)?;
    castoff_npm::build_launcher(
        &castoff_npm::LauncherInput {
            workspace_root: &release.workspace_root,
            app: &release.apps[app.0],
            npm: npm_channel(&release.apps[app.0]),
            targets,
            level: release.compression_level,
        },
        &dir,
    )
    .with_context(|| {
        format!(
            "could not build the npm launcher of {}",
            release.apps[app.0].package.name
        )
    })
}

/// What one artifact of the parallel phase produced.
pub(crate) enum Built {
    File {
        path: PathBuf,
        size: u64,
        sha256: String,
        digest: Option<String>,
        warnings: Vec<String>,
    },
    Images(castoff_oci::BuiltIndex),
}

/// What every artifact build of one `dist` shares.
pub(crate) struct BuildContext<'a> {
    pub(crate) release: &'a Release,
    /// `SOURCE_DATE_EPOCH`: every timestamp in every artifact.
    pub(crate) source_date_epoch: u64,
    /// `DistOptions::archive_extras`.
    pub(crate) archive_extras: &'a BTreeMap<String, Vec<(String, Vec<u8>)>>,
    pub(crate) staging: &'a Path,
    pub(crate) deflate: &'a DeflateCache,
    pub(crate) binaries: &'a Binaries,
    pub(crate) sboms: &'a BTreeMap<(AppId, &'static str), Vec<u8>>,
    pub(crate) revision: Option<&'a str>,
    /// The final dist directory (`DistOptions::dist_dir`): never part of an sdist.
    pub(crate) dist_dir: &'a Path,
    pub(crate) index: usize,
}

/// Builds the archive, wheel, npm package or image index at `context.index`.
pub(crate) fn build_one(context: &BuildContext<'_>) -> anyhow::Result<Built> {
    let BuildContext {
        release,
        source_date_epoch,
        archive_extras,
        staging,
        deflate,
        binaries,
        sboms,
        revision,
        dist_dir,
        index,
    } = *context;
    let artifact = &release.artifacts[index];
    let app = &release.apps[artifact.app.0];
    let binaries_of = |app: AppId, target: &Target| binaries_for(binaries, app, target);
    let sbom_of = |target: &Target| sboms.get(&(artifact.app, target.triple)).cloned();
    let file = |path: PathBuf, size: u64, sha256: String, digest: Option<String>| Built::File {
        path,
        size,
        sha256,
        digest,
        warnings: Vec::new(),
    };
    match (artifact.kind, artifact.target) {
        (ArtifactKind::Archive, Some(target)) => {
            let built = crate::archive::build_archive(
                &crate::archive::ArchiveInput {
                    workspace_root: &release.workspace_root,
                    app,
                    target,
                    binaries: &binaries_of(artifact.app, target),
                    extras: archive_extras
                        .get(&app.package.name)
                        .map_or(&[][..], Vec::as_slice),
                    source_date_epoch,
                },
                deflate,
                &staging.join("archives"),
            )
            .with_context(|| {
                format!(
                    "could not build the archive of {} for {}",
                    app.package.name, target.triple
                )
            })?;
            Ok(file(built.path, built.size, built.sha256, None))
        }
        (ArtifactKind::Wheel, Some(target)) => {
            let dir = staging.join("python");
            fs::create_dir_all(&dir)?;
            let wheel = castoff_wheel::build_wheel(
                &castoff_wheel::WheelInput {
                    workspace_root: &release.workspace_root,
                    app,
                    python: app
                        .python
                        .as_ref()
                        .expect("the plan gives wheels only to apps with a Python channel"),
                    target,
                    binaries: binaries_of(artifact.app, target),
                    source_date_epoch,
                    sboms: sbom_of(target)
                        .map(|bytes| (format!("{}.cdx.json", app.package.name), bytes))
                        .into_iter()
                        .collect(),
                    deflate,
                },
                &dir,
            )
            .with_context(|| {
                format!(
                    "could not build the wheel of {} for {}",
                    app.package.name, target.triple
                )
            })?;
            Ok(Built::File {
                path: wheel.path,
                size: wheel.size,
                sha256: wheel.sha256,
                digest: None,
                warnings: wheel.warnings,
            })
        }
        (ArtifactKind::Sdist, None) => {
            build_sdist_artifact(release, artifact.app, source_date_epoch, staging, dist_dir)
        }
        (ArtifactKind::NpmPlatform, Some(target)) => {
            let dir = staging.join("npm");
            fs::create_dir_all(&dir)?;
            let package = castoff_npm::build_platform_package(
                &castoff_npm::PlatformInput {
                    workspace_root: &release.workspace_root,
                    app,
                    npm: npm_channel(app),
                    target,
                    binaries: binaries_of(artifact.app, target),
                    sbom: sbom_of(target),
                    deflate,
                },
                &dir,
            )
            .with_context(|| {
                format!(
                    "could not build the npm package of {} for {}",
                    app.package.name, target.triple
                )
            })?;
            Ok(file(
                package.path,
                package.size,
                package.sha256,
                Some(package.integrity),
            ))
        }
        (ArtifactKind::NpmLauncher, _) => {
            let package = build_npm_launcher(release, artifact.app, app.targets.clone(), staging)?;
            Ok(file(
                package.path,
                package.size,
                package.sha256,
                Some(package.integrity),
            ))
        }
        (ArtifactKind::OciIndex, _) => {
            let inputs = artifact
                .inputs
                .iter()
                .filter_map(|input| release.artifacts[input.0].target)
                .map(|target| castoff_oci::ImageInput {
                    target,
                    binaries: binaries_of(artifact.app, target),
                    sbom: sbom_of(target),
                })
                .collect();
            let built = castoff_oci::build_images(
                app,
                oci_channel(app),
                inputs,
                &castoff_oci::ImageOptions {
                    workspace_root: &release.workspace_root,
                    target_directory: &release.target_directory,
                    source_date_epoch,
                    revision: revision.map(str::to_owned),
                    deflate,
                },
                staging,
            )
            .with_context(|| format!("could not build the image of {}", app.package.name))?;
            Ok(Built::Images(built))
        }
        (kind, target) => bail!(
            "internal error: {} artifact {} in the parallel phase",
            kind.as_str(),
            target.map_or("without a target", |_| "with a target")
        ),
    }
}

/// [`build_sdist`] as an artifact of `dist` (which builds it before the others, beside the
/// compression).
pub(crate) fn build_sdist_artifact(
    release: &Release,
    app: AppId,
    source_date_epoch: u64,
    staging: &Path,
    dist_dir: &Path,
) -> anyhow::Result<Built> {
    let (built, warnings) = build_sdist(release, app, source_date_epoch, staging, dist_dir)
        .with_context(|| {
            format!(
                "could not build the source distribution of {}",
                release.apps[app.0].package.name
            )
        })?;
    Ok(Built::File {
        path: built.path,
        size: built.size,
        sha256: built.sha256,
        digest: None,
        warnings,
    })
}

/// The sdist of `app` into `staging/python/`: its Rust sources gathered (sdist.rs), built
/// with the settings of its first target's wheel (the plan refuses differing ones).
pub(crate) fn build_sdist(
    release: &Release,
    app: AppId,
    source_date_epoch: u64,
    staging: &Path,
    dist_dir: &Path,
) -> anyhow::Result<(castoff_wheel::sdist::BuiltSdist, Vec<String>)> {
    let app = &release.apps[app.0];
    let python = app
        .python
        .as_ref()
        .expect("the plan gives an sdist only to apps with a Python channel");
    let target = app
        .targets
        .first()
        .context("internal error: an app without targets")?;
    let sources = crate::sdist::gather(release, app, dist_dir)?;
    let mut warnings = Vec::new();
    if !sources.untracked.is_empty() {
        let shown: Vec<&str> = sources
            .untracked
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = sources.untracked.len().saturating_sub(shown.len());
        warnings.push(format!(
            "the source distribution of {} leaves out {} file(s) git does not track: {}{} (commit \
             what the build needs; add the rest to .gitignore)",
            app.package.name,
            sources.untracked.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
        ));
    }
    // Its SBOM: the dependency graph of every platform, since it is built wherever it lands.
    let build = app.build(target);
    let metadata =
        crate::sbom::resolve_all_platforms(&app.package.manifest_path, &build.feature_args())?;
    let sbom = crate::sbom::cyclonedx(&crate::sbom::SbomInput {
        metadata: &metadata,
        checksums: &crate::sbom::lock_checksums(&release.workspace_root),
        package: &app.package.name,
        target: "source",
        source_date_epoch,
    })
    .with_context(|| format!("could not write the SBOM of {}'s sdist", app.package.name))?;
    let dir = staging.join("python");
    fs::create_dir_all(&dir)?;
    let built = castoff_wheel::sdist::build_sdist(
        &castoff_wheel::sdist::SdistInput {
            workspace_root: &release.workspace_root,
            app,
            python,
            build,
            manifest_path: sources.manifest_path,
            sources: sources.files,
            sboms: vec![(format!("{}.cdx.json", app.package.name), sbom)],
            source_date_epoch,
        },
        &dir,
        release.compression_level,
    )?;
    Ok((built, warnings))
}

/// The npm channel of an app the plan gave npm artifacts.
fn npm_channel(app: &castoff_plan::App) -> &castoff_plan::plan::NpmChannel {
    app.npm
        .as_ref()
        .expect("the plan gives npm packages only to apps with an npm channel")
}

/// The image channel of an app the plan gave images.
pub(crate) fn oci_channel(app: &castoff_plan::App) -> &castoff_plan::plan::OciChannel {
    app.oci
        .as_ref()
        .expect("the plan gives images only to apps with an image channel")
}

/// The files of `dist/deploy/` for the apps with images: the compose and Kubernetes examples,
/// and each app's Dockerfiles. The dist directory's place in the workspace (`dist_dir`, the
/// final one, not the staging directory) is where `Dockerfile.source` finds castoff's layers.
/// Returns the warnings: an app whose image config a Dockerfile cannot spell gets none, and
/// says why.
pub(crate) fn write_deploy_files(
    release: &Release,
    indexes: &[(AppId, &castoff_oci::BuiltIndex)],
    staging: &Path,
    dist_dir: &Path,
) -> anyhow::Result<Vec<String>> {
    castoff_oci::write_deploy_examples(release, indexes, staging)
        .context("could not write the deploy examples")?;
    let dist_in_workspace = std::path::absolute(dist_dir)
        .ok()
        .and_then(|dir| {
            dir.strip_prefix(&release.workspace_root)
                .ok()
                .map(Path::to_owned)
        })
        .filter(|dir| !dir.as_os_str().is_empty());
    let options = castoff_oci::DockerfileOptions {
        workspace_root: &release.workspace_root,
        dist_in_workspace: dist_in_workspace.as_deref(),
    };
    let mut warnings = Vec::new();
    for (app, built) in indexes {
        let app = &release.apps[app.0];
        match castoff_oci::write_dockerfiles(app, oci_channel(app), built, staging, &options) {
            Ok(_) => {}
            Err(error @ castoff_oci::OciError::NotInDockerfile { .. }) => {
                let hint = error.hint().unwrap_or_default();
                warnings.push(format!("{error} (hint: {hint})"));
            }
            Err(error) => {
                return Err(error).context(format!(
                    "could not write the Dockerfiles of {}",
                    app.package.name
                ));
            }
        }
    }
    Ok(warnings)
}
