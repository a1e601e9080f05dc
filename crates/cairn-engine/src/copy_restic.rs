//! Copying a restic repository's snapshots into a cairn repository, so a
//! switch to cairn keeps the whole history.
//!
//! restic's blobs are not cairn's: another chunker, another hash, another
//! cipher. So nothing is copied as stored. Each snapshot is rebuilt:
//!
//! - **Files**: each file's restic data blobs are read in order (checked
//!   against their SHA-256 ids) and streamed through cairn's own chunker
//!   and [`BlobSaver`], the path a backup takes
//!   ([`crate::archiver::files::store_chunks`]). The chunks are those a
//!   `cairn backup` of the same file makes, so later backups deduplicate
//!   against the copied history. A file whose restic content list was
//!   converted before in this run is not read again.
//! - **Trees**: each restic node becomes a cairn node with the same name,
//!   type, permission bits (from Go's `os.FileMode`), owner (ids and
//!   names), times in nanoseconds, inode, device, link count (hard links
//!   restore as links), device numbers, symlink target and extended
//!   attributes. Directories keep cairn's convention `atime = mtime`
//!   (repo-format.md §10). restic records no link count for directories,
//!   so theirs is 0 (the first cairn backup after the copy writes each
//!   directory's tree again; its files, unchanged, are not read). Trees
//!   are rebuilt bottom-up with [`rewrite_tree`] (no recursion), a restic
//!   tree converted once per run.
//! - **Snapshots**: time (with its offset and nanoseconds), host, user,
//!   uid/gid, paths, tags, excludes and restic's summary are kept; the
//!   tree layout is restic's (both store the path from `/` down). The
//!   restic snapshot's persistent id (its `original`, else its id) goes
//!   into `original`, which is how a later run recognises a copy, exactly
//!   as [`crate::copy`] does between cairn repositories (the same
//!   [`is_copy_of`] test): re-running copies only what is new.
//!
//! As in [`crate::copy`], a snapshot is written only after its saver has
//! stored every pack and index file, so an interrupted copy leaves no
//! snapshot pointing at missing data, and the next run reuses what was
//! stored. The restic repository is only read.

use crate::archiver::files::{store_chunks, ReadError};
use crate::copy::{add_stats, is_copy_of, CopyEvent, CopyOptions, CopyProgress, CopyReport};
use crate::tree_rewrite::{self, rewrite_tree, Dir, Opened};
use crate::tree_walk::join_name;
use crate::{Error, Kind, Result};
use cairn_repository::format::snapshot::{Snapshot, SNAPSHOT_VERSION};
use cairn_repository::format::tree::{ByteString, Node, NodeKind, Tree, Xattr};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{parallel_map, BlobSaver, Repository, SnapshotFilter};
use cairn_restic::snapshot::Snapshot as ResticSnapshot;
use cairn_restic::tree::{nanos, Node as ResticNode};
use cairn_restic::{BlobType, Repository as Restic};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The cairn snapshot for a restic one, its tree still the restic root
/// (the copy replaces it).
pub fn convert_snapshot(id: &Id, s: &ResticSnapshot) -> Snapshot {
    Snapshot {
        version: SNAPSHOT_VERSION,
        time: s.time,
        tree: s.tree,
        paths: s.paths.clone(),
        hostname: s.hostname.clone(),
        username: s.username.clone(),
        uid: s.uid,
        gid: s.gid,
        tags: s.tags.clone(),
        excludes: s.excludes.clone(),
        parent: None,
        original: Some(s.persistent_id(id)),
        program_version: if s.program_version.is_empty() {
            "restic".to_string()
        } else {
            s.program_version.clone()
        },
        // restic's summary has cairn's field names; one that does not fit is left out.
        summary: s
            .summary
            .clone()
            .and_then(|v| serde_json::from_value(v).ok()),
    }
}

