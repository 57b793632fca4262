//! Crates: the version is yanked (`DELETE /api/v1/crates/{name}/{version}/yank`), so Cargo no
//! longer picks it for a new lock file; lock files that have it keep building. The index entry
//! tells the state: absent, yanked already, or to yank. The change is read back from the index.

use anyhow::Context as _;
use castoff_plan::yank_report::YankState;
use castoff_registry::crates::CratesClient;
use castoff_registry::error::display_url;

use super::{Change, Inspection, Undo};
use crate::hint::Hinted;

/// One crate on one Cargo registry.
pub(super) struct CratesUndo<'a> {
    pub(super) client: &'a CratesClient,
    pub(super) name: String,
    pub(super) version: String,
}

impl Undo for CratesUndo<'_> {
    fn id(&self) -> String {
        format!("crates/{}", self.name)
    }

    fn channel(&self) -> &'static str {
        "crates"
    }

    fn destination(&self) -> String {
        format!(
            "{} ({}) {}",
            self.client.registry().name,
            display_url(&self.client.registry().index),
            self.name
        )
    }

    fn inspect(&self) -> anyhow::Result<Inspection> {
        let entry = self
            .client
            .index_entry(&self.name, &self.version)
            .with_context(|| format!("could not read the index entry of {}", self.name))?;
        let registry = &self.client.registry().name;
        let flag = if registry == castoff_registry::crates::CRATES_IO {
            String::new()
        } else {
            format!(" --registry {registry}")
        };
        Ok(match entry {
            None => Inspection::nothing(format!(
                "the index lists no version {} of {} (never published; a crate versioned apart from the release is yanked with `cargo yank{flag} --version <its version> {}`)",
                self.version, self.name, self.name
            )),
            Some(entry) if entry.yanked => Inspection {
                state: YankState::Undone,
                ..Inspection::nothing(format!("{}@{} is yanked", self.name, self.version))
            },
            Some(_) => {
                let mut inspection = Inspection::new();
                inspection.changes.push(Change::YankCrate {
                    name: self.name.clone(),
                    version: self.version.clone(),
                });
                inspection
            }
        })
    }

    fn apply(&self, change: &Change) -> anyhow::Result<()> {
        let Change::YankCrate { name, version } = change else {
            anyhow::bail!("internal error: a Cargo registry cannot make `{change}`");
        };
        self.client.yank(name, version)?;
        // Read back: the index must say yanked.
        match self.client.index_entry(name, version)? {
            Some(entry) if entry.yanked => Ok(()),
            _ => Err(Hinted::new(
                format!(
                    "{} accepted the yank of {name}@{version}, but its index does not show it yanked",
                    self.client.registry().name
                ),
                "run `castoff yank` again (an index behind a cache may take a moment)",
            )
            .into()),
        }
    }
}
