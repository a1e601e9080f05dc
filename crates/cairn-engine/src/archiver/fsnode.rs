//! Reading a file's metadata into a tree [`Node`].

use cairn_repository::format::tree::{ByteString, Node, NodeKind, Xattr};
use std::collections::HashMap;
use std::ffi::CStr;
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

fn lookup_user(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; getpwuid_r writes into pwd and buf, both valid for the call.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !pwd.pw_name.is_null()
        {
            return CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        }
    }
    String::new()
}

fn lookup_group(gid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in lookup_user.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        if libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !grp.gr_name.is_null()
        {
            return CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned();
        }
    }
    String::new()
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
/// filled in later. The link target and xattrs are read here, unless `old`
/// (the entry in the parent snapshot) is the same inode with the same ctime:
/// changing either changes the ctime, so they are taken from `old`.
pub fn node_from_metadata(
    path: &Path,
    name: &[u8],
    meta: &Metadata,
    names: &NameCache,
    old: Option<&Node>,
) -> std::io::Result<Node> {
    let kind = kind_of(meta).ok_or_else(|| std::io::Error::other("unknown file type"))?;
    let mut n = Node::new(ByteString(name.to_vec()), kind);
    n.mode = meta.mode();
    n.mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    // A directory's atime changes whenever it is listed (by this backup too):
    // recording it would make every backup see every directory as changed.
    n.atime = if kind == NodeKind::Dir {
        n.mtime
    } else {
        meta.atime() * 1_000_000_000 + meta.atime_nsec()
    };
    n.ctime = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.user = names.user(n.uid);
    n.group = names.group(n.gid);
    n.inode = meta.ino();
    n.device = meta.dev();
    n.links = meta.nlink();
    let same = old.filter(|o| o.kind == kind && o.ctime == n.ctime && o.inode == n.inode && o.ctime != 0);
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
