//! What the registries show of a package, from the single-cli fixture dist'ed with a supplied
//! static binary (no build): every license file in every channel, one-line descriptions, and
//! README links that lead somewhere on PyPI's and npm's pages. Read back with the tools a
//! user has (`tar`, Python's `zipfile`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::workspace::assert_success;

use super::dist::{scratch, single_cli_workspace};
use super::prebuilt::castoff;

const HOST: &str = "x86_64-unknown-linux-gnu";

/// single-cli, its `Cargo.toml` edited by `edit_toml` and its files by `edit_files`, dist'ed for
/// the host target from a static binary; returns its `dist/`.
fn dist_of(
    name: &str,
    edit_toml: impl Fn(String) -> String,
    edit_files: impl Fn(&Path),
) -> PathBuf {
    let scratch = scratch(name);
    let workspace = single_cli_workspace(&scratch, edit_toml);
    edit_files(&workspace);
    let binary = write_static_elf(&scratch.join("bin"), "greeter", EM_X86_64, "hello");
    let prebuilt = format!("{HOST}={}", binary.display());
    assert_success(
        &castoff(
            &workspace,
            &scratch,
            &["dist", "--target", HOST, "--prebuilt", &prebuilt],
        ),
        "dist",
    );
    workspace.join("dist")
}

/// The output of `program args… file`, which must succeed.
fn output_of(program: &str, args: &[&str], file: &Path) -> String {
    let output = Command::new(program).args(args).arg(file).output().unwrap();
    assert_success(&output, &format!("{program} {}", file.display()));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The one file of `dir` (inside `dist`) whose name ends with `suffix`.
fn only(dist: &Path, dir: &str, suffix: &str) -> PathBuf {
    fs::read_dir(dist.join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in dist/{dir}"))
}

/// The wheel's names, one a line, and its METADATA, read by Python's `zipfile`.
fn wheel_names_and_metadata(dist: &Path) -> (String, String) {
    let wheel = only(dist, "python", ".whl");
    let names = output_of(
        "python3",
        &[
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ],
        &wheel,
    );
    let metadata = output_of(
        "python3",
        &[
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read([n for n in z.namelist() if n.endswith('.dist-info/METADATA')][0]).decode())",
        ],
        &wheel,
    );
    (names, metadata)
}

/// The file `inside` of the launcher's tarball.
fn launcher_file(dist: &Path, inside: &str) -> String {
    let launcher = dist.join("npm/acme-greeter-0.3.1.tgz");
    let output = Command::new("tar")
        .arg("-xzOf")
        .arg(&launcher)
        .arg(inside)
        .output()
        .unwrap();
    assert_success(&output, &format!("{inside} of the launcher"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every license file ships in every channel: Cargo's `license-file` and each `LICENSE*`,
/// `LICENCE*`, `COPYING*`, `UNLICENSE*` and `NOTICE*` file (ripgrep's `Unlicense OR MIT`
/// lost its UNLICENSE before), each a `License-File` of the wheel (PEP 639).
#[test]
fn every_license_file_ships_in_every_channel() {
    let dist = dist_of(
        "license-files",
        |toml| toml,
        |workspace| {
            for name in ["UNLICENSE", "COPYING", "NOTICE.md", "LICENSE-MIT"] {
                fs::write(workspace.join(name), format!("{name} text\n")).unwrap();
            }
        },
    );
    let (names, metadata) = wheel_names_and_metadata(&dist);
    let archive = output_of("tar", &["-tzf"], &only(&dist, "archives", ".tar.gz"));
    let npm: Vec<String> = fs::read_dir(dist.join("npm"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".tgz"))
        .map(|path| output_of("tar", &["-tzf"], &path))
        .collect();
    assert_eq!(npm.len(), 2, "the launcher and one platform package");
    for name in [
        "COPYING",
        "LICENSE",
        "LICENSE-MIT",
        "NOTICE.md",
        "UNLICENSE",
    ] {
        assert!(
            names.contains(&format!(".dist-info/licenses/{name}\n")),
            "wheel lacks {name}:\n{names}"
        );
        assert!(
            metadata.contains(&format!("License-File: {name}\n")),
            "METADATA lacks License-File: {name}:\n{metadata}"
        );
        assert!(
            archive.contains(&format!("/{name}\n")),
            "archive lacks {name}:\n{archive}"
        );
        for tarball in &npm {
            assert!(
                tarball.contains(&format!("package/{name}\n")),
                "npm package lacks {name}:\n{tarball}"
            );
        }
    }
}

/// Cargo keeps the newlines of a multi-line `description`; every registry shows it as one
/// line: PyPI's Summary, npm's `description` and the image's description annotation get it
/// with each run of whitespace made one space.
#[test]
fn a_multi_line_description_is_one_line_in_every_channel() {
    let dist = dist_of(
        "description-lines",
        |toml| {
            toml.replace(
                "description = \"Greets people; castoff's single-app test fixture\"",
                "description = \"\"\"\nGreets people;\n    castoff's single-app\ttest fixture\n\"\"\"",
            )
        },
        |_| {},
    );
    let one_line = "Greets people; castoff's single-app test fixture";
    let package: serde_json::Value =
        serde_json::from_str(&launcher_file(&dist, "package/package.json")).unwrap();
    assert_eq!(package["description"], one_line);
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    let layout = json(dist.join("oci/greeter/index.json"));
    let digest = layout["manifests"][0]["digest"].as_str().unwrap();
    let index = json(
        dist.join("oci/greeter/blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.description"],
        one_line
    );
    let (_, metadata) = wheel_names_and_metadata(&dist);
    assert!(
        metadata.contains(&format!("\nSummary: {one_line}\n")),
        "{metadata}"
    );
}

/// The README's relative links and images lead nowhere on PyPI's and npm's pages: they become
/// absolute URLs into the repository at the release's tag, in the wheel's description and the
/// launcher's README; absolute links, anchors and code stay as they are.
#[test]
fn readme_links_are_absolute_on_the_registries() {
    let dist = dist_of(
        "readme-links",
        |toml| toml,
        |workspace| {
            fs::write(
                workspace.join("README.md"),
                "# greeter ![logo](docs/logo.png)\n\nSee [the guide](GUIDE.md), [usage](#usage) and [home](https://greeter.example.com).\n\n    [indented code](GUIDE.md)\n",
            )
            .unwrap();
        },
    );
    let expected = "# greeter ![logo](https://raw.githubusercontent.com/acme/greeter/v0.3.1/docs/logo.png)\n\nSee [the guide](https://github.com/acme/greeter/blob/v0.3.1/GUIDE.md), [usage](#usage) and [home](https://greeter.example.com).\n\n    [indented code](GUIDE.md)";
    let npm_readme = launcher_file(&dist, "package/README.md");
    assert!(npm_readme.starts_with(expected), "{npm_readme}");
    let (_, metadata) = wheel_names_and_metadata(&dist);
    assert!(metadata.contains(expected), "{metadata}");
}
