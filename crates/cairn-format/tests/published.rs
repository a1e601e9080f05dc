//! cairn's primitives against vectors their authors published, so that the
//! vectors of `repo-format.md` §13 (which cairn's own code wrote) rest on
//! something cairn did not write:
//! - scrypt: RFC 7914 §12, through [`KdfParams::derive`] (32 bytes: the
//!   first half of the RFC's 64, as PBKDF2's output blocks are independent);
//! - XChaCha20-Poly1305: draft-irtf-cfrg-xchacha-03 §A.3.1, through
//!   [`Cipher`];
//! - BLAKE3: the first cases of `test_vectors/test_vectors.json` in the
//!   BLAKE3 repository, keyed mode through [`MasterKey::blob_id`] and the
//!   extendable output that generates §13's chunker input. cairn uses no
//!   `derive_key`, so its cases would test nothing of cairn's.
//!
//! zstd has no published frame vectors; `tests/vectors/check.py` decodes
//! §13's frames with the Python `zstandard` module instead.

use cairn_format::crypto::{Cipher, KdfParams, MasterKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;

fn unhex(s: &str) -> Vec<u8> {
    let digits: String = s.split_whitespace().collect();
    hex::decode(digits).unwrap()
}

/// RFC 7914 §12: the two vectors within cairn's key file limits (the first
/// has N = 16, below log_n 10; the last needs 1 GiB).
#[test]
fn scrypt_matches_rfc_7914() {
    let cases = [
        (
            "password",
            "NaCl",
            KdfParams {
                log_n: 10,
                r: 8,
                p: 16,
            },
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
        ),
        (
            "pleaseletmein",
            "SodiumChloride",
            KdfParams {
                log_n: 14,
                r: 8,
                p: 1,
            },
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2
             d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
        ),
    ];
    for (password, salt, params, dk) in cases {
        let got = params.derive(password.as_bytes(), salt.as_bytes()).unwrap();
        assert_eq!(
            hex::encode(*got),
            hex::encode(&unhex(dk)[..32]),
            "scrypt({password:?}, {salt:?})"
        );
    }
}

/// draft-irtf-cfrg-xchacha-03 §A.3.1. The vector has associated data and
/// cairn seals with none. The keystream does not depend on it, so cairn's
/// ciphertext must be the draft's byte for byte; the tag is checked on the
/// AEAD crate cairn seals with (the whole vector, associated data
/// included), and cairn's tag must be that crate's for no associated data.
/// (libsodium recomputes every tag of §13 in `tests/vectors/check.py`.)
#[test]
fn xchacha20_poly1305_matches_the_draft() {
    let key: [u8; 32] = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        .try_into()
        .unwrap();
    let nonce: [u8; 24] = unhex("404142434445464748494a4b4c4d4e4f5051525354555657")
        .try_into()
        .unwrap();
    let aad = unhex("50515253c0c1c2c3c4c5c6c7");
    let plaintext: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you \
        only one tip for the future, sunscreen would be it.";
    let ciphertext = unhex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
         731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
         2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
         21f9664c97637da9768812f615c68b13b52e",
    );
    let tag = unhex("c0875924c1c7987947deafd8780acf49");

    // cairn's layout: nonce ‖ ciphertext ‖ tag.
    let cipher = Cipher::new(&key);
    let sealed = cipher.seal_encoded_with_nonce(plaintext, &nonce);
    assert_eq!(sealed.len(), 24 + plaintext.len() + 16);
    assert_eq!(sealed[..24], nonce);
    assert_eq!(
        hex::encode(&sealed[24..sealed.len() - 16]),
        hex::encode(&ciphertext)
    );
    assert_eq!(cipher.open_encoded(&sealed).unwrap(), plaintext);

    // The AEAD crate, with the draft's associated data: the whole vector.
    let aead = XChaCha20Poly1305::new(&key.into());
    let out = aead
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(hex::encode(out), hex::encode([ciphertext, tag].concat()));
    // The tag without associated data is the one cairn writes.
    let no_aad = aead.encrypt(&nonce.into(), plaintext).unwrap();
    assert_eq!(no_aad, sealed[24..]);
}

/// BLAKE3's `test_vectors.json`: the input is the bytes 0, 1, …, 250
/// repeated, the key `whats the Elvish word for friend`.
fn blake3_input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn blob_ids_match_blake3_keyed_hash_vectors() {
    let key = MasterKey {
        data_key: [0; 32],
        id_key: *b"whats the Elvish word for friend",
        chunker_seed: 0,
    };
    let cases = [
        (
            0,
            "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26",
        ),
        (
            1,
            "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b",
        ),
        (
            1023,
            "c951ecdf03288d0fcc96ee3413563d8a6d3589547f2c2fb36d9786470f1b9d6e",
        ),
        (
            1024,
            "75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4",
        ),
        (
            1025,
            "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69",
        ),
        (
            2049,
            "9f29700902f7c86e514ddc4df1e3049f258b2472b6dd5267f61bf13983b78dd5",
        ),
    ];
    for (len, want) in cases {
        assert_eq!(
            key.blob_id(&blake3_input(len)).to_hex(),
            want,
            "input_len {len}"
        );
    }
}

/// The extendable output (unkeyed), as §13 uses it to make the chunker's
/// input: each case's full 131 bytes.
#[test]
fn blake3_extendable_output_matches_the_vectors() {
    let cases = [
        (
            0,
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
             e00f03e7b69af26b7faaf09fcd333050338ddfe085b8cc869ca98b206c08243a
             26f5487789e8f660afe6c99ef9e0c52b92e7393024a80459cf91f476f9ffdbda
             7001c22e159b402631f277ca96f2defdf1078282314e763699a31c5363165421
             cce14d",
        ),
        (
            1,
            "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213
             c3a6cb8bf623e20cdb535f8d1a5ffb86342d9c0b64aca3bce1d31f60adfa137b
             358ad4d79f97b47c3d5e79f179df87a3b9776ef8325f8329886ba42f07fb138b
             b502f4081cbcec3195c5871e6c23e2cc97d3c69a613eba131e5f1351f3f1da78
             6545e5",
        ),
    ];
    for (len, want) in cases {
        let want = unhex(want);
        let mut out = vec![0; want.len()];
        blake3::Hasher::new()
            .update(&blake3_input(len))
            .finalize_xof()
            .fill(&mut out);
        assert_eq!(hex::encode(out), hex::encode(want), "input_len {len}");
    }
}
