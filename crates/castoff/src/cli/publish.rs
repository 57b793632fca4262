//! The `publish` subcommand's handler.

use castoff_plan::Manifest;

use super::args::{Cli, PublishArgs};
use super::failure::{EXIT_CONFLICT, EXIT_FAILURE, EXIT_USAGE, Failure, usage};
use super::output::print_stdout;

pub(super) fn run_publish(cli: &Cli, args: &PublishArgs) -> Result<(), Failure> {
    // The workspace's configuration says where every step goes; dist/manifest.json is
    // checked against it (publish.rs), never trusted alone.
    let workspace = crate::workspace::metadata(cli.manifest_path.as_deref())?;
    let workspace_root = workspace.workspace_root.clone().into_std_path_buf();
    let verify_key = crate::sign::verifying_key_from(args.verify_key.as_deref()).map_err(usage)?;
    let http = args.registries.http();
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
        pypi_url: args.registries.pypi_url.clone(),
        pypi_index_url: args.registries.pypi_index_url.clone(),
        pypi_repository: args.registries.pypi_repository.clone(),
        npm_registry: args.registries.npm_registry.clone(),
        oci_repository: args.registries.oci_repository.clone(),
        oci_registry: args.registries.oci_registry.clone(),
        http,
        jobs: args.jobs,
        tag: crate::publish::release_tag(args.tag.as_deref()),
        allow_partial: args.allow_partial,
    };
    let progress =
        super::progress::Progress::new(super::progress::Mode::detect(cli.quiet), cli.verbose);
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
                    super::summary::of_publish(manifest.as_ref(), &report, &options.dist_dir);
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
            } else if error
                .downcast_ref::<crate::publish::RefusedRelease>()
                .is_some()
            {
                // A tag that is not the release's, or a partial dist: the user's input.
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            };
            Err(Failure { error, exit_code })
        }
    }
}
