//! `cairn serve` at the HTTP level, with raw requests (so paths reach the
//! server exactly as written): rest-server's status codes, authentication,
//! private repositories, append-only, quota, metrics, hostile paths and
//! slow clients. The server runs in this process, started by the test
//! launcher of `cairn-tests` (`tests/support/rest.rs`).

use cairn_server::{Server, ServerOptions};
use cairn_tests::rest::{basic_auth_with as basic, request as req, serve};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

const V2: &str = "application/vnd.x.restic.rest.v2";

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

#[test]
fn status_codes_as_rest_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = serve(&root, |_| {});
    let a = s.addr();

    assert_eq!(
        req(a, "POST", "/r/", &[], b"").status,
        400,
        "create without ?create=true"
    );
    let r = req(a, "GET", "/r/", &[], b"");
    assert_eq!((r.status, r.header("Allow")), (405, Some("POST")));
    assert_eq!(
        req(a, "GET", "/r/keys/", &[], b"").status,
        404,
        "listing a missing repository"
    );
    assert_eq!(req(a, "POST", "/r/?create=true", &[], b"").status, 200);
    assert_eq!(
        req(a, "POST", "/r/?create=true", &[], b"").status,
        200,
        "creating twice"
    );
    for d in ["keys", "locks", "snapshots", "index", "data/00", "data/ff"] {
        assert!(root.join("r").join(d).is_dir(), "{d} created");
    }

    // config
    assert_eq!(req(a, "HEAD", "/r/config", &[], b"").status, 404);
    assert_eq!(req(a, "GET", "/r/config", &[], b"").status, 404);
    assert_eq!(req(a, "POST", "/r/config", &[], b"the config").status, 200);
    assert_eq!(req(a, "POST", "/r/config", &[], b"another").status, 403);
    let r = req(a, "HEAD", "/r/config", &[], b"");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("10")));
    assert_eq!(req(a, "GET", "/r/config", &[], b"").body, b"the config");
    assert_eq!(req(a, "PUT", "/r/config", &[], b"x").status, 405);

    // listings, v1 and v2
    let r = req(a, "GET", "/r/keys/", &[], b"");
    assert_eq!(
        (r.status, r.header("Content-Type"), r.text().as_str()),
        (200, Some("application/vnd.x.restic.rest.v1"), "[]")
    );
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let id = sha(&data);
    assert_eq!(
        req(a, "POST", &format!("/r/data/{id}"), &[], &data).status,
        200
    );
    assert!(
        root.join("r/data").join(&id[..2]).join(&id).is_file(),
        "data is sharded on disk"
    );
    assert_eq!(
        req(a, "POST", &format!("/r/data/{id}"), &[], &data).status,
        403,
        "an existing file"
    );
    let r = req(a, "GET", "/r/data/", &[("Accept", V2)], b"");
    assert_eq!(r.header("Content-Type"), Some(V2));
    assert_eq!(r.text(), format!("[{{\"name\":\"{id}\",\"size\":5000}}]"));
    assert_eq!(
        req(a, "GET", "/r/data/", &[], b"").text(),
        format!("[\"{id}\"]")
    );
    assert_eq!(req(a, "DELETE", "/r/data/", &[], b"").status, 405);

    // objects: HEAD, GET, ranges
    let path = format!("/r/data/{id}");
    let r = req(a, "HEAD", &path, &[], b"");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("5000")));
    let r = req(a, "GET", &path, &[], b"");
    assert_eq!((r.status, r.body == data), (200, true));
    let r = req(a, "GET", &path, &[("Range", "bytes=10-19")], b"");
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (206, Some("bytes 10-19/5000"))
    );
    assert_eq!(r.body, &data[10..20]);
    let r = req(a, "GET", &path, &[("Range", "bytes=4990-")], b"");
    assert_eq!((r.status, &r.body[..]), (206, &data[4990..]));
    let r = req(a, "GET", &path, &[("Range", "bytes=-5")], b"");
    assert_eq!((r.status, &r.body[..]), (206, &data[4995..]));
    let r = req(a, "GET", &path, &[("Range", "bytes=5000-5010")], b"");
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (416, Some("bytes */5000"))
    );
    assert_eq!(
        req(a, "GET", &path, &[("Range", "bytes=9-3")], b"").status,
        416
    );

    // a body that does not match its name
    let wrong = sha(b"something else");
    let r = req(
        a,
        "POST",
        &format!("/r/snapshots/{wrong}"),
        &[],
        b"not that",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        req(a, "HEAD", &format!("/r/snapshots/{wrong}"), &[], b"").status,
        404
    );

    // deletes
    assert_eq!(req(a, "DELETE", &path, &[], b"").status, 200);
    assert_eq!(
        req(a, "DELETE", &path, &[], b"").status,
        200,
        "deleting a missing file"
    );
    assert_eq!(req(a, "GET", &path, &[], b"").status, 404);
    assert_eq!(req(a, "DELETE", "/r/config", &[], b"").status, 200);
    assert_eq!(req(a, "HEAD", "/r/config", &[], b"").status, 404);

    // bad names and types
    for p in [
        "/r/data/abc",
        "/r/a/unknown/",
        "/r/keys/XYZ",
        &format!("/r/data/{}", id.to_uppercase()),
        &format!("/r/data/{id}0"),
    ] {
        assert_eq!(req(a, "GET", p, &[], b"").status, 404, "{p}");
    }
    // Nothing but the repository's files (no temporary files left behind).
    assert!(
        files(&root).iter().all(|f| !f.contains(".tmp-")),
        "{:?}",
        files(&root)
    );
}

