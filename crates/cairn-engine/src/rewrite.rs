//! Rewriting a snapshot's tree without excluded paths (`cairn rewrite`).
//!
//! Every directory is loaded (a pattern may match at any depth), the nodes
//! whose snapshot path matches an exclude pattern are dropped, and a
//! directory is saved again only if something below it changed: an
//! unchanged directory keeps its tree id (its original bytes are handed to
//! the saver, which stores nothing if the blob is live in the index, so
//! the tree stays usable even if prune had marked its pack). Results are
//! cached by (path, tree id), so rewriting many snapshots that share
//! directories loads each directory once.
//!
//! With no saver (a dry run) nothing is written; the ids are still computed.
//! The walk is [`crate::tree_rewrite`]'s (an explicit stack: any depth).

use crate::pattern::PatternSet;
use crate::tree_rewrite::{self, rewrite_tree, Dir, Opened};
use crate::tree_walk::{join_name, valid_name};
use crate::{Error, Result};
use cairn_repository::format::tree::{NodeKind, Tree};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{BlobSaver, Repository};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a rewritten tree holds (restic puts these in the new snapshot's
/// summary as `total_files_processed` / `total_bytes_processed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeSize {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub tree: Id,
    pub changed: bool,
    /// The excluded paths (a directory once, not its contents), in tree order.
    pub excluded: Vec<PathBuf>,
    pub size: TreeSize,
}

pub struct Rewriter<'a> {
    repo: &'a Repository,
    saver: Option<&'a BlobSaver>,
    exclude: &'a PatternSet,
    cache: HashMap<(PathBuf, Id), Rewritten>,
}

/// A directory being rewritten: its bytes as stored, and what its nodes
/// and subdirectories contributed so far.
pub struct Pending {
    bytes: Vec<u8>,
    changed: bool,
    excluded: Vec<PathBuf>,
    size: TreeSize,
}

impl<'a> Rewriter<'a> {
    pub fn new(
        repo: &'a Repository,
        saver: Option<&'a BlobSaver>,
        exclude: &'a PatternSet,
    ) -> Self {
        Rewriter {
            repo,
            saver,
            exclude,
            cache: HashMap::new(),
        }
    }

    /// Rewrite a snapshot's root tree.
    pub fn rewrite(&mut self, root: Id) -> Result<Rewritten> {
        rewrite_tree(self, root, Path::new("/"))
    }

    fn save(&self, bytes: Vec<u8>) -> Result<Id> {
        match self.saver {
            Some(s) => Ok(s.save(BlobKind::Tree, bytes)?.0),
            None => Ok(self.repo.blob_id(&bytes)),
        }
    }
}

