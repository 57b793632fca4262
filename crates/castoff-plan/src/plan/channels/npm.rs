//! The npm channel: the launcher's name and version, registries, and the environment variable
//! that points the launcher at a binary of the user's choice. Dependencies on other apps are
//! resolved later, with the graph.

use cargo_metadata::Package as CargoPackage;
use semver::Version;

use crate::config::NpmConfig;
use crate::names;
use crate::plan::diagnostics::{upload_limit, version_error};
use crate::plan::model::NpmChannel;
use crate::version;

pub(in crate::plan) fn plan_npm(
    package: &CargoPackage,
    config: &NpmConfig,
    version: &Version,
    error: &mut impl FnMut(String, String, String),
) -> Option<NpmChannel> {
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| package.name.to_string());
    if let Err(problem) = names::check_npm_name(&name) {
        error(
            "package.metadata.castoff.npm.name".to_owned(),
            format!("`{name}`: {problem}"),
            "choose a name such as `my-tool` or `@scope/my-tool`".to_owned(),
        );
    }
    let npm_version = match version::npm(version) {
        Ok(npm_version) => npm_version,
        Err(refusal) => {
            version_error(error, refusal);
            return None;
        }
    };
    for (index, registry) in config.registries.iter().enumerate() {
        let is_url = registry.starts_with("https://") || registry.starts_with("http://");
        let redacted = names::redact_userinfo(registry);
        if redacted != *registry {
            error(
                format!("package.metadata.castoff.npm.registries[{index}]"),
                format!("`{redacted}`: credentials written into the URL are refused (they would show in the plan, dist/manifest.json and logs)"),
                "remove `user:password@`; `publish` takes the token from .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN".to_owned(),
            );
        } else if !is_url || config.registries[..index].contains(registry) {
            error(
                format!("package.metadata.castoff.npm.registries[{index}]"),
                format!("`{registry}` is not a registry URL, or is listed twice"),
                "list each registry once, as a URL such as https://registry.npmjs.org/".to_owned(),
            );
        }
    }
    let bare = name.rsplit('/').next().unwrap_or(&name);
    let binary_path_env = config.binary_path_env.clone().unwrap_or_else(|| {
        let mut env: String = bare
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.push_str("_BINARY_PATH");
        env
    });
    let valid_env = !binary_path_env.is_empty()
        && !binary_path_env.starts_with(|c: char| c.is_ascii_digit())
        && binary_path_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_env {
        error(
            "package.metadata.castoff.npm.binary-path-env".to_owned(),
            format!("`{binary_path_env}` is not a portable environment variable name"),
            "use letters, digits and `_`, not starting with a digit".to_owned(),
        );
    }
    Some(NpmChannel {
        name,
        version: npm_version,
        // Resolved once every app is planned.
        dependencies: Vec::new(),
        binary_path_env,
        node: config.node.clone().unwrap_or_else(|| ">=18".to_owned()),
        registries: config.registries.clone(),
        upload_limit: upload_limit("npm", &config.upload_limit, error),
    })
}
