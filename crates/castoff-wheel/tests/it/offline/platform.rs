//! Platform tags read from binaries: the fixture built here (dynamic and static), and
//! synthesized ELF / Mach-O / PE files for the platforms that cannot be built here, with every
//! refusal's message.

use std::path::Path;

use crate::support::{
    self, CPU_TYPE_ARM64, CPU_TYPE_X86_64, Elf, IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_MACHINE_ARM64,
    IMAGE_FILE_MACHINE_I386, MinimumOs, Variant, fat, greeter_binary, target,
};
use castoff_wheel::platform::{
    BinaryFacts, BinaryPlatform, StaticLinuxTags, inspect_binary, platform_tags,
};
use expect_test::{Expect, expect};

const MH_EXECUTE: u32 = 2;
const MH_DYLIB: u32 = 6;

/// Inspects `bytes` as the binary of `triple` and renders the outcome: the tags (and a debug
/// info note), or the error message.
fn check(bytes: &[u8], triple: &str, expect: Expect) {
    let target = target(triple);
    let rendered = match inspect_binary(bytes, Path::new("/dist/bin/tool"), target) {
        Ok(BinaryFacts {
            platform,
            has_debug_info,
        }) => {
            let mut text = platform_tags(&[platform], target, StaticLinuxTags::BothLibcs).join(" ");
            if has_debug_info {
                text.push_str(" (debug info)");
            }
            text
        }
        Err(error) => castoff_test_support::with_hint(&error, error.hint()),
    };
    expect.assert_eq(&rendered);
}

#[test]
fn host_binary_is_tagged_by_its_newest_glibc_symbol() {
    let binary = greeter_binary(Variant::Dynamic);
    let bytes = std::fs::read(&binary).unwrap();
    let facts = inspect_binary(
        bytes.as_slice(),
        &binary,
        target("x86_64-unknown-linux-gnu"),
    )
    .unwrap();
    // What the exact minor is depends on the build machine's glibc; Rust's std always needs
    // at least 2.17 and the fixture's profile strips debug info.
    let BinaryPlatform::Manylinux { glibc_minor } = facts.platform else {
        panic!("{facts:?}");
    };
    assert!(glibc_minor >= 17, "{facts:?}");
    assert!(!facts.has_debug_info);
    // The same binary does not fit a musl target.
    let error = inspect_binary(
        bytes.as_slice(),
        &binary,
        target("x86_64-unknown-linux-musl"),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is dynamically linked against glibc (interpreter /lib64/ld-linux-x86-64.so.2), which target `x86_64-unknown-linux-musl` cannot use"),
        "{error}"
    );
}

#[test]
fn static_binary_gets_the_dual_tag() {
    let binary = greeter_binary(Variant::Static);
    let bytes = std::fs::read(&binary).unwrap();
    for triple in ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"] {
        let facts = inspect_binary(bytes.as_slice(), &binary, target(triple)).unwrap();
        assert_eq!(facts.platform, BinaryPlatform::StaticLinux, "{triple}");
        assert_eq!(
            platform_tags(
                &[facts.platform],
                target(triple),
                StaticLinuxTags::BothLibcs
            ),
            [
                "manylinux2014_x86_64",
                "manylinux_2_17_x86_64",
                "musllinux_1_1_x86_64"
            ]
        );
    }
}

