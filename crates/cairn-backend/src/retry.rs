//! Retries as a wrapper: [`RetryBackend`] repeats an operation that failed
//! with [`ErrorKind::Transient`] (connection refused or reset, timeout, a
//! 5xx answer), waiting longer each time, and passes every other outcome
//! through at once: a missing file, refused credentials, a full store or a
//! bad request do not get better by asking again.
//!
//! Every backend operation may be repeated safely: reads, listings and
//! removals are idempotent, and a write is atomic and never overwrites. The
//! one subtlety is a write whose first attempt reached the store but whose
//! answer was lost: the repeat finds the file there (`AlreadyExists`). The
//! wrapper then reads the stored file back, and when it holds exactly the
//! bytes being written, the write succeeded.
//!
//! A streamed data file ([`Backend::data_writer`]) is retried too: its
//! bytes go to the backend's writer and, as they pass, to a local spool (an
//! unlinked temporary file, as restic keeps its packs). When the stream or
//! its commit fails with a transient error, the whole file is written again
//! from the spool through a new writer, under the same backoff as any other
//! operation. A pack's name is the SHA-256 of its bytes, so a repeat that
//! finds the file there (the first commit landed but its answer was lost)
//! gives `AlreadyExists`, which the caller takes as stored, as the
//! [`crate::DataWriter`] contract says. If no spool can be made (no
//! temporary directory), the stream goes on without one and is not retried.
//!
//! Retries are for a store that has answered before. Until the backend has
//! answered once (any success, or any failure that is not transient), a
//! transient failure is retried only [`RetryPolicy::first_contact_attempts`]
//! times: a mistyped host or a server that is down fails within seconds
//! with its own message, instead of after a minute of backoff.

use crate::{Backend, BackendError, DataWriter, ErrorKind, FileInfo, FileKind, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retries).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Attempts in all while the backend has never answered (1: a server
    /// that cannot be reached at all fails at once).
    pub first_contact_attempts: u32,
}

impl Default for RetryPolicy {
    /// 10 attempts over about 45 seconds: long enough for a server restart.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            first_contact_attempts: 1,
        }
    }
}

/// Told about each failure that will be retried: the error, the number of
/// the attempt that failed, and the wait before the next one.
pub type RetryNotify = Box<dyn Fn(&BackendError, u32, Duration) + Send + Sync>;

/// A backend whose transient failures are retried with exponential backoff.
pub struct RetryBackend<B: Backend> {
    /// Shared with the streamed writers, which write again through it.
    inner: Arc<B>,
    retrier: Retrier,
}

/// The retry loop and what it needs, shared by the backend and its writers.
#[derive(Clone)]
struct Retrier {
    policy: RetryPolicy,
    notify: Option<Arc<RetryNotify>>,
    /// Set by the first answer (anything but a transient failure).
    answered: Arc<AtomicBool>,
}

impl<B: Backend> RetryBackend<B> {
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        RetryBackend {
            inner: Arc::new(inner),
            retrier: Retrier {
                policy,
                notify: None,
                answered: Arc::new(AtomicBool::new(false)),
            },
        }
    }

    /// Call `f` before each wait (to print a warning, say).
    pub fn with_notify(
        mut self,
        f: impl Fn(&BackendError, u32, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.retrier.notify = Some(Arc::new(Box::new(f)));
        self
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn retry<T>(&self, op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        self.retrier.retry(op)
    }
}

impl Retrier {
    fn retry<T>(&self, mut op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let first = op(1);
        self.retry_after(first, op)
    }

    /// Go on from `first`, the outcome of attempt 1 (made elsewhere).
    fn retry_after<T>(&self, first: Result<T>, mut op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let mut delay = self.policy.initial_delay;
        let mut attempt = 1;
        let mut result = first;
        loop {
            let transient = matches!(&result, Err(e) if e.kind == ErrorKind::Transient);
            if !transient {
                self.answered.store(true, Ordering::Relaxed);
            }
            let max_attempts = if self.answered.load(Ordering::Relaxed) {
                self.policy.max_attempts
            } else {
                self.policy.first_contact_attempts
            };
            match result {
                Err(e) if transient && attempt < max_attempts.max(1) => {
                    let wait = jitter(delay);
                    if let Some(n) = &self.notify {
                        n(&e, attempt, wait);
                    }
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(self.policy.max_delay);
                    attempt += 1;
                    result = op(attempt);
                }
                Err(e) if transient && attempt > 1 => {
                    return Err(BackendError::new(
                        e.kind,
                        format!("{} (gave up after {attempt} attempts)", e.message),
                    ))
                }
                other => return other,
            }
        }
    }
}

/// `d` ± 20%, so parallel writers that failed together do not retry together.
fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    d.mul_f64(0.8 + 0.4 * rand::random::<f64>())
}

