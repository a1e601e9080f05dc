//! The repository config (`config`): version, repository id, chunker sizes.
//! Sealed with the master data key, so it cannot be read or altered without a key.

use crate::chunker::ChunkerParams;
use crate::crypto::Cipher;
use crate::{FormatError, Id, FORMAT_VERSION};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    pub version: u32,
    /// Random; identifies the repository (and lets `copy` detect "same repository").
    pub id: Id,
    pub chunker: ChunkerParams,
}

impl Config {
    pub fn new() -> Config {
        use rand::RngCore;
        let mut id = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut id);
        Config {
            version: FORMAT_VERSION,
            id: Id(id),
            chunker: ChunkerParams::DEFAULT,
        }
    }

    pub fn seal(&self, cipher: &Cipher) -> Vec<u8> {
        cipher.seal(&serde_json::to_vec(self).expect("config serializes"), None)
    }

    pub fn open(cipher: &Cipher, sealed: &[u8]) -> Result<Config, FormatError> {
        let json = cipher.open(sealed, 1 << 20)?;
        #[derive(serde::Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly =
            serde_json::from_slice(&json).map_err(|e| FormatError::corrupt("config", e))?;
        if v.version != FORMAT_VERSION {
            return Err(FormatError::Version {
                what: "repository",
                found: v.version,
                supported: FORMAT_VERSION,
            });
        }
        let c: Config =
            serde_json::from_slice(&json).map_err(|e| FormatError::corrupt("config", e))?;
        c.chunker.validate()?;
        Ok(c)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}
