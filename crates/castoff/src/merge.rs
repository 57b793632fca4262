//! `dist --merge DIR...`: combines the partial dist folders that CI runners wrote (one
//! `dist --target T` each) into one complete dist/.
//!
//! Per-target artifacts (binaries' digests, SBOMs, archives, wheels, npm platform packages,
//! `docker load` archives) are copied, each re-hashed against the partial manifest that
//! describes it. What spans targets is assembled here: the npm launcher (its
//! `optionalDependencies` list every platform), each app's OCI layout and multi-platform index
//! (from the per-platform images, see `castoff_oci::assemble_images`), the deploy examples,
//! the install script, `SHA256SUMS`, signatures and the final manifest; like the sdist, the
//! crates channel's `.crate` files are packed again from the checkout.
//!
//! Each app's build records (how its binaries came: cargo or prebuilt, with their digests) are
//! kept from the partial that built each target.
//!
//! Everything is checked before anything is written (same castoff version, same
//! `SOURCE_DATE_EPOCH`, same app versions as the workspace, each artifact in exactly one
//! partial), and the output goes through stage.rs's staging directory and swap. The output
//! depends only on the set of partials, never on their order: every loop follows the plan.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use castoff_archive::digest;
use castoff_plan::manifest::ManifestArtifact;
use castoff_plan::{AppId, ArtifactKind, Manifest, Release};

use crate::dist::DistOutcome;
use crate::hint::Hinted;
use crate::record::{Finishing, finish, record, record_images};
use crate::report::Reporter;
use crate::sign::SigningKey;

/// Largest partial `manifest.json` a merge reads (a real one is a few hundred KiB at most).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// A partial dist folder and its manifest.
#[derive(Debug, Clone)]
pub struct Partial {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// How to run the merge.
#[derive(Debug)]
pub struct MergeOptions {
    pub dist_dir: PathBuf,
    /// Every target the workspace configures (the merged manifest is partial if it covers
    /// fewer).
    pub planned_targets: Vec<String>,
    pub signing_key: Option<SigningKey>,
}

/// Reads each folder's `manifest.json` and checks what can be checked without the
/// workspace: readable, written by this castoff, built with one `SOURCE_DATE_EPOCH`, no
/// target twice. Partials come back sorted by folder, so nothing depends on argument order.
pub fn read_partials(dirs: &[PathBuf]) -> anyhow::Result<Vec<Partial>> {
    if dirs.is_empty() {
        bail!(Hinted::new(
            "--merge needs at least one partial dist folder",
            "pass the folders `dist --target …` wrote, e.g. `--merge dist-x86_64-unknown-linux-gnu dist-aarch64-apple-darwin`"
        ));
    }
    let mut partials = Vec::new();
    for dir in dirs {
        let path = dir.join("manifest.json");
        let text = castoff_archive::foreign::read_regular(&path, MAX_MANIFEST_BYTES)
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                })
            })
            .map_err(|error| {
                Hinted::new(
                    format!("could not read {}", path.display()),
                    "pass folders written by `castoff dist --target …` (each holds a manifest.json)",
                )
                .because(error)
            })?;
        let manifest = Manifest::from_json(&text)
            .with_context(|| format!("could not read the manifest of {}", dir.display()))?;
        partials.push(Partial {
            dir: dir.clone(),
            manifest,
        });
    }
    partials.sort_by(|a, b| a.dir.cmp(&b.dir));
    let this_version = env!("CARGO_PKG_VERSION");
    for partial in &partials {
        if partial.manifest.castoff_version != this_version {
            bail!(Hinted::new(
                format!(
                    "{} was written by castoff {}, this is castoff {this_version}",
                    partial.dir.display(),
                    partial.manifest.castoff_version
                ),
                "build every partial dist and merge them with the same castoff version (pin it in CI)"
            ));
        }
    }
    let first = &partials[0];
    for partial in &partials[1..] {
        if partial.manifest.source_date_epoch != first.manifest.source_date_epoch {
            bail!(Hinted::new(
                format!(
                    "{} was built with SOURCE_DATE_EPOCH {:?}, {} with {:?}",
                    partial.dir.display(),
                    partial.manifest.source_date_epoch,
                    first.dir.display(),
                    first.manifest.source_date_epoch
                ),
                "set the same SOURCE_DATE_EPOCH on every runner (e.g. the tagged commit's `git log -1 --format=%ct`)"
            ));
        }
    }
    // Two partials holding the same artifact: refuse, naming both.
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for partial in &partials {
        for artifact in built_per_target(&partial.manifest) {
            if let Some(other) = seen.insert(&artifact.id, &partial.dir) {
                bail!(Hinted::new(
                    format!(
                        "artifact `{}` is in both {} and {}",
                        artifact.id,
                        other.display(),
                        partial.dir.display()
                    ),
                    "pass each target's partial dist once (two runners built the same target?)"
                ));
            }
        }
    }
    Ok(partials)
}

