//! Content-defined chunking: FastCDC (2020 variant, normalization level 1)
//! with the gear table XORed with the repository's secret seed.
//!
//! The cut points are part of the repository format (`repo-format.md` §9):
//! two backups deduplicate against each other only if they cut the same
//! data at the same places. So everything that decides a cut is owned here,
//! as data, and never taken from another crate at run time: the gear table
//! [`GEAR`] (the rule that generates it is in its docs and checked by a
//! test) and the masks [`MASKS`]. The chunk-boundary vectors of
//! `repo-format.md` §13 pin the result for a fixed input and seed.
//!
//! The cut rule, one byte at a time (what [`Chunker::find_boundary`]
//! computes two bytes per step): for a chunk starting at stream offset `s`
//! with `L` bytes left, if `L <= min` the rest is one chunk. Otherwise let
//! `R = min(L, max)` and `C = min(avg, R)`; with `h = 0`, for each `i` from
//! `min` while `i < R - R % 2`: `h = (h << 1) + G[byte s + i]` (mod 2^64,
//! `G[b] = GEAR[b] ^ seed`); the mask is `mask_s` while `i < C - C % 2`,
//! `mask_l` after; if `h & mask == 0` the chunk is `i` bytes long (byte
//! `s + i` starts the next one). Without a cut the chunk is `R` bytes long.

use crate::FormatError;
use std::io::{self, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl ChunkerParams {
    /// 512 KiB / 1 MiB / 8 MiB, as restic.
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min_size: 512 << 10,
        avg_size: 1 << 20,
        max_size: 8 << 20,
    };

    pub fn validate(&self) -> Result<(), FormatError> {
        let ok = self.min_size >= 64
            && self.min_size < self.avg_size
            && self.avg_size < self.max_size
            && self.avg_size.is_power_of_two()
            && self.min_size.is_multiple_of(2)
            && self.max_size.is_multiple_of(2)
            && self.max_size <= 16 << 20
            && self.avg_size >= 256;
        if ok {
            Ok(())
        } else {
            Err(FormatError::corrupt(
                "config",
                format!("invalid chunker sizes {self:?}"),
            ))
        }
    }
}

