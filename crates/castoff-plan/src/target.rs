//! The table of supported Rust target triples and what each means in every channel:
//! Python platform tags, npm `os`/`cpu`/`libc`, OCI platform, executable suffix, CI runner.

use std::fmt;
use std::str::FromStr;

/// Operating system of a target, as castoff needs to distinguish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

/// C library of a Linux target. Decides manylinux vs musllinux and npm's `libc` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Libc {
    Glibc,
    Musl,
}

/// How a Python wheel for a target is tagged, before the binary itself is inspected
/// (castoff-wheel refines `manylinux_2_Y` / `macosx_X_Y` from the binary's headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PythonPlatformFamily {
    /// `manylinux_2_Y_{arch}`
    Manylinux,
    /// `musllinux_1_Y_{arch}`
    Musllinux,
    /// `macosx_X_Y_{arch}`
    Macosx,
    /// `win_amd64`, `win_arm64`, `win32`: the whole tag, no arch suffix.
    Windows,
}

/// The OCI `platform` of a Linux target's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OciPlatform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl fmt::Display for OciPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Everything castoff knows about one Rust target triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub triple: &'static str,
    pub os: Os,
    pub libc: Option<Libc>,
    /// Python platform tag family.
    pub python_family: PythonPlatformFamily,
    /// Architecture in Python platform tags (`x86_64`, `aarch64`, `armv7l`, `i686`, `arm64`);
    /// for Windows the complete platform tag (`win_amd64`).
    pub python_arch: &'static str,
    /// npm `os` (`process.platform`).
    pub npm_os: &'static str,
    /// npm `cpu` (`process.arch`).
    pub npm_cpu: &'static str,
    /// npm `libc` (Linux only): `glibc` or `musl`.
    pub npm_libc: Option<&'static str>,
    /// Image platform; `None` where no container image exists (macOS, Windows).
    pub oci: Option<OciPlatform>,
    /// `.exe` on Windows, empty elsewhere.
    pub exe_suffix: &'static str,
    /// GitHub Actions runner that builds this target natively (or with the least tooling).
    pub github_runner: &'static str,
}

impl Target {
    /// File name of a binary built for this target.
    pub fn executable_name(&self, bin: &str) -> String {
        format!("{bin}{}", self.exe_suffix)
    }

    /// The suffix npm platform packages carry: `linux-x64-gnu`, `darwin-arm64`, `win32-x64`.
    pub fn npm_platform_suffix(&self) -> String {
        let mut suffix = format!("{}-{}", self.npm_os, self.npm_cpu);
        match self.npm_libc {
            Some("glibc") => suffix.push_str("-gnu"),
            Some(other) => {
                suffix.push('-');
                suffix.push_str(other);
            }
            None => {}
        }
        suffix
    }

    /// All supported targets, in table order.
    pub fn all() -> &'static [Target] {
        TARGETS
    }

    /// The wheel platform tag, with the parts read from the binary as placeholders:
    /// `manylinux_2_Y_x86_64`, `macosx_X_Y_arm64`, `win_amd64`.
    pub fn python_tag_pattern(&self) -> String {
        match self.python_family {
            PythonPlatformFamily::Manylinux => format!("manylinux_2_Y_{}", self.python_arch),
            PythonPlatformFamily::Musllinux => format!("musllinux_1_Y_{}", self.python_arch),
            PythonPlatformFamily::Macosx => format!("macosx_X_Y_{}", self.python_arch),
            PythonPlatformFamily::Windows => self.python_arch.to_owned(),
        }
    }
}

/// The supported targets as the Markdown table docs/configuration.md shows (kept in sync by a
/// test): what each target becomes in every channel.
pub fn matrix_table() -> String {
    let mut out = String::from(
        "| target | wheel platform tag | npm package (`os`, `cpu`, `libc`) | image platform |\n\
         | --- | --- | --- | --- |\n",
    );
    for target in TARGETS {
        let npm = format!(
            "`<name>-{}` ({}, {}, {})",
            target.npm_platform_suffix(),
            target.npm_os,
            target.npm_cpu,
            target.npm_libc.unwrap_or("-")
        );
        let oci = target
            .oci
            .map_or_else(|| "none (Linux only)".to_owned(), |oci| format!("`{oci}`"));
        out.push_str(&format!(
            "| `{}` | `{}` | {npm} | {oci} |\n",
            target.triple,
            target.python_tag_pattern()
        ));
    }
    out
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.triple)
    }
}

