//! The wheel as files: METADATA, WHEEL and RECORD snapshots for the fixtures, the archive's
//! structure, versions, reproducibility and every refusal that is not about platform tags.

use std::path::Path;

use castoff_test_support::workspace::fixture_release;
use castoff_wheel::{WheelContents, build_wheel, metadata::GENERATOR, wheel_contents};
use expect_test::{Expect, expect};

use crate::support::{self, EPOCH, Elf, Scratch, input, read_zip};

/// A dynamically linked x86_64 glibc executable needing GLIBC_2.28 → `manylinux_2_28_x86_64`.
fn linux_binary() -> Vec<u8> {
    Elf::default().build()
}

/// Renders what a reviewer wants to see of a wheel: its file name, then each text file, with
/// castoff's own version masked so that a release does not change the snapshots.
fn render(contents: &WheelContents, files: &[&str]) -> String {
    let stem = contents.file_name.stem();
    let mut text = format!("{}\n", contents.file_name);
    for file in files {
        let path = format!("{stem}.dist-info/{file}");
        let body = String::from_utf8(contents.entry(&path).unwrap().to_vec()).unwrap();
        let body = body.replace(GENERATOR, "castoff <version>");
        let body = body
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{stem}.dist-info/WHEEL,")) {
                    format!("{stem}.dist-info/WHEEL,sha256=<depends on the castoff version>")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push_str(&format!("--- {file}\n{body}\n"));
    }
    text
}

fn check_fixture(fixture: &str, package: &str, bins: &[&str], files: &[&str], expect: Expect) {
    let release = fixture_release(fixture);
    let scratch = Scratch::new(&format!("snapshot-{package}"));
    let binary = scratch.file("binary", &linux_binary());
    let binaries: Vec<(&str, &Path)> = bins.iter().map(|bin| (*bin, binary.as_path())).collect();
    let contents = wheel_contents(&input(
        &release,
        package,
        "x86_64-unknown-linux-gnu",
        &binaries,
    ))
    .unwrap();
    expect.assert_eq(&render(&contents, files));
}

