//! Checking a repository: structure (every snapshot's trees and blobs are
//! indexed and their packs exist) and, optionally, every byte of data.
//!
//! Problems are collected, not fatal: the report lists each one with what it
//! affects. Packs that no index lists are noted but are not errors: an
//! interrupted backup leaves them, and the next backup or prune uses or
//! removes them.

use crate::tree_walk::{self, Visit, Visitor};
use crate::{Error, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{parallel_map, BlobLocation, Repository};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    pub read_data: bool,
    /// Read only part of the packs (implies reading data).
    pub subset: Option<Subset>,
    pub threads: usize,
}

/// Which packs `--read-data-subset` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    /// Part `n` (1-based) of `m`: packs whose id's first 4 bytes mod m == n-1,
    /// so running 1/m … m/m over m days reads everything once.
    Part { n: u32, m: u32 },
    /// A random percentage of the packs.
    Percent(f64),
    /// Random packs up to this many bytes.
    Bytes(u64),
}

impl Subset {
    /// "2/5", "10%", "500M" (sizes through `parse_size`).
    pub fn parse(s: &str, parse_size: impl Fn(&str) -> Result<u64>) -> Result<Subset> {
        let bad = || {
            Error::invalid(format!("invalid --read-data-subset {s:?}: use n/m (e.g. 1/5), a percentage (10%) or a size (2G)"))
        };
        let t = s.trim();
        if let Some((n, m)) = t.split_once('/') {
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            let m: u32 = m.trim().parse().map_err(|_| bad())?;
            if m == 0 || n == 0 || n > m {
                return Err(bad());
            }
            return Ok(Subset::Part { n, m });
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(Subset::Percent(v));
        }
        parse_size(t).map(Subset::Bytes).map_err(|_| bad())
    }

