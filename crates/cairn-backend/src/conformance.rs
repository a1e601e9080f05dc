//! The behaviour every backend must show: one function per contract of
//! [`Backend`], run from each backend's tests against a real server where
//! the backend talks to one.
//!
//! Two ways to run it:
//! - [`conformance_tests!`](crate::conformance_tests) generates one named
//!   `#[test]` per contract, each on a fresh backend from a fixture
//!   function, so one broken contract does not hide the others;
//! - [`run`] runs every contract in turn on one backend (for wrappers and
//!   quick checks).
//!
//! Each contract leaves the backend as it found it (it removes what it
//! wrote), so they can follow each other on one backend. Every file is
//! named by the SHA-256 of its bytes, as in a real repository: servers such
//! as restic's rest-server (and `cairn serve`) refuse an upload whose bytes
//! do not match its name.

use crate::{Backend, ErrorKind, FileKind};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The name a repository gives to `data`: its SHA-256 in lowercase hex.
pub fn name_of(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A backend for one contract test, with whatever must live as long as it
/// (a temporary directory, a server process).
pub struct Fixture {
    pub backend: Box<dyn Backend>,
    _keep: Box<dyn std::any::Any>,
}

impl Fixture {
    pub fn new(backend: impl Backend + 'static) -> Fixture {
        Fixture::with(backend, ())
    }

    /// `keep` is dropped after the backend.
    pub fn with(backend: impl Backend + 'static, keep: impl std::any::Any) -> Fixture {
        Fixture {
            backend: Box::new(backend),
            _keep: Box::new(keep),
        }
    }
}

/// A contract: a check run on a backend, panicking when it is broken.
pub type Contract = fn(&dyn Backend);

/// Every contract, by name.
pub const CONTRACTS: &[(&str, Contract)] = &[
    ("create_is_idempotent", create_is_idempotent),
    (
        "missing_objects_are_not_found",
        missing_objects_are_not_found,
    ),
    ("config_is_written_once", config_is_written_once),
    ("every_kind_round_trips", every_kind_round_trips),
    (
        "ranged_reads_are_exact_at_the_edges",
        ranged_reads_are_exact_at_the_edges,
    ),
    (
        "data_files_spread_over_shards",
        data_files_spread_over_shards,
    ),
    ("invalid_names_are_refused", invalid_names_are_refused),
    ("streamed_data_files", streamed_data_files),
    (
        "concurrent_writers_of_one_name",
        concurrent_writers_of_one_name,
    ),
    ("listing_while_writing", listing_while_writing),
    ("more_than_a_thousand_files", more_than_a_thousand_files),
    ("a_100_mib_object", a_100_mib_object),
];

/// Runs every contract on `b`, which must start empty. Panics with a
/// description of the first contract the backend breaks.
pub fn run(b: &dyn Backend) {
    run_except(b, &[]);
}

/// [`run`] without the contracts named in `skip`: for servers outside our
/// control that are known not to keep one (the caller says why).
pub fn run_except(b: &dyn Backend, skip: &[&str]) {
    for s in skip {
        assert!(
            CONTRACTS.iter().any(|(name, _)| name == s),
            "no contract is named {s}"
        );
    }
    b.create().expect("create");
    for kind in FileKind::ALL {
        assert!(
            b.list(kind).expect("list").is_empty(),
            "{kind} starts empty"
        );
    }
    for (name, contract) in CONTRACTS {
        if skip.contains(name) {
            eprintln!("conformance: {name} (not kept by this server: skipped)");
            continue;
        }
        eprintln!("conformance: {name}");
        contract(b);
    }
}

/// One `#[test]` per contract, each on a fresh backend from `$fixture`, a
/// function returning `Option<Fixture>` (`None`: the server cannot run
/// here; the fixture prints why, and the test passes without checking).
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@each $fixture;
            create_is_idempotent, missing_objects_are_not_found, config_is_written_once,
            every_kind_round_trips, ranged_reads_are_exact_at_the_edges,
            data_files_spread_over_shards, invalid_names_are_refused, streamed_data_files,
            concurrent_writers_of_one_name, listing_while_writing, more_than_a_thousand_files,
            a_100_mib_object);
    };
    (@each $fixture:path; $($contract:ident),*) => {
        $(
            #[test]
            fn $contract() {
                let Some(fixture) = $fixture() else { return };
                fixture.backend.create().expect("create");
                $crate::conformance::$contract(&*fixture.backend);
            }
        )*
    };
}

