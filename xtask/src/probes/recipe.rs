//! How castoff's health probe (`crates/castoff-oci/probe/probe.c`) becomes the seven
//! committed binaries of `crates/castoff-oci/probe/bin/`: one zig, one set of flags, one
//! `-target` per image architecture. Byte-identical output from the same zig is the point:
//! `cargo xtask probes --check` and castoff-oci's live test `live::probe` rebuild them and
//! compare.
//!
//! Plain `std`, no crate of the workspace: the live test compiles this very file (through
//! `#[path]`), so what the suite checks is what the chore builds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The zig the binaries are built with: the `ziglang` package the harness pins
/// (`ZIGLANG_VERSION` in `xtask/src/harness/install.rs`; a unit test holds them equal).
/// Another zig version makes other bytes, so a build with any other zig is refused.
pub(crate) const ZIG_VERSION: &str = "0.17.1";

/// The source, relative to the repository root; zig runs in its directory and is handed
/// the bare file name, so no path of the build machine can reach the binary.
pub(crate) const SOURCE: &str = "crates/castoff-oci/probe/probe.c";

/// The committed binaries, relative to the repository root: one file per build, named as
/// in [`BUILDS`], nothing else.
pub(crate) const BIN_DIR: &str = "crates/castoff-oci/probe/bin";

/// Flags of every build: optimized for size, static (musl, which zig bundles for every
/// target), stripped, without unwind tables or a build id; unused sections dropped; every
/// warning an error.
pub(crate) const FLAGS: &[&str] = &[
    "-Os",
    "-static",
    "-s",
    "-Wl,--build-id=none",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wl,--gc-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
];

/// One build: the binary's file name (the OCI architecture, with the variant where the
/// architecture needs one), zig's target and CPU. An explicit `-target` gives zig's
/// baseline CPU for it, never the build machine's; it is spelled out all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Build {
    pub(crate) file: &'static str,
    pub(crate) zig_target: &'static str,
    pub(crate) cpu: &'static str,
}

/// The seven Linux image architectures castoff builds images for.
pub(crate) const BUILDS: &[Build] = &[
    Build {
        file: "amd64",
        zig_target: "x86_64-linux-musl",
        cpu: "baseline",
    },
    Build {
        file: "arm64",
        zig_target: "aarch64-linux-musl",
        cpu: "baseline",
    },
    // Rust's armv7 baseline (armv7-unknown-linux-musleabihf): ARMv7-A, VFPv3-D16, Thumb-2.
    Build {
        file: "arm-v7",
        zig_target: "arm-linux-musleabihf",
        cpu: "generic+v7a+vfp3d16+thumb2",
    },
    // zig's x86 baseline is pentium4 (SSE2), Rust's i686 baseline.
    Build {
        file: "386",
        zig_target: "x86-linux-musl",
        cpu: "baseline",
    },
    Build {
        file: "riscv64",
        zig_target: "riscv64-linux-musl",
        cpu: "baseline",
    },
    Build {
        file: "ppc64le",
        zig_target: "powerpc64le-linux-musl",
        cpu: "baseline",
    },
    Build {
        file: "s390x",
        zig_target: "s390x-linux-musl",
        cpu: "baseline",
    },
];

impl Build {
    /// zig's arguments after `cc`, up to `-o`.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-target".to_owned(),
            self.zig_target.to_owned(),
            format!("-mcpu={}", self.cpu),
        ];
        args.extend(FLAGS.iter().map(|flag| (*flag).to_owned()));
        args
    }

    /// The command line as the README shows it.
    pub(crate) fn command_line(&self) -> String {
        let source = Path::new(SOURCE)
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        format!(
            "zig cc {} -o bin/{} {source}",
            self.args().join(" "),
            self.file
        )
    }
}

