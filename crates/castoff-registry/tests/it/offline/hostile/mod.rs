//! Hostile servers: answers no real registry gives, but a compromised or broken one (or a
//! man in the middle on plain http) can. Each case has an expected outcome — a named error, or
//! success where the protocol allows it — reached without a panic, without a hang (a watchdog
//! fails the case after `HANG`), and with memory bounded by the clients' read limits. The
//! figures (cases, outcomes, time and peak RSS per case) go to `==> figures`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use castoff_registry::npm::{NpmClient, NpmCredentials, NpmRegistry};
use castoff_registry::oci::{Descriptor, Digest, OciClient, OciCredentials, OciRepository};
use castoff_registry::{HttpClient, HttpConfig, RetryPolicy, Secret};
use castoff_test_support::figure;

/// A case that has not ended after this long is a hang: the test fails naming it. (A
/// watchdog, not a performance bound: every case ends within a few seconds.)
const HANG: Duration = Duration::from_secs(120);

/// Request timeout of the clients under test (what `CASTOFF_HTTP_TIMEOUT_SECS=2` gives).
const TIMEOUT: Duration = Duration::from_secs(2);

fn client() -> HttpClient {
    HttpClient::new(HttpConfig {
        request_timeout: TIMEOUT,
        connect_timeout: TIMEOUT,
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        ..HttpConfig::default()
    })
    .unwrap()
}

/// The request line's target and the headers of one request (its body is read and dropped).
struct Asked {
    target: String,
}

/// A server on 127.0.0.1 that hands every connection (after reading the request) to
/// `behave`, on a thread of its own, so a dripping answer does not block the next request.
fn serve(behave: impl Fn(&Asked, &mut TcpStream) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let behave = std::sync::Arc::new(behave);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let behave = behave.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut length = 0u64;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let _ = std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink());
                behave(&Asked { target }, &mut stream);
            });
        }
    });
    url
}

/// Writes `head` (status line and headers, without the blank line) and `body`.
fn answer(stream: &mut TcpStream, head: &str, body: &[u8]) {
    let _ = stream.write_all(format!("{head}\r\n\r\n").as_bytes());
    let _ = stream.write_all(body);
}

/// A registry that answers its first request with `head` (no body), then `whoami` as `ci`.
fn refuse_once_then_answer(head: &'static str) -> String {
    let count = std::sync::atomic::AtomicUsize::new(0);
    serve(move |_, stream| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            answer(stream, head, b"");
        } else {
            let body = br#"{"username":"ci"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}",
                body.len()
            );
            answer(stream, &head, body);
        }
    })
}

fn npm(url: &str) -> NpmClient {
    let registry =
        NpmRegistry::new(url, NpmCredentials::Token(Secret::new("hostile-npm-token"))).unwrap();
    NpmClient::new(&client(), registry).unwrap()
}

fn oci(url: &str, credentials: OciCredentials) -> OciClient {
    // Written with its scheme: these servers speak plain http only (no https probe).
    let repository = OciRepository::parse(&format!("{url}/hostile/app")).unwrap();
    OciClient::new(&client(), repository, credentials, Default::default()).unwrap()
}

/// Peak resident memory of this test process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `call` on a thread under the hang watchdog; returns its outcome as text and the time
/// it took. A panic inside `call` fails the test (it is what these cases must never do).
fn run_case(name: &str, call: impl FnOnce() -> String + Send + 'static) -> (String, Duration) {
    let (sender, receiver) = mpsc::channel();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        let _ = sender.send(call());
    });
    match receiver.recv_timeout(HANG) {
        Ok(outcome) => {
            let _ = handle.join();
            (outcome, started.elapsed())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: hung for {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = handle
                .join()
                .expect_err("the case thread ended without an outcome");
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{name}: panicked: {message}")
        }
    }
}

fn outcome<T: std::fmt::Debug>(result: Result<T, castoff_registry::RegistryError>) -> String {
    match result {
        Ok(value) => format!("ok: {value:?}"),
        Err(error) => format!(
            "error: {}",
            castoff_test_support::with_hint(&error, error.hint())
        ),
    }
}

