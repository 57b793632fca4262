//! The pictures and generated files of the CLI (issue 10): `plan --format svg` renders
//! castoff's own plan exactly as committed in docs/plan.svg (shown in the README);
//! `castoff completions bash` parses with `bash -n`, `castoff man` renders with groff without
//! warnings, and castoff's own archive (the harness's self-dist) ships both. A missing
//! Graphviz is checked in `offline::cli_extras`.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{output_text as text, repository_root};
use expect_test::expect_file;

use crate::offline::cli_extras::castoff;

/// docs/plan.svg is `castoff plan --format svg` of this repository (`UPDATE_EXPECT=1`
/// regenerates it), and the README shows it.
#[test]
fn plan_svg_of_this_repository_is_current() {
    let output = castoff(&["plan", "--format", "svg"]);
    assert!(output.status.success(), "{}", text(&output));
    let svg = String::from_utf8(output.stdout).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    expect_file!["../../../../../docs/plan.svg"].assert_eq(&svg);
    let readme = fs::read_to_string(repository_root().join("README.md")).unwrap();
    assert!(
        readme.contains("](docs/plan.svg)"),
        "the README shows docs/plan.svg"
    );
}

fn bash_n(script: &[u8]) {
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    bash.stdin.take().unwrap().write_all(script).unwrap();
    let output = bash.wait_with_output().unwrap();
    assert!(output.status.success(), "bash -n: {}", text(&output));
}

/// groff renders the page without a warning (`-ww` enables all, `-z` discards the output);
/// the text holds the commands and the exit codes.
fn check_man_page(page: &Path) {
    let checked = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(page)
        .output()
        .unwrap();
    assert!(
        checked.status.success() && checked.stderr.is_empty(),
        "groff: {}",
        text(&checked)
    );
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8"])
        .arg(page)
        .env("GROFF_NO_SGR", "1")
        .output()
        .unwrap();
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    for needle in ["castoff", "publish", "completions", "Exit codes:"] {
        assert!(rendered.contains(needle), "`{needle}` missing: {rendered}");
    }
}

#[test]
fn completions_and_man_page() {
    let bash = castoff(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete -F _castoff"));
    bash_n(&bash.stdout);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = castoff(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("publish"),
            "{shell}"
        );
    }
    let man = castoff(&["man"]);
    assert!(man.status.success(), "{}", text(&man));
    let dir = repository_root().join("target/castoff-test-scratch/cli-extras/man");
    fs::create_dir_all(&dir).unwrap();
    let page = dir.join("castoff.1");
    fs::write(&page, &man.stdout).unwrap();
    check_man_page(&page);
}

/// castoff's own Linux archive (built by the harness with `castoff dist`) holds the
/// completion scripts and the man page, and they are the ones this castoff generates.
#[test]
fn castoff_archive_ships_completions_and_man_page() {
    let env = TestEnv::get();
    let archives = env.self_dist.join("archives");
    let archive = fs::read_dir(&archives)
        .unwrap_or_else(|error| panic!("{}: {error}", archives.display()))
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.to_string_lossy()
                .ends_with("x86_64-unknown-linux-gnu.tar.gz")
        })
        .expect("castoff's x86_64 Linux archive");
    let unpacked = env.scratch_dir("self-archive");
    let _ = fs::remove_dir_all(&unpacked);
    fs::create_dir_all(&unpacked).unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(untar.status.success(), "{}", text(&untar));
    let top = fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (name, contents) in castoff::cli::completions::archive_files() {
        let shipped = fs::read(top.join(&name))
            .unwrap_or_else(|error| panic!("{name} missing from {}: {error}", archive.display()));
        assert!(
            shipped == contents,
            "{name} differs from `castoff` generating it"
        );
    }
    bash_n(&fs::read(top.join("completions/castoff.bash")).unwrap());
    check_man_page(&top.join("man/man1/castoff.1"));
}
