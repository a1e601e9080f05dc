//! Real database servers for the dump tests: PostgreSQL and MariaDB from
//! Debian's packages, each started by the test in a temporary data
//! directory of its own, listening only on a unix socket in that directory
//! (no TCP port, not the system's service, nothing in `/etc` read), and
//! stopped when dropped.
//!
//! - [`Postgres::start`]: `initdb` then `postgres` (the newest
//!   `/usr/lib/postgresql/*/bin`, or `$PG_BIN_DIR`). PostgreSQL refuses to
//!   run as root, so when the tests run as root the server runs as
//!   `nobody` (through `setpriv`) and owns its data directory. Logins need
//!   a password (scram-sha-256) for the user `cairn`, a superuser; the
//!   password is in a `.pgpass` file ([`Postgres::pgpass_line`]), as the
//!   README recommends, so it never appears in a command line.
//! - [`Mariadb::start`]: `mariadb-install-db` then `mariadbd`
//!   (`--skip-networking`, `--no-defaults`). A user `cairn` with a
//!   password is created; clients log in with `--defaults-file` of a
//!   generated option file ([`Mariadb::conn_args`]), again keeping the
//!   password out of `ps`.
//!
//! Both give a checksum of every table ([`Postgres::checksums`],
//! [`Mariadb::checksums`]): its row count and an MD5 over the MD5 of each
//! row's text, sorted, computed by the server in SQL, so two databases
//! compare equal only when every row of every table is the same.
//!
//! When a server is not installed, `start` prints `skipping: ...` and
//! gives `None`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One table's row count and checksum (an MD5 in hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSum {
    pub table: String,
    pub rows: u64,
    pub md5: String,
}

/// The password of the `cairn` user on both servers.
pub const DB_PASSWORD: &str = "s3cret-db-pass";

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .chain([
            Path::new("/usr/sbin").join(name),
            Path::new("/usr/bin").join(name),
        ])
        .find(|p| p.is_file())
}

/// Run `cmd`, which must succeed; its stdout as text.
#[track_caller]
fn output(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `cmd` with `input` on its stdin, which must succeed; its stdout.
#[track_caller]
fn output_with_input(cmd: &mut Command, input: &[u8], what: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ask a server process to stop with `signal`, then kill it after 20 s.
fn stop_child(child: &mut Child, signal: libc::c_int) {
    // SAFETY: kill takes no pointers; the pid is our own child's.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Parse `table|rows|md5` lines.
fn parse_sums(text: &str) -> Vec<TableSum> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 3, "unexpected checksum line {l:?}");
            TableSum {
                table: f[0].to_string(),
                rows: f[1].trim().parse().unwrap(),
                md5: f[2].trim().to_string(),
            }
        })
        .collect()
}

/// A PostgreSQL server of the test's own.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    pgpass: PathBuf,
}

