//! `cargo xtask bench`: cairn against its peers on the same generated
//! data, in the same run: restic, and rustic with `--peers restic,rustic`.
//!
//! Flow: build cairn (release), install restic if missing (and rustic, if
//! it is asked for and missing); generate or reuse each data set on tmpfs;
//! read it once so the page cache is warm; then for each repetition run
//! the data set's operation sequence once per tool, rotating which tool
//! goes first, each sequence on a fresh repository. One table goes to
//! stdout (medians, the best peer of each row and cairn's speedup against
//! it), every raw repetition of every tool to `target/bench/results*.json`
//! and `.csv`, progress to stderr.
//!
//! `--rest-load` (`rest_load`), `--backends` (`backends`), `--mount`
//! (`mount`), `--databases` (`databases`) and `--scale` (`scale`) run
//! other benchmarks instead, sharing the data, tools and server launchers
//! (`servers`).
//!
//! A failing command never stops the run: its row is recorded as failed,
//! the tool's stderr tail is printed once per (tool, operation), and what
//! depends on it (everything after a failed `init` or first backup) is
//! recorded as skipped.

mod backends;
mod data;
mod databases;
pub(crate) mod fsutil;
pub(crate) mod gen;
mod mount;
mod mutate;
mod report;
mod rest_load;
mod run;
mod scale;
mod sequence;
mod servers;
mod synthetic;

use std::collections::HashSet;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::sys;
use report::Cell;
use sequence::{Bench, Contender, Op, Program, Tool, ToolKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Full,
    Quick,
    Smoke,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Quick => "quick",
            Scale::Smoke => "smoke",
        }
    }

    /// A command running longer than this is killed and recorded as failed.
    fn timeout(self) -> Duration {
        Duration::from_secs(match self {
            Scale::Full => 1800,
            Scale::Quick => 600,
            Scale::Smoke => 120,
        })
    }
}

/// Which failed rows make the whole command fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strict {
    No,
    All,
}

pub struct Options {
    pub scale: Scale,
    pub reps: Option<usize>,
    pub only: Option<Vec<SetKind>>,
    pub dir: Option<PathBuf>,
    pub cairn_bin: Option<PathBuf>,
    pub debug: bool,
    pub strict: Strict,
    /// Remove the generated data at the end instead of keeping it cached.
    pub clean: bool,
    /// Run the REST load test (`rest_load`) instead of the data sets.
    pub rest_load: bool,
    /// Run `cairn mount` against `restic mount` (`mount`) instead.
    pub mount: bool,
    /// Run cairn and restic against network servers (`backends`) instead.
    pub backends: bool,
    /// Measure what daily database dumps add (`databases`) instead.
    pub databases: bool,
    /// The tools cairn is compared with in the main bench (`--peers`).
    pub peers: Vec<Peer>,
    /// Measure time and memory as repositories grow (`scale`) instead.
    pub scaling: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scale: Scale::Full,
            reps: None,
            only: None,
            dir: None,
            cairn_bin: None,
            debug: false,
            strict: Strict::No,
            clean: false,
            rest_load: false,
            mount: false,
            backends: false,
            databases: false,
            peers: vec![Peer::Restic],
            scaling: false,
        }
    }
}

/// A tool the main bench compares cairn with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Restic,
    /// Optional: `cargo install rustic-rs` compiles for about 16 minutes,
    /// so it is installed only when `--peers` asks for it.
    Rustic,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Restic, Peer::Rustic];

    pub fn name(self) -> &'static str {
        Program::from(self).name()
    }

    pub fn from_name(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetKind {
    Tree,
    Big,
    Many,
    Stdin,
}

impl SetKind {
    const ALL: [SetKind; 4] = [SetKind::Tree, SetKind::Big, SetKind::Many, SetKind::Stdin];

    pub fn name(self) -> &'static str {
        match self {
            SetKind::Tree => "tree",
            SetKind::Big => "big",
            SetKind::Many => "many",
            SetKind::Stdin => "stdin",
        }
    }

    pub fn from_name(name: &str) -> Option<SetKind> {
        SetKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The operations measured on this set, in the order they run.
    fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            SetKind::Tree => &[Backup, Rebackup, MutateBackup, Restore, Check, ForgetPrune],
            SetKind::Big => &[Backup, Rebackup, Restore, Check],
            SetKind::Many => &[Backup, Rebackup, Restore, Ls],
            SetKind::Stdin => &[Backup, Rebackup],
        }
    }
}

