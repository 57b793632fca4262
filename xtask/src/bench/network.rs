//! `cargo xtask bench --network`: publish through a shaping proxy (added latency, a bandwidth
//! cap) in front of the harness registries, castoff against the peers, and the link's limit.
//!
//! The release: the single-cli fixture with four targets (two Linux, macOS, Windows), its
//! binaries the platform probe's builds padded with incompressible bytes, so that the bytes
//! on the wire, not only the round trips, weigh: 4 wheels and the sdist, 4 npm platform
//! packages and the launcher, one image index of 2 platforms. castoff publishes it with one
//! `castoff publish`; the peers as a user would: one `twine upload` of every file of `dist/python/`,
//! one `npm publish` per package (the platform packages, then the launcher), one
//! `skopeo copy --all` of castoff's image layout. docs/benchmarks.md explains the link limit.

#[path = "shape.rs"]
mod shape;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{
    Bench, Options, PublishEnv, SOURCE_DATE_EPOCH, Sample, harness_var, median, npm_publish,
    skopeo_copy, summary, write_results,
};
use shape::{Counts, Shaper};

/// One-way delay the proxy adds (a 100 ms round trip).
const DELAY: Duration = Duration::from_millis(50);
/// The link's bandwidth, each way.
const BITS_PER_SECOND: f64 = 100e6;
/// Incompressible bytes appended to every target's binary.
const PADDING: usize = 2 * 1024 * 1024;
const TRIPLES: [&str; 4] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];
/// Round trips the protocols need on the critical path when every upload that may run in
/// parallel does (docs/benchmarks.md): the TCP handshake, then the image's chain (a blob
/// upload is POST + PUT, then each platform's manifest, then the index); PyPI (one POST per
/// file) and npm (the platform packages' PUTs, then the launcher's) fit beside it.
const REQUIRED_ROUND_TRIPS: u64 = 1 + 2 + 1 + 1;

struct Tool {
    name: &'static str,
    samples: Vec<Sample>,
    counts: Vec<Counts>,
}

impl Tool {
    fn new(name: &'static str) -> Tool {
        Tool {
            name,
            samples: Vec::new(),
            counts: Vec::new(),
        }
    }

    fn record(&mut self, sample: Sample, counts: Counts) {
        self.samples.push(sample);
        self.counts.push(counts);
    }

    fn to_json(&self) -> Value {
        let mut value = summary(self.name, &self.samples);
        let pick = |field: fn(&Counts) -> u64| -> f64 {
            let mut values: Vec<f64> = self.counts.iter().map(|c| field(c) as f64).collect();
            median(&mut values)
        };
        value["connections"] = json!(pick(|c| c.connections));
        value["turns"] = json!(pick(|c| c.turns));
        value["bytes_up"] = json!(pick(|c| c.bytes_up));
        value["bytes_down"] = json!(pick(|c| c.bytes_down));
        value
    }
}

