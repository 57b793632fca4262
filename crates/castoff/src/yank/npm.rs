//! npm: every dist-tag that points at the version goes back to the previous release (or is
//! removed when there is none, except `latest`, which npm requires: it stays, as a manual
//! step), then the version is deprecated with the message.

use anyhow::Context as _;
use castoff_plan::yank_report::YankState;
use castoff_registry::error::display_url;
use castoff_registry::npm::NpmClient;
use semver::Version;

use super::previous::previous_npm;
use super::{Change, Inspection, Undo};

/// One npm package (the launcher or a platform package) on one registry.
pub(super) struct NpmUndo<'a> {
    pub(super) client: &'a NpmClient,
    pub(super) package: String,
    /// The version as npm spells it.
    pub(super) version: String,
    pub(super) semver: Version,
    pub(super) message: String,
}

impl Undo for NpmUndo<'_> {
    fn id(&self) -> String {
        format!("npm/{}", self.package)
    }

    fn channel(&self) -> &'static str {
        "npm"
    }

    fn destination(&self) -> String {
        format!(
            "{}{}",
            display_url(&self.client.registry().url),
            self.package
        )
    }

    fn inspect(&self) -> anyhow::Result<Inspection> {
        let packument = self
            .client
            .packument_of(&self.package)
            .with_context(|| format!("could not read the packument of {}", self.package))?;
        Ok(plan(
            packument.as_ref(),
            &self.package,
            &self.version,
            &self.semver,
            &self.message,
        ))
    }

    fn apply(&self, change: &Change) -> anyhow::Result<()> {
        match change {
            Change::MoveDistTag {
                package,
                tag,
                to: Some(to),
            } => {
                self.client.set_dist_tag(package, tag, to)?;
            }
            Change::MoveDistTag {
                package,
                tag,
                to: None,
            } => {
                self.client.remove_dist_tag(package, tag)?;
            }
            Change::Deprecate {
                package,
                version,
                message,
            } => {
                self.client.deprecate(package, version, message)?;
            }
            other => anyhow::bail!("internal error: npm cannot make the change `{other}`"),
        }
        Ok(())
    }
}

/// What is left to undo for `version` of `package`, from its packument (`None`: the registry
/// does not know the package).
pub(super) fn plan(
    packument: Option<&serde_json::Value>,
    package: &str,
    version: &str,
    semver: &Version,
    message: &str,
) -> Inspection {
    let versions = packument
        .and_then(|p| p.get("versions"))
        .and_then(|v| v.as_object());
    let Some(entry) = versions.and_then(|versions| versions.get(version)) else {
        return Inspection::nothing(format!("{package}@{version} is not on the registry"));
    };
    let versions = versions.expect("the version was found in it");
    let deprecated = |entry: &serde_json::Value| {
        entry
            .get("deprecated")
            .and_then(|d| d.as_str())
            .is_some_and(|d| !d.is_empty())
    };
    let listed: Vec<(&str, bool)> = versions
        .iter()
        .map(|(name, entry)| (name.as_str(), deprecated(entry)))
        .collect();
    let mut inspection = Inspection::new();
    let tags = packument
        .and_then(|p| p.get("dist-tags"))
        .and_then(|t| t.as_object());
    for (tag, target) in tags.into_iter().flatten() {
        if target.as_str() != Some(version) {
            continue;
        }
        let to = previous_npm(listed.iter().copied(), semver, tag);
        if to.is_none() && tag == "latest" {
            // npm needs a `latest` (the registry refuses to remove it): it stays, and the
            // deprecation below is what users see.
            inspection.manual.push(format!(
                "{package}: dist-tag `latest` stays on {version}, as there is no earlier version that is not deprecated and npm refuses to remove `latest`; publish a fixed release, which moves it"
            ));
            continue;
        }
        if to.is_none() {
            inspection.notes.push(format!(
                "{package}: no earlier version that is not deprecated, so dist-tag `{tag}` is removed"
            ));
        }
        inspection.changes.push(Change::MoveDistTag {
            package: package.to_owned(),
            tag: tag.clone(),
            to,
        });
    }
    if !deprecated(entry) {
        inspection.changes.push(Change::Deprecate {
            package: package.to_owned(),
            version: version.to_owned(),
            message: message.to_owned(),
        });
    }
    inspection.state = if !inspection.changes.is_empty() {
        YankState::ToUndo
    } else if !inspection.manual.is_empty() {
        YankState::Manual
    } else {
        YankState::Undone
    };
    inspection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(inspection: &Inspection) -> Vec<String> {
        inspection.changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn tags_move_back_and_the_version_is_deprecated() {
        let packument = serde_json::json!({
            "dist-tags": {"latest": "0.3.2", "stable": "0.3.2", "next": "0.4.0-rc.1"},
            "versions": {
                "0.3.0": {}, "0.3.1": {"deprecated": "broken"}, "0.3.2": {}, "0.4.0-rc.1": {}
            }
        });
        let v = Version::parse("0.3.2").unwrap();
        let inspection = plan(Some(&packument), "@a/g", "0.3.2", &v, "bad");
        assert_eq!(inspection.state, YankState::ToUndo);
        assert_eq!(
            changes(&inspection),
            [
                "move dist-tag `latest` of @a/g back to 0.3.0",
                "move dist-tag `stable` of @a/g back to 0.3.0",
                "deprecate @a/g@0.3.2: \"bad\"",
            ]
        );
    }

    #[test]
    fn a_done_yank_and_an_absent_version_change_nothing() {
        let v = Version::parse("0.3.2").unwrap();
        let done = serde_json::json!({
            "dist-tags": {"latest": "0.3.0"},
            "versions": {"0.3.0": {}, "0.3.2": {"deprecated": "bad"}}
        });
        assert_eq!(
            plan(Some(&done), "g", "0.3.2", &v, "m").state,
            YankState::Undone
        );
        assert_eq!(
            plan(None, "g", "0.3.2", &v, "m").state,
            YankState::NothingToUndo
        );
        let other = serde_json::json!({"versions": {"0.3.0": {}}});
        assert_eq!(
            plan(Some(&other), "g", "0.3.2", &v, "m").state,
            YankState::NothingToUndo
        );
    }

    #[test]
    fn without_an_earlier_version_a_tag_is_removed_but_latest_stays() {
        let v = Version::parse("0.1.0").unwrap();
        let only = serde_json::json!({
            "dist-tags": {"latest": "0.1.0", "beta": "0.1.0"},
            "versions": {"0.1.0": {}}
        });
        let inspection = plan(Some(&only), "g", "0.1.0", &v, "m");
        assert_eq!(
            changes(&inspection),
            [
                "remove dist-tag `beta` of g (no earlier version to move it to)",
                "deprecate g@0.1.0: \"m\"",
            ]
        );
        assert!(
            inspection.notes[0].contains("is removed"),
            "{:?}",
            inspection.notes
        );
        assert!(
            inspection.manual[0].contains("`latest` stays on 0.1.0"),
            "{:?}",
            inspection.manual
        );
        // Once deprecated, what is left is the manual step.
        let done = serde_json::json!({
            "dist-tags": {"latest": "0.1.0"},
            "versions": {"0.1.0": {"deprecated": "m"}}
        });
        assert_eq!(
            plan(Some(&done), "g", "0.1.0", &v, "m").state,
            YankState::Manual
        );
    }
}
