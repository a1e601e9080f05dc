//! XChaCha20-Poly1305 as cairn builds it (chacha20's AVX-512 backend on
//! CPUs that have it, see `.cargo/config.toml`) against the previous
//! chacha20poly1305 release, which has no AVX-512 code: the same key,
//! nonce and message must give the same sealed bytes, for every length
//! around the 16-block (1 KiB) steps the wide backend works in and for
//! blob-sized messages. The published vectors are too short to reach the
//! wide code.

use cairn_format::crypto::{Cipher, NONCE_LEN, TAG_LEN};
use chacha20poly1305_0_10::aead::{Aead, KeyInit};
use rand::{Rng, RngCore};

fn reference(key: &[u8; 32], nonce: &[u8; NONCE_LEN], msg: &[u8]) -> Vec<u8> {
    let c = chacha20poly1305_0_10::XChaCha20Poly1305::new(key.into());
    let ct = c
        .encrypt(chacha20poly1305_0_10::XNonce::from_slice(nonce), msg)
        .unwrap();
    [&nonce[..], &ct].concat()
}

#[test]
fn sealing_agrees_with_the_previous_release_at_every_length() {
    let mut rng = rand::thread_rng();
    let mut lengths: Vec<usize> = (0..=4200).collect();
    lengths.extend([64 << 10, (1 << 20) + 13, (8 << 20) - 1]);
    for _ in 0..20 {
        lengths.push(rng.gen_range(1..3 << 20));
    }
    for len in lengths {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        let mut msg = vec![0u8; len];
        rng.fill_bytes(&mut msg);
        let cipher = Cipher::new(&key);
        let sealed = cipher.seal_encoded_with_nonce(&msg, &nonce);
        let expected = reference(&key, &nonce, &msg);
        assert_eq!(sealed.len(), NONCE_LEN + len + TAG_LEN);
        assert!(sealed == expected, "{len} bytes: sealed bytes differ");
        // And back: the in-place opening (restore's and check's path).
        let mut opened = None;
        if len > 0 {
            let mut encoded = vec![0u8];
            encoded.extend_from_slice(&msg);
            let mut sealed = reference(&key, &nonce, &encoded);
            cipher
                .open_in_place(&mut sealed, len, |p| opened = Some(p.to_vec()))
                .unwrap();
            assert!(
                opened.as_deref() == Some(&msg[..]),
                "{len} bytes: opened bytes differ"
            );
        }
    }
}