#[test]
fn elf_glibc_versions() {
    let gnu = "x86_64-unknown-linux-gnu";
    check(
        &Elf::default().build(),
        gnu,
        expect!["manylinux_2_28_x86_64"],
    );
    let versions = |libc: &'static [&'static str]| Elf {
        versions: Box::leak(Box::new([("libc.so.6", libc)])),
        needed: &["libc.so.6"],
        ..Elf::default()
    };
    check(
        &versions(&["GLIBC_2.2.5", "GLIBC_2.17"]).build(),
        gnu,
        expect!["manylinux2014_x86_64 manylinux_2_17_x86_64"],
    );
    check(
        &versions(&["GLIBC_2.2.5", "GLIBC_2.12"]).build(),
        gnu,
        expect!["manylinux2010_x86_64 manylinux_2_12_x86_64"],
    );
    check(
        &versions(&["GLIBC_2.2.5"]).build(),
        gnu,
        expect!["manylinux1_x86_64 manylinux_2_5_x86_64"],
    );
    check(
        &versions(&["GLIBC_2.39"]).build(),
        gnu,
        expect!["manylinux_2_39_x86_64"],
    );
    check(
        &versions(&["GLIBC_PRIVATE"]).build(),
        gnu,
        expect![[r#"
            /dist/bin/tool needs symbol version `GLIBC_PRIVATE`, which no manylinux policy for x86_64 allows (castoff knows them up to manylinux_2_41, from auditwheel): a wheel for it could only be tagged `linux_x86_64`, and PyPI rejects that tag
            hint: build on an older distribution (a manylinux container) or with cargo-zigbuild's `x86_64-unknown-linux-gnu.2.17` target so the binary needs older symbols"#]],
    );
    // A C++ dependency: libstdc++'s GLIBCXX_3.4.30 first appears in manylinux_2_35.
    check(
        &Elf {
            needed: &["libstdc++.so.6", "libc.so.6"],
            versions: &[
                ("libstdc++.so.6", &["GLIBCXX_3.4.30", "CXXABI_1.3.13"]),
                ("libc.so.6", &["GLIBC_2.17"]),
            ],
            ..Elf::default()
        }
        .build(),
        gnu,
        expect!["manylinux_2_35_x86_64"],
    );
    // No symbol versions at all, but dynamically linked: the oldest policy.
    check(
        &Elf {
            versions: &[],
            ..Elf::default()
        }
        .build(),
        gnu,
        expect!["manylinux1_x86_64 manylinux_2_5_x86_64"],
    );
}

#[test]
fn elf_other_architectures() {
    let aarch64 = Elf {
        machine: 183, // EM_AARCH64
        interpreter: Some("/lib/ld-linux-aarch64.so.1"),
        needed: &["libc.so.6", "ld-linux-aarch64.so.1"],
        versions: &[("libc.so.6", &["GLIBC_2.17", "GLIBC_2.18"])],
        ..Elf::default()
    };
    check(
        &aarch64.build(),
        "aarch64-unknown-linux-gnu",
        expect!["manylinux2014_aarch64 manylinux_2_17_aarch64"],
    );
    let armv7 = Elf {
        machine: 40, // EM_ARM
        class64: false,
        interpreter: Some("/lib/ld-linux-armhf.so.3"),
        needed: &["libc.so.6", "ld-linux-armhf.so.3"],
        versions: &[("libc.so.6", &["GLIBC_2.4", "GLIBC_2.34"])],
        ..Elf::default()
    };
    check(
        &armv7.build(),
        "armv7-unknown-linux-gnueabihf",
        expect!["manylinux_2_34_armv7l"],
    );
    let i686 = Elf {
        machine: 3, // EM_386
        class64: false,
        interpreter: Some("/lib/ld-linux.so.2"),
        needed: &["libc.so.6", "ld-linux.so.2"],
        versions: &[("libc.so.6", &["GLIBC_2.0", "GLIBC_2.28"])],
        ..Elf::default()
    };
    check(
        &i686.build(),
        "i686-unknown-linux-gnu",
        expect!["manylinux_2_28_i686"],
    );
    // Rust's musl targets link statically (a static-pie): both families.
    let static_pie = Elf {
        machine: 183,
        interpreter: None,
        needed: &[],
        versions: &[],
        ..Elf::default()
    };
    check(
        &static_pie.build(),
        "aarch64-unknown-linux-musl",
        expect!["manylinux2014_aarch64 manylinux_2_17_aarch64 musllinux_1_1_aarch64"],
    );
    // Non-PIE static executable (ET_EXEC, no dynamic section).
    check(
        &Elf {
            kind: 2,
            interpreter: None,
            needed: &[],
            versions: &[],
            pie: false,
            ..Elf::default()
        }
        .build(),
        "x86_64-unknown-linux-musl",
        expect!["manylinux2014_x86_64 manylinux_2_17_x86_64 musllinux_1_1_x86_64"],
    );
    // Dynamically linked against musl (`-C target-feature=-crt-static`, libgcc_s vendored).
    let musl_dynamic = Elf {
        interpreter: Some("/lib/ld-musl-x86_64.so.1"),
        needed: &["libc.so"],
        versions: &[],
        ..Elf::default()
    };
    check(
        &musl_dynamic.build(),
        "x86_64-unknown-linux-musl",
        expect!["musllinux_1_2_x86_64"],
    );
    check(
        &musl_dynamic.build(),
        "x86_64-unknown-linux-gnu",
        expect![[r#"
            /dist/bin/tool is dynamically linked against musl (interpreter /lib/ld-musl-x86_64.so.1), which target `x86_64-unknown-linux-gnu` cannot use
            hint: build the binary for `x86_64-unknown-linux-gnu` itself (`cargo build --release --target x86_64-unknown-linux-gnu`)"#]],
    );
    check(
        &Elf {
            needed: &["libc.so", "libgcc_s.so.1"],
            ..musl_dynamic
        }
        .build(),
        "x86_64-unknown-linux-musl",
        expect![[r#"
            /dist/bin/tool needs the shared library `libgcc_s.so.1`, which is not part of the musllinux platform: a wheel for it could only be tagged `linux_x86_64`, and PyPI rejects that tag
            hint: link `libgcc_s.so.1` statically (e.g. a `vendored`/`static` feature of the crate that needs it, or `-C target-feature=+crt-static` for everything), or build for a target whose platform provides it"#]],
    );
}

#[test]
fn elf_refusals() {
    let gnu = "x86_64-unknown-linux-gnu";
    check(
        &Elf {
            needed: &["libssl.so.3", "libc.so.6"],
            ..Elf::default()
        }
        .build(),
        gnu,
        expect![[r#"
            /dist/bin/tool needs the shared library `libssl.so.3`, which is not part of the manylinux platform: a wheel for it could only be tagged `linux_x86_64`, and PyPI rejects that tag
            hint: link `libssl.so.3` statically (e.g. a `vendored`/`static` feature of the crate that needs it, or `-C target-feature=+crt-static` for everything), or build for a target whose platform provides it"#]],
    );
    check(
        &Elf::default().build(),
        "aarch64-unknown-linux-gnu",
        expect![[r#"
            /dist/bin/tool is built for x86_64, but target `aarch64-unknown-linux-gnu` is aarch64
            hint: build the binary with `cargo build --release --target aarch64-unknown-linux-gnu` and pass that file"#]],
    );
    check(
        &Elf::default().build(),
        "x86_64-pc-windows-msvc",
        expect![[r#"
            /dist/bin/tool is an ELF file (Linux), but target `x86_64-pc-windows-msvc` needs a PE executable (Windows)
            hint: build the binary with `cargo build --release --target x86_64-pc-windows-msvc` and pass that file"#]],
    );
    // A shared library: ET_DYN without interpreter or PIE flag.
    check(
        &Elf {
            interpreter: None,
            pie: false,
            ..Elf::default()
        }
        .build(),
        gnu,
        expect![[r#"
            /dist/bin/tool is not an executable: it is a shared library (no entry point or program interpreter)
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    check(
        &Elf {
            kind: 1,
            ..Elf::default()
        }
        .build(),
        gnu,
        expect![[r#"
            /dist/bin/tool is not an executable: it is an object file (.o)
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    check(
        b"#!/bin/sh\necho hello\n",
        gnu,
        expect![[r#"
            /dist/bin/tool is not an executable: it is not an ELF, Mach-O or PE file (it starts with bytes 23 21 2f 62)
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    check(
        b"",
        gnu,
        expect![[r#"
            /dist/bin/tool is not an executable: the file is empty
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    let mut truncated = Elf::default().build();
    truncated.truncate(100);
    check(
        &truncated,
        gnu,
        expect![[r#"
            /dist/bin/tool is not an executable: malformed ELF: Invalid ELF program header size or alignment
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
}

#[test]
fn debug_info_is_reported() {
    check(
        &Elf {
            debug_info: true,
            ..Elf::default()
        }
        .build(),
        "x86_64-unknown-linux-gnu",
        expect!["manylinux_2_28_x86_64 (debug info)"],
    );
}

#[test]
fn mach_o_minimum_version_and_slices() {
    let arm = "aarch64-apple-darwin";
    let intel = "x86_64-apple-darwin";
    check(
        &support::macho(
            CPU_TYPE_ARM64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 11, 0),
        ),
        arm,
        expect!["macosx_11_0_arm64"],
    );
    // From macOS 11 on the minor version is dropped.
    check(
        &support::macho(
            CPU_TYPE_ARM64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 14, 5),
        ),
        arm,
        expect!["macosx_14_0_arm64"],
    );
    // An arm64 minimum below 11 (only a hand-made binary says so) still means 11.
    check(
        &support::macho(
            CPU_TYPE_ARM64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 10, 16),
        ),
        arm,
        expect!["macosx_11_0_arm64"],
    );
    check(
        &support::macho(
            CPU_TYPE_X86_64,
            MH_EXECUTE,
            MinimumOs::VersionMinMacos(10, 12),
        ),
        intel,
        expect!["macosx_10_12_x86_64"],
    );
    let universal = fat(&[
        (
            CPU_TYPE_X86_64,
            support::macho(
                CPU_TYPE_X86_64,
                MH_EXECUTE,
                MinimumOs::BuildVersion(1, 10, 12),
            ),
        ),
        (
            CPU_TYPE_ARM64,
            support::macho(
                CPU_TYPE_ARM64,
                MH_EXECUTE,
                MinimumOs::BuildVersion(1, 11, 0),
            ),
        ),
    ]);
    // The newest minimum of all slices; universal2 because both architectures are in it.
    check(&universal, arm, expect!["macosx_11_0_universal2"]);
    check(&universal, intel, expect!["macosx_11_0_universal2"]);
    let intel_only_fat = fat(&[(
        CPU_TYPE_X86_64,
        support::macho(
            CPU_TYPE_X86_64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 10, 13),
        ),
    )]);
    check(&intel_only_fat, intel, expect!["macosx_10_13_x86_64"]);
    check(
        &intel_only_fat,
        arm,
        expect![[r#"
            /dist/bin/tool is built for x86_64 (universal binary), but target `aarch64-apple-darwin` is arm64
            hint: build the binary with `cargo build --release --target aarch64-apple-darwin` and pass that file"#]],
    );
    check(
        &support::macho(
            CPU_TYPE_X86_64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 10, 12),
        ),
        arm,
        expect![[r#"
            /dist/bin/tool is built for x86_64, but target `aarch64-apple-darwin` is arm64
            hint: build the binary with `cargo build --release --target aarch64-apple-darwin` and pass that file"#]],
    );
    check(
        &support::macho(CPU_TYPE_ARM64, MH_DYLIB, MinimumOs::BuildVersion(1, 11, 0)),
        arm,
        expect![[r#"
            /dist/bin/tool is not an executable: it is a dynamic library (.dylib)
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    check(
        &support::macho(
            CPU_TYPE_ARM64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(2, 17, 0),
        ),
        arm,
        expect![[r#"
            /dist/bin/tool is built for Apple platform 2 (LC_BUILD_VERSION), not macOS (1)
            hint: build for an `*-apple-darwin` target"#]],
    );
    check(
        &support::macho(CPU_TYPE_ARM64, MH_EXECUTE, MinimumOs::None),
        arm,
        expect![[r#"
            /dist/bin/tool has neither LC_BUILD_VERSION nor LC_VERSION_MIN_MACOSX, so its minimum macOS version is unknown
            hint: link with a current Apple linker (set MACOSX_DEPLOYMENT_TARGET to the oldest macOS you support)"#]],
    );
    check(
        &support::macho(
            CPU_TYPE_ARM64,
            MH_EXECUTE,
            MinimumOs::BuildVersion(1, 11, 0),
        ),
        "aarch64-unknown-linux-musl",
        expect![[r#"
            /dist/bin/tool is a Mach-O file (macOS), but target `aarch64-unknown-linux-musl` needs an ELF executable (Linux)
            hint: build the binary with `cargo build --release --target aarch64-unknown-linux-musl` and pass that file"#]],
    );
}

#[test]
fn pe_machine() {
    check(
        &support::pe(IMAGE_FILE_MACHINE_AMD64, false),
        "x86_64-pc-windows-msvc",
        expect!["win_amd64"],
    );
    check(
        &support::pe(IMAGE_FILE_MACHINE_ARM64, false),
        "aarch64-pc-windows-msvc",
        expect!["win_arm64"],
    );
    check(
        &support::pe(IMAGE_FILE_MACHINE_I386, false),
        "i686-pc-windows-msvc",
        expect!["win32"],
    );
    check(
        &support::pe(IMAGE_FILE_MACHINE_ARM64, false),
        "x86_64-pc-windows-msvc",
        expect![[r#"
            /dist/bin/tool is built for win_arm64, but target `x86_64-pc-windows-msvc` is win_amd64
            hint: build the binary with `cargo build --release --target x86_64-pc-windows-msvc` and pass that file"#]],
    );
    check(
        &support::pe(IMAGE_FILE_MACHINE_AMD64, true),
        "x86_64-pc-windows-msvc",
        expect![[r#"
            /dist/bin/tool is not an executable: it is a DLL
            hint: pass the compiled binary, e.g. target/<triple>/release/<bin>"#]],
    );
    check(
        &support::pe(IMAGE_FILE_MACHINE_AMD64, false),
        "x86_64-unknown-linux-gnu",
        expect![[r#"
            /dist/bin/tool is a PE file (Windows), but target `x86_64-unknown-linux-gnu` needs an ELF executable (Linux)
            hint: build the binary with `cargo build --release --target x86_64-unknown-linux-gnu` and pass that file"#]],
    );
}
