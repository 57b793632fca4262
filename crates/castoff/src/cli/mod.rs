//! The `castoff` command line (also `cargo xtask …` in this repository): parses arguments,
//! runs a command, prints the result or the error with its causes and a hint, and maps the
//! outcome to an exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::process::ExitCode;

use castoff_plan::{Manifest, PlanOptions, Release};
use clap::Parser as _;

use crate::hint::Hinted;
use crate::workspace;
use output::{print_bytes, print_stdout};

mod args;
pub mod completions;
mod dist;
mod failure;
pub mod init;
/// The launcher `init` writes for the `cargo xtask` alias, compiled here so the lints and unit
/// tests see it.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../templates/launch.rs"]
mod launch_template;
mod output;
pub mod progress;
mod publish;
pub mod summary;
mod verify;
mod yank;

pub use args::EXIT_CODES_HELP;
pub use args::{Cli, Color, Command, DistArgs, PlanFormat, PublishArgs, VerifyArgs, YankArgs};
pub use failure::{EXIT_CONFLICT, EXIT_FAILURE, EXIT_USAGE, Failure, failure, render_error, usage};

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

/// Runs one parsed command line.
pub fn run(cli: &Cli) -> Result<(), Failure> {
    let options = PlanOptions {
        packages: cli.packages.clone(),
        targets: cli.targets.clone(),
    };
    match &cli.command {
        Command::Plan { format } => {
            let release = workspace::load(cli.manifest_path.as_deref(), &options)?;
            // A custom profile nothing defines is a configuration mistake plan can see too.
            let every_build: Vec<_> = release.builds().collect();
            crate::hint::all_at_once(
                "invalid release configuration",
                crate::cargo::undefined_profiles(&release, &every_build),
            )
            .map_err(usage)?;
            let format = if cli.json { PlanFormat::Json } else { *format };
            if format == PlanFormat::Svg {
                print_stdout(&render_svg(&castoff_plan::render::dot(&release)).map_err(failure)?);
            } else {
                print_stdout(&render_plan(&release, format));
            }
            Ok(())
        }
        Command::Dist(args) => dist::run(cli, args),
        Command::Publish(args) => publish::run_publish(cli, args),
        Command::Verify(args) => verify::run_verify(cli, args),
        Command::Yank(args) => yank::run_yank(cli, args),
        Command::Completions { shell } => {
            print_bytes(&completions::script(*shell));
            Ok(())
        }
        Command::Init(args) => {
            let changes = init::init(cli.manifest_path.as_deref(), args).map_err(usage)?;
            if cli.json {
                print_stdout(&init::render_json(&changes));
            } else if !cli.quiet {
                print_stdout(&init::render(&changes));
            }
            Ok(())
        }
        Command::Man => {
            print_bytes(&completions::man_page());
            Ok(())
        }
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
    use std::io::Write as _;
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
            anyhow::bail!(Hinted::new(
                format!(
                    "`--format svg` needs Graphviz, but its `{}` program was not found on PATH",
                    program.to_string_lossy()
                ),
                "install Graphviz (`apt install graphviz`, `dnf install graphviz`, `brew install graphviz`, `choco install graphviz`), or print `--format dot` and render it elsewhere"
            ))
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
        anyhow::bail!(Hinted::new(
            format!(
                "Graphviz's `dot -Tsvg` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "check the Graphviz installation with `dot -V`; `--format dot` prints the graph without it"
        ));
    }
    String::from_utf8(output.stdout).context("Graphviz printed SVG that is not UTF-8")
}
