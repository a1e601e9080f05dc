//! Copying snapshots from one repository into another.
//!
//! The two repositories have different master keys, so every blob is
//! decrypted from the source and sealed again for the target. Whether blob
//! *ids* agree depends on `id_key` (repo-format.md §5):
//!
//! - **Shared ids** (the target was made with `init --copy-chunker-params`,
//!   or is the same key material): a blob has the same id in both, so trees
//!   are copied byte for byte, and a blob the target already has is never
//!   read from the source. A tree the target already has is read from the
//!   target (to walk below it), not the source.
//! - **Different ids**: every blob of a new snapshot is read from the source
//!   to learn its target id (`src id → dst id`, remembered for the whole
//!   run), then stored unless the target already has it; trees are rewritten
//!   bottom-up with the mapped ids. Only data the target lacks is uploaded.
//!
//! Invariants:
//! - Memory is bounded by the trees on the path being copied plus one batch
//!   of data blobs: files are streamed blob by blob, never held whole. With
//!   different ids the `src id → dst id` map grows by about 100 bytes per
//!   distinct data blob copied in one run.
//! - Blobs go through a [`BlobSaver`] (packs, index checkpoints) as in a
//!   backup, and a snapshot is written only after its saver has finished,
//!   so an interrupted copy leaves no snapshot referring to missing data,
//!   and the next run (or backup) reuses what was stored.
//! - A source snapshot is not copied again when the target holds a copy of
//!   it: a snapshot whose `original` (or own id) is the source snapshot's
//!   persistent id (its `original`, else its id) and whose fields agree (as
//!   restic's copy decides; the root tree is compared only with shared ids,
//!   since otherwise tree ids differ by construction). The copy records the
//!   source's persistent id in `original` and drops `parent`.

use crate::tree_rewrite::{self, rewrite_tree, Dir, Opened};
use crate::{Error, Result};
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::tree::{Node, NodeKind, Tree};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{parallel_map, BlobSaver, Repository, SaverOptions, SaverStats};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct CopyOptions {
    pub saver: SaverOptions,
    /// Threads reading and decrypting source blobs.
    pub readers: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            saver: SaverOptions::default(),
            readers: 4,
        }
    }
}

/// Live counters for a progress display.
#[derive(Default)]
pub struct CopyProgress {
    pub snapshots_done: AtomicU64,
    /// Blobs read (and decrypted) from the source, and their plaintext bytes.
    pub blobs_read: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Blobs not read because the target already had them (shared ids only).
    pub blobs_skipped: AtomicU64,
}

/// What happened to one source snapshot.
#[derive(Clone, Debug)]
pub enum CopyEvent {
    /// Copied into the new target snapshot `target`.
    Copied {
        source: Id,
        target: Id,
        stats: SaverStats,
    },
    /// The target already holds a copy: `existing`.
    Skipped { source: Id, existing: Id },
}

#[derive(Debug, Default)]
pub struct CopyReport {
    pub events: Vec<CopyEvent>,
    /// Blob ids agree between the repositories.
    pub shared_ids: bool,
    /// Summed over all copied snapshots.
    pub stats: SaverStats,
    pub blobs_read: u64,
    pub bytes_read: u64,
    pub blobs_skipped: u64,
}

/// Do blobs have the same ids in both repositories?
pub fn shares_blob_ids(a: &Repository, b: &Repository) -> bool {
    a.key().id_key == b.key().id_key
}

/// The id that stays with a snapshot through copies and rewrites.
pub fn persistent_id(id: &Id, s: &Snapshot) -> Id {
    s.original.unwrap_or(*id)
}

