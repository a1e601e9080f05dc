//! The index: index files (sealed lists of packs and their blobs), the
//! in-memory [`Index`] loaded from them, pack headers, and the listing of
//! stored packs.
//!
//! Loading reads every index file (a bounded number at once) into a new
//! [`Index`] that replaces the current one; of several locations of a
//! blob, one in a live pack wins.

use super::{Repository, LOAD_THREADS};

/// Sealed index bytes loaded at once (at least one file): what loading
/// holds besides the index itself is a small multiple of this.
const LOAD_BATCH_BYTES: u64 = 4 << 20;
use crate::error::{Error, Kind, Result};
use crate::index::Index;
use crate::parallel::parallel_map;
use cairn_backend::{FileKind, Hint};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::pack::{self, PackEntry};
use cairn_format::{BlobKind, Id};
use std::collections::HashMap;

impl Repository {
    pub fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let sealed = self.load_file(FileKind::Index, id)?;
        let plain = self
            .cipher
            .open(&sealed, 1 << 30)
            .map_err(|e| Error::format(format!("index {}", id.short()), e))?;
        IndexFile::decode(&plain).map_err(|e| Error::format(format!("index {}", id.short()), e))
    }

    pub fn save_index_file(&self, f: &IndexFile) -> Result<Id> {
        let sealed = self.cipher.seal(&f.encode(), Some(3));
        self.save_file(FileKind::Index, &sealed)
    }

    /// The ids of all index files.
    pub fn index_file_ids(&self) -> Result<Vec<Id>> {
        let files = self.backend.list(FileKind::Index)?;
        Ok(files.iter().filter_map(|f| Id::from_hex(&f.name)).collect())
    }

    /// Every stored pack and its size, from the backend's listing of data/.
    pub fn stored_packs(&self) -> Result<HashMap<Id, u64>> {
        let files = self.backend.list(FileKind::Data)?;
        Ok(files
            .into_iter()
            .filter_map(|f| Id::from_hex(&f.name).map(|id| (id, f.size)))
            .collect())
    }

    /// Read every index file into memory.
    pub fn load_index(&self) -> Result<()> {
        self.load_index_files(false, &|_| true).map(|_| ())
    }

    /// Read every index file that can be read into memory, and return the
    /// others with why (for `check`, which reports them and goes on).
    pub fn load_index_lenient(&self) -> Result<Vec<(Id, Error)>> {
        self.load_index_files(true, &|_| true)
    }

    /// As [`Repository::load_index_lenient`], indexing only the packs for
    /// which `keep` is true (e.g. those that are stored, for `repair`).
    pub fn load_index_of_packs(&self, keep: impl Fn(&Id) -> bool) -> Result<Vec<(Id, Error)>> {
        self.load_index_files(true, &keep)
    }

    /// The one index loader: reads the index files into a new [`Index`]
    /// that replaces the current one. `lenient`: a file that cannot be
    /// read is returned with why, else it is the error.
    fn load_index_files(
        &self,
        lenient: bool,
        keep: &dyn Fn(&Id) -> bool,
    ) -> Result<Vec<(Id, Error)>> {
        let files: Vec<(Id, u64)> = self
            .backend
            .list(FileKind::Index)?
            .iter()
            .filter_map(|f| Id::from_hex(&f.name).map(|id| (id, f.size)))
            .collect();
        let mut index = Index::new();
        // An entry takes at least its 32-byte random id in a file (ids do
        // not compress), so this bounds the entries from above.
        let sealed_bytes: u64 = files.iter().map(|f| f.1).sum();
        index.reserve_loading((sealed_bytes / 32) as usize);
        let mut bad = Vec::new();
        // Packs of tree blobs only: every command reads them again, so a
        // cache among the backend's wrappers keeps them.
        let mut tree_packs = Vec::new();
        // Load in batches of about LOAD_BATCH_BYTES (and LOAD_THREADS
        // files at most), so that only a few decoded files are held at once.
        let mut batches: Vec<Vec<Id>> = Vec::new();
        let mut batch_bytes = 0;
        for (id, size) in &files {
            match batches.last_mut() {
                Some(b) if b.len() < LOAD_THREADS && batch_bytes + size <= LOAD_BATCH_BYTES => {
                    b.push(*id);
                    batch_bytes += size;
                }
                _ => {
                    batches.push(vec![*id]);
                    batch_bytes = *size;
                }
            }
        }
        for batch in &batches {
            let loaded = parallel_map(batch, LOAD_THREADS, |id| {
                let r = self.load_index_file(id);
                match r {
                    Err(e) if lenient => Ok(Err(e)),
                    Err(e) if e.kind == Kind::Corrupt => Err(Error::new(
                        Kind::Corrupt,
                        format!(
                            "{}; `cairn repair index` rebuilds the index from the packs",
                            e.message
                        ),
                    )),
                    r => r.map(Ok),
                }
            })?;
            for (id, f) in batch.iter().zip(loaded) {
                match f {
                    Ok(f) => {
                        for p in f.packs.iter().filter(|p| keep(&p.id)) {
                            if p.blobs.iter().all(|b| b.kind == BlobKind::Tree) {
                                tree_packs.push(p.id.to_hex());
                            }
                            index.load_index_pack(p);
                        }
                    }
                    Err(e) => bad.push((*id, e)),
                }
            }
        }
        index.finish_loading();
        *self.index.write().unwrap() = index;
        self.backend.hint(&Hint::TreePacks(&tree_packs));
        Ok(bad)
    }

    /// Read a pack's header (the list of its blobs) from the pack itself.
    pub fn read_pack_header(&self, pack: &Id, size: u64) -> Result<Vec<PackEntry>> {
        let what = || format!("pack {pack}");
        if size < 4 {
            return Err(Error::corrupt(what(), format!("only {size} bytes")));
        }
        // One read usually gets the whole header.
        let guess = size.min(64 * 1024);
        let tail =
            self.backend
                .read_range(FileKind::Data, &pack.to_hex(), size - guess, Some(guess))?;
        let hlen = pack::header_length(size, &tail[tail.len() - 4..])
            .map_err(|e| Error::format(what(), e))? as u64;
        let sealed = if hlen + 4 <= guess {
            tail[tail.len() - 4 - hlen as usize..tail.len() - 4].to_vec()
        } else {
            self.backend
                .read_range(FileKind::Data, &pack.to_hex(), size - 4 - hlen, Some(hlen))?
        };
        pack::parse_header(&self.cipher, &sealed, size).map_err(|e| Error::format(what(), e))
    }

    /// Index packs that are stored but in no index file (left by an
    /// interrupted backup), so their blobs are not uploaded again.
    /// Returns how many packs were recovered.
    pub fn recover_unindexed_packs(&self) -> Result<usize> {
        let stored = self.stored_packs()?;
        let mut orphans: Vec<(Id, u64)> = {
            let index = self.index();
            stored
                .into_iter()
                .filter(|(id, _)| !index.has_pack(id))
                .collect()
        };
        orphans.sort_unstable();
        if orphans.is_empty() {
            return Ok(0);
        }
        let headers = parallel_map(&orphans, LOAD_THREADS, |(id, size)| {
            Ok::<_, Error>(self.read_pack_header(id, *size).ok())
        })?;
        let mut file = IndexFile::default();
        for ((id, _), h) in orphans.iter().zip(headers) {
            // An unreadable pack is left for `check` to report; it is simply not reused.
            if let Some(blobs) = h {
                file.packs.push(IndexPack::live(*id, blobs));
            }
        }
        if file.packs.is_empty() {
            return Ok(0);
        }
        self.save_index_file(&file)?;
        let mut index = self.index_mut();
        for p in &file.packs {
            index.add_pack(p.id, &p.blobs);
        }
        index.compact();
        Ok(file.packs.len())
    }
}
