//! Before anything is sent: `dist/manifest.json` agrees with the workspace's plan, and every
//! file in dist/ is exactly what the manifest describes.

use std::fs;
use std::path::Path;

use crate::hint::Hinted;
use anyhow::bail;
use castoff_archive::digest;
use castoff_plan::Manifest;
use castoff_registry::oci::{Digest, OciLayout};

/// `dist/manifest.json` must say what the workspace's configuration says about where each
/// artifact goes: destinations are never taken from a file alone (it could have been edited,
/// or built from another configuration), so any difference stops the run before a request.
pub(crate) fn check_against_workspace(
    manifest: &Manifest,
    workspace: &cargo_metadata::Metadata,
    manifest_path: &Path,
) -> anyhow::Result<()> {
    let mut targets: Vec<String> = Vec::new();
    for app in &manifest.apps {
        for target in &app.targets {
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
    }
    let release = castoff_plan::plan(
        workspace,
        &castoff_plan::PlanOptions {
            packages: manifest.apps.iter().map(|app| app.name.clone()).collect(),
            targets,
        },
    )
    .map_err(|error| {
        anyhow::Error::new(Hinted::keeping_hints_of(
            &error,
            error.to_string(),
            format!(
                "publish checks {} against the workspace's configuration; fix the configuration (or run publish in the workspace that built dist/)",
                manifest_path.display()
            ),
        ))
    })?;
    let planned = Manifest::from_release(&release, &manifest.castoff_version);
    let mut differences = manifest.differences_from(&planned);
    // File names are what registries know artifacts by (a wheel's name on PyPI): each path
    // must be the one dist gives the artifact.
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let id = &planned.artifacts[index].id;
        let Some(path) = manifest
            .artifacts
            .iter()
            .find(|a| &a.id == id)
            .and_then(|a| a.path.as_deref())
        else {
            continue;
        };
        let app = &release.apps[artifact.app.0];
        if let Some(expected) =
            crate::record::expected_path_problem(app, artifact.kind, artifact.target, path)
        {
            differences.push(format!(
                "artifact `{id}` path: dist/manifest.json has `{path}`, dist names it {expected}"
            ));
        }
    }
    // The binaries must be what the configuration builds now: dist/ built with other
    // features or another profile would publish another program under this version.
    for app in &release.apps {
        let Some(built) = manifest.app(&app.package.name) else {
            continue;
        };
        for build in &built.builds {
            let Some(target) = app.targets.iter().find(|t| t.triple == build.target) else {
                continue;
            };
            let configured = app.build(target);
            if &build.settings != configured {
                differences.push(format!(
                    "app `{}` {}: dist/ was built with {}, the configuration says {}",
                    app.package.name,
                    build.target,
                    build.settings.describe(),
                    configured.describe()
                ));
            }
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = differences.iter().take(10).cloned().collect();
    let more = differences
        .len()
        .checked_sub(10)
        .filter(|more| *more > 0)
        .map_or_else(String::new, |more| format!("\n  and {more} more"));
    bail!(Hinted::new(
        format!(
            "{} does not match the workspace's configuration; nothing was sent\n  {}{more}",
            manifest_path.display(),
            shown.join("\n  ")
        ),
        "run `castoff dist` again: dist/ was built from another configuration, or edited after it was built"
    ))
}

/// Re-hashes every file the manifest names; for an image layout, every blob against its name.
pub(crate) fn verify_files(manifest: &Manifest, dist_dir: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    // Hints of the errors behind the problems, shown before the run's own.
    let mut hints = Vec::new();
    // The artifacts, and the crates channel's `.crate` files as artifacts of their own.
    let crate_entries: Vec<castoff_plan::manifest::ManifestArtifact> = manifest
        .crates
        .iter()
        .map(|krate| castoff_plan::manifest::ManifestArtifact {
            id: krate.id.clone(),
            kind: castoff_plan::ArtifactKind::Binary,
            app: krate.name.clone(),
            target: None,
            inputs: Vec::new(),
            registry_name: None,
            platform: None,
            // A crate without a file is not verified: publish refuses it when preparing.
            path: krate.path.clone(),
            size: krate.size,
            sha256: krate.sha256.clone(),
            digest: None,
        })
        .collect();
    for artifact in manifest.artifacts.iter().chain(&crate_entries) {
        let Some(relative) = &artifact.path else {
            continue;
        };
        // A hand-edited manifest must not make publish read (and upload) a file outside dist/.
        if Path::new(relative)
            .components()
            .any(|component| !matches!(component, std::path::Component::Normal(_)))
        {
            problems.push(format!(
                "{}: path `{relative}` leaves dist/ (paths in the manifest are relative, without `..`)",
                artifact.id
            ));
            continue;
        }
        let path = dist_dir.join(relative);
        // Not followed through a link: dist/ may come from another machine (a CI artifact),
        // and only what `dist` wrote there is published.
        if fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir()) {
            if let Err(problem) = verify_layout(&path, artifact.digest.as_deref()) {
                problems.push(format!("{}: {}", path.display(), problem.text));
                hints.extend(problem.hint);
            }
            continue;
        }
        let Some(expected) = &artifact.sha256 else {
            continue;
        };
        // A regular file of at most the recorded size, never a link, FIFO or device.
        let size_limit = artifact.size.unwrap_or(0);
        match castoff_archive::foreign::open_regular(&path, size_limit)
            .map_err(anyhow::Error::from)
            .and_then(|(file, _)| {
                Ok(digest::sha256_reader(std::io::Read::take(
                    file,
                    size_limit.saturating_add(1),
                ))?)
            }) {
            Ok((sha, size)) => {
                let actual = digest::hex(&sha);
                if &actual != expected || Some(size) != artifact.size {
                    problems.push(format!(
                        "{}: sha256 {actual} ({size} bytes) but the manifest says {expected} ({} bytes)",
                        path.display(),
                        artifact.size.unwrap_or(0)
                    ));
                }
            }
            // castoff_archive::foreign's errors name the file already.
            Err(error) if error.to_string().starts_with(&path.display().to_string()) => {
                problems.push(error.to_string())
            }
            Err(error) => problems.push(format!("{}: {error}", path.display())),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        Hinted::new(
            format!(
                "dist/ does not match its manifest; nothing was uploaded:\n  {}",
                problems.join("\n  ")
            ),
            "run `castoff dist` again; never edit dist/ by hand"
        )
        .after(hints)
    )
}

/// Why an image layout does not match, with the hint of the error behind it (if any).
struct LayoutProblem {
    text: String,
    hint: Option<String>,
}

impl From<String> for LayoutProblem {
    fn from(text: String) -> LayoutProblem {
        LayoutProblem { text, hint: None }
    }
}

impl From<castoff_registry::RegistryError> for LayoutProblem {
    fn from(error: castoff_registry::RegistryError) -> LayoutProblem {
        LayoutProblem {
            text: error.to_string(),
            hint: error.hint(),
        }
    }
}

fn verify_layout(dir: &Path, index_digest: Option<&str>) -> Result<(), LayoutProblem> {
    let blobs = dir.join("blobs/sha256");
    let entries = fs::read_dir(&blobs).map_err(|error| format!("cannot list blobs: {error}"))?;
    for entry in entries {
        let entry = entry.map_err(|error| error.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (file, _) = castoff_archive::foreign::open_regular(&entry.path(), u64::MAX)
            .map_err(|error| error.to_string())?;
        let (sha, _) = digest::sha256_reader(file).map_err(|error| error.to_string())?;
        if digest::hex(&sha) != name {
            return Err(format!("blob {name} has sha256 {}", digest::hex(&sha)).into());
        }
    }
    if let Some(index) = index_digest {
        let hex = index.strip_prefix("sha256:").unwrap_or(index);
        if !blobs.join(hex).is_file() {
            return Err(format!("the index {index} is missing").into());
        }
        // Every manifest, config and layer the index reaches must be there too, and so must
        // every SBOM artifact the layout's referrers index lists, so a missing blob stops the
        // run before the first upload rather than in the middle of it.
        let layout = OciLayout::open(dir)?;
        let mut pending: Vec<Digest> = vec![index.parse::<Digest>()?];
        pending.extend(
            layout
                .referrers()?
                .into_iter()
                .map(|referrer| referrer.digest),
        );
        while let Some(digest) = pending.pop() {
            let blob = layout.manifest(&digest)?;
            for descriptor in &blob.blobs {
                if !layout.blob_path(&descriptor.digest).is_file() {
                    return Err(format!(
                        "blob {} (referenced by {digest}) is missing",
                        descriptor.digest
                    )
                    .into());
                }
            }
            pending.extend(blob.children.into_iter().map(|child| child.digest));
        }
    }
    Ok(())
}
