//! The launcher package: `bin` entries that are small JS files running the binary from the
//! platform package npm installed, a programmatic API (`binaryPath`, `run`, `spawn`) with
//! hand-written types, README, LICENSE and examples. Its `optionalDependencies` name every
//! platform package at the exact version; it has no install scripts and no other dependencies
//! than the launchers of other apps of the release.
//!
//! The JS sources live as real files under `src/launcher/` (so `node --test` exercises them as
//! shipped); the only generated parts are `lib/config.json`, the `bin/<bin>.js` stubs, the
//! examples' package name, package.json and README.md.

use castoff_plan::Target;

use crate::json::{Json, ObjectBuilder, quote};
use crate::metadata::{describe_target, descriptive_fields, libc_field, license_files};
use crate::pack::{EXECUTABLE_MODE, FILE_MODE, FileSource, PackageContents, PackageFile};
use crate::{LauncherInput, NpmError};

const PLATFORM_JS: &str = include_str!("launcher/lib/platform.js");
const CLI_JS: &str = include_str!("launcher/lib/cli.js");
const INDEX_JS: &str = include_str!("launcher/index.js");
const INDEX_D_TS: &str = include_str!("launcher/index.d.ts");
const BIN_JS_TEMPLATE: &str = include_str!("launcher/bin/launcher.js");
const EXAMPLE_JS_TEMPLATE: &str = include_str!("launcher/examples/run.js");
const EXAMPLE_TS_TEMPLATE: &str = include_str!("launcher/examples/run.ts");

