//! Synthesized executables for targets this machine cannot build (moved here from the
//! castoff-oci and castoff-wheel tests so every suite shares them): the builders read ELF,
//! Mach-O and PE headers, so a simulated CI runner needs files with valid headers, not a
//! compiler for that target.

use std::path::{Path, PathBuf};

/// ELF machine numbers.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_PPC64: u16 = 21;
pub const EM_S390: u16 = 22;
pub const EM_RISCV: u16 = 243;
/// Mach-O CPU types.
pub const CPU_TYPE_X86_64: u32 = 0x0100_0007;
pub const CPU_TYPE_ARM64: u32 = 0x0100_000c;
/// PE machine numbers.
pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
pub const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;

/// A tiny static ELF executable for `machine` (no interpreter), different per `text`. On
/// x86-64 it really runs: it prints `text` and exits 0.
pub fn static_elf(machine: u16, text: &str) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: usize = 64 + 56;
    let message = text.as_bytes();
    // mov eax,1; mov edi,1; lea rsi,[rip+16]; mov edx,len; syscall; mov eax,60; xor edi,edi; syscall
    let mut code = vec![
        0xb8, 1, 0, 0, 0, 0xbf, 1, 0, 0, 0, 0x48, 0x8d, 0x35, 16, 0, 0, 0, 0xba,
    ];
    code.extend_from_slice(&(message.len() as u32).to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05, 0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    code.extend_from_slice(message);
    let total = (HEADERS + code.len()) as u64;

    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + HEADERS as u64).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // phnum
    elf.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    // PT_LOAD, R+X, the whole file at BASE.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

/// Writes [`static_elf`] to `dir/name` (creating `dir`) and returns the path.
pub fn write_static_elf(dir: &Path, name: &str, machine: u16, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, static_elf(machine, text)).unwrap();
    path
}

/// An ELF executable's file header alone (`ET_EXEC`, no program headers: nothing asks for a
/// loader) for `machine` with the given class and byte order: enough for the builders' checks
/// of what a binary is for, on machines whose variants share `e_machine` (big-endian ppc64 and
/// ppc64le, 31-bit s390 and s390x, riscv32 and riscv64, x32 and x86-64). It does not run.
pub fn elf_header(machine: u16, elf64: bool, big_endian: bool) -> Vec<u8> {
    let mut elf = vec![
        0x7f,
        b'E',
        b'L',
        b'F',
        1 + u8::from(elf64),
        1 + u8::from(big_endian),
        1,
        0,
    ];
    elf.resize(16, 0);
    let (e_type, e_machine, e_version) = if big_endian {
        (
            2u16.to_be_bytes(),
            machine.to_be_bytes(),
            1u32.to_be_bytes(),
        )
    } else {
        (
            2u16.to_le_bytes(),
            machine.to_le_bytes(),
            1u32.to_le_bytes(),
        )
    };
    elf.extend_from_slice(&e_type);
    elf.extend_from_slice(&e_machine);
    elf.extend_from_slice(&e_version);
    // An entry point, so the file passes for an executable rather than a library; the
    // offsets stay 0 (no program or section headers).
    let entry: u64 = 0x40_1000;
    match (elf64, big_endian) {
        (true, true) => elf.extend_from_slice(&entry.to_be_bytes()),
        (true, false) => elf.extend_from_slice(&entry.to_le_bytes()),
        (false, true) => elf.extend_from_slice(&(entry as u32).to_be_bytes()),
        (false, false) => elf.extend_from_slice(&(entry as u32).to_le_bytes()),
    }
    let size: u16 = if elf64 { 64 } else { 52 };
    elf.resize(usize::from(size), 0);
    let ehsize_at = if elf64 { 52 } else { 40 };
    let ehsize = if big_endian {
        size.to_be_bytes()
    } else {
        size.to_le_bytes()
    };
    elf[ehsize_at..ehsize_at + 2].copy_from_slice(&ehsize);
    elf
}

/// A thin 64-bit Mach-O executable (`MH_EXECUTE`) with `LC_BUILD_VERSION` macOS
/// `major.minor`.
pub fn macho_executable(cpu: u32, major: u32, minor: u32) -> Vec<u8> {
    let version = (major << 16) | (minor << 8);
    let mut commands = Vec::new();
    for value in [0x32, 24, 1, version, version, 0] {
        commands.extend_from_slice(&u32::to_le_bytes(value));
    }
    let mut out = Vec::new();
    for value in [0xfeed_facf, cpu, 0, 2, 1, commands.len() as u32, 0, 0] {
        out.extend_from_slice(&u32::to_le_bytes(value));
    }
    out.extend_from_slice(&commands);
    out
}

/// A minimal PE executable (not a DLL) for a 64-bit `machine`: DOS header, `PE\0\0`, COFF
/// header, PE32+ optional header with 16 empty data directories, one empty `.text` section.
pub fn pe_executable(machine: u16) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&64u32.to_le_bytes());
    out.extend_from_slice(b"PE\0\0");
    let optional_size: u16 = 240;
    let characteristics: u16 = 0x0002 | 0x0020;
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // sections
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp
    out.extend_from_slice(&0u32.to_le_bytes()); // symbol table
    out.extend_from_slice(&0u32.to_le_bytes()); // symbols
    out.extend_from_slice(&optional_size.to_le_bytes());
    out.extend_from_slice(&characteristics.to_le_bytes());
    let optional_start = out.len();
    out.extend_from_slice(&0x20bu16.to_le_bytes());
    out.resize(optional_start + optional_size as usize, 0);
    let put = |out: &mut Vec<u8>, at: usize, value: u32| {
        out[optional_start + at..optional_start + at + 4].copy_from_slice(&value.to_le_bytes())
    };
    put(&mut out, 32, 0x1000);
    put(&mut out, 36, 0x200);
    put(&mut out, 56, 0x1000);
    put(&mut out, 60, 0x200);
    put(&mut out, 108, 16);
    let mut section = [0u8; 40];
    section[..5].copy_from_slice(b".text");
    section[36..40].copy_from_slice(&0x6000_0020u32.to_le_bytes()); // code, execute, read
    out.extend_from_slice(&section);
    out.resize(0x200, 0);
    out
}
