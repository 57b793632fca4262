//! A registry that refuses credentials is answered with a hint naming the one source castoff
//! took them from (issue 17), never the secret. Each case puts a wrong secret in one source,
//! runs `castoff publish --only <channel>` against the harness's pypiserver, Verdaccio or
//! htpasswd / token registry, and checks that the run stops before any upload with a hint
//! naming that source (the variables, the file and its section or key, the helper), and that
//! neither the wrong secret (nor its base64 form) nor the harness's password appears anywhere
//! in the output. Trusted Publishing, which no harness server offers, is in castoff-registry's
//! `offline::local_http`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use base64::Engine as _;
use castoff_registry::env::host_qualified;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{
    copy_fixture, isolated_command, output_text as text, release_for_host_only,
};

/// The single-cli fixture for this machine's target, dist'ed once for every case.
fn released() -> &'static Path {
    static RELEASED: OnceLock<PathBuf> = OnceLock::new();
    RELEASED.get_or_init(|| {
        let env = TestEnv::get();
        let root = env.scratch_dir(&format!("credential-hints-{}", std::process::id()));
        let workspace = root.join("workspace");
        copy_fixture("single-cli", &workspace);
        release_for_host_only(&workspace);
        let home = root.join("dist-home");
        fs::create_dir_all(&home).unwrap();
        let output = isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), &home)
            .arg("dist")
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        workspace
    })
}

/// Where a case publishes to.
#[derive(Clone, Copy)]
enum Destination {
    Pypiserver,
    Verdaccio,
    /// The registry with htpasswd (Basic) auth.
    RegistryBasic,
    /// The registry whose token server checks htpasswd.
    RegistryToken,
}

/// One wrong credential in one source.
struct Case {
    name: &'static str,
    destination: Destination,
    /// Variables of the run (besides `HOME` and the isolation of `isolated_command`).
    envs: Vec<(String, String)>,
    /// Files written before the run: path relative to the case's home, text.
    home_files: Vec<(&'static str, String)>,
    /// Arguments after the destination's own.
    args: Vec<String>,
    /// The secrets the output must never show.
    secrets: Vec<String>,
    /// How the hint names the source (`$HOME` is the case's home).
    source: String,
}

/// Runs one case: refused before any upload, the hint names the source, no secret shows.
fn check(env: &TestEnv, case: Case) {
    let workspace = released();
    let home = env.scratch_dir(&format!(
        "credential-hints-{}-{}",
        std::process::id(),
        case.name
    ));
    for (path, contents) in &case.home_files {
        let path = home.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
    }
    let repository = |url: &str| {
        format!(
            "{}/hints{}/{}",
            TestEnv::host_port(url),
            std::process::id(),
            case.name
        )
    };
    let destination: Vec<String> = match case.destination {
        Destination::Pypiserver => vec!["--only".into(), "pypi-upload/".into()],
        Destination::Verdaccio => vec![
            "--only".into(),
            "npm-publish/".into(),
            "--npm-registry".into(),
            env.verdaccio.clone(),
        ],
        Destination::RegistryBasic => vec![
            "--only".into(),
            "oci-".into(),
            "--oci-repository".into(),
            repository(&env.registry_basic),
        ],
        Destination::RegistryToken => vec![
            "--only".into(),
            "oci-".into(),
            "--oci-repository".into(),
            repository(&env.registry_token),
        ],
    };
    let output: Output = isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), &home)
        .arg("publish")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(&destination)
        .args(&case.args)
        .envs(case.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let output_text = text(&output);
    let name = case.name;
    env.assert_no_secret(&output_text);
    for secret in &case.secrets {
        assert!(
            !output_text.contains(secret.as_str()),
            "{name}: a secret of the case shows in the output"
        );
    }
    assert_eq!(output.status.code(), Some(1), "{name}: {output_text}");
    assert!(
        output_text.contains("problem(s) found before any upload"),
        "{name}: {output_text}"
    );
    let source = case.source.replace("$HOME", &home.display().to_string());
    let hint = output_text
        .lines()
        .map(str::trim_start)
        .find(|line| line.starts_with("hint: ") && line.contains("rejected the credentials"))
        .unwrap_or_else(|| panic!("{name}: no hint about rejected credentials: {output_text}"));
    assert!(
        hint.contains(&format!("rejected the credentials from {source}: ")),
        "{name}: the hint names `{source}`: {hint}"
    );
    assert!(
        !workspace.join("dist/publish-report.json").exists(),
        "{name}: nothing was published"
    );
}

