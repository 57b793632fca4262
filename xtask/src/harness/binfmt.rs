//! binfmt_misc handlers that run the foreign Linux architectures of the matrix
//! (`castoff_test_support::platforms::EMULATORS`) with Debian's qemu-user-static, so their
//! binaries run as if native: `Command::new(path)`, inside `chroot`, runc and Docker.
//!
//! The handlers are machine-wide, and several harness runs (other clones, other target
//! directories) may run at once, so the rules are (docs/testing.md, "binfmt_misc"):
//!
//! - A handler this module registers is named `castoff-qemu-<arch>`, with the `F` flag (the
//!   kernel opens the interpreter at registration, so it also works where the interpreter's
//!   path does not exist: in a chroot or a container), magic and mask made from the ELF
//!   header fields of the architecture.
//! - An enabled handler of any other name that already catches the architecture's
//!   executables (Debian's binfmt-support, Docker's binfmt image) is used and left alone; one
//!   without the `F` flag is refused, since binaries inside the root filesystems could not
//!   find its interpreter.
//! - Every run that uses the handlers is a holder: `/run/castoff-test-binfmt/holders/<pid>`
//!   (with the process's start time, so a reused PID is not taken for it), all changes under
//!   the lock file beside it. A run that stops removes its holder; the last holder to stop
//!   removes the `castoff-qemu-*` handlers, and unmounts binfmt_misc when a harness mounted
//!   it and nothing else is registered there.
//! - A `castoff-qemu-*` handler with no living holder was left by a run that was killed
//!   (SIGKILL) or crashed: the next run takes it over (registers it again if its definition
//!   differs) and, being its holder now, removes it when it stops.
//!
//! Stopping is done by [`Emulation`]'s `Drop` (also when the tests fail or the harness
//! panics) and by the Ctrl-C / SIGTERM handler through [`release_held`].

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use castoff_test_support::platforms::{EMULATORS, Emulator, HANDLER_PREFIX};

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Holders and the lock: machine-wide like the handlers.
const RUN_DIR: &str = "/run/castoff-test-binfmt";
/// binfmt_misc's own files in its directory.
const CONTROL_FILES: [&str; 2] = ["register", "status"];

/// Who provides the handler of one architecture for this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Registered by this run.
    Registered,
    /// A castoff harness's, held by another run that is still going.
    Shared,
    /// A castoff harness's left by a run that was killed; this run removes it at the end.
    TakenOver,
    /// Someone else's (binfmt-support, Docker's binfmt image): used, never touched.
    Foreign,
}

/// The handler running one architecture.
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    pub(crate) emulator: &'static Emulator,
    pub(crate) name: String,
    pub(crate) origin: Origin,
}

/// This run's hold on the handlers; dropping it releases them (see the module's rules).
#[derive(Debug)]
pub(crate) struct Emulation {
    pub(crate) handlers: Vec<Handler>,
    pub(crate) mounted_now: bool,
}

