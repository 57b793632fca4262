//! The summary printed after `dist` and `publish`: one row per artifact (or publish step) with
//! channel, name, target, size, sha256 prefix, outcome and where it went, as a text table or,
//! with `--json`, as the JSON document described in docs/cli.md (schema:
//! docs/summary.schema.json).

use std::path::Path;

use castoff_plan::manifest::ManifestArtifact;
use castoff_plan::report::{PublishReport, StepOutcome};
use castoff_plan::{Manifest, StepKindName};
use serde_json::{Value, json};

use crate::contents::{Contents, OUTCOME_ORDER, Unit, combined};
use crate::limits::human_size;

/// Version of the JSON summary's shape; bumped on any incompatible change.
pub const SUMMARY_SCHEMA_VERSION: u64 = 1;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The artifact id (`dist`) or the step id (`publish`).
    pub id: String,
    /// `python`, `npm`, `oci`, `archive`, `sbom` or `binary`.
    pub channel: String,
    /// The name in the registry (wheel distribution, npm package, image repository), else the
    /// app's name.
    pub name: String,
    pub target: Option<String>,
    pub size: Option<u64>,
    /// Hex sha256 of the file (for an image index: of its manifest).
    pub sha256: Option<String>,
    /// `built` or `reused` (`dist`), or the publish outcome: `uploaded`, `already-present`, `would-upload`,
    /// `skipped`, `excluded`, `failed`, `not-run`.
    pub outcome: String,
    /// The file in dist/ (`dist`) or the registry destination (`publish`).
    pub destination: String,
}

/// The summary of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `dist` or `publish`.
    pub command: &'static str,
    pub dist_dir: String,
    pub dry_run: bool,
    /// Set for a partial dist: the targets it holds.
    pub partial_targets: Option<Vec<String>>,
    /// Set for a partial dist: every target the workspace configures (`dist`'s table names
    /// the missing ones).
    pub planned_targets: Option<Vec<String>>,
    pub rows: Vec<Row>,
    /// The release in the units its users count (`4 wheels, 5 npm packages, 1 image (2
    /// platforms)`), counted from the manifest the same way for `dist` and `publish`;
    /// `None` for a `publish` whose manifest could not be read back.
    pub units: Option<String>,
    /// `dist`: what dist/ holds besides those units (`4 archives, 4 SBOMs`).
    pub extras: Option<String>,
    /// `publish`: one outcome per unit, combined from its steps' outcomes.
    pub unit_outcomes: Vec<StepOutcome>,
    /// `dist` from a working tree with uncommitted changes: the changed tracked files.
    pub dirty_files: Option<Vec<String>>,
}

fn sha256_of(artifact: &ManifestArtifact) -> Option<String> {
    artifact
        .sha256
        .clone()
        .filter(|sha| !sha.is_empty())
        .or_else(|| {
            artifact
                .digest
                .as_deref()
                .and_then(|digest| digest.strip_prefix("sha256:"))
                .map(str::to_owned)
        })
}

fn name_of(artifact: &ManifestArtifact) -> String {
    artifact
        .registry_name
        .clone()
        .unwrap_or_else(|| artifact.app.clone())
}

/// The repository of an image destination: `host/repo@sha256:… (…)` or `host/repo:tag`.
fn repository_of(destination: &str) -> String {
    let reference = destination.split_whitespace().next().unwrap_or(destination);
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once('/') {
        Some((path, last)) => match last.split_once(':') {
            Some((name, _tag)) => format!("{path}/{name}"),
            None => reference.to_owned(),
        },
        None => reference.to_owned(),
    }
}

/// The summary of a finished `dist`: every artifact dist/ describes, `built`, or `reused`
/// when the dist cache found the inputs unchanged and kept the verified dist/.
pub fn of_dist(manifest: &Manifest, dist_dir: &Path, cached: bool) -> Summary {
    // The crates channel's files first, as they are published first.
    let crate_rows = manifest.crates.iter().map(|krate| Row {
        id: krate.id.clone(),
        channel: castoff_plan::Channel::Crates.as_str().to_owned(),
        name: krate.name.clone(),
        target: None,
        size: krate.size,
        sha256: krate.sha256.clone(),
        outcome: if cached { "reused" } else { "built" }.to_owned(),
        destination: krate.path.clone().unwrap_or_default(),
    });
    let rows = crate_rows
        .chain(
            manifest
                .artifacts
                .iter()
                .filter(|artifact| artifact.size.is_some() || artifact.path.is_some())
                .map(|artifact| Row {
                    id: artifact.id.clone(),
                    channel: artifact.kind.channel().as_str().to_owned(),
                    name: name_of(artifact),
                    target: artifact.target.clone(),
                    size: artifact.size,
                    sha256: sha256_of(artifact),
                    outcome: if cached { "reused" } else { "built" }.to_owned(),
                    destination: artifact
                        .path
                        .clone()
                        .unwrap_or_else(|| "(packaged into the artifacts below)".to_owned()),
                }),
        )
        .collect();
    let contents = Contents::of(manifest);
    Summary {
        command: "dist",
        dist_dir: dist_dir.display().to_string(),
        dry_run: false,
        partial_targets: manifest.partial.as_ref().map(|p| p.targets.clone()),
        planned_targets: manifest.partial.as_ref().map(|p| p.planned_targets.clone()),
        rows,
        units: Some(contents.units()),
        extras: contents.extras(),
        unit_outcomes: Vec::new(),
        dirty_files: None,
    }
}

