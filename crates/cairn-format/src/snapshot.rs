//! Snapshot files (`snapshots/<sha256>`): sealed JSON, one per backup.

use crate::crypto::Cipher;
use crate::{FormatError, Id};

pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub time: chrono::DateTime<chrono::FixedOffset>,
    /// The root tree: one node per backed-up path (its base name).
    pub tree: Id,
    pub paths: Vec<String>,
    pub hostname: String,
    pub username: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// For a snapshot made from another by `tag` or `rewrite`: the id of the
    /// snapshot it replaces (`tag` keeps the first original across changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    #[serde(default)]
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

/// Statistics of the backup run that made the snapshot (restic's field names).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotSummary {
    pub backup_start: chrono::DateTime<chrono::FixedOffset>,
    pub backup_end: chrono::DateTime<chrono::FixedOffset>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    pub data_added: u64,
    pub data_added_packed: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
    /// Files and directories the backup could not read: the snapshot is
    /// incomplete when this is above zero. Absent (zero) in snapshots of
    /// complete backups and of older versions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Snapshot {
    pub fn seal(&self, cipher: &Cipher) -> Vec<u8> {
        cipher.seal(
            &serde_json::to_vec(self).expect("snapshot serializes"),
            Some(3),
        )
    }

    pub fn open(cipher: &Cipher, sealed: &[u8]) -> Result<Snapshot, FormatError> {
        let json = cipher.open(sealed, 64 << 20)?;
        #[derive(serde::Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly =
            serde_json::from_slice(&json).map_err(|e| FormatError::corrupt("snapshot", e))?;
        if v.version != SNAPSHOT_VERSION {
            return Err(FormatError::Version {
                what: "snapshot",
                found: v.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        serde_json::from_slice(&json).map_err(|e| FormatError::corrupt("snapshot", e))
    }
}
