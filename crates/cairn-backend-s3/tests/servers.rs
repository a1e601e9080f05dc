//! The `s3:` backend against real S3 servers on 127.0.0.1, started by each
//! test: moto (any credentials, in memory) and s3s-fs (checks signatures,
//! keeps objects as files). See `cairn_tests::s3`; a test whose server is
//! not installed prints `skipping: ...` and returns.

use cairn_backend::conformance::{self, name_of};
use cairn_backend::{Backend, ErrorKind, FileKind, LocalBackend, RetryBackend, RetryPolicy};
use cairn_backend_s3::{S3Backend, S3Config, S3Credentials};
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn config(endpoint: &str, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        endpoint: Some(endpoint.to_string()),
        bucket: bucket.into(),
        prefix: prefix.into(),
        credentials: Some(S3Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
        }),
        ..Default::default()
    }
}

fn open(server: &S3Server, bucket: &str, prefix: &str) -> S3Backend {
    S3Backend::open(config(&server.endpoint(), bucket, prefix)).unwrap()
}

/// Deterministic bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn conformance_on_moto() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = S3Server::moto(dir.path()) else {
        return;
    };
    // moto now and then answers 500 (InternalError) to one of several
    // concurrent PUTs of one key, as S3 itself may: S3 asks clients to
    // retry those, and cairn always does, through the RetryBackend the
    // location registry wraps around every backend. So the contracts run
    // through one here; s3s-fs below runs them on the bare backend.
    let retried = |b: S3Backend| RetryBackend::new(b, quick_retries());
    // Two repositories side by side under prefixes of one bucket.
    conformance::run(&retried(open(&server, "cairn-conformance", "repos/one")));
    conformance::run(&retried(open(&server, "cairn-conformance", "repos/two")));
    // A bucket outside us-east-1 needs its region in the CreateBucket call.
    let mut cfg = config(&server.endpoint(), "cairn-eu", "");
    cfg.region = Some("eu-west-1".into());
    conformance::run(&retried(S3Backend::open(cfg).unwrap()));
}

/// Five attempts within about two seconds.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        first_contact_attempts: 1,
    }
}

#[test]
fn conformance_on_s3s_fs_and_the_local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s3s");
    let Some(server) = S3Server::s3s_fs(&data) else {
        return;
    };
    let b = open(&server, "cairn-root", "");
    conformance::run(&b);
    // The contracts remove what they wrote, the config included.
    b.write(FileKind::Config, "config", b"cfg").unwrap();
    // s3s-fs keeps each object as a file at its key: the bucket is laid
    // out exactly as a local repository, and reads as one.
    let bytes = b"a pack".to_vec();
    let name = name_of(&bytes);
    b.write(FileKind::Data, &name, &bytes).unwrap();
    let local = LocalBackend::new(data.join("cairn-root"));
    assert!(data
        .join("cairn-root/data")
        .join(&name[..2])
        .join(&name)
        .is_file());
    assert_eq!(local.read(FileKind::Data, &name).unwrap(), bytes);
    assert_eq!(local.read(FileKind::Config, "config").unwrap(), b"cfg");
    // And the other way: a file a local repository wrote is read over S3.
    let idx = b"an index".to_vec();
    let idx_name = name_of(&idx);
    local.write(FileKind::Index, &idx_name, &idx).unwrap();
    assert_eq!(b.read(FileKind::Index, &idx_name).unwrap(), idx);
    assert_eq!(b.list(FileKind::Index).unwrap().len(), 1);
}

/// More than one page of ListObjectsV2 (1,000 keys), spread over shards.
fn list_many(b: &S3Backend) {
    b.create().unwrap();
    let n = 1_100usize;
    let files: BTreeMap<String, u64> = (0..n)
        .map(|i| {
            let body = format!("file {i}").into_bytes();
            (name_of(&body), body.len() as u64)
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let b = &b;
            s.spawn(move || {
                for i in (t..n).step_by(8) {
                    let body = format!("file {i}").into_bytes();
                    b.write(FileKind::Data, &name_of(&body), &body).unwrap();
                }
            });
        }
    });
    let listed: BTreeMap<String, u64> = b
        .list(FileKind::Data)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    assert_eq!(listed.len(), n, "every file listed once");
    assert_eq!(listed, files);
    assert!(b.list(FileKind::Index).unwrap().is_empty());
}

#[test]
fn listings_go_past_a_thousand_objects() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(moto) = S3Server::moto(dir.path()) {
        list_many(&open(&moto, "many", "p"));
    }
    if let Some(s3s) = S3Server::s3s_fs(&dir.path().join("s3s")) {
        list_many(&open(&s3s, "many", "p"));
    }
}