/// The targets and packages the partials cover, for planning the merged release.
pub fn coverage(partials: &[Partial]) -> (Vec<String>, Vec<String>) {
    let mut targets: Vec<String> = Vec::new();
    let mut packages: Vec<String> = Vec::new();
    for partial in partials {
        for app in &partial.manifest.apps {
            if !packages.contains(&app.name) {
                packages.push(app.name.clone());
            }
            for target in &app.targets {
                if !targets.contains(target) {
                    targets.push(target.clone());
                }
            }
        }
    }
    targets.sort();
    packages.sort();
    (targets, packages)
}

/// Artifacts of one target that a partial built (the ones a merge copies).
fn built_per_target(manifest: &Manifest) -> impl Iterator<Item = &ManifestArtifact> {
    manifest
        .artifacts
        .iter()
        .filter(|a| a.target.is_some() && (a.sha256.is_some() || a.digest.is_some()))
}

/// Merges `partials` into `options.dist_dir` for `release` (planned for the partials'
/// targets and packages).
pub fn merge(
    release: &Release,
    partials: &[Partial],
    options: &MergeOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<DistOutcome> {
    check_versions(release, partials)?;
    let source_date_epoch = partials[0].manifest.source_date_epoch.ok_or_else(|| {
        Hinted::new(
            "the partial dists do not record their SOURCE_DATE_EPOCH",
            "rebuild them with this castoff",
        )
    })?;
    // The crates channel's `.crate` files span targets: like the sdist, packed here by Cargo
    // from the checkout the partials were built from.
    let packaged_crates = crate::crates::package(release, reporter)?;
    let stage = crate::stage::Stage::for_release(&options.dist_dir, release, reporter)?;
    let (mut manifest, warnings) = merge_into(
        release,
        partials,
        stage.path(),
        &options.dist_dir,
        source_date_epoch,
    )?;
    crate::crates::stage(&packaged_crates, &mut manifest, stage.path())?;
    let manifest = finish(
        release,
        manifest,
        &Finishing {
            source_date_epoch,
            planned_targets: &options.planned_targets,
            signing_key: options.signing_key.as_ref(),
        },
        stage.path(),
    )?;
    stage.commit()?;
    Ok(DistOutcome {
        dist_dir: options.dist_dir.clone(),
        manifest,
        warnings,
        cached: false,
        // A merge builds nothing: the partial dists' images carry their runs' revisions.
        revision: None,
    })
}

/// Every app of every partial has the workspace's version (a runner that built another
/// commit, or a forgotten old folder, is caught here).
fn check_versions(release: &Release, partials: &[Partial]) -> anyhow::Result<()> {
    for partial in partials {
        for app in &partial.manifest.apps {
            let Some(planned) = release.apps.iter().find(|a| a.package.name == app.name) else {
                bail!(Hinted::new(
                    format!(
                        "{} holds app `{}`, which this workspace does not release",
                        partial.dir.display(),
                        app.name
                    ),
                    "merge in the workspace the partial dists were built from"
                ));
            };
            if planned.package.version.to_string() != app.version {
                bail!(Hinted::new(
                    format!(
                        "{} holds {} {}, but the workspace is at version {}",
                        partial.dir.display(),
                        app.name,
                        app.version,
                        planned.package.version
                    ),
                    "build every partial dist from the same commit (the release tag) and merge in that checkout"
                ));
            }
        }
    }
    Ok(())
}

fn merge_into(
    release: &Release,
    partials: &[Partial],
    staging: &Path,
    dist_dir: &Path,
    source_date_epoch: u64,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let mut manifest = Manifest::from_release(release, env!("CARGO_PKG_VERSION"));
    let mut warnings = Vec::new();
    // Which partial holds each artifact id.
    let mut holder: BTreeMap<&str, (&Partial, &ManifestArtifact)> = BTreeMap::new();
    for partial in partials {
        for artifact in built_per_target(&partial.manifest) {
            holder.insert(&artifact.id, (partial, artifact));
        }
    }
    let partial_dirs: Vec<PathBuf> = partials.iter().map(|p| p.dir.clone()).collect();
    // Each launcher names the targets its app has platform packages for: one set for all of
    // them, not a scan of every artifact per launcher and target.
    let npm_platforms: std::collections::HashSet<(AppId, &str)> = release
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::NpmPlatform)
        .filter_map(|a| Some((a.app, a.target?.triple)))
        .collect();
    let mut built_indexes: Vec<(AppId, castoff_oci::BuiltIndex)> = Vec::new();
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let app = &release.apps[artifact.app.0];
        let id = manifest.artifacts[index].id.clone();
        match artifact.kind {
            ArtifactKind::Binary
            | ArtifactKind::Sbom
            | ArtifactKind::Archive
            | ArtifactKind::Wheel
            | ArtifactKind::NpmPlatform => {
                let Some((partial, source)) = holder.get(id.as_str()) else {
                    bail!(Hinted::new(
                        format!("no partial dist holds `{id}`"),
                        format!(
                            "the partial dist of {} is incomplete; build it again with `dist --target {}`",
                            artifact.target.map_or("?", |t| t.triple),
                            artifact.target.map_or("?", |t| t.triple)
                        )
                    ));
                };
                let entry = &mut manifest.artifacts[index];
                if artifact.kind == ArtifactKind::Binary {
                    entry.size = source.size;
                    entry.sha256 = source.sha256.clone();
                    continue;
                }
                check_path(app, artifact.kind, artifact.target, partial, source)?;
                copy_verified(partial, source, staging)?;
                entry.path = source.path.clone();
                entry.size = source.size;
                entry.sha256 = source.sha256.clone();
                entry.digest = source.digest.clone();
            }
            ArtifactKind::OciImage => {
                // Copied with the index below, which reads every platform's layout.
            }
            // Like the launcher, built here from the checkout the partials were built from:
            // it spans targets, and its bytes depend only on the sources and the epoch.
            ArtifactKind::Sdist => {
                let (built, sdist_warnings) = crate::artifacts::build_sdist(
                    release,
                    artifact.app,
                    source_date_epoch,
                    staging,
                    dist_dir,
                )
                .with_context(|| {
                    format!(
                        "could not build the source distribution of {}",
                        app.package.name
                    )
                })?;
                warnings.extend(sdist_warnings);
                record(
                    &mut manifest.artifacts[index],
                    staging,
                    &built.path,
                    built.size,
                    &built.sha256,
                    None,
                );
            }
            ArtifactKind::NpmLauncher => {
                let targets = app
                    .targets
                    .iter()
                    .copied()
                    .filter(|target| npm_platforms.contains(&(artifact.app, target.triple)))
                    .collect();
                let package =
                    crate::artifacts::build_npm_launcher(release, artifact.app, targets, staging)?;
                record(
                    &mut manifest.artifacts[index],
                    staging,
                    &package.path,
                    package.size,
                    &package.sha256,
                    Some(package.integrity),
                );
            }
            ArtifactKind::OciIndex => {
                let built = castoff_oci::assemble_images(
                    app,
                    crate::artifacts::oci_channel(app),
                    &partial_dirs,
                    staging,
                )
                .with_context(|| format!("could not assemble the image of {}", app.package.name))?;
                for image in &built.images {
                    let image_id =
                        format!("oci-image/{}/{}", app.package.name, image.target.triple);
                    let Some((_, source)) = holder.get(image_id.as_str()) else {
                        bail!(Hinted::new(
                            format!(
                                "the image layout holds `{image_id}`, but no partial manifest lists it"
                            ),
                            "rebuild that partial dist"
                        ));
                    };
                    if source.sha256.as_deref() != Some(image.archive_sha256.as_str())
                        || source.digest.as_deref() != Some(image.manifest_digest.as_str())
                    {
                        bail!(Hinted::new(
                            format!("`{image_id}` differs from what its partial manifest says"),
                            "the partial dist was changed after it was built; build it again"
                        ));
                    }
                }
                record_images(&mut manifest, index, &app.package.name, &built, staging)?;
                built_indexes.push((artifact.app, built));
            }
        }
    }
    if !built_indexes.is_empty() {
        let indexes: Vec<(AppId, &castoff_oci::BuiltIndex)> = built_indexes
            .iter()
            .map(|(app, built)| (*app, built))
            .collect();
        // Warnings were shown by the runners' `dist`, which met the same configuration.
        crate::artifacts::write_deploy_files(release, &indexes, staging, dist_dir)?;
    }
    keep_builds(release, partials, &mut manifest)?;
    Ok((manifest, warnings))
}

