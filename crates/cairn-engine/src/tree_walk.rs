//! Walking a snapshot's trees.
//!
//! A snapshot's root tree mirrors absolute paths: backing up `/home/u/docs`
//! gives root tree → `home` → `u` → `docs` → its contents, so a node's path
//! inside a snapshot is written `/home/u/docs/a.txt`.
//!
//! Invariants:
//! - Depth first, in name order (bytewise), a directory before its contents.
//! - One directory's tree is loaded at a time: memory holds the trees on the
//!   path from the root to the current directory, never the whole snapshot.
//! - A node whose name could escape its directory (empty, `.`, `..`, or
//!   containing `/` or NUL) is never handed to a visitor: it is reported
//!   through [`Visitor::error`] as corrupt. Callers can therefore join names
//!   onto a target directory safely.
//! - Paths are built from the raw name bytes (names need not be UTF-8).

use crate::{Error, Kind, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use cairn_repository::Repository;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What to do after visiting a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Go on; for a directory, descend into it.
    Continue,
    /// For a directory: do not load or visit its contents (and do not call
    /// [`Visitor::leave_dir`] for it). Same as `Continue` for other nodes.
    SkipChildren,
}

/// Receives the nodes of a walk. Only [`Visitor::visit`] is required.
pub trait Visitor {
    /// Called for every node, with its full snapshot path.
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit>;

    /// Called after all of a directory's contents were visited (post-order),
    /// for every directory whose `visit` returned [`Visit::Continue`] (also
    /// when its tree could not be loaded, after [`Visitor::error`]).
    fn leave_dir(&mut self, _path: &Path, _node: &Node) -> Result<()> {
        Ok(())
    }

    /// A subdirectory's tree could not be loaded (`path` is that directory),
    /// or a node has an invalid name (`path` is the directory holding it).
    /// Returning `Ok` skips it and goes on; the default aborts the walk with
    /// the error. (Failing to load the tree the walk starts at is always
    /// the walk's error.)
    fn error(&mut self, _path: &Path, err: Error) -> Result<()> {
        Err(err)
    }
}

impl<F: FnMut(&Path, &Node) -> Result<Visit>> Visitor for F {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        self(path, node)
    }
}

/// Join a node name (raw bytes) onto a path.
pub fn join_name(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// Can this name be joined onto a directory without escaping it?
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

struct Frame {
    path: PathBuf,
    /// The directory node, for `leave_dir`; `None` for the tree the walk started at.
    node: Option<Node>,
    nodes: Nodes,
}

/// Trees larger than this are walked from their bytes, a node at a time.
const LAZY_BYTES: usize = 256 << 10;

/// A tree's nodes in name order: all parsed at once, or, for a large tree,
/// parsed one at a time from its bytes, so a directory of a million
/// entries is held once (as its bytes), not also as a million nodes.
enum Nodes {
    Parsed(std::vec::IntoIter<Node>),
    Lazy(LazyNodes),
}

impl Nodes {
    fn next(&mut self) -> Result<Option<Node>> {
        match self {
            Nodes::Parsed(it) => Ok(it.next()),
            Nodes::Lazy(lazy) => lazy
                .next()
                .map_err(|why| Error::corrupt(format!("tree {}", lazy.id.short()), why)),
        }
    }
}

/// A cursor over the `nodes` array of a tree's JSON as cairn writes it
/// (`{"nodes":[...]}`, see `TreeWriter`).
struct LazyNodes {
    id: Id,
    bytes: Vec<u8>,
    pos: usize,
    /// After a comma: a node must follow.
    want_node: bool,
    done: bool,
}

impl LazyNodes {
    const PREFIX: &'static [u8] = br#"{"nodes":["#;

    fn new(id: Id, bytes: Vec<u8>) -> Option<LazyNodes> {
        bytes.starts_with(Self::PREFIX).then(|| LazyNodes {
            id,
            pos: Self::PREFIX.len(),
            bytes,
            want_node: false,
            done: false,
        })
    }

    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn next(&mut self) -> std::result::Result<Option<Node>, String> {
        if self.done {
            return Ok(None);
        }
        self.skip_space();
        match self.bytes.get(self.pos) {
            None => Err("truncated".into()),
            Some(b']') if !self.want_node => {
                self.pos += 1;
                self.skip_space();
                if self.bytes.get(self.pos) != Some(&b'}') {
                    return Err("expected `}` after the nodes".into());
                }
                self.pos += 1;
                self.skip_space();
                if self.pos != self.bytes.len() {
                    return Err("trailing bytes after the tree".into());
                }
                self.done = true;
                Ok(None)
            }
            Some(_) => {
                let mut stream = serde_json::Deserializer::from_slice(&self.bytes[self.pos..])
                    .into_iter::<Node>();
                let node = match stream.next() {
                    Some(Ok(n)) => n,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("truncated".into()),
                };
                self.pos += stream.byte_offset();
                self.skip_space();
                match self.bytes.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        self.want_node = true;
                    }
                    Some(b']') => self.want_node = false,
                    _ => return Err("expected `,` or `]` after a node".into()),
                }
                Ok(Some(node))
            }
        }
    }
}