impl tree_rewrite::Rewriter for Rewriter<'_> {
    type State = Pending;
    type Out = Rewritten;

    fn known(&mut self, path: &Path, id: Id) -> Result<Option<Rewritten>> {
        Ok(self.cache.get(&(path.to_path_buf(), id)).cloned())
    }

    fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<Pending, Rewritten>> {
        let bytes = self
            .repo
            .read_blob(&id)
            .map_err(|e| e.context(format!("directory {}", path.display())))?;
        let tree = Tree::from_bytes(&bytes)
            .map_err(|e| Error::format(format!("tree {}", id.short()), e))?;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        let mut st = Pending {
            bytes,
            changed: false,
            excluded: vec![],
            size: TreeSize::default(),
        };
        for node in tree.nodes {
            if !valid_name(node.name.as_bytes()) {
                return Err(Error::corrupt(
                    format!("directory {}", path.display()),
                    format!("invalid entry name {:?}", node.name),
                ));
            }
            let p = join_name(&path, node.name.as_bytes());
            if self.exclude.matches(&p) {
                st.changed = true;
                st.excluded.push(p);
                continue;
            }
            if node.kind == NodeKind::File {
                st.size.files += 1;
                st.size.bytes += node.size;
            }
            nodes.push(node);
        }
        Ok(Opened::Dir(Dir {
            id,
            path,
            nodes,
            state: st,
        }))
    }

    fn child(&mut self, parent: &mut Dir<Pending>, index: usize, r: Rewritten) -> Result<()> {
        let st = &mut parent.state;
        if r.changed {
            st.changed = true;
            parent.nodes[index].subtree = Some(r.tree);
        }
        st.excluded.extend(r.excluded);
        st.size.files += r.size.files;
        st.size.bytes += r.size.bytes;
        Ok(())
    }

    fn close(&mut self, dir: Dir<Pending>) -> Result<Rewritten> {
        let Pending {
            bytes,
            changed,
            mut excluded,
            size,
        } = dir.state;
        // This directory's own exclusions were listed before its subdirectories': back to tree order.
        excluded.sort();
        let tree = if changed {
            self.save(Tree { nodes: dir.nodes }.to_bytes())?
        } else {
            self.save(bytes)?
        };
        let r = Rewritten {
            tree,
            changed,
            excluded,
            size,
        };
        self.cache.insert((dir.path, dir.id), r.clone());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;
    use crate::tree_walk::{find_node, walk, Visit};
    use cairn_repository::format::tree::Node;

    #[test]
    fn excludes_and_keeps_unchanged_subtrees() {
        let repo = repo();
        let s = saver(&repo);
        let keep = dir(&s, "keep", vec![file(&s, "a.txt", b"aaa", 8)]);
        let keep_id = keep.subtree.unwrap();
        let root = tree(
            &s,
            vec![
                keep,
                dir(
                    &s,
                    "mixed",
                    vec![
                        file(&s, "b.txt", b"bb", 8),
                        file(&s, "c.tmp", b"c", 8),
                        dir(&s, "cache", vec![file(&s, "x", b"x", 8)]),
                    ],
                ),
                file(&s, "top.tmp", b"t", 8),
            ],
        );
        s.finish().unwrap();
        let ex = PatternSet::new(&["*.tmp", "mixed/cache"], false).unwrap();

        // Dry run: ids computed, nothing stored.
        let dry = Rewriter::new(&repo, None, &ex).rewrite(root).unwrap();
        let dropped: Vec<String> = dry
            .excluded
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(dropped, ["/mixed/c.tmp", "/mixed/cache", "/top.tmp"]);
        assert!(dry.changed);
        assert_eq!(dry.size, TreeSize { files: 2, bytes: 5 });
        assert!(repo.lookup(&dry.tree).is_none());

        let s = saver(&repo);
        let r = Rewriter::new(&repo, Some(&s), &ex).rewrite(root).unwrap();
        s.finish().unwrap();
        assert_eq!(r, dry);
        assert_eq!(
            find_node(&repo, r.tree, Path::new("/keep"))
                .unwrap()
                .subtree,
            Some(keep_id)
        );
        let mut paths = vec![];
        walk(&repo, r.tree, Path::new("/"), &mut |p: &Path, _: &Node| {
            paths.push(p.display().to_string());
            Ok(Visit::Continue)
        })
        .unwrap();
        assert_eq!(paths, ["/keep", "/keep/a.txt", "/mixed", "/mixed/b.txt"]);

        // Nothing to exclude: same root id.
        let none = PatternSet::new(&["nomatch"], false).unwrap();
        let r = Rewriter::new(&repo, None, &none).rewrite(root).unwrap();
        assert_eq!((r.tree, r.changed), (root, false));
    }

    #[test]
    fn rewrites_a_tree_10000_directories_deep() {
        const DEPTH: usize = 10_000;
        let repo = repo();
        let s = saver(&repo);
        let leaves = vec![file(&s, "x.tmp", b"x", 8), file(&s, "y", b"yy", 8)];
        let root = deep_tree(&s, DEPTH, leaves);
        s.finish().unwrap();
        let ex = PatternSet::new(&["*.tmp"], false).unwrap();
        let s = saver(&repo);
        let r = Rewriter::new(&repo, Some(&s), &ex).rewrite(root).unwrap();
        s.finish().unwrap();
        assert!(r.changed);
        assert_eq!(r.size, TreeSize { files: 1, bytes: 2 });
        let [gone] = &r.excluded[..] else {
            panic!("{} excluded", r.excluded.len())
        };
        assert!(gone.ends_with("d/x.tmp"));
        assert_eq!(gone.components().count(), DEPTH + 2);
    }
}
