//! Bounded caches of decoded blobs and trees.
//!
//! - [`Lru`]: least recently used entries go first once the total weight
//!   passes the capacity. An entry heavier than the capacity is not kept.
//! - [`BlobCache`]: data blobs by id, weighed in bytes. Blobs a sequential
//!   reader has gone past are dropped by the file system (the kernel's
//!   page cache holds what was read), so one long read does not fill the
//!   cache. A blob wanted by
//!   several readers at once is fetched once: the first reader fetches,
//!   the others wait for its result. Failures are handed to the waiters
//!   and not cached (the next read tries again: a backend may come back).
//!   Only blobs that passed [`Repository::read_blob_at`]'s checks (length,
//!   decryption, id) are ever stored or returned.
//! - [`TreeCache`]: decoded directory listings by tree id, so snapshots
//!   sharing directories load each once.

use crate::Result;
use cairn_engine::tree_walk;
use cairn_repository::format::tree::Node;
use cairn_repository::format::Id;
use cairn_repository::{BlobLocation, Error, Repository};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};

/// Least-recently-used map with a weight budget.
pub struct Lru<K, V> {
    map: HashMap<K, (V, u64, u64)>,
    order: BTreeMap<u64, K>,
    tick: u64,
    weight: u64,
    capacity: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub fn new(capacity: u64) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            weight: 0,
            capacity,
        }
    }

    /// The value, marked as just used.
    pub fn get(&mut self, k: &K) -> Option<V> {
        let (v, tick, _) = self.map.get_mut(k)?;
        self.order.remove(tick);
        self.tick += 1;
        *tick = self.tick;
        self.order.insert(self.tick, k.clone());
        Some(v.clone())
    }

    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Insert (or replace) `k`; returns the weight evicted to make room.
    pub fn insert(&mut self, k: K, v: V, weight: u64) -> u64 {
        if let Some((_, tick, w)) = self.map.remove(&k) {
            self.order.remove(&tick);
            self.weight -= w;
        }
        if weight > self.capacity {
            return 0;
        }
        let mut evicted = 0;
        while self.weight + weight > self.capacity {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, _, w)) = self.map.remove(&old) {
                self.weight -= w;
                evicted += w;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, k.clone());
        self.map.insert(k, (v, self.tick, weight));
        self.weight += weight;
        evicted
    }

    /// Drops `k`'s entry, if there is one.
    pub fn remove(&mut self, k: &K) {
        if let Some((_, tick, w)) = self.map.remove(k) {
            self.order.remove(&tick);
            self.weight -= w;
        }
    }

    pub fn weight(&self) -> u64 {
        self.weight
    }
}

/// A decoded blob, shared by the cache and its readers without a copy.
pub type Blob = Arc<Vec<u8>>;

type Fetched = std::result::Result<Blob, Error>;

/// A fetch in progress, which other readers of the same blob wait for.
#[derive(Default)]
struct Pending {
    done: Mutex<Option<Fetched>>,
    ready: Condvar,
}

struct BlobState {
    lru: Lru<Id, Blob>,
    pending: HashMap<Id, Arc<Pending>>,
    /// Bytes evicted for room since the allocator last gave memory back.
    evicted: u64,
}

/// Evicting this much for room hands the allocator's free memory back to
/// the system (see [`release_free_memory`]).
const RELEASE_EVERY: u64 = 16 << 20;

pub struct BlobCache {
    state: Mutex<BlobState>,
}

impl BlobCache {
    pub fn new(capacity: u64) -> Self {
        BlobCache {
            state: Mutex::new(BlobState {
                lru: Lru::new(capacity),
                pending: HashMap::new(),
                evicted: 0,
            }),
        }
    }

    /// Drops a cached blob (one being fetched is left to its readers).
    pub fn forget(&self, id: &Id) {
        self.state.lock().unwrap().lru.remove(id);
    }

    /// Is the blob cached or being fetched?
    pub fn present(&self, id: &Id) -> bool {
        let s = self.state.lock().unwrap();
        s.lru.contains(id) || s.pending.contains_key(id)
    }

