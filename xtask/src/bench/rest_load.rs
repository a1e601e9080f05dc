//! `cargo xtask bench --rest-load`: many concurrent clients uploading and
//! listing against `cairn serve`, then the same against `rclone serve
//! restic`, on the same machine and data.
//!
//! Each client is a thread with one keep-alive HTTP/1.1 connection and its
//! own repository (`/clientN/`): it creates it, uploads objects named by
//! their SHA-256 (sizes spread around the mean, content unique per object),
//! lists its `data/` after every few uploads, and at the end checks that
//! the listing holds every object with its size and reads a sample back.
//! "Lost" counts objects missing, of the wrong size or with wrong bytes.
//!
//! Measured per server: wall time, upload throughput, requests per second,
//! upload and listing latency (median, 99th percentile), the server's peak
//! RSS (VmHWM) and CPU time (from /proc), failed requests and lost objects.
//! The table goes to stdout, the figures to `target/bench/rest-load*.json`.
//!
//! The client is a minimal HTTP/1.1 client on `std::net`, so xtask stays
//! free of an HTTP stack; it speaks exactly the requests restic sends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::servers::{self, ServerProcess};
use super::{fsutil, report, Options, Scale};
use crate::sys;

/// How much load, per scale.
#[derive(Clone, Copy, Debug)]
struct Load {
    clients: usize,
    uploads: usize,
    /// Mean object size; sizes range over [mean/4, 7·mean/4].
    mean: usize,
    /// A listing after every this many uploads.
    list_every: usize,
}

fn load(scale: Scale) -> Load {
    match scale {
        Scale::Full => Load {
            clients: 32,
            uploads: 48,
            mean: 1 << 20,
            list_every: 8,
        },
        Scale::Quick => Load {
            clients: 16,
            uploads: 24,
            mean: 512 << 10,
            list_every: 6,
        },
        Scale::Smoke => Load {
            clients: 4,
            uploads: 6,
            mean: 64 << 10,
            list_every: 3,
        },
    }
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    upload_ms: Mutex<Vec<f64>>,
    list_ms: Mutex<Vec<f64>>,
    errors: Mutex<Vec<String>>,
}

impl Stats {
    fn error(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut v = self.errors.lock().unwrap();
        if v.len() < 5 {
            v.push(e);
        }
    }
}

