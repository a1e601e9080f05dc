//! Reading a profile's TOML into checked entries: every key is looked up
//! in clap's definition of the command line (top-level keys are global
//! flags, a table is a command) and its value parsed by clap as it would
//! be on the command line, so an error names the file, the line and the
//! key, and a profile accepts exactly what the command line does.

use super::{clap_message, Entry, Profile, Value, NOT_IN_PROFILE, STEPS};
use crate::cli::Cli;
use crate::error::{Error, Result};
use clap::{Arg, ArgAction, CommandFactory};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The home directory, for `~/` in profile paths.
fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn resolve_path(dir: &Path, v: &str) -> String {
    if let Some(rest) = v.strip_prefix("~/") {
        if let Some(h) = home() {
            return h.join(rest).display().to_string();
        }
    }
    if v.is_empty() || Path::new(v).is_absolute() {
        return v.to_string();
    }
    lexical_join(dir, v)
}

/// `dir/rel` with `.` and `..` taken away lexically (the profile's
/// directory is canonical, so no symlink is skipped by a `..`).
fn lexical_join(dir: &Path, rel: &str) -> String {
    use std::path::Component;
    let mut out = dir.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// Reads a profile's text into checked entries.
struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    root: clap::Command,
}

impl Reader<'_> {
    fn err(&self, offset: usize, msg: impl std::fmt::Display) -> Error {
        Error::usage(format!(
            "profile {}, line {}: {msg}",
            self.path.display(),
            line_of(self.text, offset)
        ))
    }

    /// A TOML value as a string (strings, integers, floats; not tables).
    fn scalar(&self, key: &str, v: &toml::Spanned<DeValue<'_>>) -> Result<String> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map(|n| n.to_string())
                .map_err(|_| {
                    self.err(v.span().start, format!("key `{key}`: integer out of range"))
                }),
            DeValue::Float(f) => Ok(f.as_str().to_string()),
            other => Err(self.err(
                v.span().start,
                format!(
                    "key `{key}`: expected a string or a number, not {}",
                    other.type_str()
                ),
            )),
        }
    }

    /// Check `key = value` against the argument it names and turn it into an entry.
    fn entry(
        &self,
        section: Option<&str>,
        key: &toml::Spanned<std::borrow::Cow<'_, str>>,
        value: &toml::Spanned<DeValue<'_>>,
        arg: &Arg,
    ) -> Result<Entry> {
        let k = key.get_ref().as_ref();
        let full = match section {
            Some(s) => format!("{s}.{k}"),
            None => k.to_string(),
        };
        let at = key.span().start;
        let is_path = arg.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>();
        let fix = |s: String| {
            if is_path {
                resolve_path(&self.dir, &s)
            } else {
                s
            }
        };
        let v = match arg.get_action() {
            ArgAction::SetTrue => match value.get_ref() {
                DeValue::Boolean(b) => Value::Bool(*b),
                // `stdin-from-command = ["pg_dump", "mydb"]`: the flag and its command.
                DeValue::Array(items)
                    if section == Some("backup") && arg.get_id() == "stdin_from_command" =>
                {
                    let mut argv = Vec::new();
                    for item in items.iter() {
                        argv.push(self.scalar(&full, item)?);
                    }
                    if argv.first().is_none_or(|p| p.is_empty()) {
                        return Err(self.err(
                            at,
                            format!("key `{full}`: give the program and its arguments, e.g. [\"pg_dump\", \"mydb\"]"),
                        ));
                    }
                    Value::Command(argv)
                }
                other => {
                    return Err(self.err(
                        at,
                        format!(
                            "key `{full}`: expected true or false, not {}",
                            other.type_str()
                        ),
                    ))
                }
            },
            ArgAction::Append => match value.get_ref() {
                DeValue::Array(items) => {
                    let mut vs = Vec::new();
                    for item in items.iter() {
                        vs.push(fix(self.scalar(&full, item)?));
                    }
                    Value::Many(vs)
                }
                _ => Value::Many(vec![fix(self.scalar(&full, value)?)]),
            },
            _ => Value::One(fix(self.scalar(&full, value)?)),
        };
        let entry = Entry {
            key: k.to_string(),
            id: arg.get_id().to_string(),
            long: arg.get_long().map(str::to_owned),
            value: v,
        };
        // Let clap judge the value exactly as it would on the command line.
        let mut argv: Vec<OsString> = vec!["cairn".into()];
        let cmd = match section {
            Some(s) => {
                argv.push(s.into());
                self.root.clone()
            }
            None => self.root.clone().subcommand_required(false),
        };
        if entry.long.is_none() {
            argv.push("--".into());
        }
        argv.extend(entry.tokens());
        argv.extend(entry.tail());
        if let Err(e) = cmd.try_get_matches_from(argv) {
            return Err(self.err(at, format!("key `{full}`: {}", clap_message(&e))));
        }
        Ok(entry)
    }
}

/// The names of the flags a command takes, for "unknown key" errors.
fn known_keys(cmd: &clap::Command, section: Option<&str>) -> String {
    let mut keys: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            if a.is_positional() {
                (section == Some("backup") && a.get_id() == "paths").then(|| "paths".to_string())
            } else {
                a.get_long().map(str::to_owned)
            }
        })
        .filter(|l| !NOT_IN_PROFILE.contains(&l.as_str()))
        .collect();
    if section.is_none() {
        keys.retain(|k| k != "repo");
        keys.insert(0, "repository".into());
    }
    if section == Some("run") {
        keys.retain(|k| k != "all");
        keys.extend(STEPS.iter().map(|s| s.to_string()));
    }
    keys.join(", ")
}

