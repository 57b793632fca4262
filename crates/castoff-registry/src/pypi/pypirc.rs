//! `.pypirc` (twine's INI file): `[distutils] index-servers` and one section per repository
//! with `repository`, `username`, `password`. A pure function over the text.

use std::collections::BTreeMap;

use crate::secret::Secret;

/// A parsed `.pypirc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pypirc {
    /// `[distutils] index-servers`, in order.
    pub index_servers: Vec<String>,
    /// Every section except `[distutils]`, by name.
    pub repositories: BTreeMap<String, PypircRepository>,
}

/// One repository section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PypircRepository {
    pub repository: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl Pypirc {
    /// Parses INI text: `[section]`, `key = value` or `key: value`, indented continuation
    /// lines (how `index-servers` lists several names), `#` and `;` comments.
    pub fn parse(text: &str) -> Result<Pypirc, String> {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut section: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if line.starts_with([' ', '\t'])
                && let (Some(section), Some(key)) = (&section, &last_key)
            {
                let value = sections
                    .entry(section.clone())
                    .or_default()
                    .entry(key.clone())
                    .or_default();
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                section = Some(name.trim().to_owned());
                sections.entry(name.trim().to_owned()).or_default();
                last_key = None;
                continue;
            }
            let Some(at) = trimmed.find(['=', ':']) else {
                return Err(format!("line {}: expected `key = value`", number + 1));
            };
            let Some(current) = &section else {
                return Err(format!(
                    "line {}: `{}` is outside any [section]",
                    number + 1,
                    trimmed[..at].trim()
                ));
            };
            let key = trimmed[..at].trim().to_ascii_lowercase();
            let value = trimmed[at + 1..].trim().to_owned();
            sections
                .entry(current.clone())
                .or_default()
                .insert(key.clone(), value);
            last_key = Some(key);
        }
        let index_servers = sections
            .get("distutils")
            .and_then(|distutils| distutils.get("index-servers"))
            .map(|servers| servers.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let repositories = sections
            .into_iter()
            .filter(|(name, _)| name != "distutils")
            .map(|(name, mut keys)| {
                let repository = PypircRepository {
                    repository: keys.remove("repository").filter(|v| !v.is_empty()),
                    username: keys.remove("username").filter(|v| !v.is_empty()),
                    password: keys
                        .remove("password")
                        .filter(|v| !v.is_empty())
                        .map(Secret::new),
                };
                (name, repository)
            })
            .collect();
        Ok(Pypirc {
            index_servers,
            repositories,
        })
    }

    /// The named repository with twine's defaults: `pypi` and `testpypi` know their upload
    /// URLs when the section does not say.
    pub fn repository(&self, name: &str) -> Option<PypircRepository> {
        let mut repository = self.repositories.get(name).cloned()?;
        if repository.repository.is_none() {
            repository.repository = match name {
                "pypi" => Some(super::PYPI_UPLOAD_URL.to_owned()),
                "testpypi" => Some(super::TESTPYPI_UPLOAD_URL.to_owned()),
                _ => None,
            };
        }
        Some(repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twine_style_file() {
        let text = "[distutils]\nindex-servers =\n    pypi\n    private\n\n[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n\n# a comment\n[private]\nrepository: https://pypi.example.com/legacy/\nusername = ci\npassword = s3cret\n";
        let pypirc = Pypirc::parse(text).unwrap();
        assert_eq!(pypirc.index_servers, vec!["pypi", "private"]);
        let pypi = pypirc.repository("pypi").unwrap();
        assert_eq!(
            pypi.repository.as_deref(),
            Some("https://upload.pypi.org/legacy/")
        );
        assert_eq!(
            pypi.password.as_ref().map(Secret::expose),
            Some("pypi-AgEIcHlwaS5vcmc")
        );
        let private = pypirc.repository("private").unwrap();
        assert_eq!(
            private.repository.as_deref(),
            Some("https://pypi.example.com/legacy/")
        );
        assert_eq!(private.username.as_deref(), Some("ci"));
        assert!(pypirc.repository("missing").is_none());
        let debug = format!("{pypirc:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("pypi-AgE"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            Pypirc::parse("username = x\n").unwrap_err(),
            "line 1: `username` is outside any [section]"
        );
        assert_eq!(
            Pypirc::parse("[a]\njunk\n").unwrap_err(),
            "line 2: expected `key = value`"
        );
    }
}
