//! `cairn repair index`, `packs`, `snapshots` and `config`.

use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use crate::output::json_line;
use crate::progress::{Mode, Reporter, Status};
use cairn_engine::repair::{self, Outcome, RepairProgress, RepairSnapshotsOptions};
use cairn_repository::SaverOptions;
use clap::{Args, Subcommand};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub command: RepairCommand,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Rebuild the index from the packs' headers
    ///
    /// Reads the header of every pack, writes new index files covering all
    /// readable packs, and only then deletes the old index files. Deletion
    /// marks set by prune are kept. Packs whose header cannot be read are
    /// reported and left in place.
    Index(RepairIndexArgs),
    /// Rewrite snapshots that reference lost data
    ///
    /// For each snapshot that needs data no longer in the repository (in no
    /// index, or in a pack that is gone), writes a new snapshot without it:
    /// files with lost content are removed, directories whose listing is
    /// lost become empty. The new snapshot is tagged `repaired` and records
    /// the old one as its original. As with restic, the broken snapshot is
    /// kept unless --forget is given; a snapshot whose root is lost is
    /// removed. Run `cairn repair index` first if index files are damaged.
    Snapshots(RepairSnapshotsArgs),
    /// Salvage the intact blobs of damaged packs, and remove the packs
    ///
    /// For each pack named (as `cairn check --read-data` reports them),
    /// reads every blob it holds, stores the ones that verify again in new
    /// packs, then removes the damaged pack from the index and the
    /// repository. Only blobs that were truly lost stay missing: then run
    /// `cairn repair snapshots --forget` to remove the files that need
    /// them, and `cairn check --read-data` to confirm.
    ///
    /// Example: cairn repair packs 1a2b3c4d
    Packs(RepairPacksArgs),
    /// Restore a damaged or lost config from the copy in the key files
    ///
    /// Every key file keeps a sealed copy of the repository's config. When
    /// the `config` file is damaged (or gone), this opens a key file with
    /// the password and writes the config again from its copy. An intact
    /// config is left alone.
    ///
    /// Example: cairn repair config
    Config(RepairConfigArgs),
}

#[derive(Args, Debug)]
pub struct RepairConfigArgs {
    /// Only say whether the config would be restored
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct RepairPacksArgs {
    /// Only show what would be salvaged and lost
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Packs to repair: ids or unique prefixes
    #[arg(required = true, value_name = "PACK")]
    pub packs: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RepairIndexArgs {}

#[derive(Args, Debug)]
pub struct RepairSnapshotsArgs {
    /// Only show what would be done
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Remove the broken snapshots once their repaired versions are saved
    /// (and snapshot files that cannot be read at all)
    #[arg(long)]
    pub forget: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Snapshots to repair: ids, unique prefixes or `latest` (default: all)
    pub snapshots: Vec<String>,
}

pub fn run(g: &GlobalOptions, a: RepairArgs) -> Result<i32> {
    match a.command {
        RepairCommand::Index(_) => index(g),
        RepairCommand::Snapshots(s) => snapshots(g, s),
        RepairCommand::Packs(p) => packs(g, p),
        RepairCommand::Config(c) => config(g, c),
    }
}

fn config(g: &GlobalOptions, a: RepairConfigArgs) -> Result<i32> {
    use cairn_repository::{ConfigRepair, Repository};
    let backend = crate::repo::backend(g)?;
    let location = backend.location();
    let pw = crate::repo::cached_password(g)?;
    let opts = crate::repo::open_options(g)?;
    let r = Repository::repair_config(backend, &pw, &opts, a.dry_run)?;
    let (restored, message) = match &r {
        ConfigRepair::Intact => (false, format!("the config of {location} is intact")),
        ConfigRepair::Restored {
            from_key,
            was_missing,
        } => {
            let what = if *was_missing { "missing" } else { "damaged" };
            let verb = if a.dry_run {
                "would be restored"
            } else {
                "restored"
            };
            (
                true,
                format!(
                    "the config of {location} was {what}: {verb} from the copy in key {}",
                    from_key.get(..8).unwrap_or(from_key)
                ),
            )
        }
    };
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "dry_run": a.dry_run,
            "restored": restored,
            "message": message,
        }));
    } else if !g.quiet {
        println!("{message}");
    }
    Ok(0)
}

