//! The plan as data: typed ids, the `Release` with its apps, artifacts and publish steps, and
//! each channel's resolved settings. A leaf: the planning modules build these values, nothing
//! here plans.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use semver::Version;

use crate::tag::TagPattern;
use crate::target::Target;
use crate::version::NpmVersion;

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
    /// The crates channel (`workspace.crates`): the workspace's publishable crates in
    /// publish order (each after the crates it depends on); empty when it is off.
    pub crates: Vec<CrateRelease>,
    /// Members the crates channel leaves out, and why (`publish = false`, opted out).
    pub crates_skipped: Vec<SkippedCrate>,
}

/// Index of a crate in [`Release::crates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrateId(pub usize);

/// The Cargo name of crates.io as a registry.
pub const CRATES_IO: &str = "crates-io";

/// One workspace member published to a Cargo registry: its `.crate` (built by `dist` with
/// `cargo package`) and the `crate-publish` step that uploads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateRelease {
    pub name: String,
    pub version: Version,
    pub manifest_path: PathBuf,
    /// The registry by Cargo's name for it (`crates-io`, or a `[registries.<name>]`).
    pub registry: String,
    /// Crates of this release it depends on (normal and build dependencies), published first.
    pub after: Vec<CrateId>,
}

impl CrateRelease {
    /// `crate/<name>`: the artifact id of its `.crate`.
    pub fn artifact_id(&self) -> String {
        format!("crate/{}", self.name)
    }

    /// `crate-publish/<name>`: the id of its publish step.
    pub fn step_id(&self) -> String {
        format!("crate-publish/{}", self.name)
    }

    /// `<name>-<version>.crate`, the name `cargo package` gives it.
    pub fn file_name(&self) -> String {
        format!("{}-{}.crate", self.name, self.version)
    }
}

/// A workspace member the crates channel does not publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCrate {
    pub name: String,
    /// Why, for `plan`: `publish = false`, `crates = false`, ...
    pub reason: String,
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
    /// How each target's binaries are built, by triple (every target of `targets` has one).
    pub builds: BTreeMap<&'static str, BuildSettings>,
    pub python: Option<PythonChannel>,
    pub npm: Option<NpmChannel>,
    pub oci: Option<OciChannel>,
    /// Apps of this release that must be published before this one.
    pub depends_on: Vec<AppId>,
    /// The git tag pattern its versions are released under (`tag`, default `v{version}`).
    pub tag: TagPattern,
    /// `verify`: the smoke command `castoff verify` runs (default: each binary `--version`).
    pub verify: crate::config::VerifyConfig,
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
    /// `package.rust-version`, the oldest Rust that builds it (`1.85`).
    pub rust_version: Option<String>,
}

/// What builds a target's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildTool {
    /// `cargo build`.
    Cargo,
    /// `cargo zigbuild` (cargo-zigbuild with zig as the linker), which can pin a glibc floor.
    Zigbuild,
}

/// The resolved build settings of one app and target: the workspace's, then the workspace's
/// for the target, then the package's, then the package's for the target, each key replacing
/// the one before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    pub tool: BuildTool,
    /// Cargo profile (`release` unless configured).
    pub profile: String,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    /// The glibc floor of a `*-linux-gnu*` target built with zigbuild, e.g. `2.17`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<String>,
    pub build_env: BTreeMap<String, String>,
    pub cargo_args: Vec<String>,
    /// Linked statically (`crt-static` on a glibc target: `-C target-feature=+crt-static`).
    #[serde(default)]
    pub crt_static: bool,
}

/// The profile when none is configured.
pub const DEFAULT_PROFILE: &str = "release";

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            tool: BuildTool::Cargo,
            profile: DEFAULT_PROFILE.to_owned(),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            glibc: None,
            build_env: BTreeMap::new(),
            cargo_args: Vec::new(),
            crt_static: false,
        }
    }
}

impl BuildSettings {
    /// The directory under `target/<triple>/` where Cargo puts this profile's output: `debug`
    /// for `dev` (and `test`), `release` for `release` (and `bench`), else the profile's name.
    pub fn profile_dir(&self) -> &str {
        match self.profile.as_str() {
            "dev" | "test" => "debug",
            "release" | "bench" => "release",
            other => other,
        }
    }

