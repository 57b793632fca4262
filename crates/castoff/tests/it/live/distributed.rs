//! The partial dists of `offline::distributed` merged and checked by stock tools: `dist
//! --merge` combines them in two different orders into byte-identical folders, and
//! `sha256sum -c`, `minisign -V` (unencrypted and password-protected keys), the CycloneDX
//! schema, `skopeo inspect`, `pip install`, `shellcheck` and `install.sh` against a local HTTP
//! server check the result; the merged dist publishes to the harness's registries and
//! installs back.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{assert_success, files};

use crate::live::http_server::HttpServer;
use crate::live::release_tags::{held, publish};
use crate::offline::distributed::{manifest, merge, partials, two_target_partials};

pub(super) fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot start: {error}"));
    assert_success(&output, what);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn merging_in_any_order_gives_the_same_complete_dist() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let root = workspace.parent().unwrap();
    let forward = root.join("merged-forward");
    let backward = root.join("merged-backward");
    let all: Vec<&PathBuf> = parts.iter().collect();
    let reversed: Vec<&PathBuf> = parts.iter().rev().collect();
    assert_success(&merge(workspace, &all, &forward, &[]), "merge");
    assert_success(
        &merge(workspace, &reversed, &backward, &[]),
        "merge (reversed)",
    );
    let (a, b) = (files(&forward), files(&backward));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{path} depends on the merge order");
    }

    // Complete: every target, no `partial` marker, and every per-target file is the runner's.
    let merged = manifest(&forward);
    assert_eq!(merged.partial, None);
    for part in parts {
        for artifact in manifest(part)
            .artifacts
            .iter()
            .filter(|a| a.target.is_some())
        {
            let Some(path) = &artifact.path else { continue };
            assert_eq!(
                a[path],
                fs::read(part.join(path)).unwrap(),
                "{path} was not copied as built"
            );
        }
    }
    for kind in ["archive", "sbom", "wheel", "npm-platform"] {
        let count = merged.artifacts.iter().filter(|x| x.kind == kind).count();
        assert_eq!(count, 4, "{kind}");
    }
    assert!(a.contains_key("archives/greeter-0.3.1-x86_64-pc-windows-msvc.zip"));

    // sha256sum -c covers every artifact file, the install script, the Dockerfile and its
    // ignore file.
    let check = run(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&forward),
        "sha256sum --check",
    );
    let files_with_digest = merged
        .artifacts
        .iter()
        .filter(|x| x.path.is_some() && x.sha256.is_some())
        .count();
    assert_eq!(
        check.matches(": OK").count(),
        files_with_digest + 3,
        "{check}"
    );
    assert!(check.contains("deploy/greeter/Dockerfile: OK"), "{check}");

    // The launcher now names all four platform packages.
    let launcher = run(
        Command::new("tar")
            .args([
                "-xzOf",
                "npm/castoff-merge-greeter-0.3.1.tgz",
                "package/package.json",
            ])
            .current_dir(&forward),
        "tar",
    );
    let launcher: serde_json::Value = serde_json::from_str(&launcher).unwrap();
    let optional = launcher["optionalDependencies"].as_object().unwrap();
    assert_eq!(optional.len(), 4, "{launcher}");

    // The image layout holds both Linux platforms and an SBOM artifact for each; it opens
    // without a tag.
    let layout = format!("oci:{}", forward.join("oci/greeter").display());
    let raw = run(
        Command::new(env.tool("skopeo")).args(["inspect", "--raw", &layout]),
        "skopeo inspect --raw",
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let inspected = run(
            Command::new(env.tool("skopeo")).args(["--override-arch", arch, "inspect", &layout]),
            "skopeo inspect",
        );
        assert!(
            inspected.contains(&format!("\"Architecture\": \"{arch}\"")),
            "{inspected}"
        );
    }
    // index.json's one entry names the referrers index, which lists one SBOM per image.
    let layout_index: serde_json::Value =
        serde_json::from_slice(&a["oci/greeter/index.json"]).unwrap();
    let entries = layout_index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{layout_index:#}");
    let referrers = entries[0]["annotations"]["io.github.castoff-rs.referrers"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let referrers: serde_json::Value =
        serde_json::from_slice(&a[&format!("oci/greeter/blobs/sha256/{referrers}")]).unwrap();
    let sboms = referrers["manifests"].as_array().unwrap();
    assert_eq!(sboms.len(), 2, "{referrers}");
    for sbom in sboms {
        assert_eq!(sbom["artifactType"], "application/vnd.cyclonedx+json");
        let hex = sbom["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let artifact: serde_json::Value =
            serde_json::from_slice(&a[&format!("oci/greeter/blobs/sha256/{hex}")]).unwrap();
        let subject = artifact["subject"]["digest"].as_str().unwrap();
        assert_eq!(
            sbom["annotations"]["io.github.castoff-rs.referrer.subject"],
            subject
        );
        assert!(
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["digest"] == subject),
            "SBOM subject {subject} is not an image of the index"
        );
        assert_eq!(
            artifact["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
    }
}

#[test]
fn sboms_validate_and_ship_in_every_channel() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let out = workspace.parent().unwrap().join("merged-sbom");
    let all: Vec<&PathBuf> = parts.iter().collect();
    assert_success(&merge(workspace, &all, &out, &[]), "merge");
    let sboms: Vec<PathBuf> = fs::read_dir(out.join("sbom"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(sboms.len(), 4);
    let mut command = Command::new(env.venv_bin().join("python"));
    command.arg("-c").arg(VALIDATE_CYCLONEDX).args(&sboms);
    let validated = run(&mut command, "CycloneDX schema validation");
    assert_eq!(validated.matches("valid").count(), 4, "{validated}");

    // The wheel (PEP 770, listed in RECORD) and the npm platform package (in `files`).
    let wheel = fs::read_dir(out.join("python"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains("manylinux_2_17_x86_64"))
        .unwrap();
    let record = run(
        Command::new("unzip")
            .arg("-p")
            .arg(&wheel)
            .arg("merged_greeter-0.3.1.dist-info/RECORD"),
        "unzip",
    );
    assert!(
        record.contains("merged_greeter-0.3.1.dist-info/sboms/greeter.cdx.json,sha256="),
        "{record}"
    );
    let listing = run(
        Command::new("tar")
            .args(["-tzf"])
            .arg(out.join("npm/castoff-merge-greeter-linux-x64-gnu-0.3.1.tgz")),
        "tar",
    );
    assert!(listing.contains("package/sbom.cdx.json"), "{listing}");
}

/// Validates each file against the CycloneDX 1.5 JSON schema shipped by cyclonedx-python-lib.
const VALIDATE_CYCLONEDX: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
validator = JsonStrictValidator(SchemaVersion.V1_5)
for path in sys.argv[1:]:
    error = validator.validate_str(open(path).read())
    if error is not None:
        sys.exit(f"{path}: {error}")
    print(f"{path}: valid")
"#;

#[test]
fn signatures_verify_with_stock_minisign() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let root = workspace.parent().unwrap().join("signing");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let minisign = env.tool("minisign");
    run(
        Command::new(&minisign)
            .args(["-G", "-W", "-p", "plain.pub", "-s", "plain.key"])
            .current_dir(&root),
        "minisign -G -W",
    );
    // An encrypted key: minisign reads the password (twice) from stdin when it is no terminal.
    let password = "correct horse battery staple";
    let mut child = Command::new(&minisign)
        .args(["-G", "-p", "locked.pub", "-s", "locked.key"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}\n{password}").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "minisign -G with a password"
    );

    let all: Vec<&PathBuf> = parts.iter().collect();
    let plain = root.join("dist-plain");
    let key = root.join("plain.key").to_string_lossy().into_owned();
    assert_success(
        &merge(workspace, &all, &plain, &["--sign-key", &key]),
        "signed merge",
    );

    let locked = root.join("dist-locked");
    let mut args: Vec<String> = vec!["dist".into(), "--dist-dir".into()];
    args.push(locked.to_string_lossy().into_owned());
    args.push("--merge".into());
    args.extend(all.iter().map(|p| p.to_string_lossy().into_owned()));
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(&args)
        .current_dir(workspace)
        .env(
            "CASTOFF_SIGN_KEY",
            fs::read_to_string(root.join("locked.key")).unwrap(),
        )
        .env("CASTOFF_SIGN_PASSWORD", password)
        .output()
        .unwrap();
    assert_success(&output, "merge signed with an encrypted key");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(password), "the password was printed");

    for (dist, public) in [(&plain, "plain.pub"), (&locked, "locked.pub")] {
        let manifest = manifest(dist);
        let mut signed: Vec<String> = manifest
            .artifacts
            .iter()
            .filter(|a| a.sha256.is_some())
            .filter_map(|a| a.path.clone())
            .collect();
        signed.extend(["SHA256SUMS", "install.sh", "manifest.json"].map(String::from));
        for file in &signed {
            let verified = run(
                Command::new(&minisign)
                    .args(["-V", "-p"])
                    .arg(root.join(public))
                    .arg("-m")
                    .arg(dist.join(file)),
                &format!("minisign -V {file}"),
            );
            assert!(
                verified.contains("Signature and comment signature verified"),
                "{verified}"
            );
        }
    }

    // publish --verify-key checks manifest.json's signature first, with the public key
    // minisign wrote: it passes for the signed dist (--only selects no step, so nothing goes
    // out), and fails for another key or a manifest edited after signing.
    let verify = |dist: &Path, public: &str| {
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args([
                "publish",
                "--dry-run",
                "--only",
                "no-such-step",
                "--dist-dir",
            ])
            .arg(dist)
            .arg("--verify-key")
            .arg(root.join(public))
            .current_dir(workspace)
            .output()
            .unwrap()
    };
    let accepted = verify(&plain, "plain.pub");
    assert_success(&accepted, "publish --verify-key of the signed dist");
    assert!(
        String::from_utf8_lossy(&accepted.stderr).contains("verified the signature of"),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let other_key = verify(&plain, "locked.pub");
    assert_eq!(other_key.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&other_key.stderr).contains("(it was signed by another key)"),
        "{}",
        String::from_utf8_lossy(&other_key.stderr)
    );
    let manifest_path = plain.join("manifest.json");
    let signed_text = fs::read_to_string(&manifest_path).unwrap();
    fs::write(&manifest_path, signed_text.replacen("\n", "\n ", 1)).unwrap();
    let edited = verify(&plain, "plain.pub");
    assert_eq!(edited.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&edited.stderr).contains("it changed after it was signed"),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    fs::write(&manifest_path, signed_text).unwrap();

    // A wrong password is refused before anything is written, without echoing it.
    let refused = root.join("dist-refused");
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["dist", "--dist-dir"])
        .arg(&refused)
        .arg("--merge")
        .args(parts)
        .current_dir(workspace)
        .env(
            "CASTOFF_SIGN_KEY",
            fs::read_to_string(root.join("locked.key")).unwrap(),
        )
        .env("CASTOFF_SIGN_PASSWORD", "not the password")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("wrong password") && stderr.contains("hint: "),
        "{stderr}"
    );
    assert!(!stderr.contains("not the password"), "{stderr}");
    assert!(!refused.exists());
}

#[test]
fn install_script_is_clean_and_installs_the_host_binary() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let out = workspace.parent().unwrap().join("merged-install");
    let all: Vec<&PathBuf> = parts.iter().collect();
    assert_success(&merge(workspace, &all, &out, &[]), "merge");
    let script = out.join("install.sh");
    run(
        Command::new(env.tool("shellcheck"))
            .args(["-s", "sh"])
            .arg(&script),
        "shellcheck -s sh install.sh",
    );

    let server = HttpServer::start(&out.join("archives"));
    let bin_dir = workspace.parent().unwrap().join("installed/bin");
    let _ = fs::remove_dir_all(&bin_dir);
    let installed = Command::new("sh")
        .arg(&script)
        .args(["--base-url", &server.url])
        .env("CASTOFF_INSTALL_DIR", &bin_dir)
        .output()
        .unwrap();
    assert_success(&installed, "sh install.sh");
    let stderr = String::from_utf8_lossy(&installed.stderr);
    assert!(
        stderr.contains("downloading greeter-0.3.1-x86_64-unknown-linux-gnu.tar.gz"),
        "{stderr}"
    );
    let greeting = run(
        &mut Command::new(bin_dir.join("greeter")),
        "installed greeter",
    );
    assert!(!greeting.is_empty());

    // A tampered archive is refused by its embedded digest, and nothing is installed.
    let tampered = workspace.parent().unwrap().join("tampered");
    let _ = fs::remove_dir_all(&tampered);
    fs::create_dir_all(&tampered).unwrap();
    for entry in fs::read_dir(out.join("archives")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = fs::read(&path).unwrap();
        bytes.push(0);
        fs::write(tampered.join(path.file_name().unwrap()), bytes).unwrap();
    }
    let server = HttpServer::start(&tampered);
    let other_dir = workspace.parent().unwrap().join("installed/other");
    let _ = fs::remove_dir_all(&other_dir);
    let refused = Command::new("sh")
        .arg(&script)
        .args(["--base-url", &server.url, "--to"])
        .arg(&other_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(!other_dir.join("greeter").exists());
}

#[test]
fn the_host_wheel_installs_with_pip() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let out = workspace.parent().unwrap().join("merged-pip");
    let all: Vec<&PathBuf> = parts.iter().collect();
    assert_success(&merge(workspace, &all, &out, &[]), "merge");
    let venv = workspace.parent().unwrap().join("venv");
    make_venv(&env, &venv);
    let wheel = fs::read_dir(out.join("python"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains("manylinux_2_17_x86_64"))
        .unwrap();
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--no-index", "--quiet"])
            .arg(&wheel),
        "pip install",
    );
    let greeting = run(
        &mut Command::new(venv.join("bin/greeter")),
        "greeter from the wheel",
    );
    assert!(!greeting.is_empty());
    let sbom = venv
        .join("lib")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages/merged_greeter-0.3.1.dist-info/sboms/greeter.cdx.json");
    assert!(
        sbom.is_file(),
        "pip did not install the SBOM at {}",
        sbom.display()
    );
}

