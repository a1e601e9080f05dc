//! The walk: metadata, filters, the parent snapshot, and the finisher that
//! assembles directory trees in post-order.

use super::files::{reader_loop, FileJob, FileOut};
use super::filter::git_ignored;
use super::fsnode::{kind_of, node_from_metadata, NameCache};
use super::oneshot;
use super::parent::ParentTrees;
use super::{add, BackupOptions, BackupProgress, Counters};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind, Tree, TreeWriter};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::BlobSaver;
use crossbeam_channel::{bounded, Receiver, Sender};
use ignore::gitignore::Gitignore;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

pub(super) fn clean_targets(targets: &[PathBuf]) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = Vec::new();
    for t in targets {
        if !kept.iter().any(|k| t.starts_with(k)) {
            kept.push(t.clone());
        }
    }
    kept
}

/// Directories of at most this many entries are stat'ed in one go (see
/// `walk_dir`).
const STAT_AT_ONCE: usize = 4096;

/// A node in a directory listing, possibly still waiting for its content.
enum Child {
    Ready(Node),
    File(Node, oneshot::Receiver<Option<FileOut>>),
    Dir(Node, oneshot::Receiver<Id>),
}

/// A directory's entries in chunks: the finisher frees each chunk as it
/// writes it into the tree's bytes, so a large directory is not held as
/// entries and as bytes at once.
#[derive(Default)]
struct Children {
    chunks: Vec<Vec<Child>>,
}

impl Children {
    const CHUNK: usize = 4096;

    /// Adds an entry. Its user and group names are dropped here and set
    /// again from the name cache when the tree is written: two small
    /// allocations fewer per waiting entry.
    fn push(&mut self, mut c: Child) {
        let (Child::Ready(n) | Child::File(n, _) | Child::Dir(n, _)) = &mut c;
        n.user = String::new();
        n.group = String::new();
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < Self::CHUNK => chunk.push(c),
            // Grown as needed: most directories hold a few entries, and
            // a chunk reserved whole for each (about 1 MiB) cost a backup
            // of many small directories 20 MiB more at its peak.
            _ => self.chunks.push(vec![c]),
        }
    }
}

struct DirJob {
    children: Children,
    /// The directory's tree in the parent snapshot, for the statistics.
    old: Option<Id>,
    reply: oneshot::Sender<Id>,
}

pub(super) struct Walker<'a> {
    saver: &'a BlobSaver,
    opts: &'a BackupOptions,
    progress: &'a BackupProgress,
    counters: &'a Counters,
    parent: &'a ParentTrees<'a>,
    names: NameCache,
    fatal: Mutex<Option<Error>>,
}

/// Channels the walking thread sends on.
struct Out {
    files: Sender<FileJob>,
    dirs: Sender<DirJob>,
}

fn find_old<'t>(tree: Option<&'t Tree>, name: &[u8]) -> Option<&'t Node> {
    let t = tree?;
    t.nodes
        .binary_search_by(|n| n.name.as_bytes().cmp(name))
        .ok()
        .map(|i| &t.nodes[i])
}

impl<'a> Walker<'a> {
    pub(super) fn new(
        saver: &'a BlobSaver,
        opts: &'a BackupOptions,
        progress: &'a BackupProgress,
        counters: &'a Counters,
        parent: &'a ParentTrees<'a>,
    ) -> Self {
        Walker {
            saver,
            opts,
            progress,
            counters,
            parent,
            names: NameCache::default(),
            fatal: Mutex::new(None),
        }
    }

