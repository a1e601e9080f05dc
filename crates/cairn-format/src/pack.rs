//! Pack files: `blob₁ ‖ blob₂ ‖ … ‖ sealed header ‖ header length (u32 LE)`.
//!
//! Each blob is a sealed object. The header, sealed without compression,
//! is a version byte (1) followed by one 41-byte entry per blob, in pack
//! order: kind (u8), sealed length (u32 LE), plaintext length (u32 LE), blob
//! id (32 bytes). Offsets are implied: blob *k* starts where blob *k−1* ends.

use crate::crypto::{Cipher, SEAL_OVERHEAD};
use crate::{BlobKind, FormatError, Id};

pub const PACK_HEADER_VERSION: u8 = 1;
pub const HEADER_ENTRY_LEN: usize = 41;
/// Largest plaintext blob accepted anywhere (the chunker's maximum is 16 MiB; trees may be larger).
pub const MAX_BLOB_LEN: usize = 1 << 30;

/// Where a blob sits in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: Id,
    pub offset: u32,
    /// Sealed length in the pack.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// Builds a pack in memory.
#[derive(Default)]
pub struct PackWriter {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) {
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.buf.len() as u32,
            length: sealed.len() as u32,
            raw_length,
        });
        self.buf.extend_from_slice(sealed);
    }

    pub fn len(&self) -> usize {
        self.buf.len() + self.entries.len() * HEADER_ENTRY_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// The finished pack bytes, their SHA-256 (the pack's name), and its entries.
    pub fn finish(mut self, cipher: &Cipher) -> (Vec<u8>, Id, Vec<PackEntry>) {
        self.buf
            .extend_from_slice(&header_bytes(cipher, &self.entries));
        let id = Id::sha256(&self.buf);
        (self.buf, id, self.entries)
    }
}

/// What ends a pack: the sealed header listing `entries` and its length.
pub fn header_bytes(cipher: &Cipher, entries: &[PackEntry]) -> Vec<u8> {
    let mut header = Vec::with_capacity(2 + entries.len() * HEADER_ENTRY_LEN);
    header.push(0); // encoding byte: raw
    header.push(PACK_HEADER_VERSION);
    for e in entries {
        header.push(e.kind.code());
        header.extend_from_slice(&e.length.to_le_bytes());
        header.extend_from_slice(&e.raw_length.to_le_bytes());
        header.extend_from_slice(&e.id.0);
    }
    let mut out = cipher.seal_encoded(&header);
    let n = out.len() as u32;
    out.extend_from_slice(&n.to_le_bytes());
    out
}

/// Length of the sealed header, from the pack's last 4 bytes.
pub fn header_length(pack_len: u64, trailer: &[u8]) -> Result<u32, FormatError> {
    let t: [u8; 4] = trailer
        .try_into()
        .map_err(|_| FormatError::corrupt("pack", "trailer is not 4 bytes"))?;
    let n = u32::from_le_bytes(t);
    if (n as u64) + 4 > pack_len || (n as usize) < SEAL_OVERHEAD + 1 {
        return Err(FormatError::corrupt(
            "pack",
            format!("header length {n} does not fit a pack of {pack_len} bytes"),
        ));
    }
    Ok(n)
}

/// Decrypt and parse a pack header; checks that the blobs exactly fill the pack.
pub fn parse_header(
    cipher: &Cipher,
    sealed_header: &[u8],
    pack_len: u64,
) -> Result<Vec<PackEntry>, FormatError> {
    let plain = cipher.open(sealed_header, sealed_header.len())?;
    let (&version, body) = plain
        .split_first()
        .ok_or_else(|| FormatError::corrupt("pack header", "empty"))?;
    if version != PACK_HEADER_VERSION {
        return Err(FormatError::Version {
            what: "pack header",
            found: version as u32,
            supported: PACK_HEADER_VERSION as u32,
        });
    }
    if body.len() % HEADER_ENTRY_LEN != 0 {
        return Err(FormatError::corrupt(
            "pack header",
            "length is not a whole number of entries",
        ));
    }
    let mut offset: u64 = 0;
    let mut out = Vec::with_capacity(body.len() / HEADER_ENTRY_LEN);
    for e in body.chunks_exact(HEADER_ENTRY_LEN) {
        let length = u32::from_le_bytes(e[1..5].try_into().unwrap());
        let raw_length = u32::from_le_bytes(e[5..9].try_into().unwrap());
        out.push(PackEntry {
            kind: BlobKind::from_code(e[0])?,
            length,
            raw_length,
            id: Id::from_slice(&e[9..41]).unwrap(),
            offset: offset as u32,
        });
        offset += length as u64;
    }
    let expected = pack_len - 4 - sealed_header.len() as u64;
    if offset != expected {
        return Err(FormatError::corrupt(
            "pack header",
            format!("blobs cover {offset} bytes, the pack holds {expected}"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn pack_roundtrip() {
        let k = MasterKey::random();
        let c = k.cipher();
        let mut w = PackWriter::new();
        let blobs: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![7; 5000], b"three".to_vec()];
        for b in &blobs {
            w.add(
                BlobKind::Data,
                k.blob_id(b),
                &c.seal(b, Some(3)),
                b.len() as u32,
            );
        }
        let (bytes, id, entries) = w.finish(&c);
        assert_eq!(id, Id::sha256(&bytes));
        let n = header_length(bytes.len() as u64, &bytes[bytes.len() - 4..]).unwrap() as usize;
        let parsed = parse_header(
            &c,
            &bytes[bytes.len() - 4 - n..bytes.len() - 4],
            bytes.len() as u64,
        )
        .unwrap();
        assert_eq!(parsed, entries);
        for (e, b) in parsed.iter().zip(&blobs) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(&c.open(sealed, e.raw_length as usize).unwrap(), b);
        }
        assert!(header_length(10, &[200, 0, 0, 0]).is_err());
        assert!(parse_header(
            &c,
            &bytes[bytes.len() - 4 - n..bytes.len() - 4],
            bytes.len() as u64 + 1
        )
        .is_err());
    }
}
