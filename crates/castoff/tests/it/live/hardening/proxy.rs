//! A fault-injecting HTTP proxy for the hardening suites: it forwards each request to one
//! upstream server over a fresh connection (`Connection: close` both ways), and on a
//! deterministic schedule answers instead with a fault: a connection reset, 503, 429 with
//! `Retry-After`, a stall longer than the client's timeout, a truncated response body, a
//! scripted refusal (any status and body) for requests matching a path fragment, or a scripted
//! cut: a request whose body breaks off after some bytes reached the server. It logs every
//! request (and how much of its body went upstream) and counts retries: requests that repeat
//! (same method and path) one that got a fault earlier in the same run. A connection that
//! opens with a TLS handshake is counted and closed, as a plain-http server closes it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Reset,
    Unavailable,
    TooManyRequests,
    Stall,
    Truncate,
}

pub const ALL_FAULTS: [Fault; 5] = [
    Fault::Reset,
    Fault::Unavailable,
    Fault::TooManyRequests,
    Fault::Stall,
    Fault::Truncate,
];

/// A scripted cut: the `nth` (1-based) request whose `METHOD path` contains `matching` goes
/// upstream with only `forward` bytes of its body (none: it does not reach the server), then
/// both connections close without an answer, as when a connection resets mid-upload.
#[derive(Clone, Debug)]
pub struct Cut {
    pub matching: String,
    pub nth: u64,
    pub forward: Option<usize>,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    /// `METHOD /path?query HTTP/1.1`
    pub request_line: String,
    /// Body bytes received from the client.
    pub body: u64,
    /// Body bytes sent on to the server.
    pub forwarded: u64,
    pub faulted: bool,
    /// The `Authorization` header the client sent, if any (credential routing checks which
    /// host received which credential).
    pub authorization: Option<String>,
}

/// A scripted answer for requests whose `METHOD path` contains `matching`.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub matching: String,
    pub status: u16,
    pub reason: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// How many matching requests get it (then they pass).
    pub times: u64,
}

#[derive(Default)]
struct Schedule {
    /// Every `period`-th request (0: none) gets the next fault of `faults`, in turn.
    period: u64,
    faults: Vec<Fault>,
    stall: Duration,
    refusal: Option<Refusal>,
    cut: Option<Cut>,
    /// Requests matching the cut's pattern so far.
    cut_seen: u64,
    /// `METHOD path` of the requests of this run that got a fault and were not repeated yet.
    faulted: Vec<String>,
    log: Vec<Logged>,
    retries: u64,
    /// Added to every forwarded request (after dropping the client's `Authorization`): how
    /// the proxy plays a pre-signed storage URL that needs no credentials from the client.
    upstream_authorization: Option<String>,
    /// When the client sends an `Authorization`, forward this one instead: the client can be
    /// given a credential unique to this proxy's host, which the proxy records and swaps for
    /// the one the server accepts.
    translated_authorization: Option<String>,
    /// Replaced in the answer's headers (`from`, `to`): a registry's token realm moved to
    /// another proxy, so the realm's requests are recorded too.
    answer_rewrite: Option<(String, String)>,
    /// Gates, in the order set ([`Proxy::gate`]).
    gates: Vec<Gate>,
}

/// Holds the first `count` requests whose request line contains every one of `matching`
/// until all `count` have arrived (then they all go on), or until [`GATE_PATIENCE`] passes
/// (then each goes on alone): a client that sends them one at a time leaves it closed.
#[derive(Clone, Debug)]
struct Gate {
    matching: Vec<String>,
    count: u64,
    arrived: u64,
    /// A gated request gave up waiting for the others.
    timed_out: bool,
}

/// How long a gated request waits for the others.
const GATE_PATIENCE: Duration = Duration::from_secs(20);