fn ranges(b: &S3Backend) {
    b.create().unwrap();
    let data = noise(1000, 7);
    let name = name_of(&data);
    b.write(FileKind::Snapshot, &name, &data).unwrap();
    let read = |off: u64, len: Option<u64>| b.read_range(FileKind::Snapshot, &name, off, len);
    assert_eq!(read(0, None).unwrap(), data);
    assert_eq!(read(0, Some(1)).unwrap(), &data[..1]);
    assert_eq!(read(999, Some(1)).unwrap(), &data[999..]);
    assert_eq!(read(999, None).unwrap(), &data[999..]);
    assert_eq!(read(0, Some(1000)).unwrap(), data);
    assert_eq!(read(1000, None).unwrap(), b"", "from the end to the end");
    assert_eq!(read(1000, Some(0)).unwrap(), b"");
    assert_eq!(read(500, Some(0)).unwrap(), b"");
    for (off, len) in [
        (999, Some(2)),
        (0, Some(1001)),
        (1000, Some(1)),
        (1001, None),
        (1001, Some(0)),
        (5000, Some(10)),
    ] {
        let e = read(off, len).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{off}+{len:?}: {}", e.message);
        assert!(
            e.message.contains("beyond the end"),
            "{off}+{len:?}: {}",
            e.message
        );
    }
    let missing = name_of(b"missing");
    let e = b
        .read_range(FileKind::Snapshot, &missing, 10, Some(5))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    // An empty file.
    let empty = name_of(b"");
    b.write(FileKind::Lock, &empty, b"").unwrap();
    assert_eq!(b.read(FileKind::Lock, &empty).unwrap(), b"");
    assert_eq!(b.stat(FileKind::Lock, &empty).unwrap(), 0);
}

#[test]
fn ranged_reads_at_the_edges() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(moto) = S3Server::moto(dir.path()) {
        ranges(&open(&moto, "ranges", ""));
    }
    if let Some(s3s) = S3Server::s3s_fs(&dir.path().join("s3s")) {
        ranges(&open(&s3s, "ranges", "x"));
    }
}

#[test]
fn a_100_mib_object_goes_up_in_parts_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = S3Server::s3s_fs(&dir.path().join("s3s")) else {
        return;
    };
    let b = open(&server, "large", "repo");
    b.create().unwrap();
    let data = noise(100 << 20, 11);
    let name = name_of(&data);
    let t = Instant::now();
    b.write(FileKind::Data, &name, &data).unwrap();
    let up = t.elapsed();
    assert_eq!(b.stat(FileKind::Data, &name).unwrap(), data.len() as u64);
    let t = Instant::now();
    let back = b.read(FileKind::Data, &name).unwrap();
    let down = t.elapsed();
    assert!(back == data, "the 100 MiB object reads back unchanged");
    let mib_s = |d: Duration| 100.0 / d.as_secs_f64();
    eprintln!(
        "note: 100 MiB to s3s-fs: up {:.2} s ({:.0} MiB/s), down {:.2} s ({:.0} MiB/s)",
        up.as_secs_f64(),
        mib_s(up),
        down.as_secs_f64(),
        mib_s(down)
    );
    let tail = b
        .read_range(FileKind::Data, &name, (100 << 20) - 10, None)
        .unwrap();
    assert_eq!(tail, &data[data.len() - 10..]);
    assert_eq!(
        b.write(FileKind::Data, &name, b"x").unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    drop(back);

    // Streamed: past the memory buffer into a temporary file, uploaded on commit.
    let data2 = noise(100 << 20, 12);
    let name2 = name_of(&data2);
    let mut w = b.data_writer().unwrap().unwrap();
    for chunk in data2.chunks(3 << 20) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(b.list(FileKind::Data).unwrap().len(), 1, "not visible yet");
    w.commit(&name2).unwrap();
    assert!(b.read(FileKind::Data, &name2).unwrap() == data2);
    let mut listed: Vec<_> = b
        .list(FileKind::Data)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    listed.sort();
    let mut want = vec![(name, 100u64 << 20), (name2, 100u64 << 20)];
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn create_makes_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s3s");
    let Some(server) = S3Server::s3s_fs(&data) else {
        return;
    };
    let b = open(&server, "fresh-bucket", "a/repo");
    let e = b.stat(FileKind::Config, "config").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    let e = b.list(FileKind::Key).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    assert!(e.message.contains("fresh-bucket"), "{}", e.message);
    assert!(!data.join("fresh-bucket").exists());
    b.create().unwrap();
    assert!(data.join("fresh-bucket").is_dir());
    b.create().unwrap();
    assert!(b.list(FileKind::Key).unwrap().is_empty());
    b.write(FileKind::Config, "config", b"c").unwrap();
    assert!(data.join("fresh-bucket/a/repo/config").is_file());
}

