//! Where a Cargo registry is and which token it takes, by Cargo's own conventions: the index
//! from `CARGO_REGISTRIES_<NAME>_INDEX` or `[registries.<name>] index` in Cargo's
//! configuration files (the directory's `.cargo/config.toml` and its ancestors', then
//! `$CARGO_HOME/config.toml`), crates.io's sparse index by default; the token from
//! `CARGO_REGISTRY_TOKEN` (crates.io) or `CARGO_REGISTRIES_<NAME>_TOKEN`, else
//! `$CARGO_HOME/credentials.toml` (`[registry] token`, `[registries.<name>] token`).
//! Every file is read up to a bound; a file that is not TOML is an error naming it.

use std::path::{Path, PathBuf};

use crate::env::{self, Environment};
use crate::error::RegistryError;
use crate::secret::Secret;
use crate::source::CredentialSource;

/// crates.io's sparse index.
pub const CRATES_IO_INDEX: &str = "sparse+https://index.crates.io/";
/// crates.io's git index URL, which Cargo names in a dependency from crates.io published to
/// another registry.
pub const CRATES_IO_GIT_INDEX: &str = "https://github.com/rust-lang/crates.io-index";
/// Cargo's name for crates.io.
pub const CRATES_IO: &str = "crates-io";

/// The largest Cargo configuration or credentials file read.
const CONFIG_LIMIT: u64 = 1024 * 1024;

/// `CARGO_REGISTRIES_<NAME>_<KEY>`: the name upper-cased, `-` as `_` (Cargo's rule).
pub fn registry_variable(name: &str, key: &str) -> String {
    format!(
        "CARGO_REGISTRIES_{}_{key}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home(environment: &dyn Environment) -> Option<PathBuf> {
    environment
        .var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            environment
                .var(env::HOME)
                .map(|home| Path::new(&home).join(".cargo"))
        })
}

/// Reads a TOML file of Cargo's (`config.toml`, `credentials.toml`, or the same names without
/// the extension); `None` when there is none.
fn read_toml(path: &Path) -> Result<Option<toml::Table>, RegistryError> {
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |message: String| RegistryError::Config {
        what: format!("Cargo configuration {}", path.display()),
        message,
        hint: "fix the file (Cargo reads it too: `cargo config get` shows the problem)".to_owned(),
    };
    let bytes = castoff_archive::foreign::read_regular(path, CONFIG_LIMIT)
        .map_err(|error| bad(format!("cannot read it: {error}")))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8".to_owned()))?;
    text.parse::<toml::Table>()
        .map(Some)
        .map_err(|error| bad(format!("it is not TOML: {}", error.message())))
}

/// The first of `dir/name.toml`, `dir/name` that exists.
fn cargo_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.toml")), dir.join(name)]
        .into_iter()
        .find(|path| path.is_file())
}

/// The index URL of the registry `name` (with its `sparse+` prefix) and where it was found,
/// looking from `cwd` as Cargo does.
pub fn index_url(
    environment: &dyn Environment,
    cwd: &Path,
    name: &str,
) -> Result<(String, String), RegistryError> {
    // Cargo allows no other index for crates.io (only source replacement, for downloads).
    if name == CRATES_IO {
        return Ok((CRATES_IO_INDEX.to_owned(), "crates.io's index".to_owned()));
    }
    let variable = registry_variable(name, "INDEX");
    if let Some(url) = environment.var(&variable) {
        return Ok((url, variable));
    }
    let mut dirs: Vec<PathBuf> = cwd.ancestors().map(|dir| dir.join(".cargo")).collect();
    if let Some(home) = cargo_home(environment)
        && !dirs.contains(&home)
    {
        dirs.push(home);
    }
    for dir in dirs {
        let Some(path) = cargo_file(&dir, "config") else {
            continue;
        };
        let Some(table) = read_toml(&path)? else {
            continue;
        };
        if let Some(index) = table
            .get("registries")
            .and_then(|r| r.get(name))
            .and_then(|r| r.get("index"))
            .and_then(|i| i.as_str())
        {
            return Ok((
                index.to_owned(),
                format!("[registries.{name}] in {}", path.display()),
            ));
        }
    }
    Err(RegistryError::Config {
        what: format!("Cargo registry `{name}`"),
        message: "no Cargo configuration names its index".to_owned(),
        hint: format!(
            "add `[registries.{name}] index = \"sparse+https://…/\"` to .cargo/config.toml (or $CARGO_HOME/config.toml), or set {variable}"
        ),
    })
}

