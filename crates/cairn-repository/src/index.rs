//! The in-memory index: blob id → (pack, offset, lengths), in 48 bytes per
//! blob.
//!
//! Entries live in one vector sorted by id (binary search); blobs added
//! during a run go to a small hash map first and are merged into the vector
//! by [`Index::compact`], which the saver calls at each index checkpoint, so
//! the map never grows large. Pack ids are stored once, referenced by number.

use cairn_format::pack::PackEntry;
use cairn_format::{BlobKind, Id};
use std::collections::HashMap;

const TREE_BIT: u32 = 1 << 31;

#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Entry {
    id: [u8; 32],
    /// Pack number; the top bit marks tree blobs.
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48);

/// Where to find a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub id: Id,
    pub kind: BlobKind,
    pub pack: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

#[derive(Default)]
pub struct Index {
    sorted: Vec<Entry>,
    fresh: HashMap<Id, Entry>,
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    pub fn has_pack(&self, pack: &Id) -> bool {
        self.pack_numbers.contains_key(pack)
    }

    /// Record the blobs of a stored pack. A blob already indexed keeps its
    /// first location.
    pub fn add_pack(&mut self, pack: Id, entries: &[PackEntry]) {
        let n = match self.pack_numbers.get(&pack) {
            Some(&n) => n,
            None => {
                let n = self.packs.len() as u32;
                assert!(n < TREE_BIT, "more than 2^31 packs");
                self.packs.push(pack);
                self.pack_numbers.insert(pack, n);
                n
            }
        };
        for e in entries {
            if self.find_sorted(&e.id).is_some() {
                continue;
            }
            self.fresh.entry(e.id).or_insert(Entry {
                id: e.id.0,
                pack: n | if e.kind == BlobKind::Tree { TREE_BIT } else { 0 },
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            });
        }
    }

    /// Merge recently added blobs into the sorted vector.
    pub fn compact(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        let mut fresh: Vec<Entry> = self.fresh.drain().map(|(_, e)| e).collect();
        self.fresh.shrink_to_fit();
        fresh.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        if self.sorted.is_empty() {
            self.sorted = fresh;
            return;
        }
        let old = std::mem::take(&mut self.sorted);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < fresh.len() {
            if old[i].id <= fresh[j].id {
                merged.push(old[i]);
                i += 1;
            } else {
                merged.push(fresh[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&old[i..]);
        merged.extend_from_slice(&fresh[j..]);
        self.sorted = merged;
    }

    fn find_sorted(&self, id: &Id) -> Option<&Entry> {
        self.sorted.binary_search_by(|e| e.id.cmp(&id.0)).ok().map(|i| &self.sorted[i])
    }

    fn location(&self, e: &Entry) -> BlobLocation {
        BlobLocation {
            id: Id(e.id),
            kind: if e.pack & TREE_BIT != 0 { BlobKind::Tree } else { BlobKind::Data },
            pack: self.packs[(e.pack & !TREE_BIT) as usize],
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        }
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        let e = self.find_sorted(id).or_else(|| self.fresh.get(id))?;
        Some(self.location(e))
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find_sorted(id).is_some() || self.fresh.contains_key(id)
    }

    /// Every indexed blob, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = BlobLocation> + '_ {
        self.sorted.iter().chain(self.fresh.values()).map(|e| self.location(e))
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32, kind: BlobKind) -> PackEntry {
        PackEntry { kind, id: Id::sha256(&i.to_le_bytes()), offset: i * 10, length: 10, raw_length: i }
    }

    #[test]
    fn add_lookup_compact() {
        let mut ix = Index::new();
        let p1 = Id::sha256(b"p1");
        let p2 = Id::sha256(b"p2");
        ix.add_pack(p1, &(0..100).map(|i| entry(i, BlobKind::Data)).collect::<Vec<_>>());
        ix.compact();
        ix.add_pack(p2, &(50..150).map(|i| entry(i, BlobKind::Tree)).collect::<Vec<_>>());
        assert_eq!(ix.len(), 150);
        for round in 0..2 {
            for i in 0..150u32 {
                let loc = ix.get(&Id::sha256(&i.to_le_bytes())).unwrap();
                if i < 100 {
                    assert_eq!((loc.pack, loc.kind), (p1, BlobKind::Data), "first location wins");
                } else {
                    assert_eq!((loc.pack, loc.kind), (p2, BlobKind::Tree));
                }
                assert_eq!(loc.raw_length, i);
            }
            assert!(!ix.contains(&Id::sha256(b"nope")));
            if round == 0 {
                ix.compact();
            }
        }
        assert_eq!(ix.iter().count(), 150);
        assert_eq!(ix.pack_count(), 2);
    }
}
