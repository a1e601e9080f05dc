//! Worker threads for everything that may wait on the repository
//! (lookups and listings that load trees, reads that fetch blobs), so the
//! FUSE event loop only dispatches and several reads proceed at once.
//! fuser's reply objects are `Send`: a worker answers when it is done.
//!
//! Two queues: requests first, read-ahead when no request waits. The
//! read-ahead queue is bounded; what does not fit is dropped (a read
//! fetches it later if it is still wanted). A job that panics is logged;
//! its reply, dropped unanswered, tells the kernel EIO.

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender, TryRecvError};
use std::panic::{catch_unwind, AssertUnwindSafe};

type Job = Box<dyn FnOnce() + Send>;

/// Read-ahead jobs waiting at most.
const PREFETCH_QUEUE: usize = 64;

pub struct Pool {
    requests: Sender<Job>,
    prefetch: Sender<Job>,
}

impl Pool {
    pub fn new(workers: usize) -> Pool {
        let (requests, rq) = unbounded::<Job>();
        let (prefetch, pq) = bounded::<Job>(PREFETCH_QUEUE);
        for i in 0..workers.max(1) {
            let (rq, pq) = (rq.clone(), pq.clone());
            std::thread::Builder::new()
                .name(format!("cairn-fuse-{i}"))
                .spawn(move || worker(rq, pq))
                .expect("spawn a worker thread");
        }
        Pool { requests, prefetch }
    }

    /// Run a request's job.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        // The workers live as long as the pool's senders.
        let _ = self.requests.send(Box::new(job));
    }

    /// Run a read-ahead job when there is room for it.
    pub fn prefetch(&self, job: impl FnOnce() + Send + 'static) {
        let _ = self.prefetch.try_send(Box::new(job));
    }
}

fn worker(requests: Receiver<Job>, prefetch: Receiver<Job>) {
    loop {
        let job = match requests.try_recv() {
            Ok(j) => j,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => select! {
                recv(requests) -> j => match j {
                    Ok(j) => j,
                    Err(_) => return,
                },
                recv(prefetch) -> j => match j {
                    Ok(j) => j,
                    Err(_) => match requests.recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    },
                },
            },
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            eprintln!("error: a mount worker failed unexpectedly (the request got EIO)");
        }
    }
}
