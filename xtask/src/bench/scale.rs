//! `cargo xtask bench --scale`: time and peak memory as repositories grow,
//! cairn against restic (and rustic when it is installed), in one run.
//!
//! Data sets, generated on tmpfs from a fixed seed and removed after use:
//! - `files-S` and `files-L`: S and 10·S files of 300 random bytes (one
//!   data blob each), 1,000 to a directory (full scale: 10^5 and 10^6);
//! - `flat-L`: L files in one directory (a tree blob of L entries);
//! - `synthetic-N`: a repository written through cairn's format crate whose
//!   index files hold N data blobs (full scale: 10^7), cairn only.
//!
//! Rows per `files` set: backup, re-backup unchanged, ls of the snapshot,
//! restore (checked file by file), check, and a tiny backup (one new small
//! file into that repository: what loading the index costs). `flat`: backup
//! and restore. `synthetic`: the tiny backup and check.
//!
//! Printed: time and peak RSS per tool, the speedup over the best peer,
//! cairn's index cost in bytes per blob (the tiny backup's peak above its
//! peak in an empty repository, over the repository's blob count), the
//! memory goal (20 MB + 64 B per blob) per cairn row, and how each row's
//! time grows from S to L (goal: at most 11× for 10× the files). The table
//! goes to stdout and `target/bench/scale*.{md,json}`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::gen::{fill, seed_of, Kind};
use super::run::{self as measure, Measured};
use super::{data, fsutil, report, synthetic, Options, Scale};
use crate::sys;

const PASSWORD: &str = "cairn-bench-password";
const FILE_BYTES: usize = 300;
const PER_DIR: u64 = 1000;
const SEED: u64 = 0x0073_6361_6c65;
/// The memory goal: 20 MB plus 64 bytes per blob.
const GOAL_BASE: u64 = 20_000_000;
const GOAL_PER_BLOB: u64 = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ToolKind {
    Cairn,
    Restic,
    Rustic,
}

struct Tool {
    kind: ToolKind,
    bin: PathBuf,
    version: String,
}

impl Tool {
    fn name(&self) -> &'static str {
        match self.kind {
            ToolKind::Cairn => "cairn",
            ToolKind::Restic => "restic",
            ToolKind::Rustic => "rustic",
        }
    }

    fn env(&self, repo: &Path, cache: &Path) -> Vec<(&'static str, OsString)> {
        let (r, p, c) = match self.kind {
            ToolKind::Cairn => ("CAIRN_REPOSITORY", "CAIRN_PASSWORD", "CAIRN_CACHE_DIR"),
            ToolKind::Restic => ("RESTIC_REPOSITORY", "RESTIC_PASSWORD", "RESTIC_CACHE_DIR"),
            ToolKind::Rustic => ("RUSTIC_REPOSITORY", "RUSTIC_PASSWORD", "RUSTIC_CACHE_DIR"),
        };
        vec![
            (r, repo.into()),
            (p, PASSWORD.into()),
            (c, cache.join("tool").into()),
            ("XDG_CACHE_HOME", cache.join("xdg").into()),
        ]
    }

    /// The arguments of one operation; the tools differ only in restore.
    fn args(&self, op: Op, source: &Path, target: &Path) -> Vec<OsString> {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        match op {
            Op::Backup | Op::Rebackup | Op::Tiny => {
                let mut a = v(&["backup"]);
                a.push(source.into());
                a
            }
            Op::Ls => v(&["ls", "latest"]),
            Op::Check => v(&["check"]),
            Op::Restore => match self.kind {
                ToolKind::Rustic => {
                    let mut a = v(&["restore", "latest"]);
                    a.push(target.into());
                    a
                }
                _ => {
                    let mut a = v(&["restore", "latest", "--target"]);
                    a.push(target.into());
                    a
                }
            },
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Backup,
    Rebackup,
    Ls,
    Restore,
    Check,
    /// One new small file into the repository: the index load.
    Tiny,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Backup => "backup",
            Op::Rebackup => "re-backup unchanged",
            Op::Ls => "ls latest",
            Op::Restore => "restore",
            Op::Check => "check",
            Op::Tiny => "tiny backup (index load)",
        }
    }

    /// Rows the memory goal applies to (a backup into, or check of, a
    /// repository of N blobs).
    fn has_goal(self) -> bool {
        matches!(self, Op::Backup | Op::Rebackup | Op::Tiny | Op::Check)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SetShape {
    Files,
    Flat,
    Synthetic,
}

struct Set {
    name: String,
    shape: SetShape,
    /// Files, or blobs for `Synthetic`.
    count: u64,
}

impl Set {
    fn ops(&self) -> &'static [Op] {
        match self.shape {
            SetShape::Files => &[
                Op::Backup,
                Op::Rebackup,
                Op::Ls,
                Op::Restore,
                Op::Check,
                Op::Tiny,
            ],
            SetShape::Flat => &[Op::Backup, Op::Restore],
            SetShape::Synthetic => &[Op::Tiny, Op::Check],
        }
    }
}

