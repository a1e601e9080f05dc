//! The archiver: turns paths (or a stream) into a snapshot.
//!
//! Threads and channels (all bounded, so memory is bounded):
//! ```text
//! walker ──FileJob──▶ file readers (read, chunk, hash) ──blobs──▶ BlobSaver
//!    │                      │ content ids (one-shot replies)
//!    └──DirJob (post-order)─┴──▶ tree finisher (assemble, save tree blobs)
//! ```
//! The walker visits directories depth-first in name order and sends each
//! directory's listing to the finisher *after* its subdirectories, so the
//! finisher, handling jobs in order, always has a subdirectory's tree id
//! before it needs it. Files unchanged since the parent snapshot (same size,
//! mtime, ctime and inode, all blobs present; `ignore_ctime` and
//! `ignore_inode` drop those two) are not read again. Access times are
//! recorded only with `with_atime`, so an unchanged tree gives the same
//! tree blobs however often its files are read; with `skip_if_unchanged`
//! a root tree equal to the parent's writes no snapshot.
//!
//! A snapshot is written only after the saver has stored every pack and
//! index file: an interrupted backup leaves no snapshot, and the data it
//! stored is reused by the next run.
//!
//! [`backup`] makes every decision of a backup, once: which snapshot is the
//! parent ([`ParentChoice`]), the parent's trees (loaded once, handed down
//! the walk), and the child process of a [`Source::command`]. Callers turn
//! their arguments into a [`Source`] and [`BackupOptions`] and print the
//! [`BackupResult`].

pub(crate) mod files;
pub mod filter;
mod fsnode;
mod oneshot;
mod parent;
mod scan;
mod source;
mod walker;

pub use filter::Filters;
pub use fsnode::NameCache;
pub use source::{absolute, Source};

use crate::{Error, Kind, Result};
use cairn_repository::format::snapshot::{Snapshot, SnapshotSummary};
use cairn_repository::format::tree::Tree;
use cairn_repository::format::Id;
use cairn_repository::{BlobSaver, Repository, SaverOptions};
use parent::ParentTrees;
use source::{Child, Input};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Called for each file or directory that could not be read (path, message).
pub type ErrorSink = Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// Called with each warning: something went wrong that does not make the
/// snapshot incomplete (e.g. a parent snapshot's tree that cannot be read).
pub type WarningSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What a backup did with a file, as `backup -v` lists it (restic's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// Not in the parent snapshot.
    New,
    /// In the parent snapshot, changed since: read again.
    Modified,
    /// Unchanged since the parent snapshot: not read.
    Unmodified,
}

/// Called for each file backed up, with what was done with it.
pub type FileSink = Arc<dyn Fn(&Path, FileChange) + Send + Sync>;

/// Which snapshot a backup compares with, to skip unchanged files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot with the backup's host name and paths.
    #[default]
    Latest,
    /// This snapshot: an id, a unique prefix of one, or `latest`.
    Snapshot(String),
    /// None: every file is read.
    NoParent,
}

pub struct BackupOptions {
    pub filters: Filters,
    pub parent: ParentChoice,
    /// Recorded in the snapshot, and used to choose the parent.
    pub hostname: String,
    pub username: String,
    pub tags: Vec<String>,
    /// Threads reading files (the saver has its own sealing threads).
    pub readers: usize,
    pub saver: SaverOptions,
    /// Walk the source first to count files and bytes (for an ETA).
    pub scan: bool,
    pub on_error: Option<ErrorSink>,
    pub on_warning: Option<WarningSink>,
    /// Told about each file (`backup -v`).
    pub on_file: Option<FileSink>,
    /// Set from another thread (Ctrl-C) to stop early: no snapshot is written.
    pub cancel: Arc<AtomicBool>,
    /// The snapshot time; now when `None`.
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Record files' access times (otherwise the atime field holds the mtime).
    pub with_atime: bool,
    /// A file whose ctime differs from the parent's is still unchanged.
    pub ignore_ctime: bool,
    /// A file whose inode differs from the parent's is still unchanged.
    pub ignore_inode: bool,
    /// Write no snapshot when the root tree equals the parent's.
    pub skip_if_unchanged: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            filters: Filters::default(),
            parent: ParentChoice::default(),
            hostname: String::new(),
            username: String::new(),
            tags: vec![],
            readers: 2,
            saver: SaverOptions::default(),
            scan: false,
            on_error: None,
            on_warning: None,
            on_file: None,
            cancel: Arc::new(AtomicBool::new(false)),
            time: None,
            with_atime: false,
            ignore_ctime: false,
            ignore_inode: false,
            skip_if_unchanged: false,
        }
    }
}

/// Live counters, read by the progress display from another thread.
#[derive(Default)]
pub struct BackupProgress {
    pub files_done: AtomicU64,
    pub dirs_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub scan_finished: AtomicBool,
    pub errors: AtomicU64,
    pub current: Mutex<String>,
}

#[derive(Default)]
pub(crate) struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs_new: AtomicU64,
    dirs_changed: AtomicU64,
    dirs_unmodified: AtomicU64,
}

