//! Output shapes scripts rely on (restic's field names), `cat`, `dump`,
//! and finding the repository and password.

use cairn_tests::cmd::num;
use cairn_tests::{restored, TestEnv};
use filetime::FileTime;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

fn is_hex(s: &Value, len: usize) -> bool {
    s.as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// a.txt (0640, mtime 2021-01-02T03:04:05.123456789Z), sub/b.bin, sub/link -> ../a.txt.
fn small_tree(env: &TestEnv) -> PathBuf {
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"hello a\n").unwrap();
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    filetime::set_file_mtime(
        src.join("a.txt"),
        FileTime::from_unix_time(1_609_556_645, 123_456_789),
    )
    .unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    fs::write(src.join("sub/b.bin"), vec![1u8; 5000]).unwrap();
    symlink("../a.txt", src.join("sub/link")).unwrap();
    src
}

#[test]
fn ls_and_ls_json() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    env.init();
    env.backup_json([&src]);
    let s = src.display().to_string();

    // Plain: one path per line, every path of the snapshot, parents included.
    let out = env.cairn(["ls", "latest"]).run().success();
    let text = out.stdout_str();
    for p in ["", "/a.txt", "/sub", "/sub/b.bin", "/sub/link"] {
        let want = format!("{s}{p}");
        assert!(
            text.lines().any(|l| l == want),
            "`ls latest` lacks the line {want:?}:\n{text}"
        );
    }

    // Long: mode string and size.
    let out = env.cairn(["ls", "-l", "latest"]).run().success();
    let line = out
        .stdout_str()
        .lines()
        .find(|l| l.ends_with("/a.txt"))
        .map(String::from)
        .expect("a.txt in ls -l");
    assert!(
        line.starts_with("-rw-r-----"),
        "ls -l line for a.txt: {line:?}"
    );
    assert!(
        line.split_whitespace().any(|w| w == "8"),
        "ls -l line for a.txt lacks its size 8: {line:?}"
    );
    let link = out
        .stdout_str()
        .lines()
        .find(|l| l.contains("/sub/link"))
        .map(String::from)
        .unwrap();
    assert!(
        link.ends_with("-> ../a.txt"),
        "ls -l line for a symlink: {link:?}"
    );

    // JSON: a snapshot object first, then one node per line.
    let out = env
        .cairn(["ls", "--json", "latest"])
        .env("TZ", "UTC")
        .run()
        .success();
    let lines = out.json_lines();
    let first = &lines[0];
    assert_eq!(first["struct_type"], "snapshot", "first line: {first}");
    assert!(
        is_hex(&first["id"], 64) && is_hex(&first["tree"], 64),
        "first line: {first}"
    );
    assert_eq!(first["paths"], serde_json::json!([s]));
    for n in &lines[1..] {
        assert_eq!(n["struct_type"], "node", "{n}");
        for field in ["name", "type", "path", "mode", "mtime"] {
            assert!(!n[field].is_null(), "node without {field}: {n}");
        }
    }
    let node = |p: &str| {
        lines[1..]
            .iter()
            .find(|n| n["path"] == format!("{s}{p}"))
            .cloned()
            .unwrap_or_else(|| panic!("no node {p}"))
    };
    let a = node("/a.txt");
    assert_eq!(a["name"], "a.txt");
    assert_eq!(a["type"], "file");
    assert_eq!(a["size"], 8);
    assert_eq!(
        a["mode"], 0o640,
        "restic's mode is Go's os.FileMode: permission bits for a file: {a}"
    );
    let mtime = a["mtime"].as_str().unwrap();
    assert!(
        mtime == "2021-01-02T03:04:05.123456789Z" || mtime == "2021-01-02T03:04:05.123456789+00:00",
        "mtime of a.txt: {mtime}"
    );
    let d = node("/sub");
    assert_eq!(d["type"], "dir");
    assert_eq!(
        d["mode"].as_u64(),
        Some((1u64 << 31) | 0o755),
        "a directory's mode has Go's ModeDir bit: {d}"
    );
    let l = node("/sub/link");
    assert_eq!(l["type"], "symlink");
    assert_eq!(l["linktarget"], "../a.txt");

    // A path argument limits the listing to that subtree.
    let out = env
        .cairn(["ls", "--json", "latest"])
        .arg(src.join("sub"))
        .run()
        .success();
    let paths: Vec<String> = out.json_lines()[1..]
        .iter()
        .map(|n| n["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        vec![
            format!("{s}/sub"),
            format!("{s}/sub/b.bin"),
            format!("{s}/sub/link")
        ]
    );
    // A path that is not in the snapshot is an error.
    let out = env.cairn(["ls", "latest"]).arg(src.join("nope")).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    out.one_line_error();
}

