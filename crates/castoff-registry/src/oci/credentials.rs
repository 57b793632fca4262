//! Registry credentials the way Docker and podman keep them: `config.json` / `auth.json`
//! (`auths` with `auth`, `username` + `password` or `identitytoken`; `credHelpers`;
//! `credsStore`), credential helpers (`docker-credential-<name> get`), explicit variables, and
//! GHCR's `GITHUB_TOKEN` in GitHub Actions.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use super::{OciCredentials, OciRepository};
use crate::env::{self, Environment};
use crate::error::RegistryError;
use crate::secret::Secret;
use crate::source::CredentialSource;

/// A parsed Docker `config.json` (or podman `auth.json`). `Debug` shows no secrets.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    pub source: PathBuf,
    auths: BTreeMap<String, AuthEntry>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct AuthEntry {
    /// The key as the file writes it (`https://index.docker.io/v1/`), for messages.
    key: String,
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    identity_token: Option<Secret>,
}

impl DockerConfig {
    pub fn parse(text: &str, source: &Path) -> Result<DockerConfig, RegistryError> {
        let fail = |message: String| {
            RegistryError::Credentials {
            source_name: source.display().to_string(),
            message,
            hint: "fix the file (it is JSON written by `docker login`), or point DOCKER_CONFIG elsewhere".to_owned(),
        }
        };
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|error| fail(format!("not JSON: {error}")))?;
        let text_field = |value: &serde_json::Value, name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut auths = BTreeMap::new();
        if let Some(map) = json.get("auths").and_then(|v| v.as_object()) {
            for (key, entry) in map {
                auths.insert(
                    normalize_key(key),
                    AuthEntry {
                        key: key.clone(),
                        auth: text_field(entry, "auth").map(Secret::new),
                        username: text_field(entry, "username"),
                        password: text_field(entry, "password").map(Secret::new),
                        identity_token: text_field(entry, "identitytoken").map(Secret::new),
                    },
                );
            }
        }
        let cred_helpers = json
            .get("credHelpers")
            .and_then(|v| v.as_object())
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((normalize_key(k), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(DockerConfig {
            source: source.to_owned(),
            auths,
            cred_helpers,
            creds_store: text_field(&json, "credsStore"),
        })
    }

    /// Credentials for a repository: `credHelpers[host]`, then `auths["host/repo"]`, then
    /// `auths[host]` (an empty entry means "ask credsStore"), then `credsStore`. `None` when
    /// the file knows nothing about the host.
    pub fn credentials_for(
        &self,
        repository: &OciRepository,
    ) -> Result<Option<OciCredentials>, RegistryError> {
        Ok(self
            .credentials_with_source(repository)?
            .map(|(credentials, _)| credentials))
    }

    /// [`DockerConfig::credentials_for`] and the entry or helper they came from.
    pub fn credentials_with_source(
        &self,
        repository: &OciRepository,
    ) -> Result<Option<(OciCredentials, CredentialSource)>, RegistryError> {
        let host = registry_key(&repository.host());
        let helper =
            |name: &str| -> Result<Option<(OciCredentials, CredentialSource)>, RegistryError> {
                Ok(run_helper(name, &host, &self.source)?.map(|credentials| {
                    (
                        credentials,
                        CredentialSource::CredentialHelper {
                            program: format!("docker-credential-{name}"),
                            path: self.source.clone(),
                        },
                    )
                }))
            };
        if let Some(name) = self.cred_helpers.get(&host) {
            return helper(name);
        }
        let keys = [format!("{host}/{}", repository.name), host.clone()];
        for key in &keys {
            let Some(entry) = self.auths.get(key) else {
                continue;
            };
            let source = CredentialSource::DockerAuths {
                path: self.source.clone(),
                key: entry.key.clone(),
            };
            if let Some(token) = &entry.identity_token {
                return Ok(Some((OciCredentials::IdentityToken(token.clone()), source)));
            }
            if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                return Ok(Some((
                    OciCredentials::Basic {
                        username: username.clone(),
                        password: password.clone(),
                    },
                    source,
                )));
            }
            if let Some(auth) = &entry.auth {
                return decode_auth(auth, &self.source)
                    .map(|credentials| Some((credentials, source)));
            }
            // `{}`: stored by a credsStore.
            if let Some(store) = &self.creds_store {
                return helper(store);
            }
        }
        match &self.creds_store {
            Some(store) => helper(store),
            None => Ok(None),
        }
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; scheme and trailing `/` dropped otherwise.
fn normalize_key(key: &str) -> String {
    let key = key
        .split_once("://")
        .map_or(key, |(_, rest)| rest)
        .trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    registry_key(key)
}

fn registry_key(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

fn decode_auth(auth: &Secret, source: &Path) -> Result<OciCredentials, RegistryError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.expose().trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once(':')
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
        });
    match decoded {
        Some((username, password)) => Ok(OciCredentials::Basic {
            username,
            password: Secret::new(password),
        }),
        None => Err(RegistryError::Credentials {
            source_name: source.display().to_string(),
            message: "an `auth` entry is not base64 of `user:password`".to_owned(),
            hint: "log in again with `docker login`".to_owned(),
        }),
    }
}

