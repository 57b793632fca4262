//! Release tags (`tag` patterns) where no server is needed: `install.sh` downloads each
//! archive from the GitHub release of its app's tag (run with `sh`, a `curl` on PATH recording
//! the URL and serving the archive from dist/); `castoff init` triggers the release workflow on
//! each package's tag filter and refuses a bad pattern before writing anything; `publish`
//! refuses a tag that is not the release's with exit code 2 before it opens a connection (the
//! destinations are a closed port). `live::release_tags` publishes the same workspaces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{
    assert_success, copy_fixture, isolated_command, output_text as text, repository_root,
};

pub(crate) const HOST: &str = "x86_64-unknown-linux-gnu";

/// A scratch directory of this test process, emptied.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = repository_root()
        .join("target/castoff-test-scratch/release-tags")
        .join(std::process::id().to_string())
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// castoff in `dir` with a home of its own and nothing of the developer's environment (no
/// credentials, no GitHub variables unless `envs` sets them).
pub(crate) fn castoff(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), &home)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .output()
        .expect("running castoff")
}

/// A copy of `single-cli` in `dir/workspace`, released for this machine's target only (a
/// complete release), at `version`, under the tag pattern `tag` (none: the default), with
/// PyPI and npm names of `label`'s own; its dist/ is built from a synthesized binary that
/// prints `greeter <version>` (`dist --no-build`). Returns the workspace.
pub(crate) fn tagged_greeter(dir: &Path, label: &str, version: &str, tag: Option<&str>) -> PathBuf {
    let workspace = dir.join("workspace");
    copy_fixture("single-cli", &workspace);
    let manifest = workspace.join("Cargo.toml");
    let mut text = fs::read_to_string(&manifest)
        .unwrap()
        .replacen(
            "version = \"0.3.1\"",
            &format!("version = \"{version}\""),
            1,
        )
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"greeter-{label}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"@{label}/greeter\""));
    let targets = text
        .lines()
        .find(|line| line.starts_with("targets = "))
        .unwrap()
        .to_owned();
    text = text.replace(&targets, &format!("targets = [\"{HOST}\"]"));
    if let Some(tag) = tag {
        text = text.replace(
            "[workspace.metadata.castoff]\n",
            &format!("[workspace.metadata.castoff]\ntag = \"{tag}\"\n"),
        );
    }
    fs::write(&manifest, text).unwrap();
    let release = workspace.join("target").join(HOST).join("release");
    let binary = write_static_elf(
        &release,
        "greeter",
        EM_X86_64,
        &format!("greeter {version}\n"),
    );
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let built = castoff(
        dir,
        &[
            "dist",
            "--no-build",
            "--manifest-path",
            manifest.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&built, "dist --no-build");
    workspace
}

/// A `curl` for install.sh: records each URL it is asked for in `$SHIM_LOG` and serves the
/// file of that name from `$SHIM_ARCHIVES`.
const CURL_SHIM: &str = r#"#!/bin/sh
out=""
url=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --output) out=$2; shift 2 ;;
        -*) shift ;;
        *) url=$1; shift ;;
    esac
done
printf '%s\n' "$url" >> "$SHIM_LOG"
cp "$SHIM_ARCHIVES/${url##*/}" "$out"
"#;

#[test]
fn install_script_downloads_from_the_release_of_the_apps_tag() {
    for (tag, release) in [(None, "v1.2.0"), (Some("{version}"), "1.2.0")] {
        let dir = scratch(&format!("install-{release}"));
        let workspace = tagged_greeter(&dir, "install", "1.2.0", tag);
        let shim = dir.join("shim");
        fs::create_dir_all(&shim).unwrap();
        fs::write(shim.join("curl"), CURL_SHIM).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(shim.join("curl"), fs::Permissions::from_mode(0o755)).unwrap();
        let log = dir.join("urls");
        let bin = dir.join("bin");
        let installed = Command::new("sh")
            .arg(workspace.join("dist/install.sh"))
            .arg("--to")
            .arg(&bin)
            .env("PATH", format!("{}:/usr/bin:/bin", shim.display()))
            .env("SHIM_LOG", &log)
            .env("SHIM_ARCHIVES", workspace.join("dist/archives"))
            .env_remove("CASTOFF_INSTALL_BASE_URL")
            .output()
            .unwrap();
        assert_success(&installed, "sh install.sh");
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            format!(
                "https://github.com/acme/greeter/releases/download/{release}/greeter-1.2.0-{HOST}.tar.gz\n"
            )
        );
        let ran = Command::new(bin.join("greeter")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&ran.stdout), "greeter 1.2.0\n");
    }
}

