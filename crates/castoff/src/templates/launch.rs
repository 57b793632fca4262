//! Written by `castoff init`: what the `cargo xtask` alias runs. It runs the xtask crate one
//! directory up (castoff), and skips Cargo's check that the xtask is up to date (about 0.2 s:
//! castoff's graph has some 240 crates) when nothing that build read has changed: its sources
//! and manifests (from Cargo's dep-info), the environment, Cargo's configuration files and the
//! toolchain. Anything else, or anything it cannot tell, goes through `cargo build`, as a plain
//! `cargo run` would. `CASTOFF_XTASK_TRACE=1` says which way it went and why.
//! (A copy of castoff's `templates/launch.rs`; `castoff init --force` rewrites it.)

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::UNIX_EPOCH;

/// The first line of the stamp; another launcher's stamp is not read.
const FORMAT: &str = "castoff-xtask-stamp 1";
/// Bounds on what is read: the stamp, Cargo's dep-info, a configuration file.
const STAMP_LIMIT: u64 = 8 << 20;
const DEP_INFO_LIMIT: u64 = 8 << 20;
const CONFIG_LIMIT: u64 = 1 << 20;
/// A file modified this close to the start of a build (nanoseconds) may have been modified
/// during it: file systems keep coarser clocks than the system's (Linux's coarse clock ticks
/// every few milliseconds). Such a build is not recorded, and the next run asks Cargo again.
/// (On a file system with whole-second times, an edit in the build's first second can look
/// older than the build, to Cargo's own check as much as to this one.)
const SETTLE: u128 = 10_000_000;
/// Variables left out of the environment's key: they change between two identical runs
/// (the shell's), or only ask for a trace.
const VOLATILE: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "CASTOFF_XTASK_TRACE"];
/// The variables `cargo run` sets for this launcher, which describe it and not the xtask.
const OWN_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_"];

fn main() {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("xtask"), Path::to_path_buf);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let trace = std::env::var_os("CASTOFF_XTASK_TRACE").is_some_and(|value| value == "1");
    let stamp = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("castoff-xtask.stamp"));
    let key = environment_key(&xtask);
    if let (Some(stamp), Some(key)) = (&stamp, key) {
        match fresh(stamp, key) {
            Ok(exe) => {
                if trace {
                    eprintln!("castoff-xtask: up to date, running {}", exe.display());
                }
                run(&xtask, &exe, &args);
            }
            Err(why) if trace => eprintln!("castoff-xtask: building: {why}"),
            Err(_) => {}
        }
    } else if trace {
        eprintln!("castoff-xtask: building: the environment could not be read whole");
    }
    let started = std::time::SystemTime::now();
    // `cargo xtask -q …`: Cargo's build of the xtask is as quiet as castoff (errors only).
    let quiet = args
        .iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "-q" || arg == "--quiet");
    let exe = build(&xtask, quiet);
    if let (Some(stamp), Some(key)) = (&stamp, key) {
        match record(stamp, key, &xtask, &exe, started) {
            Ok(()) => {}
            Err(why) if trace => eprintln!("castoff-xtask: not recorded: {why}"),
            Err(_) => {}
        }
    }
    run(&xtask, &exe, &args);
}

