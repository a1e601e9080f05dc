//! Helpers for the end-to-end tests: they run the `cairn` binary, never its
//! crates, so they test what a user gets.
//!
//! - [`TestEnv`]: one temporary directory per test, holding the repository,
//!   the data, restore targets and a fake `HOME`; every `cairn` run gets a
//!   clean environment pointing into it (the real home is never touched).
//! - [`Cairn`] / [`Out`]: run the binary with a time limit; every run
//!   fails the test at once if `cairn` panicked or died from a signal the
//!   test did not send.
//! - [`tree`]: a manifest of a directory tree (types, modes, owners,
//!   nanosecond mtimes, content hashes, link targets, hard links, xattrs) and
//!   [`assert_trees_equal`], which lists every difference readably.
//! - [`gen`]: a fast deterministic generator of random and compressible data.
//! - [`repo`]: looking at the repository's files (packs, hashes, corruption).
//! - [`rest`]: the REST servers (`cairn serve`, `rclone serve restic`) and
//!   clients (restic, raw HTTP) of the tests, also for the crates' own tests.
//! - [`s3`]: S3 servers (moto, s3s-fs) on 127.0.0.1, for the S3 backend's
//!   tests and end-to-end tests of `s3:` repositories.
//! - [`sshd`]: a real OpenSSH server on 127.0.0.1 for SFTP tests.
//! - [`db`]: PostgreSQL and MariaDB servers of the test's own (a private
//!   data directory and unix socket), for the database dump tests.
//!
//! The binary: `$CAIRN_BIN` if set (xtask sets it), else
//! `<workspace>/target/debug/cairn` (build it with `cargo build -p cairn-cli`).

pub mod cmd;
pub mod db;
pub mod gen;
pub mod repo;
pub mod rest;
pub mod s3;
pub mod sshd;
pub mod tree;

pub use cmd::{cairn_bin, Cairn, Out, TestEnv};
pub use tree::{assert_manifest_matches, assert_trees_equal, Manifest};

use std::path::{Path, PathBuf};

/// Where a backed-up absolute path lands under a restore target: snapshot
/// trees mirror absolute paths, so `/tmp/x/data` restores to
/// `target/tmp/x/data`.
pub fn restored(target: &Path, source: &Path) -> PathBuf {
    assert!(source.is_absolute(), "{} is not absolute", source.display());
    target.join(source.strip_prefix("/").unwrap())
}

/// A small tree of every common kind of file under `env`'s `src`: a text
/// file saying `greeting`, an empty file, random and compressible files of
/// a few MiB, a small file three levels down and a relative symlink.
pub fn small_source(env: &TestEnv, seed: u64, greeting: &[u8]) -> PathBuf {
    let src = env.mkdir("src");
    std::fs::write(src.join("hello.txt"), greeting).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    gen::random_file(&src.join("a/random.bin"), 3 << 20, seed);
    gen::compressible_file(&src.join("a/b/text.log"), 2 << 20, seed + 1);
    gen::random_file(&src.join("a/b/c/small.bin"), 10_000, seed + 2);
    std::os::unix::fs::symlink("../hello.txt", src.join("a/link")).unwrap();
    src
}

/// `src` restored under `target` equals it on contents, modes, owners and
/// modification times (not xattrs, symlink times or the root's metadata).
pub fn assert_restored_equal(src: &Path, target: &Path) {
    let opts = tree::Options {
        xattrs: false,
        owner: true,
        mtime: true,
        symlink_mtime: false,
        root_meta: false,
    };
    tree::assert_trees_equal_with(src, &restored(target, src), opts);
}

/// True when the tests run as root (chmod does not stop root from reading).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Bytes actually allocated to a file on disk (st_blocks × 512).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .blocks()
        * 512
}

/// This test cannot run here because `what` is missing: a program or file
/// that `cargo xtask test` installs. Under `cargo xtask test`
/// (`CAIRN_TEST_NO_SKIP=1`) that is a failure, since the driver should have
/// installed it; otherwise the skip is printed and counted (see [`skip`]).
pub fn missing(what: &str) {
    if std::env::var_os("CAIRN_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("{what}: under `cargo xtask test` every test runs (its install step provides this)");
    }
    skip(what);
}

/// This test cannot run in this environment (something not installable:
/// root without the capability needed, a file system without a feature).
/// Printed, and appended to `CAIRN_TEST_SKIP_LOG` when set, so that
/// `cargo xtask test` counts it as skipped rather than passed.
pub fn skip(why: &str) {
    eprintln!("skipping: {why}");
    if let Some(log) = std::env::var_os("CAIRN_TEST_SKIP_LOG") {
        use std::io::Write;
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {}", why.replace('\n', " "));
        }
    }
}

/// A note in the test output (shown with `--nocapture`, or on failure).
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => { eprintln!("note: {}", format!($($t)*)) };
}