pub(super) fn run(
    bench: &mut Bench,
    options: &Options,
    out_dir: &Path,
    target_dir: &Path,
) -> Result<()> {
    let env_file = target_dir.join("castoff-test/env.sh");
    let env = PublishEnv::read(&env_file)?;
    let probe = PathBuf::from(harness_var(
        &env_file,
        castoff_test_support::vars::PLATFORM_PROBE,
    )?);
    let repository_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let fixture = repository_root.join("tests/fixtures/single-cli");
    let root = bench.root.join("network");

    let (pypi_host, pypi_path) = split_url(&env.pypiserver)?;
    let (npm_host, npm_path) = split_url(&env.verdaccio)?;
    let shaper = Shaper::start(
        &[pypi_host, npm_host, env.registry.clone()],
        DELAY,
        BITS_PER_SECOND,
    )?;
    let pypi_url = format!("http://{}{pypi_path}", shaper.address(0));
    let npm_url = format!("http://{}{npm_path}", shaper.address(1));
    let registry = shaper.address(2);
    eprintln!(
        "shaping proxy: +{} ms each way, {} Mbit/s each way; pypiserver {pypi_url}, Verdaccio {npm_url}, registry {registry}",
        DELAY.as_millis(),
        BITS_PER_SECOND / 1e6
    );

    let home = root.join("home");
    fs::create_dir_all(&home)?;
    let npmrc = home.join(".npmrc");
    fs::write(
        &npmrc,
        format!(
            "registry={npm_url}\n//{}{npm_path}:_authToken={}\n",
            shaper.address(1),
            env.npm_token
        ),
    )?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let rounds = options.rounds.min(3);
    let mut castoff = Tool::new("castoff publish");
    let mut twine = Tool::new("twine upload (4 wheels + sdist)");
    let mut npm = Tool::new("npm publish x5 (4 platforms, then launcher)");
    let mut skopeo = Tool::new("skopeo copy --all (index of 2)");
    let mut peers = Tool::new("peers, sum");
    let mut required_bytes = 0;
    let mut files = Value::Null;
    for round in 0..rounds {
        eprintln!("  network round {}/{rounds}", round + 1);
        let mut workspaces = Vec::new();
        for (side, who) in ["c", "p"].into_iter().enumerate() {
            let workspace = root.join(format!("{who}{round}"));
            write_release(
                &fixture,
                &workspace,
                &format!("net-{who}{round}-{nonce}"),
                &format!("@net{nonce}/greeter-{who}{round}"),
            )?;
            // New binaries for every release: no blob of an earlier round can be reused
            // (skopeo would mount it from the repository its blob cache remembers).
            let binaries = root.join(format!("binaries-{who}{round}"));
            let seed = (nonce << 16) ^ ((round as u64) << 1) ^ side as u64;
            pad_binaries(&probe, &binaries, seed)?;
            dist(bench, &workspace, &binaries, &home)?;
            workspaces.push(workspace);
        }
        if round == 0 {
            (required_bytes, files) = required(&workspaces[0].join("dist"))?;
        }
        let castoff_run = |bench: &mut Bench| -> Result<(Sample, Counts)> {
            // With its scheme, as a real registry's https URL would be: a loopback registry
            // named without one is probed for TLS first (two round trips through the proxy
            // that no real registry costs).
            let repository = format!("http://{registry}/net{nonce}/greeter-c{round}");
            let mut command = env.castoff_publish(
                &bench.castoff,
                &workspaces[0],
                &home,
                [&pypi_url, &npm_url, &repository],
            );
            shaper.take_counts();
            let sample = bench.measure(&mut command)?;
            Ok((sample, shaper.take_counts()))
        };
        if round % 2 == 0 {
            let (sample, counts) = castoff_run(bench)?;
            castoff.record(sample, counts);
        }

        let dist = workspaces[1].join("dist");
        let mut python_files = files_in(&dist.join("python"), "")?;
        python_files.retain(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".whl") || name.ends_with(".tar.gz")
        });
        let mut command = Command::new(&bench.twine);
        command
            .args([
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                &pypi_url,
                "-u",
                &env.user,
                "-p",
                &env.password,
            ])
            .args(&python_files)
            .env("HOME", &home);
        shaper.take_counts();
        let twine_sample = bench.measure(&mut command)?;
        let twine_counts = shaper.take_counts();

        // The platform packages first, then the launcher (the one without a platform suffix:
        // the shortest name), as castoff orders them.
        let mut tarballs = files_in(&dist.join("npm"), ".tgz")?;
        tarballs.sort_by_key(|path| std::cmp::Reverse(path.as_os_str().len()));
        let mut npm_sample = Sample::ZERO;
        let mut npm_counts = Counts::default();
        for tarball in &tarballs {
            let mut command = npm_publish(&npmrc, &root.join("npm-cache"), tarball, &home);
            shaper.take_counts();
            npm_sample = npm_sample.then(bench.measure(&mut command)?);
            npm_counts = add(npm_counts, shaper.take_counts());
        }

        let mut command = skopeo_copy(
            &dist.join("oci/greeter"),
            &format!("{registry}/net{nonce}/greeter-p{round}:0.3.1"),
            &home,
        );
        shaper.take_counts();
        let skopeo_sample = bench.measure(&mut command)?;
        let skopeo_counts = shaper.take_counts();

        if round % 2 == 1 {
            let (sample, counts) = castoff_run(bench)?;
            castoff.record(sample, counts);
        }
        twine.record(twine_sample, twine_counts);
        npm.record(npm_sample, npm_counts);
        skopeo.record(skopeo_sample, skopeo_counts);
        peers.record(
            twine_sample.then(npm_sample).then(skopeo_sample),
            add(add(twine_counts, npm_counts), skopeo_counts),
        );
    }

    let rtt = 2.0 * DELAY.as_secs_f64();
    let limit_seconds =
        required_bytes as f64 * 8.0 / BITS_PER_SECOND + REQUIRED_ROUND_TRIPS as f64 * rtt;
    let results = json!({
        "castoff": bench.castoff.display().to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rounds": rounds,
        "delay_ms_each_way": DELAY.as_millis() as u64,
        "bits_per_second": BITS_PER_SECOND,
        "padding_bytes_per_binary": PADDING,
        "targets": TRIPLES,
        "files": files,
        "link": {
            "required_bytes_up": required_bytes,
            "required_round_trips": REQUIRED_ROUND_TRIPS,
            "limit_seconds": limit_seconds,
        },
        "castoff_publish": castoff.to_json(),
        "peers": [twine.to_json(), npm.to_json(), skopeo.to_json()],
        "peers_sum": peers.to_json(),
    });
    write_results(out_dir, "network.json", &results, print)
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        connections: a.connections + b.connections,
        turns: a.turns + b.turns,
        bytes_up: a.bytes_up + b.bytes_up,
        bytes_down: a.bytes_down + b.bytes_down,
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("`{url}` is not an http:// URL"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    Ok((host.to_owned(), path.to_owned()))
}

