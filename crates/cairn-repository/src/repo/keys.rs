//! Keys and config: creating a repository (its first key file, then its
//! config, last, so that a crash mid-init leaves no repository), opening
//! one by trying every key file with the password, and adding keys.
//!
//! A repository exists exactly when its `config` file does.

use super::{OpenOptions, Repository};
use crate::error::{Error, Kind, Result};
use crate::index::Index;
use cairn_backend::{Backend, ErrorKind as BackendKind, FileKind, Hint};
use cairn_format::chunker::Chunker;
use cairn_format::config::Config;
use cairn_format::crypto::{Cipher, KdfParams, MasterKey};
use cairn_format::keyfile::KeyFile;
use cairn_format::Id;
use std::sync::{Arc, RwLock};

fn missing_repository(backend: &dyn Backend) -> Error {
    Error::new(
        Kind::NoRepository,
        format!(
            "repository {} does not exist (create it with `cairn init`)",
            backend.location()
        ),
    )
}

fn restic_repository(backend: &dyn Backend) -> Error {
    let location = backend.location();
    Error::new(
        Kind::ResticRepository,
        format!(
            "{location} is a restic repository (its key files are restic's), not a cairn one; \
             to bring its snapshots over, run `cairn -r <cairn repository> copy --from-repo {location}`"
        ),
    )
}

