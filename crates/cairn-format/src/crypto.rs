//! Keys and sealing.
//!
//! A *sealed object* is `nonce (24 bytes) ‖ XChaCha20-Poly1305 ciphertext ‖ tag (16 bytes)`.
//! The plaintext inside starts with one *encoding byte*: `0` = the rest is
//! stored as is, `1` = the rest is one zstd frame. Blobs, pack headers,
//! indexes, snapshots, the config and the master key inside a key file are
//! all sealed this way.

use crate::{FormatError, Id};
use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object adds to its payload: nonce, tag, encoding byte.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN + 1;

const ENC_RAW: u8 = 0;
const ENC_ZSTD: u8 = 1;

thread_local! {
    /// Compressed output before sealing; reused so large blobs cost no allocation.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A zstd decompression context per thread (creating one costs more than decoding a blob).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    /// [`Cipher::open_in_place`]'s buffer for decoded plaintext.
    static PLAIN_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// One zstd context per thread, reused: creating one costs more than compressing a small blob.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
}

/// The per-repository secrets, stored encrypted in every key file.
/// Overwritten with zeros when dropped (so are the [`Cipher`] made from
/// it, the key-encryption key [`KdfParams::derive`] returns and the
/// chunker's seeded tables).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct MasterKey {
    /// XChaCha20-Poly1305 key for everything sealed in the repository.
    #[serde(with = "hex32")]
    pub data_key: [u8; 32],
    /// BLAKE3 key: blob id = BLAKE3-keyed(id_key, plaintext).
    #[serde(with = "hex32")]
    pub id_key: [u8; 32],
    /// XORed into the FastCDC gear table, so chunk boundaries reveal nothing.
    pub chunker_seed: u64,
}

