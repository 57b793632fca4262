//! `cargo xtask bench`: castoff packaging and publishing measured side by side with the tools
//! users would otherwise run (maturin, `npm pack`, umoci; twine, `npm publish`, skopeo), on a
//! large real binary and a small one, in paired rounds of alternating order. Prints medians,
//! peer / castoff ratios, peak RSS and output sizes against `gzip -6`, and writes them to
//! `target/castoff-bench/results.json`. How to run it and what it measured: docs/benchmarks.md.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

mod network;
mod scale;

/// The binary name in every synthesized workspace, wheel, npm package and image.
const BIN: &str = "benchbin";
/// Fixed timestamps, so castoff's output is the same in every round.
const SOURCE_DATE_EPOCH: &str = "1700000000";

const USAGE: &str =
    "usage: cargo xtask bench [--rounds N] [--large PATH] [--castoff PATH] [--no-publish]

  --rounds N       paired rounds per measurement (default 5; publish uses at most 3)
  --large PATH     the large binary (default: the toolchain's own `cargo`, resolved)
  --castoff PATH   the castoff binary to measure (default: `cargo build --release -p castoff`)
  --no-publish     skip the publish comparison (it needs `cargo xtask test --serve` running)
  --xtask-only     only the `cargo xtask` against standalone row
  --no-xtask       leave the `cargo xtask` row out (it compiles castoff into an xtask)
  --scale          plan/dist/merge/publish of generated releases of growing size (N apps x T
                   targets): time, peak RSS and growth exponents (docs/benchmarks.md)
  --network        publish through a shaping proxy (latency, bandwidth cap) in front of the
                   harness registries, castoff against the peers (docs/benchmarks.md)";

struct Options {
    rounds: usize,
    large: Option<PathBuf>,
    castoff: Option<PathBuf>,
    publish: bool,
    xtask_only: bool,
    no_xtask: bool,
    scale: bool,
    network: bool,
}

fn parse(args: &[OsString]) -> Result<Options> {
    let mut options = Options {
        rounds: 5,
        large: None,
        castoff: None,
        publish: true,
        xtask_only: false,
        no_xtask: false,
        scale: false,
        network: false,
    };
    let mut args = args.iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                let value = args.next().context("--rounds needs a number")?;
                options.rounds = value
                    .parse()
                    .with_context(|| format!("--rounds `{value}` is not a number"))?;
                if options.rounds == 0 {
                    bail!("--rounds must be at least 1");
                }
            }
            "--large" => options.large = Some(args.next().context("--large needs a path")?.into()),
            "--castoff" => {
                options.castoff = Some(args.next().context("--castoff needs a path")?.into());
            }
            "--no-publish" => options.publish = false,
            "--xtask-only" => options.xtask_only = true,
            "--no-xtask" => options.no_xtask = true,
            "--scale" => options.scale = true,
            "--network" => options.network = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}

pub(crate) fn main(args: &[OsString]) -> ExitCode {
    match parse(args).and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One process run: wall time, peak RSS and CPU time (from `/usr/bin/time -f "%M %U %S"`,
/// i.e. the kernel's `ru_maxrss` and user + system time of the child and what it waited for).
#[derive(Clone, Copy)]
struct Sample {
    seconds: f64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
}

impl Sample {
    /// Several processes run one after the other: times add up, the peak is the largest one.
    fn then(self, other: Sample) -> Sample {
        Sample {
            seconds: self.seconds + other.seconds,
            peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib),
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
        }
    }
    const ZERO: Sample = Sample {
        seconds: 0.0,
        peak_rss_kib: 0,
        cpu_seconds: 0.0,
    };
}

struct Bench {
    root: PathBuf,
    castoff: PathBuf,
    maturin: PathBuf,
    twine: PathBuf,
    triple: String,
    counter: usize,
}

impl Bench {
    /// Runs `command` under `/usr/bin/time`, failing with its output when it fails.
    fn measure(&mut self, command: &mut Command) -> Result<Sample> {
        self.counter += 1;
        let rss_file = self.root.join(format!("rss-{}.txt", self.counter));
        let program = command.get_program().to_owned();
        let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
        let mut timed = Command::new("/usr/bin/time");
        timed
            .args(["-f", "%M %U %S", "-o"])
            .arg(&rss_file)
            .arg(&program)
            .args(&args);
        if let Some(dir) = command.get_current_dir() {
            timed.current_dir(dir);
        }
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => timed.env(name, value),
                None => timed.env_remove(name),
            };
        }
        let start = Instant::now();
        let output = timed
            .output()
            .with_context(|| format!("running {}", program.to_string_lossy()))?;
        let seconds = start.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!(
                "`{} {}` failed ({}):\n{}{}",
                program.to_string_lossy(),
                args.iter()
                    .map(|arg| arg.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let rss = fs::read_to_string(&rss_file)?;
        // The last line; a child killed by a signal makes time write a line before it.
        let (peak_rss_kib, cpu_seconds) = rss
            .lines()
            .rev()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                let peak = fields.next()?.parse::<u64>().ok()?;
                let user = fields.next()?.parse::<f64>().ok()?;
                let system = fields.next()?.parse::<f64>().ok()?;
                Some((peak, user + system))
            })
            .with_context(|| format!("/usr/bin/time wrote no RSS and CPU times: {rss}"))?;
        Ok(Sample {
            seconds,
            peak_rss_kib,
            cpu_seconds,
        })
    }
}

