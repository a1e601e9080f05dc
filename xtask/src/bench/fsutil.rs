//! File-system helpers for the bench: walking, sizes (`du`), reading a tree
//! once to warm the page cache, removing and copying trees.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// What a tree holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Regular files.
    pub files: u64,
    /// Sum of the regular files' lengths.
    pub bytes: u64,
    /// Space allocated, as `du` counts it (files and directories).
    pub disk_bytes: u64,
}

/// Calls `visit` for every entry below `dir` (not `dir` itself), depth
/// first, without following symlinks.
pub fn walk(dir: &Path, visit: &mut dyn FnMut(&Path, &fs::Metadata)) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        visit(&path, &meta);
        if meta.is_dir() {
            walk(&path, visit)?;
        }
    }
    Ok(())
}

pub fn usage(dir: &Path) -> Result<Usage> {
    let mut usage = Usage::default();
    if let Ok(meta) = fs::symlink_metadata(dir) {
        usage.disk_bytes += meta.blocks() * 512;
    }
    walk(dir, &mut |_, meta| {
        usage.disk_bytes += meta.blocks() * 512;
        if meta.is_file() {
            usage.files += 1;
            usage.bytes += meta.len();
        }
    })
    .with_context(|| format!("measuring {}", dir.display()))?;
    Ok(usage)
}

/// The SHA-256 of every regular file below `dir` (or of `dir` itself if it
/// is a file), sorted: two trees holding the same contents, wherever the
/// files sit, give the same list.
pub fn content_digests(dir: &Path) -> Result<Vec<[u8; 32]>> {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        walk(dir, &mut |p, meta| {
            if meta.is_file() {
                files.push(p.to_path_buf());
            }
        })
        .with_context(|| format!("listing {}", dir.display()))?;
    }
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let mut h = Sha256::new();
        let mut file = File::open(&f).with_context(|| format!("opening {}", f.display()))?;
        io::copy(&mut file, &mut h).with_context(|| format!("reading {}", f.display()))?;
        out.push(h.finalize().into());
    }
    out.sort_unstable();
    Ok(out)
}

/// A restore is right: `restored` holds as many files and bytes as
/// `source`, with the same contents (wherever below it they sit).
pub fn check_restored(source: &Path, restored: &Path) -> Result<()> {
    let (want, got) = (usage(source)?, usage(restored)?);
    if (want.files, want.bytes) != (got.files, got.bytes) {
        anyhow::bail!(
            "restore is incomplete: {} files, {} bytes restored; the source has {} files, {} bytes",
            got.files,
            got.bytes,
            want.files,
            want.bytes
        );
    }
    if content_digests(source)? != content_digests(restored)? {
        anyhow::bail!("restore is wrong: files of the right sizes with other contents");
    }
    Ok(())
}

/// Reads every regular file below `dir` (or `dir` itself if it is a file)
/// once, so later runs find it in the page cache. Returns bytes read.
pub fn read_all(dir: &Path) -> Result<u64> {
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        walk(dir, &mut |path, meta| {
            if meta.is_file() {
                files.push(path.to_path_buf());
            }
        })?;
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    for path in files {
        let mut file = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Removes a file or a tree; a missing path is fine.
pub fn remove(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// `cp -a src dst` (dst must not exist): a fresh copy with new inodes.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!(
            "cp -a {} {} failed ({status})",
            src.display(),
            dst.display()
        );
    }
    Ok(())
}

/// Sorted lists of the regular files and directories below `root`
/// (`root` itself is the first directory).
pub fn list(root: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    walk(root, &mut |path, meta| {
        if meta.is_dir() {
            dirs.push(path.to_path_buf());
        } else if meta.is_file() {
            files.push(path.to_path_buf());
        }
    })
    .with_context(|| format!("listing {}", root.display()))?;
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// Bytes free for an unprivileged writer on the file system of `path`.
pub fn available(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a live struct to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}
