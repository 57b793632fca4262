//! `castoff verify` end to end: a fixture released to the harness's pypiserver, Verdaccio and
//! distribution registry is installed back with every client the harness installs (pip, uv,
//! pipx, npm, pnpm, yarn, bun, deno, docker, skopeo + umoci + runc, install.sh), cell by cell
//! in `--json`; a release
//! with broken artifacts (a wheel whose entry script is not executable, a launcher whose
//! optionalDependencies miss the host's platform package, an image whose entrypoint is wrong)
//! fails exactly in those cells, each with a reason naming the problem; `--require` of a
//! client that is not on PATH fails, naming it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text as text, release_for_host_only};
use serde_json::Value;

/// What breaks the wheel and the launcher in dist/ (and records them in the manifest).
const BREAK_SCRIPT: &str = include_str!("verify_break.py");

/// The clients the harness installs, each of which must pass on a good release.
const CLIENTS: &[(&str, &str)] = &[
    ("pip", "python"),
    ("uv", "python"),
    ("pipx", "python"),
    ("npm", "npm"),
    ("pnpm", "npm"),
    ("yarn", "npm"),
    ("bun", "npm"),
    ("deno", "npm"),
    ("docker", "oci"),
    ("runc", "oci"),
    ("install.sh", "install-script"),
];

/// A released copy of single-cli with registry names unique to `tag`, built and published
/// to the harness's registries. Returns the workspace.
fn released(env: &TestEnv, tag: &str, break_it: bool, publish_it: bool) -> PathBuf {
    let root = env.scratch_dir(&format!("verify-{tag}"));
    let workspace = root.join("workspace");
    copy_fixture("single-cli", &workspace);
    let cargo_toml = workspace.join("Cargo.toml");
    let text_before = fs::read_to_string(&cargo_toml).unwrap();
    fs::write(
        &cargo_toml,
        text_before
            .replace(
                "name = \"greeter\" }",
                &format!("name = \"greeter-{tag}\" }}"),
            )
            .replace("\"@acme/greeter\"", &format!("\"@{tag}/greeter\"")),
    )
    .unwrap();
    release_for_host_only(&workspace);
    let dist = castoff(env, &workspace, &["dist"], &[]);
    assert!(dist.status.success(), "dist: {}", text(&dist));
    if break_it {
        break_dist(env, &workspace, tag);
    }
    if !publish_it {
        return workspace;
    }
    let publish = castoff(
        env,
        &workspace,
        &[
            "publish",
            "--pypi-url",
            &env.pypiserver,
            "--npm-registry",
            &env.verdaccio,
            "--oci-repository",
            &repository(env, tag),
        ],
        &[
            ("TWINE_USERNAME", env.user.as_str()),
            ("TWINE_PASSWORD", env.password.as_str()),
            ("NPM_TOKEN", env.npm_token.as_str()),
        ],
    );
    assert!(publish.status.success(), "publish: {}", text(&publish));
    workspace
}

/// The wheel's script without its executable bit, the launcher without the host's package.
fn break_dist(env: &TestEnv, workspace: &Path, tag: &str) {
    let broken = Command::new(env.tool("python3"))
        .arg("-c")
        .arg(BREAK_SCRIPT)
        .arg(workspace.join("dist"))
        .arg(format!("@{tag}/greeter-linux-x64-gnu"))
        .output()
        .unwrap();
    assert!(broken.status.success(), "breaking dist/: {}", text(&broken));
}

fn repository(env: &TestEnv, tag: &str) -> String {
    format!("{}/{tag}/greeter", TestEnv::host_port(&env.registry_open))
}

/// castoff in `workspace` with its own HOME and nothing of the developer's configuration.
fn castoff(env: &TestEnv, workspace: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("DOCKER_HOST", &env.docker_host)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for name in [
        "CASTOFF_PYPI_TOKEN",
        "TWINE_USERNAME",
        "TWINE_PASSWORD",
        "NODE_AUTH_TOKEN",
        "NPM_TOKEN",
        "GITHUB_ACTIONS",
        "GITHUB_REF_TYPE",
        "GITHUB_REF_NAME",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied());
    command.output().expect("running castoff")
}

