//! End-to-end tests of `cairn mount`: the binary mounts a real repository
//! (a local directory, or `cairn serve` over `rest:`), and the tests read
//! the mount with the standard library only, as any program would.
//!
//! Needs /dev/fuse and `fusermount3` (`apt-get install fuse3`); without
//! them every test prints `skipping: ...` and returns. Build the binary
//! first: `cargo build -p cairn-cli`, then
//! `cargo test -p cairn-tests --test mount`.
//!
//! | test | what it shows |
//! |---|---|
//! | `every_file_type_reads_back_exactly_on_a_local_repository` | a tree of every file type (hard links, fifo, device, sparse file, symlinks, xattrs, odd names, modes, owners, nanosecond mtimes) compares equal, bytes and metadata, with the original; the layout (`snapshots`, `latest`, `ids`, `hosts`, `tags`, filters, `--time-template`); 1,000 random ranges of a 64 MiB file; a snapshot taken while mounted appears; SIGTERM unmounts and exits 0 |
//! | `every_file_type_reads_back_exactly_over_rest` | the same tree through `cairn serve`; the server stopped: EIO for an uncached read, the mount stays up, and reads again once it is back |
//! | `a_damaged_pack_fails_only_the_files_using_it` | a flipped bit in one blob: EIO and a log line naming that file, the other files read exactly, the mount stays up |
//! | `left_behind_mount_is_detected_and_fusermount_unmounts` | a mount whose process was killed is reported with the command that clears it; `fusermount3 -u` ends a running mount with exit 0; with `--allow-other` a killed mount unmounts by itself; a bad mountpoint is one clear error |

use cairn_tests::cmd::wait_timeout;
use cairn_tests::gen::{compressible_file, random_file, Rng};
use cairn_tests::rest::{program, ServerProc};
use cairn_tests::tree::{assert_trees_equal_with, Options};
use cairn_tests::{is_root, note, restored, TestEnv};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// FUSE can be used here, or why not.
fn fuse_missing() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse on this machine".into());
    }
    if program("FUSERMOUNT3", "fusermount3").is_none() {
        return Some("fusermount3 is not installed (apt-get install fuse3)".into());
    }
    None
}

macro_rules! require_fuse {
    () => {
        if let Some(why) = fuse_missing() {
            cairn_tests::missing(&why);
            return;
        }
    };
}

fn mounted(dir: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let dir = dir.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*dir))
}

/// A running `cairn mount`, its stderr collected.
struct Mount {
    child: Option<Child>,
    dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr until the pipe closes (cairn has exited).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Mount {
    /// `cairn mount DIR EXTRA...` against `repo`; returns once mounted.
    fn start(env: &TestEnv, repo: &str, dir: &Path, extra: &[&str]) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let mut c = env.cairn(["mount"]);
        c.arg(&dir).args(extra).env("CAIRN_REPOSITORY", repo);
        let cmdline = c.command_line();
        let mut child = c
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while !mounted(&dir) {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "`{cmdline}` exited ({st}) before mounting:\n{}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`{cmdline}` did not mount within 120 s:\n{}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Mount {
            child: Some(child),
            dir,
            stderr,
            reader: Some(reader),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Send `sig`, wait for the exit; the directory must be unmounted.
    fn stop_with(mut self, sig: i32) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = wait_timeout(&mut child, Duration::from_secs(60), "cairn mount");
        // The reader thread ends with the pipe: all of stderr is in.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        assert!(
            !mounted(&self.dir),
            "{} is still mounted after the signal:\n{}",
            self.dir.display(),
            self.log()
        );
        (st, self.log())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill with a pid of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if mounted(&self.dir) {
            let _ = std::process::Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
        }
    }
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0, "mkfifo");
}

