//! Finding paths and blobs in snapshots (`cairn find`), as restic's find.
//!
//! - Path patterns ([`FindPattern`]): a glob without `/` matches a base name
//!   at any depth (`*.jpg`); a pattern with `/` matches the end of the path
//!   (`docs/*.txt` matches `/home/u/docs/a.txt`), or, starting with `/`, the
//!   whole path. Unlike exclude patterns, a matching directory does not
//!   make everything below it match. Directories that no anchored pattern
//!   can reach are not descended.
//! - Blob and tree ids ([`find_ids`]): which files hold a data blob, which
//!   directories are a tree blob. A subtree already searched without a hit
//!   (in this or an earlier snapshot) is not searched again.

use crate::pattern::PatternSet;
use crate::tree_walk::{self, Visit, Visitor};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::Repository;
use globset::{GlobSet, GlobSetBuilder};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct FindPattern {
    set: GlobSet,
    /// For deciding which directories to descend (restic's ChildMatch).
    reach: PatternSet,
}

impl FindPattern {
    pub fn new<S: AsRef<str>>(patterns: &[S], ignore_case: bool) -> Result<FindPattern> {
        let mut b = GlobSetBuilder::new();
        let mut kept = vec![];
        for p in patterns {
            let p = p.as_ref().trim_end_matches('/');
            if p.is_empty() {
                return Err(Error::invalid("empty find pattern"));
            }
            b.add(crate::pattern::glob(
                &crate::pattern::anchored(p),
                p,
                ignore_case,
            )?);
            kept.push(p.to_string());
        }
        let set = b
            .build()
            .map_err(|e| Error::invalid(format!("invalid patterns: {e}")))?;
        Ok(FindPattern {
            set,
            reach: PatternSet::new(&kept, ignore_case)?,
        })
    }

    pub fn matches(&self, path: &Path) -> bool {
        self.set.is_match(path)
    }

    /// Could a path below directory `dir` match?
    pub fn may_match_below(&self, dir: &Path) -> bool {
        self.reach.may_match_below(dir)
    }
}

/// Call `on_match` for every node of the tree `root` (a snapshot's root
/// tree) whose path matches, in walk order.
pub fn find_paths(
    repo: &Repository,
    root: Id,
    pattern: &FindPattern,
    on_match: &mut dyn FnMut(&Path, &Node) -> Result<()>,
) -> Result<()> {
    tree_walk::walk(
        repo,
        root,
        Path::new("/"),
        &mut |path: &Path, node: &Node| {
            if pattern.matches(path) {
                on_match(path, node)?;
            }
            if node.kind == NodeKind::Dir && !pattern.may_match_below(path) {
                return Ok(Visit::SkipChildren);
            }
            Ok(Visit::Continue)
        },
    )
}

/// Where an id was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdHit {
    /// `blob` or `tree`.
    pub kind: &'static str,
    pub id: Id,
    /// The file holding the blob, or the directory whose tree it is (`/` for the root).
    pub path: PathBuf,
    /// For a blob: the tree listing the file.
    pub parent_tree: Option<Id>,
}

/// Ids given by the user as full ids or unique-enough prefixes, of data
/// blobs, tree blobs or both (`--pack` looks for every blob of a pack).
pub struct IdSearch {
    blob_prefixes: Vec<String>,
    tree_prefixes: Vec<String>,
    blob_ids: HashSet<Id>,
    tree_ids: HashSet<Id>,
    /// Subtrees searched before without a hit.
    clean: HashSet<Id>,
}

impl IdSearch {
    /// `blobs`: look for data blobs (`--blob`); else tree blobs (`--tree`).
    pub fn new<S: AsRef<str>>(ids: &[S], blobs: bool) -> Result<IdSearch> {
        let mut prefixes = vec![];
        for s in ids {
            let s = s.as_ref().to_ascii_lowercase();
            if !is_id_prefix(&s) {
                return Err(Error::invalid(format!(
                    "invalid {} id {:?} (expected hex digits)",
                    if blobs { "blob" } else { "tree" },
                    s
                )));
            }
            prefixes.push(s);
        }
        let mut search = IdSearch::exact(HashSet::new(), HashSet::new());
        if blobs {
            search.blob_prefixes = prefixes;
        } else {
            search.tree_prefixes = prefixes;
        }
        Ok(search)
    }

    /// Look for exactly these data and tree blobs.
    pub fn exact(blob_ids: HashSet<Id>, tree_ids: HashSet<Id>) -> IdSearch {
        IdSearch {
            blob_prefixes: vec![],
            tree_prefixes: vec![],
            blob_ids,
            tree_ids,
            clean: HashSet::new(),
        }
    }

