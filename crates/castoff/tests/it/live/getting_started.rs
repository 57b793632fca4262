//! docs/getting-started.md, executed as written: every line of its ```sh blocks, in order, run
//! by `sh` in a fresh workspace the way a newcomer has it (a git repository with a hand-written
//! `.github/workflows/release.yml`, a castoff checkout beside it at `../castoff`, castoff on
//! `PATH`), from `castoff init` to `cargo xtask publish`. The registries are the harness's,
//! chosen by the variables docs/publishing.md names for a rehearsal on registries of your own;
//! `origin` is a bare repository beside the workspace. No second copy of the commands: what
//! the guide says is what runs, and the checks below are keyed by the guide's own lines.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{output_text as text, repository_root};

/// The command lines of the guide's ```sh blocks, in order.
fn guide_commands() -> Vec<String> {
    let guide = fs::read_to_string(repository_root().join("docs/getting-started.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in guide.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if in_sh && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.to_owned());
        }
    }
    commands
}

/// The workspace as a newcomer has it before castoff: one binary package that is also a
/// `[workspace]` (so `init` has to keep the xtask out of it), released for this machine only,
/// its own release workflow, in git with an `origin` to push tags to.
fn newcomer_workspace(dir: &Path, name: &str) -> PathBuf {
    let project = dir.join("project");
    fs::create_dir_all(project.join("src")).unwrap();
    fs::create_dir_all(project.join(".github/workflows")).unwrap();
    fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.2.3\"\nedition = \"2021\"\n\
             description = \"Says hello\"\nlicense = \"MIT/Apache-2.0\"\n\
             repository = \"https://github.com/Acme/{name}\"\n\n\
             [workspace]\n\n\
             [workspace.metadata.castoff]\ntargets = [\"{}\"]\n",
            castoff::dist::host_target().unwrap()
        ),
    )
    .unwrap();
    fs::write(
        project.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
    fs::write(
        project.join(".github/workflows/release.yml"),
        "name: release\non:\n  push:\n    tags: [\"v*\"]\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo build --release\n",
    )
    .unwrap();
    fs::write(project.join(".gitignore"), "/target\n").unwrap();
    std::os::unix::fs::symlink(repository_root(), dir.join("castoff")).unwrap();
    let git = |args: &[&str], cwd: &Path| {
        let output = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_AUTHOR_NAME", "Newcomer")
            .env("GIT_AUTHOR_EMAIL", "newcomer@example.com")
            .env("GIT_COMMITTER_NAME", "Newcomer")
            .env("GIT_COMMITTER_EMAIL", "newcomer@example.com")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {}", text(&output));
    };
    git(&["init", "-q", "--bare", "origin.git"], dir);
    git(&["init", "-q", "-b", "main"], &project);
    git(&["add", "-A"], &project);
    git(&["commit", "-q", "-m", "A tool"], &project);
    git(&["remote", "add", "origin", "../origin.git"], &project);
    project
}

