//! `castoff init` on a fresh workspace (a small bin crate written into a scratch directory):
//! it adds the xtask crate, the alias, the metadata table and the release workflow; then
//! `cargo xtask dist` there, with no other edit, builds the wheel, the npm packages and the
//! image; a second `init` changes nothing, and a file the user changed is kept without
//! `--force`.

use std::fs;
use std::path::Path;
use std::process::Command;

use castoff_plan::Manifest;
use castoff_test_support::workspace::{output_text as text, repository_root};

/// A bin crate as `cargo new` leaves it, plus the fields a registry wants.
fn fresh_workspace(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"hello-tool\"\nversion = \"1.2.0\"\nedition = \"2021\"\n\
         description = \"Says hello\"\nlicense = \"MIT\"\n\
         repository = \"https://github.com/Acme/hello-tool\"\n\n\
         [profile.release]\nstrip = \"debuginfo\"\n",
    )
    .unwrap();
    fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
}

fn init(dir: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("init")
        .arg("--castoff-path")
        .arg(repository_root().join("crates/castoff"))
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(String, String)> {
    [
        "Cargo.toml",
        ".cargo/config.toml",
        "xtask/Cargo.toml",
        "xtask/src/main.rs",
        "xtask/.gitignore",
        "xtask/launch/Cargo.toml",
        "xtask/launch/src/main.rs",
        "xtask/launch/.gitignore",
        ".github/workflows/release.yml",
    ]
    .iter()
    .map(|file| {
        (
            (*file).to_owned(),
            fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}")),
        )
    })
    .collect()
}

