//! Key files (`keys/<sha256>`): a password, through scrypt, unlocks the master key.

use crate::config::Config;
use crate::crypto::{Cipher, KdfParams, MasterKey};
use crate::FormatError;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

/// Version of the key file document.
pub const KEYFILE_VERSION: u32 = 1;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub created: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    /// Always "scrypt" in version 1.
    pub kdf: String,
    #[serde(flatten)]
    pub params: KdfParams,
    /// Base64 (standard alphabet, padded) of 32 random bytes.
    pub salt: String,
    /// Base64 of the sealed master key JSON, sealed under the scrypt output.
    pub data: String,
}

impl KeyFile {
    /// A key file for `master` under `password`. `config`, the
    /// repository's, is kept in the sealed data as a copy from which
    /// `repair config` restores a damaged or lost `config` file.
    pub fn create(
        master: &MasterKey,
        config: Option<&Config>,
        password: &[u8],
        params: KdfParams,
        hostname: &str,
        username: &str,
    ) -> Result<KeyFile, FormatError> {
        let mut salt = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        let kek = params.derive(password, &salt)?;
        let sealed_data = SealedData {
            key: master.clone(),
            config: config.cloned(),
        };
        let json = Zeroizing::new(serde_json::to_vec(&sealed_data).expect("master key serializes"));
        let sealed = Cipher::new(&kek).seal(&json, None);
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyFile {
            version: KEYFILE_VERSION,
            created: chrono::Utc::now(),
            hostname: hostname.to_string(),
            username: username.to_string(),
            kdf: "scrypt".into(),
            params,
            salt: b64.encode(salt),
            data: b64.encode(sealed),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("key file serializes");
        v.push(b'\n');
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<KeyFile, FormatError> {
        let kf: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| FormatError::corrupt("key file", e))?;
        if kf.version != KEYFILE_VERSION {
            return Err(FormatError::Version {
                what: "key file",
                found: kf.version,
                supported: KEYFILE_VERSION,
            });
        }
        if kf.kdf != "scrypt" {
            return Err(FormatError::corrupt(
                "key file",
                format!("unknown kdf {:?}", kf.kdf),
            ));
        }
        kf.params.validate()?;
        Ok(kf)
    }

    /// `Err(FormatError::Decrypt)` means: not this key's password.
    pub fn unlock(&self, password: &[u8]) -> Result<MasterKey, FormatError> {
        Ok(self.unlock_with_config(password)?.0)
    }

    /// As [`KeyFile::unlock`], with the copy of the repository's config
    /// the key file holds (key files written before cairn kept one have
    /// none).
    pub fn unlock_with_config(
        &self,
        password: &[u8],
    ) -> Result<(MasterKey, Option<Config>), FormatError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64
            .decode(&self.salt)
            .map_err(|e| FormatError::corrupt("key file salt", e))?;
        let sealed = b64
            .decode(&self.data)
            .map_err(|e| FormatError::corrupt("key file data", e))?;
        let kek = self.params.derive(password, &salt)?;
        let json = Zeroizing::new(Cipher::new(&kek).open(&sealed, 4096)?);
        let data: SealedData =
            serde_json::from_slice(&json).map_err(|e| FormatError::corrupt("master key", e))?;
        if let Some(c) = &data.config {
            c.chunker.validate()?;
        }
        Ok((data.key, data.config))
    }
}

/// What a key file's `data` holds: the master key's members and, beside
/// them, a copy of the config (repo-format.md §3).
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedData {
    #[serde(flatten)]
    key: MasterKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<Config>,
}
