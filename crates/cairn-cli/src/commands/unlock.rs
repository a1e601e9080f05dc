//! `cairn unlock`: remove stale lock files.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::json_line;
use cairn_engine::unlock::unlock;
use clap::Args;
use serde_json::json;

/// Shown under `cairn unlock --help`.
const ABOUT_LOCKS: &str =
    "cairn itself never locks: backups, prune and the other commands are safe \
to run at the same time without locks (see repo-format.md §11, \"Prune without locks\"). \
This removes lock files that another program or version left in locks/: those sealed with \
this repository's key that are stale (not refreshed for 30 minutes, or taken on this host \
by a process that is gone). Lock files cairn cannot read are left alone unless --remove-all.";

#[derive(Args, Debug)]
#[command(after_help = ABOUT_LOCKS)]
pub struct UnlockArgs {
    /// Remove every lock file, stale or not, readable or not
    #[arg(long)]
    pub remove_all: bool,
}

pub fn run(g: &GlobalOptions, a: UnlockArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    let r = unlock(&repo, a.remove_all, &crate::repo::hostname())?;
    if g.json {
        let list = |v: &[(cairn_repository::format::Id, String)]| {
            v.iter()
                .map(|(id, why)| json!({"id": id.to_hex(), "reason": why}))
                .collect::<Vec<_>>()
        };
        json_line(
            &json!({"message_type": "summary", "removed": list(&r.removed), "kept": list(&r.kept)}),
        );
        return Ok(0);
    }
    if !g.quiet {
        for (id, why) in &r.removed {
            println!("removed lock {}: {why}", id.short());
        }
        for (id, why) in &r.kept {
            println!("kept lock {}: {why}", id.short());
        }
        match (r.removed.len(), r.kept.len()) {
            (0, 0) => println!("no lock files (cairn works without locks)"),
            (n, _) => println!("removed {n} lock files"),
        }
    }
    Ok(0)
}
