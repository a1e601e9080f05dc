//! Content-defined chunking: FastCDC (2020 variant, normalization level 1)
//! with the gear table XORed with the repository's secret seed.

use crate::FormatError;
use fastcdc::v2020::{get_gear_with_seed, select_masks, Normalization};
use std::borrow::Cow;
use std::io::{self, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl ChunkerParams {
    /// 512 KiB / 1 MiB / 8 MiB, as restic.
    pub const DEFAULT: ChunkerParams = ChunkerParams { min_size: 512 << 10, avg_size: 1 << 20, max_size: 8 << 20 };

    pub fn validate(&self) -> Result<(), FormatError> {
        let ok = self.min_size >= 64
            && self.min_size < self.avg_size
            && self.avg_size < self.max_size
            && self.avg_size.is_power_of_two()
            && self.min_size % 2 == 0
            && self.max_size % 2 == 0
            && self.max_size <= 16 << 20
            && self.avg_size >= 256;
        if ok {
            Ok(())
        } else {
            Err(FormatError::corrupt("config", format!("invalid chunker sizes {self:?}")))
        }
    }
}

/// Finds chunk boundaries. Cheap to clone (the gear tables are shared copies).
#[derive(Clone)]
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    pub fn new(params: ChunkerParams, seed: u64) -> Chunker {
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Chunker { params, mask_s, mask_l, gear, gear_ls }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// fastcdc's own cut: the reference [`Chunker::find_boundary`] is tested
    /// against. Unless `buf` holds the rest of the stream, it must hold at
    /// least `max_size` bytes.
    #[cfg(test)]
    fn next_boundary(&self, buf: &[u8]) -> usize {
        let p = self.params;
        let (_, n) = fastcdc::v2020::cut_gear(
            buf,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n.max(1).min(buf.len())
    }

    /// Look for the end of the chunk that starts at `buf[0]`, testing
    /// positions from `from` on (positions before it are known not to be
    /// boundaries). Exactly the cut points of fastcdc's `cut_gear` over the
    /// whole stream; the gear hash at a position depends only on the 64
    /// bytes before it, so a scan can resume without rescanning.
    ///
    /// Returns `Ok(len)` for a chunk, or `Err(next_from)` when `buf` holds no
    /// boundary and is shorter than a max-size chunk, and the stream has
    /// more (`eof` false).
    pub fn find_boundary(&self, buf: &[u8], from: usize, eof: bool) -> Result<usize, usize> {
        let p = self.params;
        let (min, avg, max) = (p.min_size as usize, p.avg_size as usize, p.max_size as usize);
        let len = buf.len();
        if len <= min {
            return if eof { Ok(len) } else { Err(0) };
        }
        let remaining = len.min(max);
        let limit1 = avg.min(remaining) / 2;
        let limit2 = remaining / 2;
        let gear: &[u64; 256] = self.gear.as_ref().try_into().expect("256 gear entries");
        let gear_ls: &[u64; 256] = self.gear_ls.as_ref().try_into().expect("256 gear entries");
        let (mask_s, mask_l) = (self.mask_s, self.mask_l);
        let (mask_s_ls, mask_l_ls) = (mask_s << 1, mask_l << 1);
        let start = (min / 2).max(from / 2);
        let mut hash: u64 = 0;
        // Warm the hash over the 32 pairs before `start`: older bytes have shifted out.
        for index in start.saturating_sub(32).max(min / 2)..start {
            let a = index * 2;
            hash = (hash << 2).wrapping_add(gear_ls[buf[a] as usize]);
            hash = hash.wrapping_add(gear[buf[a + 1] as usize]);
        }
        let mut index = start;
        while index < limit1 {
            let a = index * 2;
            hash = (hash << 2).wrapping_add(gear_ls[buf[a] as usize]);
            if hash & mask_s_ls == 0 {
                return Ok(a);
            }
            hash = hash.wrapping_add(gear[buf[a + 1] as usize]);
            if hash & mask_s == 0 {
                return Ok(a + 1);
            }
            index += 1;
        }
        while index < limit2 {
            let a = index * 2;
            hash = (hash << 2).wrapping_add(gear_ls[buf[a] as usize]);
            if hash & mask_l_ls == 0 {
                return Ok(a);
            }
            hash = hash.wrapping_add(gear[buf[a + 1] as usize]);
            if hash & mask_l == 0 {
                return Ok(a + 1);
            }
            index += 1;
        }
        if len >= max || eof {
            Ok(remaining)
        } else {
            Err(limit2 * 2)
        }
    }

    /// Iterate over the chunks of a reader. Memory: the current chunk plus
    /// at most one read (1 MiB) beyond it.
    pub fn stream<R: Read>(&self, reader: R, size_hint: Option<u64>) -> ChunkStream<'_, R> {
        const READ: u64 = 1 << 20;
        let first = size_hint.map_or(READ, |n| (n + 1).min(READ)) as usize;
        ChunkStream { chunker: self, reader, buf: Vec::new(), eof: false, want: first, scanned: 0 }
    }
}

pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    /// Unconsumed bytes: the start of the next chunk.
    buf: Vec<u8>,
    eof: bool,
    /// Bytes to have in `buf` before looking for a boundary.
    want: usize,
    /// Positions in `buf` already known not to be boundaries.
    scanned: usize,
}

