//! GitHub Actions OIDC: the ID token that Trusted Publishing (PyPI) and npm trusted publishing
//! exchange for a short-lived upload token.

use reqwest::{Method, Url};

use crate::env::{self, Environment};
use crate::error::{RegistryError, display_url};
use crate::http::{
    Authorization, Body, FailedAttempt, HttpClient, Request, RetryDecision, Sent, status_error,
};
use crate::secret::Secret;

/// The job's OIDC token endpoint, present only when the workflow has `permissions:
/// id-token: write` (never for pull requests from forks).
#[derive(Debug, Clone)]
pub struct GithubOidc {
    pub request_url: Url,
    pub request_token: Secret,
}

impl GithubOidc {
    /// From `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; `None` when
    /// either is missing (not in GitHub Actions, or no `id-token: write`).
    pub fn from_env(environment: &dyn Environment) -> Option<GithubOidc> {
        let url = environment.var(env::ACTIONS_ID_TOKEN_REQUEST_URL)?;
        let token = environment.var(env::ACTIONS_ID_TOKEN_REQUEST_TOKEN)?;
        Some(GithubOidc {
            request_url: Url::parse(&url).ok()?,
            request_token: Secret::new(token),
        })
    }

    /// `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<audience>` with the request token as
    /// Bearer → `{"value": "<JWT>"}`.
    pub fn id_token(&self, http: &HttpClient, audience: &str) -> Result<Secret, RegistryError> {
        let what = format!("OIDC ID token for audience `{audience}`");
        http.check_url(&self.request_url, "ACTIONS_ID_TOKEN_REQUEST_URL")?;
        let mut url = self.request_url.clone();
        url.query_pairs_mut().append_pair("audience", audience);
        let auth = Authorization::bearer(&url, &self.request_token);
        let request = Request::new(Method::GET, url.clone())
            .header("Accept", "application/json")
            .auth(Some(&auth));
        let (response, _) = http.send_simple(&request, &what)?;
        if !response.status().is_success() {
            return Err(status_error(
                &what,
                &Method::GET,
                &url,
                response,
                "the workflow job needs `permissions: id-token: write`",
            ));
        }
        let body = crate::http::read_answer(response, 64 * 1024, &what, &Method::GET, &url)?;
        json_string_field(&body, "value")
            .map(Secret::new)
            .ok_or_else(|| RegistryError::Protocol {
                artifact: what,
                url: display_url(&url),
                message: "the answer has no `value` field".to_owned(),
                hint:
                    "this is not GitHub's OIDC token endpoint; check ACTIONS_ID_TOKEN_REQUEST_URL"
                        .to_owned(),
            })
    }
}

/// A string field of a JSON object body.
pub(crate) fn json_string_field(body: &str, field: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

/// Exchanges an ID token for a registry's short-lived token: `POST url` with the JSON
/// `payload`, which carries the ID token, answered by `{"token": …}`. An ID token is
/// single-use, so the request is never sent twice; a refusal carries `refused_hint`.
pub(crate) fn exchange_id_token(
    http: &HttpClient,
    url: &Url,
    payload: &serde_json::Value,
    what: &str,
    refused_hint: &str,
) -> Result<Secret, RegistryError> {
    let request = Request::new(Method::POST, url.clone())
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(Body::Bytes(payload.to_string().into_bytes()));
    let mut hook = |_: &FailedAttempt| Ok(RetryDecision::Stop);
    let response = match http.send(&request, what, &mut hook)? {
        Sent::Response { response, .. } => response,
        Sent::Stopped { .. } => {
            return Err(RegistryError::Transport {
                artifact: what.to_owned(),
                method: "POST".to_owned(),
                url: display_url(url),
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
            url,
            response,
            refused_hint,
        ));
    }
    let body = crate::http::read_answer(response, 64 * 1024, what, &Method::POST, url)?;
    json_string_field(&body, "token")
        .map(Secret::new)
        .ok_or_else(|| RegistryError::Protocol {
            artifact: what.to_owned(),
            url: display_url(url),
            message: "no `token` in the answer".to_owned(),
            hint: "run publish again".to_owned(),
        })
}