/// The probe's build of every target, each followed by [`PADDING`] pseudo-random bytes (a
/// different stream per target and `seed`): still a valid executable, and no compressor
/// shrinks it.
fn pad_binaries(probe: &Path, dir: &Path, seed: u64) -> Result<()> {
    for (index, triple) in TRIPLES.iter().enumerate() {
        let name = if triple.contains("windows") {
            "greeter.exe"
        } else {
            "greeter"
        };
        let mut bytes = fs::read(probe.join(triple).join(name))
            .with_context(|| format!("the platform probe's build for {triple}"))?;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.rotate_left(17) ^ (index as u64 + 1);
        bytes.reserve(PADDING);
        while bytes.len() % 8 != 0 {
            bytes.push(0);
        }
        for _ in 0..PADDING / 8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        let target_dir = dir.join(triple);
        fs::create_dir_all(&target_dir)?;
        let path = target_dir.join(name);
        fs::write(&path, bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// single-cli with [`TRIPLES`] and this round's names.
fn write_release(fixture: &Path, workspace: &Path, python: &str, npm: &str) -> Result<()> {
    let _ = fs::remove_dir_all(workspace);
    fs::create_dir_all(workspace.join("src"))?;
    for file in ["Cargo.lock", "LICENSE", "README.md", "src/main.rs"] {
        fs::copy(fixture.join(file), workspace.join(file))
            .with_context(|| format!("copying the fixture's {file}"))?;
    }
    let text = fs::read_to_string(fixture.join("Cargo.toml"))?;
    let targets_line = text
        .lines()
        .find(|line| line.starts_with("targets = "))
        .context("single-cli names its targets")?;
    let quoted: Vec<String> = TRIPLES.iter().map(|t| format!("\"{t}\"")).collect();
    let text = text
        .replace(targets_line, &format!("targets = [{}]", quoted.join(", ")))
        .replace("name = \"greeter\" }", &format!("name = \"{python}\" }}"))
        .replace("\"@acme/greeter\"", &format!("\"{npm}\""));
    if !text.contains(python) || !text.contains(npm) {
        bail!("single-cli's Cargo.toml changed shape:\n{text}");
    }
    fs::write(workspace.join("Cargo.toml"), text)?;
    Ok(())
}

fn dist(bench: &mut Bench, workspace: &Path, binaries: &Path, home: &Path) -> Result<Sample> {
    let mut command = Command::new(&bench.castoff);
    command
        .args(["dist", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--prebuilt-dir")
        .arg(binaries)
        .env("HOME", home)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    bench.measure(&mut command)
}

/// Files of `dir` ending in `suffix`, sorted.
fn files_in(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    Ok(files)
}

fn total_size(files: &[PathBuf]) -> Result<u64> {
    let mut total = 0;
    for file in files {
        total += fs::metadata(file)?.len();
    }
    Ok(total)
}

/// The bytes any client must send: every Python file, every npm tarball base64-encoded in
/// its JSON document (4/3), every blob of the image layout (layers, configs, manifests, the
/// index).
fn required(dist: &Path) -> Result<(u64, Value)> {
    let python: Vec<PathBuf> = files_in(&dist.join("python"), "")?
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".whl") || name.ends_with(".tar.gz")
        })
        .collect();
    let npm = files_in(&dist.join("npm"), ".tgz")?;
    let blobs = files_in(&dist.join("oci/greeter/blobs/sha256"), "")?;
    let python_bytes = total_size(&python)?;
    let npm_bytes = total_size(&npm)?;
    let blob_bytes = total_size(&blobs)?;
    let required = python_bytes + npm_bytes.div_ceil(3) * 4 + blob_bytes;
    Ok((
        required,
        json!({
            "python_files": python.len(),
            "python_bytes": python_bytes,
            "npm_tarballs": npm.len(),
            "npm_bytes": npm_bytes,
            "oci_blobs": blobs.len(),
            "oci_bytes": blob_bytes,
        }),
    ))
}

fn print(results: &Value) {
    let link = &results["link"];
    let limit = link["limit_seconds"].as_f64().unwrap_or(f64::NAN);
    let castoff = results["castoff_publish"]["median_seconds"]
        .as_f64()
        .unwrap_or(f64::NAN);
    println!(
        "\npublish over a shaped link: +{} ms each way, {} Mbit/s each way, {} rounds, {} targets",
        results["delay_ms_each_way"],
        results["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6,
        results["rounds"],
        TRIPLES.len(),
    );
    println!(
        "  {:<46} {:>8} {:>15} {:>6} {:>6} {:>8} {:>7}",
        "", "median s", "spread s", "conns", "turns", "MB up", "x cast."
    );
    let mut rows: Vec<&Value> = vec![&results["castoff_publish"]];
    rows.extend(results["peers"].as_array().into_iter().flatten());
    rows.push(&results["peers_sum"]);
    for row in rows {
        let median = row["median_seconds"].as_f64().unwrap_or(f64::NAN);
        let samples: Vec<f64> = row["samples_seconds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        let low = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let high = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "  {:<46} {:>8.2} {:>15} {:>6.0} {:>6.0} {:>8.2} {:>7.2}",
            row["name"].as_str().unwrap_or(""),
            median,
            format!("{low:.2}-{high:.2}"),
            row["connections"].as_f64().unwrap_or(0.0),
            row["turns"].as_f64().unwrap_or(0.0),
            row["bytes_up"].as_f64().unwrap_or(0.0) / 1e6,
            median / castoff,
        );
    }
    println!(
        "  {:<46} {:>8.2} {:>15} {:>6} {:>6} {:>8.2} {:>7.2}",
        format!(
            "link limit ({} round trips + bytes / bandwidth)",
            link["required_round_trips"]
        ),
        limit,
        "",
        1,
        link["required_round_trips"].as_u64().unwrap_or(0) - 1,
        link["required_bytes_up"].as_f64().unwrap_or(0.0) / 1e6,
        limit / castoff,
    );
    println!(
        "  castoff / link limit: {:.2} (target <= 1.5); peers / castoff: {:.2} (target >= 3)",
        castoff / limit,
        results["peers_sum"]["median_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN)
            / castoff
    );
}
