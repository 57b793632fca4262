//! What a release holds, in the units its users count: wheels, npm packages and images (each
//! image with all its platforms). `dist` and `publish` both end with these words, counted by
//! this one module from the same manifest, so the two commands never disagree about the
//! size of one release (issue 17).

use std::collections::BTreeMap;

use castoff_plan::manifest::ManifestStep;
use castoff_plan::report::StepOutcome;
use castoff_plan::{ArtifactKind, Channel, Manifest};

/// One thing a user of a registry sees: a wheel file on an index, a version of an npm
/// package, an image (its index, platform manifests, SBOMs and tags together).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unit {
    /// The wheel's (or the sdist's) artifact id.
    Wheel(String),
    /// The npm package's artifact id (a platform package or the launcher).
    NpmPackage(String),
    /// The app whose image it is.
    Image(String),
    /// A crate of the crates channel, by name.
    Crate(String),
}

impl Unit {
    /// The unit a publish step is part of: each upload of a wheel or an npm package (to any
    /// of its destinations), every step of an app's image (platform manifests, SBOM
    /// referrers, the index, its tags, on every mirror).
    pub(crate) fn of_step(step: &ManifestStep) -> Unit {
        match step.kind.channel() {
            Channel::Python => Unit::Wheel(step.artifact.clone()),
            Channel::Npm => Unit::NpmPackage(step.artifact.clone()),
            Channel::Crates => Unit::Crate(step.app.clone()),
            _ => Unit::Image(step.app.clone()),
        }
    }
}

/// The counted contents of one release (one manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Contents {
    /// `.crate` files of the crates channel.
    pub(crate) crates: usize,
    pub(crate) wheels: usize,
    /// Source distributions (one per app with `python.sdist`).
    pub(crate) sdists: usize,
    pub(crate) npm_packages: usize,
    /// Platforms per app with an image.
    pub(crate) images: BTreeMap<String, usize>,
    /// Direct-download archives (dist/ only: `publish` uploads none).
    pub(crate) archives: usize,
    /// SBOM files (in dist/ on their own; `publish` attaches them to the images).
    pub(crate) sboms: usize,
}

impl Contents {
    /// Counts the artifacts of `manifest`.
    pub(crate) fn of(manifest: &Manifest) -> Contents {
        let mut contents = Contents {
            crates: manifest.crates.len(),
            ..Contents::default()
        };
        for artifact in &manifest.artifacts {
            match artifact.kind {
                ArtifactKind::Wheel => contents.wheels += 1,
                ArtifactKind::Sdist => contents.sdists += 1,
                ArtifactKind::NpmPlatform | ArtifactKind::NpmLauncher => {
                    contents.npm_packages += 1;
                }
                ArtifactKind::OciImage => {
                    *contents.images.entry(artifact.app.clone()).or_default() += 1;
                }
                // A partial dist has platform images without their index; a merged one has
                // both: the app counts once either way.
                ArtifactKind::OciIndex => {
                    contents.images.entry(artifact.app.clone()).or_default();
                }
                ArtifactKind::Archive => contents.archives += 1,
                ArtifactKind::Sbom => contents.sboms += 1,
                ArtifactKind::Binary => {}
            }
        }
        contents
    }

    /// The published units: `4 wheels, 5 npm packages, 1 image (2 platforms)`; `nothing to
    /// publish` when there is none.
    pub(crate) fn units(&self) -> String {
        let mut parts = Vec::new();
        if self.crates > 0 {
            parts.push(counted(self.crates, "crate", "crates"));
        }
        if self.wheels > 0 {
            parts.push(counted(self.wheels, "wheel", "wheels"));
        }
        if self.sdists > 0 {
            parts.push(counted(self.sdists, "sdist", "sdists"));
        }
        if self.npm_packages > 0 {
            parts.push(counted(self.npm_packages, "npm package", "npm packages"));
        }
        if !self.images.is_empty() {
            let platforms: usize = self.images.values().sum();
            let platforms = counted(platforms, "platform", "platforms");
            parts.push(format!(
                "{} ({platforms}{})",
                counted(self.images.len(), "image", "images"),
                if self.images.len() > 1 { " in all" } else { "" }
            ));
        }
        if parts.is_empty() {
            "nothing to publish".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// What dist/ holds besides the published units: `4 archives, 4 SBOMs`, or nothing.
    pub(crate) fn extras(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.archives > 0 {
            parts.push(counted(self.archives, "archive", "archives"));
        }
        if self.sboms > 0 {
            parts.push(counted(self.sboms, "SBOM", "SBOMs"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// `1 wheel`, `4 wheels`.
fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// One outcome for a unit from the outcomes of its steps: the one that matters most to
/// whoever reads the summary. A failure, or a step that never ran, leaves the unit
/// incomplete; otherwise anything uploaded makes it `uploaded`, and a unit every step of
/// which was already there is `skipped`.
pub(crate) fn combined(outcomes: impl IntoIterator<Item = StepOutcome>) -> Option<StepOutcome> {
    let rank = |outcome: &StepOutcome| match outcome {
        StepOutcome::Failed => 6,
        StepOutcome::NotRun => 5,
        StepOutcome::Uploaded => 4,
        StepOutcome::AlreadyPresent => 3,
        StepOutcome::WouldUpload => 2,
        StepOutcome::Skipped => 1,
        StepOutcome::Excluded => 0,
    };
    outcomes.into_iter().max_by_key(rank)
}

/// The order outcomes are listed in a summary line.
pub(crate) const OUTCOME_ORDER: [StepOutcome; 7] = [
    StepOutcome::Uploaded,
    StepOutcome::AlreadyPresent,
    StepOutcome::WouldUpload,
    StepOutcome::Skipped,
    StepOutcome::Excluded,
    StepOutcome::Failed,
    StepOutcome::NotRun,
];
