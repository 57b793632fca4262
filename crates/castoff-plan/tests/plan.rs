//! The planner on the fixture workspaces (`tests/fixtures` at the repository root), called as a
//! library: no Cargo, no processes, no network. Each fixture's `cargo metadata` is checked in
//! under `tests/metadata/`, its absolute paths written as `$FIXTURES`, which `metadata` swaps
//! for the fixtures' real directory. The CLI's own tests (crates/castoff/tests/plan.rs) run the
//! binary on the same fixtures and snapshot the rendered plans; these tests check the `Release`
//! itself (apps, artifacts, steps, edges) and the configuration errors, all of them at once.
//!
//! After changing a fixture's Cargo.toml, regenerate its JSON from the repository root:
//!
//! ```sh
//! cd tests/fixtures && for fixture in single-cli two-apps http-service build-settings crates-channel broken/*/; do
//!     fixture=${fixture%/}
//!     env -u CARGO_TARGET_DIR cargo metadata --format-version 1 --no-deps --offline \
//!         --manifest-path "$fixture/Cargo.toml" | sed "s|$(pwd -P)|\$FIXTURES|g" \
//!         | python3 -m json.tool --indent 2 \
//!         > "../../crates/castoff-plan/tests/metadata/${fixture/\//-}.json"
//! done
//! ```
//!
//! `UPDATE_EXPECT=1 cargo test -p castoff-plan --test plan` rewrites the snapshots.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use cargo_metadata::Metadata;
use castoff_plan::{ArtifactId, ArtifactKind, PlanError, PlanOptions, Release, StepId, StepKind};
use expect_test::{Expect, ExpectFile, expect, expect_file};
use serde_json::Value;

const PLACEHOLDER: &str = "$FIXTURES";

/// The fixture workspaces' directory, as Cargo would write it (absolute, no `..`).
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .canonicalize()
        .expect("tests/fixtures exists")
}

/// The checked-in `cargo metadata` of `tests/fixtures/<fixture>` as JSON, with the real
/// fixtures directory in place of the placeholder.
fn metadata_json(fixture: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/metadata")
        .join(format!("{}.json", fixture.replace('/', "-")));
    let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let root = fixtures_dir();
    substitute(&mut json, root.to_str().expect("a UTF-8 path"));
    json
}

fn substitute(value: &mut Value, root: &str) {
    match value {
        Value::String(text) if text.contains(PLACEHOLDER) => {
            *text = text.replace(PLACEHOLDER, root);
        }
        Value::Array(items) => items.iter_mut().for_each(|item| substitute(item, root)),
        Value::Object(entries) => entries
            .values_mut()
            .for_each(|entry| substitute(entry, root)),
        _ => {}
    }
}

fn metadata(fixture: &str) -> Metadata {
    parse(metadata_json(fixture))
}

fn parse(json: Value) -> Metadata {
    serde_json::from_value(json).expect("cargo metadata's schema")
}

fn plan(fixture: &str) -> Release {
    castoff_plan::plan(&metadata(fixture), &PlanOptions::default())
        .unwrap_or_else(|error| panic!("planning {fixture}: {error}"))
}

/// The error as the CLI shows it after `error: ` (its hint, if it has one, last), paths
/// relative to `$FIXTURES`.
fn render_error(error: &PlanError) -> String {
    let root = fixtures_dir();
    let text = match error.hint() {
        Some(hint) => format!("{error}\nhint: {hint}"),
        None => error.to_string(),
    };
    text.replace(root.to_str().unwrap(), PLACEHOLDER)
}

fn names(release: &Release, ids: impl IntoIterator<Item = StepId>) -> Vec<String> {
    ids.into_iter().map(|id| release.step_id(id)).collect()
}

/// The release as text: every app with its channels, every artifact with its inputs, every
/// step with the steps it waits for. Paths are left out (they are checked on their own).
fn describe(release: &Release) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "compression level {}", release.compression_level);
    for app in &release.apps {
        let targets: Vec<&str> = app.targets.iter().map(|target| target.triple).collect();
        let depends_on: Vec<&str> = app
            .depends_on
            .iter()
            .map(|id| release.apps[id.0].package.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "app {} {}: bins [{}], targets [{}], crt-static {}, depends on [{}], git tag {} ({})",
            app.package.name,
            app.package.version,
            app.bins.join(", "),
            targets.join(", "),
            app.crt_static,
            depends_on.join(", "),
            app.git_tag(),
            app.tag
        );
        if let Some(python) = &app.python {
            let requires: Vec<String> = python
                .requires
                .iter()
                .map(|requirement| requirement.to_requires_dist())
                .collect();
            let _ = write!(
                out,
                "  python {} {} (module {}), requires [{}]",
                python.name,
                python.version,
                python.module,
                requires.join(", ")
            );
            if !python.glibc_and_musl_arches.is_empty() {
                let _ = write!(
                    out,
                    ", glibc and musl wheels apart on [{}]",
                    python.glibc_and_musl_arches.join(", ")
                );
            }
            out.push('\n');
        }
        if let Some(npm) = &app.npm {
            let dependencies: Vec<String> = npm
                .dependencies
                .iter()
                .map(|(name, version)| format!("{name}@{version}"))
                .collect();
            let _ = writeln!(
                out,
                "  npm {}@{} ({}), node {}, {}, dependencies [{}]",
                npm.name,
                npm.version.version,
                npm.version.dist_tag,
                npm.node,
                npm.binary_path_env,
                dependencies.join(", ")
            );
        }
        if let Some(oci) = &app.oci {
            let _ = writeln!(
                out,
                "  oci {}:{}, base {:?}, user {}, entrypoint {}, ports {:?}, env {:?}, labels {:?}, healthcheck {:?}",
                oci.repository,
                oci.tags.join(","),
                oci.base,
                oci.user,
                oci.entrypoint,
                oci.ports,
                oci.env,
                oci.labels,
                oci.healthcheck,
            );
        }
    }
    for index in 0..release.artifacts.len() {
        let artifact = &release.artifacts[index];
        let inputs: Vec<String> = artifact
            .inputs
            .iter()
            .map(|input| release.artifact_id(*input))
            .collect();
        let _ = write!(out, "artifact {}", release.artifact_id(ArtifactId(index)));
        if !inputs.is_empty() {
            let _ = write!(out, " <- {}", inputs.join(", "));
        }
        let _ = writeln!(out);
    }
    for index in 0..release.steps.len() {
        let step = &release.steps[index];
        let _ = write!(
            out,
            "step {} ({})",
            release.step_id(StepId(index)),
            release.artifact_id(step.artifact)
        );
        if !step.after.is_empty() {
            let _ = write!(
                out,
                " after {}",
                names(release, step.after.iter().copied()).join(", ")
            );
        }
        let _ = writeln!(out);
    }
    out
}

