//! A tree with every file type and the metadata a restore must keep,
//! backed up, restored, and compared exactly.

use cairn_tests::gen::{compressible_file, random_file};
use cairn_tests::tree::{Kind, Manifest};
use cairn_tests::{allocated_bytes, assert_trees_equal, is_root, note, restored, TestEnv};
use filetime::FileTime;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;
/// The sparse file: this long, with a few bytes of data at its start and end.
/// Blobs are up to 8 MiB and a restorer may write the blobs holding the
/// data whole, so "sparse" means: far less allocated than the length.
const SPARSE_LEN: u64 = 256 * MIB;

/// What the generated tree ended up containing, where the file system let it.
pub struct Made {
    pub xattrs: bool,
    pub sparse: bool,
    pub device: bool,
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn mkfifo(p: &Path, mode: u32) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    assert_eq!(
        r,
        0,
        "mkfifo {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn mknod_char(p: &Path, major: u32, minor: u32) -> bool {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o640,
            libc::makedev(major, minor),
        ) == 0
    }
}

/// Build the tree under `root` (which must exist and be empty).
pub fn make_every_kind_tree(root: &Path) -> Made {
    let p = |rel: &str| root.join(rel);
    // Regular files of varied sizes and kinds of content.
    fs::write(p("empty"), b"").unwrap();
    fs::write(p("tiny.txt"), b"hello, cairn\n").unwrap();
    random_file(&p("random-3m.bin"), 3 * MIB + 12345, 1);
    compressible_file(&p("text-4m.log"), 4 * MIB + 7, 2);
    random_file(&p("large-9m.bin"), 9 * MIB + 1, 3); // larger than the largest chunk
    random_file(&p("exactly-512k.bin"), 512 * 1024, 4);
    // The same content twice: deduplicated in the repository, two files on restore.
    random_file(&p("dup-a.bin"), MIB + 3, 5);
    random_file(&p("dup-b.bin"), MIB + 3, 5);

    // Nested and empty directories.
    fs::create_dir_all(p("nested/a/b/c/d")).unwrap();
    fs::write(p("nested/a/b/c/d/deep.txt"), b"deep\n").unwrap();
    fs::write(p("nested/a/one.txt"), b"one\n").unwrap();
    fs::create_dir_all(p("empty-dir")).unwrap();
    fs::create_dir_all(p("nested/empty-inner/also-empty")).unwrap();

    // Symlinks: relative, absolute, dangling, to a directory, non-UTF-8 target.
    fs::create_dir_all(p("links")).unwrap();
    symlink("../tiny.txt", p("links/relative")).unwrap();
    symlink(p("nested/a/one.txt"), p("links/absolute")).unwrap();
    symlink("does/not/exist", p("links/dangling")).unwrap();
    symlink("../nested", p("links/to-dir")).unwrap();
    symlink(os(b"target-\xff\xfe"), p("links/odd-target")).unwrap();

    // Hard links: a group of three across directories, and a pair.
    fs::create_dir_all(p("hard/x")).unwrap();
    fs::write(p("hard/original"), b"linked content\n").unwrap();
    fs::hard_link(p("hard/original"), p("hard/second")).unwrap();
    fs::hard_link(p("hard/original"), p("hard/x/third")).unwrap();
    random_file(&p("hard/big-a"), 2 * MIB, 6);
    fs::hard_link(p("hard/big-a"), p("hard/x/big-b")).unwrap();

    // A fifo.
    mkfifo(&p("fifo"), 0o640);

    // A character device (only where mknod is allowed: root, not in a user namespace).
    let device = is_root() && mknod_char(&p("null-device"), 1, 3);
    if !device {
        note!("roundtrip: no character device in the tree (mknod not permitted)");
    }

    // A sparse file: data at the start and the end, a hole in between.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(p("sparse.img")).unwrap();
        f.write_all_at(b"start of the sparse file", 0).unwrap();
        f.write_all_at(b"end", SPARSE_LEN - 3).unwrap();
    }
    let sparse = allocated_bytes(&p("sparse.img")) < SPARSE_LEN / 16;
    // Only a hole; data followed by a hole up to the end.
    fs::File::create(p("hole-only.img"))
        .unwrap()
        .set_len(20 * MIB)
        .unwrap();
    {
        let f = fs::File::create(p("trailing-hole.img")).unwrap();
        use std::io::Write;
        (&f).write_all(b"data, then nothing").unwrap();
        f.set_len(30 * MIB + 5).unwrap();
    }
    if !sparse {
        note!("roundtrip: this file system does not keep files sparse; sparse restore not checked");
    }

    // Names: non-UTF-8, control characters, spaces, a leading dash, non-ASCII, the longest.
    fs::write(root.join(os(b"latin1-caf\xe9.txt")), b"non-utf8 name\n").unwrap();
    fs::create_dir(root.join(os(b"dir-\xff\xfe"))).unwrap();
    fs::write(root.join(os(b"dir-\xff\xfe/inside-\x80.txt")), b"inside\n").unwrap();
    fs::write(p("new\nline"), b"newline in name\n").unwrap();
    fs::write(p(" spaces  around "), b"spaces\n").unwrap();
    fs::write(p("-leading-dash"), b"dash\n").unwrap();
    fs::write(p("back\\slash"), b"backslash\n").unwrap();
    fs::write(p("日本語のファイル.txt"), "unicode\n").unwrap();
    fs::write(p(&"L".repeat(255)), b"longest name\n").unwrap();
    fs::write(p("star*and?question[x]"), b"glob characters\n").unwrap();

    // Modes.
    fs::create_dir_all(p("modes")).unwrap();
    for (name, mode) in [
        ("0600", 0o600),
        ("0755", 0o755),
        ("0444", 0o444),
        ("0000", 0o000),
        ("4755-setuid", 0o4755),
    ] {
        let f = p(&format!("modes/{name}"));
        fs::write(&f, name.as_bytes()).unwrap();
        set_mode(&f, mode);
    }
    fs::create_dir(p("modes/setgid-dir")).unwrap();
    fs::write(p("modes/setgid-dir/file"), b"in a setgid dir\n").unwrap();
    set_mode(&p("modes/setgid-dir"), 0o2775);
    fs::create_dir(p("modes/sticky-dir")).unwrap();
    set_mode(&p("modes/sticky-dir"), 0o1777);
    fs::create_dir(p("modes/private-dir")).unwrap();
    fs::write(p("modes/private-dir/file"), b"private\n").unwrap();
    set_mode(&p("modes/private-dir"), 0o700);
    fs::create_dir(p("modes/read-only-dir")).unwrap();
    fs::write(p("modes/read-only-dir/file"), b"in a read-only dir\n").unwrap();
    set_mode(&p("modes/read-only-dir"), 0o555);

    // Owners other than the test's (root can chown).
    if is_root() {
        std::os::unix::fs::lchown(p("tiny.txt"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(p("nested/a"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::lchown(p("links/relative"), Some(1111), Some(2222)).unwrap();
        std::os::unix::fs::lchown(p("fifo"), Some(3333), Some(3333)).unwrap();
    } else {
        note!("roundtrip: not root, ownership other than the test's own is not exercised");
    }

    // Extended attributes.
    let xattrs = match xattr::set(p("tiny.txt"), "user.comment", b"a comment") {
        Ok(()) => {
            xattr::set(p("tiny.txt"), "user.binary", b"\x00\x01\xff\xfe binary").unwrap();
            xattr::set(p("tiny.txt"), "user.empty", b"").unwrap();
            xattr::set(p("nested"), "user.on-a-dir", b"directory attribute").unwrap();
            xattr::set(p("large-9m.bin"), "user.big", &vec![b'x'; 2000]).unwrap();
            true
        }
        Err(e) => {
            note!("roundtrip: the file system refuses user xattrs ({e}); xattrs not checked");
            false
        }
    };

    set_all_mtimes(root);
    Made {
        xattrs,
        sparse,
        device,
    }
}

/// Give every entry a distinct mtime with nanoseconds (some before 1970,
/// some far ahead), children before parents so the directories keep theirs.
fn set_all_mtimes(root: &Path) {
    let mut all: Vec<PathBuf> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        all.push(d.clone());
        if fs::symlink_metadata(&d).unwrap().is_dir() {
            for e in fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    // Deepest first.
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in all.iter().enumerate() {
        let i = i as i64;
        let secs = match i % 5 {
            0 => -14_182_940 - i * 7,        // 1969
            1 => 4_102_444_800 + i * 1000,   // 2100
            _ => 1_600_000_000 + i * 86_400, // 2020s
        };
        let t = FileTime::from_unix_time(secs, (123_456_789 + i as u32 * 7919) % 1_000_000_000);
        filetime::set_symlink_file_times(path, t, t)
            .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
    }
}

/// Run a system tool on `args`; None (the test's skip, or failure under
/// `cargo xtask test`) when it is not installed. Fails when it fails.
fn tool(name: &str, package: &str, args: &[&OsStr]) -> Option<String> {
    let out = match std::process::Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cairn_tests::missing(&format!("`{name}` (Debian package {package})"));
            return None;
        }
        Err(e) => panic!("{name}: {e}"),
    };
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// POSIX ACLs (a file's, a directory's access and default ones) and file
/// capabilities come back as they were: the archiver stores every
/// extended attribute, and the restore sets them (capabilities as root).
#[test]
fn acls_and_file_capabilities_are_restored() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("acl.txt"), b"shared\n").unwrap();
    fs::create_dir(src.join("acl-dir")).unwrap();
    fs::write(
        src.join("acl-dir/inside.txt"),
        b"made before the default ACL\n",
    )
    .unwrap();
    fs::write(src.join("capable"), b"#!/bin/sh\n").unwrap();
    let p = |rel: &str| src.join(rel).into_os_string();
    let setfacl = |args: &[&OsStr]| tool("setfacl", "acl", args);
    let Some(_) = setfacl(&[
        "-m".as_ref(),
        "u:65534:r--,g:65534:rw-".as_ref(),
        &p("acl.txt"),
    ]) else {
        return;
    };
    setfacl(&["-m".as_ref(), "u:65534:r-x".as_ref(), &p("acl-dir")]).unwrap();
    setfacl(&[
        "-d".as_ref(),
        "-m".as_ref(),
        "u:65534:rwx".as_ref(),
        &p("acl-dir"),
    ])
    .unwrap();
    let mut wanted = vec![
        ("acl.txt", "system.posix_acl_access"),
        ("acl-dir", "system.posix_acl_access"),
        ("acl-dir", "system.posix_acl_default"),
    ];
    let caps = is_root();
    if caps {
        let Some(_) = tool(
            "setcap",
            "libcap2-bin",
            &[
                "cap_net_bind_service,cap_net_raw+ep".as_ref(),
                &p("capable"),
            ],
        ) else {
            return;
        };
        wanted.push(("capable", "security.capability"));
    } else {
        cairn_tests::skip("file capabilities: only root may set them");
    }
    for (rel, name) in &wanted {
        assert!(
            xattr::get(src.join(rel), name).unwrap().is_some(),
            "the source {rel} has no {name}"
        );
    }

    env.init();
    env.backup_json([&src]);
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let out = restored(&target, &src);
    // Every attribute, byte for byte (the tree comparison reads them all).
    assert_trees_equal(&src, &out);
    for (rel, name) in &wanted {
        assert_eq!(
            xattr::get(out.join(rel), name).unwrap(),
            xattr::get(src.join(rel), name).unwrap(),
            "{name} of {rel}"
        );
    }
    // And as the system's own tools read them.
    let getfacl = |root: &Path| {
        let args: Vec<std::ffi::OsString> = ["acl.txt", "acl-dir", "acl-dir/inside.txt"]
            .iter()
            .map(|r| root.join(r).into_os_string())
            .collect();
        let mut a: Vec<&OsStr> = vec!["--omit-header".as_ref(), "--absolute-names".as_ref()];
        a.extend(args.iter().map(|s| s.as_os_str()));
        tool("getfacl", "acl", &a)
            .unwrap()
            .replace(root.to_str().unwrap(), "ROOT")
    };
    let (want, got) = (getfacl(&src), getfacl(&out));
    assert!(
        want.contains("user:nobody:r--") || want.contains("user:65534:r--"),
        "{want}"
    );
    assert_eq!(got, want, "getfacl of the restored tree");
    if caps {
        let getcap = |root: &Path| {
            tool("getcap", "libcap2-bin", &[root.join("capable").as_os_str()])
                .unwrap()
                .replace(root.to_str().unwrap(), "ROOT")
        };
        let want = getcap(&src);
        assert!(
            want.contains("cap_net_bind_service,cap_net_raw=ep"),
            "{want}"
        );
        assert_eq!(getcap(&out), want, "getcap of the restored file");
    }
}

#[test]
fn every_file_type_and_metadata_round_trips() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let made = make_every_kind_tree(&src);
    let before = Manifest::take(&src);
    assert!(!before.paths_of(Kind::Fifo).is_empty() && !before.paths_of(Kind::Symlink).is_empty());

    env.init();
    let summary = env.backup_json([&src]);
    assert_eq!(
        summary["files_new"].as_u64().map(|n| n > 20),
        Some(true),
        "summary: {summary}"
    );

    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let out = restored(&target, &src);
    assert_trees_equal(&src, &out);
    // The source was not touched by the backup.
    cairn_tests::assert_manifest_matches(&before, &src);

    if made.sparse {
        let got = allocated_bytes(&out.join("sparse.img"));
        note!(
            "sparse.img: {} KiB allocated in the source, {} KiB restored",
            allocated_bytes(&src.join("sparse.img")) >> 10,
            got >> 10
        );
        assert!(
            got < SPARSE_LEN / 4,
            "sparse.img restored with {got} bytes allocated for a {SPARSE_LEN}-byte file with a few bytes of data: not sparse"
        );
    }
    if made.sparse {
        for (name, max) in [("hole-only.img", 0), ("trailing-hole.img", 9 * MIB)] {
            let got = allocated_bytes(&out.join(name));
            assert!(
                got <= max,
                "{name} restored with {got} bytes allocated (at most {max} expected)"
            );
        }
    }
    if made.xattrs {
        assert_eq!(
            xattr::get(out.join("tiny.txt"), "user.comment")
                .unwrap()
                .as_deref(),
            Some(&b"a comment"[..])
        );
    }
    if made.device {
        // The restored node is the same character device, not a file.
        let after = Manifest::take(&out);
        let dev = after
            .get("null-device")
            .expect("the character device was not restored");
        assert_eq!(dev.kind, Kind::CharDev, "restored null-device: {dev:?}");
        assert_eq!(
            dev.rdev,
            libc::makedev(1, 3),
            "restored null-device: {dev:?}"
        );
    }

    // The directories above the backed-up path carry the real ones' modes.
    let tmp_parent = env.dir.path();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode();
    assert_eq!(
        format!("{:o}", mode(&restored(&target, tmp_parent))),
        format!("{:o}", mode(tmp_parent)),
        "the restored parent directory {} has another mode than the original",
        restored(&target, tmp_parent).display()
    );

    // Restoring again into the same target changes nothing.
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &out);

    // A second backup reuses the parent's nodes: its restore must be just as exact.
    let again = env.backup_json([&src]);
    assert_eq!(again["data_blobs"], 0, "nothing changed: {again}");
    let target3 = env.path("target-second");
    env.restore("latest", &target3, &[]);
    assert_trees_equal(&src, &restored(&target3, &src));

    // --verify reads everything back; check --read-data reads every blob.
    let target2 = env.path("target-verify");
    let v = env.restore("latest", &target2, &["--verify"]);
    assert!(
        v.stdout_str().contains("verified"),
        "restore --verify does not say what it verified:\n{}",
        v.describe()
    );
    assert_trees_equal(&src, &restored(&target2, &src));
    env.cairn(["check", "--read-data"]).run().success();
    let bad = cairn_tests::repo::layout_violations(&env.repo, false);
    assert!(
        bad.is_empty(),
        "the repository breaks repo-format.md §1:\n{}",
        bad.join("\n")
    );
}

