//! Shared by castoff-wheel's integration tests: fixture binaries and wheels built with
//! cargo, synthesized ELF / Mach-O / PE files, and a ZIP reader that checks PyPI's rules.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use castoff_plan::{AppId, Release, Target};
use castoff_test_support::workspace::{fixture_dir, fixture_release, repository_root};
use castoff_wheel::{BuiltWheel, WheelInput, build_wheel};

/// SOURCE_DATE_EPOCH of every test wheel: 2024-02-29T13:37:59Z.
pub const EPOCH: u64 = 1_709_213_879;

/// The workspace's target directory (fixture builds share it, one sub-directory per variant).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::path::absolute(PathBuf::from(dir)).unwrap(),
        _ => repository_root().join("target"),
    }
}

pub fn app_id(release: &Release, package: &str) -> AppId {
    AppId(
        release
            .apps
            .iter()
            .position(|app| app.package.name == package)
            .unwrap_or_else(|| panic!("no app {package}")),
    )
}

pub fn target(triple: &str) -> &'static Target {
    triple.parse().unwrap()
}

pub fn input<'a>(
    release: &'a Release,
    package: &str,
    triple: &str,
    binaries: &[(&str, &Path)],
) -> WheelInput<'a> {
    let app = &release.apps[app_id(release, package).0];
    WheelInput {
        workspace_root: &release.workspace_root,
        app,
        python: app.python.as_ref().expect("an app with a Python channel"),
        target: target(triple),
        binaries: binaries
            .iter()
            .map(|(name, path)| ((*name).to_owned(), path.to_path_buf()))
            .collect(),
        source_date_epoch: EPOCH,
        sboms: Vec::new(),
        deflate: castoff_test_support::deflate_cache(),
    }
}

/// How the `greeter` fixture binary is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The host build, dynamically linked against glibc.
    Dynamic,
    /// `-C target-feature=+crt-static`: a static-pie without program interpreter.
    Static,
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds the `single-cli` fixture for x86_64-unknown-linux-gnu (the machine CI runs on) into
/// `target/fixtures/<variant>`, and returns the binary. Cargo's own lock on that directory
/// serializes parallel test binaries; the mutex only keeps this one from spawning twice.
pub fn greeter_binary(variant: Variant) -> PathBuf {
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (name, rustflags) = match variant {
        Variant::Dynamic => ("dynamic", ""),
        Variant::Static => ("static", "-C\u{1f}target-feature=+crt-static"),
    };
    let target_dir = target_dir().join("fixtures").join(name);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--manifest-path")
        .arg(fixture_dir("single-cli").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer `cargo test` may carry flags for this workspace; the fixture gets only
        // its own.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the greeter fixture ({name}) failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = target_dir.join("x86_64-unknown-linux-gnu/release/greeter");
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}

/// The wheel of the `single-cli` fixture's `greeter` for x86_64 Linux, built from the
/// fixture binary of `variant` into `out_dir`; a warning fails the test.
pub fn greeter_wheel(variant: Variant, out_dir: &Path) -> BuiltWheel {
    let binary = greeter_binary(variant);
    let release = fixture_release("single-cli");
    let wheel = build_wheel(
        &input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        ),
        out_dir,
    )
    .unwrap();
    assert!(wheel.warnings.is_empty(), "{:?}", wheel.warnings);
    wheel
}

/// A fresh scratch directory for one test, removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("castoff-wheel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` inside the scratch directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// A ZIP reader that enforces what PyPI enforces (warehouse `utils/zipfiles.py`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    /// Unix mode from the external attributes (`0o100755`).
    pub mode: u32,
    pub contents: Vec<u8>,
    pub dos_date: u16,
    pub dos_time: u16,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Reads every entry through the central directory, checking on the way: deflate only, no
