//! Shared by the hardening suites (`kill_points`, `faults`, `credential_routing`): a small
//! release workspace (`tests/bad-input/_base`) renamed per run, `castoff publish` against the
//! harness's servers or proxies in front of them, and the checks that the registries serve
//! exactly dist/'s bytes and that pip, npm and skopeo install the release. Wheels go to two
//! indexes in order, devpi then pypiserver (`python.repositories = ["devpi", "pypiserver"]`,
//! two `~/.pypirc` sections that `publish_to` points at the servers or their proxies).
#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use castoff_plan::Manifest;
use castoff_test_support::TestEnv;
pub use castoff_test_support::workspace::{
    copy_tree, isolated_command, output_text as text, repository_root,
};

pub fn scratch(env: &TestEnv) -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| env.scratch_dir(&format!("hardening-{}", std::process::id())))
}

pub fn castoff(home: &Path) -> Command {
    let mut command = isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), home);
    command.env_remove("CASTOFF_TEST_KILL_AT");
    command
}

/// The binary every sequence packages (built once, by the first `dist`).
pub fn binary(env: &TestEnv) -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = scratch(env).join("build");
        copy_tree(&repository_root().join("tests/bad-input/_base"), &workspace);
        let output = castoff(&workspace)
            .args(["dist", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        workspace.join("target/x86_64-unknown-linux-gnu/release/badin")
    })
}

/// A fresh workspace named `name` everywhere (PyPI name, npm scope, image path), its dist/
/// packaged from the shared binary.
pub fn sequence_workspace(env: &TestEnv, name: &str) -> PathBuf {
    let workspace = scratch(env).join(name).join("ws");
    copy_tree(&repository_root().join("tests/bad-input/_base"), &workspace);
    let cargo_toml = workspace.join("Cargo.toml");
    let text_ = fs::read_to_string(&cargo_toml)
        .unwrap()
        .replace(
            "name = \"badin\" }",
            &format!("name = \"{name}\", repositories = [\"devpi\", \"pypiserver\"] }}"),
        )
        .replace("\"@badin/badin\"", &format!("\"@{name}/badin\""));
    assert!(text_.contains("repositories = ["), "{text_}");
    fs::write(&cargo_toml, text_).unwrap();
    let planted = workspace.join("target/x86_64-unknown-linux-gnu/release/badin");
    fs::create_dir_all(planted.parent().unwrap()).unwrap();
    fs::copy(binary(env), &planted).unwrap();
    let output = castoff(&workspace)
        .args(["dist", "--no-build", "--manifest-path"])
        .arg(&cargo_toml)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    workspace
}

/// Where `publish` sends each channel: the harness's servers, or proxies in front of them.
#[derive(Clone)]
pub struct Endpoints {
    /// pypiserver's upload URL.
    pub pypi: String,
    /// devpi's upload URL (`…/ci/dev/`).
    pub devpi: String,
    pub npm: String,
    /// `host:port` of the image registry.
    pub registry: String,
}

impl Endpoints {
    pub fn direct(env: &TestEnv) -> Endpoints {
        Endpoints {
            pypi: env.pypiserver.clone(),
            devpi: env.devpi.clone(),
            npm: env.verdaccio.clone(),
            registry: TestEnv::host_port(&env.registry_open).to_owned(),
        }
    }
}

pub fn publish(env: &TestEnv, workspace: &Path, name: &str, kill_at: Option<&str>) -> Output {
    publish_to(env, workspace, name, &Endpoints::direct(env), kill_at, &[])
}

