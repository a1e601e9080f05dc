//! The `sftp:` backend against a real OpenSSH server on 127.0.0.1, started
//! by each test (`cairn_tests::sshd`); the repository directory is on this
//! machine, so the tests also look at what the server stored on disk.

use cairn_backend::conformance::{self, name_of};
use cairn_backend::{Backend, ErrorKind, FileKind, LocalBackend, RetryBackend, RetryPolicy};
use cairn_backend_sftp::{SftpBackend, SftpConfig};
use cairn_tests::gen::Rng;
use cairn_tests::sshd::{shell_join, Sshd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

fn config(s: &Sshd, path: &Path) -> SftpConfig {
    SftpConfig {
        user: Some(s.user().to_string()),
        host: "127.0.0.1".into(),
        port: Some(s.port()),
        path: path.to_str().unwrap().to_string(),
        args: Some(s.ssh_args_line()),
        ..Default::default()
    }
}

fn open(s: &Sshd, path: &Path) -> SftpBackend {
    SftpBackend::open(config(s, path)).unwrap_or_else(|e| panic!("{e}\n{}", s.log_text()))
}

/// A created repository at `<server dir>/<name>`.
fn repo(s: &Sshd, name: &str) -> (SftpBackend, PathBuf) {
    let root = s.dir().join(name);
    let b = open(s, &root);
    b.create().unwrap();
    (b, root)
}

/// Every `.tmp-` file below `root`.
fn temporaries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn conformance_against_openssh() {
    let Some(s) = Sshd::start() else { return };
    let b = open(&s, &s.dir().join("repo"));
    conformance::run(&b);
    assert!(temporaries(&s.dir().join("repo")).is_empty());
}

#[test]
fn layout_is_the_local_backends() {
    let Some(s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "nested/deeper/repo");
    b.create().expect("create again");
    for d in [
        "keys",
        "locks",
        "snapshots",
        "index",
        "data/00",
        "data/7f",
        "data/ff",
    ] {
        assert!(root.join(d).is_dir(), "{d} was created");
    }
    let data = b"pack bytes".to_vec();
    let name = name_of(&data);
    b.write(FileKind::Data, &name, &data).unwrap();
    b.write(FileKind::Config, "config", b"cfg").unwrap();
    assert_eq!(
        std::fs::read(root.join("data").join(&name[..2]).join(&name)).unwrap(),
        data
    );
    assert_eq!(std::fs::read(root.join("config")).unwrap(), b"cfg");

    // Either backend reads what the other wrote.
    let local = LocalBackend::new(&root);
    let other = b"written locally".to_vec();
    let other_name = name_of(&other);
    local.write(FileKind::Index, &other_name, &other).unwrap();
    assert_eq!(b.read(FileKind::Index, &other_name).unwrap(), other);
    assert_eq!(local.read(FileKind::Data, &name).unwrap(), data);
    assert!(b.location().starts_with("sftp://"), "{}", b.location());
}

#[test]
fn a_relative_path_is_below_the_login_directory() {
    let Some(s) = Sshd::start() else { return };
    // The login directory is the home directory: climb from it to `/`, then
    // down into the server's temporary directory.
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let ups = home.components().count().saturating_sub(1);
    let rel: PathBuf = std::iter::repeat_n(Path::new(".."), ups)
        .collect::<PathBuf>()
        .join(s.dir().strip_prefix("/").unwrap())
        .join("rel-repo");
    let b = open(&s, &rel);
    b.create().unwrap();
    b.write(FileKind::Config, "config", b"c").unwrap();
    assert_eq!(
        std::fs::read(s.dir().join("rel-repo/config")).unwrap(),
        b"c"
    );
}

#[test]
fn streamed_pack_in_odd_pieces() {
    let Some(s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "repo");
    let body = Rng::new(7).bytes(9 * 1024 * 1024 + 12_345);
    let mut w = b.data_writer().unwrap().expect("sftp streams packs");
    let mut rest = &body[..];
    let mut step = 1usize;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        w.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
        step = (step * 7 + 13) % 700_000 + 1;
    }
    assert_eq!(
        temporaries(&root).len(),
        1,
        "the pack is a temporary until committed"
    );
    let name = name_of(&body);
    w.commit(&name).unwrap();
    assert!(temporaries(&root).is_empty());
    assert_eq!(b.read(FileKind::Data, &name).unwrap(), body);
    assert_eq!(
        std::fs::read(root.join("data").join(&name[..2]).join(&name)).unwrap(),
        body
    );

    // An abandoned writer leaves nothing behind.
    let mut w = b.data_writer().unwrap().unwrap();
    w.write_all(&body[..3_000_000]).unwrap();
    drop(w);
    assert!(temporaries(&root).is_empty());
    // An invalid name is refused and leaves nothing either.
    let mut w = b.data_writer().unwrap().unwrap();
    w.write_all(b"x").unwrap();
    assert!(w.commit("../config").is_err());
    assert!(temporaries(&root).is_empty());
}

