//! Manifests of directory trees and readable comparisons between them.
//!
//! A [`Manifest`] records, for every path below a root (the root itself is
//! `.`), what a restore must reproduce: type, full `st_mode`, owner, size,
//! mtime in nanoseconds, a BLAKE3 hash of a file's contents, a symlink's
//! target, extended attributes (all a restore may set: see
//! `read_xattrs`), and which paths are hard links to one
//! inode. Taking a manifest is how a test "saves a copy" of a tree as it
//! was at backup time; [`diff`] lists every difference, one line each.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    BlockDev,
    CharDev,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Files and symlinks only (a directory's size depends on the file system).
    pub size: Option<u64>,
    pub mtime_ns: i128,
    /// BLAKE3 of a regular file's contents.
    pub content: Option<String>,
    pub link_target: Option<Vec<u8>>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For non-directories with several links: all paths in the tree that
    /// share this inode (sorted), this one included.
    pub hardlinks: Vec<Vec<u8>>,
    pub rdev: u64,
}

/// What [`Manifest::take`] records and [`diff`] compares.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub xattrs: bool,
    pub owner: bool,
    pub mtime: bool,
    /// Compare the mtimes of symlinks (restored with lutimes).
    pub symlink_mtime: bool,
    /// Compare the root's own metadata (mode, owner, mtime), not only what is below it.
    pub root_meta: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            xattrs: true,
            owner: true,
            mtime: true,
            symlink_mtime: true,
            root_meta: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub root: PathBuf,
    /// Relative path bytes (`.` for the root) → entry.
    pub entries: BTreeMap<Vec<u8>, Entry>,
}

/// A path for messages: UTF-8 where it is, `\xNN` escapes where not.
pub fn show(p: &[u8]) -> String {
    let mut s = String::new();
    for chunk in p.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                s.extend(c.escape_default());
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
    s
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn kind_of(ft: std::fs::FileType) -> Kind {
    if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_socket() {
        Kind::Socket
    } else if ft.is_block_device() {
        Kind::BlockDev
    } else {
        Kind::CharDev
    }
}

/// BLAKE3 of a file's contents, streamed.
pub fn hash_file(path: &Path) -> String {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = blake3::Hasher::new();
    h.update_reader(f)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    h.finalize().to_hex().to_string()
}

fn read_xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    let Ok(names) = xattr::list(path) else {
        return m;
    };
    // The archiver stores every attribute, and a restore must bring back
    // every one it may set: user.* and system.* (POSIX ACLs) always, and
    // security.* (file capabilities, labels) and trusted.* when the test
    // runs as root (for anyone else the kernel refuses to set them).
    let root = crate::is_root();
    for n in names {
        let b = n.as_bytes();
        let settable = b.starts_with(b"user.")
            || b.starts_with(b"system.")
            || (root && (b.starts_with(b"security.") || b.starts_with(b"trusted.")));
        if !settable {
            continue;
        }
        if let Ok(Some(v)) = xattr::get(path, &n) {
            m.insert(n.as_bytes().to_vec(), v);
        }
    }
    m
}

impl Manifest {
    /// Walk `root` (not following symlinks) and record everything.
    pub fn take(root: &Path) -> Manifest {
        Self::take_with(root, Options::default())
    }

    pub fn take_with(root: &Path, opts: Options) -> Manifest {
        let mut entries = BTreeMap::new();
        let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
        let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_path_buf(), b".".to_vec())];
        while let Some((path, rel)) = stack.pop() {
            let md = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let kind = kind_of(md.file_type());
            let mut e = Entry {
                kind,
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                size: matches!(kind, Kind::File | Kind::Symlink).then_some(md.size()),
                mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
                content: None,
                link_target: None,
                xattrs: if opts.xattrs {
                    read_xattrs(&path)
                } else {
                    BTreeMap::new()
                },
                hardlinks: Vec::new(),
                rdev: if matches!(kind, Kind::BlockDev | Kind::CharDev) {
                    md.rdev()
                } else {
                    0
                },
            };
            match kind {
                Kind::File => e.content = Some(hash_file(&path)),
                Kind::Symlink => {
                    e.link_target = Some(
                        std::fs::read_link(&path)
                            .unwrap()
                            .as_os_str()
                            .as_bytes()
                            .to_vec(),
                    )
                }
                Kind::Dir => {
                    let rd = std::fs::read_dir(&path)
                        .unwrap_or_else(|e| panic!("read_dir {}: {e}", path.display()));
                    for de in rd {
                        let de = de.unwrap();
                        let name = de.file_name();
                        let child_rel = if rel == b"." {
                            name.as_bytes().to_vec()
                        } else {
                            [&rel[..], b"/", name.as_bytes()].concat()
                        };
                        stack.push((de.path(), child_rel));
                    }
                }
                _ => {}
            }
            if kind != Kind::Dir && md.nlink() > 1 {
                inodes
                    .entry((md.dev(), md.ino()))
                    .or_default()
                    .push(rel.clone());
            }
            entries.insert(rel, e);
        }
        for (_, mut paths) in inodes {
            paths.sort();
            for p in &paths {
                entries.get_mut(p).unwrap().hardlinks = paths.clone();
            }
        }
        Manifest {
            root: root.to_path_buf(),
            entries,
        }
    }

    /// Paths (relative, `/`-separated) of entries of one kind.
    pub fn paths_of(&self, kind: Kind) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.kind == kind)
            .map(|(p, _)| show(p))
            .collect()
    }

    pub fn get(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel.as_bytes())
    }
}

