//! The behaviour every backend must show; run it from each backend's tests
//! (against a real server where the backend talks to one).
//!
//! Every file is named by the SHA-256 of its bytes, as in a real
//! repository: servers such as restic's rest-server (and `cairn serve`)
//! refuse an upload whose bytes do not match its name.

use crate::{Backend, ErrorKind, FileKind};
use sha2::{Digest, Sha256};

/// The name a repository gives to `data`: its SHA-256 in lowercase hex.
pub fn name_of(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A small file, different for each seed.
fn content(seed: u8) -> Vec<u8> {
    vec![seed; 1 + seed as usize]
}

fn hexname(seed: u8) -> String {
    name_of(&content(seed))
}

/// Panics with a description of the first contract the backend breaks.
pub fn run(b: &dyn Backend) {
    b.create().expect("create");
    b.create().expect("create is idempotent");

    // Empty repository.
    for kind in FileKind::ALL {
        assert!(b.list(kind).expect("list").is_empty(), "{kind} starts empty");
    }
    let missing = hexname(0xaa);
    assert_eq!(b.stat(FileKind::Snapshot, &missing).unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(b.read(FileKind::Index, &missing).unwrap_err().kind, ErrorKind::NotFound);
    assert!(!b.exists(FileKind::Data, &missing).unwrap());
    b.remove(FileKind::Lock, &missing).expect("removing a missing file succeeds");

    // Config.
    b.write(FileKind::Config, "config", b"cfg").expect("write config");
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"cfg");
    assert_eq!(b.write(FileKind::Config, "config", b"other").unwrap_err().kind, ErrorKind::AlreadyExists);
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"cfg", "config not overwritten");

    // Files of every kind.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let name = name_of(&data);
    for kind in [FileKind::Key, FileKind::Lock, FileKind::Snapshot, FileKind::Index, FileKind::Data] {
        b.write(kind, &name, &data).expect("write");
        assert_eq!(b.stat(kind, &name).unwrap(), data.len() as u64);
        assert_eq!(b.read(kind, &name).unwrap(), data);
        assert_eq!(b.read_range(kind, &name, 10, Some(5)).unwrap(), &data[10..15]);
        assert_eq!(b.read_range(kind, &name, 99_990, None).unwrap(), &data[99_990..]);
        assert!(b.read_range(kind, &name, 99_990, Some(20)).is_err(), "reading past the end is an error");
        assert_eq!(b.write(kind, &name, b"x").unwrap_err().kind, ErrorKind::AlreadyExists);
        let listed = b.list(kind).unwrap();
        assert_eq!(listed.len(), 1, "{kind} lists one file");
        assert_eq!(listed[0].name, name);
        assert_eq!(listed[0].size, data.len() as u64);
    }
    // Many data files spread over shards.
    for i in 0..20u8 {
        b.write(FileKind::Data, &hexname(0x30 + i * 8), &content(0x30 + i * 8)).unwrap();
    }
    assert_eq!(b.list(FileKind::Data).unwrap().len(), 21);
    for i in 0..20u8 {
        b.remove(FileKind::Data, &hexname(0x30 + i * 8)).unwrap();
    }
    assert_eq!(b.list(FileKind::Data).unwrap().len(), 1);

    // Invalid names are refused.
    assert!(b.write(FileKind::Snapshot, "../../etc/passwd", b"x").is_err());
    assert!(b.write(FileKind::Snapshot, &"A".repeat(64), b"x").is_err());

    for kind in [FileKind::Key, FileKind::Lock, FileKind::Snapshot, FileKind::Index, FileKind::Data] {
        b.remove(kind, &name).unwrap();
        assert!(!b.exists(kind, &name).unwrap());
    }

    // Streamed data files, where the backend supports them: invisible until
    // committed, gone without a trace when abandoned, never replacing a file.
    if let Some(mut w) = b.data_writer().expect("data_writer") {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        w.write_all(&body[..1000]).unwrap();
        w.write_all(&body[1000..]).unwrap();
        assert!(b.list(FileKind::Data).unwrap().is_empty(), "an uncommitted stream is not listed");
        let n = name_of(&body);
        w.commit(&n).unwrap();
        assert_eq!(b.read(FileKind::Data, &n).unwrap(), body);
        let mut again = b.data_writer().unwrap().unwrap();
        again.write_all(b"other").unwrap();
        assert_eq!(again.commit(&n).unwrap_err().kind, ErrorKind::AlreadyExists);
        assert_eq!(b.read(FileKind::Data, &n).unwrap(), body, "commit never replaces");
        // A writer in progress is never a stale temporary.
        let mut fresh = b.data_writer().unwrap().unwrap();
        fresh.write_all(b"in progress").unwrap();
        assert_eq!(b.remove_stale_temporaries(std::time::Duration::from_secs(3600)).unwrap(), 0);
        let n2 = name_of(b"in progress");
        fresh.commit(&n2).unwrap();
        b.remove(FileKind::Data, &n2).unwrap();
        let mut dropped = b.data_writer().unwrap().unwrap();
        dropped.write_all(b"abandoned").unwrap();
        drop(dropped);
        assert_eq!(b.list(FileKind::Data).unwrap().len(), 1);
        b.remove(FileKind::Data, &n).unwrap();
    }
}
