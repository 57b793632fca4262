//! A read-only HTTP/1.1 server on 127.0.0.1 for a fixed table of paths, for `castoff verify
//! --dist`: the caller lays dist/ out as a PEP 503 simple index, an npm registry and an OCI
//! distribution registry (pull only) and hands over the table; this module only answers `GET`
//! and `HEAD` for it. One thread per connection, `Connection: close`, a request head of at
//! most [`HEAD_LIMIT`] bytes read within [`READ_TIMEOUT`], nothing ever written to disk.

use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Longest request head read.
pub const HEAD_LIMIT: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What one path answers.
#[derive(Debug, Clone)]
pub struct Route {
    pub content_type: String,
    /// More headers (`Docker-Content-Digest`).
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// A route's body: bytes made for it, or a file sent as it is.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct StaticServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// A listener on a free port of 127.0.0.1: its port goes into the URLs of the routes before
/// [`StaticServer::start`] serves them.
pub fn bind_loopback() -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0))
}

impl StaticServer {
    /// Serves `routes` (keys: paths such as `/simple/greeter/`) on `listener` until dropped.
    pub fn start(
        listener: TcpListener,
        routes: BTreeMap<String, Route>,
    ) -> io::Result<StaticServer> {
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let routes = Arc::clone(&routes);
                thread::spawn(move || {
                    let _ = answer(stream, &routes);
                });
            }
        });
        Ok(StaticServer {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `%2F`, `%40` and the like decoded (npm clients escape the scope's slash); anything that
/// does not decode to UTF-8 is left as it was.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

fn answer(mut stream: TcpStream, routes: &BTreeMap<String, Route>) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
        if head.len() > HEAD_LIMIT {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                None,
                false,
            );
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or(""));
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, "405 Method Not Allowed", None, false);
    }
    match routes.get(&path) {
        Some(route) => respond(&mut stream, "200 OK", Some(route), head_only),
        None => respond(&mut stream, "404 Not Found", None, head_only),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    route: Option<&Route>,
    head_only: bool,
) -> io::Result<()> {
    let body: Vec<u8> = match route.map(|r| &r.body) {
        Some(Body::Bytes(bytes)) => bytes.clone(),
        Some(Body::File(path)) => std::fs::read(path)?,
        None => b"not found\n".to_vec(),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: {}\r\n",
        body.len(),
        route.map_or("text/plain", |r| r.content_type.as_str())
    );
    for (name, value) in route.map(|r| r.headers.as_slice()).unwrap_or_default() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&body)?;
    }
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escaped_scopes_and_leaves_the_rest() {
        assert_eq!(percent_decode("/npm/@acme%2fgreeter"), "/npm/@acme/greeter");
        assert_eq!(
            percent_decode("/npm/%40acme%2Fgreeter"),
            "/npm/@acme/greeter"
        );
        assert_eq!(percent_decode("/a%2"), "/a%2");
        assert_eq!(percent_decode("/a%zz"), "/a%zz");
    }

    #[test]
    fn serves_its_table_and_nothing_else() {
        let listener = bind_loopback().unwrap();
        let mut routes = BTreeMap::new();
        routes.insert(
            "/simple/greeter/".to_owned(),
            Route {
                content_type: "text/html".to_owned(),
                headers: vec![("X-Test".to_owned(), "1".to_owned())],
                body: Body::Bytes(b"<a href=\"x\">x</a>".to_vec()),
            },
        );
        let server = StaticServer::start(listener, routes).unwrap();
        let get = |request: &str| {
            let mut stream = TcpStream::connect(server.host()).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        };
        let found = get("GET /simple/greeter/?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(found.starts_with("HTTP/1.1 200 OK\r\n"), "{found}");
        assert!(found.contains("X-Test: 1\r\n") && found.ends_with("<a href=\"x\">x</a>"));
        let head = get("HEAD /simple/greeter/ HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Length: 17") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(get("GET /etc/passwd HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("PUT /simple/greeter/ HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        drop(server);
    }
}
