//! `cairn tag`: change the tags of snapshots, as restic's tag. A snapshot
//! file cannot change, so a changed snapshot is written again with the new
//! tags and `original` naming the first snapshot it came from; the new file
//! is stored before the old one is deleted.

use super::select::{select, tag_list};
use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use crate::output::json_line;
use cairn_repository::backend::FileKind;
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct TagArgs {
    /// Snapshots to change (default: all that pass the filters)
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    /// Add these tags ("a,b"; repeatable)
    #[arg(long)]
    pub add: Vec<String>,
    /// Remove these tags ("a,b"; repeatable)
    #[arg(long)]
    pub remove: Vec<String>,
    /// Replace all tags with these ("a,b"; repeatable; "" for none)
    #[arg(long)]
    pub set: Vec<String>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

pub fn run(g: &GlobalOptions, a: TagArgs) -> Result<i32> {
    if a.add.is_empty() && a.remove.is_empty() && a.set.is_empty() {
        return Err(Error::usage("nothing to do: give --add, --remove or --set"));
    }
    if !a.set.is_empty() && (!a.add.is_empty() || !a.remove.is_empty()) {
        return Err(Error::usage(
            "--set cannot be combined with --add or --remove",
        ));
    }
    let (set, add, remove) = (tag_list(&a.set), tag_list(&a.add), tag_list(&a.remove));
    let repo = crate::repo::open(g)?;
    let chosen = select(&repo, &a.ids, &super::snapshot_filter(&a.filter))?;
    let mut changed = 0;
    for (old_id, mut s) in chosen {
        let before = s.tags.clone();
        if !a.set.is_empty() {
            s.tags = set.clone();
        } else {
            for t in &add {
                if !s.tags.contains(t) {
                    s.tags.push(t.clone());
                }
            }
            s.tags.retain(|t| !remove.contains(t));
        }
        if s.tags == before {
            continue;
        }
        s.original.get_or_insert(old_id);
        let new_id = repo.save_snapshot(&s)?;
        if new_id != old_id {
            repo.backend()
                .remove(FileKind::Snapshot, &old_id.to_hex())?;
        }
        changed += 1;
        if g.json {
            json_line(
                &json!({"message_type": "changed", "old_snapshot_id": old_id.to_hex(), "new_snapshot_id": new_id.to_hex()}),
            );
        } else if !g.quiet {
            println!(
                "old snapshot ID: {} -> new snapshot ID: {}",
                old_id.short(),
                new_id.short()
            );
        }
    }
    if g.json {
        json_line(&json!({"message_type": "summary", "changed_snapshots": changed}));
    } else if !g.quiet {
        if changed == 0 {
            println!("no snapshots were modified");
        } else {
            println!("modified {changed} snapshots");
        }
    }
    Ok(0)
}
