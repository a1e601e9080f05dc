//! Restoring a snapshot (or one of its subtrees) into a directory.
//!
//! The snapshot's trees are walked one directory at a time
//! ([`crate::tree_walk`]) and cut into batches of about [`BATCH_WEIGHT`]
//! blobs' worth of entries, so memory stays bounded whatever the snapshot's
//! size. Each batch goes through these phases:
//!
//! 1. While walking: directories, symlinks, fifos and devices are created at
//!    once; regular files are planned (their blobs grouped by pack).
//! 2. Data ([`write`]): packs restored in parallel; a file is created at its
//!    final size by the first worker that needs it, blobs are written with
//!    `pwrite`, blobs of zeros are skipped (sparse files stay sparse).
//! 3. Files that needed no data (empty, all holes) are created.
//! 4. `--verify` ([`verify`]): files read back and hashed blob by blob.
//! 5. Hard links to files restored earlier in the walk.
//! 6. File metadata ([`meta`]), then the metadata of the directories whose
//!    contents are complete, deepest first, so that nothing written later
//!    changes a directory's mtime or needs write access to it.
//!
//! Errors concerning one entry (permission denied in the target, a damaged
//! or missing blob) are collected in [`RestoreSummary::errors`] with the
//! target path, and the restore goes on. Fatal errors (the target cannot be
//! created, the disk is full, the root tree is unreadable) abort it.
//!
//! The target is never followed through a symlink: whatever is at a path
//! to restore is removed first (see [`meta`]). Node names are checked by the
//! tree walker, so no entry lands outside the target.

mod meta;
mod verify;
mod write;

use crate::pattern::PatternSet;
use crate::tree_walk::{self, Visit, Visitor};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use cairn_repository::Repository;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use write::Want;

/// A batch holds about this many blobs' worth of entries (a file weighs
/// 1 + its blob count, anything else 1).
pub const BATCH_WEIGHT: usize = 50_000;
/// At most this many hard-linked inodes are remembered at once; beyond it,
/// further links restore as independent copies.
const MAX_HARDLINKS: usize = 100_000;
/// At most this many errors (and as many warnings) are kept with their
/// messages; the rest are counted in [`RestoreSummary::omitted`].
const MAX_REPORTED: usize = 10_000;

/// What to do with an entry that already exists in the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it (restic's default).
    #[default]
    Always,
    /// Leave it alone and count it as skipped. Existing directories are
    /// still restored into, but keep their metadata.
    Never,
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Directory to restore into; created if missing. A snapshot path
    /// `/home/u/a.txt` restores to `target/home/u/a.txt`.
    pub target: PathBuf,
    /// The snapshot path of the tree being restored: `/` for a snapshot's
    /// root tree, `/home/u` to restore that directory's contents into
    /// `target`. Patterns match full snapshot paths.
    pub tree_path: PathBuf,
    /// If not empty, only matching paths are restored, with the directories
    /// leading to them.
    pub include: PatternSet,
    /// Matching paths (a directory with everything below) are not restored.
    pub exclude: PatternSet,
    pub overwrite: Overwrite,
    /// Read every restored file back and check it against its blob ids.
    pub verify: bool,
    /// Packs restored at once; 0 means the number of CPUs (at least 2).
    pub threads: usize,
}

impl RestoreOptions {
    pub fn new(target: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            target: target.into(),
            tree_path: PathBuf::from("/"),
            include: PatternSet::empty(),
            exclude: PatternSet::empty(),
            overwrite: Overwrite::Always,
            verify: false,
            threads: 0,
        }
    }

    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
            n => n,
        }
    }
}

/// Counters a caller may poll from another thread while a restore runs.
/// "Files" are all entries other than directories. The totals grow as the
/// walk discovers entries; they are final when the restore returns.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreSummary {
    /// Entries other than directories restored (files, hard links, symlinks,
    /// fifos, devices), including files restored with errors.
    pub files: u64,
    pub dirs: u64,
    /// Size of the regular files restored.
    pub bytes: u64,
    /// Entries left alone: existing ones under [`Overwrite::Never`], sockets.
    pub skipped: u64,
    /// Files read back and found identical (`verify`).
    pub verified: u64,
    /// Entries that failed, with the target path and why.
    pub errors: Vec<(PathBuf, String)>,
    /// Problems that did not lose data, e.g. extended attributes the
    /// target file system refused.
    pub warnings: Vec<(PathBuf, String)>,
    /// Errors and warnings beyond the first [`MAX_REPORTED`] of each.
    pub omitted: u64,
}