/// data descriptors, no extra fields, no comments, no duplicate names, local and central
/// headers agree, entries are contiguous and nothing follows the end record.
pub fn read_zip(bytes: &[u8]) -> Vec<ZipEntry> {
    let end = bytes.len() - 22;
    assert_eq!(
        u32_at(bytes, end),
        0x0605_4b50,
        "end record at the very end (no trailing data, no comment)"
    );
    assert_eq!(u16_at(bytes, end + 20), 0, "no archive comment");
    let count = u16_at(bytes, end + 10) as usize;
    assert_eq!(u16_at(bytes, end + 8) as usize, count);
    let directory_size = u32_at(bytes, end + 12) as usize;
    let mut at = u32_at(bytes, end + 16) as usize;
    assert_eq!(
        at + directory_size,
        end,
        "central directory right before the end record"
    );
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut expected_local = 0;
    for _ in 0..count {
        assert_eq!(u32_at(bytes, at), 0x0201_4b50, "central directory header");
        let made_by = u16_at(bytes, at + 4);
        let flags = u16_at(bytes, at + 8);
        let method = u16_at(bytes, at + 10);
        let dos_time = u16_at(bytes, at + 12);
        let dos_date = u16_at(bytes, at + 14);
        let crc = u32_at(bytes, at + 16);
        let compressed = u32_at(bytes, at + 20) as usize;
        let size = u32_at(bytes, at + 24) as usize;
        let name_length = u16_at(bytes, at + 28) as usize;
        let extra_length = u16_at(bytes, at + 30);
        let comment_length = u16_at(bytes, at + 32);
        let external = u32_at(bytes, at + 38);
        let local = u32_at(bytes, at + 42) as usize;
        let name = String::from_utf8(bytes[at + 46..at + 46 + name_length].to_vec()).unwrap();
        assert_eq!(made_by >> 8, 3, "{name}: made by Unix");
        assert_eq!(flags & 0x8, 0, "{name}: no data descriptor");
        assert_eq!(method, 8, "{name}: deflate");
        assert_eq!(extra_length, 0, "{name}: no extra fields");
        assert_eq!(comment_length, 0, "{name}: no file comment");
        assert!(names.insert(name.clone()), "{name}: duplicate");
        assert_eq!(local, expected_local, "{name}: entries are contiguous");
        // The local header repeats everything.
        assert_eq!(u32_at(bytes, local), 0x0403_4b50, "{name}: local header");
        assert_eq!(u16_at(bytes, local + 6), flags, "{name}: local flags");
        assert_eq!(u16_at(bytes, local + 8), method, "{name}: local method");
        assert_eq!(u32_at(bytes, local + 14), crc, "{name}: local crc");
        assert_eq!(
            u32_at(bytes, local + 18) as usize,
            compressed,
            "{name}: local compressed size"
        );
        assert_eq!(
            u32_at(bytes, local + 22) as usize,
            size,
            "{name}: local size"
        );
        assert_eq!(
            u16_at(bytes, local + 26) as usize,
            name_length,
            "{name}: local name"
        );
        assert_eq!(
            u16_at(bytes, local + 28),
            0,
            "{name}: no local extra fields"
        );
        let data_start = local + 30 + name_length;
        let mut contents = Vec::new();
        flate2::read::DeflateDecoder::new(&bytes[data_start..data_start + compressed])
            .read_to_end(&mut contents)
            .unwrap();
        assert_eq!(contents.len(), size, "{name}: size");
        let mut check = flate2::Crc::new();
        check.update(&contents);
        assert_eq!(check.sum(), crc, "{name}: crc");
        expected_local = data_start + compressed;
        entries.push(ZipEntry {
            name,
            mode: external >> 16,
            contents,
            dos_date,
            dos_time,
        });
        at += 46 + name_length;
    }
    assert_eq!(
        expected_local,
        u32_at(bytes, end + 16) as usize,
        "no gap before the central directory"
    );
    entries
}

// ---------------------------------------------------------------------------------------------
// Synthesized executables for platforms that cannot be built here.

/// What a synthesized ELF executable holds.
#[derive(Debug, Clone)]
pub struct Elf<'a> {
    /// `EM_*` machine.
    pub machine: u16,
    pub class64: bool,
    /// `ET_EXEC` (2) or `ET_DYN` (3).
    pub kind: u16,
    pub entry: u64,
    pub interpreter: Option<&'a str>,
    pub needed: &'a [&'a str],
    /// (library, versions) for `.gnu.version_r`.
    pub versions: &'a [(&'a str, &'a [&'a str])],
    pub pie: bool,
    pub debug_info: bool,
}