/// PATH with the harness's venv and Node tools first (`with_node`: also the Node tools).
fn client_path(env: &TestEnv, with_node_tools: bool) -> String {
    let mut dirs = vec![env.venv_bin()];
    if with_node_tools {
        dirs.push(env.node_bin());
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `castoff verify --json` of `workspace`'s release with `extra` arguments and `path`.
fn verify(
    env: &TestEnv,
    workspace: &Path,
    tag: &str,
    path: &str,
    extra: &[&str],
) -> (Output, Value) {
    let base_url = format!("file://{}", workspace.join("dist/archives").display());
    let repository = repository(env, tag);
    let mut args = vec![
        "verify",
        "--json",
        "--pypi-url",
        &env.pypiserver,
        "--npm-registry",
        &env.verdaccio,
        "--oci-repository",
        &repository,
        "--install-base-url",
        &base_url,
    ];
    args.extend_from_slice(extra);
    let output = castoff(env, workspace, &args, &[("PATH", path)]);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("verify --json printed no JSON ({error}): {}", text(&output))
    });
    env.assert_no_secret(&text(&output));
    (output, json)
}

/// The check of `client` in `json`.
fn cell<'a>(json: &'a Value, client: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["client"] == client)
        .unwrap_or_else(|| panic!("no check of {client} in {json:#}"))
}

#[test]
fn a_good_release_installs_with_every_client() {
    let env = TestEnv::get();
    let tag = &format!("vgood{}", std::process::id());
    let workspace = released(&env, tag, false, true);
    let (output, json) = verify(&env, &workspace, tag, &client_path(&env, true), &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["ok"], true);
    let artifacts = [
        ("python", format!("greeter-{tag}==0.3.1")),
        ("npm", format!("@{tag}/greeter@0.3.1")),
        ("oci", format!("{}:0.3.1", repository(&env, tag))),
        ("install-script", "install.sh greeter".to_owned()),
    ];
    for (client, channel) in CLIENTS {
        let check = cell(&json, client);
        assert_eq!(check["status"], "ok", "{client}: {check:#}");
        assert_eq!(check["channel"], *channel, "{check:#}");
        let artifact = &artifacts.iter().find(|(c, _)| c == channel).unwrap().1;
        assert_eq!(check["artifact"], artifact.as_str(), "{check:#}");
        assert_eq!(check["version"], "0.3.1");
        assert!(
            check["commands"]
                .as_array()
                .unwrap()
                .iter()
                .any(|command| command.as_str().unwrap().contains("--version")),
            "{client} ran no smoke command: {check:#}"
        );
    }
    // The harness has no podman: its cells say so (not a failure without --require).
    let podman = cell(&json, "podman");
    assert_eq!(podman["status"], "absent", "{podman:#}");
    assert!(
        podman["reason"]
            .as_str()
            .unwrap()
            .contains("`podman` is not on PATH")
    );
    assert_eq!(json["checks"].as_array().unwrap().len(), CLIENTS.len() + 1);

    // The table says the same.
    let table = castoff(
        &env,
        &workspace,
        &[
            "verify",
            "--pypi-url",
            &env.pypiserver,
            "--npm-registry",
            &env.verdaccio,
            "--oci-repository",
            &repository(&env, tag),
            "--install-base-url",
            &format!("file://{}", workspace.join("dist/archives").display()),
            "--require",
            "docker",
        ],
        &[("PATH", &client_path(&env, true))],
    );
    assert!(table.status.success(), "{}", text(&table));
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        stdout.contains("11 ok, 0 failed, 1 absent, 0 not verifiable"),
        "{stdout}"
    );

    // --require a client PATH does not have (the Node tools left out: no deno): a failure
    // naming it, while every other cell still runs.
    let (output, json) = verify(
        &env,
        &workspace,
        tag,
        &client_path(&env, false),
        &["--require", "deno"],
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["ok"], false);
    let deno = cell(&json, "deno");
    assert_eq!(deno["status"], "failed", "{deno:#}");
    assert_eq!(
        deno["reason"], "`deno` is not on PATH (--require)",
        "{deno:#}"
    );
    // Not required: absent, not failed.
    assert_eq!(cell(&json, "bun")["status"], "absent");
    assert_eq!(cell(&json, "pip")["status"], "ok");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "1 check(s) failed: @{tag}/greeter@0.3.1 with deno"
        )),
        "{stderr}"
    );
}

