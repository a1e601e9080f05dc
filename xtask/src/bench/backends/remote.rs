//! A server to back up to, behind its counting proxy, and how each tool
//! names a repository on it.
//!
//! | kind | server | cairn and restic reach repository NAME as |
//! |---|---|---|
//! | `rest:` | `cairn serve` | `rest:http://127.0.0.1:PROXY/NAME/` |
//! | `sftp:` | OpenSSH sshd, internal-sftp | `sftp://USER@127.0.0.1:PROXY//DIR/NAME`; cairn with `-o sftp.args=SSH-OPTIONS`, restic 0.14 (which has no `sftp.args`) with `-o sftp.command='ssh -p PROXY SSH-OPTIONS USER@127.0.0.1 -s sftp'` |
//! | `s3:` | s3s-fs | `s3:http://127.0.0.1:PROXY/bench/NAME` with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` |
//!
//! Every server keeps its repositories as plain files on the local disk
//! (under the bench directory), so the harness measures a repository's size
//! and lists its files there, and removes a repository by removing its
//! directory. Dropping a [`Remote`] closes the proxy, then kills the server.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::proxy::{Proxy, Traffic};
use crate::bench::sequence::ToolKind;
use crate::bench::servers::{self, S3s, ServerProcess, Sshd};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Rest,
    Sftp,
    S3,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Rest, Kind::Sftp, Kind::S3];

    /// The location scheme, as the table shows it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rest => "rest:",
            Kind::Sftp => "sftp:",
            Kind::S3 => "s3:",
        }
    }
}

/// The bucket every S3 repository lives in, one prefix each.
const BUCKET: &str = "bench";

/// What a tool needs to reach one repository: global arguments and
/// environment.
pub struct Access {
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
}

pub struct Remote {
    pub kind: Kind,
    /// The server program, for the report.
    pub server: String,
    /// Declared before the server: dropped (connections shut) first.
    proxy: Proxy,
    /// Held for its `Drop`, which kills the server.
    _process: ServerProcess,
    /// Repository NAME is `storage/NAME` on the local disk.
    storage: PathBuf,
    /// For sftp: the user, and the ssh options that log in.
    ssh: Option<(String, Vec<String>)>,
}

impl Remote {
    /// Starts the server of `kind` with its files under `dir`, and its proxy.
    /// `program` is the server binary (cairn for `rest:`, sshd, s3s-fs).
    pub fn start(kind: Kind, program: &Path, dir: &Path) -> Result<Remote> {
        std::fs::create_dir_all(dir)?;
        let (server, process, storage, ssh) = match kind {
            Kind::Rest => {
                let root = dir.join("root");
                let p = servers::cairn_serve(program, &root, &dir.join("server.log"))?;
                ("cairn serve".to_string(), p, root, None)
            }
            Kind::Sftp => {
                let sshd = Sshd::start(program, &dir.join("sshd"))?;
                let options = sshd.ssh_options();
                let root = dir.join("root");
                std::fs::create_dir_all(&root)?;
                let Sshd { server, user, .. } = sshd;
                (
                    "OpenSSH sshd (internal-sftp)".to_string(),
                    server,
                    root,
                    Some((user, options)),
                )
            }
            Kind::S3 => {
                let data = dir.join("data");
                let s3 = S3s::start(program, &data, &[BUCKET], &dir.join("server.log"))?;
                ("s3s-fs".to_string(), s3.server, data.join(BUCKET), None)
            }
        };
        let proxy = Proxy::start(process.addr())?;
        Ok(Remote {
            kind,
            server,
            proxy,
            _process: process,
            storage,
            ssh,
        })
    }

    /// Where repository `name` lives on the local disk.
    pub fn repo_dir(&self, name: &str) -> PathBuf {
        self.storage.join(name)
    }

    /// How `tool` reaches repository `name`, through the proxy.
    pub fn access(&self, tool: ToolKind, name: &str) -> Access {
        let port = self.proxy.port();
        let mut args: Vec<OsString> = Vec::new();
        let mut env: Vec<(&'static str, OsString)> = Vec::new();
        let location = match self.kind {
            Kind::Rest => format!("rest:http://127.0.0.1:{port}/{name}/"),
            Kind::Sftp => {
                let (user, options) = self.ssh.as_ref().expect("an sftp remote has ssh");
                match tool {
                    ToolKind::Cairn => {
                        args.push("-o".into());
                        args.push(format!("sftp.args={}", shell_join(options)).into());
                    }
                    ToolKind::Restic => {
                        let mut words = vec!["ssh".to_string(), "-p".into(), port.to_string()];
                        words.extend(options.iter().cloned());
                        words.extend([format!("{user}@127.0.0.1"), "-s".into(), "sftp".into()]);
                        args.push("-o".into());
                        args.push(format!("sftp.command={}", shell_join(&words)).into());
                    }
                }
                // The path is absolute: `//` after the port.
                format!(
                    "sftp://{user}@127.0.0.1:{port}/{}",
                    self.repo_dir(name).display()
                )
            }
            Kind::S3 => {
                env.push(("AWS_ACCESS_KEY_ID", servers::S3_ACCESS_KEY.into()));
                env.push(("AWS_SECRET_ACCESS_KEY", servers::S3_SECRET_KEY.into()));
                format!("s3:http://127.0.0.1:{port}/{BUCKET}/{name}")
            }
        };
        let mut all: Vec<OsString> = vec!["-r".into(), location.into()];
        all.extend(args);
        Access { args: all, env }
    }

    /// Runs `f` and returns its result with the bytes that crossed the
    /// proxy meanwhile. Waits for every connection to close before and
    /// after, so the count holds all of the command's bytes and no other's.
    pub fn count<T>(&self, f: impl FnOnce() -> T) -> (T, Traffic) {
        if !self.proxy.wait_idle(Duration::from_secs(30)) {
            eprintln!(
                "[bench]   warning: connections to the {} server are still open before the command",
                self.kind.name()
            );
        }
        let before = self.proxy.traffic();
        let out = f();
        if !self.proxy.wait_idle(Duration::from_secs(30)) {
            eprintln!(
                "[bench]   warning: connections to the {} server still open 30 s after the command; its byte counts may be short",
                self.kind.name()
            );
        }
        (out, self.proxy.traffic().since(before))
    }
}

/// Words joined into one shell line, each single-quoted where needed.
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:@,+".contains(&b));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        let words = ["ssh", "-i", "/a b/key", "it's", ""].map(String::from);
        assert_eq!(shell_join(&words), r"ssh -i '/a b/key' 'it'\''s' ''");
    }
}
