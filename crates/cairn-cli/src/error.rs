//! The CLI's errors: what the library reports ([`cairn_repository::Error`],
//! kept whole, its cause included) and the two kinds only a command line
//! has: arguments that make no sense ([`Error::Usage`]) and a child process
//! the CLI runs that failed ([`Error::Command`], e.g. `--password-command`).
//! `main` turns each into one line on stderr and its exit code, in one
//! place (`exit_code`).

use cairn_repository::Kind;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The library's error (repository, engine, backend).
    Repo(cairn_repository::Error),
    /// Arguments or option values that are invalid or do not go together
    /// (clap's own checks exit with 2 before any command runs).
    Usage(String),
    /// A child process the CLI runs failed, or could not be run.
    Command {
        message: String,
        source: Option<std::io::Error>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn command(message: impl Into<String>, source: Option<std::io::Error>) -> Self {
        Error::Command {
            message: message.into(),
            source,
        }
    }

    /// The library's kind of error, if it is one.
    pub fn kind(&self) -> Option<&Kind> {
        match self {
            Error::Repo(e) => Some(&e.kind),
            _ => None,
        }
    }

    /// The message without the cause's text.
    pub fn message(&self) -> &str {
        match self {
            Error::Repo(e) => &e.message,
            Error::Usage(m) | Error::Command { message: m, .. } => m,
        }
    }

    /// A library error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error::Repo(cairn_repository::Error::new(kind, message))
    }

    /// A local I/O error while doing `what`.
    pub fn io(e: std::io::Error, what: impl fmt::Display) -> Self {
        Error::Repo(cairn_repository::Error::io(e, what))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::Repo(cairn_repository::Error::not_found(message))
    }

    pub fn corrupt(what: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Error::Repo(cairn_repository::Error::corrupt(what, detail))
    }

    pub fn format(what: impl fmt::Display, e: cairn_repository::format::FormatError) -> Self {
        Error::Repo(cairn_repository::Error::format(what, e))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Repo(e) => e.fmt(f),
            Error::Usage(m) | Error::Command { message: m, .. } => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Repo(e) => e.source(),
            Error::Usage(_) => None,
            Error::Command { source, .. } => source
                .as_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

impl From<cairn_repository::Error> for Error {
    fn from(e: cairn_repository::Error) -> Self {
        Error::Repo(e)
    }
}

impl From<cairn_repository::backend::BackendError> for Error {
    fn from(e: cairn_repository::backend::BackendError) -> Self {
        Error::Repo(e.into())
    }
}
