//! Limits on what one client can take of the server: connections per
//! address, uploads per user, failed password checks per address, and the
//! small pool of threads that checks passwords.
//!
//! Addresses are counted as the client's IPv4 address or IPv6 /64 prefix
//! (one host usually holds a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The key one client is counted under.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Open connections per address.
pub struct Connections {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted; uncounted when dropped.
pub struct ConnectionGuard {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Connections {
    pub fn new(limit: usize) -> Connections {
        Connections {
            limit,
            open: Arc::default(),
        }
    }

    /// Count a new connection from `ip`, or `None` when it has its limit.
    pub fn enter(&self, ip: IpAddr) -> Option<ConnectionGuard> {
        let key = addr_key(ip);
        let mut open = self.open.lock().unwrap();
        let n = open.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard {
            key,
            open: self.open.clone(),
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Turn a connection away without serving it: a 429 if the socket takes
/// it at once, then close.
pub fn refuse(stream: tokio::net::TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 34\r\nConnection: close\r\n\r\ntoo many connections from address\n";
    let _ = stream.try_write(ANSWER);
    if let Ok(s) = stream.into_std() {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
}

/// A limit of concurrent things per key (a user, or an address).
pub struct PerKey {
    limit: usize,
    map: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl PerKey {
    pub fn new(limit: usize) -> PerKey {
        PerKey {
            limit,
            map: Mutex::default(),
        }
    }

    /// Wait up to `timeout` for one of `key`'s slots.
    pub async fn acquire(&self, key: &str, timeout: Duration) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut map = self.map.lock().unwrap();
            if map.len() > 4096 {
                // Forget keys with nothing in progress.
                map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.limit);
            }
            map.entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
                .clone()
        };
        tokio::time::timeout(timeout, sem.acquire_owned())
            .await
            .ok()
            .map(|p| p.expect("never closed"))
    }
}

/// Failed password checks per address, in windows of a minute.
pub struct Failures {
    limit: u32,
    map: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);

impl Failures {
    pub fn new(limit: u32) -> Failures {
        Failures {
            limit,
            map: Mutex::default(),
        }
    }

    /// Has `ip` used up its failures for now?
    pub fn limited(&self, ip: IpAddr) -> bool {
        let mut map = self.map.lock().unwrap();
        match map.get(&addr_key(ip)) {
            Some((_, since)) if since.elapsed() >= FAILURE_WINDOW => {
                map.remove(&addr_key(ip));
                false
            }
            Some((n, _)) => *n >= self.limit,
            None => false,
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap();
        if map.len() > 65536 {
            map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let e = map.entry(addr_key(ip)).or_insert((0, Instant::now()));
        if e.1.elapsed() >= FAILURE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 = e.0.saturating_add(1);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A few threads of their own for password checks, with a bounded queue:
/// a flood of checks waits here, not on the threads that do file I/O.
pub struct Pool {
    jobs: SyncSender<Job>,
}

impl Pool {
    pub fn new(threads: usize, queue: usize) -> Pool {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            std::thread::Builder::new()
                .name(format!("cairn-serve-auth-{i}"))
                .spawn(move || loop {
                    // The pool's sender is gone with the server: stop.
                    let job = rx.lock().unwrap().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                })
                .expect("spawn a password-check thread");
        }
        Pool { jobs }
    }

    /// Run `f` on the pool, or `None` at once when its queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => rx.await.ok(),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(c));
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(addr_key(m), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn connections_per_address() {
        let c = Connections::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let g1 = c.enter(ip).unwrap();
        let _g2 = c.enter(ip).unwrap();
        assert!(c.enter(ip).is_none());
        assert!(c.enter("10.0.0.2".parse().unwrap()).is_some());
        drop(g1);
        assert!(c.enter(ip).is_some());
    }

    #[test]
    fn failures_limit() {
        let f = Failures::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(!f.limited(ip));
        f.failed(ip);
        assert!(!f.limited(ip));
        f.failed(ip);
        assert!(f.limited(ip));
        assert!(!f.limited("10.0.0.2".parse().unwrap()));
    }
}
