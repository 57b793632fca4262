//! The crates channel: which workspace members go to a Cargo registry (`workspace.crates`,
//! Cargo's `publish` field, `package.crates = false`) and in which order (each after the
//! members it depends on, so the registry can resolve every dependency when it arrives).

use std::path::Path;

use cargo_metadata::{DependencyKind, Metadata, Package as CargoPackage};

use crate::config::CratesSetting;
use crate::error::ConfigError;
use crate::plan::model::{CRATES_IO, CrateId, CrateRelease, SkippedCrate};

/// The crates to publish in publish order, and the members left out with the reason.
pub(in crate::plan) fn plan_crates(
    metadata: &Metadata,
    setting: Option<&CratesSetting>,
    opt_outs: &[String],
    requested: &[String],
    workspace_manifest: &Path,
    errors: &mut Vec<ConfigError>,
) -> (Vec<CrateRelease>, Vec<SkippedCrate>) {
    let registry = match setting {
        None | Some(CratesSetting::Enabled(false)) => return (Vec::new(), Vec::new()),
        Some(CratesSetting::Enabled(true)) => CRATES_IO.to_owned(),
        Some(CratesSetting::Table(table)) => match table.registry.as_deref() {
            None => CRATES_IO.to_owned(),
            Some(name) if valid_registry_name(name) => name.to_owned(),
            Some(name) => {
                errors.push(ConfigError {
                    file: workspace_manifest.to_owned(),
                    key: "workspace.metadata.castoff.crates.registry".to_owned(),
                    problem: format!("`{name}` is not a Cargo registry name"),
                    hint: "use the name of a `[registries.<name>]` table of your Cargo configuration (letters, digits, `-`, `_`), or leave it out for crates.io".to_owned(),
                });
                return (Vec::new(), Vec::new());
            }
        },
    };
    let members: Vec<&CargoPackage> = metadata.workspace_packages();
    let mut skipped = Vec::new();
    let mut chosen: Vec<&CargoPackage> = Vec::new();
    for package in &members {
        let name = package.name.to_string();
        let reason = match &package.publish {
            Some(list) if list.is_empty() => Some("`publish = false`".to_owned()),
            Some(list) if !list.iter().any(|r| r == &registry) => Some(format!(
                "`publish = [{}]` does not name `{registry}`",
                list.iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ if opt_outs.contains(&name) => {
                Some("`crates = false` in [package.metadata.castoff]".to_owned())
            }
            _ => None,
        };
        match reason {
            Some(reason) => skipped.push(SkippedCrate { name, reason }),
            None => chosen.push(package),
        }
    }

    // The workspace members each chosen crate depends on (normal and build dependencies; a
    // dev-dependency does not need to be on the registry first).
    let member_deps = |package: &CargoPackage| -> Vec<String> {
        package
            .dependencies
            .iter()
            .filter(|dep| dep.kind != DependencyKind::Development && dep.path.is_some())
            .filter(|dep| members.iter().any(|m| m.name.as_str() == dep.name))
            .map(|dep| dep.name.clone())
            .collect()
    };
    for package in &chosen {
        for dep in member_deps(package) {
            if let Some(left_out) = skipped.iter().find(|s| s.name == dep) {
                errors.push(ConfigError {
                    file: package.manifest_path.clone().into_std_path_buf(),
                    key: "workspace.metadata.castoff.crates".to_owned(),
                    problem: format!(
                        "`{}` is published to `{registry}` but depends on `{dep}`, which is not ({})",
                        package.name, left_out.reason
                    ),
                    hint: format!(
                        "publish `{dep}` too, or leave `{}` out (`publish = false` or `[package.metadata.castoff] crates = false`)",
                        package.name
                    ),
                });
            }
        }
    }

    // A registry other than crates.io: each dependency on a member must name it, or the
    // published crate would look for the member on crates.io. Cargo says so only when it
    // packages (after the build); the plan says it first, naming every one.
    if registry != CRATES_IO {
        for package in &chosen {
            for dep in &package.dependencies {
                let on_member = dep.kind != DependencyKind::Development
                    && dep.path.is_some()
                    && members.iter().any(|m| m.name.as_str() == dep.name);
                if on_member && dep.registry.is_none() {
                    errors.push(ConfigError {
                        file: package.manifest_path.clone().into_std_path_buf(),
                        key: format!(
                            "{}.{}",
                            if dep.kind == DependencyKind::Build { "build-dependencies" } else { "dependencies" },
                            dep.name
                        ),
                        problem: format!(
                            "`{}` is published to `{registry}`, but its dependency on `{}` names no registry, so the published crate would look for `{}` on crates.io",
                            package.name, dep.name, dep.name
                        ),
                        hint: format!(
                            "add `registry = \"{registry}\"` beside the dependency's `version` (in `[workspace.dependencies]` when the member inherits it)"
                        ),
                    });
                }
            }
        }
    }

    // `--package` narrows the release: its packages and the crates they depend on.
    if !requested.is_empty() {
        let mut keep: Vec<String> = requested.to_vec();
        let mut next = 0;
        while next < keep.len() {
            let name = keep[next].clone();
            next += 1;
            if let Some(package) = chosen.iter().find(|p| p.name.as_str() == name) {
                for dep in member_deps(package) {
                    if !keep.contains(&dep) {
                        keep.push(dep);
                    }
                }
            }
        }
        chosen.retain(|package| keep.iter().any(|name| package.name.as_str() == name));
    }

    // Dependencies first; otherwise in Cargo's member order. Cargo refuses cycles of normal
    // and build dependencies, so every round places at least one crate.
    let mut ordered: Vec<&CargoPackage> = Vec::new();
    while ordered.len() < chosen.len() {
        let before = ordered.len();
        for package in &chosen {
            if ordered.iter().any(|p| p.name == package.name) {
                continue;
            }
            let ready = member_deps(package).iter().all(|dep| {
                !chosen.iter().any(|p| p.name.as_str() == dep)
                    || ordered.iter().any(|p| p.name.as_str() == dep)
            });
            if ready {
                ordered.push(package);
            }
        }
        if ordered.len() == before {
            break;
        }
    }
    let crates = ordered
        .iter()
        .map(|package| {
            // In publish order, each once (a crate may be both a normal and a build dependency).
            let mut after: Vec<CrateId> = member_deps(package)
                .iter()
                .filter_map(|dep| ordered.iter().position(|p| p.name.as_str() == dep))
                .map(CrateId)
                .collect();
            after.sort();
            after.dedup();
            CrateRelease {
                name: package.name.to_string(),
                version: package.version.clone(),
                manifest_path: package.manifest_path.clone().into_std_path_buf(),
                registry: registry.clone(),
                after,
            }
        })
        .collect();
    (crates, skipped)
}

/// Cargo's rule for a registry's name: letters, digits, `-` and `_`, not empty.
fn valid_registry_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
