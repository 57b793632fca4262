//! Helpers shared by the registry tests: tiny artifacts written in test code (a wheel, an npm
//! tarball, an OCI image layout), unique versions, and HTTP clients with short retry delays.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use castoff_registry::{HttpClient, HttpConfig, RetryPolicy};
use sha2::{Digest, Sha256};

/// A version no earlier run used, so tests pass against long-running `--serve` servers.
pub fn unique_version() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "0.{}.{}",
        nanos / 1_000_000_000 % 1_000_000_000,
        nanos % 1_000_000_000
    )
}

/// A suffix for names that must be unique per test run.
pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", nanos % (1 << 48))
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A client for loopback servers (plain http allowed there) with short retry delays.
pub fn http() -> HttpClient {
    HttpClient::new(HttpConfig {
        retry: fast_retry(),
        ..HttpConfig::default()
    })
    .expect("HTTP client")
}

pub fn http_with_ca(ca: &Path) -> HttpClient {
    HttpClient::new(HttpConfig {
        retry: fast_retry(),
        ca_certificates: vec![ca.to_owned()],
        ..HttpConfig::default()
    })
    .expect("HTTP client with CA")
}

/// A minimal zip writer (stored entries, no data descriptors), enough for a valid wheel.
pub fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut zip = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = zip.len() as u32;
        let common = |out: &mut Vec<u8>| {
            out.extend_from_slice(&20u16.to_le_bytes()); // version needed
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&0u16.to_le_bytes()); // stored
            out.extend_from_slice(&[0, 0, 0x21, 0]); // 1980-01-01 00:00
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
        };
        zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut zip);
        zip.extend_from_slice(name.as_bytes());
        zip.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&(0x0300u16 | 20).to_le_bytes()); // made by Unix
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let directory_offset = zip.len() as u32;
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0; 4]);
    zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zip.extend_from_slice(&(central.len() as u32).to_le_bytes());
    zip.extend_from_slice(&directory_offset.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, zip).unwrap();
}

fn record_hash(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data))
}

/// A pure-Python wheel `{dist}-{version}-py3-none-any.whl` whose module prints `marker`.
/// Different markers give different bytes under the same file name.
pub fn write_wheel(dir: &Path, project: &str, version: &str, marker: &str) -> PathBuf {
    let dist = project.replace('-', "_");
    let info = format!("{dist}-{version}.dist-info");
    let metadata = format!(
        "Metadata-Version: 2.4\nName: {project}\nVersion: {version}\nClassifier: Environment :: Console\n\
         Summary: castoff registry test package\nKeywords: castoff,test\nAuthor-email: CI <ci@example.invalid>\n\
         License-Expression: MIT\nRequires-Python: >=3.8\nDescription-Content-Type: text/markdown\n\
         Project-URL: Repository, https://example.invalid/castoff\n\n# {project}\n\nA test package.\n"
    );
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (format!("{dist}/__init__.py"), format!("MARKER = {marker:?}\n").into_bytes()),
        (format!("{info}/METADATA"), metadata.into_bytes()),
        (
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: castoff-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
        ),
    ];
    let mut record = String::new();
    for (name, data) in &entries {
        record.push_str(&format!(
            "{name},sha256={},{}\n",
            record_hash(data),
            data.len()
        ));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    entries.push((format!("{info}/RECORD"), record.into_bytes()));
    let path = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    write_zip(&path, &entries);
    path
}

/// Writes an npm tarball (`package/package.json`, `package/index.js`, `package/README.md`)
/// the way `npm pack` lays it out; `marker` changes the bytes.
pub fn write_npm_tarball(dir: &Path, name: &str, version: &str, marker: &str) -> PathBuf {
    let package_json = serde_json::json!({
        "name": name,
        "version": version,
        "description": "castoff registry test package",
        "main": "index.js",
        "bin": { "castoff-test-hello": "index.js" },
        "license": "MIT",
    });
    let files: Vec<(&str, Vec<u8>, u32)> = vec![
        (
            "package/README.md",
            format!("# {name}\n\nA test package.\n").into_bytes(),
            0o644,
        ),
        (
            "package/index.js",
            format!("#!/usr/bin/env node\nconsole.log({marker:?});\n").into_bytes(),
            0o755,
        ),
        (
            "package/package.json",
            serde_json::to_vec_pretty(&package_json).unwrap(),
            0o644,
        ),
    ];
    let file_name = format!(
        "{}-{version}.tgz",
        name.trim_start_matches('@').replace('/', "-")
    );
    let path = dir.join(file_name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::best(),
    );
    let mut builder = tar::Builder::new(gz);
    for (entry, data, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(entry).unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(499_162_500);
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    path
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OCI image layout with one image per `platforms` entry (each: one gzip layer holding
/// `/hello.txt` with `marker`, a config, a manifest) and an index over them, tagged `tag` in
/// `index.json`. `layer_padding` adds incompressible bytes to the layer (forces chunking).
/// Returns (index digest, manifest digests).
pub fn write_oci_layout(
    dir: &Path,
    tag: &str,
    marker: &str,
    platforms: &[&str],
    layer_padding: usize,
) -> (String, Vec<String>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let mut manifests = Vec::new();
    let mut descriptors = Vec::new();
    for platform in platforms {
        let mut layer_tar = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut layer_tar);
            let mut content = format!("{marker} {platform}\n").into_bytes();
            // Pseudo-random padding: gzip cannot shrink it, so the blob stays large.
            let mut state = 0x2545_f491_4f6c_dd1du64 ^ platform.len() as u64;
            for _ in 0..layer_padding {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                content.push(state as u8);
            }
            let mut header = tar::Header::new_ustar();
            header.set_path("hello.txt").unwrap();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder.append(&header, content.as_slice()).unwrap();
            builder.finish().unwrap();
        }
        let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));
        let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer_tar).unwrap();
        let layer = gz.finish().unwrap();
        let layer_digest = put(&layer);
        let (os, arch) = platform.split_once('/').unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": os,
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let config_digest = put(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let manifest_digest = put(&manifest);
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "platform": {"architecture": arch, "os": os},
        }));
        manifests.push(manifest_digest);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    }))
    .unwrap();
    let index_digest = put(&index);
    let layout_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&layout_index).unwrap(),
    )
    .unwrap();
    (index_digest, manifests)
}

/// Runs a command, panicking with its output (checked for secrets) when it fails.
pub fn run(env: &castoff_test_support::TestEnv, command: &mut std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let text = format!(
        "{command:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    env.assert_no_secret(&text);
    assert!(output.status.success(), "{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A request as the stand-in server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for protocol edges no real server shows on demand
/// (redirects, 503s, OIDC endpoints). `answer` gets every request and the list of earlier
/// ones and returns (status line + headers, body). One connection per request.
pub struct StandIn {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl StandIn {
    pub fn start(answer: impl Fn(&Seen, usize) -> (String, String) + Send + 'static) -> StandIn {
        use std::io::{BufRead, BufReader, Read};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let target = parts.next().unwrap_or("").to_owned();
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        headers.push((name.trim().to_owned(), value.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request = Seen {
                    method,
                    target,
                    headers,
                    body,
                };
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(request.clone());
                    log.len() - 1
                };
                let (head, body) = answer(&request, index);
                let response = format!(
                    "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        StandIn { url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
