//! The release plan: `cargo metadata` + configuration → apps, artifacts and publish steps with
//! explicit edges. Everything is decided here; `dist` and `publish` only execute it.
//!
//! `plan` reads the workspace table and the command line's narrowing, plans each released
//! package (`app`, with one module per channel under `channels`), then hands the apps to
//! `graph`, which links them and lays out artifacts and steps with their edges. Every problem
//! becomes a `ConfigError` (`diagnostics`) and planning goes on, so all are reported at once.
//! The values live in `model`, a leaf that imports none of its siblings; no child imports
//! from this file, and other crates keep using `castoff_plan::plan::*` through the re-exports.

mod app;
mod build;
mod channels;
mod diagnostics;
mod graph;
mod model;

use cargo_metadata::{Metadata, Package as CargoPackage};

use crate::config::{PackageConfig, WorkspaceConfig};
use crate::error::{ConfigError, PlanError};
use crate::tag::TagPattern;
use crate::target::Target;
use app::{check_unique_names, plan_app, resolve_targets};
use diagnostics::parse_table;
use graph::{assemble, link_dependencies};

pub use model::{
    App, AppId, Artifact, ArtifactId, ArtifactKind, BaseImage, BuildSettings, BuildTool, CRATES_IO,
    Channel, Check, CrateId, CrateRelease, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PROFILE,
    DEFAULT_TARGETS, Deploy, ExtraFile, Healthcheck, LayerCompression, NpmChannel, OciChannel,
    PROBE_PATH, Package, PlanOptions, Port, PortProtocol, Probe, PythonChannel, PythonRequirement,
    Release, RestartPolicy, SkippedCrate, Step, StepId, StepKind, StepKindName, Userland,
};

