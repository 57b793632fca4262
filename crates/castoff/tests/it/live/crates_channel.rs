//! The crates channel against kellnr, the real Cargo registry the harness starts: `dist` packs
//! the fixture's crates, `publish` uploads them in dependency order before any other step,
//! a re-run skips them, a changed `.crate` of a published version is a conflict before any
//! upload, `cargo install --registry` installs the result and it runs; `castoff yank` yanks
//! every crate (a re-run finds nothing left), and the client unyanks. Its kill points are in `kill_points.rs`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use castoff_registry::crates::{CratesClient, CratesRegistry};
use castoff_registry::{HttpClient, HttpConfig, Secret};
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text as text};

/// Cargo's name for the harness's kellnr in these tests.
const REGISTRY: &str = "kellnr";

/// The crates-channel fixture at a version no other test (or run against the same servers)
/// uses, its crates going to kellnr: the workspace's dependencies on its own crates name the
/// registry (else Cargo would point them at crates.io), and its `.cargo/config.toml` says
/// where kellnr's index is. `CARGO_HOME` is the test's own, with the same registry.
pub(super) struct Fixture {
    pub(super) workspace: PathBuf,
    cargo_home: PathBuf,
    pub(super) version: String,
}

pub(super) fn fixture(env: &TestEnv, tag: &str, minor: u32) -> Fixture {
    fixture_with_index(env, tag, minor, &env.kellnr_index)
}

fn fixture_with_index(env: &TestEnv, tag: &str, minor: u32, index: &str) -> Fixture {
    let scratch = env.scratch_dir(&format!("crates-{tag}"));
    let workspace = scratch.join("workspace");
    copy_fixture("crates-channel", &workspace);
    let version = format!("0.{minor}.{}", std::process::id());
    let manifest = workspace.join("Cargo.toml");
    let edited = fs::read_to_string(&manifest)
        .unwrap()
        .replace(
            "version = \"0.1.0\" }",
            &format!("version = \"{version}\", registry = \"{REGISTRY}\" }}"),
        )
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "crates = true",
            &format!("[workspace.metadata.castoff.crates]\nregistry = \"{REGISTRY}\""),
        );
    fs::write(&manifest, edited).unwrap();
    let config = format!("[registries.{REGISTRY}]\nindex = \"{index}\"\n");
    fs::create_dir_all(workspace.join(".cargo")).unwrap();
    fs::write(workspace.join(".cargo/config.toml"), &config).unwrap();
    let cargo_home = scratch.join("cargo-home");
    fs::create_dir_all(&cargo_home).unwrap();
    fs::write(cargo_home.join("config.toml"), &config).unwrap();
    let lock = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["generate-lockfile", "--offline"])
        .current_dir(&workspace)
        .output()
        .unwrap();
    assert!(lock.status.success(), "{}", text(&lock));
    Fixture {
        workspace,
        cargo_home,
        version,
    }
}

impl Fixture {
    pub(super) fn castoff(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
        command
            .args(args)
            .arg("--manifest-path")
            .arg(self.workspace.join("Cargo.toml"))
            .env("CARGO_HOME", &self.cargo_home)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env_remove("CARGO_REGISTRY_TOKEN")
            .env_remove("CARGO_REGISTRIES_KELLNR_TOKEN");
        command.envs(envs.iter().copied());
        command.output().expect("running castoff")
    }

    pub(super) fn dist(&self) {
        let output = self.castoff(&["dist"], &[]);
        assert!(output.status.success(), "dist failed:\n{}", text(&output));
    }
}

pub(super) fn client(env: &TestEnv) -> CratesClient {
    let http = HttpClient::new(HttpConfig::from_env()).unwrap();
    let registry = CratesRegistry::new(REGISTRY, &env.kellnr_index).unwrap();
    let token = Some((
        Secret::new(env.kellnr_token.clone()),
        castoff_registry::CredentialSource::variables(["CASTOFF_TEST_KELLNR_TOKEN"]),
    ));
    CratesClient::connect(&http, registry, token).unwrap()
}

/// The position of `needle` in `haystack`, panicking with the text when it is not there.
fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{haystack}"))
}