    /// The feature selection as `cargo` arguments (`--features a,b`, `--all-features`,
    /// `--no-default-features`); `cargo build` and `cargo metadata` take the same ones.
    pub fn feature_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.all_features {
            args.push("--all-features".to_owned());
        }
        if self.no_default_features {
            args.push("--no-default-features".to_owned());
        }
        if !self.features.is_empty() {
            args.push("--features".to_owned());
            args.push(self.features.join(","));
        }
        args
    }

    /// The `--target` value: the triple, with the glibc floor appended for zigbuild
    /// (`x86_64-unknown-linux-gnu.2.17`).
    pub fn target_arg(&self, triple: &str) -> String {
        match &self.glibc {
            Some(glibc) if self.tool == BuildTool::Zigbuild => format!("{triple}.{glibc}"),
            _ => triple.to_owned(),
        }
    }

    /// One line for `plan`: `cargo, profile release-lto, features pcre2`.
    pub fn describe(&self) -> String {
        let mut parts = vec![match (&self.tool, &self.glibc) {
            (BuildTool::Cargo, _) => "cargo".to_owned(),
            (BuildTool::Zigbuild, None) => "zigbuild".to_owned(),
            (BuildTool::Zigbuild, Some(glibc)) => format!("zigbuild (glibc {glibc})"),
        }];
        parts.push(format!("profile {}", self.profile));
        if self.crt_static {
            parts.push("static (crt-static)".to_owned());
        }
        if self.all_features {
            parts.push("all features".to_owned());
        }
        if self.no_default_features {
            parts.push("no default features".to_owned());
        }
        if !self.features.is_empty() {
            parts.push(format!("features {}", self.features.join(",")));
        }
        if !self.build_env.is_empty() {
            let names: Vec<&str> = self.build_env.keys().map(String::as_str).collect();
            parts.push(format!("env {}", names.join(",")));
        }
        if !self.cargo_args.is_empty() {
            parts.push(format!("args {}", self.cargo_args.join(" ")));
        }
        parts.join(", ")
    }
}

impl App {
    /// The build settings of one of the app's targets.
    pub fn build(&self, target: &Target) -> &BuildSettings {
        self.builds
            .get(target.triple)
            .expect("every target of an app has build settings")
    }

    /// The git tag this version is released under: `tag` applied to the package.
    pub fn git_tag(&self) -> String {
        self.tag
            .expand(&self.package.name, &self.package.version.to_string())
    }

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

    /// `description` as one line (Cargo keeps a multi-line TOML string's newlines; PyPI's
    /// Summary, npm's `description` and the image's description annotation are shown as one
    /// line): runs of whitespace become one space. `None` when empty.
    pub fn summary(&self) -> Option<String> {
        self.description
            .as_deref()
            .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|text| !text.is_empty())
    }

    /// The license files every channel ships (MIT and Apache-2.0 require the text to travel
    /// with the binary; the Unlicense and NOTICE files are part of a license too): Cargo's
    /// `license-file` first, then every `LICENSE*`, `LICENCE*`, `COPYING*`, `UNLICENSE*` and
    /// `NOTICE*` file of the package directory or, when it has none, of the workspace root
    /// (where dual-licensed workspaces keep `LICENSE-MIT` and `LICENSE-APACHE`), sorted by
    /// name. Each path once. `license-file` is listed whether it exists or not: the builders
    /// report a missing one.
    pub fn license_files(&self, workspace_root: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.license_file.iter().cloned().collect();
        for directory in [self.directory(), workspace_root] {
            let mut found: Vec<PathBuf> = std::fs::read_dir(directory)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter(|entry| {
                    let name = entry.file_name().to_string_lossy().to_ascii_uppercase();
                    LICENSE_FILE_PREFIXES
                        .iter()
                        .any(|prefix| name.starts_with(prefix))
                        && entry.file_type().is_ok_and(|kind| kind.is_file())
                })
                .map(|entry| entry.path())
                .collect();
            if found.is_empty() {
                continue;
            }
            found.sort();
            let same = |a: &Path, b: &Path| {
                a == b
                    || a.canonicalize()
                        .ok()
                        .is_some_and(|a| b.canonicalize().ok() == Some(a))
            };
            for path in found {
                if !files.iter().any(|known| same(known, &path)) {
                    files.push(path);
                }
            }
            break;
        }
        files
    }
}

