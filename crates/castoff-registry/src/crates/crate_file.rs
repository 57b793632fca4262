//! A `.crate` as `publish` sends it: its bytes and digest, and the metadata Cargo's publish
//! API takes beside them, derived from the crate alone: the normalized `Cargo.toml` that
//! `cargo package` wrote into it (Cargo builds its own upload from the same normalized
//! manifest) and the README it names. Nothing is read from the workspace.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::RegistryError;

/// The largest `.crate` read (crates.io takes 10 MiB by default; other registries more).
pub const CRATE_LIMIT: u64 = 1024 * 1024 * 1024;
/// The largest `Cargo.toml` or README taken out of a `.crate`.
const MEMBER_LIMIT: u64 = 16 * 1024 * 1024;

/// One `.crate` file ready to publish.
#[derive(Debug, Clone)]
pub struct CrateFile {
    pub name: String,
    pub version: String,
    pub bytes: Vec<u8>,
    /// Hex SHA-256: the index's `cksum`.
    pub sha256: String,
    /// The publish API's JSON metadata (`name`, `vers`, `deps`, …).
    pub metadata: Value,
}

impl CrateFile {
    /// Reads `path` (a regular file, bounded), and derives the upload's metadata from the
    /// normalized `Cargo.toml` inside, which must be the crate `name` at `version`.
    pub fn read(path: &Path, name: &str, version: &str) -> Result<CrateFile, RegistryError> {
        let what = format!("{name}@{version}");
        let bad = |message: String| RegistryError::Config {
            what: format!("{what} ({})", path.display()),
            message,
            hint: "run `dist` again to rebuild dist/".to_owned(),
        };
        let bytes = castoff_archive::foreign::read_regular(path, CRATE_LIMIT)
            .map_err(|error| bad(format!("cannot read it: {error}")))?;
        let sha256 = castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes));
        let members = read_members(&bytes, &format!("{name}-{version}/"))
            .map_err(|error| bad(format!("it is not a .crate Cargo can read: {error}")))?;
        let manifest_text = members
            .get("Cargo.toml")
            .ok_or_else(|| bad("it holds no Cargo.toml".to_owned()))?;
        let manifest: toml::Table = std::str::from_utf8(manifest_text)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| bad("its Cargo.toml is not TOML".to_owned()))?;
        let metadata = publish_metadata(&manifest, &members, name, version).map_err(bad)?;
        Ok(CrateFile {
            name: name.to_owned(),
            version: version.to_owned(),
            bytes,
            sha256,
            metadata,
        })
    }

    /// The body of `PUT /api/v1/crates/new`: the JSON's length (u32, little-endian), the
    /// JSON, the crate's length, the crate.
    pub fn upload_body(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.metadata).expect("metadata serializes");
        let mut body = Vec::with_capacity(json.len() + self.bytes.len() + 8);
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        body.extend_from_slice(&json);
        body.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        body.extend_from_slice(&self.bytes);
        body
    }
}

/// The files under `prefix` in the gzipped tar (`Cargo.toml`, the README), by their path
/// below it; each bounded.
fn read_members(bytes: &[u8], prefix: &str) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut members = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some(relative) = path.strip_prefix(prefix) else {
            return Err(std::io::Error::other(format!(
                "`{path}` is outside `{prefix}`"
            )));
        };
        let relative = relative.to_owned();
        if entry.header().entry_type().is_file() && entry.size() <= MEMBER_LIMIT {
            let mut content = Vec::new();
            entry.take(MEMBER_LIMIT).read_to_end(&mut content)?;
            members.insert(relative, content);
        }
    }
    Ok(members)
}

