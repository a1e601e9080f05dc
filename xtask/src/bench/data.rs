//! The generated data sets, their cache, and `mutate`.
//!
//! - `tree`: many small text-like files, some medium, a few large; ~3% are
//!   duplicates of another file; text, random, low-entropy binary and mixed
//!   content, in a random directory tree.
//! - `big`: a few large files: text, random, a file of four repeated
//!   blocks, and a disk-image-like file (zeros, random, text and copies of
//!   its own earlier blocks).
//! - `many`: small and empty files in a directory tree 3 wide, up to 8 deep.
//! - `stdin`: one SQL dump file, streamed to `backup --stdin`.
//!
//! A set is generated into `<data>/<set>/` and `<data>/<set>.stamp` records
//! its parameters and the generator version; a set is regenerated only when
//! the stamp differs. Generation runs on every core, each file or block
//! seeded on its own, so the result does not depend on scheduling.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};

use super::fsutil;
use super::gen::{fill, seed_of, Kind, Rng, GEN_VERSION};
use super::{Scale, SetKind};

const MIB: u64 = 1 << 20;

/// How big a set is at a given scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub files: u64,
    pub bytes: u64,
}

pub fn params(set: SetKind, scale: Scale) -> Params {
    use Scale::*;
    use SetKind::*;
    let (files, bytes) = match (set, scale) {
        (Tree, Full) => (50_000, 1024 * MIB),
        (Tree, Quick) => (10_000, 200 * MIB),
        (Tree, Smoke) => (400, 4 * MIB),
        (Big, Full) => (4, 2048 * MIB),
        (Big, Quick) => (4, 400 * MIB),
        (Big, Smoke) => (4, 8 * MIB),
        (Many, Full) => (300_000, 0),
        (Many, Quick) => (50_000, 0),
        (Many, Smoke) => (1_000, 0),
        (Stdin, Full) => (1, 2048 * MIB),
        (Stdin, Quick) => (1, 400 * MIB),
        (Stdin, Smoke) => (1, 4 * MIB),
    };
    Params { files, bytes }
}

fn seed(set: SetKind) -> u64 {
    match set {
        SetKind::Tree => 0x7472_6565,
        SetKind::Big => 0x0062_6967,
        SetKind::Many => 0x6d61_6e79,
        SetKind::Stdin => 0x7374_6469,
    }
}

/// A data set on disk.
pub struct Prepared {
    /// The directory to back up (for `stdin`, the directory of the dump).
    pub dir: PathBuf,
    /// For `stdin`: the file fed to the tool's standard input.
    pub stdin_file: Option<PathBuf>,
    pub usage: fsutil::Usage,
}

/// Generates `set` under `data_root` unless an identical one is cached.
pub fn prepare(set: SetKind, scale: Scale, data_root: &Path) -> Result<Prepared> {
    let p = params(set, scale);
    let dir = data_root.join(set.name());
    let stamp_path = data_root.join(format!("{}.stamp", set.name()));
    let stamp = format!(
        "generator v{GEN_VERSION}, {set:?}, seed {:#x}, {p:?}\n",
        seed(set)
    );
    let cached = dir.is_dir()
        && fs::read_to_string(&stamp_path)
            .map(|s| s == stamp)
            .unwrap_or(false);
    if cached {
        eprintln!(
            "[bench] {}: using cached data in {}",
            set.name(),
            dir.display()
        );
    } else {
        let started = Instant::now();
        eprintln!(
            "[bench] {}: generating {p:?} in {}",
            set.name(),
            dir.display()
        );
        fsutil::remove(&stamp_path)?;
        fsutil::remove(&dir)?;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let jobs = match set {
            SetKind::Tree => tree_jobs(&dir, p, seed(set))?,
            SetKind::Big => big_jobs(&dir, p, seed(set))?,
            SetKind::Many => many_jobs(&dir, p, seed(set))?,
            SetKind::Stdin => blocks_jobs(
                &dir.join("dump.sql"),
                p.bytes,
                32 * MIB,
                Pattern::Dump,
                seed(set),
            )?,
        };
        run_jobs(jobs)?;
        fs::write(&stamp_path, &stamp)
            .with_context(|| format!("writing {}", stamp_path.display()))?;
        eprintln!(
            "[bench] {}: generated in {:.1} s",
            set.name(),
            started.elapsed().as_secs_f64()
        );
    }
    let usage = fsutil::usage(&dir)?;
    let stdin_file = (set == SetKind::Stdin).then(|| dir.join("dump.sql"));
    Ok(Prepared {
        dir,
        stdin_file,
        usage,
    })
}

