//! The inode table: what each inode number the kernel holds stands for.
//!
//! Numbers are derived from what an entry is, not handed out in order, so
//! they are stable for the life of the mount even when the kernel forgets
//! an inode and looks it up again:
//! - an entry is `hash(parent inode, name)`, a snapshot's root directory
//!   also hashes the snapshot id (a name can later stand for another
//!   snapshot), a `latest` link its target;
//! - the hard links of one file in one snapshot share
//!   `hash(snapshot root inode, device, inode)` (only for non-directories
//!   stored with a link count above one), so they have one inode number
//!   and the stored link count, as on the original file system. The same
//!   snapshot shown in two places (`snapshots/…` and `ids/…`) has distinct
//!   inodes: directories must not be hard links.
//!
//! The hash is 64 bits for the number and another 128 for the identity;
//! should two identities ever share a number, the later one takes the next
//! free number. The root is inode 1.
//!
//! Lifetimes follow the kernel's: each reply that hands out an inode (a
//! lookup, a readdirplus entry) counts one reference, `forget` drops them,
//! and an entry without references is removed (the root never is).

use crate::cache::Listing;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use fuser::{FileAttr, FileType, INodeNo};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ROOT: u64 = 1;

/// What an inode is.
#[derive(Clone)]
pub enum Data {
    /// A directory of the snapshot layout (the root too): its path from
    /// the root, resolved against the current layout when listed.
    Virtual { path: Vec<Vec<u8>> },
    /// `latest`.
    Link { target: Vec<u8>, mtime: i64 },
    /// A snapshot's root directory.
    SnapshotRoot {
        snapshot: Id,
        tree: Id,
        time: i64,
        uid: u32,
        gid: u32,
    },
    /// An entry inside a snapshot: entry `index` of a directory listing.
    Node {
        listing: Listing,
        index: usize,
        /// The inode of the snapshot root it is in.
        root: u64,
    },
}

impl Data {
    pub fn node(&self) -> Option<&Node> {
        match self {
            Data::Node { listing, index, .. } => Some(&listing[*index]),
            _ => None,
        }
    }

    /// The tree whose entries this directory lists (snapshot contents).
    pub fn tree(&self) -> Option<Option<Id>> {
        match self {
            Data::SnapshotRoot { tree, .. } => Some(Some(*tree)),
            Data::Node { .. } => {
                let n = self.node().expect("a node");
                (n.kind == NodeKind::Dir).then_some(n.subtree)
            }
            _ => None,
        }
    }

    /// The snapshot root inode that entries below this directory belong to.
    pub fn root_for_children(&self, own_ino: u64) -> u64 {
        match self {
            Data::Node { root, .. } => *root,
            _ => own_ino,
        }
    }

    pub fn kind(&self) -> FileType {
        match self {
            Data::Virtual { .. } | Data::SnapshotRoot { .. } => FileType::Directory,
            Data::Link { .. } => FileType::Symlink,
            Data::Node { .. } => file_type(self.node().expect("a node").kind),
        }
    }

    /// Contents of the layout may change (refresh); contents of snapshots never do.
    pub fn is_virtual(&self) -> bool {
        matches!(self, Data::Virtual { .. } | Data::Link { .. })
    }
}

pub fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Dev => FileType::BlockDevice,
        NodeKind::Chardev => FileType::CharDevice,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::Socket => FileType::Socket,
    }
}

/// Who an entry is, for numbering (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    pub ino: u64,
    check: u128,
}

impl Ident {
    fn of(parts: &[&[u8]]) -> Ident {
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let d = h.finalize();
        let b = d.as_bytes();
        let mut ino = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        // Keep clear of 0 (invalid) and the root; stay below 2^63 for
        // programs that read inode numbers as signed.
        ino &= u64::MAX >> 1;
        if ino <= ROOT {
            ino += 2;
        }
        Ident {
            ino,
            check: u128::from_le_bytes(b[8..24].try_into().expect("16 bytes")),
        }
    }

    pub fn child(parent: u64, name: &[u8]) -> Ident {
        Ident::of(&[b"child", &parent.to_le_bytes(), name])
    }

