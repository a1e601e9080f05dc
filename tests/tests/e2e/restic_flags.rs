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