impl<B: Backend + 'static> Backend for RetryBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.retry(|_| self.inner.create())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.retry(|_| self.inner.list(kind))
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.retry(|_| self.inner.stat(kind, name))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        self.retry(|_| self.inner.read_range(kind, name, offset, length))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.retry(|attempt| match self.inner.write(kind, name, data) {
            Err(e) if e.kind == ErrorKind::AlreadyExists && attempt > 1 => {
                // An earlier attempt may have stored the file before failing.
                match self.inner.read(kind, name) {
                    Ok(stored) if stored == data => Ok(()),
                    Ok(_) => Err(e),
                    Err(read_err) if read_err.kind == ErrorKind::Transient => Err(read_err),
                    Err(_) => Err(e),
                }
            }
            other => other,
        })
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.retry(|_| self.inner.remove(kind, name))
    }

    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }

    /// Starting a stream is retried, and so are its writes and commit:
    /// the whole file again, from the spool (see the module docs).
    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        let Some(writer) = self.retry(|_| self.inner.data_writer())? else {
            return Ok(None);
        };
        Ok(Some(Box::new(RetryDataWriter {
            backend: self.inner.clone(),
            retrier: self.retrier.clone(),
            current: Ok(writer),
            spool: Spool::new(),
        })))
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(older_than)
    }

    fn hint(&self, hint: &crate::Hint<'_>) {
        self.inner.hint(hint)
    }
}

/// A streamed data file that can be written again: see the module docs.
struct RetryDataWriter<B> {
    backend: Arc<B>,
    retrier: Retrier,
    /// The first attempt's writer, or the transient failure that ended it
    /// (the rest of the file then goes to the spool alone).
    current: std::result::Result<Box<dyn DataWriter>, BackendError>,
    spool: Spool,
}