/// Everything the launcher package holds.
pub fn launcher_contents(input: &LauncherInput<'_>) -> Result<PackageContents, NpmError> {
    let (app, channel) = (input.app, input.npm);
    let name = channel.name.clone();
    let version = channel.version.version.clone();
    if input.targets.is_empty() {
        return Err(NpmError::NoPlatforms { name });
    }
    // Table order, each target once, each one planned.
    let mut targets: Vec<&'static Target> = Vec::new();
    for target in &input.targets {
        if !app.targets.iter().any(|t| t.triple == target.triple) {
            return Err(NpmError::UnplannedTarget {
                name,
                package: app.package.name.clone(),
                target: target.triple.to_owned(),
                known: app
                    .targets
                    .iter()
                    .map(|t| t.triple)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    for target in Target::all() {
        if input.targets.iter().any(|t| t.triple == target.triple) {
            targets.push(target);
        }
    }

    let config = config_json(
        &name,
        &version,
        &channel.binary_path_env,
        &app.bins,
        &targets
            .iter()
            .map(|target| PlatformEntry {
                package: channel.platform_package(target),
                target,
                libc: libc_field(&app.targets, app.crt_static, target),
            })
            .collect::<Vec<_>>(),
    );

    let mut optional: Vec<(String, Json)> = targets
        .iter()
        .map(|target| (channel.platform_package(target), Json::string(&version)))
        .collect();
    optional.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dependencies: Vec<(String, Json)> = channel
        .dependencies
        .iter()
        .map(|(dependency, exact)| (dependency.clone(), Json::string(exact)))
        .collect();
    dependencies.sort_by(|a, b| a.0.cmp(&b.0));

    let bin_entries: Vec<(String, Json)> = app
        .bins
        .iter()
        .map(|bin| (bin.clone(), Json::string(format!("bin/{bin}.js"))))
        .collect();
    let package_json = descriptive_fields(
        ObjectBuilder::default()
            .field("name", Json::string(&name))
            .field("version", Json::string(&version)),
        &app.package,
        app.package.summary(),
    )
    .field("type", Json::string("commonjs"))
    .field("bin", Json::Object(bin_entries))
    .field("main", Json::string("./index.js"))
    .field("types", Json::string("./index.d.ts"))
    .field(
        "exports",
        ObjectBuilder::default()
            .field(
                ".",
                ObjectBuilder::default()
                    .field("types", Json::string("./index.d.ts"))
                    .field("default", Json::string("./index.js"))
                    .build(),
            )
            .field("./package.json", Json::string("./package.json"))
            .build(),
    )
    .field(
        "files",
        Json::strings(["bin/", "lib/", "examples/", "index.js", "index.d.ts"]),
    )
    .field(
        "engines",
        ObjectBuilder::default()
            .field("node", Json::string(&channel.node))
            .build(),
    )
    .optional(
        "dependencies",
        (!dependencies.is_empty()).then_some(Json::Object(dependencies)),
    )
    .field("optionalDependencies", Json::Object(optional))
    .build()
    .render();

    let text = |path: &str, mode: u32, contents: String| PackageFile {
        path: path.to_owned(),
        mode,
        source: FileSource::Bytes(contents.into_bytes()),
    };
    let fill = |template: &str, bin: &str| {
        template
            .replace("{{PACKAGE}}", &name)
            .replace("{{BIN_JSON}}", &quote(bin))
            .replace("{{BIN}}", bin)
    };
    let project_readme = match &app.package.readme {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| NpmError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
                hint: "check the `readme` key of the package's Cargo.toml and that the file is UTF-8 text",
            })?;
            Some(castoff_plan::readme::for_registries(
                app,
                input.workspace_root,
                &text,
            ))
        }
        None => None,
    };
    let first_bin = app.bins.first().map_or("", String::as_str);
    let mut files = vec![
        text("package.json", FILE_MODE, package_json.clone()),
        text(
            "README.md",
            FILE_MODE,
            readme(&ReadmeFacts {
                project_readme: project_readme.as_deref(),
                name: &name,
                version: &version,
                description: app.package.description.as_deref(),
                bins: &app.bins,
                binary_path_env: &channel.binary_path_env,
                node: &channel.node,
                platforms: &targets
                    .iter()
                    .map(|target| {
                        let any_libc = target.npm_libc.is_some()
                            && libc_field(&app.targets, app.crt_static, target).is_none();
                        (channel.platform_package(target), *target, any_libc)
                    })
                    .collect::<Vec<_>>(),
                homepage: app
                    .package
                    .homepage
                    .as_deref()
                    .or(app.package.repository.as_deref()),
            }),
        ),
        text("index.js", FILE_MODE, INDEX_JS.to_owned()),
        text("index.d.ts", FILE_MODE, INDEX_D_TS.to_owned()),
        text("lib/platform.js", FILE_MODE, PLATFORM_JS.to_owned()),
        text("lib/cli.js", FILE_MODE, CLI_JS.to_owned()),
        text("lib/config.json", FILE_MODE, config),
        text(
            "examples/run.js",
            FILE_MODE,
            fill(EXAMPLE_JS_TEMPLATE, first_bin),
        ),
        text(
            "examples/run.ts",
            FILE_MODE,
            fill(EXAMPLE_TS_TEMPLATE, first_bin),
        ),
    ];
    for bin in &app.bins {
        // 0755 so the file runs directly too; npm sets the mode of `bin` targets on install.
        files.push(text(
            &format!("bin/{bin}.js"),
            EXECUTABLE_MODE,
            fill(BIN_JS_TEMPLATE, bin),
        ));
    }
    files.extend(license_files(&name, &app.package, input.workspace_root)?);
    Ok(PackageContents::new(name, version, package_json, files))
}

/// One row of the launcher's platform table.
#[derive(Debug, Clone)]
pub(crate) struct PlatformEntry<'a> {
    pub(crate) package: String,
    pub(crate) target: &'a Target,
    /// The platform package's `libc` field (None: any libc, or not Linux).
    pub(crate) libc: Option<&'static str>,
}

