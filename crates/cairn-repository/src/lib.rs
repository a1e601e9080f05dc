//! A cairn repository on top of a [`Backend`](cairn_backend::Backend).
//!
//! - [`Repository`]: init and open (key files, config), the in-memory
//!   [`Index`], reading blobs, trees and snapshots.
//! - [`BlobSaver`]: the write path: compress, seal, pack, upload, and index
//!   checkpoints, on worker threads.
//!
//! Invariant: a file becomes visible only once complete (backend contract),
//! and an index file is written only after every pack it lists is stored; a
//! snapshot only after every blob it references is in an index file.

mod error;
mod index;
mod packer;
mod parallel;
mod repo;
mod saver;

pub use error::{Error, Kind, Result};
pub use index::{BlobLocation, Index, PackGroups};
pub use parallel::parallel_map;
pub use repo::{ConfigRepair, OpenOptions, Repository, SnapshotFilter, SnapshotsAndErrors};
pub use saver::{BlobSaver, SaverOptions, SaverStats};

pub use cairn_backend as backend;
pub use cairn_format as format;
