//! End-to-end tests of REST, both ends: `cairn serve` with the
//! real restic client and with cairn, cairn's `rest:` backend against
//! `rclone serve restic`, and what the server refuses. Every server runs as
//! a child process on a free port of 127.0.0.1.
//!
//! Build the binary first: `cargo build -p cairn-cli`, then
//! `cargo test -p cairn-tests --test rest`. restic and rclone come from
//! `$RESTIC_BIN` / `$RCLONE_BIN` or PATH (`cargo xtask test` installs both);
//! a test whose peer is missing says so and does nothing.
//!
//! | test | what it shows |
//! |---|---|
//! | `restic_life_cycle_against_cairn_serve` | restic init, backup, restore, check --read-data, forget --prune; the directory is also a local repository |
//! | `cairn_life_cycle_against_cairn_serve` | cairn init, backup, restore, check --read-data over rest:, credentials from the environment, never printed |
//! | `cairn_life_cycle_against_rclone` | the same against `rclone serve restic` |
//! | `append_only_blocks_forget_prune` | restic's and cairn's forget --prune fail cleanly; nothing is lost |
//! | `private_repos_isolate_users` | another user's repository answers 401, one's own works |
//! | `bad_credentials_get_401` | wrong or missing password: a clear error, exit 1, the password never shown |
//! | `tls_with_a_generated_certificate` | https with --cacert (cairn and restic), or the CA in the system store (`SSL_CERT_FILE`); without either a clear error |
//! | `path_traversal_touches_nothing_outside_the_root` | hostile paths: 404/400, no file outside the root read, written or removed |
//! | `corrupted_upload_is_rejected` | an upload whose SHA-256 is not its name: 400, nothing stored |
//! | `serve_refuses_private_repos_without_auth` | `--no-auth --private-repos`: one error line, exit 1; the hardening flags are in `serve --help` |
//! | `server_killed_mid_backup` | SIGKILL and restart during a backup: it completes or fails clearly; a re-run completes; check --read-data passes |

use cairn_tests::gen::random_file;
use cairn_tests::repo::{describe_changes, hash_all};
use cairn_tests::rest::*;
use cairn_tests::{Out, TestEnv};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small tree of every common kind of file.
fn source(env: &TestEnv, seed: u64) -> PathBuf {
    cairn_tests::small_source(env, seed, b"hello over http\n")
}

fn compare(src: &Path, target: &Path) {
    cairn_tests::assert_restored_equal(src, target)
}

fn cairn(env: &TestEnv, repo: &str, args: &[&str]) -> Out {
    env.cairn(args).env("CAIRN_REPOSITORY", repo).run()
}

/// Every file of a repository directory except lock files.
fn hash_all_but_locks(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut h = hash_all(root);
    h.retain(|k, _| !k.starts_with("locks/") && !k.contains(".tmp-"));
    h
}