#[test]
fn racing_writers_of_one_name_one_wins() {
    let Some(s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "repo");
    let name = name_of(b"the name");
    for round in 0..5u8 {
        let kind = if round % 2 == 0 {
            FileKind::Snapshot
        } else {
            FileKind::Data
        };
        let bodies: Vec<Vec<u8>> = (0..6u8)
            .map(|i| vec![i.wrapping_add(round * 16); 200_000 + i as usize])
            .collect();
        let results: Vec<_> = std::thread::scope(|sc| {
            let hs: Vec<_> = bodies
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let b = &b;
                    let name = &name;
                    sc.spawn(move || {
                        if i % 2 == 0 || kind != FileKind::Data {
                            b.write(kind, name, body)
                        } else {
                            let mut w = b.data_writer().unwrap().unwrap();
                            w.write_all(body).unwrap();
                            w.commit(name)
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert_eq!(
                r.as_ref().unwrap_err().kind,
                ErrorKind::AlreadyExists,
                "{r:?}"
            );
        }
        assert_eq!(
            b.read(kind, &name).unwrap(),
            bodies[winners[0]],
            "the winner's bytes, whole"
        );
        assert!(temporaries(&root).is_empty(), "losers clean up");
        b.remove(kind, &name).unwrap();
    }
}

#[test]
fn thousands_of_files_are_listed() {
    let Some(s) = Sshd::start() else { return };
    let (b, _root) = repo(&s, "repo");
    let n = 1_050u32;
    let files: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let body = format!("file {i}")
                .repeat(1 + (i % 5) as usize)
                .into_bytes();
            (name_of(&body), body)
        })
        .collect();
    std::thread::scope(|sc| {
        for part in files.chunks(files.len().div_ceil(8)) {
            let b = &b;
            sc.spawn(move || {
                for (name, body) in part {
                    b.write(FileKind::Snapshot, name, body).unwrap();
                    b.write(FileKind::Data, name, body).unwrap();
                }
            });
        }
    });
    for kind in [FileKind::Snapshot, FileKind::Data] {
        let mut listed = b.list(kind).unwrap();
        assert_eq!(listed.len(), n as usize, "{kind}");
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        let mut want: Vec<_> = files
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64))
            .collect();
        want.sort();
        let got: Vec<_> = listed.into_iter().map(|f| (f.name, f.size)).collect();
        assert_eq!(got, want, "{kind}: every name with its size");
    }
}

