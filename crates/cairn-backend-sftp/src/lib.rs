//! The `sftp:` backend: a repository in a directory of an SFTP server,
//! reached through the user's own `ssh` program, so `~/.ssh/config`,
//! agents, ProxyJump and known_hosts all apply as they do for `ssh`.
//!
//! - Transport: `ssh [-p PORT] [-l USER] [ARGS...] HOST -s sftp` (or the
//!   user's whole `sftp.command`) as a child process, SFTP version 3 over
//!   its stdin and stdout, as restic does. The client is our own
//!   (`protocol`, `conn`, `ops`): requests carry ids and many are in flight at
//!   once, from many threads, over the one session.
//! - Layout: identical to the local backend: `config`, `keys/`, `locks/`,
//!   `snapshots/`, `index/`, `data/xx/` sharded by the first two hex
//!   characters of the name. [`Backend::create`] makes every directory,
//!   `data/00` to `data/ff` included (idempotent).
//! - Writes: to a temporary `.tmp-<name>-<random>` in the destination
//!   directory (streamed packs: `data/.tmp-pack-<random>`), the local
//!   backend's convention, so listings skip them and
//!   [`Backend::remove_stale_temporaries`] finds them by their mtime. The
//!   file is opened with `EXCL`, written with pipelined WRITEs, fsynced
//!   with `fsync@openssh.com` when the server offers it, closed, and
//!   renamed to its final name with plain SSH_FXP_RENAME, which never
//!   replaces an existing file (SFTP v3; OpenSSH links and unlinks): a
//!   name already there gives `AlreadyExists` and the temporary is
//!   removed. SFTP cannot fsync a directory, so the durability of the
//!   rename itself is the server file system's (as with restic).
//! - Errors: missing → `NotFound` (SSH_FX_NO_SUCH_FILE), refused →
//!   `Denied`; ssh that cannot connect fails at once with ssh's own words
//!   (`sftp: ssh root@host -p 2222: connect to host ...: Connection
//!   refused`), `Transient` when worth retrying, `Denied` for refused
//!   credentials. A session whose ssh died fails its requests with
//!   `Transient`, and the next call starts a new ssh, so
//!   [`cairn_backend::RetryBackend`] rides over a restarted server; a pack
//!   being streamed when the session died is written again whole, from
//!   the retry wrapper's local spool, into a new temporary (the broken
//!   one stays on the server until prune's `remove_stale_temporaries`).
//! - Prompts: when cairn is the foreground job of a terminal, ssh gets the
//!   terminal for the handshake and may ask for a password or passphrase
//!   (as with restic); otherwise it runs with `-o BatchMode=yes` (placed
//!   after `sftp.args`, so an explicit `BatchMode=no` there wins) and fails
//!   at once instead of asking. A user's own `sftp.command` is run exactly
//!   as written. ssh runs in its own process group either way, so Ctrl-C
//!   reaches cairn alone once the session is up (see `conn`).
//! - Concurrency: one session; `connections` (default 5) is
//!   [`Backend::write_concurrency`]; each transfer keeps about 4 MiB of
//!   READs or WRITEs in flight, in chunks of the server's stated maximum
//!   (`limits@openssh.com`; 255 KiB with OpenSSH) or 32 KiB.
//!
//! Measured (100 MiB object over loopback, OpenSSH 9.2, 2 busy cores at a
//! load average of 10): upload 35-42 MiB/s, download 37-52 MiB/s, against
//! 28-29 MiB/s and 27-40 MiB/s for OpenSSH's own `sftp` put/get at the same
//! moment; the client itself spends 0.1 CPU-s per 100 MiB up and 0.3 down:
//! the ciphers in ssh and sshd are the limit.

mod command;
mod conn;
mod ops;
mod protocol;

pub use conn::DEFAULT_CONNECT_TIMEOUT;

