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

use crate::pattern::PatternSet;
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
        self.tree(Path::new("/"), root)
    }

    fn save(&self, bytes: Vec<u8>) -> Result<Id> {
        match self.saver {
            Some(s) => Ok(s.save(BlobKind::Tree, bytes)?.0),
            None => Ok(self.repo.blob_id(&bytes)),
        }
    }

    fn tree(&mut self, path: &Path, id: Id) -> Result<Rewritten> {
        if let Some(r) = self.cache.get(&(path.to_path_buf(), id)) {
            return Ok(r.clone());
        }
        let bytes = self.repo.read_blob(&id).map_err(|e| {
            Error::new(
                e.kind,
                format!("directory {}: {}", path.display(), e.message),
            )
        })?;
        let tree = Tree::from_bytes(&bytes)
            .map_err(|e| Error::format(format!("tree {}", id.short()), e))?;
        let mut out = Vec::with_capacity(tree.nodes.len());
        let (mut changed, mut excluded, mut size) = (false, vec![], TreeSize::default());
        for mut node in tree.nodes {
            if !valid_name(node.name.as_bytes()) {
                return Err(Error::corrupt(
                    format!("directory {}", path.display()),
                    format!("invalid entry name {:?}", node.name),
                ));
            }
            let p = join_name(path, node.name.as_bytes());
            if self.exclude.matches(&p) {
                changed = true;
                excluded.push(p);
                continue;
            }
            match (node.kind, node.subtree) {
                (NodeKind::Dir, Some(sub)) => {
                    let r = self.tree(&p, sub)?;
                    if r.changed {
                        changed = true;
                        node.subtree = Some(r.tree);
                    }
                    excluded.extend(r.excluded.iter().cloned());
                    size.files += r.size.files;
                    size.bytes += r.size.bytes;
                }
                (NodeKind::File, _) => {
                    size.files += 1;
                    size.bytes += node.size;
                }
                _ => {}
            }
            out.push(node);
        }
        let tree = if changed {
            self.save(Tree { nodes: out }.to_bytes())?
        } else {
            self.save(bytes)?
        };
        let r = Rewritten {
            tree,
            changed,
            excluded,
            size,
        };
        self.cache.insert((path.to_path_buf(), id), r.clone());
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
        let dropped: Vec<String> = dry.excluded.iter().map(|p| p.display().to_string()).collect();
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
        let r = Rewriter::new(&repo, None, &none)
            .rewrite(root)
            .unwrap();
        assert_eq!((r.tree, r.changed), (root, false));
    }
}
