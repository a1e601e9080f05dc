//! Profiles, `run`, `monitor`, `schedule` and the Prometheus textfile, end
//! to end: every test runs the `cairn` binary with HOME and the XDG
//! directories in its own temporary directory, and writes its profiles to
//! `$XDG_CONFIG_HOME/cairn/NAME.toml` there.
//!
//! Profile commands run through [`Cairn::new`] (a clean environment: no
//! `CAIRN_REPOSITORY` or `CAIRN_PASSWORD`), so the profile is what names
//! the repository and the password unless a test sets them.

use cairn_tests::{Cairn, Out, TestEnv};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Write `$XDG_CONFIG_HOME/cairn/NAME.toml` with mode 600.
fn write_profile(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    let dir = env.home.join(".config/cairn");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A file holding the test password, for `password-file`.
fn password_file(env: &TestEnv) -> PathBuf {
    let p = env.path("password");
    fs::write(&p, format!("{}\n", env.password)).unwrap();
    p
}

/// `cairn ARGS` with no repository or password in the environment.
fn bare(env: &TestEnv, args: &[&str]) -> Cairn {
    let mut c = Cairn::new(&env.home);
    c.args(args);
    c
}

/// A source tree of two small files.
fn source(env: &TestEnv) -> PathBuf {
    let src = env.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("b.txt"), b"beta\n").unwrap();
    src
}

/// Create a repository at `repo` with the test password.
fn init_at(env: &TestEnv, repo: &Path) {
    bare(env, &["init", "-r"])
        .arg(repo)
        .env("CAIRN_PASSWORD", &env.password)
        .run()
        .success();
}

/// The snapshots of the repository at `repo`, as `snapshots --json` prints them.
fn snapshots_at(env: &TestEnv, repo: &Path) -> Vec<serde_json::Value> {
    let out = bare(env, &["snapshots", "--json", "-r"])
        .arg(repo)
        .env("CAIRN_PASSWORD", &env.password)
        .run()
        .success();
    out.json().as_array().unwrap().clone()
}

/// A profile for `env.repo` backing up `src`, with `extra` appended.
fn basic_profile(env: &TestEnv, src: &Path, extra: &str) -> String {
    format!(
        "repository = {:?}\npassword-file = {:?}\n\n[backup]\npaths = [{:?}]\n{extra}",
        env.repo.display().to_string(),
        password_file(env).display().to_string(),
        src.display().to_string(),
    )
}

#[test]
fn a_profile_gives_repository_password_and_backup_defaults() {
    let env = TestEnv::new();
    let src = source(&env);
    write_profile(
        &env,
        "home",
        &basic_profile(
            &env,
            &src,
            "tag = [\"from-profile\"]\nexclude = [\"b.txt\"]\n",
        ),
    );
    bare(&env, &["-P", "home", "init"]).run().success();
    let s = bare(&env, &["-P", "home", "backup", "--json"])
        .run()
        .success()
        .summary();
    assert_eq!(s["files_new"], 1, "b.txt is excluded by the profile: {s}");
    let snaps = snapshots_at(&env, &env.repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["tags"], serde_json::json!(["from-profile"]));
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!([src.display().to_string()])
    );
    // The option form after the command works as well as before it.
    bare(&env, &["snapshots", "--profile", "home"])
        .run()
        .success();
    // CAIRN_PROFILE names it too.
    bare(&env, &["snapshots"])
        .env("CAIRN_PROFILE", "home")
        .run()
        .success();
}

