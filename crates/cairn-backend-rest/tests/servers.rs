//! The `rest:` backend against real servers on 127.0.0.1: `cairn serve`
//! (in this process, on its own threads) and `rclone serve restic` (the
//! binary from `$RCLONE_BIN` or `rclone` on PATH), both started by the
//! test launcher of `cairn-tests` (`tests/support/rest.rs`).

use cairn_backend::{conformance, Backend, ErrorKind, FileKind, RetryBackend, RetryPolicy};
use cairn_backend_rest::{RestBackend, RestOptions};
use cairn_tests::rest::{serve, tls_certificate, ServerProc};
use std::net::TcpListener;
use std::time::Duration;

fn client(url: &str) -> RestBackend {
    RestBackend::new(url, RestOptions::default()).unwrap()
}

#[test]
fn conformance_against_cairn_serve() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), |_| {});
    // The root repository, and one two levels down.
    conformance::run(&client(server.url()));
    conformance::run(&client(&format!("{}alice/laptop/", server.url())));
    // The files are where a local repository has them (the contracts
    // remove what they wrote, the config included).
    client(&format!("{}alice/laptop/", server.url()))
        .write(FileKind::Config, "config", b"config bytes")
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("alice/laptop/config")).unwrap(),
        b"config bytes"
    );
    assert!(dir.path().join("alice/laptop/data/ff").is_dir());
}

#[test]
fn conformance_against_rclone() {
    let dir = tempfile::tempdir().unwrap();
    let Some(rclone) = ServerProc::rclone(&dir.path().join("root")) else {
        return;
    };
    let b = client(&rclone.url(None, "repo/"));
    // rclone 1.60 writes a file under its final name as the bytes arrive,
    // so a listing during an upload can show it short: restic has the same
    // window with this server.
    conformance::run_except(&b, &["listing_while_writing"]);
    b.write(FileKind::Config, "config", b"config bytes")
        .unwrap();
    assert!(dir.path().join("root/repo/config").is_file());
}

#[test]
fn the_same_repository_through_cairn_serve_and_as_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), |_| {});
    let rest = client(&format!("{}r/", server.url()));
    rest.create().unwrap();
    let data = b"pack bytes".to_vec();
    let name = conformance::name_of(&data);
    rest.write(FileKind::Data, &name, &data).unwrap();
    let local = cairn_backend::LocalBackend::new(dir.path().join("r"));
    assert_eq!(local.read(FileKind::Data, &name).unwrap(), data);
    let listed = local.list(FileKind::Data).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(dir
        .path()
        .join("r/data")
        .join(&name[..2])
        .join(&name)
        .is_file());
}

#[test]
fn errors_have_kinds_and_name_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap(); // password
    let server = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(htpasswd.clone());
        o.append_only = true;
        // The repository's 262 directories count 4 KiB each, then 100 000 bytes.
        o.max_size = Some(262 * 4096 + 100_000);
    });
    let addr = server.addr();
    let good = client(&format!("rest:http://alice:password@{addr}/repo/"));
    good.create().unwrap();

    // Wrong password: Denied, and the password is not in the message.
    let bad = client(&format!("rest:http://alice:hunter2@{addr}/repo/"));
    let e = bad.stat(FileKind::Config, "config").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied);
    assert!(
        e.message.contains("401") && !e.message.contains("hunter2"),
        "{}",
        e.message
    );

    // Credentials from the options (the CLI's environment variables).
    let opts = RestOptions {
        username: Some("alice".into()),
        password: Some("password".into()),
        ..Default::default()
    };
    RestBackend::new(&format!("rest:http://{addr}/repo/"), opts)
        .unwrap()
        .list(FileKind::Key)
        .unwrap();

    // Append-only: a delete is refused, a lock's is not.
    let data = vec![7u8; 1000];
    let name = conformance::name_of(&data);
    good.write(FileKind::Snapshot, &name, &data).unwrap();
    let e = good.remove(FileKind::Snapshot, &name).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied);
    assert!(
        e.message.contains(&format!("DELETE snapshots/{name}")) && e.message.contains("403"),
        "{}",
        e.message
    );
    assert!(good.exists(FileKind::Snapshot, &name).unwrap());
    good.write(FileKind::Lock, &name, &data).unwrap();
    good.remove(FileKind::Lock, &name).unwrap();

    // Writing an existing file: AlreadyExists.
    assert_eq!(
        good.write(FileKind::Snapshot, &name, &data)
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );

    // Past the quota: NoSpace, and nothing stored.
    let big = vec![1u8; 200_000];
    let big_name = conformance::name_of(&big);
    let e = good.write(FileKind::Data, &big_name, &big).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSpace, "{}", e.message);
    assert!(e.message.contains("507"), "{}", e.message);
    assert!(!good.exists(FileKind::Data, &big_name).unwrap());

    // A missing file.
    let e = good.read(FileKind::Index, &big_name).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains(&format!("index/{big_name}")),
        "{}",
        e.message
    );
}