    fn select(&self, packs: &mut Vec<(Id, u64)>) {
        use rand::seq::SliceRandom;
        match *self {
            Subset::Part { n, m } => packs
                .retain(|(id, _)| u32::from_be_bytes(id.0[..4].try_into().unwrap()) % m == n - 1),
            Subset::Percent(p) => {
                packs.shuffle(&mut rand::thread_rng());
                let keep = ((packs.len() as f64 * p / 100.0).ceil() as usize).min(packs.len());
                packs.truncate(keep);
            }
            Subset::Bytes(max) => {
                packs.shuffle(&mut rand::thread_rng());
                let mut total = 0;
                let keep = packs
                    .iter()
                    .take_while(|(_, s)| {
                        let fits = total < max;
                        total += s;
                        fits
                    })
                    .count();
                packs.truncate(keep);
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub errors: Vec<String>,
    /// Not damage: e.g. packs no index lists.
    pub notes: Vec<String>,
    /// Packs that are damaged (truncated, or failing `--read-data`), sorted.
    pub broken_packs: Vec<Id>,
    /// The index is damaged or names packs that are gone: `repair index`.
    pub suggest_repair_index: bool,
    /// Snapshots need data that is lost: `repair snapshots --forget`.
    pub suggest_repair_snapshots: bool,
    /// Space is held by packs or index entries no snapshot needs: `prune`.
    pub suggest_prune: bool,
    pub snapshots: usize,
    pub packs: usize,
    pub blobs: usize,
    pub packs_read: usize,
}

#[derive(Default)]
pub struct CheckProgress {
    pub packs_done: AtomicU64,
    pub packs_total: AtomicU64,
    pub bytes_done: AtomicU64,
    /// Bytes of the packs to read (known once they are listed).
    pub bytes_total: AtomicU64,
}

pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &CheckProgress,
) -> Result<CheckReport> {
    let mut r = CheckReport::default();

    // Key files, spare ones included: a damaged one is found here, not on
    // the day its password is needed.
    for e in repo.check_key_files()? {
        r.errors.push(e.message);
    }

    // Index files: one bad file is reported and the rest still count.
    for (id, e) in repo.load_index_lenient()? {
        r.errors.push(format!("index {}: {}", id.short(), e));
        r.suggest_repair_index = true;
    }

    // Packs: stored vs indexed.
    let stored = repo.stored_packs()?;
    r.packs = stored.len();
    // The index's blobs by pack, in 4 bytes per blob: no second copy of it.
    let groups = repo.index_mut().group_by_pack();
    let indexed_packs: Vec<Id> = repo.index().packs().to_vec();
    r.blobs = repo.index().len();
    let mut missing_packs = HashSet::new();
    let mut marked_gone = 0;
    for pack_id in &indexed_packs {
        let (count, end) = {
            let index = repo.index();
            let count = index.pack_blob_count(&groups, pack_id);
            if count == 0 {
                continue;
            }
            let end = index
                .pack_blobs(&groups, pack_id)
                .iter()
                .map(|b| b.offset as u64 + b.length as u64)
                .max()
                .unwrap_or(0);
            (count, end)
        };
        match stored.get(pack_id) {
            // A marked pack deleted by prune whose index rewrite was interrupted: nothing lost.
            None if repo.index().marked(pack_id).is_some() => {
                missing_packs.insert(*pack_id);
                marked_gone += 1;
            }
            None => {
                missing_packs.insert(*pack_id);
                r.suggest_repair_index = true;
                r.errors.push(format!("pack {pack_id}: listed in the index ({count} blobs) but missing from the repository"));
            }
            Some(&size) => {
                if end + 4 > size {
                    r.broken_packs.push(*pack_id);
                    r.errors.push(format!("pack {pack_id}: {size} bytes, but the index places blobs up to byte {end} (truncated?)"));
                }
            }
        }
    }
    if marked_gone > 0 {
        r.suggest_prune = true;
        r.notes.push(format!("{marked_gone} packs marked for deletion are already deleted (the next prune cleans up the index)"));
    }
    let orphans = {
        let index = repo.index();
        stored
            .keys()
            .filter(|id| index.pack_blob_count(&groups, id) == 0)
            .count()
    };
    if orphans > 0 {
        r.suggest_prune = true;
        r.notes.push(format!("{orphans} packs are not in any index (left by an interrupted backup; the next backup reuses them, prune removes them)"));
    }

    // Data is read on worker threads while the snapshots' trees are walked here.
    let mut packs: Vec<(Id, u64)> = Vec::new();
    if opts.read_data || opts.subset.is_some() {
        packs = stored.iter().map(|(id, s)| (*id, *s)).collect();
        packs.sort();
        if let Some(sub) = &opts.subset {
            sub.select(&mut packs);
        }
        progress
            .packs_total
            .store(packs.len() as u64, Ordering::Relaxed);
        progress
            .bytes_total
            .store(packs.iter().map(|(_, size)| size).sum(), Ordering::Relaxed);
    }
    let data_errors = Mutex::new(Vec::new());
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    std::thread::scope(|s| -> Result<()> {
        let reader = s.spawn(|| {
            parallel_map(&packs, threads, |(id, size)| {
                let expected = repo.index().pack_blobs(&groups, id);
                if let Err(msg) = read_pack(repo, id, *size, &expected) {
                    data_errors.lock().unwrap().push((*id, msg));
                }
                progress.packs_done.fetch_add(1, Ordering::Relaxed);
                progress.bytes_done.fetch_add(*size, Ordering::Relaxed);
                Ok::<_, Error>(())
            })
        });
        let before = r.errors.len();
        let walked = check_snapshots(repo, &missing_packs, &mut r);
        r.suggest_repair_snapshots |= r.errors.len() > before;
        let read = reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        walked.and(read.map(|_| ()))
    })?;
    for (id, msg) in data_errors.into_inner().unwrap() {
        r.broken_packs.push(id);
        r.errors.push(msg);
    }
    r.broken_packs.sort();
    r.broken_packs.dedup();
    // `repair packs` salvages a damaged pack and takes it out of the index;
    // snapshots that need what it lost are then repaired.
    r.suggest_repair_snapshots |= !r.broken_packs.is_empty();
    r.packs_read = packs.len();
    Ok(r)
}

/// Snapshots: every tree loads, every blob is indexed in a present pack.
fn check_snapshots(
    repo: &Repository,
    missing_packs: &HashSet<Id>,
    r: &mut CheckReport,
) -> Result<()> {
    let ids = repo.snapshot_ids()?;
    r.snapshots = ids.len();
    let (snaps, unreadable) = repo.load_snapshots(&ids, |_| true)?;
    for (sid, e) in unreadable {
        r.errors.push(format!("snapshot {}: {}", sid.short(), e));
    }
    let mut seen_trees: HashSet<Id> = HashSet::new();
    for (sid, snap) in snaps {
        if !seen_trees.insert(snap.tree) {
            continue;
        }
        let mut v = SnapshotChecker {
            repo,
            snapshot: sid,
            seen_trees: &mut seen_trees,
            missing_packs,
            errors: &mut r.errors,
        };
        if let Err(e) = v.check_tree_blob(&snap.tree, Path::new("/")) {
            v.errors.push(e);
            continue;
        }
        if let Err(e) = tree_walk::walk(repo, snap.tree, Path::new("/"), &mut v) {
            r.errors.push(format!("snapshot {}: {}", sid.short(), e));
        }
    }

    Ok(())
}

/// Read a whole pack: its header must match the index, and every blob must
/// decrypt to its id.
///
/// The pack's SHA-256 is not recomputed: the header covers the pack exactly
/// (`repo-format.md` §6), and every byte of it belongs to an authenticated
/// object (a blob or the header) or to the trailer that locates the header,
/// so any change fails a tag, the coverage check or the header-to-index
/// comparison. Hashing 1 GiB of packs again cost a quarter of the CPU.
fn read_pack(
    repo: &Repository,
    id: &Id,
    size: u64,
    expected: &[BlobLocation],
) -> std::result::Result<(), String> {
    let what = format!("pack {id}");
    // The header first (from the pack's tail), then the blobs in pieces of
    // a few MiB: memory stays small whatever the pack size.
    let entries = repo.read_pack_header(id, size).map_err(|e| e.message)?;
    // Every index entry must equal its header entry: a wrong length or
    // raw_length in the index would fail restores and mislead backups.
    let in_header: HashMap<(Id, u32), _> = entries
        .iter()
        .map(|e| ((e.id, e.offset), (e.kind, e.length, e.raw_length)))
        .collect();
    for loc in expected {
        let Some(&(kind, length, raw_length)) = in_header.get(&(loc.id, loc.offset)) else {
            return Err(format!(
                "{what}: the index lists {} blob {} at offset {} but the pack header does not",
                loc.kind,
                loc.id.short(),
                loc.offset
            ));
        };
        if (kind, length, raw_length) != (loc.kind, loc.length, loc.raw_length) {
            return Err(format!(
                "{what}: the index lists {} blob {} at offset {} as {} {} bytes ({} plain), \
                 the pack header as {} {} bytes ({} plain)",
                loc.kind,
                loc.id.short(),
                loc.offset,
                loc.kind,
                loc.length,
                loc.raw_length,
                kind,
                length,
                raw_length
            ));
        }
    }
    const PIECE: u64 = 2 << 20;
    let name = id.to_hex();
    let read = |off: u64, len: u64| {
        repo.backend()
            .read_range(FileKind::Data, &name, off, Some(len))
            .map_err(|e| format!("{what}: {e}"))
    };
    let mut bad_blob: Option<String> = None;
    let mut i = 0;
    let mut pos = 0u64;
    while i < entries.len() {
        let mut j = i + 1;
        let mut end = entries[i].offset as u64 + entries[i].length as u64;
        while j < entries.len()
            && entries[j].offset as u64 + entries[j].length as u64 - pos <= PIECE
        {
            end = entries[j].offset as u64 + entries[j].length as u64;
            j += 1;
        }
        let mut bytes = read(pos, end - pos)?;
        for e in &entries[i..j] {
            let loc = BlobLocation {
                id: e.id,
                kind: e.kind,
                pack: *id,
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            };
            let at = (e.offset as u64 - pos) as usize;
            if let Err(err) = repo.verify_blob(&loc, &mut bytes[at..at + e.length as usize]) {
                bad_blob.get_or_insert(err.message);
            }
        }
        pos = end;
        i = j;
    }
    match bad_blob {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

struct SnapshotChecker<'a> {
    repo: &'a Repository,
    snapshot: Id,
    seen_trees: &'a mut HashSet<Id>,
    missing_packs: &'a HashSet<Id>,
    errors: &'a mut Vec<String>,
}

impl SnapshotChecker<'_> {
    fn check_blob(&self, id: &Id, kind: BlobKind) -> std::result::Result<(), &'static str> {
        match self.repo.lookup(id) {
            None => Err("is not in any index"),
            Some(loc) if self.missing_packs.contains(&loc.pack) => Err("is in a missing pack"),
            Some(loc) if loc.kind != kind => Err("is indexed with the wrong type"),
            Some(_) => Ok(()),
        }
    }

    fn check_tree_blob(&self, id: &Id, path: &Path) -> std::result::Result<(), String> {
        self.check_blob(id, BlobKind::Tree).map_err(|why| {
            format!(
                "snapshot {}: tree {} of {} {}",
                self.snapshot.short(),
                id.short(),
                path.display(),
                why
            )
        })
    }
}

impl Visitor for SnapshotChecker<'_> {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        match node.kind {
            NodeKind::File => {
                for (i, id) in node.content.iter().enumerate() {
                    if let Err(why) = self.check_blob(id, BlobKind::Data) {
                        self.errors.push(format!(
                            "snapshot {}: file {}: data blob {} (chunk {i}) {why}",
                            self.snapshot.short(),
                            path.display(),
                            id.short()
                        ));
                    }
                }
                Ok(Visit::Continue)
            }
            NodeKind::Dir => match node.subtree {
                Some(t) => {
                    if let Err(e) = self.check_tree_blob(&t, path) {
                        self.errors.push(e);
                        return Ok(Visit::SkipChildren);
                    }
                    // A subtree shared with an earlier snapshot was already checked.
                    Ok(if self.seen_trees.insert(t) {
                        Visit::Continue
                    } else {
                        Visit::SkipChildren
                    })
                }
                None => Ok(Visit::Continue),
            },
            _ => Ok(Visit::Continue),
        }
    }

    fn error(&mut self, path: &Path, err: Error) -> Result<()> {
        self.errors.push(format!(
            "snapshot {}: {}: {}",
            self.snapshot.short(),
            path.display(),
            err
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::{file, noise, repo, saver};

    /// An index entry whose raw_length (or length) disagrees with the pack
    /// header is found by `check --read-data`, naming the pack and blob.
    #[test]
    fn index_lengths_are_compared_with_the_pack_header() {
        let repo = repo();
        let s = saver(&repo);
        file(&s, "f", &noise(200_000, 7), 20_000);
        s.finish().unwrap();
        let opts = CheckOptions {
            read_data: true,
            ..Default::default()
        };
        repo.load_index().unwrap();
        let clean = check(&repo, &opts, &CheckProgress::default()).unwrap();
        assert!(clean.errors.is_empty(), "{:?}", clean.errors);

        for change in [(0, 1), (1, 0)] {
            let ids = repo.index_file_ids().unwrap();
            let mut f = repo.load_index_file(&ids[0]).unwrap();
            let victim = (f.packs[0].id, f.packs[0].blobs[0].id);
            let blob = &mut f.packs[0].blobs[0];
            blob.raw_length += change.0;
            blob.length = blob.length.wrapping_sub(change.1);
            let new = repo.save_index_file(&f).unwrap();
            for old in ids.iter().filter(|id| **id != new) {
                repo.backend()
                    .remove(FileKind::Index, &old.to_hex())
                    .unwrap();
            }
            repo.load_index().unwrap();
            let r = check(&repo, &opts, &CheckProgress::default()).unwrap();
            let found = r.errors.iter().find(|e| {
                e.contains(&victim.0.to_hex())
                    && e.contains(&victim.1.short())
                    && e.contains("pack header as")
            });
            assert!(found.is_some(), "{change:?}: {:?}", r.errors);
            // Put it back for the next round.
            let blob = &mut f.packs[0].blobs[0];
            blob.raw_length -= change.0;
            blob.length = blob.length.wrapping_add(change.1);
            let fixed = repo.save_index_file(&f).unwrap();
            repo.backend()
                .remove(FileKind::Index, &new.to_hex())
                .unwrap();
            assert_ne!(fixed, new);
        }
    }
}
