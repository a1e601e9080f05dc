//! `cairn snapshots`: list snapshots as restic does: a table (or JSON),
//! optionally only the newest N per host and paths (`--latest`), grouped
//! (`--group-by`: a table per group, restic's grouped JSON) or compact.

use super::select::print_table;
use crate::cli::GlobalOptions;
use crate::cli::SnapshotFilterArgs;
use crate::error::Result;
use crate::output::snapshot_json;
use cairn_engine::forget::{GroupBy, GroupKey};
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Only the newest N snapshots of each host and paths
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
    /// Group snapshots by host, paths and/or tags, comma-separated (a table per group; JSON: a list of groups)
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group_by: Option<String>,
    /// One line per snapshot: ID, Time, Host, Tags
    #[arg(short = 'c', long)]
    pub compact: bool,
    /// Snapshot ids to show (default: all)
    pub ids: Vec<String>,
}

/// The newest `n` snapshots of each host and set of paths (restic's
/// `--latest`), in the order given (oldest first).
fn latest(list: Vec<(Id, Snapshot)>, n: usize) -> Vec<(Id, Snapshot)> {
    let by = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };
    let mut seen: BTreeMap<GroupKey, usize> = BTreeMap::new();
    let mut keep = vec![false; list.len()];
    for (i, (_, s)) in list.iter().enumerate().rev() {
        let count = seen.entry(GroupKey::of(s, by)).or_default();
        if *count < n {
            *count += 1;
            keep[i] = true;
        }
    }
    list.into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

/// restic's `group_key`: what the group shares; "" / null for what it is
/// not grouped by.
fn group_key_json(k: &GroupKey) -> Value {
    json!({
        "hostname": k.host.clone().unwrap_or_default(),
        "paths": k.paths,
        "tags": k.tags,
    })
}

fn table(list: &[(Id, Snapshot)], compact: bool) {
    let rows: Vec<_> = list.iter().map(|(id, s)| (*id, s, vec![])).collect();
    print_table(&rows, None, compact);
}

pub fn run(g: &GlobalOptions, a: SnapshotsArgs) -> Result<i32> {
    let group_by = a.group_by.as_deref().map(GroupBy::parse).transpose()?;
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
    list.sort_by(|x, y| x.1.time.cmp(&y.1.time).then(x.0.cmp(&y.0)));
    let code = if unreadable.is_empty() { 0 } else { 1 };
    let Some(by) = group_by else {
        if let Some(n) = a.latest {
            list = latest(list, n);
        }
        if g.json {
            let v: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
            println!("{}", serde_json::to_string(&v).expect("json"));
        } else {
            table(&list, a.compact);
        }
        return Ok(code);
    };
    let mut groups: BTreeMap<GroupKey, Vec<(Id, Snapshot)>> = BTreeMap::new();
    for (id, s) in list {
        groups
            .entry(GroupKey::of(&s, by))
            .or_default()
            .push((id, s));
    }
    if let Some(n) = a.latest {
        for l in groups.values_mut() {
            *l = latest(std::mem::take(l), n);
        }
    }
    if g.json {
        let v: Vec<Value> = groups
            .iter()
            .map(|(k, l)| {
                json!({
                    "group_key": group_key_json(k),
                    "snapshots": l.iter().map(|(id, s)| snapshot_json(id, s)).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v).expect("json"));
    } else {
        for (k, l) in &groups {
            println!("snapshots for ({k}):");
            table(l, a.compact);
            println!();
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(host: &str, path: &str, minute: u32) -> (Id, Snapshot) {
        let time = chrono::DateTime::parse_from_rfc3339(&format!("2024-01-01T10:{minute:02}:00Z"))
            .unwrap();
        let s = Snapshot {
            version: 1,
            time,
            tree: Id::default(),
            paths: vec![path.to_string()],
            hostname: host.into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            original: None,
            program_version: String::new(),
            summary: None,
        };
        let mut id = [0u8; 32];
        id[0] = minute as u8;
        (Id(id), s)
    }

    #[test]
    fn latest_keeps_the_newest_n_per_host_and_paths() {
        let list = vec![
            snap("a", "/x", 1),
            snap("b", "/x", 2),
            snap("a", "/x", 3),
            snap("a", "/y", 4),
            snap("a", "/x", 5),
            snap("b", "/x", 6),
        ];
        let minutes = |l: Vec<(Id, Snapshot)>| -> Vec<u32> {
            l.iter()
                .map(|(_, s)| chrono::Timelike::minute(&s.time))
                .collect()
        };
        assert_eq!(minutes(latest(list.clone(), 1)), [4, 5, 6]);
        assert_eq!(minutes(latest(list.clone(), 2)), [2, 3, 4, 5, 6]);
        assert_eq!(minutes(latest(list.clone(), 0)), Vec::<u32>::new());
        assert_eq!(minutes(latest(list.clone(), 9)), [1, 2, 3, 4, 5, 6]);
    }
}
