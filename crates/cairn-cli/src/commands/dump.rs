use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_engine::tree_walk;
use clap::Args;
use std::io::Write;
use std::path::Path;

#[derive(Args, Debug)]
pub struct DumpArgs {
    pub snapshot: String,
    /// Path of a file or directory inside the snapshot
    pub path: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}
use crate::cli::SnapshotFilterArgs;

pub fn run(g: &GlobalOptions, a: DumpArgs) -> Result<i32> {
    let repo = crate::repo::open_with_index(g)?;
    let (_, snap) = repo.find_snapshot(&a.snapshot, &super::snapshot_filter(&a.filter))?;
    let path = tree_walk::normalize(Path::new(&a.path));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    cairn_engine::dump::dump(&repo, snap.tree, &path, &mut out)?;
    out.flush().map_err(|e| Error::io(e, "writing to stdout"))?;
    Ok(0)
}
