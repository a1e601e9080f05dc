//! `--prometheus-file PATH`: node-exporter textfile metrics of `backup` and
//! `run`, for the textfile collector (`--collector.textfile.directory`).
//!
//! - One series per (profile, repository, host), as labels. The file may
//!   hold the series of several profiles or hosts (`run --all` with one
//!   file): a writer replaces its own series and keeps the others.
//! - When a backup fails, `cairn_backup_success` is 0 and
//!   `cairn_backup_last_success_timestamp_seconds` keeps its earlier value,
//!   so an alert can be on the age of the last success. The other backup
//!   figures are those of the last backup that saved a snapshot.
//! - The file is replaced atomically (a temporary file in the same
//!   directory, fsync, rename, fsync of the directory): the collector never
//!   reads half a file. Writers that share a file must not run at the same
//!   time (`run --all` runs its profiles one after another).
//! - Failing to write metrics is a warning, never the command's failure.

use crate::cli::GlobalOptions;
use crate::commands::backup::Outcome;
use crate::error::Error;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// One metric family: help, type and its samples by label set.
#[derive(Default)]
struct Family {
    help: String,
    kind: String,
    samples: BTreeMap<String, String>,
}

/// A value to set: family name, help text, and the value.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
    /// Extra labels beyond the series' own (`step="check"`).
    pub extra: Vec<(&'static str, String)>,
}

