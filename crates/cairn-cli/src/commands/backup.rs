use crate::cli::{ExcludeArgs, GlobalOptions};
use crate::error::{Error, Result};
use crate::output::{bytes, duration, json_line};
use crate::progress::{eta, Mode, Reporter, Status};
use cairn_engine::archiver::{
    self, BackupOptions, BackupProgress, ErrorSink, Filters, ParentChoice, Source, WarningSink,
};
use cairn_engine::pattern::PatternSet;
use cairn_repository::SaverOptions;
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files and directories to back up
    pub paths: Vec<PathBuf>,
    /// Create the repository first if it does not exist
    #[arg(long)]
    pub init: bool,
    /// Back up standard input as one file
    #[arg(long)]
    pub stdin: bool,
    /// File name for --stdin / --stdin-from-command
    #[arg(long, default_value = "stdin")]
    pub stdin_filename: String,
    /// Back up what this command prints (arguments after --); no snapshot if it fails
    #[arg(long)]
    pub stdin_from_command: bool,
    #[command(flatten)]
    pub excludes: ExcludeArgs,
    /// Exclude directories marked with a valid CACHEDIR.TAG
    #[arg(long)]
    pub exclude_caches: bool,
    /// Exclude directories containing this file (NAME or NAME:HEADER; repeatable)
    #[arg(long)]
    pub exclude_if_present: Vec<String>,
    /// Exclude files larger than this (e.g. 100M, 2G)
    #[arg(long)]
    pub exclude_larger_than: Option<String>,
    /// Do not cross file system boundaries
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Honour .gitignore files
    #[arg(long)]
    pub git_ignore: bool,
    /// Add a tag to the snapshot (repeatable, or comma-separated)
    #[arg(long)]
    pub tag: Vec<String>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, short = 'H', env = "CAIRN_HOST")]
    pub host: Option<String>,
    /// Compare with this snapshot to skip unchanged files (default: the latest of this host and paths)
    #[arg(long)]
    pub parent: Option<String>,
    /// Read every file, ignoring the parent snapshot
    #[arg(short, long)]
    pub force: bool,
    /// The command for --stdin-from-command
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The snapshot's time (RFC 3339) instead of now; for tests and imports
    #[arg(long, hide = true)]
    pub time: Option<String>,
    /// Write node-exporter textfile metrics of this backup to PATH (atomically)
    #[arg(long, value_name = "PATH")]
    pub prometheus_file: Option<PathBuf>,
}

/// What a backup that saved a snapshot returns: the exit code (0, or 3
/// when files were unreadable) and the archiver's result.
pub struct Outcome {
    pub code: i32,
    pub result: archiver::BackupResult,
}

fn filters(a: &BackupArgs) -> Result<Filters> {
    let (ex, iex) = a.excludes.patterns()?;
    Ok(Filters {
        exclude: PatternSet::new(&ex, false)?,
        iexclude: PatternSet::new(&iex, true)?,
        exclude_caches: a.exclude_caches,
        exclude_if_present: a.exclude_if_present.clone(),
        exclude_larger_than: a
            .exclude_larger_than
            .as_deref()
            .map(crate::size::parse_size)
            .transpose()?,
        one_file_system: a.one_file_system,
        git_ignore: a.git_ignore,
    })
}

pub fn run(g: &GlobalOptions, a: BackupArgs) -> Result<i32> {
    let metrics = a.prometheus_file.clone();
    let host = a.host.clone().unwrap_or_else(crate::repo::hostname);
    let started = std::time::SystemTime::now();
    let outcome = backup(g, a);
    if let Some(path) = metrics {
        crate::metrics::write_backup(&path, g, &host, started, outcome.as_ref());
    }
    outcome.map(|o| o.code)
}

