//! `castoff yank` end to end against the harness's real registries: a fixture is released
//! twice (0.3.1, then 0.3.2) to Verdaccio, a distribution registry, pypiserver and devpi, and
//! 0.3.2 is yanked. Checked with the real clients: `npm view` and `npm install` pick 0.3.1 and
//! show 0.3.2 deprecated, `skopeo inspect` sees the floating tags back on 0.3.1's index (and
//! the 0.3.2 tag still there), `pip install` resolves to 0.3.1 from both indexes. Around it:
//! no confirmation without a terminal and without --yes; --dry-run changes nothing (and shows
//! the manual steps for pypi.org); a refusal half-way fails one step, the others finish, and
//! a re-run finishes it; a re-run of a finished yank changes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::yank_report::YankReport;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text as text, release_for_host_only};

use super::hardening::proxy::{Proxy, Refusal};

fn castoff(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        .env("HOME", home)
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for name in [
        "CASTOFF_PYPI_TOKEN",
        "TWINE_USERNAME",
        "TWINE_PASSWORD",
        "NODE_AUTH_TOKEN",
        "NPM_TOKEN",
        "CASTOFF_OCI_USERNAME",
        "CASTOFF_OCI_PASSWORD",
        "CASTOFF_PYPI_URL",
        "CASTOFF_NPM_REGISTRY",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GITHUB_ACTIONS",
        "GITHUB_REF_TYPE",
        "GITHUB_REF_NAME",
    ] {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied());
    command.output().expect("running castoff")
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{}: {error}", program.display()))
}

fn dist(workspace: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(output.status.success(), "dist failed: {}", text(&output));
}

fn yank_report(workspace: &Path) -> YankReport {
    serde_json::from_str(&fs::read_to_string(workspace.join("dist/yank-report.json")).unwrap())
        .unwrap()
}

fn step<'a>(report: &'a YankReport, prefix: &str) -> &'a castoff_plan::yank_report::YankStepReport {
    report
        .steps
        .iter()
        .find(|step| step.id.starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix} in {report:#?}"))
}