/// Builds the xtask with Cargo (its progress and errors on stderr, as `cargo run` shows them)
/// and returns its executable; exits with Cargo's status when the build fails.
fn build(xtask: &Path, quiet: bool) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(xtask.join("Cargo.toml"))
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if quiet {
        command.arg("--quiet");
    }
    own_variables_removed(&mut command);
    let mut child = command.spawn().unwrap_or_else(|error| {
        eprintln!(
            "error: could not run {} to build the xtask: {error}",
            Path::new(&cargo).display()
        );
        std::process::exit(101)
    });
    let mut executables = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        // One JSON message per line; only the binaries' `executable` is read.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"reason\":\"compiler-artifact\"")
                && line.contains("\"kind\":[\"bin\"]")
                && let Some(exe) = json_string(&line, "\"executable\":\"")
            {
                executables.push(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait().unwrap_or_else(|error| {
        eprintln!("error: could not wait for cargo: {error}");
        std::process::exit(101)
    });
    if !status.success() {
        std::process::exit(status.code().unwrap_or(101));
    }
    match &executables[..] {
        [exe] => exe.clone(),
        _ => {
            eprintln!(
                "error: the xtask in {} must have exactly one binary target (it has {}); \
                 `castoff init --force` writes castoff's",
                xtask.display(),
                executables.len()
            );
            std::process::exit(101)
        }
    }
}

/// Runs the xtask as `cargo run` would, from the current directory, and exits with its status.
fn run(xtask: &Path, exe: &Path, args: &[OsString]) -> ! {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env("CARGO_MANIFEST_DIR", xtask)
        .env("CARGO_MANIFEST_PATH", xtask.join("Cargo.toml"));
    own_variables_removed(&mut command);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        eprintln!("error: could not run {}: {error}", exe.display());
        std::process::exit(101)
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(101)),
        Err(error) => {
            eprintln!("error: could not run {}: {error}", exe.display());
            std::process::exit(101)
        }
    }
}

fn own_variables_removed(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text == "CARGO_MANIFEST_DIR"
            || name_text == "CARGO_MANIFEST_PATH"
            || OWN_PREFIXES
                .iter()
                .any(|prefix| name_text.starts_with(prefix))
        {
            command.env_remove(&name);
        }
    }
}

