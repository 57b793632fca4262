//! `cargo xtask bench --scale`: plan, dist, `dist --merge` and publish of generated releases
//! of growing size (N apps x T targets), with the growth exponent of each.
//!
//! Every size is a generated workspace of N packages (`app0`..), each releasing one binary
//! through the three channels (wheel without sdist, npm platform packages and launcher, image
//! index), for the first T targets of the table. The binaries are the platform probe's small
//! builds (`CASTOFF_TEST_PLATFORM_PROBE`, one per target, made by zig for the multi-platform
//! tests), given through `--prebuilt-dir`, so no compiler runs. Rounds go over every size in
//! turn (sizes interleaved, so drift of the shared machine spreads over all of them); the
//! tables show medians, the spread, peak RSS, and per command the least-squares fit of
//! log(time) against log(work): time = a * work^k.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};
use castoff_test_support::platforms::PROBE_TARGETS;
use serde_json::{Value, json};

use super::{
    Bench, Options, PublishEnv, SOURCE_DATE_EPOCH, Sample, harness_var, median, place,
    write_results,
};

/// The app counts and target counts measured (every pair of them).
const APPS: [usize; 3] = [1, 8, 32];
const TARGETS: [usize; 3] = [1, 4, 19];

/// Targets in the order sizes take them: one static Linux target first (its image runs
/// `FROM scratch`), then one of each operating system, then the rest in table order (glibc
/// before musl). Every Linux architecture has a musl build, which the image index takes.
const FIRST_TARGETS: [&str; 4] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

fn target_order() -> Vec<&'static str> {
    let mut order: Vec<&str> = FIRST_TARGETS.to_vec();
    for target in PROBE_TARGETS {
        if !order.contains(&target.triple) {
            order.push(target.triple);
        }
    }
    order
}

/// One generated release.
struct Size {
    apps: usize,
    targets: Vec<&'static str>,
    dir: PathBuf,
    /// Artifacts and steps of its plan (`plan --format json`).
    artifacts: usize,
    steps: usize,
    plan: Vec<Sample>,
    dist: Vec<Sample>,
    merge: Vec<Sample>,
    publish: Vec<Sample>,
}

impl Size {
    fn label(&self) -> String {
        format!("{} x {}", self.apps, self.targets.len())
    }
    fn workspace(&self) -> PathBuf {
        self.dir.join("workspace")
    }
}

