//! The manylinux and musllinux policies, copied from pypa/auditwheel 6.8
//! (`src/auditwheel/policy/{manylinux,musllinux}-policy.json`): which shared libraries a wheel
//! may need and the newest symbol version of each library family per policy. Choosing the tag
//! with this data makes castoff and `auditwheel show` agree on the same binary.
//!
//! Left out on purpose: the i686/x86_64 `manylinux_2_5`/`_2_12` rows' blacklisted symbols and
//! auditwheel's x86-64 ISA-level check; neither applies to what rustc links.

/// Shared libraries every manylinux platform provides (the `manylinux_2_17` allow-list).
/// `libmvec.so.1` is allowed from `manylinux_2_24` on, see [`MIN_GLIBC_FOR_LIBRARY`].
pub(crate) const MANYLINUX_LIBRARIES: &[&str] = &[
    "libatomic.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libanl.so.1",
    "libdl.so.2",
    "librt.so.1",
    "libc.so.6",
    "libnsl.so.1",
    "libutil.so.1",
    "libpthread.so.0",
    "libX11.so.6",
    "libXext.so.6",
    "libXrender.so.1",
    "libICE.so.6",
    "libSM.so.6",
    "libGL.so.1",
    "libgobject-2.0.so.0",
    "libgthread-2.0.so.0",
    "libglib-2.0.so.0",
    "libresolv.so.2",
    "libexpat.so.1",
    "libz.so.1",
];

/// Libraries that only newer policies allow: (library, lowest glibc minor).
pub(crate) const MIN_GLIBC_FOR_LIBRARY: &[(&str, u32)] = &[("libmvec.so.1", 24)];

/// Shared libraries every musllinux platform provides. Note what is missing: `libgcc_s.so.1`,
/// which a dynamically linked Rust musl binary needs; such a binary must be linked statically.
pub(crate) const MUSLLINUX_LIBRARIES: &[&str] = &["libc.so", "libz.so.1"];

/// One manylinux policy for one architecture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManylinuxPolicy {
    pub(crate) arch: &'static str,
    /// The `Y` of `manylinux_2_Y`.
    pub(crate) glibc_minor: u32,
    /// Newest `GLIBC_2.N` the policy allows (usually `glibc_minor`; a glibc release that added
    /// no symbol on an architecture leaves it lower, one adding one early leaves it higher).
    pub(crate) max_glibc_minor: u32,
    /// Newest version of each other versioned family; `None`: the family is not allowed.
    pub(crate) gcc: Option<&'static str>,
    pub(crate) glibcxx: Option<&'static str>,
    pub(crate) cxxabi: Option<&'static str>,
    pub(crate) libatomic: Option<&'static str>,
    pub(crate) zlib: Option<&'static str>,
}

impl ManylinuxPolicy {
    /// The newest allowed version of a symbol-version family (`GCC`, `GLIBCXX`, …); `Err` for a
    /// family the policies do not know.
    pub(crate) fn family_max(&self, family: &str) -> Result<Option<&'static str>, ()> {
        Ok(match family {
            "GCC" => self.gcc,
            "GLIBCXX" => self.glibcxx,
            "CXXABI" => self.cxxabi,
            "LIBATOMIC" => self.libatomic,
            "ZLIB" => self.zlib,
            _ => return Err(()),
        })
    }
}

// One argument per column keeps the table below one readable line per policy.
#[allow(clippy::too_many_arguments)]
const fn row(
    arch: &'static str,
    glibc_minor: u32,
    max_glibc_minor: u32,
    gcc: Option<&'static str>,
    glibcxx: Option<&'static str>,
    cxxabi: Option<&'static str>,
    libatomic: Option<&'static str>,
    zlib: Option<&'static str>,
) -> ManylinuxPolicy {
    ManylinuxPolicy {
        arch,
        glibc_minor,
        max_glibc_minor,
        gcc,
        glibcxx,
        cxxabi,
        libatomic,
        zlib,
    }
}

