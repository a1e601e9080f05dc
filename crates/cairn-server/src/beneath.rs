//! Every file operation of the server, done beneath the data directory
//! without ever following a symbolic link.
//!
//! A repository directory may hold links put there by someone with a shell
//! on the machine (or a restore of a tree that had them); the server must
//! never serve, overwrite or delete anything they point at. So paths are
//! never handed to the kernel whole:
//! - a directory below the root is opened with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS)` from a descriptor of the root opened at start;
//!   where the kernel lacks `openat2` (before Linux 5.6, or a seccomp
//!   filter refusing it), one component at a time with `O_NOFOLLOW`
//!   (the names are validated by [`crate::route`], so none is `..`);
//! - a file is then reached by its one name relative to that directory's
//!   descriptor, with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`.
//!
//! A link met on the way is `ELOOP`, reported as [`is_refused`] (404).

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` turned out to be missing; then only the walk is used.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A link on the way, or something else than a directory where one is needed.
pub fn is_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV)
    )
}

/// Missing, or refused as above: both answer 404.
pub fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || is_refused(e)
}

/// The data directory, held open for the server's lifetime.
pub struct Root {
    fd: OwnedFd,
}

/// A directory below the root, held open: names inside it are resolved
/// relative to it.
pub struct Dir {
    fd: OwnedFd,
}

/// What a name inside a directory is (never following a link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    File(u64),
    Dir,
    Other,
}

fn entry_of(st: &FileStat) -> Entry {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Entry::File(st.st_size as u64),
        SFlag::S_IFDIR => Entry::Dir,
        _ => Entry::Other,
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Ok(Root { fd })
    }

    /// The directory `rel` (validated folder names) below the root.
    pub fn dir(&self, rel: &[&str]) -> io::Result<Dir> {
        if rel.is_empty() {
            return self.reopen();
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            use nix::fcntl::{openat2, OpenHow, ResolveFlag};
            let how = OpenHow::new().flags(DIR_FLAGS).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            match openat2(&self.fd, rel.join("/").as_str(), how) {
                Ok(fd) => return Ok(Dir { fd }),
                Err(Errno::ENOSYS) | Err(Errno::EPERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // A concurrent rename somewhere: the walk below decides.
                Err(Errno::EAGAIN) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let mut d = self.reopen()?;
        for name in rel {
            d = d.dir(name)?;
        }
        Ok(d)
    }

    /// The root itself.
    pub fn reopen(&self) -> io::Result<Dir> {
        let fd = nix::fcntl::openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Ok(Dir { fd })
    }
}

/// The error [`Root::create_dirs`] gives when `may_create` refused.
pub fn quota_refused() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "the quota (--max-size) is full")
}

impl Dir {
    /// The subdirectory `name`, not through a link.
    pub fn dir(&self, name: &str) -> io::Result<Dir> {
        let fd = nix::fcntl::openat(&self.fd, name, DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Ok(Dir { fd })
    }

    /// The subdirectory `name`, made if missing: `may_create` is asked
    /// first (the quota) and may refuse; `raced` is told when it agreed but
    /// another request made the directory meanwhile.
    pub fn create_dir(
        &self,
        name: &str,
        may_create: &dyn Fn() -> bool,
        raced: &dyn Fn(),
    ) -> io::Result<Dir> {
        match self.dir(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !may_create() {
                    return Err(quota_refused());
                }
                match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o777)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => raced(),
                    Err(e) => {
                        raced();
                        return Err(io_err(e));
                    }
                }
                self.dir(name)
            }
            r => r,
        }
    }

    /// How many of `names` (a path of folders) are missing, from the first
    /// missing one on.
    pub fn missing(&self, names: &[&str]) -> io::Result<u64> {
        let Some((first, rest)) = names.split_first() else {
            return Ok(0);
        };
        match self.stat(first)? {
            None => Ok(names.len() as u64),
            Some(Entry::Dir) => self.dir(first)?.missing(rest),
            Some(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }

    /// What `name` is, or `None` when there is nothing by that name.
    pub fn stat(&self, name: &str) -> io::Result<Option<Entry>> {
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(entry_of(&st))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Open the regular file `name` to read it; anything else is NotFound.
    pub fn open_file(&self, name: &str) -> io::Result<(File, u64)> {
        // O_NONBLOCK: a FIFO put there must not hang the opening thread.
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err)?;
        let st = nix::sys::stat::fstat(&fd).map_err(io_err)?;
        match entry_of(&st) {
            Entry::File(size) => Ok((File::from(fd), size)),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not a regular file",
            )),
        }
    }

    /// Create `name`, which must not exist, to write it.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        let fd = nix::fcntl::openat(
            &self.fd,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o666),
        )
        .map_err(io_err)?;
        Ok(File::from(fd))
    }

    /// Rename `from` to `to` in this directory; `AlreadyExists` if `to` exists.
    pub fn rename_noreplace(&self, from: &str, to: &str) -> io::Result<()> {
        match nix::fcntl::renameat2(&self.fd, from, &self.fd, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(()),
            // File systems without RENAME_NOREPLACE: a hard link never replaces.
            Err(Errno::EINVAL) | Err(Errno::ENOSYS) => {
                nix::unistd::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())
                    .map_err(io_err)?;
                self.unlink(from)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Rename `from` to `to` in this directory (replacing `to`).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        nix::fcntl::renameat(&self.fd, from, &self.fd, to).map_err(io_err)
    }

    pub fn unlink(&self, name: &str) -> io::Result<()> {
        nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(io_err)
    }

    /// Make the entries created or renamed in this directory durable.
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::fsync(&self.fd).map_err(io_err)
    }

    /// The names in this directory (without `.` and `..`).
    pub fn names(&self) -> io::Result<Vec<String>> {
        // A descriptor of its own: reading moves its offset.
        let fd = nix::fcntl::openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(io_err)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(io_err)?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            if let Some(n) = name.to_str() {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_links_refused(root: &Root) {
        assert!(root.dir(&["r", "keys"]).is_ok());
        for rel in [
            &["r", "locks"][..],
            &["link"],
            &["link", "keys"],
            &["r", "up"],
        ] {
            let e = root
                .dir(rel)
                .err()
                .unwrap_or_else(|| panic!("{rel:?} opened"));
            assert!(is_refused(&e), "{rel:?}: {e}");
        }
        let e = root.dir(&["r", "missing"]).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let keys = root.dir(&["r", "keys"]).unwrap();
        assert!(
            keys.open_file("secret").is_err(),
            "a linked file is not opened"
        );
        assert_eq!(keys.stat("secret").unwrap(), Some(Entry::Other));
        assert_eq!(keys.stat("plain").unwrap(), Some(Entry::File(2)));
        assert_eq!(keys.open_file("plain").unwrap().1, 2);
        assert!(keys.open_file("sub").is_err(), "a directory is not a file");
        let mut names = keys.names().unwrap();
        names.sort();
        assert_eq!(names, ["plain", "secret", "sub"]);
    }

    #[test]
    fn links_are_refused_with_openat2_and_with_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("r/keys/sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::fs::write(root.join("r/keys/plain"), b"ok").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("r/keys/secret")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("r/locks")).unwrap();
        std::os::unix::fs::symlink(root.join("r"), root.join("link")).unwrap();
        std::os::unix::fs::symlink("..", root.join("r/up")).unwrap();
        let r = Root::open(&root).unwrap();
        // openat2 where the kernel has it (else this already is the walk)...
        check_links_refused(&r);
        // ...and the component-by-component walk.
        NO_OPENAT2.store(true, Ordering::Relaxed);
        check_links_refused(&r);
    }
}
