//! The cache measurement: how many bytes each tool reads from the server
//! for commands that only need the repository's metadata, with and
//! without its local cache.
//!
//! Four configurations, each on its own fresh repository and cache: cairn
//! with its cache, cairn `--no-cache`, restic with its cache, restic
//! `--no-cache` (left out at `--smoke` scale, to keep it short). Each runs,
//! in order: `init`, the first backup of `tree`, an unchanged re-backup,
//! `snapshots` twice, `ls latest`; then "another client" (the same tool
//! with a second, empty cache, or no cache) backs up the same tree once
//! more, and the first client re-backs up again. The table gives the bytes
//! received from the server for each step; the first backup is in the
//! JSON only.
//!
//! "New on the server since the client's last run" is measured on the
//! server's disk: the files that the other client's backup added. The goal
//! this shows: with its cache, cairn's unchanged re-backup downloads
//! nothing but what is new since its last run — beyond what every command
//! pays to open a repository (listings, config, key, lock), which the
//! second `snapshots` measures.
//!
//! Byte counts do not depend on the machine's load, so each configuration
//! runs once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::proxy::Traffic;
use super::remote::Remote;
use super::{CacheUse, Ctx};
use crate::bench::fsutil;
use crate::bench::report;
use crate::bench::sequence::Tool;

/// The steps, in order; the first is not shown in the table. The unchanged
/// re-backup comes right after the first backup, so it shows what the
/// cache holds from the backup itself; `ls latest` comes later.
const STEPS: [&str; 6] = [
    "first backup",
    "re-backup unchanged",
    "snapshots (1st)",
    "snapshots (2nd)",
    "ls latest",
    "re-backup after another client's backup",
];
const REBACKUP_UNCHANGED: usize = 1;
const SNAPSHOTS_SECOND: usize = 3;
const LS: usize = 4;
const REBACKUP_AFTER_OTHER: usize = 5;

/// A slack for the goal: repository listings grow with the repository,
/// and a lock is written and listed. What a re-backup may read beyond the
/// cost of opening the repository and the new files.
const SLACK: u64 = 16 << 10;

pub struct CacheResult {
    pub text: String,
    pub json: serde_json::Value,
}

struct Step {
    traffic: Traffic,
    wall_s: f64,
}

struct ConfigRun {
    label: &'static str,
    tool: &'static str,
    cached: bool,
    /// One per step in [`STEPS`]; `Err` once a step failed (and after).
    steps: Vec<Result<Step, String>>,
    /// Files the other client's backup added on the server: count, bytes.
    new: Option<(u64, u64)>,
    /// Index and snapshot files in the repository at the end: count, bytes.
    metadata: Option<(u64, u64)>,
}

/// Regular files below `root`, by path relative to it, with their sizes.
fn files(root: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    fsutil::walk(root, &mut |path, meta| {
        if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(path);
            out.insert(rel.display().to_string(), meta.len());
        }
    })?;
    Ok(out)
}

fn run_config(
    ctx: &mut Ctx,
    remote: &Remote,
    tool: &Tool,
    label: &'static str,
    cached: bool,
) -> Result<ConfigRun> {
    eprintln!(
        "[bench] cache measurement on {}: {label}",
        remote.kind.name()
    );
    let repo = format!(
        "cache-{}-{}",
        tool.name(),
        if cached { "cache" } else { "nocache" }
    );
    let repo_dir = remote.repo_dir(&repo);
    fsutil::remove(&repo_dir)?;
    let cache_root = ctx.dir.join("cache").join(&repo);
    fsutil::remove(&cache_root)?;
    let (cache, other) = if cached {
        (
            CacheUse::Dir(cache_root.join("client")),
            CacheUse::Dir(cache_root.join("other")),
        )
    } else {
        (CacheUse::Off, CacheUse::Off)
    };
    let mut run = ConfigRun {
        label,
        tool: tool.name(),
        cached,
        steps: Vec::new(),
        new: None,
        metadata: None,
    };
    let mut failed: Option<String> = ctx
        .command(remote, tool, &repo, &cache, "init", &["init".into()])
        .err()
        .map(|e| format!("init failed: {e:#}"));
    for (i, step) in STEPS.iter().enumerate() {
        if let Some(why) = &failed {
            run.steps.push(Err(why.clone()));
            continue;
        }
        if i == REBACKUP_AFTER_OTHER {
            let before = files(&repo_dir)?;
            let args = ctx.backup_args();
            let other_run = ctx.command(
                remote,
                tool,
                &repo,
                &other,
                "backup by another client",
                &args,
            );
            if let Err(e) = other_run {
                failed = Some(format!("the other client's backup failed: {e:#}"));
                run.steps.push(Err(failed.clone().unwrap_or_default()));
                continue;
            }
            let after = files(&repo_dir)?;
            let added: Vec<u64> = after
                .iter()
                .filter(|(name, _)| !before.contains_key(*name))
                .map(|(_, size)| *size)
                .collect();
            run.new = Some((added.len() as u64, added.iter().sum()));
        }
        let args = match i {
            2 | SNAPSHOTS_SECOND => vec!["snapshots".into()],
            LS => vec!["ls".into(), "latest".into()],
            _ => ctx.backup_args(),
        };
        match ctx.command(remote, tool, &repo, &cache, step, &args) {
            Ok((m, traffic)) => {
                eprintln!(
                    "[bench]   {label:<18} {step:<40} recv {:>9}  sent {:>9}  {:>6.2} s",
                    report::bytes_fine(traffic.recv),
                    report::bytes_fine(traffic.sent),
                    m.wall.as_secs_f64()
                );
                run.steps.push(Ok(Step {
                    traffic,
                    wall_s: m.wall.as_secs_f64(),
                }));
            }
            Err(e) => {
                let why = format!("{step} failed: {e:#}");
                failed = Some(why.clone());
                run.steps.push(Err(why));
            }
        }
    }
    if repo_dir.is_dir() {
        let all = files(&repo_dir)?;
        let meta: Vec<u64> = all
            .iter()
            .filter(|(name, _)| name.starts_with("index/") || name.starts_with("snapshots/"))
            .map(|(_, size)| *size)
            .collect();
        run.metadata = Some((meta.len() as u64, meta.iter().sum()));
    }
    fsutil::remove(&repo_dir)?;
    fsutil::remove(&cache_root)?;
    Ok(run)
}