/// Each app's build records (how its binaries came, per target) from the partial that built
/// the target, in plan order.
fn keep_builds(
    release: &Release,
    partials: &[Partial],
    manifest: &mut Manifest,
) -> anyhow::Result<()> {
    // Every partial's build records by (app, target), gathered once, in the partials' order.
    let mut recorded: std::collections::HashMap<
        (&str, &str),
        Vec<(&Partial, &castoff_plan::manifest::ManifestBuild)>,
    > = std::collections::HashMap::new();
    for partial in partials {
        for built in &partial.manifest.apps {
            for build in &built.builds {
                recorded
                    .entry((built.name.as_str(), build.target.as_str()))
                    .or_default()
                    .push((partial, build));
            }
        }
    }
    for (index, app) in release.apps.iter().enumerate() {
        for target in &app.targets {
            let mut found = recorded
                .get(&(app.package.name.as_str(), target.triple))
                .into_iter()
                .flatten()
                .copied();
            let Some((partial, build)) = found.next() else {
                bail!(Hinted::new(
                    format!(
                        "no partial dist records how the binaries of {} for {} were built",
                        app.package.name, target.triple
                    ),
                    format!(
                        "build that partial dist again with this castoff (`dist --target {}`)",
                        target.triple
                    )
                ));
            };
            if let Some((other, _)) = found.next() {
                bail!(Hinted::new(
                    format!(
                        "the binaries of {} for {} are recorded in both {} and {}",
                        app.package.name,
                        target.triple,
                        partial.dir.display(),
                        other.dir.display()
                    ),
                    "pass each target's partial dist once (two runners built the same target?)"
                ));
            }
            // The binaries must be what this workspace's configuration builds: a runner on
            // another commit (other features, another profile) would mix two programs.
            let configured = app.build(target);
            if &build.settings != configured {
                bail!(Hinted::new(
                    format!(
                        "the partial dist in {} built {} for {} with {}, but the workspace's configuration says {}",
                        partial.dir.display(),
                        app.package.name,
                        target.triple,
                        build.settings.describe(),
                        configured.describe()
                    ),
                    "build every partial dist from the same commit as the merge (the build settings live in Cargo.toml), then merge again"
                ));
            }
            manifest.apps[index].builds.push(build.clone());
        }
    }
    Ok(())
}