impl Emulation {
    /// `aarch64=castoff-qemu-aarch64,arm=…`: which handler runs which architecture.
    pub(crate) fn describe(&self) -> String {
        self.handlers
            .iter()
            .map(|handler| format!("{}={}", handler.emulator.name, handler.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One line for the install summary.
    pub(crate) fn summary(&self) -> String {
        let count = |origin| {
            self.handlers
                .iter()
                .filter(|handler| handler.origin == origin)
                .count()
        };
        let mut line = format!(
            "{} handlers: {} registered, {} shared with a running harness, {} taken over from a killed run, {} foreign",
            self.handlers.len(),
            count(Origin::Registered),
            count(Origin::Shared),
            count(Origin::TakenOver),
            count(Origin::Foreign)
        );
        if self.mounted_now {
            line.push_str("; binfmt_misc mounted");
        }
        line
    }

    /// Releases this run's hold; the last holder removes the handlers. Returns what it did.
    pub(crate) fn release(&self) -> Result<String> {
        release_held().map(Option::unwrap_or_default)
    }
}

impl Drop for Emulation {
    fn drop(&mut self) {
        if let Err(error) = release_held() {
            eprintln!("warning: releasing the binfmt_misc handlers: {error:#}");
        }
    }
}

/// Whether this process holds the handlers (for the signal handler, which has no
/// [`Emulation`]).
static HELD: Mutex<bool> = Mutex::new(false);

/// Registers (or adopts) a handler for every emulated architecture and records this run as a
/// holder.
pub(crate) fn acquire() -> Result<Emulation> {
    let acquired = (|| {
        let _lock = MachineLock::take(Duration::from_secs(120))?;
        let others = live_holders()?;
        // A holder first: whatever is registered from here on is released with it, also when
        // a later architecture fails.
        add_holder()?;
        *HELD.lock().unwrap_or_else(|e| e.into_inner()) = true;
        adopt_or_register(&others)
    })();
    if acquired.is_err() {
        // After the lock above is dropped: releasing takes it again.
        let _ = release_held();
    }
    acquired
}

fn adopt_or_register(holders: &[String]) -> Result<Emulation> {
    let mounted_now = ensure_mounted()?;
    let entries = read_entries()?;
    let mut handlers = Vec::new();
    for emulator in EMULATORS {
        let name = emulator.handler_name();
        let wanted = Definition::of(emulator);
        if let Some(entry) = entries.iter().find(|entry| entry.name == name) {
            let current = entry.enabled && entry.definition.as_ref() == Some(&wanted);
            if current {
                let origin = if holders.is_empty() {
                    Origin::TakenOver
                } else {
                    Origin::Shared
                };
                handlers.push(Handler {
                    emulator,
                    name,
                    origin,
                });
                continue;
            }
            if !holders.is_empty() {
                bail!(
                    "binfmt_misc handler `{name}` differs from what this harness registers (or \
                     is disabled) and a running harness (pid {}) uses it; wait for that run to \
                     finish",
                    holders.join(", ")
                );
            }
            remove_entry(&name)?;
            register(emulator, &wanted)?;
            handlers.push(Handler {
                emulator,
                name,
                origin: Origin::TakenOver,
            });
            continue;
        }
        let foreign = entries.iter().find(|entry| {
            entry.enabled
                && !entry.name.starts_with(HANDLER_PREFIX)
                && entry
                    .definition
                    .as_ref()
                    .is_some_and(|definition| definition.catches_all_of(emulator))
        });
        if let Some(entry) = foreign {
            if !entry.flags.contains('F') {
                bail!(
                    "binfmt_misc handler `{}` runs {} binaries through {} without the `F` flag, so \
                     they cannot run inside a chroot or a container; remove it (`echo -1 > \
                     {BINFMT_DIR}/{}`) and the harness registers its own, or register it again \
                     with `F`",
                    entry.name,
                    emulator.name,
                    entry.interpreter,
                    entry.name
                );
            }
            handlers.push(Handler {
                emulator,
                name: entry.name.clone(),
                origin: Origin::Foreign,
            });
            continue;
        }
        register(emulator, &wanted)?;
        handlers.push(Handler {
            emulator,
            name,
            origin: Origin::Registered,
        });
    }
    Ok(Emulation {
        handlers,
        mounted_now,
    })
}

/// Releases this process's hold, if it has one: removes its holder file and, when no other
/// run holds the handlers, every `castoff-qemu-*` handler (and binfmt_misc's mount, when a
/// harness made it and nothing else is registered). Called by [`Emulation`]'s `Drop` and the
/// Ctrl-C / SIGTERM handler; idempotent. Returns what it did, `None` when nothing was held.
pub(crate) fn release_held() -> Result<Option<String>> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if !*held {
        return Ok(None);
    }
    // Short: the signal handler may run while this process holds the lock itself.
    let _lock = MachineLock::take(Duration::from_secs(10))?;
    let own = holders_dir().join(std::process::id().to_string());
    let _ = fs::remove_file(&own);
    *held = false;
    let others = live_holders()?;
    if !others.is_empty() {
        return Ok(Some(format!(
            "handlers left to the other running harness (pid {})",
            others.join(", ")
        )));
    }
    if !is_mounted()? {
        return Ok(Some(
            "binfmt_misc is no longer mounted: nothing to remove".to_owned(),
        ));
    }
    let mut removed = Vec::new();
    for entry in read_entries()? {
        if entry.name.starts_with(HANDLER_PREFIX) {
            remove_entry(&entry.name)?;
            removed.push(entry.name);
        }
    }
    let mut done = format!("removed {} handlers", removed.len());
    let marker = Path::new(RUN_DIR).join("mounted");
    if marker.exists() {
        let left = entry_names()?;
        if left.is_empty() {
            run(
                Command::new("umount").arg(BINFMT_DIR),
                "unmounting binfmt_misc",
            )?;
            done.push_str(", unmounted binfmt_misc");
        } else {
            done.push_str(&format!(
                ", left binfmt_misc mounted (it holds {})",
                left.join(", ")
            ));
        }
        let _ = fs::remove_file(&marker);
    }
    Ok(Some(done))
}

/// The magic and mask of an architecture's executables: the ELF identification and the
/// `e_type` and `e_machine` fields, in the byte order of the architecture. The mask lets any
/// OS/ABI byte through (Linux binaries say `SYSV` or `GNU`) and both `ET_EXEC` and `ET_DYN`
/// (position-independent executables) through the low bit of `e_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Definition {
    offset: usize,
    magic: Vec<u8>,
    mask: Vec<u8>,
    interpreter: String,
}

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

impl Definition {
    fn of(emulator: &Emulator) -> Definition {
        let mut magic = elf_header(emulator, ET_EXEC).to_vec();
        let mut mask = vec![0xff; magic.len()];
        // EI_OSABI: any.
        mask[7] = 0x00;
        // e_type: 2 or 3, the low bit of its least significant byte.
        let low = if emulator.big_endian { 17 } else { 16 };
        mask[low] = 0xfe;
        for (byte, mask) in magic.iter_mut().zip(&mask) {
            *byte &= mask;
        }
        Definition {
            offset: 0,
            magic,
            mask,
            interpreter: emulator.interpreter().display().to_string(),
        }
    }

