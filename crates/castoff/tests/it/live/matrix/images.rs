//! The matrix release's image index, proven with the clients that run images (issue #16,
//! "Images"): the index on the registry lists exactly one image per Linux platform, each the
//! musl target's static build; `docker run --platform` runs every one of them (the foreign ones
//! under qemu, through the harness's binfmt_misc handlers with the F flag, inside the
//! container); `skopeo copy --override-arch` picks each platform's manifest out of the index,
//! and runc runs it after `umoci unpack`; `plan` says why the other targets have no image.
//! The probe's `greeter platform` line (`machine=<uname -m> target=<triple>`) proves which
//! binary ran on which machine.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;

use castoff_plan::Target;
use castoff_plan::target::Libc;
use castoff_test_support::TestEnv;
use castoff_test_support::platforms::{probe_target, record_cell};
use castoff_test_support::workspace::{isolated_command, output_text};
use serde_json::Value;

use super::{Matrix, matrix};

/// The platforms of the index as the issue lists them, in the index's order (os,
/// architecture, variant).
const PLATFORMS: &[&str] = &[
    "linux/386",
    "linux/amd64",
    "linux/arm/v7",
    "linux/arm64/v8",
    "linux/ppc64le",
    "linux/riscv64",
    "linux/s390x",
];

/// The version tags `publish` pushes for 0.3.1 (docs/configuration.md: no bare `0` for a
/// 0.x version).
const VERSION_TAGS: &[&str] = &["0.3.1", "0.3", "latest"];

/// One image of the index: the target whose binary it holds and its manifest digest (from
/// dist/manifest.json).
struct Image {
    target: &'static Target,
    platform: String,
    manifest_digest: String,
}

impl Image {
    /// The line `greeter platform` prints when this image's binary runs here.
    fn platform_line(&self) -> String {
        probe_target(self.target.triple)
            .platform_line_here()
            .expect("a Linux build runs here")
    }

    /// `--override-arch` (and `--override-variant`) naming this platform for skopeo.
    fn skopeo_platform_args(&self) -> Vec<String> {
        let oci = self.target.oci.expect("an image platform");
        let mut args = vec!["--override-arch".to_owned(), oci.architecture.to_owned()];
        // arm64's `v8` is what an unqualified arm64 means; arm needs its variant.
        if let (Some(variant), "arm") = (oci.variant, oci.architecture) {
            args.extend(["--override-variant".to_owned(), variant.to_owned()]);
        }
        args
    }
}

/// The images of the matrix release: the musl target of every Linux architecture.
fn images(matrix: &Matrix) -> Vec<Image> {
    Target::all()
        .iter()
        .filter(|target| target.oci.is_some() && target.libc == Some(Libc::Musl))
        .map(|target| {
            let id = format!("oci-image/greeter/{}", target.triple);
            let artifact = matrix
                .manifest
                .artifacts
                .iter()
                .find(|artifact| artifact.id == id)
                .unwrap_or_else(|| panic!("no `{id}` in the matrix release"));
            Image {
                target,
                platform: target.oci.unwrap().to_string(),
                manifest_digest: artifact.digest.clone().expect("an image has a digest"),
            }
        })
        .collect()
}

fn run(command: &mut Command, what: &str) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run: {error}"))
}

/// Runs `command`, which must succeed; its stdout, trimmed.
fn checked(command: &mut Command, what: &str) -> String {
    let output = run(command, what);
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn skopeo(env: &TestEnv) -> Command {
    Command::new(env.tool("skopeo"))
}

/// The raw manifest or index the registry serves for `reference` (`repo:tag`, `repo@digest`).
fn raw(env: &TestEnv, reference: &str) -> Vec<u8> {
    let output = run(
        skopeo(env)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
        &format!("skopeo inspect --raw {reference}"),
    );
    assert!(
        output.status.success(),
        "skopeo inspect --raw {reference}:\n{}",
        output_text(&output)
    );
    output.stdout
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(bytes))
    )
}

fn layout_blob(layout: &Path, digest: &str) -> Value {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&fs::read(&path).unwrap_or_else(|error| {
        panic!("{}: {error}", path.display());
    }))
    .unwrap()
}

/// `os/architecture[/variant]` of a `platform` object.
fn platform_of(value: &Value) -> String {
    let mut platform = format!(
        "{}/{}",
        value["os"].as_str().unwrap_or("?"),
        value["architecture"].as_str().unwrap_or("?")
    );
    if let Some(variant) = value.get("variant").and_then(Value::as_str) {
        platform.push('/');
        platform.push_str(variant);
    }
    platform
}

