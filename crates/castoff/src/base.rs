//! Base images from registries: before `dist` builds anything, every app whose base is a
//! digest-pinned reference (`base = "registry/repo@sha256:…"`) has that image pulled into the
//! base cache, an OCI image layout under the target directory
//! ([`castoff_oci::base_cache_dir`]) that castoff-oci then reads like any layout base.
//!
//! - Content-addressed: blobs are shared between bases; a blob already in the cache is
//!   re-hashed and, when it matches its name, never fetched again. With everything cached no
//!   connection is opened at all (the client is created on the first missing blob), so `dist`
//!   works offline after one pull and stays the only network access of `dist`.
//! - Of an index, only the platform manifests the app's Linux targets need are pulled;
//!   attestation entries (`unknown/unknown`) and artifacts are skipped.
//! - Every write goes through a temporary file and a rename; a damaged cached blob is
//!   detected by its hash and fetched again.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::hint::Hinted;
use anyhow::{Context as _, bail};
use castoff_archive::digest;
use castoff_archive::oci::{
    Descriptor, Digest, INDEX_MEDIA_TYPE, LAYOUT_MARKER, Platform, REF_NAME_ANNOTATION,
    is_index_media_type, manifest_media_type,
};
use castoff_plan::Release;
use castoff_plan::plan::BaseImage;
use castoff_plan::target::OciPlatform;
use castoff_registry::env::{Environment, ProcessEnvironment};
use castoff_registry::oci::{OciClient, PinnedReference};
use castoff_registry::{HttpClient, HttpConfig};
use serde_json::{Value, json};

/// How deep nested indexes are followed.
const MAX_INDEX_DEPTH: usize = 4;

/// Where and how bases are pulled.
#[derive(Debug, Clone)]
pub(crate) struct PullOptions {
    /// The base cache (default [`castoff_oci::base_cache_dir`] of the release's target dir).
    pub cache_dir: PathBuf,
    pub http: HttpConfig,
}

impl PullOptions {
    /// The default cache of `release`, transport settings from the environment.
    pub(crate) fn for_release(release: &Release) -> PullOptions {
        PullOptions {
            cache_dir: castoff_oci::base_cache_dir(&release.target_directory),
            http: HttpConfig::from_env(),
        }
    }
}

/// One registry base, present in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PulledBase {
    /// The reference as configured (`registry/repo[:tag]@sha256:…`).
    pub reference: String,
    /// The apps built on it.
    pub apps: Vec<String>,
    /// The cache layout; its `index.json` names the pinned digest with the reference.
    pub cache_dir: PathBuf,
    /// Manifests and blobs fetched by this call (0 when the cache held everything).
    pub fetched: usize,
    pub fetched_bytes: u64,
}

/// Pulls every registry base of `release` into the default cache, with credentials from the
/// environment (Docker config, `CASTOFF_OCI_USERNAME` / `CASTOFF_OCI_PASSWORD`, …).
pub(crate) fn pull_bases(release: &Release) -> anyhow::Result<Vec<PulledBase>> {
    pull_bases_with(
        release,
        &PullOptions::for_release(release),
        &ProcessEnvironment,
    )
}

/// Who needs one base: (apps, platforms they need, the registries those apps push to).
type Wanted = (Vec<String>, Vec<OciPlatform>, Vec<String>);