fn sets(scale: Scale) -> Vec<Set> {
    let (small, synthetic) = match scale {
        Scale::Full => (100_000, 10_000_000),
        Scale::Quick => (10_000, 1_000_000),
        Scale::Smoke => (1_000, 100_000),
    };
    let label = |n: u64| match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    };
    vec![
        Set {
            name: format!("files-{}", label(small)),
            shape: SetShape::Files,
            count: small,
        },
        Set {
            name: format!("files-{}", label(small * 10)),
            shape: SetShape::Files,
            count: small * 10,
        },
        Set {
            name: format!("flat-{}", label(small * 10)),
            shape: SetShape::Flat,
            count: small * 10,
        },
        Set {
            name: format!("synthetic-{}", label(synthetic)),
            shape: SetShape::Synthetic,
            count: synthetic,
        },
    ]
}

/// One measured row.
#[derive(Clone, Debug, serde::Serialize)]
struct Sample {
    set: String,
    op: &'static str,
    tool: &'static str,
    rep: usize,
    /// `None`: the command failed (see `error`).
    wall_s: Option<f64>,
    cpu_s: Option<f64>,
    max_rss_kib: Option<u64>,
    error: Option<String>,
}

struct Bench {
    base: PathBuf,
    timeout: Duration,
    samples: Vec<Sample>,
    /// Blob count of cairn's repository per set, for bytes per blob.
    blobs: Vec<(String, u64)>,
    /// cairn's tiny-backup peak RSS in an empty repository (KiB).
    empty_rss_kib: Option<u64>,
}