/// Load a tree and order its nodes by name (trees are stored sorted; this
/// makes the order a guarantee even for a tree written by another program).
/// Two entries with one name make the tree corrupt.
fn load_sorted(repo: &Repository, id: &Id) -> Result<Vec<Node>> {
    let mut nodes = repo.load_tree(id)?.nodes;
    if !nodes.windows(2).all(|w| w[0].name < w[1].name) {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = nodes.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::corrupt(
                format!("tree {}", id.short()),
                format!("two entries named {:?}", w[0].name),
            ));
        }
    }
    Ok(nodes)
}

/// A tree's nodes for walking, in name order: a large tree as written by
/// cairn is checked whole first (it parses, names strictly increase), then
/// parsed again a node at a time; anything else goes through
/// [`load_sorted`].
fn load_nodes(repo: &Repository, id: &Id) -> Result<Nodes> {
    let bytes = repo.read_blob(id)?;
    if bytes.len() > LAZY_BYTES {
        if let Some(mut check) = LazyNodes::new(*id, bytes) {
            let mut last: Option<Vec<u8>> = None;
            let mut sorted = true;
            loop {
                match check.next() {
                    Ok(Some(n)) => {
                        if last.as_deref().is_some_and(|l| l >= n.name.as_bytes()) {
                            sorted = false;
                            break;
                        }
                        last = Some(n.name.as_bytes().to_vec());
                    }
                    Ok(None) => break,
                    Err(why) => {
                        return Err(Error::corrupt(format!("tree {}", id.short()), why));
                    }
                }
            }
            if sorted {
                let bytes = std::mem::take(&mut check.bytes);
                return Ok(Nodes::Lazy(
                    LazyNodes::new(*id, bytes).expect("checked above"),
                ));
            }
        }
    }
    Ok(Nodes::Parsed(load_sorted(repo, id)?.into_iter()))
}

/// Walk the tree `tree` whose own snapshot path is `base` (`/` for a
/// snapshot's root tree): every node below it is visited with the path
/// `base/…/name`. The tree itself has no node and is not visited.
pub fn walk(repo: &Repository, tree: Id, base: &Path, visitor: &mut dyn Visitor) -> Result<()> {
    // The starting tree is not skippable: its failure is the walk's.
    let nodes = load_nodes(repo, &tree)?;
    let mut stack = vec![Frame {
        path: base.to_path_buf(),
        node: None,
        nodes,
    }];
    while let Some(top) = stack.last_mut() {
        let Some(node) = top.nodes.next()? else {
            let done = stack.pop().expect("non-empty stack");
            if let Some(dir) = done.node {
                visitor.leave_dir(&done.path, &dir)?;
            }
            continue;
        };
        if !valid_name(node.name.as_bytes()) {
            let e = Error::corrupt(
                format!("directory {}", top.path.display()),
                format!("invalid entry name {:?}", node.name),
            );
            visitor.error(&top.path, e)?;
            continue;
        }
        let path = join_name(&top.path, node.name.as_bytes());
        let visit = visitor.visit(&path, &node)?;
        if node.kind != NodeKind::Dir || visit == Visit::SkipChildren {
            continue;
        }
        let nodes = match &node.subtree {
            Some(id) => match load_nodes(repo, id) {
                Ok(n) => n,
                Err(e) => {
                    // Its contents are skipped, but it was entered: leave it too.
                    visitor.error(&path, e.context(format!("directory {}", path.display())))?;
                    visitor.leave_dir(&path, &node)?;
                    continue;
                }
            },
            // A directory without a subtree is empty.
            None => Nodes::Parsed(Vec::new().into_iter()),
        };
        stack.push(Frame {
            path,
            node: Some(node),
            nodes,
        });
    }
    Ok(())
}