/// A unit of generation work; it gets a reusable scratch buffer.
pub(super) type Job = Box<dyn Fn(&mut Vec<u8>) -> Result<()> + Send + Sync>;

pub(super) fn run_jobs(jobs: Vec<Job>) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let next = AtomicUsize::new(0);
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs.len() || failure.lock().unwrap().is_some() {
                        break;
                    }
                    if let Err(e) = jobs[i](&mut buf) {
                        failure.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Fills `buf` to `size` bytes of `kind` and writes it as `path`.
pub(super) fn write_file(
    path: &Path,
    size: usize,
    kind: Kind,
    seed: u64,
    buf: &mut Vec<u8>,
) -> Result<()> {
    if buf.len() < size {
        buf.resize(size, 0);
    }
    fill(kind, seed, &mut buf[..size]);
    fs::write(path, &buf[..size]).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------- tree

struct FileSpec {
    path: PathBuf,
    size: u64,
    kind: Kind,
    seed: u64,
}

fn tree_jobs(dir: &Path, p: Params, set_seed: u64) -> Result<Vec<Job>> {
    let mut rng = Rng::new(set_seed);
    let ndirs = (p.files as usize / 20).max(1);
    // A random recursive tree: each directory's parent is a uniformly
    // chosen earlier one, which gives depths of a few up to ~15.
    let mut dirs = vec![PathBuf::new()];
    for i in 1..ndirs {
        let parent = dirs[rng.index(i)].clone();
        dirs.push(parent.join(format!("{}-{i}", rng.word())));
    }
    // Raw sizes first, then one scale factor to hit the byte target.
    let mut specs: Vec<FileSpec> = Vec::with_capacity(p.files as usize);
    for i in 0..p.files as usize {
        let parent = &dirs[rng.index(ndirs)];
        let (size, kind, seed) = if i >= 10 && rng.chance(0.03) {
            let original = &specs[rng.index(i)];
            (original.size, original.kind, original.seed)
        } else {
            let (size, kind) = draw_tree_file(&mut rng);
            (size, kind, seed_of(set_seed, i as u64))
        };
        let name = format!("{}_{i}.{}", rng.word(), extension(kind, &mut rng));
        specs.push(FileSpec {
            path: parent.join(name),
            size,
            kind,
            seed,
        });
    }
    let raw: u64 = specs.iter().map(|s| s.size).sum();
    let factor = p.bytes as f64 / raw.max(1) as f64;
    for spec in &mut specs {
        spec.size = (spec.size as f64 * factor).round() as u64;
    }
    for d in &dirs {
        fs::create_dir_all(dir.join(d))?;
    }
    let dir = dir.to_path_buf();
    Ok(specs
        .into_iter()
        .map(|spec| {
            let path = dir.join(&spec.path);
            Box::new(move |buf: &mut Vec<u8>| {
                write_file(&path, spec.size as usize, spec.kind, spec.seed, buf)
            }) as Job
        })
        .collect())
}

/// One file's raw size and content kind. Roughly: 2% empty, 58% under
/// 4 KiB, 38% 4–64 KiB, 2% 64 KiB–2 MiB, 0.1% 2–16 MiB (before scaling).
/// By bytes about 15% is incompressible and 10% half so.
fn draw_tree_file(rng: &mut Rng) -> (u64, Kind) {
    let x = rng.unit();
    let (size, class) = if x < 0.02 {
        (0, 0)
    } else if x < 0.60 {
        (rng.log_uniform(32, 4 << 10), 0)
    } else if x < 0.979 {
        (rng.log_uniform(4 << 10, 64 << 10), 1)
    } else if x < 0.999 {
        (rng.log_uniform(64 << 10, 2 << 20), 2)
    } else {
        (rng.log_uniform(2 << 20, 16 << 20), 2)
    };
    let y = rng.unit();
    let kind = match class {
        0 if y < 0.85 => Kind::Text,
        0 if y < 0.95 => Kind::Binary,
        0 => Kind::Random,
        1 if y < 0.55 => Kind::Text,
        1 if y < 0.80 => Kind::Binary,
        1 if y < 0.92 => Kind::Random,
        1 => Kind::Mixed,
        _ if y < 0.30 => Kind::Text,
        _ if y < 0.70 => Kind::Binary,
        _ if y < 0.85 => Kind::Random,
        _ => Kind::Mixed,
    };
    (size, kind)
}

fn extension(kind: Kind, rng: &mut Rng) -> &'static str {
    let choices: &[&str] = match kind {
        Kind::Text => &["txt", "rs", "md", "json", "c", "h", "py", "toml", "html"],
        Kind::Random => &["gz", "png", "zst", "jpg"],
        Kind::Binary => &["bin", "o", "so", "rlib"],
        Kind::Mixed => &["pdf", "tar", "db"],
        Kind::Dump => &["sql"],
    };
    choices[rng.index(choices.len())]
}

// ----------------------------------------------------------------- big

/// How a block-structured file's blocks are made.
#[derive(Clone, Copy)]
enum Pattern {
    Text,
    Random,
    /// Random blocks cycling through four contents.
    Repeated,
    /// Disk-image-like: zeros, random, text, and copies of earlier blocks.
    Image,
    Dump,
}

fn big_jobs(dir: &Path, p: Params, seed: u64) -> Result<Vec<Job>> {
    let part = |eighths: u64| (p.bytes * eighths / 8 / 4096 * 4096).max(4096);
    let repeated = part(2);
    let repeat_block = (repeated / 16 / 4096 * 4096).clamp(64 << 10, 16 * MIB);
    let files = [
        ("text.log", part(2), MIB, Pattern::Text),
        ("random.bin", part(3), MIB, Pattern::Random),
        ("repeated.img", repeated, repeat_block, Pattern::Repeated),
        ("vm.img", part(1), MIB, Pattern::Image),
    ];
    let mut jobs = Vec::new();
    for (i, (name, size, block, pattern)) in files.into_iter().enumerate() {
        jobs.extend(blocks_jobs(
            &dir.join(name),
            size,
            block,
            pattern,
            seed_of(seed, i as u64),
        )?);
    }
    Ok(jobs)
}

/// Creates `path` with `size` bytes made of `block`-sized blocks, and
/// returns jobs that each write up to 16 MiB of them in place.
fn blocks_jobs(
    path: &Path,
    size: u64,
    block: u64,
    pattern: Pattern,
    seed: u64,
) -> Result<Vec<Job>> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(size)?;
    let nblocks = size.div_ceil(block);
    let per_job = (16 * MIB / block).max(1);
    let mut jobs: Vec<Job> = Vec::new();
    let mut first = 0;
    while first < nblocks {
        let last = (first + per_job).min(nblocks);
        let path = path.to_path_buf();
        jobs.push(Box::new(move |buf: &mut Vec<u8>| {
            let file = OpenOptions::new().write(true).open(&path)?;
            let start = first * block;
            let end = (last * block).min(size);
            let len = (end - start) as usize;
            if buf.len() < len {
                buf.resize(len, 0);
            }
            for (k, chunk) in (first..last).zip(buf[..len].chunks_mut(block as usize)) {
                fill_block(pattern, seed, k, chunk);
            }
            file.write_all_at(&buf[..len], start)
                .with_context(|| format!("writing {}", path.display()))
        }));
        first = last;
    }
    Ok(jobs)
}

