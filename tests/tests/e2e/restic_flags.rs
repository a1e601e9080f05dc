//! The flags a restic user types, each driving the real binary: `ls`
//! (`--recursive`, `--human-readable`, `--sort`, `--reverse`), `find`
//! (`--oldest`, `--newest`, `--pack`, `--show-pack-id`), `list`, `cat lock`
//! and `cat tree`, the backup flags (`--with-atime`, `--ignore-ctime`,
//! `--ignore-inode`, `--skip-if-unchanged`, `--time`, `--dry-run`,
//! `--files-from*`), the restore flags (`--dry-run`, `--overwrite`,
//! `--delete`, `--sparse`, `--include-file` and its kin) and
//! `dump --archive`/`--target`.

use cairn_tests::TestEnv;
use filetime::FileTime;
use std::fs;
use std::path::{Path, PathBuf};

/// The stdout lines of a successful `cairn ARGS...` run.
fn lines(env: &TestEnv, args: &[&str]) -> Vec<String> {
    env.cairn(args)
        .run()
        .success()
        .stdout_str()
        .lines()
        .map(String::from)
        .collect()
}

fn set_mtime(p: &Path, secs: i64) {
    filetime::set_file_mtime(p, FileTime::from_unix_time(secs, 0)).unwrap();
}

/// src/{a.txt (8 B), z.md (1536 B), sub/{b.bin (5000 B), deep/c.txt (3 B)}},
/// with distinct mtimes: b.bin oldest, then c.txt, a.txt, z.md.
fn ls_tree(env: &TestEnv) -> PathBuf {
    let src = env.mkdir("src");
    fs::create_dir_all(src.join("sub/deep")).unwrap();
    fs::write(src.join("a.txt"), b"hello a\n").unwrap();
    fs::write(src.join("z.md"), vec![b'z'; 1536]).unwrap();
    fs::write(src.join("sub/b.bin"), vec![1u8; 5000]).unwrap();
    fs::write(src.join("sub/deep/c.txt"), b"ccc").unwrap();
    set_mtime(&src.join("sub/b.bin"), 1_500_000_000);
    set_mtime(&src.join("sub/deep/c.txt"), 1_500_000_100);
    set_mtime(&src.join("a.txt"), 1_500_000_200);
    set_mtime(&src.join("z.md"), 1_500_000_300);
    set_mtime(&src.join("sub/deep"), 1_400_000_000);
    set_mtime(&src.join("sub"), 1_400_000_000);
    set_mtime(&src, 1_400_000_000);
    src
}

#[test]
fn ls_one_level_recursive_sort_reverse_human() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);
    let s = src.display().to_string();
    let sub = format!("{s}/sub");
    let p = |rel: &str| format!("{s}{rel}");

    // A directory: itself and its direct children, as restic.
    assert_eq!(
        lines(&env, &["ls", "-q", "latest", &sub]),
        [p("/sub"), p("/sub/b.bin"), p("/sub/deep")]
    );
    // --recursive: everything below it.
    assert_eq!(
        lines(&env, &["ls", "-q", "--recursive", "latest", &sub]),
        [
            p("/sub"),
            p("/sub/b.bin"),
            p("/sub/deep"),
            p("/sub/deep/c.txt")
        ]
    );
    // No directory: the whole tree, with or without --recursive.
    let all = lines(&env, &["ls", "-q", "latest"]);
    assert_eq!(all, lines(&env, &["ls", "-q", "--recursive", "latest"]));
    let mine: Vec<&String> = all.iter().filter(|l| l.starts_with(&s)).collect();
    assert_eq!(
        mine,
        [
            &p(""),
            &p("/a.txt"),
            &p("/sub"),
            &p("/sub/b.bin"),
            &p("/sub/deep"),
            &p("/sub/deep/c.txt"),
            &p("/z.md")
        ]
    );

    // --sort size (directories count as 0, ties by path), --reverse.
    let by_size = lines(
        &env,
        &["ls", "-q", "--sort", "size", "--recursive", "latest", &s],
    );
    assert_eq!(
        by_size,
        [
            p(""),
            p("/sub"),
            p("/sub/deep"),
            p("/sub/deep/c.txt"),
            p("/a.txt"),
            p("/z.md"),
            p("/sub/b.bin")
        ]
    );
    let mut reversed = lines(
        &env,
        &[
            "ls",
            "-q",
            "--sort",
            "size",
            "--reverse",
            "--recursive",
            "latest",
            &s,
        ],
    );
    reversed.reverse();
    assert_eq!(reversed, by_size);
    // time = mtime.
    assert_eq!(
        lines(&env, &["ls", "-q", "--sort", "time", "latest", &sub]),
        [p("/sub"), p("/sub/deep"), p("/sub/b.bin")]
    );
    assert_eq!(
        lines(
            &env,
            &["ls", "-q", "-s", "mtime", "--recursive", "latest", &s]
        ),
        [
            p(""),
            p("/sub"),
            p("/sub/deep"),
            p("/sub/b.bin"),
            p("/sub/deep/c.txt"),
            p("/a.txt"),
            p("/z.md")
        ]
    );
    // extension: none first, then .bin, .md, .txt.
    assert_eq!(
        lines(
            &env,
            &[
                "ls",
                "-q",
                "--sort",
                "extension",
                "--recursive",
                "latest",
                &s
            ]
        ),
        [
            p(""),
            p("/sub"),
            p("/sub/deep"),
            p("/sub/b.bin"),
            p("/z.md"),
            p("/a.txt"),
            p("/sub/deep/c.txt")
        ]
    );
    // name --reverse: the walk order backwards.
    assert_eq!(
        lines(&env, &["ls", "-q", "--reverse", "latest", &sub]),
        [p("/sub/deep"), p("/sub/b.bin"), p("/sub")]
    );
    let out = env.cairn(["ls", "--sort", "colour", "latest"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());

    // --human-readable sizes in the long listing.
    let long = lines(&env, &["ls", "-q", "-l", "--human-readable", "latest", &s]);
    let line = |name: &str| {
        long.iter()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {long:?}"))
            .clone()
    };
    assert!(line("/z.md").contains(" 1.500 KiB "), "{}", line("/z.md"));
    assert!(line("/a.txt").contains(" 8 B "), "{}", line("/a.txt"));
    let plain = lines(&env, &["ls", "-q", "-l", "latest", &s]);
    assert!(
        plain
            .iter()
            .any(|l| l.ends_with("/z.md") && l.contains(" 1536 ")),
        "{plain:?}"
    );
}

