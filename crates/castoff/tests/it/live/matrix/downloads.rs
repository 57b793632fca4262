//! The matrix release's direct downloads (issue #16, "Direct downloads"): `dist/install.sh`,
//! run by busybox `sh` inside the arm64 Debian root and inside the musl-only root, fetches that
//! machine's archive from a local HTTP server standing in for the release URL, checks its
//! digest and installs a binary that runs there; a machine the release has no archive for gets
//! an error naming its platform; every archive holds its target's binary (Windows: a zip with
//! the `.exe`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castoff_plan::Target;
use castoff_plan::target::Os;
use castoff_test_support::TestEnv;
use castoff_test_support::platforms::{Rootfs, probe_target, record_cell};
use castoff_test_support::workspace::{assert_success, output_text};

use super::wheels::{list_archives, probe_facts};
use super::{Matrix, dist_from_probe, matrix};
use crate::live::http_server::HttpServer;
use castoff_test_support::workspace::{run_to_end as run, stdout_trimmed as stdout};

/// A directory of this test's own inside a root (`/opt/castoff-matrix-<name>-<pid>`), fresh.
fn own_dir(root: &Rootfs, name: &str) -> String {
    let dir = format!("/opt/castoff-matrix-{name}-{}", std::process::id());
    let _ = fs::remove_dir_all(root.host_path(&dir));
    fs::create_dir_all(root.host_path(&dir)).unwrap();
    dir
}

/// A busybox userland in the arm64 root: a directory of links to its busybox (Debian's, an
/// aarch64 build), one per applet, for a `PATH` of busybox alone (`sh`, `wget`,
/// `sha256sum`, `tar`, `uname`, …; no curl, no coreutils, no `ldd`). The links are made from
/// the host: `busybox --install` needs `/proc`, which the root lacks.
fn busybox_userland(root: &Rootfs, dir: &str) -> String {
    let mut command = root.command("/bin/busybox");
    command.arg("--list");
    let output = run(command, "busybox --list in the arm64 root");
    assert_success(&output, "busybox --list in the arm64 root");
    let bin = format!("{dir}/busybox");
    fs::create_dir_all(root.host_path(&bin)).unwrap();
    for applet in stdout(&output).lines() {
        std::os::unix::fs::symlink("/bin/busybox", root.host_path(&format!("{bin}/{applet}")))
            .unwrap();
    }
    bin
}

/// `busybox sh install.sh --base-url URL --to DIR/bin` in `root` with `path` as `PATH`; the
/// script is copied into the root first.
fn install_sh(root: &Rootfs, script: &Path, dir: &str, base_url: &str, path: &str) -> Output {
    let inside = format!("{dir}/install.sh");
    root.install_file(script, &inside);
    // PATH is set inside, by busybox's `env`: a PATH on the command itself would also be the
    // one the host searches for `chroot`.
    let mut command = root.command("/bin/busybox");
    command
        .args([
            "env",
            &format!("PATH={path}"),
            "/bin/busybox",
            "sh",
            &inside,
        ])
        .args(["--base-url", base_url, "--to"])
        .arg(format!("{dir}/bin"))
        .env_remove("CASTOFF_INSTALL_DIR")
        .env_remove("CASTOFF_INSTALL_BASE_URL");
    run(command, "busybox sh install.sh")
}

/// The archive file name of `triple` in a release of greeter 0.3.1.
fn archive_name(target: &Target) -> String {
    let extension = if target.os == Os::Windows {
        "zip"
    } else {
        "tar.gz"
    };
    format!("greeter-0.3.1-{}.{extension}", target.triple)
}

