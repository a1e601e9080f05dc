//! `cairn serve`: the REST server (restic's rest-server protocol), with
//! rest-server's flag names so existing service files carry over.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_repository::Kind;
use cairn_server::{Server, ServerOptions, TlsMinVersion};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Data directory: repositories live in it and below it (/, /NAME/, /USER/NAME/)
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir().join("restic"))]
    pub path: PathBuf,
    /// Listen address: HOST:PORT, or :PORT for every interface
    #[arg(long, value_name = "ADDR", default_value = ":8000")]
    pub listen: String,
    /// htpasswd file with the users (bcrypt, {SHA} or $apr1$ hashes; re-read when it changes) [default: DIR/.htpasswd]
    #[arg(long, value_name = "FILE")]
    pub htpasswd_file: Option<PathBuf>,
    /// Serve without authentication (without it, and without an htpasswd file, the server refuses to start)
    #[arg(long)]
    pub no_auth: bool,
    /// Users can only reach repositories under /USERNAME/
    #[arg(long)]
    pub private_repos: bool,
    /// Refuse deleting and overwriting, except lock files
    #[arg(long)]
    pub append_only: bool,
    /// Serve HTTPS
    #[arg(long)]
    pub tls: bool,
    /// TLS certificate (PEM) [default: DIR/public_key]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) [default: DIR/private_key]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Lowest TLS version accepted: 1.2 or 1.3
    #[arg(long, value_name = "VERSION", default_value = "1.2")]
    pub tls_min_ver: String,
    /// Most bytes all repositories together may hold (e.g. 500000000000, 500G); 507 when full
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Prometheus metrics at /metrics (with --private-repos, only for the user "metrics")
    #[arg(long)]
    pub prometheus: bool,
    /// Serve /metrics without authentication
    #[arg(long)]
    pub prometheus_no_auth: bool,
    /// Do not check that an upload's SHA-256 matches its name
    #[arg(long)]
    pub no_verify_upload: bool,
    /// Write an access log (combined log format) to this file, or - for stdout
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Print a line per request on stderr
    #[arg(long)]
    pub debug: bool,
    /// Make new files and directories group-accessible (umask 007 instead of 077)
    #[arg(long)]
    pub group_accessible_repos: bool,
    /// Connections served at once (more wait)
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
    /// Connections one client address (IPv4, or IPv6 /64) may hold; more are refused at once (429)
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_connections_per_address: usize,
    /// Uploads one user (without authentication: one address) may have in progress; more wait up to half of --io-timeout, then 429
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_uploads_per_user: usize,
    /// Drop an upload (408) that brings fewer bytes per second than this, averaged over each --io-timeout
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub min_upload_rate: u64,
    /// Close a connection that sends or receives nothing for this many seconds, or takes longer to send a request's headers
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub io_timeout: u64,
}

pub fn run(g: &GlobalOptions, a: ServeArgs) -> Result<i32> {
    let max_size = match &a.max_size {
        None => None,
        Some(s) => Some(
            crate::size::parse_size(s)
                .map_err(|e| Error::usage(format!("--max-size: {}", e.message)))?,
        ),
    };
    let tls_min_version: TlsMinVersion = a.tls_min_ver.parse().map_err(Error::usage)?;
    // Repository files are private to the server's user (rest-server's
    // modes), or shared with its group.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        if a.group_accessible_repos {
            0o007
        } else {
            0o077
        },
    ));
    let opts = ServerOptions {
        path: a.path,
        listen: a.listen,
        htpasswd_file: a.htpasswd_file,
        no_auth: a.no_auth,
        private_repos: a.private_repos,
        append_only: a.append_only,
        tls: a.tls,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        tls_min_version,
        max_size,
        prometheus: a.prometheus,
        prometheus_no_auth: a.prometheus_no_auth,
        no_verify_upload: a.no_verify_upload,
        log: a.log,
        debug: a.debug,
        quiet: g.quiet,
        max_connections: a.max_connections,
        max_connections_per_address: a.max_connections_per_address,
        max_uploads_per_user: a.max_uploads_per_user,
        min_upload_rate: a.min_upload_rate,
        io_timeout: Duration::from_secs(a.io_timeout.max(1)),
        ..ServerOptions::default()
    };
    let server = Server::new(opts).map_err(|e| Error::usage(e.to_string()))?;
    server
        .run()
        .map_err(|e| Error::new(Kind::Io, e.to_string()))?;
    Ok(0)
}
