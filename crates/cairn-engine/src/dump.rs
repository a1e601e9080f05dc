//! `dump`: a snapshot path written to a stream.
//!
//! - A file: its content, blob after blob (a few blobs fetched ahead in
//!   parallel; never the whole file in memory), so a database dump can go
//!   straight back into the database.
//! - A directory: a tar stream (GNU format, with PAX records for
//!   nanosecond mtimes and extended attributes) of everything below it.
//!   As in restic, entry names are the snapshot paths without the leading
//!   `/`: dumping `/home/u/docs` gives `home/u/docs/a.txt`, …, and `/`
//!   dumps the whole snapshot. Symlinks, hard links (within the dump),
//!   fifos and devices are entries of their kind; sockets are left out.
//! - A directory as zip ([`Archive::Zip`], restic's `--archive zip`): the
//!   same names, files deflated, directories and symlinks as entries of
//!   their kind; hard links become copies, and fifos, devices and sockets
//!   are left out (zip has no such entries). The zip is streamed (sizes in
//!   data descriptors, ZIP64 for files of 4 GiB and more), so it can go to
//!   a pipe.

use crate::tree_walk::{self, Visit, Visitor};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use cairn_repository::{parallel_map, Repository};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Blobs fetched ahead of the one being written.
const READ_AHEAD: usize = 4;
/// Hard-linked inodes remembered at once (further links become copies).
const MAX_HARDLINKS: usize = 100_000;

/// The archive format a directory is dumped in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Archive {
    #[default]
    Tar,
    Zip,
}

impl Archive {
    /// restic's names: `tar`, `zip`.
    pub fn parse(s: &str) -> Result<Archive> {
        match s {
            "tar" => Ok(Archive::Tar),
            "zip" => Ok(Archive::Zip),
            _ => Err(Error::invalid(format!(
                "invalid --archive {s:?}: use tar or zip"
            ))),
        }
    }
}

/// Write the file or directory at `path` (an absolute snapshot path) of the
/// snapshot whose root tree is `root_tree` to `writer`: a file's content,
/// or a directory as tar.
pub fn dump(repo: &Repository, root_tree: Id, path: &Path, writer: &mut dyn Write) -> Result<()> {
    dump_as(repo, root_tree, path, Archive::Tar, writer)
}

/// As [`dump`], a directory in the `archive` format.
pub fn dump_as(
    repo: &Repository,
    root_tree: Id,
    path: &Path,
    archive: Archive,
    writer: &mut dyn Write,
) -> Result<()> {
    let path = tree_walk::normalize(path);
    let node = tree_walk::find_node(repo, root_tree, &path)?;
    match node.kind {
        NodeKind::File => write_content(repo, &node, &path, writer),
        NodeKind::Dir if archive == Archive::Zip => write_zip(repo, &node, &path, writer),
        NodeKind::Dir => write_tar(repo, &node, &path, writer),
        kind => Err(Error::invalid(format!(
            "{} is a {}: dump writes the contents of a file, or a directory as tar",
            path.display(),
            kind.as_str()
        ))),
    }
}

fn output_error(e: io::Error) -> Error {
    Error::io(e, "writing the dump")
}

/// A file's blobs, in order, fetched [`READ_AHEAD`] at a time in parallel.
struct Blobs<'a> {
    repo: &'a Repository,
    ids: &'a [Id],
    path: &'a Path,
    next: usize,
    ready: VecDeque<Vec<u8>>,
}

impl<'a> Blobs<'a> {
    fn new(repo: &'a Repository, node: &'a Node, path: &'a Path) -> Self {
        Blobs {
            repo,
            ids: &node.content,
            path,
            next: 0,
            ready: VecDeque::new(),
        }
    }

    fn next_blob(&mut self) -> Result<Option<Vec<u8>>> {
        if self.ready.is_empty() && self.next < self.ids.len() {
            let window = &self.ids[self.next..(self.next + READ_AHEAD).min(self.ids.len())];
            let blobs = parallel_map(window, READ_AHEAD, |id| self.repo.read_blob(id))
                .map_err(|e| e.context(self.path.display()))?;
            self.next += window.len();
            self.ready.extend(blobs);
        }
        Ok(self.ready.pop_front())
    }