/// The merged dist goes to the local registries with `castoff publish` and comes back with
/// pip, npm and skopeo.
#[test]
fn the_merged_dist_publishes_and_installs_back() {
    let env = TestEnv::get();
    let (workspace, parts) = partials();
    let root = workspace.parent().unwrap();
    let out = root.join("merged-publish");
    let all: Vec<&PathBuf> = parts.iter().collect();
    assert_success(&merge(workspace, &all, &out, &[]), "merge");
    let registry = env.registry_open.trim_start_matches("http://").to_owned();
    let repository = format!("{registry}/castoff-merge-{}/greeter", std::process::id());
    let published = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["publish", "--dist-dir"])
        .arg(&out)
        .args([
            "--pypi-url",
            &env.pypiserver,
            "--npm-registry",
            &env.verdaccio,
        ])
        // A repository of this run's own: images change with the code, and a tag that
        // already points elsewhere is a conflict (re-runs against live servers).
        .args(["--oci-repository", &repository])
        .current_dir(workspace)
        .env("TWINE_USERNAME", &env.user)
        .env("TWINE_PASSWORD", &env.password)
        .env("NPM_TOKEN", &env.npm_token)
        .env("NPM_CONFIG_USERCONFIG", root.join("no-npmrc"))
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&published.stdout),
        String::from_utf8_lossy(&published.stderr)
    );
    env.assert_no_secret(&printed);
    assert!(published.status.success(), "castoff publish:\n{printed}");

    // pip, from the index.
    let venv = root.join("venv-published");
    make_venv(&env, &venv);
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--index-url"])
            .arg(format!("{}simple/", env.pypiserver))
            .arg("merged-greeter==0.3.1"),
        "pip install from pypiserver",
    );
    run(
        &mut Command::new(venv.join("bin/greeter")),
        "greeter from PyPI",
    );

    // npm, from the registry: the launcher picks the linux-x64-gnu package.
    let project = root.join("npm-project");
    let _ = fs::remove_dir_all(&project);
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        r#"{"name":"consumer","private":true}"#,
    )
    .unwrap();
    run(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--registry",
                &env.verdaccio,
            ])
            .arg("@castoff-merge/greeter@0.3.1")
            .env("npm_config_cache", root.join("npm-cache"))
            .env("NPM_CONFIG_USERCONFIG", root.join("no-npmrc"))
            .current_dir(&project),
        "npm install from Verdaccio",
    );
    run(
        &mut Command::new(project.join("node_modules/.bin/greeter")),
        "greeter from npm",
    );

    // The multi-platform image, from the registry.
    let reference = format!("docker://{repository}:0.3.1");
    let raw = run(
        Command::new(env.tool("skopeo")).args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &reference,
        ]),
        "skopeo inspect",
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{raw}");
}