/// `docker-credential-<helper> get` with the server on stdin → `{"Username","Secret"}`.
/// A helper that is not installed is an error (silently pushing anonymously would fail later
/// and less clearly); "credentials not found" is `None`.
fn run_helper(
    helper: &str,
    host: &str,
    source: &Path,
) -> Result<Option<OciCredentials>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |message: String, hint: &str| RegistryError::Credentials {
        source_name: format!("{} (credential helper {program})", source.display()),
        message,
        hint: hint.to_owned(),
    };
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            fail(
                format!("cannot run {program}: {error}"),
                "install the credential helper, or remove it from config.json",
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|error| fail(format!("{program} failed: {error}"), "check the helper"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        // The helper's own message, shortened; helpers do not print secrets on failure.
        return Err(fail(
            format!(
                "{program} get exited with {}: {}",
                output.status,
                crate::error::shorten(stderr.trim(), 300)
            ),
            "log in again with `docker login`",
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
        fail(
            format!("{program} printed something that is not JSON"),
            "check the helper",
        )
    })?;
    let username = json
        .get("Username")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let secret = json
        .get("Secret")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == "<token>" {
        OciCredentials::IdentityToken(Secret::new(secret))
    } else {
        OciCredentials::Basic {
            username,
            password: Secret::new(secret),
        }
    }))
}

