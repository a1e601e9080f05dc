//! Bringing restic history over: repositories made by the real restic
//! (the Debian package, 0.14: `init` makes format version 2), three
//! snapshots of a tree with every file type that changes between them,
//! then `cairn copy --from-repo`; every copied snapshot must restore
//! exactly (bytes and metadata) the tree as it was when restic backed it
//! up. Skipped, with the reason printed, when restic is not installed
//! (`RESTIC_BIN` or `restic` in `PATH`).

use crate::roundtrip::make_every_kind_tree;
use cairn_tests::cmd::num;
use cairn_tests::gen::random_file;
use cairn_tests::rest::{restic, restic_bin, ServerProc};
use cairn_tests::tree::{assert_manifest_matches_with, Manifest, Options};
use cairn_tests::{note, restored, TestEnv};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// A restic repository beside the cairn one, and the restic client.
struct Restic {
    bin: PathBuf,
    repo: String,
}

impl Restic {
    fn run(&self, env: &TestEnv, args: &[&str]) -> cairn_tests::Out {
        let out = restic(&self.bin, env, &self.repo, args);
        assert!(out.status.success(), "restic failed:\n{}", out.describe());
        out
    }

    /// restic's snapshots, oldest first.
    fn snapshots(&self, env: &TestEnv) -> Vec<Value> {
        let out = self.run(env, &["snapshots", "--json"]);
        let mut v = match out.json() {
            Value::Array(a) => a,
            v => panic!("restic snapshots --json printed {v}"),
        };
        v.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
        v
    }
}

/// An RFC 3339 time with the fraction's trailing zeros cut (Go writes
/// `.91982482Z` for what cairn writes `.919824820Z`).
fn same_time(t: &Value) -> String {
    let t = t.as_str().expect("a time string");
    match t.split_once('.') {
        Some((secs, rest)) => {
            let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let frac = rest[..rest.len() - digits.len()].trim_end_matches('0');
            format!("{secs}.{frac}{digits}")
        }
        None => t.to_string(),
    }
}

/// `cairn copy --from-repo <restic> --json` with the source's password.
fn copy(env: &TestEnv, r: &Restic, password: &str) -> cairn_tests::Out {
    env.cairn(["copy", "--json", "--from-repo", &r.repo])
        .env("CAIRN_FROM_PASSWORD", password)
        .run()
}

/// The changes between the snapshots: contents, deletions, additions,
/// modes, a new hard link, a retargeted symlink, xattrs.
fn change(src: &Path, step: u32) {
    let p = |rel: &str| src.join(rel);
    match step {
        1 => {
            random_file(&p("random-3m.bin"), 3 << 20, 77);
            fs::remove_file(p("dup-b.bin")).unwrap();
            fs::write(p("new-in-2.txt"), b"added in the second snapshot\n").unwrap();
            fs::set_permissions(p("modes/0600"), fs::Permissions::from_mode(0o640)).unwrap();
            fs::hard_link(p("hard/original"), p("hard/fourth")).unwrap();
            let _ = xattr::set(p("new-in-2.txt"), "user.added", b"second");
        }
        _ => {
            fs::remove_dir_all(p("nested/a/b")).unwrap();
            fs::remove_file(p("links/relative")).unwrap();
            symlink("../new-in-2.txt", p("links/relative")).unwrap();
            let mut f = fs::read(p("large-9m.bin")).unwrap();
            f.extend_from_slice(b"appended in the third snapshot");
            fs::write(p("large-9m.bin"), f).unwrap();
            fs::create_dir(p("added-dir")).unwrap();
            random_file(&p("added-dir/data.bin"), 700_000, 78);
            let _ = xattr::remove(p("tiny.txt"), "user.comment");
        }
    }
}

/// What each restic backup recorded: the tree's manifest, host and tags.
struct Backed {
    manifest: Manifest,
    host: &'static str,
    tags: Vec<&'static str>,
}

