//! The platforms the harness provides beyond this machine's own (docs/testing.md, "Other
//! platforms"): the C fixture `tests/fixtures/platform-probe/greeter.c` that zig builds for
//! every target ([`PROBE_TARGETS`]), the qemu-user architectures that run the foreign Linux
//! builds through binfmt_misc ([`EMULATORS`]), and the two root filesystems ([`Rootfs`]).
//! xtask builds and registers from these tables; the tests read them to know what to expect,
//! so the two sides cannot drift apart.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's binary name: the Rust fixture `tests/fixtures/single-cli`'s, whose contract
/// it follows, so its builds can stand in for that workspace's binaries.
pub const PROBE_BIN: &str = "greeter";
/// The version it prints (`greeter --version`): single-cli's.
pub const PROBE_VERSION: &str = "0.3.1";
/// Its source, relative to the repository root.
pub const PROBE_SOURCE: &str = "tests/fixtures/platform-probe/greeter.c";
/// The exit code of `greeter sleep` ended by SIGTERM (128 + 15, what a shell reports).
pub const PROBE_SIGTERM_EXIT: i32 = 143;
/// The line it prints when SIGTERM ends `greeter sleep`.
pub const PROBE_SIGTERM_LINE: &str = "greeter: terminated by SIGTERM";

/// Operating system of a probe build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOs {
    Linux,
    MacOs,
    Windows,
}

/// A qemu-user architecture the harness runs foreign Linux binaries with: the ELF header
/// fields that select it (binfmt_misc's magic and mask are made from them) and what
/// `uname -m` says under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emulator {
    /// qemu's name for it: the interpreter is `/usr/bin/qemu-<name>-static` (Debian's
    /// qemu-user-static), the harness's handler `castoff-qemu-<name>`.
    pub name: &'static str,
    /// `EI_CLASS` 2 (ELFCLASS64) rather than 1.
    pub elf64: bool,
    /// `EI_DATA` 2 (big-endian) rather than 1.
    pub big_endian: bool,
    /// `e_machine`.
    pub elf_machine: u16,
    /// What `uname -m` prints under qemu-user for this architecture.
    pub machine: &'static str,
    /// Debian's cross glibc for it (`libc6-<arch>-cross`, installed by the harness): where
    /// qemu finds the loader and libc of a dynamically linked glibc binary
    /// (`QEMU_LD_PREFIX`), since this machine has only its own glibc.
    pub glibc_sysroot: &'static str,
}

impl Emulator {
    /// Debian's qemu-user-static binary for it.
    pub fn interpreter(&self) -> PathBuf {
        PathBuf::from(format!("/usr/bin/qemu-{}-static", self.name))
    }

    /// The binfmt_misc handler the harness registers for it.
    pub fn handler_name(&self) -> String {
        format!("{HANDLER_PREFIX}{}", self.name)
    }
}

/// Handlers named so were registered by a castoff harness (docs/testing.md: who removes them).
pub const HANDLER_PREFIX: &str = "castoff-qemu-";

/// The foreign Linux architectures of the matrix. i386 is not here: an x86_64 kernel runs
/// i686 binaries natively (and a binfmt_misc handler would take them over from it).
pub const EMULATORS: &[Emulator] = &[
    Emulator {
        name: "aarch64",
        elf64: true,
        big_endian: false,
        elf_machine: 183, // EM_AARCH64
        machine: "aarch64",
        glibc_sysroot: "/usr/aarch64-linux-gnu",
    },
    Emulator {
        name: "arm",
        elf64: false,
        big_endian: false,
        elf_machine: 40, // EM_ARM
        machine: "armv7l",
        glibc_sysroot: "/usr/arm-linux-gnueabihf",
    },
    Emulator {
        name: "riscv64",
        elf64: true,
        big_endian: false,
        elf_machine: 243, // EM_RISCV
        machine: "riscv64",
        glibc_sysroot: "/usr/riscv64-linux-gnu",
    },
    Emulator {
        name: "ppc64le",
        elf64: true,
        big_endian: false,
        elf_machine: 21, // EM_PPC64
        machine: "ppc64le",
        glibc_sysroot: "/usr/powerpc64le-linux-gnu",
    },
    Emulator {
        name: "s390x",
        elf64: true,
        big_endian: true,
        elf_machine: 22, // EM_S390
        machine: "s390x",
        glibc_sysroot: "/usr/s390x-linux-gnu",
    },
];

