//! The packages castoff-npm builds, checked as data: every package.json (snapshots), the
//! tarballs' entries and modes, digests, reproducibility, size, and the errors for bad input.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use castoff_npm::{LauncherInput, NpmError, PlatformInput};
use castoff_plan::Target;
use castoff_test_support::workspace::{fixture_release, repository_root};

use crate::common::{build_fixture, fresh_dir};
use expect_test::{expect, expect_file};
use sha2::Digest as _;

/// `mode size path` of every entry of a `.tgz`, in archive order, plus the owner/mtime facts
/// every entry shares.
fn listing(tgz: &Path) -> String {
    let bytes = std::fs::read(tgz).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut out = String::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(header.entry_type(), tar::EntryType::Regular, "files only");
        assert_eq!(header.mtime().unwrap(), 499_162_500, "npm's mtime");
        assert_eq!(header.username().unwrap(), Some(""));
        assert_eq!(header.groupname().unwrap(), Some(""));
        let path = entry.path().unwrap().display().to_string();
        // Host binaries differ between toolchains; placeholders do not.
        let size = if path.ends_with("bin/greeter") && header.size().unwrap() > 1000 {
            "<binary>".to_owned()
        } else {
            header.size().unwrap().to_string()
        };
        out.push_str(&format!("{:o} {size:>8} {path}\n", header.mode().unwrap()));
    }
    out
}

fn snapshot_path(file_name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(file_name.replace(".tgz", ".package.json"))
}

#[test]
fn package_json_snapshots() {
    for fixture in ["single-cli", "two-apps"] {
        let out = fresh_dir(&format!("snapshots-{fixture}"));
        let built = build_fixture(fixture, &out);
        for (platforms, launcher) in &built.apps {
            for (_, package) in platforms {
                expect_file![snapshot_path(&package.file_name)].assert_eq(&package.package_json);
            }
            expect_file![snapshot_path(&launcher.file_name)].assert_eq(&launcher.package_json);
        }
    }
}

