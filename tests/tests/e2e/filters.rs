//! What gets backed up (exclude options) and what gets restored
//! (--include / --exclude).

use cairn_tests::{restored, TestEnv};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// The files (not directories) of the latest snapshot, relative to `src`,
/// from `ls --json`.
fn snapshot_files(env: &TestEnv, src: &Path) -> BTreeSet<String> {
    let out = env.cairn(["ls", "--json", "latest"]).run().success();
    let prefix = format!("{}/", src.display());
    out.json_lines()
        .iter()
        .filter(|v| v["struct_type"] == "node" && v["type"] != "dir")
        .filter_map(|v| {
            v["path"]
                .as_str()
                .and_then(|p| p.strip_prefix(&prefix))
                .map(String::from)
        })
        .collect()
}

/// Every file (not directory) below `root`, relative to it.
fn files_below(root: &Path) -> BTreeSet<String> {
    let m = cairn_tests::Manifest::take(root);
    m.entries
        .iter()
        .filter(|(_, e)| e.kind != cairn_tests::tree::Kind::Dir)
        .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[track_caller]
fn assert_present_absent(have: &BTreeSet<String>, present: &[&str], absent: &[&str], what: &str) {
    let missing: Vec<_> = present.iter().filter(|p| !have.contains(**p)).collect();
    let wrongly: Vec<_> = absent.iter().filter(|p| have.contains(**p)).collect();
    assert!(
        missing.is_empty() && wrongly.is_empty(),
        "{what}:\n  missing (should be there): {missing:?}\n  present (should be excluded): {wrongly:?}\n  all: {have:?}"
    );
}

const CACHEDIR_TAG: &[u8] =
    b"Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n";

#[test]
fn backup_exclude_options() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let s = src.as_path();
    write(s, "a.txt", b"a");
    write(s, "b.tmp", b"tmp");
    write(s, "sub/c.tmp", b"tmp");
    write(s, "sub/d.txt", b"d");
    write(s, "photo.jpg", b"jpeg");
    write(s, "photo.png", b"png");
    write(s, "secret.key", b"key");
    write(s, "sub/secret-notes.txt", b"notes");
    write(s, "nob/.nobackup", b"");
    write(s, "nob/x.txt", b"x");
    write(s, "nob/deeper/y.txt", b"y");
    write(s, "cache/CACHEDIR.TAG", CACHEDIR_TAG);
    write(s, "cache/blob.bin", b"cached");
    write(s, "badcache/CACHEDIR.TAG", b"not a real tag\n");
    write(s, "badcache/z.bin", b"z");
    write(s, "big.bin", &vec![7u8; 2 << 20]);
    write(s, "small.bin", &vec![7u8; 1000]);
    // A git work tree with nested ignore files and a negation.
    write(s, "proj/.git/HEAD", b"ref: refs/heads/main\n");
    write(s, "proj/.gitignore", b"*.log\n!keep.log\nbuild/\n");
    write(s, "proj/app.log", b"log");
    write(s, "proj/keep.log", b"kept");
    write(s, "proj/build/out.o", b"obj");
    write(s, "proj/src/main.rs", b"fn main() {}\n");
    write(s, "proj/src/.gitignore", b"generated.rs\n");
    write(s, "proj/src/generated.rs", b"// generated\n");
    let exclude_file = env.path("excludes");
    fs::write(
        &exclude_file,
        b"# comments and blank lines are ignored\n\nsecret*\n",
    )
    .unwrap();

    env.init();
    let mut c = env.cairn(["backup", "--json"]);
    c.arg(&src)
        .args([
            "--exclude",
            "*.tmp",
            "--iexclude",
            "*.JPG",
            "--exclude-file",
        ])
        .arg(&exclude_file)
        .args([
            "--exclude-if-present",
            ".nobackup",
            "--exclude-caches",
            "--exclude-larger-than",
            "1M",
            "--git-ignore",
        ]);
    c.run().success();

    let have = snapshot_files(&env, &src);
    assert_present_absent(
        &have,
        &[
            "a.txt",
            "sub/d.txt",
            "photo.png",
            "badcache/CACHEDIR.TAG",
            "badcache/z.bin",
            "small.bin",
            "proj/.gitignore",
            "proj/keep.log",
            "proj/src/main.rs",
            "proj/src/.gitignore",
        ],
        &[
            "b.tmp",
            "sub/c.tmp",
            "photo.jpg",
            "secret.key",
            "sub/secret-notes.txt",
            "nob/x.txt",
            "nob/deeper/y.txt",
            "cache/blob.bin",
            "big.bin",
            "proj/app.log",
            "proj/build/out.o",
            "proj/src/generated.rs",
        ],
        "backup with exclude options",
    );
    // The snapshot records its exclude patterns.
    let snap = &env.snapshots()[0];
    let excludes = snap["excludes"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>());
    assert!(
        excludes.is_some_and(|e| e.contains(&"*.tmp")),
        "snapshot without its excludes: {snap}"
    );

    // Without options, everything is there.
    env.cairn(["backup", "--force"]).arg(&src).run().success();
    let all = snapshot_files(&env, &src);
    assert_eq!(
        all,
        files_below(&src),
        "a backup without excludes is not complete"
    );
}

/// A tree for restore filters and its snapshot.
fn restore_env() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let s = src.as_path();
    write(s, "a.txt", b"a");
    write(s, "b.md", b"b");
    write(s, "sub/c.txt", b"c");
    write(s, "sub/deep/e.txt", b"e");
    write(s, "sub/deep/f.bin", b"f");
    write(s, "other/g.bin", b"g");
    write(s, "other/H.TXT", b"h");
    env.init();
    env.backup_json([&src]);
    (env, src)
}

