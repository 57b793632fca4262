//! From a destination to a checked client: the one walk of a credential, from where the user
//! keeps it (the environment, `~/.pypirc`, `.npmrc`, Docker's `config.json` and credential
//! helpers, or a Trusted Publishing exchange of a GitHub Actions OIDC token) to the client
//! that sends it to exactly that destination's host. Every function here ends with the
//! credential checked against the registry where its protocol allows (a PyPI upload request
//! without a file, npm `whoami`, an OCI token with push scope), so wrong credentials stop a
//! release before any channel uploads anything.
//!
//! The binding rules (docs/publishing.md, "Which host receives which credential"): a source
//! bound to a host or a destination name goes only there; a bare variable goes only to its
//! channel's single destination (PyPI, npm) or to the push registry (OCI).

use std::fs;
use std::path::{Path, PathBuf};

use castoff_plan::names::redact_userinfo;

use crate::env::{self, Environment};
use crate::error::display_url;
use crate::npm::{NpmClient, NpmCredentials, NpmRegistry, Npmrc};
use crate::oci::{OciClient, OciCredentials, OciRepository, PushOptions};
use crate::oidc::GithubOidc;
use crate::pypi::{PypiClient, PypiCredentials, PypiRepository, Pypirc, PypircRepository};
use crate::{CredentialSource, HttpClient, RegistryError, Secret};

/// Where a Trusted Publishing exchange in GitHub Actions takes its ID token from.
/// How a token minted by Trusted Publishing names its source.
pub const GITHUB_OIDC: &str = "the GitHub Actions OIDC token";

/// Where the sources of credentials are: the process environment (or a stand-in) and, in
/// GitHub Actions with `id-token: write`, the OIDC token endpoint.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub environment: &'a dyn Environment,
    pub oidc: Option<&'a GithubOidc>,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("oidc", &self.oidc.is_some())
            .finish_non_exhaustive()
    }
}

/// One PyPI destination.
#[derive(Debug, Clone, Default)]
pub struct PypiDestination<'a> {
    /// An entry of `python.repositories`: `pypi`, `testpypi`, an upload URL, or a `~/.pypirc`
    /// section (whose credentials then come first). `None`: the default destination below.
    pub configured: Option<&'a str>,
    /// The default destination's upload URL (`--pypi-url`, `CASTOFF_PYPI_URL`), else the
    /// `pypirc_section`'s, else PyPI.
    pub url: Option<&'a str>,
    /// The default destination's simple index, when it cannot be derived from the URL.
    pub index_url: Option<&'a str>,
    /// A `~/.pypirc` section for the default destination (`--pypi-repository`).
    pub pypirc_section: Option<&'a str>,
    /// The release has only this PyPI destination: bare variables may go to it.
    pub sole_destination: bool,
}

/// The hint of a PyPI URL with credentials in it.
const PYPI_CREDENTIALS_HINT: &str = "remove `user:password@` from the URL and set CASTOFF_PYPI_TOKEN (an API token) or TWINE_USERNAME/TWINE_PASSWORD, or put them in a ~/.pypirc section";