impl Zeroize for MasterKey {
    fn zeroize(&mut self) {
        self.data_key.zeroize();
        self.id_key.zeroize();
        self.chunker_seed.zeroize();
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for MasterKey {}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn random() -> Self {
        let mut rng = rand::thread_rng();
        let mut k = MasterKey {
            data_key: [0; 32],
            id_key: [0; 32],
            chunker_seed: 0,
        };
        rng.fill_bytes(&mut k.data_key);
        rng.fill_bytes(&mut k.id_key);
        // A zero seed would select the public gear table.
        while k.chunker_seed == 0 {
            k.chunker_seed = rng.next_u64();
        }
        k
    }

    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    pub fn cipher(&self) -> Cipher {
        Cipher::new(&self.data_key)
    }
}

/// An AEAD ready to seal and open objects; cheap to clone. Its key is
/// overwritten when dropped (chacha20poly1305 does it).
#[derive(Clone)]
pub struct Cipher(XChaCha20Poly1305);

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Cipher(XChaCha20Poly1305::new(key.into()))
    }

    /// Seal `payload` (already encoded: encoding byte first) under a random nonce.
    pub fn seal_encoded(&self, encoded: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        self.seal_encoded_with_nonce(encoded, &nonce)
    }

    /// Deterministic sealing under a given nonce, for test vectors only
    /// (`tests/vectors.rs`): a nonce must never be used twice with one key,
    /// so everything else seals under a random one.
    #[doc(hidden)]
    pub fn seal_encoded_with_nonce(&self, encoded: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let ct = self
            .0
            .encrypt(&XNonce::from(*nonce), encoded)
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Encode (compressing when `level` is set and it pays) and seal, with
    /// one copy of the payload: compressed into a per-thread scratch buffer,
    /// then encrypted in place in the output.
    pub fn seal(&self, plaintext: &[u8], level: Option<i32>) -> Vec<u8> {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let (enc, body): (u8, &[u8]) = if compress_into(plaintext, level, &mut scratch) {
                (ENC_ZSTD, &scratch)
            } else {
                (ENC_RAW, plaintext)
            };
            let mut nonce = [0u8; NONCE_LEN];
            rand::thread_rng().fill_bytes(&mut nonce);
            let mut out = Vec::with_capacity(NONCE_LEN + 1 + body.len() + TAG_LEN);
            out.extend_from_slice(&nonce);
            out.push(enc);
            out.extend_from_slice(body);
            let tag = self
                .0
                .encrypt_inout_detached(&XNonce::from(nonce), b"", (&mut out[NONCE_LEN..]).into())
                .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
            out.extend_from_slice(&tag);
            if scratch.capacity() > 2 << 20 {
                *scratch = Vec::new(); // a rare large chunk: do not keep its buffer
            }
            out
        })
    }

    /// Open a sealed object; returns the encoded payload (encoding byte first).
    pub fn open_encoded(&self, sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
        if sealed.len() < NONCE_LEN + TAG_LEN + 1 {
            return Err(FormatError::corrupt(
                "sealed object",
                format!("only {} bytes", sealed.len()),
            ));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).expect("NONCE_LEN bytes");
        self.0.decrypt(&nonce, ct).map_err(|_| FormatError::Decrypt)
    }

    /// Open and decode a sealed object whose plaintext is at most `max_len` bytes.
    pub fn open(&self, sealed: &[u8], max_len: usize) -> Result<Vec<u8>, FormatError> {
        decode(&self.open_encoded(sealed)?, max_len)
    }

    /// [`Self::open`] of a sealed object the caller gives up: it is
    /// decrypted where it is, so a stored (uncompressed) payload costs no
    /// allocation and a compressed one only its decoded buffer.
    pub fn open_owned(&self, mut sealed: Vec<u8>, max_len: usize) -> Result<Vec<u8>, FormatError> {
        let payload = self.decrypt_in_place(&mut sealed)?;
        if payload[0] != ENC_RAW {
            return decode(payload, max_len);
        }
        raw_fits(payload, max_len)?;
        sealed.truncate(sealed.len() - TAG_LEN);
        sealed.drain(..NONCE_LEN + 1);
        Ok(sealed)
    }

    /// Decrypt a sealed object where it is and return its payload
    /// (encoding byte first, at least one byte).
    fn decrypt_in_place<'a>(&self, sealed: &'a mut [u8]) -> Result<&'a mut [u8], FormatError> {
        if sealed.len() < NONCE_LEN + TAG_LEN + 1 {
            return Err(FormatError::corrupt(
                "sealed object",
                format!("only {} bytes", sealed.len()),
            ));
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let tag_at = rest.len() - TAG_LEN;
        let (payload, tag) = rest.split_at_mut(tag_at);
        let nonce = XNonce::try_from(&*nonce).expect("NONCE_LEN bytes");
        let tag = Tag::try_from(&*tag).expect("TAG_LEN bytes");
        self.0
            .decrypt_inout_detached(&nonce, b"", payload.into(), &tag)
            .map_err(|_| FormatError::Decrypt)?;
        Ok(payload)
    }

    /// Open a sealed object in place (its bytes are decrypted where they
    /// are; afterwards they are no longer the sealed object), decode it
    /// into a per-thread buffer if compressed, and hand the plaintext to
    /// `f`: no allocation or copy per object, for callers that only look at
    /// the bytes (verification, writing into a file). `f` must not itself
    /// call `open_in_place`.
    pub fn open_in_place<R>(
        &self,
        sealed: &mut [u8],
        max_len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, FormatError> {
        let payload = self.decrypt_in_place(sealed)?;
        if payload[0] == ENC_RAW {
            raw_fits(payload, max_len)?;
            return Ok(f(&payload[1..]));
        }
        PLAIN_SCRATCH.with(|cell| {
            let mut plain = cell.borrow_mut();
            decode_into(payload, max_len, &mut plain)?;
            let result = f(&plain);
            if plain.capacity() > 4 << 20 {
                *plain = Vec::new(); // a rare large object: do not keep its buffer
            }
            Ok(result)
        })
    }
}

/// Compress `plaintext` into `out` (replacing its contents) when that makes
/// it smaller; false when it should be stored as is.
fn compress_into(plaintext: &[u8], level: Option<i32>, out: &mut Vec<u8>) -> bool {
    let Some(level) = level else { return false };
    if plaintext.len() < 64 || !worth_compressing(plaintext) {
        return false;
    }
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(plaintext.len()));
    let written = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut c = zstd::bulk::Compressor::new(level).ok()?;
            // The content size bounds decoding; a checksum would be redundant with the AEAD tag.
            c.include_contentsize(true).ok()?;
            c.include_checksum(false).ok()?;
            *slot = Some((level, c));
        }
        slot.as_mut()?.1.compress_to_buffer(plaintext, out).ok()
    });
    matches!(written, Some(n) if n < plaintext.len())
}