/// Credentials for a repository and where they came from (`None` for anonymous), first
/// found wins:
/// 1. `CASTOFF_OCI_USERNAME_<HOST>` + `CASTOFF_OCI_PASSWORD_<HOST>` for the repository's host
///    ([`env::host_qualified`]);
/// 2. `CASTOFF_OCI_USERNAME` + `CASTOFF_OCI_PASSWORD`, only when the repository is on
///    `push_host`, the release's own push registry: never for a base image's registry or a
///    mirror elsewhere, so a push token reaches only the host it is for;
/// 3. `REGISTRY_AUTH_FILE` (podman/skopeo);
/// 4. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`;
/// 5. podman's `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`;
/// 6. in GitHub Actions, `ghcr.io` with `GITHUB_ACTOR` / `GITHUB_TOKEN`;
/// 7. anonymous.
///
/// Every source but 2 names its host itself (files and helpers are keyed by host).
pub fn resolve_credentials(
    environment: &dyn Environment,
    repository: &OciRepository,
    push_host: Option<&str>,
) -> Result<(OciCredentials, Option<CredentialSource>), RegistryError> {
    let host = registry_key(&repository.host());
    let user_name = env::host_qualified(env::CASTOFF_OCI_USERNAME, &host);
    let password_name = env::host_qualified(env::CASTOFF_OCI_PASSWORD, &host);
    if let (Some(username), Some(password)) =
        (environment.var(&user_name), environment.var(&password_name))
    {
        return Ok((
            OciCredentials::Basic {
                username,
                password: Secret::new(password),
            },
            Some(CredentialSource::Variables(vec![user_name, password_name])),
        ));
    }
    if push_host.is_some_and(|push_host| same_registry(push_host, &host))
        && let (Some(username), Some(password)) = (
            environment.var(env::CASTOFF_OCI_USERNAME),
            environment.var(env::CASTOFF_OCI_PASSWORD),
        )
    {
        return Ok((
            OciCredentials::Basic {
                username,
                password: Secret::new(password),
            },
            Some(CredentialSource::variables([
                env::CASTOFF_OCI_USERNAME,
                env::CASTOFF_OCI_PASSWORD,
            ])),
        ));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = environment.var(env::REGISTRY_AUTH_FILE) {
        files.push(PathBuf::from(file));
    }
    match environment.var(env::DOCKER_CONFIG) {
        Some(dir) => files.push(Path::new(&dir).join("config.json")),
        None => {
            if let Some(home) = environment.var(env::HOME) {
                files.push(Path::new(&home).join(".docker/config.json"));
            }
        }
    }
    if let Some(dir) = environment.var(env::XDG_RUNTIME_DIR) {
        files.push(Path::new(&dir).join("containers/auth.json"));
    }
    if let Some(dir) = environment.var(env::XDG_CONFIG_HOME) {
        files.push(Path::new(&dir).join("containers/auth.json"));
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some((credentials, source)) =
            DockerConfig::parse(&text, &file)?.credentials_with_source(repository)?
        {
            return Ok((credentials, Some(source)));
        }
    }
    if repository.host() == "ghcr.io"
        && environment.var(env::GITHUB_ACTIONS).as_deref() == Some("true")
        && let Some(token) = environment.var(env::GITHUB_TOKEN)
    {
        let actor = environment.var(env::GITHUB_ACTOR);
        let names = match actor {
            Some(_) => vec![env::GITHUB_ACTOR, env::GITHUB_TOKEN],
            None => vec![env::GITHUB_TOKEN],
        };
        return Ok((
            OciCredentials::Basic {
                username: actor.unwrap_or_else(|| "github-actions".to_owned()),
                password: Secret::new(token),
            },
            Some(CredentialSource::variables(names)),
        ));
    }
    Ok((OciCredentials::Anonymous, None))
}

/// Whether two `host[:port]` spellings name one registry (Docker Hub has several names).
fn same_registry(a: &str, b: &str) -> bool {
    registry_key(a) == registry_key(b)
}

/// Why the explicit variables were not used for `repository`, for a "no credentials" hint;
/// `None` when they are not set or were used.
pub fn unbound_variables_note(
    environment: &dyn Environment,
    repository: &OciRepository,
    push_host: Option<&str>,
) -> Option<String> {
    let host = registry_key(&repository.host());
    let set = environment.var(env::CASTOFF_OCI_USERNAME).is_some()
        || environment.var(env::CASTOFF_OCI_PASSWORD).is_some();
    if !set || push_host.is_some_and(|push_host| same_registry(push_host, &host)) {
        return None;
    }
    Some(format!(
        "{} and {} are for the push registry{} only and were not sent to {host}; give this registry its own with {} and {}, or `docker login {host}`",
        env::CASTOFF_OCI_USERNAME,
        env::CASTOFF_OCI_PASSWORD,
        push_host.map_or_else(String::new, |h| format!(" ({h})")),
        env::host_qualified(env::CASTOFF_OCI_USERNAME, &host),
        env::host_qualified(env::CASTOFF_OCI_PASSWORD, &host),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(reference: &str) -> OciRepository {
        OciRepository::parse(reference).unwrap()
    }

    #[test]
    fn auths_entries_in_every_form() {
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpodWItc2VjcmV0"},
            "ghcr.io/acme/special": {"username": "bot", "password": "repo-secret"},
            "ghcr.io": {"username": "acme", "password": "host-secret"},
            "registry.example:5000": {"identitytoken": "refresh-secret"}
        }}"#;
        let config = DockerConfig::parse(text, Path::new("config.json")).unwrap();
        let creds = |reference: &str| config.credentials_for(&repo(reference)).unwrap();
        assert_eq!(
            creds("docker.io/acme/tool"),
            Some(OciCredentials::Basic {
                username: "user".into(),
                password: Secret::new("hub-secret")
            })
        );
        assert_eq!(
            creds("ghcr.io/acme/special"),
            Some(OciCredentials::Basic {
                username: "bot".into(),
                password: Secret::new("repo-secret")
            })
        );
        assert_eq!(
            creds("ghcr.io/acme/other"),
            Some(OciCredentials::Basic {
                username: "acme".into(),
                password: Secret::new("host-secret")
            })
        );
        assert_eq!(
            creds("registry.example:5000/x"),
            Some(OciCredentials::IdentityToken(Secret::new("refresh-secret")))
        );
        assert_eq!(creds("quay.io/x/y"), None);
        let debug = format!("{config:?} {:?}", creds("ghcr.io/acme/other"));
        assert!(
            !debug.contains("secret") && !debug.contains("dXNlcjpodWIt"),
            "{debug}"
        );
    }

    #[test]
    fn a_missing_helper_is_an_error() {
        let text = r#"{"credHelpers": {"ghcr.io": "castoff-test-no-such-helper"}}"#;
        let config = DockerConfig::parse(text, Path::new("/home/u/.docker/config.json")).unwrap();
        let error = config
            .credentials_for(&repo("ghcr.io/acme/tool"))
            .unwrap_err();
        let error = format!("{error}\nhint: {}", error.hint().unwrap_or_default());
        assert!(
            error.contains("cannot run docker-credential-castoff-test-no-such-helper"),
            "{error}"
        );
        assert!(
            error.contains("hint: install the credential helper"),
            "{error}"
        );
    }

    #[test]
    fn resolution_order() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ghcr = repo("ghcr.io/acme/tool");
        let explicit = env(&[
            ("CASTOFF_OCI_USERNAME", "me"),
            ("CASTOFF_OCI_PASSWORD", "pw"),
            ("HOME", "/nonexistent"),
        ]);
        assert_eq!(
            resolve_credentials(&explicit, &ghcr, Some("ghcr.io"))
                .unwrap()
                .0,
            OciCredentials::Basic {
                username: "me".into(),
                password: Secret::new("pw")
            }
        );
        // The bare pair belongs to the push registry: a base image's or mirror's registry
        // elsewhere never receives it, and the note says why.
        let quay = repo("quay.io/base/image");
        assert_eq!(
            resolve_credentials(&explicit, &quay, Some("ghcr.io"))
                .unwrap()
                .0,
            OciCredentials::Anonymous
        );
        assert_eq!(
            resolve_credentials(&explicit, &quay, None).unwrap().0,
            OciCredentials::Anonymous
        );
        expect_test::expect![[r#"
            CASTOFF_OCI_USERNAME and CASTOFF_OCI_PASSWORD are for the push registry (ghcr.io) only and were not sent to quay.io; give this registry its own with CASTOFF_OCI_USERNAME_QUAY_IO and CASTOFF_OCI_PASSWORD_QUAY_IO, or `docker login quay.io`"#]]
        .assert_eq(&unbound_variables_note(&explicit, &quay, Some("ghcr.io")).unwrap());
        assert_eq!(
            unbound_variables_note(&explicit, &ghcr, Some("ghcr.io")),
            None
        );
        // A host's own pair, for any registry (Docker Hub under its short name).
        let qualified = env(&[
            ("CASTOFF_OCI_USERNAME", "me"),
            ("CASTOFF_OCI_PASSWORD", "pw"),
            ("CASTOFF_OCI_USERNAME_QUAY_IO", "quay-user"),
            ("CASTOFF_OCI_PASSWORD_QUAY_IO", "quay-pw"),
            ("CASTOFF_OCI_USERNAME_DOCKER_IO", "hub-user"),
            ("CASTOFF_OCI_PASSWORD_DOCKER_IO", "hub-pw"),
            ("HOME", "/nonexistent"),
        ]);
        assert_eq!(
            resolve_credentials(&qualified, &quay, Some("ghcr.io"))
                .unwrap()
                .0,
            OciCredentials::Basic {
                username: "quay-user".into(),
                password: Secret::new("quay-pw")
            }
        );
        assert_eq!(
            resolve_credentials(&qualified, &repo("docker.io/library/alpine"), None)
                .unwrap()
                .0,
            OciCredentials::Basic {
                username: "hub-user".into(),
                password: Secret::new("hub-pw")
            }
        );
        let actions = env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_TOKEN", "ghs_x"),
            ("GITHUB_ACTOR", "octocat"),
            ("HOME", "/nonexistent"),
        ]);
        assert_eq!(
            resolve_credentials(&actions, &ghcr, None).unwrap().0,
            OciCredentials::Basic {
                username: "octocat".into(),
                password: Secret::new("ghs_x")
            }
        );
        assert_eq!(
            resolve_credentials(&actions, &repo("quay.io/a/b"), None)
                .unwrap()
                .0,
            OciCredentials::Anonymous
        );
    }
}
