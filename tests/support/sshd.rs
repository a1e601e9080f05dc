//! A real OpenSSH server on 127.0.0.1 for SFTP tests, started by the test
//! and killed when dropped.
//!
//! [`Sshd::start`] generates a host key and a user ed25519 key with
//! `ssh-keygen` in a temporary directory, writes an `sshd_config` there
//! (its own port, host key, authorized key and pid file; public-key login
//! only; `Subsystem sftp internal-sftp`) and runs `sshd -D -e -f CONFIG`
//! (`$SSHD_BIN`, default `/usr/sbin/sshd`) until the port accepts. Nothing
//! in `/etc/ssh` or `~/.ssh` is read or changed. [`Sshd::ssh_args`] are the
//! arguments that log in without a prompt or a known_hosts entry.
//!
//! For fault tests, [`Sshd::stop`] kills the server and every session
//! process it forked (as a crash would), and [`Sshd::start_again`] starts it
//! on the same port. When sshd or ssh-keygen is missing, `start` prints
//! `skipping: ...` and gives `None`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    dir: tempfile::TempDir,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    port: u16,
    key: PathBuf,
    user: String,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A new ed25519 key pair at `path` (and `path.pub`), no passphrase.
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The name of the user the tests run as (whom sshd lets in).
fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Sshd {
    /// Start a server, or `None` (having printed why) when sshd, ssh or
    /// ssh-keygen is not installed.
    pub fn start() -> Option<Sshd> {
        let bin = std::env::var_os("SSHD_BIN")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
        if !bin.is_file() {
            crate::missing(&format!(
                "{} not found (set SSHD_BIN or `apt-get install openssh-server`)",
                bin.display()
            ));
            return None;
        }
        for tool in ["ssh", "ssh-keygen"] {
            if which(tool).is_none() {
                crate::missing(&format!(
                    "`{tool}` is not installed (`apt-get install openssh-client`)"
                ));
                return None;
            }
        }
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("cairn-sshd-")
            .tempdir()
            .unwrap();
        let host_key = dir.path().join("host_key");
        let key = dir.path().join("user_key");
        keygen(&host_key);
        keygen(&key);
        let port = free_port();
        let config = dir.path().join("sshd_config");
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
            host = host_key.display(),
            auth = dir.path().join("user_key.pub").display(),
            pid = dir.path().join("sshd.pid").display(),
        );
        std::fs::write(&config, text).unwrap();
        let mut s = Sshd {
            log: dir.path().join("sshd.log"),
            dir,
            bin,
            config,
            child: None,
            port,
            key,
            user: user_name(),
        };
        s.start_again();
        Some(s)
    }

    /// (Re)start the server on its port and wait until it accepts.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "sshd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("sshd exited ({st}) before listening:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "sshd does not listen on {addr}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the server and the session processes it forked (SIGKILL, as a
    /// crash would): connected clients see their connection drop.
    /// Freeze the server and its sessions (SIGSTOP) where they are: a
    /// transfer in flight stays in flight until [`Sshd::stop`] kills them.
    pub fn pause(&self) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        let mut victims = descendants(child.id());
        victims.push(child.id());
        for pid in victims {
            // SAFETY: kill takes no pointers; these are our own children.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGSTOP);
            }
        }
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut victims = descendants(child.id());
        victims.push(child.id());
        for pid in victims {
            // SAFETY: kill takes no pointers; these are our own children.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = child.wait();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that may log in (the one running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The authorized private key.
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// A temporary directory that lives as long as the server (for repositories).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh key pair that the server does not accept.
    pub fn unauthorized_key(&self) -> PathBuf {
        let k = self.dir.path().join(format!("other_key_{}", free_port()));
        keygen(&k);
        k
    }

    /// A fresh key pair, protected by `passphrase`, that the server accepts.
    pub fn authorized_key_with_passphrase(&self, passphrase: &str) -> PathBuf {
        let k = self.dir.path().join(format!("pass_key_{}", free_port()));
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                passphrase,
                "-C",
                "cairn-test",
                "-f",
            ])
            .arg(&k)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-keygen");
        assert!(out.status.success(), "ssh-keygen failed");
        // sshd reads the authorized keys at each login.
        let public = std::fs::read_to_string(k.with_extension("pub")).unwrap();
        let auth = self.dir.path().join("user_key.pub");
        let mut all = std::fs::read_to_string(&auth).unwrap();
        all.push_str(&public);
        std::fs::write(&auth, all).unwrap();
        k
    }

    /// `ssh` arguments that log in with `key` without a prompt, a
    /// known_hosts entry or any ssh configuration of the user's.
    pub fn ssh_args_with(key: &Path) -> Vec<String> {
        [
            "-i",
            &key.display().to_string(),
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
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// [`Sshd::ssh_args_with`] the authorized key.
    pub fn ssh_args(&self) -> Vec<String> {
        Self::ssh_args_with(&self.key)
    }

    /// The same, as one string for `-o sftp.args=...` (paths quoted).
    pub fn ssh_args_line(&self) -> String {
        shell_join(&self.ssh_args())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Words joined into one shell line, each single-quoted where needed.
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:@,+".contains(&b))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every process below `pid`, from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The fields after the command name, which is in parentheses.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent_of {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
