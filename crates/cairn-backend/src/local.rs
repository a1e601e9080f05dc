//! A repository in a local directory.
//!
//! Writes go to a temporary file in the destination directory (name starting
//! with `.tmp-`), are fsynced, and are renamed into place with
//! `RENAME_NOREPLACE` (or `link` where the file system lacks it), then the
//! directory is fsynced: a crash at any instant leaves either no file or the
//! whole file under the final name, and an existing file is never replaced.
//!
//! The pieces are public ([`PendingFile`], [`LocalBackend::path_of`]) so the
//! REST server stores uploads with the same code, streaming them to disk.

use crate::{valid_name, Backend, BackendError, ErrorKind, FileInfo, FileKind, Result};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory a file of `kind` named `name` lives in (`data/xx/` for packs).
    pub fn dir_of(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.clone(),
            FileKind::Data => self.root.join("data").join(&name[..2.min(name.len())]),
            k => self.root.join(k.dir()),
        }
    }

    /// The path of a file, or an error if `name` is not a valid name for `kind`.
    pub fn path_of(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        if !valid_name(kind, name) {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("invalid {kind} file name {name:?}"),
            ));
        }
        Ok(self.dir_of(kind, name).join(name))
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        self.path_of(kind, name)
    }

    fn dir(&self, kind: FileKind, name: &str) -> PathBuf {
        self.dir_of(kind, name)
    }
}

/// A file being written: bytes go to a temporary file (`.tmp-<name>-<random>`,
/// which listings skip) in the destination directory; [`PendingFile::commit`]
/// syncs it and renames it into place without replacing anything. Dropped
/// without a commit, the temporary file is removed, so a failed or abandoned
/// write never becomes visible.
pub struct PendingFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

