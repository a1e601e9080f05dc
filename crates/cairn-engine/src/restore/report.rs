//! Errors and warnings of a restore, collected from all its threads.

use super::{RestoreProgress, MAX_REPORTED};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// (target path, message) pairs.
type Entries = Vec<(PathBuf, String)>;

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
    pub(super) fn new(progress: &'a RestoreProgress) -> Self {
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
        if cairn_repository::backend::is_disk_full(&e) {
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

    pub(super) fn check_fatal(&self) -> Result<()> {
        match self.fatal.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn into_lists(self) -> (Entries, Entries, u64) {
        (
            self.errors.into_inner().unwrap(),
            self.warnings.into_inner().unwrap(),
            self.omitted.into_inner(),
        )
    }
}
