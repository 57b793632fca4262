//! The command line as a user meets it (issue 10), with the harness: the `dist` summary table
//! and its `--json` form validated against docs/summary.schema.json with check-jsonschema,
//! the `publish` summary against the harness's registries, and progress output: plain lines on
//! a pipe, nothing with `-q`, elapsed times with `-v`, bars on a pseudo-terminal. Error
//! messages and the spinner of `dist` are in `offline::cli_ux`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{
    copy_fixture, isolated_command, output_text as text, release_for_host_only, repository_root,
};

use crate::offline::cli_ux::{castoff, scratch, single_cli};

/// `dist` on a pipe: the table on stdout, one plain line per step on stderr (no escape
/// sequences); with `--json` the summary validates against the documented schema.
#[test]
fn dist_summary_table_json_and_plain_progress() {
    let env = TestEnv::get();
    let dir = scratch("summary");
    let dist_dir = dir.join("dist");
    let manifest = single_cli();
    let args = [
        "dist",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--dist-dir",
        dist_dir.to_str().unwrap(),
    ];

    let table = castoff(&args, &[]);
    assert!(table.status.success(), "{}", text(&table));
    let stdout = String::from_utf8(table.stdout.clone()).unwrap();
    let stderr = String::from_utf8(table.stderr.clone()).unwrap();
    assert!(
        stdout.starts_with("CHANNEL  NAME"),
        "table header: {}",
        text(&table)
    );
    for needle in [
        "python   greeter",
        "npm      @acme/greeter",
        "oci      ghcr.io/acme/greeter",
        "built",
        "python/greeter-0.3.1-",
    ] {
        assert!(stdout.contains(needle), "`{needle}` missing: {stdout}");
    }
    // The host's target alone: its wheel and the sdist, its npm package and the launcher,
    // one image.
    assert!(
        stdout.contains(&format!(
            "\ndist: 1 wheel, 1 sdist, 2 npm packages, 1 image (1 platform) in {} (also 1 archive, 1 SBOM)\n",
            dist_dir.display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("compiling greeter for x86_64-unknown-linux-gnu\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\nbuilding wheel/greeter/x86_64-unknown-linux-gnu\n"),
        "{stderr}"
    );
    let own_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("building ") || line.starts_with("compiling "))
        .collect();
    // compiling, then sbom, archive, wheel, npm platform, sdist, npm launcher, oci-index (the
    // images are built with their index).
    assert_eq!(own_lines.len(), 8, "{stderr}");
    // The one compression of the binary, with its size, time and rate.
    assert!(
        stderr.contains("\ncompressed binary greeter (x86_64-unknown-linux-gnu): ")
            && stderr.contains("/s)\n"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape sequences on a pipe: {stderr:?}"
    );

    let json = castoff(&[&["--json"][..], &args[..]].concat(), &[]);
    assert!(json.status.success(), "{}", text(&json));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["command"], "dist");
    assert_eq!(document["artifacts"].as_array().unwrap().len(), 9);
    let instance = dir.join("summary.json");
    fs::write(&instance, &json.stdout).unwrap();
    let schema = repository_root().join("docs/summary.schema.json");
    let checked = Command::new(env.tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(&schema)
        .arg(&instance)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "check-jsonschema: {}",
        text(&checked)
    );
    // The schema is strict: an unknown field is refused.
    let mut broken = document.clone();
    broken["artifacts"][0]["colour"] = "blue".into();
    let broken_path = dir.join("broken.json");
    fs::write(&broken_path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let refused = Command::new(env.tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(&schema)
        .arg(&broken_path)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));

    let quiet = castoff(&[&["-q"][..], &args[..]].concat(), &[]);
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(quiet.stdout.is_empty(), "{}", text(&quiet));
    let quiet_stderr = String::from_utf8(quiet.stderr).unwrap();
    assert!(
        !quiet_stderr.contains("building "),
        "-q prints no progress: {quiet_stderr}"
    );

    // Unchanged inputs would reuse the previous dist/ (cache.rs) and build nothing.
    fs::remove_dir_all(&dist_dir).unwrap();
    let verbose = castoff(&[&["-v"][..], &args[..]].concat(), &[]);
    assert!(verbose.status.success(), "{}", text(&verbose));
    let verbose_stderr = String::from_utf8(verbose.stderr).unwrap();
    assert!(
        verbose_stderr
            .lines()
            .any(|line| line.starts_with('[') && line.ends_with("s] building oci-index/greeter")),
        "-v adds elapsed times: {verbose_stderr}"
    );
}

/// `--json dist` of a working tree with a modified tracked file: the summary's `dirty_files`
/// validates against the documented schema.
#[test]
fn dirty_tree_json_summary_validates() {
    let env = TestEnv::get();
    let dir = scratch("dirty-summary");
    let (workspace, _) = crate::offline::dist::committed_single_cli(&dir);
    let readme = workspace.join("README.md");
    fs::write(&readme, "changed\n").unwrap();
    let output = castoff(
        &[
            "--json",
            "dist",
            "--no-build",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--manifest-path",
            workspace.join("Cargo.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["dirty_files"], serde_json::json!(["README.md"]));
    let instance = dir.join("summary.json");
    fs::write(&instance, &output.stdout).unwrap();
    check_schema(&env, &instance);
}

fn check_schema(env: &TestEnv, instance: &Path) {
    let schema = repository_root().join("docs/summary.schema.json");
    let checked = Command::new(env.tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(&schema)
        .arg(instance)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "check-jsonschema: {}",
        text(&checked)
    );
}

/// `publish` prints the same summary: the wheel uploaded to pypiserver, then (re-run)
/// skipped as identical; the other steps excluded by `--only`. Both `--json` documents
/// validate against the schema.
#[test]
fn publish_summary_table_and_json() {
    let env = TestEnv::get();
    let dir = scratch("publish-summary");
    let workspace = dir.join("workspace");
    copy_fixture("single-cli", &workspace);
    let name = format!("greeter-ux{}", std::process::id());
    let cargo_toml = fs::read_to_string(workspace.join("Cargo.toml"))
        .unwrap()
        .replace("name = \"greeter\" }", &format!("name = \"{name}\" }}"));
    fs::write(workspace.join("Cargo.toml"), cargo_toml).unwrap();
    release_for_host_only(&workspace);
    let manifest = workspace.join("Cargo.toml");

    let built = castoff(
        &["dist", "--manifest-path", manifest.to_str().unwrap()],
        &[],
    );
    assert!(built.status.success(), "{}", text(&built));

    let publish = |json: bool| {
        let mut args = vec![
            "publish",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--only",
            "pypi-upload/",
            "--pypi-url",
            env.pypiserver.as_str(),
        ];
        if json {
            args.insert(0, "--json");
        }
        castoff(
            &args,
            &[
                ("TWINE_USERNAME", env.user.as_str()),
                ("TWINE_PASSWORD", env.password.as_str()),
                ("HOME", dir.to_str().unwrap()),
            ],
        )
    };

    let first = publish(true);
    assert!(first.status.success(), "{}", text(&first));
    let document: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(document["command"], "publish");
    assert_eq!(document["dry_run"], false);
    let rows = document["artifacts"].as_array().unwrap();
    let wheel = rows
        .iter()
        .find(|row| row["id"] == "pypi-upload/greeter/x86_64-unknown-linux-gnu")
        .expect("the wheel's step");
    assert_eq!(wheel["channel"], "python");
    assert_eq!(wheel["name"], name.as_str());
    assert_eq!(wheel["outcome"], "uploaded", "{document}");
    // `--only pypi-upload/` takes the sdist's upload too.
    let sdist = rows
        .iter()
        .find(|row| row["id"] == "pypi-upload/greeter")
        .expect("the sdist's step");
    assert_eq!(sdist["channel"], "python");
    assert_eq!(sdist["outcome"], "uploaded", "{document}");
    assert!(
        rows.iter()
            .filter(|row| row["id"] != wheel["id"] && row["id"] != sdist["id"])
            .all(|row| row["outcome"] == "excluded"),
        "{document}"
    );
    let first_json = dir.join("first.json");
    fs::write(&first_json, &first.stdout).unwrap();
    check_schema(&env, &first_json);

    let second = publish(false);
    assert!(second.status.success(), "{}", text(&second));
    let table = String::from_utf8(second.stdout).unwrap();
    assert!(table.starts_with("CHANNEL  NAME"), "{table}");
    let wheel_line = table
        .lines()
        .find(|line| line.starts_with("python"))
        .expect("a python row");
    assert!(
        wheel_line.contains(&name) && wheel_line.contains(" skipped "),
        "{table}"
    );
    // Counted in the units `dist` counts: the wheel and the sdist skipped, the rest left out.
    assert!(
        table.ends_with(
            "\npublish: 1 wheel, 1 sdist, 2 npm packages, 1 image (1 platform): 2 skipped, 3 excluded\n"
        ),
        "{table}"
    );
}

/// A copy of the single-cli fixture whose wheel and npm names are unique to `tag`, built
/// with `dist`; returns its `Cargo.toml`.
fn built_fixture(dir: &Path, tag: &str) -> PathBuf {
    let workspace = dir.join("workspace");
    copy_fixture("single-cli", &workspace);
    let manifest = workspace.join("Cargo.toml");
    let cargo_toml = fs::read_to_string(&manifest)
        .unwrap()
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"greeter-{tag}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"@{tag}/greeter\""));
    fs::write(&manifest, cargo_toml).unwrap();
    release_for_host_only(&workspace);
    let built = castoff(
        &["dist", "--manifest-path", manifest.to_str().unwrap()],
        &[],
    );
    assert!(built.status.success(), "{}", text(&built));
    manifest
}

/// Checks a finished upload's line, `<outcome> <label>: <size> in <time> (<rate>/s)`, and
/// returns it: e.g. `uploaded pypi greeter-….whl: 608.23 KiB in 12 ms (49.50 MiB/s)`.
fn upload_line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    // On a terminal the bars are drawn right after the line, on the same text line.
    let line = stderr
        .lines()
        .map(|line| &line[line.find(prefix).unwrap_or(line.len())..])
        .find(|line| line.starts_with(prefix))
        .map(|line| {
            line.find("/s)")
                .map_or(line, |end| &line[..end + "/s)".len()])
        })
        .unwrap_or_else(|| panic!("no line starting with `{prefix}`: {stderr:?}"));
    let (_, numbers) = line
        .rsplit_once(": ")
        .unwrap_or_else(|| panic!("`label: size …`: {line:?}"));
    let (size, rest) = numbers
        .split_once(" in ")
        .unwrap_or_else(|| panic!("`size in time`: {line:?}"));
    let is_size = |text: &str| {
        let (number, unit) = text.split_once(' ').unwrap_or(("", ""));
        number.parse::<f64>().is_ok_and(|n| n > 0.0) && ["B", "KiB", "MiB", "GiB"].contains(&unit)
    };
    assert!(is_size(size), "a size: {line:?}");
    let (time, rate) = rest
        .split_once(" (")
        .unwrap_or_else(|| panic!("`time (rate)`: {line:?}"));
    assert!(
        time.ends_with(" ms") || time.ends_with(" s"),
        "a time: {line:?}"
    );
    let rate = rate
        .strip_suffix("/s)")
        .unwrap_or_else(|| panic!("a rate: {line:?}"));
    assert!(is_size(rate), "a rate: {line:?}");
    line
}

/// `publish` on a pseudo-terminal draws a bar per upload (label, bytes done/total, rate,
/// ETA) and prints a line with size and rate when each ends; on a pipe the same lines come
/// without any bar or escape sequence; `-q` prints nothing; `-v` adds the start of each
/// task and the registry queries, with elapsed times. Every run uploads something new: the
/// image goes to a fresh repository each time, the wheel to pypiserver then devpi.
#[test]
fn publish_progress_bars_on_a_terminal_and_lines_on_a_pipe() {
    let env = TestEnv::get();
    let dir = scratch("publish-progress");
    let tag = format!("uxp{}", std::process::id());
    let manifest = built_fixture(&dir, &tag);
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let npmrc = home.join(".npmrc");
    let docker = home.join(".docker");
    // Nothing from the developer's own configuration.
    let credentials = [
        ("TWINE_USERNAME", env.user.as_str()),
        ("TWINE_PASSWORD", env.password.as_str()),
        ("NPM_TOKEN", env.npm_token.as_str()),
        ("HOME", home.to_str().unwrap()),
        ("NPM_CONFIG_USERCONFIG", npmrc.to_str().unwrap()),
        ("DOCKER_CONFIG", docker.to_str().unwrap()),
    ];
    let publish_args = |pypi: &str, image: &str| -> Vec<String> {
        vec![
            "publish".into(),
            "--manifest-path".into(),
            manifest.to_string_lossy().into_owned(),
            "--pypi-url".into(),
            pypi.into(),
            "--npm-registry".into(),
            env.verdaccio.clone(),
            "--oci-repository".into(),
            format!("{registry}/{tag}/{image}"),
        ]
    };

    // 1. A terminal: every channel uploads.
    let typescript = dir.join("typescript");
    let command = std::iter::once(format!("'{}'", env!("CARGO_BIN_EXE_castoff")))
        .chain(
            publish_args(&env.pypiserver, "on-a-terminal")
                .iter()
                .map(|arg| format!("'{arg}'")),
        )
        .collect::<Vec<_>>()
        .join(" ")
        + " >/dev/null";
    let output = Command::new("script")
        .arg("-qfec")
        .arg(&command)
        .arg(&typescript)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("NO_COLOR", "1")
        .env_remove("CASTOFF_PROGRESS")
        .envs(credentials)
        .output()
        .expect("running script (util-linux)");
    let drawn = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    assert!(output.status.success(), "{}\n{drawn}", text(&output));
    env.assert_no_secret(&drawn);
    assert!(
        drawn.contains("\u{1b}[2K"),
        "indicatif redraws its lines: {drawn:?}"
    );
    // A bar: `⠋ pypi greeter_….whl [====>   ] 312.00 KiB/608.23 KiB 21.30 MiB/s eta 0s`
    // (drawn when the task starts, so even a fast upload shows one).
    let bars: Vec<&str> = drawn
        .split(['\r', '\n', '\u{1b}'])
        .filter(|segment| {
            segment.contains(" eta ")
                && segment.contains("B/s")
                && segment.contains("B/")
                && segment.contains('[')
        })
        .collect();
    for channel in ["pypi greeter_", "npm @", "oci "] {
        assert!(
            bars.iter().any(|bar| bar.contains(channel)),
            "a bar with bytes and rate for `{channel}`: {bars:?}\n{drawn:?}"
        );
    }
    // Bars move: of the dozen uploads, some are drawn with bytes done (≥ 1 KiB).
    assert!(
        bars.iter().any(|bar| bar.contains("iB/")),
        "a bar with bytes done: {bars:?}"
    );
    upload_line(&drawn, &format!("uploaded pypi greeter_{tag}-0.3.1-"));
    upload_line(&drawn, &format!("uploaded npm @{tag}/greeter@0.3.1: "));
    upload_line(
        &drawn,
        &format!("uploaded oci {registry}/{tag}/on-a-terminal"),
    );
    // The registry state of each step, above the bars.
    assert!(
        drawn.contains("upload           pypi-upload/greeter/"),
        "{drawn:?}"
    );

    // 2. A pipe: the same lines, no bar. The wheel goes to devpi, the npm package is there.
    let args = publish_args(&env.devpi, "on-a-pipe");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let plain = castoff(&args, &credentials);
    let stderr = String::from_utf8(plain.stderr.clone()).unwrap();
    assert!(plain.status.success(), "{}", text(&plain));
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape sequences: {stderr:?}"
    );
    assert!(!stderr.contains(" eta "), "no bars: {stderr}");
    let wheel = upload_line(&stderr, &format!("uploaded pypi greeter_{tag}-0.3.1-"));
    assert!(wheel.contains(".whl: "), "{wheel}");
    let image = upload_line(
        &stderr,
        &format!("uploaded oci {registry}/{tag}/on-a-pipe@sha256:"),
    );
    assert!(!image.contains('\n'), "{image}");
    assert!(
        stderr.contains("skip (identical) npm-publish/greeter  → "),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped          npm-publish/greeter  (0 bytes, "),
        "{stderr}"
    );
    assert!(!stderr.contains("uploaded npm"), "{stderr}");

    // 3. `-q`: nothing on stderr.
    let args = publish_args(&env.devpi, "quiet");
    let quiet_args: Vec<&str> = ["-q", "publish", "--only", "oci-"]
        .into_iter()
        .chain(args[1..].iter().map(String::as_str))
        .collect();
    let quiet = castoff(&quiet_args, &credentials);
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet));

    // 4. `-v`: elapsed times, the start of every upload and every registry query.
    let args = publish_args(&env.devpi, "verbose");
    let verbose_args: Vec<&str> = ["-v", "publish", "--only", "oci-"]
        .into_iter()
        .chain(args[1..].iter().map(String::as_str))
        .collect();
    let verbose = castoff(&verbose_args, &credentials);
    let stderr = String::from_utf8(verbose.stderr.clone()).unwrap();
    assert!(verbose.status.success(), "{}", text(&verbose));
    let timed = |needle: &str| {
        stderr
            .lines()
            .any(|line| line.starts_with('[') && line.contains(&format!("s] {needle}")))
    };
    assert!(
        timed(&format!("asking {registry}/{tag}/verbose")),
        "{stderr}"
    );
    assert!(
        timed(&format!("started oci {registry}/{tag}/verbose@sha256:")),
        "{stderr}"
    );
    assert!(
        timed(&format!("uploaded oci {registry}/{tag}/verbose@sha256:")),
        "{stderr}"
    );
}