/// The names of license files, upper-cased: what `Package::license_files` picks up.
const LICENSE_FILE_PREFIXES: [&str; 5] = ["LICENSE", "LICENCE", "COPYING", "UNLICENSE", "NOTICE"];

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
    /// Linux architectures (`Target::python_arch`) the app is released for with both glibc
    /// and musl, from the configured targets (not narrowed by `--target`, so a partial dist
    /// tags its wheels as the whole release does). Each of their wheels carries only its own
    /// C library's tags: a static musl build is otherwise tagged manylinux too, and pip and uv
    /// on a glibc system could take it instead of the glibc build.
    pub glibc_and_musl_arches: Vec<&'static str>,
    /// `python.sdist` (default true): a source distribution is built and uploaded with the
    /// wheels.
    pub sdist: bool,
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
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub cmd: Option<Vec<String>>,
    pub stop_signal: Option<String>,
    /// The binary the entrypoint runs.
    pub entrypoint: String,
    pub healthcheck: Option<Healthcheck>,
    pub files: Vec<ExtraFile>,
    /// Absolute, normalized directories declared as `Volumes`, created in the image owned by
    /// the image user, sorted.
    pub volumes: Vec<String>,
    pub layer_compression: LayerCompression,
    /// The targets whose binaries the index holds, one per image platform, in the package's
    /// target order.
    pub targets: Vec<&'static Target>,
    /// Whether `targets` was configured (`oci.targets`) rather than chosen by castoff.
    pub targets_configured: bool,
    /// How the deploy examples run the image.
    pub deploy: Deploy,
    /// What castoff adds to a `scratch` image besides `/etc/passwd`, `/etc/group` and `/tmp`.
    pub userland: Userland,
    /// `oci.builder`: the Rust image, pinned by digest, that `Dockerfile.source` compiles in.
    pub builder: Option<String>,
}

/// The optional system data of a `scratch` image (`oci.ca-certificates`, `oci.tzdata`), each
/// a layer of its own. Always off on another base, which brings its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Userland {
    /// Mozilla's root certificates as one PEM bundle.
    pub ca_certificates: bool,
    /// The IANA time zone database as TZif files.
    pub tzdata: bool,
}

/// A port the service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub number: u16,
    pub protocol: PortProtocol,
    /// The Kubernetes port name: configured, else `<protocol>-<number>` (`tcp-8080`).
    pub name: String,
}

/// The transport protocol of a [`Port`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortProtocol {
    Tcp,
    Udp,
}

impl PortProtocol {
    /// `tcp` / `udp`: Docker's `ExposedPorts` key suffix and compose's.
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        }
    }

    /// `TCP` / `UDP`: Kubernetes' spelling.
    pub fn kubernetes(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "TCP",
            PortProtocol::Udp => "UDP",
        }
    }
}

/// Compose's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
    #[default]
    UnlessStopped,
}

impl RestartPolicy {
    /// Compose's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// How the deploy examples run the image (`oci.deploy`), defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub replicas: u32,
    /// Kubernetes quantities, checked by the plan.
    pub cpu_request: String,
    pub cpu_limit: Option<String>,
    pub memory_request: String,
    pub memory_limit: String,
    pub restart: RestartPolicy,
    pub stop_grace_period_nanos: u64,
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            replicas: 1,
            cpu_request: "50m".to_owned(),
            cpu_limit: None,
            memory_request: "64Mi".to_owned(),
            memory_limit: "256Mi".to_owned(),
            restart: RestartPolicy::UnlessStopped,
            stop_grace_period_nanos: 10_000_000_000,
        }
    }
}

impl OciChannel {
    /// Whether the index holds an image of `target`'s binary.
    pub fn has_image(&self, target: &Target) -> bool {
        self.targets.iter().any(|t| t.triple == target.triple)
    }

    /// Why `target` gets no image, for `plan`; `None` when it gets one.
    pub fn no_image_reason(&self, target: &Target) -> Option<String> {
        if self.has_image(target) {
            return None;
        }
        let Some(platform) = target.oci else {
            return Some("container images are Linux only".to_owned());
        };
        Some(
            match self.targets.iter().find(|t| t.oci == Some(platform)) {
                Some(chosen) if self.targets_configured => {
                    format!("{platform} is {}'s (`oci.targets`)", chosen.triple)
                }
                Some(chosen) => format!(
                    "{platform} is {}'s: one image per platform, the static musl build by default (`oci.targets` chooses)",
                    chosen.triple
                ),
                None => format!("{platform} is not in `oci.targets`"),
            },
        )
    }
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

/// Where castoff's health probe sits in an image that has an `http` or `tcp` health check
/// (castoff-oci's `probe` layer).
pub const PROBE_PATH: &str = "/usr/local/bin/castoff-probe";

/// What a health check or a Kubernetes probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A command run inside the container (exec form, no shell).
    Command(Vec<String>),
    /// An HTTP GET of `path` on `port` of the container: healthy on a status of 200 to 399.
    Http { path: String, port: u16 },
    /// A TCP connection to `port` of the container.
    Tcp { port: u16 },
}

