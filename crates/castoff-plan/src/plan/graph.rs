//! The edges of the plan: which app waits for which (refusing cycles, naming them), the
//! artifacts and publish steps laid out with their edges, and the order that respects them.

use std::path::PathBuf;

use cargo_metadata::Package as CargoPackage;

use super::model::{
    App, AppId, Artifact, ArtifactId, ArtifactKind, DEFAULT_COMPRESSION_LEVEL, Release, Step,
    StepId, StepKind,
};
use crate::config::PackageConfig;
use crate::error::ConfigError;

impl Release {
    /// Steps in an order that respects every edge (a topological order, stable by index).
    pub fn publish_order(&self) -> Vec<StepId> {
        let mut done = vec![false; self.steps.len()];
        let mut order = Vec::with_capacity(self.steps.len());
        while order.len() < self.steps.len() {
            let before = order.len();
            for (index, step) in self.steps.iter().enumerate() {
                if !done[index] && step.after.iter().all(|after| done[after.0]) {
                    done[index] = true;
                    order.push(StepId(index));
                }
            }
            assert!(order.len() > before, "publish steps form a cycle");
        }
        order
    }
}

/// Resolves npm dependencies between apps, records which app waits for which, and refuses
/// cycles, naming them.
pub(super) fn link_dependencies(
    apps: &mut [App],
    released: &[(&CargoPackage, PackageConfig)],
    errors: &mut Vec<ConfigError>,
) {
    let index_of = |name: &str| apps.iter().position(|app| app.package.name == name);
    let mut links: Vec<Vec<AppId>> = vec![Vec::new(); apps.len()];
    let mut npm_links: Vec<Vec<(String, String)>> = vec![Vec::new(); apps.len()];
    for (app_index, app) in apps.iter().enumerate() {
        let Some((_, config)) = released
            .iter()
            .find(|(p, _)| p.name.as_str() == app.package.name)
        else {
            continue;
        };
        if let Some(python) = &config.python {
            for requirement in &python.requires {
                if let Some(other) = index_of(requirement) {
                    links[app_index].push(AppId(other));
                }
            }
        }
        if let Some(npm) = &config.npm {
            for dependency in &npm.dependencies {
                let other = released
                    .iter()
                    .find(|(p, _)| p.name.as_str() == dependency.as_str());
                match other {
                    Some((other_package, other_config)) if other_config.npm.is_some() => {
                        let other_npm = other_config.npm.as_ref().map(|npm| npm.name.clone().unwrap_or_else(|| other_package.name.to_string()));
                        npm_links[app_index].push((other_npm.unwrap_or_default(), other_package.version.to_string()));
                        if let Some(other) = index_of(dependency) {
                            links[app_index].push(AppId(other));
                        }
                    }
                    Some(_) => errors.push(ConfigError {
                        file: app.package.manifest_path.clone(),
                        key: "package.metadata.castoff.npm.dependencies".to_owned(),
                        problem: format!("`{dependency}` is released without npm packages"),
                        hint: format!("add an `npm` table to [package.metadata.castoff] of `{dependency}`"),
                    }),
                    None => errors.push(ConfigError {
                        file: app.package.manifest_path.clone(),
                        key: "package.metadata.castoff.npm.dependencies".to_owned(),
                        problem: format!("`{dependency}` is not a released package of this workspace"),
                        hint: "name the Cargo package of another app that has a [package.metadata.castoff] table".to_owned(),
                    }),
                }
            }
        }
    }
    for (app_index, app) in apps.iter_mut().enumerate() {
        links[app_index].sort();
        links[app_index].dedup();
        app.depends_on = links[app_index].clone();
        if let Some(npm) = &mut app.npm {
            npm.dependencies = std::mem::take(&mut npm_links[app_index]);
        }
    }
    if let Some(cycle) = find_cycle(&links) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|id| apps[id.0].package.name.as_str())
            .collect();
        let first = &apps[cycle[0].0];
        errors.push(ConfigError {
            file: first.package.manifest_path.clone(),
            key: "package.metadata.castoff".to_owned(),
            problem: format!("dependency cycle between released packages: {}", names.join(" -> ")),
            hint: "remove one of these dependencies (`python.requires` or `npm.dependencies`) so each package can be published after the ones it needs".to_owned(),
        });
    }
}

