//! Prints the test vectors of repo-format.md §13 (run: cargo run -p cairn-format --example gen_vectors).
use base64::Engine;
use cairn_format::crypto::{encode, Cipher, KdfParams, MasterKey};

fn main() {
    let mut k = MasterKey { data_key: [0; 32], id_key: [0; 32], chunker_seed: 0x0123_4567_89ab_cdef };
    for i in 0..32 {
        k.data_key[i] = i as u8;
        k.id_key[i] = 0x20 + i as u8;
    }
    let params = KdfParams { log_n: 10, r: 8, p: 1 };
    let kek = params.derive(b"cairn", &[1u8; 32]).unwrap();
    let json = serde_json::to_vec(&k).unwrap();
    let sealed = Cipher::new(&kek).seal_encoded_with_nonce(&encode(&json, None), &[3u8; 24]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let kf = serde_json::json!({
        "version": 1, "created": "2026-11-25T00:00:00Z", "hostname": "example", "username": "root",
        "kdf": "scrypt", "log_n": 10, "r": 8, "p": 1,
        "salt": b64.encode([1u8; 32]), "data": b64.encode(&sealed),
    });
    println!("{}", serde_json::to_string_pretty(&kf).unwrap());
    let blob = b"hello cairn\n";
    println!("{}", k.blob_id(blob));
    println!("{}", hex::encode(k.cipher().seal_encoded_with_nonce(&encode(blob, None), &[2u8; 24])));
    println!("{}", String::from_utf8(json).unwrap());
}
