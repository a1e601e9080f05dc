//! Streams: `backup --stdin` of 1 GiB generated on the fly and `dump` back,
//! compared by hash (never held in memory, never written to disk); and
//! `--stdin-from-command`, which must not store a snapshot when the
//! command fails.

use cairn_tests::cmd::{num, peak_rss, wait_capturing, Out};
use cairn_tests::gen::{copy_hashing, MixedStream};
use cairn_tests::{note, TestEnv};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Bytes streamed: 1 GiB, or `CAIRN_E2E_STREAM_BYTES` for a quick local run.
fn stream_len() -> u64 {
    std::env::var("CAIRN_E2E_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GIB)
}

/// Poll a child's peak RSS until it exits; returns the largest seen.
fn watch_rss(pid: u32) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let p = peak.clone();
    let h = std::thread::spawn(move || {
        while let Some(rss) = peak_rss(pid) {
            p.fetch_max(rss, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (peak, h)
}

#[test]
fn one_gib_from_stdin_dumps_back_identical() {
    let env = TestEnv::new();
    env.init();
    let len = stream_len();
    let seed = 0x5eed_cafe;

    // Backup: a thread writes the generated stream into cairn's stdin.
    let mut c = env.cairn(["backup", "--json", "--stdin", "--stdin-filename", "big.sql"]);
    let cmdline = c.command_line();
    let mut child = c
        .command()
        .stdin(Stdio::piped())
        .spawn()
        .expect("start cairn backup --stdin");
    let stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || copy_hashing(MixedStream::new(seed, len), stdin));
    let (peak, watcher) = watch_rss(child.id());
    let (status, stdout, stderr) = wait_capturing(&mut child, Duration::from_secs(400), &cmdline);
    watcher.join().unwrap();
    let out = Out {
        cmdline,
        status,
        stdout,
        stderr,
    };
    let (written, sent_hash) = writer
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("writing stdin failed ({e}):\n{}", out.describe()));
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    let out = out.success();
    assert_eq!(written, len);
    let summary = out.summary();
    assert_eq!(
        num(&summary, "total_bytes_processed"),
        len,
        "summary: {summary}"
    );
    let backup_rss = peak.load(Ordering::Relaxed);
    note!(
        "backup --stdin of {} MiB: peak RSS {} MiB",
        len / MIB,
        backup_rss / MIB
    );
    assert!(
        backup_rss < 512 * MIB,
        "backup --stdin of {} MiB peaked at {} MiB resident",
        len / MIB,
        backup_rss / MIB
    );
    // Half of the stream compresses well: the repository holds less than was sent.
    let stored: u64 = cairn_tests::repo::packs(&env.repo)
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(
        stored < len * 9 / 10,
        "{stored} bytes of packs for {len} bytes of half-compressible data"
    );

    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!(["/big.sql"]),
        "snapshot: {}",
        snaps[0]
    );

    // Dump: stream cairn's stdout through a hash.
    let mut d = env.cairn(["dump", "latest", "/big.sql"]);
    let cmdline = d.command_line();
    let mut child = d.command().spawn().expect("start cairn dump");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || copy_hashing(stdout, std::io::sink()));
    let (peak, watcher) = watch_rss(child.id());
    let (status, _, stderr) = wait_capturing(&mut child, Duration::from_secs(400), &cmdline);
    watcher.join().unwrap();
    let out = Out {
        cmdline,
        status,
        stdout: Vec::new(),
        stderr,
    };
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    out.success();
    let (got_len, got_hash) = reader.join().unwrap().unwrap();
    assert_eq!(
        got_len, len,
        "dump returned {got_len} bytes, {len} were backed up"
    );
    assert_eq!(
        got_hash, sent_hash,
        "dump returned other bytes than were backed up"
    );
    let dump_rss = peak.load(Ordering::Relaxed);
    note!("dump of {} MiB: peak RSS {} MiB", len / MIB, dump_rss / MIB);
    assert!(
        dump_rss < 512 * MIB,
        "dump of {} MiB peaked at {} MiB resident",
        len / MIB,
        dump_rss / MIB
    );
}

#[test]
fn stdin_from_command_that_fails_stores_no_snapshot() {
    let env = TestEnv::new();
    env.init();
    let before = cairn_tests::repo::hash_all(&env.repo.join("snapshots"));

    let out = env
        .cairn([
            "backup",
            "--stdin-from-command",
            "--stdin-filename",
            "db.sql",
            "--",
            "sh",
            "-c",
            "printf data; exit 3",
        ])
        .run();
    assert_ne!(
        out.code(),
        0,
        "a failing command must fail the backup:\n{}",
        out.describe()
    );
    let line = out.one_line_error();
    assert!(
        line.contains("sh"),
        "the error should name the command:\n{}",
        out.describe()
    );
    assert!(
        env.snapshots().is_empty(),
        "a snapshot was stored for a failed command"
    );
    cairn_tests::repo::assert_unchanged(
        &before,
        &cairn_tests::repo::hash_all(&env.repo.join("snapshots")),
        "a failed --stdin-from-command",
    );
    env.cairn(["check"]).run().success();

    // A command that closes its output early and fails later, and one
    // killed by a signal, fail the same way.
    for script in [
        "printf data; exec >&-; sleep 0.3; exit 4",
        "printf data; kill -9 $$",
    ] {
        let out = env
            .cairn([
                "backup",
                "--stdin-from-command",
                "--stdin-filename",
                "db.sql",
                "--",
                "sh",
                "-c",
                script,
            ])
            .run();
        assert_ne!(
            out.code(),
            0,
            "`sh -c {script:?}` failed, the backup must too:\n{}",
            out.describe()
        );
        out.one_line_error();
        assert!(
            env.snapshots().is_empty(),
            "a snapshot was stored for `sh -c {script:?}`"
        );
    }

    // A command that cannot even start.
    let out = env
        .cairn([
            "backup",
            "--stdin-from-command",
            "--",
            "/nonexistent/dumper",
        ])
        .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    out.one_line_error();
    assert!(env.snapshots().is_empty());

    // The same command succeeding stores exactly its output.
    let out = env
        .cairn([
            "backup",
            "--json",
            "--stdin-from-command",
            "--stdin-filename",
            "db.sql",
            "--",
            "sh",
            "-c",
            "printf data; exit 0",
        ])
        .run()
        .success();
    let id = out.summary()["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(env.snapshots().len(), 1);
    let dumped = env.cairn(["dump", &id, "/db.sql"]).run().success();
    assert_eq!(dumped.stdout, b"data");
}

#[test]
fn stdin_small_and_empty_streams() {
    let env = TestEnv::new();
    env.init();
    env.cairn(["backup", "--stdin", "--stdin-filename", "small.txt"])
        .stdin(&b"small stream\n"[..])
        .run()
        .success();
    assert_eq!(
        env.cairn(["dump", "latest", "/small.txt"])
            .run()
            .success()
            .stdout,
        b"small stream\n"
    );
    env.cairn(["backup", "--stdin", "--stdin-filename", "empty"])
        .stdin(Vec::new())
        .run()
        .success();
    assert_eq!(
        env.cairn(["dump", "latest", "/empty"])
            .run()
            .success()
            .stdout,
        b""
    );
    // --stdin takes no paths.
    let out = env.cairn(["backup", "--stdin", "/etc"]).run();
    assert_ne!(out.code(), 0);
    out.one_line_error();
}
