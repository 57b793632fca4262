//! The dist directory is castoff's to replace only when castoff wrote it (stage.rs): a
//! `--dist-dir` at the workspace, an ancestor of it, a symbolic link, a file, a foreign
//! directory or a castoff dist with a user's file in it is refused with exit code 2 and nothing
//! touched, by `dist` and by `dist --merge`. Runs killed at each point of the swap leave a
//! complete dist directory (or the previous one restorable) that the next run tidies up;
//! parallel runs on one dist directory take turns; figures go to `==> figures`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use castoff_test_support::binaries::{EM_X86_64, write_static_elf};
use castoff_test_support::figure;
use castoff_test_support::workspace::{assert_success, files};
use expect_test::expect;

use super::dist::{scratch, single_cli_workspace};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A single-cli copy with a planted static binary, ready for `dist --no-build`.
fn planted_workspace(name: &str) -> (PathBuf, PathBuf) {
    let scratch = scratch(name);
    let workspace = single_cli_workspace(&scratch, |toml| toml);
    write_static_elf(
        &workspace.join(format!("target/{TARGET}/release")),
        "greeter",
        EM_X86_64,
        "hello from greeter",
    );
    (scratch, workspace)
}

fn castoff(workspace: &Path, args: &[&str], epoch: &str, kill_at: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castoff"));
    command
        .args(args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", epoch)
        .env("NO_COLOR", "1")
        .env_remove("CASTOFF_TEST_KILL_AT");
    if let Some(kill_at) = kill_at {
        command.env("CASTOFF_TEST_KILL_AT", kill_at);
    }
    command.output().expect("running castoff")
}

fn no_build(workspace: &Path, dist_dir: &Path, epoch: &str, kill_at: Option<&str>) -> Output {
    castoff(
        workspace,
        &[
            "dist",
            "--no-build",
            "--target",
            TARGET,
            "--dist-dir",
            dist_dir.to_str().unwrap(),
        ],
        epoch,
        kill_at,
    )
}

/// Every file below `dir` with its bytes, and every symbolic link with its target, so a test
/// sees anything castoff deleted, changed or added.
pub(super) fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        // castoff's record of `cargo metadata` answers (metadata_cache.rs), kept in the target
        // directory: written whenever it is missing or stale, by refused runs too (under load
        // the first run may not have stored it), and never a file of the user's.
        if relative.ends_with("target/castoff/metadata") {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            out.insert(
                relative,
                format!("-> {}", fs::read_link(&path).unwrap().display()),
            );
        } else if kind.is_dir() {
            out.insert(relative.clone(), "dir".into());
            walk(root, &path, out);
        } else {
            let bytes = fs::read(&path).unwrap();
            let sha = castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes));
            out.insert(relative, sha);
        }
    }
}

/// stderr from `error:` on, with the scratch directory spelled `SCRATCH`.
fn error_text(output: &Output, scratch: &Path) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let from = stderr.find("error:").unwrap_or(0);
    stderr[from..].replace(&scratch.display().to_string(), "SCRATCH")
}