#[test]
fn ranged_reads_at_the_edges() {
    let Some(s) = Sshd::start() else { return };
    let (b, _root) = repo(&s, "repo");
    // Several chunk sizes (32 KiB, 255 KiB) and a bit: ranges cross chunk edges.
    let body = Rng::new(3).bytes(3 * 261_120 + 7);
    let name = name_of(&body);
    b.write(FileKind::Data, &name, &body).unwrap();
    let size = body.len() as u64;
    let cases: Vec<(u64, Option<u64>)> = vec![
        (0, None),
        (0, Some(0)),
        (0, Some(1)),
        (size - 1, None),
        (size - 1, Some(1)),
        (size, None),
        (size, Some(0)),
        (32_767, Some(2)),
        (261_119, Some(261_122)),
        (1, Some(size - 1)),
        (100, Some(size - 200)),
    ];
    for (off, len) in cases {
        let end = len.map(|l| off + l).unwrap_or(size) as usize;
        assert_eq!(
            b.read_range(FileKind::Data, &name, off, len).unwrap(),
            &body[off as usize..end],
            "range {off}+{len:?}"
        );
    }
    for (off, len) in [
        (size, Some(1)),
        (0, Some(size + 1)),
        (size + 1, None),
        (size - 5, Some(6)),
        (u64::MAX, Some(1)),
        (1, Some(u64::MAX)),
    ] {
        let e = b.read_range(FileKind::Data, &name, off, len).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "range {off}+{len:?}: {e}");
        assert!(e.message.contains("beyond the end"), "{e}");
    }
    let missing = name_of(b"missing");
    let e = b
        .read_range(FileKind::Data, &missing, 0, Some(1))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains(&missing[..16]),
        "the message names the file: {e}"
    );
}

#[test]
fn a_100_mib_object_round_trip() {
    let Some(s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "repo");
    let body = Rng::new(100).bytes(100 << 20);
    let name = name_of(&body);
    let mib = body.len() as f64 / (1 << 20) as f64;

    let t = Instant::now();
    b.write(FileKind::Data, &name, &body).unwrap();
    let up = t.elapsed();
    let t = Instant::now();
    let back = b.read(FileKind::Data, &name).unwrap();
    let down = t.elapsed();
    assert!(back == body, "the 100 MiB came back intact");
    drop(back);
    b.remove(FileKind::Data, &name).unwrap();

    let t = Instant::now();
    let mut w = b.data_writer().unwrap().unwrap();
    for piece in body.chunks(1 << 20) {
        w.write_all(piece).unwrap();
    }
    w.commit(&name).unwrap();
    let streamed = t.elapsed();
    assert!(
        std::fs::read(root.join("data").join(&name[..2]).join(&name)).unwrap() == body,
        "the streamed 100 MiB stored intact"
    );
    eprintln!(
        "note: 100 MiB over loopback: write {:.0} MiB/s, read {:.0} MiB/s, streamed write {:.0} MiB/s",
        mib / up.as_secs_f64(),
        mib / down.as_secs_f64(),
        mib / streamed.as_secs_f64()
    );
}

