//! One SFTP session over one `ssh` child process, shared by many threads.
//!
//! Requests carry ids; any thread may send one at any time (a packet is
//! written whole under the stdin lock) and then wait for its reply, which a
//! reader thread takes from ssh's stdout and hands to the waiting caller by
//! id. So many requests are in flight at once: a transfer pipelines its
//! READs or WRITEs instead of paying a round trip per chunk, and parallel
//! uploads share the one connection. The reader never blocks on a caller
//! (each reply has a slot waiting for it), so a caller blocked writing a
//! large packet can always make progress.
//!
//! ssh's stderr is read by a thread into a bounded buffer; its last lines go
//! into the error of a failed connection attempt or a lost connection.
//!
//! When ssh exits or the stream breaks, the session is dead: every waiting
//! and later request fails with `Transient` (ssh's last words in the
//! message) and the backend starts a new session on its next call.
//!
//! Terminal: ssh runs in its own process group, so a Ctrl-C at the terminal
//! reaches cairn alone (which may still need the session to remove its
//! lock). When cairn is the foreground job of a terminal, that terminal is
//! handed to ssh for the handshake only, so it can ask for a password or a
//! passphrase or confirm a host key, as with restic; otherwise ssh runs
//! with `BatchMode=yes` and fails at once instead of asking, and a
//! handshake that gets no answer is abandoned after the connect timeout.
//!
//! Not covered: a server that stops answering while the connection stays
//! up (a network path silently gone) leaves requests waiting until ssh
//! notices, which its keepalives do (`ServerAliveInterval` in
//! `~/.ssh/config` or `-o sftp.args`); cairn adds no timeout of its own,
//! as a long fsync or a slow disk on the server is not a failure.

use crate::command::{classify_stderr, ssh_command, stderr_summary};
use crate::protocol::*;
use crate::SftpConfig;
use cairn_backend::{BackendError, ErrorKind, Result};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How much of ssh's stderr is kept (the end of it).
const STDERR_KEEP: usize = 16 * 1024;
/// Data bytes per READ or WRITE when the server does not state its limits:
/// the size every server must accept.
const DEFAULT_CHUNK: u32 = 32 * 1024;
/// The most per request even when the server allows more (OpenSSH: 255 KiB).
const MAX_CHUNK: u32 = 255 * 1024;
/// Used when the configuration gives no connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A decoded reply.
#[derive(Debug)]
pub enum Reply {
    Status(Status),
    Handle(Vec<u8>),
    Data(Vec<u8>),
    Name(Vec<(String, Attrs)>),
    Attrs(Attrs),
    Extended(Vec<u8>),
}

/// What went wrong with the session, for every request it fails.
#[derive(Clone)]
struct Death {
    kind: ErrorKind,
    message: String,
}

struct State {
    pending: HashMap<u32, SyncSender<Result<Reply>>>,
    dead: Option<Death>,
}

/// ssh's stderr, kept by its reader thread.
struct StderrBuf {
    inner: Mutex<(Vec<u8>, bool)>,
    done: Condvar,
}

impl StderrBuf {
    /// The text so far, after waiting up to `wait` for ssh to close stderr
    /// (it does when it exits, having written its last words).
    fn text(&self, wait: Duration) -> String {
        let g = self.inner.lock().unwrap();
        let (g, _) = self.done.wait_timeout_while(g, wait, |s| !s.1).unwrap();
        String::from_utf8_lossy(&g.0).into_owned()
    }
}

struct Shared {
    state: Mutex<State>,
    stderr: StderrBuf,
    label: String,
}

impl Shared {
    /// Mark the session dead (the first reason wins) and fail every waiter.
    fn die(&self, kind: ErrorKind, message: String) {
        let (d, waiters): (Death, Vec<_>) = {
            let mut st = self.state.lock().unwrap();
            let d = st.dead.get_or_insert(Death { kind, message }).clone();
            (d, st.pending.drain().map(|(_, tx)| tx).collect())
        };
        for tx in waiters {
            let _ = tx.send(Err(BackendError::new(d.kind, d.message.clone())));
        }
    }

    /// "connection lost" with what ssh said, once it has said it.
    fn lost(&self, why: &str) -> String {
        let said = stderr_summary(&self.stderr.text(Duration::from_secs(1)));
        let mut m = format!("sftp: {}: connection lost ({why})", self.label);
        if !said.is_empty() {
            m.push_str(": ");
            m.push_str(&said);
        }
        m
    }
}

