//! Repository statistics over a set of snapshots (`cairn stats`), with
//! restic's counting modes:
//!
//! - `restore-size`: every node of every snapshot (`total_file_count`
//!   counts directories and links too, as restic's), file sizes summed,
//!   hard links counted once per snapshot. cairn adds what that data costs:
//!   the unique data blobs it references (`raw_data_size`, the dedup ratio
//!   is restore size / that) and how they are stored (compression ratio).
//! - `files-by-contents`: files with distinct contents, counted once.
//! - `raw-data`: the unique blobs (data and tree) the snapshots reference:
//!   stored size, size before compression, compression figures.
//! - `blobs-per-file`: per distinct file contents, its blobs (counted once
//!   per path).
//!
//! Sizes of blobs come from the index: stored = sealed length; uncompressed
//! = plaintext + the sealing overhead. A blob is compressed when stored
//! smaller than that.

use crate::tree_walk::{self, Visit};
use crate::{Error, Result};
use cairn_repository::format::crypto::SEAL_OVERHEAD;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use cairn_repository::Repository;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    RestoreSize,
    FilesByContents,
    RawData,
    BlobsPerFile,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "restore-size" => Ok(Mode::RestoreSize),
            "files-by-contents" => Ok(Mode::FilesByContents),
            "raw-data" => Ok(Mode::RawData),
            "blobs-per-file" => Ok(Mode::BlobsPerFile),
            _ => Err(Error::invalid(format!(
                "unknown --mode {s:?} (use restore-size, files-by-contents, raw-data or blobs-per-file)"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::RestoreSize => "restore-size",
            Mode::FilesByContents => "files-by-contents",
            Mode::RawData => "raw-data",
            Mode::BlobsPerFile => "blobs-per-file",
        }
    }
}

/// The figures; which are set depends on the mode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub snapshots_count: u64,
    pub total_size: u64,
    pub total_file_count: u64,
    pub total_blob_count: u64,
    /// raw-data: what the blobs would take stored uncompressed.
    pub total_uncompressed_size: u64,
    /// Uncompressed / stored size of the compressed blobs.
    pub compression_ratio: f64,
    /// Percent of the data (uncompressed) stored compressed.
    pub compression_progress: f64,
    /// Percent saved by compression over all blobs.
    pub compression_space_saving: f64,
    /// restore-size: plaintext bytes of the unique data blobs referenced.
    pub raw_data_size: u64,
    /// restore-size: stored bytes of those blobs.
    pub raw_data_stored: u64,
    /// restore-size: restore size / unique data (0 when there is no data).
    pub dedup_ratio: f64,
}

/// Accumulates over snapshots.
pub struct StatsCollector<'a> {
    repo: &'a Repository,
    mode: Mode,
    stats: Stats,
    /// Blobs referenced (raw-data: data and tree; restore-size: data).
    blobs: HashSet<Id>,
    /// Trees already walked (raw-data only: a tree's blobs do not depend on its path).
    trees_seen: HashSet<Id>,
    contents_seen: HashSet<[u8; 32]>,
    file_blobs: HashMap<Vec<u8>, HashSet<Id>>,
}

/// Files with equal contents have equal content lists.
fn contents_id(n: &Node) -> [u8; 32] {
    let ids: Vec<u8> = n.content.iter().flat_map(|c| c.0).collect();
    Id::sha256(&ids).0
}

impl<'a> StatsCollector<'a> {
    pub fn new(repo: &'a Repository, mode: Mode) -> Self {
        StatsCollector {
            repo,
            mode,
            stats: Stats::default(),
            blobs: HashSet::new(),
            trees_seen: HashSet::new(),
            contents_seen: HashSet::new(),
            file_blobs: HashMap::new(),
        }
    }

    fn raw_length(&self, id: &Id) -> Result<u64> {
        self.repo
            .lookup(id)
            .map(|l| l.raw_length as u64)
            .ok_or_else(|| {
                Error::corrupt(
                    format!("blob {id}"),
                    "not in any index (data lost? run `cairn check`)",
                )
            })
    }

    /// Add one snapshot's tree.
    pub fn add_snapshot(&mut self, root: Id) -> Result<()> {
        self.stats.snapshots_count += 1;
        if self.mode == Mode::RawData {
            return self.add_raw(root);
        }
        let mut hardlinks: HashSet<(u64, u64)> = HashSet::new();
        let mode = self.mode;
        tree_walk::walk(
            self.repo,
            root,
            Path::new("/"),
            &mut |path: &Path, n: &Node| {
                match mode {
                    Mode::RestoreSize => {
                        self.stats.total_file_count += 1;
                        if n.links <= 1
                            || n.kind == NodeKind::Dir
                            || n.inode == 0
                            || hardlinks.insert((n.inode, n.device))
                        {
                            self.stats.total_size += n.size;
                        }
                        if n.kind == NodeKind::File {
                            self.blobs.extend(n.content.iter().copied());
                        }
                    }
                    Mode::FilesByContents
                        if n.kind == NodeKind::File
                            && self.contents_seen.insert(contents_id(n)) =>
                    {
                        self.stats.total_size += n.size;
                        self.stats.total_file_count += 1;
                    }
                    Mode::BlobsPerFile
                        if n.kind == NodeKind::File
                            && self.contents_seen.insert(contents_id(n)) =>
                    {
                        use std::os::unix::ffi::OsStrExt;
                        let key = path.as_os_str().as_bytes().to_vec();
                        for id in &n.content {
                            let size = self.raw_length(id)?;
                            let set = self.file_blobs.entry(key.clone()).or_insert_with(|| {
                                self.stats.total_file_count += 1;
                                HashSet::new()
                            });
                            if set.insert(*id) {
                                self.stats.total_size += size;
                                self.stats.total_blob_count += 1;
                            }
                        }
                    }
                    _ => {}
                }
                Ok(Visit::Continue)
            },
        )
    }

