//! [`CredentialSource`]: where a credential came from (variable names, a file and the entry in
//! it, a credential helper, Trusted Publishing), so that a registry's refusal names the
//! source to fix instead of listing every place castoff could have looked. It holds names
//! and paths only, never the secret.

use std::fmt;
use std::path::PathBuf;

/// The place a credential was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Environment variables, in the order they were read (`TWINE_USERNAME`,
    /// `TWINE_PASSWORD`); the ones that were not set are not listed.
    Variables(Vec<String>),
    /// A section of a `.pypirc`: `[name]` in `path`.
    PypircSection { path: PathBuf, section: String },
    /// A key of an `.npmrc` (`//host/:_authToken`), with the variables its value was
    /// expanded from (`${NPM_TOKEN}`).
    NpmrcKey {
        path: PathBuf,
        key: String,
        variables: Vec<String>,
    },
    /// An `auths` entry of a Docker `config.json` (or podman `auth.json`).
    DockerAuths { path: PathBuf, key: String },
    /// A Docker credential helper (`docker-credential-<name>`), named by `credHelpers` or
    /// `credsStore` in `path`.
    CredentialHelper { program: String, path: PathBuf },
    /// A table of Cargo's `credentials.toml` (`registry`, `registries.<name>`).
    CargoCredentials { path: PathBuf, section: String },
    /// A short-lived token minted by a Trusted Publishing exchange of an ID token from
    /// `id_token` (GitHub Actions OIDC, `NPM_ID_TOKEN`).
    TrustedPublishing { id_token: String },
}

impl CredentialSource {
    /// A source of variables.
    pub fn variables<'a>(names: impl IntoIterator<Item = &'a str>) -> CredentialSource {
        CredentialSource::Variables(names.into_iter().map(str::to_owned).collect())
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Variables(names) => match names.as_slice() {
                [one] => write!(f, "the environment variable {one}"),
                names => write!(f, "the environment variables {}", names.join(" and ")),
            },
            CredentialSource::PypircSection { path, section } => {
                write!(f, "the [{section}] section of {}", path.display())
            }
            CredentialSource::NpmrcKey {
                path,
                key,
                variables,
            } => {
                write!(f, "`{key}` in {}", path.display())?;
                if !variables.is_empty() {
                    let names: Vec<String> = variables
                        .iter()
                        .map(|name| format!("${{{name}}}"))
                        .collect();
                    write!(f, " (set from {})", names.join(", "))?;
                }
                Ok(())
            }
            CredentialSource::DockerAuths { path, key } => {
                write!(f, "the auths entry `{key}` of {}", path.display())
            }
            CredentialSource::CredentialHelper { program, path } => {
                write!(
                    f,
                    "the credential helper {program} (configured in {})",
                    path.display()
                )
            }
            CredentialSource::CargoCredentials { path, section } => {
                write!(f, "[{section}] in {}", path.display())
            }
            CredentialSource::TrustedPublishing { id_token } => {
                write!(f, "Trusted Publishing (a token minted from {id_token})")
            }
        }
    }
}

/// Which credentials a client sent, for the hint of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentCredentials<'a> {
    /// None at all (anonymous).
    None,
    /// Credentials handed to the client directly, from no source it knows.
    Given,
    /// Credentials from this source.
    From(&'a CredentialSource),
}

impl<'a> SentCredentials<'a> {
    pub(crate) fn of(configured: bool, source: Option<&'a CredentialSource>) -> Self {
        match (configured, source) {
            (false, _) => SentCredentials::None,
            (true, None) => SentCredentials::Given,
            (true, Some(source)) => SentCredentials::From(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_names_itself() {
        let check = |source: CredentialSource, expected: &str| {
            assert_eq!(source.to_string(), expected);
        };
        check(
            CredentialSource::variables(["CASTOFF_PYPI_TOKEN"]),
            "the environment variable CASTOFF_PYPI_TOKEN",
        );
        check(
            CredentialSource::variables(["TWINE_USERNAME", "TWINE_PASSWORD"]),
            "the environment variables TWINE_USERNAME and TWINE_PASSWORD",
        );
        check(
            CredentialSource::PypircSection {
                path: "/home/u/.pypirc".into(),
                section: "private".into(),
            },
            "the [private] section of /home/u/.pypirc",
        );
        check(
            CredentialSource::NpmrcKey {
                path: "/w/.npmrc".into(),
                key: "//127.0.0.1:4873/:_authToken".into(),
                variables: vec!["NPM_TOKEN".into()],
            },
            "`//127.0.0.1:4873/:_authToken` in /w/.npmrc (set from ${NPM_TOKEN})",
        );
        check(
            CredentialSource::DockerAuths {
                path: "/home/u/.docker/config.json".into(),
                key: "ghcr.io".into(),
            },
            "the auths entry `ghcr.io` of /home/u/.docker/config.json",
        );
        check(
            CredentialSource::CredentialHelper {
                program: "docker-credential-pass".into(),
                path: "/home/u/.docker/config.json".into(),
            },
            "the credential helper docker-credential-pass (configured in /home/u/.docker/config.json)",
        );
        check(
            CredentialSource::TrustedPublishing {
                id_token: "the GitHub Actions OIDC token".into(),
            },
            "Trusted Publishing (a token minted from the GitHub Actions OIDC token)",
        );
    }
}
