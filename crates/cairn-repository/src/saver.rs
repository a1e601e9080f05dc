//! The write path: blobs in, packs and index files out.
//!
//! ```text
//! save() ──(dedup: index ∪ in-flight)──▶ seal workers ──▶ open pack (data | tree)
//!                                          compress+seal      │ full
//!                                                             ▼
//!                      index checkpoint ◀── uploaders ◀── finished packs
//! ```
//!
//! Memory is bounded: at most `2 × workers` blobs wait for sealing, one pack
//! per kind is open, and at most `uploaders + 1` finished packs wait for
//! upload. A blob id is reported "known" as soon as it is queued, so a
//! second copy of a chunk is never queued twice (the in-flight set), and is
//! moved into the index once its pack is stored.
//!
//! Index checkpoints: every `checkpoint_packs` packs (or `checkpoint_interval`),
//! the uploader writes an index file for the packs stored since the last
//! one. An interrupted backup therefore loses at most the packs after the
//! last checkpoint from the index, and those are recovered from their
//! headers by [`Repository::recover_unindexed_packs`] on the next run.

use crate::error::{Error, Result};
use crate::packer::{Body, FinishedPack, OpenPack};
use crate::repo::Repository;
use cairn_backend::{ErrorKind as BackendKind, FileKind, Hint};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::{BlobKind, Id};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SaverOptions {
    /// Target pack size in bytes.
    pub pack_size: usize,
    /// Threads compressing and sealing blobs.
    pub workers: usize,
    /// Threads uploading finished packs; 0: the sealing thread that fills a
    /// pack writes it (fewest packs in memory, right for a local disk).
    pub uploaders: usize,
    pub checkpoint_packs: usize,
    pub checkpoint_interval: Duration,
}

impl Default for SaverOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SaverOptions {
            pack_size: 16 << 20,
            workers: cpus,
            uploaders: 0,
            checkpoint_packs: 16,
            checkpoint_interval: Duration::from_secs(30),
        }
    }
}

/// What a saver added to the repository.
#[derive(Clone, Debug, Default)]
pub struct SaverStats {
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub data_added: u64,
    /// Bytes of new packs written.
    pub data_added_packed: u64,
    pub packs: u64,
    pub index_files: u64,
}

struct Shared {
    repo: Arc<Repository>,
    opts: SaverOptions,
    in_flight: Mutex<HashSet<Id>>,
    /// The pack being filled, per blob kind (created at its first blob).
    open_packs: [Mutex<Option<OpenPack>>; 2],
    error: Mutex<Option<Error>>,
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    data_added: AtomicU64,
    data_added_packed: AtomicU64,
    packs: AtomicU64,
    index_files: AtomicU64,
    checkpoint: Mutex<Checkpoint>,
}

struct Checkpoint {
    pending: Vec<IndexPack>,
    /// Blobs listed in `pending`.
    pending_blobs: usize,
    since: Instant,
}

/// Tree packs are built in memory (see `seal_and_pack`): this bounds what
/// one holds.
const TREE_PACK_SIZE: usize = 4 << 20;

/// An index file is written once it lists this many blobs (as restic's
/// 50,000), so that loading one never needs much memory besides the index.
const INDEX_FILE_BLOBS: usize = 1 << 16;

pub struct BlobSaver {
    shared: Arc<Shared>,
    blobs_tx: Option<Sender<(BlobKind, Id, Vec<u8>)>>,
    packs_tx: Option<Sender<FinishedPack>>,
    workers: Vec<JoinHandle<()>>,
    uploaders: Vec<JoinHandle<()>>,
}

impl Shared {
    fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn failed(&self) -> bool {
        self.error.lock().unwrap().is_some()
    }

    fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap().take()
    }

    fn slot(kind: BlobKind) -> usize {
        match kind {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    /// The size at which a pack of `kind` is finished: tree packs, held in
    /// memory while they fill, at most [`TREE_PACK_SIZE`].
    fn pack_size(&self, kind: BlobKind) -> usize {
        match kind {
            BlobKind::Data => self.opts.pack_size,
            BlobKind::Tree => self.opts.pack_size.min(TREE_PACK_SIZE),
        }
    }

    /// Seal one blob and add it to the open pack of its kind; returns the
    /// pack when it is full.
    fn seal_and_pack(&self, kind: BlobKind, id: Id, data: &[u8]) -> Result<Option<FinishedPack>> {
        let sealed = self
            .repo
            .cipher()
            .seal(data, self.repo.options().compression);
        let full = {
            let mut slot = self.open_packs[Self::slot(kind)].lock().unwrap();
            if slot.is_none() {
                // Tree packs are built in memory and written whole, so
                // that a metadata cache among the backend's wrappers keeps
                // them (the next backup reads them as its parent's trees);
                // data packs stream.
                *slot = Some(OpenPack::new(
                    self.repo.backend().as_ref(),
                    self.pack_size(kind),
                    kind == BlobKind::Data,
                )?);
            }
            let pack = slot.as_mut().expect("just created");
            pack.add(kind, id, &sealed, data.len() as u32)?;
            if pack.size() >= self.pack_size(kind) {
                slot.take()
            } else {
                None
            }
        };
        full.map(|p| p.finish(self.repo.cipher())).transpose()
    }

    fn upload(&self, p: FinishedPack) -> Result<()> {
        let stored = match p.body {
            Body::Bytes(bytes) => {
                let name = p.id.to_hex();
                let backend = self.repo.backend();
                if p.entries.iter().all(|e| e.kind == BlobKind::Tree) {
                    backend.hint(&Hint::TreePack(&name));
                }
                backend.write(FileKind::Data, &name, &bytes)
            }
            Body::Streamed(writer) => writer.commit(&p.id.to_hex()),
        };
        match stored {
            Ok(()) => {}
            Err(e) if e.kind == BackendKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        self.packs.fetch_add(1, Ordering::Relaxed);
        self.data_added_packed.fetch_add(p.size, Ordering::Relaxed);
        // Index before leaving the in-flight set: a concurrent save() sees the blob in one or the other.
        self.repo.index_mut().add_pack(p.id, &p.entries);
        {
            let mut inflight = self.in_flight.lock().unwrap();
            for e in &p.entries {
                inflight.remove(&e.id);
            }
        }
        let due = {
            let mut cp = self.checkpoint.lock().unwrap();
            cp.pending_blobs += p.entries.len();
            cp.pending.push(IndexPack::live(p.id, p.entries));
            if cp.pending.len() >= self.opts.checkpoint_packs
                || cp.pending_blobs >= INDEX_FILE_BLOBS
                || cp.since.elapsed() >= self.opts.checkpoint_interval
            {
                cp.since = Instant::now();
                cp.pending_blobs = 0;
                Some(std::mem::take(&mut cp.pending))
            } else {
                None
            }
        };
        if let Some(packs) = due {
            self.write_index(packs)?;
        }
        Ok(())
    }

    fn write_index(&self, packs: Vec<IndexPack>) -> Result<()> {
        if packs.is_empty() {
            return Ok(());
        }
        self.repo.save_index_file(&IndexFile { packs })?;
        self.index_files.fetch_add(1, Ordering::Relaxed);
        self.repo.index_mut().compact();
        Ok(())
    }
}

impl BlobSaver {
    pub fn new(repo: Arc<Repository>, opts: SaverOptions) -> BlobSaver {
        let workers_n = opts.workers.max(1);
        // Network stores get parallel uploads; a local disk is written inline.
        let uploaders_n = if opts.uploaders == 0 && repo.backend().write_concurrency() > 1 {
            repo.backend().write_concurrency()
        } else {
            opts.uploaders
        };
        let shared = Arc::new(Shared {
            repo,
            open_packs: [Mutex::new(None), Mutex::new(None)],
            opts,
            in_flight: Mutex::new(HashSet::new()),
            error: Mutex::new(None),
            data_blobs: AtomicU64::new(0),
            tree_blobs: AtomicU64::new(0),
            data_added: AtomicU64::new(0),
            data_added_packed: AtomicU64::new(0),
            packs: AtomicU64::new(0),
            index_files: AtomicU64::new(0),
            checkpoint: Mutex::new(Checkpoint {
                pending: Vec::new(),
                pending_blobs: 0,
                since: Instant::now(),
            }),
        });
        // Small queues: every blob or pack waiting in one is memory.
        let (blobs_tx, blobs_rx) = bounded::<(BlobKind, Id, Vec<u8>)>(workers_n);
        let (packs_tx, packs_rx) = bounded::<FinishedPack>(0);
        let workers = (0..workers_n)
            .map(|i| {
                let shared = shared.clone();
                let rx: Receiver<_> = blobs_rx.clone();
                let tx = packs_tx.clone();
                std::thread::Builder::new()
                    .name(format!("seal-{i}"))
                    .spawn(move || {
                        for (kind, id, data) in rx {
                            if shared.failed() {
                                continue; // drain
                            }
                            let full = match shared.seal_and_pack(kind, id, &data) {
                                Ok(full) => full,
                                Err(e) => {
                                    shared.fail(e);
                                    continue;
                                }
                            };
                            if let Some(p) = full {
                                drop(data);
                                if uploaders_n == 0 {
                                    if let Err(e) = shared.upload(p) {
                                        shared.fail(e);
                                    }
                                } else if tx.send(p).is_err() {
                                    break;
                                }
                            }
                        }
                    })
                    .expect("spawn seal worker")
            })
            .collect();
        let uploaders = (0..uploaders_n)
            .map(|i| {
                let shared = shared.clone();
                let rx = packs_rx.clone();
                std::thread::Builder::new()
                    .name(format!("upload-{i}"))
                    .spawn(move || {
                        for p in rx {
                            if shared.failed() {
                                continue;
                            }
                            if let Err(e) = shared.upload(p) {
                                shared.fail(e);
                            }
                        }
                    })
                    .expect("spawn uploader")
            })
            .collect();
        BlobSaver {
            shared,
            blobs_tx: Some(blobs_tx),
            packs_tx: Some(packs_tx),
            workers,
            uploaders,
        }
    }

    pub fn repository(&self) -> &Arc<Repository> {
        &self.shared.repo
    }

    /// Save a blob unless the repository has it or it is already queued.
    /// Returns its id and whether it was new. Blocks while the pipeline is full.
    pub fn save(&self, kind: BlobKind, data: Vec<u8>) -> Result<(Id, bool)> {
        let id = self.shared.repo.blob_id(&data);
        let new = self.save_with_id(kind, id, data)?;
        Ok((id, new))
    }

    /// As [`BlobSaver::save`], with the id already computed by the caller.
    pub fn save_with_id(&self, kind: BlobKind, id: Id, data: Vec<u8>) -> Result<bool> {
        if let Some(e) = self.shared.error.lock().unwrap().clone() {
            return Err(e);
        }
        {
            let mut inflight = self.shared.in_flight.lock().unwrap();
            if inflight.contains(&id) || self.shared.repo.index().contains(&id) {
                return Ok(false);
            }
            inflight.insert(id);
        }
        let counter = match kind {
            BlobKind::Data => &self.shared.data_blobs,
            BlobKind::Tree => &self.shared.tree_blobs,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.shared
            .data_added
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.blobs_tx
            .as_ref()
            .expect("saver used after finish")
            .send((kind, id, data))
            .map_err(|_| Error::new(crate::Kind::Interrupted, "blob saver stopped"))?;
        Ok(true)
    }

    /// Is the blob in the repository or queued?
    pub fn known(&self, id: &Id) -> bool {
        self.shared.in_flight.lock().unwrap().contains(id) || self.shared.repo.index().contains(id)
    }

    /// Bytes of new blobs so far (plaintext) and packs written.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.shared.data_added.load(Ordering::Relaxed),
            self.shared.data_added_packed.load(Ordering::Relaxed),
        )
    }

    /// Flush open packs, wait for every upload, and write the last index
    /// file. Only after this returns Ok may a snapshot reference the blobs.
    pub fn finish(mut self) -> Result<SaverStats> {
        drop(self.blobs_tx.take());
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                self.shared.fail(Error::new(
                    crate::Kind::Interrupted,
                    "a seal worker panicked",
                ));
            }
        }
        let packs_tx = self.packs_tx.take().unwrap();
        if !self.shared.failed() {
            for slot in &self.shared.open_packs {
                let Some(p) = slot.lock().unwrap().take() else {
                    continue;
                };
                let stored = p.finish(self.shared.repo.cipher()).and_then(|p| {
                    if self.uploaders.is_empty() {
                        self.shared.upload(p)
                    } else {
                        let _ = packs_tx.send(p);
                        Ok(())
                    }
                });
                if let Err(e) = stored {
                    self.shared.fail(e);
                }
            }
        }
        drop(packs_tx);
        for u in self.uploaders.drain(..) {
            if u.join().is_err() {
                self.shared
                    .fail(Error::new(crate::Kind::Interrupted, "an uploader panicked"));
            }
        }
        if let Some(e) = self.shared.take_error() {
            return Err(e);
        }
        let pending = std::mem::take(&mut self.shared.checkpoint.lock().unwrap().pending);
        self.shared.write_index(pending)?;
        let s = &self.shared;
        Ok(SaverStats {
            data_blobs: s.data_blobs.load(Ordering::Relaxed),
            tree_blobs: s.tree_blobs.load(Ordering::Relaxed),
            data_added: s.data_added.load(Ordering::Relaxed),
            data_added_packed: s.data_added_packed.load(Ordering::Relaxed),
            packs: s.packs.load(Ordering::Relaxed),
            index_files: s.index_files.load(Ordering::Relaxed),
        })
    }
}