pub fn run(opts: &Options) -> Result<()> {
    let l = load(opts.scale);
    let base = opts
        .dir
        .clone()
        .unwrap_or_else(super::default_base)
        .join("rest-load");
    fsutil::remove(&base)?;
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    sys::ensure_packages(&["rclone"])?;
    let cairn = super::cairn_binary(opts).map_err(|e| anyhow::anyhow!("cairn: {e}"))?;
    let rclone = std::env::var_os("RCLONE_BIN")
        .map(PathBuf::from)
        .or_else(|| sys::find_in_path("rclone"))
        .context("rclone is not installed")?;
    let total = (l.clients * l.uploads * l.mean) as u64;
    eprintln!(
        "[rest-load] {} clients × {} uploads of ~{} (≈{} per server), a listing every {} uploads; data under {}",
        l.clients,
        l.uploads,
        report::bytes(l.mean as u64),
        report::bytes(total),
        l.list_every,
        base.display()
    );

    let mut rows = Vec::new();
    for (name, program, args) in [
        (
            "cairn serve",
            cairn.clone(),
            vec![
                "serve".to_string(),
                "--no-auth".into(),
                "--quiet".into(),
                "--path".into(),
            ],
        ),
        (
            "rclone serve restic",
            rclone.clone(),
            vec!["serve".to_string(), "restic".into(), "--addr".into()],
        ),
    ] {
        let root = base.join(name.split(' ').next().unwrap());
        std::fs::create_dir_all(&root)?;
        let addr = servers::free_addr()?;
        let mut cmd = Command::new(&program);
        cmd.args(&args);
        if name.starts_with("cairn") {
            cmd.arg(&root).args(["--listen", &addr.to_string()]);
        } else {
            cmd.arg(addr.to_string())
                .arg(&root)
                .env("RCLONE_CONFIG", base.join("rclone.conf"));
        }
        let log = base.join(format!("{}.log", name.split(' ').next().unwrap()));
        let server = ServerProcess::spawn(name, cmd, addr, &log, Duration::from_secs(30))?;
        let row = drive(name, addr, server.pid(), l)?;
        drop(server);
        eprintln!(
            "[rest-load]   {name}: {:.2} s, {:.1} MiB/s, peak RSS {}, {} failed, {} lost",
            row["wall_s"].as_f64().unwrap_or(0.0),
            row["upload_mib_s"].as_f64().unwrap_or(0.0),
            report::bytes(row["server_peak_rss_bytes"].as_u64().unwrap_or(0)),
            row["failed_requests"],
            row["lost_objects"]
        );
        rows.push(row);
        fsutil::remove(&root)?;
    }

    let mut text = format!(
        "REST load: {} clients × {} uploads (mean {}) with a listing every {} uploads, on {}\n\n",
        l.clients,
        l.uploads,
        report::bytes(l.mean as u64),
        l.list_every,
        base.display()
    );
    text.push_str("| server | wall | upload MiB/s | requests/s | upload p50 / p99 | list p50 / p99 | server peak RSS | server CPU | failed | lost |\n");
    text.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        text.push_str(&format!(
            "| {} | {:.2} s | {:.1} | {:.0} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {} | {:.2} s | {} | {} |\n",
            r["server"].as_str().unwrap_or(""),
            r["wall_s"].as_f64().unwrap_or(0.0),
            r["upload_mib_s"].as_f64().unwrap_or(0.0),
            r["requests_per_s"].as_f64().unwrap_or(0.0),
            r["upload_ms_p50"].as_f64().unwrap_or(0.0),
            r["upload_ms_p99"].as_f64().unwrap_or(0.0),
            r["list_ms_p50"].as_f64().unwrap_or(0.0),
            r["list_ms_p99"].as_f64().unwrap_or(0.0),
            report::bytes(r["server_peak_rss_bytes"].as_u64().unwrap_or(0)),
            r["server_cpu_s"].as_f64().unwrap_or(0.0),
            r["failed_requests"],
            r["lost_objects"],
        ));
    }
    print!("{text}");
    let out_dir = sys::target_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let stem = match opts.scale {
        Scale::Full => "rest-load".to_string(),
        s => format!("rest-load-{}", s.name()),
    };
    let doc = json!({ "clients": l.clients, "uploads_per_client": l.uploads, "mean_size": l.mean, "list_every": l.list_every, "rows": rows });
    std::fs::write(
        out_dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&doc)?,
    )?;
    std::fs::write(out_dir.join(format!("{stem}.md")), &text)?;
    eprintln!("[rest-load] wrote {}/{stem}.{{json,md}}", out_dir.display());
    if opts.clean {
        fsutil::remove(&base)?;
    }
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| {
            r["lost_objects"].as_u64() != Some(0) || r["failed_requests"].as_u64() != Some(0)
        })
        .filter_map(|r| r["server"].as_str())
        .collect();
    if !bad.is_empty() && opts.strict != super::Strict::No {
        bail!(
            "requests failed or objects were lost with: {}",
            bad.join(", ")
        );
    }
    Ok(())
}

