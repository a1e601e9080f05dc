//! `cairn serve`: a REST server for repositories, speaking the protocol of
//! restic's rest-server (versions 1 and 2), so restic, cairn and anything
//! else written for rest-server can use it.
//!
//! Concepts:
//! - The **root** (`--path`) holds any number of repositories: the root
//!   itself, `/{name}/` or `/{user}/{name}/` ([`route`]). Each is stored in
//!   exactly the layout of a local repository (`config`, `keys/`, `locks/`,
//!   `snapshots/`, `index/`, `data/xx/`), by cairn-backend's
//!   [`cairn_backend::LocalBackend`] and [`cairn_backend::PendingFile`], so
//!   the same directory can be opened as a local repository at any time.
//! - The server stores opaque files. It never holds a key and never
//!   decrypts anything; it checks only that an uploaded file's SHA-256 is
//!   its name ([`upload`]).
//! - Access: HTTP Basic against an htpasswd file ([`auth`]) unless
//!   `--no-auth` is given explicitly; `--private-repos` confines each user to
//!   `/{user}/...`; `--append-only` refuses deletes (locks excepted).
//!
//! Invariants:
//! - Nothing outside the root is ever touched: every path is built from
//!   validated segments ([`route`]) and resolved beneath the root without
//!   following a symbolic link ([`beneath`]).
//! - Uploads are streamed: memory per upload is one buffer, and the number
//!   of connections (in all, and per client address) and of concurrent
//!   uploads (per user) is bounded, so memory stays bounded whatever the
//!   clients send.
//! - A client that stops sending or reading for `io_timeout`, takes longer
//!   than that to send its request headers, or uploads slower than
//!   `min_upload_rate`, is disconnected; it never holds more than its own
//!   connection slot: the shared upload slots are held only while a buffer
//!   is written to disk, never while waiting on the client.
//! - Password checks run on their own few threads with a bounded queue
//!   (503 when full), and an address that fails too often is answered 429
//!   without a check ([`access`]), so guessing passwords cannot slow file I/O.
//! - A partial or corrupt upload never becomes visible; nothing existing is
//!   overwritten.
//!
//! The server is the one async part of cairn (tokio + hyper); [`Server`]
//! owns its runtime, so callers stay synchronous.

mod access;
mod auth;
mod beneath;
mod handler;
mod listen;
mod log;
mod metrics;
mod quota;
pub mod route;
mod tls;
mod upload;

pub use auth::{apr1, verify as verify_password};
pub use tls::TlsMinVersion;

use cairn_backend::FileKind;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

