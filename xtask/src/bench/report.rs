//! Results: raw samples (one per tool, operation and repetition), their
//! medians, the table on stdout, and `results*.json` / `.csv` / `table*.md`
//! under `target/bench/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// One measured (or failed) run of one operation by one tool.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub set: &'static str,
    pub op: &'static str,
    pub tool: &'static str,
    pub rep: usize,
    pub ok: bool,
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_kib: u64,
    /// Repository size after the operation: du (allocated) and file bytes.
    pub repo_disk_bytes: Option<u64>,
    pub repo_file_bytes: Option<u64>,
    /// Bytes on the wire to and from the server (`bench --backends` only).
    pub sent_bytes: Option<u64>,
    pub recv_bytes: Option<u64>,
    pub error: Option<String>,
}

/// The median figures of one tool on one row, or why there are none.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell {
    NotRun,
    Failed {
        failed: usize,
        of: usize,
        error: String,
    },
    Ok {
        wall_s: f64,
        cpu_s: f64,
        max_rss_kib: u64,
        repo_disk_bytes: Option<u64>,
        sent_bytes: Option<u64>,
        recv_bytes: Option<u64>,
        reps: usize,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub set: &'static str,
    pub op: &'static str,
    /// Whether the repository size is a figure of interest on this row.
    pub shows_size: bool,
    pub cairn: Cell,
    pub restic: Cell,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn cell(samples: &[&Sample]) -> Cell {
    if samples.is_empty() {
        return Cell::NotRun;
    }
    let failed: Vec<&&Sample> = samples.iter().filter(|s| !s.ok).collect();
    if let Some(first) = failed.first() {
        return Cell::Failed {
            failed: failed.len(),
            of: samples.len(),
            error: first.error.clone().unwrap_or_default(),
        };
    }
    let median_of = |f: &dyn Fn(&Sample) -> Option<u64>| {
        let v: Vec<f64> = samples
            .iter()
            .filter_map(|s| f(s).map(|b| b as f64))
            .collect();
        (!v.is_empty()).then(|| median(v) as u64)
    };
    Cell::Ok {
        wall_s: median(samples.iter().map(|s| s.wall_s).collect()),
        cpu_s: median(samples.iter().map(|s| s.user_s + s.sys_s).collect()),
        max_rss_kib: median(samples.iter().map(|s| s.max_rss_kib as f64).collect()) as u64,
        repo_disk_bytes: median_of(&|s| s.repo_disk_bytes),
        sent_bytes: median_of(&|s| s.sent_bytes),
        recv_bytes: median_of(&|s| s.recv_bytes),
        reps: samples.len(),
    }
}

/// Medians per (set, operation), rows in the order they were first run:
/// cairn against restic (the layout of `--backends`).
pub fn summarize(samples: &[Sample], shows_size: impl Fn(&str) -> bool) -> Vec<Row> {
    summarize_peers(samples, &["restic"], shows_size)
        .into_iter()
        .map(|row| Row {
            set: row.set,
            op: row.op,
            shows_size: row.shows_size,
            cairn: row.cairn,
            restic: row
                .peers
                .into_iter()
                .next()
                .map_or(Cell::NotRun, |p| p.cell),
        })
        .collect()
}

/// One peer's medians on a row.
#[derive(Clone, Debug, Serialize)]
pub struct PeerCell {
    pub tool: &'static str,
    #[serde(flatten)]
    pub cell: Cell,
}

/// One row of the main bench: cairn and each peer, and how cairn compares
/// with the fastest peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRow {
    pub set: &'static str,
    pub op: &'static str,
    /// Whether the repository size is a figure of interest on this row.
    pub shows_size: bool,
    pub cairn: Cell,
    /// In the order the peers were given.
    pub peers: Vec<PeerCell>,
    /// The peer with the lowest median time among those that succeeded.
    pub best_peer: Option<&'static str>,
    /// The best peer's time ÷ cairn's (above 1: cairn faster).
    pub speedup_vs_best_peer: Option<f64>,
}

