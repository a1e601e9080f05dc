//! `--verify`: read every restored file back and check that each piece
//! hashes to the blob id it was restored from.

use super::meta;
use super::{FileJob, Report};
use cairn_repository::Repository;
use std::io::Read;

/// Check one file. Returns whether it matched; a mismatch or a read error
/// is reported against the file.
pub(crate) fn verify_file(repo: &Repository, job: &FileJob, report: &Report<'_>) -> bool {
    let mut f = match meta::open_for_verify(&job.path) {
        Ok(f) => f,
        Err(e) => {
            job.fail(report, &format!("verify: opening: {e}"));
            return false;
        }
    };
    let mut buf = Vec::new();
    let mut offset = 0u64;
    for id in &job.node.content {
        let Some(loc) = repo.lookup(id) else {
            job.fail(
                report,
                &format!("verify: blob {} is not in the index", id.short()),
            );
            return false;
        };
        buf.resize(loc.raw_length as usize, 0);
        if let Err(e) = f.read_exact(&mut buf) {
            job.fail(
                report,
                &format!(
                    "verify: reading {} bytes at offset {offset}: {e}",
                    buf.len()
                ),
            );
            return false;
        }
        if repo.blob_id(&buf) != *id {
            job.fail(
                report,
                &format!(
                    "verify: content at offset {offset} ({} bytes) does not match blob {}",
                    buf.len(),
                    id.short()
                ),
            );
            return false;
        }
        offset += buf.len() as u64;
    }
    let mut extra = [0u8; 1];
    match f.read(&mut extra) {
        Ok(0) => true,
        Ok(_) => {
            job.fail(
                report,
                &format!("verify: file is longer than the {offset} bytes restored"),
            );
            false
        }
        Err(e) => {
            job.fail(report, &format!("verify: reading at offset {offset}: {e}"));
            false
        }
    }
}
