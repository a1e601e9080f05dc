//! `cargo xtask bench --mount`: `cairn mount` against `restic mount` on the
//! same data, in one run.
//!
//! Data: the `tree` set (many files of every size) and the `stdin` set's
//! single large file (2 GiB at full scale), backed up by each tool into a
//! fresh repository of its own (untimed). Then, for each repetition and
//! tool (alternating which goes first), each operation runs on a fresh
//! mount, so every row starts from cold kernel and tool caches:
//!
//! | row | what is timed |
//! |---|---|
//! | mount ready | from starting the tool to the mount answering (index and snapshot loading) |
//! | find + stat | walk the backed-up tree under `snapshots/latest/`, `lstat` every entry (`find \| wc -l` with a stat each) |
//! | cat all | read every file of the tree once, one after another (`cat`) |
//! | sequential read | read the large file start to end in 1 MiB reads |
//! | 1,000 random 4 KiB reads | `pread`s at random 4 KiB-aligned offsets of the large file |
//!
//! Reported: the median wall time per row and tool, restic ÷ cairn, and
//! the mount process's peak RSS (VmHWM) at the end of the row. A row whose
//! bytes or entry count differ from the source is marked failed. The
//! table goes to stdout, the figures to `target/bench/mount*.json` and
//! `.md`.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{data, fsutil, report, Options, Scale, SetKind};
use crate::sys;

const OPS: [&str; 4] = [
    "find + stat",
    "cat all",
    "sequential read",
    "1,000 random 4 KiB reads",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Cairn,
    Restic,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Cairn => "cairn",
            Tool::Restic => "restic",
        }
    }
}

struct Setup {
    cairn: PathBuf,
    restic: PathBuf,
    base: PathBuf,
    password: &'static str,
}

impl Setup {
    fn repo(&self, tool: Tool) -> PathBuf {
        self.base.join("repo").join(tool.name())
    }

