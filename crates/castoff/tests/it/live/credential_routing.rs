//! Which host receives which credential. A release goes through recording proxies, one per
//! host — the base image's registry, the push registry (token auth) and its token realm, a
//! mirror registry, two PyPI indexes, two npm registries — and every credential source holds a distinct secret: the bare
//! variables (`CASTOFF_OCI_USERNAME`/`PASSWORD`, `CASTOFF_PYPI_TOKEN`, `TWINE_*`,
//! `NODE_AUTH_TOKEN`, `NPM_TOKEN`), the host-bound ones, a `.pypirc` section, `.npmrc` per
//! host, a Docker credential helper, and a Docker `config.json` entry for an unrelated host. Each proxy records the `Authorization` it is
//! sent and swaps it for the one its real server accepts. The test asserts that every host
//! received exactly its own credential and nothing else, and that the decoys reached no one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Command;

use base64::Engine as _;
use castoff_registry::env::host_qualified;
use castoff_test_support::TestEnv;

use super::hardening::proxy::Proxy;
use super::hardening::{castoff, copy_tree, repository_root, scratch, text};

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn every_host_receives_only_its_own_credential() {
    let env = TestEnv::get();
    let name = format!("cr{}", std::process::id());
    let root = scratch(&env).join(&name);
    let registry = TestEnv::host_port(&env.registry_basic).to_owned();
    let real_registry = basic(&env.user, &env.password);

    // One proxy per host, each translating what castoff sends into what its server accepts.
    let base = Proxy::start(&registry);
    // The push registry challenges for a Bearer token; its realm (the token server) is moved
    // behind a proxy of its own, which receives the push credential.
    let push = Proxy::start(TestEnv::host_port(&env.registry_token));
    let realm = Proxy::start(TestEnv::host_port(&env.token_server));
    push.rewrite_answers(TestEnv::host_port(&env.token_server), &realm.host_port());
    realm.translate_authorization(Some(real_registry.clone()));
    let mirror = Proxy::start(&registry);
    let devpi = Proxy::start(TestEnv::host_port(&env.devpi));
    let pypiserver = Proxy::start(TestEnv::host_port(&env.pypiserver));
    let npm_first = Proxy::start(TestEnv::host_port(&env.verdaccio));
    let npm_second = Proxy::start(TestEnv::host_port(&env.verdaccio));
    for proxy in [&base, &mirror] {
        proxy.translate_authorization(Some(real_registry.clone()));
    }
    for proxy in [&devpi, &pypiserver] {
        proxy.translate_authorization(Some(basic(&env.user, &env.password)));
    }
    for proxy in [&npm_first, &npm_second] {
        proxy.translate_authorization(Some(format!("Bearer {}", env.npm_token)));
    }

    // The base image: this workspace's own first image, pushed to the registry by skopeo.
    let workspace = root.join("ws");
    copy_tree(&repository_root().join("tests/bad-input/_base"), &workspace);
    let planted = workspace.join("target/x86_64-unknown-linux-gnu/release/badin");
    fs::create_dir_all(planted.parent().unwrap()).unwrap();
    fs::copy(super::hardening::binary(&env), &planted).unwrap();
    let home = root.join("home");
    fs::create_dir_all(&home).unwrap();
    let first = castoff(&home)
        .args(["dist", "--no-build", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let base_repository = format!("routing/base-{name}");
    let copied = Command::new(env.tool("skopeo"))
        .args(["copy", "--all", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{}:{}", env.user, env.password))
        .arg(format!(
            "oci:{}:1.2.3",
            workspace.join("dist/oci/badin").display()
        ))
        .arg(format!("docker://{registry}/{base_repository}:1"))
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", text(&copied));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(workspace.join("dist/oci/badin/index.json")).unwrap())
            .unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["mediaType"] == "application/vnd.oci.image.index.v1+json")
        .and_then(|entry| entry["digest"].as_str())
        .unwrap()
        .to_owned();

    // The release: its image on the push registry, built on the base, mirrored; wheels to two
    // indexes; npm packages to two registries.
    let devpi_path = env.devpi.splitn(4, '/').nth(3).unwrap_or_default();
    let devpi_url = format!("{}{devpi_path}", devpi.url());
    let pypiserver_url = pypiserver.url();
    let cargo_toml = workspace.join("Cargo.toml");
    let configured = fs::read_to_string(&cargo_toml)
        .unwrap()
        .replace(
            "python = { name = \"badin\" }",
            &format!(
                "python = {{ name = \"{name}\", repositories = [\"devpi-routing\", \"{pypiserver_url}\"] }}"
            ),
        )
        .replace(
            "npm = { name = \"@badin/badin\" }",
            &format!(
                "npm = {{ name = \"@{name}/badin\", registries = [\"{}\", \"{}\"] }}",
                npm_first.url(),
                npm_second.url()
            ),
        )
        .replace(
            "oci = { repository = \"ghcr.io/badin/badin\" }",
            &format!(
                "oci = {{ repository = \"{}/routing/{name}\", mirrors = [\"{}/routing/{name}-mirror\"], base = \"{}/{base_repository}@{digest}\" }}",
                push.host_port(),
                mirror.host_port(),
                base.host_port()
            ),
        );
    assert!(configured.contains("mirrors = ["), "{configured}");
    fs::write(&cargo_toml, configured).unwrap();

    // Every source a distinct secret. Bound ones name their host; bare ones must reach only
    // the push registry (OCI) or, with several destinations, nobody (PyPI, npm).
    let secret = |what: &str| format!("{what}-{name}-secret");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("CASTOFF_OCI_USERNAME".into(), "push-user".into());
    vars.insert("CASTOFF_OCI_PASSWORD".into(), secret("push"));
    vars.insert(
        host_qualified("CASTOFF_OCI_USERNAME", &base.host_port()),
        "base-user".into(),
    );
    vars.insert(
        host_qualified("CASTOFF_OCI_PASSWORD", &base.host_port()),
        secret("base"),
    );
    vars.insert(
        host_qualified("CASTOFF_PYPI_USERNAME", &pypiserver.host_port()),
        "pypiserver-user".into(),
    );
    vars.insert(
        host_qualified("CASTOFF_PYPI_PASSWORD", &pypiserver.host_port()),
        secret("pypiserver"),
    );
    let decoys = [
        ("CASTOFF_PYPI_TOKEN", secret("decoy-pypi-token")),
        ("TWINE_USERNAME", "decoy-twine-user".to_owned()),
        ("TWINE_PASSWORD", secret("decoy-twine")),
        ("NODE_AUTH_TOKEN", secret("decoy-node-auth")),
        ("NPM_TOKEN", secret("decoy-npm-token")),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            secret("decoy-oidc-request"),
        ),
    ];
    for (variable, value) in &decoys {
        vars.insert((*variable).into(), value.clone());
    }
    // GitHub's OIDC endpoint, as in a workflow with `id-token: write`: every destination has
    // its credential, so nothing may ask it for an ID token (and its request token, a decoy,
    // reaches no registry).
    let oidc = Proxy::start(TestEnv::host_port(&env.verdaccio));
    vars.insert("GITHUB_ACTIONS".into(), "true".into());
    vars.insert(
        "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
        format!("{}token?api-version=2.0", oidc.url()),
    );
    fs::write(
        home.join(".npmrc"),
        format!(
            "//{}/:_authToken={}\n//{}/:_authToken={}\n",
            npm_first.host_port(),
            secret("npm-first"),
            npm_second.host_port(),
            secret("npm-second")
        ),
    )
    .unwrap();
    // devpi by its ~/.pypirc section, the mirror by a Docker credential helper.
    fs::write(
        home.join(".pypirc"),
        format!(
            "[distutils]\nindex-servers =\n    devpi-routing\n\n[devpi-routing]\nrepository = {devpi_url}\nusername = devpi-user\npassword = {}\n",
            secret("devpi")
        ),
    )
    .unwrap();
    let helpers = root.join("helpers");
    fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-routing");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncat > /dev/null\nprintf '{{\"Username\":\"mirror-user\",\"Secret\":\"{}\"}}'\n",
            secret("mirror")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    vars.insert(
        "PATH".into(),
        format!(
            "{}:{}",
            helpers.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let docker = home.join(".docker");
    fs::create_dir_all(&docker).unwrap();
    let docker_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("other:{}", secret("docker")));
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"unrelated.example":{{"auth":"{docker_auth}"}}}},"credHelpers":{{"{}":"routing"}}}}"#,
            mirror.host_port()
        ),
    )
    .unwrap();

    for command in [&["dist", "--no-build"][..], &["publish", "--jobs", "1"][..]] {
        let output = castoff(&home)
            .args(command)
            .arg("--manifest-path")
            .arg(&cargo_toml)
            .envs(&vars)
            .output()
            .unwrap();
        let shown = text(&output);
        assert!(output.status.success(), "{command:?}\n{shown}");
        env.assert_no_secret(&shown);
        // Every secret of this test ends in `-<name>-secret`, whatever its source.
        assert!(
            !shown.contains(&format!("-{name}-secret")),
            "{command:?} printed a secret"
        );
    }

    // The push registry itself sees only the Bearer tokens its realm issued.
    let push_received: Vec<String> = push
        .log()
        .into_iter()
        .filter_map(|logged| logged.authorization)
        .collect();
    assert!(!push_received.is_empty(), "the push registry got no token");
    for value in &push_received {
        assert!(
            value.starts_with("Bearer ") && !value.contains(&format!("-{name}-secret")),
            "the push registry received a credential, not a token"
        );
    }
    let expected: [(&str, &Proxy, String); 7] = [
        ("base registry", &base, basic("base-user", &secret("base"))),
        (
            "push registry's token realm",
            &realm,
            basic("push-user", &secret("push")),
        ),
        (
            "mirror registry",
            &mirror,
            basic("mirror-user", &secret("mirror")),
        ),
        ("devpi", &devpi, basic("devpi-user", &secret("devpi"))),
        (
            "pypiserver",
            &pypiserver,
            basic("pypiserver-user", &secret("pypiserver")),
        ),
        (
            "first npm registry",
            &npm_first,
            format!("Bearer {}", secret("npm-first")),
        ),
        (
            "second npm registry",
            &npm_second,
            format!("Bearer {}", secret("npm-second")),
        ),
    ];
    assert!(
        oidc.log().is_empty(),
        "the OIDC endpoint was asked although every destination had credentials"
    );
    let mut received_total = 0;
    for (what, proxy, own) in &expected {
        let received: BTreeSet<String> = proxy
            .log()
            .into_iter()
            .filter_map(|logged| logged.authorization)
            .collect();
        received_total += proxy
            .log()
            .iter()
            .filter(|logged| logged.authorization.is_some())
            .count();
        assert_eq!(
            received,
            BTreeSet::from([own.clone()]),
            "the {what} received other credentials than its own"
        );
        for (variable, decoy) in &decoys {
            assert!(
                !proxy
                    .log()
                    .iter()
                    .any(|logged| logged.authorization.as_deref().is_some_and(|a| {
                        a.contains(decoy.as_str())
                            || base64::engine::general_purpose::STANDARD
                                .decode(a.trim_start_matches("Basic "))
                                .is_ok_and(|bytes| {
                                    String::from_utf8_lossy(&bytes).contains(decoy.as_str())
                                })
                    })),
                "{variable} reached the {what}"
            );
        }
    }
    env.figure(format!(
        "credential routing: 8 hosts (a token realm among them), 14 credential sources (6 bare decoys, the OIDC request token among them, 1 bare pair for the push registry, 2 host-bound pairs, 1 .pypirc section, 2 .npmrc entries, 1 credential helper, 1 unrelated config.json entry), {received_total} authorized requests, each host only its own credential, the OIDC endpoint unasked"
    ));
}
