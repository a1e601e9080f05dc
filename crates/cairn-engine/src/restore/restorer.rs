//! The restorer proper: a tree visitor that creates entries and plans
//! files into batches, and runs each batch's phases (see the parent module).

use super::write::{self, Want};
use super::{
    meta, verify, FileJob, FileState, Overwrite, Report, RestoreOptions, RestoreProgress,
    RestoreSummary,
};
use crate::tree_walk::{Visit, Visitor};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use cairn_repository::Repository;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// At most this many hard-linked inodes are remembered at once; beyond it,
/// further links restore as independent copies.
const MAX_HARDLINKS: usize = 100_000;

#[derive(Default)]
pub(super) struct Batch {
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
    /// The names of its entries in the snapshot (kept for `delete`).
    names: HashSet<Vec<u8>>,
}

/// What to do with one non-directory entry, given what the target holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Restore,
    /// Up to date (`IfChanged`): restore its metadata only.
    MetaOnly,
    Skip,
}

/// What the walk and the batch runner share.
pub(super) struct Shared<'a> {
    repo: &'a Repository,
    opts: &'a RestoreOptions,
    report: Report<'a>,
    threads: usize,
    as_root: bool,
    files: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
}

/// The walk: creates directories and other non-file entries at once and
/// plans regular files into batches, which it hands to `out` (a thread
/// running [`Shared::run_batch`]) so that the next batch is planned while
/// the previous one is written.
pub(super) struct Restorer<'s, 'a> {
    sh: &'s Shared<'a>,
    tree_path: PathBuf,
    batch_weight: usize,
    /// Ids of all-zero blobs of the chunker's usual sizes: never read.
    zero_ids: HashSet<Id>,
    batch: Batch,
    out: Option<crossbeam_channel::Sender<Batch>>,
    stack: Vec<DirFrame>,
    /// (device, inode) → (first path restored, links still to come).
    links: HashMap<(u64, u64), (PathBuf, u64)>,
    dirs: u64,
    skipped: u64,
    deleted: u64,
    /// The names of the restored tree's own entries (for `delete`).
    root_names: HashSet<Vec<u8>>,
}

impl Visitor for Restorer<'_, '_> {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        if self.sh.report.has_fatal() {
            self.sh.report.check_fatal()?;
        }
        if self.sh.opts.delete {
            let name = node.name.as_bytes().to_vec();
            match self.stack.last_mut() {
                Some(f) => f.names.insert(name),
                None => self.root_names.insert(name),
            };
        }
        if self.sh.opts.exclude.matches(path) {
            return Ok(Visit::SkipChildren);
        }
        if self.stack.last().is_some_and(|f| f.failed) {
            return Ok(Visit::SkipChildren);
        }
        let included = self.sh.opts.include.is_empty() || self.sh.opts.include.matches(path);
        let target = self.target_of(path);
        if node.kind == NodeKind::Dir {
            if included {
                if !self.ensure_parents() {
                    return Ok(Visit::SkipChildren);
                }
                let replace = self.replaces();
                if !replace && std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    self.skipped += 1;
                    return Ok(Visit::SkipChildren);
                }
                if self.sh.opts.dry_run {
                    self.dirs += 1;
                    self.stack.push(DirFrame {
                        target,
                        exists: true,
                        failed: false,
                        restore_meta: false,
                        names: HashSet::new(),
                    });
                    return Ok(Visit::Continue);
                }
                match meta::make_dir(&target, replace) {
                    Ok(created) => {
                        self.dirs += 1;
                        let restore_meta = created || self.sh.opts.overwrite != Overwrite::Never;
                        self.stack.push(DirFrame {
                            target,
                            exists: true,
                            failed: false,
                            restore_meta,
                            names: HashSet::new(),
                        });
                    }
                    Err(e) => {
                        self.sh.report.io_error(&target, "creating directory", e);
                        return Ok(Visit::SkipChildren);
                    }
                }
            } else if self.sh.opts.include.may_match_below(path) {
                // Created only if something below is restored.
                self.stack.push(DirFrame {
                    target,
                    exists: false,
                    failed: false,
                    restore_meta: !self.sh.opts.dry_run,
                    names: HashSet::new(),
                });
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

    fn leave_dir(&mut self, path: &Path, node: &Node) -> Result<()> {
        let frame = self
            .stack
            .pop()
            .expect("leave_dir matches a visited directory");
        if self.sh.opts.delete && !frame.failed {
            self.delete_unexpected(&frame.target, path, &frame.names);
        }
        if frame.exists && !frame.failed && frame.restore_meta {
            self.batch.dirs.push((frame.target, node.clone()));
            self.batch.weight += 1;
            self.maybe_flush()?;
        }
        Ok(())
    }

    fn error(&mut self, path: &Path, err: Error) -> Result<()> {
        let target = self.target_of(path);
        self.sh.report.error(&target, err.message);
        Ok(())
    }
}

impl<'a> Shared<'a> {
    pub fn new(
        repo: &'a Repository,
        opts: &'a RestoreOptions,
        progress: &'a RestoreProgress,
    ) -> Self {
        Shared {
            repo,
            opts,
            report: Report::new(progress),
            threads: opts.thread_count(),
            as_root: meta::is_root(),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            verified: AtomicU64::new(0),
        }
    }

