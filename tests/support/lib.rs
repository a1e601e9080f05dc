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
//!
//! The binary: `$CAIRN_BIN` if set (xtask sets it), else
//! `<workspace>/target/debug/cairn` (build it with `cargo build -p cairn-cli`).

pub mod cmd;
pub mod gen;
pub mod repo;
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

/// True when the tests run as root (chmod does not stop root from reading).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Bytes actually allocated to a file on disk (st_blocks × 512).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).blocks() * 512
}

/// A note in the test output (shown with `--nocapture`, or on failure).
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => { eprintln!("note: {}", format!($($t)*)) };
}
