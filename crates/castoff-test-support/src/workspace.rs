//! Helpers every end-to-end test needs around fixture workspaces and output trees: where the
//! repository is, where a fixture is, copying one without its build output, planning its
//! release, reading a tree back, and turning a finished process into readable text. The tests
//! of every crate use these; none keeps a copy of its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (this crate lives in `crates/castoff-test-support`).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// `tests/fixtures/<name>` of the repository.
pub fn fixture_dir(name: &str) -> PathBuf {
    repository_root().join("tests/fixtures").join(name)
}

/// Copies the fixture workspace `tests/fixtures/<name>` to `target` (created if needed), without
/// its build output, so a test can edit and build its own copy.
pub fn copy_fixture(name: &str, target: &Path) {
    copy_tree(&fixture_dir(name), target);
}

/// The release plan of the fixture workspace `tests/fixtures/<name>`, made the way the CLI
/// makes it: `cargo metadata --no-deps`, then [`castoff_plan::plan`] with default options.
pub fn fixture_release(name: &str) -> castoff_plan::Release {
    fixture_release_with(name, |_| {})
}

/// The plan of a fixture whose `cargo metadata` `edit` changed first (a configuration the
/// fixture does not have, planned through the same parsing as the CLI's).
pub fn fixture_release_with(
    name: &str,
    edit: impl FnOnce(&mut cargo_metadata::Metadata),
) -> castoff_plan::Release {
    let manifest = fixture_dir(name).join("Cargo.toml");
    let mut metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .manifest_path(&manifest)
        .exec()
        .unwrap_or_else(|error| panic!("cargo metadata of {}: {error}", manifest.display()));
    edit(&mut metadata);
    castoff_plan::plan(&metadata, &castoff_plan::PlanOptions::default())
        .unwrap_or_else(|error| panic!("plan of fixture {name}: {error}"))
}

/// Narrows the workspace's `targets` (in its root `Cargo.toml`) to `x86_64-unknown-linux-gnu`,
/// the target the test machine builds: a `dist` there is then the whole release, which
/// `publish` accepts without `--allow-partial`.
pub fn release_for_host_only(workspace: &Path) {
    let manifest = workspace.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", manifest.display()));
    let targets = text
        .lines()
        .find(|line| line.starts_with("targets = "))
        .unwrap_or_else(|| panic!("no `targets = ` line in {}", manifest.display()))
        .to_owned();
    fs::write(
        &manifest,
        text.replace(&targets, "targets = [\"x86_64-unknown-linux-gnu\"]"),
    )
    .unwrap_or_else(|error| panic!("cannot write {}: {error}", manifest.display()));
}

/// Copies a directory tree, leaving out build output (`target/`, `dist/`), so a test can
/// edit and build its own copy of a fixture.
pub fn copy_tree(source: &Path, target: &Path) {
    fs::create_dir_all(target)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", target.display()));
    for entry in fs::read_dir(source)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", source.display()))
    {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if name == "target" || name == "dist" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &target.join(&name));
        } else {
            fs::copy(&path, target.join(&name))
                .unwrap_or_else(|error| panic!("cannot copy {}: {error}", path.display()));
        }
    }
}

/// Every file under `dir`: path relative to `dir` (with `/`) → bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let entries = fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", current.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = fs::read(&path)
                    .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
                out.insert(relative, bytes);
            }
        }
    }
    out
}

/// Status, stdout and stderr of a finished process, for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command` to its end with no input and returns what it did; panics, naming `what`,
/// only when it cannot start (the caller judges the outcome).
pub fn run_to_end(mut command: Command, what: &str) -> Output {
    command
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"))
}

/// A process's standard output as text, trimmed.
pub fn stdout_trimmed(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Panics with the process's output unless it succeeded.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        output_text(output)
    );
}

/// `program` (the castoff binary) run apart from this machine's credentials and CI identity:
/// `HOME`, `.npmrc` and the docker config under `home`, a fixed `SOURCE_DATE_EPOCH`, no
/// colours, and none of the variables castoff takes credentials or a CI identity from.
pub fn isolated_command(program: &Path, home: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("HOME", home)
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("NO_COLOR", "1");
    for name in [
        "CASTOFF_PYPI_TOKEN",
        "TWINE_USERNAME",
        "TWINE_PASSWORD",
        "TWINE_REPOSITORY_URL",
        "NODE_AUTH_TOKEN",
        "NPM_TOKEN",
        "CASTOFF_OCI_USERNAME",
        "CASTOFF_OCI_PASSWORD",
        "REGISTRY_AUTH_FILE",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GITHUB_ACTIONS",
        // A run for a tag push checks the tag against the release (`publish --tag`).
        "GITHUB_REF_TYPE",
        "GITHUB_REF_NAME",
        "CASTOFF_SIGN_KEY",
        "CASTOFF_SIGN_PASSWORD",
    ] {
        command.env_remove(name);
    }
    command
}
