//! Repairing a damaged repository.
//!
//! - [`repair_index`]: rebuild the index from the packs themselves. Every
//!   pack's header is read (in parallel); new index files covering every
//!   readable pack are written *before* the old index files are deleted, so
//!   a crash leaves duplicates, never a gap. Deletion marks (§7) of packs
//!   that prune marked are carried over from the old index files that can
//!   still be read ("live wins", as when loading), so a rebuild does not
//!   undo or confuse a two-phase prune. Unreadable packs are reported and
//!   left alone (never deleted here).
//! - [`repair_snapshots`]: for snapshots that reference lost data, write a
//!   new snapshot without it, as restic 0.17's `repair snapshots`:
//!   a file whose content is not all available is dropped (restic keeps
//!   the file without the missing parts; a file with holes cut out is not
//!   the file, so cairn drops it), a directory whose tree is lost or
//!   unreadable becomes an empty directory, entries with invalid names are
//!   dropped, a snapshot whose root tree is lost is removed. The new
//!   snapshot gets the tag `repaired` and `original`; the broken one is
//!   removed only with `forget`. New trees are stored through a
//!   [`BlobSaver`] and the new snapshots written after it finished; only
//!   then is anything removed.
//!
//! "Available" means: in the index, in a pack that exists. The index is
//! reloaded without entries for missing packs first, so that the saver does
//! not mistake a lost blob for one it need not store.

