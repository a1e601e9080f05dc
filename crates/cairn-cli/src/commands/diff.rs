//! `cairn diff SNAP1 SNAP2`: what changed from one snapshot to another, as
//! restic's diff (`SNAP:subfolder` compares a directory of each).

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::output::{bytes, json_line};
use cairn_engine::diff::{diff, Change, DiffOptions, DiffStat};
use cairn_engine::tree_walk;
use cairn_repository::format::tree::NodeKind;
use cairn_repository::format::Id;
use cairn_repository::Repository;
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::Path;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The snapshot to compare from (id, prefix or "latest"; "ID:/sub/dir" for a directory in it)
    pub from: String,
    /// The snapshot to compare to
    pub to: String,
    /// Also report directories whose own metadata changed
    #[arg(long)]
    pub metadata: bool,
}

/// The tree a `SNAPSHOT[:PATH]` argument names, and the snapshot id.
fn resolve(repo: &Repository, spec: &str) -> Result<(Id, Id)> {
    let (snap, sub) = match spec.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (spec, None),
    };
    let (id, s) = repo.find_snapshot(snap, &Default::default())?;
    let Some(sub) = sub.filter(|p| !p.is_empty() && *p != "/") else {
        return Ok((id, s.tree));
    };
    let node = tree_walk::find_node(repo, s.tree, Path::new(sub))?;
    match (node.kind, node.subtree) {
        (NodeKind::Dir, Some(t)) => Ok((id, t)),
        (NodeKind::Dir, None) => Err(Error::usage(format!(
            "{sub} in snapshot {} is an empty directory",
            id.short()
        ))),
        (k, _) => Err(Error::usage(format!(
            "{sub} in snapshot {} is a {}, not a directory",
            id.short(),
            k.as_str()
        ))),
    }
}

pub fn run(g: &GlobalOptions, a: DiffArgs) -> Result<i32> {
    let repo = crate::repo::open_with_index(g)?;
    let (id1, tree1) = resolve(&repo, &a.from)?;
    let (id2, tree2) = resolve(&repo, &a.to)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let io = |e| cairn_repository::Error::io(e, "writing to stdout");
    if !g.json && !g.quiet {
        writeln!(
            out,
            "comparing snapshot {} to {}:\n",
            id1.short(),
            id2.short()
        )
        .map_err(io)?;
    }
    let (json, quiet) = (g.json, g.quiet);
    let stats = diff(
        &repo,
        tree1,
        tree2,
        DiffOptions {
            metadata_dirs: a.metadata,
        },
        &mut |c: Change| {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"message_type": "change", "path": c.path, "modifier": c.modifier})
                )
                .map_err(io)
            } else if !quiet {
                writeln!(out, "{:<5}{}", c.modifier, c.path).map_err(io)
            } else {
                Ok(())
            }
        },
    )?;
    out.flush().map_err(io)?;
    drop(out);
    if g.json {
        json_line(&json!({
            "message_type": "statistics",
            "source_snapshot": a.from,
            "target_snapshot": a.to,
            "changed_files": stats.changed_files,
            "added": stats.added,
            "removed": stats.removed,
        }));
    } else {
        let (ad, rm): (&DiffStat, &DiffStat) = (&stats.added, &stats.removed);
        println!();
        println!(
            "Files:       {:5} new, {:5} removed, {:5} changed",
            ad.files, rm.files, stats.changed_files
        );
        println!("Dirs:        {:5} new, {:5} removed", ad.dirs, rm.dirs);
        println!("Others:      {:5} new, {:5} removed", ad.others, rm.others);
        println!(
            "Data Blobs:  {:5} new, {:5} removed",
            ad.data_blobs, rm.data_blobs
        );
        println!(
            "Tree Blobs:  {:5} new, {:5} removed",
            ad.tree_blobs, rm.tree_blobs
        );
        println!("  Added:   {}", bytes(ad.bytes));
        println!("  Removed: {}", bytes(rm.bytes));
    }
    Ok(0)
}
