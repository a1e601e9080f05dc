//! End-to-end tests of the repository maintenance commands: `key`,
//! `copy` (and `init --copy-chunker-params`), `repair index`,
//! `repair snapshots` and `unlock`, run as a user runs them.
//!
//! | test | what it shows |
//! |---|---|
//! | `keys_*` | add/list/remove/passwd; the old password stops working; the key in use and the last key are refused; prefixes |
//! | `copy_between_different_keys` | restores from the target equal the source byte for byte; a second copy stores nothing; a new snapshot stores only its new data |
//! | `copy_with_shared_chunker_params` | blob ids agree: data the target has is neither stored again nor read from the source |
//! | `repair_index_*` | the index rebuilt from pack headers: check passes, restore exact |
//! | `repair_snapshots_*` | after a pack is lost: check fails, then passes after repair; everything that still exists restores exactly |
//! | `bad_input_*`, `unlock_*` | one-line errors and exit codes 10/12; foreign lock files |
//!
//! Build the binary first: `cargo build -p cairn-cli`.

use cairn_tests::cmd::num;
use cairn_tests::gen::random_file;
use cairn_tests::repo::{assert_unchanged, file_name, files_by_blob, hash_all, pack_blobs, packs};
use cairn_tests::tree::Manifest;
use cairn_tests::{assert_manifest_matches, assert_trees_equal, note, restored, Cairn, TestEnv};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const TARGET_PASSWORD: &str = "the target's own password";

/// A tree of random files of various sizes, some sharing content.
fn make_data(root: &Path, seed: u64) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    random_file(&root.join("big.bin"), 3 * MIB + 17, seed);
    random_file(&root.join("mid.bin"), MIB + 5, seed + 1);
    random_file(&root.join("sub/a.bin"), 700 * KIB, seed + 2);
    random_file(&root.join("sub/deeper/b.bin"), 1500 * KIB, seed + 3);
    random_file(&root.join("sub/copy-of-mid.bin"), MIB + 5, seed + 1);
    std::fs::write(root.join("small.txt"), b"small\n").unwrap();
    std::fs::write(root.join("sub/deeper/tiny.txt"), b"tiny\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("sub/a.bin", root.join("link")).unwrap();
}

/// `cairn ARGS` against another repository, with its own password; the
/// first repository's password is the copy source's.
fn other(env: &TestEnv, repo: &Path, args: &[&str]) -> Cairn {
    let mut c = env.cairn(args);
    c.env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_PASSWORD", TARGET_PASSWORD)
        .env("CAIRN_FROM_PASSWORD", &env.password);
    c
}

fn json_lines_of(out: &cairn_tests::Out, kind: &str) -> Vec<Value> {
    out.json_lines()
        .into_iter()
        .filter(|v| v["message_type"] == kind)
        .collect()
}

fn str_of(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field:?} is not a string in {v}"))
        .to_string()
}

/// `key list --json`, parsed.
fn keys(env: &TestEnv, password: &str) -> Vec<Value> {
    let out = env
        .cairn(["key", "list", "--json"])
        .env("CAIRN_PASSWORD", password)
        .run()
        .success();
    out.json()
        .as_array()
        .expect("key list --json prints an array")
        .clone()
}

fn write_secret(env: &TestEnv, name: &str, secret: &str) -> PathBuf {
    let p = env.path(name);
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    p
}