/// Back up as `a` says, printing progress and the summary; the engine
/// result for callers that report more (`run`, metrics).
pub fn backup(g: &GlobalOptions, a: BackupArgs) -> Result<Outcome> {
    let stream_mode = a.stdin || a.stdin_from_command;
    if stream_mode && !a.paths.is_empty() {
        return Err(Error::usage(
            "--stdin and --stdin-from-command take no paths",
        ));
    }
    if !stream_mode && a.paths.is_empty() {
        return Err(Error::usage(
            "nothing to back up: give at least one path (or --stdin)",
        ));
    }
    if a.stdin_from_command && a.command.is_empty() {
        return Err(Error::usage("--stdin-from-command needs the command after `--`, e.g. `cairn backup --stdin-from-command -- mysqldump db`"));
    }
    if !a.command.is_empty() && !a.stdin_from_command {
        return Err(Error::usage(
            "arguments after `--` are only used with --stdin-from-command",
        ));
    }
    // Checked (paths exist, the file name is a name) before the repository is opened.
    let source = if a.stdin_from_command {
        Source::command(&a.stdin_filename, a.command.clone())?
    } else if a.stdin {
        Source::stream(&a.stdin_filename, Box::new(std::io::stdin()))?
    } else {
        Source::paths(&a.paths)?
    };
    let filters = filters(&a)?;
    let time = a
        .time
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                Error::usage(format!(
                    "invalid --time {t:?}: {e} (expected RFC 3339, e.g. 2024-02-29T12:00:00+01:00)"
                ))
            })
        })
        .transpose()?;

    let (repo, created) = if a.init {
        crate::repo::open_or_init(g)?
    } else {
        (crate::repo::open(g)?, false)
    };
    if created && !g.quiet && !g.json {
        eprintln!(
            "created cairn repository {} at {}",
            repo.config().id.short(),
            repo.location()
        );
    }
    repo.load_index()?;

    let mut tags: Vec<String> = a
        .tag
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    tags.dedup();
    let parent = if a.force {
        ParentChoice::NoParent
    } else if let Some(p) = &a.parent {
        ParentChoice::Snapshot(p.clone())
    } else {
        ParentChoice::Latest
    };

    let mode = Mode::choose(g.json, g.quiet);
    let json = g.json;
    let on_error: ErrorSink = Arc::new(move |path: &Path, msg: &str| {
        if json {
            eprintln!(
                "{}",
                json!({"message_type": "error", "error": {"message": msg}, "during": "archival", "item": path.display().to_string()})
            );
        } else {
            eprintln!("\r\x1b[Kerror: {}: {msg}", path.display());
        }
    });
    let on_warning: WarningSink = Arc::new(move |msg: &str| {
        if json {
            eprintln!("{}", json!({"message_type": "warning", "message": msg}));
        } else {
            eprintln!("\r\x1b[Kwarning: {msg}");
        }
    });
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\r\x1b[Kinterrupted: stopping (press Ctrl-C again to quit at once)");
        });
    }
    let opts = BackupOptions {
        filters,
        parent,
        hostname: a.host.clone().unwrap_or_else(crate::repo::hostname),
        username: crate::repo::username(),
        tags,
        readers: 2,
        saver: SaverOptions {
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
            ..Default::default()
        },
        scan: mode != Mode::Off,
        on_error: Some(on_error),
        on_warning: Some(on_warning),
        on_file: crate::output::backup_file_sink(g),
        cancel: cancel.clone(),
        time,
    };
    let progress = Arc::new(BackupProgress::default());
    let reporter = {
        let p = progress.clone();
        Reporter::start(mode, move |elapsed| status(&p, elapsed, mode))
    };
    let result = archiver::backup(repo.clone(), source, opts, progress.clone());
    reporter.finish();
    let r = result?;
    let s = r
        .snapshot
        .summary
        .as_ref()
        .expect("backup writes a summary");
    let secs = (s.backup_end - s.backup_start).num_milliseconds() as f64 / 1000.0;
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "files_new": s.files_new,
            "files_changed": s.files_changed,
            "files_unmodified": s.files_unmodified,
            "dirs_new": s.dirs_new,
            "dirs_changed": s.dirs_changed,
            "dirs_unmodified": s.dirs_unmodified,
            "data_blobs": s.data_blobs,
            "tree_blobs": s.tree_blobs,
            "data_added": s.data_added,
            "data_added_packed": s.data_added_packed,
            "total_files_processed": s.total_files_processed,
            "total_bytes_processed": s.total_bytes_processed,
            "total_duration": secs,
            "backup_start": s.backup_start,
            "backup_end": s.backup_end,
            "snapshot_id": r.snapshot_id.to_hex(),
        }));
    } else if !g.quiet {
        if let Some(p) = r.snapshot.parent {
            println!("using parent snapshot {}", p.short());
        }
        println!(
            "Files:       {:6} new, {:6} changed, {:6} unmodified",
            s.files_new, s.files_changed, s.files_unmodified
        );
        println!(
            "Dirs:        {:6} new, {:6} changed, {:6} unmodified",
            s.dirs_new, s.dirs_changed, s.dirs_unmodified
        );
        println!(
            "Added to the repository: {} ({} stored)",
            bytes(s.data_added),
            bytes(s.data_added_packed)
        );
        println!(
            "processed {} files, {} in {}",
            s.total_files_processed,
            bytes(s.total_bytes_processed),
            duration(secs.round() as u64)
        );
        println!("snapshot {} saved", r.snapshot_id.short());
    }
    if r.errors > 0 {
        eprintln!(
            "warning: {} files or directories could not be read; the snapshot is incomplete",
            r.errors
        );
        return Ok(Outcome { code: 3, result: r });
    }
    Ok(Outcome { code: 0, result: r })
}

fn status(p: &BackupProgress, elapsed: std::time::Duration, mode: Mode) -> Status {
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (files, bytes_done, errors) = (ld(&p.files_done), ld(&p.bytes_done), ld(&p.errors));
    let (ftotal, btotal) = (ld(&p.files_total), ld(&p.bytes_total));
    let scanned = p.scan_finished.load(Ordering::Relaxed);
    let remaining = if scanned {
        eta(bytes_done, btotal, elapsed)
    } else {
        None
    };
    let current = p.current.lock().map(|c| c.clone()).unwrap_or_default();
    if mode == Mode::Json {
        let pct = if btotal > 0 {
            (bytes_done as f64 / btotal as f64).min(1.0)
        } else {
            0.0
        };
        let mut v = json!({
            "message_type": "status",
            "seconds_elapsed": elapsed.as_secs(),
            "percent_done": pct,
            "total_files": ftotal,
            "files_done": files,
            "total_bytes": btotal,
            "bytes_done": bytes_done,
            "error_count": errors,
            "current_files": if current.is_empty() { vec![] } else { vec![current] },
        });
        if let Some(r) = remaining {
            v["seconds_remaining"] = json!(r);
        }
        return Status::Json(v);
    }
    let rate = bytes_done as f64 / elapsed.as_secs_f64().max(0.001);
    let mut line = format!(
        "[{}] {} files {}, {}/s",
        duration(elapsed.as_secs()),
        files,
        bytes(bytes_done),
        bytes(rate as u64)
    );
    if btotal > 0 {
        line.push_str(&format!(
            ", total {} files {} ({:.1}%)",
            ftotal,
            bytes(btotal),
            100.0 * (bytes_done as f64 / btotal as f64).min(1.0)
        ));
    }
    if errors > 0 {
        line.push_str(&format!(", {errors} errors"));
    }
    if let Some(r) = remaining {
        line.push_str(&format!(", ETA {}", duration(r)));
    }
    Status::Line(line)
}
