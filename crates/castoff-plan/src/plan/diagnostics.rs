//! Configuration problems as `ConfigError`s: serde's complaints about a metadata table turned
//! into the full key with a "did you mean" suggestion, and the refusals shared by channels
//! (versions a registry cannot spell, upload limits that are not sizes).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::version;

/// Deserializes the `castoff` entry of a metadata table, turning serde's complaint into an
/// error that names the file and the full key.
pub(super) fn parse_table<T: DeserializeOwned>(
    metadata: &serde_json::Value,
    file: &Path,
    table: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = match metadata.get("castoff") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(value) => value.clone(),
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(config) => Some(config),
        Err(error) => {
            let path = error.path().to_string();
            let key = if path == "." {
                table.to_owned()
            } else {
                format!("{table}.{path}")
            };
            let inner = error.into_inner().to_string();
            let (key, problem, hint) = match unknown_field(&inner) {
                Some((field, expected)) => (
                    if key.ends_with(&format!(".{field}")) {
                        key
                    } else {
                        format!("{key}.{field}")
                    },
                    format!("unknown key `{field}`"),
                    match closest(&field, &expected) {
                        Some(close) => format!(
                            "did you mean `{close}`? known keys here: {}",
                            expected.join(", ")
                        ),
                        None => format!(
                            "known keys here: {}; see docs/configuration.md",
                            expected.join(", ")
                        ),
                    },
                ),
                None => (
                    key,
                    inner,
                    "see docs/configuration.md for the expected value".to_owned(),
                ),
            };
            errors.push(ConfigError {
                file: file.to_owned(),
                key,
                problem,
                hint,
            });
            None
        }
    }
}

/// Picks apart serde's "unknown field `x`, expected one of `a`, `b`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((field.to_owned(), expected))
}

/// The known key nearest to a misspelled one, if it is near enough to be a typo: within two
/// edits, or a third of the candidate's length for long keys; on a tie, the first listed.
///
/// Plain Levenshtein distance (each swap of two letters counts twice), the measure the
/// suggestions have always used: a measure that counts swaps once would pick another key
/// on some ties and widen the threshold, changing the hints users and snapshots see.
fn closest(field: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|candidate| (strsim::levenshtein(field, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

pub(super) fn version_error(
    error: &mut impl FnMut(String, String, String),
    refusal: version::VersionError,
) {
    error(
        "package.version".to_owned(),
        format!(
            "`{}` cannot be published to {}: {}",
            refusal.version, refusal.registry, refusal.reason
        ),
        refusal.hint,
    );
}

/// `<channel>.upload-limit` in bytes, or an error naming the key.
pub(super) fn upload_limit(
    channel: &str,
    value: &Option<String>,
    error: &mut impl FnMut(String, String, String),
) -> Option<u64> {
    let text = value.as_deref()?;
    let bytes = crate::config::parse_size(text);
    if bytes.is_none() {
        error(
            format!("package.metadata.castoff.{channel}.upload-limit"),
            format!("`{text}` is not a size above zero"),
            "write a whole number with a unit, such as \"300MiB\" or \"1GiB\"".to_owned(),
        );
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let known: Vec<String> = [
            "name",
            "module",
            "requires",
            "requires-python",
            "classifiers",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(closest("nmae", &known).as_deref(), Some("name"));
        assert_eq!(closest("require", &known).as_deref(), Some("requires"));
        assert_eq!(closest("zzzzzz", &known), None);
        assert_eq!(
            closest("requires_python", &known).as_deref(),
            Some("requires-python")
        );
        // Too far from every key for a typo, even though it is a prefix of one.
        assert_eq!(closest("req", &known), None);
        // A tie goes to the key listed first (serde lists them in declaration order).
        let tied = ["abc", "abd"].map(str::to_owned).to_vec();
        assert_eq!(closest("abx", &tied).as_deref(), Some("abc"));
    }
}
