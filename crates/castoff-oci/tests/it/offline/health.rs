//! Health checks by protocol (issue 23): an `http` or `tcp` check puts castoff's probe into a
//! layer of its own, built for the image's platform, the same bytes in every image of that
//! platform; the config's `Healthcheck` runs it; Kubernetes gets `httpGet` / `tcpSocket`
//! probes; a `cmd` check adds nothing.

use castoff_archive::elf::{ElfFile, ElfKind};
use castoff_oci::BuiltIndex;
use castoff_plan::AppId;
use castoff_plan::plan::{Check, PROBE_PATH, Release};
use expect_test::expect_file;

use super::userland::entries;
use crate::common::*;

const PROBE_LICENSE: &str = "usr/local/share/doc/castoff-probe/copyright";

fn build_named(release: &Release, test: &str) -> BuiltIndex {
    let dir = temp_dir(test);
    let inputs = fake_inputs(release, AppId(0), &dir.join("bin"));
    build(release, inputs, &dir.join("dist"))
}

/// Each image's probe layer: (its digest, the platform's architecture, the probe's bytes).
fn probe_layers(built: &BuiltIndex) -> Vec<(String, String, Vec<u8>)> {
    built
        .images
        .iter()
        .filter_map(|image| {
            let manifest = blob_json(&built.layout_dir, &image.manifest_digest);
            let layer = manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|layer| {
                    layer["annotations"][castoff_oci::LAYER_SOURCE_ANNOTATION]
                        .as_str()
                        .is_some_and(|source| source.starts_with("castoff-probe "))
                })?;
            let digest = layer["digest"].as_str().unwrap().to_owned();
            let files = entries(&built.layout_dir, &digest);
            let probe = &files[PROBE_PATH.trim_start_matches('/')];
            assert_eq!((probe.0, probe.1, probe.2), (0o755, 0, 0), "{files:?}");
            let license = String::from_utf8(files[PROBE_LICENSE].3.clone()).unwrap();
            assert!(license.contains("Rich Felker"), "{license}");
            let config = blob_json(&built.layout_dir, &image.config_digest);
            Some((
                digest,
                config["architecture"].as_str().unwrap().to_owned(),
                probe.3.clone(),
            ))
        })
        .collect()
}

#[test]
fn an_http_check_runs_castoffs_probe_from_a_layer_of_its_own() {
    let release = service_release_with_http_check();
    let built = build_named(&release, "health-http");
    let config = blob_json(&built.layout_dir, &built.images[0].config_digest);
    assert_eq!(
        config["config"]["Healthcheck"]["Test"],
        // The check's `timeout` (1s) bounds the probe too.
        serde_json::json!([
            "CMD",
            PROBE_PATH,
            "--timeout",
            "1",
            "http",
            "8080",
            "/healthz"
        ])
    );
    // amd64 and arm64: each image has the probe of its own machine, static.
    let probes = probe_layers(&built);
    assert_eq!(probes.len(), built.images.len());
    for (_, architecture, bytes) in &probes {
        // Through a cache: `ElfFile` wants aligned bytes, which a `Vec<u8>` need not be.
        let cache = object::ReadCache::new(std::io::Cursor::new(&bytes[..]));
        let elf = ElfFile::parse(&cache).unwrap().expect("the probe is ELF");
        assert_eq!(
            elf.kind(),
            ElfKind::of_oci_architecture(architecture).unwrap(),
            "the {architecture} image's probe"
        );
        assert_eq!(elf.linking().unwrap().interpreter, None, "static");
        assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    }
    assert_ne!(probes[0].0, probes[1].0);
    // The history says what the layer is, before the files and the binary.
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        history[0],
        "castoff: added /usr/local/bin/castoff-probe (castoff's health probe)"
    );

    // The layer depends on the platform only: a rebuild and another app's `tcp` check get
    // the same digests.
    let again = build_named(&release, "health-http-again");
    assert_eq!(probe_layers(&again), probes);
    let mut tcp = service_release_with_http_check();
    tcp.apps[0]
        .oci
        .as_mut()
        .unwrap()
        .healthcheck
        .as_mut()
        .unwrap()
        .check = Check::Tcp { port: 8080 };
    let tcp_built = build_named(&tcp, "health-tcp");
    let tcp_config = blob_json(&tcp_built.layout_dir, &tcp_built.images[0].config_digest);
    assert_eq!(
        tcp_config["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", PROBE_PATH, "--timeout", "1", "tcp", "8080"])
    );
    assert_eq!(probe_layers(&tcp_built), probes);
    for (digest, architecture, _) in &probes {
        let size = std::fs::metadata(
            built
                .layout_dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
        .len();
        castoff_test_support::figure(format!(
            "probe layer for {architecture}: {size} bytes compressed (probe and licenses)"
        ));
    }
}

#[test]
fn a_command_check_adds_no_probe() {
    let release = service_release_with_deploy_settings();
    let built = build_named(&release, "health-cmd");
    assert!(probe_layers(&built).is_empty());
}

/// Kubernetes checks `http` and `tcp` itself: `httpGet` startup, liveness and readiness
/// probes; compose runs the probe like the image.
#[test]
fn kubernetes_gets_http_get_probes_and_compose_the_probe() {
    let release = service_release_with_http_check();
    let dir = temp_dir("health-deploy");
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let built = build(&release, inputs, &dir.join("dist"));
    let files =
        castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dir.join("dist"))
            .unwrap();
    let compose = std::fs::read_to_string(&files[0]).unwrap();
    let kubernetes = std::fs::read_to_string(&files[1]).unwrap();
    assert_eq!(kubernetes.matches("httpGet:").count(), 3, "{kubernetes}");
    assert!(!kubernetes.contains("exec:"), "{kubernetes}");
    expect_file!["../../snapshots/http-service-http-check.compose.yaml"].assert_eq(&compose);
    expect_file!["../../snapshots/http-service-http-check.kubernetes.yaml"].assert_eq(&kubernetes);

    // A `tcp` readiness probe beside the `http` health check.
    let mut mixed = release.clone();
    mixed.apps[0]
        .oci
        .as_mut()
        .unwrap()
        .healthcheck
        .as_mut()
        .unwrap()
        .readiness
        .check = Check::Tcp { port: 9090 };
    let files =
        castoff_oci::write_deploy_examples(&mixed, &[(AppId(0), &built)], &dir.join("mixed"))
            .unwrap();
    let kubernetes = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        kubernetes.contains("readinessProbe:\n            tcpSocket:\n              port: 9090\n"),
        "{kubernetes}"
    );
}
