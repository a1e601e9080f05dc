//! `cairn serve` against hostile or careless clients and disks: quota
//! accounting under concurrent deletes, repository creation and crash
//! leftovers; slow uploads; password guessing; symbolic links inside the
//! data directory; slow headers and connection floods; control characters
//! and the access log. Each test starts the real server on 127.0.0.1 and
//! talks HTTP to it.

use cairn_server::{Server, ServerOptions};
use cairn_tests::rest::{basic_auth_with as basic, request as req, serve};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What one repository's directories count against the quota.
const REPO_DIRS: u64 = 262 * 4096;

/// Every `.tmp-` file under `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// Wait (up to 20 s) until `f` holds: for the server's own pace, not a guess.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Read a whole answer (the server closes the connection); the status, or
/// `None` when the connection was closed or reset without one.
fn answer(c: &mut TcpStream, within: Duration) -> Option<u16> {
    c.set_read_timeout(Some(within)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "the server neither answered nor closed within {within:?}: {:?}",
                    String::from_utf8_lossy(&raw)
                )
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
}

#[test]
fn concurrent_deletes_release_a_file_once() {
    for append_only in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let max = REPO_DIRS + 10_000;
        let s = serve(&dir.path().join("root"), |o| {
            o.max_size = Some(max);
            o.append_only = append_only;
            o.max_connections_per_address = 256;
        });
        let a = s.addr();
        assert_eq!(req(a, "POST", "/r/?create=true", &[], b"").status, 200);
        for round in 0..30u8 {
            let lock = vec![round; 6000];
            let path = format!("/r/locks/{}", sha(&lock));
            assert_eq!(req(a, "POST", &path, &[], &lock).status, 200);
            let go = Arc::new(Barrier::new(32));
            let deletes: Vec<_> = (0..32)
                .map(|_| {
                    let (go, path) = (go.clone(), path.clone());
                    std::thread::spawn(move || {
                        go.wait();
                        req(a, "DELETE", &path, &[], b"").status
                    })
                })
                .collect();
            for d in deletes {
                assert_eq!(d.join().unwrap(), 200);
            }
            assert_eq!(req(a, "HEAD", &path, &[], b"").status, 404);
        }
        // The quota holds the repository's directories and nothing else:
        // 10 000 bytes fit, one more does not.
        let fill: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        assert_eq!(
            req(a, "POST", &format!("/r/data/{}", sha(&fill)), &[], &fill).status,
            200,
            "append-only: {append_only}"
        );
        assert_eq!(
            req(a, "POST", &format!("/r/keys/{}", sha(b"x")), &[], b"x").status,
            507,
            "the deletes gave back more than they removed (append-only: {append_only})"
        );
    }
}

#[test]
fn repository_creation_counts_against_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = serve(&root, |o| o.max_size = Some(REPO_DIRS + 5000));
    let a = s.addr();
    assert_eq!(req(a, "POST", "/a/?create=true", &[], b"").status, 200);
    assert_eq!(
        req(a, "POST", "/a/?create=true", &[], b"").status,
        200,
        "an existing repository costs nothing more"
    );
    assert_eq!(req(a, "POST", "/b/?create=true", &[], b"").status, 507);
    assert!(
        !root.join("b").exists(),
        "nothing of the refused repository"
    );
    assert_eq!(
        req(a, "POST", "/c/d/?create=true", &[], b"").status,
        507,
        "nested"
    );
    assert!(!root.join("c").exists());
    let d = vec![7u8; 4000];
    assert_eq!(
        req(a, "POST", &format!("/a/data/{}", sha(&d)), &[], &d).status,
        200
    );
    let e = vec![8u8; 2000];
    assert_eq!(
        req(a, "POST", &format!("/a/data/{}", sha(&e)), &[], &e).status,
        507
    );
}

#[test]
fn stale_temporary_files_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    {
        let s = serve(&root, |_| {});
        assert_eq!(
            req(s.addr(), "POST", "/r/?create=true", &[], b"").status,
            200
        );
    }
    // What a crash mid-upload leaves, and a local writer's file in progress.
    let ours = root.join("r/data/ab/.tmp-serve-ab00-0123456789abcdef");
    let theirs = root.join("r/data/.tmp-pack-0123456789abcdef");
    // More than the repository's directories count: the test fails even
    // where directories are not counted.
    std::fs::write(&ours, vec![0u8; 600_000]).unwrap();
    std::fs::write(&theirs, vec![0u8; 600_000]).unwrap();
    let s = serve(&root, |o| o.max_size = Some(REPO_DIRS + 10_000));
    let a = s.addr();
    let d = vec![1u8; 9000];
    assert_eq!(
        req(a, "POST", &format!("/r/data/{}", sha(&d)), &[], &d).status,
        200,
        "temporary files were counted against the quota"
    );
    assert!(!ours.exists(), "the server's leftover is removed at start");
    assert!(theirs.exists(), "another writer's file is left alone");
}

