//! Key files: listing, adding, removing, and changing a password.
//!
//! Every key file holds the same master key under its own password
//! (repo-format.md §3), so keys can be added and removed freely as long as
//! one stays. Invariants kept here:
//! - The key the repository was opened with is never removed by
//!   [`remove_key`] (the caller would lock themselves out mid-session), and
//!   the last key is never removed.
//! - [`change_password`] writes the new key *before* removing the old one:
//!   a crash in between leaves two keys, never none.
//!
//! Key ids are file names (the SHA-256 of the key file); users may give a
//! unique prefix ([`resolve_prefix`]).

use crate::{Error, Kind, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::crypto::KdfParams;
use cairn_repository::format::keyfile::KeyFile;
use cairn_repository::format::Id;
use cairn_repository::Repository;

/// One key file, as `key list` shows it.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub id: Id,
    /// The repository was opened with this key.
    pub current: bool,
    pub username: String,
    pub hostname: String,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the key file could not be read, if it could not.
    pub error: Option<String>,
}

/// Every key file, oldest first (unreadable ones last, with their error).
pub fn list_keys(repo: &Repository) -> Result<Vec<KeyInfo>> {
    let mut out = Vec::new();
    for f in repo.backend().list(FileKind::Key)? {
        let Some(id) = Id::from_hex(&f.name) else {
            continue;
        };
        let current = id == repo.key_id();
        let parsed = repo.load_file(FileKind::Key, &id).and_then(|b| {
            KeyFile::parse(&b).map_err(|e| Error::format(format!("key {}", id.short()), e))
        });
        out.push(match parsed {
            Ok(kf) => KeyInfo {
                id,
                current,
                username: kf.username,
                hostname: kf.hostname,
                created: Some(kf.created),
                error: None,
            },
            Err(e) => KeyInfo {
                id,
                current,
                username: String::new(),
                hostname: String::new(),
                created: None,
                error: Some(e.message),
            },
        });
    }
    out.sort_by_key(|k| (k.created.is_none(), k.created, k.id));
    Ok(out)
}

/// Resolve a full key id or a unique prefix of one among `names` (the
/// listed key file names).
pub fn resolve_prefix(names: &[String], spec: &str) -> Result<Id> {
    if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!(
            "invalid key id {spec:?} (expected hex digits, as `cairn key list` shows)"
        )));
    }
    let spec = spec.to_ascii_lowercase();
    let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(&spec)).collect();
    match matches.as_slice() {
        [] => Err(Error::not_found(format!(
            "no key with id {spec} (see `cairn key list`)"
        ))),
        [one] => Id::from_hex(one)
            .ok_or_else(|| Error::corrupt(format!("key {one}"), "invalid file name")),
        many => Err(Error::new(
            Kind::Ambiguous,
            format!(
                "key id prefix {spec} is ambiguous: it matches {} keys",
                many.len()
            ),
        )),
    }
}

fn key_names(repo: &Repository) -> Result<Vec<String>> {
    Ok(repo
        .backend()
        .list(FileKind::Key)?
        .into_iter()
        .map(|f| f.name)
        .filter(|n| Id::from_hex(n).is_some())
        .collect())
}

/// Find a key by id or unique prefix.
pub fn find_key(repo: &Repository, spec: &str) -> Result<Id> {
    resolve_prefix(&key_names(repo)?, spec)
}

/// Add a key file for `password`, recording `hostname` and `username`.
pub fn add_key(
    repo: &Repository,
    password: &[u8],
    kdf: KdfParams,
    hostname: &str,
    username: &str,
) -> Result<Id> {
    if password.is_empty() {
        return Err(Error::invalid("an empty password is not allowed"));
    }
    let kf = KeyFile::create(
        repo.key(),
        Some(repo.config()),
        password,
        kdf,
        hostname,
        username,
    )
    .map_err(|e| Error::format("new key", e))?;
    repo.save_file(FileKind::Key, &kf.to_bytes())
}