/// The restic snapshots to copy from `all` (oldest first): those `specs`
/// name (`latest`, a full id or a unique prefix of one, as for cairn's
/// own snapshots), or with no specs every one `filter` matches.
pub fn select(
    all: &[(Id, ResticSnapshot)],
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(Id, ResticSnapshot)>> {
    let matches = |id: &Id, s: &ResticSnapshot| filter.matches(&convert_snapshot(id, s));
    if specs.is_empty() {
        return Ok(all
            .iter()
            .filter(|(id, s)| matches(id, s))
            .cloned()
            .collect());
    }
    let mut out = Vec::new();
    for spec in specs {
        if spec == "latest" {
            let latest = all.iter().rev().find(|(id, s)| matches(id, s));
            out.push(
                latest.cloned().ok_or_else(|| {
                    Error::not_found("no snapshot found in the restic repository")
                })?,
            );
            continue;
        }
        if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "invalid snapshot id {spec:?} (expected hex digits or `latest`)"
            )));
        }
        let spec = spec.to_ascii_lowercase();
        let found: Vec<_> = all
            .iter()
            .filter(|(id, _)| id.to_hex().starts_with(&spec))
            .collect();
        match found.as_slice() {
            [] => {
                return Err(Error::not_found(format!(
                    "no snapshot with id {spec} in the restic repository"
                )))
            }
            [one] => out.push((*one).clone()),
            many => {
                return Err(Error::new(
                    Kind::Ambiguous,
                    format!(
                        "snapshot id prefix {spec} is ambiguous: it matches {} snapshots",
                        many.len()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Copy the restic snapshots `snapshots` (from `src`, its index loaded)
/// into `dst` (its index loaded). `on_event` is called as each snapshot
/// is copied or skipped; [`CopyReport::shared_ids`] is always false.
pub fn copy_from_restic(
    src: &Restic,
    dst: &Arc<Repository>,
    snapshots: &[(Id, ResticSnapshot)],
    opts: &CopyOptions,
    progress: &CopyProgress,
    on_event: &mut dyn FnMut(&CopyEvent),
) -> Result<CopyReport> {
    // Packs an interrupted earlier copy stored: index them, so they are not stored again.
    dst.recover_unindexed_packs()?;
    let mut targets = dst.list_snapshots()?;
    let mut converter = Converter {
        src,
        readers: opts.readers.max(1),
        trees: HashMap::new(),
        files: Mutex::new(HashMap::new()),
        progress,
    };
    let mut report = CopyReport::default();
    let mut done = std::collections::HashSet::new();
    for (sid, rs) in snapshots {
        if !done.insert(*sid) {
            continue;
        }
        let mut sn = convert_snapshot(sid, rs);
        if let Some((tid, _)) = targets
            .iter()
            .find(|(tid, t)| is_copy_of(sid, &sn, tid, t, false))
        {
            let ev = CopyEvent::Skipped {
                source: *sid,
                existing: *tid,
            };
            on_event(&ev);
            report.events.push(ev);
            progress.snapshots_done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let saver = BlobSaver::new(dst.clone(), opts.saver.clone());
        sn.tree = rewrite_tree(
            &mut Convert {
                converter: &mut converter,
                saver: &saver,
            },
            rs.tree,
            Path::new("/"),
        )
        .map_err(|e| e.context(format!("copying restic snapshot {}", sid.short())))?;
        let stats = saver.finish()?;
        let nid = dst.save_snapshot(&sn)?;
        add_stats(&mut report.stats, &stats);
        let ev = CopyEvent::Copied {
            source: *sid,
            target: nid,
            stats,
        };
        on_event(&ev);
        report.events.push(ev);
        targets.push((nid, sn));
        progress.snapshots_done.fetch_add(1, Ordering::Relaxed);
    }
    report.blobs_read = progress.blobs_read.load(Ordering::Relaxed);
    report.bytes_read = progress.bytes_read.load(Ordering::Relaxed);
    Ok(report)
}

struct Converter<'a> {
    src: &'a Restic,
    readers: usize,
    /// restic tree id → cairn tree id, for trees converted in this run.
    trees: HashMap<Id, Id>,
    /// SHA-256 of a restic content list → the cairn content and size.
    files: Mutex<HashMap<Id, (Vec<Id>, u64)>>,
    progress: &'a CopyProgress,
}

/// A file's restic data blobs, one after the other, as a byte stream.
struct BlobReader<'a> {
    /// The file's blobs in order, each read and checked.
    blobs: Box<dyn Iterator<Item = cairn_restic::Result<Vec<u8>>> + 'a>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(blob) = self.blobs.next() else {
                return Ok(0);
            };
            // The reader's error travels inside the io::Error, to be taken out whole.
            self.buf = blob.map_err(std::io::Error::other)?;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Blobs of one file read and checked at once, ahead of the chunker (a
/// restic blob is at most 8 MiB: at most 2 × this many are held).
const PREFETCH: usize = 2;

impl Converter<'_> {
    /// The cairn content (chunk ids) and size of a restic file.
    fn file_content(
        &self,
        saver: &BlobSaver,
        n: &ResticNode,
        path: &Path,
    ) -> Result<(Vec<Id>, u64)> {
        if n.content.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let key = Id::sha256(&n.content.iter().flat_map(|id| id.0).collect::<Vec<u8>>());
        if let Some(known) = self.files.lock().unwrap().get(&key) {
            return Ok(known.clone());
        }
        let (src, progress) = (self.src, self.progress);
        let read = |id: &Id| {
            let b = src.read_blob(BlobType::Data, id)?;
            progress.blobs_read.fetch_add(1, Ordering::Relaxed);
            progress
                .bytes_read
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b)
        };
        let stored = if n.content.len() == 1 {
            let reader = BlobReader {
                blobs: Box::new(n.content.iter().map(read)),
                buf: Vec::new(),
                pos: 0,
            };
            store_chunks(reader, Some(n.size), saver, &|_| {}, None)
        } else {
            // Reading, checking and decompressing restic's blobs runs beside
            // the chunker instead of before it.
            std::thread::scope(|s| {
                let (tx, rx) = crossbeam_channel::bounded(PREFETCH);
                s.spawn(move || {
                    for batch in n.content.chunks(PREFETCH) {
                        match parallel_map(batch, PREFETCH, read) {
                            Ok(blobs) => {
                                for b in blobs {
                                    if tx.send(Ok(b)).is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                });
                // The receiver goes with the reader: if the chunker stops early, the reading thread stops too.
                let reader = BlobReader {
                    blobs: Box::new(rx.into_iter()),
                    buf: Vec::new(),
                    pos: 0,
                };
                store_chunks(reader, Some(n.size), saver, &|_| {}, None)
            })
        };
        let out = match stored {
            Ok(out) => out,
            Err(ReadError::Repo(e)) => return Err(e),
            Err(ReadError::Source(e)) => {
                let what = format!("file {}", path.display());
                return Err(
                    match e.into_inner().map(|b| b.downcast::<cairn_restic::Error>()) {
                        Some(Ok(re)) => Error::from(*re).context(what),
                        Some(Err(other)) => Error::new(Kind::Io, format!("{what}: {other}")),
                        None => Error::new(Kind::Io, format!("{what}: read failed")),
                    },
                );
            }
        };
        let result = (out.content, out.size);
        self.files.lock().unwrap().insert(key, result.clone());
        Ok(result)
    }
}

/// A restic node (named `name`, its unescaped name, at `path`) as a cairn
/// node, without a file's content; a directory's `subtree` is still the
/// restic tree id.
pub fn convert_node(n: &ResticNode, name: Vec<u8>, path: &Path) -> Result<Node> {
    let what = || path.display().to_string();
    let kind = match n.kind.as_str() {
        "file" => NodeKind::File,
        "dir" => NodeKind::Dir,
        "symlink" => NodeKind::Symlink,
        "dev" => NodeKind::Dev,
        "chardev" => NodeKind::Chardev,
        "fifo" => NodeKind::Fifo,
        "socket" => NodeKind::Socket,
        other => {
            return Err(Error::new(
                Kind::Unsupported,
                format!(
                    "{}: restic node type {other:?} has no equivalent in cairn",
                    what()
                ),
            ))
        }
    };
    let mode = n.posix_mode().expect("a known type has POSIX bits");
    let mut node = Node::new(ByteString(name), kind);
    node.mode = mode;
    node.mtime = nanos(&n.mtime);
    node.atime = if kind == NodeKind::Dir {
        node.mtime
    } else {
        nanos(&n.atime)
    };
    node.ctime = nanos(&n.ctime);
    node.uid = n.uid;
    node.gid = n.gid;
    node.user = n.user.clone();
    node.group = n.group.clone();
    node.inode = n.inode;
    node.device = n.device_id;
    node.links = n.links;
    if matches!(kind, NodeKind::Dev | NodeKind::Chardev) {
        node.rdev = n.device;
    }
    if kind == NodeKind::Symlink {
        node.linktarget = Some(ByteString(
            n.link_target()
                .map_err(|e| Error::from(e).context(what()))?,
        ));
    }
    if kind == NodeKind::Dir {
        node.subtree =
            Some(n.subtree.ok_or_else(|| {
                Error::corrupt(format!("restic directory {}", what()), "no subtree")
            })?);
    }
    let mut xattrs: Vec<Xattr> = n
        .xattrs()
        .map_err(|e| Error::from(e).context(what()))?
        .iter()
        .map(|(name, value)| Xattr::new(name, value))
        .collect();
    xattrs.sort_by(|a, b| a.name.cmp(&b.name));
    node.xattrs = xattrs;
    Ok(node)
}

/// [`copy_from_restic`]'s steps over one snapshot's trees.
struct Convert<'c, 'a> {
    converter: &'c mut Converter<'a>,
    saver: &'c BlobSaver,
}

impl tree_rewrite::Rewriter for Convert<'_, '_> {
    type State = ();
    type Out = Id;

    fn known(&mut self, _path: &Path, id: Id) -> Result<Option<Id>> {
        Ok(self.converter.trees.get(&id).copied())
    }

    /// Load a restic tree, convert its nodes, and its files' contents.
    fn open(&mut self, path: PathBuf, id: Id) -> Result<Opened<(), Id>> {
        let c = &*self.converter;
        let tree = c
            .src
            .load_tree(&id)
            .map_err(|e| Error::from(e).context(format!("directory {}", path.display())))?;
        c.progress.blobs_read.fetch_add(1, Ordering::Relaxed);
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for n in &tree.nodes {
            let name = n
                .name_bytes()
                .map_err(|e| Error::from(e).context(format!("directory {}", path.display())))?;
            let at = join_name(&path, &name);
            nodes.push(convert_node(n, name, &at)?);
        }
        let files: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].kind == NodeKind::File)
            .collect();
        let saver = self.saver;
        let contents = parallel_map(&files, c.readers, |&i| {
            c.file_content(
                saver,
                &tree.nodes[i],
                &join_name(&path, nodes[i].name.as_bytes()),
            )
        })?;
        for (&i, (content, size)) in files.iter().zip(contents) {
            nodes[i].content = content;
            nodes[i].size = size;
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = nodes.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::corrupt(
                format!("restic tree {} of {}", id.short(), path.display()),
                format!("two entries named {:?}", w[0].name),
            ));
        }
        Ok(Opened::Dir(Dir {
            id,
            path,
            nodes,
            state: (),
        }))
    }

    fn child(&mut self, parent: &mut Dir<()>, index: usize, id: Id) -> Result<()> {
        parent.nodes[index].subtree = Some(id);
        Ok(())
    }

    /// Store a converted tree; returns its cairn id.
    fn close(&mut self, dir: Dir<()>) -> Result<Id> {
        let bytes = Tree { nodes: dir.nodes }.to_bytes();
        let (id, _) = self.saver.save(BlobKind::Tree, bytes)?;
        self.converter.trees.insert(dir.id, id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: &str) -> ResticNode {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn nodes_keep_their_metadata() {
        let f = node(
            r#"{"name":"a","type":"file","mode":8389028,"mtime":"2026-11-30T18:42:42.854644598+01:00","atime":"2026-11-30T18:42:43.5Z","ctime":"2026-11-30T18:42:42.866644598Z","uid":1000,"gid":100,"user":"u","group":"g","inode":7,"device_id":65024,"size":6,"links":2,"extended_attributes":[{"name":"user.z","value":"eg=="},{"name":"user.a","value":null}]}"#,
        );
        let n = convert_node(&f, b"a".to_vec(), Path::new("/x/a")).unwrap();
        assert_eq!(n.kind, NodeKind::File);
        assert_eq!(n.mode, 0o104644, "Go's setuid bit (1 << 23) and rw-r--r--");
        assert_eq!(n.mtime, 1_796_060_562_854_644_598);
        assert_eq!(n.atime, 1_796_064_163_500_000_000);
        assert_eq!(n.ctime, 1_796_064_162_866_644_598);
        assert_eq!(
            (n.uid, n.gid, n.user.as_str(), n.group.as_str()),
            (1000, 100, "u", "g")
        );
        assert_eq!((n.inode, n.device, n.links, n.rdev), (7, 65024, 2, 0));
        let names: Vec<_> = n.xattrs.iter().map(|x| x.name.to_string_lossy()).collect();
        assert_eq!(names, ["user.a", "user.z"], "sorted by name");
        assert_eq!(n.xattrs[1].value_bytes().unwrap(), b"z");

        let d = node(
            r#"{"name":"d","type":"dir","mode":2147484141,"mtime":"2026-11-30T18:42:42Z","atime":"2026-12-01T00:00:00Z","ctime":"2026-11-30T18:42:42Z","subtree":"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8"}"#,
        );
        let n = convert_node(&d, b"d".to_vec(), Path::new("/d")).unwrap();
        assert_eq!(n.mode, 0o040755);
        assert_eq!(
            n.atime, n.mtime,
            "directories: atime = mtime, as cairn writes"
        );
        assert_eq!(n.subtree.unwrap().to_hex()[..8], *"ac08ce34");
        let mut no_subtree = d.clone();
        no_subtree.subtree = None;
        assert!(convert_node(&no_subtree, b"d".to_vec(), Path::new("/d")).is_err());

        let c = node(
            r#"{"name":"null","type":"chardev","mode":69206454,"mtime":"2026-11-30T18:42:42Z","atime":"2026-11-30T18:42:42Z","ctime":"2026-11-30T18:42:42Z","device":259,"device_id":5}"#,
        );
        let n = convert_node(&c, b"null".to_vec(), Path::new("/null")).unwrap();
        assert_eq!((n.mode, n.rdev, n.device), (0o020666, 259, 5));

        let l = node(
            r#"{"name":"l","type":"symlink","mode":134218239,"mtime":"2026-11-30T18:42:42Z","atime":"2026-11-30T18:42:42Z","ctime":"2026-11-30T18:42:42Z","linktarget":"../t"}"#,
        );
        let n = convert_node(&l, b"l".to_vec(), Path::new("/l")).unwrap();
        assert_eq!(n.linktarget.unwrap().as_bytes(), b"../t");

        let mut odd = l.clone();
        odd.kind = "irregular".into();
        let e = convert_node(&odd, b"l".to_vec(), Path::new("/l")).unwrap_err();
        assert_eq!(e.kind, Kind::Unsupported);
        assert!(e.message.contains("/l"), "{}", e.message);
    }

    #[test]
    fn snapshots_keep_their_fields_and_select_like_cairn() {
        let json = r#"{"time":"2026-11-30T18:42:45.633068858+01:00","tree":"ffa72cab528e62f28f8a0a63cec9441126c0b83b8555724c73a26a3a89eeaff5","paths":["/src"],"hostname":"h","username":"u","uid":1,"gid":2,"tags":["a","b"],"excludes":["*.o"],"parent":"ffa72cab528e62f28f8a0a63cec9441126c0b83b8555724c73a26a3a89eeaff5"}"#;
        let id = Id::sha256(json.as_bytes());
        let rs = ResticSnapshot::parse(&id, json.as_bytes()).unwrap();
        let s = convert_snapshot(&id, &rs);
        assert_eq!(s.time, rs.time);
        assert_eq!((s.uid, s.gid), (1, 2));
        assert_eq!(s.original, Some(id));
        assert_eq!(s.parent, None);
        assert_eq!(s.program_version, "restic");
        let mut later = rs.clone();
        later.time += chrono::Duration::seconds(1);
        later.hostname = "other".into();
        later.original = Some(id);
        let later_id = Id::sha256(b"later");
        assert_eq!(convert_snapshot(&later_id, &later).original, Some(id));

        // restic 0.17's summary has cairn's field names: it is kept.
        let mut with_summary = rs.clone();
        with_summary.summary = Some(serde_json::json!({
            "backup_start": "2026-11-30T18:42:40Z", "backup_end": "2026-11-30T18:42:45Z",
            "files_new": 3, "files_changed": 1, "files_unmodified": 0, "dirs_new": 1,
            "dirs_changed": 0, "dirs_unmodified": 0, "data_blobs": 4, "tree_blobs": 2,
            "data_added": 100, "data_added_packed": 80, "total_files_processed": 4,
            "total_bytes_processed": 120}));
        let summary = convert_snapshot(&id, &with_summary).summary.unwrap();
        assert_eq!((summary.files_new, summary.data_added_packed), (3, 80));
        assert!(convert_snapshot(&id, &rs).summary.is_none());

        let all = vec![(id, rs), (later_id, later)];
        let f = SnapshotFilter::default();
        assert_eq!(select(&all, &[], &f).unwrap().len(), 2);
        let latest = select(&all, &["latest".into()], &f).unwrap();
        assert_eq!(latest[0].0, later_id);
        let host_h = SnapshotFilter {
            hosts: vec!["h".into()],
            ..Default::default()
        };
        assert_eq!(select(&all, &["latest".into()], &host_h).unwrap()[0].0, id);
        assert_eq!(select(&all, &[], &host_h).unwrap().len(), 1);
        let prefix = id.to_hex()[..6].to_string();
        assert_eq!(select(&all, &[prefix], &f).unwrap()[0].0, id);
        assert_eq!(
            select(&all, &["zz".into()], &f).unwrap_err().kind,
            Kind::InvalidInput
        );
        assert_eq!(
            select(&all, &["".into()], &f).unwrap_err().kind,
            Kind::InvalidInput
        );
    }
}
