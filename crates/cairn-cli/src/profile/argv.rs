//! Applying a profile to a command line: the profile's words are placed
//! before the user's and the whole is parsed by clap again, so a command
//! sees ordinary options and needs no knowledge of profiles.
//!
//! - Global flags from the profile go right after the program name; a
//!   command's table goes right after the command's name (found by
//!   [`subcommand_index`]), before the user's own words.
//! - A key is left out when the user gave its flag on the command line or
//!   its environment variable is set ([`ValueSource`]); the password keys
//!   are one group (see [`Profile::global_tokens`]).
//! - `[env]` is set before the second parse, while the process has one
//!   thread.

use super::Profile;
use crate::cli::Cli;
use crate::error::Error;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches};
use std::ffi::OsString;

/// Where in `argv` the subcommand is: the first word that is neither a
/// global option nor the value of one.
pub fn subcommand_index(argv: &[OsString], root: &clap::Command) -> Option<usize> {
    let takes_value = |a: &Arg| a.get_action().takes_values();
    let mut i = 1;
    while i < argv.len() {
        let w = argv[i].to_string_lossy();
        if w == "--" {
            return None;
        }
        if let Some(long) = w.strip_prefix("--") {
            if !long.contains('=') {
                if let Some(a) = root.get_arguments().find(|a| a.get_long() == Some(long)) {
                    if takes_value(a) {
                        i += 1;
                    }
                }
            }
        } else if w.len() > 1 && w.starts_with('-') {
            let chars: Vec<char> = w[1..].chars().collect();
            for (j, c) in chars.iter().enumerate() {
                if let Some(a) = root.get_arguments().find(|a| a.get_short() == Some(*c)) {
                    if takes_value(a) {
                        if j + 1 == chars.len() {
                            i += 1;
                        }
                        break;
                    }
                }
            }
        } else {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// What went wrong while reading the command line.
pub enum ParseFailure {
    /// clap's own error (usage, `--help`, `--version`); `monitor` tells
    /// whether the command was `monitor`, whose usage errors are UNKNOWN (3).
    Clap { error: clap::Error, monitor: bool },
    /// A profile that cannot be found, read or applied.
    Profile { error: Error, monitor: bool },
}

fn given_in(m: &ArgMatches) -> impl Fn(&str) -> bool + '_ {
    move |id: &str| {
        matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
        )
    }
}

/// The options in `m`, with what only the matches tell: whether a
/// password flag was given on the command line.
fn from_matches(m: &ArgMatches) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cli = Cli::from_arg_matches(m)?;
    cli.global.password_flag_given = ["password_file", "password_command"]
        .iter()
        .any(|id| m.value_source(id) == Some(ValueSource::CommandLine));
    Ok(cli)
}