/// Remove a key, unless it is the one in use or the last one.
pub fn remove_key(repo: &Repository, id: &Id) -> Result<()> {
    let names = key_names(repo)?;
    if !names.contains(&id.to_hex()) {
        return Err(Error::not_found(format!("no key with id {id}")));
    }
    if names.len() == 1 {
        return Err(Error::invalid(format!(
            "refusing to remove key {}: it is the repository's only key, and without it nobody can open the repository",
            id.short()
        )));
    }
    if *id == repo.key_id() {
        return Err(Error::invalid(format!(
            "refusing to remove key {}: it is the key in use (the password given opens it); use `cairn key passwd` to replace it",
            id.short()
        )));
    }
    repo.backend().remove(FileKind::Key, &id.to_hex())?;
    Ok(())
}

/// Replace the key in use by a new one for `password`: the new key is
/// stored first, then the old one removed. Returns (new, removed).
pub fn change_password(
    repo: &Repository,
    password: &[u8],
    kdf: KdfParams,
    hostname: &str,
    username: &str,
) -> Result<(Id, Id)> {
    let old = repo.key_id();
    let new = add_key(repo, password, kdf, hostname, username)?;
    if new != old {
        repo.backend().remove(FileKind::Key, &old.to_hex())?;
    }
    Ok((new, old))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_repository::backend::MemoryBackend;
    use cairn_repository::OpenOptions;
    use std::sync::Arc;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefixes_resolve_uniquely() {
        let a = "ab".repeat(32);
        let b = format!("abc{}", "0".repeat(61));
        let all = names(&[&a, &b]);
        assert_eq!(resolve_prefix(&all, "abab").unwrap().to_hex(), a);
        assert_eq!(resolve_prefix(&all, "ABC").unwrap().to_hex(), b);
        assert_eq!(
            resolve_prefix(&all, "ab").unwrap_err().kind,
            Kind::Ambiguous
        );
        assert_eq!(resolve_prefix(&all, "ff").unwrap_err().kind, Kind::NotFound);
        assert_eq!(
            resolve_prefix(&all, "xyz").unwrap_err().kind,
            Kind::InvalidInput
        );
        assert_eq!(
            resolve_prefix(&all, "").unwrap_err().kind,
            Kind::InvalidInput
        );
    }

    #[test]
    fn add_remove_passwd() {
        let opts = OpenOptions {
            kdf: KdfParams::INSECURE_TEST,
            hostname: "h".into(),
            username: "u".into(),
            ..Default::default()
        };
        let backend: Arc<dyn cairn_repository::backend::Backend> = Arc::new(MemoryBackend::new());
        let repo = Repository::init(backend.clone(), b"one", opts.clone()).unwrap();
        let first = repo.key_id();
        // The only key, and the key in use: refused.
        assert_eq!(
            remove_key(&repo, &first).unwrap_err().kind,
            Kind::InvalidInput
        );
        let second = add_key(&repo, b"two", KdfParams::INSECURE_TEST, "other", "me").unwrap();
        assert_eq!(
            remove_key(&repo, &first).unwrap_err().kind,
            Kind::InvalidInput,
            "the key in use"
        );
        let keys = list_keys(&repo).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys
            .iter()
            .any(|k| k.id == first && k.current && k.hostname == "h"));
        assert!(keys
            .iter()
            .any(|k| k.id == second && !k.current && k.hostname == "other" && k.username == "me"));
        remove_key(&repo, &second).unwrap();
        assert!(
            Repository::open(backend.clone(), b"two", opts.clone()).is_err(),
            "removed key still opens"
        );

        let (new, old) =
            change_password(&repo, b"three", KdfParams::INSECURE_TEST, "h", "u").unwrap();
        assert_eq!(old, first);
        assert!(
            matches!(Repository::open(backend.clone(), b"one", opts.clone()), Err(e) if e.kind == Kind::WrongPassword)
        );
        let again = Repository::open(backend, b"three", opts).unwrap();
        assert_eq!(again.key_id(), new);
        assert_eq!(list_keys(&again).unwrap().len(), 1);
        assert_eq!(
            add_key(&again, b"", KdfParams::INSECURE_TEST, "", "")
                .unwrap_err()
                .kind,
            Kind::InvalidInput
        );
    }
}
