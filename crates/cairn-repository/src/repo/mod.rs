//! A repository: its backend, its master key and config, and the
//! in-memory index. One `impl Repository` block per concern:
//!
//! - [`keys`]: init and open (key files, config), adding keys;
//! - [`files`]: files named by the SHA-256 of their bytes, checked on read;
//! - [`index_files`]: index files, loading the index, pack headers and the
//!   listing of stored packs;
//! - [`blobs`]: reading and checking blobs and trees;
//! - [`snapshots`]: saving, loading, listing and choosing snapshots.

mod blobs;
mod files;
mod index_files;
mod keys;
mod snapshots;

pub use keys::ConfigRepair;
pub use snapshots::{SnapshotFilter, SnapshotsAndErrors};

use crate::index::Index;
use cairn_backend::Backend;
use cairn_format::chunker::Chunker;
use cairn_format::config::Config;
use cairn_format::crypto::{Cipher, KdfParams, MasterKey};
use cairn_format::Id;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many files to fetch at once when loading indexes and snapshots.
const LOAD_THREADS: usize = 8;

/// Choices made when opening or creating a repository.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// zstd level for new blobs; `None` stores them uncompressed.
    pub compression: Option<i32>,
    /// scrypt parameters for new key files.
    pub kdf: KdfParams,
    pub hostname: String,
    pub username: String,
    /// A key file id (or a unique prefix of one) to try first when opening.
    pub key_hint: Option<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            compression: Some(2),
            kdf: KdfParams::DEFAULT,
            hostname: String::new(),
            username: String::new(),
            key_hint: None,
        }
    }
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    cipher: Cipher,
    config: Config,
    chunker: Chunker,
    key_id: Id,
    options: OpenOptions,
    index: RwLock<Index>,
    /// Key files skipped as damaged when this repository was opened.
    damaged_keys: Vec<crate::error::Error>,
}

impl Repository {
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub fn key(&self) -> &MasterKey {
        &self.key
    }
    pub fn key_id(&self) -> Id {
        self.key_id
    }
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    pub fn options(&self) -> &OpenOptions {
        &self.options
    }
    pub fn location(&self) -> String {
        self.backend.location()
    }

    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap()
    }
    pub fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap()
    }
}
