//! The metadata cache (metadata_cache.rs): a run whose Cargo inputs are unchanged starts
//! neither `cargo metadata` nor `rustc -vV`, and every kind of change it watches makes the next
//! run ask Cargo again and see the change. Cargo and rustc are the real ones, reached through
//! logging shims on PATH.
//!
//! A run only remembers Cargo's answer when the files it read were last changed safely before
//! the run started (see the module), so the tests wait a moment after writing files before a
//! run that should be remembered; no test measures time.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::Duration;

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{assert_success, copy_fixture, repository_root};

/// Longer than the cache's clock slack (1 s): files written before it count as settled.
const SETTLE: Duration = Duration::from_millis(1100);

struct Fixture {
    workspace: PathBuf,
    shims: PathBuf,
    log: PathBuf,
}

impl Fixture {
    /// The single-cli fixture releasing every binary of the package (no `bins` list), with
    /// PATH shims that log each `cargo` and `rustc` start and run the real ones.
    fn new(name: &str) -> Fixture {
        let scratch = repository_root()
            .join("target/castoff-test-scratch/metadata-cache")
            .join(name);
        let _ = fs::remove_dir_all(&scratch);
        let workspace = scratch.join("workspace");
        copy_fixture("single-cli", &workspace);
        let manifest = fs::read_to_string(workspace.join("Cargo.toml"))
            .unwrap()
            .replace("bins = [\"greeter\"]\n", "");
        fs::write(workspace.join("Cargo.toml"), manifest).unwrap();

        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or(env!("CARGO").into()));
        let rustc = cargo.with_file_name("rustc");
        assert!(rustc.is_file(), "no rustc beside {}", cargo.display());
        let shims = scratch.join("shims");
        let log = scratch.join("starts.log");
        fs::create_dir_all(&shims).unwrap();
        for (name, real) in [("cargo", &cargo), ("rustc", &rustc)] {
            let shim = shims.join(name);
            fs::write(
                &shim,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
            .unwrap();
            let mut permissions = fs::metadata(&shim).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            fs::set_permissions(&shim, permissions).unwrap();
        }
        Fixture {
            workspace,
            shims,
            log,
        }
    }

