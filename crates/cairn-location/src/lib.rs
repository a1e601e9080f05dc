//! Where a repository is, and the backend that reaches it: the one place
//! that knows every location form. The CLI, profiles, `mount` and
//! `monitor` all resolve a location here; nothing else matches on schemes.
//!
//! | form | backend |
//! |---|---|
//! | `PATH`, `local:PATH` | a local directory |
//! | `rest:http(s)://[user:pass@]host:port/path/` | restic's REST protocol (rest-server, `cairn serve`, `rclone serve restic`) |
//! | `sftp:[user@]host:PATH`, `sftp://[user@]host[:port]/PATH` | SFTP through the user's `ssh` |
//! | `s3:https://host[:port]/bucket[/prefix]`, `s3:host/bucket[/prefix]`, `s3:s3.amazonaws.com/bucket` | S3 and S3-compatible stores |
//! | `rclone:remote:path` | any store rclone reaches, through `rclone serve restic` |
//!
//! [`Location::parse`] only reads the string; [`open`] builds the backend
//! from the location and one [`BackendOptions`] value (credentials, `-o`
//! options, CA certificates, limits, cache). Every network backend is
//! wrapped the same way, innermost first: bandwidth limits
//! ([`LimitBackend`]), retries ([`RetryBackend`], which fail fast until the
//! server has answered once), then the local cache ([`CacheBackend`]), so
//! a cache hit costs neither bandwidth nor a retry.
//!
//! Debug builds only: with `CAIRN_TEST_CRASH_AFTER=N` every backend (local
//! ones too) is wrapped outermost in a [`CrashPointBackend`], which ends the
//! process after the N-th mutating operation, so tests can crash a command
//! at each of its write/delete boundaries.

mod options;

pub use options::{ExtendedOptions, OptionError, KNOWN_OPTIONS};

use cairn_backend::{
    Backend, BackendError, CacheBackend, CrashPointBackend, ErrorKind, LimitBackend, LocalBackend,
    RetryBackend, RetryPolicy,
};
use cairn_backend_rest::{RcloneBackend, RcloneConfig, RestBackend, RestOptions};
use cairn_backend_s3::{S3Backend, S3Config};
use cairn_backend_sftp::{SftpBackend, SftpConfig};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Every location form, for error messages and help texts.
pub const SUPPORTED_FORMS: &str = "a local path, local:PATH, rest:http(s)://host:port/path/, \
sftp:user@host:/path, sftp://user@host:port/path, s3:https://host/bucket/prefix, \
s3:host/bucket, rclone:remote:path";

