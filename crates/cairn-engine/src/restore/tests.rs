use super::*;
use crate::tree_walk::testutil::*;
use cairn_repository::format::tree::{ByteString, NodeKind, Xattr};
use cairn_repository::format::BlobKind;
use cairn_repository::BlobSaver;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

const NON_UTF8: &[u8] = b"caf\xe9";

fn mtime_ns(md: &fs::Metadata) -> i64 {
    md.mtime() * 1_000_000_000 + md.mtime_nsec()
}

fn atime_ns(md: &fs::Metadata) -> i64 {
    md.atime() * 1_000_000_000 + md.atime_nsec()
}

fn with_meta(mut n: Node, mode: u32, mtime: i64) -> Node {
    n.mode = (n.mode & libc::S_IFMT) | mode;
    n.mtime = mtime;
    n
}

fn special(name: &str, kind: NodeKind, type_bits: u32) -> Node {
    let mut n = Node::new(name, kind);
    n.mode = type_bits | 0o640;
    n.mtime = 1_400_000_000_000_000_007;
    n.atime = 1_400_000_000_000_000_008;
    n
}

fn hard_link(saver: &BlobSaver, name: &str) -> Node {
    let mut n = file(saver, name, &noise(5000, 2), 4096);
    n.links = 2;
    n.inode = 77;
    n.device = 5;
    n
}

/// A snapshot with every kind of entry, under `/data`.
struct Fixture {
    repo: Arc<Repository>,
    root: Id,
    a: Vec<u8>,
    deep: Vec<u8>,
    sparse_len: u64,
}

fn fixture(repo: Arc<Repository>) -> Fixture {
    let s = saver(&repo);
    let a = noise(200_000, 1);
    let deep = noise(70_000, 3);
    let mut a_node = with_meta(
        file(&s, "a.txt", &a, 10_000),
        0o640,
        1_234_567_890_123_456_789,
    );
    a_node.xattrs = vec![Xattr::new(b"user.cairn", b"value \x00\xff")];

    let mut sparse = Node::new("sparse", NodeKind::File);
    sparse.mode = libc::S_IFREG | 0o600;
    sparse.mtime = 1_300_000_000_000_000_000;
    let max = repo.config().chunker.max_size as usize;
    for part in [vec![0u8; max], vec![0u8; 1_000_000], b"tail".to_vec()] {
        sparse.size += part.len() as u64;
        sparse.content.push(s.save(BlobKind::Data, part).unwrap().0);
    }
    let sparse_len = sparse.size;

    let mut link = special("link", NodeKind::Symlink, libc::S_IFLNK);
    link.linktarget = Some("a.txt".into());
    let mut dev = special("null", NodeKind::Chardev, libc::S_IFCHR);
    dev.rdev = libc::makedev(1, 3);
    let mut odd = file(&s, "x", b"odd name", 100);
    odd.name = ByteString(NON_UTF8.to_vec());

    let sub = dir(
        &s,
        "sub",
        vec![file(&s, "deep.bin", &deep, 7000), hard_link(&s, "hl2")],
    );
    let locked = with_meta(
        dir(&s, "locked", vec![file(&s, "inner.txt", b"inside", 100)]),
        0o555,
        1_100_000_000_000_000_000,
    );
    let emptydir = with_meta(
        dir(&s, "emptydir", vec![]),
        0o700,
        1_200_000_000_000_000_000,
    );
    let data = with_meta(
        dir(
            &s,
            "data",
            vec![
                a_node,
                file(&s, "empty", b"", 100),
                with_meta(
                    file(&s, "ro.txt", b"read only", 100),
                    0o444,
                    1_000_000_000_000_000_001,
                ),
                hard_link(&s, "hl1"),
                link,
                special("fifo", NodeKind::Fifo, libc::S_IFIFO),
                special("sock", NodeKind::Socket, libc::S_IFSOCK),
                dev,
                odd,
                sparse,
                emptydir,
                locked,
                sub,
            ],
        ),
        0o750,
        1_111_111_111_222_222_222,
    );
    let root = tree(&s, vec![data]);
    s.finish().unwrap();
    Fixture {
        repo,
        root,
        a,
        deep,
        sparse_len,
    }
}