/// A checked client for one PyPI destination.
pub fn pypi(
    http: &HttpClient,
    sources: Sources<'_>,
    destination: &PypiDestination<'_>,
) -> Result<PypiClient, RegistryError> {
    let environment = sources.environment;
    let (url, index, pypirc_repository) = match destination.configured {
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
                (Some((section, _)), false) => section.repository.clone().ok_or_else(|| {
                    setup(
                        format!("the ~/.pypirc section [{name}] has no `repository` URL"),
                        "add `repository = <upload URL>` to it",
                    )
                })?,
                (None, false) => unreachable!("a required section was read or refused"),
            };
            (url, None, section)
        }
        None => {
            let pypirc_repository = match destination.pypirc_section {
                Some(name) => read_pypirc_section(environment, name, true)?,
                None => None,
            };
            let url = destination
                .url
                .map(str::to_owned)
                .or_else(|| {
                    pypirc_repository
                        .as_ref()
                        .and_then(|(r, _)| r.repository.clone())
                })
                .unwrap_or_else(|| "pypi".to_owned());
            (
                url,
                destination.index_url.map(str::to_owned),
                pypirc_repository,
            )
        }
    };
    refuse_credentials_in_url("PyPI upload URL", &url, PYPI_CREDENTIALS_HINT)?;
    if let Some(index) = &index {
        refuse_credentials_in_url("PyPI index URL", index, PYPI_CREDENTIALS_HINT)?;
    }
    // The destination's own variable, then the bare variables when this is the only index,
    // then its ~/.pypirc section (PypiCredentials::resolve), then Trusted Publishing.
    let key = pypi_destination_key(destination.configured, &url);
    let sole = destination.sole_destination;
    let (mut credentials, mut source) = PypiCredentials::resolve(
        environment,
        pypirc_repository.as_ref().map(|(r, source)| (r, source)),
        Some(&key),
        sole,
    );
    if credentials == PypiCredentials::None {
        let repository = PypiRepository::new(&url, index.as_deref(), PypiCredentials::None)?;
        match sources.oidc {
            Some(oidc) => {
                let token =
                    crate::pypi::trusted_publishing_token(http, &repository.upload_url, oidc)?;
                credentials = PypiCredentials::Token(token);
                source = Some(CredentialSource::TrustedPublishing {
                    id_token: GITHUB_OIDC.to_owned(),
                });
            }
            None if !sole => {
                return Err(setup(
                    format!("no credentials for {}", display_url(&repository.upload_url)),
                    format!(
                        "python.repositories names several indexes, so CASTOFF_PYPI_TOKEN and TWINE_USERNAME/TWINE_PASSWORD go to none of them; set {} (an API token) or {} and {} (a user name and password, as devpi and pypiserver take) for this one, give it a ~/.pypirc section with a password, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                        env::host_qualified(env::CASTOFF_PYPI_TOKEN, &key),
                        env::host_qualified(env::CASTOFF_PYPI_USERNAME, &key),
                        env::host_qualified(env::CASTOFF_PYPI_PASSWORD, &key)
                    ),
                ));
            }
            None => {
                return Err(setup(
                    format!("no credentials for {}", display_url(&repository.upload_url)),
                    "set CASTOFF_PYPI_TOKEN (an API token), TWINE_USERNAME/TWINE_PASSWORD, pass --pypi-repository with a ~/.pypirc section, or use Trusted Publishing in GitHub Actions (permissions: id-token: write)",
                ));
            }
        }
    }
    let repository = PypiRepository::new(&url, index.as_deref(), credentials)?;
    let client = PypiClient::new(http, repository)?.with_credential_source(source);
    client.check_credentials()?;
    Ok(client)
}

