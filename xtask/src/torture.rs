//! `cargo xtask torture`: crash and damage figures, printed on every run.
//!
//! Four parts, each round seeded from `--seed` (printed, so a failure can be
//! replayed):
//! - **backup kills**: a first backup of a generated tree is killed with
//!   SIGKILL at a random instant; `check` must pass on what is left, the
//!   backup run again must finish, store little more than a clean backup
//!   would, and restore the tree exactly.
//! - **prune kills**: `forget --keep-last 1 --prune` (deleting at once) is
//!   killed at a random instant in a repository of three generations;
//!   `check --read-data` must pass, the kept snapshot restore exactly, and
//!   the same command run again must finish with a clean check.
//! - **key kills**: `key passwd` killed at a random instant; the repository
//!   must still open with the old password or the new one.
//! - **faults**: one fault (a flipped bit, a truncation, a zeroed range,
//!   appended bytes or a deleted file) in a pack, index, snapshot, key file
//!   or the config of a repository holding one snapshot; `check
//!   --read-data` and `restore latest` must neither panic nor hang, and
//!   restore must give no wrong byte silently: every file differs from the
//!   source only if the run failed and named it.
//!
//! Prints a table of figures; fails when anything was lost, panicked, hung
//! or came back wrong. `cargo xtask test` runs a short version.

use crate::bench::gen::{self, Rng};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "torture password";
/// A command that runs longer than this hangs.
const HANG: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    pub seed: u64,
    pub cairn_bin: PathBuf,
    pub dir: PathBuf,
}

impl Options {
    /// The short run of `cargo xtask test`: a new seed each time.
    pub fn quick(cairn_bin: PathBuf) -> Options {
        Options {
            quick: true,
            seed: clock_seed(),
            cairn_bin,
            dir: PathBuf::from("/dev/shm/cairn-torture"),
        }
    }
}

/// A new seed from the clock, for runs that explore rather than replay.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

struct Rounds {
    backup_kills: usize,
    prune_kills: usize,
    key_kills: usize,
    faults: usize,
    /// Files and bytes of the generated tree.
    files: usize,
    bytes: u64,
}

impl Rounds {
    fn of(quick: bool) -> Rounds {
        if quick {
            Rounds {
                backup_kills: 8,
                prune_kills: 4,
                key_kills: 4,
                faults: 30,
                files: 120,
                bytes: 12 << 20,
            }
        } else {
            Rounds {
                backup_kills: 60,
                prune_kills: 30,
                key_kills: 20,
                faults: 200,
                files: 400,
                bytes: 48 << 20,
            }
        }
    }
}

/// What one cairn run did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    killed: bool,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn panicked(&self) -> bool {
        self.code == Some(101) || self.stderr.contains("panicked at")
    }
    fn hung(&self) -> bool {
        self.elapsed >= HANG
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?} after {:.2} s\nstdout: {}\nstderr: {}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

struct Ctx {
    bin: PathBuf,
    dir: PathBuf,
    failures: Vec<String>,
}

