//! Looking at (and damaging) a repository's files from outside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every regular file under `root`: relative path → BLAKE3 of its bytes.
/// Two equal results mean nothing was added, removed or changed.
pub fn hash_all(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for de in rd {
            let de = de.unwrap();
            let p = de.path();
            let ft = de.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let h = if ft.is_file() {
                    crate::tree::hash_file(&p)
                } else {
                    "(not a file)".into()
                };
                out.insert(rel, h);
            }
        }
    }
    out
}

/// The first differences between two [`hash_all`] results, readably.
pub fn describe_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> String {
    let mut v = Vec::new();
    for (k, h) in before {
        match after.get(k) {
            None => v.push(format!("removed: {k}")),
            Some(h2) if h2 != h => v.push(format!("changed: {k}")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            v.push(format!("added:   {k}"));
        }
    }
    v.join("\n")
}

#[track_caller]
pub fn assert_unchanged(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) {
    assert!(
        before == after,
        "{what} changed the repository:\n{}",
        describe_changes(before, after)
    );
}

fn is_hex_name(n: &str) -> bool {
    n.len() == 64
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The files of one kind (`data`, `index`, `snapshots`, `keys`), named by
/// their hash, with their sizes; `data` looks one level down (shards).
pub fn files(repo: &Path, kind: &str) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let dir = repo.join(kind);
    let mut dirs = vec![dir.clone()];
    if kind == "data" {
        dirs = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_hex_name(&name) {
                if let Ok(md) = e.metadata() {
                    if md.is_file() {
                        out.push((e.path(), md.len()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

pub fn packs(repo: &Path) -> Vec<(PathBuf, u64)> {
    files(repo, "data")
}

pub fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    perm.set_mode(perm.mode() | 0o200);
    std::fs::set_permissions(path, perm).unwrap();
}

/// Flip one bit of the byte at `offset`.
pub fn flip_bit(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    writable(path);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
}

/// Cut a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    writable(path);
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

/// For every data blob of a snapshot, the snapshot paths of the files that
/// use it, found by walking its trees with `cairn cat snapshot|tree`.
pub fn files_by_blob(
    env: &crate::TestEnv,
    snapshot: &str,
) -> std::collections::HashMap<String, Vec<String>> {
    let snap = env
        .cairn(["cat", "snapshot", snapshot])
        .run()
        .success()
        .json();
    let root = snap["tree"]
        .as_str()
        .expect("snapshot has a tree")
        .to_string();
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut stack = vec![(root, String::new())];
    while let Some((tree, prefix)) = stack.pop() {
        let t = env.cairn(["cat", "tree", &tree]).run().success().json();
        for n in t["nodes"].as_array().expect("tree has nodes") {
            let name = match &n["name"] {
                serde_json::Value::String(s) => s.clone(),
                other => format!("{other}"),
            };
            let path = format!("{prefix}/{name}");
            if let Some(sub) = n["subtree"].as_str() {
                stack.push((sub.to_string(), path.clone()));
            }
            for b in n["content"].as_array().into_iter().flatten() {
                out.entry(b.as_str().unwrap().to_string())
                    .or_default()
                    .push(path.clone());
            }
        }
    }
    out
}

/// One blob of a pack, as `cairn cat pack ID` lists it.
#[derive(Clone, Debug)]
pub struct PackBlob {
    pub id: String,
    pub kind: String,
    pub offset: u64,
    pub length: u64,
}

/// The blobs of a pack, as `cairn cat pack ID` lists them (from its header).
pub fn pack_blobs(env: &crate::TestEnv, pack: &str) -> Vec<PackBlob> {
    let v = env.cairn(["cat", "pack", pack]).run().success().json();
    v["packs"][0]["blobs"]
        .as_array()
        .expect("cat pack lists blobs")
        .iter()
        .map(|b| PackBlob {
            id: b["id"].as_str().unwrap().to_string(),
            kind: b["type"].as_str().unwrap().to_string(),
            offset: b["offset"].as_u64().unwrap(),
            length: b["length"].as_u64().unwrap(),
        })
        .collect()
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything in the repository that breaks repo-format.md §1: files other
/// than `config`, `keys/*`, `snapshots/*`, `index/*`, `data/xy/*` (and
/// `locks/*`), names that are not the SHA-256 of the bytes, packs in the
/// wrong shard. Temporary files are reported too (`allow_temp` to accept
/// them, e.g. after a crash).
pub fn layout_violations(repo: &Path, allow_temp: bool) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(repo).unwrap().to_string_lossy().into_owned();
            let parts: Vec<&str> = rel.split('/').collect();
            if e.file_type().unwrap().is_dir() {
                let ok = matches!(
                    parts.as_slice(),
                    ["keys" | "snapshots" | "index" | "data" | "locks"]
                ) || matches!(parts.as_slice(), ["data", x] if x.len() == 2 && x.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    v.push(format!("unexpected directory {rel}"));
                }
                stack.push(p);
                continue;
            }
            let name = *parts.last().unwrap();
            if !is_hex_name(name) {
                if rel == "config" || (allow_temp && name.starts_with('.')) {
                    continue;
                }
                v.push(format!("unexpected file {rel}"));
                continue;
            }
            match parts.as_slice() {
                ["keys" | "snapshots" | "index" | "locks", _] => {}
                ["data", shard, n] if n.starts_with(shard) => {}
                _ => {
                    v.push(format!("misplaced file {rel}"));
                    continue;
                }
            }
            let h = sha256_file(&p);
            if h != name {
                v.push(format!("{rel}: named {name} but its SHA-256 is {h}"));
            }
        }
    }
    v.sort();
    v
}