fn run(options: &Options) -> Result<()> {
    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root.join("target"));
    let out_dir = target_dir.join("castoff-bench");
    let root = out_dir.join("work");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    let tools = target_dir.join("castoff-tools/venv/bin");
    for (tool, hint) in [
        (Path::new("/usr/bin/time"), "apt-get install time"),
        (
            &tools.join("maturin"),
            "run `cargo xtask test` once (it installs maturin)",
        ),
        (&tools.join("twine"), "run `cargo xtask test` once"),
    ] {
        if !tool.exists() {
            bail!("{} is missing\nhint: {hint}", tool.display());
        }
    }
    for tool in ["umoci", "npm", "gzip", "skopeo"] {
        which(tool).with_context(|| format!("`{tool}` is not on PATH\nhint: run `cargo xtask test` once (it installs the test tools)"))?;
    }

    let castoff = match &options.castoff {
        Some(path) => path.clone(),
        None => {
            eprintln!("building castoff (release)...");
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--release",
                    "--quiet",
                    "-p",
                    "castoff",
                    "--bin",
                    "castoff",
                ])
                .current_dir(&workspace_root)
                .status()?;
            if !status.success() {
                bail!("`cargo build --release -p castoff` failed");
            }
            target_dir.join("release/castoff")
        }
    };
    let mut bench = Bench {
        root: root.clone(),
        castoff,
        maturin: tools.join("maturin"),
        twine: tools.join("twine"),
        triple: castoff::dist::host_target()?,
        counter: 0,
    };
    if options.scale {
        return scale::run(&mut bench, options, &out_dir, &target_dir);
    }
    if options.network {
        return network::run(&mut bench, options, &out_dir, &target_dir);
    }

    // The small binary: a hello-world crate, which is also maturin's cached crate.
    let small_crate = root.join("maturin-small");
    write_crate(&small_crate)?;
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(&small_crate)
        .env_remove("CARGO_TARGET_DIR")
        .status()?;
    if !built.success() {
        bail!("building the small benchmark crate failed");
    }
    let small = small_crate.join("target/release").join(BIN);
    let large = match &options.large {
        Some(path) => fs::canonicalize(path)?,
        None => large_binary()?,
    };

    let publish_env = if options.publish && !options.xtask_only {
        Some(PublishEnv::read(&target_dir.join("castoff-test/env.sh"))?)
    } else {
        None
    };

    let mut cases = Vec::new();
    let all_cases = [("large", &large), ("small", &small)];
    for (label, binary) in all_cases.into_iter().filter(|_| !options.xtask_only) {
        eprintln!("== {label}: {}", binary.display());
        cases.push(bench_case(
            &mut bench,
            label,
            binary,
            options,
            publish_env.as_ref(),
        )?);
    }

    let memory = if options.xtask_only {
        Value::Null
    } else {
        eprintln!("== memory: castoff on the large binary and on a 500 MB one");
        memory_scaling(&mut bench, &large)?
    };

    let xtask = if options.no_xtask {
        Value::Null
    } else {
        eprintln!(
            "== cargo xtask: castoff through an `init`-ed xtask against the standalone binary"
        );
        xtask_against_standalone(&mut bench, &out_dir, &workspace_root, &large, options)?
    };

    let results = json!({
        "castoff": bench.castoff.display().to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rounds": options.rounds,
        "cases": cases,
        "memory": memory,
        "xtask": xtask,
    });
    write_results(&out_dir, "results.json", &results, print_table)
}

/// Writes a mode's results as `out_dir/name`, prints them with `print`, and says where they
/// went.
fn write_results(out_dir: &Path, name: &str, results: &Value, print: fn(&Value)) -> Result<()> {
    fs::create_dir_all(out_dir)?;
    let path = out_dir.join(name);
    fs::write(&path, serde_json::to_string_pretty(results)? + "\n")?;
    print(results);
    println!("\nwritten to {}", path.display());
    Ok(())
}

/// `skopeo copy --all` of an OCI layout (`oci:DIR`, its one index) to `destination`
/// (`host:port/name:tag` on a plain-http registry), as a user would push castoff's layout.
fn skopeo_copy(layout: &Path, destination: &str, home: &Path) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args([
            "copy",
            "--all",
            "--quiet",
            "--insecure-policy",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{destination}"))
        .env("HOME", home);
    command
}

/// castoff's peak RSS packaging the large binary and a 500 MB one (the large binary repeated:
/// still an executable, compressible like real code), one cold run each: memory must not grow
/// with the binary, since everything streams in fixed-size blocks.
fn memory_scaling(bench: &mut Bench, large: &Path) -> Result<Value> {
    const HUGE: u64 = 500_000_000;
    let dir = bench.root.join("memory");
    let huge = dir.join("huge-binary");
    fs::create_dir_all(&dir)?;
    {
        let copy = fs::read(large)?;
        let mut out = std::io::BufWriter::new(fs::File::create(&huge)?);
        let mut written = 0u64;
        while written < HUGE {
            std::io::Write::write_all(&mut out, &copy)?;
            written += copy.len() as u64;
        }
        std::io::Write::flush(&mut out)?;
    }
    let mut rows = Vec::new();
    for (label, binary) in [("large", large), ("500 MB", huge.as_path())] {
        let workspace = dir.join(label.replace(' ', "-"));
        let names = Names {
            python: format!("bench-memory-{}", rows.len()),
            npm: format!("@bench/memory-{}", rows.len()),
        };
        write_workspace(bench, &workspace, binary, &names)?;
        let sample = castoff_dist(bench, &workspace)?;
        rows.push(json!({
            "binary": label,
            "binary_bytes": fs::metadata(binary)?.len(),
            "seconds": sample.seconds,
            "peak_rss_mib": sample.peak_rss_kib as f64 / 1024.0,
        }));
        let _ = fs::remove_dir_all(&workspace);
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(json!(rows))
}

fn which(tool: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .with_context(|| format!("{tool} not found"))
}

/// The toolchain's own `cargo` (rustup's proxy resolved to the real file).
fn large_binary() -> Result<PathBuf> {
    let output = Command::new("rustup").args(["which", "cargo"]).output();
    let path = match output {
        Ok(output) if output.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
        _ => PathBuf::from(env!("CARGO")),
    };
    Ok(fs::canonicalize(path)?)
}

fn write_crate(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("src"))?;
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{BIN}\"\nversion = \"1.0.0\"\nedition = \"2021\"\ndescription = \"castoff benchmark\"\nlicense = \"MIT\"\n\n[workspace]\n"
        ),
    )?;
    fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    println!(\"hello from the castoff benchmark\");\n}\n",
    )?;
    Ok(())
}