impl Repository {
    /// Create a new repository with one key.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
    ) -> Result<Repository> {
        Self::init_with(
            backend,
            password,
            options,
            MasterKey::random(),
            Config::new(),
        )
    }

    /// Create a repository with a given master key and config (used to share
    /// chunker parameters with another repository).
    pub fn init_with(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
        key: MasterKey,
        config: Config,
    ) -> Result<Repository> {
        match backend.stat(FileKind::Config, "config") {
            Ok(_) => {
                return Err(Error::new(
                    Kind::AlreadyInitialized,
                    format!("repository {} already exists", backend.location()),
                ))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        backend.create()?;
        let cipher = key.cipher();
        let kf = KeyFile::create(
            &key,
            password,
            options.kdf,
            &options.hostname,
            &options.username,
        )
        .map_err(|e| Error::format("new key", e))?;
        let kf_bytes = kf.to_bytes();
        let key_id = Id::sha256(&kf_bytes);
        backend.write(FileKind::Key, &key_id.to_hex(), &kf_bytes)?;
        // The config goes last: a repository without it does not exist, so a crash mid-init leaves nothing usable.
        match backend.write(FileKind::Config, "config", &config.seal(&cipher)) {
            Ok(()) => {}
            Err(e) if e.kind == BackendKind::AlreadyExists => {
                let _ = backend.remove(FileKind::Key, &key_id.to_hex());
                return Err(Error::new(
                    Kind::AlreadyInitialized,
                    format!("repository {} already exists", backend.location()),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Self::assemble(
            backend, key, cipher, config, key_id, options,
        ))
    }

    /// A repository value from its parts; the chunker is derived here.
    fn assemble(
        backend: Arc<dyn Backend>,
        key: MasterKey,
        cipher: Cipher,
        config: Config,
        key_id: Id,
        options: OpenOptions,
    ) -> Repository {
        // A cache among the backend's wrappers keys its files by this id.
        backend.hint(&Hint::Opened {
            id: &config.id.to_hex(),
        });
        let chunker = Chunker::new(config.chunker, key.chunker_seed);
        Repository {
            backend,
            key,
            cipher,
            config,
            chunker,
            key_id,
            options,
            index: RwLock::new(Index::new()),
        }
    }

    /// Open an existing repository; tries every key file with the password.
    /// Does not load the index (see [`Repository::load_index`]).
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
    ) -> Result<Repository> {
        let config_bytes = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(missing_repository(&*backend)),
            Err(e) => return Err(e.into()),
        };
        let keys = backend.list(FileKind::Key)?;
        if keys.is_empty() {
            return Err(Error::corrupt(
                format!("repository {}", backend.location()),
                "no key files in keys/",
            ));
        }
        let mut last_err = None;
        // Key files in restic's form: if no key file is cairn's, this is a
        // restic repository, and "wrong password" would mislead.
        let mut restic_keys = 0;
        let mut cairn_keys = 0;
        for k in &keys {
            let bytes = match backend.read(FileKind::Key, &k.name) {
                Ok(b) => b,
                Err(e) => {
                    last_err = Some(Error::from(e));
                    continue;
                }
            };
            let kf = match KeyFile::parse(&bytes) {
                Ok(kf) => kf,
                Err(_) if cairn_restic::keyfile::is_restic_key_file(&bytes) => {
                    restic_keys += 1;
                    continue;
                }
                Err(e) => {
                    last_err = Some(Error::format(
                        format!("key {}", k.name.get(..8).unwrap_or(&k.name)),
                        e,
                    ));
                    continue;
                }
            };
            cairn_keys += 1;
            match kf.unlock(password) {
                Ok(key) => {
                    let cipher = key.cipher();
                    let config = Config::open(&cipher, &config_bytes)
                        .map_err(|e| Error::format("config", e))?;
                    let key_id = Id::from_hex(&k.name).unwrap_or_default();
                    return Ok(Self::assemble(
                        backend, key, cipher, config, key_id, options,
                    ));
                }
                Err(cairn_format::FormatError::Decrypt) => {}
                Err(e) => {
                    last_err = Some(Error::format(
                        format!("key {}", k.name.get(..8).unwrap_or(&k.name)),
                        e,
                    ))
                }
            }
        }
        if restic_keys > 0 && cairn_keys == 0 {
            return Err(restic_repository(&*backend));
        }
        match last_err {
            Some(e) if e.kind != Kind::Corrupt => Err(e),
            _ => Err(Error::new(
                Kind::WrongPassword,
                format!(
                    "wrong password: no key in {} opens with it",
                    backend.location()
                ),
            )),
        }
    }

    /// Add a key file for another password.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        let kf = KeyFile::create(
            &self.key,
            password,
            kdf,
            &self.options.hostname,
            &self.options.username,
        )
        .map_err(|e| Error::format("new key", e))?;
        let bytes = kf.to_bytes();
        let id = Id::sha256(&bytes);
        self.backend.write(FileKind::Key, &id.to_hex(), &bytes)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_backend::MemoryBackend;

    /// A key file restic 0.14 wrote (`restic init`).
    const RESTIC_KEY: &str = r#"{"created":"2026-11-30T18:42:45.080279796Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":3,"salt":"myTF0HGnURl8zK0nn+QR0O/VpBoVk52xw+IgRwPF95xhRjMsrEX1rrvsZJwx/2U844ASEhIPsyhPjqGOJrBTMw==","data":"ZuEdoFYn/M7//4RYAF3BHt9LyOS3z02LH8mWj0zPp5mbB0CzmLj5FCKnk9IOhNwliwu9w//JSX3j1WvBY3xEiaqziLk9/yjmWxmTmExCgdFvc73zek5gagrcNe7ineDmZijZCCVWkKN72Xbx6JGFYg67TIdcCnX9x3eQM9TbJtHVJ1xW36WSZzruLbxHUtxr3sdAsFQDKwamxGapx1dMHg=="}"#;

    #[test]
    fn a_restic_repository_is_named_not_a_wrong_password() {
        let b = Arc::new(MemoryBackend::new());
        b.write(FileKind::Config, "config", &[7u8; 120]).unwrap();
        let name = Id::sha256(RESTIC_KEY.as_bytes()).to_hex();
        b.write(FileKind::Key, &name, RESTIC_KEY.as_bytes())
            .unwrap();
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        };
        let e = Repository::open(b.clone(), b"pw", opts.clone())
            .err()
            .unwrap();
        assert_eq!(e.kind, Kind::ResticRepository);
        assert!(
            e.message.contains("is a restic repository"),
            "{}",
            e.message
        );
        assert!(e.message.contains("copy --from-repo"), "{}", e.message);

        // A cairn repository with a wrong password still says so.
        let c = Arc::new(MemoryBackend::new());
        Repository::init(c.clone(), b"right", opts.clone()).unwrap();
        let e = Repository::open(c, b"wrong", opts).err().unwrap();
        assert_eq!(e.kind, Kind::WrongPassword);
    }
}
