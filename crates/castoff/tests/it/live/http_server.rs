//! A directory served over HTTP on a free loopback port (Python's `http.server`), standing in
//! for a release's download URL: `install.sh --base-url` fetches archives from it. Processes
//! in a chroot reach it too (a chroot shares the host's network).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// Serves `dir`; the server is killed on drop.
pub(crate) struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub(crate) url: String,
    /// The server's log lines (one per request), collected until it stops.
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    pub(crate) fn start(dir: &Path) -> HttpServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is required");
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no port in `{line}`"))
            .to_owned();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::clone(&log);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(line);
            }
        });
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            reader: Some(reader),
        }
    }

    /// Stops the server and returns the paths of the GET requests it answered with 200, in
    /// order (its log lines: `127.0.0.1 - - [date] "GET /file HTTP/1.1" 200 -`). Read after
    /// the server ended, so no request a client saw answered is missing.
    pub(crate) fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader does not panic");
        }
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter_map(|line| {
                let mut parts = line.split('"');
                let request = parts.nth(1)?;
                let status = parts.next()?.split_whitespace().next()?;
                let path = request.strip_prefix("GET ")?.split(' ').next()?;
                (status == "200").then(|| path.to_owned())
            })
            .collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
