//! One client per destination of the selected steps (`castoff_registry::connect` resolves
//! and checks each one's credentials); every problem is collected and reported together,
//! before anything is uploaded.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use castoff_plan::manifest::ManifestStep;
use castoff_plan::{Channel, Manifest, StepKindName};
use castoff_registry::HttpClient;
use castoff_registry::connect::{NpmDestination, OciDestination, PypiDestination, Sources};
use castoff_registry::crates::{CratesClient, CratesRegistry};
use castoff_registry::env::{Environment, ProcessEnvironment};
use castoff_registry::npm::NpmClient;
use castoff_registry::oci::{OciClient, OciRepository};
use castoff_registry::oidc::GithubOidc;
use castoff_registry::pypi::PypiClient;

use super::options::{PublishOptions, vars};
use crate::hint::Hinted;
use crate::hint::{LIST_HINT, render_with};

/// The clients of one run, one per destination. Keys carry the step's configured
/// destination (`None`: the channel's default); npm by package, OCI by app.
pub(crate) struct Destinations {
    pub(crate) pypi: BTreeMap<Option<String>, PypiClient>,
    pub(crate) npm: BTreeMap<(String, Option<String>), NpmClient>,
    pub(crate) oci: BTreeMap<(String, Option<String>), OciClient>,
    /// By Cargo's name of the registry.
    pub(crate) crates: BTreeMap<String, CratesClient>,
}

/// The image repository an app's steps go to, after --oci-repository / --oci-registry
/// (also where `verify` pulls the image from).
pub(crate) fn oci_repository_of(
    manifest: &Manifest,
    app: &str,
    options: &PublishOptions,
) -> anyhow::Result<String> {
    let configured = manifest
        .apps
        .iter()
        .find(|a| a.name == app)
        .and_then(|a| a.oci.as_ref())
        .map(|oci| oci.repository.clone())
        .context("internal error: an image step of an app without images")?;
    let override_repository = options
        .oci_repository
        .clone()
        .or_else(|| ProcessEnvironment.var(vars::OCI_REPOSITORY));
    if let Some(repository) = override_repository {
        let apps_with_images = manifest.apps.iter().filter(|a| a.oci.is_some()).count();
        if apps_with_images > 1 {
            bail!(Hinted::new(
                format!(
                    "--oci-repository names one repository, but {apps_with_images} apps have images"
                ),
                "use --oci-registry HOST[:PORT] to move every app's repository to another registry"
            ));
        }
        return Ok(castoff_plan::names::normalize_oci_repository(&repository));
    }
    let registry = options
        .oci_registry
        .clone()
        .or_else(|| ProcessEnvironment.var(vars::OCI_REGISTRY));
    Ok(match registry {
        Some(registry) => {
            let path = configured.split_once('/').map_or("", |(_, path)| path);
            format!("{}/{path}", registry.trim_end_matches('/'))
        }
        None => configured,
    })
}