/// A tree of every file type and the metadata the mount must show.
/// Returns whether user xattrs could be set.
fn make_tree(root: &Path) -> bool {
    let p = |rel: &str| root.join(rel);
    fs::create_dir_all(root).unwrap();
    fs::write(p("empty"), b"").unwrap();
    fs::write(p("tiny.txt"), b"hello, mount\n").unwrap();
    random_file(&p("random-3m.bin"), 3 * MIB + 12345, 1);
    compressible_file(&p("text-2m.log"), 2 * MIB + 7, 2);
    random_file(&p("large-9m.bin"), 9 * MIB + 1, 3);
    random_file(&p("dup-a.bin"), MIB + 3, 5);
    random_file(&p("dup-b.bin"), MIB + 3, 5);
    fs::create_dir_all(p("nested/a/b/c")).unwrap();
    fs::write(p("nested/a/b/c/deep.txt"), b"deep\n").unwrap();
    fs::create_dir_all(p("empty-dir")).unwrap();
    fs::create_dir_all(p("links")).unwrap();
    symlink("../tiny.txt", p("links/relative")).unwrap();
    symlink(p("nested/a"), p("links/absolute")).unwrap();
    symlink("does/not/exist", p("links/dangling")).unwrap();
    symlink(os(b"target-\xff\xfe"), p("links/odd-target")).unwrap();
    fs::create_dir_all(p("hard/x")).unwrap();
    fs::write(p("hard/original"), b"linked content\n").unwrap();
    fs::hard_link(p("hard/original"), p("hard/second")).unwrap();
    fs::hard_link(p("hard/original"), p("hard/x/third")).unwrap();
    random_file(&p("hard/big-a"), 2 * MIB, 6);
    fs::hard_link(p("hard/big-a"), p("hard/x/big-b")).unwrap();
    mkfifo(&p("fifo"));
    if is_root() {
        let c = CString::new(p("null-device").as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        let made =
            unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o640, libc::makedev(1, 3)) } == 0;
        if !made {
            note!("mount: no character device in the tree (mknod not permitted)");
        }
    }
    {
        let f = fs::File::create(p("sparse.img")).unwrap();
        f.write_all_at(b"start of the sparse file", 0).unwrap();
        f.write_all_at(b"end", 40 * MIB - 3).unwrap();
    }
    fs::write(root.join(os(b"latin1-caf\xe9.txt")), b"non-utf8 name\n").unwrap();
    fs::write(p("new\nline"), b"newline in name\n").unwrap();
    fs::write(p("日本語.txt"), "unicode\n").unwrap();
    fs::write(p(&"L".repeat(255)), b"longest name\n").unwrap();
    fs::create_dir_all(p("modes")).unwrap();
    for (name, mode) in [
        ("0600", 0o600),
        ("0444", 0o444),
        ("0000", 0o000),
        ("4755", 0o4755),
    ] {
        let f = p(&format!("modes/{name}"));
        fs::write(&f, name).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::create_dir(p("modes/sticky")).unwrap();
    fs::set_permissions(p("modes/sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(p("tiny.txt"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(p("nested/a"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::lchown(p("links/relative"), Some(1111), Some(2222)).unwrap();
        std::os::unix::fs::lchown(p("fifo"), Some(3333), Some(3333)).unwrap();
    }
    let xattrs = match xattr::set(p("tiny.txt"), "user.comment", b"a comment") {
        Ok(()) => {
            xattr::set(p("tiny.txt"), "user.binary", b"\x00\x01\xff binary").unwrap();
            xattr::set(p("tiny.txt"), "user.empty", b"").unwrap();
            xattr::set(p("nested"), "user.on-a-dir", b"directory attribute").unwrap();
            xattr::set(p("large-9m.bin"), "user.big", &[b'x'; 2000]).unwrap();
            true
        }
        Err(e) => {
            note!("mount: the file system refuses user xattrs ({e}); xattrs not checked");
            false
        }
    };
    // Distinct nanosecond mtimes, children before parents.
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if fs::symlink_metadata(&all[i]).unwrap().is_dir() {
            for e in fs::read_dir(&all[i]).unwrap() {
                all.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    for (i, path) in all.iter().enumerate().rev() {
        let secs = if i % 3 == 0 {
            -14_182_940
        } else {
            1_600_000_000
        } + i as i64 * 997;
        let t = filetime::FileTime::from_unix_time(
            secs,
            (123_456_789 + i as u32 * 7919) % 1_000_000_000,
        );
        filetime::set_symlink_file_times(path, t, t).unwrap();
    }
    xattrs
}

fn exact(xattrs: bool) -> Options {
    Options {
        xattrs,
        owner: true,
        mtime: true,
        symlink_mtime: true,
        root_meta: true,
    }
}

/// The names in a directory of the mount, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// 1,000 random ranges (some across blob boundaries, some past the end)
/// of the mounted copy of `original`, compared byte for byte.
fn random_ranges_match(original: &Path, mounted: &Path, seed: u64) {
    let orig = fs::File::open(original).unwrap();
    let mnt = fs::File::open(mounted).unwrap();
    let len = orig.metadata().unwrap().len();
    assert_eq!(
        mnt.metadata().unwrap().len(),
        len,
        "size of {}",
        mounted.display()
    );
    let mut rng = Rng::new(seed);
    for i in 0..1000 {
        let size = match i % 4 {
            0 => 1 + rng.below(64),
            1 => 4096,
            2 => 1 + rng.below(512 * 1024),
            _ => 1 + rng.below(3 * MIB),
        } as usize;
        let off = rng.below(len + 1000);
        let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
        let na = read_full_at(&orig, &mut a, off);
        let nb = read_full_at(&mnt, &mut b, off);
        assert_eq!(na, nb, "range {off}+{size}: lengths differ");
        assert!(
            a[..na] == b[..nb],
            "range {off}+{size} of {} differs",
            mounted.display()
        );
    }
}

fn read_full_at(f: &fs::File, buf: &mut [u8], mut off: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                off += k as u64;
            }
            Err(e) => panic!("read at {off}: {e}"),
        }
    }
    n
}