use cairn_backend::{
    valid_name, Backend, BackendError, DataWriter, ErrorKind, FileInfo, FileKind, Result,
};
use conn::Conn;
use ops::{OpError, Upload};
use protocol::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the repository is and how to reach it (from `sftp:user@host:/path`,
/// `sftp://user@host:port/path` and the `-o sftp.*` options).
#[derive(Clone, Debug, Default)]
pub struct SftpConfig {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Directory of the repository on the server (absolute, or relative to
    /// the login directory; a leading `~/` means the login directory too).
    pub path: String,
    /// `-o sftp.command`: replaces the whole ssh command line (split like a
    /// shell would, quotes honoured); when set, user/host/port/args are not
    /// used to build it.
    pub command: Option<String>,
    /// `-o sftp.args`: extra arguments for ssh, inserted before the host
    /// (split like a shell would).
    pub args: Option<String>,
    /// How many uploads run at once (default 5 when 0).
    pub connections: usize,
    /// How long to wait for the SFTP handshake when ssh cannot ask the user
    /// anything (no terminal): `None` is [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
}

/// A repository on an SFTP server. One ssh session, shared by all threads,
/// started again on the first call after it died.
pub struct SftpBackend {
    cfg: SftpConfig,
    /// The repository directory as sent to the server ("" is the login directory).
    root: String,
    location: String,
    session: Mutex<Option<Arc<Conn>>>,
}

impl SftpBackend {
    /// Start ssh and the SFTP session; fails with ssh's own message when it
    /// cannot connect.
    pub fn open(cfg: SftpConfig) -> Result<SftpBackend> {
        let root = server_root(&cfg.path);
        let location = location(&cfg);
        let conn = Conn::connect(&cfg)?;
        Ok(SftpBackend {
            cfg,
            root,
            location,
            session: Mutex::new(Some(Arc::new(conn))),
        })
    }

    /// The live session, or a new one if the last one died.
    fn conn(&self) -> Result<Arc<Conn>> {
        let mut g = self.session.lock().unwrap();
        if let Some(c) = g.as_ref().filter(|c| c.alive()) {
            return Ok(c.clone());
        }
        // Reap the dead session's ssh before starting another.
        *g = None;
        let c = Arc::new(Conn::connect(&self.cfg)?);
        *g = Some(c.clone());
        Ok(c)
    }

    /// A path below the repository directory.
    fn path(&self, rel: &str) -> String {
        join(&self.root, rel)
    }

    /// The directory of a file, relative to the repository.
    fn rel_dir(kind: FileKind, name: &str) -> String {
        match kind {
            FileKind::Config => String::new(),
            FileKind::Data => format!("data/{}", &name[..2]),
            k => k.dir().to_string(),
        }
    }

    fn checked(&self, kind: FileKind, name: &str) -> Result<(String, String)> {
        if !valid_name(kind, name) {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("invalid {kind} file name {name:?}"),
            ));
        }
        let dir = Self::rel_dir(kind, name);
        let file = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        Ok((dir, file))
    }

    /// `verb` and the object, for messages: `reading sftp:host:/repo/keys/…`.
    fn what(&self, verb: &str, rel: &str) -> String {
        if rel.is_empty() {
            format!("{verb} {}", self.location)
        } else {
            format!("{verb} {}/{rel}", self.location.trim_end_matches('/'))
        }
    }

    /// Create `rel` (below the repository) and its missing parents; an
    /// existing directory is fine.
    fn mkdir_all(&self, c: &Conn, path: &str) -> Result<()> {
        let what = || self.what("creating", "");
        match ops::stat(c, path) {
            Ok(a) if a.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(BackendError::new(
                    ErrorKind::Permanent,
                    format!("{}: {path} exists and is not a directory", what()),
                ))
            }
            Err(OpError::Status(s)) if s.code == FX_NO_SUCH_FILE => {}
            Err(e) => return Err(e.context(&what())),
        }
        if let Some((parent, _)) = path.trim_end_matches('/').rsplit_once('/') {
            if !parent.is_empty() {
                self.mkdir_all(c, parent)?;
            }
        }
        mkdir_result(c, path, ops::send_mkdir(c, path)).map_err(|e| e.context(&what()))
    }
}

/// A MKDIR's outcome, where a directory already there is success.
fn mkdir_result(c: &Conn, path: &str, sent: Result<conn::Ticket>) -> ops::OpResult<()> {
    match ops::done(sent?) {
        Ok(()) => Ok(()),
        Err(OpError::Status(s)) => match ops::stat(c, path) {
            Ok(a) if a.is_dir() => Ok(()),
            _ => Err(OpError::Status(s)),
        },
        Err(e) => Err(e),
    }
}

/// The repository directory as the server should see it.
fn server_root(path: &str) -> String {
    let p = match path {
        "~" => "",
        p => p.strip_prefix("~/").unwrap_or(p),
    };
    if p.chars().all(|c| c == '/') && p.starts_with('/') {
        return "/".into();
    }
    p.trim_end_matches('/').to_string()
}

