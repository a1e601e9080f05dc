//! A synthetic repository of N data blobs for `bench --scale`: 10^7 real
//! files do not fit in these machines' memory, but 10^7 index entries do.
//!
//! The repository is created by `cairn init` (a real key file and config);
//! this module then opens it through cairn-repository and writes packs of
//! 10,000 tiny distinct blobs (each a 16-byte counter, sealed as cairn seals
//! any blob) and index files listing them, through cairn-format, the same
//! bytes a backup would write. No snapshot refers to them: the repository
//! serves to measure what loading (backup) and checking an index of N blobs
//! costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use cairn_repository::backend::{FileKind, LocalBackend};
use cairn_repository::format::index::{IndexFile, IndexPack};
use cairn_repository::format::pack::PackWriter;
use cairn_repository::format::BlobKind;
use cairn_repository::{OpenOptions, Repository};

const BLOBS_PER_PACK: u64 = 10_000;
/// As cairn writes them: about 65,536 blobs to an index file.
const PACKS_PER_INDEX: usize = 6;

/// Adds `blobs` data blobs (numbered from `seed`'s stream) to the
/// repository at `repo`, which `cairn init` created with `password`.
pub fn fill(repo: &std::path::Path, password: &str, blobs: u64, seed: u64) -> Result<()> {
    let backend = Arc::new(LocalBackend::new(repo));
    let repo = Repository::open(backend, password.as_bytes(), OpenOptions::default())
        .map_err(|e| anyhow::anyhow!("opening the synthetic repository: {e}"))?;
    let packs = blobs.div_ceil(BLOBS_PER_PACK);
    let next = AtomicU64::new(0);
    let pending: Mutex<Vec<IndexPack>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let flush = |list: Vec<IndexPack>| -> Result<()> {
        repo.save_index_file(&IndexFile { packs: list })
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("writing an index file: {e}"))
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= packs || failure.lock().unwrap().is_some() {
                    break;
                }
                let result = (|| -> Result<()> {
                    let mut writer = PackWriter::new();
                    let first = p * BLOBS_PER_PACK;
                    for n in first..(first + BLOBS_PER_PACK).min(blobs) {
                        let mut plain = [0u8; 16];
                        plain[..8].copy_from_slice(&seed.to_le_bytes());
                        plain[8..].copy_from_slice(&n.to_le_bytes());
                        let id = repo.blob_id(&plain);
                        let sealed = repo.cipher().seal(&plain, None);
                        writer.add(BlobKind::Data, id, &sealed, plain.len() as u32);
                    }
                    let (bytes, id, entries) = writer.finish(repo.cipher());
                    let stored = repo
                        .save_file(FileKind::Data, &bytes)
                        .map_err(|e| anyhow::anyhow!("writing a pack: {e}"))?;
                    anyhow::ensure!(stored == id, "a pack was stored under another name");
                    let full = {
                        let mut list = pending.lock().unwrap();
                        list.push(IndexPack::live(id, entries));
                        (list.len() >= PACKS_PER_INDEX).then(|| std::mem::take(&mut *list))
                    };
                    if let Some(list) = full {
                        flush(list)?;
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    failure.lock().unwrap().get_or_insert(e);
                    break;
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let rest = pending.into_inner().unwrap();
    if !rest.is_empty() {
        flush(rest)?;
    }
    Ok(())
}