fn packs(g: &GlobalOptions, a: RepairPacksArgs) -> Result<i32> {
    use cairn_engine::repair_packs::{repair_packs, resolve_packs, RepairPacksOptions};
    let repo = crate::repo::open(g)?;
    let packs = resolve_packs(&repo, &a.packs)?;
    let opts = RepairPacksOptions {
        dry_run: a.dry_run,
        saver: SaverOptions {
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
            ..Default::default()
        },
    };
    let r = repair_packs(&repo, &packs, &opts)?;
    let lost = r.lost();
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "dry_run": a.dry_run,
            "packs": r.packs.iter().map(|p| json!({
                "id": p.id.to_hex(),
                "header_error": p.header_error,
                "blobs_salvaged": p.salvaged,
                "blobs_lost": p.lost.iter().map(|(loc, why)| json!({
                    "id": loc.id.to_hex(),
                    "type": loc.kind.to_string(),
                    "error": why,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "index_files_rewritten": r.index_files_rewritten,
            "packs_removed": r.packs_removed,
            "blobs_lost": lost,
        }));
        return Ok(0);
    }
    let verb = if a.dry_run { "would be" } else { "were" };
    for p in &r.packs {
        if let Some(e) = &p.header_error {
            eprintln!(
                "warning: pack {}: its header cannot be read ({e}); the index's entries for it were used",
                p.id.short()
            );
        }
        for (loc, why) in &p.lost {
            eprintln!("lost: {} blob {}: {why}", loc.kind, loc.id);
        }
        if !g.quiet {
            println!(
                "pack {}: {} blobs {verb} salvaged, {} lost",
                p.id,
                p.salvaged,
                p.lost.len()
            );
        }
    }
    if !g.quiet && !a.dry_run {
        println!(
            "removed {} damaged packs, rewrote {} index files",
            r.packs_removed, r.index_files_rewritten
        );
    }
    if lost > 0 && !a.dry_run {
        println!(
            "{lost} blobs are lost: run `cairn repair snapshots --forget` to remove the files that need them, then `cairn check --read-data`"
        );
    }
    Ok(0)
}

fn index(g: &GlobalOptions) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    let progress = Arc::new(RepairProgress::default());
    let reporter = {
        let p = progress.clone();
        Reporter::start(Mode::choose(false, g.quiet || g.json), move |_| {
            Status::Line(format!(
                "read {} of {} pack headers",
                p.packs_done.load(Ordering::Relaxed),
                p.packs_total.load(Ordering::Relaxed)
            ))
        })
    };
    let r = repair::repair_index(&repo, 8, &progress)?;
    reporter.finish();
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "packs": r.packs,
            "blobs": r.blobs,
            "unreadable_packs": r.unreadable_packs.iter().map(|(id, e)| json!({"id": id.to_hex(), "error": e})).collect::<Vec<_>>(),
            "marked_packs": r.marked_packs,
            "old_index_files": r.old_index_files,
            "unreadable_index_files": r.unreadable_index_files.iter().map(|(id, e)| json!({"id": id.to_hex(), "error": e})).collect::<Vec<_>>(),
            "index_files_written": r.index_files_written,
            "index_files_removed": r.index_files_removed,
        }));
    } else {
        for (id, e) in &r.unreadable_packs {
            eprintln!("warning: pack {id} is not indexed, its header cannot be read: {e}");
        }
        for (id, e) in &r.unreadable_index_files {
            eprintln!(
                "warning: old index file {} could not be read (replaced): {e}",
                id.short()
            );
        }
        if !g.quiet {
            println!(
                "indexed {} blobs in {} of {} packs ({} marked for deletion by prune)",
                r.blobs,
                r.packs - r.unreadable_packs.len(),
                r.packs,
                r.marked_packs
            );
            println!(
                "wrote {} new index files, removed {} old ones",
                r.index_files_written, r.index_files_removed
            );
        }
    }
    Ok(0)
}

