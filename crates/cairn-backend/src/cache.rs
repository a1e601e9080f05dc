//! A local cache for remote repositories, as a wrapper: [`CacheBackend`]
//! keeps copies of the files every command reads again (snapshots, index
//! files, and the packs that hold only tree blobs) under
//! `<cache dir>/<repository id>/`, so a second `snapshots`, `ls` or an
//! unchanged re-backup reads them from the local disk instead of the
//! network.
//!
//! Why it is never stale: repository files are write-once and named by the
//! SHA-256 of their bytes, so a cached file is either the file of that name
//! or damaged. The first read of a cached file in a process checks its
//! SHA-256 against its name (a damaged copy is dropped and fetched again);
//! later reads of the same file trust that check. Files removed from the
//! repository (by `forget`, `prune`) are dropped from the cache when a
//! listing of their kind no longer shows them.
//!
//! What it holds: the files exactly as the repository stores them (sealed),
//! so the cache holds no plaintext. Writing to it is best effort: a full or
//! read-only cache directory only makes the cache useless, never a command
//! fail. Cache files are written to a temporary name and renamed, so a
//! crash never leaves a partial file under a real name.
//!
//! Which files: nothing is cached before the repository is open (its id
//! comes from the decrypted config, [`Hint::Opened`]); keys and the config
//! are never cached. Packs are cached only once the repository has named
//! them as tree packs ([`Hint::TreePacks`] when the index is loaded,
//! [`Hint::TreePack`] just before a backup writes one, so the next run
//! finds the trees it wrote), since data packs are large and read once by
//! a restore.

use crate::{valid_name, Backend, BackendError, DataWriter, ErrorKind, FileInfo, FileKind};
use crate::{Hint, Result};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

/// What a cache directory says about itself (the Cache Directory Tagging
/// specification), so that backup tools, cairn included, skip it.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by cairn.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// Counters of what the cache saved and what still came from the backend.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Bytes read from the wrapped backend, cached kinds or not.
    pub backend_bytes: AtomicU64,
}

pub struct CacheBackend<B: Backend> {
    inner: B,
    /// The cache root (`$XDG_CACHE_HOME/cairn` by default).
    base: PathBuf,
    /// `base/<repository id>`, once the repository is open.
    dir: OnceLock<PathBuf>,
    tree_packs: RwLock<HashSet<String>>,
    /// Cached files whose SHA-256 was checked in this process.
    verified: Mutex<HashSet<(FileKind, String)>>,
    stats: CacheStats,
}

impl<B: Backend> CacheBackend<B> {
    /// Cache `inner`'s files under `base` (created on first use).
    pub fn new(inner: B, base: impl Into<PathBuf>) -> Self {
        CacheBackend {
            inner,
            base: base.into(),
            dir: OnceLock::new(),
            tree_packs: RwLock::new(HashSet::new()),
            verified: Mutex::new(HashSet::new()),
            stats: CacheStats::default(),
        }
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The directory of this repository's cache, once it is known.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.get().map(PathBuf::as_path)
    }

    fn cacheable(&self, kind: FileKind, name: &str) -> bool {
        match kind {
            FileKind::Snapshot | FileKind::Index => true,
            FileKind::Data => self
                .tree_packs
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(name),
            _ => false,
        }
    }

    fn path(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let dir = self.dir.get()?;
        if !valid_name(kind, name) {
            return None;
        }
        Some(match kind {
            FileKind::Data => dir.join("data").join(&name[..2]).join(name),
            _ => dir.join(kind.dir()).join(name),
        })
    }