/// A parsed repository location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// The URL as given, credentials included (never printed as is: see
    /// [`Location`]'s `Display`).
    Rest(String),
    Sftp(SftpLocation),
    S3(S3Location),
    /// `remote:path` as rclone names it.
    Rclone(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpLocation {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Absolute, or relative to the login directory.
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `scheme://host[:port]`; `None` for Amazon's own endpoints.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// No leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// From an endpoint like `s3.eu-west-1.amazonaws.com`.
    pub region: Option<String>,
}

/// A location string that is not one of the forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationError(pub String);

impl fmt::Display for LocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LocationError {}

fn bad(spec: &str, why: impl fmt::Display) -> LocationError {
    LocationError(format!(
        "invalid repository location {:?}: {why}",
        redact(spec)
    ))
}

/// `spec` with any `user:password@` password replaced by `***`.
fn redact(spec: &str) -> String {
    let Some(start) = spec.find("://").map(|i| i + 3) else {
        return spec.to_string();
    };
    let end = spec[start..].find('/').map_or(spec.len(), |i| start + i);
    match spec[start..end].rfind('@').map(|i| start + i) {
        Some(at) => match spec[start..at].find(':') {
            Some(c) => format!("{}:***{}", &spec[..start + c], &spec[at..]),
            None => spec.to_string(),
        },
        None => spec.to_string(),
    }
}

impl Location {
    /// Parse a location; the error names the form that was meant and what
    /// is wrong, or lists every supported form.
    pub fn parse(spec: &str) -> Result<Location, LocationError> {
        if spec.is_empty() {
            return Err(LocationError("empty repository location".into()));
        }
        if let Some(path) = spec.strip_prefix("local:") {
            if path.is_empty() {
                return Err(bad(spec, "no path after local:"));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if spec.starts_with("rest:") {
            cairn_backend_rest::parse_url(spec).map_err(LocationError)?;
            return Ok(Location::Rest(spec.to_string()));
        }
        if let Some(rest) = spec.strip_prefix("sftp:") {
            return parse_sftp(spec, rest).map(Location::Sftp);
        }
        if let Some(rest) = spec.strip_prefix("s3:") {
            return parse_s3(spec, rest).map(Location::S3);
        }
        if let Some(remote) = spec.strip_prefix("rclone:") {
            if remote.is_empty() {
                return Err(bad(spec, "no remote after rclone: (rclone:remote:path)"));
            }
            return Ok(Location::Rclone(remote.to_string()));
        }
        if let Some((scheme, _)) = spec.split_once(':') {
            if !scheme.contains('/') && scheme.len() > 1 {
                return Err(LocationError(format!(
                    "unknown repository type {scheme:?} in {:?} (supported: {SUPPORTED_FORMS})",
                    redact(spec)
                )));
            }
        }
        Ok(Location::Local(PathBuf::from(spec)))
    }

    /// Is the repository reached over a network (and worth a local cache)?
    pub fn is_remote(&self) -> bool {
        !matches!(self, Location::Local(_))
    }

    /// The scheme word used in messages: `local`, `rest`, `sftp`, `s3`, `rclone`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::Rest(_) => "rest",
            Location::Sftp(_) => "sftp",
            Location::S3(_) => "s3",
            Location::Rclone(_) => "rclone",
        }
    }
}

impl fmt::Display for Location {
    /// The location as a user would write it, without a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Rest(url) => f.write_str(&redact(url)),
            Location::Sftp(s) => {
                let user = s
                    .user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                let host = if s.host.contains(':') {
                    format!("[{}]", s.host)
                } else {
                    s.host.clone()
                };
                match s.port {
                    Some(port) => write!(f, "sftp://{user}{host}:{port}/{}", s.path),
                    None => write!(f, "sftp:{user}{host}:{}", s.path),
                }
            }
            Location::S3(s) => {
                let aws = match &s.region {
                    Some(r) => format!("s3.{r}.amazonaws.com"),
                    None => "s3.amazonaws.com".to_string(),
                };
                let endpoint = s.endpoint.as_deref().unwrap_or(&aws);
                write!(f, "s3:{endpoint}/{}", s.bucket)?;
                if !s.prefix.is_empty() {
                    write!(f, "/{}", s.prefix)?;
                }
                Ok(())
            }
            Location::Rclone(r) => write!(f, "rclone:{r}"),
        }
    }
}

/// `user@host` or `host` (with `[v6]` brackets removed) into its parts.
fn user_host(spec: &str, s: &str) -> Result<(Option<String>, String), LocationError> {
    let (user, host) = match s.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return Err(bad(spec, "empty user name before @")),
        None => (None, s),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad(spec, "no host"));
    }
    Ok((user, host.to_string()))
}

/// `sftp:[user@]host:PATH` or `sftp://[user@]host[:port]/PATH`. As in
/// restic, the URL form's first `/` only ends the host part: `/srv/repo`
/// is `sftp://host//srv/repo`, and `sftp://host/repo` is `repo` in the
/// login directory.
fn parse_sftp(spec: &str, rest: &str) -> Result<SftpLocation, LocationError> {
    if let Some(url) = rest.strip_prefix("//") {
        let (authority, path) = url
            .split_once('/')
            .ok_or_else(|| bad(spec, "no path (sftp://user@host:port/path)"))?;
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad(spec, "unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        let port = match port.filter(|p| !p.is_empty()) {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad(spec, format!("port {p:?} is not a number")))?,
            ),
            None => None,
        };
        if user == Some("") {
            return Err(bad(spec, "empty user name before @"));
        }
        if host.is_empty() {
            return Err(bad(spec, "no host"));
        }
        let (user, host) = (user.map(str::to_owned), host.to_string());
        if path.is_empty() {
            return Err(bad(spec, "no path after the host"));
        }
        return Ok(SftpLocation {
            user,
            host,
            port,
            path: path.to_string(),
        });
    }
    // [user@]host:path, where an IPv6 host is in brackets.
    let split_at = if let Some(close) = rest.find("]:") {
        close + 1
    } else {
        rest.find(':')
            .ok_or_else(|| bad(spec, "no path (sftp:user@host:/path)"))?
    };
    let (authority, path) = (&rest[..split_at], &rest[split_at + 1..]);
    let (user, host) = user_host(spec, authority)?;
    if path.is_empty() {
        return Err(bad(spec, "no path after host:"));
    }
    Ok(SftpLocation {
        user,
        host,
        port: None,
        path: path.to_string(),
    })
}

