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
    /// Print the result as JSON on stdout (the summary of `dist` and `publish`, the plan of
    /// `plan`); shape in docs/cli.md and docs/summary.schema.json.
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
    /// Without --target, builds for this machine's target only; CI builds the others, one
    /// runner per target (see `plan --format github-matrix`).
    Dist(crate::dist_cli::DistArgs),
    /// Upload exactly what dist/ holds, in dependency order; safe to re-run.
    Publish(PublishArgs),
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
    Init(crate::init::InitArgs),
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
    /// Publish only if dist/manifest.json carries a valid minisign signature by this public
    /// key (what `dist --sign-key` writes); checked before anything else. Default:
    /// `CASTOFF_VERIFY_KEY` (the key file's contents), else no check.
    #[arg(long, value_name = "FILE")]
    pub verify_key: Option<PathBuf>,
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
            LoadError::Host(error) => failure(error),
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

/// `error: …`, then each cause as `caused by: …`, with every `hint:` line kept last; an error
/// that carries no hint of its own gets the generic one, so every error ends in a `hint:`.
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
    if hints.is_empty() {
        hints.push(generic_hint(error).to_owned());
    }
    lines.extend(hints);
    lines.join("\n")
}

/// The hint of an error that brings none of its own: specific for file-system errors.
fn generic_hint(error: &anyhow::Error) -> &'static str {
    let io_kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    match io_kind {
        Some(std::io::ErrorKind::NotFound) => {
            "hint: check that the path named above exists (paths are relative to the current directory)"
        }
        Some(std::io::ErrorKind::PermissionDenied) => {
            "hint: check the permissions of the path named above, or choose another with --dist-dir"
        }
        Some(_) => {
            "hint: the path named above must be a directory castoff can write to (or a file it can read); choose another with --dist-dir"
        }
        None => {
            "hint: docs/troubleshooting.md lists castoff's errors by message; if this one is not there, please report it"
        }
    }
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
            let format = if cli.json { PlanFormat::Json } else { *format };
            if format == PlanFormat::Svg {
                print_stdout(&render_svg(&castoff_plan::render::dot(&release)).map_err(failure)?);
            } else {
                print_stdout(&render_plan(&release, format));
            }
            Ok(())
        }
        Command::Dist(args) => crate::dist_cli::run(cli, args),
        Command::Publish(args) => run_publish(cli, args),
        Command::Completions { shell } => {
            print_bytes(&crate::completions::script(*shell));
            Ok(())
        }
        Command::Init(args) => {
            let changes = crate::init::init(cli.manifest_path.as_deref(), args).map_err(usage)?;
            if !cli.quiet {
                print_stdout(&crate::init::render(&changes));
            }
            Ok(())
        }
        Command::Man => {
            print_bytes(&crate::completions::man_page());
            Ok(())
        }
    }
}

/// Exit code of a publish stopped by a conflict with what a registry already holds.
pub const EXIT_CONFLICT: u8 = 3;

fn run_publish(cli: &Cli, args: &PublishArgs) -> Result<(), Failure> {
    // The workspace's configuration says where every step goes; dist/manifest.json is
    // checked against it (publish.rs), never trusted alone.
    let workspace = crate::workspace::metadata(cli.manifest_path.as_deref())?;
    let workspace_root = workspace.workspace_root.clone().into_std_path_buf();
    let verify_key = crate::sign::verifying_key_from(args.verify_key.as_deref()).map_err(usage)?;
    let mut http = castoff_registry::HttpConfig::from_env();
    http.ca_certificates = args.ca_cert.clone();
    http.allow_insecure_http = args.allow_insecure_http;
    let options = crate::publish::PublishOptions {
        dist_dir: args
            .dist_dir
            .clone()
            .unwrap_or_else(|| workspace_root.join("dist")),
        workspace_root,
        workspace,
        verify_key,
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
    let progress =
        crate::progress::Progress::new(crate::progress::Mode::detect(cli.quiet), cli.verbose);
    let result = crate::publish::publish(&options, &progress);
    progress.finish();
    match result {
        Ok(report) => {
            if !cli.quiet || cli.json {
                // publish just read and verified this manifest; it is there.
                let manifest = std::fs::read_to_string(options.dist_dir.join("manifest.json"))
                    .ok()
                    .and_then(|text| Manifest::from_json(&text).ok());
                let summary =
                    crate::summary::of_publish(manifest.as_ref(), &report, &options.dist_dir);
                print_stdout(&if cli.json {
                    summary.to_json()
                } else {
                    summary.to_table()
                });
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
        PlanFormat::Dot | PlanFormat::Svg => castoff_plan::render::dot(release),
        PlanFormat::GithubMatrix => castoff_plan::render::github_matrix(release),
    }
}

/// Draws a DOT graph as SVG with Graphviz's `dot` (from `PATH`, or `CASTOFF_DOT`).
pub fn render_svg(dot: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::process::{Command, Stdio};
    let program = std::env::var_os("CASTOFF_DOT").unwrap_or_else(|| "dot".into());
    let mut child = match Command::new(&program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "`--format svg` needs Graphviz, but its `{}` program was not found on PATH\nhint: install Graphviz (`apt install graphviz`, `dnf install graphviz`, `brew install graphviz`, `choco install graphviz`), or print `--format dot` and render it elsewhere",
                program.to_string_lossy()
            )
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("could not run `{} -Tsvg`", program.to_string_lossy()));
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = dot.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .context("could not run Graphviz's `dot -Tsvg`")?;
    let _ = writer.join();
    if !output.status.success() {
        anyhow::bail!(
            "Graphviz's `dot -Tsvg` failed ({}): {}\nhint: check the Graphviz installation with `dot -V`; `--format dot` prints the graph without it",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).context("Graphviz printed SVG that is not UTF-8")
}

fn print_stdout(text: &str) {
    print_bytes(text.as_bytes());
}

fn print_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`castoff plan | head`) is not an error worth a panic.
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}
