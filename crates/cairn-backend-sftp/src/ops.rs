//! File operations over one SFTP session: each turns its replies into a
//! value or an [`OpError`], which still holds the server's status code so
//! the caller can decide (a failed MKDIR of a directory that exists is
//! fine; a failed RENAME onto an existing file is `AlreadyExists`).
//!
//! Transfers are pipelined: up to [`window`] READs or WRITEs are in flight
//! per transfer, each of the session's chunk size, so a 100 MiB pack costs
//! a handful of round trips of latency, not one per chunk.

use crate::conn::{Conn, Reply, Ticket};
use crate::protocol::*;
use cairn_backend::{BackendError, ErrorKind, Result};
use std::collections::VecDeque;

/// Bytes in flight per transfer (divided into the session's chunks).
const WINDOW_BYTES: usize = 4 * 1024 * 1024;

/// How many requests of `chunk` bytes a transfer keeps in flight.
pub fn window(chunk: u32) -> usize {
    (WINDOW_BYTES / chunk as usize).clamp(4, 128)
}

/// A failed operation: the server's status, or a failure of the session.
#[derive(Debug)]
pub enum OpError {
    Status(Status),
    Session(BackendError),
}

impl From<BackendError> for OpError {
    fn from(e: BackendError) -> Self {
        OpError::Session(e)
    }
}

impl OpError {
    pub fn code(&self) -> Option<u32> {
        match self {
            OpError::Status(s) => Some(s.code),
            OpError::Session(_) => None,
        }
    }

    /// The backend error, naming `what` (an operation and an object).
    pub fn context(self, what: &str) -> BackendError {
        match self {
            OpError::Status(s) => {
                let kind = match s.code {
                    FX_NO_SUCH_FILE => ErrorKind::NotFound,
                    FX_PERMISSION_DENIED => ErrorKind::Denied,
                    FX_NO_CONNECTION | FX_CONNECTION_LOST => ErrorKind::Transient,
                    FX_NO_SPACE_ON_FILESYSTEM | FX_QUOTA_EXCEEDED => ErrorKind::NoSpace,
                    _ => ErrorKind::Permanent,
                };
                BackendError::new(kind, format!("{what}: {}", s.text()))
            }
            OpError::Session(e) => BackendError::new(e.kind, format!("{what}: {}", e.message)),
        }
    }
}

pub type OpResult<T> = std::result::Result<T, OpError>;

fn unexpected(r: &Reply) -> OpError {
    let what = match r {
        Reply::Status(_) => "STATUS",
        Reply::Handle(_) => "HANDLE",
        Reply::Data(_) => "DATA",
        Reply::Name(_) => "NAME",
        Reply::Attrs(_) => "ATTRS",
        Reply::Extended(_) => "EXTENDED_REPLY",
    };
    OpError::Session(BackendError::new(
        ErrorKind::Permanent,
        format!("unexpected {what} reply from the server"),
    ))
}

fn status_of(r: Reply) -> OpResult<()> {
    match r {
        Reply::Status(s) if s.code == FX_OK => Ok(()),
        Reply::Status(s) => Err(OpError::Status(s)),
        r => Err(unexpected(&r)),
    }
}

/// Wait for a request whose success is a STATUS OK.
pub fn done(t: Ticket) -> OpResult<()> {
    status_of(t.wait()?)
}

fn handle_of(r: Reply) -> OpResult<Vec<u8>> {
    match r {
        Reply::Handle(h) => Ok(h),
        Reply::Status(s) => Err(OpError::Status(s)),
        r => Err(unexpected(&r)),
    }
}

fn attrs_of(r: Reply) -> OpResult<Attrs> {
    match r {
        Reply::Attrs(a) => Ok(a),
        Reply::Status(s) => Err(OpError::Status(s)),
        r => Err(unexpected(&r)),
    }
}

pub fn open(c: &Conn, path: &str, flags: u32) -> OpResult<Vec<u8>> {
    let t = c.send(FXP_OPEN, |p| {
        p.string(path).u32(flags).no_attrs();
    })?;
    handle_of(t.wait()?)
}

/// Open `path` for reading and learn its size: OPEN and STAT travel
/// together, so the size costs no round trip.
pub fn open_sized(c: &Conn, path: &str) -> OpResult<(Vec<u8>, u64)> {
    let open = c.send(FXP_OPEN, |p| {
        p.string(path).u32(FXF_READ).no_attrs();
    })?;
    let st = c.send(FXP_STAT, |p| {
        p.string(path);
    })?;
    let handle = handle_of(open.wait()?)?;
    let size = st
        .wait()
        .map_err(OpError::from)
        .and_then(attrs_of)
        .and_then(|a| {
            a.size.ok_or_else(|| {
                OpError::Session(BackendError::new(
                    ErrorKind::Permanent,
                    "the server gave no size",
                ))
            })
        });
    match size {
        Ok(size) => Ok((handle, size)),
        Err(e) => {
            let _ = close(c, &handle);
            Err(e)
        }
    }
}

pub fn close(c: &Conn, handle: &[u8]) -> OpResult<()> {
    done(c.send(FXP_CLOSE, |p| {
        p.bytes(handle);
    })?)
}

pub fn stat(c: &Conn, path: &str) -> OpResult<Attrs> {
    let t = c.send(FXP_STAT, |p| {
        p.string(path);
    })?;
    attrs_of(t.wait()?)
}

pub fn lstat(c: &Conn, path: &str) -> OpResult<Attrs> {
    let t = c.send(FXP_LSTAT, |p| {
        p.string(path);
    })?;
    attrs_of(t.wait()?)
}

