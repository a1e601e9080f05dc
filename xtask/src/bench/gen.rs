//! Deterministic content for the data sets: a xoshiro256++ generator and
//! fillers for text-like, random, low-entropy binary and SQL-dump-like
//! bytes. Every byte the bench writes comes from here, seeded, so the data
//! sets are the same on every run. Bump [`GEN_VERSION`] whenever any output
//! changes, so cached data sets are regenerated.
//!
//! Every filler is prefix-consistent: filling a shorter buffer with the same
//! seed gives a prefix of the longer fill.

/// Part of every data set's stamp.
pub const GEN_VERSION: u32 = 2;

/// xoshiro256++ (Blackman and Vigna), seeded through splitmix64.
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent seed for stream `stream` of `seed` (a file, a block).
pub fn seed_of(seed: u64, stream: u64) -> u64 {
    let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut x)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `[lo, hi)`: as many files of 100 B–1 KiB as of
    /// 10–100 KiB, the usual shape of real file sizes.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo.max(1) as f64).ln(), (hi.max(lo + 1) as f64).ln());
        ((a + (b - a) * self.unit()).exp() as u64).clamp(lo, hi.max(lo))
    }

    pub fn word(&mut self) -> &'static str {
        WORDS[self.index(WORDS.len())]
    }
}

/// What a file or block is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Words, punctuation, numbers and indented lines, with repeated
    /// fragments like source code has: zstd -3 leaves ~30%.
    Text,
    /// Incompressible, like already compressed media or archives.
    Random,
    /// Binary like object files: zero words, words from a small per-file
    /// vocabulary, some random words: zstd -3 leaves ~35%.
    Binary,
    /// 64 KiB blocks, each text or random.
    Mixed,
    /// SQL dump lines (`INSERT INTO ... VALUES (...)`), some with hex blobs.
    Dump,
}

/// Fills `buf` with content of `kind` determined by `seed` alone.
pub fn fill(kind: Kind, seed: u64, buf: &mut [u8]) {
    let mut rng = Rng::new(seed);
    match kind {
        Kind::Text => fill_text(&mut rng, buf),
        Kind::Random => fill_random(&mut rng, buf),
        Kind::Binary => fill_binary(&mut rng, buf),
        Kind::Dump => fill_dump(&mut rng, buf),
        Kind::Mixed => {
            for (i, block) in buf.chunks_mut(64 << 10).enumerate() {
                let kind = if rng.chance(0.5) {
                    Kind::Text
                } else {
                    Kind::Random
                };
                fill(kind, seed_of(seed, i as u64), block);
            }
        }
    }
}

fn fill_random(rng: &mut Rng, buf: &mut [u8]) {
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let rest = words.into_remainder();
    let last = rng.next_u64().to_le_bytes();
    rest.copy_from_slice(&last[..rest.len()]);
}

fn fill_binary(rng: &mut Rng, buf: &mut [u8]) {
    let vocabulary: Vec<u64> = (0..64).map(|_| rng.next_u64()).collect();
    let next_word = |rng: &mut Rng| {
        let r = rng.next_u64();
        match r & 15 {
            0..=5 => 0,
            6..=7 => r >> 40,
            8..=13 => vocabulary[(r >> 4) as usize & 63],
            _ => rng.next_u64(),
        }
    };
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&next_word(rng).to_le_bytes());
    }
    let rest = words.into_remainder();
    let last = next_word(rng).to_le_bytes();
    rest.copy_from_slice(&last[..rest.len()]);
}

/// Writes into a fixed buffer, dropping whatever does not fit.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn full(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.pos);
        self.buf[self.pos..self.pos + n].copy_from_slice(&bytes[..n]);
        self.pos += n;
    }

    /// Repeats `len` bytes from `distance` back (clamped to what exists).
    fn copy_back(&mut self, distance: usize, len: usize) {
        let distance = distance.min(self.pos);
        if distance == 0 {
            return;
        }
        for _ in 0..len {
            if self.full() {
                break;
            }
            self.buf[self.pos] = self.buf[self.pos - distance];
            self.pos += 1;
        }
    }

    fn put_num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    fn put_hex(&mut self, rng: &mut Rng, bytes: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut left = bytes;
        while left > 0 && !self.full() {
            let v = rng.next_u64();
            let mut out = [0u8; 16];
            for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                let b = (v >> (8 * i)) as u8;
                pair[0] = HEX[(b >> 4) as usize];
                pair[1] = HEX[(b & 15) as usize];
            }
            let n = left.min(8);
            self.put(&out[..2 * n]);
            left -= n;
        }
    }
}

const INDENT: &[u8; 12] = b"            ";

fn fill_text(rng: &mut Rng, buf: &mut [u8]) {
    let mut c = Cursor { buf, pos: 0 };
    while !c.full() {
        let r = rng.next_u64();
        for k in 0..4 {
            let v = (r >> (16 * k)) as usize & 0xffff;
            c.put(WORDS[v & 0xff].as_bytes());
            match (v >> 8) & 31 {
                0 | 1 => {
                    c.put(b"\n");
                    c.put(&INDENT[..4 * ((v >> 13) & 3)]);
                    // Code and logs repeat themselves: often a new line
                    // starts with a fragment seen shortly before.
                    let r = rng.next_u64();
                    if r & 1 == 0 {
                        c.copy_back(16 + (r >> 8) as usize % 4000, 12 + (r >> 32) as usize % 60);
                    }
                }
                2 => c.put(b", "),
                3 => c.put(b". "),
                4 => {
                    c.put(b" ");
                    let n = rng.next_u64();
                    c.put_num(n >> (20 + (n & 31)));
                    c.put(b" ");
                }
                5 => c.put(b" = "),
                6 => c.put(b"("),
                7 => c.put(b") "),
                8 => c.put(b"_"),
                9 => c.put(b"::"),
                _ => c.put(b" "),
            }
        }
    }
}