/// Prefix the encoding byte, compressing with zstd at `level` when that makes
/// the payload smaller.
pub fn encode(plaintext: &[u8], level: Option<i32>) -> Vec<u8> {
    let mut compressed = Vec::new();
    let (enc, body): (u8, &[u8]) = if compress_into(plaintext, level, &mut compressed) {
        (ENC_ZSTD, &compressed)
    } else {
        (ENC_RAW, plaintext)
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(enc);
    out.extend_from_slice(body);
    out
}

/// A quick look at a sample: random-looking data (already compressed media,
/// encrypted archives) is stored raw without spending zstd's time on it.
fn worth_compressing(data: &[u8]) -> bool {
    const SAMPLE: usize = 16 * 1024;
    if data.len() < 4 * SAMPLE {
        return true;
    }
    // Byte histogram of three samples; random data has ~uniform counts.
    let mut counts = [0u32; 256];
    let mid = data.len() / 2 - SAMPLE / 2;
    for part in [
        &data[..SAMPLE],
        &data[mid..mid + SAMPLE],
        &data[data.len() - SAMPLE..],
    ] {
        for &b in part {
            counts[b as usize] += 1;
        }
    }
    let n = (3 * SAMPLE) as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy < 7.9
}

/// A stored (uncompressed) payload, encoding byte first, is at most `max_len` bytes.
fn raw_fits(payload: &[u8], max_len: usize) -> Result<(), FormatError> {
    if payload.len() - 1 > max_len {
        return Err(FormatError::corrupt(
            "sealed object",
            "payload larger than expected",
        ));
    }
    Ok(())
}

/// Undo [`encode`]. `max_len` bounds the decoded size (hostile input).
pub fn decode(encoded: &[u8], max_len: usize) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    decode_into(encoded, max_len, &mut out)?;
    Ok(out)
}

/// [`decode`] into `out`, replacing its contents.
fn decode_into(encoded: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
    out.clear();
    match encoded.first() {
        Some(&ENC_RAW) => {
            raw_fits(encoded, max_len)?;
            out.extend_from_slice(&encoded[1..]);
            Ok(())
        }
        Some(&ENC_ZSTD) => {
            let frame = &encoded[1..];
            let size = zstd::zstd_safe::get_frame_content_size(frame)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    FormatError::corrupt("compressed payload", "zstd frame without content size")
                })?;
            if size > max_len as u64 {
                return Err(FormatError::corrupt(
                    "compressed payload",
                    format!("claims {size} bytes, at most {max_len} expected"),
                ));
            }
            out.reserve(size as usize);
            DECOMPRESSOR.with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| FormatError::corrupt("compressed payload", e))?,
                    );
                }
                let d = slot.as_mut().expect("just set");
                d.decompress_to_buffer(frame, out)
                    .map_err(|e| FormatError::corrupt("compressed payload", e))
            })?;
            if out.len() as u64 != size {
                return Err(FormatError::corrupt(
                    "compressed payload",
                    "decoded size differs from the frame header",
                ));
            }
            Ok(())
        }
        Some(other) => Err(FormatError::corrupt(
            "sealed object",
            format!("unknown encoding {other}"),
        )),
        None => Err(FormatError::corrupt("sealed object", "empty payload")),
    }
}

/// scrypt cost parameters, as stored in a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl KdfParams {
    /// Release default: N = 2^14, r = 8 (16 MiB of memory), p = 4: the work
    /// of N = 2^15, p = 2 (~0.2 s here) in half the memory, so opening a
    /// repository never costs more memory than the backup itself.
    pub const DEFAULT: KdfParams = KdfParams {
        log_n: 14,
        r: 8,
        p: 4,
    };
    /// For tests only: milliseconds instead of a fraction of a second.
    pub const INSECURE_TEST: KdfParams = KdfParams {
        log_n: 10,
        r: 8,
        p: 1,
    };

    /// The most memory one derivation may take: 128 · r · 2^log_n bytes.
    /// 16 times the default's; a planted key file asking for more would
    /// make every command fail to allocate.
    pub const MAX_MEMORY: u64 = 256 << 20;
    /// The most work one derivation may take, counted as memory · p: 16
    /// times the default's (about 3 s here). Bounds the time a key file can
    /// cost before its password is known to be wrong.
    pub const MAX_WORK: u64 = 1 << 30;

    /// Bytes of memory scrypt needs with these parameters.
    pub fn memory(&self) -> u64 {
        128u64
            .saturating_mul(u64::from(self.r))
            .saturating_mul(1u64.checked_shl(u32::from(self.log_n)).unwrap_or(u64::MAX))
    }

    /// The work of one derivation, as memory · p (orders key files by cost).
    pub fn work(&self) -> u64 {
        self.memory().saturating_mul(u64::from(self.p))
    }

    /// Plausible parameters (log_n 10..=24, r and p 1..=64) within
    /// [`KdfParams::MAX_MEMORY`] and [`KdfParams::MAX_WORK`].
    pub fn validate(&self) -> Result<(), FormatError> {
        if !(10..=24).contains(&self.log_n)
            || self.r == 0
            || self.r > 64
            || self.p == 0
            || self.p > 64
        {
            return Err(FormatError::corrupt(
                "key file",
                format!("implausible scrypt parameters {self:?}"),
            ));
        }
        if self.memory() > Self::MAX_MEMORY || self.work() > Self::MAX_WORK {
            return Err(FormatError::corrupt(
                "key file",
                format!(
                    "scrypt parameters log_n {} r {} p {} need {} MiB and {} MiB of work, over the limits of {} MiB and {} MiB",
                    self.log_n,
                    self.r,
                    self.p,
                    self.memory() >> 20,
                    self.work() >> 20,
                    Self::MAX_MEMORY >> 20,
                    Self::MAX_WORK >> 20
                ),
            ));
        }
        Ok(())
    }

    /// The key-encryption key for `password`; wiped when dropped.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, FormatError> {
        self.validate()?;
        let params = scrypt::Params::new(self.log_n, self.r, self.p, 32)
            .map_err(|e| FormatError::corrupt("key file", format!("scrypt parameters: {e}")))?;
        let mut out = Zeroizing::new([0u8; 32]);
        scrypt::scrypt(password, salt, &params, &mut *out)
            .map_err(|e| FormatError::corrupt("key file", e))?;
        Ok(out)
    }
}

