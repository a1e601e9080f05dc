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
use cairn_format::crypto::{Cipher, MasterKey};
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

/// The first eight digits of a key file's name (all of a shorter one).
fn short(name: &str) -> &str {
    name.get(..8).unwrap_or(name)
}

/// The order keys are tried in: the hinted key first, then the cheapest,
/// so that a planted costly key file delays nobody whose key is cheaper.
fn order_keys(usable: &mut [(String, KeyFile)], hint: Option<&str>) {
    let hint = hint.map(str::to_ascii_lowercase);
    usable.sort_by_key(|(name, kf)| {
        let hinted = hint.as_deref().is_some_and(|h| name.starts_with(h));
        (!hinted, kf.params.work(), name.clone())
    });
}

/// What [`Repository::repair_config`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigRepair {
    /// The config opens with the key: nothing to do.
    Intact,
    /// The config was damaged or missing and is written again (or would
    /// be, in a dry run) from the copy in this key file.
    Restored { from_key: String, was_missing: bool },
}

/// Every key file of a repository, sorted by what can be done with it.
pub(crate) struct Survey {
    /// Intact key files (their content hashes to their name, they parse,
    /// and their scrypt parameters are within the limits), by name.
    pub usable: Vec<(String, KeyFile)>,
    /// Key files that are damaged or over the limits, each with why.
    pub damaged: Vec<Error>,
    /// A key file of a newer format (the last one seen).
    pub newer: Option<Error>,
    /// Key files in restic's format.
    pub restic: usize,
}

