//! The `dist` subcommand's arguments and handler: build (all or some targets) or merge
//! partial dist folders, optionally signing everything.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::path::PathBuf;

use castoff_plan::PlanOptions;

use crate::cli::{Cli, Failure, failure, usage};
use crate::workspace;

/// `dist` options.
#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Package binaries already built (`target/<triple>/release/`) instead of running
    /// `cargo build`.
    #[arg(long, conflicts_with = "merge")]
    pub no_build: bool,
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
}

/// Runs `dist` (or `dist --merge`).
pub fn run(cli: &Cli, args: &DistArgs) -> Result<(), Failure> {
    let signing_key = crate::sign::signing_key_from(args.sign_key.as_deref()).map_err(usage)?;
    // This machine's target (`rustc -vV`), when no --target is given.
    let want_host = args.merge.is_empty() && cli.targets.is_empty();
    let (metadata, host) = workspace::metadata_and_host(cli.manifest_path.as_deref(), want_host)?;
    // The configured targets, to tell a partial dist from a complete one.
    let all = workspace::plan(
        &metadata,
        &PlanOptions {
            packages: cli.packages.clone(),
            targets: Vec::new(),
        },
    )?;
    let planned_targets: Vec<String> = all.targets().iter().map(|t| t.triple.to_owned()).collect();
    let outcome = if args.merge.is_empty() {
        let mut options = PlanOptions {
            packages: cli.packages.clone(),
            targets: cli.targets.clone(),
        };
        options.targets.extend(host);
        let release = workspace::plan(&metadata, &options)?;
        let dist_options = crate::dist::DistOptions {
            dist_dir: args
                .dist_dir
                .clone()
                .unwrap_or_else(|| release.workspace_root.join("dist")),
            no_build: args.no_build,
            source_date_epoch: crate::dist::source_date_epoch().map_err(usage)?,
            planned_targets,
            signing_key,
        };
        let progress =
            crate::progress::Progress::new(crate::progress::Mode::detect(cli.quiet), cli.verbose);
        let outcome = crate::dist::dist(&release, &dist_options, &progress).map_err(dist_failure);
        progress.finish();
        outcome?
    } else {
        if !cli.targets.is_empty() {
            return Err(usage(anyhow::anyhow!(
                "--merge takes the targets from the partial dists, not from --target\nhint: drop --target; merge the folders of the targets you want"
            )));
        }
        let partials = crate::merge::read_partials(&args.merge).map_err(usage)?;
        let (targets, packages) = crate::merge::coverage(&partials);
        let release = workspace::plan(
            &metadata,
            &PlanOptions {
                packages: if cli.packages.is_empty() {
                    packages
                } else {
                    cli.packages.clone()
                },
                targets,
            },
        )?;
        let options = crate::merge::MergeOptions {
            dist_dir: args
                .dist_dir
                .clone()
                .unwrap_or_else(|| release.workspace_root.join("dist")),
            planned_targets,
            signing_key,
        };
        crate::stage::check_dist_dir(&options.dist_dir, &release.workspace_root)
            .map_err(|refused| usage(refused.into()))?;
        let progress =
            crate::progress::Progress::new(crate::progress::Mode::detect(cli.quiet), cli.verbose);
        let outcome =
            crate::merge::merge(&release, &partials, &options, &progress).map_err(dist_failure);
        progress.finish();
        outcome?
    };
    if !cli.quiet || cli.json {
        if !cli.quiet {
            for warning in &outcome.warnings {
                eprintln!("warning: {warning}");
            }
        }
        let summary = crate::summary::of_dist(&outcome.manifest, &outcome.dist_dir);
        let text = if cli.json {
            summary.to_json()
        } else {
            summary.to_table()
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`castoff dist | head`) is not an error worth a panic.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
    Ok(())
}

/// A refused dist directory is the user's input to fix (exit 2); anything else failed.
fn dist_failure(error: anyhow::Error) -> Failure {
    if error
        .downcast_ref::<crate::stage::RefusedDistDir>()
        .is_some()
    {
        usage(error)
    } else {
        failure(error)
    }
}
