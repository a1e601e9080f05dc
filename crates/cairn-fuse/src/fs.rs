//! The file system: FUSE requests answered from the inode table, the
//! layout and the repository.
//!
//! - Snapshot contents never change, so their entries and attributes are
//!   cached by the kernel for [`SNAPSHOT_TTL`], their directory listings
//!   and file pages too (`FOPEN_CACHE_DIR`, `FOPEN_KEEP_CACHE`). The
//!   layout's directories change when snapshots come and go: one second.
//! - Listing a layout directory, or looking up a name missing from one,
//!   looks for new snapshots, at most once every [`REFRESH_EVERY`]: new
//!   snapshot files are read, and the index files written before them.
//! - Directory listings are taken whole at `opendir` (a layout directory
//!   as it is then), so one `readdir` pass sees one consistent listing.
//! - A failed read (pack missing or damaged, backend down) answers EIO
//!   and writes one line on stderr naming the file; the mount stays up.

use crate::cache::{BlobCache, Listing, TreeCache};
use crate::inode::{attr, Candidate, Data, Entry, Ident, Owner, Table, ROOT};
use crate::layout::{Layout, VNode};
use crate::pool::Pool;
use crate::read::Content;
use crate::{MountOptions, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use cairn_repository::{Error, Kind, Repository, SnapshotFilter};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyXattr, Request,
};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long the kernel may keep entries and attributes of snapshot contents.
const SNAPSHOT_TTL: Duration = Duration::from_secs(3600);
/// ... and of the layout's directories and links.
const LAYOUT_TTL: Duration = Duration::from_secs(1);
/// Looking for new snapshots at most this often.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3);
/// Blobs fetched ahead of a sequential reader, in bytes at most (and a
/// quarter of the blob cache at most).
const READAHEAD: u64 = 32 << 20;
/// A read starting this close to where the previous one ended (either
/// side: the kernel's concurrent read-ahead requests arrive slightly out of
/// order) counts as sequential. Random reads seldom land this close, so
/// they do not set off read-ahead.
const SEQUENTIAL_GAP: u64 = 1 << 20;
/// Blobs that end this far behind a sequential reader are dropped from the
/// cache (a margin for read-ahead requests that arrive out of order).
const DROP_BEHIND: u64 = 4 << 20;
/// Decoded trees kept, in estimated bytes.
const TREE_CACHE: u64 = 64 << 20;

/// What a refresh knows about the repository.
struct Known {
    last: Instant,
    /// Every readable snapshot (before filtering).
    snapshots: HashMap<Id, Snapshot>,
    /// Snapshot files that could not be read (not tried again).
    unreadable: HashSet<Id>,
    index_files: HashSet<Id>,
}

/// An open directory (its listing) or file (where its last read ended).
enum Handle {
    Dir(Arc<Vec<Item>>),
    File(Arc<FileState>),
}

struct FileState {
    /// Where the last read of this handle ended (`u64::MAX`: none yet).
    last_read: AtomicU64,
    /// Blobs before this index were dropped from the cache behind a
    /// sequential reader.
    dropped: AtomicUsize,
}

/// One entry of a directory listing.
struct Item {
    name: Vec<u8>,
    kind: FileType,
    /// `None` for `.` and `..`, which are not handed out as lookups.
    candidate: Option<Candidate>,
    ino: u64,
}

pub struct Inner {
    repo: Arc<Repository>,
    filter: SnapshotFilter,
    template: String,
    mountpoint: PathBuf,
    owner: Owner,
    table: Mutex<Table>,
    layout: RwLock<Arc<Layout>>,
    known: Mutex<Known>,
    blobs: BlobCache,
    trees: TreeCache,
    readahead: u64,
    handles: Mutex<HashMap<u64, Handle>>,
    next_handle: AtomicU64,
}

