//! A wrapper that writes nothing: `--dry-run` commands run their real code
//! over it and the repository stays byte for byte as it was.
//!
//! Reads, listings and stats go to the wrapped backend. A write is
//! recorded (name and size) and its bytes dropped, except for small files
//! (everything but packs), which are kept in memory so that reading back a
//! file written in the same run (an index, a snapshot) works; reading back
//! a pack written in the run is `NotFound`. Listings and stats include the
//! recorded files, so the rest of the run sees a consistent repository.
//! Removes only hide files from this wrapper's view.

use crate::{Backend, BackendError, ErrorKind, FileInfo, FileKind, Hint, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// A file written in this run: its size, and its bytes unless it is a pack.
type Written = (u64, Option<Vec<u8>>);

#[derive(Default)]
struct Overlay {
    written: BTreeMap<(FileKind, String), Written>,
    removed: BTreeSet<(FileKind, String)>,
}

pub struct DryRunBackend {
    inner: Arc<dyn Backend>,
    overlay: Mutex<Overlay>,
}

impl DryRunBackend {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        DryRunBackend {
            inner,
            overlay: Mutex::new(Overlay::default()),
        }
    }

    /// What the run would have written: files per kind and their bytes.
    pub fn written(&self) -> Vec<(FileKind, String, u64)> {
        let o = self.overlay.lock().unwrap();
        o.written
            .iter()
            .map(|((k, n), (size, _))| (*k, n.clone(), *size))
            .collect()
    }
}

fn not_found(kind: FileKind, name: &str) -> BackendError {
    BackendError::new(ErrorKind::NotFound, format!("{kind}/{name}: not found"))
}

impl Backend for DryRunBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let mut files = self.inner.list(kind)?;
        let o = self.overlay.lock().unwrap();
        files.retain(|f| !o.removed.contains(&(kind, f.name.clone())));
        for ((k, name), (size, _)) in &o.written {
            if *k == kind && !files.iter().any(|f| &f.name == name) {
                files.push(FileInfo {
                    name: name.clone(),
                    size: *size,
                });
            }
        }
        Ok(files)
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        let key = (kind, name.to_string());
        {
            let o = self.overlay.lock().unwrap();
            if o.removed.contains(&key) {
                return Err(not_found(kind, name));
            }
            if let Some((size, _)) = o.written.get(&key) {
                return Ok(*size);
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
        let key = (kind, name.to_string());
        {
            let o = self.overlay.lock().unwrap();
            if o.removed.contains(&key) {
                return Err(not_found(kind, name));
            }
            if let Some((_, bytes)) = o.written.get(&key) {
                let bytes = bytes.as_ref().ok_or_else(|| not_found(kind, name))?;
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let end = match length {
                    Some(l) => start.saturating_add(usize::try_from(l).unwrap_or(usize::MAX)),
                    None => bytes.len(),
                };
                return bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
                    BackendError::new(
                        ErrorKind::Permanent,
                        format!("{kind}/{name}: range {offset}+{length:?} past the end"),
                    )
                });
            }
        }
        self.inner.read_range(kind, name, offset, length)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        if self.stat(kind, name).is_ok() {
            return Err(BackendError::new(
                ErrorKind::AlreadyExists,
                format!("{kind}/{name} already exists"),
            ));
        }
        let key = (kind, name.to_string());
        let kept = (kind != FileKind::Data).then(|| data.to_vec());
        let mut o = self.overlay.lock().unwrap();
        o.removed.remove(&key);
        o.written.insert(key, (data.len() as u64, kept));
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let key = (kind, name.to_string());
        let mut o = self.overlay.lock().unwrap();
        o.written.remove(&key);
        o.removed.insert(key);
        Ok(())
    }

    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }

    fn hint(&self, hint: &Hint<'_>) {
        // A pack about to be written is never written: tell no cache.
        if !matches!(hint, Hint::TreePack(_)) {
            self.inner.hint(hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn writes_stay_in_the_overlay() {
        let inner: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let name = |c: char| c.to_string().repeat(64);
        inner.write(FileKind::Index, &name('a'), b"old").unwrap();
        let d = DryRunBackend::new(inner.clone());
        d.write(FileKind::Index, &name('b'), b"new index").unwrap();
        d.write(FileKind::Data, &name('c'), b"pack bytes").unwrap();
        d.remove(FileKind::Index, &name('a')).unwrap();
        let listed: Vec<String> = d
            .list(FileKind::Index)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(listed, [name('b')]);
        assert_eq!(d.read(FileKind::Index, &name('b')).unwrap(), b"new index");
        assert_eq!(
            d.read_range(FileKind::Index, &name('b'), 4, Some(5))
                .unwrap(),
            b"index"
        );
        assert_eq!(d.stat(FileKind::Data, &name('c')).unwrap(), 10);
        assert!(d
            .read(FileKind::Data, &name('c'))
            .unwrap_err()
            .is_not_found());
        assert_eq!(
            d.write(FileKind::Index, &name('b'), b"x").unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        // The wrapped backend saw nothing.
        assert_eq!(inner.read(FileKind::Index, &name('a')).unwrap(), b"old");
        assert!(inner.list(FileKind::Data).unwrap().is_empty());
        assert_eq!(inner.list(FileKind::Index).unwrap().len(), 1);
        assert_eq!(d.written().len(), 2);
    }
}
