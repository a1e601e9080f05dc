//! Reading a file's metadata into a tree [`Node`].

use cairn_repository::format::tree::{ByteString, Node, NodeKind, Xattr};
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

/// Caches uid → user name and gid → group name lookups.
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    pub fn user(&self, uid: u32) -> String {
        self.users
            .lock()
            .unwrap()
            .entry(uid)
            .or_insert_with(|| lookup_user(uid))
            .clone()
    }
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .lock()
            .unwrap()
            .entry(gid)
            .or_insert_with(|| lookup_group(gid))
            .clone()
    }
}

/// The user's name, or empty when there is none. The C library's buffer
/// grows until the entry fits (up to 1 MiB), so a long entry (a long GECOS
/// field or home) keeps its name.
fn lookup_user(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => u.name,
        _ => String::new(),
    }
}

/// The group's name, or empty: as [`lookup_user`], for groups with
/// thousands of members.
fn lookup_group(gid: u32) -> String {
    match nix::unistd::Group::from_gid(gid.into()) {
        Ok(Some(g)) => g.name,
        _ => String::new(),
    }
}

pub fn kind_of(meta: &Metadata) -> Option<NodeKind> {
    let t = meta.file_type();
    Some(if t.is_file() {
        NodeKind::File
    } else if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_block_device() {
        NodeKind::Dev
    } else if t.is_char_device() {
        NodeKind::Chardev
    } else if t.is_fifo() {
        NodeKind::Fifo
    } else if t.is_socket() {
        NodeKind::Socket
    } else {
        return None;
    })
}

/// A node for `path` from its `lstat` metadata; content and subtree are
/// filled in later. The atime is recorded only `with_atime` (restic's
/// `--with-atime`, for files and directories); otherwise the atime field
/// holds the mtime, as restic's, so reading files (or listing directories,
/// which this backup does too) does not change the trees of an unchanged
/// tree. The link target and xattrs are read here, unless `old`
/// (the entry in the parent snapshot) is the same inode with the same ctime:
/// changing either changes the ctime, so they are taken from `old`.
pub fn node_from_metadata(
    path: &Path,
    name: &[u8],
    meta: &Metadata,
    names: &NameCache,
    old: Option<&Node>,
    with_atime: bool,
) -> std::io::Result<Node> {
    let kind = kind_of(meta).ok_or_else(|| std::io::Error::other("unknown file type"))?;
    let mut n = Node::new(ByteString(name.to_vec()), kind);
    n.mode = meta.mode();
    n.mtime = nanos(meta.mtime(), meta.mtime_nsec());
    n.atime = if with_atime {
        nanos(meta.atime(), meta.atime_nsec())
    } else {
        n.mtime
    };
    n.ctime = nanos(meta.ctime(), meta.ctime_nsec());
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.user = names.user(n.uid);
    n.group = names.group(n.gid);
    n.inode = meta.ino();
    n.device = meta.dev();
    n.links = meta.nlink();
    let same =
        old.filter(|o| o.kind == kind && o.ctime == n.ctime && o.inode == n.inode && o.ctime != 0);
    match kind {
        NodeKind::File => n.size = meta.size(),
        NodeKind::Symlink => match same.and_then(|o| o.linktarget.clone()) {
            Some(t) => n.linktarget = Some(t),
            None => {
                n.linktarget = Some(ByteString(
                    std::fs::read_link(path)?.as_os_str().as_bytes().to_vec(),
                ))
            }
        },
        NodeKind::Dev | NodeKind::Chardev => n.rdev = meta.rdev(),
        _ => {}
    }
    if let Some(o) = same {
        n.xattrs = o.xattrs.clone();
    } else if kind != NodeKind::Symlink {
        if let Ok(list) = xattr::list(path) {
            let mut names: Vec<_> = list.collect();
            names.sort();
            for x in names {
                if let Ok(Some(value)) = xattr::get(path, &x) {
                    n.xattrs.push(Xattr::new(x.as_bytes(), &value));
                }
            }
        }
    }
    Ok(n)
}

/// Seconds and nanoseconds as nanoseconds since the epoch, the node's unit.
/// Times outside what an i64 of nanoseconds holds (before 1677, after
/// 2262) are clamped to its ends instead of overflowing.
fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

#[cfg(test)]
mod nanos_tests {
    #[test]
    fn far_times_are_clamped_not_overflowed() {
        assert_eq!(super::nanos(1, 5), 1_000_000_005);
        assert_eq!(super::nanos(-1, 0), -1_000_000_000);
        assert_eq!(super::nanos(i64::MAX / 2, 999), i64::MAX);
        assert_eq!(super::nanos(i64::MIN / 2, 0), i64::MIN);
    }
}

#[cfg(test)]
mod tests {
    use super::NameCache;
    use std::process::Command;

    const ID: u32 = 4_242_424;
    const IN_NAMESPACE: &str = "CAIRN_TEST_LONG_ENTRIES_IN_NAMESPACE";

    /// A group with 3,000 members and a user with a 20,000-byte GECOS field:
    /// both entries are far larger than a 4 KiB buffer (and than glibc's
    /// first guess, 1 KiB), so the lookup only finds their names by growing
    /// the buffer on ERANGE. The real C library reads them: this test runs
    /// itself again in a private mount namespace where `/etc/group` and
    /// `/etc/passwd` are bind-mounted copies with the long entries added
    /// (nothing outside the namespace sees them; root only).
    #[test]
    fn long_user_and_group_entries_keep_their_names() {
        if std::env::var_os(IN_NAMESPACE).is_some() {
            let names = NameCache::default();
            assert_eq!(names.group(ID), "cairn-long-group");
            assert_eq!(names.user(ID), "cairn-long-user");
            return;
        }
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root (a private mount namespace)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut group = std::fs::read_to_string("/etc/group").unwrap();
        let members: Vec<String> = (0..3000).map(|i| format!("member{i:04}")).collect();
        group += &format!("cairn-long-group:x:{ID}:{}\n", members.join(","));
        let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        passwd += &format!(
            "cairn-long-user:x:{ID}:{ID}:{}:/nonexistent:/bin/false\n",
            "G".repeat(20_000)
        );
        let (g, p) = (dir.path().join("group"), dir.path().join("passwd"));
        std::fs::write(&g, group).unwrap();
        std::fs::write(&p, passwd).unwrap();
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /etc/group && mount --bind "$2" /etc/passwd && exec "$3" --exact "$4" --nocapture"#)
            .arg("sh")
            .args([&g, &p, &std::env::current_exe().unwrap()])
            .arg(format!("{}::long_user_and_group_entries_keep_their_names", module_path!().split_once("::").unwrap().1))
            .env(IN_NAMESPACE, "1")
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipping: cannot run unshare: {e}");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("unshare failed") {
            eprintln!("skipping: no private mount namespace here: {stderr}");
            return;
        }
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the check ran: {stdout}");
    }
}
