//! Every input castoff-oci refuses, with the exact message the user sees (paths shortened to
//! `<castoff>` and `<tmp>`), and the promise that a refused build leaves nothing in dist/.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use castoff_oci::ImageInput;
use castoff_plan::plan::{BaseImage, ExtraFile};
use castoff_plan::{AppId, Release, Target};
use castoff_test_support::workspace::fixture_release;

use crate::common::*;
use expect_test::{Expect, expect};

/// Builds, expects a refusal with the `expected` message, and checks dist/ holds no image.
fn check(release: &Release, inputs: Vec<ImageInput>, tmp: &Path, expected: Expect) {
    expected.assert_eq(&refusal(release, inputs, tmp));
}

/// Builds, expects a refusal, checks dist/ holds no image; the message, paths shortened.
fn refusal(release: &Release, inputs: Vec<ImageInput>, tmp: &Path) -> String {
    let dist = tmp.join("dist");
    let error = build_first(release, inputs, &options(release), &dist)
        .expect_err("the build should be refused");
    let message = castoff_test_support::with_hint(&error, error.hint())
        .replace(&tmp.display().to_string(), "<tmp>")
        .replace(
            &castoff_test_support::workspace::repository_root()
                .display()
                .to_string(),
            "<castoff>",
        );
    assert!(message.contains("\nhint: "), "no hint in: {message}");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dist.join("oci"))
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a refused build left {leftovers:?}");
    message
}

/// http-service with fake static binaries for every target.
fn pinger(tmp: &Path) -> (Release, Vec<ImageInput>) {
    let release = fixture_release("http-service");
    let inputs = fake_inputs(&release, AppId(0), &tmp.join("bin"));
    (release, inputs)
}

fn triple(name: &str) -> &'static Target {
    name.parse().unwrap()
}

#[test]
fn dynamically_linked_binary_on_scratch() {
    let tmp = temp_dir("refuse-dynamic");
    let (release, mut inputs) = pinger(&tmp);
    inputs[0].binaries[0].1 = fixture_binary("http-service", "pinger", Linking::Dynamic);
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            `<castoff>/target/fixtures/host/x86_64-unknown-linux-gnu/release/pinger` (pinger of `pinger` for x86_64-unknown-linux-gnu) is dynamically linked (ELF interpreter `/lib64/ld-linux-x86-64.so.2`), and a `scratch` image has no dynamic loader or C library to run it
            hint: `crt-static = true` is set, so this binary was built some other way: `dist --no-build` took one built before the setting, or `--prebuilt` one linked dynamically; run `castoff dist` without --no-build, or pass a statically linked binary"#]],
    );
}

#[test]
fn dynamically_linked_binary_on_a_base_is_fine() {
    let tmp = temp_dir("dynamic-on-base");
    let (_, base) = {
        let release = fixture_release("single-cli");
        let inputs = fake_inputs(&release, AppId(0), &tmp.join("base-bin"));
        (release.clone(), build(&release, inputs, &tmp.join("base")))
    };
    let (mut release, mut inputs) = pinger(&tmp);
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(base.layout_dir.clone());
    inputs[0].binaries[0].1 = fixture_binary("http-service", "pinger", Linking::Dynamic);
    build(&release, inputs, &tmp.join("dist"));
}

#[test]
fn not_an_executable_on_scratch() {
    let tmp = temp_dir("refuse-not-elf");
    let (release, mut inputs) = pinger(&tmp);
    let script = tmp.join("pinger.sh");
    std::fs::write(&script, "#!/bin/sh\necho pinger\n").unwrap();
    inputs[0].binaries[0].1 = script;
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            `<tmp>/pinger.sh` (pinger of `pinger` for x86_64-unknown-linux-gnu) is not an ELF executable, and nothing on a `scratch` image could run it
            hint: pass the binary compiled for x86_64-unknown-linux-gnu, or set a `base` image that can run it"#]],
    );
}

#[test]
fn binary_for_another_machine() {
    let tmp = temp_dir("refuse-machine");
    let (release, mut inputs) = pinger(&tmp);
    let arm = inputs
        .iter()
        .position(|i| i.target.triple == "aarch64-unknown-linux-gnu");
    let x86 = inputs[1 - arm.unwrap()].binaries[0].1.clone();
    inputs[arm.unwrap()].binaries[0].1 = x86;
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            `<tmp>/bin/x86_64-unknown-linux-gnu/pinger` (pinger of `pinger`) is an ELF file for x86-64 (64-bit, little-endian), but the image for linux/arm64/v8 runs aarch64 (64-bit, little-endian)
            hint: pass the binary compiled for aarch64-unknown-linux-gnu"#]],
    );
}

