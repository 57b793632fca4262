//! Cargo and git, as `dist` runs them: this machine's target, `cargo build` of every app
//! and target (or the binaries already built, with `--no-build`; none for the targets whose
//! binaries were supplied, prebuilt.rs), the commit being released.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use castoff_plan::{AppId, Release, Target};

use crate::hint::Hinted;
use crate::prebuilt::BinarySource;
use crate::report::Reporter;

/// The triple `rustc` builds for by default on this machine.
pub fn host_target() -> anyhow::Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("could not run `rustc -vV` to find this machine's target")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}

/// The compiled binaries of one app for one target.
#[derive(Debug, Clone)]
pub(crate) struct BuiltBinaries {
    pub(crate) app: AppId,
    pub(crate) target: &'static str,
    /// `(bin name, path)`, in the app's `bins` order (what the builders take).
    pub(crate) paths: Vec<(String, PathBuf)>,
    /// Cargo's, or supplied (with the digests they were checked with).
    pub(crate) source: BinarySource,
}

/// Every app's binaries for every target of the release.
pub(crate) type Binaries = Vec<BuiltBinaries>;

/// Every app's binaries for every target: `supplied` (prebuilt.rs) where given, otherwise
/// built by cargo (or, with `no_build`, found in its output directory).
pub(crate) fn binaries(
    release: &Release,
    no_build: bool,
    supplied: Binaries,
    reporter: &dyn Reporter,
) -> anyhow::Result<Binaries> {
    let mut all = Vec::new();
    for (index, app) in release.apps.iter().enumerate() {
        for &target in &app.targets {
            if let Some(given) = supplied
                .iter()
                .find(|given| given.app == AppId(index) && given.target == target.triple)
            {
                all.push(given.clone());
                continue;
            }
            if !no_build {
                reporter.child_output(&format!(
                    "compiling {} for {}",
                    app.package.name, target.triple
                ));
                cargo_build(release, index, target)?;
            }
            let dir = release.target_directory.join(target.triple).join("release");
            let mut paths = Vec::new();
            for bin in &app.bins {
                let path = dir.join(target.executable_name(bin));
                if !path.is_file() {
                    bail!(Hinted::new(
                        format!(
                            "binary `{bin}` for {} is missing at {}",
                            target.triple,
                            path.display()
                        ),
                        format!(
                            "build it with `cargo build --release --target {} -p {}`, or run `dist` without --no-build",
                            target.triple, app.package.name
                        )
                    ));
                }
                paths.push((bin.clone(), path));
            }
            all.push(BuiltBinaries {
                app: AppId(index),
                target: target.triple,
                paths,
                source: BinarySource::Cargo,
            });
        }
    }
    Ok(all)
}

fn cargo_build(release: &Release, app: usize, target: &Target) -> anyhow::Result<()> {
    let app = &release.apps[app];
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(&app.package.manifest_path)
        .arg("--target")
        .arg(target.triple);
    for bin in &app.bins {
        command.arg("--bin").arg(bin);
    }
    if app.crt_static && target.libc == Some(castoff_plan::target::Libc::Glibc) {
        // With an explicit --target these flags reach only the target's artifacts, never
        // build scripts or proc-macros (which cannot be static).
        let flag = "-C target-feature=+crt-static";
        match std::env::var("RUSTFLAGS") {
            Ok(flags) => {
                command.env("RUSTFLAGS", format!("{flags} {flag}"));
            }
            Err(_) => {
                let name = format!(
                    "CARGO_TARGET_{}_RUSTFLAGS",
                    target.triple.to_uppercase().replace('-', "_")
                );
                let flags = std::env::var(&name)
                    .map_or_else(|_| flag.to_owned(), |f| format!("{f} {flag}"));
                command.env(name, flags);
            }
        }
    }
    let status = command
        .status()
        .with_context(|| format!("could not run cargo to build {}", app.package.name))?;
    if !status.success() {
        bail!(Hinted::new(
            format!(
                "`cargo build --release --target {}` failed for package `{}`",
                target.triple, app.package.name
            ),
            "fix the build error above; for a target this machine cannot build, run `dist --target <triple>` on a machine that can (see `plan --format github-matrix`)"
        ));
    }
    Ok(())
}

/// `(bin name, path)` of every binary built for `app` and `target`.
pub(crate) fn binaries_for(
    binaries: &Binaries,
    app: AppId,
    target: &Target,
) -> Vec<(String, PathBuf)> {
    binaries
        .iter()
        .find(|built| built.app == app && built.target == target.triple)
        .map(|built| built.paths.clone())
        .unwrap_or_default()
}

/// The commit being released, for the image's `revision` annotation; none outside git.
pub(crate) fn git_revision(workspace_root: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(workspace_root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}