/// The registry's token and where it came from; `None` when none is configured.
pub fn token(
    environment: &dyn Environment,
    name: &str,
) -> Result<Option<(Secret, CredentialSource)>, RegistryError> {
    let variable = if name == CRATES_IO {
        "CARGO_REGISTRY_TOKEN".to_owned()
    } else {
        registry_variable(name, "TOKEN")
    };
    if let Some(token) = environment.var(&variable) {
        return Ok(Some((
            Secret::new(token),
            CredentialSource::variables([variable.as_str()]),
        )));
    }
    let Some(path) = cargo_home(environment).and_then(|home| cargo_file(&home, "credentials"))
    else {
        return Ok(None);
    };
    let Some(table) = read_toml(&path)? else {
        return Ok(None);
    };
    let (section, entry) = if name == CRATES_IO {
        ("registry".to_owned(), table.get("registry"))
    } else {
        (
            format!("registries.{name}"),
            table.get("registries").and_then(|r| r.get(name)),
        )
    };
    Ok(entry
        .and_then(|entry| entry.get("token"))
        .and_then(|token| token.as_str())
        .map(|token| {
            (
                Secret::new(token.to_owned()),
                CredentialSource::CargoCredentials { path, section },
            )
        }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn variables_follow_cargo_s_spelling() {
        assert_eq!(
            registry_variable("my-registry", "TOKEN"),
            "CARGO_REGISTRIES_MY_REGISTRY_TOKEN"
        );
    }

    #[test]
    fn index_and_token_from_files_and_variables() {
        let dir = std::env::temp_dir().join(format!("castoff-cargo-config-{}", std::process::id()));
        let home = dir.join("home");
        let work = dir.join("work/sub");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(work.join("../.cargo")).unwrap();
        std::fs::write(
            dir.join("work/.cargo/config.toml"),
            "[registries.acme]\nindex = \"sparse+https://acme.example/index/\"\n",
        )
        .unwrap();
        std::fs::write(
            home.join("credentials.toml"),
            "[registry]\ntoken = \"io-secret\"\n[registries.acme]\ntoken = \"acme-secret\"\n",
        )
        .unwrap();
        let mut environment = BTreeMap::new();
        environment.insert("CARGO_HOME".to_owned(), home.display().to_string());
        let (index, from) = index_url(&environment, &work, "acme").unwrap();
        assert_eq!(index, "sparse+https://acme.example/index/");
        assert!(from.contains("work/.cargo/config.toml"), "{from}");
        assert_eq!(
            index_url(&environment, &work, CRATES_IO).unwrap().0,
            CRATES_IO_INDEX
        );
        let error = index_url(&environment, &work, "other")
            .unwrap_err()
            .to_string();
        assert!(error.contains("other"), "{error}");
        let (secret, source) = token(&environment, "acme").unwrap().unwrap();
        assert_eq!(secret.expose(), "acme-secret");
        assert_eq!(
            source.to_string(),
            format!(
                "[registries.acme] in {}",
                home.join("credentials.toml").display()
            )
        );
        assert_eq!(
            token(&environment, CRATES_IO).unwrap().unwrap().0.expose(),
            "io-secret"
        );
        environment.insert(
            "CARGO_REGISTRIES_ACME_TOKEN".to_owned(),
            "from-env".to_owned(),
        );
        environment.insert(
            "CARGO_REGISTRIES_ACME_INDEX".to_owned(),
            "sparse+http://127.0.0.1:1/".to_owned(),
        );
        let (secret, source) = token(&environment, "acme").unwrap().unwrap();
        assert_eq!(secret.expose(), "from-env");
        assert_eq!(
            source.to_string(),
            "the environment variable CARGO_REGISTRIES_ACME_TOKEN"
        );
        assert_eq!(
            index_url(&environment, &work, "acme").unwrap().0,
            "sparse+http://127.0.0.1:1/"
        );
        assert!(token(&environment, "nobody").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