fn restore_files(env: &TestEnv, src: &Path, name: &str, args: &[&str]) -> BTreeSet<String> {
    let target = env.path(name);
    env.restore("latest", &target, args);
    let r = restored(&target, src);
    if !r.exists() {
        return BTreeSet::new();
    }
    let got = files_below(&r);
    for f in &got {
        assert_eq!(
            fs::read(r.join(f)).unwrap(),
            fs::read(src.join(f)).unwrap(),
            "{f} restored with other contents"
        );
    }
    got
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn restore_include_of_one_hard_link_gives_the_file() {
    // Only the second name of a hard-linked pair is selected: it must be
    // restored as a file with the contents, not as a link to nothing.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    write(&src, "first/data", b"hard-linked contents");
    fs::create_dir(src.join("second")).unwrap();
    fs::hard_link(src.join("first/data"), src.join("second/data")).unwrap();
    env.init();
    env.backup_json([&src]);
    for (name, pattern) in [("t-second", "second"), ("t-first", "first")] {
        let got = restore_files(&env, &src, name, &["--include", pattern]);
        assert_eq!(
            got,
            set(&[&format!("{pattern}/data")]),
            "restore --include {pattern}"
        );
    }
}

#[test]
fn restore_include_and_exclude() {
    let (env, src) = restore_env();
    assert_eq!(
        restore_files(&env, &src, "t-include", &["--include", "*.txt"]),
        set(&["a.txt", "sub/c.txt", "sub/deep/e.txt"])
    );
    assert_eq!(
        restore_files(&env, &src, "t-exclude", &["--exclude", "sub"]),
        set(&["a.txt", "b.md", "other/g.bin", "other/H.TXT"])
    );
    assert_eq!(
        restore_files(
            &env,
            &src,
            "t-both",
            &["--include", "*.txt", "--exclude", "deep"]
        ),
        set(&["a.txt", "sub/c.txt"])
    );
    let sub = format!("{}/sub", src.display());
    assert_eq!(
        restore_files(&env, &src, "t-abs", &["--include", &sub]),
        set(&["sub/c.txt", "sub/deep/e.txt", "sub/deep/f.bin"])
    );
    assert_eq!(
        restore_files(&env, &src, "t-iinclude", &["--iinclude", "*.txt"]),
        set(&["a.txt", "sub/c.txt", "sub/deep/e.txt", "other/H.TXT"])
    );
    assert_eq!(
        restore_files(&env, &src, "t-none", &["--include", "*.nothing"]),
        set(&[])
    );
}

#[test]
fn exclude_pattern_forms() {
    // restic's pattern rules: a pattern without a leading `/` matches at
    // any depth; with one it is anchored at the file system root; `**`
    // spans directories; a directory match excludes everything below it.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let s = src.as_path();
    for f in [
        "top.txt",
        "sub/d.txt",
        "sub/keep.md",
        "a/b/c/gen1.rs",
        "a/gen2.rs",
        "a/b/keep.rs",
        "anchored/x",
        "other/anchored/y",
        "skipdir/z",
        "deep/skipdir/w",
    ] {
        write(s, f, f.as_bytes());
    }
    env.init();
    let anchored = format!("{}/anchored", src.display());
    env.cairn([
        "backup",
        "--exclude",
        "sub/*.txt",
        "--exclude",
        "a/**/gen*",
        "--exclude",
        &anchored,
        "--exclude",
        "skipdir",
    ])
    .arg(&src)
    .run()
    .success();
    let have = snapshot_files(&env, &src);
    assert_present_absent(
        &have,
        &["top.txt", "sub/keep.md", "a/b/keep.rs", "other/anchored/y"],
        &[
            "sub/d.txt",
            "a/b/c/gen1.rs",
            "a/gen2.rs",
            "anchored/x",
            "skipdir/z",
            "deep/skipdir/w",
        ],
        "exclude patterns",
    );
}

/// One size parser for every option: `backup --exclude-larger-than` takes
/// the forms `serve --max-size` takes (`1KiB`, `1 KB`, `1k`), and both
/// refuse the same text with the same message.
#[test]
fn sizes_are_read_alike_by_backup_and_serve() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    write(&src, "small.bin", &[1; 1000]);
    write(&src, "exact.bin", &[2; 1024]);
    write(&src, "big.bin", &[3; 1025]);
    env.init();
    for size in ["1KiB", "1 KB", "1k", "1024", "0.001MiB"] {
        env.cairn(["backup", "--exclude-larger-than", size])
            .arg(&src)
            .run()
            .success();
        let want = if size == "0.001MiB" {
            // 1048.576 bytes, rounded down: 1048.
            &["small.bin", "exact.bin", "big.bin"][..]
        } else {
            &["small.bin", "exact.bin"][..]
        };
        let have = snapshot_files(&env, &src);
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(have, want, "--exclude-larger-than {size}");
    }
    let backup = env
        .cairn(["backup", "--exclude-larger-than", "5Q"])
        .arg(&src)
        .run()
        .one_line_error();
    let serve = env
        .cairn(["serve", "--max-size", "5Q", "--path"])
        .arg(env.path("srv"))
        .run()
        .one_line_error();
    assert!(backup.contains("invalid size \"5Q\""), "{backup}");
    assert!(serve.contains("invalid size \"5Q\""), "{serve}");
    let tail = |l: &str| l[l.find("invalid size").unwrap()..].to_string();
    assert_eq!(tail(&backup), tail(&serve));
}
