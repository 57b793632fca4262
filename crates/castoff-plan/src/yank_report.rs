//! `dist/yank-report.json`: what `castoff yank` found and did on each registry the release
//! reached. A serialized boundary like `publish-report.json`: scripts read it, tests check it.

use serde::{Deserialize, Serialize};

/// Version of the yank report schema.
pub const YANK_REPORT_SCHEMA_VERSION: u32 = 1;

/// The whole report of one `yank` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YankReport {
    pub schema_version: u32,
    pub castoff_version: String,
    /// The version yanked, as Cargo spells it.
    pub version: String,
    pub dry_run: bool,
    pub steps: Vec<YankStepReport>,
}

/// One step: one package (npm, PyPI) or image repository on one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YankStepReport {
    /// `<channel>/<name>` (`npm/@acme/greeter`, `oci/greeter`, `pypi/greeter`), with
    /// ` → <destination>` when the channel has several destinations.
    pub id: String,
    /// `npm`, `oci`, `pypi` (and `crates` once that channel exists).
    pub channel: String,
    /// Registry URL (without credentials) and the name there.
    pub destination: String,
    /// What the registry held before the run.
    pub state: YankState,
    /// How the step ended.
    pub outcome: YankOutcome,
    /// The changes the step makes (or made, or would make), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// What someone has to do by hand, where the registry offers no API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual: Vec<String>,
    /// What stays as it is, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Milliseconds since the Unix epoch; 0 for steps that changed nothing.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the registry held before the run (serialized kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum YankState {
    /// The version was never published there (or is already removed).
    NothingToUndo,
    /// The version is there and every change is already made.
    Undone,
    /// The version is there and changes are left to make.
    ToUndo,
    /// Only a person can undo it (the registry has no API for it).
    Manual,
    /// The registry could not be asked.
    Unknown,
}

/// How a step ended (serialized kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum YankOutcome {
    /// Its changes were made.
    Done,
    /// Nothing to do.
    Skipped,
    /// A dry run would make its changes.
    WouldUndo,
    /// Left to a person: see `manual`.
    Manual,
    Failed,
    /// The run stopped before it (the confirmation was declined).
    NotRun,
}

impl YankState {
    pub fn as_str(self) -> &'static str {
        match self {
            YankState::NothingToUndo => "nothing-to-undo",
            YankState::Undone => "undone",
            YankState::ToUndo => "to-undo",
            YankState::Manual => "manual",
            YankState::Unknown => "unknown",
        }
    }
}

impl YankOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            YankOutcome::Done => "done",
            YankOutcome::Skipped => "skipped",
            YankOutcome::WouldUndo => "would-undo",
            YankOutcome::Manual => "manual",
            YankOutcome::Failed => "failed",
            YankOutcome::NotRun => "not-run",
        }
    }
}

impl PartialEq<&str> for YankOutcome {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl PartialEq<&str> for YankState {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl YankReport {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("report serializes");
        json.push('\n');
        json
    }
}