/// [`pull_bases`] with explicit options and environment.
pub(crate) fn pull_bases_with(
    release: &Release,
    options: &PullOptions,
    environment: &dyn Environment,
) -> anyhow::Result<Vec<PulledBase>> {
    let mut wanted: BTreeMap<&str, Wanted> = BTreeMap::new();
    for app in &release.apps {
        let Some(oci) = &app.oci else { continue };
        let BaseImage::Reference(reference) = &oci.base else {
            continue;
        };
        let platforms: Vec<OciPlatform> = app.targets.iter().filter_map(|t| t.oci).collect();
        if platforms.is_empty() {
            continue;
        }
        let (apps, needed, push_hosts) = wanted.entry(reference).or_default();
        apps.push(app.package.name.clone());
        if let Ok(push) = castoff_registry::oci::OciRepository::parse(&oci.repository) {
            push_hosts.push(push.host());
        }
        for platform in platforms {
            if !needed.contains(&platform) {
                needed.push(platform);
            }
        }
    }
    let mut pulled = Vec::new();
    // One transport for every base: what it learns (the scheme of a loopback registry
    // written without one) holds for the whole run.
    let transport = std::cell::OnceCell::new();
    for (reference, (apps, platforms, push_hosts)) in wanted {
        let mut puller = Puller {
            reference,
            cache: &options.cache_dir,
            http: &options.http,
            transport: &transport,
            environment,
            push_hosts,
            client: None,
            fetched: 0,
            fetched_bytes: 0,
        };
        puller.pull(&platforms).with_context(|| {
            format!(
                "could not pull the base image `{reference}` of {}",
                apps.iter()
                    .map(|app| format!("`{app}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        pulled.push(PulledBase {
            reference: reference.to_owned(),
            apps,
            cache_dir: options.cache_dir.clone(),
            fetched: puller.fetched,
            fetched_bytes: puller.fetched_bytes,
        });
    }
    Ok(pulled)
}

/// The pull of one reference.
struct Puller<'a> {
    reference: &'a str,
    cache: &'a Path,
    http: &'a HttpConfig,
    /// The run's HTTP client, made on the first cache miss of any base.
    transport: &'a std::cell::OnceCell<HttpClient>,
    environment: &'a dyn Environment,
    /// Registries the apps built on this base push to: `CASTOFF_OCI_USERNAME` /
    /// `CASTOFF_OCI_PASSWORD` reach the base's registry only when it is one of them.
    push_hosts: Vec<String>,
    /// Created on the first cache miss: a fully cached base opens no connection.
    client: Option<OciClient>,
    fetched: usize,
    fetched_bytes: u64,
}

impl Puller<'_> {
    fn pull(&mut self, platforms: &[OciPlatform]) -> anyhow::Result<()> {
        let pinned = PinnedReference::parse(self.reference)?;
        let blobs = self.cache.join("blobs").join("sha256");
        fs::create_dir_all(&blobs)
            .with_context(|| format!("could not create the base cache {}", blobs.display()))?;
        write_if_changed(&self.cache.join("oci-layout"), LAYOUT_MARKER)?;

        let (root, media_type) = self.manifest(&pinned.digest)?;
        let mut found = Vec::new();
        if is_index(&root, &media_type) {
            self.index(&root, 0, None, platforms, &mut found)?;
            let missing: Vec<String> = platforms
                .iter()
                .filter(|platform| !found.iter().any(|f| matches(f, platform)))
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                let available = available_platforms(&root);
                bail!(Hinted::new(
                    format!(
                        "it has no image for {} (it has: {})",
                        missing.join(", "),
                        if available.is_empty() {
                            "no images".to_owned()
                        } else {
                            available.join(", ")
                        }
                    ),
                    "pin an index that covers every Linux target of the app, or build images only for the targets it covers (`--target`)"
                ));
            }
        } else {
            self.image(&root)?;
        }
        self.add_to_index(&pinned.digest, &media_type, self.blob_size(&pinned.digest)?)
    }

    /// Walks an index: pulls the image manifests of the wanted platforms (and nested indexes),
    /// recording the platforms found.
    fn index(
        &mut self,
        index: &Value,
        depth: usize,
        parent_platform: Option<&Value>,
        platforms: &[OciPlatform],
        found: &mut Vec<Platform>,
    ) -> anyhow::Result<()> {
        if depth > MAX_INDEX_DEPTH {
            bail!("its indexes are nested more than {MAX_INDEX_DEPTH} levels deep");
        }
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let media_type = entry["mediaType"].as_str().unwrap_or_default();
            let platform = entry.get("platform").or(parent_platform);
            let stated = platform.map(Platform::from_json);
            // Buildx attestations sit in indexes as `unknown/unknown` manifests.
            if stated.as_ref().is_some_and(Platform::is_unknown) {
                continue;
            }
            if let Some(stated) = &stated
                && !platforms.iter().any(|wanted| matches(stated, wanted))
            {
                continue;
            }
            let digest: Digest = entry["digest"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(anyhow::Error::msg)?;
            if is_index_media_type(media_type) {
                let (nested, _) = self.manifest(&digest)?;
                self.index(&nested, depth + 1, platform, platforms, found)?;
            } else if media_type.contains("manifest") {
                let (manifest, _) = self.manifest(&digest)?;
                let config = self.image(&manifest)?;
                // Without a platform in the index, the config says what the image is for.
                let platform = stated.unwrap_or_else(|| Platform::from_json(&config));
                if platforms.iter().any(|wanted| matches(&platform, wanted)) {
                    found.push(platform);
                }
            }
            // Other media types (signatures, SBOMs) are not images.
        }
        Ok(())
    }

    /// Pulls the config and layers of an image manifest; returns the config.
    fn image(&mut self, manifest: &Value) -> anyhow::Result<Value> {
        let config = descriptor(&manifest["config"])?;
        self.blob(&config)?;
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            self.blob(&descriptor(layer)?)?;
        }
        let bytes = fs::read(self.path(&config.digest))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("its config {} is not JSON", config.digest))
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.cache.join("blobs").join("sha256").join(digest.hex())
    }

    fn client(&mut self) -> anyhow::Result<&OciClient> {
        if self.client.is_none() {
            let pinned = PinnedReference::parse(self.reference)?;
            let base_host = pinned.repository.host();
            let push_host = self
                .push_hosts
                .iter()
                .find(|host| **host == base_host)
                .map(String::as_str);
            let (credentials, source) = castoff_registry::oci::resolve_credentials(
                self.environment,
                &pinned.repository,
                push_host,
            )?;
            let http = match self.transport.get() {
                Some(http) => http.clone(),
                None => {
                    let http = HttpClient::new(self.http.clone())?;
                    self.transport.get_or_init(|| http.clone());
                    http
                }
            };
            self.client = Some(
                OciClient::for_pull(&http, pinned.repository, credentials)?
                    .with_credential_source(source),
            );
        }
        Ok(self.client.as_ref().expect("set above"))
    }

    /// A manifest or index from the cache when its bytes hash to its digest, else from the
    /// registry (verified there) and stored. Returns its JSON and media type.
    fn manifest(&mut self, digest: &Digest) -> anyhow::Result<(Value, String)> {
        let path = self.path(digest);
        let cached = fs::read(&path)
            .ok()
            .filter(|bytes| &Digest::of(bytes) == digest);
        let bytes = match cached {
            Some(bytes) => bytes,
            None => {
                let manifest = self.client()?.pull_manifest(digest)?;
                write_atomically(&path, &manifest.bytes)?;
                self.fetched += 1;
                self.fetched_bytes += manifest.bytes.len() as u64;
                manifest.bytes
            }
        };
        let json: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("the manifest {digest} is not JSON"))?;
        let media_type = manifest_media_type(&json);
        Ok((json, media_type))
    }

    /// A blob: kept when the cached file has the descriptor's size and digest, else (missing
    /// or damaged) fetched.
    fn blob(&mut self, blob: &Descriptor) -> anyhow::Result<()> {
        let path = self.path(&blob.digest);
        if verified(&path, blob)? {
            return Ok(());
        }
        let received = self.client()?.pull_blob(blob, &path)?;
        self.fetched += 1;
        self.fetched_bytes += received;
        Ok(())
    }

    fn blob_size(&self, digest: &Digest) -> anyhow::Result<u64> {
        Ok(fs::metadata(self.path(digest))?.len())
    }

    /// Adds (or keeps) the `index.json` entry naming the pinned digest with the reference;
    /// entries sorted by reference so the file does not depend on the order of pulls.
    /// Two dists pulling into one cache at once take turns on the read-modify-write (an
    /// advisory lock on `.index.lock` beside it), so neither loses the other's entry.
    fn add_to_index(&self, digest: &Digest, media_type: &str, size: u64) -> anyhow::Result<()> {
        let path = self.cache.join("index.json");
        let lock_path = self.cache.join(".index.lock");
        let lock = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|file| file.lock().map(|()| file))
            .with_context(|| format!("could not lock {}", lock_path.display()))?;
        let mut entries: BTreeMap<String, Value> = BTreeMap::new();
        if let Ok(bytes) = fs::read(&path)
            && let Ok(index) = serde_json::from_slice::<Value>(&bytes)
        {
            for entry in index["manifests"].as_array().into_iter().flatten() {
                if let Some(name) = entry["annotations"][REF_NAME_ANNOTATION].as_str() {
                    entries.insert(name.to_owned(), entry.clone());
                }
            }
        }
        entries.insert(
            self.reference.to_owned(),
            json!({
                "mediaType": media_type,
                "digest": digest.as_str(),
                "size": size,
                "annotations": { REF_NAME_ANNOTATION: self.reference },
            }),
        );
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": entries.into_values().collect::<Vec<_>>(),
        });
        let mut bytes = serde_json::to_vec_pretty(&index)?;
        bytes.push(b'\n');
        write_if_changed(&path, &bytes)?;
        drop(lock);
        Ok(())
    }
}