fn sample(name: &'static str, help: &'static str, value: f64) -> Sample {
    Sample {
        name,
        help,
        value,
        extra: Vec::new(),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="x",b="y"}` with the labels sorted by name.
fn label_set(labels: &[(&str, String)]) -> String {
    let mut l: Vec<&(&str, String)> = labels.iter().collect();
    l.sort_by_key(|(k, _)| *k);
    let inner: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Read the families of an earlier file (ours); lines it cannot read are dropped.
fn read_families(text: &str) -> BTreeMap<String, Family> {
    let mut fams: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, help)) = rest.split_once(' ') {
                fams.entry(name.into()).or_default().help = help.into();
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                fams.entry(name.into()).or_default().kind = kind.into();
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (name, labels, value) = match line.find('{') {
                Some(open) => {
                    let Some(close) = line.rfind('}') else {
                        continue;
                    };
                    (&line[..open], &line[open..=close], line[close + 1..].trim())
                }
                None => match line.split_once(' ') {
                    Some((n, v)) => (n, "{}", v.trim()),
                    None => continue,
                },
            };
            if value.is_empty() {
                continue;
            }
            fams.entry(name.into())
                .or_default()
                .samples
                .insert(labels.into(), value.into());
        }
    }
    fams
}

fn render(fams: &BTreeMap<String, Family>) -> String {
    let mut out = String::new();
    for (name, f) in fams {
        if f.samples.is_empty() {
            continue;
        }
        out.push_str(&format!("# HELP {name} {}\n", f.help));
        out.push_str(&format!(
            "# TYPE {name} {}\n",
            if f.kind.is_empty() { "gauge" } else { &f.kind }
        ));
        for (labels, value) in &f.samples {
            if labels == "{}" {
                out.push_str(&format!("{name} {value}\n"));
            } else {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        }
    }
    out
}

/// Write `text` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Set `samples` for the series `labels` in the file at `path`, keeping
/// every other series and every family not given.
pub fn update(path: &Path, labels: &[(&str, String)], samples: &[Sample]) {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut fams = read_families(&old);
    for s in samples {
        let mut all = labels.to_vec();
        all.extend(s.extra.iter().cloned());
        let f = fams.entry(s.name.to_string()).or_default();
        f.help = s.help.to_string();
        f.kind = "gauge".into();
        f.samples.insert(label_set(&all), number(s.value));
    }
    if let Err(e) = replace_file(path, &render(&fams)) {
        eprintln!(
            "warning: writing metrics to {}: {e} (the backup is not affected)",
            path.display()
        );
    }
}

/// The labels of a series: profile (when one is in use), repository, host.
pub fn labels(g: &GlobalOptions, host: &str) -> Vec<(&'static str, String)> {
    let repo = match crate::repo::repository_location(g).ok().flatten() {
        Some(r) => cairn_location::Location::parse(&r)
            .map(|l| l.to_string())
            .unwrap_or_else(|_| crate::profile::mask_url(&r)),
        None => crate::repo::default_repository()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    };
    let mut l = vec![("repository", repo), ("host", host.to_string())];
    if let Some(p) = &g.profile {
        l.push(("profile", p.clone()));
    }
    l
}

/// The metrics of one backup, successful or not.
pub fn write_backup(
    path: &Path,
    g: &GlobalOptions,
    host: &str,
    started: SystemTime,
    outcome: Result<&Outcome, &Error>,
) {
    let now = SystemTime::now();
    let duration = now
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64();
    let mut samples = vec![
        sample(
            "cairn_backup_last_run_timestamp_seconds",
            "When the last backup ended (Unix time).",
            seconds(now),
        ),
        sample(
            "cairn_backup_duration_seconds",
            "How long the last backup took.",
            duration,
        ),
        sample(
            "cairn_backup_success",
            "1 if the last backup saved a snapshot (even with unreadable files), else 0.",
            if outcome.is_ok() { 1.0 } else { 0.0 },
        ),
    ];
    if let Ok(o) = outcome {
        let r = &o.result;
        samples.push(sample(
            "cairn_backup_last_success_timestamp_seconds",
            "When the last backup that saved a snapshot ended (Unix time).",
            seconds(now),
        ));
        samples.push(sample(
            "cairn_backup_errors",
            "Files and directories the last backup could not read.",
            r.errors as f64,
        ));
        if let Some(s) = &r.snapshot.summary {
            for (name, help, v) in [
                (
                    "cairn_backup_files_new",
                    "New files in the last backup.",
                    s.files_new,
                ),
                (
                    "cairn_backup_files_changed",
                    "Changed files in the last backup.",
                    s.files_changed,
                ),
                (
                    "cairn_backup_files_unmodified",
                    "Unmodified files in the last backup.",
                    s.files_unmodified,
                ),
                (
                    "cairn_backup_added_bytes",
                    "Bytes of new data the last backup added (before compression).",
                    s.data_added,
                ),
                (
                    "cairn_backup_stored_bytes",
                    "Bytes the last backup stored in the repository (compressed, encrypted).",
                    s.data_added_packed,
                ),
                (
                    "cairn_backup_processed_bytes",
                    "Bytes of the files the last backup covered.",
                    s.total_bytes_processed,
                ),
                (
                    "cairn_backup_processed_files",
                    "Files the last backup covered.",
                    s.total_files_processed,
                ),
            ] {
                samples.push(sample(name, help, v as f64));
            }
        }
    }
    update(path, &labels(g, host), &samples);
}

/// The metrics of a `run`: its exit code, duration and each step's result.
pub fn write_run(
    path: &Path,
    g: &GlobalOptions,
    host: &str,
    started: SystemTime,
    code: i32,
    steps: &[(&'static str, bool)],
) {
    let now = SystemTime::now();
    let mut samples = vec![
        sample(
            "cairn_run_last_run_timestamp_seconds",
            "When the last `cairn run` ended (Unix time).",
            seconds(now),
        ),
        sample(
            "cairn_run_duration_seconds",
            "How long the last `cairn run` took.",
            now.duration_since(started)
                .unwrap_or_default()
                .as_secs_f64(),
        ),
        sample(
            "cairn_run_exit_code",
            "The exit code of the last `cairn run` (0 success, 3 incomplete backup).",
            code as f64,
        ),
    ];
    for (step, ok) in steps {
        samples.push(Sample {
            name: "cairn_run_step_success",
            help: "1 if the step of the last `cairn run` succeeded, else 0.",
            value: if *ok { 1.0 } else { 0.0 },
            extra: vec![("step", step.to_string())],
        });
    }
    update(path, &labels(g, host), &samples);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_replaced_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cairn.prom");
        let a = vec![("host", "a".to_string()), ("repository", "/r".to_string())];
        let b = vec![
            ("host", "b\"x".to_string()),
            ("repository", "/r".to_string()),
        ];
        update(
            &p,
            &a,
            &[sample("cairn_x", "X.", 1.0), sample("cairn_y", "Y.", 5.0)],
        );
        update(&p, &b, &[sample("cairn_x", "X.", 2.0)]);
        update(&p, &a, &[sample("cairn_x", "X.", 3.5)]);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "# HELP cairn_x X.\n# TYPE cairn_x gauge\n\
             cairn_x{host=\"a\",repository=\"/r\"} 3.500\n\
             cairn_x{host=\"b\\\"x\",repository=\"/r\"} 2\n\
             # HELP cairn_y Y.\n# TYPE cairn_y gauge\n\
             cairn_y{host=\"a\",repository=\"/r\"} 5\n"
        );
    }
}