    /// The summary, given the walk's own counts.
    pub fn finish(self, walked: WalkCounts) -> RestoreSummary {
        let (errors, warnings, omitted) = self.report.into_lists();
        RestoreSummary {
            files: self.files.into_inner(),
            dirs: walked.dirs,
            bytes: self.bytes.into_inner(),
            skipped: walked.skipped,
            verified: self.verified.into_inner(),
            deleted: walked.deleted,
            errors,
            warnings,
            omitted,
        }
    }

    /// Stop the walk: a batch failed fatally.
    pub fn fatal(&self) -> Result<()> {
        self.report.check_fatal()
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
}

/// Counts only the walk keeps.
pub(super) struct WalkCounts {
    dirs: u64,
    skipped: u64,
    deleted: u64,
}

impl<'s, 'a> Restorer<'s, 'a> {
    pub fn new(
        sh: &'s Shared<'a>,
        tree_path: PathBuf,
        batch_weight: usize,
        out: Option<crossbeam_channel::Sender<Batch>>,
    ) -> Self {
        let chunker = sh.repo.config().chunker;
        let zero_ids = [chunker.min_size, chunker.avg_size, chunker.max_size]
            .iter()
            .map(|&n| sh.repo.blob_id(&vec![0u8; n as usize]))
            .collect();
        Restorer {
            sh,
            tree_path,
            batch_weight,
            zero_ids,
            batch: Batch::default(),
            out,
            stack: Vec::new(),
            links: HashMap::new(),
            dirs: 0,
            skipped: 0,
            deleted: 0,
            root_names: HashSet::new(),
        }
    }

    /// Hand over the last batch and close the channel; the walk's counts.
    pub fn finish(mut self) -> Result<WalkCounts> {
        if self.sh.opts.delete {
            let names = std::mem::take(&mut self.root_names);
            let (target, tree_path) = (self.sh.opts.target.clone(), self.tree_path.clone());
            self.delete_unexpected(&target, &tree_path, &names);
        }
        self.flush()?;
        Ok(WalkCounts {
            dirs: self.dirs,
            skipped: self.skipped,
            deleted: self.deleted,
        })
    }

    /// Existing non-directories in the way of a directory are replaced.
    fn replaces(&self) -> bool {
        matches!(
            self.sh.opts.overwrite,
            Overwrite::Always | Overwrite::IfChanged
        )
    }

    /// What to do with the entry `node` at `target`, by `--overwrite`.
    fn decide(&self, target: &Path, node: &Node) -> Decision {
        use std::os::unix::fs::MetadataExt;
        // Whatever is there is replaced: no need to look (a file system
        // call per entry saved; creating replaces, see `meta`).
        if self.sh.opts.overwrite == Overwrite::Always {
            return Decision::Restore;
        }
        let Ok(m) = std::fs::symlink_metadata(target) else {
            return Decision::Restore;
        };
        let mtime = m
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec());
        match self.sh.opts.overwrite {
            Overwrite::Always => Decision::Restore,
            Overwrite::Never => Decision::Skip,
            Overwrite::IfNewer if node.mtime > mtime => Decision::Restore,
            Overwrite::IfNewer => Decision::Skip,
            Overwrite::IfChanged
                if node.kind == NodeKind::File
                    && m.is_file()
                    && m.len() == node.size
                    && mtime == node.mtime =>
            {
                Decision::MetaOnly
            }
            Overwrite::IfChanged => Decision::Restore,
        }
    }

