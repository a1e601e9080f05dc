//! `cargo xtask bench --databases`: what a database's daily dump adds to a
//! repository, cairn against restic on the same dump files.
//!
//! A PostgreSQL server of the bench's own (a temporary data directory, a
//! unix socket, run as `nobody` when the bench runs as root) holds a shop
//! database: `orders` (numbers, text, timestamps) and `attachments` (2 KiB
//! of random bytes each), about 1 GiB of plain SQL at full scale (100 MiB
//! `--quick`, 5 MiB `--smoke`). Three days are dumped, each in three
//! formats (plain SQL, custom `-Fc` with its default compression, and
//! `-Fc -Z0`):
//!
//! | day | change from the day before |
//! |---|---|
//! | 1 | the database as generated |
//! | 2 | 1% of the rows of each table updated, one run of ids (as recent orders are), then `VACUUM` |
//! | 3 | 1% of the rows updated, scattered (every 100th id), then `VACUUM` |
//!
//! Each tool backs up each format's dumps, day after day, into one
//! repository per (tool, format), reading the same file through its stdin
//! (`backup --stdin --stdin-filename`). Reported: the bytes each backup
//! adds to the repository (growth of the repository's files), the wall
//! time and peak RSS of each backup. The table goes to stdout and
//! `target/bench/databases*.md`, the figures to `.json`.
//!
//! Updated rows move in PostgreSQL (a new row version where there is
//! room), so a dump after updates differs where the rows left and where
//! they landed; scattered updates touch every chunk of the dump, and no
//! content-defined chunking can share those chunks. Compressed formats
//! change throughout after any change and defeat deduplication whatever
//! the pattern.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::run::{self, Spec};
use super::sequence::ToolKind;
use super::{fsutil, report, Options, Scale};
use crate::sys;

/// Rows of `orders` and `attachments` at each scale: about 1 GiB, 100 MiB
/// and 5 MiB of plain SQL.
fn rows(scale: Scale) -> (u64, u64) {
    match scale {
        Scale::Full => (4_500_000, 112_000),
        Scale::Quick => (400_000, 10_000),
        Scale::Smoke => (20_000, 500),
    }
}

/// The dump formats: name, file name, pg_dump arguments.
const FORMATS: [(&str, &str, &[&str]); 3] = [
    ("plain SQL", "shop.sql", &[]),
    ("-Fc", "shop.dump", &["-Fc"]),
    ("-Fc -Z0", "shop-z0.dump", &["-Fc", "-Z0"]),
];

const DAYS: [&str; 3] = [
    "day 1 (first backup)",
    "day 2: 1% updated, one run of ids",
    "day 3: 1% updated, scattered",
];

/// The bench's PostgreSQL server, stopped when dropped.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Child,
}