/// Binaries whose ELF machine number is the image's but whose class or byte order is not: a
/// big-endian ppc64 build in the ppc64le image, 31-bit s390 in s390x, riscv32 in riscv64, x32
/// in amd64, big-endian aarch64 in arm64. None of them would start there.
#[test]
fn binary_of_the_machine_but_another_class_or_byte_order() {
    use castoff_test_support::binaries::{
        EM_AARCH64, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64, elf_header,
    };
    let tmp = temp_dir("refuse-look-alike");
    let (release, _) = pinger(&tmp);
    #[rustfmt::skip]
    let cases = [
        ("powerpc64le-unknown-linux-musl", "ppc64", EM_PPC64, true, true),
        ("s390x-unknown-linux-musl", "s390", EM_S390, false, true),
        ("riscv64gc-unknown-linux-musl", "riscv32", EM_RISCV, false, false),
        ("x86_64-unknown-linux-musl", "x32", EM_X86_64, false, false),
        ("aarch64-unknown-linux-musl", "aarch64_be", EM_AARCH64, true, true),
    ];
    let mut messages = Vec::new();
    for (target, name, machine, elf64, big_endian) in cases {
        let path = tmp.join("bin").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, elf_header(machine, elf64, big_endian)).unwrap();
        let input = ImageInput {
            target: triple(target),
            binaries: vec![("pinger".to_owned(), path)],
            sbom: None,
        };
        messages.push(refusal(&release, vec![input], &tmp));
    }
    expect![[r#"
        `<tmp>/bin/ppc64` (pinger of `pinger`) is an ELF file for ppc64 (64-bit, big-endian), but the image for linux/ppc64le runs ppc64 (64-bit, little-endian)
        hint: pass the binary compiled for powerpc64le-unknown-linux-musl

        `<tmp>/bin/s390` (pinger of `pinger`) is an ELF file for s390 (32-bit, big-endian), but the image for linux/s390x runs s390 (64-bit, big-endian)
        hint: pass the binary compiled for s390x-unknown-linux-musl

        `<tmp>/bin/riscv32` (pinger of `pinger`) is an ELF file for riscv (32-bit, little-endian), but the image for linux/riscv64 runs riscv (64-bit, little-endian)
        hint: pass the binary compiled for riscv64gc-unknown-linux-musl

        `<tmp>/bin/x32` (pinger of `pinger`) is an ELF file for x86-64 (32-bit, little-endian), but the image for linux/amd64 runs x86-64 (64-bit, little-endian)
        hint: pass the binary compiled for x86_64-unknown-linux-musl

        `<tmp>/bin/aarch64_be` (pinger of `pinger`) is an ELF file for aarch64 (64-bit, big-endian), but the image for linux/arm64/v8 runs aarch64 (64-bit, little-endian)
        hint: pass the binary compiled for aarch64-unknown-linux-musl"#]]
    .assert_eq(&messages.join("\n\n"));
}

#[test]
fn missing_binary() {
    let tmp = temp_dir("refuse-missing-binary");
    let (release, mut inputs) = pinger(&tmp);
    inputs[0].binaries.clear();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            binary `pinger` of `pinger` for x86_64-unknown-linux-gnu was not given to the image builder
            hint: build every binary listed in `bins` for this target"#]],
    );
}

