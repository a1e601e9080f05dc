//! `cairn forget`: remove snapshots by policy or by id, as restic's forget.
//! Removing a snapshot deletes its file in snapshots/ and nothing else;
//! `--prune` then runs prune to free the data no snapshot needs any more.

use super::prune::PruneFlags;
use super::select::{print_table, select};
use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use crate::output::snapshot_json;
use cairn_engine::forget::{self, parse_count, CalendarDuration, GroupBy, Policy, UNLIMITED};
use cairn_repository::backend::FileKind;
use cairn_repository::format::Id;
use clap::Args;
use serde_json::{json, Value};

/// restic's short flags: `-H` is --keep-hourly here, so the host filter
/// has only its long form `--host`.
#[derive(Args, Debug)]
#[command(mut_arg("hosts", |a| a.short(None)))]
pub struct ForgetArgs {
    /// Snapshots to remove (ids, unique prefixes or "latest"); no policy is applied then
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    /// Keep the last N snapshots ("unlimited" for all)
    #[arg(short = 'l', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_last: Option<String>,
    /// Keep the last N hourly snapshots
    #[arg(short = 'H', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_hourly: Option<String>,
    /// Keep the last N daily snapshots
    #[arg(short = 'd', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_daily: Option<String>,
    /// Keep the last N weekly snapshots (ISO weeks)
    #[arg(short = 'w', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_weekly: Option<String>,
    /// Keep the last N monthly snapshots
    #[arg(short = 'm', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_monthly: Option<String>,
    /// Keep the last N yearly snapshots
    #[arg(short = 'y', long, value_name = "N", allow_hyphen_values = true)]
    pub keep_yearly: Option<String>,
    /// Keep snapshots newer than DURATION (e.g. 1y5m7d2h) before the newest snapshot
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within: Option<String>,
    /// Keep the newest snapshot of each hour within DURATION of the newest snapshot
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within_hourly: Option<String>,
    /// Keep the newest snapshot of each day within DURATION
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within_daily: Option<String>,
    /// Keep the newest snapshot of each week within DURATION
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within_weekly: Option<String>,
    /// Keep the newest snapshot of each month within DURATION
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within_monthly: Option<String>,
    /// Keep the newest snapshot of each year within DURATION
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within_yearly: Option<String>,
    /// Keep snapshots with these tags ("a,b": both; repeatable: any list)
    #[arg(long, value_name = "TAGS")]
    pub keep_tag: Vec<String>,
    /// Group snapshots by host, paths and/or tags, comma-separated ("" for one group)
    #[arg(short = 'g', long, default_value = "host,paths")]
    pub group_by: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Print the tables one line per snapshot, without paths
    #[arg(short = 'c', long)]
    pub compact: bool,
    /// Only print what would be removed
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run prune afterwards if snapshots were removed
    #[arg(long)]
    pub prune: bool,
    #[command(flatten, next_help_heading = "With --prune")]
    pub prune_flags: PruneFlags,
}

fn count(v: &Option<String>, flag: &str) -> Result<u32> {
    match v {
        None => Ok(0),
        Some(s) => parse_count(s).map_err(|e| Error::usage(format!("--{flag}: {}", e.message))),
    }
}

fn duration(v: &Option<String>, flag: &str) -> Result<CalendarDuration> {
    match v {
        None => Ok(CalendarDuration::default()),
        Some(s) => {
            CalendarDuration::parse(s).map_err(|e| Error::usage(format!("--{flag}: {}", e.message)))
        }
    }
}

pub fn policy(a: &ForgetArgs) -> Result<Policy> {
    Ok(Policy {
        last: count(&a.keep_last, "keep-last")?,
        hourly: count(&a.keep_hourly, "keep-hourly")?,
        daily: count(&a.keep_daily, "keep-daily")?,
        weekly: count(&a.keep_weekly, "keep-weekly")?,
        monthly: count(&a.keep_monthly, "keep-monthly")?,
        yearly: count(&a.keep_yearly, "keep-yearly")?,
        within: duration(&a.keep_within, "keep-within")?,
        within_hourly: duration(&a.keep_within_hourly, "keep-within-hourly")?,
        within_daily: duration(&a.keep_within_daily, "keep-within-daily")?,
        within_weekly: duration(&a.keep_within_weekly, "keep-within-weekly")?,
        within_monthly: duration(&a.keep_within_monthly, "keep-within-monthly")?,
        within_yearly: duration(&a.keep_within_yearly, "keep-within-yearly")?,
        tags: a
            .keep_tag
            .iter()
            .map(|t| super::select::tag_list(std::slice::from_ref(t)))
            .filter(|l| !l.is_empty())
            .collect(),
    })
}