    pub fn snapshot(parent: u64, name: &[u8], id: &Id) -> Ident {
        Ident::of(&[b"snapshot", &parent.to_le_bytes(), name, &id.0])
    }

    pub fn link(parent: u64, name: &[u8], target: &[u8]) -> Ident {
        Ident::of(&[b"link", &parent.to_le_bytes(), name, target])
    }

    /// The identity of entry `node` of a snapshot directory `parent`.
    pub fn node(parent: u64, root: u64, node: &Node) -> Ident {
        if node.kind != NodeKind::Dir && node.links > 1 {
            Ident::of(&[
                b"hardlink",
                &root.to_le_bytes(),
                &node.device.to_le_bytes(),
                &node.inode.to_le_bytes(),
            ])
        } else {
            Ident::child(parent, node.name.as_bytes())
        }
    }

    fn root() -> Ident {
        Ident {
            ino: ROOT,
            check: 0,
        }
    }
}

pub struct Entry {
    pub ino: u64,
    pub data: Data,
    /// Where it was first found, to name it in messages.
    pub parent: u64,
    pub name: Vec<u8>,
    ident: Ident,
    /// A file's blob layout, built at its first open.
    pub content: OnceLock<Arc<crate::read::Content>>,
}

/// One entry the kernel may be handed: its identity and what it is.
pub struct Candidate {
    pub ident: Ident,
    pub name: Vec<u8>,
    pub data: Data,
}

pub struct Table {
    entries: HashMap<u64, (Arc<Entry>, u64)>,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Table {
        let root = Entry {
            ino: ROOT,
            data: Data::Virtual { path: Vec::new() },
            parent: ROOT,
            name: Vec::new(),
            ident: Ident::root(),
            content: OnceLock::new(),
        };
        let mut entries = HashMap::new();
        entries.insert(ROOT, (Arc::new(root), 1));
        Table { entries }
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Entry>> {
        self.entries.get(&ino).map(|(e, _)| e.clone())
    }

    /// The inode number `c` has, or would get.
    pub fn number(&self, ident: Ident) -> u64 {
        let mut ino = ident.ino;
        loop {
            match self.entries.get(&ino) {
                Some((e, _)) if e.ident != ident => ino = next(ino),
                _ => return ino,
            }
        }
    }

    /// Hand `c` out once more: the existing entry of that identity with
    /// one more reference, or a new one.
    pub fn reference(&mut self, parent: u64, c: Candidate) -> Arc<Entry> {
        let ino = self.number(c.ident);
        if let Some((e, refs)) = self.entries.get_mut(&ino) {
            *refs += 1;
            return e.clone();
        }
        let e = Arc::new(Entry {
            ino,
            data: c.data,
            parent,
            name: c.name,
            ident: c.ident,
            content: OnceLock::new(),
        });
        self.entries.insert(ino, (e.clone(), 1));
        e
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        if let Some((_, refs)) = self.entries.get_mut(&ino) {
            *refs = refs.saturating_sub(n);
            if *refs == 0 {
                self.entries.remove(&ino);
            }
        }
    }

    /// `entry`'s path from the mount's root, as far as its parents are known.
    pub fn path_of(&self, entry: &Entry) -> Vec<u8> {
        let mut parts = vec![entry.name.clone()];
        let mut at = entry.parent;
        let mut guard = 0;
        while at != ROOT && guard < 4096 {
            match self.entries.get(&at) {
                Some((e, _)) => {
                    parts.push(e.name.clone());
                    at = e.parent;
                }
                None => {
                    parts.push(b"...".to_vec());
                    break;
                }
            }
            guard += 1;
        }
        parts.reverse();
        parts.join(&b'/')
    }
}

fn next(ino: u64) -> u64 {
    let n = (ino + 1) & (u64::MAX >> 1);
    if n <= ROOT {
        2
    } else {
        n
    }
}

/// Identity settings for attributes that do not come from a snapshot.
#[derive(Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Time for the layout's directories before any snapshot exists.
    pub mount_time: i64,
}