#[test]
fn broken_artifacts_are_caught_by_name() {
    let env = TestEnv::get();
    let tag = &format!("vbroken{}", std::process::id());
    let workspace = released(&env, tag, true, true);
    // The image: the published one's config with a wrong entrypoint, pushed over the
    // version tag (skopeo and umoci, as a hand-made fix-up would).
    let layout = workspace.parent().unwrap().join("layout");
    let image = format!("docker://{}:0.3.1", repository(&env, tag));
    let step = |program: &str, args: &[&str]| {
        let output = Command::new(env.tool(program)).args(args).output().unwrap();
        assert!(output.status.success(), "{program}: {}", text(&output));
    };
    let good = format!("oci:{}:good", layout.display());
    let bad = format!("oci:{}:bad", layout.display());
    step("skopeo", &["copy", "--src-tls-verify=false", &image, &good]);
    step(
        "umoci",
        &[
            "config",
            "--image",
            &format!("{}:good", layout.display()),
            "--tag",
            "bad",
            "--config.entrypoint",
            "/usr/local/bin/not-greeter",
        ],
    );
    step("skopeo", &["copy", "--dest-tls-verify=false", &bad, &image]);

    let (output, json) = verify(&env, &workspace, tag, &client_path(&env, true), &[]);
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(json["ok"], false);
    let reason = |client: &str| {
        let check = cell(&json, client);
        assert_eq!(check["status"], "failed", "{client}: {check:#}");
        check["reason"].as_str().unwrap().to_owned()
    };

    // (b) the wheel: pip installs the script as it is in the zip, without its executable bit.
    let pip = reason("pip");
    assert!(
        pip.contains("venv/bin/greeter --version")
            && pip.contains("not executable (installed without its executable bit)"),
        "{pip}"
    );

    // (a) the launcher: every npm client installs it without the platform package, and the
    // launcher names the package it misses.
    for client in ["npm", "pnpm", "yarn", "bun", "deno"] {
        let why = reason(client);
        assert!(
            why.contains("the greeter binary for this platform is not installed")
                && why.contains(&format!("expected: @{tag}/greeter-linux-x64-gnu@0.3.1")),
            "{client}: {why}"
        );
    }

    // (c) the image: the runtime cannot start its entrypoint.
    let docker = reason("docker");
    assert!(
        docker.contains("/usr/local/bin/not-greeter") && docker.contains("no such file"),
        "{docker}"
    );

    // The same image pulled with skopeo, unpacked with umoci and run under runc.
    let runc = reason("runc");
    assert!(
        runc.contains("/usr/local/bin/not-greeter --version") && runc.contains("no such file"),
        "{runc}"
    );

    // What is not broken stays green: the archive through install.sh.
    assert_eq!(cell(&json, "install.sh")["status"], "ok");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("greeter-{tag}==0.3.1 with pip")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:0.3.1 with docker", repository(&env, tag))),
        "{stderr}"
    );
}

/// Before publishing: `verify --dist` serves dist/ itself on 127.0.0.1 (nothing of this
/// release is on any registry) and every client installs from it; after breaking the wheel
/// and the launcher, exactly their cells fail, by name.
#[test]
fn before_publishing_dist_is_verified_from_a_local_index() {
    let env = TestEnv::get();
    let tag = &format!("vdist{}", std::process::id());
    let workspace = released(&env, tag, false, false);
    let path = client_path(&env, true);
    let run = || {
        let output = castoff(
            &env,
            &workspace,
            &["--json", "verify", "--dist"],
            &[("PATH", &path)],
        );
        let json: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("no JSON ({error}): {}", text(&output)));
        (output, json)
    };
    let (output, json) = run();
    assert!(output.status.success(), "{}", text(&output));
    for (client, _) in CLIENTS {
        let check = cell(&json, client);
        assert_eq!(check["status"], "ok", "{client}: {check:#}");
    }
    // The image came from the local registry, not from one the release names.
    let image = cell(&json, "docker")["artifact"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        image.starts_with("127.0.0.1:") && image.ends_with("/greeter:0.3.1"),
        "{image}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serving "), "{stderr}");

    break_dist(&env, &workspace, tag);
    let (output, json) = run();
    assert!(!output.status.success(), "{}", text(&output));
    let pip = cell(&json, "pip");
    assert_eq!(pip["status"], "failed");
    assert!(
        pip["reason"].as_str().unwrap().contains("not executable"),
        "{pip:#}"
    );
    for client in ["npm", "pnpm", "yarn", "bun", "deno"] {
        let check = cell(&json, client);
        assert_eq!(check["status"], "failed", "{client}: {check:#}");
        assert!(
            check["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("expected: @{tag}/greeter-linux-x64-gnu@0.3.1")),
            "{client}: {check:#}"
        );
    }
    assert_eq!(cell(&json, "docker")["status"], "ok");
    assert_eq!(cell(&json, "install.sh")["status"], "ok");
}