#[test]
fn crates_publish_in_order_skip_on_rerun_and_install_with_cargo() {
    let env = TestEnv::get();
    let fixture = fixture(&env, "order", 1);
    fixture.dist();
    let token = env.kellnr_token.as_str();
    // A dry run asks the index and uploads nothing.
    let dry = fixture.castoff(
        &["publish", "--dry-run"],
        &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)],
    );
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("3 crates: 3 would-upload"),
        "{}",
        text(&dry)
    );
    assert_eq!(
        client(&env)
            .index_entry("cc-core", &fixture.version)
            .unwrap(),
        None
    );
    let output = fixture.castoff(&["publish"], &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)]);
    let out = text(&output);
    assert!(output.status.success(), "publish failed:\n{out}");
    env.assert_no_secret(&out);
    // Dependencies first: cc-core, then cc-util, then cc-cli.
    let core = position(&out, "crate cc-core@");
    let util = position(&out, "crate cc-util@");
    let cli = position(&out, "crate cc-cli@");
    assert!(core < util && util < cli, "{out}");
    let kellnr = client(&env);
    for name in ["cc-core", "cc-util", "cc-cli"] {
        let entry = kellnr
            .index_entry(name, &fixture.version)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} {} not in kellnr's index", fixture.version));
        let sha = castoff_archive::digest::hex(&castoff_archive::digest::sha256(
            &fs::read(
                fixture
                    .workspace
                    .join(format!("dist/crates/{name}-{}.crate", fixture.version)),
            )
            .unwrap(),
        ));
        assert_eq!(entry.cksum, sha, "{name}");
        assert!(!entry.yanked);
    }

    // Again: every crate is there already.
    let again = fixture.castoff(&["publish"], &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)]);
    let out = text(&again);
    assert!(again.status.success(), "second publish failed:\n{out}");
    for name in ["cc-core", "cc-util", "cc-cli"] {
        assert!(
            out.contains(&format!("skip (identical) crate-publish/{name}")),
            "{name} not skipped:\n{out}"
        );
    }

    // What users do: cargo install from the registry, with a CARGO_HOME of the test's own.
    let root = fixture.cargo_home.join("install-root");
    let install = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "--registry", REGISTRY, "cc-cli", "--version"])
        .arg(&fixture.version)
        .arg("--root")
        .arg(&root)
        .env("CARGO_HOME", &fixture.cargo_home)
        .env_remove("CARGO_TARGET_DIR")
        .env(
            "CARGO_TARGET_DIR",
            fixture.cargo_home.join("install-target"),
        )
        .current_dir(&fixture.cargo_home)
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "cargo install:\n{}",
        text(&install)
    );
    let run = Command::new(root.join("bin/cc-greet"))
        .arg("bob")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "HELLO, BOB (hello, you)\n"
    );

    // `castoff yank`: the plan first (nothing changes), then every crate yanked and read
    // back, then a re-run that finds nothing left; unyank through the client.
    let yank = |extra: &[&str]| {
        let mut args = vec!["--json", "yank", fixture.version.as_str()];
        args.extend_from_slice(extra);
        let output = fixture.castoff(&args, &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)]);
        assert!(
            output.status.success(),
            "yank {extra:?}:\n{}",
            text(&output)
        );
        env.assert_no_secret(&text(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
        let steps = report["steps"].as_array().unwrap().clone();
        assert_eq!(steps.len(), 3, "{report:#}");
        steps
    };
    for step in yank(&["--dry-run"]) {
        assert_eq!(step["state"], "to-undo", "{step:#}");
        assert_eq!(step["outcome"], "would-undo", "{step:#}");
        let name = step["id"].as_str().unwrap().trim_start_matches("crates/");
        assert_eq!(
            step["changes"][0],
            format!("yank {name}@{}", fixture.version),
            "{step:#}"
        );
        assert!(
            !kellnr
                .index_entry(name, &fixture.version)
                .unwrap()
                .unwrap()
                .yanked
        );
    }
    for step in yank(&["--yes"]) {
        assert_eq!(step["outcome"], "done", "{step:#}");
    }
    for name in ["cc-core", "cc-util", "cc-cli"] {
        let entry = kellnr.index_entry(name, &fixture.version).unwrap().unwrap();
        assert!(entry.yanked, "{name} not yanked");
    }
    for step in yank(&["--yes"]) {
        assert_eq!(step["state"], "undone", "{step:#}");
        assert_eq!(step["outcome"], "skipped", "{step:#}");
    }
    kellnr.unyank("cc-cli", &fixture.version).unwrap();
    assert!(
        !kellnr
            .index_entry("cc-cli", &fixture.version)
            .unwrap()
            .unwrap()
            .yanked
    );
}