/// The name a PyPI destination's own credential variable carries: a `python.repositories`
/// name (`testpypi`, a `~/.pypirc` section), else the upload URL's host.
fn pypi_destination_key(configured: Option<&str>, url: &str) -> String {
    match configured {
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

/// The `~/.pypirc` section `name` and where it is (the source its credentials come from).
fn read_pypirc_section(
    environment: &dyn Environment,
    name: &str,
    required: bool,
) -> Result<Option<(PypircRepository, CredentialSource)>, RegistryError> {
    let path = home_dir(environment).join(".pypirc");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !required => return Ok(None),
        Err(error) => {
            return Err(setup(
                format!(
                    "the PyPI repository `{name}` needs {}, which cannot be read: {error}",
                    path.display()
                ),
                format!(
                    "add a [{name}] section with `repository`, `username` and `password`, or name an upload URL"
                ),
            ));
        }
    };
    let pypirc = Pypirc::parse(&text).map_err(|problem| {
        setup(
            format!("{}: {problem}", path.display()),
            "fix the file's syntax (INI)",
        )
    })?;
    match pypirc.repository(name) {
        Some(section) => Ok(Some((
            section,
            CredentialSource::PypircSection {
                path,
                section: name.to_owned(),
            },
        ))),
        None if !required => Ok(None),
        None => Err(setup(
            format!("{} has no repository `{name}`", path.display()),
            format!("add a [{name}] section, or name an upload URL"),
        )),
    }
}

/// The project's `.npmrc` layered over the user's (`NPM_CONFIG_USERCONFIG`, else
/// `~/.npmrc`), like npm reads them.
pub fn npmrc(workspace_root: &Path, environment: &dyn Environment) -> Result<Npmrc, RegistryError> {
    let read = |path: PathBuf| -> Result<Npmrc, RegistryError> {
        match fs::read_to_string(&path) {
            Ok(text) => Npmrc::parse(&text, environment)
                .map(|npmrc| npmrc.read_from(&path))
                .map_err(|problem| {
                    setup(
                        format!("{}: {problem}", path.display()),
                        "fix the line, or the variable it names",
                    )
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Npmrc::default()),
            Err(error) => Err(RegistryError::Unreadable {
                message: format!("cannot read {}: {error}", path.display()),
            }),
        }
    };
    let user_path = environment
        .var("NPM_CONFIG_USERCONFIG")
        .map_or_else(|| home_dir(environment).join(".npmrc"), PathBuf::from);
    let user = read(user_path)?;
    let project = read(workspace_root.join(".npmrc"))?;
    Ok(project.layered_over(user))
}

/// One npm destination.
#[derive(Debug, Clone)]
pub struct NpmDestination<'a> {
    /// The package to publish (its scope may pick the registry in `.npmrc`; Trusted
    /// Publishing tokens are minted per package).
    pub package: &'a str,
    /// The registry URL: an entry of `npm.registries`, `--npm-registry`, `CASTOFF_NPM_REGISTRY`;
    /// `None`: `.npmrc`'s registry for the package, else npmjs.
    pub url: Option<&'a str>,
    /// The release has only this npm registry: bare variables may go to it.
    pub sole_destination: bool,
}

/// A checked client for one npm destination.
pub fn npm(
    http: &HttpClient,
    sources: Sources<'_>,
    npmrc: &Npmrc,
    destination: &NpmDestination<'_>,
) -> Result<NpmClient, RegistryError> {
    let environment = sources.environment;
    let package = destination.package;
    let url = destination
        .url
        .map(str::to_owned)
        .or_else(|| npmrc.registry_for(package).map(str::to_owned))
        .unwrap_or_else(|| crate::npm::NPMJS_REGISTRY.to_owned());
    refuse_credentials_in_url(
        "npm registry URL",
        &url,
        "remove `user:password@` from the URL and put the token in .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN",
    )?;
    let registry = NpmRegistry::new(&url, NpmCredentials::None)?;
    let sole = destination.sole_destination;
    let (mut credentials, mut source) =
        NpmCredentials::resolve(environment, npmrc, &registry.url, sole);
    if credentials == NpmCredentials::None {
        let id_token = match environment.var(env::NPM_ID_TOKEN) {
            Some(token) => Some((Secret::new(token), env::NPM_ID_TOKEN)),
            None => match sources.oidc {
                Some(oidc) => Some((
                    oidc.id_token(http, &crate::npm::oidc_audience(&registry.url))?,
                    GITHUB_OIDC,
                )),
                None => None,
            },
        };
        match id_token {
            Some((id_token, from)) => {
                let token =
                    crate::npm::oidc_token_exchange(http, &registry.url, package, &id_token)?;
                credentials = NpmCredentials::Token(token);
                source = Some(CredentialSource::TrustedPublishing {
                    id_token: from.to_owned(),
                });
            }
            None if !sole => {
                return Err(setup(
                    format!("no credentials for {}", display_url(&registry.url)),
                    format!(
                        "npm.registries names several registries, so NODE_AUTH_TOKEN and NPM_TOKEN go to none of them; add `{}:_authToken=${{A_VARIABLE}}` for this registry to .npmrc (each registry its own variable), or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                        display_url(&registry.url)
                            .split_once(':')
                            .map_or_else(String::new, |(_, rest)| rest.to_owned()),
                    ),
                ));
            }
            None => {
                return Err(setup(
                    format!("no credentials for {}", display_url(&registry.url)),
                    "add `//host/:_authToken=${NPM_TOKEN}` to .npmrc, set NODE_AUTH_TOKEN or NPM_TOKEN, or use npm trusted publishing in GitHub Actions (permissions: id-token: write)",
                ));
            }
        }
    }
    let client =
        NpmClient::new(http, NpmRegistry::new(&url, credentials)?)?.with_credential_source(source);
    client.whoami()?;
    Ok(client)
}

/// One image repository to push to.
#[derive(Debug, Clone)]
pub struct OciDestination<'a> {
    /// `host[:port]/name`.
    pub repository: &'a str,
    /// The push registry's host: the bare `CASTOFF_OCI_USERNAME/PASSWORD` go only there.
    pub push_host: Option<&'a str>,
    /// Every repository of the release: blobs shared with one on the same registry are
    /// mounted from it, not sent again.
    pub all_repositories: &'a [String],
}

