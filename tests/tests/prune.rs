//! Prune under stress, without timing: crashed after each of its backend
//! writes and deletes in turn (`CAIRN_TEST_CRASH_AFTER`), and run while a
//! backup is held open in the middle of its input. Every kept snapshot must
//! restore exactly, and `check --read-data` pass.

use cairn_tests::cmd::{num, wait_timeout};
use cairn_tests::gen::{compressible_file, random_file, Rng};
use cairn_tests::{assert_manifest_matches, restored, Manifest, TestEnv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// The exit code of a debug `cairn` ended by `CAIRN_TEST_CRASH_AFTER`.
const CRASH_EXIT_CODE: i32 = 97;

/// Change the tree: add a few files, rewrite one, delete one.
fn mutate(src: &Path, rng: &mut Rng, round: u64) {
    for i in 0..3 {
        let p = src.join(format!("r{round}-{i}.bin"));
        if rng.below(2) == 0 {
            random_file(&p, 64 * KIB + rng.below(600 * KIB), round * 100 + i);
        } else {
            compressible_file(&p, 64 * KIB + rng.below(600 * KIB), round * 100 + i);
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    if files.len() > 4 {
        let victim = &files[rng.below(files.len() as u64) as usize];
        std::fs::remove_file(victim).unwrap();
        let other = &files[rng.below(files.len() as u64) as usize];
        if other != victim {
            random_file(other, 32 * KIB + rng.below(300 * KIB), round * 1000);
        }
    }
}

fn snapshot_ids(env: &TestEnv) -> Vec<String> {
    env.snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Remove a snapshot file, as `forget` does.
fn forget(env: &TestEnv, id: &str) {
    std::fs::remove_file(env.repo.join("snapshots").join(id)).unwrap();
}

fn verify_all(env: &TestEnv, src: &Path, expected: &BTreeMap<String, Manifest>) {
    env.cairn(["check", "--read-data"]).run().success();
    for id in snapshot_ids(env) {
        let m = expected
            .get(&id)
            .unwrap_or_else(|| panic!("snapshot {id} was not made by this test"));
        let target = env.path(format!("restore-{}", &id[..8]));
        env.restore(&id, &target, &[]);
        assert_manifest_matches(m, &restored(&target, src));
        std::fs::remove_dir_all(&target).unwrap();
    }
}

/// The names of the pack files in the repository.
fn pack_names(env: &TestEnv) -> BTreeSet<String> {
    cairn_tests::repo::packs(&env.repo)
        .iter()
        .map(|(p, _)| cairn_tests::repo::file_name(p))
        .collect()
}

/// `cp -a from to`, replacing `to`.
fn copy_tree(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// The `crash point N: ...` lines a debug build prints under
/// `CAIRN_TEST_CRASH_AFTER`, in order.
fn crash_points(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("crash point "))
        .map(str::to_owned)
        .collect()
}

const PRUNE_NOW: [&str; 7] = [
    "--pack-size",
    "1",
    "prune",
    "--keep-delete",
    "0",
    "--max-unused",
    "0%",
];

/// Prune is crashed right after each of its backend writes and deletes in
/// turn, each time on a fresh copy of the same repository. The repository
/// holds everything prune does: packs marked by an earlier prune whose
/// grace is over (deleted), packs no snapshot needs any more (deleted now),
/// partly used packs (repacked), so the crash points cover writing new
/// packs, writing the index, deleting packs and deleting old index files.
#[test]
fn prune_crashed_after_each_of_its_writes_and_deletes_leaves_a_repository_that_checks_and_restores()
{
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let mut rng = Rng::new(9);
    env.init();
    let mut expected: BTreeMap<String, Manifest> = BTreeMap::new();
    // Small packs, so that prune has many packs to write and delete.
    for round in 0..5 {
        mutate(&src, &mut rng, round);
        let s = env
            .cairn(["--pack-size", "1", "backup", "--json"])
            .arg(&src)
            .run()
            .success()
            .summary();
        expected.insert(
            s["snapshot_id"].as_str().unwrap().to_string(),
            Manifest::take(&src),
        );
    }
    // Two forgotten snapshots, pruned with a grace period: their packs are
    // marked (and some repacked), to be deleted by the next prune.
    let ids = snapshot_ids(&env);
    assert_eq!(ids.len(), 5);
    for id in ids.iter().take(2) {
        forget(&env, id);
        expected.remove(id);
    }
    let r = env
        .cairn(["--pack-size", "1", "--json", "prune"])
        .args(["--keep-delete", "1h", "--max-unused", "0%"])
        .run()
        .success()
        .json();
    assert!(num(&r, "packs_marked") > 0, "nothing marked: {r}");
    // One more forgotten: its packs are unused now, not yet marked.
    forget(&env, &snapshot_ids(&env)[0]);
    let kept = snapshot_ids(&env);
    expected.retain(|id, _| kept.contains(id));
    assert_eq!(expected.len(), 2);
    let template = env.path("template");
    copy_tree(&env.repo, &template);

    // A clean run names its crash points.
    let out = env
        .cairn(PRUNE_NOW)
        .env("CAIRN_TEST_CRASH_AFTER", "1000000")
        .run()
        .success();
    let points = crash_points(&out.stderr);
    for op in [
        "write data/",
        "write index/",
        "remove data/",
        "remove index/",
    ] {
        assert!(
            points.iter().any(|p| p.contains(op)),
            "a clean prune did no `{op}`, so crashing it proves less than it should:\n{}",
            points.join("\n")
        );
    }
    verify_all(&env, &src, &expected);

    for n in 1..=points.len() {
        copy_tree(&template, &env.repo);
        let out = env
            .cairn(PRUNE_NOW)
            .env("CAIRN_TEST_CRASH_AFTER", n.to_string())
            .run()
            .expect_code(CRASH_EXIT_CODE);
        let last = crash_points(&out.stderr);
        assert_eq!(
            last.len(),
            n,
            "prune crashed after {} points instead of {n}:\n{}",
            last.len(),
            out.describe()
        );
        eprintln!("crashed prune after {}", last[n - 1]);
        verify_all(&env, &src, &expected);
        // The next prune finishes what the crashed one left.
        env.cairn(PRUNE_NOW).run().success();
        env.cairn(["check", "--read-data"]).run().success();
        assert_eq!(
            snapshot_ids(&env).into_iter().collect::<BTreeSet<_>>(),
            expected.keys().cloned().collect::<BTreeSet<_>>()
        );
    }
}

/// Wait, failing after `limit`, until `ready` holds; polls the file system.
fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A backup runs while prune runs, provably at the same time: its input is
/// held open until prune has finished. The backup's index was loaded before
/// prune marked the packs of a forgotten snapshot, so it deduplicates
/// against them; its own first pack is on disk but in no index yet. Then:
/// the backup's packs must survive (its index lists them in use), and the
/// next prune, with no grace period left, must recover the marked packs the
/// new snapshot needs instead of deleting them (`packs_recovered`).
#[test]
fn a_backup_held_open_across_a_prune_keeps_its_data_and_recovers_the_marked_packs_it_needs() {
    let env = TestEnv::new();
    env.init();
    let mut rng = Rng::new(17);
    // Chunks are at most 8 MiB: the first chunk of these 12 MiB ends within
    // them, and is the same chunk when the same bytes start another stream.
    let old = rng.bytes(12 * MIB as usize);
    let s = env
        .cairn([
            "--pack-size",
            "1",
            "backup",
            "--json",
            "--stdin",
            "--stdin-filename",
            "old.bin",
        ])
        .stdin(old.clone())
        .run()
        .success()
        .summary();
    forget(&env, s["snapshot_id"].as_str().unwrap());
    let before = pack_names(&env);

    // The backup: the old data first (deduplicated against packs prune is
    // about to mark), then new data; then it waits. Of the 16 MiB of new
    // data at most one chunk (8 MiB) is still being cut, so more than a
    // pack's worth (1 MiB) is chunked and its pack written.
    let fresh = rng.bytes(16 * MIB as usize);
    let tail = rng.bytes(2 * MIB as usize);
    let mut c = env.cairn([
        "--pack-size",
        "1",
        "backup",
        "--json",
        "--stdin",
        "--stdin-filename",
        "new.bin",
    ]);
    let mut backup = c.command().stdin(Stdio::piped()).spawn().unwrap();
    let mut so = backup.stdout.take().unwrap();
    let mut se = backup.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut v = String::new();
        so.read_to_string(&mut v).unwrap();
        v
    });
    let stderr = std::thread::spawn(move || {
        let mut v = String::new();
        se.read_to_string(&mut v).unwrap();
        v
    });
    let mut feed = backup.stdin.take().unwrap();
    feed.write_all(&old).unwrap();
    feed.write_all(&fresh).unwrap();
    feed.flush().unwrap();
    wait_until(
        "the held backup's first pack",
        Duration::from_secs(120),
        || pack_names(&env).difference(&before).next().is_some(),
    );

    // Prune runs to completion while the backup waits for the rest.
    let r = env
        .cairn([
            "--json",
            "prune",
            "--keep-delete",
            "1h",
            "--max-unused",
            "0%",
        ])
        .run()
        .success()
        .json();
    assert!(
        backup.try_wait().unwrap().is_none(),
        "the backup ended before its input did"
    );
    assert!(
        num(&r, "packs_marked") > 0,
        "the forgotten data was not marked: {r}"
    );
    assert!(
        num(&r, "packs_unindexed") > 0,
        "prune did not see the running backup's pack: {r}"
    );

    feed.write_all(&tail).unwrap();
    drop(feed);
    let st = wait_timeout(&mut backup, Duration::from_secs(300), "held backup");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(st.success(), "backup failed ({st}):\n{stderr}");
    let summary: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary from the backup:\n{stdout}"));
    let snapshot = summary["snapshot_id"].as_str().unwrap().to_string();
    let mut want = old;
    want.extend(&fresh);
    want.extend(&tail);

    // No grace period left (no backup runs now): marked packs are deleted
    // unless a snapshot needs them.
    let r = env
        .cairn([
            "--json",
            "prune",
            "--keep-delete",
            "0",
            "--max-unused",
            "0%",
        ])
        .run()
        .success()
        .json();
    assert!(
        num(&r, "packs_recovered") > 0,
        "no marked pack recovered, though the new snapshot needs the old data: {r}"
    );
    env.cairn(["check", "--read-data"]).run().success();
    let dumped = env
        .cairn(["dump", &snapshot, "/new.bin"])
        .run()
        .success()
        .stdout;
    assert!(
        dumped == want,
        "the held backup's file does not read back as written"
    );
    // Nothing is left marked that a later prune could take.
    let r = env
        .cairn([
            "--json",
            "prune",
            "--keep-delete",
            "0",
            "--max-unused",
            "0%",
        ])
        .run()
        .success()
        .json();
    assert_eq!(num(&r, "packs_deleted"), 0, "{r}");
    env.cairn(["check", "--read-data"]).run().success();
}
