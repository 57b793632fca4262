//! The `castoff` command line (also `cargo xtask …` in this repository): parses arguments,
//! runs a command, prints the result or the error with its causes and a hint, and maps the
//! outcome to an exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use castoff_plan::{Manifest, PlanOptions, Release};
use clap::{Parser, Subcommand, ValueEnum};

use crate::workspace::{self, LoadError};

/// Exit code of a run that failed for a reason outside the user's input.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage or configuration error: fix the command line or the Cargo.toml.
pub const EXIT_USAGE: u8 = 2;

/// Release a Rust workspace's binaries to PyPI, npm and container registries.
#[derive(Debug, Parser)]
#[command(name = "castoff", version, about, long_about = None)]
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
    /// Without --target, builds for this machine's target only; CI builds the others, one
    /// runner per target (see `plan --format github-matrix`).
    Dist(crate::dist_cli::DistArgs),
    /// Upload exactly what dist/ holds, in dependency order; safe to re-run.
    Publish(PublishArgs),
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
    /// PyPI upload URL: `pypi` (default), `testpypi`, or a URL.
    #[arg(long, value_name = "URL")]
    pub pypi_url: Option<String>,
    /// The simple index of the upload URL, when castoff cannot derive it.
    #[arg(long, value_name = "URL")]
    pub pypi_index_url: Option<String>,
    /// Take the PyPI URL and credentials from this section of ~/.pypirc.
    #[arg(long, value_name = "NAME")]
    pub pypi_repository: Option<String>,
    /// npm registry URL (default: .npmrc's `registry`, else https://registry.npmjs.org/).
    #[arg(long, value_name = "URL")]
    pub npm_registry: Option<String>,
    /// Push the image to this repository instead of the configured one (one app only).
    #[arg(long, value_name = "REPOSITORY")]
    pub oci_repository: Option<String>,
    /// Push every app's image to this registry host instead of the configured one.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub oci_registry: Option<String>,
    /// Trust this CA certificate (PEM) in addition to the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Allow plain http:// to registries that are not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Steps running at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
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
    /// The JSON a GitHub Actions `strategy.matrix` takes: one entry per target.
    GithubMatrix,
}

/// A failed command: the message (with its `hint:`), and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub exit_code: u8,
}

impl From<LoadError> for Failure {
    fn from(error: LoadError) -> Failure {
        match error {
            LoadError::Cargo(error) => Failure {
                error,
                exit_code: EXIT_USAGE,
            },
            LoadError::Config(error) => Failure {
                error: error.into(),
                exit_code: EXIT_USAGE,
            },
        }
    }
}

/// Parses `args` (the first one is the program name), runs the command and reports.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", render_error(&failure.error));
            ExitCode::from(failure.exit_code)
        }
    }
}

/// `error: …`, then each cause as `caused by: …`, with every `hint:` line kept last.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut lines = Vec::new();
    let mut hints = Vec::new();
    for (depth, cause) in error.chain().enumerate() {
        let text = cause.to_string();
        for (line_number, line) in text.lines().enumerate() {
            if line.starts_with("hint: ") {
                hints.push(line.to_owned());
            } else if line_number == 0 {
                let prefix = if depth == 0 { "error: " } else { "caused by: " };
                lines.push(format!("{prefix}{line}"));
            } else {
                lines.push(line.to_owned());
            }
        }
    }
    lines.extend(hints);
    lines.join("\n")
}

/// Runs one parsed command line.
pub fn run(cli: &Cli) -> Result<(), Failure> {
    let options = PlanOptions {
        packages: cli.packages.clone(),
        targets: cli.targets.clone(),
    };
    match &cli.command {
        Command::Plan { format } => {
            let release = workspace::load(cli.manifest_path.as_deref(), &options)?;
            print_stdout(&render_plan(&release, *format));
            Ok(())
        }
        Command::Dist(args) => crate::dist_cli::run(cli, args),
        Command::Publish(args) => run_publish(cli, args),
    }
}

/// Exit code of a publish stopped by a conflict with what a registry already holds.
pub const EXIT_CONFLICT: u8 = 3;

struct StderrReporter {
    quiet: bool,
}

impl crate::publish::Reporter for StderrReporter {
    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

fn run_publish(cli: &Cli, args: &PublishArgs) -> Result<(), Failure> {
    let workspace_root = match &cli.manifest_path {
        Some(path) => path
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from),
        None => PathBuf::from("."),
    };
    let workspace_root = workspace_root.canonicalize().unwrap_or(workspace_root);
    let mut http = castoff_registry::HttpConfig::from_env();
    http.ca_certificates = args.ca_cert.clone();
    http.allow_insecure_http = args.allow_insecure_http;
    let options = crate::publish::PublishOptions {
        dist_dir: args
            .dist_dir
            .clone()
            .unwrap_or_else(|| workspace_root.join("dist")),
        workspace_root,
        dry_run: args.dry_run,
        only: args.only.clone(),
        skip: args.skip.clone(),
        pypi_url: args.pypi_url.clone(),
        pypi_index_url: args.pypi_index_url.clone(),
        pypi_repository: args.pypi_repository.clone(),
        npm_registry: args.npm_registry.clone(),
        oci_repository: args.oci_repository.clone(),
        oci_registry: args.oci_registry.clone(),
        http,
        jobs: args.jobs,
    };
    let reporter = StderrReporter { quiet: cli.quiet };
    match crate::publish::publish(&options, &reporter) {
        Ok(report) => {
            if !cli.quiet {
                let count =
                    |outcome: &str| report.steps.iter().filter(|s| s.outcome == outcome).count();
                print_stdout(&format!(
                    "{}: {} uploaded, {} already there, {} skipped, {} excluded\n",
                    if report.dry_run {
                        "dry run"
                    } else {
                        "published"
                    },
                    count("uploaded") + count("would-upload"),
                    count("already-present"),
                    count("skipped"),
                    count("excluded")
                ));
            }
            Ok(())
        }
        Err(error) => {
            let exit_code = if error
                .downcast_ref::<crate::publish::ConflictError>()
                .is_some()
            {
                EXIT_CONFLICT
            } else {
                EXIT_FAILURE
            };
            Err(Failure { error, exit_code })
        }
    }
}

pub(crate) fn failure(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_FAILURE,
    }
}

pub(crate) fn usage(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_USAGE,
    }
}

/// The plan in the requested format.
pub fn render_plan(release: &Release, format: PlanFormat) -> String {
    match format {
        PlanFormat::Text => castoff_plan::render::text(release),
        PlanFormat::Json => Manifest::from_release(release, env!("CARGO_PKG_VERSION")).to_json(),
        PlanFormat::Dot => castoff_plan::render::dot(release),
        PlanFormat::GithubMatrix => castoff_plan::render::github_matrix(release),
    }
}

fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`castoff plan | head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
