//! The `verify` subcommand's handler.

use std::time::Duration;

use super::args::{Cli, VerifyArgs};
use super::failure::{EXIT_FAILURE, Failure, usage};
use super::output::print_stdout;
use crate::hint::Hinted;

pub(super) fn run_verify(cli: &Cli, args: &VerifyArgs) -> Result<(), Failure> {
    let workspace = crate::workspace::metadata(cli.manifest_path.as_deref())?;
    let workspace_root = workspace.workspace_root.clone().into_std_path_buf();
    if args.timeout == 0 {
        return Err(usage(anyhow::Error::new(Hinted::new(
            "--timeout 0 leaves no client any time",
            "give the seconds one client may take, e.g. --timeout 600",
        ))));
    }
    let options = crate::verify::VerifyOptions {
        dist_dir: args
            .dist_dir
            .clone()
            .unwrap_or_else(|| workspace_root.join("dist")),
        workspace_root,
        workspace,
        pypi_url: args.pypi_url.clone(),
        pypi_index_url: args.pypi_index_url.clone(),
        npm_registry: args.npm_registry.clone(),
        oci_repository: args.oci_repository.clone(),
        oci_registry: args.oci_registry.clone(),
        install_base_url: args.install_base_url.clone(),
        require: args.require.clone(),
        timeout: Duration::from_secs(args.timeout),
        path: None,
        from_dist: args.dist,
    };
    if let Some(unknown) = args.require.iter().find(|name| {
        !crate::verify::CLIENTS
            .iter()
            .any(|(known, _, _)| known == name)
    }) {
        return Err(usage(anyhow::Error::new(Hinted::new(
            format!("--require {unknown}: castoff verify knows no client named `{unknown}`"),
            format!(
                "name one of {}",
                crate::verify::CLIENTS
                    .iter()
                    .map(|(name, _, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))));
    }
    // Ctrl-C (or a CI job's SIGTERM) ends the clients too: each runs in a process group of
    // its own, which the terminal's signal does not reach. A handler set before (by a program
    // embedding the CLI) stays.
    let _ = ctrlc::set_handler(|| {
        crate::verify::interrupt();
        eprintln!("castoff verify: interrupted; the clients were stopped");
        std::process::exit(130);
    });
    let progress =
        super::progress::Progress::new(super::progress::Mode::detect(cli.quiet), cli.verbose);
    let result = crate::verify::verify(&options, &progress);
    if crate::verify::interrupted() {
        // The handler ended the clients, so they look failed: leave the exit (130) and the
        // message to it, which is on its way, rather than report them.
        loop {
            std::thread::park();
        }
    }
    progress.finish();
    let outcome = result.map_err(|error| Failure {
        error,
        exit_code: EXIT_FAILURE,
    })?;
    if cli.json {
        print_stdout(&outcome.to_json());
    } else if !cli.quiet || !outcome.failures().is_empty() {
        print_stdout(&outcome.to_table());
    }
    let failures = outcome.failures();
    if failures.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = failures
        .iter()
        .map(|check| format!("{} with {}", check.artifact, check.client))
        .collect();
    // A client refused for want of credentials says nothing about the release: verify runs
    // clients as an anonymous user would (docs/verify.md).
    let refused = failures
        .iter()
        .filter(|check| check.reason.as_deref().is_some_and(asked_for_credentials))
        .count();
    const CREDENTIALS: &str = "a registry asked for credentials, and verify installs as an anonymous user would, so the release itself may be fine: make the package public (a new GHCR package is private), or verify where it is served without credentials";
    const RELEASE: &str = "fix the release (a new version) or the client's setup";
    let hint = if refused == failures.len() {
        format!("the table above says why: {CREDENTIALS}")
    } else if refused > 0 {
        format!("the table above says why; where {CREDENTIALS}; for the others, {RELEASE}")
    } else {
        format!("the table above says why; {RELEASE}")
    };
    Err(Failure {
        error: anyhow::Error::new(Hinted::new(
            format!("{} check(s) failed: {}", failures.len(), names.join(", ")),
            hint,
        )),
        exit_code: EXIT_FAILURE,
    })
}

/// Whether a client's failure reads as a registry asking for credentials (pip's and npm's
/// 401/403, an OCI registry's `unauthorized: authentication required`). A status counts only
/// as a word of its own after `error`, `status` or `code`-like text, or before its reason, so
/// digests, ports and sizes that contain the digits do not.
fn asked_for_credentials(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    if ["unauthorized", "authentication required", "e401", "e403"]
        .iter()
        .any(|phrase| {
            reason.match_indices(phrase).any(|(at, _)| {
                let before = reason[..at].chars().next_back();
                let after = reason[at + phrase.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric())
            })
        })
    {
        return true;
    }
    let words: Vec<&str> = reason
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    words.windows(2).any(|pair| match pair {
        [before, "401" | "403"] => {
            matches!(*before, "error" | "status" | "http" | "code" | "answered")
        }
        ["401", after] => *after == "unauthorized",
        ["403", after] => *after == "forbidden",
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::asked_for_credentials;

    #[test]
    fn a_registry_asking_for_credentials_is_told_apart() {
        assert!(asked_for_credentials(
            "runc failed: reading manifest 0.3.1 in 127.0.0.1:5001/acme/greeter: unauthorized: authentication required"
        ));
        assert!(asked_for_credentials(
            "npm error code E401 npm error Unable to authenticate"
        ));
        assert!(asked_for_credentials(
            "pip: HTTP error 401 while getting http://127.0.0.1:8080/packages/x.whl"
        ));
        assert!(asked_for_credentials("403 Forbidden"));
        assert!(!asked_for_credentials(
            "greeter --version printed nothing (exit status 127)"
        ));
        // Digits inside a digest, a port or a size are not a status.
        assert!(!asked_for_credentials(
            "digest mismatch: expected sha256:4013e401ab, got sha256:9f401c"
        ));
        assert!(!asked_for_credentials(
            "could not connect to 127.0.0.1:40123 (401 bytes read)"
        ));
    }
}