    /// The blob at `loc`, from the cache or fetched (once, however many
    /// readers ask at the same time).
    pub fn get(&self, repo: &Repository, loc: &BlobLocation) -> Result<Blob> {
        let pending = {
            let mut s = self.state.lock().unwrap();
            if let Some(b) = s.lru.get(&loc.id) {
                return Ok(b);
            }
            if let Some(p) = s.pending.get(&loc.id) {
                let p = p.clone();
                drop(s);
                let mut done = p.done.lock().unwrap();
                while done.is_none() {
                    done = p.ready.wait(done).unwrap();
                }
                return done.clone().expect("set before notifying");
            }
            let p = Arc::new(Pending::default());
            s.pending.insert(loc.id, p.clone());
            p
        };
        let fetched: Fetched = repo.read_blob_at(loc).map(Arc::new);
        let release = {
            let mut s = self.state.lock().unwrap();
            s.pending.remove(&loc.id);
            if let Ok(b) = &fetched {
                s.evicted += s.lru.insert(loc.id, b.clone(), b.len() as u64);
            }
            let full = s.evicted >= RELEASE_EVERY;
            if full {
                s.evicted = 0;
            }
            full
        };
        if release {
            release_free_memory();
        }
        *pending.done.lock().unwrap() = Some(fetched.clone());
        pending.ready.notify_all();
        fetched
    }

    pub fn weight(&self) -> u64 {
        self.state.lock().unwrap().lru.weight()
    }
}

/// Give the allocator's free memory back to the system.
///
/// Blob buffers come from the heap, so a sequential reader reuses the
/// memory of the blobs it has gone past without faulting pages in again
/// (a third of a sequential read's time when every buffer was mapped
/// afresh). A full cache evicting blobs of assorted sizes leaves holes the
/// heap keeps, though (peak RSS was the cache plus a third again):
/// trimming after every [`RELEASE_EVERY`] bytes of evictions returns them.
#[cfg(target_env = "gnu")]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns free memory of the allocator's own
    // arenas to the system; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries' allocators keep their own policy.
#[cfg(not(target_env = "gnu"))]
fn release_free_memory() {}

/// A directory's entries, sorted by name, with valid names only.
pub type Listing = Arc<Vec<Node>>;

pub struct TreeCache {
    lru: Mutex<Lru<Id, Listing>>,
}

impl TreeCache {
    /// `capacity` in (estimated) bytes of decoded nodes.
    pub fn new(capacity: u64) -> Self {
        TreeCache {
            lru: Mutex::new(Lru::new(capacity)),
        }
    }

    /// The entries of tree `id`, sorted by name. Entries whose names could
    /// escape their directory are left out; two entries with one name make
    /// the tree corrupt.
    pub fn get(&self, repo: &Repository, id: &Id) -> Result<Listing> {
        if let Some(l) = self.lru.lock().unwrap().get(id) {
            return Ok(l);
        }
        let mut nodes = repo.load_tree(id)?.nodes;
        nodes.retain(|n| tree_walk::valid_name(n.name.as_bytes()));
        if !nodes.windows(2).all(|w| w[0].name < w[1].name) {
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            if let Some(w) = nodes.windows(2).find(|w| w[0].name == w[1].name) {
                return Err(Error::corrupt(
                    format!("tree {}", id.short()),
                    format!("two entries named {:?}", w[0].name),
                ));
            }
        }
        let weight: u64 = nodes
            .iter()
            .map(|n| 256 + n.name.as_bytes().len() as u64 + 32 * n.content.len() as u64)
            .sum();
        let listing = Arc::new(nodes);
        self.lru
            .lock()
            .unwrap()
            .insert(*id, listing.clone(), weight);
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used_by_weight() {
        let mut l: Lru<u32, &str> = Lru::new(10);
        l.insert(1, "a", 4);
        l.insert(2, "b", 4);
        assert_eq!(l.get(&1), Some("a"));
        l.insert(3, "c", 4); // evicts 2, the least recently used
        assert!(l.contains(&1) && !l.contains(&2) && l.contains(&3));
        assert_eq!(l.weight(), 8);
        l.insert(4, "too heavy", 11);
        assert!(!l.contains(&4));
        l.insert(1, "a again", 2);
        assert_eq!(l.weight(), 6);
        assert_eq!(l.get(&1), Some("a again"));
        l.remove(&1);
        l.remove(&1);
        assert!(!l.contains(&1));
        assert_eq!(l.weight(), 4);
        // The order forgot it too: filling up evicts 3, not a ghost of 1.
        l.insert(5, "e", 6);
        assert!(l.contains(&3) && l.contains(&5));
        l.insert(6, "f", 1);
        assert!(!l.contains(&3) && l.contains(&5) && l.contains(&6));
    }
}