fn run(f: &Fixture, opts: &RestoreOptions, batch_weight: usize) -> RestoreSummary {
    let progress = RestoreProgress::default();
    let sum = restore_batched(&f.repo, f.root, opts, &progress, batch_weight).unwrap();
    assert_eq!(
        progress.bytes_done.load(Ordering::Relaxed),
        progress.bytes_total.load(Ordering::Relaxed)
    );
    assert_eq!(
        progress.errors.load(Ordering::Relaxed),
        sum.errors.len() as u64
    );
    assert_eq!(
        progress.files_done.load(Ordering::Relaxed) + progress.errors.load(Ordering::Relaxed),
        progress.files_total.load(Ordering::Relaxed),
        "{sum:?}"
    );
    sum
}

fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let ok = xattr::set(&probe, "user.probe", b"1").is_ok();
    fs::remove_file(&probe).unwrap();
    ok
}

#[test]
fn restores_contents_and_metadata() {
    let f = fixture(repo());
    for (weight, threads) in [(BATCH_WEIGHT, 0), (3, 1), (40, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let mut opts = RestoreOptions::new(&target);
        opts.threads = threads;
        opts.verify = true;
        let sum = run(&f, &opts, weight);
        let d = target.join("data");

        // Times first: reading a file may update its atime.
        let md = |p: &str| fs::symlink_metadata(d.join(p)).unwrap();
        assert_eq!(atime_ns(&md("a.txt")), 1_600_000_100_000_000_000);

        // Contents.
        assert_eq!(fs::read(d.join("a.txt")).unwrap(), f.a);
        assert_eq!(fs::read(d.join("sub/deep.bin")).unwrap(), f.deep);
        assert_eq!(fs::read(d.join("empty")).unwrap(), b"");
        assert_eq!(fs::read(d.join("ro.txt")).unwrap(), b"read only");
        assert_eq!(fs::read(d.join("locked/inner.txt")).unwrap(), b"inside");
        assert_eq!(
            fs::read(d.join(OsStr::from_bytes(NON_UTF8))).unwrap(),
            b"odd name"
        );
        assert_eq!(fs::read(d.join("hl1")).unwrap(), noise(5000, 2));

        // Modes and times.
        assert_eq!(md("a.txt").mode() & 0o7777, 0o640);
        assert_eq!(mtime_ns(&md("a.txt")), 1_234_567_890_123_456_789);
        assert_eq!(md("ro.txt").mode() & 0o7777, 0o444);
        assert_eq!(mtime_ns(&md("ro.txt")), 1_000_000_000_000_000_001);
        assert_eq!(md("locked").mode() & 0o7777, 0o555);
        assert_eq!(mtime_ns(&md("locked")), 1_100_000_000_000_000_000);
        // Directories keep their mtime although files were written into them.
        let data_md = fs::symlink_metadata(&d).unwrap();
        assert_eq!(data_md.mode() & 0o7777, 0o750);
        assert_eq!(mtime_ns(&data_md), 1_111_111_111_222_222_222);
        assert!(md("emptydir").is_dir());
        assert_eq!(fs::read_dir(d.join("emptydir")).unwrap().count(), 0);
        assert_eq!(md("emptydir").mode() & 0o7777, 0o700);
        assert_eq!(mtime_ns(&md("emptydir")), 1_200_000_000_000_000_000);

        // Symlink, fifo, socket.
        assert_eq!(fs::read_link(d.join("link")).unwrap(), Path::new("a.txt"));
        assert!(md("link").file_type().is_symlink());
        assert_eq!(mtime_ns(&md("link")), 1_400_000_000_000_000_007);
        assert!(md("fifo").file_type().is_fifo());
        assert_eq!(md("fifo").mode() & 0o7777, 0o640);
        assert!(!d.join("sock").exists());

        // Hard links share an inode.
        assert_eq!(md("hl1").ino(), md("sub/hl2").ino());
        assert_eq!(md("hl1").nlink(), 2);
        assert_ne!(md("hl1").ino(), md("a.txt").ino());

        // Sparse: the size is there, the zero blobs are not allocated.
        let sp = md("sparse");
        assert_eq!(sp.len(), f.sparse_len);
        assert!(
            sp.blocks() * 512 < 256 << 10,
            "sparse file uses {} blocks",
            sp.blocks()
        );
        let content = fs::read(d.join("sparse")).unwrap();
        assert!(content[..content.len() - 4].iter().all(|&b| b == 0));
        assert!(content.ends_with(b"tail"));

        // Extended attributes, where the file system has them.
        if xattrs_supported(tmp.path()) {
            assert_eq!(
                xattr::get(d.join("a.txt"), "user.cairn").unwrap().unwrap(),
                b"value \x00\xff"
            );
            assert!(sum.warnings.is_empty(), "{:?}", sum.warnings);
        } else {
            assert!(sum
                .warnings
                .iter()
                .any(|(p, w)| p.ends_with("a.txt") && w.contains("user.cairn")));
        }

        // Devices only as root (and a container may still refuse them).
        let dev = fs::symlink_metadata(d.join("null"));
        let dev_errors: Vec<_> = sum
            .errors
            .iter()
            .filter(|(p, _)| p.ends_with("null"))
            .collect();
        match dev {
            Ok(m) => {
                assert!(meta::is_root());
                assert!(m.file_type().is_char_device());
                assert_eq!(m.rdev(), libc::makedev(1, 3));
                assert!(dev_errors.is_empty());
            }
            Err(_) => assert_eq!(dev_errors.len(), 1, "{:?}", sum.errors),
        }
        assert_eq!(sum.errors.len(), dev_errors.len(), "{:?}", sum.errors);

        let devices = if dev_errors.is_empty() { 1 } else { 0 };
        assert_eq!(sum.files, 11 + devices, "weight {weight}");
        assert_eq!(sum.dirs, 4);
        assert_eq!(sum.skipped, 1);
        // Every regular file restored with data is verified (not the second hard link).
        assert_eq!(sum.verified, 8);
        assert_eq!(
            sum.bytes,
            200_000 + 9 + 5000 * 2 - 5000 + 6 + 8 + f.sparse_len + 70_000
        );
    }
}

#[test]
fn include_and_exclude() {
    let f = fixture(repo());
    let names = |root: &Path| -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in fs::read_dir(&p).unwrap() {
                let e = e.unwrap();
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out.sort();
        out
    };
    let restore_with = |inc: &[&str], exc: &[&str]| {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = RestoreOptions::new(tmp.path());
        opts.include = PatternSet::new(inc, false).unwrap();
        opts.exclude = PatternSet::new(exc, false).unwrap();
        let sum = run(&f, &opts, 5);
        (names(tmp.path()), sum, tmp)
    };

    let (got, _, _) = restore_with(&["/data/sub"], &[]);
    assert_eq!(
        got,
        ["data", "data/sub", "data/sub/deep.bin", "data/sub/hl2"]
    );

    // A pattern matching at any depth: parents created only where needed.
    let (got, _, tmp) = restore_with(&["inner.txt"], &[]);
    assert_eq!(got, ["data", "data/locked", "data/locked/inner.txt"]);
    let md = fs::metadata(tmp.path().join("data/locked")).unwrap();
    assert_eq!(
        md.mode() & 0o7777,
        0o555,
        "a parent created for an include gets its metadata"
    );

    let (got, _, _) = restore_with(&[], &["sub", "*.txt", "/data/sparse", "/data/null"]);
    assert!(
        !got.iter()
            .any(|n| n.contains("sub") || n.ends_with(".txt") || n == "data/sparse"),
        "{got:?}"
    );
    assert!(got.contains(&"data/locked".to_string()) && got.contains(&"data/emptydir".to_string()));
    assert!(got.contains(&"data/hl1".to_string()));

    let (got, sum, _) = restore_with(&["/data/sub"], &["deep.bin"]);
    assert_eq!(got, ["data", "data/sub", "data/sub/hl2"]);
    assert_eq!(sum.files, 1);

    let (got, _, _) = restore_with(&["/nothing"], &[]);
    assert!(got.is_empty());
}

#[test]
fn restores_a_subtree() {
    let f = fixture(repo());
    let tmp = tempfile::tempdir().unwrap();
    let sub = tree_walk::find_node(&f.repo, f.root, Path::new("/data/sub")).unwrap();
    let mut opts = RestoreOptions::new(tmp.path());
    opts.tree_path = "/data/sub".into();
    opts.exclude = PatternSet::new(&["/data/sub/hl2"], false).unwrap();
    let progress = RestoreProgress::default();
    let sum = restore(&f.repo, sub.subtree.unwrap(), &opts, &progress).unwrap();
    assert_eq!(fs::read(tmp.path().join("deep.bin")).unwrap(), f.deep);
    assert!(!tmp.path().join("hl2").exists());
    assert_eq!((sum.files, sum.dirs), (1, 0));
}

#[test]
fn corrupt_pack_names_the_file_and_spares_the_rest() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = local_repo(repo_dir.path());
    let s = saver(&repo);
    let good = noise(30_000, 7);
    let bad = noise(30_000, 8);
    let good_node = file(&s, "good.bin", &good, 10_000);
    let bad_node = file(&s, "bad.bin", &bad, 10_000);
    let mut lost = file(&s, "lost.bin", b"x", 10);
    lost.content.push(Id([9; 32]));
    let root = tree(&s, vec![good_node, bad_node.clone(), lost]);
    s.finish().unwrap();

    // Flip one byte inside the second blob of bad.bin.
    let loc = repo.lookup(&bad_node.content[1]).unwrap();
    let hex = loc.pack.to_hex();
    let pack_path = repo_dir.path().join("data").join(&hex[..2]).join(&hex);
    let mut bytes = fs::read(&pack_path).unwrap();
    bytes[loc.offset as usize + 100] ^= 0x40;
    fs::remove_file(&pack_path).unwrap();
    fs::write(&pack_path, &bytes).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let progress = RestoreProgress::default();
    let sum = restore(&repo, root, &RestoreOptions::new(tmp.path()), &progress).unwrap();
    assert_eq!(fs::read(tmp.path().join("good.bin")).unwrap(), good);
    assert_eq!(sum.errors.len(), 2, "{:?}", sum.errors);
    let (path, msg) = sum
        .errors
        .iter()
        .find(|(p, _)| p.ends_with("bad.bin"))
        .expect("bad.bin reported");
    assert_eq!(path, &tmp.path().join("bad.bin"));
    assert!(
        msg.contains(&loc.id.short()) && msg.contains("authentication failed"),
        "{msg}"
    );
    let (_, msg) = sum
        .errors
        .iter()
        .find(|(p, _)| p.ends_with("lost.bin"))
        .expect("lost.bin reported");
    assert!(msg.contains("not in the repository index"), "{msg}");
    assert_eq!(progress.errors.load(Ordering::Relaxed), 2);
    // The damaged file is not left behind with a zero-filled range, and
    // is not counted as restored.
    assert!(!tmp.path().join("bad.bin").exists());
    assert!(!tmp.path().join("lost.bin").exists());
    assert_eq!(sum.files, 1, "{sum:?}");
    assert_eq!(sum.bytes, good.len() as u64, "{sum:?}");
}