impl Drop for BlobSaver {
    fn drop(&mut self) {
        // Abandoned without finish(): stop the threads; nothing unfinished is indexed.
        drop(self.blobs_tx.take());
        drop(self.packs_tx.take());
        self.shared
            .fail(Error::new(crate::Kind::Interrupted, "backup abandoned"));
        for w in self.workers.drain(..).chain(self.uploaders.drain(..)) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::OpenOptions;
    use cairn_backend::MemoryBackend;
    use cairn_format::crypto::KdfParams;

    fn repo() -> Arc<Repository> {
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        Arc::new(Repository::init(Arc::new(MemoryBackend::new()), b"pw", opts).unwrap())
    }

    #[test]
    fn save_dedup_reload() {
        let repo = repo();
        let saver = BlobSaver::new(
            repo.clone(),
            SaverOptions {
                pack_size: 4096,
                checkpoint_packs: 3,
                ..Default::default()
            },
        );
        let mut ids = vec![];
        for i in 0..200u32 {
            let data = format!("blob number {}", i % 150).repeat(50).into_bytes();
            let (id, new) = saver.save(BlobKind::Data, data).unwrap();
            assert_eq!(new, i < 150, "blob {i}");
            ids.push(id);
        }
        let stats = saver.finish().unwrap();
        assert_eq!(stats.data_blobs, 150);
        assert!(stats.packs > 3 && stats.index_files > 1);
        let backend = repo.backend().clone();
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        let again = Repository::open(backend.clone(), b"pw", opts.clone()).unwrap();
        again.load_index().unwrap();
        assert_eq!(again.index().len(), 150);
        for (i, id) in ids.iter().enumerate() {
            let want = format!("blob number {}", i % 150).repeat(50).into_bytes();
            assert_eq!(again.read_blob(id).unwrap(), want);
        }
        assert!(
            matches!(Repository::open(backend, b"wrong", opts).map(|_| ()), Err(e) if e.kind == crate::Kind::WrongPassword)
        );
    }

    #[test]
    fn unindexed_packs_are_recovered() {
        let repo = repo();
        let saver = BlobSaver::new(
            repo.clone(),
            SaverOptions {
                pack_size: 1,
                checkpoint_packs: 1000,
                ..Default::default()
            },
        );
        saver.save(BlobKind::Data, b"alpha".to_vec()).unwrap();
        saver.save(BlobKind::Data, b"beta".to_vec()).unwrap();
        // Wait until both packs are stored (a generous deadline only for a
        // hang), then drop the saver without finish(): no index file is written.
        let deadline = Instant::now() + Duration::from_secs(120);
        while repo.backend().list(FileKind::Data).unwrap().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "the two packs were not uploaded within 120 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(saver);
        assert_eq!(repo.backend().list(FileKind::Data).unwrap().len(), 2);
        assert!(repo.backend().list(FileKind::Index).unwrap().is_empty());
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        let again = Repository::open(repo.backend().clone(), b"pw", opts).unwrap();
        again.load_index().unwrap();
        assert_eq!(again.index().len(), 0);
        assert_eq!(again.recover_unindexed_packs().unwrap(), 2);
        assert_eq!(again.read_blob(&again.blob_id(b"beta")).unwrap(), b"beta");
    }
}
