//! The wheel channel: distribution and module names, indexes, the PEP 440 version and
//! `Requires-Dist`, where a requirement naming another released app is pinned to its version.

use cargo_metadata::Package as CargoPackage;
use semver::Version;

use crate::config::{PackageConfig, PythonConfig};
use crate::names;
use crate::plan::diagnostics::{upload_limit, version_error};
use crate::plan::model::{PythonChannel, PythonRequirement};
use crate::target::{Libc, Target};
use crate::version;

pub(in crate::plan) fn plan_python(
    package: &CargoPackage,
    config: &PythonConfig,
    version: &Version,
    targets: &[&'static Target],
    released: &[(&CargoPackage, PackageConfig)],
    error: &mut impl FnMut(String, String, String),
) -> Option<PythonChannel> {
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| package.name.to_string());
    if let Err(problem) = names::check_pypi_name(&name) {
        error(
            "package.metadata.castoff.python.name".to_owned(),
            format!("`{name}`: {problem}"),
            "choose a name such as `my-tool`".to_owned(),
        );
    }
    for (index, repository) in config.repositories.iter().enumerate() {
        let redacted = names::redact_userinfo(repository);
        if redacted != *repository {
            error(
                format!("package.metadata.castoff.python.repositories[{index}]"),
                format!("`{redacted}`: credentials written into the URL are refused (they would show in the plan, dist/manifest.json and logs)"),
                "remove `user:password@`; `publish` takes the credentials from CASTOFF_PYPI_TOKEN, TWINE_USERNAME/TWINE_PASSWORD or the ~/.pypirc section of that name".to_owned(),
            );
        } else if repository.trim().is_empty() || config.repositories[..index].contains(repository)
        {
            error(
                format!("package.metadata.castoff.python.repositories[{index}]"),
                format!("`{repository}` is empty or listed twice"),
                "list each index once: `pypi`, `testpypi`, a ~/.pypirc section or an upload URL"
                    .to_owned(),
            );
        }
    }
    let module = config
        .module
        .clone()
        .unwrap_or_else(|| names::wheel_distribution_name(&name));
    if let Err(problem) = names::check_python_module(&module) {
        error(
            "package.metadata.castoff.python.module".to_owned(),
            format!("`{module}`: {problem}"),
            "set `module` to an identifier such as `my_tool`".to_owned(),
        );
    }
    let pep440 = match version::pep440(version) {
        Ok(pep440) => pep440,
        Err(refusal) => {
            version_error(error, refusal);
            return None;
        }
    };
    let mut requires = Vec::new();
    for requirement in &config.requires {
        let workspace_app = released
            .iter()
            .find(|(other, _)| other.name.as_str() == requirement.as_str());
        match workspace_app {
            Some((other, other_config)) => match &other_config.python {
                Some(other_python) => {
                    // A version PEP 440 cannot spell is reported when that app is planned.
                    if let Ok(other_version) = version::pep440(&other.version) {
                        requires.push(PythonRequirement::Workspace {
                            distribution: other_python
                                .name
                                .clone()
                                .unwrap_or_else(|| other.name.to_string()),
                            version: other_version,
                        });
                    }
                }
                None => error(
                    "package.metadata.castoff.python.requires".to_owned(),
                    format!(
                        "`{requirement}` is released without a wheel, so a wheel cannot require it"
                    ),
                    format!(
                        "add a `python` table to [package.metadata.castoff] of `{requirement}`"
                    ),
                ),
            },
            None => requires.push(PythonRequirement::External(requirement.clone())),
        }
    }
    Some(PythonChannel {
        name,
        module,
        version: pep440,
        requires,
        requires_python: config.requires_python.clone(),
        classifiers: config.classifiers.clone(),
        repositories: config.repositories.clone(),
        upload_limit: upload_limit("python", &config.upload_limit, error),
        glibc_and_musl_arches: glibc_and_musl_arches(targets),
        sdist: config.sdist.unwrap_or(true),
    })
}

/// The architectures of `targets` with both a glibc and a musl target, in table order.
fn glibc_and_musl_arches(targets: &[&'static Target]) -> Vec<&'static str> {
    let has = |arch: &str, libc: Libc| {
        targets
            .iter()
            .any(|target| target.python_arch == arch && target.libc == Some(libc))
    };
    let mut arches: Vec<&'static str> = Vec::new();
    for target in Target::all() {
        let arch = target.python_arch;
        if target.libc == Some(Libc::Glibc)
            && has(arch, Libc::Glibc)
            && has(arch, Libc::Musl)
            && !arches.contains(&arch)
        {
            arches.push(arch);
        }
    }
    arches
}
