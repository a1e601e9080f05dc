use crate::cli::GlobalOptions;
use crate::cli::SnapshotFilterArgs;
use crate::error::Result;
use crate::output::snapshot_json;
use clap::Args;

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Snapshot ids to show (default: all)
    pub ids: Vec<String>,
}

pub fn run(g: &GlobalOptions, a: SnapshotsArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    let filter = super::snapshot_filter(&a.filter);
    let (all, unreadable) = repo.list_snapshots_lenient()?;
    // A damaged snapshot file is reported, and the others are still listed.
    for (_, e) in &unreadable {
        eprintln!("error: {e}");
    }
    let mut list: Vec<_> = all.into_iter().filter(|(_, s)| filter.matches(s)).collect();
    if !a.ids.is_empty() {
        let mut chosen = Vec::new();
        for id in &a.ids {
            chosen.push(repo.find_snapshot(id, &filter)?);
        }
        list = chosen;
    }
    if g.json {
        let v: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
        println!("{}", serde_json::to_string(&v).expect("json"));
        return Ok(if unreadable.is_empty() { 0 } else { 1 });
    }
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|(id, s)| {
            [
                id.short(),
                s.time
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                s.hostname.clone(),
                s.tags.join(","),
                s.paths.join("\n"),
            ]
        })
        .collect();
    let header = ["ID", "Time", "Host", "Tags", "Paths"];
    let mut widths = header.map(|h| h.len());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.lines().map(|l| l.len()).max().unwrap_or(0));
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:w$}  ", c, w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    println!("{}", line(header));
    println!("{}", "-".repeat(widths.iter().sum::<usize>() + 8));
    for r in &rows {
        let mut paths = r[4].lines();
        println!(
            "{}",
            line([&r[0], &r[1], &r[2], &r[3], paths.next().unwrap_or("")])
        );
        for p in paths {
            println!("{}", line(["", "", "", "", p]));
        }
    }
    println!("{}", "-".repeat(widths.iter().sum::<usize>() + 8));
    println!("{} snapshots", rows.len());
    Ok(if unreadable.is_empty() { 0 } else { 1 })
}