/// Restore the tree `tree` (a snapshot's root tree, or a subtree whose
/// snapshot path is `opts.tree_path`) into `opts.target`.
pub fn restore(repo: &Repository, tree: Id, opts: &RestoreOptions, progress: &RestoreProgress) -> Result<RestoreSummary> {
    restore_batched(repo, tree, opts, progress, BATCH_WEIGHT)
}

fn restore_batched(repo: &Repository, tree: Id, opts: &RestoreOptions, progress: &RestoreProgress, batch_weight: usize) -> Result<RestoreSummary> {
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(e, format!("creating target directory {}", opts.target.display())))?;
    let tree_path = tree_walk::normalize(&opts.tree_path);
    let chunker = repo.config().chunker;
    let zero_ids = [chunker.min_size, chunker.avg_size, chunker.max_size]
        .iter()
        .map(|&n| repo.blob_id(&vec![0u8; n as usize]))
        .collect();
    let mut r = Restorer {
        repo,
        opts,
        tree_path: tree_path.clone(),
        report: Report::new(progress),
        threads: opts.thread_count(),
        batch_weight,
        as_root: meta::is_root(),
        zero_ids,
        batch: Batch::default(),
        stack: Vec::new(),
        links: HashMap::new(),
        files: AtomicU64::new(0),
        dirs: 0,
        bytes: AtomicU64::new(0),
        skipped: 0,
        verified: AtomicU64::new(0),
    };
    tree_walk::walk(repo, tree, &tree_path, &mut r)?;
    r.flush()?;
    let (errors, warnings, omitted) = r.report.into_lists();
    Ok(RestoreSummary {
        files: r.files.into_inner(),
        dirs: r.dirs,
        bytes: r.bytes.into_inner(),
        skipped: r.skipped,
        verified: r.verified.into_inner(),
        errors,
        warnings,
        omitted,
    })
}

/// Errors and warnings, collected from all threads.
pub(crate) struct Report<'a> {
    pub progress: &'a RestoreProgress,
    errors: Mutex<Vec<(PathBuf, String)>>,
    warnings: Mutex<Vec<(PathBuf, String)>>,
    omitted: AtomicU64,
    fatal: Mutex<Option<Error>>,
    has_fatal: AtomicBool,
}

impl<'a> Report<'a> {
    fn new(progress: &'a RestoreProgress) -> Self {
        Report {
            progress,
            errors: Mutex::default(),
            warnings: Mutex::default(),
            omitted: AtomicU64::new(0),
            fatal: Mutex::default(),
            has_fatal: AtomicBool::new(false),
        }
    }