/// A cycle in the app graph, as the path `a, b, …, a`, if there is one.
fn find_cycle(links: &[Vec<AppId>]) -> Option<Vec<AppId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        node: usize,
        links: &[Vec<AppId>],
        marks: &mut [Mark],
        stack: &mut Vec<AppId>,
    ) -> Option<Vec<AppId>> {
        marks[node] = Mark::OnStack;
        stack.push(AppId(node));
        for next in &links[node] {
            match marks[next.0] {
                Mark::OnStack => {
                    let start = stack.iter().position(|id| id == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(*next);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next.0, links, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[node] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; links.len()];
    for node in 0..links.len() {
        if marks[node] == Mark::New
            && let Some(cycle) = visit(node, links, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// Lays out artifacts and publish steps with their edges.
pub(super) fn assemble(
    workspace_root: PathBuf,
    target_directory: PathBuf,
    apps: Vec<App>,
) -> Release {
    let mut artifacts: Vec<Artifact> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let push_artifact = |artifacts: &mut Vec<Artifact>, artifact: Artifact| {
        artifacts.push(artifact);
        ArtifactId(artifacts.len() - 1)
    };
    // Per app: the steps other apps must wait for, by channel (every destination).
    let mut pypi_steps: Vec<Vec<StepId>> = vec![Vec::new(); apps.len()];
    let mut npm_launcher_steps: Vec<Vec<StepId>> = vec![Vec::new(); apps.len()];

    // Apps in dependency order, so a dependent app's edges can name its dependencies' steps.
    let mut order: Vec<usize> = Vec::new();
    while order.len() < apps.len() {
        for (index, app) in apps.iter().enumerate() {
            if !order.contains(&index) && app.depends_on.iter().all(|dep| order.contains(&dep.0)) {
                order.push(index);
            }
        }
    }

    for &app_index in &order {
        let app = &apps[app_index];
        let id = AppId(app_index);
        let artifact = |kind, target, inputs| Artifact {
            kind,
            app: id,
            target,
            inputs,
        };

        // Artifacts first: what `dist` builds.
        let mut wheels = Vec::new();
        let mut platform_packages = Vec::new();
        let mut images = Vec::new();
        for &target in &app.targets {
            let binary = push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Binary, Some(target), Vec::new()),
            );
            let sbom = push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Sbom, Some(target), vec![binary]),
            );
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Archive, Some(target), vec![binary]),
            );
            if app.python.is_some() {
                wheels.push(push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::Wheel, Some(target), vec![binary]),
                ));
            }
            if app.npm.is_some() {
                platform_packages.push(push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::NpmPlatform, Some(target), vec![binary]),
                ));
            }
            if app.oci.as_ref().is_some_and(|oci| oci.has_image(target)) {
                let image = push_artifact(
                    &mut artifacts,
                    artifact(ArtifactKind::OciImage, Some(target), vec![binary]),
                );
                images.push((image, sbom));
            }
        }
        let sdist = app.python.as_ref().filter(|python| python.sdist).map(|_| {
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::Sdist, None, Vec::new()),
            )
        });
        let launcher = (!platform_packages.is_empty()).then(|| {
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::NpmLauncher, None, platform_packages.clone()),
            )
        });
        let index = (!images.is_empty()).then(|| {
            let inputs = images.iter().map(|(image, _)| *image).collect();
            push_artifact(
                &mut artifacts,
                artifact(ArtifactKind::OciIndex, None, inputs),
            )
        });

        // Then the publish steps, once per destination; a later destination of the same
        // artifact waits for the earlier one (TestPyPI before PyPI, GHCR before Docker Hub).
        let push_step =
            |steps: &mut Vec<Step>, kind, artifact, after, destination: &Option<String>| {
                steps.push(Step {
                    kind,
                    app: id,
                    artifact,
                    after,
                    destination: destination.clone(),
                });
                StepId(steps.len() - 1)
            };
        if let Some(python) = &app.python {
            let python_after: Vec<StepId> = app
                .depends_on
                .iter()
                .flat_map(|dep| pypi_steps[dep.0].clone())
                .collect();
            // The sdist goes with the wheels, after them: until every wheel is on the index, a
            // platform that is about to get one would otherwise build from source.
            let files: Vec<ArtifactId> = wheels.iter().copied().chain(sdist).collect();
            let mut previous: Vec<Option<StepId>> = vec![None; files.len()];
            for destination in destinations(&python.repositories) {
                let mut wheel_steps = Vec::new();
                for (wheel, earlier) in files.iter().zip(previous.iter_mut()) {
                    let mut after = python_after.clone();
                    after.extend(*earlier);
                    if Some(*wheel) == sdist {
                        after.extend(wheel_steps.iter().copied());
                    }
                    let step = push_step(
                        &mut steps,
                        StepKind::PypiUpload,
                        *wheel,
                        after,
                        &destination,
                    );
                    *earlier = Some(step);
                    wheel_steps.push(step);
                    pypi_steps[app_index].push(step);
                }
            }
        }
        if let (Some(npm), Some(launcher)) = (&app.npm, launcher) {
            let dependency_launchers: Vec<StepId> = app
                .depends_on
                .iter()
                .flat_map(|dep| npm_launcher_steps[dep.0].clone())
                .collect();
            let mut previous: Vec<Option<StepId>> = vec![None; platform_packages.len()];
            let mut previous_launcher = None;
            for destination in destinations(&npm.registries) {
                let mut after = Vec::new();
                for (package, earlier) in platform_packages.iter().zip(previous.iter_mut()) {
                    let step = push_step(
                        &mut steps,
                        StepKind::NpmPublish,
                        *package,
                        earlier.iter().copied().collect(),
                        &destination,
                    );
                    *earlier = Some(step);
                    after.push(step);
                }
                // The launcher names every platform package: it goes last.
                after.extend(dependency_launchers.iter().copied());
                after.extend(previous_launcher);
                let step = push_step(
                    &mut steps,
                    StepKind::NpmPublish,
                    launcher,
                    after,
                    &destination,
                );
                previous_launcher = Some(step);
                npm_launcher_steps[app_index].push(step);
            }
        }
        if let (Some(oci), Some(index)) = (&app.oci, index) {
            let mut previous_images: Vec<Option<StepId>> = vec![None; images.len()];
            let mut previous_index = None;
            let mut previous_tags: Vec<Option<StepId>> = vec![None; oci.tags.len()];
            let repositories = std::iter::once(None).chain(oci.mirrors.iter().cloned().map(Some));
            for destination in repositories {
                let mut image_steps = Vec::new();
                for ((image, sbom), earlier) in images.iter().zip(previous_images.iter_mut()) {
                    let step = push_step(
                        &mut steps,
                        StepKind::OciPushImage,
                        *image,
                        earlier.iter().copied().collect(),
                        &destination,
                    );
                    *earlier = Some(step);
                    image_steps.push(step);
                    // The SBOM is an OCI 1.1 artifact whose `subject` is the image manifest.
                    push_step(
                        &mut steps,
                        StepKind::OciAttachSbom,
                        *sbom,
                        vec![step],
                        &destination,
                    );
                }
                let mut after = image_steps;
                after.extend(previous_index);
                let index_step = push_step(
                    &mut steps,
                    StepKind::OciPushIndex,
                    index,
                    after,
                    &destination,
                );
                previous_index = Some(index_step);
                for (tag, earlier) in oci.tags.iter().zip(previous_tags.iter_mut()) {
                    let mut after = vec![index_step];
                    after.extend(*earlier);
                    *earlier = Some(push_step(
                        &mut steps,
                        StepKind::OciTag(tag.clone()),
                        index,
                        after,
                        &destination,
                    ));
                }
            }
        }
    }
    Release {
        workspace_root,
        target_directory,
        apps,
        artifacts,
        steps,
        compression_level: DEFAULT_COMPRESSION_LEVEL,
        crates: Vec::new(),
        crates_skipped: Vec::new(),
    }
}

/// A channel's destinations: the configured ones, or the single default (`None`).
fn destinations(configured: &[String]) -> Vec<Option<String>> {
    if configured.is_empty() {
        vec![None]
    } else {
        configured.iter().cloned().map(Some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles() {
        let links = vec![vec![AppId(1)], vec![AppId(2)], vec![AppId(0)]];
        assert_eq!(
            find_cycle(&links),
            Some(vec![AppId(0), AppId(1), AppId(2), AppId(0)])
        );
        let links = vec![vec![AppId(1)], vec![], vec![AppId(0), AppId(1)]];
        assert_eq!(find_cycle(&links), None);
    }
}