#[test]
fn verify_detects_a_changed_file() {
    let repo = repo();
    let s = saver(&repo);
    let content = noise(50_000, 4);
    let node = file(&s, "f", &content, 20_000);
    s.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    fs::write(&path, &content).unwrap();
    let progress = RestoreProgress::default();
    let report = Report::new(&progress);
    let job = |node: &Node| FileJob {
        path: path.clone(),
        node: node.clone(),
        size: content.len() as u64,
        wants: 0,
        pending: AtomicU32::new(0),
        state: Mutex::new(FileState::Created),
        failed: AtomicBool::new(false),
        meta_done: AtomicBool::new(false),
        mode_set: AtomicBool::new(false),
    };
    assert!(verify::verify_file(&repo, &job(&node), &report));

    let mut changed = content.clone();
    changed[30_000] ^= 1;
    fs::write(&path, &changed).unwrap();
    assert!(!verify::verify_file(&repo, &job(&node), &report));
    let mut longer = content.clone();
    longer.push(0);
    fs::write(&path, &longer).unwrap();
    assert!(!verify::verify_file(&repo, &job(&node), &report));
    let (errors, _, _) = report.into_lists();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].1.contains("offset 20000") && errors[0].1.contains(&node.content[1].short()),
        "{errors:?}"
    );
    assert!(errors[1].1.contains("longer"), "{errors:?}");
}

