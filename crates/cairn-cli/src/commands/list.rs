//! `cairn list TYPE`: restic's low-level listing, one id per line.
//! `packs`, `index`, `snapshots`, `keys` and `locks` list the repository's
//! files of that kind (as stored, sorted); `blobs` lists the index as
//! `data <id>` / `tree <id>`; `packs SNAPSHOT` lists the packs holding
//! the blobs a snapshot needs.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_engine::tree_walk::{self, Visit};
use cairn_repository::backend::FileKind;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::{BlobKind, Id};
use clap::Args;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

const TYPES: &str = "blobs, packs, index, snapshots, keys, locks";

#[derive(Args, Debug)]
pub struct ListArgs {
    /// What to list: blobs, packs, index, snapshots, keys or locks
    #[arg(value_name = "TYPE")]
    pub kind: String,
    /// With `packs`: only the packs this snapshot needs
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: Option<String>,
}

pub fn run(g: &GlobalOptions, a: ListArgs) -> Result<i32> {
    let kind = match a.kind.as_str() {
        "packs" => Some(FileKind::Data),
        "index" => Some(FileKind::Index),
        "snapshots" => Some(FileKind::Snapshot),
        "keys" => Some(FileKind::Key),
        "locks" => Some(FileKind::Lock),
        "blobs" => None,
        other => {
            return Err(Error::usage(format!(
                "cannot list {other:?}: use one of {TYPES}"
            )))
        }
    };
    if a.snapshot.is_some() && a.kind != "packs" {
        return Err(Error::usage(format!(
            "`cairn list {}` takes no snapshot (only `list packs SNAPSHOT` does)",
            a.kind
        )));
    }
    let repo = crate::repo::open(g)?;
    let mut lines: Vec<String> = Vec::new();
    match (kind, &a.snapshot) {
        (Some(FileKind::Data), Some(spec)) => {
            repo.load_index()?;
            let (_, snap) = repo.find_snapshot(spec, &Default::default())?;
            let mut packs = BTreeSet::new();
            let mut note = |id: &Id| -> cairn_repository::Result<()> {
                let loc = repo.lookup(id).ok_or_else(|| {
                    cairn_repository::Error::not_found(format!("blob {} is not in the index", id))
                })?;
                packs.insert(loc.pack);
                Ok(())
            };
            note(&snap.tree)?;
            let mut seen_trees = std::collections::HashSet::new();
            tree_walk::walk(
                &repo,
                snap.tree,
                Path::new("/"),
                &mut |_: &Path, n: &Node| -> cairn_repository::Result<Visit> {
                    for id in &n.content {
                        note(id)?;
                    }
                    if n.kind == NodeKind::Dir {
                        if let Some(t) = n.subtree {
                            note(&t)?;
                            // A subtree seen before holds nothing new.
                            if !seen_trees.insert(t) {
                                return Ok(Visit::SkipChildren);
                            }
                        }
                    }
                    Ok(Visit::Continue)
                },
            )?;
            lines.extend(packs.iter().map(Id::to_hex));
        }
        (Some(kind), _) => {
            let mut names: Vec<String> = repo
                .backend()
                .list(kind)?
                .into_iter()
                .map(|f| f.name)
                .filter(|n| Id::from_hex(n).is_some())
                .collect();
            names.sort();
            lines = names;
        }
        (None, _) => {
            repo.load_index()?;
            let mut blobs: Vec<(Id, BlobKind)> =
                repo.index().iter().map(|l| (l.id, l.kind)).collect();
            blobs.sort_by_key(|b| b.0);
            lines.extend(blobs.iter().map(|(id, k)| {
                let t = if *k == BlobKind::Tree { "tree" } else { "data" };
                format!("{t} {id}")
            }));
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for l in &lines {
        writeln!(out, "{l}").map_err(|e| Error::io(e, "writing to stdout"))?;
    }
    out.flush().map_err(|e| Error::io(e, "writing to stdout"))?;
    Ok(0)
}