fn snapshots(g: &GlobalOptions, a: RepairSnapshotsArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    let filter = super::snapshot_filter(&a.filter);
    let (all, unreadable) = repair::load_snapshots(&repo)?;
    let everything = a.snapshots.is_empty()
        && a.filter.hosts.is_empty()
        && a.filter.tags.is_empty()
        && a.filter.paths.is_empty();
    let selected = if a.snapshots.is_empty() {
        all.into_iter().filter(|(_, s)| filter.matches(s)).collect()
    } else {
        let mut v = Vec::new();
        for spec in &a.snapshots {
            let (id, _) = repo.find_snapshot(spec, &filter)?;
            match all.iter().find(|(x, _)| *x == id) {
                Some(found) => v.push(found.clone()),
                None => {
                    return Err(Error::corrupt(
                        format!("snapshot {}", id.short()),
                        "cannot be read",
                    ))
                }
            }
        }
        v
    };
    // Unreadable snapshot files are only considered when every snapshot is.
    let unreadable = if everything { unreadable } else { Vec::new() };
    let opts = RepairSnapshotsOptions {
        dry_run: a.dry_run,
        forget: a.forget,
        saver: SaverOptions {
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
            ..Default::default()
        },
    };
    let r = repair::repair_snapshots(&repo, &selected, &unreadable, &opts)?;
    let verb = |done: &str, would: &str| {
        if a.dry_run {
            would.to_string()
        } else {
            done.to_string()
        }
    };
    for s in &r.snapshots {
        if g.json {
            let (outcome, new) = match &s.outcome {
                Outcome::Intact => ("intact", None),
                Outcome::Repaired { new } => ("repaired", new.map(|n| n.to_hex())),
                Outcome::Removed => ("removed", None),
            };
            json_line(&json!({
                "message_type": "snapshot",
                "id": s.id.to_hex(),
                "outcome": outcome,
                "new": new,
                "removed": s.removed,
                "damage": s.damage.iter().map(|(p, d)| json!({"path": p.to_string_lossy(), "problem": d.to_string()})).collect::<Vec<_>>(),
            }));
            continue;
        }
        if g.quiet || s.outcome == Outcome::Intact {
            continue;
        }
        println!("snapshot {}:", s.id.short());
        for (p, d) in &s.damage {
            println!("  {}: {d}", p.display());
        }
        match &s.outcome {
            Outcome::Repaired { new: Some(n) } => {
                println!("  saved repaired snapshot {}", n.short())
            }
            Outcome::Repaired { new: None } => println!("  would save a repaired snapshot"),
            Outcome::Removed => println!(
                "  {} (its root directory is lost)",
                verb("removed", "would be removed")
            ),
            Outcome::Intact => {}
        }
        if s.removed && s.outcome != Outcome::Removed {
            println!("  removed the broken snapshot");
        }
    }
    for (id, e, removed) in &r.unreadable {
        if g.json {
            json_line(
                &json!({"message_type": "unreadable_snapshot", "id": id.to_hex(), "error": e, "removed": removed}),
            );
        } else if *removed {
            println!(
                "snapshot file {}: cannot be read ({e}); removed",
                id.short()
            );
        } else {
            eprintln!(
                "warning: snapshot file {} cannot be read: {e}{}",
                id.short(),
                if a.dry_run {
                    ""
                } else {
                    " (--forget removes it)"
                }
            );
        }
    }
    let changed = r.changed();
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "dry_run": a.dry_run,
            "snapshots": r.snapshots.len(),
            "changed": changed,
            "removed": r.snapshots.iter().filter(|s| s.removed).count(),
            "tree_blobs": r.stats.tree_blobs,
        }));
    } else if !g.quiet {
        match changed {
            0 => println!(
                "{}",
                verb(
                    "no snapshots were modified",
                    "no snapshots would be modified"
                )
            ),
            n => println!("{} {n} snapshots", verb("modified", "would modify")),
        }
    }
    Ok(0)
}