pub fn publish_to(
    env: &TestEnv,
    workspace: &Path,
    name: &str,
    endpoints: &Endpoints,
    kill_at: Option<&str>,
    envs: &[(&str, &str)],
) -> Output {
    let home = workspace.parent().unwrap().join("home");
    fs::create_dir_all(&home).unwrap();
    // The two indexes the wheel goes to, in the order `python.repositories` names them.
    let section = |url: &str| {
        format!(
            "repository = {url}\nusername = {}\npassword = {}\n",
            env.user, env.password
        )
    };
    fs::write(
        home.join(".pypirc"),
        format!(
            "[distutils]\nindex-servers =\n    devpi\n    pypiserver\n\n[devpi]\n{}\n[pypiserver]\n{}",
            section(&endpoints.devpi),
            section(&endpoints.pypi)
        ),
    )
    .unwrap();
    let mut command = castoff(&home);
    command
        .args(["publish", "--jobs", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .args(["--pypi-url", &endpoints.pypi])
        .args(["--pypi-index-url", &format!("{}simple/", endpoints.pypi)])
        .args(["--npm-registry", &endpoints.npm])
        .args([
            "--oci-repository",
            &format!("{}/{name}/badin", endpoints.registry),
        ])
        .env("TWINE_USERNAME", &env.user)
        .env("TWINE_PASSWORD", &env.password)
        .env("NPM_TOKEN", &env.npm_token)
        .envs(envs.iter().copied());
    if let Some(kill_at) = kill_at {
        command.env("CASTOFF_TEST_KILL_AT", kill_at);
    }
    let output = command.output().unwrap();
    env.assert_no_secret(&text(&output));
    if let Ok(report) = fs::read_to_string(workspace.join("dist/publish-report.json")) {
        env.assert_no_secret(&report);
    }
    output
}

pub fn fetch(url: &str, headers: &[&str]) -> (String, Vec<u8>) {
    let mut command = Command::new("curl");
    command.args(["-s", "-w", "\n%{http_code}"]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().expect("curl");
    let mut body = output.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[split + 1..]).into_owned();
    body.truncate(split);
    (status, body)
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// The registries serve exactly dist/'s bytes, once.
pub fn assert_served_exactly(env: &TestEnv, workspace: &Path, name: &str, point: &str) {
    let dist = workspace.join("dist");
    let manifest =
        Manifest::from_json(&fs::read_to_string(dist.join("manifest.json")).unwrap()).unwrap();
    let path_of = |kind: &str| -> PathBuf {
        dist.join(
            manifest
                .artifacts
                .iter()
                .find(|a| a.id.starts_with(kind))
                .and_then(|a| a.path.clone())
                .unwrap(),
        )
    };
    // PyPI: the wheel and the sdist, once each, byte for byte.
    let files = [path_of("wheel/"), path_of("sdist/")];
    let (status, page) = fetch(&format!("{}simple/{name}/", env.pypiserver), &[]);
    assert_eq!(status, "200", "{point}: simple page");
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(page.matches("<a ").count(), files.len(), "{point}: {page}");
    for file in &files {
        let filename = file.file_name().unwrap().to_string_lossy().into_owned();
        let (status, served) = fetch(&format!("{}packages/{filename}", env.pypiserver), &[]);
        assert_eq!(status, "200", "{point}: {filename} download");
        assert!(
            served == fs::read(file).unwrap(),
            "{point}: the {filename} served differs"
        );
    }
    // devpi: the same files, once each, byte for byte.
    let page_url = format!("{}+simple/{name}/", env.devpi);
    let (status, page) = fetch(&page_url, &[]);
    assert_eq!(status, "200", "{point}: devpi simple page");
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(
        page.matches("<a ").count(),
        files.len(),
        "{point}: devpi: {page}"
    );
    for file in &files {
        let filename = file.file_name().unwrap().to_string_lossy().into_owned();
        let href = page
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split(['"', '#']).next())
            .find(|href| href.contains(&filename))
            .unwrap_or_else(|| panic!("{point}: no link to {filename} on devpi's page: {page}"));
        let (status, served) = fetch(&resolve_url(&page_url, href), &[]);
        assert_eq!(status, "200", "{point}: devpi {filename} download");
        assert!(
            served == fs::read(file).unwrap(),
            "{point}: the {filename} devpi serves differs"
        );
    }
    // npm: one version of each package, tarballs byte for byte.
    let bearer = format!("Authorization: Bearer {}", env.npm_token);
    for (package, kind) in [
        (format!("@{name}/badin"), "npm-launcher/"),
        (format!("@{name}/badin-linux-x64-gnu"), "npm-platform/"),
    ] {
        let (status, document) = fetch(
            &format!("{}{}", env.verdaccio, package.replace('/', "%2f")),
            &[&bearer],
        );
        assert_eq!(status, "200", "{point}: {package}");
        let document = json(&document);
        let versions = document["versions"].as_object().unwrap();
        assert_eq!(versions.len(), 1, "{point}: {package} versions");
        let tarball = versions["1.2.3"]["dist"]["tarball"].as_str().unwrap();
        let (status, served) = fetch(tarball, &[&bearer]);
        assert_eq!(status, "200", "{point}: {tarball}");
        assert!(
            served == fs::read(path_of(kind)).unwrap(),
            "{point}: {package} tarball differs"
        );
    }
    // OCI: the tags, the index, the image manifest, config and layers, byte for byte.
    let base = format!("{}/v2/{name}/badin", env.registry_open);
    let (status, tags) = fetch(&format!("{base}/tags/list"), &[]);
    assert_eq!(status, "200", "{point}: tags");
    let mut tags: Vec<String> = json(&tags)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    // `sha256-<hex>` tags are the referrers fallback of attached SBOMs.
    tags.retain(|tag| !tag.starts_with("sha256-"));
    tags.sort();
    let mut expected = manifest.apps[0].oci.as_ref().unwrap().tags.clone();
    expected.sort();
    assert_eq!(tags, expected, "{point}: tags");
    let layout = dist.join("oci/badin/blobs/sha256");
    let blob = |digest: &str| fs::read(layout.join(digest.trim_start_matches("sha256:"))).unwrap();
    let index_digest = manifest
        .artifacts
        .iter()
        .find(|a| a.id.starts_with("oci-index/"))
        .and_then(|a| a.digest.clone())
        .unwrap();
    let accept = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";
    for tag in &tags {
        let (status, served) = fetch(&format!("{base}/manifests/{tag}"), &[accept]);
        assert_eq!(status, "200", "{point}: tag {tag}");
        assert!(
            served == blob(&index_digest),
            "{point}: tag {tag} is not the index"
        );
    }
    let index = json(&blob(&index_digest));
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let (status, served) = fetch(&format!("{base}/manifests/{digest}"), &[accept]);
        assert_eq!(status, "200", "{point}: manifest {digest}");
        assert!(served == blob(digest), "{point}: manifest {digest} differs");
        let image = json(&served);
        let mut blobs = vec![image["config"]["digest"].as_str().unwrap().to_owned()];
        for layer in image["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_owned());
        }
        for digest in blobs {
            let (status, served) = fetch(&format!("{base}/blobs/{digest}"), &[]);
            assert_eq!(status, "200", "{point}: blob {digest}");
            assert!(served == blob(&digest), "{point}: blob {digest} differs");
        }
    }
}

/// `href` (absolute, origin-relative or with `../`) resolved against the page at `base`.
pub fn resolve_url(base: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_owned();
    }
    let origin_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[origin_end..]
        .find('/')
        .map_or(base.len(), |i| origin_end + i);
    let origin = &base[..path_start];
    if href.starts_with('/') {
        return format!("{origin}{href}");
    }
    let mut segments: Vec<&str> = base[path_start..].split('/').collect();
    segments.pop(); // the page's own last segment (empty for a directory URL)
    for part in href.split('/') {
        match part {
            ".." => {
                segments.pop();
            }
            "." => {}
            other => segments.push(other),
        }
    }
    let path = segments.join("/");
    if path.starts_with('/') {
        format!("{origin}{path}")
    } else {
        format!("{origin}/{path}")
    }
}