#[test]
fn snapshots_json_fields_tags_hosts_and_parents() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    env.init();
    let first = env.backup_json([src.as_os_str(), "--host".as_ref(), "myhost".as_ref()]);
    fs::write(src.join("new.txt"), b"new").unwrap();
    let second = env.backup_json([
        src.as_os_str(),
        "--host".as_ref(),
        "myhost".as_ref(),
        "--tag".as_ref(),
        "a".as_ref(),
        "--tag".as_ref(),
        "b,c".as_ref(),
    ]);
    let other = env.backup_json([src.as_os_str(), "--host".as_ref(), "elsewhere".as_ref()]);
    let explicit = env.backup_json([
        src.as_os_str(),
        "--host".as_ref(),
        "elsewhere".as_ref(),
        "--parent".as_ref(),
        first["snapshot_id"].as_str().unwrap().as_ref(),
    ]);

    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 4);
    let get = |summary: &Value| {
        snaps
            .iter()
            .find(|s| s["id"] == summary["snapshot_id"])
            .cloned()
            .expect("listed")
    };
    let s2 = get(&second);
    for s in &snaps {
        assert!(is_hex(&s["id"], 64), "{s}");
        assert_eq!(
            s["short_id"].as_str(),
            s["id"].as_str().map(|i| &i[..8]),
            "{s}"
        );
        assert!(is_hex(&s["tree"], 64), "{s}");
        assert!(
            s["time"]
                .as_str()
                .is_some_and(|t| t.len() >= 20 && t.contains('T')),
            "time: {s}"
        );
        assert_eq!(s["paths"], serde_json::json!([src.display().to_string()]));
        assert!(
            s["username"].as_str().is_some_and(|u| !u.is_empty()),
            "username: {s}"
        );
        let sum = &s["summary"];
        for f in [
            "files_new",
            "files_changed",
            "files_unmodified",
            "dirs_new",
            "dirs_changed",
            "dirs_unmodified",
            "data_blobs",
            "tree_blobs",
            "data_added",
            "total_files_processed",
            "total_bytes_processed",
        ] {
            assert!(sum[f].is_u64(), "summary.{f} missing: {s}");
        }
        assert!(
            sum["backup_start"].is_string() && sum["backup_end"].is_string(),
            "{s}"
        );
    }
    assert_eq!(s2["hostname"], "myhost");
    assert_eq!(s2["tags"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(
        s2["parent"], first["snapshot_id"],
        "the parent is the latest of the same host and paths"
    );
    assert_eq!(num(&s2["summary"], "files_new"), 1, "{s2}");
    assert!(
        get(&other)["parent"].is_null(),
        "no snapshot of host elsewhere existed: {}",
        get(&other)
    );
    assert_eq!(
        get(&explicit)["parent"],
        first["snapshot_id"],
        "--parent is recorded"
    );

    // Filters.
    let tagged = env
        .cairn(["snapshots", "--json", "--tag", "b"])
        .run()
        .success()
        .json();
    assert_eq!(tagged.as_array().map(|a| a.len()), Some(1), "{tagged}");
    let hosts = env
        .cairn(["snapshots", "--json", "--host", "elsewhere"])
        .run()
        .success()
        .json();
    assert_eq!(hosts.as_array().map(|a| a.len()), Some(2), "{hosts}");
    // Text table: the short ids.
    let table = env.cairn(["snapshots"]).run().success().stdout_str();
    for s in &snaps {
        assert!(table.contains(s["short_id"].as_str().unwrap()), "{table}");
    }
    // A short id prefix selects a snapshot.
    let short = s2["short_id"].as_str().unwrap();
    let one = env
        .cairn(["snapshots", "--json", short])
        .run()
        .success()
        .json();
    assert_eq!(one[0]["id"], s2["id"]);
}

#[test]
fn cat_shows_repository_objects() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    env.init();
    let sum = env.backup_json([&src]);
    let id = sum["snapshot_id"].as_str().unwrap();

    let config = env.cairn(["cat", "config"]).run().success().json();
    assert_eq!(config["version"], 1, "{config}");
    assert!(is_hex(&config["id"], 64), "{config}");
    assert!(config["chunker"]["avg_size"].is_u64(), "{config}");

    let snap = env.cairn(["cat", "snapshot", id]).run().success().json();
    let tree = snap["tree"].as_str().expect("snapshot tree").to_string();

    // Walk down to src's tree and find a.txt's single content blob.
    let mut t = env.cairn(["cat", "tree", &tree]).run().success().json();
    for comp in src.strip_prefix("/").unwrap().components() {
        let name = comp.as_os_str().to_str().unwrap();
        let n = t["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {t}"));
        t = env
            .cairn(["cat", "tree", n["subtree"].as_str().unwrap()])
            .run()
            .success()
            .json();
    }
    let a = t["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "a.txt")
        .cloned()
        .expect("a.txt node");
    assert_eq!(a["mtime"].as_i64(), Some(1_609_556_645_123_456_789), "{a}");
    let blob = a["content"][0]
        .as_str()
        .expect("a.txt has one blob")
        .to_string();
    let data = env.cairn(["cat", "blob", &blob]).run().success();
    assert_eq!(data.stdout, b"hello a\n");

    let index = cairn_tests::repo::files(&env.repo, "index");
    let idx = env
        .cairn(["cat", "index"])
        .arg(cairn_tests::repo::file_name(&index[0].0))
        .run()
        .success()
        .json();
    assert!(
        idx["packs"].as_array().is_some_and(|p| !p.is_empty()),
        "{idx}"
    );

    let key = cairn_tests::repo::files(&env.repo, "keys");
    let k = env
        .cairn(["cat", "key"])
        .arg(&cairn_tests::repo::file_name(&key[0].0)[..10])
        .run()
        .success();
    assert!(k.json()["kdf"] == "scrypt", "{}", k.stdout_str());
    assert!(
        !k.stdout_str().contains("data_key"),
        "cat key shows the master key"
    );

    let pack = cairn_tests::repo::packs(&env.repo);
    env.cairn(["cat", "pack"])
        .arg(cairn_tests::repo::file_name(&pack[0].0))
        .run()
        .success()
        .json();

    // Unknown things and ids fail cleanly.
    env.cairn(["cat", "nonsense"])
        .run()
        .expect_code(1)
        .one_line_error();
    env.cairn(["cat", "snapshot", "ffffffff"])
        .run()
        .expect_code(1)
        .one_line_error();
    env.cairn(["cat", "blob", &"0".repeat(64)])
        .run()
        .expect_code(1)
        .one_line_error();
}