/// Builds the release plan of a workspace from its `cargo metadata` (`--no-deps` suffices).
pub fn plan(metadata: &Metadata, options: &PlanOptions) -> Result<Release, PlanError> {
    let mut errors = Vec::new();
    let workspace_manifest = metadata
        .workspace_root
        .join("Cargo.toml")
        .into_std_path_buf();
    let workspace_config: WorkspaceConfig = parse_table(
        &metadata.workspace_metadata,
        &workspace_manifest,
        "workspace.metadata.castoff",
        &mut errors,
    )
    .unwrap_or_default();
    let compression_level = match workspace_config.compression_level {
        None => DEFAULT_COMPRESSION_LEVEL,
        Some(level @ 0..=9) => level,
        Some(level) => {
            errors.push(ConfigError {
                file: workspace_manifest.clone(),
                key: "workspace.metadata.castoff.compression-level".to_owned(),
                problem: format!("{level} is not a deflate level"),
                hint: "use 0 (store) to 9 (smallest); the default is 6".to_owned(),
            });
            DEFAULT_COMPRESSION_LEVEL
        }
    };
    let workspace_tag = tag_pattern(
        workspace_config.tag.as_deref(),
        &workspace_manifest,
        "workspace.metadata.castoff.tag",
        &mut errors,
    );
    let workspace_targets = workspace_config.targets.as_ref().map(|triples| {
        resolve_targets(
            triples,
            &workspace_manifest,
            "workspace.metadata.castoff.targets",
            &mut errors,
        )
    });
    let mut workspace_layers = vec![build::Layer {
        file: workspace_manifest.clone(),
        table: "workspace.metadata.castoff".to_owned(),
        config: workspace_config.build_config(),
    }];
    for (triple, config) in &workspace_config.target {
        let table = format!("workspace.metadata.castoff.target.{triple}");
        match triple.parse::<&'static Target>() {
            Ok(_) => workspace_layers.push(build::Layer {
                file: workspace_manifest.clone(),
                table,
                config: config.clone(),
            }),
            Err(unknown) => errors.push(ConfigError {
                file: workspace_manifest.clone(),
                key: table,
                problem: format!("unknown target `{}`", unknown.triple),
                hint: unknown.hint(),
            }),
        }
    }

    // Every released package of the workspace, in the order Cargo lists members. A table
    // holding nothing but `crates` only opts the package out of the crates channel.
    let mut released: Vec<(&CargoPackage, PackageConfig)> = Vec::new();
    let mut crates_opt_outs: Vec<String> = Vec::new();
    for package in metadata.workspace_packages() {
        let Some(table) = package.metadata.get("castoff") else {
            continue;
        };
        let manifest = package.manifest_path.as_std_path();
        if let Some(config) = parse_table::<PackageConfig>(
            &package.metadata,
            manifest,
            "package.metadata.castoff",
            &mut errors,
        ) {
            if config.crates == Some(false) {
                crates_opt_outs.push(package.name.to_string());
            }
            let only_crates = table
                .as_object()
                .is_some_and(|keys| keys.keys().all(|key| key == "crates"));
            if !only_crates {
                released.push((package, config));
            }
        }
    }

    for requested in &options.packages {
        if !released
            .iter()
            .any(|(package, _)| &package.name.to_string() == requested)
        {
            let known: Vec<String> = released.iter().map(|(p, _)| p.name.to_string()).collect();
            errors.push(ConfigError {
                file: workspace_manifest.clone(),
                key: "--package".to_owned(),
                problem: format!("`{requested}` is not a released package of this workspace"),
                hint: if known.is_empty() {
                    "add a [package.metadata.castoff] table to the package to release it".to_owned()
                } else {
                    format!("released packages: {}", known.join(", "))
                },
            });
        }
    }

    let mut apps = Vec::new();
    for (package, config) in &released {
        if !options.packages.is_empty() && !options.packages.contains(&package.name.to_string()) {
            continue;
        }
        let crt_static = config
            .crt_static
            .or(workspace_config.crt_static)
            .unwrap_or(false);
        // Checked whatever else is wrong with the package, so every problem shows at once.
        let tag = match &config.tag {
            Some(_) => tag_pattern(
                config.tag.as_deref(),
                package.manifest_path.as_std_path(),
                "package.metadata.castoff.tag",
                &mut errors,
            ),
            None => workspace_tag.clone(),
        };
        if let Some(app) = plan_app(
            package,
            config,
            &app::Defaults {
                targets: workspace_targets.as_deref(),
                build_layers: &workspace_layers,
                crt_static,
            },
            &released,
            metadata.workspace_root.as_std_path(),
            &mut errors,
        ) {
            apps.push(App { tag, ..app });
        }
    }
    check_unique_names(&apps, &mut errors);
    link_dependencies(&mut apps, &released, &mut errors);

    if !options.targets.is_empty() {
        let mut requested = Vec::new();
        for triple in &options.targets {
            match triple.parse::<&'static Target>() {
                Ok(target) => requested.push(target),
                Err(unknown) => errors.push(ConfigError {
                    file: workspace_manifest.clone(),
                    key: "--target".to_owned(),
                    problem: format!("unknown target `{}`", unknown.triple),
                    hint: unknown.hint(),
                }),
            }
        }
        // A release of crates alone builds for no target: any target leaves it whole.
        for target in &requested {
            if !apps.is_empty() && !apps.iter().any(|app| app.targets.contains(target)) {
                errors.push(ConfigError {
                    file: workspace_manifest.clone(),
                    key: "--target".to_owned(),
                    problem: format!("no released package is built for `{}`", target.triple),
                    hint: "add the target to `targets` in [workspace.metadata.castoff] or [package.metadata.castoff]".to_owned(),
                });
            }
        }
        for app in &mut apps {
            app.targets.retain(|target| requested.contains(target));
        }
    }

    let (crates, crates_skipped) = channels::crates::plan_crates(
        metadata,
        workspace_config.crates.as_ref(),
        &crates_opt_outs,
        &options.packages,
        &workspace_manifest,
        &mut errors,
    );

    if !errors.is_empty() {
        return Err(PlanError { errors });
    }
    let mut release = assemble(
        metadata.workspace_root.clone().into_std_path_buf(),
        metadata.target_directory.clone().into_std_path_buf(),
        apps,
    );
    release.compression_level = compression_level;
    release.crates = crates;
    release.crates_skipped = crates_skipped;
    Ok(release)
}

/// A configured `tag` pattern (none: the default), or the default after recording why the
/// configured one cannot be used.
fn tag_pattern(
    configured: Option<&str>,
    file: &std::path::Path,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> TagPattern {
    match configured.map(str::parse::<TagPattern>) {
        None => TagPattern::default(),
        Some(Ok(pattern)) => pattern,
        Some(Err(refused)) => {
            errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_owned(),
                problem: refused.to_string(),
                hint: refused.hint,
            });
            TagPattern::default()
        }
    }
}
