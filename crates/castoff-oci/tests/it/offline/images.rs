//! What castoff-oci writes, byte for byte: snapshots of the index, manifests, configs, layer
//! listings and deploy examples of the fixtures (built from tiny hand-made static ELF files, so
//! the digests do not depend on the compiler), reproducibility, base images from a layout, and
//! extra files. No external tools: `live::real_tools` and `live::docker` run the images.

use std::io::Read;
use std::path::Path;

use castoff_oci::{BuiltIndex, ImageOptions};
use castoff_plan::AppId;
use castoff_plan::plan::{BaseImage, ExtraFile};
use castoff_test_support::workspace::fixture_release;

use crate::common::*;
use expect_test::{expect, expect_file};
use serde_json::Value;

/// `tar -tv`-like listing of a gzip layer: mode, owner, size, mtime, path.
/// The listing of every layer of an image manifest, in order, `--` after each.
fn layers_listing(layout: &Path, manifest: &Value) -> String {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let digest = layer["digest"].as_str().unwrap();
            format!("{}--\n", layer_listing(&blob(layout, digest)))
        })
        .collect()
}

fn layer_listing(bytes: &[u8]) -> String {
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut out = String::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        assert!(header.as_ustar().is_some(), "not a plain ustar header");
        out.push_str(&format!(
            "{:04o} {}:{} {:>8} {} {}\n",
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
            header.size().unwrap(),
            header.mtime().unwrap(),
            entry.path().unwrap().display(),
        ));
    }
    out
}

/// Every file of a built layout and its archives, with sizes and digests.
fn layout_report(built: &BuiltIndex) -> String {
    let mut out = format!(
        "app: {}\nrepository: {}\ntag: {}\nindex: {} ({} bytes)\npinned: {}\n",
        built.app,
        built.repository,
        built.tag,
        built.index_digest,
        built.index_size,
        built.pinned_reference()
    );
    for image in &built.images {
        out.push_str(&format!(
            "\n{} ({})\n  manifest {} ({} bytes)\n  config   {} ({} bytes)\n",
            image.platform,
            image.target.triple,
            image.manifest_digest,
            image.manifest_size,
            image.config_digest,
            image.config_size
        ));
        for layer in &image.layers {
            out.push_str(&format!(
                "  layer    {} ({} bytes)\n    diff_id {}\n",
                layer.digest, layer.size, layer.diff_id
            ));
        }
        out.push_str(&format!(
            "  compressed size {} bytes\n  archive {} ({} bytes, sha256 {})\n",
            image.compressed_size,
            image.archive.file_name().unwrap().to_string_lossy(),
            image.archive_size,
            image.archive_sha256
        ));
    }
    let mut files: Vec<String> = walk(&built.layout_dir)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&built.layout_dir).unwrap();
            format!(
                "  {} {}\n",
                relative.display(),
                std::fs::metadata(&path).unwrap().len()
            )
        })
        .collect();
    files.sort();
    out.push_str("\nlayout files:\n");
    out.extend(files);
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Snapshots the index, and per platform the manifest, config and layer listing.
fn check_snapshots(name: &str, built: &BuiltIndex) {
    let layout = &built.layout_dir;
    let snapshot = |file: String, text: String| {
        expect_file![format!("../../snapshots/{file}")].assert_eq(&text);
    };
    snapshot(format!("{name}.layout.txt"), layout_report(built));
    snapshot(
        format!("{name}.index.json"),
        pretty(&blob_json(layout, &built.index_digest)),
    );
    for image in &built.images {
        let platform = image.platform.replace('/', "-");
        let manifest = blob_json(layout, &image.manifest_digest);
        snapshot(
            format!("{name}.{platform}.manifest.json"),
            pretty(&manifest),
        );
        snapshot(
            format!("{name}.{platform}.config.json"),
            pretty(&blob_json(layout, &image.config_digest)),
        );
        // Every layer (these images are on scratch: all are castoff's).
        snapshot(
            format!("{name}.{platform}.layer.txt"),
            layers_listing(layout, &manifest),
        );
    }
}

