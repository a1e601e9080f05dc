//! Deterministic test data, generated fast enough to stream gigabytes.

use std::io::{Read, Write};
use std::path::Path;

/// xoshiro256** seeded through splitmix64: fast, deterministic, and good
/// enough that its output does not compress.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Incompressible bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    /// Text-like bytes with about 3 bits of entropy each: they compress to
    /// well under half, yet never repeat (so they do not deduplicate).
    pub fn fill_compressible(&mut self, buf: &mut [u8]) {
        const ALPHABET: &[u8; 8] = b"aeiou \n;";
        let mut chunks = buf.chunks_exact_mut(16);
        for c in &mut chunks {
            let mut r = self.next_u64();
            for b in c.iter_mut() {
                *b = ALPHABET[(r & 7) as usize];
                r >>= 4;
            }
        }
        let mut r = self.next_u64();
        for b in chunks.into_remainder() {
            *b = ALPHABET[(r & 7) as usize];
            r >>= 4;
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Write `size` bytes to `path`, in 1 MiB pieces, from `fill`.
fn write_with(path: &Path, size: u64, mut fill: impl FnMut(&mut [u8])) {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())),
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.into_inner().unwrap().sync_all().ok();
}

/// A file of incompressible bytes.
pub fn random_file(path: &Path, size: u64, seed: u64) {
    let mut r = Rng::new(seed);
    write_with(path, size, |b| r.fill(b));
}

/// A file of compressible (but not repetitive) bytes.
pub fn compressible_file(path: &Path, size: u64, seed: u64) {
    let mut r = Rng::new(seed);
    write_with(path, size, |b| r.fill_compressible(b));
}

/// A reader of `len` bytes of mixed data: blocks of 64 KiB to 4 MiB,
/// each either random or compressible, chosen by the seed. Deterministic,
/// and as fast as memory allows.
pub struct MixedStream {
    rng: Rng,
    left: u64,
    block_left: u64,
    random: bool,
}

impl MixedStream {
    pub fn new(seed: u64, len: u64) -> MixedStream {
        MixedStream {
            rng: Rng::new(seed),
            left: len,
            block_left: 0,
            random: true,
        }
    }
}

impl Read for MixedStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.block_left == 0 {
            self.block_left = (64 << 10) + self.rng.below(4 << 20);
            self.random = self.rng.below(3) == 0;
        }
        let n = (buf.len() as u64).min(self.left).min(self.block_left) as usize;
        if self.random {
            self.rng.fill(&mut buf[..n]);
        } else {
            self.rng.fill_compressible(&mut buf[..n]);
        }
        self.left -= n as u64;
        self.block_left -= n as u64;
        Ok(n)
    }
}

/// Copy a reader to a writer in 1 MiB pieces, returning (bytes, BLAKE3 hex).
pub fn copy_hashing(mut r: impl Read, mut w: impl Write) -> std::io::Result<(u64, String)> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((total, h.finalize().to_hex().to_string()))
}
