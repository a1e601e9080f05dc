//! Bad input: each case must give a clear one-line error and a documented
//! non-zero exit code, never a panic (every run checks that), and leave
//! the repository as it was.

use cairn_tests::gen::random_file;
use cairn_tests::repo::{
    assert_unchanged, file_name, files, files_by_blob, flip_bit, hash_all, pack_blobs, packs,
    truncate, PackBlob,
};
use cairn_tests::{is_root, restored, TestEnv};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// A repository with one snapshot of a small tree.
fn env_with_snapshot() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    random_file(&src.join("sub/r.bin"), MIB, 1);
    env.init();
    env.backup_json([&src]);
    (env, src)
}

/// `target` does not exist, or is an empty directory: nothing was written.
#[track_caller]
fn assert_nothing_under(target: &Path, what: &str) {
    let Ok(rd) = fs::read_dir(target) else {
        assert!(
            fs::symlink_metadata(target).is_err(),
            "{what} made {} something other than a directory",
            target.display()
        );
        return;
    };
    let found: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    assert!(found.is_empty(), "{what} wrote into the target: {found:?}");
}

#[test]
fn wrong_password_exits_12_and_changes_nothing() {
    let (mut env, src) = env_with_snapshot();
    let before = hash_all(&env.repo);
    env.password = "not the password".into();
    let target = env.path("target");
    let runs: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["snapshots".into()],
        vec!["ls".into(), "latest".into()],
        vec!["backup".into(), src.clone().into()],
        vec!["backup".into(), "--init".into(), src.clone().into()],
        vec![
            "restore".into(),
            "latest".into(),
            "--target".into(),
            target.clone().into(),
        ],
        vec!["dump".into(), "latest".into(), "/".into()],
        vec!["check".into(), "--read-data".into()],
        vec!["cat".into(), "config".into()],
        vec!["init".into()],
    ];
    for args in runs {
        let out = env.cairn(&args).run();
        if args[0] == "init" {
            // init on an existing repository fails before asking for a password.
            assert_ne!(out.code(), 0, "{}", out.describe());
            out.one_line_error();
            continue;
        }
        let out = out.expect_code(12);
        let line = out.one_line_error();
        assert!(
            line.to_lowercase().contains("password"),
            "the error should say the password is wrong: {line}"
        );
    }
    assert_nothing_under(&target, "a restore with a wrong password");
    assert_unchanged(&before, &hash_all(&env.repo), "a wrong password");
}

#[test]
fn missing_repository_exits_10_and_creates_nothing() {
    let (mut env, src) = env_with_snapshot();
    env.repo = env.path("no-such-repo");
    let target = env.path("target");
    for args in [
        vec!["snapshots".to_string()],
        vec!["ls".into(), "latest".into()],
        vec!["backup".into(), src.display().to_string()],
        vec![
            "restore".into(),
            "latest".into(),
            "--target".into(),
            target.display().to_string(),
        ],
        vec!["check".into()],
        vec!["cat".into(), "config".into()],
    ] {
        let out = env.cairn(&args).run().expect_code(10);
        let line = out.one_line_error();
        assert!(
            line.contains("no-such-repo"),
            "the error should name the repository: {line}"
        );
    }
    assert!(
        !env.repo.exists(),
        "a command on a missing repository created {}",
        env.repo.display()
    );
    assert_nothing_under(&target, "a restore from a missing repository");
    // A directory that exists but is no repository is missing too.
    fs::create_dir(&env.repo).unwrap();
    env.cairn(["snapshots"])
        .run()
        .expect_code(10)
        .one_line_error();
    assert_eq!(
        fs::read_dir(&env.repo).unwrap().count(),
        0,
        "snapshots wrote into an empty directory"
    );
}