/// The key of everything a build depends on besides its files: the environment (all of it,
/// less [`VOLATILE`]), Cargo's configuration files and the toolchain files seen from here,
/// Cargo itself and this launcher. None when something could not be read.
fn environment_key(xtask: &Path) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    FORMAT.hash(&mut hasher);
    xtask.hash(&mut hasher);
    let mut variables: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, _)| !VOLATILE.iter().any(|volatile| name == volatile))
        .collect();
    variables.sort();
    variables.hash(&mut hasher);
    let cwd = std::env::current_dir().ok()?;
    cwd.hash(&mut hasher);
    let mut files = Vec::new();
    for dir in cwd.ancestors().chain(xtask.ancestors()) {
        for name in [
            ".cargo/config.toml",
            ".cargo/config",
            "rust-toolchain.toml",
            "rust-toolchain",
        ] {
            files.push(dir.join(name));
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(home) = cargo_home {
        files.push(home.join("config.toml"));
        files.push(home.join("config"));
    }
    for file in files {
        file.hash(&mut hasher);
        match fs::File::open(&file) {
            Ok(opened) => {
                let mut contents = Vec::new();
                opened
                    .take(CONFIG_LIMIT + 1)
                    .read_to_end(&mut contents)
                    .ok()?;
                if contents.len() as u64 > CONFIG_LIMIT {
                    return None;
                }
                contents.hash(&mut hasher);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0u8.hash(&mut hasher),
            // A directory where a file would be, a file that cannot be read: unknown.
            Err(_) => return None,
        }
    }
    for program in [
        std::env::var_os("CARGO").map(PathBuf::from),
        std::env::current_exe().ok(),
    ] {
        let program = program?;
        program.hash(&mut hasher);
        stat(&program)?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// A file's size and modification time (nanoseconds since the epoch).
fn stat(path: &Path) -> Option<(u64, u128)> {
    let metadata = fs::metadata(path).ok()?;
    let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((metadata.len(), modified.as_nanos()))
}

/// The xtask's executable when the stamp says it was built from exactly what is here now;
/// else why not.
fn fresh(stamp: &Path, key: u64) -> Result<PathBuf, String> {
    let mut text = String::new();
    fs::File::open(stamp)
        .map_err(|_| "no record of an earlier build".to_owned())?
        .take(STAMP_LIMIT)
        .read_to_string(&mut text)
        .map_err(|_| "the record of the last build is unreadable".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT) {
        return Err("the record of the last build is another launcher's".to_owned());
    }
    if lines.next() != Some(format!("key {key:016x}").as_str()) {
        return Err("the environment, Cargo's configuration or the toolchain changed".to_owned());
    }
    let exe = lines
        .next()
        .and_then(|line| line.strip_prefix("exe "))
        .ok_or("the record of the last build is incomplete")?;
    let mut complete = false;
    for line in lines {
        if line == "end" {
            complete = true;
            break;
        }
        let mut fields = line.splitn(4, ' ');
        let (Some("file"), Some(size), Some(modified), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("the record of the last build is damaged".to_owned());
        };
        let (Ok(size), Ok(modified)) = (size.parse::<u64>(), modified.parse::<u128>()) else {
            return Err("the record of the last build is damaged".to_owned());
        };
        if stat(Path::new(path)) != Some((size, modified)) {
            return Err(format!("{path} changed"));
        }
    }
    if !complete {
        return Err("the record of the last build is incomplete".to_owned());
    }
    Ok(PathBuf::from(exe))
}

/// Writes the stamp of the build that made `exe`: the key and every file the build read
/// (Cargo's dep-info of the executable, the manifests above each, the xtask's Cargo.toml and
/// Cargo.lock, the executable), each with its size and modification time. Nothing is written
/// when a file changed after the build `started` (Cargo may not have seen it) or a path
/// cannot be written down.
fn record(
    stamp: &Path,
    key: u64,
    xtask: &Path,
    exe: &Path,
    started: std::time::SystemTime,
) -> Result<(), String> {
    let started = started
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970")?
        .as_nanos();
    let dep_info = exe.with_extension("d");
    let mut text = String::new();
    fs::File::open(&dep_info)
        .map_err(|_| format!("no dep-info at {}", dep_info.display()))?
        .take(DEP_INFO_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|_| format!("{} is unreadable", dep_info.display()))?;
    if text.len() as u64 > DEP_INFO_LIMIT {
        return Err(format!("{} is too large", dep_info.display()));
    }
    let mut files: Vec<PathBuf> = vec![xtask.join("Cargo.toml")];
    for line in text.lines() {
        // `target: dependency dependency…`, spaces in paths escaped as `\ `.
        let Some((_, dependencies)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = dependencies.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        files.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            files.push(PathBuf::from(current));
        }
    }
    let mut manifests = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for file in &files {
        if file.is_relative() {
            return Err(format!("{} is a relative path", file.display()));
        }
        for dir in file.ancestors().skip(1) {
            if !seen.insert(dir.to_path_buf()) {
                break;
            }
            let manifest = dir.join("Cargo.toml");
            if manifest.is_file() {
                manifests.push(manifest);
            }
        }
    }
    files.extend(manifests);
    files.sort();
    files.dedup();
    let mut out = format!("{FORMAT}\nkey {key:016x}\nexe {}\n", text_of(exe)?);
    for file in &files {
        let (size, modified) =
            stat(file).ok_or_else(|| format!("{} cannot be read", file.display()))?;
        if modified + SETTLE >= started {
            return Err(format!("{} changed during the build", file.display()));
        }
        out.push_str(&format!("file {size} {modified} {}\n", text_of(file)?));
    }
    // What the build itself wrote: the lock file (Cargo updates it first) and the executable
    // (replaced by another build, with other settings, it is not this one's).
    for file in [xtask.join("Cargo.lock"), exe.to_path_buf()] {
        let (size, modified) =
            stat(&file).ok_or_else(|| format!("{} cannot be read", file.display()))?;
        out.push_str(&format!("file {size} {modified} {}\n", text_of(&file)?));
    }
    out.push_str("end\n");
    let temporary = stamp.with_extension(format!("stamp.{}", std::process::id()));
    fs::write(&temporary, out)
        .and_then(|()| fs::rename(&temporary, stamp))
        .map_err(|error| format!("{}: {error}", stamp.display()))
}

/// A path as one line of the stamp.
fn text_of(path: &Path) -> Result<&str, String> {
    path.to_str()
        .filter(|text| !text.contains('\n') && !text.contains('\r'))
        .ok_or_else(|| format!("{} cannot be written down", path.display()))
}

/// The JSON string starting right after `prefix` in `line`, unescaped; None when it holds an
/// escape other than `\\`, `\"` and `\/`.
fn json_string(line: &str, prefix: &str) -> Option<String> {
    let start = line.find(prefix)? + prefix.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                c @ ('\\' | '"' | '/') => out.push(c),
                _ => return None,
            },
            c => out.push(c),
        }
    }
}
