//! The pack being filled: streamed straight to storage where the backend
//! can (a local disk: no pack is ever held in memory), else built in memory
//! and written whole when finished (network backends need the name, the
//! SHA-256 of the bytes, before the upload).

use crate::error::Result;
use cairn_backend::{Backend, DataWriter};
use cairn_format::crypto::Cipher;
use cairn_format::pack::{header_bytes, PackEntry, HEADER_ENTRY_LEN};
use cairn_format::{BlobKind, Id};
use sha2::{Digest, Sha256};

enum Sink {
    Memory(Vec<u8>),
    Stream {
        writer: Box<dyn DataWriter>,
        hasher: Sha256,
    },
}

pub(crate) struct OpenPack {
    sink: Sink,
    entries: Vec<PackEntry>,
    len: usize,
}

/// A finished pack, ready to be stored under its name.
pub(crate) struct FinishedPack {
    pub id: Id,
    pub entries: Vec<PackEntry>,
    pub size: u64,
    pub body: Body,
}

pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// Written already; committing names it.
    Streamed(Box<dyn DataWriter>),
}

impl OpenPack {
    /// A pack streamed to the backend if `stream` and the backend can take
    /// one, else built in memory.
    pub fn new(backend: &dyn Backend, capacity: usize, stream: bool) -> Result<OpenPack> {
        let writer = if stream { backend.data_writer()? } else { None };
        let sink = match writer {
            Some(writer) => Sink::Stream {
                writer,
                hasher: Sha256::new(),
            },
            None => Sink::Memory(Vec::with_capacity(capacity)),
        };
        Ok(OpenPack {
            sink,
            entries: Vec::new(),
            len: 0,
        })
    }

    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) -> Result<()> {
        match &mut self.sink {
            Sink::Memory(buf) => buf.extend_from_slice(sealed),
            Sink::Stream { writer, hasher } => {
                writer.write_all(sealed)?;
                hasher.update(sealed);
            }
        }
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.len as u32,
            length: sealed.len() as u32,
            raw_length,
        });
        self.len += sealed.len();
        Ok(())
    }

    /// Bytes the pack will have with its header.
    pub fn size(&self) -> usize {
        self.len + self.entries.len() * HEADER_ENTRY_LEN
    }

    pub fn finish(self, cipher: &Cipher) -> Result<FinishedPack> {
        let header = header_bytes(cipher, &self.entries);
        let size = (self.len + header.len()) as u64;
        let (id, body) = match self.sink {
            Sink::Memory(mut buf) => {
                buf.extend_from_slice(&header);
                (Id::sha256(&buf), Body::Bytes(buf))
            }
            Sink::Stream {
                mut writer,
                mut hasher,
            } => {
                writer.write_all(&header)?;
                hasher.update(&header);
                (Id(hasher.finalize().into()), Body::Streamed(writer))
            }
        };
        Ok(FinishedPack {
            id,
            entries: self.entries,
            size,
            body,
        })
    }
}
