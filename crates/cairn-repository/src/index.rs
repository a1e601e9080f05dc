//! The in-memory index: blob id → (pack, offset, lengths), in 48 bytes per
//! blob.
//!
//! Entries live in one vector sorted by id (binary search); blobs added
//! during a run go to a small hash map first and are merged into the vector
//! by [`Index::compact`], which the saver calls at each index checkpoint and
//! [`Index`] itself when the map would grow past a sixteenth of the vector,
//! so the map never grows large. Pack ids are stored once, referenced by number.
//!
//! Memory is one copy of the entries at any time: loading reserves an upper
//! bound it does not touch (untouched pages cost nothing) and gives back
//! what it did not use; compaction merges in place from the back.
//!
//! Packs that prune marked for deletion stay readable ([`Index::get`]) but
//! do not count for deduplication ([`Index::contains`]): a new snapshot must
//! never start to depend on them. A pack listed as in use by any index file
//! is in use ("live wins"), and a blob found in a live pack is located there.

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

const _: () = assert!(size_of::<Entry>() == 48);

/// The hash map of fresh entries is merged into the sorted vector when it
/// is full and holds at least this many, or a 32nd of the vector if that
/// is more: the map (about twice an entry's size per entry) stays within
/// a sixteenth of the vector's size, and each entry is moved a bounded
/// number of times on average.
const COMPACT_AT: usize = 1 << 14;

impl Entry {
    /// `e` in the pack numbered `pack`.
    fn new(pack: u32, e: &PackEntry) -> Entry {
        Entry {
            id: e.id.0,
            pack: pack
                | if e.kind == BlobKind::Tree {
                    TREE_BIT
                } else {
                    0
                },
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        }
    }
}

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

/// The index's blobs grouped by pack: see [`Index::group_by_pack`].
pub struct PackGroups {
    /// Positions in the sorted vector, pack by pack.
    order: Vec<u32>,
    /// Per pack number, where its positions start in `order` (one more
    /// entry than packs).
    starts: Vec<u32>,
}

/// An id's first 8 bytes as an integer: the same order as the bytes
/// (big-endian), and compared before the whole id.
fn prefix(id: &[u8; 32]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
}

#[derive(Default)]
pub struct Index {
    sorted: Vec<Entry>,
    /// Where the entries whose ids start with each `radix_bits`-bit value
    /// begin in `sorted` (one more position than values), so a lookup
    /// searches a few entries instead of the whole vector: a binary
    /// search's ~20 cache misses per lookup were a tenth of an unchanged
    /// re-backup. Rebuilt whenever `sorted` changes (about 2 bytes per
    /// blob); used only while `radix_for` equals `sorted.len()`.
    radix: Vec<u32>,
    radix_bits: u32,
    radix_for: usize,
    fresh: HashMap<Id, Entry>,
    /// Entries of index files being loaded, unsorted and with duplicates,
    /// until [`Index::finish_loading`]: loading a large index through the
    /// hash map needed its table twice over while it grew.
    loading: Vec<Entry>,
    packs: Vec<Id>,
    /// Parallel to `packs`: when prune marked the pack for deletion.
    marked: Vec<Option<i64>>,
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

    /// Record the blobs of a stored pack in use. A blob already indexed in
    /// a live pack keeps its first location.
    pub fn add_pack(&mut self, pack: Id, entries: &[PackEntry]) {
        self.add(pack, None, entries)
    }

    /// Add a pack as an index file lists it (live or marked for deletion).
    pub fn add_index_pack(&mut self, p: &cairn_format::index::IndexPack) {
        self.add(p.id, p.marked, &p.blobs)
    }

    /// Add a pack as an index file lists it, without looking for
    /// duplicates yet: cheap in time and memory for loading many files.
    /// Lookups see these entries only after [`Index::finish_loading`].
    pub fn load_index_pack(&mut self, p: &cairn_format::index::IndexPack) {
        let n = self.pack_number(p.id, p.marked);
        self.loading
            .extend(p.blobs.iter().map(|e| Entry::new(n, e)));
    }

    /// Expect about `entries` more entries from [`Index::load_index_pack`]:
    /// reserved once, so loading never copies the vector while it grows.
    /// An over-estimate costs address space only (the pages are never
    /// touched; [`Index::finish_loading`] returns them).
    pub fn reserve_loading(&mut self, entries: usize) {
        self.loading.reserve(entries);
    }