/// Copies `from` to `to` (a hard link when possible: same bytes, no copy time).
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let _ = fs::remove_file(to);
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

struct Names {
    python: String,
    npm: String,
}

/// A one-package workspace releasing `binary` (prebuilt at `target/<triple>/release/`) through
/// all three channels. Its image is based on an empty `oci-layout:` base (made by umoci), not
/// `scratch`: castoff refuses dynamically linked binaries in `scratch` images, and the
/// toolchain's `cargo` is dynamically linked; the empty base adds no layer, so the image is
/// the same work as a `scratch` one.
fn write_workspace(bench: &Bench, dir: &Path, binary: &Path, names: &Names) -> Result<()> {
    write_crate(dir)?;
    let manifest = format!(
        "[package]\nname = \"{BIN}\"\nversion = \"1.0.0\"\nedition = \"2021\"\ndescription = \"castoff benchmark\"\nlicense = \"MIT\"\n\n[workspace]\n\n[workspace.metadata.castoff]\ntargets = [\"{triple}\"]\n\n[package.metadata.castoff]\npython = {{ name = \"{python}\" }}\nnpm = {{ name = \"{npm}\" }}\noci = {{ repository = \"127.0.0.1:1/bench/{BIN}\", base = \"oci-layout:base\" }}\n",
        triple = bench.triple,
        python = names.python,
        npm = names.npm,
    );
    fs::write(dir.join("Cargo.toml"), manifest)?;
    let base = dir.join("base");
    if !base.exists() {
        run_quiet(Command::new("umoci").args(["init", "--layout"]).arg(&base))?;
        run_quiet(
            Command::new("umoci")
                .args(["new", "--image"])
                .arg(format!("{}:latest", base.display())),
        )?;
    }
    place(
        binary,
        &dir.join("target")
            .join(&bench.triple)
            .join("release")
            .join(BIN),
    )
}

fn run_quiet(command: &mut Command) -> Result<()> {
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}{}",
            command,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `castoff dist --no-build`, cold: dist/ is removed first, so the cache (cache.rs) cannot
/// reuse it.
fn castoff_dist(bench: &mut Bench, workspace: &Path) -> Result<Sample> {
    let _ = fs::remove_dir_all(workspace.join("dist"));
    castoff_dist_cached(bench, workspace)
}

/// `castoff dist --no-build` with nothing remembered: dist/ and everything castoff keeps in
/// the target directory (the dist cache, Cargo's remembered answers) removed first, as on a
/// fresh checkout.
fn castoff_dist_first(bench: &mut Bench, workspace: &Path) -> Result<Sample> {
    let _ = fs::remove_dir_all(workspace.join("target/castoff"));
    castoff_dist(bench, workspace)
}