impl Default for Elf<'_> {
    fn default() -> Self {
        Elf {
            machine: 62, // EM_X86_64
            class64: true,
            kind: 3,
            entry: 0x1000,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2"),
            needed: &["libgcc_s.so.1", "libc.so.6", "ld-linux-x86-64.so.2"],
            versions: &[
                ("libgcc_s.so.1", &["GCC_3.0", "GCC_4.2.0"]),
                ("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.28"]),
            ],
            pie: true,
            debug_info: false,
        }
    }
}

struct Section {
    name: &'static str,
    kind: u32,
    data: Vec<u8>,
    link: u32,
    info: u32,
    entry_size: u64,
}

impl Elf<'_> {
    /// A little-endian ELF file with program headers (`PT_INTERP`) and sections
    /// (`.interp`, `.dynstr`, `.dynamic`, `.gnu.version_r`, `.debug_info`, `.shstrtab`).
    pub fn build(&self) -> Vec<u8> {
        let wide = self.class64;
        let word = |out: &mut Vec<u8>, value: u64| {
            if wide {
                out.extend_from_slice(&value.to_le_bytes());
            } else {
                out.extend_from_slice(&(value as u32).to_le_bytes());
            }
        };
        let mut dynstr = vec![0u8];
        let mut string = |text: &str| -> u32 {
            let offset = dynstr.len() as u32;
            dynstr.extend_from_slice(text.as_bytes());
            dynstr.push(0);
            offset
        };
        let needed: Vec<u32> = self.needed.iter().map(|name| string(name)).collect();
        let mut verneed = Vec::new();
        for (index, (library, versions)) in self.versions.iter().enumerate() {
            let file = string(library);
            let last = index + 1 == self.versions.len();
            verneed.extend_from_slice(&1u16.to_le_bytes()); // vn_version
            verneed.extend_from_slice(&(versions.len() as u16).to_le_bytes());
            verneed.extend_from_slice(&file.to_le_bytes());
            verneed.extend_from_slice(&16u32.to_le_bytes()); // vn_aux
            let next = if last {
                0
            } else {
                16 + 16 * versions.len() as u32
            };
            verneed.extend_from_slice(&next.to_le_bytes());
            for (aux, version) in versions.iter().enumerate() {
                let name = string(version);
                verneed.extend_from_slice(&0u32.to_le_bytes()); // hash (unchecked)
                verneed.extend_from_slice(&0u16.to_le_bytes()); // flags
                verneed.extend_from_slice(&(2 + aux as u16).to_le_bytes()); // other
                verneed.extend_from_slice(&name.to_le_bytes());
                let next = if aux + 1 == versions.len() { 0u32 } else { 16 };
                verneed.extend_from_slice(&next.to_le_bytes());
            }
        }
        let mut dynamic = Vec::new();
        for offset in &needed {
            word(&mut dynamic, 1); // DT_NEEDED
            word(&mut dynamic, u64::from(*offset));
        }
        if self.pie {
            word(&mut dynamic, 0x6fff_fffb); // DT_FLAGS_1
            word(&mut dynamic, 0x0800_0000); // DF_1_PIE
        }
        word(&mut dynamic, 0); // DT_NULL
        word(&mut dynamic, 0);

        // Section 1 is always .dynstr so `link` can point at it.
        let mut sections = vec![Section {
            name: ".dynstr",
            kind: 3,
            data: dynstr,
            link: 0,
            info: 0,
            entry_size: 0,
        }];
        if let Some(interpreter) = self.interpreter {
            let mut data = interpreter.as_bytes().to_vec();
            data.push(0);
            sections.push(Section {
                name: ".interp",
                kind: 1,
                data,
                link: 0,
                info: 0,
                entry_size: 0,
            });
        }
        if !self.needed.is_empty() || self.pie {
            sections.push(Section {
                name: ".dynamic",
                kind: 6,
                data: dynamic,
                link: 1,
                info: 0,
                entry_size: if wide { 16 } else { 8 },
            });
        }
        if !self.versions.is_empty() {
            sections.push(Section {
                name: ".gnu.version_r",
                kind: 0x6fff_fffe,
                data: verneed,
                link: 1,
                info: self.versions.len() as u32,
                entry_size: 0,
            });
        }
        if self.debug_info {
            sections.push(Section {
                name: ".debug_info",
                kind: 1,
                data: vec![0x2a; 64],
                link: 0,
                info: 0,
                entry_size: 0,
            });
        }
        let mut shstrtab = vec![0u8];
        let mut section_names = Vec::new();
        for section in &sections {
            section_names.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(section.name.as_bytes());
            shstrtab.push(0);
        }
        let shstrtab_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");
        sections.push(Section {
            name: ".shstrtab",
            kind: 3,
            data: shstrtab,
            link: 0,
            info: 0,
            entry_size: 0,
        });
        section_names.push(shstrtab_name);

        let header_size = if wide { 64 } else { 52 };
        let program_header_size = if wide { 56 } else { 32 };
        let section_header_size = if wide { 64 } else { 40 };
        let program_headers = usize::from(self.interpreter.is_some());
        let mut offset = header_size + program_header_size * program_headers;
        let mut offsets = Vec::new();
        for section in &sections {
            offset = offset.next_multiple_of(8);
            offsets.push(offset);
            offset += section.data.len();
        }
        let section_headers_at = offset.next_multiple_of(8);

        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF");
        out.push(if wide { 2 } else { 1 });
        out.push(1); // little endian
        out.push(1); // version
        out.extend_from_slice(&[0; 9]);
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        word(&mut out, self.entry);
        word(
            &mut out,
            if program_headers > 0 {
                header_size as u64
            } else {
                0
            },
        );
        word(&mut out, section_headers_at as u64);
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&(header_size as u16).to_le_bytes());
        out.extend_from_slice(&(program_header_size as u16).to_le_bytes());
        out.extend_from_slice(&(program_headers as u16).to_le_bytes());
        out.extend_from_slice(&(section_header_size as u16).to_le_bytes());
        out.extend_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(&(sections.len() as u16).to_le_bytes()); // .shstrtab index
        assert_eq!(out.len(), header_size);
        if let Some(index) = sections.iter().position(|s| s.name == ".interp") {
            let (at, size) = (offsets[index] as u64, sections[index].data.len() as u64);
            out.extend_from_slice(&3u32.to_le_bytes()); // PT_INTERP
            if wide {
                out.extend_from_slice(&4u32.to_le_bytes()); // flags
                for value in [at, at, at, size, size, 1] {
                    word(&mut out, value);
                }
            } else {
                for value in [at, at, at, size, size] {
                    word(&mut out, value);
                }
                out.extend_from_slice(&4u32.to_le_bytes());
                word(&mut out, 1);
            }
        }
        for (section, at) in sections.iter().zip(&offsets) {
            out.resize(*at, 0);
            out.extend_from_slice(&section.data);
        }
        out.resize(section_headers_at, 0);
        out.extend_from_slice(&vec![0; section_header_size]); // SHN_UNDEF
        for (index, section) in sections.iter().enumerate() {
            out.extend_from_slice(&section_names[index].to_le_bytes());
            out.extend_from_slice(&section.kind.to_le_bytes());
            word(&mut out, 0); // flags
            word(&mut out, offsets[index] as u64); // addr
            word(&mut out, offsets[index] as u64); // offset
            word(&mut out, section.data.len() as u64);
            out.extend_from_slice(&section.link.to_le_bytes());
            out.extend_from_slice(&section.info.to_le_bytes());
            word(&mut out, 8); // align
            word(&mut out, section.entry_size);
        }
        out
    }
}

