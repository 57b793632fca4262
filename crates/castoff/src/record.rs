//! Recording a staging directory: each built file's path, size and digests into the
//! manifest, then the finishing files (install script, `SHA256SUMS`, signatures,
//! `manifest.json`). Shared by `dist` and `dist --merge`, and the names `dist` gives each
//! artifact, which `merge` and `publish` check paths against.

use std::fs;
use std::path::Path;

use anyhow::Context as _;
use castoff_archive::digest;
use castoff_plan::manifest::{ManifestArtifact, PartialDist};
use castoff_plan::{ArtifactKind, Manifest, Release, Target};

use crate::hint::Hinted;
use crate::sign::SigningKey;

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
    // Two artifacts of one file: the second overwrote the first in the staging directory, and
    // the dist would list one file twice. Stop before the dist takes its place.
    let mut paths: Vec<(&str, &str)> = manifest
        .artifacts
        .iter()
        .filter_map(|a| Some((a.path.as_deref()?, a.id.as_str())))
        .collect();
    paths.sort();
    for pair in paths.windows(2) {
        if pair[0].0 == pair[1].0 {
            anyhow::bail!(Hinted::new(
                format!(
                    "{} and {} would both be written to {}",
                    pair[0].1, pair[1].1, pair[0].0
                ),
                "this is a castoff bug; please report it with your configuration. Until it is fixed, leave one of the two targets out of `targets`",
            ));
        }
    }
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
    extra_files.extend(deploy_files(staging)?);
    write_checksums(&manifest, &extra_files, staging)?;
    if let Some(key) = finishing.signing_key {
        let mut signed: Vec<String> = manifest
            .artifacts
            .iter()
            .filter(|a| a.sha256.is_some())
            .filter_map(|a| a.path.clone())
            .collect();
        signed.extend(manifest.crates.iter().filter_map(|k| k.path.clone()));
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
        (ArtifactKind::Sdist, _) => app
            .python
            .as_ref()
            .map(|python| format!("python/{}", castoff_wheel::sdist::sdist_file_name(python))),
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

/// `greeter-0.3.1-x86_64-unknown-linux-gnu.cdx.json`
pub(crate) fn sbom_file_name(app: &castoff_plan::App, target: &Target) -> String {
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
    // The app's image and SBOM entries by target, found in one pass (not one per image).
    let positions: std::collections::HashMap<(ArtifactKind, String), usize> = manifest
        .artifacts
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.app == app && matches!(a.kind, ArtifactKind::OciImage | ArtifactKind::Sbom)
        })
        .filter_map(|(at, a)| Some(((a.kind, a.target.clone()?), at)))
        .collect();
    for image in &built.images {
        let find = |kind: ArtifactKind| -> anyhow::Result<usize> {
            positions
                .get(&(kind, image.target.triple.to_owned()))
                .copied()
                .with_context(|| {
                    format!("internal error: a {} the plan does not know", kind.as_str())
                })
        };
        let at = find(ArtifactKind::OciImage)?;
        record(
            &mut manifest.artifacts[at],
            staging,
            &image.archive,
            image.archive_size,
            &image.archive_sha256,
            Some(image.manifest_digest.clone()),
        );
        if let Some(digest) = &image.sbom_manifest_digest {
            let at = find(ArtifactKind::Sbom)?;
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

/// Every file under `staging/deploy/` (the deploy examples and the Dockerfiles, all castoff's),
/// relative to `staging` with `/` separators, sorted: they are checked and signed like the
/// artifacts, since the Dockerfiles name the layers they add by digest.
fn deploy_files(staging: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![staging.join("deploy")];
    while let Some(dir) = dirs.pop() {
        if !dir.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path.strip_prefix(staging).unwrap_or(&path);
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    Ok(files)
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
    lines.extend(
        manifest
            .crates
            .iter()
            .filter_map(|k| Some((k.path.clone()?, k.sha256.clone()?))),
    );
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