/// One SFTP session.
pub struct Conn {
    shared: Arc<Shared>,
    stdin: Mutex<Option<NoSigpipeWriter>>,
    child: Mutex<Child>,
    next_id: AtomicU32,
    /// Data bytes per READ request.
    pub read_chunk: u32,
    /// Data bytes per WRITE request.
    pub write_chunk: u32,
    /// The server offers `fsync@openssh.com`.
    pub has_fsync: bool,
}

/// A request in flight.
pub struct Ticket {
    rx: Receiver<Result<Reply>>,
    shared: Arc<Shared>,
}

impl Ticket {
    pub fn wait(self) -> Result<Reply> {
        match self.rx.recv() {
            Ok(r) => r,
            Err(_) => Err(BackendError::new(
                ErrorKind::Transient,
                format!("sftp: {}: connection lost", self.shared.label),
            )),
        }
    }
}

impl Conn {
    /// Start ssh and do the SFTP handshake.
    pub fn connect(cfg: &SftpConfig) -> Result<Conn> {
        let tty = terminal::foreground_tty();
        let cmd = ssh_command(cfg, tty.is_some())?;
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let (child, stdin) = spawn_with_socket_stdin(c);
        let mut child = child.map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::Permanent
            } else {
                ErrorKind::Transient
            };
            BackendError::new(
                kind,
                format!("sftp: {}: cannot start {:?}: {e}", cmd.label, cmd.program),
            )
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                dead: None,
            }),
            stderr: StderrBuf {
                inner: Mutex::new((Vec::new(), false)),
                done: Condvar::new(),
            },
            label: cmd.label.clone(),
        });
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // From here on, dropping `conn` ends and reaps ssh.
        let mut conn = Conn {
            shared,
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
            next_id: AtomicU32::new(1),
            read_chunk: DEFAULT_CHUNK,
            write_chunk: DEFAULT_CHUNK,
            has_fsync: false,
        };
        let no_thread = |e: std::io::Error| {
            BackendError::new(
                ErrorKind::Transient,
                format!("sftp: starting a thread: {e}"),
            )
        };
        let shared = conn.shared.clone();
        std::thread::Builder::new()
            .name("sftp-stderr".into())
            .spawn(move || read_stderr(stderr, &shared.stderr))
            .map_err(no_thread)?;
        let (version_tx, version_rx) = sync_channel(1);
        let shared = conn.shared.clone();
        std::thread::Builder::new()
            .name("sftp-reader".into())
            .spawn(move || reader(stdout, &shared, version_tx))
            .map_err(no_thread)?;
        let foreground = tty.map(|t| terminal::Foreground::hand_over(t, conn.pid()));
        let timeout = match foreground {
            Some(_) => None,
            None => Some(cfg.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
        };
        let version = conn.handshake(&version_rx, timeout);
        drop(foreground);
        let extensions = version?;
        conn.has_fsync = extensions.iter().any(|(n, _)| n == "fsync@openssh.com");
        if extensions.iter().any(|(n, _)| n == "limits@openssh.com") {
            conn.read_limits()?;
        }
        Ok(conn)
    }

    fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// INIT, then wait for VERSION: the extensions the server offers.
    fn handshake(
        &self,
        rx: &Receiver<std::result::Result<Vec<(String, String)>, String>>,
        timeout: Option<Duration>,
    ) -> Result<Vec<(String, String)>> {
        // If ssh is already gone this fails, and the reader, seeing the end
        // of its output (or what it printed instead), says so below.
        let _ = self.write_raw(&Packet::init(3), &[]);
        let got = match timeout {
            Some(t) => match rx.recv_timeout(t) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(BackendError::new(
                        ErrorKind::Transient,
                        format!(
                            "sftp: {}: no SFTP answer within {} s{}",
                            self.shared.label,
                            t.as_secs_f64(),
                            said(&self.shared.stderr.text(Duration::from_secs(1)))
                        ),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
            None => rx.recv().ok(),
        };
        match got {
            Some(Ok(ext)) => Ok(ext),
            Some(Err(garbage)) => {
                self.kill();
                Err(BackendError::new(
                    ErrorKind::Permanent,
                    format!("sftp: {}: {garbage}", self.shared.label),
                ))
            }
            None => {
                // ssh ended before the handshake: its stderr says why.
                let status = self.wait_exit(Duration::from_secs(3));
                let text = self.shared.stderr.text(Duration::from_secs(1));
                let summary = stderr_summary(&text);
                let detail = if !summary.is_empty() {
                    summary
                } else {
                    match status {
                        Some(s) => format!("ssh ended ({s}) before the SFTP handshake"),
                        None => "ssh closed its output before the SFTP handshake".into(),
                    }
                };
                // Interrupted at a prompt (Ctrl-C reaches ssh while it
                // holds the terminal): the user's answer, not a fault.
                let interrupted = status.and_then(|s| s.signal()) == Some(libc::SIGINT);
                let kind = if interrupted {
                    ErrorKind::Permanent
                } else {
                    classify_stderr(&text)
                };
                Err(BackendError::new(
                    kind,
                    format!("sftp: {}: {detail}", self.shared.label),
                ))
            }
        }
    }

    /// Ask for the server's limits (`limits@openssh.com`) and size the
    /// chunks of READ and WRITE requests by them.
    fn read_limits(&mut self) -> Result<()> {
        let t = self.send(FXP_EXTENDED, |p| {
            p.string("limits@openssh.com");
        })?;
        if let Reply::Extended(body) = t.wait()? {
            let mut d = Decoder::new(&body);
            let parsed = (|| Ok::<_, Malformed>((d.u64()?, d.u64()?, d.u64()?)))();
            if let Ok((max_packet, max_read, max_write)) = parsed {
                // 0 states no limit; a packet also holds the request's own fields.
                let limit = |v: u64| if v == 0 { u64::MAX } else { v };
                let cap = limit(max_packet).saturating_sub(1024).min(MAX_CHUNK as u64);
                let chunk = |v: u64| limit(v).min(cap).max(1024) as u32;
                self.read_chunk = chunk(max_read);
                self.write_chunk = chunk(max_write);
            }
        }
        Ok(())
    }

    /// Is the session still usable?
    pub fn alive(&self) -> bool {
        self.shared.state.lock().unwrap().dead.is_none()
    }

    fn write_raw(&self, head: &[u8], data: &[u8]) -> std::io::Result<()> {
        let mut g = self.stdin.lock().unwrap();
        let w = g
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        w.write_all(head)?;
        if !data.is_empty() {
            w.write_all(data)?;
        }
        Ok(())
    }

    /// Send a request of `typ` whose fields `build` adds after the id.
    pub fn send(&self, typ: u8, build: impl FnOnce(&mut Packet)) -> Result<Ticket> {
        self.send_with_data(typ, build, &[])
    }

    /// Send a request whose last field is the string `data` (a WRITE),
    /// written to the pipe without copying it into the packet.
    pub fn send_with_data(
        &self,
        typ: u8,
        build: impl FnOnce(&mut Packet),
        data: &[u8],
    ) -> Result<Ticket> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut p = Packet::request(typ, id);
        build(&mut p);
        let trailing = if typ == FXP_WRITE {
            p.u32(data.len() as u32);
            data.len()
        } else {
            0
        };
        let head = p.finish(trailing);
        let (tx, rx) = sync_channel(1);
        {
            let mut st = self.shared.state.lock().unwrap();
            if let Some(d) = &st.dead {
                return Err(BackendError::new(d.kind, d.message.clone()));
            }
            st.pending.insert(id, tx);
        }
        let ticket = Ticket {
            rx,
            shared: self.shared.clone(),
        };
        if let Err(e) = self.write_raw(&head, &data[..trailing]) {
            // ssh is gone or going: fail this request (and the session)
            // with ssh's last words.
            let m = self.shared.lost(&e.to_string());
            self.shared.die(ErrorKind::Transient, m);
        }
        Ok(ticket)
    }

    /// Close stdin (ssh then ends the session and exits) and wait up to
    /// `wait` for ssh to exit; its status, if it did.
    fn wait_exit(&self, wait: Duration) -> Option<std::process::ExitStatus> {
        self.stdin.lock().unwrap().take();
        let deadline = Instant::now() + wait;
        let mut child = self.child.lock().unwrap();
        loop {
            match child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => return None,
            }
        }
    }

    fn kill(&self) {
        self.stdin.lock().unwrap().take();
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Conn {
    /// End the session politely (ssh exits when its input ends), and kill
    /// ssh if it lingers; reap it either way.
    fn drop(&mut self) {
        if self.wait_exit(Duration::from_secs(2)).is_none() {
            self.kill();
        }
        self.shared.die(
            ErrorKind::Transient,
            format!("sftp: {}: session closed", self.shared.label),
        );
    }
}

/// The writing end of ssh's stdin: one end of a socket pair rather than
/// a pipe, so that a write after ssh died fails with `BrokenPipe`
/// (`MSG_NOSIGNAL`) instead of raising SIGPIPE, which kills cairn (its
/// `main` restores the default action so `cairn ls | head` ends quietly).
struct NoSigpipeWriter(UnixStream);

impl NoSigpipeWriter {
    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        use nix::sys::socket::{send, MsgFlags};
        while !buf.is_empty() {
            match send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => buf = &buf[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Spawn `c` with one end of a new socket pair as its stdin; the other end
/// is ours to write. The child's end is closed here once it is spawned, so
/// dropping ours gives the child end-of-file.
fn spawn_with_socket_stdin(mut c: Command) -> (std::io::Result<Child>, Option<NoSigpipeWriter>) {
    // A stream socket pair, both ends close-on-exec (std sets it).
    let (ours, theirs) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return (Err(e), None),
    };
    c.stdin(Stdio::from(OwnedFd::from(theirs)));
    let child = c.spawn();
    // `c` holds the child's end: close it, so only ssh has it.
    drop(c);
    (child, Some(NoSigpipeWriter(ours)))
}

fn said(stderr: &str) -> String {
    let s = stderr_summary(stderr);
    if s.is_empty() {
        s
    } else {
        format!(" (ssh said: {s})")
    }
}

fn read_stderr(mut r: impl Read, buf: &StderrBuf) {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut g = buf.inner.lock().unwrap();
                g.0.extend_from_slice(&chunk[..n]);
                if g.0.len() > STDERR_KEEP {
                    let cut = g.0.len() - STDERR_KEEP;
                    g.0.drain(..cut);
                }
            }
        }
    }
    buf.inner.lock().unwrap().1 = true;
    buf.done.notify_all();
}

