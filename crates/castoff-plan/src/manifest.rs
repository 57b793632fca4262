//! `dist/manifest.json`: the serialized boundary between `dist` and `publish` (and the JSON
//! form of a plan). Only these types derive Serialize/Deserialize; a snapshot test guards the
//! schema, and `SCHEMA_VERSION` changes whenever a field changes meaning.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::plan::{ArtifactKind, BuildSettings, Release, StepKind, StepKindName};
use crate::tag::TagPattern;

/// One line per field where `here` (from dist/manifest.json) and `there` (from the plan)
/// differ, named by its path (`app `greeter` oci.repository`).
fn compare<T: Serialize>(what: &str, here: &T, there: Option<&T>, differences: &mut Vec<String>) {
    let Some(there) = there else {
        differences.push(format!(
            "{what} is in dist/manifest.json but not in the workspace's plan"
        ));
        return;
    };
    let here = serde_json::to_value(here).unwrap_or_default();
    let there = serde_json::to_value(there).unwrap_or_default();
    compare_values(what, "", &here, &there, differences);
}

fn compare_values(
    what: &str,
    path: &str,
    here: &serde_json::Value,
    there: &serde_json::Value,
    differences: &mut Vec<String>,
) {
    use serde_json::Value;
    if let (Value::Object(here), Value::Object(there)) = (here, there) {
        let keys: std::collections::BTreeSet<&String> = here.keys().chain(there.keys()).collect();
        for key in keys {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            compare_values(
                what,
                &path,
                here.get(key).unwrap_or(&Value::Null),
                there.get(key).unwrap_or(&Value::Null),
                differences,
            );
        }
    } else if here != there {
        let shown = |value: &Value| match value {
            Value::Null => "nothing".to_owned(),
            other => other.to_string(),
        };
        differences.push(format!(
            "{what} {path}: dist/manifest.json has {}, the workspace's configuration has {}",
            shown(here),
            shown(there)
        ));
    }
}

/// Version of the manifest schema. Readers refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    /// castoff version that wrote the manifest.
    pub castoff_version: String,
    /// `SOURCE_DATE_EPOCH` the artifacts were built with (none in a plan). A merge refuses
    /// partial dists built with different ones: their timestamps would disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<u64>,
    /// Present when this dist covers only some of the release's targets (`dist --target` on
    /// one CI runner): it is meant to be merged (`dist --merge`), not published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialDist>,
    pub apps: Vec<ManifestApp>,
    pub artifacts: Vec<ManifestArtifact>,
    pub steps: Vec<ManifestStep>,
    /// The crates channel, in publish order: every crate's step runs before the steps above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crates: Vec<ManifestCrate>,
}

/// One crate of the crates channel: its `.crate` (path, size and digest filled by `dist`)
/// and its publish step (`crate-publish/<name>`, after the crates in `after`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestCrate {
    /// `crate/<name>`.
    pub id: String,
    pub name: String,
    pub version: String,
    /// The registry by Cargo's name for it (`crates-io`).
    pub registry: String,
    /// Step ids (`crate-publish/<name>`) of the crates published first.
    pub after: Vec<String>,
    /// Path relative to the dist directory: `crates/<name>-<version>.crate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Hex SHA-256 of the `.crate`: the `cksum` of the registry's index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl ManifestCrate {
    /// `crate-publish/<name>`: the id of its publish step.
    pub fn step_id(&self) -> String {
        format!("crate-publish/{}", self.name)
    }

    /// Its publish step, as `publish` runs it.
    pub fn step(&self) -> ManifestStep {
        ManifestStep {
            id: self.step_id(),
            kind: StepKindName::CratePublish,
            app: self.name.clone(),
            artifact: self.id.clone(),
            tag: None,
            after: self.after.clone(),
            destination: Some(self.registry.clone()),
        }
    }
}

/// What a partial dist covers, out of what the release plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialDist {
    /// Targets whose artifacts this dist holds.
    pub targets: Vec<String>,
    /// Every target the workspace configures, which a complete dist holds.
    pub planned_targets: Vec<String>,
}