/// The emulator named `name` (`aarch64`, `arm`, …).
pub fn emulator(name: &str) -> &'static Emulator {
    EMULATORS
        .iter()
        .find(|emulator| emulator.name == name)
        .unwrap_or_else(|| panic!("no emulator `{name}` in castoff_test_support::platforms"))
}

/// One build of the C fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The Rust target triple it stands in for: its directory in the prebuilt layout.
    pub triple: &'static str,
    /// zig's `-target`; glibc targets carry their floor (`.2.17`, or the architecture's
    /// first glibc where that is later).
    pub zig_target: &'static str,
    /// zig's further arguments for it: the CPU where zig's default is not the Rust
    /// target's baseline (armv7), the ABI where zig's default does not fit the glibc floor
    /// (powerpc64le: `long double` as IBM double-double; glibc gained the IEEE 128-bit
    /// `printf` only in 2.32).
    pub zig_args: &'static [&'static str],
    pub os: ProbeOs,
    /// Pointer width, as `greeter platform` prints it (`bits=`).
    pub bits: u32,
    /// The qemu-user architecture that runs it on this machine (an x86_64 Linux); `None`
    /// when it runs natively (x86_64, i686) or not at all (macOS, Windows).
    pub emulator: Option<&'static str>,
}

impl ProbeTarget {
    /// `greeter` or `greeter.exe`.
    pub fn file_name(&self) -> String {
        match self.os {
            ProbeOs::Windows => format!("{PROBE_BIN}.exe"),
            ProbeOs::Linux | ProbeOs::MacOs => PROBE_BIN.to_owned(),
        }
    }

    /// Whether this machine runs it (natively or under qemu).
    pub fn runs_here(&self) -> bool {
        self.os == ProbeOs::Linux
    }

    /// A Linux build against glibc: dynamically linked (zig links glibc only so), so it
    /// needs the glibc of its architecture where it runs.
    pub fn glibc(&self) -> bool {
        self.os == ProbeOs::Linux && self.zig_target.contains("-gnu")
    }

    /// The emulator that runs it here, if any.
    pub fn emulated_by(&self) -> Option<&'static Emulator> {
        self.emulator.map(emulator)
    }

    /// A command that runs `binary` (a build for this target) on this machine as any program
    /// runs: the kernel hands a foreign one to qemu through binfmt_misc. A foreign glibc
    /// build also gets `QEMU_LD_PREFIX`, naming Debian's cross glibc of its architecture,
    /// where qemu finds the loader and libc this machine lacks. (Inside the arm64 root, an
    /// aarch64 glibc build finds them in the root and needs nothing.)
    pub fn command(&self, binary: &Path) -> Command {
        let mut command = Command::new(binary);
        if let (true, Some(emulator)) = (self.glibc(), self.emulated_by()) {
            command.env("QEMU_LD_PREFIX", emulator.glibc_sysroot);
        }
        command
    }

    /// What `greeter arch` prints when it runs here: qemu's `uname -m`, or the kernel's for
    /// native builds (an i686 process on an x86_64 kernel is told `x86_64`). `None` when it
    /// does not run here.
    pub fn machine_here(&self) -> Option<&'static str> {
        match (self.os, self.emulator) {
            (ProbeOs::Linux, Some(name)) => Some(emulator(name).machine),
            (ProbeOs::Linux, None) => Some(std::env::consts::ARCH),
            _ => None,
        }
    }

    /// The line `greeter platform` prints when it runs here.
    pub fn platform_line_here(&self) -> Option<String> {
        self.machine_here().map(|machine| {
            format!(
                "{PROBE_BIN} {PROBE_VERSION} machine={machine} target={} bits={}",
                self.triple, self.bits
            )
        })
    }
}