/// `s3:https://host[:port]/bucket[/prefix]` or `s3:host/bucket[/prefix]`
/// (https), with Amazon's own hosts left to the SDK's endpoint resolution.
fn parse_s3(spec: &str, rest: &str) -> Result<S3Location, LocationError> {
    let (scheme, after) = match rest.split_once("://") {
        Some((s @ ("http" | "https"), a)) => (s, a),
        Some((s, _)) => {
            return Err(bad(
                spec,
                format!("the scheme must be http or https, not {s:?}"),
            ))
        }
        None => ("https", rest),
    };
    let (host, path) = after
        .split_once('/')
        .ok_or_else(|| bad(spec, "no bucket (s3:host/bucket/prefix)"))?;
    if host.is_empty() {
        return Err(bad(spec, "no host"));
    }
    let path = path.trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(bad(spec, "no bucket after the host"));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Err(bad(spec, format!("{bucket:?} is not a valid bucket name")));
    }
    let prefix = prefix.trim_matches('/').to_string();
    let host_only = host.split(':').next().unwrap_or(host);
    let (endpoint, region) = if host_only == "s3.amazonaws.com" {
        (None, None)
    } else if let Some(region) = host_only
        .strip_suffix(".amazonaws.com")
        .and_then(|h| h.strip_prefix("s3.").or_else(|| h.strip_prefix("s3-")))
    {
        (None, Some(region.to_string()))
    } else {
        (Some(format!("{scheme}://{host}")), None)
    };
    Ok(S3Location {
        endpoint,
        bucket: bucket.to_string(),
        prefix,
        region,
    })
}

/// Told before each retry: the error, the attempt that failed, the wait.
pub type RetryNotify = Arc<dyn Fn(&BackendError, u32, Duration) + Send + Sync>;

/// Everything besides the location that decides how the backend is built.
#[derive(Clone, Default)]
pub struct BackendOptions {
    /// `-o key=value`, validated.
    pub options: ExtendedOptions,
    /// Extra CA certificates (PEM files) for HTTPS (`--cacert`).
    pub cacert: Vec<PathBuf>,
    /// A PEM file with a client certificate and its key, presented over
    /// HTTPS (`--tls-client-cert`).
    pub tls_client_cert: Option<PathBuf>,
    /// Accept any server certificate over HTTPS (`--insecure-tls`).
    pub insecure_tls: bool,
    /// For `rest:` when the URL holds none.
    pub rest_username: Option<String>,
    pub rest_password: Option<String>,
    /// KiB/s, as restic's `--limit-upload` / `--limit-download`.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
    /// The cache root for remote repositories; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    pub retry_notify: Option<RetryNotify>,
    pub retry: Option<RetryPolicy>,
}

impl fmt::Debug for BackendOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendOptions")
            .field("options", &self.options)
            .field("cacert", &self.cacert)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("insecure_tls", &self.insecure_tls)
            .field("rest_username", &self.rest_username)
            .field("rest_password", &self.rest_password.as_ref().map(|_| "***"))
            .field("limit_upload", &self.limit_upload)
            .field("limit_download", &self.limit_download)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

/// How long a network backend may take to connect before the attempt
/// fails (an unreachable host is reported within seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn rest_options(opts: &BackendOptions) -> RestOptions {
    let mut r = RestOptions {
        username: opts.rest_username.clone(),
        password: opts.rest_password.clone(),
        cacert: opts.cacert.clone(),
        tls_client_cert: opts.tls_client_cert.clone(),
        insecure_tls: opts.insecure_tls,
        connect_timeout: CONNECT_TIMEOUT,
        ..RestOptions::default()
    };
    if let Some(n) = opts.options.connections_for("rest") {
        r.connections = n;
    }
    r
}

