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

use crate::auth::Check;
use crate::metrics::Op;
use crate::route::{self, Target};
use crate::State;
use bytes::Bytes;
use cairn_backend::{BackendError, FileKind, LocalBackend};
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io::{Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

pub const MIME_V1: &str = "application/vnd.x.restic.rest.v1";
pub const MIME_V2: &str = "application/vnd.x.restic.rest.v2";

/// Who asks, about which repository (for metrics and messages).
pub struct Ctx {
    pub user: String,
    pub repo: String,
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
    let (resp, user) = dispatch(&state, req).await;
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

/// The user name, `Some("")` without authentication, or `None`: refused.
async fn authenticate(state: &Arc<State>, req: &Request<Incoming>) -> Option<String> {
    let Some(auth) = &state.auth else {
        return Some(String::new());
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let (check, note) = auth.check(header);
    if let Some(note) = note {
        state.log.info(&note);
    }
    let check = match check {
        Check::Verify {
            user,
            password,
            hash,
        } => {
            let st = state.clone();
            blocking(move || {
                st.auth
                    .as_ref()
                    .expect("auth is set")
                    .verify_slow(user, password, hash)
            })
            .await
        }
        c => c,
    };
    match check {
        Check::Ok(user) => Some(user),
        _ => None,
    }
}

async fn dispatch(state: &Arc<State>, req: Request<Incoming>) -> (Resp, String) {
    let path = req.uri().path().to_string();
    if state.prometheus && path == "/metrics" {
        return metrics(state, req).await;
    }
    let Some(user) = authenticate(state, &req).await else {
        return (unauthorized(), "-".into());
    };
    let shown_user = if user.is_empty() {
        "-".to_string()
    } else {
        user.clone()
    };
    let Some(route) = route::parse(&path) else {
        state
            .log
            .debug(|| format!("{} {path}: not a valid path", req.method()));
        return (plain(StatusCode::NOT_FOUND), shown_user);
    };
    if state.private_repos && state.auth.is_some() && route.repo.first() != Some(&user) {
        return (unauthorized(), shown_user);
    }
    let dir = route.repo.iter().fold(state.root.clone(), |p, s| p.join(s));
    let ctx = Ctx {
        user,
        repo: route.repo_label(),
    };
    let m = req.method().clone();
    let resp = match route.target {
        Target::Root => match m {
            Method::POST => create(state, dir, req.uri().query()).await,
            _ => not_allowed("POST"),
        },
        Target::Config => object(state, &ctx, dir, FileKind::Config, "config".into(), req).await,
        Target::List(kind) => match m {
            Method::GET => {
                let v2 = req
                    .headers()
                    .get_all(header::ACCEPT)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|s| s.contains(MIME_V2)));
                list(state, dir, kind, v2).await
            }
            _ => not_allowed("GET"),
        },
        Target::Object(kind, name) => object(state, &ctx, dir, kind, name, req).await,
    };
    (resp, shown_user)
}

async fn object(
    state: &Arc<State>,
    ctx: &Ctx,
    dir: PathBuf,
    kind: FileKind,
    name: String,
    req: Request<Incoming>,
) -> Resp {
    match *req.method() {
        Method::HEAD => head(state, dir, kind, name).await,
        Method::GET => {
            let range = req
                .headers()
                .get(header::RANGE)
                .map(|v| v.to_str().unwrap_or("invalid").to_string());
            get(state, ctx, dir, kind, name, range).await
        }
        Method::POST => crate::upload::upload(state, ctx, dir, kind, name, req).await,
        Method::DELETE => delete(state, ctx, dir, kind, name).await,
        _ => not_allowed("HEAD, GET, POST, DELETE"),
    }
}

/// A storage error as an answer: 404 for a missing file, else 500 (logged).
fn storage_error(state: &State, what: &str, e: &BackendError) -> Resp {
    if e.is_not_found() {
        return plain(StatusCode::NOT_FOUND);
    }
    state.log.error(&format!("{what}: {e}"));
    plain(if e.kind == cairn_backend::ErrorKind::NoSpace {
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    })
}

async fn create(state: &Arc<State>, dir: PathBuf, query: Option<&str>) -> Resp {
    if route::query_param(query, "create").as_deref() != Some("true") {
        return plain(StatusCode::BAD_REQUEST);
    }
    let shown = dir.display().to_string();
    match blocking(move || cairn_backend::Backend::create(&LocalBackend::new(dir))).await {
        Ok(()) => {
            state
                .log
                .info(&format!("created repository directories in {shown}"));
            plain(StatusCode::OK)
        }
        Err(e) => storage_error(state, "creating a repository", &e),
    }
}

async fn head(state: &Arc<State>, dir: PathBuf, kind: FileKind, name: String) -> Resp {
    match blocking(move || cairn_backend::Backend::stat(&LocalBackend::new(dir), kind, &name)).await
    {
        Ok(size) => {
            let mut r = Response::new(body(Bytes::new()));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            r.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            r
        }
        Err(e) => storage_error(state, "stat", &e),
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
    dir: PathBuf,
    kind: FileKind,
    name: String,
    range: Option<String>,
) -> Resp {
    let opened = blocking(move || {
        let backend = LocalBackend::new(dir);
        let path = backend.path_of(kind, &name)?;
        let f = std::fs::File::open(&path)
            .map_err(|e| BackendError::io(e, format!("reading {}", path.display())))?;
        let size = f
            .metadata()
            .map_err(|e| BackendError::io(e, format!("reading {}", path.display())))?
            .len();
        if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(BackendError::new(
                cairn_backend::ErrorKind::NotFound,
                "not a file",
            ));
        }
        Ok((f, size))
    })
    .await;
    let (mut file, size) = match opened {
        Ok(x) => x,
        Err(e) => return storage_error(state, "reading", &e),
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
            Err(e) => return storage_error(state, "seeking", &BackendError::io(e, "seek")),
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

async fn delete(state: &Arc<State>, ctx: &Ctx, dir: PathBuf, kind: FileKind, name: String) -> Resp {
    if state.append_only && kind != FileKind::Lock {
        state.log.debug(|| {
            format!(
                "DELETE {}/{kind}/{name}: refused in append-only mode",
                ctx.repo
            )
        });
        return plain(StatusCode::FORBIDDEN);
    }
    let removed = blocking(move || {
        let backend = LocalBackend::new(dir);
        let size = cairn_backend::Backend::stat(&backend, kind, &name).ok();
        cairn_backend::Backend::remove(&backend, kind, &name).map(|()| size)
    })
    .await;
    match removed {
        Ok(size) => {
            if let Some(size) = size {
                if let Some(q) = &state.quota {
                    q.release(size);
                }
                if kind != FileKind::Config {
                    state.record(ctx, kind, Op::Delete, size);
                }
            }
            plain(StatusCode::OK)
        }
        Err(e) => storage_error(state, "removing", &e),
    }
}

async fn list(state: &Arc<State>, dir: PathBuf, kind: FileKind, v2: bool) -> Resp {
    let listed = blocking(move || {
        // Only a repository's own directory counts: a missing one is 404.
        let backend = LocalBackend::new(dir);
        cairn_backend::Backend::list(&backend, kind)
    })
    .await;
    let files = match listed {
        Ok(f) => f,
        Err(e) => return storage_error(state, "listing", &e),
    };
    let (json, mime) = if v2 {
        let v: Vec<serde_json::Value> = files
            .iter()
            .map(|f| serde_json::json!({"name": f.name, "size": f.size}))
            .collect();
        (serde_json::to_vec(&v), MIME_V2)
    } else {
        let v: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        (serde_json::to_vec(&v), MIME_V1)
    };
    let mut r = Response::new(body(json.expect("a list of names serializes")));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    r
}

async fn metrics(state: &Arc<State>, req: Request<Incoming>) -> (Resp, String) {
    let mut user = "-".to_string();
    if !state.prometheus_no_auth {
        match authenticate(state, &req).await {
            None => return (unauthorized(), user),
            Some(u) => {
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
