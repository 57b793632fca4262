//! A TCP-level shaping proxy for `cargo xtask bench --network`: one listener per upstream
//! server, bytes forwarded both ways unchanged on connections exactly as the client opens them
//! (so connection reuse, pipelining and HTTP/2 pass through and are paid for as on a real
//! link), with
//!
//! - a one-way delay: every chunk is released to the other side `delay` after it was sent;
//! - the handshake: a new connection carries nothing before one round trip (`2 × delay`) after
//!   the client connected, as TCP's SYN / SYN-ACK would cost;
//! - a bandwidth cap per direction, shared by all connections of all listeners (one uplink,
//!   one downlink): a FIFO link that serializes each chunk at `bits_per_second` before its
//!   delay starts.
//!
//! It counts connections, bytes each way and *turns*: on one connection, each time the server
//! starts answering after the client sent (a request → response round trip the client waited
//! for, whether or not it pipelined).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// What a client did through the proxy since the last [`Shaper::take_counts`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    pub(super) connections: u64,
    pub(super) turns: u64,
    pub(super) bytes_up: u64,
    pub(super) bytes_down: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    turns: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// One direction of the link: when it is free to serialize the next chunk.
struct Wire {
    free_at: Mutex<Instant>,
}

struct Link {
    delay: Duration,
    bytes_per_second: f64,
    up: Wire,
    down: Wire,
    counters: Counters,
}

impl Link {
    /// When a chunk of `bytes` that may leave at `ready` arrives at the far side.
    fn schedule(&self, wire: &Wire, ready: Instant, bytes: usize) -> Instant {
        let mut free_at = wire
            .free_at
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let start = ready.max(*free_at);
        let finish = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        *free_at = finish;
        finish + self.delay
    }
}

pub(super) struct Shaper {
    link: Arc<Link>,
    addresses: Vec<SocketAddr>,
}

impl Shaper {
    /// Listens on `127.0.0.1:0` once per upstream `host:port`; the listeners live as long as
    /// the process.
    pub(super) fn start(
        upstreams: &[String],
        delay: Duration,
        bits_per_second: f64,
    ) -> Result<Shaper> {
        let now = Instant::now();
        let link = Arc::new(Link {
            delay,
            bytes_per_second: bits_per_second / 8.0,
            up: Wire {
                free_at: Mutex::new(now),
            },
            down: Wire {
                free_at: Mutex::new(now),
            },
            counters: Counters::default(),
        });
        let mut addresses = Vec::new();
        for upstream in upstreams {
            let listener = TcpListener::bind("127.0.0.1:0").context("binding the shaping proxy")?;
            addresses.push(listener.local_addr()?);
            let link = Arc::clone(&link);
            let upstream = upstream.clone();
            thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let link = Arc::clone(&link);
                    let upstream = upstream.clone();
                    thread::spawn(move || connection(&link, client, &upstream));
                }
            });
        }
        Ok(Shaper { link, addresses })
    }

    /// `host:port` of the listener in front of the `index`th upstream.
    pub(super) fn address(&self, index: usize) -> String {
        self.addresses[index].to_string()
    }

    /// The counts since the last call, and zero them.
    pub(super) fn take_counts(&self) -> Counts {
        let counters = &self.link.counters;
        Counts {
            connections: counters.connections.swap(0, Ordering::SeqCst),
            turns: counters.turns.swap(0, Ordering::SeqCst),
            bytes_up: counters.bytes_up.swap(0, Ordering::SeqCst),
            bytes_down: counters.bytes_down.swap(0, Ordering::SeqCst),
        }
    }
}

const UP: u8 = 1;
const DOWN: u8 = 2;

fn connection(link: &Arc<Link>, client: TcpStream, upstream: &str) {
    let accepted = Instant::now();
    link.counters.connections.fetch_add(1, Ordering::SeqCst);
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let last = Arc::new(AtomicU8::new(0));
    let pipes = [
        (client.try_clone(), server.try_clone(), UP),
        (server.try_clone(), client.try_clone(), DOWN),
    ];
    let mut threads = Vec::new();
    for (from, to, direction) in pipes {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let link = Arc::clone(link);
        let last = Arc::clone(&last);
        // The client's first bytes leave once the handshake's round trip is over.
        let ready_from = if direction == UP {
            accepted + 2 * link.delay
        } else {
            accepted
        };
        threads.push(thread::spawn(move || {
            pipe(&link, from, to, direction, &last, ready_from)
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
}

/// Reads `from`, schedules every chunk on its wire, and hands it to a writer thread that
/// releases it to `to` on time. Bounded: at most 64 chunks of 64 KiB in flight per direction.
fn pipe(
    link: &Arc<Link>,
    mut from: TcpStream,
    to: TcpStream,
    direction: u8,
    last: &AtomicU8,
    ready_from: Instant,
) {
    let (sender, receiver) = sync_channel::<(Instant, Option<Vec<u8>>)>(64);
    let writer = thread::spawn(move || {
        let mut to = to;
        for (release, chunk) in receiver {
            let now = Instant::now();
            if release > now {
                thread::sleep(release - now);
            }
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).is_err() {
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    });
    let (wire, bytes_counter) = if direction == UP {
        (&link.up, &link.counters.bytes_up)
    } else {
        (&link.down, &link.counters.bytes_down)
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let send = |sender: &SyncSender<_>, release, chunk| sender.send((release, chunk)).is_ok();
    let mut previous_release = Instant::now();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => 0,
            Ok(read) => read,
        };
        if read == 0 {
            // The end (or a reset) travels like data: after everything sent before it.
            let release = previous_release.max(Instant::now() + link.delay);
            let _ = send(&sender, release, None);
            break;
        }
        bytes_counter.fetch_add(read as u64, Ordering::SeqCst);
        if last.swap(direction, Ordering::SeqCst) == UP && direction == DOWN {
            link.counters.turns.fetch_add(1, Ordering::SeqCst);
        }
        let ready = Instant::now().max(ready_from);
        let release = link.schedule(wire, ready, read).max(previous_release);
        previous_release = release;
        if !send(&sender, release, Some(buffer[..read].to_vec())) {
            break;
        }
    }
    drop(sender);
    let _ = writer.join();
}