#[test]
fn a_quota_already_passed_answers_507() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    {
        let s = serve(&root, |_| {});
        assert_eq!(
            req(s.addr(), "POST", "/r/?create=true", &[], b"").status,
            200
        );
    }
    // The limit was lowered below what is stored.
    let s = serve(&root, |o| o.max_size = Some(1000));
    let a = s.addr();
    let d = b"more".to_vec();
    assert_eq!(
        req(a, "POST", &format!("/r/data/{}", sha(&d)), &[], &d).status,
        507
    );
    assert_eq!(
        req(a, "POST", "/r/?create=true", &[], b"").status,
        200,
        "an existing repository needs nothing more"
    );
    assert_eq!(req(a, "POST", "/s/?create=true", &[], b"").status, 507);
    assert_eq!(req(a, "GET", "/r/keys/", &[], b"").status, 200);
}

/// A POST of `len` declared bytes, sending one byte every `every` from a
/// thread until told to stop or the server closes; returns the connection
/// (to read the answer) and the stop switch.
fn trickle(
    a: SocketAddr,
    len: usize,
    every: Duration,
) -> (TcpStream, Arc<std::sync::atomic::AtomicBool>) {
    let data = vec![5u8; len];
    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(
        format!(
            "POST /data/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n",
            sha(&data)
        )
        .as_bytes(),
    )
    .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut w, s) = (c.try_clone().unwrap(), stop.clone());
    std::thread::spawn(move || {
        for b in data {
            if s.load(std::sync::atomic::Ordering::Relaxed) || w.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    (c, stop)
}

#[test]
fn slow_uploads_hold_nothing_others_need() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = serve(&root, |o| {
        o.io_timeout = Duration::from_secs(2);
        o.max_uploads = 2;
        o.max_uploads_per_user = 32;
    });
    let a = s.addr();
    assert_eq!(req(a, "POST", "/?create=true", &[], b"").status, 200);
    // More slow uploads than shared slots, each sending 10 bytes a second.
    let slow: Vec<_> = (0..6)
        .map(|_| trickle(a, 100_000, Duration::from_millis(100)))
        .collect();
    wait_for("the slow uploads to start", || {
        temporaries(&root).len() == 6
    });
    // Another client's upload (bigger than one buffer) goes through now.
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 13) as u8).collect();
    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(
        format!(
            "POST /data/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            sha(&data),
            data.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.write_all(&data).unwrap();
    assert_eq!(answer(&mut c, Duration::from_secs(15)), Some(200));
    // The slow ones are dropped for their rate, well before they finish.
    for (mut c, stop) in slow {
        assert_eq!(answer(&mut c, Duration::from_secs(15)), Some(408));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    wait_for("their temporary files to go", || {
        temporaries(&root).is_empty()
    });
}

#[test]
fn uploads_per_user_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = serve(&root, |o| {
        o.io_timeout = Duration::from_secs(1);
        o.max_uploads_per_user = 2;
        o.min_upload_rate = 1;
    });
    let a = s.addr();
    assert_eq!(req(a, "POST", "/?create=true", &[], b"").status, 200);
    let busy: Vec<_> = (0..2)
        .map(|_| trickle(a, 100_000, Duration::from_millis(20)))
        .collect();
    wait_for("two uploads in progress", || temporaries(&root).len() == 2);
    let d = b"third".to_vec();
    assert_eq!(
        req(a, "POST", &format!("/data/{}", sha(&d)), &[], &d).status,
        429
    );
    for (c, stop) in busy {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(c);
    }
    wait_for("the slots to be free", || temporaries(&root).is_empty());
    assert_eq!(
        req(a, "POST", &format!("/data/{}", sha(&d)), &[], &d).status,
        200
    );
}

fn bcrypt_htpasswd(dir: &Path, cost: u32) -> std::path::PathBuf {
    let file = dir.join("htpasswd");
    let hash = bcrypt::hash("password", cost).unwrap();
    std::fs::write(&file, format!("alice:{hash}\n")).unwrap();
    file
}

#[test]
fn password_guessing_is_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let file = bcrypt_htpasswd(dir.path(), 4);
    let s = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(file.clone());
        o.max_auth_failures = 3;
    });
    let a = s.addr();
    let alice = basic("alice", "password");
    let h = [("Authorization", alice.as_str())];
    assert_eq!(req(a, "POST", "/?create=true", &h, b"").status, 200);
    for i in 0..3 {
        let wrong = basic("alice", &format!("guess{i}"));
        assert_eq!(
            req(a, "GET", "/keys/", &[("Authorization", &wrong)], b"").status,
            401
        );
    }
    for creds in [basic("alice", "guess9"), basic("nobody", "password")] {
        let r = req(a, "GET", "/keys/", &[("Authorization", &creds)], b"");
        assert_eq!((r.status, r.header("Retry-After").is_some()), (429, true));
    }
    // A client whose password was verified a moment ago still gets in.
    assert_eq!(req(a, "GET", "/keys/", &h, b"").status, 200);
}