/// The index on the registry under every version tag is dist/'s index, byte for byte, and
/// lists exactly the seven Linux platforms, each the manifest of its musl target's image,
/// whose config names the same platform. The layout's `index.json` holds the index alone; its
/// referrers index lists one SBOM artifact per image (docs/channels/oci.md).
#[test]
fn the_index_lists_one_image_per_linux_platform() {
    let env = TestEnv::get();
    let matrix = matrix();
    let images = images(matrix);
    let mut platforms: Vec<&str> = images.iter().map(|image| image.platform.as_str()).collect();
    platforms.sort_unstable();
    assert_eq!(platforms, PLATFORMS, "the target table's image platforms");

    let index_artifact = matrix
        .manifest
        .artifacts
        .iter()
        .find(|artifact| artifact.id == "oci-index/greeter")
        .expect("the release has an index");
    let index_digest = index_artifact.digest.clone().expect("an index digest");
    let layout = matrix.artifact_path("oci-index/greeter");

    // Every version tag serves dist/'s index; the other tags are the referrers fallback
    // (`sha256-<image digest>`, docs/publishing.md), one per image at most.
    let index_bytes = raw(&env, &format!("{}:0.3.1", matrix.oci_repository));
    assert_eq!(sha256_digest(&index_bytes), index_digest);
    for tag in &VERSION_TAGS[1..] {
        assert_eq!(
            raw(&env, &format!("{}:{tag}", matrix.oci_repository)),
            index_bytes,
            "tag {tag}"
        );
    }
    let tags: Value = serde_json::from_str(&checked(
        skopeo(&env)
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{}", matrix.oci_repository)),
        "skopeo list-tags",
    ))
    .unwrap();
    let fallback_tags: Vec<String> = images
        .iter()
        .map(|image| image.manifest_digest.replace("sha256:", "sha256-"))
        .collect();
    let mut versions: Vec<&str> = Vec::new();
    for tag in tags["Tags"].as_array().unwrap() {
        let tag = tag.as_str().unwrap();
        if !fallback_tags.iter().any(|fallback| fallback == tag) {
            versions.push(tag);
        }
    }
    versions.sort_unstable();
    let mut expected_tags = VERSION_TAGS.to_vec();
    expected_tags.sort_unstable();
    assert_eq!(versions, expected_tags, "{tags:#}");

    let index: Value = serde_json::from_slice(&index_bytes).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index:#}"
    );
    let entries = index["manifests"].as_array().unwrap();
    let listed: Vec<String> = entries
        .iter()
        .map(|entry| platform_of(&entry["platform"]))
        .collect();
    assert_eq!(listed, PLATFORMS, "the index's platforms, in order");
    for image in &images {
        let entry = entries
            .iter()
            .find(|entry| platform_of(&entry["platform"]) == image.platform)
            .unwrap();
        assert_eq!(
            entry["digest"], image.manifest_digest,
            "{}: the index names the musl target's image",
            image.platform
        );
        assert_eq!(
            entry["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let manifest = layout_blob(&layout, &image.manifest_digest);
        let config = layout_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(
            platform_of(&config),
            image.platform,
            "{}: the config's os, architecture and variant",
            image.target.triple
        );
    }

    // The layout: one entry, the index under its version, whose referrers index lists one
    // SBOM artifact per image (docs/channels/oci.md).
    let layout_index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let layout_entries = layout_index["manifests"].as_array().unwrap();
    assert_eq!(layout_entries.len(), 1, "{layout_index:#}");
    assert_eq!(
        layout_entries[0]["digest"], index_digest,
        "{layout_index:#}"
    );
    assert_eq!(
        layout_entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "0.3.1"
    );
    let referrers = layout_blob(
        &layout,
        layout_entries[0]["annotations"]["io.github.castoff-rs.referrers"]
            .as_str()
            .unwrap(),
    );
    let mut subjects: Vec<String> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(
                entry["artifactType"], "application/vnd.cyclonedx+json",
                "{referrers:#}"
            );
            let artifact = layout_blob(&layout, entry["digest"].as_str().unwrap());
            let subject = artifact["subject"]["digest"].as_str().unwrap().to_owned();
            assert_eq!(
                entry["annotations"]["io.github.castoff-rs.referrer.subject"], subject,
                "{referrers:#}"
            );
            subject
        })
        .collect();
    subjects.sort_unstable();
    let mut manifests: Vec<String> = images
        .iter()
        .map(|image| image.manifest_digest.clone())
        .collect();
    manifests.sort_unstable();
    assert_eq!(subjects, manifests, "one SBOM artifact per image");

    env.figure(format!(
        "images: the index of {} platforms ({}) under tags {}, the layout's with {} SBOM artifacts",
        entries.len(),
        listed.join(", "),
        VERSION_TAGS.join(", "),
        subjects.len()
    ));
}

