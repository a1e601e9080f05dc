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
//! Retries are for a store that has answered before. Until the backend has
//! answered once (any success, or any failure that is not transient), a
//! transient failure is retried only [`RetryPolicy::first_contact_attempts`]
//! times: a mistyped host or a server that is down fails within seconds
//! with its own message, instead of after a minute of backoff.

use crate::{Backend, BackendError, ErrorKind, FileInfo, FileKind, Result};
use std::sync::atomic::{AtomicBool, Ordering};
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
    inner: B,
    policy: RetryPolicy,
    notify: Option<RetryNotify>,
    /// Set by the first answer (anything but a transient failure).
    answered: AtomicBool,
}

impl<B: Backend> RetryBackend<B> {
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        RetryBackend {
            inner,
            policy,
            notify: None,
            answered: AtomicBool::new(false),
        }
    }

    /// Call `f` before each wait (to print a warning, say).
    pub fn with_notify(
        mut self,
        f: impl Fn(&BackendError, u32, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.notify = Some(Box::new(f));
        self
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn retry<T>(&self, mut op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let mut delay = self.policy.initial_delay;
        let mut attempt = 1;
        loop {
            let result = op(attempt);
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

impl<B: Backend> Backend for RetryBackend<B> {
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

    /// Starting a stream is retried; its writes and commit are not (a
    /// stream cannot be replayed: the caller sees the error).
    fn data_writer(&self) -> Result<Option<Box<dyn crate::DataWriter>>> {
        self.retry(|_| self.inner.data_writer())
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(older_than)
    }

    fn hint(&self, hint: &crate::Hint<'_>) {
        self.inner.hint(hint)
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
    }

    impl Flaky {
        fn new(fail: u32, kind: ErrorKind) -> Self {
            Flaky {
                inner: MemoryBackend::new(),
                fail: AtomicU32::new(fail),
                kind,
                store_then_fail: false,
                calls: AtomicU32::new(0),
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

    #[test]
    fn conformance() {
        crate::conformance::run(&RetryBackend::new(MemoryBackend::new(), quick()));
    }
}
