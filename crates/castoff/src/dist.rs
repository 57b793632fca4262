//! `dist`: executes the artifact half of the plan. Compiles (or picks up, or checks the
//! supplied ones: prebuilt.rs) the binaries, runs the builders into a staging directory
//! (`artifacts.rs`), then finishes it (`record.rs`: install script, `SHA256SUMS`,
//! signatures, `manifest.json`) and swaps it into place (`stage.rs`), so `dist/` is never
//! half-written. `dist --merge` (merge.rs) shares the staging, the recording and the swap.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use castoff_archive::deflate::{DeflateCache, DeflateOptions};
use castoff_archive::digest;
use castoff_plan::manifest::{BuildSource, ManifestBinary, ManifestBuild};
use castoff_plan::{AppId, ArtifactKind, Manifest, Release, Target};

use crate::artifacts::{BuildContext, Built, build_one};
use crate::cache::{CacheInputs, CacheKey};
use crate::cargo::{Binaries, binaries, binaries_for, git_revision};
use crate::hint::Hinted;
use crate::prebuilt::BinarySource;
use crate::record::{Finishing, finish, record, record_images, sbom_file_name};
use crate::report::Reporter;
use crate::sign::SigningKey;

/// The commit `dist` built from, and the uncommitted changes of the working tree.
pub use crate::cargo::Revision;
/// The triple `rustc` builds for by default on this machine.
pub use crate::cargo::host_target;
/// A binary built elsewhere, and why supplied binaries were refused.
pub use crate::prebuilt::{Prebuilt, PrebuiltError};

/// How to run `dist`.
#[derive(Debug)]
pub struct DistOptions {
    /// Where the artifacts go (default `<workspace>/dist`).
    pub dist_dir: PathBuf,
    /// Package binaries already built instead of running `cargo build`.
    pub no_build: bool,
    /// Binaries built elsewhere: cargo builds nothing for their targets, which must be
    /// supplied whole (every binary of every app built for the target). Checked against their
    /// targets before anything is built or written ([`PrebuiltError`]).
    pub prebuilt: Vec<Prebuilt>,
    /// `SOURCE_DATE_EPOCH`: every timestamp in every artifact.
    pub source_date_epoch: u64,
    /// Every target the workspace configures; when the release covers fewer, the manifest
    /// marks the dist as partial (to be merged).
    pub planned_targets: Vec<String>,
    /// Sign every file with this minisign key.
    pub signing_key: Option<SigningKey>,
    /// Files a package's archives carry beside its binaries and documents, by package name:
    /// `(path in the archive, contents)` (castoff's own completions and man page, which only
    /// the CLI can generate).
    pub archive_extras: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    /// Refuse to build when tracked files of the workspace's git repository have uncommitted
    /// changes (`dist --require-clean`), instead of labelling the revision `<commit>-dirty`.
    pub require_clean: bool,
}

/// What `dist` produced.
#[derive(Debug)]
pub struct DistOutcome {
    pub dist_dir: PathBuf,
    pub manifest: Manifest,
    /// Things the user should know (debug info shipped, channels not built yet).
    pub warnings: Vec<String>,
    /// The inputs were unchanged: the previous dist/ was verified and reused (cache.rs).
    pub cached: bool,
    /// The commit built from and the working tree's uncommitted changes; none outside git.
    pub revision: Option<Revision>,
}

/// Every timestamp of the release: `SOURCE_DATE_EPOCH` from the environment; else the commit
/// time of HEAD when the workspace is in a git repository (what the release workflow sets, so
/// a local dist of the same commit matches CI's); else a fixed default, so builds are
/// reproducible even outside git (npm's 1985-10-26, as `npm pack` uses).
pub fn source_date_epoch(workspace_root: &std::path::Path) -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value.trim().parse().map_err(|error| {
            anyhow::Error::new(
                Hinted::new(
                    format!("SOURCE_DATE_EPOCH=`{value}` is not a number of seconds"),
                    "set it to a Unix timestamp, e.g. `git log -1 --format=%ct`",
                )
                .because(error),
            )
        }),
        Err(_) => {
            Ok(crate::cargo::git_commit_time(workspace_root).unwrap_or(castoff_archive::NPM_EPOCH))
        }
    }
}

