//! `cairn schedule install NAME --every daily|hourly|weekly|monthly|CALENDAR`,
//! `schedule list`, `schedule remove NAME`: run a profile regularly.
//!
//! - With systemd (booted, or `--unit-dir` given), `install` writes
//!   `cairn-NAME.service` (oneshot `cairn run NAME`, `Nice=10`, I/O class
//!   best-effort 7) and `cairn-NAME.timer` (`OnCalendar=`, a randomised
//!   delay so many hosts do not start at once, `Persistent=true` so a run
//!   missed while the machine was off happens at the next boot). Units go to
//!   `/etc/systemd/system` for root, else `$XDG_CONFIG_HOME/systemd/user`;
//!   in those directories the timer is then enabled and started with
//!   `systemctl` (unless `--no-enable`).
//! - Without systemd (or with `--cron`), `install` prints the crontab line
//!   to add (`crontab -e`); cron mails what a job prints, so the line runs
//!   `cairn run NAME --quiet`.
//! - Unit files carry a marker comment; `list` and `remove` only touch
//!   files that have it. Files are written atomically.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::output::json_line;
use crate::profile::{self, Profile};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub action: ScheduleAction,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleAction {
    /// Write a systemd service and timer that run the profile (or print a crontab line)
    Install {
        /// The profile to run
        name: String,
        /// When: daily, hourly, weekly, monthly, or a systemd calendar expression (with --cron: a five-field cron expression)
        #[arg(long, default_value = "daily")]
        every: String,
        /// Write the unit files to this directory (and do not call systemctl)
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
        /// Write the units but do not enable and start the timer
        #[arg(long)]
        no_enable: bool,
        /// Print a crontab line instead of writing systemd units
        #[arg(long)]
        cron: bool,
    },
    /// List the schedules installed by cairn
    List {
        /// Look in this directory instead of the systemd unit directory
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
    },
    /// Stop and remove the schedule of a profile
    Remove {
        /// The profile
        name: String,
        /// The directory the units were written to
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
    },
}

/// The first line of every unit file cairn writes.
const MARKER: &str = "# Written by `cairn schedule install`";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Is the machine running systemd (sd_booted)?
fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where units go: the system's for root, else the user's.
fn default_unit_dir() -> Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or_else(|| Error::usage("HOME is not set: give --unit-dir"))?;
    Ok(config.join("systemd/user"))
}

/// A word as systemd's ExecStart= and Environment= take it.
fn systemd_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b))
    {
        return s.to_string();
    }
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('%', "%%")
            .replace('$', "$$")
    )
}

/// A word for a POSIX shell (cron runs lines with sh).
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn program() -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io(e, "finding the path of the cairn program"))?;
    Ok(exe.display().to_string())
}

/// The randomised delay for a schedule: a share of its period.
fn random_delay(every: &str) -> &'static str {
    match every {
        "hourly" => "5min",
        "daily" | "weekly" | "monthly" => "1h",
        _ => "10min",
    }
}

/// Check a systemd calendar expression with `systemd-analyze calendar`
/// where that tool exists.
fn check_calendar(every: &str) -> Result<()> {
    if matches!(every, "hourly" | "daily" | "weekly" | "monthly") {
        return Ok(());
    }
    if every.contains('\n') || every.is_empty() {
        return Err(Error::usage(format!("invalid --every {every:?}")));
    }
    match std::process::Command::new("systemd-analyze")
        .arg("calendar")
        .arg(every)
        .output()
    {
        Ok(out) if !out.status.success() => Err(Error::usage(format!(
            "invalid --every {every:?}: not a systemd calendar expression (e.g. daily, hourly, 'Mon..Fri 22:30', '*-*-* 02:00')"
        ))),
        _ => Ok(()),
    }
}

fn service_unit(name: &str, exe: &str, system: bool) -> String {
    let mut env = String::new();
    if system {
        // A system service has no HOME: give it the one the profile and
        // the cache were found with.
        for var in ["HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"] {
            if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                env.push_str(&format!(
                    "Environment={}\n",
                    systemd_quote(&format!("{var}={}", v.to_string_lossy()))
                ));
            }
        }
    }
    let network = if system {
        "Wants=network-online.target\nAfter=network-online.target\n"
    } else {
        ""
    };
    format!(
        "{MARKER} for profile {name}; remove with `cairn schedule remove {name}`.\n\
         [Unit]\n\
         Description=cairn backup of profile {name}\n\
         {network}\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={} run {}\n\
         {env}\
         Nice=10\n\
         IOSchedulingClass=best-effort\n\
         IOSchedulingPriority=7\n",
        systemd_quote(exe),
        systemd_quote(name),
    )
}

