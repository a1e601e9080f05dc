//! One error type for the repository and the engine: a kind (what a
//! caller decides on: an exit code, whether a retry can help), a one-line
//! message that names the object concerned, and the cause as
//! [`std::error::Error::source`]. Kinds are the library's: how a command
//! line was misused is the CLI's business, not a kind here.

use cairn_backend::{BackendError, ErrorKind as BackendKind};
use cairn_format::FormatError;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No repository at the location.
    NoRepository,
    /// `init` found a repository already there.
    AlreadyInitialized,
    /// No key file accepts the password.
    WrongPassword,
    /// The location holds a restic repository: cairn reads it only as the
    /// source of `copy --from-repo`.
    ResticRepository,
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
    /// Local I/O: the backup source (files, a stdin command) or the
    /// restore target.
    Io,
    /// The caller asked for something invalid: a malformed id, pattern,
    /// count or duration, or an operation that is refused (removing the
    /// only key).
    InvalidInput,
    Interrupted,
}

/// A kind, a one-line message naming the object concerned, and the
/// underlying error when there is one ([`std::error::Error::source`]).
/// The message already says what the source says: print the message.
#[derive(Clone, Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with `cause` as its source.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
    }

    /// The same error (kind, source) with `what` before its message, e.g.
    /// `directory /a: ...`.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
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
        Error::new(kind, format!("{what}: {e}")).with_source(e)
    }

    pub fn io(e: std::io::Error, what: impl fmt::Display) -> Self {
        let message = if cairn_backend::is_disk_full(&e) {
            format!("{what}: no space left on device")
        } else {
            format!("{what}: {e}")
        };
        Error::new(Kind::Io, message).with_source(e)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Kind::InvalidInput, message)
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Error::new(Kind::Backend(e.kind), e.message.clone()).with_source(e)
    }
}

/// The restic reader's errors, for the engine's copy from restic.
impl From<cairn_restic::Error> for Error {
    fn from(e: cairn_restic::Error) -> Self {
        use cairn_restic::Kind as R;
        let kind = match e.kind {
            R::NoRepository => Kind::NoRepository,
            R::NotRestic => Kind::InvalidInput,
            R::WrongPassword => Kind::WrongPassword,
            R::Corrupt => Kind::Corrupt,
            R::Unsupported => Kind::Unsupported,
            R::NotFound => Kind::NotFound,
            R::Backend(k) => Kind::Backend(k),
        };
        Error::new(kind, e.message.clone()).with_source(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn errors_carry_their_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no access");
        let e = Error::io(io, "writing /t/f");
        assert_eq!(e.kind, Kind::Io);
        assert_eq!(e.message, "writing /t/f: no access");
        let cause = e.source().expect("a source");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::PermissionDenied
        );
        // Context keeps the kind and the source.
        let e = e.context("restoring");
        assert_eq!(e.message, "restoring: writing /t/f: no access");
        assert!(e.source().is_some());

        let b = BackendError::new(BackendKind::NotFound, "data/ab: not found");
        let e = Error::from(b);
        assert_eq!(e.kind, Kind::Backend(BackendKind::NotFound));
        assert!(e.source().unwrap().downcast_ref::<BackendError>().is_some());

        assert!(Error::invalid("bad").source().is_none());
    }
}
