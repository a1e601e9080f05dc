//! `--max-size`: one quota over everything under the root (all
//! repositories together), as rest-server counts it.
//!
//! The usage is tallied once at start-up, then kept up to date: an upload
//! reserves its declared Content-Length before any byte is written (507 if
//! that would pass the limit), reserves more as undeclared bytes arrive, and
//! gives back what it did not keep; a delete gives back the file's size.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Quota {
    max: u64,
    used: AtomicU64,
}

impl Quota {
    /// Tally the bytes of every file under `root`.
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

    /// Take `n` bytes of the quota, or refuse if they do not fit.
    pub fn reserve(&self, n: u64) -> bool {
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
        if ft.is_dir() {
            total += tree_size(&entry.path())?;
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
        let q = super::Quota::tally(dir.path(), 150).unwrap();
        assert_eq!(q.used(), 100);
        assert!(q.reserve(50));
        assert!(!q.reserve(1));
        q.release(30);
        assert!(q.reserve(30));
        assert_eq!(q.used(), 150);
    }
}
