//! The platform probe: `tests/fixtures/platform-probe/greeter.c` built by zig for every target
//! of `castoff_test_support::platforms::PROBE_TARGETS`, into the castoff-test cache, laid out
//! as `castoff dist --prebuilt-dir` reads it:
//! `CACHE/platform-probe-<key>/prebuilt/<rust triple>/greeter[.exe]`. The key is a digest of
//! the source, the zig version and the build recipe, so a change to any of them builds anew
//! and a warm cache costs one `stat`. zig's first build of each libc takes a minute or more
//! (musl, MinGW); its global cache in `CACHE/zig-cache` keeps them for the next recipe.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use castoff_archive::digest::{hex, sha256};
use castoff_test_support::platforms::{PROBE_SOURCE, PROBE_TARGETS, ProbeTarget};

use super::install::cached;
use super::process::run_logged;

/// Flags of every build. `-s`: stripped, as released binaries are; `-O2` as Rust's release.
const FLAGS: &[&str] = &["-O2", "-s", "-Wall", "-Wextra"];
/// Raised when the layout or the meaning of the recipe changes.
const RECIPE_FORMAT: u32 = 1;

/// Builds (or finds) the probe; returns the prebuilt directory and whether it was built now.
pub(crate) fn build(
    workspace: &Path,
    cache: &Path,
    zig: &Path,
    zig_version: &str,
    log: &Path,
) -> Result<(PathBuf, bool)> {
    let source = workspace.join(PROBE_SOURCE);
    let code = fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let recipe = recipe(&code, zig_version);
    let key = &hex(&sha256(recipe.as_bytes()))[..16];
    let zig_cache = cache.join("zig-cache");
    let (dir, built) = cached(
        cache,
        &format!("platform-probe-{key}"),
        Path::new("recipe.txt"),
        |temp| {
            let _ = fs::remove_file(log);
            let mut times = String::new();
            for target in PROBE_TARGETS {
                let clock = Instant::now();
                let out = temp.join("prebuilt").join(target.triple);
                fs::create_dir_all(&out)?;
                let mut command = Command::new(zig);
                command
                    .arg("cc")
                    .args(zig_args(target))
                    .arg("-o")
                    .arg(out.join(target.file_name()))
                    .arg(&source)
                    .env("ZIG_GLOBAL_CACHE_DIR", &zig_cache)
                    .env("ZIG_LOCAL_CACHE_DIR", &zig_cache);
                run_logged(command, log)
                    .with_context(|| format!("building the probe for {}", target.triple))?;
                let _ = writeln!(
                    times,
                    "{} {:.1} s",
                    target.triple,
                    clock.elapsed().as_secs_f64()
                );
            }
            fs::write(temp.join("build-times.txt"), times)?;
            // Last: its presence marks a complete build.
            fs::write(temp.join("recipe.txt"), &recipe)?;
            Ok(())
        },
    )?;
    Ok((dir.join("prebuilt"), built))
}

/// zig's arguments for one build, the triple passed in for `greeter platform`.
fn zig_args(target: &ProbeTarget) -> Vec<String> {
    let mut args = vec!["-target".to_owned(), target.zig_target.to_owned()];
    args.extend(target.zig_args.iter().map(|arg| (*arg).to_owned()));
    args.extend(FLAGS.iter().map(|flag| (*flag).to_owned()));
    args.push(format!("-DGREETER_TARGET=\"{}\"", target.triple));
    args
}

/// Everything the binaries depend on, as text: the key is its digest, and it is kept beside
/// the binaries to say what they are.
fn recipe(code: &[u8], zig_version: &str) -> String {
    let mut recipe = format!(
        "platform probe, recipe format {RECIPE_FORMAT}\nzig {zig_version}\n{PROBE_SOURCE} sha256 {}\n",
        hex(&sha256(code))
    );
    for target in PROBE_TARGETS {
        let _ = writeln!(
            recipe,
            "{}/{}: zig cc {}",
            target.triple,
            target.file_name(),
            zig_args(target).join(" ")
        );
    }
    recipe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_names_every_build_and_changes_with_the_source_and_zig() {
        let recipe = recipe(b"int main(void) { return 0; }\n", "0.17.1");
        assert!(recipe.contains(
            "aarch64-unknown-linux-musl/greeter: zig cc -target aarch64-linux-musl -O2 -s -Wall -Wextra -DGREETER_TARGET=\"aarch64-unknown-linux-musl\""
        ));
        assert!(
            recipe
                .contains("x86_64-pc-windows-msvc/greeter.exe: zig cc -target x86_64-windows-gnu")
        );
        assert!(recipe.contains("-mcpu=generic+v7a+vfp3d16+thumb2"));
        assert_ne!(
            recipe,
            super::recipe(b"int main(void) { return 1; }\n", "0.17.1")
        );
        assert_ne!(
            recipe,
            super::recipe(b"int main(void) { return 0; }\n", "0.17.2")
        );
    }
}
