//! Configuration problems as `ConfigError`s: serde's complaints about a metadata table turned
//! into the full key with a "did you mean" suggestion, and the refusals shared by channels
//! (versions a registry cannot spell, upload limits that are not sizes).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::version;

/// Deserializes the `castoff` entry of a metadata table, turning each of serde's complaints
/// into an error that names the file and the full key.
///
/// serde stops at the first problem; a user wants them all at once. So each problem is
/// reported and its entry taken out (an unknown key, or the key whose value is wrong: a list
/// as a whole, so the indexes of later problems stay true), and the rest is read again, until
/// it reads. What remains is returned, so the plan's own checks (names, versions) still run on
/// it and report their problems in the same round; `errors` makes the plan fail in the end.
pub(super) fn parse_table<T: DeserializeOwned>(
    metadata: &serde_json::Value,
    file: &Path,
    table: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut value = match metadata.get("castoff") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(value) => value.clone(),
    };
    // Each round takes one entry out of a finite table, so this ends; the bound is a guard.
    let mut reported: Vec<Vec<String>> = Vec::new();
    for _ in 0..256 {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(config) => return Some(config),
            Err(error) => error,
        };
        let mut segments: Vec<Segment> = error.path().iter().map(Segment::from).collect();
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let key = if path == "." {
            table.to_owned()
        } else {
            format!("{table}.{path}")
        };
        if let Some((field, expected)) = unknown_field(&inner) {
            if segments.last() != Some(&Segment::Key(field.clone())) {
                segments.push(Segment::Key(field.clone()));
            }
            let key = if key.ends_with(&format!(".{field}")) {
                key
            } else {
                format!("{key}.{field}")
            };
            let hint = match closest(&field, &expected) {
                Some(close) => format!(
                    "did you mean `{close}`? known keys here: {}",
                    expected.join(", ")
                ),
                None => format!(
                    "known keys here: {}; see docs/configuration.md",
                    expected.join(", ")
                ),
            };
            errors.push(ConfigError {
                file: file.to_owned(),
                key,
                problem: format!("unknown key `{field}`"),
                hint,
            });
        } else {
            let keys = key_path(&segments);
            // A required key missing from a table whose other entry was already reported
            // (taken out above): the table goes, and the user hears about it once.
            let follows_a_report = inner.starts_with("missing field")
                && reported.iter().any(|earlier| earlier.starts_with(&keys));
            if !follows_a_report {
                errors.push(ConfigError {
                    file: file.to_owned(),
                    key,
                    problem: inner,
                    hint: "see docs/configuration.md for the expected value".to_owned(),
                });
            }
        }
        let keys = key_path(&segments);
        if keys.is_empty() || !remove(&mut value, &keys) {
            // The table itself is wrong (not a table), or serde named no entry to take out.
            return None;
        }
        reported.push(keys);
    }
    None
}

/// One step of the path serde reports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index,
    Other,
}

impl From<&serde_path_to_error::Segment> for Segment {
    fn from(segment: &serde_path_to_error::Segment) -> Self {
        match segment {
            serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
            serde_path_to_error::Segment::Seq { .. } => Segment::Index,
            _ => Segment::Other,
        }
    }
}

/// The map keys leading to an entry, up to the first list (or anything else): the entry to
/// take out, a list as a whole.
fn key_path(segments: &[Segment]) -> Vec<String> {
    segments
        .iter()
        .map_while(|segment| match segment {
            Segment::Key(key) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// Takes the entry at `keys` out of `value`; false when there is none.
fn remove(value: &mut serde_json::Value, keys: &[String]) -> bool {
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut table = value;
    for key in parents {
        match table.get_mut(key) {
            Some(inner) => table = inner,
            None => return false,
        }
    }
    table
        .as_object_mut()
        .is_some_and(|object| object.remove(last).is_some())
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
