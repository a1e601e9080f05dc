//! The `rest:` backend: a repository on a server speaking restic's REST
//! protocol — restic's rest-server, `cairn serve`, `rclone serve restic`.
//!
//! `rest:http(s)://[user:pass@]host:port/path/`. The client is synchronous
//! (reqwest's blocking client over rustls), keeps connections open for
//! reuse, and allows several writes at once ([`Backend::write_concurrency`]).
//!
//! Protocol: the URLs are flat (`{base}data/{id}`; only the server shards
//! `data/`). Listings ask for version 2 (names with sizes) and fall back to
//! version 1 (names only, then a HEAD per file) when the server answers
//! with a v1 listing.
//!
//! Contracts kept on any such server:
//! - A write never replaces a file: it asks `HEAD` first (rclone overwrites
//!   without `--append-only`), and a 403 answer to the upload is
//!   `AlreadyExists` when the file is there, `Denied` otherwise.
//! - Removing a missing file succeeds (rclone answers 404).
//! - A range read returns exactly the bytes asked for, or an error.
//!
//! Errors: HTTP 404 → `NotFound`, 401 → `Denied`, 403 → `Denied` (or
//! `AlreadyExists`), 507 → `NoSpace`, 5xx, 408, 429 and every connection or
//! timeout failure → `Transient` (retried by [`cairn_backend::RetryBackend`],
//! which this backend does not do itself), other 4xx → `Permanent`. Each
//! message names the request, the object and what the server answered.
//! The password never appears in a message or in [`Backend::location`].

mod rclone;

pub use rclone::{RcloneBackend, RcloneConfig};

use cairn_backend::{valid_name, Backend, BackendError, ErrorKind, FileInfo, FileKind, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode, Url};
use std::path::PathBuf;
use std::time::Duration;

pub const MIME_V1: &str = "application/vnd.x.restic.rest.v1";
pub const MIME_V2: &str = "application/vnd.x.restic.rest.v2";

/// How to reach the server, besides the URL.
#[derive(Clone, Debug)]
pub struct RestOptions {
    /// Credentials used when the URL has none (the CLI fills them from
    /// `CAIRN_REST_USERNAME` / `CAIRN_REST_PASSWORD`).
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM files of certificate authorities to trust besides the system's
    /// (`--cacert`, for a private CA or a self-signed server certificate).
    pub cacert: Vec<PathBuf>,
    /// A PEM file holding a client certificate and its private key, for
    /// servers that ask for one (`--tls-client-cert`).
    pub tls_client_cert: Option<PathBuf>,
    /// Accept any server certificate (`--insecure-tls`).
    pub insecure_tls: bool,
    pub connect_timeout: Duration,
    /// A request may take this long, plus the time to move its bytes at
    /// [`RestOptions::min_rate`] bytes per second.
    pub timeout: Duration,
    pub min_rate: u64,
    /// Uploads in parallel (the saver's uploader threads).
    pub connections: usize,
    /// What [`Backend::location`] says instead of the URL (the rclone
    /// backend names its remote, not the loopback address).
    pub label: Option<String>,
}

impl Default for RestOptions {
    fn default() -> Self {
        RestOptions {
            username: None,
            password: None,
            cacert: Vec::new(),
            tls_client_cert: None,
            insecure_tls: false,
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(60),
            min_rate: 64 << 10,
            connections: 4,
            label: None,
        }
    }
}

/// Bytes assumed for a read whose size is not known in advance (timeouts).
const UNKNOWN_SIZE: u64 = 64 << 20;

pub struct RestBackend {
    /// Ends with `/`, no credentials.
    base: Url,
    auth: Option<Credentials>,
    client: Client,
    opts: RestOptions,
}

#[derive(serde::Deserialize)]
struct V2Entry {
    name: String,
    size: u64,
}

/// A user name and, maybe, a password.
pub type Credentials = (String, Option<String>);

