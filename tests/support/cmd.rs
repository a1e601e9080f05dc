//! Running `cairn` in a per-test environment.

use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one `cairn` run may take before the test kills it and fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub const PASSWORD: &str = "correct horse battery staple";

/// The `cairn` binary under test.
pub fn cairn_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("debug/cairn");
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p cairn-cli` first, or set CAIRN_BIN",
        bin.display()
    );
    bin
}

/// One test's world: a temporary directory with `repo/` (the repository,
/// not created yet), `home/` (HOME and the XDG directories) and whatever
/// the test puts there. Removed when dropped.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
    pub password: String,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        TestEnv {
            repo: dir.path().join("repo"),
            home,
            dir,
            password: PASSWORD.to_string(),
        }
    }

    /// A path inside the test's directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh directory inside the test's directory.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// `cairn ARGS...` against this test's repository and password.
    pub fn cairn<I, S>(&self, args: I) -> Cairn
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cairn::new(&self.home);
        c.env("CAIRN_REPOSITORY", &self.repo)
            .env("CAIRN_PASSWORD", &self.password);
        c.args(args);
        c
    }

    /// `cairn init`, which must succeed.
    pub fn init(&self) {
        self.cairn(["init"]).run().success();
        assert!(
            self.repo.join("config").is_file(),
            "init did not create {}/config",
            self.repo.display()
        );
    }

    /// `cairn backup --json ARGS...`, which must exit 0; returns the summary line.
    pub fn backup_json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cairn(["backup", "--json"]).args(args).run().success();
        out.summary()
    }

    /// `cairn snapshots --json`, parsed.
    pub fn snapshots(&self) -> Vec<Value> {
        let out = self.cairn(["snapshots", "--json"]).run().success();
        match out.json() {
            Value::Array(a) => a,
            v => panic!("snapshots --json printed {v}, not an array"),
        }
    }

    /// `cairn restore SNAPSHOT --target TARGET ARGS...`, which must exit 0.
    pub fn restore(&self, snapshot: &str, target: &Path, extra: &[&str]) -> Out {
        self.cairn(["restore", snapshot, "--target"])
            .arg(target)
            .args(extra)
            .run()
            .success()
    }
}

/// A `cairn` command line being built, run with a clean environment.
pub struct Cairn {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    shown: Vec<OsString>,
}

impl Cairn {
    /// A command whose HOME and XDG directories are `home`, with no
    /// repository or password set and the cheap KDF for debug builds.
    pub fn new(home: &Path) -> Cairn {
        let mut cmd = Command::new(cairn_bin());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CAIRN_") || k.starts_with("XDG_") || k.starts_with("RESTIC_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("HOME", home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("USER", "e2e-tester")
            .env("LOGNAME", "e2e-tester")
            .env("CAIRN_TEST_CHEAP_KDF", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Cairn {
            cmd,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            shown: vec![OsString::from("cairn")],
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.shown.push(a.as_ref().to_owned());
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(&mut self, k: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(k);
        self
    }

    /// Bytes written to the child's stdin (then closed).
    pub fn stdin(&mut self, data: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    /// Run `cairn` under another program, e.g. `setpriv ... --`.
    pub fn wrapped_in(&mut self, program: &str, args: &[&str]) -> &mut Self {
        let mut c = Command::new(program);
        c.args(args)
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.cmd = c;
        let mut shown: Vec<OsString> = vec![program.into()];
        shown.extend(args.iter().map(OsString::from));
        shown.append(&mut self.shown);
        self.shown = shown;
        self
    }

    pub fn command_line(&self) -> String {
        self.shown
            .iter()
            .map(|a| format!("{}", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The underlying command, to spawn and drive by hand (stdin is null,
    /// stdout and stderr piped, unless changed).
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Run to completion (or the timeout), capturing stdout and stderr.
    pub fn run(&mut self) -> Out {
        if self.stdin.is_some() {
            self.cmd.stdin(Stdio::piped());
        }
        let cmdline = self.command_line();
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let writer = self.stdin.take().map(|data| {
            let mut w = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                // A child that exits without reading all of it is fine.
                let _ = w.write_all(&data);
            })
        });
        let (status, stdout, stderr) = wait_capturing(&mut child, self.timeout, &cmdline);
        if let Some(w) = writer {
            w.join().unwrap();
        }
        let out = Out {
            cmdline,
            status,
            stdout,
            stderr,
        };
        out.assert_sane();
        out
    }
}

/// Wait for a child whose stdout and stderr are piped, reading both, and
/// kill it (failing the test) if it outlives `timeout`.
pub fn wait_capturing(
    child: &mut Child,
    timeout: Duration,
    what: &str,
) -> (ExitStatus, Vec<u8>, String) {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let status = wait_timeout(child, timeout, what);
    let stdout = t_out.join().unwrap();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    (status, stdout, stderr)
}

/// Wait until `cond` holds, checking every few milliseconds; fail the test
/// with `what` if it has not held after `timeout` (a generous bound for "it
/// never happened", not a guess at how long it takes).
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child's stderr, read on a thread as it comes, so that a test can wait
/// for a line (a sign the child has reached some point) and still report
/// everything it said.
pub struct StderrWatch {
    shared: std::sync::Arc<(std::sync::Mutex<(String, bool)>, std::sync::Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrWatch {
    /// Take `child`'s piped stderr and start reading it.
    pub fn new(child: &mut Child) -> StderrWatch {
        let mut se = child.stderr.take().expect("stderr is piped");
        let shared = std::sync::Arc::new((
            std::sync::Mutex::new((String::new(), false)),
            std::sync::Condvar::new(),
        ));
        let s2 = shared.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = se.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*s2;
                let mut st = lock.lock().unwrap();
                if n == 0 {
                    st.1 = true;
                    cv.notify_all();
                    return;
                }
                st.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                cv.notify_all();
            }
        });
        StderrWatch {
            shared,
            reader: Some(reader),
        }
    }

    /// Wait until stderr contains `needle` (true) or ends without it
    /// (false); fail the test if neither happens within `timeout`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap();
        loop {
            if st.0.contains(needle) {
                return true;
            }
            if st.1 {
                return false;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "{needle:?} did not appear on stderr within {timeout:?}; it said:\n{}",
                st.0
            );
            st = cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.shared.0.lock().unwrap().0.clone()
    }

    /// Wait for the end of the stream (the child has exited and closed it)
    /// and return all of it.
    pub fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.text()
    }
}

/// Wait for a child, killing it and failing the test after `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a finished `cairn` run did.
#[derive(Debug)]
pub struct Out {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    /// Checked after every run: a panic or a crash is always a bug.
    fn assert_sane(&self) {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            !self.stderr.contains("panicked"),
            "`{}` panicked:\n{}",
            self.cmdline,
            self.describe()
        );
        if let Some(sig) = self.status.signal() {
            panic!(
                "`{}` died from signal {sig}:\n{}",
                self.cmdline,
                self.describe()
            );
        }
    }

    pub fn code(&self) -> i32 {
        self.status.code().expect("exited normally")
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Exit status, stdout (cut) and stderr, for failure messages.
    pub fn describe(&self) -> String {
        let so = self.stdout_str();
        let so = if so.len() > 4000 {
            format!(
                "{}… ({} bytes)",
                &so[..so.floor_char_boundary_compat(4000)],
                so.len()
            )
        } else {
            so
        };
        format!(
            "  status: {}\n  stdout:\n{}\n  stderr:\n{}",
            self.status,
            indent(&so),
            indent(&self.stderr)
        )
    }

    /// The run must have exited 0.
    #[track_caller]
    pub fn success(self) -> Out {
        assert!(
            self.status.success(),
            "`{}` failed:\n{}",
            self.cmdline,
            self.describe()
        );
        self
    }

    /// The run must have exited with `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Out {
        assert_eq!(
            self.status.code(),
            Some(code),
            "`{}`: expected exit code {code}:\n{}",
            self.cmdline,
            self.describe()
        );
        self
    }

    /// The run must have failed with exactly one line on stderr, starting
    /// with `error:`. Returns that line.
    #[track_caller]
    pub fn one_line_error(&self) -> String {
        assert!(
            !self.status.success(),
            "`{}` should have failed:\n{}",
            self.cmdline,
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        // Under --json the one line is restic 0.17's exit_error object,
        // with the exit code; it reads here as the text form would.
        let json = lines
            .first()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message_type"] == "exit_error");
        if let (1, Some(v)) = (lines.len(), json) {
            assert_eq!(
                v["code"].as_i64(),
                self.status.code().map(i64::from),
                "`{}`: the exit_error code is not the exit status:\n{}",
                self.cmdline,
                self.describe()
            );
            let message = v["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{}",
                self.describe()
            );
            return format!("error: {message}");
        }
        assert!(
            lines.len() == 1 && lines[0].starts_with("error:"),
            "`{}`: expected one line `error: ...` on stderr:\n{}",
            self.cmdline,
            self.describe()
        );
        lines[0].to_string()
    }

    /// The stderr lines starting with `error:`, at least one of them.
    #[track_caller]
    pub fn error_lines(&self) -> Vec<String> {
        let v: Vec<String> = self
            .stderr
            .lines()
            .filter(|l| l.trim_start_matches('\r').contains("error"))
            .map(String::from)
            .collect();
        assert!(
            !v.is_empty(),
            "`{}`: expected error lines on stderr:\n{}",
            self.cmdline,
            self.describe()
        );
        v
    }

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not JSON ({e}):\n{}",
                self.cmdline,
                self.describe()
            )
        })
    }

    /// stdout parsed as JSON lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout_str()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`{}`: line {l:?} is not JSON: {e}", self.cmdline))
            })
            .collect()
    }

    /// The last JSON line, which must be `"message_type": "summary"`.
    #[track_caller]
    pub fn summary(&self) -> Value {
        let lines = self.json_lines();
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("`{}` printed no JSON:\n{}", self.cmdline, self.describe()));
        assert_eq!(
            last["message_type"],
            "summary",
            "`{}`: the last JSON line is not the summary:\n{}",
            self.cmdline,
            self.describe()
        );
        last.clone()
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// A JSON number field as u64, failing readably when absent.
#[track_caller]
pub fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("field {field:?} is not a number in {v}"))
}

/// The peak resident memory (VmHWM) of a running process, in bytes, or
/// None once it is gone.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
