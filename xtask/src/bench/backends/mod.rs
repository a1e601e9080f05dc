//! `cargo xtask bench --backends`: cairn and restic over the network, side
//! by side against the same servers in one run, with the bytes each moves
//! on the wire, and what their metadata caches save.
//!
//! Servers (all on 127.0.0.1, started here, killed when done or on any
//! error; see `servers`): `cairn serve` for `rest:`, OpenSSH sshd for
//! `sftp:`, s3s-fs for `s3:`. Each sits behind a counting TCP proxy
//! (`proxy`) that both tools connect through, so the bytes sent and
//! received are measured the same way for both. A server whose program is
//! missing is skipped with the reason printed.
//!
//! **Main table.** On the `tree` data set (generated and cached like the
//! other benches, page cache warmed), for each server and repetition, each
//! tool in turn (alternating which goes first) runs on a fresh repository
//! (its own sub-path or prefix) with a fresh cache: `init` (untimed), first
//! backup, unchanged re-backup, restore (checked: file count and bytes).
//! Rows hold the medians over repetitions of wall time, CPU, peak RSS,
//! repository size after the first backup (on the server's disk) and bytes
//! sent / received. The stated target: cairn faster than restic on every
//! row and at least 2× on the first backup; the output says which rows
//! hold.
//!
//! **Cache table** (`cache`): bytes read from the server by a second
//! `snapshots`, `ls latest` and re-backups, for cairn with its cache, cairn
//! `--no-cache` and restic with and without its cache.
//!
//! Output: both tables on stdout and in `target/bench/backends*.md`, every
//! figure in `backends*.json`, the main table's raw repetitions in
//! `backends*.csv` (`-quick`, `-smoke` suffixes at those scales).

mod cache;
mod proxy;
mod remote;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::report::{self, Cell, Row, Sample};
use super::sequence::{Op, Tool, ToolKind};
use super::servers::{S3s, Sshd};
// Only the module: `run` is also this module's entry point.
use super::run::{self};
use super::{data, fsutil, Options, Scale, SetKind, Strict};
use crate::sys;
use proxy::Traffic;
use remote::{Kind, Remote};

/// The operations of the main table, in order.
const OPS: [Op; 3] = [Op::Backup, Op::Rebackup, Op::Restore];

/// The stated target: cairn faster on every row, and on the first backup
/// at least this many times faster.
const FIRST_BACKUP_SPEEDUP: f64 = 2.0;

/// Whether a command uses the tool's cache, and where it is.
#[derive(Clone, Debug)]
pub enum CacheUse {
    Dir(PathBuf),
    Off,
}

/// What the runs share: where things go, the data, the raw samples.
pub struct Ctx {
    /// `<bench dir>/backends`: servers' files, caches, restores, logs.
    dir: PathBuf,
    source: PathBuf,
    source_usage: fsutil::Usage,
    timeout: Duration,
    samples: Vec<Sample>,
    /// (tool, server, operation) whose failure was already printed.
    reported: HashSet<(ToolKind, Kind, String)>,
}

