//! The PyPI client against real indexes (pypiserver and devpi from `cargo xtask test`): upload,
//! identical → skip, different bytes → conflict before upload, bad credentials, verify, and
//! `pip install` of what was uploaded. Every message is checked for the password.

use crate::support::*;
use castoff_registry::pypi::{PypiClient, PypiCredentials, PypiRepository, WheelFile};
use castoff_registry::{RegistryError, RemoteState, Secret, UploadKind};
use castoff_test_support::TestEnv;

fn client(env: &TestEnv, upload_url: &str, credentials: PypiCredentials) -> PypiClient {
    let repository = PypiRepository::new(upload_url, None, credentials).expect("repository");
    let client = PypiClient::new(&http(), repository).expect("client");
    env.assert_no_secret(&format!("{client:?}"));
    client
}

fn password(env: &TestEnv) -> PypiCredentials {
    PypiCredentials::Password {
        username: env.user.clone(),
        password: Secret::new(env.password.clone()),
    }
}

fn check_error(env: &TestEnv, error: &RegistryError) -> String {
    let text = format!(
        "{}\n{error:?}",
        castoff_test_support::with_hint(error, error.hint())
    );
    env.assert_no_secret(&text);
    text
}

/// The whole life of one wheel on one index.
fn publish_cycle(env: &TestEnv, upload_url: &str, index_for_pip: &str, name: &str) {
    let version = unique_version();
    let project = format!("castoff-reg-{name}");
    let dir = env.scratch_dir(&format!("pypi-{name}"));
    let wheel_path = write_wheel(&dir, &project, &version, "first");
    let wheel = WheelFile::open(&wheel_path).expect("wheel");
    assert_eq!(wheel.python_tag, "py3");
    assert_eq!(wheel.version(), version);
    let client = client(env, upload_url, password(env));

    assert_eq!(
        client.state(&wheel).expect("state before"),
        RemoteState::Absent
    );
    let outcome = client.upload(&wheel).expect("upload");
    assert_eq!(outcome.kind, UploadKind::Uploaded);
    assert_eq!(outcome.bytes, wheel.size);
    client.verify(&wheel).expect("verify");
    assert_eq!(
        client.state(&wheel).expect("state after"),
        RemoteState::Identical
    );

    // Uploading again anyway (publish would have skipped after the state query): pypiserver
    // answers 409, resolved through the index to "already present"; devpi (like PyPI) answers
    // an identical re-upload with 200, a no-op.
    let again = client.upload(&wheel).expect("second upload");
    let expected = if name == "pypiserver" {
        UploadKind::AlreadyPresent
    } else {
        UploadKind::Uploaded
    };
    assert_eq!(again.kind, expected, "{again:?}");

    // Same file name, other bytes: a conflict the state query reports before any upload,
    // and the upload refuses too.
    let other_dir = env.scratch_dir(&format!("pypi-{name}-other"));
    let other = WheelFile::open(&write_wheel(&other_dir, &project, &version, "second"))
        .expect("other wheel");
    assert_eq!(other.filename, wheel.filename);
    match client.state(&other).expect("state of the other wheel") {
        RemoteState::Conflict { local, remote } => {
            assert_eq!(local, format!("sha256:{}", other.sha256));
            assert_eq!(remote, format!("sha256:{}", wheel.sha256));
        }
        state => panic!("expected a conflict, got {state:?}"),
    }
    let error = client.upload(&other).expect_err("conflicting upload");
    let text = check_error(env, &error);
    assert!(matches!(error, RegistryError::Conflict { .. }), "{text}");
    assert!(
        text.contains(&wheel.filename) && text.contains("hint:"),
        "{text}"
    );

    // The index still serves the first bytes, and pip installs them.
    client
        .verify(&wheel)
        .expect("verify after the refused conflict");
    let venv = dir.join("venv");
    run(
        env,
        std::process::Command::new(env.tool("python"))
            .args(["-m", "venv"])
            .arg(&venv),
    );
    run(
        env,
        std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--index-url",
                index_for_pip,
            ])
            .arg(format!("{project}=={version}")),
    );
    let module = project.replace('-', "_");
    let printed = run(
        env,
        std::process::Command::new(venv.join("bin/python"))
            .args(["-c", &format!("import {module}; print({module}.MARKER)")]),
    );
    assert_eq!(printed.trim(), "first");
}

#[test]
fn pypiserver_upload_skip_conflict_verify_install() {
    let env = TestEnv::get();
    let index = format!("{}simple/", env.pypiserver);
    publish_cycle(&env, &env.pypiserver, &index, "pypiserver");
}

#[test]
fn devpi_upload_skip_conflict_verify_install() {
    let env = TestEnv::get();
    let index = format!("{}+simple/", env.devpi);
    publish_cycle(&env, &env.devpi, &index, "devpi");
}

#[test]
fn wrong_or_missing_credentials_are_clear_errors_without_the_secret() {
    let env = TestEnv::get();
    let dir = env.scratch_dir("pypi-credentials");
    let wheel = WheelFile::open(&write_wheel(
        &dir,
        "castoff-reg-creds",
        &unique_version(),
        "x",
    ))
    .unwrap();
    for (server, upload_url) in [("pypiserver", &env.pypiserver), ("devpi", &env.devpi)] {
        let wrong = PypiCredentials::Password {
            username: env.user.clone(),
            password: Secret::new(format!("{}-wrong", env.password)),
        };
        let error = client(&env, upload_url, wrong)
            .upload(&wheel)
            .expect_err("wrong password");
        let text = check_error(&env, &error);
        assert!(
            matches!(error.status(), Some(401 | 403)),
            "{server}: {text}"
        );
        assert!(
            text.contains("rejected the credentials") || text.contains("lack permission"),
            "{server}: {text}"
        );
        if server == "pypiserver" {
            let error = client(&env, upload_url, PypiCredentials::None)
                .upload(&wheel)
                .expect_err("no credentials");
            let text = check_error(&env, &error);
            assert_eq!(error.status(), Some(401), "{text}");
            assert!(text.contains("no credentials were configured"), "{text}");
        }
    }
}
