//! A background count of what the backup will read, for the progress ETA.

use super::{add, BackupProgress, Filters};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) fn start(
    targets: Vec<PathBuf>,
    filters: Filters,
    progress: Arc<BackupProgress>,
    cancel: Arc<AtomicBool>,
) {
    let _ = std::thread::Builder::new()
        .name("scan".into())
        .stack_size(64 << 20)
        .spawn(move || {
            for t in &targets {
                visit(t, None, &filters, &progress, &cancel);
            }
            progress.scan_finished.store(true, Ordering::Relaxed);
        });
}

fn visit(
    path: &Path,
    parent_dev: Option<u64>,
    f: &Filters,
    p: &BackupProgress,
    cancel: &AtomicBool,
) {
    if cancel.load(Ordering::Relaxed) {
        return;
    }
    let Ok(meta) = path.symlink_metadata() else {
        return;
    };
    if parent_dev.is_some() && f.excludes_path(path, meta.is_file(), meta.len()) {
        return;
    }
    if meta.is_file() {
        add(&p.files_total, 1);
        add(&p.bytes_total, meta.len());
    } else if meta.is_dir() {
        if parent_dev.is_some()
            && (f.excludes_dir_contents(path)
                || (f.one_file_system && parent_dev != Some(meta.dev())))
        {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                visit(&e.path(), Some(meta.dev()), f, p, cancel);
            }
        }
    }
}