/// Builds every artifact of `release` into `options.dist_dir`.
pub fn dist(
    release: &Release,
    options: &DistOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<DistOutcome> {
    // Before any work: a dist directory castoff may not replace is refused now, not after
    // the build (stage.rs checks again under the lock).
    crate::stage::check_dist_dir(&options.dist_dir, &release.workspace_root)?;
    // Supplied binaries are checked (and read for their digests) before any build.
    let supplied = crate::prebuilt::take(release, &options.prebuilt, reporter)?;
    // The commit being released and the tree's uncommitted changes: part of the cache key and
    // the images' annotations. `--require-clean` refuses a changed tree here, before anything
    // is pulled, built or written.
    let revision = git_revision(
        &release.workspace_root,
        &[
            options.dist_dir.as_path(),
            release.target_directory.as_path(),
        ],
    );
    if options.require_clean
        && let Some(revision) = revision.as_ref().filter(|revision| revision.is_dirty())
    {
        return Err(anyhow::Error::new(dirty_tree_refusal(revision)));
    }
    let revision_label = revision.as_ref().map(Revision::label);

    // Registry base images: pulled into the base cache before anything is built (base.rs);
    // castoff-oci reads them there. The only network access of `dist`, none when cached.
    crate::base::pull_bases(release)?;

    // Everything that would stop a build, for every build at once, before the first starts
    // (supplied binaries are not built).
    let building: Vec<(AppId, &'static Target)> = if options.no_build {
        Vec::new()
    } else {
        let given: std::collections::HashSet<(AppId, &str)> = supplied
            .iter()
            .map(|built| (built.app, built.target))
            .collect();
        release
            .builds()
            .filter(|&(app, target)| !given.contains(&(app, target.triple)))
            .collect()
    };
    let needs: Vec<crate::toolchain::Need> = building
        .iter()
        .map(|&(app, target)| crate::toolchain::Need {
            target: target.triple,
            zigbuild: release.apps[app.0].build(target).tool == castoff_plan::BuildTool::Zigbuild,
        })
        .collect();
    let mut problems = crate::cargo::undefined_profiles(release, &building);
    problems.extend(crate::toolchain::check(&needs));
    crate::hint::all_at_once("cannot build", problems)?;

    // `oci.files` as the image builder will read them: a missing, linked or unreadable
    // source is refused now, before the compile; the entries and their sources' contents key
    // the cache (cache.rs).
    let mut extra_files = Vec::new();
    for (index, app) in release.apps.iter().enumerate() {
        let has_images = release.artifacts.iter().any(|artifact| {
            artifact.app == AppId(index) && artifact.kind == ArtifactKind::OciImage
        });
        if let Some(oci) = app.oci.as_ref().filter(|_| has_images) {
            let inputs = castoff_oci::extra_file_inputs(&release.workspace_root, app, oci)
                .with_context(|| format!("could not build the image of {}", app.package.name))?;
            for (entry, source) in inputs {
                extra_files.push((app.package.name.clone(), entry, source));
            }
        }
    }

    let binaries = binaries(release, options.no_build, supplied, reporter)?;
    // The crates channel's `.crate` files, packaged by Cargo before the cache key: their
    // digests are part of it.
    let packaged_crates = crate::crates::package(release, reporter)?;

    // cache.rs: unchanged inputs reuse the previous dist/ after re-verifying every file.
    // Signing writes signatures with a secret key the cache cannot compare: never cached.
    let cache = match &options.signing_key {
        Some(_) => None,
        None => Some(CacheKey::compute(&CacheInputs {
            release,
            dist_dir: &options.dist_dir,
            source_date_epoch: options.source_date_epoch,
            planned_targets: &options.planned_targets,
            archive_extras: &options.archive_extras,
            binaries: &binaries,
            extra_files: &extra_files,
            revision: revision_label.as_deref(),
            crates: &packaged_crates,
        })?),
    };
    if let Some((manifest, warnings)) = cache
        .as_ref()
        .and_then(|cache| cache.reuse(&options.dist_dir))
    {
        reporter.line(&format!(
            "cached: inputs unchanged, reused the verified {}",
            options.dist_dir.display()
        ));
        return Ok(DistOutcome {
            dist_dir: options.dist_dir.clone(),
            manifest,
            warnings,
            cached: true,
            revision,
        });
    }

    let stage = crate::stage::Stage::for_release(&options.dist_dir, release, reporter)?;
    let staging = stage.path();
    let (mut manifest, warnings) = build_into(
        release,
        options,
        &binaries,
        revision_label.as_deref(),
        staging,
        reporter,
    )?;
    crate::crates::stage(&packaged_crates, &mut manifest, staging)?;
    let finishing = Finishing {
        source_date_epoch: options.source_date_epoch,
        planned_targets: &options.planned_targets,
        signing_key: options.signing_key.as_ref(),
    };
    let manifest = finish(release, manifest, &finishing, staging)?;
    stage.commit()?;
    let outcome = DistOutcome {
        dist_dir: options.dist_dir.clone(),
        manifest,
        warnings,
        cached: false,
        revision,
    };
    if let Some(cache) = &cache {
        cache.remember(&outcome.dist_dir, &outcome.warnings);
    }
    Ok(outcome)
}

/// How many changed files a refusal names before "and N more".
const CHANGED_FILES_SHOWN: usize = 5;

/// `--require-clean` and a working tree with uncommitted changes to tracked files.
fn dirty_tree_refusal(revision: &Revision) -> Hinted {
    let files = &revision.changed_files;
    let mut shown: Vec<String> = files
        .iter()
        .take(CHANGED_FILES_SHOWN)
        .map(|file| format!("`{file}`"))
        .collect();
    if files.len() > CHANGED_FILES_SHOWN {
        shown.push(format!("and {} more", files.len() - CHANGED_FILES_SHOWN));
    }
    Hinted::new(
        format!(
            "the working tree has uncommitted changes to {} tracked file{} ({}), and `--require-clean` builds only what commit {} holds",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            shown.join(", "),
            revision.commit
        ),
        "commit the changes (`git commit -a`) or set them aside (`git stash`), then run `dist` again; without `--require-clean`, dist builds the tree as it is and labels the images' revision `<commit>-dirty`",
    )
    .bad_input()
}

fn build_into(
    release: &Release,
    options: &DistOptions,
    binaries: &Binaries,
    revision: Option<&str>,
    staging: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    // One thread, started now, does what needs no binary while the binaries compress: first
    // the SBOMs' dependency graphs (`cargo metadata` per target and feature selection; apps
    // built with the same features share one), handed over when the first SBOM is written;
    // then the sdists. Each sdist starts git and `cargo package --list`; built after the
    // compression, those were the last thing a small binary's `dist` waited for. They come
    // after the graphs because resolving one writes Cargo.lock when the workspace has none,
    // and an sdist holds Cargo.lock. The scope joins the thread on every way out, so nothing
    // writes to the staging directory after this returns.
    let mut sbom_graphs: Vec<(SbomGraph, PathBuf)> = Vec::new();
    for artifact in &release.artifacts {
        if let (ArtifactKind::Sbom, Some(target)) = (artifact.kind, artifact.target) {
            let app = &release.apps[artifact.app.0];
            let graph = sbom_graph(app, target);
            if !sbom_graphs.iter().any(|(known, _)| *known == graph) {
                sbom_graphs.push((graph, app.package.manifest_path.clone()));
            }
        }
    }
    let sdists: Vec<usize> = release
        .artifacts
        .iter()
        .enumerate()
        .filter(|(_, artifact)| matches!(artifact.kind, ArtifactKind::Sdist))
        .map(|(index, _)| index)
        .collect();
    std::thread::scope(|scope| {
        let (graphs_tx, graphs) = std::sync::mpsc::channel();
        let background = scope.spawn(move || {
            let resolved: ResolvedGraphs = sbom_graphs
                .into_iter()
                .map(|((triple, features), manifest_path)| {
                    let metadata = crate::sbom::resolve(&manifest_path, triple, &features);
                    ((triple, features), metadata)
                })
                .collect();
            // The receiver is gone only when `dist` stopped on an error; the sdists are not
            // needed then.
            if graphs_tx.send(resolved).is_err() {
                return Vec::new();
            }
            sdists
                .iter()
                .map(|&index| {
                    let built = crate::artifacts::build_sdist_artifact(
                        release,
                        release.artifacts[index].app,
                        options.source_date_epoch,
                        staging,
                        &options.dist_dir,
                    );
                    (index, built)
                })
                .collect::<Vec<_>>()
        });
        build_phases(
            release, options, binaries, revision, staging, reporter, graphs, background,
        )
    })
}

/// The SBOMs' dependency graphs, by target and features.
type ResolvedGraphs = BTreeMap<SbomGraph, anyhow::Result<cargo_metadata::Metadata>>;

/// The sdists' results, from [`build_into`]'s thread.
type Background<'scope> =
    std::thread::ScopedJoinHandle<'scope, Vec<(usize, anyhow::Result<Built>)>>;

#[allow(clippy::too_many_arguments)]
fn build_phases(
    release: &Release,
    options: &DistOptions,
    binaries: &Binaries,
    revision: Option<&str>,
    staging: &Path,
    reporter: &dyn Reporter,
    graphs: std::sync::mpsc::Receiver<ResolvedGraphs>,
    background: Background<'_>,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let mut manifest = Manifest::from_release(release, env!("CARGO_PKG_VERSION"));
    for (artifact, entry) in release.artifacts.iter().zip(&manifest.artifacts) {
        if matches!(artifact.kind, ArtifactKind::Sdist) {
            reporter.line(&format!("building {}", entry.id));
        }
    }
    let mut warnings = Vec::new();
    let binaries_of = |app: AppId, target: &Target| binaries_for(binaries, app, target);
    // Read once the graphs are resolved (which writes Cargo.lock if there was none).
    let mut checksums = None;
    let mut graphs = Some(graphs);
    let mut resolved: ResolvedGraphs = BTreeMap::new();
    let mut sboms: BTreeMap<(AppId, &str), Vec<u8>> = BTreeMap::new();
    let mut built_indexes: Vec<(AppId, castoff_oci::BuiltIndex)> = Vec::new();

    // Every binary is compressed once, on every core, when its Binary artifact comes up (the
    // first of its app and target); the wheel, npm, OCI and archive builders splice that stream.
    // The image layers' diff_ids (a digest of the tar headers before the binary, then the
    // binary) are computed during that pass too: their prefixes are registered first.
    let deflate = DeflateCache::new(
        staging.join(".castoff-deflate"),
        compression_options(release.compression_level)?,
    );
    for artifact in &release.artifacts {
        // zstd layers compress the binary again (the tap would go unused).
        let gzip_layers = release.apps[artifact.app.0]
            .oci
            .as_ref()
            .is_some_and(|oci| oci.layer_compression == castoff_plan::plan::LayerCompression::Gzip);
        if let (ArtifactKind::OciImage, Some(target), true) =
            (artifact.kind, artifact.target, gzip_layers)
        {
            for (bin, path) in binaries_of(artifact.app, target) {
                let size = fs::metadata(&path)
                    .with_context(|| format!("could not read {}", path.display()))?
                    .len();
                let prefix =
                    castoff_oci::binary_layer_prefix(&bin, size, options.source_date_epoch)?;
                deflate.want_prefix(&path, prefix);
            }
        }
    }

    // First, in order: the binaries (compressed here, with progress) and the SBOMs (the
    // wheel, npm package and image of a target embed them).
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let entry = &mut manifest.artifacts[index];
        let app = &release.apps[artifact.app.0];
        match (artifact.kind, artifact.target) {
            (ArtifactKind::Binary, Some(target)) => {
                // Binaries are inputs, not shipped files: record their digest for provenance,
                // and how they came (the app's `builds`).
                let paths = binaries_of(artifact.app, target);
                let source = binaries
                    .iter()
                    .find(|built| built.app == artifact.app && built.target == target.triple)
                    .map(|built| &built.source);
                let mut recorded = Vec::new();
                for (position, (bin, path)) in paths.iter().enumerate() {
                    let size = fs::metadata(path)
                        .with_context(|| format!("could not read {}", path.display()))?
                        .len();
                    // Printed as `compressed binary greeter (x86_64-…): 40 MiB in 0.4 s (…/s)`.
                    let task = reporter.task(&format!("binary {bin} ({})", target.triple), size);
                    let compressed = deflate.get(path, &|bytes| task.advance(bytes));
                    task.finish(if compressed.is_ok() {
                        "compressed"
                    } else {
                        "failed to compress"
                    });
                    let compressed = compressed
                        .with_context(|| format!("could not compress {}", path.display()))?;
                    // A supplied binary is packaged only as it was checked.
                    if let Some(BinarySource::Prebuilt(digests)) = source
                        && digests.get(position) != Some(&(compressed.size(), compressed.sha256()))
                    {
                        bail!(Hinted::new(
                            format!(
                                "{} changed after castoff checked it (now {} bytes, sha256:{})",
                                path.display(),
                                compressed.size(),
                                digest::hex(&compressed.sha256())
                            ),
                            "leave the supplied binaries alone while `dist` runs, and run it again"
                        ));
                    }
                    if paths.len() == 1 {
                        entry.sha256 = Some(digest::hex(&compressed.sha256()));
                        entry.size = Some(compressed.size());
                    }
                    recorded.push(ManifestBinary {
                        name: bin.clone(),
                        size: compressed.size(),
                        digest: format!("sha256:{}", digest::hex(&compressed.sha256())),
                    });
                }
                manifest.apps[artifact.app.0].builds.push(ManifestBuild {
                    target: target.triple.to_owned(),
                    settings: app.build(target).clone(),
                    source: match source {
                        Some(BinarySource::Prebuilt(_)) => BuildSource::Prebuilt,
                        Some(BinarySource::Cargo) | None => BuildSource::Cargo,
                    },
                    binaries: recorded,
                });
            }
            (ArtifactKind::Sbom, Some(target)) => {
                reporter.line(&format!("building {}", entry.id));
                if let Some(graphs) = graphs.take() {
                    resolved = graphs.recv().map_err(|_| {
                        anyhow::anyhow!("resolving the SBOMs' dependencies panicked")
                    })?;
                }
                let checksums = checksums
                    .get_or_insert_with(|| crate::sbom::lock_checksums(&release.workspace_root));
                let graph = sbom_graph(app, target);
                if let Some(Err(_)) = resolved.get(&graph)
                    && let Some(Err(error)) = resolved.remove(&graph)
                {
                    return Err(error);
                }
                let Some(Ok(metadata)) = resolved.get(&graph) else {
                    bail!("internal error: no dependency graph for {}", target.triple);
                };
                let bytes = crate::sbom::cyclonedx(&crate::sbom::SbomInput {
                    metadata,
                    checksums,
                    package: &app.package.name,
                    target: target.triple,
                    source_date_epoch: options.source_date_epoch,
                })
                .with_context(|| {
                    format!(
                        "could not write the SBOM of {} for {}",
                        app.package.name, target.triple
                    )
                })?;
                let dir = staging.join("sbom");
                fs::create_dir_all(&dir)?;
                let path = dir.join(sbom_file_name(app, target));
                fs::write(&path, &bytes)?;
                let sha = digest::hex(&digest::sha256(&bytes));
                record(entry, staging, &path, bytes.len() as u64, &sha, None);
                sboms.insert((artifact.app, target.triple), bytes);
            }
            _ => {}
        }
    }

    // Then everything else, in parallel: each artifact only copies compressed streams and
    // hashes what it writes, so the cores share the hashing. Recorded in plan order afterwards.
    let jobs: Vec<usize> = release
        .artifacts
        .iter()
        .enumerate()
        .filter(|(_, artifact)| {
            !matches!(
                artifact.kind,
                ArtifactKind::Binary
                    | ArtifactKind::Sbom
                    | ArtifactKind::OciImage
                    | ArtifactKind::Sdist
            )
        })
        .map(|(index, _)| index)
        .collect();
    let ids: Vec<String> = manifest
        .artifacts
        .iter()
        .map(|entry| entry.id.clone())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let results = crate::schedule::run(
        &vec![Vec::new(); jobs.len()],
        threads,
        |job| {
            let index = jobs[job];
            reporter.line(&format!("building {}", ids[index]));
            build_one(&BuildContext {
                release,
                source_date_epoch: options.source_date_epoch,
                archive_extras: &options.archive_extras,
                staging,
                deflate: &deflate,
                binaries,
                sboms: &sboms,
                revision,
                dist_dir: &options.dist_dir,
                index,
            })
        },
        // Stop taking new work: the first error (in plan order) is reported.
        Result::is_err,
    );
    // With the sdists built early, in plan order: the first error in that order is reported.
    let mut results: Vec<(usize, anyhow::Result<Built>)> = results
        .into_iter()
        .enumerate()
        .filter_map(|(job, built)| Some((jobs[job], built?)))
        .collect();
    // Whether or not an SBOM took the graphs, the thread has sent them and goes on to the
    // sdists.
    drop(graphs);
    results.extend(
        background
            .join()
            .map_err(|_| anyhow::anyhow!("building the source distributions panicked"))?,
    );
    results.sort_by_key(|(index, _)| *index);
    for (index, built) in results {
        let artifact = &release.artifacts[index];
        match built? {
            Built::File {
                path,
                size,
                sha256,
                digest,
                warnings: built_warnings,
            } => {
                warnings.extend(built_warnings);
                record(
                    &mut manifest.artifacts[index],
                    staging,
                    &path,
                    size,
                    &sha256,
                    digest,
                );
            }
            Built::Images(built) => {
                let name = &release.apps[artifact.app.0].package.name;
                record_images(&mut manifest, index, name, &built, staging)?;
                built_indexes.push((artifact.app, built));
            }
        }
    }
    if !built_indexes.is_empty() {
        let indexes: Vec<(AppId, &castoff_oci::BuiltIndex)> = built_indexes
            .iter()
            .map(|(app, built)| (*app, built))
            .collect();
        warnings.extend(crate::artifacts::write_deploy_files(
            release,
            &indexes,
            staging,
            &options.dist_dir,
        )?);
    }
    deflate
        .clear()
        .context("could not remove the compressed copies of the binaries")?;
    warnings.extend(crate::limits::dist_warnings(&manifest));
    Ok((manifest, warnings))
}