#[test]
fn restore_over_an_existing_different_tree_makes_it_exact() {
    // Restoring into a target that already holds other versions of the
    // files (an empty directory where a file goes, a file where a symlink
    // goes, longer contents, a symlink where a directory goes) must still
    // give exactly the snapshot, without writing through symlinks.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("a"), b"final a\n").unwrap();
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"final f\n").unwrap();
    symlink("a", src.join("l")).unwrap();
    fs::write(src.join("was-a-dir"), b"now a file\n").unwrap();
    env.init();
    env.backup_json([&src]);

    let target = env.path("target");
    let out = restored(&target, &src);
    fs::create_dir_all(out.join("was-a-dir")).unwrap();
    fs::write(out.join("a"), vec![b'z'; 100_000]).unwrap();
    fs::write(out.join("l"), b"a file where the symlink goes").unwrap();
    let outside = env.mkdir("outside");
    symlink(&outside, out.join("d")).unwrap();
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &out);
    let leaked: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        leaked.is_empty(),
        "restore wrote through a symlink in the target: {leaked:?}"
    );

    // A non-empty directory where a file goes is not deleted (as restic
    // and rsync do): that entry fails with an error naming it, the rest
    // is restored.
    let target2 = env.path("target2");
    let out2 = restored(&target2, &src);
    fs::create_dir_all(out2.join("was-a-dir/inner")).unwrap();
    fs::write(out2.join("was-a-dir/inner/keep"), b"mine").unwrap();
    let r = env
        .cairn(["restore", "latest", "--target"])
        .arg(&target2)
        .run();
    assert_eq!(r.code(), 1, "{}", r.describe());
    assert!(
        r.error_lines().iter().any(|l| l.contains("was-a-dir")),
        "{}",
        r.describe()
    );
    assert_eq!(
        fs::read(out2.join("was-a-dir/inner/keep")).unwrap(),
        b"mine"
    );
    assert_eq!(fs::read(out2.join("d/f")).unwrap(), b"final f\n");
    assert_eq!(fs::read(out2.join("a")).unwrap(), b"final a\n");
}