/// The FUSE file system of one repository.
pub struct CairnFs {
    inner: Arc<Inner>,
    pool: Arc<Pool>,
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl CairnFs {
    /// Load the index and the snapshots and lay them out. `mountpoint`
    /// only names files in messages.
    pub fn new(repo: Arc<Repository>, mountpoint: PathBuf, opts: &MountOptions) -> Result<CairnFs> {
        // Index files listed before loading: a refresh loads only newer ones
        // (one written in between is loaded twice, which is harmless).
        let index_files = list_ids(&repo, FileKind::Index)?;
        repo.load_index()?;
        let (all, unreadable) = repo.list_snapshots_lenient()?;
        for (id, e) in &unreadable {
            eprintln!("warning: snapshot {}: {e} (not shown)", id.short());
        }
        let listed = list_ids(&repo, FileKind::Snapshot)?;
        let snapshots: HashMap<Id, Snapshot> = all.into_iter().collect();
        let unreadable = listed
            .into_iter()
            .filter(|id| !snapshots.contains_key(id))
            .collect();
        let layout = build_layout(&snapshots, &opts.filter, &opts.time_template);
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let inner = Inner {
            repo,
            filter: opts.filter.clone(),
            template: opts.time_template.clone(),
            mountpoint,
            owner: Owner {
                uid,
                gid,
                mount_time: now_ns(),
            },
            table: Mutex::new(Table::new()),
            layout: RwLock::new(Arc::new(layout)),
            known: Mutex::new(Known {
                last: Instant::now(),
                snapshots,
                unreadable,
                index_files,
            }),
            blobs: BlobCache::new(opts.cache_size),
            trees: TreeCache::new(TREE_CACHE),
            readahead: READAHEAD.min(opts.cache_size / 4),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        };
        Ok(CairnFs {
            inner: Arc::new(inner),
            pool: Arc::new(Pool::new(opts.workers)),
        })
    }

    /// How many snapshots are shown.
    pub fn snapshot_count(&self) -> usize {
        self.inner.layout.read().unwrap().snapshots.len()
    }
}

fn list_ids(repo: &Repository, kind: FileKind) -> Result<HashSet<Id>> {
    Ok(repo
        .backend()
        .list(kind)?
        .iter()
        .filter_map(|f| Id::from_hex(&f.name))
        .collect())
}

fn build_layout(
    snapshots: &HashMap<Id, Snapshot>,
    filter: &SnapshotFilter,
    template: &str,
) -> Layout {
    let shown: Vec<(Id, Snapshot)> = snapshots
        .iter()
        .filter(|(_, s)| filter.matches(s))
        .map(|(id, s)| (*id, s.clone()))
        .collect();
    Layout::build(shown, template)
}

fn errno(e: &Error) -> Errno {
    match e.kind {
        Kind::NotFound => Errno::ENOENT,
        _ => Errno::EIO,
    }
}

impl Inner {
    fn entry(&self, ino: INodeNo) -> Option<Arc<Entry>> {
        self.table.lock().unwrap().get(ino.0)
    }

    /// `entry`'s path below the mountpoint, for messages.
    fn path(&self, entry: &Entry) -> String {
        let rel = self.table.lock().unwrap().path_of(entry);
        self.mountpoint
            .join(OsStr::from_bytes(&rel))
            .display()
            .to_string()
    }

    fn log(&self, entry: &Entry, what: &str, e: &Error) -> Errno {
        eprintln!("error: {what} {}: {e}", self.path(entry));
        errno(e)
    }

    fn ttl(data: &Data) -> Duration {
        if data.is_virtual() {
            LAYOUT_TTL
        } else {
            SNAPSHOT_TTL
        }
    }

    fn attr_of(&self, ino: u64, data: &Data) -> FileAttr {
        let vtime = match data {
            Data::Virtual { path } => {
                let l = self.layout.read().unwrap();
                match l.resolve(path).map(|i| &l.nodes[i]) {
                    Some(VNode::Dir { mtime, .. }) if *mtime != 0 => Some(*mtime),
                    _ => None,
                }
            }
            _ => None,
        };
        attr(ino, data, &self.owner, vtime)
    }

