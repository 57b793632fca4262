//! The build's preflight: before any build starts, is every target's Rust standard library
//! installed, and, for the targets built with zig, are cargo-zigbuild and zig there? Every
//! missing piece is reported at once, each a [`Hinted`] naming it whose hint is the command
//! that installs it.
//!
//! Questions about this machine only, no configuration: the caller says which targets it will
//! build and how ([`Need`]). Cheap by construction: one `rustc --print sysroot` for all
//! targets, file look-ups for cargo-zigbuild, at most one `zig version` and one
//! `python3 -m ziglang version` for zig, and nothing at all for zig when no target needs it.
//!
//! Why the sysroot and not `rustup target list --installed`: the standard library cargo links
//! is the one in the sysroot of the compiler cargo runs (`RUSTC`, else `rustc` on PATH, in the
//! current directory, so a `rust-toolchain.toml` applies as it does for the build). That
//! holds for a rustup toolchain, for a distribution's Rust and for `RUSTC` pointing anywhere,
//! where rustup's list describes only rustup's active toolchain, and it costs the same one
//! process. rustup decides only the hint: when the sysroot lies below rustup's `toolchains/`,
//! `rustup target add` installs what is missing; otherwise the toolchain came from elsewhere
//! and the hint says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::semver::Version;
use castoff_registry::env::{Environment, ProcessEnvironment};

use crate::hint::Hinted;

/// The environment variables the preflight reads, named as the tools they belong to name them.
pub mod vars {
    /// Where programs are looked up.
    pub const PATH: &str = "PATH";
    /// Default base of `CARGO_HOME` and `RUSTUP_HOME`.
    pub const HOME: &str = "HOME";
    /// The compiler cargo runs (cargo's variable); default `rustc` on PATH.
    pub const RUSTC: &str = "RUSTC";
    /// rustup's home (default `~/.rustup`): a sysroot below its `toolchains/` is rustup's.
    pub const RUSTUP_HOME: &str = "RUSTUP_HOME";
    /// cargo's home (default `~/.cargo`): cargo finds subcommands in its `bin/`, then on PATH.
    pub const CARGO_HOME: &str = "CARGO_HOME";
    /// The zig cargo-zigbuild runs when `python3 -m ziglang` does not answer: a path, or a
    /// command name looked up on PATH (default `zig`).
    pub const CARGO_ZIGBUILD_ZIG_PATH: &str = "CARGO_ZIGBUILD_ZIG_PATH";
    /// The Python cargo-zigbuild asks first for the `ziglang` package (default `python3`).
    pub const CARGO_ZIGBUILD_PYTHON_PATH: &str = "CARGO_ZIGBUILD_PYTHON_PATH";
}

/// What one target's build needs: its standard library always; cargo-zigbuild and zig when
/// it is built with `cargo zigbuild`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The Rust target triple, without cargo-zigbuild's glibc suffix.
    pub target: &'static str,
    pub zigbuild: bool,
}

/// The oldest zig cargo-zigbuild accepts (its `validate_zig_version`).
const OLDEST_ZIG: Version = Version::new(0, 9, 0);

/// What the process environment lacks for these builds, every problem at once (empty: all
/// there). See [`check_in`].
pub fn check(needs: &[Need]) -> Vec<Hinted> {
    check_in(needs, &ProcessEnvironment)
}

/// [`check`] with the variables taken from `env` (the look-ups: PATH, the homes, `RUSTC`,
/// cargo-zigbuild's variables); the probes it runs inherit this process's environment.
pub fn check_in(needs: &[Need], env: &dyn Environment) -> Vec<Hinted> {
    let mut problems = Vec::new();
    let targets = distinct(needs.iter().map(|need| need.target));
    if targets.is_empty() {
        return problems;
    }
    problems.extend(standard_libraries(&targets, env));
    let zig_targets = distinct(
        needs
            .iter()
            .filter(|need| need.zigbuild)
            .map(|need| need.target),
    );
    if !zig_targets.is_empty() {
        problems.extend(cargo_zigbuild(&zig_targets, env));
        problems.extend(zig(&zig_targets, env));
    }
    problems
}

/// Each target once, in the order given.
fn distinct(targets: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for target in targets {
        if !seen.contains(&target) {
            seen.push(target);
        }
    }
    seen
}

