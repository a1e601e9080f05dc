//! A restic repository opened for reading: its master key, config and
//! index, over any cairn [`Backend`] (restic's layout is cairn's: `config`,
//! `keys/`, `snapshots/`, `index/`, `data/<xy>/`).
//!
//! Every object is checked before use: the MAC of everything encrypted,
//! the SHA-256 of index and snapshot files against their names, and the
//! SHA-256 of every blob's plaintext against its id. Nothing is written.
//!
//! Read order (restic's design document): list the snapshots *before*
//! loading the index, so that a snapshot a running restic writes meanwhile
//! finds its blobs in the index read after it.

use crate::crypto::Key;
use crate::error::{Error, Kind, Result};
use crate::files::{self, Config};
use crate::index::Index;
use crate::keyfile::{is_restic_key_file, KeyFile};
use crate::pack::{self, PackedBlob};
use crate::snapshot::Snapshot;
use crate::tree::Tree;
use crate::{BlobType, Id};
use cairn_backend::{Backend, FileKind};
use std::sync::Arc;

/// The largest blob accepted (restic's chunks are at most 8 MiB; trees of
/// huge directories are larger).
const MAX_BLOB: u64 = 1 << 30;

pub struct Repository {
    backend: Arc<dyn Backend>,
    key: Key,
    config: Config,
    index: Index,
}