#[test]
fn find_by_modification_time() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);
    let s = src.display().to_string();
    let find = |extra: &[&str]| -> Vec<String> {
        let mut c = env.cairn(["find", "-q"]);
        c.args(extra).arg("*").env("TZ", "UTC");
        // The directories above src have today's times: left out.
        c.run()
            .success()
            .stdout_str()
            .lines()
            .filter(|l| l.starts_with(&s))
            .map(String::from)
            .collect()
    };
    // b.bin 02:40:00, c.txt 02:41:40, a.txt 02:43:20, z.md 02:45:00 (UTC, 2017-07-14);
    // the directories are from 2014.
    assert_eq!(
        find(&[
            "--oldest",
            "2017-07-14 02:41",
            "--newest",
            "2017-07-14 02:44:00"
        ]),
        [format!("{s}/a.txt"), format!("{s}/sub/deep/c.txt")]
    );
    assert_eq!(find(&["-O", "2017-07-14 02:45:00"]), [format!("{s}/z.md")]);
    // A zone given with the time wins over TZ.
    assert_eq!(
        find(&["-O", "2017-07-14 04:45:00 +0200"]),
        [format!("{s}/z.md")]
    );
    let before: Vec<String> = find(&["-N", "14.07.2017"]);
    assert!(before.iter().all(|p| !p.contains('.')), "{before:?}");
    assert!(before.contains(&format!("{s}/sub")), "{before:?}");

    let out = env.cairn(["find", "--oldest", "last tuesday", "*"]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.one_line_error().contains("--oldest"),
        "{}",
        out.describe()
    );
    let out = env
        .cairn([
            "find",
            "--oldest",
            "2020-01-02",
            "--newest",
            "2020-01-01",
            "*",
        ])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    out.one_line_error();
}

/// The pack files of the repository, by name.
fn pack_names(env: &TestEnv) -> std::collections::BTreeSet<String> {
    cairn_tests::repo::packs(&env.repo)
        .iter()
        .map(|(p, _)| cairn_tests::repo::file_name(p))
        .collect()
}

