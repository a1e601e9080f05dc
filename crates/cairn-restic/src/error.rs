//! The reader's one error type: a kind (what a caller decides on), a
//! one-line message naming the object concerned (`index 1a2b3c4d`,
//! `tree 5e6f7a8b`), and the cause when there is one.

use cairn_backend::{BackendError, ErrorKind as BackendKind};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No restic repository at the location (no `config`).
    NoRepository,
    /// The location holds a repository, but not a restic one.
    NotRestic,
    /// No key file opens with the password.
    WrongPassword,
    /// Stored bytes fail authentication, hashing or parsing.
    Corrupt,
    /// A repository or object version this reader does not know.
    Unsupported,
    /// A blob, snapshot or file that should exist does not.
    NotFound,
    /// The backend failed.
    Backend(BackendKind),
}

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

    /// `what` is corrupt: `detail`.
    pub fn corrupt(what: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Error::new(Kind::Corrupt, format!("{what}: {detail}"))
    }

    /// The same error with `what` before its message.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
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

pub type Result<T> = std::result::Result<T, Error>;
