//! `cairn dump SNAPSHOT PATH`: a file's content, or a directory as an
//! archive (`--archive tar|zip`, tar by default), on stdout or in the file
//! `--target` names, as restic's dump.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_engine::dump::Archive;
use cairn_engine::tree_walk;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DumpArgs {
    pub snapshot: String,
    /// Path of a file or directory inside the snapshot
    pub path: String,
    /// Archive format for a directory: tar or zip
    #[arg(short = 'a', long, value_name = "FORMAT", default_value = "tar")]
    pub archive: String,
    /// Write to this file instead of stdout
    #[arg(short = 't', long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}
use crate::cli::SnapshotFilterArgs;

pub fn run(g: &GlobalOptions, a: DumpArgs) -> Result<i32> {
    let archive = Archive::parse(&a.archive)?;
    let repo = crate::repo::open_with_index(g)?;
    let (_, snap) = repo.find_snapshot(&a.snapshot, &super::snapshot_filter(&a.filter))?;
    let path = tree_walk::normalize(Path::new(&a.path));
    match &a.target {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            cairn_engine::dump::dump_as(&repo, snap.tree, &path, archive, &mut out)?;
            out.flush().map_err(|e| Error::io(e, "writing to stdout"))?;
        }
        Some(target) => {
            // The node is looked up first: a wrong path leaves no file behind.
            tree_walk::find_node(&repo, snap.tree, &path)?;
            let file = std::fs::File::create(target)
                .map_err(|e| Error::io(e, format!("creating {}", target.display())))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let written = cairn_engine::dump::dump_as(&repo, snap.tree, &path, archive, &mut out)
                .map_err(Error::from)
                .and_then(|()| {
                    let f = out.into_inner().map_err(|e| {
                        Error::io(e.into_error(), format!("writing {}", target.display()))
                    })?;
                    f.sync_all()
                        .map_err(|e| Error::io(e, format!("writing {}", target.display())))
                });
            if let Err(e) = written {
                // No partial dump is left looking complete.
                let _ = std::fs::remove_file(target);
                return Err(e);
            }
        }
    }
    Ok(0)
}
