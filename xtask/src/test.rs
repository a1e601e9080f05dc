//! `cargo xtask test`: what CI runs (through `.ci/run`).
//!
//! 1. Install what the tests need when missing (Debian packages, among
//!    them PostgreSQL and MariaDB, whose servers the tests start in
//!    directories of their own; a Python venv with moto's S3 server and
//!    the packages of `tests/vectors/requirements.txt` under
//!    `target/test-env/venv`, and the s3s-fs S3 server under
//!    `target/test-env/s3s`).
//! 2. The style gate ([`crate::lint`]): rustfmt, clippy with warnings
//!    denied, the MSRV check; then `tests/vectors/check.py`, which
//!    recomputes the test vectors of `repo-format.md` without cairn's code.
//! 3. Build the debug `cairn` binary.
//! 4. Run `cargo test --workspace` with the paths of the
//!    binaries exported; the tests start their own servers on 127.0.0.1.
//! 5. Run the benchmark harness on tiny data (`bench --smoke`) so it
//!    cannot rot.
//!
//! The last line on stdout is `tests: N passed, N failed, N skipped`,
//! summed over every test binary cargo ran.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{bench, sys};

pub struct Options {
    /// Install missing packages and the venv first.
    pub install: bool,
    /// Run the style gate (fmt, clippy, MSRV) before building.
    pub lint: bool,
    /// Run the smoke benchmark at the end.
    pub bench: bool,
    /// Appended to `cargo test --workspace`.
    pub cargo_test_args: Vec<String>,
}

/// Debian packages the tests use: restic and rclone as peers and REST
/// server, sshd for SFTP, fuse3 for mount, python3-venv for moto, GNU time
/// and zstd for the tests that want them, PostgreSQL and MariaDB for the
/// database dump tests (they start servers of their own; the packages'
/// services are not used), acl (setfacl) and libcap2-bin (setcap) for the
/// ACL and file capability round trip.
const PACKAGES: &[&str] = &[
    "restic",
    "rclone",
    "openssh-server",
    "fuse3",
    "python3-venv",
    "time",
    "zstd",
    "tzdata",
    "tar",
    "util-linux",
    "postgresql",
    "mariadb-server",
    "acl",
    "libcap2-bin",
];

/// Where the tests' programs are, once installed.
pub struct Deps {
    pub moto_server: PathBuf,
    pub s3s_fs: PathBuf,
}

/// s3s-fs, the S3 server that checks signatures: 0.14.1 is the newest
/// that builds with our rustc (0.17 needs a newer one).
const S3S_FS_VERSION: &str = "0.14.1";

pub fn run(opts: Options) -> Result<()> {
    let started = Instant::now();
    let deps = if opts.install {
        install_deps()?
    } else {
        Deps {
            moto_server: venv_dir().join("bin/moto_server"),
            s3s_fs: s3s_dir().join("bin/s3s-fs"),
        }
    };

    if opts.lint {
        section("lint: rustfmt, clippy, MSRV");
        crate::lint::run()?;
    }

    section("repo-format.md's vectors, recomputed without cairn (tests/vectors/check.py)");
    check_vectors()?;

    section("build cairn (debug)");
    sys::run(sys::cargo().args(["build", "-p", "cairn-cli", "--bin", "cairn"]))?;
    let cairn = sys::target_dir().join("debug/cairn");
    if !sys::is_executable(&cairn) {
        bail!("the build succeeded but {} is not there", cairn.display());
    }

    section("cargo test");
    let mut cmd = sys::cargo();
    // Every test binary runs even after one fails, so one run reports every
    // failure.
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(&opts.cargo_test_args);
    // A test that finds a program missing fails instead of passing
    // quietly (the install step above provides them all); a test that
    // cannot run in this environment logs itself here and counts as
    // skipped, not passed.
    let skip_log = sys::target_dir().join("test-skips.log");
    let _ = std::fs::remove_file(&skip_log);
    let mut exported = vec![
        ("CAIRN_BIN", Some(cairn.clone())),
        ("CAIRN_TEST_CHEAP_KDF", Some("1".into())),
        ("CAIRN_TEST_NO_SKIP", Some("1".into())),
        ("CAIRN_TEST_SKIP_LOG", Some(skip_log.clone())),
    ];
    exported.push(("RESTIC_BIN", sys::find_in_path("restic")));
    exported.push(("RCLONE_BIN", sys::find_in_path("rclone")));
    exported.push((
        "MOTO_SERVER",
        Some(deps.moto_server).filter(|p| sys::is_executable(p)),
    ));
    exported.push((
        "S3S_FS_BIN",
        Some(deps.s3s_fs).filter(|p| sys::is_executable(p)),
    ));
    exported.push((
        "SSHD_BIN",
        Some(PathBuf::from("/usr/sbin/sshd")).filter(|p| sys::is_executable(p)),
    ));
    for (name, value) in &exported {
        match value {
            Some(value) => {
                eprintln!("  {name}={}", value.display());
                cmd.env(name, value);
            }
            None => {
                eprintln!("  {name} not set (not installed)");
                cmd.env_remove(name);
            }
        }
    }
    let counts = run_cargo_test(&mut cmd, &skip_log)?;

    if opts.bench {
        section("bench --smoke");
        // The smoke run checks the harness, not cairn's speed: it reuses the
        // debug binary built above instead of a second, release build. Any
        // failing row fails the run: a restic row means the harness is
        // broken, a cairn row (a wrong restore, say) means cairn is.
        bench::run(bench::Options {
            scale: bench::Scale::Smoke,
            cairn_bin: Some(cairn.clone()),
            strict: bench::Strict::All,
            ..bench::Options::default()
        })
        .context("the smoke benchmark failed")?;
    }

    if opts.bench {
        section("torture --quick");
        crate::torture::run(crate::torture::Options::quick(cairn.clone()))
            .context("the torture run found damage")?;
    }

    eprintln!(
        "xtask test: every step passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Last, so it is the closing line CI reads.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.ignored
    );
    Ok(())
}

