use crate::cli::{ExcludeArgs, GlobalOptions};
use crate::output::{bytes, duration, json_line};
use crate::progress::{eta, Mode, Reporter, Status};
use cairn_engine::archiver::{self, BackupOptions, BackupProgress, ErrorSink, Filters, Source};
use cairn_engine::pattern::PatternSet;
use cairn_repository::backend::FileKind;
use cairn_repository::{Error, Kind, Result, SaverOptions};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
}

/// "100", "10K", "1.5M", "2G", "1T" (binary units) → bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => {
                    return Err(Error::usage(format!(
                        "invalid size {s:?}: use a number with an optional K, M, G or T suffix"
                    )))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| {
        Error::usage(format!(
            "invalid size {s:?}: use a number with an optional K, M, G or T suffix"
        ))
    })?;
    if !(v >= 0.0) {
        return Err(Error::usage(format!("invalid size {s:?}")));
    }
    Ok((v * mult as f64) as u64)
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
            .map(parse_size)
            .transpose()?,
        one_file_system: a.one_file_system,
        git_ignore: a.git_ignore,
    })
}

pub fn run(g: &GlobalOptions, a: BackupArgs) -> Result<i32> {
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
    for p in &a.paths {
        if let Err(e) = p.symlink_metadata() {
            return Err(Error::io(e, format!("backup path {}", p.display())));
        }
    }
    let filters = filters(&a)?;
    let time = a
        .time
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| Error::usage(format!("invalid --time {t:?}: {e} (expected RFC 3339, e.g. 2024-02-29T12:00:00+01:00)")))
        })
        .transpose()?;

    let backend = crate::repo::backend(g)?;
    let repo = if a.init && !backend.exists(FileKind::Config, "config")? {
        let r = crate::repo::init(g)?;
        if !g.quiet && !g.json {
            eprintln!(
                "created cairn repository {} at {}",
                r.config().id.short(),
                r.location()
            );
        }
        r
    } else {
        crate::repo::open(g)?
    };
    repo.load_index()?;

    let hostname = a.host.clone().unwrap_or_else(crate::repo::hostname);
    let mut tags: Vec<String> = a
        .tag
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    tags.dedup();

    // The command whose output we store, and the check that it succeeded.
    let child = Arc::new(Mutex::new(None::<std::process::Child>));
    let (source, snapshot_paths) = if a.stdin_from_command {
        let mut c = std::process::Command::new(&a.command[0])
            .args(&a.command[1..])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::new(Kind::Command, format!("starting {:?}: {e}", a.command[0])))?;
        let out = c.stdout.take().expect("piped stdout");
        *child.lock().unwrap() = Some(c);
        (
            Source::Stream {
                name: a.stdin_filename.clone(),
                reader: Box::new(out),
            },
            vec![format!("/{}", a.stdin_filename)],
        )
    } else if a.stdin {
        (
            Source::Stream {
                name: a.stdin_filename.clone(),
                reader: Box::new(std::io::stdin()),
            },
            vec![format!("/{}", a.stdin_filename)],
        )
    } else {
        let mut abs = Vec::new();
        for p in &a.paths {
            abs.push(archiver::absolute(p)?.display().to_string());
        }
        abs.sort();
        abs.dedup();
        (Source::Paths(a.paths.clone()), abs)
    };

    let parent = if a.force {
        None
    } else if let Some(p) = &a.parent {
        Some(repo.find_snapshot(p, &Default::default())?.0)
    } else {
        let mut want = snapshot_paths.clone();
        want.sort();
        repo.list_snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| {
                let mut have = s.paths.clone();
                have.sort();
                s.hostname == hostname && have == want
            })
            .map(|(id, _)| id)
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
    let before_snapshot: Option<Box<dyn FnOnce() -> Result<()> + Send + Sync>> =
        if a.stdin_from_command {
            let child = child.clone();
            let cmd = a.command.join(" ");
            Some(Box::new(move || {
                let Some(mut c) = child.lock().unwrap().take() else {
                    return Ok(());
                };
                let status = c
                    .wait()
                    .map_err(|e| Error::new(Kind::Command, format!("waiting for `{cmd}`: {e}")))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(Error::new(
                        Kind::Command,
                        format!("`{cmd}` failed ({status}); no snapshot was saved"),
                    ))
                }
            }))
        } else {
            None
        };
    let opts = BackupOptions {
        filters,
        parent,
        hostname,
        username: crate::repo::username(),
        tags,
        readers: 2,
        saver: SaverOptions {
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
            ..Default::default()
        },
        scan: mode != Mode::Off,
        on_error: Some(on_error),
        cancel: cancel.clone(),
        before_snapshot,
        time,
    };
    let progress = Arc::new(BackupProgress::default());
    let reporter = {
        let p = progress.clone();
        Reporter::start(mode, move |elapsed| status(&p, elapsed, mode))
    };
    let result = archiver::backup(repo.clone(), source, opts, progress.clone());
    reporter.finish();
    // A stdin command that is still running when the backup failed must not linger.
    if let Some(mut c) = child.lock().unwrap().take() {
        let _ = c.kill();
        let _ = c.wait();
    }
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
        return Ok(3);
    }
    Ok(0)
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

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("100").unwrap(), 100);
        assert_eq!(super::parse_size("2K").unwrap(), 2048);
        assert_eq!(super::parse_size("1.5M").unwrap(), 1572864);
        assert_eq!(super::parse_size("1g").unwrap(), 1 << 30);
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("5X").is_err());
    }
}