#[test]
fn a_restarted_server_is_reconnected() {
    let Some(mut s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "repo");
    let data = b"before".to_vec();
    let name = name_of(&data);
    b.write(FileKind::Snapshot, &name, &data).unwrap();

    // The server dies under an open session: calls fail as Transient...
    s.stop();
    let e = b.read(FileKind::Snapshot, &name).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    eprintln!("note: after the server died: {e}");
    let e = b.stat(FileKind::Snapshot, &name).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("sftp: ssh "), "{e}");
    eprintln!("note: while it is down: {e}");
    // ...and the first call after the restart works on a new session.
    s.start_again();
    assert_eq!(b.read(FileKind::Snapshot, &name).unwrap(), data);

    // A streamed pack whose session died reports it, and leaves nothing
    // visible; the backend goes on with a new session.
    let mut w = b.data_writer().unwrap().unwrap();
    w.write_all(&[1; 100_000]).unwrap();
    s.stop();
    s.start_again();
    let r = w
        .write_all(&[2; 1 << 20])
        .and_then(|()| w.commit(&name_of(b"never")));
    assert_eq!(r.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(b.list(FileKind::Data).unwrap().len(), 0);

    // The server dies in the middle of a large upload, with SIGPIPE's
    // default action in force as in cairn (whose `main` restores it): the
    // upload fails, and the process lives on. "In the middle": its
    // temporary file has grown past 1 MiB, and once the server is frozen
    // the upload is seen unfinished (no file under its name).
    // SAFETY: setting a signal disposition; the other tests of this binary
    // write to no pipe that may close.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let big = Rng::new(5).bytes(64 << 20);
    let big_name = name_of(&big);
    std::thread::scope(|sc| {
        let up = sc.spawn(|| b.write(FileKind::Data, &big_name, &big));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !temporaries(&root)
            .iter()
            .any(|t| std::fs::metadata(t).is_ok_and(|m| m.len() > 1 << 20))
        {
            assert!(!up.is_finished(), "the upload ended before it was seen");
            assert!(
                Instant::now() < deadline,
                "no upload in progress after 120 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        s.pause();
        assert!(
            !root
                .join("data")
                .join(&big_name[..2])
                .join(&big_name)
                .exists()
                && !up.is_finished(),
            "the upload finished before the server was frozen"
        );
        s.stop();
        let e = up.join().unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    });
    s.start_again();
    assert_eq!(b.read(FileKind::Snapshot, &name).unwrap(), data);

    // The retry wrapper rides over a restart that happens while it waits:
    // the server comes back once the wrapper has reported a retry.
    s.stop();
    let (retried_tx, retried_rx) = std::sync::mpsc::channel();
    let retried_tx = std::sync::Mutex::new(retried_tx);
    let retrying = RetryBackend::new(
        b,
        RetryPolicy {
            max_attempts: 1000,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            // This wrapper's first call meets the server down; the backend
            // under it has answered before.
            first_contact_attempts: 1000,
        },
    )
    .with_notify(move |_, attempt, _| {
        let _ = retried_tx.lock().unwrap().send(attempt);
    });
    // Restarts the server once the wrapper has reported a retry; gives the
    // receiver back.
    let restart_on_retry = |rx: std::sync::mpsc::Receiver<u32>, server: &mut Sshd| {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the retrying backend met the stopped server and said so");
        server.start_again();
        rx
    };
    let retried_rx = std::thread::scope(|sc| {
        let server = &mut s;
        let restarter = sc.spawn(move || restart_on_retry(retried_rx, server));
        let more = b"after the restart".to_vec();
        retrying
            .write(FileKind::Index, &name_of(&more), &more)
            .unwrap();
        assert_eq!(
            retrying.read(FileKind::Index, &name_of(&more)).unwrap(),
            more
        );
        restarter.join().unwrap()
    });

    // A pack streamed through the wrapper while the server goes away and
    // comes back is written again whole, from the wrapper's spool.
    let pack = Rng::new(9).bytes(6 << 20);
    let mut w = retrying.data_writer().unwrap().unwrap();
    w.write_all(&pack[..1 << 20]).unwrap();
    // Only this stream's retries count from here.
    while retried_rx.try_recv().is_ok() {}
    s.stop();
    std::thread::scope(|sc| {
        let server = &mut s;
        let restarter = sc.spawn(move || restart_on_retry(retried_rx, server));
        for piece in pack[1 << 20..].chunks(300_000) {
            w.write_all(piece).unwrap();
        }
        w.commit(&name_of(&pack)).unwrap();
        restarter.join().unwrap();
    });
    assert_eq!(
        retrying.read(FileKind::Data, &name_of(&pack)).unwrap(),
        pack
    );
    assert_eq!(
        std::fs::read(
            root.join("data")
                .join(&name_of(&pack)[..2])
                .join(name_of(&pack))
        )
        .unwrap(),
        pack
    );
}

#[test]
fn a_wrong_key_is_denied_quickly() {
    let Some(s) = Sshd::start() else { return };
    let mut cfg = config(&s, &s.dir().join("repo"));
    cfg.args = Some(shell_join(&Sshd::ssh_args_with(&s.unauthorized_key())));
    let t = Instant::now();
    let e = SftpBackend::open(cfg)
        .err()
        .expect("a wrong key is refused");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::Denied, "{e}");
    assert!(e.message.contains("Permission denied"), "ssh's words: {e}");
    assert!(
        e.message
            .starts_with(&format!("sftp: ssh {}@127.0.0.1 -p {}", s.user(), s.port())),
        "{e}"
    );
    assert!(!e.message.contains('\n'), "one line: {e:?}");
}

#[test]
fn an_unreachable_port_fails_within_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = SftpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        path: "/tmp/none".into(),
        args: Some(
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -F /dev/null".into(),
        ),
        ..Default::default()
    };
    let t = Instant::now();
    let e = SftpBackend::open(cfg).err().expect("nothing listens");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("Connection refused"), "{e}");
    assert!(!e.message.contains('\n'), "one line: {e:?}");
}

