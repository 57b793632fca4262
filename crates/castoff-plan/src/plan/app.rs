//! One released package planned on its own: binaries, targets, its channels and the Cargo facts
//! the builders need; then the names the apps of a release must not share.

use std::collections::BTreeMap;
use std::path::Path;

use cargo_metadata::{Package as CargoPackage, TargetKind};

use super::build::{Layer, resolve_builds};
use super::channels::{npm::plan_npm, oci::plan_oci, python::plan_python};
use super::model::{App, DEFAULT_TARGETS, Package};
use crate::config::PackageConfig;
use crate::error::ConfigError;
use crate::names;
use crate::target::Target;

pub(super) fn resolve_targets(
    triples: &[String],
    file: &Path,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<&'static Target> {
    let mut targets = Vec::new();
    for triple in triples {
        match triple.parse::<&'static Target>() {
            Ok(target) if targets.contains(&target) => errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_owned(),
                problem: format!("target `{triple}` is listed twice"),
                hint: "list each target once".to_owned(),
            }),
            Ok(target) => targets.push(target),
            Err(unknown) => errors.push(ConfigError {
                file: file.to_owned(),
                key: key.to_owned(),
                problem: format!("unknown target `{}`", unknown.triple),
                hint: format!(
                    "supported targets are: {}",
                    Target::all()
                        .iter()
                        .map(|t| t.triple)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    if triples.is_empty() {
        errors.push(ConfigError {
            file: file.to_owned(),
            key: key.to_owned(),
            problem: "the list of targets is empty".to_owned(),
            hint: "name at least one target, or remove the key to use the defaults".to_owned(),
        });
    }
    targets
}

/// What the workspace table decides for every package, unless the package overrides it.
pub(super) struct Defaults<'a> {
    pub(super) targets: Option<&'a [&'static Target]>,
    /// The workspace table's build settings and its `target.<triple>` tables.
    pub(super) build_layers: &'a [Layer],
    /// `crt-static`, already resolved for this package.
    pub(super) crt_static: bool,
}