type VersionReply = std::result::Result<Vec<(String, String)>, String>;

/// Read one packet: (type, payload after the type).
fn read_packet(r: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len == 0 || len > MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("packet of {len} bytes"),
        ));
    }
    let mut typ = [0u8; 1];
    r.read_exact(&mut typ)?;
    let mut body = Vec::with_capacity(len as usize - 1);
    (&mut *r).take(len as u64 - 1).read_to_end(&mut body)?;
    if body.len() != len as usize - 1 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok((typ[0], body))
}

fn decode_reply(typ: u8, d: &mut Decoder<'_>) -> std::result::Result<Reply, Malformed> {
    Ok(match typ {
        FXP_STATUS => Reply::Status(Status::decode(d)?),
        FXP_HANDLE => Reply::Handle(d.bytes()?.to_vec()),
        FXP_DATA => Reply::Data(d.bytes()?.to_vec()),
        FXP_NAME => {
            let n = d.u32()?;
            let mut names = Vec::with_capacity(n.min(4096) as usize);
            for _ in 0..n {
                let name = d.string()?;
                d.bytes()?; // long name, for humans
                names.push((name, d.attrs()?));
            }
            Reply::Name(names)
        }
        FXP_ATTRS => Reply::Attrs(d.attrs()?),
        FXP_EXTENDED_REPLY => {
            let mut rest = Vec::new();
            while let Ok(b) = d.u8() {
                rest.push(b);
            }
            Reply::Extended(rest)
        }
        _ => return Err(Malformed("unknown reply type")),
    })
}