impl Check {
    /// The command Docker runs for this check: the configured one, or castoff's probe with
    /// the check's arguments.
    pub fn command(&self) -> Vec<String> {
        match self {
            Check::Command(cmd) => cmd.clone(),
            Check::Http { path, port } => vec![
                PROBE_PATH.to_owned(),
                "http".to_owned(),
                port.to_string(),
                path.clone(),
            ],
            Check::Tcp { port } => vec![PROBE_PATH.to_owned(), "tcp".to_owned(), port.to_string()],
        }
    }

    /// Whether Docker needs castoff's probe in the image to run this check.
    pub fn uses_probe(&self) -> bool {
        !matches!(self, Check::Command(_))
    }
}

/// The Docker health check of an image, durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub check: Check,
    pub interval_nanos: Option<u64>,
    pub timeout_nanos: Option<u64>,
    pub start_period_nanos: Option<u64>,
    /// Docker Engine 25 and later: the interval during the start period.
    pub start_interval_nanos: Option<u64>,
    pub retries: Option<u32>,
    /// The Kubernetes readiness probe: the health check with `readiness`'s keys over it.
    pub readiness: Probe,
}

/// A Kubernetes probe's check and timing (durations in nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub check: Check,
    pub interval_nanos: Option<u64>,
    pub timeout_nanos: Option<u64>,
    pub retries: Option<u32>,
}

impl Healthcheck {
    /// The command Docker runs: [`Check::command`], with the check's `timeout` handed to
    /// castoff's probe (whole seconds, rounded up, 1 to 86400), which otherwise gives up after
    /// 30 s of its own.
    pub fn command(&self) -> Vec<String> {
        let mut command = self.check.command();
        if let (true, Some(nanos)) = (self.check.uses_probe(), self.timeout_nanos) {
            let seconds = nanos.div_ceil(1_000_000_000).clamp(1, 86_400);
            command.splice(1..1, ["--timeout".to_owned(), seconds.to_string()]);
        }
        command
    }

    /// The health check itself as a probe: Kubernetes' liveness probe.
    pub fn liveness(&self) -> Probe {
        Probe {
            check: self.check.clone(),
            interval_nanos: self.interval_nanos,
            timeout_nanos: self.timeout_nanos,
            retries: self.retries,
        }
    }
}

/// A file, directory tree or glob copied into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute source path (inside the workspace): the file or directory, or for a glob the
    /// directory of its fixed prefix (`static` of `static/**/*.css`).
    pub src: PathBuf,
    /// For a glob, the pattern matched against paths relative to `src` (`**/*.css`).
    pub glob: Option<String>,
    /// Absolute, normalized path in the image.
    pub dst: String,
    /// The files' mode; `None`: 0755 for an executable source, 0644 otherwise.
    pub mode: Option<u32>,
    /// The mode of directories copied or created under `dst`.
    pub dir_mode: u32,
    /// Owner `(uid, gid)` of everything copied.
    pub owner: (u32, u32),
}

impl OciChannel {
    /// The image user's `(uid, gid)`; a user without a group gets group 0, as in Docker.
    pub fn user_ids(&self) -> (u32, u32) {
        let (uid, gid) = self.user.split_once(':').unwrap_or((&self.user, "0"));
        (uid.parse().unwrap_or(0), gid.parse().unwrap_or(0))
    }
}