fn fill_dump(rng: &mut Rng, buf: &mut [u8]) {
    let mut c = Cursor { buf, pos: 0 };
    while !c.full() {
        if rng.chance(0.001) {
            c.put(b"\n--\n-- Table structure for table `");
            c.put(rng.word().as_bytes());
            c.put(b"`\n--\n\nCREATE TABLE `");
            c.put(rng.word().as_bytes());
            c.put(b"` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `name` varchar(255) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\n");
        }
        c.put(b"INSERT INTO `");
        c.put(WORDS[(rng.next_u64() & 15) as usize].as_bytes());
        c.put(b"` VALUES (");
        c.put_num(rng.next_u64() >> 40);
        c.put(b",'");
        for i in 0..2 + rng.below(6) {
            if i > 0 {
                c.put(b" ");
            }
            c.put(rng.word().as_bytes());
        }
        c.put(b"','");
        c.put(rng.word().as_bytes());
        c.put(b".");
        c.put(rng.word().as_bytes());
        c.put(b"@example.org',");
        c.put_num(rng.below(100_000));
        c.put(b".");
        c.put_num(rng.below(100));
        c.put(b",'20");
        c.put_num(10 + rng.below(15));
        c.put(b"-0");
        c.put_num(1 + rng.below(9));
        c.put(b"-1");
        c.put_num(rng.below(10));
        c.put(b" 1");
        c.put_num(rng.below(10));
        c.put(b":3");
        c.put_num(rng.below(10));
        c.put(b":0");
        c.put_num(rng.below(10));
        c.put(b"'");
        if rng.chance(0.1) {
            c.put(b",X'");
            let n = 16 + rng.below(240) as usize;
            c.put_hex(rng, n);
            c.put(b"'");
        } else {
            c.put(b",NULL");
        }
        c.put(b");\n");
    }
}

pub const WORDS: [&str; 256] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "they", "you", "were", "her", "she", "there", "one", "all", "we", "their", "been", "has",
    "when", "who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its", "about",
    "into", "than", "them", "can", "only", "other", "new", "some", "could", "time", "these", "two",
    "may", "then", "do", "first", "any", "my", "now", "such", "like", "our", "over", "man", "me",
    "even", "most", "made", "after", "also", "did", "many", "before", "must", "through", "back",
    "years", "where", "much", "your", "way", "well", "down", "should", "because", "each", "just",
    "those", "people", "how", "too", "little", "state", "good", "very", "make", "world", "still",
    "own", "see", "men", "work", "long", "get", "here", "between", "both", "life", "being",
    "under", "never", "day", "same", "another", "know", "while", "last", "might", "us", "great",
    "old", "year", "off", "come", "since", "against", "go", "came", "right", "used", "take",
    "three", "data", "file", "index", "buffer", "stream", "chunk", "block", "packet", "server",
    "client", "request", "response", "handler", "error", "value", "result", "option", "string",
    "vector", "thread", "process", "memory", "cache", "queue", "table", "record", "column", "key",
    "hash", "tree", "node", "graph", "edge", "path", "route", "config", "setting", "param",
    "module", "crate", "package", "build", "test", "bench", "debug", "release", "version",
    "update", "delete", "insert", "select", "create", "return", "struct", "enum", "trait", "impl",
    "async", "await", "future", "task", "spawn", "lock", "mutex", "channel", "sender", "receiver",
    "timeout", "retry", "backoff", "offset", "length", "size", "count", "total", "limit", "range",
    "slice", "array", "map", "set", "list", "alpha", "beta", "gamma", "delta", "epsilon", "zeta",
    "theta", "kappa", "lambda", "sigma", "omega", "north", "south", "east", "west", "river",
    "mountain", "forest", "ocean", "valley", "garden", "window", "door", "house", "street", "city",
    "country", "market", "bridge", "tower",
];

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [Kind; 5] = [
        Kind::Text,
        Kind::Random,
        Kind::Binary,
        Kind::Mixed,
        Kind::Dump,
    ];

    #[test]
    fn fillers_are_deterministic_and_prefix_consistent() {
        for kind in KINDS {
            let mut long = vec![0u8; 300_000];
            let mut again = vec![0u8; 300_000];
            fill(kind, 42, &mut long);
            fill(kind, 42, &mut again);
            assert_eq!(long, again, "{kind:?}");
            for len in [0, 1, 7, 8, 9, 4095, 65_537, 200_003] {
                let mut short = vec![0u8; len];
                fill(kind, 42, &mut short);
                assert_eq!(short[..], long[..len], "{kind:?} prefix of {len}");
            }
            let mut other = vec![0u8; 300_000];
            fill(kind, 43, &mut other);
            assert_ne!(long, other, "{kind:?} ignores its seed");
        }
    }

    #[test]
    fn text_looks_like_text() {
        let mut buf = vec![0u8; 100_000];
        fill(Kind::Text, 7, &mut buf);
        assert!(buf
            .iter()
            .all(|&b| b == b'\n' || (b' '..=b'~').contains(&b)));
        assert!(buf.iter().filter(|&&b| b == b'\n').count() > 500);
    }

    #[test]
    fn log_uniform_stays_in_range() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let v = rng.log_uniform(32, 4096);
            assert!((32..=4096).contains(&v), "{v}");
        }
    }
}