#[test]
fn the_getting_started_guide_runs_as_written() {
    let env = TestEnv::get();
    let dir = std::env::temp_dir().join(format!("castoff-getting-started-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let name = format!("gs-tool-{}", std::process::id());
    let project = newcomer_workspace(&dir, &name);
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let castoff_bin = Path::new(env!("CARGO_BIN_EXE_castoff")).parent().unwrap();
    let path = format!(
        "{}:{}",
        castoff_bin.display(),
        std::env::var("PATH").unwrap()
    );
    let real_home = PathBuf::from(std::env::var_os("HOME").unwrap());
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| real_home.join(".cargo"), PathBuf::from);
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| real_home.join(".rustup"), PathBuf::from);
    let oci_registry = TestEnv::host_port(&env.registry_basic).to_owned();

    // Checks keyed by the guide's lines: (line, what its output must show).
    let expected: &[(&str, &[&str])] = &[
        (
            "castoff init",
            &[
                "+ xtask/Cargo.toml",
                "~ Cargo.toml: the xtask out of the workspace",
                "! .github/workflows/release.yml is not castoff's",
                // The test's castoff comes from this checkout, not from crates.io.
                "! xtask/Cargo.toml: pins castoff ",
                "not set up completely",
            ],
        ),
        (
            "castoff init --workflow-path .github/workflows/castoff-release.yml",
            &["+ .github/workflows/castoff-release.yml", "next: "],
        ),
        (
            "castoff init --castoff-path ../castoff/crates/castoff",
            &[
                "~ xtask/Cargo.toml: castoff's dependency",
                "+ xtask/Cargo.lock",
                // The guide's checkout is a sibling: not in CI's checkout, and `init` says so.
                "! xtask/Cargo.toml: castoff's path `../castoff/crates/castoff` lies outside the project",
            ],
        ),
        ("cargo xtask plan", &[name.as_str()]),
        ("cargo xtask dist", &["wheel", "npm", "oci"]),
        ("cargo xtask publish --dry-run", &["dry run"]),
        ("cargo xtask publish", &["uploaded"]),
    ];
    let commands = guide_commands();
    for (line, _) in expected {
        assert!(
            commands.iter().any(|command| command == line),
            "docs/getting-started.md no longer runs `{line}`; update this test's checks: {commands:#?}"
        );
    }

    for line in &commands {
        let mut command = Command::new("sh");
        command
            .args(["-c", line])
            .current_dir(&project)
            .env("PATH", &path)
            .env("HOME", &home)
            .env("CARGO_HOME", &cargo_home)
            .env("RUSTUP_HOME", &rustup_home)
            .env("NO_COLOR", "1")
            // castoff's dependencies are those of this repository's lock file, in Cargo's
            // cache; compiled once for every test that builds an xtask.
            .env("CARGO_NET_OFFLINE", "true")
            .env(
                "CARGO_TARGET_DIR",
                repository_root().join("target/castoff-test-scratch/init-target"),
            )
            .env("GIT_COMMITTER_NAME", "Newcomer")
            .env("GIT_COMMITTER_EMAIL", "newcomer@example.com")
            // The rehearsal on registries of one's own (docs/publishing.md).
            .env("CASTOFF_PYPI_URL", &env.pypiserver)
            .env("TWINE_USERNAME", &env.user)
            .env("TWINE_PASSWORD", &env.password)
            .env("CASTOFF_NPM_REGISTRY", &env.verdaccio)
            .env("NPM_TOKEN", &env.npm_token)
            .env("CASTOFF_OCI_REGISTRY", &oci_registry)
            .env("CASTOFF_OCI_USERNAME", &env.user)
            .env("CASTOFF_OCI_PASSWORD", &env.password);
        for variable in [
            "SOURCE_DATE_EPOCH",
            "RUSTFLAGS",
            "CI",
            "GITHUB_ACTIONS",
            "GITHUB_REF_TYPE",
            "GITHUB_REF_NAME",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "CASTOFF_PYPI_TOKEN",
            "NODE_AUTH_TOKEN",
            "CASTOFF_SIGN_KEY",
            "CASTOFF_VERIFY_KEY",
        ] {
            command.env_remove(variable);
        }
        let output = command.output().unwrap();
        let shown = text(&output);
        assert!(output.status.success(), "`{line}` failed:\n{shown}");
        if let Some((_, needles)) = expected.iter().find(|(expected, _)| expected == line) {
            for needle in *needles {
                assert!(
                    shown.contains(needle),
                    "`{line}`: no `{needle}` in:\n{shown}"
                );
            }
        }
    }

    // What the guide promises, checked after the run.
    assert_eq!(
        fs::read_to_string(project.join(".github/workflows/release.yml")).unwrap(),
        "name: release\non:\n  push:\n    tags: [\"v*\"]\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo build --release\n",
        "the project's own workflow was changed"
    );
    let xtask = fs::read_to_string(project.join("xtask/Cargo.toml")).unwrap();
    // The checkout as the guide names it, through the link beside the project: committable.
    assert!(
        xtask.contains("castoff = { path = \"../../castoff/crates/castoff\" }")
            && xtask.contains("\n[workspace]\n"),
        "{xtask}"
    );
    // Cargo's legacy `MIT/Apache-2.0`, spelled as SPDX in every channel.
    let launcher = fs::read_dir(project.join("dist/npm"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}-1.2.3"))
        })
        .expect("the npm launcher tarball");
    let package_json = Command::new("tar")
        .args(["-xzOf"])
        .arg(&launcher)
        .arg("package/package.json")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&package_json.stdout)
            .contains("\"license\": \"MIT OR Apache-2.0\""),
        "{}",
        text(&package_json)
    );
    let blobs = project.join(format!("dist/oci/{name}/blobs/sha256"));
    let labelled = fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| fs::metadata(path).unwrap().len() < 65536)
        .map(|path| fs::read_to_string(path).unwrap_or_default())
        .find(|text| text.contains("\"org.opencontainers.image.licenses\""))
        .expect("an image config with the licenses label");
    assert!(
        labelled.contains("\"org.opencontainers.image.licenses\":\"MIT OR Apache-2.0\""),
        "{labelled}"
    );
    let lock = fs::read_to_string(project.join("Cargo.lock")).unwrap();
    assert!(
        !lock.contains("castoff"),
        "castoff in the project's lock:\n{lock}"
    );
    let svg = fs::read_to_string(project.join("plan.svg")).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(project.join("dist/manifest.json").is_file());
    let tags = Command::new("git")
        .args(["ls-remote", "--tags", "origin"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains("refs/tags/v1.2.3"),
        "{}",
        text(&tags)
    );
    let _ = fs::remove_dir_all(&dir);
}