/// A released package and its channel coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestApp {
    pub name: String,
    pub version: String,
    pub bins: Vec<String>,
    pub targets: Vec<String>,
    /// Apps (by name) published before this one.
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonCoordinates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm: Option<NpmCoordinates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciCoordinates>,
    /// The git tag pattern the app's versions are released under (`tag`); `publish --tag`
    /// checks the tag against it ([`ManifestApp::git_tag`]).
    #[serde(default)]
    pub tag_pattern: TagPattern,
    /// How `dist` got the app's binaries, one record per target it built (a plan has none).
    /// What `dist` measured, like artifacts' digests: `publish` does not compare it with the
    /// plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<ManifestBuild>,
}

/// The binaries of one app for one target, as `dist` packaged them. One record per target,
/// so what describes a build (how it came, and later its settings) has one home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestBuild {
    pub target: String,
    /// The build settings of the app for the target (for supplied binaries: the configured
    /// ones, which resolved the SBOM).
    pub settings: BuildSettings,
    pub source: BuildSource,
    /// Every binary of the app, in the app's `bins` order.
    pub binaries: Vec<ManifestBinary>,
}

/// How a target's binaries came to `dist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildSource {
    /// From Cargo's output directory: built by `dist` (or before it, with `--no-build`).
    Cargo,
    /// Supplied with `--prebuilt` or `--prebuilt-dir`, built elsewhere.
    Prebuilt,
}

/// One binary a build produced: its name, size and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestBinary {
    pub name: String,
    pub size: u64,
    /// `sha256:<64 hex digits>` of the binary's bytes.
    pub digest: String,
}

impl ManifestApp {
    /// The git tag this app's version is released under: `v1.2.0`, `cli-v1.2.0`.
    pub fn git_tag(&self) -> String {
        self.tag_pattern.expand(&self.name, &self.version)
    }
}

/// Where an app's wheels go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonCoordinates {
    pub name: String,
    pub version: String,
    pub requires_dist: Vec<String>,
    /// `python.upload-limit` in bytes, checked by `publish` before any upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<u64>,
}

/// Where an app's npm packages go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmCoordinates {
    pub name: String,
    pub version: String,
    pub dist_tag: String,
    /// `npm.upload-limit` in bytes, checked by `publish` before any upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<u64>,
}

/// Where an app's images go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OciCoordinates {
    pub repository: String,
    pub tags: Vec<String>,
}

/// One file or image `dist` produces. `path`, `size`, `sha256` and `digest` are filled by
/// `dist`; a plan leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestArtifact {
    pub id: String,
    pub kind: ArtifactKind,
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Ids of the artifacts this one is built from.
    pub inputs: Vec<String>,
    /// Name in its registry: wheel project, npm package, image repository; none for binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_name: Option<String>,
    /// Image platform (`linux/arm64/v8`), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Path relative to the dist directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Registry-specific identity: npm `sha512-…` integrity, OCI `sha256:…` manifest digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One publish action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestStep {
    pub id: String,
    pub kind: StepKindName,
    pub app: String,
    pub artifact: String,
    /// For `oci-tag` steps: the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Ids of the steps that must finish first.
    pub after: Vec<String>,
    /// A configured destination (`python.repositories`, `npm.registries`, `oci.mirrors`);
    /// absent: the channel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

impl Manifest {
    /// The artifact with this id (a scan: for many lookups, [`Manifest::artifacts_by_id`]).
    pub fn artifact(&self, id: &str) -> Option<&ManifestArtifact> {
        self.artifacts.iter().find(|artifact| artifact.id == id)
    }

    /// Every artifact by id, for callers that look up one per step or artifact: a scan per
    /// lookup would make them quadratic in the size of the release.
    pub fn artifacts_by_id(&self) -> HashMap<&str, &ManifestArtifact> {
        self.artifacts
            .iter()
            .map(|artifact| (artifact.id.as_str(), artifact))
            .collect()
    }

    /// The app of this name.
    pub fn app(&self, name: &str) -> Option<&ManifestApp> {
        self.apps.iter().find(|app| app.name == name)
    }

    /// Every publish step in the order `publish` runs them: the crates channel's first, then
    /// `steps`, each of which also waits for every crate (so `cargo install` works by the
    /// time a wheel, an npm package or an image is out).
    pub fn publish_steps(&self) -> Vec<ManifestStep> {
        let crate_steps: Vec<ManifestStep> = self.crates.iter().map(ManifestCrate::step).collect();
        let crate_ids: Vec<String> = crate_steps.iter().map(|step| step.id.clone()).collect();
        let mut steps = crate_steps;
        steps.extend(self.steps.iter().map(|step| {
            let mut step = step.clone();
            let mut after = crate_ids.clone();
            after.append(&mut step.after);
            step.after = after;
            step
        }));
        steps
    }