pub(super) fn run(
    bench: &mut Bench,
    options: &Options,
    out_dir: &Path,
    target_dir: &Path,
) -> Result<()> {
    let env_file = target_dir.join("castoff-test/env.sh");
    let probe = probe_dir(&env_file)?;
    // Each publish starts a pypiserver in a process group of its own, out of Ctrl-C's reach.
    ctrlc::set_handler(|| {
        eprintln!("\n==> interrupted: stopping the bench's pypiserver");
        crate::harness::stop_started_servers();
        std::process::exit(130);
    })?;
    let publish_env = if options.publish {
        Some(PublishEnv::read(&env_file)?)
    } else {
        None
    };
    let root = bench.root.join("scale");
    fs::create_dir_all(&root)?;
    let order = target_order();
    let mut sizes = Vec::new();
    for &apps in &APPS {
        for &targets in &TARGETS {
            sizes.push(Size {
                apps,
                targets: order[..targets].to_vec(),
                dir: root.join(format!("n{apps}-t{targets}")),
                artifacts: 0,
                steps: 0,
                plan: Vec::new(),
                dist: Vec::new(),
                merge: Vec::new(),
                publish: Vec::new(),
            });
        }
    }

    eprintln!("== scale: generating {} releases", sizes.len());
    for size in &sizes {
        write_workspace(&size.workspace(), size.apps, &size.targets, "bench")?;
        write_prebuilt(&size.dir.join("bins"), &probe, size.apps, &size.targets)?;
        for triple in &size.targets {
            write_prebuilt(
                &size.dir.join("part-bins").join(triple),
                &probe,
                size.apps,
                &[triple],
            )?;
        }
    }
    // castoff remembers Cargo's answers only about files unchanged for a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for size in &mut sizes {
        eprintln!(
            "  {}: warm-up and {} partial dists",
            size.label(),
            size.targets.len()
        );
        let plan = plan(bench, &size.workspace())?;
        let plan: Value = serde_json::from_str(&plan)?;
        size.artifacts = plan["artifacts"].as_array().map_or(0, Vec::len);
        size.steps = plan["steps"].as_array().map_or(0, Vec::len);
        dist(bench, size)?;
        for triple in &size.targets {
            let part = size.dir.join("parts").join(triple);
            let _ = fs::remove_dir_all(&part);
            let mut command = castoff(bench, &size.workspace(), "dist");
            command
                .arg("--target")
                .arg(triple)
                .arg("--prebuilt-dir")
                .arg(size.dir.join("part-bins").join(triple))
                .arg("--dist-dir")
                .arg(&part);
            bench.measure(&mut command)?;
        }
        merge(bench, size)?;
    }

    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let publish_rounds = options.rounds.min(3);
    for round in 0..options.rounds {
        eprintln!("== scale round {}/{}", round + 1, options.rounds);
        // Fresh names for this round's publishes, written first so that one pause covers
        // them all (Cargo's answers are remembered for files a second old).
        let publishing = publish_env.is_some() && round < publish_rounds;
        if publishing {
            for size in &sizes {
                let workspace = size.dir.join(format!("publish-{round}"));
                let tag = format!("s{nonce}r{round}n{}t{}", size.apps, size.targets.len());
                write_workspace(&workspace, size.apps, &size.targets, &tag)?;
            }
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        for size in &mut sizes {
            let sample = {
                let workspace = size.workspace();
                bench.measure(plan_command(bench, &workspace).arg("--quiet"))?
            };
            size.plan.push(sample);
            let sample = dist(bench, size)?;
            size.dist.push(sample);
            let sample = merge(bench, size)?;
            size.merge.push(sample);
            if let (true, Some(env)) = (publishing, &publish_env) {
                let workspace = size.dir.join(format!("publish-{round}"));
                let mut command = castoff(bench, &workspace, "dist");
                command.arg("--prebuilt-dir").arg(size.dir.join("bins"));
                bench.measure(&mut command)?;
                let sample = publish(bench, &workspace, env, &target_dir.join("castoff-tools"))?;
                size.publish.push(sample);
                let _ = fs::remove_dir_all(&workspace);
            }
            eprintln!(
                "  {:>7}: plan {:.3} s, dist {:.3} s, merge {:.3} s{}",
                size.label(),
                size.plan.last().map_or(0.0, |s| s.seconds),
                size.dist.last().map_or(0.0, |s| s.seconds),
                size.merge.last().map_or(0.0, |s| s.seconds),
                match (publishing, size.publish.last()) {
                    (true, Some(sample)) => format!(", publish {:.3} s", sample.seconds),
                    _ => String::new(),
                }
            );
        }
    }

    let results = report(bench, options, &sizes)?;
    write_results(out_dir, "scale.json", &results, print)
}

/// `CASTOFF_TEST_PLATFORM_PROBE` of the running harness: the probe's builds, laid out as a
/// prebuilt directory (`<triple>/greeter[.exe]`).
fn probe_dir(env_file: &Path) -> Result<PathBuf> {
    let dir = harness_var(env_file, castoff_test_support::vars::PLATFORM_PROBE)?;
    let dir = PathBuf::from(dir);
    for target in PROBE_TARGETS {
        let binary = dir.join(target.triple).join(target.file_name());
        if !binary.is_file() {
            bail!(
                "the platform probe has no build for {}: {} is missing\nhint: run `cargo xtask test` once (it builds the probe)",
                target.triple,
                binary.display()
            );
        }
    }
    Ok(dir)
}

