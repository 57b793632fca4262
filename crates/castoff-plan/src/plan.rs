//! The release plan: `cargo metadata` + configuration → apps, artifacts and publish steps with
//! explicit edges. Everything is decided here; `dist` and `publish` only execute it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use cargo_metadata::{Metadata, Package as CargoPackage, TargetKind};
use semver::Version;
use serde::de::DeserializeOwned;

use crate::config::{
    self, ExtraFileConfig, HealthcheckConfig, NpmConfig, OciConfig, PackageConfig, PythonConfig,
    WorkspaceConfig,
};
use crate::error::{ConfigError, PlanError};
use crate::names;
use crate::target::Target;
use crate::version::{self, NpmVersion};

/// Targets used when neither the workspace nor the package names any: the platforms most
/// users of a command-line tool are on.
pub const DEFAULT_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

/// Index of an app in [`Release::apps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub usize);

/// Index of an artifact in [`Release::artifacts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactId(pub usize);

/// Index of a publish step in [`Release::steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId(pub usize);

/// What the user asked to plan: a subset of packages and targets (empty = all).
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub packages: Vec<String>,
    pub targets: Vec<String>,
}

/// Everything castoff will build and publish, decided before any work starts.
#[derive(Debug, Clone)]
pub struct Release {
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
    pub apps: Vec<App>,
    pub artifacts: Vec<Artifact>,
    pub steps: Vec<Step>,
    /// Deflate level (0-9) of every compressed artifact (`workspace.compression-level`).
    pub compression_level: u32,
}

/// The deflate level when `compression-level` is not set: zlib's default.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

/// A released package: its binaries, targets and channels.
#[derive(Debug, Clone)]
pub struct App {
    pub package: Package,
    pub bins: Vec<String>,
    pub targets: Vec<&'static Target>,
    /// Build Linux glibc targets with `-C target-feature=+crt-static`.
    pub crt_static: bool,
    pub python: Option<PythonChannel>,
    pub npm: Option<NpmChannel>,
    pub oci: Option<OciChannel>,
    /// Apps of this release that must be published before this one.
    pub depends_on: Vec<AppId>,
}

/// Facts about a package, from Cargo.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub manifest_path: PathBuf,
    pub description: Option<String>,
    pub license: Option<String>,
    pub license_file: Option<PathBuf>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub documentation: Option<String>,
    /// Absolute path of the README, when the package has one.
    pub readme: Option<PathBuf>,
    pub keywords: Vec<String>,
    pub authors: Vec<String>,
}

impl App {
    /// File name of the direct-download archive of one target:
    /// `greeter-0.3.1-x86_64-unknown-linux-gnu.tar.gz`, `.zip` for Windows (where a `.zip`
    /// opens without extra tools and `.tar.gz` does not).
    pub fn archive_file_name(&self, target: &Target) -> String {
        let extension = if target.os == crate::target::Os::Windows {
            "zip"
        } else {
            "tar.gz"
        };
        format!(
            "{}-{}-{}.{extension}",
            self.package.name, self.package.version, target.triple
        )
    }
}

impl Package {
    /// The directory holding the package's `Cargo.toml`.
    pub fn directory(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// The wheel channel of an app.
#[derive(Debug, Clone)]
pub struct PythonChannel {
    /// Distribution name as configured (METADATA `Name`).
    pub name: String,
    pub module: String,
    /// PEP 440 version.
    pub version: String,
    pub requires: Vec<PythonRequirement>,
    pub requires_python: Option<String>,
    pub classifiers: Vec<String>,
    /// Upload destinations in order; empty: the one chosen at publish time.
    pub repositories: Vec<String>,
    /// `python.upload-limit` in bytes; none: each index's known default.
    pub upload_limit: Option<u64>,
}

/// One `Requires-Dist` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonRequirement {
    /// Another released app of the workspace, pinned to its exact version.
    Workspace {
        distribution: String,
        version: String,
    },
    /// A PEP 508 requirement string, passed through.
    External(String),
}

impl PythonRequirement {
    /// The `Requires-Dist` value.
    pub fn to_requires_dist(&self) -> String {
        match self {
            PythonRequirement::Workspace {
                distribution,
                version,
            } => format!("{distribution}=={version}"),
            PythonRequirement::External(requirement) => requirement.clone(),
        }
    }
}

/// The npm channel of an app.
#[derive(Debug, Clone)]
pub struct NpmChannel {
    /// Launcher package name.
    pub name: String,
    pub version: NpmVersion,
    /// Launcher packages of other apps, `(name, exact version)`.
    pub dependencies: Vec<(String, String)>,
    pub binary_path_env: String,
    pub node: String,
    /// Registries in order; empty: the one chosen at publish time.
    pub registries: Vec<String>,
    /// `npm.upload-limit` in bytes; none: each registry's known default.
    pub upload_limit: Option<u64>,
}

impl NpmChannel {
    /// Name of the platform package for a target: `@acme/greeter-linux-x64-gnu`.
    pub fn platform_package(&self, target: &Target) -> String {
        format!("{}-{}", self.name, target.npm_platform_suffix())
    }
}

/// The image channel of an app.
#[derive(Debug, Clone)]
pub struct OciChannel {
    pub repository: String,
    /// More repositories receiving the same image, pushed after `repository`.
    pub mirrors: Vec<String>,
    pub tags: Vec<String>,
    pub base: BaseImage,
    pub user: String,
    pub workdir: Option<String>,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<u16>,
    pub labels: BTreeMap<String, String>,
    pub cmd: Option<Vec<String>>,
    pub stop_signal: Option<String>,
    /// The binary the entrypoint runs.
    pub entrypoint: String,
    pub healthcheck: Option<Healthcheck>,
    pub files: Vec<ExtraFile>,
    pub layer_compression: LayerCompression,
}

/// How castoff's own image layers are compressed (a base image's layers stay as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LayerCompression {
    /// `tar+gzip`: every runtime reads it.
    #[default]
    Gzip,
    /// `tar+zstd`: smaller and faster to unpack; needs Docker 23 or containerd 1.5 and later.
    Zstd,
}

/// Where an image starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseImage {
    Scratch,
    /// A registry reference pinned by digest: `registry/repo@sha256:…` (a tag may precede it).
    Reference(String),
    /// An OCI image layout on disk.
    Layout(PathBuf),
}