#[test]
fn keys_add_list_remove_passwd() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 1);
    env.backup_json([&data]);

    let listed = keys(&env, &env.password);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);
    let first = str_of(&listed[0], "id");
    assert!(
        listed[0]["created"].is_string()
            && listed[0]["hostName"].is_string()
            && listed[0]["userName"].is_string()
    );

    // Add a second password; both open the repository.
    let second_pw = write_secret(&env, "second", "second password");
    let out = env
        .cairn([
            "key",
            "add",
            "--json",
            "--host",
            "elsewhere",
            "--new-password-file",
        ])
        .arg(&second_pw)
        .run()
        .success();
    let second = str_of(&out.json(), "id");
    let listed = keys(&env, "second password");
    assert_eq!(listed.len(), 2);
    let me = listed.iter().find(|k| k["current"] == true).unwrap();
    assert_eq!(str_of(me, "id"), second);
    assert_eq!(me["hostName"], "elsewhere");
    let text = env.cairn(["key", "list"]).run().success().stdout_str();
    assert!(
        text.contains(&format!("*{}", &first[..8])) && text.contains(&format!(" {}", &second[..8])),
        "{text}"
    );

    // The key in use cannot be removed; another can, by a unique prefix.
    let out = env.cairn(["key", "remove", &first[..10]]).run();
    assert!(
        out.one_line_error().contains("in use"),
        "{}",
        out.describe()
    );
    env.cairn(["key", "remove", &second[..6]]).run().success();
    env.cairn(["snapshots"])
        .env("CAIRN_PASSWORD", "second password")
        .run()
        .expect_code(12);

    // The last key cannot be removed.
    let out = env.cairn(["key", "remove", &first]).run();
    assert!(
        out.one_line_error().contains("only key"),
        "{}",
        out.describe()
    );

    // passwd: the new password works, the old one does not, one key remains.
    let new_pw = write_secret(&env, "new", "brand new password");
    let out = env
        .cairn(["key", "passwd", "--json", "--new-password-file"])
        .arg(&new_pw)
        .run()
        .success();
    assert_eq!(str_of(&out.json(), "removed"), first);
    let new_key = str_of(&out.json(), "id");
    let out = env.cairn(["snapshots"]).run().expect_code(12);
    assert!(out.one_line_error().contains("wrong password"));
    let listed = keys(&env, "brand new password");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);
    assert_eq!(str_of(&listed[0], "id"), new_key);
    // And the data is still there.
    let target = env.path("restore");
    env.cairn(["restore", "latest", "--target"])
        .arg(&target)
        .env("CAIRN_PASSWORD", "brand new password")
        .run()
        .success();
    assert_trees_equal(&data, &restored(&target, &data));

    // --new-password-command works too.
    env.cairn([
        "key",
        "add",
        "--new-password-command",
        "echo from a command",
    ])
    .env("CAIRN_PASSWORD", "brand new password")
    .run()
    .success();
    assert_eq!(keys(&env, "from a command").len(), 2);
}

#[test]
fn keys_bad_input() {
    let env = TestEnv::new();
    env.init();
    let pw = write_secret(&env, "pw", "x");
    // Keys until two share a first hex digit (at most 17 by pigeonhole).
    let prefix = loop {
        let ids: Vec<String> = keys(&env, &env.password)
            .iter()
            .map(|k| str_of(k, "id"))
            .collect();
        let mut firsts: Vec<char> = ids.iter().map(|i| i.chars().next().unwrap()).collect();
        firsts.sort();
        if let Some(w) = firsts.windows(2).find(|w| w[0] == w[1]) {
            break w[0].to_string();
        }
        env.cairn(["key", "add", "--new-password-file"])
            .arg(&pw)
            .run()
            .success();
    };
    let out = env.cairn(["key", "remove", &prefix]).run();
    assert!(
        out.one_line_error().contains("ambiguous"),
        "{}",
        out.describe()
    );
    let ids: Vec<String> = keys(&env, &env.password)
        .iter()
        .map(|k| str_of(k, "id"))
        .collect();
    let unknown = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|p| !ids.iter().any(|i| i.starts_with(p)))
        .unwrap();
    let out = env.cairn(["key", "remove", &unknown]).run();
    assert!(
        out.one_line_error().contains("no key with id"),
        "{}",
        out.describe()
    );
    let out = env.cairn(["key", "remove", "not-hex"]).run();
    assert!(
        out.one_line_error().contains("invalid key id"),
        "{}",
        out.describe()
    );
    // No new password given and no terminal: a clear error, nothing added.
    let before = ids.len();
    let out = env.cairn(["key", "add"]).run();
    assert!(
        out.one_line_error().contains("--new-password-file"),
        "{}",
        out.describe()
    );
    let out = env
        .cairn(["key", "add", "--new-password-file"])
        .arg(env.path("missing"))
        .run();
    out.one_line_error();
    let empty = write_secret(&env, "empty", "");
    let out = env
        .cairn(["key", "add", "--new-password-file"])
        .arg(&empty)
        .run();
    assert!(
        out.one_line_error().contains("empty password"),
        "{}",
        out.describe()
    );
    assert_eq!(keys(&env, &env.password).len(), before);
    // Wrong password and missing repository.
    env.cairn(["key", "list"])
        .env("CAIRN_PASSWORD", "nope")
        .run()
        .expect_code(12);
    env.cairn(["key", "list"])
        .env("CAIRN_REPOSITORY", env.path("nothing"))
        .run()
        .expect_code(10);
}

