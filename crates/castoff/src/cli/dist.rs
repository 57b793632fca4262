//! The `dist` subcommand's handler: build (all or some targets) or merge
//! partial dist folders, optionally signing everything.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;

use castoff_plan::PlanOptions;

use super::args::{Cli, DistArgs};
use super::failure::{Failure, failure, usage};
use super::output::print_stdout;
use super::progress::{Mode, Progress};
use crate::hint::Hinted;
use crate::workspace;

/// Runs `dist` (or `dist --merge`).
pub(super) fn run(cli: &Cli, args: &DistArgs) -> Result<(), Failure> {
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
        // Binaries built elsewhere, matched to the configured release before it is narrowed.
        let prebuilt = if args.prebuilt.is_empty() && args.prebuilt_dir.is_none() {
            Vec::new()
        } else {
            crate::prebuilt::resolve(
                &all,
                &crate::prebuilt::Request {
                    specs: &args.prebuilt,
                    dir: args.prebuilt_dir.as_deref(),
                    selected: &cli.targets,
                },
            )
            .map_err(|error| usage(error.into()))?
        };
        let mut options = PlanOptions {
            packages: cli.packages.clone(),
            targets: cli.targets.clone(),
        };
        if cli.targets.is_empty() {
            // This machine's target, and the supplied ones; with binaries supplied, this
            // machine's target only when the workspace releases for it.
            options
                .targets
                .extend(host.filter(|host| prebuilt.is_empty() || planned_targets.contains(host)));
            for supplied in &prebuilt {
                let triple = supplied.target.triple.to_owned();
                if !options.targets.contains(&triple) {
                    options.targets.push(triple);
                }
            }
        }
        let release = workspace::plan(&metadata, &options)?;
        let dist_options = crate::dist::DistOptions {
            dist_dir: args
                .dist_dir
                .clone()
                .unwrap_or_else(|| release.workspace_root.join("dist")),
            no_build: args.no_build,
            prebuilt,
            source_date_epoch: crate::dist::source_date_epoch(&release.workspace_root)
                .map_err(usage)?,
            planned_targets,
            signing_key,
            archive_extras: archive_extras(&release),
            require_clean: args.require_clean,
        };
        let progress = Progress::new(Mode::detect(cli.quiet), cli.verbose);
        let outcome = crate::dist::dist(&release, &dist_options, &progress).map_err(dist_failure);
        progress.finish();
        outcome?
    } else {
        if !cli.targets.is_empty() {
            return Err(usage(anyhow::Error::new(Hinted::new(
                "--merge takes the targets from the partial dists, not from --target",
                "drop --target; merge the folders of the targets you want",
            ))));
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
        let progress = Progress::new(Mode::detect(cli.quiet), cli.verbose);
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
        let mut summary =
            super::summary::of_dist(&outcome.manifest, &outcome.dist_dir, outcome.cached);
        summary.dirty_files = outcome
            .revision
            .as_ref()
            .filter(|revision| revision.is_dirty())
            .map(|revision| revision.changed_files.clone());
        let text = if cli.json {
            summary.to_json()
        } else {
            summary.to_table()
        };
        print_stdout(&text);
    }
    Ok(())
}

/// A refused dist directory, a refused supplied binary or other bad input is the user's to
/// fix (exit 2); anything else failed.
fn dist_failure(error: anyhow::Error) -> Failure {
    if error
        .downcast_ref::<crate::stage::RefusedDistDir>()
        .is_some()
        || crate::hint::is_bad_input(&error)
        || error
            .downcast_ref::<crate::prebuilt::PrebuiltError>()
            .is_some()
    {
        usage(error)
    } else {
        failure(error)
    }
}

/// castoff's own archives also carry its shell completions and man page, generated from this
/// castoff's clap definitions (the same source when castoff releases itself).
fn archive_extras(release: &castoff_plan::Release) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    release
        .apps
        .iter()
        .filter(|app| app.package.name == "castoff" && app.bins.iter().any(|bin| bin == "castoff"))
        .map(|app| {
            (
                app.package.name.clone(),
                super::completions::archive_files(),
            )
        })
        .collect()
}
