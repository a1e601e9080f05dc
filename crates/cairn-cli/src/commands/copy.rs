//! `cairn copy --from-repo OTHER [SNAPSHOT...]`: copy snapshots from another
//! repository into this one, transferring only the data it lacks. OTHER
//! may be a restic repository: its snapshots are then rebuilt in cairn's
//! format (see `cairn_engine::copy_restic`).

use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use crate::output::{bytes, json_line};
use crate::progress::{Mode, Reporter, Status};
use crate::secret::SecretSource;
use cairn_engine::copy::{copy, CopyEvent, CopyOptions, CopyProgress, CopyReport};
use cairn_engine::copy_restic;
use cairn_repository::backend::{Backend, FileKind};
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use cairn_repository::{Kind, Repository, SaverOptions};
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The other repository (the source of `copy`, the template of
/// `init --copy-chunker-params`) and its password, as restic's options.
#[derive(Args, Debug, Clone, Default)]
pub struct FromRepoArgs {
    /// The source repository: a path or any location form (for copy, a restic
    /// repository too)
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

/// The source of `copy`: a cairn repository, or a restic one to bring
/// its history over.
pub enum Source {
    Cairn(Arc<Repository>),
    Restic(Box<cairn_restic::Repository>),
}

impl FromRepoArgs {
    /// The source's backend; errors if no repository is there.
    fn backend(&self, g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
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
        Ok(backend)
    }

    fn password(&self) -> Result<crate::secret::Secret> {
        crate::secret::secret(
            &SecretSource {
                env: Some("CAIRN_FROM_PASSWORD"),
                file: self.from_password_file.as_deref(),
                command: self.from_password_command.as_deref(),
                command_name: None,
                options: "set CAIRN_FROM_PASSWORD, --from-password-file or --from-password-command for the source repository",
                prompt: "enter password for the source repository: ",
            },
            false,
        )
    }

    /// Open the source repository (a cairn one); errors say it is the source.
    pub fn open(&self, g: &GlobalOptions) -> Result<Arc<Repository>> {
        let backend = self.backend(g)?;
        let pw = self.password()?;
        Repository::open(backend, &pw, crate::repo::open_options(g)?)
            .map(Arc::new)
            .map_err(|e| e.context("source repository").into())
    }

    /// Open the source of a copy: a cairn repository, or a restic one.
    pub fn open_source(&self, g: &GlobalOptions) -> Result<Source> {
        let backend = self.backend(g)?;
        if !cairn_restic::is_restic(&*backend).map_err(cairn_repository::Error::from)? {
            let pw = self.password()?;
            return Repository::open(backend, &pw, crate::repo::open_options(g)?)
                .map(|r| Source::Cairn(Arc::new(r)))
                .map_err(|e| e.context("source repository").into());
        }
        let pw = self.password()?;
        let restic = cairn_restic::Repository::open(backend, &pw)
            .map_err(|e| cairn_repository::Error::from(e).context("source restic repository"))?;
        Ok(Source::Restic(Box::new(restic)))
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

/// What the copy prints about a source snapshot: its paths and time.
type Described = HashMap<Id, (String, String)>;

fn describe(id: &Id, s: &Snapshot) -> (Id, (String, String)) {
    (
        *id,
        (
            s.paths.join(", "),
            s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        ),
    )
}

pub fn run(g: &GlobalOptions, a: CopyArgs) -> Result<i32> {
    let target = crate::repo::open(g)?;
    let filter = super::snapshot_filter(&a.filter);
    match a.from.open_source(g)? {
        Source::Cairn(source) => {
            let selected: Vec<(Id, Snapshot)> = if a.snapshots.is_empty() {
                source
                    .list_snapshots()?
                    .into_iter()
                    .filter(|(_, s)| filter.matches(s))
                    .collect()
            } else {
                let mut v = Vec::new();
                for spec in &a.snapshots {
                    v.push(
                        source
                            .find_snapshot(spec, &filter)
                            .map_err(|e| e.context("source repository"))?,
                    );
                }
                v
            };
            source.load_index()?;
            target.load_index()?;
            let described = selected.iter().map(|(id, s)| describe(id, s)).collect();
            report(g, &described, |opts, progress, print| {
                copy(&source, &target, &selected, opts, progress, print)
            })
        }
        Source::Restic(mut source) => {
            let restic_err = |e: cairn_restic::Error| {
                Error::from(cairn_repository::Error::from(e).context("source restic repository"))
            };
            // Snapshots before the index (restic's read order): a snapshot
            // written meanwhile has its blobs in the index read after it.
            let all = source.list_snapshots().map_err(restic_err)?;
            source.load_index().map_err(restic_err)?;
            let selected = copy_restic::select(&all, &a.snapshots, &filter)
                .map_err(|e| e.context("source restic repository"))?;
            target.load_index()?;
            let described = selected
                .iter()
                .map(|(id, s)| describe(id, &copy_restic::convert_snapshot(id, s)))
                .collect();
            report(g, &described, |opts, progress, print| {
                copy_restic::copy_from_restic(&source, &target, &selected, opts, progress, print)
            })
        }
    }
}

/// Run a copy of the snapshots `described` with progress, and print what it did.
fn report(
    g: &GlobalOptions,
    described: &Described,
    run: impl FnOnce(
        &CopyOptions,
        &CopyProgress,
        &mut dyn FnMut(&CopyEvent),
    ) -> cairn_repository::Result<CopyReport>,
) -> Result<i32> {
    let total = described.len();
    let progress = Arc::new(CopyProgress::default());
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
                    let (paths, time) = &described[source];
                    println!(
                        "snapshot {} of {paths} at {time}: copied to {} ({} new blobs, {})",
                        source.short(),
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
    let report = run(&opts, &progress, &mut print)?;
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