    /// Look for new (and removed) snapshots, unless done recently.
    fn refresh(&self) {
        let mut known = self.known.lock().unwrap();
        if known.last.elapsed() < REFRESH_EVERY {
            return;
        }
        if let Err(e) = self.reload(&mut known) {
            eprintln!("warning: looking for new snapshots: {e}");
        }
        known.last = Instant::now();
    }

    fn reload(&self, known: &mut Known) -> Result<()> {
        let listed = list_ids(&self.repo, FileKind::Snapshot)?;
        let new: Vec<Id> = listed
            .iter()
            .filter(|id| !known.snapshots.contains_key(id) && !known.unreadable.contains(id))
            .copied()
            .collect();
        let before = known.snapshots.len();
        known.snapshots.retain(|id, _| listed.contains(id));
        let mut changed = known.snapshots.len() != before;
        if !new.is_empty() {
            // A snapshot is written after the index files of its blobs:
            // listed after the snapshots, they are all there.
            let index_files = list_ids(&self.repo, FileKind::Index)?;
            let mut loaded = Vec::new();
            for id in index_files.difference(&known.index_files) {
                match self.repo.load_index_file(id) {
                    Ok(f) => loaded.push((*id, f)),
                    Err(e) => eprintln!("warning: {e}"),
                }
            }
            if !loaded.is_empty() {
                let mut index = self.repo.index_mut();
                for (id, f) in &loaded {
                    for p in &f.packs {
                        index.add_index_pack(p);
                    }
                    known.index_files.insert(*id);
                }
                index.compact();
            }
            for id in new {
                match self.repo.load_snapshot(&id) {
                    Ok(s) => {
                        known.snapshots.insert(id, s);
                        changed = true;
                    }
                    Err(e) => {
                        eprintln!("warning: {e} (not shown)");
                        known.unreadable.insert(id);
                    }
                }
            }
        }
        if changed {
            let layout = build_layout(&known.snapshots, &self.filter, &self.template);
            *self.layout.write().unwrap() = Arc::new(layout);
        }
        Ok(())
    }

    /// A snapshot directory's entries.
    fn tree_listing(&self, tree: Option<Id>) -> Result<Listing> {
        match tree {
            Some(id) => self.trees.get(&self.repo, &id),
            None => Ok(Arc::new(Vec::new())),
        }
    }

    fn node_candidate(&self, dir: &Entry, listing: &Listing, index: usize) -> Candidate {
        let root = dir.data.root_for_children(dir.ino);
        let node = &listing[index];
        Candidate {
            ident: Ident::node(dir.ino, root, node),
            name: node.name.as_bytes().to_vec(),
            data: Data::Node {
                listing: listing.clone(),
                index,
                root,
            },
        }
    }

    fn virtual_candidate(
        &self,
        dir: &Entry,
        path: &[Vec<u8>],
        layout: &Layout,
        name: &[u8],
        node: usize,
    ) -> Candidate {
        let data = match &layout.nodes[node] {
            VNode::Dir { .. } => {
                let mut p = path.to_vec();
                p.push(name.to_vec());
                Data::Virtual { path: p }
            }
            VNode::Link { target, mtime } => Data::Link {
                target: target.clone(),
                mtime: *mtime,
            },
            VNode::Snapshot(k) => {
                let (id, s) = &layout.snapshots[*k];
                Data::SnapshotRoot {
                    snapshot: *id,
                    tree: s.tree,
                    time: crate::layout::time_ns(s),
                    uid: s.uid,
                    gid: s.gid,
                }
            }
        };
        let ident = match &data {
            Data::Link { target, .. } => Ident::link(dir.ino, name, target),
            Data::SnapshotRoot { snapshot, .. } => Ident::snapshot(dir.ino, name, snapshot),
            _ => Ident::child(dir.ino, name),
        };
        Candidate {
            ident,
            name: name.to_vec(),
            data,
        }
    }