/// `level` on every core, or on `CASTOFF_COMPRESSION_THREADS` threads (the output is the same
/// either way; the variable exists to prove it and to leave cores to other work).
fn compression_options(level: u32) -> anyhow::Result<DeflateOptions> {
    let mut options = DeflateOptions::new(level);
    if let Some(value) = std::env::var_os("CASTOFF_COMPRESSION_THREADS") {
        let value = value.to_string_lossy();
        options.threads = match value.trim().parse::<usize>() {
            Ok(threads) if threads > 0 => threads,
            _ => bail!(Hinted::new(
                format!("CASTOFF_COMPRESSION_THREADS=`{value}` is not a number of threads"),
                "set it to a whole number of at least 1, or unset it to use every core"
            )),
        };
    }
    Ok(options)
}

/// What an SBOM's dependency graph depends on: the target and the feature arguments.
type SbomGraph = (&'static str, Vec<String>);

fn sbom_graph(app: &castoff_plan::App, target: &Target) -> SbomGraph {
    (target.triple, app.build(target).feature_args())
}

#[cfg(test)]
mod revision_tests {
    use super::*;

    #[test]
    fn a_refused_dirty_tree_names_a_few_files() {
        let revision = Revision {
            commit: "0123abc".to_owned(),
            changed_files: (1..=7).map(|n| format!("src/f{n}.rs")).collect(),
        };
        assert_eq!(revision.label(), "0123abc-dirty");
        let refusal = dirty_tree_refusal(&revision).to_string();
        assert!(
            refusal.starts_with("the working tree has uncommitted changes to 7 tracked files (`src/f1.rs`, `src/f2.rs`, `src/f3.rs`, `src/f4.rs`, `src/f5.rs`, and 2 more)"),
            "{refusal}"
        );
        let clean = Revision {
            commit: "0123abc".to_owned(),
            changed_files: Vec::new(),
        };
        assert_eq!(clean.label(), "0123abc");
    }
}