pub fn run(opts: &Options) -> Result<()> {
    let started = Instant::now();
    let scale = opts.scale;
    let reps = opts.reps.unwrap_or(1);
    let base = opts
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/shm/cairn-bench-scale"));
    fsutil::remove(&base)?;
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let tools = tools(opts)?;
    let machine = report::Machine::read();
    let mut bench = Bench {
        base: base.clone(),
        timeout: Duration::from_secs(3600),
        samples: Vec::new(),
        blobs: Vec::new(),
        empty_rss_kib: None,
    };
    bench.empty_baseline(&tools[0])?;
    let all = sets(scale);
    for set in &all {
        bench.set(set, &tools, reps)?;
    }
    fsutil::remove(&base)?;

    let text = bench.report(&all, &tools, &machine, reps, scale);
    print!("{text}");
    let out_dir = sys::target_dir().join("bench");
    fs::create_dir_all(&out_dir)?;
    let stem = match scale {
        Scale::Full => "scale".to_string(),
        other => format!("scale-{}", other.name()),
    };
    let json = json!({
        "scale": scale.name(),
        "reps": reps,
        "duration_s": started.elapsed().as_secs_f64(),
        "machine": machine,
        "tools": tools.iter().map(|t| json!({"name": t.name(), "version": t.version, "path": t.bin})).collect::<Vec<_>>(),
        "blobs": bench.blobs.iter().map(|(s, n)| json!({"set": s, "blobs": n})).collect::<Vec<_>>(),
        "cairn_empty_repository_rss_kib": bench.empty_rss_kib,
        "samples": bench.samples,
    });
    fs::write(
        out_dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    fs::write(out_dir.join(format!("{stem}.md")), &text)?;
    eprintln!(
        "[scale] done in {:.0} s; wrote {}/{stem}.{{json,md}}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );
    if opts.strict == super::Strict::All && bench.samples.iter().any(|s| s.error.is_some()) {
        bail!("some rows failed");
    }
    Ok(())
}

/// cairn (built unless `--cairn-bin`), restic (installed if missing) and
/// rustic when it is on the PATH or in ~/.cargo/bin.
fn tools(opts: &Options) -> Result<Vec<Tool>> {
    let cairn = super::cairn_binary(opts).map_err(|e| anyhow::anyhow!("cairn: {e}"))?;
    sys::ensure_packages(&["restic"])?;
    let restic = sys::find_in_path("restic").context("restic is not installed")?;
    let mut tools = vec![
        Tool {
            kind: ToolKind::Cairn,
            version: super::version_of(&cairn, &["--version"]),
            bin: cairn,
        },
        Tool {
            kind: ToolKind::Restic,
            version: super::version_of(&restic, &["version"]),
            bin: restic,
        },
    ];
    let rustic = sys::find_in_path("rustic").or_else(|| {
        let p = PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/rustic");
        sys::is_executable(&p).then_some(p)
    });
    match rustic {
        Some(bin) => tools.push(Tool {
            kind: ToolKind::Rustic,
            version: super::version_of(&bin, &["--version"]),
            bin,
        }),
        None => eprintln!(
            "[scale] rustic is not installed: its columns stay empty (`cargo install rustic-rs` adds it)"
        ),
    }
    Ok(tools)
}

impl Bench {
    fn repo(&self, tool: &Tool) -> PathBuf {
        self.base.join("repo").join(tool.name())
    }

    fn cache(&self, tool: &Tool) -> PathBuf {
        self.base.join("cache").join(tool.name())
    }

    /// Runs one command of `tool`; `Err` carries the stderr tail.
    fn exec(&self, tool: &Tool, args: Vec<OsString>) -> Result<Measured> {
        let log = self.base.join(format!("{}.stderr", tool.name()));
        let spec = measure::Spec {
            program: &tool.bin,
            args: args.clone(),
            env: tool.env(&self.repo(tool), &self.cache(tool)),
            stdin_file: None,
            stderr_log: log.clone(),
            timeout: self.timeout,
        };
        let (outcome, m) = measure::run(&spec)?;
        if !outcome.success() {
            let tail = measure::tail(&log, 6);
            let line: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
            bail!(
                "`{} {}` failed ({}): {}",
                tool.name(),
                line.join(" "),
                outcome.describe(),
                tail.replace('\n', " | ")
            );
        }
        Ok(m)
    }

    fn fresh_repo(&self, tool: &Tool) -> Result<()> {
        fsutil::remove(&self.repo(tool))?;
        fsutil::remove(&self.cache(tool))?;
        fs::create_dir_all(self.base.join("repo"))?;
        self.exec(tool, vec!["init".into()]).map(|_| ())
    }

    /// A directory holding one new small file, for the tiny backup.
    fn tiny_source(&self, n: u64) -> Result<PathBuf> {
        let dir = self.base.join("tiny");
        fsutil::remove(&dir)?;
        fs::create_dir_all(&dir)?;
        let mut buf = vec![0u8; FILE_BYTES];
        fill(Kind::Random, seed_of(SEED ^ 0x7469_6e79, n), &mut buf);
        fs::write(dir.join("tiny.bin"), &buf)?;
        Ok(dir)
    }

    /// cairn's tiny backup into an empty repository: the base of bytes per blob.
    fn empty_baseline(&mut self, cairn: &Tool) -> Result<()> {
        self.fresh_repo(cairn)?;
        let mut peaks = Vec::new();
        for i in 0..3 {
            let src = self.tiny_source(1_000_000 + i)?;
            let m = self.exec(cairn, cairn.args(Op::Tiny, &src, &src))?;
            peaks.push(m.max_rss_kib);
        }
        peaks.sort_unstable();
        self.empty_rss_kib = Some(peaks[1]);
        eprintln!(
            "[scale] cairn's tiny backup into an empty repository: peak {}",
            report::bytes(peaks[1] * 1024)
        );
        fsutil::remove(&self.repo(cairn))?;
        Ok(())
    }

    fn set(&mut self, set: &Set, tools: &[Tool], reps: usize) -> Result<()> {
        let source = self.base.join("data").join(&set.name);
        if set.shape != SetShape::Synthetic {
            let t = Instant::now();
            generate(&source, set)?;
            fsutil::read_all(&source)?;
            eprintln!(
                "[scale] {}: {} files generated in {:.1} s",
                set.name,
                report::thousands(set.count),
                t.elapsed().as_secs_f64()
            );
        }
        for rep in 0..reps {
            // Alternate the order of the tools between repetitions.
            for i in 0..tools.len() {
                let tool = &tools[(i + rep) % tools.len()];
                if set.shape == SetShape::Synthetic && tool.kind != ToolKind::Cairn {
                    continue;
                }
                self.sequence(set, tool, &source, rep)?;
            }
        }
        fsutil::remove(&source)?;
        Ok(())
    }

    fn sequence(&mut self, set: &Set, tool: &Tool, source: &Path, rep: usize) -> Result<()> {
        eprintln!("[scale] {} rep {}: {}", set.name, rep + 1, tool.name());
        let mut blocked = self.fresh_repo(tool).err().map(|e| format!("{e:#}"));
        if blocked.is_none() && set.shape == SetShape::Synthetic {
            let t = Instant::now();
            if let Err(e) = synthetic::fill(&self.repo(tool), PASSWORD, set.count, SEED) {
                blocked = Some(format!("writing the synthetic repository: {e:#}"));
            } else {
                eprintln!(
                    "[scale]   wrote {} blobs in {:.1} s",
                    report::thousands(set.count),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        let target = self.base.join("restore");
        for (k, &op) in set.ops().iter().enumerate() {
            let result = match &blocked {
                Some(why) => Err(anyhow::anyhow!("{why}")),
                None => self.operation(tool, op, source, &target, (rep * 10 + k) as u64),
            };
            let sample = match result {
                Ok(m) => {
                    eprintln!(
                        "[scale]   {:<7} {:<26} {:>8.2} s  cpu {:>7.2} s  peak {:>9}",
                        tool.name(),
                        op.label(),
                        m.wall.as_secs_f64(),
                        (m.user + m.sys).as_secs_f64(),
                        report::bytes(m.max_rss_kib * 1024)
                    );
                    Sample {
                        set: set.name.clone(),
                        op: op.label(),
                        tool: tool.name(),
                        rep,
                        wall_s: Some(m.wall.as_secs_f64()),
                        cpu_s: Some((m.user + m.sys).as_secs_f64()),
                        max_rss_kib: Some(m.max_rss_kib),
                        error: None,
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    eprintln!(
                        "[scale]   {:<7} {:<26} FAILED: {msg}",
                        tool.name(),
                        op.label()
                    );
                    if op == Op::Backup {
                        blocked = Some(format!("the first backup failed: {msg}"));
                    }
                    Sample {
                        set: set.name.clone(),
                        op: op.label(),
                        tool: tool.name(),
                        rep,
                        wall_s: None,
                        cpu_s: None,
                        max_rss_kib: None,
                        error: Some(msg),
                    }
                }
            };
            self.samples.push(sample);
        }
        if tool.kind == ToolKind::Cairn && blocked.is_none() && rep == 0 {
            let blobs = self.count_blobs(tool)?;
            self.blobs.push((set.name.clone(), blobs));
        }
        fsutil::remove(&self.repo(tool))?;
        fsutil::remove(&target)?;
        Ok(())
    }

    fn operation(
        &self,
        tool: &Tool,
        op: Op,
        source: &Path,
        target: &Path,
        n: u64,
    ) -> Result<Measured> {
        match op {
            Op::Tiny => {
                let src = self.tiny_source(n)?;
                self.exec(tool, tool.args(op, &src, target))
            }
            Op::Restore => {
                fsutil::remove(target)?;
                fs::create_dir_all(target)?;
                let m = self.exec(tool, tool.args(op, source, target))?;
                // Each tool restores the absolute path below the target;
                // the check does not depend on where the files sit.
                fsutil::check_restored(source, target)?;
                fsutil::remove(target)?;
                Ok(m)
            }
            _ => self.exec(tool, tool.args(op, source, target)),
        }
    }

    /// The number of blobs in cairn's repository (untimed).
    fn count_blobs(&self, cairn: &Tool) -> Result<u64> {
        let out = std::process::Command::new(&cairn.bin)
            .args(["list", "blobs"])
            .envs(cairn.env(&self.repo(cairn), &self.cache(cairn)))
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running cairn list blobs")?;
        if !out.status.success() {
            bail!("cairn list blobs failed: {}", out.status);
        }
        Ok(out.stdout.iter().filter(|&&b| b == b'\n').count() as u64)
    }

    fn median(&self, set: &str, op: Op, tool: &str) -> Option<(f64, u64)> {
        let mut v: Vec<(f64, u64)> = self
            .samples
            .iter()
            .filter(|s| s.set == set && s.op == op.label() && s.tool == tool)
            .filter_map(|s| Some((s.wall_s?, s.max_rss_kib?)))
            .collect();
        if v.is_empty()
            || self
                .samples
                .iter()
                .any(|s| s.set == set && s.op == op.label() && s.tool == tool && s.error.is_some())
        {
            return None;
        }
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let wall = v[v.len() / 2].0;
        let mut rss: Vec<u64> = v.iter().map(|x| x.1).collect();
        rss.sort_unstable();
        Some((wall, rss[rss.len() / 2]))
    }

    fn report(
        &self,
        sets: &[Set],
        tools: &[Tool],
        machine: &report::Machine,
        reps: usize,
        scale: Scale,
    ) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "cairn bench --scale ({} scale): {} repetition{}, median; data and repositories on {}",
            scale.name(),
            reps,
            if reps == 1 { "" } else { "s" },
            self.base.display()
        );
        let _ = writeln!(
            t,
            "machine: {} × {}, {} MiB RAM, Linux {}",
            machine.nproc, machine.cpu, machine.mem_total_mib, machine.kernel
        );
        for tool in tools {
            let _ = writeln!(t, "{}: {}", tool.name(), tool.version);
        }
        let _ = writeln!(
            t,
            "files-* sets: files of {FILE_BYTES} random bytes, {PER_DIR} to a directory; flat-*: all in one directory; synthetic-*: an index of N blobs written through the format crate (cairn only)"
        );
        let _ = writeln!(
            t,
            "time (peak RSS); speedup = best peer's time ÷ cairn's; memory goal = 20 MB + 64 B × blobs, for backups into and check of the repository\n"
        );
        let peers: Vec<&Tool> = tools.iter().filter(|t| t.kind != ToolKind::Cairn).collect();
        let _ = write!(t, "| data set | operation | cairn |");
        for p in &peers {
            let _ = write!(t, " {} |", p.name());
        }
        let _ = writeln!(t, " speedup | cairn memory goal |");
        let _ = write!(t, "|---|---|---|");
        for _ in &peers {
            let _ = write!(t, "---|");
        }
        let _ = writeln!(t, "---|---|");
        let cell = |m: Option<(f64, u64)>| match m {
            Some((w, rss)) => format!("{} ({})", report::secs(w), report::bytes(rss * 1024)),
            None => "failed".to_string(),
        };
        for set in sets {
            let blobs = self.blobs.iter().find(|(s, _)| *s == set.name).map(|x| x.1);
            for &op in set.ops() {
                let c = self.median(&set.name, op, "cairn");
                let _ = write!(t, "| {} | {} | {} |", set.name, op.label(), cell(c));
                let mut best: Option<f64> = None;
                for p in &peers {
                    if set.shape == SetShape::Synthetic {
                        let _ = write!(t, " – |");
                        continue;
                    }
                    let m = self.median(&set.name, op, p.name());
                    if let Some((w, _)) = m {
                        best = Some(best.map_or(w, |b: f64| b.min(w)));
                    }
                    let _ = write!(t, " {} |", cell(m));
                }
                let speed = match (best, c) {
                    (Some(b), Some((w, _))) if w > 0.0 => format!("{:.2}×", b / w),
                    _ => "–".into(),
                };
                let goal = match (op.has_goal(), blobs, c) {
                    (true, Some(n), Some((_, rss))) => {
                        let limit = GOAL_BASE + GOAL_PER_BLOB * n;
                        let peak = rss * 1024;
                        format!(
                            "{} ≤ {}: {}",
                            report::bytes(peak),
                            report::bytes(limit),
                            if peak <= limit { "holds" } else { "misses" }
                        )
                    }
                    _ => "–".into(),
                };
                let _ = writeln!(t, " {speed} | {goal} |");
            }
        }
        // Index cost per blob.
        let _ = writeln!(t);
        if let Some(empty) = self.empty_rss_kib {
            let _ = writeln!(
                t,
                "cairn's index in memory (tiny backup's peak above its {} in an empty repository, per blob):",
                report::bytes(empty * 1024)
            );
            for (name, n) in &self.blobs {
                if let Some((_, rss)) = self.median(name, Op::Tiny, "cairn") {
                    let above = rss.saturating_sub(empty) * 1024;
                    let _ = writeln!(
                        t,
                        "- {name}: {} blobs, {} B per blob",
                        report::thousands(*n),
                        above / (*n).max(1)
                    );
                }
            }
        }
        // Growth from S to L files.
        let files: Vec<&Set> = sets.iter().filter(|s| s.shape == SetShape::Files).collect();
        if let [small, large] = files[..] {
            let _ = writeln!(
                t,
                "\ntime growth from {} to {} ({}× the files; goal for cairn: at most 11×):\n",
                small.name,
                large.name,
                large.count / small.count
            );
            let _ = write!(t, "| operation |");
            for tool in tools {
                let _ = write!(t, " {} |", tool.name());
            }
            let _ = writeln!(t);
            let _ = writeln!(t, "|---|{}", "---|".repeat(tools.len()));
            for &op in small.ops() {
                let _ = write!(t, "| {} |", op.label());
                for tool in tools {
                    let g = match (
                        self.median(&small.name, op, tool.name()),
                        self.median(&large.name, op, tool.name()),
                    ) {
                        (Some((a, _)), Some((b, _))) if a > 0.0 => format!("{:.1}×", b / a),
                        _ => "–".into(),
                    };
                    let _ = write!(t, " {g} |");
                }
                let _ = writeln!(t);
            }
        }
        t
    }
}

/// Writes a data set: `count` files of random bytes, 1,000 to a directory
/// (or all in one for `Flat`), each file's bytes from the seed and its
/// number alone.
fn generate(dir: &Path, set: &Set) -> Result<()> {
    fsutil::remove(dir)?;
    fs::create_dir_all(dir)?;
    let flat = set.shape == SetShape::Flat;
    let seed = seed_of(SEED, set.count);
    let per_job = 5_000u64;
    let jobs: Vec<data::Job> = (0..set.count)
        .step_by(per_job as usize)
        .map(|start| {
            let dir = dir.to_path_buf();
            let end = (start + per_job).min(set.count);
            Box::new(move |buf: &mut Vec<u8>| -> Result<()> {
                for i in start..end {
                    let path = if flat {
                        dir.join(format!("f{i:08}"))
                    } else {
                        let sub = dir.join(format!("d{:05}", i / PER_DIR));
                        if i % PER_DIR == 0 || i == start {
                            fs::create_dir_all(&sub)?;
                        }
                        sub.join(format!("f{i:08}"))
                    };
                    data::write_file(&path, FILE_BYTES, Kind::Random, seed_of(seed, i), buf)?;
                }
                Ok(())
            }) as data::Job
        })
        .collect();
    data::run_jobs(jobs)
}
