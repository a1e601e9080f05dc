//! `cairn restore SNAPSHOT --target DIR`: restic's restore and its flags
//! (`--include`/`--exclude` and their `i`- and `-file` forms,
//! `--overwrite`, `--delete`, `--dry-run`, `--sparse`, `--verify`).

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::{bytes, duration, json_line};
use crate::progress::{eta, Mode, Reporter, Status};
use cairn_engine::pattern::PatternSet;
use cairn_engine::restore::{restore, Overwrite, RestoreOptions, RestoreProgress};
use clap::Args;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Packs read at once when restoring from a network backend.
const REMOTE_READS: usize = 6;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id or "latest"
    pub snapshot: String,
    /// Directory to restore into
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this pattern (repeatable)
    #[arg(short, long)]
    pub include: Vec<String>,
    /// As --include, ignoring case
    #[arg(long)]
    pub iinclude: Vec<String>,
    /// Do not restore paths matching this pattern (repeatable)
    #[arg(short, long)]
    pub exclude: Vec<String>,
    /// As --exclude, ignoring case
    #[arg(long)]
    pub iexclude: Vec<String>,
    /// Read include patterns from a file (repeatable)
    #[arg(long, value_name = "FILE")]
    pub include_file: Vec<PathBuf>,
    /// Read case-insensitive include patterns from a file (repeatable)
    #[arg(long, value_name = "FILE")]
    pub iinclude_file: Vec<PathBuf>,
    /// Read exclude patterns from a file (repeatable)
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Read case-insensitive exclude patterns from a file (repeatable)
    #[arg(long, value_name = "FILE")]
    pub iexclude_file: Vec<PathBuf>,
    /// Read the restored files back and check them
    #[arg(long)]
    pub verify: bool,
    /// Existing files: always replace, if-changed (unless size and mtime match), if-newer (if the snapshot's mtime is newer) or never
    #[arg(long, value_name = "MODE", default_value = "always")]
    pub overwrite: String,
    /// Remove files and directories in the target that are not in the snapshot
    #[arg(long)]
    pub delete: bool,
    /// Say what would be restored (and deleted); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restore runs of zeros as holes (cairn always does: any blob of zeros is left unwritten)
    #[arg(long)]
    pub sparse: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}
use crate::cli::SnapshotFilterArgs;
use std::path::PathBuf;

pub fn run(g: &GlobalOptions, a: RestoreArgs) -> Result<i32> {
    let overwrite = Overwrite::parse(&a.overwrite)?;
    let read = |cli: &[String], files: &[PathBuf]| -> Result<Vec<String>> {
        let mut v = cli.to_vec();
        for f in files {
            v.extend(PatternSet::read_file(f)?);
        }
        Ok(v)
    };
    let include = PatternSet::mixed(
        &read(&a.include, &a.include_file)?,
        &read(&a.iinclude, &a.iinclude_file)?,
    )?;
    let exclude = PatternSet::mixed(
        &read(&a.exclude, &a.exclude_file)?,
        &read(&a.iexclude, &a.iexclude_file)?,
    )?;
    if a.dry_run && a.verify {
        return Err(crate::error::Error::usage(
            "--verify reads the restored files back: it cannot be used with --dry-run",
        ));
    }
    let repo = crate::repo::open_with_index(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &super::snapshot_filter(&a.filter))?;
    // Over a network, a pack read waits on the server: more reads in
    // flight than cores keep both cores busy (restic restores with several
    // connections too). On a local disk, one per core.
    let remote = crate::repo::repository_location(g)?
        .and_then(|spec| cairn_location::Location::parse(&spec).ok())
        .is_some_and(|l| l.is_remote());
    let opts = RestoreOptions {
        threads: if remote { REMOTE_READS } else { 0 },
        include,
        exclude,
        verify: a.verify,
        overwrite,
        delete: a.delete,
        dry_run: a.dry_run,
        ..RestoreOptions::new(&a.target)
    };
    if !g.quiet && !g.json {
        eprintln!(
            "{} snapshot {} of {:?} to {}",
            if a.dry_run {
                "dry run: restoring"
            } else {
                "restoring"
            },
            id.short(),
            snap.paths,
            a.target.display()
        );
    }
    let progress = Arc::new(RestoreProgress::default());
    let mode = Mode::choose(g.json, g.quiet);
    let reporter = {
        let p = progress.clone();
        Reporter::start(mode, move |elapsed| {
            let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let (fd, ft, bd, bt) = (
                ld(&p.files_done),
                ld(&p.files_total),
                ld(&p.bytes_done),
                ld(&p.bytes_total),
            );
            if mode == Mode::Json {
                return Status::Json(json!({
                    "message_type": "status",
                    "seconds_elapsed": elapsed.as_secs(),
                    "percent_done": if bt > 0 { bd as f64 / bt as f64 } else { 0.0 },
                    "total_files": ft, "files_restored": fd, "total_bytes": bt, "bytes_restored": bd,
                }));
            }
            let mut l = format!(
                "[{}] {fd}/{ft} files, {} / {}",
                duration(elapsed.as_secs()),
                bytes(bd),
                bytes(bt)
            );
            if let Some(r) = eta(bd, bt, elapsed) {
                l.push_str(&format!(", ETA {}", duration(r)));
            }
            Status::Line(l)
        })
    };
    let start = std::time::Instant::now();
    let summary = restore(&repo, snap.tree, &opts, &progress)?;
    reporter.finish();
    for (path, msg) in &summary.errors {
        if g.json {
            eprintln!(
                "{}",
                json!({"message_type": "error", "error": {"message": msg}, "during": "restore", "item": path.display().to_string()})
            );
        } else {
            eprintln!("error: {}: {msg}", path.display());
        }
    }
    if g.json {
        let mut v = json!({
            "message_type": "summary",
            "seconds_elapsed": start.elapsed().as_secs(),
            "total_files": summary.files,
            "files_restored": summary.files,
            "files_skipped": summary.skipped,
            "files_deleted": summary.deleted,
            "total_bytes": summary.bytes,
            "bytes_restored": summary.bytes,
            "errors": summary.errors.len(),
        });
        if a.dry_run {
            v["dry_run"] = json!(true);
        }
        json_line(&v);
    } else if !g.quiet {
        let mut line = format!(
            "{} {} files, {} dirs, {}",
            if a.dry_run {
                "would restore"
            } else {
                "restored"
            },
            summary.files,
            summary.dirs,
            bytes(summary.bytes),
        );
        if summary.skipped > 0 {
            line.push_str(&format!(", skipped {}", summary.skipped));
        }
        if a.delete {
            let verb = if a.dry_run { "would delete" } else { "deleted" };
            line.push_str(&format!(", {verb} {}", summary.deleted));
        }
        println!("{line} in {}", duration(start.elapsed().as_secs()));
        if a.verify {
            println!("verified {} files", summary.verified);
        }
    }
    Ok(if summary.errors.is_empty() { 0 } else { 1 })
}
