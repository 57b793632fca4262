//! castoff's health probe (`crates/castoff-oci/probe/`): the committed binaries are exactly
//! what the harness's zig makes of `probe.c` (the check `cargo xtask probes --check` runs, by
//! the same code), and each of the seven runs here (amd64 and 386 natively, the others under
//! qemu through binfmt_misc) and keeps its contract against servers of this test's own on
//! 127.0.0.1: healthy and unhealthy answers, a closed port, a server that never answers, one
//! that floods, answers no client should trust, and bad arguments.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use castoff_test_support::TestEnv;
use castoff_test_support::vars;
use castoff_test_support::workspace::{output_text, repository_root};

/// The recipe `cargo xtask probes` builds with, compiled into this test as it is into xtask.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../../../xtask/src/probes/recipe.rs"]
mod recipe;

/// Rebuilds the seven binaries with the harness's zig into a scratch directory: every one is
/// byte-identical to the committed one. zig's cache is the harness's, as for every zig build
/// of the suite (the first build of each musl takes a minute, later ones are cache hits).
#[test]
fn the_committed_probes_are_what_the_harness_s_zig_builds() {
    let env = TestEnv::get();
    let zig = env.zig_bin.join("zig");
    let zig_cache = std::env::var_os(vars::ZIG_GLOBAL_CACHE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{} is not set: run the suite with `cargo xtask test`, or source target/castoff-test/env.sh",
                vars::ZIG_GLOBAL_CACHE_DIR
            )
        });
    let scratch = env.scratch_dir(&format!("probe-rebuild-{}", std::process::id()));
    let clock = Instant::now();
    let differences = recipe::check(&zig, &zig_cache, &repository_root(), &scratch)
        .unwrap_or_else(|error| panic!("rebuilding the probes: {error}"));
    assert!(
        differences.is_empty(),
        "the committed probes are not what zig {} builds (`cargo xtask probes` rebuilds them):\n{}",
        recipe::ZIG_VERSION,
        differences.join("\n")
    );
    env.figure(format!(
        "probe: the {} committed binaries are byte-identical to a rebuild with zig {} ({:.1} s)",
        recipe::BUILDS.len(),
        recipe::ZIG_VERSION,
        clock.elapsed().as_secs_f64()
    ));
}

/// The sizes of the committed binaries, for the figures (each must stay well under 64 KiB).
#[test]
fn the_probe_sizes_are_reported() {
    let env = TestEnv::get();
    let sizes = recipe::committed_sizes(&repository_root())
        .unwrap_or_else(|error| panic!("the committed probes: {error}"));
    for (file, size) in &sizes {
        assert!(*size < 64 * 1024, "{file}: {size} bytes");
    }
    env.figure(format!(
        "probe: sizes {}",
        sizes
            .iter()
            .map(|(file, size)| format!("{file} {size} B"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// What a test server does with a connection.
#[derive(Debug, Clone)]
enum Answer {
    /// Reads the request, sends these bytes, closes.
    Bytes(Vec<u8>),
    /// Reads the request and sends nothing until the client goes away.
    Silent,
    /// Reads the request, sends 1 MiB without a line end, closes.
    Flood,
    /// Reads the request and closes without a word.
    Close,
}

/// A server on a free loopback port, serving each connection in a thread of its own for as
/// long as the test process lives; it keeps every request it read.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Server {
    fn start(answer: Answer) -> Server {
        Server::on(
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port"),
            answer,
        )
    }

    fn on(listener: TcpListener, answer: Answer) -> Server {
        let port = listener.local_addr().expect("a bound address").port();
        let requests: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let kept = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let answer = answer.clone();
                let kept = Arc::clone(&kept);
                thread::spawn(move || serve(stream, &answer, &kept));
            }
        });
        Server { port, requests }
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().expect("no panic while held").clone()
    }
}

fn serve(mut stream: TcpStream, answer: &Answer, requests: &Mutex<Vec<Vec<u8>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    if let Answer::Silent = answer {
        // Until the probe gives up and its connection closes.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
        return;
    }
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => request.extend_from_slice(&buffer[..count]),
        }
    }
    requests.lock().expect("no panic while held").push(request);
    // The probe may have gone (it reads a bounded amount): write errors are expected.
    let _ = match answer {
        Answer::Bytes(bytes) => stream.write_all(bytes),
        Answer::Flood => stream.write_all(&vec![b'x'; 1 << 20]),
        Answer::Close | Answer::Silent => Ok(()),
    };
}

/// A port on 127.0.0.1 and [::1] that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("a free port")
            .local_addr()
            .expect("a bound address")
            .port();
        let refused = |address: SocketAddr| {
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_err()
        };
        if refused((Ipv4Addr::LOCALHOST, port).into())
            && refused((Ipv6Addr::LOCALHOST, port).into())
        {
            return port;
        }
    }
}

/// A server on [::1] alone: its port on 127.0.0.1 refuses.
fn ipv6_only_server(answer: Answer) -> Server {
    loop {
        let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
            .expect("binding [::1]: the probe's fallback needs IPv6 on the loopback interface");
        let port = listener.local_addr().expect("a bound address").port();
        if TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))
            .is_err()
        {
            return Server::on(listener, answer);
        }
    }
}