/// `lib/config.json`: what the launcher JS needs to know about this release.
pub(crate) fn config_json(
    name: &str,
    version: &str,
    binary_path_env: &str,
    bins: &[String],
    platforms: &[PlatformEntry<'_>],
) -> String {
    let platforms = platforms
        .iter()
        .map(|entry| {
            ObjectBuilder::default()
                .field("package", Json::string(&entry.package))
                .field("os", Json::string(entry.target.npm_os))
                .field("cpu", Json::string(entry.target.npm_cpu))
                .field("libc", entry.libc.map_or(Json::Null, Json::string))
                .field("target", Json::string(entry.target.triple))
                .build()
        })
        .collect();
    ObjectBuilder::default()
        .field("package", Json::string(name))
        .field("version", Json::string(version))
        .field("binaryPathEnv", Json::string(binary_path_env))
        .field("bins", Json::strings(bins))
        .field("platforms", Json::Array(platforms))
        .build()
        .render()
}

struct ReadmeFacts<'a> {
    /// The package's own README (Cargo's `readme`), shown first when there is one.
    project_readme: Option<&'a str>,
    name: &'a str,
    version: &'a str,
    description: Option<&'a str>,
    bins: &'a [String],
    binary_path_env: &'a str,
    node: &'a str,
    /// (package, target, whether a static Linux build serving every libc)
    platforms: &'a [(String, &'a Target, bool)],
    homepage: Option<&'a str>,
}

