//! The `rclone:` backend: `rclone:remote:path` reaches every store rclone
//! knows (Azure, GCS, B2, Swift, WebDAV, ...) by starting
//! `rclone serve restic` on the repository and talking REST to it.
//!
//! How: rclone is started as a child on a random loopback port
//! (`--addr 127.0.0.1:0`), with a random user name and password that only
//! this process knows (passed in rclone's environment, `RCLONE_USER` and
//! `RCLONE_PASS`, not on the command line, where other local users could
//! read them). The child prints the address it listens on; from then on
//! this is a [`RestBackend`] on that address. (restic speaks HTTP/2 over
//! the child's pipes, `--stdio`; a loopback port gives the same result
//! with the HTTP client cairn already has.)
//!
//! The child lives as long as the backend: it is killed and reaped on drop,
//! it runs in its own process group (a Ctrl-C at the terminal reaches
//! cairn, which then stops it, not rclone directly in the middle of an
//! upload), and it gets SIGTERM from the kernel if cairn dies without
//! dropping it (`PR_SET_PDEATHSIG`, Linux).
//!
//! `-o rclone.program=PATH` replaces `rclone`; `-o rclone.args=...`
//! replaces the default arguments `serve restic --addr 127.0.0.1:0` (they
//! must still make rclone serve restic's REST protocol on a loopback
//! address and print where; the remote path is appended).

use crate::{RestBackend, RestOptions};
use cairn_backend::{
    split_words, Backend, BackendError, DataWriter, ErrorKind, FileInfo, FileKind, Hint, Result,
};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The arguments before the remote when `rclone.args` is not given.
pub const DEFAULT_ARGS: &str = "serve restic --addr 127.0.0.1:0";

/// How long rclone may take to reach its remote and start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of rclone's stderr kept for error messages.
const KEPT_LINES: usize = 20;

#[derive(Clone, Debug, Default)]
pub struct RcloneConfig {
    /// `remote:path` as rclone names it (a plain local path works too).
    pub remote: String,
    /// `-o rclone.program`; default `rclone`.
    pub program: Option<String>,
    /// `-o rclone.args`; default [`DEFAULT_ARGS`].
    pub args: Option<String>,
    /// For the REST client (CA, connections, timeouts); its credentials are
    /// replaced by the random ones.
    pub rest: RestOptions,
}

pub struct RcloneBackend {
    rest: RestBackend,
    child: Mutex<Child>,
    remote: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn random_hex() -> String {
    (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// In `... Serving restic REST API on http://127.0.0.1:PORT/`, the URL.
fn serving_url(line: &str) -> Option<&str> {
    let at = line.find("http://")?;
    let url = line[at..].split_whitespace().next()?;
    line.contains("Serving restic REST API").then_some(url)
}

impl RcloneBackend {
    /// Start rclone and wait until it serves; the error carries what
    /// rclone printed.
    pub fn start(cfg: RcloneConfig) -> Result<RcloneBackend> {
        let program = cfg.program.clone().unwrap_or_else(|| "rclone".into());
        let args = split_words(cfg.args.as_deref().unwrap_or(DEFAULT_ARGS))
            .map_err(|e| BackendError::new(ErrorKind::Permanent, format!("rclone.args: {e}")))?;
        let (user, pass) = (random_hex(), random_hex());
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .arg(&cfg.remote)
            .env("RCLONE_USER", &user)
            .env("RCLONE_PASS", &pass)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of the new
        // process; it is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let location = format!("rclone:{}", cfg.remote);
        let mut child = cmd.spawn().map_err(|e| {
            BackendError::new(
                ErrorKind::Permanent,
                format!("{location}: could not start {program:?}: {e} (is rclone installed? -o rclone.program=PATH names another)"),
            )
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = serving_url(&line) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(url.to_string());
                        }
                        continue;
                    }
                    if tx.is_none() && line.contains("ERROR") {
                        eprintln!("rclone: {line}");
                    }
                    let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
                    if k.len() == KEPT_LINES {
                        k.remove(0);
                    }
                    k.push(line);
                }
            });
        }
        let failed = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            // The reader thread has seen everything once the pipe closed.
            std::thread::sleep(Duration::from_millis(50));
            let said = kept.lock().unwrap_or_else(|p| p.into_inner()).join(" | ");
            BackendError::new(
                ErrorKind::Permanent,
                format!(
                    "{location}: {why}{}",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ),
            )
        };
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(failed(
                    &mut child,
                    format!("rclone exited before serving ({status})"),
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(failed(
                    &mut child,
                    format!(
                        "rclone did not start serving within {} s",
                        START_TIMEOUT.as_secs()
                    ),
                ))
            }
        };
        let mut rest_opts = cfg.rest.clone();
        rest_opts.username = Some(user);
        rest_opts.password = Some(pass);
        rest_opts.label = Some(location.clone());
        let rest = match RestBackend::new(&url, rest_opts) {
            Ok(r) => r,
            Err(e) => return Err(failed(&mut child, e.message)),
        };
        Ok(RcloneBackend {
            rest,
            child: Mutex::new(child),
            remote: cfg.remote,
            stderr: kept,
        })
    }

    /// The rclone child's process id (tests check it is gone after drop).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).id()
    }

    /// A failure, with what rclone last said when it has exited.
    fn explain(&self, mut e: BackendError) -> BackendError {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(Some(status)) = child.try_wait() {
            let said = self
                .stderr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .join(" | ");
            e.message = format!("{} (rclone exited, {status}: {said})", e.message);
            e.kind = ErrorKind::Permanent;
        }
        e
    }
}

impl Drop for RcloneBackend {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Backend for RcloneBackend {
    fn location(&self) -> String {
        format!("rclone:{}", self.remote)
    }

    fn create(&self) -> Result<()> {
        self.rest.create().map_err(|e| self.explain(e))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.rest.list(kind).map_err(|e| self.explain(e))
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.rest.stat(kind, name).map_err(|e| self.explain(e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        self.rest
            .read_range(kind, name, offset, length)
            .map_err(|e| self.explain(e))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.rest
            .write(kind, name, data)
            .map_err(|e| self.explain(e))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.rest.remove(kind, name).map_err(|e| self.explain(e))
    }

    fn write_concurrency(&self) -> usize {
        self.rest.write_concurrency()
    }

    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        self.rest.data_writer()
    }

    fn hint(&self, hint: &Hint<'_>) {
        self.rest.hint(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::serving_url;

    #[test]
    fn finds_the_address_rclone_serves_on() {
        let line = "2026/11/30 14:56:01 NOTICE: Local file system at /tmp/r: Serving restic REST API on http://127.0.0.1:35541/";
        assert_eq!(serving_url(line), Some("http://127.0.0.1:35541/"));
        assert_eq!(serving_url("NOTICE: Config file not found"), None);
    }
}
