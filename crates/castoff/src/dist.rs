//! `dist`: executes the artifact half of the plan. Compiles (or picks up) the binaries, runs
//! the builders into a staging directory, then [`finish`]es it (install script, `SHA256SUMS`,
//! signatures, `manifest.json`) and swaps it into place, so `dist/` is never half-written.
//! `dist --merge` (merge.rs) shares the staging, the finishing and the swap.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use castoff_archive::deflate::{DeflateCache, DeflateOptions};
use castoff_archive::digest;
use castoff_plan::manifest::{ManifestArtifact, PartialDist};
use castoff_plan::{AppId, ArtifactKind, Manifest, Release, Target};

use crate::sign::SigningKey;

/// How to run `dist`.
#[derive(Debug)]
pub struct DistOptions {
    /// Where the artifacts go (default `<workspace>/dist`).
    pub dist_dir: PathBuf,
    /// Package binaries already built instead of running `cargo build`.
    pub no_build: bool,
    /// `SOURCE_DATE_EPOCH`: every timestamp in every artifact.
    pub source_date_epoch: u64,
    /// Every target the workspace configures; when the release covers fewer, the manifest
    /// marks the dist as partial (to be merged).
    pub planned_targets: Vec<String>,
    /// Sign every file with this minisign key.
    pub signing_key: Option<SigningKey>,
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
pub fn dist(
    release: &Release,
    options: &DistOptions,
    reporter: &dyn crate::publish::Reporter,
) -> anyhow::Result<DistOutcome> {
    // Before any work: a dist directory castoff may not replace is refused now, not after
    // the build (stage.rs checks again under the lock).
    crate::stage::check_dist_dir(&options.dist_dir, &release.workspace_root)?;
    // The commit being released: part of the cache key and the images' annotations. Git
    // starts now and answers while the bases and binaries are checked.
    let root = release.workspace_root.clone();
    let revision = std::thread::spawn(move || git_revision(&root));

    // Registry base images: pulled into the base cache before anything is built (base.rs);
    // castoff-oci reads them there. The only network access of `dist`, none when cached.
    crate::base::pull_bases(release)?;

    let binaries = binaries(release, options.no_build, reporter)?;

    // cache.rs: unchanged inputs reuse the previous dist/ after re-verifying every file.
    let revision = revision
        .join()
        .map_err(|_| anyhow::anyhow!("asking git for the commit panicked"))?;
    let cache = crate::cache::CacheKey::compute(
        release,
        options,
        binaries
            .iter()
            .flat_map(|(_, paths)| paths.iter().map(|(_, path)| path.as_path())),
        revision.as_deref(),
    )?;
    if let Some(outcome) = cache.as_ref().and_then(|cache| cache.reuse(options)) {
        reporter.line(&format!(
            "cached: inputs unchanged, reused the verified {}",
            options.dist_dir.display()
        ));
        return Ok(outcome);
    }

    let stage = crate::stage::Stage::for_release(&options.dist_dir, release, reporter)?;
    let staging = stage.path();
    let (manifest, warnings) = build_into(
        release,
        options,
        &binaries,
        revision.as_deref(),
        staging,
        reporter,
    )?;
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
    };
    if let Some(cache) = &cache {
        cache.remember(&outcome);
    }
    Ok(outcome)
}

/// What [`finish`] needs beyond the manifest.
#[derive(Debug)]
pub(crate) struct Finishing<'a> {
    pub(crate) source_date_epoch: u64,
    pub(crate) planned_targets: &'a [String],
    pub(crate) signing_key: Option<&'a SigningKey>,
}

