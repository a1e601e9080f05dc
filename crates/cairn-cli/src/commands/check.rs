use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::{bytes, json_line};
use crate::progress::{Mode, Reporter, Status};
use cairn_engine::check::{check, CheckOptions, CheckProgress};
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
        Reporter::start(mode, move |_| {
            Status::Line(format!(
                "read {} of {} packs, {}",
                p.packs_done.load(Ordering::Relaxed),
                p.packs_total.load(Ordering::Relaxed),
                bytes(p.bytes_done.load(Ordering::Relaxed))
            ))
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
    }
    if report.errors.is_empty() {
        Ok(0)
    } else {
        eprintln!("error: the repository has {} errors", report.errors.len());
        Ok(1)
    }
}