/// The reader thread: VERSION first, then replies dispatched by id until
/// ssh's output ends.
fn reader(stdout: impl Read, shared: &Shared, version: SyncSender<VersionReply>) {
    let mut r = BufReader::with_capacity(256 * 1024, stdout);
    match read_packet(&mut r) {
        Ok((FXP_VERSION, body)) => {
            let mut d = Decoder::new(&body);
            let mut ext = Vec::new();
            if d.u32().is_err() {
                let _ = version.send(Err("malformed SFTP VERSION".into()));
                return;
            }
            while !d.is_empty() {
                match (d.string(), d.string()) {
                    (Ok(n), Ok(v)) => ext.push((n, v)),
                    _ => break,
                }
            }
            let _ = version.send(Ok(ext));
        }
        Ok((t, _)) => {
            let _ = version.send(Err(format!(
                "the server did not speak SFTP (message type {t} before VERSION; does a login script print to stdout?)"
            )));
            shared.die(ErrorKind::Permanent, "sftp: no SFTP session".into());
            return;
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            let _ = version.send(Err(
                "the server did not speak SFTP (does a login script print to stdout?)".into(),
            ));
            shared.die(ErrorKind::Permanent, "sftp: no SFTP session".into());
            return;
        }
        Err(_) => {
            // Dropping the sender tells the handshake ssh ended.
            drop(version);
            let m = shared.lost("ssh exited");
            shared.die(ErrorKind::Transient, m);
            return;
        }
    }
    loop {
        let (typ, body) = match read_packet(&mut r) {
            Ok(p) => p,
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "ssh exited".to_string()
                } else {
                    e.to_string()
                };
                let m = shared.lost(&why);
                shared.die(ErrorKind::Transient, m);
                return;
            }
        };
        let mut d = Decoder::new(&body);
        let Ok(id) = d.u32() else {
            shared.die(
                ErrorKind::Transient,
                format!("sftp: {}: malformed reply from the server", shared.label),
            );
            return;
        };
        let reply = decode_reply(typ, &mut d).map_err(|Malformed(m)| {
            BackendError::new(
                ErrorKind::Permanent,
                format!(
                    "sftp: {}: malformed reply from the server: {m}",
                    shared.label
                ),
            )
        });
        let tx = shared.state.lock().unwrap().pending.remove(&id);
        match tx {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => {
                shared.die(
                    ErrorKind::Transient,
                    format!("sftp: {}: reply to an unknown request {id}", shared.label),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cairn runs with SIGPIPE's default action (it would die): writing to
    /// an ssh that has exited must be an error instead.
    #[test]
    fn writing_to_an_exited_child_is_an_error_not_a_signal() {
        // SAFETY: this test binary's other tests spawn no children and write to no pipes.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let (child, w) = spawn_with_socket_stdin(Command::new("true"));
        let mut child = child.unwrap();
        let mut w = w.unwrap();
        child.wait().unwrap();
        let big = vec![0u8; 4 << 20];
        let e = w.write_all(&big).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }

    /// The child sees end-of-file when our end is dropped: nothing else holds its end.
    #[test]
    fn dropping_our_end_ends_the_childs_input() {
        let mut c = Command::new("cat");
        c.stdout(Stdio::piped());
        let (child, w) = spawn_with_socket_stdin(c);
        let mut child = child.unwrap();
        let mut w = w.unwrap();
        w.write_all(b"hello").unwrap();
        drop(w);
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        assert!(child.wait().unwrap().success());
    }
}

/// Handing the terminal to ssh for the handshake (see the module docs).
mod terminal {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// The controlling terminal, if cairn is its foreground process group.
    pub fn foreground_tty() -> Option<File> {
        let tty = File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let fg = nix::unistd::tcgetpgrp(&tty).ok()?;
        (fg == nix::unistd::getpgrp() && fg.as_raw() > 0).then_some(tty)
    }

    /// While alive, ssh's process group is the terminal's foreground.
    pub struct Foreground {
        tty: File,
        previous: libc::pid_t,
        old_sigttou: libc::sighandler_t,
    }

    impl Foreground {
        pub fn hand_over(tty: File, child: u32) -> Foreground {
            let fd = tty.as_raw_fd();
            let child = child as libc::pid_t;
            // SAFETY: signal/setpgid/tcsetpgrp take no pointers. SIGTTOU is
            // ignored so that handing the terminal back from what is then a
            // background group does not stop cairn.
            unsafe {
                let previous = libc::tcgetpgrp(fd);
                let old_sigttou = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                // Also done by the child itself; whichever runs first wins.
                libc::setpgid(child, child);
                libc::tcsetpgrp(fd, child);
                Foreground {
                    tty,
                    previous,
                    old_sigttou,
                }
            }
        }
    }

    impl Drop for Foreground {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe {
                libc::tcsetpgrp(self.tty.as_raw_fd(), self.previous);
                libc::signal(libc::SIGTTOU, self.old_sigttou);
            }
        }
    }
}