/// Copy every source snapshot, check the events, and return source id → target id.
fn copy_all(env: &TestEnv, target: &Path, extra: &[&str]) -> (Vec<(String, String)>, Value) {
    let mut args = vec!["copy", "--json", "--from-repo", env.repo.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = other(env, target, &args).run().success();
    let pairs = json_lines_of(&out, "snapshot_copied")
        .iter()
        .map(|v| (str_of(v, "source"), str_of(v, "target")))
        .collect();
    (pairs, out.summary())
}

#[test]
fn copy_between_different_keys() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 10);
    let s1 = str_of(&env.backup_json([&data]), "snapshot_id");
    let m1 = Manifest::take(&data);
    random_file(&data.join("mid.bin"), MIB + 5, 99); // changed
    std::fs::remove_file(data.join("sub/deeper/tiny.txt")).unwrap();
    let s2 = str_of(&env.backup_json([&data]), "snapshot_id");
    let m2 = Manifest::take(&data);

    let target = env.path("target");
    other(&env, &target, &["init"]).run().success();
    let (pairs, summary) = copy_all(&env, &target, &[]);
    assert_eq!(pairs.len(), 2, "{summary}");
    assert_eq!(summary["shared_blob_ids"], false);
    for (source, manifest) in [(&s1, &m1), (&s2, &m2)] {
        let copy = &pairs.iter().find(|(s, _)| s == source).unwrap().1;
        let dir = env.path(format!("restore-{}", &copy[..8]));
        other(&env, &target, &["restore", copy, "--target"])
            .arg(&dir)
            .run()
            .success();
        assert_manifest_matches(manifest, &restored(&dir, &data));
    }
    let snaps = other(&env, &target, &["snapshots", "--json"])
        .run()
        .success()
        .json();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    for s in snaps {
        assert!(s["parent"].is_null(), "a copy has no parent: {s}");
        let original = str_of(s, "original");
        assert!(original == s1 || original == s2, "{s}");
    }
    other(&env, &target, &["check"]).run().success();

    // A second copy transfers nothing.
    let before = hash_all(&target);
    let (pairs, summary) = copy_all(&env, &target, &[]);
    assert!(pairs.is_empty());
    assert_eq!(
        (
            num(&summary, "snapshots_skipped"),
            num(&summary, "bytes_read"),
            num(&summary, "packs")
        ),
        (2, 0, 0),
        "{summary}"
    );
    assert_unchanged(&before, &hash_all(&target), "a second copy");

    // A new snapshot: only its new data is stored.
    std::fs::write(data.join("new.txt"), b"a new file\n").unwrap();
    let s3 = str_of(&env.backup_json([&data]), "snapshot_id");
    let packs_before: u64 = packs(&target).iter().map(|p| p.1).sum();
    let (pairs, summary) = copy_all(&env, &target, &[&s3[..8]]);
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        num(&summary, "data_blobs"),
        1,
        "only new.txt is new: {summary}"
    );
    let added: u64 = packs(&target).iter().map(|p| p.1).sum::<u64>() - packs_before;
    assert!(
        added < 64 * KIB,
        "{added} bytes of packs added for an 11-byte file"
    );
    note!("copy of a snapshot with one new file stored {added} bytes");

    // Backing up the same files directly into the target stores new data:
    // the keys differ, so blob ids differ (the contrast to the next test).
    let moved = env.path("moved");
    std::fs::rename(&data, &moved).unwrap();
    let summary = other(&env, &target, &["backup", "--json"])
        .arg(&moved)
        .run()
        .success()
        .summary();
    assert!(num(&summary, "data_blobs") > 0, "{summary}");
}

