//! The build's preflight against the real zig tools the harness installs (`ziglang` from
//! PyPI, cargo-zigbuild from crates.io): with them on PATH the check finds nothing missing,
//! and `cargo zigbuild` with a glibc suffix gives a binary whose glibc floor is that suffix.

use std::path::{Path, PathBuf};
use std::process::Command;

use castoff::toolchain::{self, Need, vars};
use castoff_archive::elf::ElfFile;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{copy_fixture, output_text};

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

    env.figure("toolchain: the harness's zig tools pass the preflight".to_owned());
}

/// `build = "zigbuild"` with `glibc = "2.17"` through `castoff dist`: the shipped binary needs
/// no glibc symbol newer than 2.17, the wheel is tagged manylinux_2_17 and auditwheel agrees,
/// and the binary runs here (a newer glibc) as on any glibc from 2.17 on.
#[test]
fn zigbuild_with_a_glibc_floor_ships_a_manylinux_2_17_wheel() {
    let env = TestEnv::get();
    let scratch = env.scratch_dir(&format!("toolchain-zigbuild-{}", std::process::id()));
    let workspace = scratch.join("workspace");
    copy_fixture("build-settings", &workspace);
    let manifest = workspace.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "python = { name = \"finder\" }\n",
        "python = { name = \"finder\" }\nbuild = \"zigbuild\"\nglibc = \"2.17\"\n",
    );
    std::fs::write(&manifest, text).unwrap();
    let castoff = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_castoff"))
            .args(args)
            .arg("--manifest-path")
            .arg(&manifest)
            .env("PATH", env.path_with_zig())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("castoff runs")
    };
    let plan = castoff(&["plan"]);
    assert!(plan.status.success(), "{}", output_text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout)
            .contains("    build         zigbuild (glibc 2.17), profile release\n"),
        "{}",
        output_text(&plan)
    );
    let dist_dir = scratch.join("dist");
    let dist = castoff(&["dist", "--dist-dir", dist_dir.to_str().unwrap()]);
    assert!(dist.status.success(), "{}", output_text(&dist));

    // The wheel's name carries the floor, and auditwheel reads the same from the binary.
    let wheel = dist_dir
        .join("python/finder-1.4.0-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl");
    assert!(wheel.is_file(), "{}", output_text(&dist));
    let shown = Command::new(env.tool("auditwheel"))
        .arg("show")
        .arg(&wheel)
        .output()
        .expect("auditwheel runs");
    assert!(shown.status.success(), "{}", output_text(&shown));
    let shown = String::from_utf8_lossy(&shown.stdout);
    let flat = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("consistent with the following platform tag: \"manylinux_2_17_x86_64\""),
        "{shown}"
    );

    // The binary dist packaged (the one the archive ships).
    let binary = workspace.join("target").join(HOST).join("release/finder");
    let data = std::fs::read(&binary).expect("the built binary");
    let newest = newest_glibc_minor(&data).expect("a dynamic glibc binary needs GLIBC_2.x");
    assert!(
        newest <= 17,
        "{} needs GLIBC_2.{newest}, newer than the 2.17 floor",
        binary.display()
    );
    let run = Command::new(&binary).output().expect("the binary runs");
    assert!(run.status.success(), "{}", output_text(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "finder 1.4.0\n");
    env.figure(format!(
        "toolchain: castoff dist with build = zigbuild, glibc = 2.17: the binary needs GLIBC_2.{newest}, auditwheel says manylinux_2_17_x86_64"
    ));
}
