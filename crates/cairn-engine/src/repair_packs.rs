//! `repair packs`: salvage what is readable from damaged packs.
//!
//! When `check --read-data` finds a pack with a damaged blob, the pack's
//! other blobs are still good. For each named pack, this reads every blob
//! the pack's header lists (or, if the header itself is damaged, every blob
//! the index places in the pack), opens and verifies each one, and stores
//! the intact ones again through a [`BlobSaver`], into new packs. Then the
//! damaged pack leaves the index and the repository. What is left missing
//! are the blobs that were truly lost; `repair snapshots --forget` then
//! removes the files that need them, and `check` passes again.
//!
//! Crash safety, in the order of the steps: the new packs and their index
//! are written first; then each index file that lists a damaged pack is
//! written again without it, the new file before the old one is removed;
//! only then are the damaged packs deleted. A crash between any two steps
//! leaves duplicates (an intact blob in two packs) or a damaged pack still
//! listed, never a blob lost that was readable; running the command again
//! finishes the work.
//!
//! No lock is needed (repo-format.md §11): a backup running meanwhile that
//! deduplicates against an intact blob of a damaged pack finds it again in
//! the new pack; the lost blobs were lost already.

use crate::{Error, Kind, Result};
use cairn_repository::backend::{ErrorKind as BackendKind, FileKind};
use cairn_repository::format::index::IndexFile;
use cairn_repository::format::pack::PackEntry;
use cairn_repository::format::Id;
use cairn_repository::{BlobLocation, BlobSaver, Repository, SaverOptions};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct RepairPacksOptions {
    /// Read and verify, report, write and remove nothing.
    pub dry_run: bool,
    pub saver: SaverOptions,
}

/// What became of one damaged pack.
#[derive(Clone, Debug)]
pub struct PackRepair {
    pub id: Id,
    /// Why the header could not be used (the index's entries were then).
    pub header_error: Option<String>,
    /// Blobs read, verified and stored again (or found in another pack).
    pub salvaged: usize,
    /// Blobs that could not be read or did not verify, with why.
    pub lost: Vec<(BlobLocation, String)>,
}

#[derive(Debug, Default)]
pub struct RepairPacksReport {
    pub packs: Vec<PackRepair>,
    /// Index files written again without the damaged packs.
    pub index_files_rewritten: usize,
    /// Damaged packs deleted (0 in a dry run).
    pub packs_removed: usize,
}

impl RepairPacksReport {
    pub fn lost(&self) -> usize {
        self.packs.iter().map(|p| p.lost.len()).sum()
    }
}

/// The stored packs named by `specs` (full ids or unique prefixes), each
/// once, with their sizes. An unknown or ambiguous name is an error naming
/// it.
pub fn resolve_packs(repo: &Repository, specs: &[String]) -> Result<Vec<(Id, u64)>> {
    let stored = repo.stored_packs()?;
    let mut out: Vec<(Id, u64)> = Vec::new();
    for spec in specs {
        let want = spec.to_ascii_lowercase();
        if want.is_empty() || want.len() > 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                Kind::InvalidInput,
                format!("invalid pack id {spec:?} (expected hex digits)"),
            ));
        }
        let found: Vec<(Id, u64)> = stored
            .iter()
            .filter(|(id, _)| id.to_hex().starts_with(&want))
            .map(|(id, size)| (*id, *size))
            .collect();
        match found.as_slice() {
            [] => {
                return Err(Error::new(
                    Kind::NotFound,
                    format!("no pack {spec} in {}", repo.location()),
                ))
            }
            [one] => {
                if !out.iter().any(|(id, _)| *id == one.0) {
                    out.push(*one);
                }
            }
            _ => {
                return Err(Error::new(
                    Kind::Ambiguous,
                    format!("pack id prefix {spec} matches {} packs", found.len()),
                ))
            }
        }
    }
    Ok(out)
}