/// Every hostile case, with what castoff must make of it. Outcomes have the servers' ports
/// replaced by `PORT`.
#[test]
fn hostile_servers_end_in_named_errors_without_panics_or_hangs() {
    type Case = (&'static str, Box<dyn FnOnce() -> String + Send>);
    let cases: Vec<Case> = vec![
        (
            "slow drip (headers, then a byte every 300 ms)",
            Box::new(|| {
                let url = serve(|_, stream| {
                    answer(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000",
                        b"",
                    );
                    for _ in 0..100_000 {
                        if stream.write_all(b" ").is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(300));
                    }
                });
                outcome(npm(&url).whoami())
            }),
        ),
        (
            "slow drip of a base-image blob",
            Box::new(|| {
                let url = serve(|_, stream| {
                    answer(stream, "HTTP/1.1 200 OK\r\nContent-Length: 64", b"");
                    for _ in 0..64 {
                        if stream.write_all(b"x").is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(300));
                    }
                });
                let blob = Descriptor::new(
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    format!("sha256:{}", "ab".repeat(32))
                        .parse::<Digest>()
                        .unwrap(),
                    64,
                );
                let scratch = std::env::temp_dir()
                    .join(format!("castoff-hostile-blob-{}", std::process::id()));
                let result =
                    oci(&url, OciCredentials::Anonymous).pull_blob(&blob, &scratch.join("blob"));
                let _ = std::fs::remove_dir_all(&scratch);
                outcome(result)
            }),
        ),
        (
            "endless body",
            Box::new(|| {
                let url = serve(|_, stream| {
                    answer(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
                        b"",
                    );
                    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
                    // Endless as far as the client can tell: 16 GiB unless it stops reading.
                    for _ in 0..(256 * 1024) {
                        if stream.write_all(chunk.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
                outcome(npm(&url).whoami())
            }),
        ),
        (
            "10 GB Content-Length, then the connection closes",
            Box::new(|| {
                let url = serve(|_, stream| {
                    answer(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10737418240",
                        b"{\"username\":",
                    );
                });
                outcome(npm(&url).whoami())
            }),
        ),
        (
            "token answer with expires_in 18446744073709551615",
            Box::new(|| {
                let url = serve(|asked, stream| {
                    if asked.target.starts_with("/token") {
                        answer(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json",
                            br#"{"token":"hostile-bearer","expires_in":18446744073709551615}"#,
                        );
                    } else {
                        answer(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0", b"");
                    }
                });
                let realm = format!("{url}/token");
                let registry = serve(move |_, stream| {
                    answer(
                        stream,
                        &format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"hostile\"\r\nContent-Length: 0"
                        ),
                        b"",
                    );
                });
                // The registry keeps answering 401 with the challenge, so the client fetches
                // the absurd token and stores its expiry: that addition overflowed before.
                let client = oci(
                    &registry,
                    OciCredentials::Basic {
                        username: "ci".into(),
                        password: Secret::new("hostile-password"),
                    },
                );
                outcome(client.resolve("1.0.0"))
            }),
        ),
        (
            "far-future Retry-After date, then success",
            Box::new(|| {
                outcome(npm(&refuse_once_then_answer("HTTP/1.1 503 Service Unavailable\r\nRetry-After: Sun, 06 Nov 999999999999999 08:49:37 GMT\r\nContent-Length: 0")).whoami())
            }),
        ),
        (
            "Retry-After of u64::MAX seconds, then success",
            Box::new(|| {
                outcome(npm(&refuse_once_then_answer("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 18446744073709551615\r\nContent-Length: 0")).whoami())
            }),
        ),
        (
            "escape sequences in an error body",
            Box::new(|| {
                let url = serve(|_, stream| {
                    let body = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mtoken rejected\u{1b}[0m\r\u{202e}txt.exe";
                    answer(
                        stream,
                        &format!(
                            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}",
                            body.len()
                        ),
                        body.as_bytes(),
                    );
                });
                outcome(npm(&url).whoami())
            }),
        ),
        (
            "redirect loop",
            Box::new(|| {
                let url = serve(|_, stream| {
                    answer(
                        stream,
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: /-/whoami\r\nContent-Length: 0",
                        b"",
                    );
                });
                outcome(npm(&url).whoami())
            }),
        ),
    ];
    let count = cases.len();
    let mut outcomes = String::new();
    let mut slowest = Duration::ZERO;
    for (name, call) in cases {
        let (text, took) = run_case(name, call);
        slowest = slowest.max(took);
        let text = mask_ports(&text);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
            "{name}: control characters reached the error text: {text:?}"
        );
        assert!(
            !text.contains("hostile-npm-token")
                && !text.contains("hostile-password")
                && !text.contains("hostile-bearer"),
            "{name}: a secret reached the error text: {text}"
        );
        figure(format!(
            "hostile server: {name}: {} in {:.1} s, peak RSS {} MiB",
            text.split(':').next().unwrap_or(""),
            took.as_secs_f64(),
            peak_rss_kib() / 1024
        ));
        outcomes.push_str(&format!("## {name}\n{text}\n"));
    }
    expect_test::expect_file!["hostile.outcomes"].assert_eq(&outcomes);
    figure(format!(
        "hostile servers: {count} cases, none panicked or hung, slowest {:.1} s, peak RSS {} MiB",
        slowest.as_secs_f64(),
        peak_rss_kib() / 1024
    ));
}

/// `127.0.0.1:<port>` → `127.0.0.1:PORT`.
fn mask_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(index) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..index + "127.0.0.1:".len()]);
        rest = &rest[index + "127.0.0.1:".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PORT");
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}