#[test]
fn dist_dirs_castoff_did_not_write_are_refused_and_left_alone() {
    let (scratch, workspace) = planted_workspace("refused-dist-dirs");
    // A real castoff dist to put a user's file into, and the partial to merge.
    let castoff_dist = scratch.join("castoff-dist");
    assert_success(
        &no_build(&workspace, &castoff_dist, "1700000000", None),
        "the dist to tamper with",
    );
    let partial = scratch.join("partial");
    assert_success(
        &no_build(&workspace, &partial, "1700000000", None),
        "the partial to merge",
    );
    fs::write(castoff_dist.join("notes.txt"), "mine").unwrap();
    fs::create_dir_all(castoff_dist.join("python/extra")).unwrap();
    fs::write(castoff_dist.join("python/extra/keep.py"), "mine").unwrap();
    let foreign = scratch.join("foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("thesis.tex"), "years of work").unwrap();
    std::os::unix::fs::symlink(&castoff_dist, scratch.join("link")).unwrap();
    fs::write(scratch.join("a-file"), "not a directory").unwrap();

    let cases: [(&str, PathBuf); 6] = [
        ("workspace root", workspace.clone()),
        ("ancestor of the workspace", scratch.clone()),
        ("castoff dist with a user's files", castoff_dist.clone()),
        ("directory without a manifest", foreign.clone()),
        ("symbolic link", scratch.join("link")),
        ("a file", scratch.join("a-file")),
    ];
    let mut seen = String::new();
    for (what, dir) in &cases {
        for merge in [false, true] {
            let before = tree(&scratch);
            let dir_arg = dir.to_str().unwrap();
            let output = if merge {
                castoff(
                    &workspace,
                    &[
                        "dist",
                        "--merge",
                        partial.to_str().unwrap(),
                        "--dist-dir",
                        dir_arg,
                    ],
                    "1700000000",
                    None,
                )
            } else {
                no_build(&workspace, dir, "1700000000", None)
            };
            let command = if merge { "dist --merge" } else { "dist" };
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command} at a {what}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                tree(&scratch),
                before,
                "{command} at a {what} touched files"
            );
            let text = error_text(&output, &scratch);
            assert!(text.contains("\nhint: "), "{text}");
            if !merge {
                seen.push_str(&format!("## {what}\n{text}"));
            } else {
                assert!(text.starts_with("error: the dist directory"), "{text}");
            }
        }
    }
    expect![[r#"
        ## workspace root
        error: the dist directory SCRATCH/workspace is the workspace root (SCRATCH/workspace); castoff replaces the dist directory as a whole
        hint: pass a directory of its own, e.g. --dist-dir SCRATCH/workspace/dist
        ## ancestor of the workspace
        error: the dist directory SCRATCH contains the workspace (SCRATCH/workspace); castoff replaces the dist directory as a whole
        hint: pass a directory of its own, e.g. --dist-dir SCRATCH/workspace/dist
        ## castoff dist with a user's files
        error: the dist directory SCRATCH/castoff-dist holds files castoff did not write: notes.txt, python/extra/keep.py; castoff replaces the dist directory as a whole and would delete them
        hint: move them out of SCRATCH/castoff-dist, or pass another directory with --dist-dir
        ## directory without a manifest
        error: the dist directory SCRATCH/foreign is not empty and not a castoff dist (it has no manifest.json); castoff replaces the dist directory as a whole and would delete what it holds
        hint: pass an empty or new directory with --dist-dir, or move that directory's files elsewhere
        ## symbolic link
        error: the dist directory SCRATCH/link is a symbolic link (to SCRATCH/castoff-dist); castoff replaces the dist directory as a whole and would replace the link, not write into its target
        hint: pass the directory itself: --dist-dir SCRATCH/castoff-dist
        ## a file
        error: the dist directory SCRATCH/a-file is a file, not a directory
        hint: pass a directory castoff may create and replace with --dist-dir
    "#]]
    .assert_eq(&seen);

    // Once the user's files are gone, the same directory is castoff's again; an empty
    // directory is fine from the start.
    fs::remove_file(castoff_dist.join("notes.txt")).unwrap();
    fs::remove_dir_all(castoff_dist.join("python/extra")).unwrap();
    assert_success(
        &no_build(&workspace, &castoff_dist, "1700000001", None),
        "dist into the cleaned castoff dist",
    );
    let empty = scratch.join("empty");
    fs::create_dir_all(&empty).unwrap();
    assert_success(
        &no_build(&workspace, &empty, "1700000000", None),
        "dist into an empty directory",
    );
    figure(format!(
        "filesystem: {} refused --dist-dir cases (dist and dist --merge), each exit 2 with nothing touched",
        cases.len() * 2
    ));
}

/// `epoch` of the manifest in `dist_dir`, or `None` when there is no complete dist.
fn dist_epoch(dist_dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dist_dir.join("manifest.json")).ok()?;
    let manifest = castoff_plan::Manifest::from_json(&text).ok()?;
    // Complete: every recorded file is there with its recorded size.
    for artifact in &manifest.artifacts {
        if let (Some(path), Some(size)) = (&artifact.path, artifact.size) {
            let metadata = fs::metadata(dist_dir.join(path)).ok()?;
            if metadata.is_file() && metadata.len() != size {
                return None;
            }
        }
    }
    manifest.source_date_epoch
}

fn leftovers(scratch: &Path) -> Vec<String> {
    fs::read_dir(scratch)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".castoff-"))
        .collect()
}