#[test]
fn a_restarted_server_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), |_| {});
    let addr = server.addr();
    let url = format!("{}repo/", server.url());
    // Told of every retry: the server comes back once the client has
    // demonstrably failed and is waiting, not after a guessed delay.
    let (retried_tx, retried_rx) = std::sync::mpsc::channel();
    let retried_tx = std::sync::Mutex::new(retried_tx);
    let b = RetryBackend::new(
        client(&url),
        RetryPolicy {
            max_attempts: 1000,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::default()
        },
    )
    .with_notify(move |_, attempt, _| {
        let _ = retried_tx.lock().unwrap().send(attempt);
    });
    b.create().unwrap();
    server.stop();
    // Down: a plain client fails at once with a transient error.
    assert_eq!(
        client(&url).list(FileKind::Key).unwrap_err().kind,
        ErrorKind::Transient
    );
    // Back up on the same port once the retrying client has failed; it gets through.
    let root = dir.path().to_path_buf();
    let restarter = std::thread::spawn(move || {
        let first = retried_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the retrying client met the stopped server and said so");
        assert_eq!(first, 1);
        (serve(&root, |o| o.listen = addr.to_string()), retried_rx)
    });
    let data = b"snapshot".to_vec();
    b.write(FileKind::Snapshot, &conformance::name_of(&data), &data)
        .unwrap();
    let (_server, _) = restarter.join().unwrap();
    assert_eq!(b.list(FileKind::Snapshot).unwrap().len(), 1);
}

#[test]
fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = tls_certificate(dir.path());
    let server = serve(&dir.path().join("root"), |o| {
        o.tls = true;
        o.tls_cert = Some(cert_pem.clone());
        o.tls_key = Some(key_pem.clone());
    });
    assert!(server.url().starts_with("https://"));
    let url = format!("rest:{}repo/", server.url());

    // Not trusted without --cacert: a permanent error that says what to do.
    let e = client(&url).create().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{}", e.message);
    assert!(e.message.contains("--cacert"), "{}", e.message);

    let opts = RestOptions {
        cacert: vec![cert_pem.clone()],
        ..Default::default()
    };
    conformance::run(&RestBackend::new(&url, opts).unwrap());
}

/// A server of protocol version 1 only (an old rest-server): listings are
/// names without sizes, whatever the client accepts.
#[test]
fn protocol_v1_listings_fall_back_to_head() {
    use std::io::{BufRead, BufReader, Write};
    let data = b"a key file".to_vec();
    let name = conformance::name_of(&data);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let n = name.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let resp = if line.starts_with("GET /keys/ ") {
                let body = format!("[\"{n}\",\"not-a-valid-name\"]");
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.x.restic.rest.v1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else if line.starts_with(&format!("HEAD /keys/{n} ")) {
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n".to_string()
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    let b = client(&format!("rest:http://{addr}/"));
    let listed = b.list(FileKind::Key).unwrap();
    assert_eq!(listed, vec![cairn_backend::FileInfo { name, size: 10 }]);
    assert!(b.list(FileKind::Snapshot).unwrap_err().is_not_found());
}
