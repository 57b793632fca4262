//! What the image builder needs to know about a Linux binary before putting it on an image:
//! its machine (so an arm64 binary never lands in an amd64 image) and whether it asks for a
//! dynamic loader (`PT_INTERP`), which a `scratch` image does not have.

use std::fs::File;
use std::path::Path;

use object::elf::{FileHeader32, FileHeader64, PT_INTERP};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind, ReadCache, ReadRef};

/// The facts of one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfFacts {
    /// `e_machine` (`EM_X86_64`, `EM_AARCH64`, …).
    pub(crate) machine: u16,
    /// The requested program interpreter (`/lib64/ld-linux-x86-64.so.2`), if any.
    pub(crate) interpreter: Option<String>,
}

/// Reads the ELF header and program headers of `path` (only those bytes, through a read
/// cache: binaries can be large). `Ok(None)` when the file is not ELF at all.
pub(crate) fn inspect(path: &Path) -> std::io::Result<Option<ElfFacts>> {
    let file = File::open(path)?;
    let cache = ReadCache::new(file);
    Ok(match FileKind::parse(&cache) {
        Ok(FileKind::Elf64) => facts::<FileHeader64<Endianness>, _>(&cache),
        Ok(FileKind::Elf32) => facts::<FileHeader32<Endianness>, _>(&cache),
        _ => None,
    })
}

fn facts<'data, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
) -> Option<ElfFacts> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let mut interpreter = None;
    for program_header in header.program_headers(endian, data).ok()? {
        if program_header.p_type(endian) == PT_INTERP {
            let bytes = program_header.interpreter(endian, data).ok().flatten();
            interpreter = Some(
                bytes
                    .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                    .unwrap_or_else(|| "(unreadable)".to_owned()),
            );
        }
    }
    Some(ElfFacts {
        machine: header.e_machine(endian),
        interpreter,
    })
}

/// The ELF machine that runs images of an OCI architecture, with a readable name.
pub(crate) fn machine_of_architecture(architecture: &str) -> Option<u16> {
    use object::elf::*;
    Some(match architecture {
        "amd64" => EM_X86_64,
        "arm64" => EM_AARCH64,
        "arm" => EM_ARM,
        "386" => EM_386,
        "ppc64le" => EM_PPC64,
        "s390x" => EM_S390,
        "riscv64" => EM_RISCV,
        _ => return None,
    })
}

/// A readable name for an ELF machine number (for error messages).
pub(crate) fn machine_name(machine: u16) -> String {
    use object::elf::*;
    match machine {
        EM_X86_64 => "x86-64".to_owned(),
        EM_AARCH64 => "aarch64".to_owned(),
        EM_ARM => "arm".to_owned(),
        EM_386 => "i386".to_owned(),
        EM_PPC64 => "ppc64".to_owned(),
        EM_S390 => "s390".to_owned(),
        EM_RISCV => "riscv".to_owned(),
        other => format!("#{other}"),
    }
}
