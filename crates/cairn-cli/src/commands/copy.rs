//! `cairn copy --from-repo OTHER [SNAPSHOT...]`: copy snapshots from another
//! repository into this one, transferring only the data it lacks.

use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::output::{bytes, json_line};
use crate::progress::{Mode, Reporter, Status};
use crate::repo::SecretSource;
use cairn_engine::copy::{copy, CopyEvent, CopyOptions, CopyProgress};
use cairn_repository::backend::FileKind;
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use cairn_repository::{Error, Kind, Repository, Result, SaverOptions};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The other repository (the source of `copy`, the template of
/// `init --copy-chunker-params`) and its password, as restic's options.
#[derive(Args, Debug, Clone, Default)]
pub struct FromRepoArgs {
    /// The source repository: a local path (or local:PATH)
    #[arg(long, env = "CAIRN_FROM_REPOSITORY", value_name = "REPOSITORY")]
    pub from_repo: Option<String>,
    /// Read the source repository's password from the first line of this file
    /// (or set CAIRN_FROM_PASSWORD)
    #[arg(long, env = "CAIRN_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this shell command and use the first line it prints as the source
    /// repository's password
    #[arg(long, env = "CAIRN_FROM_PASSWORD_COMMAND", value_name = "COMMAND")]
    pub from_password_command: Option<String>,
}

impl FromRepoArgs {
    /// Open the source repository; errors say it is the source.
    pub fn open(&self, g: &GlobalOptions) -> Result<Arc<Repository>> {
        let spec = self.from_repo.as_deref().ok_or_else(|| {
            Error::usage("no source repository: give --from-repo (or set CAIRN_FROM_REPOSITORY)")
        })?;
        let backend = crate::repo::backend_for(spec, g)?;
        if !backend.exists(FileKind::Config, "config")? {
            return Err(Error::new(
                Kind::NoRepository,
                format!("source repository {} does not exist", backend.location()),
            ));
        }
        let pw = crate::repo::secret(
            &SecretSource {
                env: Some("CAIRN_FROM_PASSWORD"),
                file: self.from_password_file.as_deref(),
                command: self.from_password_command.as_deref(),
                options: "set CAIRN_FROM_PASSWORD, --from-password-file or --from-password-command for the source repository",
                prompt: "enter password for the source repository: ",
            },
            false,
        )?;
        Repository::open(backend, &pw, crate::repo::open_options(g)?)
            .map(Arc::new)
            .map_err(|e| Error::new(e.kind, format!("source repository: {}", e.message)))
    }
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    #[command(flatten)]
    pub from: FromRepoArgs,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Snapshots to copy: ids, unique prefixes or `latest` (default: all that match the filters)
    pub snapshots: Vec<String>,
}

pub fn run(g: &GlobalOptions, a: CopyArgs) -> Result<i32> {
    let target = crate::repo::open(g)?;
    let source = a.from.open(g)?;
    let filter = super::snapshot_filter(&a.filter);
    let selected: Vec<(Id, Snapshot)> =
        if a.snapshots.is_empty() {
            source
                .list_snapshots()?
                .into_iter()
                .filter(|(_, s)| filter.matches(s))
                .collect()
        } else {
            let mut v = Vec::new();
            for spec in &a.snapshots {
                v.push(source.find_snapshot(spec, &filter).map_err(|e| {
                    Error::new(e.kind, format!("source repository: {}", e.message))
                })?);
            }
            v
        };
    source.load_index()?;
    target.load_index()?;

    let progress = Arc::new(CopyProgress::default());
    let total = selected.len();
    let reporter = {
        let p = progress.clone();
        Reporter::start(Mode::choose(false, g.quiet || g.json), move |_| {
            Status::Line(format!(
                "{} of {total} snapshots, read {} blobs ({})",
                p.snapshots_done.load(Ordering::Relaxed),
                p.blobs_read.load(Ordering::Relaxed),
                bytes(p.bytes_read.load(Ordering::Relaxed))
            ))
        })
    };
    let opts = CopyOptions {
        saver: SaverOptions {
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let by_id: std::collections::HashMap<Id, &Snapshot> =
        selected.iter().map(|(id, s)| (*id, s)).collect();
    let mut print = |ev: &CopyEvent| {
        if g.json {
            json_line(&match ev {
                CopyEvent::Copied {
                    source,
                    target,
                    stats,
                } => json!({
                    "message_type": "snapshot_copied",
                    "source": source.to_hex(),
                    "target": target.to_hex(),
                    "data_blobs": stats.data_blobs,
                    "tree_blobs": stats.tree_blobs,
                    "data_added": stats.data_added,
                    "data_added_packed": stats.data_added_packed,
                }),
                CopyEvent::Skipped { source, existing } => json!({
                    "message_type": "snapshot_skipped",
                    "source": source.to_hex(),
                    "existing": existing.to_hex(),
                }),
            });
        } else if !g.quiet {
            match ev {
                CopyEvent::Copied {
                    source,
                    target,
                    stats,
                } => {
                    let s = by_id[source];
                    println!(
                        "snapshot {} of {} at {}: copied to {} ({} new blobs, {})",
                        source.short(),
                        s.paths.join(", "),
                        s.time.format("%Y-%m-%d %H:%M:%S"),
                        target.short(),
                        stats.data_blobs + stats.tree_blobs,
                        bytes(stats.data_added_packed)
                    );
                }
                CopyEvent::Skipped { source, existing } => {
                    println!(
                        "snapshot {}: skipped, already copied as {}",
                        source.short(),
                        existing.short()
                    );
                }
            }
        }
    };
    let report = copy(&source, &target, &selected, &opts, &progress, &mut print)?;
    reporter.finish();
    let copied = report
        .events
        .iter()
        .filter(|e| matches!(e, CopyEvent::Copied { .. }))
        .count();
    let skipped = report.events.len() - copied;
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "snapshots_copied": copied,
            "snapshots_skipped": skipped,
            "shared_blob_ids": report.shared_ids,
            "blobs_read": report.blobs_read,
            "bytes_read": report.bytes_read,
            "blobs_skipped": report.blobs_skipped,
            "data_blobs": report.stats.data_blobs,
            "tree_blobs": report.stats.tree_blobs,
            "data_added": report.stats.data_added,
            "data_added_packed": report.stats.data_added_packed,
            "packs": report.stats.packs,
        }));
    } else if !g.quiet {
        println!(
            "copied {copied} snapshots, skipped {skipped}; added {} data and {} tree blobs ({} stored)",
            report.stats.data_blobs,
            report.stats.tree_blobs,
            bytes(report.stats.data_added_packed)
        );
        if total == 0 {
            println!("no snapshots matched in the source repository");
        }
    }
    Ok(0)
}