    /// Make the entries of [`Index::load_index_pack`] visible. Of several
    /// locations of one blob, one in a live pack wins.
    pub fn finish_loading(&mut self) {
        let mut loading = std::mem::take(&mut self.loading);
        if loading.is_empty() {
            return;
        }
        if !self.sorted.is_empty() || !self.fresh.is_empty() {
            // Not a fresh load: the general path keeps the rules in one place.
            for e in loading {
                let pack = self.packs[(e.pack & !TREE_BIT) as usize];
                let kind = if e.pack & TREE_BIT != 0 {
                    BlobKind::Tree
                } else {
                    BlobKind::Data
                };
                let marked = self.marked[(e.pack & !TREE_BIT) as usize];
                let entry = PackEntry {
                    id: Id(e.id),
                    kind,
                    offset: e.offset,
                    length: e.length,
                    raw_length: e.raw_length,
                };
                self.add(pack, marked, std::slice::from_ref(&entry));
            }
            self.compact();
            return;
        }
        loading.sort_unstable_by_key(|e| e.id);
        let mut out = 0;
        let mut i = 0;
        while i < loading.len() {
            let mut j = i + 1;
            while j < loading.len() && loading[j].id == loading[i].id {
                j += 1;
            }
            let pick = (i..j)
                .find(|&k| !self.is_marked_number(loading[k].pack))
                .unwrap_or(i);
            loading[out] = loading[pick];
            out += 1;
            i = j;
        }
        loading.truncate(out);
        loading.shrink_to_fit();
        self.sorted = loading;
        self.build_radix();
    }

    /// Rebuild `radix` for the current `sorted` (see the field).
    fn build_radix(&mut self) {
        let n = self.sorted.len();
        self.radix_for = n;
        self.radix.clear();
        if n < 64 {
            self.radix_bits = 0;
            self.radix.shrink_to_fit();
            return;
        }
        // 2 to 4 entries per value on average.
        let bits = (usize::BITS - 1 - n.leading_zeros() - 1).min(26);
        self.radix_bits = bits;
        self.radix.reserve_exact((1usize << bits) + 1);
        let mut i = 0;
        for value in 0..1u64 << bits {
            while i < n && prefix(&self.sorted[i].id) >> (64 - bits) < value {
                i += 1;
            }
            self.radix.push(i as u32);
        }
        self.radix.push(n as u32);
    }

    /// The number of a pack, numbering it if new. A pack listed as live
    /// anywhere is live.
    fn pack_number(&mut self, pack: Id, marked: Option<i64>) -> u32 {
        match self.pack_numbers.get(&pack) {
            Some(&n) => {
                if marked.is_none() {
                    self.marked[n as usize] = None;
                }
                n
            }
            None => {
                let n = self.packs.len() as u32;
                assert!(n < TREE_BIT, "more than 2^31 packs");
                self.packs.push(pack);
                self.marked.push(marked);
                self.pack_numbers.insert(pack, n);
                n
            }
        }
    }

    fn add(&mut self, pack: Id, marked: Option<i64>, entries: &[PackEntry]) {
        let n = self.pack_number(pack, marked);
        let live = self.marked[n as usize].is_none();
        for e in entries {
            let new = Entry::new(n, e);
            if let Ok(i) = self.sorted.binary_search_by(|x| x.id.cmp(&e.id.0)) {
                if live && self.is_marked_number(self.sorted[i].pack) {
                    self.sorted[i] = new;
                }
                continue;
            }
            match self.fresh.get_mut(&e.id) {
                Some(old) => {
                    if live && self.marked[(old.pack & !TREE_BIT) as usize].is_some() {
                        *old = new;
                    }
                }
                None => {
                    // Merged rather than grown, once large enough: the map
                    // never doubles past a sixteenth of the vector.
                    if self.fresh.len() == self.fresh.capacity()
                        && self.fresh.len() >= COMPACT_AT.max(self.sorted.len() / 32)
                    {
                        self.compact();
                    }
                    self.fresh.insert(e.id, new);
                }
            }
        }
    }