    /// Bytes `offset..offset+length` of the cached file, if it is there
    /// and (checked once per process) intact.
    fn read_cached(
        &self,
        kind: FileKind,
        name: &str,
        path: &Path,
        offset: u64,
        length: Option<u64>,
    ) -> Option<Result<Vec<u8>>> {
        let key = (kind, name.to_string());
        let checked = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key);
        if !checked {
            let whole = fs::read(path).ok()?;
            if hex(&Sha256::digest(&whole)) != name {
                let _ = fs::remove_file(path);
                return None;
            }
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
            return Some(slice(kind, name, whole, offset, length));
        }
        let mut file = fs::File::open(path).ok()?;
        let size = file.metadata().ok()?.len();
        let end = match length {
            Some(n) => offset.checked_add(n)?,
            None => size,
        };
        if offset > size || end > size {
            return Some(Err(beyond_end(kind, name)));
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut buf).ok()?;
        Some(Ok(buf))
    }

    /// Best effort: store `bytes` as the cached copy of `kind/name`.
    fn store(&self, kind: FileKind, name: &str, bytes: &[u8]) {
        let Some(path) = self.path(kind, name) else {
            return;
        };
        let Some(parent) = path.parent() else {
            return;
        };
        if fs::create_dir_all(parent).is_err() {
            return;
        }
        let tmp = parent.join(format!(
            ".tmp-{name}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        if fs::write(&tmp, bytes).is_ok() && fs::rename(&tmp, &path).is_ok() {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((kind, name.to_string()));
        } else {
            let _ = fs::remove_file(&tmp);
        }
    }

    fn forget(&self, kind: FileKind, name: &str) {
        if let Some(path) = self.path(kind, name) {
            let _ = fs::remove_file(path);
        }
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(kind, name.to_string()));
    }

    /// Drop cached files of `kind` that the repository no longer has.
    fn expire(&self, kind: FileKind, listed: &[FileInfo]) {
        let Some(dir) = self.dir.get() else {
            return;
        };
        let live: HashSet<&str> = listed.iter().map(|f| f.name.as_str()).collect();
        let dirs: Vec<PathBuf> = match kind {
            FileKind::Data => match fs::read_dir(dir.join("data")) {
                Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
                Err(_) => return,
            },
            _ => vec![dir.join(kind.dir())],
        };
        for d in dirs {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !live.contains(name.as_ref()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn bind(&self, id: &str) {
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
            return;
        }
        let dir = self.base.join(id);
        if fs::create_dir_all(&dir).is_ok() {
            let tag = self.base.join("CACHEDIR.TAG");
            if !tag.exists() {
                let _ = fs::write(&tag, CACHEDIR_TAG);
            }
            // The directory's mtime says when it was last used (cleanup).
            let _ = fs::File::open(&dir).and_then(|f| f.set_modified(std::time::SystemTime::now()));
            let _ = self.dir.set(dir);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn beyond_end(kind: FileKind, name: &str) -> BackendError {
    BackendError::new(
        ErrorKind::Permanent,
        format!("{kind}/{name}: range beyond the end of the file"),
    )
}

fn slice(
    kind: FileKind,
    name: &str,
    mut whole: Vec<u8>,
    offset: u64,
    length: Option<u64>,
) -> Result<Vec<u8>> {
    let size = whole.len() as u64;
    let end = match length {
        Some(n) => offset
            .checked_add(n)
            .ok_or_else(|| beyond_end(kind, name))?,
        None => size,
    };
    if offset > size || end > size {
        return Err(beyond_end(kind, name));
    }
    if offset == 0 && end == size {
        return Ok(whole);
    }
    whole.truncate(end as usize);
    Ok(whole.split_off(offset as usize))
}

impl<B: Backend> Backend for CacheBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let listed = self.inner.list(kind)?;
        if matches!(kind, FileKind::Snapshot | FileKind::Index | FileKind::Data) {
            self.expire(kind, &listed);
        }
        Ok(listed)
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        if self.cacheable(kind, name) {
            if let Some(path) = self.path(kind, name) {
                if let Ok(m) = fs::metadata(&path) {
                    return Ok(m.len());
                }
            }
        }
        self.inner.stat(kind, name)
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        let path = match self.path(kind, name) {
            Some(p) if self.cacheable(kind, name) => p,
            _ => {
                let bytes = self.inner.read_range(kind, name, offset, length)?;
                self.stats
                    .backend_bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                return Ok(bytes);
            }
        };
        if let Some(hit) = self.read_cached(kind, name, &path, offset, length) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return hit;
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let whole = self.inner.read(kind, name)?;
        self.stats
            .backend_bytes
            .fetch_add(whole.len() as u64, Ordering::Relaxed);
        // Only intact files are cached; a damaged one reaches the
        // repository, which reports it.
        if hex(&Sha256::digest(&whole)) == name {
            self.store(kind, name, &whole);
        }
        slice(kind, name, whole, offset, length)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(kind, name, data)?;
        // What this run writes, the next run reads: keep it (tree packs
        // once the repository has named them, just before the write).
        if self.cacheable(kind, name) {
            self.store(kind, name, data);
        }
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.forget(kind, name);
        self.inner.remove(kind, name)
    }

    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }

    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        self.inner.data_writer()
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(older_than)
    }

    fn hint(&self, hint: &Hint<'_>) {
        match hint {
            Hint::Opened { id } => self.bind(id),
            Hint::TreePacks(names) => {
                let mut set = self.tree_packs.write().unwrap_or_else(|p| p.into_inner());
                set.clear();
                set.extend(names.iter().cloned());
            }
            Hint::TreePack(name) => {
                self.tree_packs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_string());
            }
        }
        self.inner.hint(hint)
    }
}