fn join(root: &str, rel: &str) -> String {
    match (root, rel) {
        ("", r) => r.to_string(),
        (root, "") => root.to_string(),
        ("/", r) => format!("/{r}"),
        (root, r) => format!("{root}/{r}"),
    }
}

/// `sftp:user@host:/path`, or `sftp://user@host:port//path` with a port
/// (restic's forms), or `sftp:` and the path with a command of one's own.
fn location(cfg: &SftpConfig) -> String {
    let user = cfg
        .user
        .as_ref()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    match (&cfg.command, cfg.port) {
        (Some(_), _) if cfg.host.is_empty() => format!("sftp:{}", cfg.path),
        (_, Some(port)) => format!("sftp://{user}{}:{port}/{}", cfg.host, cfg.path),
        _ => format!("sftp:{user}{}:{}", cfg.host, cfg.path),
    }
}

fn temp_name(stem: &str) -> String {
    format!(".tmp-{stem}-{:016x}", rand::random::<u64>())
}

/// Write `tmp` and rename it to `target` (both full server paths):
/// open exclusively, pipelined WRITEs, fsync, close, rename without replacing.
fn store(c: &Conn, tmp: &str, target: &str, data: &[u8]) -> ops::OpResult<()> {
    let handle = ops::open(c, tmp, FXF_WRITE | FXF_CREAT | FXF_EXCL | FXF_TRUNC)?;
    let mut up = Upload::new(c, handle);
    let written = up.write(c, data).and_then(|()| up.drain());
    finish(c, up, written, tmp, target)
}