pub struct BackupResult {
    /// The new snapshot's id; when `skipped`, the parent's.
    pub snapshot_id: Id,
    /// `skip_if_unchanged` and nothing changed: no snapshot was written.
    pub skipped: bool,
    pub snapshot: Snapshot,
    /// Files and directories that could not be read: the snapshot is incomplete.
    pub errors: u64,
    /// The warnings also given to [`BackupOptions::on_warning`].
    pub warnings: Vec<String>,
    pub packs: u64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Run a backup and write its snapshot. The repository's index must be
/// loaded.
pub fn backup(
    repo: Arc<Repository>,
    source: Source,
    opts: BackupOptions,
    progress: Arc<BackupProgress>,
) -> Result<BackupResult> {
    let start = chrono::Local::now().fixed_offset();
    // Packs from an interrupted earlier run: index them so their data is not uploaded again.
    repo.recover_unindexed_packs()?;

    let paths = source.snapshot_paths();
    let parent = parent::choose(&repo, &opts.parent, &opts.hostname, &paths)?;
    let parent_trees = ParentTrees::new(&repo, parent.as_ref(), opts.on_warning.as_ref());
    let saver = BlobSaver::new(repo.clone(), opts.saver.clone());
    let counters = Counters::default();
    let mut child = None;
    let (tree, errors) = match source.0 {
        Input::Paths(abs) => {
            if opts.scan {
                scan::start(
                    walker::clean_targets(&abs),
                    opts.filters.clone(),
                    progress.clone(),
                    opts.cancel.clone(),
                );
            }
            let w = walker::Walker::new(&saver, &opts, &progress, &counters, &parent_trees);
            w.run(&abs)?
        }
        Input::Stream { name, reader } => {
            let parent = parent_trees.root();
            let tree = stream(&saver, &name, reader, &opts, &progress, &counters, parent)?;
            (tree, 0)
        }
        Input::Command { name, argv } => {
            let (c, reader) = Child::start(&argv)?;
            child = Some(c);
            let parent = parent_trees.root();
            let tree = stream(&saver, &name, reader, &opts, &progress, &counters, parent)?;
            (tree, 0)
        }
    };
    if opts.cancel.load(Ordering::Relaxed) {
        drop(saver);
        return Err(interrupted());
    }
    let stats = saver.finish()?;
    // A command that failed means no snapshot, though its output is stored.
    if let Some(c) = child {
        c.finish()?;
    }
    let end = chrono::Local::now().fixed_offset();
    let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let summary = SnapshotSummary {
        backup_start: start,
        backup_end: end,
        files_new: ld(&counters.files_new),
        files_changed: ld(&counters.files_changed),
        files_unmodified: ld(&counters.files_unmodified),
        dirs_new: ld(&counters.dirs_new),
        dirs_changed: ld(&counters.dirs_changed),
        dirs_unmodified: ld(&counters.dirs_unmodified),
        data_blobs: stats.data_blobs,
        tree_blobs: stats.tree_blobs,
        data_added: stats.data_added,
        data_added_packed: stats.data_added_packed,
        total_files_processed: ld(&progress.files_done),
        total_bytes_processed: ld(&progress.bytes_done),
        errors,
    };
    let snapshot = Snapshot {
        version: cairn_repository::format::snapshot::SNAPSHOT_VERSION,
        time: opts.time.unwrap_or(start),
        tree,
        paths,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        tags: opts.tags.clone(),
        excludes: opts.filters.summary(),
        parent: parent.as_ref().map(|(id, _)| *id),
        original: None,
        program_version: format!("cairn {}", env!("CARGO_PKG_VERSION")),
        summary: Some(summary),
    };
    let unchanged = match &parent {
        Some((id, p)) if opts.skip_if_unchanged && p.tree == snapshot.tree => Some(*id),
        _ => None,
    };
    let snapshot_id = match unchanged {
        Some(id) => id,
        None => repo.save_snapshot(&snapshot)?,
    };
    Ok(BackupResult {
        snapshot_id,
        skipped: unchanged.is_some(),
        snapshot,
        errors,
        warnings: parent_trees.into_warnings(),
        packs: stats.packs,
    })
}

/// Back up one stream; an error while interrupted is the interruption.
fn stream(
    saver: &BlobSaver,
    name: &str,
    reader: Box<dyn std::io::Read + Send>,
    opts: &BackupOptions,
    progress: &BackupProgress,
    counters: &Counters,
    parent: Option<Tree>,
) -> Result<Id> {
    files::backup_stream(
        saver,
        name,
        reader,
        progress,
        counters,
        parent.as_ref(),
        &opts.cancel,
    )
    .map_err(|e| {
        if opts.cancel.load(Ordering::Relaxed) {
            interrupted()
        } else {
            e
        }
    })
}

fn interrupted() -> Error {
    Error::new(
        Kind::Interrupted,
        "backup interrupted; no snapshot was written (data stored so far will be reused)",
    )
}

#[cfg(test)]
mod tests;