    fn searches_blobs(&self) -> bool {
        !self.blob_prefixes.is_empty() || !self.blob_ids.is_empty()
    }

    fn searches_trees(&self) -> bool {
        !self.tree_prefixes.is_empty() || !self.tree_ids.is_empty()
    }

    fn wanted_blob(&self, id: &Id) -> bool {
        self.blob_ids.contains(id) || prefixed(&self.blob_prefixes, id)
    }

    fn wanted_tree(&self, id: &Id) -> bool {
        self.tree_ids.contains(id) || prefixed(&self.tree_prefixes, id)
    }

    /// Search one snapshot's tree; hits are reported in walk order.
    pub fn search(
        &mut self,
        repo: &Repository,
        root: Id,
        on_hit: &mut dyn FnMut(IdHit) -> Result<()>,
    ) -> Result<()> {
        if self.wanted_tree(&root) {
            on_hit(IdHit {
                kind: "tree",
                id: root,
                path: PathBuf::from("/"),
                parent_tree: None,
            })?;
        }
        if self.clean.contains(&root) {
            return Ok(());
        }
        struct V<'a> {
            s: &'a mut IdSearch,
            on_hit: &'a mut dyn FnMut(IdHit) -> Result<()>,
            /// Per open directory: its tree id and whether anything was found below it.
            stack: Vec<(Id, bool)>,
            root: Id,
            found_any: bool,
        }
        impl V<'_> {
            fn hit(&mut self, h: IdHit) -> Result<()> {
                for f in self.stack.iter_mut() {
                    f.1 = true;
                }
                self.found_any = true;
                (self.on_hit)(h)
            }
        }
        impl Visitor for V<'_> {
            fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
                match node.kind {
                    NodeKind::File if self.s.searches_blobs() => {
                        let parent = self.stack.last().map_or(self.root, |f| f.0);
                        for id in &node.content {
                            if self.s.wanted_blob(id) {
                                self.hit(IdHit {
                                    kind: "blob",
                                    id: *id,
                                    path: path.to_path_buf(),
                                    parent_tree: Some(parent),
                                })?;
                            }
                        }
                    }
                    NodeKind::Dir => {
                        let Some(sub) = node.subtree else {
                            return Ok(Visit::SkipChildren);
                        };
                        if self.s.searches_trees() && self.s.wanted_tree(&sub) {
                            self.hit(IdHit {
                                kind: "tree",
                                id: sub,
                                path: path.to_path_buf(),
                                parent_tree: None,
                            })?;
                        }
                        if self.s.clean.contains(&sub) {
                            return Ok(Visit::SkipChildren);
                        }
                        self.stack.push((sub, false));
                    }
                    _ => {}
                }
                Ok(Visit::Continue)
            }
            fn leave_dir(&mut self, _path: &Path, node: &Node) -> Result<()> {
                if node.subtree.is_some() {
                    if let Some((id, found)) = self.stack.pop() {
                        if !found {
                            self.s.clean.insert(id);
                        }
                    }
                }
                Ok(())
            }
        }
        let mut v = V {
            s: self,
            on_hit,
            stack: vec![],
            root,
            found_any: false,
        };
        tree_walk::walk(repo, root, Path::new("/"), &mut v)?;
        if !v.found_any {
            self.clean.insert(root);
        }
        Ok(())
    }
}

fn is_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn prefixed(prefixes: &[String], id: &Id) -> bool {
    if prefixes.is_empty() {
        return false;
    }
    let hex = id.to_hex();
    prefixes.iter().any(|p| hex.starts_with(p.as_str()))
}