impl FromStr for &'static Target {
    type Err = UnknownTarget;

    fn from_str(triple: &str) -> Result<Self, Self::Err> {
        TARGETS
            .iter()
            .find(|target| target.triple == triple)
            .ok_or_else(|| UnknownTarget {
                triple: triple.to_owned(),
            })
    }
}

/// A target triple castoff has no table entry for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target `{triple}`")]
pub struct UnknownTarget {
    pub triple: String,
}

impl UnknownTarget {
    /// What to do: the supported targets.
    pub fn hint(&self) -> String {
        format!("supported targets are: {}", supported_triples())
    }
}

fn supported_triples() -> String {
    TARGETS
        .iter()
        .map(|target| target.triple)
        .collect::<Vec<_>>()
        .join(", ")
}

const fn linux(
    triple: &'static str,
    libc: Libc,
    python_arch: &'static str,
    npm_cpu: &'static str,
    oci: OciPlatform,
    github_runner: &'static str,
) -> Target {
    let (python_family, npm_libc) = match libc {
        Libc::Glibc => (PythonPlatformFamily::Manylinux, "glibc"),
        Libc::Musl => (PythonPlatformFamily::Musllinux, "musl"),
    };
    Target {
        triple,
        os: Os::Linux,
        libc: Some(libc),
        python_family,
        python_arch,
        npm_os: "linux",
        npm_cpu,
        npm_libc: Some(npm_libc),
        oci: Some(oci),
        exe_suffix: "",
        github_runner,
    }
}

const fn oci(architecture: &'static str, variant: Option<&'static str>) -> OciPlatform {
    OciPlatform {
        os: "linux",
        architecture,
        variant,
    }
}

const fn macos(
    triple: &'static str,
    python_arch: &'static str,
    npm_cpu: &'static str,
    github_runner: &'static str,
) -> Target {
    Target {
        triple,
        os: Os::MacOs,
        libc: None,
        python_family: PythonPlatformFamily::Macosx,
        python_arch,
        npm_os: "darwin",
        npm_cpu,
        npm_libc: None,
        oci: None,
        exe_suffix: "",
        github_runner,
    }
}

const fn windows(triple: &'static str, python_tag: &'static str, npm_cpu: &'static str) -> Target {
    Target {
        triple,
        os: Os::Windows,
        libc: None,
        python_family: PythonPlatformFamily::Windows,
        python_arch: python_tag,
        npm_os: "win32",
        npm_cpu,
        npm_libc: None,
        oci: None,
        exe_suffix: ".exe",
        github_runner: "windows-latest",
    }
}

