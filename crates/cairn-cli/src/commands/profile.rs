//! `cairn profile list | show NAME | check NAME`: the profiles found, one
//! of them with its secrets masked, and whether one works (it parses, the
//! repository opens with its password). Loading and merging profiles is
//! `crate::profile`; `check` gets the profile already applied to `g` by
//! `main`, as every command does with `-P`.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::output::json_line;
use crate::profile::{self, mask_url, Profile};
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args, Debug)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub action: ProfileAction,
}

#[derive(Subcommand, Debug)]
pub enum ProfileAction {
    /// List the profiles in $XDG_CONFIG_HOME/cairn and /etc/cairn
    List,
    /// Print a profile with its secrets masked
    Show {
        /// Profile name (or path to a .toml file)
        name: String,
    },
    /// Parse a profile, open its repository and report
    Check {
        /// Profile name (or path to a .toml file)
        name: String,
    },
}

pub fn run(g: &GlobalOptions, a: ProfileArgs) -> Result<i32> {
    match a.action {
        ProfileAction::List => list(g),
        ProfileAction::Show { name } => show(g, &name),
        ProfileAction::Check { name } => check(g, &name),
    }
}

fn list(g: &GlobalOptions) -> Result<i32> {
    let mut rows = Vec::new();
    for (name, path, hidden_by) in profile::list() {
        // A broken profile is listed with its error, not skipped.
        let (repo, error) = match Profile::parse(
            &name,
            &path,
            &std::fs::read_to_string(&path).unwrap_or_default(),
        ) {
            Ok(p) => (p.repository().map(mask_url), None),
            Err(e) => (None, Some(e.message().to_string())),
        };
        rows.push((name, path, hidden_by, repo, error));
    }
    if g.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(name, path, hidden_by, repo, error)| {
                json!({
                    "name": name,
                    "path": path,
                    "hidden_by": hidden_by,
                    "repository": repo,
                    "error": error,
                })
            })
            .collect();
        json_line(&json!(v));
        return Ok(0);
    }
    if rows.is_empty() {
        let dirs: Vec<String> = profile::profile_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        if !g.quiet {
            println!("no profiles (looked in {})", dirs.join(" and "));
        }
        return Ok(0);
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    println!("{:w$}  {:40}  file", "name", "repository");
    for (name, path, hidden_by, repo, error) in &rows {
        let repo = match (repo, error) {
            (_, Some(_)) => "(invalid: see `cairn profile check`)".to_string(),
            (Some(r), None) => r.clone(),
            (None, None) => "(default repository)".to_string(),
        };
        let hidden = hidden_by
            .as_ref()
            .map(|h| format!(" (hidden by {})", h.display()))
            .unwrap_or_default();
        println!("{name:w$}  {repo:40}  {}{hidden}", path.display());
    }
    Ok(0)
}

fn show(g: &GlobalOptions, name: &str) -> Result<i32> {
    let p = Profile::load(name)?;
    for w in &p.warnings {
        eprintln!("{w}");
    }
    let t = p.masked();
    if g.json {
        json_line(&json!({
            "name": p.name,
            "path": p.path,
            "profile": serde_json::to_value(&t).map_err(|e| Error::usage(e.to_string()))?,
        }));
    } else {
        println!("# profile {} ({})", p.name, p.path.display());
        print!(
            "{}",
            toml::to_string(&t).map_err(|e| Error::usage(e.to_string()))?
        );
    }
    Ok(0)
}

fn check(g: &GlobalOptions, name: &str) -> Result<i32> {
    // `main` has loaded and applied the profile already (its errors end
    // the run there); load it again for what only this command reports.
    let p = Profile::load(name)?;
    if p.sections.contains_key("forget") {
        // Policies are parsed by `forget`, not by clap: check them here.
        let mut argv: Vec<std::ffi::OsString> = vec!["cairn".into(), "forget".into()];
        argv.extend(p.section_tokens("forget", &|_| false));
        use clap::Parser;
        if let Ok(crate::cli::Cli {
            command: crate::cli::Command::Forget(f),
            ..
        }) = crate::cli::Cli::try_parse_from(argv)
        {
            super::forget::policy(&f).map_err(|e| {
                Error::usage(format!("profile {}: [forget]: {e}", p.path.display()))
            })?;
        }
    }
    let repo = crate::repo::open(g)?;
    let snaps = repo.list_snapshots()?;
    let latest = snaps.last();
    if g.json {
        json_line(&json!({
            "message_type": "summary",
            "profile": p.name,
            "path": p.path,
            "repository": repo.location(),
            "snapshots": snaps.len(),
            "latest": latest.map(|(id, s)| json!({"id": id.to_hex(), "time": crate::output::json_time(&s.time), "hostname": s.hostname})),
        }));
    } else if !g.quiet {
        println!("profile {} ({}): ok", p.name, p.path.display());
        println!(
            "repository {} opened: {} snapshots",
            repo.location(),
            snaps.len()
        );
        if let Some((id, s)) = latest {
            println!(
                "latest snapshot {} of {} at {}",
                id.short(),
                s.hostname,
                s.time.format("%Y-%m-%d %H:%M:%S")
            );
        }
    }
    Ok(0)
}