#[test]
fn a_command_of_ones_own_and_ssh_reaped_on_drop() {
    let Some(s) = Sshd::start() else { return };
    let mut ssh = vec!["ssh".to_string(), "-p".into(), s.port().to_string()];
    ssh.extend(s.ssh_args());
    ssh.extend([
        format!("{}@127.0.0.1", s.user()),
        "-s".into(),
        "sftp".into(),
    ]);
    // A shell that notes its pid, then becomes ssh.
    let pidfile = s.dir().join("ssh.pid");
    let inner = format!(
        "echo $$ > {} && exec {}",
        pidfile.display(),
        shell_join(&ssh)
    );
    let cfg = SftpConfig {
        command: Some(shell_join(&["sh".into(), "-c".into(), inner])),
        path: s.dir().join("own").to_str().unwrap().to_string(),
        ..Default::default()
    };
    let b = SftpBackend::open(cfg).unwrap();
    b.create().unwrap();
    b.write(FileKind::Config, "config", b"x").unwrap();
    assert_eq!(std::fs::read(s.dir().join("own/config")).unwrap(), b"x");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists(), "ssh runs while the backend lives");
    drop(b);
    // Gone and reaped: a zombie would still have its /proc entry.
    assert!(!proc_dir.exists(), "ssh {pid} is ended and reaped on drop");
}

#[test]
fn a_command_that_is_no_sftp_server() {
    // Silent: abandoned after the connect timeout.
    let cfg = SftpConfig {
        command: Some("sleep 30".into()),
        connect_timeout: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let t = Instant::now();
    let e = SftpBackend::open(cfg).err().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("no SFTP answer"), "{e}");
    // Chatty: a login script printing to stdout.
    let cfg = SftpConfig {
        command: Some("echo 'Welcome to the NAS'".into()),
        ..Default::default()
    };
    let e = SftpBackend::open(cfg).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("did not speak SFTP"), "{e}");
    // Missing program.
    let cfg = SftpConfig {
        command: Some("/nonexistent/ssh host".into()),
        ..Default::default()
    };
    let e = SftpBackend::open(cfg).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    // Unbalanced quotes.
    let cfg = SftpConfig {
        command: Some("ssh 'host".into()),
        ..Default::default()
    };
    let e = SftpBackend::open(cfg).err().unwrap();
    assert!(e.message.contains("quote"), "{e}");
}

