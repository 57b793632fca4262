//! What a `publish` run may publish, decided from `dist/manifest.json` and the workspace before
//! any request: the apps a release tag selects (`--tag`, or the tag GitHub Actions runs for),
//! and, unless `--allow-partial`, the refusal of a dist/ that lacks some configured target of
//! an app it would publish. Both refusals are the user's input to fix: [`RefusedRelease`],
//! exit code 2.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use castoff_plan::Manifest;
use castoff_plan::manifest::ManifestApp;
use castoff_plan::tag::TagPattern;

use crate::hint::Hinted;

/// The git tag a run publishes for, and where castoff found it (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTag {
    pub name: String,
    pub origin: TagOrigin,
}

/// Where the tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOrigin {
    /// `publish --tag`.
    Flag,
    /// `GITHUB_REF_NAME` while `GITHUB_REF_TYPE=tag` (a GitHub Actions run for a tag push).
    GithubRef,
}

impl fmt::Display for ReleaseTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match self.origin {
            TagOrigin::Flag => "--tag",
            TagOrigin::GithubRef => "GITHUB_REF_NAME",
        };
        write!(f, "`{}` (from {origin})", self.name)
    }
}

/// A release `publish` refuses before any request: a tag that is not the release's, or a
/// dist/ that holds only part of it. Exit code 2.
#[derive(Debug)]
pub struct RefusedRelease(Hinted);

impl RefusedRelease {
    /// The refusal with its hints (what `hint::hints_of` asks).
    pub(crate) fn refusal(&self) -> &Hinted {
        &self.0
    }
}

impl fmt::Display for RefusedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RefusedRelease {}

/// The apps of `manifest` this run publishes, by name: every app without a tag; with one, the
/// apps whose release tag it is.
///
/// A pattern with `{name}` gives each package its own tag, so the tag selects the packages
/// whose expanded tag equals it and leaves the others out. When it is no such package's tag,
/// it is the release tag of every app on a pattern without `{name}`: each of them must be
/// released under exactly this tag (a package at another version would go out under a tag
/// that does not name it). A tag that matches no app is refused, listing the expected tags.
pub(crate) fn apps_for_tag(
    manifest: &Manifest,
    tag: Option<&ReleaseTag>,
    dist_dir: &Path,
) -> Result<Vec<String>, RefusedRelease> {
    let Some(tag) = tag else {
        return Ok(manifest.apps.iter().map(|app| app.name.clone()).collect());
    };
    let matches = |app: &&ManifestApp| app.git_tag() == tag.name;
    let (per_package, shared): (Vec<&ManifestApp>, Vec<&ManifestApp>) = manifest
        .apps
        .iter()
        .partition(|app| app.tag_pattern.names_the_package());
    let named: Vec<&ManifestApp> = per_package.iter().copied().filter(matches).collect();
    let selected: Vec<&ManifestApp> = if named.is_empty() {
        let mismatched: Vec<&ManifestApp> =
            shared.iter().copied().filter(|app| !matches(app)).collect();
        if shared.is_empty() || !mismatched.is_empty() {
            // Every tag the run could have been meant for: the shared pattern's that differ,
            // then each package's own.
            let listed: Vec<&ManifestApp> = mismatched.into_iter().chain(per_package).collect();
            return Err(tag_refused(tag, &listed, dist_dir));
        }
        shared
    } else {
        named
            .into_iter()
            .chain(shared.into_iter().filter(matches))
            .collect()
    };
    Ok(selected.iter().map(|app| app.name.clone()).collect())
}