/// `npm view <spec> <field> --json` against the registry, parsed.
fn npm_view(env: &TestEnv, home: &Path, spec: &str, field: &str) -> serde_json::Value {
    let output = Command::new("npm")
        .args(["view", spec, field, "--json", "--registry", &env.verdaccio])
        .args(["--userconfig", "/dev/null", "--prefer-online", "--cache"])
        .arg(home.join(".npm-cache"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "npm view {spec} {field}: {}",
        text(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// The digest skopeo reads for `reference` (the sha256 of the manifest bytes served).
fn skopeo_digest(env: &TestEnv, reference: &str) -> String {
    let inspect = run(
        &env.tool("skopeo"),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    assert!(inspect.status.success(), "{reference}: {}", text(&inspect));
    format!(
        "sha256:{}",
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(&inspect.stdout))
    )
}

/// The version of `project` pip installs from `index` into a fresh venv.
fn pip_resolves(env: &TestEnv, dir: &Path, index: &str, project: &str) -> String {
    let venv = dir.join(format!("venv-{}", index.len()));
    let _ = fs::remove_dir_all(&venv);
    let created = run(
        &env.tool("python3"),
        &["-m", "venv", venv.to_str().unwrap()],
    );
    assert!(created.status.success(), "{}", text(&created));
    let pip = run(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--no-cache-dir",
            "--index-url",
            index,
            project,
        ],
    );
    assert!(pip.status.success(), "{}", text(&pip));
    let show = run(&venv.join("bin/pip"), &["show", project]);
    String::from_utf8_lossy(&show.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("Version: "))
        .unwrap_or_default()
        .to_owned()
}

fn bump(workspace: &Path, from: &str, to: &str) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        let path = workspace.join(file);
        let text = fs::read_to_string(&path).unwrap();
        let old = format!("name = \"greeter\"\nversion = \"{from}\"");
        assert!(text.contains(&old), "{file} has no {old}");
        fs::write(
            &path,
            text.replace(&old, &format!("name = \"greeter\"\nversion = \"{to}\"")),
        )
        .unwrap();
    }
}

#[test]
fn yank_moves_tags_back_deprecates_removes_and_reruns_finish() {
    let env = TestEnv::get();
    let tag = format!("y{}", std::process::id());
    let workspace: PathBuf = env.scratch_dir(&format!("yank-{tag}")).join("workspace");
    copy_fixture("single-cli", &workspace);
    let cargo_toml = workspace.join("Cargo.toml");
    let manifest_text = fs::read_to_string(&cargo_toml)
        .unwrap()
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"greeter-{tag}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"@{tag}/greeter\""));
    fs::write(&cargo_toml, manifest_text).unwrap();
    release_for_host_only(&workspace);
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    let manifest_path = workspace.join("Cargo.toml").to_string_lossy().into_owned();
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{tag}/greeter");
    let project = format!("greeter-{tag}");
    let launcher = format!("@{tag}/greeter");
    let credentials = [
        ("TWINE_USERNAME", env.user.as_str()),
        ("TWINE_PASSWORD", env.password.as_str()),
        ("NPM_TOKEN", env.npm_token.as_str()),
    ];
    let publish = |pypi: &str, only: &[&str]| {
        let mut args = vec![
            "publish",
            "--manifest-path",
            &manifest_path,
            "--pypi-url",
            pypi,
            "--npm-registry",
            &env.verdaccio,
            "--oci-repository",
            &repository,
        ];
        for only in only {
            args.extend(["--only", only]);
        }
        let output = castoff(&args, &credentials, &home);
        assert!(output.status.success(), "publish: {}", text(&output));
    };
    // Two releases, each to every channel and to both Python indexes.
    dist(&workspace);
    publish(&env.pypiserver, &[]);
    publish(&env.devpi, &["pypi-upload/"]);
    let first_index = skopeo_digest(&env, &format!("{repository}:0.3.1"));
    bump(&workspace, "0.3.1", "0.3.2");
    dist(&workspace);
    publish(&env.pypiserver, &[]);
    publish(&env.devpi, &["pypi-upload/"]);
    let second_index = skopeo_digest(&env, &format!("{repository}:0.3.2"));
    assert_ne!(first_index, second_index);
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.2"
    );
    assert_eq!(
        skopeo_digest(&env, &format!("{repository}:latest")),
        second_index
    );

    let yank_args = |pypi: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "yank",
            "0.3.2",
            "--manifest-path",
            &manifest_path,
            "--pypi-url",
            pypi,
            "--oci-repository",
            &repository,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let yank = |args: &[String], npm: &str| {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--npm-registry", npm]);
        let output = castoff(&args, &credentials, &home);
        env.assert_no_secret(&text(&output));
        output
    };

    // Without a terminal and without --yes: refused, naming the flag, before anything.
    let refused = yank(&yank_args(&env.pypiserver, &[]), &env.verdaccio);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused)
    );
    assert!(!workspace.join("dist/yank-report.json").exists());

    // On a terminal it asks; "n" cancels and changes nothing (`script` gives it a terminal).
    let typescript = workspace.parent().unwrap().join("typescript");
    let mut line = vec![env!("CARGO_BIN_EXE_castoff").to_owned()];
    line.extend(yank_args(
        &env.pypiserver,
        &["--npm-registry", &env.verdaccio],
    ));
    let quoted: Vec<String> = line.iter().map(|word| format!("'{word}'")).collect();
    let mut asked = Command::new("script")
        .arg("-qfec")
        .arg(quoted.join(" "))
        .arg(&typescript)
        .env("HOME", &home)
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .envs(credentials.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running script (util-linux)");
    {
        use std::io::Write as _;
        let mut stdin = asked.stdin.take().unwrap();
        stdin.write_all(b"n\n").unwrap();
    }
    let asked = asked.wait_with_output().unwrap();
    let drawn = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    env.assert_no_secret(&drawn);
    assert_eq!(asked.status.code(), Some(1), "{drawn}");
    assert!(drawn.contains("[y/N]"), "{drawn}");
    assert!(
        drawn.contains("yank cancelled: nothing was changed"),
        "{drawn}"
    );
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.2"
    );

    // A dry run shows the plan and changes nothing; with pypi.org as the upload URL (its
    // index read from pypiserver) the PyPI step is manual, with the page to do it on.
    let dry = yank(
        &yank_args(
            "https://upload.pypi.org/legacy/",
            &[
                "--dry-run",
                "--pypi-index-url",
                &format!("{}simple/", env.pypiserver),
            ],
        ),
        &env.verdaccio,
    );
    let dry_text = text(&dry);
    assert!(dry.status.success(), "{dry_text}");
    let report = yank_report(&workspace);
    assert!(report.dry_run);
    assert_eq!(
        step(&report, &format!("npm/{launcher}")).outcome,
        "would-undo"
    );
    assert_eq!(step(&report, "oci/").outcome, "would-undo");
    let pypi = step(&report, "pypi/");
    assert_eq!(pypi.outcome, "manual", "{pypi:?}");
    let manage = format!("https://pypi.org/manage/project/{project}/release/0.3.2/");
    assert!(pypi.manual[0].contains(&manage), "{pypi:?}");
    assert!(dry_text.contains(&manage), "{dry_text}");
    assert!(dry_text.contains("move dist-tag `latest`"), "{dry_text}");
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.2"
    );
    assert_eq!(
        skopeo_digest(&env, &format!("{repository}:latest")),
        second_index
    );
    let index = format!("{}simple/", env.pypiserver);
    assert_eq!(pip_resolves(&env, &workspace, &index, &project), "0.3.2");

    // Half-way: the registry refuses the launcher's dist-tag move. That step fails, the
    // others finish, the exit code says so; a re-run finishes the launcher.
    let npm_proxy = Proxy::start(TestEnv::host_port(&env.verdaccio));
    npm_proxy.refuse(Some(Refusal {
        matching: format!("PUT /-/package/@{tag}%2fgreeter/dist-tags/latest"),
        status: 403,
        reason: "Forbidden".to_owned(),
        body: "{\"error\":\"not allowed to change dist-tags now\"}".to_owned(),
        headers: Vec::new(),
        times: 1,
    }));
    let half = yank(&yank_args(&env.pypiserver, &["--yes"]), &npm_proxy.url());
    let half_text = text(&half);
    assert_eq!(half.status.code(), Some(1), "{half_text}");
    assert!(
        half_text.contains("not allowed to change dist-tags now"),
        "{half_text}"
    );
    assert!(half_text.contains("hint:"), "{half_text}");
    let report = yank_report(&workspace);
    assert_eq!(
        step(&report, &format!("npm/{launcher}")).outcome,
        "failed",
        "{report:#?}"
    );
    assert_eq!(
        step(&report, &format!("npm/{launcher}-")).outcome,
        "done",
        "{report:#?}"
    );
    assert_eq!(step(&report, "oci/").outcome, "done", "{report:#?}");
    assert_eq!(step(&report, "pypi/").outcome, "done", "{report:#?}");
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.2"
    );

    let rerun = yank(&yank_args(&env.pypiserver, &["--yes"]), &env.verdaccio);
    assert!(rerun.status.success(), "{}", text(&rerun));
    let report = yank_report(&workspace);
    assert_eq!(
        step(&report, &format!("npm/{launcher}")).outcome,
        "done",
        "{report:#?}"
    );
    for other in [
        format!("npm/{launcher}-"),
        "oci/".to_owned(),
        "pypi/".to_owned(),
    ] {
        assert_eq!(step(&report, &other).outcome, "skipped", "{report:#?}");
    }

    // What the clients see now.
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.1"
    );
    let deprecated = npm_view(&env, &home, &format!("{launcher}@0.3.2"), "deprecated");
    assert!(
        deprecated.as_str().is_some_and(|d| d.contains("0.3.2")),
        "{deprecated}"
    );
    let project_dir = workspace.parent().unwrap().join("npm-project");
    fs::create_dir_all(&project_dir).unwrap();
    fs::write(
        project_dir.join("package.json"),
        "{\"name\":\"consumer\",\"private\":true}",
    )
    .unwrap();
    let install = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--registry",
            &env.verdaccio,
        ])
        .args(["--userconfig", "/dev/null", "--cache"])
        .arg(project_dir.join(".npm-cache"))
        .arg(&launcher)
        .current_dir(&project_dir)
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", text(&install));
    let installed: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(project_dir.join(format!("node_modules/{launcher}/package.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(installed["version"], "0.3.1");
    for floating in ["latest", "0.3"] {
        assert_eq!(
            skopeo_digest(&env, &format!("{repository}:{floating}")),
            first_index,
            "{floating}"
        );
    }
    assert_eq!(
        skopeo_digest(&env, &format!("{repository}:0.3.2")),
        second_index
    );
    assert_eq!(pip_resolves(&env, &workspace, &index, &project), "0.3.1");

    // devpi: the same yank against it removes the release there (npm and images: done).
    let devpi_simple = format!("{}+simple/", env.devpi);
    assert_eq!(
        pip_resolves(&env, &workspace, &devpi_simple, &project),
        "0.3.2"
    );
    let on_devpi = yank(&yank_args(&env.devpi, &["--yes"]), &env.verdaccio);
    assert!(on_devpi.status.success(), "{}", text(&on_devpi));
    let report = yank_report(&workspace);
    assert_eq!(step(&report, "pypi/").outcome, "done", "{report:#?}");
    assert_eq!(step(&report, "oci/").outcome, "skipped", "{report:#?}");
    assert_eq!(
        pip_resolves(&env, &workspace, &devpi_simple, &project),
        "0.3.1"
    );

    // A finished yank, run again: nothing left, nothing changed.
    for pypi in [&env.pypiserver, &env.devpi] {
        let again = yank(&yank_args(pypi, &["--yes", "--json"]), &env.verdaccio);
        assert!(again.status.success(), "{}", text(&again));
        let printed: YankReport = serde_json::from_slice(&again.stdout).unwrap();
        for step in &printed.steps {
            assert_eq!(step.outcome, "skipped", "{step:?}");
            assert!(step.changes.is_empty(), "{step:?}");
        }
        assert_eq!(printed, yank_report(&workspace));
    }
    // Yanking 0.3.1 too (a dry run): no earlier release, so npm's `latest` stays (npm
    // requires one; a manual step says so) while the version is still deprecated, and the
    // image's floating tags have nowhere to go: manual.
    let mut args = yank_args(&env.pypiserver, &["--dry-run"]);
    args[1] = "0.3.1".to_owned();
    let last = yank(&args, &env.verdaccio);
    let last_text = text(&last);
    assert!(last.status.success(), "{last_text}");
    let report = yank_report(&workspace);
    let npm = step(&report, &format!("npm/{launcher}"));
    assert!(
        !npm.changes.iter().any(|c| c.contains("dist-tag `latest`")),
        "{npm:?}"
    );
    assert!(
        npm.changes.iter().any(|c| c.starts_with("deprecate ")),
        "{npm:?}"
    );
    assert!(
        npm.manual
            .iter()
            .any(|m| m.contains("`latest` stays on 0.3.1")),
        "{npm:?}"
    );
    let image = step(&report, "oci/");
    assert_eq!(image.state, "manual", "{image:?}");
    assert_eq!(image.outcome, "manual", "{image:?}");
    assert!(
        image.manual.iter().any(|m| m.contains(":latest")),
        "{image:?}"
    );
    assert_eq!(
        npm_view(&env, &home, &launcher, "dist-tags.latest"),
        "0.3.1"
    );

    env.assert_no_secret(&fs::read_to_string(workspace.join("dist/yank-report.json")).unwrap());
    env.figure(format!(
        "yank: {} steps (npm launcher and platform package, image, PyPI), refused half-way, finished by a re-run",
        printed_steps(&workspace)
    ));
}

fn printed_steps(workspace: &Path) -> usize {
    yank_report(workspace).steps.len()
}
