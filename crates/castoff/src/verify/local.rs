//! `verify --dist`: before publishing, dist/ served on 127.0.0.1 as the registries the clients
//! know (castoff-registry's `serve` answers; this module lays the routes out): a PEP 503
//! simple index of the wheels and sdists, a read-only npm registry (one packument per package,
//! from the `package.json` in its tarball, and the tarballs), and a pull-only OCI distribution
//! registry of each app's image layout. Every file was checked against the manifest first.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Context as _;
use castoff_plan::{ArtifactKind, Manifest};
use castoff_registry::npm::NpmTarball;
use castoff_registry::serve::{Body, Route, StaticServer, bind_loopback};

/// Largest image manifest or index read from a layout.
const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// The running local registries; dropping it stops them.
#[derive(Debug)]
pub(super) struct LocalIndex {
    _server: StaticServer,
    pub(super) pypi_index: String,
    pub(super) npm_registry: String,
    /// Image reference (`127.0.0.1:PORT/app:TAG`) by app.
    pub(super) images: BTreeMap<String, String>,
}

fn route(content_type: &str, body: Body) -> Route {
    Route {
        content_type: content_type.to_owned(),
        headers: Vec::new(),
        body,
    }
}

/// Serves `dist_dir` (already verified against `manifest`).
pub(super) fn serve(manifest: &Manifest, dist_dir: &Path) -> anyhow::Result<LocalIndex> {
    let listener = bind_loopback().context("could not listen on 127.0.0.1")?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();

    // PyPI: /simple/<project>/ links /files/<file>#sha256=…
    let mut projects: BTreeMap<String, String> = BTreeMap::new();
    for artifact in &manifest.artifacts {
        if !matches!(artifact.kind, ArtifactKind::Wheel | ArtifactKind::Sdist) {
            continue;
        }
        let (Some(path), Some(sha256)) = (&artifact.path, &artifact.sha256) else {
            continue;
        };
        let Some(python) = manifest.app(&artifact.app).and_then(|a| a.python.as_ref()) else {
            continue;
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        let project = castoff_registry::pypi::normalize_project_name(&python.name);
        projects.entry(project).or_default().push_str(&format!(
            "<a href=\"/files/{file}#sha256={sha256}\">{file}</a><br>\n"
        ));
        routes.insert(
            format!("/files/{file}"),
            route("application/octet-stream", Body::File(dist_dir.join(path))),
        );
    }
    for (project, links) in &projects {
        routes.insert(
            format!("/simple/{project}/"),
            route(
                "text/html",
                Body::Bytes(
                    format!("<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n").into_bytes(),
                ),
            ),
        );
    }

    // npm: /npm/<name> is the packument, /npm-files/<file> the tarball.
    for artifact in &manifest.artifacts {
        if !matches!(
            artifact.kind,
            ArtifactKind::NpmPlatform | ArtifactKind::NpmLauncher
        ) {
            continue;
        }
        let Some(path) = &artifact.path else { continue };
        let full = dist_dir.join(path);
        let tarball = NpmTarball::open(&full).map_err(|error| {
            anyhow::anyhow!(crate::hint::render_with(&error, crate::hint::LIST_HINT))
        })?;
        let file = path.rsplit('/').next().unwrap_or(path);
        let mut version = tarball.package_json.clone();
        version.insert(
            "dist".to_owned(),
            serde_json::json!({
                "tarball": format!("{base}/npm-files/{file}"),
                "integrity": tarball.integrity,
                "shasum": tarball.shasum,
            }),
        );
        let packument = serde_json::json!({
            "name": tarball.name,
            "dist-tags": { tarball.default_dist_tag(): tarball.version },
            "versions": { tarball.version.clone(): version },
        });
        routes.insert(
            format!("/npm/{}", tarball.name),
            route(
                "application/json",
                Body::Bytes(serde_json::to_vec(&packument)?),
            ),
        );
        routes.insert(
            format!("/npm-files/{file}"),
            route("application/octet-stream", Body::File(full)),
        );
    }

    // Images: /v2/<app>/manifests/<tag or digest>, /v2/<app>/blobs/<digest>.
    let mut images = BTreeMap::new();
    for artifact in &manifest.artifacts {
        if artifact.kind != ArtifactKind::OciIndex {
            continue;
        }
        let Some(path) = &artifact.path else { continue };
        let Some(app) = manifest.app(&artifact.app) else {
            continue;
        };
        let repository = app.name.to_ascii_lowercase();
        let layout = dist_dir.join(path);
        let tags = app
            .oci
            .as_ref()
            .map(|oci| oci.tags.clone())
            .unwrap_or_default();
        add_layout(&mut routes, &layout, &repository, &tags)?;
        let tag = if tags.contains(&app.version) {
            app.version.clone()
        } else {
            tags.first().cloned().unwrap_or_else(|| app.version.clone())
        };
        images.insert(app.name.clone(), format!("{address}/{repository}:{tag}"));
    }
    if !images.is_empty() {
        routes.insert(
            "/v2/".to_owned(),
            route("application/json", Body::Bytes(b"{}".to_vec())),
        );
    }

    let server =
        StaticServer::start(listener, routes).context("could not start the local index")?;
    Ok(LocalIndex {
        _server: server,
        pypi_index: format!("{base}/simple/"),
        npm_registry: format!("{base}/npm/"),
        images,
    })
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let size = fs::metadata(path)
        .with_context(|| format!("could not read {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= MANIFEST_LIMIT,
        "{} is {size} bytes, more than an image manifest may be",
        path.display()
    );
    let text = fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Every blob of `layout`, every manifest and index by digest (with its media type), and the
/// layout's tagged index under each of `tags`.
fn add_layout(
    routes: &mut BTreeMap<String, Route>,
    layout: &Path,
    repository: &str,
    tags: &[String],
) -> anyhow::Result<()> {
    let blobs = layout.join("blobs/sha256");
    for entry in
        fs::read_dir(&blobs).with_context(|| format!("could not list {}", blobs.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        routes.insert(
            format!("/v2/{repository}/blobs/sha256:{name}"),
            route("application/octet-stream", Body::File(entry.path())),
        );
    }
    let index = read_json(&layout.join("index.json"))?;
    let mut pending: Vec<(serde_json::Value, bool)> = index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|descriptor| (descriptor, true))
        .collect();
    while let Some((descriptor, top)) = pending.pop() {
        let (Some(media_type), Some(digest)) = (
            descriptor["mediaType"].as_str(),
            descriptor["digest"].as_str(),
        ) else {
            continue;
        };
        if !(media_type.contains("manifest") || media_type.contains("index")) {
            continue;
        }
        let Some(hex) = digest.strip_prefix("sha256:") else {
            continue;
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let blob = blobs.join(hex);
        let manifest_route = Route {
            content_type: media_type.to_owned(),
            headers: vec![("Docker-Content-Digest".to_owned(), digest.to_owned())],
            body: Body::File(blob.clone()),
        };
        routes.insert(
            format!("/v2/{repository}/manifests/{digest}"),
            manifest_route.clone(),
        );
        if top {
            for tag in tags {
                routes.insert(
                    format!("/v2/{repository}/manifests/{tag}"),
                    manifest_route.clone(),
                );
            }
        }
        if media_type.contains("index") {
            let nested = read_json(&blob)?;
            for child in nested["manifests"].as_array().cloned().unwrap_or_default() {
                pending.push((child, false));
            }
        }
    }
    Ok(())
}
