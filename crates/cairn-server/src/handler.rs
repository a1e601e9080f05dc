//! One request: authentication, routing, then the repository operation, with
//! rest-server's status codes:
//!
//! | request | answer |
//! |---|---|
//! | bad credentials | 401 |
//! | invalid path, name or type | 404 |
//! | `--private-repos` and another user's path | 401 |
//! | `POST {repo}/?create=true` | 200 (also when it exists); without `create=true` 400 |
//! | `HEAD`/`GET` a missing file | 404 |
//! | `GET` with `Range` | 206, or 416 for a range that starts past the end |
//! | `POST` an existing file | 403 |
//! | `POST` whose body's SHA-256 is not the name | 400 |
//! | `POST` past `--max-size`, or the disk full | 507 |
//! | `DELETE` under `--append-only` (locks excepted) | 403 |
//! | `DELETE` a missing file | 200 |
//! | `GET {repo}/{type}/` of a missing repository | 404 |
//! | another method | 405 with `Allow` |
//! | a control character in the path | 400 |
//! | a directory, symbolic link or other non-file by an object's name, or a link on the way | 404 |
//! | `POST ?create=true` past `--max-size` (a directory counts 4 KiB) | 507 |
//! | an upload slower than `--min-upload-rate` | 408 |
//! | too many failed password checks from the address | 429 |
//! | too many uploads of the user, waiting longer than half of `--io-timeout` | 429 |
//! | password checks queued full | 503 |

use crate::auth::Check;
use crate::beneath::{self, Entry};
use crate::metrics::Op;
use crate::quota::{DIR_COST, TMP_PREFIX};
use crate::route::{self, Target};
use crate::State;
use bytes::Bytes;
use cairn_backend::{valid_name, FileKind};
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io::{Seek, SeekFrom};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

pub const MIME_V1: &str = "application/vnd.x.restic.rest.v1";
pub const MIME_V2: &str = "application/vnd.x.restic.rest.v2";

/// Who asks, about which repository (for metrics, limits and messages).
pub struct Ctx {
    pub user: String,
    pub repo: String,
    pub peer: SocketAddr,
}

fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An answer with the status text as its body, as Go's `http.Error` writes.
pub fn plain(status: StatusCode) -> Resp {
    let text = format!("{}\n", status.canonical_reason().unwrap_or(""));
    let mut r = Response::new(body(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn unauthorized() -> Resp {
    let mut r = plain(StatusCode::UNAUTHORIZED);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"restic\""),
    );
    r
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking task panicked")
}

/// Entry point for every request.
pub async fn handle(state: Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let version = req.version();
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let (resp, user) = dispatch(&state, peer, req).await;
    state.log.access(
        peer,
        &user,
        &method,
        &uri,
        version,
        resp.status(),
        exact_len(&resp),
        &referer,
        &agent,
    );
    resp
}

fn exact_len(r: &Resp) -> u64 {
    r.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| hyper::body::Body::size_hint(r.body()).exact())
        .unwrap_or(0)
}