/// The gear table: entry `b` is the first 8 bytes, read big-endian, of the
/// MD5 digest of 64 bytes all equal to `b` (the table of the FastCDC
/// reference implementation and of the `fastcdc` crate v5). A
/// repository's chunker XORs every entry with its `chunker_seed`.
#[rustfmt::skip]
pub const GEAR: [u64; 256] = [
    0x3b5d3c7d207e37dc, 0x784d68ba91123086, 0xcd52880f882e7298, 0xeacf8e4e19fdcca7,
    0xc31f385dfbd1632b, 0x1d5f27001e25abe6, 0x83130bde3c9ad991, 0xc4b225676e9b7649,
    0xaa329b29e08eb499, 0xb67fcbd21e577d58, 0x0027baaada2acf6b, 0xe3ef2d5ac73c2226,
    0x0890f24d6ed312b7, 0xa809e036851d7c7e, 0xf0a6fe5e0013d81b, 0x1d026304452cec14,
    0x03864632648e248f, 0xcdaacf3dcd92b9b4, 0xf5e012e63c187856, 0x8862f9d3821c00b6,
    0xa82f7338750f6f8a, 0x1e583dc6c1cb0b6f, 0x7a3145b69743a7f1, 0xabb20fee404807eb,
    0xb14b3cfe07b83a5d, 0xb9dc27898adb9a0f, 0x3703f5e91baa62be, 0xcf0bb866815f7d98,
    0x3d9867c41ea9dcd3, 0x1be1fa65442bf22c, 0x14300da4c55631d9, 0xe698e9cbc6545c99,
    0x4763107ec64e92a5, 0xc65821fc65696a24, 0x76196c064822f0b7, 0x485be841f3525e01,
    0xf652bc9c85974ff5, 0xcad8352face9e3e9, 0x2a6ed1dceb35e98e, 0xc6f483badc11680f,
    0x3cfd8c17e9cf12f1, 0x89b83c5e2ea56471, 0xae665cfd24e392a9, 0xec33c4e504cb8915,
    0x3fb9b15fc9fe7451, 0xd7fd1fd1945f2195, 0x31ade0853443efd8, 0x255efc9863e1e2d2,
    0x10eab6008d5642cf, 0x46f04863257ac804, 0xa52dc42a789a27d3, 0xdaaadf9ce77af565,
    0x6b479cd53d87febb, 0x6309e2d3f93db72f, 0xc5738ffbaa1ff9d6, 0x6bd57f3f25af7968,
    0x67605486d90d0a4a, 0xe14d0b9663bfbdae, 0xb7bbd8d816eb0414, 0xdef8a4f16b35a116,
    0xe7932d85aaaffed6, 0x08161cbae90cfd48, 0x855507beb294f08b, 0x91234ea6ffd399b2,
    0xad70cf4b2435f302, 0xd289a97565bc2d27, 0x8e558437ffca99de, 0x96d2704b7115c040,
    0x0889bbcdfc660e41, 0x5e0d4e67dc92128d, 0x72a9f8917063ed97, 0x438b69d409e016e3,
    0xdf4fed8a5d8a4397, 0x00f41dcf41d403f7, 0x4814eb038e52603f, 0x9dafbacc58e2d651,
    0xfe2f458e4be170af, 0x4457ec414df6a940, 0x06e62f1451123314, 0xbd1014d173ba92cc,
    0xdef318e25ed57760, 0x9fea0de9dfca8525, 0x459de1e76c20624b, 0xaeec189617e2d666,
    0x126a2c06ab5a83cb, 0xb1321532360f6132, 0x65421503dbb40123, 0x2d67c287ea089ab3,
    0x6c93bff5a56bd6b6, 0x4ffb2036cab6d98d, 0xce7b785b1be7ad4f, 0xedb42ef6189fd163,
    0xdc905288703988f6, 0x365f9c1d2c691884, 0xc640583680d99bfe, 0x3cd4624c07593ec6,
    0x7f1ea8d85d7c5805, 0x014842d480b57149, 0x0b649bcb5a828688, 0xbcd5708ed79b18f0,
    0xe987c862fbd2f2f0, 0x982731671f0cd82c, 0xbaf13e8b16d8c063, 0x8ea3109cbd951bba,
    0xd141045bfb385cad, 0x2acbc1a0af1f7d30, 0xe6444d89df03bfdf, 0xa18cc771b8188ff9,
    0x9834429db01c39bb, 0x214add07fe086a1f, 0x8f07c19b1f6b3ff9, 0x56a297b1bf4ffe55,
    0x94d558e493c54fc7, 0x40bfc24c764552cb, 0x931a706f8a8520cb, 0x32229d322935bd52,
    0x2560d0f5dc4fefaf, 0x9dbcc48355969bb6, 0x0fd81c3985c0b56a, 0xe03817e1560f2bda,
    0xc1bb4f81d892b2d5, 0xb0c4864f4e28d2d7, 0x3ecc49f9d9d6c263, 0x51307e99b52ba65e,
    0x8af2b688da84a752, 0xf5d72523b91b20b6, 0x6d95ff1ff4634806, 0x562f21555458339a,
    0xc0ce47f889336346, 0x487823e5089b40d8, 0xe4727c7ebc6d9592, 0x5a8f7277e94970ba,
    0xfca2f406b1c8bb50, 0x5b1f8a95f1791070, 0xd304af9fc9028605, 0x5440ab7fc930e748,
    0x312d25fbca2ab5a1, 0x10f4a4b234a4d575, 0x90301d55047e7473, 0x3b6372886c61591e,
    0x293402b77c444e06, 0x451f34a4d3e97dd7, 0x3158d814d81bc57b, 0x034942425b9bda69,
    0xe2032ff9e532d9bb, 0x62ae066b8b2179e5, 0x9545e10c2f8d71d8, 0x7ff7483eb2d23fc0,
    0x00945fcebdc98d86, 0x8764bbbe99b26ca2, 0x1b1ec62284c0bfc3, 0x58e0fcc4f0aa362b,
    0x5f4abefa878d458d, 0xfd74ac2f9607c519, 0xa4e3fb37df8cbfa9, 0xbf697e43cac574e5,
    0x86f14a3f68f4cd53, 0x24a23d076f1ce522, 0xe725cd8048868cc8, 0xbf3c729eb2464362,
    0xd8f6cd57b3cc1ed8, 0x6329e52425541577, 0x62aa688ad5ae1ac0, 0x0a242566269bf845,
    0x168b1a4753aca74b, 0xf789afefff2e7e3c, 0x6c3362093b6fccdb, 0x4ce8f50bd28c09b2,
    0x006a2db95ae8aa93, 0x975b0d623c3d1a8c, 0x18605d3935338c5b, 0x5bb6f6136cad3c71,
    0x0f53a20701f8d8a6, 0xab8c5ad2e7e93c67, 0x40b5ac5127acaa29, 0x8c7bf63c2075895f,
    0x78bd9f7e014a805c, 0xb2c9e9f4f9c8c032, 0xefd6049827eb91f3, 0x2be459f482c16fbd,
    0xd92ce0c5745aaa8c, 0x0aaa8fb298d965b9, 0x2b37f92c6c803b15, 0x8c54a5e94e0f0e78,
    0x95f9b6e90c0a3032, 0xe7939faa436c7874, 0xd16bfe8f6a8a40c9, 0x44982b86263fd2fa,
    0xe285fb39f984e583, 0x779a8df72d7619d3, 0xf2d79a8de8d5dd1e, 0xd1037354d66684e2,
    0x004c82a4e668a8e5, 0x31d40a7668b044e6, 0xd70578538bd02c11, 0xdb45431078c5f482,
    0x977121bb7f6a51ad, 0x73d5ccbd34eff8dd, 0xe437a07d356e17cd, 0x47b2782043c95627,
    0x9fb251413e41d49a, 0xccd70b60652513d3, 0x1c95b31e8a1b49b2, 0xcae73dfd1bcb4c1b,
    0x34d98331b1f5b70f, 0x784e39f22338d92f, 0x18613d4a064df420, 0xf1d8dae25f0bcebe,
    0x33f77c15ae855efc, 0x3c88b3b912eb109c, 0x956a2ec96bafeea5, 0x1aa005b5e0ad0e87,
    0x5500d70527c4bb8e, 0xe36c57196421cc44, 0x13c4d286cc36ee39, 0x5654a23d818b2a81,
    0x77b1dc13d161abdc, 0x734f44de5f8d5eb5, 0x60717e174a6c89a2, 0xd47d9649266a211e,
    0x5b13a4322bb69e90, 0xf7669609f8b5fc3c, 0x21e6ac55bedcdac9, 0x9b56b62b61166dea,
    0xf48f66b939797e9c, 0x35f332f9c0e6ae9a, 0xcc733f6a9a878db0, 0x3da161e41cc108c2,
    0xb7d74ae535914d51, 0x4d493b0b11d36469, 0xce264d1dfba9741a, 0xa9d1f2dc7436dc06,
    0x70738016604c2a27, 0x231d36e96e93f3d5, 0x7666881197838d19, 0x4a2a83090aaad40c,
    0xf1e761591668b35d, 0x7363236497f730a7, 0x301080e37379dd4d, 0x502dea2971827042,
    0xc2c5eb858f32625f, 0x786afb9edfafbdff, 0xdaee0d868490b2a4, 0x617366b3268609f6,
    0xae0e35a0fe46173e, 0xd1a07de93e824f11, 0x079b8b115ea4cca8, 0x93a99274558faebb,
    0xfb1e6e22e08a03b3, 0xea635fdba3698dd0, 0xcf53659328503a5c, 0xcde3b31e6fd5d780,
    0x8e3e4221d3614413, 0xef14d0d86bf1a22c, 0xe1d830d3f16c5ddb, 0xaabd2b2a451504e1,
];

