//! Rewriting a snapshot's trees bottom-up: the one walker behind `copy`,
//! `repair snapshots` and `rewrite`.
//!
//! A rewrite changes nodes (drops some, maps content ids) and therefore
//! tree ids: a directory can be stored only once the new ids of its
//! subdirectories are known. [`rewrite_tree`] walks depth first with an
//! explicit stack (never recursion, so a tree thousands of directories
//! deep cannot overflow the thread's stack) and hands each step to a
//! [`Rewriter`]:
//!
//! 1. [`Rewriter::known`]: a directory whose result is already known (a
//!    cache across snapshots) is not loaded again;
//! 2. [`Rewriter::open`]: load a directory and rewrite its nodes before
//!    its subdirectories are visited (or give its result at once, e.g. an
//!    empty directory for a lost tree);
//! 3. [`Rewriter::child`]: a subdirectory's result goes into its node in
//!    the parent (in node order);
//! 4. [`Rewriter::close`]: every subdirectory is done: store the directory
//!    and give its result to its parent.
//!
//! Memory holds the directories on the path from the root to the one being
//! rewritten, never the whole snapshot. Only nodes of kind `Dir` with a
//! subtree are descended into.

use crate::tree_walk::join_name;
use crate::Result;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use std::path::{Path, PathBuf};

/// A directory being rewritten.
pub struct Dir<S> {
    /// Its tree id before the rewrite.
    pub id: Id,
    /// Its snapshot path (`/` for the root).
    pub path: PathBuf,
    /// Its nodes, as [`Rewriter::open`] left them; subdirectory nodes are
    /// updated by [`Rewriter::child`].
    pub nodes: Vec<Node>,
    /// What the rewriter keeps about it until [`Rewriter::close`].
    pub state: S,
}

/// What [`Rewriter::open`] made of a directory.
pub enum Opened<S, O> {
    /// Its nodes, to descend into and then close.
    Dir(Dir<S>),
    /// Its result, without descending (e.g. a lost tree replaced).
    Done(O),
}

/// The steps of a bottom-up rewrite; see the module docs.
pub trait Rewriter {
    /// Kept per open directory.
    type State;
    /// What a finished directory gives its parent (at least its new id).
    type Out;

    /// The result for the tree `id` at `path`, if already known: it is
    /// then neither opened nor closed. The default knows nothing.
    fn known(&mut self, _path: &Path, _id: Id) -> Result<Option<Self::Out>> {
        Ok(None)
    }

    /// Load the tree `id` of the directory at `path` and rewrite its nodes.
    fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<Self::State, Self::Out>>;

    /// The subdirectory `parent.nodes[index]` is finished with `out`.
    fn child(&mut self, parent: &mut Dir<Self::State>, index: usize, out: Self::Out) -> Result<()>;

    /// Every subdirectory of `dir` is finished: store it.
    fn close(&mut self, dir: Dir<Self::State>) -> Result<Self::Out>;
}

struct Frame<S> {
    dir: Dir<S>,
    /// The next node to look at.
    next: usize,
    /// This directory's node index in its parent.
    index: usize,
}

