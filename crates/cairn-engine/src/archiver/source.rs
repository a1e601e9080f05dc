//! What a backup reads: paths, a stream, or the output of a command.
//!
//! A [`Source`] is validated when it is made, before any repository is
//! opened: paths are made absolute and cleaned lexically once (here, and
//! nowhere else), and each must exist; a stream's file name must be a
//! plain name. The paths a snapshot records, and which the choice of its
//! parent compares, come from [`Source::snapshot_paths`].
//!
//! A command's child process lives in [`Child`]: started by the backup,
//! its exit status checked before a snapshot is written (a failed command
//! leaves no snapshot), and killed if the backup ends early. Its failures
//! are the source's: [`Kind::Io`].

use crate::{Error, Kind, Result};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// What to back up. Made with [`Source::paths`], [`Source::stream`] or
/// [`Source::command`].
pub struct Source(pub(super) Input);

pub(super) enum Input {
    /// Absolute, cleaned, sorted, without duplicates; each existed.
    Paths(Vec<PathBuf>),
    /// A stream stored as one file `/<name>` (e.g. a database dump).
    Stream {
        name: String,
        reader: Box<dyn Read + Send>,
    },
    /// What `argv` prints on its standard output, stored as `/<name>`.
    Command { name: String, argv: Vec<String> },
}

impl Source {
    /// Files and directories. Each is made absolute (see [`absolute`]) and
    /// must exist (a symlink itself counts); the list is sorted and
    /// duplicates dropped.
    pub fn paths(paths: &[PathBuf]) -> Result<Source> {
        if paths.is_empty() {
            return Err(Error::invalid("nothing to back up: no paths given"));
        }
        let mut abs = Vec::with_capacity(paths.len());
        for p in paths {
            let a = absolute(p)?;
            if let Err(e) = a.symlink_metadata() {
                return Err(Error::io(e, format!("backup path {}", p.display())));
            }
            abs.push(a);
        }
        abs.sort();
        abs.dedup();
        Ok(Source(Input::Paths(abs)))
    }

    /// A stream, stored as the single file `/<name>`.
    pub fn stream(name: &str, reader: Box<dyn Read + Send>) -> Result<Source> {
        Ok(Source(Input::Stream {
            name: file_name(name)?,
            reader,
        }))
    }

    /// The standard output of `argv` (program and arguments), stored as
    /// the single file `/<name>`. The command runs during the backup; if it
    /// cannot start or exits unsuccessfully, no snapshot is written.
    pub fn command(name: &str, argv: Vec<String>) -> Result<Source> {
        if argv.is_empty() {
            return Err(Error::invalid("no command given to back up the output of"));
        }
        Ok(Source(Input::Command {
            name: file_name(name)?,
            argv,
        }))
    }

    /// The paths the snapshot will record (sorted).
    pub fn snapshot_paths(&self) -> Vec<String> {
        match &self.0 {
            Input::Paths(p) => p.iter().map(|p| p.display().to_string()).collect(),
            Input::Stream { name, .. } | Input::Command { name, .. } => vec![format!("/{name}")],
        }
    }
}

fn file_name(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::invalid(format!(
            "invalid --stdin-filename {name:?}: a file name without '/' is needed"
        )));
    }
    Ok(name.to_string())
}

/// Clean an absolute path lexically (`.`, `..`, duplicate slashes), without
/// resolving symlinks, as restic does.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(e, "reading the current directory"))?
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// A running `--stdin-from-command` child. Dropping it before
/// [`Child::finish`] kills it, so a failed or interrupted backup leaves no
/// process behind.
pub(super) struct Child {
    child: Option<std::process::Child>,
    /// The command line, for messages.
    line: String,
}

impl Child {
    /// Start `argv` with its standard output piped to the returned reader
    /// (standard input and error are inherited).
    pub(super) fn start(argv: &[String]) -> Result<(Child, Box<dyn Read + Send>)> {
        let mut c = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(e, format!("starting {:?}", argv[0])))?;
        let out = c.stdout.take().expect("stdout is piped");
        let child = Child {
            child: Some(c),
            line: argv.join(" "),
        };
        Ok((child, Box::new(out)))
    }

    /// Wait for the command; an error unless it succeeded.
    pub(super) fn finish(mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let cmd = &self.line;
        let status = c
            .wait()
            .map_err(|e| Error::io(e, format!("waiting for `{cmd}`")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(
                Kind::Io,
                format!("`{cmd}` failed ({status}); no snapshot was saved"),
            ))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