fn is_index(json: &Value, media_type: &str) -> bool {
    is_index_media_type(media_type) || json.get("manifests").is_some()
}

fn descriptor(value: &Value) -> anyhow::Result<Descriptor> {
    Descriptor::from_json(value).map_err(anyhow::Error::msg)
}

/// Whether an image for `platform` serves the app's `wanted` platform.
fn matches(platform: &Platform, wanted: &OciPlatform) -> bool {
    platform.matches(wanted.os, wanted.architecture, wanted.variant)
}

fn available_platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("platform"))
        .map(Platform::from_json)
        .filter(|platform| !platform.is_unknown())
        .map(|platform| platform.to_string())
        .collect()
}

/// Whether `path` holds exactly the blob: size first (cheap), then the digest. A file that
/// does not match is removed, so it is fetched again.
fn verified(path: &Path, blob: &Descriptor) -> anyhow::Result<bool> {
    let Ok(metadata) = fs::metadata(path) else {
        return Ok(false);
    };
    let matches = metadata.len() == blob.size && {
        let file =
            fs::File::open(path).with_context(|| format!("could not read {}", path.display()))?;
        let (sha, _) = digest::sha256_reader(file.take(blob.size))?;
        Digest::from_sha256(&sha) == blob.digest
    };
    if !matches {
        fs::remove_file(path)
            .with_context(|| format!("could not remove the damaged {}", path.display()))?;
    }
    Ok(matches)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temp = path.with_file_name(format!(
        ".{}.partial-{}",
        path.file_name()
            .map_or_else(|| "file".into(), |name| name.to_string_lossy()),
        std::process::id()
    ));
    fs::write(&temp, bytes).with_context(|| format!("could not write {}", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("could not write {}", path.display()))
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if fs::read(path).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    write_atomically(path, bytes)
}