/// Canonical JSON: what is stored is exactly the compact, key-sorted form.
fn assert_canonical(layout: &Path, digest: &str) {
    let bytes = blob(layout, digest);
    let text = String::from_utf8(bytes).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    // Compact: re-serializing the parsed value gives the same bytes.
    assert_eq!(serde_json::to_string(&value).unwrap(), text);
    fn sorted(value: &Value) -> bool {
        match value {
            Value::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                keys.windows(2).all(|w| w[0] < w[1]) && map.values().all(sorted)
            }
            Value::Array(items) => items.iter().all(sorted),
            _ => true,
        }
    }
    assert!(sorted(&value), "{text}");
}

fn build_fake(fixture: &str, test: &str) -> (castoff_plan::Release, BuiltIndex) {
    let release = fixture_release(fixture);
    let dir = temp_dir(test);
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let built = build(&release, inputs, &dir.join("dist"));
    (release, built)
}

#[test]
fn http_service_snapshots() {
    let (release, built) = build_fake("http-service", "snapshot-http-service");
    check_snapshots("http-service", &built);
    assert_canonical(&built.layout_dir, &built.index_digest);
    for image in &built.images {
        assert_canonical(&built.layout_dir, &image.manifest_digest);
        assert_canonical(&built.layout_dir, &image.config_digest);
    }
    let dist = built.layout_dir.parent().unwrap().parent().unwrap();
    let files = castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], dist).unwrap();
    assert_eq!(files.len(), 2);
    expect_file!["../../snapshots/http-service.compose.yaml"]
        .assert_eq(&std::fs::read_to_string(&files[0]).unwrap());
    expect_file!["../../snapshots/http-service.kubernetes.yaml"]
        .assert_eq(&std::fs::read_to_string(&files[1]).unwrap());
}

/// Issue 23's settings: `ExposedPorts` with `53/udp`, `StartInterval`, the labels; compose by
/// version tag with the digest in a comment, restart policy and stop grace period; Kubernetes
/// with replicas, resources, startup, liveness and readiness probes, named and UDP ports and
/// the labels (an invalid Kubernetes label as an annotation).
#[test]
fn deploy_settings_reach_the_config_and_the_deploy_examples() {
    let release = service_release_with_deploy_settings();
    let dir = temp_dir("deploy-settings");
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let built = build(&release, inputs, &dir.join("dist"));
    let config = blob_json(&built.layout_dir, &built.images[0].config_digest);
    expect![[r#"
        {
          "ExposedPorts": {
            "53/udp": {},
            "8080/tcp": {},
            "9090/tcp": {}
          },
          "Healthcheck": {
            "Interval": 2000000000,
            "Retries": 3,
            "StartInterval": 500000000,
            "StartPeriod": 10000000000,
            "Test": [
              "CMD",
              "/usr/local/bin/pinger",
              "healthcheck"
            ],
            "Timeout": 1000000000
          },
          "Labels": {
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
            "org.opencontainers.image.description": "Answers pings over HTTP; castoff's service test fixture",
            "org.opencontainers.image.licenses": "Apache-2.0 OR MIT",
            "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
            "org.opencontainers.image.source": "https://github.com/acme/pinger",
            "org.opencontainers.image.title": "pinger",
            "org.opencontainers.image.url": "https://github.com/acme/pinger",
            "org.opencontainers.image.vendor": "Acme Inc.",
            "org.opencontainers.image.version": "1.4.0",
            "team": "payments"
          },
          "Volumes": {
            "/data": {},
            "/var/cache/pinger": {}
          }
        }
    "#]]
    .assert_eq(&pretty(&serde_json::json!({
        "ExposedPorts": config["config"]["ExposedPorts"],
        "Healthcheck": config["config"]["Healthcheck"],
        "Labels": config["config"]["Labels"],
        "Volumes": config["config"]["Volumes"],
    })));
    let files =
        castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dir.join("dist"))
            .unwrap();
    let compose = std::fs::read_to_string(&files[0]).unwrap();
    let kubernetes = std::fs::read_to_string(&files[1]).unwrap();
    // The tag `docker load` registers, and the digest of the index in the comment.
    assert!(compose.contains("    image: \"ghcr.io/acme/pinger:1.4.0\"\n"));
    assert!(compose.contains(&format!(
        "    # pinned: image: \"ghcr.io/acme/pinger@{}\"\n",
        built.index_digest
    )));
    expect_file!["../../snapshots/http-service-deploy-settings.compose.yaml"].assert_eq(&compose);
    expect_file!["../../snapshots/http-service-deploy-settings.kubernetes.yaml"]
        .assert_eq(&kubernetes);
}

#[test]
fn single_cli_snapshots_and_no_deploy_examples() {
    let (release, built) = build_fake("single-cli", "snapshot-single-cli");
    check_snapshots("single-cli", &built);
    // A command-line tool (no ports, no health check) is not a service: no deploy examples.
    let dist = built.layout_dir.parent().unwrap().parent().unwrap();
    let files = castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], dist).unwrap();
    assert!(files.is_empty());
    assert!(!dist.join("deploy").exists());
}

