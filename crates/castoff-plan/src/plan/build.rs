//! Build settings: the four tables that may set them (the workspace's, its `target.<triple>`,
//! the package's, its `target.<triple>`), layered per app and target into `BuildSettings`,
//! and every value or combination Cargo or cargo-zigbuild would refuse, reported as a
//! `ConfigError` naming the table that set it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_metadata::Package as CargoPackage;

use super::model::{BuildSettings, BuildTool, DEFAULT_PROFILE};
use crate::config::BuildConfig;
use crate::error::ConfigError;
use crate::target::{Libc, Os, Target};

/// One table that may hold build settings, with where it is written.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub(super) file: PathBuf,
    /// `workspace.metadata.castoff` or `package.metadata.castoff.target.<triple>`.
    pub(super) table: String,
    pub(super) config: BuildConfig,
}

/// The key-by-key winner among the layers (last one that sets a key wins).
struct Resolved<'a> {
    layers: Vec<&'a Layer>,
}

impl<'a> Resolved<'a> {
    fn winner<T>(&self, get: impl Fn(&'a BuildConfig) -> Option<T>) -> Option<(T, &'a Layer)> {
        self.layers
            .iter()
            .rev()
            .find_map(|layer| get(&layer.config).map(|value| (value, *layer)))
    }
}

/// Arguments of `cargo build` that castoff decides itself, with the key that sets them.
const CONTROLLED_ARGS: &[(&str, &str)] = &[
    ("--release", "profile"),
    ("-r", "profile"),
    ("--profile", "profile"),
    ("--features", "features"),
    ("-F", "features"),
    ("--all-features", "all-features"),
    ("--no-default-features", "no-default-features"),
    ("--target", "targets"),
    (
        "--target-dir",
        "the Cargo configuration (`build.target-dir`)",
    ),
    (
        "--manifest-path",
        "the package's [package.metadata.castoff] table",
    ),
    (
        "--package",
        "the package's [package.metadata.castoff] table",
    ),
    ("-p", "the package's [package.metadata.castoff] table"),
    (
        "--workspace",
        "the package's [package.metadata.castoff] table",
    ),
    ("--bin", "bins"),
    ("--bins", "bins"),
    ("--lib", "bins"),
    ("--example", "bins"),
    ("--examples", "bins"),
    ("--all-targets", "bins"),
    (
        "--message-format",
        "nothing: castoff reads cargo's output itself",
    ),
];

/// Environment variables castoff sets or relies on for `cargo build`.
const CONTROLLED_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
];

