//! PyPI: the release's files go through the index's own API where it has one (devpi deletes
//! the release; pypiserver removes it with `:action=remove_pkg`). pypi.org and TestPyPI have
//! no API for it: the step is manual, with the page and the steps.

use anyhow::Context as _;
use castoff_plan::yank_report::YankState;
use castoff_registry::error::display_url;
use castoff_registry::pypi::{IndexKind, PypiClient, Removal, file_project, file_version};

use super::{Change, Inspection, Undo};
use crate::hint::Hinted;

/// One project on one index.
pub(super) struct PypiUndo {
    pub(super) client: PypiClient,
    pub(super) project: String,
    /// The version as PEP 440 spells it.
    pub(super) version: String,
}

/// The steps a person takes on pypi.org (or TestPyPI), whose yank has no API.
pub(super) fn warehouse_steps(manage: &str, project: &str, version: &str) -> Vec<String> {
    vec![
        format!("open {manage} logged in as an owner or maintainer of {project}"),
        format!(
            "under \"Yank release\", give the reason (it is shown to pip users), press \"Yank\" and confirm by typing {version}"
        ),
        format!(
            "pip and uv then skip {project} {version} unless it is pinned with `=={version}`; the files stay downloadable"
        ),
    ]
}

impl Undo for PypiUndo {
    fn id(&self) -> String {
        format!("pypi/{}", self.project)
    }

    fn channel(&self) -> &'static str {
        "pypi"
    }

    fn destination(&self) -> String {
        format!(
            "{} {}",
            display_url(&self.client.repository().upload_url),
            self.project
        )
    }

    fn inspect(&self) -> anyhow::Result<Inspection> {
        let files = self
            .client
            .release_files(&self.project, &self.version)
            .with_context(|| format!("could not read the index's page of {}", self.project))?;
        if files.is_empty() {
            return Ok(Inspection::nothing(format!(
                "the index lists no file of {} {} (never uploaded, or already removed)",
                self.project, self.version
            )));
        }
        let kind = self
            .client
            .index_kind(&self.project, &self.version)
            .context("could not tell what kind of index this is")?;
        let mut inspection = Inspection::new();
        match kind {
            IndexKind::Warehouse { manage } => {
                inspection.manual = warehouse_steps(&manage, &self.project, &self.version);
                inspection.state = YankState::Manual;
            }
            kind => {
                // One removal per spelling of name and version the file names use
                // (pypiserver matches them as written); devpi takes the project's name.
                let spellings: std::collections::BTreeSet<(String, String)> = files
                    .iter()
                    .map(|file| match kind {
                        IndexKind::Devpi => (self.project.clone(), self.version.clone()),
                        _ => (
                            file_project(&file.filename)
                                .unwrap_or(&self.project)
                                .to_owned(),
                            file_version(&file.filename)
                                .unwrap_or(&self.version)
                                .to_owned(),
                        ),
                    })
                    .collect();
                for (project, version) in spellings {
                    let count = files
                        .iter()
                        .filter(|file| {
                            kind == IndexKind::Devpi
                                || (file_project(&file.filename) == Some(project.as_str())
                                    && file_version(&file.filename) == Some(version.as_str()))
                        })
                        .count();
                    inspection.changes.push(Change::RemovePython {
                        project,
                        version,
                        files: count,
                        kind: kind.clone(),
                    });
                }
                inspection.state = YankState::ToUndo;
            }
        }
        Ok(inspection)
    }

    fn apply(&self, change: &Change) -> anyhow::Result<()> {
        let Change::RemovePython {
            project,
            version,
            kind,
            ..
        } = change
        else {
            anyhow::bail!("internal error: a Python index cannot make `{change}`");
        };
        match self.client.remove_release(kind, project, version)? {
            Removal::Removed | Removal::AlreadyGone => {
                // Read back: the index must no longer list the files.
                let left = self
                    .client
                    .release_files(&self.project, &self.version)?
                    .into_iter()
                    .filter(|file| {
                        *kind == IndexKind::Devpi
                            || file_project(&file.filename) == Some(project.as_str())
                    })
                    .count();
                if left > 0 {
                    return Err(Hinted::new(
                        format!(
                            "{} accepted the removal of {project} {version}, but still lists {left} of its file(s)",
                            display_url(&self.client.repository().upload_url)
                        ),
                        "check the index's logs and storage, then run `castoff yank` again",
                    )
                    .into());
                }
                Ok(())
            }
            Removal::Unsupported { explanation } => Err(Hinted::new(
                format!(
                    "{} offers no API to remove {project} {version}: {explanation}",
                    display_url(&self.client.repository().upload_url)
                ),
                "remove or yank the release through the index's own interface",
            )
            .into()),
        }
    }
}
