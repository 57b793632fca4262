//! Server processes: free ports, spawning with PID and log files, readiness (the PID owns the
//! listening socket and the URL answers), stopping by PID, and killing leftovers of a run that
//! was interrupted before it could clean up.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// PIDs (= process group ids) and PID files of every server started and not yet stopped, so
/// the Ctrl-C / SIGTERM handler can stop them without access to the `Child` handles.
static RUNNING: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

const POLL: Duration = Duration::from_millis(50);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Free loopback ports, one per server. All are held open until every one is picked, so the
/// same port is never handed out twice; they are released right before the servers start.
/// Another process may still grab one in between: the readiness check catches that (the
/// server's own PID must own the socket), which is why a URL probe alone is not enough.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to pick a free port")
        })
        .collect::<Result<_>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// How a server shows it is serving: an HTTP probe returning `true` once any status comes back.
pub(crate) type Probe = Box<dyn Fn() -> bool + Send>;

/// One started server process, stopped on drop.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) port: u16,
    child: Child,
    probe: Probe,
    log: PathBuf,
    pid_file: PathBuf,
    stopped: bool,
}

impl Server {
    /// Starts `command` in its own process group (so Ctrl-C in the terminal does not hit it and
    /// stopping the group also stops any children it forks), stdin from /dev/null, stdout and
    /// stderr to `STATE/<name>.log`, PID to `STATE/<name>.pid`.
    pub(crate) fn spawn(
        state: &Path,
        name: &'static str,
        port: u16,
        mut command: Command,
        probe: Probe,
    ) -> Result<Server> {
        let log = state.join(format!("{name}.log"));
        let out = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {:?}", command.get_program()))?;
        let pid_file = state.join(format!("{name}.pid"));
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((child.id(), pid_file.clone()));
        let server = Server {
            name,
            port,
            child,
            probe,
            log,
            pid_file,
            stopped: false,
        };
        fs::write(&server.pid_file, format!("{}\n", server.child.id()))
            .with_context(|| format!("writing {}", server.pid_file.display()))?;
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One readiness check: `Err` when the process died (no point in waiting longer).
    fn check_ready(&mut self) -> Result<bool> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited during startup ({status})\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
        // Port 0: a server on a unix socket (dockerd), whose probe alone says it is ready.
        Ok((self.port == 0 || owns_listening_socket(self.pid(), self.port)) && (self.probe)())
    }

    /// SIGTERM to the process group, up to 5 s to exit, then SIGKILL. Idempotent.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.pid();
        if self.child.try_wait().ok().flatten().is_none() {
            signal_group(pid, "TERM");
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                thread::sleep(POLL);
            }
            if self.child.try_wait().ok().flatten().is_none() {
                eprintln!(
                    "    {} (pid {pid}) ignored SIGTERM for 5 s: SIGKILL",
                    self.name
                );
                signal_group(pid, "KILL");
                let _ = self.child.wait();
            }
        }
        // Children the server forked (same process group) must not outlive it either.
        signal_group(pid, "KILL");
        let _ = fs::remove_file(&self.pid_file);
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _)| *p != pid);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until every server is ready (polling every 50 ms, 60 s in all), or fails naming the
/// first one that died or did not come up, with the tail of its log.
pub(crate) fn wait_ready(servers: &mut [&mut Server]) -> Result<()> {
    wait_ready_reporting(servers, true)
}

/// [`wait_ready`] without the "ready on" lines (for the benchmarks, whose output is tables).
pub(crate) fn wait_ready_quietly(servers: &mut [&mut Server]) -> Result<()> {
    wait_ready_reporting(servers, false)
}

fn wait_ready_reporting(servers: &mut [&mut Server], report: bool) -> Result<()> {
    let started = Instant::now();
    let mut pending: Vec<usize> = (0..servers.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for index in pending {
            let server = &mut servers[index];
            if !server.check_ready()? {
                still.push(index);
            } else if report {
                println!(
                    "    {:<16} ready on 127.0.0.1:{} (pid {}, {:.2} s)",
                    server.name,
                    server.port,
                    server.pid(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            let server = &servers[pending[0]];
            bail!(
                "{} (pid {}) did not serve on 127.0.0.1:{} within {} s\n{}",
                server.name,
                server.pid(),
                server.port,
                READY_TIMEOUT.as_secs(),
                log_tail(&server.log)
            );
        }
        thread::sleep(POLL);
    }
    Ok(())
}

/// Runs a short-lived setup command (devpi-init, openssl, …) to completion, its output
/// appended to `log`; fails with the log tail.
pub(crate) fn run_logged(mut command: Command, log: &Path) -> Result<()> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} failed ({status})\n{}", log_tail(log));
    }
    Ok(())
}

/// The last lines of a log file, indented, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    const TAIL_BYTES: u64 = 4000;
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(log) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(25)..];
    let mut out = format!("    --- last lines of {} ---", log.display());
    for line in tail {
        out.push_str("\n    | ");
        out.push_str(line);
    }
    out
}

/// Sends SIGTERM/SIGKILL to a whole process group through `kill(1)`: the workspace forbids
/// `unsafe`, and a signal per server is not worth a libc binding.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".to_owned(), format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it is dead for our purposes.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Stops by PID only, without a `Child` handle: for the signal handler and leftovers.
fn stop_pid(pid: u32) {
    signal_group(pid, "TERM");
    let deadline = Instant::now() + STOP_GRACE;
    while alive(pid) && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    signal_group(pid, "KILL");
}

