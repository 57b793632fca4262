//! The build's preflight against the real zig tools the harness installs (`ziglang` from
//! PyPI, cargo-zigbuild from crates.io): with them on PATH the check finds nothing missing,
//! and `cargo zigbuild` with a glibc suffix gives a binary whose glibc floor is that suffix.

use std::path::{Path, PathBuf};
use std::process::Command;

use castoff::toolchain::{self, Need, vars};
use castoff_archive::elf::ElfFile;
use castoff_plan::Target;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text};
use castoff_wheel::BinaryPlatform;

const HOST: &str = "x86_64-unknown-linux-gnu";

/// The newest `GLIBC_2.N` the binary needs, as `N` (`None` for a binary that needs none).
fn newest_glibc_minor(data: &[u8]) -> Option<u32> {
    let elf = ElfFile::parse(data)
        .expect("a readable ELF")
        .expect("an ELF file");
    let linking = elf.linking().expect("the dynamic section");
    linking
        .versions
        .iter()
        .filter_map(|(_, version)| version.strip_prefix("GLIBC_2."))
        .filter_map(|minor| minor.split('.').next()?.parse::<u32>().ok())
        .max()
}

/// This machine's compiler itself, so an environment can hold nothing but `zig-bin` on PATH.
fn real_rustc() -> PathBuf {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    assert!(output.status.success(), "{}", output_text(&output));
    Path::new(String::from_utf8_lossy(&output.stdout).trim()).join("bin/rustc")
}

#[test]
fn the_harness_zig_tools_pass_the_check_and_build_for_glibc_2_17() {
    let env = TestEnv::get();
    let needs = [Need {
        target: HOST,
        zigbuild: true,
    }];

    // The harness's environment (zig-bin first on PATH): nothing missing.
    let problems = toolchain::check(&needs);
    assert!(problems.is_empty(), "{problems:?}");
    // zig-bin alone is enough: PATH holds nothing else, and no cargo home or Python.
    let empty = env.scratch_dir(&format!("toolchain-empty-{}", std::process::id()));
    let only_zig_bin = [
        (vars::PATH, env.zig_bin.display().to_string()),
        (vars::HOME, empty.display().to_string()),
        (vars::RUSTC, real_rustc().display().to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect::<std::collections::BTreeMap<_, _>>();
    let problems = toolchain::check_in(&needs, &only_zig_bin);
    assert!(problems.is_empty(), "{problems:?}");

    let scratch = env.scratch_dir(&format!("toolchain-zigbuild-{}", std::process::id()));
    let workspace = scratch.join("workspace");
    copy_fixture("single-cli", &workspace);
    let target_dir = scratch.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["zigbuild", "--release", "--locked", "--target"])
        .arg(format!("{HOST}.2.17"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&workspace)
        .env("PATH", env.path_with_zig())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo zigbuild runs");
    assert!(
        output.status.success(),
        "cargo zigbuild failed:\n{}",
        output_text(&output)
    );

    let binary = target_dir.join(HOST).join("release/greeter");
    let data = std::fs::read(&binary).expect("the built binary");
    let newest = newest_glibc_minor(&data).expect("a dynamic glibc binary needs GLIBC_2.x");
    assert!(
        newest <= 17,
        "{} needs GLIBC_2.{newest}, newer than the 2.17 floor",
        binary.display()
    );
    let target: &'static Target = HOST.parse().expect("a known target");
    let facts = castoff_wheel::platform::inspect_binary(&data[..], &binary, target)
        .expect("a binary the wheel builder takes");
    let BinaryPlatform::Manylinux { glibc_minor } = facts.platform else {
        panic!("expected a dynamic glibc binary, got {:?}", facts.platform);
    };
    assert_eq!(
        castoff_wheel::platform::platform_tags(&[facts.platform], target),
        vec![
            "manylinux2014_x86_64".to_owned(),
            "manylinux_2_17_x86_64".to_owned()
        ],
        "glibc minor {glibc_minor}"
    );

    // It runs here (a newer glibc), as it would on any glibc from 2.17 on.
    let run = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(run.status.success(), "{}", output_text(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "greeter 0.3.1\n");
    env.figure(format!(
        "toolchain: cargo zigbuild --target {HOST}.2.17 needs GLIBC_2.{newest} (manylinux_2_{glibc_minor})"
    ));
}
