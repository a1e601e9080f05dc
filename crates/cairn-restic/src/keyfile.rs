//! restic key files (`keys/<id>`): plain JSON that turns a password into
//! the repository's master key.
//!
//! ```json
//! {"created": "...", "username": "...", "hostname": "...",
//!  "kdf": "scrypt", "N": 32768, "r": 8, "p": 3,
//!  "salt": "<base64>", "data": "<base64 of IV ‖ ciphertext ‖ MAC>"}
//! ```
//!
//! scrypt(password, salt, N, r, p) gives 64 bytes, a [`Key`] that opens
//! `data`; inside is the master key as JSON,
//! `{"mac": {"k": "<base64>", "r": "<base64>"}, "encrypt": "<base64>"}`.
//!
//! cairn's own key files are JSON too, but carry `version` and `log_n`
//! where restic's carry `N`: [`is_restic_key_file`] tells them apart
//! without any password.

use crate::crypto::Key;
use crate::error::{Error, Kind, Result};
use base64::Engine as _;

#[derive(serde::Deserialize)]
struct KeyFileJson {
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    username: String,
    kdf: String,
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
    salt: String,
    data: String,
}

#[derive(serde::Deserialize)]
struct MasterKeyJson {
    mac: MacJson,
    encrypt: String,
}

#[derive(serde::Deserialize)]
struct MacJson {
    k: String,
    r: String,
}

/// A parsed key file, not yet opened.
pub struct KeyFile {
    pub hostname: String,
    pub username: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    data: Vec<u8>,
}

/// Does `bytes` look like a restic key file (JSON with `kdf` and `N`, and
/// none of cairn's `version`/`log_n`)? Reads no secret.
pub fn is_restic_key_file(bytes: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return false;
    };
    m.get("kdf").is_some_and(|v| v.is_string())
        && m.get("N").is_some_and(|v| v.is_u64())
        && m.contains_key("data")
        && m.contains_key("salt")
        && !m.contains_key("log_n")
        && !m.contains_key("version")
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| Error::corrupt(what, format!("bad base64: {e}")))
}

impl KeyFile {
    /// Parse a key file; `name` is its file name, for messages.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<KeyFile> {
        let what = format!("restic key {}", name.get(..8).unwrap_or(name));
        let j: KeyFileJson = serde_json::from_slice(bytes).map_err(|e| Error::corrupt(&what, e))?;
        if j.kdf != "scrypt" {
            return Err(Error::new(
                Kind::Unsupported,
                format!("{what}: key derivation {:?} is not scrypt", j.kdf),
            ));
        }
        if !j.n.is_power_of_two() || j.n < 2 || j.n > 1 << 30 {
            return Err(Error::corrupt(
                &what,
                format!("scrypt N {} is not a power of two in 2..2^30", j.n),
            ));
        }
        if !(1..=1024).contains(&j.r) || !(1..=1024).contains(&j.p) {
            return Err(Error::corrupt(
                &what,
                format!("scrypt r {} or p {} out of range", j.r, j.p),
            ));
        }
        Ok(KeyFile {
            hostname: j.hostname,
            username: j.username,
            log_n: j.n.trailing_zeros() as u8,
            r: j.r,
            p: j.p,
            salt: b64(&what, &j.salt)?,
            data: b64(&what, &j.data)?,
        })
    }

    /// The master key, or `None` when the password is not this key's.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<Key>> {
        let params = scrypt::Params::new(self.log_n, self.r, self.p, 64)
            .map_err(|e| Error::corrupt("restic key", format!("scrypt parameters: {e}")))?;
        let mut derived = [0u8; 64];
        scrypt::scrypt(password, &self.salt, &params, &mut derived)
            .map_err(|e| Error::corrupt("restic key", format!("scrypt: {e}")))?;
        let user = Key::from_bytes(&derived);
        let Ok(plain) = user.open(&self.data) else {
            return Ok(None);
        };
        let m: MasterKeyJson =
            serde_json::from_slice(&plain).map_err(|e| Error::corrupt("restic master key", e))?;
        let fixed = |what: &str, s: &str, n: usize| -> Result<Vec<u8>> {
            let v = b64(what, s)?;
            if v.len() != n {
                return Err(Error::corrupt(
                    "restic master key",
                    format!("{what} has {} bytes, not {n}", v.len()),
                ));
            }
            Ok(v)
        };
        let mut all = [0u8; 64];
        all[..32].copy_from_slice(&fixed("encrypt", &m.encrypt, 32)?);
        all[32..48].copy_from_slice(&fixed("mac.k", &m.mac.k, 16)?);
        all[48..].copy_from_slice(&fixed("mac.r", &m.mac.r, 16)?);
        Ok(Some(Key::from_bytes(&all)))
    }
}