/// `castoff dist --no-build` over the previous dist/: unchanged inputs, a cache hit.
fn castoff_dist_cached(bench: &mut Bench, workspace: &Path) -> Result<Sample> {
    let mut command = Command::new(&bench.castoff);
    command
        .args(["dist", "--no-build", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    bench.measure(&mut command)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// Samples of one tool over the rounds, summarized.
fn summary(name: &str, samples: &[Sample]) -> Value {
    let mut seconds: Vec<f64> = samples.iter().map(|sample| sample.seconds).collect();
    let all = seconds.clone();
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({
        "name": name,
        "median_seconds": median(&mut seconds),
        "min_seconds": min,
        "max_seconds": max,
        "samples_seconds": all,
        "peak_rss_mib": samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        // NaN (written as null) where no process ran: libdeflate alone.
        "samples_cpu_seconds": samples.iter().map(|s| s.cpu_seconds).collect::<Vec<_>>(),
    })
}

fn largest_file(dir: &Path) -> Result<u64> {
    Ok(largest_file_path(dir)?.map_or(0, |(_, len)| len))
}

/// The largest file under `dir` (searched recursively) and its size.
fn largest_file_path(dir: &Path) -> Result<Option<(PathBuf, u64)>> {
    let mut largest: Option<(PathBuf, u64)> = None;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        let found = if metadata.is_dir() {
            largest_file_path(&entry.path())?
        } else {
            Some((entry.path(), metadata.len()))
        };
        if let Some(found) = found
            && largest.as_ref().is_none_or(|(_, len)| found.1 > *len)
        {
            largest = Some(found);
        }
    }
    Ok(largest)
}

fn file_with_extension(dir: &Path, extension: &str, not_containing: &str) -> Result<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.to_string_lossy().ends_with(extension)
                && (not_containing.is_empty()
                    || !path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().contains(not_containing)))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .max_by_key(|path| fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .with_context(|| format!("no *{extension} in {}", dir.display()))
}

fn bench_case(
    bench: &mut Bench,
    label: &str,
    binary: &Path,
    options: &Options,
    publish_env: Option<&PublishEnv>,
) -> Result<Value> {
    let case_dir = bench.root.join(label);
    let binary_size = fs::metadata(binary)?.len();

    // castoff's workspace.
    let workspace = case_dir.join("castoff");
    let names = Names {
        python: format!("bench-{label}"),
        npm: format!("@bench/{label}"),
    };
    write_workspace(bench, &workspace, binary, &names)?;

    // (a) maturin on a cached crate: build once (warms cargo), then put the binary in place
    // of the build output (a hard link, in `deps/` too), so cargo reports it fresh.
    let maturin_crate = case_dir.join("maturin");
    write_crate(&maturin_crate)?;
    let mut warm = Command::new(&bench.maturin);
    warm.args(["build", "-b", "bin", "--release", "--quiet", "-o"])
        .arg(case_dir.join("maturin-warm"))
        .current_dir(&maturin_crate)
        .env_remove("CARGO_TARGET_DIR");
    bench.measure(&mut warm)?;
    let release = maturin_crate.join("target/release");
    for entry in fs::read_dir(release.join("deps"))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{BIN}-")) && path.extension().is_none() {
            fs::copy(binary, &path)?;
        }
    }
    fs::copy(binary, release.join(BIN))?;

    // (b) npm pack of a package directory holding the binary.
    let npm_dir = case_dir.join("npm-package");
    fs::create_dir_all(npm_dir.join("bin"))?;
    fs::write(
        npm_dir.join("package.json"),
        format!(
            "{{\n  \"name\": \"@bench/{label}-linux-x64-gnu\",\n  \"version\": \"1.0.0\",\n  \"license\": \"MIT\",\n  \"os\": [\"linux\"],\n  \"cpu\": [\"x64\"],\n  \"files\": [\"bin\"],\n  \"bin\": {{ \"{BIN}\": \"bin/{BIN}\" }}\n}}\n"
        ),
    )?;
    place(binary, &npm_dir.join("bin").join(BIN))?;

    // Warm-up, untimed, as maturin's cargo build is warmed above: castoff remembers Cargo's
    // answers only about files unchanged for a second (metadata_cache.rs), and the workspace
    // was just written (and Cargo may rewrite its lock file on the first run, hence two). The
    // first-run row below measures castoff without that.
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        castoff_dist(bench, &workspace)?;
    }
    let mut castoff_samples = Vec::new();
    let mut maturin_samples = Vec::new();
    let mut npm_samples = Vec::new();
    let mut umoci_samples = Vec::new();
    let mut sum_samples = Vec::new();
    let mut libdeflate_samples = Vec::new();
    let mut npm_ordinary_samples = Vec::new();
    let mut insert_samples = Vec::new();
    let mut lean_samples = Vec::new();
    let mut insert_intact = None;
    let input = fs::read(binary)?;
    for round in 0..options.rounds {
        eprintln!("  packaging round {}/{}", round + 1, options.rounds);
        let castoff_first = round % 2 == 0;
        if castoff_first {
            castoff_samples.push(castoff_dist(bench, &workspace)?);
        }
        let maturin = {
            let out = case_dir.join("maturin-out");
            let _ = fs::remove_dir_all(&out);
            let mut command = Command::new(&bench.maturin);
            command
                .args(["build", "-b", "bin", "--release", "--quiet", "-o"])
                .arg(&out)
                .current_dir(&maturin_crate)
                .env_remove("CARGO_TARGET_DIR");
            bench.measure(&mut command)?
        };
        let npm = {
            let out = case_dir.join("npm-out");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out)?;
            let mut command = Command::new("npm");
            command
                .args(["pack", "--silent", "--ignore-scripts", "--pack-destination"])
                .arg(&out)
                .arg("--cache")
                .arg(case_dir.join("npm-cache"))
                .current_dir(&npm_dir);
            bench.measure(&mut command)?
        };
        let umoci = umoci_image(bench, &case_dir, binary)?;
        // The lean set: `npm pack` with the user's own cache, `umoci insert` of the binary.
        let npm_ordinary = {
            let out = case_dir.join("npm-out-ordinary");
            let _ = fs::remove_dir_all(&out);
            fs::create_dir_all(&out)?;
            let mut command = Command::new("npm");
            command
                .args(["pack", "--silent", "--ignore-scripts", "--pack-destination"])
                .arg(&out)
                .current_dir(&npm_dir);
            bench.measure(&mut command)?
        };
        let (insert, intact) = umoci_insert(bench, &case_dir, binary)?;
        insert_intact = Some(insert_intact.unwrap_or(true) && intact);
        let alone = libdeflate_alone(&input);
        if !castoff_first {
            castoff_samples.push(castoff_dist(bench, &workspace)?);
        }
        maturin_samples.push(maturin);
        npm_samples.push(npm);
        umoci_samples.push(umoci);
        sum_samples.push(maturin.then(npm).then(umoci));
        npm_ordinary_samples.push(npm_ordinary);
        insert_samples.push(insert);
        lean_samples.push(maturin.then(npm_ordinary).then(insert));
        libdeflate_samples.push(alone);
    }
    drop(input);

    // The same run again over the dist/ just built: the cache verifies and reuses it.
    let mut cached_samples = Vec::new();
    for _ in 0..options.rounds {
        cached_samples.push(castoff_dist_cached(bench, &workspace)?);
    }
    // And cold with nothing remembered (the paired runs above keep Cargo's answers between
    // rounds, as a developer's repeated runs do).
    let mut first_samples = Vec::new();
    for _ in 0..options.rounds {
        first_samples.push(castoff_dist_first(bench, &workspace)?);
    }

    // Sizes: the binary's compressed payload in each artifact, against `gzip -6`.
    let gzip6 = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(binary)
        .output()?;
    if !gzip6.status.success() {
        bail!("gzip -6 failed");
    }
    let dist = workspace.join("dist");
    let sizes = json!({
        "binary": binary_size,
        "gzip_6": gzip6.stdout.len(),
        "castoff_wheel": fs::metadata(file_with_extension(&dist.join("python"), ".whl", "")?)?.len(),
        "castoff_npm_platform_tgz": fs::metadata(file_with_extension(&dist.join("npm"), ".tgz", "")?)?.len(),
        "castoff_oci_layer": largest_file(&dist.join("oci").join(BIN).join("blobs"))?,
        "maturin_wheel": fs::metadata(file_with_extension(&case_dir.join("maturin-out"), ".whl", "")?)?.len(),
        "npm_pack_tgz": fs::metadata(file_with_extension(&case_dir.join("npm-out"), ".tgz", "")?)?.len(),
        "umoci_layer": largest_file(&case_dir.join("umoci-layout/blobs"))?,
    });

    let castoff_summary = summary(
        "castoff dist --no-build (wheel + npm + image)",
        &castoff_samples,
    );
    let packaging = json!({
        "castoff": castoff_summary,
        "peers": [
            summary("maturin build -b bin (cargo cached)", &maturin_samples),
            summary("npm pack", &npm_samples),
            summary("umoci init/new/unpack/repack/config/gc", &umoci_samples),
        ],
        "peers_sum": summary("peers, sum", &sum_samples),
        "lean_peers": [
            summary("npm pack (the user's own npm cache)", &npm_ordinary_samples),
            summary("umoci init/new/insert (layer checked below)", &insert_samples),
        ],
        "lean_sum": summary("lean peers, sum (maturin + npm pack + umoci insert)", &lean_samples),
        "umoci_insert_layer_intact": insert_intact,
        "libdeflate_alone": summary(&format!("libdeflate alone: {} KiB blocks, level {}, {} threads, in memory", castoff_archive::deflate::BLOCK_SIZE / 1024, castoff_archive::deflate::DEFAULT_LEVEL, castoff_archive::deflate::DeflateOptions::default().threads), &libdeflate_samples),
        "castoff_cached": summary("castoff dist --no-build, cached (inputs unchanged)", &cached_samples),
        "castoff_first_run": summary("castoff dist --no-build, first run (nothing remembered)", &first_samples),
    });

    let publish = match publish_env {
        Some(env) => bench_publish(bench, label, binary, &case_dir, env, options)?,
        None => Value::Null,
    };
    Ok(json!({
        "label": label,
        "binary": binary.display().to_string(),
        "binary_bytes": binary_size,
        "sizes": sizes,
        "packaging": packaging,
        "publish": publish,
    }))
}