#[test]
fn a_bad_profile_names_file_line_and_key() {
    let env = TestEnv::new();
    let cases = [
        (
            "repository = \"/tmp/x\"\n\n[backup]\npaths = [\"/\"]\nexclued = [\"*.tmp\"]\n",
            5,
            "backup.exclued",
        ),
        (
            "repository = \"/tmp/x\"\n[forget]\nkeep-daily = true\n",
            3,
            "forget.keep-daily",
        ),
        ("compresion = \"max\"\n", 1, "compresion"),
        (
            "repository = \"/tmp/x\"\n[options]\n\"s3.regoin\" = \"eu\"\n",
            3,
            "s3.regoin",
        ),
        (
            "repository = \"/tmp/x\"\npack-size = \"big\"\n",
            2,
            "pack-size",
        ),
    ];
    for (text, line, key) in cases {
        let path = write_profile(&env, "bad", text);
        let out = bare(&env, &["-P", "bad", "snapshots"]).run();
        assert_eq!(out.code(), 1, "{}", out.describe());
        let err = out.one_line_error();
        for want in [
            path.display().to_string(),
            format!("line {line}"),
            key.to_string(),
        ] {
            assert!(err.contains(&want), "{err:?} should name {want:?}");
        }
    }
    // A TOML syntax error names the file and the line.
    let path = write_profile(&env, "bad", "repository = \"/tmp/x\"\n[backup\n");
    let err = bare(&env, &["profile", "check", "bad"])
        .run()
        .one_line_error();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn flag_beats_environment_beats_profile() {
    let env = TestEnv::new();
    let src = source(&env);
    let (a, b, c) = (env.path("repo-a"), env.path("repo-b"), env.path("repo-c"));
    for r in [&a, &b, &c] {
        init_at(&env, r);
    }
    let text = format!(
        "repository = {:?}\npassword-file = \"/nonexistent/password\"\n[backup]\npaths = [{:?}]\nhost = \"profile-host\"\n",
        a.display().to_string(),
        src.display().to_string()
    );
    write_profile(&env, "p", &text);
    let backup = |env_repo: Option<&Path>, flag_repo: Option<&Path>, host: &[&str]| {
        let mut c = bare(&env, &["-P", "p", "backup", "-q"]);
        c.env("CAIRN_PASSWORD", &env.password);
        if let Some(r) = env_repo {
            c.env("CAIRN_REPOSITORY", r);
        }
        if let Some(r) = flag_repo {
            c.arg("-r").arg(r);
        }
        c.args(host);
        c.run().success();
    };
    // Profile only (the password from the environment beats the profile's
    // unreadable password file).
    backup(None, None, &[]);
    // Environment over profile.
    backup(Some(&b), None, &[]);
    // Flag over environment.
    backup(Some(&b), Some(&c), &["--host", "flag-host"]);
    let hosts = |r: &Path| -> Vec<String> {
        snapshots_at(&env, r)
            .iter()
            .map(|s| s["hostname"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(hosts(&a), ["profile-host"]);
    assert_eq!(hosts(&b), ["profile-host"]);
    assert_eq!(hosts(&c), ["flag-host"]);
    // CAIRN_HOST (the environment) beats the profile's host.
    let mut cmd = bare(&env, &["-P", "p", "backup", "-q"]);
    cmd.env("CAIRN_PASSWORD", &env.password)
        .env("CAIRN_HOST", "env-host")
        .run()
        .success();
    assert_eq!(hosts(&a), ["profile-host", "env-host"]);
    // Without CAIRN_PASSWORD the profile's password file is used, and
    // its error names it.
    let err = bare(&env, &["-P", "p", "snapshots"]).run().one_line_error();
    assert!(err.contains("/nonexistent/password"), "{err}");
}

#[test]
fn profile_show_masks_secrets_and_list_finds_profiles() {
    let env = TestEnv::new();
    let secret_key = "wJalrXUtnFEMI-very-secret-42";
    let rest_pass = "rest-pass-8d1f";
    let text = format!(
        "repository = \"rest:http://backup:{rest_pass}@127.0.0.1:1/host/\"\npassword-command = \"cat /etc/cairn/pw\"\n\n[env]\nAWS_ACCESS_KEY_ID = \"AKIDEXAMPLE\"\nAWS_SECRET_ACCESS_KEY = \"{secret_key}\"\n\n[forget]\nkeep-daily = 7\nkeep-weekly = 4\n"
    );
    let path = write_profile(&env, "offsite", &text);
    for args in [
        &["profile", "show", "offsite"][..],
        &["profile", "show", "offsite", "--json"][..],
        &["profile", "list"][..],
        &["profile", "list", "--json"][..],
    ] {
        let out = bare(&env, args).run().success();
        let all = format!("{}{}", out.stdout_str(), out.stderr);
        for secret in [secret_key, rest_pass, "AKIDEXAMPLE"] {
            assert!(
                !all.contains(secret),
                "`cairn {}` shows the secret {secret}:\n{all}",
                args.join(" ")
            );
        }
        assert!(all.contains("offsite"), "{all}");
    }
    let shown = bare(&env, &["profile", "show", "offsite"])
        .run()
        .success()
        .stdout_str();
    assert!(
        shown.contains("keep-daily = \"7\"") || shown.contains("keep-daily = 7"),
        "{shown}"
    );
    assert!(shown.contains("AWS_SECRET_ACCESS_KEY = \"***\""), "{shown}");
    assert!(shown.contains("backup:***@127.0.0.1:1"), "{shown}");
    let listed = bare(&env, &["profile", "list", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(listed[0]["name"], "offsite");
    assert_eq!(listed[0]["path"], path.display().to_string());
}

#[test]
fn a_readable_profile_with_secrets_warns_with_the_chmod() {
    let env = TestEnv::new();
    let src = source(&env);
    let text = basic_profile(&env, &src, "[env]\nCAIRN_REST_PASSWORD = \"hunter2\"\n");
    let path = write_profile(&env, "p", &text);
    init_at(&env, &env.repo);
    let warning = format!("chmod 600 {}", path.display());
    let out = bare(&env, &["-P", "p", "snapshots"]).run().success();
    assert!(
        !out.stderr.contains("warning"),
        "mode 600 warns:\n{}",
        out.describe()
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = bare(&env, &["-P", "p", "snapshots"]).run().success();
    assert!(
        out.stderr.contains(&warning) && out.stderr.contains(&path.display().to_string()),
        "expected a warning naming the file and `{warning}`:\n{}",
        out.describe()
    );
    // Without secrets, a readable profile is fine.
    let path = write_profile(&env, "plain", &basic_profile(&env, &src, ""));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = bare(&env, &["-P", "plain", "snapshots"]).run().success();
    assert!(!out.stderr.contains("warning"), "{}", out.describe());
}

#[test]
fn profile_check_opens_the_repository() {
    let env = TestEnv::new();
    let src = source(&env);
    write_profile(&env, "p", &basic_profile(&env, &src, ""));
    // No repository yet: exit 10, as other commands.
    let out: Out = bare(&env, &["profile", "check", "p"]).run();
    assert_eq!(out.code(), 10, "{}", out.describe());
    init_at(&env, &env.repo);
    bare(&env, &["-P", "p", "backup", "-q"]).run().success();
    let s = bare(&env, &["profile", "check", "p", "--json"])
        .run()
        .success()
        .summary();
    assert_eq!(s["snapshots"], 1, "{s}");
    // A wrong password is exit 12.
    fs::write(env.path("password"), "wrong\n").unwrap();
    let out = bare(&env, &["profile", "check", "p"]).run();
    assert_eq!(out.code(), 12, "{}", out.describe());
    // A bad forget policy is found by check.
    write_profile(
        &env,
        "q",
        &basic_profile(&env, &src, "[forget]\nkeep-daily = \"lots\"\n"),
    );
    let err = bare(&env, &["profile", "check", "q"])
        .run()
        .one_line_error();
    assert!(err.contains("keep-daily"), "{err}");
}

// ---------------------------------------------------------------- monitor

/// RFC 3339 UTC time `secs_ago` seconds before now (through `date`).
fn time_ago(secs_ago: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = std::process::Command::new("date")
        .arg("-u")
        .arg("-d")
        .arg(format!("@{}", now - secs_ago))
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .expect("run date");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A backup of `src` as host `tester`, `secs_ago` old; returns its short id.
fn backup_aged(env: &TestEnv, src: &Path, secs_ago: u64) -> String {
    let s = env.backup_json([
        "--host".as_ref(),
        "tester".as_ref(),
        "--time".as_ref(),
        time_ago(secs_ago).as_ref(),
        src.as_os_str(),
    ]);
    s["snapshot_id"].as_str().unwrap()[..8].to_string()
}

/// Check a plugin line `want_prefix age=Ns;WARN;CRIT rest` where N may be
/// a little above `min_age` (the seconds the test took); returns the line.
#[track_caller]
fn assert_plugin_line(out: &Out, code: i32, prefix: &str, min_age: u64, suffix: &str) {
    assert_eq!(out.code(), code, "{}", out.describe());
    let stdout = out.stdout_str();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{}", out.describe());
    let line = lines[0];
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
    let rest = rest
        .strip_prefix(" | age=")
        .unwrap_or_else(|| panic!("no perfdata in {line:?}"));
    let (age, tail) = rest.split_once('s').unwrap();
    let age: u64 = age.parse().unwrap();
    assert!(
        (min_age..min_age + 120).contains(&age),
        "age {age} s, expected about {min_age} s: {line:?}"
    );
    assert_eq!(tail, suffix, "perfdata after the age in {line:?}");
}

#[test]
fn monitor_fresh_stale_and_critical() {
    let env = TestEnv::new();
    let src = source(&env);
    env.init();
    // Fresh (flag form and positional form with hours).
    let id = backup_aged(&env, &src, 3600 + 60);
    let out = env
        .cairn([
            "monitor", "--host", "tester", "--warn", "26h", "--crit", "3d",
        ])
        .run();
    assert_plugin_line(
        &out,
        0,
        &format!("OK - Last snapshot #{id} of tester 1h ago"),
        3660,
        ";93600;259200 files=2 size=11B errors=0",
    );
    let out = env.cairn(["monitor", "tester", "10", "20"]).run();
    assert_plugin_line(
        &out,
        0,
        &format!("OK - Last snapshot #{id} of tester 1h ago"),
        3660,
        ";36000;72000 files=2 size=11B errors=0",
    );
    // Stale: a newer snapshot 30 h old, then one 80 h old alone.
    let env2 = TestEnv::new();
    let src2 = source(&env2);
    env2.init();
    backup_aged(&env2, &src2, 80 * 3600 + 600);
    let out = env2.cairn(["monitor", "tester", "26", "72"]).run();
    let old = out.stdout_str()[..].to_string();
    assert!(old.starts_with("CRITICAL - Last snapshot #"), "{old}");
    assert_plugin_line(
        &out,
        2,
        &old[..old.find(" | ").unwrap()],
        80 * 3600 + 600,
        ";93600;259200 files=2 size=11B errors=0",
    );
    assert!(old.contains(" of tester 80h ago | "), "{old}");
    let id = backup_aged(&env2, &src2, 30 * 3600 + 600);
    let out = env2
        .cairn(["monitor", "-H", "tester", "--warn", "1d", "--crit", "72h"])
        .run();
    assert_plugin_line(
        &out,
        1,
        &format!("WARNING - Last snapshot #{id} of tester 30h ago"),
        30 * 3600 + 600,
        ";86400;259200 files=2 size=11B errors=0",
    );
    // --json carries the same verdict.
    let v = env2
        .cairn(["monitor", "tester", "26", "72", "--json"])
        .run()
        .expect_code(1)
        .json();
    assert_eq!(v["state"], "WARNING");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["snapshot_id"].as_str().unwrap()[..8], id);
}

#[test]
fn monitor_states_without_a_usable_snapshot() {
    let env = TestEnv::new();
    let src = source(&env);
    env.init();
    let expect = |c: &mut Cairn, code: i32, line: &str| {
        let out = c.run();
        assert_eq!(out.code(), code, "{}", out.describe());
        assert_eq!(out.stdout_str(), format!("{line}\n"), "{}", out.describe());
    };
    let repo = env.repo.display().to_string();
    // No snapshot of that host (another host has one).
    env.backup_json(["--host".as_ref(), "elsewhere".as_ref(), src.as_os_str()]);
    expect(
        &mut env.cairn(["monitor", "tester", "26", "72"]),
        2,
        &format!("CRITICAL - No snapshot of tester in repository {repo}"),
    );
    expect(
        &mut env.cairn(["monitor", "elsewhere", "26", "72", "--tag", "nightly"]),
        2,
        &format!("CRITICAL - No snapshot of elsewhere with tag nightly in repository {repo}"),
    );
    // Wrong password: UNKNOWN (the check itself is misconfigured).
    expect(
        env.cairn(["monitor", "elsewhere", "26", "72"])
            .env("CAIRN_PASSWORD", "not the password"),
        3,
        &format!("UNKNOWN - Wrong password for repository {repo}"),
    );
    // No repository there.
    let missing = env.path("missing").display().to_string();
    expect(
        env.cairn(["monitor", "tester", "26", "72"])
            .env("CAIRN_REPOSITORY", &missing),
        2,
        &format!("CRITICAL - Repository {missing} does not exist"),
    );
    // Unreachable: a REST server on a port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("rest:http://127.0.0.1:{port}/repo/");
    let out = env
        .cairn(["monitor", "tester", "26", "72"])
        .env("CAIRN_REPOSITORY", &url)
        .run();
    assert_eq!(out.code(), 2, "{}", out.describe());
    let line = out.stdout_str();
    assert!(
        line.starts_with(&format!("CRITICAL - Cannot reach repository {url}: "))
            && line.lines().count() == 1
            && !line.contains(" | "),
        "{}",
        out.describe()
    );
    // Bad arguments are UNKNOWN (3), never clap's 2 (CRITICAL).
    for args in [
        &["monitor", "tester", "26"][..],
        &["monitor", "--warn", "3x", "--crit", "4d"][..],
        &["monitor", "--warn", "4d", "--crit", "3d"][..],
        &["monitor", "--no-such-flag"][..],
        &["monitor"][..],
    ] {
        let out = env.cairn(args).run();
        assert_eq!(out.code(), 3, "{}", out.describe());
        assert!(
            out.stdout_str().starts_with("UNKNOWN - "),
            "{}",
            out.describe()
        );
    }
}

/// Run `cairn` without the capabilities that let root read any file
/// (the tests run as root), as `e2e/bad_input.rs` does. None where that is
/// not possible.
fn without_read_override(c: &mut Cairn) -> Option<()> {
    if !cairn_tests::is_root() {
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
fn monitor_warns_about_an_incomplete_snapshot() {
    let env = TestEnv::new();
    let src = source(&env);
    fs::write(src.join("secret.txt"), b"unreadable\n").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    env.init();
    let mut c = env.cairn(["backup", "--json", "--host", "tester"]);
    c.arg(&src);
    if without_read_override(&mut c).is_none() {
        cairn_tests::skip(
            "running as root and setpriv cannot drop CAP_DAC_OVERRIDE, so no file is unreadable",
        );
        return;
    }
    let out = c.run().expect_code(3);
    let id = out.summary()["snapshot_id"].as_str().unwrap()[..8].to_string();
    let out = env.cairn(["monitor", "tester", "26", "72"]).run();
    assert_plugin_line(
        &out,
        1,
        &format!(
            "WARNING - Last snapshot #{id} of tester 0h ago is incomplete: 1 file or directory could not be read"
        ),
        0,
        ";93600;259200 files=2 size=11B errors=1",
    );
}

// ---------------------------------------------------------------- run

#[test]
fn run_backs_up_forgets_and_checks_asking_the_password_once() {
    let env = TestEnv::new();
    let src = source(&env);
    init_at(&env, &env.repo);
    let counter = env.path("password-asked");
    let pw = password_file(&env);
    let text = format!(
        "repository = {:?}\npassword-command = \"echo asked >> {} && cat {}\"\n[backup]\npaths = [{:?}]\n[forget]\nkeep-last = 1\nprune = true\n[check]\nread-data-subset = \"100%\"\n",
        env.repo.display().to_string(),
        counter.display(),
        pw.display(),
        src.display().to_string(),
    );
    write_profile(&env, "daily", &text);
    for round in 1..=2 {
        fs::write(src.join("round.txt"), format!("round {round}\n")).unwrap();
        let out = bare(&env, &["run", "daily", "--json"]).run().success();
        let lines = out.json_lines();
        let s = lines.last().unwrap();
        assert_eq!(s["message_type"], "run_summary", "{}", out.describe());
        assert_eq!(s["exit_code"], 0);
        let steps: Vec<(&str, &str)> = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| (st["step"].as_str().unwrap(), st["status"].as_str().unwrap()))
            .collect();
        assert_eq!(steps, [("backup", "ok"), ("forget", "ok"), ("check", "ok")]);
    }
    // keep-last = 1 left one snapshot: the second one.
    let snaps = snapshots_at(&env, &env.repo);
    assert_eq!(snaps.len(), 1);
    // The password command ran once per run, not once per step.
    let asked = fs::read_to_string(&counter).unwrap();
    assert_eq!(asked.lines().count(), 2, "password command runs: {asked:?}");

    // [run] switches steps off; the text summary names the steps taken.
    let text = format!("{text}[run]\nforget = false\ncheck = false\n");
    write_profile(&env, "daily", &text);
    let out = bare(&env, &["run", "daily"]).run().success();
    let so = out.stdout_str();
    assert!(so.contains("profile daily: ok"), "{so}");
    assert!(so.contains("  backup  ok"), "{so}");
    assert!(
        !so.contains("  forget ") && !so.contains("  check "),
        "{so}"
    );
    assert_eq!(snapshots_at(&env, &env.repo).len(), 2);
}

#[test]
fn run_exits_3_for_an_incomplete_backup_and_with_the_error_code_on_failure() {
    let env = TestEnv::new();
    let src = source(&env);
    write_profile(
        &env,
        "p",
        &basic_profile(&env, &src, "[forget]\nkeep-last = 5\n"),
    );
    // No repository: exit 10, forget skipped.
    let out = bare(&env, &["run", "p", "--json"]).run();
    assert_eq!(out.code(), 10, "{}", out.describe());
    let s = out.json_lines().last().unwrap().clone();
    assert_eq!(s["steps"][0]["status"], "failed");
    assert_eq!(s["steps"][1]["status"], "skipped");
    init_at(&env, &env.repo);
    fs::write(src.join("secret.txt"), b"unreadable\n").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut c = bare(&env, &["run", "p", "--json"]);
    if without_read_override(&mut c).is_none() {
        cairn_tests::skip(
            "the incomplete case: running as root and setpriv cannot drop CAP_DAC_OVERRIDE",
        );
        return;
    }
    let out = c.run();
    assert_eq!(out.code(), 3, "{}", out.describe());
    let s = out.json_lines().last().unwrap().clone();
    assert_eq!(s["steps"][0]["status"], "incomplete", "{s}");
    assert_eq!(s["steps"][1]["status"], "ok", "{s}");
}

#[test]
fn run_all_continues_past_a_failing_profile_and_exits_non_zero() {
    let env = TestEnv::new();
    let src = source(&env);
    let pw = password_file(&env);
    let (a, c) = (env.path("repo-a"), env.path("repo-c"));
    init_at(&env, &a);
    init_at(&env, &c);
    for (name, repo) in [("a", &a), ("b", &env.path("repo-missing")), ("c", &c)] {
        let text = format!(
            "repository = {:?}\npassword-file = {:?}\n[backup]\npaths = [{:?}]\n",
            repo.display().to_string(),
            pw.display().to_string(),
            src.display().to_string()
        );
        write_profile(&env, name, &text);
    }
    let out = bare(&env, &["run", "--all", "--json"]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    let lines = out.json_lines();
    let s = lines.last().unwrap();
    assert_eq!(s["message_type"], "run_all_summary", "{}", out.describe());
    assert_eq!(s["failed"], serde_json::json!(["b"]));
    let codes: Vec<i64> = s["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["exit_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [0, 10, 0]);
    // The profiles after the failing one ran.
    assert_eq!(snapshots_at(&env, &a).len(), 1);
    assert_eq!(snapshots_at(&env, &c).len(), 1);
    // All good: exit 0.
    fs::remove_file(env.home.join(".config/cairn/b.toml")).unwrap();
    bare(&env, &["run", "--all", "-q"]).run().success();
    assert_eq!(snapshots_at(&env, &c).len(), 2);
}

// ---------------------------------------------------------------- metrics

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct PromSample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A strict parser of the Prometheus text exposition format (0.0.4) as
/// the node exporter's textfile collector reads it: `# HELP name text`,
/// `# TYPE name counter|gauge|histogram|summary|untyped` before the
/// family's samples, each family in one block, samples
/// `name{label="value",...} value`, no repeated series.
fn parse_prometheus(text: &str) -> Vec<PromSample> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "the file must end with a newline");
    let mut out = Vec::new();
    let mut typed: std::collections::BTreeMap<String, String> = Default::default();
    let mut finished: std::collections::BTreeSet<String> = Default::default();
    let mut current: Option<String> = None;
    let mut series = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            assert!(is_name(name, true), "line {n}: bad metric name {name:?}");
            match kw {
                "HELP" => {}
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "line {n}: bad type {arg:?}"
                    );
                    assert!(
                        typed.insert(name.to_string(), arg.to_string()).is_none(),
                        "line {n}: second TYPE for {name}"
                    );
                }
                _ => panic!("line {n}: unknown comment {line:?}"),
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    finished.insert(c);
                }
                assert!(!finished.contains(name), "line {n}: family {name} split");
                current = Some(name.to_string());
            }
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "line {n}: {line:?}"
        );
        let name_end = line.find(['{', ' ']).expect("a value");
        let name = &line[..name_end];
        assert!(is_name(name, true), "line {n}: bad metric name {name:?}");
        assert!(
            typed.contains_key(name),
            "line {n}: {name} has no TYPE before it"
        );
        assert_eq!(
            current.as_deref(),
            Some(name),
            "line {n}: {name} outside its family"
        );
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r
                    .find('=')
                    .unwrap_or_else(|| panic!("line {n}: label without ="));
                let lname = &r[..eq];
                assert!(is_name(lname, false), "line {n}: bad label name {lname:?}");
                r = r[eq + 1..]
                    .strip_prefix('"')
                    .unwrap_or_else(|| panic!("line {n}: label value not quoted"));
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            other => panic!("line {n}: bad escape {other:?}"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("line {n}: unterminated label value"),
                    }
                };
                labels.push((lname.to_string(), value));
                r = &r[end + 1..];
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else {
                    assert!(r.starts_with('}'), "line {n}: expected , or }} in {line:?}");
                }
            }
            rest = r;
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("line {n}: no space before the value"));
        let mut fields = value.split(' ');
        let v: f64 = fields
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("line {n}: bad value in {line:?}: {e}"));
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|e| panic!("line {n}: bad timestamp: {e}"));
        }
        assert!(fields.next().is_none(), "line {n}: trailing fields");
        assert!(
            series.insert(format!("{name}{labels:?}")),
            "line {n}: repeated series"
        );
        out.push(PromSample {
            name: name.to_string(),
            labels,
            value: v,
        });
    }
    out
}