    fn push(&self, list: &Mutex<Vec<(PathBuf, String)>>, path: &Path, msg: String) {
        let mut l = list.lock().unwrap();
        if l.len() < MAX_REPORTED {
            l.push((path.to_path_buf(), msg));
        } else {
            self.omitted.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn error(&self, path: &Path, msg: impl Into<String>) {
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.push(&self.errors, path, msg.into());
    }

    pub fn warning(&self, path: &Path, msg: impl Into<String>) {
        self.push(&self.warnings, path, msg.into());
    }

    /// An I/O error on one entry; a full disk ends the restore.
    pub fn io_error(&self, path: &Path, what: &str, e: io::Error) {
        if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
            self.fatal(Error::io(e, format!("{what} {}", path.display())));
        } else {
            self.error(path, format!("{what}: {e}"));
        }
    }

    pub fn fatal(&self, e: Error) {
        let mut f = self.fatal.lock().unwrap();
        if f.is_none() {
            *f = Some(e);
        }
        self.has_fatal.store(true, Ordering::Relaxed);
    }

    pub fn has_fatal(&self) -> bool {
        self.has_fatal.load(Ordering::Relaxed)
    }

    fn check_fatal(&self) -> Result<()> {
        match self.fatal.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn into_lists(self) -> (Vec<(PathBuf, String)>, Vec<(PathBuf, String)>, u64) {
        (self.errors.into_inner().unwrap(), self.warnings.into_inner().unwrap(), self.omitted.into_inner())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// Not created yet (no worker needed it so far).
    New,
    Created,
    /// Could not be created.
    Failed,
}

/// A regular file of the current batch.
pub(crate) struct FileJob {
    pub path: PathBuf,
    pub node: Node,
    /// Final size: the sum of its blobs' lengths.
    pub size: u64,
    /// Blob writes planned for it.
    pub wants: u32,
    /// Blob writes not done yet.
    pub pending: AtomicU32,
    pub state: Mutex<FileState>,
    /// Something went wrong (reported); its metadata is not applied.
    pub failed: AtomicBool,
}

impl FileJob {
    /// Mark the file failed; only its first error is reported.
    pub fn fail(&self, report: &Report, msg: &str) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            report.error(&self.path, msg);
        }
    }

    fn ok(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Batch {
    files: Vec<FileJob>,
    /// Blobs to restore, by pack.
    wants: HashMap<Id, Vec<Want>>,
    /// (new link, existing file).
    links: Vec<(PathBuf, PathBuf)>,
    /// Directories whose contents are complete, in post-order, with their nodes.
    dirs: Vec<(PathBuf, Node)>,
    weight: usize,
}

/// A directory on the walk's current path.
struct DirFrame {
    target: PathBuf,
    /// It exists in the target (restored, or found there).
    exists: bool,
    /// Creating it (or a parent) failed: its contents are skipped.
    failed: bool,
    /// Apply its metadata when it is left.
    restore_meta: bool,
}

struct Restorer<'a> {
    repo: &'a Repository,
    opts: &'a RestoreOptions,
    tree_path: PathBuf,
    report: Report<'a>,
    threads: usize,
    batch_weight: usize,
    as_root: bool,
    /// Ids of all-zero blobs of the chunker's usual sizes: never read.
    zero_ids: HashSet<Id>,
    batch: Batch,
    stack: Vec<DirFrame>,
    /// (device, inode) → (first path restored, links still to come).
    links: HashMap<(u64, u64), (PathBuf, u64)>,
    files: AtomicU64,
    dirs: u64,
    bytes: AtomicU64,
    skipped: u64,
    verified: AtomicU64,
}

impl Visitor for Restorer<'_> {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        if self.report.has_fatal() {
            self.report.check_fatal()?;
        }
        if self.opts.exclude.matches(path) {
            return Ok(Visit::SkipChildren);
        }
        if self.stack.last().is_some_and(|f| f.failed) {
            return Ok(Visit::SkipChildren);
        }
        let included = self.opts.include.is_empty() || self.opts.include.matches(path);
        let target = self.target_of(path);
        if node.kind == NodeKind::Dir {
            if included {
                if !self.ensure_parents() {
                    return Ok(Visit::SkipChildren);
                }
                let replace = self.opts.overwrite == Overwrite::Always;
                if !replace && std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    self.skipped += 1;
                    return Ok(Visit::SkipChildren);
                }
                match meta::make_dir(&target, replace) {
                    Ok(created) => {
                        self.dirs += 1;
                        let restore_meta = created || self.opts.overwrite == Overwrite::Always;
                        self.stack.push(DirFrame { target, exists: true, failed: false, restore_meta });
                    }
                    Err(e) => {
                        self.report.io_error(&target, "creating directory", e);
                        return Ok(Visit::SkipChildren);
                    }
                }
            } else if self.opts.include.may_match_below(path) {
                // Created only if something below is restored.
                self.stack.push(DirFrame { target, exists: false, failed: false, restore_meta: true });
            } else {
                return Ok(Visit::SkipChildren);
            }
            return Ok(Visit::Continue);
        }
        if included && self.ensure_parents() {
            self.restore_entry(&target, node);
            self.maybe_flush()?;
        }
        Ok(Visit::Continue)
    }

    fn leave_dir(&mut self, _path: &Path, node: &Node) -> Result<()> {
        let frame = self.stack.pop().expect("leave_dir matches a visited directory");
        if frame.exists && !frame.failed && frame.restore_meta {
            self.batch.dirs.push((frame.target, node.clone()));
            self.batch.weight += 1;
            self.maybe_flush()?;
        }
        Ok(())
    }

    fn error(&mut self, path: &Path, err: Error) -> Result<()> {
        let target = self.target_of(path);
        self.report.error(&target, err.message);
        Ok(())
    }
}

