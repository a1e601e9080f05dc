//! Choosing snapshots from command-line arguments, for the commands that
//! act on several (forget, tag, find, stats, rewrite).

use crate::error::Result;
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use cairn_repository::{Repository, SnapshotFilter};

/// The snapshots named by `ids` (full ids, unique prefixes or `latest`,
/// which honours the filter), or every snapshot passing the filter when no
/// id is given. Oldest first, each once. An unknown or ambiguous id is an
/// error naming it.
pub fn select(
    repo: &Repository,
    ids: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(Id, Snapshot)>> {
    if ids.is_empty() {
        return Ok(repo
            .list_snapshots()?
            .into_iter()
            .filter(|(_, s)| filter.matches(s))
            .collect());
    }
    let mut out: Vec<(Id, Snapshot)> = Vec::new();
    for spec in ids {
        let (id, s) = repo.find_snapshot(spec, filter)?;
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, s));
        }
    }
    out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// Split repeatable, comma-separated tag arguments (`--add a,b --add c`).
pub fn tag_list(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in args
        .iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// A table of snapshots as `cairn snapshots` prints it, with an extra
/// column; `compact`: one line per snapshot, without the paths (restic's
/// `--compact`).
pub fn print_table(
    rows: &[(Id, &Snapshot, Vec<String>)],
    extra_header: Option<&str>,
    compact: bool,
) {
    let header: Vec<&str> = ["ID", "Time", "Host", "Tags"]
        .into_iter()
        .chain(extra_header)
        .chain((!compact).then_some("Paths"))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(id, s, extra)| {
            let mut c = vec![
                id.short(),
                s.time
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                s.hostname.clone(),
                s.tags.join(","),
            ];
            if extra_header.is_some() {
                c.push(extra.join(if compact { ", " } else { "\n" }));
            }
            if !compact {
                c.push(s.paths.join("\n"));
            }
            c
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.lines().map(str::len).max().unwrap_or(0));
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:w$}  ", c, w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
    println!("{}", line(header.clone()));
    println!("{rule}");
    for r in &cells {
        let height = r
            .iter()
            .map(|c| c.lines().count().max(1))
            .max()
            .unwrap_or(1);
        for k in 0..height {
            println!(
                "{}",
                line(r.iter().map(|c| c.lines().nth(k).unwrap_or("")).collect())
            );
        }
    }
    println!("{rule}");
    println!("{} snapshots", rows.len());
}