fn tag_refused(tag: &ReleaseTag, apps: &[&ManifestApp], dist_dir: &Path) -> RefusedRelease {
    let lines: Vec<String> = apps
        .iter()
        .map(|app| {
            format!(
                "{} {}: expects the tag `{}` (tag pattern `{}`)",
                app.name,
                app.version,
                app.git_tag(),
                app.tag_pattern
            )
        })
        .collect();
    let mut hints = Vec::new();
    // A tag of the right shape for another version: the version was not bumped (or the tag
    // is for another commit).
    if let Some((app, version)) = apps
        .iter()
        .find_map(|app| Some((app, app.tag_pattern.version_in(&app.name, &tag.name)?)))
    {
        hints.push(format!(
            "`{}` is the tag of version {version}, but dist/ holds {} {}: if {version} is the release, set version = \"{version}\" in the Cargo.toml of `{}` and run `dist` again",
            tag.name, app.name, app.version, app.name
        ));
    }
    // The pattern the tag follows, when it holds an app's version: what to configure if
    // that is how the project tags its releases.
    if let Some(pattern) = apps.iter().find_map(|app| pattern_of(&tag.name, app)) {
        hints.push(format!(
            "if `{}` is how this project tags releases, set tag = \"{pattern}\" in [workspace.metadata.castoff] (or the package's table), run `dist` again and publish that",
            tag.name
        ));
    }
    hints.push(format!(
        "{}tag the commit with the tag shown above and publish for that tag; `castoff plan` shows each package's tag",
        if hints.is_empty() { "" } else { "otherwise " }
    ));
    let last = hints.pop().expect("a hint");
    RefusedRelease(
        Hinted::new(
            format!(
                "the tag {tag} is not the release tag of what {} holds; nothing was sent\n  {}",
                dist_dir.display(),
                lines.join("\n  ")
            ),
            last,
        )
        .after(hints),
    )
}

/// `tag` as a pattern over `app`'s version (and name), when it holds the version and the
/// result is a valid pattern: `1.2.0` → `{version}`, `greeter-1.2.0` → `{name}-{version}`.
fn pattern_of(tag: &str, app: &ManifestApp) -> Option<String> {
    if !tag.contains(&app.version) {
        return None;
    }
    let pattern = tag
        .replacen(&app.version, "{version}", 1)
        .replacen(&app.name, "{name}", 1);
    pattern.parse::<TagPattern>().ok().map(|_| pattern)
}