    /// The entry `name` of directory `dir`, if there is one.
    fn find_child(&self, dir: &Entry, name: &[u8]) -> Result<Option<Candidate>> {
        if let Some(tree) = dir.data.tree() {
            let listing = self.tree_listing(tree)?;
            return Ok(listing
                .binary_search_by(|n| n.name.as_bytes().cmp(name))
                .ok()
                .map(|i| self.node_candidate(dir, &listing, i)));
        }
        let Data::Virtual { path } = &dir.data else {
            return Err(Error::new(Kind::InvalidInput, "not a directory"));
        };
        for attempt in 0..2 {
            let layout = self.layout.read().unwrap().clone();
            if let Some(node) = layout.resolve(path).and_then(|d| layout.child(d, name)) {
                return Ok(Some(self.virtual_candidate(dir, path, &layout, name, node)));
            }
            if attempt == 0 {
                self.refresh();
            }
        }
        Ok(None)
    }

    /// Every entry of directory `dir`, `.` and `..` first.
    fn list(&self, dir: &Entry) -> Result<Vec<Item>> {
        let parent_ino = if dir.ino == ROOT { ROOT } else { dir.parent };
        let mut items = vec![
            Item {
                name: b".".to_vec(),
                kind: FileType::Directory,
                candidate: None,
                ino: dir.ino,
            },
            Item {
                name: b"..".to_vec(),
                kind: FileType::Directory,
                candidate: None,
                ino: parent_ino,
            },
        ];
        let candidates: Vec<Candidate> = if let Some(tree) = dir.data.tree() {
            let listing = self.tree_listing(tree)?;
            (0..listing.len())
                .map(|i| self.node_candidate(dir, &listing, i))
                .collect()
        } else if let Data::Virtual { path } = &dir.data {
            self.refresh();
            let layout = self.layout.read().unwrap().clone();
            let Some(d) = layout.resolve(path) else {
                return Err(Error::not_found("this directory is gone"));
            };
            match &layout.nodes[d] {
                VNode::Dir { children, .. } => children
                    .iter()
                    .map(|(name, &n)| self.virtual_candidate(dir, path, &layout, name, n))
                    .collect(),
                _ => Vec::new(),
            }
        } else {
            return Err(Error::new(Kind::InvalidInput, "not a directory"));
        };
        let table = self.table.lock().unwrap();
        items.extend(candidates.into_iter().map(|c| Item {
            name: c.name.clone(),
            kind: c.data.kind(),
            ino: table.number(c.ident),
            candidate: Some(c),
        }));
        Ok(items)
    }

    fn lookup(&self, parent: INodeNo, name: &[u8], reply: ReplyEntry) {
        let Some(dir) = self.entry(parent) else {
            return reply.error(Errno::ESTALE);
        };
        match self.find_child(&dir, name) {
            Ok(Some(c)) => {
                let e = self.table.lock().unwrap().reference(dir.ino, c);
                let a = self.attr_of(e.ino, &e.data);
                reply.entry(&Self::ttl(&e.data), &a, Generation(0));
            }
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) if e.kind == Kind::InvalidInput => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(self.log(&dir, "listing", &e)),
        }
    }

    fn opendir(&self, ino: INodeNo, reply: ReplyOpen) {
        let Some(dir) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        match self.list(&dir) {
            Ok(items) => {
                let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
                self.handles
                    .lock()
                    .unwrap()
                    .insert(fh, Handle::Dir(Arc::new(items)));
                let flags = if dir.data.is_virtual() {
                    FopenFlags::empty()
                } else {
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
                };
                reply.opened(FileHandle(fh), flags);
            }
            Err(e) if e.kind == Kind::InvalidInput => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(self.log(&dir, "listing", &e)),
        }
    }

    fn dir_items(&self, fh: FileHandle) -> Option<Arc<Vec<Item>>> {
        match self.handles.lock().unwrap().get(&fh.0) {
            Some(Handle::Dir(items)) => Some(items.clone()),
            _ => None,
        }
    }