/// Keys as hex; the hex text is wiped too.
pub(crate) mod hex32 {
    use zeroize::Zeroizing;
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(v)))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: Zeroizing<String> = Zeroizing::new(serde::Deserialize::deserialize(d)?);
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything that holds key material wipes it when dropped.
    #[test]
    fn secrets_are_wiped_on_drop() {
        fn wiped<T: ZeroizeOnDrop>() {}
        wiped::<MasterKey>();
        wiped::<XChaCha20Poly1305>();
        wiped::<Zeroizing<[u8; 32]>>();
        // What drop does, on a key still in hand.
        let mut k = MasterKey::random();
        k.zeroize();
        assert_eq!(
            (k.data_key, k.id_key, k.chunker_seed),
            ([0; 32], [0; 32], 0)
        );
    }

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let k = MasterKey::random();
        let c = k.cipher();
        let text =
            b"hello hello hello hello hello hello hello hello hello hello hello hello".repeat(10);
        let sealed = c.seal(&text, Some(3));
        assert!(sealed.len() < text.len(), "compressible text is compressed");
        assert_eq!(c.open(&sealed, text.len()).unwrap(), text);
        for i in [0, 30, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(matches!(
                c.open(&bad, text.len()),
                Err(FormatError::Decrypt)
            ));
        }
        assert!(c.open(&sealed[..sealed.len() - 1], text.len()).is_err());
        assert!(c.open(&sealed, 10).is_err(), "size bound enforced");
        let other = MasterKey::random().cipher();
        assert!(matches!(
            other.open(&sealed, text.len()),
            Err(FormatError::Decrypt)
        ));
    }

    #[test]
    fn random_data_is_stored_raw() {
        let mut data = vec![0u8; 200_000];
        rand::thread_rng().fill_bytes(&mut data);
        let enc = encode(&data, Some(3));
        assert_eq!(enc[0], ENC_RAW);
        assert_eq!(decode(&enc, data.len()).unwrap(), data);
    }

    #[test]
    fn open_in_place_matches_open() {
        let c = MasterKey::random().cipher();
        let text = b"abcabcabcabc some text to compress ".repeat(2000);
        let mut random = vec![0u8; 300_000];
        rand::thread_rng().fill_bytes(&mut random);
        for (data, level) in [(&text, Some(3)), (&text, None), (&random, Some(3))] {
            let sealed = c.seal(data, level);
            let got = c
                .open_in_place(&mut sealed.clone(), data.len(), |p| p.to_vec())
                .unwrap();
            assert_eq!(&got, data);
            assert!(
                c.open_in_place(&mut sealed.clone(), data.len() - 1, |_| ())
                    .is_err(),
                "size bound enforced"
            );
            let mut bad = sealed.clone();
            bad[sealed.len() / 2] ^= 0x40;
            assert!(matches!(
                c.open_in_place(&mut bad, data.len(), |_| ()),
                Err(FormatError::Decrypt)
            ));
            assert!(c
                .open_in_place(&mut sealed.clone()[..20], data.len(), |_| ())
                .is_err());
            // The owned variant: same plaintext, same checks.
            assert_eq!(&c.open_owned(sealed.clone(), data.len()).unwrap(), data);
            assert!(c.open_owned(sealed.clone(), data.len() - 1).is_err());
            assert!(matches!(
                c.open_owned(bad, data.len()),
                Err(FormatError::Decrypt)
            ));
            assert!(c.open_owned(sealed[..20].to_vec(), data.len()).is_err());
        }
    }
}
