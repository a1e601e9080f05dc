//! End-to-end tests of the commands that look after snapshots over a
//! repository's life: forget (with prune), tag, diff, find, stats, rewrite,
//! and their errors for bad input.
//!
//! Snapshots get chosen times with `backup --time`; every command runs with
//! `TZ=UTC`, so calendar buckets are the same on every machine.
//!
//! Build the binary first: `cargo build -p cairn-cli`, then
//! `cargo test -p cairn-tests --test lifecycle`.

use cairn_tests::gen::random_file;
use cairn_tests::repo::{assert_unchanged, files, files_by_blob, hash_all};
use cairn_tests::{assert_trees_equal, restored, Out, TestEnv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `cairn ARGS...` in UTC.
fn run<I, S>(env: &TestEnv, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = env.cairn(args);
    c.env("TZ", "UTC");
    c.run()
}

/// A repository and a small source tree.
fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    random_file(&src.join("sub/r.bin"), 200_000, 1);
    env.init();
    (env, src)
}

/// Back up `src` as a snapshot taken at `time`; returns its id.
fn backup_at(env: &TestEnv, src: &Path, time: &str, extra: &[&str]) -> String {
    let out = run(
        env,
        [
            OsStr::new("backup"),
            OsStr::new("--json"),
            OsStr::new("--time"),
            OsStr::new(time),
        ]
        .into_iter()
        .chain(extra.iter().map(OsStr::new))
        .chain([src.as_os_str()]),
    )
    .success();
    out.summary()["snapshot_id"]
        .as_str()
        .expect("snapshot_id")
        .to_string()
}

