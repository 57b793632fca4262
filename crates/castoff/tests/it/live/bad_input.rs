//! The bad-input corpus (`tests/bad-input/<case>/`): every case is a small workspace or a
//! tampering recipe applied to a freshly built one, plus the `expected.stderr` snapshot of the
//! error castoff must stop with. Each case must exit non-zero with a `hint:` line, write nothing
//! new into dist/, leak no secret, and — for `publish` cases, run against the live local
//! registries of `cargo xtask test` — leave every registry without the release.
//!
//! A case directory holds:
//! - `files/**`: copied over the workspace (a copy of `tests/bad-input/_base`, or of the built
//!   workspace with `from built`);
//! - `home/**`: copied into the `HOME` castoff runs with (`.npmrc`, `.pypirc`, `.docker/`);
//! - `recipe`: one instruction a line (`#` comments):
//!   `from built` (start from the base after a successful `castoff dist`),
//!   `plant <path> good|static|text|empty|elf-aarch64|elf-x32|dynamic|macho-arm64` (a binary at
//!   `<path>`; `static` is a tiny static x86_64 executable, no build needed),
//!   `symlink <link> <target>`, `truncate <path> <bytes>`, `corrupt <path>` (flip one byte),
//!   `remove <path>`, `remove-largest <dir>`, `append <path> <text>`, `replace <path> <old> => <new>` (in a text file),
//!   `json-set <artifact id> <field> <JSON>` (in dist/manifest.json),
//!   `dist` (run `castoff dist --no-build` on the workspace as edited so far; it must succeed),
//!   `env NAME=VALUE`, and exactly one `run <castoff arguments>`.
//!   Paths are relative to the workspace; a `*` in a file name matches like a shell glob.
//!   Placeholders: `{pypiserver}`, `{devpi}`, `{verdaccio}`, `{registry}` (host:port of the open
//!   registry), `{tag}` (unique to this test process), `{user}`, `{password}`, `{npm_token}`.
//!
//! The snapshot holds stderr from its first `error:` on (progress lines before it may change).
//! `UPDATE_EXPECT=1 cargo test -p castoff --test it -- live::bad_input` rewrites the snapshots.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use castoff_test_support::TestEnv;
use castoff_test_support::workspace::{isolated_command, repository_root};

fn corpus() -> PathBuf {
    repository_root().join("tests/bad-input")
}

/// Unique to this test process: the registry names of the built workspace carry it, so runs
/// against servers that stay up never see each other's packages.
fn tag() -> String {
    format!("badin{}", std::process::id())
}

fn copy_tree(source: &Path, target: &Path) {
    fs::create_dir_all(target).unwrap();
    for entry in fs::read_dir(source).unwrap_or_else(|e| panic!("{}: {e}", source.display())) {
        let entry = entry.unwrap();
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() && entry.file_name() == "target" {
            // Build output: cases plant the binaries they need.
            continue;
        } else if kind.is_dir() {
            copy_tree(&path, &target.join(entry.file_name()));
        } else if kind.is_symlink() {
            let link = fs::read_link(&path).unwrap();
            std::os::unix::fs::symlink(link, target.join(entry.file_name())).unwrap();
        } else {
            fs::copy(&path, target.join(entry.file_name())).unwrap();
        }
    }
}

fn castoff_command(home: &Path) -> Command {
    isolated_command(Path::new(env!("CARGO_BIN_EXE_castoff")), home)
}

/// This test process's scratch directory (emptied once, at the first call).
fn scratch(env: &TestEnv) -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| env.scratch_dir(&format!("bad-input-{}", tag())))
}

/// The base workspace after a successful `castoff dist`, built once per test process; cases
/// `from built` start from a copy of it.
fn built(env: &TestEnv) -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = scratch(env);
        let workspace = root.join("built");
        let _ = fs::remove_dir_all(&workspace);
        copy_tree(&corpus().join("_base"), &workspace);
        let manifest = workspace.join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .unwrap()
            .replace("name = \"badin\" }", &format!("name = \"{}\" }}", tag()))
            .replace("\"@badin/badin\"", &format!("\"@{}/badin\"", tag()));
        fs::write(&manifest, text).unwrap();
        let home = root.join("home");
        fs::create_dir_all(&home).unwrap();
        let output = castoff_command(&home)
            .args(["dist", "--manifest-path"])
            .arg(&manifest)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "dist of the base failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        workspace
    })
}