/// The summary of a finished `publish`: every step of the manifest with its outcome.
pub fn of_publish(manifest: Option<&Manifest>, report: &PublishReport, dist_dir: &Path) -> Summary {
    let artifacts = manifest.map(Manifest::artifacts_by_id).unwrap_or_default();
    let steps: std::collections::HashMap<&str, _> = manifest
        .iter()
        .flat_map(|m| &m.steps)
        .map(|step| (step.id.as_str(), step))
        .collect();
    let rows = report
        .steps
        .iter()
        .map(|step| {
            let manifest_step = steps.get(step.id.as_str()).copied();
            // A crate's `.crate` stands in the crates list; shown like an artifact.
            let crate_artifact = manifest.and_then(|m| {
                m.crates.iter().find(|k| k.step_id() == step.id).map(|k| {
                    castoff_plan::manifest::ManifestArtifact {
                        id: k.id.clone(),
                        kind: castoff_plan::ArtifactKind::Binary,
                        app: k.name.clone(),
                        target: None,
                        inputs: Vec::new(),
                        registry_name: Some(k.name.clone()),
                        platform: None,
                        path: k.path.clone(),
                        size: k.size,
                        sha256: k.sha256.clone(),
                        digest: None,
                    }
                })
            });
            let artifact = manifest_step
                .and_then(|s| artifacts.get(s.artifact.as_str()).copied())
                .or(crate_artifact.as_ref());
            // Without a manifest, the kind is the first part of the step id.
            let kind = manifest_step.map(|s| s.kind).or_else(|| {
                step.id
                    .split('/')
                    .next()
                    .and_then(|kind| kind.parse::<StepKindName>().ok())
            });
            Row {
                id: step.id.clone(),
                channel: kind
                    .map_or("binary", |kind| kind.channel().as_str())
                    .to_owned(),
                // An image step names the repository it went to (an override's, not the
                // configured one; its SBOM's too), read from its destination.
                name: match kind.map(|kind| kind.channel().as_str()) {
                    Some("oci") if !step.destination.is_empty() => repository_of(&step.destination),
                    _ => artifact.map_or_else(String::new, name_of),
                },
                target: artifact.and_then(|a| a.target.clone()),
                size: artifact.and_then(|a| a.size),
                sha256: artifact.and_then(sha256_of),
                outcome: step.outcome.as_str().to_owned(),
                destination: if step.destination.is_empty() {
                    "-".to_owned()
                } else {
                    step.destination.clone()
                },
            }
        })
        .collect();
    // Each unit's steps, wherever they went (every index, registry and mirror).
    let mut units: Vec<(Unit, Vec<StepOutcome>)> = Vec::new();
    for step in &report.steps {
        let Some(step_of_manifest) =
            manifest.and_then(|m| m.publish_steps().into_iter().find(|s| s.id == step.id))
        else {
            continue;
        };
        let unit = Unit::of_step(&step_of_manifest);
        match units.iter_mut().find(|(known, _)| *known == unit) {
            Some((_, outcomes)) => outcomes.push(step.outcome),
            None => units.push((unit, vec![step.outcome])),
        }
    }
    Summary {
        command: "publish",
        dist_dir: dist_dir.display().to_string(),
        dry_run: report.dry_run,
        // A partial dist published with --allow-partial.
        partial_targets: manifest
            .and_then(|m| m.partial.as_ref())
            .map(|p| p.targets.clone()),
        planned_targets: None,
        rows,
        units: manifest.map(|m| Contents::of(m).units()),
        extras: None,
        unit_outcomes: units
            .into_iter()
            .filter_map(|(_, outcomes)| combined(outcomes))
            .collect(),
        dirty_files: None,
    }
}

