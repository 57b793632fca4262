//! `cargo xtask probes`: builds castoff's health probe (`crates/castoff-oci/probe/probe.c`)
//! for the seven Linux image architectures with the harness's zig, into
//! `crates/castoff-oci/probe/bin/`, the binaries castoff embeds and commits.
//! `cargo xtask probes --check` builds them into a temporary directory instead and fails
//! naming every binary that differs from the committed one. The recipe is `probes/recipe.rs`.
//!
//! The zig is the one `cargo xtask test` installs into the castoff-test cache
//! (`${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test/ziglang-<version>/ziglang/zig`, zig's own
//! cache beside it in `zig-cache/`); this command does not install it.

mod recipe;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask probes [--check]

  (no flag)  build crates/castoff-oci/probe/probe.c for amd64, arm64, arm/v7, 386, riscv64,
             ppc64le and s390x with the harness's zig into crates/castoff-oci/probe/bin/
  --check    build into a temporary directory and fail naming every binary that differs
             from the committed one

The zig is the castoff-test cache's (`cargo xtask test --serve` installs it).";

pub(crate) fn main(args: &[OsString]) -> ExitCode {
    let check = match args
        .iter()
        .map(|arg| arg.to_str())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => false,
        [Some("--check")] => true,
        [Some("-h" | "--help")] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("cargo xtask probes: unexpected arguments {args:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cargo xtask probes: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Whether everything went as it should (`--check`: nothing differs).
fn run(check: bool) -> Result<bool, String> {
    let workspace = workspace()?;
    let (zig, zig_cache) = harness_zig()?;
    let clock = std::time::Instant::now();
    if check {
        let scratch = std::env::temp_dir().join(format!("castoff-probes-{}", std::process::id()));
        let differences = recipe::check(&zig, &zig_cache, &workspace, &scratch)?;
        if differences.is_empty() {
            println!(
                "probes: the {} binaries in {} are byte-identical to a rebuild with zig {} ({:.1} s)",
                recipe::BUILDS.len(),
                recipe::BIN_DIR,
                recipe::ZIG_VERSION,
                clock.elapsed().as_secs_f64()
            );
            return Ok(true);
        }
        println!(
            "probes: {} differs from a rebuild with zig {} (`cargo xtask probes` rebuilds it; commit the result):",
            recipe::BIN_DIR,
            recipe::ZIG_VERSION
        );
        for line in &differences {
            println!("    {line}");
        }
        return Ok(false);
    }
    let out = workspace.join(recipe::BIN_DIR);
    recipe::build_all(&zig, &zig_cache, &workspace, &out)?;
    println!(
        "probes: built with zig {} into {} ({:.1} s)",
        recipe::ZIG_VERSION,
        recipe::BIN_DIR,
        clock.elapsed().as_secs_f64()
    );
    for (build, (file, size)) in recipe::BUILDS
        .iter()
        .zip(recipe::committed_sizes(&workspace)?)
    {
        println!("    {file:<8} {size:>6} bytes  {}", build.zig_target);
    }
    Ok(true)
}

fn workspace() -> Result<PathBuf, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent directory".to_owned())
}

/// The harness's zig and zig's cache, where `cargo xtask test` installs them: the castoff-test
/// cache `${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test/` (a relative `XDG_CACHE_HOME` is
/// ignored, as the XDG spec says and the harness does).
fn harness_zig() -> Result<(PathBuf, PathBuf), String> {
    let base = match std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
    {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".cache"))
            .ok_or("neither XDG_CACHE_HOME nor HOME is set: the harness's zig lives in ${XDG_CACHE_HOME:-$HOME/.cache}/castoff-test")?,
    };
    let cache = base.join("castoff-test");
    let zig = cache
        .join(format!("ziglang-{}", recipe::ZIG_VERSION))
        .join("ziglang/zig");
    if !zig.is_file() {
        return Err(format!(
            "zig {} is not installed ({} is missing): `cargo xtask test --serve` installs it (stop it with Ctrl-C once it serves)",
            recipe::ZIG_VERSION,
            zig.display()
        ));
    }
    Ok((zig, cache.join("zig-cache")))
}

#[cfg(test)]
mod tests {
    use super::recipe::{BUILDS, Build, ZIG_VERSION};

    /// The probes are built with the zig the harness installs: its pin in install.rs.
    #[test]
    fn the_probes_zig_is_the_harness_s_pin() {
        let install = include_str!("harness/install.rs");
        assert!(
            install.contains(&format!("const ZIGLANG_VERSION: &str = \"{ZIG_VERSION}\";")),
            "xtask/src/probes/recipe.rs builds with zig {ZIG_VERSION}, which is not the harness's ZIGLANG_VERSION: update it and run `cargo xtask probes`"
        );
    }

    #[test]
    fn every_build_is_static_musl_and_named_once() {
        let files: Vec<&str> = BUILDS.iter().map(|build| build.file).collect();
        assert_eq!(
            files,
            [
                "amd64", "arm64", "arm-v7", "386", "riscv64", "ppc64le", "s390x"
            ]
        );
        for build in BUILDS {
            assert!(build.zig_target.contains("-linux-musl"), "{build:?}");
            let args = build.args();
            for flag in ["-static", "-s", "-Os", "-Wl,--build-id=none"] {
                assert!(args.iter().any(|arg| arg == flag), "{build:?}: {flag}");
            }
        }
        let arm = BUILDS
            .iter()
            .find(|build| build.file == "arm-v7")
            .map(Build::command_line);
        assert_eq!(
            arm.as_deref(),
            Some(
                "zig cc -target arm-linux-musleabihf -mcpu=generic+v7a+vfp3d16+thumb2 -Os -static -s -Wl,--build-id=none -fno-asynchronous-unwind-tables -fno-unwind-tables -ffunction-sections -fdata-sections -Wl,--gc-sections -Wall -Wextra -Werror -o bin/arm-v7 probe.c"
            )
        );
    }
}