/// The newest PostgreSQL's program directory, or `$PG_BIN_DIR`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// `cmd` made to run as `nobody` when the tests run as root (PostgreSQL
/// refuses root).
fn as_server_user(program: &Path) -> Command {
    if crate::is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Give a path to `nobody` when the tests run as root.
fn chown_to_server_user(path: &Path) {
    if crate::is_root() {
        std::os::unix::fs::chown(path, Some(65534), Some(65534))
            .unwrap_or_else(|e| panic!("chown nobody {}: {e}", path.display()));
    }
}

impl Postgres {
    /// Start a server, or `None` (having said why) when PostgreSQL is not
    /// installed.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = postgres_bin_dir() else {
            crate::missing(
                "PostgreSQL is not installed (`apt-get install postgresql`, or set PG_BIN_DIR)",
            );
            return None;
        };
        if crate::is_root() && which("setpriv").is_none() {
            crate::missing("running as root needs `setpriv` to start PostgreSQL as nobody");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("cairn-pg-")
            .tempdir()
            .unwrap();
        // The server user must reach its directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_to_server_user(dir.path());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{DB_PASSWORD}\n")).unwrap();
        chown_to_server_user(&pwfile);
        let data = dir.path().join("data");
        output(
            as_server_user(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "cairn", "--auth=scram-sha-256", "--pwfile"])
                .arg(&pwfile)
                .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
            "initdb",
        );
        let port = crate::sshd::free_port();
        let log = dir.path().join("server.log");
        let logf = std::fs::File::create(&log).unwrap();
        chown_to_server_user(&log);
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .arg("-p")
            .arg(port.to_string())
            // A test server: only the socket, and no waiting for the disk.
            .args(["-c", "listen_addresses="])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=64MB"])
            .args(["-c", "max_wal_size=1GB"])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres: {e}"));
        let pgpass = dir.path().join("pgpass");
        let mut pg = Postgres {
            dir,
            bin,
            port,
            child: Some(child),
            pgpass,
        };
        std::fs::write(&pg.pgpass, pg.pgpass_line()).unwrap();
        std::fs::set_permissions(&pg.pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        pg.wait_ready(&log);
        Some(pg)
    }

    fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h"])
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "postgres exited ({st}) before accepting connections:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "postgres does not accept connections:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A program of this PostgreSQL (`pg_dump`, `psql`, `pg_restore`, ...).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The socket's directory (libpq's host for a unix socket).
    pub fn host(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection arguments every client takes: `-h DIR -p PORT -U cairn`.
    pub fn conn_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.dir.path().display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "cairn".into(),
        ]
    }

    /// The `.pgpass` line that lets [`Postgres::conn_args`] log in
    /// (`host:port:database:user:password`; for a socket, the host is its
    /// directory).
    pub fn pgpass_line(&self) -> String {
        format!(
            "{}:{}:*:cairn:{DB_PASSWORD}\n",
            self.dir.path().display(),
            self.port
        )
    }

    /// A client program with the connection arguments and the password
    /// file set (`PGPASSFILE`), and no `~/.psqlrc` read.
    pub fn client(&self, name: &str) -> Command {
        let mut c = Command::new(self.program(name));
        c.args(self.conn_args())
            .env("PGPASSFILE", &self.pgpass)
            .env_remove("PGDATABASE")
            .env_remove("PGOPTIONS");
        if name == "psql" {
            c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
        }
        c
    }

    /// Run SQL in `db` (which must succeed); the rows, unaligned with `|`
    /// between the fields.
    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        output_with_input(
            self.client("psql").args(["-A", "-t", "-d", db]),
            sql.as_bytes(),
            &format!("psql -d {db}"),
        )
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) {
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\";"));
    }

    /// The tables of schema `public`, sorted.
    pub fn tables(&self, db: &str) -> Vec<String> {
        self.sql(
            db,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;",
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
    }

    /// Every table's row count and checksum: the MD5 over the sorted MD5s
    /// of each row's text (`t::text`, every column), computed by the server.
    pub fn checksums(&self, db: &str) -> Vec<TableSum> {
        let sql: String = self
            .tables(db)
            .iter()
            .map(|t| {
                format!(
                    "SELECT '{t}', count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) \
                     FROM (SELECT md5(r::text) AS h FROM public.\"{t}\" r) x;\n"
                )
            })
            .collect();
        parse_sums(&self.sql(db, &sql))
    }

    /// The size of a database on disk (`pg_database_size`).
    pub fn database_size(&self, db: &str) -> u64 {
        self.sql(db, &format!("SELECT pg_database_size('{db}');"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Stop the server now (fast shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGINT);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server of the test's own.
pub struct Mariadb {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Option<Child>,
    /// The client option file: user, password and socket.
    client_cnf: PathBuf,
}

impl Mariadb {
    /// Start a server, or `None` (having said why) when MariaDB is not
    /// installed.
    pub fn start() -> Option<Mariadb> {
        let (Some(server), Some(install)) = (which("mariadbd"), which("mariadb-install-db")) else {
            crate::missing("MariaDB is not installed (`apt-get install mariadb-server`)");
            return None;
        };
        for tool in ["mariadb", "mariadb-dump"] {
            if which(tool).is_none() {
                crate::missing(&format!(
                    "`{tool}` is not installed (`apt-get install mariadb-client`)"
                ));
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("cairn-mariadb-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let socket = dir.path().join("mysqld.sock");
        let user = if crate::is_root() {
            vec!["--user=root".to_string()]
        } else {
            vec![]
        };
        // One bootstrap at a time in this process, without Linux native
        // AIO: InnoDB's io_setup fails with EAGAIN when several servers
        // start at once beside the other tests (seen once in a full run as
        // "Installation of system tables failed").
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        {
            let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
            output(
                Command::new(install)
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                    .arg("--innodb-use-native-aio=0")
                    .args(&user),
                "mariadb-install-db",
            );
        }
        let log = dir.path().join("server.log");
        let child = Command::new(server)
            .arg("--no-defaults")
            .args(&user)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args(["--skip-networking", "--skip-log-bin"])
            // A test server: a small buffer pool, no waiting for the disk.
            .args(["--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=0"])
            .args(["--innodb-doublewrite=0", "--max-allowed-packet=256M"])
            .arg("--innodb-use-native-aio=0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mariadbd: {e}"));
        let client_cnf = dir.path().join("client.cnf");
        let mut m = Mariadb {
            dir,
            socket,
            child: Some(child),
            client_cnf,
        };
        m.wait_ready(&log);
        // root logs in without a password over the socket; the tests use
        // a user with one, as a real setup would.
        output(
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", m.socket.display()))
                .args(["-u", "root", "-e"])
                .arg(format!(
                    "CREATE USER 'cairn'@'localhost' IDENTIFIED BY '{DB_PASSWORD}'; \
                     GRANT ALL ON *.* TO 'cairn'@'localhost' WITH GRANT OPTION;"
                )),
            "creating the MariaDB user",
        );
        std::fs::write(&m.client_cnf, m.option_file()).unwrap();
        std::fs::set_permissions(&m.client_cnf, std::fs::Permissions::from_mode(0o600)).unwrap();
        Some(m)
    }

    fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "mariadbd exited ({st}) before accepting connections:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd does not accept connections:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of a client option file that logs in as `cairn`
    /// (`[client]` user, password, socket), for `--defaults-file` or
    /// `--defaults-extra-file`.
    pub fn option_file(&self) -> String {
        format!(
            "[client]\nuser=cairn\npassword={DB_PASSWORD}\nsocket={}\n",
            self.socket.display()
        )
    }

    /// The connection arguments (they must come first on a client's
    /// command line): `--defaults-file=CNF`, the file holding the password.
    pub fn conn_args(&self) -> Vec<String> {
        vec![format!("--defaults-file={}", self.client_cnf.display())]
    }

    /// The socket the server listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A client program (`mariadb`, `mariadb-dump`, `mysqldump`) with the
    /// connection arguments.
    pub fn client(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.args(self.conn_args());
        c
    }

    /// Run SQL in `db` (which must succeed); the rows, tab-separated.
    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        output_with_input(
            self.client("mariadb")
                .args(["--batch", "--skip-column-names", db]),
            sql.as_bytes(),
            &format!("mariadb {db}"),
        )
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) {
        self.sql("mysql", &format!("CREATE DATABASE `{name}`;"));
    }

    /// The base tables of `db`, sorted.
    pub fn tables(&self, db: &str) -> Vec<String> {
        self.sql(
            db,
            &format!(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = '{db}' AND table_type = 'BASE TABLE' ORDER BY 1;"
            ),
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
    }

    /// Every table's row count and checksum: the MD5 over the sorted MD5s
    /// of each row (every column through `QUOTE`, so NULLs, binary and
    /// numbers are exact), computed by the server.
    pub fn checksums(&self, db: &str) -> Vec<TableSum> {
        let mut sql = String::from("SET SESSION group_concat_max_len = 1073741824;\n");
        for t in self.tables(db) {
            let cols: Vec<String> = self
                .sql(
                    db,
                    &format!(
                        "SELECT column_name FROM information_schema.columns \
                         WHERE table_schema = '{db}' AND table_name = '{t}' ORDER BY ordinal_position;"
                    ),
                )
                .lines()
                .filter(|l| !l.is_empty())
                .map(|c| format!("QUOTE(`{c}`)"))
                .collect();
            sql.push_str(&format!(
                "SELECT '{t}', COUNT(*), MD5(IFNULL(GROUP_CONCAT(h ORDER BY h SEPARATOR ''), '')) \
                 FROM (SELECT MD5(CONCAT_WS(',', {})) AS h FROM `{t}`) x;\n",
                cols.join(", ")
            ));
        }
        parse_sums(&self.sql(db, &sql).replace('\t', "|"))
    }

    /// Stop the server now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGTERM);
        }
    }

    /// The server's temporary directory (also for the tests' files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Bytes a process has written so far (`wchar` of `/proc/PID/io`), or
/// `None` once it is gone.
pub fn bytes_written(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Is process `pid` there and not a zombie?
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The pid of the child of `parent` whose command name is `comm`, if any.
pub fn child_named(parent: u32, comm: &str) -> Option<u32> {
    crate::sshd::descendants(parent).into_iter().find(|&p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
    })
}