#[test]
fn hostile_paths_touch_nothing_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(dir.path().join("outside/keys")).unwrap();
    std::fs::write(dir.path().join("outside/config"), b"precious").unwrap();
    std::fs::write(dir.path().join("secret"), b"secret").unwrap();
    let s = serve(&root, |_| {});
    let a = s.addr();
    let before = files(dir.path());
    let data = b"payload".to_vec();
    let id = sha(&data);
    let evil = [
        "/../outside/config",
        "/%2e%2e/outside/config",
        "/%2E%2E/outside/config",
        "/..%2foutside/config",
        "/r/..%2f..%2foutside/config",
        "/./config",
        "/r/./config",
        "//outside/config",
        "/%2e%2e/%2e%2e/secret",
        "/../secret",
        "/.htpasswd",
        "/..",
        "/r%00/config",
        "/r\\..\\outside/config",
        "/../outside/keys/",
        &format!("/../outside/keys/{id}"),
        &format!("/%2e%2e/outside/keys/{id}"),
        &format!("/r/keys/..%2f..%2f..%2foutside%2fkeys%2f{id}"),
        "http://evil/../outside/config",
    ];
    for p in evil {
        for m in ["GET", "HEAD", "DELETE"] {
            let r = req(a, m, p, &[], b"");
            assert!(r.status == 404 || r.status == 400, "{m} {p}: {}", r.status);
        }
        let r = req(a, "POST", p, &[], &data);
        assert!(r.status == 404 || r.status == 400, "POST {p}: {}", r.status);
        let r = req(a, "POST", &format!("{p}?create=true"), &[], b"");
        assert!(
            r.status == 404 || r.status == 400 || r.status == 405,
            "POST {p}?create=true: {}",
            r.status
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("outside/config")).unwrap(),
        b"precious"
    );
    let mut after = files(dir.path());
    after.retain(|f| !f.starts_with("root/"));
    assert_eq!(after, before, "files outside the root changed");
    assert!(
        files(&root).is_empty(),
        "nothing was created in the root: {:?}",
        files(&root)
    );
}