/// The Docker health check of an image, durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub cmd: Vec<String>,
    pub interval_nanos: Option<u64>,
    pub timeout_nanos: Option<u64>,
    pub start_period_nanos: Option<u64>,
    pub retries: Option<u32>,
}

/// A file copied into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute source path (inside the workspace).
    pub src: PathBuf,
    /// Absolute, normalized path in the image.
    pub dst: String,
    pub mode: u32,
}

/// What kind of thing an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactKind {
    /// The app's compiled binaries for one target.
    Binary,
    /// The CycloneDX SBOM of one target's binary (its resolved dependency graph); embedded in
    /// the wheel, the npm platform package and attached to the image.
    Sbom,
    /// A direct-download archive of one target: `.tar.gz` on Unix, `.zip` on Windows.
    Archive,
    Wheel,
    NpmPlatform,
    NpmLauncher,
    OciImage,
    OciIndex,
}

impl ArtifactKind {
    /// Stable name used in ids, JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Binary => "binary",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::Archive => "archive",
            ArtifactKind::Wheel => "wheel",
            ArtifactKind::NpmPlatform => "npm-platform",
            ArtifactKind::NpmLauncher => "npm-launcher",
            ArtifactKind::OciImage => "oci-image",
            ArtifactKind::OciIndex => "oci-index",
        }
    }
}

/// One thing `dist` produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub kind: ArtifactKind,
    pub app: AppId,
    /// `None` for what spans targets (npm launcher, image index).
    pub target: Option<&'static Target>,
    /// Artifacts this one is built from.
    pub inputs: Vec<ArtifactId>,
}

/// What a publish step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    PypiUpload,
    NpmPublish,
    OciPushImage,
    OciPushIndex,
    OciTag(String),
    /// The SBOM as an OCI artifact referring to its image (referrers API, or the
    /// `sha256-<hex>` tag fallback on registries without it).
    OciAttachSbom,
}

impl StepKind {
    /// Stable name used in ids, JSON and text output.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::PypiUpload => "pypi-upload",
            StepKind::NpmPublish => "npm-publish",
            StepKind::OciPushImage => "oci-push-image",
            StepKind::OciPushIndex => "oci-push-index",
            StepKind::OciTag(_) => "oci-tag",
            StepKind::OciAttachSbom => "oci-attach-sbom",
        }
    }
}

/// One publish action and the steps that must finish before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub app: AppId,
    pub artifact: ArtifactId,
    pub after: Vec<StepId>,
    /// A configured destination (`python.repositories`, `npm.registries`, `oci.mirrors`);
    /// `None`: the channel's default (npm and PyPI: chosen at publish time; OCI: `repository`).
    pub destination: Option<String>,
}

impl Release {
    /// Stable, readable id of an artifact: `wheel/greeter/x86_64-unknown-linux-gnu`.
    pub fn artifact_id(&self, id: ArtifactId) -> String {
        let artifact = &self.artifacts[id.0];
        let app = &self.apps[artifact.app.0].package.name;
        match artifact.target {
            Some(target) => format!("{}/{app}/{}", artifact.kind.as_str(), target.triple),
            None => format!("{}/{app}", artifact.kind.as_str()),
        }
    }

    /// Stable, readable id of a step: `npm-publish/greeter/x86_64-unknown-linux-gnu`,
    /// `oci-tag/greeter/latest`.
    pub fn step_id(&self, id: StepId) -> String {
        let step = &self.steps[id.0];
        let artifact = &self.artifacts[step.artifact.0];
        let app = &self.apps[step.app.0].package.name;
        let id = match (&step.kind, artifact.target) {
            (StepKind::OciTag(tag), _) => format!("oci-tag/{app}/{tag}"),
            (kind, Some(target)) => format!("{}/{app}/{}", kind.as_str(), target.triple),
            (kind, None) => format!("{}/{app}", kind.as_str()),
        };
        match &step.destination {
            Some(destination) => format!("{id}@{destination}"),
            None => id,
        }
    }

    /// Steps in an order that respects every edge (a topological order, stable by index).
    pub fn publish_order(&self) -> Vec<StepId> {
        let mut done = vec![false; self.steps.len()];
        let mut order = Vec::with_capacity(self.steps.len());
        while order.len() < self.steps.len() {
            let before = order.len();
            for (index, step) in self.steps.iter().enumerate() {
                if !done[index] && step.after.iter().all(|after| done[after.0]) {
                    done[index] = true;
                    order.push(StepId(index));
                }
            }
            assert!(order.len() > before, "publish steps form a cycle");
        }
        order
    }

    /// All targets of the release, in table order.
    pub fn targets(&self) -> Vec<&'static Target> {
        let mut targets: Vec<&'static Target> = Vec::new();
        for target in Target::all() {
            if self
                .apps
                .iter()
                .any(|app| app.targets.iter().any(|t| t.triple == target.triple))
            {
                targets.push(target);
            }
        }
        targets
    }
}