#[test]
fn copy_with_shared_chunker_params() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 20);
    env.backup_json([&data]);

    let target = env.path("target");
    let from = env.repo.to_str().unwrap().to_string();
    let out = other(
        &env,
        &target,
        &[
            "init",
            "--json",
            "--from-repo",
            &from,
            "--copy-chunker-params",
        ],
    )
    .run()
    .success();
    assert_eq!(out.json()["message_type"], "initialized");
    let (pairs, summary) = copy_all(&env, &target, &[]);
    assert_eq!(pairs.len(), 1);
    assert_eq!(summary["shared_blob_ids"], true);
    let source_snap = env.snapshots()[0].clone();
    let copied = other(&env, &target, &["cat", "snapshot", &pairs[0].1])
        .run()
        .success()
        .json();
    assert_eq!(
        copied["tree"], source_snap["tree"],
        "trees are copied unchanged"
    );

    // The same files backed up directly into the target (elsewhere, so no
    // parent snapshot helps): every chunk is already there.
    let elsewhere = env.path("elsewhere");
    std::fs::rename(&data, &elsewhere).unwrap();
    let summary = other(&env, &target, &["backup", "--json"])
        .arg(&elsewhere)
        .run()
        .success()
        .summary();
    assert_eq!(num(&summary, "data_blobs"), 0, "{summary}");
    std::fs::rename(&elsewhere, &data).unwrap();

    // New data reaching the target first (a direct backup) is not read from
    // the source when a snapshot holding it is copied.
    random_file(&data.join("new-big.bin"), 4 * MIB, 77);
    let in_target = other(&env, &target, &["backup", "--json", "--force"])
        .arg(&data)
        .run()
        .success()
        .summary();
    assert!(num(&in_target, "data_blobs") >= 2, "{in_target}");
    let s2 = str_of(&env.backup_json([&data]), "snapshot_id");
    let before: u64 = packs(&target).iter().map(|p| p.1).sum();
    let (pairs, summary) = copy_all(&env, &target, &[&s2]);
    assert_eq!(pairs.len(), 1);
    assert_eq!(num(&summary, "data_blobs"), 0, "{summary}");
    assert!(
        num(&summary, "blobs_skipped") >= num(&in_target, "data_blobs"),
        "{summary}"
    );
    assert!(
        num(&summary, "bytes_read") < 64 * KIB,
        "only trees may be read from the source: {summary}"
    );
    let added = packs(&target).iter().map(|p| p.1).sum::<u64>() - before;
    assert!(added < 64 * KIB, "{added}");
    let dir = env.path("restore");
    other(&env, &target, &["restore", &pairs[0].1, "--target"])
        .arg(&dir)
        .run()
        .success();
    assert_trees_equal(&data, &restored(&dir, &data));
    other(&env, &target, &["check", "--read-data"])
        .run()
        .success();
}