/// Snapshot time (UTC, RFC 3339 as written by `--time`) → id, of all snapshots.
fn by_time(env: &TestEnv) -> BTreeMap<String, String> {
    let v = run(env, ["snapshots", "--json"]).success().json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            // Times given to --time in UTC are stored with the offset +00:00.
            let t = s["time"].as_str().unwrap();
            (
                t.strip_suffix("+00:00")
                    .map(|t| format!("{t}Z"))
                    .unwrap_or_else(|| t.to_string()),
                s["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn times_of(env: &TestEnv) -> BTreeSet<String> {
    by_time(env).into_keys().collect()
}

/// 2020-12-28 … 2021-01-03 is ISO week 2020-W53; 2021-01-04 starts 2021-W01.
const NEW_YEAR: &[&str] = &[
    "2020-12-27T12:00:00Z",
    "2020-12-28T12:00:00Z",
    "2020-12-31T12:00:00Z",
    "2021-01-01T12:00:00Z",
    "2021-01-03T12:00:00Z",
    "2021-01-04T12:00:00Z",
    "2021-01-10T12:00:00Z",
    "2021-01-11T12:00:00Z",
];

#[test]
fn forget_applies_policies_per_group_and_prune_frees_the_data() {
    let (env, src) = setup();
    for (i, t) in NEW_YEAR.iter().enumerate() {
        fs::write(src.join("a.txt"), format!("version {i}\n")).unwrap();
        backup_at(&env, &src, t, &[]);
    }
    // Another host: its own group, untouched by the first group's policy.
    // Its snapshot alone holds 4 MiB of random data (removed from the
    // source after), which the prune at the end must free.
    let unique = src.join("only-elsewhere");
    let src_mtime = fs::metadata(&src).unwrap().modified().unwrap();
    fs::create_dir(&unique).unwrap();
    for i in 0..16 {
        random_file(&unique.join(format!("u{i:02}.bin")), 256 << 10, 500 + i);
    }
    let other = backup_at(&env, &src, "2020-06-01T00:00:00Z", &["--host", "elsewhere"]);
    fs::remove_dir_all(&unique).unwrap();
    // The source is again what the newest snapshot saw, its time included.
    fs::File::open(&src)
        .unwrap()
        .set_modified(src_mtime)
        .unwrap();
    let unique_blobs: BTreeSet<String> = files_by_blob(&env, &other)
        .into_iter()
        .filter(|(_, paths)| paths.iter().all(|p| p.contains("/only-elsewhere/")))
        .map(|(blob, _)| blob)
        .collect();
    assert_eq!(unique_blobs.len(), 16, "{unique_blobs:?}");
    assert_eq!(by_time(&env).len(), 9);

    // Dry run: the decision is printed, nothing changes.
    let before = hash_all(&env.repo);
    let out = run(
        &env,
        ["forget", "--keep-weekly", "3", "--dry-run", "--json"],
    )
    .success();
    assert_unchanged(&before, &hash_all(&env.repo), "forget --dry-run");
    let groups = out.json();
    let groups = groups
        .as_array()
        .expect("forget --json prints an array of groups");
    assert_eq!(groups.len(), 2, "{groups:?}");
    let g = groups.iter().find(|g| g["host"] != "elsewhere").unwrap();
    assert_eq!(g["paths"], serde_json::json!([src.to_str().unwrap()]));
    assert!(g["tags"].is_null());
    let short = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["time"].as_str().unwrap()[..10].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        short(&g["keep"]),
        ["2021-01-11", "2021-01-10", "2021-01-03"]
    );
    assert_eq!(short(&g["remove"]).len(), 5);
    assert_eq!(
        g["reasons"][0]["matches"],
        serde_json::json!(["weekly snapshot"])
    );
    assert_eq!(g["reasons"][0]["counters"]["weekly"], 2);
    assert!(g["reasons"][0]["snapshot"]["id"].is_string());
    let o = groups.iter().find(|g| g["host"] == "elsewhere").unwrap();
    assert_eq!(short(&o["keep"]), ["2020-06-01"]);

    // Policies combine; the text output names the rules.
    let out = run(
        &env,
        [
            "forget",
            "--keep-weekly",
            "3",
            "--keep-yearly",
            "2",
            "--keep-within",
            "2d",
        ],
    )
    .success();
    let text = out.stdout_str();
    assert!(
        text.contains("weekly snapshot")
            && text.contains("yearly snapshot")
            && text.contains("within 2d"),
        "{text}"
    );
    // Weekly: 01-11, 01-10, 01-03 (ISO 2020-W53); yearly: 01-11, 12-31; within 2d of 01-11: 01-10 (strictly after 01-09 12:00).
    let mut want = set(&[
        "2021-01-11T12:00:00Z",
        "2021-01-10T12:00:00Z",
        "2021-01-03T12:00:00Z",
        "2020-12-31T12:00:00Z",
    ]);
    want.insert("2020-06-01T00:00:00Z".into());
    assert_eq!(times_of(&env), want);
    // Removing a snapshot removes its file and nothing else.
    assert_eq!(files(&env.repo, "snapshots").len(), 5);

    // Tags keep snapshots; grouping by nothing puts both hosts together.
    run(&env, ["tag", "--add", "keep", &other]).success();
    run(
        &env,
        [
            "forget",
            "--keep-last",
            "1",
            "--keep-tag",
            "keep",
            "--group-by",
            "",
        ],
    )
    .success();
    assert_eq!(
        times_of(&env),
        set(&["2021-01-11T12:00:00Z", "2020-06-01T00:00:00Z"])
    );

    // By id (a prefix), then prune: the data of forgotten snapshots goes, what is kept restores exactly.
    let ids = by_time(&env);
    let tagged = &ids["2020-06-01T00:00:00Z"];
    let pack_bytes =
        |env: &TestEnv| -> u64 { files(&env.repo, "data").iter().map(|(_, n)| n).sum() };
    let listed_blobs =
        |env: &TestEnv| -> String { run(env, ["list", "blobs"]).success().stdout_str() };
    let blobs_before = listed_blobs(&env);
    for b in &unique_blobs {
        assert!(
            blobs_before.contains(b.as_str()),
            "blob {b} not listed before the prune"
        );
    }
    let bytes_before = pack_bytes(&env);
    let out = run(
        &env,
        [
            "forget",
            &tagged[..12],
            "--prune",
            "--keep-delete",
            "0",
            "--max-unused",
            "0%",
        ],
    )
    .success();
    assert!(
        out.stdout_str().contains("removed 1 snapshots"),
        "{}",
        out.describe()
    );
    assert_eq!(times_of(&env), set(&["2021-01-11T12:00:00Z"]));
    // The forgotten snapshot's own data is gone: its blobs from the index,
    // its 4 MiB from the packs.
    let blobs_after = listed_blobs(&env);
    for b in &unique_blobs {
        assert!(
            !blobs_after.contains(b.as_str()),
            "blob {b} of the forgotten snapshot is still indexed"
        );
    }
    let bytes_after = pack_bytes(&env);
    assert!(
        bytes_after + (4 << 20) <= bytes_before,
        "the packs went from {bytes_before} to {bytes_after} bytes: the forgotten 4 MiB were not freed"
    );
    run(&env, ["check", "--read-data"]).success();
    let target = env.path("restore");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
}

/// `forget --prune` killed after its forget step left data only a prune
/// frees; running the same command again (nothing left to forget) must
/// still prune it.
#[test]
fn forget_prune_run_again_after_its_prune_was_cut_off_still_prunes() {
    let env = TestEnv::new();
    let src = env.mkdir("src");
    env.init();
    random_file(&src.join("old.bin"), 3 << 20, 1);
    env.backup_json([&src]);
    fs::remove_file(src.join("old.bin")).unwrap();
    random_file(&src.join("new.bin"), 1 << 20, 2);
    env.backup_json([&src]);
    let packs_before = files(&env.repo, "data").len();
    // The forget step alone, as if the run had been killed before its prune.
    run(&env, ["forget", "--keep-last", "1"]).success();
    assert_eq!(files(&env.repo, "data").len(), packs_before);

    let prune = [
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--keep-delete",
        "0",
    ];
    let out = run(&env, prune).success();
    assert!(
        out.stdout_str().contains("running prune"),
        "{}",
        out.describe()
    );
    let packs_after = files(&env.repo, "data").len();
    assert!(
        packs_after < packs_before,
        "the old snapshot's 3 MiB were not pruned: {packs_before} packs before, {packs_after} after\n{}",
        out.describe()
    );
    run(&env, ["check", "--read-data"]).success();
    let target = env.path("restore");
    env.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored(&target, &src));
}