/// Builds the release plan of a workspace from its `cargo metadata` (`--no-deps` suffices).
pub fn plan(metadata: &Metadata, options: &PlanOptions) -> Result<Release, PlanError> {
    let mut errors = Vec::new();
    let workspace_manifest = metadata
        .workspace_root
        .join("Cargo.toml")
        .into_std_path_buf();
    let workspace_config: WorkspaceConfig = parse_table(
        &metadata.workspace_metadata,
        &workspace_manifest,
        "workspace.metadata.castoff",
        &mut errors,
    )
    .unwrap_or_default();
    let compression_level = match workspace_config.compression_level {
        None => DEFAULT_COMPRESSION_LEVEL,
        Some(level @ 0..=9) => level,
        Some(level) => {
            errors.push(ConfigError {
                file: workspace_manifest.clone(),
                key: "workspace.metadata.castoff.compression-level".to_owned(),
                problem: format!("{level} is not a deflate level"),
                hint: "use 0 (store) to 9 (smallest); the default is 6".to_owned(),
            });
            DEFAULT_COMPRESSION_LEVEL
        }
    };
    let workspace_targets = workspace_config.targets.as_ref().map(|triples| {
        resolve_targets(
            triples,
            &workspace_manifest,
            "workspace.metadata.castoff.targets",
            &mut errors,
        )
    });

    // Every released package of the workspace, in the order Cargo lists members.
    let mut released: Vec<(&CargoPackage, PackageConfig)> = Vec::new();
    for package in metadata.workspace_packages() {
        if package.metadata.get("castoff").is_none() {
            continue;
        }
        let manifest = package.manifest_path.as_std_path();
        if let Some(config) = parse_table(
            &package.metadata,
            manifest,
            "package.metadata.castoff",
            &mut errors,
        ) {
            released.push((package, config));
        }
    }

    for requested in &options.packages {
        if !released
            .iter()
            .any(|(package, _)| &package.name.to_string() == requested)
        {
            let known: Vec<String> = released.iter().map(|(p, _)| p.name.to_string()).collect();
            errors.push(ConfigError {
                file: workspace_manifest.clone(),
                key: "--package".to_owned(),
                problem: format!("`{requested}` is not a released package of this workspace"),
                hint: if known.is_empty() {
                    "add a [package.metadata.castoff] table to the package to release it".to_owned()
                } else {
                    format!("released packages: {}", known.join(", "))
                },
            });
        }
    }

    let mut apps = Vec::new();
    for (package, config) in &released {
        if !options.packages.is_empty() && !options.packages.contains(&package.name.to_string()) {
            continue;
        }
        if let Some(app) = plan_app(
            package,
            config,
            workspace_targets.as_deref(),
            &released,
            metadata.workspace_root.as_std_path(),
            &mut errors,
        ) {
            let crt_static = config
                .crt_static
                .or(workspace_config.crt_static)
                .unwrap_or(false);
            apps.push(App { crt_static, ..app });
        }
    }
    check_unique_names(&apps, &mut errors);
    link_dependencies(&mut apps, &released, &mut errors);

    if !options.targets.is_empty() {
        let mut requested = Vec::new();
        for triple in &options.targets {
            match triple.parse::<&'static Target>() {
                Ok(target) => requested.push(target),
                Err(unknown) => errors.push(ConfigError {
                    file: workspace_manifest.clone(),
                    key: "--target".to_owned(),
                    problem: format!("unknown target `{}`", unknown.triple),
                    hint: unknown
                        .to_string()
                        .split_once("hint: ")
                        .map_or_else(String::new, |(_, hint)| hint.to_owned()),
                }),
            }
        }
        for target in &requested {
            if !apps.iter().any(|app| app.targets.contains(target)) {
                errors.push(ConfigError {
                    file: workspace_manifest.clone(),
                    key: "--target".to_owned(),
                    problem: format!("no released package is built for `{}`", target.triple),
                    hint: "add the target to `targets` in [workspace.metadata.castoff] or [package.metadata.castoff]".to_owned(),
                });
            }
        }
        for app in &mut apps {
            app.targets.retain(|target| requested.contains(target));
        }
    }

    if !errors.is_empty() {
        return Err(PlanError { errors });
    }
    let mut release = assemble(
        metadata.workspace_root.clone().into_std_path_buf(),
        metadata.target_directory.clone().into_std_path_buf(),
        apps,
    );
    release.compression_level = compression_level;
    Ok(release)
}

/// Deserializes the `castoff` entry of a metadata table, turning serde's complaint into an
/// error that names the file and the full key.
fn parse_table<T: DeserializeOwned>(
    metadata: &serde_json::Value,
    file: &Path,
    table: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = match metadata.get("castoff") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(value) => value.clone(),
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(config) => Some(config),
        Err(error) => {
            let path = error.path().to_string();
            let key = if path == "." {
                table.to_owned()
            } else {
                format!("{table}.{path}")
            };
            let inner = error.into_inner().to_string();
            let (key, problem, hint) = match unknown_field(&inner) {
                Some((field, expected)) => (
                    if key.ends_with(&format!(".{field}")) {
                        key
                    } else {
                        format!("{key}.{field}")
                    },
                    format!("unknown key `{field}`"),
                    match closest(&field, &expected) {
                        Some(close) => format!(
                            "did you mean `{close}`? known keys here: {}",
                            expected.join(", ")
                        ),
                        None => format!(
                            "known keys here: {}; see docs/configuration.md",
                            expected.join(", ")
                        ),
                    },
                ),
                None => (
                    key,
                    inner,
                    "see docs/configuration.md for the expected value".to_owned(),
                ),
            };
            errors.push(ConfigError {
                file: file.to_owned(),
                key,
                problem,
                hint,
            });
            None
        }
    }
}

/// Picks apart serde's "unknown field `x`, expected one of `a`, `b`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((field.to_owned(), expected))
}

