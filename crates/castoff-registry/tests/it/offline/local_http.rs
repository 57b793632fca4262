//! Protocol edges proven against a small in-test HTTP server: redirects never carry
//! `Authorization` to another origin, 429/5xx are retried (honouring `Retry-After`) while
//! other 4xx are not, a retried upload first asks whether the failed attempt landed, and the
//! Trusted Publishing exchanges follow the documented request and response shapes.

use crate::support::*;
use castoff_registry::npm::{
    NpmClient, NpmCredentials, NpmRegistry, NpmTarball, oidc_token_exchange,
};
use castoff_registry::oidc::GithubOidc;
use castoff_registry::pypi::trusted_publishing_token;
use castoff_registry::{Secret, UploadKind};
use reqwest::Url;

const TOKEN: &str = "npm_stand_in_secret_token";

fn npm_client(registry: &str) -> NpmClient {
    let registry = NpmRegistry::new(registry, NpmCredentials::Token(Secret::new(TOKEN))).unwrap();
    NpmClient::new(&http(), registry).unwrap()
}

#[test]
fn redirects_keep_authorization_on_the_same_origin_only() {
    let other = StandIn::start(|_, _| {
        (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json".into(),
            r#"{"username":"elsewhere"}"#.into(),
        )
    });
    let target = format!("{}/-/whoami", other.url);
    let registry = StandIn::start(move |request, _| match request.target.as_str() {
        "/-/whoami" => (
            "HTTP/1.1 302 Found\r\nLocation: /moved/whoami".into(),
            String::new(),
        ),
        "/moved/whoami" => (
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}"),
            String::new(),
        ),
        _ => ("HTTP/1.1 404 Not Found".into(), String::new()),
    });
    let user = npm_client(&registry.url).whoami().unwrap();
    assert_eq!(user, "elsewhere");
    let first = registry.requests();
    assert_eq!(first.len(), 2);
    for request in &first {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{}",
            request.target
        );
        assert_eq!(
            request.header("user-agent"),
            Some(castoff_registry::USER_AGENT)
        );
    }
    let second = other.requests();
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].header("authorization"),
        None,
        "Authorization leaked to another origin"
    );
}

#[test]
fn server_errors_are_retried_with_retry_after_and_client_errors_are_not() {
    let flaky = StandIn::start(|_, index| match index {
        0 => (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0".into(),
            String::new(),
        ),
        1 => (
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1".into(),
            String::new(),
        ),
        _ => ("HTTP/1.1 200 OK".into(), r#"{"username":"ci"}"#.into()),
    });
    let started = std::time::Instant::now();
    assert_eq!(npm_client(&flaky.url).whoami().unwrap(), "ci");
    assert_eq!(flaky.requests().len(), 3);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );

    let refusing = StandIn::start(|_, _| {
        (
            "HTTP/1.1 400 Bad Request".into(),
            r#"{"error":"no"}"#.into(),
        )
    });
    let error = npm_client(&refusing.url).whoami().unwrap_err();
    assert_eq!(refusing.requests().len(), 1);
    assert!(!format!("{error} {error:?}").contains(TOKEN));
}

