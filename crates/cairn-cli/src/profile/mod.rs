//! Profiles: TOML files that name a repository, how to unlock it, and
//! defaults for commands, so that `cairn -P nas backup` or `cairn run nas`
//! needs no other flag.
//!
//! ```toml
//! repository = "sftp:backup@nas:/srv/cairn"    # any -r form (cairn-location)
//! password-file = "/etc/cairn/nas.pass"        # or password-command
//! compression = "max"                          # any other global flag
//! [options]                                    # -o key=value
//! "sftp.args" = "-i /etc/cairn/nas_key"
//! [env]                                        # set when not already set
//! AWS_SECRET_ACCESS_KEY = "..."
//! [backup]                                     # defaults of `cairn backup`
//! paths = ["/etc", "/home"]
//! exclude = ["*.tmp"]
//! [forget]                                     # defaults of `cairn forget`
//! keep-daily = 7
//! prune = true
//! [check]
//! read-data-subset = "5%"
//! [run]                                        # which steps `cairn run` takes
//! check = false
//! ```
//!
//! A profile's backup can be a command's output instead of paths (a
//! database dump): `stdin-from-command = ["pg_dump", "mydb"]` in
//! `[backup]`, with `stdin-filename = "mydb.sql"`, is `cairn backup
//! --stdin-filename mydb.sql --stdin-from-command -- pg_dump mydb`.
//!
//! Invariants:
//! - Keys are spelled as the command-line flags, top-level keys are the
//!   global flags (with `repository` for `-r/--repo`), a table is the
//!   command of that name; every key is checked against clap's own
//!   definition of the flag, so a profile accepts exactly what the command
//!   line does, and an error names the file, the line and the key.
//! - Precedence: a flag on the command line beats the environment
//!   (`CAIRN_*`, and any variable for `[env]`), which beats the profile.
//!   The password keys are one group: any password given on the command
//!   line or in the environment replaces the profile's.
//! - A profile is applied by rewriting the command line (its flags placed
//!   before the user's) and parsing that with clap once more, so commands
//!   see ordinary options and need not know about profiles.
//! - The words after `--` (the command of `stdin-from-command = [...]`)
//!   go last, after the user's own words; a user who names what to back
//!   up (paths, `--stdin`, `--stdin-from-command`, or a `--` command)
//!   replaces the profile's command, as given paths replace its paths.
//! - Relative paths in a profile are relative to the profile's directory;
//!   `~/` is the home directory.
//! - A profile holding secrets (`[env]` values, a password in the
//!   repository URL) that other users can read gives a warning naming the
//!   `chmod` that fixes it.

mod argv;
mod read;

pub use argv::{parse_command_line, subcommand_index, ParseFailure};

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// The `[run]` keys that switch a step of `cairn run` on or off.
pub const STEPS: [&str; 3] = ["backup", "forget", "check"];

/// Top-level flags a profile may not set: they are about one invocation.
const NOT_IN_PROFILE: [&str; 5] = ["profile", "json", "help", "version", "option"];

/// A key's value, as flags take it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    One(String),
    Many(Vec<String>),
    /// `stdin-from-command = ["prog", "arg", ...]`: the flag, and the
    /// program with its arguments after `--`.
    Command(Vec<String>),
}

/// The `[backup]` keys that name what to back up, besides the command:
/// when the user gives any of them, the profile's command is not used.
const BACKUP_SOURCE_IDS: [&str; 4] = ["paths", "stdin", "stdin_from_command", "command"];

/// One `key = value` of a profile, checked against its flag.
#[derive(Clone, Debug)]
pub struct Entry {
    /// As written (`keep-daily`; `repository` at the top level).
    pub key: String,
    /// clap's id of the argument (`keep_daily`, `repo`).
    pub id: String,
    /// The long flag (`keep-daily`, `repo`), or `None` for a positional.
    pub long: Option<String>,
    pub value: Value,
}