    fn castoff(&self, args: &[&str]) -> Command {
        let path = std::env::join_paths(
            std::iter::once(self.shims.clone())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
        command
            .args(args)
            .arg("--manifest-path")
            .arg(self.workspace.join("Cargo.toml"))
            .env("PATH", path)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            // Without CARGO, castoff finds Cargo on PATH: the shim.
            .env_remove("CARGO")
            .env_remove("CARGO_TARGET_DIR");
        command
    }

    fn plan(&self) -> String {
        let output = self.castoff(&["plan"]).output().unwrap();
        assert_success(&output, "plan");
        String::from_utf8(output.stdout).unwrap()
    }

    /// The `cargo` and `rustc` starts logged since the last call (Cargo's own `rustc` runs
    /// included).
    fn starts(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let _ = fs::remove_file(&self.log);
        text.lines().map(str::to_owned).collect()
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.workspace.join(file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
}

/// What changes, how, and what the plan must then show.
type Change<'a> = (&'a str, &'a dyn Fn(&Fixture), &'a str);

fn asked_cargo(starts: &[String]) -> bool {
    starts.iter().any(|line| line.starts_with("cargo metadata"))
}

#[test]
fn unchanged_inputs_do_not_start_cargo_and_each_change_does() {
    let fixture = Fixture::new("changes");
    sleep(SETTLE);
    let first = fixture.plan();
    assert!(asked_cargo(&fixture.starts()), "a first run must ask Cargo");
    assert!(first.contains("greeter 0.3.1"), "{first}");

    // Unchanged: the same plan, no Cargo.
    assert_eq!(fixture.plan(), first);
    let starts = fixture.starts();
    assert!(
        starts.is_empty(),
        "an unchanged workspace started {starts:?}"
    );

    // Each change the record watches is noticed, and the new answer is remembered once the
    // files have settled.
    let changes: [Change; 6] = [
        (
            "a manifest edit",
            &|fixture| fixture.edit("Cargo.toml", "version = \"0.3.1\"", "version = \"0.4.0\""),
            "greeter 0.4.0",
        ),
        (
            "a new src/bin target",
            &|fixture| {
                fs::create_dir_all(fixture.workspace.join("src/bin")).unwrap();
                fs::write(
                    fixture.workspace.join("src/bin/helper.rs"),
                    "fn main() {}\n",
                )
                .unwrap();
            },
            "binary        greeter, helper",
        ),
        (
            "a second src/bin target in a directory of its own",
            &|fixture| {
                fs::create_dir_all(fixture.workspace.join("src/bin/other")).unwrap();
                fs::write(
                    fixture.workspace.join("src/bin/other/main.rs"),
                    "fn main() {}\n",
                )
                .unwrap();
            },
            "binary        greeter, helper, other",
        ),
        (
            "a Cargo configuration file",
            &|fixture| {
                fs::create_dir_all(fixture.workspace.join(".cargo")).unwrap();
                fs::write(
                    fixture.workspace.join(".cargo/config.toml"),
                    "[term]\nverbose = false\n",
                )
                .unwrap();
            },
            "greeter 0.4.0",
        ),
        (
            "a README Cargo would assume when the manifest names none",
            &|fixture| fs::write(fixture.workspace.join("README"), "greeter\n").unwrap(),
            "greeter 0.4.0",
        ),
        (
            "a manifest rewritten with the same size",
            &|fixture| fixture.edit("Cargo.toml", "version = \"0.4.0\"", "version = \"0.5.0\""),
            "greeter 0.5.0",
        ),
    ];
    for (change, apply, expected) in changes {
        apply(&fixture);
        let plan = fixture.plan();
        assert!(plan.contains(expected), "after {change}: {plan}");
        assert!(
            asked_cargo(&fixture.starts()),
            "{change} did not make castoff ask Cargo"
        );
        sleep(SETTLE);
        assert_eq!(fixture.plan(), plan, "after {change}");
        fixture.starts();
        assert_eq!(fixture.plan(), plan, "after {change}, remembered");
        let starts = fixture.starts();
        assert!(
            starts.is_empty(),
            "after {change}, a rerun started {starts:?}"
        );
    }

    // The environment Cargo reads is part of the record (only as a digest).
    let output = fixture
        .castoff(&["plan"])
        .env("CARGO_BUILD_JOBS", "1")
        .output()
        .unwrap();
    assert_success(&output, "plan with another environment");
    assert!(
        asked_cargo(&fixture.starts()),
        "a new variable did not make castoff ask Cargo"
    );
    let records = fixture.workspace.join("target/castoff/metadata");
    for entry in fs::read_dir(&records).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("CARGO_BUILD_JOBS"), "{text}");
    }
}