    /// `delete`: remove the entries of directory `target` (snapshot path
    /// `path`) whose names the snapshot's directory lacks, if the patterns
    /// select them for restoring. In a dry run they are only counted.
    fn delete_unexpected(&mut self, target: &Path, path: &Path, names: &HashSet<Vec<u8>>) {
        use std::os::unix::ffi::OsStrExt;
        let Ok(rd) = std::fs::read_dir(target) else {
            return;
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            if names.contains(name.as_bytes()) {
                continue;
            }
            let snap_path = path.join(&name);
            let opts = self.sh.opts;
            let selected = (opts.include.is_empty() || opts.include.matches(&snap_path))
                && !opts.exclude.matches(&snap_path);
            if !selected {
                continue;
            }
            let victim = entry.path();
            if !opts.dry_run {
                let removed = match std::fs::symlink_metadata(&victim) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&victim),
                    Ok(_) => std::fs::remove_file(&victim),
                    Err(e) => Err(e),
                };
                if let Err(e) = removed {
                    self.sh.report.io_error(&victim, "deleting", e);
                    continue;
                }
            }
            self.deleted += 1;
        }
    }

    fn target_of(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.tree_path) {
            Ok(rel) if rel.as_os_str().is_empty() => self.sh.opts.target.clone(),
            Ok(rel) => self.sh.opts.target.join(rel),
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
            if self.sh.opts.dry_run {
                f.exists = true;
                self.dirs += 1;
                continue;
            }
            let replace = matches!(
                self.sh.opts.overwrite,
                Overwrite::Always | Overwrite::IfChanged
            );
            match meta::make_dir(&f.target, replace) {
                Ok(created) => {
                    f.exists = true;
                    f.restore_meta = created || self.sh.opts.overwrite != Overwrite::Never;
                    self.dirs += 1;
                }
                Err(e) => {
                    let target = f.target.clone();
                    for f in &mut self.stack[i..] {
                        f.failed = true;
                    }
                    self.sh.report.io_error(&target, "creating directory", e);
                    return false;
                }
            }
        }
        true
    }

    /// Restore (or plan, for a regular file) one non-directory entry.
    fn restore_entry(&mut self, target: &Path, node: &Node) {
        let decision = self.decide(target, node);
        if decision != Decision::Restore || node.kind == NodeKind::Socket {
            self.skipped += 1;
            if decision == Decision::MetaOnly && !self.sh.opts.dry_run {
                self.sh.apply_meta(target, node);
            }
            return;
        }
        let p = self.sh.report.progress;
        if self.sh.opts.dry_run {
            p.files_total.fetch_add(1, Ordering::Relaxed);
            self.sh.files.fetch_add(1, Ordering::Relaxed);
            if node.kind == NodeKind::File {
                self.sh.bytes.fetch_add(node.size, Ordering::Relaxed);
                p.bytes_total.fetch_add(node.size, Ordering::Relaxed);
            }
            return;
        }
        let made = match node.kind {
            NodeKind::File => return self.plan_file(target, node),
            NodeKind::Dir => unreachable!("directories are handled by visit"),
            NodeKind::Socket => {
                self.skipped += 1;
                return;
            }
            NodeKind::Symlink => match &node.linktarget {
                Some(t) => meta::make_symlink(target, t.as_bytes()),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "symlink without a target in the snapshot",
                )),
            },
            NodeKind::Fifo => meta::make_fifo(target),
            NodeKind::Dev | NodeKind::Chardev if !self.sh.as_root => {
                p.files_total.fetch_add(1, Ordering::Relaxed);
                self.sh.report.error(
                    target,
                    "device node not restored: creating devices needs root",
                );
                return;
            }
            NodeKind::Dev | NodeKind::Chardev => meta::make_device(target, node),
        };
        p.files_total.fetch_add(1, Ordering::Relaxed);
        match made {
            Ok(()) => {
                self.sh.apply_meta(target, node);
                self.sh.files.fetch_add(1, Ordering::Relaxed);
                p.files_done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.sh
                    .report
                    .io_error(target, &format!("creating {}", node.kind.as_str()), e)
            }
        }
        self.batch.weight += 1;
    }

    fn plan_file(&mut self, target: &Path, node: &Node) {
        let p = self.sh.report.progress;
        p.files_total.fetch_add(1, Ordering::Relaxed);
        let link_key = (node.links > 1 && (node.inode != 0 || node.device != 0))
            .then_some((node.device, node.inode));
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
            let index = self.sh.repo.index();
            for id in &node.content {
                let Some(loc) = index.get(id) else {
                    drop(index);
                    self.sh.report.error(
                        target,
                        format!("data blob {} is not in the repository index (data lost? run `cairn check`); file not restored", id.short()),
                    );
                    return;
                };
                if self.zero_ids.contains(id) {
                    zero_bytes += loc.raw_length as u64;
                } else {
                    let w = Want {
                        offset: loc.offset,
                        length: loc.length,
                        raw_length: loc.raw_length,
                        blob: *id,
                        file,
                        file_offset: size,
                    };
                    wants.push((loc.pack, w));
                }
                size += loc.raw_length as u64;
            }
        }
        if let Some(key) = link_key {
            if self.links.len() < MAX_HARDLINKS {
                self.links
                    .insert(key, (target.to_path_buf(), node.links - 1));
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
            meta_done: AtomicBool::new(false),
            mode_set: AtomicBool::new(false),
        });
        self.batch.weight += 1 + node.content.len();
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.batch.weight >= self.batch_weight {
            self.flush()?;
        }
        Ok(())
    }

    /// Hand the current batch to the batch runner (or run it here).
    pub fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        match &self.out {
            None => self.sh.run_batch(batch),
            Some(out) => match out.send(batch) {
                Ok(()) => self.sh.fatal(),
                // The runner stopped: a fatal error it recorded.
                Err(_) => self
                    .sh
                    .fatal()
                    .and(Err(Error::new(crate::Kind::Io, "restore stopped"))),
            },
        }
    }
}