/// A small file, different for each seed.
fn content(seed: u8) -> Vec<u8> {
    vec![seed; 1 + seed as usize]
}

fn hexname(seed: u8) -> String {
    name_of(&content(seed))
}

/// Deterministic bytes of any length, different for each seed.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn create_is_idempotent(b: &dyn Backend) {
    b.create().expect("create");
    b.create().expect("create is idempotent");
}

pub fn missing_objects_are_not_found(b: &dyn Backend) {
    let missing = hexname(0xaa);
    assert_eq!(
        b.stat(FileKind::Snapshot, &missing).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        b.read(FileKind::Index, &missing).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        b.read_range(FileKind::Data, &missing, 0, Some(1))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert!(!b.exists(FileKind::Data, &missing).unwrap());
    b.remove(FileKind::Lock, &missing)
        .expect("removing a missing file succeeds");
    b.remove(FileKind::Data, &missing)
        .expect("removing a missing data file succeeds");
}

pub fn config_is_written_once(b: &dyn Backend) {
    b.write(FileKind::Config, "config", b"cfg")
        .expect("write config");
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"cfg");
    assert_eq!(b.stat(FileKind::Config, "config").unwrap(), 3);
    assert_eq!(
        b.write(FileKind::Config, "config", b"other")
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        b.read(FileKind::Config, "config").unwrap(),
        b"cfg",
        "config not overwritten"
    );
    b.remove(FileKind::Config, "config").unwrap();
    assert!(!b.exists(FileKind::Config, "config").unwrap());
}

const FILE_KINDS: [FileKind; 5] = [
    FileKind::Key,
    FileKind::Lock,
    FileKind::Snapshot,
    FileKind::Index,
    FileKind::Data,
];

pub fn every_kind_round_trips(b: &dyn Backend) {
    let data = pattern(100_000, 1);
    let name = name_of(&data);
    for kind in FILE_KINDS {
        let before = b.list(kind).unwrap().len();
        b.write(kind, &name, &data).expect("write");
        assert_eq!(b.stat(kind, &name).unwrap(), data.len() as u64);
        assert_eq!(b.read(kind, &name).unwrap(), data);
        assert!(b.exists(kind, &name).unwrap());
        assert_eq!(
            b.write(kind, &name, &data).unwrap_err().kind,
            ErrorKind::AlreadyExists,
            "{kind}: a second write of the same name"
        );
        let listed = b.list(kind).unwrap();
        assert_eq!(listed.len(), before + 1, "{kind} lists the new file");
        let entry = listed.iter().find(|f| f.name == name).expect("listed");
        assert_eq!(entry.size, data.len() as u64);
        b.remove(kind, &name).unwrap();
        assert!(!b.exists(kind, &name).unwrap());
        b.remove(kind, &name).expect("a second remove succeeds");
        assert_eq!(b.list(kind).unwrap().len(), before);
    }
}

pub fn ranged_reads_are_exact_at_the_edges(b: &dyn Backend) {
    let data = pattern(100_000, 2);
    let name = name_of(&data);
    let size = data.len() as u64;
    b.write(FileKind::Data, &name, &data).unwrap();
    let read = |off: u64, len: Option<u64>| b.read_range(FileKind::Data, &name, off, len);
    assert_eq!(read(0, Some(1)).unwrap(), &data[..1], "first byte");
    assert_eq!(
        read(size - 1, Some(1)).unwrap(),
        &data[99_999..],
        "last byte"
    );
    assert_eq!(
        read(0, Some(size)).unwrap(),
        data,
        "the whole file by length"
    );
    assert_eq!(read(10, Some(5)).unwrap(), &data[10..15]);
    assert_eq!(read(99_990, None).unwrap(), &data[99_990..], "to the end");
    assert!(read(99_990, Some(20)).is_err(), "past the end is an error");
    assert!(
        read(size + 1, Some(1)).is_err(),
        "beyond the end is an error"
    );
    b.remove(FileKind::Data, &name).unwrap();
}