impl Ctx {
    fn cmd(&self, repo: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("CAIRN_REPOSITORY", repo)
            .env("CAIRN_PASSWORD", PASSWORD)
            .env("CAIRN_TEST_CHEAP_KDF", "1")
            .env("CAIRN_CACHE_DIR", self.dir.join("cache"))
            .env_remove("CAIRN_PASSWORD_FILE")
            .env_remove("CAIRN_PASSWORD_COMMAND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `c`, killing it with SIGKILL after `kill_after` if given (and
    /// after [`HANG`] in any case).
    fn run(&self, mut c: Command, kill_after: Option<Duration>) -> Result<Run> {
        let started = Instant::now();
        let out_path = self.dir.join("out.txt");
        let err_path = self.dir.join("err.txt");
        c.stdout(fs::File::create(&out_path)?)
            .stderr(fs::File::create(&err_path)?);
        let mut child = c.spawn().context("starting cairn")?;
        let deadline = kill_after.unwrap_or(HANG).min(HANG);
        let mut killed = false;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if started.elapsed() >= deadline {
                child.kill().ok();
                killed = kill_after.is_some_and(|k| k < HANG);
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        Ok(Run {
            code: status.code(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            elapsed: started.elapsed(),
            killed,
        })
    }

    fn cairn(&self, repo: &Path, args: &[&str]) -> Result<Run> {
        self.run(self.cmd(repo, args), None)
    }

    /// Runs `args` and records a failure unless it succeeds.
    fn must(&mut self, what: &str, repo: &Path, args: &[&str]) -> Result<Run> {
        let r = self.cairn(repo, args)?;
        if !r.ok() {
            self.failures.push(format!(
                "{what}: `cairn {}` failed: {}",
                args.join(" "),
                r.describe()
            ));
        }
        Ok(r)
    }
}

pub fn run(opts: Options) -> Result<()> {
    let rounds = Rounds::of(opts.quick);
    if opts.dir.exists() {
        fs::remove_dir_all(&opts.dir)
            .with_context(|| format!("clearing {}", opts.dir.display()))?;
    }
    fs::create_dir_all(&opts.dir)?;
    let mut ctx = Ctx {
        bin: opts.cairn_bin.clone(),
        dir: opts.dir.clone(),
        failures: Vec::new(),
    };
    eprintln!(
        "torture: seed {} ({}; replay with --seed {})",
        opts.seed,
        if opts.quick { "quick" } else { "full" },
        opts.seed
    );
    let mut rng = Rng::new(opts.seed);
    let src = opts.dir.join("src");
    let generations: Vec<PathBuf> = (0..3)
        .map(|g| {
            let dir = opts.dir.join(format!("gen{g}"));
            generate(&dir, &rounds, gen::seed_of(opts.seed, g));
            dir
        })
        .collect();
    crate::bench::fsutil::copy_tree(&generations[0], &src)?;

    let mut table: Vec<(String, String)> = Vec::new();
    backup_kills(&mut ctx, &mut rng, &src, rounds.backup_kills, &mut table)?;
    prune_kills(
        &mut ctx,
        &mut rng,
        &generations,
        rounds.prune_kills,
        &mut table,
    )?;
    key_kills(&mut ctx, &mut rng, &src, rounds.key_kills, &mut table)?;
    faults(&mut ctx, &mut rng, &src, rounds.faults, &mut table)?;

    println!("\n| torture (seed {}) | figures |", opts.seed);
    println!("|---|---|");
    for (what, figures) in &table {
        println!("| {what} | {figures} |");
    }
    if !ctx.failures.is_empty() {
        eprintln!("\ntorture: {} failures:", ctx.failures.len());
        for f in &ctx.failures {
            eprintln!("- {f}");
        }
        bail!(
            "torture: {} failures (replay with --seed {})",
            ctx.failures.len(),
            opts.seed
        );
    }
    fs::remove_dir_all(&opts.dir).ok();
    Ok(())
}

/// A tree of `rounds.files` files of mixed content and sizes in a few
/// directories, reproducible from `seed`.
fn generate(dir: &Path, rounds: &Rounds, seed: u64) {
    let mut rng = Rng::new(seed);
    let avg = rounds.bytes / rounds.files as u64;
    for i in 0..rounds.files {
        let sub = dir.join(format!("d{}/e{}", i % 7, i % 3));
        fs::create_dir_all(&sub).expect("creating the tree");
        let len = rng.log_uniform(1, avg * 8).min(8 << 20) as usize;
        let kind = match i % 3 {
            0 => gen::Kind::Text,
            1 => gen::Kind::Random,
            _ => gen::Kind::Mixed,
        };
        let mut buf = vec![0u8; len];
        gen::fill(kind, gen::seed_of(seed, i as u64), &mut buf);
        fs::write(sub.join(format!("f{i}")), &buf).expect("writing the tree");
    }
}

/// Every regular file under `root`, by relative path, with its bytes.
fn contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let _ = crate::bench::fsutil::walk(root, &mut |p, md| {
        if md.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(p).to_path_buf();
            out.insert(rel, fs::read(p).unwrap_or_default());
        }
    });
    out
}

/// Files of `src` that `restored` (the restore target) lacks or holds
/// with other bytes.
fn wrong_files(src: &Path, target: &Path) -> Vec<PathBuf> {
    let restored_root = target.join(src.strip_prefix("/").unwrap_or(src));
    let want = contents(src);
    let got = contents(&restored_root);
    want.iter()
        .filter(|(p, bytes)| got.get(*p) != Some(*bytes))
        .map(|(p, _)| p.clone())
        .collect()
}

/// Bytes of the repository's files, and of those the temporary ones
/// (`.tmp-*`, left by killed writers until a prune removes them).
fn repo_bytes(repo: &Path) -> (u64, u64) {
    let (mut all, mut temporary) = (0, 0);
    let _ = crate::bench::fsutil::walk(repo, &mut |p, md| {
        if md.is_file() {
            all += md.len();
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(".tmp-") {
                temporary += md.len();
            }
        }
    });
    (all, temporary)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn backup_kills(
    ctx: &mut Ctx,
    rng: &mut Rng,
    src: &Path,
    rounds: usize,
    table: &mut Vec<(String, String)>,
) -> Result<()> {
    let s = src.to_str().context("source path")?;
    // A clean backup: its time bounds the kill instants, its size is the
    // measure of what a resumed backup adds.
    let clean = ctx.dir.join("clean-repo");
    ctx.must("setup", &clean, &["init"])?;
    let full = ctx.must("setup", &clean, &["backup", "--quiet", s])?;
    let clean_bytes = repo_bytes(&clean).0 as f64;
    let (mut kills, mut check_failed, mut wrong) = (0, 0, 0);
    let (mut overheads, mut temporaries) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let repo = ctx.dir.join(format!("bk{round}"));
        ctx.must("backup kills", &repo, &["init"])?;
        let at = full.elapsed.mul_f64(rng.unit() * 1.1);
        let r = ctx.run(ctx.cmd(&repo, &["backup", "--quiet", s]), Some(at))?;
        kills += usize::from(r.killed);
        if r.panicked() {
            ctx.failures
                .push(format!("backup panicked: {}", r.describe()));
        }
        let c = ctx.cairn(&repo, &["check"])?;
        if !c.ok() {
            check_failed += 1;
            ctx.failures.push(format!(
                "check after a backup killed at {at:?} failed: {}",
                c.describe()
            ));
        }
        ctx.must("backup kills", &repo, &["backup", "--quiet", s])?;
        let (all, temporary) = repo_bytes(&repo);
        overheads.push((all - temporary) as f64 / clean_bytes - 1.0);
        temporaries.push(temporary as f64 / clean_bytes);
        ctx.must("backup kills", &repo, &["check", "--read-data"])?;
        let target = ctx.dir.join("restore");
        ctx.must(
            "backup kills",
            &repo,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        )?;
        let w = wrong_files(src, &target);
        if !w.is_empty() {
            wrong += 1;
            ctx.failures.push(format!(
                "after a backup killed at {at:?} and run again, {} files restore wrong: {:?}",
                w.len(),
                &w[..w.len().min(5)]
            ));
        }
        fs::remove_dir_all(&target).ok();
        fs::remove_dir_all(&repo).ok();
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max) * 100.0;
    table.push((
        "backup killed at a random instant".into(),
        format!(
            "{rounds} rounds, {kills} killed before the end; check failed {check_failed}; \
             restored wrong {wrong}; run again, its files are {:.1}% (median) / {:.1}% (max) \
             more than one clean backup's, plus {:.1}% / {:.1}% in temporary files \
             (prune removes them after an hour)",
            (median(overheads.clone()) * 100.0).max(0.0),
            max(&overheads),
            median(temporaries.clone()) * 100.0,
            max(&temporaries),
        ),
    ));
    fs::remove_dir_all(&clean).ok();
    Ok(())
}

fn prune_kills(
    ctx: &mut Ctx,
    rng: &mut Rng,
    generations: &[PathBuf],
    rounds: usize,
    table: &mut Vec<(String, String)>,
) -> Result<()> {
    // Three generations, each backed up from the same path.
    let template = ctx.dir.join("prune-template");
    let src = ctx.dir.join("prune-src");
    let s = src.to_str().context("source path")?;
    ctx.must("setup", &template, &["init"])?;
    for g in generations {
        crate::bench::fsutil::remove(&src).ok();
        crate::bench::fsutil::copy_tree(g, &src)?;
        ctx.must("setup", &template, &["backup", "--quiet", s])?;
    }
    let prune = [
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--keep-delete",
        "0",
        "--max-unused",
        "0%",
        "--quiet",
    ];
    let timing = ctx.dir.join("prune-timing");
    crate::bench::fsutil::copy_tree(&template, &timing)?;
    let full = ctx.must("setup", &timing, &prune)?;
    fs::remove_dir_all(&timing).ok();
    let (mut kills, mut check_failed, mut wrong) = (0, 0, 0);
    for round in 0..rounds {
        let repo = ctx.dir.join(format!("pr{round}"));
        crate::bench::fsutil::copy_tree(&template, &repo)?;
        let at = full.elapsed.mul_f64(rng.unit() * 1.1);
        let r = ctx.run(ctx.cmd(&repo, &prune), Some(at))?;
        kills += usize::from(r.killed);
        if r.panicked() {
            ctx.failures
                .push(format!("prune panicked: {}", r.describe()));
        }
        for step in ["killed", "run again"] {
            let c = ctx.cairn(&repo, &["check", "--read-data"])?;
            if !c.ok() {
                check_failed += 1;
                ctx.failures.push(format!(
                    "check after a prune {step} (killed at {at:?}) failed: {}",
                    c.describe()
                ));
            }
            let target = ctx.dir.join("restore");
            ctx.must(
                "prune kills",
                &repo,
                &["restore", "latest", "--target", target.to_str().unwrap()],
            )?;
            let w = wrong_files(&src, &target);
            if !w.is_empty() {
                wrong += 1;
                ctx.failures.push(format!(
                    "after a prune {step} (killed at {at:?}), {} files of the kept snapshot restore wrong",
                    w.len()
                ));
            }
            fs::remove_dir_all(&target).ok();
            if step == "killed" {
                ctx.must("prune kills", &repo, &prune)?;
            }
        }
        fs::remove_dir_all(&repo).ok();
    }
    table.push((
        "forget --prune killed at a random instant".into(),
        format!(
            "{rounds} rounds, {kills} killed before the end; check --read-data failed {check_failed} \
             (after the kill and after running it again); kept snapshot restored wrong {wrong}"
        ),
    ));
    fs::remove_dir_all(&template).ok();
    fs::remove_dir_all(&src).ok();
    Ok(())
}

fn key_kills(
    ctx: &mut Ctx,
    rng: &mut Rng,
    src: &Path,
    rounds: usize,
    table: &mut Vec<(String, String)>,
) -> Result<()> {
    let template = ctx.dir.join("key-template");
    ctx.must("setup", &template, &["init"])?;
    let s = src.to_str().context("source path")?;
    ctx.must("setup", &template, &["backup", "--quiet", s])?;
    let new_pw = ctx.dir.join("new-password");
    fs::write(&new_pw, "the new password\n")?;
    let passwd = [
        "key",
        "passwd",
        "--new-password-file",
        new_pw.to_str().unwrap(),
    ];
    let timing = ctx.dir.join("key-timing");
    crate::bench::fsutil::copy_tree(&template, &timing)?;
    let full = ctx.must("setup", &timing, &passwd)?;
    fs::remove_dir_all(&timing).ok();
    let (mut kills, mut locked_out) = (0, 0);
    for round in 0..rounds {
        let repo = ctx.dir.join(format!("key{round}"));
        crate::bench::fsutil::copy_tree(&template, &repo)?;
        let at = full.elapsed.mul_f64(rng.unit() * 1.1);
        let r = ctx.run(ctx.cmd(&repo, &passwd), Some(at))?;
        kills += usize::from(r.killed);
        let old = ctx.cairn(&repo, &["snapshots", "--quiet"])?;
        let mut with_new = ctx.cmd(&repo, &["snapshots", "--quiet"]);
        with_new
            .env_remove("CAIRN_PASSWORD")
            .env("CAIRN_PASSWORD_FILE", &new_pw);
        let new = ctx.run(with_new, None)?;
        if !old.ok() && !new.ok() {
            locked_out += 1;
            ctx.failures.push(format!(
                "key passwd killed at {at:?}: neither password opens the repository: {}",
                old.describe()
            ));
        }
        fs::remove_dir_all(&repo).ok();
    }
    table.push((
        "key passwd killed at a random instant".into(),
        format!("{rounds} rounds, {kills} killed before the end; locked out {locked_out}"),
    ));
    fs::remove_dir_all(&template).ok();
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    FlipBit,
    Truncate,
    ZeroRange,
    Append,
    Delete,
}

const FAULTS: [Fault; 5] = [
    Fault::FlipBit,
    Fault::Truncate,
    Fault::ZeroRange,
    Fault::Append,
    Fault::Delete,
];
const CLASSES: [&str; 5] = ["data", "index", "snapshots", "keys", "config"];

fn files_of(repo: &Path, class: &str) -> Vec<PathBuf> {
    let root = repo.join(class);
    if class == "config" {
        return vec![root];
    }
    let mut out = Vec::new();
    let _ = crate::bench::fsutil::walk(&root, &mut |p, md| {
        if md.is_file() {
            out.push(p.to_path_buf());
        }
    });
    out.sort();
    out
}

fn inject(path: &Path, fault: Fault, rng: &mut Rng) -> Result<()> {
    let mut bytes = fs::read(path)?;
    let len = bytes.len().max(1) as u64;
    match fault {
        Fault::FlipBit => {
            let at = rng.below(len) as usize;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        Fault::Truncate => bytes.truncate(rng.below(len) as usize),
        Fault::ZeroRange => {
            let at = rng.below(len) as usize;
            let end = (at + 1 + rng.below(512) as usize).min(bytes.len());
            for b in &mut bytes[at..end] {
                // Zeros where there were zeros change nothing: make it count.
                *b = if *b == 0 { 0xff } else { 0 };
            }
        }
        Fault::Append => {
            let mut extra = vec![0u8; 1 + rng.below(4096) as usize];
            gen::fill(gen::Kind::Random, rng.next_u64(), &mut extra);
            bytes.extend_from_slice(&extra);
        }
        Fault::Delete => {
            fs::remove_file(path)?;
            return Ok(());
        }
    }
    // In place, as a disk or a hostile host would: not through a rename.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(&bytes)?;
    Ok(())
}

fn faults(
    ctx: &mut Ctx,
    rng: &mut Rng,
    src: &Path,
    rounds: usize,
    table: &mut Vec<(String, String)>,
) -> Result<()> {
    let template = ctx.dir.join("fault-template");
    ctx.must("setup", &template, &["init"])?;
    let s = src.to_str().context("source path")?;
    ctx.must("setup", &template, &["backup", "--quiet", s])?;
    let (mut panics, mut hangs, mut silent, mut detected) = (0, 0, 0, 0);
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    // Faults check did not report (a deleted snapshot file looks exactly
    // like a forgotten snapshot), by kind.
    let mut unnoticed: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..rounds {
        let class = CLASSES[round % CLASSES.len()];
        let fault = FAULTS[rng.index(FAULTS.len())];
        let repo = ctx.dir.join(format!("ft{round}"));
        crate::bench::fsutil::copy_tree(&template, &repo)?;
        let candidates = files_of(&repo, class);
        if candidates.is_empty() {
            bail!("the fault template has no {class} files");
        }
        let victim = candidates[rng.index(candidates.len())].clone();
        inject(&victim, fault, rng)?;
        *by_class.entry(class).or_default() += 1;
        let what = format!(
            "{fault:?} in {}",
            victim.strip_prefix(&repo).unwrap_or(&victim).display()
        );

        let check = ctx.cairn(&repo, &["check", "--read-data"])?;
        detected += usize::from(!check.ok());
        if check.ok() {
            *unnoticed
                .entry(format!("{fault:?} in {class}"))
                .or_default() += 1;
        }
        let target = ctx.dir.join("restore");
        let restore = ctx.cairn(
            &repo,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        )?;
        for (cmd, r) in [("check", &check), ("restore", &restore)] {
            if r.panicked() {
                panics += 1;
                ctx.failures
                    .push(format!("{what}: {cmd} panicked: {}", r.describe()));
            }
            if r.hung() {
                hangs += 1;
                ctx.failures.push(format!("{what}: {cmd} hung"));
            }
        }
        // No wrong byte silently: after a successful restore every file is
        // exact; after a failed one, a file may be missing, but one that is
        // there with other bytes must be named in the errors.
        let restored_root = target.join(src.strip_prefix("/").unwrap_or(src));
        let wrong = wrong_files(src, &target);
        let unexplained: Vec<&PathBuf> = wrong
            .iter()
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                let present = restored_root.join(p).exists();
                restore.ok() || (present && !restore.stderr.contains(name.as_ref()))
            })
            .collect();
        if !unexplained.is_empty() {
            silent += 1;
            ctx.failures.push(format!(
                "{what}: restore exited {:?} with {} files wrong that no error names: {:?}",
                restore.code,
                unexplained.len(),
                &unexplained[..unexplained.len().min(5)]
            ));
        }
        fs::remove_dir_all(&target).ok();
        fs::remove_dir_all(&repo).ok();
    }
    let classes: Vec<String> = by_class.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let unnoticed: Vec<String> = unnoticed.iter().map(|(f, n)| format!("{f} {n}")).collect();
    table.push((
        "one fault injected (bit flip, truncation, zeroed range, appended bytes, deletion)".into(),
        format!(
            "{rounds} faults ({}); panics {panics}; hangs {hangs}; silently wrong restores {silent}; \
             found by check --read-data {detected} of {rounds}{}",
            classes.join(", "),
            if unnoticed.is_empty() {
                String::new()
            } else {
                format!(" (not: {})", unnoticed.join(", "))
            }
        ),
    ));
    fs::remove_dir_all(&template).ok();
    Ok(())
}