// Runners: native where GitHub offers one (ubuntu-24.04-arm, macos-13 for Intel), otherwise
// the x86_64 Linux runner with a cross linker.
#[rustfmt::skip]
static TARGETS: &[Target] = &[
    linux("x86_64-unknown-linux-gnu", Libc::Glibc, "x86_64", "x64", oci("amd64", None), "ubuntu-latest"),
    linux("x86_64-unknown-linux-musl", Libc::Musl, "x86_64", "x64", oci("amd64", None), "ubuntu-latest"),
    linux("aarch64-unknown-linux-gnu", Libc::Glibc, "aarch64", "arm64", oci("arm64", Some("v8")), "ubuntu-24.04-arm"),
    linux("aarch64-unknown-linux-musl", Libc::Musl, "aarch64", "arm64", oci("arm64", Some("v8")), "ubuntu-24.04-arm"),
    linux("armv7-unknown-linux-gnueabihf", Libc::Glibc, "armv7l", "arm", oci("arm", Some("v7")), "ubuntu-latest"),
    linux("armv7-unknown-linux-musleabihf", Libc::Musl, "armv7l", "arm", oci("arm", Some("v7")), "ubuntu-latest"),
    linux("i686-unknown-linux-gnu", Libc::Glibc, "i686", "ia32", oci("386", None), "ubuntu-latest"),
    linux("i686-unknown-linux-musl", Libc::Musl, "i686", "ia32", oci("386", None), "ubuntu-latest"),
    linux("riscv64gc-unknown-linux-gnu", Libc::Glibc, "riscv64", "riscv64", oci("riscv64", None), "ubuntu-latest"),
    linux("riscv64gc-unknown-linux-musl", Libc::Musl, "riscv64", "riscv64", oci("riscv64", None), "ubuntu-latest"),
    // Node names little-endian 64-bit POWER `ppc64` (its `process.arch`); PyPI and OCI say ppc64le.
    linux("powerpc64le-unknown-linux-gnu", Libc::Glibc, "ppc64le", "ppc64", oci("ppc64le", None), "ubuntu-latest"),
    linux("powerpc64le-unknown-linux-musl", Libc::Musl, "ppc64le", "ppc64", oci("ppc64le", None), "ubuntu-latest"),
    linux("s390x-unknown-linux-gnu", Libc::Glibc, "s390x", "s390x", oci("s390x", None), "ubuntu-latest"),
    linux("s390x-unknown-linux-musl", Libc::Musl, "s390x", "s390x", oci("s390x", None), "ubuntu-latest"),
    macos("x86_64-apple-darwin", "x86_64", "x64", "macos-13"),
    macos("aarch64-apple-darwin", "arm64", "arm64", "macos-14"),
    windows("x86_64-pc-windows-msvc", "win_amd64", "x64"),
    windows("aarch64-pc-windows-msvc", "win_arm64", "arm64"),
    windows("i686-pc-windows-msvc", "win32", "ia32"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per target: everything a channel derives from it, as one line of text.
    fn row(target: &Target) -> String {
        format!(
            "{:<32} py={:?}/{:<9} npm={} oci={} exe={:?} runner={}",
            target.triple,
            target.python_family,
            target.python_arch,
            target.npm_platform_suffix(),
            target
                .oci
                .map_or("-".to_owned(), |platform| platform.to_string()),
            target.exe_suffix,
            target.github_runner,
        )
    }

    #[test]
    fn table() {
        let rendered: Vec<String> = Target::all().iter().map(row).collect();
        let expected = [
            "x86_64-unknown-linux-gnu         py=Manylinux/x86_64    npm=linux-x64-gnu oci=linux/amd64 exe=\"\" runner=ubuntu-latest",
            "x86_64-unknown-linux-musl        py=Musllinux/x86_64    npm=linux-x64-musl oci=linux/amd64 exe=\"\" runner=ubuntu-latest",
            "aarch64-unknown-linux-gnu        py=Manylinux/aarch64   npm=linux-arm64-gnu oci=linux/arm64/v8 exe=\"\" runner=ubuntu-24.04-arm",
            "aarch64-unknown-linux-musl       py=Musllinux/aarch64   npm=linux-arm64-musl oci=linux/arm64/v8 exe=\"\" runner=ubuntu-24.04-arm",
            "armv7-unknown-linux-gnueabihf    py=Manylinux/armv7l    npm=linux-arm-gnu oci=linux/arm/v7 exe=\"\" runner=ubuntu-latest",
            "armv7-unknown-linux-musleabihf   py=Musllinux/armv7l    npm=linux-arm-musl oci=linux/arm/v7 exe=\"\" runner=ubuntu-latest",
            "i686-unknown-linux-gnu           py=Manylinux/i686      npm=linux-ia32-gnu oci=linux/386 exe=\"\" runner=ubuntu-latest",
            "i686-unknown-linux-musl          py=Musllinux/i686      npm=linux-ia32-musl oci=linux/386 exe=\"\" runner=ubuntu-latest",
            "riscv64gc-unknown-linux-gnu      py=Manylinux/riscv64   npm=linux-riscv64-gnu oci=linux/riscv64 exe=\"\" runner=ubuntu-latest",
            "riscv64gc-unknown-linux-musl     py=Musllinux/riscv64   npm=linux-riscv64-musl oci=linux/riscv64 exe=\"\" runner=ubuntu-latest",
            "powerpc64le-unknown-linux-gnu    py=Manylinux/ppc64le   npm=linux-ppc64-gnu oci=linux/ppc64le exe=\"\" runner=ubuntu-latest",
            "powerpc64le-unknown-linux-musl   py=Musllinux/ppc64le   npm=linux-ppc64-musl oci=linux/ppc64le exe=\"\" runner=ubuntu-latest",
            "s390x-unknown-linux-gnu          py=Manylinux/s390x     npm=linux-s390x-gnu oci=linux/s390x exe=\"\" runner=ubuntu-latest",
            "s390x-unknown-linux-musl         py=Musllinux/s390x     npm=linux-s390x-musl oci=linux/s390x exe=\"\" runner=ubuntu-latest",
            "x86_64-apple-darwin              py=Macosx/x86_64    npm=darwin-x64 oci=- exe=\"\" runner=macos-13",
            "aarch64-apple-darwin             py=Macosx/arm64     npm=darwin-arm64 oci=- exe=\"\" runner=macos-14",
            "x86_64-pc-windows-msvc           py=Windows/win_amd64 npm=win32-x64 oci=- exe=\".exe\" runner=windows-latest",
            "aarch64-pc-windows-msvc          py=Windows/win_arm64 npm=win32-arm64 oci=- exe=\".exe\" runner=windows-latest",
            "i686-pc-windows-msvc             py=Windows/win32     npm=win32-ia32 oci=- exe=\".exe\" runner=windows-latest",
        ];
        assert_eq!(rendered, expected);
    }

    #[test]
    fn lookup() {
        let check = |triple: &str, expect: Result<&str, &str>| {
            let got = triple.parse::<&'static Target>();
            match (got, expect) {
                (Ok(target), Ok(expected)) => assert_eq!(target.triple, expected),
                (Err(error), Err(expected)) => assert!(
                    format!("{error}\nhint: {}", error.hint()).starts_with(expected),
                    "{error} does not start with {expected}"
                ),
                (got, expect) => panic!("{triple}: got {got:?}, expected {expect:?}"),
            }
        };
        check("x86_64-unknown-linux-gnu", Ok("x86_64-unknown-linux-gnu"));
        check("aarch64-apple-darwin", Ok("aarch64-apple-darwin"));
        check(
            "loongarch64-unknown-linux-gnu",
            Err(
                "unknown target `loongarch64-unknown-linux-gnu`\nhint: supported targets are: x86_64-unknown-linux-gnu, ",
            ),
        );
        check("X86_64-unknown-linux-gnu", Err("unknown target"));
        check("", Err("unknown target ``"));
    }

    /// docs/configuration.md shows [`matrix_table`] between its two markers;
    /// `UPDATE_EXPECT=1` rewrites it there.
    #[test]
    fn the_configuration_reference_shows_this_table() {
        const BEGIN: &str =
            "<!-- target matrix: generated from crates/castoff-plan/src/target.rs -->\n";
        const END: &str = "<!-- end of target matrix -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("reading docs/configuration.md");
        let start = doc
            .find(BEGIN)
            .expect("docs/configuration.md has the matrix's first marker")
            + BEGIN.len();
        let end = start + doc[start..].find(END).expect("and its last marker");
        let table = matrix_table();
        if doc[start..end] != table {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(path, format!("{}{table}{}", &doc[..start], &doc[end..]))
                    .expect("writing docs/configuration.md");
            } else {
                panic!(
                    "docs/configuration.md's target matrix is out of date (UPDATE_EXPECT=1 rewrites it):\n{table}"
                );
            }
        }
    }

    #[test]
    fn windows_executables_carry_exe() {
        let target: &Target = "x86_64-pc-windows-msvc".parse().unwrap();
        assert_eq!(target.executable_name("greeter"), "greeter.exe");
        let target: &Target = "aarch64-unknown-linux-musl".parse().unwrap();
        assert_eq!(target.executable_name("greeter"), "greeter");
    }
}
