//! One client command, bounded: its own process group (so a timeout ends the package
//! manager and everything it started), a deadline, and at most [`OUTPUT_LIMIT`] bytes of
//! each stream kept (the rest is read and dropped, so the child never blocks on a full pipe).

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The process groups of the clients running now, and the run's scratch directory: what
/// [`interrupt`] ends and removes when the user presses Ctrl-C (a client in a process group
/// of its own does not get the terminal's SIGINT).
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Set by [`interrupt`] while it holds [`RUNNING`]: a client started after that is ended at
/// once, and the run does not go on to report.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SCRATCH: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);

/// Records the run's scratch directory (`None`: the run removed it).
pub(super) fn set_scratch(dir: Option<std::path::PathBuf>) {
    *SCRATCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = dir;
}

/// Ends every client process group still running and removes the scratch directory; for a
/// signal handler, before the process exits.
pub fn interrupt() {
    let groups: Vec<u32> = {
        let mut running = RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        std::mem::take(&mut *running)
    };
    for group in groups {
        kill_group(group);
    }
    let scratch = SCRATCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Whether [`interrupt`] ran: the clients it ended look like clients that failed, and the
/// caller must not report them so (the handler that called it is about to exit).
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Bytes of stdout and of stderr kept per command.
pub(super) const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a command ended.
#[derive(Debug)]
pub(super) struct Finished {
    /// The exit code; `None` when a signal ended it or the deadline passed.
    pub(super) code: Option<i32>,
    pub(super) timed_out: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Finished {
    pub(super) fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The last non-empty lines of stderr (else stdout), for a reason: what the client said
    /// last is what went wrong.
    pub(super) fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let kept: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.trim().is_empty())
            .collect();
        let start = kept.len().saturating_sub(lines);
        escape_controls(&kept[start..].join("\n"))
    }
}

/// A child's output made safe to show: terminal escape sequences (colors) dropped, other
/// control characters shown as `\u{..}` (newlines kept).
pub(super) fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for next in chars.by_ref() {
                if ('@'..='~').contains(&next) {
                    break;
                }
            }
        } else if c.is_control() && c != '\n' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// How long the output pipes may stay open after the client ended and its group was killed
/// (something it started left the group): then the output read so far is what is shown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

fn read_bounded_into(mut stream: impl std::io::Read, kept: &Mutex<Vec<u8>>) {
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut kept = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
}

/// A stream read on its own thread into a shared, bounded buffer.
struct Reader {
    kept: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Reader {
    fn start(stream: Option<impl std::io::Read + Send + 'static>) -> Reader {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (sender, done) = mpsc::channel();
        if let Some(stream) = stream {
            let shared = Arc::clone(&kept);
            thread::spawn(move || {
                read_bounded_into(stream, &shared);
                let _ = sender.send(());
            });
        }
        Reader { kept, done }
    }

    /// What was read, once the stream closed or `until` passed.
    fn finish(self, until: Instant) -> String {
        let _ = self
            .done
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&kept).into_owned()
    }
}

/// Runs `command` (stdin closed) until it exits or `timeout` passes; then its whole process
/// group is killed. An error only when it cannot be started.
pub(super) fn run(mut command: Command, timeout: Duration) -> std::io::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn()?;
    let group = child.id();
    {
        let mut running = RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            // Started after the handler ended the others: end it too.
            kill_group(group);
        } else {
            running.push(group);
        }
    }
    let stdout = Reader::start(child.stdout.take());
    let stderr = Reader::start(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(child.id());
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(_) => {
                kill_group(child.id());
                break child.wait().ok();
            }
        }
    };
    // What the client started may still hold the pipes: end the group either way.
    kill_group(child.id());
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|running| *running != group);
    let until = Instant::now() + DRAIN_GRACE;
    Ok(Finished {
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: stdout.finish(until),
        stderr: stderr.finish(until),
    })
}

/// `kill -KILL -- -PGID`: ends every process of the group the client leads (npx's node,
/// pip's build steps); nothing when the group is gone. kill is taken from its usual places
/// first: the `PATH` verify searches for clients need not hold it.
fn kill_group(pid: u32) {
    let program = ["/bin/kill", "/usr/bin/kill"]
        .into_iter()
        .find(|path| std::path::Path::new(path).is_file())
        .unwrap_or("kill");
    let _ = Command::new(program)
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Reads `stream` fully but keeps at most [`OUTPUT_LIMIT`] bytes (for tests of the bound).
#[cfg(test)]
fn bounded(text: &[u8]) -> String {
    let kept = Mutex::new(Vec::new());
    read_bounded_into(text, &kept);
    String::from_utf8_lossy(&kept.into_inner().unwrap()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_and_controls_escaped() {
        let big = vec![b'a'; OUTPUT_LIMIT * 3];
        assert_eq!(bounded(&big).len(), OUTPUT_LIMIT);
        assert_eq!(
            escape_controls("a\u{1b}[1;31mb\u{1b}[0m\nc\u{7}"),
            "ab\nc\\u{7}"
        );
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_with_its_children() {
        let mut command = Command::new("sh");
        // The background sleep holds stdout: `run` returns only once the group is gone.
        command.args(["-c", "sleep 600 & echo $!; sleep 600"]);
        let finished = run(command, Duration::from_millis(300)).unwrap();
        assert!(finished.timed_out);
        assert!(!finished.success());
        let grandchild = finished.stdout.trim();
        // Gone, or a zombie waiting for its new parent to reap it. A killed process closes its
        // files (the end of output `run` waits for) a moment before it becomes a zombie: on a
        // busy machine it may still read as running then, so its state is read again until it
        // has changed (a survivor would stay asleep in `sleep 600`, and fail after a minute).
        let state_of = || {
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .to_owned()
        };
        let mut state = state_of();
        for _ in 0..600 {
            if state.is_empty() || state.starts_with('Z') {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            state = state_of();
        }
        assert!(
            state.is_empty() || state.starts_with('Z'),
            "the background process {grandchild} survived: {state}"
        );
    }

    #[test]
    fn a_process_that_leaves_the_group_does_not_hold_the_run() {
        // setsid: a new session, beyond the group kill; it keeps stdout open for ten minutes.
        let mut command = Command::new("sh");
        command.args(["-c", "setsid sleep 600 & echo $!; echo done >&2"]);
        let finished = run(command, Duration::from_secs(60)).unwrap();
        assert_eq!(finished.code, Some(0));
        assert_eq!(finished.stderr, "done\n");
        let escaped = finished.stdout.trim().to_owned();
        let _ = Command::new("/bin/kill").args(["-KILL", &escaped]).status();
        assert!(!escaped.is_empty());
    }

    #[test]
    fn exit_code_and_tail() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo one; echo two >&2; echo three >&2; exit 3"]);
        let finished = run(command, Duration::from_secs(30)).unwrap();
        assert_eq!(finished.code, Some(3));
        assert_eq!(finished.tail(1), "three");
        assert_eq!(finished.stdout, "one\n");
    }
}