pub fn data_files_spread_over_shards(b: &dyn Backend) {
    let before = b.list(FileKind::Data).unwrap().len();
    for i in 0..20u8 {
        let seed = 0x30 + i * 8;
        b.write(FileKind::Data, &hexname(seed), &content(seed))
            .unwrap();
    }
    let listed = b.list(FileKind::Data).unwrap();
    assert_eq!(listed.len(), before + 20);
    for i in 0..20u8 {
        let seed = 0x30 + i * 8;
        let f = listed
            .iter()
            .find(|f| f.name == hexname(seed))
            .expect("listed");
        assert_eq!(f.size, content(seed).len() as u64);
        assert_eq!(b.read(FileKind::Data, &f.name).unwrap(), content(seed));
        b.remove(FileKind::Data, &hexname(seed)).unwrap();
    }
    assert_eq!(b.list(FileKind::Data).unwrap().len(), before);
}

pub fn invalid_names_are_refused(b: &dyn Backend) {
    assert!(b
        .write(FileKind::Snapshot, "../../etc/passwd", b"x")
        .is_err());
    assert!(b.write(FileKind::Snapshot, &"A".repeat(64), b"x").is_err());
    assert!(b.write(FileKind::Data, "00", b"x").is_err());
    assert!(b
        .list(FileKind::Snapshot)
        .unwrap()
        .iter()
        .all(|f| f.name.len() == 64));
}

/// Streamed data files, where the backend supports them: invisible until
/// committed, gone without a trace when abandoned, never replacing a file.
pub fn streamed_data_files(b: &dyn Backend) {
    let Some(mut w) = b.data_writer().expect("data_writer") else {
        return;
    };
    let before = b.list(FileKind::Data).unwrap().len();
    let body = pattern(300_000, 3);
    w.write_all(&body[..1000]).unwrap();
    w.write_all(&body[1000..]).unwrap();
    assert_eq!(
        b.list(FileKind::Data).unwrap().len(),
        before,
        "an uncommitted stream is not listed"
    );
    let n = name_of(&body);
    w.commit(&n).unwrap();
    assert_eq!(b.read(FileKind::Data, &n).unwrap(), body);
    let mut again = b.data_writer().unwrap().unwrap();
    again.write_all(b"other").unwrap();
    assert_eq!(again.commit(&n).unwrap_err().kind, ErrorKind::AlreadyExists);
    assert_eq!(
        b.read(FileKind::Data, &n).unwrap(),
        body,
        "commit never replaces"
    );
    // A writer in progress is never a stale temporary.
    let mut fresh = b.data_writer().unwrap().unwrap();
    fresh.write_all(b"in progress").unwrap();
    assert_eq!(
        b.remove_stale_temporaries(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    let n2 = name_of(b"in progress");
    fresh.commit(&n2).unwrap();
    b.remove(FileKind::Data, &n2).unwrap();
    let mut dropped = b.data_writer().unwrap().unwrap();
    dropped.write_all(b"abandoned").unwrap();
    drop(dropped);
    assert_eq!(b.list(FileKind::Data).unwrap().len(), before + 1);
    b.remove(FileKind::Data, &n).unwrap();
}

/// Several writers of one name at once (two clients saving the same
/// content-addressed file): each succeeds or finds it there, and the file
/// is whole.
pub fn concurrent_writers_of_one_name(b: &dyn Backend) {
    let data = pattern(2 << 20, 4);
    let name = name_of(&data);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| b.write(FileKind::Data, &name, &data)))
            .collect();
        let mut ok = 0;
        for h in handles {
            match h.join().expect("writer thread") {
                Ok(()) => ok += 1,
                Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                Err(e) => panic!("a concurrent writer failed: {e}"),
            }
        }
        assert!(ok >= 1, "no writer succeeded");
    });
    assert_eq!(b.read(FileKind::Data, &name).unwrap(), data);
    let listed = b.list(FileKind::Data).unwrap();
    assert_eq!(listed.iter().filter(|f| f.name == name).count(), 1);
    b.remove(FileKind::Data, &name).unwrap();
}