#[test]
fn repair_index_after_deleting_all_index_files() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 30);
    env.backup_json(
        ["--pack-size", "1"]
            .iter()
            .map(OsStr::new)
            .chain([data.as_os_str()]),
    );
    std::fs::write(data.join("more.txt"), b"more\n").unwrap();
    env.backup_json(
        ["--pack-size", "1"]
            .iter()
            .map(OsStr::new)
            .chain([data.as_os_str()]),
    );
    let index_files = cairn_tests::repo::files(&env.repo, "index");
    assert!(!index_files.is_empty());
    for (p, _) in &index_files {
        std::fs::remove_file(p).unwrap();
    }
    let out = env.cairn(["check"]).run();
    assert!(
        !out.status.success(),
        "check must fail without an index:\n{}",
        out.describe()
    );

    let before_packs = packs(&env.repo);
    let out = env.cairn(["repair", "index", "--json"]).run().success();
    let s = out.summary();
    assert_eq!(num(&s, "packs"), before_packs.len() as u64, "{s}");
    assert_eq!(s["unreadable_packs"].as_array().unwrap().len(), 0);
    assert_eq!(
        (num(&s, "old_index_files"), num(&s, "index_files_removed")),
        (0, 0)
    );
    assert!(num(&s, "index_files_written") >= 1);
    assert_eq!(
        packs(&env.repo),
        before_packs,
        "repair index never touches packs"
    );
    env.cairn(["check", "--read-data"]).run().success();
    let target = env.path("restore");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&data, &restored(&target, &data));

    // Run again over a healthy index: old files replaced by new ones.
    let old: Vec<String> = cairn_tests::repo::files(&env.repo, "index")
        .iter()
        .map(|(p, _)| file_name(p))
        .collect();
    let s = env
        .cairn(["repair", "index", "--json"])
        .run()
        .success()
        .summary();
    assert_eq!(num(&s, "index_files_removed"), old.len() as u64);
    let new: Vec<String> = cairn_tests::repo::files(&env.repo, "index")
        .iter()
        .map(|(p, _)| file_name(p))
        .collect();
    assert!(
        new.iter().all(|n| !old.contains(n)),
        "old {old:?} new {new:?}"
    );
    env.cairn(["check"]).run().success();
}

#[test]
fn repair_index_reports_damaged_pack() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 40);
    env.backup_json(
        ["--pack-size", "1"]
            .iter()
            .map(OsStr::new)
            .chain([data.as_os_str()]),
    );
    let all = packs(&env.repo);
    let (victim, size) = all
        .iter()
        .find(|(p, _)| pack_blobs(&env, &file_name(p))[0].kind == "data")
        .unwrap()
        .clone();
    cairn_tests::repo::truncate(&victim, size - 3);
    let out = env.cairn(["repair", "index"]).run().success();
    assert!(
        out.stderr.contains(&file_name(&victim)),
        "the damaged pack is reported:\n{}",
        out.describe()
    );
    let s = env
        .cairn(["repair", "index", "--json"])
        .run()
        .success()
        .summary();
    assert_eq!(s["unreadable_packs"][0]["id"], file_name(&victim), "{s}");
    assert_eq!(num(&s, "packs"), all.len() as u64);
}