/// Refuses, unless every app in `publishing` holds every target the workspace configures for
/// it: a release published from part of its targets cannot be completed later (npm and PyPI
/// versions are immutable; the launcher and the image index would never list the rest).
/// `configured` is each app's targets in the workspace's plan, without `--target`.
pub(crate) fn check_whole(
    manifest: &Manifest,
    configured: &BTreeMap<String, Vec<String>>,
    publishing: &[String],
    dist_dir: &Path,
) -> Result<(), RefusedRelease> {
    let mut lines = Vec::new();
    for app in manifest
        .apps
        .iter()
        .filter(|app| publishing.contains(&app.name))
    {
        let missing: Vec<&str> = configured
            .get(&app.name)
            .into_iter()
            .flatten()
            .filter(|target| !app.targets.contains(target))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            lines.push(format!(
                "{} {}: missing {} (dist/ holds {})",
                app.name,
                app.version,
                missing.join(", "),
                app.targets.join(", ")
            ));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    Err(RefusedRelease(
        Hinted::new(
            format!(
                "{} holds only part of the release (a partial dist); nothing was sent\n  {}",
                dist_dir.display(),
                lines.join("\n  ")
            ),
            "or pass --allow-partial to publish exactly what dist/ holds, knowing that npm and PyPI versions can never be replaced: this version's npm launcher and image index would never reach the missing targets",
        )
        .after(vec![
            "build the missing targets where they can be built (in CI, one runner per target: docs/ci.md) and combine the partial dists with `castoff dist --merge DIR...`".to_owned(),
            "or remove the targets you do not release from `targets` in [workspace.metadata.castoff] (or the package's table) and run `dist` again".to_owned(),
        ]),
    ))
}

/// Every target the workspace configures for each app of `manifest` (its plan without
/// `--target`), by app name. The manifest was checked against the same configuration, so the
/// plan does not fail here; if it did, the check before reported it.
pub(crate) fn configured_targets(
    manifest: &Manifest,
    workspace: &cargo_metadata::Metadata,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let release = castoff_plan::plan(
        workspace,
        &castoff_plan::PlanOptions {
            packages: manifest.apps.iter().map(|app| app.name.clone()).collect(),
            targets: Vec::new(),
        },
    )?;
    Ok(release
        .apps
        .iter()
        .map(|app| {
            (
                app.package.name.clone(),
                app.targets.iter().map(|t| t.triple.to_owned()).collect(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(apps: &[(&str, &str, &str)]) -> Manifest {
        let mut manifest = Manifest::from_json(
            r#"{"schema_version":1,"castoff_version":"0","apps":[],"artifacts":[],"steps":[]}"#,
        )
        .unwrap();
        for (name, version, pattern) in apps {
            manifest.apps.push(ManifestApp {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                bins: Vec::new(),
                targets: vec!["x86_64-unknown-linux-gnu".to_owned()],
                depends_on: Vec::new(),
                python: None,
                npm: None,
                oci: None,
                builds: Vec::new(),
                tag_pattern: pattern.parse().unwrap(),
            });
        }
        manifest
    }

    fn select(manifest: &Manifest, tag: &str) -> Result<Vec<String>, String> {
        let tag = ReleaseTag {
            name: tag.to_owned(),
            origin: TagOrigin::Flag,
        };
        apps_for_tag(manifest, Some(&tag), Path::new("dist"))
            .map_err(|refused| crate::hint::render(&refused))
    }

    #[test]
    fn a_shared_pattern_must_match_every_app() {
        let release = manifest(&[("a", "1.2.0", "v{version}"), ("b", "1.2.0", "v{version}")]);
        assert_eq!(select(&release, "v1.2.0").unwrap(), ["a", "b"]);
        let refused = select(&release, "1.2.0").unwrap_err();
        assert!(
            refused.contains("a 1.2.0: expects the tag `v1.2.0` (tag pattern `v{version}`)"),
            "{refused}"
        );
        assert!(
            refused.contains("set tag = \"{version}\" in [workspace.metadata.castoff]"),
            "{refused}"
        );
        // One app at another version: the tag does not name it.
        let split = manifest(&[("a", "1.2.0", "v{version}"), ("b", "1.3.0", "v{version}")]);
        let refused = select(&split, "v1.2.0").unwrap_err();
        assert!(
            refused.contains("b 1.3.0: expects the tag `v1.3.0`"),
            "{refused}"
        );
        assert!(
            refused.contains("hint: `v1.2.0` is the tag of version 1.2.0, but dist/ holds b 1.3.0"),
            "{refused}"
        );
        assert!(!refused.contains("a 1.2.0"), "{refused}");
        assert_eq!(
            apps_for_tag(&split, None, Path::new("m")).unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_per_package_pattern_selects() {
        let release = manifest(&[
            ("core", "1.3.0", "{name}-v{version}"),
            ("cli", "1.2.0", "{name}-v{version}"),
            ("other", "1.2.0", "v{version}"),
        ]);
        assert_eq!(select(&release, "cli-v1.2.0").unwrap(), ["cli"]);
        assert_eq!(select(&release, "core-v1.3.0").unwrap(), ["core"]);
        // Not a package's own tag: the shared release tag of `other`.
        assert_eq!(select(&release, "v1.2.0").unwrap(), ["other"]);
        let refused = select(&release, "cli-v9").unwrap_err();
        assert!(
            refused.contains(
                "other 1.2.0: expects the tag `v1.2.0` (tag pattern `v{version}`)\n  core 1.3.0: expects the tag `core-v1.3.0`"
            ),
            "{refused}"
        );
        let named_only = manifest(&[
            ("core", "1.3.0", "{name}-v{version}"),
            ("cli", "1.2.0", "{name}-v{version}"),
        ]);
        let refused = select(&named_only, "v1.2.0").unwrap_err();
        assert!(
            refused.contains("core 1.3.0: expects the tag `core-v1.3.0`")
                && refused.contains("cli 1.2.0: expects the tag `cli-v1.2.0`"),
            "{refused}"
        );
        assert!(refused.contains("set tag = \"v{version}\""), "{refused}");
    }

    #[test]
    fn a_partial_dist_is_refused_for_the_apps_it_would_publish() {
        let release = manifest(&[("a", "1.2.0", "v{version}"), ("b", "1.2.0", "v{version}")]);
        let configured: BTreeMap<String, Vec<String>> = [
            (
                "a".to_owned(),
                vec![
                    "x86_64-unknown-linux-gnu".to_owned(),
                    "aarch64-apple-darwin".to_owned(),
                ],
            ),
            ("b".to_owned(), vec!["x86_64-unknown-linux-gnu".to_owned()]),
        ]
        .into();
        let dist = Path::new("dist");
        check_whole(&release, &configured, &["b".to_owned()], dist).unwrap();
        let refused = check_whole(
            &release,
            &configured,
            &["a".to_owned(), "b".to_owned()],
            dist,
        )
        .unwrap_err();
        let text = crate::hint::render(&refused);
        assert!(
            text.starts_with(
                "dist holds only part of the release (a partial dist); nothing was sent\n  a 1.2.0: missing aarch64-apple-darwin (dist/ holds x86_64-unknown-linux-gnu)\nhint: build the missing targets"
            ),
            "{text}"
        );
        assert!(text.contains("hint: or pass --allow-partial"), "{text}");
    }
}
