//! restic pack files (`data/<xy>/<id>`):
//! `blob₁ ‖ … ‖ blobₙ ‖ encrypted header ‖ header length (u32 LE)`.
//!
//! Each blob is encrypted on its own. The decrypted header lists the
//! blobs in order, one entry each:
//!
//! | type byte | meaning | then |
//! |---|---|---|
//! | 0 | data blob | encrypted length (u32 LE), SHA-256 of the plaintext |
//! | 1 | tree blob | the same |
//! | 2 | compressed data blob | encrypted length, plaintext length (u32 LE each), SHA-256 |
//! | 3 | compressed tree blob | the same |
//!
//! Offsets follow from the lengths: the first blob starts at 0. The
//! compressed types exist only in format version 2. The reader uses the
//! index to find blobs; the header lists what a pack holds when the index
//! does not (and lets a test check the index against the packs).

use crate::error::{Error, Result};
use crate::index::Location;
use crate::{BlobType, Id};

/// One blob as a pack header lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedBlob {
    pub kind: BlobType,
    pub id: Id,
    pub location: Location,
}

/// Parse a decrypted pack header of pack `pack` whose blobs end at
/// `blobs_end` (where the encrypted header starts).
pub fn parse_header(pack: Id, header: &[u8], blobs_end: u64) -> Result<Vec<PackedBlob>> {
    let what = || format!("restic pack {}", pack.short());
    let mut out = Vec::new();
    let mut rest = header;
    let mut offset = 0u64;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as u64;
    while let Some(&t) = rest.first() {
        let (kind, compressed) = match t {
            0 => (BlobType::Data, false),
            1 => (BlobType::Tree, false),
            2 => (BlobType::Data, true),
            3 => (BlobType::Tree, true),
            _ => {
                return Err(Error::corrupt(
                    what(),
                    format!("unknown blob type {t} in the header"),
                ))
            }
        };
        let entry = if compressed { 41 } else { 37 };
        if rest.len() < entry {
            return Err(Error::corrupt(what(), "header ends inside an entry"));
        }
        let length = u32_at(rest, 1);
        let uncompressed_length = compressed.then(|| u32_at(rest, 5));
        let id = Id::from_slice(&rest[entry - 32..entry]).expect("32 bytes");
        out.push(PackedBlob {
            kind,
            id,
            location: Location {
                pack,
                offset,
                length,
                uncompressed_length,
            },
        });
        offset += length;
        rest = &rest[entry..];
    }
    if offset > blobs_end {
        return Err(Error::corrupt(
            what(),
            format!("header lists {offset} bytes of blobs, the pack has {blobs_end}"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_entry_type_and_refuses_bad_headers() {
        let mut h = Vec::new();
        h.push(0);
        h.extend(100u32.to_le_bytes());
        h.extend([1u8; 32]);
        h.push(3);
        h.extend(50u32.to_le_bytes());
        h.extend(400u32.to_le_bytes());
        h.extend([2u8; 32]);
        let pack = Id::sha256(b"p");
        let blobs = parse_header(pack, &h, 150).unwrap();
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0].kind, BlobType::Data);
        assert_eq!(blobs[0].location.offset, 0);
        assert_eq!(blobs[0].location.uncompressed_length, None);
        assert_eq!(blobs[1].kind, BlobType::Tree);
        assert_eq!(blobs[1].id.0, [2u8; 32]);
        assert_eq!(
            (blobs[1].location.offset, blobs[1].location.length),
            (100, 50)
        );
        assert_eq!(blobs[1].location.uncompressed_length, Some(400));
        assert!(
            parse_header(pack, &h, 149).is_err(),
            "past the pack's blobs"
        );
        assert!(parse_header(pack, &h[..h.len() - 1], 150).is_err());
        let mut bad = h.clone();
        bad[0] = 4;
        assert!(parse_header(pack, &bad, 150).is_err());
        assert!(parse_header(pack, &[], 0).unwrap().is_empty());
    }
}
