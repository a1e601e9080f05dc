//! Backends store repository files: opaque, immutable byte strings, each
//! named by a [`FileKind`] and a name (64 lowercase hex characters; the
//! config has the name `config`).
//!
//! The repository layer above never assumes more than this trait's
//! contracts, so any store that keeps them (a local directory, a REST
//! server, SFTP, S3) can hold a repository. Cross-cutting behaviour (retries,
//! caching) belongs in wrappers around a backend, not inside one.

pub mod cache;
pub mod conformance;
mod crash;
mod dryrun;
mod limit;
mod local;
mod memory;
mod retry;
mod words;

pub use cache::CacheBackend;
pub use crash::{CrashPointBackend, CRASH_EXIT_CODE};
pub use dryrun::DryRunBackend;
pub use limit::{LimitBackend, RateLimit};
pub use local::{fsync_dir, rename_noreplace, LocalBackend, PendingFile};
pub use memory::MemoryBackend;
pub use retry::{RetryBackend, RetryPolicy};
pub use words::split_words;

use std::fmt;

/// The kinds of files in a repository, each in its own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Config,
    Key,
    Lock,
    Snapshot,
    Index,
    /// Pack files, stored under `data/<first two hex chars>/`.
    Data,
}

impl FileKind {
    pub const ALL: [FileKind; 6] = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Lock,
        FileKind::Snapshot,
        FileKind::Index,
        FileKind::Data,
    ];

    /// Directory name in the repository (and path segment in the REST protocol).
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Key => "keys",
            FileKind::Lock => "locks",
            FileKind::Snapshot => "snapshots",
            FileKind::Index => "index",
            FileKind::Data => "data",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

/// A listed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file (or the repository) does not exist.
    NotFound,
    /// A write found a file of that name already there.
    AlreadyExists,
    /// Worth retrying: connection reset, timeout, server error.
    Transient,
    /// The store is full (ENOSPC, quota, HTTP 507).
    NoSpace,
    /// Credentials refused or permission denied.
    Denied,
    /// Anything else; retrying will not help.
    Permanent,
}

/// A backend failure: what kind, and a one-line message naming the operation and the object.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
        }
    }

    /// Classify an I/O error for `what` (an operation and a path).
    pub fn io(err: std::io::Error, what: impl fmt::Display) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::AlreadyExists => ErrorKind::AlreadyExists,
            K::PermissionDenied => ErrorKind::Denied,
            K::Interrupted
            | K::TimedOut
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe => ErrorKind::Transient,
            _ if is_disk_full(&err) => ErrorKind::NoSpace,
            _ => ErrorKind::Permanent,
        };
        let detail = match kind {
            ErrorKind::NoSpace => "no space left on device".to_string(),
            _ => err.to_string(),
        };
        BackendError {
            kind,
            message: format!("{what}: {detail}"),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// Is this I/O error a full disk (ENOSPC) or an exhausted quota (EDQUOT)?
/// The one test for it, used by every layer: a backend reports
/// [`ErrorKind::NoSpace`], the server answers 507, a restore stops.
pub fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Storage for repository files.
///
/// Contracts, which every implementation keeps and the conformance suite checks:
/// - `write` is atomic and durable: when it returns Ok, the whole file is
///   stored and survives a crash; a failed or interrupted write leaves no
///   file under that name. It never overwrites: an existing name gives
///   `ErrorKind::AlreadyExists` (callers writing content-addressed files may
///   treat that as success, since the same name means the same bytes).
/// - `read_range` returns exactly the bytes asked for, or an error; reading
///   past the end is an error, not a short read.
/// - `remove` of a missing file succeeds (idempotent).
/// - `list` returns every stored file of a kind, in no particular order, and
///   never an unfinished write; names that are not valid file names (temp
///   files) are skipped.
/// - Missing objects are `ErrorKind::NotFound`, for every method.
pub trait Backend: Send + Sync {
    /// Where this backend points, for messages (never contains a password).
    fn location(&self) -> String;

    /// Create the repository's directories (idempotent).
    fn create(&self) -> Result<()>;

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>>;

    /// Size of a file, or `NotFound`.
    fn stat(&self, kind: FileKind, name: &str) -> Result<u64>;

    /// `length: None` reads to the end of the file.
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>>;

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;

    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;

    /// How many writes are worth running at once: 1 for a local disk, more
    /// for a network store whose latency hides behind parallel requests.
    fn write_concurrency(&self) -> usize {
        4
    }

    /// Start a data file written piece by piece and named when complete
    /// (packs are named by the SHA-256 of their bytes, known only at the
    /// end). `None`: this backend cannot stream, and the caller keeps the
    /// file in memory and calls [`Backend::write`]. The same contract as
    /// `write` holds for the committed file.
    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        Ok(None)
    }

    /// Remove temporary files that interrupted writers left behind and that
    /// nobody has written to for `older_than` (a running writer keeps its
    /// file fresh). Returns how many were removed. Backends that leave no
    /// temporary files keep the default.
    fn remove_stale_temporaries(&self, _older_than: std::time::Duration) -> Result<usize> {
        Ok(0)
    }

    /// Something the repository learned that a wrapper may use (the cache
    /// keys its files by repository id and keeps the packs of tree blobs).
    /// Backends that store files ignore it; wrappers forward it.
    fn hint(&self, _hint: &Hint<'_>) {}

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.read_range(kind, name, 0, None)
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        match self.stat(kind, name) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// See [`Backend::hint`].
#[derive(Clone, Copy, Debug)]
pub enum Hint<'a> {
    /// The repository is open; `id` (lowercase hex) is its id from the
    /// config, the same at every location that holds a copy of it.
    Opened { id: &'a str },
    /// These data files hold only tree blobs: the metadata that every
    /// listing, restore and re-backup reads again.
    TreePacks(&'a [String]),
    /// The data file about to be written under this name holds only tree
    /// blobs (a backup's new trees, which the next run reads again).
    TreePack(&'a str),
}

/// A shared backend is a backend, so wrappers compose over `Arc<dyn Backend>`.
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn create(&self) -> Result<()> {
        (**self).create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        (**self).list(kind)
    }
    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        (**self).stat(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        (**self).read_range(kind, name, offset, length)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        (**self).write(kind, name, data)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        (**self).remove(kind, name)
    }
    fn write_concurrency(&self) -> usize {
        (**self).write_concurrency()
    }
    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        (**self).data_writer()
    }
    fn remove_stale_temporaries(&self, older_than: std::time::Duration) -> Result<usize> {
        (**self).remove_stale_temporaries(older_than)
    }
    fn hint(&self, hint: &Hint<'_>) {
        (**self).hint(hint)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        (**self).read(kind, name)
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        (**self).exists(kind, name)
    }
}

/// A data file being streamed to storage; see [`Backend::data_writer`].
/// Dropped without [`DataWriter::commit`], nothing becomes visible. A
/// writer cannot be rewound: after a transient failure of its writes or
/// commit, [`RetryBackend`] writes the whole file again through a new one.
pub trait DataWriter: Send {
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
    /// Make the file durable and visible as `data/<name>`. A file of that
    /// name already there is `AlreadyExists` (same name, same bytes).
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

/// Is `name` a valid name for a file of `kind`?
pub fn valid_name(kind: FileKind, name: &str) -> bool {
    match kind {
        FileKind::Config => name == "config",
        _ => {
            name.len() == 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
    }
}
