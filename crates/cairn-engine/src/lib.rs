//! The engine: operations over a repository and a file system.
//!
//! - [`archiver`]: walk paths (or read a stream), store new data, write a snapshot.
//! - [`restore`]: write a snapshot's files back, reading each pack once per batch.
//! - [`tree_rewrite`]: rewriting trees bottom-up (copy, repair, rewrite).
//! - [`tree_walk`]: depth-first traversal of a snapshot's trees, loading
//!   one directory at a time (never the whole tree).
//! - [`pattern`]: restic-style include/exclude patterns.
//! - [`copy`]: copy snapshots between repositories, [`copy_restic`]: from a
//!   restic repository; [`repair`]: rebuild the
//!   index, rewrite snapshots around lost data; [`keys`]: key files;
//!   [`unlock`]: stale lock files left by other programs.
//! - [`forget`]: which snapshots a retention policy keeps (pure, no I/O);
//!   [`diff`], [`find`], [`stats`]: comparing, searching and measuring
//!   snapshots; [`rewrite`]: snapshot trees without excluded paths.
//! - [`freshness`]: the age and completeness of a host's last backup, and
//!   the OK / warning / critical verdict `cairn monitor` reports.
//!
//! Engine functions return data and update progress counters; printing is
//! the CLI's job.

pub mod archiver;
pub mod check;
pub mod copy;
pub mod copy_restic;
pub mod diff;
pub mod dump;
pub mod find;
pub mod forget;
pub mod freshness;
pub mod keys;
pub mod pattern;
pub mod prune;
pub mod repair;
pub mod repair_packs;
pub mod restore;
pub mod rewrite;
pub mod stats;
pub mod tree_rewrite;
pub mod tree_walk;
pub mod unlock;

pub use cairn_repository::{Error, Kind, Result};
