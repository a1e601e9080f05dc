//! A read-only reader of restic repositories, format versions 1 and 2,
//! written from restic's published design document (`doc/design.rst`):
//! enough to list snapshots, walk their trees and read every file's data,
//! so that `cairn copy --from-repo` can bring a restic history over.
//!
//! The format, in short (each module documents its part):
//! - [`keyfile`]: `keys/*` are JSON; scrypt turns the password into a key
//!   that opens the master key.
//! - [`crypto`]: every other file (and every blob) is
//!   `IV ‖ AES-256-CTR ciphertext ‖ Poly1305-AES MAC`.
//! - [`files`]: `config`, `index/*`, `snapshots/*` are encrypted JSON;
//!   version 2 may compress them with zstd.
//! - [`index`] and [`pack`]: blobs live in packs under `data/`, located by
//!   index files (and by each pack's own header).
//! - [`snapshot`] and [`tree`]: snapshots point at a root tree; trees are
//!   JSON lists of nodes; a file's content is a list of data blob ids.
//!   Blob ids are the SHA-256 of the (uncompressed) plaintext.
//!
//! Contract: nothing here writes to the backend; every byte read is
//! authenticated or hashed before it is used; hostile bytes give an
//! [`Error`] of kind [`Kind::Corrupt`], never a panic.

pub mod crypto;
pub mod error;
pub mod files;
pub mod index;
pub mod keyfile;
pub mod pack;
mod repo;
pub mod snapshot;
pub mod tree;

use cairn_format::Id;
pub use error::{Error, Kind, Result};
pub use repo::{is_restic, Repository};

/// The two kinds of blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobType {
    Data,
    Tree,
}

impl BlobType {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every decoder of repository bytes returns an error for hostile
    /// input, never panics: valid samples, damaged at random (bytes
    /// changed, cut short, spliced), and random bytes.
    #[test]
    fn hostile_bytes_never_panic() {
        let id = Id::sha256(b"x");
        let samples: [&[u8]; 5] = [
            br#"{"nodes":[{"name":"a\\xe9\\n","type":"file","mode":420,"mtime":"2026-11-30T18:42:42.854644598Z","atime":"2026-11-30T18:42:42Z","ctime":"2026-11-30T18:42:42Z","size":6,"links":2,"linktarget_raw":"//8=","content":["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"],"extended_attributes":[{"name":"user.x","value":"dmFs"}]}]}"#,
            br#"{"time":"2026-11-30T18:42:45.633068858Z","tree":"ffa72cab528e62f28f8a0a63cec9441126c0b83b8555724c73a26a3a89eeaff5","paths":["/p"],"tags":null}"#,
            br#"{"packs":[{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[{"id":"3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce","type":"data","offset":0,"length":38,"uncompressed_length":5}]}]}"#,
            br#"{"version":2,"id":"1c1d857965be8f4a25699ff4c02a42772202bfea367eb80faccfb82e97c7d3c2","chunker_polynomial":"2dadca53f8bcc3"}"#,
            br#"{"created":"2026-11-30T18:42:45Z","kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}"#,
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for round in 0..4000 {
            let mut b = samples[round % samples.len()].to_vec();
            match round % 4 {
                0 => {
                    for _ in 0..rng.gen_range(1..4) {
                        let i = rng.gen_range(0..b.len());
                        b[i] = rng.gen();
                    }
                }
                1 => b.truncate(rng.gen_range(0..b.len())),
                2 => {
                    let i = rng.gen_range(0..b.len());
                    let other = samples[rng.gen_range(0..samples.len())];
                    b.splice(i..i, other[..rng.gen_range(0..other.len())].iter().copied());
                }
                _ => b = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect(),
            }
            if let Ok(t) = tree::Tree::parse(&id, &b) {
                for n in &t.nodes {
                    let _ = (n.name_bytes(), n.link_target(), n.xattrs(), n.posix_mode());
                    let _ = tree::nanos(&n.mtime);
                }
            }
            let _ = snapshot::Snapshot::parse(&id, &b);
            let _ = index::Index::default().add_file("i", &b);
            let _ = files::Config::parse(&b);
            let _ = files::decode("f", b.clone());
            let _ = keyfile::KeyFile::parse("k", &b);
            let _ = keyfile::KeyFile::parse("日本語のファイル", &b);
            let _ = keyfile::is_restic_key_file(&b);
            let _ = pack::parse_header(id, &b, rng.gen_range(0..1u64 << 20));
        }
    }
}