#[test]
fn init_then_xtask_dist_builds_all_three_channels() {
    let root = repository_root();
    // Outside this repository: inside it, Cargo would take the scratch crate for a member of
    // castoff's own workspace.
    let dir = std::env::temp_dir().join(format!("castoff-init-{}/hello-tool", std::process::id()));
    fresh_workspace(&dir);

    let first = init(&dir, &[]);
    for line in [
        "+ xtask/Cargo.toml\n",
        "+ xtask/src/main.rs\n",
        "+ xtask/.gitignore\n",
        "+ xtask/Cargo.lock\n",
        "+ xtask/launch/Cargo.toml\n",
        "+ xtask/launch/src/main.rs\n",
        "+ xtask/launch/.gitignore\n",
        "+ .cargo/config.toml\n",
        "~ Cargo.toml: [package.metadata.castoff] for `hello-tool`\n",
        "    + python = { name = \"hello-tool\" }\n",
        "    + npm = { name = \"hello-tool\" }\n",
        "    + oci = { repository = \"ghcr.io/acme/hello-tool\" }\n",
        "+ .github/workflows/release.yml\n",
        "+ .gitignore\n",
    ] {
        assert!(first.contains(line), "`{line}` missing from:\n{first}");
    }
    // The tests' castoff checkout is not inside the project: CI's checkout would lack it.
    assert!(
        first.contains("! xtask/Cargo.toml: castoff's path `")
            && first.contains("lies outside the project"),
        "{first}"
    );
    let after_first = snapshot(&dir);

    // Idempotent.
    let second = init(&dir, &[]);
    assert!(
        second.ends_with("nothing to do: the workspace is set up\n"),
        "{second}"
    );
    assert!(!second.contains("+ "), "{second}");
    assert_eq!(snapshot(&dir), after_first, "a second init changed files");

    // The user's change is kept, and replaced only with --force.
    let main_rs = dir.join("xtask/src/main.rs");
    let original = fs::read_to_string(&main_rs).unwrap();
    fs::write(&main_rs, format!("{original}// mine\n")).unwrap();
    let kept = init(&dir, &[]);
    assert!(
        kept.contains("! xtask/src/main.rs differs from what castoff writes: kept"),
        "{kept}"
    );
    assert!(fs::read_to_string(&main_rs).unwrap().ends_with("// mine\n"));
    let forced = init(&dir, &["--force"]);
    assert!(
        forced.contains("~ xtask/src/main.rs (overwritten)"),
        "{forced}"
    );
    assert_eq!(fs::read_to_string(&main_rs).unwrap(), original);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/dist\n"
    );

    // --castoff-path is written relative to the xtask crate (committable), and another
    // castoff (`--castoff-version`, `--castoff-path`) replaces castoff's line alone, without
    // --force.
    let xtask_manifest = dir.join("xtask/Cargo.toml");
    let with_path = fs::read_to_string(&xtask_manifest).unwrap();
    let path_line = with_path
        .lines()
        .find(|line| line.starts_with("castoff = { path = \"../"))
        .unwrap_or_else(|| panic!("no relative castoff path in:\n{with_path}"))
        .to_owned();
    // Plain `init` keeps the castoff the xtask has; `--castoff-version` pins a release.
    let plain = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .arg("init")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", text(&plain));
    assert_eq!(fs::read_to_string(&xtask_manifest).unwrap(), with_path);
    assert!(!text(&plain).contains("pins castoff"), "{}", text(&plain));
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["init", "--castoff-version", env!("CARGO_PKG_VERSION")])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let released = String::from_utf8(output.stdout).unwrap();
    // A version named on the command line is taken as released: no `!` about it.
    assert!(!released.contains("pins castoff"), "{released}");
    assert!(
        released.contains(&format!(
            "~ xtask/Cargo.toml: castoff's dependency (was `{path_line}`)\n    + castoff = \"={}\"\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{released}"
    );
    let back = init(&dir, &[]);
    assert!(
        back.contains("~ xtask/Cargo.toml: castoff's dependency"),
        "{back}"
    );
    assert_eq!(fs::read_to_string(&xtask_manifest).unwrap(), with_path);

    // `cargo xtask dist` in the new workspace, exactly as the user runs it.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["xtask", "dist"])
        .current_dir(&dir)
        .env("CARGO_NET_OFFLINE", "true")
        // Shared between runs, so castoff is compiled once, not per run.
        .env(
            "CARGO_TARGET_DIR",
            root.join("target/castoff-test-scratch/init-target"),
        )
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo xtask dist: {}",
        text(&output)
    );
    // The xtask is a workspace of its own: the project's lock file and workspace know
    // nothing of castoff.
    let project_lock = fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(
        !project_lock.contains("castoff") && !project_lock.contains("name = \"xtask\""),
        "{project_lock}"
    );
    assert!(
        fs::read_to_string(dir.join("xtask/Cargo.lock"))
            .unwrap()
            .contains("name = \"castoff\"")
    );
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .current_dir(&dir)
        .exec()
        .unwrap();
    let members: Vec<&str> = metadata
        .workspace_packages()
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    assert_eq!(members, ["hello-tool"]);
    let manifest =
        Manifest::from_json(&fs::read_to_string(dir.join("dist/manifest.json")).unwrap()).unwrap();
    for kind in [
        "wheel",
        "npm-platform",
        "npm-launcher",
        "oci-image",
        "oci-index",
    ] {
        let artifact = manifest
            .artifacts
            .iter()
            .find(|a| a.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} in {manifest:?}"));
        let path = dir.join("dist").join(artifact.path.as_ref().unwrap());
        assert!(path.exists(), "{}", path.display());
    }
    assert!(
        fs::read_dir(dir.join("dist/python")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("hello_tool-1.2.0-")),
        "the wheel is named after the package"
    );
}