pub fn remove(c: &Conn, path: &str) -> OpResult<()> {
    done(c.send(FXP_REMOVE, |p| {
        p.string(path);
    })?)
}

pub fn send_mkdir(c: &Conn, path: &str) -> Result<Ticket> {
    c.send(FXP_MKDIR, |p| {
        p.string(path).no_attrs();
    })
}

/// Plain SSH_FXP_RENAME: by the v3 protocol, and in OpenSSH's server
/// (`link` then `unlink`), it refuses to replace an existing file.
pub fn rename(c: &Conn, from: &str, to: &str) -> OpResult<()> {
    done(c.send(FXP_RENAME, |p| {
        p.string(from).string(to);
    })?)
}

/// `fsync@openssh.com` on an open file.
pub fn fsync(c: &Conn, handle: &[u8]) -> OpResult<()> {
    done(c.send(FXP_EXTENDED, |p| {
        p.string("fsync@openssh.com").bytes(handle);
    })?)
}

/// Every entry of a directory but `.` and `..`.
pub fn read_dir(c: &Conn, path: &str) -> OpResult<Vec<(String, Attrs)>> {
    let t = c.send(FXP_OPENDIR, |p| {
        p.string(path);
    })?;
    let handle = handle_of(t.wait()?)?;
    let mut out = Vec::new();
    let result = loop {
        let t = match c.send(FXP_READDIR, |p| {
            p.bytes(&handle);
        }) {
            Ok(t) => t,
            Err(e) => break Err(e.into()),
        };
        match t.wait() {
            Ok(Reply::Name(names)) => {
                out.extend(names.into_iter().filter(|(n, _)| n != "." && n != ".."))
            }
            Ok(Reply::Status(s)) if s.code == FX_EOF => break Ok(()),
            Ok(Reply::Status(s)) => break Err(OpError::Status(s)),
            Ok(r) => break Err(unexpected(&r)),
            Err(e) => break Err(e.into()),
        }
    };
    let closed = close(c, &handle);
    result?;
    closed?;
    Ok(out)
}

/// Read exactly `len` bytes at `offset` of an open file, pipelined; a
/// file that ends sooner is an error.
pub fn read_at(c: &Conn, handle: &[u8], offset: u64, len: u64) -> OpResult<Vec<u8>> {
    let chunk = c.read_chunk as u64;
    let mut buf = Vec::with_capacity(len as usize);
    let end = offset + len;
    let mut next = offset;
    let mut inflight: VecDeque<(u64, u32, Ticket)> = VecDeque::new();
    let send = |off: u64, n: u32| {
        c.send(FXP_READ, |p| {
            p.bytes(handle).u64(off).u32(n);
        })
    };
    let win = window(c.read_chunk);
    loop {
        while inflight.len() < win && next < end {
            let n = chunk.min(end - next) as u32;
            inflight.push_back((next, n, send(next, n)?));
            next += n as u64;
        }
        let Some((off, n, t)) = inflight.pop_front() else {
            break;
        };
        // Replies are consumed in order, so the buffer grows in order.
        let got = match t.wait()? {
            Reply::Data(d) if d.len() <= n as usize && !d.is_empty() => d,
            Reply::Status(s) if s.code == FX_EOF => return Err(short_read(buf.len() as u64)),
            Reply::Status(s) => return Err(OpError::Status(s)),
            r => return Err(unexpected(&r)),
        };
        buf.extend_from_slice(&got);
        // A short read (allowed anywhere): fetch the rest of this chunk
        // before taking the replies that follow it.
        let mut at = off + got.len() as u64;
        while at < off + n as u64 {
            let want = (off + n as u64 - at) as u32;
            match send(at, want)?.wait()? {
                Reply::Data(d) if d.len() <= want as usize && !d.is_empty() => {
                    buf.extend_from_slice(&d);
                    at += d.len() as u64;
                }
                Reply::Status(s) if s.code == FX_EOF => return Err(short_read(buf.len() as u64)),
                Reply::Status(s) => return Err(OpError::Status(s)),
                r => return Err(unexpected(&r)),
            }
        }
    }
    Ok(buf)
}

fn short_read(got: u64) -> OpError {
    OpError::Session(BackendError::new(
        ErrorKind::Permanent,
        format!("the file ended after {got} bytes of the range (truncated?)"),
    ))
}

/// WRITEs to an open file, pipelined: at most a window of them in flight;
/// the first failure is reported by the next call.
pub struct Upload {
    handle: Vec<u8>,
    offset: u64,
    inflight: VecDeque<Ticket>,
    window: usize,
}

impl Upload {
    pub fn new(c: &Conn, handle: Vec<u8>) -> Upload {
        Upload {
            handle,
            offset: 0,
            inflight: VecDeque::new(),
            window: window(c.write_chunk),
        }
    }

    pub fn handle(&self) -> &[u8] {
        &self.handle
    }

    /// Send `data` as WRITEs of at most the session's chunk size.
    pub fn write(&mut self, c: &Conn, data: &[u8]) -> OpResult<()> {
        for piece in data.chunks(c.write_chunk as usize) {
            while self.inflight.len() >= self.window {
                done(self.inflight.pop_front().expect("not empty"))?;
            }
            let off = self.offset;
            let t = c.send_with_data(
                FXP_WRITE,
                |p| {
                    p.bytes(&self.handle).u64(off);
                },
                piece,
            )?;
            self.inflight.push_back(t);
            self.offset += piece.len() as u64;
        }
        Ok(())
    }

    /// Wait until every WRITE is acknowledged.
    pub fn drain(&mut self) -> OpResult<()> {
        while let Some(t) = self.inflight.pop_front() {
            done(t)?;
        }
        Ok(())
    }
}