#[test]
fn find_pack_and_show_pack_id() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);
    let before = pack_names(&env);
    cairn_tests::gen::random_file(&src.join("new.bin"), 3000, 7);
    let second = env.backup_json([&src]);
    let snap2 = second["snapshot_id"].as_str().unwrap().to_string();
    let new_packs: Vec<String> = pack_names(&env).difference(&before).cloned().collect();
    let data_pack = new_packs
        .iter()
        .find(|p| {
            cairn_tests::repo::pack_blobs(&env, p)
                .iter()
                .all(|b| b.kind == "data")
        })
        .expect("the second backup wrote a data pack")
        .clone();
    let blobs = cairn_tests::repo::pack_blobs(&env, &data_pack);
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let blob = blobs[0].id.clone();

    // --pack: the file whose blob is in the pack, in the snapshot that has it.
    let out = env
        .cairn(["find", "--json", "--pack", &data_pack[..12]])
        .run()
        .success();
    let hits = out.json();
    let hits = hits.as_array().expect("an array");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["object_type"], "blob");
    assert_eq!(hits[0]["id"], blob.as_str());
    assert_eq!(hits[0]["path"], format!("{}/new.bin", src.display()));
    assert_eq!(hits[0]["snapshot"], snap2.as_str());
    let text = env.cairn(["find", "--pack", &data_pack]).run().success();
    assert!(
        text.stdout_str().starts_with(&format!(
            "Found blob {blob}\n ... in file {}/new.bin\n",
            src.display()
        )),
        "{}",
        text.stdout_str()
    );

    // A tree pack of the second backup: the directories of the snapshot
    // whose trees changed, down to src.
    let tree_pack = new_packs
        .iter()
        .find(|p| **p != data_pack)
        .expect("a tree pack");
    let out = env
        .cairn(["find", "--json", "--pack", tree_pack])
        .run()
        .success();
    let paths: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["object_type"] == "tree" && h["snapshot"] == snap2.as_str())
        .map(|h| h["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.contains(&"/".to_string()), "{paths:?}");
    assert!(paths.contains(&src.display().to_string()), "{paths:?}");

    // --show-pack-id: the pack holding the blob found.
    let out = env
        .cairn(["find", "--blob", &blob[..10], "--show-pack-id"])
        .run()
        .success();
    let text = out.stdout_str();
    assert!(
        text.ends_with(&format!(
            "Object belongs to pack {data_pack}\n ... Pack {data_pack}: <data/{}>\n",
            &blob[..8]
        )),
        "{text}"
    );
    let out = env
        .cairn(["find", "--json", "--blob", &blob, "--show-pack-id"])
        .run()
        .success();
    assert_eq!(out.json()[0]["pack"], data_pack.as_str());

    // A pack that does not exist is an error naming it.
    let out = env.cairn(["find", "--pack", "abcdef0123"]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.one_line_error().contains("abcdef0123"),
        "{}",
        out.describe()
    );
}

/// The names of the repository's files of one kind, sorted.
fn file_names(env: &TestEnv, kind: &str) -> Vec<String> {
    cairn_tests::repo::files(&env.repo, kind)
        .iter()
        .map(|(p, _)| cairn_tests::repo::file_name(p))
        .collect()
}

#[test]
fn list_and_cat_lock_and_tree() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);
    fs::write(src.join("more.txt"), b"more").unwrap();
    env.backup_json([&src]);

    for (kind, dir) in [
        ("snapshots", "snapshots"),
        ("index", "index"),
        ("keys", "keys"),
        ("packs", "data"),
        ("locks", "locks"),
    ] {
        let want = file_names(&env, dir);
        assert_eq!(lines(&env, &["list", kind]), want, "list {kind}");
        if kind != "locks" {
            assert!(!want.is_empty(), "no {dir} files");
        }
    }

    // blobs: "data <id>" / "tree <id>", exactly the blobs of every pack.
    let mut want: Vec<String> = pack_names(&env)
        .iter()
        .flat_map(|p| cairn_tests::repo::pack_blobs(&env, p))
        .map(|b| format!("{} {}", b.kind, b.id))
        .collect();
    want.sort_by(|a, b| a[5..].cmp(&b[5..]));
    want.dedup();
    let got = lines(&env, &["list", "blobs"]);
    assert_eq!(got, want);
    let snaps = env.snapshots();
    let root = snaps[0]["tree"].as_str().unwrap();
    assert!(got.contains(&format!("tree {root}")), "{got:?}");

    // packs SNAPSHOT: the packs the snapshot needs; the latest needs all.
    assert_eq!(
        lines(&env, &["list", "packs", "latest"]),
        pack_names(&env).into_iter().collect::<Vec<_>>()
    );
    let out = env.cairn(["list", "trees"]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.one_line_error().contains("trees"), "{}", out.describe());

    // cat tree SNAPSHOT:PATH is the tree of that directory.
    let cat = |args: &[&str]| env.cairn(args).run().success().json();
    let names = |t: &serde_json::Value| -> Vec<String> {
        t["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    let sub = cat(&["cat", "tree", &format!("latest:{}/sub", src.display())]);
    assert_eq!(names(&sub), ["b.bin", "deep"]);
    let top = cat(&["cat", "tree", &format!("latest:{}", src.display())]);
    assert_eq!(names(&top), ["a.txt", "more.txt", "sub", "z.md"]);
    let sub_id = top["nodes"][2]["subtree"].as_str().unwrap();
    assert_eq!(cat(&["cat", "tree", sub_id]), sub);
    let latest_root = env.snapshots().last().unwrap()["tree"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        cat(&["cat", "tree", "latest:/"]),
        cat(&["cat", "tree", &latest_root])
    );
    let out = env
        .cairn(["cat", "tree", &format!("latest:{}/a.txt", src.display())])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.one_line_error().contains("a.txt"), "{}", out.describe());

    // A lock another program left, sealed with the repository's key.
    let key: cairn_format::crypto::MasterKey =
        serde_json::from_value(cat(&["cat", "masterkey"])).unwrap();
    let lock = serde_json::json!({
        "time": "2024-05-06T07:08:09.123456789+02:00",
        "exclusive": false,
        "hostname": "elsewhere",
        "username": "someone",
        "pid": 4242,
        "uid": 1000,
        "gid": 1000
    });
    let sealed = key.cipher().seal(lock.to_string().as_bytes(), None);
    let name = {
        use sha2::Digest;
        sha2::Sha256::digest(&sealed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    fs::create_dir_all(env.repo.join("locks")).unwrap();
    fs::write(env.repo.join("locks").join(&name), &sealed).unwrap();
    assert_eq!(lines(&env, &["list", "locks"]), std::slice::from_ref(&name));
    assert_eq!(cat(&["cat", "lock", &name[..8]]), lock);
}

/// The tree id of directory `dir` in the latest snapshot (from its parent's tree).
fn dir_tree(env: &TestEnv, dir: &Path) -> String {
    let parent = env
        .cairn(["cat", "tree"])
        .arg(format!("latest:{}", dir.parent().unwrap().display()))
        .run()
        .success()
        .json();
    let name = dir.file_name().unwrap().to_str().unwrap();
    parent["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["subtree"].as_str())
        .unwrap_or_else(|| panic!("no subtree for {name} in {parent}"))
        .to_string()
}

fn set_atime(p: &Path, secs: i64) {
    filetime::set_file_atime(p, FileTime::from_unix_time(secs, 0)).unwrap();
}

#[test]
fn atime_only_with_with_atime() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    let files = ["a.txt", "z.md", "sub/b.bin", "sub/deep/c.txt"];
    // An atime more than a day old: the next read updates it (relatime),
    // without touching the ctime as setting it does.
    for f in files {
        set_atime(&src.join(f), 1_600_000_000);
    }
    env.init();
    env.backup_json([&src]);
    let first = dir_tree(&env, &src);
    // The atime field holds the mtime (restic's way).
    let a_node = || {
        env.cairn(["ls", "--json", "latest"])
            .arg(src.join("a.txt"))
            .env("TZ", "UTC")
            .run()
            .success()
            .json_lines()[1]
            .clone()
    };
    let node = a_node();
    assert_eq!(node["atime"], node["mtime"], "{node}");
    // --with-atime records the real atime: another tree.
    env.backup_json([src.as_os_str(), "--with-atime".as_ref()]);
    let with = dir_tree(&env, &src);
    assert_ne!(with, first);
    let node = a_node();
    assert!(
        node["atime"]
            .as_str()
            .unwrap()
            .starts_with("2020-09-13T12:26:40"),
        "{node}"
    );

    // Reading the files changes their atimes.
    let atime = |f: &str| FileTime::from_last_access_time(&fs::metadata(src.join(f)).unwrap());
    for f in files {
        fs::read(src.join(f)).unwrap();
        assert_ne!(
            atime(f),
            FileTime::from_unix_time(1_600_000_000, 0),
            "reading {f} did not update its atime (a noatime mount?)"
        );
    }
    let again = env.backup_json([&src]);
    assert_eq!(
        dir_tree(&env, &src),
        first,
        "reading files changed the tree"
    );
    assert_eq!(again["files_changed"].as_u64(), Some(0), "{again}");
    env.backup_json([src.as_os_str(), "--with-atime".as_ref()]);
    assert_ne!(
        dir_tree(&env, &src),
        with,
        "--with-atime missed the new atimes"
    );
}

/// `chmod` to the same mode: only the ctime changes.
fn touch_ctime(p: &Path) {
    let mode = fs::metadata(p).unwrap().permissions();
    fs::set_permissions(p, mode).unwrap();
}

/// Replace `p` by a copy with the same bytes and mtime: a new inode.
fn replace_same(p: &Path) {
    let data = fs::read(p).unwrap();
    let mtime = FileTime::from_last_modification_time(&fs::metadata(p).unwrap());
    let tmp = p.with_extension("tmp-copy");
    fs::write(&tmp, data).unwrap();
    filetime::set_file_mtime(&tmp, mtime).unwrap();
    fs::rename(&tmp, p).unwrap();
}

#[test]
fn ignore_ctime_and_ignore_inode() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    let f = src.join("z.md");
    env.init();
    env.backup_json([&src]);
    let changed = |extra: &[&str]| -> u64 {
        let mut args: Vec<&std::ffi::OsStr> = vec![src.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        cairn_tests::cmd::num(&env.backup_json(args), "files_changed")
    };
    touch_ctime(&f);
    assert_eq!(changed(&["--ignore-ctime"]), 0);
    touch_ctime(&f);
    assert_eq!(changed(&[]), 1, "a new ctime makes the file changed");
    replace_same(&f);
    assert_eq!(
        changed(&["--ignore-ctime"]),
        1,
        "a new inode makes the file changed"
    );
    replace_same(&f);
    assert_eq!(
        changed(&["--ignore-inode"]),
        0,
        "--ignore-inode ignores inode and ctime"
    );
    // The environment variable as restic's RESTIC_IGNORE_INODE.
    replace_same(&f);
    let s = env
        .cairn(["backup", "--json"])
        .arg(&src)
        .env("CAIRN_IGNORE_INODE", "true")
        .run()
        .success()
        .summary();
    assert_eq!(cairn_tests::cmd::num(&s, "files_changed"), 0);
    // A changed mtime is a change whatever is ignored.
    set_mtime(&f, 1_600_000_000);
    assert_eq!(changed(&["--ignore-inode"]), 1);
}

#[test]
fn skip_if_unchanged_and_time() {
    // Outside /tmp: the snapshot holds the directories above the source,
    // and /tmp's times change whenever a parallel test makes a directory.
    let base = tempfile::Builder::new()
        .prefix("cairn-e2e-skip-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let env = TestEnv::new();
    let src = base.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f.txt"), b"one").unwrap();
    env.init();
    env.backup_json([&src]);
    let out = env
        .cairn(["backup", "--skip-if-unchanged"])
        .arg(&src)
        .run()
        .success();
    assert!(
        out.stdout_str().contains("skipped creating snapshot"),
        "{}",
        out.describe()
    );
    assert_eq!(env.snapshots().len(), 1);
    let s = env.backup_json([src.as_os_str(), "--skip-if-unchanged".as_ref()]);
    assert!(s.get("snapshot_id").is_none(), "{s}");
    assert_eq!(env.snapshots().len(), 1);
    fs::write(src.join("f.txt"), b"two").unwrap();
    let s = env.backup_json([src.as_os_str(), "--skip-if-unchanged".as_ref()]);
    assert!(s["snapshot_id"].is_string(), "{s}");
    assert_eq!(env.snapshots().len(), 2);

    // --time in restic's form is local time.
    env.cairn(["backup", "--time", "2020-02-03 04:05:06"])
        .arg(&src)
        .env("TZ", "Etc/GMT-2")
        .run()
        .success();
    // Snapshots are listed oldest first.
    let snaps = env.snapshots();
    let t = snaps[0]["time"].as_str().unwrap().to_string();
    let parsed = chrono_free_utc(&t);
    assert_eq!(parsed, "2020-02-03 02:05:06", "snapshot time {t}");
    let out = env.cairn(["backup", "--time", "yesterday"]).arg(&src).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.one_line_error().contains("--time"),
        "{}",
        out.describe()
    );
}

/// An RFC 3339 time with a whole-hour offset, as "YYYY-MM-DD HH:MM:SS" in UTC.
fn chrono_free_utc(t: &str) -> String {
    let (date, rest) = t.split_once('T').unwrap();
    let hms = &rest[..8];
    let zone = &rest[8..];
    let zone = zone.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset_h: i64 = match zone {
        "Z" | "+00:00" => 0,
        z => z[..3].parse().unwrap(),
    };
    let h: i64 = hms[..2].parse::<i64>().unwrap() - offset_h;
    assert!((0..24).contains(&h), "crosses a day: {t}");
    format!("{date} {h:02}{}", &hms[2..])
}

#[test]
fn dry_run_writes_nothing() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);
    cairn_tests::gen::random_file(&src.join("new.bin"), 200_000, 3);
    let before = cairn_tests::repo::hash_all(&env.repo);
    let out = env.cairn(["backup", "--dry-run"]).arg(&src).run().success();
    let text = out.stdout_str();
    assert!(text.contains("Would add to the repository: "), "{text}");
    assert!(!text.contains(" saved"), "{text}");
    let s = env
        .cairn(["backup", "-n", "--json"])
        .arg(&src)
        .run()
        .success()
        .summary();
    assert_eq!(s["dry_run"], true, "{s}");
    assert!(s.get("snapshot_id").is_none(), "{s}");
    assert_eq!(cairn_tests::cmd::num(&s, "files_new"), 1, "{s}");
    assert!(cairn_tests::cmd::num(&s, "data_added") >= 200_000, "{s}");
    cairn_tests::repo::assert_unchanged(
        &before,
        &cairn_tests::repo::hash_all(&env.repo),
        "backup --dry-run",
    );
    assert_eq!(env.snapshots().len(), 1);
    // The real backup then adds what the dry run said.
    let real = env.backup_json([&src]);
    assert_eq!(real["data_added"], s["data_added"]);
}