/// Parse `rest:URL` or `URL` into the URL without credentials and the
/// credentials it held; the error says what is wrong with it.
pub fn parse_url(spec: &str) -> std::result::Result<(Url, Option<Credentials>), String> {
    let raw = spec.strip_prefix("rest:").unwrap_or(spec);
    let mut url =
        Url::parse(raw).map_err(|e| format!("invalid rest: URL {:?}: {e}", redact(raw)))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "invalid rest: URL {:?}: the scheme must be http or https",
            redact(raw)
        ));
    }
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(format!("invalid rest: URL {:?}: no host", redact(raw)));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid rest: URL {:?}: no query or fragment allowed",
            redact(raw)
        ));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = if url.username().is_empty() {
        None
    } else {
        Some((decode(url.username()), url.password().map(decode)))
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok((url, auth))
}

/// A URL for messages: the password replaced by `***` (works on URLs that
/// do not parse, too).
fn redact(raw: &str) -> String {
    let Some(start) = raw.find("://").map(|i| i + 3) else {
        return raw.to_string();
    };
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let Some(at) = raw[start..authority_end].rfind('@').map(|i| start + i) else {
        return raw.to_string();
    };
    match raw[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &raw[..start + colon], &raw[at..]),
        None => raw.to_string(),
    }
}

