//! An in-memory backend, for unit tests. It streams data files as a
//! network backend does ([`Backend::data_writer`]), so the repository's unit
//! tests cover the path real backups take.

use crate::{valid_name, Backend, BackendError, DataWriter, ErrorKind, FileInfo, FileKind, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Files = Arc<Mutex<BTreeMap<(FileKind, String), Vec<u8>>>>;

#[derive(Default)]
pub struct MemoryBackend {
    files: Files,
}

/// A data file streamed into memory, stored on commit.
struct MemoryWriter {
    files: Files,
    buf: Vec<u8>,
}

impl DataWriter for MemoryWriter {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        insert(&self.files, FileKind::Data, name, self.buf)
    }
}

/// Store a new file; an existing name is `AlreadyExists`.
fn insert(files: &Files, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
    if !valid_name(kind, name) {
        return Err(BackendError::new(
            ErrorKind::Permanent,
            format!("invalid {kind} file name {name:?}"),
        ));
    }
    let mut files = files.lock().unwrap();
    let key = (kind, name.to_string());
    if files.contains_key(&key) {
        return Err(BackendError::new(
            ErrorKind::AlreadyExists,
            format!("{kind}/{name} already exists"),
        ));
    }
    files.insert(key, data);
    Ok(())
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

fn not_found(kind: FileKind, name: &str) -> BackendError {
    BackendError::new(ErrorKind::NotFound, format!("{kind}/{name}: not found"))
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory".into()
    }

    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let files = self.files.lock().unwrap();
        Ok(files
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, n), v)| FileInfo {
                name: n.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        let files = self.files.lock().unwrap();
        files
            .get(&(kind, name.to_string()))
            .map(|v| v.len() as u64)
            .ok_or_else(|| not_found(kind, name))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        let files = self.files.lock().unwrap();
        let v = files
            .get(&(kind, name.to_string()))
            .ok_or_else(|| not_found(kind, name))?;
        let start = offset as usize;
        let end = match length {
            Some(n) => start.saturating_add(n as usize),
            None => v.len().max(start),
        };
        if start > v.len() || end > v.len() {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("{kind}/{name}: range beyond the end"),
            ));
        }
        Ok(v[start..end].to_vec())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        insert(&self.files, kind, name, data.to_vec())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.files.lock().unwrap().remove(&(kind, name.to_string()));
        Ok(())
    }

    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        Ok(Some(Box::new(MemoryWriter {
            files: self.files.clone(),
            buf: Vec::new(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::conformance::Fixture;

    fn fixture() -> Option<Fixture> {
        Some(Fixture::new(super::MemoryBackend::new()))
    }

    crate::conformance_tests!(fixture);

    #[test]
    fn all_contracts_in_a_row() {
        crate::conformance::run(&super::MemoryBackend::new());
    }
}
