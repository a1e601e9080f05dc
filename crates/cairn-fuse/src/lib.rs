//! `cairn mount`: every snapshot of a repository as a read-only file
//! system (FUSE, through the `fuser` crate, without libfuse).
//!
//! - [`layout`]: the directories above the snapshots, as restic has them
//!   (`snapshots/<time>`, `ids/<id>`, `hosts/<host>/<time>`,
//!   `tags/<tag>/<time>`, `latest` links), named by [`timefmt`].
//! - [`inode`]: inode numbers derived from what an entry is (stable for
//!   the life of the mount; hard links share one), and attributes.
//! - [`cache`]: the bounded blob cache (one fetch per blob however many
//!   readers want it) and the tree cache.
//! - [`read`]: a file's blobs with their offsets; a read fetches only the
//!   blobs covering its range.
//! - [`fs`]: the FUSE requests; [`pool`]: the workers answering them.
//!
//! Invariants: nothing is written anywhere; every byte returned comes from
//! a blob that decrypted and matched its id (else the read fails with
//! EIO, and a line on stderr names the file); a failure never takes the
//! mount down.
//!
//! Mounting ([`mount`]): as root with the `mount` system call, otherwise
//! through `fusermount3`. Options: read-only, `nosuid`, `nodev` (device
//! nodes and fifos show as such but cannot be opened through the mount),
//! `default_permissions` (the kernel checks the stored modes and owners).
//! `auto_unmount` (fusermount3 unmounts when the process dies, even from
//! SIGKILL) is used with `--allow-other` only: fuser accepts it with
//! `allow_other`/`allow_root` alone, and without it `cairn mount` unmounts
//! on Ctrl-C and SIGTERM itself; a mount left by a killed process is found
//! by [`check_mountpoint`], which names the command that clears it.

pub mod cache;
pub mod fs;
pub mod inode;
pub mod layout;
mod pool;
pub mod read;
pub mod timefmt;

pub use cairn_repository::{Error, Kind, Result};
pub use fs::CairnFs;

use cairn_repository::SnapshotFilter;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// What a mount shows and how.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Only snapshots passing this filter are shown.
    pub filter: SnapshotFilter,
    /// Go-style layout for snapshot directory names ([`timefmt`]).
    pub time_template: String,
    /// Bytes of decoded blobs kept for re-reads and read-ahead.
    pub cache_size: u64,
    /// Threads answering lookups, listings and reads.
    pub workers: usize,
    /// Let other users than the one mounting see the file system.
    pub allow_other: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            filter: SnapshotFilter::default(),
            time_template: timefmt::DEFAULT_TEMPLATE.to_string(),
            cache_size: 128 << 20,
            workers: 8,
            allow_other: false,
        }
    }
}

fn io_error(e: io::Error, what: impl std::fmt::Display) -> Error {
    Error::io(e, what)
}

/// The command that clears a mount left behind.
pub fn unmount_command(path: &Path) -> String {
    format!("fusermount3 -u {}", path.display())
}

/// Where the mount goes must be an existing directory that nothing is
/// mounted on. A mount left by a process that died answers "transport
/// endpoint is not connected": the error says how to clear it. Returns
/// the absolute path.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf> {
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(Error::invalid(format!(
                "{} is a mount left behind by a cairn (or other FUSE) process that ended; clear it with `{}`",
                path.display(),
                unmount_command(path)
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::invalid(format!(
                "mountpoint {} does not exist (create the directory first)",
                path.display()
            )))
        }
        Err(e) => return Err(io_error(e, format!("mountpoint {}", path.display()))),
        Ok(md) if !md.is_dir() => {
            return Err(Error::invalid(format!(
                "mountpoint {} is not a directory",
                path.display()
            )))
        }
        Ok(_) => {}
    }
    let abs = path
        .canonicalize()
        .map_err(|e| io_error(e, format!("mountpoint {}", path.display())))?;
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        if info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| Path::new(&unescape_mountinfo(m)) == abs)
        {
            return Err(Error::invalid(format!(
                "{} is already a mount point (unmount it first, e.g. with `{}`)",
                abs.display(),
                unmount_command(&abs)
            )));
        }
    }
    Ok(abs)
}

/// `/proc/self/mountinfo` writes space, tab, newline and `\` as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(out)
        .to_string_lossy()
        .into_owned()
}

/// A mounted file system, served by a thread until unmounted.
pub struct Mounted {
    path: PathBuf,
    session: JoinHandle<io::Result<()>>,
    unmounter: fuser::SessionUnmounter,
}

/// How [`Mounted::unmount`] went.
#[derive(Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// Unmounted and the session ended.
    Clean,
    /// Busy (a process has a file open or its working directory inside):
    /// detached from the directory tree; the kernel lets go of it when
    /// its last user does.
    Detached,
}

/// Mount `fs` on `mountpoint` (see the crate doc for the options) and
/// serve it on a thread of its own.
pub fn mount(fs: CairnFs, mountpoint: &Path, allow_other: bool) -> Result<Mounted> {
    use fuser::{Config, MountOption, SessionACL};
    let mut options = vec![
        MountOption::RO,
        MountOption::FSName("cairn".into()),
        MountOption::Subtype("cairn".into()),
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::DefaultPermissions,
    ];
    if allow_other {
        options.push(MountOption::AutoUnmount);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    // The event loops only dispatch (reads and listings go to the workers);
    // two keep attribute requests flowing while one sends a large reply.
    config.n_threads = Some(2);
    config.clone_fd = true;
    let mut session = fuser::Session::new(fs, mountpoint, &config)
        .map_err(|e| io_error(e, format!("mounting on {}", mountpoint.display())))?;
    let unmounter = session.unmount_callable();
    let session = std::thread::Builder::new()
        .name("cairn-fuse-session".into())
        .spawn(move || session.run())
        .map_err(|e| io_error(e, "starting the FUSE session"))?;
    Ok(Mounted {
        path: mountpoint.to_path_buf(),
        session,
        unmounter,
    })
}

impl Mounted {
    /// Has the session ended (unmounted from outside, e.g. `fusermount3 -u`)?
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }

    /// Wait for the session to end by itself.
    pub fn wait(self) -> Result<()> {
        match self.session.join() {
            Ok(r) => r.map_err(|e| io_error(e, "the FUSE session")),
            Err(_) => Err(Error::new(Kind::Io, "the FUSE session failed unexpectedly")),
        }
    }

    /// Unmount and wait for the session to end; a busy mount is detached
    /// instead (see [`Unmounted::Detached`]).
    pub fn unmount(mut self) -> Result<Unmounted> {
        match self.unmounter.unmount() {
            Ok(()) => {
                self.wait()?;
                Ok(Unmounted::Clean)
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                use nix::mount::{umount2, MntFlags};
                umount2(&self.path, MntFlags::MNT_DETACH).map_err(|e| {
                    io_error(e.into(), format!("unmounting {}", self.path.display()))
                })?;
                Ok(Unmounted::Detached)
            }
            Err(e) => Err(io_error(e, format!("unmounting {}", self.path.display()))),
        }
    }
}