pub const CPU_TYPE_X86_64: u32 = 0x0100_0007;
pub const CPU_TYPE_ARM64: u32 = 0x0100_000c;

/// How a synthesized Mach-O states its minimum macOS.
#[derive(Debug, Clone, Copy)]
pub enum MinimumOs {
    /// `LC_BUILD_VERSION` with a platform (1 = macOS, 2 = iOS) and `major.minor`.
    BuildVersion(u32, u32, u32),
    /// `LC_VERSION_MIN_MACOSX`
    VersionMinMacos(u32, u32),
    None,
}

/// A thin 64-bit little-endian Mach-O file with one version load command.
pub fn macho(cpu: u32, file_type: u32, minimum: MinimumOs) -> Vec<u8> {
    let encode = |major: u32, minor: u32| (major << 16) | (minor << 8);
    let mut commands = Vec::new();
    let mut count = 0u32;
    match minimum {
        MinimumOs::BuildVersion(platform, major, minor) => {
            count += 1;
            for value in [
                0x32,
                24,
                platform,
                encode(major, minor),
                encode(major, minor),
                0,
            ] {
                commands.extend_from_slice(&u32::to_le_bytes(value));
            }
        }
        MinimumOs::VersionMinMacos(major, minor) => {
            count += 1;
            for value in [0x24, 16, encode(major, minor), encode(major, minor)] {
                commands.extend_from_slice(&u32::to_le_bytes(value));
            }
        }
        MinimumOs::None => {}
    }
    let mut out = Vec::new();
    for value in [
        0xfeed_facf,
        cpu,
        0,
        file_type,
        count,
        commands.len() as u32,
        0,
        0,
    ] {
        out.extend_from_slice(&u32::to_le_bytes(value));
    }
    out.extend_from_slice(&commands);
    out
}