/// Everything `cairn serve` can be told; the names are rest-server's flags.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `--path`: the data directory holding the repositories.
    pub path: PathBuf,
    /// `--listen`: `HOST:PORT` or `:PORT` (every interface).
    pub listen: String,
    /// `--htpasswd-file` (default: `<path>/.htpasswd`).
    pub htpasswd_file: Option<PathBuf>,
    /// `--no-auth`: serve without authentication.
    pub no_auth: bool,
    /// `--private-repos`: a user reaches only `/<user>/...`.
    pub private_repos: bool,
    /// `--append-only`: no deletes except locks.
    pub append_only: bool,
    /// `--tls`, with `--tls-cert` / `--tls-key` (default
    /// `<path>/public_key`, `<path>/private_key`) and `--tls-min-ver`.
    pub tls: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_min_version: TlsMinVersion,
    /// `--max-size`: bytes all repositories together may hold.
    pub max_size: Option<u64>,
    /// `--prometheus`: metrics at `/metrics`; `--prometheus-no-auth`: without authentication.
    pub prometheus: bool,
    pub prometheus_no_auth: bool,
    /// `--no-verify-upload`: store uploads without checking their SHA-256.
    pub no_verify_upload: bool,
    /// `--log`: the access log file, `-` for stdout.
    pub log: Option<PathBuf>,
    /// `--debug`: a line per request on stderr.
    pub debug: bool,
    /// No start-up messages.
    pub quiet: bool,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// `--max-connections-per-address`: connections one client address
    /// (an IPv6 /64) may hold; more are refused at once (429).
    pub max_connections_per_address: usize,
    /// Uploads writing to disk at once; more wait (not holding the slot
    /// while they wait on their client).
    pub max_uploads: usize,
    /// `--max-uploads-per-user`: uploads one user (without authentication:
    /// one address) may have in progress; more wait up to half of
    /// `io_timeout`, then 429.
    pub max_uploads_per_user: usize,
    /// `--min-upload-rate`: bytes per second an upload must average over
    /// each `io_timeout`, or it is dropped (408).
    pub min_upload_rate: u64,
    /// A connection that neither sends nor receives a byte for this long,
    /// or takes longer to send a request's headers, is closed.
    pub io_timeout: Duration,
    /// Threads checking passwords (bcrypt), and checks that may wait for
    /// one; more are answered 503.
    pub auth_threads: usize,
    pub auth_queue: usize,
    /// Failed password checks one address may make per minute; past that
    /// its unverified requests are answered 429 without a check.
    pub max_auth_failures: u32,
    /// Take a socket passed by systemd (socket activation) when there is one.
    pub socket_activation: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            path: std::env::temp_dir().join("restic"),
            listen: ":8000".into(),
            htpasswd_file: None,
            no_auth: false,
            private_repos: false,
            append_only: false,
            tls: false,
            tls_cert: None,
            tls_key: None,
            tls_min_version: TlsMinVersion::V1_2,
            max_size: None,
            prometheus: false,
            prometheus_no_auth: false,
            no_verify_upload: false,
            log: None,
            debug: false,
            quiet: false,
            max_connections: 256,
            max_connections_per_address: 32,
            max_uploads: 64,
            max_uploads_per_user: 16,
            min_upload_rate: 1024,
            io_timeout: Duration::from_secs(60),
            auth_threads: 2,
            auth_queue: 64,
            max_auth_failures: 10,
            socket_activation: true,
        }
    }
}

/// Why the server could not start or stopped: one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(pub String);

/// What every request handler shares.
pub(crate) struct State {
    /// The root, held open: every file operation starts from it.
    pub fs: beneath::Root,
    pub append_only: bool,
    pub private_repos: bool,
    pub verify_upload: bool,
    pub prometheus: bool,
    pub prometheus_no_auth: bool,
    pub auth: Option<auth::Htpasswd>,
    pub quota: Option<quota::Quota>,
    pub metrics: metrics::Metrics,
    pub log: log::Log,
    pub uploads: Semaphore,
    pub user_uploads: access::PerKey,
    pub min_upload_rate: u64,
    pub io_timeout: Duration,
    pub connections: access::Connections,
    pub auth_pool: access::Pool,
    pub auth_failures: access::Failures,
}

impl State {
    pub fn record(&self, ctx: &handler::Ctx, kind: FileKind, op: metrics::Op, bytes: u64) {
        if self.prometheus {
            self.metrics
                .record(&ctx.user, &ctx.repo, kind.dir(), op, bytes);
        }
    }
}

/// A configured server, bound to its address, not yet serving.
pub struct Server {
    listener: std::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
    io_timeout: Duration,
    addr: SocketAddr,
}

