//! A channel for one value: the reply of one file reader or one directory
//! to the tree that holds it. The walker keeps a receiver for every entry of
//! a directory until the directory's tree is assembled, so for a directory
//! of a million entries the size of one matters: a bounded crossbeam
//! channel takes several hundred bytes, this one a small allocation.

use std::sync::{Arc, Condvar, Mutex};

enum State<T> {
    Empty,
    Full(T),
    /// The sender was dropped without sending.
    Closed,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

pub(super) struct Sender<T>(Option<Arc<Slot<T>>>);

pub(super) struct Receiver<T>(Arc<Slot<T>>);

/// The sender went away without sending.
#[derive(Debug)]
pub(super) struct Disconnected;

pub(super) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Empty),
        ready: Condvar::new(),
    });
    (Sender(Some(slot.clone())), Receiver(slot))
}

impl<T> Sender<T> {
    pub(super) fn send(mut self, value: T) {
        if let Some(slot) = self.0.take() {
            *slot.state.lock().unwrap() = State::Full(value);
            slot.ready.notify_one();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let mut state = slot.state.lock().unwrap();
            if matches!(*state, State::Empty) {
                *state = State::Closed;
            }
            drop(state);
            slot.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value, or for the sender to go away without one.
    pub(super) fn recv(self) -> Result<T, Disconnected> {
        let mut state = self.0.state.lock().unwrap();
        loop {
            match std::mem::replace(&mut *state, State::Closed) {
                State::Full(v) => return Ok(v),
                State::Closed => return Err(Disconnected),
                State::Empty => {
                    *state = State::Empty;
                    state = self.0.ready.wait(state).unwrap();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sent_from_another_thread_arrives() {
        let (tx, rx) = channel();
        let t = std::thread::spawn(move || tx.send(42u64));
        assert_eq!(rx.recv().unwrap(), 42);
        t.join().unwrap();
    }

    #[test]
    fn a_sender_dropped_without_sending_disconnects() {
        let (tx, rx) = channel::<u64>();
        let t = std::thread::spawn(move || drop(tx));
        assert!(rx.recv().is_err());
        t.join().unwrap();
    }
}
