//! Database dumps, for real: PostgreSQL and MariaDB servers started by the
//! tests ([`cairn_tests::db`]), a database of several tables (text,
//! numbers, NULLs, timestamps, JSON, and binary columns of random bytes;
//! tens of thousands of rows) dumped into cairn, restored with `cairn dump
//! | psql` (or `| mariadb`, or `| pg_restore`) into a fresh server, and
//! compared table by table: row counts and a checksum of every row,
//! computed by each server in SQL.
//!
//! A dump that fails (a wrong database name, or the dump program killed
//! midway after part of its output was stored) must leave no snapshot, a
//! non-zero exit with a one-line error, and a repository that `check
//! --read-data` passes.
//!
//! Credentials go as the README says: a `.pgpass` in `$HOME` for
//! PostgreSQL, an option file (`--defaults-file`) for MariaDB; no password
//! is ever on a command line.

use cairn_tests::cmd::{num, wait_capturing, Out};
use cairn_tests::db::{alive, bytes_written, child_named, Mariadb, Postgres, TableSum};
use cairn_tests::{note, TestEnv};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Rows of the big tables; the dump is about 300 bytes a row.
const ROWS: u32 = 60_000;
/// Rows of the table of binary documents (about 1 KiB of random bytes each).
const DOCS: u32 = 4_000;

/// The test's `$HOME/.pgpass` for `pg`, so cairn's `pg_dump` child logs in
/// without a password on its command line.
fn write_pgpass(env: &TestEnv, pg: &Postgres) {
    let p = env.home.join(".pgpass");
    std::fs::write(&p, pg.pgpass_line()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A shop: customers (text with quotes, tabs, newlines and non-ASCII,
/// NULLs, numeric, float, timestamps), events (JSON, small ints) and
/// documents (bytea of 64 B to 2 KiB of random bytes).
fn pg_load(pg: &Postgres, db: &str) {
    pg.create_database(db);
    pg.sql(
        db,
        &format!(
            r#"
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text,
    balance numeric(12,2),
    score double precision,
    created timestamptz,
    note text
);
INSERT INTO customers
SELECT i, 'Customer ' || i || ' ' || md5(i::text),
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'c' || i || '@example.org' END,
       round((random() * 100000)::numeric, 2), random(),
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute',
       CASE WHEN i % 11 = 0 THEN E'tab\there, a quote '' and\na newline; ünïcödé ✓' END
FROM generate_series(1, {ROWS}) i;

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    customer bigint REFERENCES customers,
    kind smallint NOT NULL,
    amount numeric,
    payload jsonb
);
INSERT INTO events (customer, kind, amount, payload)
SELECT 1 + i % {ROWS}, i % 5, (random() * 1000)::numeric(10,3),
       jsonb_build_object('n', i, 'tag', md5(random()::text), 'ok', i % 2 = 0)
FROM generate_series(1, {ROWS}) i;

CREATE TABLE documents (
    id int PRIMARY KEY,
    customer bigint REFERENCES customers,
    title text,
    body bytea
);
INSERT INTO documents
SELECT i, 1 + i % {ROWS}, 'document ' || i,
       (SELECT string_agg(sha512((random()::text || i || g)::bytea), ''::bytea)
          FROM generate_series(0, i % 32) g)
FROM generate_series(1, {DOCS}) i;
ANALYZE;
"#
        ),
    );
}

/// The same shop in MariaDB (TEXT, DECIMAL, DOUBLE, DATETIME, JSON, and a
/// LONGBLOB of random bytes).
fn my_load(m: &Mariadb, db: &str) {
    m.create_database(db);
    m.sql(
        db,
        &format!(
            r#"
CREATE TABLE customers (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    email VARCHAR(200),
    balance DECIMAL(12,2),
    score DOUBLE,
    created DATETIME(6),
    note TEXT
) DEFAULT CHARSET = utf8mb4;
INSERT INTO customers
SELECT seq, CONCAT('Customer ', seq, ' ', MD5(seq)),
       IF(seq % 7 = 0, NULL, CONCAT('c', seq, '@example.org')),
       ROUND(RAND() * 100000, 2), RAND(),
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq MINUTE,
       IF(seq % 11 = 0, 'tab\there, a quote '' and\na newline; ünïcödé ✓', NULL)
FROM seq_1_to_{ROWS};

CREATE TABLE events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer BIGINT,
    kind SMALLINT NOT NULL,
    amount DECIMAL(10,3),
    payload JSON
);
INSERT INTO events (customer, kind, amount, payload)
SELECT 1 + seq % {ROWS}, seq % 5, RAND() * 1000,
       JSON_OBJECT('n', seq, 'tag', MD5(RAND()), 'ok', seq % 2 = 0)
FROM seq_1_to_{ROWS};

CREATE TABLE documents (
    id INT PRIMARY KEY,
    customer BIGINT,
    title VARCHAR(100),
    body LONGBLOB
);
INSERT INTO documents
SELECT seq, 1 + seq % {ROWS}, CONCAT('document ', seq),
       RANDOM_BYTES(64 + (seq * 37) % 960)
FROM seq_1_to_{DOCS};
"#
        ),
    );
}

