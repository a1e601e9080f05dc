//! restic snapshots (`snapshots/<id>`): JSON, one per backup.
//!
//! `tree` is the root tree blob. restic omits empty fields (`uid` 0,
//! no tags); `original` is set on a snapshot rewritten from another (tags
//! changed) and names the first one; `summary` exists since restic 0.17.

use crate::error::{Error, Result};
use crate::Id;

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Snapshot {
    pub time: chrono::DateTime<chrono::FixedOffset>,
    #[serde(default)]
    pub parent: Option<Id>,
    pub tree: Id,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub excludes: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub original: Option<Id>,
    #[serde(default)]
    pub program_version: String,
    /// The backup's statistics (restic 0.17 and later), as restic wrote them.
    #[serde(default)]
    pub summary: Option<serde_json::Value>,
}

/// A JSON `null` list as an empty one (restic writes `"tags": null`).
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize as _;
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Snapshot {
    /// Parse a decoded snapshot file (`id` for messages).
    pub fn parse(id: &Id, json: &[u8]) -> Result<Snapshot> {
        serde_json::from_slice(json)
            .map_err(|e| Error::corrupt(format!("restic snapshot {}", id.short()), e))
    }

    /// The id that stays with the snapshot when restic rewrites it.
    pub fn persistent_id(&self, id: &Id) -> Id {
        self.original.unwrap_or(*id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_restic_writes() {
        let j = br#"{"time":"2026-11-30T18:42:45.633068858+01:00","tree":"ffa72cab528e62f28f8a0a63cec9441126c0b83b8555724c73a26a3a89eeaff5","paths":["/tmp/rx/src"],"hostname":"hh","username":"root","tags":null,"excludes":["*.o"],"program_version":"restic 0.17.0","summary":{"files_new":1}}"#;
        let id = Id::sha256(j);
        let s = Snapshot::parse(&id, j).unwrap();
        assert_eq!(s.time.timestamp_subsec_nanos(), 633_068_858);
        assert_eq!(s.time.offset().local_minus_utc(), 3600);
        assert!(s.tags.is_empty());
        assert_eq!(s.excludes, ["*.o"]);
        assert_eq!((s.uid, s.gid), (0, 0));
        assert_eq!(s.persistent_id(&id), id);
        assert!(s.summary.is_some());
        assert!(Snapshot::parse(&id, b"{\"time\":\"x\"}").is_err());
    }
}