/// Wait until `cond` holds (the mount refreshes every few seconds).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Back up a tree, mount, and check everything a reader sees.
fn mount_shows_everything(env: &TestEnv, repo: &str) -> (Mount, PathBuf) {
    let src = env.path("src");
    let xattrs = make_tree(&src);
    random_file(&src.join("big-64m.bin"), 64 * MIB, 9);
    // Backed up too, and never read here (for the tests that need a
    // read that the caches cannot answer).
    let other = env.mkdir("other");
    random_file(&other.join("unread.bin"), 2 * MIB, 10);
    let run = |args: &[&str]| {
        env.cairn(args)
            .env("CAIRN_REPOSITORY", repo)
            .run()
            .success()
    };
    run(&["init"]);
    run(&[
        "backup",
        "--tag",
        "first",
        "--tag",
        "both",
        src.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    let m = Mount::start(env, repo, &env.path("mnt"), &[]);

    assert_eq!(names(&m.dir), ["hosts", "ids", "snapshots", "tags"]);
    let snaps = names(&m.path("snapshots"));
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert_eq!(snaps[1], "latest");
    let latest = m.path("snapshots/latest");
    assert_eq!(fs::read_link(&latest).unwrap(), Path::new(&snaps[0]));
    // restic's default template: 2024-05-01T09:30:00Z (the snapshot's own offset).
    assert!(
        snaps[0].len() >= 20 && snaps[0].as_bytes()[10] == b'T',
        "{}",
        snaps[0]
    );
    let in_snapshot = restored(&latest, &src);
    assert_trees_equal_with(&src, &in_snapshot, exact(xattrs));
    // Hard links share one inode and show the link count.
    let md = |p: &str| fs::metadata(in_snapshot.join(p)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(md("hard/original").ino(), md("hard/x/third").ino());
    assert_eq!(md("hard/original").nlink(), 3);
    assert_ne!(md("hard/original").ino(), md("tiny.txt").ino());
    // Inode numbers stay the same.
    assert_eq!(md("tiny.txt").ino(), md("tiny.txt").ino());
    random_ranges_match(
        &src.join("big-64m.bin"),
        &in_snapshot.join("big-64m.bin"),
        7,
    );

    // The other views of the same snapshot.
    let ids = names(&m.path("ids"));
    assert_eq!(ids.len(), 1);
    let host = names(&m.path("hosts"));
    assert_eq!(host.len(), 1);
    assert_eq!(names(&m.path("tags")), ["both", "first"]);
    for view in [
        format!("ids/{}", ids[0]),
        format!("hosts/{}/latest", host[0]),
        "tags/first/latest".to_string(),
    ] {
        let f = restored(&m.path(&view), &src).join("tiny.txt");
        assert_eq!(fs::read(&f).unwrap(), b"hello, mount\n", "{}", f.display());
    }

    // A snapshot taken while mounted appears without remounting.
    fs::write(src.join("added-while-mounted.txt"), b"new\n").unwrap();
    run(&[
        "backup",
        "--tag",
        "second",
        "--tag",
        "both",
        src.to_str().unwrap(),
    ]);
    eventually("the new snapshot shows in snapshots/", || {
        names(&m.path("snapshots")).len() == 3
    });
    let newest = names(&m.path("snapshots"))[1].clone();
    assert_eq!(
        fs::read_link(m.path("snapshots/latest")).unwrap(),
        Path::new(&newest)
    );
    let added = restored(&m.path("snapshots/latest"), &src).join("added-while-mounted.txt");
    eventually("latest points at the new snapshot", || {
        fs::read(&added).is_ok()
    });
    assert_eq!(fs::read(&added).unwrap(), b"new\n");
    assert_eq!(names(&m.path("tags/both")).len(), 3);
    (m, src)
}

#[test]
fn every_file_type_reads_back_exactly_on_a_local_repository() {
    require_fuse!();
    let env = TestEnv::new();
    let repo = env.repo.to_str().unwrap().to_string();
    let (m, src) = mount_shows_everything(&env, &repo);

    // SIGTERM: unmounted, exit 0.
    let (st, log) = m.stop_with(libc::SIGTERM);
    assert_eq!(st.code(), Some(0), "cairn mount after SIGTERM:\n{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Filters and the time template, as `snapshots` has them.
    let m = Mount::start(
        &env,
        &repo,
        &env.path("mnt2"),
        &[
            "--tag",
            "second",
            "--time-template",
            "2006/01/02 15.04.05.000000000",
        ],
    );
    let years = names(&m.path("snapshots"));
    assert_eq!(years.len(), 2, "{years:?}");
    let month = names(&m.path(&format!("snapshots/{}", years[0])));
    let days = names(&m.path(&format!("snapshots/{}/{}", years[0], month[0])));
    assert_eq!(days.len(), 1, "only the snapshot tagged `second`: {days:?}");
    assert!(days[0].contains('.'), "{days:?}");
    assert_eq!(names(&m.path("tags")), ["both", "second"]);
    let in_snapshot = restored(&m.path("snapshots/latest"), &src);
    assert_eq!(
        fs::read(in_snapshot.join("added-while-mounted.txt")).unwrap(),
        b"new\n"
    );
    // Ctrl-C does the same as SIGTERM.
    let (st, log) = m.stop_with(libc::SIGINT);
    assert_eq!(st.code(), Some(0), "cairn mount after SIGINT:\n{log}");
}

#[test]
fn every_file_type_reads_back_exactly_over_rest() {
    require_fuse!();
    let env = TestEnv::new();
    let root = env.path("srv");
    fs::create_dir_all(&root).unwrap();
    let mut server = ServerProc::cairn(&root, &["--no-auth"]);
    let repo = server.url(None, "/repo");
    let (m, src) = mount_shows_everything(&env, &repo);

    // The server down: a read that needs it fails with EIO, names the
    // file, and the mount stays up; once it is back, the read works.
    let first = m.path("snapshots").join(&names(&m.path("snapshots"))[0]);
    let file = restored(&first, &env.path("other")).join("unread.bin");
    let hot = restored(&first, &src).join("tiny.txt");
    // Its directory is listed (trees cached): only its data needs the server.
    assert_eq!(fs::metadata(&file).unwrap().len(), 2 * MIB);
    server.kill();
    let err = fs::read(&file).expect_err("a read with the server down must fail");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    eventually("a log line naming unread.bin", || {
        m.log().contains("unread.bin")
    });
    assert_eq!(fs::read(&hot).unwrap(), b"hello, mount\n");
    server.start();
    assert_eq!(
        cairn_tests::tree::hash_file(&file),
        cairn_tests::tree::hash_file(&env.path("other/unread.bin"))
    );
    let (st, log) = m.stop_with(libc::SIGTERM);
    assert_eq!(st.code(), Some(0), "{log}");
}

#[test]
fn a_damaged_pack_fails_only_the_files_using_it() {
    require_fuse!();
    let env = TestEnv::new();
    let src = env.mkdir("src");
    random_file(&src.join("victim.bin"), 3 * MIB, 21);
    random_file(&src.join("good.bin"), 3 * MIB, 22);
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    env.init();
    env.backup_json([&src]);
    // Flip a bit in the middle of a blob only victim.bin uses.
    let by_blob = cairn_tests::repo::files_by_blob(&env, "latest");
    let mut damaged = false;
    for (pack, _) in cairn_tests::repo::packs(&env.repo) {
        let name = cairn_tests::repo::file_name(&pack);
        for b in cairn_tests::repo::pack_blobs(&env, &name) {
            let users = by_blob.get(&b.id).cloned().unwrap_or_default();
            if !damaged && users.iter().all(|u| u.ends_with("/victim.bin")) && !users.is_empty() {
                cairn_tests::repo::flip_bit(&pack, b.offset + b.length / 2);
                damaged = true;
            }
        }
    }
    assert!(damaged, "no blob of victim.bin found");
    let repo = env.repo.to_str().unwrap().to_string();
    let m = Mount::start(&env, &repo, &env.path("mnt"), &[]);
    let dir = restored(&m.path("snapshots/latest"), &src);
    for _ in 0..2 {
        let err = fs::read(dir.join("victim.bin")).expect_err("a damaged blob must not be read");
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    // (stderr is collected by a thread: give it a moment.)
    eventually("a log line naming victim.bin", || {
        m.log()
            .lines()
            .any(|l| l.starts_with("error:") && l.contains("victim.bin"))
    });
    assert!(!m.log().contains("good.bin"), "{}", m.log());
    assert_eq!(
        cairn_tests::tree::hash_file(&dir.join("good.bin")),
        cairn_tests::tree::hash_file(&src.join("good.bin"))
    );
    assert_eq!(fs::read(dir.join("small.txt")).unwrap(), b"small\n");
    // Its metadata is still there.
    assert_eq!(fs::metadata(dir.join("victim.bin")).unwrap().len(), 3 * MIB);
    let (st, log) = m.stop_with(libc::SIGTERM);
    assert_eq!(st.code(), Some(0), "{log}");
}

#[test]
fn left_behind_mount_is_detected_and_fusermount_unmounts() {
    require_fuse!();
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("f"), b"f\n").unwrap();
    env.init();
    env.backup_json([&src]);
    let repo = env.repo.to_str().unwrap().to_string();

    // Unmounted from outside: cairn mount ends by itself, exit 0.
    let mut m = Mount::start(&env, &repo, &env.path("mnt"), &[]);
    let st = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&m.dir)
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = m.child.take().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(30), "cairn mount");
    assert_eq!(st.code(), Some(0), "after fusermount3 -u:\n{}", m.log());

    // Killed: the mount is left behind; the next mount says how to clear it.
    let mut m = Mount::start(&env, &repo, &env.path("mnt"), &[]);
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(mounted(&m.dir), "a killed mount stays until cleared");
    let out = env
        .cairn(["mount"])
        .arg(&m.dir)
        .env("CAIRN_REPOSITORY", &repo)
        .run();
    let line = out.one_line_error();
    assert!(
        line.contains(&format!("fusermount3 -u {}", m.dir.display())),
        "{line}"
    );
    // The command it names works.
    let st = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&m.dir)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!mounted(&m.dir));
    // With --allow-other, fusermount3 unmounts even after SIGKILL.
    let mut m = Mount::start(&env, &repo, &env.path("mnt"), &["--allow-other"]);
    assert!(fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&*m.dir.to_string_lossy()) && l.contains("allow_other")));
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    eventually("auto_unmount after SIGKILL", || !mounted(&m.dir));
    // A mountpoint that is not a directory, or missing: one clear line.
    for bad in [src.join("f"), env.path("missing")] {
        let out = env
            .cairn(["mount"])
            .arg(&bad)
            .env("CAIRN_REPOSITORY", &repo)
            .run();
        out.one_line_error();
    }
}