#[test]
fn sparse_file_larger_than_4_gib_round_trips() {
    // Offsets past 4 GiB must not wrap (u32 arithmetic anywhere in the
    // chain would put data at the wrong place).
    use std::os::unix::fs::FileExt;
    const G4: u64 = 1 << 32;
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let path = src.join("huge.img");
    let f = fs::File::create(&path).unwrap();
    let marks: [(u64, &[u8]); 4] = [
        (0, b"head"),
        (G4 - 2, b"across"),
        (G4 + 12345, b"past 4 GiB"),
        (G4 + 512 * MIB - 4, b"tail"),
    ];
    for (off, data) in marks {
        f.write_all_at(data, off).unwrap();
    }
    drop(f);
    if allocated_bytes(&path) > 64 * MIB {
        cairn_tests::skip("this file system does not keep files sparse");
        return;
    }
    env.init();
    env.backup_json([&src]);
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let r = restored(&target, &path);
    let md = fs::metadata(&r).unwrap();
    assert_eq!(md.len(), G4 + 512 * MIB);
    let g = fs::File::open(&r).unwrap();
    for (off, data) in marks {
        let mut buf = vec![0u8; data.len()];
        g.read_exact_at(&mut buf, off).unwrap();
        assert_eq!(buf, data, "at offset {off}");
    }
    // And zeros right around the marks.
    let mut buf = [1u8; 16];
    g.read_exact_at(&mut buf, G4 + 12345 + 10).unwrap();
    assert_eq!(buf, [0u8; 16]);
    let got = allocated_bytes(&r);
    assert!(
        got < 256 * MIB,
        "the 4.5 GiB sparse file was restored with {} MiB allocated",
        got / MIB
    );
}