/// Everything lives under one base directory (tmpfs by default).
struct Dirs {
    base: PathBuf,
    /// Generated data sets of this scale, kept between runs.
    data: PathBuf,
    /// The working copy of `tree` that `mutate` changes.
    work: PathBuf,
    repos: PathBuf,
    restore: PathBuf,
    cache: PathBuf,
    logs: PathBuf,
}

impl Dirs {
    fn new(base: &Path, scale: Scale) -> Dirs {
        Dirs {
            base: base.to_path_buf(),
            data: base.join("data").join(scale.name()),
            work: base.join("work"),
            repos: base.join("repo"),
            restore: base.join("restore"),
            cache: base.join("cache"),
            logs: base.join("logs"),
        }
    }

    fn repo(&self, tool: &str) -> PathBuf {
        self.repos.join(tool)
    }

    /// Removes what runs leave behind; keeps the generated data.
    fn clean_scratch(&self) -> Result<()> {
        for dir in [&self.work, &self.repos, &self.restore, &self.cache] {
            fsutil::remove(dir)?;
        }
        Ok(())
    }
}

fn default_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("cairn-bench")
    } else {
        eprintln!("[bench] warning: no /dev/shm; data goes under target/bench/data (timings will be noisier)");
        sys::target_dir().join("bench/data")
    }
}