/// Peak RSS (bytes) and CPU seconds (user + system) of a process.
fn proc_usage(pid: u32) -> (u64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0);
    (rss, cpu)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn drive(name: &str, addr: SocketAddr, pid: u32, l: Load) -> Result<serde_json::Value> {
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let threads: Vec<_> = (0..l.clients)
        .map(|c| {
            let stats = stats.clone();
            std::thread::spawn(move || client(addr, c, l, &stats))
        })
        .collect();
    for t in threads {
        if t.join().is_err() {
            stats.error("a client thread panicked".into());
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let (rss, cpu) = proc_usage(pid);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let mut up = stats.upload_ms.lock().unwrap().clone();
    let mut li = stats.list_ms.lock().unwrap().clone();
    for e in stats.errors.lock().unwrap().iter() {
        eprintln!("[rest-load]   {name}: error: {e}");
    }
    Ok(json!({
        "server": name,
        "wall_s": wall,
        "uploaded_bytes": bytes,
        "upload_mib_s": bytes as f64 / (1 << 20) as f64 / wall,
        "requests": stats.requests.load(Ordering::Relaxed),
        "requests_per_s": stats.requests.load(Ordering::Relaxed) as f64 / wall,
        "upload_ms_p50": percentile(&mut up, 0.5),
        "upload_ms_p99": percentile(&mut up, 0.99),
        "list_ms_p50": percentile(&mut li, 0.5),
        "list_ms_p99": percentile(&mut li, 0.99),
        "server_peak_rss_bytes": rss,
        "server_cpu_s": cpu,
        "failed_requests": stats.failed.load(Ordering::Relaxed),
        "lost_objects": stats.lost.load(Ordering::Relaxed),
    }))
}

/// Deterministic, unique content for object `i` of client `c`.
fn object(c: usize, i: usize, mean: usize) -> Vec<u8> {
    let mut x: u64 =
        0x9e37_79b9_7f4a_7c15 ^ ((c as u64) << 32 | i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let size = mean / 4 + (next() as usize % (mean * 3 / 2 + 1));
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        v.extend_from_slice(&next().to_le_bytes());
    }
    v.truncate(size);
    v
}

fn client(addr: SocketAddr, c: usize, l: Load, stats: &Stats) {
    let mut conn = Conn::new(addr);
    let repo = format!("/client{c}");
    let mut req =
        |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| -> Option<Response> {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            match conn.request(method, path, headers, body) {
                Ok(r) => Some(r),
                Err(e) => {
                    stats.error(format!("{method} {path}: {e:#}"));
                    None
                }
            }
        };
    match req("POST", &format!("{repo}/?create=true"), &[], b"") {
        Some(r) if r.status == 200 => {}
        Some(r) => return stats.error(format!("create {repo}: status {}", r.status)),
        None => return,
    }
    let mut stored: Vec<(String, usize)> = Vec::new();
    for i in 0..l.uploads {
        let data = object(c, i, l.mean);
        let id = hex(&Sha256::digest(&data));
        let t = Instant::now();
        if let Some(r) = req(
            "POST",
            &format!("{repo}/data/{id}"),
            &[("Content-Type", "application/octet-stream")],
            &data,
        ) {
            if r.status == 200 {
                stats
                    .upload_ms
                    .lock()
                    .unwrap()
                    .push(t.elapsed().as_secs_f64() * 1000.0);
                stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                stored.push((id, data.len()));
            } else {
                stats.error(format!("POST {repo}/data/{id}: status {}", r.status));
            }
        }
        if (i + 1) % l.list_every == 0 {
            let t = Instant::now();
            if let Some(r) = req(
                "GET",
                &format!("{repo}/data/"),
                &[("Accept", "application/vnd.x.restic.rest.v2")],
                b"",
            ) {
                stats
                    .list_ms
                    .lock()
                    .unwrap()
                    .push(t.elapsed().as_secs_f64() * 1000.0);
                let n = serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if r.status != 200 || n < stored.len() {
                    stats.error(format!(
                        "GET {repo}/data/: status {}, {n} listed of {} stored",
                        r.status,
                        stored.len()
                    ));
                }
            }
        }
    }
    // Nothing lost: every object listed with its size; a sample read back.
    let listed: Vec<(String, usize)> = match req(
        "GET",
        &format!("{repo}/data/"),
        &[("Accept", "application/vnd.x.restic.rest.v2")],
        b"",
    ) {
        Some(r) if r.status == 200 => serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_string(),
                    e["size"].as_u64()? as usize,
                ))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (i, (id, size)) in stored.iter().enumerate() {
        if !listed.contains(&(id.clone(), *size)) {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if i % 4 == 0 {
            match req("GET", &format!("{repo}/data/{id}"), &[], b"") {
                Some(r) if r.status == 200 && hex(&Sha256::digest(&r.body)) == *id => {}
                _ => {
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection, reopened when the server closes it.
struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        // A kept-alive connection the server closed meanwhile: try once more on a fresh one.
        let reused = self.stream.is_some();
        match self.try_request(method, path, headers, body) {
            Err(_) if reused => {
                self.stream = None;
                self.try_request(method, path, headers, body)
            }
            r => r,
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(120)))?;
            self.stream = Some(BufReader::with_capacity(64 << 10, s));
        }
        let r = self.stream.as_mut().unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = r.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        match read_response(r, method == "HEAD") {
            Ok((resp, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(resp)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// The response, and whether the server closes the connection after it.
fn read_response(r: &mut BufReader<TcpStream>, head: bool) -> Result<(Response, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("the server closed the connection");
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut len, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if head || status == 204 || status == 304 {
        // No body.
    } else if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .context("bad chunk size")?;
            if n == 0 {
                line.clear();
                r.read_line(&mut line)?;
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok((Response { status, body }, close))
}