/// A workspace of `apps` packages `app0`.., each releasing its binary through the wheel (no
/// sdist: it would run `cargo package --list` per app, which is Cargo's time, not castoff's),
/// npm and OCI channels for `targets`; registry names carry `tag`.
fn write_workspace(dir: &Path, apps: usize, targets: &[&str], tag: &str) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let members: Vec<String> = (0..apps).map(|app| format!("\"app{app}\"")).collect();
    let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n\n[workspace.metadata.castoff]\ntargets = [{}]\n",
            members.join(", "),
            targets.join(", ")
        ),
    )?;
    for app in 0..apps {
        let package = dir.join(format!("app{app}"));
        fs::create_dir_all(package.join("src"))?;
        fs::write(
            package.join("Cargo.toml"),
            format!(
                "[package]\nname = \"app{app}\"\nversion = \"1.0.0\"\nedition = \"2021\"\ndescription = \"castoff scale benchmark\"\nlicense = \"MIT\"\n\n[package.metadata.castoff]\npython = {{ name = \"{tag}-app{app}\", sdist = false }}\nnpm = {{ name = \"@{tag}/app{app}\" }}\noci = {{ repository = \"ghcr.io/{tag}/app{app}\" }}\n"
            ),
        )?;
        fs::write(package.join("src/main.rs"), "fn main() {}\n")?;
    }
    Ok(())
}

/// `dir/<triple>/app<i>[.exe]`: hard links (or copies) of the probe's build of each target.
fn write_prebuilt(dir: &Path, probe: &Path, apps: usize, targets: &[&str]) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    for triple in targets {
        let target = castoff_test_support::platforms::probe_target(triple);
        let binary = probe.join(target.triple).join(target.file_name());
        let exe = if target.file_name().ends_with(".exe") {
            ".exe"
        } else {
            ""
        };
        for app in 0..apps {
            place(&binary, &dir.join(triple).join(format!("app{app}{exe}")))?;
        }
    }
    Ok(())
}

fn castoff(bench: &Bench, workspace: &Path, command: &str) -> Command {
    let mut castoff = Command::new(&bench.castoff);
    castoff
        .arg(command)
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    castoff
}