impl PendingFile {
    /// Start writing `dir/name` (the directory must exist).
    pub fn create(dir: &Path, name: &str) -> std::io::Result<PendingFile> {
        let tmp = dir.join(format!(".tmp-{name}-{:016x}", rand::random::<u64>()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        Ok(PendingFile {
            file: Some(file),
            tmp,
            target: dir.join(name),
            dir: dir.to_path_buf(),
        })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Make the file visible under its final name: fsync the file, rename it
    /// with `RENAME_NOREPLACE` (an existing file gives `AlreadyExists` and
    /// stays untouched), fsync the directory.
    pub fn commit(mut self) -> std::io::Result<()> {
        let f = self.file.take().expect("a pending file is committed once");
        f.sync_all()?;
        drop(f);
        rename_noreplace(&self.tmp, &self.target)?;
        // Renamed: nothing is left to clean up, even if the directory sync fails.
        self.tmp = PathBuf::new();
        fsync_dir(&self.dir)
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("not committed").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.as_mut().expect("not committed").write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// fsync a directory, so the entries created or renamed in it are durable.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Rename `from` to `to`, failing with AlreadyExists if `to` exists.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            // No RENAME_NOREPLACE here: link() also refuses to replace.
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

/// A pack streamed to a temporary file in `data/` (listings only look in
/// `data/xx/`), renamed into `data/xx/<name>` when committed.
struct LocalDataWriter {
    file: Option<File>,
    tmp: PathBuf,
    backend_root: PathBuf,
}

impl crate::DataWriter for LocalDataWriter {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("not committed");
        f.write_all(buf)
            .map_err(|e| BackendError::io(e, format!("writing {}", self.tmp.display())))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let b = LocalBackend::new(&self.backend_root);
        let target = b.path_of(FileKind::Data, name)?;
        let dir = b.dir_of(FileKind::Data, name);
        let ctx = || format!("writing {}", target.display());
        let f = self.file.take().expect("committed once");
        f.sync_all().map_err(|e| BackendError::io(e, ctx()))?;
        drop(f);
        rename_noreplace(&self.tmp, &target).map_err(|e| BackendError::io(e, ctx()))?;
        self.tmp = PathBuf::new();
        fsync_dir(&dir).map_err(|e| BackendError::io(e, ctx()))
    }
}

impl Drop for LocalDataWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn remove_stale_temporaries(&self, older_than: std::time::Duration) -> Result<usize> {
        let mut dirs = vec![self.root.clone(), self.root.join("data")];
        for k in [
            FileKind::Key,
            FileKind::Lock,
            FileKind::Snapshot,
            FileKind::Index,
        ] {
            dirs.push(self.root.join(k.dir()));
        }
        if let Ok(rd) = fs::read_dir(self.root.join("data")) {
            dirs.extend(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir()),
            );
        }
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for dir in dirs {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.filter_map(|e| e.ok()) {
                if !e.file_name().as_bytes().starts_with(b".tmp-") {
                    continue;
                }
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= older_than));
                if stale && fs::remove_file(e.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn data_writer(&self) -> Result<Option<Box<dyn crate::DataWriter>>> {
        let tmp = self
            .root
            .join("data")
            .join(format!(".tmp-pack-{:016x}", rand::random::<u64>()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| BackendError::io(e, format!("creating {}", tmp.display())))?;
        Ok(Some(Box::new(LocalDataWriter {
            file: Some(file),
            tmp,
            backend_root: self.root.clone(),
        })))
    }

    fn write_concurrency(&self) -> usize {
        1
    }

    fn create(&self) -> Result<()> {
        let mut dirs = vec![self.root.clone()];
        for k in [
            FileKind::Key,
            FileKind::Lock,
            FileKind::Snapshot,
            FileKind::Index,
        ] {
            dirs.push(self.root.join(k.dir()));
        }
        for i in 0..=255u8 {
            dirs.push(self.root.join("data").join(format!("{i:02x}")));
        }
        for d in &dirs {
            fs::create_dir_all(d)
                .map_err(|e| BackendError::io(e, format!("creating {}", d.display())))?;
        }
        fsync_dir(&self.root)
            .map_err(|e| BackendError::io(e, format!("syncing {}", self.root.display())))?;
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        let dirs: Vec<PathBuf> = match kind {
            FileKind::Config => {
                return match self.stat(kind, "config") {
                    Ok(size) => Ok(vec![FileInfo {
                        name: "config".into(),
                        size,
                    }]),
                    Err(e) if e.is_not_found() => Ok(vec![]),
                    Err(e) => Err(e),
                }
            }
            FileKind::Data => {
                let top = self.root.join("data");
                match fs::read_dir(&top) {
                    // The entry's type comes with the directory listing: no stat per shard.
                    Ok(rd) => rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path())
                        .collect(),
                    Err(e) => {
                        return Err(BackendError::io(e, format!("listing {}", top.display())))
                    }
                }
            }
            k => vec![self.root.join(k.dir())],
        };
        for dir in dirs {
            let rd = fs::read_dir(&dir)
                .map_err(|e| BackendError::io(e, format!("listing {}", dir.display())))?;
            for entry in rd {
                let entry =
                    entry.map_err(|e| BackendError::io(e, format!("listing {}", dir.display())))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !valid_name(kind, name) {
                    continue;
                }
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(BackendError::io(
                            e,
                            format!("reading {}", entry.path().display()),
                        ))
                    }
                };
                if meta.is_file() {
                    out.push(FileInfo {
                        name: name.to_string(),
                        size: meta.len(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        let p = self.path(kind, name)?;
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| BackendError::io(e, format!("reading {}", p.display())))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        let p = self.path(kind, name)?;
        let ctx = || format!("reading {}", p.display());
        let mut f = File::open(&p).map_err(|e| BackendError::io(e, ctx()))?;
        let size = f.metadata().map_err(|e| BackendError::io(e, ctx()))?.len();
        let len = match length {
            Some(n) => n,
            None => size.saturating_sub(offset),
        };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("{}: range {offset}+{len} is beyond the end of the file ({size} bytes; truncated?)", ctx()),
            ));
        }
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| BackendError::io(e, ctx()))?;
        }
        // Read into uninitialised capacity: zeroing the buffer first cost
        // as much as a tenth of a restore's user time.
        let mut buf = Vec::with_capacity(len as usize);
        (&mut f)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| BackendError::io(e, ctx()))?;
        if buf.len() as u64 != len {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!(
                    "{}: range {offset}+{len}: only {} bytes could be read (truncated?)",
                    ctx(),
                    buf.len()
                ),
            ));
        }
        Ok(buf)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let target = self.path(kind, name)?;
        let dir = self.dir(kind, name);
        let ctx = || format!("writing {}", target.display());
        let result = PendingFile::create(&dir, name).and_then(|mut f| {
            f.write_all(data)?;
            f.commit()
        });
        if let Err(e) = result {
            if e.kind() == std::io::ErrorKind::NotFound && !self.root.join("keys").is_dir() {
                return Err(BackendError::new(
                    ErrorKind::NotFound,
                    format!("{}: repository directory is missing", ctx()),
                ));
            }
            return Err(BackendError::io(e, ctx()));
        }
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let p = self.path(kind, name)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::io(e, format!("removing {}", p.display()))),
        }
    }
}

#[cfg(test)]
mod stale_tests {
    use crate::Backend;
    use std::time::{Duration, SystemTime};

    #[test]
    fn only_old_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(dir.path().join("repo"));
        b.create().unwrap();
        let old = dir.path().join("repo/data/.tmp-pack-old");
        let old2 = dir.path().join("repo/index/.tmp-abc-1");
        let young = dir.path().join("repo/data/ab/.tmp-young");
        let other = dir.path().join("repo/data/not-a-temp");
        for p in [&old, &old2, &young, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for p in [&old, &old2, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        assert_eq!(
            b.remove_stale_temporaries(Duration::from_secs(3600))
                .unwrap(),
            2
        );
        assert!(!old.exists() && !old2.exists());
        assert!(young.exists(), "a temporary written to recently stays");
        assert!(other.exists(), "only .tmp- files are touched");
    }
}

#[cfg(test)]
mod tests {
    use crate::conformance::Fixture;

    fn fixture() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(dir.path().join("repo"));
        Some(Fixture::with(b, dir))
    }

    crate::conformance_tests!(fixture);
}