/// Normalise a snapshot path given by a user: absolute, no `.` or `..`,
/// no trailing slash (`a/b/../c/` → `/a/c`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A synthetic node for a snapshot's root directory (which has no node of
/// its own): a directory named `/` whose subtree is `root_tree`.
pub fn root_node(root_tree: Id) -> Node {
    let mut n = Node::new("/", NodeKind::Dir);
    n.mode = libc::S_IFDIR | 0o755;
    n.subtree = Some(root_tree);
    n
}

/// Find the node at an absolute snapshot path (`/home/u/docs/a.txt`),
/// loading only the trees along the way. `/` gives [`root_node`].
/// A missing path is a [`Kind::NotFound`] error naming the path.
pub fn find_node(repo: &Repository, root_tree: Id, path: &Path) -> Result<Node> {
    let path = normalize(path);
    let mut node = root_node(root_tree);
    let mut at = PathBuf::from("/");
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let not_found = |why: String| {
            Error::not_found(format!(
                "path {} not found in the snapshot ({why})",
                path.display()
            ))
        };
        let subtree = match (node.kind, node.subtree) {
            (NodeKind::Dir, Some(id)) => id,
            (NodeKind::Dir, None) => return Err(not_found(format!("{} is empty", at.display()))),
            (kind, _) => {
                return Err(not_found(format!(
                    "{} is a {}, not a directory",
                    at.display(),
                    kind.as_str()
                )))
            }
        };
        let tree = repo.load_tree(&subtree)?;
        let want = name.as_bytes();
        node = match tree.nodes.into_iter().find(|n| n.name.as_bytes() == want) {
            Some(n) => n,
            None => {
                return Err(not_found(format!("no {:?} in {}", name, at.display())));
            }
        };
        at.push(name);
    }
    Ok(node)
}