    /// Whether the kernel would hand this handler both kinds of executables of the
    /// architecture (its own test: header bytes under the mask equal the magic).
    fn catches_all_of(&self, emulator: &Emulator) -> bool {
        [ET_EXEC, ET_DYN].into_iter().all(|kind| {
            let header = elf_header(emulator, kind);
            self.magic.iter().enumerate().all(|(index, magic)| {
                let mask = self.mask.get(index).copied().unwrap_or(0xff);
                header
                    .get(self.offset + index)
                    .is_some_and(|byte| byte & mask == *magic)
            })
        })
    }

    /// The line written to `register`: `:name:M:offset:magic:mask:interpreter:F`, every byte
    /// escaped (`\xHH`), so a byte that is `:` cannot end a field.
    fn register_line(&self, name: &str) -> String {
        let escaped = |bytes: &[u8]| {
            bytes.iter().fold(String::new(), |mut text, byte| {
                let _ = write!(text, "\\x{byte:02x}");
                text
            })
        };
        format!(
            ":{name}:M:{}:{}:{}:{}:F",
            self.offset,
            escaped(&self.magic),
            escaped(&self.mask),
            self.interpreter
        )
    }
}

/// The first 20 bytes of an ELF executable of the architecture: identification (class,
/// byte order, version 1, OS/ABI 0, ABI version and padding 0), `e_type`, `e_machine`.
fn elf_header(emulator: &Emulator, kind: u16) -> [u8; 20] {
    let mut header = [0u8; 20];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = if emulator.elf64 { 2 } else { 1 };
    header[5] = if emulator.big_endian { 2 } else { 1 };
    header[6] = 1;
    let (kind, machine) = if emulator.big_endian {
        (kind.to_be_bytes(), emulator.elf_machine.to_be_bytes())
    } else {
        (kind.to_le_bytes(), emulator.elf_machine.to_le_bytes())
    };
    header[16..18].copy_from_slice(&kind);
    header[18..20].copy_from_slice(&machine);
    header
}

fn register(emulator: &Emulator, definition: &Definition) -> Result<()> {
    let interpreter = emulator.interpreter();
    if !interpreter.is_file() {
        bail!(
            "{} is missing (Debian package qemu-user-static)",
            interpreter.display()
        );
    }
    let name = emulator.handler_name();
    let register = Path::new(BINFMT_DIR).join("register");
    fs::write(&register, definition.register_line(&name)).with_context(|| {
        format!(
            "registering the binfmt_misc handler {name} (writing {}; this needs root)",
            register.display()
        )
    })
}

fn remove_entry(name: &str) -> Result<()> {
    let path = Path::new(BINFMT_DIR).join(name);
    fs::write(&path, "-1")
        .with_context(|| format!("removing the binfmt_misc handler {}", path.display()))
}

/// One handler as `/proc/sys/fs/binfmt_misc/<name>` shows it.
#[derive(Debug)]
struct Entry {
    name: String,
    enabled: bool,
    interpreter: String,
    flags: String,
    /// `None` for extension handlers (`E`), which never catch an ELF file.
    definition: Option<Definition>,
}

fn entry_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(BINFMT_DIR).with_context(|| format!("reading {BINFMT_DIR}"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !CONTROL_FILES.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read_entries() -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for name in entry_names()? {
        let path = Path::new(BINFMT_DIR).join(&name);
        let mut text = String::new();
        // A kernel file of a few lines; bounded all the same.
        match fs::File::open(&path) {
            Ok(file) => {
                file.take(16 * 1024)
                    .read_to_string(&mut text)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            // Removed in between by someone else.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        }
        entries.push(parse_entry(name, &text));
    }
    Ok(entries)
}

fn parse_entry(name: String, text: &str) -> Entry {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_owned())
    };
    let hex = |text: &str| -> Option<Vec<u8>> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
            .collect()
    };
    let interpreter = field("interpreter ").unwrap_or_default();
    let definition = field("magic ").and_then(|magic| {
        let magic = hex(&magic)?;
        let mask = match field("mask ") {
            Some(mask) => hex(&mask)?,
            None => vec![0xff; magic.len()],
        };
        Some(Definition {
            offset: field("offset ")
                .and_then(|offset| offset.parse().ok())
                .unwrap_or(0),
            magic,
            mask,
            interpreter: interpreter.clone(),
        })
    });
    Entry {
        name,
        enabled: text.lines().next() == Some("enabled"),
        flags: field("flags:").unwrap_or_default(),
        interpreter,
        definition,
    }
}

/// Mounts binfmt_misc when it is not mounted (on a systemd machine, looking at the directory
/// triggers its automount first). Returns whether this call mounted it.
fn ensure_mounted() -> Result<bool> {
    let _ = fs::read_dir(BINFMT_DIR);
    if is_mounted()? {
        return Ok(false);
    }
    run(
        Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]),
        "mounting binfmt_misc (this needs root)",
    )?;
    fs::write(Path::new(RUN_DIR).join("mounted"), "")
        .with_context(|| format!("writing {RUN_DIR}/mounted"))?;
    Ok(true)
}

