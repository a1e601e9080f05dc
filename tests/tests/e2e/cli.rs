//! What a restic user types works: restic's global options, password
//! precedence, short flags, `version`, `snapshots` grouping, errors under
//! `--json`, `check --json`, help, completions and man pages.

use cairn_tests::TestEnv;
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A repository with one snapshot of `src/` (a.txt, b.txt); returns `src`.
fn one_snapshot(env: &TestEnv) -> PathBuf {
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("b.txt"), b"beta\n").unwrap();
    env.init();
    env.backup_json([&src]);
    src
}

fn snapshot_ids(out: &cairn_tests::cmd::Out) -> Vec<String> {
    match out.json() {
        Value::Array(a) => a
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect(),
        v => panic!("not an array: {v}"),
    }
}

#[test]
fn short_p_is_the_password_file() {
    let env = TestEnv::new();
    one_snapshot(&env);
    let pw = env.path("pw");
    fs::write(&pw, format!("{}\n", env.password)).unwrap();
    let out = env
        .cairn(["-p"])
        .arg(&pw)
        .args(["snapshots", "--json"])
        .env_remove("CAIRN_PASSWORD")
        .run()
        .success();
    assert_eq!(snapshot_ids(&out).len(), 1);
}

#[test]
fn repository_file_names_the_repository() {
    let env = TestEnv::new();
    one_snapshot(&env);
    let file = env.path("repo-location");
    fs::write(
        &file,
        format!("{}\nignored second line\n", env.repo.display()),
    )
    .unwrap();

    let out = env
        .cairn(["--repository-file"])
        .arg(&file)
        .args(["snapshots", "--json"])
        .env_remove("CAIRN_REPOSITORY")
        .run()
        .success();
    assert_eq!(snapshot_ids(&out).len(), 1);

    let out = env
        .cairn(["snapshots", "--json"])
        .env_remove("CAIRN_REPOSITORY")
        .env("CAIRN_REPOSITORY_FILE", &file)
        .run()
        .success();
    assert_eq!(snapshot_ids(&out).len(), 1);

    // Both: refused, as restic does.
    let out = env
        .cairn(["--repository-file"])
        .arg(&file)
        .arg("snapshots")
        .run()
        .expect_code(1);
    let line = out.one_line_error();
    assert!(line.contains("--repository-file"), "{line}");

    // A missing file is one clear line.
    let out = env
        .cairn(["--repository-file"])
        .arg(env.path("nope"))
        .arg("snapshots")
        .env_remove("CAIRN_REPOSITORY")
        .run()
        .expect_code(1);
    assert!(out.one_line_error().contains("nope"));
}

