//! crates.io trusted publishing: the CI's ID token (audience `crates.io`) is exchanged at
//! `POST {api}/api/v1/trusted_publishing/tokens` (`{"jwt": …}` → `{"token": …}`) for a
//! short-lived publish token, which `DELETE {api}/api/v1/trusted_publishing/tokens` revokes
//! once the run is over.

use reqwest::{Method, Url};

use crate::error::RegistryError;
use crate::http::{Authorization, HttpClient, Request, status_error};
use crate::oidc::GithubOidc;
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
    crate::oidc::exchange_id_token(
        http,
        &url,
        &serde_json::json!({ "jwt": id_token.expose() }),
        what,
        "configure the crate's trusted publisher on crates.io (Settings → Trusted Publishing: this repository and workflow); the first version of a new crate must be published with a token",
    )
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