/// The data blobs' files, relative to `data`, that lose content when `pack` is gone.
fn files_in_pack(env: &TestEnv, snapshot: &str, pack: &str, data: &Path) -> Vec<String> {
    let by_blob = files_by_blob(env, snapshot);
    let prefix = format!("{}/", data.display());
    let mut files: Vec<String> = pack_blobs(env, pack)
        .iter()
        .flat_map(|b| by_blob.get(&b.id).cloned().unwrap_or_default())
        .map(|p| {
            p.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{p} not under {prefix}"))
                .to_string()
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

#[test]
fn repair_snapshots_after_deleting_a_pack() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 50);
    let snap = str_of(
        &env.backup_json(
            ["--pack-size", "1"]
                .iter()
                .map(OsStr::new)
                .chain([data.as_os_str()]),
        ),
        "snapshot_id",
    );
    let manifest = Manifest::take(&data);

    // Lose the pack holding sub/a.bin's data.
    let by_blob = files_by_blob(&env, &snap);
    let a_bin = format!("{}/sub/a.bin", data.display());
    let a_blob = by_blob
        .iter()
        .find(|(_, files)| files.contains(&a_bin))
        .unwrap()
        .0
        .clone();
    let (victim, _) = packs(&env.repo)
        .into_iter()
        .find(|(p, _)| {
            pack_blobs(&env, &file_name(p))
                .iter()
                .any(|b| b.id == a_blob)
        })
        .unwrap();
    let lost = files_in_pack(&env, &snap, &file_name(&victim), &data);
    note!("deleting pack {} loses {lost:?}", file_name(&victim));
    assert!(
        lost.contains(&"sub/a.bin".to_string())
            && lost.len() < manifest.paths_of(cairn_tests::tree::Kind::File).len()
    );
    std::fs::remove_file(&victim).unwrap();
    let out = env.cairn(["check"]).run();
    assert!(
        !out.status.success(),
        "check must see the lost pack:\n{}",
        out.describe()
    );

    // A dry run changes nothing and says what it would do.
    let before = hash_all(&env.repo);
    let out = env
        .cairn(["repair", "snapshots", "--dry-run", "--json"])
        .run()
        .success();
    let s = &json_lines_of(&out, "snapshot")[0];
    assert_eq!(s["outcome"], "repaired");
    assert!(s["new"].is_null());
    let damaged: Vec<String> = s["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| str_of(d, "path"))
        .collect();
    assert_eq!(damaged.len(), lost.len(), "{damaged:?} vs {lost:?}");
    assert!(out.summary()["dry_run"] == true);
    assert_unchanged(&before, &hash_all(&env.repo), "repair snapshots --dry-run");

    // Without --forget the broken snapshot stays.
    env.cairn(["repair", "index"]).run().success();
    let out = env.cairn(["repair", "snapshots", "--json"]).run().success();
    let s = &json_lines_of(&out, "snapshot")[0];
    let repaired = str_of(s, "new");
    assert_eq!(s["removed"], false);
    assert_eq!(env.snapshots().len(), 2);
    assert!(
        !env.cairn(["check"]).run().status.success(),
        "the broken original is still there"
    );

    // With --forget: the original goes, check passes.
    let out = env
        .cairn(["repair", "snapshots", "--forget", &snap[..8]])
        .run()
        .success();
    assert!(
        out.stdout_str().contains("removed the broken snapshot"),
        "{}",
        out.describe()
    );
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 2, "two repaired copies of one snapshot");
    for s in &snaps {
        assert_eq!(str_of(s, "original"), snap);
        assert!(
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "repaired"),
            "{s}"
        );
    }
    env.cairn(["check", "--read-data"]).run().success();

    // The repaired snapshot restores everything that still exists, exactly.
    let mut expected = manifest.clone();
    for f in &lost {
        expected.entries.remove(f.as_bytes()).unwrap();
    }
    let target = env.path("restore");
    env.restore(&repaired, &target, &[]);
    assert_manifest_matches(&expected, &restored(&target, &data));
    // And nothing is left to repair.
    let out = env.cairn(["repair", "snapshots"]).run().success();
    assert!(
        out.stdout_str().contains("no snapshots were modified"),
        "{}",
        out.describe()
    );
}

/// The pack holding a blob, by reading pack headers.
fn pack_of(env: &TestEnv, blob: &str) -> PathBuf {
    packs(&env.repo)
        .into_iter()
        .find(|(p, _)| pack_blobs(env, &file_name(p)).iter().any(|b| b.id == blob))
        .unwrap()
        .0
}