    /// Back up `targets` (absolute, sorted); returns the root tree id and
    /// the number of items that could not be read: directories and other
    /// entries the walker could not read, and files the readers could not
    /// (both count in `progress.errors`).
    pub(super) fn run(&self, targets: &[PathBuf]) -> Result<(Id, u64)> {
        let errors_before = self.progress.errors.load(Ordering::Relaxed);
        // Drop targets inside other targets.
        let kept = clean_targets(targets);
        let (file_tx, file_rx) = bounded::<FileJob>(256);
        let (dir_tx, dir_rx) = bounded::<DirJob>(1024);
        let (root_tx, root_rx) = oneshot::channel::<Id>();
        std::thread::scope(|s| -> Result<()> {
            for i in 0..self.opts.readers.max(1) {
                let rx = file_rx.clone();
                std::thread::Builder::new()
                    .name(format!("read-{i}"))
                    .spawn_scoped(s, move || {
                        reader_loop(
                            rx,
                            self.saver,
                            self.progress,
                            self.opts.on_error.as_ref(),
                            &self.fatal,
                            &self.opts.cancel,
                        )
                    })
                    .expect("spawn reader");
            }
            drop(file_rx);
            std::thread::Builder::new()
                .name("trees".into())
                .spawn_scoped(s, || self.finisher(dir_rx))
                .expect("spawn finisher");
            let out = Out {
                files: file_tx,
                dirs: dir_tx,
            };
            // The walk recurses once per directory level: give it a roomy stack.
            let walk = std::thread::Builder::new()
                .name("walk".into())
                .stack_size(256 << 20)
                .spawn_scoped(s, move || {
                    let old_tree = self.parent.root();
                    let mut gi = Vec::new();
                    let children =
                        self.walk_virtual(Path::new("/"), &kept, old_tree.as_ref(), &mut gi, &out);
                    let _ = out.dirs.send(DirJob {
                        children,
                        old: self.parent.root_id(),
                        reply: root_tx,
                    });
                })
                .expect("spawn walker");
            let _ = walk.join();
            Ok(())
        })?;
        if let Some(e) = self.fatal.lock().unwrap().take() {
            return Err(e);
        }
        let root = root_rx.recv().map_err(|_| {
            Error::new(
                crate::Kind::Interrupted,
                "backup stopped before the root tree was written",
            )
        })?;
        let errors = self.progress.errors.load(Ordering::Relaxed) - errors_before;
        Ok((root, errors))
    }

    fn stopped(&self) -> bool {
        self.opts.cancel.load(Ordering::Relaxed) || self.fatal.lock().unwrap().is_some()
    }

    fn report(&self, path: &Path, msg: &str) {
        add(&self.progress.errors, 1);
        if let Some(sink) = &self.opts.on_error {
            sink(path, msg);
        }
    }

    /// The directories above the targets: each gets the metadata of the
    /// real directory, and holds only the targets below it.
    fn walk_virtual(
        &self,
        prefix: &Path,
        targets: &[PathBuf],
        old_tree: Option<&Tree>,
        gi: &mut Vec<Gitignore>,
        out: &Out,
    ) -> Children {
        let mut children = Children::default();
        let depth = prefix.components().count();
        let mut i = 0;
        while i < targets.len() {
            let Some(comp) = targets[i].components().nth(depth) else {
                i += 1;
                continue;
            };
            let name = comp.as_os_str().to_owned();
            let group_end = targets[i..]
                .iter()
                .position(|t| t.components().nth(depth).map(|c| c.as_os_str()) != Some(&name))
                .map_or(targets.len(), |n| i + n);
            let path = prefix.join(&name);
            let old = find_old(old_tree, name.as_bytes());
            if targets[i] == path {
                if let Some(c) = self.entry(&path, None, old, None, gi, out) {
                    children.push(c);
                }
            } else {
                match path.symlink_metadata().and_then(|m| {
                    node_from_metadata(
                        &path,
                        name.as_bytes(),
                        &m,
                        &self.names,
                        old,
                        self.opts.with_atime,
                    )
                }) {
                    Ok(node) => {
                        let old_sub = old
                            .filter(|o| o.kind == NodeKind::Dir)
                            .and_then(|o| o.subtree);
                        let old_sub_tree = self.parent.load(old_sub, &path);
                        let sub = self.walk_virtual(
                            &path,
                            &targets[i..group_end],
                            old_sub_tree.as_ref(),
                            gi,
                            out,
                        );
                        children.push(self.dir_job(node, sub, old_sub, out));
                    }
                    Err(e) => self.report(&path, &e.to_string()),
                }
            }
            i = group_end;
        }
        children
    }

    fn dir_job(&self, node: Node, children: Children, old: Option<Id>, out: &Out) -> Child {
        let (tx, rx) = oneshot::channel();
        let _ = out.dirs.send(DirJob {
            children,
            old,
            reply: tx,
        });
        add(&self.progress.dirs_done, 1);
        Child::Dir(node, rx)
    }

