//! Platform tags from the binary itself: ELF symbol versions and shared libraries (manylinux /
//! musllinux), Mach-O minimum macOS version and slices (macosx / universal2), PE machine (win).
//! The target only says what the binary must be; the headers say what it needs.

use std::collections::BTreeSet;
use std::path::Path;

use castoff_archive::elf::ElfFile;
use castoff_plan::Target;
use castoff_plan::target::{Libc, Os};
use object::elf;
use object::macho;
use object::pe;
use object::read::macho::{FatArch, MachHeader};
use object::{Endianness, FileKind, Object as _, ObjectSection as _, ReadRef};

use crate::error::WheelError;
use crate::policy::{self, ManylinuxPolicy};

/// The musl minor version of the `musllinux_1_Y` tag for binaries dynamically linked against
/// musl: musl does not version its symbols, so the binary cannot tell; Rust's musl targets
/// ship musl 1.2.3 since Rust 1.71, hence `musllinux_1_2`.
pub const RUST_MUSL_MINOR: u32 = 2;

/// The glibc minor of the manylinux half of a static binary's tag: `manylinux_2_17`
/// (`manylinux2014`), the oldest glibc/kernel generation Rust's std supports (Rust 1.64+:
/// glibc 2.17, kernel 3.2). A lower tag would promise more than Rust does. An architecture
/// whose first manylinux policy is newer takes that one ([`static_manylinux_minor`]).
pub const STATIC_MANYLINUX_MINOR: u32 = 17;

/// The glibc minor of a static binary's manylinux tag on `arch` (a `python_arch`): Rust's
/// floor, or the architecture's first manylinux policy when that is newer (riscv64:
/// `manylinux_2_31`; glibc gained riscv64 in 2.27 and no manylinux platform predates 2.31
/// there, so `auditwheel show` names 2.31 for a static binary as well).
pub fn static_manylinux_minor(arch: &str) -> u32 {
    policy::manylinux_policies(arch)
        .next()
        .map_or(STATIC_MANYLINUX_MINOR, |first| {
            first.glibc_minor.max(STATIC_MANYLINUX_MINOR)
        })
}

/// Which C libraries' platforms a wheel of static Linux binaries is tagged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticLinuxTags {
    /// manylinux and musllinux: one wheel serves glibc and musl systems alike.
    BothLibcs,
    /// Only the target's own C library: the release also has a wheel of the same
    /// architecture for the other one, which installers on those systems must take.
    OwnLibc,
}

/// The musl minor of the musllinux half of a static binary's tag: `musllinux_1_1`, the oldest
/// musllinux platform PyPI lists, so pip on every Alpine since 3.13 installs the wheel.
pub const STATIC_MUSLLINUX_MINOR: u32 = 1;

/// What one binary needs from the machine that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryPlatform {
    /// Linux without a dynamic loader: runs on any Linux of its architecture.
    StaticLinux,
    /// Linux, dynamically linked against glibc: the `Y` of `manylinux_2_Y`.
    Manylinux { glibc_minor: u32 },
    /// Linux, dynamically linked against musl: the `Y` of `musllinux_1_Y`.
    Musllinux { musl_minor: u32 },
    /// macOS `major.minor` or later; `universal2` for a fat x86_64 + arm64 binary.
    Macos {
        major: u32,
        minor: u32,
        universal2: bool,
    },
    /// Windows; the tag is the target's (`win_amd64`, `win_arm64`, `win32`).
    Windows,
}

/// What reading one binary found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryFacts {
    pub platform: BinaryPlatform,
    /// The binary has a `.debug_info` section (castoff never strips; it warns).
    pub has_debug_info: bool,
}

