//! The images, checked by the tools people use on them: `oci-image-tool validate`, `skopeo
//! inspect`, GNU `tar`, `umoci unpack` + `chroot` and `runc run`, `kubernetes-validate`,
//! `docker-compose config` and check-jsonschema's compose schema. The harness
//! (`cargo xtask test`) provides every tool; a missing one fails the test with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use castoff_oci::{BuiltIndex, LAYER_ZSTD_MEDIA_TYPE};
use castoff_plan::plan::{BaseImage, LayerCompression};
use castoff_plan::{AppId, Release};
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::fixture_release;

use crate::common::*;
use serde_json::Value;

/// A fixture built with the real static host binary and fake binaries for other platforms.
fn build_real(env: &TestEnv, fixture: &str, scratch: &str) -> (Release, BuiltIndex, PathBuf) {
    let release = fixture_release(fixture);
    build_release(env, release, fixture, scratch)
}

pub(super) fn build_release(
    env: &TestEnv,
    release: Release,
    fixture: &str,
    scratch: &str,
) -> (Release, BuiltIndex, PathBuf) {
    let dir = env.scratch_dir(scratch);
    let fake_dir = dir.join("fake-bin");
    let inputs = inputs(&release, AppId(0), |target, bin| {
        if target.triple == HOST_TRIPLE {
            fixture_binary(fixture, bin, Linking::Static)
        } else {
            fake_static_elf(&fake_dir.join(target.triple), bin, EM_AARCH64, "fake\n")
        }
    });
    let built = build(&release, inputs, &dir.join("dist"));
    (release, built, dir)
}

/// Extracts a `docker load` archive (a one-platform OCI layout) into `dir`.
fn extract(env: &TestEnv, archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new(env.tool("tar"))
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir));
}