/// Settings of every target of one app; errors go to `errors` (each once).
pub(super) fn resolve_builds(
    package: &CargoPackage,
    workspace: &[Layer],
    own: &Layer,
    own_targets: &BTreeMap<String, BuildConfig>,
    targets: &[&'static Target],
    crt_static: bool,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<&'static str, BuildSettings> {
    let mut push = |file: &Path, key: String, problem: String, hint: String| {
        let error = ConfigError {
            file: file.to_owned(),
            key,
            problem,
            hint,
        };
        if !errors.contains(&error) {
            errors.push(error);
        }
    };

    for triple in own_targets.keys() {
        if !targets.iter().any(|target| target.triple == triple) {
            push(
                &own.file,
                format!("{}.target.{triple}", own.table),
                format!(
                    "`{triple}` is not one of the targets of package `{}`",
                    package.name
                ),
                format!(
                    "the package's targets are: {}; add the target to `targets` or remove the table",
                    targets
                        .iter()
                        .map(|t| t.triple)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    let mut builds = BTreeMap::new();
    for &target in targets {
        let own_target = own_targets.get(target.triple).map(|config| Layer {
            file: own.file.clone(),
            table: format!("{}.target.{}", own.table, target.triple),
            config: config.clone(),
        });
        let mut layers: Vec<&Layer> = workspace
            .iter()
            .filter(|layer| {
                !layer.table.contains(".target.") || layer.table.ends_with(target.triple)
            })
            .collect();
        layers.push(own);
        layers.extend(own_target.as_ref());
        let resolved = Resolved { layers };
        builds.insert(
            target.triple,
            settings(package, target, crt_static, &resolved, &mut push),
        );
    }
    builds
}

fn settings(
    package: &CargoPackage,
    target: &Target,
    crt_static: bool,
    resolved: &Resolved<'_>,
    push: &mut impl FnMut(&Path, String, String, String),
) -> BuildSettings {
    let key = |layer: &Layer, name: &str| format!("{}.{name}", layer.table);
    let mut settings = BuildSettings {
        crt_static: crt_static && target.libc == Some(Libc::Glibc),
        ..BuildSettings::default()
    };

    if let Some((tool, layer)) = resolved.winner(|c| c.build.as_deref()) {
        settings.tool = match tool {
            "cargo" => BuildTool::Cargo,
            "zigbuild" => BuildTool::Zigbuild,
            other => {
                push(
                    &layer.file,
                    key(layer, "build"),
                    format!("`{other}` is not a way castoff builds"),
                    "use \"cargo\" (the default) or \"zigbuild\" (cargo-zigbuild, for cross builds and a glibc floor)".to_owned(),
                );
                BuildTool::Cargo
            }
        };
        if settings.tool == BuildTool::Zigbuild && target.os == Os::Windows {
            push(
                &layer.file,
                key(layer, "build"),
                format!(
                    "cargo-zigbuild cannot build `{}`: zig links the GNU ABI, not MSVC",
                    target.triple
                ),
                format!(
                    "set `build = \"cargo\"` in [{}.target.{}] and build it on a Windows runner, or pass a binary built elsewhere with `dist --prebuilt`",
                    layer.table.split(".target.").next().unwrap_or(&layer.table),
                    target.triple
                ),
            );
        }
    }

    if let Some((profile, layer)) = resolved.winner(|c| c.profile.as_deref()) {
        let valid = !profile.is_empty()
            && profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            push(
                &layer.file,
                key(layer, "profile"),
                format!("`{profile}` is not a Cargo profile name"),
                "a profile name has only letters, digits, `-` and `_`, e.g. \"release-lto\" from [profile.release-lto]".to_owned(),
            );
        } else if profile == "debug" {
            push(
                &layer.file,
                key(layer, "profile"),
                "`debug` is not a Cargo profile (Cargo reserves the name)".to_owned(),
                "the development profile is called \"dev\"; a release should use \"release\" or a profile of its own".to_owned(),
            );
        } else {
            settings.profile = profile.to_owned();
        }
    } else {
        settings.profile = DEFAULT_PROFILE.to_owned();
    }

    let all_features = resolved.winner(|c| c.all_features);
    let no_default = resolved.winner(|c| c.no_default_features);
    let features = resolved.winner(|c| c.features.as_ref());
    settings.all_features = all_features.is_some_and(|(on, _)| on);
    settings.no_default_features = no_default.is_some_and(|(on, _)| on);
    if let Some((features, layer)) = features {
        let known: Vec<&str> = package.features.keys().map(String::as_str).collect();
        let dependencies: Vec<&str> = package
            .dependencies
            .iter()
            .map(|d| d.rename.as_deref().unwrap_or(&d.name))
            .collect();
        for feature in features {
            let (dependency, own) = match feature.split_once('/') {
                Some((dependency, _)) => (Some(dependency), None),
                None => (None, Some(feature.as_str())),
            };
            // An optional dependency is a feature of its own, unless a feature names it as
            // `dep:<name>` (which hides it).
            let optional_dependency =
                package.dependencies.iter().any(|d| {
                    d.optional && d.rename.as_deref().unwrap_or(&d.name) == feature.as_str()
                }) && !package
                    .features
                    .values()
                    .flatten()
                    .any(|value| value.strip_prefix("dep:") == Some(feature.as_str()));
            let problem = match (dependency, own) {
                (Some(dependency), _) if !dependencies.contains(&dependency) => Some((
                    format!(
                        "`{feature}`: `{dependency}` is not a dependency of package `{}`",
                        package.name
                    ),
                    format!(
                        "`<dependency>/<feature>` names a feature of a dependency; dependencies of `{}`: {}",
                        package.name,
                        dependencies.join(", ")
                    ),
                )),
                (None, Some(own)) if !known.contains(&own) && !optional_dependency => Some((
                    format!("package `{}` has no feature `{feature}`", package.name),
                    if known.is_empty() {
                        format!("`{}` defines no [features]; remove the key", package.name)
                    } else {
                        format!("features of `{}`: {}", package.name, known.join(", "))
                    },
                )),
                _ => None,
            };
            if let Some((problem, hint)) = problem {
                push(&layer.file, key(layer, "features"), problem, hint);
            }
        }
        settings.features = features.clone();
    }
    if settings.all_features {
        let (_, all_layer) = all_features.expect("set");
        if !settings.features.is_empty() {
            push(
                &all_layer.file,
                key(all_layer, "all-features"),
                format!(
                    "`all-features = true` and `features = [{}]` both apply to package `{}`",
                    settings
                        .features
                        .iter()
                        .map(|f| format!("\"{f}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    package.name
                ),
                "all-features already turns on every feature: keep one of the two keys".to_owned(),
            );
        }
        if settings.no_default_features {
            push(
                &all_layer.file,
                key(all_layer, "all-features"),
                format!(
                    "`all-features = true` and `no-default-features = true` both apply to package `{}`",
                    package.name
                ),
                "all-features turns the default features on again: keep one of the two keys"
                    .to_owned(),
            );
        }
    }

    if let Some((env, layer)) = resolved.winner(|c| c.build_env.as_ref()) {
        for name in env.keys() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                push(
                    &layer.file,
                    format!("{}.build-env.{name}", layer.table),
                    format!("`{name}` is not an environment variable name"),
                    "use letters, digits and `_`, not starting with a digit".to_owned(),
                );
            } else if CONTROLLED_ENV.contains(&name.as_str()) {
                push(
                    &layer.file,
                    format!("{}.build-env.{name}", layer.table),
                    format!(
                        "castoff decides `{name}` itself: dist takes the binaries from Cargo's target directory for the target"
                    ),
                    "set the target directory in .cargo/config.toml (`build.target-dir`) or CARGO_TARGET_DIR around castoff, and remove the entry".to_owned(),
                );
            }
        }
        settings.build_env = env.clone();
    }

    if let Some((args, layer)) = resolved.winner(|c| c.cargo_args.as_ref()) {
        for arg in args {
            let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
            if let Some((_, instead)) = CONTROLLED_ARGS
                .iter()
                .find(|(known, _)| *known == flag || (known.len() == 2 && flag.starts_with(known)))
            {
                push(
                    &layer.file,
                    key(layer, "cargo-args"),
                    format!("`{arg}` is decided by castoff, not by `cargo-args`"),
                    format!("set it with {}", key_name(instead)),
                );
            }
        }
        settings.cargo_args = args.clone();
    }

    if let Some((glibc, layer)) = resolved.winner(|c| c.glibc.as_deref()) {
        let from_target_table = layer.table.ends_with(&format!(".target.{}", target.triple));
        let floor = glibc
            .strip_prefix("2.")
            .and_then(|minor| minor.parse::<u32>().ok())
            .filter(|minor| glibc == format!("2.{minor}"));
        if target.libc != Some(Libc::Glibc) {
            if from_target_table {
                push(
                    &layer.file,
                    key(layer, "glibc"),
                    format!(
                        "`{}` does not link glibc, so it has no glibc floor",
                        target.triple
                    ),
                    "remove `glibc` from this target's table; it applies to `*-linux-gnu*` targets"
                        .to_owned(),
                );
            }
        } else if floor.is_none_or(|minor| minor < 17) {
            push(
                &layer.file,
                key(layer, "glibc"),
                format!("`{glibc}` is not a glibc version castoff can build for"),
                "write `2.N` with N at least 17 (zig's oldest glibc and manylinux2014's), e.g. \"2.17\"".to_owned(),
            );
        } else if settings.tool != BuildTool::Zigbuild {
            push(
                &layer.file,
                key(layer, "glibc"),
                format!(
                    "a glibc floor of {glibc} for {} of `{}` needs zig, but it is built with cargo",
                    target.triple, package.name
                ),
                "add `build = \"zigbuild\"` next to it (cargo-zigbuild links against that glibc version), or remove `glibc`".to_owned(),
            );
        } else if crt_static {
            push(
                &layer.file,
                key(layer, "glibc"),
                format!(
                    "{} of `{}` is linked statically (`crt-static`), so it has no glibc floor",
                    target.triple, package.name
                ),
                "remove `glibc`, or turn `crt-static` off to link glibc dynamically".to_owned(),
            );
        } else {
            settings.glibc = Some(glibc.to_owned());
        }
    }
    settings
}

fn key_name(instead: &str) -> String {
    if instead.contains(' ') {
        instead.to_owned()
    } else {
        format!("the `{instead}` key")
    }
}