/// The data and tree blobs of the packs named by `packs` (full ids or
/// prefixes), as `find --pack`: each pack's header is read where the pack
/// is stored, else its blobs are taken from the index. A name that matches
/// no pack is an error listing every such name.
pub fn pack_blobs<S: AsRef<str>>(
    repo: &Repository,
    packs: &[S],
) -> Result<(HashSet<Id>, HashSet<Id>)> {
    let mut wanted: Vec<String> = Vec::new();
    for p in packs {
        let p = p.as_ref().to_ascii_lowercase();
        if !is_id_prefix(&p) {
            return Err(Error::invalid(format!(
                "invalid pack id {p:?} (expected hex digits)"
            )));
        }
        wanted.push(p);
    }
    let mut found = vec![false; wanted.len()];
    let (mut data, mut trees) = (HashSet::new(), HashSet::new());
    let mut add = |kind: BlobKind, id: Id| {
        if kind == BlobKind::Tree {
            trees.insert(id);
        } else {
            data.insert(id);
        }
    };
    let mut stored: Vec<(Id, u64)> = repo.stored_packs()?.into_iter().collect();
    stored.sort();
    for (pack, size) in stored {
        let hex = pack.to_hex();
        let hits: Vec<usize> = (0..wanted.len())
            .filter(|&i| hex.starts_with(wanted[i].as_str()))
            .collect();
        if hits.is_empty() {
            continue;
        }
        // An unreadable header leaves the pack to the index below.
        if let Ok(entries) = repo.read_pack_header(&pack, size) {
            for e in entries {
                add(e.kind, e.id);
            }
            for i in hits {
                found[i] = true;
            }
        }
    }
    if found.iter().any(|f| !f) {
        for loc in repo.index().iter() {
            let hex = loc.pack.to_hex();
            for (i, w) in wanted.iter().enumerate() {
                if hex.starts_with(w.as_str()) {
                    found[i] = true;
                    add(loc.kind, loc.id);
                }
            }
        }
    }
    let mut missing: Vec<&str> = (0..wanted.len())
        .filter(|&i| !found[i])
        .map(|i| wanted[i].as_str())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(Error::not_found(format!(
            "unable to find pack(s): {}",
            missing.join(", ")
        )));
    }
    Ok((data, trees))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;

    #[test]
    fn patterns_as_restic() {
        let p = FindPattern::new(&["*.jpg", "docs/*.txt", "/etc/host*"], false).unwrap();
        assert!(p.matches(Path::new("/a/b/x.jpg")));
        assert!(!p.matches(Path::new("/a/b/x.jpg/inside")));
        assert!(p.matches(Path::new("/home/u/docs/a.txt")));
        assert!(!p.matches(Path::new("/home/u/docs/sub/a.txt")));
        assert!(p.matches(Path::new("/etc/hosts")));
        assert!(!p.matches(Path::new("/x/etc/hosts")));
        assert!(!p.matches(Path::new("/a/b/X.JPG")));
        assert!(FindPattern::new(&["*.jpg"], true)
            .unwrap()
            .matches(Path::new("/a/X.JPG")));
        let anchored = FindPattern::new(&["/etc/host*"], false).unwrap();
        assert!(anchored.may_match_below(Path::new("/etc")));
        assert!(!anchored.may_match_below(Path::new("/home")));
        assert!(FindPattern::new(&["a["], false).is_err());
    }

    #[test]
    fn finds_paths_and_ids() {
        let repo = repo();
        let s = saver(&repo);
        let f = file(&s, "pic.jpg", &noise(300, 3), 100);
        let blob = f.content[1];
        let sub = dir(
            &s,
            "photos",
            vec![f.clone(), file(&s, "notes.txt", b"n", 8)],
        );
        let sub_tree = sub.subtree.unwrap();
        let root = tree(
            &s,
            vec![dir(&s, "home", vec![sub]), file(&s, "top.jpg", b"t", 8)],
        );
        let root2 = tree(&s, vec![file(&s, "other", b"o", 8)]);
        s.finish().unwrap();

        let p = FindPattern::new(&["*.JPG"], true).unwrap();
        let mut hits = vec![];
        find_paths(&repo, root, &p, &mut |path, _| {
            hits.push(path.display().to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(hits, ["/home/photos/pic.jpg", "/top.jpg"]);

        let mut search = IdSearch::new(&[&blob.to_hex()[..10]], true).unwrap();
        let mut found = vec![];
        for r in [root, root2, root] {
            search
                .search(&repo, r, &mut |h| {
                    found.push((h.path.display().to_string(), h.id, h.parent_tree));
                    Ok(())
                })
                .unwrap();
        }
        let one = ("/home/photos/pic.jpg".to_string(), blob, Some(sub_tree));
        assert_eq!(found, [one.clone(), one]);

        let mut search = IdSearch::new(&[sub_tree.to_hex(), root2.to_hex()], false).unwrap();
        let mut found = vec![];
        for r in [root, root2] {
            search
                .search(&repo, r, &mut |h| {
                    found.push((h.kind, h.path.display().to_string()));
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(
            found,
            [
                ("tree", "/home/photos".to_string()),
                ("tree", "/".to_string())
            ]
        );
        assert!(IdSearch::new(&["xyz"], true).is_err());
    }
}