/// Reads and sorts the key files `names`. Cheap: no scrypt is run. A
/// backend failure ends the survey (it is not damage).
pub(crate) fn survey_keys<'a>(
    backend: &dyn Backend,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Survey> {
    let mut survey = Survey {
        usable: Vec::new(),
        damaged: Vec::new(),
        newer: None,
        restic: 0,
    };
    for name in names {
        let what = format!("key file {}", short(name));
        let bytes = match backend.read(FileKind::Key, name) {
            Ok(b) => b,
            // Removed since it was listed: no key any more.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        // Key files are named by the SHA-256 of their bytes: any change to
        // one, a planted one renamed included, shows here.
        if Id::sha256(&bytes).to_hex() != name {
            survey.damaged.push(Error::new(
                Kind::Corrupt,
                format!("{what} is damaged: its content does not match its name"),
            ));
            continue;
        }
        match KeyFile::parse(&bytes) {
            Ok(kf) => survey.usable.push((name.to_string(), kf)),
            Err(_) if cairn_restic::keyfile::is_restic_key_file(&bytes) => survey.restic += 1,
            Err(e @ cairn_format::FormatError::Version { .. }) => {
                survey.newer = Some(Error::format(what, e))
            }
            Err(e) => survey
                .damaged
                .push(Error::format(format!("{what} is unusable"), e)),
        }
    }
    Ok(survey)
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
            Some(&config),
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
            damaged_keys: Vec::new(),
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
        let survey = survey_keys(&*backend, keys.iter().map(|k| k.name.as_str()))?;
        let Survey {
            mut usable,
            damaged,
            newer,
            restic,
        } = survey;
        if restic > 0 && usable.is_empty() && damaged.is_empty() && newer.is_none() {
            return Err(restic_repository(&*backend));
        }
        order_keys(&mut usable, options.key_hint.as_deref());
        let tried = usable.len();
        for (name, kf) in usable {
            match kf.unlock(password) {
                Ok(key) => {
                    let cipher = key.cipher();
                    let config = Config::open(&cipher, &config_bytes).map_err(|e| {
                        let e = Error::format("config", e);
                        match e.kind {
                            Kind::Corrupt => Error::new(
                                Kind::Corrupt,
                                format!(
                                    "{}; `cairn repair config` restores it from the copy in the key files",
                                    e.message
                                ),
                            ),
                            _ => e,
                        }
                    })?;
                    let key_id = Id::from_hex(&name).unwrap_or_default();
                    let mut repo = Self::assemble(backend, key, cipher, config, key_id, options);
                    repo.damaged_keys = damaged;
                    return Ok(repo);
                }
                Err(cairn_format::FormatError::Decrypt) => {}
                Err(e) => return Err(Error::format(format!("key {}", short(&name)), e)),
            }
        }
        let location = backend.location();
        if tried > 0 {
            let mut message = format!("wrong password: no key in {location} opens with it");
            if let Some(d) = damaged.first() {
                message.push_str(&format!(" ({}", d.message));
                if damaged.len() > 1 {
                    message.push_str(&format!(
                        ", and {} more damaged key files",
                        damaged.len() - 1
                    ));
                }
                message.push(')');
            }
            return Err(Error::new(Kind::WrongPassword, message));
        }
        // No key file could even be tried: say why, not "wrong password".
        if let Some(e) = newer {
            return Err(e);
        }
        match damaged.into_iter().next() {
            Some(d) => Err(Error::new(
                Kind::Corrupt,
                format!("no usable key file in {location}: {}", d.message),
            )),
            None if restic > 0 => Err(restic_repository(&*backend)),
            None => Err(Error::corrupt(
                format!("repository {location}"),
                "no key files in keys/",
            )),
        }
    }

    /// Every key file read and checked without a password (its name is its
    /// SHA-256, it parses, its scrypt parameters are within the limits):
    /// the damaged ones, each with why. For `check`; spare keys included.
    pub fn check_key_files(&self) -> Result<Vec<Error>> {
        let names: Vec<String> = self
            .backend
            .list(FileKind::Key)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        Ok(survey_keys(&*self.backend, names.iter().map(String::as_str))?.damaged)
    }

    /// Restore a damaged or missing `config` from the copy that key files
    /// keep in their sealed data (repo-format.md §3). The password must
    /// open a key file, as for [`Repository::open`]. The damaged file is
    /// removed before the copy is written: nobody can read it anyway.
    pub fn repair_config(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: &OpenOptions,
        dry_run: bool,
    ) -> Result<ConfigRepair> {
        let current = match backend.read(FileKind::Config, "config") {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let names: Vec<String> = backend
            .list(FileKind::Key)?
            .into_iter()
            .map(|f| f.name)
            .collect();
        let mut usable = survey_keys(&*backend, names.iter().map(String::as_str))?.usable;
        if usable.is_empty() {
            return Err(Error::corrupt(
                format!("repository {}", backend.location()),
                "no usable key files in keys/",
            ));
        }
        order_keys(&mut usable, options.key_hint.as_deref());
        let mut opened = false;
        let mut copy = None;
        for (name, kf) in usable {
            let (key, config) = match kf.unlock_with_config(password) {
                Ok(k) => k,
                Err(cairn_format::FormatError::Decrypt) => continue,
                Err(e) => return Err(Error::format(format!("key {}", short(&name)), e)),
            };
            opened = true;
            let cipher = key.cipher();
            if current
                .as_deref()
                .is_some_and(|c| Config::open(&cipher, c).is_ok())
            {
                return Ok(ConfigRepair::Intact);
            }
            if let Some(config) = config {
                copy = Some((name, cipher, config));
                break;
            }
        }
        if !opened {
            return Err(Error::new(
                Kind::WrongPassword,
                format!(
                    "wrong password: no key in {} opens with it",
                    backend.location()
                ),
            ));
        }
        let Some((name, cipher, config)) = copy else {
            return Err(Error::new(
                Kind::Corrupt,
                format!(
                    "the config of {} is damaged, and no key file this password opens holds a copy of it",
                    backend.location()
                ),
            ));
        };
        if !dry_run {
            if current.is_some() {
                backend.remove(FileKind::Config, "config")?;
            }
            backend.write(FileKind::Config, "config", &config.seal(&cipher))?;
        }
        Ok(ConfigRepair::Restored {
            from_key: name,
            was_missing: current.is_none(),
        })
    }

    /// Key files found damaged (or over the scrypt limits) while opening:
    /// skipped; worth a warning, since the repository is untrusted storage.
    pub fn damaged_keys(&self) -> &[Error] {
        &self.damaged_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_backend::MemoryBackend;
    use cairn_format::crypto::KdfParams;

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

    fn opts() -> OpenOptions {
        OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            ..Default::default()
        }
    }

    /// Stores `bytes` as a key file named by their SHA-256; returns the name.
    fn plant(b: &MemoryBackend, bytes: &[u8]) -> String {
        let name = Id::sha256(bytes).to_hex();
        b.write(FileKind::Key, &name, bytes).unwrap();
        name
    }

    /// A key file for `repo`'s master key under `password`, with `params`.
    fn key_file(repo: &Repository, password: &[u8], params: KdfParams) -> Vec<u8> {
        KeyFile::create(&repo.key, Some(&repo.config), password, params, "h", "u")
            .unwrap()
            .to_bytes()
    }

    /// A key file whose scrypt would take 16 GiB (log_n 24, r 8), planted
    /// beside the real key, is skipped with a warning: it neither aborts
    /// the program nor hides the key that opens.
    #[test]
    fn a_key_file_over_the_scrypt_limits_is_skipped_not_run() {
        let b = Arc::new(MemoryBackend::new());
        let repo = Repository::init(b.clone(), b"pw", opts()).unwrap();
        let cheap = key_file(&repo, b"pw", KdfParams::INSECURE_TEST);
        let text = String::from_utf8(cheap).unwrap();
        let costly = text.replace("\"log_n\": 10", "\"log_n\": 24");
        assert_ne!(costly, text, "the key file's log_n was not found");
        let planted = plant(&b, costly.as_bytes());

        let opened = Repository::open(b.clone(), b"pw", opts()).unwrap();
        assert_eq!(opened.key_id(), repo.key_id());
        let damaged = opened.damaged_keys();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert!(
            damaged[0].message.contains(&planted[..8]),
            "{}",
            damaged[0].message
        );
        assert!(
            damaged[0].message.contains("over the limits"),
            "{}",
            damaged[0].message
        );
        assert_eq!(opened.check_key_files().unwrap().len(), 1);
    }

    /// A key file whose bytes were changed is named as damaged: alone it is
    /// a corrupt repository (not a wrong password); beside a good key, a
    /// wrong password is still a wrong password, and the message names it.
    #[test]
    fn a_damaged_key_file_is_named_not_taken_for_a_wrong_password() {
        let b = Arc::new(MemoryBackend::new());
        let repo = Repository::init(b.clone(), b"pw", opts()).unwrap();
        let name = repo.key_id().to_hex();
        let mut bytes = b.read(FileKind::Key, &name).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        b.remove(FileKind::Key, &name).unwrap();
        b.write(FileKind::Key, &name, &bytes).unwrap();

        let e = Repository::open(b.clone(), b"pw", opts()).err().unwrap();
        assert_eq!(e.kind, Kind::Corrupt, "{}", e.message);
        assert!(e.message.contains(&name[..8]), "{}", e.message);
        assert!(e.message.contains("damaged"), "{}", e.message);

        let spare = plant(&b, &key_file(&repo, b"other", KdfParams::INSECURE_TEST));
        let e = Repository::open(b.clone(), b"wrong", opts()).err().unwrap();
        assert_eq!(e.kind, Kind::WrongPassword, "{}", e.message);
        assert!(e.message.contains(&name[..8]), "{}", e.message);
        let opened = Repository::open(b.clone(), b"other", opts()).unwrap();
        assert_eq!(opened.key_id().to_hex(), spare);
        let found = opened.check_key_files().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains(&name[..8]),
            "{}",
            found[0].message
        );
    }

    /// Of two key files that both open, the cheaper is tried first, unless
    /// a key hint names the other.
    #[test]
    fn cheap_keys_first_and_the_hinted_key_before_all() {
        let b = Arc::new(MemoryBackend::new());
        let repo = Repository::init(b.clone(), b"pw", opts()).unwrap();
        let dearer = KdfParams {
            log_n: 11,
            ..KdfParams::INSECURE_TEST
        };
        let dear = plant(&b, &key_file(&repo, b"pw", dearer));
        let cheap = repo.key_id().to_hex();
        for _ in 0..3 {
            let opened = Repository::open(b.clone(), b"pw", opts()).unwrap();
            assert_eq!(opened.key_id().to_hex(), cheap);
        }
        let hinted = OpenOptions {
            key_hint: Some(dear[..8].to_ascii_uppercase()),
            ..opts()
        };
        let opened = Repository::open(b.clone(), b"pw", hinted).unwrap();
        assert_eq!(opened.key_id().to_hex(), dear);
    }

    /// A damaged config (0 of 50 cases could be recovered before) is
    /// restored from the copy in the key files, byte for byte the same
    /// config; so is a deleted one. An intact one is left alone.
    #[test]
    fn a_damaged_or_lost_config_is_restored_from_a_key_file() {
        let b = Arc::new(MemoryBackend::new());
        let repo = Repository::init(b.clone(), b"pw", opts()).unwrap();
        let original = repo.config().clone();
        let r = Repository::repair_config(b.clone(), b"pw", &opts(), false).unwrap();
        assert_eq!(r, ConfigRepair::Intact);

        let mut bytes = b.read(FileKind::Config, "config").unwrap();
        bytes[30] ^= 4;
        b.remove(FileKind::Config, "config").unwrap();
        b.write(FileKind::Config, "config", &bytes).unwrap();
        let e = Repository::open(b.clone(), b"pw", opts()).err().unwrap();
        assert_eq!(e.kind, Kind::Corrupt);
        assert!(e.message.contains("cairn repair config"), "{}", e.message);
        let e = Repository::repair_config(b.clone(), b"no", &opts(), false).unwrap_err();
        assert_eq!(e.kind, Kind::WrongPassword);

        let dry = Repository::repair_config(b.clone(), b"pw", &opts(), true).unwrap();
        assert!(matches!(dry, ConfigRepair::Restored { .. }));
        assert_eq!(b.read(FileKind::Config, "config").unwrap(), bytes);
        let r = Repository::repair_config(b.clone(), b"pw", &opts(), false).unwrap();
        assert_eq!(
            r,
            ConfigRepair::Restored {
                from_key: repo.key_id().to_hex(),
                was_missing: false
            }
        );
        let reopened = Repository::open(b.clone(), b"pw", opts()).unwrap();
        assert_eq!(reopened.config(), &original);

        b.remove(FileKind::Config, "config").unwrap();
        let r = Repository::repair_config(b.clone(), b"pw", &opts(), false).unwrap();
        assert!(matches!(
            r,
            ConfigRepair::Restored {
                was_missing: true,
                ..
            }
        ));
        assert_eq!(
            Repository::open(b, b"pw", opts()).unwrap().config(),
            &original
        );
    }
}
