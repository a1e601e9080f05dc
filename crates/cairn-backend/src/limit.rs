//! Bandwidth limits as a wrapper: [`LimitBackend`] holds uploads and
//! downloads to a rate in bytes per second (`--limit-upload`,
//! `--limit-download`, given in KiB/s as restic's flags are).
//!
//! One token bucket per direction, shared by every thread using the
//! backend, so the limit is for the whole program, not per connection.
//! A transfer of `n` bytes is charged `n / rate` seconds on the bucket's
//! clock; the caller sleeps until the clock has caught up with real time,
//! less a burst allowance of a quarter of a second (so small requests are
//! not delayed one by one). Uploads are charged before they are sent,
//! downloads after they arrived (their size is known only then); both
//! average out to the rate over any span longer than a few requests.

use crate::{Backend, DataWriter, FileInfo, FileKind, Hint, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The burst a bucket allows before it starts to delay.
const BURST: Duration = Duration::from_millis(250);

/// A shared rate limit in bytes per second.
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_second: f64,
    /// The moment up to which all bytes granted so far are paid for.
    paid_until: Mutex<Instant>,
}

impl RateLimit {
    /// `bytes_per_second` must be positive.
    pub fn new(bytes_per_second: u64) -> RateLimit {
        RateLimit {
            bytes_per_second: bytes_per_second.max(1) as f64,
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// How long the caller must wait after moving `bytes` (and records them).
    fn charge(&self, bytes: usize) -> Duration {
        let now = Instant::now();
        let mut paid = self.paid_until.lock().unwrap_or_else(|p| p.into_inner());
        let floor = now.checked_sub(BURST).unwrap_or(now);
        if *paid < floor {
            *paid = floor;
        }
        *paid += Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        paid.saturating_duration_since(now + BURST)
    }

    /// Record `bytes` and sleep as long as the rate requires.
    pub fn take(&self, bytes: usize) {
        let wait = self.charge(bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A backend whose transfers are held to the given rates; `None` is no limit.
pub struct LimitBackend<B: Backend> {
    inner: B,
    upload: Option<Arc<RateLimit>>,
    download: Option<Arc<RateLimit>>,
}

impl<B: Backend> LimitBackend<B> {
    /// Rates in bytes per second.
    pub fn new(inner: B, upload: Option<u64>, download: Option<u64>) -> Self {
        LimitBackend {
            inner,
            upload: upload.map(|r| Arc::new(RateLimit::new(r))),
            download: download.map(|r| Arc::new(RateLimit::new(r))),
        }
    }

    fn up(&self, n: usize) {
        if let Some(l) = &self.upload {
            l.take(n);
        }
    }
}

impl<B: Backend> Backend for LimitBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
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
        let bytes = self.inner.read_range(kind, name, offset, length)?;
        if let Some(l) = &self.download {
            l.take(bytes.len());
        }
        Ok(bytes)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.up(data.len());
        self.inner.write(kind, name, data)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }

    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }

    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        let Some(inner) = self.inner.data_writer()? else {
            return Ok(None);
        };
        Ok(Some(match &self.upload {
            Some(limit) => Box::new(LimitedWriter {
                inner,
                limit: limit.clone(),
            }),
            None => inner,
        }))
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(older_than)
    }

    fn hint(&self, hint: &Hint<'_>) {
        self.inner.hint(hint)
    }
}

struct LimitedWriter {
    inner: Box<dyn DataWriter>,
    limit: Arc<RateLimit>,
}

impl DataWriter for LimitedWriter {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.limit.take(buf.len());
        self.inner.write_all(buf)
    }

    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        self.inner.commit(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::name_of;
    use crate::MemoryBackend;

    #[test]
    fn the_rate_holds_over_many_writes() {
        // 400 KiB at 1 MiB/s with a 0.25 s burst: at least 0.14 s.
        let b = LimitBackend::new(MemoryBackend::new(), Some(1 << 20), None);
        let start = Instant::now();
        for i in 0..40u32 {
            let data = vec![i as u8; 10 << 10];
            b.write(FileKind::Data, &name_of(&data), &data).unwrap();
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(140), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn downloads_are_charged_and_uploads_free_without_a_limit() {
        // 64 MiB up: charged at the download rate it would take a minute.
        let b = LimitBackend::new(MemoryBackend::new(), None, Some(1 << 20));
        let free = vec![9u8; 64 << 20];
        let start = Instant::now();
        b.write(FileKind::Data, &name_of(&free), &free).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "an upload was charged to the download limit: {:?}",
            start.elapsed()
        );
        let b = LimitBackend::new(MemoryBackend::new(), None, Some(1 << 20));
        let data = vec![7u8; 512 << 10];
        let name = name_of(&data);
        let start = Instant::now();
        b.write(FileKind::Data, &name, &data).unwrap();
        for _ in 0..2 {
            assert_eq!(b.read(FileKind::Data, &name).unwrap(), data);
        }
        // 1 MiB read at 1 MiB/s, less the burst.
        assert!(start.elapsed() >= Duration::from_millis(700));
    }

    #[test]
    fn conformance() {
        crate::conformance::run(&LimitBackend::new(
            MemoryBackend::new(),
            Some(1 << 30),
            Some(1 << 30),
        ));
    }
}