/// A release workflow castoff did not write (no `Written by `castoff init`` line) is the
/// project's: kept, even with `--force`, and the summary says castoff's is not installed and
/// how to put it beside; `--workflow-path` does. `/dist` joins an existing `.gitignore` once.
#[test]
fn init_never_replaces_the_project_s_own_workflow() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-own-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let own = dir.join(".github/workflows/release.yml");
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    let theirs = "name: release\non: push\njobs: {}\n";
    fs::write(&own, theirs).unwrap();
    fs::write(dir.join(".gitignore"), "/target").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let summary = init(&dir, extra);
        assert!(
            summary.contains(
                "! .github/workflows/release.yml is not castoff's (it lacks the `Written by `castoff init`` line): kept; castoff's release workflow is not installed: write it beside yours with `castoff init --workflow-path .github/workflows/castoff-release.yml`"
            ),
            "{summary}"
        );
        assert!(
            summary.ends_with(
                "not set up completely: castoff did not install .github/workflows/release.yml (see above)\n"
            ),
            "{summary}"
        );
        assert_eq!(fs::read_to_string(&own).unwrap(), theirs);
    }
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\n/dist\n"
    );
    let beside = init(
        &dir,
        &["--workflow-path", ".github/workflows/castoff-release.yml"],
    );
    assert!(
        beside.contains("+ .github/workflows/castoff-release.yml\n"),
        "{beside}"
    );
    // `on: push` without a branch filter runs on tags too: both workflows would run.
    assert!(
        beside.contains("! .github/workflows/release.yml: runs on tag pushes too"),
        "{beside}"
    );
    assert!(
        beside.ends_with(
            "next: look at the `!` lines above, then `cargo xtask plan`, then `cargo xtask dist`\n"
        ),
        "{beside}"
    );
    assert_eq!(fs::read_to_string(&own).unwrap(), theirs);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\n/dist\n"
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// Every crate the xtask's `dev` profile optimizes is one castoff depends on (a normal
/// dependency, so also in a user's xtask): Cargo warns on every build about a profile naming a
/// package outside the graph.
#[test]
fn the_xtask_s_hot_crates_are_castoff_dependencies() {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(repository_root())
        // This machine's platform only: the others' crates are not downloaded here.
        .other_options(vec![
            "--offline".to_owned(),
            "--filter-platform".to_owned(),
            castoff::dist::host_target().unwrap(),
        ])
        .exec()
        .unwrap();
    let resolve = metadata.resolve.as_ref().unwrap();
    let name = |id: &cargo_metadata::PackageId| metadata[id].name.to_string();
    let castoff = metadata
        .workspace_packages()
        .into_iter()
        .find(|package| package.name.as_str() == "castoff")
        .unwrap()
        .id
        .clone();
    let mut seen = std::collections::BTreeSet::new();
    let mut queue = vec![castoff];
    while let Some(id) = queue.pop() {
        if !seen.insert(name(&id)) {
            continue;
        }
        let node = resolve.nodes.iter().find(|node| node.id == id).unwrap();
        for dep in &node.deps {
            if dep
                .dep_kinds
                .iter()
                .any(|kind| kind.kind == cargo_metadata::DependencyKind::Normal)
            {
                queue.push(dep.pkg.clone());
            }
        }
    }
    // castoff's own `cargo xtask` runs castoff optimized the same way.
    let own: toml::Table = fs::read_to_string(repository_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let own_dev = &own["profile"]["dev"]["package"];
    for hot in castoff::cli::init::HOT_CRATES {
        assert!(seen.contains(*hot), "{hot} is not a dependency of castoff");
        assert_eq!(
            own_dev.get(*hot).and_then(|p| p.get("opt-level")),
            Some(&toml::Value::Integer(3)),
            "castoff's own Cargo.toml does not optimize {hot} in the dev profile"
        );
    }
}

/// A workspace set up by castoff 0.1's `init` (the xtask a member of the project's workspace,
/// the `--package xtask` alias), untouched since: `init` moves it to today's layout without
/// `--force`, keeping its castoff line.
#[test]
fn init_moves_an_earlier_xtask_out_of_the_workspace() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-earlier-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let manifest = dir.join("Cargo.toml");
    let mut root_toml = fs::read_to_string(&manifest).unwrap();
    root_toml.push_str("\n[workspace]\nmembers = [\"xtask\"]\n");
    fs::write(&manifest, root_toml).unwrap();
    fs::create_dir_all(dir.join("xtask/src")).unwrap();
    fs::create_dir_all(dir.join(".cargo")).unwrap();
    fs::write(
        dir.join("xtask/Cargo.toml"),
        "# Written by `castoff init`: `cargo xtask plan|dist|publish` run castoff on this workspace.\n\
         [package]\nname = \"xtask\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\ncastoff = \"0.1.0\"\n",
    )
    .unwrap();
    fs::write(
        dir.join("xtask/src/main.rs"),
        "//! Written by `castoff init`: `cargo xtask …` runs castoff's commands on this workspace.\n\n\
         fn main() -> std::process::ExitCode {\n    castoff::cli::main_from(std::env::args_os())\n}\n",
    )
    .unwrap();
    fs::write(
        dir.join(".cargo/config.toml"),
        "[alias]\nxtask = \"run --quiet --package xtask --\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["init", "--no-workflow"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(
        summary.contains("~ xtask/Cargo.toml (overwritten)\n"),
        "{summary}"
    );
    let xtask = fs::read_to_string(dir.join("xtask/Cargo.toml")).unwrap();
    assert!(
        xtask.contains("\ncastoff = \"0.1.0\"\n") && xtask.contains("\n[workspace]\n"),
        "{xtask}"
    );
    assert_eq!(
        fs::read_to_string(dir.join(".cargo/config.toml")).unwrap(),
        "[alias]\nxtask = \"run --quiet --manifest-path xtask/launch/Cargo.toml --\"\n"
    );
    assert!(
        fs::read_to_string(&manifest)
            .unwrap()
            .contains("\n[workspace]\nmembers = []\nexclude = [\"xtask\"]\n"),
        "{}",
        fs::read_to_string(&manifest).unwrap()
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// A workspace set up before the launcher (the alias ran the xtask itself): `init` adds the
/// launcher and moves the alias to it without `--force`.
#[test]
fn init_puts_the_launcher_before_an_earlier_xtask() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-launcher-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    init(&dir, &["--no-workflow"]);
    let config = dir.join(".cargo/config.toml");
    let today = fs::read_to_string(&config).unwrap();
    let earlier = today.replace(
        "run --quiet --manifest-path xtask/launch/Cargo.toml --",
        "run --manifest-path xtask/Cargo.toml --",
    );
    assert_ne!(earlier, today);
    fs::write(&config, earlier).unwrap();
    fs::remove_dir_all(dir.join("xtask/launch")).unwrap();
    let summary = init(&dir, &["--no-workflow"]);
    for line in [
        "+ xtask/launch/Cargo.toml\n",
        "+ xtask/launch/src/main.rs\n",
        "+ xtask/launch/.gitignore\n",
        "~ .cargo/config.toml: the `cargo xtask` alias\n    + xtask = \"run --quiet --manifest-path xtask/launch/Cargo.toml --\"\n",
    ] {
        assert!(summary.contains(line), "`{line}` missing from:\n{summary}");
    }
    assert_eq!(fs::read_to_string(&config).unwrap(), today);
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// A workflow left out (`--no-workflow`) stays out when `init` runs again; another workflow of
/// the project's that runs on tag pushes is pointed out next to castoff's.
#[test]
fn init_remembers_a_left_out_workflow_and_names_other_tag_workflows() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-workflows-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let first = init(&dir, &["--no-workflow"]);
    assert!(!first.contains("release.yml"), "{first}");
    let again = init(&dir, &[]);
    assert!(
        again.contains(
            "- .github/workflows/release.yml: not written: an earlier `castoff init` left it out"
        ),
        "{again}"
    );
    assert!(!dir.join(".github/workflows/release.yml").exists());

    let ci = dir.join(".github/workflows/CICD.yml");
    fs::create_dir_all(ci.parent().unwrap()).unwrap();
    fs::write(
        &ci,
        "name: CICD\non:\n  push:\n    branches: [main]\n    tags:\n      - '*'\njobs: {}\n",
    )
    .unwrap();
    fs::write(
        dir.join(".github/workflows/lint.yml"),
        "name: lint\non: [pull_request]\njobs: {}\n",
    )
    .unwrap();
    // miniserve's form: every push, a job gated on the tag.
    fs::write(
        dir.join(".github/workflows/build-release.yml"),
        "name: Build/publish release\non: [push, pull_request]\njobs:\n  publish:\n    if: github.ref_type == 'tag'\n",
    )
    .unwrap();
    // A push trigger without a branch filter runs on tags too; with one it does not.
    fs::write(
        dir.join(".github/workflows/every-push.yaml"),
        "on:\n  push:\n    paths: ['src/**']\njobs: {}\n",
    )
    .unwrap();
    // A branch filter of another event does not narrow `push`.
    fs::write(
        dir.join(".github/workflows/push-and-pr.yml"),
        "on:\n  push:\n  pull_request:\n    branches: [main]\njobs: {}\n",
    )
    .unwrap();
    fs::write(
        dir.join(".github/workflows/main-only.yml"),
        "on:\n  push:\n    branches: [main] # not tags\n  pull_request:\njobs: {}\n",
    )
    .unwrap();
    let with = init(&dir, &["--workflow-path", ".github/workflows/release.yml"]);
    assert!(with.contains("+ .github/workflows/release.yml\n"), "{with}");
    assert!(
        with.contains("! .github/workflows/CICD.yml: runs on tag pushes too"),
        "{with}"
    );
    for tagged in ["build-release.yml", "every-push.yaml", "push-and-pr.yml"] {
        assert!(
            with.contains(&format!(
                "! .github/workflows/{tagged}: runs on tag pushes too"
            )),
            "{tagged}: {with}"
        );
    }
    assert!(!with.contains("lint.yml"), "{with}");
    assert!(!with.contains("main-only.yml"), "{with}");
    assert!(
        with.ends_with(
            "next: look at the `!` lines above, then `cargo xtask plan`, then `cargo xtask dist`\n"
        ),
        "{with}"
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// A project with an xtask crate of its own (no castoff mark) and the common
/// `run --package xtask --` alias: `init` touches neither, and says castoff's xtask is not
/// installed.
#[test]
fn init_leaves_a_project_s_own_xtask_and_its_alias_alone() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-own-xtask-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let manifest = dir.join("Cargo.toml");
    let mut root_toml = fs::read_to_string(&manifest).unwrap();
    root_toml.push_str("\n[workspace]\nmembers = [\"xtask\"]\n");
    fs::write(&manifest, root_toml).unwrap();
    fs::create_dir_all(dir.join("xtask/src")).unwrap();
    fs::create_dir_all(dir.join(".cargo")).unwrap();
    let own_manifest = "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    fs::write(dir.join("xtask/Cargo.toml"), own_manifest).unwrap();
    fs::write(dir.join("xtask/src/main.rs"), "fn main() {}\n").unwrap();
    let alias = "[alias]\nxtask = \"run --package xtask --\"\n";
    fs::write(dir.join(".cargo/config.toml"), alias).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["init", "--no-workflow"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(
        summary.contains("! xtask/Cargo.toml is not castoff's")
            && summary.contains("not set up completely"),
        "{summary}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("xtask/Cargo.toml")).unwrap(),
        own_manifest
    );
    assert_eq!(
        fs::read_to_string(dir.join(".cargo/config.toml")).unwrap(),
        alias
    );
    assert!(
        fs::read_to_string(&manifest)
            .unwrap()
            .contains("\n[workspace]\nmembers = [\"xtask\"]\n")
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// Plain `init` by a castoff built from a checkout (as the tests' is) pins its version from
/// crates.io, and says that version may not be there.
#[test]
fn init_from_a_checkout_warns_that_its_version_may_be_unreleased() {
    let dir = std::env::temp_dir().join(format!(
        "castoff-init-unreleased-{}/hello-tool",
        std::process::id()
    ));
    fresh_workspace(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["init", "--no-workflow"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let summary = String::from_utf8(output.stdout).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        summary.contains(&format!(
            "! xtask/Cargo.toml: pins castoff {version} from crates.io, but this castoff was built from {}",
            repository_root().join("crates/castoff").display()
        )) && summary.contains("--castoff-path <checkout>/crates/castoff"),
        "{summary}"
    );
    assert!(
        summary.ends_with(
            "next: look at the `!` lines above, then `cargo xtask plan`, then `cargo xtask dist`\n"
        ),
        "{summary}"
    );
    let xtask = fs::read_to_string(dir.join("xtask/Cargo.toml")).unwrap();
    assert!(
        xtask.contains(&format!("\ncastoff = \"={version}\"\n")),
        "{xtask}"
    );

    // `--json`: the same changes, as JSON; a file of the user's where castoff's workflow would
    // go makes it incomplete.
    fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    fs::write(dir.join(".github/workflows/release.yml"), "on: push\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args([
            "--json",
            "init",
            "--workflow-path",
            ".github/workflows/release.yml",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
    assert_eq!(json["command"], "init");
    assert_eq!(json["complete"], false, "{json}");
    let changes = json["changes"].as_array().unwrap();
    let kind_of = |path: &str| {
        changes
            .iter()
            .filter(|change| change["path"] == path)
            .map(|change| change["kind"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kind_of("xtask/src/main.rs"), ["unchanged"], "{json}");
    assert_eq!(
        kind_of(".github/workflows/release.yml"),
        ["not_installed"],
        "{json}"
    );
    assert_eq!(kind_of("xtask/Cargo.toml"), ["note", "unchanged"], "{json}");
    assert!(
        changes
            .iter()
            .all(|change| change["path"].is_string() && change["kind"].is_string()),
        "{json}"
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}
