//! What `castoff yank` asks of an image registry: the repository's tags, and a floating tag
//! moved to the manifest another tag serves (the same bytes PUT under the floating tag).

use castoff_archive::oci::{Digest, INDEX_MEDIA_TYPE};
use reqwest::{Method, StatusCode};

use super::{ManifestBlob, OciClient};
use crate::error::{RegistryError, display_url};

/// Pages of `tags/list` castoff follows, and tags it asks for per page.
const MAX_TAG_PAGES: usize = 100;
const TAGS_PER_PAGE: usize = 1000;

impl OciClient {
    /// Every tag of the repository (`GET /v2/<name>/tags/list`, following `Link` pages);
    /// empty for a repository the registry does not know.
    pub fn tags(&self) -> Result<Vec<String>, RegistryError> {
        let artifact = self.artifact(" tags");
        let mut tags = Vec::new();
        let mut url = self.url("tags/list");
        url.query_pairs_mut()
            .append_pair("n", &TAGS_PER_PAGE.to_string());
        for _ in 0..MAX_TAG_PAGES {
            let request_url = url.clone();
            let response = self.execute(&artifact, true, &|auth| {
                crate::http::Request::new(Method::GET, request_url.clone())
                    .header("Accept", "application/json")
                    .auth(auth)
            })?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !response.status().is_success() {
                return Err(self.error(
                    &artifact,
                    &Method::GET,
                    &url,
                    response,
                    "check the repository name",
                ));
            }
            let next = crate::http::header(&response, "link").and_then(|link| {
                let target = link.split_once('<')?.1.split_once('>')?.0.to_owned();
                url.join(&target).ok()
            });
            let body = crate::http::read_answer(
                response,
                16 * 1024 * 1024,
                &artifact,
                &Method::GET,
                &url,
            )?;
            let json: serde_json::Value =
                serde_json::from_str(&body).map_err(|error| RegistryError::Protocol {
                    artifact: artifact.clone(),
                    url: display_url(&url),
                    message: format!("the tag list is not JSON: {error}"),
                    hint: "check that the URL is an OCI registry".to_owned(),
                })?;
            tags.extend(
                json.get("tags")
                    .and_then(|tags| tags.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|tag| tag.as_str().map(str::to_owned)),
            );
            match next {
                // Only pages of the same registry: a Link elsewhere is not followed.
                Some(next) if next.origin() == url.origin() => url = next,
                _ => return Ok(tags),
            }
        }
        Ok(tags)
    }

    /// Points `tag` at what `source` (a tag or digest) serves, by PUTting the same manifest
    /// bytes under `tag`; returns the digest it now serves.
    pub fn retag(&self, source: &str, tag: &str) -> Result<Digest, RegistryError> {
        let Some((digest, bytes)) = self.fetch_manifest(source)? else {
            return Err(RegistryError::Protocol {
                artifact: self.artifact(&format!(":{source}")),
                url: display_url(&self.url(&format!("manifests/{source}"))),
                message: format!("the registry serves nothing under {source}"),
                hint: "run the command again: it re-reads the registry".to_owned(),
            });
        };
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|json| json.get("mediaType")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| INDEX_MEDIA_TYPE.to_owned());
        let manifest = ManifestBlob {
            digest: digest.clone(),
            media_type,
            bytes,
            children: Vec::new(),
            blobs: Vec::new(),
        };
        self.put_manifest(&manifest, tag)?;
        Ok(digest)
    }
}