/// Rewrite the tree `root` (whose snapshot path is `path`) bottom-up with
/// `r`; returns the root's result.
pub fn rewrite_tree<R: Rewriter>(r: &mut R, root: Id, path: &Path) -> Result<R::Out> {
    if let Some(out) = r.known(path, root)? {
        return Ok(out);
    }
    let first = match r.open(path.to_path_buf(), root)? {
        Opened::Done(out) => return Ok(out),
        Opened::Dir(dir) => dir,
    };
    let mut stack = vec![Frame {
        dir: first,
        next: 0,
        index: 0,
    }];
    loop {
        let top = stack.last_mut().expect("non-empty stack");
        let mut descend = None;
        while top.next < top.dir.nodes.len() {
            let index = top.next;
            top.next += 1;
            let node = &top.dir.nodes[index];
            let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) else {
                continue;
            };
            let path = join_name(&top.dir.path, node.name.as_bytes());
            if let Some(out) = r.known(&path, sub)? {
                r.child(&mut top.dir, index, out)?;
                continue;
            }
            match r.open(path, sub)? {
                Opened::Done(out) => r.child(&mut top.dir, index, out)?,
                Opened::Dir(dir) => {
                    descend = Some(Frame {
                        dir,
                        next: 0,
                        index,
                    });
                    break;
                }
            }
        }
        if let Some(frame) = descend {
            stack.push(frame);
            continue;
        }
        let done = stack.pop().expect("non-empty stack");
        let out = r.close(done.dir)?;
        match stack.last_mut() {
            Some(parent) => r.child(&mut parent.dir, done.index, out)?,
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;
    use crate::tree_walk::{walk, Visit};
    use cairn_repository::format::tree::Tree;
    use cairn_repository::format::BlobKind;
    use cairn_repository::{BlobSaver, Repository};

    /// Drops every file named `drop`; counts what it opens and closes.
    struct DropFiles<'a> {
        repo: &'a Repository,
        saver: &'a BlobSaver,
        drop: &'a str,
        opened: usize,
    }

    impl Rewriter for DropFiles<'_> {
        type State = bool;
        type Out = Id;

        fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<bool, Id>> {
            self.opened += 1;
            let mut nodes = self.repo.load_tree(&id)?.nodes;
            let before = nodes.len();
            nodes.retain(|n| {
                !(n.kind == NodeKind::File && n.name.as_bytes() == self.drop.as_bytes())
            });
            let changed = nodes.len() != before;
            Ok(Opened::Dir(Dir {
                id,
                path,
                nodes,
                state: changed,
            }))
        }

        fn child(&mut self, parent: &mut Dir<bool>, index: usize, out: Id) -> Result<()> {
            let node = &mut parent.nodes[index];
            parent.state |= node.subtree != Some(out);
            node.subtree = Some(out);
            Ok(())
        }

        fn close(&mut self, dir: Dir<bool>) -> Result<Id> {
            if !dir.state {
                return Ok(dir.id);
            }
            let bytes = Tree { nodes: dir.nodes }.to_bytes();
            Ok(self.saver.save(BlobKind::Tree, bytes)?.0)
        }
    }

    #[test]
    fn rewrites_a_tree_10000_directories_deep() {
        const DEPTH: usize = 10_000;
        let repo = repo();
        let s = saver(&repo);
        let leaves = vec![file(&s, "gone", b"x", 8), file(&s, "kept", b"y", 8)];
        let root = deep_tree(&s, DEPTH, leaves);
        s.finish().unwrap();

        // Drop the files named `drop`: the new root and how many trees were opened.
        let drop_files = |drop: &str| {
            let s = saver(&repo);
            let mut r = DropFiles {
                repo: &repo,
                saver: &s,
                drop,
                opened: 0,
            };
            let new_root = rewrite_tree(&mut r, root, Path::new("/")).unwrap();
            let opened = r.opened;
            s.finish().unwrap();
            (new_root, opened)
        };
        let (new_root, opened) = drop_files("gone");
        assert_eq!(opened, DEPTH + 1);
        assert_ne!(new_root, root);

        let mut files = Vec::new();
        let mut dirs = 0;
        walk(
            &repo,
            new_root,
            Path::new("/"),
            &mut |p: &Path, n: &Node| {
                match n.kind {
                    NodeKind::Dir => dirs += 1,
                    _ => files.push(p.to_path_buf()),
                }
                Ok(Visit::Continue)
            },
        )
        .unwrap();
        assert_eq!(dirs, DEPTH);
        let [kept] = &files[..] else {
            panic!("one file expected, got {}", files.len())
        };
        assert!(kept.ends_with("d/kept"));
        assert_eq!(kept.components().count(), DEPTH + 2, "/, d × DEPTH, kept");

        // Nothing to drop: the same root, every tree kept.
        assert_eq!(drop_files("none").0, root);
    }
}
