//! `dist --prebuilt` and `--prebuilt-dir` (prebuilt.rs): a binary built by a separate
//! `cargo build` of a copy of the fixture gives byte for byte the artifacts of a `dist` that
//! built it, the manifest differing only in the builds' `source`; wrong binaries (another
//! architecture, glibc for a musl target, a Mach-O for Linux, a PE for macOS) are refused all
//! at once with exit code 2, before any build, with the workspace (dist/ and target/)
//! untouched; a directory of binaries from another CI beside the host target built by cargo;
//! the cache tells supplied binaries by content; a merge keeps every partial's build records.
//! `live::prebuilt` installs a wheel of the supplied binary with pip and runs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use castoff_archive::digest;
use castoff_plan::Manifest;
use castoff_plan::manifest::BuildSource;
use castoff_test_support::binaries::{self, EM_AARCH64, EM_X86_64, write_static_elf};
use castoff_test_support::workspace::{assert_success, copy_fixture, files};
use expect_test::expect;

use super::dist::{scratch, single_cli_workspace};
use super::dist_safety::tree;

const HOST: &str = "x86_64-unknown-linux-gnu";
const ARM_MUSL: &str = "aarch64-unknown-linux-musl";
const EPOCH: &str = "1700000000";

/// The variables through which Cargo takes compiler flags: removed, so the separate build and
/// castoff's see exactly the flags the test gives (castoff adds crt-static itself).
const FLAG_VARIABLES: [&str; 3] = [
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
];

/// `castoff <args> --manifest-path <workspace>/Cargo.toml`, from `dir`.
pub(crate) fn castoff(workspace: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("NO_COLOR", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CASTOFF_SIGN_KEY")
        .env_remove("CASTOFF_SIGN_PASSWORD");
    for name in FLAG_VARIABLES {
        command.env_remove(name);
    }
    command.output().expect("running castoff")
}

fn manifest(dist: &Path) -> Manifest {
    Manifest::from_json(&fs::read_to_string(dist.join("manifest.json")).unwrap()).unwrap()
}

/// The shared runs, made once per test process.
pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    /// The single-cli copy every run below releases.
    pub(crate) workspace: PathBuf,
    /// greeter as a separate `cargo build --release` of another copy built it, copied away.
    pub(crate) binary: PathBuf,
    /// `dist --target HOST --prebuilt HOST=<binary>`, run before anything was built here.
    pub(crate) supplied: PathBuf,
    /// `dist --target HOST`: cargo builds greeter in the workspace.
    pub(crate) built: PathBuf,
    /// Whether the workspace had Cargo output for the host when the supplied dist was done.
    pub(crate) built_before_supplied: bool,
}

pub(crate) fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = scratch("prebuilt-shared");
        // Another checkout, as another CI would have it, built as castoff builds (the fixture
        // asks for crt-static).
        let elsewhere = root.join("elsewhere");
        copy_fixture("single-cli", &elsewhere);
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "--release", "--target", HOST, "--bin", "greeter"])
            .arg("--manifest-path")
            .arg(elsewhere.join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR");
        for name in FLAG_VARIABLES {
            build.env_remove(name);
        }
        build.env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        );
        assert_success(&build.output().unwrap(), "the separate cargo build");
        // Named as another CI might name it: what the artifacts call it comes from the plan.
        let binary = root.join("bins/greeter-x86_64-linux");
        fs::create_dir_all(binary.parent().unwrap()).unwrap();
        fs::copy(
            elsewhere.join(format!("target/{HOST}/release/greeter")),
            &binary,
        )
        .unwrap();

        let workspace = single_cli_workspace(&root, |toml| toml);
        let supplied = root.join("supplied");
        let prebuilt = format!("{HOST}={}", binary.display());
        let output = castoff(
            &workspace,
            &root,
            &[
                "dist",
                "--target",
                HOST,
                "--prebuilt",
                &prebuilt,
                "--dist-dir",
                supplied.to_str().unwrap(),
            ],
        );
        assert_success(&output, "dist --prebuilt");
        let built_before_supplied = workspace.join("target").join(HOST).exists();
        let built = root.join("built");
        let output = castoff(
            &workspace,
            &root,
            &[
                "dist",
                "--target",
                HOST,
                "--dist-dir",
                built.to_str().unwrap(),
            ],
        );
        assert_success(&output, "dist building greeter");
        Shared {
            root,
            workspace,
            binary,
            supplied,
            built,
            built_before_supplied,
        }
    })
}