/// The FastCDC masks by `log2` of the average chunk size, from
/// [`MASK_FIRST_BITS`] on: a cut needs the hash bits under the mask to be
/// zero. Normalization level 1 uses the mask of one bit more than the
/// average size before the average (`mask_s`, harder) and of one bit less
/// after it (`mask_l`, easier).
#[rustfmt::skip]
pub const MASKS: [u64; 18] = [
    0x0000000018035100, // 7: 128 B
    0x0000001800035300, // 8: 256 B
    0x0000019000353000, // 9: 512 B
    0x0000590003530000, // 10: 1 KiB
    0x0000d90003530000, // 11: 2 KiB
    0x0000d90103530000, // 12: 4 KiB
    0x0000d90303530000, // 13: 8 KiB
    0x0000d90313530000, // 14: 16 KiB
    0x0000d90f03530000, // 15: 32 KiB
    0x0000d90303537000, // 16: 64 KiB
    0x0000d90703537000, // 17: 128 KiB
    0x0000d90707537000, // 18: 256 KiB
    0x0000d91707537000, // 19: 512 KiB
    0x0000d91747537000, // 20: 1 MiB
    0x0000d91767537000, // 21: 2 MiB
    0x0000d93767537000, // 22: 4 MiB
    0x0000d93777537000, // 23: 8 MiB
    0x0000d93777577000, // 24: 16 MiB
];