#[test]
fn non_linux_target_and_duplicate_platform_and_no_platform() {
    let tmp = temp_dir("refuse-platforms");
    let (release, inputs) = pinger(&tmp);
    let mut mac = inputs.clone();
    mac[0].target = triple("aarch64-apple-darwin");
    check(
        &release,
        mac,
        &tmp,
        expect![[r#"
            target `aarch64-apple-darwin` of `pinger` has no container image platform (only Linux targets do)
            hint: build images for Linux targets only"#]],
    );
    let mut twice = inputs.clone();
    twice.push(ImageInput {
        target: triple("x86_64-unknown-linux-musl"),
        ..inputs[0].clone()
    });
    check(
        &release,
        twice,
        &tmp,
        expect![[r#"
            platform linux/amd64 of `pinger` is given twice (targets x86_64-unknown-linux-gnu and x86_64-unknown-linux-musl)
            hint: build one target per image platform, e.g. either the gnu or the musl target"#]],
    );
    check(
        &release,
        Vec::new(),
        &tmp,
        expect![[r#"
            no image of `pinger` was asked for: the list of platforms is empty
            hint: pass at least one Linux target"#]],
    );
}

/// A scratch "workspace" under `tmp` holding `conf/` files, and the release pointed at it.
fn with_extra_file(tmp: &Path, src: &str) -> (Release, Vec<ImageInput>) {
    let (mut release, inputs) = pinger(tmp);
    let workspace = tmp.join("workspace");
    std::fs::create_dir_all(workspace.join("conf")).unwrap();
    std::fs::create_dir_all(tmp.join("outside")).unwrap();
    std::fs::write(tmp.join("outside/secret"), "secret\n").unwrap();
    release.workspace_root = workspace.clone();
    release.apps[0].oci.as_mut().unwrap().files = vec![ExtraFile {
        src: workspace.join(src),
        dst: "/etc/pinger.toml".to_owned(),
        glob: None,
        mode: Some(0o644),
        dir_mode: 0o755,
        owner: (0, 0),
    }];
    (release, inputs)
}

#[test]
fn extra_file_missing() {
    let tmp = temp_dir("refuse-extra-missing");
    let (release, inputs) = with_extra_file(&tmp, "conf/pinger.toml");
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf/pinger.toml` of `pinger` (for `/etc/pinger.toml`) does not exist
            hint: create it, or fix `src` in [package.metadata.castoff.oci.files] (it is relative to the package directory)"#]],
    );
}

#[test]
fn extra_file_is_a_symlink() {
    let tmp = temp_dir("refuse-extra-symlink");
    let (release, inputs) = with_extra_file(&tmp, "conf/pinger.toml");
    std::fs::write(tmp.join("workspace/conf/real.toml"), "x = 1\n").unwrap();
    symlink("real.toml", tmp.join("workspace/conf/pinger.toml")).unwrap();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf/pinger.toml` of `pinger` (for `/etc/pinger.toml`) is a symbolic link
            hint: point `src` at the file or directory itself: links are not followed, so nothing outside the workspace can end up in the image"#]],
    );
}

#[test]
fn extra_file_outside_the_workspace() {
    let tmp = temp_dir("refuse-extra-outside");
    let (release, inputs) = with_extra_file(&tmp, "conf/linked/secret");
    // Lexically inside the workspace (the plan accepted it), but a directory on the way
    // is a link to the outside.
    symlink(tmp.join("outside"), tmp.join("workspace/conf/linked")).unwrap();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf/linked/secret` of `pinger` (for `/etc/pinger.toml`) resolves to `<tmp>/outside/secret`, outside the workspace `<tmp>/workspace` (a directory on the way is a symbolic link)
            hint: copy the file into the workspace and name that copy in `src`"#]],
    );
}

/// A directory source copies its tree; a device or FIFO in it is refused.
#[test]
fn extra_tree_with_a_fifo() {
    let tmp = temp_dir("refuse-extra-fifo");
    let (release, inputs) = with_extra_file(&tmp, "conf");
    let fifo = tmp.join("workspace/conf/pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) holds `<tmp>/workspace/conf/pipe`, which is not a regular file
            hint: remove the device, FIFO or socket from the tree, or narrow `src` with a glob"#]],
    );
}

#[test]
fn extra_tree_with_a_link_out_of_the_workspace() {
    let tmp = temp_dir("refuse-extra-tree-link");
    let (release, inputs) = with_extra_file(&tmp, "conf");
    std::fs::write(tmp.join("workspace/conf/a.toml"), "a = 1\n").unwrap();
    symlink(
        tmp.join("outside/secret"),
        tmp.join("workspace/conf/secret"),
    )
    .unwrap();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) holds the symbolic link `<tmp>/workspace/conf/secret` (to <tmp>/outside/secret, outside the workspace)
            hint: replace the link with the file itself: links are not followed, so nothing outside the workspace can end up in the image"#]],
    );
}

#[test]
fn extra_glob_matching_nothing() {
    let tmp = temp_dir("refuse-extra-glob-empty");
    let (mut release, inputs) = with_extra_file(&tmp, "conf");
    std::fs::write(tmp.join("workspace/conf/a.toml"), "a = 1\n").unwrap();
    release.apps[0].oci.as_mut().unwrap().files[0].glob = Some("**/*.css".to_owned());
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) matches no file with `**/*.css`
            hint: fix the pattern (`*` stays within a directory, `**/` crosses them), or remove the entry"#]],
    );
}

/// A glob's walk meets a link to a directory (whose `.css` files would otherwise vanish
/// silently): refused like a link in a copied tree. A link to a file the glob does not match
/// is left alone, and so is a link below the depth a glob without `**` reaches.
#[test]
fn extra_glob_meeting_a_directory_link() {
    let tmp = temp_dir("refuse-extra-glob-dir-link");
    let (mut release, inputs) = with_extra_file(&tmp, "conf");
    std::fs::write(tmp.join("workspace/conf/a.css"), "a {}\n").unwrap();
    std::fs::create_dir_all(tmp.join("workspace/vendor/deep")).unwrap();
    std::fs::write(tmp.join("workspace/vendor/x.css"), "x {}\n").unwrap();
    symlink(
        tmp.join("workspace/a-file"),
        tmp.join("workspace/conf/unmatched.txt"),
    )
    .unwrap();
    symlink(
        tmp.join("workspace/vendor"),
        tmp.join("workspace/conf/vendor"),
    )
    .unwrap();
    release.apps[0].oci.as_mut().unwrap().files[0].glob = Some("**/*.css".to_owned());
    check(
        &release,
        inputs.clone(),
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) holds the symbolic link `<tmp>/workspace/conf/vendor` (to <tmp>/workspace/vendor)
            hint: replace the link with the file itself: links are not followed, so nothing outside the workspace can end up in the image"#]],
    );
    // `*.css` looks at `conf/` itself only: the directory link is never entered.
    release.apps[0].oci.as_mut().unwrap().files[0].glob = Some("*.css".to_owned());
    let dir = tmp.join("dist-one-level");
    let built = build(&release, inputs, &dir);
    assert!(!built.images.is_empty(), "the one-level glob built");
}

/// Two sources writing one destination; a tree whose `dst` is another entry's file.
#[test]
fn extra_sources_colliding() {
    let tmp = temp_dir("refuse-extra-collide");
    let (mut release, inputs) = with_extra_file(&tmp, "conf");
    std::fs::write(tmp.join("workspace/conf/a.toml"), "a = 1\n").unwrap();
    std::fs::write(tmp.join("workspace/b.toml"), "b = 1\n").unwrap();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files[0].dst = "/etc/app".to_owned();
    let mut second = oci.files[0].clone();
    second.src = tmp.join("workspace/b.toml");
    second.dst = "/etc/app/a.toml".to_owned();
    oci.files.push(second);
    check(
        &release,
        inputs.clone(),
        &tmp,
        expect![[r#"
            the image of `pinger` would contain `/etc/app/a.toml` twice (the extra file `<tmp>/workspace/conf/a.toml` and the extra file `<tmp>/workspace/b.toml`)
            hint: choose another `dst` for the extra file"#]],
    );
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files[1].dst = "/etc/app".to_owned();
    oci.files.swap(0, 1);
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            the image of `pinger` would contain `/etc/app` twice (the extra file `<tmp>/workspace/b.toml` and the directory `<tmp>/workspace/conf`)
            hint: choose another `dst` for the extra file"#]],
    );
}

/// More than 10 000 files, or more than 1 GiB (a sparse file), is refused before any copy.
#[test]
fn extra_files_over_the_limits() {
    let tmp = temp_dir("refuse-extra-limits");
    let (release, inputs) = with_extra_file(&tmp, "conf");
    for index in 0..=10_000 {
        std::fs::write(tmp.join(format!("workspace/conf/{index:05}")), "").unwrap();
    }
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) brings the number of extra files over 10000
            hint: narrow `src` (a glob like `static/**/*.css`), or pack the files into an archive the service unpacks"#]],
    );
    let tmp = temp_dir("refuse-extra-limits-size");
    let (release, inputs) = with_extra_file(&tmp, "conf");
    let big = std::fs::File::create(tmp.join("workspace/conf/big")).unwrap();
    big.set_len((1 << 30) + 1).unwrap();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            extra file `<tmp>/workspace/conf` of `pinger` (for `/etc/pinger.toml`) brings the extra files over 1024 MiB
            hint: leave large data out of the image: mount it as a volume (`oci.volumes`)"#]],
    );
}

#[test]
fn extra_file_over_a_binary_or_the_scratch_files() {
    let tmp = temp_dir("refuse-extra-duplicate");
    let (mut release, inputs) = with_extra_file(&tmp, "conf/passwd");
    std::fs::write(tmp.join("workspace/conf/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files[0].dst = "/etc/passwd".to_owned();
    check(
        &release,
        inputs.clone(),
        &tmp,
        expect![[r#"
            the image of `pinger` would contain `/etc/passwd` twice (the scratch image's `/etc/passwd` and the extra file `<tmp>/workspace/conf/passwd`)
            hint: choose another `dst` for the extra file"#]],
    );
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.files[0].dst = "/usr/local/bin/pinger/passwd".to_owned();
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            the image of `pinger` would contain `/usr/local/bin/pinger` twice (the binary `pinger` and the parent directory of `/usr/local/bin/pinger/passwd`)
            hint: choose another `dst` for the extra file"#]],
    );
}

#[test]
fn registry_base_must_be_pulled_first() {
    let tmp = temp_dir("refuse-registry-base");
    let (mut release, inputs) = pinger(&tmp);
    // castoff's `dist` pulls registry bases into `<target>/castoff/base-cache/` before
    // building; the image builder itself never opens a socket.
    release.target_directory = tmp.join("target");
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Reference(
        "gcr.io/distroless/static-debian12@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            .to_owned(),
    );
    check(
        &release,
        inputs,
        &tmp,
        expect![[r#"
            the base image `gcr.io/distroless/static-debian12@sha256:0000000000000000000000000000000000000000000000000000000000000000` of `pinger` is not in the base cache `<tmp>/target/castoff/base-cache`
            hint: `castoff dist` pulls registry bases into the cache before building; when calling the image builder directly, pull it first (castoff's `base::pull_bases`)"#]],
    );
}

/// A base layout built by castoff itself for amd64 only.
fn amd64_base(tmp: &Path) -> PathBuf {
    let release = fixture_release("single-cli");
    let mut inputs = fake_inputs(&release, AppId(0), &tmp.join("base-bin"));
    inputs.retain(|input| input.target.triple == HOST_TRIPLE);
    build(&release, inputs, &tmp.join("base")).layout_dir
}

#[test]
fn base_layout_problems() {
    let tmp = temp_dir("refuse-base-layout");
    let (mut release, inputs) = pinger(&tmp);
    let base = amd64_base(&tmp);
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(base.clone());
    check(
        &release,
        inputs.clone(),
        &tmp,
        expect![[r#"
            base image layout `<tmp>/base/oci/greeter` of `pinger`: it has no image for linux/arm64/v8 (it has: linux/amd64)
            hint: copy every platform of the base: `skopeo copy --all docker://<image>@sha256:<digest> oci:<tmp>/base/oci/greeter:base`"#]],
    );

    // A tampered layer blob is caught while it is copied.
    let amd64_only: Vec<ImageInput> = inputs
        .into_iter()
        .filter(|input| input.target.triple == HOST_TRIPLE)
        .collect();
    let layout_index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("index.json")).unwrap()).unwrap();
    let index = blob_json(
        &base,
        layout_index["manifests"][0]["digest"].as_str().unwrap(),
    );
    let manifest = blob_json(&base, index["manifests"][0]["digest"].as_str().unwrap());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer_path = base
        .join("blobs/sha256")
        .join(layer.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&layer_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer_path, bytes).unwrap();
    let message = build_first(
        &release,
        amd64_only.clone(),
        &options(&release),
        &tmp.join("dist"),
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("but its descriptor says"), "{message}");
    check(
        &release,
        amd64_only.clone(),
        &tmp,
        expect![[r#"
            base image layout `<tmp>/base/oci/greeter` of `pinger`: blob `<tmp>/base/oci/greeter/blobs/sha256/75b91adb6c6bc0bd33d370104acc3157d6afa3a18f0463cf97eb60b55570e4e7` has digest sha256:cb0c15d2bb5633f57ecfcf2b5e724f3589a72cae21094f6cf6c8ccf6a300db2c and 270 bytes, but its descriptor says sha256:75b91adb6c6bc0bd33d370104acc3157d6afa3a18f0463cf97eb60b55570e4e7 and 270 bytes
            hint: the layout is damaged or was edited; copy the base image again with `skopeo copy`"#]],
    );

    // Not a layout at all.
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(tmp.join("nowhere"));
    check(
        &release,
        amd64_only,
        &tmp,
        expect![[r#"
            base image layout `<tmp>/nowhere` of `pinger`: cannot read `oci-layout`: No such file or directory (os error 2)
            hint: create it with `skopeo copy docker://<image>@sha256:<digest> oci:<dir>:<tag>`"#]],
    );
}