#[test]
fn oci_image_tool_skopeo_and_gnu_tar_accept_the_layout() {
    let env = TestEnv::get();
    let (_, built, dir) = build_real(&env, "http-service", "oci-tools");
    let layout = &built.layout_dir;

    // The whole layout. oci-image-tool does not descend into a nested index (it warns), so
    // each platform's archive, whose index.json names the manifest directly, is validated too.
    let said = run(Command::new(env.tool("oci-image-tool"))
        .args(["validate", "--type", "image", "--ref", "name=1.4.0"])
        .arg(layout));
    assert!(said.contains("Validation succeeded"), "{said}");
    for image in &built.images {
        let unpacked = dir.join("archive").join(image.platform.replace('/', "-"));
        extract(&env, &image.archive, &unpacked);
        let said = run(Command::new(env.tool("oci-image-tool"))
            .args(["validate", "--type", "image", "--ref", "name=1.4.0"])
            .arg(&unpacked));
        assert!(said.contains("Validation succeeded"), "{image:?}: {said}");
        let legacy: Value =
            serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(legacy[0]["RepoTags"][0], "ghcr.io/acme/pinger:1.4.0");
        assert_eq!(
            legacy[0]["Config"],
            format!(
                "blobs/sha256/{}",
                image.config_digest.strip_prefix("sha256:").unwrap()
            )
        );
        // skopeo reads the archive's layout and finds exactly our manifest.
        let raw = run(Command::new(env.tool("skopeo"))
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:1.4.0", unpacked.display())));
        assert_eq!(raw.as_bytes(), blob(layout, &image.manifest_digest));
        let inspect: Value = serde_json::from_str(&run(Command::new(env.tool("skopeo"))
            .arg("inspect")
            .arg(format!("oci:{}:1.4.0", unpacked.display()))))
        .unwrap();
        assert_eq!(inspect["Digest"], image.manifest_digest.as_str());
    }

    // skopeo: the raw index is ours byte for byte; per platform, the config is ours.
    let reference = format!("oci:{}:1.4.0", layout.display());
    let raw = run(Command::new(env.tool("skopeo")).args(["inspect", "--raw", &reference]));
    assert_eq!(raw.as_bytes(), blob(layout, &built.index_digest));
    let inspect: Value = serde_json::from_str(&run(
        Command::new(env.tool("skopeo")).args(["inspect", &reference])
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], built.index_digest.as_str());
    for image in &built.images {
        let platform: Vec<&str> = image.platform.split('/').collect();
        let mut command = Command::new(env.tool("skopeo"));
        command.args(["--override-os", platform[0], "--override-arch", platform[1]]);
        if let Some(variant) = platform.get(2) {
            command.args(["--override-variant", variant]);
        }
        let config = run(command.args(["inspect", "--config", "--raw", &reference]));
        assert_eq!(
            config.as_bytes(),
            blob(layout, &image.config_digest),
            "{}",
            image.platform
        );
        let mut command = Command::new(env.tool("skopeo"));
        command.args(["--override-os", platform[0], "--override-arch", platform[1]]);
        if let Some(variant) = platform.get(2) {
            command.args(["--override-variant", variant]);
        }
        let inspect: Value =
            serde_json::from_str(&run(command.args(["inspect", &reference]))).unwrap();
        assert_eq!(inspect["Architecture"], platform[1]);
        assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(
            inspect["Labels"]["org.opencontainers.image.version"],
            "1.4.0"
        );
        let layers: Vec<&str> = inspect["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer.as_str().unwrap())
            .collect();
        let ours: Vec<&str> = image
            .layers
            .iter()
            .map(|layer| layer.digest.as_str())
            .collect();
        assert_eq!(layers, ours);
    }

    // GNU tar lists every layer (the files, then the binary), with our modes, owners (the
    // non-root user's home is its own) and times.
    for image in &built.images {
        let mut lines = Vec::new();
        for layer in &image.layers {
            let path = layout
                .join("blobs/sha256")
                .join(layer.digest.strip_prefix("sha256:").unwrap());
            let listing = run(Command::new(env.tool("tar"))
                .args(["--utc", "--numeric-owner", "-tvzf"])
                .arg(&path));
            lines.extend(listing.lines().map(|line| {
                // mode owner size date time path: drop the size (it differs per platform).
                let fields: Vec<&str> = line.split_whitespace().collect();
                format!(
                    "{} {} {} {} {}",
                    fields[0], fields[1], fields[3], fields[4], fields[5]
                )
            }));
        }
        assert_eq!(
            lines,
            [
                "drwxr-xr-x 0/0 2023-11-14 22:13 etc/",
                "-rw-r--r-- 0/0 2023-11-14 22:13 etc/group",
                "-rw-r--r-- 0/0 2023-11-14 22:13 etc/passwd",
                "drwxr-xr-x 0/0 2023-11-14 22:13 home/",
                "drwxr-xr-x 65532/65532 2023-11-14 22:13 home/nonroot/",
                "drwx------ 0/0 2023-11-14 22:13 root/",
                "drwxrwxrwt 0/0 2023-11-14 22:13 tmp/",
                "drwxr-xr-x 0/0 2023-11-14 22:13 usr/",
                "drwxr-xr-x 0/0 2023-11-14 22:13 usr/local/",
                "drwxr-xr-x 0/0 2023-11-14 22:13 usr/local/bin/",
                "-rwxr-xr-x 0/0 2023-11-14 22:13 usr/local/bin/pinger",
            ],
            "{}",
            image.platform
        );
    }
    // The docker archives are plain tars GNU tar reads too.
    for image in &built.images {
        run(Command::new(env.tool("tar")).arg("-tf").arg(&image.archive));
    }
}

/// The host platform's `docker load` archive, extracted to `dir/host-layout`.
fn host_layout(env: &TestEnv, built: &BuiltIndex, dir: &Path) -> PathBuf {
    let image = built
        .images
        .iter()
        .find(|image| image.target.triple == HOST_TRIPLE)
        .expect("a host image");
    let layout = dir.join("host-layout");
    extract(env, &image.archive, &layout);
    layout
}

/// `umoci unpack` of `layout:tag` into `dir/bundle`; returns the bundle directory.
fn umoci_unpack(env: &TestEnv, layout: &Path, tag: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    run(Command::new(env.tool("umoci"))
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    bundle
}

/// Unpacks the host platform's image with umoci; returns the bundle directory.
pub(super) fn unpack_host_image(env: &TestEnv, built: &BuiltIndex, dir: &Path) -> PathBuf {
    let layout = host_layout(env, built, dir);
    umoci_unpack(env, &layout, &built.tag, dir)
}

/// `chroot <rootfs> <program> --version`.
fn chroot_version(env: &TestEnv, bundle: &Path, program: &str) -> String {
    run(Command::new(env.tool("chroot"))
        .arg(bundle.join("rootfs"))
        .args([program, "--version"]))
}

/// `runc run` of the bundle with `args`, non-interactive, then `runc delete`; fails unless
/// the program exits 0.
pub(super) fn runc_run(env: &TestEnv, bundle: &Path, args: &[&str]) -> String {
    let output = runc_output(env, bundle, args);
    assert!(
        output.status.success(),
        "runc run {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `runc run` of the bundle with `args`, non-interactive, then `runc delete`: what the
/// program printed and how it exited.
pub(super) fn runc_output(env: &TestEnv, bundle: &Path, args: &[&str]) -> std::process::Output {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    // umoci writes `terminal: true`; without a TTY runc fails on /dev/tty.
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = args.iter().map(|arg| Value::from(*arg)).collect();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let id = format!(
        "castoff-oci-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let output = output(
        Command::new(env.tool("runc"))
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&id),
    );
    // `runc run` removes a container that exited; delete in case it did not.
    let _ = Command::new(env.tool("runc"))
        .args(["delete", "--force", &id])
        .output();
    output
}

#[test]
fn the_entrypoint_runs_in_a_chroot_and_under_runc() {
    let env = TestEnv::get();
    let (_, built, dir) = build_real(&env, "http-service", "oci-run");
    let bundle = unpack_host_image(&env, &built, &dir);
    assert_eq!(
        chroot_version(&env, &bundle, "/usr/local/bin/pinger"),
        "pinger 1.4.0\n"
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    // umoci turned the image config into the runtime config: our user, entrypoint and env.
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(config["process"]["user"]["gid"], 65532);
    assert_eq!(config["process"]["args"][0], "/usr/local/bin/pinger");
    assert!(
        config["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("PINGER_PORT=8080"))
    );
    assert_eq!(
        runc_run(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );
    // /etc/passwd names the non-root user, /tmp is writable by it.
    let passwd = std::fs::read_to_string(bundle.join("rootfs/etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::fs::metadata(bundle.join("rootfs/tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
}

#[test]
fn an_image_on_a_base_layout_runs_both_binaries() {
    let env = TestEnv::get();
    // The base: greeter's image, built by castoff (scratch + passwd + greeter).
    let (_, base, _) = build_real(&env, "single-cli", "oci-base-base");
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(base.layout_dir.clone());
    let (_, built, dir) = build_release(&env, release, "http-service", "oci-base");
    let bundle = unpack_host_image(&env, &built, &dir);
    assert_eq!(
        chroot_version(&env, &bundle, "/usr/local/bin/greeter"),
        "greeter 0.3.1\n"
    );
    assert_eq!(
        runc_run(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );
    // The base's passwd came through its layer.
    assert!(bundle.join("rootfs/etc/passwd").is_file());
}

/// `oci.layer-compression = "zstd"`: castoff's layers are `tar+zstd`, `zstd` decompresses
/// each to exactly the tar its diff_id names (the same tar as the gzip build's), skopeo copies
/// the image (checking every digest) and converts it to gzip, which umoci unpacks and runc runs
/// (umoci 0.4 reads no zstd itself).
#[test]
fn zstd_layers_hold_the_same_tar_and_run_under_runc() {
    use sha2::{Digest as _, Sha256};
    let env = TestEnv::get();
    let (_, gzip, _) = build_real(&env, "http-service", "oci-zstd-gzip");
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().layer_compression = LayerCompression::Zstd;
    let (_, built, dir) = build_release(&env, release, "http-service", "oci-zstd");
    let layout = &built.layout_dir;
    for (image, gzip_image) in built.images.iter().zip(&gzip.images) {
        let manifest: Value =
            serde_json::from_slice(&blob(layout, &image.manifest_digest)).unwrap();
        let config: Value = serde_json::from_slice(&blob(layout, &image.config_digest)).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert!(!layers.is_empty());
        for (layer, diff_id) in layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            assert_eq!(layer["mediaType"], LAYER_ZSTD_MEDIA_TYPE, "{manifest}");
            let path = layout.join("blobs/sha256").join(
                layer["digest"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("sha256:")
                    .unwrap(),
            );
            let tar = output(Command::new(env.tool("zstd")).arg("-dc").arg(&path));
            assert!(tar.status.success(), "zstd -dc {}", path.display());
            let digest = format!("sha256:{:x}", Sha256::digest(&tar.stdout));
            assert_eq!(
                diff_id.as_str(),
                Some(digest.as_str()),
                "{}",
                path.display()
            );
        }
        let gzip_config: Value =
            serde_json::from_slice(&blob(&gzip.layout_dir, &gzip_image.config_digest)).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"], gzip_config["rootfs"]["diff_ids"],
            "{}",
            image.platform
        );
        assert_ne!(image.manifest_digest, gzip_image.manifest_digest);
    }
    // The host image's docker-load archive, converted to gzip by skopeo, then run.
    let archive = host_layout(&env, &built, &dir);
    let converted = dir.join("converted");
    run(Command::new(env.tool("skopeo"))
        .args(["copy", "--dest-compress", "--dest-compress-format", "gzip"])
        .arg(format!("oci:{}:{}", archive.display(), built.tag))
        .arg(format!("oci:{}:{}", converted.display(), built.tag)));
    let bundle = umoci_unpack(&env, &converted, &built.tag, &dir);
    assert_eq!(
        runc_run(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );
}

/// The SBOM castoff attaches to each image in these tests: small, and different per target.
fn test_sbom(target: &castoff_plan::Target) -> Vec<u8> {
    format!(
        "{{\"bomFormat\":\"CycloneDX\",\"target\":\"{}\"}}",
        target.triple
    )
    .into_bytes()
}

/// The ```sh block of docs/channels/oci.md that lists the layout's SBOMs, its `cd` aimed at
/// `layout`.
fn documented_sbom_listing(layout: &Path) -> String {
    let doc = std::fs::read_to_string(
        castoff_test_support::workspace::repository_root().join("docs/channels/oci.md"),
    )
    .unwrap();
    let block = doc
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|block| block.contains("io.github.castoff-rs.referrers"))
        .expect("docs/channels/oci.md shows how to list the SBOMs");
    let script = block.replacen(
        "cd dist/oci/pinger\n",
        &format!("cd '{}'\n", layout.display()),
        1,
    );
    assert_ne!(
        script, block,
        "the listing starts with `cd dist/oci/pinger`"
    );
    script
}

/// Issue 17: the layout opens without a tag. `index.json` has one entry, so skopeo inspects
/// `oci:<dir>` and copies it to the registry (`--all`: the index, byte for byte; without:
/// this machine's image), per platform too; `oci:<dir>:<version>` still works. umoci, which
/// has no platform option, lists the tag but unpacks neither `latest` (its default) nor the
/// multi-platform tag; it unpacks one platform that skopeo copied out under `latest` without a
/// tag, and a one-platform release by its tag. The SBOMs are found as docs/channels/oci.md
/// says, with its own commands; `umoci gc` deletes them, as documented.
#[test]
fn skopeo_and_umoci_open_the_layout_without_a_tag_and_the_sboms_are_listed() {
    let env = TestEnv::get();
    let release = fixture_release("http-service");
    let dir = env.scratch_dir("oci-tagless");
    let fake_dir = dir.join("fake-bin");
    let mut image_inputs = inputs(&release, AppId(0), |target, bin| {
        if target.triple == HOST_TRIPLE {
            fixture_binary("http-service", bin, Linking::Static)
        } else {
            fake_static_elf(&fake_dir.join(target.triple), bin, EM_AARCH64, "fake\n")
        }
    });
    for input in &mut image_inputs {
        input.sbom = Some(test_sbom(input.target));
    }
    let built = build(&release, image_inputs, &dir.join("dist"));
    assert_eq!(built.images.len(), 2);
    let layout = &built.layout_dir;
    let tagless = format!("oci:{}", layout.display());
    let skopeo = || Command::new(env.tool("skopeo"));
    let said = run(Command::new(env.tool("oci-image-tool"))
        .args(["validate", "--type", "image", "--ref", "name=1.4.0"])
        .arg(layout));
    assert!(said.contains("Validation succeeded"), "{said}");

    // skopeo inspect: the index, and each platform's config.
    let raw = run(skopeo().args(["inspect", "--raw", &tagless]));
    assert_eq!(raw.as_bytes(), blob(layout, &built.index_digest));
    let inspect: Value = serde_json::from_str(&run(skopeo().args(["inspect", &tagless]))).unwrap();
    assert_eq!(inspect["Digest"], built.index_digest.as_str());
    for image in &built.images {
        let platform: Vec<&str> = image.platform.split('/').collect();
        let mut command = skopeo();
        command.args(["--override-os", platform[0], "--override-arch", platform[1]]);
        if let Some(variant) = platform.get(2) {
            command.args(["--override-variant", variant]);
        }
        let config = run(command.args(["inspect", "--config", "--raw", &tagless]));
        assert_eq!(config.as_bytes(), blob(layout, &image.config_digest));
    }

    // skopeo copy to the registry: `--all` pushes the index as it is, under a tag or not in
    // the source; without `--all`, the image of this machine's platform, its manifest intact.
    let repository = format!(
        "{}/tagless{}/pinger",
        TestEnv::host_port(&env.registry_open),
        std::process::id()
    );
    let pushed = |source: &str, all: bool, tag: &str| -> Vec<u8> {
        let mut command = skopeo();
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            command.arg("--all");
        }
        run(command
            .arg(source)
            .arg(format!("docker://{repository}:{tag}")));
        run(skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repository}:{tag}")))
        .into_bytes()
    };
    let index_bytes = blob(layout, &built.index_digest);
    assert_eq!(pushed(&tagless, true, "1.4.0"), index_bytes);
    assert_eq!(
        pushed(&format!("{tagless}:1.4.0"), true, "by-tag"),
        index_bytes
    );
    let host_image = built
        .images
        .iter()
        .find(|image| image.target.triple == HOST_TRIPLE)
        .unwrap();
    assert_eq!(
        pushed(&tagless, false, "host"),
        blob(layout, &host_image.manifest_digest)
    );

    // umoci: the tag is listed; `latest` (the default) is not there, and the multi-platform
    // tag is ambiguous to it.
    let umoci = || Command::new(env.tool("umoci"));
    assert_eq!(run(umoci().args(["ls", "--layout"]).arg(layout)), "1.4.0\n");
    for (image, says) in [
        (layout.display().to_string(), "tag is not found: latest"),
        (
            format!("{}:1.4.0", layout.display()),
            "tag is ambiguous: 1.4.0",
        ),
    ] {
        let refused = output(
            umoci()
                .args(["unpack", "--image", &image])
                .arg(dir.join("refused-bundle")),
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains(says),
            "umoci unpack --image {image}: expected `{says}`:\n{stderr}"
        );
    }
    // One platform copied out under `latest`: same manifest, and umoci needs no tag.
    let one = dir.join("pinger-amd64");
    run(skopeo()
        .args(["--override-arch", "amd64", "copy", "--quiet", &tagless])
        .arg(format!("oci:{}:latest", one.display())));
    let copied: Value =
        serde_json::from_slice(&std::fs::read(one.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        copied["manifests"][0]["digest"],
        host_image.manifest_digest.as_str()
    );
    let bundle = dir.join("bundle");
    run(umoci().args(["unpack", "--image"]).arg(&one).arg(&bundle));
    assert_eq!(
        runc_run(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );
    // A release of one Linux platform unpacks by its tag (umoci descends into an index of one).
    let mut single = fixture_release("http-service");
    single.apps[0]
        .targets
        .retain(|target| target.triple == HOST_TRIPLE);
    let (_, single_built, single_dir) = build_release(&env, single, "http-service", "oci-single");
    assert_eq!(single_built.images.len(), 1);
    let bundle = umoci_unpack(&env, &single_built.layout_dir, "1.4.0", &single_dir);
    assert_eq!(
        runc_run(&env, &bundle, &["/usr/local/bin/pinger", "--version"]),
        "pinger 1.4.0\n"
    );

    // The SBOMs, listed by the documented commands: `<image> <artifact>` per image, in
    // platform order; each artifact names its image as subject and holds the SBOM given.
    let listing = run(Command::new(env.tool("bash"))
        .arg("-c")
        .arg(documented_sbom_listing(layout))
        .env("PATH", env.tool("jq").parent().unwrap()));
    let expected: String = built
        .images
        .iter()
        .map(|image| {
            format!(
                "{} {}\n",
                image.manifest_digest,
                image.sbom_manifest_digest.as_deref().unwrap()
            )
        })
        .collect();
    assert_eq!(listing, expected);
    for image in &built.images {
        let artifact = blob_json(layout, image.sbom_manifest_digest.as_deref().unwrap());
        assert_eq!(
            artifact["subject"]["digest"],
            image.manifest_digest.as_str()
        );
        assert_eq!(
            blob(layout, artifact["layers"][0]["digest"].as_str().unwrap()),
            test_sbom(image.target)
        );
    }

    // `umoci gc` keeps what index.json reaches: the SBOMs go, the images stay.
    let collected = dir.join("collected");
    run(Command::new(env.tool("cp"))
        .arg("-r")
        .arg(layout)
        .arg(&collected));
    run(umoci().args(["gc", "--layout"]).arg(&collected));
    let blobs = |dir: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|entry| format!("sha256:{}", entry.unwrap().file_name().to_string_lossy()))
            .collect()
    };
    let layout_index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut sbom_blobs = std::collections::BTreeSet::new();
    sbom_blobs.insert(
        layout_index["manifests"][0]["annotations"][castoff_oci::LAYOUT_REFERRERS_ANNOTATION]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for image in &built.images {
        let digest = image.sbom_manifest_digest.clone().unwrap();
        let artifact = blob_json(layout, &digest);
        sbom_blobs.insert(digest);
        sbom_blobs.insert(artifact["config"]["digest"].as_str().unwrap().to_owned());
        sbom_blobs.insert(artifact["layers"][0]["digest"].as_str().unwrap().to_owned());
    }
    let removed: std::collections::BTreeSet<String> = blobs(layout)
        .difference(&blobs(&collected))
        .cloned()
        .collect();
    assert_eq!(removed, sbom_blobs);
}

/// `kubernetes-validate --strict` of a generated `kubernetes.yaml`: every object passes.
fn kubernetes_validate(env: &TestEnv, kubernetes: &Path) {
    let said = output(
        Command::new(env.tool("kubernetes-validate"))
            .arg("--strict")
            .arg(kubernetes),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&said.stdout),
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(
        said.contains("passed for resource deployment/pinger")
            && said.contains("passed for resource service/pinger")
            && !said.contains("ERROR"),
        "{said}"
    );
}

/// check-jsonschema's copy of the compose specification's schema accepts a `compose.yaml`.
fn compose_schema_accepts(env: &TestEnv, compose: &Path) {
    let said = run(Command::new(env.tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(compose));
    assert!(said.contains("ok"), "{said}");
}

#[test]
fn deploy_examples_pass_kubernetes_validate_compose_and_its_schema() {
    let env = TestEnv::get();
    let (release, built, dir) = build_real(&env, "http-service", "oci-deploy");
    let files =
        castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dir.join("dist"))
            .unwrap();
    let (compose, kubernetes) = (&files[0], &files[1]);
    assert!(
        compose.ends_with("deploy/compose.yaml") && kubernetes.ends_with("deploy/kubernetes.yaml")
    );
    kubernetes_validate(&env, kubernetes);
    // docker-compose (v1) only parses and validates here: no daemon is contacted.
    run(Command::new(env.tool("docker-compose"))
        .arg("-f")
        .arg(compose)
        .args(["config", "-q"])
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1"));
    compose_schema_accepts(&env, compose);
}

/// An `http` health check: the Kubernetes manifests carry `httpGet` startup, liveness and
/// readiness probes, which `kubernetes-validate --strict` accepts, and the compose file runs
/// castoff's probe, which the compose specification's schema and docker-compose accept.
#[test]
fn http_check_manifests_pass_kubernetes_validate() {
    let env = TestEnv::get();
    let release = service_release_with_http_check();
    let (release, built, dir) = build_release(&env, release, "http-service", "oci-http-check");
    let files =
        castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dir.join("dist"))
            .unwrap();
    let (compose, kubernetes) = (&files[0], &files[1]);
    let manifests = std::fs::read_to_string(kubernetes).unwrap();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert!(
            manifests.contains(&format!(
                "{probe}:\n            httpGet:\n              path: \"/healthz\"\n              port: 8080\n"
            )),
            "{probe} is no httpGet probe in\n{manifests}"
        );
    }
    kubernetes_validate(&env, kubernetes);
    compose_schema_accepts(&env, compose);
    let text = std::fs::read_to_string(compose).unwrap();
    assert!(
        text.contains(
            "test: [\"CMD\", \"/usr/local/bin/castoff-probe\", \"--timeout\", \"1\", \"http\", \"8080\", \"/healthz\"]"
        ),
        "{text}"
    );
}

/// Every deploy setting of issue 23 (startup, liveness and readiness probes, replicas and
/// resources, named and UDP ports, labels and annotations, the start interval): Kubernetes'
/// schemas accept the manifests with `--strict`, and the compose specification's schema the
/// compose file. docker-compose 1.29.2 (the harness's, Debian 12's) predates
/// `start_interval` and refuses it, as docs/channels/oci.md says; the file without it passes.
#[test]
fn deploy_settings_pass_kubernetes_validate_and_the_compose_schema() {
    let env = TestEnv::get();
    let release = service_release_with_deploy_settings();
    let (release, built, dir) = build_release(&env, release, "http-service", "oci-deploy-settings");
    let files =
        castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dir.join("dist"))
            .unwrap();
    let (compose, kubernetes) = (&files[0], &files[1]);
    let manifests = std::fs::read_to_string(kubernetes).unwrap();
    for part in [
        "startupProbe:",
        "livenessProbe:",
        "readinessProbe:",
        "replicas: 2",
        "cpu: \"500m\"",
        "protocol: UDP",
        "name: \"metrics\"",
        "\"team\": \"payments\"",
        "annotations:",
    ] {
        assert!(manifests.contains(part), "{part} not in\n{manifests}");
    }
    kubernetes_validate(&env, kubernetes);
    compose_schema_accepts(&env, compose);

    let compose_config = |file: &Path| {
        output(
            Command::new(env.tool("docker-compose"))
                .arg("-f")
                .arg(file)
                .args(["config", "-q"])
                .env("COMPOSE_INTERACTIVE_NO_CLI", "1"),
        )
    };
    let refused = compose_config(compose);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("start_interval"),
        "docker-compose 1.x took `start_interval`: update docs/channels/oci.md\n{said}"
    );
    let text = std::fs::read_to_string(compose).unwrap();
    let without = dir.join("compose-without-start-interval.yaml");
    std::fs::write(
        &without,
        text.lines()
            .filter(|line| !line.trim_start().starts_with("start_interval:"))
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let taken = compose_config(&without);
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
}