impl<B: Backend + 'static> DataWriter for RetryDataWriter<B> {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.spool.write(buf);
        if let Ok(w) = &mut self.current {
            match w.write_all(buf) {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::Transient && self.spool.usable() => {
                    // Dropping the writer removes what it can of its file.
                    self.current = Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        let RetryDataWriter {
            backend,
            retrier,
            current,
            mut spool,
        } = *self;
        let first = current.and_then(|w| w.commit(name));
        if !spool.usable() {
            return first;
        }
        retrier.retry_after(first, |_| {
            // A file stored by an earlier attempt whose answer was lost
            // gives AlreadyExists: the same name holds the same bytes.
            match backend.data_writer()? {
                Some(mut w) => {
                    spool.replay(|chunk| w.write_all(chunk))?;
                    w.commit(name)
                }
                None => backend.write(FileKind::Data, name, &spool.read_all()?),
            }
        })
    }
}

/// Every byte of a stream, kept in an unlinked temporary file (in
/// `$TMPDIR`) for a repeat: the bytes as stored, so a pack's blobs stay
/// encrypted there too. It lives as long as its writer. A spool that fails
/// (no temporary directory, a full disk) is given up: the stream goes on,
/// without a second chance.
struct Spool {
    file: Option<File>,
    /// Set once creating or writing the file failed.
    broken: bool,
}

/// Bytes per write when a spool is replayed.
const REPLAY_CHUNK: usize = 1 << 20;

impl Spool {
    fn new() -> Spool {
        Spool {
            file: None,
            broken: false,
        }
    }

    fn usable(&self) -> bool {
        !self.broken
    }

    fn write(&mut self, buf: &[u8]) {
        if self.broken {
            return;
        }
        if self.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.file = Some(f),
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        }
        let f = self.file.as_mut().expect("just made");
        if f.write_all(buf).is_err() {
            self.broken = true;
            self.file = None;
        }
    }

    /// Hand every byte, from the start, to `sink` in chunks.
    fn replay(&mut self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(()); // nothing was written
        };
        let what = "reading back a pack's local spool";
        f.seek(SeekFrom::Start(0))
            .map_err(|e| BackendError::io(e, what))?;
        let mut buf = vec![0; REPLAY_CHUNK];
        loop {
            let n = f.read(&mut buf).map_err(|e| BackendError::io(e, what))?;
            if n == 0 {
                break;
            }
            sink(&buf[..n])?;
        }
        Ok(())
    }

    fn read_all(&mut self) -> Result<Vec<u8>> {
        let mut all = Vec::new();
        self.replay(|chunk| {
            all.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    /// Fails the next `fail` calls with `kind`; a failing write may still
    /// store the file first (a lost answer).
    struct Flaky {
        inner: MemoryBackend,
        fail: AtomicU32,
        kind: ErrorKind,
        store_then_fail: bool,
        calls: AtomicU32,
        /// What each call on a data writer does, in order (then `Pass`).
        stream: Arc<Mutex<Vec<Step>>>,
        writers: AtomicU32,
    }

    #[derive(Clone, Copy)]
    enum Step {
        Pass,
        Fail(ErrorKind),
        /// A commit that stores the file, then loses the answer.
        StoreThenFail,
    }

    /// A data writer of the memory backend that follows `Flaky::stream`.
    struct FlakyWriter {
        inner: Box<dyn DataWriter>,
        script: Arc<Mutex<Vec<Step>>>,
    }

    impl FlakyWriter {
        fn step(&self) -> Step {
            let mut s = self.script.lock().unwrap();
            if s.is_empty() {
                Step::Pass
            } else {
                s.remove(0)
            }
        }
    }

    impl DataWriter for FlakyWriter {
        fn write_all(&mut self, buf: &[u8]) -> Result<()> {
            match self.step() {
                Step::Fail(kind) => Err(BackendError::new(kind, "injected stream failure")),
                _ => self.inner.write_all(buf),
            }
        }
        fn commit(self: Box<Self>, name: &str) -> Result<()> {
            match self.step() {
                Step::Pass => self.inner.commit(name),
                Step::Fail(kind) => Err(BackendError::new(kind, "injected commit failure")),
                Step::StoreThenFail => {
                    self.inner.commit(name)?;
                    Err(BackendError::new(ErrorKind::Transient, "answer lost"))
                }
            }
        }
    }

    impl Flaky {
        fn new(fail: u32, kind: ErrorKind) -> Self {
            Flaky {
                inner: MemoryBackend::new(),
                fail: AtomicU32::new(fail),
                kind,
                store_then_fail: false,
                calls: AtomicU32::new(0),
                stream: Arc::new(Mutex::new(Vec::new())),
                writers: AtomicU32::new(0),
            }
        }

        fn check(&self) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(BackendError::new(self.kind, "injected failure"));
            }
            Ok(())
        }
    }

    impl Backend for Flaky {
        fn location(&self) -> String {
            "flaky".into()
        }
        fn create(&self) -> Result<()> {
            self.check()
        }
        fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
            self.check()?;
            self.inner.list(kind)
        }
        fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.check()?;
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
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
            if self.store_then_fail && self.fail.load(Ordering::SeqCst) > 0 {
                let _ = self.inner.write(kind, name, data);
            }
            self.check()?;
            self.inner.write(kind, name, data)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            self.check()?;
            self.inner.remove(kind, name)
        }
        fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
            self.writers.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Box::new(FlakyWriter {
                inner: self.inner.data_writer()?.expect("memory streams"),
                script: self.stream.clone(),
            })))
        }
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            first_contact_attempts: 4,
        }
    }

    #[test]
    fn a_backend_that_never_answered_is_not_retried_until_it_has() {
        let policy = RetryPolicy {
            first_contact_attempts: 1,
            ..quick()
        };
        let b = RetryBackend::new(Flaky::new(1, ErrorKind::Transient), policy.clone());
        assert_eq!(b.create().unwrap_err().kind, ErrorKind::Transient);
        assert_eq!(b.inner().calls.load(Ordering::SeqCst), 1);
        // Once it has answered, the same failure is retried.
        let b = RetryBackend::new(Flaky::new(0, ErrorKind::Transient), policy);
        b.create().unwrap();
        b.inner().fail.store(2, Ordering::SeqCst);
        b.create().unwrap();
        assert_eq!(b.inner().calls.load(Ordering::SeqCst), 4);
    }

    const NAME: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn transient_failures_are_retried_and_reported() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let b = RetryBackend::new(Flaky::new(2, ErrorKind::Transient), quick())
            .with_notify(move |_, n, _| s.lock().unwrap().push(n));
        assert!(b.list(FileKind::Snapshot).unwrap().is_empty());
        assert_eq!(b.inner().calls.load(Ordering::SeqCst), 3);
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn retries_end_with_a_message_saying_so() {
        let b = RetryBackend::new(Flaky::new(100, ErrorKind::Transient), quick());
        let e = b.create().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(
            e.message.contains("gave up after 4 attempts"),
            "{}",
            e.message
        );
        assert_eq!(b.inner().calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn other_errors_are_not_retried() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Denied,
            ErrorKind::NoSpace,
            ErrorKind::Permanent,
            ErrorKind::AlreadyExists,
        ] {
            let b = RetryBackend::new(Flaky::new(1, kind), quick());
            assert_eq!(b.remove(FileKind::Lock, NAME).unwrap_err().kind, kind);
            assert_eq!(
                b.inner().calls.load(Ordering::SeqCst),
                1,
                "{kind:?} was retried"
            );
        }
    }

    #[test]
    fn a_write_whose_answer_was_lost_succeeds() {
        let mut flaky = Flaky::new(1, ErrorKind::Transient);
        flaky.store_then_fail = true;
        let b = RetryBackend::new(flaky, quick());
        b.write(FileKind::Config, "config", b"cfg").unwrap();
        assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"cfg");
        // Other bytes under an existing name are still refused.
        assert_eq!(
            b.write(FileKind::Config, "config", b"other")
                .unwrap_err()
                .kind,
            ErrorKind::AlreadyExists
        );
    }

    /// A streamed pack of three pieces, through `b`; the bytes it holds.
    fn stream_pack(b: &RetryBackend<Flaky>) -> (Vec<u8>, Result<()>) {
        let pieces: [&[u8]; 3] = [b"first piece, ", b"second piece, ", b"last piece"];
        let mut w = b.data_writer().unwrap().expect("streams");
        let mut written = Ok(());
        for p in pieces {
            written = written.and_then(|()| w.write_all(p));
        }
        (pieces.concat(), written.and_then(|()| w.commit(NAME)))
    }

    #[test]
    fn a_stream_broken_midway_is_written_again_from_the_spool() {
        let flaky = Flaky::new(0, ErrorKind::Transient);
        *flaky.stream.lock().unwrap() = vec![Step::Pass, Step::Fail(ErrorKind::Transient)];
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let b = RetryBackend::new(flaky, quick())
            .with_notify(move |e, n, _| s.lock().unwrap().push((n, e.message.clone())));
        b.list(FileKind::Snapshot).unwrap(); // the store has answered
        let (bytes, committed) = stream_pack(&b);
        committed.unwrap();
        assert_eq!(b.read(FileKind::Data, NAME).unwrap(), bytes);
        assert_eq!(b.inner().writers.load(Ordering::SeqCst), 2);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(1, "injected stream failure".to_string())]
        );
    }

    #[test]
    fn a_failed_commit_is_written_again_from_the_spool() {
        let flaky = Flaky::new(0, ErrorKind::Transient);
        // Three writes pass; two commits fail (the second attempt's writes
        // pass too), then the third attempt stores the pack.
        *flaky.stream.lock().unwrap() = vec![
            Step::Pass,
            Step::Pass,
            Step::Pass,
            Step::Fail(ErrorKind::Transient),
            Step::Pass,
            Step::Fail(ErrorKind::Transient),
        ];
        let b = RetryBackend::new(flaky, quick());
        b.list(FileKind::Snapshot).unwrap();
        let (bytes, committed) = stream_pack(&b);
        committed.unwrap();
        assert_eq!(b.read(FileKind::Data, NAME).unwrap(), bytes);
        assert_eq!(b.inner().writers.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_commit_whose_answer_was_lost_finds_its_pack_stored() {
        let flaky = Flaky::new(0, ErrorKind::Transient);
        *flaky.stream.lock().unwrap() =
            vec![Step::Pass, Step::Pass, Step::Pass, Step::StoreThenFail];
        let b = RetryBackend::new(flaky, quick());
        b.list(FileKind::Snapshot).unwrap();
        let (bytes, committed) = stream_pack(&b);
        // The same name holds the same bytes: the caller takes it as stored.
        assert_eq!(committed.unwrap_err().kind, ErrorKind::AlreadyExists);
        assert_eq!(b.read(FileKind::Data, NAME).unwrap(), bytes);
        assert_eq!(b.inner().writers.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_stream_that_fails_for_good_is_not_written_again() {
        for kind in [ErrorKind::NoSpace, ErrorKind::Denied, ErrorKind::Permanent] {
            let flaky = Flaky::new(0, ErrorKind::Transient);
            *flaky.stream.lock().unwrap() = vec![Step::Pass, Step::Fail(kind)];
            let b = RetryBackend::new(flaky, quick());
            let (_, committed) = stream_pack(&b);
            assert_eq!(committed.unwrap_err().kind, kind);
            assert_eq!(b.inner().writers.load(Ordering::SeqCst), 1, "{kind:?}");
            assert!(!b.exists(FileKind::Data, NAME).unwrap());
        }
    }

    #[test]
    fn a_stream_gives_up_after_the_attempts_of_the_policy() {
        let flaky = Flaky::new(0, ErrorKind::Transient);
        *flaky.stream.lock().unwrap() = vec![Step::Fail(ErrorKind::Transient); 100];
        let b = RetryBackend::new(flaky, quick());
        b.list(FileKind::Snapshot).unwrap();
        let (_, committed) = stream_pack(&b);
        let e = committed.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(
            e.message.contains("gave up after 4 attempts"),
            "{}",
            e.message
        );
        assert_eq!(b.inner().writers.load(Ordering::SeqCst), 4);
        assert!(!b.exists(FileKind::Data, NAME).unwrap());
    }

    #[test]
    fn conformance() {
        crate::conformance::run(&RetryBackend::new(MemoryBackend::new(), quick()));
    }
}