    fn is_marked_number(&self, pack_field: u32) -> bool {
        self.marked[(pack_field & !TREE_BIT) as usize].is_some()
    }

    /// When prune marked `pack` for deletion, if it did.
    pub fn marked(&self, pack: &Id) -> Option<i64> {
        self.pack_numbers
            .get(pack)
            .and_then(|&n| self.marked[n as usize])
    }

    /// Merge recently added blobs into the sorted vector, in place: the
    /// vector grows by the fresh entries and the two sorted runs are merged
    /// from the back, so no second copy of the vector is ever made.
    pub fn compact(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        // The map keeps its capacity for the next entries.
        let mut fresh: Vec<Entry> = self.fresh.drain().map(|(_, e)| e).collect();
        fresh.sort_unstable_by_key(|e| e.id);
        let old_len = self.sorted.len();
        self.sorted.reserve_exact(fresh.len());
        // Placeholders, all overwritten by the merge below.
        self.sorted.resize(old_len + fresh.len(), fresh[0]);
        let (mut i, mut j, mut w) = (old_len, fresh.len(), old_len + fresh.len());
        while j > 0 {
            w -= 1;
            if i > 0 && self.sorted[i - 1].id > fresh[j - 1].id {
                self.sorted[w] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[w] = fresh[j - 1];
                j -= 1;
            }
        }
        self.build_radix();
    }

    fn find_sorted(&self, id: &Id) -> Option<&Entry> {
        let key = prefix(&id.0);
        let s = &self.sorted;
        let (lo, hi) = if self.radix_bits > 0 && self.radix_for == s.len() {
            let value = (key >> (64 - self.radix_bits)) as usize;
            (self.radix[value] as usize, self.radix[value + 1] as usize)
        } else {
            (0, s.len())
        };
        // Ids are uniformly random, so equal prefixes (and memcmp) are rare.
        s[lo..hi]
            .binary_search_by(|e| prefix(&e.id).cmp(&key).then_with(|| e.id.cmp(&id.0)))
            .ok()
            .map(|i| &s[lo + i])
    }

