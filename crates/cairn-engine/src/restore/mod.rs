//! Restoring a snapshot (or one of its subtrees) into a directory.
//!
//! The snapshot's trees are walked one directory at a time
//! ([`crate::tree_walk`]) and cut into batches of about [`BATCH_WEIGHT`]
//! blobs' worth of entries, so memory stays bounded whatever the snapshot's
//! size. Each batch goes through these phases:
//!
//! 1. While walking ([`restorer`]): directories, symlinks, fifos and devices are created at
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
//! `dry_run` takes every decision (what is restored, skipped, deleted) and
//! counts it, but creates, writes and removes nothing. `delete` removes,
//! when a directory is left, the entries of its target that the
//! snapshot's directory does not name.
//!
//! The target is never followed through a symlink: whatever is at a path
//! to restore is removed first (see [`meta`]). Node names are checked by the
//! tree walker, so no entry lands outside the target.

mod meta;
mod report;
mod restorer;
mod verify;
mod write;

use crate::pattern::PatternSet;
use crate::tree_walk;
use crate::{Error, Result};
use cairn_repository::format::tree::Node;
use cairn_repository::format::Id;
use cairn_repository::Repository;
use report::Report;
use restorer::{Restorer, Shared};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// A batch holds about this many blobs' worth of entries (a file weighs
/// 1 + its blob count, anything else 1).
pub const BATCH_WEIGHT: usize = 10_000;
/// At most this many errors (and as many warnings) are kept with their
/// messages; the rest are counted in [`RestoreSummary::omitted`].
pub const MAX_REPORTED: usize = 10_000;

/// What to do with an entry that already exists in the target (restic's
/// `--overwrite`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it (restic's default).
    #[default]
    Always,
    /// A regular file with the snapshot's size and mtime is taken as up to
    /// date: its contents are not written, its metadata is restored (and
    /// it counts as skipped). Anything else is replaced.
    IfChanged,
    /// Replace it only if the snapshot's entry has a newer mtime; else
    /// leave it alone (skipped).
    IfNewer,
    /// Leave it alone and count it as skipped. Existing directories are
    /// still restored into, but keep their metadata.
    Never,
}

impl Overwrite {
    /// restic's names: `always`, `if-changed`, `if-newer`, `never`.
    pub fn parse(s: &str) -> Result<Overwrite> {
        Ok(match s {
            "always" => Overwrite::Always,
            "if-changed" => Overwrite::IfChanged,
            "if-newer" => Overwrite::IfNewer,
            "never" => Overwrite::Never,
            _ => {
                return Err(Error::invalid(format!(
                    "invalid --overwrite {s:?}: use always, if-changed, if-newer or never"
                )))
            }
        })
    }
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
    /// Decide and count everything, write nothing (the target is not even created).
    pub dry_run: bool,
    /// Remove what the target holds that the snapshot does not, in every
    /// directory restored into (only paths the include/exclude patterns
    /// select), as restic's `--delete`.
    pub delete: bool,
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
            dry_run: false,
            delete: false,
        }
    }

    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
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
    /// Entries removed from the target (`delete`; a directory counts once).
    pub deleted: u64,
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
pub fn restore(
    repo: &Repository,
    tree: Id,
    opts: &RestoreOptions,
    progress: &RestoreProgress,
) -> Result<RestoreSummary> {
    restore_batched(repo, tree, opts, progress, BATCH_WEIGHT)
}
fn restore_batched(
    repo: &Repository,
    tree: Id,
    opts: &RestoreOptions,
    progress: &RestoreProgress,
    batch_weight: usize,
) -> Result<RestoreSummary> {
    if !opts.dry_run {
        std::fs::create_dir_all(&opts.target).map_err(|e| {
            Error::io(
                e,
                format!("creating target directory {}", opts.target.display()),
            )
        })?;
    }
    let tree_path = tree_walk::normalize(&opts.tree_path);
    let shared = Shared::new(repo, opts, progress);
    // The walk plans batch n+1 while a second thread writes batch n.
    let walked = std::thread::scope(|s| {
        let (tx, rx) = crossbeam_channel::bounded::<restorer::Batch>(0);
        let runner = s.spawn(|| -> Result<()> {
            for batch in rx {
                shared.run_batch(batch)?;
            }
            Ok(())
        });
        let mut r = Restorer::new(&shared, tree_path.clone(), batch_weight, Some(tx));
        let walked = tree_walk::walk(repo, tree, &tree_path, &mut r).and_then(|_| r.finish());
        let ran = runner
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        // A batch's fatal error is the cause of whatever stopped the walk.
        ran.and(walked)
    })?;
    Ok(shared.finish(walked))
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
    /// Its metadata was applied by the data worker that finished it.
    pub meta_done: AtomicBool,
    /// It was created with its final permission bits.
    pub mode_set: AtomicBool,
}

impl FileJob {
    /// Mark the file failed; only its first error is reported.
    pub fn fail(&self, report: &Report<'_>, msg: &str) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            report.error(&self.path, msg);
        }
    }

    fn ok(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