/// Is the repository at `backend` a restic one (a `config`, and key files
/// in restic's form)? Reads the key files, no secret.
pub fn is_restic(backend: &dyn Backend) -> Result<bool> {
    if !backend.exists(FileKind::Config, "config")? {
        return Ok(false);
    }
    for k in backend.list(FileKind::Key)? {
        if let Ok(bytes) = backend.read(FileKind::Key, &k.name) {
            if is_restic_key_file(&bytes) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

impl Repository {
    /// Open with `password`: try every restic key file, then read the
    /// config. Does not load the index ([`Repository::load_index`]).
    pub fn open(backend: Arc<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let location = backend.location();
        let config_bytes = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(Error::new(
                    Kind::NoRepository,
                    format!("no restic repository at {location}"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let mut restic_keys = 0;
        let mut last_err = None;
        for k in backend.list(FileKind::Key)? {
            let bytes = backend.read(FileKind::Key, &k.name)?;
            if !is_restic_key_file(&bytes) {
                continue;
            }
            restic_keys += 1;
            let kf = match KeyFile::parse(&k.name, &bytes) {
                Ok(kf) => kf,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            if let Some(key) = kf.unlock(password)? {
                let json = files::open(&key, "restic config", &config_bytes)?;
                let config = Config::parse(&json)?;
                return Ok(Repository {
                    backend,
                    key,
                    config,
                    index: Index::default(),
                });
            }
        }
        if restic_keys == 0 {
            return Err(Error::new(
                Kind::NotRestic,
                format!("{location} is not a restic repository (no restic key files)"),
            ));
        }
        match last_err {
            Some(e) if restic_keys == 1 => Err(e),
            _ => Err(Error::new(
                Kind::WrongPassword,
                format!("wrong password: no restic key in {location} opens with it"),
            )),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn location(&self) -> String {
        self.backend.location()
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Read a file named by its SHA-256, check the name, open and decode it.
    fn read_unpacked(&self, kind: FileKind, what: &str, name: &str) -> Result<Vec<u8>> {
        let what = format!("{what} {}", name.get(..8).unwrap_or(name));
        let bytes = self.backend.read(kind, name)?;
        if Id::sha256(&bytes).to_hex() != name {
            return Err(Error::corrupt(&what, "the file's SHA-256 is not its name"));
        }
        files::open(&self.key, &what, &bytes)
    }

    /// Read every index file.
    pub fn load_index(&mut self) -> Result<()> {
        let mut index = Index::default();
        for f in self.backend.list(FileKind::Index)? {
            let json = self.read_unpacked(FileKind::Index, "restic index", &f.name)?;
            index.add_file(&f.name, &json)?;
        }
        self.index = index;
        Ok(())
    }

    /// Every snapshot, oldest first (by time, then id).
    pub fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Snapshot)? {
            let Some(id) = Id::from_hex(&f.name) else {
                continue;
            };
            let json = self.read_unpacked(FileKind::Snapshot, "restic snapshot", &f.name)?;
            out.push((id, Snapshot::parse(&id, &json)?));
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0 .0.cmp(&b.0 .0)));
        Ok(out)
    }

    /// A blob's plaintext, checked against its id.
    pub fn read_blob(&self, kind: BlobType, id: &Id) -> Result<Vec<u8>> {
        let what = || format!("restic {} blob {}", kind.as_str(), id.short());
        let loc = self
            .index
            .get(kind, id)
            .ok_or_else(|| Error::new(Kind::NotFound, format!("{}: not in the index", what())))?;
        if loc.length > MAX_BLOB + crate::crypto::OVERHEAD as u64 {
            return Err(Error::corrupt(what(), format!("{} bytes long", loc.length)));
        }
        let sealed = self
            .backend
            .read_range(
                FileKind::Data,
                &loc.pack.to_hex(),
                loc.offset,
                Some(loc.length),
            )
            .map_err(|e| Error::from(e).context(what()))?;
        if sealed.len() as u64 != loc.length {
            return Err(Error::corrupt(
                what(),
                format!("pack {} is truncated", loc.pack.short()),
            ));
        }
        let plain = self
            .key
            .open(&sealed)
            .map_err(|_| Error::corrupt(what(), "authentication failed"))?;
        let data = match loc.uncompressed_length {
            None => plain,
            Some(n) => {
                if n > MAX_BLOB {
                    return Err(Error::corrupt(what(), format!("{n} bytes uncompressed")));
                }
                let d = files::decompress(&what(), &plain, n)?;
                if d.len() as u64 != n {
                    return Err(Error::corrupt(
                        what(),
                        format!("{} bytes uncompressed, the index says {n}", d.len()),
                    ));
                }
                d
            }
        };
        if Id::sha256(&data) != *id {
            return Err(Error::corrupt(what(), "its SHA-256 is not its id"));
        }
        Ok(data)
    }

    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        Tree::parse(id, &self.read_blob(BlobType::Tree, id)?)
    }

    /// The blobs a pack's header lists (independent of the index).
    pub fn pack_blobs(&self, pack: &Id) -> Result<Vec<PackedBlob>> {
        let name = pack.to_hex();
        let what = || format!("restic pack {}", pack.short());
        let size = self.backend.stat(FileKind::Data, &name)?;
        if size < 4 {
            return Err(Error::corrupt(what(), "shorter than its trailer"));
        }
        let tail = self
            .backend
            .read_range(FileKind::Data, &name, size - 4, Some(4))?;
        let hlen = u32::from_le_bytes(
            tail[..4]
                .try_into()
                .map_err(|_| Error::corrupt(what(), "short read"))?,
        ) as u64;
        if hlen + 4 > size || hlen < crate::crypto::OVERHEAD as u64 {
            return Err(Error::corrupt(
                what(),
                format!("header length {hlen} does not fit"),
            ));
        }
        let start = size - 4 - hlen;
        let sealed = self
            .backend
            .read_range(FileKind::Data, &name, start, Some(hlen))?;
        let header = self
            .key
            .open(&sealed)
            .map_err(|_| Error::corrupt(what(), "header authentication failed"))?;
        pack::parse_header(*pack, &header, start)
    }

    /// Every pack file's id.
    pub fn list_packs(&self) -> Result<Vec<Id>> {
        Ok(self
            .backend
            .list(FileKind::Data)?
            .into_iter()
            .filter_map(|f| Id::from_hex(&f.name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_backend::MemoryBackend;

    /// An encrypted unpacked file: version 2 compresses, version 1 not.
    fn unpacked(key: &Key, version: u32, json: &serde_json::Value, iv: u8) -> Vec<u8> {
        let plain = json.to_string().into_bytes();
        let plain = if version == 2 {
            let mut p = vec![2u8];
            p.extend(zstd::bulk::compress(&plain, 3).unwrap());
            p
        } else {
            plain
        };
        key.seal_with_iv([iv; 16], &plain)
    }

    fn put(b: &MemoryBackend, kind: FileKind, bytes: &[u8]) -> String {
        let name = Id::sha256(bytes).to_hex();
        b.write(kind, &name, bytes).unwrap();
        name
    }

    /// A restic repository of `version` with one snapshot of one file
    /// (`content`, in two blobs, the second compressed in version 2).
    fn build(version: u32) -> (Arc<MemoryBackend>, Vec<u8>) {
        let b = Arc::new(MemoryBackend::new());
        let master = Key::from_bytes(&[5u8; 64]);
        b.write(
            FileKind::Key,
            &Id::sha256(b"k").to_hex(),
            &crate::keyfile::create(&master, b"secret", 10),
        )
        .unwrap();
        let config = serde_json::json!({"version": version, "id": Id::sha256(b"repo").to_hex(), "chunker_polynomial": "2dadca53f8bcc3"});
        b.write(
            FileKind::Config,
            "config",
            &unpacked(&master, version, &config, 1),
        )
        .unwrap();
        let part1 = b"first part, ".to_vec();
        let part2 = vec![b'z'; 5000];
        let content = [part1.clone(), part2.clone()].concat();
        // The data pack: blob 1 plain, blob 2 compressed in version 2.
        let e1 = master.seal_with_iv([2; 16], &part1);
        let (e2, ulen) = if version == 2 {
            let z = zstd::bulk::compress(&part2, 3).unwrap();
            (master.seal_with_iv([3; 16], &z), Some(part2.len() as u32))
        } else {
            (master.seal_with_iv([3; 16], &part2), None)
        };
        let (id1, id2) = (Id::sha256(&part1), Id::sha256(&part2));
        let tree = serde_json::json!({"nodes": [{
            "name": "f", "type": "file", "mode": 420,
            "mtime": "2026-11-30T18:42:42.5Z", "atime": "2026-11-30T18:42:42.5Z",
            "ctime": "2026-11-30T18:42:42.5Z", "size": content.len(),
            "content": [id1.to_hex(), id2.to_hex()]}]})
        .to_string();
        let tree_id = Id::sha256(tree.as_bytes());
        let et = master.seal_with_iv([4; 16], tree.as_bytes());
        let mut pack = [e1.clone(), e2.clone(), et.clone()].concat();
        let mut header = vec![0u8];
        header.extend((e1.len() as u32).to_le_bytes());
        header.extend(id1.0);
        match ulen {
            Some(n) => {
                header.push(2);
                header.extend((e2.len() as u32).to_le_bytes());
                header.extend(n.to_le_bytes());
            }
            None => {
                header.push(0);
                header.extend((e2.len() as u32).to_le_bytes());
            }
        }
        header.extend(id2.0);
        header.push(1);
        header.extend((et.len() as u32).to_le_bytes());
        header.extend(tree_id.0);
        let eh = master.seal_with_iv([6; 16], &header);
        pack.extend(&eh);
        pack.extend((eh.len() as u32).to_le_bytes());
        let pack_id = put(&b, FileKind::Data, &pack);
        let mut blob2 = serde_json::json!({"id": id2.to_hex(), "type": "data", "offset": e1.len(), "length": e2.len()});
        if let Some(n) = ulen {
            blob2["uncompressed_length"] = n.into();
        }
        let index = serde_json::json!({"packs": [{"id": pack_id, "blobs": [
            {"id": id1.to_hex(), "type": "data", "offset": 0, "length": e1.len()},
            blob2,
            {"id": tree_id.to_hex(), "type": "tree", "offset": e1.len() + e2.len(), "length": et.len()},
        ]}]});
        put(&b, FileKind::Index, &unpacked(&master, version, &index, 7));
        let snap = serde_json::json!({"time": "2026-11-30T18:42:45.633068858Z", "tree": tree_id.to_hex(),
            "paths": ["/src"], "hostname": "h", "username": "u", "tags": ["t"]});
        put(
            &b,
            FileKind::Snapshot,
            &unpacked(&master, version, &snap, 8),
        );
        (b, content)
    }

    #[test]
    fn reads_versions_1_and_2() {
        for version in [1, 2] {
            let (b, content) = build(version);
            assert!(is_restic(&*b).unwrap());
            let err = Repository::open(b.clone(), b"wrong").err().unwrap();
            assert_eq!(err.kind, Kind::WrongPassword);
            let mut r = Repository::open(b.clone(), b"secret").unwrap();
            assert_eq!(r.config().version, version);
            r.load_index().unwrap();
            let snaps = r.list_snapshots().unwrap();
            assert_eq!(snaps.len(), 1);
            let (_, s) = &snaps[0];
            assert_eq!(s.tags, ["t"]);
            let tree = r.load_tree(&s.tree).unwrap();
            let node = &tree.nodes[0];
            let data: Vec<u8> = node
                .content
                .iter()
                .flat_map(|id| r.read_blob(BlobType::Data, id).unwrap())
                .collect();
            assert_eq!(data, content);
            // The pack header says what the index says.
            let packs = r.list_packs().unwrap();
            assert_eq!(packs.len(), 1);
            let listed = r.pack_blobs(&packs[0]).unwrap();
            assert_eq!(listed.len(), 3);
            for pb in listed {
                assert_eq!(r.index().get(pb.kind, &pb.id), Some(pb.location));
            }
            // A blob asked for as the wrong type is not found.
            assert_eq!(
                r.read_blob(BlobType::Tree, &node.content[0])
                    .unwrap_err()
                    .kind,
                Kind::NotFound
            );
        }
    }

    #[test]
    fn damage_is_reported_never_a_panic() {
        let (b, _) = build(2);
        let r = {
            let mut r = Repository::open(b.clone(), b"secret").unwrap();
            r.load_index().unwrap();
            r
        };
        let pack = r.list_packs().unwrap()[0];
        let bytes = b.read(FileKind::Data, &pack.to_hex()).unwrap();
        let snaps = r.list_snapshots().unwrap();
        let tree_id = snaps[0].1.tree;
        // Flip each byte of the pack in turn: every byte belongs to a blob
        // or the header, so some read fails, with an error, not a panic.
        let content = r.load_tree(&tree_id).unwrap().nodes[0].content.clone();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            b.remove(FileKind::Data, &pack.to_hex()).unwrap();
            b.write(FileKind::Data, &pack.to_hex(), &bad).unwrap();
            let failed = r.load_tree(&tree_id).is_err()
                || content
                    .iter()
                    .any(|id| r.read_blob(BlobType::Data, id).is_err())
                || r.pack_blobs(&pack).is_err();
            assert!(failed, "byte {i} of {} changed unnoticed", bytes.len());
        }
        // A snapshot file whose bytes do not hash to its name.
        let name = b.list(FileKind::Snapshot).unwrap()[0].name.clone();
        b.remove(FileKind::Snapshot, &name).unwrap();
        b.write(FileKind::Snapshot, &name, b"garbage").unwrap();
        assert_eq!(r.list_snapshots().unwrap_err().kind, Kind::Corrupt);
    }

    #[test]
    fn a_cairn_or_empty_location_is_not_restic() {
        let b = Arc::new(MemoryBackend::new());
        assert!(!is_restic(&*b).unwrap());
        assert_eq!(
            Repository::open(b.clone(), b"x").err().unwrap().kind,
            Kind::NoRepository
        );
        b.write(FileKind::Config, "config", b"sealed").unwrap();
        b.write(
            FileKind::Key,
            &Id::sha256(b"k").to_hex(),
            br#"{"version":1,"kdf":"scrypt","log_n":14,"r":8,"p":4,"salt":"AA==","data":"AA=="}"#,
        )
        .unwrap();
        assert!(!is_restic(&*b).unwrap());
        assert_eq!(
            Repository::open(b, b"x").err().unwrap().kind,
            Kind::NotRestic
        );
    }
}
