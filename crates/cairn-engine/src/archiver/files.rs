//! Reading file contents: chunk, hash, hand new chunks to the saver.

use super::oneshot;
use super::{add, BackupProgress, Counters, ErrorSink};
use crate::{Error, Result};
use cairn_repository::format::tree::{Node, NodeKind, Tree};
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::BlobSaver;
use crossbeam_channel::Receiver;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub(super) struct FileJob {
    pub path: PathBuf,
    pub size_hint: u64,
    pub reply: oneshot::Sender<Option<FileOut>>,
}

pub(crate) struct FileOut {
    pub content: Vec<Id>,
    pub size: u64,
}

pub(crate) enum ReadError {
    /// The source file: reported, the file is skipped.
    Source(std::io::Error),
    /// The repository: the backup cannot continue.
    Repo(Error),
}

/// Chunk a stream with the repository's chunker and hand the chunks the
/// repository lacks to the saver; returns the blob ids and the byte count.
/// The one way file contents enter a repository: backup, standard input,
/// and the copy from restic (which streams restic's blobs through it, so
/// the data deduplicates against later backups). `on_bytes` is told each
/// chunk's length.
pub(crate) fn store_chunks(
    reader: impl Read,
    size_hint: Option<u64>,
    saver: &BlobSaver,
    on_bytes: &dyn Fn(u64),
    cancel: Option<&AtomicBool>,
) -> std::result::Result<FileOut, ReadError> {
    let repo = saver.repository();
    let mut stream = repo.chunker().stream(reader, size_hint);
    let mut out = FileOut {
        content: Vec::new(),
        size: 0,
    };
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(ReadError::Repo(Error::new(
                crate::Kind::Interrupted,
                "interrupted",
            )));
        }
        let chunk = match stream.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(ReadError::Source(e)),
        };
        let id = repo.blob_id(&chunk);
        let len = chunk.len() as u64;
        if !saver.known(&id) {
            saver
                .save_with_id(BlobKind::Data, id, chunk)
                .map_err(ReadError::Repo)?;
        }
        out.content.push(id);
        out.size += len;
        on_bytes(len);
    }
    Ok(out)
}

fn open_source(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    // O_NOATIME keeps the backup from changing what it backs up; only the owner (or root) may use it.
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME | libc::O_NOFOLLOW)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
        r => r,
    }
}

pub(super) fn reader_loop(
    rx: Receiver<FileJob>,
    saver: &BlobSaver,
    progress: &BackupProgress,
    on_error: Option<&ErrorSink>,
    fatal: &Mutex<Option<Error>>,
    cancel: &AtomicBool,
) {
    for job in rx {
        if cancel.load(Ordering::Relaxed) || fatal.lock().unwrap().is_some() {
            job.reply.send(None);
            continue;
        }
        if let Ok(mut cur) = progress.current.try_lock() {
            cur.clear();
            cur.push_str(&job.path.to_string_lossy());
        }
        let result = open_source(&job.path)
            .map_err(ReadError::Source)
            .and_then(|f| {
                store_chunks(
                    f,
                    Some(job.size_hint),
                    saver,
                    &|n| add(&progress.bytes_done, n),
                    Some(cancel),
                )
            });
        match result {
            Ok(out) => {
                add(&progress.files_done, 1);
                job.reply.send(Some(out));
            }
            Err(ReadError::Source(e)) => {
                add(&progress.errors, 1);
                if let Some(sink) = on_error {
                    sink(&job.path, &e.to_string());
                }
                job.reply.send(None);
            }
            Err(ReadError::Repo(e)) => {
                let mut f = fatal.lock().unwrap();
                if f.is_none() {
                    *f = Some(e);
                }
                job.reply.send(None);
            }
        }
    }
}

/// Back up a stream as the single file `/<name>`; returns the root tree id.
pub(super) fn backup_stream(
    saver: &BlobSaver,
    name: &str,
    reader: Box<dyn Read + Send>,
    progress: &BackupProgress,
    counters: &Counters,
    parent: Option<&Tree>,
    cancel: &AtomicBool,
) -> Result<Id> {
    // Checked between chunks; a read blocked on an idle pipe ends with the pipe (or a second Ctrl-C).
    let on_bytes = |n| add(&progress.bytes_done, n);
    let out = match store_chunks(reader, None, saver, &on_bytes, Some(cancel)) {
        Ok(out) => out,
        Err(ReadError::Source(e)) => return Err(Error::io(e, "reading standard input")),
        Err(ReadError::Repo(e)) => return Err(e),
    };
    add(&progress.files_done, 1);
    let had_before =
        parent.is_some_and(|t| t.nodes.iter().any(|n| n.name.as_bytes() == name.as_bytes()));
    add(
        if had_before {
            &counters.files_changed
        } else {
            &counters.files_new
        },
        1,
    );
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut node = Node::new(name, NodeKind::File);
    node.mode = 0o100644;
    node.mtime = now;
    node.atime = now;
    node.ctime = now;
    node.uid = nix::unistd::getuid().as_raw();
    node.gid = nix::unistd::getgid().as_raw();
    let names = super::NameCache::default();
    node.user = names.user(node.uid);
    node.group = names.group(node.gid);
    node.links = 1;
    node.size = out.size;
    node.content = out.content;
    let tree = Tree { nodes: vec![node] };
    let (id, _) = saver.save(BlobKind::Tree, tree.to_bytes())?;
    add(&counters.dirs_new, 1);
    Ok(id)
}