fn is_mounted() -> Result<bool> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    Ok(mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, kind) = (fields.next(), fields.next(), fields.next());
        point == Some(BINFMT_DIR) && kind == Some("binfmt_misc")
    }))
}

fn holders_dir() -> PathBuf {
    Path::new(RUN_DIR).join("holders")
}

/// The holders whose process still runs (same PID and start time); removes the others.
fn live_holders() -> Result<Vec<String>> {
    live_holders_in(&holders_dir())
}

fn live_holders_in(dir: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut live = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let pid = entry.file_name().to_string_lossy().into_owned();
        let recorded = fs::read_to_string(entry.path()).unwrap_or_default();
        let alive = pid
            .parse::<u32>()
            .ok()
            .and_then(start_time)
            .is_some_and(|started| {
                recorded.lines().next().map(str::trim) == Some(started.as_str())
            });
        if alive {
            live.push(pid);
        } else {
            let _ = fs::remove_file(entry.path());
        }
    }
    live.sort();
    Ok(live)
}

fn add_holder() -> Result<()> {
    let pid = std::process::id();
    let started = start_time(pid).ok_or_else(|| anyhow!("reading /proc/{pid}/stat"))?;
    let path = holders_dir().join(pid.to_string());
    fs::write(
        &path,
        format!(
            "{started}\n# start time of pid {pid}, a `cargo xtask test` in {}\n",
            std::env::current_dir().unwrap_or_default().display()
        ),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot): with the PID, it
/// names one process for the life of the machine. `None` for a gone (or zombie) process.
fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, so start time (22) is index 19.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19).map(|field| (*field).to_owned())
}

/// An exclusive lock on `RUN_DIR/lock`, held until dropped.
struct MachineLock {
    _file: fs::File,
}

