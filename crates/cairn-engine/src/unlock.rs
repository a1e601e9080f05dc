//! Removing stale lock files from `locks/`.
//!
//! cairn takes no locks: backups, prune and the other maintenance commands
//! are safe to run concurrently without them (repo-format.md §11, "Prune
//! without locks"). `locks/` is reserved (§1), and the only lock files a
//! cairn repository can hold were left there by some other program or a
//! future version. Those we can judge are sealed with the repository's key
//! and hold restic-style JSON (time, host, pid): such a lock is stale when
//! it is older than [`STALE_AFTER`], or when it was taken on this host by a
//! process that no longer runs. A lock file we cannot open (another key,
//! another format) is opaque: it is left alone unless every lock is to be
//! removed.

use crate::{Error, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::Id;
use cairn_repository::Repository;

/// A lock not refreshed for this long is stale (restic's rule).
pub const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(30);

/// What a lock file says, restic's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub time: chrono::DateTime<chrono::FixedOffset>,
    pub exclusive: bool,
    pub hostname: String,
    pub username: String,
    pub pid: u32,
}

impl LockInfo {
    /// Parse the JSON inside a lock file.
    pub fn parse(json: &[u8]) -> Option<LockInfo> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        Some(LockInfo {
            time: chrono::DateTime::parse_from_rfc3339(v.get("time")?.as_str()?).ok()?,
            exclusive: v
                .get("exclusive")
                .and_then(|e| e.as_bool())
                .unwrap_or(false),
            hostname: v
                .get("hostname")
                .and_then(|h| h.as_str())
                .unwrap_or_default()
                .to_string(),
            username: v
                .get("username")
                .and_then(|h| h.as_str())
                .unwrap_or_default()
                .to_string(),
            pid: v
                .get("pid")
                .and_then(|p| p.as_u64())
                .and_then(|p| u32::try_from(p).ok())?,
        })
    }

    /// Why this lock is stale, or `None` if it may still be held.
    pub fn stale(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        this_host: &str,
        alive: impl Fn(u32) -> bool,
    ) -> Option<String> {
        let age = now.signed_duration_since(self.time);
        if age > STALE_AFTER {
            return Some(format!("not refreshed for {} minutes", age.num_minutes()));
        }
        if self.hostname == this_host && !alive(self.pid) {
            return Some(format!("process {} on this host no longer runs", self.pid));
        }
        None
    }
}

/// Does a process with this id exist (on this host)?
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // No signal: only whether the process exists (EPERM: it does, as another user's).
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    )
}

#[derive(Clone, Debug)]
pub enum LockState {
    Stale(LockInfo, String),
    Active(LockInfo),
    /// Not readable with this repository's key (or not a lock we know).
    Opaque(String),
}

#[derive(Debug, Default)]
pub struct UnlockReport {
    /// Removed lock files, each with why.
    pub removed: Vec<(Id, String)>,
    /// Lock files left, each with why.
    pub kept: Vec<(Id, String)>,
}

/// Judge one lock file's bytes.
pub fn judge(
    repo: &Repository,
    bytes: &[u8],
    now: chrono::DateTime<chrono::Utc>,
    this_host: &str,
) -> LockState {
    let plain = match repo.cipher().open(bytes, 1 << 20) {
        Ok(p) => p,
        Err(_) => {
            return LockState::Opaque(
                "not sealed with this repository's key (another program's lock?)".into(),
            )
        }
    };
    match LockInfo::parse(&plain) {
        Some(l) => match l.stale(now, this_host, process_alive) {
            Some(why) => LockState::Stale(l, why),
            None => LockState::Active(l),
        },
        None => LockState::Opaque("not a lock file cairn understands".into()),
    }
}

/// Remove stale lock files (all lock files with `remove_all`).
pub fn unlock(repo: &Repository, remove_all: bool, this_host: &str) -> Result<UnlockReport> {
    let mut r = UnlockReport::default();
    let now = chrono::Utc::now();
    for f in repo.backend().list(FileKind::Lock)? {
        let Some(id) = Id::from_hex(&f.name) else {
            continue;
        };
        let bytes = match repo.backend().read(FileKind::Lock, &f.name) {
            Ok(b) => b,
            // Removed meanwhile by its owner.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(Error::from(e)),
        };
        let (remove, why) = match judge(repo, &bytes, now, this_host) {
            LockState::Stale(l, why) => (
                true,
                format!(
                    "stale lock by {}@{} pid {}: {why}",
                    l.username, l.hostname, l.pid
                ),
            ),
            LockState::Active(l) if remove_all => (
                true,
                format!(
                    "lock by {}@{} pid {} (--remove-all)",
                    l.username, l.hostname, l.pid
                ),
            ),
            LockState::Active(l) => (
                false,
                format!(
                    "lock by {}@{} pid {} is not stale",
                    l.username, l.hostname, l.pid
                ),
            ),
            LockState::Opaque(why) if remove_all => (true, format!("{why} (--remove-all)")),
            LockState::Opaque(why) => (false, why),
        };
        if remove {
            repo.backend().remove(FileKind::Lock, &f.name)?;
            r.removed.push((id, why));
        } else {
            r.kept.push((id, why));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::repo;

    fn lock(host: &str, pid: u32, age_min: i64) -> Vec<u8> {
        let t = (chrono::Utc::now() - chrono::Duration::minutes(age_min)).to_rfc3339();
        format!(r#"{{"time":"{t}","exclusive":false,"hostname":"{host}","username":"u","pid":{pid},"uid":0,"gid":0}}"#).into_bytes()
    }

    #[test]
    fn staleness() {
        let now = chrono::Utc::now();
        let l = LockInfo::parse(&lock("here", 42, 5)).unwrap();
        assert_eq!(l.stale(now, "here", |_| true), None);
        assert!(l
            .stale(now, "here", |_| false)
            .unwrap()
            .contains("no longer runs"));
        assert_eq!(
            l.stale(now, "elsewhere", |_| false),
            None,
            "another host's pid says nothing"
        );
        let old = LockInfo::parse(&lock("elsewhere", 42, 31)).unwrap();
        assert!(old
            .stale(now, "here", |_| true)
            .unwrap()
            .contains("not refreshed"));
        assert!(LockInfo::parse(b"{}").is_none());
        assert!(process_alive(std::process::id()));
    }

    #[test]
    fn removes_only_stale_decryptable_locks() {
        let repo = repo();
        let seal = |b: Vec<u8>| {
            repo.save_file(FileKind::Lock, &repo.cipher().seal(&b, None))
                .unwrap()
        };
        let live = seal(lock("here", std::process::id(), 1));
        let dead = seal(lock("elsewhere", 1, 90));
        let foreign = repo
            .save_file(FileKind::Lock, b"sealed with some other key, or not at all")
            .unwrap();
        let r = unlock(&repo, false, "here").unwrap();
        assert_eq!(
            r.removed.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![dead]
        );
        let mut kept: Vec<Id> = r.kept.iter().map(|x| x.0).collect();
        kept.sort();
        let mut want = vec![live, foreign];
        want.sort();
        assert_eq!(kept, want);
        let r = unlock(&repo, true, "here").unwrap();
        assert_eq!(r.removed.len(), 2);
        assert!(repo.backend().list(FileKind::Lock).unwrap().is_empty());
    }
}
