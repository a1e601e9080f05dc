//! Reading a byte range of a file.
//!
//! A file's [`Content`] lists its blobs with the offset where each ends
//! (prefix sums of their lengths, from the index), so the blobs covering
//! a range are found by binary search and only those are fetched: reading
//! byte N of a 10 GiB file fetches one blob.
//!
//! Holes of sparse files are all-zero blobs in the repository (see
//! `repo-format.md`), read like any other (and cached once, being one blob).
//!
//! A file whose blobs add up to less than its recorded size reads as far
//! as its blobs go; a read past that is an error, never made-up bytes.

use crate::cache::BlobCache;
use crate::Result;
use cairn_repository::format::tree::Node;
use cairn_repository::{BlobLocation, Error, Repository};
use std::ops::Range;

pub struct Content {
    pub locations: Vec<BlobLocation>,
    /// `ends[i]`: the file offset just past blob `i`.
    pub ends: Vec<u64>,
    /// The size the file had (what `stat` shows).
    pub size: u64,
}

impl Content {
    /// Locate every blob of a file in the index.
    pub fn new(repo: &Repository, node: &Node) -> Result<Content> {
        let index = repo.index();
        let mut locations = Vec::with_capacity(node.content.len());
        let mut ends = Vec::with_capacity(node.content.len());
        let mut end = 0u64;
        for id in &node.content {
            let loc = index.get(id).ok_or_else(|| {
                Error::corrupt(
                    format!("data blob {}", id.short()),
                    "not in the repository index (data lost? run `cairn check`)",
                )
            })?;
            end += loc.raw_length as u64;
            locations.push(loc);
            ends.push(end);
        }
        Ok(Content {
            locations,
            ends,
            size: node.size,
        })
    }

    fn stored_len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    fn start(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// The blobs holding bytes `offset..end`.
    pub fn blobs(&self, offset: u64, end: u64) -> Range<usize> {
        let first = self.ends.partition_point(|&e| e <= offset);
        let last = self.ends.partition_point(|&e| e < end);
        first..(last + 1).min(self.ends.len()).max(first)
    }

    /// Hand the bytes at `offset..offset+len` (fewer at the end of the
    /// file) to `f`: straight from the cached blob when one blob holds
    /// them all (a sequential reader's usual case), else gathered.
    pub fn read<R>(
        &self,
        repo: &Repository,
        cache: &BlobCache,
        offset: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(f(&[]));
        }
        if end > self.stored_len() {
            return Err(Error::corrupt(
                "file contents",
                format!(
                    "{} bytes stored for a file of {} bytes",
                    self.stored_len(),
                    self.size
                ),
            ));
        }
        let blobs = self.blobs(offset, end);
        let piece = |i: usize| -> Range<usize> {
            let start = self.start(i);
            (offset.max(start) - start) as usize..(end.min(self.ends[i]) - start) as usize
        };
        if blobs.len() == 1 {
            let i = blobs.start;
            let blob = cache.get(repo, &self.locations[i])?;
            return Ok(f(&blob[piece(i)]));
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for i in blobs {
            let blob = cache.get(repo, &self.locations[i])?;
            out.extend_from_slice(&blob[piece(i)]);
        }
        Ok(f(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_repository::format::{BlobKind, Id};

    fn content(lens: &[u64]) -> Content {
        let mut ends = Vec::new();
        let mut e = 0;
        for l in lens {
            e += l;
            ends.push(e);
        }
        Content {
            locations: lens
                .iter()
                .map(|&l| BlobLocation {
                    id: Id::default(),
                    kind: BlobKind::Data,
                    pack: Id::default(),
                    offset: 0,
                    length: l as u32,
                    raw_length: l as u32,
                })
                .collect(),
            ends,
            size: e,
        }
    }

    #[test]
    fn ranges_find_exactly_the_covering_blobs() {
        let c = content(&[10, 20, 5, 100]);
        assert_eq!(c.blobs(0, 1), 0..1);
        assert_eq!(c.blobs(9, 10), 0..1);
        assert_eq!(c.blobs(9, 11), 0..2);
        assert_eq!(c.blobs(10, 30), 1..2);
        assert_eq!(c.blobs(29, 36), 1..4);
        assert_eq!(c.blobs(35, 135), 3..4);
        assert_eq!(c.start(3), 35);
        let empty = content(&[]);
        assert_eq!(empty.blobs(0, 0), 0..0);
    }
}