/// Is `candidate` (id `candidate_id`, in the target) a copy of the source
/// snapshot `source` (id `source_id`)? Everything but `parent` and
/// `original` must agree; the tree only when `compare_tree`.
pub fn is_copy_of(
    source_id: &Id,
    source: &Snapshot,
    candidate_id: &Id,
    candidate: &Snapshot,
    compare_tree: bool,
) -> bool {
    let key = persistent_id(source_id, source);
    if candidate.original != Some(key) && *candidate_id != key {
        return false;
    }
    let set = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    source.time == candidate.time
        && (!compare_tree || source.tree == candidate.tree)
        && source.hostname == candidate.hostname
        && source.username == candidate.username
        && source.uid == candidate.uid
        && source.gid == candidate.gid
        && set(&source.paths) == set(&candidate.paths)
        && set(&source.tags) == set(&candidate.tags)
        && source.excludes == candidate.excludes
}

/// Copy `snapshots` (from `src`) into `dst`. Both indexes must be loaded.
/// `on_event` is called as each snapshot is copied or skipped.
pub fn copy(
    src: &Repository,
    dst: &Arc<Repository>,
    snapshots: &[(Id, Snapshot)],
    opts: &CopyOptions,
    progress: &CopyProgress,
    on_event: &mut dyn FnMut(&CopyEvent),
) -> Result<CopyReport> {
    if src.config().id == dst.config().id {
        return Err(Error::invalid(
            "the source and the target are the same repository",
        ));
    }
    // Packs an interrupted earlier copy stored: index them, so they are not stored again.
    dst.recover_unindexed_packs()?;
    let shared_ids = shares_blob_ids(src, dst);
    let mut targets = dst.list_snapshots()?;
    let mut copier = Copier {
        src,
        dst,
        shared_ids,
        readers: opts.readers.max(1),
        trees: HashMap::new(),
        data: HashMap::new(),
        progress,
    };
    let mut report = CopyReport {
        shared_ids,
        ..Default::default()
    };
    let mut done: HashSet<Id> = HashSet::new();
    for (sid, sn) in snapshots {
        if !done.insert(*sid) {
            continue;
        }
        if let Some((tid, _)) = targets
            .iter()
            .find(|(tid, t)| is_copy_of(sid, sn, tid, t, shared_ids))
        {
            let ev = CopyEvent::Skipped {
                source: *sid,
                existing: *tid,
            };
            on_event(&ev);
            report.events.push(ev);
            progress.snapshots_done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let saver = BlobSaver::new(dst.clone(), opts.saver.clone());
        let tree = copier
            .copy_tree(&saver, sn.tree)
            .map_err(|e| e.context(format!("copying snapshot {}", sid.short())))?;
        let stats = saver.finish()?;
        let mut copy = sn.clone();
        copy.tree = tree;
        copy.parent = None;
        copy.original = Some(persistent_id(sid, sn));
        let nid = dst.save_snapshot(&copy)?;
        add_stats(&mut report.stats, &stats);
        let ev = CopyEvent::Copied {
            source: *sid,
            target: nid,
            stats,
        };
        on_event(&ev);
        report.events.push(ev);
        targets.push((nid, copy));
        progress.snapshots_done.fetch_add(1, Ordering::Relaxed);
    }
    report.blobs_read = progress.blobs_read.load(Ordering::Relaxed);
    report.bytes_read = progress.bytes_read.load(Ordering::Relaxed);
    report.blobs_skipped = progress.blobs_skipped.load(Ordering::Relaxed);
    Ok(report)
}

/// Adds one snapshot's saver counts to the running total.
pub(crate) fn add_stats(sum: &mut SaverStats, s: &SaverStats) {
    sum.data_blobs += s.data_blobs;
    sum.tree_blobs += s.tree_blobs;
    sum.data_added += s.data_added;
    sum.data_added_packed += s.data_added_packed;
    sum.packs += s.packs;
    sum.index_files += s.index_files;
}

/// Data blobs read and decrypted at once (each at most 16 MiB).
const BATCH: usize = 8;

struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Arc<Repository>,
    shared_ids: bool,
    readers: usize,
    /// Source tree id → target tree id, for trees copied in this run.
    trees: HashMap<Id, Id>,
    /// Source data blob id → target id (different ids only).
    data: HashMap<Id, Id>,
    progress: &'a CopyProgress,
}