/// Runs the configurations against `remote`; `why_here` says why this
/// server was chosen, for the report. `restic_no_cache` adds the fourth.
pub fn measure(
    ctx: &mut Ctx,
    remote: &Remote,
    why_here: &str,
    cairn: &Tool,
    restic: &Tool,
    restic_no_cache: bool,
) -> Result<CacheResult> {
    let mut runs = vec![
        run_config(ctx, remote, cairn, "cairn (cache)", true)?,
        run_config(ctx, remote, cairn, "cairn --no-cache", false)?,
        run_config(ctx, remote, restic, "restic (cache)", true)?,
    ];
    if restic_no_cache {
        runs.push(run_config(ctx, remote, restic, "restic --no-cache", false)?);
    }
    Ok(render(remote.kind.name(), why_here, &runs))
}

fn render(server: &str, why_here: &str, runs: &[ConfigRun]) -> CacheResult {
    let mut header = vec!["bytes received from the server".to_string()];
    header.extend(runs.iter().map(|r| r.label.to_string()));
    let mut lines: Vec<Vec<String>> = Vec::new();
    for (i, step) in STEPS.iter().enumerate().skip(1) {
        let mut line = vec![step.to_string()];
        for r in runs {
            line.push(match &r.steps[i] {
                Ok(s) => report::bytes_fine(s.traffic.recv),
                Err(_) => "failed".into(),
            });
        }
        lines.push(line);
    }
    let count = |v: Option<(u64, u64)>| match v {
        Some((n, b)) => format!(
            "{n} file{}, {}",
            if n == 1 { "" } else { "s" },
            report::bytes_fine(b)
        ),
        None => "–".into(),
    };
    let mut line = vec!["new on the server before the last re-backup".to_string()];
    line.extend(runs.iter().map(|r| count(r.new)));
    lines.push(line);
    let mut line = vec!["index + snapshot files in the repository".to_string()];
    line.extend(runs.iter().map(|r| count(r.metadata)));
    lines.push(line);

    let mut text = format!(
        "cache: bytes read from the {server} server ({why_here}) by commands that need only metadata, in this order after init and a first backup of tree, each configuration on a fresh repository and cache; \"another client\" (its own cache, or none) backs up the same tree before the last re-backup\n\n"
    );
    text.push_str(&markdown(&header, &lines));
    text.push('\n');
    let goal = goal(runs);
    text.push_str(&goal.0);

    let configs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let steps: Vec<serde_json::Value> = STEPS
                .iter()
                .zip(&r.steps)
                .map(|(name, s)| match s {
                    Ok(s) => json!({
                        "step": name,
                        "recv_bytes": s.traffic.recv,
                        "sent_bytes": s.traffic.sent,
                        "wall_s": s.wall_s,
                    }),
                    Err(e) => json!({ "step": name, "error": e }),
                })
                .collect();
            json!({
                "config": r.label,
                "tool": r.tool,
                "cache": r.cached,
                "steps": steps,
                "new_before_last_rebackup": r.new.map(|(n, b)| json!({ "files": n, "bytes": b })),
                "index_and_snapshot_files": r.metadata.map(|(n, b)| json!({ "files": n, "bytes": b })),
            })
        })
        .collect();
    CacheResult {
        text,
        json: json!({ "server": server, "why_this_server": why_here, "configs": configs, "goal": goal.1 }),
    }
}