fn http_answer(status_line: &str) -> Answer {
    Answer::Bytes(
        format!("{status_line}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").into_bytes(),
    )
}

/// One run of a probe and what it must do.
struct Case {
    args: Vec<String>,
    exit: i32,
    /// Exactly this on stdout (plus the line end), nothing on stderr; for usage errors
    /// (exit 2): nothing on stdout, and stderr starts with this.
    line: String,
    /// The run must end within this long.
    within: Duration,
}

fn case(args: &[&str], exit: i32, line: String) -> Case {
    Case {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        exit,
        line,
        within: Duration::from_secs(20),
    }
}

/// The servers and cases every build goes through.
struct Scenario {
    cases: Vec<Case>,
    /// The server that answers 200 to `/healthz`: the request it received, checked byte for
    /// byte.
    ok: Server,
}

fn scenario() -> Scenario {
    let ok = Server::start(http_answer("HTTP/1.1 200 OK"));
    let no_content = Server::start(Answer::Bytes(b"HTTP/1.0 204 No Content\n\n".to_vec()));
    let moved = Server::start(Answer::Bytes(
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    ));
    let edge_399 = Server::start(http_answer("HTTP/1.1 399 Whatever"));
    let edge_199 = Server::start(http_answer("HTTP/1.1 199 Early"));
    let edge_400 = Server::start(http_answer("HTTP/1.1 400 Bad Request"));
    let missing = Server::start(http_answer("HTTP/1.1 404 Not Found"));
    let unavailable = Server::start(http_answer("HTTP/1.1 503 Service Unavailable"));
    // Terminal escapes and a bidi override in the reason phrase: only the digits are printed.
    let escapes = Server::start(http_answer(
        "HTTP/1.1 200 \u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}KO",
    ));
    let four_digits = Server::start(http_answer("HTTP/1.1 2000 OK"));
    let not_http = Server::start(Answer::Bytes(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()));
    let cut = Server::start(Answer::Bytes(b"HTTP/1.1 200".to_vec()));
    let silent = Server::start(Answer::Silent);
    let flood = Server::start(Answer::Flood);
    let mute = Server::start(Answer::Close);
    let ipv6 = ipv6_only_server(http_answer("HTTP/1.1 200 OK"));
    let closed = closed_port();

    let http = |server: &Server, path: &str| {
        (
            server.port.to_string(),
            format!("http://127.0.0.1:{}{path}", server.port),
        )
    };
    let mut cases = Vec::new();
    let mut check = |server: &Server, path: &str, exit: i32, verdict: &str| {
        let (port, url) = http(server, path);
        cases.push(case(
            &["http", &port, path],
            exit,
            format!("{url}: {verdict}"),
        ));
    };
    check(&ok, "/healthz", 0, "HTTP 200");
    check(&no_content, "/ready?full=1&x=%20", 0, "HTTP 204");
    check(&moved, "/", 0, "HTTP 301");
    check(&edge_399, "/healthz", 0, "HTTP 399");
    check(&edge_199, "/healthz", 1, "HTTP 199 (unhealthy)");
    check(&edge_400, "/healthz", 1, "HTTP 400 (unhealthy)");
    check(&missing, "/healthz", 1, "HTTP 404 (unhealthy)");
    check(&unavailable, "/healthz", 1, "HTTP 503 (unhealthy)");
    check(&escapes, "/healthz", 0, "HTTP 200");
    check(&four_digits, "/healthz", 1, "malformed status line");
    check(&not_http, "/healthz", 1, "malformed status line");
    check(
        &cut,
        "/healthz",
        1,
        "connection closed inside the status line",
    );
    check(&mute, "/healthz", 1, "connection closed without an answer");
    check(
        &flood,
        "/healthz",
        1,
        "no status line in the first 4096 bytes of the answer",
    );
    let closed_text = closed.to_string();
    cases.push(case(
        &["http", &closed_text, "/healthz"],
        1,
        format!("http://127.0.0.1:{closed}/healthz: connection refused"),
    ));
    let silent_port = silent.port.to_string();
    cases.push(Case {
        within: Duration::from_secs(15),
        ..case(
            &["--timeout", "1", "http", &silent_port, "/healthz"],
            1,
            format!("http://127.0.0.1:{silent_port}/healthz: no answer within 1 s"),
        )
    });
    let ipv6_port = ipv6.port.to_string();
    cases.push(case(
        &["--timeout", "5", "http", &ipv6_port, "/healthz"],
        0,
        format!("http://[::1]:{ipv6_port}/healthz: HTTP 200"),
    ));
    cases.push(case(
        &["tcp", &silent_port],
        0,
        format!("tcp 127.0.0.1:{silent_port}: connected"),
    ));
    cases.push(case(
        &["tcp", &ipv6_port],
        0,
        format!("tcp [::1]:{ipv6_port}: connected"),
    ));
    cases.push(case(
        &["tcp", &closed_text],
        1,
        format!("tcp 127.0.0.1:{closed}: connection refused"),
    ));

    let usage = |args: &[&str], problem: &str| case(args, 2, format!("castoff-probe: {problem}\n"));
    let port_problem = "PORT is a number from 1 to 65535";
    let path_problem =
        "PATH starts with / and holds no space or control character (at most 2048 bytes)";
    let timeout_problem = "--timeout takes a number of seconds from 1 to 86400";
    let long_path = format!("/{}", "a".repeat(2048));
    let usage_cases: &[(&[&str], &str)] = &[
        (&[], "say what to check: http PORT PATH or tcp PORT"),
        (&["udp", "53"], "the check is `http` or `tcp`"),
        (&["http", "8080"], "http takes a PORT and a PATH"),
        (
            &["http", "8080", "/", "extra"],
            "http takes a PORT and a PATH",
        ),
        (&["tcp"], "tcp takes a PORT"),
        (&["tcp", "80", "/"], "tcp takes a PORT"),
        (&["http", "0", "/healthz"], port_problem),
        (&["http", "65536", "/healthz"], port_problem),
        (&["http", "-1", "/healthz"], port_problem),
        (&["http", "+80", "/healthz"], port_problem),
        (&["http", "", "/healthz"], port_problem),
        (&["tcp", "http"], port_problem),
        (&["tcp", "99999999999999999999"], port_problem),
        (&["http", "8080", "healthz"], path_problem),
        (&["http", "8080", ""], path_problem),
        (&["http", "8080", "/a b"], path_problem),
        (&["http", "8080", "/a\r\nX-Injected: 1"], path_problem),
        (&["http", "8080", "/a\n"], path_problem),
        (&["http", "8080", "/a\tb"], path_problem),
        (&["http", "8080", "/a\u{7f}"], path_problem),
        (&["http", "8080", &long_path], path_problem),
        (&["--timeout"], timeout_problem),
        (&["--timeout", "0", "tcp", "80"], timeout_problem),
        (&["--timeout", "86401", "tcp", "80"], timeout_problem),
        (&["--timeout", "1s", "tcp", "80"], timeout_problem),
        (&["tcp", "80", "--timeout", "5"], "tcp takes a PORT"),
    ];
    for (args, problem) in usage_cases {
        cases.push(usage(args, problem));
    }
    Scenario { cases, ok }
}

