//! S3 servers for tests, as child processes on free ports of 127.0.0.1:
//!
//! - [`S3Server::moto`]: moto's server (Python; `$MOTO_SERVER`, else
//!   `target/test-env/venv/bin/moto_server` as `cargo xtask deps`
//!   installs it, else PATH). It accepts any credentials and keeps its
//!   data in memory, so a restart empties it.
//! - [`S3Server::s3s_fs`]: s3s-fs (Rust; `$S3S_FS_BIN`, else
//!   `target/test-env/s3s/bin/s3s-fs`, else PATH). It checks signatures
//!   against one access key and secret and keeps buckets as directories of
//!   its data directory, so it survives a restart.
//!
//! Both return None after printing `skipping: ...` when the program is not
//! installed; the test then returns. A server is killed when dropped, and
//! [`S3Server::kill`] and [`S3Server::start`] restart it on the same port.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key s3s-fs is started with (moto takes any).
pub const ACCESS_KEY: &str = "cairn-test-key";
/// The secret s3s-fs is started with (moto takes any).
pub const SECRET_KEY: &str = "cairn-test-secret-0123456789";

/// A running S3 server; see the module documentation.
pub struct S3Server {
    child: Option<Child>,
    program: PathBuf,
    args: Vec<OsString>,
    port: u16,
    log: PathBuf,
    name: &'static str,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// `$var`, else `default` under the target directory, else `name` on PATH.
fn find_program(var: &str, default: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let installed = target_dir().join(default);
    if installed.is_file() {
        return Some(installed);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl S3Server {
    /// moto's S3 server, or None (after `skipping: ...`) when not installed.
    /// `log_dir` receives its output.
    pub fn moto(log_dir: &Path) -> Option<S3Server> {
        let Some(program) = find_program(
            "MOTO_SERVER",
            "test-env/venv/bin/moto_server",
            "moto_server",
        ) else {
            crate::missing(
                "moto_server is not installed (set MOTO_SERVER, or run `cargo xtask deps`)",
            );
            return None;
        };
        let port = free_port();
        let args = vec![
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ];
        Some(S3Server::spawn(
            "moto_server",
            program,
            args,
            port,
            log_dir.join("moto.log"),
        ))
    }

    /// s3s-fs storing buckets in `data_dir` (created), checking
    /// [`ACCESS_KEY`] and [`SECRET_KEY`]; None (after `skipping: ...`) when
    /// not installed. Its output goes to `data_dir.log`.
    pub fn s3s_fs(data_dir: &Path) -> Option<S3Server> {
        let Some(program) = find_program("S3S_FS_BIN", "test-env/s3s/bin/s3s-fs", "s3s-fs") else {
            crate::missing("s3s-fs is not installed (set S3S_FS_BIN, or run `cargo xtask deps`)");
            return None;
        };
        std::fs::create_dir_all(data_dir).unwrap();
        let port = free_port();
        let args = vec![
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string().into(),
            "--access-key".into(),
            ACCESS_KEY.into(),
            "--secret-key".into(),
            SECRET_KEY.into(),
            data_dir.into(),
        ];
        Some(S3Server::spawn(
            "s3s-fs",
            program,
            args,
            port,
            data_dir.with_extension("log"),
        ))
    }

    fn spawn(
        name: &'static str,
        program: PathBuf,
        args: Vec<OsString>,
        port: u16,
        log: PathBuf,
    ) -> S3Server {
        let mut s = S3Server {
            child: None,
            program,
            args,
            port,
            log,
            name,
        };
        s.start();
        s
    }

    /// Start the server (again) on its port and wait until it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        // moto imports a lot of Python before it listens: allow for a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before listening on {addr}:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {addr}:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would stop it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
