//! Running one tool command and measuring it: wall time, user and system
//! CPU time (from `wait4`'s rusage) and peak RSS of that child alone, with
//! stdout discarded, stderr kept in a log file, optional stdin streamed
//! from a file through a pipe, and a timeout.
//!
//! The child is reaped in two steps so the timeout can never kill a reused
//! pid: `waitid(WNOWAIT)` waits for the exit and leaves a zombie, the
//! watchdog is disarmed, and only then `wait4` reaps it and returns the
//! rusage.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
    /// Streamed to the child's stdin through a pipe; otherwise stdin is
    /// /dev/null (so a tool asking for a password gets end-of-file).
    pub stdin_file: Option<PathBuf>,
    pub stderr_log: PathBuf,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
    pub max_rss_kib: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

impl Outcome {
    pub fn success(self) -> bool {
        self == Outcome::Exited(0)
    }

    pub fn describe(self) -> String {
        match self {
            Outcome::Exited(code) => format!("exit code {code}"),
            Outcome::Signaled(sig) => format!("killed by signal {sig}"),
            Outcome::TimedOut => "timed out".to_string(),
        }
    }
}

/// GNU time, used only to measure the peak RSS (see [`run`]).
const TIME: &str = "/usr/bin/time";

/// Runs the command and waits for it. `Err` only when it cannot be started.
///
/// Peak RSS: Linux counts in a child's `ru_maxrss` the memory of the
/// process it was spawned from (the parent's address space, shared until
/// `exec`), so `wait4` reports at least this harness's own peak, which grows
/// with the data sets. The tool therefore runs under GNU time, a small
/// process whose child starts from a small address space, and its `%M` is
/// the tool's own peak. CPU times still come from `wait4` (they include
/// time's child).
pub fn run(spec: &Spec<'_>) -> io::Result<(Outcome, Measured)> {
    let rss_file = spec.stderr_log.with_extension("rss");
    let _ = std::fs::remove_file(&rss_file);
    let use_time = Path::new(TIME).exists();
    let mut cmd = if use_time {
        let mut c = Command::new(TIME);
        c.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(spec.program);
        c
    } else {
        Command::new(spec.program)
    };
    cmd.args(&spec.args)
        .stdout(Stdio::null())
        .stderr(File::create(&spec.stderr_log)?);
    // Only the settings we give: nothing from the caller's environment that
    // changes a tool (RESTIC_COMPRESSION, RESTIC_PACK_SIZE, RUSTIC_*, ...).
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if ["RESTIC_", "RUSTIC_", "CAIRN_"]
            .iter()
            .any(|prefix| k.starts_with(prefix))
        {
            cmd.env_remove(&key);
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(if spec.stdin_file.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let source = match &spec.stdin_file {
        Some(path) => Some(File::open(path)?),
        None => None,
    };

    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let feeder = child
        .stdin
        .take()
        .zip(source)
        .map(|(mut sink, mut source)| {
            // A larger pipe means fewer wake-ups for both sides.
            // SAFETY: fcntl on a descriptor we own; a failure only leaves the default size.
            unsafe { libc::fcntl(sink.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
            // An early exit of the child gives EPIPE here; its status says why.
            thread::spawn(move || {
                let _ = io::copy(&mut source, &mut sink);
            })
        });
    let watchdog = Watchdog::arm(pid, spec.timeout);

    // Wait for the exit without reaping.
    loop {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which lives across the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = started.elapsed();
    let timed_out = watchdog.disarm();

    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into `status` and `usage`, both live.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }

    let outcome = if timed_out {
        Outcome::TimedOut
    } else if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else {
        Outcome::Signaled(libc::WTERMSIG(status))
    };
    let from_time = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse::<u64>().ok()));
    let outcome = match outcome {
        // GNU time reports a child killed by signal N as exit code 128 + N.
        Outcome::Exited(code) if use_time && code > 128 && from_time.is_some() => {
            Outcome::Signaled(code - 128)
        }
        o => o,
    };
    let measured = Measured {
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss_kib: from_time.unwrap_or(usage.ru_maxrss.max(0) as u64),
    };
    Ok((outcome, measured))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// Kills the child with SIGKILL if it is still running at the deadline.
struct Watchdog {
    state: Arc<(Mutex<(bool, bool)>, Condvar)>, // (disarmed, fired)
    thread: thread::JoinHandle<()>,
}

impl Watchdog {
    fn arm(pid: libc::pid_t, timeout: Duration) -> Watchdog {
        let state = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let shared = state.clone();
        let deadline = Instant::now() + timeout;
        let thread = thread::spawn(move || {
            let (lock, cvar) = &*shared;
            let mut guard = lock.lock().unwrap();
            loop {
                if guard.0 {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    // The child is not reaped before `disarm`, so `pid` is
                    // still ours even if it has just exited.
                    // SAFETY: kill has no memory effects; the pid is our unreaped child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    guard.1 = true;
                    return;
                }
                guard = cvar.wait_timeout(guard, deadline - now).unwrap().0;
            }
        });
        Watchdog { state, thread }
    }

    /// Stops the watchdog; true if it had killed the child.
    fn disarm(self) -> bool {
        let fired = {
            let (lock, cvar) = &*self.state;
            let mut guard = lock.lock().unwrap();
            guard.0 = true;
            cvar.notify_all();
            guard.1
        };
        let _ = self.thread.join();
        fired
    }
}

/// The last lines of a log file, for failure messages.
pub fn tail(path: &Path, max_lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(4096);
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}
