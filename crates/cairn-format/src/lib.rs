//! cairn's repository format, as specified in `repo-format.md`.
//!
//! Everything here is pure: bytes in, bytes out, no I/O. The layers above
//! (backend, repository, engine) decide where the bytes live.
//!
//! Concepts:
//! - [`Id`]: 32 bytes. Stored files are named by the SHA-256 of their bytes;
//!   blobs are named by the keyed BLAKE3 hash of their plaintext.
//! - [`crypto`]: the master keys, scrypt key derivation, and the sealed
//!   object (XChaCha20-Poly1305 over an optionally zstd-compressed payload).
//! - [`pack`]: how blobs are laid out in a pack file, and its header.
//! - [`index`]: the index file mapping blob id → pack, offset, length.
//! - [`tree`] and [`snapshot`]: the JSON documents describing backed-up trees.
//! - [`chunker`]: content-defined chunking with a secret seed.
//!
//! Invariant: any byte string handed to a `decode`/`open` function may be
//! hostile; they return [`FormatError`], never panic.

pub mod chunker;
pub mod config;
pub mod crypto;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod pack;
pub mod snapshot;
pub mod tree;

pub use id::Id;

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Errors from decoding untrusted bytes.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("authentication failed: data was modified, truncated, or encrypted with another key")]
    Decrypt,
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("unsupported {what} version {found} (this cairn supports version {supported}); upgrade cairn")]
    Version {
        what: &'static str,
        found: u32,
        supported: u32,
    },
}

impl FormatError {
    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        FormatError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// Blob kinds: file content, or a serialized directory (tree).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    Data,
    Tree,
}

impl BlobKind {
    pub fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }
    pub fn from_code(c: u8) -> Result<Self, FormatError> {
        match c {
            0 => Ok(BlobKind::Data),
            1 => Ok(BlobKind::Tree),
            other => Err(FormatError::corrupt(
                "blob kind",
                format!("unknown code {other}"),
            )),
        }
    }
}

impl std::fmt::Display for BlobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        })
    }
}