fn htpasswd(dir: &Path, lines: &[String]) -> PathBuf {
    let p = dir.join("htpasswd");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn authentication_with_every_hash_form_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let bcrypt = bcrypt::hash_with_result("bpw", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let file = htpasswd(
        dir.path(),
        &[
            format!("bea:{bcrypt}"),
            "sam:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
            "ann:$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0".into(),
        ],
    );
    let s = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(file.clone());
    });
    let a = s.addr();
    let r = req(a, "POST", "/r/?create=true", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
    for (u, p) in [("bea", "bpw"), ("sam", "password"), ("ann", "password")] {
        assert_eq!(
            req(
                a,
                "POST",
                "/r/?create=true",
                &[("Authorization", &basic(u, p))],
                b""
            )
            .status,
            200,
            "{u}"
        );
        // Cached the second time; still right.
        assert_eq!(
            req(
                a,
                "GET",
                "/r/keys/",
                &[("Authorization", &basic(u, p))],
                b""
            )
            .status,
            200,
            "{u}"
        );
        assert_eq!(
            req(
                a,
                "GET",
                "/r/keys/",
                &[("Authorization", &basic(u, "wrong"))],
                b""
            )
            .status,
            401,
            "{u}"
        );
    }
    assert_eq!(
        req(
            a,
            "GET",
            "/r/keys/",
            &[("Authorization", &basic("nobody", "password"))],
            b""
        )
        .status,
        401
    );
    assert_eq!(
        req(a, "GET", "/r/keys/", &[("Authorization", "Basic !!!")], b"").status,
        401
    );

    // The file changes (its length too, so no clock is involved): a new
    // user works once the server has looked again, a removed one is refused.
    htpasswd(
        dir.path(),
        &["new:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into()],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while req(
        a,
        "GET",
        "/r/keys/",
        &[("Authorization", &basic("new", "password"))],
        b"",
    )
    .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "the htpasswd file was not reloaded within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        req(
            a,
            "GET",
            "/r/keys/",
            &[("Authorization", &basic("sam", "password"))],
            b""
        )
        .status,
        401
    );
}

#[test]
fn refuses_to_start_without_authentication_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let o = ServerOptions {
        path: dir.path().into(),
        listen: "127.0.0.1:0".into(),
        quiet: true,
        ..Default::default()
    };
    let e = Server::new(o)
        .err()
        .expect("no htpasswd file and no --no-auth")
        .to_string();
    assert!(e.contains(".htpasswd") && e.contains("--no-auth"), "{e}");
    // The default file in the data directory is used when present.
    std::fs::write(
        dir.path().join(".htpasswd"),
        "u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
    )
    .unwrap();
    let o = ServerOptions {
        path: dir.path().into(),
        listen: "127.0.0.1:0".into(),
        quiet: true,
        ..Default::default()
    };
    let s = Server::new(o).unwrap().spawn();
    assert_eq!(
        req(
            s.addr(),
            "GET",
            "/.htpasswd",
            &[("Authorization", &basic("u", "password"))],
            b""
        )
        .status,
        404
    );
    // TLS without certificate files.
    let o = ServerOptions {
        path: dir.path().into(),
        listen: "127.0.0.1:0".into(),
        quiet: true,
        no_auth: true,
        tls: true,
        ..Default::default()
    };
    let e = Server::new(o).err().unwrap().to_string();
    assert!(e.contains("public_key"), "{e}");
}

#[test]
fn private_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd(
        dir.path(),
        &[
            "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
            "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
        ],
    );
    let s = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(file.clone());
        o.private_repos = true;
    });
    let a = s.addr();
    let alice = basic("alice", "password");
    let bob = basic("bob", "password");
    assert_eq!(
        req(
            a,
            "POST",
            "/alice/?create=true",
            &[("Authorization", &alice)],
            b""
        )
        .status,
        200
    );
    assert_eq!(
        req(
            a,
            "POST",
            "/alice/laptop/?create=true",
            &[("Authorization", &alice)],
            b""
        )
        .status,
        200
    );
    assert_eq!(
        req(
            a,
            "POST",
            "/alice/config",
            &[("Authorization", &alice)],
            b"cfg"
        )
        .status,
        200
    );
    for p in ["/alice/config", "/alice/keys/", "/alice/laptop/keys/"] {
        assert_eq!(
            req(a, "GET", p, &[("Authorization", &bob)], b"").status,
            401,
            "bob reads {p}"
        );
        assert_eq!(
            req(a, "GET", p, &[("Authorization", &alice)], b"").status,
            200,
            "alice reads {p}"
        );
    }
    assert_eq!(
        req(a, "POST", "/?create=true", &[("Authorization", &bob)], b"").status,
        401,
        "the root is nobody's"
    );
    assert_eq!(
        req(
            a,
            "DELETE",
            "/alice/config",
            &[("Authorization", &bob)],
            b""
        )
        .status,
        401
    );
    assert!(dir.path().join("root/alice/config").is_file());
}

