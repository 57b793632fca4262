//! The distributed release as CI runs it, simulated on one machine: four "runners" each write
//! a partial dist (the host target with the real compiled binary; aarch64 musl Linux, macOS
//! arm64 and Windows x64 with synthesized executables), built once per test process and shared
//! with `live::distributed`. Here, without any tool: each partial says what it covers, and
//! merges that must be refused are refused with a `hint:` and change nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use castoff_plan::Manifest;
use castoff_test_support::binaries;
use castoff_test_support::workspace::{
    assert_success, copy_fixture, copy_tree, files, repository_root,
};

const EPOCH: &str = "1700000000";
const HOST: &str = "x86_64-unknown-linux-gnu";
const TARGETS: [&str; 4] = [
    HOST,
    "aarch64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

fn castoff(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("CASTOFF_SIGN_KEY")
        .env_remove("CASTOFF_SIGN_PASSWORD")
        .output()
        .expect("running castoff")
}

/// The scratch copy of the `single-cli` fixture with its four partial dists, built once per
/// test binary: `(workspace, [partial dist per target])`.
pub(crate) fn partials() -> &'static (PathBuf, Vec<PathBuf>) {
    static PARTIALS: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();
    PARTIALS.get_or_init(|| {
        // One directory per process: two suites running at once (a developer's `cargo test`
        // beside the harness) must not delete each other's partial dists. Directories of
        // processes that are gone are removed.
        let parent = repository_root().join("target/castoff-test-scratch/distributed");
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&name).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let root = parent.join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&root);
        let workspace = root.join("workspace");
        copy_fixture("single-cli", &workspace);
        // Names of its own on every registry, so publishing it never meets another test's
        // different bytes under the same name and version.
        let cargo_toml = fs::read_to_string(workspace.join("Cargo.toml"))
            .unwrap()
            .replace(
                r#"python = { name = "greeter" }"#,
                r#"python = { name = "merged-greeter" }"#,
            )
            .replace(r#""@acme/greeter""#, r#""@castoff-merge/greeter""#)
            .replace("ghcr.io/acme/greeter", "ghcr.io/castoff-merge/greeter");
        assert!(cargo_toml.contains("merged-greeter") && cargo_toml.contains("castoff-merge"));
        fs::write(workspace.join("Cargo.toml"), cargo_toml).unwrap();
        // Runners 2-4 cannot compile here: their binaries are synthesized with valid headers.
        let release = |triple: &str| workspace.join("target").join(triple).join("release");
        binaries::write_static_elf(
            &release("aarch64-unknown-linux-musl"),
            "greeter",
            binaries::EM_AARCH64,
            "hello from arm64\n",
        );
        fs::create_dir_all(release("aarch64-apple-darwin")).unwrap();
        fs::write(
            release("aarch64-apple-darwin").join("greeter"),
            binaries::macho_executable(binaries::CPU_TYPE_ARM64, 11, 0),
        )
        .unwrap();
        fs::create_dir_all(release("x86_64-pc-windows-msvc")).unwrap();
        fs::write(
            release("x86_64-pc-windows-msvc").join("greeter.exe"),
            binaries::pe_executable(binaries::IMAGE_FILE_MACHINE_AMD64),
        )
        .unwrap();

        let mut parts = Vec::new();
        for target in TARGETS {
            let part = root.join(format!("partial-{target}"));
            let mut args = vec!["dist", "--target", target, "--dist-dir"];
            let part_arg = part.to_string_lossy().into_owned();
            args.push(&part_arg);
            // The host runner compiles for real; the others package what is there.
            if target != HOST {
                args.push("--no-build");
            }
            let output = castoff(&args, &workspace);
            assert_success(&output, &format!("dist --target {target}"));
            parts.push(part);
        }
        (workspace, parts)
    })
}