#[test]
fn files_from_verbatim_and_raw() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let src = ls_tree(&env);
    fs::write(src.join(" spaced"), b"s").unwrap();
    fs::write(src.join("#hash"), b"h").unwrap();
    fs::write(src.join("new\nline"), b"n").unwrap();
    let s = src.display().to_string();
    env.init();

    let list = env.path("list.txt");
    fs::write(
        &list,
        format!("# a comment\n\n  {s}/*.txt  \n{s}/sub/deep\n{s}/nothing-*\n"),
    )
    .unwrap();
    let verbatim = env.path("verbatim.txt");
    fs::write(&verbatim, format!("{s}/ spaced\n\n{s}/#hash\n")).unwrap();
    let raw = env.path("raw.bin");
    let mut r = src.join("new\nline").as_os_str().as_bytes().to_vec();
    r.push(0);
    r.extend_from_slice(src.join("z.md").as_os_str().as_bytes());
    r.push(0);
    fs::write(&raw, r).unwrap();

    let listed = |args: &[&std::ffi::OsStr]| -> Vec<String> {
        env.cairn(["backup", "-q"]).args(args).run().success();
        let out = env.cairn(["ls", "--json", "latest"]).run().success();
        let mut v: Vec<String> = out.json_lines()[1..]
            .iter()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .filter(|l| l.starts_with(&format!("{s}/")))
            .map(|l| l[s.len()..].to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(&["--files-from".as_ref(), list.as_os_str()]),
        ["/a.txt", "/sub", "/sub/deep", "/sub/deep/c.txt"]
    );
    assert_eq!(
        listed(&["--files-from-verbatim".as_ref(), verbatim.as_os_str()]),
        ["/ spaced", "/#hash"]
    );
    assert_eq!(
        listed(&[
            "--files-from-raw".as_ref(),
            raw.as_os_str(),
            src.join("a.txt").as_os_str()
        ]),
        ["/a.txt", "/new\nline", "/z.md"]
    );
    // Raw names must end with NUL.
    fs::write(&raw, src.join("z.md").as_os_str().as_bytes()).unwrap();
    let out = env.cairn(["backup", "--files-from-raw"]).arg(&raw).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.one_line_error().contains("zero byte"),
        "{}",
        out.describe()
    );
    // A list naming nothing that exists is an error, not an empty snapshot.
    fs::write(&list, format!("{s}/nothing-*\n")).unwrap();
    let out = env.cairn(["backup", "--files-from"]).arg(&list).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
}