/// libdeflate's own compression time, the limit castoff's cold `dist` is measured against:
/// the binary (already in memory) in castoff's block size and default level, compressed on
/// every core, nothing else (no reading, hashing, writing or process start-up).
fn libdeflate_alone(input: &[u8]) -> Sample {
    use castoff_archive::deflate::{BLOCK_SIZE, DEFAULT_LEVEL, DeflateOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = DeflateOptions::default().threads;
    let blocks: Vec<&[u8]> = input.chunks(BLOCK_SIZE).collect();
    let next = AtomicUsize::new(0);
    let level = libdeflater::CompressionLvl::new(DEFAULT_LEVEL as i32).expect("a valid level");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut compressor = libdeflater::Compressor::new(level);
                let mut out = vec![0; compressor.deflate_compress_bound(BLOCK_SIZE)];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(block) = blocks.get(index) else {
                        break;
                    };
                    compressor
                        .deflate_compress(block, &mut out)
                        .expect("the bound is enough");
                }
            });
        }
    });
    Sample {
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_kib: 0,
        cpu_seconds: f64::NAN,
    }
}

/// The lean image peer: `umoci insert` of the binary into an empty image (init, new,
/// insert). Debian's umoci 0.4.7 writes the layer's tar without the file's last partial
/// record (opencontainers/umoci#436), so the layer is checked: `tar` must extract the binary
/// whole. Returns the time and whether the layer was intact.
fn umoci_insert(bench: &mut Bench, case_dir: &Path, binary: &Path) -> Result<(Sample, bool)> {
    let layout = case_dir.join("umoci-insert-layout");
    let (image, mut total) = umoci_new(bench, &layout)?;
    total = total.then(
        bench.measure(
            Command::new("umoci")
                .args(["insert", "--image", &image])
                .arg(binary)
                .arg(format!("/usr/local/bin/{BIN}")),
        )?,
    );
    let blobs = layout.join("blobs");
    let (layer, _) = largest_file_path(&blobs)?
        .with_context(|| format!("umoci insert wrote no blob in {}", blobs.display()))?;
    let extracted = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc \"$1\" | tar -xOf - usr/local/bin/{BIN} | cmp -s - \"$2\""
        ))
        .arg("sh")
        .arg(&layer)
        .arg(binary)
        .stderr(std::process::Stdio::null())
        .status()?;
    Ok((total, extracted.success()))
}