#[test]
fn password_checks_wait_in_a_bounded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let file = bcrypt_htpasswd(dir.path(), 10);
    let s = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(file.clone());
        o.auth_threads = 1;
        o.auth_queue = 2;
        o.max_auth_failures = 1000;
    });
    let a = s.addr();
    let alice = basic("alice", "password");
    let h = [("Authorization", alice.as_str())];
    assert_eq!(req(a, "POST", "/?create=true", &h, b"").status, 200);
    let guess = basic("alice", "guess");
    let mut flood: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(a).unwrap();
            c.write_all(
                format!(
                    "GET /keys/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {guess}\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            c
        })
        .collect();
    // Meanwhile a verified client is served.
    assert_eq!(req(a, "GET", "/keys/", &h, b"").status, 200);
    let answers: Vec<Option<u16>> = flood
        .iter_mut()
        .map(|c| answer(c, Duration::from_secs(30)))
        .collect();
    assert!(
        answers.iter().all(|s| *s == Some(401) || *s == Some(503)),
        "{answers:?}"
    );
    assert!(
        answers.contains(&Some(503)),
        "checks beyond the queue are refused at once: {answers:?}"
    );
}

#[test]
fn symbolic_links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    let secret = b"secret bytes".to_vec();
    let id = sha(&secret);
    std::fs::create_dir_all(outside.join("locks")).unwrap();
    std::fs::create_dir_all(outside.join(&id[..2])).unwrap();
    for p in [
        outside.join(&id),
        outside.join("locks").join(&id),
        outside.join(&id[..2]).join(&id),
        outside.join("config"),
    ] {
        std::fs::write(p, &secret).unwrap();
    }
    let s = serve(&root, |_| {});
    let a = s.addr();
    for r in ["r", "victim"] {
        assert_eq!(
            req(a, "POST", &format!("/{r}/?create=true"), &[], b"").status,
            200
        );
    }
    let link = |target: &Path, at: &str| {
        let at = root.join(at);
        let _ = std::fs::remove_dir(&at);
        std::os::unix::fs::symlink(target, at).unwrap();
    };
    // A file, a type directory, a data shard, a whole repository, and a
    // link into another repository.
    link(&outside.join(&id), &format!("r/keys/{id}"));
    link(&outside.join("locks"), "r/locks");
    link(&outside.join(&id[..2]), &format!("r/data/{}", &id[..2]));
    link(&outside, "elsewhere");
    link(&root.join("victim"), "sneaky");
    std::fs::write(root.join("victim/config"), b"victim's config").unwrap();

    for p in [
        format!("/r/keys/{id}"),
        format!("/r/locks/{id}"),
        format!("/r/data/{id}"),
        "/elsewhere/config".to_string(),
        "/sneaky/config".to_string(),
    ] {
        for m in ["HEAD", "GET", "DELETE"] {
            let r = req(a, m, &p, &[], b"");
            assert!(
                r.status == 404 || r.status == 403,
                "{m} {p}: {} {:?}",
                r.status,
                r.text()
            );
            assert!(!r.body.windows(secret.len()).any(|w| w == secret));
        }
    }
    for p in ["/r/locks/", "/r/data/", "/elsewhere/keys/", "/sneaky/keys/"] {
        let r = req(a, "GET", p, &[], b"");
        assert!(
            r.status == 404 || r.text() == "[]",
            "GET {p}: {} {}",
            r.status,
            r.text()
        );
    }
    // Uploads through a link land nowhere.
    let other = b"other".to_vec();
    let oid = sha(&other);
    for p in [
        format!("/r/locks/{oid}"),
        format!("/elsewhere/keys/{oid}"),
        format!("/sneaky/keys/{oid}"),
    ] {
        let r = req(a, "POST", &p, &[], &other);
        assert!(r.status == 404 || r.status == 403, "POST {p}: {}", r.status);
    }
    let r = req(a, "POST", &format!("/r/keys/{id}"), &[], &secret);
    assert_eq!(r.status, 403, "a link is an existing name: never replaced");
    assert_eq!(
        req(a, "POST", "/elsewhere/?create=true", &[], b"").status,
        404
    );

    // Everything outside (and in the other repository) is intact.
    for p in [
        outside.join(&id),
        outside.join("locks").join(&id),
        outside.join(&id[..2]).join(&id),
        outside.join("config"),
    ] {
        assert_eq!(std::fs::read(&p).unwrap(), secret, "{}", p.display());
    }
    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expect = vec![
        id.clone(),
        id[..2].to_string(),
        "config".into(),
        "locks".into(),
    ];
    expect.sort();
    assert_eq!(names, expect, "nothing created outside");
    assert!(std::fs::read_dir(root.join("victim/keys"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(
        std::fs::read(root.join("victim/config")).unwrap(),
        b"victim's config"
    );
}

#[test]
fn slow_headers_are_cut_at_the_io_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("root"), |o| {
        o.io_timeout = Duration::from_secs(1)
    });
    let a = s.addr();
    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(b"GET /config HTTP/1.1\r\nHost: x\r\n").unwrap();
    // A header line every 200 ms, for as long as the connection lasts:
    // never idle long enough for the I/O timeout, but the headers never
    // end, so only the server's cut ends it (`answer` fails the test if
    // nothing comes within its deadline).
    let mut w = c.try_clone().unwrap();
    std::thread::spawn(move || {
        for i in 0.. {
            if w.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let status = answer(&mut c, Duration::from_secs(60));
    assert!(status.is_none() || status == Some(408), "{status:?}");
}

#[test]
fn connections_per_address_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("root"), |o| {
        o.max_connections_per_address = 3
    });
    let a = s.addr();
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(a).unwrap()).collect();
    // The fourth is refused at once, not queued.
    let mut c = TcpStream::connect(a).unwrap();
    let _ = c.write_all(b"GET /keys/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let status = answer(&mut c, Duration::from_secs(10));
    assert!(status.is_none() || status == Some(429), "{status:?}");
    drop(held);
    wait_for("a connection slot", || {
        let mut c = TcpStream::connect(a).unwrap();
        let _ = c.write_all(b"GET /keys/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        answer(&mut c, Duration::from_secs(10)) == Some(404)
    });
}

#[test]
fn private_repos_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Server::new(ServerOptions {
        path: dir.path().join("root"),
        listen: "127.0.0.1:0".into(),
        no_auth: true,
        private_repos: true,
        quiet: true,
        ..Default::default()
    })
    .err()
    .expect("--no-auth --private-repos must not start");
    let msg = e.to_string();
    assert!(
        msg.contains("--private-repos") && msg.contains("--no-auth") && !msg.contains('\n'),
        "{msg}"
    );
}

#[test]
fn control_characters_and_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = dir.path().join("access.log");
    let s = serve(&root, |o| o.log = Some(log.clone()));
    let a = s.addr();
    let mut sent = 0;
    for p in [
        "/a%0Ab/?create=true",
        "/a%0d%0a%1b%5b31m/?create=true",
        "/x%7f/?create=true",
    ] {
        assert_eq!(req(a, "POST", p, &[], b"").status, 400, "{p}");
        sent += 1;
    }
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "nothing created"
    );
    assert_eq!(req(a, "POST", "/r/?create=true", &[], b"").status, 200);
    let r = req(
        a,
        "GET",
        "/r/keys/",
        &[("User-Agent", "evil\" \"x\\y\tz"), ("Referer", "\"-\"")],
        b"",
    );
    assert_eq!(r.status, 200);
    sent += 2;
    // A directory where an object should be is not an object.
    let id = sha(b"dir");
    std::fs::create_dir(root.join("r/snapshots").join(&id)).unwrap();
    std::fs::create_dir(root.join("r/data").join(&id[..2]).join(&id)).unwrap();
    for p in [format!("/r/snapshots/{id}"), format!("/r/data/{id}")] {
        for m in ["HEAD", "GET"] {
            assert_eq!(req(a, m, &p, &[], b"").status, 404, "{m} {p}");
            sent += 1;
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), sent, "one line per request:\n{text}");
    assert!(
        lines[4].ends_with(r#" "\"-\"" "evil\" \"x\\y\x09z""#),
        "{}",
        lines[4]
    );
    for l in &lines {
        // Every line splits into exactly the combined format's quoted fields.
        let unescaped_quotes = l
            .char_indices()
            .filter(|&(i, c)| c == '"' && !escaped(l, i))
            .count();
        assert_eq!(unescaped_quotes, 6, "{l}");
    }
}

/// Is the character at `i` preceded by an odd number of backslashes?
fn escaped(s: &str, i: usize) -> bool {
    s[..i].bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}