/// The `backup -v` lines (`new`, `modified`, `unchanged`) for files under `src`.
fn listed(out: &cairn_tests::cmd::Out, src: &Path) -> Vec<String> {
    let prefix = format!("{}/", src.display());
    let mut v: Vec<String> = out
        .stdout_str()
        .lines()
        .filter_map(|l| {
            let (word, path) = l.split_once(' ')?;
            let rel = path.trim_start().strip_prefix(&prefix)?;
            Some(format!("{word} {rel}"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn backup_verbose_lists_new_and_changed_files() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("b.txt"), b"beta\n").unwrap();
    env.init();
    let out = env.cairn(["backup", "-v"]).arg(&src).run().success();
    assert_eq!(listed(&out, &src), ["new a.txt", "new b.txt"]);

    fs::write(src.join("b.txt"), b"beta, longer now\n").unwrap();
    fs::write(src.join("c.txt"), b"gamma\n").unwrap();
    let out = env.cairn(["-v", "backup"]).arg(&src).run().success();
    assert_eq!(listed(&out, &src), ["modified b.txt", "new c.txt"]);

    let out = env.cairn(["backup", "-vv"]).arg(&src).run().success();
    assert_eq!(
        listed(&out, &src),
        ["unchanged a.txt", "unchanged b.txt", "unchanged c.txt"]
    );
    // The exact restic form of a line.
    let want = format!("unchanged {}/a.txt", src.display());
    assert!(
        out.stdout_str().lines().any(|l| l == want),
        "{}",
        out.describe()
    );

    // Without -v: no such lines.
    let out = env.cairn(["backup"]).arg(&src).run().success();
    assert!(listed(&out, &src).is_empty(), "{}", out.describe());

    // With --json: restic's verbose_status lines.
    fs::write(src.join("d.txt"), b"delta\n").unwrap();
    let out = env
        .cairn(["backup", "-v", "--json"])
        .arg(&src)
        .run()
        .success();
    let items: Vec<(String, String)> = out
        .json_lines()
        .iter()
        .filter(|v| v["message_type"] == "verbose_status")
        .map(|v| {
            (
                v["action"].as_str().unwrap().to_string(),
                v["item"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [("new".to_string(), format!("{}/d.txt", src.display()))]
    );
}

fn lock_files(env: &TestEnv) -> usize {
    fs::read_dir(env.repo.join("locks")).map_or(0, |d| d.count())
}

#[test]
fn lock_options_are_accepted_and_no_lock_is_left() {
    let env = TestEnv::new();
    let src = one_snapshot(&env);
    for args in [
        vec!["--no-lock", "snapshots"],
        vec!["--no-lock", "ls", "latest"],
        vec!["--retry-lock", "5m", "snapshots"],
        vec!["--retry-lock=30s", "check"],
    ] {
        env.cairn(&args).run().success();
        assert_eq!(lock_files(&env), 0, "{args:?} left a lock file");
    }
    env.cairn(["--retry-lock", "1m", "backup"])
        .arg(&src)
        .run()
        .success();
    assert_eq!(lock_files(&env), 0);
    let out = env
        .cairn(["--retry-lock", "soon", "snapshots"])
        .run()
        .expect_code(1);
    assert!(out.one_line_error().contains("soon"));
}

#[test]
fn key_hint_is_accepted() {
    let env = TestEnv::new();
    let src = one_snapshot(&env);
    let key = fs::read_dir(env.repo.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    env.cairn(["--key-hint", &key, "snapshots"]).run().success();
    env.cairn(["restore", "latest", "--target"])
        .arg(env.path("t"))
        .env("CAIRN_KEY_HINT", &key[..8])
        .run()
        .success();
    cairn_tests::assert_restored_equal(&src, &env.path("t"));
}

/// A TLS server on 127.0.0.1 that demands a client certificate signed by
/// `ca`, answers every request 404 and records the client certificates it saw.
struct TlsServer {
    url: String,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn tls_server(dir: &Path, client_ca: &rcgen::Certificate) -> TlsServer {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let (cert, key) = cairn_tests::rest::tls_certificate(dir);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "rest:https://127.0.0.1:{}/",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if let Some(c) = tls.conn.peer_certificates().and_then(|c| c.first()) {
                record.lock().unwrap().push(c.to_vec());
            }
            let _ = tls.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    TlsServer { url, seen }
}

#[test]
fn tls_client_certificate_and_insecure_tls() {
    let env = TestEnv::new();
    let dir = env.mkdir("tls");
    // A CA and a client certificate it signed, in one PEM file with the key.
    let mut ca_params = rcgen::CertificateParams::new(vec!["test ca".into()]).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["client".into()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let client_pem = dir.join("client.pem");
    fs::write(
        &client_pem,
        format!("{}{}", client.pem(), client_key.serialize_pem()),
    )
    .unwrap();
    let server = tls_server(&dir, &ca);

    // The server's self-signed certificate is refused without --insecure-tls.
    let out = env
        .cairn(["-r", &server.url, "--tls-client-cert"])
        .arg(&client_pem)
        .arg("snapshots")
        .run();
    assert!(!out.status.success(), "{}", out.describe());
    assert!(server.seen.lock().unwrap().is_empty());

    // Accepted with it (and a warning); the server saw our client
    // certificate and answered: no repository there (exit 10).
    let out = env
        .cairn(["-r", &server.url, "--insecure-tls", "--tls-client-cert"])
        .arg(&client_pem)
        .arg("snapshots")
        .run()
        .expect_code(10);
    assert!(
        out.stderr.contains("warning: --insecure-tls"),
        "{}",
        out.describe()
    );
    let seen = server.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|c| c == client.der().as_ref()));

    // Environment variables do the same.
    server.seen.lock().unwrap().clear();
    env.cairn(["-r", &server.url, "snapshots"])
        .env("CAIRN_INSECURE_TLS", "1")
        .env("CAIRN_TLS_CLIENT_CERT", &client_pem)
        .run()
        .expect_code(10);
    assert!(!server.seen.lock().unwrap().is_empty());

    // A file that is no certificate is one clear error.
    let bad = dir.join("bad.pem");
    fs::write(&bad, "not pem\n").unwrap();
    let out = env
        .cairn(["-r", &server.url, "--insecure-tls", "--tls-client-cert"])
        .arg(&bad)
        .arg("snapshots")
        .run()
        .expect_code(1);
    assert!(
        out.error_lines()
            .iter()
            .any(|l| l.contains("--tls-client-cert")),
        "{}",
        out.describe()
    );
}

#[test]
fn password_flag_on_the_command_line_wins_over_the_environment() {
    let env = TestEnv::new();
    one_snapshot(&env);
    let right = env.path("right");
    fs::write(&right, format!("{}\n", env.password)).unwrap();
    let wrong = env.path("wrong");
    fs::write(&wrong, "not the password\n").unwrap();

    // A wrong CAIRN_PASSWORD, a right --password-file / --password-command.
    let out = env
        .cairn(["--password-file"])
        .arg(&right)
        .args(["snapshots", "--json"])
        .env("CAIRN_PASSWORD", "wrong")
        .run()
        .success();
    assert_eq!(snapshot_ids(&out).len(), 1);
    let cmd = format!("cat {}", right.display());
    env.cairn(["snapshots", "--password-command", &cmd])
        .env("CAIRN_PASSWORD", "wrong")
        .run()
        .success();

    // Through the environment, CAIRN_PASSWORD still comes first.
    env.cairn(["snapshots"])
        .env("CAIRN_PASSWORD_FILE", &wrong)
        .run()
        .success();
    // And a wrong file on the command line is a wrong password (12).
    env.cairn(["--password-file"])
        .arg(&wrong)
        .arg("snapshots")
        .run()
        .expect_code(12);

    // A file and a command together: refused, one line.
    for (file_env, cmd_env) in [(false, false), (true, false), (false, true)] {
        let mut c = env.cairn(["snapshots"]);
        if file_env {
            c.env("CAIRN_PASSWORD_FILE", &right);
        } else {
            c.arg("--password-file").arg(&right);
        }
        if cmd_env {
            c.env("CAIRN_PASSWORD_COMMAND", &cmd);
        } else {
            c.args(["--password-command", &cmd]);
        }
        let out = c.run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(
            out.one_line_error().contains("mutually exclusive"),
            "{}",
            out.describe()
        );
    }
}

/// Snapshots of `src` at these times (UTC), oldest first.
fn snapshots_at(env: &TestEnv, times: &[&str]) -> PathBuf {
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    env.init();
    for t in times {
        env.cairn(["backup", "--time", t]).arg(&src).run().success();
    }
    src
}

#[test]
fn forget_short_flags_are_restics() {
    let env = TestEnv::new();
    snapshots_at(
        &env,
        &[
            "2024-01-01T10:00:00Z",
            "2024-01-01T11:00:00Z",
            "2024-01-02T10:00:00Z",
            "2025-03-01T10:00:00Z",
        ],
    );
    let kept = |flags: &[&str]| -> usize {
        let out = env
            .cairn(["forget", "--dry-run", "--json"])
            .args(flags)
            .env("TZ", "UTC")
            .run()
            .success();
        let groups = out.json();
        assert_eq!(groups.as_array().unwrap().len(), 1, "{}", out.describe());
        groups[0]["keep"].as_array().unwrap().len()
    };
    assert_eq!(kept(&["-l", "1"]), 1);
    // Four hours, three days, two ISO weeks, months and years.
    assert_eq!(kept(&["-H", "4"]), 4);
    assert_eq!(kept(&["-d", "3"]), 3);
    assert_eq!(kept(&["-w", "2"]), 2);
    assert_eq!(kept(&["-m", "2"]), 2);
    assert_eq!(kept(&["-y", "2"]), 2);
    assert_eq!(kept(&["-y", "1"]), 1);
    assert_eq!(kept(&["-y", "1", "-l", "2"]), 2);

    // The host filter is --host only: -H is --keep-hourly.
    let out = env
        .cairn([
            "forget",
            "--dry-run",
            "--json",
            "--host",
            "elsewhere",
            "-l",
            "1",
        ])
        .run()
        .success();
    assert_eq!(out.json(), serde_json::json!([]));
    let out = env.cairn(["forget", "-H", "some-host"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert_eq!(env.snapshots().len(), 4);

    // --compact: one line per snapshot, no paths.
    let out = env
        .cairn(["forget", "--dry-run", "--compact", "-l", "1"])
        .run()
        .success();
    let text = out.stdout_str();
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("ID ")).collect();
    assert_eq!(headers.len(), 2, "{text}");
    assert!(
        headers[0].ends_with("Reasons") && !headers[0].contains("Paths"),
        "{text}"
    );
    assert!(headers[1].ends_with("Tags"), "{text}");
    assert!(
        text.contains("1 snapshots") && text.contains("3 snapshots"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| !l.starts_with("snapshots for"))
            .all(|l| !l.contains("/src")),
        "{text}"
    );
}

#[test]
fn version_text_and_json() {
    let env = TestEnv::new();
    // No repository needed.
    let out = env
        .cairn(["version"])
        .env_remove("CAIRN_REPOSITORY")
        .run()
        .success();
    let line = out.stdout_str();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 8, "{line}");
    assert_eq!(words[0], "cairn");
    assert_eq!(words[1], env!("CARGO_PKG_VERSION"));
    assert_eq!(&words[2..5], ["compiled", "with", "rustc"]);
    assert!(words[5].starts_with("1."), "{line}");
    assert_eq!(words[6], "on");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(words[7], "linux/amd64");
    }

    let out = env.cairn(["version", "--json"]).run().success();
    let v = out.json();
    assert_eq!(v["message_type"], "version");
    assert_eq!(v["version"], words[1]);
    assert_eq!(v["rust_version"], words[5]);
    assert_eq!(v["os"], "linux");
    let platform = format!(
        "{}/{}",
        v["os"].as_str().unwrap(),
        v["arch"].as_str().unwrap()
    );
    assert_eq!(platform, words[7]);
}

#[test]
fn snapshots_latest_group_by_and_compact() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    env.init();
    for (host, time, tag) in [
        ("alpha", "2024-01-01T10:00:00Z", None),
        ("beta", "2024-01-01T11:00:00Z", None),
        ("alpha", "2024-01-01T12:00:00Z", Some("x")),
        ("alpha", "2024-01-01T13:00:00Z", None),
    ] {
        let mut c = env.cairn(["backup", "--host", host, "--time", time]);
        if let Some(t) = tag {
            c.args(["--tag", t]);
        }
        c.arg(&src).run().success();
    }
    let times = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["time"].as_str().unwrap()[11..13].to_string())
            .collect()
    };
    let json = |args: &[&str]| -> Value {
        env.cairn(["snapshots", "--json"])
            .args(args)
            .run()
            .success()
            .json()
    };
    assert_eq!(times(&json(&[])), ["10", "11", "12", "13"]);
    assert_eq!(times(&json(&["--latest", "1"])), ["11", "13"]);
    assert_eq!(times(&json(&["--latest", "2"])), ["11", "12", "13"]);

    // Grouped JSON: restic's list of {group_key, snapshots}.
    let v = json(&["--group-by", "host"]);
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    assert_eq!(
        groups[0]["group_key"],
        serde_json::json!({"hostname": "alpha", "paths": null, "tags": null})
    );
    assert_eq!(times(&groups[0]["snapshots"]), ["10", "12", "13"]);
    assert_eq!(groups[1]["group_key"]["hostname"], "beta");
    assert_eq!(times(&groups[1]["snapshots"]), ["11"]);

    let v = json(&["--group-by", "host,tags", "--latest", "1"]);
    let keys: Vec<(String, Value, usize)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group_key"]["hostname"].as_str().unwrap().to_string(),
                g["group_key"]["tags"].clone(),
                g["snapshots"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("alpha".into(), serde_json::json!([]), 1),
            ("alpha".into(), serde_json::json!(["x"]), 1),
            ("beta".into(), serde_json::json!([]), 1),
        ]
    );
    let v = json(&["-g", "paths"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        v[0]["group_key"],
        serde_json::json!({"hostname": "", "paths": [src.display().to_string()], "tags": null})
    );

    // Text: a header and a table per group.
    let out = env
        .cairn(["snapshots", "--group-by", "host"])
        .run()
        .success();
    let text = out.stdout_str();
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("snapshots for"))
        .collect();
    assert_eq!(
        headers,
        [
            "snapshots for (host [alpha]):",
            "snapshots for (host [beta]):"
        ],
        "{text}"
    );
    assert!(
        text.contains("3 snapshots") && text.contains("1 snapshots"),
        "{text}"
    );

    // Compact: ID, Time, Host, Tags; one line per snapshot.
    let out = env.cairn(["snapshots", "--compact"]).run().success();
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "Time", "Host", "Tags"], "{text}");
    assert_eq!(lines.len(), 2 + 4 + 2, "{text}");
    assert!(!text.contains(&src.display().to_string()), "{text}");
}