    /// The content's length, from the index (without reading any blob).
    fn total_len(&self) -> Result<u64> {
        let index = self.repo.index();
        self.ids.iter().try_fold(0u64, |sum, id| match index.get(id) {
            Some(loc) => Ok(sum + loc.raw_length as u64),
            None => Err(Error::corrupt(
                self.path.display(),
                format!("data blob {} is not in the repository index (data lost? run `cairn check`)", id.short()),
            )),
        })
    }
}

/// Stream a file's content: a thread fetches blobs (a few in parallel)
/// while this one writes, with at most a few blobs in memory.
fn write_content(
    repo: &Repository,
    node: &Node,
    path: &Path,
    writer: &mut dyn Write,
) -> Result<()> {
    std::thread::scope(|s| {
        let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<u8>>>(2);
        s.spawn(move || {
            let mut blobs = Blobs::new(repo, node, path);
            loop {
                match blobs.next_blob() {
                    Ok(None) => break,
                    // A closed channel means the writer failed: stop fetching.
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        for blob in rx {
            writer.write_all(&blob?).map_err(output_error)?;
        }
        writer.flush().map_err(output_error)
    })
}

/// `Blobs` as a reader for the tar builder; the first repository error is
/// kept to be returned as itself rather than as an I/O error.
struct BlobReader<'a> {
    blobs: Blobs<'a>,
    current: Vec<u8>,
    pos: usize,
    error: Option<Error>,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.blobs.next_blob() {
                Ok(Some(b)) => {
                    self.current = b;
                    self.pos = 0;
                }
                Ok(None) => return Ok(0),
                Err(e) => {
                    let io = io::Error::other(e.message.clone());
                    self.error = Some(e);
                    return Err(io);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn write_tar(repo: &Repository, node: &Node, path: &Path, writer: &mut dyn Write) -> Result<()> {
    let mut v = TarWriter {
        repo,
        tar: tar::Builder::new(writer),
        links: HashMap::new(),
    };
    if let Some(tree) = node.subtree {
        tree_walk::walk(repo, tree, path, &mut v)?;
    }
    let w = v.tar.into_inner().map_err(output_error)?;
    w.flush().map_err(output_error)
}

struct TarWriter<'a, W: Write> {
    repo: &'a Repository,
    tar: tar::Builder<W>,
    /// (device, inode) → (first entry name, links still to come).
    links: HashMap<(u64, u64), (PathBuf, u64)>,
}

impl<W: Write> Visitor for TarWriter<'_, W> {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        let name = path.strip_prefix("/").unwrap_or(path);
        self.append(name, path, node)?;
        Ok(Visit::Continue)
    }
}

impl<W: Write> TarWriter<'_, W> {
    fn append(&mut self, name: &Path, path: &Path, node: &Node) -> Result<()> {
        use tar::EntryType;
        if node.kind == NodeKind::Socket {
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(node.mode & 0o7777);
        h.set_uid(node.uid as u64);
        h.set_gid(node.gid as u64);
        h.set_mtime(node.mtime.div_euclid(1_000_000_000).max(0) as u64);
        // Names too long for the header are left out, not fatal.
        let _ = h.set_username(&node.user);
        let _ = h.set_groupname(&node.group);
        h.set_size(0);
        self.pax(node)?;
        let tar = &mut self.tar;
        let r = match node.kind {
            NodeKind::Dir => {
                h.set_entry_type(EntryType::Directory);
                tar.append_data(&mut h, name, io::empty())
            }
            NodeKind::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                let target = node
                    .linktarget
                    .as_ref()
                    .map(|t| t.as_bytes())
                    .unwrap_or_default();
                tar.append_link(&mut h, name, OsStr::from_bytes(target))
            }
            NodeKind::Fifo => {
                h.set_entry_type(EntryType::Fifo);
                tar.append_data(&mut h, name, io::empty())
            }
            NodeKind::Dev | NodeKind::Chardev => {
                h.set_entry_type(if node.kind == NodeKind::Dev {
                    EntryType::Block
                } else {
                    EntryType::Char
                });
                let rdev = node.rdev as libc::dev_t;
                h.set_device_major(libc::major(rdev))
                    .map_err(output_error)?;
                h.set_device_minor(libc::minor(rdev))
                    .map_err(output_error)?;
                tar.append_data(&mut h, name, io::empty())
            }
            NodeKind::Socket => unreachable!("sockets are skipped above"),
            NodeKind::File => {
                let key = (node.links > 1 && (node.inode != 0 || node.device != 0))
                    .then_some((node.device, node.inode));
                if let Some(k) = key {
                    if let Some((first, left)) = self.links.get_mut(&k) {
                        h.set_entry_type(EntryType::Link);
                        let r = tar.append_link(&mut h, name, &*first);
                        *left -= 1;
                        if *left == 0 {
                            self.links.remove(&k);
                        }
                        return r.map_err(output_error);
                    }
                }
                let blobs = Blobs::new(self.repo, node, path);
                h.set_entry_type(EntryType::Regular);
                h.set_size(blobs.total_len()?);
                let mut reader = BlobReader {
                    blobs,
                    current: Vec::new(),
                    pos: 0,
                    error: None,
                };
                let r = tar.append_data(&mut h, name, &mut reader);
                if let Some(e) = reader.error {
                    return Err(e);
                }
                if let (Some(k), Ok(())) = (key, &r) {
                    if self.links.len() < MAX_HARDLINKS {
                        self.links.insert(k, (name.to_path_buf(), node.links - 1));
                    }
                }
                r
            }
        };
        r.map_err(output_error)
    }

    /// PAX records for what the GNU header cannot hold: the mtime's
    /// fraction of a second, and extended attributes (as GNU tar and
    /// restic write them).
    fn pax(&mut self, node: &Node) -> Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        let (secs, nanos) = (
            node.mtime.div_euclid(1_000_000_000),
            node.mtime.rem_euclid(1_000_000_000),
        );
        if nanos != 0 {
            records.push(("mtime".into(), format!("{secs}.{nanos:09}").into_bytes()));
        }
        for x in &node.xattrs {
            let (Ok(name), Ok(value)) = (std::str::from_utf8(x.name.as_bytes()), x.value_bytes())
            else {
                continue;
            };
            records.push((format!("SCHILY.xattr.{name}"), value));
        }
        if records.is_empty() {
            return Ok(());
        }
        self.tar
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(output_error)
    }
}

fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => output_error(e),
        e => Error::invalid(format!("writing the zip: {e}")),
    }
}

