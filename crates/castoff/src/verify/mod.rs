//! `verify`: proves that users can install what a release published, with the clients they
//! use. From `dist/manifest.json` (checked against the workspace's plan, like `publish`) and
//! the registries `publish` resolves, every client found on `PATH` installs each published
//! package in a throwaway directory of its own (home, caches, configuration) and runs the
//! app's smoke command (`verify.smoke`, default each binary with `--version`), whose output
//! must hold the release's version. The result is one check per client and artifact: ok,
//! failed with the reason, or the client absent.

mod clients;
mod local;
mod run;

pub use run::{interrupt, interrupted};

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use castoff_plan::manifest::ManifestApp;
use castoff_plan::{Manifest, Release, StepKindName};
use castoff_registry::env::{Environment as _, ProcessEnvironment};

use crate::hint::Hinted;
use crate::publish::{PublishOptions, vars};
use crate::report::Reporter;
pub use clients::{CLIENTS, Channel};
use clients::{Sandbox, find, npm_registry};

/// How to run `verify`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub dist_dir: PathBuf,
    /// The workspace root, for the project's `.npmrc`.
    pub workspace_root: PathBuf,
    /// The workspace (`cargo metadata`): the plan says where each artifact was published and
    /// what the smoke command is.
    pub workspace: cargo_metadata::Metadata,
    pub pypi_url: Option<String>,
    pub pypi_index_url: Option<String>,
    pub npm_registry: Option<String>,
    pub oci_repository: Option<String>,
    pub oci_registry: Option<String>,
    /// Where `install.sh` downloads the archives from (default: the release's own location).
    pub install_base_url: Option<String>,
    /// Clients whose absence is a failure.
    pub require: Vec<String>,
    /// Longest a client may take to install and run one artifact.
    pub timeout: Duration,
    /// Where clients are looked for (default: `PATH`).
    pub path: Option<OsString>,
    /// Before publishing: install what dist/ holds, served from a throwaway local index on
    /// 127.0.0.1, instead of what the registries hold.
    pub from_dist: bool,
}

/// One cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// The client is not installed (a failure with `--require`).
    Absent,
    /// castoff cannot check this artifact with this client here (the reason says why).
    NotVerifiable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Absent => "absent",
            Status::NotVerifiable => "not-verifiable",
        }
    }
}

/// One client's install and smoke run of one artifact.
#[derive(Debug, Clone)]
pub struct Check {
    pub app: String,
    pub version: String,
    pub channel: Channel,
    /// What users install: `greeter==0.3.1`, `@acme/greeter@0.3.1`, `host/repo:0.3.1`.
    pub artifact: String,
    pub client: String,
    pub status: Status,
    /// Why it failed, is absent or not verifiable.
    pub reason: Option<String>,
    /// The commands run, as a user would type them (without the sandbox's environment).
    pub commands: Vec<String>,
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub checks: Vec<Check>,
}

/// Version of `verify --json`'s shape.
pub const VERIFY_SCHEMA_VERSION: u32 = 1;

impl VerifyOutcome {
    /// The checks that make `verify` fail: failures, and absent clients that are required.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|check| check.status == Status::Failed)
            .collect()
    }

    /// The `--json` document (docs/cli.md).
    pub fn to_json(&self) -> String {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|check| {
                serde_json::json!({
                    "app": check.app,
                    "version": check.version,
                    "channel": check.channel.as_str(),
                    "artifact": check.artifact,
                    "client": check.client,
                    "status": check.status.as_str(),
                    "reason": check.reason,
                    "commands": check.commands,
                })
            })
            .collect();
        let document = serde_json::json!({
            "schema_version": VERIFY_SCHEMA_VERSION,
            "castoff_version": env!("CARGO_PKG_VERSION"),
            "ok": self.failures().is_empty(),
            "checks": checks,
        });
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The client × artifact table: one row per check, reasons indented below.
    pub fn to_table(&self) -> String {
        let width = |f: fn(&Check) -> usize| self.checks.iter().map(f).max().unwrap_or(0);
        let artifact_width = width(|c| c.artifact.len()).max("artifact".len());
        let client_width = width(|c| c.client.len()).max("client".len());
        let mut out = format!(
            "{:<artifact_width$}  {:<client_width$}  result\n",
            "artifact", "client"
        );
        for check in &self.checks {
            let mut reason_lines = check.reason.as_deref().unwrap_or("").lines();
            let result = match check.status {
                Status::Ok => "ok".to_owned(),
                status => match reason_lines.next() {
                    Some(first) => format!("{}: {first}", status.as_str()),
                    None => status.as_str().to_owned(),
                },
            };
            out.push_str(&format!(
                "{:<artifact_width$}  {:<client_width$}  {result}\n",
                check.artifact, check.client
            ));
            for line in reason_lines {
                out.push_str(&format!(
                    "{:<artifact_width$}  {:<client_width$}    {line}\n",
                    "", ""
                ));
            }
        }
        let count = |status: Status| self.checks.iter().filter(|c| c.status == status).count();
        out.push_str(&format!(
            "{} ok, {} failed, {} absent, {} not verifiable\n",
            count(Status::Ok),
            count(Status::Failed),
            count(Status::Absent),
            count(Status::NotVerifiable)
        ));
        out
    }
}