impl MachineLock {
    fn take(patience: Duration) -> Result<MachineLock> {
        fs::create_dir_all(RUN_DIR).with_context(|| format!("creating {RUN_DIR}"))?;
        let path = Path::new(RUN_DIR).join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let deadline = Instant::now() + patience;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(MachineLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => bail!(
                    "{} stayed locked for {} s (another harness run is changing the binfmt_misc handlers)",
                    path.display(),
                    patience.as_secs()
                ),
                Err(fs::TryLockError::Error(error)) => {
                    return Err(error).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| what.to_owned())?;
    if !output.status.success() {
        bail!(
            "{what}: {} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use castoff_test_support::platforms::emulator;

    use super::*;

    #[test]
    fn definitions_are_made_from_the_elf_header_fields() {
        // The aarch64 line of multi-platform-testing.md (the values qemu documents).
        let aarch64 = Definition::of(emulator("aarch64"));
        assert_eq!(
            aarch64.register_line("castoff-qemu-aarch64"),
            ":castoff-qemu-aarch64:M:0:\
             \\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\
             \\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:\
             /usr/bin/qemu-aarch64-static:F"
        );
        // s390x is big-endian: e_type and e_machine's bytes the other way round.
        let s390x = Definition::of(emulator("s390x"));
        assert_eq!(&s390x.magic[4..6], [2, 2]);
        assert_eq!(&s390x.magic[16..], [0x00, 0x02, 0x00, 0x16]);
        assert_eq!(&s390x.mask[16..], [0xff, 0xfe, 0xff, 0xff]);
        // arm is 32-bit.
        assert_eq!(Definition::of(emulator("arm")).magic[4], 1);
    }

    #[test]
    fn a_handler_catches_its_architecture_only() {
        for emulator in EMULATORS {
            let definition = Definition::of(emulator);
            assert!(definition.catches_all_of(emulator), "{}", emulator.name);
            for other in EMULATORS.iter().filter(|other| other.name != emulator.name) {
                assert!(
                    !definition.catches_all_of(other),
                    "{} catches {}",
                    emulator.name,
                    other.name
                );
            }
        }
    }

    #[test]
    fn holders_are_alive_only_with_their_pid_and_start_time() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/castoff-test-scratch/xtask-binfmt")
            .join(format!("holders-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let own = std::process::id();
        let started = start_time(own).expect("this process's start time");
        fs::write(
            dir.join(own.to_string()),
            format!("{started}\n# a comment\n"),
        )
        .unwrap();
        // pid_max is at most 2^22: this process cannot exist (a run killed long ago).
        fs::write(dir.join("99999999"), "12345\n").unwrap();
        // PID 1 lives, but did not start then: its PID was reused after the holder died.
        fs::write(
            dir.join("1"),
            format!("{}\n", started.parse::<u64>().unwrap() + 1),
        )
        .unwrap();
        assert_eq!(live_holders_in(&dir).unwrap(), [own.to_string()]);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [own.to_string()], "the dead holders are removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entries_are_read_as_the_kernel_shows_them() {
        // Docker's binfmt image registers qemu-aarch64 like this (a foreign handler).
        let entry = parse_entry(
            "qemu-aarch64".to_owned(),
            "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: POCF\noffset 0\n\
             magic 7f454c460201010000000000000000000200b700\n\
             mask ffffffffffffff00fffffffffffffffffeffffff\n",
        );
        assert!(entry.enabled);
        assert_eq!(entry.flags, "POCF");
        let definition = entry.definition.unwrap();
        assert!(definition.catches_all_of(emulator("aarch64")));
        assert!(!definition.catches_all_of(emulator("arm")));
        // Ours reads back as what we register.
        let ours = Definition::of(emulator("ppc64le"));
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let shown = parse_entry(
            "castoff-qemu-ppc64le".to_owned(),
            &format!(
                "enabled\ninterpreter /usr/bin/qemu-ppc64le-static\nflags: F\noffset 0\nmagic {}\nmask {}\n",
                hex(&ours.magic),
                hex(&ours.mask)
            ),
        );
        assert_eq!(shown.definition, Some(ours));
        // An extension handler (python3.11.conf) catches no ELF file.
        let python = parse_entry(
            "python3.11".to_owned(),
            "enabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n",
        );
        assert!(python.definition.is_none());
        let disabled = parse_entry("x".to_owned(), "disabled\n");
        assert!(!disabled.enabled);
    }
}
