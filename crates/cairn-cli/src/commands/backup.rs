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
    /// The snapshot's time instead of now ("2006-01-02 15:04:05", local time, or RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Store the atime of files and directories (default: the mtime in its place, as restic)
    #[arg(long)]
    pub with_atime: bool,
    /// Ignore ctime changes when checking for modified files
    #[arg(long, env = "CAIRN_IGNORE_CTIME")]
    pub ignore_ctime: bool,
    /// Ignore inode number and ctime changes when checking for modified files
    #[arg(long, env = "CAIRN_IGNORE_INODE")]
    pub ignore_inode: bool,
    /// Write no snapshot when nothing changed since the parent snapshot
    #[arg(long)]
    pub skip_if_unchanged: bool,
    /// Read and chunk everything and report what would be added; write nothing to the repository
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Back up the paths listed in FILE: one per line, glob patterns expanded, `#` comments and empty lines skipped ("-": stdin; repeatable)
    #[arg(long, value_name = "FILE")]
    pub files_from: Vec<PathBuf>,
    /// Back up the paths listed in FILE, one per line, taken as they are (only empty lines skipped; repeatable)
    #[arg(long, value_name = "FILE")]
    pub files_from_verbatim: Vec<PathBuf>,
    /// Back up the paths listed in FILE, each ended by a NUL byte (repeatable)
    #[arg(long, value_name = "FILE")]
    pub files_from_raw: Vec<PathBuf>,
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
pub fn backup(g: &GlobalOptions, mut a: BackupArgs) -> Result<Outcome> {
    let stream_mode = a.stdin || a.stdin_from_command;
    let listed = listed_paths(&a, g)?;
    if stream_mode && !listed.is_empty() {
        return Err(Error::usage(
            "--stdin and --stdin-from-command take no --files-from*",
        ));
    }
    if !listed.is_empty() || has_lists(&a) {
        a.paths.extend(listed);
        if a.paths.is_empty() {
            return Err(Error::usage(
                "nothing to back up: the --files-from* files list no existing path",
            ));
        }
    }
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
        .map(|t| super::timespec::parse_time("--time", t))
        .transpose()?;

    if a.dry_run && a.init {
        return Err(Error::usage(
            "--dry-run cannot create a repository (--init)",
        ));
    }
    let (repo, created) = if a.dry_run {
        (crate::repo::open_dry_run(g)?, false)
    } else if a.init {
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
        with_atime: a.with_atime,
        ignore_ctime: a.ignore_ctime || a.ignore_inode,
        ignore_inode: a.ignore_inode,
        skip_if_unchanged: a.skip_if_unchanged,
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
        let mut v = json!({
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
            "backup_start": crate::output::json_time(&s.backup_start),
            "backup_end": crate::output::json_time(&s.backup_end),
        });
        // As restic: no snapshot id when none was written.
        if a.dry_run {
            v["dry_run"] = json!(true);
        } else if !r.skipped {
            v["snapshot_id"] = json!(r.snapshot_id.to_hex());
        }
        json_line(&v);
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
            "{} to the repository: {} ({} stored)",
            if a.dry_run { "Would add" } else { "Added" },
            bytes(s.data_added),
            bytes(s.data_added_packed)
        );
        println!(
            "processed {} files, {} in {}",
            s.total_files_processed,
            bytes(s.total_bytes_processed),
            duration(secs.round() as u64)
        );
        if a.dry_run {
            println!("dry run: nothing was written to the repository");
        } else if r.skipped {
            println!(
                "skipped creating snapshot: nothing changed since {}",
                r.snapshot_id.short()
            );
        } else {
            println!("snapshot {} saved", r.snapshot_id.short());
        }
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
    // The file being read, its path cut to what the terminal has left.
    if !current.is_empty() {
        let width = crate::progress::terminal_width().unwrap_or(120);
        let left = width.saturating_sub(line.chars().count() + 2);
        if left >= 8 {
            line.push(' ');
            line.push_str(&crate::progress::fit(&current, left));
        }
    }
    Status::Line(line)
}

fn has_lists(a: &BackupArgs) -> bool {
    !(a.files_from.is_empty() && a.files_from_verbatim.is_empty() && a.files_from_raw.is_empty())
}

/// The contents of a `--files-from*` file ("-": standard input).
fn read_list(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Error::io(e, "reading the list of files from stdin"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Error::io(e, format!("reading {}", path.display())))
}

/// The paths the `--files-from`, `--files-from-verbatim` and
/// `--files-from-raw` files list, in restic's way: `--files-from` lines are
/// trimmed, `#` comments and empty lines skipped and glob patterns
/// expanded (a pattern matching nothing is skipped with a warning);
/// verbatim lines are taken as they are (only empty ones skipped); raw
/// names end with NUL bytes and may hold any byte but NUL.
fn listed_paths(a: &BackupArgs, g: &GlobalOptions) -> Result<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for f in &a.files_from {
        let data = read_list(f)?;
        for line in String::from_utf8_lossy(&data).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let found = cairn_engine::pattern::expand_glob(line)?;
            if found.is_empty() && !g.quiet {
                eprintln!("warning: pattern {line:?} does not match any files, skipping");
            }
            out.extend(found);
        }
    }
    for f in &a.files_from_verbatim {
        let data = read_list(f)?;
        for line in data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                out.push(PathBuf::from(std::ffi::OsStr::from_bytes(line)));
            }
        }
    }
    for f in &a.files_from_raw {
        let data = read_list(f)?;
        if data.is_empty() {
            continue;
        }
        let Some(body) = data.strip_suffix(&[0]) else {
            return Err(Error::usage(format!(
                "--files-from-raw {}: trailing zero byte missing",
                f.display()
            )));
        };
        for name in body.split(|&b| b == 0) {
            if name.is_empty() {
                return Err(Error::usage(format!(
                    "--files-from-raw {}: empty file name in the listing",
                    f.display()
                )));
            }
            out.push(PathBuf::from(std::ffi::OsStr::from_bytes(name)));
        }
    }
    Ok(out)
}