/// Is this error a path that does not exist (as opposed to a damaged repository)?
pub fn is_not_found(e: &Error) -> bool {
    e.kind == Kind::NotFound
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Building snapshot trees by hand for tests.
    use super::*;
    use cairn_repository::backend::MemoryBackend;
    use cairn_repository::format::crypto::KdfParams;
    use cairn_repository::format::tree::Tree;
    use cairn_repository::format::BlobKind;
    use cairn_repository::{BlobSaver, OpenOptions, SaverOptions};
    use std::sync::Arc;

    pub fn repo() -> Arc<Repository> {
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        Arc::new(Repository::init(Arc::new(MemoryBackend::new()), b"pw", opts).unwrap())
    }

    /// A repository in a local directory, so tests can damage its files.
    pub fn local_repo(dir: &Path) -> Arc<Repository> {
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        let backend = Arc::new(cairn_repository::backend::LocalBackend::new(dir));
        Arc::new(Repository::init(backend, b"pw", opts).unwrap())
    }

    /// Deterministic bytes that do not compress.
    pub fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    pub fn saver(repo: &Arc<Repository>) -> BlobSaver {
        BlobSaver::new(
            repo.clone(),
            SaverOptions {
                pack_size: 64 * 1024,
                workers: 2,
                ..Default::default()
            },
        )
    }

    /// Save `data` cut into `chunk`-byte blobs; returns a file node.
    pub fn file(saver: &BlobSaver, name: &str, data: &[u8], chunk: usize) -> Node {
        let mut n = Node::new(name, NodeKind::File);
        n.mode = libc::S_IFREG | 0o644;
        n.size = data.len() as u64;
        n.mtime = 1_600_000_000_123_456_789;
        n.atime = 1_600_000_100_000_000_000;
        n.links = 1;
        for c in data.chunks(chunk.max(1)) {
            n.content
                .push(saver.save(BlobKind::Data, c.to_vec()).unwrap().0);
        }
        n
    }

    /// Save a tree of `nodes` (sorted here) and return a dir node for it.
    pub fn dir(saver: &BlobSaver, name: &str, mut nodes: Vec<Node>) -> Node {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let (id, _) = saver
            .save(BlobKind::Tree, Tree { nodes }.to_bytes())
            .unwrap();
        let mut n = Node::new(name, NodeKind::Dir);
        n.mode = libc::S_IFDIR | 0o755;
        n.mtime = 1_500_000_000_000_000_000;
        n.atime = n.mtime;
        n.subtree = Some(id);
        n
    }

    /// A root tree over `depth` nested directories named `d`, the deepest
    /// holding `nodes`: `/d/d/…/d/…`. Built from the bottom, no recursion.
    pub fn deep_tree(saver: &BlobSaver, depth: usize, nodes: Vec<Node>) -> Id {
        let mut node = dir(saver, "d", nodes);
        for _ in 1..depth {
            node = dir(saver, "d", vec![node]);
        }
        tree(saver, vec![node])
    }

    /// A snapshot of root tree `tree`, taken now.
    pub fn snapshot(tree: Id) -> cairn_repository::format::snapshot::Snapshot {
        cairn_repository::format::snapshot::Snapshot {
            version: 1,
            time: chrono::Utc::now().fixed_offset(),
            tree,
            paths: vec!["/data".into()],
            hostname: "h".into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            original: None,
            program_version: "test".into(),
            summary: None,
        }
    }

    pub fn tree(saver: &BlobSaver, mut nodes: Vec<Node>) -> Id {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        saver
            .save(BlobKind::Tree, Tree { nodes }.to_bytes())
            .unwrap()
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use cairn_repository::format::tree::{ByteString, Tree};
    use cairn_repository::format::BlobKind;

    #[test]
    fn walks_in_order_and_skips() {
        let repo = repo();
        let s = saver(&repo);
        let b = dir(
            &s,
            "b",
            vec![file(&s, "z", b"z", 4), file(&s, "y", b"y", 4)],
        );
        let skip = dir(&s, "skip", vec![file(&s, "never", b"n", 4)]);
        let mut weird = file(&s, "x", b"raw", 4);
        weird.name = ByteString(vec![b'q', 0xff]);
        let root = tree(
            &s,
            vec![file(&s, "c", b"c", 4), b, skip, weird, dir(&s, "a", vec![])],
        );
        s.finish().unwrap();

        let mut seen = vec![];
        let mut left = vec![];
        struct V<'a>(&'a mut Vec<String>, &'a mut Vec<String>);
        impl Visitor for V<'_> {
            fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
                self.0.push(path.to_string_lossy().into_owned());
                Ok(if node.name.as_bytes() == b"skip" {
                    Visit::SkipChildren
                } else {
                    Visit::Continue
                })
            }
            fn leave_dir(&mut self, path: &Path, _: &Node) -> Result<()> {
                self.1.push(path.to_string_lossy().into_owned());
                Ok(())
            }
        }
        walk(&repo, root, Path::new("/"), &mut V(&mut seen, &mut left)).unwrap();
        assert_eq!(
            seen,
            ["/a", "/b", "/b/y", "/b/z", "/c", "/q\u{fffd}", "/skip"]
        );
        assert_eq!(left, ["/a", "/b"]);

        // A walk from a subtree names paths below its base.
        let mut paths = vec![];
        let b_node = find_node(&repo, root, Path::new("/b/")).unwrap();
        walk(
            &repo,
            b_node.subtree.unwrap(),
            Path::new("/b"),
            &mut |p: &Path, _: &Node| {
                paths.push(p.to_path_buf());
                Ok(Visit::Continue)
            },
        )
        .unwrap();
        assert_eq!(paths, [PathBuf::from("/b/y"), PathBuf::from("/b/z")]);
        // Raw bytes survive into the path.
        assert_eq!(
            find_node(&repo, root, &join_name(Path::new("/"), &[b'q', 0xff]))
                .unwrap()
                .size,
            3
        );
    }

    #[test]
    fn large_trees_walk_a_node_at_a_time_in_name_order() {
        let repo = repo();
        let s = saver(&repo);
        // Large enough for the lazy path (each node is ~200 bytes).
        let names: Vec<String> = (0..3000).map(|i| format!("f{i:05}")).collect();
        let nodes: Vec<Node> = names.iter().map(|n| file(&s, n, b"", 1)).collect();
        assert!(
            Tree {
                nodes: nodes.clone()
            }
            .to_bytes()
            .len()
                > LAZY_BYTES
        );
        let sorted = tree(&s, nodes.clone());
        // Stored out of order (as another program might): still walked in order.
        let mut reversed = nodes.clone();
        reversed.reverse();
        let unsorted = s
            .save(BlobKind::Tree, Tree { nodes: reversed }.to_bytes())
            .unwrap()
            .0;
        // Cut short: corrupt, and nothing of it is visited.
        let mut cut = Tree { nodes }.to_bytes();
        cut.truncate(cut.len() - 300);
        let broken = s.save(BlobKind::Tree, cut).unwrap().0;
        s.finish().unwrap();
        for root in [sorted, unsorted] {
            let mut seen = vec![];
            walk(&repo, root, Path::new("/"), &mut |p: &Path, _: &Node| {
                seen.push(p.to_string_lossy().into_owned());
                Ok(Visit::Continue)
            })
            .unwrap();
            let want: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
            assert_eq!(seen, want);
        }
        let mut visited = 0;
        let e = walk(&repo, broken, Path::new("/"), &mut |_: &Path, _: &Node| {
            visited += 1;
            Ok(Visit::Continue)
        })
        .unwrap_err();
        assert_eq!(visited, 0);
        assert!(e.message.contains("tree"), "{}", e.message);
    }

    #[test]
    fn find_node_errors_name_the_path() {
        let repo = repo();
        let s = saver(&repo);
        let root = tree(
            &s,
            vec![dir(
                &s,
                "home",
                vec![dir(&s, "u", vec![file(&s, "a.txt", b"hello", 2)])],
            )],
        );
        s.finish().unwrap();
        assert_eq!(
            find_node(&repo, root, Path::new("/home/u/a.txt"))
                .unwrap()
                .size,
            5
        );
        assert_eq!(
            find_node(&repo, root, Path::new("home/./u/../u/a.txt"))
                .unwrap()
                .size,
            5
        );
        assert_eq!(
            find_node(&repo, root, Path::new("/")).unwrap().subtree,
            Some(root)
        );
        let e = find_node(&repo, root, Path::new("/home/x/y")).unwrap_err();
        assert!(is_not_found(&e));
        assert!(
            e.message.contains("path /home/x/y not found") && e.message.contains("in /home"),
            "{}",
            e.message
        );
        let e = find_node(&repo, root, Path::new("/home/u/a.txt/z")).unwrap_err();
        assert!(
            e.message.contains("/home/u/a.txt is a file"),
            "{}",
            e.message
        );
    }

    #[test]
    fn hostile_names_are_reported_not_visited() {
        let repo = repo();
        let s = saver(&repo);
        let mut evil = file(&s, "x", b"pwned", 8);
        evil.name = ByteString(b"../../etc/passwd".to_vec());
        let mut dots = file(&s, "x", b"", 8);
        dots.name = ByteString(b"..".to_vec());
        let mut lost = Node::new("lost", NodeKind::Dir);
        lost.subtree = Some(Id([1; 32]));
        let nodes = vec![evil, dots, lost, file(&s, "ok", b"", 8)];
        let (root, _) = s.save(BlobKind::Tree, Tree { nodes }.to_bytes()).unwrap();
        s.finish().unwrap();
        let mut seen = vec![];
        let e = walk(&repo, root, Path::new("/"), &mut |p: &Path, _: &Node| {
            seen.push(p.to_path_buf());
            Ok(Visit::Continue)
        })
        .unwrap_err();
        assert_eq!(e.kind, Kind::Corrupt);
        assert!(seen.is_empty());
        struct Lenient(Vec<String>, Vec<String>);
        impl Visitor for Lenient {
            fn visit(&mut self, p: &Path, _: &Node) -> Result<Visit> {
                self.0.push(format!("visit {}", p.display()));
                Ok(Visit::Continue)
            }
            fn leave_dir(&mut self, p: &Path, _: &Node) -> Result<()> {
                self.0.push(format!("leave {}", p.display()));
                Ok(())
            }
            fn error(&mut self, p: &Path, e: Error) -> Result<()> {
                self.1.push(format!("{}: {}", p.display(), e.message));
                Ok(())
            }
        }
        let mut v = Lenient(vec![], vec![]);
        walk(&repo, root, Path::new("/"), &mut v).unwrap();
        assert_eq!(v.0, ["visit /lost", "leave /lost", "visit /ok"]);
        assert_eq!(v.1.len(), 3, "{:?}", v.1);
        assert!(v.1[2].starts_with("/lost: directory /lost:"), "{:?}", v.1);
    }
}
