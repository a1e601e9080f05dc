//! The one launcher of REST servers for tests, all on 127.0.0.1: used by
//! the end-to-end tests (`tests/rest.rs`) and, as a dev-dependency, by the
//! tests of `cairn-backend-rest` and `cairn-server`.
//!
//! - [`serve`]: `cairn serve` in this process, on its own threads, on a
//!   free port (for the crates' tests, which test the library);
//! - [`ServerProc`]: `cairn serve` (the binary) or `rclone serve restic` as
//!   a child process on a free port, killed when dropped, restartable;
//! - the real restic client ([`restic`]), raw HTTP requests with paths sent
//!   exactly as written ([`request`], [`http`]), htpasswd files, Basic
//!   authentication headers and TLS certificates.

use crate::cmd::wait_capturing;
use crate::{cairn_bin, Out, TestEnv};
use cairn_server::{RunningServer, Server, ServerOptions};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cairn serve` in this process on a free port of 127.0.0.1, storing
/// under `root`, without authentication and quiet unless `f` says
/// otherwise. Stops when dropped.
pub fn serve(root: &Path, f: impl FnOnce(&mut ServerOptions)) -> RunningServer {
    let mut o = ServerOptions {
        path: root.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        no_auth: true,
        quiet: true,
        ..Default::default()
    };
    f(&mut o);
    Server::new(o).expect("start cairn serve").spawn()
}

/// The password of every user in [`htpasswd`].
pub const USER_PASSWORD: &str = "password";

/// An htpasswd file giving each user the password [`USER_PASSWORD`], in the
/// `{SHA}` and Apache `$apr1$` forms alternately.
pub fn htpasswd(path: &Path, users: &[&str]) {
    let lines: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let hash = if i % 2 == 0 {
                "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
            } else {
                "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0"
            };
            format!("{u}:{hash}\n")
        })
        .collect();
    std::fs::write(path, lines.concat()).unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A program from `$VAR` or PATH.
pub fn program(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| find_in_path(name))
}

/// A server process on 127.0.0.1:`port`, killed when dropped; it can be
/// killed and started again on the same port.
pub struct ServerProc {
    child: Option<Child>,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    pub port: u16,
    pub tls: bool,
    log: PathBuf,
}

impl ServerProc {
    /// `cairn serve --path ROOT --listen 127.0.0.1:PORT EXTRA...`; its
    /// stderr goes to `ROOT.log`.
    pub fn cairn(root: &Path, extra: &[&str]) -> ServerProc {
        let port = free_port();
        let mut args: Vec<OsString> = vec![
            "serve".into(),
            "--path".into(),
            root.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        let log = root.with_extension("log");
        let tls = extra.contains(&"--tls");
        let mut s = ServerProc {
            child: None,
            program: cairn_bin(),
            args,
            env: vec![],
            port,
            tls,
            log,
        };
        s.start();
        s
    }

    /// `rclone serve restic --addr 127.0.0.1:PORT ROOT`, or None (with a
    /// note) when rclone is not installed.
    pub fn rclone(root: &Path) -> Option<ServerProc> {
        Self::rclone_with(root, &[])
    }

    /// As [`ServerProc::rclone`], with more options for rclone.
    pub fn rclone_with(root: &Path, extra: &[&str]) -> Option<ServerProc> {
        let Some(bin) = program("RCLONE_BIN", "rclone") else {
            crate::missing("rclone is not installed (set RCLONE_BIN or `apt-get install rclone`)");
            return None;
        };
        std::fs::create_dir_all(root).unwrap();
        let port = free_port();
        let mut args: Vec<OsString> = vec![
            "serve".into(),
            "restic".into(),
            "--addr".into(),
            format!("127.0.0.1:{port}").into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        args.push(root.into());
        let env = vec![(
            "RCLONE_CONFIG".into(),
            root.with_extension("rclone.conf").into(),
        )];
        let mut s = ServerProc {
            child: None,
            program: bin,
            args,
            env,
            port,
            tls: false,
            log: root.with_extension("log"),
        };
        s.start();
        Some(s)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        self.child = Some(
            c.spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display())),
        );
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited ({st}) before listening:\n{}",
                    self.program.display(),
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {addr}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash or a power cut would stop it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http(s)://[user:pass@]127.0.0.1:PORT/PATH`, `rest:` prefixed.
    pub fn url(&self, creds: Option<(&str, &str)>, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let creds = creds.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        format!(
            "rest:{scheme}://{creds}127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real restic client, or None (with a note) when not installed.
pub fn restic_bin() -> Option<PathBuf> {
    let bin = program("RESTIC_BIN", "restic");
    if bin.is_none() {
        eprintln!(
            "note: restic is not installed (set RESTIC_BIN or `apt-get install restic`): skipped"
        );
    }
    bin
}

/// `restic ARGS...` against `repo` with the test's password, cache and home.
pub fn restic<I, S>(bin: &Path, env: &TestEnv, repo: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RESTIC_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(&args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", &env.password)
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .env("HOME", &env.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cmdline = format!(
        "restic {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let (status, stdout, stderr) = wait_capturing(&mut child, Duration::from_secs(300), &cmdline);
    let out = Out {
        cmdline,
        status,
        stdout,
        stderr,
    };
    assert!(
        !out.stderr.contains("panic:") && !out.stderr.contains("goroutine "),
        "`{}` crashed:\n{}",
        out.cmdline,
        out.describe()
    );
    out
}

/// An HTTP response as received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (the name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One raw HTTP/1.1 request on its own connection, the path sent exactly
/// as given; `Content-Length` only with a body or on POST.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before reading a refused body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw, method == "HEAD").unwrap_or_else(|| {
        panic!(
            "{method} {path}: no HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8], head: bool) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = if head {
        Vec::new()
    } else {
        raw[end + 4..].to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// [`request`] to 127.0.0.1:`port`; (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = request(addr, method, path, headers, body);
    (r.status, r.body)
}

/// `Authorization: Basic ...` for `user` and [`USER_PASSWORD`].
pub fn basic_auth(user: &str) -> String {
    basic_auth_with(user, USER_PASSWORD)
}

/// `Authorization: Basic ...` for `user` and `password`.
pub fn basic_auth_with(user: &str, password: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem).
pub fn tls_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (cert, key)
}
