//! File-system operations of the restorer: creating entries without ever
//! following a symlink found in the target, and applying metadata.
//!
//! Replacing: an entry already at a target path is removed first (an empty
//! directory too; a non-empty directory is left and reported), so that a
//! symlink planted in the target is never written through and other hard
//! links to an existing file are not modified.

use cairn_repository::format::tree::{Node, NodeKind};
use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{futimens, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Remove whatever is at `path` (not following symlinks). A non-empty
/// directory is not removed: that is an error.
pub(crate) fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTEMPTY) || e.raw_os_error() == Some(libc::EEXIST) {
                io::Error::new(e.kind(), "a non-empty directory is in the way")
            } else {
                e
            }
        }),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Run `create`; if something is already at `path`, remove it and retry once.
fn replacing<T>(path: &Path, mut create: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_existing(path)?;
            create()
        }
        r => r,
    }
}

/// Create a new regular file of `size` bytes (a hole until written), open
/// for writing, with permission bits `mode` (under the umask). Something
/// already at `path` is replaced.
pub(crate) fn create_file(path: &Path, size: u64, mode: u32) -> io::Result<File> {
    let f = replacing(path, || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    })?;
    if size > 0 {
        f.set_len(size)?;
    }
    Ok(f)
}

/// The permission bits to create `node`'s file with, and whether the file
/// then has its final mode already (so finishing it needs no chmod): for
/// plain permissions that let the owner read and write, which the umask
/// leaves whole. Anything else is created 0600 and set when finished.
pub(crate) fn create_mode(node: &Node) -> (u32, bool) {
    let want = node.mode & 0o7777;
    if want & 0o7000 != 0 || want & 0o600 != 0o600 {
        return (0o600, false);
    }
    match umask() {
        Some(u) if want & u == 0 => (want, true),
        _ => (0o600, false),
    }
}

/// The process's umask, read once from /proc (reading it with umask(2)
/// would change it for a moment under other threads).
fn umask() -> Option<u32> {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("Umask:"))?;
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
    })
}

/// Open a file this restore created, for writing more of its blobs.
pub(crate) fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Open a restored file for reading back, without touching its atime when allowed.
pub(crate) fn open_for_verify(path: &Path) -> io::Result<File> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        r => r,
    }
}

/// Make a directory for restoring into (owner-writable until its metadata
/// is applied). Returns whether it was created (false: a directory was
/// already there). Anything else in the way is replaced if `replace`, else
/// an error.
pub(crate) fn make_dir(path: &Path, replace: bool) -> io::Result<bool> {
    let mkdir = || fs::DirBuilder::new().mode(0o700).create(path);
    match mkdir() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(path)?.is_dir() {
                return Ok(false);
            }
            if !replace {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "something other than a directory is in the way",
                ));
            }
            fs::remove_file(path)?;
            mkdir().map(|_| true)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn make_symlink(path: &Path, target: &[u8]) -> io::Result<()> {
    replacing(path, || {
        std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
    })
}

pub(crate) fn make_fifo(path: &Path) -> io::Result<()> {
    replacing(path, || {
        Ok(nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))?)
    })
}