/// Reads a compiled binary and checks it against the target: file format, architecture, C
/// library, and what it needs. `path` only names the file in errors.
pub fn inspect_binary<'data, R: ReadRef<'data>>(
    data: R,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryFacts, WheelError> {
    let kind = FileKind::parse(data).map_err(|_| not_executable(path, describe_unknown(data)))?;
    let expected = match target.os {
        Os::Linux => "an ELF executable (Linux)",
        Os::MacOs => "a Mach-O executable (macOS)",
        Os::Windows => "a PE executable (Windows)",
    };
    let wrong_format = |found: &str| WheelError::WrongFormat {
        path: path.to_owned(),
        found: found.to_owned(),
        target: target.triple,
        expected,
    };
    let platform = match (kind, target.os) {
        (FileKind::Elf32 | FileKind::Elf64, Os::Linux) => inspect_elf(data, path, target)?,
        (FileKind::MachO64, Os::MacOs) => inspect_macho_thin(data, path, target)?,
        (FileKind::MachOFat32, Os::MacOs) => {
            inspect_macho_fat::<macho::FatArch32, R>(data, path, target)?
        }
        (FileKind::MachOFat64, Os::MacOs) => {
            inspect_macho_fat::<macho::FatArch64, R>(data, path, target)?
        }
        (FileKind::MachO32, Os::MacOs) => {
            return Err(WheelError::WrongArchitecture {
                path: path.to_owned(),
                found: "32-bit macOS".to_owned(),
                target: target.triple,
                expected: target.python_arch.to_owned(),
            });
        }
        (FileKind::Pe64, Os::Windows) => inspect_pe::<pe::ImageNtHeaders64, R>(data, path, target)?,
        (FileKind::Pe32, Os::Windows) => inspect_pe::<pe::ImageNtHeaders32, R>(data, path, target)?,
        (FileKind::Elf32 | FileKind::Elf64, _) => return Err(wrong_format("an ELF file (Linux)")),
        (
            FileKind::MachO32 | FileKind::MachO64 | FileKind::MachOFat32 | FileKind::MachOFat64,
            _,
        ) => return Err(wrong_format("a Mach-O file (macOS)")),
        (FileKind::Pe32 | FileKind::Pe64, _) => return Err(wrong_format("a PE file (Windows)")),
        (other, _) => {
            return Err(not_executable(
                path,
                format!("it is a {other:?} file, not an ELF, Mach-O or PE executable"),
            ));
        }
    };
    Ok(BinaryFacts {
        platform,
        has_debug_info: has_debug_info(data),
    })
}

/// [`inspect_binary`] of an open file, reading only its headers (object's `ReadCache`): memory
/// stays flat whatever the binary's size. `path` only names the file in errors.
pub fn inspect_file(
    file: &std::fs::File,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryFacts, WheelError> {
    let cache = object::ReadCache::new(file);
    inspect_binary(&cache, path, target)
}

/// The platform tags (without `py3-none-`) of a wheel holding binaries with these needs,
/// sorted: the wheel must satisfy the most demanding binary. `static_tags` matters only when
/// every binary is a static Linux one.
pub fn platform_tags(
    platforms: &[BinaryPlatform],
    target: &Target,
    static_tags: StaticLinuxTags,
) -> Vec<String> {
    let arch = target.python_arch;
    let mut tags = BTreeSet::new();
    match target.os {
        Os::Linux => {
            let glibc = platforms
                .iter()
                .filter_map(|platform| match platform {
                    BinaryPlatform::Manylinux { glibc_minor } => Some(*glibc_minor),
                    _ => None,
                })
                .max();
            let musl = platforms
                .iter()
                .filter_map(|platform| match platform {
                    BinaryPlatform::Musllinux { musl_minor } => Some(*musl_minor),
                    _ => None,
                })
                .max();
            match (glibc, musl) {
                (Some(glibc_minor), _) => {
                    tags.insert(format!("manylinux_2_{glibc_minor}_{arch}"));
                    tags.extend(policy::legacy_manylinux_alias(glibc_minor, arch));
                }
                (None, Some(musl_minor)) => {
                    tags.insert(format!("musllinux_1_{musl_minor}_{arch}"));
                }
                // Only static binaries: they need nothing from the C library, so one wheel
                // serves glibc and musl systems alike (see docs/channels/python.md).
                // With a wheel of the same architecture for the other C library in the
                // release, only the target's own: pip and uv rank a glibc system's tags by
                // glibc version, and would take a static musl wheel's manylinux_2_17 over a
                // glibc wheel's manylinux_2_5 (or pick either of two equal tags).
                (None, None) => {
                    let musl_target = target.libc == Some(Libc::Musl);
                    if static_tags == StaticLinuxTags::BothLibcs || !musl_target {
                        let minor = static_manylinux_minor(arch);
                        tags.insert(format!("manylinux_2_{minor}_{arch}"));
                        tags.extend(policy::legacy_manylinux_alias(minor, arch));
                    }
                    if static_tags == StaticLinuxTags::BothLibcs || musl_target {
                        tags.insert(format!("musllinux_1_{STATIC_MUSLLINUX_MINOR}_{arch}"));
                    }
                }
            }
        }
        Os::MacOs => {
            let mut version = (0, 0);
            let mut all_universal = true;
            for platform in platforms {
                if let BinaryPlatform::Macos {
                    major,
                    minor,
                    universal2,
                } = *platform
                {
                    version = version.max((major, minor));
                    all_universal &= universal2;
                }
            }
            let arch = if all_universal { "universal2" } else { arch };
            tags.insert(macos_tag(version.0, version.1, arch));
        }
        Os::Windows => {
            tags.insert(arch.to_owned());
        }
    }
    tags.into_iter().collect()
}

/// `macosx_{major}_{minor}_{arch}`; from macOS 11 on only the major version counts (pip and
/// PyPI accept only `_0` there).
fn macos_tag(major: u32, minor: u32, arch: &str) -> String {
    if major >= 11 {
        format!("macosx_{major}_0_{arch}")
    } else {
        format!("macosx_{major}_{minor}_{arch}")
    }
}

fn not_executable(path: &Path, reason: String) -> WheelError {
    WheelError::NotExecutable {
        path: path.to_owned(),
        reason,
    }
}

fn describe_unknown<'data, R: ReadRef<'data>>(data: R) -> String {
    let len = data.len().unwrap_or(0);
    if len == 0 {
        return "the file is empty".to_owned();
    }
    let first = data.read_bytes_at(0, len.min(4)).unwrap_or_default();
    let start: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "it is not an ELF, Mach-O or PE file (it starts with bytes {})",
        start.join(" ")
    )
}

fn has_debug_info<'data, R: ReadRef<'data>>(data: R) -> bool {
    fn slice_has<'data, R: ReadRef<'data>>(slice: R) -> bool {
        object::File::parse(slice).is_ok_and(|file| {
            file.section_by_name(".debug_info")
                .is_some_and(|section| section.size() > 0)
        })
    }
    match FileKind::parse(data) {
        Ok(FileKind::MachOFat32) => {
            object::read::macho::MachOFatFile32::parse(data).is_ok_and(|fat| {
                fat.arches()
                    .iter()
                    .any(|a| a.data(data).is_ok_and(slice_has::<&[u8]>))
            })
        }
        Ok(FileKind::MachOFat64) => {
            object::read::macho::MachOFatFile64::parse(data).is_ok_and(|fat| {
                fat.arches()
                    .iter()
                    .any(|a| a.data(data).is_ok_and(slice_has::<&[u8]>))
            })
        }
        _ => slice_has(data),
    }
}

/// Python's name of an ELF machine (what `target.python_arch` holds for Linux). Machines whose
/// variants share `e_machine` are told apart by class and byte order: x32 is not x86_64, 31-bit
/// s390 not s390x, riscv32 not riscv64, big-endian ppc64 not ppc64le.
fn elf_arch(machine: u16, big_endian: bool, elf64: bool) -> String {
    let name = match (machine, elf64) {
        (elf::EM_X86_64, true) => "x86_64",
        (elf::EM_X86_64, false) => "x32",
        (elf::EM_386, false) => "i686",
        (elf::EM_AARCH64, true) => "aarch64",
        (elf::EM_AARCH64, false) => "aarch64_ilp32",
        (elf::EM_ARM, false) => "armv7l",
        (elf::EM_RISCV, true) => "riscv64",
        (elf::EM_RISCV, false) => "riscv32",
        (elf::EM_PPC64, true) if big_endian => "ppc64",
        (elf::EM_PPC64, true) => "ppc64le",
        (elf::EM_S390, true) => "s390x",
        (elf::EM_S390, false) => "s390",
        (elf::EM_LOONGARCH, true) => "loongarch64",
        (other, elf64) => {
            return format!("ELF machine {other} ({}-bit)", if elf64 { 64 } else { 32 });
        }
    };
    name.to_owned()
}

fn inspect_elf<'data, R: ReadRef<'data>>(
    data: R,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryPlatform, WheelError> {
    let malformed = |error: object::Error| not_executable(path, format!("malformed ELF: {error}"));
    let file = ElfFile::parse(data)
        .map_err(malformed)?
        .ok_or_else(|| not_executable(path, describe_unknown(data)))?;
    let arch = elf_arch(file.machine(), file.is_big_endian(), file.is_64());
    if arch != target.python_arch {
        return Err(WheelError::WrongArchitecture {
            path: path.to_owned(),
            found: arch,
            target: target.triple,
            expected: target.python_arch.to_owned(),
        });
    }
    let linking = file.linking().map_err(malformed)?;
    let executable = match file.file_type() {
        elf::ET_EXEC => true,
        // Position-independent executables and shared libraries share ET_DYN; an executable
        // has a loader or says PIE (a static-pie, which Rust's musl and crt-static builds are).
        elf::ET_DYN => linking.interpreter.is_some() || linking.pie,
        elf::ET_REL => return Err(not_executable(path, "it is an object file (.o)".to_owned())),
        elf::ET_CORE => return Err(not_executable(path, "it is a core dump".to_owned())),
        _ => false,
    };
    if !executable || file.entry() == 0 {
        return Err(not_executable(
            path,
            "it is a shared library (no entry point or program interpreter)".to_owned(),
        ));
    }

    let Some(interpreter) = linking.interpreter.clone() else {
        if !linking.needed.is_empty() {
            return Err(not_executable(
                path,
                "it needs shared libraries but names no program interpreter".to_owned(),
            ));
        }
        return Ok(BinaryPlatform::StaticLinux);
    };
    let is_loader = |library: &str| {
        library.starts_with("ld-linux")
            || library.starts_with("ld64.so")
            || library.starts_with("ld-musl")
            || interpreter.rsplit('/').next() == Some(library)
    };
    let needed: Vec<&str> = linking
        .needed
        .iter()
        .map(String::as_str)
        .filter(|library| !is_loader(library))
        .collect();
    let musl = interpreter.contains("ld-musl");
    match (musl, target.libc) {
        (true, Some(Libc::Glibc)) => {
            return Err(WheelError::WrongLibc {
                path: path.to_owned(),
                problem: format!("is dynamically linked against musl (interpreter {interpreter})"),
                target: target.triple,
                hint: format!(
                    "build the binary for `{}` itself (`cargo build --release --target {}`)",
                    target.triple, target.triple
                ),
            });
        }
        (false, Some(Libc::Musl)) => {
            return Err(WheelError::WrongLibc {
                path: path.to_owned(),
                problem: format!("is dynamically linked against glibc (interpreter {interpreter})"),
                target: target.triple,
                hint: format!(
                    "build the binary with `cargo build --release --target {}`: Rust links musl binaries statically by default",
                    target.triple
                ),
            });
        }
        _ => {}
    }
    let arch = target.python_arch;
    if musl {
        if let Some(library) = needed
            .iter()
            .find(|library| !policy::MUSLLINUX_LIBRARIES.contains(library))
        {
            return Err(WheelError::LibraryNotAllowed {
                path: path.to_owned(),
                library: (*library).to_owned(),
                policy: "musllinux",
                arch,
            });
        }
        return Ok(BinaryPlatform::Musllinux {
            musl_minor: RUST_MUSL_MINOR,
        });
    }

    if let Some(library) = needed
        .iter()
        .find(|library| !policy::MANYLINUX_LIBRARIES.contains(library))
    {
        return Err(WheelError::LibraryNotAllowed {
            path: path.to_owned(),
            library: (*library).to_owned(),
            policy: "manylinux",
            arch,
        });
    }
    let glibc_minor = manylinux_minor(&needed, &linking.versions, path, target)?;
    Ok(BinaryPlatform::Manylinux { glibc_minor })
}

/// The lowest manylinux policy (auditwheel's data) that covers every symbol version and
/// library the binary needs; past the newest known policy, the glibc minor itself.
fn manylinux_minor(
    needed: &[&str],
    versions: &[(String, String)],
    path: &Path,
    target: &'static Target,
) -> Result<u32, WheelError> {
    let arch = target.python_arch;
    let too_new = |version: &str| WheelError::SymbolVersionNotAllowed {
        path: path.to_owned(),
        version: version.to_owned(),
        arch,
        triple: target.triple,
    };
    let mut required_glibc = 0;
    let mut library_minimum = 0;
    // (family, version, full name) of every non-glibc versioned need the policies constrain.
    let mut family_needs: Vec<(&str, &str, &str)> = Vec::new();
    for (_, name) in versions {
        let Some((family, version)) = name.split_once('_') else {
            continue;
        };
        if family == "GLIBC" {
            let mut parts = version.split('.');
            match (
                parts.next().and_then(|major| major.parse::<u32>().ok()),
                parts.next().and_then(|minor| minor.parse::<u32>().ok()),
            ) {
                (Some(2), Some(minor)) => required_glibc = required_glibc.max(minor),
                (Some(2), None) => {}
                // GLIBC_PRIVATE and the like: internal symbols no policy allows.
                _ => return Err(too_new(name)),
            }
        } else if version.starts_with(|c: char| c.is_ascii_digit()) {
            family_needs.push((family, version, name));
        }
    }
    for (library, minimum) in policy::MIN_GLIBC_FOR_LIBRARY {
        if needed.contains(library) {
            library_minimum = library_minimum.max(*minimum);
        }
    }
    let satisfies = |candidate: &ManylinuxPolicy| {
        candidate.max_glibc_minor >= required_glibc
            && candidate.glibc_minor >= library_minimum
            && family_needs.iter().all(|(family, version, _)| {
                match candidate.family_max(family) {
                    Ok(Some(max)) => policy::version_le(version, max),
                    Ok(None) => false,
                    // Families no policy constrains (e.g. of an allowed library that versions
                    // its symbols in its own way) do not decide the tag.
                    Err(()) => true,
                }
            })
    };
    if let Some(found) = policy::manylinux_policies(arch).find(|p| satisfies(p)) {
        return Ok(found.glibc_minor);
    }
    let newest = policy::manylinux_policies(arch)
        .last()
        .ok_or_else(|| too_new(&format!("GLIBC_2.{required_glibc}")))?;
    // Newer glibc than any policy: the tag follows glibc (PEP 600), as long as the other
    // families still fit the newest policy.
    let beyond_newest = |(family, version, _): &&(&str, &str, &str)| match newest.family_max(family)
    {
        Ok(Some(max)) => !policy::version_le(version, max),
        Ok(None) => true,
        Err(()) => false,
    };
    if let Some((_, _, name)) = family_needs.iter().find(beyond_newest) {
        return Err(too_new(name));
    }
    Ok(required_glibc.max(newest.glibc_minor).max(library_minimum))
}

fn inspect_macho_thin<'data, R: ReadRef<'data>>(
    data: R,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryPlatform, WheelError> {
    let (arch, major, minor) = read_macho_slice(data, path)?;
    if arch != target.python_arch {
        return Err(WheelError::WrongArchitecture {
            path: path.to_owned(),
            found: arch.to_owned(),
            target: target.triple,
            expected: target.python_arch.to_owned(),
        });
    }
    Ok(BinaryPlatform::Macos {
        major,
        minor,
        universal2: false,
    })
}

fn inspect_macho_fat<'data, Fat: FatArch, R: ReadRef<'data>>(
    data: R,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryPlatform, WheelError> {
    let fat = object::read::macho::MachOFatFile::<Fat>::parse(data)
        .map_err(|error| not_executable(path, format!("malformed universal binary: {error}")))?;
    let mut arches = BTreeSet::new();
    let mut version = (0, 0);
    for slice in fat.arches() {
        let bytes = slice.data(data).map_err(|error| {
            not_executable(path, format!("malformed universal binary: {error}"))
        })?;
        let (arch, major, minor) = read_macho_slice(bytes, path)?;
        arches.insert(arch);
        version = version.max((major, minor));
    }
    if !arches.contains(target.python_arch) {
        return Err(WheelError::WrongArchitecture {
            path: path.to_owned(),
            found: format!(
                "{} (universal binary)",
                arches.into_iter().collect::<Vec<_>>().join(" + ")
            ),
            target: target.triple,
            expected: target.python_arch.to_owned(),
        });
    }
    Ok(BinaryPlatform::Macos {
        major: version.0,
        minor: version.1,
        universal2: arches.contains("x86_64") && arches.contains("arm64"),
    })
}

/// (Python arch, minimum macOS major, minor) of one thin Mach-O executable.
fn read_macho_slice<'data, R: ReadRef<'data>>(
    data: R,
    path: &Path,
) -> Result<(&'static str, u32, u32), WheelError> {
    let malformed =
        |error: object::Error| not_executable(path, format!("malformed Mach-O: {error}"));
    let header = macho::MachHeader64::<Endianness>::parse(data, 0).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let arch = match header.cputype(endian) {
        macho::CPU_TYPE_X86_64 => "x86_64",
        macho::CPU_TYPE_ARM64 => "arm64",
        other => {
            return Err(not_executable(
                path,
                format!(
                    "it is a Mach-O file for CPU type {other:#x}, which macOS wheels do not support"
                ),
            ));
        }
    };
    match header.filetype(endian) {
        macho::MH_EXECUTE => {}
        macho::MH_DYLIB => {
            return Err(not_executable(
                path,
                "it is a dynamic library (.dylib)".to_owned(),
            ));
        }
        other => {
            return Err(not_executable(
                path,
                format!("it is a Mach-O file of type {other}, not MH_EXECUTE"),
            ));
        }
    }
    let mut commands = header.load_commands(endian, data, 0).map_err(malformed)?;
    let mut minimum = None;
    while let Some(command) = commands.next().map_err(malformed)? {
        match command.variant().map_err(malformed)? {
            object::read::macho::LoadCommandVariant::BuildVersion(build) => {
                let platform = build.platform.get(endian);
                if platform != macho::PLATFORM_MACOS {
                    return Err(WheelError::MacosVersion {
                        path: path.to_owned(),
                        problem: format!(
                            "is built for Apple platform {platform} (LC_BUILD_VERSION), not macOS (1)"
                        ),
                        hint: "build for an `*-apple-darwin` target".to_owned(),
                    });
                }
                minimum = Some(build.minos.get(endian));
            }
            object::read::macho::LoadCommandVariant::VersionMin(version)
                if command.cmd() == macho::LC_VERSION_MIN_MACOSX =>
            {
                minimum = Some(version.version.get(endian));
            }
            object::read::macho::LoadCommandVariant::VersionMin(_) => {
                return Err(WheelError::MacosVersion {
                    path: path.to_owned(),
                    problem: "is built for iOS, tvOS or watchOS, not macOS".to_owned(),
                    hint: "build for an `*-apple-darwin` target".to_owned(),
                });
            }
            _ => {}
        }
    }
    let Some(encoded) = minimum else {
        return Err(WheelError::MacosVersion {
            path: path.to_owned(),
            problem: "has neither LC_BUILD_VERSION nor LC_VERSION_MIN_MACOSX, so its minimum macOS version is unknown".to_owned(),
            hint: "link with a current Apple linker (set MACOSX_DEPLOYMENT_TARGET to the oldest macOS you support)".to_owned(),
        });
    };
    // xxxx.yy.zz in nibbles: major in the high 16 bits, minor in the next 8.
    let (major, minor) = (encoded >> 16, (encoded >> 8) & 0xff);
    // Apple silicon starts at macOS 11, and pip there only accepts `macosx_11_0` and newer
    // for arm64: an older minimum (only a hand-made binary can say so) still needs 11.
    let (major, minor) = if arch == "arm64" {
        (major, minor).max((11, 0))
    } else {
        (major, minor)
    };
    Ok((arch, major, minor))
}

fn inspect_pe<'data, Pe: object::read::pe::ImageNtHeaders, R: ReadRef<'data>>(
    data: R,
    path: &Path,
    target: &'static Target,
) -> Result<BinaryPlatform, WheelError> {
    let file = object::read::pe::PeFile::<Pe, R>::parse(data)
        .map_err(|error| not_executable(path, format!("malformed PE: {error}")))?;
    let header = file.nt_headers().file_header();
    let characteristics = header.characteristics.get(object::LittleEndian);
    if characteristics & pe::IMAGE_FILE_DLL != 0 {
        return Err(not_executable(path, "it is a DLL".to_owned()));
    }
    if characteristics & pe::IMAGE_FILE_EXECUTABLE_IMAGE == 0 {
        return Err(not_executable(
            path,
            "its PE header does not mark it executable".to_owned(),
        ));
    }
    let found = match header.machine.get(object::LittleEndian) {
        pe::IMAGE_FILE_MACHINE_AMD64 => "win_amd64".to_owned(),
        pe::IMAGE_FILE_MACHINE_ARM64 => "win_arm64".to_owned(),
        pe::IMAGE_FILE_MACHINE_I386 => "win32".to_owned(),
        other => format!("PE machine {other:#06x}"),
    };
    if found != target.python_arch {
        return Err(WheelError::WrongArchitecture {
            path: path.to_owned(),
            found,
            target: target.triple,
            expected: target.python_arch.to_owned(),
        });
    }
    Ok(BinaryPlatform::Windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(triple: &str) -> &'static Target {
        triple.parse().unwrap()
    }

    /// Variants of one `e_machine` are other architectures: a binary of each is refused for
    /// the target whose machine number it shares.
    #[test]
    fn class_and_byte_order_tell_look_alike_machines_apart() {
        use castoff_test_support::binaries::elf_header;
        for (triple, machine, elf64, big_endian, found) in [
            (
                "x86_64-unknown-linux-gnu",
                elf::EM_X86_64,
                false,
                false,
                "x32",
            ),
            ("s390x-unknown-linux-gnu", elf::EM_S390, false, true, "s390"),
            (
                "riscv64gc-unknown-linux-gnu",
                elf::EM_RISCV,
                false,
                false,
                "riscv32",
            ),
            (
                "powerpc64le-unknown-linux-gnu",
                elf::EM_PPC64,
                true,
                true,
                "ppc64",
            ),
        ] {
            let data = elf_header(machine, elf64, big_endian);
            match inspect_binary(&data[..], Path::new("bin"), target(triple)) {
                Err(WheelError::WrongArchitecture { found: got, .. }) => {
                    assert_eq!(got, found, "{triple}");
                }
                other => panic!("{triple}: {found} accepted or refused otherwise: {other:?}"),
            }
        }
    }

    #[test]
    fn tags_combine_to_the_most_demanding_binary() {
        let linux = target("x86_64-unknown-linux-gnu");
        let check = |platforms: &[BinaryPlatform], target: &Target, expect: &[&str]| {
            assert_eq!(
                platform_tags(platforms, target, StaticLinuxTags::BothLibcs),
                expect,
                "{platforms:?}"
            );
        };
        check(
            &[BinaryPlatform::Manylinux { glibc_minor: 34 }],
            linux,
            &["manylinux_2_34_x86_64"],
        );
        check(
            &[
                BinaryPlatform::Manylinux { glibc_minor: 17 },
                BinaryPlatform::StaticLinux,
            ],
            linux,
            &["manylinux2014_x86_64", "manylinux_2_17_x86_64"],
        );
        check(
            &[BinaryPlatform::Manylinux { glibc_minor: 5 }],
            linux,
            &["manylinux1_x86_64", "manylinux_2_5_x86_64"],
        );
        check(
            &[BinaryPlatform::Manylinux { glibc_minor: 12 }],
            linux,
            &["manylinux2010_x86_64", "manylinux_2_12_x86_64"],
        );
        check(
            &[BinaryPlatform::StaticLinux, BinaryPlatform::StaticLinux],
            target("aarch64-unknown-linux-musl"),
            &[
                "manylinux2014_aarch64",
                "manylinux_2_17_aarch64",
                "musllinux_1_1_aarch64",
            ],
        );
        check(
            &[BinaryPlatform::Musllinux { musl_minor: 2 }],
            target("x86_64-unknown-linux-musl"),
            &["musllinux_1_2_x86_64"],
        );
        // No manylinux platform of riscv64 predates glibc 2.31.
        check(
            &[BinaryPlatform::StaticLinux],
            target("riscv64gc-unknown-linux-musl"),
            &["manylinux_2_31_riscv64", "musllinux_1_1_riscv64"],
        );
        let mac = |major, minor, universal2| BinaryPlatform::Macos {
            major,
            minor,
            universal2,
        };
        check(
            &[mac(10, 12, false)],
            target("x86_64-apple-darwin"),
            &["macosx_10_12_x86_64"],
        );
        check(
            &[mac(11, 3, false), mac(10, 12, false)],
            target("aarch64-apple-darwin"),
            &["macosx_11_0_arm64"],
        );
        check(
            &[mac(10, 12, true)],
            target("aarch64-apple-darwin"),
            &["macosx_10_12_universal2"],
        );
        check(
            &[mac(14, 2, true), mac(10, 12, false)],
            target("x86_64-apple-darwin"),
            &["macosx_14_0_x86_64"],
        );
        check(
            &[BinaryPlatform::Windows],
            target("aarch64-pc-windows-msvc"),
            &["win_arm64"],
        );
        check(
            &[BinaryPlatform::Windows],
            target("i686-pc-windows-msvc"),
            &["win32"],
        );
    }

    /// Next to a wheel of the other C library, a static build's wheel keeps only its own
    /// target's tags; dynamic builds have only one C library anyway.
    #[test]
    fn static_wheels_beside_the_other_libc_keep_their_own_tags() {
        let own = |platforms: &[BinaryPlatform], triple: &str| {
            platform_tags(platforms, target(triple), StaticLinuxTags::OwnLibc)
        };
        let static_build = [BinaryPlatform::StaticLinux];
        assert_eq!(
            own(&static_build, "x86_64-unknown-linux-musl"),
            ["musllinux_1_1_x86_64"]
        );
        assert_eq!(
            own(&static_build, "aarch64-unknown-linux-gnu"),
            ["manylinux2014_aarch64", "manylinux_2_17_aarch64"]
        );
        assert_eq!(
            own(&static_build, "riscv64gc-unknown-linux-gnu"),
            ["manylinux_2_31_riscv64"]
        );
        assert_eq!(
            own(
                &[BinaryPlatform::Manylinux { glibc_minor: 5 }],
                "x86_64-unknown-linux-gnu"
            ),
            ["manylinux1_x86_64", "manylinux_2_5_x86_64"]
        );
        assert_eq!(
            own(
                &[BinaryPlatform::Musllinux { musl_minor: 2 }],
                "s390x-unknown-linux-musl"
            ),
            ["musllinux_1_2_s390x"]
        );
    }

    #[test]
    fn static_manylinux_tags_start_at_rust_s_floor_or_the_first_policy() {
        let minors: Vec<(&str, u32)> = [
            "x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64",
        ]
        .into_iter()
        .map(|arch| (arch, static_manylinux_minor(arch)))
        .collect();
        assert_eq!(
            minors,
            [
                ("x86_64", 17),
                ("i686", 17),
                ("aarch64", 17),
                ("armv7l", 17),
                ("ppc64le", 17),
                ("s390x", 17),
                ("riscv64", 31)
            ]
        );
    }

    /// PyPI's `_valid_platform_tag` (warehouse `forklift/legacy.py`) for the tag forms castoff
    /// can produce.
    fn pypi_accepts(tag: &str) -> bool {
        const LINUX_ARCHES: &[&str] = &[
            "x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64", "ppc64",
        ];
        const MAC_ARCHES: &[&str] = &["x86_64", "arm64", "universal2"];
        let numbered = |rest: &str, arches: &[&str]| {
            let mut parts = rest.splitn(3, '_');
            let (Some(x), Some(y), Some(arch)) = (parts.next(), parts.next(), parts.next()) else {
                return None;
            };
            let numeric = |s: &str| s.parse::<u32>().ok();
            Some((numeric(x)?, numeric(y)?)).filter(|_| arches.contains(&arch))
        };
        if ["win32", "win_amd64", "win_arm64"].contains(&tag) {
            return true;
        }
        if let Some(arch) = tag.strip_prefix("manylinux2014_") {
            return [
                "x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x",
            ]
            .contains(&arch);
        }
        if let Some(arch) = tag
            .strip_prefix("manylinux2010_")
            .or(tag.strip_prefix("manylinux1_"))
        {
            return ["x86_64", "i686"].contains(&arch);
        }
        if let Some(rest) = tag.strip_prefix("manylinux_") {
            return numbered(rest, LINUX_ARCHES).is_some();
        }
        if let Some(rest) = tag.strip_prefix("musllinux_") {
            return numbered(rest, &LINUX_ARCHES[..7]).is_some();
        }
        if let Some(rest) = tag.strip_prefix("macosx_") {
            return match numbered(rest, MAC_ARCHES) {
                Some((10, _)) => true,
                Some((major, minor)) => minor == 0 && [11, 12, 13, 14, 15, 26].contains(&major),
                None => false,
            };
        }
        false
    }

    #[test]
    fn every_tag_castoff_produces_is_one_pypi_accepts() {
        let needs = [
            BinaryPlatform::StaticLinux,
            BinaryPlatform::Manylinux { glibc_minor: 5 },
            BinaryPlatform::Manylinux { glibc_minor: 17 },
            BinaryPlatform::Manylinux { glibc_minor: 34 },
            BinaryPlatform::Musllinux { musl_minor: 2 },
            BinaryPlatform::Macos {
                major: 10,
                minor: 12,
                universal2: false,
            },
            BinaryPlatform::Macos {
                major: 15,
                minor: 4,
                universal2: true,
            },
            BinaryPlatform::Windows,
        ];
        for target in Target::all() {
            let fits = |need: &BinaryPlatform| match need {
                BinaryPlatform::StaticLinux
                | BinaryPlatform::Manylinux { .. }
                | BinaryPlatform::Musllinux { .. } => target.os == Os::Linux,
                BinaryPlatform::Macos { .. } => target.os == Os::MacOs,
                BinaryPlatform::Windows => target.os == Os::Windows,
            };
            for need in needs.into_iter().filter(fits) {
                let tags = [StaticLinuxTags::BothLibcs, StaticLinuxTags::OwnLibc]
                    .into_iter()
                    .flat_map(|static_tags| platform_tags(&[need], target, static_tags));
                for tag in tags {
                    assert!(!tag.starts_with("linux_"), "{tag}");
                    // The manylinux_2_5 / 2_12 rows exist only for x86; PyPI's legacy names
                    // are checked above, the PEP 600 names accept any architecture castoff has.
                    assert!(pypi_accepts(&tag), "{} {need:?}: {tag}", target.triple);
                }
            }
        }
    }

    #[test]
    fn manylinux_minor_follows_auditwheel_policies() {
        let path = Path::new("bin");
        let check =
            |triple: &str, needed: &[&str], versions: &[&str], expect: Result<u32, &str>| {
                let versions: Vec<(String, String)> = versions
                    .iter()
                    .map(|v| ("libc.so.6".to_owned(), (*v).to_owned()))
                    .collect();
                let got = manylinux_minor(needed, &versions, path, target(triple));
                match (got, expect) {
                    (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{versions:?}"),
                    (Err(error), Err(expected)) => {
                        assert!(error.to_string().contains(expected), "{error}")
                    }
                    (got, expect) => panic!("{versions:?}: got {got:?}, expected {expect:?}"),
                }
            };
        let x86 = "x86_64-unknown-linux-gnu";
        check(x86, &[], &["GLIBC_2.2.5"], Ok(5));
        check(x86, &[], &["GLIBC_2.2.5", "GLIBC_2.17"], Ok(17));
        // No policy for 2.18 on x86_64: the next one up, as auditwheel decides.
        check(x86, &[], &["GLIBC_2.18"], Ok(24));
        check(x86, &[], &["GLIBC_2.29"], Ok(31));
        check(x86, &[], &["GLIBC_2.34", "GCC_4.2.0", "GCC_3.0"], Ok(34));
        check(x86, &[], &["GLIBC_2.17", "GLIBCXX_3.4.30"], Ok(35));
        check(x86, &["libmvec.so.1"], &["GLIBC_2.17"], Ok(24));
        // Past the newest policy the tag follows glibc.
        check(x86, &[], &["GLIBC_2.45"], Ok(45));
        check(
            x86,
            &[],
            &["GLIBC_2.17", "GLIBCXX_3.4.99"],
            Err("GLIBCXX_3.4.99"),
        );
        check(x86, &[], &["GLIBC_PRIVATE"], Err("`GLIBC_PRIVATE`"));
        // aarch64's first policy allows GLIBC_2.18 already.
        check("aarch64-unknown-linux-gnu", &[], &["GLIBC_2.18"], Ok(17));
        check(
            "aarch64-unknown-linux-gnu",
            &[],
            &["GLIBC_2.17", "GCC_11.0"],
            Ok(34),
        );
    }
}