/// The path a partial manifest gives an artifact must be the one `dist` gives it: its file
/// name is what `publish` uploads under (a wheel's name on PyPI), so it comes from the plan,
/// not from a file another machine wrote.
fn check_path(
    app: &castoff_plan::App,
    kind: ArtifactKind,
    target: Option<&'static castoff_plan::Target>,
    partial: &Partial,
    source: &ManifestArtifact,
) -> anyhow::Result<()> {
    let path = source.path.as_deref().unwrap_or_default();
    match crate::record::expected_path_problem(app, kind, target, path) {
        None => Ok(()),
        Some(expected) => bail!(Hinted::new(
            format!(
                "`{}` in {} has the path `{path}`, but dist names it {expected}",
                source.id,
                partial.dir.display()
            ),
            "never edit manifest.json by hand; build that partial dist again"
        )),
    }
}

/// Copies one file of a partial into the staging directory, checking that its size and
/// SHA-256 are the ones the partial manifest records.
fn copy_verified(
    partial: &Partial,
    artifact: &ManifestArtifact,
    staging: &Path,
) -> anyhow::Result<()> {
    let relative = artifact
        .path
        .as_deref()
        .with_context(|| format!("`{}` has no path in {}", artifact.id, partial.dir.display()))?;
    if relative
        .split('/')
        .any(|part| part == ".." || part.is_empty())
        || relative.starts_with('/')
    {
        bail!(Hinted::new(
            format!(
                "`{}` in {} has the path `{relative}`, which leaves the dist folder",
                artifact.id,
                partial.dir.display()
            ),
            "never edit manifest.json by hand"
        ));
    }
    let source = partial.dir.join(relative);
    let expected_size = artifact.size.ok_or_else(|| {
        Hinted::new(
            format!("`{}` has no size in {}", artifact.id, partial.dir.display()),
            "build that partial dist again",
        )
    })?;
    // Only a regular file of the recorded size, streamed (never a link, FIFO or device, and
    // never more than one byte past the size), so a tampered partial cannot hang the merge
    // or fill memory or disk.
    let (input, _) =
        castoff_archive::foreign::open_regular(&source, expected_size).map_err(|error| {
            {
                Hinted::new(
                    format!("could not read {}", source.display()),
                    "upload and download the whole partial dist folder, as the files `dist` wrote",
                )
            }
            .because(error)
        })?;
    let target = staging.join(relative);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let output = fs::File::create(&target)
        .with_context(|| format!("could not write {}", target.display()))?;
    let mut writer = digest::HashingWriter::new(std::io::BufWriter::new(output));
    std::io::copy(&mut input.take(expected_size + 1), &mut writer)
        .with_context(|| format!("could not copy {}", source.display()))?;
    let (mut output, sha, size) = writer.finish();
    output
        .flush()
        .with_context(|| format!("could not write {}", target.display()))?;
    let sha = digest::hex(&sha);
    if Some(sha.as_str()) != artifact.sha256.as_deref() || size != expected_size {
        bail!(Hinted::new(
            format!(
                "{} does not match its manifest (sha256 {sha}, {size} bytes)",
                source.display()
            ),
            "the file changed after `dist` wrote it; build that partial dist again"
        ));
    }
    Ok(())
}