#[test]
fn greeter_metadata() {
    check_fixture(
        "single-cli",
        "greeter",
        &["greeter"],
        &["METADATA", "WHEEL"],
        expect![[r#"
            greeter-0.3.1-py3-none-manylinux_2_28_x86_64.whl
            --- METADATA
            Metadata-Version: 2.4
            Name: greeter
            Version: 0.3.1
            Summary: Greets people; castoff's single-app test fixture
            Keywords: greeting,cli
            Author: The Acme Team
            Author-email: Jane Doe <jane@example.com>
            License-Expression: MIT
            License-File: LICENSE
            Classifier: Environment :: Console
            Classifier: Programming Language :: Rust
            Project-URL: Homepage, https://greeter.example.com
            Project-URL: Source, https://github.com/acme/greeter
            Project-URL: Issues, https://github.com/acme/greeter/issues
            Project-URL: Documentation, https://docs.example.com/greeter
            Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM

            # greeter

            Greets people. A fixture of castoff's test suite.

            ```sh
            greeter hello Ada      # Hello, Ada!
            greeter --version      # greeter 0.3.1
            ```
            --- WHEEL
            Wheel-Version: 1.0
            Generator: castoff <version>
            Root-Is-Purelib: false
            Tag: py3-none-manylinux_2_28_x86_64
        "#]],
    );
}

#[test]
fn greeter_record() {
    check_fixture(
        "single-cli",
        "greeter",
        &["greeter"],
        &["RECORD"],
        expect![[r#"
            greeter-0.3.1-py3-none-manylinux_2_28_x86_64.whl
            --- RECORD
            greeter-0.3.1.data/scripts/greeter,sha256=_OEJh4C8WDJLTS_gVpiLS0NEFBqS8q-E-rQpQgnR9aQ,912
            greeter/__init__.py,sha256=nYpkXAvGUTQyMLAp_FIx5x0ez6JjkSp2A3SoNOj1VF0,2839
            greeter/__main__.py,sha256=eMb40JVGi0GVq6hbywgiZZjVUeGPDq56KJYfyBLdE6Q,948
            greeter/py.typed,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0
            greeter-0.3.1.dist-info/METADATA,sha256=oul_kprKlLYtQjWlx6PFUel4n-XniDMlDGxD5OeT3U0,760
            greeter-0.3.1.dist-info/WHEEL,sha256=<depends on the castoff version>
            greeter-0.3.1.dist-info/licenses/LICENSE,sha256=nJZTraqOWGZiAbdzgHYDWlQr7c6snhR7HYtTHxspL6Y,1079
            greeter-0.3.1.dist-info/RECORD,,
        "#]],
    );
}

#[test]
fn toolkit_requires_its_core_pinned() {
    check_fixture(
        "two-apps",
        "toolkit",
        &["tk"],
        &["METADATA", "RECORD"],
        expect![[r#"
            toolkit-2.0.0rc1-py3-none-manylinux_2_28_x86_64.whl
            --- METADATA
            Metadata-Version: 2.4
            Name: toolkit
            Version: 2.0.0rc1
            Summary: The toolkit's command line
            License-Expression: MIT
            License-File: LICENSE
            Classifier: Environment :: Console
            Classifier: Programming Language :: Rust
            Requires-Dist: toolkit-core==2.0.0rc1
            Requires-Dist: colorama>=0.4
            Project-URL: Source, https://github.com/acme/toolkit
            Project-URL: Issues, https://github.com/acme/toolkit/issues
            Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM

            # toolkit

            Two apps, one depending on the other. A fixture of castoff's test suite.
            --- RECORD
            toolkit-2.0.0rc1.data/scripts/tk,sha256=_OEJh4C8WDJLTS_gVpiLS0NEFBqS8q-E-rQpQgnR9aQ,912
            toolkit/__init__.py,sha256=MOsgXHFTrib4SIrA4K3a7odfC5MNHKWy9RLiy2sxM8A,2822
            toolkit/__main__.py,sha256=180uCe6eruN0Wt74OikwuZRHBXyHaXnGpHe09hefqTE,933
            toolkit/py.typed,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0
            toolkit-2.0.0rc1.dist-info/METADATA,sha256=PZcRUaxVenDaTrn4_WsAsKzo2juqUFbaU8buLUm33_g,545
            toolkit-2.0.0rc1.dist-info/WHEEL,sha256=<depends on the castoff version>
            toolkit-2.0.0rc1.dist-info/licenses/LICENSE,sha256=nJZTraqOWGZiAbdzgHYDWlQr7c6snhR7HYtTHxspL6Y,1079
            toolkit-2.0.0rc1.dist-info/RECORD,,
        "#]],
    );
}

#[test]
fn toolkit_core_metadata() {
    check_fixture(
        "two-apps",
        "toolkit-core",
        &["tk-core"],
        &["METADATA"],
        expect![[r#"
            toolkit_core-2.0.0rc1-py3-none-manylinux_2_28_x86_64.whl
            --- METADATA
            Metadata-Version: 2.4
            Name: toolkit-core
            Version: 2.0.0rc1
            Summary: The core of the toolkit
            License-Expression: MIT
            License-File: LICENSE
            Classifier: Environment :: Console
            Classifier: Programming Language :: Rust
            Project-URL: Source, https://github.com/acme/toolkit
            Project-URL: Issues, https://github.com/acme/toolkit/issues
            Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM

            # toolkit

            Two apps, one depending on the other. A fixture of castoff's test suite.
        "#]],
    );
}

#[test]
fn archive_follows_pypi_rules() {
    let release = fixture_release("single-cli");
    let scratch = Scratch::new("archive");
    let binary = scratch.file("greeter", &linux_binary());
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let built = build_wheel(
        &input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        ),
        &out,
    )
    .unwrap();
    let bytes = std::fs::read(&built.path).unwrap();
    assert_eq!(built.size, bytes.len() as u64);
    assert_eq!(
        built.sha256,
        castoff_archive::digest::hex(&castoff_archive::digest::sha256(&bytes))
    );
    assert_eq!(built.tags, ["manylinux_2_28_x86_64"]);
    // Only the wheel is left in the output directory: the temporary file was renamed.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&built.file_name));

    let entries = read_zip(&bytes);
    let listing: Vec<String> = entries
        .iter()
        .map(|entry| format!("{:o} {}", entry.mode, entry.name))
        .collect();
    expect![[r#"
        100755 greeter-0.3.1.data/scripts/greeter
        100644 greeter/__init__.py
        100644 greeter/__main__.py
        100644 greeter/py.typed
        100644 greeter-0.3.1.dist-info/METADATA
        100644 greeter-0.3.1.dist-info/WHEEL
        100644 greeter-0.3.1.dist-info/licenses/LICENSE
        100644 greeter-0.3.1.dist-info/RECORD
    "#]]
    .assert_eq(&(listing.join("\n") + "\n"));
    // Every entry carries SOURCE_DATE_EPOCH (2024-02-29 13:37:58, 2-second resolution).
    let stamp = castoff_archive::zip::DosDateTime::from_unix_seconds(EPOCH);
    assert!(
        entries
            .iter()
            .all(|entry| entry.dos_date == stamp.date && entry.dos_time == stamp.time)
    );
    assert_eq!(entries[0].contents, linux_binary());
    // RECORD lists every other entry with its real digest and size.
    let record = String::from_utf8(entries.last().unwrap().contents.clone()).unwrap();
    for entry in &entries[..entries.len() - 1] {
        let line = castoff_wheel::metadata::record_line(&entry.name, &entry.contents);
        assert!(
            record.contains(&line),
            "{line} missing from RECORD:\n{record}"
        );
    }
}

#[test]
fn builds_are_reproducible_and_follow_the_epoch() {
    let release = fixture_release("single-cli");
    let scratch = Scratch::new("reproducible");
    let binary = scratch.file("greeter", &linux_binary());
    let build = |dir: &str, epoch: u64| {
        let out = scratch.path().join(dir);
        std::fs::create_dir(&out).unwrap();
        let mut input = input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        );
        input.source_date_epoch = epoch;
        let built = build_wheel(&input, &out).unwrap();
        std::fs::read(built.path).unwrap()
    };
    assert_eq!(build("a", EPOCH), build("b", EPOCH));
    assert_ne!(build("c", EPOCH), build("d", EPOCH + 3600));
    // Epochs before 1980 (0 is a common "unset") give the same bytes as 1980-01-01.
    assert_eq!(build("e", 0), build("f", 315_532_800));
}

#[test]
fn versions_name_the_files() {
    let scratch = Scratch::new("versions");
    let binary = scratch.file("greeter", &linux_binary());
    let mut rendered = String::new();
    for (cargo, pep440) in [
        ("1.0.0-alpha.1", "1.0.0a1"),
        ("1.0.0-beta.2", "1.0.0b2"),
        ("2.0.0-rc.1", "2.0.0rc1"),
        ("1.0.0-dev.3", "1.0.0.dev3"),
        ("2025.9.4", "2025.9.4"),
    ] {
        let mut release = fixture_release("single-cli");
        let app = &mut release.apps[0];
        app.package.version = cargo.parse().unwrap();
        // The plan computes the PEP 440 spelling (and refuses local versions); check it did.
        let planned = castoff_plan::version::pep440(&app.package.version).unwrap();
        assert_eq!(planned, pep440);
        app.python.as_mut().unwrap().version = planned;
        let contents = wheel_contents(&input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        ))
        .unwrap();
        let version_line = String::from_utf8(
            contents
                .entry(&format!("{}.dist-info/METADATA", contents.file_name.stem()))
                .unwrap()
                .to_vec(),
        )
        .unwrap()
        .lines()
        .find(|line| line.starts_with("Version: "))
        .unwrap()
        .to_owned();
        let first_entry = &contents.entries[0].path;
        rendered.push_str(&format!(
            "{cargo:<14} {} | {version_line} | {first_entry}\n",
            contents.file_name
        ));
    }
    expect![[r#"
        1.0.0-alpha.1  greeter-1.0.0a1-py3-none-manylinux_2_28_x86_64.whl | Version: 1.0.0a1 | greeter-1.0.0a1.data/scripts/greeter
        1.0.0-beta.2   greeter-1.0.0b2-py3-none-manylinux_2_28_x86_64.whl | Version: 1.0.0b2 | greeter-1.0.0b2.data/scripts/greeter
        2.0.0-rc.1     greeter-2.0.0rc1-py3-none-manylinux_2_28_x86_64.whl | Version: 2.0.0rc1 | greeter-2.0.0rc1.data/scripts/greeter
        1.0.0-dev.3    greeter-1.0.0.dev3-py3-none-manylinux_2_28_x86_64.whl | Version: 1.0.0.dev3 | greeter-1.0.0.dev3.data/scripts/greeter
        2025.9.4       greeter-2025.9.4-py3-none-manylinux_2_28_x86_64.whl | Version: 2025.9.4 | greeter-2025.9.4.data/scripts/greeter
    "#]].assert_eq(&rendered);
}

#[test]
fn names_are_normalized_and_bins_become_finders() {
    let mut release = fixture_release("single-cli");
    let app = &mut release.apps[0];
    app.bins = vec!["greeter".to_owned(), "greeter-admin".to_owned()];
    let python = app.python.as_mut().unwrap();
    python.name = "Greeter.Tools".to_owned();
    python.module = "greeter_tools".to_owned();
    let scratch = Scratch::new("names");
    let binary = scratch.file(
        "greeter.exe",
        &support::pe(support::IMAGE_FILE_MACHINE_AMD64, false),
    );
    let contents = wheel_contents(&input(
        &release,
        "greeter",
        "x86_64-pc-windows-msvc",
        &[("greeter-admin", &binary), ("greeter", &binary)],
    ))
    .unwrap();
    let paths: Vec<&str> = contents.entries.iter().map(|e| e.path.as_str()).collect();
    expect![[r#"
        (
            "greeter_tools-0.3.1-py3-none-win_amd64.whl",
            [
                "greeter_tools-0.3.1.data/scripts/greeter-admin.exe",
                "greeter_tools-0.3.1.data/scripts/greeter.exe",
                "greeter_tools/__init__.py",
                "greeter_tools/__main__.py",
                "greeter_tools/py.typed",
                "greeter_tools-0.3.1.dist-info/METADATA",
                "greeter_tools-0.3.1.dist-info/WHEEL",
                "greeter_tools-0.3.1.dist-info/licenses/LICENSE",
                "greeter_tools-0.3.1.dist-info/RECORD",
            ],
        )
    "#]]
    .assert_debug_eq(&(contents.file_name.to_string(), paths));
    let init = String::from_utf8(
        contents
            .entry("greeter_tools/__init__.py")
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    expect![[r#"
        """Locates the binaries installed by the `Greeter.Tools` distribution (generated by castoff)."""

        from __future__ import annotations

        import os
        import sys
        import sysconfig

        __all__ = ["find_greeter_bin", "find_greeter_admin_bin"]
        __version__ = "0.3.1"


        def find_greeter_bin() -> str:
            """Return the absolute path of the installed `greeter` binary.

            Raises FileNotFoundError, naming every directory searched, when it is missing.
            """
            return _find_binary("greeter.exe")


        def find_greeter_admin_bin() -> str:
            """Return the absolute path of the installed `greeter-admin` binary.

            Raises FileNotFoundError, naming every directory searched, when it is missing.
            """
            return _find_binary("greeter-admin.exe")


        def _find_binary(file_name: str) -> str:
            searched = []
            for directory in _script_directories():
                if not directory or directory in searched:
                    continue
                searched.append(directory)
                candidate = os.path.join(directory, file_name)
                if os.path.isfile(candidate):
                    return candidate
            raise FileNotFoundError(
                "Greeter.Tools: cannot find `" + file_name + "` in any of: " + ", ".join(searched)
                + ". Reinstall the package: python -m pip install --force-reinstall Greeter.Tools"
            )


        def _script_directories():
            site_packages = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            # Every install scheme puts scripts at a fixed place relative to site-packages:
            # <prefix>/lib/pythonX.Y/site-packages -> <prefix>/bin (venv, system, --prefix, --root,
            # --user on Linux and macOS), <prefix>/Lib/site-packages -> <prefix>\Scripts (Windows).
            prefix = _prefix_of(site_packages)
            if prefix is not None:
                yield os.path.join(prefix, "Scripts" if os.name == "nt" else "bin")
            # pip install --target DIR puts the package in DIR and the scripts in DIR/bin.
            yield os.path.join(site_packages, "bin")
            # The interpreter's own schemes, for layouts the rules above do not cover.
            yield _scheme_scripts()
            yield _scheme_scripts(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
            yield _scheme_scripts(_user_scheme())


        def _scheme_scripts(*args, **kwargs):
            try:
                return sysconfig.get_path("scripts", *args, **kwargs)
            except (KeyError, ValueError, AttributeError):
                # A scheme this interpreter does not have: nothing to search there.
                return None


        def _prefix_of(site_packages):
            parts = site_packages.replace("\\", "/").split("/")
            if len(parts) >= 3 and parts[-1] in ("site-packages", "dist-packages"):
                if parts[-2].lower() == "lib":
                    return os.sep.join(parts[:-2]) or os.sep
                if len(parts) >= 4 and parts[-2].startswith("python") and parts[-3].startswith("lib"):
                    return os.sep.join(parts[:-3]) or os.sep
            return None


        def _user_scheme():
            if sys.version_info >= (3, 10):
                return sysconfig.get_preferred_scheme("user")
            if os.name == "nt":
                return "nt_user"
            if sys.platform == "darwin" and getattr(sys, "_framework", None):
                return "osx_framework_user"
            return "posix_user"
    "#]].assert_eq(&init);
    let main = String::from_utf8(
        contents
            .entry("greeter_tools/__main__.py")
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    expect![[r#"
        """`python -m greeter_tools`: runs the `greeter` binary with the same arguments (generated by castoff)."""

        from __future__ import annotations

        import os
        import sys

        from . import find_greeter_bin


        def _run() -> None:
            binary = find_greeter_bin()
            arguments = [binary, *sys.argv[1:]]
            if sys.platform == "win32":
                # Windows has no exec: os.execv would start a new process and return to the shell at
                # once. Wait for the binary instead and pass its exit code on.
                import subprocess

                process = subprocess.Popen(arguments)
                while True:
                    try:
                        sys.exit(process.wait())
                    except KeyboardInterrupt:
                        # Ctrl-C reached the binary too (same console); it decides how to end.
                        continue
            else:
                # Become the binary: signals, exit code and terminal go straight to it.
                os.execv(binary, arguments)


        if __name__ == "__main__":
            _run()
    "#]].assert_eq(&main);
}

/// Builds the greeter wheel after `change`s to the release, returns the error message.
fn refusal(
    change: impl FnOnce(&mut castoff_plan::Release, &Path),
    binaries: &[(&str, &str)],
) -> String {
    let mut release = fixture_release("single-cli");
    let scratch = Scratch::new("refusal");
    scratch.file("greeter", &linux_binary());
    change(&mut release, scratch.path());
    let paths: Vec<(&str, std::path::PathBuf)> = binaries
        .iter()
        .map(|(bin, file)| (*bin, scratch.path().join(file)))
        .collect();
    let binaries: Vec<(&str, &Path)> = paths
        .iter()
        .map(|(bin, path)| (*bin, path.as_path()))
        .collect();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let error = build_wheel(
        &input(&release, "greeter", "x86_64-unknown-linux-gnu", &binaries),
        &out,
    )
    .unwrap_err();
    let error = castoff_test_support::with_hint(&error, error.hint());
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written on error"
    );
    error
        .replace(&scratch.path().display().to_string(), "<scratch>")
        .replace(
            &castoff_test_support::workspace::repository_root()
                .display()
                .to_string(),
            "<workspace>",
        )
}

#[test]
fn refusals() {
    let greeter = &[("greeter", "greeter")][..];
    expect![[r#"
        cannot read <scratch>/README.md: No such file or directory (os error 2)
        hint: `readme` of package `greeter` in <workspace>/tests/fixtures/single-cli/Cargo.toml names this file; create it or correct the key"#]].assert_eq(&refusal(
        |release, scratch| release.apps[0].package.readme = Some(scratch.join("README.md")),
        greeter,
    ));
    expect![[r#"
        cannot read <scratch>/LICENSE: No such file or directory (os error 2)
        hint: `license-file` of package `greeter` in <workspace>/tests/fixtures/single-cli/Cargo.toml names this file; create it or correct the key"#]].assert_eq(&refusal(
        |release, scratch| release.apps[0].package.license_file = Some(scratch.join("LICENSE")),
        greeter,
    ));
    expect![[r#"
        cannot read <scratch>/missing: No such file or directory (os error 2)
        hint: build it first: cargo build --release --target x86_64-unknown-linux-gnu --bin greeter"#]].assert_eq(&refusal(|_, _| {}, &[("greeter", "missing")]));
    expect![[r#"
        binary `greeter` of package `greeter` was not passed to the wheel builder
        hint: build every binary of the app for the target before building its wheel"#]]
    .assert_eq(&refusal(|_, _| {}, &[]));
    expect![[r#"
        binary `other` is not a binary of package `greeter` (its binaries: greeter)
        hint: pass only the binaries listed in [package.metadata.castoff] `bins`"#]]
    .assert_eq(&refusal(
        |_, _| {},
        &[("greeter", "greeter"), ("other", "greeter")],
    ));
    expect![[r#"
        <workspace>/tests/fixtures/single-cli/Cargo.toml lists the classifier `License :: OSI Approved :: MIT License` in package.metadata.castoff.python.classifiers, but PyPI rejects license classifiers next to License-Expression (from `license`)
        hint: remove the classifier: `license` already says it"#]].assert_eq(&refusal(
        |release, _| {
            release.apps[0]
                .python
                .as_mut()
                .unwrap()
                .classifiers
                .push("License :: OSI Approved :: MIT License".to_owned())
        },
        greeter,
    ));
    expect![[r#"
        <workspace>/tests/fixtures/single-cli/Cargo.toml has a `description` of 599 characters; PyPI's Summary holds at most 512
        hint: shorten `description` to one sentence; the README is the long description"#]].assert_eq(&refusal(
        |release, _| release.apps[0].package.description = Some("word ".repeat(120)),
        greeter,
    ));
    expect![[r#"
        <workspace>/tests/fixtures/single-cli/Cargo.toml gives METADATA field `Requires-Python` a value with a line break: ">=3.8\nX-Injected: yes"
        hint: keep the value on one line"#]].assert_eq(&refusal(
        |release, _| {
            release.apps[0]
                .python
                .as_mut()
                .unwrap()
                .requires_python = Some(">=3.8\nX-Injected: yes".to_owned())
        },
        greeter,
    ));
}

#[test]
fn output_directory_must_exist() {
    let release = fixture_release("single-cli");
    let scratch = Scratch::new("no-out-dir");
    let binary = scratch.file("greeter", &linux_binary());
    let error = build_wheel(
        &input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        ),
        &scratch.path().join("missing"),
    )
    .unwrap_err();
    let error = castoff_test_support::with_hint(&error, error.hint())
        .replace(&scratch.path().display().to_string(), "<scratch>");
    expect![[r#"
        cannot write <scratch>/missing/.greeter-0.3.1-py3-none-manylinux_2_28_x86_64.whl.<pid>.partial: No such file or directory (os error 2)
        hint: check that the directory exists, is writable and has free space"#]].assert_eq(&error.replace(&std::process::id().to_string(), "<pid>"));
}

#[test]
fn debug_info_is_a_warning() {
    let release = fixture_release("single-cli");
    let scratch = Scratch::new("debug-info");
    let binary = scratch.file(
        "greeter",
        &Elf {
            debug_info: true,
            ..Elf::default()
        }
        .build(),
    );
    let contents = wheel_contents(&input(
        &release,
        "greeter",
        "x86_64-unknown-linux-gnu",
        &[("greeter", &binary)],
    ))
    .unwrap();
    let warnings = contents
        .warnings
        .join("\n")
        .replace(&scratch.path().display().to_string(), "<scratch>");
    expect![[r#"<scratch>/greeter carries debug info (.debug_info), which makes the wheel larger; castoff never strips, set `strip = "debuginfo"` (or `debug = false`) in the profile it is built with (`profile`, default `release`) to leave it out"#]].assert_eq(&warnings);
}

#[test]
fn readme_types_and_no_readme() {
    let scratch = Scratch::new("readme");
    let binary = scratch.file("greeter", &linux_binary());
    let mut rendered = String::new();
    for readme in [Some("README.rst"), Some("README.txt"), None] {
        let mut release = fixture_release("single-cli");
        release.apps[0].package.readme =
            readme.map(|name| scratch.file(name, b"Greeter\n=======\n"));
        let contents = wheel_contents(&input(
            &release,
            "greeter",
            "x86_64-unknown-linux-gnu",
            &[("greeter", &binary)],
        ))
        .unwrap();
        let metadata = contents.metadata.render();
        let (_, body) = metadata.split_once("\n\n").unwrap();
        rendered.push_str(&format!(
            "{readme:?}: {} | {:?}\n",
            contents.metadata.description_content_type, body
        ));
    }
    expect![[r#"
        Some("README.rst"): text/x-rst; charset=UTF-8 | "Greeter\n=======\n"
        Some("README.txt"): text/plain; charset=UTF-8 | "Greeter\n=======\n"
        None: text/plain; charset=UTF-8 | "Greets people; castoff's single-app test fixture\n"
    "#]]
    .assert_eq(&rendered);
}