/// What kind of thing an artifact is. Serialized (in `dist/manifest.json`) as
/// [`ArtifactKind::as_str`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// The app's compiled binaries for one target.
    Binary,
    /// The CycloneDX SBOM of one target's binary (its resolved dependency graph); embedded in
    /// the wheel, the npm platform package and attached to the image.
    Sbom,
    /// A direct-download archive of one target: `.tar.gz` on Unix, `.zip` on Windows.
    Archive,
    Wheel,
    /// The Python source distribution of an app (PEP 625 `.tar.gz`, built by maturin on
    /// machines without a wheel): one per app, no target.
    Sdist,
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
            ArtifactKind::Sdist => "sdist",
            ArtifactKind::NpmPlatform => "npm-platform",
            ArtifactKind::NpmLauncher => "npm-launcher",
            ArtifactKind::OciImage => "oci-image",
            ArtifactKind::OciIndex => "oci-index",
        }
    }

    /// The channel the artifact belongs to.
    pub fn channel(self) -> Channel {
        match self {
            ArtifactKind::Binary => Channel::Binary,
            ArtifactKind::Sbom => Channel::Sbom,
            ArtifactKind::Archive => Channel::Archive,
            ArtifactKind::Wheel | ArtifactKind::Sdist => Channel::Python,
            ArtifactKind::NpmPlatform | ArtifactKind::NpmLauncher => Channel::Npm,
            ArtifactKind::OciImage | ArtifactKind::OciIndex => Channel::Oci,
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
        self.name().as_str()
    }

    /// The kind without its data, as the manifest records it.
    pub fn name(&self) -> StepKindName {
        match self {
            StepKind::PypiUpload => StepKindName::PypiUpload,
            StepKind::NpmPublish => StepKindName::NpmPublish,
            StepKind::OciPushImage => StepKindName::OciPushImage,
            StepKind::OciPushIndex => StepKindName::OciPushIndex,
            StepKind::OciTag(_) => StepKindName::OciTag,
            StepKind::OciAttachSbom => StepKindName::OciAttachSbom,
        }
    }
}

/// A [`StepKind`] without its data (an `oci-tag` step's tag is a field of its own in the
/// manifest). Serialized as [`StepKindName::as_str`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum StepKindName {
    PypiUpload,
    NpmPublish,
    OciPushImage,
    OciPushIndex,
    OciTag,
    OciAttachSbom,
    /// A `.crate` to a Cargo registry (the crates channel; not a step of `Release::steps`:
    /// the manifest's `crates` list holds them).
    CratePublish,
}

impl std::str::FromStr for StepKindName {
    type Err = ();

    /// The kind named by [`StepKindName::as_str`] (the first part of a step id).
    fn from_str(text: &str) -> Result<StepKindName, ()> {
        [
            StepKindName::PypiUpload,
            StepKindName::NpmPublish,
            StepKindName::OciPushImage,
            StepKindName::OciPushIndex,
            StepKindName::OciTag,
            StepKindName::OciAttachSbom,
            StepKindName::CratePublish,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or(())
    }
}

impl StepKindName {
    /// Stable name used in ids, JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKindName::PypiUpload => "pypi-upload",
            StepKindName::NpmPublish => "npm-publish",
            StepKindName::OciPushImage => "oci-push-image",
            StepKindName::OciPushIndex => "oci-push-index",
            StepKindName::OciTag => "oci-tag",
            StepKindName::OciAttachSbom => "oci-attach-sbom",
            StepKindName::CratePublish => "crate-publish",
        }
    }

    /// The channel whose registry the step talks to.
    pub fn channel(self) -> Channel {
        match self {
            StepKindName::PypiUpload => Channel::Python,
            StepKindName::NpmPublish => Channel::Npm,
            StepKindName::CratePublish => Channel::Crates,
            _ => Channel::Oci,
        }
    }
}

/// Where an artifact goes: its channel, or `binary`/`sbom`/`archive` for what is not published
/// to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Binary,
    Sbom,
    Archive,
    Python,
    Npm,
    Oci,
    Crates,
}

impl Channel {
    /// Stable name used in the summary (`--json`) and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Binary => "binary",
            Channel::Sbom => "sbom",
            Channel::Archive => "archive",
            Channel::Python => "python",
            Channel::Npm => "npm",
            Channel::Oci => "oci",
            Channel::Crates => "crates",
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

    /// All targets of the release, in table order.
    /// Every build of the release: each app with each of its targets, in plan order.
    pub fn builds(&self) -> impl Iterator<Item = (AppId, &'static Target)> + '_ {
        self.apps.iter().enumerate().flat_map(|(index, app)| {
            app.targets
                .iter()
                .map(move |&target| (AppId(index), target))
        })
    }

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

/// A kind equals its manifest name (`artifact.kind == "wheel"`), for readers of manifests.
impl PartialEq<&str> for ArtifactKind {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// A kind equals its manifest name (`step.kind == "pypi-upload"`), for readers of manifests.
impl PartialEq<&str> for StepKindName {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}