/// Step 1, also `cargo xtask deps`.
pub fn install_deps() -> Result<Deps> {
    section("install test dependencies");
    sys::ensure_packages(PACKAGES)?;
    let venv = venv_dir();
    let moto_server = venv.join("bin/moto_server");
    if sys::is_executable(&moto_server) {
        eprintln!("moto present: {}", moto_server.display());
    } else {
        eprintln!("installing moto[server] into {}", venv.display());
        if venv.exists() {
            // A venv without moto_server is a half-done earlier attempt.
            std::fs::remove_dir_all(&venv)
                .with_context(|| format!("removing {}", venv.display()))?;
        }
        // Debian's python3 (the one python3-venv is for), else any python3.
        let python = Some(PathBuf::from("/usr/bin/python3"))
            .filter(|p| sys::is_executable(p))
            .or_else(|| sys::find_in_path("python3"))
            .context("python3 is not installed")?;
        sys::run(
            Command::new(python)
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .stdout(sys::to_stderr()),
        )?;
        sys::run(
            Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "moto[server]>=5,<6",
                ])
                .stdin(Stdio::null())
                .stdout(sys::to_stderr()),
        )?;
        if !sys::is_executable(&moto_server) {
            bail!(
                "pip installed moto but {} is missing",
                moto_server.display()
            );
        }
    }
    install_vector_check_packages(&venv)?;
    let s3s_fs = s3s_dir().join("bin/s3s-fs");
    if sys::is_executable(&s3s_fs) {
        eprintln!("s3s-fs present: {}", s3s_fs.display());
    } else {
        // About two minutes of compiling, once per target directory.
        eprintln!(
            "installing s3s-fs {S3S_FS_VERSION} into {}",
            s3s_dir().display()
        );
        sys::run(
            sys::cargo()
                .args(["install", "s3s-fs", "--version", S3S_FS_VERSION])
                .args(["--features", "binary", "--locked", "--root"])
                .arg(s3s_dir())
                .env_remove("CARGO_TARGET_DIR")
                .stdout(sys::to_stderr()),
        )?;
        if !sys::is_executable(&s3s_fs) {
            bail!("cargo installed s3s-fs but {} is missing", s3s_fs.display());
        }
    }
    Ok(Deps {
        moto_server,
        s3s_fs,
    })
}

/// The independent check of `repo-format.md`'s test vectors, and the pinned
/// Python packages it uses (libsodium, libzstd and BLAKE3 bindings).
const VECTOR_CHECK: &str = "tests/vectors/check.py";
const VECTOR_REQUIREMENTS: &str = "tests/vectors/requirements.txt";

/// Installs the vector check's packages into the venv unless the ones
/// `requirements.txt` pins now are there (a copy of it in the venv says so).
fn install_vector_check_packages(venv: &Path) -> Result<()> {
    let requirements = sys::project_root().join(VECTOR_REQUIREMENTS);
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("cairn-vector-requirements.txt");
    if std::fs::read(&stamp).is_ok_and(|had| had == wanted) {
        eprintln!("vector check packages present");
        return Ok(());
    }
    sys::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .stdin(Stdio::null())
            .stdout(sys::to_stderr()),
    )?;
    std::fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))
}

/// Runs `tests/vectors/check.py`; any vector that disagrees fails the run.
fn check_vectors() -> Result<()> {
    let python = venv_dir().join("bin/python");
    if !sys::is_executable(&python) {
        bail!(
            "{} is missing: run `cargo xtask deps` (or `test` without --no-install)",
            python.display()
        );
    }
    let root = sys::project_root();
    sys::run(
        Command::new(python)
            .arg(root.join(VECTOR_CHECK))
            .arg(root.join("repo-format.md"))
            .stdin(Stdio::null())
            .stdout(sys::to_stderr()),
    )
    .context("repo-format.md's test vectors disagree with an independent computation")
}

fn venv_dir() -> PathBuf {
    sys::target_dir().join("test-env/venv")
}

