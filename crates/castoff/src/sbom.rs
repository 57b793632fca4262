//! CycloneDX 1.5 SBOMs: for one app and one target, the crates compiled into its binary,
//! from the resolved dependency graph (`cargo metadata` with dependencies, filtered to the
//! target) and the checksums Cargo.lock records for registry crates.
//!
//! What counts as "in the binary": the app's package and every package reachable from it
//! through normal dependencies. Build dependencies and dev dependencies are not linked in;
//! proc-macro crates run inside the compiler and leave no code behind, so they are left out
//! too (with their own dependencies, unless something linked needs those).
//!
//! The document is deterministic: components sorted by purl, the timestamp is
//! `SOURCE_DATE_EPOCH`, and the serial number is derived from the content (a UUID built from
//! its SHA-256, with version bits 5 set because the CycloneDX schema only accepts UUID
//! versions 1 to 5), so the same inputs give the same bytes on every runner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::hint::Hinted;
use anyhow::{Context as _, bail};
use cargo_metadata::{DependencyKind, Metadata, PackageId, TargetKind};
use castoff_archive::date::rfc3339;
use castoff_archive::digest;
use serde_json::{Value, json};

/// The dependency graph of a workspace for one target: `cargo metadata` with dependencies.
/// Tries `--offline` first (dist promises no network; after `cargo build` everything is in
/// the local registry cache), then once more online when the cache lacks something (a
/// `--no-build` run on a fresh machine).
///
/// The answer is remembered while nothing Cargo reads for it changes (metadata_cache.rs).
///
/// `features` are the build's feature arguments (`--features a,b`, `--all-features`,
/// `--no-default-features`): an optional dependency is in the graph only when the features
/// the binary was built with pull it in.
pub(crate) fn resolve(
    manifest_path: &Path,
    target: &str,
    features: &[String],
) -> anyhow::Result<Metadata> {
    remembered(manifest_path, Some(target), features)
}

/// The dependency graph for every platform (no `--filter-platform`): what a source
/// distribution, built wherever it is installed, may compile. Remembered as [`resolve`]'s is
/// (it was the one Cargo start left in a cold `dist` whose inputs had not changed).
pub(crate) fn resolve_all_platforms(
    manifest_path: &Path,
    features: &[String],
) -> anyhow::Result<Metadata> {
    remembered(manifest_path, None, features)
}

fn remembered(
    manifest_path: &Path,
    target: Option<&str>,
    features: &[String],
) -> anyhow::Result<Metadata> {
    let start = crate::metadata_cache::Start::for_sbom(manifest_path, target, features);
    if let Some(hit) = start.as_ref().and_then(|start| start.lookup()) {
        return Ok(hit.metadata);
    }
    let started = std::time::SystemTime::now();
    let metadata = ask_cargo(manifest_path, target, features)?;
    if let Some(start) = start {
        start.store(&metadata, None, started);
    }
    Ok(metadata)
}

fn ask_cargo(
    manifest_path: &Path,
    target: Option<&str>,
    features: &[String],
) -> anyhow::Result<Metadata> {
    let mut last_error = String::new();
    for offline in [true, false] {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["metadata", "--format-version", "1"])
            .args(
                target
                    .iter()
                    .flat_map(|target| ["--filter-platform", target]),
            )
            .arg("--manifest-path")
            .arg(manifest_path)
            .args(features);
        if offline {
            command.arg("--offline");
        }
        let output = command
            .output()
            .context("could not run `cargo metadata` for the SBOM")?;
        if output.status.success() {
            return serde_json::from_slice(&output.stdout)
                .context("`cargo metadata` printed something that is not its JSON");
        }
        last_error = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    }
    bail!(Hinted::new(
        format!(
            "`cargo metadata{}` failed, so the SBOM cannot list the dependencies:\n{last_error}",
            target.map_or_else(String::new, |target| format!(" --filter-platform {target}"))
        ),
        "run `cargo fetch` (or `cargo build`) once with network access"
    ))
}

/// `(name, version, source)` → sha256 hex, from the workspace's Cargo.lock. The file format is
/// a list of `[[package]]` tables with one `key = "value"` per line, which Cargo has written
/// the same way since lock file version 1; a missing or unreadable file gives no checksums.
pub(crate) fn lock_checksums(workspace_root: &Path) -> BTreeMap<(String, String, String), String> {
    let mut checksums = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(workspace_root.join("Cargo.lock")) else {
        return checksums;
    };
    let mut flush = |fields: &mut BTreeMap<String, String>| {
        if let (Some(name), Some(version), Some(source), Some(checksum)) = (
            fields.get("name"),
            fields.get("version"),
            fields.get("source"),
            fields.get("checksum"),
        ) {
            checksums.insert(
                (name.clone(), version.clone(), source.clone()),
                checksum.clone(),
            );
        }
        fields.clear();
    };
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut fields);
        } else if let Some((key, value)) = line.split_once(" = ")
            && let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
        {
            fields.insert(key.to_owned(), value.to_owned());
        }
    }
    flush(&mut fields);
    checksums
}