/// Every file (not directory) below `root`, relative to it, with its bytes.
fn files_with_bytes(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn restore_overwrite_modes() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let src = ls_tree(&env);
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&src.join("a.txt"), 1_500_000_200);
    env.init();
    env.backup_json([&src]);
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let r = cairn_tests::restored(&target, &src);
    let (a, z) = (r.join("a.txt"), r.join("z.md"));
    let restore = |mode: &str| {
        env.cairn([
            "restore",
            "latest",
            "--json",
            "--overwrite",
            mode,
            "--target",
        ])
        .arg(&target)
        .run()
        .success()
        .summary()
    };

    // never: what is there stays.
    fs::write(&a, b"mine").unwrap();
    let s = restore("never");
    assert_eq!(fs::read(&a).unwrap(), b"mine");
    assert!(cairn_tests::cmd::num(&s, "files_skipped") >= 4, "{s}");

    // if-newer: replaced only where the snapshot's mtime is newer.
    set_mtime(&a, 2_000_000_000);
    fs::write(&z, b"old z").unwrap();
    set_mtime(&z, 1_000_000_000);
    restore("if-newer");
    assert_eq!(fs::read(&a).unwrap(), b"mine");
    assert_eq!(fs::read(&z).unwrap(), vec![b'z'; 1536]);

    // if-changed: same size and mtime count as up to date (contents kept,
    // metadata restored); anything else is replaced.
    fs::write(&a, b"SAME LEN").unwrap();
    set_mtime(&a, 1_500_000_200);
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&z, vec![b'y'; 1536]).unwrap();
    set_mtime(&z, 1_500_000_301);
    restore("if-changed");
    assert_eq!(fs::read(&a).unwrap(), b"SAME LEN");
    assert_eq!(mode_of(&a), 0o640, "if-changed restores the metadata");
    assert_eq!(fs::read(&z).unwrap(), vec![b'z'; 1536]);

    // always (the default): everything as in the snapshot.
    env.restore("latest", &target, &[]);
    cairn_tests::assert_restored_equal(&src, &target);

    let out = env
        .cairn(["restore", "latest", "--overwrite", "sometimes", "--target"])
        .arg(&target)
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.one_line_error().contains("sometimes"),
        "{}",
        out.describe()
    );
}

