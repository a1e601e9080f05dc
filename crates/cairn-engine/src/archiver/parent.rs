//! The parent snapshot: which one, and its trees.
//!
//! A backup compares each file with the same path in its parent snapshot
//! and does not read it again if it is unchanged. The parent's trees are
//! loaded one directory at a time as the walk descends (never the whole
//! snapshot), each once, through [`ParentTrees`].
//!
//! A parent tree that cannot be read (lost, damaged) is never a silent
//! full backup: a warning names the parent snapshot, the tree and the
//! directory, and that directory (with everything below it) is backed up
//! as if it were new: every file read. The snapshot is complete either way.

use super::{ParentChoice, WarningSink};
use crate::Result;
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::tree::Tree;
use cairn_repository::format::Id;
use cairn_repository::Repository;
use std::path::Path;
use std::sync::Mutex;

/// The parent `choice` names for a backup by `hostname` of `paths` (the
/// snapshot's paths, sorted): its id and snapshot.
pub(super) fn choose(
    repo: &Repository,
    choice: &ParentChoice,
    hostname: &str,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    match choice {
        ParentChoice::NoParent => Ok(None),
        ParentChoice::Snapshot(spec) => Ok(Some(repo.find_snapshot(spec, &Default::default())?)),
        ParentChoice::Latest => Ok(repo.list_snapshots()?.into_iter().rev().find(|(_, s)| {
            let mut have = s.paths.clone();
            have.sort();
            s.hostname == hostname && have == paths
        })),
    }
}

/// Loads the parent snapshot's trees for a backup, reporting the ones that
/// cannot be read.
pub(super) struct ParentTrees<'a> {
    repo: &'a Repository,
    /// The parent snapshot's id and root tree.
    parent: Option<(Id, Id)>,
    on_warning: Option<&'a WarningSink>,
    warnings: Mutex<Vec<String>>,
}

impl<'a> ParentTrees<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        parent: Option<&(Id, Snapshot)>,
        on_warning: Option<&'a WarningSink>,
    ) -> Self {
        ParentTrees {
            repo,
            parent: parent.map(|(id, s)| (*id, s.tree)),
            on_warning,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The parent's root tree id, if there is a parent.
    pub(super) fn root_id(&self) -> Option<Id> {
        self.parent.map(|(_, tree)| tree)
    }

    /// The parent's root tree (`None`, reported, if it cannot be read).
    pub(super) fn root(&self) -> Option<Tree> {
        self.load(self.root_id(), Path::new("/"))
    }

    /// The parent's tree `id` of the directory `path`: `None` when the
    /// parent has no such directory, or (reported) when it cannot be read.
    pub(super) fn load(&self, id: Option<Id>, path: &Path) -> Option<Tree> {
        let id = id?;
        match self.repo.load_tree(&id) {
            Ok(t) => Some(t),
            Err(e) => {
                let snapshot = self.parent.map(|(s, _)| s.short()).unwrap_or_default();
                let dir = path.display();
                self.warn(format!(
                    "parent snapshot {snapshot}: tree {} of {dir} cannot be read ({e}); {dir} is backed up in full",
                    id.short()
                ));
                None
            }
        }
    }

    fn warn(&self, msg: String) {
        if let Some(sink) = self.on_warning {
            sink(&msg);
        }
        self.warnings.lock().unwrap().push(msg);
    }

    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner().unwrap()
    }
}