/// Salvage the packs `packs` (from [`resolve_packs`]) as the module says.
pub fn repair_packs(
    repo: &Arc<Repository>,
    packs: &[(Id, u64)],
    opts: &RepairPacksOptions,
) -> Result<RepairPacksReport> {
    let damaged: HashSet<Id> = packs.iter().map(|(id, _)| *id).collect();
    // Where the index places blobs in the damaged packs (for a pack whose
    // header is lost), read before they leave the in-memory index.
    repo.load_index_lenient()?;
    let mut indexed: HashMap<Id, Vec<PackEntry>> = HashMap::new();
    for loc in repo.index().iter().filter(|l| damaged.contains(&l.pack)) {
        indexed.entry(loc.pack).or_default().push(PackEntry {
            kind: loc.kind,
            id: loc.id,
            offset: loc.offset,
            length: loc.length,
            raw_length: loc.raw_length,
        });
    }
    // Without the damaged packs, the saver stores each salvaged blob anew
    // instead of taking it for already stored.
    repo.load_index_of_packs(|p| !damaged.contains(p))?;

    let mut report = RepairPacksReport::default();
    let saver = (!opts.dry_run).then(|| BlobSaver::new(repo.clone(), opts.saver.clone()));
    for &(pack, size) in packs {
        let (entries, header_error) = match repo.read_pack_header(&pack, size) {
            Ok(e) => (e, None),
            Err(e) => (indexed.remove(&pack).unwrap_or_default(), Some(e.message)),
        };
        let mut r = PackRepair {
            id: pack,
            header_error,
            salvaged: 0,
            lost: Vec::new(),
        };
        for e in entries {
            let loc = BlobLocation {
                id: e.id,
                kind: e.kind,
                pack,
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            };
            match repo.read_blob_at(&loc) {
                Ok(plain) => {
                    if let Some(s) = &saver {
                        s.save_with_id(loc.kind, loc.id, plain)?;
                    }
                    r.salvaged += 1;
                }
                // A blob the pack lost may still be stored in another pack.
                Err(_) if repo.lookup(&loc.id).is_some() => r.salvaged += 1,
                Err(err) if matches!(err.kind, Kind::Corrupt | Kind::Unsupported) => {
                    r.lost.push((loc, err.message))
                }
                Err(err) if err.kind == Kind::Backend(BackendKind::NotFound) => {
                    r.lost.push((loc, err.message))
                }
                // The backend failing is not damage: stop before anything is removed.
                Err(err) => return Err(err),
            }
        }
        report.packs.push(r);
    }
    let Some(saver) = saver else {
        return Ok(report);
    };
    saver.finish()?;

    // Index files that list a damaged pack, written again without it.
    for id in repo.index_file_ids()? {
        let file = match repo.load_index_file(&id) {
            Ok(f) => f,
            // Unreadable index files are `repair index`'s to rebuild.
            Err(e) if e.kind == Kind::Corrupt => continue,
            Err(e) => return Err(e),
        };
        if !file.packs.iter().any(|p| damaged.contains(&p.id)) {
            continue;
        }
        let kept = IndexFile {
            packs: file
                .packs
                .into_iter()
                .filter(|p| !damaged.contains(&p.id))
                .collect(),
        };
        if !kept.packs.is_empty() {
            repo.save_index_file(&kept)?;
        }
        repo.backend().remove(FileKind::Index, &id.to_hex())?;
        report.index_files_rewritten += 1;
    }
    for &(pack, _) in packs {
        match repo.backend().remove(FileKind::Data, &pack.to_hex()) {
            Ok(()) => report.packs_removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    repo.load_index()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, CheckOptions, CheckProgress};
    use crate::tree_walk::testutil::{file, local_repo, noise, saver};

    fn damage(path: &std::path::Path, at: u64) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x10;
        f.write_all_at(&b, at).unwrap();
    }

    /// One flipped bit in a pack loses exactly the blob it is in: the
    /// others are stored again, the pack is gone, check finds only the one
    /// blob missing; with the header damaged too, the index's entries
    /// stand in for it.
    #[test]
    fn intact_blobs_are_salvaged_and_only_the_damaged_one_is_lost() {
        for header_too in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let repo = local_repo(dir.path());
            let s = saver(&repo);
            let data = noise(180_000, 3);
            let node = file(&s, "f", &data, 20_000);
            s.finish().unwrap();
            repo.load_index().unwrap();
            let first = repo.lookup(&node.content[0]).unwrap();
            let pack = first.pack;
            let in_pack: Vec<Id> = repo
                .index()
                .iter()
                .filter(|l| l.pack == pack)
                .map(|l| l.id)
                .collect();
            assert!(in_pack.len() >= 2, "{in_pack:?}");
            let hex = pack.to_hex();
            let path = dir.path().join("data").join(&hex[..2]).join(&hex);
            damage(&path, first.offset as u64 + 40);
            let size = std::fs::metadata(&path).unwrap().len();
            if header_too {
                damage(&path, size - 20);
            }

            let packs = resolve_packs(&repo, &[hex[..10].to_string()]).unwrap();
            let dry = repair_packs(
                &repo,
                &packs,
                &RepairPacksOptions {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(dry.lost(), 1);
            assert!(path.exists(), "a dry run removed the pack");

            let r = repair_packs(&repo, &packs, &RepairPacksOptions::default()).unwrap();
            assert_eq!(r.packs.len(), 1);
            assert_eq!(r.packs[0].header_error.is_some(), header_too);
            assert_eq!(r.packs[0].lost.len(), 1, "{:?}", r.packs[0].lost);
            assert_eq!(r.packs[0].lost[0].0.id, first.id);
            assert_eq!(r.packs[0].salvaged, in_pack.len() - 1);
            assert_eq!(r.packs_removed, 1);
            assert!(!path.exists());

            // Every other blob of the file reads back, from other packs.
            for (i, id) in node.content.iter().enumerate().skip(1) {
                let got = repo.read_blob(id).unwrap();
                assert_eq!(got, data[i * 20_000..((i + 1) * 20_000).min(data.len())]);
                assert_ne!(repo.lookup(id).unwrap().pack, pack);
            }
            assert!(repo.lookup(&first.id).is_none());
            let c = check(
                &repo,
                &CheckOptions {
                    read_data: true,
                    ..Default::default()
                },
                &CheckProgress::default(),
            )
            .unwrap();
            assert!(c.errors.is_empty(), "{:?}", c.errors);
        }
    }

    #[test]
    fn unknown_and_malformed_pack_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let e = resolve_packs(&repo, &["abcd".into()]).unwrap_err();
        assert_eq!(e.kind, Kind::NotFound, "{}", e.message);
        let e = resolve_packs(&repo, &["xyz".into()]).unwrap_err();
        assert_eq!(e.kind, Kind::InvalidInput, "{}", e.message);
    }
}
