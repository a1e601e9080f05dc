//! End-to-end life cycle on every remote backend, each against a real
//! server started by the test on 127.0.0.1: `backup` → `snapshots` →
//! `restore` (compared exactly) → `check --read-data` → `forget --prune`
//! → `copy` to a second repository (restored and compared again), and
//! the local cache (a second run reads its metadata locally).
//!
//! Build the binary first (`cargo build -p cairn-cli`), then
//! `cargo test -p cairn-tests --test backends`. A test whose server
//! cannot run here says so and does nothing.
//!
//! | test | server |
//! |---|---|
//! | `life_cycle_on_rclone` | `rclone:` on a local rclone remote |
//! | `life_cycle_on_sftp` | OpenSSH's sshd; the repository also opens as a local path |
//! | `sftp_server_restarted_during_a_backup` | sshd killed and restarted mid-backup: the backup retries and completes; check passes, restore is exact |
//! | `sftp_wrong_key_is_one_clear_error` | ssh's own "Permission denied", quickly, nothing written |
//! | `life_cycle_on_s3_moto`, `life_cycle_on_s3s_fs` | two independent S3 servers (moto; s3s-fs, which checks signatures) |
//! | `s3_wrong_secret_is_one_clear_error_without_the_secret` | s3s-fs refuses the key: one error naming s3:, no retries, no secret |
//! | `s3_server_restarted_during_a_backup` | s3s-fs killed and restarted mid-backup: the backup retries and completes; check passes, restore is exact |
//! | `a_local_repository_synced_into_s3_opens_there` | `rclone sync` of a local repository into a bucket opens with `s3:` and restores exactly |
//! | `bad_locations_and_options_are_one_line_errors` | no server: parse errors, unknown `-o` keys |
//! | `unreachable_servers_fail_fast` | nothing listening (rest:, sftp:): a clear error within seconds |
//! | `the_cache_serves_a_second_run_and_is_not_used_with_no_cache` | cache layout, sealed copies, expiry after forget, `--cache-dir`, `--no-cache` |

use cairn_tests::cmd::{wait_until, StderrWatch};
use cairn_tests::gen::random_file;
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use cairn_tests::sshd::{shell_join, Sshd};
use cairn_tests::{Out, TestEnv};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small tree of every common kind of file.
fn source(env: &TestEnv, seed: u64) -> PathBuf {
    cairn_tests::small_source(env, seed, b"hello, remote\n")
}

fn compare(src: &Path, target: &Path) {
    cairn_tests::assert_restored_equal(src, target)
}

/// A remote repository for the life cycle: its location and what cairn
/// needs in the environment to reach it.
pub struct Remote {
    pub location: String,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

fn run(env: &TestEnv, remote: &Remote, args: &[&str]) -> Out {
    let mut c = env.cairn(args);
    c.env("CAIRN_REPOSITORY", &remote.location);
    for (k, v) in &remote.env {
        c.env(k, v);
    }
    c.args(&remote.args);
    c.run()
}

/// The whole life cycle on `remote`; `second` is where `copy` sends it.
pub fn life_cycle(env: &TestEnv, remote: &Remote) {
    let src = source(env, 7);
    run(env, remote, &["init"]).success();
    let src_arg = src.to_str().unwrap();
    let first = run(env, remote, &["backup", "--json", src_arg])
        .success()
        .summary();
    assert!(
        first["data_added"].as_u64().unwrap() > 4 << 20,
        "first backup: {first}"
    );
    // An unchanged re-backup adds nothing.
    let again = run(env, remote, &["backup", "--json", src_arg])
        .success()
        .summary();
    assert_eq!(again["data_blobs"].as_u64(), Some(0), "{again}");
    assert_eq!(again["files_new"].as_u64(), Some(0), "{again}");
    let snaps = run(env, remote, &["snapshots", "--json"]).success().json();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");

    let target = env.path("restore");
    run(
        env,
        remote,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .success();
    compare(&src, &target);
    run(env, remote, &["check", "--read-data"]).success();

    run(env, remote, &["forget", "--keep-last", "1", "--prune"]).success();
    let snaps = run(env, remote, &["snapshots", "--json"]).success().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    run(env, remote, &["check", "--read-data"]).success();

    // Copy to a local repository, then restore from there.
    let mirror = env.path("mirror");
    env.cairn(["init"])
        .env("CAIRN_REPOSITORY", &mirror)
        .run()
        .success();
    let mut c = env.cairn(["copy", "--from-repo", &remote.location]);
    c.env("CAIRN_REPOSITORY", &mirror)
        .env("CAIRN_FROM_PASSWORD", &env.password);
    for (k, v) in &remote.env {
        c.env(k, v);
    }
    c.args(&remote.args);
    c.run().success();
    let target2 = env.path("restore-copy");
    env.cairn(["restore", "latest", "--target"])
        .env("CAIRN_REPOSITORY", &mirror)
        .arg(&target2)
        .run()
        .success();
    compare(&src, &target2);
}

fn rclone_bin() -> Option<PathBuf> {
    let from_env = std::env::var_os("RCLONE_BIN").map(PathBuf::from);
    let found = from_env.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("rclone"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("skipping: rclone is not installed (set RCLONE_BIN)");
    }
    found
}

fn rclone_remote(env: &TestEnv, rclone: &Path, dir: &str) -> Remote {
    // An rclone remote of type local, defined in the test's own config file.
    let conf = env.path("rclone.conf");
    std::fs::write(&conf, "[store]\ntype = local\n").unwrap();
    Remote {
        location: format!("rclone:store:{}", env.path(dir).display()),
        env: vec![("RCLONE_CONFIG".into(), conf.display().to_string())],
        args: vec!["-o".into(), format!("rclone.program={}", rclone.display())],
    }
}

#[test]
fn life_cycle_on_rclone() {
    let Some(rclone) = rclone_bin() else { return };
    let env = TestEnv::new();
    let remote = rclone_remote(&env, &rclone, "rclone-repo");
    life_cycle(&env, &remote);
    // The repository is a plain directory on the rclone side.
    assert!(env.path("rclone-repo/config").is_file());
    // A failing command stops its rclone child too.
    run(
        &env,
        &remote,
        &["restore", "no-such-snapshot", "--target", "/nonexistent"],
    )
    .expect_code(1);
    let repo = env.path("rclone-repo").display().to_string();
    assert!(
        rclone_children(&repo).is_empty(),
        "rclone processes outlived cairn: {:?}",
        rclone_children(&repo)
    );
}

/// Running processes whose command line names `path` (rclone children).
fn rclone_children(path: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("serve restic") && cmdline.contains(path)).then_some(pid)
        })
        .collect()
}

