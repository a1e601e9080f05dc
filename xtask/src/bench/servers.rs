//! The servers the benchmarks start on 127.0.0.1, and the one rule they
//! share: **a server never outlives the harness.**
//!
//! - [`ServerProcess`] owns a server's child process. Dropping it (also
//!   while unwinding from an error or a panic) kills the process and every
//!   process it forked (sshd's sessions) and reaps it. The child is also
//!   started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it if
//!   the harness itself dies without unwinding (SIGKILL, SIGTERM, a CI
//!   timeout). That signal follows the *thread* that spawned the child:
//!   spawn servers from a thread that lives as long as they should (the
//!   harness's main thread).
//! - [`ServerProcess::spawn`] returns only once the port accepts
//!   connections, or fails with the server's log tail.
//! - Launchers: [`cairn_serve`] (the REST server), [`Sshd`] (OpenSSH with
//!   generated host and user keys, public-key login only, its own config;
//!   nothing in `/etc/ssh` or `~/.ssh` is read or changed) and [`S3s`]
//!   (s3s-fs, which checks SigV4 signatures and keeps buckets as
//!   directories).

use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::sys;

/// A running server; killed (with what it forked) when dropped.
pub struct ServerProcess {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` (stdin closed, stdout and stderr to `log`) and waits up
    /// to `ready_within` for `addr` to accept connections.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        addr: SocketAddr,
        log: &Path,
        ready_within: Duration,
    ) -> Result<ServerProcess> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (prctl, getppid) and builds
        // its errors from OS codes, without allocating.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The harness died between fork and prctl: nobody would kill us.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        eprintln!("[bench] starting {name}: {}", sys::describe(&cmd));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({})", sys::describe(&cmd)))?;
        let mut server = ServerProcess {
            name: name.to_string(),
            child,
            addr,
            log: log.to_path_buf(),
        };
        server.wait_listening(ready_within)?;
        Ok(server)
    }

    fn wait_listening(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening on {}; its log ({}):\n{}",
                    self.name,
                    self.addr,
                    self.log.display(),
                    super::run::tail(&self.log, 12)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} does not listen on {} after {} s; its log ({}):\n{}",
                    self.name,
                    self.addr,
                    within.as_secs(),
                    self.log.display(),
                    super::run::tail(&self.log, 12)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Children first: once the parent is gone they are re-parented and
        // can no longer be found from it.
        let mut victims = descendants(self.child.id());
        victims.push(self.child.id());
        for pid in victims {
            // SAFETY: kill takes no pointers; these are processes we started
            // (or that they forked), not yet reaped by us.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_addr() -> Result<SocketAddr> {
    let addr = TcpListener::bind("127.0.0.1:0")
        .context("looking for a free port")?
        .local_addr()?;
    Ok(addr)
}

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parent_of.push((p, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// `cairn serve` without authentication, repositories under `root`.
pub fn cairn_serve(cairn: &Path, root: &Path, log: &Path) -> Result<ServerProcess> {
    std::fs::create_dir_all(root)?;
    let addr = free_addr()?;
    let mut cmd = Command::new(cairn);
    cmd.args(["serve", "--no-auth", "--quiet", "--path"])
        .arg(root)
        .arg("--listen")
        .arg(addr.to_string());
    ServerProcess::spawn("cairn serve", cmd, addr, log, Duration::from_secs(30))
}

/// OpenSSH's sshd for SFTP, as the tests start it (`tests/support/sshd.rs`):
/// generated host and user ed25519 keys in its directory, its own config,
/// `sshd -D -e -f CONFIG`, public-key login of the current user only,
/// `internal-sftp`.
pub struct Sshd {
    pub server: ServerProcess,
    /// The private key the server accepts.
    pub key: PathBuf,
    /// Who logs in: the user running the harness.
    pub user: String,
}

impl Sshd {
    /// Where sshd is: `$SSHD_BIN`, else `/usr/sbin/sshd`; or why it cannot run.
    pub fn program() -> Result<PathBuf, String> {
        let bin = std::env::var_os("SSHD_BIN")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
        if !sys::is_executable(&bin) {
            return Err(format!(
                "{} not found (set SSHD_BIN, or `apt-get install openssh-server`)",
                bin.display()
            ));
        }
        for tool in ["ssh", "ssh-keygen"] {
            if sys::find_in_path(tool).is_none() {
                return Err(format!(
                    "`{tool}` is not installed (`apt-get install openssh-client`)"
                ));
            }
        }
        Ok(bin)
    }

    /// Generates keys and a config in `dir` (created) and starts sshd.
    pub fn start(program: &Path, dir: &Path) -> Result<Sshd> {
        std::fs::create_dir_all(dir)?;
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_key");
        let key = dir.join("user_key");
        for k in [&host_key, &key] {
            let _ = std::fs::remove_file(k);
            let _ = std::fs::remove_file(k.with_extension("pub"));
            sys::run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-bench", "-f"])
                    .arg(k)
                    .stdin(Stdio::null()),
            )?;
        }
        let user = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?
            .trim()
            .to_string();
        let addr = free_addr()?;
        let config = dir.join("sshd_config");
        let text = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {host}\n\
             AuthorizedKeysFile {auth}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             Subsystem sftp internal-sftp\n\
             PidFile {pid}\n",
            port = addr.port(),
            host = host_key.display(),
            auth = key.with_extension("pub").display(),
            pid = dir.join("sshd.pid").display(),
        );
        std::fs::write(&config, text)?;
        let mut cmd = Command::new(program);
        cmd.arg("-D").arg("-e").arg("-f").arg(&config);
        let server = ServerProcess::spawn(
            "sshd",
            cmd,
            addr,
            &dir.join("sshd.log"),
            Duration::from_secs(20),
        )?;
        Ok(Sshd { server, key, user })
    }

    /// `ssh` options that log in with the key, with no prompt, no
    /// known_hosts entry and none of the user's ssh configuration.
    pub fn ssh_options(&self) -> Vec<String> {
        [
            "-i",
            &self.key.display().to_string(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-F",
            "/dev/null",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// s3s-fs (an S3 server that checks signatures), buckets as directories
/// of its data directory.
pub struct S3s {
    pub server: ServerProcess,
}

/// The access key and secret s3s-fs is started with.
pub const S3_ACCESS_KEY: &str = "cairn-bench-key";
pub const S3_SECRET_KEY: &str = "cairn-bench-secret-0123456789";

impl S3s {
    /// Where s3s-fs is: `$S3S_FS_BIN`, else `target/test-env/s3s/bin/s3s-fs`
    /// (as `cargo xtask deps` installs it), else `s3s-fs` on PATH; or why
    /// there is none.
    pub fn program() -> Result<PathBuf, String> {
        if let Some(p) = std::env::var_os("S3S_FS_BIN").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if sys::is_executable(&p) {
                Ok(p)
            } else {
                Err(format!("S3S_FS_BIN={} is not an executable", p.display()))
            };
        }
        let installed = sys::target_dir().join("test-env/s3s/bin/s3s-fs");
        if sys::is_executable(&installed) {
            return Ok(installed);
        }
        sys::find_in_path("s3s-fs").ok_or_else(|| {
            "s3s-fs is not installed (set S3S_FS_BIN, or `cargo install s3s-fs --version 0.14.1 --features binary --locked`)".to_string()
        })
    }

    /// Starts s3s-fs on `data` (created) with `buckets` created empty.
    pub fn start(program: &Path, data: &Path, buckets: &[&str], log: &Path) -> Result<S3s> {
        for bucket in buckets {
            std::fs::create_dir_all(data.join(bucket))?;
        }
        let addr = free_addr()?;
        let mut cmd = Command::new(program);
        let args: [OsString; 9] = [
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            addr.port().to_string().into(),
            "--access-key".into(),
            S3_ACCESS_KEY.into(),
            "--secret-key".into(),
            S3_SECRET_KEY.into(),
            data.into(),
        ];
        cmd.args(args);
        let server = ServerProcess::spawn("s3s-fs", cmd, addr, log, Duration::from_secs(30))?;
        Ok(S3s { server })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // A zombie still has /proc/PID; its state is Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| !r.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
    }

    #[test]
    fn a_dropped_server_and_what_it_forked_are_gone() {
        let dir = std::env::temp_dir().join(format!("xtask-servers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let addr = free_addr().unwrap();
        // A "server" that forks a long sleeper, then listens.
        let script = format!(
            "sleep 300 & echo $! > {dir}/child.pid; exec python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\",{port})); s.listen(); time.sleep(300)'",
            dir = dir.display(),
            port = addr.port()
        );
        if sys::find_in_path("python3").is_none() {
            eprintln!("skipping: python3 is not installed");
            return;
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        let server = ServerProcess::spawn(
            "test server",
            cmd,
            addr,
            &dir.join("log"),
            Duration::from_secs(20),
        )
        .unwrap();
        let pid = server.pid();
        let sleeper: u32 = std::fs::read_to_string(dir.join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid) && alive(sleeper));
        drop(server);
        assert!(!alive(pid), "the server survived its drop");
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(sleeper) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(sleeper), "a process the server forked survived");
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_server_that_exits_early_is_an_error_with_its_log() {
        let dir = std::env::temp_dir().join(format!("xtask-servers-early-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo no such port >&2; exit 3");
        let err = ServerProcess::spawn(
            "failing server",
            cmd,
            free_addr().unwrap(),
            &dir.join("log"),
            Duration::from_secs(20),
        )
        .err()
        .expect("a server that exits cannot be ready");
        let text = format!("{err:#}");
        assert!(
            text.contains("exited") && text.contains("no such port"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
