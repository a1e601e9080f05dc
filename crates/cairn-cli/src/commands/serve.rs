//! `cairn serve`: the REST server (restic's rest-server protocol), with
//! rest-server's flag names so existing service files carry over.

use crate::cli::GlobalOptions;
use cairn_repository::{Error, Kind, Result};
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
    /// Close a connection that sends or receives nothing for this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub io_timeout: u64,
}

/// `500000`, `500K`, `1.5G`, `2TiB`: bytes (K = 1024).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    (n >= 0.0).then(|| (n * mult as f64) as u64)
}

pub fn run(g: &GlobalOptions, a: ServeArgs) -> Result<i32> {
    let max_size = match &a.max_size {
        None => None,
        Some(s) => Some(parse_size(s).ok_or_else(|| {
            Error::usage(format!(
                "invalid --max-size {s:?}: use bytes, or a number with K, M, G or T"
            ))
        })?),
    };
    let tls_min_version: TlsMinVersion = a.tls_min_ver.parse().map_err(Error::usage)?;
    // Repository files are private to the server's user (rest-server's
    // modes), or shared with its group.
    // SAFETY: umask only sets the process's file creation mask.
    unsafe {
        libc::umask(if a.group_accessible_repos {
            0o007
        } else {
            0o077
        });
    }
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
        io_timeout: Duration::from_secs(a.io_timeout.max(1)),
        ..ServerOptions::default()
    };
    let server = Server::new(opts).map_err(|e| Error::new(Kind::Usage, e.to_string()))?;
    server
        .run()
        .map_err(|e| Error::new(Kind::Io, e.to_string()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        use super::parse_size;
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("3GiB"), Some(3 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5Q"), None);
    }
}