#[test]
fn a_failed_upload_is_checked_before_it_is_retried() {
    let dir = std::env::temp_dir().join(format!("castoff-registry-retry-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let tarball = NpmTarball::open(&write_npm_tarball(&dir, "retry-check", "1.0.0", "x")).unwrap();
    let integrity = tarball.integrity.clone();
    // The PUT "fails" with a 502 although the registry stored the version (a proxy timed out):
    // the client must find it in the packument and not PUT again.
    let registry = StandIn::start(move |request, _| {
        match request.method.as_str() {
        "PUT" => ("HTTP/1.1 502 Bad Gateway".into(), String::new()),
        _ => (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json".into(),
            serde_json::json!({"name": "retry-check", "versions": {"1.0.0": {"dist": {"integrity": integrity}}}}).to_string(),
        ),
    }
    });
    let outcome = npm_client(&registry.url).upload(&tarball, None).unwrap();
    assert_eq!(outcome.kind, UploadKind::AlreadyPresent);
    let methods: Vec<String> = registry
        .requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["PUT", "GET"]);
    // The streamed document is valid JSON carrying the tarball as base64.
    let put = &registry.requests()[0];
    let document: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
    use base64::Engine as _;
    let data = document["_attachments"]["retry-check-1.0.0.tgz"]["data"]
        .as_str()
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        std::fs::read(&tarball.path).unwrap()
    );
    assert_eq!(
        document["versions"]["1.0.0"]["dist"]["integrity"],
        tarball.integrity.as_str()
    );
    assert_eq!(document["dist-tags"]["latest"], "1.0.0");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PyPI Trusted Publishing against a stand-in for GitHub's token endpoint and warehouse's
/// audience / mint-token routes (request and response shapes of the reference).
#[test]
fn pypi_trusted_publishing_exchange() {
    let server = StandIn::start(|request, _| {
        let ok = |body: &str| {
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json".to_owned(),
                body.to_owned(),
            )
        };
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/_/oidc/audience") => ok(r#"{"audience":"testpypi"}"#),
            ("GET", "/github/idtoken?api-version=2.0&audience=testpypi") if request.header("authorization") == Some("Bearer request-secret") => {
                ok(r#"{"value":"jwt-secret"}"#)
            }
            ("POST", "/_/oidc/mint-token") if request.body == br#"{"token":"jwt-secret"}"# => {
                ok(r#"{"success":true,"token":"pypi-minted-secret","expires":1}"#)
            }
            _ => ("HTTP/1.1 422 Unprocessable Entity".into(), r#"{"message":"Token request failed","errors":[{"code":"invalid-token","description":"bad"}]}"#.into()),
        }
    });
    let oidc = GithubOidc {
        request_url: Url::parse(&format!("{}/github/idtoken?api-version=2.0", server.url)).unwrap(),
        request_token: Secret::new("request-secret"),
    };
    let upload = Url::parse(&format!("{}/legacy/", server.url)).unwrap();
    let token = trusted_publishing_token(&http(), &upload, &oidc).unwrap();
    assert_eq!(token.expose(), "pypi-minted-secret");
    assert_eq!(server.requests().len(), 3);

    let wrong = GithubOidc {
        request_token: Secret::new("wrong-secret"),
        ..oidc
    };
    let error = trusted_publishing_token(&http(), &upload, &wrong).unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("invalid-token: bad") && text.contains("id-token: write"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-secret") && !text.contains("request-secret"),
        "{text}"
    );
}

#[test]
fn npm_token_exchange() {
    let server = StandIn::start(|request, _| {
        if request.method == "POST"
            && request.target == "/-/npm/v1/oidc/token/exchange/package/@acme%2ftool"
            && request.header("authorization") == Some("Bearer id-token-secret")
        {
            (
                "HTTP/1.1 201 Created\r\nContent-Type: application/json".into(),
                r#"{"token":"npm-publish-secret"}"#.into(),
            )
        } else {
            (
                "HTTP/1.1 401 Unauthorized".into(),
                r#"{"message":"no trusted publisher"}"#.into(),
            )
        }
    });
    let registry = Url::parse(&format!("{}/", server.url)).unwrap();
    let token = oidc_token_exchange(
        &http(),
        &registry,
        "@acme/tool",
        &Secret::new("id-token-secret"),
    )
    .unwrap();
    assert_eq!(token.expose(), "npm-publish-secret");
    let error = oidc_token_exchange(
        &http(),
        &registry,
        "@acme/tool",
        &Secret::new("other-secret"),
    )
    .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("no trusted publisher") && !text.contains("other-secret"),
        "{text}"
    );
    assert_eq!(
        castoff_registry::npm::oidc_audience(&registry),
        "npm:127.0.0.1"
    );
}

