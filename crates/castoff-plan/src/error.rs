//! Errors of planning: each names the file, the key and the value at fault, and a fix.

use std::fmt;
use std::path::PathBuf;

/// One problem with the configuration or the workspace. Its message is the problem; the
/// hint is a field of its own ([`ConfigError::hint`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: `{key}`: {problem}", file = file.display())]
pub struct ConfigError {
    /// The `Cargo.toml` holding the offending key.
    pub file: PathBuf,
    /// Full TOML path of the key, e.g. `package.metadata.castoff.python.name`.
    pub key: String,
    /// What is wrong, quoting the value.
    pub problem: String,
    /// What to do about it.
    pub hint: String,
}

/// Everything wrong with a workspace's release configuration, reported at once so a user
/// fixes all of it in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub errors: Vec<ConfigError>,
}

impl PlanError {
    /// What to do, when there is one problem; with several, each item of the message carries
    /// its own hint.
    pub fn hint(&self) -> Option<&str> {
        match self.errors.as_slice() {
            [single] => Some(&single.hint),
            _ => None,
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [single] => write!(f, "invalid release configuration: {single}"),
            errors => {
                write!(
                    f,
                    "invalid release configuration ({} problems):",
                    errors.len()
                )?;
                for error in errors {
                    write!(
                        f,
                        "\n- {}\n  hint: {}",
                        error.to_string().replace('\n', "\n  "),
                        error.hint.replace('\n', "\n  ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PlanError {}