impl PeerRow {
    fn new(
        set: &'static str,
        op: &'static str,
        shows_size: bool,
        cairn: Cell,
        peers: Vec<PeerCell>,
    ) -> PeerRow {
        let best = peers
            .iter()
            .filter_map(|p| wall(&p.cell).map(|w| (p.tool, w)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let speedup = match (best, wall(&cairn)) {
            (Some((_, peer)), Some(cairn)) => Some(peer / cairn).filter(|x| x.is_finite()),
            _ => None,
        };
        PeerRow {
            set,
            op,
            shows_size,
            cairn,
            peers,
            best_peer: best.map(|(tool, _)| tool),
            speedup_vs_best_peer: speedup,
        }
    }

    /// cairn's figure ÷ the lowest of the peers' (`None` unless cairn and
    /// at least one peer have one).
    fn ratio_to_lowest(&self, f: impl Fn(&Cell) -> Option<f64>) -> Option<f64> {
        let lowest = self
            .peers
            .iter()
            .filter_map(|p| f(&p.cell))
            .min_by(f64::total_cmp)?;
        Some(f(&self.cairn)? / lowest).filter(|x| x.is_finite())
    }
}

fn wall(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Ok { wall_s, .. } => Some(*wall_s),
        _ => None,
    }
}

fn rss(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Ok { max_rss_kib, .. } => Some(*max_rss_kib as f64),
        _ => None,
    }
}

fn repo_size(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Ok {
            repo_disk_bytes: Some(b),
            ..
        } => Some(*b as f64),
        _ => None,
    }
}

/// Medians per (set, operation) of cairn and of each of `peers` (tool
/// names as in the samples), rows in the order they were first run.
pub fn summarize_peers(
    samples: &[Sample],
    peers: &[&'static str],
    shows_size: impl Fn(&str) -> bool,
) -> Vec<PeerRow> {
    let mut order: Vec<(&'static str, &'static str)> = Vec::new();
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        if !order.contains(&(s.set, s.op)) {
            order.push((s.set, s.op));
        }
        groups.entry((s.set, s.op, s.tool)).or_default().push(s);
    }
    order
        .into_iter()
        .map(|(set, op)| {
            let of = |tool| {
                cell(
                    groups
                        .get(&(set, op, tool))
                        .map(Vec::as_slice)
                        .unwrap_or(&[]),
                )
            };
            let peer_cells = peers
                .iter()
                .map(|&tool| PeerCell {
                    tool,
                    cell: of(tool),
                })
                .collect();
            PeerRow::new(set, op, shows_size(op), of("cairn"), peer_cells)
        })
        .collect()
}

// ------------------------------------------------------------- table

pub fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

pub fn bytes(b: u64) -> String {
    let mib = b as f64 / (1u64 << 20) as f64;
    if b < 1 << 20 {
        format!("{} KiB", b.div_ceil(1024))
    } else if mib < 10.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{mib:.0} MiB")
    }
}

/// Like [`bytes`], exact below 10 KiB: for byte counts that may be tiny.
pub fn bytes_fine(b: u64) -> String {
    if b < 1024 {
        format!("{b} B")
    } else if b < 10 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        bytes(b)
    }
}

/// 300000 → "300,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".to_string()
    }
}

/// The table as Markdown (readable as is, and pasteable into README.md):
/// cairn against restic, with a "speedup" column (the layout of
/// `--backends`). `first` names the first column (the data set, or the
/// server). Columns of bytes on the wire appear when any row has them.
pub fn table(rows: &[Row], first: &str) -> String {
    let rows: Vec<PeerRow> = rows
        .iter()
        .map(|r| {
            let restic = PeerCell {
                tool: "restic",
                cell: r.restic.clone(),
            };
            PeerRow::new(r.set, r.op, r.shows_size, r.cairn.clone(), vec![restic])
        })
        .collect();
    render(&rows, first, &["restic"], false)
}