impl Server {
    /// Check the options, load the htpasswd file, certificates and quota,
    /// and bind the listening socket. Every failure is one clear sentence.
    pub fn new(opts: ServerOptions) -> Result<Server, ServerError> {
        let err = |s: String| ServerError(s);
        if opts.no_auth && opts.private_repos {
            return Err(err(
                "--private-repos needs authentication: it cannot be used with --no-auth".into(),
            ));
        }
        let log = log::Log::new(access_log(&opts)?, opts.debug, opts.quiet);
        std::fs::create_dir_all(&opts.path).map_err(|e| {
            err(format!(
                "cannot create the data directory {}: {e}",
                opts.path.display()
            ))
        })?;
        let root = opts
            .path
            .canonicalize()
            .map_err(|e| err(format!("data directory {}: {e}", opts.path.display())))?;

        let fs = beneath::Root::open(&root)
            .map_err(|e| err(format!("data directory {}: {e}", root.display())))?;

        let auth = if opts.no_auth {
            None
        } else {
            let file = opts
                .htpasswd_file
                .clone()
                .unwrap_or_else(|| root.join(".htpasswd"));
            let (h, warnings) = auth::Htpasswd::load(&file).map_err(|e| {
                err(format!(
                    "{e}\n  create it with `htpasswd -B -c {} USER`, point --htpasswd-file at one, or pass --no-auth to serve without authentication",
                    file.display()
                ))
            })?;
            for w in warnings {
                log.error(&format!("{}: {w}", file.display()));
            }
            if h.user_count() == 0 {
                log.error(&format!(
                    "{} has no usable users: every request will be refused",
                    file.display()
                ));
            }
            Some(h)
        };

        if !opts.tls && (opts.tls_cert.is_some() || opts.tls_key.is_some()) {
            return Err(err("--tls-cert and --tls-key need --tls".into()));
        }
        let tls = if opts.tls {
            let cert = opts
                .tls_cert
                .clone()
                .unwrap_or_else(|| root.join("public_key"));
            let key = opts
                .tls_key
                .clone()
                .unwrap_or_else(|| root.join("private_key"));
            Some(tls::acceptor(&cert, &key, opts.tls_min_version).map_err(err)?)
        } else {
            None
        };

        let quota =
            match opts.max_size {
                Some(max) => Some(quota::Quota::tally(&root, max).map_err(|e| {
                    err(format!("measuring {} for --max-size: {e}", root.display()))
                })?),
                None => None,
            };

        let (listener, activated) =
            listen::bind(&opts.listen, opts.socket_activation).map_err(err)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| err(format!("listening socket: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| err(format!("listening socket: {e}")))?;

        let scheme = if tls.is_some() { "https" } else { "http" };
        log.info(&format!("data directory {}", root.display()));
        log.info(&match &auth {
            Some(a) => format!(
                "authentication: {} ({} users)",
                a.path().display(),
                a.user_count()
            ),
            None => "authentication disabled (--no-auth)".into(),
        });
        if opts.append_only {
            log.info("append-only mode: deleting is refused, except lock files");
        }
        if opts.private_repos {
            log.info("private repositories: each user reaches only /<user>/...");
        }
        if let Some(q) = &quota {
            log.info(&format!("quota: {} of {} bytes used", q.used(), q.max()));
        }
        if opts.no_verify_upload {
            log.info("upload verification disabled (--no-verify-upload)");
        }
        log.info(&format!(
            "listening on {scheme}://{addr}/{}",
            if activated {
                " (socket from systemd)"
            } else {
                ""
            }
        ));

        let state = Arc::new(State {
            fs,
            append_only: opts.append_only,
            private_repos: opts.private_repos,
            verify_upload: !opts.no_verify_upload,
            prometheus: opts.prometheus,
            prometheus_no_auth: opts.prometheus_no_auth,
            auth,
            quota,
            metrics: metrics::Metrics::default(),
            log,
            uploads: Semaphore::new(opts.max_uploads.max(1)),
            user_uploads: access::PerKey::new(opts.max_uploads_per_user.max(1)),
            min_upload_rate: opts.min_upload_rate,
            io_timeout: opts.io_timeout,
            connections: access::Connections::new(opts.max_connections_per_address.max(1)),
            auth_pool: access::Pool::new(opts.auth_threads.max(1), opts.auth_queue),
            auth_failures: access::Failures::new(opts.max_auth_failures),
        });
        Ok(Server {
            listener,
            state,
            tls,
            max_connections: opts.max_connections.max(1),
            io_timeout: opts.io_timeout,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use (`0.0.0.0` and `::` shown as loopback).
    pub fn url(&self) -> String {
        base_url(self.addr, self.tls.is_some())
    }

    /// Serve until SIGINT or SIGTERM, then finish the requests in progress
    /// (for up to 10 seconds). SIGHUP re-reads the htpasswd file.
    pub fn run(self) -> Result<(), ServerError> {
        let rt = runtime()?;
        rt.block_on(async move {
            let state = self.state.clone();
            tokio::spawn(reload_on_hangup(state.clone()));
            let stop = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
                state
                    .log
                    .info("stopping: finishing the requests in progress");
            };
            self.serve(stop).await
        })
    }

    /// Serve on a background thread until the handle is stopped or dropped
    /// (for tests and embedding).
    pub fn spawn(self) -> RunningServer {
        let url = self.url();
        let addr = self.addr;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cairn-serve".into())
            .spawn(move || {
                let rt = runtime().expect("a tokio runtime");
                rt.block_on(async move {
                    let stop = async {
                        let _ = rx.await;
                    };
                    let _ = self.serve(stop).await;
                });
                // Do not wait for blocking tasks of abandoned connections.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn the server thread");
        RunningServer {
            url,
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    async fn serve(self, stop: impl std::future::Future<Output = ()>) -> Result<(), ServerError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(|e| ServerError(format!("listening socket: {e}")))?;
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.io_timeout)
            .keep_alive(true)
            .max_buf_size(256 << 10);
        tokio::pin!(stop);
        loop {
            let slot = tokio::select! {
                _ = &mut stop => break,
                s = slots.clone().acquire_owned() => s.expect("never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = &mut stop => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: wait instead of spinning.
                        self.state.log.error(&format!("accepting a connection: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(per_address) = self.state.connections.enter(peer.ip()) else {
                self.state
                    .log
                    .debug(|| format!("{peer}: refused: --max-connections-per-address reached"));
                access::refuse(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(60))
                    .with_interval(Duration::from_secs(10)),
            );
            let mut io = TimeoutStream::new(stream);
            io.set_read_timeout(Some(self.io_timeout));
            io.set_write_timeout(Some(self.io_timeout));
            let io = Box::pin(io);
            let state = self.state.clone();
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handler::handle(state, peer, req).await) }
            });
            let http = http.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            let timeout = self.io_timeout;
            let state = self.state.clone();
            tokio::spawn(async move {
                let _slot = (slot, per_address);
                let result = match tls {
                    None => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(io), service))
                            .await
                    }
                    Some(acceptor) => {
                        let tls_stream =
                            match tokio::time::timeout(timeout, acceptor.accept(io)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    state
                                        .log
                                        .debug(|| format!("{peer}: TLS handshake failed: {e}"));
                                    return;
                                }
                                Err(_) => return,
                            };
                        watcher
                            .watch(http.serve_connection(TokioIo::new(tls_stream), service))
                            .await
                    }
                };
                if let Err(e) = result {
                    state.log.debug(|| format!("{peer}: connection ended: {e}"));
                }
            });
        }
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {},
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                self.state.log.info("closing the connections still open after 10 s");
            }
        }
        Ok(())
    }
}