/// Runs one case; `Err` says how it went wrong.
fn run_case(binary: &Path, case: &Case) -> Result<(), String> {
    let clock = Instant::now();
    let output: Output = Command::new(binary)
        .args(&case.args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
    let took = clock.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let fits = if case.exit == 2 {
        output.stdout.is_empty()
            && stderr.starts_with(&case.line)
            && stderr.contains("usage: castoff-probe [--timeout SECONDS] http PORT PATH\n")
    } else {
        stdout == format!("{}\n", case.line) && output.stderr.is_empty()
    };
    if output.status.code() != Some(case.exit) || !fits || took > case.within {
        return Err(format!(
            "{:?}: expected exit {} and `{}` within {:?}, took {took:?}\n{}",
            case.args,
            case.exit,
            case.line.trim_end(),
            case.within,
            output_text(&output)
        ));
    }
    Ok(())
}

/// Each of the seven builds, through every case: the exit code and the printed line. The
/// server that answers 200 checks the request byte for byte.
#[test]
fn every_build_keeps_the_contract_against_real_servers() {
    let env = TestEnv::get();
    let scenario = scenario();
    let root = repository_root();
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = recipe::BUILDS
            .iter()
            .map(|build| {
                let binary = root.join(recipe::BIN_DIR).join(build.file);
                let cases = &scenario.cases;
                scope.spawn(move || {
                    let mode = std::fs::metadata(&binary)
                        .map(|metadata| metadata.permissions().mode())
                        .unwrap_or(0);
                    if mode & 0o111 == 0 {
                        return vec![format!(
                            "{}: not executable (mode {mode:o}): the committed binaries are 0755",
                            build.file
                        )];
                    }
                    cases
                        .iter()
                        .filter_map(|case| run_case(&binary, case).err())
                        .map(|error| format!("{}: {error}", build.file))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("no panic"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );

    let expected = format!(
        "GET /healthz HTTP/1.0\r\nHost: localhost:{}\r\nUser-Agent: castoff-probe\r\nConnection: close\r\n\r\n",
        scenario.ok.port
    );
    let requests = scenario.ok.requests();
    assert_eq!(
        requests.len(),
        recipe::BUILDS.len(),
        "one request per build"
    );
    for request in &requests {
        assert_eq!(String::from_utf8_lossy(request), expected);
    }
    env.figure(format!(
        "probe: {} builds ({}) each passed {} cases (HTTP 2xx/3xx/4xx/5xx and edges, hostile answers, a 1 s timeout, a 1 MiB flood, [::1] fallback, tcp, bad arguments)",
        recipe::BUILDS.len(),
        recipe::BUILDS
            .iter()
            .map(|build| build.file)
            .collect::<Vec<_>>()
            .join(", "),
        scenario.cases.len()
    ));
}