/// The main bench's table: each tool's time, CPU, peak RSS and repository
/// size, the best (fastest) peer of each row and cairn's speedup against
/// it; the RSS and size ratios are cairn's ÷ the lowest peer's.
pub fn peer_table(rows: &[PeerRow], first: &str, peers: &[&'static str]) -> String {
    render(rows, first, peers, true)
}

fn render(rows: &[PeerRow], first: &str, peers: &[&'static str], best_column: bool) -> String {
    let wire = rows.iter().any(|r| {
        std::iter::once(&r.cairn)
            .chain(r.peers.iter().map(|p| &p.cell))
            .any(|c| {
                matches!(
                    c,
                    Cell::Ok {
                        sent_bytes: Some(_),
                        ..
                    }
                )
            })
    });
    let tools: Vec<&str> = std::iter::once("cairn")
        .chain(peers.iter().copied())
        .collect();
    let per_tool = |what: &str| -> Vec<String> {
        tools
            .iter()
            .map(|t| {
                if what.is_empty() {
                    t.to_string()
                } else {
                    format!("{t} {what}")
                }
            })
            .collect()
    };
    let mut header: Vec<String> = vec![first.to_string(), "operation".to_string()];
    header.extend(per_tool(""));
    if best_column {
        header.push("best peer".to_string());
        header.push("speedup vs best peer".to_string());
    } else {
        header.push("speedup".to_string());
    }
    header.extend(per_tool("CPU"));
    header.extend(per_tool("RSS"));
    header.push("RSS ratio".to_string());
    header.extend(per_tool("repo"));
    header.push("size ratio".to_string());
    if wire {
        header.extend(per_tool("sent/recv"));
    }
    let ratio_or_dash = |x: Option<f64>| x.map_or_else(|| "–".to_string(), ratio);
    let mut lines: Vec<Vec<String>> = Vec::new();
    for row in rows {
        let cells: Vec<&Cell> = std::iter::once(&row.cairn)
            .chain(peers.iter().map(|&tool| {
                row.peers
                    .iter()
                    .find(|p| p.tool == tool)
                    .map_or(&Cell::NotRun, |p| &p.cell)
            }))
            .collect();
        let fig = |cell: &Cell, f: &dyn Fn(f64, f64, u64) -> String| match cell {
            Cell::Ok {
                wall_s,
                cpu_s,
                max_rss_kib,
                ..
            } => f(*wall_s, *cpu_s, *max_rss_kib),
            Cell::Failed { .. } => "failed".to_string(),
            Cell::NotRun => "–".to_string(),
        };
        let mut line = vec![row.set.to_string(), row.op.to_string()];
        line.extend(cells.iter().map(|c| fig(c, &|w, _, _| secs(w))));
        if best_column {
            line.push(row.best_peer.unwrap_or("–").to_string());
        }
        line.push(ratio_or_dash(row.speedup_vs_best_peer));
        line.extend(cells.iter().map(|c| fig(c, &|_, cpu, _| secs(cpu))));
        line.extend(cells.iter().map(|c| fig(c, &|_, _, rss| bytes(rss * 1024))));
        line.push(ratio_or_dash(row.ratio_to_lowest(rss)));
        if row.shows_size {
            line.extend(cells.iter().map(|cell| match cell {
                Cell::Ok {
                    repo_disk_bytes: Some(b),
                    ..
                } => bytes(*b),
                Cell::Ok { .. } | Cell::NotRun => "–".to_string(),
                Cell::Failed { .. } => "failed".to_string(),
            }));
            line.push(ratio_or_dash(row.ratio_to_lowest(repo_size)));
        } else {
            line.extend((0..=cells.len()).map(|_| String::new()));
        }
        if wire {
            line.extend(cells.iter().map(|cell| match cell {
                Cell::Ok {
                    sent_bytes: Some(s),
                    recv_bytes: Some(v),
                    ..
                } => format!("{} / {}", bytes_fine(*s), bytes_fine(*v)),
                Cell::Failed { .. } => "failed".to_string(),
                Cell::Ok { .. } | Cell::NotRun => "–".to_string(),
            }));
        }
        lines.push(line);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let fmt_line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        out.push('|');
        for (i, cell) in cells.enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i < 2 {
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{cell} |", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    fmt_line(&mut out, &mut header.iter().map(String::as_str));
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i < 2 {
            let _ = write!(out, " {dashes} |");
        } else {
            let _ = write!(out, " {}: |", &dashes[1..]);
        }
    }
    out.push('\n');
    for line in &lines {
        fmt_line(&mut out, &mut line.iter().map(String::as_str));
    }
    out
}

// ------------------------------------------------------------- files

/// Writes `<stem>.json`, `<stem>.csv` and `<stem>.md` (header + table).
pub fn write_files(
    dir: &Path,
    stem: &str,
    json: &serde_json::Value,
    samples: &[Sample],
    text: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{stem}.json"));
    let mut body = serde_json::to_string_pretty(json)?;
    body.push('\n');
    std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;

    let mut csv =
        String::from("set,op,tool,rep,ok,wall_s,user_s,sys_s,max_rss_kib,repo_disk_bytes,repo_file_bytes,sent_bytes,recv_bytes,error\n");
    for s in samples {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let error = s
            .error
            .as_deref()
            .unwrap_or("")
            .replace('"', "'")
            .replace('\n', " / ");
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.4},{:.4},{:.4},{},{},{},{},{},\"{}\"",
            s.set,
            s.op,
            s.tool,
            s.rep,
            s.ok,
            s.wall_s,
            s.user_s,
            s.sys_s,
            s.max_rss_kib,
            opt(s.repo_disk_bytes),
            opt(s.repo_file_bytes),
            opt(s.sent_bytes),
            opt(s.recv_bytes),
            error
        );
    }
    let path = dir.join(format!("{stem}.csv"));
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join(format!("{stem}.md"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

// ----------------------------------------------------------- machine

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub mem_total_mib: u64,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        Machine {
            nproc,
            cpu,
            kernel,
            mem_total_mib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(300_000), "300,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(1), "1 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(bytes(485 << 20), "485 MiB");
        assert_eq!(bytes_fine(0), "0 B");
        assert_eq!(bytes_fine(1023), "1023 B");
        assert_eq!(bytes_fine(1536), "1.5 KiB");
        assert_eq!(bytes_fine(100 << 10), "100 KiB");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    fn sample(tool: &'static str, ok: bool, wall_s: f64) -> Sample {
        Sample {
            set: "tree",
            op: "backup",
            tool,
            rep: 0,
            ok,
            wall_s,
            user_s: wall_s,
            sys_s: 0.0,
            max_rss_kib: 1024,
            repo_disk_bytes: Some(10 << 20),
            repo_file_bytes: Some(10 << 20),
            sent_bytes: None,
            recv_bytes: None,
            error: (!ok).then(|| "boom".to_string()),
        }
    }

    #[test]
    fn a_failed_repetition_fails_the_row_and_the_table_says_so() {
        let samples = vec![
            sample("cairn", true, 1.0),
            sample("restic", true, 4.0),
            sample("cairn", false, 0.0),
            sample("restic", true, 2.0),
        ];
        let rows = summarize(&samples, |_| true);
        assert_eq!(rows.len(), 1);
        assert!(matches!(
            rows[0].cairn,
            Cell::Failed {
                failed: 1,
                of: 2,
                ..
            }
        ));
        assert!(matches!(rows[0].restic, Cell::Ok { wall_s, .. } if wall_s == 3.0));
        let table = table(&rows, "data set");
        assert!(table.contains("failed"), "{table}");
        assert_eq!(table.lines().count(), 3);
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{table}");
    }

    /// The cells of a Markdown table line, trimmed.
    fn cells(line: &str) -> Vec<&str> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(str::trim).collect()
    }

    fn sized(tool: &'static str, wall_s: f64, rss_kib: u64, repo_mib: u64) -> Sample {
        Sample {
            max_rss_kib: rss_kib,
            repo_disk_bytes: Some(repo_mib << 20),
            ..sample(tool, true, wall_s)
        }
    }

    #[test]
    fn the_restic_layout_keeps_its_columns() {
        let samples = vec![sample("cairn", true, 1.0), sample("restic", true, 4.0)];
        let table = table(&summarize(&samples, |_| true), "server");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            cells(lines[0]),
            [
                "server",
                "operation",
                "cairn",
                "restic",
                "speedup",
                "cairn CPU",
                "restic CPU",
                "cairn RSS",
                "restic RSS",
                "RSS ratio",
                "cairn repo",
                "restic repo",
                "size ratio"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "tree", "backup", "1.00 s", "4.00 s", "4.00×", "1.00 s", "4.00 s", "1.0 MiB",
                "1.0 MiB", "1.00×", "10 MiB", "10 MiB", "1.00×"
            ]
        );
    }

    #[test]
    fn each_row_names_the_fastest_peer_and_ratios_are_to_the_lowest_peer() {
        let samples = vec![
            sized("cairn", 1.0, 1024, 12),
            sized("restic", 4.0, 4096, 10),
            sized("rustic", 2.0, 2048, 20),
        ];
        let rows = summarize_peers(&samples, &["restic", "rustic"], |_| true);
        assert_eq!(rows[0].best_peer, Some("rustic"));
        assert_eq!(rows[0].speedup_vs_best_peer, Some(2.0));
        let table = peer_table(&rows, "data set", &["restic", "rustic"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            cells(lines[0]),
            [
                "data set",
                "operation",
                "cairn",
                "restic",
                "rustic",
                "best peer",
                "speedup vs best peer",
                "cairn CPU",
                "restic CPU",
                "rustic CPU",
                "cairn RSS",
                "restic RSS",
                "rustic RSS",
                "RSS ratio",
                "cairn repo",
                "restic repo",
                "rustic repo",
                "size ratio"
            ]
        );
        // RSS: cairn 1 MiB against rustic's 2 MiB (the lowest peer's);
        // size: 12 MiB against restic's 10 MiB (the smallest).
        assert_eq!(
            cells(lines[2]),
            [
                "tree", "backup", "1.00 s", "4.00 s", "2.00 s", "rustic", "2.00×", "1.00 s",
                "4.00 s", "2.00 s", "1.0 MiB", "4.0 MiB", "2.0 MiB", "0.50×", "12 MiB", "10 MiB",
                "20 MiB", "1.20×"
            ]
        );
    }

    #[test]
    fn a_failed_peer_is_not_the_best_one_and_every_peer_reaches_the_json() {
        let samples = vec![
            sample("cairn", true, 1.0),
            sample("restic", true, 3.0),
            sample("rustic", false, 0.0),
        ];
        let rows = summarize_peers(&samples, &["restic", "rustic"], |_| true);
        assert_eq!(rows[0].best_peer, Some("restic"));
        assert_eq!(rows[0].speedup_vs_best_peer, Some(3.0));
        let table = peer_table(&rows, "data set", &["restic", "rustic"]);
        let row = cells(table.lines().nth(2).unwrap()).join("|");
        assert!(
            row.starts_with("tree|backup|1.00 s|3.00 s|failed|restic|3.00×|"),
            "{table}"
        );
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["peers"][0]["tool"], "restic");
        assert_eq!(json["peers"][0]["status"], "ok");
        assert_eq!(json["peers"][0]["wall_s"], 3.0);
        assert_eq!(json["peers"][1]["tool"], "rustic");
        assert_eq!(json["peers"][1]["status"], "failed");
        assert_eq!(json["best_peer"], "restic");
    }

    #[test]
    fn without_any_peer_figure_there_is_no_best_peer() {
        let samples = vec![sample("cairn", true, 1.0), sample("rustic", false, 0.0)];
        let rows = summarize_peers(&samples, &["rustic"], |_| false);
        assert_eq!(rows[0].best_peer, None);
        assert_eq!(rows[0].speedup_vs_best_peer, None);
        let table = peer_table(&rows, "data set", &["rustic"]);
        let row = cells(table.lines().nth(2).unwrap()).join("|");
        assert!(row.starts_with("tree|backup|1.00 s|failed|–|–|"), "{table}");
    }
}
