//! The one reader of ELF headers, shared by the builders: what a Linux binary is for (machine,
//! byte order, file type, entry point) and what it needs from the system that runs it (the
//! program interpreter, shared libraries, symbol versions, the PIE flag). castoff-wheel turns
//! these facts into manylinux / musllinux tags, castoff-oci checks an image's architecture and
//! that a binary on `scratch` needs no loader.
//!
//! Only the headers and the tables they point at are read, through [`ReadRef`]: hand it a
//! [`object::ReadCache`] over a file, and a large binary is never read whole. Mach-O and PE
//! headers only matter to wheels and stay in castoff-wheel.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _, SectionHeader as _};
use object::{Endian as _, Endianness, FileKind, ReadRef};

/// An ELF file whose file header has been read; the rest is read on demand.
#[derive(Debug, Clone, Copy)]
pub struct ElfFile<'data, R: ReadRef<'data>> {
    data: R,
    endian: Endianness,
    header: Header<'data>,
}

#[derive(Debug, Clone, Copy)]
enum Header<'data> {
    Elf32(&'data FileHeader32<Endianness>),
    Elf64(&'data FileHeader64<Endianness>),
}

/// The `PT_INTERP` segment of an executable: the dynamic loader it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreter {
    /// The loader's path (`/lib64/ld-linux-x86-64.so.2`).
    Path(String),
    /// A `PT_INTERP` whose bytes cannot be read (outside the file, not NUL-terminated): the
    /// binary asks for a loader, but which one is unknown.
    Unreadable(object::Error),
}

/// The dynamic-linking facts of an ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfLinking {
    /// The program interpreter's path, if it asks for one.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`: the shared libraries, in order.
    pub needed: Vec<String>,
    /// (library, version name) from `.gnu.version_r`, e.g. (`libc.so.6`, `GLIBC_2.34`).
    pub versions: Vec<(String, String)>,
    /// `DF_1_PIE` is set: a position-independent executable, not a shared library.
    pub pie: bool,
}

impl<'data, R: ReadRef<'data>> ElfFile<'data, R> {
    /// Reads the file header. `Ok(None)` when `data` is not ELF at all; an error when it is
    /// ELF but its header is malformed.
    pub fn parse(data: R) -> object::Result<Option<ElfFile<'data, R>>> {
        let (header, endian) = match FileKind::parse(data) {
            Ok(FileKind::Elf32) => {
                let header = FileHeader32::<Endianness>::parse(data)?;
                (Header::Elf32(header), header.endian()?)
            }
            Ok(FileKind::Elf64) => {
                let header = FileHeader64::<Endianness>::parse(data)?;
                (Header::Elf64(header), header.endian()?)
            }
            _ => return Ok(None),
        };
        Ok(Some(ElfFile {
            data,
            endian,
            header,
        }))
    }

    /// `e_machine` (`EM_X86_64`, `EM_AARCH64`, …).
    pub fn machine(&self) -> u16 {
        match self.header {
            Header::Elf32(header) => header.e_machine(self.endian),
            Header::Elf64(header) => header.e_machine(self.endian),
        }
    }

    pub fn is_big_endian(&self) -> bool {
        self.endian.is_big_endian()
    }

    /// `EI_CLASS` is `ELFCLASS64`.
    pub fn is_64(&self) -> bool {
        matches!(self.header, Header::Elf64(_))
    }

    /// Machine, class and byte order.
    pub fn kind(&self) -> ElfKind {
        ElfKind {
            machine: self.machine(),
            elf64: self.is_64(),
            big_endian: self.is_big_endian(),
        }
    }

    /// `e_type` (`ET_EXEC`, `ET_DYN`, …).
    pub fn file_type(&self) -> u16 {
        match self.header {
            Header::Elf32(header) => header.e_type(self.endian),
            Header::Elf64(header) => header.e_type(self.endian),
        }
    }

    /// `e_entry`: 0 for a file that cannot be run.
    pub fn entry(&self) -> u64 {
        match self.header {
            Header::Elf32(header) => header.e_entry(self.endian).into(),
            Header::Elf64(header) => header.e_entry(self.endian),
        }
    }

    /// The program interpreter the program headers ask for (the last `PT_INTERP`; the first
    /// unreadable one decides). An error when the program header table cannot be read.
    pub fn interpreter(&self) -> object::Result<Option<Interpreter>> {
        match self.header {
            Header::Elf32(header) => interpreter(header, self.endian, self.data),
            Header::Elf64(header) => interpreter(header, self.endian, self.data),
        }
    }

    /// The program interpreter, the shared libraries and symbol versions the dynamic section
    /// names, and the PIE flag. An error when any of those tables is malformed.
    pub fn linking(&self) -> object::Result<ElfLinking> {
        let interpreter = match self.interpreter()? {
            None => None,
            Some(Interpreter::Path(path)) => Some(path),
            Some(Interpreter::Unreadable(error)) => return Err(error),
        };
        let mut linking = match self.header {
            Header::Elf32(header) => dynamic_tables(header, self.endian, self.data)?,
            Header::Elf64(header) => dynamic_tables(header, self.endian, self.data)?,
        };
        linking.interpreter = interpreter;
        Ok(linking)
    }
}

