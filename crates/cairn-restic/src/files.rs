//! restic's "unpacked" files (config, index, snapshots, locks): one
//! encrypted object each, whose plaintext is JSON.
//!
//! In format version 1 the plaintext is a JSON object or array. Version 2
//! puts an encoding byte first: `{` (0x7b) or `[` (0x5b) mean the whole
//! plaintext is JSON, as in version 1; `2` means a zstd-compressed JSON
//! document follows. Any other byte is an error.

use crate::crypto::Key;
use crate::error::{Error, Kind, Result};
use crate::Id;
use std::io::Read;

/// The largest decoded JSON document accepted (index files, snapshots).
pub const MAX_DOCUMENT: u64 = 1 << 30;

/// Decode a decrypted unpacked file into its JSON bytes.
pub fn decode(what: &str, plain: Vec<u8>) -> Result<Vec<u8>> {
    match plain.first() {
        Some(b'{') | Some(b'[') => Ok(plain),
        Some(2) => decompress(what, &plain[1..], MAX_DOCUMENT),
        Some(b) => Err(Error::corrupt(
            what,
            format!("unknown encoding byte {b:#04x}"),
        )),
        None => Err(Error::corrupt(what, "empty")),
    }
}

/// Decompress zstd data, refusing more than `limit` bytes of output.
pub fn decompress(what: &str, data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let dec = zstd::stream::read::Decoder::new(data)
        .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
    let mut out = Vec::new();
    dec.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::corrupt(
            what,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Open (check the MAC, decrypt) and decode an unpacked file.
pub fn open(key: &Key, what: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    let plain = key.open(sealed).map_err(|_| {
        Error::corrupt(
            what,
            "authentication failed: modified, truncated, or written with another key",
        )
    })?;
    decode(what, plain)
}

/// A restic repository's `config`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Config {
    /// 1 (no compression) or 2 (compression, the encoding byte).
    pub version: u32,
    /// The repository's id (random).
    pub id: Id,
    /// restic's chunker parameter (hex); cairn re-chunks, so it is unused.
    #[serde(default)]
    pub chunker_polynomial: String,
}

impl Config {
    pub fn parse(json: &[u8]) -> Result<Config> {
        let c: Config =
            serde_json::from_slice(json).map_err(|e| Error::corrupt("restic config", e))?;
        if !(1..=2).contains(&c.version) {
            return Err(Error::new(
                Kind::Unsupported,
                format!(
                    "restic repository format version {} is not supported (versions 1 and 2 are)",
                    c.version
                ),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_encodings_and_refuses_others() {
        assert_eq!(decode("x", b"{\"a\":1}".to_vec()).unwrap(), b"{\"a\":1}");
        assert_eq!(decode("x", b"[]".to_vec()).unwrap(), b"[]");
        let mut z = vec![2u8];
        z.extend(zstd::bulk::compress(b"{\"big\":true}", 3).unwrap());
        assert_eq!(decode("x", z).unwrap(), b"{\"big\":true}");
        assert!(decode("x", vec![]).is_err());
        assert!(decode("x", vec![3, 1, 2]).is_err());
        assert!(decode("x", vec![2, 1, 2, 3]).is_err(), "not zstd");
        let bomb = zstd::bulk::compress(&vec![0u8; 10_000], 3).unwrap();
        assert!(decompress("x", &bomb, 9_999).is_err());
        assert_eq!(decompress("x", &bomb, 10_000).unwrap().len(), 10_000);
    }

    #[test]
    fn config_versions() {
        let id = "1c1d857965be8f4a25699ff4c02a42772202bfea367eb80faccfb82e97c7d3c2";
        for v in [1, 2] {
            let j =
                format!(r#"{{"version":{v},"id":"{id}","chunker_polynomial":"2dadca53f8bcc3"}}"#);
            assert_eq!(Config::parse(j.as_bytes()).unwrap().version, v);
        }
        let j = format!(r#"{{"version":3,"id":"{id}"}}"#);
        assert_eq!(
            Config::parse(j.as_bytes()).unwrap_err().kind,
            Kind::Unsupported
        );
        assert!(Config::parse(b"{\"version\":2}").is_err());
    }
}
