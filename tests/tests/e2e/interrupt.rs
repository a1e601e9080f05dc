//! Interrupted backups: SIGKILL midway leaves a repository that passes
//! `check`, and the next backup uploads only what had not reached it;
//! SIGINT (or SIGTERM) stops a backup with exit code 130 and no snapshot.

use cairn_tests::cmd::{num, wait_timeout, wait_until};
use cairn_tests::gen::{random_file, Rng};
use cairn_tests::repo::packs;
use cairn_tests::{assert_trees_equal, note, restored, TestEnv};
use std::process::Stdio;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The default pack size.
const PACK: u64 = 16 * MIB;

/// About `total` bytes of random data in files of 1-6 MiB in a few
/// directories. Returns the exact byte count.
fn make_random_files(root: &std::path::Path, total: u64) -> u64 {
    let mut rng = Rng::new(77);
    let mut sum = 0;
    let mut i = 0;
    while sum < total {
        let dir = root.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let len = MIB + rng.below(5 * MIB);
        random_file(&dir.join(format!("file-{i:03}.bin")), len, 1000 + i);
        sum += len;
        i += 1;
    }
    sum
}

#[test]
fn killed_backup_resumes_without_uploading_again() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let total = make_random_files(&src, 320 * MIB);
    env.init();

    // Start a backup and SIGKILL it once several packs are stored.
    const KILL_AT_PACKS: usize = 6;
    let mut c = env.cairn(["backup", "--quiet"]);
    c.arg(&src);
    let cmdline = c.command_line();
    let mut child = c
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start backup");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "`{cmdline}` finished ({st}) before {KILL_AT_PACKS} packs were stored; \
                 it must be killed midway (make the data larger)"
            );
        }
        if packs(&env.repo).len() >= KILL_AT_PACKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no {KILL_AT_PACKS} packs after 240 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let st = wait_timeout(&mut child, Duration::from_secs(30), &cmdline);
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            st.signal(),
            Some(libc::SIGKILL),
            "the backup was not killed but ended with {st}"
        );
    }
    let after_kill = packs(&env.repo);
    let packed: u64 = after_kill.iter().map(|(_, n)| n).sum();
    note!(
        "killed with {} packs ({} MiB) of {} MiB stored",
        after_kill.len(),
        packed / MIB,
        total / MIB
    );
    assert!(
        packed < total - 2 * PACK,
        "the backup was nearly done when killed ({packed} of {total} bytes)"
    );
    assert!(
        env.snapshots().is_empty(),
        "a killed backup left a snapshot"
    );

    // The repository is consistent as it is: only complete files under
    // their hash names (and maybe temporary files), and check passes.
    let bad = cairn_tests::repo::layout_violations(&env.repo, true);
    assert!(bad.is_empty(), "after SIGKILL:\n{}", bad.join("\n"));
    env.cairn(["check"]).run().success();

    // Run it again: what reached the repository is not uploaded again.
    let second = env.backup_json([&src]);
    let added = num(&second, "data_added");
    let slack = 3 * PACK;
    note!(
        "second run added {} MiB; {} MiB were missing",
        added / MIB,
        (total - packed) / MIB
    );
    assert!(
        added <= total - packed + slack,
        "the second run added {added} bytes, but {packed} of the {total} bytes were already in {} complete packs \
         (expected at most {} + {slack} slack): it uploaded again what had reached the repository",
        after_kill.len(),
        total - packed
    );
    assert!(
        added > 0,
        "nothing was added, yet the first run was killed midway"
    );
    // Every pack stored before the kill is still there (written once, never removed).
    let now: std::collections::HashSet<_> = packs(&env.repo).into_iter().collect();
    for p in &after_kill {
        assert!(
            now.contains(p),
            "pack {} stored before the kill was changed or removed",
            p.0.display()
        );
    }

    env.cairn(["check", "--read-data"]).run().success();

    // Kill a restore midway too, then restore again over what it left. The
    // kill must land before the restore ends (the exit status says so); a
    // restore that won the race is tried again in a fresh target, and after
    // five lost races the test fails rather than skip the check.
    let written = |t: &std::path::Path| -> u64 {
        let mut n = 0;
        let mut stack = vec![t.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let Ok(md) = e.metadata() else { continue };
                if md.is_dir() {
                    stack.push(e.path())
                } else {
                    n += md.len()
                }
            }
        }
        n
    };
    let mut target = None;
    for attempt in 1..=5 {
        let t = env.path(format!("target-{attempt}"));
        let mut c = env.cairn(["restore", "latest", "--target"]);
        c.arg(&t);
        let cmdline = c.command_line();
        let mut child = c
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() && written(&t) <= total / 4 {
            assert!(
                Instant::now() < deadline,
                "`{cmdline}` wrote no quarter of the data in 120 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let st = wait_timeout(&mut child, Duration::from_secs(60), &cmdline);
        use std::os::unix::process::ExitStatusExt;
        if st.signal() == Some(libc::SIGKILL) {
            note!(
                "restore killed with {} of {} MiB written (attempt {attempt})",
                written(&t) / MIB,
                total / MIB
            );
            target = Some(t);
            break;
        }
        assert!(st.success(), "`{cmdline}` failed: {st}");
        note!("attempt {attempt}: the restore finished before the kill; again");
    }
    let target = target.expect("in five attempts the restore always finished before it was killed");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
}

#[test]
fn sigint_stops_a_backup_with_exit_130_and_no_snapshot() {
    let env = TestEnv::new();
    env.init();
    // A stream that never ends by itself: random data for as long as cairn
    // reads it. The backup can end only through the signal (were SIGINT
    // ignored, the deadline below fails the test).
    let mut c = env.cairn(["backup", "--stdin", "--stdin-filename", "endless"]);
    let cmdline = c.command_line();
    let mut child = c
        .command()
        .stdin(Stdio::piped())
        .spawn()
        .expect("start backup");
    let mut stdin = child.stdin.take().unwrap();
    let fed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fed2 = fed.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let mut rng = Rng::new(5);
        let mut buf = vec![0u8; MIB as usize];
        loop {
            rng.fill(&mut buf);
            if stdin.write_all(&buf).is_err() {
                return; // cairn stopped reading
            }
            fed2.fetch_add(MIB, Ordering::SeqCst);
        }
    });
    // Interrupt it in the middle: once a pack of the stream is stored.
    wait_until(
        "a pack stored by the stdin backup",
        Duration::from_secs(120),
        || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "`{cmdline}` ended on an endless stream before SIGINT"
            );
            !packs(&env.repo).is_empty()
        },
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let fed_at_signal = fed.load(std::sync::atomic::Ordering::SeqCst);
    let (status, stdout, stderr) =
        cairn_tests::cmd::wait_capturing(&mut child, Duration::from_secs(120), &cmdline);
    writer.join().unwrap();
    // It stopped reading at the signal, not at some later error: a few
    // chunks in flight at most, not the stream's next hundreds of MiB.
    let read_after = fed.load(std::sync::atomic::Ordering::SeqCst) - fed_at_signal;
    assert!(
        read_after < 256 * MIB,
        "cairn read {} MiB more after SIGINT",
        read_after / MIB
    );
    let out = cairn_tests::Out {
        cmdline,
        status,
        stdout,
        stderr,
    };
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    assert_eq!(
        out.status.code(),
        Some(130),
        "SIGINT should end the backup with exit code 130:\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("interrupted: stopping"),
        "stopped by cairn's handler, not killed:\n{}",
        out.describe()
    );
    assert!(
        env.snapshots().is_empty(),
        "an interrupted backup stored a snapshot"
    );
    env.cairn(["check"]).run().success();
}

