//! `POST {repo}/{type}/{name}` and `POST {repo}/config`: an upload streamed
//! to a temporary file while its SHA-256 is computed.
//!
//! Invariants:
//! - the body is never held whole in memory: at most [`BUFFER`] bytes (plus
//!   one frame) per upload, and at most `max_uploads` uploads hold one;
//! - a file becomes visible only complete, synced and with the right hash
//!   (cairn-backend's [`PendingFile`]: temporary file, fsync, rename without
//!   replacing, fsync of the directory); anything else removes the
//!   temporary file;
//! - an existing file is never replaced (403), in any mode.

use crate::handler::{plain, Ctx};
use crate::metrics::Op;
use crate::State;
use bytes::Bytes;
use cairn_backend::{FileKind, LocalBackend, PendingFile};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes gathered before they are hashed and written on a blocking thread.
pub const BUFFER: usize = 256 << 10;

enum Failure {
    Status(StatusCode, &'static str),
    Io(std::io::Error, &'static str),
}

fn io_status(e: &std::io::Error) -> StatusCode {
    if cairn_backend::is_disk_full(e) {
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Holds the quota taken by an upload until it is settled; gives it all back
/// if the upload fails or is abandoned.
struct Reservation<'a> {
    state: &'a State,
    bytes: u64,
    kept: bool,
}

impl Reservation<'_> {
    fn grow(&mut self, n: u64) -> bool {
        match &self.state.quota {
            Some(q) if q.reserve(n) => {
                self.bytes += n;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The upload is stored: keep `written` bytes, give back any excess.
    fn keep(mut self, written: u64) {
        if let Some(q) = &self.state.quota {
            q.release(self.bytes.saturating_sub(written));
        }
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            if let Some(q) = &self.state.quota {
                q.release(self.bytes);
            }
        }
    }
}

pub async fn upload(
    state: &Arc<State>,
    ctx: &Ctx,
    dir: PathBuf,
    kind: FileKind,
    name: String,
    req: Request<Incoming>,
) -> crate::handler::Resp {
    let http1 = req.version() < hyper::Version::HTTP_2;
    let failed = match receive(state, ctx, dir, kind, &name, req).await {
        Ok(()) => return plain(StatusCode::OK),
        Err(Failure::Status(s, why)) => {
            state
                .log
                .debug(|| format!("POST {}/{kind}/{name}: {s}: {why}", ctx.repo));
            plain(s)
        }
        Err(Failure::Io(e, what)) => {
            let s = io_status(&e);
            state
                .log
                .error(&format!("POST {}/{}/{name}: {what}: {e}", ctx.repo, kind));
            plain(s)
        }
    };
    closing(failed, http1)
}

/// A refused upload may leave part of its body unread, so the connection
/// cannot carry another request: say so, or the client sends its next
/// request on a connection the server is closing.
fn closing(mut r: crate::handler::Resp, http1: bool) -> crate::handler::Resp {
    if http1 {
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    r
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking task panicked")
}

async fn receive(
    state: &Arc<State>,
    ctx: &Ctx,
    repo_dir: PathBuf,
    kind: FileKind,
    name: &str,
    req: Request<Incoming>,
) -> Result<(), Failure> {
    let backend = LocalBackend::new(&repo_dir);
    let target = backend
        .path_of(kind, name)
        .map_err(|_| Failure::Status(StatusCode::NOT_FOUND, "invalid name"))?;
    let dir = backend.dir_of(kind, name);

    // Refuse before reading the body: an existing file, a missing repository.
    let (d, t, r) = (dir.clone(), target.clone(), repo_dir.clone());
    blocking(move || -> Result<(), Failure> {
        if t.symlink_metadata().is_ok() {
            return Err(Failure::Status(StatusCode::FORBIDDEN, "the file exists"));
        }
        if !r.is_dir() {
            return Err(Failure::Status(
                StatusCode::NOT_FOUND,
                "the repository does not exist",
            ));
        }
        if !d.is_dir() {
            std::fs::create_dir_all(&d).map_err(|e| Failure::Io(e, "creating the directory"))?;
        }
        Ok(())
    })
    .await?;

    let declared: Option<u64> = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut reservation = Reservation {
        state,
        bytes: 0,
        kept: false,
    };
    if let Some(n) = declared {
        if !reservation.grow(n) {
            return Err(Failure::Status(
                StatusCode::INSUFFICIENT_STORAGE,
                "the upload would pass --max-size",
            ));
        }
    }

    // One buffer per upload, and a bounded number of uploads at a time.
    let _slot = state
        .uploads
        .acquire()
        .await
        .expect("the upload semaphore is never closed");
    let (d, n) = (dir.clone(), name.to_string());
    let mut file = blocking(move || PendingFile::create(&d, &n))
        .await
        .map_err(|e| Failure::Io(e, "creating a temporary file"))?;
    // No hashing at all where nothing is checked (config, --no-verify-upload).
    let verify = kind != FileKind::Config && state.verify_upload;
    let mut hasher = verify.then(Sha256::new);
    // The frames as hyper hands them over (no copy), written together.
    let mut buf: Vec<Bytes> = Vec::new();
    let mut buffered = 0usize;
    let mut written: u64 = 0;
    let mut body = req.into_body();
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(f)) => f,
            // The client went away or sent a malformed body (rest-server: 400).
            Some(Err(_)) => {
                return Err(Failure::Status(
                    StatusCode::BAD_REQUEST,
                    "the request body ended early",
                ))
            }
        };
        let Ok(data): Result<Bytes, _> = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > reservation.bytes && !reservation.grow(written - reservation.bytes) {
            return Err(Failure::Status(
                StatusCode::INSUFFICIENT_STORAGE,
                "the upload passed --max-size",
            ));
        }
        buffered += data.len();
        buf.push(data);
        if buffered >= BUFFER {
            (file, hasher, buf) = flush(file, hasher, buf).await?;
            buffered = 0;
        }
    }
    if !buf.is_empty() {
        (file, hasher, buf) = flush(file, hasher, buf).await?;
    }
    drop(buf);
    if let Some(n) = declared {
        if n != written {
            return Err(Failure::Status(
                StatusCode::BAD_REQUEST,
                "the body is shorter than its Content-Length",
            ));
        }
    }
    if hasher.is_some_and(|h| hex::encode(h.finalize()) != name) {
        return Err(Failure::Status(
            StatusCode::BAD_REQUEST,
            "the SHA-256 of the body does not match the name",
        ));
    }
    blocking(move || file.commit()).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Status(StatusCode::FORBIDDEN, "the file appeared during the upload")
        } else {
            Failure::Io(e, "storing the file")
        }
    })?;
    reservation.keep(written);
    if kind != FileKind::Config {
        state
            .metrics
            .record(&ctx.user, &ctx.repo, kind.dir(), Op::Write, written);
    }
    Ok(())
}

type Flushed = (PendingFile, Option<Sha256>, Vec<Bytes>);

async fn flush(
    mut file: PendingFile,
    mut hasher: Option<Sha256>,
    mut buf: Vec<Bytes>,
) -> Result<Flushed, Failure> {
    blocking(move || {
        for chunk in &buf {
            if let Some(h) = hasher.as_mut() {
                h.update(chunk);
            }
            file.write_all(chunk)?;
        }
        buf.clear();
        Ok((file, hasher, buf))
    })
    .await
    .map_err(|e| Failure::Io(e, "writing the temporary file"))
}