pub fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

/// pip, npm and skopeo install what the sequence published.
pub fn assert_installable(env: &TestEnv, workspace: &Path, name: &str) {
    let root = workspace.parent().unwrap();
    let installed = root.join("pip-target");
    let index = format!("{}simple/", env.pypiserver);
    let pip = run(
        &env.venv_bin().join("pip"),
        &[
            "install",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
            installed.to_str().unwrap(),
            "--index-url",
            &index,
            &format!("{name}==1.2.3"),
        ],
        root,
    );
    assert!(pip.status.success(), "{}", text(&pip));
    let ran = run(&installed.join("bin/badin"), &[], root);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "badin\n",
        "{}",
        text(&ran)
    );

    let project = root.join("npm-project");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        "{\"name\":\"consumer\",\"private\":true}",
    )
    .unwrap();
    let cache = project.join(".npm-cache");
    let npm = run(
        Path::new("npm"),
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--registry",
            &env.verdaccio,
            "--userconfig",
            "/dev/null",
            "--cache",
            cache.to_str().unwrap(),
            &format!("@{name}/badin@1.2.3"),
        ],
        &project,
    );
    assert!(npm.status.success(), "{}", text(&npm));

    let registry = TestEnv::host_port(&env.registry_open);
    let copy = run(
        &env.tool("skopeo"),
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{registry}/{name}/badin:1.2.3"),
            &format!("oci:{}:x", root.join("copied").display()),
        ],
        root,
    );
    assert!(copy.status.success(), "{}", text(&copy));
}