    fn readdir(&self, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(items) = self.dir_items(fh) else {
            return reply.error(Errno::EBADF);
        };
        for (i, it) in items.iter().enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(it.ino),
                i as u64 + 1,
                it.kind,
                OsStr::from_bytes(&it.name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(items) = self.dir_items(fh) else {
            return reply.error(Errno::EBADF);
        };
        let Some(dir) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        for (i, it) in items.iter().enumerate().skip(offset as usize) {
            let name = OsStr::from_bytes(&it.name);
            let off = i as u64 + 1;
            match &it.candidate {
                // The kernel takes no reference for `.` and `..`.
                None => {
                    let a = self.attr_of(dir.ino, &dir.data);
                    let a = FileAttr {
                        ino: INodeNo(it.ino),
                        ..a
                    };
                    if reply.add(
                        INodeNo(it.ino),
                        off,
                        name,
                        &Duration::ZERO,
                        &a,
                        Generation(0),
                    ) {
                        break;
                    }
                }
                Some(c) => {
                    let a = self.attr_of(it.ino, &c.data);
                    if reply.add(
                        INodeNo(it.ino),
                        off,
                        name,
                        &Self::ttl(&c.data),
                        &a,
                        Generation(0),
                    ) {
                        break;
                    }
                    // Every entry in the reply is a lookup the kernel will forget.
                    let c = Candidate {
                        ident: c.ident,
                        name: c.name.clone(),
                        data: c.data.clone(),
                    };
                    self.table.lock().unwrap().reference(dir.ino, c);
                }
            }
        }
        reply.ok();
    }

    fn open(&self, ino: INodeNo, reply: ReplyOpen) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        match e.data.node() {
            Some(n) if n.kind == cairn_repository::format::tree::NodeKind::File => {}
            _ => return reply.error(Errno::EISDIR),
        }
        if let Err(err) = self.content(&e) {
            return reply.error(self.log(&e, "opening", &err));
        }
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().unwrap().insert(
            fh,
            Handle::File(Arc::new(FileState {
                last_read: AtomicU64::new(u64::MAX),
                dropped: AtomicUsize::new(0),
            })),
        );
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn content(&self, e: &Entry) -> Result<Arc<Content>> {
        if let Some(c) = e.content.get() {
            return Ok(c.clone());
        }
        let node = e.data.node().expect("a file");
        let c = Arc::new(Content::new(&self.repo, node)?);
        let _ = e.content.set(c.clone());
        Ok(c)
    }

    fn read(
        self: &Arc<Self>,
        pool: &Pool,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        reply: ReplyData,
    ) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        let content = match self.content(&e) {
            Ok(c) => c,
            Err(err) => return reply.error(self.log(&e, "reading", &err)),
        };
        let state = match self.handles.lock().unwrap().get(&fh.0) {
            Some(Handle::File(s)) => Some(s.clone()),
            _ => None,
        };
        let mut reply = Some(reply);
        let sent = content.read(&self.repo, &self.blobs, offset, size as u64, |data| {
            if let Some(r) = reply.take() {
                r.data(data);
            }
        });
        if let Err(err) = sent {
            if let Some(r) = reply.take() {
                r.error(self.log(&e, "reading", &err));
            }
            return;
        }
        // Sequential reading: fetch the next blobs before they are asked for.
        let Some(state) = state else { return };
        let last_end = state
            .last_read
            .swap(offset + size as u64, Ordering::Relaxed);
        let sequential =
            offset == 0 || (last_end != u64::MAX && offset.abs_diff(last_end) <= SEQUENTIAL_GAP);
        if !sequential {
            return;
        }
        // Behind a sequential reader: what it read is in the kernel's page
        // cache, and keeping the blobs too would fill the cache (and the
        // memory) with one pass over a large file.
        let behind = offset.saturating_sub(DROP_BEHIND);
        let passed = content.blobs(behind, behind + 1).start;
        let from = state.dropped.fetch_max(passed, Ordering::Relaxed);
        for loc in content.locations.get(from..passed).unwrap_or_default() {
            self.blobs.forget(&loc.id);
        }
        if self.readahead == 0 {
            return;
        }
        let end = (offset + size as u64).min(content.size);
        let mut next = content.blobs(offset, end.max(offset + 1)).end;
        let mut ahead = 0u64;
        while next < content.locations.len() && ahead < self.readahead {
            let loc = content.locations[next];
            ahead += loc.raw_length as u64;
            next += 1;
            if self.blobs.present(&loc.id) {
                continue;
            }
            let inner = self.clone();
            pool.prefetch(move || {
                if !inner.blobs.present(&loc.id) {
                    // A failure shows when the reader gets there.
                    let _ = inner.blobs.get(&inner.repo, &loc);
                }
            });
        }
    }