/// What `zig version` says.
pub(crate) fn zig_version(zig: &Path) -> Result<String, String> {
    let output = Command::new(zig)
        .arg("version")
        .output()
        .map_err(|error| format!("cannot run {} version: {error}", zig.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} version failed ({}): {}",
            zig.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Builds every binary of [`BUILDS`] into `out` (created if needed) with `zig`, whose caches
/// go to `zig_cache`. Refuses a zig other than [`ZIG_VERSION`].
pub(crate) fn build_all(
    zig: &Path,
    zig_cache: &Path,
    workspace: &Path,
    out: &Path,
) -> Result<(), String> {
    let version = zig_version(zig)?;
    if version != ZIG_VERSION {
        return Err(format!(
            "{} is zig {version}, the probes are built with zig {ZIG_VERSION}: their bytes \
             depend on it (if the harness's pin moved, update ZIG_VERSION in \
             xtask/src/probes/recipe.rs and run `cargo xtask probes`)",
            zig.display()
        ));
    }
    let source = workspace.join(SOURCE);
    let (Some(source_dir), Some(source_name)) = (source.parent(), source.file_name()) else {
        return Err(format!("{} has no directory", source.display()));
    };
    fs::create_dir_all(out).map_err(|error| format!("creating {}: {error}", out.display()))?;
    let out = std::path::absolute(out)
        .map_err(|error| format!("resolving {}: {error}", out.display()))?;
    for build in BUILDS {
        let output = Command::new(zig)
            .arg("cc")
            .args(build.args())
            .arg("-o")
            .arg(out.join(build.file))
            .arg(source_name)
            .current_dir(source_dir)
            .env("ZIG_GLOBAL_CACHE_DIR", zig_cache)
            .env("ZIG_LOCAL_CACHE_DIR", zig_cache)
            .output()
            .map_err(|error| format!("cannot run {}: {error}", zig.display()))?;
        if !output.status.success() {
            return Err(format!(
                "building {} ({}) failed ({}):\n{}{}",
                build.file,
                build.command_line(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}

/// Each committed binary that differs from its rebuild in `built`, as a line naming it and
/// how (missing, sizes, first differing byte), plus any file of [`BIN_DIR`] no build makes.
/// Empty when everything is byte-identical.
pub(crate) fn differences(workspace: &Path, built: &Path) -> Result<Vec<String>, String> {
    let committed_dir = workspace.join(BIN_DIR);
    let mut differences = Vec::new();
    for build in BUILDS {
        let committed = committed_dir.join(build.file);
        let rebuilt = fs::read(built.join(build.file)).map_err(|error| {
            format!(
                "reading the rebuilt {}: {error}",
                built.join(build.file).display()
            )
        })?;
        let committed = match fs::read(&committed) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                differences.push(format!("{}: not committed", build.file));
                continue;
            }
            Err(error) => return Err(format!("reading {}: {error}", committed.display())),
        };
        if committed != rebuilt {
            let first = committed
                .iter()
                .zip(&rebuilt)
                .position(|(a, b)| a != b)
                .unwrap_or(committed.len().min(rebuilt.len()));
            differences.push(format!(
                "{}: committed {} bytes, rebuilt {} bytes, first difference at byte {first}",
                build.file,
                committed.len(),
                rebuilt.len()
            ));
        }
    }
    let entries = fs::read_dir(&committed_dir)
        .map_err(|error| format!("reading {}: {error}", committed_dir.display()))?;
    let mut strays: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !BUILDS.iter().any(|build| build.file == name))
        .collect();
    strays.sort();
    differences.extend(
        strays
            .into_iter()
            .map(|name| format!("{name}: committed, but no build makes it")),
    );
    Ok(differences)
}

/// Rebuilds every binary into `scratch` (emptied first, removed afterwards) and compares:
/// the lines of [`differences`].
pub(crate) fn check(
    zig: &Path,
    zig_cache: &Path,
    workspace: &Path,
    scratch: &Path,
) -> Result<Vec<String>, String> {
    if scratch.exists() {
        fs::remove_dir_all(scratch)
            .map_err(|error| format!("emptying {}: {error}", scratch.display()))?;
    }
    let result = build_all(zig, zig_cache, workspace, scratch)
        .and_then(|()| differences(workspace, scratch));
    let _ = fs::remove_dir_all(scratch);
    result
}

/// The sizes of the committed binaries, in [`BUILDS`] order.
pub(crate) fn committed_sizes(workspace: &Path) -> Result<Vec<(&'static str, u64)>, String> {
    BUILDS
        .iter()
        .map(|build| {
            let path: PathBuf = workspace.join(BIN_DIR).join(build.file);
            fs::metadata(&path)
                .map(|metadata| (build.file, metadata.len()))
                .map_err(|error| format!("{}: {error}", path.display()))
        })
        .collect()
}