/// A checked client (a token with push scope) for one image repository.
pub fn oci(
    http: &HttpClient,
    sources: Sources<'_>,
    destination: &OciDestination<'_>,
) -> Result<OciClient, RegistryError> {
    let environment = sources.environment;
    let parsed = OciRepository::parse(destination.repository)?;
    let (credentials, source) =
        crate::oci::resolve_credentials(environment, &parsed, destination.push_host)?;
    let unbound_note =
        crate::oci::unbound_variables_note(environment, &parsed, destination.push_host);
    let mount_from = destination
        .all_repositories
        .iter()
        .filter(|other| other.as_str() != destination.repository)
        .filter_map(|other| OciRepository::parse(other).ok())
        .filter(|other| other.host() == parsed.host())
        .map(|other| other.name)
        .collect();
    let anonymous = matches!(credentials, OciCredentials::Anonymous);
    let mut options = PushOptions {
        mount_from,
        ..PushOptions::default()
    };
    if let Some(value) = environment.var(env::CASTOFF_OCI_MAX_BODY) {
        let max_body = value.trim().parse::<u64>().ok().filter(|&bytes| bytes > 0);
        let Some(max_body) = max_body else {
            return Err(setup(
                format!(
                    "{}=`{value}` is not a number of bytes",
                    env::CASTOFF_OCI_MAX_BODY
                ),
                "set the largest request body the registry (or the proxy in front of it) accepts, e.g. 50000000, or unset it",
            ));
        };
        options = options.with_max_body(max_body);
    }
    let client = OciClient::new(http, parsed, credentials, options)?.with_credential_source(source);
    client.preflight().map_err(|error| {
        if anonymous {
            RegistryError::Anonymous {
                note: unbound_note.clone(),
                source: Box::new(error),
            }
        } else {
            error
        }
    })?;
    Ok(client)
}

/// Credentials written into a URL are refused, never silently dropped or used: they would
/// show in logs, process lists and shell history. The message shows the URL redacted.
fn refuse_credentials_in_url(what: &str, url: &str, hint: &str) -> Result<(), RegistryError> {
    let redacted = redact_userinfo(url);
    if redacted == url {
        return Ok(());
    }
    Err(setup(
        format!(
            "{what} {redacted}: credentials written into the URL are refused (they would show in logs and process lists)"
        ),
        hint,
    ))
}

fn home_dir(environment: &dyn Environment) -> PathBuf {
    environment
        .var(env::HOME)
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn setup(message: impl Into<String>, hint: impl Into<String>) -> RegistryError {
    RegistryError::Setup {
        message: message.into(),
        hint: hint.into(),
    }
}