#[test]
fn a_changed_crate_of_a_published_version_is_a_conflict_before_any_upload() {
    let env = TestEnv::get();
    let fixture = fixture(&env, "conflict", 2);
    fixture.dist();
    let token = env.kellnr_token.as_str();
    let output = fixture.castoff(
        &["publish", "--only", "crate-publish/cc-core"],
        &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)],
    );
    assert!(output.status.success(), "{}", text(&output));
    // The same version with other bytes.
    let lib = fixture.workspace.join("crates/cc-core/src/lib.rs");
    let source = fs::read_to_string(&lib).unwrap();
    fs::write(&lib, source.replace("hello, ", "hi, ")).unwrap();
    fixture.dist();
    let output = fixture.castoff(&["publish"], &[("CARGO_REGISTRIES_KELLNR_TOKEN", token)]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(out.contains("crate-publish/cc-core"), "{out}");
    // Nothing else went up: cc-util and cc-cli were absent and stay so.
    let kellnr = client(&env);
    for name in ["cc-util", "cc-cli"] {
        assert_eq!(
            kellnr.index_entry(name, &fixture.version).unwrap(),
            None,
            "{name}"
        );
    }
}

#[test]
fn without_a_token_publish_stops_before_any_upload_naming_where_to_put_one() {
    let env = TestEnv::get();
    let fixture = fixture(&env, "no-token", 3);
    fixture.dist();
    let output = fixture.castoff(&["publish"], &[]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("CARGO_REGISTRIES_<NAME>_TOKEN"), "{out}");
    let kellnr = client(&env);
    assert_eq!(
        kellnr.index_entry("cc-core", &fixture.version).unwrap(),
        None
    );
}

/// The credentials file Cargo's `cargo login` writes is read too, and named when refused.
#[test]
fn a_wrong_token_in_credentials_toml_is_named_in_the_refusal() {
    let env = TestEnv::get();
    let fixture = fixture(&env, "bad-token", 4);
    fixture.dist();
    fs::write(
        fixture.cargo_home.join("credentials.toml"),
        format!("[registries.{REGISTRY}]\ntoken = \"not-the-token\"\n"),
    )
    .unwrap();
    let output = fixture.castoff(&["publish"], &[]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("credentials.toml"), "{out}");
    assert!(!out.contains("not-the-token"), "{out}");
}

/// The token goes to the registry's API and nowhere else: with kellnr's index read through a
/// recording proxy on another origin (the API stays kellnr's own, as its `config.json` says,
/// like crates.io's index.crates.io and crates.io), the proxy never sees an `Authorization`,
/// while the uploads, which need the token, succeed.
#[test]
fn the_token_goes_to_the_api_origin_only() {
    let env = TestEnv::get();
    let kellnr = TestEnv::host_port(&env.kellnr_index.replace("sparse+", "")).to_owned();
    let proxy = super::hardening::proxy::Proxy::start(&kellnr);
    let index = format!("sparse+{}api/v1/crates/", proxy.url());
    let fixture = fixture_with_index(&env, "routing", 6, &index);
    fixture.dist();
    let output = fixture.castoff(
        &["publish"],
        &[("CARGO_REGISTRIES_KELLNR_TOKEN", env.kellnr_token.as_str())],
    );
    assert!(output.status.success(), "{}", text(&output));
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|entry| entry.request_line.contains("config.json")),
        "the index was not read through the proxy: {log:?}"
    );
    for entry in &log {
        assert_eq!(entry.authorization, None, "{}", entry.request_line);
    }
}