fn counter(n: u32) -> Value {
    if n == UNLIMITED {
        json!(-1)
    } else {
        json!(n)
    }
}

pub fn run(g: &GlobalOptions, a: ForgetArgs) -> Result<i32> {
    // Validate everything before touching the repository.
    let policy = policy(&a)?;
    let group_by = GroupBy::parse(&a.group_by)?;
    if !a.ids.is_empty() && !policy.is_empty() {
        return Err(Error::usage(
            "give either snapshot ids or a --keep-* policy, not both",
        ));
    }
    if a.prune {
        // Checked before anything is removed.
        a.prune_flags.options(g, a.dry_run)?;
    }
    let repo = crate::repo::open(g)?;
    let filter = super::snapshot_filter(&a.filter);
    let chosen = select(&repo, &a.ids, &filter)?;
    let text = !g.json && !g.quiet;

    let mut remove: Vec<Id> = Vec::new();
    let mut json_groups: Vec<Value> = Vec::new();
    if !a.ids.is_empty() {
        remove = chosen.iter().map(|(id, _)| *id).collect();
        json_groups.push(json!({
            "tags": null, "host": "", "paths": null, "keep": [],
            "remove": chosen.iter().map(|(id, s)| snapshot_json(id, s)).collect::<Vec<_>>(),
            "reasons": [],
        }));
    } else if policy.is_empty() {
        if text {
            println!("no policy was specified, no snapshots will be removed");
        }
    } else {
        if text {
            println!("Applying Policy: {policy}");
        }
        let now = chrono::Utc::now();
        for group in forget::forget(chosen, &policy, group_by, now, &forget::local_offset) {
            if text {
                println!("snapshots for ({}):", group.key);
                if !group.keep.is_empty() {
                    println!("keep {} snapshots:", group.keep.len());
                    let rows: Vec<_> = group
                        .keep
                        .iter()
                        .map(|k| (k.id, &k.snapshot, k.reasons.clone()))
                        .collect();
                    print_table(&rows, Some("Reasons"), a.compact);
                    println!();
                }
                if !group.remove.is_empty() {
                    println!("remove {} snapshots:", group.remove.len());
                    let rows: Vec<_> = group
                        .remove
                        .iter()
                        .map(|(id, s)| (*id, s, vec![]))
                        .collect();
                    print_table(&rows, None, a.compact);
                    println!();
                }
            }
            let reasons: Vec<Value> = group
                .keep
                .iter()
                .map(|k| {
                    let c = &k.counters;
                    let mut counters = serde_json::Map::new();
                    for (name, n) in [("last", c.last), ("hourly", c.hourly), ("daily", c.daily), ("weekly", c.weekly), ("monthly", c.monthly), ("yearly", c.yearly)] {
                        if n != 0 {
                            counters.insert(name.into(), counter(n));
                        }
                    }
                    json!({"snapshot": snapshot_json(&k.id, &k.snapshot), "matches": k.reasons, "counters": counters})
                })
                .collect();
            json_groups.push(json!({
                "tags": group.key.tags,
                "host": group.key.host.clone().unwrap_or_default(),
                "paths": group.key.paths,
                "keep": group.keep.iter().map(|k| snapshot_json(&k.id, &k.snapshot)).collect::<Vec<_>>(),
                "remove": group.remove.iter().map(|(id, s)| snapshot_json(id, s)).collect::<Vec<_>>(),
                "reasons": reasons,
            }));
            remove.extend(group.remove.iter().map(|(id, _)| *id));
        }
    }

    if !remove.is_empty() {
        if a.dry_run {
            if text {
                let ids: Vec<String> = remove.iter().map(|id| id.short()).collect();
                println!(
                    "would have removed the following snapshots: {}",
                    ids.join(", ")
                );
            }
        } else {
            for id in &remove {
                repo.backend().remove(FileKind::Snapshot, &id.to_hex())?;
            }
            if text {
                println!("removed {} snapshots", remove.len());
            }
        }
    }
    if g.json {
        println!("{}", serde_json::to_string(&json_groups).expect("json"));
    }
    // Prune also when nothing was forgotten this time: a run killed after
    // removing snapshots but before its prune left data only a prune frees,
    // and running the same command again must finish the job.
    if a.prune {
        if text && remove.is_empty() {
            println!("no snapshots removed, running prune");
        } else if text {
            if a.dry_run {
                println!(
                    "{} snapshots would be removed, running prune dry run",
                    remove.len()
                );
            } else {
                println!(
                    "{} snapshots have been removed, running prune",
                    remove.len()
                );
            }
        }
        return super::prune::run_with(g, &repo, &a.prune_flags, a.dry_run);
    }
    Ok(0)
}