fn timer_unit(name: &str, every: &str) -> String {
    format!(
        "{MARKER} for profile {name}; remove with `cairn schedule remove {name}`.\n\
         [Unit]\n\
         Description=Run cairn profile {name} ({every})\n\
         \n\
         [Timer]\n\
         OnCalendar={every}\n\
         RandomizedDelaySec={}\n\
         Persistent=true\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        random_delay(every)
    )
}

/// A stable minute and hour in the night for a profile, so that hosts
/// with different profiles spread out (cron has no randomised delay).
fn spread(name: &str) -> (u32, u32) {
    let h = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    (h % 60, 1 + (h / 60) % 5)
}

fn cron_line(name: &str, every: &str, exe: &str) -> Result<String> {
    let (m, h) = spread(name);
    let when = match every {
        "hourly" => format!("{m} * * * *"),
        "daily" => format!("{m} {h} * * *"),
        "weekly" => format!("{m} {h} * * 0"),
        "monthly" => format!("{m} {h} 1 * *"),
        e if e.split_whitespace().count() == 5
            && e.split_whitespace()
                .all(|f| f.bytes().all(|b| b.is_ascii_alphanumeric() || b"*/,-".contains(&b))) =>
        {
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        e => {
            return Err(Error::usage(format!(
                "invalid --every {e:?} for cron: use hourly, daily, weekly, monthly or a five-field cron expression"
            )))
        }
    };
    Ok(format!(
        "{when} {} run {} --quiet # cairn schedule {name}",
        shell_quote(exe),
        shell_quote(name)
    ))
}

fn systemctl(user: bool, args: &[&str]) -> Result<()> {
    let mut c = std::process::Command::new("systemctl");
    if user {
        c.arg("--user");
    }
    let st = c
        .args(args)
        .status()
        .map_err(|e| Error::command(format!("running systemctl: {e}"), Some(e)))?;
    if !st.success() {
        return Err(Error::command(
            format!("`systemctl {}` failed ({st})", args.join(" ")),
            None,
        ));
    }
    Ok(())
}

fn unit_names(name: &str) -> (String, String) {
    (
        format!("cairn-{name}.service"),
        format!("cairn-{name}.timer"),
    )
}

fn ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.starts_with(MARKER))
}

fn write_unit(path: &Path, text: &str) -> Result<()> {
    if path.exists() && !ours(path) {
        return Err(Error::usage(format!(
            "{} exists and was not written by cairn; not replacing it",
            path.display()
        )));
    }
    crate::metrics::replace_file(path, text)
        .map_err(|e| Error::io(e, format!("writing {}", path.display())))
}

fn install(
    g: &GlobalOptions,
    name: &str,
    every: &str,
    unit_dir: Option<PathBuf>,
    no_enable: bool,
    cron: bool,
) -> Result<i32> {
    if !profile::valid_name(name) {
        return Err(Error::usage(format!(
            "invalid profile name {name:?}: schedules run profiles by name"
        )));
    }
    let p = Profile::load(name)?;
    for w in &p.warnings {
        eprintln!("{w}");
    }
    let exe = program()?;
    if cron || (unit_dir.is_none() && !systemd_booted()) {
        let line = cron_line(name, every, &exe)?;
        if g.json {
            json_line(&json!({"kind": "cron", "profile": name, "crontab_line": line}));
        } else {
            if !cron && !g.quiet {
                eprintln!(
                    "systemd is not running here: add this line to your crontab (crontab -e):"
                );
            }
            println!("{line}");
        }
        return Ok(0);
    }
    check_calendar(every)?;
    let custom_dir = unit_dir.is_some();
    let dir = match unit_dir {
        Some(d) => d,
        None => default_unit_dir()?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(e, format!("creating {}", dir.display())))?;
    let system = is_root();
    let (service, timer) = unit_names(name);
    write_unit(&dir.join(&service), &service_unit(name, &exe, system))?;
    write_unit(&dir.join(&timer), &timer_unit(name, every))?;
    let enabled = if !custom_dir && !no_enable && systemd_booted() {
        systemctl(!system, &["daemon-reload"])?;
        systemctl(!system, &["enable", "--now", &timer])?;
        true
    } else {
        false
    };
    if g.json {
        json_line(&json!({
            "kind": "systemd",
            "profile": name,
            "service": dir.join(&service),
            "timer": dir.join(&timer),
            "every": every,
            "enabled": enabled,
        }));
    } else if !g.quiet {
        println!("wrote {}", dir.join(&service).display());
        println!("wrote {}", dir.join(&timer).display());
        let user = if system { "" } else { "--user " };
        if enabled {
            println!("enabled and started {timer} ({every}); see `systemctl {user}list-timers`");
        } else {
            println!("enable it with: systemctl {user}daemon-reload && systemctl {user}enable --now {timer}");
        }
    }
    Ok(0)
}