fn interpreter<'data, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    header: &Elf,
    endian: Endianness,
    data: R,
) -> object::Result<Option<Interpreter>> {
    let mut found = None;
    for segment in header.program_headers(endian, data)? {
        match segment.interpreter(endian, data) {
            Ok(None) => {}
            Ok(Some(path)) => {
                found = Some(Interpreter::Path(
                    String::from_utf8_lossy(path).into_owned(),
                ));
            }
            Err(error) => return Ok(Some(Interpreter::Unreadable(error))),
        }
    }
    Ok(found)
}

/// `DT_NEEDED`, `DF_1_PIE` and `.gnu.version_r` (the interpreter is left to the caller).
fn dynamic_tables<'data, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    header: &Elf,
    endian: Endianness,
    data: R,
) -> object::Result<ElfLinking> {
    let mut linking = ElfLinking::default();
    let sections = header.sections(endian, data)?;
    if let Some((entries, strings_index)) = sections.dynamic(endian, data)? {
        // Read into memory (a few KiB) so the table does not depend on how `data` is read.
        let strings = sections.section(strings_index)?.data(endian, data)?;
        let strings = object::StringTable::new(strings, 0, strings.len() as u64);
        for entry in entries {
            match entry.tag32(endian) {
                Some(elf::DT_NEEDED) => {
                    let name = entry.string(endian, strings)?;
                    linking
                        .needed
                        .push(String::from_utf8_lossy(name).into_owned());
                }
                Some(elf::DT_FLAGS_1) => {
                    linking.pie |= entry.val32(endian).unwrap_or(0) & elf::DF_1_PIE != 0;
                }
                _ => {}
            }
        }
    }
    if let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, data)? {
        // Read into memory (a few KiB) so the table does not depend on how `data` is read.
        let strings = sections.section(strings_index)?.data(endian, data)?;
        let strings = object::StringTable::new(strings, 0, strings.len() as u64);
        while let Some((need, mut auxiliaries)) = needs.next()? {
            let library = String::from_utf8_lossy(need.file(endian, strings)?).into_owned();
            while let Some(auxiliary) = auxiliaries.next()? {
                let version = String::from_utf8_lossy(auxiliary.name(endian, strings)?);
                linking
                    .versions
                    .push((library.clone(), version.into_owned()));
            }
        }
    }
    Ok(linking)
}

/// What an executable is built for, as far as the kernel's loader cares: the ELF machine, the
/// class (32- or 64-bit) and the byte order. The machine alone does not tell `ppc64le` from
/// big-endian `ppc64`, `s390x` from 31-bit `s390`, riscv64 from riscv32 or x86-64 from x32:
/// each pair shares its `e_machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfKind {
    /// `e_machine` (`EM_X86_64`, `EM_AARCH64`, …).
    pub machine: u16,
    /// `EI_CLASS` is `ELFCLASS64`.
    pub elf64: bool,
    /// `EI_DATA` is `ELFDATA2MSB`.
    pub big_endian: bool,
}

impl ElfKind {
    /// The executables that run in images of an OCI architecture (`amd64`: 64-bit
    /// little-endian x86-64). `None` for an architecture castoff has no image platform for.
    pub fn of_oci_architecture(architecture: &str) -> Option<ElfKind> {
        let (machine, elf64, big_endian) = match architecture {
            "amd64" => (elf::EM_X86_64, true, false),
            "arm64" => (elf::EM_AARCH64, true, false),
            "arm" => (elf::EM_ARM, false, false),
            "386" => (elf::EM_386, false, false),
            "ppc64le" => (elf::EM_PPC64, true, false),
            "s390x" => (elf::EM_S390, true, true),
            "riscv64" => (elf::EM_RISCV, true, false),
            _ => return None,
        };
        Some(ElfKind {
            machine,
            elf64,
            big_endian,
        })
    }

    /// For messages: `ppc64 (64-bit, big-endian)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}-bit, {}-endian)",
            machine_name(self.machine),
            if self.elf64 { 64 } else { 32 },
            if self.big_endian { "big" } else { "little" }
        )
    }
}