fn s3s_dir() -> PathBuf {
    sys::target_dir().join("test-env/s3s")
}

fn section(title: &str) {
    eprintln!("\n=== xtask test: {title}");
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Each failed test, in the order they failed (cargo names the test
    /// binaries on stderr, in its `N targets failed` list).
    failures: Vec<String>,
    /// For each failed test, the first lines of its panic message, so that
    /// the summary at the end (all a CI log may keep) says why it failed.
    reasons: Vec<(String, Vec<String>)>,
}

/// Lines of a panic message kept for the summary.
const REASON_LINES: usize = 12;

/// Picks panic messages out of the `---- name stdout ----` blocks that
/// cargo test prints after a binary's tests.
#[derive(Default)]
struct ReasonReader {
    /// The test whose block is being read, and whether its panic line came.
    test: Option<(String, bool)>,
}

impl ReasonReader {
    fn line(&mut self, text: &str, reasons: &mut Vec<(String, Vec<String>)>) {
        if let Some(name) = text
            .strip_prefix("---- ")
            .and_then(|t| t.strip_suffix(" stdout ----"))
        {
            self.test = Some((name.to_string(), false));
            return;
        }
        let Some((name, panicked)) = &mut self.test else {
            return;
        };
        if !*panicked {
            if text.starts_with("thread '") && text.contains("panicked at") {
                *panicked = true;
                reasons.push((name.clone(), vec![text.to_string()]));
            }
            return;
        }
        let ends = text.starts_with("stack backtrace:")
            || text.starts_with("note: ")
            || text.starts_with("---- ")
            || text == "failures:";
        let kept = reasons.last_mut().map(|(_, lines)| lines);
        match kept {
            Some(lines) if !ends && lines.len() < REASON_LINES => lines.push(text.to_string()),
            _ => self.test = None,
        }
    }
}

/// Runs cargo test, copying its stdout through line by line while summing
/// the `test result:` lines of every test binary and doc-test run.
fn run_cargo_test(cmd: &mut Command, skip_log: &Path) -> Result<Counts> {
    let line = sys::describe(cmd);
    eprintln!("$ {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let mut counts = Counts::default();
    let mut reasons = ReasonReader::default();
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut out = std::io::stdout().lock();
    // Bytes, not lines of UTF-8: a test may print anything.
    for line in BufReader::new(stdout).split(b'\n') {
        let line = line.context("reading cargo test's output")?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        out.flush()?;
        let text = String::from_utf8_lossy(&line);
        if let Some(name) = text
            .trim()
            .strip_prefix("test ")
            .and_then(|t| t.strip_suffix(" ... FAILED"))
        {
            counts.failures.push(name.to_string());
        }
        reasons.line(text.trim_end(), &mut counts.reasons);
        if let Some(result) = text.trim_start().strip_prefix("test result: ") {
            counts.passed += count_of(result, "passed");
            counts.failed += count_of(result, "failed");
            counts.ignored += count_of(result, "ignored");
        }
    }
    drop(out);
    let status = child.wait()?;
    // Tests that returned early because they could not run here: libtest
    // counted them as passed.
    let skips = std::fs::read_to_string(skip_log).unwrap_or_default();
    let skips: Vec<&str> = skips.lines().filter(|l| !l.is_empty()).collect();
    if !skips.is_empty() {
        eprintln!("\nskipped tests ({}):", skips.len());
        for s in &skips {
            eprintln!("  {s}");
        }
    }
    counts.passed = counts.passed.saturating_sub(skips.len() as u64);
    counts.ignored += skips.len() as u64;
    if !status.success() {
        eprintln!("\nfailed tests ({}):", counts.failures.len());
        for f in &counts.failures {
            eprintln!("  {f}");
        }
        for (name, lines) in &counts.reasons {
            eprintln!("\nwhy {name} failed:");
            for l in lines {
                eprintln!("  | {l}");
            }
        }
        // The summary line CI reads, also when something failed.
        println!(
            "tests: {} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.ignored
        );
        bail!(
            "`{line}` failed ({status}; {} passed, {} failed)",
            counts.passed,
            counts.failed
        );
    }
    Ok(counts)
}

/// In `ok. 3 passed; 0 failed; 1 ignored; ...`, the number before `word`.
fn count_of(result: &str, word: &str) -> u64 {
    result
        .split(';')
        .filter_map(|part| {
            let mut words = part.split_whitespace().rev();
            let (last, number) = (words.next()?, words.next()?);
            (last == word).then(|| number.parse::<u64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::count_of;

    #[test]
    fn counts_a_libtest_summary() {
        let line =
            "ok. 12 passed; 1 failed; 3 ignored; 0 measured; 2 filtered out; finished in 0.52s";
        assert_eq!(count_of(line, "passed"), 12);
        assert_eq!(count_of(line, "failed"), 1);
        assert_eq!(count_of(line, "ignored"), 3);
        assert_eq!(
            count_of("FAILED. 0 passed; 2 failed; 0 ignored", "failed"),
            2
        );
    }
}