/// A universal (fat) binary of `slices`, each `(cpu type, thin Mach-O)`.
pub fn fat(slices: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xcafe_babeu32.to_be_bytes());
    out.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut offset = (8 + 20 * slices.len()).next_multiple_of(4096);
    let mut offsets = Vec::new();
    for (cpu, slice) in slices {
        offsets.push(offset);
        for value in [*cpu, 0, offset as u32, slice.len() as u32, 12] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        offset = (offset + slice.len()).next_multiple_of(4096);
    }
    for ((_, slice), at) in slices.iter().zip(offsets) {
        out.resize(at, 0);
        out.extend_from_slice(slice);
    }
    out
}

pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
pub const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;
pub const IMAGE_FILE_MACHINE_I386: u16 = 0x014c;

/// A minimal PE image: DOS header, `PE\0\0`, COFF header, an optional header (PE32+ for
/// 64-bit machines) with 16 empty data directories, and one empty `.text` section.
pub fn pe(machine: u16, dll: bool) -> Vec<u8> {
    let wide = machine != IMAGE_FILE_MACHINE_I386;
    let mut out = vec![0u8; 64];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&64u32.to_le_bytes());
    out.extend_from_slice(b"PE\0\0");
    let optional_size: u16 = if wide { 240 } else { 224 };
    let characteristics: u16 = 0x0002 | 0x0020 | if dll { 0x2000 } else { 0 };
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // sections
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp
    out.extend_from_slice(&0u32.to_le_bytes()); // symbol table
    out.extend_from_slice(&0u32.to_le_bytes()); // symbols
    out.extend_from_slice(&optional_size.to_le_bytes());
    out.extend_from_slice(&characteristics.to_le_bytes());
    let optional_start = out.len();
    out.extend_from_slice(&(if wide { 0x20bu16 } else { 0x10b }).to_le_bytes());
    out.resize(optional_start + optional_size as usize, 0);
    // SectionAlignment / FileAlignment / SizeOfImage / SizeOfHeaders / NumberOfRvaAndSizes.
    let put = |out: &mut Vec<u8>, at: usize, value: u32| {
        out[optional_start + at..optional_start + at + 4].copy_from_slice(&value.to_le_bytes())
    };
    put(&mut out, 32, 0x1000);
    put(&mut out, 36, 0x200);
    put(&mut out, 56, 0x1000);
    put(&mut out, 60, 0x200);
    put(&mut out, if wide { 108 } else { 92 }, 16);
    let mut section = [0u8; 40];
    section[..5].copy_from_slice(b".text");
    section[36..40].copy_from_slice(&0x6000_0020u32.to_le_bytes()); // code, execute, read
    out.extend_from_slice(&section);
    out.resize(0x200, 0);
    out
}