/// `pattern` relative to `root`, each `*` in a component matching any run of characters.
fn resolve(root: &Path, pattern: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    for part in pattern.split('/') {
        if part.contains('*') {
            let (prefix, suffix) = part.split_once('*').unwrap();
            let mut matches: Vec<PathBuf> = fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|e| e.unwrap())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.len() >= prefix.len() + suffix.len()
                        && name.starts_with(prefix)
                        && name.ends_with(suffix)
                })
                .map(|e| e.path())
                .collect();
            matches.sort();
            assert!(!matches.is_empty(), "nothing matches {pattern}");
            path = matches.swap_remove(0);
        } else {
            path.push(part);
        }
    }
    path
}

/// A minimal ELF header: 64-bit little-endian executable for `machine` (`e_machine`).
fn elf_header(machine: u16) -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // 64-bit
    bytes[5] = 1; // little-endian
    bytes[6] = 1; // version
    bytes[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
    bytes[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    bytes.resize(4096, 0);
    bytes
}

fn plant(env: &TestEnv, path: &Path, kind: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let bytes = match kind {
        "good" => {
            fs::read(built(env).join("target/x86_64-unknown-linux-gnu/release/badin")).unwrap()
        }
        "text" => b"#!/bin/sh\necho not a binary\n".to_vec(),
        "empty" => Vec::new(),
        "static" => castoff_test_support::binaries::static_elf(
            castoff_test_support::binaries::EM_X86_64,
            "hello from badin\n",
        ),
        "elf-aarch64" => elf_header(183),
        // x86-64's machine number in a 32-bit file (the x32 ABI): not an amd64 executable.
        "elf-x32" => castoff_test_support::binaries::elf_header(
            castoff_test_support::binaries::EM_X86_64,
            false,
            false,
        ),
        "macho-arm64" => castoff_test_support::binaries::macho_executable(
            castoff_test_support::binaries::CPU_TYPE_ARM64,
            11,
            0,
        ),
        // A dynamically linked x86_64 executable from the system.
        "dynamic" => fs::read("/bin/true").unwrap(),
        other => panic!("unknown plant kind {other}"),
    };
    fs::write(path, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    files
}

fn http_status(url: &str, auth: Option<&str>) -> String {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(auth) = auth {
        command.args(["-H", auth]);
    }
    let output = command.arg(url).output().expect("curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the registries answer for the built workspace's release: every answer must say
/// "not found" (404; pypiserver may redirect an unknown name to its fallback, 303).
fn registry_leaks(env: &TestEnv) -> Vec<String> {
    let tag = tag();
    let bearer = format!("Authorization: Bearer {}", env.npm_token);
    let probes = [
        (format!("{}simple/{tag}/", env.pypiserver), None),
        (format!("{}+simple/{tag}/", env.devpi), None),
        (
            format!("{}@{tag}%2fbadin", env.verdaccio),
            Some(bearer.as_str()),
        ),
        (
            format!("{}@{tag}%2fbadin-linux-x64-gnu", env.verdaccio),
            Some(bearer.as_str()),
        ),
        (
            format!("{}/v2/{tag}/badin/tags/list", env.registry_open),
            None,
        ),
    ];
    probes
        .into_iter()
        .filter_map(|(url, auth)| {
            let status = http_status(&url, auth);
            (status != "404" && status != "303")
                .then(|| format!("the registry holds the release: {url} answers {status}"))
        })
        .collect()
}

struct Outcome {
    stderr: String,
    problems: Vec<String>,
}

fn run_case(env: &TestEnv, name: &str, dir: &Path) -> Outcome {
    let recipe =
        fs::read_to_string(dir.join("recipe")).unwrap_or_else(|e| panic!("{name}/recipe: {e}"));
    let lines: Vec<&str> = recipe
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let root = scratch(env).join(name);
    let _ = fs::remove_dir_all(&root);
    let workspace = root.join("ws");
    let home = root.join("home");
    fs::create_dir_all(&home).unwrap();
    let from_built = lines.contains(&"from built");
    if from_built {
        copy_tree(built(env), &workspace);
    } else {
        copy_tree(&corpus().join("_base"), &workspace);
    }
    if dir.join("files").is_dir() {
        copy_tree(&dir.join("files"), &workspace);
    }
    if dir.join("home").is_dir() {
        copy_tree(&dir.join("home"), &home);
    }
    let registry = TestEnv::host_port(&env.registry_open).to_owned();
    let expand = |text: &str| {
        text.replace("{pypiserver}", &env.pypiserver)
            .replace("{devpi}", &env.devpi)
            .replace("{verdaccio}", &env.verdaccio)
            .replace("{registry}", &registry)
            .replace("{tag}", &tag())
            .replace("{user}", &env.user)
            .replace("{password}", &env.password)
            .replace("{npm_token}", &env.npm_token)
            .replace("{ws}", &workspace.to_string_lossy())
    };
    // Home files may name the servers and credentials too.
    for (path, _) in listing(&home) {
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, expand(&text)).unwrap();
    }
    let mut command = castoff_command(&home);
    let mut args: Option<Vec<String>> = None;
    for line in &lines {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        match verb {
            "from" => {}
            "plant" => {
                let (path, kind) = rest.split_once(' ').unwrap();
                plant(env, &workspace.join(path), kind);
            }
            "symlink" => {
                let (link, target) = rest.split_once(' ').unwrap();
                let link = if link.contains('*') {
                    resolve(&workspace, link)
                } else {
                    workspace.join(link)
                };
                let _ = fs::remove_file(&link);
                fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(expand(target), link).unwrap();
            }
            "truncate" => {
                let (path, len) = rest.rsplit_once(' ').unwrap();
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(resolve(&workspace, path))
                    .unwrap();
                file.set_len(len.parse().unwrap()).unwrap();
            }
            "corrupt" => {
                let path = resolve(&workspace, rest);
                let mut bytes = fs::read(&path).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x55;
                fs::write(&path, bytes).unwrap();
            }
            "remove" => {
                let path = resolve(&workspace, rest);
                if path.is_dir() {
                    fs::remove_dir_all(path).unwrap();
                } else {
                    fs::remove_file(path).unwrap();
                }
            }
            "remove-largest" => {
                // The largest file in a directory: an image layout's layer blob.
                let dir = resolve(&workspace, rest);
                let largest = fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .max_by_key(|p| fs::metadata(p).unwrap().len())
                    .unwrap();
                fs::remove_file(largest).unwrap();
            }
            "append" => {
                let (path, text) = rest.split_once(' ').unwrap();
                let path = resolve(&workspace, path);
                let mut bytes = fs::read(&path).unwrap();
                bytes.extend_from_slice(expand(text).as_bytes());
                fs::write(&path, bytes).unwrap();
            }
            "replace" => {
                let (path, change) = rest.split_once(' ').unwrap();
                let (old, new) = change.split_once(" => ").unwrap();
                let old = &expand(old);
                let path = resolve(&workspace, path);
                let text = fs::read_to_string(&path).unwrap();
                assert!(
                    text.contains(old),
                    "{name}: `{old}` not in {}",
                    path.display()
                );
                fs::write(&path, text.replacen(old, &expand(new), 1)).unwrap();
            }
            "json-set" => {
                // json-set <artifact id> <field> <JSON value>, in dist/manifest.json.
                let mut parts = rest.splitn(3, ' ');
                let (id, field, value) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                let path = workspace.join("dist/manifest.json");
                let mut json: serde_json::Value =
                    serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
                let artifact = json["artifacts"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|a| a["id"].as_str().unwrap().replace(&tag(), "badin") == id)
                    .unwrap_or_else(|| panic!("{name}: no artifact {id}"));
                artifact[field] = serde_json::from_str(value).unwrap();
                fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
            }
            "dist" => {
                let output = castoff_command(&home)
                    .args(["dist", "--no-build", "--manifest-path"])
                    .arg(workspace.join("Cargo.toml"))
                    .current_dir(&workspace)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{name}: the recipe's dist failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            "env" => {
                let (key, value) = rest.split_once('=').unwrap();
                command.env(key, expand(value));
            }
            "run" => {
                args = Some(rest.split_whitespace().map(expand).collect());
            }
            other => panic!("{name}: unknown recipe instruction `{other}`"),
        }
    }
    let args = args.unwrap_or_else(|| panic!("{name}: the recipe has no `run`"));
    let is_publish = args.first().map(String::as_str) == Some("publish");
    let dist = workspace.join("dist");
    let before = listing(&dist);
    let output = command
        .args(&args)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .current_dir(&workspace)
        .output()
        .unwrap();
    let after = listing(&dist);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    let mut problems = Vec::new();
    if output.status.success() {
        problems.push(format!("exited successfully\nstdout:\n{stdout}"));
    }
    if !stderr.lines().any(|l| l.trim_start().starts_with("hint:")) {
        problems.push("no `hint:` line".into());
    }
    if stderr.contains("panicked") || output.status.code().is_none() {
        problems.push(format!("crashed: {:?}", output.status));
    }
    for secret in [&env.password, &env.npm_token] {
        if stdout.contains(secret.as_str()) || stderr.contains(secret.as_str()) {
            problems.push("a credential shows in the output".into());
        }
    }
    if stderr.contains("s3cr3t") || stdout.contains("s3cr3t") {
        problems.push("the planted secret `s3cr3t` shows in the output".into());
    }
    for (path, stamp) in &after {
        if before.get(path) != Some(stamp) {
            problems.push(format!("wrote {} into dist/", path.display()));
        }
    }
    if is_publish {
        problems.extend(registry_leaks(env));
    }
    // The snapshot is the error itself: progress lines before it are not part of the contract.
    let error = stderr
        .find("error:")
        .map_or(stderr.as_str(), |start| &stderr[start..]);
    let normalized = normalize(env, error, &workspace, &home, &registry);
    Outcome {
        stderr: normalized,
        problems,
    }
}

fn normalize(env: &TestEnv, text: &str, workspace: &Path, home: &Path, registry: &str) -> String {
    let mut text = text
        .replace(&*workspace.to_string_lossy(), "[WS]")
        .replace(&*home.to_string_lossy(), "[HOME]")
        .replace(&env.pypiserver, "[PYPISERVER]/")
        .replace(&env.devpi, "[DEVPI]/")
        .replace(&env.verdaccio, "[VERDACCIO]/")
        .replace(registry, "[REGISTRY]")
        .replace(&tag(), "badinN");
    // Digests of built files depend on the build; keep their shape only.
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
            continue;
        }
        if run.len() == 64 {
            out.push_str("[SHA256]");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    text = out;
    // Sizes depend on the length of this run's unique names: `(616533 bytes)` → `(N bytes)`.
    let mut sized = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(end) = rest.find(" bytes)") {
        let before = &rest[..end];
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && before[..before.len() - digits].ends_with('(') {
            sized.push_str(&before[..before.len() - digits]);
            sized.push('N');
        } else {
            sized.push_str(before);
        }
        sized.push_str(" bytes)");
        rest = &rest[end + " bytes)".len()..];
    }
    sized.push_str(rest);
    // …and so do their sizes for people: `602.1 KiB (N bytes)` → `[SIZE] (N bytes)`.
    for unit in [" KiB (N bytes)", " MiB (N bytes)", " GiB (N bytes)"] {
        let mut out = String::with_capacity(sized.len());
        let mut rest = sized.as_str();
        while let Some(end) = rest.find(unit) {
            let before = &rest[..end];
            let number = before.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            if number.len() < before.len() {
                out.push_str(number);
                out.push_str("[SIZE]");
            } else {
                out.push_str(before);
                out.push_str(&unit[..4]);
            }
            out.push_str(&unit[4..]);
            rest = &rest[end + unit.len()..];
        }
        out.push_str(rest);
        sized = out;
    }
    sized
}

#[test]
#[allow(clippy::print_stderr)] // The figure belongs in the test log.
fn every_bad_input_is_refused_with_a_named_error_and_a_hint() {
    let env = TestEnv::get();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut cases: Vec<(String, PathBuf)> = fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_type().unwrap().is_dir() && !e.file_name().to_string_lossy().starts_with('_')
        })
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 50,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, dir) in &cases {
        let outcome = run_case(&env, name, dir);
        let snapshot = dir.join("expected.stderr");
        if update {
            fs::write(&snapshot, &outcome.stderr).unwrap();
        } else {
            let expected = fs::read_to_string(&snapshot).unwrap_or_default();
            if expected != outcome.stderr {
                failures.push(format!(
                    "{name}: stderr differs from expected.stderr (UPDATE_EXPECT=1 rewrites it)\n--- expected\n{expected}--- actual\n{}",
                    outcome.stderr
                ));
            }
        }
        for problem in outcome.problems {
            failures.push(format!("{name}: {problem}\nstderr:\n{}", outcome.stderr));
        }
    }
    eprintln!("bad-input corpus: {} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
