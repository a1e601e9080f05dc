//! Differences between two snapshot trees (`cairn diff`), as restic's diff.
//!
//! Both trees are walked together, one directory level at a time, merging
//! the two sorted listings by name: memory holds the two listings on the
//! path to the current directory, never a whole snapshot. A directory with
//! the same subtree id on both sides is identical and is not descended.
//!
//! Each difference is one [`Change`]: `+` added, `-` removed (everything
//! below an added or removed directory too), `M` a file's content changed
//! (`M?` when all its metadata stayed the same: probable bit rot), `T` the
//! type changed (the old contents count as removed, the new as added), `U`
//! only metadata changed (mode, owner, times, size, link target, xattrs;
//! for directories only with `metadata_dirs`, since a directory's times
//! change whenever its contents do).
//!
//! Blob statistics follow restic: the blobs referenced by the removed or
//! changed side minus those referenced by the other side, minus those in
//! identical subtrees (walked only when a candidate blob is left to check),
//! with their plaintext sizes.

use crate::tree_walk::{self, valid_name, Visit};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::Repository;
use std::collections::HashSet;
use std::path::Path;

/// One difference; `path` ends with `/` for a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub modifier: &'static str,
}

/// Counts for one side (restic's `DiffStat`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiffStat {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of those blobs.
    pub bytes: u64,
}

