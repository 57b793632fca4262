//! The command line's shape: clap's types for every command and option.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::init::InitArgs;

/// What `castoff --help` prints after the options: the exit codes scripts can rely on.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  failure (a build, an I/O or network error, a registry refused an upload)
  2  usage or configuration error (fix the command line or the Cargo.toml)
  3  publish conflict: a registry already holds different content; nothing was uploaded

Docs: https://github.com/castoff-rs/castoff/blob/main/docs/cli.md";

/// Release a Rust workspace's binaries to PyPI, npm and container registries.
#[derive(Debug, Parser)]
#[command(
    name = "castoff",
    version,
    about,
    long_about = "Release a Rust workspace's binaries to PyPI, npm and container registries.\n\n\
                  `plan` shows the release, `dist` builds every artifact into dist/ (no network, \
                  no daemon, reproducible), `publish` uploads exactly what dist/ holds, in \
                  dependency order, and is safe to re-run.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Path to the workspace's Cargo.toml (default: found from the current directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Release only this package (repeatable).
    #[arg(short = 'p', long = "package", global = true, value_name = "NAME")]
    pub packages: Vec<String>,
    /// Only this target triple (repeatable).
    #[arg(long = "target", global = true, value_name = "TRIPLE")]
    pub targets: Vec<String>,
    /// More detail (repeat for even more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print the result as JSON on stdout (the summary of `dist` and `publish`, the checks of
    /// `verify`, the plan of `plan`, the changes of `init`); shape in docs/cli.md and
    /// docs/summary.schema.json.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colors.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would be built and published.
    Plan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Build the artifacts into dist/ (reproducible, no network, no Docker daemon).
    ///
    /// Without --target, builds for this machine's target only (plus the targets whose binaries
    /// --prebuilt or --prebuilt-dir supply); CI builds the others, one runner per target (see
    /// `plan --format github-matrix`).
    Dist(DistArgs),
    /// Upload exactly what dist/ holds, in dependency order; safe to re-run.
    Publish(Box<PublishArgs>),
    /// After publishing (with --dist: before, from dist/): install every package with every
    /// client present (pip, uv, pipx, npm, pnpm, yarn, bun, deno, docker, podman, runc,
    /// install.sh), each in a throwaway directory, and run its smoke command; one row per
    /// client and package, exit 1 on a failure.
    Verify(Box<VerifyArgs>),
    /// Undo one release on every registry it reached: crates yanked, npm dist-tags back and
    /// the version deprecated, floating image tags back, PyPI releases removed (or the manual
    /// steps).
    ///
    /// Shows the plan, then asks for confirmation (--yes in CI); safe to re-run.
    Yank(Box<YankArgs>),
    /// Print a shell completion script, e.g. `castoff completions bash > ~/.local/share/bash-completion/completions/castoff`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `castoff man | man -l -`.
    Man,
    /// Set this workspace up for castoff: the xtask crate, the `cargo xtask` alias, a
    /// `[package.metadata.castoff]` table per binary package, the release workflow.
    ///
    /// Idempotent; files you changed are kept unless --force.
    Init(InitArgs),
}

/// `publish` options. Credentials come from each ecosystem's usual places (docs/publishing.md).
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The dist directory to publish (default: `dist/` at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<PathBuf>,
    /// Verify, resolve credentials and ask the registries, then stop without uploading.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only the steps whose id contains this text (repeatable), e.g. `pypi-upload/`.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// Leave out the steps whose id contains this text (repeatable).
    #[arg(long, value_name = "STEP")]
    pub skip: Vec<String>,
    #[command(flatten)]
    pub registries: RegistryArgs,
    /// Steps running at once (they wait on the network, not on this machine); also the
    /// registry questions and npm credential checks asked at once before the first upload.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub jobs: usize,
    /// Publish only if dist/manifest.json carries a valid minisign signature by this public
    /// key (what `dist --sign-key` writes); checked before anything else. Default:
    /// `CASTOFF_VERIFY_KEY` (the key file's contents), else no check.
    #[arg(long, value_name = "FILE")]
    pub verify_key: Option<PathBuf>,
    /// Publish for this git tag: it must be the release tag (`tag` pattern, default
    /// `v{version}`) of what dist/ holds; with a `{name}` pattern it selects the packages it
    /// names. Default: the tag of a GitHub Actions run for a tag push (`GITHUB_REF_TYPE=tag`,
    /// `GITHUB_REF_NAME`), else no tag check.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Publish a partial dist/ (some configured targets missing) as it is. Without it, publish
    /// refuses one: npm and PyPI versions cannot be replaced, so the missing platforms could
    /// never join this version.
    #[arg(long)]
    pub allow_partial: bool,
}

/// Where `publish` and `yank` find the registries, beside the configuration's, and how they
/// reach them: one set of flags for both, so a yank takes exactly the publish's command line.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// PyPI upload URL: `pypi` (default), `testpypi`, or a URL. Default: `CASTOFF_PYPI_URL`.
    #[arg(long, value_name = "URL")]
    pub pypi_url: Option<String>,
    /// The simple index of the upload URL, when castoff cannot derive it. Default:
    /// `CASTOFF_PYPI_INDEX_URL`.
    #[arg(long, value_name = "URL")]
    pub pypi_index_url: Option<String>,
    /// Take the PyPI URL and credentials from this section of ~/.pypirc.
    #[arg(long, value_name = "NAME")]
    pub pypi_repository: Option<String>,
    /// npm registry URL (default: `CASTOFF_NPM_REGISTRY`, else .npmrc's `registry`, else
    /// https://registry.npmjs.org/).
    #[arg(long, value_name = "URL")]
    pub npm_registry: Option<String>,
    /// The image repository instead of the configured one (one app only). Default:
    /// `CASTOFF_OCI_REPOSITORY`.
    #[arg(long, value_name = "REPOSITORY")]
    pub oci_repository: Option<String>,
    /// Every app's image registry host instead of the configured one. Default:
    /// `CASTOFF_OCI_REGISTRY`.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub oci_registry: Option<String>,
    /// Trust this CA certificate (PEM) in addition to the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Allow plain http:// to registries that are not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

