//! `.npmrc`: `key=value` lines with `${VAR}` expansion; `registry=`, `@scope:registry=`, and
//! per-registry credentials under "nerf-darted" keys (`//host[:port]/path/:_authToken=`).
//! Pure functions over text; the project file is layered over the user file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use reqwest::Url;

use super::NpmCredentials;
use crate::env::Environment;
use crate::secret::Secret;
use crate::source::CredentialSource;

/// Settings from one or more `.npmrc` files. Values may be secrets: `Debug` shows only keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Npmrc {
    values: BTreeMap<String, String>,
    /// Where each key was set: the file (once known) and the variables its value names.
    origins: BTreeMap<String, Origin>,
}

/// Where one key of an `.npmrc` was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Origin {
    file: Option<PathBuf>,
    variables: Vec<String>,
}

impl std::fmt::Debug for Npmrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Npmrc")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Npmrc {
    /// Parses one file. `${NAME}` is replaced from `environment`; an unset variable is an
    /// error naming it (npm refuses such a file too, and publishing without the intended
    /// token would only fail later and less clearly).
    pub fn parse(text: &str, environment: &dyn Environment) -> Result<Npmrc, String> {
        let mut values = BTreeMap::new();
        let mut origins = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: expected `key=value`", number + 1));
            };
            let key = expand(key.trim(), environment).map_err(|name| {
                format!(
                    "line {}: environment variable {name} is not set",
                    number + 1
                )
            })?;
            let raw_value = value.trim().trim_matches('"');
            let value = expand(raw_value, environment).map_err(|name| {
                format!(
                    "line {}: environment variable {name} is not set",
                    number + 1
                )
            })?;
            origins.insert(
                key.clone(),
                Origin {
                    file: None,
                    variables: variables_in(raw_value),
                },
            );
            values.insert(key, value);
        }
        Ok(Npmrc { values, origins })
    }

    /// The settings, each recorded as read from `file` (named when a registry refuses a
    /// credential from it).
    pub fn read_from(self, file: &Path) -> Npmrc {
        let origins = self
            .origins
            .into_iter()
            .map(|(key, origin)| {
                let origin = Origin {
                    file: Some(file.to_owned()),
                    ..origin
                };
                (key, origin)
            })
            .collect();
        Npmrc { origins, ..self }
    }

    /// `self` (the project's file) over `user` (`~/.npmrc`): project keys win.
    pub fn layered_over(self, user: Npmrc) -> Npmrc {
        let mut values = user.values;
        values.extend(self.values);
        let mut origins = user.origins;
        origins.extend(self.origins);
        Npmrc { values, origins }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The registry for a package: `@scope:registry` for scoped names, else `registry`.
    pub fn registry_for(&self, package: &str) -> Option<&str> {
        if let Some(scope) = package
            .strip_prefix('@')
            .and_then(|rest| rest.split('/').next())
            && let Some(url) = self.get(&format!("@{scope}:registry"))
        {
            return Some(url);
        }
        self.get("registry")
    }

    /// Credentials for a registry URL: the longest `//host[:port]/path/` key that prefixes the
    /// registry's, with `_authToken`, `_auth`, or `username` + `_password` (base64).
    pub fn credentials_for(&self, registry: &Url) -> NpmCredentials {
        self.credentials_with_source(registry)
            .map_or(NpmCredentials::None, |(credentials, _)| credentials)
    }

    /// [`Npmrc::credentials_for`] and the key (and file) they were read from.
    pub fn credentials_with_source(
        &self,
        registry: &Url,
    ) -> Option<(NpmCredentials, CredentialSource)> {
        let source = |keys: &[&str]| {
            let origins: Vec<&Origin> = keys.iter().filter_map(|k| self.origins.get(*k)).collect();
            CredentialSource::NpmrcKey {
                path: origins
                    .iter()
                    .find_map(|origin| origin.file.clone())
                    .unwrap_or_else(|| PathBuf::from(".npmrc")),
                key: keys.last().copied().unwrap_or_default().to_owned(),
                variables: origins
                    .iter()
                    .flat_map(|origin| origin.variables.iter().cloned())
                    .collect(),
            }
        };
        let mut key = nerf_dart(registry);
        while key.len() > 2 {
            let token_key = format!("{key}:_authToken");
            if let Some(token) = self.get(&token_key) {
                return Some((
                    NpmCredentials::Token(Secret::new(token)),
                    source(&[&token_key]),
                ));
            }
            let auth_key = format!("{key}:_auth");
            if let Some(auth) = self.get(&auth_key) {
                return Some((
                    NpmCredentials::LegacyAuth(Secret::new(auth)),
                    source(&[&auth_key]),
                ));
            }
            let username_key = format!("{key}:username");
            let password_key = format!("{key}:_password");
            if let (Some(username), Some(password)) =
                (self.get(&username_key), self.get(&password_key))
            {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(password)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .unwrap_or_else(|| password.to_owned());
                return Some((
                    NpmCredentials::Basic {
                        username: username.to_owned(),
                        password: Secret::new(decoded),
                    },
                    source(&[&username_key, &password_key]),
                ));
            }
            // Drop the last path segment: `//host/a/b/` → `//host/a/` → `//host/`.
            let trimmed = key.trim_end_matches('/');
            key = match trimmed.rfind('/') {
                Some(at) if at > 1 => trimmed[..=at].to_owned(),
                _ => String::new(),
            };
        }
        None
    }
}