/// A restic repository (`init_args`) with three snapshots of a changing
/// tree (`backup_args` for every backup); returns the source and what
/// each backup saw.
fn restic_history(
    env: &TestEnv,
    r: &Restic,
    init_args: &[&str],
    backup_args: &[&str],
) -> (PathBuf, Vec<Backed>) {
    let mut init = vec!["init"];
    init.extend_from_slice(init_args);
    r.run(env, &init);
    let src = env.mkdir("src");
    make_every_kind_tree(&src);
    // restic 0.14 stores a symlink's target as a plain JSON string: the
    // bytes of a target that is not UTF-8 become U+FFFD, and restic itself
    // restores another target. What restic did not store cannot be copied.
    fs::remove_file(src.join("links/odd-target")).unwrap();
    let src_s = src.to_str().unwrap().to_string();
    let mut backed = Vec::new();
    for (step, host, tags) in [
        (0, "h1", vec!["t1"]),
        (1, "h1", vec!["t1", "t2"]),
        (2, "h2", vec!["t3"]),
    ] {
        if step > 0 {
            change(&src, step);
        }
        let manifest = Manifest::take(&src);
        let mut args = vec!["backup", "--host", host];
        for t in &tags {
            args.extend(["--tag", t]);
        }
        args.extend_from_slice(backup_args);
        args.push(&src_s);
        r.run(env, &args);
        backed.push(Backed {
            manifest,
            host,
            tags,
        });
    }
    (src, backed)
}

/// Copy the restic history into a new cairn repository and check every
/// snapshot's metadata and restored tree; then a re-run copies nothing.
fn copies_exactly(init_args: &[&str], backup_args: &[&str]) {
    let Some(bin) = restic_bin() else {
        cairn_tests::missing("restic is not installed");
        return;
    };
    let env = TestEnv::new();
    let r = Restic {
        bin,
        repo: env.path("restic").to_str().unwrap().to_string(),
    };
    let (src, backed) = restic_history(&env, &r, init_args, backup_args);
    let restic_snaps = r.snapshots(&env);
    assert_eq!(restic_snaps.len(), 3);

    env.init();
    let out = copy(&env, &r, &env.password).success();
    let summary = out.summary();
    assert_eq!(num(&summary, "snapshots_copied"), 3, "{}", out.describe());
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 3);
    for ((rs, b), (i, cs)) in restic_snaps
        .iter()
        .zip(&backed)
        .zip(snaps.iter().enumerate())
    {
        assert_eq!(
            cs["original"], rs["id"],
            "snapshot {i}: the restic id is kept"
        );
        assert_eq!(
            same_time(&cs["time"]),
            same_time(&rs["time"]),
            "snapshot {i}: time"
        );
        for field in ["hostname", "username", "paths"] {
            assert_eq!(cs[field], rs[field], "snapshot {i}: {field}");
        }
        assert_eq!(cs["hostname"], b.host);
        let mut tags: Vec<&str> = cs["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        tags.sort();
        assert_eq!(tags, b.tags, "snapshot {i}: tags");

        let target = env.path(format!("restore-{i}"));
        env.restore(cs["id"].as_str().unwrap(), &target, &[]);
        assert_manifest_matches_with(&b.manifest, &restored(&target, &src), Options::default());
    }

    // Again: nothing new to copy, nothing read.
    let again = copy(&env, &r, &env.password).success().summary();
    assert_eq!(num(&again, "snapshots_copied"), 0, "{again}");
    assert_eq!(num(&again, "snapshots_skipped"), 3, "{again}");
    assert_eq!(num(&again, "blobs_read"), 0, "{again}");
    assert_eq!(env.snapshots().len(), 3);

    // The copied data is chunked as cairn chunks: backing up the tree as
    // it is now (the third snapshot's) without a parent stores no data.
    let fresh = env.backup_json(["--force", "--host", "h2", src.to_str().unwrap()]);
    assert_eq!(num(&fresh, "data_blobs"), 0, "{fresh}");

    env.cairn(["check", "--read-data"]).run().success();
}