/// `--tag` (or GitHub's tag ref) that is not the release tag: exit 2 naming the tag, the
/// package, its version and the tag it expects, before any connection (every destination is
/// a closed port: a request would fail with exit code 1). `--tag` wins over GitHub's ref.
#[test]
fn publish_refuses_a_tag_that_is_not_the_release_tag() {
    let dir = scratch("refused-tag");
    let workspace = tagged_greeter(&dir, "refused", "1.2.0", None);
    let manifest = workspace.join("Cargo.toml");
    let publish = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec![
            "publish",
            "--dry-run",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--pypi-url",
            "http://127.0.0.1:9/",
            "--npm-registry",
            "http://127.0.0.1:9/",
            "--oci-repository",
            "127.0.0.1:9/refused/greeter",
        ];
        args.extend_from_slice(extra);
        castoff(&dir, &args, envs)
    };
    let expected = "  greeter 1.2.0: expects the tag `v1.2.0` (tag pattern `v{version}`)\n";
    let refused = publish(&["--tag", "1.2.0"], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: the tag `1.2.0` (from --tag) is not the release tag of")
            && stderr.contains(expected)
            && stderr.contains(
                "hint: if `1.2.0` is how this project tags releases, set tag = \"{version}\""
            ),
        "{stderr}"
    );
    let github = [("GITHUB_REF_TYPE", "tag"), ("GITHUB_REF_NAME", "1.2.0")];
    let refused = publish(&[], &github);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the tag `1.2.0` (from GITHUB_REF_NAME)") && stderr.contains(expected),
        "{stderr}"
    );
    // A branch run checks no tag; a --tag that is right wins over GitHub's wrong one: both go
    // on to the registries, so they fail at the closed port (exit 1), past the tag check.
    for (extra, envs) in [
        (
            &[][..],
            &[("GITHUB_REF_TYPE", "branch"), ("GITHUB_REF_NAME", "main")][..],
        ),
        (&["--tag", "v1.2.0"][..], &github[..]),
    ] {
        let passed = publish(extra, envs);
        let stderr = String::from_utf8_lossy(&passed.stderr).into_owned();
        assert_eq!(
            passed.status.code(),
            Some(1),
            "{extra:?} {envs:?}: {stderr}"
        );
        assert!(!stderr.contains("is not the release tag"), "{stderr}");
        assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    }
}

/// A workspace of two binary packages, `alpha` (workspace tag pattern) and `beta` (its own,
/// when `beta_tag` is set), for `castoff init`.
fn two_tools(dir: &Path, workspace_tag: Option<&str>, beta_tag: Option<&str>) -> PathBuf {
    let root = dir.join("tools");
    let _ = fs::remove_dir_all(&root);
    for name in ["alpha", "beta"] {
        fs::create_dir_all(root.join(name).join("src")).unwrap();
        let table = match (name, beta_tag) {
            ("beta", Some(tag)) => format!(
                "\n[package.metadata.castoff]\ntag = \"{tag}\"\npython = {{ name = \"beta\" }}\n"
            ),
            _ => String::new(),
        };
        fs::write(
            root.join(name).join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n{table}"
            ),
        )
        .unwrap();
        fs::write(root.join(name).join("src/main.rs"), "fn main() {}\n").unwrap();
    }
    let tag = workspace_tag.map_or_else(String::new, |tag| {
        format!("\n[workspace.metadata.castoff]\ntag = \"{tag}\"\n")
    });
    fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nmembers = [\"alpha\", \"beta\"]\nresolver = \"2\"\n{tag}"),
    )
    .unwrap();
    root
}

fn init(root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("init")
        .arg("--castoff-path")
        .arg(repository_root().join("crates/castoff"))
        .current_dir(root)
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap()
}

/// The `on.push.tags` entries of a workflow.
fn tag_filters(workflow: &str) -> Vec<String> {
    let start = workflow.find("    tags:\n").expect("on.push.tags") + "    tags:\n".len();
    workflow[start..]
        .lines()
        .take_while(|line| line.starts_with("      - "))
        .map(|line| line["      - ".len()..].to_owned())
        .collect()
}

#[test]
fn init_triggers_the_workflow_on_each_packages_tag() {
    // Outside this repository: inside it, Cargo would take the scratch crates for members of
    // castoff's own workspace.
    let dir = std::env::temp_dir().join(format!("castoff-tags-{}", std::process::id()));
    let own = fs::read_to_string(repository_root().join(".github/workflows/release.yml")).unwrap();
    for (workspace_tag, beta_tag, expected) in [
        (None, None, vec!["\"v[0-9]+.[0-9]+.[0-9]+*\""]),
        (Some("{version}"), None, vec!["\"[0-9]+.[0-9]+.[0-9]+*\""]),
        (
            Some("{name}-v{version}"),
            None,
            vec![
                "\"alpha-v[0-9]+.[0-9]+.[0-9]+*\"",
                "\"beta-v[0-9]+.[0-9]+.[0-9]+*\"",
            ],
        ),
        (
            None,
            Some("beta+{version}"),
            vec![
                "\"v[0-9]+.[0-9]+.[0-9]+*\"",
                "\"beta\\\\+[0-9]+.[0-9]+.[0-9]+*\"",
            ],
        ),
    ] {
        let root = two_tools(&dir, workspace_tag, beta_tag);
        let output = init(&root);
        assert_success(&output, "castoff init");
        let workflow = fs::read_to_string(root.join(".github/workflows/release.yml")).unwrap();
        assert_eq!(
            tag_filters(&workflow),
            expected,
            "{workspace_tag:?} {beta_tag:?}"
        );
        if expected.len() == 1 && expected[0].starts_with("\"v") {
            assert!(
                workflow.ends_with(&own),
                "the default is castoff's own workflow"
            );
        }
        assert!(
            workflow.contains("cargo xtask publish --dist-dir dist --tag \"$TAG\""),
            "{workflow}"
        );
    }

    // A pattern the workflow cannot follow stops init before it writes anything.
    let root = two_tools(&dir, Some("{nme}-{version}"), None);
    let output = init(&root);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        stderr.contains("`workspace.metadata.castoff.tag`: tag pattern `{nme}-{version}` has an unknown placeholder `{nme}`")
            && stderr.contains("hint: "),
        "{stderr}"
    );
    assert!(!root.join("xtask").exists() && !root.join(".github").exists());
    let _ = fs::remove_dir_all(&dir);
}