/// Ends a running `greeter sleep 60` (maybe behind a launcher), spawned with its stdout piped:
/// once it says it sleeps (its SIGTERM handler is in place), SIGTERM to `child`, then its exit
/// code and the rest of its output, trimmed. `what` names it in a failure.
pub fn terminate_sleeping_probe(
    child: &mut std::process::Child,
    what: &str,
) -> (Option<i32>, String) {
    use std::io::{BufRead as _, Read as _};
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("{what}: spawn it with its stdout piped"));
    let mut out = std::io::BufReader::new(stdout);
    let mut first = String::new();
    out.read_line(&mut first)
        .unwrap_or_else(|error| panic!("{what}: reading its first line: {error}"));
    assert_eq!(first.trim(), "greeter: sleeping 60 s", "{what}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run kill: {error}"));
    assert!(kill.status.success(), "{what}: kill -TERM failed: {kill:?}");
    let status = child
        .wait()
        .unwrap_or_else(|error| panic!("{what}: waiting: {error}"));
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .unwrap_or_else(|error| panic!("{what}: reading its output: {error}"));
    (status.code(), rest.trim().to_owned())
}

/// The prefix of a figure line that is one cell of the platform × client table
/// (`MATRIX_CELL\t<platform>\t<client>\t<outcome>`), which `cargo xtask test` prints as a table
/// under `==> figures`.
pub const MATRIX_CELL: &str = "matrix-cell";

/// Records that `client` was proven on `platform` (a target triple, or a name such as
/// `arm64 root`) with `outcome` (short: `ok`, `none (no wheel)`, `refused`), as one cell of
/// the platform × client table of the figures.
pub fn record_cell(platform: &str, client: &str, outcome: &str) {
    for part in [platform, client, outcome] {
        assert!(
            !part.contains(['\t', '\n']) && !part.is_empty(),
            "a matrix cell's parts are short text: {part:?}"
        );
    }
    crate::figure(format!("{MATRIX_CELL}\t{platform}\t{client}\t{outcome}"));
}

/// Rust's armv7 baseline: ARMv7-A, VFPv3-D16, Thumb-2.
const ARMV7_CPU: &[&str] = &["-mcpu=generic+v7a+vfp3d16+thumb2"];

const fn linux(
    triple: &'static str,
    zig_target: &'static str,
    bits: u32,
    emulator: Option<&'static str>,
) -> ProbeTarget {
    ProbeTarget {
        triple,
        zig_target,
        zig_args: &[],
        os: ProbeOs::Linux,
        bits,
        emulator,
    }
}

const fn armv7(triple: &'static str, zig_target: &'static str) -> ProbeTarget {
    ProbeTarget {
        zig_args: ARMV7_CPU,
        ..linux(triple, zig_target, 32, Some("arm"))
    }
}

const fn ppc64le_glibc(triple: &'static str, zig_target: &'static str) -> ProbeTarget {
    ProbeTarget {
        zig_args: &["-mabi=ibmlongdouble"],
        ..linux(triple, zig_target, 64, Some("ppc64le"))
    }
}

const fn other(
    triple: &'static str,
    zig_target: &'static str,
    os: ProbeOs,
    bits: u32,
) -> ProbeTarget {
    ProbeTarget {
        triple,
        zig_target,
        zig_args: &[],
        os,
        bits,
        emulator: None,
    }
}

/// Every build of the fixture: each target of `castoff_plan::Target::all()` (a unit test
/// holds that), plus riscv64, powerpc64le and s390x with glibc and musl, the wider Linux
/// matrix. glibc targets are built against glibc 2.17 (manylinux2014), or the first glibc of
/// the architecture (riscv64: 2.27, powerpc64le: 2.19). macOS builds name the minimum OS
/// Rust's targets use (10.12, 11.0); Windows builds are zig's MinGW (`-gnu`), PE files of the
/// same machine as the MSVC targets they stand in for.
#[rustfmt::skip]
pub const PROBE_TARGETS: &[ProbeTarget] = &[
    linux("x86_64-unknown-linux-gnu", "x86_64-linux-gnu.2.17", 64, None),
    linux("x86_64-unknown-linux-musl", "x86_64-linux-musl", 64, None),
    linux("aarch64-unknown-linux-gnu", "aarch64-linux-gnu.2.17", 64, Some("aarch64")),
    linux("aarch64-unknown-linux-musl", "aarch64-linux-musl", 64, Some("aarch64")),
    armv7("armv7-unknown-linux-gnueabihf", "arm-linux-gnueabihf.2.17"),
    armv7("armv7-unknown-linux-musleabihf", "arm-linux-musleabihf"),
    linux("i686-unknown-linux-gnu", "x86-linux-gnu.2.17", 32, None),
    linux("i686-unknown-linux-musl", "x86-linux-musl", 32, None),
    linux("riscv64gc-unknown-linux-gnu", "riscv64-linux-gnu.2.27", 64, Some("riscv64")),
    linux("riscv64gc-unknown-linux-musl", "riscv64-linux-musl", 64, Some("riscv64")),
    ppc64le_glibc("powerpc64le-unknown-linux-gnu", "powerpc64le-linux-gnu.2.19"),
    linux("powerpc64le-unknown-linux-musl", "powerpc64le-linux-musl", 64, Some("ppc64le")),
    linux("s390x-unknown-linux-gnu", "s390x-linux-gnu.2.17", 64, Some("s390x")),
    linux("s390x-unknown-linux-musl", "s390x-linux-musl", 64, Some("s390x")),
    other("x86_64-apple-darwin", "x86_64-macos.10.12", ProbeOs::MacOs, 64),
    other("aarch64-apple-darwin", "aarch64-macos.11.0", ProbeOs::MacOs, 64),
    other("x86_64-pc-windows-msvc", "x86_64-windows-gnu", ProbeOs::Windows, 64),
    other("aarch64-pc-windows-msvc", "aarch64-windows-gnu", ProbeOs::Windows, 64),
    other("i686-pc-windows-msvc", "x86-windows-gnu", ProbeOs::Windows, 32),
];