/// The known key nearest to a misspelled one, if it is near enough to be a typo.
fn closest(field: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|candidate| (edit_distance(field, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn resolve_targets(
    triples: &[String],
    file: &Path,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<&'static Target> {
    let mut targets = Vec::new();
    for triple in triples {
        match triple.parse::<&'static Target>() {
            Ok(target) if targets.contains(&target) => errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_owned(),
                problem: format!("target `{triple}` is listed twice"),
                hint: "list each target once".to_owned(),
            }),
            Ok(target) => targets.push(target),
            Err(unknown) => errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_owned(),
                problem: format!("unknown target `{}`", unknown.triple),
                hint: format!(
                    "supported targets are: {}",
                    Target::all()
                        .iter()
                        .map(|t| t.triple)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    if triples.is_empty() {
        errors.push(ConfigError {
            file: file.to_owned(),
            key: key.to_owned(),
            problem: "the list of targets is empty".to_owned(),
            hint: "name at least one target, or remove the key to use the defaults".to_owned(),
        });
    }
    targets
}

/// Everything about one released package except its links to other apps.
fn plan_app(
    package: &CargoPackage,
    config: &PackageConfig,
    workspace_targets: Option<&[&'static Target]>,
    released: &[(&CargoPackage, PackageConfig)],
    workspace_root: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<App> {
    let manifest = package.manifest_path.as_std_path();
    let key = |name: &str| format!("package.metadata.castoff.{name}");
    let error_count = errors.len();
    let mut error = |key: String, problem: String, hint: String| {
        errors.push(ConfigError {
            file: manifest.to_owned(),
            key,
            problem,
            hint,
        });
    };

    let cargo_bins: Vec<String> = package
        .targets
        .iter()
        .filter(|target| target.kind.contains(&TargetKind::Bin))
        .map(|target| target.name.clone())
        .collect();
    let bins = match &config.bins {
        Some(bins) => {
            for bin in bins {
                if !cargo_bins.contains(bin) {
                    error(
                        key("bins"),
                        format!("`{bin}` is not a binary of package `{}`", package.name),
                        if cargo_bins.is_empty() {
                            "the package has no [[bin]] target; add one (src/main.rs) or remove the castoff table".to_owned()
                        } else {
                            format!("binaries of `{}`: {}", package.name, cargo_bins.join(", "))
                        },
                    );
                }
            }
            if bins.is_empty() {
                error(
                    key("bins"),
                    "the list of binaries is empty".to_owned(),
                    "name at least one binary, or remove the key to ship all of them".to_owned(),
                );
            }
            bins.clone()
        }
        None if cargo_bins.is_empty() => {
            error(
                "package.metadata.castoff".to_owned(),
                format!("package `{}` has no binary to release", package.name),
                "add a [[bin]] target (src/main.rs) or remove the [package.metadata.castoff] table"
                    .to_owned(),
            );
            Vec::new()
        }
        None => cargo_bins.clone(),
    };

    let targets = match (&config.targets, workspace_targets) {
        (Some(triples), _) => {
            let mut target_errors = Vec::new();
            let targets = resolve_targets(triples, manifest, &key("targets"), &mut target_errors);
            for target_error in target_errors {
                error(target_error.key, target_error.problem, target_error.hint);
            }
            targets
        }
        (None, Some(targets)) => targets.to_vec(),
        (None, None) => DEFAULT_TARGETS
            .iter()
            .map(|triple| triple.parse().expect("default targets are in the table"))
            .collect(),
    };

    let version = package.version.clone();
    let python = config
        .python
        .as_ref()
        .and_then(|python| plan_python(package, python, &version, released, &mut error));
    let npm = config
        .npm
        .as_ref()
        .and_then(|npm| plan_npm(package, npm, &version, &mut error));
    let oci = config
        .oci
        .as_ref()
        .and_then(|oci| plan_oci(package, oci, &version, &bins, workspace_root, &mut error));

    let readme = package.readme.as_ref().map(|readme| {
        package
            .manifest_path
            .parent()
            .map_or_else(|| readme.clone(), |dir| dir.join(readme))
            .into_std_path_buf()
    });
    let license_file = package.license_file.as_ref().map(|file| {
        package
            .manifest_path
            .parent()
            .map_or_else(|| file.clone(), |dir| dir.join(file))
            .into_std_path_buf()
    });

    if errors.len() > error_count {
        return None;
    }
    Some(App {
        package: Package {
            name: package.name.to_string(),
            version,
            manifest_path: manifest.to_owned(),
            description: package.description.clone(),
            license: package.license.clone(),
            license_file,
            repository: package.repository.clone(),
            homepage: package.homepage.clone(),
            documentation: package.documentation.clone(),
            readme,
            keywords: package.keywords.clone(),
            authors: package.authors.clone(),
        },
        bins,
        targets,
        crt_static: false,
        python,
        npm,
        oci,
        depends_on: Vec::new(),
    })
}

fn version_error(error: &mut impl FnMut(String, String, String), refusal: version::VersionError) {
    error(
        "package.version".to_owned(),
        format!(
            "`{}` cannot be published to {}: {}",
            refusal.version, refusal.registry, refusal.reason
        ),
        refusal.hint,
    );
}

fn plan_python(
    package: &CargoPackage,
    config: &PythonConfig,
    version: &Version,
    released: &[(&CargoPackage, PackageConfig)],
    error: &mut impl FnMut(String, String, String),
) -> Option<PythonChannel> {
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| package.name.to_string());
    if let Err(problem) = names::check_pypi_name(&name) {
        error(
            "package.metadata.castoff.python.name".to_owned(),
            format!("`{name}`: {problem}"),
            "choose a name such as `my-tool`".to_owned(),
        );
    }
    for (index, repository) in config.repositories.iter().enumerate() {
        let redacted = names::redact_userinfo(repository);
        if redacted != *repository {
            error(
                format!("package.metadata.castoff.python.repositories[{index}]"),
                format!("`{redacted}`: credentials written into the URL are refused (they would show in the plan, dist/manifest.json and logs)"),
                "remove `user:password@`; `publish` takes the credentials from CASTOFF_PYPI_TOKEN, TWINE_USERNAME/TWINE_PASSWORD or the ~/.pypirc section of that name".to_owned(),
            );
        } else if repository.trim().is_empty() || config.repositories[..index].contains(repository)
        {
            error(
                format!("package.metadata.castoff.python.repositories[{index}]"),
                format!("`{repository}` is empty or listed twice"),
                "list each index once: `pypi`, `testpypi`, a ~/.pypirc section or an upload URL"
                    .to_owned(),
            );
        }
    }
    let module = config
        .module
        .clone()
        .unwrap_or_else(|| names::wheel_distribution_name(&name));
    if let Err(problem) = names::check_python_module(&module) {
        error(
            "package.metadata.castoff.python.module".to_owned(),
            format!("`{module}`: {problem}"),
            "set `module` to an identifier such as `my_tool`".to_owned(),
        );
    }
    let pep440 = match version::pep440(version) {
        Ok(pep440) => pep440,
        Err(refusal) => {
            version_error(error, refusal);
            return None;
        }
    };
    let mut requires = Vec::new();
    for requirement in &config.requires {
        let workspace_app = released
            .iter()
            .find(|(other, _)| other.name.as_str() == requirement.as_str());
        match workspace_app {
            Some((other, other_config)) => match &other_config.python {
                Some(other_python) => {
                    // A version PEP 440 cannot spell is reported when that app is planned.
                    if let Ok(other_version) = version::pep440(&other.version) {
                        requires.push(PythonRequirement::Workspace {
                            distribution: other_python
                                .name
                                .clone()
                                .unwrap_or_else(|| other.name.to_string()),
                            version: other_version,
                        });
                    }
                }
                None => error(
                    "package.metadata.castoff.python.requires".to_owned(),
                    format!(
                        "`{requirement}` is released without a wheel, so a wheel cannot require it"
                    ),
                    format!(
                        "add a `python` table to [package.metadata.castoff] of `{requirement}`"
                    ),
                ),
            },
            None => requires.push(PythonRequirement::External(requirement.clone())),
        }
    }
    Some(PythonChannel {
        name,
        module,
        version: pep440,
        requires,
        requires_python: config.requires_python.clone(),
        classifiers: config.classifiers.clone(),
        repositories: config.repositories.clone(),
        upload_limit: upload_limit("python", &config.upload_limit, error),
    })
}

fn plan_npm(
    package: &CargoPackage,
    config: &NpmConfig,
    version: &Version,
    error: &mut impl FnMut(String, String, String),
) -> Option<NpmChannel> {
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| package.name.to_string());
    if let Err(problem) = names::check_npm_name(&name) {
        error(
            "package.metadata.castoff.npm.name".to_owned(),
            format!("`{name}`: {problem}"),
            "choose a name such as `my-tool` or `@scope/my-tool`".to_owned(),
        );
    }
    let npm_version = match version::npm(version) {
        Ok(npm_version) => npm_version,
        Err(refusal) => {
            version_error(error, refusal);
            return None;
        }
    };
    for (index, registry) in config.registries.iter().enumerate() {
        let is_url = registry.starts_with("https://") || registry.starts_with("http://");
        let redacted = names::redact_userinfo(registry);
        if redacted != *registry {
            error(
                format!("package.metadata.castoff.npm.registries[{index}]"),
                format!("`{redacted}`: credentials written into the URL are refused (they would show in the plan, dist/manifest.json and logs)"),
                "remove `user:password@`; `publish` takes the token from .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN".to_owned(),
            );
        } else if !is_url || config.registries[..index].contains(registry) {
            error(
                format!("package.metadata.castoff.npm.registries[{index}]"),
                format!("`{registry}` is not a registry URL, or is listed twice"),
                "list each registry once, as a URL such as https://registry.npmjs.org/".to_owned(),
            );
        }
    }
    let bare = name.rsplit('/').next().unwrap_or(&name);
    let binary_path_env = config.binary_path_env.clone().unwrap_or_else(|| {
        let mut env: String = bare
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.push_str("_BINARY_PATH");
        env
    });
    let valid_env = !binary_path_env.is_empty()
        && !binary_path_env.starts_with(|c: char| c.is_ascii_digit())
        && binary_path_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_env {
        error(
            "package.metadata.castoff.npm.binary-path-env".to_owned(),
            format!("`{binary_path_env}` is not a portable environment variable name"),
            "use letters, digits and `_`, not starting with a digit".to_owned(),
        );
    }
    Some(NpmChannel {
        name,
        version: npm_version,
        // Resolved once every app is planned.
        dependencies: Vec::new(),
        binary_path_env,
        node: config.node.clone().unwrap_or_else(|| ">=18".to_owned()),
        registries: config.registries.clone(),
        upload_limit: upload_limit("npm", &config.upload_limit, error),
    })
}

/// `<channel>.upload-limit` in bytes, or an error naming the key.
fn upload_limit(
    channel: &str,
    value: &Option<String>,
    error: &mut impl FnMut(String, String, String),
) -> Option<u64> {
    let text = value.as_deref()?;
    let bytes = crate::config::parse_size(text);
    if bytes.is_none() {
        error(
            format!("package.metadata.castoff.{channel}.upload-limit"),
            format!("`{text}` is not a size above zero"),
            "write a whole number with a unit, such as \"300MiB\" or \"1GiB\"".to_owned(),
        );
    }
    bytes
}

fn plan_oci(
    package: &CargoPackage,
    config: &OciConfig,
    version: &Version,
    bins: &[String],
    workspace_root: &Path,
    error: &mut impl FnMut(String, String, String),
) -> Option<OciChannel> {
    let key = |name: &str| format!("package.metadata.castoff.oci.{name}");
    let mut failed = false;
    let mut fail = |key: String, problem: String, hint: String| {
        failed = true;
        error(key, problem, hint);
    };
    for (index, mirror) in config.mirrors.iter().enumerate() {
        if let Err(problem) = names::check_oci_repository(mirror) {
            fail(
                format!("{}[{index}]", key("mirrors")),
                format!("`{mirror}`: {problem}"),
                "write it as `registry/namespace/name`, e.g. `docker.io/acme/greeter`".to_owned(),
            );
        } else if mirror == &config.repository || config.mirrors[..index].contains(mirror) {
            fail(
                format!("{}[{index}]", key("mirrors")),
                format!("`{mirror}` is listed twice"),
                "name each repository once: `repository` first, then its mirrors".to_owned(),
            );
        }
    }
    if let Err(problem) = names::check_oci_repository(&config.repository) {
        fail(
            key("repository"),
            format!(
                "`{}`: {problem}",
                names::redact_userinfo(&config.repository)
            ),
            "write it as `registry/namespace/name`, e.g. `ghcr.io/acme/greeter`".to_owned(),
        );
    }
    let package_dir = package
        .manifest_path
        .parent()
        .map(|dir| dir.as_std_path().to_owned())
        .unwrap_or_default();
    let base = match config.base.as_deref() {
        None | Some("scratch") => BaseImage::Scratch,
        Some(base) => match base.strip_prefix("oci-layout:") {
            Some(dir) => BaseImage::Layout(package_dir.join(dir)),
            None => {
                let pinned = base.split_once("@sha256:").is_some_and(|(_, hex)| {
                    hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                });
                if !pinned {
                    fail(
                        key("base"),
                        format!("base image `{base}` is not pinned by digest"),
                        "pin it, e.g. `gcr.io/distroless/static-debian12@sha256:<digest>` (find the digest with `skopeo inspect`), or use `scratch` or `oci-layout:<dir>`".to_owned(),
                    );
                }
                BaseImage::Reference(base.to_owned())
            }
        },
    };
    let user = config
        .user
        .clone()
        .unwrap_or_else(|| "65532:65532".to_owned());
    let numeric = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u32>().is_ok()
    };
    let user_ok = match user.split_once(':') {
        Some((uid, gid)) => numeric(uid) && numeric(gid),
        None => numeric(&user),
    };
    if !user_ok {
        fail(
            key("user"),
            format!("user `{user}` is not numeric"),
            "use `uid:gid` numbers, e.g. `65532:65532`: Kubernetes `runAsNonRoot` cannot verify a user name".to_owned(),
        );
    }
    if let Some(workdir) = &config.workdir
        && !is_normalized_absolute(workdir)
    {
        fail(
            key("workdir"),
            format!("`{workdir}` is not an absolute, normalized path"),
            "write it like `/srv/app`".to_owned(),
        );
    }
    let layer_compression = match config.layer_compression.as_deref() {
        None | Some("gzip") => LayerCompression::Gzip,
        Some("zstd") => LayerCompression::Zstd,
        Some(other) => {
            fail(
                key("layer-compression"),
                format!("`{other}` is not a layer compression castoff writes"),
                "use `gzip` (the default, read by every runtime) or `zstd` (read by Docker 23 and containerd 1.5 and later)".to_owned(),
            );
            LayerCompression::Gzip
        }
    };
    for name in config.env.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            fail(
                key(&format!("env.{name}")),
                format!("`{name}` is not an environment variable name"),
                "use a name without `=`, e.g. `RUST_LOG`".to_owned(),
            );
        }
    }
    if config.ports.contains(&0) {
        fail(
            key("ports"),
            "port 0 is not a port a service listens on".to_owned(),
            "list the TCP ports the service listens on, e.g. [8080]".to_owned(),
        );
    }
    let entrypoint = config
        .entrypoint
        .clone()
        .or_else(|| bins.first().cloned())
        .unwrap_or_default();
    // An empty `bins` is reported on its own; naming no entrypoint then says nothing new.
    if !bins.is_empty() && !bins.contains(&entrypoint) {
        fail(
            key("entrypoint"),
            format!("`{entrypoint}` is not one of the released binaries"),
            format!("released binaries: {}", bins.join(", ")),
        );
    }
    let healthcheck = config
        .healthcheck
        .as_ref()
        .map(|check| plan_healthcheck(check, &mut fail));
    let mut files = Vec::new();
    for (index, file) in config.files.iter().enumerate() {
        if let Some(extra) = plan_extra_file(
            file,
            &package_dir,
            workspace_root,
            &format!("files[{index}]"),
            &mut fail,
        ) {
            files.push(extra);
        }
    }
    for tag in version::oci_tags(version) {
        if !version::is_valid_oci_tag(&tag) {
            fail(
                "package.version".to_owned(),
                format!(
                    "`{version}` cannot be an image tag: `{tag}` is longer than the 128 characters a tag may have"
                ),
                "shorten the pre-release and build metadata".to_owned(),
            );
        }
    }
    if failed {
        return None;
    }
    Some(OciChannel {
        repository: config.repository.clone(),
        mirrors: config.mirrors.clone(),
        tags: version::oci_tags(version),
        base,
        user,
        workdir: config.workdir.clone(),
        env: config.env.clone(),
        ports: config.ports.clone(),
        labels: config.labels.clone(),
        cmd: config.cmd.clone(),
        stop_signal: config.stop_signal.clone(),
        entrypoint,
        healthcheck,
        files,
        layer_compression,
    })
}