/// A copy of `single-cli` in `root/workspace` planned for two targets (this machine's and
/// aarch64 musl Linux), with PyPI and npm names of `label`'s own, and one partial dist per
/// target (`root/partial-<target>`), both from synthesized binaries (`dist --no-build`):
/// `(workspace, [host partial, aarch64 partial])`.
pub(crate) fn two_target_partials(root: &Path, label: &str) -> (PathBuf, Vec<PathBuf>) {
    let _ = fs::remove_dir_all(root);
    let workspace = root.join("workspace");
    copy_fixture("single-cli", &workspace);
    let text = fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let targets = text
        .lines()
        .find(|line| line.starts_with("targets = "))
        .unwrap()
        .to_owned();
    let text = text
        .replace(
            &targets,
            &format!("targets = [\"{HOST}\", \"{}\"]", TARGETS[1]),
        )
        .replace(
            r#"python = { name = "greeter" }"#,
            &format!(r#"python = {{ name = "greeter-{label}" }}"#),
        )
        .replace(r#""@acme/greeter""#, &format!(r#""@{label}/greeter""#));
    fs::write(workspace.join("Cargo.toml"), text).unwrap();
    let release = |triple: &str| workspace.join("target").join(triple).join("release");
    binaries::write_static_elf(
        &release(HOST),
        "greeter",
        binaries::EM_X86_64,
        "hello from x86_64\n",
    );
    binaries::write_static_elf(
        &release(TARGETS[1]),
        "greeter",
        binaries::EM_AARCH64,
        "hello from arm64\n",
    );
    let parts: Vec<PathBuf> = [HOST, TARGETS[1]]
        .iter()
        .map(|target| {
            let part = root.join(format!("partial-{target}"));
            let output = castoff(
                &[
                    "dist",
                    "--no-build",
                    "--target",
                    target,
                    "--dist-dir",
                    part.to_str().unwrap(),
                ],
                &workspace,
            );
            assert_success(&output, &format!("dist --no-build --target {target}"));
            part
        })
        .collect();
    (workspace, parts)
}

pub(crate) fn merge(workspace: &Path, parts: &[&PathBuf], out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["dist".into(), "--dist-dir".into()];
    args.push(out.to_string_lossy().into_owned());
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args.push("--merge".into());
    args.extend(parts.iter().map(|part| part.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    castoff(&args, workspace)
}

pub(crate) fn manifest(dir: &Path) -> Manifest {
    Manifest::from_json(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn partial_dists_say_what_they_cover() {
    let (_, parts) = partials();
    for (target, part) in TARGETS.iter().zip(parts) {
        let manifest = manifest(part);
        let partial = manifest.partial.expect("a one-target dist is partial");
        assert_eq!(partial.targets, vec![target.to_string()]);
        assert_eq!(partial.planned_targets.len(), 4, "{partial:?}");
        assert_eq!(manifest.source_date_epoch, Some(1_700_000_000));
    }
}

/// A one-target `dist` of a two-target plan says in its summary that it is partial and what
/// `publish` will do with it; `publish` (and `publish --dry-run`) refuses it with exit code 2,
/// naming the missing target, before any connection (the destinations are a closed port);
/// the merged dist is complete.
#[test]
fn a_partial_dist_is_announced_and_refused_by_publish() {
    let root = repository_root()
        .join("target/castoff-test-scratch/partial-refused")
        .join(std::process::id().to_string());
    let (workspace, parts) = two_target_partials(&root, "refused");
    let summary = castoff(
        &[
            "dist",
            "--no-build",
            "--target",
            HOST,
            "--dist-dir",
            parts[0].to_str().unwrap(),
        ],
        &workspace,
    );
    assert_success(&summary, "dist (cached)");
    let table = String::from_utf8_lossy(&summary.stdout);
    assert!(
        table.contains(&format!(
            "partial dist: 1 of the 2 configured targets ({HOST}); missing {}\n`publish` refuses a partial dist",
            TARGETS[1]
        )) && table.contains("`dist --merge DIR...`")
            && table.contains("`publish --allow-partial`"),
        "{table}"
    );
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec![
            "publish",
            "--dist-dir",
            parts[0].to_str().unwrap(),
            "--pypi-url",
            "http://127.0.0.1:9/",
            "--npm-registry",
            "http://127.0.0.1:9/",
            "--oci-repository",
            "127.0.0.1:9/refused/greeter",
        ];
        args.extend_from_slice(extra);
        let refused = castoff(&args, &workspace);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("holds only part of the release (a partial dist); nothing was sent")
                && stderr.contains(&format!(
                    "greeter 0.3.1: missing {} (dist/ holds {HOST})",
                    TARGETS[1]
                ))
                && stderr.contains("hint: build the missing targets")
                && stderr.contains("`castoff dist --merge DIR...`")
                && stderr.contains("hint: or pass --allow-partial"),
            "{stderr}"
        );
        assert!(!stderr.contains("127.0.0.1:9"), "{stderr}");
    }
    let merged = root.join("merged");
    assert_success(
        &merge(&workspace, &parts.iter().collect::<Vec<_>>(), &merged, &[]),
        "merge",
    );
    assert_eq!(manifest(&merged).partial, None);
}

/// `dist --merge` of one-target partial dists writes the image layout that one `dist` of both
/// targets writes, byte for byte (docs/ci.md): `index.json`'s one entry, the referrers index
/// listing both SBOM artifacts, every blob, and each platform's `docker load` archive. An SBOM
/// blob missing from the layout stops `publish` before it sends anything.
#[test]
fn a_merged_image_layout_is_the_one_run_layout_byte_for_byte() {
    let root = repository_root()
        .join("target/castoff-test-scratch/merge-identical")
        .join(std::process::id().to_string());
    let (workspace, parts) = two_target_partials(&root, "identical");
    let merged = root.join("merged");
    assert_success(
        &merge(&workspace, &parts.iter().collect::<Vec<_>>(), &merged, &[]),
        "merge",
    );
    let one_run = root.join("one-run");
    assert_success(
        &castoff(
            &[
                "dist",
                "--no-build",
                "--target",
                HOST,
                "--target",
                TARGETS[1],
                "--dist-dir",
                one_run.to_str().unwrap(),
            ],
            &workspace,
        ),
        "dist of both targets",
    );
    let (a, b) = (files(&merged.join("oci")), files(&one_run.join("oci")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(
            bytes == &b[path],
            "oci/{path} differs from the one-run dist's"
        );
    }

    // The SBOMs came along: the referrers index lists the artifact of each image, as recorded.
    let layout_index: serde_json::Value = serde_json::from_slice(&a["greeter/index.json"]).unwrap();
    let entries = layout_index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{layout_index:#}");
    let referrers = entries[0]["annotations"]["io.github.castoff-rs.referrers"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let referrers: serde_json::Value =
        serde_json::from_slice(&a[&format!("greeter/blobs/sha256/{referrers}")]).unwrap();
    let mut listed: Vec<(String, String)> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["annotations"]["io.github.castoff-rs.referrer.subject"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let recorded = manifest(&merged);
    let digest_of = |kind: &str, target: &str| {
        recorded
            .artifacts
            .iter()
            .find(|artifact| artifact.kind == kind && artifact.target.as_deref() == Some(target))
            .and_then(|artifact| artifact.digest.clone())
            .unwrap()
    };
    let mut expected: Vec<(String, String)> = [HOST, TARGETS[1]]
        .iter()
        .map(|target| (digest_of("oci-image", target), digest_of("sbom", target)))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    // `publish` checks every blob the referrers index reaches before anything is sent: without
    // an SBOM's layer, it stops naming the blob and the artifact.
    let artifact_digest = &expected[0].1;
    let artifact: serde_json::Value = serde_json::from_slice(
        &a[&format!(
            "greeter/blobs/sha256/{}",
            artifact_digest.trim_start_matches("sha256:")
        )],
    )
    .unwrap();
    let sbom_layer = artifact["layers"][0]["digest"].as_str().unwrap();
    fs::remove_file(
        one_run
            .join("oci/greeter/blobs/sha256")
            .join(sbom_layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let refused = castoff(
        &[
            "publish",
            "--dry-run",
            "--dist-dir",
            one_run.to_str().unwrap(),
            "--pypi-url",
            "http://127.0.0.1:9/",
            "--npm-registry",
            "http://127.0.0.1:9/",
            "--oci-repository",
            "127.0.0.1:9/identical/greeter",
        ],
        &workspace,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("dist/ does not match its manifest; nothing was uploaded")
            && stderr.contains(&format!(
                "blob {sbom_layer} (referenced by {artifact_digest}) is missing"
            )),
        "{stderr}"
    );
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn refused_merges_name_the_problem_and_change_nothing() {
    let (workspace, parts) = partials();
    let root = workspace.parent().unwrap().join("refusals");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    // The previous dist/: a complete one (castoff replaces only a dist it wrote).
    let out = root.join("dist");
    copy_tree(&parts[0], &out);
    let previous = files(&out);

    let check = |parts: Vec<&PathBuf>, expected: &str| {
        let output = merge(workspace, &parts, &out, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
        assert!(stderr.contains("hint: "), "{stderr}");
        assert_eq!(files(&out), previous, "dist/ changed after a refused merge");
    };
    // The same target twice (two runners built it, or a folder passed twice).
    let copy = root.join("copy-of-host");
    copy_tree(&parts[0], &copy);
    check(vec![&parts[0], &copy], "is in both");

    // A partial of another version (a runner that built another commit).
    let other_version = root.join("other-version");
    copy_tree(&parts[1], &other_version);
    edit_manifest(
        &other_version,
        "\"version\": \"0.3.1\"",
        "\"version\": \"0.3.2\"",
    );
    check(
        vec![&parts[0], &other_version],
        "but the workspace is at version 0.3.1",
    );

    // A partial written by another castoff.
    let other_castoff = root.join("other-castoff");
    copy_tree(&parts[1], &other_castoff);
    edit_manifest(
        &other_castoff,
        &format!("\"castoff_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"castoff_version\": \"0.0.1\"",
    );
    check(
        vec![&parts[0], &other_castoff],
        "was written by castoff 0.0.1",
    );

    // A file changed after it was built.
    let changed = root.join("changed");
    copy_tree(&parts[1], &changed);
    let archive = changed.join("archives/greeter-0.3.1-aarch64-unknown-linux-musl.tar.gz");
    let mut bytes = fs::read(&archive).unwrap();
    bytes[100] ^= 1;
    fs::write(&archive, bytes).unwrap();
    check(vec![&parts[0], &changed], "does not match its manifest");

    // An image layout whose `index.json` lists its SBOM artifact beside the index (as castoff
    // wrote it before the referrers index): merged, the SBOM would be lost, so it is refused.
    let two_entries = root.join("two-entries");
    copy_tree(&parts[1], &two_entries);
    let index_path = two_entries.join("oci/greeter/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let entry = &mut index["manifests"][0];
    let referrers = entry["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("io.github.castoff-rs.referrers")
        .unwrap();
    let referrers: serde_json::Value = serde_json::from_slice(
        &fs::read(
            two_entries
                .join("oci/greeter/blobs/sha256")
                .join(referrers.as_str().unwrap().trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let artifact = referrers["manifests"][0].clone();
    index["manifests"].as_array_mut().unwrap().push(artifact);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    check(
        vec![&parts[0], &two_entries],
        "its `index.json` lists 2 entries; castoff writes exactly one, the image index",
    );

    let leftovers: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("castoff-staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn edit_manifest(dir: &Path, from: &str, to: &str) {
    let path = dir.join("manifest.json");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    fs::write(&path, text.replace(from, to)).unwrap();
}