/// A running proxy; `url()` is its base URL.
pub struct Proxy {
    pub port: u16,
    schedule: Arc<Mutex<Schedule>>,
    requests: Arc<AtomicU64>,
    injected: Arc<Mutex<Vec<Fault>>>,
    refused: Arc<AtomicU64>,
    /// Requests that arrived carrying an `Authorization` header.
    authorized: Arc<AtomicU64>,
    /// Connections that opened with a TLS handshake instead of a request.
    tls_hellos: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            schedule: Arc::default(),
            requests: Arc::default(),
            injected: Arc::default(),
            refused: Arc::default(),
            authorized: Arc::default(),
            tls_hellos: Arc::default(),
            stop: Arc::default(),
        };
        let schedule = proxy.schedule.clone();
        let requests = proxy.requests.clone();
        let injected = proxy.injected.clone();
        let refused = proxy.refused.clone();
        let authorized = proxy.authorized.clone();
        let tls_hellos = proxy.tls_hellos.clone();
        let stop = proxy.stop.clone();
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let counters = Counters {
                    requests: requests.clone(),
                    injected: injected.clone(),
                    refused: refused.clone(),
                    authorized: authorized.clone(),
                    tls_hellos: tls_hellos.clone(),
                };
                let (schedule, upstream) = (schedule.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &schedule, &counters);
                });
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every `period`-th request gets the next of `faults`; `stall` is how long a stall lasts.
    pub fn inject(&self, period: u64, faults: &[Fault], stall: Duration) {
        let mut schedule = self.schedule.lock().unwrap();
        schedule.period = period;
        schedule.faults = faults.to_vec();
        schedule.stall = stall;
    }

    pub fn refuse(&self, refusal: Option<Refusal>) {
        self.schedule.lock().unwrap().refusal = refusal;
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn injected(&self) -> Vec<Fault> {
        self.injected.lock().unwrap().clone()
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn authorized(&self) -> u64 {
        self.authorized.load(Ordering::SeqCst)
    }

    /// Connections that opened with a TLS handshake (answered by closing them).
    pub fn tls_hellos(&self) -> u64 {
        self.tls_hellos.load(Ordering::SeqCst)
    }

    /// Cut the request described by `cut` (see [`Cut`]).
    pub fn cut(&self, cut: Option<Cut>) {
        let mut schedule = self.schedule.lock().unwrap();
        schedule.cut = cut;
        schedule.cut_seen = 0;
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Logged> {
        self.schedule.lock().unwrap().log.clone()
    }

    /// Requests that repeated a faulted request of the same run: retries of queries, uploads
    /// and credential checks alike.
    pub fn retries(&self) -> u64 {
        self.schedule.lock().unwrap().retries
    }

    /// A new castoff run starts: faults of the previous one are not retried by this one.
    pub fn begin_run(&self) {
        self.schedule.lock().unwrap().faulted.clear();
    }

    /// Adds a gate: the first `count` requests whose request line contains all of
    /// `matching` wait for each other (see [`Gate`]); [`Proxy::gate_opened`] tells.
    pub fn gate(&self, matching: &[&str], count: u64) {
        self.schedule.lock().unwrap().gates.push(Gate {
            matching: matching.iter().map(|m| (*m).to_owned()).collect(),
            count,
            arrived: 0,
            timed_out: false,
        });
    }

    /// Whether the `index`th gate saw all its requests in flight at once.
    pub fn gate_opened(&self, index: usize) -> bool {
        let gate = &self.schedule.lock().unwrap().gates[index];
        gate.arrived == gate.count && !gate.timed_out
    }

    /// Forward every request with this `Authorization` instead of the client's.
    pub fn authorize_upstream(&self, value: Option<String>) {
        self.schedule.lock().unwrap().upstream_authorization = value;
    }

    /// Replace `from` with `to` in the headers of every answer passed back.
    pub fn rewrite_answers(&self, from: &str, to: &str) {
        self.schedule.lock().unwrap().answer_rewrite = Some((from.to_owned(), to.to_owned()));
    }

    /// Forward requests that carry an `Authorization` with this one instead (requests without
    /// one go as they are, so the server still challenges them).
    pub fn translate_authorization(&self, value: Option<String>) {
        self.schedule.lock().unwrap().translated_authorization = value;
    }
}

struct Counters {
    requests: Arc<AtomicU64>,
    injected: Arc<Mutex<Vec<Fault>>>,
    refused: Arc<AtomicU64>,
    authorized: Arc<AtomicU64>,
    tls_hellos: Arc<AtomicU64>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The request head (request line + headers, CRLF CRLF included) and its body, read whole
/// (`Content-Length` or chunked, kept as sent).
fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(length) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size =
                usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    }
    Ok(Some((head, body)))
}

fn respond(
    client: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(String, String)],
    body: &str,
) {
    let mut text = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let _ = client.write_all(text.as_bytes());
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    schedule: &Mutex<Schedule>,
    counters: &Counters,
) -> std::io::Result<()> {
    let Counters {
        requests,
        injected,
        refused,
        authorized,
        tls_hellos,
    } = counters;
    let mut reader = BufReader::new(client.try_clone()?);
    // A TLS handshake record (castoff's https probe of a loopback registry written without a
    // scheme): counted, and the connection closed, as a plain-http server does, so the
    // client falls back to http.
    if reader.fill_buf()?.first() == Some(&0x16) {
        tls_hellos.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let Some((head, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    let number = requests.fetch_add(1, Ordering::SeqCst) + 1;
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let authorization = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    });
    if authorization.is_some() {
        authorized.fetch_add(1, Ordering::SeqCst);
    }
    let key = {
        let mut words = request_line.split(' ');
        let method = words.next().unwrap_or_default();
        let path = words.next().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        // A chunk or blob upload retried in a new session has a new session path.
        let path = match path.find("/blobs/uploads/") {
            Some(at) => &path[..at + "/blobs/uploads/".len()],
            None => path,
        };
        format!("{method} {path}")
    };
    let (fault, stall, refusal, upstream_authorization, cut) = {
        let mut schedule = schedule.lock().unwrap();
        if let Some(at) = schedule.faulted.iter().position(|k| *k == key) {
            schedule.faulted.remove(at);
            schedule.retries += 1;
        }
        let cut = match schedule.cut.clone() {
            Some(cut) if request_line.contains(&cut.matching) => {
                schedule.cut_seen += 1;
                (schedule.cut_seen == cut.nth).then_some(cut)
            }
            _ => None,
        };
        let refusal = match &mut schedule.refusal {
            Some(refusal) if refusal.times > 0 && request_line.contains(&refusal.matching) => {
                refusal.times -= 1;
                Some(refusal.clone())
            }
            _ => None,
        };
        let fault = (schedule.period > 0
            && number % schedule.period == 0
            && refusal.is_none()
            && cut.is_none())
        .then(|| {
            let turn = (number / schedule.period - 1) as usize % schedule.faults.len();
            schedule.faults[turn]
        });
        let faulted = fault.is_some() || cut.is_some();
        if faulted {
            schedule.faulted.push(key.clone());
        }
        let forwarded = match (&cut, fault, &refusal) {
            (Some(cut), _, _) => cut.forward.unwrap_or(0).min(body.len()),
            (None, Some(Fault::Truncate) | None, None) => body.len(),
            _ => 0,
        };
        schedule.log.push(Logged {
            request_line: request_line.clone(),
            body: body.len() as u64,
            forwarded: forwarded as u64,
            faulted,
            authorization: authorization.clone(),
        });
        let upstream_authorization = schedule.upstream_authorization.clone().or_else(|| {
            authorization
                .as_ref()
                .and(schedule.translated_authorization.clone())
        });
        (fault, schedule.stall, refusal, upstream_authorization, cut)
    };
    let gate = {
        let mut schedule = schedule.lock().unwrap();
        let found = schedule.gates.iter_mut().enumerate().find(|(_, gate)| {
            gate.arrived < gate.count
                && gate
                    .matching
                    .iter()
                    .all(|m| request_line.contains(m.as_str()))
        });
        found.map(|(index, gate)| {
            gate.arrived += 1;
            index
        })
    };
    if let Some(index) = gate {
        let until = std::time::Instant::now() + GATE_PATIENCE;
        loop {
            {
                let mut schedule = schedule.lock().unwrap();
                let gate = &mut schedule.gates[index];
                if gate.arrived == gate.count {
                    break;
                }
                if std::time::Instant::now() >= until {
                    gate.timed_out = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if let Some(refusal) = refusal {
        refused.fetch_add(1, Ordering::SeqCst);
        respond(
            &mut client,
            refusal.status,
            &refusal.reason,
            &refusal.headers,
            &refusal.body,
        );
        return Ok(());
    }
    if let Some(fault) = fault {
        injected.lock().unwrap().push(fault);
        match fault {
            Fault::Reset => {
                // SO_LINGER 0 would send RST; a plain close without an answer is what a
                // crashed or restarted server looks like to the client.
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Unavailable => {
                respond(&mut client, 503, "Service Unavailable", &[], "try later");
                return Ok(());
            }
            Fault::TooManyRequests => {
                let headers = [("Retry-After".to_owned(), "1".to_owned())];
                respond(&mut client, 429, "Too Many Requests", &headers, "slow down");
                return Ok(());
            }
            Fault::Stall => {
                std::thread::sleep(stall);
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Truncate => {}
        }
    }
    if let Some(cut) = cut {
        if let Some(forward) = cut.forward {
            // Part of the body reaches the server, then the connection breaks.
            let mut server = TcpStream::connect(upstream)?;
            server.write_all(head.as_bytes())?;
            server.write_all(&body[..forward.min(body.len())])?;
            server.flush()?;
            let _ = server.shutdown(Shutdown::Write);
            let mut answer = Vec::new();
            let _ = server.read_to_end(&mut answer);
        }
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    // Forward over a fresh connection; the answer is read whole, then passed back.
    let mut server = TcpStream::connect(upstream)?;
    let mut forwarded = String::new();
    for line in head.split_inclusive('\n') {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:")
            || lower.starts_with("keep-alive:")
            || (upstream_authorization.is_some() && lower.starts_with("authorization:"))
        {
            continue;
        }
        if line == "\r\n" {
            forwarded.push_str("Connection: close\r\n");
            if let Some(value) = &upstream_authorization {
                forwarded.push_str(&format!("Authorization: {value}\r\n"));
            }
        }
        forwarded.push_str(line);
    }
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    let (answer_head, answer_body) = answer.split_at(split);
    let rewrite = schedule.lock().unwrap().answer_rewrite.clone();
    let mut answer_head = String::from_utf8_lossy(answer_head).into_owned();
    if let Some((from, to)) = rewrite {
        answer_head = answer_head.replace(&from, &to);
    }
    let mut head_text = String::new();
    for line in answer_head.split_inclusive('\n') {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        if line == "\r\n" {
            head_text.push_str("Connection: close\r\n");
        }
        head_text.push_str(line);
    }
    client.write_all(head_text.as_bytes())?;
    if fault == Some(Fault::Truncate) && answer_body.len() > 1 {
        client.write_all(&answer_body[..answer_body.len() / 2])?;
    } else {
        client.write_all(answer_body)?;
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