#[test]
fn repair_snapshots_lost_tree_and_unreadable_snapshot() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    make_data(&data, 60);
    std::fs::create_dir_all(data.join("other")).unwrap();
    std::fs::write(data.join("other/o.txt"), b"other\n").unwrap();
    // Snapshot 1: every tree in one tree pack. Snapshot 2 (sub/deeper
    // changed) reuses the unchanged `other` tree from that pack.
    let s1 = str_of(&env.backup_json([&data]), "snapshot_id");
    std::fs::write(data.join("sub/deeper/added.txt"), b"added\n").unwrap();
    let s2 = str_of(&env.backup_json([&data]), "snapshot_id");
    let m2 = Manifest::take(&data);
    std::fs::write(data.join("x"), b"x").unwrap();
    let bad = str_of(&env.backup_json([&data]), "snapshot_id");
    cairn_tests::repo::flip_bit(&env.repo.join("snapshots").join(&bad), 30);

    let root1 = str_of(
        &env.cairn(["cat", "snapshot", &s1]).run().success().json(),
        "tree",
    );
    let root2 = str_of(
        &env.cairn(["cat", "snapshot", &s2]).run().success().json(),
        "tree",
    );
    let pack1 = pack_of(&env, &root1);
    assert_ne!(
        pack1,
        pack_of(&env, &root2),
        "snapshot 2's new trees are in a pack of their own"
    );
    std::fs::remove_file(&pack1).unwrap();

    let out = env
        .cairn(["repair", "snapshots", "--forget", "--json"])
        .run()
        .success();
    let unreadable = json_lines_of(&out, "unreadable_snapshot");
    assert_eq!(unreadable.len(), 1, "{}", out.describe());
    assert_eq!(
        (str_of(&unreadable[0], "id"), &unreadable[0]["removed"]),
        (bad.clone(), &Value::Bool(true))
    );
    let lines = json_lines_of(&out, "snapshot");
    let one = lines.iter().find(|l| str_of(l, "id") == s1).unwrap();
    assert_eq!(
        (&one["outcome"], &one["removed"]),
        (&Value::from("removed"), &Value::Bool(true)),
        "root lost: {one}"
    );
    let two = lines.iter().find(|l| str_of(l, "id") == s2).unwrap();
    assert_eq!(two["outcome"], "repaired", "{two}");
    let damaged: Vec<String> = two["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| str_of(d, "path"))
        .collect();
    assert_eq!(damaged, vec![format!("{}/other", data.display())]);
    let target = env.path("restore");
    env.restore(str_of(two, "new").as_str(), &target, &[]);
    let mut expected = m2.clone();
    expected.entries.retain(|k, _| !k.starts_with(b"other/"));
    assert_manifest_matches(&expected, &restored(&target, &data));
    assert_eq!(env.snapshots().len(), 1);
    env.cairn(["repair", "index"]).run().success();
    env.cairn(["check"]).run().success();
}

