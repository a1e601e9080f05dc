use crate::cli::{DumpArgs, GlobalOptions};
use cairn_engine::tree_walk;
use cairn_repository::{Error, Result};
use std::io::Write;
use std::path::Path;

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