impl Restorer<'_> {
    fn target_of(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.tree_path) {
            Ok(rel) if rel.as_os_str().is_empty() => self.opts.target.clone(),
            Ok(rel) => self.opts.target.join(rel),
            Err(_) => unreachable!("walked paths are below the tree's path"),
        }
    }

    /// Create the directories on the current path not created yet (with
    /// `--include`, a directory is created only when something below it
    /// is restored). False if one of them cannot be created.
    fn ensure_parents(&mut self) -> bool {
        for i in 0..self.stack.len() {
            let f = &mut self.stack[i];
            if f.failed {
                return false;
            }
            if f.exists {
                continue;
            }
            match meta::make_dir(&f.target, self.opts.overwrite == Overwrite::Always) {
                Ok(created) => {
                    f.exists = true;
                    f.restore_meta = created || self.opts.overwrite == Overwrite::Always;
                    self.dirs += 1;
                }
                Err(e) => {
                    let target = f.target.clone();
                    for f in &mut self.stack[i..] {
                        f.failed = true;
                    }
                    self.report.io_error(&target, "creating directory", e);
                    return false;
                }
            }
        }
        true
    }

    /// Restore (or plan, for a regular file) one non-directory entry.
    fn restore_entry(&mut self, target: &Path, node: &Node) {
        if self.opts.overwrite == Overwrite::Never && std::fs::symlink_metadata(target).is_ok() {
            self.skipped += 1;
            return;
        }
        let p = self.report.progress;
        let made = match node.kind {
            NodeKind::File => return self.plan_file(target, node),
            NodeKind::Dir => unreachable!("directories are handled by visit"),
            NodeKind::Socket => {
                self.skipped += 1;
                return;
            }
            NodeKind::Symlink => match &node.linktarget {
                Some(t) => meta::make_symlink(target, t.as_bytes()),
                None => Err(io::Error::new(io::ErrorKind::InvalidData, "symlink without a target in the snapshot")),
            },
            NodeKind::Fifo => meta::make_fifo(target),
            NodeKind::Dev | NodeKind::Chardev if !self.as_root => {
                p.files_total.fetch_add(1, Ordering::Relaxed);
                self.report.error(target, "device node not restored: creating devices needs root");
                return;
            }
            NodeKind::Dev | NodeKind::Chardev => meta::make_device(target, node),
        };
        p.files_total.fetch_add(1, Ordering::Relaxed);
        match made {
            Ok(()) => {
                self.apply_meta(target, node);
                self.files.fetch_add(1, Ordering::Relaxed);
                p.files_done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.report.io_error(target, &format!("creating {}", node.kind.as_str()), e),
        }
        self.batch.weight += 1;
    }

    fn apply_meta(&self, target: &Path, node: &Node) {
        let problems = meta::apply(target, node, self.as_root);
        for e in problems.errors {
            self.report.error(target, e);
        }
        for w in problems.warnings {
            self.report.warning(target, w);
        }
    }

    fn plan_file(&mut self, target: &Path, node: &Node) {
        let p = self.report.progress;
        p.files_total.fetch_add(1, Ordering::Relaxed);
        let link_key = (node.links > 1 && (node.inode != 0 || node.device != 0)).then_some((node.device, node.inode));
        if let Some(key) = link_key {
            if let Some((first, left)) = self.links.get_mut(&key) {
                self.batch.links.push((target.to_path_buf(), first.clone()));
                *left -= 1;
                if *left == 0 {
                    self.links.remove(&key);
                }
                self.batch.weight += 1;
                return;
            }
        }
        let file = self.batch.files.len() as u32;
        let mut wants = Vec::with_capacity(node.content.len());
        let mut size = 0u64;
        let mut zero_bytes = 0u64;
        {
            let index = self.repo.index();
            for id in &node.content {
                let Some(loc) = index.get(id) else {
                    drop(index);
                    self.report.error(
                        target,
                        format!("data blob {} is not in the repository index (data lost? run `cairn check`); file not restored", id.short()),
                    );
                    return;
                };
                if self.zero_ids.contains(id) {
                    zero_bytes += loc.raw_length as u64;
                } else {
                    let w = Want { offset: loc.offset, length: loc.length, raw_length: loc.raw_length, blob: *id, file, file_offset: size };
                    wants.push((loc.pack, w));
                }
                size += loc.raw_length as u64;
            }
        }
        if let Some(key) = link_key {
            if self.links.len() < MAX_HARDLINKS {
                self.links.insert(key, (target.to_path_buf(), node.links - 1));
            }
        }
        p.bytes_total.fetch_add(size, Ordering::Relaxed);
        p.bytes_done.fetch_add(zero_bytes, Ordering::Relaxed);
        let n = wants.len() as u32;
        for (pack, w) in wants {
            self.batch.wants.entry(pack).or_default().push(w);
        }
        self.batch.files.push(FileJob {
            path: target.to_path_buf(),
            node: node.clone(),
            size,
            wants: n,
            pending: AtomicU32::new(n),
            state: Mutex::new(FileState::New),
            failed: AtomicBool::new(false),
        });
        self.batch.weight += 1 + node.content.len();
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.batch.weight >= self.batch_weight {
            self.flush()?;
        }
        Ok(())
    }

    /// Run the phases of the current batch (see the module doc).
    fn flush(&mut self) -> Result<()> {
        let Batch { files, wants, links, dirs, .. } = std::mem::take(&mut self.batch);
        let report = &self.report;
        let p = report.progress;

        // Data: packs with the most blobs first, for an even finish.
        let mut packs: Vec<(Id, Vec<Want>)> = wants.into_iter().collect();
        for (_, w) in &mut packs {
            w.sort_unstable_by_key(Want::order);
        }
        packs.sort_by_key(|(id, w)| (std::cmp::Reverse(w.len()), *id));
        let ctx = write::Ctx { repo: self.repo, files: &files, report };
        for_each_parallel(&packs, self.threads, |(pack, w)| {
            if !report.has_fatal() {
                ctx.write_pack(pack, w)
            }
        });
        report.check_fatal()?;

        // Files that needed no data.
        for_each_parallel(&files, self.threads, |job| {
            if job.wants == 0 && job.ok() && write::open_job(job, report).is_some() {
                p.files_done.fetch_add(1, Ordering::Relaxed);
            }
        });
        report.check_fatal()?;

        if self.opts.verify {
            for_each_parallel(&files, self.threads, |job| {
                if job.ok() && verify::verify_file(self.repo, job, report) {
                    self.verified.fetch_add(1, Ordering::Relaxed);
                }
            });
        }

        for (link, existing) in &links {
            match meta::make_hard_link(existing, link) {
                Ok(()) => {
                    self.files.fetch_add(1, Ordering::Relaxed);
                    p.files_done.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => report.io_error(link, &format!("linking to {}", existing.display()), e),
            }
        }

        for_each_parallel(&files, self.threads, |job| {
            if *job.state.lock().unwrap() != FileState::Created {
                return;
            }
            self.files.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(job.size, Ordering::Relaxed);
            if job.ok() {
                self.apply_meta(&job.path, &job.node);
            }
        });
        for (path, node) in &dirs {
            self.apply_meta(path, node);
        }
        report.check_fatal()
    }
}

/// Call `f` on every item from `threads` threads.
fn for_each_parallel<T: Sync>(items: &[T], threads: usize, f: impl Fn(&T) + Sync) {
    if threads <= 1 || items.len() <= 1 {
        items.iter().for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                f(item);
            });
        }
    });
}

#[cfg(test)]
mod tests;
