//! The data phase of a batch: packs restored in parallel.
//!
//! Each worker takes one pack at a time, reads the byte ranges covering the
//! blobs the batch needs from it (nearby blobs merged, so usually one read
//! per pack), decrypts and checks each blob once, and writes it with
//! `pwrite` to every (file, offset) that needs it. A blob of zeros is not
//! written: files were sized beforehand, so it stays a hole.
//!
//! Open files: a worker keeps a file open only while the pack it is on
//! still has blobs for it, and never more than [`MAX_OPEN_PER_WORKER`] at
//! once, so a file is opened once per pack holding its data.

use super::meta;
use super::{FileJob, FileState, Report};
use cairn_repository::backend::FileKind;
use cairn_repository::format::{BlobKind, Id};
use cairn_repository::{BlobLocation, Repository};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// Blobs this close together in a pack are fetched with one read.
const MAX_GAP: u64 = 1 << 20;
/// Upper bound of one read (a single larger blob is still read whole).
const MAX_READ: u64 = 4 << 20;
const MAX_OPEN_PER_WORKER: usize = 128;

/// One blob written to one place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want {
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub blob: Id,
    /// Index into the batch's files.
    pub file: u32,
    pub file_offset: u64,
}

impl Want {
    /// The order a pack's wants are processed in: by position in the pack.
    pub fn order(&self) -> (u32, u32, u64) {
        (self.offset, self.file, self.file_offset)
    }
}

pub(crate) struct Ctx<'a> {
    pub repo: &'a Repository,
    pub files: &'a [FileJob],
    pub report: &'a Report<'a>,
    /// Apply a file's metadata through its descriptor as soon as its last
    /// blob is written (not with `--verify`, whose reading back comes later).
    pub finish_files: bool,
    pub as_root: bool,
}

impl Ctx<'_> {
    /// Restore every wanted blob of one pack; `wants` sorted by [`Want::order`].
    pub fn write_pack(&self, pack: &Id, wants: &[Want]) {
        let mut per_file: HashMap<u32, usize> = HashMap::new();
        for w in wants.iter() {
            *per_file.entry(w.file).or_default() += 1;
        }
        let mut open = OpenFiles {
            files: HashMap::new(),
            left: per_file,
        };
        let mut i = 0;
        while i < wants.len() {
            if self.report.has_fatal() {
                return;
            }
            let start = wants[i].offset as u64;
            let mut end = start + wants[i].length as u64;
            let mut j = i + 1;
            while j < wants.len() {
                let (o, l) = (wants[j].offset as u64, wants[j].length as u64);
                if o > end + MAX_GAP || (o + l).max(end) - start > MAX_READ {
                    break;
                }
                end = end.max(o + l);
                j += 1;
            }
            self.write_range(pack, &wants[i..j], start, end, &mut open);
            i = j;
        }
    }

    fn write_range(&self, pack: &Id, wants: &[Want], start: u64, end: u64, open: &mut OpenFiles) {
        let mut buf = match self.repo.backend().read_range(
            FileKind::Data,
            &pack.to_hex(),
            start,
            Some(end - start),
        ) {
            Ok(b) if b.len() as u64 == end - start => b,
            Ok(b) => {
                let msg = format!(
                    "pack {}: short read ({} of {} bytes at offset {start})",
                    pack.short(),
                    b.len(),
                    end - start
                );
                wants.iter().for_each(|w| self.fail(w, &msg, open));
                return;
            }
            Err(e) => {
                let msg = format!("reading pack {}: {e}", pack.short());
                wants.iter().for_each(|w| self.fail(w, &msg, open));
                return;
            }
        };
        // Wants are sorted by offset: each run of one offset is one blob.
        for same in wants.chunk_by(|a, b| a.offset == b.offset) {
            let w0 = same[0];
            let loc = BlobLocation {
                id: w0.blob,
                kind: BlobKind::Data,
                pack: *pack,
                offset: w0.offset,
                length: w0.length,
                raw_length: w0.raw_length,
            };
            let at = (w0.offset as u64 - start) as usize;
            let sealed = &mut buf[at..at + w0.length as usize];
            let written = self.repo.with_blob(&loc, sealed, |plain| {
                let zero = is_zero(plain);
                for w in same {
                    self.write_one(w, plain, zero, open);
                }
            });
            if let Err(e) = written {
                same.iter().for_each(|w| self.fail(w, &e.message, open));
            }
        }
    }

    fn write_one(&self, w: &Want, data: &[u8], zero: bool, open: &mut OpenFiles) {
        let job = &self.files[w.file as usize];
        if !job.failed.load(Ordering::Relaxed) && !zero {
            let whole = w.file_offset == 0 && u64::from(w.raw_length) == job.size;
            if let Some(f) = open.get(w.file, job, self.report, whole) {
                if let Err(e) = f.write_all_at(data, w.file_offset) {
                    open.files.remove(&w.file);
                    self.report.io_error(&job.path, "writing", e);
                    job.failed.store(true, Ordering::Relaxed);
                }
            }
        } else if !job.failed.load(Ordering::Relaxed) {
            // A hole; the file must still exist.
            open.get(w.file, job, self.report, false);
        }
        self.done(w, open);
    }

    fn fail(&self, w: &Want, msg: &str, open: &mut OpenFiles) {
        self.files[w.file as usize].fail(self.report, msg);
        self.done(w, open);
    }

    fn done(&self, w: &Want, open: &mut OpenFiles) {
        let p = &self.report.progress;
        p.bytes_done
            .fetch_add(w.raw_length as u64, Ordering::Relaxed);
        let job = &self.files[w.file as usize];
        // Every write of the file happened before its count reached zero.
        if job.pending.fetch_sub(1, Ordering::AcqRel) == 1 && job.ok() {
            p.files_done.fetch_add(1, Ordering::Relaxed);
            if self.finish_files {
                if let Some(f) = open.files.get(&w.file) {
                    finish_file(f, job, self.as_root, self.report);
                }
            }
        }
        if let Some(n) = open.left.get_mut(&w.file) {
            *n -= 1;
            if *n == 0 {
                open.left.remove(&w.file);
                open.files.remove(&w.file);
            }
        }
    }
}