fn tar_available() -> bool {
    std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dump_files_and_directories() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    env.init();
    env.backup_json([&src]);
    let out = env
        .cairn(["dump", "latest"])
        .arg(src.join("sub/b.bin"))
        .run()
        .success();
    assert_eq!(out.stdout, vec![1u8; 5000]);
    let out = env
        .cairn(["dump", "latest"])
        .arg(src.join("a.txt"))
        .run()
        .success();
    assert_eq!(out.stdout, b"hello a\n");
    let out = env.cairn(["dump", "latest"]).arg(src.join("missing")).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    out.one_line_error();

    // A directory comes out as a tar stream.
    let out = env.cairn(["dump", "latest"]).arg(&src).run().success();
    assert!(
        out.stdout.len() >= 512 * 3,
        "dump of a directory printed {} bytes",
        out.stdout.len()
    );
    assert_eq!(
        &out.stdout[257..262],
        b"ustar",
        "dump of a directory is not a tar stream"
    );
    if !tar_available() {
        cairn_tests::missing("tar is not installed");
    }
    if tar_available() {
        let x = env.mkdir("untar");
        let tar = env.path("dump.tar");
        fs::write(&tar, &out.stdout).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap();
        assert!(st.success(), "tar cannot read the dump");
        let find = |root: &Path, rel: &str| -> Option<PathBuf> {
            // Entry names may or may not carry the full snapshot path.
            [
                root.join(rel),
                restored(root, &src).join(rel),
                root.join(src.file_name().unwrap()).join(rel),
            ]
            .into_iter()
            .find(|p| p.symlink_metadata().is_ok())
        };
        let a = find(&x, "a.txt").expect("a.txt in the tar");
        assert_eq!(fs::read(&a).unwrap(), b"hello a\n");
        assert_eq!(
            fs::read(find(&x, "sub/b.bin").expect("sub/b.bin in the tar")).unwrap(),
            vec![1u8; 5000]
        );
        assert_eq!(
            fs::read_link(find(&x, "sub/link").expect("sub/link in the tar")).unwrap(),
            Path::new("../a.txt")
        );
    }
}