fn metric(samples: &[PromSample], name: &str, label: (&str, &str)) -> f64 {
    let found: Vec<&PromSample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels.iter().any(|(k, v)| k == label.0 && v == label.1))
        .collect();
    assert_eq!(found.len(), 1, "{name} with {label:?}: {found:?}");
    found[0].value
}

#[test]
fn prometheus_textfile_metrics_parse_and_keep_the_last_success() {
    let env = TestEnv::new();
    let src = source(&env);
    init_at(&env, &env.repo);
    write_profile(&env, "p", &basic_profile(&env, &src, "[check]\n"));
    let prom = env.path("textfile/cairn.prom");
    fs::create_dir_all(prom.parent().unwrap()).unwrap();
    bare(&env, &["run", "p", "-q", "--prometheus-file"])
        .arg(&prom)
        .run()
        .success();
    let text = fs::read_to_string(&prom).unwrap();
    let samples = parse_prometheus(&text);
    let profile = ("profile", "p");
    assert_eq!(metric(&samples, "cairn_backup_success", profile), 1.0);
    assert_eq!(metric(&samples, "cairn_backup_files_new", profile), 2.0);
    assert_eq!(metric(&samples, "cairn_backup_errors", profile), 0.0);
    assert_eq!(metric(&samples, "cairn_run_exit_code", profile), 0.0);
    assert_eq!(
        metric(&samples, "cairn_run_step_success", ("step", "check")),
        1.0
    );
    let success = metric(
        &samples,
        "cairn_backup_last_success_timestamp_seconds",
        profile,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 300.0..now + 1.0).contains(&success),
        "{success} vs {now}"
    );
    assert!(text.contains(&format!("repository=\"{}\"", env.repo.display())));

    // A plain backup (no profile) to the same file adds its own series;
    // a failing one sets success 0 and keeps the last success time.
    bare(
        &env,
        &["backup", "-q", "--host", "other", "--prometheus-file"],
    )
    .arg(&prom)
    .arg(&src)
    .env("CAIRN_REPOSITORY", &env.repo)
    .env("CAIRN_PASSWORD", "wrong password")
    .run()
    .expect_code(12);
    fs::write(env.path("password"), "wrong\n").unwrap();
    let out = bare(&env, &["run", "p", "-q", "--prometheus-file"])
        .arg(&prom)
        .run();
    assert_eq!(out.code(), 12, "{}", out.describe());
    let samples = parse_prometheus(&fs::read_to_string(&prom).unwrap());
    assert_eq!(metric(&samples, "cairn_backup_success", profile), 0.0);
    assert_eq!(
        metric(&samples, "cairn_backup_success", ("host", "other")),
        0.0
    );
    assert_eq!(
        metric(
            &samples,
            "cairn_backup_last_success_timestamp_seconds",
            profile
        ),
        success,
        "the last success time must survive a failed run"
    );
    assert_eq!(metric(&samples, "cairn_run_exit_code", profile), 12.0);
    // No temporary file is left beside it.
    let names: Vec<String> = fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cairn.prom"]);
}