impl Shared<'_> {
    /// Run the phases of a batch (see the module doc).
    pub fn run_batch(&self, batch: Batch) -> Result<()> {
        let Batch {
            files,
            wants,
            links,
            dirs,
            ..
        } = batch;
        let report = &self.report;
        let p = report.progress;

        // Data: packs with the most blobs first, for an even finish.
        let mut packs: Vec<(Id, Vec<Want>)> = wants.into_iter().collect();
        for (_, w) in &mut packs {
            w.sort_unstable_by_key(Want::order);
        }
        // In the order of the files they hold, taken from both ends (see
        // `for_each_parallel`): the workers write different files, instead
        // of queueing on one large file's inode lock.
        packs.sort_by_key(|(id, w)| (w.iter().map(|x| (x.file, x.file_offset)).min(), *id));
        let finish_files = !self.opts.verify;
        let ctx = write::Ctx {
            repo: self.repo,
            files: &files,
            report,
            finish_files,
            as_root: self.as_root,
        };
        // A pack of many small blobs (a few thousand files in one pack) is
        // cut into pieces, so that every worker has some of it: one worker
        // per pack left the others idle on a tree of small files.
        let mut pieces: Vec<(&Id, &[Want])> = Vec::with_capacity(packs.len());
        for (pack, w) in &packs {
            let mut rest = &w[..];
            while rest.len() > PIECE_WANTS {
                // Cut between two blobs, not inside one blob's run of wants.
                let mut cut = PIECE_WANTS;
                while cut < rest.len() && rest[cut].offset == rest[cut - 1].offset {
                    cut += 1;
                }
                let (head, tail) = rest.split_at(cut);
                pieces.push((pack, head));
                rest = tail;
            }
            if !rest.is_empty() {
                pieces.push((pack, rest));
            }
        }
        for_each_parallel(&pieces, self.threads, |(pack, w)| {
            if !report.has_fatal() {
                ctx.write_pack(pack, w)
            }
        });
        report.check_fatal()?;

        // Files that needed no data.
        for_each_parallel(&files, self.threads, |job| {
            if job.wants == 0 && job.ok() {
                if let Some(f) = write::open_job(job, report, false) {
                    p.files_done.fetch_add(1, Ordering::Relaxed);
                    if finish_files {
                        write::finish_file(&f, job, self.as_root, report);
                    }
                }
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

        // A file that failed is removed below, not left in place at full
        // size with zero-filled ranges; links to it are not made.
        let failed: HashSet<&Path> = files
            .iter()
            .filter(|job| !job.ok() && *job.state.lock().unwrap() == FileState::Created)
            .map(|job| job.path.as_path())
            .collect();
        for (link, existing) in &links {
            if failed.contains(existing.as_path()) {
                report.error(link, format!("not linked: {} failed", existing.display()));
                continue;
            }
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
            if !job.ok() {
                // Its error is reported; what was written of it is wrong.
                if let Err(e) = std::fs::remove_file(&job.path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        report.io_error(&job.path, "removing the failed file", e);
                    }
                }
                return;
            }
            self.files.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(job.size, Ordering::Relaxed);
            if !job.meta_done.load(Ordering::Relaxed) {
                self.apply_meta(&job.path, &job.node);
            }
        });
        for (path, node) in &dirs {
            self.apply_meta(path, node);
        }
        report.check_fatal()
    }
}

/// Call `f` on every item from `threads` threads, half of them working
/// forwards from the start and half backwards from the end.
/// Wants of one pack handled by one worker at a time, at most (see
/// `run_batch`).
const PIECE_WANTS: usize = 256;

fn for_each_parallel<T: Sync>(items: &[T], threads: usize, f: impl Fn(&T) + Sync) {
    if threads <= 1 || items.len() <= 1 {
        items.iter().for_each(f);
        return;
    }
    // Items [front, back) are left.
    let ends = Mutex::new((0usize, items.len()));
    let take = |forwards: bool| {
        let mut e = ends.lock().unwrap();
        if e.0 >= e.1 {
            return None;
        }
        if forwards {
            e.0 += 1;
            Some(e.0 - 1)
        } else {
            e.1 -= 1;
            Some(e.1)
        }
    };
    std::thread::scope(|s| {
        for t in 0..threads.min(items.len()) {
            let (take, f) = (&take, &f);
            s.spawn(move || {
                while let Some(i) = take(t % 2 == 0) {
                    f(&items[i]);
                }
            });
        }
    });
}