/// Start a file backup of 160 MiB, send `signal` once 3 packs are stored,
/// and check it stops there, not at the end of the data (less than half of
/// it is stored), with exit code 130, no snapshot, and a repository that
/// `check` passes. Returns the environment, the source and
/// its size.
fn stop_a_file_backup_with(signal: libc::c_int) -> (TestEnv, std::path::PathBuf, u64) {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let total = make_random_files(&src, 160 * MIB);
    env.init();
    let mut c = env.cairn(["backup", "--pack-size", "4"]);
    c.arg(&src);
    let cmdline = c.command_line();
    let mut child = c.command().spawn().expect("start backup");
    let deadline = Instant::now() + Duration::from_secs(120);
    while packs(&env.repo).len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "`{cmdline}` finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no 3 packs after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let (status, stdout, stderr) =
        cairn_tests::cmd::wait_capturing(&mut child, Duration::from_secs(120), &cmdline);
    let out = cairn_tests::Out {
        cmdline,
        status,
        stdout,
        stderr,
    };
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    assert_eq!(
        out.status.code(),
        Some(130),
        "signal {signal} should end the backup with exit code 130:\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("interrupted: stopping"),
        "stopped by cairn's handler, not killed:\n{}",
        out.describe()
    );
    let packed: u64 = packs(&env.repo).iter().map(|(_, n)| n).sum();
    assert!(
        packed < total / 2,
        "after signal {signal} at 3 packs the backup carried on: {packed} of {total} bytes stored"
    );
    assert!(
        env.snapshots().is_empty(),
        "an interrupted backup stored a snapshot"
    );
    env.cairn(["check"]).run().success();
    (env, src, total)
}

/// `systemctl stop`, `kill` and a shutdown send SIGTERM: it stops a backup
/// as cleanly as Ctrl-C.
#[test]
fn sigterm_stops_a_file_backup_as_ctrl_c_does() {
    stop_a_file_backup_with(libc::SIGTERM);
}

#[test]
fn sigint_stops_a_file_backup_with_exit_130_and_the_next_run_reuses_its_packs() {
    let (env, src, total) = stop_a_file_backup_with(libc::SIGINT);
    let packed: u64 = packs(&env.repo).iter().map(|(_, n)| n).sum();
    let again = env.backup_json([src.as_os_str(), "--pack-size".as_ref(), "4".as_ref()]);
    let added = num(&again, "data_added");
    assert!(
        added <= total - packed + 3 * 4 * MIB,
        "after SIGINT with {packed} bytes of packs stored, the next run added {added} of {total} bytes"
    );
    env.cairn(["check", "--read-data"]).run().success();
}