// ---------------------------------------------------------------- schedule

#[test]
fn schedule_writes_units_that_systemd_analyze_verifies() {
    let env = TestEnv::new();
    let src = source(&env);
    write_profile(&env, "nas", &basic_profile(&env, &src, ""));
    let units = env.mkdir("units");
    let out = bare(
        &env,
        &[
            "schedule",
            "install",
            "nas",
            "--every",
            "Mon..Fri 22:30",
            "--unit-dir",
        ],
    )
    .arg(&units)
    .run()
    .success();
    let service = units.join("cairn-nas.service");
    let timer = units.join("cairn-nas.timer");
    assert!(
        out.stdout_str().contains(&service.display().to_string()),
        "{}",
        out.describe()
    );
    let s = fs::read_to_string(&service).unwrap();
    let bin = cairn_tests::cairn_bin();
    let bin = fs::canonicalize(&bin).unwrap_or(bin);
    for want in [
        "Type=oneshot\n".to_string(),
        format!("ExecStart={} run nas\n", bin.display()),
        "Nice=10\n".into(),
        "IOSchedulingClass=best-effort\n".into(),
    ] {
        assert!(s.contains(&want), "{want:?} missing from the service:\n{s}");
    }
    let t = fs::read_to_string(&timer).unwrap();
    for want in [
        "OnCalendar=Mon..Fri 22:30\n",
        "Persistent=true\n",
        "RandomizedDelaySec=",
        "WantedBy=timers.target\n",
    ] {
        assert!(t.contains(want), "{want:?} missing from the timer:\n{t}");
    }
    match std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&service)
        .arg(&timer)
        .output()
    {
        Err(e) => eprintln!("skipping systemd-analyze verify: it cannot run here ({e})"),
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success(),
                "systemd-analyze verify failed:\n{stderr}"
            );
            // It exits 0 on warnings; any line about our units is one.
            let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("cairn-nas")).collect();
            assert!(ours.is_empty(), "systemd-analyze verify warns:\n{stderr}");
        }
    }
    // list shows it; daily again replaces it; remove deletes both files.
    let listed = bare(&env, &["schedule", "list", "--json", "--unit-dir"])
        .arg(&units)
        .run()
        .success()
        .json();
    assert_eq!(listed[0]["profile"], "nas");
    assert_eq!(listed[0]["every"], "Mon..Fri 22:30");
    bare(&env, &["schedule", "install", "nas", "-q", "--unit-dir"])
        .arg(&units)
        .run()
        .success();
    assert!(fs::read_to_string(&timer)
        .unwrap()
        .contains("OnCalendar=daily\n"));
    bare(&env, &["schedule", "remove", "nas", "--unit-dir"])
        .arg(&units)
        .run()
        .success();
    assert!(!service.exists() && !timer.exists());
    let out = bare(&env, &["schedule", "remove", "nas", "--unit-dir"])
        .arg(&units)
        .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    // A unit file cairn did not write is never replaced.
    fs::write(&timer, "[Timer]\nOnCalendar=weekly\n").unwrap();
    let err = bare(&env, &["schedule", "install", "nas", "--unit-dir"])
        .arg(&units)
        .run()
        .one_line_error();
    assert!(err.contains("not written by cairn"), "{err}");
    assert_eq!(
        fs::read_to_string(&timer).unwrap(),
        "[Timer]\nOnCalendar=weekly\n"
    );
    // A bad calendar expression, and an unknown profile, are errors.
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let err = bare(
            &env,
            &[
                "schedule",
                "install",
                "nas",
                "--every",
                "fortnightly-ish",
                "--unit-dir",
            ],
        )
        .arg(env.mkdir("units2"))
        .run()
        .one_line_error();
        assert!(err.contains("fortnightly-ish"), "{err}");
    }
    let err = bare(&env, &["schedule", "install", "nope", "--unit-dir"])
        .arg(&units)
        .run()
        .one_line_error();
    assert!(err.contains("no profile \"nope\""), "{err}");
}

