//! restic's encryption: AES-256 in counter mode, authenticated with
//! Poly1305-AES.
//!
//! An encrypted object is `IV (16 bytes) ‖ ciphertext ‖ MAC (16 bytes)`.
//! The IV is both the counter block for AES-256-CTR (a 128-bit big-endian
//! counter) and the nonce of Poly1305-AES: the MAC is Poly1305 over the
//! ciphertext alone, with the key `r ‖ AES-128_k(IV)` (`r` clamped as the
//! Poly1305 paper says; the `poly1305` crate clamps it). A key is 64
//! bytes: the AES-256 key, then `k` (16) and `r` (16) of the MAC.
//!
//! The MAC is checked, in constant time, before anything is decrypted.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};

/// IV and MAC: what encryption adds to a plaintext.
pub const OVERHEAD: usize = 32;

/// A restic key: the master key of a repository, or the key derived
/// from a password that opens a key file.
#[derive(Clone)]
pub struct Key {
    pub encrypt: [u8; 32],
    pub mac_k: [u8; 16],
    pub mac_r: [u8; 16],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Authentication failed: modified bytes, or another key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacMismatch;

impl Key {
    /// A key from 64 bytes: encryption key, MAC `k`, MAC `r`.
    pub fn from_bytes(b: &[u8; 64]) -> Key {
        let mut encrypt = [0; 32];
        let mut mac_k = [0; 16];
        let mut mac_r = [0; 16];
        encrypt.copy_from_slice(&b[..32]);
        mac_k.copy_from_slice(&b[32..48]);
        mac_r.copy_from_slice(&b[48..]);
        Key {
            encrypt,
            mac_k,
            mac_r,
        }
    }

    fn mac(&self, iv: &[u8; 16], ciphertext: &[u8]) -> [u8; 16] {
        let aes = aes::Aes128::new(&self.mac_k.into());
        let mut s = aes::Block::from(*iv);
        aes.encrypt_block(&mut s);
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&self.mac_r);
        key[16..].copy_from_slice(&s);
        poly1305::Poly1305::new(&key.into())
            .compute_unpadded(ciphertext)
            .into()
    }

    /// Check and decrypt `IV ‖ ciphertext ‖ MAC`.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, MacMismatch> {
        if sealed.len() < OVERHEAD {
            return Err(MacMismatch);
        }
        let (iv, rest) = sealed.split_at(16);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let iv: [u8; 16] = iv.try_into().expect("16 bytes");
        let want = self.mac(&iv, ct);
        // Constant time: every byte is compared.
        let diff = want.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(MacMismatch);
        }
        let mut out = ct.to_vec();
        ctr::Ctr128BE::<aes::Aes256>::new(&self.encrypt.into(), &iv.into())
            .apply_keystream(&mut out);
        Ok(out)
    }

    /// Encrypt with the IV given (tests build restic objects with it).
    pub fn seal_with_iv(&self, iv: [u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let mut ct = plaintext.to_vec();
        ctr::Ctr128BE::<aes::Aes256>::new(&self.encrypt.into(), &iv.into())
            .apply_keystream(&mut ct);
        let tag = self.mac(&iv, &ct);
        let mut out = Vec::with_capacity(ct.len() + OVERHEAD);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> Key {
        let mut b = [0u8; 64];
        for (i, x) in b.iter_mut().enumerate() {
            *x = seed.wrapping_mul(31).wrapping_add(i as u8);
        }
        Key::from_bytes(&b)
    }

    #[test]
    fn round_trip_and_every_flipped_bit_is_refused() {
        let k = key(1);
        let sealed = k.seal_with_iv([7; 16], b"restic's plaintext");
        assert_eq!(sealed.len(), 18 + OVERHEAD);
        assert_eq!(k.open(&sealed).unwrap(), b"restic's plaintext");
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open(&bad), Err(MacMismatch), "bit {i}");
        }
        assert_eq!(key(2).open(&sealed), Err(MacMismatch));
        assert_eq!(k.open(&sealed[..31]), Err(MacMismatch));
        // An empty plaintext is 32 bytes and opens.
        assert_eq!(k.open(&k.seal_with_iv([0; 16], b"")).unwrap(), b"");
    }

    /// Poly1305-AES from Bernstein's paper (appendix B, the second
    /// example): k, r, nonce, message and the resulting MAC. The
    /// ciphertext under our layout is the message.
    #[test]
    fn poly1305_aes_matches_the_papers_vector() {
        let h = |s: &str| hex::decode(s).unwrap();
        let k = Key {
            encrypt: [0; 32],
            mac_k: h("ec074c835580741701425b623235add6").try_into().unwrap(),
            mac_r: h("851fc40c3467ac0be05cc20404f3f700").try_into().unwrap(),
        };
        let nonce: [u8; 16] = h("fb447350c4e868c52ac3275cf9d4327e").try_into().unwrap();
        let msg = h("f3f6");
        assert_eq!(
            k.mac(&nonce, &msg).to_vec(),
            h("f4c633c3044fc145f84f335cb81953de")
        );
    }
}
