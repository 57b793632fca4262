//! Images: each floating tag (`latest`, `X`, `X.Y`) that serves the version's index goes back
//! to the previous release's index (its manifest PUT again under the floating tag). The
//! version's own tag stays: a digest names its content forever, and pulls by tag or digest of
//! that version keep working.

use anyhow::Context as _;
use castoff_plan::yank_report::YankState;
use castoff_registry::oci::OciClient;
use semver::Version;

use super::previous::previous_image;
use super::{Change, Inspection, Undo};

/// One image repository on one registry.
pub(super) struct OciUndo<'a> {
    pub(super) client: &'a OciClient,
    pub(super) semver: Version,
}

impl OciUndo<'_> {
    fn repository(&self) -> String {
        let repository = self.client.repository();
        format!("{}/{}", repository.host(), repository.name)
    }

    /// The version's tags as publish pushes them: the full version, then the floating ones.
    fn tags(&self) -> (String, Vec<String>) {
        let mut tags = castoff_plan::version::oci_tags(&self.semver);
        let full = tags.remove(0);
        (full, tags)
    }
}

impl Undo for OciUndo<'_> {
    fn id(&self) -> String {
        format!("oci/{}", self.client.repository().name)
    }

    fn channel(&self) -> &'static str {
        "oci"
    }

    fn destination(&self) -> String {
        self.repository()
    }

    fn inspect(&self) -> anyhow::Result<Inspection> {
        let repository = self.repository();
        let (full, floating) = self.tags();
        let Some(digest) = self
            .client
            .resolve(&full)
            .with_context(|| format!("could not read {repository}:{full}"))?
        else {
            return Ok(Inspection::nothing(format!(
                "{repository} has no tag {full}"
            )));
        };
        let mut inspection = Inspection::new();
        inspection.notes.push(format!(
            "tag {full} stays on {digest}: a digest is immutable, and whoever pinned it keeps it"
        ));
        let mut listed: Option<Vec<String>> = None;
        for tag in floating {
            let serves = self
                .client
                .resolve(&tag)
                .with_context(|| format!("could not read {repository}:{tag}"))?;
            if serves.as_ref() != Some(&digest) {
                continue;
            }
            if listed.is_none() {
                listed = Some(
                    self.client
                        .tags()
                        .with_context(|| format!("could not list the tags of {repository}"))?,
                );
            }
            match previous_image(listed.as_deref().unwrap_or_default(), &self.semver, &tag) {
                Some(to) => inspection.changes.push(Change::MoveImageTag {
                    repository: repository.clone(),
                    tag,
                    to,
                }),
                None => inspection.manual.push(format!(
                    "{repository}:{tag} still serves {full}, and no earlier release carries `{tag}`: delete the tag in the registry (where it allows deleting tags), or publish a fixed release, which moves it"
                )),
            }
        }
        inspection.state = if !inspection.changes.is_empty() {
            YankState::ToUndo
        } else if !inspection.manual.is_empty() {
            YankState::Manual
        } else {
            YankState::Undone
        };
        Ok(inspection)
    }

    fn apply(&self, change: &Change) -> anyhow::Result<()> {
        match change {
            Change::MoveImageTag { tag, to, .. } => {
                self.client.retag(to, tag)?;
                Ok(())
            }
            other => anyhow::bail!("internal error: an image repository cannot make `{other}`"),
        }
    }
}