/// Every policy, per architecture, from the most compatible (lowest glibc) up.
#[rustfmt::skip]
pub(crate) static MANYLINUX_POLICIES: &[ManylinuxPolicy] = &[
    row("x86_64", 5, 5, Some("4.2.0"), Some("3.4.8"), Some("1.3.1"), None, None),
    row("x86_64", 12, 12, Some("4.3.0"), Some("3.4.13"), Some("1.3.3"), None, Some("1.2.2.4")),
    row("x86_64", 17, 17, Some("4.8.0"), Some("3.4.19"), Some("1.3.7"), None, Some("1.2.5.2")),
    row("x86_64", 24, 24, Some("4.8.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("x86_64", 26, 26, Some("4.8.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("x86_64", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 35, 35, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 36, 36, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("x86_64", 37, 36, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("x86_64", 38, 38, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("x86_64", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("x86_64", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("x86_64", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("i686", 5, 5, Some("4.2.0"), Some("3.4.8"), Some("1.3.1"), None, None),
    row("i686", 12, 12, Some("4.5.0"), Some("3.4.13"), Some("1.3.3"), None, Some("1.2.2.4")),
    row("i686", 17, 17, Some("4.8.0"), Some("3.4.19"), Some("1.3.7"), Some("1.0"), Some("1.2.5.2")),
    row("i686", 24, 24, Some("4.8.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("i686", 26, 26, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("i686", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("i686", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("i686", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("i686", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("i686", 35, 35, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("i686", 36, 36, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("i686", 37, 37, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("i686", 38, 38, Some("12.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("i686", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("i686", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("i686", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("aarch64", 17, 18, Some("4.7.0"), Some("3.4.19"), Some("1.3.7"), Some("1.0"), Some("1.2.5.2")),
    row("aarch64", 24, 24, Some("4.7.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("aarch64", 26, 26, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.5.2")),
    row("aarch64", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 34, 34, Some("11.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 35, 35, Some("11.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 36, 36, Some("11.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("aarch64", 37, 36, Some("11.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("aarch64", 38, 38, Some("11.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("aarch64", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("aarch64", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("aarch64", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("armv7l", 17, 17, Some("4.7.0"), Some("3.4.19"), Some("1.3.7"), Some("1.0"), Some("1.2.5.2")),
    row("armv7l", 24, 24, Some("4.7.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("armv7l", 26, 26, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 35, 35, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 36, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("armv7l", 37, 37, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("armv7l", 38, 38, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("armv7l", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("armv7l", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("armv7l", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("ppc64le", 17, 17, Some("4.7.0"), Some("3.4.19"), Some("1.3.7"), Some("1.0"), Some("1.2.5.2")),
    row("ppc64le", 24, 24, Some("4.7.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("ppc64le", 26, 26, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 35, 35, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 36, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("ppc64le", 37, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("ppc64le", 38, 38, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("ppc64le", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("ppc64le", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("ppc64le", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("s390x", 17, 17, Some("4.7.0"), Some("3.4.19"), Some("1.3.7"), None, Some("1.2.5.2")),
    row("s390x", 24, 24, Some("4.7.0"), Some("3.4.22"), Some("1.3.10"), Some("1.2"), Some("1.2.5.2")),
    row("s390x", 26, 26, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("s390x", 27, 27, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("s390x", 28, 28, Some("7.0.0"), Some("3.4.24"), Some("1.3.11"), Some("1.2"), Some("1.2.9")),
    row("s390x", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("s390x", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("s390x", 35, 35, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("s390x", 36, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("s390x", 37, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("s390x", 38, 38, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("s390x", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("s390x", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("s390x", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("riscv64", 31, 31, Some("7.0.0"), Some("3.4.28"), Some("1.3.12"), Some("1.2"), Some("1.2.9")),
    row("riscv64", 34, 34, Some("7.0.0"), Some("3.4.29"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("riscv64", 35, 35, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("riscv64", 36, 36, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.9")),
    row("riscv64", 37, 37, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("riscv64", 38, 38, Some("7.0.0"), Some("3.4.30"), Some("1.3.13"), Some("1.2"), Some("1.2.12")),
    row("riscv64", 39, 39, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("riscv64", 40, 40, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
    row("riscv64", 41, 41, Some("14.0.0"), Some("3.4.33"), Some("1.3.15"), Some("1.2"), Some("1.2.12")),
];

/// The policies of one architecture, most compatible first.
pub(crate) fn manylinux_policies(arch: &str) -> impl Iterator<Item = &'static ManylinuxPolicy> {
    MANYLINUX_POLICIES
        .iter()
        .filter(move |policy| policy.arch == arch)
}

/// The legacy name PyPI also accepts for `manylinux_2_Y_{arch}` (PEP 513, 571, 599), for the
/// architectures each of those PEPs covers; `None` where no alias exists. Wheels carry both
/// names so that pip older than 20.3 (which knows only the legacy ones) installs them too.
pub(crate) fn legacy_manylinux_alias(glibc_minor: u32, arch: &str) -> Option<String> {
    let name = match (glibc_minor, arch) {
        (5, "x86_64" | "i686") => "manylinux1",
        (12, "x86_64" | "i686") => "manylinux2010",
        (17, "x86_64" | "i686" | "aarch64" | "armv7l" | "ppc64" | "ppc64le" | "s390x") => {
            "manylinux2014"
        }
        _ => return None,
    };
    Some(format!("{name}_{arch}"))
}

/// Compares dotted numeric versions (`4.8.0` < `12.0.0`); a non-numeric part sorts first.
pub(crate) fn version_le(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<i64> {
        v.split('.')
            .map(|part| part.parse::<i64>().unwrap_or(-1))
            .collect()
    };
    parse(a) <= parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert_eq!(
            legacy_manylinux_alias(5, "x86_64").as_deref(),
            Some("manylinux1_x86_64")
        );
        assert_eq!(
            legacy_manylinux_alias(12, "i686").as_deref(),
            Some("manylinux2010_i686")
        );
        assert_eq!(
            legacy_manylinux_alias(17, "aarch64").as_deref(),
            Some("manylinux2014_aarch64")
        );
        assert_eq!(legacy_manylinux_alias(12, "aarch64"), None);
        assert_eq!(legacy_manylinux_alias(28, "x86_64"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_le("4.8.0", "12.0.0"));
        assert!(version_le("3.4.19", "3.4.19"));
        assert!(!version_le("3.4.30", "3.4.29"));
        assert!(version_le("1.2.5.2", "1.2.9"));
    }

    #[test]
    fn policies_ascend_per_arch() {
        for arch in [
            "x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64",
        ] {
            let minors: Vec<u32> = manylinux_policies(arch).map(|p| p.glibc_minor).collect();
            assert!(minors.windows(2).all(|w| w[0] < w[1]), "{arch}: {minors:?}");
            assert_eq!(minors.last(), Some(&41), "{arch}");
        }
    }
}
