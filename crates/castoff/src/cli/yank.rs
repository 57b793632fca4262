//! The `yank` subcommand's handler: the confirmation, the plan's table or JSON, the exit code.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use castoff_plan::yank_report::{YankOutcome, YankReport};

use super::args::{Cli, YankArgs};
use super::failure::{EXIT_FAILURE, Failure, usage};
use super::output::print_stdout;
use crate::hint::Hinted;

pub(super) fn run_yank(cli: &Cli, args: &YankArgs) -> Result<(), Failure> {
    // Refused before anything is asked of a registry: without a terminal nobody can answer.
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(usage(
            Hinted::new(
                format!(
                    "`castoff yank {}` changes registries and asks for confirmation first, but there is no terminal to ask on",
                    args.version
                ),
                "pass --yes to yank without asking (as CI does), or --dry-run to only see the plan",
            )
            .into(),
        ));
    }
    let workspace = crate::workspace::metadata(cli.manifest_path.as_deref())?;
    let workspace_root = workspace.workspace_root.clone().into_std_path_buf();
    let http = args.registries.http();
    let dist_dir = args
        .dist_dir
        .clone()
        .unwrap_or_else(|| workspace_root.join("dist"));
    let options = crate::yank::YankOptions {
        version: args.version.clone(),
        message: args.message.clone(),
        dist_dir: dist_dir.clone(),
        dry_run: args.dry_run,
        packages: cli.packages.clone(),
        destinations: crate::publish::PublishOptions {
            dist_dir: dist_dir.clone(),
            workspace_root,
            workspace,
            verify_key: None,
            dry_run: args.dry_run,
            only: Vec::new(),
            skip: Vec::new(),
            pypi_url: args.registries.pypi_url.clone(),
            pypi_index_url: args.registries.pypi_index_url.clone(),
            pypi_repository: args.registries.pypi_repository.clone(),
            npm_registry: args.registries.npm_registry.clone(),
            oci_repository: args.registries.oci_repository.clone(),
            oci_registry: args.registries.oci_registry.clone(),
            http,
            jobs: 1,
            tag: None,
            allow_partial: true,
        },
    };
    let progress =
        super::progress::Progress::new(super::progress::Mode::detect(cli.quiet), cli.verbose);
    let yes = args.yes;
    let confirm = |report: &YankReport| yes || ask(report);
    let result = crate::yank::yank(&options, &progress, &confirm);
    progress.finish();
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            return Err(Failure {
                error,
                exit_code: EXIT_FAILURE,
            });
        }
    };
    if !cli.quiet || cli.json {
        print_stdout(&if cli.json {
            report.to_json()
        } else {
            table(&report)
        });
    }
    let failed: Vec<&str> = report
        .steps
        .iter()
        .filter(|step| step.outcome == YankOutcome::Failed)
        .map(|step| step.id.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = report
        .steps
        .iter()
        .filter_map(|step| Some(format!("{}: {}", step.id, step.error.as_deref()?)))
        .collect();
    Err(Failure {
        error: Hinted::new(
            format!(
                "{} step(s) failed ({}); what happened is recorded in {}\n  {}",
                failed.len(),
                failed.join(", "),
                dist_dir.join("yank-report.json").display(),
                errors.join("\n  ").replace('\n', "\n  ")
            ),
            "fix the cause and run `castoff yank` again: it asks the registries again and finishes what is left",
        )
        .into(),
        exit_code: EXIT_FAILURE,
    })
}

/// Shows the changes on stderr and asks y/N on the terminal.
fn ask(report: &YankReport) -> bool {
    let mut stderr = std::io::stderr().lock();
    let changes: Vec<&String> = report.steps.iter().flat_map(|s| &s.changes).collect();
    let _ = writeln!(stderr, "castoff yank {} will:", report.version);
    for change in &changes {
        let _ = writeln!(stderr, "  - {change}");
    }
    let _ = write!(stderr, "Make these {} change(s)? [y/N] ", changes.len());
    let _ = stderr.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES")
}

/// The report as a table: one row per step, its changes, manual steps and notes below it.
pub(crate) fn table(report: &YankReport) -> String {
    let mut out = format!(
        "yank {}{}\n",
        report.version,
        if report.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    let width = report
        .steps
        .iter()
        .map(|step| step.id.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<width$}  {:<16} {:<11} destination\n",
        "step", "state", "outcome"
    ));
    for step in &report.steps {
        out.push_str(&format!(
            "{:<width$}  {:<16} {:<11} {}\n",
            step.id,
            step.state.as_str(),
            step.outcome.as_str(),
            step.destination
        ));
        for change in &step.changes {
            out.push_str(&format!("    - {change}\n"));
        }
        for (number, manual) in step.manual.iter().enumerate() {
            out.push_str(&format!("    manual {}. {manual}\n", number + 1));
        }
        for note in &step.notes {
            out.push_str(&format!("    note: {note}\n"));
        }
        if let Some(error) = &step.error {
            out.push_str(&format!("    error: {}\n", error.replace('\n', "\n    ")));
        }
    }
    out
}