#[test]
fn a_remembered_dist_starts_neither_cargo_nor_rustc() {
    let fixture = Fixture::new("dist");
    let release = fixture
        .workspace
        .join("target/x86_64-unknown-linux-gnu/release");
    write_static_elf(&release, "greeter", EM_X86_64, "hello from greeter");
    sleep(SETTLE);
    let dist = |fixture: &Fixture| -> Output {
        // No --target: the host comes from `rustc -vV`, or from the record.
        let output = fixture.castoff(&["dist", "--no-build"]).output().unwrap();
        assert_success(&output, "dist");
        output
    };
    dist(&fixture);
    let starts = fixture.starts();
    assert!(asked_cargo(&starts), "{starts:?}");
    assert!(
        starts.iter().any(|line| line.starts_with("rustc -vV")),
        "{starts:?}"
    );
    let second = dist(&fixture);
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("cached: inputs unchanged"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let starts = fixture.starts();
    assert!(starts.is_empty(), "a cached dist started {starts:?}");
    assert!(fixture.workspace.join("dist/manifest.json").is_file());

    // Without dist/, everything is built again, but the SBOM's dependency graph is the
    // remembered one: still no Cargo.
    let sbom = || {
        fs::read_to_string(
            fixture
                .workspace
                .join("dist/sbom/greeter-0.3.1-x86_64-unknown-linux-gnu.cdx.json"),
        )
        .unwrap()
    };
    let first_sbom = sbom();
    fs::remove_dir_all(fixture.workspace.join("dist")).unwrap();
    let rebuilt = dist(&fixture);
    assert!(!String::from_utf8_lossy(&rebuilt.stderr).contains("cached: inputs unchanged"));
    // Only the sdist asks Cargo, which files its package ships (`cargo package --list`, not
    // remembered); its dependency graph for every platform (no `--filter-platform`) is
    // remembered like the SBOM's.
    let starts = fixture.starts();
    let package_list = |line: &&String| line.starts_with("cargo package --list");
    assert_eq!(starts.iter().filter(package_list).count(), 1, "{starts:?}");
    let others: Vec<&String> = starts.iter().filter(|line| !package_list(line)).collect();
    assert!(
        others.is_empty(),
        "a dist with remembered dependency graphs started {others:?}"
    );
    assert_eq!(sbom(), first_sbom);

    // A changed Cargo.lock is a new question for the SBOM (not for the plan).
    let lock = fixture.workspace.join("Cargo.lock");
    let text = fs::read_to_string(&lock).unwrap();
    fs::write(&lock, format!("{text}\n")).unwrap();
    fs::remove_dir_all(fixture.workspace.join("dist")).unwrap();
    dist(&fixture);
    let starts = fixture.starts();
    assert!(
        starts
            .iter()
            .any(|line| line.starts_with("cargo metadata") && line.contains("--filter-platform")),
        "{starts:?}"
    );
    assert!(
        !starts.iter().any(|line| line.contains("--no-deps")),
        "{starts:?}"
    );
    // One record for the workspace, one for the SBOM's graph, one for the sdist's.
    assert_eq!(
        fs::read_dir(fixture.workspace.join("target/castoff/metadata"))
            .unwrap()
            .count(),
        3
    );
}

/// A package added under a `members` glob, deeper down or right at the root (a glob that
/// matches nothing is an error to Cargo, so each one matches a package from the start).
#[test]
fn a_new_member_under_a_glob_is_noticed() {
    let fixture = Fixture::new("members");
    let root = &fixture.workspace;
    fs::remove_dir_all(root).unwrap();
    fs::create_dir_all(root).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"crates/*\", \"*-app\"]\nresolver = \"2\"\n\n\
         [workspace.metadata.castoff]\ntargets = [\"x86_64-unknown-linux-gnu\"]\n",
    )
    .unwrap();
    let package = |dir: &str, name: &str| {
        let dir = root.join(dir);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 license = \"MIT\"\ndescription = \"{name}\"\n\n\
                 [package.metadata.castoff]\npython = {{ name = \"{name}\" }}\n"
            ),
        )
        .unwrap();
    };
    package("crates/one", "one");
    package("first-app", "first");
    sleep(SETTLE);
    let plan = fixture.plan();
    assert!(
        plan.contains("one 0.1.0") && plan.contains("first 0.1.0"),
        "{plan}"
    );
    fixture.starts();
    assert_eq!(fixture.plan(), plan);
    assert!(fixture.starts().is_empty(), "not remembered");

    for (dir, name) in [("crates/two", "two"), ("second-app", "second")] {
        package(dir, name);
        let plan = fixture.plan();
        assert!(plan.contains(&format!("{name} 0.1.0")), "{plan}");
        assert!(asked_cargo(&fixture.starts()), "{dir} went unnoticed");
        sleep(SETTLE);
        fixture.plan();
        fixture.starts();
        assert_eq!(fixture.plan(), plan);
        assert!(fixture.starts().is_empty(), "not remembered after {dir}");
    }
}