    fn command(&self, tool: Tool, args: &[&str]) -> Command {
        let (bin, repo_var, pw_var) = match tool {
            Tool::Cairn => (&self.cairn, "CAIRN_REPOSITORY", "CAIRN_PASSWORD"),
            Tool::Restic => (&self.restic, "RESTIC_REPOSITORY", "RESTIC_PASSWORD"),
        };
        let mut c = Command::new(bin);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("RESTIC_") || k.starts_with("CAIRN_") {
                c.env_remove(&key);
            }
        }
        c.args(args)
            .env(repo_var, self.repo(tool))
            .env(pw_var, self.password)
            .env("RESTIC_CACHE_DIR", self.base.join("cache"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, tool: Tool, args: &[&str]) -> Result<()> {
        let mut c = self.command(tool, args);
        let out = c
            .output()
            .with_context(|| format!("running {}", sys::describe(&c)))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}):\n{}",
                sys::describe(&c),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

fn mounted(dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .map(|info| info.lines().any(|l| l.split(' ').nth(4) == Some(&*dir)))
        .unwrap_or(false)
}

/// Peak RSS of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// A running mount; unmounted (SIGINT, as Ctrl-C) when dropped.
struct Mount {
    child: Child,
    dir: PathBuf,
}

impl Mount {
    fn start(setup: &Setup, tool: Tool, dir: &Path, log: &Path) -> Result<(Mount, Duration)> {
        fs::create_dir_all(dir)?;
        let d = dir.to_str().context("mountpoint path is not UTF-8")?;
        let mut c = setup.command(tool, &["mount", d]);
        c.stdout(Stdio::null()).stderr(fs::File::create(log)?);
        let started = Instant::now();
        let child = c
            .spawn()
            .with_context(|| format!("starting {}", sys::describe(&c)))?;
        let mut m = Mount {
            child,
            dir: dir.to_path_buf(),
        };
        // Ready when the snapshot listing answers.
        let probe = dir.join("snapshots/latest");
        while !(mounted(dir) && probe.exists()) {
            if let Some(st) = m.child.try_wait()? {
                bail!(
                    "{} mount exited ({st}) before mounting:\n{}",
                    tool.name(),
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("{} mount not ready after 600 s", tool.name());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((m, started.elapsed()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if mounted(&self.dir) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
        }
    }
}

/// Where an absolute source path appears in a mount.
fn in_mount(mnt: &Path, source: &Path) -> PathBuf {
    mnt.join("snapshots/latest")
        .join(source.strip_prefix("/").unwrap_or(source))
}

/// One operation on a mounted snapshot; returns what it counted (entries
/// or bytes), to compare with the source.
fn operation(op: &str, mnt: &Path, tree: &Path, big: &Path) -> Result<u64> {
    match op {
        "find + stat" => {
            let mut n = 0u64;
            fsutil::walk(&in_mount(mnt, tree), &mut |_, _| n += 1)?;
            Ok(n)
        }
        "cat all" => fsutil::read_all(&in_mount(mnt, tree)),
        "sequential read" => fsutil::read_all(&in_mount(mnt, big)),
        _ => {
            let f = fs::File::open(in_mount(mnt, big))?;
            let len = f.metadata()?.len();
            let mut rng = super::gen::Rng::new(0x4b1d);
            let mut buf = vec![0u8; 4096];
            let mut total = 0;
            for _ in 0..1000 {
                let off = (rng.next_u64() % (len / 4096).max(1)) * 4096;
                total += f.read_at(&mut buf, off)? as u64;
            }
            Ok(total)
        }
    }
}

/// What an operation must count on the source.
fn expected(op: &str, tree: &Path, big: &Path) -> Result<u64> {
    match op {
        "find + stat" => {
            let mut n = 0u64;
            fsutil::walk(tree, &mut |_, _| n += 1)?;
            Ok(n)
        }
        "cat all" => Ok(fsutil::usage(tree)?.bytes),
        "sequential read" => Ok(fs::metadata(big)?.len()),
        _ => Ok(1000 * 4096),
    }
}

#[derive(Default, Clone)]
struct Cell {
    secs: Vec<f64>,
    rss: Vec<u64>,
    failed: Option<String>,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    (!v.is_empty()).then(|| v[v.len() / 2])
}

pub fn run(opts: &Options) -> Result<()> {
    let scale = opts.scale;
    let reps = opts
        .reps
        .unwrap_or(if scale == Scale::Smoke { 1 } else { 3 });
    let base = opts
        .dir
        .clone()
        .unwrap_or_else(super::default_base)
        .join("mount");
    for d in ["repo", "cache", "mnt", "logs"] {
        fsutil::remove(&base.join(d))?;
    }
    fs::create_dir_all(base.join("logs"))?;
    sys::ensure_packages(&["restic", "fuse3"])?;
    if !Path::new("/dev/fuse").exists() {
        bail!("no /dev/fuse on this machine: FUSE cannot be benchmarked here");
    }
    let setup = Setup {
        cairn: super::cairn_binary(opts).map_err(|e| anyhow::anyhow!("cairn: {e}"))?,
        restic: std::env::var_os("RESTIC_BIN")
            .map(PathBuf::from)
            .or_else(|| sys::find_in_path("restic"))
            .context("restic is not installed")?,
        base: base.canonicalize()?,
        password: "bench-password",
    };
    let data_root = opts
        .dir
        .clone()
        .unwrap_or_else(super::default_base)
        .join("data")
        .join(scale.name());
    let tree = data::prepare(SetKind::Tree, scale, &data_root)?;
    let dump = data::prepare(SetKind::Stdin, scale, &data_root)?;
    let big = dump
        .stdin_file
        .clone()
        .context("the stdin data set has no file")?;
    let tree_dir = tree.dir.canonicalize()?;
    let big = big.canonicalize()?;
    let big_len = fs::metadata(&big)?.len();
    eprintln!(
        "[mount] data: tree {} files, {}; large file {}",
        report::thousands(tree.usage.files),
        report::bytes(tree.usage.bytes),
        report::bytes(big_len)
    );
    let big_str = big.to_str().context("path is not UTF-8")?;
    let tree_str = tree_dir.to_str().context("path is not UTF-8")?;
    for tool in [Tool::Cairn, Tool::Restic] {
        let t = Instant::now();
        setup.run(tool, &["init"])?;
        setup.run(tool, &["backup", "-q", tree_str, big_str])?;
        eprintln!(
            "[mount] {}: repository ready ({:.1} s, untimed)",
            tool.name(),
            t.elapsed().as_secs_f64()
        );
    }
    let mut expect = Vec::new();
    for op in OPS {
        expect.push(expected(op, &tree_dir, &big)?);
    }

    let rows: Vec<&str> = std::iter::once("mount ready").chain(OPS).collect();
    let mut cells = vec![[Cell::default(), Cell::default()]; rows.len()];
    let mnt = setup.base.join("mnt");
    for rep in 0..reps {
        let order = if rep % 2 == 0 {
            [Tool::Cairn, Tool::Restic]
        } else {
            [Tool::Restic, Tool::Cairn]
        };
        for tool in order {
            let col = if tool == Tool::Cairn { 0 } else { 1 };
            for (i, op) in OPS.iter().enumerate() {
                let log = setup
                    .base
                    .join("logs")
                    .join(format!("{}-{rep}-{i}.log", tool.name()));
                let (m, ready) = match Mount::start(&setup, tool, &mnt, &log) {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("[mount] {}: {e:#}", tool.name());
                        cells[i + 1][col].failed = Some(format!("{e:#}"));
                        continue;
                    }
                };
                cells[0][col].secs.push(ready.as_secs_f64());
                let t = Instant::now();
                let r = operation(op, &mnt, &tree_dir, &big);
                let secs = t.elapsed().as_secs_f64();
                let rss = peak_rss(m.child.id());
                drop(m);
                let cell = &mut cells[i + 1][col];
                match r {
                    Ok(n) if n == expect[i] => {
                        cell.secs.push(secs);
                        cell.rss.push(rss);
                        eprintln!(
                            "[mount] rep {}/{reps} {:>6} {op}: {secs:.2} s, peak RSS {}",
                            rep + 1,
                            tool.name(),
                            report::bytes(rss)
                        );
                    }
                    Ok(n) => {
                        cell.failed = Some(format!("counted {n}, the source has {}", expect[i]))
                    }
                    Err(e) => cell.failed = Some(format!("{e:#}")),
                }
                if let Some(why) = &cell.failed {
                    eprintln!("[mount] {} {op} failed: {why}", tool.name());
                }
            }
        }
    }

    let machine = report::Machine::read();
    let mut text = format!(
        "cairn mount vs restic mount ({} scale): median of {reps}, tools alternating, a fresh mount per row; data and repositories in {}\nmachine: {} × {}, {} MiB RAM, Linux {}\ndata: tree {} files {}; large file {}\nspeedup = restic time ÷ cairn time (above 1: cairn faster); RSS = the mount process's peak\n\n",
        scale.name(),
        setup.base.display(),
        machine.nproc,
        machine.cpu,
        machine.mem_total_mib,
        machine.kernel,
        report::thousands(tree.usage.files),
        report::bytes(tree.usage.bytes),
        report::bytes(big_len),
    );
    text.push_str("| operation | cairn | restic | speedup | cairn peak RSS | restic peak RSS |\n");
    text.push_str("|---|---|---|---|---|---|\n");
    let mut json_rows = Vec::new();
    for (row, [c, r]) in rows.iter().zip(&cells) {
        let show = |cell: &Cell| match (&cell.failed, median(&cell.secs)) {
            (Some(_), _) => "failed".to_string(),
            (None, Some(s)) => format!("{s:.2} s"),
            (None, None) => "–".to_string(),
        };
        let rss = |cell: &Cell| {
            cell.rss
                .iter()
                .max()
                .map(|b| report::bytes(*b))
                .unwrap_or_else(|| "–".into())
        };
        let speedup = match (median(&c.secs), median(&r.secs), &c.failed, &r.failed) {
            (Some(a), Some(b), None, None) if a > 0.0 => format!("{:.2}×", b / a),
            _ => "–".to_string(),
        };
        text.push_str(&format!(
            "| {row} | {} | {} | {speedup} | {} | {} |\n",
            show(c),
            show(r),
            rss(c),
            rss(r)
        ));
        json_rows.push(json!({
            "operation": row,
            "cairn": { "seconds": c.secs, "peak_rss": c.rss, "failed": c.failed },
            "restic": { "seconds": r.secs, "peak_rss": r.rss, "failed": r.failed },
        }));
    }
    print!("{text}");
    let out_dir = sys::target_dir().join("bench");
    fs::create_dir_all(&out_dir)?;
    let stem = match scale {
        Scale::Full => "mount".to_string(),
        s => format!("mount-{}", s.name()),
    };
    fs::write(
        out_dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&json!({
            "scale": scale.name(),
            "reps": reps,
            "machine": machine,
            "tree_files": tree.usage.files,
            "tree_bytes": tree.usage.bytes,
            "large_file_bytes": big_len,
            "rows": json_rows,
        }))?,
    )?;
    fs::write(out_dir.join(format!("{stem}.md")), &text)?;
    eprintln!("[mount] wrote {}/{stem}.{{json,md}}", out_dir.display());
    for d in ["repo", "cache", "mnt"] {
        fsutil::remove(&setup.base.join(d))?;
    }
    let failed = cells.iter().flatten().any(|c| c.failed.is_some());
    if failed && opts.strict != super::Strict::No {
        bail!("some rows failed");
    }
    Ok(())
}