fn wrong(what: &str) -> String {
    format!("wrong-{what}-{}", std::process::id())
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_refused_pypi_credential_names_its_source() {
    let env = TestEnv::get();
    let pypi = ["--pypi-url".to_owned(), env.pypiserver.clone()];
    let key = TestEnv::host_port(&env.pypiserver);
    let (token_name, user_name, password_name) = (
        host_qualified("CASTOFF_PYPI_TOKEN", key),
        host_qualified("CASTOFF_PYPI_USERNAME", key),
        host_qualified("CASTOFF_PYPI_PASSWORD", key),
    );
    let cases = [
        Case {
            name: "twine",
            destination: Destination::Pypiserver,
            envs: pairs(&[
                ("TWINE_USERNAME", &env.user),
                ("TWINE_PASSWORD", &wrong("twine")),
            ]),
            home_files: Vec::new(),
            args: pypi.to_vec(),
            secrets: vec![wrong("twine")],
            source: "the environment variables TWINE_USERNAME and TWINE_PASSWORD".into(),
        },
        Case {
            name: "pypi-token",
            destination: Destination::Pypiserver,
            envs: pairs(&[("CASTOFF_PYPI_TOKEN", &wrong("pypi-token"))]),
            home_files: Vec::new(),
            args: pypi.to_vec(),
            secrets: vec![wrong("pypi-token")],
            source: "the environment variable CASTOFF_PYPI_TOKEN".into(),
        },
        Case {
            name: "pypi-host-bound",
            destination: Destination::Pypiserver,
            envs: pairs(&[
                (&user_name, &env.user),
                (&password_name, &wrong("pypi-host-bound")),
                // Bound to the host, it comes before the bare token, which is right.
                ("CASTOFF_PYPI_TOKEN", &env.password),
            ]),
            home_files: Vec::new(),
            args: pypi.to_vec(),
            secrets: vec![wrong("pypi-host-bound")],
            source: format!("the environment variables {user_name} and {password_name}"),
        },
        Case {
            name: "pypi-host-bound-token",
            destination: Destination::Pypiserver,
            envs: pairs(&[(&token_name, &wrong("pypi-host-bound-token"))]),
            home_files: Vec::new(),
            args: pypi.to_vec(),
            secrets: vec![wrong("pypi-host-bound-token")],
            source: format!("the environment variable {token_name}"),
        },
        Case {
            name: "pypirc",
            destination: Destination::Pypiserver,
            envs: Vec::new(),
            home_files: vec![(
                ".pypirc",
                format!(
                    "[distutils]\nindex-servers =\n    harness\n\n[harness]\nrepository = {}\nusername = {}\npassword = {}\n",
                    env.pypiserver,
                    env.user,
                    wrong("pypirc")
                ),
            )],
            args: vec!["--pypi-repository".into(), "harness".into()],
            secrets: vec![wrong("pypirc")],
            source: "the [harness] section of $HOME/.pypirc".into(),
        },
    ];
    for case in cases {
        check(&env, case);
    }
}

#[test]
fn a_refused_npm_credential_names_its_source() {
    let env = TestEnv::get();
    let host = TestEnv::host_port(&env.verdaccio);
    let encoded = base64::engine::general_purpose::STANDARD.encode(wrong("npmrc-password"));
    let cases = [
        Case {
            name: "npm-token",
            destination: Destination::Verdaccio,
            envs: pairs(&[("NPM_TOKEN", &wrong("npm-token"))]),
            home_files: Vec::new(),
            args: Vec::new(),
            secrets: vec![wrong("npm-token")],
            source: "the environment variable NPM_TOKEN".into(),
        },
        Case {
            name: "node-auth-token",
            destination: Destination::Verdaccio,
            envs: pairs(&[
                ("NODE_AUTH_TOKEN", &wrong("node-auth-token")),
                // The one actions/setup-node sets wins over the other.
                ("NPM_TOKEN", &env.npm_token),
            ]),
            home_files: Vec::new(),
            args: Vec::new(),
            secrets: vec![wrong("node-auth-token")],
            source: "the environment variable NODE_AUTH_TOKEN".into(),
        },
        Case {
            name: "npmrc-variable",
            destination: Destination::Verdaccio,
            envs: pairs(&[("CASTOFF_HINTS_NPM", &wrong("npmrc-variable"))]),
            // `isolated_command` points NPM_CONFIG_USERCONFIG at `$HOME/.npmrc`.
            home_files: vec![(
                ".npmrc",
                format!("//{host}/:_authToken=${{CASTOFF_HINTS_NPM}}\n"),
            )],
            args: Vec::new(),
            secrets: vec![wrong("npmrc-variable")],
            source: format!(
                "`//{host}/:_authToken` in $HOME/.npmrc (set from ${{CASTOFF_HINTS_NPM}})"
            ),
        },
        Case {
            name: "npmrc-password",
            destination: Destination::Verdaccio,
            envs: Vec::new(),
            home_files: vec![(
                ".npmrc",
                format!(
                    "//{host}/:username={}\n//{host}/:_password={encoded}\n",
                    env.user
                ),
            )],
            args: Vec::new(),
            secrets: vec![wrong("npmrc-password"), encoded.clone()],
            source: format!("`//{host}/:_password` in $HOME/.npmrc"),
        },
    ];
    for case in cases {
        check(&env, case);
    }
}

#[test]
fn a_refused_registry_credential_names_its_source() {
    let env = TestEnv::get();
    let host = TestEnv::host_port(&env.registry_basic).to_owned();
    let token_host = TestEnv::host_port(&env.registry_token).to_owned();
    let (user_name, password_name) = (
        host_qualified("CASTOFF_OCI_USERNAME", &host),
        host_qualified("CASTOFF_OCI_PASSWORD", &host),
    );
    let auth = |password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", env.user))
    };
    let helpers = env.scratch_dir(&format!("credential-hints-{}-helpers", std::process::id()));
    let helper = helpers.join("docker-credential-castoffhints");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncat > /dev/null\nprintf '{{\"Username\":\"{}\",\"Secret\":\"{}\"}}'\n",
            env.user,
            wrong("helper")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cases = [
        Case {
            name: "oci-variables",
            destination: Destination::RegistryBasic,
            envs: pairs(&[
                ("CASTOFF_OCI_USERNAME", &env.user),
                ("CASTOFF_OCI_PASSWORD", &wrong("oci-variables")),
            ]),
            home_files: Vec::new(),
            args: Vec::new(),
            secrets: vec![wrong("oci-variables")],
            source: "the environment variables CASTOFF_OCI_USERNAME and CASTOFF_OCI_PASSWORD"
                .into(),
        },
        Case {
            name: "oci-host-bound",
            destination: Destination::RegistryBasic,
            envs: pairs(&[
                (&user_name, &env.user),
                (&password_name, &wrong("oci-host-bound")),
            ]),
            home_files: Vec::new(),
            args: Vec::new(),
            secrets: vec![wrong("oci-host-bound")],
            source: format!("the environment variables {user_name} and {password_name}"),
        },
        Case {
            name: "docker-config",
            destination: Destination::RegistryBasic,
            envs: Vec::new(),
            home_files: vec![(
                ".docker/config.json",
                format!(
                    r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
                    auth(&wrong("docker-config"))
                ),
            )],
            args: Vec::new(),
            secrets: vec![wrong("docker-config"), auth(&wrong("docker-config"))],
            source: format!("the auths entry `{host}` of $HOME/.docker/config.json"),
        },
        Case {
            name: "credential-helper",
            destination: Destination::RegistryBasic,
            envs: pairs(&[("PATH", &path)]),
            home_files: vec![(
                ".docker/config.json",
                format!(r#"{{"credHelpers":{{"{host}":"castoffhints"}}}}"#),
            )],
            args: Vec::new(),
            secrets: vec![wrong("helper")],
            source: "the credential helper docker-credential-castoffhints (configured in $HOME/.docker/config.json)".into(),
        },
        Case {
            // The token server refuses the token: the same source is named.
            name: "token-registry",
            destination: Destination::RegistryToken,
            envs: Vec::new(),
            home_files: vec![(
                ".docker/config.json",
                format!(
                    r#"{{"auths":{{"{token_host}":{{"username":"{}","password":"{}"}}}}}}"#,
                    env.user,
                    wrong("token-registry")
                ),
            )],
            args: Vec::new(),
            secrets: vec![wrong("token-registry")],
            source: format!("the auths entry `{token_host}` of $HOME/.docker/config.json"),
        },
    ];
    for case in cases {
        check(&env, case);
    }
}