    fn add_raw(&mut self, root: Id) -> Result<()> {
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            if !self.trees_seen.insert(t) {
                continue;
            }
            self.blobs.insert(t);
            for n in self.repo.load_tree(&t)?.nodes {
                match n.kind {
                    NodeKind::File => self.blobs.extend(n.content.iter().copied()),
                    NodeKind::Dir => stack.extend(n.subtree),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Stored sizes of the collected blobs: (plaintext, stored, uncompressed
    /// stored, stored of compressed ones, uncompressed of compressed ones, count).
    fn blob_sizes(&self) -> Result<[u64; 6]> {
        let index = self.repo.index();
        let mut s = [0u64; 6];
        for id in &self.blobs {
            let l = index.get(id).ok_or_else(|| {
                Error::corrupt(
                    format!("blob {id}"),
                    "not in any index (data lost? run `cairn check`)",
                )
            })?;
            let uncompressed = l.raw_length as u64 + SEAL_OVERHEAD as u64;
            s[0] += l.raw_length as u64;
            s[1] += l.length as u64;
            s[2] += uncompressed;
            if (l.length as u64) < uncompressed {
                s[3] += l.length as u64;
                s[4] += uncompressed;
            }
            s[5] += 1;
        }
        Ok(s)
    }

    pub fn finish(mut self) -> Result<Stats> {
        let [plain, stored, uncompressed, comp_stored, comp_uncompressed, count] =
            self.blob_sizes()?;
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let st = &mut self.stats;
        match self.mode {
            Mode::RawData => {
                st.total_size = stored;
                st.total_uncompressed_size = uncompressed;
                st.total_blob_count = count;
                st.compression_ratio = ratio(comp_uncompressed, comp_stored);
                st.compression_progress = ratio(comp_uncompressed, uncompressed) * 100.0;
                st.compression_space_saving = if uncompressed > 0 {
                    (1.0 - ratio(stored, uncompressed)) * 100.0
                } else {
                    0.0
                };
            }
            Mode::RestoreSize => {
                st.raw_data_size = plain;
                st.raw_data_stored = stored;
                st.dedup_ratio = ratio(st.total_size, plain);
                st.compression_ratio = ratio(uncompressed, stored);
            }
            _ => {}
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;

    #[test]
    fn modes() {
        let repo = repo();
        let s = saver(&repo);
        let data = noise(4000, 5);
        let a = file(&s, "a", &data, 1000);
        let b = file(&s, "b", &data, 1000);
        let zeros = file(&s, "z", &vec![0u8; 10_000], 5000);
        let mut h1 = file(&s, "h1", b"hard", 8);
        h1.links = 2;
        h1.inode = 7;
        let mut h2 = h1.clone();
        h2.name = "h2".into();
        let root = tree(&s, vec![a, dir(&s, "d", vec![b, zeros]), h1, h2]);
        s.finish().unwrap();

        let run = |mode: Mode, snaps: usize| {
            let mut c = StatsCollector::new(&repo, mode);
            for _ in 0..snaps {
                c.add_snapshot(root).unwrap();
            }
            c.finish().unwrap()
        };
        let r = run(Mode::RestoreSize, 2);
        // Nodes: a, d, b, z, h1, h2; the hard link counted once.
        assert_eq!(
            (r.snapshots_count, r.total_file_count, r.total_size),
            (2, 12, 2 * (4000 + 4000 + 10_000 + 4))
        );
        // Unique data: 4 noise blobs, 1 zero blob of 5000, "hard".
        assert_eq!(r.raw_data_size, 4000 + 5000 + 4);
        assert!((r.dedup_ratio - 36008.0 / 9004.0).abs() < 1e-9, "{r:?}");
        assert!(r.compression_ratio > 1.0, "zeros compress: {r:?}");

        let r = run(Mode::FilesByContents, 2);
        assert_eq!((r.total_file_count, r.total_size), (3, 4000 + 10_000 + 4));

        let r = run(Mode::BlobsPerFile, 1);
        assert_eq!(
            (r.total_file_count, r.total_blob_count, r.total_size),
            (3, 4 + 1 + 1, 4000 + 5000 + 4)
        );

        let r = run(Mode::RawData, 3);
        // Blobs: 6 data, trees: root and d.
        assert_eq!(r.total_blob_count, 8);
        assert!(r.total_uncompressed_size > r.total_size);
        assert!(
            r.compression_ratio > 1.0
                && r.compression_progress > 0.0
                && r.compression_space_saving > 0.0,
            "{r:?}"
        );
        assert!(Mode::parse("bogus").is_err());
    }
}