/// Checks a run of install.sh that should have installed `triple`'s build into `dir/bin`:
/// the script said so, the server served exactly that archive, the file is that build, and it
/// runs in the root, saying where.
fn check_installed(
    env: &TestEnv,
    root: &Rootfs,
    output: &Output,
    served: &[String],
    dir: &str,
    triple: &str,
) {
    let target: &Target = triple.parse().unwrap();
    let archive = archive_name(target);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_success(output, "install.sh");
    assert!(
        stderr.contains(&format!("install.sh: downloading {archive}"))
            && stderr.contains(&format!("install.sh: installed {dir}/bin/greeter")),
        "{stderr}"
    );
    assert_eq!(served, [format!("/{archive}")], "{stderr}");
    assert_eq!(
        fs::read(root.host_path(&format!("{dir}/bin/greeter"))).unwrap(),
        fs::read(env.probe_binary(triple)).unwrap(),
        "{dir}/bin/greeter is the {triple} build"
    );
    let mut command = root.command(&format!("{dir}/bin/greeter"));
    command.arg("platform");
    let ran = run(command, "the installed greeter");
    let expected = probe_target(triple).platform_line_here().unwrap();
    assert_eq!(stdout(&ran), expected, "{}", output_text(&ran));
}

/// The arm64 Debian root with a busybox userland only: busybox's `sh` runs install.sh, which
/// finds `wget` (no curl), sees aarch64 and no musl loader, downloads the aarch64 glibc
/// archive from the local server, verifies its SHA-256 with busybox's `sha256sum`, and
/// installs a binary that runs there (under qemu) and says `machine=aarch64`.
#[test]
fn install_sh_under_busybox_in_the_arm64_root_installs_the_aarch64_glibc_build() {
    let env = TestEnv::get();
    let matrix = matrix();
    let root = env.arm64_root();
    let dir = own_dir(&root, "install-arm64");
    let path = busybox_userland(&root, &dir);
    let server = HttpServer::start(&matrix.dist.join("archives"));
    let output = install_sh(
        &root,
        &matrix.dist.join("install.sh"),
        &dir,
        &server.url,
        &path,
    );
    let served = server.stop();
    check_installed(
        &env,
        &root,
        &output,
        &served,
        &dir,
        "aarch64-unknown-linux-gnu",
    );
    record_cell(
        "arm64 root",
        "install.sh (busybox sh)",
        "ok: aarch64-unknown-linux-gnu",
    );
    let _ = fs::remove_dir_all(root.host_path(&dir));
    env.figure(
        "matrix downloads: install.sh under busybox sh (busybox wget, sha256sum, tar) in the arm64 root installed the aarch64 glibc build, which ran (machine=aarch64)"
            .to_owned(),
    );
}

/// The musl-only root (x86_64, busybox-static, musl's loader, no glibc, no `ldd`): the
/// script's C library detection sees the musl loader without `ldd`, so it installs the x86_64
/// musl build, which runs there.
#[test]
fn install_sh_in_the_musl_root_installs_the_x86_64_musl_build() {
    let env = TestEnv::get();
    let matrix = matrix();
    let root = env.musl_root();
    for absent in ["/usr/bin/ldd", "/bin/ldd", "/lib64/ld-linux-x86-64.so.2"] {
        assert!(
            !root.host_path(absent).exists(),
            "the musl root has no {absent}"
        );
    }
    let dir = own_dir(&root, "install-musl");
    let server = HttpServer::start(&matrix.dist.join("archives"));
    let output = install_sh(
        &root,
        &matrix.dist.join("install.sh"),
        &dir,
        &server.url,
        "/bin",
    );
    let served = server.stop();
    check_installed(
        &env,
        &root,
        &output,
        &served,
        &dir,
        "x86_64-unknown-linux-musl",
    );
    record_cell(
        "musl root",
        "install.sh (busybox sh)",
        "ok: x86_64-unknown-linux-musl",
    );
    let _ = fs::remove_dir_all(root.host_path(&dir));
    env.figure(
        "matrix downloads: install.sh under busybox sh in the musl-only root (no ldd) chose musl and installed the x86_64 musl build, which ran"
            .to_owned(),
    );
}

