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
    Dist {
        /// Package binaries already built (`target/<triple>/release/`) instead of running
        /// `cargo build`.
        #[arg(long)]
        no_build: bool,
        /// Output directory (default: `dist/` at the workspace root).
        #[arg(long, value_name = "DIR")]
        dist_dir: Option<PathBuf>,
    },
    /// Upload exactly what dist/ holds, in dependency order; safe to re-run.
    Publish,
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
        Command::Dist { no_build, dist_dir } => {
            let mut options = options;
            if options.targets.is_empty() {
                options
                    .targets
                    .push(crate::dist::host_target().map_err(failure)?);
            }
            let release = workspace::load(cli.manifest_path.as_deref(), &options)?;
            let dist_options = crate::dist::DistOptions {
                dist_dir: dist_dir
                    .clone()
                    .unwrap_or_else(|| release.workspace_root.join("dist")),
                no_build: *no_build,
                source_date_epoch: crate::dist::source_date_epoch().map_err(usage)?,
            };
            let outcome = crate::dist::dist(&release, &dist_options).map_err(failure)?;
            if !cli.quiet {
                for warning in &outcome.warnings {
                    eprintln!("warning: {warning}");
                }
                print_stdout(&dist_summary(&outcome));
            }
            Ok(())
        }
        Command::Publish => {
            let release = workspace::load(cli.manifest_path.as_deref(), &options)?;
            Err(not_built_yet("publish", &release))
        }
    }
}

fn failure(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_FAILURE,
    }
}

fn usage(error: anyhow::Error) -> Failure {
    Failure {
        error,
        exit_code: EXIT_USAGE,
    }
}

/// One line per file in dist/: kind, size, sha256 prefix, path.
fn dist_summary(outcome: &crate::dist::DistOutcome) -> String {
    let mut out = String::new();
    for artifact in &outcome.manifest.artifacts {
        let (Some(path), Some(size), Some(sha)) = (&artifact.path, artifact.size, &artifact.sha256)
        else {
            continue;
        };
        out.push_str(&format!(
            "{:<13} {:>10}  {}  {}\n",
            artifact.kind,
            human_size(size),
            &sha[..12],
            path
        ));
    }
    out.push_str(&format!("wrote {}\n", outcome.dist_dir.display()));
    out
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
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

fn not_built_yet(command: &str, release: &Release) -> Failure {
    Failure {
        error: anyhow::anyhow!(
            "`{command}` is not built yet in this castoff version ({} artifact(s) planned)\nhint: run `castoff plan` to see what it will do",
            release.artifacts.len()
        ),
        exit_code: EXIT_FAILURE,
    }
}

fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`castoff plan | head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