impl RegistryArgs {
    /// The HTTP settings: the environment's, with these flags' certificates and scheme rule.
    pub(crate) fn http(&self) -> castoff_registry::HttpConfig {
        let mut http = castoff_registry::HttpConfig::from_env();
        http.ca_certificates = self.ca_cert.clone();
        http.allow_insecure_http = self.allow_insecure_http;
        http
    }
}

/// `verify` options: the registries are resolved as `publish` resolves them.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The dist directory of the release (default: `dist/` at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<PathBuf>,
    /// PyPI upload URL the wheels went to: `pypi` (default), `testpypi`, or a URL.
    #[arg(long, value_name = "URL")]
    pub pypi_url: Option<String>,
    /// The simple index of that upload URL, when castoff cannot derive it.
    #[arg(long, value_name = "URL")]
    pub pypi_index_url: Option<String>,
    /// npm registry URL the packages went to (default: .npmrc's `registry`, else npmjs).
    #[arg(long, value_name = "URL")]
    pub npm_registry: Option<String>,
    /// The repository the image went to instead of the configured one (one app only).
    #[arg(long, value_name = "REPOSITORY")]
    pub oci_repository: Option<String>,
    /// The registry host every app's image went to instead of the configured one.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub oci_registry: Option<String>,
    /// Where install.sh downloads the archives from (default: the release's download URL).
    #[arg(long, value_name = "URL")]
    pub install_base_url: Option<String>,
    /// Fail when this client is not installed (repeatable): pip, uv, pipx, npm, pnpm, yarn,
    /// bun, deno, docker, podman, runc, install.sh.
    #[arg(long, value_name = "CLIENT")]
    pub require: Vec<String>,
    /// Before publishing: install what dist/ holds, served from a throwaway index on
    /// 127.0.0.1 (a PEP 503 page, a read-only npm registry, a pull-only OCI registry), instead
    /// of what the registries hold; install.sh takes the archives from dist/.
    #[arg(long)]
    pub dist: bool,
    /// Seconds one client may take to install and run one package.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `plan --format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A readable tree of apps, artifacts and the publish order.
    Text,
    /// The manifest schema (what dist/manifest.json holds, before anything is built).
    Json,
    /// A Graphviz digraph.
    Dot,
    /// The Graphviz digraph drawn as SVG (runs Graphviz's `dot -Tsvg`; needs Graphviz).
    Svg,
    /// The JSON a GitHub Actions `strategy.matrix` takes: one entry per target.
    GithubMatrix,
}

/// `dist` options.
#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Package binaries already built (`target/<triple>/release/`) instead of running
    /// `cargo build`.
    #[arg(long, conflicts_with = "merge")]
    pub no_build: bool,
    /// A binary built elsewhere, packaged instead of building its target (repeatable):
    /// `TARGET=PATH` when the release has one binary for the target, else `TARGET:BIN=PATH`.
    /// Every binary of a supplied target must be given; each is checked against its target
    /// before anything is built. Without --target, dist covers the supplied targets (and this
    /// machine's, when the workspace releases for it).
    #[arg(long, value_name = "TARGET[:BIN]=PATH", conflicts_with = "merge")]
    pub prebuilt: Vec<String>,
    /// A directory of binaries built elsewhere, laid out as DIR/<target>/<bin> (`<bin>.exe` on
    /// Windows), e.g. downloaded from another CI: every target in it is packaged as with
    /// --prebuilt; anything else in it is an error.
    #[arg(long, value_name = "DIR", conflicts_with = "merge")]
    pub prebuilt_dir: Option<PathBuf>,
    /// Output directory (default: `dist/` at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<PathBuf>,
    /// Merge these partial dist folders (each written by `dist --target T`, e.g. on one CI
    /// runner per target) into one dist/ instead of building: per-target files are copied and
    /// verified; the npm launcher, image index and layout, checksums, signatures and manifest
    /// are assembled for all targets.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Sign every file with this minisign secret key (`<file>.minisig` beside each). Without
    /// it, the key file's contents are read from CASTOFF_SIGN_KEY when set; an encrypted key
    /// needs CASTOFF_SIGN_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Refuse to build when tracked files of the workspace's git repository have uncommitted
    /// changes (staged or not). Without it, such a build labels the images' revision
    /// `<commit>-dirty` and the summary says so. Untracked files do not count.
    #[arg(long, conflicts_with = "merge")]
    pub require_clean: bool,
}

/// `yank` options. Registries and credentials are found as `publish` finds them
/// (docs/yank.md).
#[derive(Debug, clap::Args)]
pub struct YankArgs {
    /// The release to undo, as Cargo.toml spells it (e.g. 1.4.2).
    #[arg(value_name = "VERSION", value_parser = parse_version)]
    pub version: semver::Version,
    /// Make the changes without asking (required without a terminal, e.g. in CI).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Ask the registries and show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The deprecation message npm shows for the version (default: one naming the version).
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Where yank-report.json goes (default: `dist/` at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<PathBuf>,
    #[command(flatten)]
    pub registries: RegistryArgs,
}

fn parse_version(text: &str) -> Result<semver::Version, String> {
    semver::Version::parse(text).map_err(|error| {
        format!(
            "`{text}` is not a version as Cargo.toml writes it ({error}); e.g. 1.4.2 or 2.0.0-rc.1"
        )
    })
}
