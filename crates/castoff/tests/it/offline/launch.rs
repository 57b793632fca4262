//! The launcher `castoff init` writes for the `cargo xtask` alias (templates/launch.rs): it
//! runs the xtask without Cargo's up-to-date check only when nothing the last build read has
//! changed. Here the xtask is a small stand-in (a binary and a path dependency outside
//! `xtask/`) in place of castoff, so each build takes a second: the launcher does not care
//! what the xtask is. `CASTOFF_XTASK_TRACE=1` makes it say which way it went.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use castoff_test_support::workspace::{output_text as text, repository_root};

fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// `cargo xtask ARGS` in `dir`, traced, with `extra` variables.
fn xtask(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO"));
    command
        .arg("xtask")
        .args(args)
        .current_dir(dir)
        .env("CASTOFF_XTASK_TRACE", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .envs(extra.iter().copied());
    command.output().unwrap()
}

/// The launcher's trace line (`castoff-xtask: …`), and the xtask's stdout.
fn ran(output: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let trace = stderr
        .lines()
        .find(|line| line.starts_with("castoff-xtask: "))
        .unwrap_or_else(|| panic!("no trace line:\n{}", text(output)))
        .to_owned();
    (trace, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn built(output: &Output, why: &str) -> String {
    assert!(output.status.success(), "{}", text(output));
    let (trace, stdout) = ran(output);
    assert_eq!(
        trace,
        format!("castoff-xtask: building: {why}"),
        "{}",
        text(output)
    );
    stdout
}

fn up_to_date(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(output));
    let (trace, stdout) = ran(output);
    assert!(
        trace.starts_with("castoff-xtask: up to date, running "),
        "{}",
        text(output)
    );
    stdout
}

#[test]
fn the_launcher_skips_cargo_only_when_nothing_the_build_read_changed() {
    let dir = std::env::temp_dir().join(format!("castoff-launch-{}/tool", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"tool\"\nversion = \"1.0.0\"\nedition = \"2021\"\n",
    );
    write(&dir.join("src/main.rs"), "fn main() {}\n");
    let output = Command::new(env!("CARGO_BIN_EXE_castoff"))
        .args(["init", "--no-workflow", "--castoff-path"])
        .arg(repository_root().join("crates/castoff"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    for line in [
        "+ xtask/launch/Cargo.toml\n",
        "+ xtask/launch/src/main.rs\n",
        "+ xtask/launch/.gitignore\n",
    ] {
        assert!(summary.contains(line), "{line}: {summary}");
    }
    // The stand-in for castoff: prints a word from a path dependency outside `xtask/`, its
    // arguments, and exits with the status its first argument names.
    write(
        &dir.join("xtask/Cargo.toml"),
        "[package]\nname = \"xtask\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nwords = { path = \"../words\" }\n\n[workspace]\n",
    );
    let _ = fs::remove_file(dir.join("xtask/Cargo.lock"));
    write(
        &dir.join("xtask/src/main.rs"),
        "fn main() {\n    let args: Vec<String> = std::env::args().skip(1).collect();\n    \
         println!(\"{} {}\", words::WORD, args.join(\"|\"));\n    \
         std::process::exit(args[0].parse().unwrap());\n}\n",
    );
    write(
        &dir.join("words/Cargo.toml"),
        "[package]\nname = \"words\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
    );
    let words = dir.join("words/src/lib.rs");
    write(&words, "pub const WORD: &str = \"one\";\n");

    // The first run builds; the second runs the executable without Cargo; arguments and the
    // exit status pass through either way.
    let first = xtask(&dir, &["0", "a b"], &[]);
    assert_eq!(
        built(&first, "no record of an earlier build"),
        "one 0|a b\n"
    );
    let second = xtask(&dir, &["7", "c"], &[]);
    assert_eq!(second.status.code(), Some(7), "{}", text(&second));
    let (trace, stdout) = ran(&second);
    assert!(trace.starts_with("castoff-xtask: up to date"), "{trace}");
    assert_eq!(stdout, "one 7|c\n");

    // A path dependency's source, the xtask's own, a manifest: each is seen, and the next run
    // (nothing changed since that build) skips Cargo again.
    write(&words, "pub const WORD: &str = \"two\";\n");
    let why = format!("{} changed", words.display());
    assert_eq!(built(&xtask(&dir, &["0"], &[]), &why), "two 0\n");
    assert_eq!(up_to_date(&xtask(&dir, &["0"], &[])), "two 0\n");
    let main = dir.join("xtask/src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    write(&main, &source.replace("{} {}", "{}: {}"));
    let why = format!("{} changed", main.display());
    let rebuilt = xtask(&dir, &["0"], &[]);
    assert_eq!(built(&rebuilt, &why), "two: 0\n");
    assert!(
        String::from_utf8_lossy(&rebuilt.stderr).contains("Compiling xtask"),
        "{}",
        text(&rebuilt)
    );
    // `-q` among the xtask's arguments quiets Cargo's build too.
    write(
        &main,
        &format!("{}// quiet\n", source.replace("{} {}", "{}: {}")),
    );
    let quiet = xtask(&dir, &["0", "-q"], &[]);
    assert_eq!(built(&quiet, &why), "two: 0|-q\n");
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("Compiling"),
        "{}",
        text(&quiet)
    );
    let manifest = dir.join("words/Cargo.toml");
    let text_before = fs::read_to_string(&manifest).unwrap();
    write(&manifest, &format!("{text_before}# a comment\n"));
    let why = format!("{} changed", manifest.display());
    built(&xtask(&dir, &["0"], &[]), &why);
    up_to_date(&xtask(&dir, &["0"], &[]));

    // The environment, Cargo's configuration: another build, as far as the launcher can tell.
    let environment = "the environment, Cargo's configuration or the toolchain changed";
    built(
        &xtask(&dir, &["0"], &[("CASTOFF_LAUNCH_TEST", "1")]),
        environment,
    );
    built(&xtask(&dir, &["0"], &[]), environment);
    let config = dir.join(".cargo/config.toml");
    let config_before = fs::read_to_string(&config).unwrap();
    write(&config, &format!("{config_before}# a comment\n"));
    built(&xtask(&dir, &["0"], &[]), environment);
    up_to_date(&xtask(&dir, &["0"], &[]));

    // The executable replaced or gone, the record damaged, cut short, of another format or
    // huge: built again (by Cargo, which knows), never a panic.
    let stamp = dir.join("xtask/launch/target/debug/castoff-xtask.stamp");
    let recorded = fs::read_to_string(&stamp).unwrap();
    let exe = recorded
        .lines()
        .nth(2)
        .and_then(|line| line.strip_prefix("exe "))
        .unwrap()
        .to_owned();
    fs::remove_file(&exe).unwrap();
    let why = format!("{exe} changed");
    assert_eq!(built(&xtask(&dir, &["0"], &[]), &why), "two: 0\n");
    let recorded = fs::read_to_string(&stamp).unwrap();
    let damaged = "the record of the last build is damaged";
    let incomplete = "the record of the last build is incomplete";
    for (contents, why) in [
        (recorded.replace("\nfile ", "\nfile x"), damaged.to_owned()),
        (recorded.replace("end\n", ""), incomplete.to_owned()),
        (
            recorded.lines().take(2).collect::<Vec<_>>().join("\n"),
            incomplete.to_owned(),
        ),
        (
            recorded.replace("castoff-xtask-stamp 1", "castoff-xtask-stamp 0"),
            "the record of the last build is another launcher's".to_owned(),
        ),
        (
            format!(
                "{}file {}",
                recorded.replace("end\n", ""),
                "x".repeat(9 << 20)
            ),
            damaged.to_owned(),
        ),
        (
            String::from_utf8_lossy(&[0xff, 0xfe, 0x00]).into_owned(),
            "the record of the last build is another launcher's".to_owned(),
        ),
    ] {
        fs::write(&stamp, contents).unwrap();
        built(&xtask(&dir, &["0"], &[]), &why);
        up_to_date(&xtask(&dir, &["0"], &[]));
    }
    fs::write(&stamp, [0xff, 0xfe]).unwrap();
    built(
        &xtask(&dir, &["0"], &[]),
        "the record of the last build is unreadable",
    );

    // A build that fails: Cargo's status and errors, nothing recorded, and the next run
    // builds (and fails) again rather than running the old executable.
    write(&words, "pub const WORD: &str = 3;\n");
    for _ in 0..2 {
        let failed = xtask(&dir, &["0"], &[]);
        assert_eq!(failed.status.code(), Some(101), "{}", text(&failed));
        assert!(
            String::from_utf8_lossy(&failed.stderr).contains("mismatched types"),
            "{}",
            text(&failed)
        );
        assert_eq!(String::from_utf8_lossy(&failed.stdout), "");
    }
    write(&words, "pub const WORD: &str = \"three\";\n");
    assert_eq!(
        built(
            &xtask(&dir, &["0"], &[]),
            &format!("{} changed", words.display())
        ),
        "three: 0\n"
    );
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}