#[test]
fn restic_life_cycle_against_cairn_serve() {
    let Some(restic_bin) = restic_bin() else {
        return;
    };
    let env = TestEnv::new();
    let root = env.path("srv");
    std::fs::create_dir_all(&root).unwrap();
    htpasswd(&root.join(".htpasswd"), &["alice"]);
    let server = ServerProc::cairn(&root, &[]);
    let repo = server.url(Some(("alice", USER_PASSWORD)), "/alice/restic/");
    let src = source(&env, 1);
    let r = |args: &[&str]| restic(&restic_bin, &env, &repo, args);

    r(&["init"]).success();
    r(&["backup", src.to_str().unwrap()]).success();
    std::fs::write(src.join("hello.txt"), b"changed\n").unwrap();
    random_file(&src.join("a/new.bin"), 1 << 20, 9);
    r(&["backup", src.to_str().unwrap()]).success();
    let snaps: serde_json::Value =
        serde_json::from_slice(&r(&["snapshots", "--json"]).success().stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2);

    let target = env.path("restore1");
    r(&["restore", "latest", "--target", target.to_str().unwrap()]).success();
    compare(&src, &target);
    r(&["check", "--read-data"]).success();

    r(&["forget", "--keep-last", "1", "--prune"]).success();
    let snaps: serde_json::Value =
        serde_json::from_slice(&r(&["snapshots", "--json"]).success().stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    r(&["check", "--read-data"]).success();
    let target = env.path("restore2");
    r(&["restore", "latest", "--target", target.to_str().unwrap()]).success();
    compare(&src, &target);

    // The server's directory is a local restic repository as it stands.
    let local = root.join("alice/restic");
    assert!(local.join("config").is_file() && local.join("data").is_dir());
    restic(&restic_bin, &env, local.to_str().unwrap(), ["check"]).success();
}

#[test]
fn cairn_life_cycle_against_cairn_serve() {
    let env = TestEnv::new();
    let root = env.path("srv");
    std::fs::create_dir_all(&root).unwrap();
    let htpasswd_file = env.path("users");
    htpasswd(&htpasswd_file, &["alice", "bob"]);
    let server = ServerProc::cairn(&root, &["--htpasswd-file", htpasswd_file.to_str().unwrap()]);
    // Credentials from the environment, not the URL.
    let repo = server.url(None, "/bob/laptop");
    let run = |args: &[&str]| {
        env.cairn(args)
            .env("CAIRN_REPOSITORY", &repo)
            .env("CAIRN_REST_USERNAME", "bob")
            .env("CAIRN_REST_PASSWORD", USER_PASSWORD)
            .run()
    };
    let src = source(&env, 2);
    run(&["init"]).success();
    let first = run(&["backup", "--json", src.to_str().unwrap()]).success();
    std::fs::write(src.join("a/b/c/small.bin"), b"rewritten").unwrap();
    run(&["backup", src.to_str().unwrap()]).success();
    let target = env.path("restore");
    run(&["restore", "latest", "--target", target.to_str().unwrap()]).success();
    compare(&src, &target);
    let check = run(&["check", "--read-data"]).success();
    for out in [&first, &check] {
        let all = format!("{}{}", out.stdout_str(), out.stderr);
        assert!(
            !all.contains(USER_PASSWORD),
            "the password was printed:\n{all}"
        );
    }
    // The data is on the server's disk in the local layout: open it directly.
    let local = root.join("bob/laptop");
    let out = env
        .cairn(["snapshots", "--json"])
        .env("CAIRN_REPOSITORY", &local)
        .run()
        .success();
    assert_eq!(out.json().as_array().unwrap().len(), 2);
    assert!(
        std::fs::read_dir(local.join("data")).unwrap().count() == 256,
        "data/00..ff"
    );
}

#[test]
fn cairn_life_cycle_against_rclone() {
    let env = TestEnv::new();
    let Some(server) = ServerProc::rclone(&env.path("rclone-root")) else {
        return;
    };
    let repo = server.url(None, "/repo/");
    let src = source(&env, 3);
    cairn(&env, &repo, &["init"]).success();
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();
    random_file(&src.join("a/more.bin"), 500_000, 4);
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();
    let target = env.path("restore");
    cairn(
        &env,
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .success();
    compare(&src, &target);
    cairn(&env, &repo, &["check", "--read-data"]).success();
    assert!(env.path("rclone-root/repo/config").is_file());
}

#[test]
fn append_only_blocks_forget_prune() {
    let env = TestEnv::new();
    let root = env.path("srv");
    let server = ServerProc::cairn(&root, &["--no-auth", "--append-only"]);
    let src = source(&env, 4);

    // restic: two backups, then forget --prune is refused.
    if let Some(restic_bin) = restic_bin() {
        let repo = server.url(None, "/restic/");
        let r = |args: &[&str]| restic(&restic_bin, &env, &repo, args);
        r(&["init"]).success();
        r(&["backup", src.to_str().unwrap()]).success();
        std::fs::write(src.join("hello.txt"), b"second\n").unwrap();
        r(&["backup", src.to_str().unwrap()]).success();
        let before = hash_all_but_locks(&root.join("restic"));
        let out = r(&["forget", "--keep-last", "1", "--prune"]);
        assert!(
            !out.status.success(),
            "forget --prune succeeded in append-only mode:\n{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("403") || out.stderr.to_lowercase().contains("forbidden"),
            "{}",
            out.describe()
        );
        let after = hash_all_but_locks(&root.join("restic"));
        assert!(
            before.iter().all(|(k, v)| after.get(k) == Some(v)),
            "files were lost:\n{}",
            describe_changes(&before, &after)
        );
        let snaps: serde_json::Value =
            serde_json::from_slice(&r(&["snapshots", "--json"]).success().stdout).unwrap();
        assert_eq!(snaps.as_array().unwrap().len(), 2);
        r(&["check", "--read-data"]).success();
    }

    // cairn: the same, and its error is one clear line.
    let repo = server.url(None, "/cairn/");
    cairn(&env, &repo, &["init"]).success();
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();
    std::fs::write(src.join("hello.txt"), b"third\n").unwrap();
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();
    let before = hash_all_but_locks(&root.join("cairn"));
    let out = cairn(&env, &repo, &["forget", "--keep-last", "1", "--prune"]);
    assert!(
        !out.status.success(),
        "cairn forget --prune succeeded in append-only mode:\n{}",
        out.describe()
    );
    let errors = out.error_lines();
    assert!(
        errors.iter().any(|l| l.contains("403")),
        "{}",
        out.describe()
    );
    let after = hash_all_but_locks(&root.join("cairn"));
    assert!(
        before.iter().all(|(k, v)| after.get(k) == Some(v)),
        "files were lost:\n{}",
        describe_changes(&before, &after)
    );
    let snaps = cairn(&env, &repo, &["snapshots", "--json"])
        .success()
        .json();
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    cairn(&env, &repo, &["check", "--read-data"]).success();
}

#[test]
fn private_repos_isolate_users() {
    let env = TestEnv::new();
    let root = env.path("srv");
    std::fs::create_dir_all(&root).unwrap();
    htpasswd(&root.join(".htpasswd"), &["alice", "bob"]);
    let server = ServerProc::cairn(&root, &["--private-repos"]);
    let src = source(&env, 5);
    let alice = server.url(Some(("alice", USER_PASSWORD)), "/alice/docs/");
    cairn(&env, &alice, &["init"]).success();
    cairn(&env, &alice, &["backup", src.to_str().unwrap()]).success();

    let bob_on_alice = server.url(Some(("bob", USER_PASSWORD)), "/alice/docs/");
    for args in [&["snapshots"][..], &["init"][..]] {
        let out = cairn(&env, &bob_on_alice, args);
        let line = out.one_line_error();
        assert!(line.contains("401"), "{line}");
    }
    let bob_elsewhere = server.url(Some(("bob", USER_PASSWORD)), "/alice/bobs/");
    assert!(cairn(&env, &bob_elsewhere, &["init"])
        .one_line_error()
        .contains("401"));
    assert!(
        !root.join("alice/bobs").exists(),
        "bob created a repository under alice"
    );

    let bob = server.url(Some(("bob", USER_PASSWORD)), "/bob/");
    cairn(&env, &bob, &["init"]).success();
    cairn(&env, &bob, &["backup", src.to_str().unwrap()]).success();
    if let Some(restic_bin) = restic_bin() {
        assert!(!restic(&restic_bin, &env, &bob_on_alice, ["snapshots"])
            .status
            .success());
    }
    assert_eq!(
        cairn(&env, &alice, &["snapshots", "--json"])
            .success()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_credentials_get_401() {
    let env = TestEnv::new();
    let root = env.path("srv");
    std::fs::create_dir_all(&root).unwrap();
    htpasswd(&root.join(".htpasswd"), &["alice"]);
    let server = ServerProc::cairn(&root, &[]);
    cairn(
        &env,
        &server.url(Some(("alice", USER_PASSWORD)), "/r/"),
        &["init"],
    )
    .success();

    let wrong = server.url(Some(("alice", "not-the-password-xyz")), "/r/");
    let out = cairn(&env, &wrong, &["snapshots"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    let line = out.one_line_error();
    assert!(line.contains("401"), "{line}");
    assert!(
        !out.stderr.contains("not-the-password-xyz")
            && !out.stdout_str().contains("not-the-password-xyz"),
        "{}",
        out.describe()
    );

    let out = cairn(&env, &server.url(None, "/r/"), &["snapshots"]);
    assert!(out.one_line_error().contains("401"));
    assert_eq!(http(server.port, "GET", "/r/keys/", &[], b"").0, 401);
    assert_eq!(
        http(
            server.port,
            "GET",
            "/r/keys/",
            &[("Authorization", &basic_auth("alice"))],
            b""
        )
        .0,
        200
    );
    if let Some(restic_bin) = restic_bin() {
        let out = restic(&restic_bin, &env, &wrong, ["snapshots"]);
        assert!(!out.status.success(), "{}", out.describe());
    }
}

#[test]
fn serve_refuses_private_repos_without_auth() {
    let env = TestEnv::new();
    let root = env.path("srv");
    let out = env
        .cairn([
            "serve",
            "--path",
            root.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--private-repos",
        ])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    let line = out.one_line_error();
    assert!(
        line.contains("--private-repos") && line.contains("--no-auth"),
        "{line}"
    );
    let help = env.cairn(["serve", "--help"]).run().success().stdout_str();
    for flag in [
        "--max-connections-per-address",
        "--max-uploads-per-user",
        "--min-upload-rate",
        "--io-timeout",
    ] {
        assert!(
            help.contains(flag),
            "{flag} missing from serve --help:\n{help}"
        );
    }
}

#[test]
fn tls_with_a_generated_certificate() {
    let env = TestEnv::new();
    let (cert, key) = tls_certificate(env.dir.path());
    let root = env.path("srv");
    let server = ServerProc::cairn(
        &root,
        &[
            "--no-auth",
            "--tls",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let repo = server.url(None, "/r/");
    assert!(repo.starts_with("rest:https://"));

    let out = cairn(&env, &repo, &["init"]);
    let line = out.one_line_error();
    assert!(line.contains("--cacert"), "{line}");

    let src = source(&env, 6);
    let with_ca = |args: &[&str]| {
        env.cairn(["--cacert", cert.to_str().unwrap()])
            .args(args)
            .env("CAIRN_REPOSITORY", &repo)
            .run()
    };
    with_ca(&["init"]).success();
    with_ca(&["backup", src.to_str().unwrap()]).success();
    let target = env.path("restore");
    with_ca(&["restore", "latest", "--target", target.to_str().unwrap()]).success();
    compare(&src, &target);
    with_ca(&["check", "--read-data"]).success();
    // The trust store is the system's: a CA there is trusted without
    // --cacert (and nothing else is, as the first `init` showed).
    env.cairn(["snapshots"])
        .env("CAIRN_REPOSITORY", &repo)
        .env("SSL_CERT_FILE", &cert)
        .run()
        .success();

    if let Some(restic_bin) = restic_bin() {
        let repo = server.url(None, "/restic/");
        let r = |args: &[&str]| {
            restic(
                &restic_bin,
                &env,
                &repo,
                [&["--cacert", cert.to_str().unwrap()], args].concat(),
            )
        };
        r(&["init"]).success();
        r(&["backup", src.to_str().unwrap()]).success();
        r(&["check", "--read-data"]).success();
        assert!(
            !restic(&restic_bin, &env, &repo, ["snapshots"])
                .status
                .success(),
            "restic trusted the certificate without --cacert"
        );
    }
}

#[test]
fn path_traversal_touches_nothing_outside_the_root() {
    let env = TestEnv::new();
    let root = env.path("srv");
    let outside = env.mkdir("outside");
    std::fs::write(outside.join("config"), b"precious").unwrap();
    std::fs::create_dir_all(outside.join("keys")).unwrap();
    let server = ServerProc::cairn(&root, &["--no-auth"]);
    let p = server.port;
    assert_eq!(http(p, "POST", "/r/?create=true", &[], b"").0, 200);
    let before = hash_all(env.dir.path());
    let id = "0".repeat(64);
    let attacks = [
        "/../outside/config".to_string(),
        "/%2e%2e/outside/config".into(),
        "/r/..%2f..%2foutside/config".into(),
        "/r/%2e%2e/%2e%2e/outside/config".into(),
        "/..%2F..%2Foutside/keys/".into(),
        format!("/../outside/keys/{id}"),
        format!("/r/keys/..%2f..%2f..%2foutside%2fkeys%2f{id}"),
        "/r/../../outside/config".into(),
        "/.htpasswd".into(),
        "//outside/config".into(),
    ];
    for a in &attacks {
        for m in ["GET", "HEAD", "DELETE", "POST"] {
            let (status, body) = http(p, m, a, &[], b"evil");
            assert!(status == 404 || status == 400, "{m} {a}: {status}");
            assert!(
                !body.windows(8).any(|w| w == b"precious"),
                "{m} {a} leaked a file outside the root"
            );
        }
        assert!(
            matches!(
                http(p, "POST", &format!("{a}?create=true"), &[], b"").0,
                400 | 404 | 405
            ),
            "create at {a}"
        );
    }
    let mut after = hash_all(env.dir.path());
    after.retain(|k, _| !k.starts_with("srv.log"));
    let mut before = before;
    before.retain(|k, _| !k.starts_with("srv.log"));
    assert!(
        before == after,
        "files changed:\n{}",
        describe_changes(&before, &after)
    );
}

#[test]
fn corrupted_upload_is_rejected() {
    let env = TestEnv::new();
    let root = env.path("srv");
    let server = ServerProc::cairn(&root, &["--no-auth"]);
    let repo = server.url(None, "/r/");
    let src = source(&env, 7);
    cairn(&env, &repo, &["init"]).success();
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();

    let good = b"the bytes named".to_vec();
    let name = cairn_tests::repo::sha256_file(&{
        let f = env.path("good");
        std::fs::write(&f, &good).unwrap();
        f
    });
    for kind in ["data", "index", "snapshots", "keys", "locks"] {
        let (status, _) = http(
            server.port,
            "POST",
            &format!("/r/{kind}/{name}"),
            &[],
            b"other bytes, same name",
        );
        assert_eq!(status, 400, "{kind}");
        assert_eq!(
            http(server.port, "HEAD", &format!("/r/{kind}/{name}"), &[], b"").0,
            404,
            "{kind} stored"
        );
    }
    // A body cut short is refused too, and leaves nothing. The client ends
    // its side and waits until the server has closed the connection: only
    // then is the upload over and its absence meaningful.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.write_all(
            format!("POST /r/data/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nshort")
                .as_bytes(),
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .expect("the server closes a connection whose request body was cut short");
    }
    assert_eq!(
        http(server.port, "HEAD", &format!("/r/data/{name}"), &[], b"").0,
        404
    );
    cairn(&env, &repo, &["check", "--read-data"]).success();
    assert!(
        !hash_all(&root).keys().any(|k| k.contains(".tmp-")),
        "a temporary file was left"
    );
    // The right bytes under that name are accepted (in a scratch repository).
    assert_eq!(
        http(server.port, "POST", "/scratch/?create=true", &[], b"").0,
        200
    );
    assert_eq!(
        http(
            server.port,
            "POST",
            &format!("/scratch/data/{name}"),
            &[],
            &good
        )
        .0,
        200
    );
}

#[test]
fn server_killed_mid_backup() {
    let env = TestEnv::new();
    let root = env.path("srv");
    let mut server = ServerProc::cairn(&root, &["--no-auth"]);
    let repo = server.url(None, "/r/");
    let src = env.mkdir("big");
    for i in 0..60 {
        random_file(&src.join(format!("f{i:02}.bin")), 2 << 20, 100 + i);
    }
    cairn(&env, &repo, &["init"]).success();

    // Small packs, so the backup is many uploads; kill the server once some
    // have landed, and start it again once cairn has met the outage (it
    // says it is retrying) or has given up.
    let mut backup = env.cairn(["--pack-size", "1", "backup", src.to_str().unwrap()]);
    backup.env("CAIRN_REPOSITORY", &repo);
    let mut child = backup.command().spawn().unwrap();
    let stderr = cairn_tests::cmd::StderrWatch::new(&mut child);
    let data_files = |root: &Path| cairn_tests::repo::packs(&root.join("r")).len();
    cairn_tests::cmd::wait_until("3 packs on the server", Duration::from_secs(120), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before the server could be killed:\n{}",
            stderr.text()
        );
        data_files(&root) >= 3
    });
    server.kill();
    let killed_at = data_files(&root);
    let retried = stderr.wait_for("retrying", Duration::from_secs(300));
    server.start();
    let (status, stdout, _) =
        cairn_tests::cmd::wait_capturing(&mut child, Duration::from_secs(300), "cairn backup");
    let first = Out {
        cmdline: "cairn backup (server killed midway)".into(),
        status,
        stdout,
        stderr: stderr.finish(),
    };
    assert!(!first.stderr.contains("panicked"), "{}", first.describe());
    // The backup had uploads left when the server went away: a retrying
    // client meets the outage, says so, and rides over the restart.
    assert!(
        retried,
        "the backup met the outage without retrying:\n{}",
        first.describe()
    );
    assert!(
        first.status.success(),
        "the backup was retrying when the server came back, yet failed:\n{}",
        first.describe()
    );
    eprintln!("note: {killed_at} packs stored when the server was killed");

    // A re-run completes, and the repository is intact.
    cairn(&env, &repo, &["backup", src.to_str().unwrap()]).success();
    cairn(&env, &repo, &["check", "--read-data"]).success();
    let target = env.path("restore");
    cairn(
        &env,
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .success();
    compare(&src, &target);
    // The server's own log shows no internal error.
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
}
