//! `--max-size`: one quota over everything under the root (all
//! repositories together), as rest-server counts it.
//!
//! The usage is tallied once at start-up, then kept up to date: an upload
//! reserves its declared Content-Length before any byte is written (507 if
//! that would pass the limit), reserves more as undeclared bytes arrive, and
//! gives back what it did not keep; a delete gives back the size of the file
//! it removed itself (of concurrent deletes of one file, only one does).
//!
//! A directory counts [`DIR_COST`] bytes (a file system block), at start-up
//! and when a request makes one (creating a repository makes 262): without
//! that, creating repositories would fill the disk past any quota.
//!
//! Temporary files (`.tmp-` names) never count at start-up: those of the
//! server (`.tmp-serve-`) are left by a crash and are removed; others belong
//! to a local cairn writing to the same directory, which removes its own.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a directory counts against the quota.
pub const DIR_COST: u64 = 4096;

/// Name prefix of the server's temporary files.
pub const TMP_PREFIX: &str = ".tmp-serve-";

pub struct Quota {
    max: u64,
    used: AtomicU64,
}

impl Quota {
    /// Tally the bytes of every file and directory under `root`, removing
    /// the server's stale temporary files.
    pub fn tally(root: &Path, max: u64) -> std::io::Result<Quota> {
        Ok(Quota {
            max,
            used: AtomicU64::new(tree_size(root)?),
        })
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Take `n` bytes of the quota, or refuse if they do not fit (nothing
    /// always fits, even past the limit).
    pub fn reserve(&self, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                u.checked_add(n).filter(|&t| t <= self.max)
            })
            .is_ok()
    }

    /// Give `n` bytes back.
    pub fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

fn tree_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let ft = entry.file_type()?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if ft.is_dir() {
            total += DIR_COST + tree_size(&entry.path())?;
        } else if name.starts_with(TMP_PREFIX.as_bytes()) {
            let _ = std::fs::remove_file(entry.path());
        } else if name.starts_with(b".tmp-") {
            continue;
        } else if ft.is_file() {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserve_and_release() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), [0u8; 100]).unwrap();
        let dirs = 2 * super::DIR_COST;
        let q = super::Quota::tally(dir.path(), dirs + 150).unwrap();
        assert_eq!(q.used(), dirs + 100);
        assert!(q.reserve(50));
        assert!(!q.reserve(1));
        q.release(30);
        assert!(q.reserve(30));
        assert_eq!(q.used(), dirs + 150);
        let past = super::Quota::tally(dir.path(), 10).unwrap();
        assert!(past.reserve(0), "nothing fits even past the limit");
        assert!(!past.reserve(1));
    }

    #[test]
    fn temporary_files_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("r/data/ab")).unwrap();
        let ours = dir.path().join("r/data/ab/.tmp-serve-abc-0123");
        let theirs = dir.path().join("r/data/.tmp-pack-0123");
        std::fs::write(&ours, [0u8; 5000]).unwrap();
        std::fs::write(&theirs, [0u8; 7000]).unwrap();
        std::fs::write(dir.path().join("r/config"), [0u8; 10]).unwrap();
        let q = super::Quota::tally(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.used(), 3 * super::DIR_COST + 10);
        assert!(!ours.exists(), "the server's leftovers are removed");
        assert!(
            theirs.exists(),
            "another writer's temporary file is left alone"
        );
    }
}
