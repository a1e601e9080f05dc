//! Index files (`index/<sha256>`): which blobs are in which pack.
//!
//! Sealed, zstd-compressed. Plaintext: magic `CAIRNIDX`, version (u32 LE),
//! pack count (u32 LE), then per pack: pack id (32 bytes), the time prune
//! marked the pack for deletion (i64 LE, Unix seconds; 0 = in use), blob
//! count (u32 LE), and per blob 45 bytes: kind (u8), blob id (32), offset (u32 LE),
//! sealed length (u32 LE), plaintext length (u32 LE).

use crate::pack::PackEntry;
use crate::{BlobKind, FormatError, Id};

pub const INDEX_MAGIC: &[u8; 8] = b"CAIRNIDX";
pub const INDEX_VERSION: u32 = 1;
const ENTRY_LEN: usize = 45;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<IndexPack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPack {
    pub id: Id,
    /// When prune marked this pack for deletion (Unix seconds), or `None`
    /// for a pack in use. Blobs of a marked pack may still be read, but new
    /// snapshots must not start to depend on them.
    pub marked: Option<i64>,
    pub blobs: Vec<PackEntry>,
}

impl IndexPack {
    pub fn live(id: Id, blobs: Vec<PackEntry>) -> IndexPack {
        IndexPack {
            id,
            marked: None,
            blobs,
        }
    }
}

impl IndexFile {
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + self.packs.len() * 44 + self.blob_count() * ENTRY_LEN);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            out.extend_from_slice(&p.id.0);
            out.extend_from_slice(&p.marked.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&(p.blobs.len() as u32).to_le_bytes());
            for b in &p.blobs {
                out.push(b.kind.code());
                out.extend_from_slice(&b.id.0);
                out.extend_from_slice(&b.offset.to_le_bytes());
                out.extend_from_slice(&b.length.to_le_bytes());
                out.extend_from_slice(&b.raw_length.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(data: &[u8]) -> Result<IndexFile, FormatError> {
        let mut r = Reader { data, pos: 0 };
        if r.take(8)? != INDEX_MAGIC {
            return Err(FormatError::corrupt("index", "bad magic"));
        }
        let version = r.u32()?;
        if version != INDEX_VERSION {
            return Err(FormatError::Version {
                what: "index",
                found: version,
                supported: INDEX_VERSION,
            });
        }
        let npacks = r.u32()? as usize;
        let mut packs = Vec::with_capacity(npacks.min(data.len() / 44));
        for _ in 0..npacks {
            let id = Id::from_slice(r.take(32)?).unwrap();
            let marked = i64::from_le_bytes(r.take(8)?.try_into().unwrap());
            let n = r.u32()? as usize;
            if n > (data.len() - r.pos) / ENTRY_LEN {
                return Err(FormatError::corrupt("index", "blob count exceeds the file"));
            }
            let mut blobs = Vec::with_capacity(n);
            for _ in 0..n {
                let kind = BlobKind::from_code(r.take(1)?[0])?;
                let bid = Id::from_slice(r.take(32)?).unwrap();
                blobs.push(PackEntry {
                    kind,
                    id: bid,
                    offset: r.u32()?,
                    length: r.u32()?,
                    raw_length: r.u32()?,
                });
            }
            packs.push(IndexPack {
                id,
                marked: (marked != 0).then_some(marked),
                blobs,
            });
        }
        if r.pos != data.len() {
            return Err(FormatError::corrupt("index", "trailing bytes"));
        }
        Ok(IndexFile { packs })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| FormatError::corrupt("index", "truncated"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip_and_truncation() {
        let f = IndexFile {
            packs: vec![IndexPack {
                id: Id::sha256(b"p"),
                marked: Some(1_700_000_000),
                blobs: vec![
                    PackEntry {
                        kind: BlobKind::Data,
                        id: Id::sha256(b"a"),
                        offset: 0,
                        length: 50,
                        raw_length: 9,
                    },
                    PackEntry {
                        kind: BlobKind::Tree,
                        id: Id::sha256(b"b"),
                        offset: 50,
                        length: 70,
                        raw_length: 30,
                    },
                ],
            }],
        };
        let enc = f.encode();
        assert_eq!(IndexFile::decode(&enc).unwrap(), f);
        for cut in 0..enc.len() {
            assert!(IndexFile::decode(&enc[..cut]).is_err());
        }
    }
}
