//! What can be backed up: several paths, a single file, relative paths, a
//! symlink given as a path, many small files, mount points with
//! `--one-file-system`.

use cairn_tests::cmd::num;
use cairn_tests::gen::Rng;
use cairn_tests::{assert_trees_equal, is_root, restored, TestEnv};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

#[test]
fn several_paths_a_single_file_and_relative_paths() {
    let env = TestEnv::new();
    let one = env.mkdir("one");
    let two = env.mkdir("deeper/two");
    fs::write(one.join("a"), b"a").unwrap();
    fs::write(two.join("b"), b"b").unwrap();
    let single = env.path("single.txt");
    fs::write(&single, b"just one file\n").unwrap();
    env.init();

    // Relative paths are recorded as absolute ones.
    let mut c = env.cairn(["backup", "--json", "one", "deeper/two", "single.txt"]);
    c.command().current_dir(env.dir.path());
    let id = c.run().success().summary()["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let snaps = env.snapshots();
    let mut paths: Vec<String> = snaps[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    paths.sort();
    let mut want: Vec<String> = [&one, &two, &single]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    want.sort();
    assert_eq!(paths, want, "snapshot paths");

    let target = env.path("target");
    env.restore(&id, &target, &[]);
    assert_trees_equal(&one, &restored(&target, &one));
    assert_trees_equal(&two, &restored(&target, &two));
    assert_trees_equal(&single, &restored(&target, &single));
    // Nothing else was backed up from the common parent.
    let parent = restored(&target, env.dir.path());
    let mut names: Vec<String> = fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["deeper", "one", "single.txt"]);
    assert_eq!(
        env.cairn(["dump", &id]).arg(&single).run().success().stdout,
        b"just one file\n"
    );

    // The same set of paths, given in another order, finds its parent.
    let again = env.backup_json([&single, &two, &one]);
    assert_eq!(num(&again, "files_unmodified"), 3, "{again}");
}

#[test]
fn a_symlink_given_as_path_is_stored_as_a_symlink() {
    let env = TestEnv::new();
    let real = env.mkdir("real");
    fs::write(real.join("x"), b"x").unwrap();
    let link = env.path("link");
    symlink(&real, &link).unwrap();
    env.init();
    env.backup_json([&link]);
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    let r = restored(&target, &link);
    assert_eq!(
        fs::read_link(&r).ok(),
        Some(real.clone()),
        "{} should be a symlink to {}",
        r.display(),
        real.display()
    );
    assert!(
        !restored(&target, &real).exists(),
        "the symlink's target was backed up too"
    );
}

#[test]
fn many_small_files() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let mut rng = Rng::new(9);
    for d in 0..50 {
        let dir = src.join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            let n = rng.below(300) as usize;
            fs::write(dir.join(format!("f{f:03}")), rng.bytes(n)).unwrap();
        }
    }
    env.init();
    let s = env.backup_json([&src]);
    assert_eq!(num(&s, "files_new"), 5000, "{s}");
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
    let again = env.backup_json([&src]);
    assert_eq!(num(&again, "files_unmodified"), 5000, "{again}");
    assert_eq!(num(&again, "data_blobs"), 0, "{again}");
    let lines = env
        .cairn(["ls", "--recursive", "latest"])
        .arg(&src)
        .run()
        .success()
        .stdout_str()
        .lines()
        .count();
    assert!(
        lines >= 5051,
        "ls lists {lines} lines for 5000 files in 50 directories"
    );
}

/// A tmpfs mounted inside the test's directory, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path) -> Option<Mount> {
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        st.success().then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn one_file_system_does_not_cross_mount_points() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("here.txt"), b"here").unwrap();
    let mnt = env.mkdir("src/mnt");
    if !is_root() {
        cairn_tests::skip("mounting a tmpfs needs root");
        return;
    }
    let Some(_mount) = Mount::tmpfs(&mnt) else {
        cairn_tests::skip("cannot mount a tmpfs here");
        return;
    };
    fs::write(mnt.join("elsewhere.txt"), b"on another file system").unwrap();
    env.init();

    env.cairn(["backup", "--one-file-system"])
        .arg(&src)
        .run()
        .success();
    let t1 = env.path("t1");
    env.restore("latest", &t1, &[]);
    let r = restored(&t1, &src);
    assert!(r.join("here.txt").is_file());
    assert!(
        !r.join("mnt/elsewhere.txt").exists(),
        "--one-file-system crossed into a mounted file system"
    );

    env.cairn(["backup", "--force"]).arg(&src).run().success();
    let t2 = env.path("t2");
    env.restore("latest", &t2, &[]);
    assert_eq!(
        fs::read(restored(&t2, &src).join("mnt/elsewhere.txt")).unwrap(),
        b"on another file system"
    );
}

#[test]
fn overlapping_and_unnormalized_paths_and_an_empty_directory() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::create_dir(src.join("sub")).unwrap();
    fs::write(src.join("sub/x"), b"x").unwrap();
    fs::write(src.join("y"), b"y").unwrap();
    env.init();
    // A path inside another, the same path twice, `..` and a trailing slash.
    let odd = format!("{}/../src/", src.display());
    env.cairn(["backup"])
        .arg(&src)
        .arg(src.join("sub"))
        .arg(&odd)
        .run()
        .success();
    let snaps = env.snapshots();
    let paths = snaps[0]["paths"].as_array().unwrap();
    assert!(
        paths.iter().all(|p| !p.as_str().unwrap().contains("..")),
        "unnormalized paths recorded: {paths:?}"
    );
    let target = env.path("target");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
    let listing = env.cairn(["ls", "latest"]).run().success().stdout_str();
    let x = format!("{}/sub/x", src.display());
    assert_eq!(
        listing.lines().filter(|l| *l == x).count(),
        1,
        "sub/x listed more than once:\n{listing}"
    );

    // An empty directory.
    let empty = env.mkdir("empty");
    env.backup_json([&empty]);
    let t2 = env.path("t2");
    env.restore("latest", &t2, &[]);
    assert_trees_equal(&empty, &restored(&t2, &empty));
}