#[test]
fn metadata_only_changes_are_backed_up() {
    // chmod, chown, xattrs and directory mtimes change no content: the
    // second backup must still record them (ctime tells a file changed).
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"content stays the same").unwrap();
    fs::write(src.join("g"), b"so does this").unwrap();
    env.init();
    env.backup_json([&src]);

    set_mode(&src.join("d/f"), 0o600);
    set_mode(&src.join("d"), 0o750);
    if is_root() {
        std::os::unix::fs::lchown(src.join("g"), Some(4242), Some(4343)).unwrap();
    }
    let _ = xattr::set(src.join("g"), "user.added", b"later");
    let t = FileTime::from_unix_time(1_234_567_890, 987_654_321);
    filetime::set_file_mtime(src.join("d"), t).unwrap();
    filetime::set_file_mtime(src.join("d/f"), t).unwrap();
    let s2 = env.backup_json([&src]);
    assert_eq!(s2["data_blobs"], 0, "only metadata changed: {s2}");
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
}

#[test]
fn unchanged_entries_keep_their_xattrs_and_link_targets() {
    // An unchanged entry (same inode and ctime) takes its xattrs and link
    // target from the parent snapshot instead of reading them again: the
    // second snapshot must still have them, and a later change must show.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"content").unwrap();
    symlink("d/f", src.join("link")).unwrap();
    if let Err(e) = xattr::set(src.join("d/f"), "user.k", b"v1") {
        note!("the file system refuses user xattrs ({e}); only link targets checked");
    }
    let _ = xattr::set(src.join("d"), "user.dir", b"on a dir");
    env.init();
    env.backup_json([&src]);
    let s2 = env.backup_json([&src]);
    assert_eq!(s2["files_unmodified"], 1, "{s2}");
    let target = env.path("t2");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));

    let _ = xattr::set(src.join("d/f"), "user.k", b"v2");
    fs::remove_file(src.join("link")).unwrap();
    symlink("elsewhere", src.join("link")).unwrap();
    env.backup_json([&src]);
    let target = env.path("t3");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
    assert_eq!(
        fs::read_link(restored(&target, &src).join("link")).unwrap(),
        Path::new("elsewhere")
    );
}