impl<R: Read> ChunkStream<'_, R> {
    fn fill(&mut self) -> io::Result<()> {
        while !self.eof && self.buf.len() < self.want {
            let need = (self.want - self.buf.len()) as u64;
            self.buf.reserve(need as usize);
            match (&mut self.reader).take(need).read_to_end(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk, owned, or `None` at the end of the stream.
    ///
    /// The boundary found does not depend on how the reader splits its
    /// data: a boundary at position *i* depends only on the bytes before *i*,
    /// so when none is found in what was read, reading more and looking
    /// again from the chunk start gives the same answer as one big read.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let max = self.chunker.params.max_size as usize;
        loop {
            self.fill()?;
            if self.buf.is_empty() {
                return Ok(None);
            }
            let n = match self.chunker.find_boundary(&self.buf, self.scanned, self.eof) {
                Ok(n) => n.max(1),
                Err(scanned) => {
                    // No boundary in what we have yet: read more (up to a max-size chunk).
                    self.scanned = scanned;
                    self.want = (self.buf.len() + (1 << 20)).min(max).max(self.buf.len() + 1);
                    continue;
                }
            };
            self.scanned = 0;
            let mut rest = Vec::with_capacity((self.buf.len() - n).max(1 << 20));
            rest.extend_from_slice(&self.buf[n..]);
            self.buf.truncate(n);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.want = self.buf.len().max(1 << 20).min(max);
            return Ok(Some(chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect()
    }

    fn chunks(c: &Chunker, d: &[u8], hint: Option<u64>) -> Vec<usize> {
        let mut s = c.stream(d, hint);
        let mut out = vec![];
        while let Some(ch) = s.next_chunk().unwrap() {
            out.push(ch.len());
        }
        out
    }

    #[test]
    fn stream_is_deterministic_and_bounded() {
        let p = ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 16384 };
        let c = Chunker::new(p, 42);
        let d = data(300_000);
        let a = chunks(&c, &d, None);
        assert_eq!(a.iter().sum::<usize>(), d.len());
        assert!(a.iter().all(|&n| n <= 16384));
        assert!(a[..a.len() - 1].iter().all(|&n| n >= 1024));
        assert_eq!(a, chunks(&c, &d, Some(10)), "a wrong size hint changes nothing");
        // A reader returning a few bytes at a time gives the same chunks.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let n = b.len().min(777).min(self.0.len());
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut st = c.stream(Trickle(&d), None);
        let mut t = vec![];
        while let Some(ch) = st.next_chunk().unwrap() {
            t.push(ch.len());
        }
        assert_eq!(a, t);
        assert_eq!(a, chunks(&c, &d, Some(d.len() as u64)));
        let other = chunks(&Chunker::new(p, 43), &d, None);
        assert_ne!(a, other, "the seed changes boundaries");
        // An insertion only changes chunks near it.
        let mut e = d.clone();
        e.splice(150_000..150_000, [1, 2, 3]);
        let b = chunks(&c, &e, None);
        let same_prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let same_suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
        assert!(same_prefix + same_suffix + 3 >= a.len());
    }

    #[test]
    fn find_boundary_equals_fastcdc() {
        let p = ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 16384 };
        let c = Chunker::new(p, 7);
        let d = data(200_000);
        for start in (0..150_000).step_by(3_331) {
            for len in [10, 1024, 1025, 3000, 4096, 4097, 9999, 16384, 16385, 40_000] {
                let buf = &d[start..(start + len).min(d.len())];
                let want = c.next_boundary(buf);
                assert_eq!(c.find_boundary(buf, 0, true), Ok(want), "start {start} len {len}");
                // Resuming from any earlier scan point gives the same answer.
                if let Err(from) = c.find_boundary(&buf[..buf.len() / 2], 0, false) {
                    assert_eq!(c.find_boundary(buf, from, true), Ok(want), "resumed, start {start} len {len}");
                }
            }
        }
    }

    #[test]
    fn empty_stream_has_no_chunks() {
        let c = Chunker::new(ChunkerParams::DEFAULT, 1);
        assert!(chunks(&c, &[], Some(0)).is_empty());
    }
}
