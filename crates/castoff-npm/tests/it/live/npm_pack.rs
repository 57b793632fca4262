//! castoff's tarballs against `npm pack` of the same package directory: the same entries in the
//! same order with the same modes and contents, and byte-identical tar streams. (The gzip layer
//! may differ: Node's zlib and zlib-rs need not choose the same deflate blocks.)

use std::io::Read;
use std::path::Path;
use std::process::Command;

use castoff_npm::{LauncherInput, PackageContents, PlatformInput};
use castoff_test_support::workspace::fixture_release;

use crate::common::{fixture_binaries, fresh_dir};

fn gunzip(path: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

/// (path, mode, contents) of every entry, in order.
fn entries(tar: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            (
                entry.path().unwrap().display().to_string(),
                entry.header().mode().unwrap(),
                contents,
            )
        })
        .collect()
}

/// Packs `contents` both ways and compares; returns whether the .tgz files are identical too.
fn compare_with_npm_pack(contents: &PackageContents, scratch: &Path) -> bool {
    let directory = scratch.join("directory");
    let ours = scratch.join("castoff");
    let theirs = scratch.join("npm");
    std::fs::create_dir_all(&theirs).unwrap();
    contents.write_directory(&directory).unwrap();
    let built = contents
        .write_tarball(&ours, castoff_archive::deflate::DEFAULT_LEVEL)
        .unwrap();

    let output = Command::new("npm")
        .args([
            "pack",
            "--json",
            "--userconfig",
            "/dev/null",
            "--no-update-notifier",
        ])
        .arg("--cache")
        .arg(scratch.join("npm-cache"))
        .arg("--pack-destination")
        .arg(&theirs)
        .arg(&directory)
        .output()
        .unwrap_or_else(|error| {
            panic!("`npm` is needed for this test and could not start: {error}")
        });
    assert!(
        output.status.success(),
        "npm pack failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let report = &report[0];
    assert_eq!(report["filename"], built.file_name.as_str(), "file name");
    assert_eq!(report["name"], built.name.as_str());
    assert_eq!(report["version"], built.version.as_str());
    let npm_tgz = theirs.join(&built.file_name);

    let (our_tar, npm_tar) = (gunzip(&built.path), gunzip(&npm_tgz));
    let (our_entries, npm_entries) = (entries(&our_tar), entries(&npm_tar));
    let names = |entries: &[(String, u32, Vec<u8>)]| {
        entries
            .iter()
            .map(|(path, mode, _)| format!("{mode:o} {path}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&our_entries),
        names(&npm_entries),
        "{}: entries and modes",
        built.name
    );
    assert!(our_entries == npm_entries, "{}: contents", built.name);
    assert!(
        our_tar == npm_tar,
        "{}: the tar streams differ although entries, modes and contents agree",
        built.name
    );
    let same_gzip = std::fs::read(&built.path).unwrap() == std::fs::read(&npm_tgz).unwrap();
    if same_gzip {
        assert_eq!(report["integrity"], built.integrity.as_str());
        assert_eq!(report["shasum"], built.shasum.as_str());
    }
    same_gzip
}

#[test]
#[allow(clippy::print_stderr)] // Whether the gzip layer agrees is informational.
fn tarballs_match_npm_pack() {
    let mut identical_gzip = Vec::new();
    for fixture in ["single-cli", "two-apps"] {
        let release = fixture_release(fixture);
        let root = fresh_dir(&format!("npm-pack-{fixture}"));
        for app in &release.apps {
            let Some(channel) = &app.npm else { continue };
            for &target in &app.targets {
                let contents = castoff_npm::platform_package_contents(&PlatformInput {
                    workspace_root: &release.workspace_root,
                    app,
                    npm: channel,
                    target,
                    binaries: fixture_binaries(fixture, app, target, &root),
                    sbom: None,
                    deflate: castoff_test_support::deflate_cache(),
                })
                .unwrap();
                let scratch = root.join(channel.platform_package(target).replace('/', "_"));
                identical_gzip.push((
                    contents.name.clone(),
                    compare_with_npm_pack(&contents, &scratch),
                ));
            }
            let contents = castoff_npm::launcher_contents(&LauncherInput {
                workspace_root: &release.workspace_root,
                app,
                npm: channel,
                targets: app.targets.clone(),
                level: castoff_archive::deflate::DEFAULT_LEVEL,
            })
            .unwrap();
            let scratch = root.join(channel.name.replace('/', "_"));
            identical_gzip.push((
                contents.name.clone(),
                compare_with_npm_pack(&contents, &scratch),
            ));
        }
    }
    // Informational: whether the compressed bytes (and so dist.integrity) agree as well.
    eprintln!("identical .tgz bytes (gzip included): {identical_gzip:?}");
}