/// Resolves credentials and builds one client per destination. Every problem is collected
/// and reported together, before anything is uploaded.
pub(crate) fn connect(
    manifest: &Manifest,
    steps: &[&ManifestStep],
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<Destinations> {
    let oidc = GithubOidc::from_env(environment);
    let sources = Sources {
        environment,
        oidc: oidc.as_ref(),
    };

    // Bare credential variables go only to a channel's sole destination: counted over the
    // whole manifest, so `--only` one destination does not make it the sole one.
    let distinct = |kind: StepKindName| -> usize {
        manifest
            .steps
            .iter()
            .filter(|step| step.kind == kind)
            .map(|step| &step.destination)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let pypi_sole = distinct(StepKindName::PypiUpload) <= 1;
    let npm_sole = distinct(StepKindName::NpmPublish) <= 1;
    // Each channel's checks (a round trip or two per destination) beside the others'.
    let pypi = || -> anyhow::Result<_> {
        let mut problems: Vec<String> = Vec::new();
        let mut found = BTreeMap::new();
        let pypi_destinations: BTreeSet<Option<String>> = steps
            .iter()
            .filter(|step| step.kind == StepKindName::PypiUpload)
            .map(|step| step.destination.clone())
            .collect();
        for destination in pypi_destinations {
            let url = options
                .pypi_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_URL));
            let index_url = options
                .pypi_index_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_INDEX_URL));
            let connected = castoff_registry::connect::pypi(
                http,
                sources,
                &PypiDestination {
                    configured: destination.as_deref(),
                    url: url.as_deref(),
                    index_url: index_url.as_deref(),
                    pypirc_section: options.pypi_repository.as_deref(),
                    sole_destination: pypi_sole,
                },
            );
            match connected {
                Ok(client) => {
                    found.insert(destination, client);
                }
                Err(error) => problems.push(format!(
                    "PyPI{}: {}",
                    destination.map_or_else(String::new, |d| format!(" ({d})")),
                    render_with(&error, LIST_HINT)
                )),
            }
        }

        Ok((found, problems))
    };
    let npm = || -> anyhow::Result<_> {
        let mut problems: Vec<String> = Vec::new();
        let mut found = BTreeMap::new();
        let artifacts = manifest.artifacts_by_id();
        let npm_packages: BTreeSet<(String, Option<String>)> = steps
            .iter()
            .filter(|step| step.kind == StepKindName::NpmPublish)
            .filter_map(|step| {
                let name = artifacts
                    .get(step.artifact.as_str())?
                    .registry_name
                    .clone()?;
                Some((name, step.destination.clone()))
            })
            .collect();
        if !npm_packages.is_empty() {
            match castoff_registry::connect::npmrc(&options.workspace_root, environment) {
                Err(error) => problems.push(format!("npm: {}", render_with(&error, LIST_HINT))),
                Ok(npmrc) => {
                    // One problem per distinct error: a credential that fails for the launcher
                    // fails the same way for each of its platform packages.
                    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
                    // Every package's check at once (up to `--jobs`): each is a round trip or
                    // two to its registry (`whoami`) that waits for nothing else; results are
                    // taken in order.
                    let npm_packages: Vec<(String, Option<String>)> =
                        npm_packages.into_iter().collect();
                    let checked = crate::schedule::run(
                        &vec![Vec::new(); npm_packages.len()],
                        options.jobs.max(1),
                        |index| {
                            let (package, registry) = &npm_packages[index];
                            let url = registry.clone().or_else(|| {
                                options
                                    .npm_registry
                                    .clone()
                                    .or_else(|| environment.var(vars::NPM_REGISTRY))
                            });
                            castoff_registry::connect::npm(
                                http,
                                sources,
                                &npmrc,
                                &NpmDestination {
                                    package,
                                    url: url.as_deref(),
                                    sole_destination: npm_sole,
                                },
                            )
                            .map_err(Box::new)
                        },
                        // Every check runs: all problems are reported together.
                        |_| false,
                    );
                    for ((package, registry), connected) in npm_packages.into_iter().zip(checked) {
                        match connected
                            .context("internal error: an npm credential check never ran")?
                        {
                            Ok(client) => {
                                found.insert((package, registry), client);
                            }
                            Err(error) => {
                                let text = render_with(&*error, LIST_HINT);
                                match failures.iter_mut().find(|(known, _)| *known == text) {
                                    Some((_, packages)) => packages.push(package),
                                    None => failures.push((text, vec![package])),
                                }
                            }
                        }
                    }
                    for (text, packages) in failures {
                        let names = match packages.as_slice() {
                            [one] => one.clone(),
                            [first, rest @ ..] => {
                                format!("{first} and {} more package(s) alike", rest.len())
                            }
                            [] => String::new(),
                        };
                        problems.push(format!("npm ({names}): {text}"));
                    }
                }
            }
        }

        Ok((found, problems))
    };
    let oci = || -> anyhow::Result<_> {
        let mut problems: Vec<String> = Vec::new();
        let mut found = BTreeMap::new();
        let oci_keys: BTreeSet<(String, Option<String>)> = steps
            .iter()
            .filter(|step| step.kind.channel() == Channel::Oci)
            .map(|step| (step.app.clone(), step.destination.clone()))
            .collect();
        let mut repositories: Vec<((String, Option<String>), String)> = Vec::new();
        for (app, mirror) in oci_keys {
            let repository = match &mirror {
                Some(mirror) => Ok(mirror.clone()),
                None => oci_repository_of(manifest, &app, options),
            };
            match repository {
                Ok(repository) => repositories.push(((app, mirror), repository)),
                Err(error) => problems.push(format!(
                    "image of {app}: {}",
                    render_with(&*error, LIST_HINT)
                )),
            }
        }
        let all_repositories: Vec<String> = repositories.iter().map(|(_, r)| r.clone()).collect();
        for (key, repository) in repositories {
            // The app's own repository is the push registry the bare variables are for; its
            // mirrors get them only when they are on that same registry.
            let push_host = oci_repository_of(manifest, &key.0, options)
                .ok()
                .and_then(|primary| OciRepository::parse(&primary).ok())
                .map(|primary| primary.host());
            let connected = castoff_registry::connect::oci(
                http,
                sources,
                &OciDestination {
                    repository: &repository,
                    push_host: push_host.as_deref(),
                    all_repositories: &all_repositories,
                },
            );
            match connected {
                Ok(client) => {
                    found.insert(key, client);
                }
                Err(error) => problems.push(format!(
                    "image {}: {}",
                    castoff_plan::names::redact_userinfo(&repository),
                    render_with(&error, LIST_HINT)
                )),
            }
        }

        Ok((found, problems))
    };
    let crates = || -> anyhow::Result<_> {
        let mut problems: Vec<String> = Vec::new();
        let mut found = BTreeMap::new();
        let registries: BTreeSet<String> = steps
            .iter()
            .filter(|step| step.kind == StepKindName::CratePublish)
            .filter_map(|step| step.destination.clone())
            .collect();
        for name in registries {
            match crates_client(
                http,
                environment,
                oidc.as_ref(),
                &options.workspace_root,
                &name,
            ) {
                Ok(client) => {
                    found.insert(name, client);
                }
                Err(error) => problems.push(format!(
                    "Cargo registry `{name}`: {}",
                    render_with(&*error, LIST_HINT)
                )),
            }
        }

        Ok((found, problems))
    };
    let (pypi, npm, oci, crates) = std::thread::scope(|scope| {
        let pypi = scope.spawn(pypi);
        let npm = scope.spawn(npm);
        let oci = scope.spawn(oci);
        let crates = crates();
        fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }
        (join(pypi), join(npm), join(oci), crates)
    });
    // Problems in channel order, as when the checks ran one after the other.
    let (
        (pypi, pypi_problems),
        (npm, npm_problems),
        (oci, oci_problems),
        (crates, crates_problems),
    ) = (pypi?, npm?, oci?, crates?);
    let problems = [pypi_problems, npm_problems, oci_problems, crates_problems].concat();
    if problems.is_empty() {
        return Ok(Destinations {
            pypi,
            npm,
            oci,
            crates,
        });
    }
    bail!(
        "cannot publish: {} problem(s) found before any upload:\n  {}",
        problems.len(),
        crate::hint::list_items(&problems)
    )
}