/// What every plan promises, whatever the fixture: the edges of ARCHITECTURE.md, inputs before
/// what is built from them, and a publish order that respects every edge.
fn check_edges(release: &Release) {
    for (index, artifact) in release.artifacts.iter().enumerate() {
        let id = release.artifact_id(ArtifactId(index));
        let of_app = |kind: ArtifactKind| -> Vec<ArtifactId> {
            (0..release.artifacts.len())
                .map(ArtifactId)
                .filter(|other| {
                    let other = &release.artifacts[other.0];
                    other.kind == kind && other.app == artifact.app
                })
                .collect()
        };
        for input in &artifact.inputs {
            assert!(input.0 < index, "{id}: an input comes after it");
        }
        match artifact.kind {
            ArtifactKind::Binary => assert!(artifact.inputs.is_empty(), "{id}"),
            ArtifactKind::Sbom
            | ArtifactKind::Archive
            | ArtifactKind::Wheel
            | ArtifactKind::NpmPlatform
            | ArtifactKind::OciImage => {
                let [binary] = artifact.inputs[..] else {
                    panic!("{id}: built from one binary");
                };
                let binary = &release.artifacts[binary.0];
                assert_eq!(binary.kind, ArtifactKind::Binary, "{id}");
                assert_eq!((binary.app, binary.target), (artifact.app, artifact.target));
                if artifact.kind == ArtifactKind::OciImage {
                    assert!(artifact.target.unwrap().oci.is_some(), "{id}: Linux only");
                }
            }
            // Built from the sources, once per app, only with a Python channel.
            ArtifactKind::Sdist => {
                assert!(artifact.inputs.is_empty(), "{id}");
                assert!(artifact.target.is_none(), "{id}");
                let python = release.apps[artifact.app.0].python.as_ref();
                assert!(python.is_some_and(|python| python.sdist), "{id}");
            }
            ArtifactKind::NpmLauncher => {
                assert_eq!(artifact.inputs, of_app(ArtifactKind::NpmPlatform), "{id}");
            }
            ArtifactKind::OciIndex => {
                assert_eq!(artifact.inputs, of_app(ArtifactKind::OciImage), "{id}");
            }
        }
    }
    for (index, step) in release.steps.iter().enumerate() {
        let id = release.step_id(StepId(index));
        let artifact = &release.artifacts[step.artifact.0];
        assert_eq!(step.app, artifact.app, "{id}");
        let waits_for = |kind: ArtifactKind, step_kind: &StepKind| {
            release
                .steps
                .iter()
                .enumerate()
                .filter(|(_, other)| {
                    other.app == step.app
                        && other.destination == step.destination
                        && &other.kind == step_kind
                        && release.artifacts[other.artifact.0].kind == kind
                })
                .all(|(other, _)| step.after.contains(&StepId(other)))
        };
        match (&step.kind, artifact.kind) {
            (StepKind::NpmPublish, ArtifactKind::NpmLauncher) => assert!(
                waits_for(ArtifactKind::NpmPlatform, &StepKind::NpmPublish),
                "{id}: the launcher goes last"
            ),
            (StepKind::OciPushIndex, _) => assert!(
                waits_for(ArtifactKind::OciImage, &StepKind::OciPushImage),
                "{id}: the index after its images"
            ),
            (StepKind::OciTag(_), _) => assert!(
                waits_for(ArtifactKind::OciIndex, &StepKind::OciPushIndex),
                "{id}: tags after the index"
            ),
            (StepKind::OciAttachSbom, kind) => assert_eq!(kind, ArtifactKind::Sbom, "{id}"),
            (StepKind::PypiUpload, ArtifactKind::Sdist) => assert!(
                waits_for(ArtifactKind::Wheel, &StepKind::PypiUpload),
                "{id}: the sdist after the wheels"
            ),
            (StepKind::PypiUpload, kind) => assert_eq!(kind, ArtifactKind::Wheel, "{id}"),
            (StepKind::OciPushImage, kind) => assert_eq!(kind, ArtifactKind::OciImage, "{id}"),
            (StepKind::NpmPublish, kind) => assert_eq!(kind, ArtifactKind::NpmPlatform, "{id}"),
        }
    }
    let order = release.publish_order();
    assert_eq!(order.len(), release.steps.len());
    for (position, id) in order.iter().enumerate() {
        for after in &release.steps[id.0].after {
            let before = order.iter().position(|other| other == after).unwrap();
            assert!(before < position, "{} runs too early", release.step_id(*id));
        }
    }
}

/// Plans a fixture, checks its edges and snapshots its description; the paths the plan keeps
/// point into the fixture.
fn check_release(fixture: &str, expect: ExpectFile) {
    let release = plan(fixture);
    check_edges(&release);
    let root = fixtures_dir().join(fixture);
    assert_eq!(release.workspace_root, root);
    assert_eq!(release.target_directory, root.join("target"));
    for app in &release.apps {
        assert!(app.package.manifest_path.is_file(), "{app:?}");
        for file in app.package.readme.iter().chain(&app.package.license_file) {
            assert!(file.is_file(), "{}", file.display());
        }
    }
    expect.assert_eq(&describe(&release));
}

#[test]
fn single_cli() {
    check_release("single-cli", expect_file!["snapshots/single-cli.txt"]);
}

#[test]
fn two_apps() {
    check_release("two-apps", expect_file!["snapshots/two-apps.txt"]);
}

#[test]
fn http_service() {
    check_release("http-service", expect_file!["snapshots/http-service.txt"]);
}