/// The `log2` of the average size that [`MASKS`]`[0]` belongs to.
pub const MASK_FIRST_BITS: u32 = 7;

/// `(mask_s, mask_l)` for an average chunk size that
/// [`ChunkerParams::validate`] accepts (a power of two, 256 B to 8 MiB).
pub fn masks(avg_size: u32) -> (u64, u64) {
    let bits = avg_size.ilog2();
    let at = |b: u32| MASKS[(b - MASK_FIRST_BITS) as usize];
    (at(bits + 1), at(bits - 1))
}

/// Finds chunk boundaries. Cheap to clone (two 2 KiB tables).
#[derive(Clone)]
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    #[cfg(test)]
    seed: u64,
    /// [`GEAR`] XORed with the seed.
    gear: Box<[u64; 256]>,
    /// `gear` shifted left by one bit, for the two-bytes-a-step scan.
    gear_ls: Box<[u64; 256]>,
}

/// The seeded tables reveal the seed: wiped with the chunker.
impl Drop for Chunker {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.gear.zeroize();
        self.gear_ls.zeroize();
    }
}

impl Chunker {
    /// A chunker for `params`, which must have passed
    /// [`ChunkerParams::validate`] (the average size selects the masks).
    pub fn new(params: ChunkerParams, seed: u64) -> Chunker {
        let (mask_s, mask_l) = masks(params.avg_size);
        let gear = Box::new(GEAR.map(|g| g ^ seed));
        let gear_ls = Box::new(gear.map(|g| g << 1));
        Chunker {
            params,
            mask_s,
            mask_l,
            #[cfg(test)]
            seed,
            gear,
            gear_ls,
        }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Look for the end of the chunk that starts at `buf[0]`, testing
    /// positions from `from` on (positions before it are known not to be
    /// boundaries). Exactly the cut points of the rule in the module docs
    /// over the whole stream; the gear hash at a position depends only on the 64
    /// bytes before it, so a scan can resume without rescanning.
    ///
    /// Returns `Ok(len)` for a chunk, or `Err(next_from)` when `buf` holds no
    /// boundary and is shorter than a max-size chunk, and the stream has
    /// more (`eof` false).
    pub fn find_boundary(&self, buf: &[u8], from: usize, eof: bool) -> Result<usize, usize> {
        let p = self.params;
        let (min, avg, max) = (
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
        );
        let len = buf.len();
        if len <= min {
            return if eof { Ok(len) } else { Err(0) };
        }
        let remaining = len.min(max);
        let limit1 = avg.min(remaining) / 2;
        let limit2 = remaining / 2;
        let (gear, gear_ls) = (&*self.gear, &*self.gear_ls);
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
        ChunkStream {
            chunker: self,
            reader,
            buf: Vec::new(),
            eof: false,
            want: first,
            scanned: 0,
        }
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
            let n = match self
                .chunker
                .find_boundary(&self.buf, self.scanned, self.eof)
            {
                Ok(n) => n.max(1),
                Err(scanned) => {
                    // No boundary in what we have yet: read more (up to a max-size chunk).
                    self.scanned = scanned;
                    self.want = (self.buf.len() + (1 << 20))
                        .min(max)
                        .max(self.buf.len() + 1);
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
        let p = ChunkerParams {
            min_size: 1024,
            avg_size: 4096,
            max_size: 16384,
        };
        let c = Chunker::new(p, 42);
        let d = data(300_000);
        let a = chunks(&c, &d, None);
        assert_eq!(a.iter().sum::<usize>(), d.len());
        assert!(a.iter().all(|&n| n <= 16384));
        assert!(a[..a.len() - 1].iter().all(|&n| n >= 1024));
        assert_eq!(
            a,
            chunks(&c, &d, Some(10)),
            "a wrong size hint changes nothing"
        );
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
        let same_suffix = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        assert!(same_prefix + same_suffix + 3 >= a.len());
    }

    /// The cut rule of the module docs, one byte at a time, as plainly as
    /// it is written there: what [`Chunker::find_boundary`] must equal. `buf`
    /// holds the rest of the stream or at least `max_size` bytes.
    fn reference_boundary(c: &Chunker, buf: &[u8]) -> usize {
        let p = c.params;
        let (min, avg, max) = (
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
        );
        let l = buf.len();
        if l <= min {
            return l;
        }
        let r = l.min(max);
        let center = avg.min(r);
        let mut h: u64 = 0;
        for (i, &b) in buf.iter().enumerate().take(r - r % 2).skip(min) {
            h = (h << 1).wrapping_add(GEAR[b as usize] ^ c.seed);
            let mask = if i < center - center % 2 {
                c.mask_s
            } else {
                c.mask_l
            };
            if h & mask == 0 {
                return i;
            }
        }
        r
    }

    #[test]
    fn gear_is_md5_of_repeated_bytes() {
        use md5::Digest;
        for (b, &g) in GEAR.iter().enumerate() {
            let digest = md5::Md5::digest([b as u8; 64]);
            let want = u64::from_be_bytes(digest[..8].try_into().unwrap());
            assert_eq!(g, want, "entry {b}");
        }
    }

    /// The owned table and masks are exactly fastcdc v5's, so the cut
    /// points of every existing repository stay where they were.
    #[test]
    fn table_and_masks_equal_fastcdc_v5() {
        use fastcdc::v2020::{get_gear_with_seed, select_masks, Normalization};
        for seed in [0, 7, 0xfedc_ba98_7654_3210] {
            let c = Chunker::new(ChunkerParams::DEFAULT, seed);
            let (gear, gear_ls) = get_gear_with_seed(seed);
            assert_eq!(&c.gear[..], &gear[..], "seed {seed}");
            assert_eq!(&c.gear_ls[..], &gear_ls[..], "seed {seed}");
        }
        for bits in 8..=23 {
            assert_eq!(
                masks(1 << bits),
                select_masks(1 << bits, Normalization::Level1),
                "avg 2^{bits}"
            );
        }
    }

    #[test]
    fn find_boundary_equals_the_rule() {
        for (p, seed) in [
            (
                ChunkerParams {
                    min_size: 1024,
                    avg_size: 4096,
                    max_size: 16384,
                },
                7,
            ),
            (
                ChunkerParams {
                    min_size: 256,
                    avg_size: 1024,
                    max_size: 2048,
                },
                0xfedc_ba98_7654_3210,
            ),
        ] {
            let c = Chunker::new(p, seed);
            let d = data(200_000);
            for start in (0..150_000).step_by(3_331) {
                for len in [
                    10, 256, 257, 1023, 1024, 1025, 2047, 3000, 4096, 4097, 9999, 16384, 16385,
                    40_000,
                ] {
                    let buf = &d[start..(start + len).min(d.len())];
                    let want = reference_boundary(&c, buf);
                    assert_eq!(
                        c.find_boundary(buf, 0, true),
                        Ok(want),
                        "start {start} len {len}"
                    );
                    // Resuming from any earlier scan point gives the same answer.
                    if let Err(from) = c.find_boundary(&buf[..buf.len() / 2], 0, false) {
                        assert_eq!(
                            c.find_boundary(buf, from, true),
                            Ok(want),
                            "resumed, start {start} len {len}"
                        );
                    }
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