impl Ctx {
    /// Runs `tool ARGS` against repository `repo` on `remote`; its figures
    /// and the bytes it moved, or why it failed (its stderr tail, printed
    /// once per tool, server and operation).
    pub fn command(
        &mut self,
        remote: &Remote,
        tool: &Tool,
        repo: &str,
        cache: &CacheUse,
        label: &str,
        args: &[OsString],
    ) -> Result<(run::Measured, Traffic)> {
        let bin = tool.bin.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let access = remote.access(tool.kind, repo);
        let mut full = access.args;
        match cache {
            CacheUse::Dir(dir) => {
                full.push("--cache-dir".into());
                full.push(dir.into());
            }
            CacheUse::Off => full.push("--no-cache".into()),
        }
        full.extend(args.iter().cloned());
        let password_var = match tool.kind {
            ToolKind::Cairn => "CAIRN_PASSWORD",
            ToolKind::Restic => "RESTIC_PASSWORD",
        };
        let mut env = vec![
            (password_var, OsString::from("cairn-bench-password")),
            // Nothing of the user's cache is read or written.
            ("XDG_CACHE_HOME", self.dir.join("xdg-cache").into()),
        ];
        env.extend(access.env);
        let log = self.dir.join("logs").join(format!(
            "{}-{}-{}.stderr",
            tool.name(),
            remote.kind.name().trim_end_matches(':'),
            label.split(' ').next().unwrap_or("op")
        ));
        let spec = run::Spec {
            program: bin,
            args: full.clone(),
            env,
            stdin_file: None,
            stderr_log: log.clone(),
            timeout: self.timeout,
        };
        let (result, traffic) = remote.count(|| run::run(&spec));
        let (outcome, measured) =
            result.with_context(|| format!("could not run {}", bin.display()))?;
        if !outcome.success() {
            let tail = run::tail(&log, 12);
            let line = format!(
                "{} {}",
                tool.name(),
                full.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            if self
                .reported
                .insert((tool.kind, remote.kind, label.to_string()))
            {
                eprintln!(
                    "[bench]   FAILED: `{line}`: {}; stderr tail:",
                    outcome.describe()
                );
                for l in tail.lines() {
                    eprintln!("[bench]     | {l}");
                }
            }
            let last = tail.lines().last().unwrap_or("").to_string();
            bail!(
                "`{} {label}` failed ({}): {last}",
                tool.name(),
                outcome.describe()
            );
        }
        Ok((measured, traffic))
    }

    /// Restores the latest snapshot of `repo` and checks it against the
    /// source (file count and bytes); the restore's figures.
    fn restore(
        &mut self,
        remote: &Remote,
        tool: &Tool,
        repo: &str,
        cache: &CacheUse,
    ) -> Result<(run::Measured, Traffic)> {
        let target = self.dir.join("restore").join(tool.name());
        fsutil::remove(&target)?;
        fs::create_dir_all(&target)?;
        let args = [
            "restore".into(),
            "latest".into(),
            "--target".into(),
            target.clone().into(),
        ];
        let result = self.command(remote, tool, repo, cache, Op::Restore.label(), &args)?;
        let got = fsutil::usage(&target)?;
        fsutil::remove(&target)?;
        let want = self.source_usage;
        if (want.files, want.bytes) != (got.files, got.bytes) {
            bail!(
                "restore is incomplete: {} files, {} bytes restored; the source has {} files, {} bytes",
                got.files,
                got.bytes,
                want.files,
                want.bytes
            );
        }
        Ok(result)
    }

    fn backup_args(&self) -> Vec<OsString> {
        vec!["backup".into(), self.source.clone().into()]
    }

    /// One tool's sequence on a fresh repository of `remote`; whether its
    /// `init` worked (the server is usable by this tool).
    fn sequence(&mut self, remote: &Remote, tool: &Tool, rep: usize) -> Result<bool> {
        let repo = format!("{}-{rep}", tool.name());
        let repo_dir = remote.repo_dir(&repo);
        fsutil::remove(&repo_dir)?;
        let cache_dir = self.dir.join("cache").join(tool.name());
        fsutil::remove(&cache_dir)?;
        let cache = CacheUse::Dir(cache_dir.clone());
        let mut blocked: Option<String> = tool.bin.as_ref().err().cloned();
        if blocked.is_none() {
            if let Err(e) = self.command(remote, tool, &repo, &cache, "init", &["init".into()]) {
                blocked = Some(format!("init failed: {e:#}"));
            }
        }
        let usable = blocked.is_none();
        for op in OPS {
            let sample = |ok: bool, error: Option<String>| Sample {
                set: remote.kind.name(),
                op: op.label(),
                tool: tool.name(),
                rep,
                ok,
                wall_s: 0.0,
                user_s: 0.0,
                sys_s: 0.0,
                max_rss_kib: 0,
                repo_disk_bytes: None,
                repo_file_bytes: None,
                sent_bytes: None,
                recv_bytes: None,
                error,
            };
            if let Some(why) = &blocked {
                eprintln!("[bench]   {:<6} {:<20} failed", tool.name(), op.label());
                self.samples.push(sample(false, Some(why.clone())));
                continue;
            }
            let result = match op {
                Op::Restore => self.restore(remote, tool, &repo, &cache),
                _ => {
                    let args = self.backup_args();
                    self.command(remote, tool, &repo, &cache, op.label(), &args)
                }
            };
            match result {
                Ok((m, traffic)) => {
                    let size = if op == Op::Backup {
                        Some(fsutil::usage(&repo_dir)?)
                    } else {
                        None
                    };
                    eprintln!(
                        "[bench]   {:<6} {:<20} {:>8.2} s  cpu {:>7.2} s  rss {:>9}  sent {:>9}  recv {:>9}{}",
                        tool.name(),
                        op.label(),
                        m.wall.as_secs_f64(),
                        (m.user + m.sys).as_secs_f64(),
                        report::bytes(m.max_rss_kib * 1024),
                        report::bytes_fine(traffic.sent),
                        report::bytes_fine(traffic.recv),
                        size.map(|u| format!("  repo {}", report::bytes(u.disk_bytes)))
                            .unwrap_or_default()
                    );
                    self.samples.push(Sample {
                        ok: true,
                        wall_s: m.wall.as_secs_f64(),
                        user_s: m.user.as_secs_f64(),
                        sys_s: m.sys.as_secs_f64(),
                        max_rss_kib: m.max_rss_kib,
                        repo_disk_bytes: size.map(|u| u.disk_bytes),
                        repo_file_bytes: size.map(|u| u.bytes),
                        sent_bytes: Some(traffic.sent),
                        recv_bytes: Some(traffic.recv),
                        ..sample(true, None)
                    });
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    eprintln!("[bench]   {:<6} {:<20} failed", tool.name(), op.label());
                    if op == Op::Backup {
                        blocked = Some(format!("the first backup failed: {message}"));
                    }
                    self.samples.push(sample(false, Some(message)));
                }
            }
        }
        fsutil::remove(&repo_dir)?;
        fsutil::remove(&cache_dir)?;
        Ok(usable)
    }
}

/// The program that serves `kind`, or why there is none.
fn server_program(kind: Kind, cairn: &Tool) -> Result<PathBuf, String> {
    match kind {
        Kind::Rest => cairn.bin.clone().map_err(|e| {
            format!("`cairn serve` is the REST server, and cairn is unavailable: {e}")
        }),
        Kind::Sftp => Sshd::program(),
        Kind::S3 => S3s::program(),
    }
}

/// The server program's version line, for the report.
fn server_version(kind: Kind, program: &Path, cairn: &Tool) -> String {
    match kind {
        Kind::Rest => format!("cairn serve ({})", cairn.version),
        Kind::Sftp => {
            // `ssh -V` prints to stderr; sshd and ssh come from one package.
            let out = Command::new("ssh").arg("-V").output();
            let v = out
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_default();
            format!("{} ({v})", program.display())
        }
        Kind::S3 => super::version_of(program, &["--version"]),
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn run(opts: &Options) -> Result<()> {
    if opts.only.is_some() {
        bail!("--backends runs on the `tree` data set only; --only does not apply");
    }
    let started = Instant::now();
    let load_start = loadavg();
    let scale = opts.scale;
    let reps = opts
        .reps
        .unwrap_or(if scale == Scale::Smoke { 1 } else { 3 });
    let base = opts.dir.clone().unwrap_or_else(super::default_base);
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let base = base.canonicalize()?;
    let _lock = super::lock(&base)?;
    let dir = base.join("backends");
    fsutil::remove(&dir)?;
    fs::create_dir_all(dir.join("logs"))?;

    let (cairn, restic) = super::tools(opts)?;
    let machine = report::Machine::read();
    let data_root = base.join("data").join(scale.name());
    let prepared = data::prepare(SetKind::Tree, scale, &data_root)?;
    let t = Instant::now();
    let read = fsutil::read_all(&prepared.dir)?;
    eprintln!(
        "[bench] tree: {} files, {}; page cache warmed (read once, untimed, {:.1} s)",
        report::thousands(prepared.usage.files),
        report::bytes(read),
        t.elapsed().as_secs_f64()
    );
    let mut ctx = Ctx {
        dir: dir.clone(),
        source: prepared.dir.clone(),
        source_usage: fsutil::usage(&prepared.dir)?,
        timeout: scale.timeout(),
        samples: Vec::new(),
        reported: HashSet::new(),
    };

    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    // Whether cairn could init a repository on a server of that kind.
    let mut cairn_usable = HashSet::new();
    for kind in Kind::ALL {
        let program = match server_program(kind, &cairn) {
            Ok(p) => p,
            Err(why) => {
                eprintln!("[bench] skipping {}: {why}", kind.name());
                skipped.push(json!({ "server": kind.name(), "why": why }));
                continue;
            }
        };
        let server_dir = dir.join(kind.name().trim_end_matches(':'));
        let remote = match Remote::start(kind, &program, &server_dir) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the server did not start: {e:#}");
                eprintln!("[bench] skipping {}: {why}", kind.name());
                skipped.push(json!({ "server": kind.name(), "why": why }));
                continue;
            }
        };
        servers.push(json!({
            "kind": kind.name(),
            "server": remote.server,
            "version": server_version(kind, &program, &cairn),
        }));
        for rep in 0..reps {
            eprintln!("[bench] {} rep {}/{reps}", kind.name(), rep + 1);
            // Alternate which tool goes first, so drift favours neither.
            let order = if rep % 2 == 0 {
                [&cairn, &restic]
            } else {
                [&restic, &cairn]
            };
            for tool in order {
                let usable = ctx.sequence(&remote, tool, rep)?;
                if usable && tool.kind == ToolKind::Cairn {
                    cairn_usable.insert(kind);
                }
            }
        }
        drop(remote);
        fsutil::remove(&server_dir)?;
    }

    // The cache measurement: on S3 if cairn works there, else on REST.
    let cache_kind = [Kind::S3, Kind::Rest]
        .into_iter()
        .find(|k| cairn_usable.contains(k));
    let cache_result = match cache_kind {
        Some(kind) => {
            let why_here = if kind == Kind::S3 {
                "S3, as planned".to_string()
            } else if servers.iter().any(|s| s["kind"] == Kind::S3.name()) {
                "instead of S3, which this cairn could not use".to_string()
            } else {
                "instead of S3, whose server did not run".to_string()
            };
            let program = server_program(kind, &cairn).map_err(|e| anyhow::anyhow!(e))?;
            let server_dir = dir.join("cache-server");
            let remote = Remote::start(kind, &program, &server_dir)?;
            let restic_no_cache = scale != Scale::Smoke;
            let r = cache::measure(
                &mut ctx,
                &remote,
                &why_here,
                &cairn,
                &restic,
                restic_no_cache,
            )?;
            drop(remote);
            fsutil::remove(&server_dir)?;
            Some(r)
        }
        None => {
            eprintln!(
                "[bench] no cache measurement: cairn could use neither the S3 nor the REST server"
            );
            None
        }
    };
    fsutil::remove(&dir)?;
    let load_end = loadavg();

    // Report.
    let rows = report::summarize(&ctx.samples, |op| op == Op::Backup.label());
    let verdict = targets(&rows);
    let mut text = String::new();
    text.push_str(&format!(
        "cairn bench --backends ({} scale): median of {reps} repetition{}, tools alternating, each on a fresh repository and cache per server; page cache warm; bytes counted by a TCP proxy in front of each server (payload both ways, sent = to the server); files under {}\n",
        scale.name(),
        if reps == 1 { "" } else { "s" },
        base.display(),
    ));
    text.push_str(&format!(
        "machine: {} × {}, {} MiB RAM, Linux {}; load average at start {load_start}, at end {load_end}\n",
        machine.nproc, machine.cpu, machine.mem_total_mib, machine.kernel
    ));
    text.push_str(&format!(
        "cairn: {}\nrestic: {}\n",
        cairn.version, restic.version
    ));
    for s in &servers {
        text.push_str(&format!(
            "{} server: {}\n",
            s["kind"].as_str().unwrap_or(""),
            s["version"].as_str().unwrap_or("")
        ));
    }
    for s in &skipped {
        text.push_str(&format!(
            "{} server skipped: {}\n",
            s["server"].as_str().unwrap_or(""),
            s["why"].as_str().unwrap_or("")
        ));
    }
    text.push_str(&format!(
        "data set: tree, {} files, {}\n",
        report::thousands(prepared.usage.files),
        report::bytes(prepared.usage.bytes)
    ));
    text.push_str("speedup = restic time ÷ cairn time (above 1: cairn faster); RSS and size ratios = cairn ÷ restic; CPU = user + system of the tool (not the server); repo = du on the server after the first backup; sent/recv = bytes to / from the server\n\n");
    text.push_str(&report::table(&rows, "server"));
    text.push('\n');
    text.push_str(&verdict.text);
    if let Some(c) = &cache_result {
        text.push('\n');
        text.push_str(&c.text);
    }
    print!("{text}");

    let stem = match scale {
        Scale::Full => "backends".to_string(),
        other => format!("backends-{}", other.name()),
    };
    let out_dir = sys::target_dir().join("bench");
    let doc = json!({
        "scale": scale.name(),
        "reps": reps,
        "duration_s": started.elapsed().as_secs_f64(),
        "load_average": { "start": load_start, "end": load_end },
        "data_dir": base,
        "machine": machine,
        "tools": {
            "cairn": { "version": cairn.version, "path": cairn.bin.as_ref().ok() },
            "restic": { "version": restic.version, "path": restic.bin.as_ref().ok() },
        },
        "servers": servers,
        "skipped_servers": skipped,
        "data_set": { "name": "tree", "files": prepared.usage.files, "bytes": prepared.usage.bytes },
        "rows": rows,
        "target": verdict.json,
        "cache": cache_result.as_ref().map(|c| &c.json),
        "samples": ctx.samples,
    });
    report::write_files(&out_dir, &stem, &doc, &ctx.samples, &text)?;
    eprintln!(
        "[bench] done in {:.0} s; wrote {}/{stem}.{{json,csv,md}}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );

    let failed = |tool: &str| {
        rows.iter().any(|r| {
            matches!(
                if tool == "cairn" { &r.cairn } else { &r.restic },
                Cell::Failed { .. }
            )
        })
    };
    match opts.strict {
        Strict::All if failed("cairn") || failed("restic") => bail!("some rows failed"),
        _ => Ok(()),
    }
}

/// Which rows meet the target, as text and JSON.
struct Verdict {
    text: String,
    json: serde_json::Value,
}

fn targets(rows: &[Row]) -> Verdict {
    let (mut holds, mut misses, mut unmeasured) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let name = format!("{} {}", row.set, row.op);
        let want = if row.op == Op::Backup.label() {
            FIRST_BACKUP_SPEEDUP
        } else {
            1.0
        };
        match (&row.cairn, &row.restic) {
            (Cell::Ok { wall_s: c, .. }, Cell::Ok { wall_s: r, .. }) => {
                let speedup = r / c;
                let entry = json!({ "row": name, "speedup": speedup, "wanted": want });
                // "Faster" is strict; "at least 2×" is not.
                let ok = if want > 1.0 {
                    speedup >= want
                } else {
                    speedup > want
                };
                if ok {
                    holds.push((format!("{name} ({speedup:.2}×)"), entry));
                } else {
                    let wanted = if want > 1.0 {
                        format!("wants ≥ {want:.0}×")
                    } else {
                        "wants > 1×".to_string()
                    };
                    misses.push((format!("{name} ({speedup:.2}×, {wanted})"), entry));
                }
            }
            (c, r) => {
                let why = |cell: &Cell, tool: &str| match cell {
                    Cell::Failed { error, .. } => Some(format!("{tool} failed: {error}")),
                    Cell::NotRun => Some(format!("{tool} not run")),
                    Cell::Ok { .. } => None,
                };
                let reason = [why(c, "cairn"), why(r, "restic")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                unmeasured.push((name, reason));
            }
        }
    }
    let mut text = format!(
        "target: cairn faster than restic on every row, and at least {FIRST_BACKUP_SPEEDUP:.0}× on the first backup: {}\n",
        if misses.is_empty() && unmeasured.is_empty() && !holds.is_empty() {
            "holds on every row"
        } else {
            "does not hold on every row"
        }
    );
    // Rows not measured for one reason (a server cairn cannot use) share a line.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, reason) in &unmeasured {
        match groups.iter_mut().find(|(r, _)| r == reason) {
            Some((_, names)) => names.push(name.clone()),
            None => groups.push((reason.clone(), vec![name.clone()])),
        }
    }
    let not_measured: Vec<(String, serde_json::Value)> = groups
        .into_iter()
        .map(|(reason, names)| {
            (
                format!("{} ({reason})", names.join(", ")),
                json!({ "rows": names, "why": reason }),
            )
        })
        .collect();
    for (title, list) in [
        ("holds", &holds),
        ("misses", &misses),
        ("not measured", &not_measured),
    ] {
        if !list.is_empty() {
            text.push_str(&format!(
                "- {title}: {}\n",
                list.iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    let pick = |list: &Vec<(String, serde_json::Value)>| {
        list.iter().map(|(_, j)| j.clone()).collect::<Vec<_>>()
    };
    Verdict {
        text,
        json: json!({
            "first_backup_speedup": FIRST_BACKUP_SPEEDUP,
            "holds": pick(&holds),
            "misses": pick(&misses),
            "not_measured": pick(&not_measured),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(wall_s: f64) -> Cell {
        Cell::Ok {
            wall_s,
            cpu_s: wall_s,
            max_rss_kib: 1024,
            repo_disk_bytes: None,
            sent_bytes: Some(10),
            recv_bytes: Some(20),
            reps: 1,
        }
    }

    fn row(set: &'static str, op: Op, cairn: Cell, restic: Cell) -> Row {
        Row {
            set,
            op: op.label(),
            shows_size: false,
            cairn,
            restic,
        }
    }

    #[test]
    fn the_first_backup_wants_twice_the_speed_and_other_rows_any_gain() {
        let failed = || Cell::Failed {
            failed: 1,
            of: 1,
            error: "no s3 backend".into(),
        };
        let rows = vec![
            row("rest:", Op::Backup, ok(1.0), ok(2.0)),
            row("rest:", Op::Rebackup, ok(1.0), ok(1.0)),
            row("sftp:", Op::Backup, ok(1.0), ok(1.9)),
            row("sftp:", Op::Restore, ok(1.0), ok(1.1)),
            row("s3:", Op::Backup, failed(), ok(1.0)),
            row("s3:", Op::Restore, failed(), ok(1.0)),
        ];
        let v = targets(&rows);
        let names = |key: &str| -> Vec<String> {
            v.json[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["row"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("holds"), ["rest: backup", "sftp: restore"]);
        assert_eq!(
            names("misses"),
            ["rest: re-backup unchanged", "sftp: backup"]
        );
        let not = v.json["not_measured"].as_array().unwrap();
        assert_eq!(not.len(), 1, "one reason, one line: {not:?}");
        assert_eq!(not[0]["rows"].as_array().unwrap().len(), 2);
        assert!(v.text.contains("does not hold on every row"), "{}", v.text);
        assert!(v
            .text
            .contains("s3: backup, s3: restore (cairn failed: no s3 backend)"));

        let all_good = targets(&[row("rest:", Op::Backup, ok(1.0), ok(2.5))]);
        assert!(
            all_good.text.contains("holds on every row"),
            "{}",
            all_good.text
        );
    }
}