/// Apply a complete file's metadata through its open descriptor.
pub(crate) fn finish_file(f: &File, job: &FileJob, as_root: bool, report: &Report<'_>) {
    let mode_set = job.mode_set.load(Ordering::Relaxed);
    let problems = meta::apply_to_file(f, &job.node, as_root, mode_set);
    for e in problems.errors {
        report.error(&job.path, e);
    }
    for w in problems.warnings {
        report.warning(&job.path, w);
    }
    job.meta_done.store(true, Ordering::Relaxed);
}

fn is_zero(b: &[u8]) -> bool {
    // 16 bytes at a time, without `unsafe`: the compiler vectorizes this.
    let mut words = b.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

/// A worker's open files for the pack it is on.
struct OpenFiles {
    files: HashMap<u32, File>,
    /// Wants left in this pack, per file.
    left: HashMap<u32, usize>,
}

impl OpenFiles {
    /// `whole`: the write about to be made fills the file.
    fn get(&mut self, idx: u32, job: &FileJob, report: &Report<'_>, whole: bool) -> Option<&File> {
        if !self.files.contains_key(&idx) {
            let f = open_job(job, report, whole)?;
            if self.files.len() >= MAX_OPEN_PER_WORKER {
                self.files.clear();
            }
            self.files.insert(idx, f);
        }
        self.files.get(&idx)
    }
}

/// Open a batch file for writing, creating it (at its final size, unless
/// `whole`: the first write fills it) the first time any worker needs it.
pub(crate) fn open_job(job: &FileJob, report: &Report<'_>, whole: bool) -> Option<File> {
    let mut state = job.state.lock().unwrap();
    let r = match *state {
        FileState::Failed => return None,
        FileState::New => {
            let (mode, set) = meta::create_mode(&job.node);
            job.mode_set.store(set, Ordering::Relaxed);
            meta::create_file(&job.path, if whole { 0 } else { job.size }, mode)
        }
        FileState::Created => meta::open_file(&job.path),
    };
    match r {
        Ok(f) => {
            *state = FileState::Created;
            Some(f)
        }
        Err(e) => {
            *state = FileState::Failed;
            if !job.failed.swap(true, Ordering::Relaxed) {
                report.io_error(&job.path, "creating", e);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_detection() {
        let mut v = vec![0u8; 4099];
        assert!(super::is_zero(&v[1..]));
        assert!(super::is_zero(&[]));
        v[4098] = 1;
        assert!(!super::is_zero(&v[1..]));
        v[4098] = 0;
        v[1] = 7;
        assert!(!super::is_zero(&v[1..]));
    }
}