/// One image for each Linux architecture castoff has a platform for, from binaries of the
/// right machine, class and byte order (s390x is big-endian): the index lists the seven
/// platforms in order, each config names its own, each archive is named after it.
#[test]
fn one_image_per_linux_architecture() {
    use castoff_test_support::binaries::{
        EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64, elf_header,
    };
    let release = fixture_release("single-cli");
    let dir = temp_dir("every-architecture");
    // (target, ELF machine, 64-bit, big-endian, platform, archive)
    #[rustfmt::skip]
    let cases = [
        ("x86_64-unknown-linux-musl", EM_X86_64, true, false, "linux/amd64", "greeter-linux-amd64.tar"),
        ("aarch64-unknown-linux-musl", EM_AARCH64, true, false, "linux/arm64/v8", "greeter-linux-arm64.tar"),
        ("armv7-unknown-linux-musleabihf", EM_ARM, false, false, "linux/arm/v7", "greeter-linux-arm-v7.tar"),
        ("i686-unknown-linux-musl", EM_386, false, false, "linux/386", "greeter-linux-386.tar"),
        ("riscv64gc-unknown-linux-musl", EM_RISCV, true, false, "linux/riscv64", "greeter-linux-riscv64.tar"),
        ("powerpc64le-unknown-linux-musl", EM_PPC64, true, false, "linux/ppc64le", "greeter-linux-ppc64le.tar"),
        ("s390x-unknown-linux-musl", EM_S390, true, true, "linux/s390x", "greeter-linux-s390x.tar"),
    ];
    let inputs = cases
        .iter()
        .map(|&(triple, machine, elf64, big_endian, _, _)| {
            let path = dir.join("bin").join(triple);
            std::fs::create_dir_all(&path).unwrap();
            let path = path.join("greeter");
            std::fs::write(&path, elf_header(machine, elf64, big_endian)).unwrap();
            castoff_oci::ImageInput {
                target: triple.parse().unwrap(),
                binaries: vec![("greeter".to_owned(), path)],
                sbom: None,
            }
        })
        .collect();
    let built = build(&release, inputs, &dir.join("dist"));

    let platform_of = |value: &Value| {
        let mut platform = format!(
            "{}/{}",
            value["os"].as_str().unwrap(),
            value["architecture"].as_str().unwrap()
        );
        if let Some(variant) = value.get("variant").and_then(Value::as_str) {
            platform = format!("{platform}/{variant}");
        }
        platform
    };
    let index = blob_json(&built.layout_dir, &built.index_digest);
    let listed: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| platform_of(&entry["platform"]))
        .collect();
    assert_eq!(
        listed,
        [
            "linux/386",
            "linux/amd64",
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/ppc64le",
            "linux/riscv64",
            "linux/s390x"
        ]
    );
    for (triple, _, _, _, platform, archive) in cases {
        let image = built
            .images
            .iter()
            .find(|image| image.target.triple == triple)
            .unwrap();
        assert_eq!(image.platform, platform);
        let config = blob_json(&built.layout_dir, &image.config_digest);
        assert_eq!(platform_of(&config), platform, "{triple}'s config");
        assert_eq!(
            image.archive.file_name().unwrap().to_str().unwrap(),
            archive
        );
    }
}