/// This machine: glibc, with Debian's `musl` package (the harness installs it), so musl's
/// loader `/lib/ld-musl-x86_64.so.1` is there too. glibc's `getconf` decides: the script takes
/// the glibc build, not the musl one the loader alone would suggest (the launcher's detection
/// had the same trap).
#[test]
fn install_sh_on_glibc_with_musl_s_loader_takes_the_glibc_build() {
    let matrix = matrix();
    assert!(
        Path::new("/lib/ld-musl-x86_64.so.1").exists(),
        "the harness installs Debian's musl, whose loader this test needs"
    );
    let dir = TestEnv::get().scratch_dir(&format!("matrix-install-host-{}", std::process::id()));
    let server = HttpServer::start(&matrix.dist.join("archives"));
    let mut command = Command::new("sh");
    command
        .arg(matrix.dist.join("install.sh"))
        .args(["--base-url", &server.url, "--to"])
        .arg(dir.join("bin"))
        .env_remove("CASTOFF_INSTALL_DIR")
        .env_remove("CASTOFF_INSTALL_BASE_URL");
    let output = run(command, "sh install.sh on this machine");
    let served = server.stop();
    assert_success(&output, "install.sh on this machine");
    let archive = archive_name("x86_64-unknown-linux-gnu".parse().unwrap());
    assert_eq!(served, [format!("/{archive}")], "{}", output_text(&output));
    let ran = run(
        {
            let mut command = Command::new(dir.join("bin/greeter"));
            command.arg("platform");
            command
        },
        "the installed greeter",
    );
    assert_eq!(
        stdout(&ran),
        probe_target("x86_64-unknown-linux-gnu")
            .platform_line_here()
            .unwrap(),
        "{}",
        output_text(&ran)
    );
    record_cell(
        "x86_64 glibc + musl loader",
        "install.sh (dash)",
        "ok: x86_64-unknown-linux-gnu",
    );
}

/// A partial release of the same workspace with only `x86_64-unknown-linux-gnu` and
/// `aarch64-unknown-linux-musl` (dist from the probe's builds into a dist of its own).
fn glibc_x86_64_and_musl_aarch64_release(env: &TestEnv, matrix: &Matrix) -> PathBuf {
    let scratch = env.scratch_dir(&format!("matrix-downloads-partial-{}", std::process::id()));
    let dist = scratch.join("dist");
    dist_from_probe(
        env,
        &matrix.home,
        &matrix.workspace.join("Cargo.toml"),
        &["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-musl"],
        &scratch.join("binaries"),
        &dist,
    );
    dist
}

/// A machine the release has no archive for gets an error naming its platform, and nothing
/// is downloaded or installed: an architecture the script does not know (the arm64 root with
/// a `uname` reporting `mips64` ahead of busybox's; Debian's busybox runs what `PATH` finds,
/// the musl root's busybox-static its own applets), and an x86_64 musl machine (the musl
/// root) facing a release whose only x86_64 archive is a glibc build. The same release's
/// static aarch64 musl build is what the arm64 glibc root installs: a static build runs on
/// either C library.
#[test]
fn a_machine_without_an_archive_is_told_its_platform() {
    let env = TestEnv::get();
    let matrix = matrix();
    let mut failures = Vec::new();
    let mut refused = |root: &Rootfs,
                       platform: &str,
                       output: &Output,
                       served: &[String],
                       dir: &str,
                       message: &str| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let installed = root.host_path(&format!("{dir}/bin")).exists();
        if output.status.code() != Some(1)
            || !stderr.contains(&format!("install.sh: error: {message}"))
            || !served.is_empty()
            || installed
        {
            failures.push(format!(
                "{platform}: expected `{message}`, nothing served ({served:?}) or installed ({installed}): {}",
                output_text(output)
            ));
        } else {
            record_cell(platform, "install.sh (busybox sh)", "refused, names it");
        }
    };

    let arm64 = env.arm64_root();
    let dir = own_dir(&arm64, "install-mips64");
    let busybox = busybox_userland(&arm64, &dir);
    let uname = arm64.host_path(&format!("{dir}/fake/uname"));
    fs::create_dir_all(uname.parent().unwrap()).unwrap();
    fs::write(
        &uname,
        "#!/bin/sh\ncase \"$1\" in -m) echo mips64 ;; *) echo Linux ;; esac\n",
    )
    .unwrap();
    fs::set_permissions(&uname, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = HttpServer::start(&matrix.dist.join("archives"));
    let output = install_sh(
        &arm64,
        &matrix.dist.join("install.sh"),
        &dir,
        &server.url,
        &format!("{dir}/fake:{busybox}"),
    );
    let served = server.stop();
    refused(
        &arm64,
        "mips64 (arm64 root, uname faked)",
        &output,
        &served,
        &dir,
        "unsupported architecture mips64",
    );
    let _ = fs::remove_dir_all(arm64.host_path(&dir));

    let partial = glibc_x86_64_and_musl_aarch64_release(&env, matrix);
    let musl = env.musl_root();
    let dir = own_dir(&musl, "install-none");
    let server = HttpServer::start(&partial.join("archives"));
    let output = install_sh(
        &musl,
        &partial.join("install.sh"),
        &dir,
        &server.url,
        "/bin",
    );
    let served = server.stop();
    refused(
        &musl,
        "musl root, glibc-only x86_64",
        &output,
        &served,
        &dir,
        "no build of greeter for linux/x86_64 (libc musl) in this release",
    );
    let _ = fs::remove_dir_all(musl.host_path(&dir));
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let dir = own_dir(&arm64, "install-static");
    let busybox = busybox_userland(&arm64, &dir);
    let server = HttpServer::start(&partial.join("archives"));
    let output = install_sh(
        &arm64,
        &partial.join("install.sh"),
        &dir,
        &server.url,
        &busybox,
    );
    let served = server.stop();
    check_installed(
        &env,
        &arm64,
        &output,
        &served,
        &dir,
        "aarch64-unknown-linux-musl",
    );
    record_cell(
        "arm64 root, musl-only aarch64",
        "install.sh (busybox sh)",
        "ok: static musl build",
    );
    let _ = fs::remove_dir_all(arm64.host_path(&dir));
    env.figure(
        "matrix downloads: install.sh refuses mips64 and a glibc-only x86_64 release on musl, naming the platform, with nothing downloaded; the arm64 glibc root takes a static musl build when it is the only one"
            .to_owned(),
    );
}