/// Build the backend for `location`. Nothing is read or written yet except
/// what connecting needs (an SFTP session, rclone's start).
pub fn open(location: &Location, opts: &BackendOptions) -> Result<Arc<dyn Backend>, BackendError> {
    crash_points(build(location, opts)?)
}

/// The test hook of debug builds: `CAIRN_TEST_CRASH_AFTER=N` ends the
/// process after the N-th mutating backend operation (see
/// [`CrashPointBackend`]). Release builds never read the variable.
fn crash_points(backend: Arc<dyn Backend>) -> Result<Arc<dyn Backend>, BackendError> {
    if !cfg!(debug_assertions) {
        return Ok(backend);
    }
    let Some(v) = std::env::var_os("CAIRN_TEST_CRASH_AFTER") else {
        return Ok(backend);
    };
    match v.to_str().and_then(|v| v.parse::<u64>().ok()) {
        Some(n) if n > 0 => Ok(Arc::new(CrashPointBackend::new(backend, n))),
        _ => Err(BackendError::new(
            ErrorKind::Permanent,
            format!("invalid CAIRN_TEST_CRASH_AFTER {v:?}: a number of operations, 1 or more"),
        )),
    }
}

/// The backend for `location`, network ones in their wrappers.
fn build(location: &Location, opts: &BackendOptions) -> Result<Arc<dyn Backend>, BackendError> {
    let network: Arc<dyn Backend> = match location {
        Location::Local(path) => return Ok(Arc::new(LocalBackend::new(path))),
        Location::Rest(url) => Arc::new(RestBackend::new(url, rest_options(opts))?),
        Location::Rclone(remote) => Arc::new(RcloneBackend::start(RcloneConfig {
            remote: remote.clone(),
            program: opts.options.get("rclone.program").map(str::to_owned),
            args: opts.options.get("rclone.args").map(str::to_owned),
            rest: rest_options(opts),
        })?),
        Location::Sftp(l) => Arc::new(SftpBackend::open(SftpConfig {
            user: l.user.clone(),
            host: l.host.clone(),
            port: l.port,
            path: l.path.clone(),
            command: opts.options.get("sftp.command").map(str::to_owned),
            args: opts.options.get("sftp.args").map(str::to_owned),
            connections: opts.options.connections_for("sftp").unwrap_or(0),
            ..SftpConfig::default()
        })?),
        // The S3 client's TLS set-up takes trusted CAs only; refused
        // rather than ignored, so no one believes they are in effect.
        Location::S3(_) if opts.tls_client_cert.is_some() || opts.insecure_tls => {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                "--tls-client-cert and --insecure-tls work with rest: only; for s3: trust a private CA with --cacert",
            ))
        }
        Location::S3(l) => Arc::new(S3Backend::open(S3Config {
            endpoint: l.endpoint.clone(),
            bucket: l.bucket.clone(),
            prefix: l.prefix.clone(),
            region: opts
                .options
                .get("s3.region")
                .map(str::to_owned)
                .or_else(|| l.region.clone()),
            storage_class: opts.options.get("s3.storage-class").map(str::to_owned),
            path_style: match opts.options.get("s3.bucket-lookup") {
                Some("path") => Some(true),
                Some("dns") => Some(false),
                _ => None,
            },
            connections: opts.options.connections_for("s3").unwrap_or(0),
            cacert: opts.cacert.clone(),
            ..S3Config::default()
        })?),
    };
    Ok(wrap(network, opts))
}

/// The wrappers every network backend gets: limits, retries, cache.
fn wrap(backend: Arc<dyn Backend>, opts: &BackendOptions) -> Arc<dyn Backend> {
    let kib = |k: u64| k.saturating_mul(1024);
    let limited: Arc<dyn Backend> = if opts.limit_upload.is_some() || opts.limit_download.is_some()
    {
        Arc::new(LimitBackend::new(
            backend,
            opts.limit_upload.map(kib),
            opts.limit_download.map(kib),
        ))
    } else {
        backend
    };
    let mut retry = RetryBackend::new(limited, opts.retry.clone().unwrap_or_default());
    if let Some(notify) = opts.retry_notify.clone() {
        retry = retry.with_notify(move |e, n, wait| notify(e, n, wait));
    }
    match &opts.cache_dir {
        Some(dir) => Arc::new(CacheBackend::new(retry, dir.clone())),
        None => Arc::new(retry),
    }
}

#[cfg(test)]
mod tests;