fn plan_healthcheck(
    config: &HealthcheckConfig,
    fail: &mut impl FnMut(String, String, String),
) -> Healthcheck {
    let key = |name: &str| format!("package.metadata.castoff.oci.healthcheck.{name}");
    if config.cmd.is_empty() {
        fail(
            key("cmd"),
            "the health check command is empty".to_owned(),
            "give the command and its arguments, e.g. [\"/usr/local/bin/app\", \"healthcheck\"]"
                .to_owned(),
        );
    }
    let mut duration = |name: &str, value: &Option<String>| {
        value.as_ref().and_then(|text| {
            let nanos = config::parse_duration_nanos(text);
            if nanos.is_none() {
                fail(
                    key(name),
                    format!("`{text}` is not a duration"),
                    "write durations like \"10s\", \"1m30s\" or \"500ms\"".to_owned(),
                );
            }
            nanos
        })
    };
    Healthcheck {
        cmd: config.cmd.clone(),
        interval_nanos: duration("interval", &config.interval),
        timeout_nanos: duration("timeout", &config.timeout),
        start_period_nanos: duration("start-period", &config.start_period),
        retries: config.retries,
    }
}

fn plan_extra_file(
    config: &ExtraFileConfig,
    package_dir: &Path,
    workspace_root: &Path,
    entry: &str,
    fail: &mut impl FnMut(String, String, String),
) -> Option<ExtraFile> {
    let key = |name: &str| format!("package.metadata.castoff.oci.{entry}.{name}");
    let mut ok = true;
    if Path::new(&config.src).is_absolute() {
        fail(
            key("src"),
            format!("`{}` is an absolute path", config.src),
            "give the source relative to the package directory".to_owned(),
        );
        ok = false;
    }
    let src = lexically_normalize(&package_dir.join(&config.src));
    if ok && !src.starts_with(workspace_root) {
        fail(
            key("src"),
            format!("`{}` points outside the workspace", config.src),
            "copy the file into the workspace and name it relative to the package directory"
                .to_owned(),
        );
        ok = false;
    }
    if !is_normalized_absolute(&config.dst) || config.dst == "/" {
        fail(
            key("dst"),
            format!("`{}` is not an absolute, normalized file path", config.dst),
            "write it like `/etc/app/config.toml` (no `..`, `.`, `//` or trailing `/`)".to_owned(),
        );
        ok = false;
    }
    let mode_text = config.mode.as_deref().unwrap_or("0644");
    let mode = u32::from_str_radix(mode_text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777);
    if mode.is_none() {
        fail(
            key("mode"),
            format!("`{mode_text}` is not an octal file mode"),
            "write it like \"0644\" or \"0755\"".to_owned(),
        );
        ok = false;
    }
    (ok).then(|| ExtraFile {
        src,
        dst: config.dst.clone(),
        mode: mode.unwrap_or(0o644),
    })
}