/// The client of the Cargo registry `name`: its index and token by Cargo's conventions, looked
/// up from the workspace as Cargo would (castoff-registry's `crates` module).
///
/// Without a token, on crates.io, in a GitHub Actions job with an ID token: crates.io trusted
/// publishing mints one (revoked when the run ends, `publish/mod.rs`).
fn crates_client(
    http: &HttpClient,
    environment: &dyn Environment,
    oidc: Option<&GithubOidc>,
    workspace_root: &std::path::Path,
    name: &str,
) -> anyhow::Result<CratesClient> {
    let (index, _) = castoff_registry::crates::index_url(environment, workspace_root, name)?;
    let registry = CratesRegistry::new(name, &index)?;
    let token = castoff_registry::crates::token(environment, name)?;
    let client = CratesClient::connect(http, registry, token)?;
    match oidc {
        Some(oidc) if !client.has_token() && name == castoff_registry::crates::CRATES_IO => {
            let token = castoff_registry::crates::trusted_publishing_token(
                http,
                &client.config().api,
                oidc,
            )?;
            let source = castoff_registry::CredentialSource::TrustedPublishing {
                id_token: castoff_registry::connect::GITHUB_OIDC.to_owned(),
            };
            Ok(client.with_token(token, source))
        }
        _ => Ok(client),
    }
}