/// A tree being copied: its bytes as stored, and whether an id in it
/// changed.
struct Copying {
    /// The tree exactly as stored, to copy unchanged when ids are shared.
    bytes: Vec<u8>,
    changed: bool,
}

impl Copier<'_> {
    /// Copy the tree `root` and everything below it; returns its target id.
    /// Bottom-up ([`rewrite_tree`]): a tree is stored after its subtrees,
    /// once their target ids are known; a tree copied before in this run is
    /// not walked again.
    fn copy_tree(&mut self, saver: &BlobSaver, root: Id) -> Result<Id> {
        rewrite_tree(
            &mut CopyTrees {
                copier: self,
                saver,
            },
            root,
            Path::new("/"),
        )
    }

    fn count_read(&self, n: usize) {
        self.progress.blobs_read.fetch_add(1, Ordering::Relaxed);
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Copy the data blobs of the files among `nodes` that the target does
    /// not have, in batches read in parallel; with different ids, rewrite
    /// the files' content lists. Returns whether any id changed.
    fn copy_contents(&mut self, saver: &BlobSaver, nodes: &mut [Node], dir: &Path) -> Result<bool> {
        let mut todo = Vec::new();
        let mut queued = HashSet::new();
        for n in nodes.iter().filter(|n| n.kind == NodeKind::File) {
            for id in &n.content {
                let have = if self.shared_ids {
                    saver.known(id)
                } else {
                    self.data.contains_key(id)
                };
                if have {
                    if self.shared_ids {
                        self.progress.blobs_skipped.fetch_add(1, Ordering::Relaxed);
                    }
                } else if queued.insert(*id) {
                    todo.push(*id);
                }
            }
        }
        let src = self.src;
        let progress = self.progress;
        for batch in todo.chunks(BATCH) {
            let blobs = parallel_map(batch, self.readers, |id| {
                let data = src.read_blob(id).map_err(|e| {
                    let file = nodes
                        .iter()
                        .find(|n| n.content.contains(id))
                        .map(|n| {
                            crate::tree_walk::join_name(dir, n.name.as_bytes())
                                .display()
                                .to_string()
                        })
                        .unwrap_or_default();
                    e.context(format!("file {file}"))
                })?;
                progress.blobs_read.fetch_add(1, Ordering::Relaxed);
                progress
                    .bytes_read
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                Ok::<_, Error>((*id, data))
            })?;
            for (sid, data) in blobs {
                if self.shared_ids {
                    saver.save_with_id(BlobKind::Data, sid, data)?;
                } else {
                    let did = self.dst.blob_id(&data);
                    saver.save_with_id(BlobKind::Data, did, data)?;
                    self.data.insert(sid, did);
                }
            }
        }
        if self.shared_ids {
            return Ok(false);
        }
        for n in nodes.iter_mut().filter(|n| n.kind == NodeKind::File) {
            for id in n.content.iter_mut() {
                *id = self.data[id];
            }
        }
        Ok(true)
    }
}

/// [`Copier::copy_tree`]'s steps.
struct CopyTrees<'c, 'a> {
    copier: &'c mut Copier<'a>,
    saver: &'c BlobSaver,
}

impl tree_rewrite::Rewriter for CopyTrees<'_, '_> {
    type State = Copying;
    type Out = Id;

    fn known(&mut self, _path: &Path, id: Id) -> Result<Option<Id>> {
        Ok(self.copier.trees.get(&id).copied())
    }

    /// Load a tree and copy the data blobs of its files.
    fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<Copying, Id>> {
        let c = &mut *self.copier;
        // With shared ids, a tree the target has is read from the target.
        let from_target = c.shared_ids && c.dst.index().contains(&id);
        let bytes = if from_target {
            c.dst.read_blob(&id)
        } else {
            c.src.read_blob(&id)
        }
        .map_err(|e| e.context(format!("directory {}", path.display())))?;
        if !from_target {
            c.count_read(bytes.len());
        }
        let tree = Tree::from_bytes(&bytes)
            .map_err(|e| Error::format(format!("tree {} of {}", id.short(), path.display()), e))?;
        let mut nodes = tree.nodes;
        let changed = c.copy_contents(self.saver, &mut nodes, &path)?;
        Ok(Opened::Dir(Dir {
            id,
            path,
            nodes,
            state: Copying { bytes, changed },
        }))
    }