/// The checksums of a loaded shop must cover its three tables, all rows.
fn assert_shop(sums: &[TableSum]) {
    let names: Vec<&str> = sums.iter().map(|s| s.table.as_str()).collect();
    assert_eq!(names, ["customers", "documents", "events"], "{sums:?}");
    assert_eq!(sums[0].rows, u64::from(ROWS));
    assert_eq!(sums[1].rows, u64::from(DOCS));
    assert_eq!(sums[2].rows, u64::from(ROWS));
}

/// `cairn dump SNAPSHOT PATH | consumer`: both must succeed. `snapshot`
/// may carry options before it (`--path /x.sql latest`).
fn dump_into(env: &TestEnv, snapshot: &str, path: &str, mut consumer: Command) {
    let mut c = env.cairn(["dump"]);
    c.args(snapshot.split(' ')).arg(path);
    let line = c.command_line();
    let mut dump = c.command().spawn().expect("start cairn dump");
    let pipe = dump.stdout.take().unwrap();
    let mut sink = consumer
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the restoring client");
    let (st, so, se) = wait_capturing(&mut sink, Duration::from_secs(300), "restore client");
    let (dst, _, dse) = wait_capturing(&mut dump, Duration::from_secs(300), &line);
    assert!(dst.success(), "`{line}` failed ({dst}):\n{dse}");
    assert!(
        st.success(),
        "restoring `{line}` into {consumer:?} failed ({st}):\n{}{se}",
        String::from_utf8_lossy(&so)
    );
}