impl Summary {
    /// The JSON document (pretty, trailing newline).
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                json!({
                    "id": row.id,
                    "channel": row.channel,
                    "name": row.name,
                    "target": row.target,
                    "size": row.size,
                    "sha256": row.sha256,
                    "outcome": row.outcome,
                    "destination": row.destination,
                })
            })
            .collect();
        let mut document = json!({
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "command": self.command,
            "dist_dir": self.dist_dir,
            "dry_run": self.dry_run,
            "partial_targets": self.partial_targets,
            "artifacts": rows,
        });
        // Only when there are some: the key's presence is the news.
        if let Some(files) = &self.dirty_files {
            document["dirty_files"] = json!(files);
        }
        let mut text = serde_json::to_string_pretty(&document).expect("summary serializes");
        text.push('\n');
        text
    }

    /// The text table, followed by a one-line total.
    pub fn to_table(&self) -> String {
        let header = [
            "CHANNEL",
            "NAME",
            "TARGET",
            "SIZE",
            "SHA256",
            "OUTCOME",
            "DESTINATION",
        ];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.channel.clone(),
                    row.name.clone(),
                    row.target.clone().unwrap_or_else(|| "-".to_owned()),
                    row.size.map_or_else(|| "-".to_owned(), human_size),
                    row.sha256
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |sha| sha[..sha.len().min(12)].to_owned()),
                    row.outcome.clone(),
                    row.destination.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut push_line = |line: &[String]| {
            let mut text = String::new();
            for (index, (cell, width)) in line.iter().zip(widths).enumerate() {
                if index == 3 {
                    text.push_str(&format!("{cell:>width$}  "));
                } else if index == line.len() - 1 {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  "));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        push_line(&header.map(str::to_owned));
        for line in &cells {
            push_line(line);
        }
        match self.command {
            "dist" => {
                out.push_str(&format!(
                    "dist: {} in {}{}\n",
                    self.units.as_deref().unwrap_or("nothing to publish"),
                    self.dist_dir,
                    self.extras
                        .as_deref()
                        .map_or_else(String::new, |extras| format!(" (also {extras})"))
                ));
                if let Some(files) = &self.dirty_files {
                    const SHOWN: usize = 5;
                    let mut shown: Vec<&str> =
                        files.iter().take(SHOWN).map(String::as_str).collect();
                    let more = format!("and {} more", files.len().saturating_sub(SHOWN));
                    if files.len() > SHOWN {
                        shown.push(&more);
                    }
                    out.push_str(&format!(
                        "built from a dirty tree: {} changed file{} ({}); the images' revision ends in `-dirty` (commit, then dist again for a release; `dist --require-clean` refuses a dirty tree)\n",
                        files.len(),
                        if files.len() == 1 { "" } else { "s" },
                        shown.join(", ")
                    ));
                }
                if let Some(targets) = &self.partial_targets {
                    let planned = self.planned_targets.clone().unwrap_or_default();
                    let missing: Vec<&str> = planned
                        .iter()
                        .filter(|target| !targets.contains(target))
                        .map(String::as_str)
                        .collect();
                    out.push_str(&format!(
                        "partial dist: {} of the {} configured targets ({}); missing {}\n\
                         `publish` refuses a partial dist: build the missing targets where they can be built (CI: one runner per target) \
                         and combine the dists with `dist --merge DIR...`, or publish exactly this with `publish --allow-partial` \
                         (npm and PyPI versions cannot be replaced: the missing targets could never join this version)\n",
                        targets.len(),
                        planned.len(),
                        targets.join(", "),
                        missing.join(", ")
                    ));
                }
            }
            _ => {
                let command = if self.dry_run {
                    "publish (dry run)"
                } else {
                    "publish"
                };
                // Without the manifest, the steps are all there is to count.
                let (units, outcomes): (String, Vec<&str>) = match &self.units {
                    Some(units) => (
                        units.clone(),
                        self.unit_outcomes.iter().map(|o| o.as_str()).collect(),
                    ),
                    None => (
                        format!("{} step(s)", self.rows.len()),
                        self.rows.iter().map(|row| row.outcome.as_str()).collect(),
                    ),
                };
                let counts: Vec<String> = OUTCOME_ORDER
                    .iter()
                    .map(|outcome| outcome.as_str())
                    .filter_map(|outcome| {
                        let count = outcomes.iter().filter(|o| **o == outcome).count();
                        (count > 0).then(|| format!("{count} {outcome}"))
                    })
                    .collect();
                if counts.is_empty() {
                    out.push_str(&format!("{command}: {units}\n"));
                } else {
                    out.push_str(&format!("{command}: {units}: {}\n", counts.join(", ")));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image row's NAME is where it went: the repository of its destination.
    #[test]
    fn image_rows_name_the_repository_they_went_to() {
        for (destination, repository) in [
            ("127.0.0.1:5000/t/g@sha256:4d10", "127.0.0.1:5000/t/g"),
            (
                "127.0.0.1:5000/t/g@sha256:7352 (referrer of sha256:4d10)",
                "127.0.0.1:5000/t/g",
            ),
            ("ghcr.io/acme/greeter:0.3.1", "ghcr.io/acme/greeter"),
            ("localhost:5000/greeter:latest", "localhost:5000/greeter"),
        ] {
            assert_eq!(repository_of(destination), repository, "{destination}");
        }
    }

    /// `dist` and `publish` of one release end with the same units: wheels, npm packages,
    /// images with their platforms, never files or steps; `publish` then says what became of
    /// each unit, combined from its steps.
    #[test]
    fn dist_and_publish_count_the_same_units() {
        use castoff_plan::report::{StepReport, StepState};
        let manifest = Manifest::from_json(include_str!(
            "../../tests/snapshots/dist-bytes/single-cli/manifest.json"
        ))
        .unwrap();
        let dist = of_dist(&manifest, Path::new("dist"), false).to_table();
        assert_eq!(
            dist.lines().last(),
            Some(
                "dist: 4 wheels, 1 sdist, 5 npm packages, 1 image (2 platforms) in dist (also 4 archives, 4 SBOMs)"
            ),
            "{dist}"
        );
        let publish = |outcome: &dyn Fn(&str) -> StepOutcome, dry_run: bool| {
            let report = PublishReport {
                schema_version: 1,
                castoff_version: "0".to_owned(),
                dry_run,
                steps: manifest
                    .steps
                    .iter()
                    .map(|step| StepReport {
                        id: step.id.clone(),
                        destination: "somewhere".to_owned(),
                        state: StepState::Absent,
                        outcome: outcome(&step.id),
                        bytes: 0,
                        attempts: 1,
                        started_at_ms: 0,
                        finished_at_ms: 0,
                        error: None,
                    })
                    .collect(),
            };
            let table = of_publish(Some(&manifest), &report, Path::new("dist")).to_table();
            table.lines().last().unwrap_or_default().to_owned()
        };
        assert_eq!(
            publish(&|_| StepOutcome::Uploaded, false),
            "publish: 4 wheels, 1 sdist, 5 npm packages, 1 image (2 platforms): 11 uploaded"
        );
        assert_eq!(
            publish(&|_| StepOutcome::WouldUpload, true),
            "publish (dry run): 4 wheels, 1 sdist, 5 npm packages, 1 image (2 platforms): 11 would-upload"
        );
        // One tag of the image failed after everything else went up: the image is not
        // complete. The wheels and the sdist were left out; one npm package was there already.
        let mixed = |id: &str| {
            if id.starts_with("pypi-upload/") {
                StepOutcome::Excluded
            } else if id == "oci-tag/greeter/latest" {
                StepOutcome::Failed
            } else if id == "npm-publish/greeter" {
                StepOutcome::Skipped
            } else {
                StepOutcome::Uploaded
            }
        };
        assert!(
            manifest
                .steps
                .iter()
                .any(|s| s.id == "oci-tag/greeter/latest")
                && manifest.steps.iter().any(|s| s.id == "npm-publish/greeter"),
            "step ids: {:?}",
            manifest.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
        );
        assert_eq!(
            publish(&mixed, false),
            "publish: 4 wheels, 1 sdist, 5 npm packages, 1 image (2 platforms): 4 uploaded, 1 skipped, 5 excluded, 1 failed"
        );
        // Without the manifest (unreadable after the run), the steps are counted as such.
        let report = PublishReport {
            schema_version: 1,
            castoff_version: "0".to_owned(),
            dry_run: false,
            steps: Vec::new(),
        };
        assert_eq!(
            of_publish(None, &report, Path::new("dist"))
                .to_table()
                .lines()
                .last(),
            Some("publish: 0 step(s)")
        );
    }

    #[test]
    fn channels_of_kinds() {
        use castoff_plan::ArtifactKind;
        assert_eq!(ArtifactKind::Wheel.channel().as_str(), "python");
        assert_eq!(ArtifactKind::Sdist.channel().as_str(), "python");
        assert_eq!(StepKindName::PypiUpload.channel().as_str(), "python");
        assert_eq!(ArtifactKind::NpmLauncher.channel().as_str(), "npm");
        assert_eq!(
            "oci-tag"
                .parse::<StepKindName>()
                .map(StepKindName::channel)
                .map(|c| c.as_str()),
            Ok("oci")
        );
        assert_eq!(ArtifactKind::Archive.channel().as_str(), "archive");
        assert_eq!(human_size(844), "844 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(100 * 1024 * 1024), "100.0 MiB");
        assert_eq!(human_size(3 * (1 << 30) / 2), "1.5 GiB");
    }
}
