//! `POST {repo}/{type}/{name}` and `POST {repo}/config`: an upload streamed
//! to a temporary file while its SHA-256 is computed.
//!
//! Invariants:
//! - the body is never held whole in memory: at most [`BUFFER`] bytes (plus
//!   one frame) per upload;
//! - a client cannot hold what others need: the shared slots (`max_uploads`)
//!   are taken only to write a buffer to disk, never while waiting on the
//!   client; a user (or, without authentication, an address) has at most
//!   `max_uploads_per_user` uploads in progress; and an upload must bring
//!   `min_upload_rate` bytes a second, averaged over each `io_timeout`, or
//!   it is dropped (408) — so one byte every few seconds holds nothing long;
//! - a file becomes visible only complete, synced and with the right hash
//!   ([`Pending`]: temporary file, fsync, rename without replacing, fsync of
//!   the directory, all relative to the directory's descriptor, so never
//!   through a symbolic link); anything else removes the temporary file;
//! - an existing file is never replaced (403), in any mode;
//! - a directory made for the upload (`data/xx/`) counts against the quota.

use crate::beneath::{self, Dir, Entry};
use crate::handler::{object_dir, plain, Ctx, DirCharge};
use crate::metrics::Op;
use crate::quota::TMP_PREFIX;
use crate::State;
use bytes::Bytes;
use cairn_backend::FileKind;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// Bytes gathered before they are hashed and written on a blocking thread.
pub const BUFFER: usize = 256 << 10;

enum Failure {
    Status(StatusCode, &'static str),
    Io(std::io::Error, &'static str),
}

/// A file being written in its directory: `.tmp-serve-<name>-<random>`
/// until [`Pending::commit`]; removed if dropped before.
struct Pending {
    dir: Dir,
    tmp: String,
    name: String,
    file: Option<File>,
}

impl Pending {
    fn create(dir: Dir, name: &str) -> std::io::Result<Pending> {
        let tmp = format!("{TMP_PREFIX}{name}-{:016x}", rand::random::<u64>());
        let file = dir.create_new(&tmp)?;
        Ok(Pending {
            dir,
            tmp,
            name: name.to_string(),
            file: Some(file),
        })
    }

    /// fsync, rename into place without replacing (an existing file gives
    /// `AlreadyExists` and stays), fsync the directory.
    fn commit(mut self) -> std::io::Result<()> {
        let f = self.file.take().expect("committed once");
        f.sync_all()?;
        drop(f);
        self.dir.rename_noreplace(&self.tmp, &self.name)?;
        self.tmp.clear();
        self.dir.sync()
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.tmp.is_empty() {
            self.file = None;
            let _ = self.dir.unlink(&self.tmp);
        }
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
    repo: Vec<String>,
    kind: FileKind,
    name: String,
    req: Request<Incoming>,
) -> crate::handler::Resp {
    let http1 = req.version() < hyper::Version::HTTP_2;
    let failed = match receive(state, ctx, repo, kind, &name, req).await {
        Ok(()) => return plain(StatusCode::OK),
        Err(Failure::Status(s, why)) => {
            state
                .log
                .debug(|| format!("POST {}/{kind}/{name}: {s}: {why}", ctx.repo));
            plain(s)
        }
        Err(Failure::Io(e, what)) => crate::handler::io_error(
            state,
            &format!("POST {}/{kind}/{name}: {what}", ctx.repo),
            &e,
        ),
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
    repo: Vec<String>,
    kind: FileKind,
    name: &str,
    req: Request<Incoming>,
) -> Result<(), Failure> {
    // Refuse before reading the body: an existing file, a missing repository.
    let (st, n) = (state.clone(), name.to_string());
    let dir = blocking(move || -> Result<Dir, Failure> {
        let repo_dir = match st
            .fs
            .dir(&repo.iter().map(String::as_str).collect::<Vec<_>>())
        {
            Ok(d) => d,
            Err(e) if beneath::is_not_found(&e) => {
                return Err(Failure::Status(
                    StatusCode::NOT_FOUND,
                    "the repository does not exist",
                ))
            }
            Err(e) => return Err(Failure::Io(e, "opening the repository")),
        };
        let below = object_dir(&[], kind, &n);
        let charge = DirCharge::new(&st, 0).expect("nothing to reserve");
        let mut d = repo_dir;
        for sub in &below {
            d = d
                .create_dir(sub, &|| charge.may_create(), &|| charge.not_made())
                .map_err(|e| Failure::Io(e, "creating the directory"))?;
        }
        match d.stat(&n) {
            Ok(None) => Ok(d),
            Ok(Some(Entry::File(_))) => {
                Err(Failure::Status(StatusCode::FORBIDDEN, "the file exists"))
            }
            Ok(Some(_)) => Err(Failure::Status(
                StatusCode::FORBIDDEN,
                "something else than a file has the name",
            )),
            Err(e) => Err(Failure::Io(e, "checking the name")),
        }
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

    // A user's uploads in progress are bounded (without authentication,
    // an address's): past that, wait a little, then 429. Half the I/O
    // timeout: the connection's own read timeout must not end it first.
    let key = if ctx.user.is_empty() {
        crate::access::addr_key(ctx.peer.ip()).to_string()
    } else {
        format!("user:{}", ctx.user)
    };
    let Some(_user_slot) = state.user_uploads.acquire(&key, state.io_timeout / 2).await else {
        return Err(Failure::Status(
            StatusCode::TOO_MANY_REQUESTS,
            "too many uploads of this user in progress (--max-uploads-per-user)",
        ));
    };
    let n = name.to_string();
    let mut file = blocking(move || Pending::create(dir, &n))
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
    // The client must bring `need` bytes in each window of `io_timeout` of
    // waiting on it (time spent writing to disk does not count).
    let window = state.io_timeout;
    let need = state
        .min_upload_rate
        .saturating_mul(window.as_secs().max(1));
    let mut window_start = Instant::now();
    let mut window_bytes = 0u64;
    loop {
        let next = tokio::time::timeout_at((window_start + window).into(), body.frame()).await;
        let frame = match next {
            Err(_) => {
                return Err(Failure::Status(
                    StatusCode::REQUEST_TIMEOUT,
                    "the upload is slower than --min-upload-rate",
                ))
            }
            Ok(None) => break,
            Ok(Some(Ok(f))) => f,
            // The client went away or sent a malformed body (rest-server: 400).
            Ok(Some(Err(_))) => {
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
        window_bytes += data.len() as u64;
        if window_bytes >= need {
            window_start = Instant::now();
            window_bytes = 0;
        }
        if written > reservation.bytes && !reservation.grow(written - reservation.bytes) {
            return Err(Failure::Status(
                StatusCode::INSUFFICIENT_STORAGE,
                "the upload passed --max-size",
            ));
        }
        buffered += data.len();
        buf.push(data);
        if buffered >= BUFFER {
            let paused = Instant::now();
            (file, hasher, buf) = flush(state, file, hasher, buf).await?;
            window_start += paused.elapsed();
            buffered = 0;
        }
    }
    if !buf.is_empty() {
        (file, hasher, buf) = flush(state, file, hasher, buf).await?;
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

type Flushed = (Pending, Option<Sha256>, Vec<Bytes>);

/// Hash and write the buffered frames, holding one of the shared upload
/// slots only for that.
async fn flush(
    state: &State,
    mut file: Pending,
    mut hasher: Option<Sha256>,
    mut buf: Vec<Bytes>,
) -> Result<Flushed, Failure> {
    let _slot = state
        .uploads
        .acquire()
        .await
        .expect("the upload semaphore is never closed");
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