/// Completes a staging directory whose artifacts are all recorded in `manifest`: the
/// install script, `SHA256SUMS`, the signatures and `manifest.json`, in that order (each
/// covers what came before it).
pub(crate) fn finish(
    release: &Release,
    mut manifest: Manifest,
    finishing: &Finishing<'_>,
    staging: &Path,
) -> anyhow::Result<Manifest> {
    manifest.source_date_epoch = Some(finishing.source_date_epoch);
    let covered: Vec<String> = release
        .targets()
        .iter()
        .map(|t| t.triple.to_owned())
        .collect();
    manifest.partial = (covered.len() < finishing.planned_targets.len()
        || covered
            .iter()
            .any(|t| !finishing.planned_targets.contains(t)))
    .then(|| PartialDist {
        targets: covered,
        planned_targets: finishing.planned_targets.to_vec(),
    });
    let mut extra_files = Vec::new();
    if let Some(script) = crate::install_script::render(release, &manifest) {
        fs::write(staging.join(crate::install_script::FILE_NAME), script)?;
        extra_files.push(crate::install_script::FILE_NAME.to_owned());
    }
    write_checksums(&manifest, &extra_files, staging)?;
    if let Some(key) = finishing.signing_key {
        let mut signed: Vec<String> = manifest
            .artifacts
            .iter()
            .filter(|a| a.sha256.is_some())
            .filter_map(|a| a.path.clone())
            .collect();
        signed.extend(extra_files.iter().cloned());
        signed.push("SHA256SUMS".to_owned());
        for path in signed {
            key.sign_file(&staging.join(&path), finishing.source_date_epoch)
                .with_context(|| format!("could not sign {path}"))?;
        }
    }
    fs::write(staging.join("manifest.json"), manifest.to_json())?;
    if let Some(key) = finishing.signing_key {
        key.sign_file(&staging.join("manifest.json"), finishing.source_date_epoch)?;
    }
    Ok(manifest)
}

