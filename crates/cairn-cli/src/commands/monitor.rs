//! `cairn monitor`: a Nagios / Icinga check of a host's last snapshot.
//!
//! It prints one line in the plugin format, `STATE - text | perfdata`, and
//! exits with the plugin's code, whatever other commands use:
//!
//! | state | exit | when |
//! |---|---|---|
//! | OK | 0 | the last snapshot is younger than `--warn` and complete |
//! | WARNING | 1 | it is `--warn` old or older, or incomplete (files were unreadable) |
//! | CRITICAL | 2 | it is `--crit` old or older; no snapshot of the host; the repository does not exist or cannot be reached |
//! | UNKNOWN | 3 | bad arguments, no or wrong password, anything else that stops the check |
//!
//! ```text
//! OK - Last snapshot #3460b459 of tiggr 2h ago | age=7200s;93600;259200 files=1520 size=73400320B errors=0
//! ```
//!
//! Ages are `90m`, `26h`, `3d`, `1w` or combinations (`1d12h`); a bare
//! number is hours, as in the positional form `cairn monitor HOST WARN
//! CRIT` (which overrides `--host`, `--warn` and `--crit`).

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::output::json_line;
use cairn_engine::freshness::{self, State};
use cairn_repository::{Kind, SnapshotFilter};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The host, in the positional form HOST WARN CRIT
    #[arg(value_name = "HOST")]
    pub positional_host: Option<String>,
    /// Warning age, in the positional form (bare numbers are hours)
    #[arg(value_name = "WARN")]
    pub positional_warn: Option<String>,
    /// Critical age, in the positional form (bare numbers are hours)
    #[arg(value_name = "CRIT")]
    pub positional_crit: Option<String>,
    /// The host whose last snapshot is checked (default: this machine's name)
    #[arg(long, short = 'H')]
    pub host: Option<String>,
    /// WARNING when the last snapshot is this old (e.g. 26h, 2d; a bare number is hours)
    #[arg(long, value_name = "AGE")]
    pub warn: Option<String>,
    /// CRITICAL when the last snapshot is this old
    #[arg(long, value_name = "AGE")]
    pub crit: Option<String>,
    /// Only snapshots that include this path (repeatable)
    #[arg(long)]
    pub path: Vec<String>,
    /// Only snapshots with this tag ("a,b": both; repeatable: any)
    #[arg(long)]
    pub tag: Vec<String>,
}

/// "26h", "3d", "90m", "1w", "45s", "1d12h", or a bare number of hours.
pub fn parse_age(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty age".into());
    }
    if let Ok(h) = t.parse::<f64>() {
        if h >= 0.0 && h.is_finite() {
            return Ok((h * 3600.0).round() as u64);
        }
        return Err(format!("invalid age {s:?}"));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => {
                return Err(format!(
                    "invalid age {s:?}: use a number with s, m, h, d or w (e.g. 26h, 3d), or hours"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid age {s:?}: a unit without a number"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("invalid age {s:?}: {num} has no unit"));
    }
    Ok(total)
}

/// What a check found: its state, text and performance data.
struct Report {
    state: Option<State>,
    text: String,
    perfdata: String,
    json: serde_json::Value,
}

fn state_word(s: Option<State>) -> &'static str {
    match s {
        Some(State::Ok) => "OK",
        Some(State::Warning) => "WARNING",
        Some(State::Critical) => "CRITICAL",
        None => "UNKNOWN",
    }
}

fn state_code(s: Option<State>) -> i32 {
    match s {
        Some(State::Ok) => 0,
        Some(State::Warning) => 1,
        Some(State::Critical) => 2,
        None => 3,
    }
}

/// A plugin line may not hold `|` outside the perfdata, nor a newline.
fn clean(s: &str) -> String {
    s.replace('|', "/").replace(['\n', '\r'], " ")
}

/// The repository as messages name it (without a password).
fn repository_name(g: &GlobalOptions) -> String {
    match crate::repo::repository_location(g).ok().flatten() {
        Some(r) => cairn_location::Location::parse(&r)
            .map(|l| l.to_string())
            .unwrap_or_else(|_| crate::profile::mask_url(&r)),
        None => crate::repo::default_repository()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "(default)".into()),
    }
}

fn unknown(text: impl Into<String>) -> Report {
    let text = text.into();
    Report {
        state: None,
        json: json!({ "message": text }),
        text,
        perfdata: String::new(),
    }
}

/// An error that stopped the check, as a state and a text.
fn failed(g: &GlobalOptions, e: &Error) -> Report {
    let repo = repository_name(g);
    let (state, text) = match e.kind().cloned().unwrap_or(Kind::InvalidInput) {
        Kind::NoRepository => (
            Some(State::Critical),
            format!("Repository {repo} does not exist"),
        ),
        Kind::WrongPassword => (None, format!("Wrong password for repository {repo}")),
        Kind::Backend(_) => (
            Some(State::Critical),
            format!("Cannot reach repository {repo}: {}", e.message()),
        ),
        Kind::Corrupt => (
            Some(State::Critical),
            format!("Repository {repo} is damaged: {}", e.message()),
        ),
        _ => (None, e.message().to_string()),
    };
    Report {
        state,
        json: json!({ "message": text, "repository": repo }),
        text,
        perfdata: String::new(),
    }
}