#[test]
fn append_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("root"), |o| o.append_only = true);
    let a = s.addr();
    assert_eq!(req(a, "POST", "/?create=true", &[], b"").status, 200);
    assert_eq!(req(a, "POST", "/config", &[], b"cfg").status, 200);
    let data = b"snapshot".to_vec();
    let id = sha(&data);
    for t in ["data", "keys", "snapshots", "index", "locks"] {
        assert_eq!(
            req(a, "POST", &format!("/{t}/{id}"), &[], &data).status,
            200
        );
        assert_eq!(
            req(a, "POST", &format!("/{t}/{id}"), &[], &data).status,
            403,
            "overwrite {t}"
        );
        let expect = if t == "locks" { 200 } else { 403 };
        assert_eq!(
            req(a, "DELETE", &format!("/{t}/{id}"), &[], b"").status,
            expect,
            "delete {t}"
        );
    }
    assert_eq!(req(a, "DELETE", "/config", &[], b"").status, 403);
    assert_eq!(req(a, "GET", "/config", &[], b"").body, b"cfg");
    assert_eq!(req(a, "HEAD", &format!("/data/{id}"), &[], b"").status, 200);
}

#[test]
fn quota_across_repositories() {
    let dir = tempfile::tempdir().unwrap();
    // Each repository's 262 directories count 4 KiB each.
    let repos = 2 * 262 * 4096;
    let s = serve(&dir.path().join("root"), |o| {
        o.max_size = Some(repos + 10_000)
    });
    let a = s.addr();
    for r in ["a", "b"] {
        assert_eq!(
            req(a, "POST", &format!("/{r}/?create=true"), &[], b"").status,
            200
        );
    }
    let d1 = vec![1u8; 6000];
    let d2 = vec![2u8; 6000];
    assert_eq!(
        req(a, "POST", &format!("/a/data/{}", sha(&d1)), &[], &d1).status,
        200
    );
    assert_eq!(
        req(a, "POST", &format!("/b/data/{}", sha(&d2)), &[], &d2).status,
        507,
        "the quota counts every repository"
    );
    assert_eq!(
        req(a, "HEAD", &format!("/b/data/{}", sha(&d2)), &[], b"").status,
        404
    );
    assert_eq!(
        req(a, "DELETE", &format!("/a/data/{}", sha(&d1)), &[], b"").status,
        200
    );
    assert_eq!(
        req(a, "POST", &format!("/b/data/{}", sha(&d2)), &[], &d2).status,
        200,
        "a delete frees space"
    );
}

#[test]
fn prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd(
        dir.path(),
        &[
            "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
            "metrics:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
        ],
    );
    let s = serve(&dir.path().join("root"), |o| {
        o.no_auth = false;
        o.htpasswd_file = Some(file.clone());
        o.private_repos = true;
        o.prometheus = true;
    });
    let a = s.addr();
    let alice = basic("alice", "password");
    req(
        a,
        "POST",
        "/alice/pc/?create=true",
        &[("Authorization", &alice)],
        b"",
    );
    let data = vec![9u8; 1234];
    let id = sha(&data);
    assert_eq!(
        req(
            a,
            "POST",
            &format!("/alice/pc/data/{id}"),
            &[("Authorization", &alice)],
            &data
        )
        .status,
        200
    );
    assert_eq!(
        req(
            a,
            "GET",
            &format!("/alice/pc/data/{id}"),
            &[("Authorization", &alice)],
            b""
        )
        .status,
        200
    );
    assert_eq!(
        req(
            a,
            "DELETE",
            &format!("/alice/pc/data/{id}"),
            &[("Authorization", &alice)],
            b""
        )
        .status,
        200
    );
    assert_eq!(req(a, "GET", "/metrics", &[], b"").status, 401);
    assert_eq!(
        req(a, "GET", "/metrics", &[("Authorization", &alice)], b"").status,
        401,
        "only `metrics` with --private-repos"
    );
    let r = req(
        a,
        "GET",
        "/metrics",
        &[("Authorization", &basic("metrics", "password"))],
        b"",
    );
    assert_eq!(r.status, 200);
    let t = r.text();
    for line in [
        "rest_server_blob_write_total{repo=\"alice/pc\",type=\"data\",user=\"alice\"} 1",
        "rest_server_blob_write_bytes_total{repo=\"alice/pc\",type=\"data\",user=\"alice\"} 1234",
        "rest_server_blob_read_bytes_total{repo=\"alice/pc\",type=\"data\",user=\"alice\"} 1234",
        "rest_server_blob_delete_total{repo=\"alice/pc\",type=\"data\",user=\"alice\"} 1",
    ] {
        assert!(t.contains(line), "{line} missing from\n{t}");
    }
}