/// The goal, checked on cairn with its cache: an unchanged re-backup reads
/// no more than opening the repository does (the second `snapshots`) plus
/// [`SLACK`]; after another client's backup, no more than that plus the
/// new files.
fn goal(runs: &[ConfigRun]) -> (String, serde_json::Value) {
    let Some(r) = runs.iter().find(|r| r.tool == "cairn" && r.cached) else {
        return (String::new(), serde_json::Value::Null);
    };
    let recv = |i: usize| r.steps[i].as_ref().ok().map(|s| s.traffic.recv);
    let (Some(open), Some(unchanged), Some(after), Some((_, new))) = (
        recv(SNAPSHOTS_SECOND),
        recv(REBACKUP_UNCHANGED),
        recv(REBACKUP_AFTER_OTHER),
        r.new,
    ) else {
        let text = "goal (an unchanged re-backup downloads nothing but what is new since the last run): not measured, a step failed\n".to_string();
        return (text, json!({ "measured": false }));
    };
    let unchanged_ok = unchanged <= open + SLACK;
    let after_ok = after <= open + new + SLACK;
    let mark = |ok: bool| if ok { "holds" } else { "misses" };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "goal: with its cache, an unchanged re-backup downloads nothing but what is new since the last run (beyond opening the repository, the second `snapshots`: {}; slack {}): {}",
        report::bytes_fine(open),
        report::bytes_fine(SLACK),
        mark(unchanged_ok && after_ok)
    );
    let _ = writeln!(
        text,
        "- unchanged re-backup: {} received, at most {} wanted: {}",
        report::bytes_fine(unchanged),
        report::bytes_fine(open + SLACK),
        mark(unchanged_ok)
    );
    let _ = writeln!(
        text,
        "- re-backup after another client's backup ({} new on the server): {} received, at most {} wanted: {}",
        report::bytes_fine(new),
        report::bytes_fine(after),
        report::bytes_fine(open + new + SLACK),
        mark(after_ok)
    );
    let json = json!({
        "measured": true,
        "open_bytes": open,
        "slack_bytes": SLACK,
        "unchanged_rebackup_recv": unchanged,
        "unchanged_holds": unchanged_ok,
        "new_bytes": new,
        "rebackup_after_other_recv": after,
        "after_other_holds": after_ok,
    });
    (text, json)
}

/// A Markdown table, the first column left-aligned, the others right.
fn markdown(header: &[String], lines: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let row = |out: &mut String, cells: &[String]| {
        out.push('|');
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i == 0 {
                let _ = write!(out, " {cell}{pad} |");
            } else {
                let _ = write!(out, " {pad}{cell} |");
            }
        }
        out.push('\n');
    };
    row(&mut out, header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, " {} |", "-".repeat(*w));
        } else {
            let _ = write!(out, " {}: |", "-".repeat(w - 1));
        }
    }
    out.push('\n');
    for line in lines {
        row(&mut out, line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cairn-with-cache run whose steps received these byte counts.
    fn cairn_run(recv: [u64; 6], new: u64) -> ConfigRun {
        ConfigRun {
            label: "cairn (cache)",
            tool: "cairn",
            cached: true,
            steps: recv
                .iter()
                .map(|&r| {
                    Ok(Step {
                        traffic: Traffic { sent: 0, recv: r },
                        wall_s: 0.1,
                    })
                })
                .collect(),
            new: Some((1, new)),
            metadata: Some((5, 400 << 10)),
        }
    }

    #[test]
    fn the_goal_allows_opening_the_repository_and_what_is_new_and_no_more() {
        // first backup, re-backup, snapshots ×2, ls, re-backup after another client
        let good = cairn_run([3000, 4000, 2600, 2600, 3100, 5700], 433);
        let (text, json) = goal(&[good]);
        assert_eq!(json["unchanged_holds"], true, "{text}");
        assert_eq!(json["after_other_holds"], true, "{text}");
        assert!(
            text.starts_with("goal:") && text.contains("): holds"),
            "{text}"
        );

        // Tree packs fetched again: 805 KiB for an unchanged re-backup.
        let bad = cairn_run([3000, 805 << 10, 2600, 2600, 3100, 5700], 433);
        let (text, json) = goal(&[bad]);
        assert_eq!(json["unchanged_holds"], false, "{text}");
        assert!(text.contains("): misses"), "{text}");

        let mut failed = cairn_run([3000, 4000, 2600, 2600, 3100, 5700], 433);
        failed.steps[SNAPSHOTS_SECOND] = Err("snapshots failed".into());
        let (text, json) = goal(&[failed]);
        assert_eq!(json["measured"], false);
        assert!(text.contains("not measured"), "{text}");
    }

    #[test]
    fn the_table_has_a_column_per_configuration_and_a_row_per_step() {
        let r = render("s3:", "S3, as planned", &[cairn_run([1; 6], 10)]);
        let table: Vec<&str> = r.text.lines().filter(|l| l.starts_with('|')).collect();
        // Header, rule, five steps (the first backup is left out), two counts.
        assert_eq!(table.len(), 2 + 5 + 2, "{}", r.text);
        assert!(table[0].contains("cairn (cache)"));
        assert!(table[2].contains("re-backup unchanged"));
        assert_eq!(r.json["configs"][0]["steps"].as_array().unwrap().len(), 6);
    }
}