/// A readable name of an ELF machine (for error messages).
pub fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_X86_64 => "x86-64".to_owned(),
        elf::EM_AARCH64 => "aarch64".to_owned(),
        elf::EM_ARM => "arm".to_owned(),
        elf::EM_386 => "i386".to_owned(),
        elf::EM_PPC64 => "ppc64".to_owned(),
        elf::EM_S390 => "s390".to_owned(),
        elf::EM_RISCV => "riscv".to_owned(),
        other => format!("#{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_none() {
        for data in [&b""[..], b"MZ\x90\x00", b"\x7fELX", b"#!/bin/sh\n"] {
            assert!(ElfFile::parse(data).unwrap().is_none(), "{data:?}");
        }
        // The identification of a 64-bit ELF file, then nothing: ELF, but malformed.
        let mut truncated = b"\x7fELF\x02\x01\x01\x00".to_vec();
        truncated.resize(20, 0);
        assert!(ElfFile::parse(truncated.as_slice()).is_err());
    }

    /// The test binary itself: an executable for this machine, dynamically linked on the
    /// usual Linux hosts.
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    #[test]
    fn reads_the_running_test_binary() {
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let cache = object::ReadCache::new(file);
        let elf = ElfFile::parse(&cache).unwrap().expect("an ELF file");
        assert_eq!(elf.machine(), elf::EM_X86_64);
        assert!(!elf.is_big_endian());
        assert_ne!(elf.entry(), 0);
        let linking = elf.linking().unwrap();
        if let Some(Interpreter::Path(path)) = elf.interpreter().unwrap() {
            assert_eq!(linking.interpreter.as_deref(), Some(path.as_str()));
            assert!(path.contains("ld-linux"), "{path}");
            assert!(linking.needed.iter().any(|library| library == "libc.so.6"));
            assert!(
                linking
                    .versions
                    .iter()
                    .any(|(_, version)| version.starts_with("GLIBC_2."))
            );
        }
    }

    #[test]
    fn oci_architectures_and_machine_names() {
        let describe =
            |architecture| ElfKind::of_oci_architecture(architecture).map(|kind| kind.describe());
        let described: Vec<(&str, Option<String>)> = [
            "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le",
        ]
        .into_iter()
        .map(|architecture| (architecture, describe(architecture)))
        .collect();
        let expected = [
            ("amd64", Some("x86-64 (64-bit, little-endian)")),
            ("arm64", Some("aarch64 (64-bit, little-endian)")),
            ("arm", Some("arm (32-bit, little-endian)")),
            ("386", Some("i386 (32-bit, little-endian)")),
            ("ppc64le", Some("ppc64 (64-bit, little-endian)")),
            ("s390x", Some("s390 (64-bit, big-endian)")),
            ("riscv64", Some("riscv (64-bit, little-endian)")),
            ("mips64le", None),
        ]
        .map(|(architecture, text)| (architecture, text.map(str::to_owned)));
        assert_eq!(described, expected);
        assert_eq!(machine_name(0xbeef), "#48879");
    }

    #[test]
    fn kind_reads_class_and_byte_order() {
        // The file header alone: identification, then e_type, e_machine, e_version in the
        // file's byte order, zeros after (no program headers).
        let header = |elf64: bool, big_endian: bool, machine: u16| {
            let mut bytes = vec![
                0x7f,
                b'E',
                b'L',
                b'F',
                1 + u8::from(elf64),
                1 + u8::from(big_endian),
                1,
                0,
            ];
            bytes.resize(16, 0);
            let (e_type, e_machine) = if big_endian {
                (2u16.to_be_bytes(), machine.to_be_bytes())
            } else {
                (2u16.to_le_bytes(), machine.to_le_bytes())
            };
            bytes.extend_from_slice(&e_type);
            bytes.extend_from_slice(&e_machine);
            bytes.extend_from_slice(&if big_endian {
                1u32.to_be_bytes()
            } else {
                1u32.to_le_bytes()
            });
            bytes.resize(if elf64 { 64 } else { 52 }, 0);
            bytes
        };
        for (elf64, big_endian, machine) in [
            (true, true, elf::EM_PPC64),
            (true, false, elf::EM_PPC64),
            (false, true, elf::EM_S390),
            (false, false, elf::EM_RISCV),
        ] {
            let data = header(elf64, big_endian, machine);
            let file = ElfFile::parse(data.as_slice()).unwrap().unwrap();
            assert_eq!(
                file.kind(),
                ElfKind {
                    machine,
                    elf64,
                    big_endian
                }
            );
        }
    }
}