#[test]
fn schedule_prints_a_crontab_line() {
    let env = TestEnv::new();
    let src = source(&env);
    write_profile(&env, "nas", &basic_profile(&env, &src, ""));
    let bin = cairn_tests::cairn_bin();
    let bin = fs::canonicalize(&bin).unwrap_or(bin);
    let line = bare(
        &env,
        &[
            "schedule",
            "install",
            "nas",
            "--cron",
            "--every",
            "30 2 * * 1-5",
        ],
    )
    .run()
    .success()
    .stdout_str();
    assert_eq!(
        line,
        format!(
            "30 2 * * 1-5 {} run nas --quiet # cairn schedule nas\n",
            bin.display()
        )
    );
    let line = bare(&env, &["schedule", "install", "nas", "--cron"])
        .run()
        .success()
        .stdout_str();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (m, h): (u32, u32) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
    assert!(m < 60 && (1..=5).contains(&h), "{line}");
    assert_eq!(fields[2..5], ["*", "*", "*"], "{line}");
    let out = bare(
        &env,
        &[
            "schedule",
            "install",
            "nas",
            "--cron",
            "--every",
            "Mon 02:00",
        ],
    )
    .run();
    assert_eq!(out.code(), 1, "{}", out.describe());
}

// ---------------------------------------------------------------- a real server