#[test]
fn overwrites_without_following_symlinks() {
    let repo = repo();
    let s = saver(&repo);
    let root = tree(
        &s,
        vec![
            file(&s, "plain", b"new contents", 100),
            file(&s, "trap", b"inside the target", 100),
            file(&s, "blocked", b"cannot land", 100),
            dir(&s, "d", vec![file(&s, "x", b"x", 100)]),
        ],
    );
    s.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t");
    let outside = tmp.path().join("outside");
    fs::create_dir(&target).unwrap();
    fs::write(&outside, b"precious").unwrap();
    fs::write(target.join("plain"), b"old contents that are longer").unwrap();
    std::os::unix::fs::symlink(&outside, target.join("trap")).unwrap();
    fs::create_dir_all(target.join("blocked/full")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), target.join("d")).unwrap();

    let never = RestoreOptions {
        overwrite: Overwrite::Never,
        ..RestoreOptions::new(&target)
    };
    let sum = restore(&repo, root, &never, &RestoreProgress::default()).unwrap();
    assert_eq!(sum.skipped, 4);
    assert_eq!(
        fs::read(target.join("plain")).unwrap(),
        b"old contents that are longer"
    );
    assert!(fs::symlink_metadata(target.join("d"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!tmp.path().join("x").exists());

    let sum = restore(
        &repo,
        root,
        &RestoreOptions::new(&target),
        &RestoreProgress::default(),
    )
    .unwrap();
    assert_eq!(fs::read(target.join("plain")).unwrap(), b"new contents");
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert!(fs::symlink_metadata(target.join("trap")).unwrap().is_file());
    assert_eq!(fs::read(target.join("trap")).unwrap(), b"inside the target");
    assert!(fs::symlink_metadata(target.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(target.join("d/x")).unwrap(), b"x");
    assert!(!tmp.path().join("x").exists());
    assert_eq!(sum.errors.len(), 1, "{:?}", sum.errors);
    assert_eq!(sum.errors[0].0, target.join("blocked"));
    assert!(
        sum.errors[0].1.contains("non-empty directory"),
        "{:?}",
        sum.errors
    );
    assert_eq!(sum.files, 3);
}

#[test]
fn unreadable_root_tree_is_fatal() {
    let repo = repo();
    let tmp = tempfile::tempdir().unwrap();
    let e = restore(
        &repo,
        Id([3; 32]),
        &RestoreOptions::new(tmp.path()),
        &RestoreProgress::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind, crate::Kind::Corrupt);
}

#[test]
fn hostile_names_stay_inside_the_target() {
    use cairn_repository::format::tree::Tree;
    let repo = repo();
    let s = saver(&repo);
    let mut evil = file(&s, "x", b"pwned", 8);
    evil.name = ByteString(b"../escaped".to_vec());
    let (inner, _) = s
        .save(
            BlobKind::Tree,
            Tree {
                nodes: vec![evil.clone(), file(&s, "ok", b"fine", 8)],
            }
            .to_bytes(),
        )
        .unwrap();
    let mut d = Node::new("d", NodeKind::Dir);
    d.mode = libc::S_IFDIR | 0o755;
    d.subtree = Some(inner);
    let mut lost = Node::new("c", NodeKind::Dir);
    lost.mode = libc::S_IFDIR | 0o700;
    lost.mtime = 1_000_000_000;
    lost.subtree = Some(Id([1; 32]));
    let (root, _) = s
        .save(
            BlobKind::Tree,
            Tree {
                nodes: vec![evil, lost, d],
            }
            .to_bytes(),
        )
        .unwrap();
    s.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t");
    let sum = restore(
        &repo,
        root,
        &RestoreOptions::new(&target),
        &RestoreProgress::default(),
    )
    .unwrap();
    assert_eq!(fs::read(target.join("d/ok")).unwrap(), b"fine");
    assert!(!tmp.path().join("escaped").exists() && !target.join("escaped").exists());
    assert_eq!(sum.errors.len(), 3, "{:?}", sum.errors);
    assert_eq!(
        sum.errors
            .iter()
            .filter(|(_, m)| m.contains("invalid entry name"))
            .count(),
        2,
        "{:?}",
        sum.errors
    );
    // An unreadable directory is reported and left empty; the walk goes on.
    let (p, m) = &sum.errors[1];
    assert_eq!(p, &target.join("c"));
    assert!(m.contains("directory /c"), "{m}");
    assert_eq!(
        mtime_ns(&fs::metadata(target.join("c")).unwrap()),
        1_000_000_000
    );
    assert_eq!((sum.files, sum.dirs), (1, 2));
}