/// A fresh layout at `layout` with an empty image (`umoci init`, `umoci new`): its reference
/// and the time both took.
fn umoci_new(bench: &mut Bench, layout: &Path) -> Result<(String, Sample)> {
    let _ = fs::remove_dir_all(layout);
    let image = format!("{}:v1", layout.display());
    let init = bench.measure(Command::new("umoci").args(["init", "--layout"]).arg(layout))?;
    let new = bench.measure(Command::new("umoci").args(["new", "--image", &image]))?;
    Ok((image, init.then(new)))
}

/// umoci building the same image: unpack/repack, not `umoci insert` (which writes truncated
/// tar layers, opencontainers/umoci#436).
fn umoci_image(bench: &mut Bench, case_dir: &Path, binary: &Path) -> Result<Sample> {
    let layout = case_dir.join("umoci-layout");
    let bundle = case_dir.join("umoci-bundle");
    let _ = fs::remove_dir_all(&bundle);
    let (image, mut total) = umoci_new(bench, &layout)?;
    total = total.then(
        bench.measure(
            Command::new("umoci")
                .args(["unpack", "--image", &image])
                .arg(&bundle),
        )?,
    );
    let copy_start = Instant::now();
    let destination = bundle.join("rootfs/usr/local/bin");
    fs::create_dir_all(&destination)?;
    fs::copy(binary, destination.join(BIN))?;
    total.seconds += copy_start.elapsed().as_secs_f64();
    total = total.then(
        bench.measure(
            Command::new("umoci")
                .args(["repack", "--image", &image])
                .arg(&bundle),
        )?,
    );
    total = total.then(bench.measure(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        &format!("/usr/local/bin/{BIN}"),
        "--architecture",
        "amd64",
        "--os",
        "linux",
    ]))?);
    total = total.then(bench.measure(Command::new("umoci").args(["gc", "--layout"]).arg(&layout))?);
    Ok(total)
}

/// The running harness's servers (`cargo xtask test --serve` writes `env.sh`).
struct PublishEnv {
    pypiserver: String,
    verdaccio: String,
    registry: String,
    user: String,
    password: String,
    npm_token: String,
}

impl PublishEnv {
    fn read(path: &Path) -> Result<PublishEnv> {
        let get = |name: &str| harness_var(path, name);
        use castoff_test_support::vars;
        let registry = get(vars::REGISTRY_OPEN)?;
        Ok(PublishEnv {
            pypiserver: get(vars::PYPISERVER)?,
            verdaccio: get(vars::VERDACCIO)?,
            registry: registry
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            user: get(vars::USER)?,
            password: get(vars::PASSWORD)?,
            npm_token: get(vars::NPM_TOKEN)?,
        })
    }

    /// `castoff publish` of `workspace` to these servers (or, by `pypi`, `npm` and
    /// `repository`, to a proxy in front of them), with the credentials in its environment and
    /// a `home` of its own.
    fn castoff_publish(
        &self,
        castoff: &Path,
        workspace: &Path,
        home: &Path,
        [pypi, npm, repository]: [&str; 3],
    ) -> Command {
        let mut command = Command::new(castoff);
        command
            .args(["publish", "--quiet", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .args(["--pypi-url", pypi])
            .args(["--npm-registry", npm])
            .args(["--oci-repository", repository])
            .env("HOME", home)
            .env("NPM_CONFIG_USERCONFIG", home.join("castoff-npmrc"))
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("TWINE_USERNAME", &self.user)
            .env("TWINE_PASSWORD", &self.password)
            .env("NPM_TOKEN", &self.npm_token);
        command
    }
}

/// `npm publish` of one tarball as a user runs it: their `.npmrc` and npm cache.
fn npm_publish(npmrc: &Path, cache: &Path, tarball: &Path, home: &Path) -> Command {
    let mut command = Command::new("npm");
    command
        .args(["publish", "--silent", "--ignore-scripts", "--userconfig"])
        .arg(npmrc)
        .arg("--cache")
        .arg(cache)
        .arg(tarball)
        .env("HOME", home);
    command
}

/// `export NAME='value'` from the running harness's env.sh (`cargo xtask test --serve`).
fn harness_var(path: &Path, name: &str) -> Result<String> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "reading {}\nhint: start the test servers with `cargo xtask test --serve` in another terminal (it writes this file; --no-publish skips publishing where a mode has it)",
            path.display()
        )
    })?;
    text.lines()
        .find_map(|line| {
            let value = line
                .strip_prefix("export ")?
                .strip_prefix(name)?
                .strip_prefix('=')?;
            Some(value.trim_matches('\'').to_owned())
        })
        .with_context(|| format!("{} has no {name}", path.display()))
}

