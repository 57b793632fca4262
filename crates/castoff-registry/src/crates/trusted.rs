//! crates.io trusted publishing: the CI's ID token (audience `crates.io`) is exchanged at
//! `POST {api}/api/v1/trusted_publishing/tokens` (`{"jwt": …}` → `{"token": …}`) for a
//! short-lived publish token, which `DELETE {api}/api/v1/trusted_publishing/tokens` revokes
//! once the run is over.

use reqwest::{Method, Url};

use crate::error::{RegistryError, display_url};
use crate::http::{Authorization, Body, HttpClient, Request, RetryDecision, Sent, status_error};
use crate::oidc::{GithubOidc, json_string_field};
use crate::secret::Secret;

/// The audience crates.io expects in the ID token.
pub const CRATES_IO_AUDIENCE: &str = "crates.io";

fn tokens_url(api: &Url) -> Result<Url, RegistryError> {
    let base = format!("{}/", api.as_str().trim_end_matches('/'));
    Url::parse(&base)
        .and_then(|base| base.join("api/v1/trusted_publishing/tokens"))
        .map_err(|error| RegistryError::Config {
            what: "crates.io trusted publishing".to_owned(),
            message: error.to_string(),
            hint: "check the registry's config.json (`api`)".to_owned(),
        })
}

/// Exchanges an ID token from `oidc` for a publish token at the registry's `api`.
pub fn trusted_publishing_token(
    http: &HttpClient,
    api: &Url,
    oidc: &GithubOidc,
) -> Result<Secret, RegistryError> {
    let what = "crates.io trusted publishing";
    http.check_url(api, "Cargo registry API")?;
    let url = tokens_url(api)?;
    let id_token = oidc.id_token(http, CRATES_IO_AUDIENCE)?;
    let payload = serde_json::json!({ "jwt": id_token.expose() })
        .to_string()
        .into_bytes();
    let request = Request::new(Method::POST, url.clone())
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(Body::Bytes(payload));
    // An ID token is single-use: never sent twice.
    let mut hook = |_: &crate::http::FailedAttempt| Ok(RetryDecision::Stop);
    let response = match http.send(&request, what, &mut hook)? {
        Sent::Response { response, .. } => response,
        Sent::Stopped { .. } => {
            return Err(RegistryError::Transport {
                artifact: what.to_owned(),
                method: "POST".to_owned(),
                url: display_url(&url),
                reason: "the token exchange failed and an ID token cannot be used twice".to_owned(),
                attempts: 1,
                hint: "run publish again".to_owned(),
            });
        }
    };
    if !response.status().is_success() {
        return Err(status_error(
            what,
            &Method::POST,
            &url,
            response,
            "configure the crate's trusted publisher on crates.io (Settings → Trusted Publishing: this repository and workflow); the first version of a new crate must be published with a token",
        ));
    }
    let body = crate::http::read_answer(response, 64 * 1024, what, &Method::POST, &url)?;
    json_string_field(&body, "token")
        .map(Secret::new)
        .ok_or_else(|| RegistryError::Protocol {
            artifact: what.to_owned(),
            url: display_url(&url),
            message: "no `token` in the answer".to_owned(),
            hint: "run publish again".to_owned(),
        })
}

/// Revokes a token [`trusted_publishing_token`] minted (it would expire on its own within
/// the half hour).
pub fn revoke_trusted_publishing_token(
    http: &HttpClient,
    api: &Url,
    token: &Secret,
) -> Result<(), RegistryError> {
    let what = "crates.io trusted publishing token";
    let url = tokens_url(api)?;
    let auth = Authorization::bearer(&url, token);
    let request = Request::new(Method::DELETE, url.clone()).auth(Some(&auth));
    let (response, _) = http.send_simple(&request, what)?;
    if !response.status().is_success() {
        return Err(status_error(
            what,
            &Method::DELETE,
            &url,
            response,
            "it expires on its own within 30 minutes",
        ));
    }
    Ok(())
}