    fn location(&self, e: &Entry) -> BlobLocation {
        BlobLocation {
            id: Id(e.id),
            kind: if e.pack & TREE_BIT != 0 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            },
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

    /// Is the blob stored in a pack in use? (Blobs only in packs marked for
    /// deletion do not count: they must be saved again.)
    pub fn contains(&self, id: &Id) -> bool {
        match self.find_sorted(id).or_else(|| self.fresh.get(id)) {
            Some(e) => !self.is_marked_number(e.pack),
            None => false,
        }
    }

    /// Every indexed blob, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = BlobLocation> + '_ {
        self.sorted
            .iter()
            .chain(self.fresh.values())
            .map(|e| self.location(e))
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    /// Every blob's position grouped by pack, in 4 bytes per blob (a
    /// counting sort of the sorted vector by pack number), for walking the
    /// index pack by pack without a second copy of it. Merges fresh entries
    /// first.
    pub fn group_by_pack(&mut self) -> PackGroups {
        self.compact();
        let mut starts = vec![0u32; self.packs.len() + 1];
        for e in &self.sorted {
            starts[(e.pack & !TREE_BIT) as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; self.sorted.len()];
        for (pos, e) in self.sorted.iter().enumerate() {
            let slot = &mut next[(e.pack & !TREE_BIT) as usize];
            order[*slot as usize] = pos as u32;
            *slot += 1;
        }
        PackGroups { order, starts }
    }

    /// The blobs of `pack`, from groups made by [`Index::group_by_pack`] of
    /// this index unchanged since.
    pub fn pack_blobs(&self, groups: &PackGroups, pack: &Id) -> Vec<BlobLocation> {
        let Some(&n) = self.pack_numbers.get(pack) else {
            return Vec::new();
        };
        let (a, b) = (groups.starts[n as usize], groups.starts[n as usize + 1]);
        groups.order[a as usize..b as usize]
            .iter()
            .map(|&pos| self.location(&self.sorted[pos as usize]))
            .collect()
    }

    /// How many blobs the index places in `pack`.
    pub fn pack_blob_count(&self, groups: &PackGroups, pack: &Id) -> usize {
        self.pack_numbers.get(pack).map_or(0, |&n| {
            (groups.starts[n as usize + 1] - groups.starts[n as usize]) as usize
        })
    }

    /// Every pack with its deletion mark.
    pub fn packs_with_marks(&self) -> impl Iterator<Item = (Id, Option<i64>)> + '_ {
        self.packs.iter().copied().zip(self.marked.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32, kind: BlobKind) -> PackEntry {
        PackEntry {
            kind,
            id: Id::sha256(&i.to_le_bytes()),
            offset: i * 10,
            length: 10,
            raw_length: i,
        }
    }

    #[test]
    fn add_lookup_compact() {
        let mut ix = Index::new();
        let p1 = Id::sha256(b"p1");
        let p2 = Id::sha256(b"p2");
        ix.add_pack(
            p1,
            &(0..100)
                .map(|i| entry(i, BlobKind::Data))
                .collect::<Vec<_>>(),
        );
        ix.compact();
        ix.add_pack(
            p2,
            &(50..150)
                .map(|i| entry(i, BlobKind::Tree))
                .collect::<Vec<_>>(),
        );
        assert_eq!(ix.len(), 150);
        for round in 0..2 {
            for i in 0..150u32 {
                let loc = ix.get(&Id::sha256(&i.to_le_bytes())).unwrap();
                if i < 100 {
                    assert_eq!(
                        (loc.pack, loc.kind),
                        (p1, BlobKind::Data),
                        "first location wins"
                    );
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

    /// Lookups find every id and no other, with uniform ids and with ids
    /// crowded into a few prefixes (one radix bucket holding hundreds):
    /// ids sharing their first 8 bytes, ids at the ends of the range, and
    /// a run of consecutive prefixes; before and after more are added.
    #[test]
    fn lookups_find_exactly_the_stored_ids_however_they_are_spread() {
        let crafted = |first: u64, rest: u32| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&first.to_be_bytes());
            b[28..].copy_from_slice(&rest.to_be_bytes());
            Id(b)
        };
        let mut ids: Vec<Id> = (0..20_000u32)
            .map(|i| Id::sha256(&i.to_le_bytes()))
            .collect();
        ids.extend((0..300).map(|r| crafted(0x5555_0000_0000_0000, r)));
        ids.extend((0..300).map(|r| crafted(0, r)));
        ids.extend((0..300).map(|r| crafted(u64::MAX, r)));
        ids.extend((0..300u64).map(|r| crafted(0x9000_0000_0000_0000 + r, 7)));
        let entries: Vec<PackEntry> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| PackEntry {
                kind: BlobKind::Data,
                id: *id,
                offset: 0,
                length: 1,
                raw_length: i as u32,
            })
            .collect();
        let mut ix = Index::new();
        ix.add_pack(Id::sha256(b"p"), &entries[..15_000]);
        ix.compact();
        for (i, id) in ids[..15_000].iter().enumerate() {
            assert_eq!(ix.get(id).map(|l| l.raw_length), Some(i as u32), "{id}");
        }
        // More, before and after they are merged into the sorted entries.
        ix.add_pack(Id::sha256(b"q"), &entries[15_000..]);
        for round in 0..2 {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(ix.get(id).map(|l| l.raw_length), Some(i as u32), "{id}");
            }
            if round == 0 {
                ix.compact();
            }
        }
        let absent = (20_000..40_000u32)
            .map(|i| Id::sha256(&i.to_le_bytes()))
            .chain((300..600).map(|r| crafted(0x5555_0000_0000_0000, r)))
            .chain((300..600).map(|r| crafted(u64::MAX, r)))
            .chain([crafted(0x9000_0000_0000_0000 + 300, 7), crafted(1, 0)]);
        for id in absent {
            assert!(ix.get(&id).is_none(), "{id} was never stored");
        }
    }

    #[test]
    fn marked_packs_are_readable_but_not_for_dedup_and_live_wins() {
        use cairn_format::index::IndexPack;
        let mut ix = Index::new();
        let old = Id::sha256(b"old");
        let new = Id::sha256(b"new");
        ix.add_index_pack(&IndexPack {
            id: old,
            marked: Some(5),
            blobs: (0..10).map(|i| entry(i, BlobKind::Data)).collect(),
        });
        ix.compact();
        let id3 = Id::sha256(&3u32.to_le_bytes());
        assert!(ix.get(&id3).is_some());
        assert!(!ix.contains(&id3));
        assert_eq!(ix.marked(&old), Some(5));
        // Blob 3 also in a live pack: found there, and counts.
        ix.add_pack(new, &[entry(3, BlobKind::Data)]);
        assert_eq!(ix.get(&id3).unwrap().pack, new);
        assert!(ix.contains(&id3));
        // The old pack listed live by another index file: live wins.
        ix.add_pack(old, &[]);
        assert_eq!(ix.marked(&old), None);
        assert!(ix.contains(&Id::sha256(&4u32.to_le_bytes())));
    }

    #[test]
    fn bulk_loading_agrees_with_adding() {
        use cairn_format::index::IndexPack;
        let (a, b, c) = (Id::sha256(b"a"), Id::sha256(b"b"), Id::sha256(b"c"));
        let files = [
            IndexPack {
                id: a,
                marked: Some(7),
                blobs: (0..40).map(|i| entry(i, BlobKind::Data)).collect(),
            },
            IndexPack {
                id: b,
                marked: None,
                blobs: (30..60).map(|i| entry(i, BlobKind::Tree)).collect(),
            },
            IndexPack {
                id: c,
                marked: Some(9),
                blobs: (55..70).map(|i| entry(i, BlobKind::Data)).collect(),
            },
            // `c` listed live by a later file: live wins.
            IndexPack {
                id: c,
                marked: None,
                blobs: vec![],
            },
        ];
        let mut added = Index::new();
        let mut loaded = Index::new();
        for f in &files {
            added.add_index_pack(f);
            loaded.load_index_pack(f);
        }
        added.compact();
        loaded.finish_loading();
        assert_eq!(loaded.len(), 70);
        for i in 0..70u32 {
            let id = Id::sha256(&i.to_le_bytes());
            let (x, y) = (added.get(&id).unwrap(), loaded.get(&id).unwrap());
            assert_eq!(added.contains(&id), loaded.contains(&id), "blob {i}");
            assert!(
                loaded.contains(&id) || (i < 30),
                "blob {i}: a live location exists"
            );
            if (30..40).contains(&i) {
                assert_eq!(y.pack, b, "blob {i} is located in the live pack");
            }
            assert_eq!(x.raw_length, y.raw_length);
        }
        assert_eq!(loaded.marked(&a), Some(7));
        assert_eq!(loaded.marked(&c), None);
        // Loading onto an index that already has entries takes the general path.
        loaded.load_index_pack(&IndexPack {
            id: Id::sha256(b"d"),
            marked: None,
            blobs: (65..80).map(|i| entry(i, BlobKind::Data)).collect(),
        });
        loaded.finish_loading();
        assert_eq!(loaded.len(), 80);
        assert_eq!(
            loaded.get(&Id::sha256(&66u32.to_le_bytes())).unwrap().pack,
            c,
            "first live location kept"
        );
    }

    #[test]
    fn large_additions_compact_in_place_and_stay_findable() {
        let mut ix = Index::new();
        let n = (COMPACT_AT as u32) * 3 + 123;
        for chunk in 0..(n / 1000 + 1) {
            let pack = Id::sha256(&chunk.to_le_bytes());
            let entries: Vec<PackEntry> = (chunk * 1000..((chunk + 1) * 1000).min(n))
                .map(|i| entry(i, BlobKind::Data))
                .collect();
            ix.add_pack(pack, &entries);
            assert!(
                ix.fresh.capacity() <= 2 * COMPACT_AT.max(ix.sorted.len() / 16),
                "the map is merged rather than grown once it is large"
            );
        }
        assert!(ix.sorted.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(ix.len(), n as usize);
        ix.compact();
        assert!(ix.fresh.is_empty());
        assert!(ix.sorted.windows(2).all(|w| w[0].id < w[1].id));
        for i in (0..n).step_by(97) {
            let loc = ix
                .get(&Id::sha256(&i.to_le_bytes()))
                .expect("every blob is found");
            assert_eq!(loc.pack, Id::sha256(&(i / 1000).to_le_bytes()));
            assert_eq!(loc.raw_length, i);
        }
    }
}