#[test]
fn a_prebuilt_binary_gives_the_artifacts_of_a_cargo_build() {
    let shared = shared();
    assert!(
        !shared.built_before_supplied,
        "dist --prebuilt ran cargo: target/{HOST} appeared"
    );
    // The precondition: the two builds made the same binary (Rust builds are reproducible
    // across checkouts with the same toolchain and flags).
    let cargo_built = fs::read(
        shared
            .workspace
            .join(format!("target/{HOST}/release/greeter")),
    )
    .unwrap();
    assert!(
        cargo_built == fs::read(&shared.binary).unwrap(),
        "the separate cargo build made another binary than dist's; the comparison below needs the same one"
    );

    let supplied = files(&shared.supplied);
    let built = files(&shared.built);
    assert_eq!(
        supplied.keys().collect::<Vec<_>>(),
        built.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &supplied {
        if path != "manifest.json" {
            assert!(bytes == &built[path], "{path} differs");
        }
    }

    // The manifests differ only in how the binaries came.
    let mut from_prebuilt = manifest(&shared.supplied);
    let from_cargo = manifest(&shared.built);
    let build = &from_prebuilt.apps[0].builds[0];
    assert_eq!(build.source, BuildSource::Prebuilt);
    assert_eq!(from_cargo.apps[0].builds[0].source, BuildSource::Cargo);
    assert_eq!(build.binaries.len(), 1);
    assert_eq!(build.binaries[0].name, "greeter");
    assert_eq!(build.binaries[0].size, cargo_built.len() as u64);
    assert_eq!(
        build.binaries[0].digest,
        format!("sha256:{}", digest::hex(&digest::sha256(&cargo_built)))
    );
    from_prebuilt.apps[0].builds[0].source = BuildSource::Cargo;
    assert_eq!(from_prebuilt, from_cargo);

    // The record's shape, as manifest.json spells it (digest and size are the compiler's).
    let text = String::from_utf8(supplied["manifest.json"].clone()).unwrap();
    let start = text.find("      \"builds\": [").expect("a builds record");
    let end = start + text[start..].find("\n      ]").unwrap() + "\n      ]".len();
    let record = text[start + 6..end]
        .replace(&digest::hex(&digest::sha256(&cargo_built)), "…")
        .replace(&format!(": {},", cargo_built.len()), ": N,")
        .replace("\n      ", "\n");
    expect![[r#"
        "builds": [
          {
            "target": "x86_64-unknown-linux-gnu",
            "settings": {
              "tool": "cargo",
              "profile": "release",
              "features": [],
              "all_features": false,
              "no_default_features": false,
              "build_env": {},
              "cargo_args": [],
              "crt_static": true
            },
            "source": "prebuilt",
            "binaries": [
              {
                "name": "greeter",
                "size": N,
                "digest": "sha256:…"
              }
            ]
          }
        ]"#]]
    .assert_eq(&record);
}

/// stderr from `error:` on, with `dir` spelled `SCRATCH`.
fn error_text(output: &Output, dir: &Path) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let from = stderr.find("error:").unwrap_or(0);
    stderr[from..].replace(&dir.display().to_string(), "SCRATCH")
}

#[test]
fn wrong_binaries_are_refused_at_once_and_nothing_is_touched() {
    let scratch = scratch("prebuilt-refused");
    let workspace = single_cli_workspace(&scratch, |toml| {
        toml.replace(
            "targets = [\"x86_64-unknown-linux-gnu\",",
            "targets = [\"x86_64-unknown-linux-gnu\", \"x86_64-unknown-linux-musl\",",
        )
    });
    // A previous dist, from a planted binary: the refused run must leave it, and every other
    // file of the workspace (target/ included: no build starts), as it is.
    write_static_elf(
        &workspace.join(format!("target/{HOST}/release")),
        "greeter",
        EM_X86_64,
        "hello from greeter",
    );
    assert_success(
        &castoff(
            &workspace,
            &scratch,
            &["dist", "--no-build", "--target", HOST],
        ),
        "the previous dist",
    );

    let bad = scratch.join("bad");
    let arm = write_static_elf(&bad, "greeter-arm64", EM_AARCH64, "hello");
    // A dynamically linked glibc program of this machine.
    let glibc = bad.join("greeter-glibc");
    fs::copy("/bin/true", &glibc).unwrap();
    let macho = bad.join("greeter-macos");
    fs::write(
        &macho,
        binaries::macho_executable(binaries::CPU_TYPE_ARM64, 11, 0),
    )
    .unwrap();
    let pe = bad.join("greeter.exe");
    fs::write(
        &pe,
        binaries::pe_executable(binaries::IMAGE_FILE_MACHINE_AMD64),
    )
    .unwrap();
    let spec = |triple: &str, path: &Path| format!("{triple}={}", path.display());
    let specs = [
        spec(HOST, &arm),
        spec("x86_64-unknown-linux-musl", &glibc),
        spec(ARM_MUSL, &macho),
        spec("aarch64-apple-darwin", &pe),
    ];
    let mut args = vec!["dist"];
    for spec in &specs {
        args.extend(["--prebuilt", spec.as_str()]);
    }
    let before = tree(&scratch);
    let before_time = std::time::SystemTime::now();
    let output = castoff(&workspace, &scratch, &args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        error_text(&output, &scratch)
    );
    expect![[r#"
        error: cannot use the prebuilt binaries (4 problems):
        - SCRATCH/bad/greeter-arm64 is built for aarch64, but target `x86_64-unknown-linux-gnu` is x86_64
          hint: build the binary with `cargo build --release --target x86_64-unknown-linux-gnu` and pass that file
        - SCRATCH/bad/greeter-glibc is dynamically linked against glibc (interpreter /lib64/ld-linux-x86-64.so.2), which target `x86_64-unknown-linux-musl` cannot use
          hint: build the binary with `cargo build --release --target x86_64-unknown-linux-musl`: Rust links musl binaries statically by default
        - SCRATCH/bad/greeter-macos is a Mach-O file (macOS), but target `aarch64-unknown-linux-musl` needs an ELF executable (Linux)
          hint: build the binary with `cargo build --release --target aarch64-unknown-linux-musl` and pass that file
        - SCRATCH/bad/greeter.exe is a PE file (Windows), but target `aarch64-apple-darwin` needs a Mach-O executable (macOS)
          hint: build the binary with `cargo build --release --target aarch64-apple-darwin` and pass that file
        hint: fix every problem above and run `dist` again; nothing was built and the dist directory was not touched
    "#]]
    .assert_eq(&error_text(&output, &scratch));
    assert_eq!(
        tree(&scratch),
        before,
        "the refused run changed the workspace"
    );
    // Nothing was even created and removed again (a staging directory, a build's output).
    let touched: Vec<String> = walk_times(&scratch)
        .into_iter()
        .filter(|(path, modified)| {
            *modified >= before_time && !path.contains("target/castoff/metadata")
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        touched.is_empty(),
        "modified by the refused run: {touched:?}"
    );

    // One problem alone reads as one error with its hint.
    let output = castoff(&workspace, &scratch, &["dist", "--prebuilt", &specs[0]]);
    assert_eq!(output.status.code(), Some(2));
    expect![[r#"
        error: SCRATCH/bad/greeter-arm64 is built for aarch64, but target `x86_64-unknown-linux-gnu` is x86_64
        hint: build the binary with `cargo build --release --target x86_64-unknown-linux-gnu` and pass that file
    "#]]
    .assert_eq(&error_text(&output, &scratch));
    assert_eq!(tree(&scratch), before);
}

/// Every directory and file below `dir` with its modification time.
fn walk_times(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.push((entry.path().display().to_string(), meta.modified().unwrap()));
        }
    }
    out
}

#[test]
fn a_prebuilt_dir_beside_the_host_target_built_by_cargo() {
    let shared = shared();
    // What another CI left: the aarch64 musl binary, in DIR/<target>/<bin>.
    let bins = shared.root.join("other-ci");
    write_static_elf(
        &bins.join(ARM_MUSL),
        "greeter",
        EM_AARCH64,
        "hello from arm64\n",
    );
    let out = shared.root.join("mixed");
    // No --target: the supplied target and this machine's, which cargo builds.
    let output = castoff(
        &shared.workspace,
        &shared.root,
        &[
            "dist",
            "--prebuilt-dir",
            bins.to_str().unwrap(),
            "--dist-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&output, "dist --prebuilt-dir");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("compiling greeter for {HOST}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("compiling greeter for {ARM_MUSL}")),
        "{stderr}"
    );

    let mixed = manifest(&out);
    let sources: Vec<(&str, BuildSource)> = mixed.apps[0]
        .builds
        .iter()
        .map(|build| (build.target.as_str(), build.source))
        .collect();
    assert_eq!(
        sources,
        [
            (HOST, BuildSource::Cargo),
            (ARM_MUSL, BuildSource::Prebuilt)
        ]
    );
    assert_eq!(
        mixed
            .partial
            .as_ref()
            .map(|partial| partial.targets.clone()),
        Some(vec![HOST.to_owned(), ARM_MUSL.to_owned()])
    );
    // The host's artifacts are cargo's, the same as a dist of the host alone; the supplied
    // target has every channel.
    let mixed_files = files(&out);
    let host_files = files(&shared.built);
    for (path, bytes) in &host_files {
        if path.contains("x86_64") || path.contains("amd64") || path.contains("x64") {
            assert!(mixed_files.get(path) == Some(bytes), "{path} differs");
        }
    }
    let listing: Vec<&String> = mixed_files
        .keys()
        .filter(|path| path.contains("aarch64") || path.contains("arm64"))
        .collect();
    expect![[r#"
        [
            "archives/greeter-0.3.1-aarch64-unknown-linux-musl.tar.gz",
            "npm/acme-greeter-linux-arm64-musl-0.3.1.tgz",
            "oci/greeter-linux-arm64.tar",
            "python/greeter-0.3.1-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.musllinux_1_1_aarch64.whl",
            "sbom/greeter-0.3.1-aarch64-unknown-linux-musl.cdx.json",
        ]
    "#]]
    .assert_debug_eq(&listing);
}

#[test]
fn a_merge_keeps_every_partials_build_records() {
    let shared = shared();
    let bins = shared.root.join("merge-bins");
    let arm = write_static_elf(&bins, "greeter", EM_AARCH64, "hello from arm64\n");
    let arm_dist = shared.root.join("merge-arm");
    let prebuilt = format!("{ARM_MUSL}={}", arm.display());
    assert_success(
        &castoff(
            &shared.workspace,
            &shared.root,
            &[
                "dist",
                "--target",
                ARM_MUSL,
                "--prebuilt",
                &prebuilt,
                "--dist-dir",
                arm_dist.to_str().unwrap(),
            ],
        ),
        "the aarch64 partial",
    );
    let merged = shared.root.join("merged");
    assert_success(
        &castoff(
            &shared.workspace,
            &shared.root,
            &[
                "dist",
                "--dist-dir",
                merged.to_str().unwrap(),
                "--merge",
                arm_dist.to_str().unwrap(),
                shared.built.to_str().unwrap(),
            ],
        ),
        "the merge",
    );
    let builds = manifest(&merged).apps[0].builds.clone();
    let mut expected = manifest(&shared.built).apps[0].builds.clone();
    expected.extend(manifest(&arm_dist).apps[0].builds.clone());
    assert_eq!(builds, expected);
    assert_eq!(
        builds.iter().map(|b| b.source).collect::<Vec<_>>(),
        [BuildSource::Cargo, BuildSource::Prebuilt]
    );
    assert_eq!(
        builds[1].binaries[0].digest,
        format!(
            "sha256:{}",
            digest::hex(&digest::sha256(&fs::read(&arm).unwrap()))
        )
    );
}

#[test]
fn the_cache_tells_supplied_binaries_by_content() {
    let scratch = scratch("prebuilt-cache");
    let workspace = single_cli_workspace(&scratch, |toml| toml);
    let first = write_static_elf(&scratch.join("a"), "greeter", EM_X86_64, "one\n");
    let run = |path: &Path| {
        let prebuilt = format!("{HOST}={}", path.display());
        let output = castoff(
            &workspace,
            &scratch,
            &["dist", "--target", HOST, "--prebuilt", &prebuilt],
        );
        assert_success(&output, "dist --prebuilt");
        String::from_utf8_lossy(&output.stderr).contains("cached: inputs unchanged")
    };
    let digest_in_dist = || {
        manifest(&workspace.join("dist")).apps[0].builds[0].binaries[0]
            .digest
            .clone()
    };
    assert!(!run(&first), "a first run cannot be cached");
    assert!(run(&first), "the same file again is cached");
    // The same bytes elsewhere (another download of the same release): still cached.
    let copy = scratch.join("b/greeter");
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    fs::copy(&first, &copy).unwrap();
    assert!(run(&copy), "the same content at another path is cached");
    // A link to it (a user's path to their build output) is followed.
    let link = scratch.join("link-to-greeter");
    std::os::unix::fs::symlink(&copy, &link).unwrap();
    assert!(run(&link), "the same content through a link is cached");
    // Other bytes: built again, and the manifest follows.
    let before = digest_in_dist();
    write_static_elf(&scratch.join("b"), "greeter", EM_X86_64, "two\n");
    assert!(!run(&copy), "another binary was taken from the cache");
    assert_ne!(digest_in_dist(), before);
    // The same bytes from Cargo's output directory are another input (the manifest says so).
    fs::create_dir_all(workspace.join(format!("target/{HOST}/release"))).unwrap();
    fs::copy(
        &copy,
        workspace.join(format!("target/{HOST}/release/greeter")),
    )
    .unwrap();
    let output = castoff(
        &workspace,
        &scratch,
        &["dist", "--no-build", "--target", HOST],
    );
    assert_success(&output, "dist --no-build");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("cached:"));
    assert_eq!(
        manifest(&workspace.join("dist")).apps[0].builds[0].source,
        BuildSource::Cargo
    );
}

/// Two binaries, two apps: `--prebuilt <target>:<bin>=<path>` picks the app by its binary;
/// without the name, or with one binary of the target missing, it is refused, naming what is
/// missing; the same binary by name and from a directory at once is refused too.
#[test]
fn several_binaries_are_named_and_supplied_whole() {
    let scratch = scratch("prebuilt-two-apps");
    let workspace = scratch.join("workspace");
    copy_fixture("two-apps", &workspace);
    let tk = write_static_elf(&scratch.join("bins"), "tk", EM_X86_64, "tk\n");
    let core = write_static_elf(&scratch.join("bins"), "tk-core", EM_X86_64, "core\n");
    let spec = |bin: &str, path: &Path| format!("{HOST}:{bin}={}", path.display());
    let refused = |args: &[&str]| {
        let output = castoff(&workspace, &scratch, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}",
            error_text(&output, &scratch)
        );
        assert!(!workspace.join("dist").exists());
        assert!(!workspace.join("target").join(HOST).exists());
        error_text(&output, &scratch)
    };
    let unnamed = format!("{HOST}={}", tk.display());
    expect![[r#"
        error: `--prebuilt x86_64-unknown-linux-gnu=SCRATCH/bins/tk` does not say which binary it is: the release has 2 binaries for `x86_64-unknown-linux-gnu` (`tk-core`, `tk`)
        hint: name the binary: `--prebuilt x86_64-unknown-linux-gnu:tk-core=SCRATCH/bins/tk`
    "#]]
    .assert_eq(&refused(&["dist", "--target", HOST, "--prebuilt", &unnamed]));
    expect![[r#"
        error: `x86_64-unknown-linux-gnu` is supplied only in part: binary `tk-core` of package `toolkit-core` is missing
        hint: supply it too (`--prebuilt x86_64-unknown-linux-gnu:tk-core=<path>`, or DIR/x86_64-unknown-linux-gnu/tk-core), or supply no binary for `x86_64-unknown-linux-gnu` so cargo builds them all, or leave the package out with -p
    "#]]
    .assert_eq(&refused(&["dist", "--target", HOST, "--prebuilt", &spec("tk", &tk)]));
    let dir = scratch.join("dir");
    fs::create_dir_all(dir.join(HOST)).unwrap();
    fs::copy(&tk, dir.join(HOST).join("tk")).unwrap();
    expect![[r#"
        error: binary `tk` of package `toolkit` for `x86_64-unknown-linux-gnu` is given twice: `--prebuilt x86_64-unknown-linux-gnu:tk=SCRATCH/bins/tk` and SCRATCH/dir/x86_64-unknown-linux-gnu/tk
        hint: pass each binary once
    "#]]
    .assert_eq(&refused(&[
        "dist",
        "--prebuilt",
        &spec("tk", &tk),
        "--prebuilt",
        &spec("tk-core", &core),
        "--prebuilt-dir",
        dir.to_str().unwrap(),
    ]));

    // Both named: both apps packaged from them, nothing compiled.
    let output = castoff(
        &workspace,
        &scratch,
        &[
            "dist",
            "--target",
            HOST,
            "--prebuilt",
            &spec("tk", &tk),
            "--prebuilt",
            &spec("tk-core", &core),
        ],
    );
    assert_success(&output, "dist with both binaries supplied");
    assert!(!workspace.join("target").join(HOST).exists());
    let manifest = manifest(&workspace.join("dist"));
    for (app, bin, path) in [("toolkit", "tk", &tk), ("toolkit-core", "tk-core", &core)] {
        let build = &manifest.app(app).unwrap().builds[0];
        assert_eq!(build.source, BuildSource::Prebuilt);
        assert_eq!(build.binaries[0].name, bin);
        assert_eq!(
            build.binaries[0].digest,
            format!(
                "sha256:{}",
                digest::hex(&digest::sha256(&fs::read(path).unwrap()))
            )
        );
    }
}

/// Without `SOURCE_DATE_EPOCH`, the release's timestamps are the commit time of HEAD (what the
/// release workflow sets, so a local dist of a commit matches CI's); outside git, npm's
/// 1985-10-26.
#[test]
fn without_source_date_epoch_the_head_commit_time_or_1985() {
    let scratch = scratch("epoch-default");
    let workspace = single_cli_workspace(&scratch, |toml| toml);
    let binary = write_static_elf(&scratch.join("bin"), "greeter", EM_X86_64, "hello");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(&workspace)
            .args(args)
            .env("GIT_AUTHOR_DATE", "@1234567890 +0000")
            .env("GIT_COMMITTER_DATE", "@1234567890 +0000")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert_success(&output, &format!("git {}", args.join(" ")));
    };
    let epoch_of_dist = |ceiling: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
        command
            .args(["dist", "--target", HOST, "--prebuilt"])
            .arg(format!("{HOST}={}", binary.display()))
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("CASTOFF_SIGN_KEY")
            .env("NO_COLOR", "1");
        if let Some(ceiling) = ceiling {
            // git stops looking for a repository here: the workspace is outside any.
            command.env("GIT_CEILING_DIRECTORIES", ceiling);
        }
        let output = command.output().unwrap();
        assert_success(&output, "dist without SOURCE_DATE_EPOCH");
        manifest(&workspace.join("dist")).source_date_epoch
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "release"]);
    assert_eq!(epoch_of_dist(None), Some(1_234_567_890));
    fs::remove_dir_all(workspace.join(".git")).unwrap();
    assert_eq!(
        epoch_of_dist(Some(&scratch)),
        Some(castoff_archive::NPM_EPOCH)
    );
}

/// The glibc and the musl build of one architecture, both static (crt-static and musl): each
/// wheel carries its own C library's tags, so the two get different files and glibc and
/// musl systems each get their own (the newcomer trial of #16 lost a wheel to this).
#[test]
fn static_glibc_and_musl_builds_get_a_wheel_each() {
    let scratch = scratch("both-libcs");
    let workspace = single_cli_workspace(&scratch, |toml| {
        toml.replace(
            "targets = [\"x86_64-unknown-linux-gnu\",",
            "targets = [\"x86_64-unknown-linux-gnu\", \"x86_64-unknown-linux-musl\",",
        )
    });
    let bins = scratch.join("bins");
    for triple in [HOST, "x86_64-unknown-linux-musl"] {
        write_static_elf(&bins.join(triple), "greeter", EM_X86_64, "hello");
    }
    let output = castoff(
        &workspace,
        &scratch,
        &[
            "dist",
            "--target",
            HOST,
            "--target",
            "x86_64-unknown-linux-musl",
            "--prebuilt-dir",
            bins.to_str().unwrap(),
        ],
    );
    assert_success(&output, "dist of both static builds");
    let mut wheels: Vec<String> = fs::read_dir(workspace.join("dist/python"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    wheels.sort();
    assert_eq!(
        wheels,
        [
            "greeter-0.3.1-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            "greeter-0.3.1-py3-none-musllinux_1_1_x86_64.whl",
            // The sdist, which prebuilt binaries do not change.
            "greeter-0.3.1.tar.gz",
        ]
    );
}

/// A platform with a glibc and a musl target, the glibc one listed first: the image is built
/// from the musl build (the plan's rule), and the merge of the two partials takes it from the
/// musl partial instead of refusing the layout (the scale bench's merge of every target of
/// the table met this).
#[test]
fn a_merge_takes_the_image_of_a_platform_from_its_musl_target() {
    let scratch = scratch("merge-both-libcs");
    let musl = "x86_64-unknown-linux-musl";
    let workspace = single_cli_workspace(&scratch, |toml| {
        toml.replace(
            "targets = [\"x86_64-unknown-linux-gnu\",",
            &format!("targets = [\"x86_64-unknown-linux-gnu\", \"{musl}\","),
        )
    });
    let mut partials = Vec::new();
    for triple in [HOST, musl] {
        let bins = scratch.join("bins").join(triple);
        write_static_elf(&bins.join(triple), "greeter", EM_X86_64, "hello");
        let dist = scratch.join(format!("partial-{triple}"));
        assert_success(
            &castoff(
                &workspace,
                &scratch,
                &[
                    "dist",
                    "--target",
                    triple,
                    "--prebuilt-dir",
                    bins.to_str().unwrap(),
                    "--dist-dir",
                    dist.to_str().unwrap(),
                ],
            ),
            &format!("the {triple} partial"),
        );
        partials.push(dist);
    }
    let merged = scratch.join("merged");
    let mut args = vec!["dist", "--dist-dir", merged.to_str().unwrap(), "--merge"];
    args.extend(partials.iter().map(|dir| dir.to_str().unwrap()));
    assert_success(&castoff(&workspace, &scratch, &args), "the merge");
    let images: Vec<String> = manifest(&merged)
        .artifacts
        .iter()
        .filter(|artifact| artifact.id.starts_with("oci-image/"))
        .map(|artifact| artifact.id.clone())
        .collect();
    assert_eq!(images, [format!("oci-image/greeter/{musl}")]);
}