/// The npm launcher of `name@0.3.1` as Verdaccio serves it: its `optionalDependencies`.
fn launcher_platforms(env: &TestEnv, name: &str) -> Vec<String> {
    let packument = run(
        Command::new("curl")
            .args(["-s", "-f", "-H"])
            .arg(format!("Authorization: Bearer {}", env.npm_token))
            .arg(format!("{}{}", env.verdaccio, name.replace('/', "%2f"))),
        "curl (packument)",
    );
    let packument: serde_json::Value = serde_json::from_str(&packument).unwrap();
    let mut platforms: Vec<String> = packument["versions"]["0.3.1"]["optionalDependencies"]
        .as_object()
        .unwrap_or_else(|| panic!("{packument}"))
        .keys()
        .cloned()
        .collect();
    platforms.sort();
    platforms
}

/// A one-target dist of a two-target plan: `publish` refuses it (exit 2, naming the missing
/// target) and the registries hold nothing; merged with the other target's dist it publishes
/// without any flag, its launcher reaching both platforms. A second copy published with
/// `--allow-partial` goes out as it is (a launcher with one platform), and its merged dist
/// can never follow: a conflict (exit 3), which is why publish refuses partial dists.
#[test]
fn a_partial_dist_publishes_only_when_asked_or_merged() {
    let env = TestEnv::get();
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let scratch = env.scratch_dir("partial-publish");

    let label = format!("whole{}", std::process::id());
    let (workspace, parts) = two_target_partials(&scratch.join("whole"), &label);
    let repository = format!("{registry}/{label}/greeter");
    let (python, npm) = (format!("greeter-{label}"), format!("@{label}/greeter"));
    let dist = |dir: &Path| vec!["--dist-dir".to_owned(), dir.to_string_lossy().into_owned()];
    for dry_run in [false, true] {
        let mut extra = dist(&parts[0]);
        if dry_run {
            extra.push("--dry-run".to_owned());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let refused = publish(&env, &workspace, &repository, &extra, &[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("greeter 0.3.1: missing aarch64-unknown-linux-musl"),
            "{stderr}"
        );
        assert_eq!(
            held(&env, &python, &npm, &repository),
            (false, false, false),
            "a refused publish sent something"
        );
    }
    let merged = workspace.parent().unwrap().join("merged");
    assert_success(
        &merge(&workspace, &parts.iter().collect::<Vec<_>>(), &merged, &[]),
        "merge",
    );
    let extra = dist(&merged);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    assert_success(
        &publish(&env, &workspace, &repository, &extra, &[]),
        "publish of the merged dist",
    );
    assert_eq!(held(&env, &python, &npm, &repository), (true, true, true));
    assert_eq!(
        launcher_platforms(&env, &npm),
        [
            format!("{npm}-linux-arm64-musl"),
            format!("{npm}-linux-x64-gnu")
        ]
    );

    let label = format!("part{}", std::process::id());
    let (workspace, parts) = two_target_partials(&scratch.join("partial"), &label);
    let repository = format!("{registry}/{label}/greeter");
    let npm = format!("@{label}/greeter");
    let mut extra = dist(&parts[0]);
    extra.push("--allow-partial".to_owned());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let published = publish(&env, &workspace, &repository, &extra, &[]);
    assert_success(&published, "publish --allow-partial");
    assert_eq!(
        launcher_platforms(&env, &npm),
        [format!("{npm}-linux-x64-gnu")]
    );
    let merged = workspace.parent().unwrap().join("merged");
    assert_success(
        &merge(&workspace, &parts.iter().collect::<Vec<_>>(), &merged, &[]),
        "merge",
    );
    let extra = dist(&merged);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let late = publish(&env, &workspace, &repository, &extra, &[]);
    let late_text = String::from_utf8_lossy(&late.stderr);
    assert_eq!(late.status.code(), Some(3), "{late_text}");
    assert!(late_text.contains("npm-publish/greeter:"), "{late_text}");
}

/// A fresh virtual environment; one at a time, because ensurepip fails when two run at once.
pub(super) fn make_venv(env: &TestEnv, venv: &Path) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = fs::remove_dir_all(venv);
    run(
        Command::new(env.venv_bin().join("python"))
            .args(["-m", "venv"])
            .arg(venv),
        "python -m venv",
    );
}