/// `--cleanup-cache`: remove the caches of repositories not used for
/// `unused_for` (by the directory's modification time, set on each use).
/// Returns the directories removed.
pub fn cleanup(base: &Path, unused_for: Duration) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = match fs::read_dir(base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let is_cache = name.len() == 64
            && name
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        if !is_cache || !path.is_dir() {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > unused_for);
        if old {
            fs::remove_dir_all(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::name_of;
    use crate::MemoryBackend;
    use std::sync::Arc;

    const ID: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn cached() -> (
        tempfile::TempDir,
        Arc<MemoryBackend>,
        CacheBackend<Arc<MemoryBackend>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mem = Arc::new(MemoryBackend::new());
        let c = CacheBackend::new(mem.clone(), dir.path());
        (dir, mem, c)
    }

    #[test]
    fn nothing_is_cached_before_the_repository_is_open() {
        let (dir, mem, c) = cached();
        let snap = b"snapshot".to_vec();
        mem.write(FileKind::Snapshot, &name_of(&snap), &snap)
            .unwrap();
        assert_eq!(c.read(FileKind::Snapshot, &name_of(&snap)).unwrap(), snap);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_second_read_comes_from_the_cache_and_a_removed_file_leaves_it() {
        let (dir, mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        let snap = b"snapshot bytes".to_vec();
        let name = name_of(&snap);
        mem.write(FileKind::Snapshot, &name, &snap).unwrap();
        assert_eq!(c.read(FileKind::Snapshot, &name).unwrap(), snap);
        assert_eq!(c.stats().misses.load(Ordering::Relaxed), 1);
        // A new process (a new wrapper over the same directory) reads it locally.
        let c2 = CacheBackend::new(mem.clone(), dir.path());
        c2.hint(&Hint::Opened { id: ID });
        assert_eq!(
            c2.read_range(FileKind::Snapshot, &name, 2, Some(5))
                .unwrap(),
            &snap[2..7]
        );
        assert_eq!(c2.stats().hits.load(Ordering::Relaxed), 1);
        assert_eq!(c2.stats().backend_bytes.load(Ordering::Relaxed), 0);
        assert!(dir.path().join("CACHEDIR.TAG").exists());
        // Removed behind the cache's back (another client's forget): a
        // listing drops it.
        mem.remove(FileKind::Snapshot, &name).unwrap();
        assert!(c2.list(FileKind::Snapshot).unwrap().is_empty());
        assert!(!dir.path().join(ID).join("snapshots").join(&name).exists());
    }

    #[test]
    fn a_damaged_cached_copy_is_replaced() {
        let (dir, mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        let idx = b"index file".to_vec();
        let name = name_of(&idx);
        mem.write(FileKind::Index, &name, &idx).unwrap();
        c.read(FileKind::Index, &name).unwrap();
        let path = dir.path().join(ID).join("index").join(&name);
        fs::write(&path, b"tampered!!").unwrap();
        let c2 = CacheBackend::new(mem.clone(), dir.path());
        c2.hint(&Hint::Opened { id: ID });
        assert_eq!(c2.read(FileKind::Index, &name).unwrap(), idx);
        assert_eq!(c2.stats().misses.load(Ordering::Relaxed), 1);
        assert_eq!(fs::read(&path).unwrap(), idx);
    }

    #[test]
    fn only_tree_packs_are_cached() {
        let (dir, mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        let tree = b"tree pack".to_vec();
        let data = b"data pack".to_vec();
        for p in [&tree, &data] {
            mem.write(FileKind::Data, &name_of(p), p).unwrap();
        }
        c.hint(&Hint::TreePacks(&[name_of(&tree)]));
        c.read_range(FileKind::Data, &name_of(&tree), 1, Some(3))
            .unwrap();
        c.read_range(FileKind::Data, &name_of(&data), 1, Some(3))
            .unwrap();
        let cached = |p: &[u8]| {
            let n = name_of(p);
            dir.path()
                .join(ID)
                .join("data")
                .join(&n[..2])
                .join(&n)
                .exists()
        };
        assert!(cached(&tree));
        assert!(!cached(&data));
        // Past the end is an error, from the cache as from the backend.
        assert!(c
            .read_range(FileKind::Data, &name_of(&tree), 5, Some(10))
            .is_err());
    }

    #[test]
    fn a_tree_pack_named_before_its_write_is_cached_by_the_write() {
        let (dir, mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        let tree = b"new tree pack".to_vec();
        let data = b"new data pack".to_vec();
        c.hint(&Hint::TreePack(&name_of(&tree)));
        c.write(FileKind::Data, &name_of(&tree), &tree).unwrap();
        c.write(FileKind::Data, &name_of(&data), &data).unwrap();
        let n = name_of(&tree);
        let path = dir.path().join(ID).join("data").join(&n[..2]).join(&n);
        assert_eq!(fs::read(&path).unwrap(), tree);
        let d = name_of(&data);
        assert!(!dir
            .path()
            .join(ID)
            .join("data")
            .join(&d[..2])
            .join(&d)
            .exists());
        // Read back from the cache: nothing from the backend.
        mem.remove(FileKind::Data, &n).unwrap();
        assert_eq!(c.read(FileKind::Data, &n).unwrap(), tree);
        assert_eq!(c.stats().backend_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn cleanup_removes_only_old_repository_caches() {
        let (dir, _mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        fs::create_dir_all(dir.path().join("not-a-cache")).unwrap();
        assert!(cleanup(dir.path(), Duration::from_secs(3600))
            .unwrap()
            .is_empty());
        let removed = cleanup(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(removed, vec![dir.path().join(ID)]);
        assert!(dir.path().join("not-a-cache").exists());
    }

    #[test]
    fn conformance() {
        let (_dir, mem, c) = cached();
        c.hint(&Hint::Opened { id: ID });
        drop(mem);
        crate::conformance::run(&c);
    }
}