impl Entry {
    /// The command-line words for this entry.
    fn tokens(&self) -> Vec<OsString> {
        let Some(long) = &self.long else {
            return match &self.value {
                Value::One(v) => vec![v.into()],
                Value::Many(v) => v.iter().map(OsString::from).collect(),
                Value::Bool(_) | Value::Command(_) => vec![],
            };
        };
        match &self.value {
            Value::Bool(true) | Value::Command(_) => vec![format!("--{long}").into()],
            Value::Bool(false) => vec![],
            Value::One(v) => vec![format!("--{long}={v}").into()],
            Value::Many(vs) => vs.iter().map(|v| format!("--{long}={v}").into()).collect(),
        }
    }

    /// The words that go after everything else: `--` and the command of
    /// a [`Value::Command`]; nothing for other values.
    fn tail(&self) -> Vec<OsString> {
        match &self.value {
            Value::Command(argv) => std::iter::once("--".into())
                .chain(argv.iter().map(OsString::from))
                .collect(),
            _ => vec![],
        }
    }
}

/// A loaded and checked profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub path: PathBuf,
    /// Top-level keys: global flags.
    pub globals: Vec<Entry>,
    /// `[options]`: `-o key=value`.
    pub options: Vec<(String, String)>,
    /// `[env]`: environment variables set when not already set.
    pub env: Vec<(String, String)>,
    /// Per command: its defaults.
    pub sections: BTreeMap<String, Vec<Entry>>,
    /// `[run]` step switches; a step without a switch runs when its table exists.
    pub steps: BTreeMap<String, bool>,
    /// Said once when the profile is applied (permissions).
    pub warnings: Vec<String>,
}

/// Did the user name what to back up (paths, `--stdin`, a command)?
fn source_given(given: &dyn Fn(&str) -> bool) -> bool {
    BACKUP_SOURCE_IDS.iter().any(|id| given(id))
}

/// Where profiles are looked for, in order: the user's, then the system's.
pub fn profile_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d).join("cairn"));
    } else if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(PathBuf::from(h).join(".config/cairn"));
    }
    dirs.push(PathBuf::from("/etc/cairn"));
    dirs
}

/// A name is a file name without `.toml`: letters, digits, `-`, `_`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The file of profile `name` (or `name` itself when it is a path).
pub fn find(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.is_file() {
            return Err(Error::usage(format!("profile file {name} does not exist")));
        }
        return Ok(p);
    }
    if !valid_name(name) {
        return Err(Error::usage(format!(
            "invalid profile name {name:?}: use letters, digits, '-', '_' and '.', or a path to a .toml file"
        )));
    }
    let dirs = profile_dirs();
    for d in &dirs {
        let p = d.join(format!("{name}.toml"));
        if p.is_file() {
            return Ok(p);
        }
    }
    let tried: Vec<String> = dirs
        .iter()
        .map(|d| d.join(format!("{name}.toml")).display().to_string())
        .collect();
    Err(Error::usage(format!(
        "no profile {name:?} (looked for {})",
        tried.join(" and ")
    )))
}

/// Every profile found: (name, file, the file that hides it if another
/// directory earlier in the search order has the same name).
pub fn list() -> Vec<(String, PathBuf, Option<PathBuf>)> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut out = Vec::new();
    for d in profile_dirs() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let stem = n.strip_suffix(".toml")?.to_string();
                (valid_name(&stem) && e.path().is_file()).then_some(stem)
            })
            .collect();
        names.sort();
        for n in names {
            let p = d.join(format!("{n}.toml"));
            let hidden_by = seen.get(&n).cloned();
            if hidden_by.is_none() {
                seen.insert(n.clone(), p.clone());
            }
            out.push((n, p, hidden_by));
        }
    }
    out
}