/// One problem naming every target whose standard library the compiler's sysroot lacks, with
/// one command that installs them all; or the problem that the compiler cannot be asked.
fn standard_libraries(targets: &[&'static str], env: &dyn Environment) -> Option<Hinted> {
    let rustc = env.var(vars::RUSTC).unwrap_or_else(|| "rustc".to_owned());
    let Some(program) = find_program(&rustc, env) else {
        return Some(Hinted::new(
            format!(
                "the Rust compiler `{rustc}` is not installed ({})",
                not_found(&rustc)
            ),
            "install Rust with rustup (https://rustup.rs), or name the compiler in RUSTC",
        ));
    };
    let sysroot = match probe(Command::new(&program).args(["--print", "sysroot"])) {
        Ok(text) => PathBuf::from(text),
        Err(why) => {
            return Some(Hinted::new(
                format!(
                    "cannot ask `{}` for its standard libraries: `{} --print sysroot` {why}",
                    program.display(),
                    rustc
                ),
                format!("run `{rustc} --print sysroot` here to see why, and fix that first"),
            ));
        }
    };
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|target| !has_standard_library(&sysroot, target))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let (libraries, them) = if missing.len() == 1 {
        ("library", "it")
    } else {
        ("libraries", "them")
    };
    let problem = format!(
        "the Rust standard {libraries} for {} {} not installed (the sysroot of `{rustc}`, {}, has no lib/rustlib/<target>/lib)",
        missing.join(", "),
        if missing.len() == 1 { "is" } else { "are" },
        sysroot.display()
    );
    let hint = if managed_by_rustup(&sysroot, env) {
        format!("rustup target add {}", missing.join(" "))
    } else {
        format!(
            "this Rust toolchain was not installed by rustup: add the standard {libraries} for {} the way it was installed, or install Rust with rustup (https://rustup.rs) and run `rustup target add {}` to get {them}",
            missing.join(", "),
            missing.join(" ")
        )
    };
    Some(Hinted::new(problem, hint))
}

/// Whether the sysroot holds the target's `core` (every target's standard library has one;
/// the host's `lib/rustlib/<host>/` exists even without it, for the compiler's own tools).
fn has_standard_library(sysroot: &Path, target: &str) -> bool {
    let dir = sysroot.join("lib/rustlib").join(target).join("lib");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libcore-") && name.ends_with(".rlib")
        })
    })
}

fn managed_by_rustup(sysroot: &Path, env: &dyn Environment) -> bool {
    let home = env.var(vars::RUSTUP_HOME).map(PathBuf::from).or_else(|| {
        env.var(vars::HOME)
            .map(|home| Path::new(&home).join(".rustup"))
    });
    let Some(home) = home else {
        return false;
    };
    let toolchains = home.join("toolchains");
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_owned());
    canonical(sysroot).starts_with(canonical(&toolchains))
}

/// cargo runs `cargo zigbuild` as `cargo-zigbuild` from `$CARGO_HOME/bin` or PATH.
fn cargo_zigbuild(targets: &[&str], env: &dyn Environment) -> Option<Hinted> {
    let cargo_home = env.var(vars::CARGO_HOME).map(PathBuf::from).or_else(|| {
        env.var(vars::HOME)
            .map(|home| Path::new(&home).join(".cargo"))
    });
    let mut dirs: Vec<PathBuf> = cargo_home.iter().map(|home| home.join("bin")).collect();
    dirs.extend(path_dirs(env));
    if dirs
        .iter()
        .any(|dir| executable_in(dir, "cargo-zigbuild").is_some())
    {
        return None;
    }
    let looked = match &cargo_home {
        Some(home) => format!("in {} and on PATH", home.join("bin").display()),
        None => "on PATH".to_owned(),
    };
    Some(Hinted::new(
        format!(
            "cargo-zigbuild is not installed (looked {looked}); it builds {} with zig",
            targets.join(", ")
        ),
        "cargo install --locked cargo-zigbuild",
    ))
}

/// cargo-zigbuild takes `python3 -m ziglang` (the `ziglang` package) first and then `zig`
/// (`CARGO_ZIGBUILD_ZIG_PATH`, else on PATH), each if it answers `version` with zig 0.9 or
/// newer. Either will do, so the `zig` binary is asked first (it answers faster than Python).
fn zig(targets: &[&str], env: &dyn Environment) -> Option<Hinted> {
    let mut tried = Vec::new();
    let named = env.var(vars::CARGO_ZIGBUILD_ZIG_PATH);
    let zig = named.clone().unwrap_or_else(|| "zig".to_owned());
    match find_program(&zig, env) {
        Some(program) => match zig_version(Command::new(&program).arg("version")) {
            Ok(()) => return None,
            Err(why) => tried.push(format!("`{} version` {why}", program.display())),
        },
        None if named.is_some() => tried.push(format!(
            "{} names `{zig}`: {}",
            vars::CARGO_ZIGBUILD_ZIG_PATH,
            not_found(&zig)
        )),
        None => tried.push("no `zig` on PATH".to_owned()),
    }
    let python = env
        .var(vars::CARGO_ZIGBUILD_PYTHON_PATH)
        .unwrap_or_else(|| "python3".to_owned());
    match find_program(&python, env) {
        Some(program) => {
            match zig_version(Command::new(&program).args(["-m", "ziglang", "version"])) {
                Ok(()) => return None,
                Err(why) => tried.push(format!("`{python} -m ziglang version` {why}")),
            }
        }
        None => tried.push(format!("no `{python}` on PATH to run `-m ziglang`")),
    }
    Some(Hinted::new(
        format!(
            "zig is not installed ({}); cargo-zigbuild needs it to build {}",
            tried.join("; "),
            targets.join(", ")
        ),
        format!(
            "python3 -m pip install ziglang (cargo-zigbuild runs `python3 -m ziglang`), or put zig on PATH or name it in {}",
            vars::CARGO_ZIGBUILD_ZIG_PATH
        ),
    ))
}

