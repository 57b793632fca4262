//! castoff's health probe: a static program (`probe/probe.c`, musl, built by zig) that an
//! image's HEALTHCHECK runs when the app configures `healthcheck = { http = … }` or
//! `{ tcp = … }`, since a `scratch` image has no shell, wget or curl. One build per image
//! architecture is committed under `probe/bin/` (`cargo xtask probes` makes them, and the
//! suite rebuilds them byte for byte) and embedded here, so no toolchain is needed for any
//! target. `probe/README.md` holds its contract.

/// One committed build.
struct Build {
    /// The OCI architecture of the images it serves.
    architecture: &'static str,
    /// The platform variants it serves (`None`: no variant given).
    variants: &'static [Option<&'static str>],
    bytes: &'static [u8],
}

const BUILDS: &[Build] = &[
    Build {
        architecture: "amd64",
        variants: &[None],
        bytes: include_bytes!("../probe/bin/amd64"),
    },
    Build {
        architecture: "arm64",
        variants: &[None, Some("v8")],
        bytes: include_bytes!("../probe/bin/arm64"),
    },
    Build {
        architecture: "arm",
        variants: &[Some("v7")],
        bytes: include_bytes!("../probe/bin/arm-v7"),
    },
    Build {
        architecture: "386",
        variants: &[None],
        bytes: include_bytes!("../probe/bin/386"),
    },
    Build {
        architecture: "riscv64",
        variants: &[None],
        bytes: include_bytes!("../probe/bin/riscv64"),
    },
    Build {
        architecture: "ppc64le",
        variants: &[None],
        bytes: include_bytes!("../probe/bin/ppc64le"),
    },
    Build {
        architecture: "s390x",
        variants: &[None],
        bytes: include_bytes!("../probe/bin/s390x"),
    },
];

/// The probe for an image of OCI platform `architecture`/`variant` (`arm`/`v7`, `arm64` with
/// or without `v8`, `amd64`, `386`, `riscv64`, `ppc64le`, `s390x`); `None` for any other.
pub(crate) fn binary(architecture: &str, variant: Option<&str>) -> Option<&'static [u8]> {
    BUILDS
        .iter()
        .find(|build| build.architecture == architecture && build.variants.contains(&variant))
        .map(|build| build.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use castoff_archive::elf::{ElfFile, ElfKind};
    use castoff_plan::Target;

    /// Every build is a static executable (no program interpreter, no shared library) of the
    /// machine, class and byte order its platform's binaries have, and small.
    #[test]
    fn every_build_is_a_small_static_executable_of_its_machine() {
        for Build {
            architecture,
            bytes,
            ..
        } in BUILDS
        {
            // Through a cache: `include_bytes!` data has no alignment, which object's reader
            // wants for a borrowed slice.
            let cache = object::ReadCache::new(std::io::Cursor::new(*bytes));
            let file = ElfFile::parse(&cache)
                .unwrap_or_else(|error| panic!("{architecture}: malformed ELF: {error}"))
                .unwrap_or_else(|| panic!("{architecture}: not ELF"));
            let expected = ElfKind::of_oci_architecture(architecture).expect("an image platform");
            assert_eq!(
                file.kind(),
                expected,
                "{architecture}: {} instead of {}",
                file.kind().describe(),
                expected.describe()
            );
            assert_eq!(
                file.file_type(),
                object::elf::ET_EXEC,
                "{architecture}: not a (non-PIE) executable"
            );
            assert_ne!(file.entry(), 0, "{architecture}: no entry point");
            let linking = file
                .linking()
                .unwrap_or_else(|error| panic!("{architecture}: {error}"));
            assert_eq!(
                linking.interpreter, None,
                "{architecture}: asks for a loader"
            );
            assert!(
                linking.needed.is_empty(),
                "{architecture}: needs {:?}",
                linking.needed
            );
            assert!(
                bytes.len() < 64 * 1024,
                "{architecture}: {} bytes",
                bytes.len()
            );
        }
    }

    /// Nothing of the machine that built them: no path, no source file name, no build id
    /// (stripped, `-Wl,--build-id=none`); the usage text is there.
    #[test]
    fn no_build_machine_details_are_inside() {
        let contains = |bytes: &[u8], needle: &[u8]| {
            bytes.windows(needle.len()).any(|window| window == needle)
        };
        for Build {
            architecture,
            bytes,
            ..
        } in BUILDS
        {
            for needle in [
                &b"/root/"[..],
                b"/home/",
                b"/tmp/",
                b"/work/",
                b".cache",
                b"zig-cache",
                b"probe.c",
                b".note.gnu.build-id",
                b".debug_",
                b".symtab",
            ] {
                assert!(
                    !contains(bytes, needle),
                    "{architecture}: holds {}",
                    String::from_utf8_lossy(needle)
                );
            }
            assert!(
                contains(
                    bytes,
                    b"usage: castoff-probe [--timeout SECONDS] http PORT PATH"
                ),
                "{architecture}"
            );
        }
    }

    /// Every image platform castoff builds has its probe, and nothing else has one.
    #[test]
    fn every_image_platform_has_its_probe() {
        let mut served = 0;
        for target in Target::all() {
            let Some(platform) = target.oci else {
                continue;
            };
            let probe = binary(platform.architecture, platform.variant)
                .unwrap_or_else(|| panic!("no probe for {platform} ({})", target.triple));
            let cache = object::ReadCache::new(std::io::Cursor::new(probe));
            let elf = ElfFile::parse(&cache).unwrap().unwrap();
            assert_eq!(
                Some(elf.kind()),
                ElfKind::of_oci_architecture(platform.architecture),
                "{platform}"
            );
            served += 1;
        }
        assert!(served >= 14, "{served} Linux targets");
        assert!(binary("arm64", None).is_some());
        for (architecture, variant) in [
            ("arm", None),
            ("arm", Some("v6")),
            ("arm64", Some("v9")),
            ("amd64", Some("v3")),
            ("mips64le", None),
            ("wasm", None),
        ] {
            assert!(
                binary(architecture, variant).is_none(),
                "{architecture} {variant:?}"
            );
        }
    }
}