/// `/a/b` yes; `a/b`, `/a/../b`, `/a/./b`, `/a//b`, `/a/` no.
fn is_normalized_absolute(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && path[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."))
}

/// Resolves `.` and `..` without touching the file system (symlinks are checked at `dist`).
fn lexically_normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::CurDir => {}
            other => normalized.push(other),
        }
    }
    normalized
}

fn check_unique_names(apps: &[App], errors: &mut Vec<ConfigError>) {
    let mut seen: BTreeMap<(String, String), &App> = BTreeMap::new();
    for app in apps {
        let mut names = Vec::new();
        if let Some(python) = &app.python {
            names.push(("python.name", names::normalize_pypi_name(&python.name)));
        }
        if let Some(npm) = &app.npm {
            names.push(("npm.name", npm.name.clone()));
        }
        if let Some(oci) = &app.oci {
            names.push(("oci.repository", oci.repository.clone()));
        }
        for (key, name) in names {
            if let Some(first) = seen.insert((key.to_owned(), name.clone()), app) {
                errors.push(ConfigError {
                    file: app.package.manifest_path.clone(),
                    key: format!("package.metadata.castoff.{key}"),
                    problem: format!("`{name}` is also used by package `{}`", first.package.name),
                    hint: "give each released package its own name in every channel".to_owned(),
                });
            }
        }
    }
}

