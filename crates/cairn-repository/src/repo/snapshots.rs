//! Snapshots: saving, loading, listing, and choosing them (`latest`, id
//! prefixes, filters).
//!
//! Every listing goes through one loader ([`Repository::load_snapshots`]):
//! the snapshot files are loaded in parallel, each with its own result;
//! the listings differ only in what they do with a file that cannot be
//! read.

use super::{Repository, LOAD_THREADS};
use crate::error::{Error, Kind, Result};
use crate::parallel::parallel_map;
use cairn_backend::{ErrorKind as BackendKind, FileKind};
use cairn_format::snapshot::Snapshot;
use cairn_format::Id;

/// Snapshots that could be read (oldest first), and each snapshot file that
/// could not, with why.
pub type SnapshotsAndErrors = (Vec<(Id, Snapshot)>, Vec<(Id, Error)>);

/// Which snapshots `latest` or a listing considers.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && (self.tags.is_empty()
                || self
                    .tags
                    .iter()
                    .any(|t| t.split(',').all(|t| s.tags.iter().any(|x| x == t))))
            && (self.paths.is_empty() || self.paths.iter().all(|p| s.paths.contains(p)))
    }
}

impl Repository {
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<Id> {
        self.save_file(FileKind::Snapshot, &s.seal(&self.cipher))
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let bytes = self.load_file(FileKind::Snapshot, id)?;
        Snapshot::open(&self.cipher, &bytes)
            .map_err(|e| Error::format(format!("snapshot {}", id.short()), e))
    }

    /// The ids of all snapshot files.
    pub fn snapshot_ids(&self) -> Result<Vec<Id>> {
        let files = self.backend.list(FileKind::Snapshot)?;
        Ok(files.iter().filter_map(|f| Id::from_hex(&f.name)).collect())
    }

    /// Load the snapshot files `ids`, several at once: the one loader
    /// behind every listing. A file whose error `tolerate` accepts is
    /// returned with its error; any other error ends the load and is
    /// returned. The snapshots come oldest first (ties by id), the errors
    /// in the order of `ids`.
    pub fn load_snapshots(
        &self,
        ids: &[Id],
        tolerate: impl Fn(&Error) -> bool + Sync,
    ) -> Result<SnapshotsAndErrors> {
        let loaded = parallel_map(ids, LOAD_THREADS, |id| match self.load_snapshot(id) {
            Ok(s) => Ok(Ok(s)),
            Err(e) if tolerate(&e) => Ok(Err(e)),
            Err(e) => Err(e),
        })?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (id, r) in ids.iter().zip(loaded) {
            match r {
                Ok(s) => good.push((*id, s)),
                Err(e) => bad.push((*id, e)),
            }
        }
        good.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((good, bad))
    }

    /// All readable snapshots, oldest first, and each snapshot file that
    /// is damaged, of a newer format, or gone since it was listed. For
    /// listing and choosing snapshots; anything that decides what data is
    /// needed (prune) must use the strict [`Repository::list_snapshots`].
    pub fn list_snapshots_lenient(&self) -> Result<SnapshotsAndErrors> {
        self.load_snapshots(&self.snapshot_ids()?, |e| {
            matches!(
                e.kind,
                Kind::Corrupt | Kind::Unsupported | Kind::Backend(BackendKind::NotFound)
            )
        })
    }

    /// All snapshots, oldest first; any unreadable snapshot file is an error.
    pub fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        Ok(self.load_snapshots(&self.snapshot_ids()?, |_| false)?.0)
    }

    /// Resolve `latest`, a full id or a unique prefix of one.
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            let (all, unreadable) = self.list_snapshots_lenient()?;
            // A snapshot file that cannot be read may be the newest one:
            // answering with the newest readable snapshot would quietly act
            // on another than the one asked for. (A file gone since it was
            // listed was forgotten meanwhile, and is no candidate.)
            let damaged: Vec<&(Id, Error)> = unreadable
                .iter()
                .filter(|(_, e)| e.kind != Kind::Backend(BackendKind::NotFound))
                .collect();
            if let Some((id, e)) = damaged.first() {
                let more = match damaged.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                return Err(Error::new(
                    e.kind,
                    format!(
                        "cannot tell which snapshot is the latest: snapshot {}{more} cannot be read ({}); \
                         name a snapshot by its id, or remove unreadable snapshot files with \
                         `cairn repair snapshots --forget`",
                        id.short(),
                        e.message
                    ),
                ));
            }
            return all
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| {
                    Error::not_found(format!("no snapshot found in {}", self.location()))
                });
        }
        if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "invalid snapshot id {spec:?} (expected hex digits or `latest`)"
            )));
        }
        let spec = spec.to_ascii_lowercase();
        let matches: Vec<Id> = self
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&spec))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::not_found(format!(
                "no snapshot with id {spec} in {}",
                self.location()
            ))),
            [id] => Ok((*id, self.load_snapshot(id)?)),
            many => Err(Error::new(
                Kind::Ambiguous,
                format!(
                    "snapshot id prefix {spec} is ambiguous: it matches {} snapshots",
                    many.len()
                ),
            )),
        }
    }
}
