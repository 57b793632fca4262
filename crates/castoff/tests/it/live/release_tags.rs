//! Release tags against the harness's registries: `publish --tag 1.2.0` of version 1.2.0 under
//! the default pattern is refused (it expects `v1.2.0`) and the registries hold nothing
//! afterwards; the same release with `tag = "{version}"` publishes for `1.2.0`. In a
//! workspace tagged per package (`{name}-v{version}`), each package's tag publishes that
//! package alone, and a tag naming none of them sends nothing.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use castoff_plan::report::PublishReport;
use castoff_test_support::TestEnv;
use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{assert_success, copy_fixture, output_text as text};

use crate::offline::release_tags::{HOST, castoff, tagged_greeter};

fn status(url: &str, auth: Option<&str>) -> String {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(auth) = auth {
        command.args(["-H", auth]);
    }
    let output = command.arg(url).output().expect("curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the registries hold of one app: `(pypi, npm, oci)`, each true when the registry
/// answers for the name (false on 404). The image repository is `host:port/<path>` on the
/// open registry.
pub(crate) fn held(env: &TestEnv, python: &str, npm: &str, repository: &str) -> (bool, bool, bool) {
    let bearer = format!("Authorization: Bearer {}", env.npm_token);
    let answer = |url: String, auth: Option<&str>| {
        let status = status(&url, auth);
        match status.as_str() {
            "200" => true,
            "404" => false,
            other => panic!("{url} answered {other}"),
        }
    };
    let path = repository
        .split_once('/')
        .map_or(repository, |(_, path)| path);
    (
        answer(format!("{}simple/{python}/", env.pypiserver), None),
        answer(
            format!("{}{}", env.verdaccio, npm.replace('/', "%2f")),
            Some(&bearer),
        ),
        answer(format!("{}/v2/{path}/tags/list", env.registry_open), None),
    )
}

/// `castoff publish` of `workspace`'s dist/ (or `extra`'s `--dist-dir`) to the harness's
/// pypiserver, Verdaccio and open registry (`repository`).
pub(crate) fn publish(
    env: &TestEnv,
    workspace: &Path,
    repository: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let manifest = workspace.join("Cargo.toml");
    let mut args = vec![
        "publish",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--pypi-url",
        &env.pypiserver,
        "--npm-registry",
        &env.verdaccio,
        "--oci-repository",
        repository,
    ];
    args.extend_from_slice(extra);
    let mut all = vec![
        ("TWINE_USERNAME", env.user.as_str()),
        ("TWINE_PASSWORD", env.password.as_str()),
        ("NPM_TOKEN", env.npm_token.as_str()),
    ];
    all.extend_from_slice(envs);
    let output = castoff(workspace.parent().unwrap(), &args, &all);
    env.assert_no_secret(&text(&output));
    output
}

fn report(workspace: &Path) -> PublishReport {
    serde_json::from_str(&fs::read_to_string(workspace.join("dist/publish-report.json")).unwrap())
        .unwrap()
}

#[test]
fn a_tag_is_checked_against_the_pattern_before_anything_is_sent() {
    let env = TestEnv::get();
    let label = format!("tagged{}", std::process::id());
    let dir = env.scratch_dir("release-tags-pattern");
    let workspace = tagged_greeter(&dir, &label, "1.2.0", None);
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{label}/greeter");
    let python = format!("greeter-{label}");
    let npm = format!("@{label}/greeter");

    // The default pattern wants `v1.2.0`: `1.2.0` is refused, as a dry run too, and so is
    // GitHub's tag ref; nothing reaches a registry.
    for (extra, envs) in [
        (&["--tag", "1.2.0"][..], &[][..]),
        (&["--tag", "1.2.0", "--dry-run"][..], &[][..]),
        (
            &[][..],
            &[("GITHUB_REF_TYPE", "tag"), ("GITHUB_REF_NAME", "1.2.0")][..],
        ),
    ] {
        let refused = publish(&env, &workspace, &repository, extra, envs);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("is not the release tag of")
                && stderr.contains("greeter 1.2.0: expects the tag `v1.2.0`"),
            "{stderr}"
        );
        assert_eq!(
            held(&env, &python, &npm, &repository),
            (false, false, false),
            "a refused publish sent something"
        );
    }

    // The project tags its releases `1.2.0`: with `tag = "{version}"` the same release
    // publishes for that tag, and `v1.2.0` is refused instead.
    let manifest = workspace.join("Cargo.toml");
    let configured = fs::read_to_string(&manifest).unwrap().replace(
        "[workspace.metadata.castoff]\n",
        "[workspace.metadata.castoff]\ntag = \"{version}\"\n",
    );
    fs::write(&manifest, configured).unwrap();
    let rebuilt = castoff(
        &dir,
        &[
            "dist",
            "--no-build",
            "--manifest-path",
            manifest.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&rebuilt, "dist with tag = \"{version}\"");
    let refused = publish(&env, &workspace, &repository, &["--tag", "v1.2.0"], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("greeter 1.2.0: expects the tag `1.2.0` (tag pattern `{version}`)"),
        "{}",
        text(&refused)
    );
    let published = publish(&env, &workspace, &repository, &["--tag", "1.2.0"], &[]);
    assert_success(&published, "publish --tag 1.2.0");
    for step in &report(&workspace).steps {
        assert_eq!(step.outcome, "uploaded", "{step:?}");
    }
    assert_eq!(held(&env, &python, &npm, &repository), (true, true, true));
}

/// A copy of `two-apps` (toolkit-core, and toolkit depending on it) tagged per package,
/// released for this machine's target with synthesized binaries, names of `label`'s own.
fn per_package_toolkit(dir: &Path, label: &str) -> std::path::PathBuf {
    let workspace = dir.join("workspace");
    copy_fixture("two-apps", &workspace);
    let root = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&root).unwrap().replace(
        "targets = [\"x86_64-unknown-linux-gnu\", \"x86_64-unknown-linux-musl\"]",
        &format!("targets = [\"{HOST}\"]\ntag = \"{{name}}-v{{version}}\""),
    );
    assert!(text.contains("tag = \"{name}-v{version}\""), "{text}");
    fs::write(&root, text).unwrap();
    for (member, python, npm) in [("core", "toolkit-core", "core"), ("cli", "toolkit", "cli")] {
        let manifest = workspace.join(member).join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .unwrap()
            .replace(
                &format!("python = {{ name = \"{python}\""),
                &format!("python = {{ name = \"{python}-{label}\""),
            )
            .replace(
                &format!("\"@toolkit/{npm}\""),
                &format!("\"@{label}/{npm}\""),
            );
        fs::write(&manifest, text).unwrap();
    }
    let release = workspace.join("target").join(HOST).join("release");
    for bin in ["tk", "tk-core"] {
        let path = write_static_elf(&release, bin, EM_X86_64, &format!("{bin}\n"));
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let built = castoff(
        dir,
        &[
            "dist",
            "--no-build",
            "--manifest-path",
            root.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&built, "dist of the toolkit");
    workspace
}

#[test]
fn a_per_package_tag_publishes_that_package_alone() {
    let env = TestEnv::get();
    let label = format!("pertag{}", std::process::id());
    let dir = env.scratch_dir("release-tags-per-package");
    let workspace = per_package_toolkit(&dir, &label);
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{label}/toolkit-core");
    let core = |env: &TestEnv| {
        held(
            env,
            &format!("toolkit-core-{label}"),
            &format!("@{label}/core"),
            &repository,
        )
    };
    let cli = |env: &TestEnv| {
        let (pypi, npm, _) = held(
            env,
            &format!("toolkit-{label}"),
            &format!("@{label}/cli"),
            &repository,
        );
        (pypi, npm)
    };

    // A tag that is no package's: nothing is sent, and the message lists every package's.
    let refused = publish(
        &env,
        &workspace,
        &repository,
        &["--tag", "v2.0.0-rc.1"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("toolkit-core 2.0.0-rc.1: expects the tag `toolkit-core-v2.0.0-rc.1`")
            && stderr.contains("toolkit 2.0.0-rc.1: expects the tag `toolkit-v2.0.0-rc.1`"),
        "{stderr}"
    );
    assert_eq!(core(&env), (false, false, false));
    assert_eq!(cli(&env), (false, false));

    // The core's tag publishes the core alone; the CLI's steps are left out.
    let published = publish(
        &env,
        &workspace,
        &repository,
        &["--tag", "toolkit-core-v2.0.0-rc.1"],
        &[],
    );
    assert_success(&published, "publish --tag toolkit-core-v2.0.0-rc.1");
    assert!(
        text(&published)
            .contains("publishing toolkit-core; leaving out toolkit (tag toolkit-v2.0.0-rc.1)"),
        "{}",
        text(&published)
    );
    for step in &report(&workspace).steps {
        let expected = if step.id.contains("/toolkit-core") {
            "uploaded"
        } else {
            "excluded"
        };
        assert_eq!(step.outcome, expected, "{step:?}");
    }
    assert_eq!(core(&env), (true, true, true));
    assert_eq!(cli(&env), (false, false));

    // Then the CLI's tag (from GitHub's ref this time), after its dependency.
    let published = publish(
        &env,
        &workspace,
        &repository,
        &[],
        &[
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_REF_NAME", "toolkit-v2.0.0-rc.1"),
        ],
    );
    assert_success(
        &published,
        "publish for GITHUB_REF_NAME=toolkit-v2.0.0-rc.1",
    );
    for step in &report(&workspace).steps {
        let expected = if step.id.contains("/toolkit-core") {
            "excluded"
        } else {
            "uploaded"
        };
        assert_eq!(step.outcome, expected, "{step:?}");
    }
    assert_eq!(cli(&env), (true, true));
}
