//! One client per destination, with its credentials resolved and checked; every problem is
//! collected and reported together, before anything is uploaded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use castoff_plan::manifest::ManifestStep;
use castoff_plan::{Channel, Manifest, StepKindName};
use castoff_registry::HttpClient;
use castoff_registry::env::{Environment, ProcessEnvironment};
use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry, Npmrc};
use castoff_registry::oci::{OciClient, OciCredentials, OciRepository, PushOptions};
use castoff_registry::oidc::GithubOidc;
use castoff_registry::pypi::{
    PypiClient, PypiCredentials, PypiRepository, Pypirc, PypircRepository,
};

use super::options::{PublishOptions, vars};
use crate::report::error_text;

/// The clients of one run, one per destination. Keys carry the step's configured
/// destination (`None`: the channel's default); npm by package, OCI by app.
pub(super) struct Destinations {
    pub(super) pypi: BTreeMap<Option<String>, PypiClient>,
    pub(super) npm: BTreeMap<(String, Option<String>), NpmClient>,
    pub(super) oci: BTreeMap<(String, Option<String>), OciClient>,
}

/// The image repository an app's steps go to, after --oci-repository / --oci-registry.
fn oci_repository_of(
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
            bail!(
                "--oci-repository names one repository, but {apps_with_images} apps have images\nhint: use --oci-registry HOST[:PORT] to move every app's repository to another registry"
            );
        }
        return Ok(repository);
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
pub(super) fn connect(
    manifest: &Manifest,
    steps: &[&ManifestStep],
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<Destinations> {
    let mut problems: Vec<String> = Vec::new();
    let mut destinations = Destinations {
        pypi: BTreeMap::new(),
        npm: BTreeMap::new(),
        oci: BTreeMap::new(),
    };
    let oidc = GithubOidc::from_env(environment);

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
    let pypi_destinations: BTreeSet<Option<String>> = steps
        .iter()
        .filter(|step| step.kind == StepKindName::PypiUpload)
        .map(|step| step.destination.clone())
        .collect();
    for destination in pypi_destinations {
        match connect_pypi(
            options,
            http,
            environment,
            oidc.as_ref(),
            destination.as_deref(),
            pypi_sole,
        ) {
            Ok(client) => {
                destinations.pypi.insert(destination, client);
            }
            Err(error) => problems.push(format!(
                "PyPI{}: {}",
                destination.map_or_else(String::new, |d| format!(" ({d})")),
                error_text(&error)
            )),
        }
    }

    let npm_packages: BTreeSet<(String, Option<String>)> = steps
        .iter()
        .filter(|step| step.kind == StepKindName::NpmPublish)
        .filter_map(|step| {
            let name = manifest.artifact(&step.artifact)?.registry_name.clone()?;
            Some((name, step.destination.clone()))
        })
        .collect();
    if !npm_packages.is_empty() {
        match load_npmrc(&options.workspace_root, environment) {
            Err(error) => problems.push(format!("npm: {error}")),
            Ok(npmrc) => {
                for (package, registry) in npm_packages {
                    let connected = connect_npm(
                        &package,
                        registry.as_deref(),
                        npm_sole,
                        &npmrc,
                        options,
                        http,
                        environment,
                        oidc.as_ref(),
                    );
                    match connected {
                        Ok(client) => {
                            destinations.npm.insert((package, registry), client);
                        }
                        Err(error) => {
                            problems.push(format!("npm ({package}): {}", error_text(&error)))
                        }
                    }
                }
            }
        }
    }

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
            Err(error) => problems.push(format!("image of {app}: {}", error_text(&error))),
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
        match connect_oci(
            &repository,
            &all_repositories,
            push_host.as_deref(),
            http,
            environment,
        ) {
            Ok(client) => {
                destinations.oci.insert(key, client);
            }
            Err(error) => problems.push(format!(
                "image {}: {}",
                castoff_plan::names::redact_userinfo(&repository),
                error_text(&error)
            )),
        }
    }

    if problems.is_empty() {
        return Ok(destinations);
    }
    bail!(
        "cannot publish: {} problem(s) found before any upload:\n  {}",
        problems.len(),
        problems.join("\n  ").replace("\nhint: ", "\n    hint: ")
    )
}