/// `dist` and `publish` of one release name it in the same units with the same words, and
/// the numbers are what the registries then hold: four targets (two with images) give 4
/// wheels on pypiserver, 5 npm packages on Verdaccio (4 platforms and the launcher) and one
/// image of 2 platforms on the registry; a second publish counts the same units, skipped.
#[test]
fn dist_and_publish_count_the_same_units() {
    let env = TestEnv::get();
    let dir = scratch("same-units");
    let tag = format!("units{}", std::process::id());
    let workspace = dir.join("workspace");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    copy_fixture("single-cli", &workspace);
    let manifest_path = workspace.join("Cargo.toml");
    let triples = [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ];
    let cargo_toml = fs::read_to_string(&manifest_path).unwrap();
    let targets_line = cargo_toml
        .lines()
        .find(|line| line.starts_with("targets = "))
        .expect("single-cli names its targets")
        .to_owned();
    let quoted: Vec<String> = triples.iter().map(|t| format!("\"{t}\"")).collect();
    let cargo_toml = cargo_toml
        .replace(&targets_line, &format!("targets = [{}]", quoted.join(", ")))
        .replace(
            "name = \"greeter\" }",
            &format!("name = \"greeter-{tag}\" }}"),
        )
        .replace("\"@acme/greeter\"", &format!("\"@{tag}/greeter\""));
    fs::write(&manifest_path, cargo_toml).unwrap();
    let binaries = env.probe_prebuilt_dir(&triples, &dir.join("binaries"));
    let castoff_program = Path::new(env!("CARGO_BIN_EXE_castoff"));

    let dist = isolated_command(castoff_program, &home)
        .arg("dist")
        .arg("--manifest-path")
        .arg(&manifest_path)
        .arg("--prebuilt-dir")
        .arg(&binaries)
        .output()
        .unwrap();
    assert!(dist.status.success(), "{}", text(&dist));
    let dist_stdout = String::from_utf8(dist.stdout).unwrap();
    let dist_line = dist_stdout
        .lines()
        .find(|line| line.starts_with("dist: "))
        .unwrap_or_else(|| panic!("no `dist:` line: {dist_stdout}"));
    let (dist_units, _) = dist_line["dist: ".len()..]
        .split_once(" in ")
        .unwrap_or_else(|| panic!("`dist: <units> in <dir>`: {dist_line}"));
    let expected = "4 wheels, 1 sdist, 5 npm packages, 1 image (2 platforms)";
    assert_eq!(dist_units, expected, "{dist_stdout}");
    assert!(
        dist_line.ends_with(" (also 4 archives, 4 SBOMs)"),
        "{dist_line}"
    );

    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let repository = format!("{registry}/{tag}/greeter");
    let publish = || {
        let output = isolated_command(castoff_program, &home)
            .arg("publish")
            .arg("--manifest-path")
            .arg(&manifest_path)
            .args(["--pypi-url", &env.pypiserver])
            .args(["--npm-registry", &env.verdaccio])
            .args(["--oci-repository", &repository])
            .env("TWINE_USERNAME", &env.user)
            .env("TWINE_PASSWORD", &env.password)
            .env("NPM_TOKEN", &env.npm_token)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let line = stdout
            .lines()
            .find(|line| line.starts_with("publish: "))
            .unwrap_or_else(|| panic!("no `publish:` line: {stdout}"))
            .to_owned();
        let (units, outcomes) = line["publish: ".len()..]
            .split_once(": ")
            .unwrap_or_else(|| panic!("`publish: <units>: <outcomes>`: {line}"));
        (units.to_owned(), outcomes.to_owned())
    };
    let (units, outcomes) = publish();
    assert_eq!(units, dist_units, "publish counts what dist counted");
    assert_eq!(outcomes, "11 uploaded");

    // The registries hold exactly that many of each.
    let fetch = |url: &str, accept: &str| -> Vec<u8> {
        let output = Command::new("curl")
            .args(["-sSf", "-H", &format!("Accept: {accept}"), url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{url}: {}", text(&output));
        output.stdout
    };
    let get = |url: &str, accept: &str| -> serde_json::Value {
        serde_json::from_slice(&fetch(url, accept))
            .unwrap_or_else(|error| panic!("{url}: not JSON ({error})"))
    };
    // pypiserver's simple page is HTML: one link per file.
    let project = String::from_utf8(fetch(
        &format!("{}simple/greeter-{tag}/", env.pypiserver),
        "text/html",
    ))
    .unwrap();
    let wheels = project.matches(".whl</a>").count();
    let sdists = project.matches(".tar.gz</a>").count();
    let manifest: castoff_plan::Manifest = castoff_plan::Manifest::from_json(
        &fs::read_to_string(workspace.join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let npm_packages = manifest
        .artifacts
        .iter()
        .filter(|artifact| {
            matches!(
                artifact.kind,
                castoff_plan::ArtifactKind::NpmPlatform | castoff_plan::ArtifactKind::NpmLauncher
            )
        })
        .map(|artifact| artifact.registry_name.clone().unwrap())
        .filter(|name| {
            let packument = get(
                &format!("{}{}", env.verdaccio, name.replace('/', "%2f")),
                "application/json",
            );
            packument["versions"]["0.3.1"].is_object()
        })
        .count();
    let index = get(
        &format!("{}/v2/{tag}/greeter/manifests/0.3.1", env.registry_open),
        "application/vnd.oci.image.index.v1+json",
    );
    let platforms = index["manifests"].as_array().map_or(0, Vec::len);
    assert_eq!(
        format!(
            "{wheels} wheels, {sdists} sdist, {npm_packages} npm packages, 1 image ({platforms} platforms)"
        ),
        expected,
        "what the registries hold"
    );

    let (units, outcomes) = publish();
    assert_eq!(units, dist_units, "a second publish counts the same units");
    assert_eq!(outcomes, "11 skipped");
}
