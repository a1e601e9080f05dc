//! The worked examples in repo-format.md §13, checked byte for byte.

use cairn_format::crypto::{encode, Cipher, KdfParams, MasterKey};
use cairn_format::keyfile::KeyFile;
use cairn_format::Id;

fn master() -> MasterKey {
    let mut k = MasterKey { data_key: [0; 32], id_key: [0; 32], chunker_seed: 0x0123_4567_89ab_cdef };
    for i in 0..32 {
        k.data_key[i] = i as u8;
        k.id_key[i] = 0x20 + i as u8;
    }
    k
}

const PASSWORD: &str = "cairn";
const KEYFILE: &str = include_str!("vectors/keyfile.json");
const BLOB_PLAINTEXT: &[u8] = b"hello cairn\n";

fn sealed_blob() -> Vec<u8> {
    master().cipher().seal_encoded_with_nonce(&encode(BLOB_PLAINTEXT, None), &[2u8; 24])
}

#[test]
fn key_file_vector_unlocks_to_the_master_key() {
    let kf = KeyFile::parse(KEYFILE.as_bytes()).unwrap();
    let mk = kf.unlock(PASSWORD.as_bytes()).unwrap();
    assert_eq!(mk.data_key, master().data_key);
    assert_eq!(mk.id_key, master().id_key);
    assert_eq!(mk.chunker_seed, master().chunker_seed);
    assert!(kf.unlock(b"wrong").is_err());
    // The key file's data is the master key sealed under scrypt(password, salt) with nonce 03…03.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let kek = KdfParams { log_n: 10, r: 8, p: 1 }.derive(PASSWORD.as_bytes(), &[1u8; 32]).unwrap();
    let json = serde_json::to_vec(&master()).unwrap();
    let sealed = Cipher::new(&kek).seal_encoded_with_nonce(&encode(&json, None), &[3u8; 24]);
    assert_eq!(kf.data, b64.encode(sealed));
}

#[test]
fn blob_vector() {
    let id = master().blob_id(BLOB_PLAINTEXT);
    let expected_id = include_str!("vectors/blob_id.txt").trim();
    let expected_sealed = include_str!("vectors/blob_sealed.hex").trim();
    if std::env::var_os("PRINT_VECTORS").is_some() {
        println!("id {id}\nsealed {}", hex::encode(sealed_blob()));
    }
    assert_eq!(id.to_hex(), expected_id);
    assert_eq!(hex::encode(sealed_blob()), expected_sealed);
    let opened = master().cipher().open(&hex::decode(expected_sealed).unwrap(), 100).unwrap();
    assert_eq!(opened, BLOB_PLAINTEXT);
    assert_eq!(Id::sha256(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