/// The publish API's metadata from the normalized manifest, as Cargo sends it.
fn publish_metadata(
    manifest: &toml::Table,
    members: &BTreeMap<String, Vec<u8>>,
    name: &str,
    version: &str,
) -> Result<Value, String> {
    let package = manifest
        .get("package")
        .and_then(|p| p.as_table())
        .ok_or("its Cargo.toml has no [package]")?;
    let text = |key: &str| package.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let list = |key: &str| -> Vec<String> {
        package
            .get(key)
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if text("name").as_deref() != Some(name) || text("version").as_deref() != Some(version) {
        return Err(format!(
            "its Cargo.toml is package {} {}, not {name} {version}",
            text("name").unwrap_or_default(),
            text("version").unwrap_or_default()
        ));
    }
    let mut deps = Vec::new();
    let sections: [(&str, &str); 3] = [
        ("dependencies", "normal"),
        ("build-dependencies", "build"),
        ("dev-dependencies", "dev"),
    ];
    for (section, kind) in sections {
        if let Some(table) = manifest.get(section).and_then(|t| t.as_table()) {
            for (key, spec) in table {
                deps.push(dependency(key, spec, kind, None)?);
            }
        }
        if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
            for (target, tables) in targets {
                if let Some(table) = tables.get(section).and_then(|t| t.as_table()) {
                    for (key, spec) in table {
                        deps.push(dependency(key, spec, kind, Some(target))?);
                    }
                }
            }
        }
    }
    deps.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let features: Map<String, Value> = manifest
        .get("features")
        .and_then(|f| f.as_table())
        .map(|table| {
            table
                .iter()
                .map(|(name, enables)| (name.clone(), toml_to_json(enables)))
                .collect()
        })
        .unwrap_or_default();
    let readme_file = text("readme");
    let readme = readme_file
        .as_ref()
        .and_then(|file| members.get(file.as_str()))
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    Ok(json!({
        "name": name,
        "vers": version,
        "deps": deps,
        "features": features,
        "authors": list("authors"),
        "description": text("description"),
        "documentation": text("documentation"),
        "homepage": text("homepage"),
        "readme": readme,
        "readme_file": readme_file,
        "keywords": list("keywords"),
        "categories": list("categories"),
        "license": text("license"),
        "license_file": text("license-file"),
        "repository": text("repository"),
        "badges": manifest.get("badges").map(toml_to_json).unwrap_or_else(|| json!({})),
        "links": text("links"),
        "rust_version": text("rust-version"),
    }))
}

/// One dependency of the normalized manifest as the publish API's `deps` entry. `registry` is
/// the index of another registry (`registry-index`, which `cargo package` writes for a
/// dependency that is not on the registry the crate goes to), else absent.
fn dependency(
    key: &str,
    spec: &toml::Value,
    kind: &str,
    target: Option<&str>,
) -> Result<Value, String> {
    let table = match spec {
        toml::Value::String(version) => {
            let mut table = toml::Table::new();
            table.insert("version".to_owned(), toml::Value::String(version.clone()));
            table
        }
        toml::Value::Table(table) => table.clone(),
        _ => {
            return Err(format!(
                "its dependency `{key}` is neither a version nor a table"
            ));
        }
    };
    let get = |name: &str| table.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let flag =
        |name: &str, default: bool| table.get(name).and_then(|v| v.as_bool()).unwrap_or(default);
    let package = get("package");
    Ok(json!({
        "name": package.clone().unwrap_or_else(|| key.to_owned()),
        "version_req": get("version").unwrap_or_else(|| "*".to_owned()),
        "features": table.get("features").map(toml_to_json).unwrap_or_else(|| json!([])),
        "optional": flag("optional", false),
        "default_features": flag("default-features", true),
        "target": target,
        "kind": kind,
        "registry": get("registry-index"),
        "explicit_name_in_toml": package.map(|_| key.to_owned()),
    }))
}

