//! Files named by their contents: a stored file's name is the SHA-256 of
//! its bytes, checked on every read, so a damaged or misplaced file is
//! reported as corrupt and never used.

use super::Repository;
use crate::error::{Error, Result};
use cairn_backend::{ErrorKind as BackendKind, FileKind};
use cairn_format::Id;

impl Repository {
    /// Store a file named by the SHA-256 of its bytes. Storing the same
    /// bytes twice is not an error.
    pub fn save_file(&self, kind: FileKind, bytes: &[u8]) -> Result<Id> {
        let id = Id::sha256(bytes);
        match self.backend.write(kind, &id.to_hex(), bytes) {
            Ok(()) => Ok(id),
            Err(e) if e.kind == BackendKind::AlreadyExists => Ok(id),
            Err(e) => Err(e.into()),
        }
    }

    /// Read a stored file and check that its bytes match its name.
    pub fn load_file(&self, kind: FileKind, id: &Id) -> Result<Vec<u8>> {
        let bytes = self.backend.read(kind, &id.to_hex())?;
        if Id::sha256(&bytes) != *id {
            return Err(Error::corrupt(
                format!("{kind}/{id}"),
                "contents do not match the file name (SHA-256 mismatch)",
            ));
        }
        Ok(bytes)
    }
}