    fn child(&mut self, parent: &mut Dir<Copying>, index: usize, id: Id) -> Result<()> {
        let node = &mut parent.nodes[index];
        parent.state.changed |= node.subtree != Some(id);
        node.subtree = Some(id);
        Ok(())
    }

    /// Store a finished tree in the target; returns its target id.
    fn close(&mut self, dir: Dir<Copying>) -> Result<Id> {
        let c = &mut *self.copier;
        let id = if c.shared_ids && !dir.state.changed {
            if !self.saver.known(&dir.id) {
                self.saver
                    .save_with_id(BlobKind::Tree, dir.id, dir.state.bytes)?;
            }
            dir.id
        } else {
            let bytes = Tree { nodes: dir.nodes }.to_bytes();
            let id = c.dst.blob_id(&bytes);
            self.saver.save_with_id(BlobKind::Tree, id, bytes)?;
            id
        };
        c.trees.insert(dir.id, id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;
    use cairn_repository::backend::MemoryBackend;
    use cairn_repository::format::config::Config;
    use cairn_repository::format::crypto::{KdfParams, MasterKey};
    use cairn_repository::OpenOptions;

    fn snapshot(tree: Id, secs: i64) -> Snapshot {
        Snapshot {
            version: 1,
            time: chrono::DateTime::from_timestamp(secs, 5)
                .unwrap()
                .fixed_offset(),
            tree,
            paths: vec!["/data".into()],
            hostname: "h".into(),
            username: "u".into(),
            uid: 1,
            gid: 2,
            tags: vec!["a".into(), "b".into()],
            excludes: vec![],
            parent: Some(Id::sha256(b"parent")),
            original: None,
            program_version: "test".into(),
            summary: None,
        }
    }

    /// A source repository with one snapshot of a small tree.
    fn source() -> (Arc<Repository>, Id, Vec<u8>) {
        let repo = repo();
        let s = saver(&repo);
        let big = noise(300_000, 7);
        let data = dir(
            &s,
            "data",
            vec![
                file(&s, "big", &big, 50_000),
                dir(&s, "sub", vec![file(&s, "small", b"small", 10)]),
                file(&s, "dup", &big, 50_000),
            ],
        );
        let root = tree(&s, vec![data]);
        s.finish().unwrap();
        let sid = repo.save_snapshot(&snapshot(root, 1_700_000_000)).unwrap();
        (repo, sid, big)
    }

    fn read_file(repo: &Repository, root: Id, path: &[&str]) -> Vec<u8> {
        let mut t = repo.load_tree(&root).unwrap();
        for (i, name) in path.iter().enumerate() {
            let n = t
                .nodes
                .iter()
                .find(|n| n.name.as_bytes() == name.as_bytes())
                .unwrap()
                .clone();
            if i + 1 == path.len() {
                return n
                    .content
                    .iter()
                    .flat_map(|id| repo.read_blob(id).unwrap())
                    .collect();
            }
            t = repo.load_tree(&n.subtree.unwrap()).unwrap();
        }
        unreachable!()
    }

    fn all(repo: &Repository) -> Vec<(Id, Snapshot)> {
        repo.list_snapshots().unwrap()
    }

    #[test]
    fn copies_with_different_keys_then_skips() {
        let (src, sid, big) = source();
        src.load_index().unwrap();
        let dst = repo();
        let snaps = all(&src);
        let p = CopyProgress::default();
        let r = copy(&src, &dst, &snaps, &CopyOptions::default(), &p, &mut |_| {}).unwrap();
        assert!(!r.shared_ids);
        let [CopyEvent::Copied { target, stats, .. }] = r.events.as_slice() else {
            panic!("{:?}", r.events)
        };
        assert_eq!(
            stats.data_blobs, 7,
            "6 distinct chunks of big (dup deduplicated) + small"
        );
        let copied = dst.load_snapshot(target).unwrap();
        assert_eq!(copied.original, Some(sid));
        assert_eq!(copied.parent, None);
        assert_ne!(copied.tree, snaps[0].1.tree);
        assert_eq!(read_file(&dst, copied.tree, &["data", "big"]), big);
        assert_eq!(read_file(&dst, copied.tree, &["data", "dup"]), big);
        assert_eq!(
            read_file(&dst, copied.tree, &["data", "sub", "small"]),
            b"small"
        );

        // Again: skipped, nothing read.
        let p = CopyProgress::default();
        let r = copy(&src, &dst, &snaps, &CopyOptions::default(), &p, &mut |_| {}).unwrap();
        assert!(
            matches!(r.events.as_slice(), [CopyEvent::Skipped { existing, .. }] if existing == target)
        );
        assert_eq!(r.blobs_read, 0);
        assert_eq!(dst.list_snapshots().unwrap().len(), 1);
        // The same repository is refused.
        assert!(copy(&dst, &dst, &[], &CopyOptions::default(), &p, &mut |_| {}).is_err());
    }

    #[test]
    fn shared_ids_copy_trees_unchanged_and_skip_known_blobs() {
        let (src, _, big) = source();
        src.load_index().unwrap();
        let key = MasterKey {
            data_key: MasterKey::random().data_key,
            ..src.key().clone()
        };
        let mut config = Config::new();
        config.chunker = src.config().chunker;
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        let dst = Arc::new(
            Repository::init_with(Arc::new(MemoryBackend::new()), b"other", opts, key, config)
                .unwrap(),
        );
        // The target already holds part of the data.
        let s = saver(&dst);
        let _ = file(&s, "x", &big[..100_000], 50_000);
        s.finish().unwrap();

        let snaps = all(&src);
        let p = CopyProgress::default();
        let r = copy(&src, &dst, &snaps, &CopyOptions::default(), &p, &mut |_| {}).unwrap();
        assert!(r.shared_ids);
        let [CopyEvent::Copied { target, stats, .. }] = r.events.as_slice() else {
            panic!()
        };
        let copied = dst.load_snapshot(target).unwrap();
        assert_eq!(copied.tree, snaps[0].1.tree, "trees copied unchanged");
        assert_eq!(stats.data_blobs, 5, "7 chunks, 2 already in the target");
        assert_eq!(
            r.blobs_read,
            5 + 3,
            "5 data blobs and 3 trees read from the source"
        );
        assert_eq!(read_file(&dst, copied.tree, &["data", "big"]), big);
    }

    #[test]
    fn copy_detection() {
        let a = snapshot(Id::sha256(b"t"), 10);
        let aid = Id::sha256(b"a");
        let mut c = a.clone();
        c.original = Some(aid);
        c.parent = None;
        c.tree = Id::sha256(b"other tree");
        let cid = Id::sha256(b"c");
        assert!(is_copy_of(&aid, &a, &cid, &c, false));
        assert!(
            !is_copy_of(&aid, &a, &cid, &c, true),
            "trees compared with shared ids"
        );
        c.tags.reverse();
        assert!(
            is_copy_of(&aid, &a, &cid, &c, false),
            "tag order does not matter"
        );
        let mut later = c.clone();
        later.time = a.time + chrono::Duration::nanoseconds(1);
        assert!(!is_copy_of(&aid, &a, &cid, &later, false));
        let mut host = c.clone();
        host.hostname = "x".into();
        assert!(!is_copy_of(&aid, &a, &cid, &host, false));
        assert!(
            !is_copy_of(&Id::sha256(b"other"), &a, &cid, &c, false),
            "another original"
        );
        // Copying a copy back: the source's original is the candidate itself.
        assert!(is_copy_of(&cid, &c, &aid, &a, false));
    }
}
