//! `Debug` of every configuration and client type that can hold a credential redacts it: the
//! types are built from configuration text and credentials holding a marker secret, and the
//! marker must not appear in any `{:?}` / `{:#?}` rendering.

use std::collections::BTreeMap;
use std::path::Path;

use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry, Npmrc};
use castoff_registry::oci::{DockerConfig, OciClient, OciCredentials, OciRepository, PushOptions};
use castoff_registry::pypi::{PypiClient, PypiCredentials, PypiRepository, Pypirc};
use castoff_registry::{HttpClient, HttpConfig, Secret};

const MARKER: &str = "s3cr3t-M4RK3R";

fn assert_redacted(what: &str, value: &impl std::fmt::Debug) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!text.contains(MARKER), "{what} shows the secret: {text}");
    }
}

fn secret() -> Secret {
    Secret::new(MARKER.to_owned())
}

#[test]
fn debug_of_every_type_holding_a_credential_redacts_it() {
    let environment = BTreeMap::from([("NPM_TOKEN".to_owned(), MARKER.to_owned())]);
    let npmrc = Npmrc::parse(
        &format!(
            "//127.0.0.1:4873/:_authToken=${{NPM_TOKEN}}\n//r.example.com/:_password={MARKER}\n_auth={MARKER}\n"
        ),
        &environment,
    )
    .unwrap();
    assert_redacted("Npmrc", &npmrc);

    let pypirc = Pypirc::parse(&format!(
        "[distutils]\nindex-servers = local\n[local]\nrepository = http://127.0.0.1:8080/\nusername = ci\npassword = {MARKER}\n"
    ))
    .unwrap();
    assert_redacted("Pypirc", &pypirc);
    assert_redacted("PypircRepository", &pypirc.repository("local"));

    let encoded = "Y2k6czNjcjN0LU00UktTM1I="; // base64("ci:s3cr3t-M4RKS3R"): not the marker
    let docker = DockerConfig::parse(
        &format!(
            "{{\"auths\":{{\"127.0.0.1:5000\":{{\"auth\":\"{encoded}\",\"identitytoken\":\"{MARKER}\",\"password\":\"{MARKER}\"}}}}}}"
        ),
        Path::new("config.json"),
    )
    .unwrap();
    assert_redacted("DockerConfig", &docker);

    let http = HttpClient::new(HttpConfig::default()).unwrap();
    assert_redacted("HttpClient", &http);

    let pypi_credentials = [
        PypiCredentials::Token(secret()),
        PypiCredentials::Password {
            username: "ci".to_owned(),
            password: secret(),
        },
    ];
    for credentials in pypi_credentials {
        assert_redacted("PypiCredentials", &credentials);
        let repository = PypiRepository::new("http://127.0.0.1:8080/", None, credentials).unwrap();
        assert_redacted("PypiRepository", &repository);
        let client = PypiClient::new(&http, repository).unwrap();
        assert_redacted("PypiClient", &client);
    }

    let npm_credentials = [
        NpmCredentials::Token(secret()),
        NpmCredentials::Basic {
            username: "ci".to_owned(),
            password: secret(),
        },
        NpmCredentials::LegacyAuth(secret()),
    ];
    for credentials in npm_credentials {
        assert_redacted("NpmCredentials", &credentials);
        let registry = NpmRegistry::new("http://127.0.0.1:4873/", credentials).unwrap();
        assert_redacted("NpmRegistry", &registry);
        let client = NpmClient::new(&http, registry).unwrap();
        assert_redacted("NpmClient", &client);
    }

    let oci_credentials = [
        OciCredentials::Basic {
            username: "ci".to_owned(),
            password: secret(),
        },
        OciCredentials::IdentityToken(secret()),
    ];
    for credentials in oci_credentials {
        assert_redacted("OciCredentials", &credentials);
        let repository = OciRepository::parse("127.0.0.1:5000/acme/greeter").unwrap();
        let client =
            OciClient::new(&http, repository, credentials, PushOptions::default()).unwrap();
        assert_redacted("OciClient", &client);
    }

    // Credentials written into a repository reference never reach an error message.
    let error =
        OciRepository::parse(&format!("ci:{MARKER}@127.0.0.1:5000/acme/greeter")).unwrap_err();
    assert_redacted("OciRepository::parse error", &error);
    assert!(!error.to_string().contains(MARKER), "{error}");
}