#[test]
fn restic_v2_history_with_compression_copies_exactly() {
    copies_exactly(&[], &[]);
}

#[test]
fn restic_v2_history_without_compression_copies_exactly() {
    copies_exactly(&[], &["--compression", "off"]);
}

#[test]
fn restic_v1_history_copies_exactly() {
    copies_exactly(&["--repository-version", "1"], &[]);
}

#[test]
fn restic_repositories_are_named_and_passwords_checked() {
    let Some(bin) = restic_bin() else {
        cairn_tests::missing("restic is not installed");
        return;
    };
    let env = TestEnv::new();
    let r = Restic {
        bin,
        repo: env.path("restic").to_str().unwrap().to_string(),
    };
    r.run(&env, &["init"]);
    let src = env.mkdir("src");
    fs::write(src.join("f"), b"one\n").unwrap();
    r.run(&env, &["backup", src.to_str().unwrap()]);

    // cairn on a restic repository says what it is and what to do.
    let out = env
        .cairn(["snapshots"])
        .env("CAIRN_REPOSITORY", &r.repo)
        .run()
        .expect_code(1);
    let line = out.one_line_error();
    assert!(
        line.contains("is a restic repository") && line.contains("copy --from-repo"),
        "{line}"
    );

    env.init();
    // A wrong source password: exit 12, and the message says so.
    let out = copy(&env, &r, "not the password").expect_code(12);
    assert!(
        out.one_line_error().contains("wrong password"),
        "{}",
        out.describe()
    );
    assert!(env.snapshots().is_empty());

    // A new restic snapshot after a copy: only it is copied.
    copy(&env, &r, &env.password).success();
    fs::write(src.join("g"), b"two\n").unwrap();
    r.run(&env, &["backup", "--tag", "later", src.to_str().unwrap()]);
    let s = copy(&env, &r, &env.password).success().summary();
    assert_eq!(
        (num(&s, "snapshots_copied"), num(&s, "snapshots_skipped")),
        (1, 1),
        "{s}"
    );
    let target = env.path("t");
    env.restore("latest", &target, &[]);
    let got = restored(&target, &src);
    assert_eq!(fs::read(got.join("g")).unwrap(), b"two\n");
    assert_eq!(fs::read(got.join("f")).unwrap(), b"one\n");
    note!("restic history copied twice, the second time only what was new");
}

/// A restic repository that restic reached over REST (`cairn serve`),
/// pruned by restic (packs repacked, the index rewritten), copied over
/// REST too.
#[test]
fn a_pruned_restic_repository_copies_over_rest() {
    let Some(bin) = restic_bin() else {
        cairn_tests::missing("restic is not installed");
        return;
    };
    let env = TestEnv::new();
    let root = env.mkdir("srv");
    let server = ServerProc::cairn(&root, &["--no-auth"]);
    let r = Restic {
        bin,
        repo: server.url(None, "/laptop/"),
    };
    r.run(&env, &["init"]);
    let src = env.mkdir("src");
    let mut manifests = Vec::new();
    for step in 0..4u64 {
        random_file(&src.join(format!("file-{step}.bin")), 600_000 + step, step);
        if step == 2 {
            fs::remove_file(src.join("file-0.bin")).unwrap();
        }
        fs::write(src.join("changing.txt"), format!("step {step}\n")).unwrap();
        manifests.push(Manifest::take(&src));
        r.run(&env, &["backup", "--tag", "net", src.to_str().unwrap()]);
    }
    // Keep the last two: restic prunes what only the first two used.
    r.run(
        &env,
        &["forget", "--keep-last", "2", "--prune", "--max-unused", "0"],
    );
    assert_eq!(r.snapshots(&env).len(), 2);

    env.init();
    let s = copy(&env, &r, &env.password).success().summary();
    assert_eq!(num(&s, "snapshots_copied"), 2, "{s}");
    for (i, cs) in env.snapshots().iter().enumerate() {
        let target = env.path(format!("restore-{i}"));
        env.restore(cs["id"].as_str().unwrap(), &target, &[]);
        assert_manifest_matches_with(
            &manifests[2 + i],
            &restored(&target, &src),
            Options::default(),
        );
    }
}