/// The one JSON object a failing `--json` run prints on stderr.
fn exit_error(out: &cairn_tests::cmd::Out) -> Value {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

#[test]
fn json_errors_and_utc_times() {
    let env = TestEnv::new();
    one_snapshot(&env);

    let out = env
        .cairn(["snapshots", "--json"])
        .env("CAIRN_PASSWORD", "wrong")
        .run()
        .expect_code(12);
    let v = exit_error(&out);
    assert_eq!(v["message_type"], "exit_error");
    assert_eq!(v["code"], 12);
    assert!(v["message"].as_str().unwrap().contains("password"), "{v}");
    assert!(out.stdout.is_empty());

    let out = env
        .cairn(["--json", "ls", "latest"])
        .env("CAIRN_REPOSITORY", env.path("nothing-here"))
        .run()
        .expect_code(10);
    let v = exit_error(&out);
    assert_eq!(
        (v["message_type"].as_str(), v["code"].as_i64()),
        (Some("exit_error"), Some(10))
    );

    let out = env
        .cairn(["snapshots", "--json", "--group-by", "bogus"])
        .run()
        .expect_code(1);
    assert_eq!(exit_error(&out)["code"], 1);

    // Without --json: the usual one line.
    let out = env
        .cairn(["snapshots"])
        .env("CAIRN_PASSWORD", "wrong")
        .run()
        .expect_code(12);
    out.one_line_error();

    // Times in JSON are UTC, ending in Z, whatever the local zone.
    let out = env
        .cairn(["snapshots", "--json"])
        .env("TZ", "Asia/Kolkata")
        .run()
        .success();
    let s = &out.json()[0];
    for t in [
        &s["time"],
        &s["summary"]["backup_start"],
        &s["summary"]["backup_end"],
    ] {
        let t = t.as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(t.ends_with('Z'), "{t}");
    }
    let out = env
        .cairn(["ls", "--json", "latest"])
        .env("TZ", "Asia/Kolkata")
        .run()
        .success();
    let a = out
        .json_lines()
        .into_iter()
        .find(|n| n["name"] == "a.txt")
        .expect("a.txt listed");
    assert!(a["mtime"].as_str().unwrap().ends_with('Z'), "{a}");
}

#[test]
fn check_reports_broken_packs_and_what_to_run() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    cairn_tests::gen::random_file(&src.join("big.bin"), 300_000, 7);
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    env.init();
    env.backup_json([&src]);

    let clean = env
        .cairn(["check", "--read-data", "--json"])
        .run()
        .success();
    let v = clean.json();
    assert_eq!(v["num_errors"], 0);
    assert_eq!(v["broken_packs"], serde_json::json!([]));
    assert_eq!(v["suggest_repair_index"], false);
    assert_eq!(v["suggest_prune"], false);

    // Damage the data pack (the largest).
    let (pack, _) = cairn_tests::repo::packs(&env.repo)
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .unwrap();
    let pack_id = cairn_tests::repo::file_name(&pack);
    cairn_tests::repo::flip_bit(&pack, 100);

    let out = env
        .cairn(["check", "--read-data", "--json"])
        .run()
        .expect_code(1);
    let v = out.json();
    assert!(v["num_errors"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["broken_packs"], serde_json::json!([pack_id]), "{v}");
    assert_eq!(v["suggest_repair_index"], false);
    assert!(
        v["errors"].as_array().is_some(),
        "existing fields kept: {v}"
    );

    let out = env.cairn(["check", "--read-data"]).run().expect_code(1);
    let text = out.stdout_str();
    let advice = text
        .lines()
        .find(|l| l.contains("damaged packs"))
        .unwrap_or_else(|| panic!("no advice:\n{text}"));
    assert!(
        advice.contains(&format!("`cairn repair packs {pack_id}`")),
        "{advice}"
    );
    assert!(text.contains("`cairn repair snapshots --forget`"), "{text}");

    // The advice works: afterwards the repository checks clean.
    env.cairn(["repair", "packs", &pack_id]).run().success();
    env.cairn(["repair", "snapshots", "--forget"])
        .run()
        .success();
    let v = env
        .cairn(["check", "--read-data", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(v["num_errors"], 0, "{v}");
}

#[test]
fn help_completions_and_man_pages() {
    let env = TestEnv::new();
    // Flags and Global Flags apart, with examples and exit codes.
    for args in [&["backup", "--help"][..], &["help", "backup"]] {
        let out = env.cairn(args).run().success();
        let h = out.stdout_str();
        let (flags, global) = (
            h.find("\nFlags:").unwrap(),
            h.find("\nGlobal Flags:").unwrap(),
        );
        assert!(flags < global, "{h}");
        assert!(h[flags..global].contains("--one-file-system"), "{h}");
        assert!(h[global..].contains("--password-file"), "{h}");
        assert!(
            h.contains("\nExamples:") && h.contains("\nExit status:"),
            "{h}"
        );
    }

    let dir = env.mkdir("gen");
    let man = env.mkdir("gen/man");
    let out = env
        .cairn(["generate", "--bash-completion"])
        .arg(dir.join("cairn.bash"))
        .arg("--zsh-completion")
        .arg(dir.join("_cairn"))
        .arg("--fish-completion")
        .arg(dir.join("cairn.fish"))
        .arg("--man")
        .arg(&man)
        .run()
        .success();
    let bash = fs::read_to_string(dir.join("cairn.bash")).unwrap();
    assert!(
        bash.contains("backup") && bash.contains("--password-file"),
        "{}",
        out.describe()
    );
    assert!(fs::read_to_string(dir.join("_cairn"))
        .unwrap()
        .contains("#compdef cairn"));
    assert!(fs::read_to_string(dir.join("cairn.fish"))
        .unwrap()
        .contains("complete -c cairn"));

    // bash accepts it and completes the command names.
    let script = format!(
        "source {}; COMP_WORDS=(cairn ba); COMP_CWORD=1; _cairn cairn ba cairn; echo \"${{COMPREPLY[@]}}\"",
        dir.join("cairn.bash").display()
    );
    let o = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .any(|w| w == "backup"));

    // A page per command, nested ones too; each a man page of its command.
    let root = fs::read_to_string(man.join("cairn.1")).unwrap();
    assert!(
        root.starts_with(".ie") || root.contains(".TH cairn 1"),
        "{root}"
    );
    for cmd in [
        "backup",
        "snapshots",
        "forget",
        "check",
        "restore",
        "version",
        "generate",
        "key-add",
        "repair-index",
        "profile-list",
    ] {
        let page = fs::read_to_string(man.join(format!("cairn-{cmd}.1")))
            .unwrap_or_else(|e| panic!("cairn-{cmd}.1: {e}"));
        assert!(
            page.contains(&format!(".TH cairn-{cmd} 1")),
            "cairn-{cmd}.1:\n{page}"
        );
    }
    let backup = fs::read_to_string(man.join("cairn-backup.1")).unwrap();
    assert!(backup.contains("Exit status"), "{backup}");
    assert!(!man.join("cairn-help.1").exists());

    // `-` is standard output.
    let out = env
        .cairn(["generate", "--fish-completion", "-"])
        .run()
        .success();
    assert!(out.stdout_str().contains("complete -c cairn"));
    // Nothing asked for: one clear error.
    let out = env.cairn(["generate"]).run().expect_code(1);
    assert!(out.one_line_error().contains("--bash-completion"));
}