fn sftp_remote(env: &TestEnv, sshd: &Sshd, dir: &str) -> Remote {
    let path = env.path(dir);
    Remote {
        location: format!(
            "sftp://{}@127.0.0.1:{}/{}",
            sshd.user(),
            sshd.port(),
            path.display()
        ),
        env: vec![],
        args: vec!["-o".into(), format!("sftp.args={}", sshd.ssh_args_line())],
    }
}

#[test]
fn life_cycle_on_sftp() {
    let Some(sshd) = Sshd::start() else { return };
    let env = TestEnv::new();
    let remote = sftp_remote(&env, &sshd, "sftp-repo");
    life_cycle(&env, &remote);
    assert!(env.path("sftp-repo/config").is_file());
    // The repository is the local backend's layout: it opens as a path too.
    env.cairn(["check"])
        .env("CAIRN_REPOSITORY", env.path("sftp-repo"))
        .run()
        .success();
}

/// Back up 32 MiB to `remote` in 1 MiB packs; once 3 packs are in
/// `data_dir` call `stop`, and once cairn has met the outage (it reports
/// that it is retrying, or it has ended) call `start`. The backup retries
/// and completes in the same run (packs being streamed when the server
/// went away included), and the repository checks out and restores byte
/// for byte.
fn server_restarted_during_a_backup(
    env: &TestEnv,
    remote: &Remote,
    data_dir: &Path,
    seed: u64,
    stop: impl FnOnce(),
    start: impl FnOnce(),
) {
    run(env, remote, &["init"]).success();
    let src = env.mkdir("big");
    for i in 0..8 {
        random_file(&src.join(format!("f{i}")), 4 << 20, seed + i);
    }
    let mut c = env.cairn(["--pack-size", "1", "backup", src.to_str().unwrap()]);
    c.env("CAIRN_REPOSITORY", &remote.location);
    for (k, v) in &remote.env {
        c.env(k, v);
    }
    c.args(&remote.args);
    let cmdline = c.command_line();
    let mut child = c.command().spawn().unwrap();
    let stderr = StderrWatch::new(&mut child);
    wait_until("3 packs stored", Duration::from_secs(120), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before the server could be stopped:\n{}",
            stderr.text()
        );
        cairn_tests::repo::packs(data_dir).len() >= 3
    });
    stop();
    let retried = stderr.wait_for("retrying", Duration::from_secs(300));
    start();
    let (status, stdout, _) =
        cairn_tests::cmd::wait_capturing(&mut child, Duration::from_secs(300), &cmdline);
    let out = Out {
        cmdline,
        status,
        stdout,
        stderr: stderr.finish(),
    };
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    // The backup had packs left to store when the server went away: a
    // retrying client meets the outage, says so, and rides over the
    // restart in the same run.
    assert!(
        retried,
        "the backup met the outage without retrying:\n{}",
        out.describe()
    );
    assert!(
        out.status.success(),
        "the backup was retrying when the server came back, yet failed:\n{}",
        out.describe()
    );
    run(env, remote, &["check", "--read-data"]).success();
    let target = env.path("restore");
    run(
        env,
        remote,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .success();
    compare(&src, &target);
}