pub fn run(opts: Options) -> Result<()> {
    if [
        opts.rest_load,
        opts.mount,
        opts.backends,
        opts.databases,
        opts.scaling,
    ]
    .into_iter()
    .filter(|&m| m)
    .count()
        > 1
    {
        bail!("--rest-load, --mount, --backends, --databases and --scale are separate benchmarks; give one at a time");
    }
    if (opts.rest_load || opts.mount || opts.backends || opts.databases || opts.scaling)
        && opts.peers != [Peer::Restic]
    {
        bail!("--peers applies to the main bench only; --rest-load, --mount, --backends, --databases and --scale run their own tools (--scale adds rustic when it is installed)");
    }
    if opts.peers.is_empty() {
        bail!("--peers needs at least one peer (known: restic, rustic)");
    }
    if opts.rest_load {
        return rest_load::run(&opts);
    }
    if opts.mount {
        return mount::run(&opts);
    }
    if opts.backends {
        return backends::run(&opts);
    }
    if opts.databases {
        return databases::run(&opts);
    }
    if opts.scaling {
        return scale::run(&opts);
    }
    let started_at = unix_now();
    let started = Instant::now();
    let scale = opts.scale;
    let reps = opts
        .reps
        .unwrap_or(if scale == Scale::Smoke { 1 } else { 3 });
    let sets: Vec<SetKind> = opts.only.clone().unwrap_or_else(|| SetKind::ALL.to_vec());
    let base = opts.dir.clone().unwrap_or_else(default_base);
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let base = base.canonicalize()?;
    let _lock = lock(&base)?;
    let dirs = Dirs::new(&base, scale);
    dirs.clean_scratch()?;
    fs::create_dir_all(&dirs.logs)?;
    check_space(&base, scale);

    let tools = contenders(&opts)?;
    let machine = report::Machine::read();

    let mut bench = Bench {
        dirs,
        timeout: scale.timeout(),
        samples: Vec::new(),
        reported: HashSet::new(),
    };
    let mut set_info = Vec::new();
    for &set in &sets {
        let prepared = data::prepare(set, scale, &bench.dirs.data)?;
        let t = Instant::now();
        let read = fsutil::read_all(&prepared.dir)?;
        eprintln!(
            "[bench] {}: {} files, {}; page cache warmed (read once, untimed, {:.1} s)",
            set.name(),
            report::thousands(prepared.usage.files),
            report::bytes(read),
            t.elapsed().as_secs_f64()
        );
        set_info.push(json!({
            "name": set.name(),
            "files": prepared.usage.files,
            "bytes": prepared.usage.bytes,
            "path": prepared.dir,
        }));
        for rep in 0..reps {
            // Rotate which tool goes first, so drift favours none.
            for i in 0..tools.len() {
                let tool = &tools[(rep + i) % tools.len()];
                bench.sequence(set, &prepared, tool, rep, reps)?;
            }
        }
    }
    bench.dirs.clean_scratch()?;
    if opts.clean {
        fsutil::remove(&bench.dirs.data)?;
        eprintln!(
            "[bench] removed the generated data ({})",
            bench.dirs.data.display()
        );
    } else if let Ok(usage) = fsutil::usage(&bench.dirs.data) {
        eprintln!(
            "[bench] generated data kept for the next run: {} in {} (on tmpfs this is RAM; `--clean` removes it)",
            report::bytes(usage.disk_bytes),
            bench.dirs.data.display()
        );
    }

    // Report.
    let peers: Vec<&'static str> = tools[1..].iter().map(Contender::name).collect();
    let rows = report::summarize_peers(&bench.samples, &peers, Op::shows_size);
    let base_display = bench.dirs.base.display().to_string();
    let on_tmpfs = if base_display.starts_with("/dev/shm") {
        " (tmpfs)"
    } else {
        ""
    };
    let mut text = String::new();
    text.push_str(&format!(
        "cairn bench ({} scale): median of {reps} repetition{}, tools taking turns to go first; page cache warm (every data set read once before timing); data and repositories in {base_display}{on_tmpfs}\n",
        scale.name(),
        if reps == 1 { "" } else { "s" },
    ));
    text.push_str(&format!(
        "machine: {} × {}, {} MiB RAM, Linux {}\n",
        machine.nproc, machine.cpu, machine.mem_total_mib, machine.kernel
    ));
    for tool in &tools {
        text.push_str(&format!("{}: {}\n", tool.name(), tool.version));
    }
    let sets_line: Vec<String> = set_info
        .iter()
        .map(|s| {
            let files = report::thousands(s["files"].as_u64().unwrap_or(0));
            format!(
                "{} {files} files {}",
                s["name"].as_str().unwrap_or(""),
                report::bytes(s["bytes"].as_u64().unwrap_or(0))
            )
        })
        .collect();
    text.push_str(&format!("data sets: {}\n", sets_line.join("; ")));
    text.push_str("best peer = the peer with the lowest time on the row; speedup vs best peer = its time ÷ cairn time (above 1: cairn faster); RSS and size ratios = cairn ÷ the lowest peer's (below 1: cairn smaller); CPU = user + system; repo = du after the operation\n\n");
    text.push_str(&report::peer_table(&rows, "data set", &peers));
    print!("{text}");

    let stem = match scale {
        Scale::Full => "results".to_string(),
        other => format!("results-{}", other.name()),
    };
    let out_dir = sys::target_dir().join("bench");
    let json = json!({
        "scale": scale.name(),
        "reps": reps,
        "started_unix": started_at,
        "duration_s": started.elapsed().as_secs_f64(),
        "page_cache": "warm: every data set is read once, untimed, before its runs",
        "data_dir": bench.dirs.base,
        "machine": machine,
        "tools": tools
            .iter()
            .map(|t| (t.name().to_string(), json!({ "version": t.version, "path": t.bin.as_ref().ok() })))
            .collect::<serde_json::Map<_, _>>(),
        "peers": peers,
        "data_sets": set_info,
        "rows": rows,
        "samples": bench.samples,
    });
    report::write_files(&out_dir, &stem, &json, &bench.samples, &text)?;
    eprintln!(
        "[bench] done in {:.0} s; wrote {}/{stem}.{{json,csv,md}}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );

    let failed = rows.iter().any(|r| {
        std::iter::once(&r.cairn)
            .chain(r.peers.iter().map(|p| &p.cell))
            .any(|c| matches!(c, Cell::Failed { .. }))
    });
    match opts.strict {
        Strict::All if failed => bail!("some rows failed"),
        _ => Ok(()),
    }
}

/// cairn (built unless `--cairn-bin`; its rows fail if that fails) and
/// restic (installed if missing): the tools of `--backends` and
/// `--databases`.
fn tools(opts: &Options) -> Result<(Tool, Tool)> {
    Ok((cairn_tool(opts), restic_tool()?))
}

/// The main bench's tools: cairn first, then the peers in `--peers` order.
fn contenders(opts: &Options) -> Result<Vec<Contender>> {
    // The peers first: a missing one fails before cairn's build.
    let mut out: Vec<Contender> = Vec::new();
    for &peer in &opts.peers {
        if out.iter().any(|c| c.program == Program::from(peer)) {
            continue;
        }
        out.push(match peer {
            Peer::Restic => restic_tool()?.into(),
            Peer::Rustic => {
                let bin = rustic_binary()?;
                Contender {
                    program: Program::Rustic,
                    version: version_of(&bin, &["--version"]),
                    bin: Ok(bin),
                }
            }
        });
    }
    out.insert(0, cairn_tool(opts).into());
    Ok(out)
}

/// restic: `RESTIC_BIN`, else the one on `PATH` (the Debian package,
/// installed if missing).
fn restic_tool() -> Result<Tool> {
    sys::ensure_packages(&["restic"])?;
    let restic_bin = std::env::var_os("RESTIC_BIN")
        .map(PathBuf::from)
        .or_else(|| sys::find_in_path("restic"))
        .context("restic is not installed")?;
    Ok(Tool {
        kind: ToolKind::Restic,
        version: version_of(&restic_bin, &["version"]),
        bin: Ok(restic_bin),
    })
}

/// rustic: `RUSTIC_BIN`, else on `PATH`, else in cargo's bin directory;
/// else `cargo install --locked rustic-rs` (it compiles for a quarter of
/// an hour, which is why rustic is a peer only when asked for).
fn rustic_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("RUSTIC_BIN").map(PathBuf::from) {
        if sys::is_executable(&bin) {
            return Ok(bin);
        }
        bail!(
            "RUSTIC_BIN={} is not an executable; unset it, or point it at rustic",
            bin.display()
        );
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin").join("rustic"));
    let find = || {
        sys::find_in_path("rustic").or_else(|| cargo_bin.clone().filter(|b| sys::is_executable(b)))
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Its own temporary target directory, not this workspace's.
    cmd.args(["install", "--locked", "rustic-rs"])
        .env_remove("CARGO_TARGET_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(sys::to_stderr());
    eprintln!(
        "[bench] rustic is not installed; installing it: `{}` (compiles for about 16 minutes on 2 cores)",
        sys::describe(&cmd)
    );
    let how = "install it with `cargo install --locked rustic-rs` or set RUSTIC_BIN, or leave rustic out of --peers";
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => bail!("rustic is not installed and `cargo install` failed ({status}); {how}"),
        Err(e) => bail!("rustic is not installed and cargo could not run ({e}); {how}"),
    }
    find().with_context(|| format!("`cargo install` succeeded but rustic is neither on PATH nor in cargo's bin directory; {how}"))
}

/// cairn: `--cairn-bin` or a fresh build; a failure is reported and its
/// rows fail, while the peers still run.
fn cairn_tool(opts: &Options) -> Tool {
    let cairn_bin = cairn_binary(opts);
    if let Err(why) = &cairn_bin {
        eprintln!("[bench] cairn is not available, its rows will fail: {why}");
    }
    let cairn_version = match &cairn_bin {
        Ok(bin) => version_of(bin, &["--version"]),
        Err(_) => "unavailable".into(),
    };
    Tool {
        kind: ToolKind::Cairn,
        bin: cairn_bin,
        version: cairn_version,
    }
}

/// The cairn binary: `--cairn-bin`, else a fresh build (release unless
/// `--debug`). Build failures are returned, not raised: the peers still run.
fn cairn_binary(opts: &Options) -> Result<PathBuf, String> {
    if let Some(bin) = &opts.cairn_bin {
        return if sys::is_executable(bin) {
            Ok(bin.clone())
        } else {
            Err(format!("{} is not an executable", bin.display()))
        };
    }
    let mut cmd = sys::cargo();
    cmd.args(["build", "-p", "cairn-cli", "--bin", "cairn"]);
    if !opts.debug {
        cmd.arg("--release");
    }
    eprintln!("[bench] $ {}", sys::describe(&cmd));
    match cmd.stdout(sys::to_stderr()).status() {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(format!("`{}` failed ({status})", sys::describe(&cmd))),
        Err(e) => return Err(format!("could not run cargo: {e}")),
    }
    let bin = sys::target_dir()
        .join(if opts.debug { "debug" } else { "release" })
        .join("cairn");
    if sys::is_executable(&bin) {
        Ok(bin)
    } else {
        Err(format!(
            "the build succeeded but {} is missing",
            bin.display()
        ))
    }
}

/// The first line a tool prints for `args` (its version), or a note.
fn version_of(bin: &Path, args: &[&str]) -> String {
    match Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Ok(out) => format!(
            "{} (`{}` failed: {})",
            bin.display(),
            args.join(" "),
            out.status
        ),
        Err(e) => format!("{} (could not run: {e})", bin.display()),
    }
}

/// One bench at a time per base directory.
fn lock(base: &Path) -> Result<File> {
    let path = base.join(".lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // SAFETY: flock on a descriptor that `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another bench is running in {} (lock {})",
            base.display(),
            path.display()
        );
    }
    Ok(file)
}

/// Warns when the data directory looks too small for this scale.
fn check_space(base: &Path, scale: Scale) {
    let need: u64 = match scale {
        Scale::Full => 12 << 30,
        Scale::Quick => 3 << 30,
        Scale::Smoke => 200 << 20,
    };
    if let Some(free) = fsutil::available(base) {
        if free < need {
            eprintln!(
                "[bench] warning: {} has {} free; this scale wants about {} (less if the data is cached)",
                base.display(),
                report::bytes(free),
                report::bytes(need)
            );
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
