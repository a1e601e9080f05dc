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

/// Medians per (set, operation), rows in the order they were first run.
pub fn summarize(samples: &[Sample], shows_size: impl Fn(&str) -> bool) -> Vec<Row> {
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
                groups
                    .get(&(set, op, tool))
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            };
            Row {
                set,
                op,
                shows_size: shows_size(op),
                cairn: cell(of("cairn")),
                restic: cell(of("restic")),
            }
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

/// The table as Markdown (readable as is, and pasteable into README.md).
/// `first` names the first column (the data set, or the server). Columns
/// of bytes on the wire appear when any row has them.
pub fn table(rows: &[Row], first: &str) -> String {
    let wire = rows.iter().any(|r| {
        [&r.cairn, &r.restic].iter().any(|c| {
            matches!(
                c,
                Cell::Ok {
                    sent_bytes: Some(_),
                    ..
                }
            )
        })
    });
    let mut header = vec![
        first,
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
        "size ratio",
    ];
    if wire {
        header.extend(["cairn sent/recv", "restic sent/recv"]);
    }
    let mut lines: Vec<Vec<String>> = Vec::new();
    for row in rows {
        let mut line = vec![row.set.to_string(), row.op.to_string()];
        let (c, r) = (&row.cairn, &row.restic);
        let fig = |cell: &Cell, f: &dyn Fn(f64, f64, u64, Option<u64>) -> String| match cell {
            Cell::Ok {
                wall_s,
                cpu_s,
                max_rss_kib,
                repo_disk_bytes,
                ..
            } => f(*wall_s, *cpu_s, *max_rss_kib, *repo_disk_bytes),
            Cell::Failed { .. } => "failed".to_string(),
            Cell::NotRun => "–".to_string(),
        };
        let both = |f: &dyn Fn(&Cell, &Cell) -> Option<f64>| match f(c, r) {
            Some(x) => ratio(x),
            None => "–".to_string(),
        };
        line.push(fig(c, &|w, _, _, _| secs(w)));
        line.push(fig(r, &|w, _, _, _| secs(w)));
        line.push(both(&|c, r| match (c, r) {
            (Cell::Ok { wall_s: cw, .. }, Cell::Ok { wall_s: rw, .. }) => Some(rw / cw),
            _ => None,
        }));
        line.push(fig(c, &|_, cpu, _, _| secs(cpu)));
        line.push(fig(r, &|_, cpu, _, _| secs(cpu)));
        line.push(fig(c, &|_, _, rss, _| bytes(rss * 1024)));
        line.push(fig(r, &|_, _, rss, _| bytes(rss * 1024)));
        line.push(both(&|c, r| match (c, r) {
            (
                Cell::Ok {
                    max_rss_kib: cm, ..
                },
                Cell::Ok {
                    max_rss_kib: rm, ..
                },
            ) => Some(*cm as f64 / *rm as f64),
            _ => None,
        }));
        if row.shows_size {
            let size = |cell: &Cell| match cell {
                Cell::Ok {
                    repo_disk_bytes: Some(b),
                    ..
                } => bytes(*b),
                Cell::Ok { .. } | Cell::NotRun => "–".to_string(),
                Cell::Failed { .. } => "failed".to_string(),
            };
            line.push(size(c));
            line.push(size(r));
            line.push(both(&|c, r| match (c, r) {
                (
                    Cell::Ok {
                        repo_disk_bytes: Some(cb),
                        ..
                    },
                    Cell::Ok {
                        repo_disk_bytes: Some(rb),
                        ..
                    },
                ) => Some(*cb as f64 / *rb as f64),
                _ => None,
            }));
        } else {
            line.extend(["", "", ""].map(String::from));
        }
        if wire {
            for cell in [c, r] {
                line.push(match cell {
                    Cell::Ok {
                        sent_bytes: Some(s),
                        recv_bytes: Some(v),
                        ..
                    } => format!("{} / {}", bytes_fine(*s), bytes_fine(*v)),
                    Cell::Failed { .. } => "failed".to_string(),
                    Cell::Ok { .. } | Cell::NotRun => "–".to_string(),
                });
            }
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
    fmt_line(&mut out, &mut header.iter().copied());
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
}