/// Does a location string carry a password (`scheme://user:pass@host`)?
pub fn url_has_password(spec: &str) -> bool {
    let Some(start) = spec.find("://").map(|i| i + 3) else {
        return false;
    };
    let end = spec[start..].find('/').map_or(spec.len(), |i| start + i);
    match spec[start..end].rfind('@') {
        Some(at) => spec[start..start + at].contains(':'),
        None => false,
    }
}

/// `spec` with the password of `scheme://user:pass@host` replaced by `***`.
pub fn mask_url(spec: &str) -> String {
    if !url_has_password(spec) {
        return spec.to_string();
    }
    let start = spec.find("://").unwrap() + 3;
    let end = spec[start..].find('/').map_or(spec.len(), |i| start + i);
    let at = start + spec[start..end].rfind('@').unwrap();
    let colon = start + spec[start..at].find(':').unwrap();
    format!("{}:***{}", &spec[..colon], &spec[at..])
}

/// The first line of a clap error, without its `error: ` prefix.
pub fn clap_message(e: &clap::Error) -> String {
    let s = e.render().to_string();
    let line = s.lines().next().unwrap_or("invalid value").trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

impl Profile {
    /// Find profile `name` and load it.
    pub fn load(name: &str) -> Result<Profile> {
        let path = find(name)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(e, format!("reading profile {}", path.display())))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        let mut p = Profile::parse(&name, &path, &text)?;
        p.check_permissions();
        Ok(p)
    }

    /// Does the profile hold secrets (values that unlock something)?
    pub fn has_secrets(&self) -> bool {
        !self.env.is_empty()
            || self
                .globals
                .iter()
                .any(|e| e.id == "repo" && matches!(&e.value, Value::One(v) if url_has_password(v)))
    }

    fn check_permissions(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if !self.has_secrets() {
            return;
        }
        if let Ok(md) = std::fs::metadata(&self.path) {
            if md.permissions().mode() & 0o044 != 0 {
                let p = self.path.display();
                self.warnings.push(format!(
                    "warning: profile {p} holds secrets and other users can read it; fix with: chmod 600 {p}"
                ));
            }
        }
    }

    /// The repository the profile names, if any.
    pub fn repository(&self) -> Option<&str> {
        self.globals.iter().find_map(|e| match (&*e.id, &e.value) {
            ("repo", Value::One(v)) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Does `cairn run` take this step? A `[run]` switch decides; without
    /// one, a step runs when its table exists (the backup always needs one).
    pub fn step_enabled(&self, step: &str) -> bool {
        self.steps
            .get(step)
            .copied()
            .unwrap_or_else(|| self.sections.contains_key(step))
    }

    /// Set the `[env]` variables that are not set already. Call before any
    /// thread starts.
    pub fn apply_env(&self) {
        for (k, v) in &self.env {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    }

    /// The words for the global flags the user did not give (`given(id)`:
    /// on the command line or through the environment).
    pub fn global_tokens(&self, given: &dyn Fn(&str) -> bool) -> Vec<OsString> {
        let password_given = given("password_file")
            || given("password_command")
            || std::env::var_os("CAIRN_PASSWORD").is_some();
        let mut out = Vec::new();
        for e in &self.globals {
            let skip = if matches!(&*e.id, "password_file" | "password_command") {
                password_given
            } else if e.id == "repo" {
                given("repo") || given("repository_file")
            } else {
                given(&e.id)
            };
            if !skip {
                out.extend(e.tokens());
            }
        }
        // Options merge per key: the user's later `-o` wins over the profile's.
        for (k, v) in &self.options {
            out.push(format!("--option={k}={v}").into());
        }
        out
    }

    /// The words for the defaults of `command` the user did not give.
    pub fn section_tokens(&self, command: &str, given: &dyn Fn(&str) -> bool) -> Vec<OsString> {
        let mut flags = Vec::new();
        let mut positionals = Vec::new();
        let entries = self.sections.get(command).map(Vec::as_slice).unwrap_or(&[]);
        for e in entries {
            if given(&e.id) || (matches!(e.value, Value::Command(_)) && source_given(given)) {
                continue;
            }
            if e.long.is_some() {
                flags.extend(e.tokens());
            } else {
                positionals.extend(e.tokens());
            }
        }
        // `monitor` checks the host the profile backs up.
        if command == "monitor" && !given("host") && !entries.iter().any(|e| e.id == "host") {
            if let Some(h) = self.sections.get("backup").and_then(|b| {
                b.iter().find_map(|e| match (&*e.id, &e.value) {
                    ("host", Value::One(h)) => Some(h.clone()),
                    _ => None,
                })
            }) {
                flags.push(format!("--host={h}").into());
            }
        }
        flags.extend(positionals);
        flags
    }

    /// The words that go after the user's own, at the very end: `--` and
    /// the `[backup]` command, unless the user named what to back up.
    pub fn section_tail(&self, command: &str, given: &dyn Fn(&str) -> bool) -> Vec<OsString> {
        let entries = self.sections.get(command).map(Vec::as_slice).unwrap_or(&[]);
        let tail: Vec<OsString> = entries.iter().flat_map(Entry::tail).collect();
        // Only a command that has a tail is asked about the backup's ids.
        if tail.is_empty() || source_given(given) {
            return vec![];
        }
        tail
    }

    /// The profile as TOML with every secret replaced by `***`.
    pub fn masked(&self) -> toml::Table {
        fn value(v: &Value) -> toml::Value {
            match v {
                Value::Bool(b) => toml::Value::Boolean(*b),
                Value::One(s) => toml::Value::String(s.clone()),
                Value::Many(vs) | Value::Command(vs) => {
                    toml::Value::Array(vs.iter().cloned().map(toml::Value::String).collect())
                }
            }
        }
        let mut t = toml::Table::new();
        for e in &self.globals {
            let v = match (&*e.id, &e.value) {
                ("repo", Value::One(s)) => toml::Value::String(mask_url(s)),
                _ => value(&e.value),
            };
            t.insert(e.key.clone(), v);
        }
        if !self.options.is_empty() {
            let o: toml::Table = self
                .options
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                .collect();
            t.insert("options".into(), toml::Value::Table(o));
        }
        if !self.env.is_empty() {
            let o: toml::Table = self
                .env
                .iter()
                .map(|(k, _)| (k.clone(), toml::Value::String("***".into())))
                .collect();
            t.insert("env".into(), toml::Value::Table(o));
        }
        for (name, entries) in &self.sections {
            let mut s: toml::Table = entries
                .iter()
                .map(|e| (e.key.clone(), value(&e.value)))
                .collect();
            if name == "run" {
                for (k, b) in &self.steps {
                    s.insert(k.clone(), toml::Value::Boolean(*b));
                }
            }
            t.insert(name.clone(), toml::Value::Table(s));
        }
        if !self.sections.contains_key("run") && !self.steps.is_empty() {
            let s: toml::Table = self
                .steps
                .iter()
                .map(|(k, b)| (k.clone(), toml::Value::Boolean(*b)))
                .collect();
            t.insert("run".into(), toml::Value::Table(s));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Profile> {
        Profile::parse("t", Path::new("/etc/cairn/t.toml"), text)
    }

    #[test]
    fn keys_are_the_flags() {
        let p = parse(
            r#"
repository = "rest:http://u:secret@h:8000/r/"
password-file = "../cairn/./pw"
compression = "max"
[options]
connections = 3
[env]
AWS_SECRET_ACCESS_KEY = "s3cr3t"
[backup]
paths = ["/srv", "/etc"]
exclude = "*.tmp"
one-file-system = true
[forget]
keep-daily = 7
prune = true
"#,
        )
        .unwrap();
        assert_eq!(p.repository(), Some("rest:http://u:secret@h:8000/r/"));
        let pw = p.globals.iter().find(|e| e.key == "password-file").unwrap();
        assert_eq!(pw.value, Value::One("/etc/cairn/pw".into()));
        assert_eq!(p.options, vec![("connections".into(), "3".into())]);
        assert!(p.has_secrets());
        let toks = p.section_tokens("backup", &|_| false);
        let toks: Vec<String> = toks.iter().map(|t| t.to_string_lossy().into()).collect();
        assert_eq!(
            toks,
            ["--exclude=*.tmp", "--one-file-system", "/srv", "/etc"]
        );
        let masked = toml::to_string(&p.masked()).unwrap();
        assert!(!masked.contains("secret"), "{masked}");
        assert!(!masked.contains("s3cr3t"), "{masked}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        for (text, line, key) in [
            (
                "repository = \"/r\"\n\n[backup]\nexclued = [\"x\"]\n",
                4,
                "backup.exclued",
            ),
            ("[forget]\nkeep-daily = true\n", 2, "forget.keep-daily"),
            (
                "[backup]\none-file-system = \"yes\"\n",
                2,
                "backup.one-file-system",
            ),
            ("compression = \"max\"\njson = true\n", 2, "json"),
            ("[options]\n\"s3.regio\" = \"x\"\n", 2, "s3.regio"),
            ("[nonsense]\nx = 1\n", 1, "nonsense"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains("/etc/cairn/t.toml"), "{e}");
            assert!(e.contains(&format!("line {line}:")), "{e}");
            assert!(e.contains(key), "{e}");
        }
        let e = parse("repository = \n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("invalid TOML"), "{e}");
    }

    #[test]
    fn a_backup_can_be_a_command() {
        let p = parse(
            r#"
[backup]
stdin-from-command = ["pg_dump", "--no-owner", "my db"]
stdin-filename = "mydb.sql"
tag = "db"
"#,
        )
        .unwrap();
        let words = |v: Vec<OsString>| -> Vec<String> {
            v.iter().map(|t| t.to_string_lossy().into()).collect()
        };
        let none = |_: &str| false;
        assert_eq!(
            words(p.section_tokens("backup", &none)),
            [
                "--stdin-filename=mydb.sql",
                "--stdin-from-command",
                "--tag=db"
            ]
        );
        assert_eq!(
            words(p.section_tail("backup", &none)),
            ["--", "pg_dump", "--no-owner", "my db"]
        );
        // A user who names what to back up replaces the profile's command.
        for id in ["paths", "stdin", "stdin_from_command", "command"] {
            let given = |g: &str| g == id;
            assert!(p.section_tail("backup", &given).is_empty(), "{id}");
            let toks = words(p.section_tokens("backup", &given));
            assert!(!toks.contains(&"--stdin-from-command".into()), "{id}");
        }
        let shown = toml::to_string(&p.masked()).unwrap();
        assert!(
            shown.contains(r#"stdin-from-command = ["pg_dump", "--no-owner", "my db"]"#),
            "{shown}"
        );

        // `true` alone is still the plain flag.
        let p = parse(
            "[backup]
stdin-from-command = true
",
        )
        .unwrap();
        assert!(p.section_tail("backup", &none).is_empty());

        for (text, says) in [
            ("[backup]\nstdin-from-command = []\n", "give the program"),
            (
                "[backup]\nstdin-from-command = [\"\"]\n",
                "give the program",
            ),
            (
                "[backup]\nstdin-from-command = [1.5, {a = 1}]\n",
                "expected a string",
            ),
            (
                "[backup]\npaths = [\"/etc\"]\nstdin-from-command = [\"pg_dump\"]\n",
                "not both",
            ),
            (
                "[forget]\nstdin-from-command = [\"x\"]\n",
                "forget.stdin-from-command",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("line "), "{text:?}: {e}");
        }
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(mask_url("rest:https://u:p@h/x"), "rest:https://u:***@h/x");
        assert_eq!(mask_url("rest:https://u@h/x"), "rest:https://u@h/x");
        assert_eq!(mask_url("/srv/repo"), "/srv/repo");
    }
}