/// What one SBOM describes.
#[derive(Debug)]
pub(crate) struct SbomInput<'a> {
    pub metadata: &'a Metadata,
    pub checksums: &'a BTreeMap<(String, String, String), String>,
    /// The app's package name (a workspace member).
    pub package: &'a str,
    pub target: &'a str,
    pub source_date_epoch: u64,
}

/// The CycloneDX JSON document (pretty, with a trailing newline).
pub(crate) fn cyclonedx(input: &SbomInput<'_>) -> anyhow::Result<Vec<u8>> {
    let metadata = input.metadata;
    let packages: BTreeMap<&PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let root = metadata
        .workspace_packages()
        .into_iter()
        .find(|package| package.name.as_str() == input.package)
        .with_context(|| format!("package `{}` is not in the workspace", input.package))?;
    let resolve = metadata
        .resolve
        .as_ref()
        .context("`cargo metadata` returned no dependency graph")?;
    let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|node| (&node.id, node)).collect();
    let is_proc_macro = |id: &PackageId| {
        packages.get(id).is_some_and(|package| {
            package
                .targets
                .iter()
                .any(|target| target.kind.contains(&TargetKind::ProcMacro))
        })
    };

    // Breadth-first over normal dependency edges.
    let mut reached: BTreeSet<&PackageId> = BTreeSet::from([&root.id]);
    let mut edges: BTreeMap<&PackageId, BTreeSet<&PackageId>> = BTreeMap::new();
    let mut queue = vec![&root.id];
    while let Some(id) = queue.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|kind| kind.kind == DependencyKind::Normal);
            if !normal || is_proc_macro(&dep.pkg) {
                continue;
            }
            edges.entry(id).or_default().insert(&dep.pkg);
            if reached.insert(&dep.pkg) {
                queue.push(&dep.pkg);
            }
        }
    }

    let purl = |package: &cargo_metadata::Package| {
        format!("pkg:cargo/{}@{}", package.name, package.version)
    };
    let component = |package: &cargo_metadata::Package, kind: &str| {
        let mut value = json!({
            "type": kind,
            "bom-ref": purl(package),
            "name": package.name.as_str(),
            "version": package.version.to_string(),
            "purl": purl(package),
        });
        if let Some(description) = &package.description {
            value["description"] = json!(description.trim());
        }
        if let Some(license) = &package.license {
            // Old crates write `MIT/Apache-2.0`; SPDX spells that `MIT OR Apache-2.0`.
            value["licenses"] = json!([{ "expression": license.replace('/', " OR ") }]);
        }
        if let Some(source) = &package.source {
            let key = (
                package.name.to_string(),
                package.version.to_string(),
                source.repr.clone(),
            );
            if let Some(checksum) = input.checksums.get(&key) {
                value["hashes"] = json!([{ "alg": "SHA-256", "content": checksum }]);
            }
        }
        value
    };

    let mut components: Vec<Value> = reached
        .iter()
        .filter(|id| **id != &root.id)
        .filter_map(|id| packages.get(id))
        .map(|package| component(package, "library"))
        .collect();
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    components.dedup_by(|a, b| a["bom-ref"] == b["bom-ref"]);

    let mut dependencies: Vec<Value> = reached
        .iter()
        .filter_map(|id| packages.get(id))
        .map(|package| {
            let mut depends_on: Vec<String> = edges
                .get(&package.id)
                .into_iter()
                .flatten()
                .filter_map(|dep| packages.get(dep))
                .map(|dep| purl(dep))
                .collect();
            depends_on.sort();
            depends_on.dedup();
            json!({ "ref": purl(package), "dependsOn": depends_on })
        })
        .collect();
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));
    dependencies.dedup_by(|a, b| a["ref"] == b["ref"]);

    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(input.source_date_epoch),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "castoff",
                    "version": env!("CARGO_PKG_VERSION"),
                }],
            },
            "component": component(root, "application"),
            "properties": [{ "name": "castoff:target", "value": input.target }],
        },
        "components": components,
        "dependencies": dependencies,
    });
    let content = serde_json::to_vec(&document).expect("JSON serializes");
    document["serialNumber"] = json!(serial_number(&content));
    let mut bytes = serde_json::to_vec_pretty(&document).expect("JSON serializes");
    bytes.push(b'\n');
    Ok(bytes)
}

/// `urn:uuid:` built from the content's SHA-256 (version nibble 5, RFC 4122 variant).
fn serial_number(content: &[u8]) -> String {
    let mut bytes = digest::sha256(content);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = digest::hex(&bytes[..16]);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_serials() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        let serial = serial_number(b"x");
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "5", "{serial}");
        assert!(matches!(&serial[28..29], "8" | "9" | "a" | "b"), "{serial}");
    }
}
