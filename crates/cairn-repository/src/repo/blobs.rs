//! Reading blobs: locate a blob in the index, read its bytes from its
//! pack, decrypt, and check that it has the indexed length and hashes to
//! its id. A blob that fails any check is corrupt, never returned.

use super::Repository;
use crate::error::{Error, Result};
use crate::index::BlobLocation;
use cairn_backend::FileKind;
use cairn_format::pack::MAX_BLOB_LEN;
use cairn_format::tree::Tree;
use cairn_format::{BlobKind, Id};

impl Repository {
    pub fn lookup(&self, id: &Id) -> Option<BlobLocation> {
        self.index().get(id)
    }

    /// The blob kind an id is indexed as, if any.
    pub fn blob_kind(&self, id: &Id) -> Option<BlobKind> {
        self.lookup(id).map(|l| l.kind)
    }

    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.key.blob_id(data)
    }

    /// Open a blob read from `loc`: it must decrypt, have the indexed
    /// length and hash to its id.
    pub fn open_blob(&self, loc: &BlobLocation, sealed: &[u8]) -> Result<Vec<u8>> {
        self.open_blob_owned(loc, sealed.to_vec())
    }

    /// [`Self::open_blob`] of a buffer the caller gives up: decrypted where
    /// it is (see [`cairn_format::crypto::Cipher::open_owned`]).
    fn open_blob_owned(&self, loc: &BlobLocation, sealed: Vec<u8>) -> Result<Vec<u8>> {
        let plain = self
            .cipher
            .open_owned(sealed, (loc.raw_length as usize).min(MAX_BLOB_LEN))
            .map_err(|e| Error::format(blob_what(loc), e))?;
        self.check_plain(loc, &plain)
            .map_err(|why| Error::corrupt(blob_what(loc), why))?;
        Ok(plain)
    }

    /// A decoded blob has the length the index gives and hashes to its id.
    fn check_plain(
        &self,
        loc: &BlobLocation,
        plain: &[u8],
    ) -> std::result::Result<(), &'static str> {
        if plain.len() != loc.raw_length as usize {
            return Err("length differs from the index");
        }
        if self.key.blob_id(plain) != loc.id {
            return Err("contents do not match the blob id");
        }
        Ok(())
    }

    /// What [`Self::open_blob`] checks, without keeping the plaintext.
    /// `sealed` is decrypted in place.
    pub fn verify_blob(&self, loc: &BlobLocation, sealed: &mut [u8]) -> Result<()> {
        self.with_blob(loc, sealed, |_| ())
    }

    /// Open a blob in place (see [`Cipher::open_in_place`]), check it as
    /// [`Self::open_blob`] does and hand its plaintext to `f`. `f` must not
    /// open blobs itself.
    pub fn with_blob<R>(
        &self,
        loc: &BlobLocation,
        sealed: &mut [u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let checked = self
            .cipher
            .open_in_place(
                sealed,
                (loc.raw_length as usize).min(MAX_BLOB_LEN),
                |plain| self.check_plain(loc, plain).map(|()| f(plain)),
            )
            .map_err(|e| Error::format(blob_what(loc), e))?;
        checked.map_err(|why| Error::corrupt(blob_what(loc), why))
    }

    pub fn read_blob_at(&self, loc: &BlobLocation) -> Result<Vec<u8>> {
        let sealed = self.backend.read_range(
            FileKind::Data,
            &loc.pack.to_hex(),
            loc.offset as u64,
            Some(loc.length as u64),
        )?;
        self.open_blob_owned(loc, sealed)
    }

    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self.lookup(id).ok_or_else(|| {
            Error::corrupt(
                format!("blob {id}"),
                "not in any index (data lost? run `cairn check`)",
            )
        })?;
        self.read_blob_at(&loc)
    }

    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(id)?;
        Tree::from_bytes(&bytes).map_err(|e| Error::format(format!("tree {}", id.short()), e))
    }
}

/// How errors name a blob.
fn blob_what(loc: &BlobLocation) -> String {
    format!(
        "{} blob {} in pack {}",
        loc.kind,
        loc.id.short(),
        loc.pack.short()
    )
}
