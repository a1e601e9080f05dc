//! One tool's run of one data set's operations (a "sequence"), on a fresh
//! repository, and how each operation is invoked and measured.
//!
//! cairn and restic take the same arguments and differ only in the names
//! of their environment variables; rustic differs in a few arguments too
//! (`Program`). Errors inside an operation become a failed row; only
//! harness errors (copying the tree, removing directories) stop the run.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::report::{self, Sample};
use super::{data, fsutil, mutate, run, Dirs, Peer, SetKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Op {
    Init,
    Backup,
    Rebackup,
    MutateBackup,
    Restore,
    Check,
    /// Two more mutate + backup rounds (untimed), then the timed forget.
    ForgetPrune,
    Ls,
}

impl Op {
    pub(super) fn label(self) -> &'static str {
        match self {
            Op::Init => "init",
            Op::Backup => "backup",
            Op::Rebackup => "re-backup unchanged",
            Op::MutateBackup => "backup after mutate",
            Op::Restore => "restore",
            Op::Check => "check --read-data",
            Op::ForgetPrune => "forget --keep-last 1 --prune",
            Op::Ls => "ls -l latest",
        }
    }

    /// Rows whose repository size the table shows.
    pub(super) fn shows_size(label: &str) -> bool {
        [Op::Backup, Op::MutateBackup, Op::ForgetPrune]
            .iter()
            .any(|op| op.label() == label)
    }
}

/// cairn or restic: the two tools the other benchmarks (`--backends`,
/// `--databases`) compare, each with its own invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ToolKind {
    Cairn,
    Restic,
}

pub(super) struct Tool {
    pub(super) kind: ToolKind,
    /// The binary, or why there is none.
    pub(super) bin: Result<PathBuf, String>,
    pub(super) version: String,
}

impl Tool {
    pub(super) fn name(&self) -> &'static str {
        self.program().name()
    }

    pub(super) fn program(&self) -> Program {
        match self.kind {
            ToolKind::Cairn => Program::Cairn,
            ToolKind::Restic => Program::Restic,
        }
    }
}

/// A program the main bench measures: cairn, or one of its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Program {
    Cairn,
    Restic,
    Rustic,
}

impl From<Peer> for Program {
    fn from(peer: Peer) -> Program {
        match peer {
            Peer::Restic => Program::Restic,
            Peer::Rustic => Program::Rustic,
        }
    }
}

impl Program {
    pub(super) fn name(self) -> &'static str {
        match self {
            Program::Cairn => "cairn",
            Program::Restic => "restic",
            Program::Rustic => "rustic",
        }
    }

    /// The environment of every command: repository, password and cache
    /// under each tool's own variable names, and nothing read from the
    /// user's configuration.
    fn env(self, dirs: &Dirs) -> Vec<(&'static str, OsString)> {
        let cache = dirs.cache.join(self.name());
        let (repo_var, password_var, cache_var) = match self {
            Program::Cairn => ("CAIRN_REPOSITORY", "CAIRN_PASSWORD", "CAIRN_CACHE_DIR"),
            Program::Restic => ("RESTIC_REPOSITORY", "RESTIC_PASSWORD", "RESTIC_CACHE_DIR"),
            Program::Rustic => ("RUSTIC_REPOSITORY", "RUSTIC_PASSWORD", "RUSTIC_CACHE_DIR"),
        };
        let mut env = vec![
            (repo_var, dirs.repo(self.name()).into()),
            (password_var, "cairn-bench-password".into()),
            (cache_var, cache.join("tool").into()),
            ("XDG_CACHE_HOME", cache.join("xdg").into()),
        ];
        if self == Program::Rustic {
            // rustic reads a `rustic.toml` profile from the XDG config
            // directory when there is one; point it at an empty directory
            // (it then logs that it uses no config file). Progress bars
            // off: nobody watches them.
            env.push(("XDG_CONFIG_HOME", cache.join("config").into()));
            env.push(("RUSTIC_NO_PROGRESS", "true".into()));
        }
        env
    }

    /// `backup` of `source`, or of standard input stored as `dump.sql`.
    fn backup_args(self, source: &Path, stdin: bool) -> Vec<OsString> {
        match (stdin, self) {
            (false, _) => vec!["backup".into(), source.into()],
            // rustic reads standard input for the source `-`. `--force`
            // (no parent): with a parent, rustic 0.11.4 finds the stdin
            // entry unchanged, reads nothing and stores the parent's
            // contents again, whatever the input (checked by hand: the
            // second of two different inputs dumps as the first).
            (true, Program::Rustic) => ["backup", "--force", "-", "--stdin-filename", "dump.sql"]
                .map(OsString::from)
                .to_vec(),
            (true, Program::Cairn | Program::Restic) => {
                ["backup", "--stdin", "--stdin-filename", "dump.sql"]
                    .map(OsString::from)
                    .to_vec()
            }
        }
    }

    /// `restore latest` into `target`.
    fn restore_args(self, target: &Path) -> Vec<OsString> {
        match self {
            // rustic takes the destination as a positional argument.
            Program::Rustic => vec!["restore".into(), "latest".into(), target.into()],
            Program::Cairn | Program::Restic => vec![
                "restore".into(),
                "latest".into(),
                "--target".into(),
                target.into(),
            ],
        }
    }
}