#[test]
fn restore_delete_and_dry_run() {
    let env = TestEnv::new();
    let src = ls_tree(&env);
    env.init();
    env.backup_json([&src]);

    // A dry run creates nothing, not even the target.
    let fresh = env.path("fresh");
    let out = env
        .cairn(["restore", "latest", "--dry-run", "--target"])
        .arg(&fresh)
        .run()
        .success();
    assert!(
        out.stdout_str().starts_with("would restore 4 files, "),
        "{}",
        out.describe()
    );
    assert!(!fresh.exists(), "a dry run created the target");

    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let r = cairn_tests::restored(&target, &src);
    fs::write(r.join("extra.txt"), b"x").unwrap();
    fs::create_dir_all(r.join("sub/extradir/deeper")).unwrap();
    fs::write(r.join("sub/extradir/deeper/f"), b"f").unwrap();
    fs::write(r.join("sub/deep/keep.log"), b"k").unwrap();
    fs::write(target.join("top-level"), b"t").unwrap();
    fs::write(r.join("a.txt"), b"changed").unwrap();

    // A dry run of --delete counts, changes nothing.
    let before = files_with_bytes(&target);
    let s = env
        .cairn([
            "restore",
            "latest",
            "--json",
            "--dry-run",
            "--delete",
            "--target",
        ])
        .arg(&target)
        .run()
        .success()
        .summary();
    assert_eq!(s["dry_run"], true, "{s}");
    assert_eq!(cairn_tests::cmd::num(&s, "files_deleted"), 4, "{s}");
    assert_eq!(
        files_with_bytes(&target),
        before,
        "the dry run changed the target"
    );

    // --delete with an exclude: excluded paths are not deleted.
    env.restore("latest", &target, &["--delete", "--exclude", "*.log"]);
    assert!(r.join("sub/deep/keep.log").exists());
    assert!(!r.join("extra.txt").exists());
    assert!(!r.join("sub/extradir").exists());
    assert!(!target.join("top-level").exists());
    assert_eq!(fs::read(r.join("a.txt")).unwrap(), b"hello a\n");
    env.restore("latest", &target, &["--delete"]);
    assert!(!r.join("sub/deep/keep.log").exists());
    cairn_tests::assert_restored_equal(&src, &target);
    assert_eq!(
        files_with_bytes(&target)
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        files_with_bytes(&src)
            .keys()
            .map(|k| format!("{}/{k}", src.strip_prefix("/").unwrap().display()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn restore_pattern_files_and_sparse() {
    use std::os::unix::fs::FileExt;
    let env = TestEnv::new();
    let src = ls_tree(&env);
    fs::write(src.join("UPPER.TXT"), b"U").unwrap();
    const LEN: u64 = 64 << 20;
    {
        let f = fs::File::create(src.join("sparse.img")).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(b"end", LEN - 3).unwrap();
    }
    env.init();
    env.backup_json([&src]);
    let s = src.display().to_string();
    let files = |target: &Path| -> Vec<String> {
        files_with_bytes(&cairn_tests::restored(target, &src))
            .into_keys()
            .collect()
    };
    let pat = |name: &str, text: &str| -> PathBuf {
        let p = env.path(name);
        fs::write(&p, text).unwrap();
        p
    };
    let inc = pat("inc", "# text files\n\n*.txt\n");
    let exc = pat("exc", "deep\n");
    let iinc = pat("iinc", "*.txt\n");
    let iexc = pat("iexc", "SUB\n");

    let t1 = env.path("t1");
    env.cairn(["restore", "latest", "--include-file"])
        .arg(&inc)
        .arg("--exclude-file")
        .arg(&exc)
        .arg("--target")
        .arg(&t1)
        .run()
        .success();
    assert_eq!(files(&t1), ["a.txt"]);
    let t2 = env.path("t2");
    env.cairn(["restore", "latest", "--iinclude-file"])
        .arg(&iinc)
        .arg("--iexclude-file")
        .arg(&iexc)
        .arg("--target")
        .arg(&t2)
        .run()
        .success();
    assert_eq!(files(&t2), ["UPPER.TXT", "a.txt"]);
    let out = env
        .cairn([
            "restore",
            "latest",
            "--include-file",
            "/nonexistent/list",
            "--target",
        ])
        .arg(env.path("t3"))
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    out.one_line_error();

    // --sparse: the hole stays a hole, the bytes are the same. (The blobs
    // holding data, up to 8 MiB each, are written whole: 16 MiB of 64.)
    let t4 = env.path("t4");
    env.cairn(["restore", "latest", "--sparse", "--include"])
        .arg(format!("{s}/sparse.img"))
        .arg("--target")
        .arg(&t4)
        .run()
        .success();
    let restored = cairn_tests::restored(&t4, &src).join("sparse.img");
    assert_eq!(
        cairn_tests::tree::hash_file(&restored),
        cairn_tests::tree::hash_file(&src.join("sparse.img"))
    );
    if cairn_tests::allocated_bytes(&src.join("sparse.img")) < LEN / 16 {
        assert!(
            cairn_tests::allocated_bytes(&restored) < LEN / 2,
            "{} bytes allocated",
            cairn_tests::allocated_bytes(&restored)
        );
    }
}

#[test]
fn dump_zip_and_target() {
    use std::os::unix::fs::symlink;
    let env = TestEnv::new();
    let src = ls_tree(&env);
    symlink("a.txt", src.join("link")).unwrap();
    cairn_tests::gen::random_file(&src.join("sub/random.bin"), 3 << 20, 11);
    env.init();
    env.backup_json([&src]);
    let s = src.display().to_string();

    // A zip of a directory on stdout, unpacked by unzip.
    let out = env
        .cairn(["dump", "--archive", "zip", "latest", &format!("{s}/sub")])
        .run()
        .success();
    let zip = env.path("sub.zip");
    fs::write(&zip, &out.stdout).unwrap();
    let unpacked = env.mkdir("unzipped");
    let st = std::process::Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(st.success(), "unzip failed");
    let inside = cairn_tests::restored(&unpacked, &src).join("sub");
    assert_eq!(
        files_with_bytes(&inside),
        files_with_bytes(&src.join("sub"))
    );

    // The whole source: the symlink is a symlink, modes kept, files deflated.
    let zip2 = env.path("all.zip");
    env.cairn(["dump", "-a", "zip", "--target"])
        .arg(&zip2)
        .args(["latest", &s])
        .run()
        .success();
    let listing = std::process::Command::new("zipinfo")
        .arg(&zip2)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let rel = s.trim_start_matches('/');
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!("{rel}/{name}")))
            .unwrap_or_else(|| panic!("{name} not in\n{listing}"))
            .to_string()
    };
    assert!(line("link").starts_with("lrwxrwxrwx"), "{}", line("link"));
    assert!(line("z.md").starts_with("-rw-"), "{}", line("z.md"));
    assert!(line("z.md").contains(" defN "), "{}", line("z.md"));
    assert!(line("sub/").starts_with("drwx"), "{}", line("sub/"));
    let unpacked2 = env.mkdir("unzipped2");
    assert!(std::process::Command::new("unzip")
        .arg("-q")
        .arg(&zip2)
        .arg("-d")
        .arg(&unpacked2)
        .status()
        .unwrap()
        .success());
    let top = cairn_tests::restored(&unpacked2, &src);
    assert_eq!(fs::read_link(top.join("link")).unwrap(), Path::new("a.txt"));
    assert_eq!(files_with_bytes(&top), files_with_bytes(&src));

    // --target for a file: its bytes; for tar: what stdout gets.
    let one = env.path("one.bin");
    env.cairn(["dump", "--target"])
        .arg(&one)
        .args(["latest", &format!("{s}/sub/random.bin")])
        .run()
        .success();
    assert_eq!(
        fs::read(&one).unwrap(),
        fs::read(src.join("sub/random.bin")).unwrap()
    );
    let tar = env.path("all.tar");
    env.cairn(["dump", "-t"])
        .arg(&tar)
        .args(["latest", &s])
        .run()
        .success();
    let stdout_tar = env.cairn(["dump", "latest", &s]).run().success().stdout;
    assert_eq!(fs::read(&tar).unwrap(), stdout_tar);

    // Bad input: one line, no file left behind.
    let missing = env.path("missing.zip");
    let out = env
        .cairn(["dump", "-a", "zip", "--target"])
        .arg(&missing)
        .args(["latest", &format!("{s}/nope")])
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    out.one_line_error();
    assert!(!missing.exists());
    let out = env.cairn(["dump", "-a", "rar", "latest", &s]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.one_line_error().contains("rar"), "{}", out.describe());
}
