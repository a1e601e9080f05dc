//! `cairn run NAME`: what a profile says to do, in order: `backup`, then
//! `forget` (and prune, with `prune = true` in `[forget]`), then `check`,
//! each with the profile's table as its flags, through the same functions
//! as those commands; then one summary and an exit code fit for cron.
//!
//! - A step runs when its table is in the profile, unless `[run]` switches
//!   it (`check = false`, or `forget = true` with no table).
//! - The password is read (or its command run) once for all steps.
//! - A failed backup skips forget and prune (no snapshot is removed after
//!   a backup that did not save one); check still runs.
//! - Exit code: the first failed step's code (10 no repository, 12 wrong
//!   password, 1 otherwise); else 3 when the backup was incomplete; else 0.
//! - `run --all` runs every profile in turn, each in its own `cairn run
//!   NAME` process (so one profile's `[env]` never reaches another's),
//!   goes on after a failure, and exits 1 if any failed (3 if the worst
//!   was an incomplete backup).

use super::backup::Outcome;
use crate::cli::{Cli, Command, GlobalOptions};
use crate::error::{Error, Result};
use crate::output::{bytes, duration, json_line};
use crate::profile::{self, Profile};
use clap::{Args, CommandFactory, Parser};
use serde_json::json;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The profile to run (default: -P/--profile)
    pub name: Option<String>,
    /// Run every profile ($XDG_CONFIG_HOME/cairn, /etc/cairn) in turn
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// Write node-exporter textfile metrics of the backup and the run to PATH (atomically)
    #[arg(long, value_name = "PATH")]
    pub prometheus_file: Option<PathBuf>,
}

/// How one step ended.
struct Step {
    name: &'static str,
    /// "ok", "incomplete", "failed" or "skipped".
    status: &'static str,
    code: i32,
    message: String,
    snapshot: Option<String>,
}

/// A step's command as the profile's table gives it (the environment
/// beats the profile here too).
fn step_command(p: &Profile, step: &str) -> Result<Command> {
    let root = Cli::command();
    let sub = root.find_subcommand(step);
    let env_given = |id: &str| {
        sub.and_then(|c| c.get_arguments().find(|a| a.get_id() == id))
            .and_then(clap::Arg::get_env)
            .is_some_and(|v| std::env::var_os(v).is_some())
    };
    let mut argv: Vec<OsString> = vec!["cairn".into(), step.into()];
    argv.extend(p.section_tokens(step, &env_given));
    argv.extend(p.section_tail(step, &env_given));
    Cli::try_parse_from(argv).map(|c| c.command).map_err(|e| {
        Error::usage(format!(
            "profile {}: [{step}]: {}",
            p.path.display(),
            profile::clap_message(&e)
        ))
    })
}

fn failed(name: &'static str, e: &Error) -> Step {
    Step {
        name,
        status: "failed",
        code: crate::exit_code(e),
        message: e.message().to_string(),
        snapshot: None,
    }
}

fn from_code(name: &'static str, r: Result<i32>) -> Step {
    match r {
        Ok(0) => Step {
            name,
            status: "ok",
            code: 0,
            message: String::new(),
            snapshot: None,
        },
        Ok(code) => Step {
            name,
            status: "failed",
            code,
            message: format!("{name} exited with {code}"),
            snapshot: None,
        },
        Err(e) => {
            eprintln!("error: {name}: {e}");
            failed(name, &e)
        }
    }
}

fn run_backup(g: &GlobalOptions, p: &Profile, a: &RunArgs) -> (Step, String) {
    let args = match step_command(p, "backup") {
        Ok(Command::Backup(b)) => b,
        Ok(_) => unreachable!("step_command parses the backup command"),
        Err(e) => {
            eprintln!("error: backup: {e}");
            return (failed("backup", &e), crate::repo::hostname());
        }
    };
    let host = args.host.clone().unwrap_or_else(crate::repo::hostname);
    let metrics = a
        .prometheus_file
        .clone()
        .or_else(|| args.prometheus_file.clone());
    let started = SystemTime::now();
    let outcome = super::backup::backup(g, args);
    if let Some(path) = metrics {
        crate::metrics::write_backup(&path, g, &host, started, outcome.as_ref());
    }
    let step = match outcome {
        Ok(Outcome { code, result }) => {
            let mut message = String::new();
            if let Some(s) = &result.snapshot.summary {
                message = format!(
                    "{} new and {} changed files, {} added",
                    s.files_new,
                    s.files_changed,
                    bytes(s.data_added)
                );
            }
            if result.errors > 0 {
                message.push_str(&format!(", {} unreadable", result.errors));
            }
            Step {
                name: "backup",
                status: if code == 0 { "ok" } else { "incomplete" },
                code,
                message,
                snapshot: Some(result.snapshot_id.to_hex()),
            }
        }
        Err(e) => {
            eprintln!("error: backup: {e}");
            failed("backup", &e)
        }
    };
    (step, host)
}