/// The end of every upload: fsync, close and rename into place, or on any
/// failure close and remove the temporary. Renaming onto an existing file
/// fails with `AlreadyExists` (as a Session error with that kind).
fn finish(
    c: &Conn,
    up: Upload,
    written: ops::OpResult<()>,
    tmp: &str,
    target: &str,
) -> ops::OpResult<()> {
    let synced = written.and_then(|()| {
        if c.has_fsync {
            ops::fsync(c, up.handle())
        } else {
            Ok(())
        }
    });
    let closed = ops::close(c, up.handle());
    let result = synced
        .and(closed)
        .and_then(|()| match ops::rename(c, tmp, target) {
            Ok(()) => Ok(()),
            Err(OpError::Status(s)) => match ops::lstat(c, target) {
                Ok(_) => Err(OpError::Session(BackendError::new(
                    ErrorKind::AlreadyExists,
                    "a file of that name already exists",
                ))),
                Err(_) => Err(OpError::Status(s)),
            },
            Err(e) => Err(e),
        });
    if result.is_err() {
        let _ = ops::remove(c, tmp);
    }
    result
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self) -> Result<()> {
        let c = self.conn()?;
        if !self.root.is_empty() {
            self.mkdir_all(&c, &self.root)?;
        }
        let mut dirs: Vec<String> = [
            FileKind::Key,
            FileKind::Lock,
            FileKind::Snapshot,
            FileKind::Index,
            FileKind::Data,
        ]
        .iter()
        .map(|k| k.dir().to_string())
        .collect();
        dirs.extend((0..=255u8).map(|i| format!("data/{i:02x}")));
        // `data` first, then its 256 shards with their MKDIRs in flight together.
        for d in &dirs[..5] {
            let p = self.path(d);
            mkdir_result(&c, &p, ops::send_mkdir(&c, &p))
                .map_err(|e| e.context(&self.what("creating", d)))?;
        }
        for group in dirs[5..].chunks(64) {
            let sent: Vec<_> = group
                .iter()
                .map(|d| (d, ops::send_mkdir(&c, &self.path(d))))
                .collect();
            for (d, t) in sent {
                mkdir_result(&c, &self.path(d), t)
                    .map_err(|e| e.context(&self.what("creating", d)))?;
            }
        }
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let c = self.conn()?;
        let dirs = match kind {
            FileKind::Config => {
                return match self.stat(kind, "config") {
                    Ok(size) => Ok(vec![FileInfo {
                        name: "config".into(),
                        size,
                    }]),
                    Err(e) if e.is_not_found() => Ok(vec![]),
                    Err(e) => Err(e),
                }
            }
            FileKind::Data => ops::read_dir(&c, &self.path("data"))
                .map_err(|e| e.context(&self.what("listing", "data")))?
                .into_iter()
                .filter(|(n, a)| n.len() == 2 && !n.starts_with('.') && !a.is_file())
                .map(|(n, _)| format!("data/{n}"))
                .collect(),
            k => vec![k.dir().to_string()],
        };
        // Shards are listed by several threads at once over the one session.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let found = Mutex::new(Vec::new());
        let threads = dirs.len().min(16);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(d) = dirs.get(i) else { return Ok(()) };
                            let entries = ops::read_dir(&c, &self.path(d))
                                .map_err(|e| e.context(&self.what("listing", d)))?;
                            let mut mine: Vec<FileInfo> = entries
                                .into_iter()
                                .filter(|(n, a)| valid_name(kind, n) && a.is_file())
                                .map(|(name, a)| FileInfo {
                                    name,
                                    size: a.size.unwrap_or(0),
                                })
                                .collect();
                            found.lock().unwrap().append(&mut mine);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("a listing thread panicked"))
        })?;
        Ok(found.into_inner().unwrap())
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        let (_, rel) = self.checked(kind, name)?;
        let c = self.conn()?;
        let a =
            ops::stat(&c, &self.path(&rel)).map_err(|e| e.context(&self.what("reading", &rel)))?;
        a.size.ok_or_else(|| {
            BackendError::new(
                ErrorKind::Permanent,
                format!("{}: the server gave no size", self.what("reading", &rel)),
            )
        })
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        let (_, rel) = self.checked(kind, name)?;
        let what = self.what("reading", &rel);
        let c = self.conn()?;
        let path = self.path(&rel);
        let (handle, size) = ops::open_sized(&c, &path).map_err(|e| e.context(&what))?;
        let result = (|| {
            let len = length.unwrap_or(size.saturating_sub(offset));
            if offset.checked_add(len).is_none_or(|end| end > size) {
                return Err(BackendError::new(
                    ErrorKind::Permanent,
                    format!("{what}: range {offset}+{len} is beyond the end of the file ({size} bytes; truncated?)"),
                ));
            }
            ops::read_at(&c, &handle, offset, len).map_err(|e| e.context(&what))
        })();
        let closed = ops::close(&c, &handle);
        let data = result?;
        closed.map_err(|e| e.context(&what))?;
        Ok(data)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let (dir, rel) = self.checked(kind, name)?;
        let what = self.what("writing", &rel);
        let c = self.conn()?;
        let tmp = self.path(&join(&dir, &temp_name(name)));
        match store(&c, &tmp, &self.path(&rel), data) {
            Ok(()) => Ok(()),
            Err(OpError::Status(s)) if s.code == FX_NO_SUCH_FILE => Err(BackendError::new(
                ErrorKind::NotFound,
                format!("{what}: the repository directory is missing"),
            )),
            Err(e) => Err(e.context(&what)),
        }
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let (_, rel) = self.checked(kind, name)?;
        let c = self.conn()?;
        match ops::remove(&c, &self.path(&rel)) {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(FX_NO_SUCH_FILE) => Ok(()),
            Err(e) => Err(e.context(&self.what("removing", &rel))),
        }
    }

    fn write_concurrency(&self) -> usize {
        match self.cfg.connections {
            0 => 5,
            n => n,
        }
    }

    fn data_writer(&self) -> Result<Option<Box<dyn DataWriter>>> {
        let c = self.conn()?;
        let rel = format!("data/{}", temp_name("pack"));
        let tmp = self.path(&rel);
        let handle = ops::open(&c, &tmp, FXF_WRITE | FXF_CREAT | FXF_EXCL | FXF_TRUNC)
            .map_err(|e| e.context(&self.what("creating", &rel)))?;
        let up = Upload::new(&c, handle);
        Ok(Some(Box::new(SftpDataWriter {
            buf: Vec::with_capacity(c.write_chunk as usize),
            conn: c,
            up: Some(up),
            failed: None,
            tmp,
            root: self.root.clone(),
            location: self.location.clone(),
        })))
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        let c = self.conn()?;
        let mut dirs: Vec<String> = vec![String::new(), "data".into()];
        dirs.extend(
            [
                FileKind::Key,
                FileKind::Lock,
                FileKind::Snapshot,
                FileKind::Index,
            ]
            .iter()
            .map(|k| k.dir().to_string()),
        );
        if let Ok(entries) = ops::read_dir(&c, &self.path("data")) {
            dirs.extend(
                entries
                    .into_iter()
                    .filter(|(n, a)| a.is_dir() && !n.starts_with('.'))
                    .map(|(n, _)| format!("data/{n}")),
            );
        }
        // The server's clock sets the mtimes; ours judges their age.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut removed = 0;
        for d in dirs {
            let Ok(entries) = ops::read_dir(&c, &self.path(&d)) else {
                continue;
            };
            for (name, a) in entries {
                if !name.starts_with(".tmp-") || !a.is_file() {
                    continue;
                }
                let stale = a
                    .mtime
                    .is_some_and(|m| now.saturating_sub(m as u64) >= older_than.as_secs());
                if stale && ops::remove(&c, &self.path(&join(&d, &name))).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A pack streamed to `data/.tmp-pack-<random>`, renamed into
/// `data/xx/<name>` on commit; removed if dropped uncommitted.
struct SftpDataWriter {
    conn: Arc<Conn>,
    /// Bytes not yet sent: WRITEs go out in whole chunks.
    buf: Vec<u8>,
    up: Option<Upload>,
    /// The first failure, reported by every later call.
    failed: Option<(ErrorKind, String)>,
    tmp: String,
    root: String,
    location: String,
}

impl SftpDataWriter {
    fn what(&self) -> String {
        format!(
            "writing {}/data (pack in progress)",
            self.location.trim_end_matches('/')
        )
    }

    fn fail(&mut self, e: OpError) -> BackendError {
        let e = e.context(&self.what());
        self.failed = Some((e.kind, e.message.clone()));
        e
    }
}

impl DataWriter for SftpDataWriter {
    fn write_all(&mut self, data: &[u8]) -> Result<()> {
        if let Some((kind, m)) = &self.failed {
            return Err(BackendError::new(*kind, m.clone()));
        }
        let chunk = self.conn.write_chunk as usize;
        let mut data = data;
        if !self.buf.is_empty() {
            let take = (chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < chunk {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            let up = self.up.as_mut().expect("not committed");
            if let Err(e) = up.write(&self.conn, &buf) {
                return Err(self.fail(e));
            }
            self.buf = buf;
            self.buf.clear();
        }
        let whole = data.len() - data.len() % chunk;
        let up = self.up.as_mut().expect("not committed");
        if let Err(e) = up.write(&self.conn, &data[..whole]) {
            return Err(self.fail(e));
        }
        self.buf.extend_from_slice(&data[whole..]);
        Ok(())
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        if let Some((kind, m)) = &self.failed {
            return Err(BackendError::new(*kind, m.clone()));
        }
        if !valid_name(FileKind::Data, name) {
            return Err(BackendError::new(
                ErrorKind::Permanent,
                format!("invalid data file name {name:?}"),
            ));
        }
        let rel = format!("data/{}/{name}", &name[..2]);
        let target = join(&self.root, &rel);
        let what = format!("writing {}/{rel}", self.location.trim_end_matches('/'));
        let mut up = self.up.take().expect("committed once");
        let buf = std::mem::take(&mut self.buf);
        let written = up.write(&self.conn, &buf).and_then(|()| up.drain());
        let tmp = std::mem::take(&mut self.tmp);
        finish(&self.conn, up, written, &tmp, &target).map_err(|e| e.context(&what))
    }
}

impl Drop for SftpDataWriter {
    fn drop(&mut self) {
        if let Some(mut up) = self.up.take() {
            let _ = up.drain();
            let _ = ops::close(&self.conn, up.handle());
            let _ = ops::remove(&self.conn, &self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_on_the_server() {
        assert_eq!(server_root("/srv/repo/"), "/srv/repo");
        assert_eq!(server_root("repo"), "repo");
        assert_eq!(server_root("~/repo"), "repo");
        assert_eq!(server_root("~"), "");
        assert_eq!(server_root(""), "");
        assert_eq!(server_root("/"), "/");
        assert_eq!(join("/", "keys"), "/keys");
        assert_eq!(join("", "keys"), "keys");
        assert_eq!(join("/srv/r", "data/ab"), "/srv/r/data/ab");
        assert_eq!(join("/srv/r", ""), "/srv/r");
    }

    #[test]
    fn locations_name_the_server() {
        let mut cfg = SftpConfig {
            user: Some("u".into()),
            host: "nas".into(),
            path: "/srv/repo".into(),
            ..Default::default()
        };
        assert_eq!(location(&cfg), "sftp:u@nas:/srv/repo");
        cfg.port = Some(2222);
        assert_eq!(location(&cfg), "sftp://u@nas:2222//srv/repo");
    }
}