/// Everything about one released package except its links to other apps.
pub(super) fn plan_app(
    package: &CargoPackage,
    config: &PackageConfig,
    defaults: &Defaults<'_>,
    released: &[(&CargoPackage, PackageConfig)],
    workspace_root: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<App> {
    let manifest = package.manifest_path.as_std_path();
    let key = |name: &str| format!("package.metadata.castoff.{name}");
    let error_count = errors.len();
    let mut error = |key: String, problem: String, hint: String| {
        errors.push(ConfigError {
            file: manifest.to_owned(),
            key,
            problem,
            hint,
        });
    };

    let cargo_bins: Vec<String> = package
        .targets
        .iter()
        .filter(|target| target.kind.contains(&TargetKind::Bin))
        .map(|target| target.name.clone())
        .collect();
    let bins = match &config.bins {
        Some(bins) => {
            for bin in bins {
                if !cargo_bins.contains(bin) {
                    error(
                        key("bins"),
                        format!("`{bin}` is not a binary of package `{}`", package.name),
                        if cargo_bins.is_empty() {
                            "the package has no [[bin]] target; add one (src/main.rs) or remove the castoff table".to_owned()
                        } else {
                            format!("binaries of `{}`: {}", package.name, cargo_bins.join(", "))
                        },
                    );
                }
            }
            if bins.is_empty() {
                error(
                    key("bins"),
                    "the list of binaries is empty".to_owned(),
                    "name at least one binary, or remove the key to ship all of them".to_owned(),
                );
            }
            bins.clone()
        }
        None if cargo_bins.is_empty() => {
            error(
                "package.metadata.castoff".to_owned(),
                format!("package `{}` has no binary to release", package.name),
                "add a [[bin]] target (src/main.rs) or remove the [package.metadata.castoff] table"
                    .to_owned(),
            );
            Vec::new()
        }
        None => cargo_bins.clone(),
    };
    if let Some(smoke) = config.verify.as_ref().and_then(|v| v.smoke.as_ref()) {
        match smoke.first() {
            None => error(
                key("verify.smoke"),
                "the smoke command is empty".to_owned(),
                format!(
                    "name a binary and its arguments, e.g. [\"{}\", \"--version\"], or remove the key to run each binary with --version",
                    bins.first().map_or("app", String::as_str)
                ),
            ),
            Some(bin) if !bins.contains(bin) => error(
                key("verify.smoke"),
                format!(
                    "the smoke command starts with `{bin}`, which this package does not release"
                ),
                format!("start it with one of its binaries: {}", bins.join(", ")),
            ),
            Some(_) => {}
        }
    }

    let targets = match (&config.targets, defaults.targets) {
        (Some(triples), _) => {
            let mut target_errors = Vec::new();
            let targets = resolve_targets(triples, manifest, &key("targets"), &mut target_errors);
            for target_error in target_errors {
                error(target_error.key, target_error.problem, target_error.hint);
            }
            targets
        }
        (None, Some(targets)) => targets.to_vec(),
        (None, None) => DEFAULT_TARGETS
            .iter()
            .map(|triple| triple.parse().expect("default targets are in the table"))
            .collect(),
    };

    let version = package.version.clone();
    let python = config
        .python
        .as_ref()
        .and_then(|python| plan_python(package, python, &version, &targets, released, &mut error));
    let npm = config
        .npm
        .as_ref()
        .and_then(|npm| plan_npm(package, npm, &version, &mut error));
    let oci = config.oci.as_ref().and_then(|oci| {
        plan_oci(
            package,
            oci,
            &version,
            &bins,
            &targets,
            workspace_root,
            &mut error,
        )
    });

    let readme = package.readme.as_ref().map(|readme| {
        package
            .manifest_path
            .parent()
            .map_or_else(|| readme.clone(), |dir| dir.join(readme))
            .into_std_path_buf()
    });
    let license_file = package.license_file.as_ref().map(|file| {
        package
            .manifest_path
            .parent()
            .map_or_else(|| file.clone(), |dir| dir.join(file))
            .into_std_path_buf()
    });

    let own_layer = Layer {
        file: manifest.to_owned(),
        table: "package.metadata.castoff".to_owned(),
        config: config.build_config(),
    };
    let builds = resolve_builds(
        package,
        defaults.build_layers,
        &own_layer,
        &config.target,
        &targets,
        defaults.crt_static,
        errors,
    );

    // The sdist builds one binary wherever it is installed: with the features and profile of
    // the wheels, which must then be one set for every target.
    if let Some(python) = &python
        && python.sdist
        && let Some(problem) = differing_sdist_settings(&targets, &builds)
    {
        errors.push(ConfigError {
            file: manifest.to_owned(),
            key: "package.metadata.castoff.python.sdist".to_owned(),
            problem: format!(
                "the wheels of `{}` are built with different settings per target ({problem}), so a source distribution cannot build the same binary as the wheels",
                package.name
            ),
            hint: "set `python.sdist = false` in [package.metadata.castoff], or give every target the same `features`, `all-features`, `no-default-features` and `profile`".to_owned(),
        });
    }

    // A dynamic glibc build cannot start in an image without a C library: known now, before
    // the build, not after it. Only on an otherwise sound configuration: a misspelled or
    // wrong `crt-static`, already reported, would make this one noise.
    if let Some(oci) = &oci
        && oci.base == crate::plan::model::BaseImage::Scratch
        && errors.is_empty()
    {
        for target in &oci.targets {
            let static_build = builds
                .get(target.triple)
                .is_some_and(|build| build.crt_static);
            if target.libc == Some(crate::target::Libc::Glibc) && !static_build {
                let musl = target
                    .triple
                    .replace("-gnueabihf", "-musleabihf")
                    .replace("-gnu", "-musl");
                errors.push(ConfigError {
                    file: manifest.to_owned(),
                    key: "package.metadata.castoff.oci".to_owned(),
                    problem: format!(
                        "the image for {} holds the {} build, which links glibc dynamically, and the `scratch` base has no C library to run it",
                        target.oci.map_or_else(String::new, |p| p.to_string()),
                        target.triple
                    ),
                    hint: format!(
                        "set `crt-static = true` (a static glibc build), add `{musl}` to `targets` (the image then takes it), or set `oci.base` to an image with glibc, e.g. gcr.io/distroless/cc-debian12 pinned by digest"
                    ),
                });
            }
        }
    }

    if errors.len() > error_count {
        return None;
    }
    Some(App {
        package: Package {
            name: package.name.to_string(),
            version,
            manifest_path: manifest.to_owned(),
            description: package.description.clone(),
            // Cargo still accepts the legacy `MIT/Apache-2.0`; every registry (and SPDX) spells
            // it `MIT OR Apache-2.0`: one spelling for the wheel, the npm packages, the image
            // label and the SBOM.
            license: package.license.as_deref().map(spdx_license),
            license_file,
            repository: package.repository.clone(),
            homepage: package.homepage.clone(),
            documentation: package.documentation.clone(),
            readme,
            keywords: package.keywords.clone(),
            authors: package.authors.clone(),
            rust_version: package.rust_version.as_ref().map(ToString::to_string),
        },
        bins,
        targets,
        crt_static: defaults.crt_static,
        builds,
        python,
        npm,
        oci,
        depends_on: Vec::new(),
        tag: Default::default(),
        verify: config.verify.clone().unwrap_or_default(),
    })
}

/// The first difference in what an sdist's build takes from the wheels' builds (features,
/// `all-features`, `no-default-features`, profile) between two targets, if any.
fn differing_sdist_settings(
    targets: &[&'static Target],
    builds: &BTreeMap<&'static str, crate::plan::model::BuildSettings>,
) -> Option<String> {
    let describe = |build: &crate::plan::model::BuildSettings| {
        let mut features = build.features.clone();
        features.sort();
        format!(
            "profile `{}`, features [{}]{}{}",
            build.profile,
            features.join(", "),
            if build.all_features {
                ", all-features"
            } else {
                ""
            },
            if build.no_default_features {
                ", no-default-features"
            } else {
                ""
            }
        )
    };
    let mut first: Option<(&str, String)> = None;
    for target in targets {
        let Some(build) = builds.get(target.triple) else {
            continue;
        };
        let settings = describe(build);
        match &first {
            None => first = Some((target.triple, settings)),
            Some((triple, known)) if *known != settings => {
                return Some(format!("{triple}: {known}; {}: {settings}", target.triple));
            }
            Some(_) => {}
        }
    }
    None
}

pub(super) fn check_unique_names(apps: &[App], errors: &mut Vec<ConfigError>) {
    let mut seen: BTreeMap<(String, String), &App> = BTreeMap::new();
    for app in apps {
        let mut names = Vec::new();
        if let Some(python) = &app.python {
            names.push(("python.name", names::normalize_pypi_name(&python.name)));
        }
        if let Some(npm) = &app.npm {
            names.push(("npm.name", npm.name.clone()));
        }
        if let Some(oci) = &app.oci {
            names.push(("oci.repository", oci.repository.clone()));
        }
        for (key, name) in names {
            if let Some(first) = seen.insert((key.to_owned(), name.clone()), app) {
                errors.push(ConfigError {
                    file: app.package.manifest_path.clone(),
                    key: format!("package.metadata.castoff.{key}"),
                    problem: format!("`{name}` is also used by package `{}`", first.package.name),
                    hint: "give each released package its own name in every channel".to_owned(),
                });
            }
        }
    }
}

/// Cargo's `license` as an SPDX expression: the legacy `/` separator (`MIT/Apache-2.0`) becomes
/// ` OR `; an expression already in SPDX form is kept as written.
fn spdx_license(license: &str) -> String {
    if !license.contains('/') {
        return license.to_owned();
    }
    license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ")
}

#[cfg(test)]
mod license_tests {
    #[test]
    fn legacy_slashes_become_or() {
        assert_eq!(super::spdx_license("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(super::spdx_license("MIT / Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(super::spdx_license("Unlicense OR MIT"), "Unlicense OR MIT");
    }
}