/// Build a restic key file for `master` (tests make repositories with it).
#[cfg(test)]
pub(crate) fn create(master: &Key, password: &[u8], log_n: u8) -> Vec<u8> {
    let e = base64::engine::general_purpose::STANDARD;
    let salt = [9u8; 64];
    let params = scrypt::Params::new(log_n, 8, 1, 64).unwrap();
    let mut derived = [0u8; 64];
    scrypt::scrypt(password, &salt, &params, &mut derived).unwrap();
    let user = Key::from_bytes(&derived);
    let inner = serde_json::json!({
        "mac": {"k": e.encode(master.mac_k), "r": e.encode(master.mac_r)},
        "encrypt": e.encode(master.encrypt),
    });
    let data = user.seal_with_iv([3; 16], inner.to_string().as_bytes());
    serde_json::json!({
        "created": "2026-11-30T18:42:45.080279796Z",
        "username": "u", "hostname": "h", "kdf": "scrypt",
        "N": 1u64 << log_n, "r": 8, "p": 1,
        "salt": e.encode(salt), "data": e.encode(data),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file restic 0.14 wrote (`restic init`, password `pw`), and its
    /// master key as `restic cat masterkey` printed it.
    const RESTIC_KEY: &str = r#"{"created":"2026-11-30T18:42:45.080279796Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":3,"salt":"myTF0HGnURl8zK0nn+QR0O/VpBoVk52xw+IgRwPF95xhRjMsrEX1rrvsZJwx/2U844ASEhIPsyhPjqGOJrBTMw==","data":"ZuEdoFYn/M7//4RYAF3BHt9LyOS3z02LH8mWj0zPp5mbB0CzmLj5FCKnk9IOhNwliwu9w//JSX3j1WvBY3xEiaqziLk9/yjmWxmTmExCgdFvc73zek5gagrcNe7ineDmZijZCCVWkKN72Xbx6JGFYg67TIdcCnX9x3eQM9TbJtHVJ1xW36WSZzruLbxHUtxr3sdAsFQDKwamxGapx1dMHg=="}"#;

    #[test]
    fn opens_a_key_file_restic_wrote() {
        assert!(is_restic_key_file(RESTIC_KEY.as_bytes()));
        let kf = KeyFile::parse("b02de829beeb", RESTIC_KEY.as_bytes()).unwrap();
        assert_eq!(kf.hostname, "vm");
        assert!(kf.unlock(b"wrong").unwrap().is_none());
        let key = kf.unlock(b"pw").unwrap().expect("opens");
        let e = base64::engine::general_purpose::STANDARD;
        assert_eq!(e.encode(key.mac_k), "46zpRGp4ZdouNShEaXotRw==");
        assert_eq!(e.encode(key.mac_r), "L48wBfTNBgngsbAAzDDYAQ==");
        assert_eq!(
            e.encode(key.encrypt),
            "y+LssqM7gTzYA4V2m3PlbdSead+VnFLvHRB5wkFj5+k="
        );
    }

    #[test]
    fn tells_restic_key_files_from_cairn_ones_and_rejects_bad_ones() {
        let cairn = br#"{"version":1,"created":"2026-11-25T19:00:00Z","kdf":"scrypt","log_n":14,"r":8,"p":4,"salt":"AA==","data":"AA=="}"#;
        assert!(!is_restic_key_file(cairn));
        assert!(!is_restic_key_file(b"not json"));
        assert!(!is_restic_key_file(b"[1,2]"));
        for bad in [
            RESTIC_KEY.replace("32768", "30000"),
            RESTIC_KEY.replace("\"r\":8", "\"r\":0"),
            RESTIC_KEY.replace("\"salt\":\"my", "\"salt\":\"!!"),
            RESTIC_KEY.replace("scrypt", "argon2"),
            RESTIC_KEY[..40].to_string(),
        ] {
            assert!(KeyFile::parse("k", bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