fn base_url(addr: SocketAddr, tls: bool) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v) if v.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}/", SocketAddr::new(ip, addr.port()))
}

fn runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus.min(8))
        .max_blocking_threads(64)
        .thread_name("cairn-serve")
        .enable_all()
        .build()
        .map_err(|e| ServerError(format!("starting the server's threads: {e}")))
}

fn access_log(opts: &ServerOptions) -> Result<Option<Box<dyn std::io::Write + Send>>, ServerError> {
    match &opts.log {
        None => Ok(None),
        Some(p) if p.as_os_str() == "-" => Ok(Some(Box::new(std::io::stdout()))),
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    ServerError(format!("cannot open the access log {}: {e}", p.display()))
                })?;
            Ok(Some(Box::new(f)))
        }
    }
}

async fn reload_on_hangup(state: Arc<State>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        if let Some(a) = &state.auth {
            match a.reload() {
                Ok(_) => state
                    .log
                    .info(&format!("SIGHUP: reloaded {}", a.path().display())),
                Err(e) => state
                    .log
                    .error(&format!("SIGHUP: {e}; keeping the users loaded")),
            }
        }
    }
}

/// A server serving on a background thread; stops when dropped.
pub struct RunningServer {
    url: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// `http(s)://127.0.0.1:PORT/`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, finish the requests in progress, and wait.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