fn fill_block(pattern: Pattern, seed: u64, k: u64, buf: &mut [u8]) {
    match pattern {
        Pattern::Text => fill(Kind::Text, seed_of(seed, k), buf),
        Pattern::Random => fill(Kind::Random, seed_of(seed, k), buf),
        Pattern::Dump => fill(Kind::Dump, seed_of(seed, k), buf),
        Pattern::Repeated => fill(Kind::Random, seed_of(seed, k % 4), buf),
        Pattern::Image => {
            let mut rng = Rng::new(seed_of(seed, k));
            let x = rng.unit();
            if x < 0.30 {
                buf.fill(0);
            } else if x < 0.60 {
                fill(Kind::Random, rng.next_u64(), buf);
            } else if x < 0.85 {
                fill(Kind::Text, rng.next_u64(), buf);
            } else if k > 0 {
                // A copy of an earlier block (fillers are prefix-consistent,
                // so a short last block is a prefix of that copy).
                fill_block(pattern, seed, rng.below(k), buf);
            } else {
                buf.fill(0);
            }
        }
    }
}

// ---------------------------------------------------------------- many

fn many_jobs(dir: &Path, p: Params, seed: u64) -> Result<Vec<Job>> {
    let mut rng = Rng::new(seed);
    // Directories 3 wide, as deep as needed for ~30 files each (at most 8).
    let mut levels: Vec<Vec<PathBuf>> = vec![vec![PathBuf::new()]];
    let mut ndirs = 1;
    while levels.len() <= 8 && (ndirs as u64) * 30 < p.files {
        let mut next = Vec::new();
        for parent in levels.last().unwrap() {
            for _ in 0..3 {
                next.push(parent.join(format!("d{ndirs}-{}", rng.word())));
                ndirs += 1;
            }
        }
        levels.push(next);
    }
    let dirs: Vec<PathBuf> = levels.into_iter().flatten().collect();
    for d in &dirs {
        fs::create_dir_all(dir.join(d))?;
    }
    let mut specs = Vec::with_capacity(p.files as usize);
    for i in 0..p.files as usize {
        let size = if rng.chance(0.4) {
            0
        } else {
            rng.log_uniform(1, 1024)
        };
        let path = dir
            .join(&dirs[i % dirs.len()])
            .join(format!("{}-{i}.txt", rng.word()));
        specs.push(FileSpec {
            path,
            size,
            kind: Kind::Text,
            seed: seed_of(seed, i as u64),
        });
    }
    let specs = std::sync::Arc::new(specs);
    let per_job = 2000;
    Ok((0..specs.len())
        .step_by(per_job)
        .map(|start| {
            let specs = specs.clone();
            Box::new(move |buf: &mut Vec<u8>| {
                for spec in &specs[start..(start + per_job).min(specs.len())] {
                    write_file(&spec.path, spec.size as usize, spec.kind, spec.seed, buf)?;
                }
                Ok(())
            }) as Job
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        fsutil::remove(&dir).unwrap();
        dir
    }

    fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let (files, _) = fsutil::list(root).unwrap();
        files
            .into_iter()
            .map(|f| {
                (
                    f.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&f).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn smoke_tree_is_deterministic_and_mutate_changes_it_the_same_way() {
        let (a, b) = (scratch("tree-a"), scratch("tree-b"));
        for dir in [&a, &b] {
            fs::create_dir_all(dir).unwrap();
            run_jobs(tree_jobs(dir, params(SetKind::Tree, Scale::Smoke), 1).unwrap()).unwrap();
        }
        let before = snapshot(&a);
        assert_eq!(before, snapshot(&b));
        assert_eq!(before.len(), 400);
        let total: usize = before.iter().map(|(_, d)| d.len()).sum();
        assert!((total as i64 - (4 << 20) as i64).abs() < 4096, "{total}");

        let m = super::super::mutate::mutate(&a, 1).unwrap();
        super::super::mutate::mutate(&b, 1).unwrap();
        assert_eq!(
            (m.appended, m.edited, m.created, m.deleted, m.renamed),
            (3, 3, 2, 1, 1)
        );
        let after = snapshot(&a);
        assert_eq!(after, snapshot(&b));
        assert_ne!(before, after);
        assert_eq!(after.len(), 400 + 2 - 1);
        fsutil::remove(&a).unwrap();
        fsutil::remove(&b).unwrap();
    }
}