#[test]
fn dump_of_a_directory_with_long_odd_names_and_hard_links_untars_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !tar_available() {
        cairn_tests::missing("tar is not installed");
        return;
    }
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let long_dir = src.join("d".repeat(200)).join("e".repeat(200));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(
        long_dir.join("f".repeat(250)),
        b"a path longer than 255 bytes",
    )
    .unwrap();
    fs::write(
        src.join(OsStr::from_bytes(b"non-utf8-\xff\xfe")),
        b"odd name",
    )
    .unwrap();
    fs::write(src.join("linked"), b"hard").unwrap();
    fs::hard_link(src.join("linked"), src.join("linked-too")).unwrap();
    fs::create_dir(src.join("empty-dir")).unwrap();
    symlink("linked", src.join("sym")).unwrap();
    cairn_tests::gen::random_file(&src.join("big.bin"), 9 << 20, 4);
    fs::write(src.join("exec.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("exec.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    env.init();
    env.backup_json([&src]);

    let tar = env.path("dump.tar");
    let mut c = env.cairn(["dump", "latest"]);
    c.arg(&src);
    let out = c.run().success();
    fs::write(&tar, &out.stdout).unwrap();
    let x = env.mkdir("untar");
    let st = std::process::Command::new("tar")
        .arg("-xpf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success(), "tar cannot extract the dump");
    // Where the directory's contents landed in the archive.
    let root = [
        restored(&x, &src),
        x.join(src.file_name().unwrap()),
        x.clone(),
    ]
    .into_iter()
    .find(|p| p.join("linked").exists())
    .expect("the dumped files are in the tar");
    let opts = cairn_tests::tree::Options {
        xattrs: false,
        owner: false,
        mtime: false,
        symlink_mtime: false,
        root_meta: false,
    };
    cairn_tests::tree::assert_trees_equal_with(&src, &root, opts);
}

#[test]
fn default_repository_and_password_sources() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    // No -r and no CAIRN_REPOSITORY: the default repository under XDG_DATA_HOME.
    let mut c = cairn_tests::Cairn::new(&env.home);
    c.env("CAIRN_PASSWORD", "pw")
        .args(["backup", "--init"])
        .arg(&src);
    let out = c.run().success();
    let default = env.home.join(".local/share/cairn/repository");
    assert!(
        default.join("config").is_file(),
        "no repository at {}:\n{}",
        default.display(),
        out.describe()
    );
    assert!(
        out.stderr.contains(&*default.to_string_lossy()),
        "the default repository's path is not printed:\n{}",
        out.describe()
    );

    // --password-file and CAIRN_PASSWORD_FILE; -r.
    let pwfile = env.path("pw.txt");
    fs::write(&pwfile, b"pw\n").unwrap();
    let mut c = cairn_tests::Cairn::new(&env.home);
    c.arg("-r")
        .arg(&default)
        .arg("--password-file")
        .arg(&pwfile)
        .arg("snapshots")
        .arg("--json");
    assert_eq!(
        c.run().success().json().as_array().map(|a| a.len()),
        Some(1)
    );
    let mut c = cairn_tests::Cairn::new(&env.home);
    c.env("CAIRN_REPOSITORY", &default)
        .env("CAIRN_PASSWORD_FILE", &pwfile)
        .args(["snapshots", "--json"]);
    c.run().success();
    // --password-command.
    let mut c = cairn_tests::Cairn::new(&env.home);
    c.env("CAIRN_REPOSITORY", &default)
        .args(["--password-command", "echo pw", "snapshots"]);
    c.run().success();
    // No password at all, no terminal: a clear error, not a hang.
    let mut c = cairn_tests::Cairn::new(&env.home);
    c.env("CAIRN_REPOSITORY", &default)
        .args(["snapshots"])
        .timeout(std::time::Duration::from_secs(20));
    let out = c.run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.one_line_error().contains("password"));

    // Restore through the default repository.
    let mut c = cairn_tests::Cairn::new(&env.home);
    let target = env.path("target");
    c.env("CAIRN_PASSWORD", "pw")
        .args(["restore", "latest", "--target"])
        .arg(&target);
    c.run().success();
    cairn_tests::assert_trees_equal(&src, &restored(&target, &src));
}

/// Progress in a log (stderr no terminal): nothing by default, status
/// lines when CAIRN_PROGRESS_FPS asks for them (at least the final one),
/// for backup (files and bytes) and check --read-data (percent read).
#[test]
fn progress_lines_in_logs_with_cairn_progress_fps() {
    let env = TestEnv::new();
    let src = small_tree(&env);
    env.init();
    let quiet = env.cairn(["backup"]).arg(&src).run().success();
    assert!(!quiet.stderr.contains("files"), "{}", quiet.describe());

    let mut c = env.cairn(["backup"]);
    c.arg(&src).env("CAIRN_PROGRESS_FPS", "20");
    let out = c.run().success();
    let status: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert!(!status.is_empty(), "{}", out.describe());
    assert!(
        status.last().unwrap().contains(" files "),
        "{}",
        out.describe()
    );

    let mut c = env.cairn(["check", "--read-data"]);
    c.env("CAIRN_PROGRESS_FPS", "20");
    let out = c.run().success();
    let last = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no status line:\n{}", out.describe()))
        .to_string();
    assert!(last.contains("100.0% read"), "{last}");
    let mut c = env.cairn(["check", "--read-data"]);
    c.env("CAIRN_PROGRESS_FPS", "not a number");
    let out = c.run().success();
    assert!(!out.stderr.contains("% read"), "{}", out.describe());
}