#[test]
fn forget_dst_and_leap_day_calendar_with_a_time_zone() {
    let (env, src) = setup();
    // Berlin's 2021 spring change: 02:00 CET → 03:00 CEST on 03-28.
    for t in [
        "2021-03-27T22:30:00Z",
        "2021-03-27T23:30:00Z",
        "2021-03-28T21:30:00Z",
        "2021-03-28T22:30:00Z",
    ] {
        backup_at(&env, &src, t, &[]);
    }
    let mut c = env.cairn(["forget", "--keep-daily", "3", "--dry-run", "--json"]);
    c.env("TZ", "Europe/Berlin");
    let out = c.run().success();
    let g = &out.json()[0];
    let kept: Vec<&str> = g["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let ids = by_time(&env);
    if !Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        cairn_tests::missing("the Europe/Berlin time zone (`apt-get install tzdata`)");
    } else {
        // Local days: 29th (22:30Z), 28th (21:30Z newest), 27th (22:30Z).
        assert_eq!(
            kept,
            [
                &ids["2021-03-28T22:30:00Z"],
                &ids["2021-03-28T21:30:00Z"],
                &ids["2021-03-27T22:30:00Z"]
            ]
        );
    }
    // In UTC the days split differently; the oldest is kept while count is left.
    let g = run(&env, ["forget", "--keep-daily", "3", "--dry-run", "--json"])
        .success()
        .json();
    let kept: Vec<&str> = g[0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            &ids["2021-03-28T22:30:00Z"],
            &ids["2021-03-27T23:30:00Z"],
            &ids["2021-03-27T22:30:00Z"]
        ]
    );

    // A year back from a leap day is 2023-03-01 (2023-02-29 does not exist).
    let (env, src) = setup();
    for t in [
        "2023-02-28T23:00:00Z",
        "2023-03-01T11:00:00Z",
        "2023-03-01T13:00:00Z",
        "2024-02-29T12:00:00Z",
    ] {
        backup_at(&env, &src, t, &[]);
    }
    run(&env, ["forget", "--keep-within", "1y"]).success();
    assert_eq!(
        times_of(&env),
        set(&["2023-03-01T13:00:00Z", "2024-02-29T12:00:00Z"])
    );
}