/// One smoke command of an app: the binary, its arguments, the text its output must hold.
#[derive(Debug, Clone)]
struct Smoke {
    bin: String,
    args: Vec<String>,
    expect: String,
}

impl Smoke {
    fn display(&self) -> String {
        std::iter::once(self.bin.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The smoke commands of `app` (`verify.smoke`, default each binary with `--version`).
fn smokes(release: &Release, app: &ManifestApp) -> Vec<Smoke> {
    let planned = release.apps.iter().find(|a| a.package.name == app.name);
    let config = planned.map(|a| a.verify.clone()).unwrap_or_default();
    let expect = config
        .expect
        .clone()
        .unwrap_or_else(|| app.version.clone())
        .replace("{version}", &app.version);
    match config.smoke {
        Some(argv) if !argv.is_empty() => vec![Smoke {
            bin: argv[0].clone(),
            args: argv[1..]
                .iter()
                .map(|arg| arg.replace("{version}", &app.version))
                .collect(),
            expect,
        }],
        _ => app
            .bins
            .iter()
            .map(|bin| Smoke {
                bin: bin.clone(),
                args: vec!["--version".to_owned()],
                expect: expect.clone(),
            })
            .collect(),
    }
}

/// Runs `verify`: every client present installs every published artifact of the release.
/// `Err` only when it cannot start (no manifest, a configuration that disagrees); failed
/// checks are in the outcome.
pub fn verify(options: &VerifyOptions, reporter: &dyn Reporter) -> anyhow::Result<VerifyOutcome> {
    for required in &options.require {
        if !CLIENTS.iter().any(|(name, _, _)| name == required) {
            anyhow::bail!(Hinted::new(
                format!("--require {required}: castoff verify knows no client named `{required}`"),
                format!(
                    "name one of {}",
                    CLIENTS
                        .iter()
                        .map(|(name, _, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let manifest_path = options.dist_dir.join("manifest.json");
    let manifest_text = fs::read_to_string(&manifest_path).map_err(|error| {
        Hinted::new(
            format!("could not read {}", manifest_path.display()),
            "run `castoff dist` (and `castoff publish`) first; `verify` installs what they released",
        )
        .because(error)
    })?;
    let manifest = Manifest::from_json(&manifest_text)
        .with_context(|| format!("{} is not a castoff manifest", manifest_path.display()))?;
    crate::publish::check_against_workspace(&manifest, &options.workspace, &manifest_path)?;
    // Planned once more for what the manifest does not carry (the smoke command, the
    // image's entrypoint); check_against_workspace has just planned it without error.
    let release = castoff_plan::plan(
        &options.workspace,
        &castoff_plan::PlanOptions {
            packages: manifest.apps.iter().map(|app| app.name.clone()).collect(),
            targets: Vec::new(),
        },
    )
    .map_err(|error| anyhow::anyhow!("{error}"))?;

    let local = if options.from_dist {
        // Served as it is only after every file is checked against the manifest.
        crate::publish::verify_files(&manifest, &options.dist_dir)?;
        let local = local::serve(&manifest, &options.dist_dir)?;
        reporter.line(&format!(
            "serving {} on {} (PyPI {}, npm {})",
            options.dist_dir.display(),
            local.pypi_index.trim_end_matches("/simple/"),
            local.pypi_index,
            local.npm_registry
        ));
        Some(local)
    } else {
        None
    };
    let path = options
        .path
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let scratch = Scratch(scratch_dir()?);
    run::set_scratch(Some(scratch.0.clone()));
    let result = run_all(
        options,
        reporter,
        &manifest,
        &release,
        &path,
        &scratch.0,
        local.as_ref(),
    );
    drop(local);
    drop(scratch);
    result
}

/// The run's scratch directory, removed when the run ends, by a panic too (a client that
/// filled a pipe castoff could not write on, say).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        run::set_scratch(None);
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir =
        std::env::temp_dir().join(format!("castoff-verify-{}-{nanos:09}", std::process::id()));
    fs::create_dir(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    Ok(dir)
}

/// Where one app's packages are, as its users name them.
struct Published {
    /// PyPI: the simple index URL, or why castoff cannot tell.
    pypi_index: Option<Result<String, String>>,
    /// npm: the registry URL, or why castoff cannot tell.
    npm_registry: Option<Result<String, String>>,
    /// The image reference `repository:tag`, or why castoff cannot tell.
    image: Option<Result<String, String>>,
}

fn published(
    options: &VerifyOptions,
    manifest: &Manifest,
    app: &ManifestApp,
    local: Option<&local::LocalIndex>,
) -> Published {
    if let Some(local) = local {
        return Published {
            pypi_index: app.python.as_ref().map(|_| Ok(local.pypi_index.clone())),
            npm_registry: app.npm.as_ref().map(|_| Ok(local.npm_registry.clone())),
            image: app.oci.as_ref().map(|_| {
                local
                    .images
                    .get(&app.name)
                    .cloned()
                    .ok_or_else(|| "dist/ holds no image layout of this app".to_owned())
            }),
        };
    }
    let environment = ProcessEnvironment;
    let first_destination = |kind: StepKindName| {
        manifest
            .steps
            .iter()
            .find(|step| step.app == app.name && step.kind == kind)
            .map(|step| step.destination.clone())
    };
    let pypi_index = app.python.as_ref().and_then(|_| {
        let destination = first_destination(StepKindName::PypiUpload)?;
        Some(match destination {
            Some(configured)
                if !(configured.starts_with("http://")
                    || configured.starts_with("https://")
                    || matches!(configured.as_str(), "pypi" | "testpypi")) =>
            {
                options
                    .pypi_index_url
                    .clone()
                    .or_else(|| environment.var(vars::PYPI_INDEX_URL))
                    .ok_or(format!(
                    "the wheels go to the ~/.pypirc section `{configured}`; pass its simple index with --pypi-index-url"
                ))
            }
            configured => {
                let url = configured
                    .or_else(|| options.pypi_url.clone())
                    .or_else(|| environment.var(vars::PYPI_URL))
                    .unwrap_or_else(|| "pypi".to_owned());
                let index = options
                    .pypi_index_url
                    .clone()
                    .or_else(|| environment.var(vars::PYPI_INDEX_URL));
                castoff_registry::pypi::PypiRepository::new(
                    &url,
                    index.as_deref(),
                    castoff_registry::pypi::PypiCredentials::None,
                )
                .map(|repository| repository.index_url.to_string())
                .map_err(|error| crate::hint::render_with(&error, crate::hint::LIST_HINT))
            }
        })
    });
    let npm_registry = app.npm.as_ref().map(|npm| {
        let configured = first_destination(StepKindName::NpmPublish).flatten();
        let url = match configured
            .or_else(|| options.npm_registry.clone())
            .or_else(|| environment.var(vars::NPM_REGISTRY))
        {
            Some(url) => url,
            None => match castoff_registry::connect::npmrc(&options.workspace_root, &environment) {
                Ok(npmrc) => npmrc.registry_for(&npm.name).map_or_else(
                    || castoff_registry::npm::NPMJS_REGISTRY.to_owned(),
                    str::to_owned,
                ),
                Err(error) => {
                    return Err(crate::hint::render_with(&error, crate::hint::LIST_HINT));
                }
            },
        };
        Ok(if url.ends_with('/') {
            url
        } else {
            format!("{url}/")
        })
    });
    let image = app.oci.as_ref().map(|oci| {
        let publish_options = PublishOptions {
            dist_dir: options.dist_dir.clone(),
            workspace_root: options.workspace_root.clone(),
            workspace: options.workspace.clone(),
            verify_key: None,
            dry_run: true,
            only: Vec::new(),
            skip: Vec::new(),
            pypi_url: None,
            pypi_index_url: None,
            pypi_repository: None,
            npm_registry: None,
            oci_repository: options.oci_repository.clone(),
            oci_registry: options.oci_registry.clone(),
            http: castoff_registry::HttpConfig::from_env(),
            jobs: 1,
            tag: None,
            allow_partial: true,
        };
        let repository = crate::publish::oci_repository_of(manifest, &app.name, &publish_options)
            .map_err(|error| format!("{error:#}"))?;
        let tag = if oci.tags.contains(&app.version) {
            app.version.clone()
        } else {
            oci.tags
                .first()
                .cloned()
                .ok_or_else(|| "the image has no tag to pull it by".to_owned())?
        };
        Ok(format!("{repository}:{tag}"))
    });
    Published {
        pypi_index,
        npm_registry,
        image,
    }
}

fn run_all(
    options: &VerifyOptions,
    reporter: &dyn Reporter,
    manifest: &Manifest,
    release: &Release,
    path: &OsString,
    scratch: &Path,
    local: Option<&local::LocalIndex>,
) -> anyhow::Result<VerifyOutcome> {
    let mut checks = Vec::new();
    let install_script = options.dist_dir.join(crate::install_script::FILE_NAME);
    let mut sandboxes = 0usize;
    for app in &manifest.apps {
        let smokes = smokes(release, app);
        let published = published(options, manifest, app, local);
        let has_archives = manifest
            .artifacts
            .iter()
            .any(|a| a.app == app.name && a.kind == castoff_plan::ArtifactKind::Archive);
        for (client, channel, program) in CLIENTS {
            let (artifact, location) = match channel {
                Channel::Python => match (&app.python, &published.pypi_index) {
                    (Some(python), Some(index)) => (
                        format!("{}=={}", python.name, python.version),
                        index.clone(),
                    ),
                    _ => continue,
                },
                Channel::Npm => match (&app.npm, &published.npm_registry) {
                    (Some(npm), Some(registry)) => {
                        (format!("{}@{}", npm.name, npm.version), registry.clone())
                    }
                    _ => continue,
                },
                Channel::Oci => match &published.image {
                    Some(Ok(image)) => (image.clone(), Ok(image.clone())),
                    Some(Err(reason)) => (format!("image of {}", app.name), Err(reason.clone())),
                    None => continue,
                },
                Channel::InstallScript => {
                    if !has_archives {
                        continue;
                    }
                    (
                        format!("install.sh {}", app.name),
                        if install_script.is_file() {
                            Ok(install_script.to_string_lossy().into_owned())
                        } else {
                            Err(format!(
                                "{} is missing; it is written by `castoff dist`",
                                install_script.display()
                            ))
                        },
                    )
                }
            };
            let mut check = Check {
                app: app.name.clone(),
                version: app.version.clone(),
                channel: *channel,
                artifact,
                client: (*client).to_owned(),
                status: Status::Ok,
                reason: None,
                commands: Vec::new(),
            };
            let required = options.require.iter().any(|r| r == client);
            match (find(program, path), location) {
                (None, _) => {
                    check.status = if required {
                        Status::Failed
                    } else {
                        Status::Absent
                    };
                    check.reason = Some(format!(
                        "`{program}` is not on PATH{}",
                        if required { " (--require)" } else { "" }
                    ));
                }
                (Some(_), Err(reason)) => {
                    check.status = Status::NotVerifiable;
                    check.reason = Some(reason);
                }
                (Some(program_path), Ok(location)) => {
                    sandboxes += 1;
                    let sandbox = Sandbox {
                        root: scratch.join(format!("{sandboxes}-{client}")),
                        path: path.clone(),
                    };
                    reporter.line(&format!("{client}: installing {}", check.artifact));
                    let mut commands = Vec::new();
                    let outcome = match sandbox.create() {
                        Err(error) => Err((
                            Status::Failed,
                            format!("could not create {}: {error}", sandbox.root.display()),
                        )),
                        Ok(()) => Context {
                            app,
                            release,
                            options,
                            sandbox: &sandbox,
                            program: &program_path,
                            location: &location,
                            smokes: &smokes,
                        }
                        .run(client, &mut commands),
                    };
                    // A credential in an index URL (--pypi-index-url) stays out of the
                    // table and the JSON, as the client's output may echo it.
                    check.commands = commands
                        .iter()
                        .map(|command| castoff_plan::names::redact_urls(command))
                        .collect();
                    let outcome = outcome.map_err(|(status, reason)| {
                        (status, castoff_plan::names::redact_urls(&reason))
                    });
                    if let Err((status, reason)) = outcome {
                        // Present on PATH but unusable (yarn 1, docker without a daemon).
                        if status == Status::Absent && required {
                            check.status = Status::Failed;
                            check.reason = Some(format!("{reason} (--require)"));
                        } else {
                            check.status = status;
                            check.reason = Some(reason);
                        }
                    }
                    let _ = fs::remove_dir_all(&sandbox.root);
                    reporter.line(&format!(
                        "{client}: {} {}",
                        check.artifact,
                        check.status.as_str()
                    ));
                }
            }
            checks.push(check);
        }
    }
    Ok(VerifyOutcome { checks })
}

/// What one client run needs.
struct Context<'a> {
    app: &'a ManifestApp,
    release: &'a Release,
    options: &'a VerifyOptions,
    sandbox: &'a Sandbox,
    /// The client's program on PATH.
    program: &'a Path,
    /// Index, registry, image reference or install script.
    location: &'a str,
    smokes: &'a [Smoke],
}

/// A check's result: `Ok(Ok(()))` passed; `Ok(Err((status, reason)))` did not.
type Outcome = Result<(), (Status, String)>;

impl Context<'_> {
    fn run(&self, client: &str, commands: &mut Vec<String>) -> Outcome {
        match client {
            "pip" => self.pip(commands),
            "yarn" => {
                self.yarn_has_dlx()?;
                self.each_smoke(commands, |smoke| self.one_shot(client, smoke))
            }
            "uv" | "pipx" | "npm" | "pnpm" | "bun" | "deno" => {
                self.each_smoke(commands, |smoke| self.one_shot(client, smoke))
            }
            "docker" | "podman" => self.container(client, commands),
            "runc" => self.runc(commands),
            "install.sh" => self.install_script(commands),
            other => Err((Status::NotVerifiable, format!("no runner for {other}"))),
        }
    }

    /// yarn 1 (classic), still the `yarn` of many machines, has no `dlx`: that yarn counts as
    /// absent, with the way to a newer one.
    fn yarn_has_dlx(&self) -> Outcome {
        let mut version = self.sandbox.command(self.program);
        version.arg("--version");
        let finished = self.exec(
            "yarn --version",
            version,
            "yarn --version".to_owned(),
            &mut Vec::new(),
        )?;
        let text = finished.stdout.trim().to_owned();
        if text.starts_with("0.") || text.starts_with("1.") {
            return Err((
                Status::Absent,
                format!(
                    "yarn {} is yarn 1 (classic), which has no `yarn dlx`; install yarn 2 or later (`corepack enable`, or `npm install -g @yarnpkg/cli-dist`)",
                    run::escape_controls(&text)
                ),
            ));
        }
        Ok(())
    }

    /// Runs `command`, bounded; `Err` with the reason when it fails or times out.
    fn exec(
        &self,
        what: &str,
        command: Command,
        display: String,
        commands: &mut Vec<String>,
    ) -> Result<run::Finished, (Status, String)> {
        commands.push(display.clone());
        let finished = run::run(command, self.options.timeout).map_err(|error| {
            let problem = match error.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "the file is not executable (installed without its executable bit)".to_owned()
                }
                std::io::ErrorKind::NotFound => {
                    "no such file (the package did not install it)".to_owned()
                }
                _ => error.to_string(),
            };
            (
                Status::Failed,
                format!("could not run `{display}`: {problem}"),
            )
        })?;
        if finished.timed_out {
            return Err((
                Status::Failed,
                format!(
                    "{what} did not finish within {} s (`{display}`); raise --timeout if the registry is slow",
                    self.options.timeout.as_secs()
                ),
            ));
        }
        if !finished.success() {
            let code = finished
                .code
                .map_or_else(|| "a signal".to_owned(), |code| format!("exit code {code}"));
            return Err((
                Status::Failed,
                format!("{what} failed ({code}): `{display}`\n{}", finished.tail(12)),
            ));
        }
        Ok(finished)
    }

    /// The smoke's output must hold its expected text.
    fn expect(&self, smoke: &Smoke, finished: &run::Finished) -> Outcome {
        let output = format!("{}\n{}", finished.stdout, finished.stderr);
        if output.contains(&smoke.expect) {
            Ok(())
        } else {
            Err((
                Status::Failed,
                format!(
                    "`{}` printed no `{}`: {}",
                    smoke.display(),
                    smoke.expect,
                    run::escape_controls(output.trim())
                        .chars()
                        .take(400)
                        .collect::<String>()
                ),
            ))
        }
    }

    fn each_smoke(
        &self,
        commands: &mut Vec<String>,
        mut command_of: impl FnMut(&Smoke) -> (Command, String),
    ) -> Outcome {
        for smoke in self.smokes {
            let (command, display) = command_of(smoke);
            let finished = self.exec(
                &format!("installing and running {}", smoke.bin),
                command,
                display,
                commands,
            )?;
            self.expect(smoke, &finished)?;
        }
        Ok(())
    }

    /// A client that installs into its cache and runs a binary in one command.
    fn one_shot(&self, client: &str, smoke: &Smoke) -> (Command, String) {
        let python = self.app.python.as_ref();
        let npm = self.app.npm.as_ref();
        let requirement = python.map(|p| format!("{}=={}", p.name, p.version));
        let package = npm.map(|n| format!("{}@{}", n.name, n.version));
        let mut args: Vec<String> = match client {
            "uv" => vec![
                "tool".into(),
                "run".into(),
                "--no-build".into(),
                "--default-index".into(),
                self.location.into(),
                "--from".into(),
                requirement.unwrap_or_default(),
                smoke.bin.clone(),
            ],
            "pipx" => vec![
                "run".into(),
                "--no-cache".into(),
                "--index-url".into(),
                self.location.into(),
                "--pip-args=--only-binary=:all:".into(),
                "--spec".into(),
                requirement.unwrap_or_default(),
                smoke.bin.clone(),
            ],
            "npm" => vec![
                "--yes".into(),
                format!("--package={}", package.unwrap_or_default()),
                "--".into(),
                smoke.bin.clone(),
            ],
            "pnpm" => vec![
                format!("--package={}", package.unwrap_or_default()),
                "dlx".into(),
                smoke.bin.clone(),
            ],
            "yarn" => vec![
                "dlx".into(),
                "--quiet".into(),
                "--package".into(),
                package.unwrap_or_default(),
                smoke.bin.clone(),
            ],
            "bun" => vec![
                "x".into(),
                "--package".into(),
                package.unwrap_or_default(),
                smoke.bin.clone(),
            ],
            // deno: `npm:<package>@<version>/<bin>` runs that bin of the package.
            _ => vec![
                "run".into(),
                "-A".into(),
                "--no-config".into(),
                "--minimum-dependency-age=0".into(),
                format!("npm:{}/{}", package.unwrap_or_default(), smoke.bin),
            ],
        };
        args.extend(smoke.args.iter().cloned());
        let mut command = self.sandbox.command(self.program);
        command.args(&args);
        if python.is_none() || client != "uv" && client != "pipx" {
            npm_registry(&mut command, self.location);
        }
        let display = format!(
            "{} {}",
            self.program
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            args.join(" ")
        );
        (command, display)
    }

    /// pip: a new venv, `pip install NAME==VERSION` from the index, then each binary.
    fn pip(&self, commands: &mut Vec<String>) -> Outcome {
        let python = self.app.python.as_ref().ok_or((
            Status::NotVerifiable,
            "the app has no Python package".to_owned(),
        ))?;
        let venv = self.sandbox.dir("venv");
        let mut create = self.sandbox.command(self.program);
        create.arg("-m").arg("venv").arg(&venv);
        self.exec(
            "creating a venv",
            create,
            format!("python3 -m venv {}", venv.display()),
            commands,
        )?;
        let requirement = format!("{}=={}", python.name, python.version);
        let mut install = self.sandbox.command(clients::venv_bin(&venv, "python"));
        install.args([
            "-m",
            "pip",
            "install",
            "--only-binary=:all:",
            "--index-url",
            self.location,
            &requirement,
        ]);
        self.exec(
            &format!("pip install {requirement}"),
            install,
            format!(
                "pip install --only-binary=:all: --index-url {} {requirement}",
                self.location
            ),
            commands,
        )?;
        self.each_smoke(commands, |smoke| {
            let mut command = self.sandbox.command(clients::venv_bin(&venv, &smoke.bin));
            command.args(&smoke.args);
            (command, format!("venv/bin/{}", smoke.display()))
        })
    }

    /// docker or podman: `run --rm --pull always --name NAME IMAGE ARGS`, with `--entrypoint`
    /// for a binary that is not the image's entrypoint. The container is named so that it is
    /// removed even when the client was killed at `--timeout` (killing the CLI does not stop
    /// the container); the image is removed afterwards only when verify pulled it (a tag the
    /// engine already had stays, as it may be the user's).
    fn container(&self, client: &str, commands: &mut Vec<String>) -> Outcome {
        if client == "docker" {
            let mut info = self.sandbox.command(self.program);
            info.args(["info", "--format", "{{.ServerVersion}}"]);
            if self
                .exec(
                    "docker info",
                    info,
                    "docker info".to_owned(),
                    &mut Vec::new(),
                )
                .is_err()
            {
                return Err((
                    Status::Absent,
                    "the docker CLI is installed but no Docker daemon answers (DOCKER_HOST)"
                        .to_owned(),
                ));
            }
        }
        let entrypoint = self
            .release
            .apps
            .iter()
            .find(|a| a.package.name == self.app.name)
            .and_then(|a| a.oci.as_ref())
            .map(|oci| oci.entrypoint.clone());
        let image = self.location;
        let mut inspect = self.sandbox.command(self.program);
        inspect.args(["image", "inspect", "--format", "{{.Id}}", image]);
        let had_image = run::run(inspect, self.options.timeout).is_ok_and(|done| done.success());
        let mut names = Vec::new();
        let outcome = self.each_smoke(commands, |smoke| {
            let name = format!("castoff-verify-{}-{}", std::process::id(), names.len() + 1);
            let mut args: Vec<String> = vec![
                "run".into(),
                "--rm".into(),
                "--name".into(),
                name.clone(),
                "--quiet".into(),
                "--pull".into(),
                "always".into(),
            ];
            names.push(name);
            if entrypoint.as_deref() != Some(smoke.bin.as_str()) {
                args.push("--entrypoint".into());
                args.push(format!("{}/{}", castoff_oci::BIN_DIR, smoke.bin));
            }
            args.push(image.to_owned());
            args.extend(smoke.args.iter().cloned());
            let mut command = self.sandbox.command(self.program);
            command.args(&args);
            (command, format!("{client} {}", args.join(" ")))
        });
        for name in &names {
            // Gone already when it exited (`--rm`); still running after a timeout.
            let mut remove = self.sandbox.command(self.program);
            remove.args(["rm", "--force", name]);
            let _ = run::run(remove, self.options.timeout);
        }
        if !had_image {
            let mut remove = self.sandbox.command(self.program);
            remove.args(["image", "rm", image]);
            let _ = run::run(remove, self.options.timeout);
        }
        outcome
    }

    /// Without a container engine: `skopeo copy` the image (this platform's) into a layout,
    /// `umoci unpack` it into a bundle, set the process to the smoke command (the image's own
    /// entrypoint when the binary is the entrypoint's), and `runc run` it.
    fn runc(&self, commands: &mut Vec<String>) -> Outcome {
        let tools: Vec<(&str, Option<PathBuf>)> = ["skopeo", "umoci"]
            .into_iter()
            .map(|name| (name, find(name, &self.sandbox.path)))
            .collect();
        let missing: Vec<&str> = tools
            .iter()
            .filter(|(_, found)| found.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err((
                Status::Absent,
                format!(
                    "runc needs {} on PATH to pull and unpack the image",
                    missing.join(" and ")
                ),
            ));
        }
        let skopeo = tools[0].1.clone().unwrap_or_default();
        let umoci = tools[1].1.clone().unwrap_or_default();
        let image = self.location;
        let host = image.split('/').next().unwrap_or("");
        let loopback = host.starts_with("127.0.0.1:")
            || host == "127.0.0.1"
            || host.starts_with("localhost:")
            || host.starts_with("[::1]");
        let layout = self.sandbox.dir("layout");
        let mut copy = self.sandbox.command(&skopeo);
        copy.arg("copy");
        if loopback {
            // A registry on this machine may speak plain http, as docker allows for loopback.
            copy.arg("--src-tls-verify=false");
        }
        copy.arg(format!("docker://{image}"))
            .arg(format!("oci:{}:image", layout.display()));
        self.exec(
            "pulling the image",
            copy,
            format!("skopeo copy docker://{image} oci:layout:image"),
            commands,
        )?;
        let root = {
            use std::os::unix::fs::MetadataExt as _;
            fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        let entrypoint = self
            .release
            .apps
            .iter()
            .find(|a| a.package.name == self.app.name)
            .and_then(|a| a.oci.as_ref())
            .map(|oci| oci.entrypoint.clone());
        for (index, smoke) in self.smokes.iter().enumerate() {
            let bundle = self.sandbox.dir(&format!("bundle-{index}"));
            let mut unpack = self.sandbox.command(&umoci);
            unpack.arg("unpack");
            if !root {
                unpack.arg("--rootless");
            }
            unpack
                .arg("--image")
                .arg(format!("{}:image", layout.display()))
                .arg(&bundle);
            self.exec(
                "unpacking the image",
                unpack,
                "umoci unpack --image layout:image bundle".to_owned(),
                commands,
            )?;
            let config_path = bundle.join("config.json");
            let mut config: serde_json::Value = fs::read(&config_path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or((
                    Status::Failed,
                    format!("umoci wrote no readable {}", config_path.display()),
                ))?;
            let first = if entrypoint.as_deref() == Some(smoke.bin.as_str()) {
                // The image's own entrypoint, as `docker run IMAGE ARGS` runs it.
                config["process"]["args"][0]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or((Status::Failed, "the image has no entrypoint".to_owned()))?
            } else {
                format!("{}/{}", castoff_oci::BIN_DIR, smoke.bin)
            };
            let mut args = vec![first];
            args.extend(smoke.args.iter().cloned());
            config["process"]["args"] = serde_json::json!(args);
            config["process"]["terminal"] = serde_json::json!(false);
            fs::write(&config_path, config.to_string()).map_err(|error| {
                (
                    Status::Failed,
                    format!("could not write {}: {error}", config_path.display()),
                )
            })?;
            // Unique on this machine: the run's scratch directory (pid, time) and this sandbox.
            let name = |path: Option<&Path>| {
                path.and_then(Path::file_name)
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            };
            let id = format!(
                "{}-{}-{index}",
                name(self.sandbox.root.parent()),
                name(Some(&self.sandbox.root))
            )
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
            let state = self.sandbox.dir("runc-state");
            let mut run_command = self.sandbox.command(self.program);
            run_command
                .arg("--root")
                .arg(&state)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id);
            let result = self.exec(
                &format!("running {}", smoke.bin),
                run_command,
                format!("runc run --bundle bundle {id}  # {}", args.join(" ")),
                commands,
            );
            let mut delete = self.sandbox.command(self.program);
            delete
                .arg("--root")
                .arg(&state)
                .args(["delete", "--force", &id]);
            let _ = run::run(delete, self.options.timeout);
            self.expect(smoke, &result?)?;
        }
        Ok(())
    }

    /// The install script: `sh install.sh --to DIR [--base-url URL] APP`, then each binary
    /// from DIR.
    fn install_script(&self, commands: &mut Vec<String>) -> Outcome {
        let bin_dir = self.sandbox.dir("bin");
        let mut args: Vec<String> = vec![
            self.location.to_owned(),
            "--to".into(),
            bin_dir.to_string_lossy().into_owned(),
        ];
        let dist_archives = self.options.from_dist.then(|| {
            let dist = std::path::absolute(&self.options.dist_dir)
                .unwrap_or_else(|_| self.options.dist_dir.clone());
            format!("file://{}", dist.join("archives").display())
        });
        let from_release = self.options.install_base_url.is_none() && dist_archives.is_none();
        if let Some(base) = self.options.install_base_url.clone().or(dist_archives) {
            args.push("--base-url".into());
            args.push(base);
        }
        args.push(self.app.name.clone());
        let mut command = self.sandbox.command(self.program);
        command.args(&args);
        self.exec(
            "install.sh",
            command,
            format!("sh {}", args.join(" ")),
            commands,
        )
        .map_err(|(status, reason)| {
            if !from_release {
                return (status, reason);
            }
            // publish uploads no archive: they reach the release's download location by the
            // forge's release step (the workflow's), which a local rehearsal does not have.
            let dist = std::path::absolute(&self.options.dist_dir)
                .unwrap_or_else(|_| self.options.dist_dir.clone());
            (
                status,
                format!(
                    "{reason}\n(install.sh downloads the archives from the release's download location, where the release workflow puts them, not `publish`; before they are there, check the script with --install-base-url file://{}/archives)",
                    dist.display()
                ),
            )
        })?;
        self.each_smoke(commands, |smoke| {
            let mut command = self.sandbox.command(bin_dir.join(&smoke.bin));
            command.args(&smoke.args);
            (
                command,
                format!("{}/{}", bin_dir.display(), smoke.display()),
            )
        })
    }
}