fn system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// `st_rdev` as the FUSE protocol carries it (the kernel's 32-bit
/// `new_encode_dev`).
fn fuse_rdev(rdev: u64) -> u32 {
    let major = libc::major(rdev as libc::dev_t) as u64;
    let minor = libc::minor(rdev as libc::dev_t) as u64;
    ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)) as u32
}

/// The attributes of entry number `ino`. `vtime` is the time of a
/// layout directory (its newest snapshot).
pub fn attr(ino: u64, data: &Data, owner: &Owner, vtime: Option<i64>) -> FileAttr {
    let base = |kind: FileType, perm: u16, t: i64, uid: u32, gid: u32| FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: system_time(t),
        mtime: system_time(t),
        ctime: system_time(t),
        crtime: system_time(t),
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid,
        gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    };
    match data {
        Data::Virtual { .. } => base(
            FileType::Directory,
            0o555,
            vtime.unwrap_or(owner.mount_time),
            owner.uid,
            owner.gid,
        ),
        Data::Link { target, mtime } => {
            let mut a = base(FileType::Symlink, 0o777, *mtime, owner.uid, owner.gid);
            a.size = target.len() as u64;
            a
        }
        Data::SnapshotRoot { time, uid, gid, .. } => {
            base(FileType::Directory, 0o755, *time, *uid, *gid)
        }
        Data::Node { .. } => {
            let n = data.node().expect("a node");
            let kind = file_type(n.kind);
            let size = match n.kind {
                NodeKind::File => n.size,
                NodeKind::Symlink => n.linktarget.as_ref().map_or(0, |t| t.0.len() as u64),
                _ => 0,
            };
            FileAttr {
                ino: INodeNo(ino),
                size,
                blocks: size.div_ceil(512),
                atime: system_time(n.atime),
                mtime: system_time(n.mtime),
                ctime: system_time(n.ctime),
                crtime: system_time(n.mtime),
                kind,
                perm: (n.mode & 0o7777) as u16,
                nlink: match n.kind {
                    NodeKind::Dir => 2,
                    _ => n.links.clamp(1, u32::MAX as u64) as u32,
                },
                uid: n.uid,
                gid: n.gid,
                rdev: if matches!(n.kind, NodeKind::Dev | NodeKind::Chardev) {
                    fuse_rdev(n.rdev)
                } else {
                    0
                },
                blksize: 4096,
                flags: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_hard_links_share_one() {
        let mut a = Node::new("a", NodeKind::File);
        a.links = 2;
        a.device = 7;
        a.inode = 99;
        let mut b = a.clone();
        b.name = "b".into();
        assert_eq!(Ident::node(10, 5, &a), Ident::node(11, 5, &b));
        // Another snapshot: another inode.
        assert_ne!(Ident::node(10, 5, &a), Ident::node(10, 6, &a));
        a.links = 1;
        assert_ne!(Ident::node(10, 5, &a), Ident::node(10, 5, &b));
        assert_eq!(Ident::child(3, b"x"), Ident::child(3, b"x"));
        assert!(Ident::child(3, b"x").ino > ROOT);

        let mut t = Table::new();
        let c = |name: &[u8]| Candidate {
            ident: Ident::child(ROOT, name),
            name: name.to_vec(),
            data: Data::Virtual {
                path: vec![name.to_vec()],
            },
        };
        let e = t.reference(ROOT, c(b"x"));
        assert_eq!(e.ino, Ident::child(ROOT, b"x").ino);
        assert_eq!(t.reference(ROOT, c(b"x")).ino, e.ino);
        t.forget(e.ino, 1);
        assert!(t.get(e.ino).is_some());
        t.forget(e.ino, 1);
        assert!(t.get(e.ino).is_none());
        // Looked up again after being forgotten: the same number.
        assert_eq!(t.reference(ROOT, c(b"x")).ino, e.ino);
        t.forget(ROOT, 5);
        assert!(t.get(ROOT).is_some());
    }

    #[test]
    fn device_numbers_use_the_fuse_encoding() {
        assert_eq!(fuse_rdev(libc::makedev(1, 3) as u64), 0x103);
        let big = fuse_rdev(libc::makedev(259, 70000) as u64);
        assert_eq!(big, (70000 & 0xff) | (259 << 8) | ((70000 & !0xff) << 12));
    }
}