/// Commands that take a table of defaults: every command except those
/// whose flags only make sense once (profile, schedule, key, serve).
fn section_allowed(name: &str) -> bool {
    !matches!(name, "profile" | "schedule" | "key" | "serve" | "init")
}

impl Profile {
    /// Parse and check a profile's text; `path` is for messages and relative paths.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Profile> {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let r = Reader {
            path,
            text,
            dir,
            root: Cli::command(),
        };
        let doc = DeTable::parse(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            r.err(at, format!("invalid TOML: {}", e.message()))
        })?;
        let mut p = Profile {
            name: name.to_string(),
            path: path.to_path_buf(),
            globals: Vec::new(),
            options: Vec::new(),
            env: Vec::new(),
            sections: BTreeMap::new(),
            steps: BTreeMap::new(),
            warnings: Vec::new(),
        };
        for (key, value) in doc.get_ref().iter() {
            let k = key.get_ref().as_ref();
            let at = key.span().start;
            match (k, value.get_ref()) {
                ("options", DeValue::Table(t)) => {
                    let mut opts = cairn_location::ExtendedOptions::default();
                    for (ok, ov) in t.iter() {
                        let okey = ok.get_ref().as_ref();
                        let full = format!("options.{okey}");
                        let v = r.scalar(&full, ov)?;
                        opts.set(okey, &v)
                            .map_err(|e| r.err(ok.span().start, format!("key `{full}`: {e}")))?;
                        p.options.push((okey.to_string(), v));
                    }
                }
                ("env", DeValue::Table(t)) => {
                    for (ek, ev) in t.iter() {
                        let name = ek.get_ref().as_ref();
                        if name.is_empty() || name.contains('=') || name.contains('\0') {
                            return Err(r.err(
                                ek.span().start,
                                format!("key `env.{name}`: not a valid environment variable name"),
                            ));
                        }
                        let v = r.scalar(&format!("env.{name}"), ev)?;
                        p.env.push((name.to_string(), v));
                    }
                }
                (section, DeValue::Table(t)) => {
                    let Some(sub) = r
                        .root
                        .find_subcommand(section)
                        .filter(|_| section_allowed(section))
                    else {
                        let allowed: Vec<String> = r
                            .root
                            .get_subcommands()
                            .map(|c| c.get_name().to_string())
                            .filter(|n| section_allowed(n))
                            .collect();
                        return Err(r.err(
                            at,
                            format!(
                                "unknown table [{section}] (tables: options, env, {})",
                                allowed.join(", ")
                            ),
                        ));
                    };
                    let mut entries = Vec::new();
                    for (sk, sv) in t.iter() {
                        let skey = sk.get_ref().as_ref();
                        if section == "run" && STEPS.contains(&skey) {
                            match sv.get_ref() {
                                DeValue::Boolean(b) => {
                                    p.steps.insert(skey.to_string(), *b);
                                }
                                other => {
                                    return Err(r.err(
                                        sk.span().start,
                                        format!(
                                            "key `run.{skey}`: expected true or false, not {}",
                                            other.type_str()
                                        ),
                                    ))
                                }
                            }
                            continue;
                        }
                        let arg = sub.get_arguments().find(|a| {
                            !a.is_hide_set()
                                && if a.is_positional() {
                                    section == "backup" && skey == "paths" && a.get_id() == "paths"
                                } else {
                                    a.get_long() == Some(skey)
                                        && !(section == "run" && skey == "all")
                                }
                        });
                        let Some(arg) = arg else {
                            return Err(r.err(
                                sk.span().start,
                                format!(
                                    "unknown key `{section}.{skey}` (keys of [{section}]: {})",
                                    known_keys(sub, Some(section))
                                ),
                            ));
                        };
                        entries.push(r.entry(Some(section), sk, sv, arg)?);
                    }
                    let has = |id: &str| {
                        entries
                            .iter()
                            .any(|e: &Entry| e.id == id && e.value != Value::Bool(false))
                    };
                    if section == "backup"
                        && has("paths")
                        && (has("stdin_from_command") || has("stdin"))
                    {
                        return Err(r.err(
                            at,
                            "[backup] has both `paths` and `stdin`/`stdin-from-command`: a backup reads files or a stream, not both (use two profiles)",
                        ));
                    }
                    p.sections.insert(section.to_string(), entries);
                }
                _ => {
                    let long = if k == "repository" { "repo" } else { k };
                    let arg = r.root.get_arguments().find(|a| {
                        a.get_long() == Some(long)
                            && !NOT_IN_PROFILE.contains(&long)
                            && (k == "repository" || long != "repo")
                    });
                    let Some(arg) = arg else {
                        let hint = if r.root.find_subcommand(k).is_some() {
                            format!(" ([{k}] must be a table)")
                        } else {
                            String::new()
                        };
                        return Err(r.err(
                            at,
                            format!(
                                "unknown key `{k}`{hint} (top-level keys: {}; tables: options, env and one per command)",
                                known_keys(&r.root, None)
                            ),
                        ));
                    };
                    p.globals.push(r.entry(None, key, value, arg)?);
                }
            }
        }
        Ok(p)
    }
}
