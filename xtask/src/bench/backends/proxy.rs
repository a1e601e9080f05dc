//! A counting TCP proxy: it listens on a free port of 127.0.0.1, forwards
//! every connection to one upstream address, and counts the bytes that
//! pass each way. Both tools reach a server only through its proxy, so the
//! figures are measured the same way for both: TCP payload bytes (HTTP
//! headers and bodies, or the SSH stream, with its framing and MACs),
//! without TCP/IP headers.
//!
//! - `sent`: client → server (uploads, requests); `recv`: server → client
//!   (downloads, answers).
//! - Each connection gets two threads, one per direction, each copying
//!   through a 64 KiB buffer; bytes are counted once written onward. An
//!   end-of-file is passed on as a half-close (`shutdown(Write)`); an error
//!   on either side closes both sockets.
//! - [`Proxy::wait_idle`] waits until every connection has closed, so that
//!   a reading taken after a tool has exited holds all of its bytes.
//! - Dropping the proxy stops accepting and shuts every open connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Bytes counted so far, each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub recv: u64,
}

impl Traffic {
    /// What passed between `earlier` and `self`.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            sent: self.sent - earlier.sent,
            recv: self.recv - earlier.recv,
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    sent: AtomicU64,
    recv: AtomicU64,
    /// Connections with at least one direction still open.
    active: AtomicUsize,
    stop: AtomicBool,
    /// A clone of each open client and upstream socket, to shut on drop.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy's port")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            sent: AtomicU64::new(0),
            recv: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bytes counted since the proxy started.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            sent: self.shared.sent.load(Ordering::SeqCst),
            recv: self.shared.recv.load(Ordering::SeqCst),
        }
    }

    /// Waits until no connection is open; false if some still are after
    /// `timeout`.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.shared.active.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees `stop` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for (client, upstream) in self.shared.open.lock().unwrap().values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        // A server that refuses: the client sees its connection closed.
        let Ok(upstream) = TcpStream::connect(shared.upstream) else {
            continue;
        };
        if let Err(e) = start_pumps(&shared, next_id, client, upstream) {
            eprintln!("[proxy] cannot forward a connection: {e}");
        }
        next_id += 1;
    }
}

fn start_pumps(
    shared: &Arc<Shared>,
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
) -> Result<()> {
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    shared
        .open
        .lock()
        .unwrap()
        .insert(id, (client.try_clone()?, upstream.try_clone()?));
    shared.active.fetch_add(1, Ordering::SeqCst);
    // The second pump to finish closes the connection's books.
    let halves = Arc::new(AtomicUsize::new(2));
    let pairs = [
        (client.try_clone()?, upstream.try_clone()?, true),
        (upstream, client, false),
    ];
    let total = pairs.len();
    for (i, (from, to, upward)) in pairs.into_iter().enumerate() {
        let (books, left) = (shared.clone(), halves.clone());
        let spawned = thread::Builder::new()
            .name(format!("proxy-conn-{id}"))
            .spawn(move || {
                let counter = if upward { &books.sent } else { &books.recv };
                pump(from, to, counter);
                half_done(&books, &left, id);
            });
        if let Err(e) = spawned {
            // The halves that will never run are done now (which keeps
            // `wait_idle` honest); a running one ends with the sockets.
            if let Some((a, b)) = shared.open.lock().unwrap().get(&id) {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
            for _ in i..total {
                half_done(shared, &halves, id);
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// One direction of connection `id` has ended; the second closes it.
fn half_done(shared: &Shared, halves: &AtomicUsize, id: u64) {
    if halves.fetch_sub(1, Ordering::SeqCst) == 1 {
        shared.open.lock().unwrap().remove(&id);
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until end-of-file or an error, counting.
fn pump(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server that answers each connection with twice what it got.
    fn doubling_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    conn.read_to_end(&mut got).unwrap();
                    conn.write_all(&got).unwrap();
                    conn.write_all(&got).unwrap();
                });
            }
        });
        addr
    }

    #[test]
    fn counts_both_directions_and_waits_for_every_connection_to_close() {
        let proxy = Proxy::start(doubling_server()).unwrap();
        let before = proxy.traffic();
        let clients: Vec<_> = [1000usize, 300_000, 5]
            .into_iter()
            .map(|n| {
                let port = proxy.port();
                thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.write_all(&vec![7u8; n]).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).unwrap();
                    assert_eq!(back.len(), 2 * n);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert!(proxy.wait_idle(Duration::from_secs(10)));
        let t = proxy.traffic().since(before);
        assert_eq!(t.sent, 301_005);
        assert_eq!(t.recv, 602_010);
    }

    #[test]
    fn a_refused_upstream_closes_the_client_and_counts_nothing() {
        // A port that nothing listens on (bound, then released).
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = Proxy::start(dead).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let _ = s.write_all(b"hello");
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        assert!(back.is_empty());
        assert!(proxy.wait_idle(Duration::from_secs(5)));
        assert_eq!(proxy.traffic(), Traffic::default());
    }
}