fn plan_command(bench: &Bench, workspace: &Path) -> Command {
    let mut command = Command::new(&bench.castoff);
    command
        .args(["plan", "--format", "json", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    command
}

/// The JSON plan (untimed).
fn plan(bench: &Bench, workspace: &Path) -> Result<String> {
    let output = plan_command(bench, workspace).output()?;
    if !output.status.success() {
        bail!(
            "castoff plan failed in {}:\n{}",
            workspace.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// A cold `dist` of every target from the prebuilt binaries (dist/ removed first).
fn dist(bench: &mut Bench, size: &Size) -> Result<Sample> {
    let workspace = size.workspace();
    let _ = fs::remove_dir_all(workspace.join("dist"));
    let mut command = castoff(bench, &workspace, "dist");
    command.arg("--prebuilt-dir").arg(size.dir.join("bins"));
    bench.measure(&mut command)
}

/// `dist --merge` of the size's T partial dists into a fresh directory.
fn merge(bench: &mut Bench, size: &Size) -> Result<Sample> {
    let merged = size.dir.join("merged");
    let _ = fs::remove_dir_all(&merged);
    let mut command = castoff(bench, &size.workspace(), "dist");
    command.arg("--dist-dir").arg(&merged).arg("--merge");
    for triple in &size.targets {
        command.arg(size.dir.join("parts").join(triple));
    }
    bench.measure(&mut command)
}

/// One `publish` of `workspace`'s dist: to the harness's Verdaccio and open registry, and to a
/// pypiserver started for it on an empty directory (untimed): the harness's own one re-reads
/// a directory of every earlier upload on each request, so its answers slow down run by run
/// (measured: 8 x 19 took 5.9 s on a fresh harness, 26 to 40 s after a few hundred runs).
fn publish(bench: &mut Bench, workspace: &Path, env: &PublishEnv, tools: &Path) -> Result<Sample> {
    let home = workspace.join("home");
    fs::create_dir_all(&home)?;
    let pypi = crate::harness::ScratchPypi::start(tools, &workspace.join("pypiserver"))?;
    let mut command = castoff(bench, workspace, "publish");
    // `cargo metadata` runs under the throwaway HOME: keep rustup's and Cargo's own homes.
    if let Some(real_home) = std::env::var_os("HOME").map(PathBuf::from) {
        for (name, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
            let value = std::env::var_os(name).unwrap_or_else(|| real_home.join(default).into());
            command.env(name, value);
        }
    }
    command
        .args(["--pypi-url", &pypi.url])
        .args(["--npm-registry", &env.verdaccio])
        .args(["--oci-registry", &env.registry])
        .env("HOME", &home)
        .env("NPM_CONFIG_USERCONFIG", home.join("castoff-npmrc"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("TWINE_USERNAME", &env.user)
        .env("TWINE_PASSWORD", &env.password)
        .env("NPM_TOKEN", &env.npm_token);
    bench.measure(&mut command)
}

/// Least squares of `y` on `x`: (slope, intercept).
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx == 0.0 {
        return (f64::NAN, mean_y);
    }
    let slope = sxy / sxx;
    (slope, mean_y - slope * mean_x)
}

/// The least CPU time (seconds) a size needs to count in the fit of castoff's CPU time.
const CPU_FITTED: f64 = 0.1;

/// One command over the sizes: per size the work, median, spread and peak RSS; the power
/// fit (k, and a = the fitted time of one unit of work), the linear fit (fixed cost and cost
/// per unit of work), and the local exponent between the two largest sizes.
fn command_report(
    name: &str,
    unit: &str,
    sizes: &[Size],
    samples: impl Fn(&Size) -> &[Sample],
    work: impl Fn(&Size) -> usize,
) -> Value {
    let mut rows = Vec::new();
    let mut points = Vec::new();
    let mut cpu_points = Vec::new();
    for size in sizes {
        let samples = samples(size);
        if samples.is_empty() {
            continue;
        }
        let mut seconds: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
        let middle = median(&mut seconds);
        let mut cpu: Vec<f64> = samples.iter().map(|s| s.cpu_seconds).collect();
        let cpu_middle = median(&mut cpu);
        let work = work(size);
        points.push((work as f64, middle));
        cpu_points.push((work as f64, cpu_middle));
        rows.push(json!({
            "apps": size.apps,
            "targets": size.targets.len(),
            "work": work,
            "median_seconds": middle,
            "min_seconds": seconds.first(),
            "max_seconds": seconds.last(),
            "samples_seconds": samples.iter().map(|s| s.seconds).collect::<Vec<_>>(),
            "peak_rss_mib": samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            "median_cpu_seconds": cpu_middle,
            "samples_cpu_seconds": samples.iter().map(|s| s.cpu_seconds).collect::<Vec<_>>(),
        }));
    }
    let logs: Vec<(f64, f64)> = points.iter().map(|(w, t)| (w.ln(), t.ln())).collect();
    let (k, intercept) = fit(&logs);
    let (per_unit, fixed) = fit(&points);
    // GNU time truncates user and system time to hundredths each: only sizes with at least
    // 0.1 s are fitted (a sample of a few hundredths may read 0.02 s low).
    let cpu_points: Vec<(f64, f64)> = cpu_points
        .into_iter()
        .filter(|(_, cpu)| *cpu >= CPU_FITTED)
        .collect();
    let cpu_logs: Vec<(f64, f64)> = cpu_points.iter().map(|(w, t)| (w.ln(), t.ln())).collect();
    let (cpu_k, _) = if cpu_points.len() >= 3 {
        fit(&cpu_logs)
    } else {
        (f64::NAN, f64::NAN)
    };
    json!({
        "command": name,
        "unit": unit,
        "rows": rows,
        "k": k,
        "a_seconds": intercept.exp(),
        "linear_fixed_seconds": fixed,
        "linear_per_unit_ms": per_unit * 1000.0,
        "local_k_largest": local_k_largest(&points),
        // castoff's own work (user + system time), apart from what it waits for: servers,
        // the disk.
        "cpu_k": cpu_k,
        "cpu_fitted_sizes": cpu_points.len(),
        "cpu_local_k_largest": local_k_largest(&cpu_points),
    })
}

/// The exponent between the two largest amounts of work.
fn local_k_largest(points: &[(f64, f64)]) -> f64 {
    let mut by_work = points.to_vec();
    by_work.sort_by(|a, b| a.0.total_cmp(&b.0));
    match by_work.as_slice() {
        [.., (w1, t1), (w2, t2)] if w2 > w1 => (t2 / t1).ln() / (w2 / w1).ln(),
        _ => f64::NAN,
    }
}

fn report(bench: &Bench, options: &Options, sizes: &[Size]) -> Result<Value> {
    Ok(json!({
        "castoff": bench.castoff.display().to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rounds": options.rounds,
        "commands": [
            command_report("plan --format json", "artifacts + steps", sizes, |s| &s.plan, |s| s.artifacts + s.steps),
            command_report("dist --prebuilt-dir (cold)", "artifacts", sizes, |s| &s.dist, |s| s.artifacts),
            command_report("dist --merge (T partials)", "artifacts", sizes, |s| &s.merge, |s| s.artifacts),
            command_report("publish (pypiserver, Verdaccio, registry)", "steps", sizes, |s| &s.publish, |s| s.steps),
        ],
    }))
}

fn print(results: &Value) {
    for command in results["commands"].as_array().into_iter().flatten() {
        if command["rows"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let f = |key: &str| command[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "\n`{}` (work: {})\n",
            command["command"].as_str().unwrap_or(""),
            command["unit"].as_str().unwrap_or("")
        );
        println!(
            "| apps x targets | work | median s | min - max s | ms / unit | CPU s | peak RSS MiB |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for row in command["rows"].as_array().into_iter().flatten() {
            let g = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {} x {} | {} | {:.3} | {:.3} - {:.3} | {:.2} | {} | {:.1} |",
                row["apps"],
                row["targets"],
                row["work"],
                g("median_seconds"),
                g("min_seconds"),
                g("max_seconds"),
                g("median_seconds") * 1000.0 / g("work"),
                // GNU time reports CPU time in hundredths of a second.
                match g("median_cpu_seconds") {
                    0.0 => "< 0.01".to_owned(),
                    cpu => format!("{cpu:.2}"),
                },
                g("peak_rss_mib"),
            );
        }
        println!(
            "\nk = {:.3} (time = {:.4} s x work^k); linear: {:.1} ms fixed + {:.3} ms per unit; k between the two largest sizes: {:.3}",
            f("k"),
            f("a_seconds"),
            f("linear_fixed_seconds") * 1000.0,
            f("linear_per_unit_ms"),
            f("local_k_largest"),
        );
        if f("cpu_k").is_finite() {
            println!(
                "castoff's CPU time (user + system, its child processes included; over the {} sizes with at least {CPU_FITTED} s): k = {:.3}; between the two largest sizes: {:.3}",
                command["cpu_fitted_sizes"],
                f("cpu_k"),
                f("cpu_local_k_largest"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn the_fit_recovers_a_power_law() {
        let points: Vec<(f64, f64)> = [1.0f64, 10.0, 100.0, 1000.0]
            .iter()
            .map(|w| (w.ln(), (0.02 * w.powf(1.1)).ln()))
            .collect();
        let (k, intercept) = fit(&points);
        assert!((k - 1.1).abs() < 1e-9, "{k}");
        assert!((intercept.exp() - 0.02).abs() < 1e-9);
    }
}