#[test]
fn tarball_entries() {
    let out = fresh_dir("entries");
    let built = build_fixture("single-cli", &out);
    let (platforms, launcher) = &built.apps[0];
    let by_suffix = |suffix: &str| {
        &platforms
            .iter()
            .find(|(target, _)| target.npm_platform_suffix() == suffix)
            .unwrap()
            .1
    };
    expect![[r#"
        755 <binary> package/bin/greeter
        644     1079 package/LICENSE
        644      677 package/package.json
        644      437 package/README.md
    "#]]
    .assert_eq(&listing(&by_suffix("linux-x64-gnu").path));
    expect![[r#"
        644     1079 package/LICENSE
        755       47 package/bin/greeter.exe
        644      669 package/package.json
        644      427 package/README.md
    "#]]
    .assert_eq(&listing(&by_suffix("win32-x64").path));
    expect![[r#"
        644     1079 package/LICENSE
        644     3495 package/lib/cli.js
        755      188 package/bin/greeter.js
        644     3387 package/index.js
        644    12575 package/lib/platform.js
        644      999 package/examples/run.js
        644      808 package/lib/config.json
        644     1081 package/package.json
        644     3605 package/README.md
        644     5738 package/index.d.ts
        644     1330 package/examples/run.ts
    "#]]
    .assert_eq(&listing(&launcher.path));
}

#[test]
fn digests_describe_the_file() {
    let out = fresh_dir("digests");
    let built = build_fixture("two-apps", &out);
    for (platforms, launcher) in &built.apps {
        for package in platforms.iter().map(|(_, p)| p).chain([launcher]) {
            let bytes = std::fs::read(&package.path).unwrap();
            assert_eq!(package.size, bytes.len() as u64);
            assert_eq!(
                package.path.file_name().unwrap(),
                package.file_name.as_str()
            );
            assert_eq!(
                package.sha256,
                castoff_archive::digest::hex(&sha2::Sha256::digest(&bytes))
            );
            assert_eq!(
                package.integrity,
                format!(
                    "sha512-{}",
                    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes))
                )
            );
            assert_eq!(
                package.shasum,
                castoff_archive::digest::hex(&sha1::Sha1::digest(&bytes))
            );
            // A deterministic gzip header: no name, mtime 0, default level (XFL 0), OS unknown.
            assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
            let mut package_json = String::new();
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                if entry.path().unwrap().to_str() == Some("package/package.json") {
                    entry.read_to_string(&mut package_json).unwrap();
                }
            }
            assert_eq!(package_json, package.package_json);
        }
    }
    // No temporary files are left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn two_builds_are_byte_identical() {
    for fixture in ["single-cli", "two-apps"] {
        let first = fresh_dir(&format!("reproducible-{fixture}-1"));
        let second = fresh_dir(&format!("reproducible-{fixture}-2"));
        let one = build_fixture(fixture, &first);
        let two = build_fixture(fixture, &second);
        let mut compared = 0;
        for ((platforms_one, launcher_one), (platforms_two, launcher_two)) in
            one.apps.iter().zip(&two.apps)
        {
            let packages_one = platforms_one.iter().map(|(_, p)| p).chain([launcher_one]);
            let packages_two = platforms_two.iter().map(|(_, p)| p).chain([launcher_two]);
            for (a, b) in packages_one.zip(packages_two) {
                assert_eq!(
                    std::fs::read(&a.path).unwrap(),
                    std::fs::read(&b.path).unwrap(),
                    "{} differs between two builds",
                    a.file_name
                );
                assert_eq!((&a.sha256, &a.integrity), (&b.sha256, &b.integrity));
                compared += 1;
            }
        }
        assert!(compared >= 4, "{fixture}: {compared} packages");
    }
}

#[test]
#[allow(clippy::print_stderr)] // The size is worth seeing in the test log.
fn launcher_is_small() {
    let out = fresh_dir("size");
    let built = build_fixture("single-cli", &out);
    let launcher = &built.apps[0].1;
    assert!(
        launcher.size < 100 * 1024,
        "the launcher tarball is {} bytes",
        launcher.size
    );
    eprintln!("launcher tarball: {} bytes", launcher.size);
}

#[test]
fn errors_name_the_input_and_end_with_a_hint() {
    let release = fixture_release("single-cli");
    let out = fresh_dir("errors");
    let host: &'static Target = "x86_64-unknown-linux-gnu".parse().unwrap();
    let unplanned: &'static Target = "x86_64-unknown-linux-musl".parse().unwrap();
    let platform = |target: &'static Target, binaries: Vec<(&str, &str)>| {
        castoff_npm::build_platform_package(
            &PlatformInput {
                workspace_root: &release.workspace_root,
                app: &release.apps[0],
                npm: release.apps[0].npm.as_ref().unwrap(),
                target,
                binaries: binaries
                    .into_iter()
                    .map(|(bin, path)| (bin.to_owned(), PathBuf::from(path)))
                    .collect(),
                sbom: None,
                deflate: castoff_test_support::deflate_cache(),
            },
            &out,
        )
        .unwrap_err()
    };
    let check = |error: NpmError, expect: expect_test::Expect| {
        let message = castoff_test_support::with_hint(&error, error.hint())
            .replace(repository_root().to_str().unwrap(), "<workspace>");
        assert!(message.contains("\nhint: "), "{message}");
        expect.assert_eq(&message);
    };
    check(
        platform(host, vec![]),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-gnu`: no binary `greeter` was given for x86_64-unknown-linux-gnu
            hint: build it (`cargo build --release --target x86_64-unknown-linux-gnu --bin greeter`) and pass its path"#]],
    );
    check(
        platform(unplanned, vec![("greeter", "/bin/true")]),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-musl`: target `x86_64-unknown-linux-musl` is not one of `greeter`'s targets (x86_64-unknown-linux-gnu, aarch64-unknown-linux-musl, aarch64-apple-darwin, x86_64-pc-windows-msvc)
            hint: add it to `targets` in [package.metadata.castoff] or [workspace.metadata.castoff], or build only the planned targets"#]],
    );
    check(
        platform(host, vec![("greeter", "/bin/true"), ("other", "/bin/true")]),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-gnu`: `other` is not a binary of `greeter` (its binaries: greeter)
            hint: pass only the binaries listed in `bins` of [package.metadata.castoff]"#]],
    );
    check(
        platform(
            host,
            vec![("greeter", "/bin/true"), ("greeter", "/bin/true")],
        ),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-gnu`: binary `greeter` was given twice
            hint: pass each binary once"#]],
    );
    check(
        platform(host, vec![("greeter", "/nonexistent/greeter")]),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-gnu`: cannot read /nonexistent/greeter: No such file or directory (os error 2)
            hint: check that the file exists and is readable"#]],
    );
    check(
        platform(host, vec![("greeter", "/tmp")]),
        expect![[r#"
            cannot build npm package `@acme/greeter-linux-x64-gnu`: /tmp is not a regular file
            hint: pass the path of the compiled binary itself"#]],
    );
    check(
        castoff_npm::build_launcher(
            &LauncherInput {
                workspace_root: &release.workspace_root,
                app: &release.apps[0],
                npm: release.apps[0].npm.as_ref().unwrap(),
                targets: vec![],
                level: castoff_archive::deflate::DEFAULT_LEVEL,
            },
            &out,
        )
        .unwrap_err(),
        expect![[r#"
            cannot build npm launcher `@acme/greeter`: no platform packages were given
            hint: build at least one target's platform package first, and pass its target"#]],
    );
    // Nothing was written.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