#[test]
fn an_sftp_profile_with_options_and_env_runs_against_a_real_sshd() {
    let Some(sshd) = cairn_tests::sshd::Sshd::start() else {
        cairn_tests::missing("sshd cannot start here");
        return;
    };
    let env = TestEnv::new();
    let src = source(&env);
    let dir = env.path("sftp-repo");
    // The location through the registry, `-o` options from [options], the
    // password from [env] (not from a file or the test's environment).
    let text = format!(
        "repository = \"sftp://{}@127.0.0.1:{}/{}\"\n\n[options]\n\"sftp.args\" = {:?}\nconnections = 2\n\n[env]\nCAIRN_PASSWORD = {:?}\n\n[backup]\npaths = [{:?}]\n\n[check]\nread-data = true\n",
        sshd.user(),
        sshd.port(),
        dir.display(),
        sshd.ssh_args_line(),
        env.password,
        src.display().to_string(),
    );
    write_profile(&env, "nas", &text);
    bare(&env, &["-P", "nas", "init"]).run().success();
    let out = bare(&env, &["run", "nas", "--json"]).run().success();
    let s = out.json_lines().last().unwrap().clone();
    assert_eq!(s["exit_code"], 0, "{}", out.describe());
    // The repository is on the server's disk: it opens as a local path.
    assert_eq!(snapshots_at(&env, &dir).len(), 1);
    let out = bare(
        &env,
        &["-P", "nas", "monitor", "--warn", "1h", "--crit", "2h"],
    )
    .run();
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stdout_str().starts_with("OK - Last snapshot #"),
        "{}",
        out.describe()
    );
    // The real environment beats the profile's [env].
    let out = bare(&env, &["-P", "nas", "snapshots"])
        .env("CAIRN_PASSWORD", "not it")
        .run();
    assert_eq!(out.code(), 12, "{}", out.describe());
}