/// Every difference between two manifests, one readable line each
/// (`expected` is the original, `actual` the restored tree).
pub fn diff(expected: &Manifest, actual: &Manifest, opts: Options) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in &expected.entries {
        let Some(a) = actual.entries.get(p) else {
            out.push(format!("missing:    {} ({})", show(p), e.kind));
            continue;
        };
        let is_root = p == b".";
        let content_msg = (e.content != a.content).then(|| {
            let short = |c: &Option<String>| {
                c.as_deref()
                    .map(|h| h[..8].to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let mut msg = format!(
                "different:  {}: content: expected blake3 {}…, got {}…",
                show(p),
                short(&e.content),
                short(&a.content)
            );
            if let Some(off) = first_difference(&expected.root, &actual.root, p) {
                msg.push_str(&format!(" (first different byte at offset {off})"));
            }
            msg
        });
        let mut d = |what: &str, x: String, y: String| {
            if x != y {
                out.push(format!(
                    "different:  {}: {what}: expected {x}, got {y}",
                    show(p)
                ));
            }
        };
        d("type", e.kind.to_string(), a.kind.to_string());
        if e.kind != a.kind {
            continue;
        }
        if !is_root || opts.root_meta {
            d("mode", format!("{:o}", e.mode), format!("{:o}", a.mode));
            if opts.owner {
                d(
                    "uid:gid",
                    format!("{}:{}", e.uid, e.gid),
                    format!("{}:{}", a.uid, a.gid),
                );
            }
            if opts.mtime && (e.kind != Kind::Symlink || opts.symlink_mtime) {
                d("mtime", fmt_ns(e.mtime_ns), fmt_ns(a.mtime_ns));
            }
        }
        d("size", format!("{:?}", e.size), format!("{:?}", a.size));
        d(
            "symlink target",
            e.link_target.as_deref().map(show).unwrap_or_default(),
            a.link_target.as_deref().map(show).unwrap_or_default(),
        );
        if opts.xattrs {
            d("xattrs", fmt_xattrs(&e.xattrs), fmt_xattrs(&a.xattrs));
        }
        d(
            "hard links",
            e.hardlinks
                .iter()
                .map(|h| show(h))
                .collect::<Vec<_>>()
                .join(", "),
            a.hardlinks
                .iter()
                .map(|h| show(h))
                .collect::<Vec<_>>()
                .join(", "),
        );
        d("rdev", e.rdev.to_string(), a.rdev.to_string());
        out.extend(content_msg);
    }
    for (p, a) in &actual.entries {
        if !expected.entries.contains_key(p) {
            out.push(format!("unexpected: {} ({})", show(p), a.kind));
        }
    }
    out
}

/// Where two files at `rel` under two roots first differ, if both are still there.
fn first_difference(a_root: &Path, b_root: &Path, rel: &[u8]) -> Option<u64> {
    use std::io::Read;
    let rel = Path::new(OsStr::from_bytes(rel));
    let mut a = std::io::BufReader::new(std::fs::File::open(a_root.join(rel)).ok()?);
    let mut b = std::io::BufReader::new(std::fs::File::open(b_root.join(rel)).ok()?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut off = 0u64;
    loop {
        let na = read_full(&mut a, &mut ba).ok()?;
        let nb = read_full(&mut b, &mut bb).ok()?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Some(off + i as u64);
        }
        if na != nb {
            return Some(off + n as u64);
        }
        if na == 0 {
            return None;
        }
        off += n as u64;
    }

    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

fn fmt_ns(ns: i128) -> String {
    format!(
        "{}.{:09}",
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000)
    )
}

fn fmt_xattrs(x: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let v: Vec<String> = x
        .iter()
        .map(|(k, v)| format!("{}={}", show(k), show(v)))
        .collect();
    format!("{{{}}}", v.join(", "))
}

#[track_caller]
fn fail_with(expected: &Path, actual: &Path, lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    const MAX: usize = 60;
    let n = lines.len();
    let mut msg = format!(
        "trees differ\n  expected: {}\n  actual:   {}\n",
        expected.display(),
        actual.display()
    );
    for l in lines.iter().take(MAX) {
        msg.push_str("  ");
        msg.push_str(l);
        msg.push('\n');
    }
    if n > MAX {
        msg.push_str(&format!("  … and {} more differences\n", n - MAX));
    }
    panic!("{msg}");
}

/// The two trees hold exactly the same paths with the same contents and
/// metadata; on failure, every difference is listed.
#[track_caller]
pub fn assert_trees_equal(expected: &Path, actual: &Path) {
    assert_trees_equal_with(expected, actual, Options::default())
}

#[track_caller]
pub fn assert_trees_equal_with(expected: &Path, actual: &Path, opts: Options) {
    let e = Manifest::take_with(expected, opts);
    let a = Manifest::take_with(actual, opts);
    fail_with(expected, actual, diff(&e, &a, opts));
}

/// The tree at `actual` matches a manifest taken earlier.
#[track_caller]
pub fn assert_manifest_matches(expected: &Manifest, actual: &Path) {
    assert_manifest_matches_with(expected, actual, Options::default())
}

#[track_caller]
pub fn assert_manifest_matches_with(expected: &Manifest, actual: &Path, opts: Options) {
    let a = Manifest::take_with(actual, opts);
    // The files of a saved manifest may have changed since: no byte offsets.
    let e = Manifest {
        root: PathBuf::from("/nonexistent-saved-manifest"),
        ..expected.clone()
    };
    fail_with(&expected.root, actual, diff(&e, &a, opts));
}

#[cfg(test)]
mod tests {
    //! The comparison must see every kind of difference it promises to.
    use super::*;
    use filetime::FileTime;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn two_equal_trees() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for root in [&a, &b] {
            fs_tree(root);
        }
        (d, a, b)
    }

    fn fs_tree(root: &Path) {
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("f"), b"0123456789").unwrap();
        std::fs::write(root.join(OsStr::from_bytes(b"bad-\xff")), b"x").unwrap();
        std::fs::write(root.join("sub/g"), b"g").unwrap();
        std::fs::write(root.join("sub/h"), b"h").unwrap();
        symlink("f", root.join("l")).unwrap();
        let t = FileTime::from_unix_time(1_500_000_000, 5);
        for p in ["f", "sub/g", "sub/h", "sub", "l", ""] {
            filetime::set_symlink_file_times(root.join(p), t, t).unwrap();
        }
        filetime::set_symlink_file_times(root.join(OsStr::from_bytes(b"bad-\xff")), t, t).unwrap();
        filetime::set_symlink_file_times(root, t, t).unwrap();
    }

    fn diffs(a: &Path, b: &Path) -> Vec<String> {
        let o = Options::default();
        diff(&Manifest::take_with(a, o), &Manifest::take_with(b, o), o)
    }

    fn touch_parent(root: &Path, rel: &str) {
        // Keep the parent's mtime as the tree had it, so only `rel` differs.
        let parent = root.join(rel).parent().unwrap().to_path_buf();
        let t = FileTime::from_unix_time(1_500_000_000, 5);
        filetime::set_symlink_file_times(&parent, t, t).unwrap();
    }

    #[test]
    fn equal_trees_have_no_differences() {
        let (_d, a, b) = two_equal_trees();
        assert_eq!(diffs(&a, &b), Vec::<String>::new());
    }

    #[test]
    fn every_difference_is_reported() {
        let (_d, a, b) = two_equal_trees();
        // Content (same size), mode, mtime by one nanosecond, symlink target,
        // a missing and an unexpected file, hard link vs copy, xattr.
        std::fs::write(b.join("f"), b"0123X56789").unwrap();
        filetime::set_file_mtime(b.join("f"), FileTime::from_unix_time(1_500_000_000, 5)).unwrap();
        std::fs::set_permissions(b.join("sub/g"), std::fs::Permissions::from_mode(0o600)).unwrap();
        filetime::set_file_mtime(b.join("sub/h"), FileTime::from_unix_time(1_500_000_000, 6))
            .unwrap();
        std::fs::remove_file(b.join("l")).unwrap();
        symlink("g", b.join("l")).unwrap();
        filetime::set_symlink_file_times(
            b.join("l"),
            FileTime::from_unix_time(1_500_000_000, 5),
            FileTime::from_unix_time(1_500_000_000, 5),
        )
        .unwrap();
        std::fs::remove_file(b.join(OsStr::from_bytes(b"bad-\xff"))).unwrap();
        std::fs::write(b.join("extra"), b"").unwrap();
        std::fs::hard_link(a.join("sub/g"), a.join("g-link")).unwrap();
        std::fs::copy(b.join("sub/g"), b.join("g-link")).unwrap();
        let xattrs = xattr::set(a.join("sub/h"), "user.k", b"v").is_ok();
        touch_parent(&a, "g-link");
        touch_parent(&b, "g-link");
        let d = diffs(&a, &b).join("\n");
        for want in [
            "different:  f: content",
            "first different byte at offset 4",
            "different:  sub/g: mode: expected 100644, got 100600",
            "different:  sub/h: mtime: expected 1500000000.000000005, got 1500000000.000000006",
            "different:  l: symlink target: expected f, got g",
            "missing:    bad-\\xFF (File)",
            "unexpected: extra (File)",
            "different:  g-link: hard links: expected g-link, sub/g, got ",
        ] {
            assert!(d.contains(want), "{want:?} not reported in:\n{d}");
        }
        if xattrs {
            assert!(
                d.contains("different:  sub/h: xattrs: expected {user.k=v}, got {}"),
                "{d}"
            );
        }
    }
}