fn read_pypirc_section(
    environment: &dyn Environment,
    name: &str,
    required: bool,
) -> anyhow::Result<Option<PypircRepository>> {
    let path = home_dir(environment).join(".pypirc");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !required => return Ok(None),
        Err(error) => bail!(
            "the PyPI repository `{name}` needs {}, which cannot be read: {error}\nhint: add a [{name}] section with `repository`, `username` and `password`, or name an upload URL",
            path.display()
        ),
    };
    let pypirc = Pypirc::parse(&text).map_err(|problem| {
        anyhow!(
            "{}: {problem}\nhint: fix the file's syntax (INI)",
            path.display()
        )
    })?;
    match pypirc.repository(name) {
        Some(section) => Ok(Some(section)),
        None if !required => Ok(None),
        None => bail!(
            "{} has no repository `{name}`\nhint: add a [{name}] section, or name an upload URL",
            path.display()
        ),
    }
}

/// One PyPI destination: `None` is the default (`--pypi-url`, `CASTOFF_PYPI_URL`,
/// `--pypi-repository`, else PyPI); `Some` is an entry of `python.repositories` (`pypi`,
/// `testpypi`, an upload URL, or a `~/.pypirc` section, whose credentials then come first).
fn connect_pypi(
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
    oidc: Option<&GithubOidc>,
    destination: Option<&str>,
    sole_destination: bool,
) -> anyhow::Result<PypiClient> {
    let (url, index, pypirc_repository) = match destination {
        Some(name) => {
            let is_url = name.starts_with("https://") || name.starts_with("http://");
            let builtin = matches!(name, "pypi" | "testpypi");
            let section = if is_url {
                None
            } else {
                read_pypirc_section(environment, name, !builtin)?
            };
            let url = match (&section, is_url || builtin) {
                (_, true) => name.to_owned(),
                (Some(section), false) => section.repository.clone().with_context(|| {
                    format!("the ~/.pypirc section [{name}] has no `repository` URL\nhint: add `repository = <upload URL>` to it")
                })?,
                (None, false) => unreachable!("a required section was read or refused"),
            };
            (url, None, section)
        }
        None => {
            let pypirc_repository = match &options.pypi_repository {
                Some(name) => read_pypirc_section(environment, name, true)?,
                None => None,
            };
            let url = options
                .pypi_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_URL))
                .or_else(|| {
                    pypirc_repository
                        .as_ref()
                        .and_then(|r| r.repository.clone())
                })
                .unwrap_or_else(|| "pypi".to_owned());
            let index = options
                .pypi_index_url
                .clone()
                .or_else(|| environment.var(vars::PYPI_INDEX_URL));
            (url, index, pypirc_repository)
        }
    };
    refuse_credentials_in_url("PyPI upload URL", &url, PYPI_CREDENTIALS_HINT)?;
    if let Some(index) = &index {
        refuse_credentials_in_url("PyPI index URL", index, PYPI_CREDENTIALS_HINT)?;
    }
    // The destination's own variable, then the bare variables when this is the only index,
    // then its ~/.pypirc section (castoff_registry::pypi::PypiCredentials::resolve).
    let key = pypi_destination_key(destination, &url);
    let mut credentials = PypiCredentials::resolve(
        environment,
        pypirc_repository.as_ref(),
        Some(&key),
        sole_destination,
    );
    if credentials == PypiCredentials::None {
        let repository = PypiRepository::new(&url, index.as_deref(), PypiCredentials::None)?;
        match oidc {
            Some(oidc) => {
                let token = castoff_registry::pypi::trusted_publishing_token(
                    http,
                    &repository.upload_url,
                    oidc,
                )?;
                credentials = PypiCredentials::Token(token);
            }
            None if !sole_destination => bail!(
                "no credentials for {}\nhint: python.repositories names several indexes, so CASTOFF_PYPI_TOKEN and TWINE_USERNAME/TWINE_PASSWORD go to none of them; set {} for this one, give it a ~/.pypirc section with a password, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&repository.upload_url),
                castoff_registry::env::host_qualified(
                    castoff_registry::env::CASTOFF_PYPI_TOKEN,
                    &key
                ),
            ),
            None => bail!(
                "no credentials for {}\nhint: set CASTOFF_PYPI_TOKEN (an API token), TWINE_USERNAME/TWINE_PASSWORD, pass --pypi-repository with a ~/.pypirc section, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&repository.upload_url)
            ),
        }
    }
    let repository = PypiRepository::new(&url, index.as_deref(), credentials)?;
    let client = PypiClient::new(http, repository)?;
    // Wrong credentials must stop the run before any channel uploads anything.
    client.check_credentials()?;
    Ok(client)
}

