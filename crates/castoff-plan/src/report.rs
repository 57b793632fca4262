//! `dist/publish-report.json`: what `publish` did with each step, when, and how it ended.
//! A serialized boundary like the manifest: scripts read it, tests prove ordering with it.

use serde::{Deserialize, Serialize};

/// Version of the report schema.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The whole report of one `publish` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishReport {
    pub schema_version: u32,
    pub castoff_version: String,
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
}

/// One publish step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The manifest's step id.
    pub id: String,
    /// Where it goes: registry URL without credentials, plus the name there.
    pub destination: String,
    /// What the registry held before: `absent`, `identical`, `replaceable`, `conflict`, or
    /// `unknown` when the step was not looked at (excluded by --only / --skip).
    pub state: String,
    /// `uploaded`, `already-present` (found identical while uploading), `skipped` (identical
    /// before), `failed`, `not-run` (a step it waits for failed, or the run stopped),
    /// `excluded` (--only / --skip), `would-upload` (dry run).
    pub outcome: String,
    pub bytes: u64,
    pub attempts: u32,
    /// Milliseconds since the Unix epoch; 0 for steps that did not run.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PublishReport {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("report serializes");
        json.push('\n');
        json
    }
}
