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
    /// What the registry held before.
    pub state: StepState,
    /// How the step ended.
    pub outcome: StepOutcome,
    pub bytes: u64,
    pub attempts: u32,
    /// Milliseconds since the Unix epoch; 0 for steps that did not run.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the registry held under a step's name before the run (serialized kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Absent,
    Identical,
    /// Other content under a name that may move (a floating image tag).
    Replaceable,
    /// Other content under an immutable name.
    Conflict,
    /// The step was not looked at (excluded by --only / --skip).
    Unknown,
}

/// How a step ended (serialized kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    Uploaded,
    /// Found identical while uploading (an earlier attempt had landed).
    AlreadyPresent,
    /// Identical before the run.
    Skipped,
    Failed,
    /// A step it waits for failed, or the run stopped.
    NotRun,
    /// Left out by --only / --skip.
    Excluded,
    /// A dry run would upload it.
    WouldUpload,
}

impl StepState {
    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Absent => "absent",
            StepState::Identical => "identical",
            StepState::Replaceable => "replaceable",
            StepState::Conflict => "conflict",
            StepState::Unknown => "unknown",
        }
    }
}

impl StepOutcome {
    /// The name in the report and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Uploaded => "uploaded",
            StepOutcome::AlreadyPresent => "already-present",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Failed => "failed",
            StepOutcome::NotRun => "not-run",
            StepOutcome::Excluded => "excluded",
            StepOutcome::WouldUpload => "would-upload",
        }
    }
}

impl std::fmt::Display for StepOutcome {
    /// The name, padded like a string (`{:<16}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// An outcome equals its name in the report (`step.outcome == "uploaded"`), for its readers.
impl PartialEq<&str> for StepOutcome {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// A state equals its name in the report, for its readers.
impl PartialEq<&str> for StepState {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl PublishReport {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("report serializes");
        json.push('\n');
        json
    }
}