/// The dump program below cairn, stopped after it wrote `min_bytes`:
/// cairn is paused (SIGSTOP) and resumed in short slices, so the dump
/// cannot outrun the check; then the dump program is killed (SIGKILL) and
/// cairn resumed. False when the program ended before (the test retries).
fn kill_dumper_midway(cairn_pid: u32, program: &str, min_bytes: u64) -> bool {
    let signal = |pid: u32, sig| {
        // SAFETY: kill takes no pointers; the pids are the test's children.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let dumper = loop {
        if let Some(p) = child_named(cairn_pid, program) {
            break p;
        }
        if !alive(cairn_pid) || Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    signal(cairn_pid, libc::SIGSTOP);
    loop {
        match bytes_written(dumper).filter(|_| alive(dumper)) {
            Some(n) if n >= min_bytes => break,
            Some(_) if Instant::now() < deadline => {}
            _ => {
                signal(cairn_pid, libc::SIGCONT);
                return false;
            }
        }
        signal(cairn_pid, libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(3));
        signal(cairn_pid, libc::SIGSTOP);
    }
    signal(dumper, libc::SIGKILL);
    signal(cairn_pid, libc::SIGCONT);
    true
}

/// Back up `argv`'s output with `--stdin-from-command`, killing the
/// program once it wrote 3 MiB (1 MiB packs, so some are stored first).
/// The backup must fail with one line naming the program.
fn backup_killed_midway(env: &TestEnv, name: &str, argv: &[String]) -> Out {
    let program = std::path::Path::new(&argv[0])
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for attempt in 1..=3 {
        let before = env.snapshots().len();
        let mut c = env.cairn(["--pack-size", "1", "backup", "--stdin-from-command"]);
        c.args(["--stdin-filename", name, "--"]).args(argv);
        let line = c.command_line();
        let mut child = c.command().spawn().expect("start cairn backup");
        let killed = kill_dumper_midway(child.id(), &program, 3 << 20);
        let (status, stdout, stderr) = wait_capturing(&mut child, Duration::from_secs(300), &line);
        let out = Out {
            cmdline: line,
            status,
            stdout,
            stderr,
        };
        if killed {
            assert_ne!(out.code(), 0, "{}", out.describe());
            return out;
        }
        note!("attempt {attempt}: {program} ended before it could be killed; again");
        out.success();
        assert_eq!(env.snapshots().len(), before + 1);
    }
    panic!("{program} always ended before the test could kill it");
}

/// After a failed dump: the error names the program and says no snapshot
/// was saved, no snapshot is there, and the repository checks clean.
fn assert_failed_cleanly(env: &TestEnv, out: &Out, program: &str, snapshots_before: usize) {
    let line = out.one_line_error();
    assert!(
        line.contains(program) && line.contains("no snapshot"),
        "the error should name {program} and say no snapshot was saved:\n{}",
        out.describe()
    );
    assert!(
        !line.contains(cairn_tests::db::DB_PASSWORD),
        "the password leaked into the error"
    );
    assert_eq!(
        env.snapshots().len(),
        snapshots_before,
        "a failed dump left a snapshot"
    );
    // No temporary file, no stale lock, every file named by its hash.
    let bad = cairn_tests::repo::layout_violations(&env.repo, false);
    assert!(bad.is_empty(), "after a failed dump: {bad:?}");
    let locks = cairn_tests::repo::files(&env.repo, "locks");
    assert!(locks.is_empty(), "a failed dump left locks: {locks:?}");
    env.cairn(["check", "--read-data"]).run().success();
}

fn pg_dump_argv(pg: &Postgres, extra: &[&str], db: &str) -> Vec<String> {
    let mut v = vec![pg.program("pg_dump").display().to_string()];
    v.extend(pg.conn_args());
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push(db.to_string());
    v
}

#[test]
fn postgres_plain_dump_restores_into_a_fresh_server_and_a_changed_day_adds_little() {
    let Some(src) = Postgres::start() else {
        return;
    };
    let env = TestEnv::new();
    env.init();
    write_pgpass(&env, &src);
    pg_load(&src, "shop");
    let want = src.checksums("shop");
    assert_shop(&want);

    let first = env.backup_json(
        ["--stdin-from-command", "--stdin-filename", "shop.sql", "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(pg_dump_argv(&src, &[], "shop")),
    );
    let dump_bytes = num(&first, "total_bytes_processed");
    note!(
        "pg_dump: {} MiB of SQL, {} KiB added",
        dump_bytes >> 20,
        num(&first, "data_added") >> 10
    );
    assert!(dump_bytes > 20 << 20, "the dump is too small: {first}");

    // A fresh server, an empty database, the dump piped in.
    let dst = Postgres::start().unwrap();
    dst.create_database("shop");
    dump_into(&env, "latest", "/shop.sql", {
        let mut c = dst.client("psql");
        c.args(["-d", "shop"]);
        c
    });
    assert_eq!(dst.checksums("shop"), want);

    // The next day: 1% of the customers (a run of ids, as recent records
    // are) change. The updated rows move to the end of the table, so the
    // dump changes in two places and shares its other chunks with the
    // first. (At this size a few chunks of up to 8 MiB are a large share
    // of the dump: the bound is loose; `cargo xtask bench --databases`
    // measures the increments at scale.)
    src.sql(
        "shop",
        &format!(
            "UPDATE customers SET balance = balance + 1, note = 'changed' \
             WHERE id BETWEEN {a} AND {b};",
            a = ROWS / 2,
            b = ROWS / 2 + ROWS / 100,
        ),
    );
    let want2 = src.checksums("shop");
    assert_ne!(want2, want);
    let second = env.backup_json(
        ["--stdin-from-command", "--stdin-filename", "shop.sql", "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(pg_dump_argv(&src, &[], "shop")),
    );
    let added = num(&second, "data_added");
    note!(
        "the second dump ({} MiB) added {} KiB",
        num(&second, "total_bytes_processed") >> 20,
        added >> 10
    );
    assert!(
        added < dump_bytes * 2 / 3,
        "1% of rows changed but the second backup added {added} of {dump_bytes} bytes"
    );
    // Restoring the second snapshot gives the changed database.
    dst.create_database("shop2");
    let id = second["snapshot_id"].as_str().unwrap();
    dump_into(&env, id, "/shop.sql", {
        let mut c = dst.client("psql");
        c.args(["-d", "shop2"]);
        c
    });
    assert_eq!(dst.checksums("shop2"), want2);
}

#[test]
fn postgres_custom_format_restores_with_pg_restore() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let env = TestEnv::new();
    env.init();
    write_pgpass(&env, &pg);
    pg_load(&pg, "shop");
    let want = pg.checksums("shop");
    assert_shop(&want);

    // Compressed (the default) and uncompressed (-Z0) custom format.
    for (file, extra) in [("shop.dump", &[][..]), ("shop-z0.dump", &["-Z0"][..])] {
        let mut args = vec![
            "--stdin-from-command".to_string(),
            "--stdin-filename".into(),
            file.into(),
            "--".into(),
        ];
        args.extend(pg_dump_argv(&pg, &[&["-Fc"][..], extra].concat(), "shop"));
        let summary = env.backup_json(args);
        let id = summary["snapshot_id"].as_str().unwrap().to_string();
        let db = file.trim_end_matches(".dump").replace('-', "_") + "_restored";
        pg.create_database(&db);
        // pg_restore reads a custom-format archive from its stdin.
        dump_into(&env, &id, &format!("/{file}"), {
            let mut c = pg.client("pg_restore");
            c.args(["--exit-on-error", "--no-owner", "-d", &db]);
            c
        });
        assert_eq!(pg.checksums(&db), want, "restored from {file}");
    }
}

#[test]
fn postgres_dump_that_fails_leaves_no_snapshot() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let env = TestEnv::new();
    env.init();
    write_pgpass(&env, &pg);
    pg_load(&pg, "shop");

    // A database that does not exist: pg_dump fails before any output.
    let mut c = env.cairn([
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "x.sql",
        "--",
    ]);
    let out = c.args(pg_dump_argv(&pg, &[], "no_such_db")).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    // pg_dump's own message comes through on stderr, then cairn's line.
    assert!(
        out.stderr.contains("no_such_db"),
        "pg_dump's error should be shown:\n{}",
        out.describe()
    );
    let cairn_line = Out {
        stderr: out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>()
            .join("\n"),
        ..out
    };
    assert_failed_cleanly(&env, &cairn_line, "pg_dump", 0);

    // pg_dump killed after 3 MiB: chunks of it are stored, no snapshot.
    let out = backup_killed_midway(&env, "shop.sql", &pg_dump_argv(&pg, &[], "shop"));
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.stderr.contains("signal: 9"), "{}", out.describe());
    let before = env.snapshots().len();
    assert_failed_cleanly(&env, &out, "pg_dump", before);
    assert!(
        cairn_tests::repo::packs(&env.repo).len() > 1,
        "the killed dump stored no data: the test did not kill it midway"
    );

    // The same dump, whole, then works and restores.
    let summary = env.backup_json(
        ["--stdin-from-command", "--stdin-filename", "shop.sql", "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(pg_dump_argv(&pg, &[], "shop")),
    );
    assert_eq!(env.snapshots().len(), before + 1);
    note!(
        "after the killed dump, the whole one added {} of {} KiB",
        num(&summary, "data_added") >> 10,
        num(&summary, "total_bytes_processed") >> 10
    );
    pg.create_database("again");
    dump_into(&env, "latest", "/shop.sql", {
        let mut c = pg.client("psql");
        c.args(["-d", "again"]);
        c
    });
    assert_eq!(pg.checksums("again"), pg.checksums("shop"));
}

#[test]
fn mariadb_dump_through_a_pipe_and_a_command_restores_into_a_fresh_server() {
    let Some(src) = Mariadb::start() else {
        return;
    };
    let env = TestEnv::new();
    env.init();
    my_load(&src, "shop");
    let want = src.checksums("shop");
    assert_shop(&want);

    // mysqldump ... | cairn backup --stdin --stdin-filename shop.sql
    let mut dumper = src
        .client("mysqldump")
        .args(["--single-transaction", "--routines", "--triggers", "shop"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mysqldump");
    let pipe = dumper.stdout.take().unwrap();
    let mut c = env.cairn([
        "backup",
        "--json",
        "--stdin",
        "--stdin-filename",
        "shop.sql",
    ]);
    let line = c.command_line();
    let mut cairn = c.command().stdin(Stdio::from(pipe)).spawn().unwrap();
    let (status, stdout, stderr) = wait_capturing(&mut cairn, Duration::from_secs(300), &line);
    let (dst, _, dse) = wait_capturing(&mut dumper, Duration::from_secs(300), "mysqldump");
    assert!(dst.success(), "mysqldump failed: {dse}");
    let out = Out {
        cmdline: line,
        status,
        stdout,
        stderr,
    }
    .success();
    let piped = out.summary();
    note!(
        "mysqldump: {} MiB of SQL",
        num(&piped, "total_bytes_processed") >> 20
    );

    // The same with cairn running the dump program.
    let mut args: Vec<String> = [
        "--stdin-from-command",
        "--stdin-filename",
        "shop-cmd.sql",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("mariadb-dump".into());
    args.extend(src.conn_args());
    args.extend(["--single-transaction".into(), "shop".into()]);
    let by_command = env.backup_json(args);

    // Each restores into a fresh server.
    let dst = Mariadb::start().unwrap();
    for (snapshot, path, db) in [
        (piped["snapshot_id"].as_str().unwrap(), "/shop.sql", "shop"),
        (
            by_command["snapshot_id"].as_str().unwrap(),
            "/shop-cmd.sql",
            "shop_cmd",
        ),
    ] {
        dst.create_database(db);
        dump_into(&env, snapshot, path, {
            let mut c = dst.client("mariadb");
            c.arg(db);
            c
        });
        assert_eq!(dst.checksums(db), want, "restored from {path}");
    }
}

#[test]
fn mariadb_dump_that_fails_leaves_no_snapshot() {
    let Some(m) = Mariadb::start() else {
        return;
    };
    let env = TestEnv::new();
    env.init();
    my_load(&m, "shop");
    let dump_argv = |db: &str| -> Vec<String> {
        let mut v = vec!["mariadb-dump".to_string()];
        v.extend(m.conn_args());
        v.extend(["--single-transaction".into(), db.into()]);
        v
    };

    // A database that does not exist.
    let mut c = env.cairn([
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "x.sql",
        "--",
    ]);
    let out = c.args(dump_argv("no_such_db")).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.stderr.contains("no_such_db"), "{}", out.describe());
    let cairn_line = Out {
        stderr: out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>()
            .join("\n"),
        ..out
    };
    assert_failed_cleanly(&env, &cairn_line, "mariadb-dump", 0);

    // Killed after 3 MiB of output.
    let out = backup_killed_midway(&env, "shop.sql", &dump_argv("shop"));
    assert!(out.stderr.contains("signal: 9"), "{}", out.describe());
    let before = env.snapshots().len();
    assert_failed_cleanly(&env, &out, "mariadb-dump", before);
    assert!(cairn_tests::repo::packs(&env.repo).len() > 1);

    // A whole dump then works.
    env.backup_json(
        ["--stdin-from-command", "--stdin-filename", "shop.sql", "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(dump_argv("shop")),
    );
    assert_eq!(env.snapshots().len(), before + 1);
}

/// A TOML array of strings.
fn toml_list(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[test]
fn run_all_backs_up_files_and_databases_from_profiles() {
    let (Some(pg), Some(my)) = (Postgres::start(), Mariadb::start()) else {
        return;
    };
    let env = TestEnv::new();
    write_pgpass(&env, &pg);
    pg.create_database("notes");
    pg.sql(
        "notes",
        "CREATE TABLE notes (id int PRIMARY KEY, body text, blob bytea);
         INSERT INTO notes SELECT i, 'note ' || i, sha512(i::text::bytea)
         FROM generate_series(1, 2000) i;",
    );
    my.create_database("crm");
    my.sql(
        "crm",
        "CREATE TABLE contacts (id INT PRIMARY KEY, name TEXT, photo BLOB);
         INSERT INTO contacts SELECT seq, CONCAT('contact ', seq), RANDOM_BYTES(100)
         FROM seq_1_to_2000;",
    );
    // MariaDB's credentials in an option file of the user's, as the
    // README shows (`--defaults-extra-file`, mode 600).
    let my_cnf = env.home.join(".cairn-mariadb.cnf");
    std::fs::write(&my_cnf, my.option_file()).unwrap();
    std::fs::set_permissions(&my_cnf, std::fs::Permissions::from_mode(0o600)).unwrap();

    let src = env.mkdir("files");
    std::fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    let pw = env.path("password");
    std::fs::write(&pw, format!("{}\n", env.password)).unwrap();
    env.init();
    let head = format!(
        "repository = {:?}\npassword-file = {:?}\n",
        env.repo.display().to_string(),
        pw.display().to_string()
    );
    let profiles = [
        (
            "files",
            format!("[backup]\npaths = [{:?}]\n", src.display().to_string()),
        ),
        (
            "notes",
            format!(
                "[backup]\nstdin-from-command = {}\nstdin-filename = \"notes.sql\"\ntag = \"postgres\"\n",
                toml_list(&pg_dump_argv(&pg, &[], "notes"))
            ),
        ),
        (
            "crm",
            format!(
                "[backup]\nstdin-from-command = {}\nstdin-filename = \"crm.sql\"\ntag = \"mariadb\"\n",
                toml_list(&[
                    "mariadb-dump".to_string(),
                    format!("--defaults-extra-file={}", my_cnf.display()),
                    "--single-transaction".into(),
                    "crm".into(),
                ])
            ),
        ),
    ];
    let dir = env.home.join(".config/cairn");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in &profiles {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, format!("{head}{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let out = cairn_tests::Cairn::new(&env.home)
        .args(["run", "--all"])
        .run()
        .success();
    let snaps = env.snapshots();
    let mut paths: Vec<String> = snaps
        .iter()
        .map(|s| s["paths"][0].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/crm.sql", "/notes.sql", &src.display().to_string()],
        "{}",
        out.describe()
    );

    // Each database's snapshot restores into a fresh database.
    // The latest snapshot of each database, as the README shows.
    pg.create_database("notes_restored");
    dump_into(&env, "--path /notes.sql latest", "/notes.sql", {
        let mut c = pg.client("psql");
        c.args(["-d", "notes_restored"]);
        c
    });
    assert_eq!(pg.checksums("notes_restored"), pg.checksums("notes"));
    my.create_database("crm_restored");
    dump_into(&env, "--path /crm.sql latest", "/crm.sql", {
        let mut c = my.client("mariadb");
        c.arg("crm_restored");
        c
    });
    assert_eq!(my.checksums("crm_restored"), my.checksums("crm"));

    // A profile whose dump fails: `run` says so and exits non-zero, and no
    // snapshot is added.
    std::fs::write(
        dir.join("notes.toml"),
        format!(
            "{head}[backup]\nstdin-from-command = {}\nstdin-filename = \"notes.sql\"\n",
            toml_list(&pg_dump_argv(&pg, &[], "no_such_db"))
        ),
    )
    .unwrap();
    let out = cairn_tests::Cairn::new(&env.home)
        .args(["run", "notes"])
        .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("pg_dump") && out.stderr.contains("no snapshot"),
        "{}",
        out.describe()
    );
    assert_eq!(env.snapshots().len(), 3);
}