/// (profile, schedule, timer path) of every timer cairn wrote in `dir`.
fn installed(dir: &Path) -> Vec<(String, String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file
                .strip_prefix("cairn-")?
                .strip_suffix(".timer")?
                .to_string();
            let text = std::fs::read_to_string(e.path()).ok()?;
            if !text.starts_with(MARKER) {
                return None;
            }
            let every = text
                .lines()
                .find_map(|l| l.strip_prefix("OnCalendar="))
                .unwrap_or("?")
                .to_string();
            Some((name, every, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn list(g: &GlobalOptions, unit_dir: Option<PathBuf>) -> Result<i32> {
    let dir = match unit_dir {
        Some(d) => d,
        None => default_unit_dir()?,
    };
    let found = installed(&dir);
    if g.json {
        let v: Vec<_> = found
            .iter()
            .map(|(n, e, p)| json!({"profile": n, "every": e, "timer": p}))
            .collect();
        json_line(&json!(v));
        return Ok(0);
    }
    if found.is_empty() {
        if !g.quiet {
            println!("no schedules in {}", dir.display());
        }
        return Ok(0);
    }
    println!("{:20} {:24} timer", "profile", "every");
    for (n, e, p) in &found {
        println!("{n:20} {e:24} {}", p.display());
    }
    Ok(0)
}

fn remove(g: &GlobalOptions, name: &str, unit_dir: Option<PathBuf>) -> Result<i32> {
    let custom_dir = unit_dir.is_some();
    let dir = match unit_dir {
        Some(d) => d,
        None => default_unit_dir()?,
    };
    let (service, timer) = unit_names(name);
    let paths = [dir.join(&timer), dir.join(&service)];
    if !paths.iter().any(|p| ours(p)) {
        return Err(Error::not_found(format!(
            "no schedule of profile {name} in {} (a crontab line is removed with `crontab -e`)",
            dir.display()
        )));
    }
    let user = !is_root();
    if !custom_dir && systemd_booted() {
        // The timer may be stopped already; removing the files matters most.
        if let Err(e) = systemctl(user, &["disable", "--now", &timer]) {
            eprintln!("warning: {e}");
        }
    }
    for p in paths.iter().filter(|p| ours(p)) {
        std::fs::remove_file(p).map_err(|e| Error::io(e, format!("removing {}", p.display())))?;
        if !g.quiet && !g.json {
            println!("removed {}", p.display());
        }
    }
    if !custom_dir && systemd_booted() {
        systemctl(user, &["daemon-reload"])?;
    }
    if g.json {
        json_line(&json!({"profile": name, "removed": paths}));
    }
    Ok(0)
}

pub fn run(g: &GlobalOptions, a: ScheduleArgs) -> Result<i32> {
    match a.action {
        ScheduleAction::Install {
            name,
            every,
            unit_dir,
            no_enable,
            cron,
        } => install(g, &name, &every, unit_dir, no_enable, cron),
        ScheduleAction::List { unit_dir } => list(g, unit_dir),
        ScheduleAction::Remove { name, unit_dir } => remove(g, &name, unit_dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_lines() {
        let l = cron_line("nas", "daily", "/usr/bin/cairn").unwrap();
        let (m, h) = spread("nas");
        assert_eq!(
            l,
            format!("{m} {h} * * * /usr/bin/cairn run nas --quiet # cairn schedule nas")
        );
        assert!(cron_line("nas", "30 2 * * 1-5", "/x y/cairn")
            .unwrap()
            .starts_with("30 2 * * 1-5 '/x y/cairn' run nas"));
        assert!(cron_line("nas", "Mon 02:00", "/c").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(systemd_quote("/usr/bin/cairn"), "/usr/bin/cairn");
        assert_eq!(systemd_quote("/a b/c%"), "\"/a b/c%%\"");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
