//! `mutate`: a deterministic change of ~1% of a tree, applied to the
//! working copy of `tree` between backups.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::data::write_file;
use super::fsutil;
use super::gen::{fill, seed_of, Kind, Rng};

/// What one `mutate` round changed.
#[derive(Debug, Default)]
pub struct Mutation {
    pub appended: usize,
    pub edited: usize,
    pub created: usize,
    pub deleted: usize,
    pub renamed: usize,
    pub bytes_written: u64,
}

/// Changes ~1% of the files below `root`, deterministically for a given
/// tree state and `round`: appends (3 in 1000 files), edits in the middle
/// (3), new files (2), deletions (1), renames into other directories (1).
pub fn mutate(root: &Path, round: u64) -> Result<Mutation> {
    let (files, dirs) = fsutil::list(root)?;
    let mut m = Mutation::default();
    if files.is_empty() {
        return Ok(m);
    }
    let mut rng = Rng::new(seed_of(0x6d75_7461_7465, round));
    let unit = (files.len() / 1000).max(1);
    // Distinct files for the changes to existing files: a partial shuffle.
    let picks = (8 * unit).min(files.len());
    let mut order: Vec<usize> = (0..files.len()).collect();
    for i in 0..picks {
        let j = i + rng.index(files.len() - i);
        order.swap(i, j);
    }
    let mut picked = order[..picks].iter().map(|&i| files[i].as_path());
    let mut buf = Vec::new();
    let ctx = |what: &str, path: &Path| format!("mutate: {what} {}", path.display());

    for path in picked.by_ref().take(3 * unit) {
        let n = rng.log_uniform(256, 64 << 10) as usize;
        buf.resize(n, 0);
        fill(Kind::Text, rng.next_u64(), &mut buf);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| ctx("appending to", path))?;
        use std::io::Write;
        (&file)
            .write_all(&buf)
            .with_context(|| ctx("appending to", path))?;
        m.appended += 1;
        m.bytes_written += n as u64;
    }
    for path in picked.by_ref().take(3 * unit) {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| ctx("editing", path))?;
        let len = file.metadata()?.len();
        let n = rng.log_uniform(16, 4096).min(len.max(16));
        let offset = rng.below(len.saturating_sub(n) + 1);
        buf.resize(n as usize, 0);
        fill(Kind::Random, rng.next_u64(), &mut buf);
        file.write_all_at(&buf, offset)
            .with_context(|| ctx("editing", path))?;
        m.edited += 1;
        m.bytes_written += n;
    }
    for path in picked.by_ref().take(unit) {
        fs::remove_file(path).with_context(|| ctx("deleting", path))?;
        m.deleted += 1;
    }
    for (i, path) in picked.by_ref().take(unit).enumerate() {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("no file name"))?
            .to_string_lossy();
        let to = dirs[rng.index(dirs.len())].join(format!("moved-{round}-{i}-{name}"));
        fs::rename(path, &to).with_context(|| ctx("renaming", path))?;
        m.renamed += 1;
    }
    for i in 0..2 * unit {
        let dir = &dirs[rng.index(dirs.len())];
        let n = rng.log_uniform(128, 256 << 10) as usize;
        let kind = if rng.chance(0.2) {
            Kind::Random
        } else {
            Kind::Text
        };
        let path = dir.join(format!("new-{round}-{i}.txt"));
        write_file(&path, n, kind, rng.next_u64(), &mut buf)?;
        m.created += 1;
        m.bytes_written += n as u64;
    }
    Ok(m)
}
