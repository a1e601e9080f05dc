//! `cairn rewrite --exclude PATTERN [SNAPSHOT...]`: new snapshots without
//! the excluded files, as restic's rewrite. The new snapshot keeps time,
//! host, paths and parent, gets `original` = the old id and (unless
//! `--forget`) the tag `rewrite`; its summary counts what is left. Trees
//! are stored (and the index written) before any snapshot; the old
//! snapshot is removed only with `--forget`, after the new one is stored.

use super::select::select;
use crate::cli::{ExcludeArgs, GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use crate::output::json_line;
use cairn_engine::pattern::PatternSet;
use cairn_engine::rewrite::Rewriter;
use cairn_repository::backend::FileKind;
use cairn_repository::format::snapshot::{Snapshot, SnapshotSummary};
use cairn_repository::format::Id;
use cairn_repository::{BlobSaver, SaverOptions};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct RewriteArgs {
    /// Snapshots to rewrite (default: all that pass the filters)
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub excludes: ExcludeArgs,
    /// Remove the original snapshots once the new ones are stored
    #[arg(long)]
    pub forget: bool,
    /// Only print what would be done
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

pub fn run(g: &GlobalOptions, a: RewriteArgs) -> Result<i32> {
    let (ex, iex) = a.excludes.patterns()?;
    let patterns = PatternSet::mixed(&ex, &iex)?;
    if patterns.is_empty() {
        return Err(Error::usage(
            "nothing to do: give at least one --exclude, --iexclude or exclude file",
        ));
    }
    let repo = crate::repo::open_with_index(g)?;
    let chosen = select(&repo, &a.ids, &super::snapshot_filter(&a.filter))?;
    let text = !g.json && !g.quiet;
    let saver = if a.dry_run {
        None
    } else {
        Some(BlobSaver::new(
            repo.clone(),
            SaverOptions {
                pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
                ..Default::default()
            },
        ))
    };
    let mut rewriter = Rewriter::new(&repo, saver.as_ref(), &patterns);
    // New snapshots, written only once the saver has stored every tree.
    let mut pending: Vec<(Id, Snapshot, usize)> = Vec::new();
    for (id, s) in &chosen {
        let r = rewriter.rewrite(s.tree)?;
        if text {
            println!(
                "snapshot {} of {:?} at {}:",
                id.short(),
                s.paths,
                s.time
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
            );
            for p in &r.excluded {
                println!("  excluding {}", p.display());
            }
        }
        if !r.changed {
            if text {
                println!("  not modified");
            }
            continue;
        }
        let mut new = s.clone();
        new.tree = r.tree;
        new.original = Some(*id);
        if !a.forget && !new.tags.iter().any(|t| t == "rewrite") {
            new.tags.push("rewrite".into());
        }
        let mut summary = s.summary.clone().unwrap_or_else(|| SnapshotSummary {
            backup_start: s.time,
            backup_end: s.time,
            ..Default::default()
        });
        summary.total_files_processed = r.size.files;
        summary.total_bytes_processed = r.size.bytes;
        new.summary = Some(summary);
        pending.push((*id, new, r.excluded.len()));
    }
    if let Some(s) = saver {
        s.finish()?;
    }
    for (old, new, removed) in &pending {
        if a.dry_run {
            if text {
                println!(
                    "would save a new snapshot of {} without {removed} excluded entries{}",
                    old.short(),
                    if a.forget {
                        " and remove the old one"
                    } else {
                        ""
                    }
                );
            }
            if g.json {
                json_line(
                    &json!({"message_type": "changed", "old_snapshot_id": old.to_hex(), "new_snapshot_id": null, "excluded": removed, "dry_run": true}),
                );
            }
            continue;
        }
        let new_id = repo.save_snapshot(new)?;
        if a.forget && new_id != *old {
            repo.backend().remove(FileKind::Snapshot, &old.to_hex())?;
        }
        if g.json {
            json_line(
                &json!({"message_type": "changed", "old_snapshot_id": old.to_hex(), "new_snapshot_id": new_id.to_hex(), "excluded": removed}),
            );
        } else if !g.quiet {
            println!(
                "saved new snapshot {} (from {}){}",
                new_id.short(),
                old.short(),
                if a.forget {
                    ", removed the old one"
                } else {
                    ""
                }
            );
        }
    }
    if g.json {
        json_line(
            &json!({"message_type": "summary", "changed_snapshots": pending.len(), "dry_run": a.dry_run}),
        );
    } else if !g.quiet {
        let would = if a.dry_run { "would have " } else { "" };
        println!("{would}modified {} snapshots", pending.len());
    }
    Ok(0)
}
