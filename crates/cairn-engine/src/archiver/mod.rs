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
//! mtime, ctime and inode, all blobs present) are not read again.
//!
//! A snapshot is written only after the saver has stored every pack and
//! index file: an interrupted backup leaves no snapshot, and the data it
//! stored is reused by the next run.

mod files;
pub mod filter;
mod fsnode;
mod scan;
mod walker;

pub use filter::Filters;
pub use fsnode::NameCache;

use crate::{Error, Kind, Result};
use cairn_repository::format::snapshot::{Snapshot, SnapshotSummary};
use cairn_repository::format::Id;
use cairn_repository::{BlobSaver, Repository, SaverOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Called for each file or directory that could not be read (path, message).
pub type ErrorSink = Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// What to back up.
pub enum Source {
    Paths(Vec<PathBuf>),
    /// A stream stored as one file `/<name>` (e.g. a database dump).
    Stream {
        name: String,
        reader: Box<dyn Read + Send>,
    },
}

pub struct BackupOptions {
    pub filters: Filters,
    pub parent: Option<Id>,
    pub hostname: String,
    pub username: String,
    pub tags: Vec<String>,
    /// Threads reading files (the saver has its own sealing threads).
    pub readers: usize,
    pub saver: SaverOptions,
    /// Walk the source first to count files and bytes (for an ETA).
    pub scan: bool,
    pub on_error: Option<ErrorSink>,
    /// Set from another thread (Ctrl-C) to stop early: no snapshot is written.
    pub cancel: Arc<AtomicBool>,
    /// Checked before the snapshot is written; `Err` means no snapshot (e.g. a
    /// `--stdin-from-command` that exited non-zero).
    pub before_snapshot: Option<Box<dyn FnOnce() -> Result<()> + Send + Sync>>,
    /// The snapshot time; now when `None`.
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            filters: Filters::default(),
            parent: None,
            hostname: String::new(),
            username: String::new(),
            tags: vec![],
            readers: 2,
            saver: SaverOptions::default(),
            scan: false,
            on_error: None,
            cancel: Arc::new(AtomicBool::new(false)),
            before_snapshot: None,
            time: None,
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
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
    /// Files and directories that could not be read: the snapshot is incomplete.
    pub errors: u64,
    pub packs: u64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Clean an absolute path lexically (`.`, `..`, duplicate slashes), without
/// resolving symlinks, as restic does.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(e, "reading the current directory"))?
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// Run a backup and write its snapshot.
pub fn backup(
    repo: Arc<Repository>,
    source: Source,
    mut opts: BackupOptions,
    progress: Arc<BackupProgress>,
) -> Result<BackupResult> {
    let start = chrono::Local::now().fixed_offset();
    // Packs from an interrupted earlier run: index them so their data is not uploaded again.
    repo.recover_unindexed_packs()?;

    let parent_tree = match opts.parent {
        Some(id) => Some(repo.load_snapshot(&id)?.tree),
        None => None,
    };
    let saver = BlobSaver::new(repo.clone(), opts.saver.clone());
    let counters = Counters::default();
    let (tree, paths, errors) = match source {
        Source::Paths(paths) => {
            let mut abs = Vec::new();
            for p in &paths {
                let a = absolute(p)?;
                if let Err(e) = a.symlink_metadata() {
                    return Err(Error::io(e, format!("backup path {}", p.display())));
                }
                abs.push(a);
            }
            abs.sort();
            abs.dedup();
            if opts.scan {
                scan::start(
                    walker::clean_targets(&abs),
                    opts.filters.clone(),
                    progress.clone(),
                    opts.cancel.clone(),
                );
            }
            let w = walker::Walker::new(&repo, &saver, &opts, &progress, &counters);
            let (tree, errors) = w.run(&abs, parent_tree)?;
            (
                tree,
                abs.iter().map(|p| p.display().to_string()).collect(),
                errors,
            )
        }
        Source::Stream { name, reader } => {
            if name.is_empty() || name.contains('/') {
                return Err(Error::usage(format!(
                    "invalid --stdin-filename {name:?}: a file name without '/' is needed"
                )));
            }
            let tree = files::backup_stream(
                &repo,
                &saver,
                &name,
                reader,
                &progress,
                &counters,
                parent_tree,
                &opts.cancel,
            )
            .map_err(|e| {
                if opts.cancel.load(Ordering::Relaxed) {
                    Error::new(Kind::Interrupted, "backup interrupted; no snapshot was written (data stored so far will be reused)")
                } else {
                    e
                }
            })?;
            (tree, vec![format!("/{name}")], 0)
        }
    };
    if opts.cancel.load(Ordering::Relaxed) {
        drop(saver);
        return Err(Error::new(
            Kind::Interrupted,
            "backup interrupted; no snapshot was written (data stored so far will be reused)",
        ));
    }
    let stats = saver.finish()?;
    if let Some(check) = opts.before_snapshot.take() {
        check()?;
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
    };
    let snapshot = Snapshot {
        version: cairn_repository::format::snapshot::SNAPSHOT_VERSION,
        time: opts.time.unwrap_or(start),
        tree,
        paths,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        // SAFETY: getuid/getgid cannot fail.
        uid: unsafe { libc::getuid() },
        gid: unsafe { libc::getgid() },
        tags: opts.tags.clone(),
        excludes: opts.filters.summary(),
        parent: opts.parent,
        original: None,
        program_version: format!("cairn {}", env!("CARGO_PKG_VERSION")),
        summary: Some(summary),
    };
    let snapshot_id = repo.save_snapshot(&snapshot)?;
    Ok(BackupResult {
        snapshot_id,
        snapshot,
        errors,
        packs: stats.packs,
    })
}