/// Resolves npm dependencies between apps, records which app waits for which, and refuses
/// cycles, naming them.
fn link_dependencies(
    apps: &mut [App],
    released: &[(&CargoPackage, PackageConfig)],
    errors: &mut Vec<ConfigError>,
) {
    let index_of = |name: &str| apps.iter().position(|app| app.package.name == name);
    let mut links: Vec<Vec<AppId>> = vec![Vec::new(); apps.len()];
    let mut npm_links: Vec<Vec<(String, String)>> = vec![Vec::new(); apps.len()];
    for (app_index, app) in apps.iter().enumerate() {
        let Some((_, config)) = released
            .iter()
            .find(|(p, _)| p.name.as_str() == app.package.name)
        else {
            continue;
        };
        if let Some(python) = &config.python {
            for requirement in &python.requires {
                if let Some(other) = index_of(requirement) {
                    links[app_index].push(AppId(other));
                }
            }
        }
        if let Some(npm) = &config.npm {
            for dependency in &npm.dependencies {
                let other = released
                    .iter()
                    .find(|(p, _)| p.name.as_str() == dependency.as_str());
                match other {
                    Some((other_package, other_config)) if other_config.npm.is_some() => {
                        let other_npm = other_config.npm.as_ref().map(|npm| npm.name.clone().unwrap_or_else(|| other_package.name.to_string()));
                        npm_links[app_index].push((other_npm.unwrap_or_default(), other_package.version.to_string()));
                        if let Some(other) = index_of(dependency) {
                            links[app_index].push(AppId(other));
                        }
                    }
                    Some(_) => errors.push(ConfigError {
                        file: app.package.manifest_path.clone(),
                        key: "package.metadata.castoff.npm.dependencies".to_owned(),
                        problem: format!("`{dependency}` is released without npm packages"),
                        hint: format!("add an `npm` table to [package.metadata.castoff] of `{dependency}`"),
                    }),
                    None => errors.push(ConfigError {
                        file: app.package.manifest_path.clone(),
                        key: "package.metadata.castoff.npm.dependencies".to_owned(),
                        problem: format!("`{dependency}` is not a released package of this workspace"),
                        hint: "name the Cargo package of another app that has a [package.metadata.castoff] table".to_owned(),
                    }),
                }
            }
        }
    }
    for (app_index, app) in apps.iter_mut().enumerate() {
        links[app_index].sort();
        links[app_index].dedup();
        app.depends_on = links[app_index].clone();
        if let Some(npm) = &mut app.npm {
            npm.dependencies = std::mem::take(&mut npm_links[app_index]);
        }
    }
    if let Some(cycle) = find_cycle(&links) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|id| apps[id.0].package.name.as_str())
            .collect();
        let first = &apps[cycle[0].0];
        errors.push(ConfigError {
            file: first.package.manifest_path.clone(),
            key: "package.metadata.castoff".to_owned(),
            problem: format!("dependency cycle between released packages: {}", names.join(" -> ")),
            hint: "remove one of these dependencies (`python.requires` or `npm.dependencies`) so each package can be published after the ones it needs".to_owned(),
        });
    }
}