/// PID of the cargo command (fmt, clippy, test) running in the foreground, 0 when none.
static FOREGROUND: Mutex<u32> = Mutex::new(0);

/// Runs a foreground command (cargo) to completion, remembering its PID so a SIGTERM to the
/// harness also ends it instead of leaving `cargo test` running against stopped servers.
pub(crate) fn run_foreground(mut command: Command) -> std::io::Result<std::process::ExitStatus> {
    let mut child = command.spawn()?;
    *FOREGROUND.lock().unwrap_or_else(|e| e.into_inner()) = child.id();
    let status = child.wait();
    *FOREGROUND.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    status
}

/// Called from the Ctrl-C / SIGTERM handler: ends the foreground cargo command and stops
/// every running server by PID.
pub(crate) fn stop_all_running() {
    let foreground = *FOREGROUND.lock().unwrap_or_else(|e| e.into_inner());
    if foreground != 0 {
        // Its own children (test binaries) share our process group; on Ctrl-C in a terminal
        // they got SIGINT already.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &foreground.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let running: Vec<(u32, PathBuf)> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    let handles: Vec<_> = running
        .into_iter()
        .map(|(pid, pid_file)| {
            thread::spawn(move || {
                stop_pid(pid);
                let _ = fs::remove_file(pid_file);
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

/// Kills servers left running by an earlier run that was killed before it could stop them:
/// every `STATE/*.pid` whose process still runs and mentions the state directory (every server
/// gets a config or data path inside it) or a server binary on its command line. A PID that
/// was reused by an unrelated process is left alone.
pub(crate) fn kill_leftovers(state: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(state) else {
        return Ok(());
    };
    let state_text = state.to_string_lossy().into_owned();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "pid") {
            continue;
        }
        let Some(pid) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
            .unwrap_or_default();
        let ours = cmdline.contains(&state_text)
            || [
                "docker-registry",
                "pypi-server",
                "devpi-server",
                "verdaccio",
                "token_server.py",
            ]
            .iter()
            .any(|binary| cmdline.contains(binary));
        if alive(pid) && ours {
            println!(
                "    stopping leftover {} (pid {pid}) from an interrupted run",
                path.display()
            );
            stop_pid(pid);
        }
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// True when a process in `pid`'s process group (the server or a child it forked) holds the
/// socket listening on 127.0.0.1:`port`: /proc/net/tcp{,6} gives the socket inode, the
/// processes' /proc/<pid>/fd links name it as `socket:[inode]`.
fn owns_listening_socket(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    group_members(pid).into_iter().any(|member| {
        fs::read_dir(format!("/proc/{member}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|target| {
                    let target = target.to_string_lossy();
                    inodes
                        .iter()
                        .any(|inode| target == format!("socket:[{inode}]"))
                })
            })
        })
    })
}

fn listening_inodes(port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != LISTEN {
                continue;
            }
            let local_port = fields[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(fields[9].to_owned());
            }
        }
    }
    inodes
}

fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = vec![pgid];
    let Ok(entries) = fs::read_dir("/proc") else {
        return members;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and ')'.
        let in_group = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .is_some_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| {
                        rest.split_whitespace()
                            .nth(2)
                            .map(|g| g == pgid.to_string())
                    })
                    .unwrap_or(false)
            });
        if in_group && pid != pgid {
            members.push(pid);
        }
    }
    members
}

/// A probe that GETs `url` and is satisfied by any HTTP status (401 from an auth-protected
/// registry means it is serving).
pub(crate) fn http_probe(client: reqwest::blocking::Client, url: String) -> Probe {
    Box::new(move || client.get(&url).send().is_ok())
}

pub(crate) fn probe_client(ca_pem: Option<&[u8]>) -> Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let ca =
            reqwest::Certificate::from_pem(pem).map_err(|e| anyhow!("reading the test CA: {e}"))?;
        builder = builder
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false);
    }
    builder
        .build()
        .context("building the HTTP client for probes")
}

/// Marks a directory as used by this harness run (`harness.pid` holding our PID), so a second
/// `cargo xtask test` on the same target directory stops with a message instead of killing the
/// first one's servers as "leftovers" or running `npm ci` over its tools. A PID file whose
/// process is gone (a run killed with SIGKILL) is stale and taken over.
#[derive(Debug)]
pub(crate) struct RunLock {
    path: PathBuf,
}

impl RunLock {
    pub(crate) fn acquire(dir: &Path) -> Result<RunLock> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("harness.pid");
        let own = std::process::id();
        if let Some(other) = fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            let cmdline = fs::read(format!("/proc/{other}/cmdline"))
                .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                .unwrap_or_default();
            if other != own && alive(other) && cmdline.contains("xtask") {
                bail!(
                    "another `cargo xtask test` (pid {other}: {}) is using {}; wait for it to \
                     finish, stop it, or run with a different CARGO_TARGET_DIR",
                    cmdline.trim(),
                    dir.display()
                );
            }
        }
        fs::write(&path, format!("{own}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(RunLock { path })
    }

    /// Removes the mark; also called from the signal handler, where `Drop` does not run.
    pub(crate) fn release_path(path: &Path) {
        let ours = fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = fs::remove_file(path);
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        RunLock::release_path(&self.path);
    }
}