/// A program with its binary, as the main bench runs it.
pub(super) struct Contender {
    pub(super) program: Program,
    /// The binary, or why there is none (its rows then fail).
    pub(super) bin: Result<PathBuf, String>,
    pub(super) version: String,
}

impl Contender {
    pub(super) fn name(&self) -> &'static str {
        self.program.name()
    }
}

impl From<Tool> for Contender {
    fn from(tool: Tool) -> Contender {
        Contender {
            program: tool.program(),
            bin: tool.bin,
            version: tool.version,
        }
    }
}

pub(super) struct Bench {
    pub(super) dirs: Dirs,
    pub(super) timeout: Duration,
    pub(super) samples: Vec<Sample>,
    /// (tool, op) pairs whose failure was already printed.
    pub(super) reported: HashSet<(Program, Op)>,
}

impl Bench {
    /// One tool's run of all of `set`'s operations, on a fresh repository.
    pub(super) fn sequence(
        &mut self,
        set: SetKind,
        prepared: &data::Prepared,
        tool: &Contender,
        rep: usize,
        reps: usize,
    ) -> Result<()> {
        eprintln!(
            "[bench] {} rep {}/{reps}: {}",
            set.name(),
            rep + 1,
            tool.name()
        );
        let repo = self.dirs.repo(tool.name());
        fsutil::remove(&repo)?;
        fsutil::remove(&self.dirs.cache.join(tool.name()))?;
        fs::create_dir_all(&self.dirs.repos)?;
        // Why the remaining operations cannot run, once something they need failed.
        let mut blocked: Option<String> = tool.bin.as_ref().err().cloned();
        // The directory backed up: `tree` is copied, since mutate changes it.
        let source = if set == SetKind::Tree && blocked.is_none() {
            let work = self.dirs.work.join("tree");
            fsutil::remove(&work)?;
            fs::create_dir_all(&self.dirs.work)?;
            fsutil::copy_tree(&prepared.dir, &work)?;
            work
        } else {
            prepared.dir.clone()
        };

        if blocked.is_none() {
            if let Err(e) = self.exec(tool, Op::Init, &["init".into()], None) {
                blocked = Some(format!("init failed: {e}"));
            }
        }
        let mut round = 0;
        for &op in set.ops() {
            if let Some(why) = &blocked {
                self.record_failure(set, op, tool, rep, why.clone());
                continue;
            }
            let result = self.operation(set, op, tool, &source, prepared, &mut round);
            match result {
                Ok(m) => {
                    let size = if matches!(
                        op,
                        Op::Backup | Op::Rebackup | Op::MutateBackup | Op::ForgetPrune
                    ) {
                        Some(fsutil::usage(&repo)?)
                    } else {
                        None
                    };
                    eprintln!(
                        "[bench]   {:<6} {:<29} {:>8.2} s  cpu {:>7.2} s  rss {:>9}{}",
                        tool.name(),
                        op.label(),
                        m.wall.as_secs_f64(),
                        (m.user + m.sys).as_secs_f64(),
                        report::bytes(m.max_rss_kib * 1024),
                        size.map(|u| format!("  repo {}", report::bytes(u.disk_bytes)))
                            .unwrap_or_default()
                    );
                    self.samples.push(Sample {
                        set: set.name(),
                        op: op.label(),
                        tool: tool.name(),
                        rep,
                        ok: true,
                        wall_s: m.wall.as_secs_f64(),
                        user_s: m.user.as_secs_f64(),
                        sys_s: m.sys.as_secs_f64(),
                        max_rss_kib: m.max_rss_kib,
                        repo_disk_bytes: size.map(|u| u.disk_bytes),
                        repo_file_bytes: size.map(|u| u.bytes),
                        sent_bytes: None,
                        recv_bytes: None,
                        error: None,
                    });
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    if op == Op::Backup {
                        blocked = Some(format!("the first backup failed: {message}"));
                    }
                    self.record_failure(set, op, tool, rep, message);
                }
            }
        }
        fsutil::remove(&repo)?;
        fsutil::remove(&self.dirs.restore)?;
        Ok(())
    }