/// Ok when the command prints a zig version cargo-zigbuild accepts; else why not.
fn zig_version(command: &mut Command) -> Result<(), String> {
    let text = probe(command)?;
    match Version::parse(&text) {
        Ok(version) if version >= OLDEST_ZIG => Ok(()),
        Ok(version) => Err(format!(
            "says zig {version}, older than {OLDEST_ZIG}, the oldest cargo-zigbuild takes"
        )),
        Err(_) => Err(format!("printed `{}`, not a zig version", shorten(&text))),
    }
}

/// Runs a probe and returns the first line it printed, or why it failed (its first line of
/// errors). The tools are this machine's; their output is still cut to a line.
fn probe(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("could not run: {error}"))?;
    let first_line = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(shorten)
            .unwrap_or_default()
    };
    if !output.status.success() {
        let said = first_line(&output.stderr);
        return Err(if said.is_empty() {
            format!("failed ({})", output.status)
        } else {
            format!("failed ({}): {said}", output.status)
        });
    }
    Ok(first_line(&output.stdout))
}

/// At most 200 characters of a tool's line.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

fn path_dirs(env: &dyn Environment) -> Vec<PathBuf> {
    env.var(vars::PATH)
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

/// A program as the tools find it: a name with a `/` is a path, other names are looked up
/// on PATH.
fn find_program(name: &str, env: &dyn Environment) -> Option<PathBuf> {
    if is_path(name) {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    path_dirs(env)
        .iter()
        .find_map(|dir| executable_in(dir, name))
}

/// Why [`find_program`] found nothing.
fn not_found(name: &str) -> &'static str {
    if is_path(name) {
        "not an executable file"
    } else {
        "not found on PATH"
    }
}

fn is_path(name: &str) -> bool {
    name.contains('/') || name.contains(std::path::MAIN_SEPARATOR)
}

/// `dir/name`, or on Windows `dir/name.exe`, when it is an executable file.
fn executable_in(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        name.to_owned(),
        format!("{name}{}", std::env::consts::EXE_SUFFIX),
    ]
    .into_iter()
    .map(|file| dir.join(file))
    .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use castoff_test_support::workspace::repository_root;
    use expect_test::expect;

    use super::*;

    const FOREIGN: &str = "riscv64gc-unknown-linux-gnu";

    fn host() -> &'static str {
        let host = crate::cargo::host_target().expect("rustc -vV names the host");
        Box::leak(host.into_boxed_str())
    }

    fn need(target: &'static str, zigbuild: bool) -> Need {
        Need { target, zigbuild }
    }

    /// A fresh, empty directory of this test.
    fn scratch(name: &str) -> PathBuf {
        let dir = repository_root()
            .join("target/castoff-test-scratch/toolchain")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// This machine's compiler itself (not rustup's proxy, which needs rustup's home): a
    /// test's environment can then leave PATH and HOME empty.
    fn real_rustc() -> PathBuf {
        let sysroot = probe(Command::new("rustc").args(["--print", "sysroot"]))
            .expect("rustc --print sysroot");
        Path::new(&sysroot).join("bin/rustc")
    }

    fn environment(pairs: &[(&str, &Path)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.display().to_string()))
            .collect()
    }

    #[test]
    fn nothing_to_build_asks_nothing() {
        let env = environment(&[(vars::RUSTC, Path::new("/nonexistent/rustc"))]);
        assert!(check_in(&[], &env).is_empty());
    }

    #[test]
    fn an_installed_standard_library_passes_and_a_missing_one_names_rustup_target_add() {
        let problems = check(&[need(host(), false), need(FOREIGN, false)]);
        let [problem] = &problems[..] else {
            panic!("expected one problem, got {problems:?}");
        };
        let message = problem.to_string();
        // Only the missing target is named: the list ends at "is not installed".
        assert!(
            message.starts_with(&format!(
                "the Rust standard library for {FOREIGN} is not installed (the sysroot of `rustc`"
            )),
            "{message}"
        );
        // The machines castoff is developed and tested on get Rust from rustup.
        assert_eq!(
            problem.hint(),
            format!("rustup target add {FOREIGN}"),
            "(is this machine's Rust installed by rustup?)"
        );
        assert!(check(&[need(host(), false)]).is_empty());
    }

    #[test]
    fn with_nothing_on_path_every_missing_piece_is_named_at_once() {
        let scratch = scratch("empty-path");
        let empty = scratch.join("empty");
        fs::create_dir_all(&empty).unwrap();
        let rustc = real_rustc();
        let env = environment(&[
            (vars::PATH, &empty),
            (vars::HOME, &empty),
            (vars::RUSTC, &rustc),
        ]);
        let needs = [need(host(), true), need(FOREIGN, true), need(host(), true)];
        let problems = check_in(&needs, &env);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let error = crate::hint::all_at_once("cannot build", problems).expect_err("three problems");
        let sysroot = rustc.parent().unwrap().parent().unwrap();
        let shown = crate::cli::render_error(&error)
            .replace(&rustc.display().to_string(), "<rustc>")
            .replace(&sysroot.display().to_string(), "<sysroot>")
            .replace(&empty.display().to_string(), "<empty>")
            .replace(host(), "<host>");
        expect![[r#"
            error: cannot build: 3 problems found before any work started:
              the Rust standard library for riscv64gc-unknown-linux-gnu is not installed (the sysroot of `<rustc>`, <sysroot>, has no lib/rustlib/<target>/lib)
                  hint: this Rust toolchain was not installed by rustup: add the standard library for riscv64gc-unknown-linux-gnu the way it was installed, or install Rust with rustup (https://rustup.rs) and run `rustup target add riscv64gc-unknown-linux-gnu` to get it
              cargo-zigbuild is not installed (looked in <empty>/.cargo/bin and on PATH); it builds <host>, riscv64gc-unknown-linux-gnu with zig
                  hint: cargo install --locked cargo-zigbuild
              zig is not installed (no `zig` on PATH; no `python3` on PATH to run `-m ziglang`); cargo-zigbuild needs it to build <host>, riscv64gc-unknown-linux-gnu
                  hint: python3 -m pip install ziglang (cargo-zigbuild runs `python3 -m ziglang`), or put zig on PATH or name it in CARGO_ZIGBUILD_ZIG_PATH
            hint: docs/troubleshooting.md lists castoff's errors by message; if this one is not there, please report it"#]]
        .assert_eq(&shown);
    }

    #[test]
    fn a_zig_that_does_not_answer_and_a_wrong_zig_path_are_named() {
        let scratch = scratch("broken-zig");
        let bin = scratch.join("bin");
        fs::create_dir_all(&bin).unwrap();
        // A `zig` that exits 1 and prints nothing: a broken install.
        std::os::unix::fs::symlink("/bin/false", bin.join("zig")).unwrap();
        let rustc = real_rustc();
        let env = environment(&[(vars::PATH, &bin), (vars::RUSTC, &rustc)]);
        let message = |env: &BTreeMap<String, String>| {
            let problems = check_in(&[need(host(), true)], env);
            let zig = problems
                .iter()
                .find(|problem| problem.to_string().starts_with("zig "))
                .unwrap_or_else(|| panic!("no zig problem in {problems:?}"));
            zig.to_string().replace(&bin.display().to_string(), "<bin>")
        };
        assert_eq!(
            message(&env),
            format!(
                "zig is not installed (`<bin>/zig version` failed (exit status: 1); no `python3` on PATH to run `-m ziglang`); cargo-zigbuild needs it to build {}",
                host()
            )
        );
        let mut named = env.clone();
        named.insert(
            vars::CARGO_ZIGBUILD_ZIG_PATH.to_owned(),
            "/nonexistent/zig".to_owned(),
        );
        assert!(
            message(&named).starts_with(
                "zig is not installed (CARGO_ZIGBUILD_ZIG_PATH names `/nonexistent/zig`: not an executable file; "
            ),
            "{}",
            message(&named)
        );
    }

    #[test]
    fn a_compiler_that_is_not_there_is_named() {
        let env = environment(&[(vars::RUSTC, Path::new("/nonexistent/rustc"))]);
        let problems = check_in(&[need(FOREIGN, false)], &env);
        let [problem] = &problems[..] else {
            panic!("expected one problem, got {problems:?}");
        };
        assert_eq!(
            problem.to_string(),
            "the Rust compiler `/nonexistent/rustc` is not installed (not an executable file)"
        );
    }
}