use crate::tree_rewrite::{self, rewrite_tree, Dir, Opened};
use crate::tree_walk::{join_name, valid_name};
use crate::{Error, Kind, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::index::{IndexFile, IndexPack};
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::tree::{Node, NodeKind, Tree};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{
    parallel_map, BlobSaver, Index, Repository, SaverOptions, SaverStats, SnapshotsAndErrors,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// At most this many blobs per new index file.
const BLOBS_PER_INDEX_FILE: usize = 100_000;
/// Pack headers read per round (bounds the headers held before writing).
const HEADER_BATCH: usize = 256;

#[derive(Default)]
pub struct RepairProgress {
    pub packs_done: AtomicU64,
    pub packs_total: AtomicU64,
}

#[derive(Debug, Default)]
pub struct RepairIndexReport {
    pub packs: usize,
    pub blobs: usize,
    /// Packs whose header could not be read: not indexed.
    pub unreadable_packs: Vec<(Id, String)>,
    /// Packs carried over with their deletion mark.
    pub marked_packs: usize,
    pub old_index_files: usize,
    /// Old index files that could not be read (their marks are lost).
    pub unreadable_index_files: Vec<(Id, String)>,
    pub index_files_written: usize,
    pub index_files_removed: usize,
}

/// Rebuild the index from the pack headers; see the module docs.
pub fn repair_index(
    repo: &Repository,
    threads: usize,
    progress: &RepairProgress,
) -> Result<RepairIndexReport> {
    let threads = threads.max(1);
    let mut r = RepairIndexReport::default();
    // Index files first: every pack they list was stored before them, so it is in the pack listing below.
    let old = repo.index_file_ids()?;
    r.old_index_files = old.len();
    let mut marks: HashMap<Id, Option<i64>> = HashMap::new();
    for batch in old.chunks(64) {
        let loaded = parallel_map(batch, threads, |id| {
            Ok::<_, Error>(repo.load_index_file(id))
        })?;
        for (id, f) in batch.iter().zip(loaded) {
            match f {
                Ok(f) => {
                    for p in f.packs {
                        let m = marks.entry(p.id).or_insert(p.marked);
                        if p.marked.is_none() {
                            *m = None; // live wins
                        }
                    }
                }
                Err(e) => r.unreadable_index_files.push((*id, e.message)),
            }
        }
    }
    let mut packs: Vec<(Id, u64)> = repo.stored_packs()?.into_iter().collect();
    packs.sort_unstable();
    r.packs = packs.len();
    progress
        .packs_total
        .store(packs.len() as u64, Ordering::Relaxed);

    let mut index = Index::new();
    let mut written = HashSet::new();
    let mut file = IndexFile::default();
    let mut flush = |file: &mut IndexFile, index: &mut Index| -> Result<()> {
        if file.packs.is_empty() {
            return Ok(());
        }
        written.insert(repo.save_index_file(file)?);
        for p in &file.packs {
            index.add_index_pack(p);
        }
        index.compact();
        file.packs.clear();
        Ok(())
    };
    for batch in packs.chunks(HEADER_BATCH) {
        let headers = parallel_map(batch, threads, |(id, size)| {
            let h = repo.read_pack_header(id, *size);
            progress.packs_done.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Error>(h)
        })?;
        for ((id, _), h) in batch.iter().zip(headers) {
            match h {
                Ok(blobs) => {
                    let marked = marks.get(id).copied().flatten();
                    r.marked_packs += marked.is_some() as usize;
                    r.blobs += blobs.len();
                    file.packs.push(IndexPack {
                        id: *id,
                        marked,
                        blobs,
                    });
                    if file.blob_count() >= BLOBS_PER_INDEX_FILE {
                        flush(&mut file, &mut index)?;
                    }
                }
                // A transient failure must not look like a damaged pack: give up instead.
                Err(e) if matches!(e.kind, Kind::Backend(_)) && !is_not_found(&e) => return Err(e),
                Err(e) => r.unreadable_packs.push((*id, e.message)),
            }
        }
    }
    flush(&mut file, &mut index)?;
    r.index_files_written = written.len();
    // Only now, with the new index stored, remove the old files.
    for id in old.iter().filter(|id| !written.contains(id)) {
        repo.backend().remove(FileKind::Index, &id.to_hex())?;
        r.index_files_removed += 1;
    }
    *repo.index_mut() = index;
    Ok(r)
}

fn is_not_found(e: &Error) -> bool {
    e.kind == Kind::Backend(cairn_repository::backend::ErrorKind::NotFound)
}

/// Load the index from its files, leaving out packs that are not stored,
/// so that only blobs that can be read count as present. Index files that
/// cannot be read are skipped. Returns the set of stored packs.
pub fn load_index_of_stored_packs(repo: &Repository) -> Result<HashSet<Id>> {
    let stored: HashSet<Id> = repo.stored_packs()?.into_keys().collect();
    repo.load_index_of_packs(|p| stored.contains(p))?;
    Ok(stored)
}

/// Load every snapshot file, separating the unreadable ones (with why). A
/// backend failure is not damage: it ends the load rather than be
/// misreported.
pub fn load_snapshots(repo: &Repository) -> Result<SnapshotsAndErrors> {
    repo.load_snapshots(&repo.snapshot_ids()?, |e| {
        !matches!(e.kind, Kind::Backend(_))
    })
}

#[derive(Clone, Debug, Default)]
pub struct RepairSnapshotsOptions {
    pub dry_run: bool,
    /// Remove the broken snapshots once their repaired versions are stored
    /// (and unreadable snapshot files).
    pub forget: bool,
    pub saver: SaverOptions,
}

/// What was wrong at one path of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// A file with `missing` of its `blobs` content blobs lost: dropped.
    FileDropped { missing: usize, blobs: usize },
    /// A directory whose tree is lost or unreadable: now empty.
    DirEmptied { reason: String },
    /// An entry whose name is invalid (or repeated): dropped.
    BadEntry { reason: String },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::FileDropped { missing, blobs } => write!(
                f,
                "file removed: {missing} of its {blobs} data blobs are lost"
            ),
            Damage::DirEmptied { reason } => {
                write!(f, "directory replaced with an empty one: {reason}")
            }
            Damage::BadEntry { reason } => write!(f, "entry removed: {reason}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing lost.
    Intact,
    /// A repaired snapshot was written (`None` in a dry run).
    Repaired { new: Option<Id> },
    /// The root tree is lost: nothing to keep; the snapshot was removed
    /// (or would be, in a dry run).
    Removed,
}

#[derive(Clone, Debug)]
pub struct SnapshotRepair {
    pub id: Id,
    /// Damage found in this snapshot, by snapshot path.
    pub damage: Vec<(PathBuf, Damage)>,
    pub outcome: Outcome,
    /// The broken snapshot was removed (`forget`, or a lost root).
    pub removed: bool,
}

#[derive(Debug, Default)]
pub struct RepairSnapshotsReport {
    pub snapshots: Vec<SnapshotRepair>,
    /// Snapshot files that cannot be read, and whether they were removed.
    pub unreadable: Vec<(Id, String, bool)>,
    pub stats: SaverStats,
}

impl RepairSnapshotsReport {
    pub fn changed(&self) -> usize {
        self.snapshots
            .iter()
            .filter(|s| s.outcome != Outcome::Intact)
            .count()
    }
}

/// Repair `snapshots`; see the module docs. `unreadable` are snapshot files
/// that could not be loaded: reported, and removed with `forget` if they are
/// damaged (never when the failure could be the backend's or a newer format).
pub fn repair_snapshots(
    repo: &Arc<Repository>,
    snapshots: &[(Id, Snapshot)],
    unreadable: &[(Id, Error)],
    opts: &RepairSnapshotsOptions,
) -> Result<RepairSnapshotsReport> {
    let stored = load_index_of_stored_packs(repo)?;
    let saver = if opts.dry_run {
        None
    } else {
        Some(BlobSaver::new(repo.clone(), opts.saver.clone()))
    };
    let mut rw = Rewriter {
        repo,
        saver: saver.as_ref(),
        stored: &stored,
        trees: HashSet::new(),
        damage: Vec::new(),
        root_lost: false,
    };
    let mut report = RepairSnapshotsReport::default();
    let mut new_snapshots: Vec<(usize, Snapshot)> = Vec::new();
    for (id, sn) in snapshots {
        let root = rw.rewrite(sn.tree)?;
        let damage = std::mem::take(&mut rw.damage);
        let outcome = match root {
            None => Outcome::Removed,
            Some(t) if t == sn.tree => Outcome::Intact,
            Some(t) => {
                let mut new = sn.clone();
                new.tree = t;
                if !new.tags.iter().any(|x| x == "repaired") {
                    new.tags.push("repaired".into());
                }
                new.original = Some(sn.original.unwrap_or(*id));
                new_snapshots.push((report.snapshots.len(), new));
                Outcome::Repaired { new: None }
            }
        };
        report.snapshots.push(SnapshotRepair {
            id: *id,
            damage,
            outcome,
            removed: false,
        });
    }
    drop(rw);
    if let Some(s) = saver {
        report.stats = s.finish()?;
    }
    if opts.dry_run {
        report.unreadable = unreadable
            .iter()
            .map(|(id, e)| (*id, e.message.clone(), false))
            .collect();
        return Ok(report);
    }
    // Every new snapshot is stored before anything is removed.
    for (i, sn) in new_snapshots {
        let nid = repo.save_snapshot(&sn)?;
        report.snapshots[i].outcome = Outcome::Repaired { new: Some(nid) };
    }
    for s in report.snapshots.iter_mut() {
        let remove = match s.outcome {
            Outcome::Intact => false,
            Outcome::Repaired { .. } => opts.forget,
            Outcome::Removed => true,
        };
        if remove {
            repo.backend().remove(FileKind::Snapshot, &s.id.to_hex())?;
            s.removed = true;
        }
    }
    for (id, e) in unreadable {
        let remove = opts.forget && e.kind == Kind::Corrupt;
        if remove {
            repo.backend().remove(FileKind::Snapshot, &id.to_hex())?;
        }
        report.unreadable.push((*id, e.message.clone(), remove));
    }
    Ok(report)
}

struct Rewriter<'a> {
    repo: &'a Repository,
    saver: Option<&'a BlobSaver>,
    stored: &'a HashSet<Id>,
    /// Trees found intact (nothing below them lost).
    trees: HashSet<Id>,
    damage: Vec<(PathBuf, Damage)>,
    /// The root of the snapshot being repaired is lost.
    root_lost: bool,
}

impl Rewriter<'_> {
    fn available(&self, id: &Id, kind: BlobKind) -> bool {
        match self.repo.lookup(id) {
            Some(loc) => loc.kind == kind && self.stored.contains(&loc.pack),
            None => false,
        }
    }

    /// Load a tree whose blob is available; the reason if it cannot be used.
    fn load(&self, id: &Id) -> std::result::Result<Tree, String> {
        if !self.available(id, BlobKind::Tree) {
            return Err(format!("tree {} is lost", id.short()));
        }
        self.repo.load_tree(id).map_err(|e| e.message)
    }

    /// Store a tree (unless a dry run); returns its id.
    fn save(&self, nodes: Vec<Node>) -> Result<Id> {
        let bytes = Tree { nodes }.to_bytes();
        let id = self.repo.blob_id(&bytes);
        if let Some(s) = self.saver {
            s.save_with_id(BlobKind::Tree, id, bytes)?;
        }
        Ok(id)
    }

    /// Check a loaded tree's entries and files; its subdirectories are
    /// [`rewrite_tree`]'s to visit.
    fn check_nodes(&mut self, id: Id, tree: Tree, path: PathBuf) -> Dir<bool> {
        let mut nodes: Vec<Node> = Vec::with_capacity(tree.nodes.len());
        let mut changed = false;
        let mut seen = HashSet::new();
        for n in tree.nodes {
            let p = join_name(
                &path,
                if valid_name(n.name.as_bytes()) {
                    n.name.as_bytes()
                } else {
                    b"?"
                },
            );
            if !valid_name(n.name.as_bytes()) {
                self.damage.push((
                    p,
                    Damage::BadEntry {
                        reason: format!("invalid name {:?}", n.name),
                    },
                ));
                changed = true;
                continue;
            }
            if !seen.insert(n.name.clone()) {
                self.damage.push((
                    p,
                    Damage::BadEntry {
                        reason: "a second entry with this name".into(),
                    },
                ));
                changed = true;
                continue;
            }
            if n.kind == NodeKind::File {
                let missing = n
                    .content
                    .iter()
                    .filter(|b| !self.available(b, BlobKind::Data))
                    .count();
                if missing > 0 {
                    self.damage.push((
                        p,
                        Damage::FileDropped {
                            missing,
                            blobs: n.content.len(),
                        },
                    ));
                    changed = true;
                    continue;
                }
            }
            nodes.push(n);
        }
        if changed {
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Dir {
            id,
            path,
            nodes,
            state: changed,
        }
    }

    /// The repaired id of the tree `root`, or `None` if it is lost itself.
    ///
    /// Bottom-up ([`rewrite_tree`]); a directory is stored after its
    /// subdirectories, once their new ids are known. Only trees found
    /// intact are remembered across snapshots: a damaged tree is walked
    /// again for each snapshot holding it, so each lists its own damage
    /// (only the paths down to the damage; intact subtrees are skipped).
    fn rewrite(&mut self, root: Id) -> Result<Option<Id>> {
        self.root_lost = false;
        let id = rewrite_tree(self, root, Path::new("/"))?;
        Ok((!self.root_lost).then_some(id))
    }
}

/// The open directory's state: whether any of its nodes changed.
impl tree_rewrite::Rewriter for Rewriter<'_> {
    type State = bool;
    type Out = Id;

    fn known(&mut self, _path: &Path, id: Id) -> Result<Option<Id>> {
        Ok(self.trees.contains(&id).then_some(id))
    }

    /// A lost or unreadable directory becomes an empty one; a lost root
    /// means the snapshot has nothing to keep.
    fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<bool, Id>> {
        match self.load(&id) {
            Ok(tree) => Ok(Opened::Dir(self.check_nodes(id, tree, path))),
            // Only the root has the path "/": every other path ends in a valid name.
            Err(reason) if path == Path::new("/") => {
                self.damage.push((
                    path,
                    Damage::DirEmptied {
                        reason: format!("the snapshot's root: {reason}"),
                    },
                ));
                self.root_lost = true;
                Ok(Opened::Done(id))
            }
            Err(reason) => {
                self.damage.push((path, Damage::DirEmptied { reason }));
                Ok(Opened::Done(self.save(Vec::new())?))
            }
        }
    }

    fn child(&mut self, parent: &mut Dir<bool>, index: usize, id: Id) -> Result<()> {
        let node = &mut parent.nodes[index];
        parent.state |= node.subtree != Some(id);
        node.subtree = Some(id);
        Ok(())
    }

    fn close(&mut self, dir: Dir<bool>) -> Result<Id> {
        if dir.state {
            self.save(dir.nodes)
        } else {
            self.trees.insert(dir.id);
            Ok(dir.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;
    use std::path::Path;

    /// A repository whose `lost/` files live in their own packs, which the
    /// test then deletes.
    struct Fixture {
        repo: Arc<Repository>,
        snap: Id,
        lost_packs: Vec<Id>,
        root: Id,
    }

    fn fixture(dir: &Path) -> Fixture {
        let repo = local_repo(dir);
        let s = saver(&repo);
        let keep = file(&s, "keep", &noise(100_000, 1), 30_000);
        let sub = dir_node(&s, "sub", vec![file(&s, "inner", b"inner", 10)]);
        s.finish().unwrap();
        let before: HashSet<Id> = repo.index().packs().iter().copied().collect();
        let s = saver(&repo);
        let lost = file(&s, "lost", &noise(90_000, 2), 30_000);
        s.finish().unwrap();
        let lost_packs: Vec<Id> = repo
            .index()
            .packs()
            .iter()
            .copied()
            .filter(|p| !before.contains(p))
            .collect();
        let s = saver(&repo);
        // A directory whose tree blob goes into the lost packs' neighbour: kept.
        let data = dir_node(&s, "data", vec![keep, sub, lost]);
        let root = tree(&s, vec![data]);
        s.finish().unwrap();
        let snap = repo.save_snapshot(&snapshot(root)).unwrap();
        Fixture {
            repo,
            snap,
            lost_packs,
            root,
        }
    }

    fn dir_node(s: &BlobSaver, name: &str, nodes: Vec<Node>) -> Node {
        dir(s, name, nodes)
    }

    fn names(repo: &Repository, tree: Id, path: &[&str]) -> Vec<String> {
        let mut t = repo.load_tree(&tree).unwrap();
        for p in path {
            let n = t
                .nodes
                .iter()
                .find(|n| n.name.as_bytes() == p.as_bytes())
                .unwrap();
            t = repo.load_tree(&n.subtree.unwrap()).unwrap();
        }
        t.nodes.iter().map(|n| n.name.to_string_lossy()).collect()
    }

    #[test]
    fn rebuilds_index_keeping_marks() {
        let tmp = tempfile::tempdir().unwrap();
        let f = fixture(tmp.path());
        let repo = &f.repo;
        repo.load_index().unwrap();
        let blobs = repo.index().len();
        let old = repo.backend().list(FileKind::Index).unwrap().len();
        let r = repair_index(repo, 2, &RepairProgress::default()).unwrap();
        assert!(r.unreadable_packs.is_empty() && r.unreadable_index_files.is_empty());
        assert_eq!(
            (
                r.old_index_files,
                r.index_files_removed,
                r.index_files_written
            ),
            (old, old, 1)
        );
        assert_eq!((r.blobs, r.marked_packs), (blobs, 0));

        // Mark a pack, as prune does (the only index file lists it marked): the mark survives a rebuild.
        let marked = f.lost_packs[0];
        let only = Id::from_hex(&repo.backend().list(FileKind::Index).unwrap()[0].name).unwrap();
        let mut file = repo.load_index_file(&only).unwrap();
        file.packs
            .iter_mut()
            .find(|p| p.id == marked)
            .unwrap()
            .marked = Some(1234);
        repo.save_index_file(&file).unwrap();
        repo.backend()
            .remove(FileKind::Index, &only.to_hex())
            .unwrap();
        let r = repair_index(repo, 2, &RepairProgress::default()).unwrap();
        assert_eq!(r.marked_packs, 1);
        repo.load_index().unwrap();
        assert_eq!(repo.index().len(), blobs);
        assert_eq!(repo.index().marked(&marked), Some(1234));

        // No index files at all, and a damaged pack: the rest is indexed, the pack reported.
        for f in repo.backend().list(FileKind::Index).unwrap() {
            repo.backend().remove(FileKind::Index, &f.name).unwrap();
        }
        let victim = marked.to_hex();
        let path = tmp.path().join("data").join(&victim[..2]).join(&victim);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 1;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let r = repair_index(repo, 2, &RepairProgress::default()).unwrap();
        assert_eq!(r.unreadable_packs.len(), 1);
        assert_eq!(r.unreadable_packs[0].0, marked);
        assert_eq!((r.old_index_files, r.marked_packs), (0, 0));
        repo.load_index().unwrap();
        assert_eq!(repo.index().len(), blobs - 3);
    }

    #[test]
    fn repairs_snapshot_with_lost_pack() {
        let tmp = tempfile::tempdir().unwrap();
        let f = fixture(tmp.path());
        let repo = &f.repo;
        for p in &f.lost_packs {
            repo.backend().remove(FileKind::Data, &p.to_hex()).unwrap();
        }
        let (snaps, bad) = load_snapshots(repo).unwrap();
        assert!(bad.is_empty());
        let dry = repair_snapshots(
            repo,
            &snaps,
            &[],
            &RepairSnapshotsOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(dry.changed(), 1);
        assert_eq!(dry.snapshots[0].outcome, Outcome::Repaired { new: None });
        assert_eq!(repo.backend().list(FileKind::Snapshot).unwrap().len(), 1);

        let r = repair_snapshots(
            repo,
            &snaps,
            &[],
            &RepairSnapshotsOptions {
                forget: true,
                ..Default::default()
            },
        )
        .unwrap();
        let s = &r.snapshots[0];
        assert_eq!(
            s.damage,
            vec![(
                PathBuf::from("/data/lost"),
                Damage::FileDropped {
                    missing: 3,
                    blobs: 3
                }
            )]
        );
        let Outcome::Repaired { new: Some(new) } = s.outcome else {
            panic!("{:?}", s.outcome)
        };
        assert!(s.removed);
        let sn = repo.load_snapshot(&new).unwrap();
        assert_eq!(sn.tags, vec!["repaired"]);
        assert_eq!(sn.original, Some(f.snap));
        assert_eq!(names(repo, sn.tree, &["data"]), vec!["keep", "sub"]);
        assert_eq!(repo.backend().list(FileKind::Snapshot).unwrap().len(), 1);

        // Nothing more to repair.
        let (snaps, _) = load_snapshots(repo).unwrap();
        let r = repair_snapshots(repo, &snaps, &[], &RepairSnapshotsOptions::default()).unwrap();
        assert_eq!(r.changed(), 0);
    }

    #[test]
    fn lost_trees_become_empty_dirs_and_lost_roots_remove() {
        let repo = repo();
        // The subdirectory's tree in a pack of its own.
        let s = saver(&repo);
        let sub = dir(&s, "sub", vec![file(&s, "f", b"f", 10)]);
        s.finish().unwrap();
        let sub_pack = repo.lookup(&sub.subtree.unwrap()).unwrap().pack;
        let s = saver(&repo);
        let root = tree(
            &s,
            vec![dir(&s, "data", vec![sub, file(&s, "g", b"g", 10)])],
        );
        s.finish().unwrap();
        let a = repo.save_snapshot(&snapshot(root)).unwrap();
        let b = repo
            .save_snapshot(&snapshot(Id::sha256(b"no such tree")))
            .unwrap();
        repo.backend()
            .remove(FileKind::Data, &sub_pack.to_hex())
            .unwrap();

        let (snaps, _) = load_snapshots(repo.as_ref()).unwrap();
        let r = repair_snapshots(&repo, &snaps, &[], &RepairSnapshotsOptions::default()).unwrap();
        let ra = r.snapshots.iter().find(|s| s.id == a).unwrap();
        let rb = r.snapshots.iter().find(|s| s.id == b).unwrap();
        assert_eq!((&rb.outcome, rb.removed), (&Outcome::Removed, true));
        assert!(
            matches!(&ra.damage[..], [(p, Damage::DirEmptied { .. })] if p == Path::new("/data/sub")),
            "{:?}",
            ra.damage
        );
        let Outcome::Repaired { new: Some(new) } = ra.outcome else {
            panic!("{:?}", ra.outcome)
        };
        assert!(!ra.removed, "kept without forget");
        let sn = repo.load_snapshot(&new).unwrap();
        assert_eq!(names(&repo, sn.tree, &["data"]), vec!["g", "sub"]);
        assert!(names(&repo, sn.tree, &["data", "sub"]).is_empty());
        assert_eq!(
            repo.backend().list(FileKind::Snapshot).unwrap().len(),
            2,
            "a and its repaired copy"
        );
    }

    #[test]
    fn every_snapshot_sharing_damage_reports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let f = fixture(tmp.path());
        let repo = &f.repo;
        let mut other = snapshot(f.root);
        other.hostname = "second".into();
        repo.save_snapshot(&other).unwrap();
        for p in &f.lost_packs {
            repo.backend().remove(FileKind::Data, &p.to_hex()).unwrap();
        }
        let (snaps, _) = load_snapshots(repo).unwrap();
        let r = repair_snapshots(repo, &snaps, &[], &RepairSnapshotsOptions::default()).unwrap();
        assert_eq!(r.changed(), 2);
        for s in &r.snapshots {
            assert_eq!(
                s.damage,
                vec![(
                    PathBuf::from("/data/lost"),
                    Damage::FileDropped {
                        missing: 3,
                        blobs: 3
                    }
                )]
            );
        }
        let [a, b] = &r.snapshots[..] else { panic!() };
        let tree = |s: &SnapshotRepair| match s.outcome {
            Outcome::Repaired { new: Some(n) } => repo.load_snapshot(&n).unwrap().tree,
            ref o => panic!("{o:?}"),
        };
        assert_eq!(tree(a), tree(b), "the same repaired tree");
    }
}
