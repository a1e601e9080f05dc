//! `cairn check`: verify the repository (structure, and with `--read-data`
//! the data); on damage, say which repair command to run next.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::{bytes, json_line};
use crate::progress::{Mode, Reporter, Status};
use cairn_engine::check::{check, CheckOptions, CheckProgress, CheckReport};
use clap::Args;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read, decrypt and verify every blob
    #[arg(long)]
    pub read_data: bool,
    /// Read and verify only part of the data: n/m (e.g. 1/7), a percentage (10%) or a size (5G)
    #[arg(long)]
    pub read_data_subset: Option<String>,
}

/// What to run next, in order, after `check` found damage (or space to free).
fn next_steps(r: &CheckReport) -> Vec<String> {
    let mut out = Vec::new();
    if !r.broken_packs.is_empty() {
        let ids: Vec<String> = r.broken_packs.iter().map(|id| id.to_hex()).collect();
        out.push(format!(
            "{} damaged packs: run `cairn repair packs {}` to salvage their intact blobs",
            ids.len(),
            ids.join(" ")
        ));
    }
    if r.suggest_repair_index {
        out.push("the index is damaged or incomplete: run `cairn repair index`".to_string());
    }
    if r.suggest_repair_snapshots {
        out.push(
            "snapshots need data that is lost: run `cairn repair snapshots --forget` (after the steps above)"
                .to_string(),
        );
    }
    if r.suggest_prune {
        out.push("space is held by data no snapshot needs: `cairn prune` frees it".to_string());
    }
    out
}

pub fn run(g: &GlobalOptions, a: CheckArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    let progress = Arc::new(CheckProgress::default());
    let subset = a
        .read_data_subset
        .as_deref()
        .map(|s| cairn_engine::check::Subset::parse(s, crate::size::parse_size))
        .transpose()?;
    let reading = a.read_data || subset.is_some();
    let mode = if reading {
        Mode::choose(false, g.quiet || g.json)
    } else {
        Mode::Off
    };
    let reporter = {
        let p = progress.clone();
        Reporter::start(mode, move |elapsed| {
            let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let (done, total) = (ld(&p.bytes_done), ld(&p.bytes_total));
            let pct = if total > 0 {
                100.0 * (done as f64 / total as f64).min(1.0)
            } else {
                0.0
            };
            let mut line = format!(
                "[{}] {pct:.1}% read {} of {} packs, {} of {}",
                crate::output::duration(elapsed.as_secs()),
                ld(&p.packs_done),
                ld(&p.packs_total),
                bytes(done),
                bytes(total)
            );
            if let Some(r) = crate::progress::eta(done, total, elapsed) {
                line.push_str(&format!(", ETA {}", crate::output::duration(r)));
            }
            Status::Line(line)
        })
    };
    let report = check(
        &repo,
        &CheckOptions {
            read_data: a.read_data,
            subset,
            threads: 0,
        },
        &progress,
    )?;
    reporter.finish();
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "num_errors": report.errors.len(),
            "broken_packs": report.broken_packs.iter().map(|id| id.to_hex()).collect::<Vec<_>>(),
            "suggest_repair_index": report.suggest_repair_index,
            "suggest_prune": report.suggest_prune,
            "errors": report.errors,
            "notes": report.notes,
            "snapshots": report.snapshots,
            "packs": report.packs,
            "blobs": report.blobs,
            "packs_read": report.packs_read,
        }));
    } else {
        for e in &report.errors {
            println!("error: {e}");
        }
        for n in &report.notes {
            println!("note: {n}");
        }
        if !g.quiet {
            println!(
                "checked {} snapshots, {} packs, {} blobs{}",
                report.snapshots,
                report.packs,
                report.blobs,
                if reading {
                    format!(", read {} packs", report.packs_read)
                } else {
                    String::new()
                }
            );
            if report.errors.is_empty() {
                println!("no errors were found");
            }
        }
        for line in next_steps(&report) {
            println!("{line}");
        }
    }
    if report.errors.is_empty() {
        Ok(0)
    } else {
        eprintln!("error: the repository has {} errors", report.errors.len());
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_repository::format::Id;

    #[test]
    fn next_steps_follow_what_was_found() {
        assert!(next_steps(&CheckReport::default()).is_empty());
        let r = CheckReport {
            broken_packs: vec![Id([0xab; 32])],
            suggest_repair_snapshots: true,
            ..Default::default()
        };
        let steps = next_steps(&r);
        assert_eq!(steps.len(), 2, "{steps:?}");
        let packs = format!("`cairn repair packs {}`", "ab".repeat(32));
        assert!(steps[0].contains(&packs), "{steps:?}");
        assert!(
            steps[1].contains("`cairn repair snapshots --forget`"),
            "{steps:?}"
        );
        let r = CheckReport {
            suggest_repair_index: true,
            suggest_prune: true,
            ..Default::default()
        };
        let steps = next_steps(&r);
        assert!(steps[0].contains("`cairn repair index`"), "{steps:?}");
        assert!(steps[1].contains("`cairn prune`"), "{steps:?}");
    }
}