#[test]
fn a_run_killed_during_the_swap_leaves_a_complete_dist() {
    let (scratch, workspace) = planted_workspace("killed-swap");
    let dist_dir = scratch.join("dist");
    assert_success(
        &no_build(&workspace, &dist_dir, "1000", None),
        "the previous dist",
    );
    let mut killed = 0;
    for (round, phase) in ["before", "exchanged"].into_iter().enumerate() {
        let epoch = format!("{}", 2000 + round);
        let output = no_build(
            &workspace,
            &dist_dir,
            &epoch,
            Some(&format!("dist-swap:{phase}")),
        );
        assert!(
            !output.status.success(),
            "the kill point {phase} was not reached"
        );
        killed += 1;
        let now = dist_epoch(&dist_dir);
        match phase {
            "before" => assert_eq!(
                now,
                Some(1000),
                "killed before the swap: the previous dist stays"
            ),
            _ => assert_eq!(
                now,
                Some(2001),
                "killed after the exchange: the new dist is in place"
            ),
        }
        assert!(
            !leftovers(&scratch).is_empty(),
            "a killed run leaves its staging directory"
        );
        // The next run sweeps what the killed one left.
        let next = format!("{}", 3000 + round);
        assert_success(
            &no_build(&workspace, &dist_dir, &next, None),
            "the run after the kill",
        );
        assert_eq!(dist_epoch(&dist_dir), next.parse().ok());
        assert_eq!(leftovers(&scratch), Vec::<String>::new());
    }

    // The two-rename way (other systems): a run killed between its renames leaves no dist
    // directory, only the complete previous one aside; the next run puts it back first.
    let previous = tree(&dist_dir);
    let aside = scratch.join(format!(".dist.castoff-old-{}", u32::MAX - 1));
    fs::rename(&dist_dir, &aside).unwrap();
    assert_success(
        &no_build(&workspace, &dist_dir, "3001", None),
        "the run after a kill between the renames",
    );
    assert_eq!(
        tree(&dist_dir),
        previous,
        "the restored dist is the previous one (an unchanged run reuses it)"
    );
    assert_eq!(leftovers(&scratch), Vec::<String>::new());
    figure(format!(
        "filesystem: {killed} runs killed during the swap, each leaving a complete dist; 1 aside copy restored"
    ));
}