/// The object-crate architecture of a target's binaries.
fn architecture(target: &Target) -> object::Architecture {
    use object::Architecture;
    match target.triple.split('-').next().unwrap_or_default() {
        "x86_64" => Architecture::X86_64,
        "aarch64" => Architecture::Aarch64,
        "i686" => Architecture::I386,
        "armv7" => Architecture::Arm,
        "riscv64gc" => Architecture::Riscv64,
        "powerpc64le" => Architecture::PowerPc64,
        "s390x" => Architecture::S390x,
        other => panic!("no architecture for `{other}`"),
    }
}

/// Every archive, read with Python's `zipfile` and `tarfile`: Windows archives are zips, the
/// others gzipped tars, each holding `greeter-0.3.1-<triple>/greeter` (`greeter.exe` on
/// Windows), executable, byte for byte the probe build of its target, whose headers name the
/// target's machine.
#[test]
fn every_archive_holds_its_target_s_binary() {
    let env = TestEnv::get();
    let matrix = matrix();
    let targets = Target::all();
    let archives: Vec<PathBuf> = targets
        .iter()
        .map(|target| matrix.artifact_path(&format!("archive/greeter/{}", target.triple)))
        .collect();
    let listings = list_archives(&env, &archives);
    let mut failures = Vec::new();
    for ((target, archive), entries) in targets.iter().zip(&archives).zip(&listings) {
        let name = archive.file_name().unwrap().to_string_lossy().into_owned();
        let binary = format!(
            "greeter-0.3.1-{}/{}",
            target.triple,
            target.executable_name("greeter")
        );
        let (sha256, machine) = probe_facts(&env, target.triple);
        let found = entries.iter().find(|entry| entry.name == binary);
        let ok = name == archive_name(target)
            && machine == architecture(target)
            && found.is_some_and(|entry| entry.mode == 0o755 && entry.sha256 == sha256);
        if ok {
            let kind = if target.os == Os::Windows {
                "zip"
            } else {
                "tar.gz"
            };
            record_cell(
                target.triple,
                "archive",
                &format!("{kind}: {}", target.executable_name("greeter")),
            );
        } else {
            failures.push(format!(
                "{name}: expected {binary} (0755, {sha256}, {:?}); probe machine {machine:?}; entries {entries:?}",
                architecture(target)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let windows = targets.iter().filter(|t| t.os == Os::Windows).count();
    env.figure(format!(
        "matrix downloads: {} archives hold their target's binary ({windows} Windows zips with greeter.exe, {} tar.gz)",
        targets.len(),
        targets.len() - windows
    ));
}