/// Compiled binaries per (app, target): `(bin name, path)`.
type Binaries = Vec<((AppId, &'static str), Vec<(String, PathBuf)>)>;

fn binaries(
    release: &Release,
    no_build: bool,
    reporter: &dyn crate::publish::Reporter,
) -> anyhow::Result<Binaries> {
    let mut all = Vec::new();
    for (index, app) in release.apps.iter().enumerate() {
        for &target in &app.targets {
            if !no_build {
                reporter.line(&format!(
                    "{}{} for {}",
                    crate::progress::CHILD_OUTPUT_PREFIX,
                    app.package.name,
                    target.triple
                ));
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
    revision: Option<&str>,
    staging: &Path,
    reporter: &dyn crate::publish::Reporter,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let mut manifest = Manifest::from_release(release, env!("CARGO_PKG_VERSION"));
    let mut warnings = Vec::new();
    let binaries_of = |app: AppId, target: &Target| binaries_for(binaries, app, target);
    let checksums = crate::sbom::lock_checksums(&release.workspace_root);
    // The SBOMs' dependency graphs (`cargo metadata` per target) resolve while the binaries
    // compress: one thread, started now, joined when the first SBOM is written.
    let mut sbom_targets: Vec<(&'static str, PathBuf)> = Vec::new();
    for artifact in &release.artifacts {
        if let (ArtifactKind::Sbom, Some(target)) = (artifact.kind, artifact.target)
            && !sbom_targets
                .iter()
                .any(|(triple, _)| *triple == target.triple)
        {
            let manifest_path = release.apps[artifact.app.0].package.manifest_path.clone();
            sbom_targets.push((target.triple, manifest_path));
        }
    }
    let resolving = std::thread::spawn(move || {
        sbom_targets
            .into_iter()
            .map(|(triple, manifest_path)| (triple, crate::sbom::resolve(&manifest_path, triple)))
            .collect::<BTreeMap<&'static str, anyhow::Result<cargo_metadata::Metadata>>>()
    });
    let mut resolving = Some(resolving);
    let mut resolved: BTreeMap<&str, anyhow::Result<cargo_metadata::Metadata>> = BTreeMap::new();
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
                // Binaries are inputs, not shipped files: record their digest for provenance.
                let paths = binaries_of(artifact.app, target);
                for (bin, path) in &paths {
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
                    if paths.len() == 1 {
                        entry.sha256 = Some(digest::hex(&compressed.sha256()));
                        entry.size = Some(compressed.size());
                    }
                }
            }
            (ArtifactKind::Sbom, Some(target)) => {
                reporter.line(&format!("building {}", entry.id));
                if let Some(resolving) = resolving.take() {
                    resolved = resolving.join().map_err(|_| {
                        anyhow::anyhow!("resolving the SBOMs' dependencies panicked")
                    })?;
                }
                if let Some(Err(_)) = resolved.get(target.triple)
                    && let Some(Err(error)) = resolved.remove(target.triple)
                {
                    return Err(error);
                }
                let Some(Ok(metadata)) = resolved.get(target.triple) else {
                    bail!("internal error: no dependency graph for {}", target.triple);
                };
                let bytes = crate::sbom::cyclonedx(&crate::sbom::SbomInput {
                    metadata,
                    checksums: &checksums,
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
                ArtifactKind::Binary | ArtifactKind::Sbom | ArtifactKind::OciImage
            )
        })
        .map(|(index, _)| index)
        .collect();
    let next_job = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<BTreeMap<usize, anyhow::Result<Built>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len())
        .max(1);
    let ids: Vec<String> = manifest
        .artifacts
        .iter()
        .map(|entry| entry.id.clone())
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let taken = next_job.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = jobs.get(taken) else { break };
                    reporter.line(&format!("building {}", ids[index]));
                    let built = build_one(&BuildContext {
                        release,
                        options,
                        staging,
                        deflate: &deflate,
                        binaries,
                        sboms: &sboms,
                        revision,
                        index,
                    });
                    let failed = built.is_err();
                    results.lock().expect("results lock").insert(index, built);
                    if failed {
                        // Stop taking new work: the first error (in plan order) is reported.
                        next_job.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    for (index, built) in results.into_inner().expect("results lock") {
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
        castoff_oci::write_deploy_examples(release, &indexes, staging)
            .context("could not write the deploy examples")?;
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
            _ => bail!(
                "CASTOFF_COMPRESSION_THREADS=`{value}` is not a number of threads\nhint: set it to a whole number of at least 1, or unset it to use every core"
            ),
        };
    }
    Ok(options)
}

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
            release,
            app,
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

/// `(bin name, path)` of every binary built for `app` and `target`.
fn binaries_for(binaries: &Binaries, app: AppId, target: &Target) -> Vec<(String, PathBuf)> {
    binaries
        .iter()
        .find(|((a, t), _)| *a == app && *t == target.triple)
        .map(|(_, paths)| paths.clone())
        .unwrap_or_default()
}

/// What one artifact of the parallel phase produced.
enum Built {
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
struct BuildContext<'a> {
    release: &'a Release,
    options: &'a DistOptions,
    staging: &'a Path,
    deflate: &'a DeflateCache,
    binaries: &'a Binaries,
    sboms: &'a BTreeMap<(AppId, &'static str), Vec<u8>>,
    revision: Option<&'a str>,
    index: usize,
}

/// Builds the archive, wheel, npm package or image index at `context.index`.
fn build_one(context: &BuildContext<'_>) -> anyhow::Result<Built> {
    let BuildContext {
        release,
        options,
        staging,
        deflate,
        binaries,
        sboms,
        revision,
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
                release,
                app,
                target,
                &binaries_of(artifact.app, target),
                options.source_date_epoch,
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
                    release,
                    app: artifact.app,
                    target,
                    binaries: binaries_of(artifact.app, target),
                    source_date_epoch: options.source_date_epoch,
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
        (ArtifactKind::NpmPlatform, Some(target)) => {
            let dir = staging.join("npm");
            fs::create_dir_all(&dir)?;
            let package = castoff_npm::build_platform_package(
                &castoff_npm::PlatformInput {
                    release,
                    app: artifact.app,
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
                release,
                artifact.app,
                inputs,
                &castoff_oci::ImageOptions {
                    source_date_epoch: options.source_date_epoch,
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

/// `greeter-0.3.1-x86_64-unknown-linux-gnu.cdx.json`
/// `None` when `path` is the one `dist` gives an artifact of `kind` (file names are what
/// registries know artifacts by); otherwise what it should be, for a message.
pub(crate) fn expected_path_problem(
    app: &castoff_plan::App,
    kind: ArtifactKind,
    target: Option<&'static castoff_plan::Target>,
    path: &str,
) -> Option<String> {
    let expected: Option<String> = match (kind, target) {
        (ArtifactKind::Sbom, Some(target)) => Some(format!("sbom/{}", sbom_file_name(app, target))),
        (ArtifactKind::Archive, Some(target)) => {
            Some(format!("archives/{}", app.archive_file_name(target)))
        }
        (ArtifactKind::NpmPlatform, Some(target)) => app.npm.as_ref().map(|npm| {
            format!(
                "npm/{}",
                castoff_npm::tarball_file_name(&npm.platform_package(target), &npm.version.version)
            )
        }),
        (ArtifactKind::NpmLauncher, _) => app.npm.as_ref().map(|npm| {
            format!(
                "npm/{}",
                castoff_npm::tarball_file_name(&npm.name, &npm.version.version)
            )
        }),
        _ => None,
    };
    let fine = match (kind, &expected) {
        (_, Some(expected)) => path == expected,
        (ArtifactKind::Wheel, None) => app.python.as_ref().is_some_and(|python| {
            path.strip_prefix("python/")
                .filter(|name| !name.contains('/'))
                .and_then(|name| name.parse::<castoff_wheel::WheelFileName>().ok())
                .is_some_and(|wheel| {
                    wheel.distribution == castoff_plan::names::wheel_distribution_name(&python.name)
                        && wheel.version == python.version
                })
        }),
        _ => true,
    };
    if fine {
        return None;
    }
    Some(expected.map_or_else(
        || {
            "`python/<distribution>-<version>-…whl` after the workspace's python name and version"
                .to_owned()
        },
        |expected| format!("`{expected}`"),
    ))
}

fn sbom_file_name(app: &castoff_plan::App, target: &Target) -> String {
    format!(
        "{}-{}-{}.cdx.json",
        app.package.name, app.package.version, target.triple
    )
}

/// Records an app's image layout (the index entry at `index`), each platform's `docker load`
/// archive (the image entries) and the SBOM artifacts' digests (the SBOM entries).
pub(crate) fn record_images(
    manifest: &mut Manifest,
    index: usize,
    app: &str,
    built: &castoff_oci::BuiltIndex,
    staging: &Path,
) -> anyhow::Result<()> {
    let entry = &mut manifest.artifacts[index];
    let layout = built
        .layout_dir
        .strip_prefix(staging)
        .unwrap_or(&built.layout_dir);
    entry.path = Some(layout.to_string_lossy().replace('\\', "/"));
    entry.size = Some(built.index_size);
    entry.digest = Some(built.index_digest.clone());
    for image in &built.images {
        let find = |kind: &str, artifacts: &mut [ManifestArtifact]| -> anyhow::Result<usize> {
            artifacts
                .iter()
                .position(|a| {
                    a.kind == kind
                        && a.app == app
                        && a.target.as_deref() == Some(image.target.triple)
                })
                .with_context(|| format!("internal error: a {kind} the plan does not know"))
        };
        let at = find("oci-image", &mut manifest.artifacts)?;
        record(
            &mut manifest.artifacts[at],
            staging,
            &image.archive,
            image.archive_size,
            &image.archive_sha256,
            Some(image.manifest_digest.clone()),
        );
        if let Some(digest) = &image.sbom_manifest_digest {
            let at = find("sbom", &mut manifest.artifacts)?;
            manifest.artifacts[at].digest = Some(digest.clone());
        }
    }
    Ok(())
}

pub(crate) fn record(
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
pub(crate) fn git_revision(workspace_root: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(workspace_root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

/// `SHA256SUMS` in the format `sha256sum -c` reads: `<hex>  <path>`, sorted by path; every
/// artifact file plus `extra_files` (the install script), hashed here.
fn write_checksums(
    manifest: &Manifest,
    extra_files: &[String],
    staging: &Path,
) -> anyhow::Result<()> {
    let mut lines: Vec<(String, String)> = manifest
        .artifacts
        .iter()
        .filter_map(|a| Some((a.path.clone()?, a.sha256.clone()?)))
        .collect();
    for file in extra_files {
        let bytes = fs::read(staging.join(file))?;
        lines.push((file.clone(), digest::hex(&digest::sha256(&bytes))));
    }
    lines.sort();
    let text: String = lines
        .iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect();
    fs::write(staging.join("SHA256SUMS"), text)?;
    Ok(())
}
