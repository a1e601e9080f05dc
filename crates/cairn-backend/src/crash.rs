//! Crash points for tests: a wrapper that ends the process, with no
//! cleanup, right after the n-th mutating operation of the run.
//!
//! The crash-safety claims (prune, backup, `repair`) are about what is left
//! when a process dies between two backend operations. A kill at a
//! wall-clock delay lands wherever the scheduler puts it; this wrapper
//! lands exactly after operation n, so a test can try every boundary of a
//! command, one fresh copy of the repository per boundary.
//!
//! Mutating operations are `create`, `write`, `remove`, the commit of a
//! streamed data file and `remove_stale_temporaries`; each one that returns
//! (successfully or not) is counted, across every backend of the process,
//! and reported on stderr as `crash point N: write index/NAME` and the like. When N reaches
//! the limit, the process ends at once with [`CRASH_EXIT_CODE`]
//! (`_exit`: no destructor, no flush, no other thread runs on). A run
//! that ends before the limit has reported how many points it has.
//!
//! Only debug builds install it (`cairn-location` reads
//! `CAIRN_TEST_CRASH_AFTER`); release builds never see the variable.

use crate::{Backend, DataWriter, FileInfo, FileKind, Hint, Result};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The exit status of a process ended at a crash point.
pub const CRASH_EXIT_CODE: i32 = 97;

/// Mutating operations done so far by this process, over every backend.
static DONE: AtomicU64 = AtomicU64::new(0);

pub struct CrashPointBackend {
    inner: Arc<dyn Backend>,
    after: u64,
}

impl CrashPointBackend {
    /// Wrap `inner`; the process ends after the `after`-th mutating
    /// operation (counted over every wrapper in the process).
    pub fn new(inner: Arc<dyn Backend>, after: u64) -> Self {
        CrashPointBackend { inner, after }
    }
}

/// Count one finished mutating operation, report it, and end the process
/// if it was the last one allowed.
fn point(after: u64, what: std::fmt::Arguments<'_>) {
    let n = DONE.fetch_add(1, Ordering::SeqCst) + 1;
    let line = format!("crash point {n}: {what}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if n >= after {
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("crashing after point {n} (CAIRN_TEST_CRASH_AFTER)\n").as_bytes());
        // SAFETY: _exit has no preconditions; it ends the process at once.
        unsafe { libc::_exit(CRASH_EXIT_CODE) }
    }
}

impl Backend for CrashPointBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<()> {
        let r = self.inner.create();
        point(self.after, format_args!("create"));
        r
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.inner.list(kind)
    }
    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.stat(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, offset, length)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let r = self.inner.write(kind, name, data);
        point(self.after, format_args!("write {kind}/{name}"));
        r
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let r = self.inner.remove(kind, name);
        point(self.after, format_args!("remove {kind}/{name}"));
        r
    }
    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }
    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        Ok(self.inner.data_writer()?.map(|w| {
            Box::new(CrashPointWriter {
                inner: w,
                after: self.after,
            }) as Box<dyn DataWriter>
        }))
    }
    fn remove_stale_temporaries(&self, older_than: std::time::Duration) -> Result<usize> {
        let r = self.inner.remove_stale_temporaries(older_than);
        point(self.after, format_args!("remove stale temporaries"));
        r
    }
    fn hint(&self, hint: &Hint<'_>) {
        self.inner.hint(hint)
    }
}

struct CrashPointWriter {
    inner: Box<dyn DataWriter>,
    after: u64,
}

impl DataWriter for CrashPointWriter {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.inner.write_all(buf)
    }
    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        let after = self.after;
        let r = self.inner.commit(name);
        point(after, format_args!("write data/{name}"));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    /// Every operation passes through unchanged while the limit is not
    /// reached (the crash itself is tested end to end, in a child process).
    #[test]
    fn conformance() {
        crate::conformance::run(&CrashPointBackend::new(
            Arc::new(MemoryBackend::new()),
            u64::MAX,
        ));
    }
}
