//! The crates channel's files: each planned crate's `.crate`, exactly as `cargo package` makes
//! it. What goes into a `.crate` (the file list, the normalized `Cargo.toml`, `Cargo.lock`,
//! `.cargo_vcs_info.json`) is Cargo's decision and changes between Cargo versions, so castoff
//! runs Cargo instead of re-implementing it: one `cargo package --no-verify --offline` for
//! every crate of the release at once (Cargo resolves crates of the workspace that are not on
//! the registry yet through a local overlay when they are packaged together), into a private
//! target directory, and takes its files.
//!
//! `publish` later needs nothing else: the upload's metadata is read from the normalized
//! `Cargo.toml` inside the `.crate` (ARCHITECTURE.md, "The crates channel").

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use castoff_archive::digest;
use castoff_plan::Release;
use castoff_plan::plan::CRATES_IO;

use crate::hint::Hinted;
use crate::report::Reporter;

/// One packaged crate, in the private target directory until `dist` copies it into the
/// staging directory.
#[derive(Debug, Clone)]
pub(crate) struct PackagedCrate {
    /// The crate's index in `Release::crates`.
    pub(crate) index: usize,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    /// Hex SHA-256: the registry index's `cksum`.
    pub(crate) sha256: String,
}

/// The directory in `dist/` that holds the `.crate` files.
pub(crate) const DIRECTORY: &str = "crates";

/// Where Cargo packages: inside the target directory (never in the staging directory: a
/// package at the workspace root would take its files into its `.crate`).
fn package_target_dir(release: &Release) -> PathBuf {
    release.target_directory.join("castoff").join("package")
}

/// Packages every crate of the release; none when the channel is off.
pub(crate) fn package(
    release: &Release,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<PackagedCrate>> {
    if release.crates.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = package_target_dir(release);
    let output_dir = target_dir.join("package");
    // Cargo leaves older `.crate` files there; a fresh directory holds only this run's.
    if output_dir.exists() {
        std::fs::remove_dir_all(&output_dir)
            .with_context(|| format!("could not clear {}", output_dir.display()))?;
    }
    let names: Vec<&str> = release.crates.iter().map(|k| k.name.as_str()).collect();
    reporter.line(&format!("packaging crates {}", names.join(", ")));
    let mut command = cargo_package_command(release, &target_dir);
    let output = command
        .output()
        .context("could not run `cargo package` for the crates channel")?;
    if !output.status.success() {
        let registry = release
            .crates
            .first()
            .map_or(CRATES_IO, |k| k.registry.as_str());
        let mut hint = "fix what Cargo reports (`cargo package --no-verify` in the workspace shows the same), or leave the crate out with `[package.metadata.castoff] crates = false`".to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("--offline") || stderr.contains("offline mode") {
            hint.push_str("; dist packages offline, so a dependency missing from Cargo's cache needs one `cargo fetch` in the workspace first");
        }
        if registry != CRATES_IO {
            hint.push_str(&format!(
                "; a dependency on a crate of the workspace published to `{registry}` needs `registry = \"{registry}\"` beside its `version` (without it Cargo looks for it on crates.io)"
            ));
        }
        bail!(Hinted::new(
            format!(
                "`cargo package` failed for the crates {}:\n{}",
                names.join(", "),
                stderr.trim()
            ),
            hint,
        ));
    }
    let mut packaged = Vec::new();
    for (index, krate) in release.crates.iter().enumerate() {
        let path = output_dir.join(krate.file_name());
        let bytes = std::fs::read(&path).with_context(|| {
            format!("`cargo package` succeeded but wrote no {}", path.display())
        })?;
        packaged.push(PackagedCrate {
            index,
            path,
            size: bytes.len() as u64,
            sha256: digest::hex(&digest::sha256(&bytes)),
        });
    }
    Ok(packaged)
}

/// `cargo package` as `dist` runs it: every crate of the release in one run, without the
/// verifying build (`dist` builds what it ships elsewhere), offline (dist opens no socket),
/// with the workspace's lock file as it is (`--locked`, when there is one), from a tree that
/// may have uncommitted changes (as the binaries; `.cargo_vcs_info.json` then says `dirty`, and
/// `dist --require-clean` refuses that earlier), for the planned registry.
pub(crate) fn cargo_package_command(release: &Release, target_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&release.workspace_root)
        .args([
            "package",
            "--no-verify",
            "--offline",
            "--allow-dirty",
            "--quiet",
        ])
        .arg("--manifest-path")
        .arg(release.workspace_root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if release.workspace_root.join("Cargo.lock").is_file() {
        command.arg("--locked");
    }
    if let Some(registry) = release
        .crates
        .first()
        .map(|k| k.registry.as_str())
        .filter(|registry| *registry != CRATES_IO)
    {
        command.args(["--registry", registry]);
    }
    for krate in &release.crates {
        command.args(["--package", &krate.name]);
    }
    command
}

/// Copies the packaged crates into `staging/crates/` and records them in the manifest.
pub(crate) fn stage(
    packaged: &[PackagedCrate],
    manifest: &mut castoff_plan::Manifest,
    staging: &Path,
) -> anyhow::Result<()> {
    if packaged.is_empty() {
        return Ok(());
    }
    let dir = staging.join(DIRECTORY);
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    for krate in packaged {
        let entry = manifest
            .crates
            .get_mut(krate.index)
            .context("internal error: a crate the manifest does not list")?;
        let name = format!("{}-{}.crate", entry.name, entry.version);
        let bytes = std::fs::read(&krate.path)
            .with_context(|| format!("could not read {}", krate.path.display()))?;
        // What was hashed for the cache key is what ships.
        if digest::hex(&digest::sha256(&bytes)) != krate.sha256 {
            bail!(Hinted::new(
                format!("{} changed while dist ran", krate.path.display()),
                "run dist again, one at a time for this workspace",
            ));
        }
        std::fs::write(dir.join(&name), &bytes)
            .with_context(|| format!("could not write {DIRECTORY}/{name}"))?;
        entry.path = Some(format!("{DIRECTORY}/{name}"));
        entry.size = Some(krate.size);
        entry.sha256 = Some(krate.sha256.clone());
    }
    Ok(())
}