#[test]
fn wrong_credentials_are_denied_quickly_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = S3Server::s3s_fs(&dir.path().join("s3s")) else {
        return;
    };
    open(&server, "guarded", "").create().unwrap();
    let wrong_secret = "wrong-secret-do-not-print-me";
    for (key, secret) in [(ACCESS_KEY, wrong_secret), ("UNKNOWNKEY", wrong_secret)] {
        let mut cfg = config(&server.endpoint(), "guarded", "repo");
        cfg.credentials = Some(S3Credentials {
            access_key_id: key.into(),
            secret_access_key: secret.into(),
            session_token: None,
        });
        let b = S3Backend::open(cfg).unwrap();
        let t = Instant::now();
        let errors = [
            b.stat(FileKind::Config, "config").unwrap_err(),
            b.list(FileKind::Snapshot).unwrap_err(),
            b.write(FileKind::Config, "config", b"c").unwrap_err(),
            b.read(FileKind::Config, "config").unwrap_err(),
            b.create().unwrap_err(),
        ];
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        for e in errors {
            assert_eq!(e.kind, ErrorKind::Denied, "{}", e.message);
            assert!(!e.message.contains(wrong_secret), "{}", e.message);
            assert!(!e.message.contains(SECRET_KEY), "{}", e.message);
            assert!(
                e.message
                    .contains(&format!("s3:{}/guarded/repo", server.endpoint())),
                "{}",
                e.message
            );
            assert!(e.message.contains("bucket guarded"), "{}", e.message);
        }
        // Requests with a body name the object and what the server said.
        let e = b.read(FileKind::Config, "config").unwrap_err();
        assert!(e.message.contains("repo/config"), "{}", e.message);
        assert!(
            e.message.contains("403") && e.message.contains("AWS_"),
            "{}",
            e.message
        );
        eprintln!("note: {}", e.message);
    }
}

#[test]
fn an_unreachable_endpoint_fails_within_seconds() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = S3Backend::open(config(&format!("http://127.0.0.1:{port}"), "b", "r")).unwrap();
    let t = Instant::now();
    let e = b.stat(FileKind::Config, "config").unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
    assert!(
        e.message
            .contains(&format!("s3:http://127.0.0.1:{port}/b/r")),
        "{}",
        e.message
    );
    eprintln!("note: {}", e.message);

    // A listener whose accept queue is full: connection attempts hang
    // (the kernel drops the SYNs), as with a host that does not answer.
    let Some(hung) = full_listener() else {
        cairn_tests::skip("the hanging-connect half: could not fill a listen queue");
        return;
    };
    let b = S3Backend::open(config(&format!("http://{}", hung.addr), "b", "r")).unwrap();
    let t = Instant::now();
    let e = b.stat(FileKind::Config, "config").unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
    assert!(
        took < cairn_backend_s3::CONNECT_TIMEOUT + Duration::from_secs(3),
        "{took:?}: {}",
        e.message
    );
    eprintln!("note: after {took:?}: {}", e.message);
}

/// A listening socket with a backlog of 0 that never accepts, and the
/// connections that fill its queue.
struct FullListener {
    _listener: std::os::fd::OwnedFd,
    _fillers: Vec<std::net::TcpStream>,
    addr: std::net::SocketAddr,
}

fn full_listener() -> Option<FullListener> {
    use std::os::fd::{AsRawFd, OwnedFd};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    // Re-listen with the smallest backlog (std uses 128).
    let fd: OwnedFd = listener.into();
    // SAFETY: `fd` is a valid listening socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), 0) } != 0 {
        return None;
    }
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => {
                return Some(FullListener {
                    _listener: fd,
                    _fillers: fillers,
                    addr,
                })
            }
        }
    }
    None
}

#[test]
fn a_restarted_server_is_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut server) = S3Server::s3s_fs(&dir.path().join("s3s")) else {
        return;
    };
    let b = open(&server, "restart", "r");
    b.create().unwrap();
    let one = noise(50_000, 1);
    b.write(FileKind::Index, &name_of(&one), &one).unwrap();

    server.kill();
    let t = Instant::now();
    let e = b.read(FileKind::Index, &name_of(&one)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Back on the same port, with the same data directory.
    server.start();
    let b = RetryBackend::new(
        b,
        RetryPolicy {
            // The server may still be starting when this wrapper first asks.
            first_contact_attempts: 5,
            ..quick_retries()
        },
    );
    assert_eq!(b.read(FileKind::Index, &name_of(&one)).unwrap(), one);
    let two = noise(50_000, 2);
    b.write(FileKind::Index, &name_of(&two), &two).unwrap();
    assert_eq!(b.list(FileKind::Index).unwrap().len(), 2);
    assert_eq!(b.read(FileKind::Index, &name_of(&two)).unwrap(), two);
}