fn toml_to_json(value: &toml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.crate` holding `files` under `<name>-<version>/`.
    fn dot_crate(prefix: &str, files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, format!("{prefix}{path}"), text.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    const MANIFEST: &str = r#"
[package]
edition = "2021"
name = "demo"
version = "1.2.3"
authors = ["A <a@example.com>"]
description = "A demo"
readme = "README.md"
keywords = ["x"]
categories = ["development-tools"]
license = "MIT"
repository = "https://example.com/demo"
links = "z"
rust-version = "1.80"

[features]
default = ["fast"]
fast = ["dep:serde"]

[dependencies.cc-core]
version = "0.1.0"
registry-index = "sparse+http://127.0.0.1:9/api/v1/crates/"

[dependencies.serde]
version = "1"
optional = true
default-features = false
features = ["derive"]

[dependencies.json]
version = "1"
package = "serde_json"

[build-dependencies]
cc = "1.0"

[dev-dependencies.tempfile]
version = "3"

[target."cfg(unix)".dependencies.libc]
version = "0.2"

[badges.maintenance]
status = "actively-developed"
"#;

    #[test]
    fn the_upload_metadata_comes_from_the_normalized_manifest() {
        let dir = std::env::temp_dir().join(format!("castoff-crate-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo-1.2.3.crate");
        std::fs::write(
            &path,
            dot_crate(
                "demo-1.2.3/",
                &[
                    ("Cargo.toml", MANIFEST),
                    ("README.md", "# demo\n"),
                    ("src/lib.rs", ""),
                ],
            ),
        )
        .unwrap();
        let file = CrateFile::read(&path, "demo", "1.2.3").unwrap();
        let metadata = &file.metadata;
        assert_eq!(metadata["vers"], "1.2.3");
        assert_eq!(metadata["readme"], "# demo\n");
        assert_eq!(metadata["readme_file"], "README.md");
        assert_eq!(metadata["links"], "z");
        assert_eq!(metadata["rust_version"], "1.80");
        assert_eq!(metadata["features"]["fast"], json!(["dep:serde"]));
        assert_eq!(
            metadata["badges"]["maintenance"]["status"],
            "actively-developed"
        );
        let deps: Vec<String> = metadata["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|dep| {
                format!(
                    "{} {} {} {} opt={} df={} {} {} {}",
                    dep["name"].as_str().unwrap(),
                    dep["version_req"].as_str().unwrap(),
                    dep["kind"].as_str().unwrap(),
                    dep["target"].as_str().unwrap_or("-"),
                    dep["optional"],
                    dep["default_features"],
                    dep["features"],
                    dep["registry"].as_str().unwrap_or("-"),
                    dep["explicit_name_in_toml"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            deps,
            [
                "cc 1.0 build - opt=false df=true [] - -",
                "cc-core 0.1.0 normal - opt=false df=true [] sparse+http://127.0.0.1:9/api/v1/crates/ -",
                "libc 0.2 normal cfg(unix) opt=false df=true [] - -",
                "serde 1 normal - opt=true df=false [\"derive\"] - -",
                "serde_json 1 normal - opt=false df=true [] - json",
                "tempfile 3 dev - opt=false df=true [] - -",
            ]
        );
        // The framing: lengths little-endian around the JSON and the crate.
        let body = file.upload_body();
        let json_len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
        let crate_len =
            u32::from_le_bytes(body[4 + json_len..8 + json_len].try_into().unwrap()) as usize;
        assert_eq!(crate_len, file.bytes.len());
        assert_eq!(&body[8 + json_len..], file.bytes.as_slice());

        // Another crate's name, a member outside the crate's directory, no Cargo.toml.
        let wrong = CrateFile::read(&path, "other", "1.2.3")
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("not a .crate") || wrong.contains("outside"),
            "{wrong}"
        );
        std::fs::write(&path, dot_crate("demo-1.2.3/", &[("README.md", "")])).unwrap();
        let missing = CrateFile::read(&path, "demo", "1.2.3")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no Cargo.toml"), "{missing}");
        std::fs::write(&path, b"not gzip").unwrap();
        assert!(CrateFile::read(&path, "demo", "1.2.3").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