impl RestBackend {
    /// A backend for `url` (`rest:` prefix optional). Nothing is sent yet.
    pub fn new(url: &str, opts: RestOptions) -> Result<RestBackend> {
        let (base, url_auth) =
            parse_url(url).map_err(|e| BackendError::new(ErrorKind::Permanent, e))?;
        let auth = url_auth.or_else(|| opts.username.clone().map(|u| (u, opts.password.clone())));
        let mut b = Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(None::<Duration>)
            .pool_max_idle_per_host(opts.connections.max(1) * 2)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")));
        for path in &opts.cacert {
            let pem = std::fs::read(path).map_err(|e| {
                BackendError::new(
                    ErrorKind::Permanent,
                    format!("--cacert {}: {e}", path.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                BackendError::new(
                    ErrorKind::Permanent,
                    format!("--cacert {}: not PEM certificates: {e}", path.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(BackendError::new(
                    ErrorKind::Permanent,
                    format!("--cacert {}: no certificate in it", path.display()),
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(path) = &opts.tls_client_cert {
            let what = || format!("--tls-client-cert {}", path.display());
            let pem = std::fs::read(path)
                .map_err(|e| BackendError::new(ErrorKind::Permanent, format!("{}: {e}", what())))?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                BackendError::new(
                    ErrorKind::Permanent,
                    format!("{}: not a PEM certificate and key: {e}", what()),
                )
            })?;
            b = b.identity(identity);
        }
        if opts.insecure_tls {
            b = b.danger_accept_invalid_certs(true);
        }
        let client = b.build().map_err(|e| {
            BackendError::new(
                ErrorKind::Permanent,
                format!("setting up the HTTP client: {e}"),
            )
        })?;
        Ok(RestBackend {
            base,
            auth,
            client,
            opts,
        })
    }

    /// `kind/name` as the URL path below the base (flat: the server shards).
    fn rel(kind: FileKind, name: &str) -> String {
        match kind {
            FileKind::Config => "config".to_string(),
            k => format!("{}/{name}", k.dir()),
        }
    }

    fn url(&self, rel: &str) -> Url {
        self.base
            .join(rel)
            .expect("a relative path of valid names joins")
    }

    fn timeout_for(&self, bytes: u64) -> Duration {
        self.opts.timeout + Duration::from_secs(bytes / self.opts.min_rate.max(1))
    }

    fn request(&self, method: Method, rel: &str, bytes: u64) -> RequestBuilder {
        let mut r = self
            .client
            .request(method, self.url(rel))
            .header(ACCEPT, MIME_V2)
            .timeout(self.timeout_for(bytes));
        if let Some((u, p)) = &self.auth {
            r = r.basic_auth(u, p.as_deref());
        }
        r
    }

    /// Send; a transport failure is `Transient` and names the request.
    fn send(&self, what: &str, r: RequestBuilder) -> Result<Response> {
        r.send()
            .map_err(|e| transport_error(&self.location(), what, &e))
    }

    fn check(kind: FileKind, name: &str) -> Result<()> {
        if valid_name(kind, name) {
            Ok(())
        } else {
            Err(BackendError::new(
                ErrorKind::Permanent,
                format!("invalid {kind} file name {name:?}"),
            ))
        }
    }

    fn status_error(&self, what: &str, resp: Response) -> BackendError {
        let status = resp.status();
        // A short explanation from the server, when it sent one.
        let text = resp.text().unwrap_or_default();
        let reason = status.canonical_reason().unwrap_or("");
        let detail = text
            .lines()
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != reason)
            .map(|l| {
                let l: String = l.chars().take(200).collect();
                format!(": {l}")
            });
        let (kind, hint) = classify(status);
        BackendError::new(
            kind,
            format!(
                "{} {what}: the server answered {}{}{hint}",
                self.location(),
                status_line(status),
                detail.unwrap_or_default()
            ),
        )
    }

    fn head(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        let rel = Self::rel(kind, name);
        let what = format!("HEAD {rel}");
        let resp = self.send(&what, self.request(Method::HEAD, &rel, 0))?;
        match resp.status() {
            s if s.is_success() => {
                let len = resp
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        BackendError::new(
                            ErrorKind::Permanent,
                            format!(
                                "{} {what}: the answer has no Content-Length",
                                self.location()
                            ),
                        )
                    })?;
                Ok(Some(len))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(&what, resp)),
        }
    }
}

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string()
}

/// The error kind of an HTTP status, and a hint for the message.
fn classify(s: StatusCode) -> (ErrorKind, &'static str) {
    match s.as_u16() {
        404 => (ErrorKind::NotFound, ""),
        401 => (
            ErrorKind::Denied,
            " (wrong or missing user name and password)",
        ),
        403 => (
            ErrorKind::Denied,
            " (refused; is the server in append-only mode, or the repository another user's?)",
        ),
        507 => (
            ErrorKind::NoSpace,
            " (the server's storage or quota is full)",
        ),
        408 | 429 => (ErrorKind::Transient, ""),
        500..=599 => (ErrorKind::Transient, ""),
        300..=399 => (
            ErrorKind::Permanent,
            " (redirects are not followed; check the URL and http/https)",
        ),
        _ => (ErrorKind::Permanent, ""),
    }
}

fn transport_error(location: &str, what: &str, e: &reqwest::Error) -> BackendError {
    // reqwest's message (without the URL, which is in the location) plus
    // its sources: "error sending request: connection refused".
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    let kind = if e.is_builder() || e.is_redirect() {
        ErrorKind::Permanent
    } else {
        ErrorKind::Transient
    };
    let msg = if kind == ErrorKind::Transient && tls_problem(&msg) {
        // A certificate the client does not trust will not be trusted on a retry.
        return BackendError::new(
            ErrorKind::Permanent,
            format!("{location} {what}: {msg} (a private CA? pass its certificate with --cacert)"),
        );
    } else {
        msg
    };
    BackendError::new(kind, format!("{location} {what}: {msg}"))
}

fn tls_problem(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("certificate") || m.contains("unknownissuer") || m.contains("invalid peer")
}

impl Backend for RestBackend {
    fn location(&self) -> String {
        if let Some(label) = &self.opts.label {
            return label.clone();
        }
        let mut u = self.base.clone();
        if let Some((user, _)) = &self.auth {
            let _ = u.set_username(user);
        }
        format!("rest:{u}")
    }

    fn write_concurrency(&self) -> usize {
        self.opts.connections.max(1)
    }

    fn create(&self) -> Result<()> {
        let what = "POST ?create=true";
        let mut url = self.base.clone();
        url.set_query(Some("create=true"));
        let mut r = self.client.post(url).timeout(self.opts.timeout);
        if let Some((u, p)) = &self.auth {
            r = r.basic_auth(u, p.as_deref());
        }
        let resp = self.send(what, r)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(what, resp))
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        if kind == FileKind::Config {
            return Ok(self
                .head(kind, "config")?
                .map(|size| FileInfo {
                    name: "config".into(),
                    size,
                })
                .into_iter()
                .collect());
        }
        let rel = format!("{}/", kind.dir());
        let what = format!("GET {rel}");
        let resp = self.send(&what, self.request(Method::GET, &rel, UNKNOWN_SIZE))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp));
        }
        let v2 = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains(MIME_V2));
        let body = resp
            .bytes()
            .map_err(|e| transport_error(&self.location(), &what, &e))?;
        let bad = |e: serde_json::Error| {
            BackendError::new(
                ErrorKind::Permanent,
                format!(
                    "{} {what}: the listing is not valid JSON: {e}",
                    self.location()
                ),
            )
        };
        if v2 {
            let entries: Vec<V2Entry> = serde_json::from_slice(&body).map_err(bad)?;
            Ok(entries
                .into_iter()
                .filter(|e| valid_name(kind, &e.name))
                .map(|e| FileInfo {
                    name: e.name,
                    size: e.size,
                })
                .collect())
        } else {
            // Protocol v1: names only; sizes take one HEAD each.
            let names: Vec<String> = serde_json::from_slice(&body).map_err(bad)?;
            let mut out = Vec::with_capacity(names.len());
            for name in names.into_iter().filter(|n| valid_name(kind, n)) {
                if let Some(size) = self.head(kind, &name)? {
                    out.push(FileInfo { name, size });
                }
            }
            Ok(out)
        }
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        Self::check(kind, name)?;
        self.head(kind, name)?.ok_or_else(|| {
            BackendError::new(
                ErrorKind::NotFound,
                format!(
                    "{} HEAD {}: the server answered 404 Not Found",
                    self.location(),
                    Self::rel(kind, name)
                ),
            )
        })
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        Self::check(kind, name)?;
        if length == Some(0) {
            self.stat(kind, name)?;
            return Ok(Vec::new());
        }
        let rel = Self::rel(kind, name);
        let range = match length {
            None if offset == 0 => None,
            None => Some(format!("bytes={offset}-")),
            Some(n) => Some(format!("bytes={offset}-{}", offset + n - 1)),
        };
        let what = match &range {
            Some(r) => format!("GET {rel} ({r})"),
            None => format!("GET {rel}"),
        };
        let mut req = self.request(Method::GET, &rel, length.unwrap_or(UNKNOWN_SIZE));
        if let Some(r) = &range {
            req = req.header(RANGE, HeaderValue::from_str(r).expect("ASCII"));
        }
        let mut resp = self.send(&what, req)?;
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            // Reading from exactly the end to the end is an empty read, not an error.
            if length.is_none() && self.stat(kind, name)? == offset {
                return Ok(Vec::new());
            }
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("{} {what}: the server answered 416: the range is beyond the end of the file (truncated?)", self.location()),
            ));
        }
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(self.status_error(&what, resp));
        }
        let mut buf =
            Vec::with_capacity(resp.content_length().unwrap_or(0).min(256 << 20) as usize);
        resp.copy_to(&mut buf)
            .map_err(|e| transport_error(&self.location(), &what, &e))?;
        // A server may ignore Range and send the whole file.
        let buf = if status == StatusCode::OK && range.is_some() {
            if (buf.len() as u64) < offset {
                buf.clear();
                buf
            } else {
                buf.split_off(offset as usize)
            }
        } else {
            buf
        };
        let mut buf = buf;
        if let Some(n) = length {
            if (buf.len() as u64) < n {
                return Err(BackendError::new(
                    ErrorKind::Permanent,
                    format!("{} {what}: got {} bytes of {n}: the range is beyond the end of the file (truncated?)", self.location(), buf.len()),
                ));
            }
            buf.truncate(n as usize);
        }
        Ok(buf)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        Self::check(kind, name)?;
        let rel = Self::rel(kind, name);
        let exists = || {
            BackendError::new(
                ErrorKind::AlreadyExists,
                format!("{} POST {rel}: the file already exists", self.location()),
            )
        };
        // Some servers (rclone) overwrite: never give them the chance.
        if self.head(kind, name)?.is_some() {
            return Err(exists());
        }
        let what = format!("POST {rel}");
        let req = self
            .request(Method::POST, &rel, data.len() as u64)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, data.len())
            .body(data.to_vec());
        let resp = self.send(&what, req)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::FORBIDDEN => match self.head(kind, name) {
                Ok(Some(_)) => Err(exists()),
                _ => Err(self.status_error(&what, resp)),
            },
            StatusCode::BAD_REQUEST => Err(BackendError::new(
                ErrorKind::Permanent,
                format!("{} {what}: the server answered 400 Bad Request (it refused the upload: its SHA-256 does not match the name, or it arrived incomplete)", self.location()),
            )),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        Self::check(kind, name)?;
        let rel = Self::rel(kind, name);
        let what = format!("DELETE {rel}");
        let resp = self.send(&what, self.request(Method::DELETE, &rel, 0))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            // Already gone (rclone answers 404 where rest-server answers 200).
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.status_error(&what, resp)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (u, a) = parse_url("rest:http://host:8000/repo").unwrap();
        assert_eq!(u.as_str(), "http://host:8000/repo/");
        assert!(a.is_none());
        let (u, a) = parse_url("rest:https://al%40ice:p%3Ass@host/a/b/").unwrap();
        assert_eq!(u.as_str(), "https://host/a/b/");
        assert_eq!(a, Some(("al@ice".into(), Some("p:ss".into()))));
        assert!(parse_url("rest:ftp://host/").is_err());
        assert!(parse_url("rest:http://host/?x=1").is_err());
        let e = parse_url("rest:http://u:secret@[bad/").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(redact("http://u:p@h/x@y"), "http://u:***@h/x@y");
        assert_eq!(redact("http://h/x"), "http://h/x");
    }

    #[test]
    fn location_hides_the_password() {
        let b = RestBackend::new(
            "rest:http://alice:secret@127.0.0.1:1/r/",
            RestOptions::default(),
        )
        .unwrap();
        assert_eq!(b.location(), "rest:http://alice@127.0.0.1:1/r/");
        let o = RestOptions {
            username: Some("bob".into()),
            password: Some("pw".into()),
            ..Default::default()
        };
        let b = RestBackend::new("rest:http://127.0.0.1:1/", o).unwrap();
        assert_eq!(b.location(), "rest:http://bob@127.0.0.1:1/");
    }

    #[test]
    fn connection_refused_is_transient_and_named() {
        let b = RestBackend::new("rest:http://127.0.0.1:1/repo/", RestOptions::default()).unwrap();
        let e = b.stat(FileKind::Config, "config").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.message.contains("HEAD config"), "{}", e.message);
    }

    #[test]
    fn statuses() {
        assert_eq!(classify(StatusCode::NOT_FOUND).0, ErrorKind::NotFound);
        assert_eq!(classify(StatusCode::UNAUTHORIZED).0, ErrorKind::Denied);
        assert_eq!(
            classify(StatusCode::INSUFFICIENT_STORAGE).0,
            ErrorKind::NoSpace
        );
        assert_eq!(classify(StatusCode::BAD_GATEWAY).0, ErrorKind::Transient);
        assert_eq!(classify(StatusCode::BAD_REQUEST).0, ErrorKind::Permanent);
    }
}