/// The name a PyPI destination's own credential variable carries: a `python.repositories`
/// name (`testpypi`, a `~/.pypirc` section), else the upload URL's host.
fn pypi_destination_key(destination: Option<&str>, url: &str) -> String {
    match destination {
        Some(name) if !name.starts_with("https://") && !name.starts_with("http://") => {
            name.to_owned()
        }
        _ => match url {
            "pypi" | "testpypi" => url.to_owned(),
            _ => url_host(url).unwrap_or_else(|| url.to_owned()),
        },
    }
}

/// `host[:port]` of a URL, if it is one.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

const PYPI_CREDENTIALS_HINT: &str = "remove `user:password@` from the URL and set CASTOFF_PYPI_TOKEN (an API token) or TWINE_USERNAME/TWINE_PASSWORD, or put them in a ~/.pypirc section";

/// Credentials written into a URL are refused, never silently dropped or used: they would
/// show in logs, process lists and shell history. The message shows the URL redacted.
fn refuse_credentials_in_url(what: &str, url: &str, hint: &str) -> anyhow::Result<()> {
    let redacted = castoff_plan::names::redact_userinfo(url);
    if redacted == url {
        return Ok(());
    }
    bail!(
        "{what} {redacted}: credentials written into the URL are refused (they would show in logs and process lists)\nhint: {hint}"
    )
}