fn postgres_bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (`apt-get install postgresql`)")?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .context("no /usr/lib/postgresql/*/bin/postgres")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// PostgreSQL refuses to run as root: then it runs as `nobody`.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres> {
        let bin = postgres_bin_dir()?;
        fsutil::remove(dir)?;
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        if is_root() {
            std::os::unix::fs::chown(dir, Some(65534), Some(65534))
                .with_context(|| format!("chown nobody {}", dir.display()))?;
        }
        let data = dir.join("data");
        sys::run(
            as_server_user(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "bench", "--auth=trust", "-E", "UTF8"])
                .args(["--locale=C.UTF-8", "--no-sync"])
                .stdout(sys::to_stderr()),
        )?;
        let port = super::servers::free_addr()?.port();
        let log = fs::File::create(dir.join("server.log"))?;
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir)
            .args(["-p", &port.to_string(), "-c", "listen_addresses="])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=256MB"])
            .args(["-c", "max_wal_size=4GB", "-c", "autovacuum=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        let mut pg = Postgres {
            bin,
            dir: dir.to_path_buf(),
            port,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(pg.bin.join("pg_isready"))
                .args(pg.conn())
                .arg("-q")
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(pg);
            }
            if let Some(st) = pg.child.try_wait()? {
                bail!(
                    "postgres exited ({st}); see {}",
                    dir.join("server.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("postgres did not start within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn conn(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.dir.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "bench".into(),
        ]
    }

    /// Run SQL (statements one after another, each in its own
    /// transaction, as `psql -f` does).
    fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let mut child = Command::new(self.bin.join("psql"))
            .args(self.conn())
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-d", db, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running psql")?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(sql.as_bytes())
            .context("writing to psql")?;
        let out = child.wait_with_output().context("waiting for psql")?;
        if !out.status.success() {
            bail!(
                "psql failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn dump(&self, db: &str, args: &[&str], file: &Path) -> Result<Duration> {
        let t = Instant::now();
        sys::run(
            Command::new(self.bin.join("pg_dump"))
                .args(self.conn())
                .args(args)
                .arg("-f")
                .arg(file)
                .arg(db),
        )?;
        Ok(t.elapsed())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: kill takes no pointers; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shop, generated in SQL: random bytes from `sha512(random())`.
fn generate(pg: &Postgres, orders: u64, attachments: u64) -> Result<()> {
    pg.psql("postgres", "CREATE DATABASE shop;")?;
    pg.psql(
        "shop",
        &format!(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, \
               status text NOT NULL, amount numeric(12,2), created timestamptz, note text);
             INSERT INTO orders SELECT i, 1 + (i * 7919) % 100000, \
               (ARRAY['new','paid','shipped','returned'])[1 + i % 4], \
               round((random() * 10000)::numeric, 2), \
               timestamptz '2024-01-01 00:00:00+00' + i * interval '7 seconds', \
               'order ' || i || ' for ' || md5(i::text) || ' ' || md5(random()::text) \
             FROM generate_series(1::bigint, {orders}) i;
             CREATE TABLE attachments (id bigint PRIMARY KEY, order_id bigint NOT NULL, \
               name text, data bytea);
             INSERT INTO attachments SELECT i, 1 + (i * 31) % {orders}, 'scan-' || i || '.pdf', \
               (SELECT string_agg(sha512((random()::text || i || g)::bytea), ''::bytea) \
                  FROM generate_series(1, 32) g) \
             FROM generate_series(1::bigint, {attachments}) i;
             VACUUM ANALYZE;"
        ),
    )?;
    Ok(())
}

/// Day 2 (`scattered` false) or day 3: 1% of each table's rows updated.
fn update(pg: &Postgres, orders: u64, attachments: u64, scattered: bool) -> Result<()> {
    let pick = |n: u64| {
        if scattered {
            "id % 100 = 37".to_string()
        } else {
            format!("id > {} AND id <= {}", n / 2, n / 2 + n / 100)
        }
    };
    pg.psql(
        "shop",
        &format!(
            "UPDATE orders SET status = 'returned', amount = amount + 1 WHERE {};
             UPDATE attachments SET data = sha512(data) || data WHERE {};
             VACUUM ANALYZE;",
            pick(orders),
            pick(attachments)
        ),
    )?;
    Ok(())
}

/// Apparent size of every file in a repository.
fn repo_bytes(repo: &Path) -> u64 {
    fsutil::usage(repo).map(|u| u.bytes).unwrap_or(0)
}

struct Backup {
    dump_bytes: u64,
    added: u64,
    wall: Duration,
    max_rss_kib: u64,
}

pub fn run(opts: &Options) -> Result<()> {
    let scale = opts.scale;
    let (orders, attachments) = rows(scale);
    // Dumps of 1 GiB and more are better on disk than in RAM.
    let base = opts
        .dir
        .clone()
        .unwrap_or_else(|| sys::target_dir().join("bench/databases"));
    fs::create_dir_all(&base)?;
    let base = base.canonicalize()?;
    let _lock = super::lock(&base)?;
    let (cairn, restic) = super::tools(opts)?;
    let machine = report::Machine::read();
    let tools = [&cairn, &restic];

    eprintln!(
        "[bench databases] starting PostgreSQL in {}",
        base.join("pg").display()
    );
    let pg = Postgres::start(&base.join("pg"))?;
    let t = Instant::now();
    generate(&pg, orders, attachments)?;
    let db_bytes: u64 = pg
        .psql("shop", "SELECT pg_database_size('shop');")?
        .parse()
        .unwrap_or(0);
    eprintln!(
        "[bench databases] generated {} orders and {} attachments, {} on disk ({:.0} s)",
        report::thousands(orders),
        report::thousands(attachments),
        report::bytes(db_bytes),
        t.elapsed().as_secs_f64()
    );

    let dumps = base.join("dumps");
    let repos = base.join("repo");
    let logs = base.join("logs");
    for d in [&repos, &dumps, &logs, &base.join("cache")] {
        fsutil::remove(d)?;
        fs::create_dir_all(d)?;
    }
    // results[format][day][tool]
    let mut results: Vec<Vec<Vec<Option<Backup>>>> = Vec::new();
    let mut dump_times: Vec<Vec<f64>> = vec![Vec::new(); FORMATS.len()];
    for _ in FORMATS {
        results.push((0..DAYS.len()).map(|_| vec![None, None]).collect());
    }
    for (day, day_name) in DAYS.iter().enumerate() {
        match day {
            0 => {}
            1 => update(&pg, orders, attachments, false)?,
            _ => update(&pg, orders, attachments, true)?,
        }
        for (f, (format, file, args)) in FORMATS.iter().enumerate() {
            let path = dumps.join(file);
            let took = pg.dump("shop", args, &path)?;
            dump_times[f].push(took.as_secs_f64());
            let dump_bytes = fs::metadata(&path)?.len();
            eprintln!(
                "[bench databases] {day_name}: {format} dump {} in {:.1} s",
                report::bytes(dump_bytes),
                took.as_secs_f64()
            );
            // Read once so neither tool pays for the first read.
            fsutil::read_all(&path)?;
            // Alternate which tool goes first.
            let order: Vec<usize> = if (day + f) % 2 == 0 {
                vec![0, 1]
            } else {
                vec![1, 0]
            };
            for t in order {
                let tool = tools[t];
                let Ok(bin) = &tool.bin else {
                    continue;
                };
                let repo = repos.join(format!("{}-{f}", tool.name()));
                let env = vec![
                    (
                        match tool.kind {
                            ToolKind::Cairn => "CAIRN_REPOSITORY",
                            ToolKind::Restic => "RESTIC_REPOSITORY",
                        },
                        repo.clone().into_os_string(),
                    ),
                    (
                        match tool.kind {
                            ToolKind::Cairn => "CAIRN_PASSWORD",
                            ToolKind::Restic => "RESTIC_PASSWORD",
                        },
                        "cairn-bench-password".into(),
                    ),
                    (
                        match tool.kind {
                            ToolKind::Cairn => "CAIRN_CACHE_DIR",
                            ToolKind::Restic => "RESTIC_CACHE_DIR",
                        },
                        base.join("cache").join(tool.name()).into_os_string(),
                    ),
                ];
                let spec = |args: &[&str], stdin: Option<PathBuf>, log: &str| Spec {
                    program: bin,
                    args: args.iter().map(Into::into).collect(),
                    env: env.clone(),
                    stdin_file: stdin,
                    stderr_log: logs.join(format!("{}-{f}-{log}.log", tool.name())),
                    timeout: scale.timeout(),
                };
                if day == 0 {
                    let (outcome, _) = run::run(&spec(&["init"], None, "init"))?;
                    if !outcome.success() {
                        bail!("{} init failed: {}", tool.name(), outcome.describe());
                    }
                }
                let before = repo_bytes(&repo);
                let (outcome, m) = run::run(&spec(
                    &["backup", "--stdin", "--stdin-filename", file],
                    Some(path.clone()),
                    &format!("day{}", day + 1),
                ))?;
                if !outcome.success() {
                    bail!(
                        "{} backup of {format} ({day_name}) failed: {}; see {}",
                        tool.name(),
                        outcome.describe(),
                        logs.display()
                    );
                }
                let added = repo_bytes(&repo).saturating_sub(before);
                eprintln!(
                    "[bench databases]   {}: added {} in {:.1} s, peak RSS {}",
                    tool.name(),
                    report::bytes_fine(added),
                    m.wall.as_secs_f64(),
                    report::bytes(m.max_rss_kib * 1024)
                );
                results[f][day][t] = Some(Backup {
                    dump_bytes,
                    added,
                    wall: m.wall,
                    max_rss_kib: m.max_rss_kib,
                });
            }
        }
    }
    drop(pg);
    fsutil::remove(&dumps)?;
    fsutil::remove(&repos)?;
    fsutil::remove(&base.join("cache"))?;

    // Report.
    let mut text = format!(
        "cairn bench --databases ({} scale): PostgreSQL {}, a database of {} orders and {} attachments ({} on disk); each day dumped in three formats and backed up by each tool through stdin into a repository per (tool, format)\n",
        scale.name(),
        postgres_bin_dir()
            .ok()
            .and_then(|b| b.parent().and_then(|v| v.file_name()).map(|v| v.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        report::thousands(orders),
        report::thousands(attachments),
        report::bytes(db_bytes),
    );
    text.push_str(&format!(
        "machine: {} × {}, {} MiB RAM, Linux {}\ncairn: {}\nrestic: {}\n\n",
        machine.nproc,
        machine.cpu,
        machine.mem_total_mib,
        machine.kernel,
        cairn.version,
        restic.version
    ));
    text.push_str("added: the growth of the repository's files; in parentheses, on day 1 the share of the dump stored, on days 2 and 3 the share of day 1's addition\n\n");
    text.push_str("| format | day | dump | cairn added | restic added | cairn time | restic time | cairn peak RSS | restic peak RSS |\n");
    text.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    let mut rows_json = Vec::new();
    for (f, (format, _, _)) in FORMATS.iter().enumerate() {
        for (day, day_name) in DAYS.iter().enumerate() {
            let [c, r] = [&results[f][day][0], &results[f][day][1]];
            let dump = c.as_ref().or(r.as_ref()).map_or(0, |b| b.dump_bytes);
            let cell = |b: &Option<Backup>, what: &dyn Fn(&Backup) -> String| {
                b.as_ref().map_or("–".to_string(), what)
            };
            // Day 1: the share of the dump stored; later days: the share
            // of day 1's addition.
            let added_cell = |tool: usize| {
                let Some(b) = &results[f][day][tool] else {
                    return "–".to_string();
                };
                let base = if day == 0 {
                    b.dump_bytes
                } else {
                    results[f][0][tool].as_ref().map_or(0, |d| d.added)
                };
                format!(
                    "{} ({:.0}%)",
                    report::bytes_fine(b.added),
                    100.0 * b.added as f64 / base.max(1) as f64
                )
            };
            let time = |b: &Backup| format!("{:.1} s", b.wall.as_secs_f64());
            let rss = |b: &Backup| report::bytes(b.max_rss_kib * 1024);
            text.push_str(&format!(
                "| {format} | {day_name} | {} | {} | {} | {} | {} | {} | {} |\n",
                report::bytes(dump),
                added_cell(0),
                added_cell(1),
                cell(c, &time),
                cell(r, &time),
                cell(c, &rss),
                cell(r, &rss),
            ));
            let j = |b: &Option<Backup>| {
                b.as_ref().map(|b| {
                    json!({"added_bytes": b.added, "wall_s": b.wall.as_secs_f64(), "max_rss_kib": b.max_rss_kib})
                })
            };
            rows_json.push(json!({
                "format": format, "day": day + 1, "change": day_name, "dump_bytes": dump,
                "dump_s": dump_times[f].get(day), "cairn": j(c), "restic": j(r),
            }));
        }
    }
    print!("{text}");
    let stem = match scale {
        Scale::Full => "databases".to_string(),
        other => format!("databases-{}", other.name()),
    };
    let out = sys::target_dir().join("bench");
    fs::create_dir_all(&out)?;
    fs::write(out.join(format!("{stem}.md")), &text)?;
    let body = json!({
        "scale": scale.name(),
        "orders": orders,
        "attachments": attachments,
        "database_bytes": db_bytes,
        "machine": machine,
        "cairn": cairn.version,
        "restic": restic.version,
        "rows": rows_json,
    });
    fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&body)? + "\n",
    )?;
    eprintln!(
        "[bench databases] wrote {}",
        out.join(format!("{stem}.{{md,json}}")).display()
    );
    Ok(())
}