#[test]
fn a_missing_repository_is_not_found() {
    let Some(s) = Sshd::start() else { return };
    let b = open(&s, &s.dir().join("never-created"));
    let name = name_of(b"x");
    assert_eq!(
        b.read(FileKind::Config, "config").unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        b.write(FileKind::Key, &name, b"x").unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        b.list(FileKind::Snapshot).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(b.list(FileKind::Config).unwrap(), vec![]);
    assert_eq!(b.write_concurrency(), 5);
}

#[test]
fn stale_temporaries_are_removed_by_age() {
    let Some(s) = Sshd::start() else { return };
    let (b, root) = repo(&s, "repo");
    let old = [
        root.join("data/.tmp-pack-0123456789abcdef"),
        root.join("index/.tmp-abc-1"),
        root.join("data/ab/.tmp-x"),
        root.join(".tmp-config-2"),
    ];
    let young = root.join("data/.tmp-pack-fresh");
    let other = root.join("data/not-a-temp");
    for p in old.iter().chain([&young, &other]) {
        std::fs::write(p, b"x").unwrap();
    }
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for p in old.iter().chain([&other]) {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    // A writer in progress keeps its temporary fresh.
    let mut w = b.data_writer().unwrap().unwrap();
    w.write_all(b"in progress").unwrap();
    assert_eq!(
        b.remove_stale_temporaries(Duration::from_secs(3600))
            .unwrap(),
        4
    );
    assert!(old.iter().all(|p| !p.exists()));
    assert!(young.exists() && other.exists());
    w.commit(&name_of(b"in progress")).unwrap();
    assert_eq!(
        b.read(FileKind::Data, &name_of(b"in progress")).unwrap(),
        b"in progress"
    );
}

#[test]
fn parallel_callers_share_one_session() {
    let Some(s) = Sshd::start() else { return };
    let (b, _root) = repo(&s, "repo");
    let bodies: Vec<Vec<u8>> = (0..16u64)
        .map(|i| Rng::new(i).bytes(700_000 + i as usize * 1000))
        .collect();
    std::thread::scope(|sc| {
        for body in &bodies {
            let b = &b;
            sc.spawn(move || {
                let name = name_of(body);
                b.write(FileKind::Data, &name, body).unwrap();
                for _ in 0..3 {
                    assert!(b.read(FileKind::Data, &name).unwrap() == *body);
                    assert_eq!(
                        b.read_range(FileKind::Data, &name, 1000, Some(300_000))
                            .unwrap(),
                        &body[1000..301_000]
                    );
                }
            });
        }
    });
    assert_eq!(b.list(FileKind::Data).unwrap().len(), bodies.len());
}

/// What the child of [`a_passphrase_is_asked_on_the_terminal`] needs:
/// port, user, key and repository, separated by newlines.
const PROMPT_ENV: &str = "CAIRN_SFTP_PROMPT_TEST";

#[test]
fn a_passphrase_is_asked_on_the_terminal() {
    let Some(s) = Sshd::start() else { return };
    if !Path::new("/usr/bin/script").is_file() {
        cairn_tests::missing("/usr/bin/script (util-linux) is not installed");
        return;
    }
    let key = s.authorized_key_with_passphrase("open sesame");
    let root = s.dir().join("prompted");
    let spec = format!(
        "{}\n{}\n{}\n{}",
        s.port(),
        s.user(),
        key.display(),
        root.display()
    );
    // The child (this test binary, running `passphrase_child`) is the
    // foreground job of a pseudo-terminal that `script` holds.
    let exe = std::env::current_exe().unwrap();
    let cmd = shell_join(&[
        exe.display().to_string(),
        "passphrase_child".into(),
        "--exact".into(),
        "--ignored".into(),
        "--nocapture".into(),
    ]);
    let mut child = std::process::Command::new("/usr/bin/script")
        .args(["-qec", &cmd, "/dev/null"])
        .env(PROMPT_ENV, spec)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // ssh flushes the terminal's input when it asks: answer only then.
    while !out.lock().unwrap().contains("Enter passphrase") {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "no passphrase prompt on the terminal:\n{}",
            out.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"open sesame\n").unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not finish:\n{}", out.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    reader.join().unwrap();
    let text = out.lock().unwrap().clone();
    assert!(text.contains("PROMPT-CHILD-OK"), "{text}");
    assert_eq!(std::fs::read(root.join("config")).unwrap(), b"asked");
}

/// Run by [`a_passphrase_is_asked_on_the_terminal`] in a pseudo-terminal.
#[test]
#[ignore = "a child of a_passphrase_is_asked_on_the_terminal"]
fn passphrase_child() {
    let Ok(spec) = std::env::var(PROMPT_ENV) else {
        return;
    };
    let f: Vec<&str> = spec.lines().collect();
    let args = [
        "-i",
        f[2],
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-F",
        "/dev/null",
    ]
    .map(String::from);
    let cfg = SftpConfig {
        user: Some(f[1].into()),
        host: "127.0.0.1".into(),
        port: Some(f[0].parse().unwrap()),
        path: f[3].into(),
        args: Some(shell_join(&args)),
        ..Default::default()
    };
    let b = SftpBackend::open(cfg).unwrap();
    // The terminal is ours again after the handshake.
    let tty = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .unwrap();
    // SAFETY: plain calls on a descriptor we own.
    let (fg, own) = unsafe {
        (
            libc::tcgetpgrp(std::os::fd::AsRawFd::as_raw_fd(&tty)),
            libc::getpgrp(),
        )
    };
    assert_eq!(fg, own, "cairn is the foreground job again");
    b.create().unwrap();
    b.write(FileKind::Config, "config", b"asked").unwrap();
    println!("PROMPT-CHILD-OK");
}