/// With SBOMs, the layout's `index.json` still lists one entry, the index under its version,
/// so `oci:<dir>` needs no tag (docs/channels/oci.md): the SBOM artifacts hang off it through
/// the referrers index its `io.github.castoff-rs.referrers` annotation names, one descriptor
/// per image in platform order, each naming its subject; the artifact manifests name the same
/// subjects and hold the SBOMs as given.
#[test]
fn sboms_are_listed_by_the_one_index_json_entry() {
    let release = fixture_release("http-service");
    let dir = temp_dir("sboms");
    let mut inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    for input in &mut inputs {
        input.sbom = Some(format!("{{\"sbom of\":\"{}\"}}", input.target.triple).into_bytes());
    }
    let built = build(&release, inputs, &dir.join("dist"));
    let layout = &built.layout_dir;
    let layout_index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    expect_file!["../../snapshots/http-service-sboms.layout-index.json"]
        .assert_eq(&pretty(&layout_index));
    let entries = layout_index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{layout_index:#}");
    assert_eq!(entries[0]["digest"], built.index_digest.as_str());
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.4.0"
    );
    let referrers_digest = entries[0]["annotations"][castoff_oci::LAYOUT_REFERRERS_ANNOTATION]
        .as_str()
        .unwrap();
    assert_canonical(layout, referrers_digest);
    let referrers = blob_json(layout, referrers_digest);
    expect_file!["../../snapshots/http-service-sboms.referrers.json"]
        .assert_eq(&pretty(&referrers));
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), built.images.len());
    for (entry, image) in listed.iter().zip(&built.images) {
        let artifact_digest = image.sbom_manifest_digest.as_deref().unwrap();
        assert_eq!(entry["digest"], artifact_digest, "{}", image.platform);
        assert_eq!(entry["artifactType"], castoff_oci::SBOM_ARTIFACT_TYPE);
        assert_eq!(
            entry["annotations"][castoff_oci::REFERRER_SUBJECT_ANNOTATION],
            image.manifest_digest.as_str()
        );
        assert_canonical(layout, artifact_digest);
        let artifact = blob_json(layout, artifact_digest);
        assert_eq!(
            artifact["subject"]["digest"],
            image.manifest_digest.as_str()
        );
        assert_eq!(artifact["artifactType"], castoff_oci::SBOM_ARTIFACT_TYPE);
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.created"],
            artifact["annotations"]["org.opencontainers.image.created"]
        );
        assert_eq!(
            blob(layout, artifact["layers"][0]["digest"].as_str().unwrap()),
            format!("{{\"sbom of\":\"{}\"}}", image.target.triple).into_bytes()
        );
    }
    // The image index itself is the one an SBOM-less build writes: the SBOMs are not in it.
    let (_, without) = build_fake("http-service", "sboms-without");
    assert_eq!(built.index_digest, without.index_digest);
}