fn readme(facts: &ReadmeFacts<'_>) -> String {
    let ReadmeFacts {
        project_readme,
        name,
        version,
        description,
        bins,
        binary_path_env,
        node,
        platforms,
        homepage,
    } = facts;
    let bin = bins.first().map_or("", String::as_str);
    let mut out = String::new();
    match project_readme {
        Some(text) => {
            out.push_str(text.trim_end());
            out.push_str(&format!("\n\n---\n\n# The npm package `{name}`\n\n"));
        }
        None => {
            out.push_str(&format!("# {name}\n\n"));
            if let Some(description) = description {
                out.push_str(&format!("{description}\n\n"));
            }
        }
    }
    if let Some(homepage) = homepage {
        out.push_str(&format!("Project: {homepage}\n\n"));
    }
    let commands: Vec<String> = bins.iter().map(|bin| format!("`{bin}`")).collect();
    out.push_str(&format!(
        "This package installs the native {} command{} (version {version}) with npm. The binary \
         comes in a per-platform package that npm picks automatically; nothing is downloaded or \
         compiled at install time and no install scripts run.\n\n",
        commands.join(", "),
        if bins.len() == 1 { "" } else { "s" },
    ));
    out.push_str(&format!(
        "## Install\n\n\
         ```sh\n\
         npx {name} --version          # run once without installing\n\
         npm install --global {name}   # or put it on PATH\n\
         npm install --save-dev {name} # or pin it in a project (npm run / npx)\n\
         ```\n\n\
         Requires Node.js {node}. Other package managers work if they install optional \
         dependencies (pnpm, Yarn, bun).\n\n\
         ## Command line\n\n\
         ```sh\n\
         {bin} --version\n\
         ```\n\n\
         Arguments, standard input and output, the exit code and signals behave as if the \
         binary were run directly: the launcher passes arguments verbatim, forwards SIGINT, \
         SIGTERM and SIGHUP to the binary, exits with its exit code, and when the binary is \
         killed by a signal, dies of the same signal.\n\n\
         ## API\n\n\
         ```js\n\
         const {{ binaryPath, run, spawn }} = require(\"{name}\");\n\
         \n\
         binaryPath();                          // absolute path of the `{bin}` binary\n\
         const {{ code, signal, stdout, stderr }} = await run([\"--version\"]); // captured\n\
         await run([\"--version\"], {{ stdio: \"inherit\" }});   // shares the terminal\n\
         const child = spawn([\"--version\"]);    // a ChildProcess, plus `child.exited`\n\
         const {{ code: exitCode }} = await child.exited;\n\
         ```\n\n\
         - `binaryPath(name?)`: the path of a binary (default: `{bin}`). Throws an error \
         explaining what is missing when this platform's package is not installed.\n\
         - `run(args, options?)`: resolves with `{{ code, signal, stdout, stderr }}`; a non-zero \
         exit is a result, not an exception. Options: `name`, `cwd`, `env`, `input`, \
         `stdio: \"pipe\" | \"inherit\"`, `encoding: \"utf8\" | \"buffer\"`, `timeout`, `killSignal`.\n\
         - `spawn(args, options?)`: Node's `child_process.spawn` of the binary (same options, \
         plus `name`), with an `exited` promise of `{{ code, signal }}`.\n\n\
         TypeScript definitions are included (`index.d.ts`, no `@types/node` needed). See \
         `examples/run.js` and `examples/run.ts`.\n\n\
         ## Supported platforms\n\n\
         | platform | Rust target | package |\n\
         | --- | --- | --- |\n"
    ));
    for (package, target, any_libc) in platforms.iter() {
        let note = if *any_libc { ", static: any libc" } else { "" };
        out.push_str(&format!(
            "| {}{note} | `{}` | `{package}` |\n",
            describe_target(target),
            target.triple
        ));
    }
    out.push_str(&format!(
        "\n## Troubleshooting\n\n\
         **\"the {bin} binary for this platform is not installed\"**: npm did not install this \
         platform's package. Usual causes: optional dependencies were omitted \
         (`--omit=optional`, `--no-optional`, `omit=optional` in `.npmrc`); the lockfile was \
         created on another platform (npm/cli#4828); `node_modules` was copied from another \
         machine or into a container. Fix: `npm install --include=optional` on the machine that \
         runs it, or `rm -rf node_modules package-lock.json && npm install`.\n\n\
         **\"has no {bin} binary for this platform\"**: your platform is not in the table \
         above. Build `{bin}` from source and point `{binary_path_env}` at it.\n\n\
         **Use another binary**: set `{binary_path_env}` to the path of a `{bin}` binary (or a \
         directory holding it); the launcher and `binaryPath()` then use it.\n\n\
         **Yarn Plug'n'Play**: the platform packages are marked `preferUnplugged`, so Yarn \
         unpacks them and the binary can run.\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::metadata::libc_field;

    /// The `lib/config.json` castoff writes for `@acme/greeter` built for `targets`.
    fn config_for(targets: &[&'static Target]) -> String {
        let entries: Vec<PlatformEntry<'_>> = targets
            .iter()
            .map(|target| PlatformEntry {
                package: format!("@acme/greeter-{}", target.npm_platform_suffix()),
                target,
                libc: libc_field(targets, false, target),
            })
            .collect();
        config_json(
            "@acme/greeter",
            "0.3.1",
            "GREETER_BINARY_PATH",
            &["greeter".to_owned()],
            &entries,
        )
    }

    /// The launcher's platform logic, as shipped, under Node's test runner, for every supported
    /// os/cpu/libc combination (tests/node/platform.test.js).
    #[test]
    fn launcher_logic_under_node_test() {
        let all: Vec<&'static Target> = Target::all().iter().collect();
        let musl_only: Vec<&'static Target> = all
            .iter()
            .copied()
            .filter(|target| target.npm_libc != Some("glibc"))
            .collect();
        let configs = format!(
            "{{\"all\": {}, \"muslOnly\": {}}}",
            config_for(&all),
            config_for(&musl_only)
        );
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let configs_file = std::env::temp_dir().join(format!(
            "castoff-npm-node-test-configs-{}.json",
            std::process::id()
        ));
        std::fs::write(&configs_file, configs).unwrap();
        let output = Command::new("node")
            .arg("--test")
            .arg(crate_dir.join("tests/node/platform.test.js"))
            .env("CASTOFF_NPM_TEST_CONFIGS", &configs_file)
            .output()
            .unwrap_or_else(|error| {
                panic!("`node` is needed for this test and could not be started: {error}")
            });
        let _ = std::fs::remove_file(&configs_file);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "node --test failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("# fail 0"), "{stdout}");
    }
}