/// A token minted by Trusted Publishing that the index or registry then refuses: the hint
/// names Trusted Publishing and where its ID token came from, never a token. (No server of
/// the harness speaks OIDC; the refusals of every other source are proven against the real
/// ones in castoff's `live::credential_hints`.)
#[test]
fn a_refused_trusted_publishing_token_is_named_as_such() {
    use castoff_registry::connect::{NpmDestination, PypiDestination, Sources};
    use castoff_registry::npm::Npmrc;
    let server = StandIn::start(|request, _| {
        let ok = |body: &str| {
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json".to_owned(),
                body.to_owned(),
            )
        };
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/_/oidc/audience") => ok(r#"{"audience":"pypi"}"#),
            ("GET", "/github/idtoken?api-version=2.0&audience=pypi") => {
                ok(r#"{"value":"jwt-secret"}"#)
            }
            ("POST", "/_/oidc/mint-token") => {
                ok(r#"{"success":true,"token":"pypi-minted-secret"}"#)
            }
            ("POST", "/-/npm/v1/oidc/token/exchange/package/tool") => (
                "HTTP/1.1 201 Created\r\nContent-Type: application/json".into(),
                r#"{"token":"npm-minted-secret"}"#.into(),
            ),
            // The upload URL's credential check, npm's whoami: the minted tokens are refused.
            ("POST", "/legacy/") => (
                "HTTP/1.1 403 Forbidden".into(),
                "Invalid API Token: project-scoped token is not valid for this project".into(),
            ),
            _ => (
                "HTTP/1.1 401 Unauthorized".into(),
                r#"{"error":"not you"}"#.into(),
            ),
        }
    });
    let oidc = GithubOidc {
        request_url: Url::parse(&format!("{}/github/idtoken?api-version=2.0", server.url)).unwrap(),
        request_token: Secret::new("request-secret"),
    };
    let environment: std::collections::BTreeMap<String, String> =
        [("NPM_ID_TOKEN".to_owned(), "npm-id-secret".to_owned())].into();
    let sources = Sources {
        environment: &environment,
        oidc: Some(&oidc),
    };
    let upload_url = format!("{}/legacy/", server.url);
    let index_url = format!("{}/simple/", server.url);
    let pypi = castoff_registry::connect::pypi(
        &http(),
        sources,
        &PypiDestination {
            url: Some(&upload_url),
            index_url: Some(&index_url),
            sole_destination: true,
            ..PypiDestination::default()
        },
    )
    .expect_err("the index refuses the minted token");
    let npm = castoff_registry::connect::npm(
        &http(),
        sources,
        &Npmrc::default(),
        &NpmDestination {
            package: "tool",
            url: Some(&format!("{}/", server.url)),
            sole_destination: true,
        },
    )
    .expect_err("the registry refuses the minted token");
    for (error, source) in [
        (
            pypi,
            "the index rejected the credentials from Trusted Publishing (a token minted from the GitHub Actions OIDC token): ",
        ),
        (
            npm,
            "the registry rejected the credentials from Trusted Publishing (a token minted from NPM_ID_TOKEN): ",
        ),
    ] {
        let text = castoff_test_support::with_hint(&error, error.hint());
        assert!(text.contains(source), "{text}");
        for secret in [
            "request-secret",
            "jwt-secret",
            "pypi-minted-secret",
            "npm-id-secret",
            "npm-minted-secret",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// crates.io trusted publishing against a stand-in for GitHub's token endpoint and crates.io's
/// `/api/v1/trusted_publishing/tokens` (mint with `{"jwt": …}`, revoke with the token as
/// Bearer), through a client of a registry whose `config.json` names the stand-in as `api`.
#[test]
fn crates_io_trusted_publishing_mints_and_revokes() {
    use castoff_registry::crates::{CratesClient, CratesRegistry, trusted_publishing_token};
    let server = StandIn::start(|request, _| {
        let ok = |body: &str| {
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json".to_owned(),
                body.to_owned(),
            )
        };
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/index/config.json") => ok(&format!(
                r#"{{"dl":"{0}/dl","api":"{0}"}}"#,
                request
                    .header("host")
                    .map(|host| format!("http://{host}"))
                    .unwrap_or_default()
            )),
            ("GET", "/github/idtoken?api-version=2.0&audience=crates.io")
                if request.header("authorization") == Some("Bearer request-secret") =>
            {
                ok(r#"{"value":"jwt-secret"}"#)
            }
            ("POST", "/api/v1/trusted_publishing/tokens")
                if request.body == br#"{"jwt":"jwt-secret"}"# =>
            {
                ok(r#"{"token":"crates-minted-secret"}"#)
            }
            ("DELETE", "/api/v1/trusted_publishing/tokens")
                if request.header("authorization") == Some("Bearer crates-minted-secret") =>
            {
                ("HTTP/1.1 204 No Content".into(), String::new())
            }
            _ => (
                "HTTP/1.1 400 Bad Request".into(),
                r#"{"errors":[{"detail":"no trusted publisher for this workflow"}]}"#.into(),
            ),
        }
    });
    let oidc = GithubOidc {
        request_url: Url::parse(&format!("{}/github/idtoken?api-version=2.0", server.url)).unwrap(),
        request_token: Secret::new("request-secret"),
    };
    let registry =
        CratesRegistry::new("crates-io", &format!("sparse+{}/index/", server.url)).unwrap();
    let client = CratesClient::connect(&http(), registry, None).unwrap();
    assert!(!client.has_token());
    let token = trusted_publishing_token(&http(), &client.config().api, &oidc).unwrap();
    assert_eq!(token.expose(), "crates-minted-secret");
    let client = client.with_token(
        token,
        castoff_registry::CredentialSource::TrustedPublishing {
            id_token: castoff_registry::connect::GITHUB_OIDC.to_owned(),
        },
    );
    assert!(client.revoke_trusted_token().unwrap());
    let seen: Vec<String> = server
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.target))
        .collect();
    assert_eq!(
        seen,
        [
            "GET /index/config.json",
            "GET /github/idtoken?api-version=2.0&audience=crates.io",
            "POST /api/v1/trusted_publishing/tokens",
            "DELETE /api/v1/trusted_publishing/tokens",
        ]
    );
    // A token from a file or variable is never revoked.
    let configured = CratesClient::connect(
        &http(),
        CratesRegistry::new("crates-io", &format!("sparse+{}/index/", server.url)).unwrap(),
        Some((
            Secret::new("configured-secret"),
            castoff_registry::CredentialSource::variables(["CARGO_REGISTRY_TOKEN"]),
        )),
    )
    .unwrap();
    assert!(!configured.revoke_trusted_token().unwrap());

    let wrong = GithubOidc {
        request_token: Secret::new("wrong-secret"),
        ..oidc
    };
    let error = trusted_publishing_token(&http(), &client.config().api, &wrong).unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains("wrong-secret"), "{text}");
}
