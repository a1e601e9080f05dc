use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::{bytes, duration, json_line};
use crate::progress::{eta, Mode, Reporter, Status};
use cairn_engine::pattern::PatternSet;
use cairn_engine::restore::{restore, RestoreOptions, RestoreProgress};
use clap::Args;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    /// Read the restored files back and check them
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}
use crate::cli::SnapshotFilterArgs;
use std::path::PathBuf;

pub fn run(g: &GlobalOptions, a: RestoreArgs) -> Result<i32> {
    let repo = crate::repo::open_with_index(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &super::snapshot_filter(&a.filter))?;
    let opts = RestoreOptions {
        include: PatternSet::mixed(&a.include, &a.iinclude)?,
        exclude: PatternSet::mixed(&a.exclude, &a.iexclude)?,
        verify: a.verify,
        ..RestoreOptions::new(&a.target)
    };
    if !g.quiet && !g.json {
        eprintln!(
            "restoring snapshot {} of {:?} to {}",
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
        json_line(&json!({
            "message_type": "summary",
            "seconds_elapsed": start.elapsed().as_secs(),
            "total_files": summary.files,
            "files_restored": summary.files,
            "total_bytes": summary.bytes,
            "bytes_restored": summary.bytes,
            "errors": summary.errors.len(),
        }));
    } else if !g.quiet {
        println!(
            "restored {} files, {} dirs, {} in {}",
            summary.files,
            summary.dirs,
            bytes(summary.bytes),
            duration(start.elapsed().as_secs())
        );
        if a.verify {
            println!("verified {} files", summary.verified);
        }
    }
    Ok(if summary.errors.is_empty() { 0 } else { 1 })
}