/// The names of the `${NAME}` references in a raw value.
fn variables_in(raw: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        names.push(rest[start + 2..start + end].to_owned());
        rest = &rest[start + end + 1..];
    }
    names
}

/// `https://host:port/path/` → `//host:port/path/` (npm's `toNerfDart`).
pub(crate) fn nerf_dart(url: &Url) -> String {
    let mut key = format!("//{}", url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        key.push_str(&format!(":{port}"));
    }
    let path = url.path();
    key.push_str(path);
    if !path.ends_with('/') {
        key.push('/');
    }
    key
}

/// Replaces `${NAME}`; `Err(NAME)` for an unset variable.
fn expand(text: &str, environment: &dyn Environment) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + end];
        out.push_str(&rest[..start]);
        out.push_str(&environment.var(name).ok_or_else(|| name.to_owned())?);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn registries_and_tokens() {
        let text = "# user file\nregistry=https://registry.npmjs.org/\n@acme:registry=https://npm.pkg.github.com/\n//npm.pkg.github.com/:_authToken=${GH_TOKEN}\n//registry.npmjs.org/:_authToken=npm_secret\n//127.0.0.1:4873/:username=ci\n//127.0.0.1:4873/:_password=cGFzcw==\n";
        let npmrc = Npmrc::parse(text, &env(&[("GH_TOKEN", "ghp_secret")])).unwrap();
        assert_eq!(
            npmrc.registry_for("@acme/tool"),
            Some("https://npm.pkg.github.com/")
        );
        assert_eq!(
            npmrc.registry_for("@other/tool"),
            Some("https://registry.npmjs.org/")
        );
        assert_eq!(
            npmrc.registry_for("tool"),
            Some("https://registry.npmjs.org/")
        );
        let creds = |url: &str| npmrc.credentials_for(&Url::parse(url).unwrap());
        assert_eq!(
            creds("https://npm.pkg.github.com/"),
            NpmCredentials::Token(Secret::new("ghp_secret"))
        );
        assert_eq!(
            creds("https://npm.pkg.github.com/acme/"),
            NpmCredentials::Token(Secret::new("ghp_secret"))
        );
        assert_eq!(
            creds("https://registry.npmjs.org/"),
            NpmCredentials::Token(Secret::new("npm_secret"))
        );
        assert_eq!(
            creds("http://127.0.0.1:4873/"),
            NpmCredentials::Basic {
                username: "ci".into(),
                password: Secret::new("pass")
            }
        );
        assert_eq!(creds("http://127.0.0.1:9999/"), NpmCredentials::None);
        let debug = format!("{npmrc:?} {:?}", creds("https://registry.npmjs.org/"));
        assert!(
            !debug.contains("secret") && !debug.contains("cGFzcw"),
            "{debug}"
        );
    }

    #[test]
    fn project_file_wins_and_unset_variables_are_errors() {
        let user = Npmrc::parse(
            "registry=https://user.example/\n//user.example/:_auth=dTpw\n",
            &env(&[]),
        )
        .unwrap();
        let project = Npmrc::parse("registry=https://project.example/\n", &env(&[])).unwrap();
        let merged = project.layered_over(user);
        assert_eq!(merged.get("registry"), Some("https://project.example/"));
        assert_eq!(
            merged.credentials_for(&Url::parse("https://user.example/").unwrap()),
            NpmCredentials::LegacyAuth(Secret::new("dTpw"))
        );
        assert_eq!(
            Npmrc::parse("//r.example/:_authToken=${NODE_AUTH_TOKEN}\n", &env(&[])).unwrap_err(),
            "line 1: environment variable NODE_AUTH_TOKEN is not set"
        );
    }
}