    /// Runs one timed operation (and its untimed preparation).
    fn operation(
        &mut self,
        set: SetKind,
        op: Op,
        tool: &Contender,
        source: &Path,
        prepared: &data::Prepared,
        round: &mut u64,
    ) -> Result<run::Measured> {
        let backup_args = tool
            .program
            .backup_args(source, prepared.stdin_file.is_some());
        let stdin = prepared.stdin_file.as_deref();
        let mut mutate = |work: &Path| -> Result<()> {
            *round += 1;
            let m = mutate::mutate(work, *round).context("mutating the tree")?;
            eprintln!(
                "[bench]   mutate round {round}: {} appended, {} edited, {} new, {} deleted, {} renamed, {} written",
                m.appended,
                m.edited,
                m.created,
                m.deleted,
                m.renamed,
                report::bytes(m.bytes_written)
            );
            Ok(())
        };
        let measured = match op {
            Op::Init => unreachable!("init runs before the operations"),
            Op::Backup | Op::Rebackup => self.exec(tool, op, &backup_args, stdin)?,
            Op::MutateBackup => {
                mutate(source)?;
                self.exec(tool, op, &backup_args, stdin)?
            }
            Op::Restore => {
                let target = self.dirs.restore.join(tool.name());
                fsutil::remove(&target)?;
                fs::create_dir_all(&target)?;
                let args = tool.program.restore_args(&target);
                let measured = self.exec(tool, op, &args, None)?;
                // A wrong restore gets no number: compare counts and bytes,
                // then every file's contents.
                let checked = fsutil::check_restored(source, &target);
                fsutil::remove(&target)?;
                checked?;
                measured
            }
            Op::Check => self.exec(tool, op, &["check".into(), "--read-data".into()], None)?,
            Op::Ls => self.exec(tool, op, &["ls".into(), "-l".into(), "latest".into()], None)?,
            Op::ForgetPrune => {
                if set == SetKind::Tree {
                    for _ in 0..2 {
                        mutate(source)?;
                        self.exec(tool, op, &backup_args, stdin)
                            .context("a backup before forget")?;
                    }
                }
                let args = ["forget", "--keep-last", "1", "--prune"].map(OsString::from);
                self.exec(tool, op, &args, None)?
            }
        };
        Ok(measured)
    }

    /// Runs a tool command; fails with the exit status and stderr tail.
    fn exec(
        &mut self,
        tool: &Contender,
        op: Op,
        args: &[OsString],
        stdin: Option<&Path>,
    ) -> Result<run::Measured> {
        let bin = tool.bin.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let log = self.dirs.logs.join(format!(
            "{}-{}.stderr",
            tool.name(),
            op.label().split(' ').next().unwrap_or("op")
        ));
        let spec = run::Spec {
            program: bin,
            args: args.to_vec(),
            env: tool.program.env(&self.dirs),
            stdin_file: stdin.map(Path::to_path_buf),
            stderr_log: log.clone(),
            timeout: self.timeout,
        };
        let (outcome, measured) =
            run::run(&spec).with_context(|| format!("could not run {}", bin.display()))?;
        if !outcome.success() {
            let tail = run::tail(&log, 12);
            let line = format!(
                "{} {}",
                tool.name(),
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            if self.reported.insert((tool.program, op)) {
                eprintln!(
                    "[bench]   FAILED: `{line}`: {}; stderr tail:",
                    outcome.describe()
                );
                for l in tail.lines() {
                    eprintln!("[bench]     | {l}");
                }
            }
            let last = tail.lines().last().unwrap_or("").to_string();
            bail!("`{line}` failed ({}): {last}", outcome.describe());
        }
        Ok(measured)
    }

    fn record_failure(
        &mut self,
        set: SetKind,
        op: Op,
        tool: &Contender,
        rep: usize,
        error: String,
    ) {
        eprintln!("[bench]   {:<6} {:<29} failed", tool.name(), op.label());
        self.samples.push(Sample {
            set: set.name(),
            op: op.label(),
            tool: tool.name(),
            rep,
            ok: false,
            wall_s: 0.0,
            user_s: 0.0,
            sys_s: 0.0,
            max_rss_kib: 0,
            repo_disk_bytes: None,
            repo_file_bytes: None,
            sent_bytes: None,
            recv_bytes: None,
            error: Some(error),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn rustic_gets_its_own_arguments_and_variables() {
        let src = Path::new("/data/tree");
        let target = Path::new("/restore/x");
        assert_eq!(
            words(&Program::Rustic.backup_args(src, true)),
            ["backup", "--force", "-", "--stdin-filename", "dump.sql"]
        );
        assert_eq!(
            words(&Program::Restic.backup_args(src, true)),
            ["backup", "--stdin", "--stdin-filename", "dump.sql"]
        );
        assert_eq!(
            words(&Program::Rustic.backup_args(src, false)),
            ["backup", "/data/tree"]
        );
        assert_eq!(
            words(&Program::Rustic.restore_args(target)),
            ["restore", "latest", "/restore/x"]
        );
        assert_eq!(
            words(&Program::Cairn.restore_args(target)),
            ["restore", "latest", "--target", "/restore/x"]
        );

        let dirs = Dirs::new(Path::new("/base"), super::super::Scale::Smoke);
        let env = Program::Rustic.env(&dirs);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(
            get("RUSTIC_REPOSITORY").as_deref(),
            Some("/base/repo/rustic")
        );
        assert!(get("RUSTIC_PASSWORD").is_some());
        assert_eq!(
            get("RUSTIC_CACHE_DIR").as_deref(),
            Some("/base/cache/rustic/tool")
        );
        assert_eq!(
            get("XDG_CONFIG_HOME").as_deref(),
            Some("/base/cache/rustic/config")
        );
        assert!(Program::Restic
            .env(&dirs)
            .iter()
            .all(|(k, _)| !k.starts_with("RUSTIC_")));
    }
}