/// A listing taken while files are being written shows only whole files.
pub fn listing_while_writing(b: &dyn Backend) {
    let files: Vec<Vec<u8>> = (0..40)
        .map(|i| pattern(50_000 + i * 1000, 100 + i as u32))
        .collect();
    let names: Vec<String> = files.iter().map(|f| name_of(f)).collect();
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let writer = {
            let done = done.clone();
            let files = &files;
            let names = &names;
            s.spawn(move || {
                for (f, n) in files.iter().zip(names) {
                    b.write(FileKind::Index, n, f).expect("write while listing");
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        while !done.load(Ordering::SeqCst) {
            for f in b.list(FileKind::Index).expect("list while writing") {
                if let Some(i) = names.iter().position(|n| *n == f.name) {
                    assert_eq!(f.size, files[i].len() as u64, "a listed file is whole");
                }
            }
        }
        writer.join().expect("writer thread");
    });
    let listed = b.list(FileKind::Index).unwrap();
    for n in &names {
        assert!(listed.iter().any(|f| f.name == *n), "{n} listed at the end");
        b.remove(FileKind::Index, n).unwrap();
    }
}

/// More files of one kind than one listing page of S3 (1,000) holds.
pub fn more_than_a_thousand_files(b: &dyn Backend) {
    const N: u32 = 1_100;
    let before = b.list(FileKind::Snapshot).unwrap().len();
    let names: Vec<String> = (0..N).map(|i| name_of(&i.to_le_bytes())).collect();
    let writers = b.write_concurrency().clamp(1, 8);
    std::thread::scope(|s| {
        for t in 0..writers {
            let names = &names;
            s.spawn(move || {
                for i in (t..N as usize).step_by(writers) {
                    b.write(FileKind::Snapshot, &names[i], &(i as u32).to_le_bytes())
                        .expect("write");
                }
            });
        }
    });
    let listed = b.list(FileKind::Snapshot).unwrap();
    assert_eq!(listed.len(), before + N as usize, "every file is listed");
    let listed: std::collections::HashSet<&str> = listed.iter().map(|f| f.name.as_str()).collect();
    assert!(names.iter().all(|n| listed.contains(n.as_str())));
    std::thread::scope(|s| {
        for t in 0..writers {
            let names = &names;
            s.spawn(move || {
                for i in (t..N as usize).step_by(writers) {
                    b.remove(FileKind::Snapshot, &names[i]).expect("remove");
                }
            });
        }
    });
    assert_eq!(b.list(FileKind::Snapshot).unwrap().len(), before);
}

/// A large object: written whole, read whole and in ranges at its edges.
pub fn a_100_mib_object(b: &dyn Backend) {
    let data = pattern(100 << 20, 5);
    let name = name_of(&data);
    let size = data.len() as u64;
    b.write(FileKind::Data, &name, &data)
        .expect("write 100 MiB");
    assert_eq!(b.stat(FileKind::Data, &name).unwrap(), size);
    let back = b.read(FileKind::Data, &name).expect("read 100 MiB");
    assert!(back == data, "100 MiB read back differ");
    drop(back);
    let mid = size / 2;
    assert_eq!(
        b.read_range(FileKind::Data, &name, mid - 3, Some(7))
            .unwrap(),
        &data[mid as usize - 3..mid as usize + 4]
    );
    assert_eq!(
        b.read_range(FileKind::Data, &name, size - 4096, None)
            .unwrap(),
        &data[data.len() - 4096..]
    );
    b.remove(FileKind::Data, &name).unwrap();
}