#[test]
fn parallel_runs_on_one_dist_dir_take_turns() {
    let (scratch, workspace) = planted_workspace("parallel");
    let dist_dir = scratch.join("dist");
    let rounds = 5;
    let runs = 4;
    let started = Instant::now();
    for round in 0..rounds {
        let children: Vec<_> = (0..runs)
            .map(|run| {
                let epoch = format!("{}", 10_000 + round * runs + run);
                Command::new(env!("CARGO_BIN_EXE_castoff"))
                    .args(["dist", "--no-build", "--target", TARGET, "--dist-dir"])
                    .arg(&dist_dir)
                    .arg("--manifest-path")
                    .arg(workspace.join("Cargo.toml"))
                    .env("SOURCE_DATE_EPOCH", epoch)
                    .env_remove("CASTOFF_TEST_KILL_AT")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert_success(&output, "one of the parallel runs");
        }
        let epoch = dist_epoch(&dist_dir).expect("a complete dist after the parallel runs");
        assert!((10_000..10_000 + (rounds * runs) as u64).contains(&epoch));
        assert_eq!(leftovers(&scratch), Vec::<String>::new());
    }
    let before = files(&dist_dir);
    assert!(!before.is_empty());
    figure(format!(
        "filesystem: {rounds} rounds of {runs} parallel dist runs on one dist directory, all succeeded, no leftovers ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
}

/// Waits for `child`, failing the test if it runs past a generous watchdog (a hang is what
/// these cases must never do; a normal run ends in well under a second).
fn wait_or_hang(mut child: std::process::Child, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{what}: castoff hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn peak_rss_kib_of(output_stderr: &str) -> Option<u64> {
    output_stderr
        .lines()
        .find_map(|line| line.strip_prefix("castoff-peak-rss-kib "))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn merge_refuses_links_fifos_devices_and_oversized_files_in_partials() {
    let (scratch, workspace) = planted_workspace("merge-tampered");
    let partial = scratch.join("partial");
    assert_success(
        &no_build(&workspace, &partial, "1700000000", None),
        "the partial to tamper with",
    );
    let manifest: castoff_plan::Manifest = castoff_plan::Manifest::from_json(
        &fs::read_to_string(partial.join("manifest.json")).unwrap(),
    )
    .unwrap();
    let wheel = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "wheel")
        .and_then(|a| a.path.clone())
        .unwrap();
    let blobs = partial.join("oci/greeter/blobs/sha256");
    let largest_blob = fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .max_by_key(|path| fs::metadata(path).unwrap().len())
        .unwrap();
    let largest_blob = largest_blob.strip_prefix(&partial).unwrap().to_owned();

    type Tamper = Box<dyn Fn(&Path)>;
    let to_dev_zero = |relative: PathBuf| -> Tamper {
        Box::new(move |dir: &Path| {
            let path = dir.join(&relative);
            fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        })
    };
    let mknod = |relative: PathBuf, kind: &'static str| -> Tamper {
        Box::new(move |dir: &Path| {
            let path = dir.join(&relative);
            fs::remove_file(&path).unwrap();
            let mut command = Command::new("mknod");
            command.arg(&path).arg(kind);
            if kind == "c" {
                command.args(["1", "5"]); // the device /dev/zero is
            }
            let status = command.status().expect("running mknod");
            assert!(
                status.success(),
                "mknod {kind} failed (the suite runs as root)"
            );
        })
    };
    let cases: Vec<(&str, Tamper, i32, &str)> = vec![
        (
            "wheel -> symlink to /dev/zero",
            to_dev_zero(PathBuf::from(&wheel)),
            1,
            "is a symbolic link, not a regular file",
        ),
        (
            "wheel -> FIFO",
            mknod(PathBuf::from(&wheel), "p"),
            1,
            "is a FIFO, not a regular file",
        ),
        (
            "wheel -> character device (/dev/zero's)",
            mknod(PathBuf::from(&wheel), "c"),
            1,
            "is a device, not a regular file",
        ),
        (
            "wheel with 1 MiB appended",
            Box::new({
                let wheel = wheel.clone();
                move |dir: &Path| {
                    use std::io::Write as _;
                    let mut file = fs::OpenOptions::new()
                        .append(true)
                        .open(dir.join(&wheel))
                        .unwrap();
                    file.write_all(&vec![0u8; 1 << 20]).unwrap();
                }
            }),
            1,
            "expected",
        ),
        (
            "largest image layer blob -> symlink to /dev/zero",
            to_dev_zero(largest_blob.clone()),
            1,
            "is a symbolic link, not a regular file",
        ),
        (
            "the wheel renamed (and its manifest path with it)",
            Box::new({
                let wheel = wheel.clone();
                move |dir: &Path| {
                    let renamed = "python/evil-6.6.6-py3-none-any.whl";
                    fs::rename(dir.join(&wheel), dir.join(renamed)).unwrap();
                    let manifest = dir.join("manifest.json");
                    let text = fs::read_to_string(&manifest).unwrap();
                    assert!(text.contains(&wheel));
                    fs::write(&manifest, text.replace(&wheel, renamed)).unwrap();
                }
            }),
            1,
            "has the path `python/evil-6.6.6-py3-none-any.whl`, but dist names it",
        ),
        (
            "manifest.json -> symlink to /dev/zero",
            to_dev_zero(PathBuf::from("manifest.json")),
            2,
            "is a symbolic link, not a regular file",
        ),
    ];
    let mut slowest = 0f64;
    for (what, tamper, code, expected) in &cases {
        let copy = scratch.join("tampered");
        let _ = fs::remove_dir_all(&copy);
        castoff_test_support::workspace::copy_tree(&partial, &copy);
        tamper(&copy);
        let out = scratch.join("merged");
        let started = Instant::now();
        // GNU time (installed by the harness) reports the run's peak RSS.
        let child = Command::new("/usr/bin/time")
            .args([
                "-f",
                "castoff-peak-rss-kib %M",
                env!("CARGO_BIN_EXE_castoff"),
            ])
            .args(["dist", "--merge"])
            .arg(&copy)
            .arg("--dist-dir")
            .arg(&out)
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env_remove("CASTOFF_TEST_KILL_AT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = wait_or_hang(child, what);
        let took = started.elapsed().as_secs_f64();
        slowest = slowest.max(took);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(*code), "{what}: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(stderr.contains("hint: "), "{what}: {stderr}");
        assert!(!out.exists(), "{what}: a merged dist was written");
        assert_eq!(leftovers(&scratch), Vec::<String>::new(), "{what}");
        let rss = peak_rss_kib_of(&stderr).expect("GNU time's peak RSS line");
        figure(format!(
            "filesystem: merge of a partial with {what}: exit {code} in {took:.2} s, peak RSS {} MiB",
            rss / 1024
        ));
    }
    figure(format!(
        "filesystem: {} tampered partials refused by merge, slowest {slowest:.2} s",
        cases.len()
    ));
}
