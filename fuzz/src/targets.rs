//! One function per fuzz target: each takes arbitrary bytes, feeds them to a parser of
//! untrusted input and checks the invariants that must hold for every input (no panic, and
//! where stated, properties of the result). Shared by the `cargo fuzz` targets (`fuzz/`) and
//! by the seed-corpus test of the normal suite (`crates/castoff/tests/it/offline/fuzz_seeds.rs`,
//! which includes this file with `#[path]`), so both exercise exactly the same code.

use std::collections::BTreeMap;
use std::path::Path;

use castoff_plan::{Manifest, names, version};
use castoff_registry::npm::{NpmTarball, Npmrc};
use castoff_registry::oci::{
    Digest, DockerConfig, ManifestBlob, OciLayout, OciRepository, PinnedReference,
    parse_www_authenticate,
};
use castoff_registry::pypi::{Pypirc, WheelFile};

use crate::semver::Version;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets by name: the directory names under `fuzz/corpus/` and `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("binary_platform", binary_platform),
    ("www_authenticate", www_authenticate),
    ("npmrc", npmrc),
    ("pypirc", pypirc),
    ("docker_config", docker_config),
    ("image_reference", image_reference),
    ("version", version_mappers),
    ("wheel_file", wheel_file),
    ("npm_tarball", npm_tarball),
    ("manifest_json", manifest_json),
    ("oci_layout", oci_layout),
    ("merge_inputs", merge_inputs),
];

/// A scratch directory of its own for one input (the file readers take paths), removed after.
fn with_scratch(name: &str, body: impl FnOnce(&Path)) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "castoff-fuzz-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    body(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The wheel reader `publish` runs on dist/'s wheels (zip, METADATA, the upload form).
pub fn wheel_file(data: &[u8]) {
    with_scratch("wheel", |dir| {
        let path = dir.join("fuzz-1.0-py3-none-any.whl");
        std::fs::write(&path, data).expect("write the input");
        if let Ok(wheel) = WheelFile::open(&path) {
            let _ = (wheel.name(), wheel.version());
        }
    });
}

/// The npm tarball reader `publish` runs on dist/'s tarballs (gzip, tar, package.json).
pub fn npm_tarball(data: &[u8]) {
    with_scratch("npm", |dir| {
        let path = dir.join("fuzz-1.0.0.tgz");
        std::fs::write(&path, data).expect("write the input");
        if let Ok(tarball) = NpmTarball::open(&path) {
            let _ = tarball.default_dist_tag();
        }
    });
}

/// `dist/manifest.json`: a manifest that parses serializes back to one that parses equal,
/// and agrees with itself field by field.
pub fn manifest_json(data: &[u8]) {
    let Ok(manifest) = Manifest::from_json(&String::from_utf8_lossy(data)) else {
        return;
    };
    let again = Manifest::from_json(&manifest.to_json()).expect("a written manifest parses");
    assert_eq!(again, manifest, "the manifest does not round-trip");
    assert!(manifest.differences_from(&manifest).is_empty());
}

/// OCI layout documents: a manifest or index blob, and a layout whose `index.json` (and the
/// one blob it may name, or name as its referrers index) is the input.
pub fn oci_layout(data: &[u8]) {
    let _ = ManifestBlob::parse(&Digest::of(data), data.to_vec());
    with_scratch("layout", |dir| {
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write the marker");
        std::fs::write(dir.join("index.json"), data).expect("write the input");
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("blobs directory");
        std::fs::write(blobs.join(Digest::of(data).hex()), data).expect("write the blob");
        if let Ok(layout) = OciLayout::open(dir)
            && let Ok(roots) = layout.roots()
        {
            for (descriptor, _) in roots {
                let _ = layout.manifest(&descriptor.digest);
            }
            let _ = layout.referrers();
        }
    });
}

/// What `dist --merge` reads from a partial dist folder it was handed: its manifest (bounded,
/// regular file only), the checks across partials, and what they cover.
pub fn merge_inputs(data: &[u8]) {
    with_scratch("merge", |dir| {
        std::fs::write(dir.join("manifest.json"), data).expect("write the input");
        if let Ok(partials) = castoff::merge::read_partials(&[dir.to_owned()]) {
            let _ = castoff::merge::coverage(&partials);
        }
    });
}

/// The binary-header readers: castoff-archive's ELF reader (shared by the wheel and image
/// builders), then the ELF / Mach-O / PE inspection behind wheel platform tags, against every
/// supported target.
pub fn binary_platform(data: &[u8]) {
    if let Ok(Some(elf)) = castoff_archive::elf::ElfFile::parse(data) {
        let _ = (elf.machine(), elf.file_type(), elf.entry());
        let _ = elf.interpreter();
        let _ = elf.linking();
    }
    for target in castoff_plan::Target::all() {
        if let Ok(facts) = castoff_wheel::platform::inspect_binary(data, Path::new("fuzz"), target)
        {
            for static_tags in [
                castoff_wheel::platform::StaticLinuxTags::BothLibcs,
                castoff_wheel::platform::StaticLinuxTags::OwnLibc,
            ] {
                let _ =
                    castoff_wheel::platform::platform_tags(&[facts.platform], target, static_tags);
            }
        }
    }
}

/// `WWW-Authenticate` challenges (what a registry answers with a 401).
pub fn www_authenticate(data: &[u8]) {
    let _ = parse_www_authenticate(&String::from_utf8_lossy(data));
}

/// `.npmrc`, then the lookups publish makes with it.
pub fn npmrc(data: &[u8]) {
    let environment = BTreeMap::from([("NPM_TOKEN".to_owned(), "t".to_owned())]);
    if let Ok(npmrc) = Npmrc::parse(&String::from_utf8_lossy(data), &environment) {
        for package in ["greeter", "@acme/greeter"] {
            let _ = npmrc.registry_for(package);
        }
        let _ = npmrc.get("registry");
    }
}

/// `.pypirc`, then the section lookups publish makes.
pub fn pypirc(data: &[u8]) {
    if let Ok(pypirc) = Pypirc::parse(&String::from_utf8_lossy(data)) {
        for name in ["pypi", "testpypi", "local"] {
            let _ = pypirc.repository(name);
        }
    }
}

/// Docker's `config.json` (parsing only: a lookup may run a credential helper).
pub fn docker_config(data: &[u8]) {
    let _ = DockerConfig::parse(&String::from_utf8_lossy(data), Path::new("config.json"));
}

/// Image references: the configuration check, the client's parser, pinned base references
/// and the redaction of credentials written into them.
pub fn image_reference(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let checked = names::check_oci_repository(&text);
    let _ = OciRepository::parse(&text);
    let _ = PinnedReference::parse(&text);
    let redacted = names::redact_userinfo(&text);
    if let Some((userinfo, _)) = text
        .split('/')
        .next()
        .and_then(|host| host.rsplit_once('@'))
    {
        let userinfo = userinfo.rsplit("://").next().unwrap_or(userinfo);
        assert!(
            userinfo.is_empty() || redacted.contains("<redacted>"),
            "credentials in {text:?} survive redaction: {redacted:?}"
        );
    }
    if checked.is_ok() {
        assert!(!text.contains('@'), "{text:?} was accepted with an `@`");
    }
}

/// The version mappers: whatever they return must be valid in the registry it is for. A tag
/// longer than a registry allows (128 characters) is the one exception the mapper leaves to
/// planning, which refuses such versions (bad-input case `version-oci-tag-too-long`; found by
/// this target, regression input in `fuzz/regressions/version/`).
pub fn version_mappers(data: &[u8]) {
    let Ok(version) = Version::parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    if let Ok(pep440) = version::pep440(&version) {
        assert!(
            !pep440.is_empty() && !pep440.contains('+'),
            "{version} -> {pep440}"
        );
    }
    let _ = version::npm(&version);
    for tag in version::oci_tags(&version) {
        assert!(
            version::is_valid_oci_tag(&tag) || tag.len() > 128,
            "{version} -> invalid tag {tag:?}"
        );
    }
}