/// Run one profile; `g` has the profile applied (by `main`).
fn run_profile(g: &GlobalOptions, name: &str, a: &RunArgs) -> Result<i32> {
    let p = Profile::load(name)?;
    let g = GlobalOptions {
        password_cache: Some(Default::default()),
        ..g.clone()
    };
    let text = !g.json && !g.quiet;
    let start = Instant::now();
    let started = SystemTime::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut host = crate::repo::hostname();
    if !profile::STEPS.iter().any(|s| p.step_enabled(s)) {
        return Err(Error::usage(format!(
            "profile {} has nothing to run: add a [backup], [forget] or [check] table",
            p.path.display()
        )));
    }
    for step in profile::STEPS {
        if !p.step_enabled(step) {
            continue;
        }
        if text {
            println!("== {} {step}", p.name);
        }
        let backup_failed = steps
            .iter()
            .any(|s| s.name == "backup" && s.status == "failed");
        let done = match step {
            "backup" => {
                let (s, h) = run_backup(&g, &p, a);
                host = h;
                s
            }
            "forget" if backup_failed => Step {
                name: "forget",
                status: "skipped",
                code: 0,
                message: "the backup failed".into(),
                snapshot: None,
            },
            "forget" => match step_command(&p, "forget") {
                Ok(Command::Forget(f)) => from_code("forget", super::forget::run(&g, f)),
                Ok(_) => unreachable!("step_command parses the forget command"),
                Err(e) => from_code("forget", Err(e)),
            },
            _ => match step_command(&p, "check") {
                Ok(Command::Check(c)) => from_code("check", super::check::run(&g, c)),
                Ok(_) => unreachable!("step_command parses the check command"),
                Err(e) => from_code("check", Err(e)),
            },
        };
        steps.push(done);
    }
    let code = steps
        .iter()
        .find(|s| s.status == "failed")
        .map(|s| s.code)
        .or_else(|| {
            steps
                .iter()
                .find(|s| s.status == "incomplete")
                .map(|s| s.code)
        })
        .unwrap_or(0);
    let secs = start.elapsed().as_secs_f64();
    if let Some(path) = &a.prometheus_file {
        let results: Vec<(&'static str, bool)> = steps
            .iter()
            .filter(|s| s.status != "skipped")
            .map(|s| (s.name, s.status == "ok" || s.status == "incomplete"))
            .collect();
        crate::metrics::write_run(path, &g, &host, started, code, &results);
    }
    if g.json {
        let steps: Vec<_> = steps
            .iter()
            .map(|s| {
                json!({
                    "step": s.name,
                    "status": s.status,
                    "exit_code": s.code,
                    "message": s.message,
                    "snapshot_id": s.snapshot,
                })
            })
            .collect();
        json_line(&json!({
            "message_type": "run_summary",
            "profile": p.name,
            "exit_code": code,
            "duration": secs,
            "steps": steps,
        }));
    } else if !g.quiet {
        let verdict = match code {
            0 => "ok",
            3 => "incomplete backup",
            _ => "FAILED",
        };
        println!(
            "profile {}: {verdict} in {}",
            p.name,
            duration(secs.round() as u64)
        );
        for s in &steps {
            let mut detail = s.message.clone();
            if let Some(id) = &s.snapshot {
                detail = format!("snapshot {}: {detail}", &id[..8]);
            }
            let line = format!("  {:7} {:11} {detail}", s.name, s.status);
            println!("{}", line.trim_end());
        }
    }
    Ok(code)
}

/// `run --all`: each profile in its own process, as `cairn ... run NAME ...`.
fn run_all(g: &GlobalOptions) -> Result<i32> {
    let names: Vec<String> = profile::list()
        .into_iter()
        .filter(|(_, _, hidden)| hidden.is_none())
        .map(|(n, _, _)| n)
        .collect();
    if names.is_empty() {
        let dirs: Vec<String> = profile::profile_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(Error::usage(format!(
            "no profiles to run (looked in {})",
            dirs.join(" and ")
        )));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::io(e, "finding the cairn program to run each profile"))?;
    let argv: Vec<OsString> = std::env::args_os().collect();
    let at = profile::subcommand_index(&argv, &Cli::command())
        .ok_or_else(|| Error::usage("run --all: cannot find `run` on the command line"))?;
    let mut results: Vec<(String, i32)> = Vec::new();
    for name in &names {
        let mut args: Vec<OsString> = argv[1..=at].to_vec();
        args.push(name.into());
        args.extend(argv[at + 1..].iter().filter(|w| *w != "--all").cloned());
        if !g.quiet && !g.json {
            println!("=== profile {name}");
        }
        let status = std::process::Command::new(&exe)
            .args(&args)
            .env_remove("CAIRN_PROFILE")
            .status()
            .map_err(|e| Error::io(e, format!("running profile {name}")))?;
        let code = status.code().unwrap_or(1);
        if code == 130 {
            return Err(Error::new(
                cairn_repository::Kind::Interrupted,
                "interrupted",
            ));
        }
        results.push((name.clone(), code));
    }
    let failed: Vec<&(String, i32)> = results.iter().filter(|(_, c)| *c != 0 && *c != 3).collect();
    let code = if !failed.is_empty() {
        1
    } else if results.iter().any(|(_, c)| *c == 3) {
        3
    } else {
        0
    };
    if g.json {
        json_line(&json!({
            "message_type": "run_all_summary",
            "exit_code": code,
            "profiles": results.iter().map(|(n, c)| json!({"profile": n, "exit_code": c})).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        }));
    } else if !g.quiet || code != 0 {
        println!(
            "ran {} profiles: {} ok, {} failed",
            results.len(),
            results.len() - failed.len(),
            failed.len()
        );
        for (n, c) in &results {
            let what = match c {
                0 => "ok".to_string(),
                3 => "incomplete backup (exit 3)".to_string(),
                c => format!("FAILED (exit {c})"),
            };
            println!("  {n:20} {what}");
        }
    }
    Ok(code)
}

pub fn run(g: &GlobalOptions, a: RunArgs) -> Result<i32> {
    if a.all {
        return run_all(g);
    }
    let Some(name) = a.name.clone().or_else(|| g.profile.clone()) else {
        return Err(Error::usage(
            "give the profile to run (cairn run NAME), or --all",
        ));
    };
    run_profile(g, &name, &a)
}