/// The user name (`""` without authentication), or the refusal to answer.
async fn authenticate(
    state: &Arc<State>,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Result<String, Resp> {
    let Some(auth) = &state.auth else {
        return Ok(String::new());
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let (check, note) = auth.check(header);
    if let Some(note) = note {
        state.log.info(&note);
    }
    let (user, password, hash, known, slow) = match check {
        Check::Ok(user) => return Ok(user),
        Check::Missing => return Err(unauthorized()),
        Check::Verify {
            user,
            password,
            hash,
            known,
            slow,
        } => (user, password, hash, known, slow),
    };
    // Past its failures, an address gets no more checks for a while (the
    // cache above still lets its honest clients in).
    if state.auth_failures.limited(peer.ip()) {
        state
            .log
            .debug(|| format!("{peer}: too many failed password checks: 429"));
        return Err(retry_later(StatusCode::TOO_MANY_REQUESTS));
    }
    let verified = if slow {
        let st = state.clone();
        let job = move || {
            st.auth
                .as_ref()
                .expect("auth is set")
                .verify_slow(user, password, hash, known)
        };
        match state.auth_pool.run(job).await {
            Some(v) => v,
            None => {
                state
                    .log
                    .debug(|| format!("{peer}: password checks are queued full: 503"));
                return Err(retry_later(StatusCode::SERVICE_UNAVAILABLE));
            }
        }
    } else {
        auth.verify_slow(user, password, hash, known)
    };
    match verified {
        Some(user) => Ok(user),
        None => {
            state.auth_failures.failed(peer.ip());
            Err(unauthorized())
        }
    }
}

fn retry_later(status: StatusCode) -> Resp {
    let mut r = plain(status);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

async fn dispatch(state: &Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> (Resp, String) {
    let path = req.uri().path().to_string();
    if state.prometheus && path == "/metrics" {
        return metrics(state, peer, req).await;
    }
    let user = match authenticate(state, peer, &req).await {
        Ok(u) => u,
        Err(resp) => return (resp, "-".into()),
    };
    let shown_user = if user.is_empty() {
        "-".to_string()
    } else {
        user.clone()
    };
    if route::has_control(&path) {
        state
            .log
            .debug(|| format!("{peer}: a control character in the path: 400"));
        return (plain(StatusCode::BAD_REQUEST), shown_user);
    }
    let Some(route) = route::parse(&path) else {
        state.log.debug(|| {
            format!(
                "{} {}: not a valid path",
                req.method(),
                crate::log::escape(&path)
            )
        });
        return (plain(StatusCode::NOT_FOUND), shown_user);
    };
    if state.private_repos && state.auth.is_some() && route.repo.first() != Some(&user) {
        return (unauthorized(), shown_user);
    }
    let ctx = Ctx {
        user,
        repo: route.repo_label(),
        peer,
    };
    let repo = route.repo;
    let m = req.method().clone();
    let resp = match route.target {
        Target::Root => match m {
            Method::POST => create(state, &ctx, repo, req.uri().query()).await,
            _ => not_allowed("POST"),
        },
        Target::Config => object(state, &ctx, repo, FileKind::Config, "config".into(), req).await,
        Target::List(kind) => match m {
            Method::GET => {
                let v2 = req
                    .headers()
                    .get_all(header::ACCEPT)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|s| s.contains(MIME_V2)));
                list(state, repo, kind, v2).await
            }
            _ => not_allowed("GET"),
        },
        Target::Object(kind, name) => object(state, &ctx, repo, kind, name, req).await,
    };
    (resp, shown_user)
}

async fn object(
    state: &Arc<State>,
    ctx: &Ctx,
    repo: Vec<String>,
    kind: FileKind,
    name: String,
    req: Request<Incoming>,
) -> Resp {
    match *req.method() {
        Method::HEAD => head(state, repo, kind, name).await,
        Method::GET => {
            let range = req
                .headers()
                .get(header::RANGE)
                .map(|v| v.to_str().unwrap_or("invalid").to_string());
            get(state, ctx, repo, kind, name, range).await
        }
        Method::POST => crate::upload::upload(state, ctx, repo, kind, name, req).await,
        Method::DELETE => delete(state, ctx, repo, kind, name).await,
        _ => not_allowed("HEAD, GET, POST, DELETE"),
    }
}

/// The folder names, below the root, of the directory holding `kind`/`name`.
pub fn object_dir(repo: &[String], kind: FileKind, name: &str) -> Vec<String> {
    let mut v = repo.to_vec();
    match kind {
        FileKind::Config => {}
        FileKind::Data => {
            v.push("data".into());
            v.push(name[..2.min(name.len())].into());
        }
        k => v.push(k.dir().into()),
    }
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A file system error as an answer: 404 for a missing file (or a symbolic
/// link on the way), 507 for a full disk or quota, else 500 (logged).
pub fn io_error(state: &State, what: &str, e: &std::io::Error) -> Resp {
    if beneath::is_not_found(e) {
        if beneath::is_refused(e) {
            state.log.debug(|| {
                format!("{what}: refused: a symbolic link or a non-directory on the way")
            });
        }
        return plain(StatusCode::NOT_FOUND);
    }
    if e.kind() == std::io::ErrorKind::StorageFull || cairn_backend::is_disk_full(e) {
        state.log.debug(|| format!("{what}: {e}"));
        return plain(StatusCode::INSUFFICIENT_STORAGE);
    }
    state.log.error(&format!("{what}: {e}"));
    plain(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Charges directories made by a request to the quota: `reserved` is taken
/// before, and what was not used is given back when dropped.
pub struct DirCharge<'a> {
    state: &'a State,
    reserved: std::cell::Cell<u64>,
}

impl<'a> DirCharge<'a> {
    /// Take `dirs` directories' worth of the quota now, or `None` (never
    /// for 0, even when the quota is already passed).
    pub fn new(state: &'a State, dirs: u64) -> Option<DirCharge<'a>> {
        if let Some(q) = state.quota.as_ref().filter(|_| dirs > 0) {
            if !q.reserve(dirs * DIR_COST) {
                return None;
            }
        }
        Some(DirCharge {
            state,
            reserved: std::cell::Cell::new(dirs),
        })
    }

    /// Before making one directory: from what was reserved, or anew.
    pub fn may_create(&self) -> bool {
        match self.reserved.get() {
            0 => self
                .state
                .quota
                .as_ref()
                .is_none_or(|q| q.reserve(DIR_COST)),
            n => {
                self.reserved.set(n - 1);
                true
            }
        }
    }

    /// The directory turned out to exist already: give its share back.
    pub fn not_made(&self) {
        self.reserved.set(self.reserved.get() + 1);
    }
}

impl Drop for DirCharge<'_> {
    fn drop(&mut self) {
        if let Some(q) = &self.state.quota {
            q.release(self.reserved.get() * DIR_COST);
        }
    }
}

/// The folders of a repository, as `LocalBackend::create` makes them.
const REPO_DIRS: [&str; 5] = ["keys", "locks", "snapshots", "index", "data"];

async fn create(state: &Arc<State>, ctx: &Ctx, repo: Vec<String>, query: Option<&str>) -> Resp {
    if route::query_param(query, "create").as_deref() != Some("true") {
        return plain(StatusCode::BAD_REQUEST);
    }
    let st = state.clone();
    match blocking(move || create_repo(&st, &repo)).await {
        Ok(0) => plain(StatusCode::OK),
        Ok(made) => {
            state.log.info(&format!(
                "created repository /{} ({made} directories)",
                ctx.repo
            ));
            plain(StatusCode::OK)
        }
        Err(e) => io_error(state, "creating a repository", &e),
    }
}

/// Make what is missing of a repository's directories, all charged to the
/// quota before the first is made; how many were made.
fn create_repo(state: &State, repo: &[String]) -> std::io::Result<u64> {
    let root = state.fs.reopen()?;
    let r = strs(repo);
    let shards: Vec<String> = (0..=255u8).map(|i| format!("{i:02x}")).collect();
    let missing = match root.missing(&r)? {
        0 => {
            let d = state.fs.dir(&r)?;
            let mut n = 0;
            for sub in REPO_DIRS {
                n += d.missing(&[sub])?;
            }
            match d.dir("data") {
                Ok(data) => {
                    for s in &shards {
                        n += data.missing(&[s])?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => n += 256,
                Err(e) => return Err(e),
            }
            n
        }
        n => n + REPO_DIRS.len() as u64 + 256,
    };
    if missing == 0 {
        return Ok(0);
    }
    let charge = DirCharge::new(state, missing).ok_or_else(beneath::quota_refused)?;
    let made = std::cell::Cell::new(0u64);
    let mk = |d: &beneath::Dir, name: &str| {
        d.create_dir(
            name,
            &|| {
                let ok = charge.may_create();
                if ok {
                    made.set(made.get() + 1);
                }
                ok
            },
            &|| {
                made.set(made.get() - 1);
                charge.not_made();
            },
        )
    };
    let mut d = root;
    for name in &r {
        d = mk(&d, name)?;
    }
    for sub in REPO_DIRS {
        let s = mk(&d, sub)?;
        if sub == "data" {
            for shard in &shards {
                mk(&s, shard)?;
            }
            s.sync()?;
        }
    }
    d.sync()?;
    Ok(made.get())
}

async fn head(state: &Arc<State>, repo: Vec<String>, kind: FileKind, name: String) -> Resp {
    let st = state.clone();
    let found = blocking(move || {
        st.fs
            .dir(&strs(&object_dir(&repo, kind, &name)))?
            .stat(&name)
    })
    .await;
    match found {
        Ok(Some(Entry::File(size))) => {
            let mut r = Response::new(body(Bytes::new()));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            r.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            r
        }
        // Nothing, or a directory, link or other non-file by that name.
        Ok(_) => plain(StatusCode::NOT_FOUND),
        Err(e) => io_error(state, "stat", &e),
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    Full,
    Part { start: u64, len: u64 },
    Unsatisfiable,
}

/// Parse a `Range` header as Go's `http.ServeContent` does for one range;
/// several ranges are answered with the whole file.
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(h) = header else { return Range::Full };
    let Some(spec) = h.strip_prefix("bytes=") else {
        return Range::Unsatisfiable;
    };
    let specs: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match specs.as_slice() {
        [one] => {
            let Some((a, b)) = one.split_once('-') else {
                return Range::Unsatisfiable;
            };
            let (a, b) = (a.trim(), b.trim());
            if a.is_empty() {
                // The last `b` bytes.
                match b.parse::<u64>() {
                    Ok(n) if n > 0 && size > 0 => {
                        let n = n.min(size);
                        Range::Part {
                            start: size - n,
                            len: n,
                        }
                    }
                    _ => Range::Unsatisfiable,
                }
            } else {
                let Ok(start) = a.parse::<u64>() else {
                    return Range::Unsatisfiable;
                };
                if start >= size {
                    return Range::Unsatisfiable;
                }
                let end = if b.is_empty() {
                    size - 1
                } else {
                    match b.parse::<u64>() {
                        Ok(e) if e >= start => e.min(size - 1),
                        _ => return Range::Unsatisfiable,
                    }
                };
                Range::Part {
                    start,
                    len: end - start + 1,
                }
            }
        }
        [] => Range::Unsatisfiable,
        _ => Range::Full,
    }
}

async fn get(
    state: &Arc<State>,
    ctx: &Ctx,
    repo: Vec<String>,
    kind: FileKind,
    name: String,
    range: Option<String>,
) -> Resp {
    let st = state.clone();
    let opened = blocking(move || {
        st.fs
            .dir(&strs(&object_dir(&repo, kind, &name)))?
            .open_file(&name)
    })
    .await;
    let (mut file, size) = match opened {
        Ok(x) => x,
        Err(e) => return io_error(state, "reading", &e),
    };
    let (status, start, len) = match parse_range(range.as_deref(), size) {
        Range::Full => (StatusCode::OK, 0, size),
        Range::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        Range::Unsatisfiable => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE);
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).unwrap(),
            );
            return r;
        }
    };
    if start > 0 {
        file = match blocking(move || file.seek(SeekFrom::Start(start)).map(|_| file)).await {
            Ok(f) => f,
            Err(e) => return io_error(state, "seeking", &e),
        };
    }
    let reader = tokio::fs::File::from_std(file).take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).map_ok(Frame::data);
    let mut r = Response::new(StreamBody::new(stream).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", start, start + len - 1)).unwrap(),
        );
    }
    if kind != FileKind::Config {
        state.record(ctx, kind, Op::Read, len);
    }
    r
}

async fn delete(
    state: &Arc<State>,
    ctx: &Ctx,
    repo: Vec<String>,
    kind: FileKind,
    name: String,
) -> Resp {
    if state.append_only && kind != FileKind::Lock {
        state.log.debug(|| {
            format!(
                "DELETE {}/{kind}/{name}: refused in append-only mode",
                ctx.repo
            )
        });
        return plain(StatusCode::FORBIDDEN);
    }
    let st = state.clone();
    let removed = blocking(move || remove(&st, &repo, kind, &name)).await;
    match removed {
        Ok(Removed::Nothing) => plain(StatusCode::OK),
        Ok(Removed::File(size)) => {
            if let Some(q) = &state.quota {
                q.release(size);
            }
            if kind != FileKind::Config {
                state.record(ctx, kind, Op::Delete, size);
            }
            plain(StatusCode::OK)
        }
        Ok(Removed::NotAFile) => plain(StatusCode::NOT_FOUND),
        Err(e) => io_error(state, "removing", &e),
    }
}

enum Removed {
    /// No such file (or another request removed it first).
    Nothing,
    /// This request removed a file of this size.
    File(u64),
    /// A directory, link or other non-file: left alone.
    NotAFile,
}

/// Remove a file so that, of concurrent requests, exactly one learns its
/// size: it is first renamed to a name of this request's own (only one
/// rename of a name succeeds), then measured and unlinked.
fn remove(state: &State, repo: &[String], kind: FileKind, name: &str) -> std::io::Result<Removed> {
    let dir = match state.fs.dir(&strs(&object_dir(repo, kind, name))) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removed::Nothing),
        Err(e) => return Err(e),
    };
    match dir.stat(name)? {
        None => return Ok(Removed::Nothing),
        Some(Entry::File(_)) => {}
        Some(_) => return Ok(Removed::NotAFile),
    }
    let mine = format!("{TMP_PREFIX}deleted-{name}-{:016x}", rand::random::<u64>());
    match dir.rename(name, &mine) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removed::Nothing),
        Err(e) => return Err(e),
    }
    let size = match dir.stat(&mine)? {
        Some(Entry::File(size)) => size,
        // Replaced by something else between the two looks: put it back.
        _ => {
            dir.rename_noreplace(&mine, name)?;
            return Ok(Removed::NotAFile);
        }
    };
    dir.unlink(&mine)?;
    let _ = dir.sync();
    Ok(Removed::File(size))
}