impl DiffStat {
    fn add(&mut self, n: &Node) {
        match n.kind {
            NodeKind::File => self.files += 1,
            NodeKind::Dir => self.dirs += 1,
            _ => self.others += 1,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub changed_files: u64,
    pub added: DiffStat,
    pub removed: DiffStat,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct DiffOptions {
    /// Report `U` for directories whose own metadata changed.
    pub metadata_dirs: bool,
}

/// Metadata a user can see and set (not atime, inode, device or links,
/// which change without anyone touching the file).
fn same_metadata(a: &Node, b: &Node) -> bool {
    a.mode == b.mode
        && a.mtime == b.mtime
        && a.uid == b.uid
        && a.gid == b.gid
        && a.user == b.user
        && a.group == b.group
        && (a.size == b.size || a.kind == NodeKind::Dir)
        && a.linktarget == b.linktarget
        && a.rdev == b.rdev
        && a.xattrs == b.xattrs
}

type BlobSet = HashSet<(BlobKind, Id)>;

fn add_blobs(set: &mut BlobSet, n: &Node) {
    match n.kind {
        NodeKind::File => set.extend(n.content.iter().map(|id| (BlobKind::Data, *id))),
        NodeKind::Dir => set.extend(n.subtree.map(|id| (BlobKind::Tree, id))),
        _ => {}
    }
}

struct Differ<'a> {
    repo: &'a Repository,
    opts: DiffOptions,
    on_change: &'a mut dyn FnMut(Change) -> Result<()>,
    stats: DiffStats,
    before: BlobSet,
    after: BlobSet,
    /// Subtrees present unchanged on both sides.
    common_trees: Vec<Id>,
}

fn dir_path(prefix: &str, name: &str, is_dir: bool) -> String {
    let mut p = if prefix.ends_with('/') {
        format!("{prefix}{name}")
    } else {
        format!("{prefix}/{name}")
    };
    if is_dir {
        p.push('/');
    }
    p
}

impl Differ<'_> {
    fn change(&mut self, path: String, modifier: &'static str) -> Result<()> {
        (self.on_change)(Change { path, modifier })
    }

    fn load(&self, id: Option<Id>, path: &str) -> Result<Vec<Node>> {
        let Some(id) = id else { return Ok(vec![]) };
        let mut nodes = self
            .repo
            .load_tree(&id)
            .map_err(|e| e.context(format!("directory {path}")))?
            .nodes;
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(bad) = nodes.iter().find(|n| !valid_name(n.name.as_bytes())) {
            return Err(Error::corrupt(
                format!("directory {path}"),
                format!("invalid entry name {:?}", bad.name),
            ));
        }
        Ok(nodes)
    }

    /// Report everything below a directory that exists on one side only.
    fn one_side(&mut self, added: bool, dir: &str, subtree: Option<Id>) -> Result<()> {
        let Some(id) = subtree else { return Ok(()) };
        let modifier = if added { "+" } else { "-" };
        // Reported as the walk goes: one directory listing in memory at a time.
        let repo = self.repo;
        tree_walk::walk(
            repo,
            id,
            Path::new(dir.trim_end_matches('/')),
            &mut |p: &Path, n: &Node| {
                let mut path = p.to_string_lossy().into_owned();
                if n.kind == NodeKind::Dir {
                    path.push('/');
                }
                self.change(path, modifier)?;
                let (stat, set) = if added {
                    (&mut self.stats.added, &mut self.after)
                } else {
                    (&mut self.stats.removed, &mut self.before)
                };
                stat.add(n);
                add_blobs(set, n);
                Ok(Visit::Continue)
            },
        )
    }

    fn tree(&mut self, prefix: &str, t1: Option<Id>, t2: Option<Id>) -> Result<()> {
        let a = self.load(t1, prefix)?;
        let b = self.load(t2, prefix)?;
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.removed(prefix, &a[i])?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    self.added(prefix, &b[j])?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    self.both(prefix, &a[i], &b[j])?;
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    fn removed(&mut self, prefix: &str, n: &Node) -> Result<()> {
        let path = dir_path(prefix, &n.name.to_string_lossy(), n.kind == NodeKind::Dir);
        self.change(path.clone(), "-")?;
        self.stats.removed.add(n);
        add_blobs(&mut self.before, n);
        if n.kind == NodeKind::Dir {
            self.one_side(false, &path, n.subtree)?;
        }
        Ok(())
    }

    fn added(&mut self, prefix: &str, n: &Node) -> Result<()> {
        let path = dir_path(prefix, &n.name.to_string_lossy(), n.kind == NodeKind::Dir);
        self.change(path.clone(), "+")?;
        self.stats.added.add(n);
        add_blobs(&mut self.after, n);
        if n.kind == NodeKind::Dir {
            self.one_side(true, &path, n.subtree)?;
        }
        Ok(())
    }

    fn both(&mut self, prefix: &str, a: &Node, b: &Node) -> Result<()> {
        add_blobs(&mut self.before, a);
        add_blobs(&mut self.after, b);
        let name = a.name.to_string_lossy();
        if a.kind != b.kind {
            let path = dir_path(prefix, &name, b.kind == NodeKind::Dir);
            self.change(path, "T")?;
            if a.kind == NodeKind::Dir {
                self.one_side(false, &dir_path(prefix, &name, true), a.subtree)?;
            }
            if b.kind == NodeKind::Dir {
                self.one_side(true, &dir_path(prefix, &name, true), b.subtree)?;
            }
            return Ok(());
        }
        let path = dir_path(prefix, &name, a.kind == NodeKind::Dir);
        let meta_same = same_metadata(a, b);
        if a.kind == NodeKind::File && a.content != b.content {
            self.stats.changed_files += 1;
            let rot = meta_same && a.ctime == b.ctime && a.inode == b.inode;
            self.change(path.clone(), if rot { "M?" } else { "M" })?;
        } else if !meta_same && (a.kind != NodeKind::Dir || self.opts.metadata_dirs) {
            self.change(path.clone(), "U")?;
        }
        if a.kind == NodeKind::Dir {
            if a.subtree == b.subtree {
                self.common_trees.extend(a.subtree);
            } else {
                self.tree(&path, a.subtree, b.subtree)?;
            }
        }
        Ok(())
    }

    /// Remove from the candidate sets every blob found below the common
    /// subtrees; stops as soon as no candidate is left.
    fn subtract_common(&self, added: &mut BlobSet, removed: &mut BlobSet) -> Result<()> {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut stack: Vec<Id> = self.common_trees.clone();
        while let Some(id) = stack.pop() {
            if added.is_empty() && removed.is_empty() {
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            let key = (BlobKind::Tree, id);
            added.remove(&key);
            removed.remove(&key);
            for n in self.repo.load_tree(&id)?.nodes {
                match n.kind {
                    NodeKind::File => {
                        for c in &n.content {
                            added.remove(&(BlobKind::Data, *c));
                            removed.remove(&(BlobKind::Data, *c));
                        }
                    }
                    NodeKind::Dir => stack.extend(n.subtree),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Compare tree `from` with tree `to` (each a snapshot's root tree, or a
/// directory's subtree). `on_change` is called for each difference, in
/// path order.
pub fn diff(
    repo: &Repository,
    from: Id,
    to: Id,
    opts: DiffOptions,
    on_change: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<DiffStats> {
    let mut d = Differ {
        repo,
        opts,
        on_change,
        stats: DiffStats::default(),
        before: BlobSet::new(),
        after: BlobSet::new(),
        common_trees: vec![],
    };
    d.before.insert((BlobKind::Tree, from));
    d.after.insert((BlobKind::Tree, to));
    if from != to {
        d.tree("/", Some(from), Some(to))?;
    } else {
        d.common_trees.push(from);
    }
    let mut removed: BlobSet = d.before.difference(&d.after).copied().collect();
    let mut added: BlobSet = d.after.difference(&d.before).copied().collect();
    d.subtract_common(&mut added, &mut removed)?;
    let index = repo.index();
    let count = |set: &BlobSet, stat: &mut DiffStat| {
        for (kind, id) in set {
            match kind {
                BlobKind::Data => stat.data_blobs += 1,
                BlobKind::Tree => stat.tree_blobs += 1,
            }
            if let Some(loc) = index.get(id) {
                stat.bytes += loc.raw_length as u64;
            }
        }
    };
    let mut stats = std::mem::take(&mut d.stats);
    count(&added, &mut stats.added);
    count(&removed, &mut stats.removed);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;

    fn run(repo: &Repository, a: Id, b: Id, opts: DiffOptions) -> (Vec<String>, DiffStats) {
        let mut lines = vec![];
        let stats = diff(repo, a, b, opts, &mut |c: Change| {
            lines.push(format!("{} {}", c.modifier, c.path));
            Ok(())
        })
        .unwrap();
        (lines, stats)
    }

    #[test]
    fn added_removed_modified_type_and_metadata() {
        let repo = repo();
        let s = saver(&repo);
        let shared = noise(3000, 9);
        let same = dir(&s, "same", vec![file(&s, "x", &shared, 1000)]);
        let mut chmod = file(&s, "perm", b"p", 8);
        let a = tree(
            &s,
            vec![
                file(&s, "edit", b"old old", 4),
                chmod.clone(),
                file(&s, "gone", &noise(100, 1), 100),
                dir(
                    &s,
                    "olddir",
                    vec![
                        file(&s, "inner", b"i", 4),
                        dir(&s, "deep", vec![file(&s, "f", b"f", 4)]),
                    ],
                ),
                file(&s, "becomes-dir", b"b", 4),
                same.clone(),
            ],
        );
        chmod.mode = libc::S_IFREG | 0o600;
        let mut rot = file(&s, "edit", b"new new", 4);
        rot.mtime += 1;
        let b = tree(
            &s,
            vec![
                rot,
                chmod,
                file(&s, "new", &noise(50, 2), 100),
                dir(&s, "becomes-dir", vec![file(&s, "c", b"c", 4)]),
                same,
                // Data that is in the common subtree is not "added".
                file(&s, "copy-of-shared", &shared, 1000),
            ],
        );
        s.finish().unwrap();
        let (lines, st) = run(&repo, a, b, DiffOptions::default());
        assert_eq!(
            lines,
            [
                "T /becomes-dir/",
                "+ /becomes-dir/c",
                "+ /copy-of-shared",
                "M /edit",
                "- /gone",
                "+ /new",
                "- /olddir/",
                "- /olddir/deep/",
                "- /olddir/deep/f",
                "- /olddir/inner",
                "U /perm",
            ]
        );
        assert_eq!(st.changed_files, 1);
        assert_eq!(
            (
                st.added.files,
                st.added.dirs,
                st.removed.files,
                st.removed.dirs
            ),
            (3, 0, 3, 2)
        );
        // Added data: "new new" (2 blobs: "new ", "new"), c, the new file; the shared blobs are not new.
        assert_eq!(st.added.data_blobs, 4, "{st:?}");
        // Trees: the new root and becomes-dir; bytes: 1 + 4 + 3 + 50 of data, and the trees.
        assert_eq!(st.added.tree_blobs, 2);
        assert!(st.added.bytes > 58, "{st:?}");
        // Removed: "old " and "old", the gone file, b, inner, f; trees: the root, olddir, deep.
        assert_eq!(
            (st.removed.data_blobs, st.removed.tree_blobs),
            (6, 3),
            "{st:?}"
        );
        // Same trees: nothing.
        let (lines, st) = run(&repo, a, a, DiffOptions::default());
        assert!(lines.is_empty());
        assert_eq!(st, DiffStats::default());
    }

    #[test]
    fn bit_rot_and_directory_metadata() {
        let repo = repo();
        let s = saver(&repo);
        let a = tree(&s, vec![file(&s, "f", b"good", 8), dir(&s, "d", vec![])]);
        let mut d2 = dir(&s, "d", vec![]);
        d2.mtime += 5;
        let b = tree(&s, vec![file(&s, "f", b"bad!", 8), d2]);
        s.finish().unwrap();
        let (lines, _) = run(&repo, a, b, DiffOptions::default());
        assert_eq!(lines, ["M? /f"]);
        let (lines, _) = run(
            &repo,
            a,
            b,
            DiffOptions {
                metadata_dirs: true,
            },
        );
        assert_eq!(lines, ["U /d/", "M? /f"]);
    }
}
