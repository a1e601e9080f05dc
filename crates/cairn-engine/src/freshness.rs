//! How old and how complete the last backup of a host is: what
//! `cairn monitor` reports to Nagios or Icinga, and what `run` and
//! `profile check` can tell about a repository.
//!
//! - The last backup is the newest snapshot (by its time) that the filter
//!   matches; snapshot files that cannot be read are passed over, so one
//!   damaged file does not hide the others.
//! - Its age is measured from the snapshot's time to `now`; a snapshot
//!   from the future (a clock ahead) has age zero.
//! - It is incomplete when the backup could not read some files
//!   (`summary.errors` above zero).
//! - [`assess`] turns age and completeness into a [`State`] with two
//!   thresholds: at `warn` or older it is a warning, at `crit` or older
//!   critical; incomplete is at least a warning.

use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use cairn_repository::{Repository, Result, SnapshotFilter};

/// The newest snapshot matching a filter, with what a check needs of it.
#[derive(Clone, Debug)]
pub struct LastBackup {
    pub id: Id,
    pub snapshot: Snapshot,
    /// Seconds from the snapshot's time to now (zero if it is in the future).
    pub age_secs: u64,
    /// Files and directories the backup could not read.
    pub unreadable: u64,
}

/// The newest snapshot that `filter` matches, or `None` when none does.
pub fn last_backup(
    repo: &Repository,
    filter: &SnapshotFilter,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<LastBackup>> {
    let (all, _unreadable_files) = repo.list_snapshots_lenient()?;
    let newest = all
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .max_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok(newest.map(|(id, snapshot)| {
        let age = now.signed_duration_since(snapshot.time).num_seconds();
        LastBackup {
            id,
            age_secs: age.max(0) as u64,
            unreadable: snapshot.summary.as_ref().map_or(0, |s| s.errors),
            snapshot,
        }
    }))
}

/// A check's verdict, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok,
    Warning,
    Critical,
}

/// The state of a last backup: by age against `warn_secs` and
/// `crit_secs`, and a warning at least when it is incomplete.
pub fn assess(last: &LastBackup, warn_secs: u64, crit_secs: u64) -> State {
    let by_age = if last.age_secs >= crit_secs {
        State::Critical
    } else if last.age_secs >= warn_secs {
        State::Warning
    } else {
        State::Ok
    };
    if last.unreadable > 0 {
        by_age.max(State::Warning)
    } else {
        by_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(age_secs: u64, unreadable: u64) -> LastBackup {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
        LastBackup {
            id: Id([0; 32]),
            snapshot: Snapshot {
                version: 1,
                time: t,
                tree: Id([0; 32]),
                paths: vec![],
                hostname: "h".into(),
                username: "u".into(),
                uid: 0,
                gid: 0,
                tags: vec![],
                excludes: vec![],
                parent: None,
                original: None,
                program_version: String::new(),
                summary: None,
            },
            age_secs,
            unreadable,
        }
    }

    #[test]
    fn thresholds_are_inclusive_and_incomplete_warns() {
        assert_eq!(assess(&last(99, 0), 100, 200), State::Ok);
        assert_eq!(assess(&last(100, 0), 100, 200), State::Warning);
        assert_eq!(assess(&last(200, 0), 100, 200), State::Critical);
        assert_eq!(assess(&last(0, 1), 100, 200), State::Warning);
        assert_eq!(assess(&last(300, 1), 100, 200), State::Critical);
    }
}