/// A block or character device (needs root).
pub(crate) fn make_device(path: &Path, node: &Node) -> io::Result<()> {
    let kind = if node.kind == NodeKind::Dev {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    let perm = Mode::from_bits_truncate(0o600);
    replacing(path, || {
        Ok(mknod(path, kind, perm, node.rdev as libc::dev_t)?)
    })
}

pub(crate) fn make_hard_link(existing: &Path, link: &Path) -> io::Result<()> {
    replacing(link, || fs::hard_link(existing, link))
}

/// Nanoseconds since the epoch (negative before it) as a `timespec`.
fn timespec(ns: i64) -> TimeSpec {
    TimeSpec::new(
        ns.div_euclid(1_000_000_000) as libc::time_t,
        ns.rem_euclid(1_000_000_000) as _,
    )
}

/// Set atime and mtime (of a symlink itself, not its target).
pub(crate) fn set_times(path: &Path, atime: i64, mtime: i64) -> io::Result<()> {
    Ok(utimensat(
        AT_FDCWD,
        path,
        &timespec(atime),
        &timespec(mtime),
        UtimensatFlags::NoFollowSymlink,
    )?)
}

/// Problems found while applying metadata: errors (metadata not restored)
/// and warnings (extended attributes the target does not accept).
#[derive(Default)]
pub(crate) struct MetaProblems {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Apply a node's metadata to what was restored at `path`: owner (only when
/// running as root), mode (not for symlinks), extended attributes, then
/// atime and mtime. The order matters: chown clears set-uid bits, and only
/// the last step may leave the times alone.
pub(crate) fn apply(path: &Path, node: &Node, as_root: bool) -> MetaProblems {
    apply_with(node, as_root, true, &PathTarget(path))
}

/// [`apply`] through an open regular file: no path lookups, so a data
/// worker can finish a file the moment its last blob is written.
/// `mode_set`: the file was created with its final mode (see [`create_mode`]).
pub(crate) fn apply_to_file(
    file: &File,
    node: &Node,
    as_root: bool,
    mode_set: bool,
) -> MetaProblems {
    apply_with(node, as_root, !mode_set, &FileTarget(file))
}

/// Where metadata goes: a path (not followed if a symlink) or an open file.
trait Target {
    fn chown(&self, uid: u32, gid: u32) -> io::Result<()>;
    fn chmod(&self, mode: u32) -> io::Result<()>;
    fn set_xattr(&self, name: &OsStr, value: &[u8]) -> io::Result<()>;
    fn set_times(&self, atime: i64, mtime: i64) -> io::Result<()>;
}

struct PathTarget<'a>(&'a Path);

impl Target for PathTarget<'_> {
    fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(self.0, Some(uid), Some(gid))
    }
    fn chmod(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.0, fs::Permissions::from_mode(mode))
    }
    fn set_xattr(&self, name: &OsStr, value: &[u8]) -> io::Result<()> {
        xattr::set(self.0, name, value)
    }
    fn set_times(&self, atime: i64, mtime: i64) -> io::Result<()> {
        set_times(self.0, atime, mtime)
    }
}

struct FileTarget<'a>(&'a File);

impl Target for FileTarget<'_> {
    fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::fchown(self.0, Some(uid), Some(gid))
    }
    fn chmod(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.0.set_permissions(fs::Permissions::from_mode(mode))
    }
    fn set_xattr(&self, name: &OsStr, value: &[u8]) -> io::Result<()> {
        xattr::FileExt::set_xattr(self.0, name, value)
    }
    fn set_times(&self, atime: i64, mtime: i64) -> io::Result<()> {
        Ok(futimens(self.0, &timespec(atime), &timespec(mtime))?)
    }
}

fn apply_with(node: &Node, as_root: bool, chmod: bool, target: &dyn Target) -> MetaProblems {
    let mut p = MetaProblems::default();
    if as_root {
        if let Err(e) = target.chown(node.uid, node.gid) {
            p.errors
                .push(format!("setting owner {}:{}: {e}", node.uid, node.gid));
        }
    }
    // After chown, which may clear set-id bits (files with those are
    // always chmod'ed: see `create_mode`).
    if chmod && node.kind != NodeKind::Symlink {
        if let Err(e) = target.chmod(node.mode & 0o7777) {
            p.errors
                .push(format!("setting mode {:o}: {e}", node.mode & 0o7777));
        }
    }
    for x in &node.xattrs {
        let name = OsStr::from_bytes(x.name.as_bytes());
        match x.value_bytes() {
            Ok(v) => {
                if let Err(e) = target.set_xattr(name, &v) {
                    p.warnings
                        .push(format!("extended attribute {:?} not restored: {e}", x.name));
                }
            }
            Err(e) => p
                .warnings
                .push(format!("extended attribute {:?} not restored: {e}", x.name)),
        }
    }
    if let Err(e) = target.set_times(node.atime, node.mtime) {
        p.errors.push(format!("setting times: {e}"));
    }
    p
}