    /// One file system entry. `parent_dev` is the device of the directory
    /// holding it (None for a backup target).
    fn entry(
        &self,
        path: &Path,
        known_meta: Option<std::fs::Metadata>,
        old: Option<&Node>,
        parent_dev: Option<u64>,
        gi: &mut Vec<Gitignore>,
        out: &Out,
    ) -> Option<Child> {
        let meta = match known_meta.map_or_else(|| path.symlink_metadata(), Ok) {
            Ok(m) => m,
            Err(e) => {
                self.report(path, &e.to_string());
                return None;
            }
        };
        let kind = kind_of(&meta)?;
        let f = &self.opts.filters;
        if parent_dev.is_some() {
            if f.excludes_path(path, kind == NodeKind::File, meta.len()) {
                return None;
            }
            if !gi.is_empty() && git_ignored(gi, path, kind == NodeKind::Dir) {
                return None;
            }
        }
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b"/");
        let mut node =
            match node_from_metadata(path, name, &meta, &self.names, old, self.opts.with_atime) {
                Ok(n) => n,
                Err(e) => {
                    self.report(path, &e.to_string());
                    return None;
                }
            };
        match kind {
            NodeKind::File => {
                if let Some(old) = old.filter(|o| self.unchanged(&node, o)) {
                    node.content = old.content.clone();
                    add(&self.counters.files_unmodified, 1);
                    if let Some(sink) = &self.opts.on_file {
                        sink(path, super::FileChange::Unmodified);
                    }
                    add(&self.progress.files_done, 1);
                    add(&self.progress.bytes_done, node.size);
                    return Some(Child::Ready(node));
                }
                let modified = old.is_some_and(|o| o.kind == NodeKind::File);
                add(
                    if modified {
                        &self.counters.files_changed
                    } else {
                        &self.counters.files_new
                    },
                    1,
                );
                if let Some(sink) = &self.opts.on_file {
                    use super::FileChange::{Modified, New};
                    sink(path, if modified { Modified } else { New });
                }
                let (tx, rx) = oneshot::channel();
                if out
                    .files
                    .send(FileJob {
                        path: path.to_path_buf(),
                        size_hint: meta.len(),
                        reply: tx,
                    })
                    .is_err()
                {
                    return None;
                }
                Some(Child::File(node, rx))
            }
            NodeKind::Dir => {
                if parent_dev.is_some() && f.excludes_dir_contents(path) {
                    return None;
                }
                let old_sub = old
                    .filter(|o| o.kind == NodeKind::Dir)
                    .and_then(|o| o.subtree);
                let mountpoint = f.one_file_system && parent_dev.is_some_and(|d| d != meta.dev());
                let children = if mountpoint {
                    Children::default()
                } else if parent_dev.is_none() {
                    // A backup target: the ignore files above it apply too.
                    let (above, problems) = f.gitignores_above(path);
                    for (file, p) in problems {
                        self.report(&file, &p);
                    }
                    let pushed = above.len();
                    gi.extend(above);
                    let children = self.walk_dir(path, old_sub, meta.dev(), gi, out);
                    gi.truncate(gi.len() - pushed);
                    children
                } else {
                    self.walk_dir(path, old_sub, meta.dev(), gi, out)
                };
                Some(self.dir_job(node, children, old_sub, out))
            }
            _ => Some(Child::Ready(node)),
        }
    }

    fn walk_dir(
        &self,
        dir: &Path,
        old_sub: Option<Id>,
        dev: u64,
        gi: &mut Vec<Gitignore>,
        out: &Out,
    ) -> Children {
        let old_tree = self.parent.load(old_sub, dir);
        // lstat through the directory's descriptor (fstatat): no path lookup
        // from the root per entry. A small directory is stat'ed at once, so
        // its descriptor is closed before the walk goes deeper; a large one
        // keeps its entries (about 100 bytes each, not the 250 of their
        // metadata) and its descriptor, and stats each entry in turn, so a
        // directory of a million entries stays small.
        let mut names: Vec<(std::ffi::OsString, std::fs::DirEntry)> = match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut v = Vec::new();
                for e in rd {
                    match e {
                        Ok(e) => v.push((e.file_name(), e)),
                        Err(e) => self.report(dir, &e.to_string()),
                    }
                }
                v
            }
            Err(e) => {
                self.report(dir, &e.to_string());
                return Children::default();
            }
        };
        names.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let (matchers, problems) = self.opts.filters.gitignore_for(dir);
        for (file, p) in problems {
            self.report(&file, &p);
        }
        let pushed = matchers.len();
        gi.extend(matchers);
        let mut children = Children::default();
        // Both lists are sorted by name: one pass over the old nodes.
        let old_nodes = old_tree.as_ref().map_or(&[][..], |t| &t.nodes[..]);
        let mut cursor = 0;
        let listing: Box<dyn Iterator<Item = (std::ffi::OsString, Option<std::fs::Metadata>)>> =
            if names.len() <= STAT_AT_ONCE {
                let stated: Vec<_> = names
                    .into_iter()
                    .map(|(n, e)| (n, e.metadata().ok()))
                    .collect();
                Box::new(stated.into_iter())
            } else {
                Box::new(names.into_iter().map(|(n, e)| (n, e.metadata().ok())))
            };
        for (name, meta) in listing {
            if self.stopped() {
                break;
            }
            let path = dir.join(&name);
            let name = name.as_bytes();
            while cursor < old_nodes.len() && old_nodes[cursor].name.as_bytes() < name {
                cursor += 1;
            }
            let old = old_nodes.get(cursor).filter(|n| n.name.as_bytes() == name);
            if let Some(c) = self.entry(&path, meta, old, Some(dev), gi, out) {
                children.push(c);
            }
        }
        gi.truncate(gi.len() - pushed);
        children
    }

    /// Is the file as its parent snapshot's node says (restic's rule: same
    /// size, mtime, ctime unless `ignore_ctime`, inode unless
    /// `ignore_inode`), with every blob still stored?
    fn unchanged(&self, node: &Node, old: &Node) -> bool {
        old.kind == NodeKind::File
            && node.size == old.size
            && node.mtime == old.mtime
            && (self.opts.ignore_ctime || node.ctime == old.ctime)
            && (self.opts.ignore_inode || node.inode == old.inode)
            && (node.size == 0 || !old.content.is_empty())
            && old.content.iter().all(|id| self.saver.known(id))
    }

    /// Assemble and save directory trees, in the order the walker finished them.
    fn finisher(&self, rx: Receiver<DirJob>) {
        for job in rx {
            // Written chunk by chunk, each freed once written.
            let mut tree = TreeWriter::new();
            let large = job.children.chunks.len() > 1;
            for chunk in job.children.chunks {
                for c in chunk {
                    let node = match c {
                        Child::Ready(n) => Some(n),
                        Child::File(mut n, rx) => match rx.recv() {
                            Ok(Some(out)) => {
                                n.size = out.size;
                                n.content = out.content;
                                Some(n)
                            }
                            _ => None,
                        },
                        Child::Dir(mut n, rx) => rx.recv().ok().map(|id| {
                            n.subtree = Some(id);
                            n
                        }),
                    };
                    if let Some(mut n) = node {
                        n.user = self.names.user(n.uid);
                        n.group = self.names.group(n.gid);
                        tree.push(&n);
                    }
                }
                if large {
                    release_freed_memory();
                }
            }
            if self.stopped() {
                continue; // dropping the reply unblocks the parent
            }
            match self.saver.save(BlobKind::Tree, tree.finish()) {
                Ok((id, _)) => {
                    let c = &self.counters;
                    add(
                        match job.old {
                            None => &c.dirs_new,
                            Some(old) if old == id => &c.dirs_unmodified,
                            Some(_) => &c.dirs_changed,
                        },
                        1,
                    );
                    job.reply.send(id);
                }
                Err(e) => {
                    let mut f = self.fatal.lock().unwrap();
                    if f.is_none() {
                        *f = Some(e);
                    }
                }
            }
        }
    }
}

/// Gives the pages of memory freed by the entries of a large directory back
/// to the system while its tree is written: many small allocations are
/// freed in the order they were made, and the C library would otherwise
/// keep their pages as the tree's bytes grow.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own
    // arenas to the system; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
