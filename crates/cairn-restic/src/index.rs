//! restic index files (`index/<id>`): which pack holds each blob.
//!
//! ```json
//! {"supersedes": ["<id>"], "packs": [{"id": "<pack>", "blobs": [
//!   {"id": "<blob>", "type": "data", "offset": 0, "length": 38,
//!    "uncompressed_length": 511}]}]}
//! ```
//!
//! `length` is the encrypted length in the pack; `uncompressed_length` is
//! present only for compressed blobs (format version 2). restic's first
//! index format, a bare array of packs, is read too. Index files may
//! overlap; the first location seen for a blob is kept.

use crate::error::{Error, Result};
use crate::{BlobType, Id};
use std::collections::HashMap;

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub pack: Id,
    pub offset: u64,
    /// Bytes in the pack (IV, ciphertext, MAC).
    pub length: u64,
    /// The plaintext length of a compressed blob; `None`: not compressed.
    pub uncompressed_length: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum IndexJson {
    Current {
        packs: Vec<PackJson>,
    },
    /// restic's first index format: the packs alone.
    Legacy(Vec<PackJson>),
}

#[derive(serde::Deserialize)]
struct PackJson {
    id: Id,
    blobs: Vec<BlobJson>,
}

#[derive(serde::Deserialize)]
struct BlobJson {
    id: Id,
    #[serde(rename = "type")]
    kind: String,
    offset: u64,
    length: u64,
    #[serde(default)]
    uncompressed_length: Option<u64>,
}

/// The union of a repository's index files.
#[derive(Default, Debug)]
pub struct Index {
    blobs: HashMap<(BlobType, Id), Location>,
}

impl Index {
    /// Add one decoded index file (`name` for messages).
    pub fn add_file(&mut self, name: &str, json: &[u8]) -> Result<()> {
        let what = format!("restic index {}", name.get(..8).unwrap_or(name));
        let parsed: IndexJson =
            serde_json::from_slice(json).map_err(|e| Error::corrupt(&what, e))?;
        let packs = match parsed {
            IndexJson::Current { packs } | IndexJson::Legacy(packs) => packs,
        };
        for p in packs {
            for b in p.blobs {
                let kind = match b.kind.as_str() {
                    "data" => BlobType::Data,
                    "tree" => BlobType::Tree,
                    other => {
                        return Err(Error::corrupt(
                            &what,
                            format!("blob {} has unknown type {other:?}", b.id.short()),
                        ))
                    }
                };
                self.blobs.entry((kind, b.id)).or_insert(Location {
                    pack: p.id,
                    offset: b.offset,
                    length: b.length,
                    uncompressed_length: b.uncompressed_length,
                });
            }
        }
        Ok(())
    }

    pub fn get(&self, kind: BlobType, id: &Id) -> Option<Location> {
        self.blobs.get(&(kind, *id)).copied()
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c";
    const B: &str = "3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce";
    const C: &str = "9ccb846e60d90d4eb915848add7aa7ea1e4bbabfc60e573db9f7bfb2789afbae";

    #[test]
    fn reads_both_formats_first_location_wins() {
        let mut ix = Index::default();
        let cur = format!(
            r#"{{"supersedes":["{A}"],"packs":[{{"id":"{A}","blobs":[
            {{"id":"{B}","type":"data","offset":0,"length":38}},
            {{"id":"{C}","type":"tree","offset":38,"length":112,"uncompressed_length":511}}]}}]}}"#
        );
        ix.add_file("i1", cur.as_bytes()).unwrap();
        let legacy = format!(
            r#"[{{"id":"{C}","blobs":[{{"id":"{B}","type":"data","offset":5,"length":38}}]}}]"#
        );
        ix.add_file("i2", legacy.as_bytes()).unwrap();
        let b = Id::from_hex(B).unwrap();
        let c = Id::from_hex(C).unwrap();
        let lb = ix.get(BlobType::Data, &b).unwrap();
        assert_eq!(
            (lb.pack.to_hex(), lb.offset, lb.length),
            (A.to_string(), 0, 38)
        );
        assert_eq!(
            ix.get(BlobType::Tree, &c).unwrap().uncompressed_length,
            Some(511)
        );
        assert!(ix.get(BlobType::Tree, &b).is_none());
        assert_eq!(ix.len(), 2);
        assert!(ix.add_file("i3", b"{\"packs\":[{\"id\":\"zz\"}]}").is_err());
        let bad_type = cur.replace("\"tree\"", "\"lock\"");
        assert!(ix.add_file("i4", bad_type.as_bytes()).is_err());
    }
}