#[test]
fn special_files_as_backup_paths_do_not_block() {
    // A fifo or a device given directly must be stored as such, never
    // opened (reading a fifo blocks forever); a socket in the tree too.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    mkfifo(&src.join("fifo"), 0o600);
    let _listener = std::os::unix::net::UnixListener::bind(src.join("socket")).unwrap();
    fs::write(src.join("plain"), b"plain").unwrap();
    env.init();
    let mut c = env.cairn(["backup"]);
    c.arg(src.join("fifo"))
        .arg(&src)
        .timeout(std::time::Duration::from_secs(60));
    c.run().success();
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let r = restored(&target, &src);
    assert_eq!(
        Manifest::take(&r).get("fifo").map(|e| e.kind),
        Some(Kind::Fifo)
    );
    assert_eq!(fs::read(r.join("plain")).unwrap(), b"plain");
    if is_root() && Path::new("/dev/null").exists() {
        let mut c = env.cairn(["backup", "/dev/null"]);
        c.timeout(std::time::Duration::from_secs(60));
        c.run().success();
        let listing = env
            .cairn(["ls", "--json", "latest", "/dev/null"])
            .run()
            .success();
        let node = listing
            .json_lines()
            .into_iter()
            .find(|v| v["path"] == "/dev/null")
            .expect("/dev/null listed");
        assert_eq!(node["type"], "chardev", "{node}");
    }
}