async fn list(state: &Arc<State>, repo: Vec<String>, kind: FileKind, v2: bool) -> Resp {
    let st = state.clone();
    let listed = blocking(move || list_files(&st, &repo, kind)).await;
    let files = match listed {
        Ok(f) => f,
        Err(e) => return io_error(state, "listing", &e),
    };
    let (json, mime) = if v2 {
        let v: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, size)| serde_json::json!({"name": name, "size": size}))
            .collect();
        (serde_json::to_vec(&v), MIME_V2)
    } else {
        let v: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        (serde_json::to_vec(&v), MIME_V1)
    };
    let mut r = Response::new(body(json.expect("a list of names serializes")));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    r
}

/// The regular files of `kind` with valid names, and their sizes; a missing
/// repository or type directory is NotFound (404).
fn list_files(
    state: &State,
    repo: &[String],
    kind: FileKind,
) -> std::io::Result<Vec<(String, u64)>> {
    let repo_dir = state.fs.dir(&strs(repo))?;
    let mut out = Vec::new();
    let mut collect = |d: &beneath::Dir| -> std::io::Result<()> {
        for name in d.names()? {
            if !valid_name(kind, &name) {
                continue;
            }
            if let Some(Entry::File(size)) = d.stat(&name)? {
                out.push((name, size));
            }
        }
        Ok(())
    };
    match kind {
        FileKind::Config => {
            if let Some(Entry::File(size)) = repo_dir.stat("config")? {
                out.push(("config".into(), size));
            }
        }
        FileKind::Data => {
            let data = repo_dir.dir("data")?;
            for shard in data.names()? {
                if data.stat(&shard)? == Some(Entry::Dir) {
                    collect(&data.dir(&shard)?)?;
                }
            }
        }
        k => collect(&repo_dir.dir(k.dir())?)?,
    }
    Ok(out)
}

async fn metrics(state: &Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> (Resp, String) {
    let mut user = "-".to_string();
    if !state.prometheus_no_auth {
        match authenticate(state, peer, &req).await {
            Err(resp) => return (resp, user),
            Ok(u) => {
                if state.private_repos && state.auth.is_some() && u != "metrics" {
                    return (unauthorized(), u);
                }
                if !u.is_empty() {
                    user = u;
                }
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (not_allowed("GET, HEAD"), user);
    }
    let mut r = Response::new(body(state.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (r, user)
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Range};

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(
            parse_range(Some("bytes=0-"), 10),
            Range::Part { start: 0, len: 10 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-4"), 10),
            Range::Part { start: 2, len: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=8-20"), 10),
            Range::Part { start: 8, len: 2 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Range::Part { start: 7, len: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Range::Part { start: 0, len: 10 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("items=0-1"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Full);
    }
}