fn write_zip(repo: &Repository, node: &Node, path: &Path, writer: &mut dyn Write) -> Result<()> {
    let mut v = ZipDumper {
        repo,
        zip: zip::ZipWriter::new_stream(writer),
    };
    if let Some(tree) = node.subtree {
        tree_walk::walk(repo, tree, path, &mut v)?;
    }
    let w = v.zip.finish().map_err(zip_error)?;
    w.into_inner().flush().map_err(output_error)
}

struct ZipDumper<'a, W: Write> {
    repo: &'a Repository,
    zip: zip::ZipWriter<zip::write::StreamWriter<W>>,
}

/// A node's mtime as a zip (MS-DOS, local time) date, clamped to what it holds.
fn zip_time(mtime: i64) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp(mtime.div_euclid(1_000_000_000), 0)
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    let year = t.year().clamp(1980, 2107) as u16;
    zip::DateTime::from_date_and_time(
        year,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second().min(58) as u8,
    )
    .unwrap_or_default()
}

impl<W: Write> Visitor for ZipDumper<'_, W> {
    fn visit(&mut self, path: &Path, node: &Node) -> Result<Visit> {
        use zip::write::SimpleFileOptions;
        let name = path
            .strip_prefix("/")
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let opts = SimpleFileOptions::default()
            .last_modified_time(zip_time(node.mtime))
            .unix_permissions(node.mode & 0o7777);
        match node.kind {
            NodeKind::Dir => self
                .zip
                .add_directory(format!("{name}/"), opts)
                .map_err(zip_error)?,
            NodeKind::Symlink => {
                let target = node
                    .linktarget
                    .as_ref()
                    .map(|t| t.to_string_lossy())
                    .unwrap_or_default();
                self.zip
                    .add_symlink(name, target, opts)
                    .map_err(zip_error)?;
            }
            NodeKind::File => {
                let mut blobs = Blobs::new(self.repo, node, path);
                let size = blobs.total_len()?;
                let opts = opts
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(size >= u64::from(u32::MAX));
                self.zip.start_file(name, opts).map_err(zip_error)?;
                while let Some(b) = blobs.next_blob()? {
                    self.zip.write_all(&b).map_err(output_error)?;
                }
            }
            NodeKind::Fifo | NodeKind::Dev | NodeKind::Chardev | NodeKind::Socket => {}
        }
        Ok(Visit::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_walk::testutil::*;
    use crate::Kind;
    use cairn_repository::format::tree::Xattr;

    #[test]
    fn dumps_a_file_blob_by_blob() {
        let repo = repo();
        let s = saver(&repo);
        let content = noise(300_000, 5);
        let mut link = Node::new("l", NodeKind::Symlink);
        link.linktarget = Some("big".into());
        let root = tree(
            &s,
            vec![dir(
                &s,
                "d",
                vec![
                    file(&s, "big", &content, 7000),
                    file(&s, "empty", b"", 10),
                    link,
                ],
            )],
        );
        s.finish().unwrap();
        let mut out = Vec::new();
        dump(&repo, root, Path::new("/d/big"), &mut out).unwrap();
        assert_eq!(out, content);
        let mut out = Vec::new();
        dump(&repo, root, Path::new("/d/empty"), &mut out).unwrap();
        assert!(out.is_empty());
        let e = dump(&repo, root, Path::new("/d/nope"), &mut Vec::new()).unwrap_err();
        assert!(
            e.kind == Kind::NotFound && e.message.contains("/d/nope"),
            "{}",
            e.message
        );
        let e = dump(&repo, root, Path::new("/d/l"), &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind, Kind::InvalidInput);
    }

    #[test]
    fn a_failing_writer_stops_the_dump() {
        struct Broken(usize);
        impl Write for Broken {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                self.0 -= 1;
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let repo = repo();
        let s = saver(&repo);
        let root = tree(
            &s,
            vec![
                file(&s, "f", &noise(100_000, 9), 1000),
                dir(&s, "d", vec![file(&s, "g", &noise(10_000, 1), 100)]),
            ],
        );
        s.finish().unwrap();
        let e = dump(&repo, root, Path::new("/f"), &mut Broken(3)).unwrap_err();
        assert_eq!(e.kind, Kind::Io);
        assert!(e.message.contains("writing the dump"), "{}", e.message);
        let e = dump(&repo, root, Path::new("/"), &mut Broken(3)).unwrap_err();
        assert_eq!(e.kind, Kind::Io);
    }

    #[test]
    fn a_missing_blob_names_the_file() {
        let repo = repo();
        let s = saver(&repo);
        let mut f = file(&s, "f", b"abc", 10);
        f.content.push(Id([7; 32]));
        let root = tree(&s, vec![dir(&s, "d", vec![f])]);
        s.finish().unwrap();
        let e = dump(&repo, root, Path::new("/d/f"), &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("/d/f"), "{}", e.message);
        let e = dump(&repo, root, Path::new("/d"), &mut Vec::new()).unwrap_err();
        assert!(
            e.message.contains("/d/f") && e.message.contains("not in the repository index"),
            "{}",
            e.message
        );
    }

    #[test]
    fn dumps_a_directory_as_tar() {
        let repo = repo();
        let s = saver(&repo);
        let big = noise(100_000, 6);
        let mut a = file(&s, "a.txt", &big, 9000);
        a.mode = libc::S_IFREG | 0o640;
        a.mtime = 1_700_000_000_250_000_000;
        a.uid = 1234;
        a.user = "alice".into();
        a.xattrs = vec![Xattr::new(b"user.k", b"v1")];
        a.links = 2;
        a.inode = 9;
        a.device = 1;
        let mut a2 = a.clone();
        a2.name = "z-link".into();
        let mut link = Node::new("s", NodeKind::Symlink);
        link.mode = libc::S_IFLNK | 0o777;
        link.linktarget = Some("a.txt".into());
        let mut fifo = Node::new("p", NodeKind::Fifo);
        fifo.mode = libc::S_IFIFO | 0o600;
        let sock = Node::new("sock", NodeKind::Socket);
        let sub = dir(&s, "sub", vec![file(&s, "b", b"bee", 10)]);
        let root = tree(
            &s,
            vec![dir(
                &s,
                "home",
                vec![dir(
                    &s,
                    "docs",
                    vec![a, a2, link, fifo, sock, sub, dir(&s, "e", vec![])],
                )],
            )],
        );
        s.finish().unwrap();

        let mut out = Vec::new();
        dump(&repo, root, Path::new("/home/docs/"), &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header().clone();
            match name.as_str() {
                "home/docs/a.txt" => {
                    assert_eq!(h.entry_type(), tar::EntryType::Regular);
                    assert_eq!(h.mode().unwrap(), 0o640);
                    assert_eq!(h.mtime().unwrap(), 1_700_000_000);
                    assert_eq!(h.uid().unwrap(), 1234);
                    assert_eq!(h.username().unwrap(), Some("alice"));
                    let pax: Vec<(String, Vec<u8>)> = e
                        .pax_extensions()
                        .unwrap()
                        .unwrap()
                        .map(|p| p.unwrap())
                        .map(|p| (p.key().unwrap().to_string(), p.value_bytes().to_vec()))
                        .collect();
                    assert!(
                        pax.contains(&("mtime".into(), b"1700000000.250000000".to_vec())),
                        "{pax:?}"
                    );
                    assert!(
                        pax.contains(&("SCHILY.xattr.user.k".into(), b"v1".to_vec())),
                        "{pax:?}"
                    );
                    let mut data = vec![];
                    e.read_to_end(&mut data).unwrap();
                    assert_eq!(data, big);
                }
                "home/docs/z-link" => {
                    assert_eq!(h.entry_type(), tar::EntryType::Link);
                    assert_eq!(
                        e.link_name().unwrap().unwrap(),
                        Path::new("home/docs/a.txt")
                    );
                }
                "home/docs/s" => {
                    assert_eq!(h.entry_type(), tar::EntryType::Symlink);
                    assert_eq!(e.link_name().unwrap().unwrap(), Path::new("a.txt"));
                }
                "home/docs/p" => assert_eq!(h.entry_type(), tar::EntryType::Fifo),
                "home/docs/sub" | "home/docs/e" => {
                    assert_eq!(h.entry_type(), tar::EntryType::Directory)
                }
                "home/docs/sub/b" => {
                    let mut data = vec![];
                    e.read_to_end(&mut data).unwrap();
                    assert_eq!(data, b"bee");
                }
                other => panic!("unexpected entry {other}"),
            }
            seen.push(name);
        }
        assert_eq!(
            seen,
            [
                "home/docs/a.txt",
                "home/docs/e",
                "home/docs/p",
                "home/docs/s",
                "home/docs/sub",
                "home/docs/sub/b",
                "home/docs/z-link"
            ]
        );

        // Extracted by the tar crate, the tree comes back.
        let tmp = tempfile::tempdir().unwrap();
        tar::Archive::new(&out[..]).unpack(tmp.path()).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("home/docs/a.txt")).unwrap(),
            big
        );
        assert_eq!(
            std::fs::read(tmp.path().join("home/docs/sub/b")).unwrap(),
            b"bee"
        );
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| std::fs::metadata(tmp.path().join(p)).unwrap().ino();
        assert_eq!(ino("home/docs/a.txt"), ino("home/docs/z-link"));

        // The whole snapshot.
        let mut all = Vec::new();
        dump(&repo, root, Path::new("/"), &mut all).unwrap();
        let names: Vec<String> = tar::Archive::new(&all[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[..2], ["home", "home/docs"]);
        assert_eq!(names.len(), 9);
    }
}