/// `docker run --platform` of each platform pulls that platform's image out of the index
/// (its image id is the config digest of the platform's manifest), runs its binary (the
/// foreign ones under qemu inside the container), passes the exit code through, and keeps the
/// configured entrypoint, user and platform fields.
#[test]
fn docker_runs_every_platform_of_the_index() {
    let env = TestEnv::get();
    let matrix = matrix();
    let layout = matrix.artifact_path("oci-index/greeter");
    let docker_config = env.scratch_dir("images-docker").join("docker-config");
    fs::create_dir_all(&docker_config).unwrap();
    let docker = || {
        let mut command = Command::new(env.tool("docker"));
        command
            .env("DOCKER_HOST", &env.docker_host)
            .env("DOCKER_CONFIG", &docker_config);
        command
    };
    let reference = format!("{}:0.3.1", matrix.oci_repository);
    let images = images(matrix);
    // One after another: Docker's image store keeps one image per name, so the tag holds the
    // platform pulled last.
    for image in &images {
        let what = format!("docker run --platform {} {reference}", image.platform);
        let line = checked(
            docker().args([
                "run",
                "--rm",
                "--pull",
                "always",
                "--network",
                "none",
                "--platform",
                &image.platform,
                &reference,
                "platform",
            ]),
            &format!("{what} platform"),
        );
        assert_eq!(line, image.platform_line(), "{what} platform");

        let inspected: Value = serde_json::from_str(&checked(
            docker().args(["image", "inspect", "--format", "{{json .}}", &reference]),
            "docker image inspect",
        ))
        .unwrap();
        let manifest = layout_blob(&layout, &image.manifest_digest);
        assert_eq!(
            inspected["Id"], manifest["config"]["digest"],
            "{}: the pulled image is the platform's",
            image.platform
        );
        let mut platform = format!(
            "{}/{}",
            inspected["Os"].as_str().unwrap(),
            inspected["Architecture"].as_str().unwrap()
        );
        if let Some(variant) = inspected.get("Variant").and_then(Value::as_str) {
            platform.push('/');
            platform.push_str(variant);
        }
        assert_eq!(platform, image.platform, "docker image inspect");
        assert_eq!(
            inspected["Config"]["Entrypoint"],
            serde_json::json!(["/usr/local/bin/greeter"])
        );
        assert_eq!(inspected["Config"]["User"], "65532:65532");
        assert_eq!(
            inspected["Config"]["Labels"]["com.example.team"], "greeters",
            "the configured label"
        );

        let exit = run(
            docker().args([
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                "--platform",
                &image.platform,
                &reference,
                "exit",
                "7",
            ]),
            &format!("{what} exit 7"),
        );
        assert_eq!(
            exit.status.code(),
            Some(7),
            "{what} exit 7:\n{}",
            output_text(&exit)
        );
        record_cell(image.target.triple, "docker run --platform", "ok");
    }
    env.figure(format!(
        "images: docker run --platform ran {} platforms of the index ({}), exit 7 passed through, entrypoint and user as configured",
        images.len(),
        images
            .iter()
            .map(|image| image.platform.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// `skopeo copy --override-arch` (with `--override-variant v7` for arm) picks each platform's
/// manifest out of the index on the registry, byte for byte (same digest); `umoci unpack`
/// makes a runtime bundle of it and `runc run` runs its binary, which says its machine.
#[test]
fn skopeo_picks_each_platform_and_runc_runs_it() {
    let env = TestEnv::get();
    let matrix = matrix();
    let scratch = env.scratch_dir("images-runc");
    let images = images(matrix);
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = images
            .iter()
            .map(|image| {
                let (env, scratch) = (&env, &scratch);
                (
                    image,
                    scope.spawn(move || pick_unpack_and_run(env, matrix, image, scratch)),
                )
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(image, handle)| {
                let panic = handle.join().err()?;
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Some(format!("{}: {message}", image.platform))
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    env.figure(format!(
        "images: skopeo --override-arch picked {} manifests from the registry's index (digests as indexed), runc ran each after umoci unpack",
        images.len()
    ));
}

fn pick_unpack_and_run(env: &TestEnv, matrix: &Matrix, image: &Image, scratch: &Path) {
    let oci = image.target.oci.unwrap();
    let name = match oci.variant {
        Some(variant) => format!("{}-{variant}", oci.architecture),
        None => oci.architecture.to_owned(),
    };
    let layout = scratch.join(&name).join("layout");
    let bundle = scratch.join(&name).join("bundle");
    fs::create_dir_all(layout.parent().unwrap()).unwrap();
    checked(
        skopeo(env)
            .args(image.skopeo_platform_args())
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}:0.3.1", matrix.oci_repository))
            .arg(format!("oci:{}:image", layout.display())),
        &format!("skopeo copy {}", image.skopeo_platform_args().join(" ")),
    );
    let copied: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        copied["manifests"][0]["digest"],
        image.manifest_digest,
        "skopeo copy {} picked another manifest than the index's {}",
        image.skopeo_platform_args().join(" "),
        image.platform
    );
    record_cell(image.target.triple, "skopeo --override-arch", "ok");

    // umoci needs one manifest: given the multi-platform tag of dist/oci/greeter it says
    // "tag is ambiguous" (docs/channels/oci.md). skopeo's copy is that one manifest.
    checked(
        Command::new(env.tool("umoci"))
            .args(["unpack", "--image"])
            .arg(format!("{}:image", layout.display()))
            .arg(&bundle),
        "umoci unpack",
    );
    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/usr/local/bin/greeter"]),
        "umoci's bundle runs the image's entrypoint"
    );
    assert_eq!(
        config["process"]["user"],
        serde_json::json!({"uid": 65532, "gid": 65532})
    );
    // umoci asks for a terminal; tests have none.
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(["/usr/local/bin/greeter", "platform"]);
    fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!("castoff-images-{}-{name}", std::process::id());
    let output = run(
        Command::new(env.tool("runc"))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id),
        "runc run",
    );
    let _ = Command::new(env.tool("runc"))
        .args(["delete", "--force", &id])
        .output();
    assert!(
        output.status.success(),
        "runc run ({}):\n{}",
        image.platform,
        output_text(&output)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        image.platform_line()
    );
    record_cell(image.target.triple, "runc (umoci unpack)", "ok");
}

/// `plan` of the matrix workspace says, for each target without an image, why: a gnu target's
/// platform is its musl sibling's, and macOS and Windows have no image platform.
#[test]
fn plan_says_why_a_target_has_no_image() {
    let env = TestEnv::get();
    let matrix = matrix();
    let plan = checked(
        isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), &matrix.home)
            .arg("plan")
            .arg("--manifest-path")
            .arg(matrix.workspace.join("Cargo.toml")),
        "castoff plan",
    );
    let mut checked_targets = 0;
    for target in Target::all() {
        let block: Vec<&str> = plan
            .lines()
            .skip_while(|line| line.trim() != target.triple)
            .skip(1)
            .take_while(|line| line.starts_with("    "))
            .collect();
        let line = block
            .iter()
            .find(|line| line.trim_start().starts_with("oci-image "))
            .unwrap_or_else(|| panic!("no oci-image line for {}:\n{plan}", target.triple));
        let said = line.trim_start()["oci-image".len()..].trim_start();
        let expected = match (target.oci, target.libc) {
            (Some(platform), Some(Libc::Musl)) => format!("ghcr.io/acme/greeter ({platform})"),
            (Some(platform), _) => {
                let musl = Target::all()
                    .iter()
                    .find(|other| other.oci == Some(platform) && other.libc == Some(Libc::Musl))
                    .unwrap();
                format!(
                    "none: {platform} is {}'s: one image per platform, the static musl build by default (`oci.targets` chooses)",
                    musl.triple
                )
            }
            (None, _) => "none: container images are Linux only".to_owned(),
        };
        assert_eq!(said, expected, "plan's oci-image line of {}", target.triple);
        checked_targets += 1;
    }
    env.figure(format!(
        "images: plan names the image or the reason for none of all {checked_targets} targets"
    ));
}