#[test]
fn bad_input_copy_and_init() {
    let env = TestEnv::new();
    env.init();
    let data = env.mkdir("data");
    std::fs::write(data.join("f"), b"f").unwrap();
    env.backup_json([&data]);
    let target = env.path("target");
    other(&env, &target, &["init"]).run().success();
    let src = env.repo.to_str().unwrap();

    let out = other(&env, &target, &["copy"]).run();
    assert!(
        out.one_line_error().contains("--from-repo"),
        "{}",
        out.describe()
    );
    let out = other(
        &env,
        &target,
        &["copy", "--from-repo", env.path("nowhere").to_str().unwrap()],
    )
    .run()
    .expect_code(10);
    assert!(
        out.one_line_error().contains("source repository"),
        "{}",
        out.describe()
    );
    let out = other(&env, &target, &["copy", "--from-repo", src])
        .env("CAIRN_FROM_PASSWORD", "wrong")
        .run()
        .expect_code(12);
    assert!(
        out.one_line_error().contains("source repository"),
        "{}",
        out.describe()
    );
    // The password from a file, or a command, instead of the environment.
    let pw = write_secret(&env, "srcpw", &env.password);
    other(
        &env,
        &target,
        &["copy", "--from-repo", src, "--from-password-file"],
    )
    .arg(&pw)
    .env_remove("CAIRN_FROM_PASSWORD")
    .run()
    .success();
    let cmd = format!("cat {}", pw.display());
    let out = other(
        &env,
        &target,
        &["copy", "--json", "--from-password-command", &cmd],
    )
    .env("CAIRN_FROM_REPOSITORY", src)
    .env_remove("CAIRN_FROM_PASSWORD")
    .run()
    .success();
    assert_eq!(num(&out.summary(), "snapshots_skipped"), 1);
    let out = other(&env, &target, &["copy", "--from-repo", src])
        .env_remove("CAIRN_FROM_PASSWORD")
        .run();
    assert!(
        out.one_line_error().contains("CAIRN_FROM_PASSWORD"),
        "{}",
        out.describe()
    );
    let out = other(&env, &target, &["copy", "--from-repo", src, "deadbeef"]).run();
    assert!(
        out.one_line_error()
            .contains("no snapshot with id deadbeef"),
        "{}",
        out.describe()
    );
    let out = other(&env, &target, &["copy", "--from-repo", src, "zz"]).run();
    out.one_line_error();
    // The target missing: exit 10 too; the same repository on both sides refused.
    other(&env, &env.path("no-target"), &["copy", "--from-repo", src])
        .run()
        .expect_code(10);
    let out = env
        .cairn(["copy", "--from-repo", src])
        .env("CAIRN_FROM_PASSWORD", &env.password)
        .run();
    assert!(
        out.one_line_error().contains("same repository"),
        "{}",
        out.describe()
    );

    // init --copy-chunker-params.
    let t2 = env.path("t2");
    let out = other(&env, &t2, &["init", "--from-repo", src]).run();
    assert!(
        out.one_line_error().contains("--copy-chunker-params"),
        "{}",
        out.describe()
    );
    other(
        &env,
        &t2,
        &["init", "--from-repo", src, "--copy-chunker-params"],
    )
    .env("CAIRN_FROM_PASSWORD", "wrong")
    .run()
    .expect_code(12);
    other(
        &env,
        &t2,
        &[
            "init",
            "--from-repo",
            env.path("nowhere").to_str().unwrap(),
            "--copy-chunker-params",
        ],
    )
    .run()
    .expect_code(10);
    assert!(
        !t2.join("config").exists(),
        "a failed init leaves no repository"
    );
    let out = other(
        &env,
        &target,
        &["init", "--from-repo", src, "--copy-chunker-params"],
    )
    .run();
    assert!(
        out.one_line_error().contains("already exists"),
        "{}",
        out.describe()
    );

    // repair on a missing repository, unknown snapshot ids.
    env.cairn(["repair", "index"])
        .env("CAIRN_REPOSITORY", env.path("nothing"))
        .run()
        .expect_code(10);
    let out = env.cairn(["repair", "snapshots", "abcdef12"]).run();
    assert!(
        out.one_line_error().contains("no snapshot"),
        "{}",
        out.describe()
    );
}

#[test]
fn unlock_leaves_foreign_locks_unless_remove_all() {
    let env = TestEnv::new();
    env.init();
    let out = env.cairn(["unlock"]).run().success();
    assert!(
        out.stdout_str().contains("no lock files"),
        "{}",
        out.describe()
    );
    // A lock file some other program wrote (not sealed with our key).
    let locks = env.repo.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let name = "ab".repeat(32);
    std::fs::write(
        locks.join(&name),
        b"{\"time\":\"2020-01-01T00:00:00Z\",\"hostname\":\"x\",\"pid\":1}",
    )
    .unwrap();
    let s = env.cairn(["unlock", "--json"]).run().success().summary();
    assert_eq!(s["removed"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["kept"][0]["id"], name.as_str());
    assert!(locks.join(&name).exists());
    let s = env
        .cairn(["unlock", "--remove-all", "--json"])
        .run()
        .success()
        .summary();
    assert_eq!(s["removed"][0]["id"], name.as_str());
    assert!(!locks.join(&name).exists());
    env.cairn(["unlock"])
        .env("CAIRN_PASSWORD", "wrong")
        .run()
        .expect_code(12);
}