    fn readlink(&self, ino: INodeNo, reply: ReplyData) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        match &e.data {
            Data::Link { target, .. } => reply.data(target),
            Data::Node { .. } => match &e.data.node().expect("a node").linktarget {
                Some(t) => reply.data(t.as_bytes()),
                None => reply.error(Errno::EINVAL),
            },
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn xattrs(&self, e: &Entry) -> std::result::Result<Vec<Xattr>, Errno> {
        let Some(n) = e.data.node() else {
            return Ok(Vec::new());
        };
        n.xattrs
            .iter()
            .map(|x| match x.value_bytes() {
                Ok(v) => Ok((x.name.as_bytes().to_vec(), v)),
                Err(err) => Err(self.log(
                    e,
                    "reading extended attributes of",
                    &Error::format("xattr", err),
                )),
            })
            .collect()
    }

    fn getxattr(&self, ino: INodeNo, name: &[u8], size: u32, reply: ReplyXattr) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        let xattrs = match self.xattrs(&e) {
            Ok(x) => x,
            Err(errno) => return reply.error(errno),
        };
        match xattrs.iter().find(|(n, _)| n == name) {
            None => reply.error(Errno::NO_XATTR),
            Some((_, v)) => sized(reply, size, v),
        }
    }

    fn listxattr(&self, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(e) = self.entry(ino) else {
            return reply.error(Errno::ESTALE);
        };
        let xattrs = match self.xattrs(&e) {
            Ok(x) => x,
            Err(errno) => return reply.error(errno),
        };
        let mut names = Vec::new();
        for (n, _) in &xattrs {
            names.extend_from_slice(n);
            names.push(0);
        }
        sized(reply, size, &names);
    }
}

/// An extended attribute: name and value.
type Xattr = (Vec<u8>, Vec<u8>);

/// An xattr reply: the size when asked for it, the bytes if they fit.
fn sized(reply: ReplyXattr, size: u32, v: &[u8]) {
    if size == 0 {
        reply.size(v.len() as u32);
    } else if v.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(v);
    }
}

impl Filesystem for CairnFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Each is an optimisation the kernel may not offer; without it,
        // the plain requests work the same.
        for cap in [
            // Listings carry attributes: `ls -l` and `find` need no lookup per entry.
            InitFlags::FUSE_DO_READDIRPLUS,
            // Lookups in one directory may run at once.
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
        ] {
            let _ = config.add_capabilities(cap);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let inner = self.inner.clone();
        let name = name.as_bytes().to_vec();
        self.pool.run(move || inner.lookup(parent, &name, reply));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.table.lock().unwrap().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inner.entry(ino) {
            Some(e) => reply.attr(&Inner::ttl(&e.data), &self.inner.attr_of(e.ino, &e.data)),
            None => reply.error(Errno::ESTALE),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.inner.readlink(ino, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.inner.open(ino, reply);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let inner = self.inner.clone();
        let pool = self.pool.clone();
        self.pool
            .run(move || inner.read(&pool, ino, fh, offset, size, reply));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.inner.handles.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let inner = self.inner.clone();
        self.pool.run(move || inner.opendir(ino, reply));
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.inner.readdir(fh, offset, reply);
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.inner.readdirplus(ino, fh, offset, reply);
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.inner.handles.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.inner.getxattr(ino, name.as_bytes(), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.inner.listxattr(ino, size, reply);
    }
}