fn check(g: &GlobalOptions, a: &MonitorArgs) -> Report {
    let positional = [&a.positional_host, &a.positional_warn, &a.positional_crit];
    let (host, warn, crit) = match positional.iter().filter(|p| p.is_some()).count() {
        0 => (a.host.clone(), a.warn.clone(), a.crit.clone()),
        1 => (a.positional_host.clone(), a.warn.clone(), a.crit.clone()),
        3 => (
            a.positional_host.clone(),
            a.positional_warn.clone(),
            a.positional_crit.clone(),
        ),
        _ => return unknown("give HOST WARN CRIT, or --warn and --crit"),
    };
    let (Some(warn), Some(crit)) = (warn, crit) else {
        return unknown("give the warning and critical ages: --warn AGE --crit AGE (e.g. 26h, 3d), or HOST WARN CRIT");
    };
    let (warn, crit) = match (parse_age(&warn), parse_age(&crit)) {
        (Ok(w), Ok(c)) => (w, c),
        (Err(e), _) | (_, Err(e)) => return unknown(e),
    };
    if warn > crit {
        return unknown(format!(
            "the warning age ({warn} s) is above the critical age ({crit} s)"
        ));
    }
    let host = host.unwrap_or_else(crate::repo::hostname);
    let filter = SnapshotFilter {
        hosts: vec![host.clone()],
        tags: a.tag.clone(),
        paths: a.path.clone(),
    };
    let last = crate::repo::open(g)
        .and_then(|repo| Ok(freshness::last_backup(&repo, &filter, chrono::Utc::now())?));
    let last = match last {
        Ok(l) => l,
        Err(e) => return failed(g, &e),
    };
    let Some(last) = last else {
        let mut what = format!("No snapshot of {host}");
        if !a.tag.is_empty() {
            what.push_str(&format!(" with tag {}", a.tag.join(" or ")));
        }
        if !a.path.is_empty() {
            what.push_str(&format!(" with path {}", a.path.join(" and ")));
        }
        let repo = repository_name(g);
        let text = format!("{what} in repository {repo}");
        return Report {
            state: Some(State::Critical),
            json: json!({ "message": text, "host": host, "repository": repo }),
            text,
            perfdata: String::new(),
        };
    };
    let state = freshness::assess(&last, warn, crit);
    let mut text = format!(
        "Last snapshot #{} of {host} {}h ago",
        last.id.short(),
        last.age_secs / 3600
    );
    if last.unreadable > 0 {
        text.push_str(&format!(
            " is incomplete: {} {} could not be read",
            last.unreadable,
            if last.unreadable == 1 {
                "file or directory"
            } else {
                "files or directories"
            }
        ));
    }
    let mut perfdata = format!("age={}s;{warn};{crit}", last.age_secs);
    let summary = last.snapshot.summary.as_ref();
    if let Some(s) = summary {
        perfdata.push_str(&format!(
            " files={} size={}B",
            s.total_files_processed, s.total_bytes_processed
        ));
    }
    perfdata.push_str(&format!(" errors={}", last.unreadable));
    Report {
        state: Some(state),
        json: json!({
            "message": text,
            "host": host,
            "repository": repository_name(g),
            "snapshot_id": last.id.to_hex(),
            "time": crate::output::json_time(&last.snapshot.time),
            "age_seconds": last.age_secs,
            "warn_seconds": warn,
            "crit_seconds": crit,
            "files": summary.map(|s| s.total_files_processed),
            "size": summary.map(|s| s.total_bytes_processed),
            "errors": last.unreadable,
        }),
        text,
        perfdata,
    }
}

pub fn run(g: &GlobalOptions, a: MonitorArgs) -> Result<i32> {
    let g = GlobalOptions {
        quiet: true,
        ..g.clone()
    };
    let r = check(&g, &a);
    let code = state_code(r.state);
    if g.json {
        let mut v = r.json;
        v["state"] = json!(state_word(r.state));
        v["exit_code"] = json!(code);
        json_line(&v);
    } else if r.perfdata.is_empty() {
        println!("{} - {}", state_word(r.state), clean(&r.text));
    } else {
        println!(
            "{} - {} | {}",
            state_word(r.state),
            clean(&r.text),
            r.perfdata
        );
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages() {
        assert_eq!(parse_age("26h"), Ok(26 * 3600));
        assert_eq!(parse_age("3d"), Ok(3 * 86400));
        assert_eq!(parse_age("10"), Ok(36000));
        assert_eq!(parse_age("1.5"), Ok(5400));
        assert_eq!(parse_age("1d12h"), Ok(36 * 3600));
        assert_eq!(parse_age("90m"), Ok(5400));
        assert!(parse_age("3x").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("3d4").is_err());
        assert!(parse_age("-1").is_err());
    }
}