fn bench_publish(
    bench: &mut Bench,
    label: &str,
    binary: &Path,
    case_dir: &Path,
    env: &PublishEnv,
    options: &Options,
) -> Result<Value> {
    // Registries keep every version forever: each round publishes under fresh names, one set
    // for castoff and one for the peers (both built by castoff dist, untimed).
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let home = case_dir.join("publish-home");
    fs::create_dir_all(&home)?;
    let host = env.verdaccio.trim_start_matches("http://");
    let npmrc = home.join(".npmrc");
    fs::write(
        &npmrc,
        format!(
            "registry={}\n//{host}:_authToken={}\n",
            env.verdaccio, env.npm_token
        ),
    )?;
    let rounds = options.rounds.min(3);
    let mut castoff_samples = Vec::new();
    let mut twine_samples = Vec::new();
    let mut npm_samples = Vec::new();
    let mut skopeo_samples = Vec::new();
    let mut sum_samples = Vec::new();
    for round in 0..rounds {
        eprintln!("  publish round {}/{rounds}", round + 1);
        let mut workspaces = Vec::new();
        for who in ["c", "p"] {
            let workspace = case_dir.join(format!("publish-{who}{round}"));
            let names = Names {
                python: format!("bench-{label}-{who}{round}-{nonce}"),
                npm: format!("@bench{nonce}/{label}-{who}{round}"),
            };
            write_workspace(bench, &workspace, binary, &names)?;
            castoff_dist(bench, &workspace)?;
            workspaces.push(workspace);
        }
        let castoff_run = |bench: &mut Bench| -> Result<Sample> {
            let repository = format!("{}/bench{nonce}/{label}-c{round}", env.registry);
            let mut command = env.castoff_publish(
                &bench.castoff,
                &workspaces[0],
                &home,
                [&env.pypiserver, &env.verdaccio, &repository],
            );
            bench.measure(&mut command)
        };
        if round % 2 == 0 {
            castoff_samples.push(castoff_run(bench)?);
        }
        let dist = workspaces[1].join("dist");
        let wheel = file_with_extension(&dist.join("python"), ".whl", "")?;
        let mut twine = Command::new(&bench.twine);
        twine
            .args([
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                &env.pypiserver,
                "-u",
                &env.user,
                "-p",
                &env.password,
            ])
            .arg(&wheel)
            .env("HOME", &home);
        let twine = bench.measure(&mut twine)?;
        // The platform package first, then the launcher, as castoff orders them.
        let platform = file_with_extension(&dist.join("npm"), ".tgz", "")?;
        let launcher = file_with_extension(&dist.join("npm"), ".tgz", "linux")?;
        let mut npm = Sample::ZERO;
        for tarball in [&platform, &launcher] {
            let mut command = npm_publish(&npmrc, &case_dir.join("npm-cache"), tarball, &home);
            npm = npm.then(bench.measure(&mut command)?);
        }
        // The layout's index.json has one entry, the image index: no tag needed.
        let mut skopeo = skopeo_copy(
            &dist.join("oci").join(BIN),
            &format!("{}/bench{nonce}/{label}-p{round}:1.0.0", env.registry),
            &home,
        );
        let skopeo = bench.measure(&mut skopeo)?;
        if round % 2 == 1 {
            castoff_samples.push(castoff_run(bench)?);
        }
        twine_samples.push(twine);
        npm_samples.push(npm);
        skopeo_samples.push(skopeo);
        sum_samples.push(twine.then(npm).then(skopeo));
    }
    Ok(json!({
        "castoff": summary("castoff publish (wheel + 2 npm packages + image index)", &castoff_samples),
        "peers": [
            summary("twine upload", &twine_samples),
            summary("npm publish (platform + launcher)", &npm_samples),
            summary("skopeo copy --all", &skopeo_samples),
        ],
        "peers_sum": summary("peers, sum", &sum_samples),
    }))
}

/// `cargo xtask dist --no-build` in a workspace set up by `castoff init --castoff-path` (the
/// xtask its own workspace, its `dev` profile with castoff's hot crates optimized) against the
/// standalone release binary, cold, paired rounds, on the large binary. The workspace lives
/// outside `work/` so the xtask's build output survives between bench runs; the build of this
/// run (the first one compiles castoff) is reported, not compared. Also the fixed cost of
/// `cargo run` itself (`cargo xtask --version`), which the ratio includes.
fn xtask_against_standalone(
    bench: &mut Bench,
    out_dir: &Path,
    castoff_repository: &Path,
    large: &Path,
    options: &Options,
) -> Result<Value> {
    let dir = out_dir.join("xtask-workspace");
    let names = Names {
        python: "bench-xtask".to_owned(),
        npm: "@bench/xtask".to_owned(),
    };
    write_workspace(bench, &dir, large, &names)?;
    run_quiet(
        Command::new(&bench.castoff)
            .args(["init", "--no-workflow", "--castoff-path"])
            .arg(castoff_repository.join("crates/castoff"))
            .current_dir(&dir),
    )?;
    let cargo = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO"));
        crate::harness::without_xtask_cargo_env(&mut command);
        command
            .args(args)
            .current_dir(&dir)
            .env_remove("CARGO_TARGET_DIR")
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
        command
    };
    let build = bench.measure(&mut cargo(&[
        "build",
        "--quiet",
        "--manifest-path",
        "xtask/Cargo.toml",
    ]))?;
    let xtask_dist = |bench: &mut Bench| {
        let _ = fs::remove_dir_all(dir.join("dist"));
        bench.measure(&mut cargo(&["xtask", "dist", "--no-build", "--quiet"]))
    };
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        xtask_dist(bench)?;
        castoff_dist(bench, &dir)?;
    }
    let mut standalone = Vec::new();
    let mut through_xtask = Vec::new();
    let mut overhead = Vec::new();
    for round in 0..options.rounds {
        eprintln!("  xtask round {}/{}", round + 1, options.rounds);
        if round % 2 == 0 {
            standalone.push(castoff_dist(bench, &dir)?);
            through_xtask.push(xtask_dist(bench)?);
        } else {
            through_xtask.push(xtask_dist(bench)?);
            standalone.push(castoff_dist(bench, &dir)?);
        }
        overhead.push(bench.measure(&mut cargo(&["xtask", "--version"]))?);
    }
    Ok(json!({
        "castoff": summary("castoff dist --no-build (standalone, release)", &standalone),
        "xtask": summary("cargo xtask dist --no-build (init-ed xtask)", &through_xtask),
        "cargo_run": summary("cargo xtask --version (the alias's own cost)", &overhead),
        "xtask_build_seconds": build.seconds,
    }))
}