/// A damaged restic pack: the copy stops with one clear line, exit 1, and
/// writes no snapshot; the restic repository is left as it was.
#[test]
fn a_damaged_restic_repository_fails_clearly_and_copies_nothing() {
    let Some(bin) = restic_bin() else {
        cairn_tests::missing("restic is not installed");
        return;
    };
    let env = TestEnv::new();
    let r = Restic {
        bin,
        repo: env.path("restic").to_str().unwrap().to_string(),
    };
    r.run(&env, &["init"]);
    let src = env.mkdir("src");
    random_file(&src.join("data.bin"), 3 << 20, 5);
    r.run(
        &env,
        &["backup", "--compression", "off", src.to_str().unwrap()],
    );
    // The largest pack holds the file's data; damage a byte in its middle.
    let (pack, size) = cairn_tests::repo::packs(Path::new(&r.repo))
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .unwrap();
    cairn_tests::repo::flip_bit(&pack, size / 2);
    let before = cairn_tests::repo::hash_all(Path::new(&r.repo));

    env.init();
    let out = copy(&env, &r, &env.password).expect_code(1);
    let line = out.one_line_error();
    assert!(
        line.contains("data.bin") && line.contains("authentication failed"),
        "the error names neither the file nor the damage: {line}"
    );
    assert!(
        env.snapshots().is_empty(),
        "no snapshot after a failed copy"
    );
    assert_eq!(
        before,
        cairn_tests::repo::hash_all(Path::new(&r.repo)),
        "the restic repository was changed"
    );
}

/// A copy killed midway: the next run completes it without storing again
/// what the killed one stored, and the snapshot restores exactly.
#[test]
fn a_killed_copy_from_restic_resumes() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let Some(bin) = restic_bin() else {
        cairn_tests::missing("restic is not installed");
        return;
    };
    let env = TestEnv::new();
    let r = Restic {
        bin,
        repo: env.path("restic").to_str().unwrap().to_string(),
    };
    r.run(&env, &["init"]);
    let src = env.mkdir("src");
    for i in 0..24u64 {
        random_file(&src.join(format!("f{i:02}.bin")), (3 << 20) + i, 100 + i);
    }
    let manifest = Manifest::take(&src);
    r.run(&env, &["backup", src.to_str().unwrap()]);

    env.init();
    let mut c = env.cairn(["copy", "--pack-size", "4", "--from-repo", &r.repo]);
    c.env("CAIRN_FROM_PASSWORD", &env.password);
    let cmdline = c.command_line();
    let mut child = c
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start copy");
    let deadline = Instant::now() + Duration::from_secs(120);
    while cairn_tests::repo::packs(&env.repo).len() < 4 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "`{cmdline}` finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no 4 packs after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let st = cairn_tests::cmd::wait_timeout(&mut child, Duration::from_secs(30), &cmdline);
    assert_eq!(st.signal(), Some(libc::SIGKILL), "not killed: {st}");
    assert!(env.snapshots().is_empty(), "a snapshot after a killed copy");
    let stored_before: u64 = cairn_tests::repo::packs(&env.repo)
        .iter()
        .map(|(_, n)| n)
        .sum();

    let s = copy(&env, &r, &env.password).success().summary();
    assert_eq!(num(&s, "snapshots_copied"), 1, "{s}");
    let total: u64 = 24 * (3 << 20);
    assert!(
        num(&s, "data_added") + stored_before / 2 <= total,
        "the second run stored {} of {total} bytes although {stored_before} were stored before: {s}",
        num(&s, "data_added")
    );
    let target = env.path("t");
    env.restore("latest", &target, &[]);
    assert_manifest_matches_with(&manifest, &restored(&target, &src), Options::default());
    env.cairn(["check", "--read-data"]).run().success();
}