#[test]
fn init_on_an_existing_repository_fails_and_changes_nothing() {
    let (mut env, src) = env_with_snapshot();
    let before = hash_all(&env.repo);
    let out = env.cairn(["init"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    let line = out.one_line_error();
    assert!(
        line.contains("exist"),
        "the error should say the repository exists: {line}"
    );
    env.password = "another password".into();
    let out = env.cairn(["init"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    out.one_line_error();
    assert_unchanged(
        &before,
        &hash_all(&env.repo),
        "init on an existing repository",
    );

    // backup --init on an existing repository opens it instead.
    env.password = cairn_tests::cmd::PASSWORD.into();
    env.cairn(["backup", "--init"]).arg(&src).run().success();
    assert_eq!(
        files(&env.repo, "keys").len(),
        1,
        "backup --init added a key to an existing repository"
    );
    assert_eq!(env.snapshots().len(), 2);
}

#[test]
fn bad_flags_exit_2() {
    let env = TestEnv::new();
    for args in [
        vec!["backup", "--no-such-flag", "/tmp"],
        vec!["frobnicate"],
        vec!["restore", "latest"], // --target is required
        vec!["check", "--read-data=maybe"],
        vec![],
    ] {
        let out = env.cairn(&args).run().expect_code(2);
        assert!(
            !out.stderr.trim().is_empty(),
            "`{}`: no message:\n{}",
            out.cmdline,
            out.describe()
        );
    }
    assert!(!env.repo.exists());
}

#[test]
fn missing_backup_path_names_it_and_stores_nothing() {
    let (env, src) = env_with_snapshot();
    let before = hash_all(&env.repo);
    let missing = env.path("not-there");
    for paths in [vec![missing.clone()], vec![src.clone(), missing.clone()]] {
        let out = env.cairn(["backup"]).args(&paths).run();
        assert_eq!(out.code(), 1, "{}", out.describe());
        let line = out.one_line_error();
        assert!(
            line.contains(&*missing.to_string_lossy()),
            "the error should name {}: {line}",
            missing.display()
        );
    }
    assert_unchanged(&before, &hash_all(&env.repo), "a backup of a missing path");
}

/// Run `cairn` without the capabilities that let root read any file, so
/// that permission bits apply (the tests run as root). None where that is
/// not possible.
fn without_read_override(c: &mut cairn_tests::Cairn) -> Option<()> {
    if !is_root() {
        return Some(());
    }
    let args = [
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
        "--",
    ];
    let probe = std::process::Command::new("setpriv")
        .args(args)
        .arg("true")
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        return None;
    }
    c.wrapped_in("setpriv", &args);
    Some(())
}

#[test]
fn unreadable_files_are_reported_skipped_and_exit_3() {
    // As root, chmod 000 does not stop reads: cairn runs under setpriv
    // without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, still as root (so it
    // can write the repository), and then mode 000 is enforced.
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("ok.txt"), b"readable\n").unwrap();
    fs::write(src.join("secret.txt"), b"unreadable\n").unwrap();
    fs::create_dir(src.join("locked")).unwrap();
    fs::write(src.join("locked/inner.txt"), b"behind a locked dir\n").unwrap();
    fs::create_dir(src.join("open")).unwrap();
    fs::write(src.join("open/fine.txt"), b"fine\n").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    env.init();

    let mut c = env.cairn(["backup", "--json"]);
    c.arg(&src);
    if without_read_override(&mut c).is_none() {
        cairn_tests::skip(
            "running as root and setpriv cannot drop CAP_DAC_OVERRIDE, so no file is unreadable",
        );
        return;
    }
    let out = c.run();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    let out = out.expect_code(3);
    for name in ["secret.txt", "locked"] {
        assert!(
            out.stderr.contains(name),
            "stderr does not name the unreadable {name}:\n{}",
            out.describe()
        );
    }
    let id = out.summary()["snapshot_id"]
        .as_str()
        .expect("a snapshot was saved")
        .to_string();

    let target = env.path("target");
    env.restore(&id, &target, &[]);
    let r = restored(&target, &src);
    assert_eq!(fs::read(r.join("ok.txt")).unwrap(), b"readable\n");
    assert_eq!(fs::read(r.join("open/fine.txt")).unwrap(), b"fine\n");
    assert!(
        !r.join("secret.txt").exists(),
        "the unreadable file was stored (as what?)"
    );
    assert!(!r.join("locked/inner.txt").exists());
    env.cairn(["check", "--read-data"]).run().success();
}

/// A repository with small packs: six files of distinct random data,
/// plus small ones, so that damaging one pack affects only some files.
fn env_with_many_packs() -> (TestEnv, PathBuf, String) {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    for i in 0..6 {
        random_file(&src.join(format!("file{i}.bin")), 3 * MIB / 2, 100 + i);
    }
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    env.init();
    let s = env
        .cairn(["backup", "--json", "--pack-size", "1"])
        .arg(&src)
        .run()
        .success()
        .summary();
    let id = s["snapshot_id"].as_str().unwrap().to_string();
    (env, src, id)
}

/// The `skip`-th data pack holding blobs of at least two files, with its
/// blobs, and for each blob the names (not paths) of the files using it.
fn data_pack(
    env: &TestEnv,
    snapshot: &str,
    skip: usize,
) -> (PathBuf, Vec<(PackBlob, BTreeSet<String>)>) {
    let by_blob = files_by_blob(env, snapshot);
    let mut candidates = Vec::new();
    for (path, _) in packs(&env.repo) {
        let blobs = pack_blobs(env, &file_name(&path));
        if blobs.iter().all(|b| b.kind == "data") {
            let with_names: Vec<(PackBlob, BTreeSet<String>)> = blobs
                .into_iter()
                .map(|b| {
                    let names = by_blob
                        .get(&b.id)
                        .into_iter()
                        .flatten()
                        .map(|p| p.rsplit('/').next().unwrap().to_string())
                        .collect();
                    (b, names)
                })
                .collect();
            candidates.push((path, with_names));
        }
    }
    assert!(
        candidates.len() > skip + 1,
        "expected several data packs, got {}",
        candidates.len()
    );
    // Largest first: packs full of blobs, not the last small one.
    candidates.sort_by_key(|(p, _)| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    candidates.swap_remove(skip)
}

/// Restore must fail (non-zero), name every affected file, and restore
/// exactly every file that is neither affected nor in `may_fail` (files
/// whose intact blobs share a damaged pack: a restorer that reads each
/// pack in one piece loses them too, as restic's does; they must then be
/// named in the errors as well).
fn assert_restore_reports(
    env: &TestEnv,
    src: &Path,
    snapshot: &str,
    affected: &BTreeSet<String>,
    may_fail: &BTreeSet<String>,
) {
    let target = env.path(format!("target-{}", rand_suffix()));
    let out = env
        .cairn(["restore", snapshot, "--target"])
        .arg(&target)
        .run();
    assert_ne!(
        out.code(),
        0,
        "restore from a damaged pack succeeded:\n{}",
        out.describe()
    );
    for name in affected {
        assert!(
            out.stderr.contains(name.as_str()),
            "the restore error does not name the damaged file {name}:\n{}",
            out.describe()
        );
    }
    let r = restored(&target, src);
    // A file that failed is not left in place with zero-filled ranges.
    for name in affected {
        assert!(
            !r.join(name).exists(),
            "the damaged file {name} was left in the target:\n{}",
            out.describe()
        );
    }
    let hash = |p: &Path| p.is_file().then(|| cairn_tests::tree::hash_file(p));
    let mut wrong = Vec::new();
    for e in fs::read_dir(src).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if affected.contains(&name) {
            continue;
        }
        let problem = match hash(&r.join(&name)) {
            None => Some("not restored"),
            Some(h) if Some(&h) != hash(&src.join(&name)).as_ref() => {
                Some("restored with other contents")
            }
            _ => None,
        };
        match problem {
            Some(_) if may_fail.contains(&name) && out.stderr.contains(name.as_str()) => {}
            Some(p) if may_fail.contains(&name) => {
                wrong.push(format!("{name}: {p}, and no error names it"))
            }
            Some(p) => wrong.push(format!("{name}: {p}")),
            None => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "files that use no damaged blob were not restored exactly (damaged: {affected:?}):\n  {}\n{}",
        wrong.join("\n  "),
        out.describe()
    );
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn bit_flipped_pack_is_reported_by_check_and_restore() {
    let (env, src, snap) = env_with_many_packs();
    let (pack, blobs) = data_pack(&env, &snap, 0);
    // Damage the middle of the pack's last blob: only the files using that blob are affected.
    let (blob, affected) = blobs.last().unwrap().clone();
    assert!(!affected.is_empty());
    flip_bit(&pack, blob.offset + blob.length / 2);
    let before = hash_all(&env.repo);

    let out = env.cairn(["check", "--read-data"]).run().expect_code(1);
    let short = &file_name(&pack)[..8];
    assert!(
        out.stdout_str().contains(short) || out.stderr.contains(short),
        "check --read-data does not name the damaged pack {short}:\n{}",
        out.describe()
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("error:")),
        "{}",
        out.describe()
    );
    assert_restore_reports(&env, &src, &snap, &affected, &BTreeSet::new());
    for name in &affected {
        let dump = env.cairn(["dump", &snap]).arg(src.join(name)).run();
        assert_ne!(dump.code(), 0, "dump of a damaged file succeeded");
        dump.one_line_error();
    }
    assert_unchanged(
        &before,
        &hash_all(&env.repo),
        "check and restore of a damaged repository",
    );
}

/// The way back from one flipped bit: `repair packs` salvages the pack's
/// intact blobs, `repair snapshots --forget` drops the files that needed the
/// lost one, and then `check --read-data` passes and every other file
/// restores exactly. Before, the only way out was deleting the whole pack.
#[test]
fn repair_packs_then_snapshots_ends_in_a_clean_check() {
    let (env, src, snap) = env_with_many_packs();
    let (pack, blobs) = data_pack(&env, &snap, 0);
    let (blob, affected) = blobs.last().unwrap().clone();
    assert!(blobs.len() >= 2, "{blobs:?}");
    flip_bit(&pack, blob.offset + blob.length / 2);
    let name = file_name(&pack);

    env.cairn(["check", "--read-data"]).run().expect_code(1);
    let out = env
        .cairn(["repair", "packs", "--dry-run", &name[..12]])
        .run()
        .success();
    assert!(pack.exists(), "a dry run removed the pack");
    assert!(out.stdout_str().contains("1 lost"), "{}", out.describe());

    let out = env.cairn(["repair", "packs", &name[..12]]).run().success();
    let text = out.stdout_str();
    assert!(
        text.contains(&format!("{} blobs were salvaged, 1 lost", blobs.len() - 1)),
        "{}",
        out.describe()
    );
    assert!(
        text.contains("repair snapshots --forget"),
        "{}",
        out.describe()
    );
    assert!(!pack.exists(), "the damaged pack is still there");

    env.cairn(["repair", "snapshots", "--forget"])
        .run()
        .success();
    env.cairn(["check", "--read-data"]).run().success();

    // The repaired snapshot lacks exactly the files that used the lost
    // blob; every other file restores exactly.
    let target = env.path("target");
    env.cairn(["restore", "latest", "--target"])
        .arg(&target)
        .run()
        .success();
    let r = restored(&target, &src);
    for e in fs::read_dir(&src).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let got = r.join(&name);
        if affected.contains(&name) {
            assert!(!got.exists(), "{name} needs the lost blob but was kept");
        } else {
            assert_eq!(
                fs::read(&got).ok(),
                fs::read(src.join(&name)).ok(),
                "{name} was not restored exactly"
            );
        }
    }
}

#[test]
fn truncated_packs_are_reported_by_check_and_restore() {
    for keep in [None, Some(2u64)] {
        let (env, src, snap) = env_with_many_packs();
        let (pack, blobs) = data_pack(&env, &snap, 1);
        let len = fs::metadata(&pack).unwrap().len();
        // Cut in the middle of the last blob (or keep only 2 bytes).
        let last = &blobs.last().unwrap().0;
        let cut = keep.unwrap_or(last.offset + last.length / 2);
        truncate(&pack, cut);
        // Blobs that end before the cut can still be read through the index.
        let affected: BTreeSet<String> = blobs
            .iter()
            .filter(|(b, _)| b.offset + b.length > cut)
            .flat_map(|(_, names)| names.clone())
            .collect();
        assert!(
            !affected.is_empty(),
            "pack of {len} bytes cut at {cut}: {blobs:?}"
        );
        let in_pack: BTreeSet<String> = blobs.iter().flat_map(|(_, names)| names.clone()).collect();
        let short = file_name(&pack)[..8].to_string();
        let before = hash_all(&env.repo);

        // The size no longer matches the index: even the quick check sees it.
        for args in [vec!["check"], vec!["check", "--read-data"]] {
            let out = env.cairn(&args).run().expect_code(1);
            assert!(
                out.stdout_str().contains(&short) || out.stderr.contains(&short),
                "`{}` does not name the truncated pack {short}:\n{}",
                out.cmdline,
                out.describe()
            );
        }
        assert_restore_reports(&env, &src, &snap, &affected, &in_pack);
        assert_unchanged(
            &before,
            &hash_all(&env.repo),
            "check and restore of a damaged repository",
        );
    }
}

#[test]
fn missing_pack_is_reported_by_check_and_restore() {
    let (env, src, snap) = env_with_many_packs();
    let (pack, blobs) = data_pack(&env, &snap, 0);
    let affected: BTreeSet<String> = blobs.iter().flat_map(|(_, n)| n.clone()).collect();
    fs::remove_file(&pack).unwrap();
    let short = file_name(&pack)[..8].to_string();
    let out = env.cairn(["check"]).run().expect_code(1);
    assert!(
        out.stdout_str().contains(&short) || out.stderr.contains(&short),
        "check does not name the missing pack {short}:\n{}",
        out.describe()
    );
    assert_restore_reports(&env, &src, &snap, &affected, &BTreeSet::new());
    // Note: a later backup trusts the index and does not store the lost
    // blobs again (as restic before `repair index`); no repair command yet.
}

#[test]
fn damaged_index_files_give_a_clear_error() {
    enum Damage {
        FlipBit,
        Truncate(u64),
    }
    for damage in [Damage::FlipBit, Damage::Truncate(10), Damage::Truncate(0)] {
        let (env, src) = env_with_snapshot();
        let index = files(&env.repo, "index");
        assert_eq!(index.len(), 1, "one backup, one index file");
        let (path, len) = index[0].clone();
        match damage {
            Damage::FlipBit => flip_bit(&path, len / 2),
            Damage::Truncate(n) => truncate(&path, n),
        }
        let short = file_name(&path)[..8].to_string();
        let before = hash_all(&env.repo);
        let target = env.path("target");
        for args in [
            vec!["ls".to_string(), "latest".into()],
            vec![
                "restore".into(),
                "latest".into(),
                "--target".into(),
                target.display().to_string(),
            ],
            vec![
                "dump".into(),
                "latest".into(),
                src.join("a.txt").display().to_string(),
            ],
        ] {
            let out = env.cairn(&args).run().expect_code(1);
            let line = out.one_line_error();
            assert!(
                line.contains("index"),
                "the error should say an index file is damaged: {line}"
            );
            assert!(
                line.contains("cairn repair index"),
                "the error should say what repairs it: {line}"
            );
        }
        let out = env.cairn(["check"]).run().expect_code(1);
        assert!(
            out.stdout_str().contains(&short) || out.stderr.contains(&short),
            "check does not name the damaged index {short}:\n{}",
            out.describe()
        );
        assert_unchanged(
            &before,
            &hash_all(&env.repo),
            "commands on a repository with a damaged index",
        );
    }
}

#[test]
fn damaged_snapshot_and_config_give_a_clear_error() {
    let (env, _src) = env_with_snapshot();
    let (snap, len) = files(&env.repo, "snapshots")[0].clone();
    flip_bit(&snap, len / 2);
    let out = env.cairn(["ls", "latest"]).run().expect_code(1);
    out.one_line_error();
    let out = env.cairn(["check"]).run().expect_code(1);
    assert!(
        out.stdout_str().contains(&file_name(&snap)[..8])
            || out.stderr.contains(&file_name(&snap)[..8]),
        "{}",
        out.describe()
    );

    // A repository of its own: a damaged snapshot fails check.
    let (env, _src) = env_with_snapshot();
    let config = env.repo.join("config");
    // Sealed again with a new nonce: the same config, not the same bytes.
    let intact = env.cairn(["cat", "config"]).run().success().stdout_str();
    let len = fs::metadata(&config).unwrap().len();
    flip_bit(&config, len - 5);
    let out = env.cairn(["snapshots"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert_ne!(
        out.code(),
        12,
        "a damaged config is not a wrong password:\n{}",
        out.describe()
    );
    let line = out.one_line_error();
    assert!(line.contains("cairn repair config"), "{line}");

    // The key files' copy brings it back; so it does when it is deleted.
    for delete in [false, true] {
        if delete {
            fs::remove_file(&config).unwrap();
        }
        let out = env.cairn(["repair", "config"]).run().success();
        assert!(out.stdout_str().contains("restored"), "{}", out.describe());
        env.cairn(["repair", "config"]).run().success();
        let now = env.cairn(["cat", "config"]).run().success().stdout_str();
        assert_eq!(now, intact);
        env.cairn(["check"]).run().success();
        env.cairn(["ls", "latest"]).run().success();
    }
}

/// A damaged spare key file: every command still opens the repository
/// with the good key and warns naming the damaged one, and `check` fails
/// naming it (before, spare keys were never read).
#[test]
fn a_damaged_spare_key_is_found_by_check_and_warned_about() {
    let (env, _src) = env_with_snapshot();
    let spare_pw = env.path("spare-password");
    fs::write(&spare_pw, "spare password\n").unwrap();
    let out = env
        .cairn(["key", "add", "--json", "--new-password-file"])
        .arg(&spare_pw)
        .run()
        .success();
    let spare = out.json()["id"].as_str().unwrap().to_string();
    let path = env.repo.join("keys").join(&spare);
    let len = fs::metadata(&path).unwrap().len();
    flip_bit(&path, len / 2);

    let out = env.cairn(["snapshots"]).run().success();
    assert!(
        out.stderr.contains("warning") && out.stderr.contains(&spare[..8]),
        "{}",
        out.describe()
    );
    let out = env.cairn(["check"]).run().expect_code(1);
    let text = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(
        text.contains(&spare[..8]) && text.contains("damaged"),
        "{}",
        out.describe()
    );
}

/// With the newest snapshot file damaged, `latest` is not known: restore
/// and ls fail naming the file instead of quietly taking the one before,
/// an explicit id still works, and after `repair snapshots --forget`
/// `latest` is the newest readable snapshot again.
#[test]
fn a_damaged_newest_snapshot_makes_latest_fail_not_fall_back() {
    let (env, src) = env_with_snapshot();
    let older = env.snapshots()[0]["id"].as_str().unwrap().to_string();
    fs::write(src.join("a.txt"), b"beta, the newer content\n").unwrap();
    let newer = env.backup_json([&src])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let snap = env.repo.join("snapshots").join(&newer);
    let len = fs::metadata(&snap).unwrap().len();
    flip_bit(&snap, len / 2);

    let target = env.path("target");
    for args in [
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["ls", "latest"],
    ] {
        let out = env.cairn(&args).run().expect_code(1);
        let line = out.one_line_error();
        assert!(line.contains(&newer[..8]), "{args:?}: {line}");
        assert!(line.contains("latest"), "{args:?}: {line}");
    }
    assert!(!target.exists(), "a failed `restore latest` wrote files");

    // An explicit id is an explicit choice.
    env.cairn(["restore", &older, "--target", target.to_str().unwrap()])
        .run()
        .success();
    assert_eq!(
        fs::read(restored(&target, &src).join("a.txt")).unwrap(),
        b"alpha\n"
    );
    env.cairn(["repair", "snapshots", "--forget"])
        .run()
        .success();
    let out = env.cairn(["ls", "latest"]).run().success();
    assert!(out.stdout_str().contains(&older[..8]), "{}", out.describe());
}

#[test]
fn bad_option_values_and_empty_repositories() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    env.init();
    assert_eq!(env.snapshots(), Vec::<serde_json::Value>::new());
    let table = env.cairn(["snapshots"]).run().success().stdout_str();
    assert!(table.contains("0 snapshots"), "{table}");
    let target = env.path("target");
    for args in [
        vec![
            "restore".to_string(),
            "latest".into(),
            "--target".into(),
            target.display().to_string(),
        ],
        vec!["ls".into(), "latest".into()],
        vec!["dump".into(), "latest".into(), "/x".into()],
        vec![
            "backup".into(),
            "--stdin".into(),
            "--stdin-filename".into(),
            "a/b".into(),
        ],
        vec![
            "backup".into(),
            src.display().to_string(),
            "--exclude-larger-than".into(),
            "lots".into(),
        ],
        vec![
            "backup".into(),
            src.display().to_string(),
            "--parent".into(),
            "deadbeef".into(),
        ],
        vec![
            "backup".into(),
            src.display().to_string(),
            "--exclude-file".into(),
            env.path("no-such-file").display().to_string(),
        ],
        vec!["backup".into(), "--stdin-from-command".into()],
        vec![
            "--compression".into(),
            "extreme".into(),
            "backup".into(),
            src.display().to_string(),
        ],
    ] {
        let out = env.cairn(&args).run();
        assert_eq!(out.code(), 1, "{}", out.describe());
        out.one_line_error();
    }
    assert!(env.snapshots().is_empty());
}