    /// The manifest of a plan, before anything is built.
    pub fn from_release(release: &Release, castoff_version: &str) -> Manifest {
        let apps = release
            .apps
            .iter()
            .map(|app| ManifestApp {
                name: app.package.name.clone(),
                version: app.package.version.to_string(),
                bins: app.bins.clone(),
                targets: app.targets.iter().map(|t| t.triple.to_owned()).collect(),
                depends_on: app
                    .depends_on
                    .iter()
                    .map(|dep| release.apps[dep.0].package.name.clone())
                    .collect(),
                python: app.python.as_ref().map(|python| PythonCoordinates {
                    name: python.name.clone(),
                    version: python.version.clone(),
                    requires_dist: python
                        .requires
                        .iter()
                        .map(|r| r.to_requires_dist())
                        .collect(),
                    upload_limit: python.upload_limit,
                }),
                npm: app.npm.as_ref().map(|npm| NpmCoordinates {
                    name: npm.name.clone(),
                    version: npm.version.version.clone(),
                    dist_tag: npm.version.dist_tag.to_owned(),
                    upload_limit: npm.upload_limit,
                }),
                oci: app.oci.as_ref().map(|oci| OciCoordinates {
                    repository: oci.repository.clone(),
                    tags: oci.tags.clone(),
                }),
                builds: Vec::new(),
                tag_pattern: app.tag.clone(),
            })
            .collect();
        let artifacts = release
            .artifacts
            .iter()
            .enumerate()
            .map(|(index, artifact)| {
                let app = &release.apps[artifact.app.0];
                let registry_name = match artifact.kind {
                    ArtifactKind::Binary | ArtifactKind::Sbom | ArtifactKind::Archive => None,
                    ArtifactKind::Wheel | ArtifactKind::Sdist => {
                        app.python.as_ref().map(|p| p.name.clone())
                    }
                    ArtifactKind::NpmPlatform => app
                        .npm
                        .as_ref()
                        .zip(artifact.target)
                        .map(|(npm, target)| npm.platform_package(target)),
                    ArtifactKind::NpmLauncher => app.npm.as_ref().map(|npm| npm.name.clone()),
                    ArtifactKind::OciImage | ArtifactKind::OciIndex => {
                        app.oci.as_ref().map(|oci| oci.repository.clone())
                    }
                };
                let platform = match artifact.kind {
                    ArtifactKind::OciImage => artifact
                        .target
                        .and_then(|target| target.oci)
                        .map(|platform| platform.to_string()),
                    _ => None,
                };
                ManifestArtifact {
                    id: release.artifact_id(crate::plan::ArtifactId(index)),
                    kind: artifact.kind,
                    app: app.package.name.clone(),
                    target: artifact.target.map(|t| t.triple.to_owned()),
                    inputs: artifact
                        .inputs
                        .iter()
                        .map(|id| release.artifact_id(*id))
                        .collect(),
                    registry_name,
                    platform,
                    path: None,
                    size: None,
                    sha256: None,
                    digest: None,
                }
            })
            .collect();
        let steps = release
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| ManifestStep {
                id: release.step_id(crate::plan::StepId(index)),
                kind: step.kind.name(),
                app: release.apps[step.app.0].package.name.clone(),
                artifact: release.artifact_id(step.artifact),
                tag: match &step.kind {
                    StepKind::OciTag(tag) => Some(tag.clone()),
                    _ => None,
                },
                after: step.after.iter().map(|id| release.step_id(*id)).collect(),
                destination: step.destination.clone(),
            })
            .collect();
        let crates = release
            .crates
            .iter()
            .map(|krate| ManifestCrate {
                id: krate.artifact_id(),
                name: krate.name.clone(),
                version: krate.version.to_string(),
                registry: krate.registry.clone(),
                after: krate
                    .after
                    .iter()
                    .map(|id| release.crates[id.0].step_id())
                    .collect(),
                path: None,
                size: None,
                sha256: None,
            })
            .collect();
        Manifest {
            schema_version: SCHEMA_VERSION,
            castoff_version: castoff_version.to_owned(),
            source_date_epoch: None,
            partial: None,
            apps,
            artifacts,
            steps,
            crates,
        }
    }

    /// Where this manifest (read from a dist directory) disagrees with `planned`, the manifest
    /// of the workspace's own plan, about what goes where: the apps' registry coordinates
    /// (names, versions, repositories, tags), the artifacts' identities and registry names,
    /// and the steps with their order and destinations. What `dist` measured (paths, sizes,
    /// digests) is not compared. One line per difference; empty when they agree.
    ///
    /// `publish` refuses to start on any difference: destinations come from the workspace's
    /// configuration (or the command line), never from a file that could have been edited.
    pub fn differences_from(&self, planned: &Manifest) -> Vec<String> {
        let mut differences = Vec::new();
        for app in &self.apps {
            // Only where the app goes, not how dist got its binaries.
            let coordinates = |a: &ManifestApp| ManifestApp {
                builds: Vec::new(),
                ..a.clone()
            };
            let there = planned.apps.iter().find(|a| a.name == app.name);
            compare(
                &format!("app `{}`", app.name),
                &coordinates(app),
                there.map(coordinates).as_ref(),
                &mut differences,
            );
        }
        let planned_artifacts = planned.artifacts_by_id();
        let planned_steps: HashMap<&str, &ManifestStep> = planned
            .steps
            .iter()
            .map(|step| (step.id.as_str(), step))
            .collect();
        for artifact in &self.artifacts {
            // Only what identifies the artifact and where it goes, not what dist measured.
            let identity = |a: &ManifestArtifact| ManifestArtifact {
                path: None,
                size: None,
                sha256: None,
                digest: None,
                ..a.clone()
            };
            let there = planned_artifacts.get(artifact.id.as_str()).copied();
            compare(
                &format!("artifact `{}`", artifact.id),
                &identity(artifact),
                there.map(identity).as_ref(),
                &mut differences,
            );
        }
        for step in &self.steps {
            let there = planned_steps.get(step.id.as_str()).copied();
            compare(
                &format!("step `{}`", step.id),
                step,
                there,
                &mut differences,
            );
        }
        for krate in &self.crates {
            // Only where the crate goes and in which order, not what dist measured.
            let identity = |c: &ManifestCrate| ManifestCrate {
                path: None,
                size: None,
                sha256: None,
                ..c.clone()
            };
            let there = planned.crates.iter().find(|c| c.id == krate.id);
            compare(
                &format!("crate `{}`", krate.name),
                &identity(krate),
                there.map(identity).as_ref(),
                &mut differences,
            );
        }
        for krate in &planned.crates {
            if !self.crates.iter().any(|c| c.id == krate.id) {
                differences.push(format!(
                    "crate `{}` is in the workspace's plan but not in dist/manifest.json",
                    krate.name
                ));
            }
        }
        for step in &planned.steps {
            if !self.steps.iter().any(|s| s.id == step.id) {
                differences.push(format!(
                    "step `{}` is in the workspace's plan but not in dist/manifest.json",
                    step.id
                ));
            }
        }
        differences
    }

    /// Pretty JSON with a trailing newline: the bytes written to `manifest.json`.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("manifest serializes");
        json.push('\n');
        json
    }

    /// Parses a manifest, refusing schema versions this castoff does not know.
    pub fn from_json(json: &str) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let version: Version = serde_json::from_str(json).map_err(ManifestError::Invalid)?;
        if version.schema_version != SCHEMA_VERSION {
            return Err(ManifestError::SchemaVersion {
                found: version.schema_version,
            });
        }
        serde_json::from_str(json).map_err(ManifestError::Invalid)
    }
}

/// A manifest that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not valid: {0}")]
    // Not a `#[source]`: the message already quotes it, and a cause line would repeat it.
    Invalid(serde_json::Error),
    #[error("the manifest has schema version {found}, this castoff reads version {SCHEMA_VERSION}")]
    SchemaVersion { found: u32 },
}

impl ManifestError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ManifestError::Invalid(_) => "run `dist` again to rewrite it; never edit it by hand",
            ManifestError::SchemaVersion { .. } => {
                "run `dist` and `publish` with the same castoff version"
            }
        }
    }
}