#[test]
fn tag_rewrites_the_snapshot_with_its_original() {
    let (env, src) = setup();
    let first = backup_at(&env, &src, "2024-01-01T00:00:00Z", &["--tag", "a"]);
    let second = backup_at(&env, &src, "2024-01-02T00:00:00Z", &[]);

    let out = run(
        &env,
        [
            "tag",
            "--json",
            "--add",
            "x,y",
            "--remove",
            "a",
            &first[..8],
        ],
    )
    .success();
    let lines = out.json_lines();
    assert_eq!(lines[0]["message_type"], "changed");
    assert_eq!(lines[0]["old_snapshot_id"], first.as_str());
    let new = lines[0]["new_snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(
        lines[1],
        serde_json::json!({"message_type": "summary", "changed_snapshots": 1})
    );
    let names: BTreeSet<String> = files(&env.repo, "snapshots")
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        set(&[&new, &second]),
        "the old snapshot file is gone, the new one is there"
    );
    let s = run(&env, ["cat", "snapshot", &new]).success().json();
    assert_eq!(s["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(s["original"], first.as_str());
    assert!(
        s["time"]
            .as_str()
            .unwrap()
            .starts_with("2024-01-01T00:00:00"),
        "time kept: {s}"
    );

    // A second change keeps the first original; --set "" clears; filters pick snapshots.
    let out = run(&env, ["tag", "--set", "", "--tag", "x"]).success();
    assert!(
        out.stdout_str().contains("modified 1 snapshots"),
        "{}",
        out.describe()
    );
    let snaps = env.snapshots();
    let retagged = snaps.iter().find(|s| s["id"] != second.as_str()).unwrap();
    assert!(
        retagged
            .get("tags")
            .is_none_or(|t| t.as_array().unwrap().is_empty()),
        "{retagged}"
    );
    assert_eq!(retagged["original"], first.as_str());
    // Nothing to change: nothing written.
    let before = hash_all(&env.repo);
    let out = run(&env, ["tag", "--remove", "nope"]).success();
    assert!(out.stdout_str().contains("no snapshots were modified"));
    assert_unchanged(
        &before,
        &hash_all(&env.repo),
        "a tag change that changes nothing",
    );
    // Everything still restores and checks.
    run(&env, ["check"]).success();
}

#[test]
fn diff_reports_every_kind_of_change_and_the_data() {
    let (env, src) = setup();
    fs::write(src.join("edit.txt"), b"before").unwrap();
    fs::write(src.join("perm.txt"), b"perm").unwrap();
    fs::write(src.join("becomes-dir"), b"file").unwrap();
    fs::create_dir(src.join("old")).unwrap();
    fs::write(src.join("old/inner"), b"inner").unwrap();
    let s1 = backup_at(&env, &src, "2024-01-01T00:00:00Z", &[]);

    fs::write(src.join("edit.txt"), b"after, longer").unwrap();
    fs::set_permissions(src.join("perm.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(src.join("becomes-dir")).unwrap();
    fs::create_dir(src.join("becomes-dir")).unwrap();
    fs::write(src.join("becomes-dir/x"), b"x").unwrap();
    fs::remove_dir_all(src.join("old")).unwrap();
    random_file(&src.join("new.bin"), 100_000, 7);
    let s2 = backup_at(&env, &src, "2024-01-02T00:00:00Z", &[]);

    let out = run(&env, ["diff", "--json", &s1, &s2]).success();
    let lines = out.json_lines();
    let p = |rel: &str| format!("{}/{rel}", src.display());
    let changes: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["message_type"] == "change")
        .map(|l| {
            (
                l["modifier"].as_str().unwrap().to_string(),
                l["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("T", p("becomes-dir/")),
        ("+", p("becomes-dir/x")),
        ("M", p("edit.txt")),
        ("+", p("new.bin")),
        ("-", p("old/")),
        ("-", p("old/inner")),
        ("U", p("perm.txt")),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p))
    .collect();
    assert_eq!(changes, want);
    let st = lines.last().unwrap();
    assert_eq!(st["message_type"], "statistics");
    assert_eq!(st["source_snapshot"], s1.as_str());
    assert_eq!(st["changed_files"], 1);
    assert_eq!(
        (
            st["added"]["files"].as_u64(),
            st["removed"]["files"].as_u64(),
            st["removed"]["dirs"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // New data: new.bin, "x", the edited text; 100 kB at least.
    assert!(st["added"]["bytes"].as_u64().unwrap() >= 100_000, "{st}");
    assert!(st["added"]["data_blobs"].as_u64().unwrap() >= 3, "{st}");
    assert!(st["removed"]["data_blobs"].as_u64().unwrap() >= 3, "{st}");

    // Text output: restic's layout; a subfolder can be compared.
    let out = run(&env, ["diff", &s1[..10], "latest"]).success();
    let text = out.stdout_str();
    assert!(
        text.contains(&format!("M    {}", p("edit.txt"))) && text.contains("Files:"),
        "{text}"
    );
    let out = run(
        &env,
        [
            "diff",
            "--json",
            &format!("{s1}:{}", src.display()),
            &format!("{s2}:{}", src.display()),
        ],
    )
    .success();
    assert_eq!(
        out.json_lines()
            .iter()
            .filter(|l| l["message_type"] == "change")
            .count(),
        7
    );
    // Identical snapshots: no change, no data.
    let s3 = backup_at(&env, &src, "2024-01-03T00:00:00Z", &[]);
    let out = run(&env, ["diff", "--json", &s2, &s3]).success();
    let lines = out.json_lines();
    // (Only trees may differ: the directories above the source change.)
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (
            lines[0]["added"]["data_blobs"].as_u64(),
            lines[0]["removed"]["data_blobs"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn find_paths_and_blobs() {
    let (env, src) = setup();
    fs::write(src.join("Photo.JPG"), b"jpeg").unwrap();
    let s1 = backup_at(&env, &src, "2024-01-01T00:00:00Z", &[]);
    fs::create_dir(src.join("docs")).unwrap();
    fs::write(src.join("docs/notes.txt"), b"notes").unwrap();
    let s2 = backup_at(&env, &src, "2024-01-02T00:00:00Z", &["--tag", "t"]);

    let out = run(&env, ["find", "notes.txt"]).success();
    let text = out.stdout_str();
    assert!(
        text.contains(&format!("Found matching entries in snapshot {}", &s2[..8])),
        "{text}"
    );
    assert!(!text.contains(&s1[..8]), "{text}");
    assert!(text.contains(&format!("{}/docs/notes.txt", src.display())));

    let v = run(&env, ["find", "--json", "*.jpg", "--ignore-case"])
        .success()
        .json();
    let hits: Vec<(&str, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["snapshot"].as_str().unwrap(), h["hits"].as_u64().unwrap()))
        .collect();
    assert_eq!(hits, [(s2.as_str(), 1), (s1.as_str(), 1)], "newest first");
    let m = &v[0]["matches"][0];
    assert_eq!(m["path"], format!("{}/Photo.JPG", src.display()));
    assert_eq!(
        (m["type"].as_str(), m["size"].as_u64()),
        (Some("file"), Some(4))
    );
    assert_eq!(
        run(&env, ["find", "--json", "*.jpg"]).success().json(),
        serde_json::json!([])
    );
    // A path pattern, and the snapshot filters.
    let v = run(&env, ["find", "--json", "docs/*.txt", "sub/*"])
        .success()
        .json();
    assert_eq!(v[0]["hits"], 2);
    let v = run(&env, ["find", "--json", "--tag", "t", "--reverse", "*.bin"])
        .success()
        .json();
    assert_eq!(v.as_array().unwrap().len(), 1);

    // Which files use a blob, in which snapshots.
    let blobs = files_by_blob(&env, &s1);
    let (blob, paths) = blobs.iter().find(|(_, p)| p[0].ends_with("r.bin")).unwrap();
    let v = run(&env, ["find", "--json", "--blob", &blob[..16]])
        .success()
        .json();
    let found: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["snapshot"].as_str().unwrap(), h["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (s2.as_str(), paths[0].as_str()),
            (s1.as_str(), paths[0].as_str())
        ]
    );
    assert_eq!(v[0]["object_type"], "blob");
    assert_eq!(v[0]["id"], blob.as_str());
    let tree = run(&env, ["cat", "snapshot", &s1]).success().json()["tree"]
        .as_str()
        .unwrap()
        .to_string();
    let v = run(&env, ["find", "--json", "--tree", &tree])
        .success()
        .json();
    assert_eq!(
        (v[0]["path"].as_str(), v[0]["snapshot"].as_str()),
        (Some("/"), Some(s1.as_str()))
    );
    let text = run(&env, ["find", "--blob", blob]).success().stdout_str();
    assert!(
        text.contains(&format!("Found blob {blob}")) && text.contains(" ... in file "),
        "{text}"
    );
}

#[test]
fn stats_modes_and_ratios() {
    let (env, src) = setup();
    // Compressible data, backed up twice unchanged: dedup 2x, compression > 1.
    fs::write(
        src.join("text.txt"),
        "all work and no play\n".repeat(20_000),
    )
    .unwrap();
    backup_at(&env, &src, "2024-01-01T00:00:00Z", &[]);
    backup_at(&env, &src, "2024-01-02T00:00:00Z", &[]);
    let restore_size = 6 + 200_000 + 21 * 20_000;

    let v = run(&env, ["stats", "--json"]).success().json();
    assert_eq!(v["snapshots_count"], 2);
    assert_eq!(v["total_size"], 2 * restore_size);
    assert!(v["total_file_count"].as_u64().unwrap() >= 2 * 4, "{v}");
    assert_eq!(v["raw_data_size"], restore_size, "{v}");
    assert!(
        (v["dedup_ratio"].as_f64().unwrap() - 2.0).abs() < 1e-9,
        "{v}"
    );
    assert!(v["compression_ratio"].as_f64().unwrap() > 1.0, "{v}");
    let text = run(&env, ["stats"]).success().stdout_str();
    assert!(
        text.contains("Deduplication Ratio:  2.00x") && text.contains("Compression Ratio"),
        "{text}"
    );

    let v = run(&env, ["stats", "--json", "--mode", "raw-data"])
        .success()
        .json();
    for k in [
        "total_size",
        "total_uncompressed_size",
        "total_blob_count",
        "snapshots_count",
        "compression_ratio",
        "compression_progress",
        "compression_space_saving",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    assert!(
        v["total_uncompressed_size"].as_u64() > v["total_size"].as_u64(),
        "{v}"
    );
    let v = run(
        &env,
        ["stats", "--json", "--mode", "files-by-contents", "latest"],
    )
    .success()
    .json();
    assert_eq!(
        (
            v["snapshots_count"].as_u64(),
            v["total_file_count"].as_u64(),
            v["total_size"].as_u64()
        ),
        (Some(1), Some(3), Some(restore_size))
    );
    let v = run(&env, ["stats", "--json", "--mode", "blobs-per-file"])
        .success()
        .json();
    assert_eq!(v["total_file_count"], 3);
    assert!(v["total_blob_count"].as_u64().unwrap() >= 3);
}

#[test]
fn rewrite_excludes_files_and_keeps_the_rest() {
    let (env, src) = setup();
    fs::write(src.join("debug.log"), b"noise").unwrap();
    fs::create_dir(src.join("cache")).unwrap();
    fs::write(src.join("cache/c"), b"cached").unwrap();
    let s1 = backup_at(&env, &src, "2024-01-01T00:00:00Z", &["--tag", "daily"]);

    // Dry run: nothing written.
    let before = hash_all(&env.repo);
    let out = run(
        &env,
        [
            "rewrite",
            "--exclude",
            "*.log",
            "--exclude",
            "cache",
            "--dry-run",
            &s1,
        ],
    )
    .success();
    assert!(
        out.stdout_str()
            .contains(&format!("excluding {}/debug.log", src.display())),
        "{}",
        out.describe()
    );
    assert_unchanged(&before, &hash_all(&env.repo), "rewrite --dry-run");

    let out = run(
        &env,
        [
            "rewrite",
            "--json",
            "--exclude",
            "*.log",
            "--iexclude",
            "CACHE",
            &s1[..8],
        ],
    )
    .success();
    let lines = out.json_lines();
    assert_eq!(lines[0]["excluded"], 2);
    let new = lines[0]["new_snapshot_id"].as_str().unwrap().to_string();
    let s = run(&env, ["cat", "snapshot", &new]).success().json();
    assert_eq!(s["original"], s1.as_str());
    assert_eq!(s["tags"], serde_json::json!(["daily", "rewrite"]));
    assert_eq!(s["summary"]["total_files_processed"], 2);
    assert_eq!(
        env.snapshots().len(),
        2,
        "the original is kept without --forget"
    );

    // The new snapshot restores without the excluded files; the unchanged subtree kept its id.
    let target = env.path("restore");
    env.restore(&new, &target, &[]);
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&src).unwrap());
    fs::remove_file(src.join("debug.log")).unwrap();
    fs::remove_dir_all(src.join("cache")).unwrap();
    filetime::set_file_mtime(&src, mtime).unwrap();
    assert_trees_equal(&src, &restored(&target, &src));
    let sub_of = |snap: &str| -> String {
        let out = run(&env, ["diff", "--json", snap, &s1]).success();
        out.json_lines()
            .iter()
            .filter(|l| l["path"].as_str().is_some_and(|p| p.contains("/sub")))
            .count()
            .to_string()
    };
    assert_eq!(sub_of(&new), "0");

    // Nothing matches: not modified. --forget replaces the original.
    let out = run(&env, ["rewrite", "--exclude", "nothing-matches", &s1]).success();
    assert!(
        out.stdout_str().contains("not modified"),
        "{}",
        out.describe()
    );
    run(&env, ["rewrite", "--forget", "--exclude", "a.txt", &s1]).success();
    let snaps = env.snapshots();
    assert_eq!(snaps.len(), 2);
    assert!(
        snaps.iter().all(|s| s["id"] != s1.as_str()),
        "the original was forgotten"
    );
    let forgotten = snaps.iter().find(|s| s["id"] != new.as_str()).unwrap();
    assert_eq!(forgotten["original"], s1.as_str());
    assert_eq!(
        forgotten["tags"],
        serde_json::json!(["daily"]),
        "no `rewrite` tag with --forget"
    );
    run(&env, ["check", "--read-data"]).success();
}

#[test]
fn bad_input_gives_one_line_errors_and_changes_nothing() {
    let (env, src) = setup();
    let mut ids: Vec<String> = Vec::new();
    // Make two snapshots whose ids share a first hex digit (at most 17 needed).
    let shared = loop {
        let t = format!("2024-01-01T00:{:02}:00Z", ids.len());
        ids.push(backup_at(&env, &src, &t, &[]));
        let last = ids.last().unwrap();
        if let Some(other) = ids[..ids.len() - 1].iter().find(|i| i[..1] == last[..1]) {
            break other[..1].to_string();
        }
    };
    let before = hash_all(&env.repo);
    let unknown = if ids.iter().any(|i| i.starts_with("0000")) {
        "ffff0000"
    } else {
        "0000ffff"
    };
    let dir = src.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["forget", unknown], "no snapshot with id"),
        (vec!["forget", &shared], "ambiguous"),
        (vec!["forget", "--keep-last", "-1"], "negative"),
        (vec!["forget", "--keep-daily", "x"], "invalid count"),
        (vec!["forget", "--keep-within", "1x"], "invalid duration"),
        (
            vec!["forget", "--keep-within-daily", "5"],
            "invalid duration",
        ),
        (vec!["forget", "--group-by", "colour"], "group-by"),
        (vec!["forget", "--keep-last", "1", &ids[0]], "not both"),
        (vec!["tag", "--add", "x", unknown], "no snapshot with id"),
        (vec!["tag", "latest"], "nothing to do"),
        (vec!["tag", "--set", "a", "--add", "b"], "--set"),
        (vec!["diff", &ids[0], unknown], "no snapshot with id"),
        (vec!["diff", &shared, &ids[0]], "ambiguous"),
        (vec!["diff", "not-hex", &ids[0]], "invalid snapshot id"),
        (
            vec!["find", "--snapshot", unknown, "*"],
            "no snapshot with id",
        ),
        (vec!["find", "--blob", "xyz"], "invalid blob id"),
        (vec!["find", "a["], "invalid pattern"),
        (vec!["stats", unknown], "no snapshot with id"),
        (vec!["stats", "--mode", "bogus"], "unknown --mode"),
        (vec!["rewrite", &ids[0]], "nothing to do"),
        (
            vec!["rewrite", "--exclude", "*.txt", unknown],
            "no snapshot with id",
        ),
        (vec!["backup", "--time", "yesterday", dir], "invalid --time"),
    ];
    for (args, want) in cases {
        let out = run(&env, &args);
        assert_eq!(out.code(), 1, "`{}`:\n{}", out.cmdline, out.describe());
        let line = out.one_line_error();
        assert!(
            line.contains(want),
            "`{}`: expected {want:?} in {line:?}",
            out.cmdline
        );
    }
    assert_unchanged(&before, &hash_all(&env.repo), "commands with bad input");
}