fn print_table(results: &Value) {
    print_cases(results);
    let xtask = &results["xtask"];
    if !xtask.is_null() {
        let standalone = xtask["castoff"]["median_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN);
        println!("\ncargo xtask in an `init`-ed workspace, large binary (target: <= 1.25x)");
        println!("  {:<58} {:>9} {:>8}", "", "median s", "ratio");
        for row in [&xtask["castoff"], &xtask["xtask"], &xtask["cargo_run"]] {
            let median = row["median_seconds"].as_f64().unwrap_or(f64::NAN);
            println!(
                "  {:<58} {:>9.3} {:>7.2}x",
                row["name"].as_str().unwrap_or(""),
                median,
                median / standalone
            );
        }
        println!(
            "  building the xtask in this run (castoff compiled on the first): {:.1} s",
            xtask["xtask_build_seconds"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let memory = results["memory"].as_array();
    if memory.is_some() {
        println!("\nmemory (castoff dist, one cold run each)");
        println!(
            "  {:<24} {:>14} {:>9} {:>9}",
            "binary", "bytes", "seconds", "peak MiB"
        );
    }
    for row in memory.into_iter().flatten() {
        println!(
            "  {:<24} {:>14} {:>9.2} {:>9.1}",
            row["binary"].as_str().unwrap_or(""),
            row["binary_bytes"].as_u64().unwrap_or(0),
            row["seconds"].as_f64().unwrap_or(f64::NAN),
            row["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
        );
    }
}

fn print_cases(results: &Value) {
    for case in results["cases"].as_array().into_iter().flatten() {
        println!(
            "\n{} binary: {} ({:.1} MiB)",
            case["label"].as_str().unwrap_or(""),
            case["binary"].as_str().unwrap_or(""),
            case["binary_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
        );
        for section in ["packaging", "publish"] {
            let part = &case[section];
            if part.is_null() {
                continue;
            }
            let castoff = part["castoff"]["median_seconds"]
                .as_f64()
                .unwrap_or(f64::NAN);
            println!(
                "  {:<58} {:>9} {:>15} {:>8} {:>9}",
                section, "median s", "min-max s", "ratio", "peak MiB"
            );
            let rows = [&part["castoff"], &part["libdeflate_alone"]]
                .into_iter()
                .chain(part["peers"].as_array().into_iter().flatten())
                .chain(std::iter::once(&part["peers_sum"]))
                .chain(part["lean_peers"].as_array().into_iter().flatten())
                .chain([
                    &part["lean_sum"],
                    &part["castoff_cached"],
                    &part["castoff_first_run"],
                ])
                .filter(|row| !row.is_null());
            for row in rows {
                let median = row["median_seconds"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "  {:<58} {:>9.3} {:>7.3}-{:<7.3} {:>7.2}x {:>9.1}",
                    row["name"].as_str().unwrap_or(""),
                    median,
                    row["min_seconds"].as_f64().unwrap_or(f64::NAN),
                    row["max_seconds"].as_f64().unwrap_or(f64::NAN),
                    median / castoff,
                    row["peak_rss_mib"].as_f64().unwrap_or(0.0)
                );
            }
        }
        let packaging = &case["packaging"];
        let median_of = |row: &str| packaging[row]["median_seconds"].as_f64();
        if let (Some(cold), Some(alone)) = (median_of("castoff"), median_of("libdeflate_alone")) {
            println!(
                "  cold dist / libdeflate alone: {:.2}x (target: <= 1.3x)",
                cold / alone
            );
        }
        if let (Some(cold), Some(peers), Some(lean)) = (
            median_of("castoff"),
            median_of("peers_sum"),
            median_of("lean_sum"),
        ) {
            println!(
                "  peers' sum / cold dist: {:.1}x (target: >= 14x); lean peers' sum / cold dist: {:.1}x (target: >= 12x)",
                peers / cold,
                lean / cold
            );
        }
        match packaging["umoci_insert_layer_intact"].as_bool() {
            Some(true) => println!("  umoci insert's layer held the whole binary"),
            Some(false) => println!(
                "  umoci insert's layer is truncated (opencontainers/umoci#436): its image is broken"
            ),
            None => {}
        }
        let cold = case["packaging"]["castoff"]["median_seconds"].as_f64();
        let cached = case["packaging"]["castoff_cached"]["median_seconds"].as_f64();
        if let (Some(cold), Some(cached)) = (cold, cached) {
            println!(
                "  cached re-run: {:.1}x faster than a cold dist",
                cold / cached
            );
        }
        let first = case["packaging"]["castoff_first_run"]["median_seconds"].as_f64();
        let peers = case["packaging"]["peers_sum"]["median_seconds"].as_f64();
        if let (Some(first), Some(peers)) = (first, peers) {
            println!(
                "  first run (nothing remembered): {:.1}x faster than the peers' sum",
                peers / first
            );
        }
        let sizes = &case["sizes"];
        let gzip = sizes["gzip_6"].as_f64().unwrap_or(f64::NAN);
        println!("  {:<58} {:>12} {:>9}", "sizes", "bytes", "/ gzip -6");
        if let Some(map) = sizes.as_object() {
            for (name, value) in map {
                let bytes = value.as_f64().unwrap_or(0.0);
                println!("  {name:<58} {bytes:>12} {:>9.3}", bytes / gzip);
            }
        }
    }
}
