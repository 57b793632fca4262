//! The npm client against Verdaccio (from `cargo xtask test`): whoami, publish (unscoped and
//! scoped, streamed document), identical → skip, different bytes → conflict before upload,
//! bad credentials, verify from the packument, and `npm install` of what was published.

use crate::support::*;
use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry, NpmTarball, Npmrc};
use castoff_registry::{RegistryError, RemoteState, Secret, UploadKind};
use castoff_test_support::TestEnv;

fn client(env: &TestEnv, credentials: NpmCredentials) -> NpmClient {
    let registry = NpmRegistry::new(&env.verdaccio, credentials).expect("registry");
    let client = NpmClient::new(&http(), registry).expect("client");
    env.assert_no_secret(&format!("{client:?}"));
    client
}

fn token(env: &TestEnv) -> NpmCredentials {
    NpmCredentials::Token(Secret::new(env.npm_token.clone()))
}

fn check_error(env: &TestEnv, error: &RegistryError) -> String {
    let text = format!(
        "{}\n{error:?}",
        castoff_test_support::with_hint(error, error.hint())
    );
    env.assert_no_secret(&text);
    text
}

fn publish_cycle(env: &TestEnv, name: &str, tag: &str) {
    let version = unique_version();
    let dir = env.scratch_dir(&format!("npm-{}", name.replace(['@', '/'], "_")));
    let tarball =
        NpmTarball::open(&write_npm_tarball(&dir, name, &version, "first")).expect("tarball");
    assert_eq!(tarball.name, name);
    assert!(tarball.integrity.starts_with("sha512-"));
    let client = client(env, token(env));

    assert_eq!(client.whoami().expect("whoami"), env.user);
    assert_eq!(
        client.state(&tarball).expect("state before"),
        RemoteState::Absent
    );
    let outcome = client.upload(&tarball, Some(tag)).expect("publish");
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    client.verify(&tarball).expect("verify");
    assert_eq!(
        client.state(&tarball).expect("state after"),
        RemoteState::Identical
    );
    let packument = client.packument(&tarball).unwrap().unwrap();
    assert_eq!(packument["dist-tags"][tag], version.as_str(), "{packument}");

    // Verdaccio answers a duplicate PUT with 409; the packument says it is the same tarball.
    let again = client.upload(&tarball, Some(tag)).expect("second publish");
    assert_eq!(again.kind, UploadKind::AlreadyPresent);

    let other_dir = env.scratch_dir(&format!("npm-{}-other", name.replace(['@', '/'], "_")));
    let other = NpmTarball::open(&write_npm_tarball(&other_dir, name, &version, "second")).unwrap();
    assert_ne!(other.integrity, tarball.integrity);
    assert_eq!(
        client.state(&other).unwrap(),
        RemoteState::Conflict {
            local: other.integrity.clone(),
            remote: tarball.integrity.clone()
        }
    );
    let error = client
        .upload(&other, Some(tag))
        .expect_err("conflicting publish");
    let text = check_error(env, &error);
    assert!(matches!(error, RegistryError::Conflict { .. }), "{text}");
    client.verify(&tarball).expect("still the first tarball");

    // A real client installs it and runs the bin.
    let project = dir.join("consumer");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"consumer","version":"1.0.0","private":true}"#,
    )
    .unwrap();
    run(
        env,
        std::process::Command::new("npm")
            .current_dir(&project)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--userconfig",
                "/dev/null",
                "--registry",
                &env.verdaccio,
                "--cache",
            ])
            .arg(dir.join("npm-cache"))
            .arg(format!("{name}@{version}")),
    );
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join("node_modules").join(name).join("package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(installed["version"], version.as_str());
    let printed = run(
        env,
        std::process::Command::new("node")
            .arg(project.join("node_modules").join(name).join("index.js")),
    );
    assert_eq!(printed.trim(), "first");
}

#[test]
fn verdaccio_unscoped_publish_skip_conflict_verify_install() {
    let env = TestEnv::get();
    publish_cycle(&env, &format!("castoff-reg-{}", unique_suffix()), "latest");
}

#[test]
fn verdaccio_scoped_prerelease_tag() {
    let env = TestEnv::get();
    publish_cycle(
        &env,
        &format!("@castoff-test/reg-{}", unique_suffix()),
        "next",
    );
}

#[test]
fn wrong_or_missing_credentials_are_clear_errors_without_the_secret() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("npm-credentials");
    let tarball = NpmTarball::open(&write_npm_tarball(
        &dir,
        &format!("castoff-reg-creds-{}", unique_suffix()),
        "1.0.0",
        "x",
    ))
    .unwrap();

    let error = client(&env, NpmCredentials::None)
        .upload(&tarball, None)
        .expect_err("no credentials");
    let text = check_error(&env, &error);
    assert_eq!(error.status(), Some(401), "{text}");
    assert!(text.contains("no credentials were configured"), "{text}");

    let wrong = NpmCredentials::Token(Secret::new("not-a-verdaccio-token"));
    let error = client(&env, wrong).whoami().expect_err("wrong token");
    let text = check_error(&env, &error);
    assert!(
        text.contains("does not know these credentials")
            && text.contains("hint: the registry rejected"),
        "{text}"
    );

    let basic = NpmCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(format!("{}-wrong", env.password)),
    };
    let error = client(&env, basic)
        .upload(&tarball, None)
        .expect_err("wrong password");
    check_error(&env, &error);
    assert!(matches!(error.status(), Some(401 | 403)), "{error}");
}

#[test]
fn basic_auth_and_npmrc_token_resolution() {
    let env = TestEnv::get();
    let basic = NpmCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(env.password.clone()),
    };
    assert_eq!(
        client(&env, basic).whoami().expect("whoami with Basic"),
        env.user
    );

    let host = TestEnv::host_port(&env.verdaccio);
    let text = format!(
        "registry={}\n//{host}/:_authToken=${{CASTOFF_REG_TEST_TOKEN}}\n",
        env.verdaccio
    );
    let vars: std::collections::BTreeMap<String, String> =
        [("CASTOFF_REG_TEST_TOKEN".to_owned(), env.npm_token.clone())].into();
    let npmrc = Npmrc::parse(&text, &vars).unwrap();
    let registry = reqwest::Url::parse(npmrc.registry_for("anything").unwrap()).unwrap();
    let (credentials, source) =
        NpmCredentials::resolve(&std::collections::BTreeMap::new(), &npmrc, &registry, true);
    env.assert_no_secret(&format!("{credentials:?} {npmrc:?} {source:?}"));
    assert_eq!(
        source.map(|source| source.to_string()).as_deref(),
        Some(
            format!("`//{host}/:_authToken` in .npmrc (set from ${{CASTOFF_REG_TEST_TOKEN}})")
                .as_str()
        ),
        "the source names the key and its variable"
    );
    assert_eq!(
        client(&env, credentials)
            .whoami()
            .expect("whoami from .npmrc"),
        env.user
    );
}