#[test]
fn two_builds_are_byte_identical() {
    let (_, first) = build_fake("http-service", "reproducible-1");
    let (_, second) = build_fake("http-service", "reproducible-2");
    assert_eq!(first.index_digest, second.index_digest);
    let strip = |built: &BuiltIndex| {
        built
            .images
            .iter()
            .map(|image| (image.manifest_digest.clone(), image.archive_sha256.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&first), strip(&second));
    // Building again into the same dist/ replaces the layout with identical content.
    let release = fixture_release("http-service");
    let dir = first.layout_dir.parent().unwrap().parent().unwrap();
    let inputs = fake_inputs(&release, AppId(0), &dir.join("../bin"));
    let again = build(&release, inputs, dir);
    assert_eq!(again, first);
    // A different SOURCE_DATE_EPOCH gives different digests.
    let inputs = fake_inputs(&release, AppId(0), &dir.join("../bin"));
    let later = build_first(
        &release,
        inputs,
        &ImageOptions {
            workspace_root: &release.workspace_root,
            target_directory: &release.target_directory,
            source_date_epoch: 1_700_000_001,
            revision: None,
            deflate: castoff_test_support::deflate_cache(),
        },
        &temp_dir("reproducible-3"),
    )
    .unwrap();
    assert_ne!(later.index_digest, first.index_digest);
}

#[test]
fn extra_files_land_with_their_mode_and_parents() {
    let mut release = fixture_release("http-service");
    let dir = temp_dir("extra-files");
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(workspace.join("conf")).unwrap();
    std::fs::write(workspace.join("conf/pinger.toml"), "port = 8080\n").unwrap();
    std::fs::write(workspace.join("conf/motd"), "hello\n").unwrap();
    release.workspace_root = workspace.clone();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files = vec![
        ExtraFile {
            src: workspace.join("conf/pinger.toml"),
            glob: None,
            dst: "/etc/pinger/pinger.toml".to_owned(),
            mode: Some(0o640),
            dir_mode: 0o755,
            owner: (0, 0),
        },
        ExtraFile {
            src: workspace.join("conf/motd"),
            glob: None,
            dst: "/srv/share/motd".to_owned(),
            mode: None,
            dir_mode: 0o755,
            owner: (0, 0),
        },
    ];
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let built = build(&release, inputs, &dir.join("dist"));
    let manifest = blob_json(&built.layout_dir, &built.images[0].manifest_digest);
    // The files layer, then one layer per binary.
    let listing = layers_listing(&built.layout_dir, &manifest);
    expect![[r#"
        0755 0:0        0 1700000000 etc/
        0644 0:0       27 1700000000 etc/group
        0644 0:0       94 1700000000 etc/passwd
        0755 0:0        0 1700000000 etc/pinger/
        0640 0:0       12 1700000000 etc/pinger/pinger.toml
        0755 0:0        0 1700000000 home/
        0755 65532:65532        0 1700000000 home/nonroot/
        0700 0:0        0 1700000000 root/
        0755 0:0        0 1700000000 srv/
        0755 0:0        0 1700000000 srv/share/
        0644 0:0        6 1700000000 srv/share/motd
        1777 0:0        0 1700000000 tmp/
        --
        0755 0:0        0 1700000000 usr/
        0755 0:0        0 1700000000 usr/local/
        0755 0:0        0 1700000000 usr/local/bin/
        0755 0:0      199 1700000000 usr/local/bin/pinger
        --
    "#]]
    .assert_eq(&listing);
}

/// A workspace with a small tree: `site/` (an executable script, a nested directory) and
/// `static/` for globs.
fn tree_workspace(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let workspace = dir.join("workspace");
    for (path, text) in [
        ("site/index.html", "<h1>hi</h1>\n"),
        ("site/b/z.txt", "z\n"),
        ("site/a/run.sh", "#!/bin/sh\n"),
        ("static/app.css", "a{}\n"),
        ("static/deep/x/theme.css", "b{}\n"),
        ("static/deep/x/logo.png", "png"),
    ] {
        let path = workspace.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    std::fs::set_permissions(
        workspace.join("site/a/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    workspace
}

fn tree_entries(workspace: &Path) -> Vec<ExtraFile> {
    vec![
        ExtraFile {
            src: workspace.join("site"),
            glob: None,
            dst: "/srv/www".to_owned(),
            mode: None,
            dir_mode: 0o750,
            owner: (65532, 65532),
        },
        ExtraFile {
            src: workspace.join("static"),
            glob: Some("**/*.css".to_owned()),
            dst: "/srv/css".to_owned(),
            mode: Some(0o444),
            // The directories between `dst` and a match take `dir-mode` and the owner too.
            dir_mode: 0o705,
            owner: (7, 8),
        },
    ]
}

/// A directory `src` copies its tree under `dst` with `dir-mode` and the owner, files keep
/// 0755 when executable; a glob copies its matches relative to its fixed prefix; volumes are
/// directories owned by the image user and listed in the config; everything sorted by path.
#[test]
fn extra_trees_globs_and_volumes_land_sorted_with_modes_and_owners() {
    let mut release = fixture_release("http-service");
    let dir = temp_dir("extra-trees");
    let workspace = tree_workspace(&dir);
    release.workspace_root = workspace.clone();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files = tree_entries(&workspace);
    oci.volumes = vec!["/data".to_owned(), "/var/cache/app".to_owned()];
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let built = build(&release, inputs, &dir.join("dist"));
    let manifest = blob_json(&built.layout_dir, &built.images[0].manifest_digest);
    let listing = layers_listing(&built.layout_dir, &manifest);
    expect![[r#"
        0755 65532:65532        0 1700000000 data/
        0755 0:0        0 1700000000 etc/
        0644 0:0       27 1700000000 etc/group
        0644 0:0       94 1700000000 etc/passwd
        0755 0:0        0 1700000000 home/
        0755 65532:65532        0 1700000000 home/nonroot/
        0700 0:0        0 1700000000 root/
        0755 0:0        0 1700000000 srv/
        0705 7:8        0 1700000000 srv/css/
        0444 7:8        4 1700000000 srv/css/app.css
        0705 7:8        0 1700000000 srv/css/deep/
        0705 7:8        0 1700000000 srv/css/deep/x/
        0444 7:8        4 1700000000 srv/css/deep/x/theme.css
        0750 65532:65532        0 1700000000 srv/www/
        0750 65532:65532        0 1700000000 srv/www/a/
        0755 65532:65532       10 1700000000 srv/www/a/run.sh
        0750 65532:65532        0 1700000000 srv/www/b/
        0644 65532:65532        2 1700000000 srv/www/b/z.txt
        0644 65532:65532       12 1700000000 srv/www/index.html
        1777 0:0        0 1700000000 tmp/
        0755 0:0        0 1700000000 var/
        0755 0:0        0 1700000000 var/cache/
        0755 65532:65532        0 1700000000 var/cache/app/
        --
        0755 0:0        0 1700000000 usr/
        0755 0:0        0 1700000000 usr/local/
        0755 0:0        0 1700000000 usr/local/bin/
        0755 0:0      199 1700000000 usr/local/bin/pinger
        --
    "#]]
    .assert_eq(&listing);
    let config = blob_json(
        &built.layout_dir,
        manifest["config"]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        config["config"]["Volumes"],
        serde_json::json!({ "/data": {}, "/var/cache/app": {} })
    );
    // The history names the first 16 paths of the files layer and counts the rest.
    expect!["castoff: added /data, /etc/group, /etc/passwd, /home/nonroot, /root, /srv/css, /srv/css/app.css, /srv/css/deep, /srv/css/deep/x, /srv/css/deep/x/theme.css, /srv/www, /srv/www/a, /srv/www/a/run.sh, /srv/www/b, /srv/www/b/z.txt, /srv/www/index.html and 2 more"].assert_eq(config["history"][0]["created_by"].as_str().unwrap());

    // Byte-identical the second time, from a fresh output directory.
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin2"));
    let again = build(&release, inputs, &dir.join("dist2"));
    assert_eq!(again.index_digest, built.index_digest);
    assert_eq!(again.images[0].layers, built.images[0].layers);
}

/// An image built on another image (here: the single-cli fixture's own image, as an OCI
/// layout): base layers are copied as they are, the config inherits Env and keeps unknown
/// fields, the base's OCI labels are replaced, and the manifest names the base digest.
#[test]
fn base_image_from_an_oci_layout() {
    let (_, base) = build_fake("single-cli", "base-layout-base");
    let base_dir = base.layout_dir.clone();
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(base_dir.clone());
    let dir = temp_dir("base-layout");
    let mut inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    // The base has amd64 and arm64/v8 images, like pinger.
    inputs.sort_by_key(|input| input.target.triple);
    let built = build(&release, inputs, &dir.join("dist"));
    for (image, base_image) in built.images.iter().zip(&base.images) {
        assert_eq!(image.platform, base_image.platform);
        // The base's layers, then the binary's (on a base, without extra files, castoff adds
        // no files layer).
        let base_layers = base_image.layers.len();
        assert_eq!(image.layers.len(), base_layers + 1);
        assert_eq!(image.layers[..base_layers], base_image.layers[..]);
        let manifest = blob_json(&built.layout_dir, &image.manifest_digest);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.base.digest"],
            base_image.manifest_digest.as_str()
        );
        // The base layer blob was copied into this layout.
        assert_eq!(
            blob(&built.layout_dir, &image.layers[0].digest),
            blob(&base.layout_dir, &image.layers[0].digest)
        );
    }
    let config = blob_json(&built.layout_dir, &built.images[0].config_digest);
    expect_file!["../../snapshots/http-service-on-single-cli.linux-amd64.config.json"]
        .assert_eq(&pretty(&config));
}

/// A base layout as other tools write it: Docker media types, no platform in `index.json`,
/// a config with fields castoff does not know, a Cmd, a root user and OCI labels of its own.
fn handmade_base_layout(dir: &Path) -> (String, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("etc/os-release").unwrap();
    header.set_size(16);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append(&header, &b"ID=handmade-os\n\n"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = digest_of(&tar);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &tar).unwrap();
    let layer = gzip.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "author": "the base's author",
        "x-vendor-extension": {"kept": true},
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PINGER_PORT=1"],
            "User": "0",
            "WorkingDir": "/srv",
            "Cmd": ["/bin/sh"],
            "ArgsEscaped": true,
            "ExposedPorts": {"22/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "handmade", "vendor.label": "kept"}
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "handmade layer"}]
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest_of(&layer), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest_of(&manifest), "size": manifest.len()}]
    });
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for bytes in [&layer, &config, &manifest] {
        let digest = digest_of(bytes);
        std::fs::write(blobs.join(digest.strip_prefix("sha256:").unwrap()), bytes).unwrap();
    }
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (digest_of(&manifest), digest_of(&layer))
}

/// `sha256:<hex>` of bytes, with castoff-archive's digest helpers.
fn digest_of(bytes: &[u8]) -> String {
    use castoff_archive::digest::{hex, sha256};
    format!("sha256:{}", hex(&sha256(bytes)))
}

#[test]
fn foreign_base_layout_keeps_unknown_fields_and_gets_oci_types() {
    let dir = temp_dir("foreign-base");
    let (base_manifest, base_layer) = handmade_base_layout(&dir.join("base"));
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(dir.join("base"));
    let mut inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    inputs.retain(|input| input.target.triple == HOST_TRIPLE);
    let built = build(&release, inputs, &dir.join("dist"));
    let image = &built.images[0];
    let manifest = blob_json(&built.layout_dir, &image.manifest_digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        base_manifest.as_str()
    );
    assert_eq!(manifest["layers"][0]["digest"], base_layer.as_str());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // No /etc/passwd on a base: the base provides its own users.
    let ours = manifest["layers"][1]["digest"].as_str().unwrap();
    expect![[r#"
        0755 0:0        0 1700000000 usr/
        0755 0:0        0 1700000000 usr/local/
        0755 0:0        0 1700000000 usr/local/bin/
        0755 0:0      199 1700000000 usr/local/bin/pinger
    "#]]
    .assert_eq(&layer_listing(&blob(&built.layout_dir, ours)));
    expect_file!["../../snapshots/http-service-on-handmade.linux-amd64.config.json"]
        .assert_eq(&pretty(&blob_json(&built.layout_dir, &image.config_digest)));
}