/// A cycle in the app graph, as the path `a, b, …, a`, if there is one.
fn find_cycle(links: &[Vec<AppId>]) -> Option<Vec<AppId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        node: usize,
        links: &[Vec<AppId>],
        marks: &mut [Mark],
        stack: &mut Vec<AppId>,
    ) -> Option<Vec<AppId>> {
        marks[node] = Mark::OnStack;
        stack.push(AppId(node));
        for next in &links[node] {
            match marks[next.0] {
                Mark::OnStack => {
                    let start = stack.iter().position(|id| id == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(*next);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next.0, links, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[node] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; links.len()];
    for node in 0..links.len() {
        if marks[node] == Mark::New
            && let Some(cycle) = visit(node, links, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// Lays out artifacts and publish steps with their edges.
fn assemble(workspace_root: PathBuf, target_directory: PathBuf, apps: Vec<App>) -> Release {
    let mut artifacts: Vec<Artifact> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let push_artifact = |artifacts: &mut Vec<Artifact>, artifact: Artifact| {
        artifacts.push(artifact);
        ArtifactId(artifacts.len() - 1)
    };
    // Per app: the steps other apps must wait for, by channel (every destination).
    let mut pypi_steps: Vec<Vec<StepId>> = vec![Vec::new(); apps.len()];
    let mut npm_launcher_steps: Vec<Vec<StepId>> = vec![Vec::new(); apps.len()];

    // Apps in dependency order, so a dependent app's edges can name its dependencies' steps.
    let mut order: Vec<usize> = Vec::new();
    while order.len() < apps.len() {
        for (index, app) in apps.iter().enumerate() {
            if !order.contains(&index) && app.depends_on.iter().all(|dep| order.contains(&dep.0)) {
                order.push(index);
            }
        }
    }

    for &app_index in &order {
        let app = &apps[app_index];
        let id = AppId(app_index);
        let artifact = |kind, target, inputs| Artifact {
            kind,
            app: id,
            target,
            inputs,
        };

        // Artifacts first: what `dist` builds.
        let mut wheels = Vec::new();
        let mut platform_packages = Vec::new();
        let mut images = Vec::new();
        for &target in &app.targets {
            let binary = push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Binary, Some(target), Vec::new()),
            );
            let sbom = push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Sbom, Some(target), vec![binary]),
            );
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Archive, Some(target), vec![binary]),
            );
            if app.python.is_some() {
                wheels.push(push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::Wheel, Some(target), vec![binary]),
                ));
            }
            if app.npm.is_some() {
                platform_packages.push(push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::NpmPlatform, Some(target), vec![binary]),
                ));
            }
            if app.oci.is_some() && target.oci.is_some() {
                let image = push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::OciImage, Some(target), vec![binary]),
                );
                images.push((image, sbom));
            }
        }
        let launcher = (!platform_packages.is_empty()).then(|| {
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::NpmLauncher, None, platform_packages.clone()),
            )
        });
        let index = (!images.is_empty()).then(|| {
            let inputs = images.iter().map(|(image, _)| *image).collect();
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::OciIndex, None, inputs),
            )
        });

        // Then the publish steps, once per destination; a later destination of the same
        // artifact waits for the earlier one (TestPyPI before PyPI, GHCR before Docker Hub).
        let push_step =
            |steps: &mut Vec<Step>, kind, artifact, after, destination: &Option<String>| {
                steps.push(Step {
                    kind,
                    app: id,
                    artifact,
                    after,
                    destination: destination.clone(),
                });
                StepId(steps.len() - 1)
            };
        if let Some(python) = &app.python {
            let python_after: Vec<StepId> = app
                .depends_on
                .iter()
                .flat_map(|dep| pypi_steps[dep.0].clone())
                .collect();
            let mut previous: Vec<Option<StepId>> = vec![None; wheels.len()];
            for destination in destinations(&python.repositories) {
                for (wheel, earlier) in wheels.iter().zip(previous.iter_mut()) {
                    let mut after = python_after.clone();
                    after.extend(*earlier);
                    let step = push_step(
                        &mut steps,
                        StepKind::PypiUpload,
                        *wheel,
                        after,
                        &destination,
                    );
                    *earlier = Some(step);
                    pypi_steps[app_index].push(step);
                }
            }
        }
        if let (Some(npm), Some(launcher)) = (&app.npm, launcher) {
            let dependency_launchers: Vec<StepId> = app
                .depends_on
                .iter()
                .flat_map(|dep| npm_launcher_steps[dep.0].clone())
                .collect();
            let mut previous: Vec<Option<StepId>> = vec![None; platform_packages.len()];
            let mut previous_launcher = None;
            for destination in destinations(&npm.registries) {
                let mut after = Vec::new();
                for (package, earlier) in platform_packages.iter().zip(previous.iter_mut()) {
                    let step = push_step(
                        &mut steps,
                        StepKind::NpmPublish,
                        *package,
                        earlier.iter().copied().collect(),
                        &destination,
                    );
                    *earlier = Some(step);
                    after.push(step);
                }
                // The launcher names every platform package: it goes last.
                after.extend(dependency_launchers.iter().copied());
                after.extend(previous_launcher);
                let step = push_step(
                    &mut steps,
                    StepKind::NpmPublish,
                    launcher,
                    after,
                    &destination,
                );
                previous_launcher = Some(step);
                npm_launcher_steps[app_index].push(step);
            }
        }
        if let (Some(oci), Some(index)) = (&app.oci, index) {
            let mut previous_images: Vec<Option<StepId>> = vec![None; images.len()];
            let mut previous_index = None;
            let mut previous_tags: Vec<Option<StepId>> = vec![None; oci.tags.len()];
            let repositories = std::iter::once(None).chain(oci.mirrors.iter().cloned().map(Some));
            for destination in repositories {
                let mut image_steps = Vec::new();
                for ((image, sbom), earlier) in images.iter().zip(previous_images.iter_mut()) {
                    let step = push_step(
                        &mut steps,
                        StepKind::OciPushImage,
                        *image,
                        earlier.iter().copied().collect(),
                        &destination,
                    );
                    *earlier = Some(step);
                    image_steps.push(step);
                    // The SBOM is an OCI 1.1 artifact whose `subject` is the image manifest.
                    push_step(
                        &mut steps,
                        StepKind::OciAttachSbom,
                        *sbom,
                        vec![step],
                        &destination,
                    );
                }
                let mut after = image_steps;
                after.extend(previous_index);
                let index_step = push_step(
                    &mut steps,
                    StepKind::OciPushIndex,
                    index,
                    after,
                    &destination,
                );
                previous_index = Some(index_step);
                for (tag, earlier) in oci.tags.iter().zip(previous_tags.iter_mut()) {
                    let mut after = vec![index_step];
                    after.extend(*earlier);
                    *earlier = Some(push_step(
                        &mut steps,
                        StepKind::OciTag(tag.clone()),
                        index,
                        after,
                        &destination,
                    ));
                }
            }
        }
    }
    Release {
        workspace_root,
        target_directory,
        apps,
        artifacts,
        steps,
        compression_level: DEFAULT_COMPRESSION_LEVEL,
    }
}

/// A channel's destinations: the configured ones, or the single default (`None`).
fn destinations(configured: &[String]) -> Vec<Option<String>> {
    if configured.is_empty() {
        vec![None]
    } else {
        configured.iter().cloned().map(Some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let known: Vec<String> = [
            "name",
            "module",
            "requires",
            "requires-python",
            "classifiers",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(closest("nmae", &known).as_deref(), Some("name"));
        assert_eq!(closest("require", &known).as_deref(), Some("requires"));
        assert_eq!(closest("zzzzzz", &known), None);
    }

    #[test]
    fn paths() {
        assert!(is_normalized_absolute("/etc/app.toml"));
        assert!(!is_normalized_absolute("etc/app.toml"));
        assert!(!is_normalized_absolute("/etc/../app.toml"));
        assert!(!is_normalized_absolute("/etc//app.toml"));
        assert!(!is_normalized_absolute("/etc/"));
        assert_eq!(
            lexically_normalize(Path::new("/w/p/../../x")),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn cycles() {
        let links = vec![vec![AppId(1)], vec![AppId(2)], vec![AppId(0)]];
        assert_eq!(
            find_cycle(&links),
            Some(vec![AppId(0), AppId(1), AppId(2), AppId(0)])
        );
        let links = vec![vec![AppId(1)], vec![], vec![AppId(0), AppId(1)]];
        assert_eq!(find_cycle(&links), None);
    }
}