#[test]
fn monitor_takes_thresholds_and_host_from_the_profile() {
    let env = TestEnv::new();
    let src = source(&env);
    init_at(&env, &env.repo);
    write_profile(
        &env,
        "p",
        &basic_profile(
            &env,
            &src,
            "host = \"web1\"\n[monitor]\nwarn = \"26h\"\ncrit = \"2d\"\n",
        ),
    );
    bare(&env, &["-P", "p", "backup", "-q"]).run().success();
    let out = bare(&env, &["-P", "p", "monitor"]).run();
    assert_eq!(out.code(), 0, "{}", out.describe());
    let line = out.stdout_str();
    assert!(
        line.starts_with("OK - Last snapshot #") && line.contains(" of web1 0h ago | "),
        "{line}"
    );
    assert!(
        line.contains(";93600;172800 files=2 size=11B errors=0"),
        "{line}"
    );
    // A flag beats the profile's table, the positional form beats both.
    let out = bare(&env, &["-P", "p", "monitor", "--crit", "3d"]).run();
    assert!(
        out.stdout_str().contains(";93600;259200 "),
        "{}",
        out.describe()
    );
    let out = bare(&env, &["-P", "p", "monitor", "other", "1", "2"]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
    assert!(
        out.stdout_str()
            .starts_with("CRITICAL - No snapshot of other"),
        "{}",
        out.describe()
    );
    // A missing profile is UNKNOWN, in the plugin's format.
    let out = bare(&env, &["-P", "nope", "monitor"]).run();
    assert_eq!(out.code(), 3, "{}", out.describe());
    assert!(
        out.stdout_str()
            .starts_with("UNKNOWN - no profile \"nope\""),
        "{}",
        out.describe()
    );
}

#[test]
fn an_s3_profile_takes_its_keys_from_env_and_its_options() {
    use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
    let env = TestEnv::new();
    // s3s-fs checks the keys; moto takes any, so only s3s-fs can show that
    // a wrong key in [env] is the one used.
    let (server, checks_keys) = match S3Server::s3s_fs(&env.mkdir("s3data")) {
        Some(s) => (s, true),
        None => match S3Server::moto(&env.path("")) {
            Some(s) => (s, false),
            None => return,
        },
    };
    let src = source(&env);
    let pw = password_file(&env);
    let profile = |secret: &str| {
        format!(
            "repository = \"s3:{}/cairn-profiles/web1\"\npassword-file = {:?}\n\n[options]\n\"s3.bucket-lookup\" = \"path\"\n\n[env]\nAWS_ACCESS_KEY_ID = {ACCESS_KEY:?}\nAWS_SECRET_ACCESS_KEY = {secret:?}\nAWS_DEFAULT_REGION = \"us-east-1\"\n\n[backup]\npaths = [{:?}]\nhost = \"web1\"\n\n[monitor]\nwarn = \"26h\"\ncrit = \"50h\"\n",
            server.endpoint(),
            pw.display().to_string(),
            src.display().to_string()
        )
    };
    write_profile(&env, "offsite", &profile(SECRET_KEY));
    bare(&env, &["-P", "offsite", "init"]).run().success();
    let out = bare(&env, &["run", "offsite", "--json"]).run().success();
    assert_eq!(out.json_lines().last().unwrap()["exit_code"], 0);
    let out = bare(&env, &["-P", "offsite", "monitor"]).run();
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stdout_str().starts_with("OK - Last snapshot #"),
        "{}",
        out.describe()
    );
    if checks_keys {
        let wrong = "not-the-secret-at-all-42";
        write_profile(&env, "offsite", &profile(wrong));
        let out = bare(&env, &["-P", "offsite", "snapshots"]).run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(!out.describe().contains(wrong), "{}", out.describe());
        // The real environment beats [env].
        bare(&env, &["-P", "offsite", "snapshots"])
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .run()
            .success();
    }
}