#[test]
fn slow_and_vanishing_clients() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let s = serve(&root, |o| {
        // Long enough that a loaded machine still answers the requests
        // that do arrive whole; short enough to drop the stalled ones.
        o.io_timeout = Duration::from_secs(3);
        o.max_connections = 8;
    });
    let a = s.addr();
    assert_eq!(req(a, "POST", "/?create=true", &[], b"").status, 200);

    // Clients that stop mid-headers or mid-body hold no slot for long, and
    // others are served meanwhile.
    let data = vec![3u8; 1 << 20];
    let id = sha(&data);
    let mut stalled = Vec::new();
    for i in 0..12 {
        let mut c = TcpStream::connect(a).unwrap();
        if i % 2 == 0 {
            c.write_all(b"GET /config HTTP/1.1\r\nHost: x\r\n").unwrap();
        } else {
            c.write_all(
                format!(
                    "POST /data/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    data.len()
                )
                .as_bytes(),
            )
            .unwrap();
            c.write_all(&data[..100_000]).unwrap();
        }
        stalled.push(c);
    }
    let t = Instant::now();
    assert_eq!(req(a, "GET", "/keys/", &[], b"").status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "served only after {:?}",
        t.elapsed()
    );
    // The stalled connections are closed by the server.
    for mut c in stalled {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        assert!(
            c.read_to_end(&mut buf).is_ok(),
            "a stalled connection was not closed by the server"
        );
    }
    // A client that vanishes mid-upload leaves nothing behind.
    {
        let mut c = TcpStream::connect(a).unwrap();
        c.write_all(
            format!(
                "POST /data/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        )
        .unwrap();
        c.write_all(&data[..500_000]).unwrap();
        // It goes away; the server has dealt with the upload once it has
        // closed the connection (only then is "nothing stored" meaningful).
        c.shutdown(std::net::Shutdown::Write).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)
            .expect("the server closes the connection of a vanished client");
    }
    assert_eq!(req(a, "HEAD", &format!("/data/{id}"), &[], b"").status, 404);
    let deadline = Instant::now() + Duration::from_secs(60);
    while files(&root).iter().any(|f| f.contains(".tmp-")) {
        assert!(
            Instant::now() < deadline,
            "temporary files left: {:?}",
            files(&root)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the same upload, whole, works.
    assert_eq!(
        req(a, "POST", &format!("/data/{id}"), &[], &data).status,
        200
    );
}

#[test]
fn many_parallel_uploads_arrive_intact() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("root"), |o| o.max_uploads = 4);
    let a = s.addr();
    assert_eq!(req(a, "POST", "/?create=true", &[], b"").status, 200);
    let threads: Vec<_> = (0..16u8)
        .map(|i| {
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..(600_000 + i as usize * 1000))
                    .map(|j| (j as u8) ^ i)
                    .collect();
                let id = sha(&data);
                assert_eq!(
                    req(a, "POST", &format!("/data/{id}"), &[], &data).status,
                    200
                );
                assert_eq!(req(a, "GET", &format!("/data/{id}"), &[], b"").body, data);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&req(a, "GET", "/data/", &[("Accept", V2)], b"").body).unwrap();
    assert_eq!(listed.len(), 16);
}