/// The probe build standing in for `triple`.
pub fn probe_target(triple: &str) -> &'static ProbeTarget {
    PROBE_TARGETS
        .iter()
        .find(|target| target.triple == triple)
        .unwrap_or_else(|| panic!("no probe build for `{triple}` in PROBE_TARGETS"))
}

/// A root filesystem the harness unpacked for this run, entered with `chroot`. Tests may
/// change it (install into it); the next run unpacks a fresh one.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub dir: PathBuf,
}

impl Rootfs {
    /// `chroot DIR program`: the program is a path inside the root. No `/proc` is mounted
    /// inside (what runs there must not need it); stdin, stdout, stderr, exit status and
    /// signals are the program's own, since `chroot` execs it.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("chroot");
        command
            .arg(&self.dir)
            .arg(program)
            // The host's PATH names host directories; inside, the usual ones.
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root");
        command
    }

    /// The path on the host of `inside` (an absolute path in the root).
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.dir.join(inside.trim_start_matches('/'))
    }

    /// Copies a host file into the root at `inside` (parents created), executable.
    pub fn install_file(&self, from: &Path, inside: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let to = self.host_path(inside);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|error| panic!("creating {}: {error}", parent.display()));
        }
        std::fs::copy(from, &to).unwrap_or_else(|error| {
            panic!("copying {} to {}: {error}", from.display(), to.display())
        });
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|error| panic!("chmod {}: {error}", to.display()));
        to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_castoff_supports_has_a_probe_build() {
        let missing: Vec<&str> = castoff_plan::Target::all()
            .iter()
            .map(|target| target.triple)
            .filter(|triple| !PROBE_TARGETS.iter().any(|probe| probe.triple == *triple))
            .collect();
        assert!(missing.is_empty(), "no probe build for {missing:?}");
    }

    #[test]
    fn probe_builds_agree_with_castoff_s_target_table() {
        for target in castoff_plan::Target::all() {
            let probe = probe_target(target.triple);
            assert_eq!(probe.file_name(), target.executable_name(PROBE_BIN));
            let os = match target.os {
                castoff_plan::target::Os::Linux => ProbeOs::Linux,
                castoff_plan::target::Os::MacOs => ProbeOs::MacOs,
                castoff_plan::target::Os::Windows => ProbeOs::Windows,
            };
            assert_eq!(probe.os, os, "{}", target.triple);
            let glibc = target.libc == Some(castoff_plan::target::Libc::Glibc);
            assert_eq!(probe.glibc(), glibc, "{}", target.triple);
            assert_eq!(
                probe.zig_target.contains(".2."),
                glibc,
                "{}: glibc builds, and only they, carry their floor",
                target.triple
            );
        }
    }

    #[test]
    fn every_emulator_is_used_and_every_emulated_build_names_one() {
        for emulator in EMULATORS {
            assert!(
                PROBE_TARGETS
                    .iter()
                    .any(|probe| probe.emulator == Some(emulator.name)),
                "{}",
                emulator.name
            );
        }
        for probe in PROBE_TARGETS {
            if let Some(name) = probe.emulator {
                let _ = emulator(name);
            }
        }
    }
}