/// Parse the command line, applying the profile it names (`-P NAME`,
/// `CAIRN_PROFILE`, `run NAME`, `profile check NAME`): its `[env]` is set,
/// then its flags are placed before the user's and the whole is parsed again.
/// Warnings about the profile are printed on stderr.
pub fn parse_command_line(argv: Vec<OsString>) -> Result<Cli, ParseFailure> {
    let root = crate::help::command();
    let sub_at = subcommand_index(&argv, &root);
    let sub_name = sub_at.map(|i| argv[i].to_string_lossy().into_owned());
    let is_monitor = sub_name.as_deref() == Some("monitor");
    let clap_err = |error| ParseFailure::Clap {
        error,
        monitor: is_monitor,
    };
    let profile_err = |error| ParseFailure::Profile {
        error,
        monitor: is_monitor,
    };
    let m = root.clone().try_get_matches_from(&argv).map_err(clap_err)?;
    let profile_flag = m
        .get_one::<String>("profile")
        .map(|p| (p.clone(), m.value_source("profile")));
    // A profile named by the command itself.
    let named = match m.subcommand() {
        Some(("run", rm)) => {
            if rm.get_flag("all") {
                if matches!(profile_flag, Some((_, Some(ValueSource::CommandLine)))) {
                    return Err(profile_err(Error::usage(
                        "run --all runs every profile: give no -P/--profile",
                    )));
                }
                let cli = from_matches(&m).map_err(clap_err)?;
                return Ok(Cli {
                    global: crate::cli::GlobalOptions {
                        profile: None,
                        ..cli.global
                    },
                    ..cli
                });
            }
            rm.get_one::<String>("name").cloned()
        }
        Some(("profile", pm)) => match pm.subcommand() {
            Some(("check", cm)) => cm.get_one::<String>("name").cloned(),
            _ => return from_matches(&m).map_err(clap_err),
        },
        Some(("schedule", _)) => return from_matches(&m).map_err(clap_err),
        _ => None,
    };
    let name = match (named, profile_flag) {
        (Some(n), Some((p, Some(ValueSource::CommandLine)))) if n != p => {
            return Err(profile_err(Error::usage(format!(
                "two profiles given: {n:?} and -P {p:?}"
            ))))
        }
        (Some(n), _) => n,
        (None, Some((p, _))) => p,
        (None, None) => return from_matches(&m).map_err(clap_err),
    };
    let profile = Profile::load(&name).map_err(profile_err)?;
    for w in &profile.warnings {
        eprintln!("{w}");
    }
    profile.apply_env();

    let given = given_in(&m);
    let env_set = |id: &str| {
        root.get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(Arg::get_env)
            .is_some_and(|v| std::env::var_os(v).is_some())
    };
    let global_given = |id: &str| given(id) || env_set(id);
    if !given("repo") && env_set("repo") && profile.repository().is_some() {
        eprintln!(
            "warning: CAIRN_REPOSITORY overrides the repository of profile {}",
            profile.name
        );
    }
    let mut merged: Vec<OsString> = vec![argv[0].clone()];
    merged.extend(profile.global_tokens(&global_given));
    let (sub_at, sub_name) = match (sub_at, sub_name) {
        (Some(i), Some(n)) => (i, n),
        _ => return from_matches(&m).map_err(clap_err),
    };
    merged.extend(argv[1..=sub_at].iter().cloned());
    let mut tail = Vec::new();
    if let Some((_, sm)) = m.subcommand() {
        let sub_cmd = root.find_subcommand(&sub_name);
        let sub_given = |id: &str| {
            given_in(sm)(id)
                || sub_cmd
                    .and_then(|c| c.get_arguments().find(|a| a.get_id() == id))
                    .and_then(Arg::get_env)
                    .is_some_and(|v| std::env::var_os(v).is_some())
        };
        // The profile's words go before the user's; its positionals (the
        // backup's paths) only when the user gave none, so they never mix.
        merged.append(&mut profile.section_tokens(&sub_name, &sub_given));
        // `-- COMMAND` of the backup's `stdin-from-command`, after every other word.
        tail = profile.section_tail(&sub_name, &sub_given);
    }
    merged.extend(argv[sub_at + 1..].iter().cloned());
    merged.append(&mut tail);
    let mut cli = crate::help::command()
        .try_get_matches_from(&merged)
        .and_then(|m| from_matches(&m))
        .map_err(|e| {
            if e.kind() == clap::error::ErrorKind::DisplayHelp
                || e.kind() == clap::error::ErrorKind::DisplayVersion
            {
                return clap_err(e);
            }
            profile_err(Error::usage(format!(
                "applying profile {}: {}",
                profile.path.display(),
                super::clap_message(&e)
            )))
        })?;
    cli.global.profile = Some(name);
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn finds_the_subcommand() {
        let root = Cli::command();
        let w = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert_eq!(subcommand_index(&w("cairn backup /x"), &root), Some(1));
        assert_eq!(
            subcommand_index(&w("cairn -r backup backup"), &root),
            Some(3)
        );
        assert_eq!(
            subcommand_index(&w("cairn -qr x -P p check"), &root),
            Some(5)
        );
        assert_eq!(
            subcommand_index(&w("cairn --repo=x -rX check"), &root),
            Some(3)
        );
    }
}
