//! Prune under stress: concurrent with backups, and killed at many points.
//! Every kept snapshot must restore exactly, and `check --read-data` pass.

use cairn_tests::cmd::wait_timeout;
use cairn_tests::gen::{compressible_file, random_file, Rng};
use cairn_tests::{assert_manifest_matches, restored, Manifest, TestEnv};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

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

#[test]
fn backups_and_prunes_running_at_the_same_time_lose_nothing() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let mut rng = Rng::new(5);
    mutate(&src, &mut rng, 0);
    env.init();
    let mut expected: BTreeMap<String, Manifest> = BTreeMap::new();

    for round in 1..=8u64 {
        // Forget all but the last two snapshots, so prune has work to do.
        let ids = snapshot_ids(&env);
        for id in ids.iter().take(ids.len().saturating_sub(2)) {
            forget(&env, id);
            expected.remove(id);
        }
        mutate(&src, &mut rng, round);
        let manifest = Manifest::take(&src);
        // Backup and prune at once. The grace period (2 s) is longer than
        // any backup here takes, which is prune's safety condition.
        let mut backup = env.cairn(["backup", "--json", "--quiet"]);
        backup.arg(&src);
        let b = backup
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut prune = env.cairn(["prune", "--keep-delete", "2s", "--max-unused", "0%"]);
        let mut p = prune
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pst = wait_timeout(&mut p, Duration::from_secs(120), "prune");
        let bout = b.wait_with_output().unwrap();
        assert!(pst.success(), "round {round}: prune failed ({pst})");
        assert!(
            bout.status.success(),
            "round {round}: backup failed: {}",
            String::from_utf8_lossy(&bout.stderr)
        );
        let summary: serde_json::Value = String::from_utf8_lossy(&bout.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message_type"] == "summary")
            .expect("backup printed a summary");
        expected.insert(
            summary["snapshot_id"].as_str().unwrap().to_string(),
            manifest,
        );
        if round % 3 == 0 {
            std::thread::sleep(Duration::from_millis(2100)); // let marks expire
        }
    }
    std::thread::sleep(Duration::from_millis(2100));
    env.cairn(["prune", "--keep-delete", "2s"]).run().success();
    verify_all(&env, &src, &expected);
}

#[test]
fn prune_killed_at_any_point_leaves_a_repository_that_checks_and_restores() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    let mut rng = Rng::new(9);
    env.init();
    let mut expected: BTreeMap<String, Manifest> = BTreeMap::new();
    // Use small packs so that prune has many steps to be killed between.
    for round in 0..6 {
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
    random_file(&src.join("big.bin"), 3 * MIB, 42);
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

    let ids = snapshot_ids(&env);
    for id in ids.iter().take(4) {
        forget(&env, id);
        expected.remove(id);
    }
    // Kill prune after increasing delays; after each kill the repository checks and restores.
    let mut finished = false;
    for attempt in 0..12u64 {
        let delay = Duration::from_millis(5 + attempt * attempt * 12);
        let mut c = env.cairn([
            "--pack-size",
            "1",
            "prune",
            "--keep-delete",
            "0",
            "--max-unused",
            "0%",
        ]);
        let mut child = c
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let done = child.try_wait().unwrap().is_some();
        if !done {
            child.kill().unwrap();
        }
        let _ = child.wait();
        verify_all(&env, &src, &expected);
        if done {
            finished = true;
            break;
        }
    }
    assert!(
        finished,
        "prune never got to finish within the delays tried"
    );
    env.cairn(["prune", "--keep-delete", "0"]).run().success();
    verify_all(&env, &src, &expected);
}