/// Each of the dependent app's channels waits for the same channel of the app it needs, at
/// every step, and only in that channel.
#[test]
fn dependent_app_waits_for_its_dependency() {
    let release = plan("two-apps");
    let step = |id: &str| {
        (0..release.steps.len())
            .map(StepId)
            .find(|step| release.step_id(*step) == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    let after = |id: &str| names(&release, release.steps[step(id).0].after.iter().copied());
    for triple in ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"] {
        assert_eq!(
            after(&format!("pypi-upload/toolkit/{triple}")),
            [
                "pypi-upload/toolkit-core/x86_64-unknown-linux-gnu",
                "pypi-upload/toolkit-core/x86_64-unknown-linux-musl",
                "pypi-upload/toolkit-core"
            ]
        );
        assert!(after(&format!("npm-publish/toolkit/{triple}")).is_empty());
    }
    assert_eq!(
        after("npm-publish/toolkit"),
        [
            "npm-publish/toolkit/x86_64-unknown-linux-gnu",
            "npm-publish/toolkit/x86_64-unknown-linux-musl",
            "npm-publish/toolkit-core",
        ]
    );
}

/// `--package` and `--target` narrow the plan.
#[test]
fn narrowing() {
    let options = PlanOptions {
        packages: vec!["toolkit-core".to_owned()],
        targets: vec!["x86_64-unknown-linux-musl".to_owned()],
    };
    let release = castoff_plan::plan(&metadata("two-apps"), &options).unwrap();
    check_edges(&release);
    assert_eq!(release.apps.len(), 1);
    assert_eq!(release.apps[0].package.name, "toolkit-core");
    assert_eq!(
        release
            .targets()
            .iter()
            .map(|t| t.triple)
            .collect::<Vec<_>>(),
        ["x86_64-unknown-linux-musl"]
    );
    assert!(release.artifacts.iter().all(|artifact| {
        artifact
            .target
            .is_none_or(|t| t.triple == options.targets[0])
    }));
    // Wheels are tagged from the configured targets, so a partial dist's musl wheel is the
    // whole release's: it still leaves manylinux to the glibc wheel built elsewhere.
    let python = release.apps[0].python.as_ref().expect("a wheel");
    assert_eq!(python.glibc_and_musl_arches, ["x86_64"]);
}

/// A channel with several destinations publishes to each in turn: every step for a later
/// destination waits for the same step for the one before.
#[test]
fn destinations_in_order() {
    let json = single_cli_with(|_, package| {
        package["python"]["repositories"] = serde_json::json!(["testpypi", "pypi"]);
        package["oci"]["mirrors"] = serde_json::json!(["docker.io/acme/greeter"]);
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    check_edges(&release);
    let after = |id: &str| {
        let step = (0..release.steps.len())
            .map(StepId)
            .find(|step| release.step_id(*step) == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        names(&release, release.steps[step.0].after.iter().copied())
    };
    let linux = "x86_64-unknown-linux-gnu";
    assert!(after(&format!("pypi-upload/greeter/{linux}@testpypi")).is_empty());
    assert_eq!(
        after(&format!("pypi-upload/greeter/{linux}@pypi")),
        [format!("pypi-upload/greeter/{linux}@testpypi")]
    );
    assert_eq!(
        after(&format!(
            "oci-push-image/greeter/{linux}@docker.io/acme/greeter"
        )),
        [format!("oci-push-image/greeter/{linux}")]
    );
    assert_eq!(
        after("oci-tag/greeter/latest@docker.io/acme/greeter"),
        [
            "oci-push-index/greeter@docker.io/acme/greeter",
            "oci-tag/greeter/latest"
        ]
    );
}

/// Plans `json` (a fixture's metadata, perhaps edited) and checks that it fails with `expect`.
fn check_error(json: Value, options: &PlanOptions, expect: Expect) {
    let error = castoff_plan::plan(&parse(json), options).expect_err("the plan must fail");
    for problem in &error.errors {
        assert!(problem.file.is_absolute(), "{problem:?}");
        assert!(!problem.hint.is_empty(), "{problem:?}");
    }
    expect.assert_eq(&render_error(&error));
}

fn check_broken(fixture: &str, expect: Expect) {
    check_error(metadata_json(fixture), &PlanOptions::default(), expect);
}

#[test]
fn broken_unknown_key() {
    check_broken(
        "broken/unknown-key",
        expect![[r#"
            invalid release configuration: $FIXTURES/broken/unknown-key/Cargo.toml: `package.metadata.castoff.python.nmae`: unknown key `nmae`
            hint: did you mean `name`? known keys here: name, module, requires, requires-python, classifiers, repositories, upload-limit, sdist"#]],
    );
}

#[test]
fn broken_bad_version() {
    check_broken(
        "broken/bad-version",
        expect![[r#"
            invalid release configuration: $FIXTURES/broken/bad-version/Cargo.toml: `package.version`: `1.0.0-alpha.beta` cannot be published to PyPI: pre-release `-alpha.beta` has no PEP 440 spelling
            hint: use a pre-release of the form -alpha.N, -beta.N, -rc.N or -dev.N, e.g. version = "1.0.0-rc.1""#]],
    );
}

#[test]
fn broken_unknown_target() {
    check_broken(
        "broken/unknown-target",
        expect![[r#"
            invalid release configuration: $FIXTURES/broken/unknown-target/Cargo.toml: `workspace.metadata.castoff.targets`: unknown target `loongarch64-unknown-linux-gnu`
            hint: supported targets are: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, aarch64-unknown-linux-musl, armv7-unknown-linux-gnueabihf, armv7-unknown-linux-musleabihf, i686-unknown-linux-gnu, i686-unknown-linux-musl, riscv64gc-unknown-linux-gnu, riscv64gc-unknown-linux-musl, powerpc64le-unknown-linux-gnu, powerpc64le-unknown-linux-musl, s390x-unknown-linux-gnu, s390x-unknown-linux-musl, x86_64-apple-darwin, aarch64-apple-darwin, x86_64-pc-windows-msvc, aarch64-pc-windows-msvc, i686-pc-windows-msvc"#]],
    );
}

#[test]
fn broken_dependency_cycle() {
    check_broken(
        "broken/dependency-cycle",
        expect![[r#"
            invalid release configuration: $FIXTURES/broken/dependency-cycle/a/Cargo.toml: `package.metadata.castoff`: dependency cycle between released packages: cycle-a -> cycle-b -> cycle-a
            hint: remove one of these dependencies (`python.requires` or `npm.dependencies`) so each package can be published after the ones it needs"#]],
    );
}

#[test]
fn broken_missing_binary() {
    check_broken(
        "broken/missing-binary",
        expect![[r#"
            invalid release configuration: $FIXTURES/broken/missing-binary/Cargo.toml: `package.metadata.castoff.bins`: `nobin-cli` is not a binary of package `nobin`
            hint: binaries of `nobin`: nobin"#]],
    );
}

/// `single-cli` with its castoff tables edited.
fn single_cli_with(edit: impl FnOnce(&mut Value, &mut Value)) -> Value {
    let mut json = metadata_json("single-cli");
    let mut workspace = json["metadata"]["castoff"].take();
    let mut package = json["packages"][0]["metadata"]["castoff"].take();
    edit(&mut workspace, &mut package);
    json["metadata"]["castoff"] = workspace;
    json["packages"][0]["metadata"]["castoff"] = package;
    json
}

/// Problems in the workspace table, in every channel and on the command line come back
/// together, in the order of the configuration.
#[test]
fn every_problem_at_once() {
    let json = single_cli_with(|workspace, package| {
        workspace["compression-level"] = 12.into();
        package["python"]["name"] = "-greeter".into();
        package["npm"]["registries"] = serde_json::json!(["https://me:secret@npm.example.com/"]);
        package["oci"]["base"] = "debian:12".into();
        package["oci"]["user"] = "nobody".into();
    });
    let options = PlanOptions {
        packages: vec!["greeter".to_owned(), "grreter".to_owned()],
        targets: vec!["sparc64-sun-solaris".to_owned()],
    };
    check_error(
        json,
        &options,
        expect![[r#"
            invalid release configuration (7 problems):
            - $FIXTURES/single-cli/Cargo.toml: `workspace.metadata.castoff.compression-level`: 12 is not a deflate level
              hint: use 0 (store) to 9 (smallest); the default is 6
            - $FIXTURES/single-cli/Cargo.toml: `--package`: `grreter` is not a released package of this workspace
              hint: released packages: greeter
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.python.name`: `-greeter`: a PyPI name must start and end with an ASCII letter or digit
              hint: choose a name such as `my-tool`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.npm.registries[0]`: `https://<redacted>@npm.example.com/`: credentials written into the URL are refused (they would show in the plan, dist/manifest.json and logs)
              hint: remove `user:password@`; `publish` takes the token from .npmrc (`//host/:_authToken=${NPM_TOKEN}`), NODE_AUTH_TOKEN or NPM_TOKEN
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.base`: base image `debian:12` is not pinned by digest
              hint: pin it, e.g. `gcr.io/distroless/static-debian12@sha256:<digest>` (find the digest with `skopeo inspect`), or use `scratch` or `oci-layout:<dir>`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.user`: user `nobody` is not numeric
              hint: use `uid:gid` numbers, e.g. `65532:65532`: Kubernetes `runAsNonRoot` cannot verify a user name
            - $FIXTURES/single-cli/Cargo.toml: `--target`: unknown target `sparc64-sun-solaris`
              hint: supported targets are: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, aarch64-unknown-linux-musl, armv7-unknown-linux-gnueabihf, armv7-unknown-linux-musleabihf, i686-unknown-linux-gnu, i686-unknown-linux-musl, riscv64gc-unknown-linux-gnu, riscv64gc-unknown-linux-musl, powerpc64le-unknown-linux-gnu, powerpc64le-unknown-linux-musl, s390x-unknown-linux-gnu, s390x-unknown-linux-musl, x86_64-apple-darwin, aarch64-apple-darwin, x86_64-pc-windows-msvc, aarch64-pc-windows-msvc, i686-pc-windows-msvc"#]],
    );
}

/// A misspelled key gets the nearest known key as a suggestion, or the list alone when no
/// key is near; nested tables name the full key.
#[test]
fn unknown_keys() {
    let json = single_cli_with(|workspace, package| {
        workspace["crt-statik"] = true.into();
        package["oci"]["healthcheck"] = serde_json::json!({ "cmd": ["x"], "intervall": "1s" });
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (2 problems):
            - $FIXTURES/single-cli/Cargo.toml: `workspace.metadata.castoff.crt-statik`: unknown key `crt-statik`
              hint: did you mean `crt-static`? known keys here: targets, crt-static, compression-level, tag, target, crates, features, all-features, no-default-features, profile, build-env, cargo-args, build, glibc
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.intervall`: unknown key `intervall`
              hint: did you mean `interval`? known keys here: cmd, http, tcp, port, interval, timeout, start-period, start-interval, retries, readiness"#]],
    );
    let json = single_cli_with(|_, package| {
        package["npm"]["registry-url"] = "https://npm.example.com/".into();
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.npm.registry-url`: unknown key `registry-url`
            hint: known keys here: name, dependencies, binary-path-env, node, registries, upload-limit; see docs/configuration.md"#]],
    );
}

/// Every mistake of a table in one round: several unknown keys in one table and in others,
/// a wrong value, a list with a wrong entry, and a bad name that only the plan's own checks
/// see, which still run on what is left.
#[test]
fn every_mistake_at_once() {
    let json = single_cli_with(|workspace, package| {
        workspace["compression-levle"] = 6.into();
        workspace["targets"] = serde_json::json!(["x86_64-unknown-linux-gnu", 7]);
        package["python"]["nmae"] = "greeter".into();
        package["python"]["requries"] = serde_json::json!([]);
        package["npm"]["regsitries"] = serde_json::json!([]);
        package["npm"]["name"] = "@Acme/Greeter".into();
        package["oci"]["ports"] = "8080".into();
        package["oci"]["healthcheck"] = serde_json::json!({ "interval": "1s" });
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (8 problems):
            - $FIXTURES/single-cli/Cargo.toml: `workspace.metadata.castoff.compression-levle`: unknown key `compression-levle`
              hint: did you mean `compression-level`? known keys here: targets, crt-static, compression-level, tag, target, crates, features, all-features, no-default-features, profile, build-env, cargo-args, build, glibc
            - $FIXTURES/single-cli/Cargo.toml: `workspace.metadata.castoff.targets[1]`: invalid type: integer `7`, expected a string
              hint: see docs/configuration.md for the expected value
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.npm.regsitries`: unknown key `regsitries`
              hint: did you mean `registries`? known keys here: name, dependencies, binary-path-env, node, registries, upload-limit
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports`: invalid type: string "8080", expected a sequence
              hint: see docs/configuration.md for the expected value
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.python.nmae`: unknown key `nmae`
              hint: did you mean `name`? known keys here: name, module, requires, requires-python, classifiers, repositories, upload-limit, sdist
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.python.requries`: unknown key `requries`
              hint: did you mean `requires`? known keys here: name, module, requires, requires-python, classifiers, repositories, upload-limit, sdist
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.npm.name`: `@Acme/Greeter`: an npm name may only hold lower-case ASCII letters, digits, `-`, `.`, `_` and `~`, not `A`
              hint: choose a name such as `my-tool` or `@scope/my-tool`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck`: names no check
              hint: set one of `cmd` (a command in the image), `http = "/healthz"` (with `port`) or `tcp = 8080`"#]],
    );
}

/// `oci.ca-certificates` and `oci.tzdata`: booleans, off by default, for `scratch` only (a
/// base brings its own system data, which castoff's layer would shadow).
#[test]
fn userland_keys_take_booleans_on_scratch_only() {
    let release = plan("single-cli");
    let oci = release.apps[0].oci.as_ref().unwrap();
    assert_eq!(oci.userland, castoff_plan::plan::Userland::default());
    let json = single_cli_with(|_, package| {
        package["oci"]["ca-certificates"] = true.into();
        package["oci"]["tzdata"] = true.into();
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    let userland = release.apps[0].oci.as_ref().unwrap().userland;
    assert!(userland.ca_certificates && userland.tzdata, "{userland:?}");

    let json = single_cli_with(|_, package| {
        package["oci"]["ca-certificates"] = "yes".into();
        package["oci"]["tzdata"] = 1.into();
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (2 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ca-certificates`: invalid type: string "yes", expected a boolean
              hint: see docs/configuration.md for the expected value
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.tzdata`: invalid type: integer `1`, expected a boolean
              hint: see docs/configuration.md for the expected value"#]],
    );
    let json = single_cli_with(|_, package| {
        package["oci"]["base"] = format!(
            "gcr.io/distroless/static-debian12@sha256:{}",
            "ab".repeat(32)
        )
        .into();
        package["oci"]["ca-certificates"] = true.into();
        package["oci"]["tzdata"] = true.into();
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
        invalid release configuration (2 problems):
        - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ca-certificates`: `ca-certificates = true` adds `/etc/ssl/certs/ca-certificates.crt` to a `scratch` image, but `base` is `gcr.io/distroless/static-debian12@sha256:abababababababababababababababababababababababababababababababab`
          hint: remove `ca-certificates` and take `/etc/ssl/certs/ca-certificates.crt` from the base image (e.g. a distroless or Debian base), or set `base = "scratch"`
        - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.tzdata`: `tzdata = true` adds `/usr/share/zoneinfo/` to a `scratch` image, but `base` is `gcr.io/distroless/static-debian12@sha256:abababababababababababababababababababababababababababababababab`
          hint: remove `tzdata` and take `/usr/share/zoneinfo/` from the base image (e.g. a distroless or Debian base), or set `base = "scratch"`"#]],
    );
}

/// `tag`: the default `v{version}`, the workspace's pattern for every package, a package's own
/// pattern over it; the manifest records each app's pattern.
#[test]
fn tag_patterns_resolve_per_package() {
    let tag_of = |json: Value| {
        let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
        let manifest = castoff_plan::Manifest::from_release(&release, "0");
        assert_eq!(manifest.apps[0].git_tag(), release.apps[0].git_tag());
        (
            release.apps[0].git_tag(),
            manifest.apps[0].tag_pattern.to_string(),
        )
    };
    assert_eq!(
        tag_of(metadata_json("single-cli")),
        ("v0.3.1".to_owned(), "v{version}".to_owned())
    );
    let workspace_wide = single_cli_with(|workspace, _| {
        workspace["tag"] = "{version}".into();
    });
    assert_eq!(
        tag_of(workspace_wide),
        ("0.3.1".to_owned(), "{version}".to_owned())
    );
    let own = single_cli_with(|workspace, package| {
        workspace["tag"] = "{version}".into();
        package["tag"] = "{name}-v{version}".into();
    });
    assert_eq!(
        tag_of(own),
        ("greeter-v0.3.1".to_owned(), "{name}-v{version}".to_owned())
    );
}

/// A pattern with an unknown placeholder, without `{version}` or giving tags git refuses is
/// a configuration error, reported with the package's other problems.
#[test]
fn bad_tag_patterns_are_configuration_errors() {
    let json = single_cli_with(|workspace, package| {
        workspace["tag"] = "release-{nme}".into();
        package["tag"] = "v {version}".into();
        package["python"]["name"] = "-greeter".into();
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (3 problems):
            - $FIXTURES/single-cli/Cargo.toml: `workspace.metadata.castoff.tag`: tag pattern `release-{nme}` has an unknown placeholder `{nme}`
              hint: the placeholders are {name} (the Cargo package name) and {version} (the Cargo version), e.g. "v{version}", "{version}" or "{name}-v{version}"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.tag`: tag pattern `v {version}` gives tags git refuses (`v 1.0.0`): it contains a space
              hint: a git tag cannot contain spaces, control characters, `~ ^ : ? * [ \`, `..` or `@{`, begin with `-` or `/`, end with `/` or `.`, or have a `/`-separated part that begins with `.` or ends in `.lock`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.python.name`: `-greeter`: a PyPI name must start and end with an ASCII letter or digit
              hint: choose a name such as `my-tool`"#]],
    );
    let json = single_cli_with(|_, package| {
        package["tag"] = "latest".into();
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.tag`: tag pattern `latest` has no `{version}`
            hint: a tag names one version of a package: put {version} in it, e.g. "v{version}" or "{name}-v{version}""#]],
    );
}

/// The checked-in metadata describes the fixtures as they are: every manifest it names
/// exists, and so does every source file of every target.
#[test]
fn checked_in_metadata_points_at_the_fixtures() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metadata");
    let mut count = 0;
    for entry in fs::read_dir(&directory).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let fixture = name
            .strip_suffix(".json")
            .unwrap()
            .replacen("broken-", "broken/", 1);
        let metadata = metadata(&fixture);
        assert_eq!(
            metadata.workspace_root.as_std_path(),
            fixtures_dir().join(&fixture)
        );
        for package in metadata.workspace_packages() {
            assert!(package.manifest_path.is_file(), "{}", package.manifest_path);
            for target in &package.targets {
                assert!(target.src_path.is_file(), "{}", target.src_path);
            }
        }
        count += 1;
    }
    assert_eq!(
        count, 10,
        "single-cli, two-apps, http-service, build-settings, crates-channel and five broken fixtures"
    );
}

/// The build-settings fixture's metadata with its castoff tables replaced.
fn build_settings_with(workspace: Value, package: Value) -> Value {
    let mut json = metadata_json("build-settings");
    json["metadata"]["castoff"] = workspace;
    json["packages"][0]["metadata"]["castoff"] = package;
    json
}

/// Each key of a later table replaces the same key of an earlier one: workspace, workspace
/// for the target, package, package for the target; lists as a whole.
#[test]
fn build_settings_layer_key_by_key() {
    let json = build_settings_with(
        serde_json::json!({
            "targets": ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "aarch64-unknown-linux-gnu"],
            "profile": "dist",
            "cargo-args": ["--locked"],
            "build-env": { "RUSTFLAGS": "-C target-cpu=x86-64-v2" },
            "target": {
                "aarch64-unknown-linux-gnu": { "build": "zigbuild", "glibc": "2.17" },
                "x86_64-unknown-linux-musl": { "profile": "release" }
            }
        }),
        serde_json::json!({
            // Per-target features: one sdist could not build them all.
            "python": { "sdist": false },
            "features": ["fancy"],
            "glibc": "2.28",
            "target": {
                "x86_64-unknown-linux-musl": { "no-default-features": true, "features": ["itoa/no-panic"] }
            }
        }),
    );
    let error = castoff_plan::plan(&parse(json.clone()), &PlanOptions::default())
        .expect_err("glibc on a cargo build");
    expect![[r#"
        invalid release configuration: $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.glibc`: a glibc floor of 2.28 for x86_64-unknown-linux-gnu of `finder` needs zig, but it is built with cargo
        hint: add `build = "zigbuild"` next to it (cargo-zigbuild links against that glibc version), or remove `glibc`"#]]
    .assert_eq(&render_error(&error));

    let mut json = json;
    json["packages"][0]["metadata"]["castoff"]["target"]["x86_64-unknown-linux-gnu"] =
        serde_json::json!({ "build": "zigbuild" });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    // The release workflow installs zig on the runners of the targets built with it.
    let matrix: Value =
        serde_json::from_str(&castoff_plan::render::github_matrix(&release)).unwrap();
    let zig: Vec<String> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| format!("{} zig={}", entry["target"].as_str().unwrap(), entry["zig"]))
        .collect();
    assert_eq!(
        zig,
        [
            "x86_64-unknown-linux-gnu zig=true",
            "x86_64-unknown-linux-musl zig=false",
            "aarch64-unknown-linux-gnu zig=true"
        ]
    );
    let app = &release.apps[0];
    let lines: Vec<String> = app
        .targets
        .iter()
        .map(|target| {
            let build = app.build(target);
            format!(
                "{}: {} | --target {} | {:?} | {:?}",
                target.triple,
                build.describe(),
                build.target_arg(target.triple),
                build.feature_args(),
                build.profile_dir()
            )
        })
        .collect();
    expect![[r#"
        x86_64-unknown-linux-gnu: zigbuild (glibc 2.28), profile dist, features fancy, env RUSTFLAGS, args --locked | --target x86_64-unknown-linux-gnu.2.28 | ["--features", "fancy"] | "dist"
        x86_64-unknown-linux-musl: cargo, profile release, no default features, features itoa/no-panic, env RUSTFLAGS, args --locked | --target x86_64-unknown-linux-musl | ["--no-default-features", "--features", "itoa/no-panic"] | "release"
        aarch64-unknown-linux-gnu: zigbuild (glibc 2.28), profile dist, features fancy, env RUSTFLAGS, args --locked | --target aarch64-unknown-linux-gnu.2.28 | ["--features", "fancy"] | "dist""#]]
    .assert_eq(&lines.join("\n"));
}

/// Every build-settings mistake, at once, each naming the table that holds it.
#[test]
fn build_settings_mistakes_all_at_once() {
    let json = build_settings_with(
        serde_json::json!({
            "targets": ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "x86_64-pc-windows-msvc"],
            "build": "zigbuild",
            "target": {
                "riscv64gc-unknown-linux-gnu": { "profile": "release" },
                "x86_64-unknown-linux-musl": { "glibc": "2.17" }
            }
        }),
        serde_json::json!({
            "python": {},
            "features": ["fancy", "nope", "serde/std"],
            "all-features": true,
            "profile": "release lto",
            "glibc": "2.5",
            "cargo-args": ["--release", "-Fnope", "--target-dir=x", "--locked"],
            "build-env": { "CARGO_TARGET_DIR": "x", "1BAD": "y" },
            "target": { "aarch64-apple-darwin": { "profile": "dev" } }
        }),
    );
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (12 problems):
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.target.aarch64-apple-darwin`: `aarch64-apple-darwin` is not one of the targets of package `finder`
              hint: the package's targets are: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, x86_64-pc-windows-msvc; add the target to `targets` or remove the table
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.profile`: `release lto` is not a Cargo profile name
              hint: a profile name has only letters, digits, `-` and `_`, e.g. "release-lto" from [profile.release-lto]
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.features`: package `finder` has no feature `nope`
              hint: features of `finder`: fancy
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.features`: `serde/std`: `serde` is not a dependency of package `finder`
              hint: `<dependency>/<feature>` names a feature of a dependency; dependencies of `finder`: itoa
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.all-features`: `all-features = true` and `features = ["fancy", "nope", "serde/std"]` both apply to package `finder`
              hint: all-features already turns on every feature: keep one of the two keys
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.build-env.1BAD`: `1BAD` is not an environment variable name
              hint: use letters, digits and `_`, not starting with a digit
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.build-env.CARGO_TARGET_DIR`: castoff decides `CARGO_TARGET_DIR` itself: dist takes the binaries from Cargo's target directory for the target
              hint: set the target directory in .cargo/config.toml (`build.target-dir`) or CARGO_TARGET_DIR around castoff, and remove the entry
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.cargo-args`: `--release` is decided by castoff, not by `cargo-args`
              hint: set it with the `profile` key
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.cargo-args`: `-Fnope` is decided by castoff, not by `cargo-args`
              hint: set it with the `features` key
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.cargo-args`: `--target-dir=x` is decided by castoff, not by `cargo-args`
              hint: set it with the Cargo configuration (`build.target-dir`)
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.glibc`: `2.5` is not a glibc version castoff can build for
              hint: write `2.N` with N at least 17 (zig's oldest glibc and manylinux2014's), e.g. "2.17"
            - $FIXTURES/build-settings/Cargo.toml: `workspace.metadata.castoff.build`: cargo-zigbuild cannot build `x86_64-pc-windows-msvc`: zig links the GNU ABI, not MSVC
              hint: set `build = "cargo"` in [workspace.metadata.castoff.target.x86_64-pc-windows-msvc] and build it on a Windows runner, or pass a binary built elsewhere with `dist --prebuilt`"#]],
    );
}

/// `builds` is what `dist` measured (how the binaries came, their digests), like artifacts'
/// digests: a dist's manifest carrying it still agrees with the plan, while a changed
/// destination does not.
#[test]
fn build_records_are_not_compared_with_the_plan() {
    use castoff_plan::Manifest;
    use castoff_plan::manifest::{BuildSource, ManifestBinary, ManifestBuild};
    let planned = Manifest::from_release(&plan("single-cli"), "0.0.0");
    let mut dist = planned.clone();
    dist.apps[0].builds.push(ManifestBuild {
        target: "x86_64-unknown-linux-gnu".to_owned(),
        settings: castoff_plan::BuildSettings::default(),
        source: BuildSource::Prebuilt,
        binaries: vec![ManifestBinary {
            name: "greeter".to_owned(),
            size: 1,
            digest: format!("sha256:{}", "0".repeat(64)),
        }],
    });
    assert_eq!(dist.differences_from(&planned), Vec::<String>::new());
    // Round trip: the record reads back as written, and a plan has none.
    assert_eq!(Manifest::from_json(&dist.to_json()).unwrap(), dist);
    assert!(!planned.to_json().contains("\"builds\""));
    dist.apps[0].version = "9.9.9".to_owned();
    assert_eq!(dist.differences_from(&planned).len(), 1);
}

/// An index holds one image per platform: where a package releases the glibc and the musl
/// build of one architecture, the musl one goes into the image unless `oci.targets` names
/// others, and `plan` says why each left-out target has no image.
#[test]
fn one_image_per_platform() {
    let with_oci = |oci: Value| {
        build_settings_with(
            serde_json::json!({
                "crt-static": true,
                "targets": [
                    "x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl",
                    "aarch64-unknown-linux-gnu", "s390x-unknown-linux-musl", "aarch64-apple-darwin"
                ]
            }),
            serde_json::json!({ "oci": oci }),
        )
    };
    let image_lines = |release: &Release| -> String {
        castoff_plan::render::text(release)
            .lines()
            .filter(|line| {
                line.contains("oci-")
                    || line.starts_with("  ")
                        && line.trim().contains('-')
                        && !line.starts_with("    ")
            })
            .filter(|line| !line.contains(". oci-"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let release = castoff_plan::plan(
        &parse(with_oci(
            serde_json::json!({ "repository": "ghcr.io/acme/finder" }),
        )),
        &PlanOptions::default(),
    )
    .unwrap();
    expect![[r#"
        x86_64-unknown-linux-gnu
        oci-image     none: linux/amd64 is x86_64-unknown-linux-musl's: one image per platform, the static musl build by default (`oci.targets` chooses)
        x86_64-unknown-linux-musl
        oci-image     ghcr.io/acme/finder (linux/amd64)
        aarch64-unknown-linux-gnu
        oci-image     ghcr.io/acme/finder (linux/arm64/v8)
        s390x-unknown-linux-musl
        oci-image     ghcr.io/acme/finder (linux/s390x)
        aarch64-apple-darwin
        oci-image     none: container images are Linux only
        oci-index       ghcr.io/acme/finder:1.4.0, 1.4, 1, latest"#]]
    .assert_eq(&image_lines(&release));

    let release = castoff_plan::plan(
        &parse(with_oci(serde_json::json!({
            "repository": "ghcr.io/acme/finder",
            "targets": ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
        }))),
        &PlanOptions::default(),
    )
    .unwrap();
    expect![[r#"
        x86_64-unknown-linux-gnu
        oci-image     ghcr.io/acme/finder (linux/amd64)
        x86_64-unknown-linux-musl
        oci-image     none: linux/amd64 is x86_64-unknown-linux-gnu's (`oci.targets`)
        aarch64-unknown-linux-gnu
        oci-image     ghcr.io/acme/finder (linux/arm64/v8)
        s390x-unknown-linux-musl
        oci-image     none: linux/s390x is not in `oci.targets`
        aarch64-apple-darwin
        oci-image     none: container images are Linux only
        oci-index       ghcr.io/acme/finder:1.4.0, 1.4, 1, latest"#]]
    .assert_eq(&image_lines(&release));

    check_error(
        with_oci(serde_json::json!({
            "repository": "ghcr.io/acme/finder",
            "targets": [
                "x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "aarch64-apple-darwin",
                "armv7-unknown-linux-gnueabihf", "nonsense"
            ]
        })),
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (4 problems):
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci.targets[1]`: `x86_64-unknown-linux-musl` and `x86_64-unknown-linux-gnu` are both linux/amd64, and an index holds one image per platform
              hint: keep one of them
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci.targets[2]`: `aarch64-apple-darwin` has no image platform: container images are Linux only
              hint: the package's Linux targets: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, s390x-unknown-linux-musl
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci.targets[3]`: `armv7-unknown-linux-gnueabihf` is not one of this package's targets
              hint: the package's Linux targets: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, s390x-unknown-linux-musl
            - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci.targets[4]`: `nonsense` is not one of this package's targets
              hint: the package's Linux targets: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, s390x-unknown-linux-musl"#]],
    );
    // On `scratch`, a dynamic glibc build could not start: refused now, not after the build.
    let mut dynamic = with_oci(serde_json::json!({
        "repository": "ghcr.io/acme/finder",
        "targets": ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
    }));
    dynamic["metadata"]["castoff"]["crt-static"] = false.into();
    check_error(
        dynamic,
        &PlanOptions::default(),
        expect![[r#"
        invalid release configuration (2 problems):
        - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci`: the image for linux/amd64 holds the x86_64-unknown-linux-gnu build, which links glibc dynamically, and the `scratch` base has no C library to run it
          hint: set `crt-static = true` (a static glibc build), add `x86_64-unknown-linux-musl` to `targets` (the image then takes it), or set `oci.base` to an image with glibc, e.g. gcr.io/distroless/cc-debian12 pinned by digest
        - $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci`: the image for linux/arm64/v8 holds the aarch64-unknown-linux-gnu build, which links glibc dynamically, and the `scratch` base has no C library to run it
          hint: set `crt-static = true` (a static glibc build), add `aarch64-unknown-linux-musl` to `targets` (the image then takes it), or set `oci.base` to an image with glibc, e.g. gcr.io/distroless/cc-debian12 pinned by digest"#]],
    );
    check_error(
        with_oci(serde_json::json!({ "repository": "ghcr.io/acme/finder", "targets": [] })),
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/build-settings/Cargo.toml: `package.metadata.castoff.oci.targets`: the list of image targets is empty
            hint: name at least one Linux target, or remove the `oci` table to build no image"#]],
    );
}

/// Docker's short names: `acme/greeter` and its mirror `greeter` are Docker Hub's.
#[test]
fn docker_short_names_mean_docker_hub() {
    let json = single_cli_with(|_, package| {
        package["oci"]["repository"] = "acme/greeter".into();
        package["oci"]["mirrors"] = serde_json::json!(["greeter", "index.docker.io/acme/tools"]);
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    let oci = release.apps[0].oci.as_ref().unwrap();
    assert_eq!(oci.repository, "docker.io/acme/greeter");
    assert_eq!(
        oci.mirrors,
        ["docker.io/library/greeter", "docker.io/acme/tools"]
    );
    let json = single_cli_with(|_, package| {
        package["oci"]["repository"] = "acme/greeter".into();
        package["oci"]["mirrors"] = serde_json::json!(["docker.io/acme/greeter"]);
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.mirrors[0]`: `docker.io/acme/greeter` is listed twice
            hint: name each repository once: `repository` first, then its mirrors"#]],
    );
}

/// Issue 23's deploy keys: ports in their three forms, the readiness probe over the health
/// check, the start interval and `oci.deploy`, planned with their defaults filled in.
#[test]
fn ports_probes_and_deploy_settings() {
    let json = single_cli_with(|_, package| {
        package["oci"]["ports"] = serde_json::json!([
            8080,
            "53/udp",
            "8443/tcp",
            { "name": "metrics", "port": 9090, "protocol": "tcp" },
        ]);
        package["oci"]["healthcheck"] = serde_json::json!({
            "cmd": ["/usr/local/bin/greeter", "healthcheck"],
            "interval": "10s",
            "start-period": "30s",
            "start-interval": "1s",
            "retries": 5,
            "readiness": { "cmd": ["/usr/local/bin/greeter", "ready"], "interval": "2s" },
        });
        package["oci"]["deploy"] = serde_json::json!({
            "replicas": 2, "cpu": "500m", "memory": "128Mi", "restart": "always",
            "stop-grace-period": "45s",
        });
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    let oci = release.apps[0].oci.as_ref().unwrap();
    expect![[r#"
        [Port { number: 8080, protocol: Tcp, name: "tcp-8080" }, Port { number: 53, protocol: Udp, name: "udp-53" }, Port { number: 8443, protocol: Tcp, name: "tcp-8443" }, Port { number: 9090, protocol: Tcp, name: "metrics" }]
        Some(Healthcheck { check: Command(["/usr/local/bin/greeter", "healthcheck"]), interval_nanos: Some(10000000000), timeout_nanos: None, start_period_nanos: Some(30000000000), start_interval_nanos: Some(1000000000), retries: Some(5), readiness: Probe { check: Command(["/usr/local/bin/greeter", "ready"]), interval_nanos: Some(2000000000), timeout_nanos: None, retries: Some(5) } })
        Deploy { replicas: 2, cpu_request: "500m", cpu_limit: None, memory_request: "128Mi", memory_limit: "128Mi", restart: Always, stop_grace_period_nanos: 45000000000 }"#]]
    .assert_eq(&format!(
        "{:?}\n{:?}\n{:?}",
        oci.ports, oci.healthcheck, oci.deploy
    ));
}

/// Every mistake in ports, probes and `oci.deploy` is reported at once, each naming its key.
#[test]
fn port_probe_and_deploy_mistakes_all_at_once() {
    let json = single_cli_with(|_, package| {
        package["oci"]["ports"] = serde_json::json!([
            0, 70000, "53/sctp", "http", 8080, "8080/tcp",
            { "name": "Metrics", "port": 9090 },
            { "name": "web", "port": 80 }, { "name": "web", "port": 81 },
        ]);
        package["oci"]["healthcheck"] = serde_json::json!({
            "cmd": ["/x"], "start-interval": "soon", "readiness": { "cmd": [] },
        });
        package["oci"]["deploy"] = serde_json::json!({
            "replicas": 0, "cpu": "half", "memory": "256Mi", "memory-limit": "128Mi",
            "restart": "sometimes", "stop-grace-period": "10",
        });
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (14 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[0]`: 0 is not a port number (1 to 65535)
              hint: write a port as 8080 (TCP), "53/udp", or { name = "metrics", port = 9090, protocol = "tcp" }
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[1]`: 70000 is not a port number (1 to 65535)
              hint: write a port as 8080 (TCP), "53/udp", or { name = "metrics", port = 9090, protocol = "tcp" }
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[2]`: `sctp` is not a protocol castoff writes (port 53)
              hint: use `tcp` (the default) or `udp`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[3]`: `http` is not a port
              hint: write a port as 8080 (TCP), "53/udp", or { name = "metrics", port = 9090, protocol = "tcp" }
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[5]`: port 8080/tcp is listed twice
              hint: list each port once
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[6].name`: `Metrics` has characters other than lowercase letters, digits and `-`
              hint: Kubernetes port names are up to 15 lowercase letters, digits and `-`, with at least one letter, e.g. "metrics"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.ports[8].name`: the port name `web` is used twice
              hint: give each port its own name
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.deploy.cpu`: `half` is not a CPU quantity
              hint: write CPU as millicores or cores, e.g. "500m" or "2"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.deploy.memory-limit`: the memory limit `128Mi` is below the request `256Mi` (`memory`)
              hint: raise `memory-limit` or lower `memory`: Kubernetes refuses a limit below the request
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.deploy.restart`: `sometimes` is not a compose restart policy
              hint: use `unless-stopped` (the default), `always`, `on-failure` or `no`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.deploy.stop-grace-period`: `10` is not a duration
              hint: write durations like "10s", "1m30s" or "500ms"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.deploy.replicas`: 0 replicas run nothing
              hint: give the number of pods to run, e.g. 2 (default 1)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.start-interval`: `soon` is not a duration
              hint: write durations like "10s", "1m30s" or "500ms"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.readiness.cmd`: the command is empty
              hint: give the command and its arguments, e.g. ["/usr/local/bin/app", "healthcheck"]"#]],
    );
}

/// Issue 23's checks by protocol: `http` with its port from `ports` when the image has one TCP
/// port, `tcp`, and a readiness probe with a check of its own that takes the health check's
/// HTTP port; each `http`/`tcp` check runs castoff's probe under Docker.
#[test]
fn health_checks_by_protocol() {
    let planned = |ports: serde_json::Value, healthcheck: serde_json::Value| {
        let json = single_cli_with(|_, package| {
            package["oci"]["ports"] = ports.clone();
            package["oci"]["healthcheck"] = healthcheck.clone();
        });
        let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
        let check = release.apps[0]
            .oci
            .as_ref()
            .unwrap()
            .healthcheck
            .clone()
            .unwrap();
        format!(
            "{:?} / readiness {:?} / docker runs {:?}",
            check.check,
            check.readiness.check,
            check.command()
        )
    };
    expect![[r#"
        Http { path: "/healthz", port: 8080 } / readiness Http { path: "/healthz", port: 8080 } / docker runs ["/usr/local/bin/castoff-probe", "http", "8080", "/healthz"]"#]]
    .assert_eq(&planned(
        serde_json::json!([8080, "53/udp"]),
        serde_json::json!({ "http": "/healthz" }),
    ));
    expect![[r#"
        Http { path: "/health?full=1", port: 9090 } / readiness Http { path: "/ready", port: 9090 } / docker runs ["/usr/local/bin/castoff-probe", "http", "9090", "/health?full=1"]"#]]
    .assert_eq(&planned(
        serde_json::json!([8080, 9090]),
        serde_json::json!({ "http": "/health?full=1", "port": 9090, "readiness": { "http": "/ready" } }),
    ));
    // The check's timeout reaches the probe, rounded up to whole seconds.
    expect![[r#"
        Http { path: "/healthz", port: 8080 } / readiness Http { path: "/healthz", port: 8080 } / docker runs ["/usr/local/bin/castoff-probe", "--timeout", "3", "http", "8080", "/healthz"]"#]]
    .assert_eq(&planned(
        serde_json::json!([8080]),
        serde_json::json!({ "http": "/healthz", "timeout": "2500ms" }),
    ));
    expect![[r#"
        Tcp { port: 5432 } / readiness Command(["/usr/local/bin/greeter", "ready"]) / docker runs ["/usr/local/bin/castoff-probe", "tcp", "5432"]"#]]
    .assert_eq(&planned(
        serde_json::json!([]),
        serde_json::json!({ "tcp": 5432, "readiness": { "cmd": ["/usr/local/bin/greeter", "ready"] } }),
    ));
    expect![[r#"
        Command(["/usr/local/bin/greeter", "healthcheck"]) / readiness Tcp { port: 8080 } / docker runs ["/usr/local/bin/greeter", "healthcheck"]"#]]
    .assert_eq(&planned(
        serde_json::json!([8080]),
        serde_json::json!({ "cmd": ["/usr/local/bin/greeter", "healthcheck"], "readiness": { "tcp": 8080 } }),
    ));
}

/// Every mistake in the checks' keys at once: two kinds in one check, no check, an `http`
/// check whose port cannot be guessed, `port` without `http`, a path that is no path, port 0.
#[test]
fn health_check_mistakes_all_at_once() {
    let check = |ports: serde_json::Value, healthcheck: serde_json::Value, expected: Expect| {
        let json = single_cli_with(|_, package| {
            package["oci"]["ports"] = ports.clone();
            package["oci"]["healthcheck"] = healthcheck.clone();
        });
        check_error(json, &PlanOptions::default(), expected);
    };
    check(
        serde_json::json!([8080, 9090]),
        serde_json::json!({
            "cmd": ["/x"], "http": "/healthz",
            "readiness": { "http": "health", "port": 0 },
        }),
        expect![[r#"
            invalid release configuration (3 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.http`: is set together with `cmd`, and a check is one of them
              hint: keep one of `cmd` (a command in the image), `http` (a path, with `port`) and `tcp` (a port)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.readiness.http`: `health` is not the path of an HTTP request
              hint: give an absolute path without spaces, e.g. "/healthz" or "/health?full=1"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.readiness.port`: port 0 is not a port
              hint: give the port the service listens on, 1 to 65535"#]],
    );
    check(
        serde_json::json!([8080, 9090, "53/udp"]),
        serde_json::json!({ "http": "/healthz", "readiness": { "tcp": 0, "port": 8080 } }),
        expect![[r#"
            invalid release configuration (3 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.port`: is missing, and the image exposes 2 TCP ports (8080, 9090)
              hint: set the port the service answers the check on, e.g. `port = 8080`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.readiness.port`: is set without `http`
              hint: `port` is the port of an `http` check; a `tcp` check takes its port itself: `tcp = 8080`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.readiness.tcp`: port 0 is not a port
              hint: give the port the service listens on, 1 to 65535"#]],
    );
    check(
        serde_json::json!([]),
        serde_json::json!({ "interval": "5s" }),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck`: names no check
            hint: set one of `cmd` (a command in the image), `http = "/healthz"` (with `port`) or `tcp = 8080`"#]],
    );
    check(
        serde_json::json!([8080]),
        serde_json::json!({ "http": format!("/{}", "a".repeat(1100)) }),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.http`: the path is 1101 bytes long, over castoff's limit of 1024
            hint: check a shorter route, e.g. "/healthz""#]],
    );
    check(
        serde_json::json!([]),
        serde_json::json!({ "http": "/health check" }),
        expect![[r#"
            invalid release configuration (2 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.http`: `/health check` is not the path of an HTTP request
              hint: give an absolute path without spaces, e.g. "/healthz" or "/health?full=1"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.healthcheck.port`: is missing, and the image exposes no TCP port to take it from
              hint: set the port the service answers the check on, e.g. `port = 8080`"#]],
    );
}

/// Issue 23's `oci.files` forms (a file, a directory, a glob split at its fixed prefix; modes,
/// `dir-mode`, owners by number or the image user) and `oci.volumes` (sorted).
#[test]
fn files_forms_and_volumes() {
    let json = single_cli_with(|_, package| {
        package["oci"]["user"] = "1000:2000".into();
        package["oci"]["files"] = serde_json::json!([
            { "src": "config/default.toml", "dst": "/etc/greeter/config.toml" },
            { "src": "site", "dst": "/srv/www", "dir-mode": "0750", "owner": "user" },
            { "src": "static/**/*.css", "dst": "/srv/css", "mode": "0444", "owner": "7:8" },
            { "src": "assets/*", "dst": "/srv/assets" },
        ]);
        package["oci"]["volumes"] = serde_json::json!(["/var/cache/app", "/data"]);
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    let oci = release.apps[0].oci.as_ref().unwrap();
    let package_dir = release.apps[0].package.manifest_path.parent().unwrap();
    let files: Vec<String> = oci
        .files
        .iter()
        .map(|file| {
            format!(
                "{} {:?} -> {} mode {:?} dir {:o} owner {:?}",
                file.src.strip_prefix(package_dir).unwrap().display(),
                file.glob,
                file.dst,
                file.mode.map(|mode| format!("{mode:o}")),
                file.dir_mode,
                file.owner
            )
        })
        .collect();
    expect![[r#"
        config/default.toml None -> /etc/greeter/config.toml mode None dir 755 owner (0, 0)
        site None -> /srv/www mode None dir 750 owner (1000, 2000)
        static Some("**/*.css") -> /srv/css mode Some("444") dir 755 owner (7, 8)
        assets Some("*") -> /srv/assets mode None dir 755 owner (0, 0)
        ["/data", "/var/cache/app"]"#]]
    .assert_eq(&format!("{}\n{:?}", files.join("\n"), oci.volumes));
}

/// Every mistake in `oci.files` and `oci.volumes` is reported at once, each naming its key.
#[test]
fn files_and_volumes_mistakes_all_at_once() {
    let json = single_cli_with(|_, package| {
        package["oci"]["files"] = serde_json::json!([
            { "src": "/etc/passwd", "dst": "etc/passwd" },
            { "src": "../../../outside/*", "dst": "/srv" },
            { "src": "static/[a", "dst": "/srv/x", "mode": "0999", "dir-mode": "rwx" },
            { "src": "static/*/../x", "dst": "/srv/y", "owner": "nobody" },
            { "src": ".", "dst": "/srv/everything" },
        ]);
        package["oci"]["volumes"] = serde_json::json!([
            "data",
            "/",
            "/var/cache/",
            "/data",
            "/data",
            "/data/sub",
            "/srv:ro",
            "/tmp"
        ]);
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (16 problems):
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[0].src`: `/etc/passwd` is an absolute path
              hint: give the source relative to the package directory
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[0].dst`: `etc/passwd` is not an absolute, normalized path
              hint: write it like `/etc/app/config.toml` (no `..`, `.`, `//` or trailing `/`)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[1].src`: `../../../outside/*` points outside the workspace
              hint: copy the file into the workspace and name it relative to the package directory
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[2].src`: `static/[a` is not a valid glob: unclosed character class; missing ']'
              hint: use `*` (within a directory), `**` (any depth), `?`, `[abc]` or `{a,b}`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[2].mode`: `0999` is not an octal file mode
              hint: write it like "0644" or "0755"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[2].dir-mode`: `rwx` is not an octal file mode
              hint: write it like "0644" or "0755"
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[3].src`: the glob `static/*/../x` has `.` or `..` after its first wildcard
              hint: put every `..` before the first wildcard, like `../shared/**/*.css`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[3].owner`: `nobody` is not `uid:gid` numbers or `user`
              hint: write it like "65532:65532", or "user" for the image user
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.files[4].src`: `.` is the whole package directory (its `target/`, `.git` and all)
              hint: name the folder to copy, e.g. `static`, or a glob such as `*.toml`
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[0]`: `data` is not an absolute, normalized directory below `/`
              hint: write it like `/data` or `/var/cache/app` (no `..`, `.`, `//` or trailing `/`)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[1]`: `/` is not an absolute, normalized directory below `/`
              hint: write it like `/data` or `/var/cache/app` (no `..`, `.`, `//` or trailing `/`)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[2]`: `/var/cache/` is not an absolute, normalized directory below `/`
              hint: write it like `/data` or `/var/cache/app` (no `..`, `.`, `//` or trailing `/`)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[4]`: `/data` repeats or nests with `/data`
              hint: list each volume once; a volume inside another is already in it
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[5]`: `/data/sub` repeats or nests with `/data`
              hint: list each volume once; a volume inside another is already in it
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[6]`: `/srv:ro` holds `:`, `,`, a space or a control character
              hint: name the directory without them: compose reads `:` in a volume as the start of its options (`/data:ro` would mount `/data` read-only)
            - $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.oci.volumes[7]`: `/tmp` is already writable: the deploy examples mount a tmpfs there
              hint: remove it, or give the service a directory of its own, e.g. `/data`"#]],
    );
}

/// The crates channel: every publishable member, dependencies first whatever the member
/// order, before every step of the binary channels; the members it leaves out, with why.
#[test]
fn crates_channel_order_and_left_out_members() {
    let release = plan("crates-channel");
    let order: Vec<(String, Vec<String>)> = release
        .crates
        .iter()
        .map(|krate| {
            (
                krate.step_id(),
                krate
                    .after
                    .iter()
                    .map(|id| release.crates[id.0].step_id())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("crate-publish/cc-core".to_owned(), vec![]),
            (
                "crate-publish/cc-util".to_owned(),
                vec!["crate-publish/cc-core".to_owned()]
            ),
            (
                "crate-publish/cc-cli".to_owned(),
                vec![
                    "crate-publish/cc-core".to_owned(),
                    "crate-publish/cc-util".to_owned()
                ]
            ),
        ]
    );
    assert!(release.crates.iter().all(|k| k.registry == "crates-io"));
    // cc-optout's table holds only `crates = false`: not an app.
    let apps: Vec<&str> = release
        .apps
        .iter()
        .map(|a| a.package.name.as_str())
        .collect();
    assert_eq!(apps, ["cc-cli"]);
    let text = castoff_plan::render::text(&release);
    let crates_part = &text[text.find("crates (").unwrap()..];
    expect![[r#"
        crates (to crates-io):
          cc-core         crates/cc-core-0.1.0.crate
          cc-util         crates/cc-util-0.1.0.crate
          cc-cli          crates/cc-cli-0.1.0.crate
          cc-internal     not published: `publish = false`
          cc-private      not published: `publish = ["acme"]` does not name `crates-io`
          cc-optout       not published: `crates = false` in [package.metadata.castoff]

        publish order:
            1. crate-publish/cc-core
            2. crate-publish/cc-util  (after crate-publish/cc-core)
            3. crate-publish/cc-cli  (after crate-publish/cc-core, crate-publish/cc-util)
    "#]]
    .assert_eq(crates_part);
    let dot = castoff_plan::render::dot(&release);
    for line in [
        "subgraph \"cluster_crates\"",
        "\"crate-publish/cc-core\" -> \"crate-publish/cc-util\" [style=dashed];",
    ] {
        assert!(dot.contains(line), "{line} not in:\n{dot}");
    }
    let manifest = castoff_plan::manifest::Manifest::from_release(&release, "0.0.0");
    assert_eq!(manifest.crates.len(), 3);
    assert!(manifest.differences_from(&manifest).is_empty());
    let mut edited = manifest.clone();
    edited.crates[0].registry = "elsewhere".to_owned();
    edited.crates.pop();
    expect![[r#"
        [
            "crate `cc-core` registry: dist/manifest.json has \"elsewhere\", the workspace's configuration has \"crates-io\"",
            "crate `cc-cli` is in the workspace's plan but not in dist/manifest.json",
        ]
    "#]]
    .assert_debug_eq(&edited.differences_from(&manifest));
}

/// `crates = { registry = ... }` chooses the registry, which a `publish` list must name;
/// `crates = false` (or no key) plans no crate; bad values are configuration errors.
#[test]
fn crates_channel_registry_and_mistakes() {
    let with = |crates: Value| {
        let mut json = metadata_json("crates-channel");
        json["metadata"]["castoff"]["crates"] = crates;
        json
    };
    // For another registry, the dependencies on members name it (`registry = "acme"`, which
    // cargo metadata reports as the index URL).
    let with_acme_deps = |mut json: Value| {
        for package in json["packages"].as_array_mut().unwrap() {
            for dep in package["dependencies"].as_array_mut().unwrap() {
                if dep["path"].is_string() && dep["kind"] != "dev" {
                    dep["registry"] = "sparse+https://acme.example/index/".into();
                }
            }
        }
        json
    };
    let release = castoff_plan::plan(
        &parse(with_acme_deps(with(
            serde_json::json!({ "registry": "acme" }),
        ))),
        &PlanOptions::default(),
    )
    .unwrap();
    let names: Vec<&str> = release.crates.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["cc-core", "cc-util", "cc-private", "cc-cli"]);
    assert!(release.crates.iter().all(|k| k.registry == "acme"));
    let off = castoff_plan::plan(&parse(with(false.into())), &PlanOptions::default()).unwrap();
    assert!(off.crates.is_empty() && off.crates_skipped.is_empty());
    // `--package` keeps the named package's crate and the crates it needs.
    let narrowed = castoff_plan::plan(
        &metadata("crates-channel"),
        &PlanOptions {
            packages: vec!["cc-cli".to_owned()],
            targets: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(narrowed.crates.len(), 3);

    check_error(
        with(serde_json::json!({ "registry": "my registry", "index": "x" })),
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (2 problems):
            - $FIXTURES/crates-channel/Cargo.toml: `workspace.metadata.castoff.crates.index`: unknown key `index`
              hint: known keys here: registry; see docs/configuration.md
            - $FIXTURES/crates-channel/Cargo.toml: `workspace.metadata.castoff.crates.registry`: `my registry` is not a Cargo registry name
              hint: use the name of a `[registries.<name>]` table of your Cargo configuration (letters, digits, `-`, `_`), or leave it out for crates.io"#]],
    );
    // Without it, every such dependency is named, before any build.
    check_error(
        with(serde_json::json!({ "registry": "acme" })),
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration (3 problems):
            - $FIXTURES/crates-channel/crates/cc-cli/Cargo.toml: `dependencies.cc-core`: `cc-cli` is published to `acme`, but its dependency on `cc-core` names no registry, so the published crate would look for `cc-core` on crates.io
              hint: add `registry = "acme"` beside the dependency's `version` (in `[workspace.dependencies]` when the member inherits it)
            - $FIXTURES/crates-channel/crates/cc-cli/Cargo.toml: `dependencies.cc-util`: `cc-cli` is published to `acme`, but its dependency on `cc-util` names no registry, so the published crate would look for `cc-util` on crates.io
              hint: add `registry = "acme"` beside the dependency's `version` (in `[workspace.dependencies]` when the member inherits it)
            - $FIXTURES/crates-channel/crates/cc-util/Cargo.toml: `dependencies.cc-core`: `cc-util` is published to `acme`, but its dependency on `cc-core` names no registry, so the published crate would look for `cc-core` on crates.io
              hint: add `registry = "acme"` beside the dependency's `version` (in `[workspace.dependencies]` when the member inherits it)"#]],
    );
    check_error(
        with("yes".into()),
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/crates-channel/Cargo.toml: `workspace.metadata.castoff.crates`: invalid type: string "yes", expected true, false, or a table { registry = "<name>" }
            hint: see docs/configuration.md for the expected value"#]],
    );
    // A published crate that needs a member that is not published.
    let mut json = metadata_json("crates-channel");
    let cli = json["packages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "cc-cli")
        .unwrap();
    cli["dependencies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["name"] == "cc-internal")
        .unwrap()["kind"] = Value::Null;
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
        invalid release configuration: $FIXTURES/crates-channel/crates/cc-cli/Cargo.toml: `workspace.metadata.castoff.crates`: `cc-cli` is published to `crates-io` but depends on `cc-internal`, which is not (`publish = false`)
        hint: publish `cc-internal` too, or leave `cc-cli` out (`publish = false` or `[package.metadata.castoff] crates = false`)"#]],
    );
}

/// `verify`: the smoke command reaches the app; one naming a binary the package does not
/// release, or an empty one, is refused at plan time.
#[test]
fn verify_smoke_names_a_released_binary() {
    let json = single_cli_with(|_, package| {
        package["verify"] =
            serde_json::json!({ "smoke": ["greeter", "--help"], "expect": "Usage" });
    });
    let release = castoff_plan::plan(&parse(json), &PlanOptions::default()).unwrap();
    let verify = &release.apps[0].verify;
    assert_eq!(
        verify.smoke.as_deref(),
        Some(&["greeter".to_owned(), "--help".to_owned()][..])
    );
    assert_eq!(verify.expect.as_deref(), Some("Usage"));

    let json = single_cli_with(|_, package| {
        package["verify"] = serde_json::json!({ "smoke": ["gretter", "--version"] });
    });
    check_error(
        json,
        &PlanOptions::default(),
        expect![[r#"
            invalid release configuration: $FIXTURES/single-cli/Cargo.toml: `package.metadata.castoff.verify.smoke`: the smoke command starts with `gretter`, which this package does not release
            hint: start it with one of its binaries: greeter"#]],
    );
}
