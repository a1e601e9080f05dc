//! One error type for the repository and everything above it: a kind (which
//! decides the exit code and whether a retry can help) and a one-line
//! message that names the object concerned.

use cairn_backend::{BackendError, ErrorKind as BackendKind};
use cairn_format::FormatError;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No repository at the location.
    NoRepository,
    /// `init` found a repository already there.
    AlreadyInitialized,
    /// No key file accepts the password.
    WrongPassword,
    /// A named thing (snapshot, path, blob) does not exist.
    NotFound,
    /// A snapshot id prefix matches several snapshots.
    Ambiguous,
    /// Stored data fails decryption, hashing or parsing.
    Corrupt,
    /// The repository format is newer than this program.
    Unsupported,
    /// The backend failed.
    Backend(BackendKind),
    /// Local file system I/O (source or restore target).
    Io,
    /// The user asked for something invalid.
    Usage,
    /// A child process (password command, stdin command) failed.
    Command,
    Interrupted,
}

#[derive(Clone, Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn corrupt(what: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Error::new(Kind::Corrupt, format!("{what}: {detail}"))
    }

    /// A format error while handling `what` (e.g. "index 1a2b3c4d").
    pub fn format(what: impl fmt::Display, e: FormatError) -> Self {
        let kind = match e {
            FormatError::Version { .. } => Kind::Unsupported,
            _ => Kind::Corrupt,
        };
        Error::new(kind, format!("{what}: {e}"))
    }

    pub fn io(e: std::io::Error, what: impl fmt::Display) -> Self {
        if e.raw_os_error() == Some(28) {
            return Error::new(Kind::Io, format!("{what}: no space left on device"));
        }
        Error::new(Kind::Io, format!("{what}: {e}"))
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(Kind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(Kind::NotFound, message)
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, Kind::Backend(BackendKind::Transient))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Error { kind: Kind::Backend(e.kind), message: e.message }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