#[test]
fn sftp_server_restarted_during_a_backup() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let env = TestEnv::new();
    let remote = sftp_remote(&env, &sshd, "sftp-repo");
    let sshd = std::cell::RefCell::new(sshd);
    server_restarted_during_a_backup(
        &env,
        &remote,
        &env.path("sftp-repo"),
        100,
        || sshd.borrow_mut().stop(),
        || sshd.borrow_mut().start_again(),
    );
}

#[test]
fn sftp_wrong_key_is_one_clear_error() {
    let Some(sshd) = Sshd::start() else { return };
    let env = TestEnv::new();
    let mut remote = sftp_remote(&env, &sshd, "sftp-repo");
    let bad = Sshd::ssh_args_with(&sshd.unauthorized_key());
    remote.args = vec!["-o".into(), format!("sftp.args={}", shell_join(&bad))];
    let start = Instant::now();
    let out = run(&env, &remote, &["init"]);
    assert_ne!(out.code(), 0);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let err = out.one_line_error();
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!env.path("sftp-repo/config").exists());
}

#[test]
fn bad_locations_and_options_are_one_line_errors() {
    let env = TestEnv::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-r", "ftp://host/repo", "snapshots"],
            "unknown repository type \"ftp\"",
        ),
        (&["-r", "sftp:host", "snapshots"], "no path"),
        (&["-r", "s3:http://127.0.0.1:9", "snapshots"], "no bucket"),
        (
            &["-o", "s3.regoin=x", "snapshots"],
            "unknown option \"s3.regoin\"",
        ),
        (&["-o", "connections", "snapshots"], "expected key=value"),
    ];
    for (args, want) in cases {
        let out = env.cairn(*args).run();
        assert_eq!(out.code(), 1, "{args:?}: {}", out.describe());
        let err = out.one_line_error();
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // The list of forms is in the unknown-type message.
    let err = env
        .cairn(["-r", "gopher:x", "snapshots"])
        .run()
        .one_line_error();
    for form in ["sftp:", "s3:", "rclone:", "rest:"] {
        assert!(err.contains(form), "{err}");
    }
}

#[test]
fn unreachable_servers_fail_fast() {
    let env = TestEnv::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for location in [
        format!("rest:http://127.0.0.1:{port}/repo/"),
        format!("sftp://root@127.0.0.1:{port}//repo"),
    ] {
        let start = Instant::now();
        let out = env.cairn(["-r", &location, "snapshots"]).run();
        assert_ne!(out.code(), 0, "{location}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{location}: {:?}",
            start.elapsed()
        );
        let err = out.one_line_error();
        assert!(err.contains(&port.to_string()), "{location}: {err}");
    }
}

#[test]
fn the_cache_serves_a_second_run_and_is_not_used_with_no_cache() {
    let Some(rclone) = rclone_bin() else { return };
    let env = TestEnv::new();
    let remote = rclone_remote(&env, &rclone, "cached-repo");
    let src = source(&env, 3);
    run(&env, &remote, &["init"]).success();
    run(&env, &remote, &["backup", src.to_str().unwrap()]).success();
    run(&env, &remote, &["ls", "latest"]).success();
    // The cache is under the fake HOME's ~/.cache/cairn/<repository id>/.
    let cache = env.home.join(".cache/cairn");
    assert!(cache.join("CACHEDIR.TAG").is_file());
    let repo_caches: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(repo_caches.len(), 1);
    let dir = repo_caches[0].path();
    let count = |sub: &str| std::fs::read_dir(dir.join(sub)).map_or(0, |d| d.count());
    assert_eq!(count("snapshots"), 1);
    assert!(count("index") >= 1);
    assert!(count("data") >= 1, "the tree pack is cached");
    // Cached files are the repository's own (sealed) bytes.
    for sub in ["snapshots", "index"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let cached = std::fs::read(e.path()).unwrap();
            let stored =
                std::fs::read(env.path("cached-repo").join(sub).join(e.file_name())).unwrap();
            assert_eq!(cached, stored);
        }
    }
    // forget drops the snapshot from the cache on the next listing.
    run(&env, &remote, &["forget", "latest"]).success();
    run(&env, &remote, &["snapshots"]).success();
    assert_eq!(count("snapshots"), 0);
    // --no-cache leaves the cache alone; --cache-dir puts it elsewhere.
    let other = env.path("other-cache");
    let mut c = env.cairn(["--cache-dir", other.to_str().unwrap(), "snapshots"]);
    c.env("CAIRN_REPOSITORY", &remote.location);
    for (k, v) in &remote.env {
        c.env(k, v);
    }
    c.args(&remote.args).run().success();
    assert!(other.join("CACHEDIR.TAG").is_file());
    let empty = env.path("unused-cache");
    let mut c = env.cairn([
        "--no-cache",
        "--cache-dir",
        empty.to_str().unwrap(),
        "snapshots",
    ]);
    c.env("CAIRN_REPOSITORY", &remote.location);
    for (k, v) in &remote.env {
        c.env(k, v);
    }
    c.args(&remote.args).run().success();
    assert!(!empty.exists());
}