fn home_dir(environment: &dyn Environment) -> PathBuf {
    environment
        .var(castoff_registry::env::HOME)
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The project's `.npmrc` layered over the user's, like npm reads them.
fn load_npmrc(workspace_root: &Path, environment: &dyn Environment) -> anyhow::Result<Npmrc> {
    let read = |path: PathBuf| -> anyhow::Result<Npmrc> {
        match fs::read_to_string(&path) {
            Ok(text) => Npmrc::parse(&text, environment).map_err(|problem| {
                anyhow!(
                    "{}: {problem}\nhint: fix the line, or the variable it names",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Npmrc::default()),
            Err(error) => Err(anyhow!("cannot read {}: {error}", path.display())),
        }
    };
    let user_path = environment
        .var("NPM_CONFIG_USERCONFIG")
        .map_or_else(|| home_dir(environment).join(".npmrc"), PathBuf::from);
    let user = read(user_path)?;
    let project = read(workspace_root.join(".npmrc"))?;
    Ok(project.layered_over(user))
}

/// One npm destination: `configured` is an entry of `npm.registries`; without one, the
/// registry comes from `--npm-registry`, `CASTOFF_NPM_REGISTRY`, `.npmrc`, else npmjs.
#[allow(clippy::too_many_arguments)]
fn connect_npm(
    package: &str,
    configured: Option<&str>,
    sole_destination: bool,
    npmrc: &Npmrc,
    options: &PublishOptions,
    http: &HttpClient,
    environment: &dyn Environment,
    oidc: Option<&GithubOidc>,
) -> anyhow::Result<NpmClient> {
    let url = match configured {
        Some(url) => url.to_owned(),
        None => options
            .npm_registry
            .clone()
            .or_else(|| environment.var(vars::NPM_REGISTRY))
            .or_else(|| npmrc.registry_for(package).map(str::to_owned))
            .unwrap_or_else(|| castoff_registry::npm::NPMJS_REGISTRY.to_owned()),
    };
    refuse_credentials_in_url(
        "npm registry URL",
        &url,
        "remove `user:password@` from the URL and put the token in .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN",
    )?;
    let registry = NpmRegistry::new(&url, NpmCredentials::None)?;
    let mut credentials =
        NpmCredentials::resolve(environment, npmrc, &registry.url, sole_destination);
    if credentials == NpmCredentials::None {
        let id_token = match environment.var(castoff_registry::env::NPM_ID_TOKEN) {
            Some(token) => Some(castoff_registry::Secret::new(token)),
            None => match oidc {
                Some(oidc) => {
                    Some(oidc.id_token(http, &castoff_registry::npm::oidc_audience(&registry.url))?)
                }
                None => None,
            },
        };
        match id_token {
            Some(id_token) => {
                let token = castoff_registry::npm::oidc_token_exchange(
                    http,
                    &registry.url,
                    package,
                    &id_token,
                )?;
                credentials = NpmCredentials::Token(token);
            }
            None if !sole_destination => bail!(
                "no credentials for {}\nhint: npm.registries names several registries, so NODE_AUTH_TOKEN and NPM_TOKEN go to none of them; add `{}:_authToken=${{A_VARIABLE}}` for this registry to .npmrc (each registry its own variable), or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&registry.url),
                castoff_registry::error::display_url(&registry.url)
                    .split_once(':')
                    .map_or_else(String::new, |(_, rest)| rest.to_owned()),
            ),
            None => bail!(
                "no credentials for {}\nhint: add `//host/:_authToken=${{NPM_TOKEN}}` to .npmrc, set NODE_AUTH_TOKEN or NPM_TOKEN, or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                castoff_registry::error::display_url(&registry.url)
            ),
        }
    }
    let client = NpmClient::new(http, NpmRegistry::new(&url, credentials)?)?;
    client.whoami()?;
    Ok(client)
}

fn connect_oci(
    repository: &str,
    all_repositories: &[String],
    push_host: Option<&str>,
    http: &HttpClient,
    environment: &dyn Environment,
) -> anyhow::Result<OciClient> {
    let parsed = OciRepository::parse(repository)?;
    let credentials = castoff_registry::oci::resolve_credentials(environment, &parsed, push_host)?;
    let unbound_note =
        castoff_registry::oci::unbound_variables_note(environment, &parsed, push_host);
    // Blobs shared with another app's image on the same registry are mounted, not re-sent.
    let mount_from = all_repositories
        .iter()
        .filter(|other| other.as_str() != repository)
        .filter_map(|other| OciRepository::parse(other).ok())
        .filter(|other| other.registry == parsed.registry)
        .map(|other| other.name)
        .collect();
    let anonymous = matches!(credentials, OciCredentials::Anonymous);
    let mut options = PushOptions {
        mount_from,
        ..PushOptions::default()
    };
    if let Some(value) = environment.var(castoff_registry::env::CASTOFF_OCI_MAX_BODY) {
        let max_body = value.trim().parse::<u64>().ok().filter(|&bytes| bytes > 0);
        let Some(max_body) = max_body else {
            anyhow::bail!(
                "{}=`{value}` is not a number of bytes\nhint: set the largest request body the registry (or the proxy in front of it) accepts, e.g. 50000000, or unset it",
                castoff_registry::env::CASTOFF_OCI_MAX_BODY
            );
        };
        options = options.with_max_body(max_body);
    }
    let client = OciClient::new(http, parsed, credentials, options)?;
    client.preflight().map_err(|error| {
        let error = anyhow::Error::from(error);
        if anonymous {
            match &unbound_note {
                Some(note) => error.context(format!(
                    "no credentials were found for this registry\nhint: {note}"
                )),
                None => error.context("no credentials were found for this registry"),
            }
        } else {
            error
        }
    })?;
    Ok(client)
}