fn s3_remote(server: &S3Server, bucket_and_prefix: &str) -> Remote {
    Remote {
        location: format!("s3:{}/{bucket_and_prefix}", server.endpoint()),
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ],
        args: vec![],
    }
}

#[test]
fn life_cycle_on_s3_moto() {
    let env = TestEnv::new();
    let Some(server) = S3Server::moto(&env.path("")) else {
        return;
    };
    life_cycle(&env, &s3_remote(&server, "cairn-moto/host1"));
}

#[test]
fn life_cycle_on_s3s_fs() {
    let env = TestEnv::new();
    let Some(server) = S3Server::s3s_fs(&env.mkdir("s3data")) else {
        return;
    };
    life_cycle(&env, &s3_remote(&server, "cairn-s3s/some/prefix"));
    // The bucket is a directory of s3s-fs's data directory, laid out as a
    // local repository under the prefix.
    assert!(env.path("s3data/cairn-s3s/some/prefix/config").is_file());
}

#[test]
fn s3_wrong_secret_is_one_clear_error_without_the_secret() {
    let env = TestEnv::new();
    let Some(server) = S3Server::s3s_fs(&env.mkdir("s3data")) else {
        return;
    };
    let mut remote = s3_remote(&server, "bucket");
    run(&env, &remote, &["init"]).success();
    let wrong = "not-the-secret-at-all-42";
    remote.env[1].1 = wrong.into();
    let start = Instant::now();
    let out = run(&env, &remote, &["snapshots"]);
    assert_ne!(out.code(), 0);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let err = out.one_line_error();
    assert!(err.contains("s3:"), "{err}");
    let all = out.describe();
    assert!(!all.contains(wrong) && !all.contains(SECRET_KEY), "{all}");
    assert!(
        !all.contains("retrying"),
        "a refused key is not retried: {all}"
    );
}

#[test]
fn s3_server_restarted_during_a_backup() {
    let env = TestEnv::new();
    let Some(server) = S3Server::s3s_fs(&env.mkdir("s3data")) else {
        return;
    };
    let remote = s3_remote(&server, "restart");
    let server = std::cell::RefCell::new(server);
    server_restarted_during_a_backup(
        &env,
        &remote,
        &env.path("s3data/restart"),
        200,
        || server.borrow_mut().kill(),
        || server.borrow_mut().start(),
    );
}

/// A local repository copied into a bucket with a sync tool (rclone
/// here) opens with `s3:` and restores exactly: a repository is a set of
/// write-once files.
#[test]
fn a_local_repository_synced_into_s3_opens_there() {
    let Some(rclone) = rclone_bin() else { return };
    let env = TestEnv::new();
    let Some(server) = S3Server::s3s_fs(&env.mkdir("s3data")) else {
        return;
    };
    env.init();
    let src = source(&env, 11);
    env.cairn(["backup"]).arg(&src).run().success();
    let remote = s3_remote(&server, "mirror/repo");
    // Create the bucket through cairn's own init elsewhere in it, then sync.
    run(&env, &s3_remote(&server, "mirror/other"), &["init"]).success();
    // The remote from the environment: a connection string cannot hold
    // the endpoint's colons unquoted.
    let out = std::process::Command::new(&rclone)
        .args(["sync", "--config", "/dev/null"])
        .arg(&env.repo)
        .arg("mirror:mirror/repo")
        .env("RCLONE_CONFIG_MIRROR_TYPE", "s3")
        .env("RCLONE_CONFIG_MIRROR_PROVIDER", "Other")
        .env("RCLONE_CONFIG_MIRROR_ENDPOINT", server.endpoint())
        .env("RCLONE_CONFIG_MIRROR_ACCESS_KEY_ID", ACCESS_KEY)
        .env("RCLONE_CONFIG_MIRROR_SECRET_ACCESS_KEY", SECRET_KEY)
        // rclone 1.60 cannot use a CA bundle with its own transport and
        // refuses to start when one is set (this server is plain HTTP).
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rclone sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(&env, &remote, &["check", "--read-data"]).success();
    let restore = env.path("restore");
    run(
        &env,
        &remote,
        &["restore", "latest", "--target", restore.to_str().unwrap()],
    )
    .success();
    compare(&src, &restore);
}
