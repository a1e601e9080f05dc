//! `cairn cat TYPE [ID]`: print one repository object, as restic's cat:
//! config, snapshot, index, key, masterkey, lock, pack (its header),
//! blob (raw bytes) or tree (JSON; by tree id or as `SNAPSHOT:PATH`, the
//! tree of that directory in that snapshot).

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use cairn_repository::backend::FileKind;
use cairn_repository::format::index::IndexFile;
use cairn_repository::format::keyfile::KeyFile;
use cairn_repository::format::Id;
use clap::Args;
use serde_json::json;
use std::io::Write;

#[derive(Args, Debug)]
pub struct CatArgs {
    /// config, snapshot, index, key, masterkey, lock, pack, blob or tree
    pub what: String,
    /// The object's id (or unique prefix); for tree also SNAPSHOT:PATH
    pub id: Option<String>,
}

fn full_id(repo: &cairn_repository::Repository, kind: FileKind, prefix: &str) -> Result<Id> {
    if let Some(id) = Id::from_hex(prefix) {
        return Ok(id);
    }
    let names: Vec<String> = repo
        .backend()
        .list(kind)?
        .into_iter()
        .map(|f| f.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    match names.as_slice() {
        [one] => Ok(Id::from_hex(one).expect("listed names are ids")),
        [] => Err(Error::not_found(format!("no {kind} file with id {prefix}"))),
        _ => Err(Error::new(
            cairn_repository::Kind::Ambiguous,
            format!("{kind} id prefix {prefix} is ambiguous"),
        )),
    }
}

pub fn run(g: &GlobalOptions, a: CatArgs) -> Result<i32> {
    let need_id = || {
        a.id.clone()
            .ok_or_else(|| Error::usage(format!("`cairn cat {}` needs an id", a.what)))
    };
    let repo = crate::repo::open(g)?;
    let v = match a.what.as_str() {
        "config" => serde_json::to_value(repo.config()).expect("json"),
        "snapshot" => {
            let (id, s) = repo.find_snapshot(&need_id()?, &Default::default())?;
            crate::output::snapshot_json(&id, &s)
        }
        "key" => {
            let id = full_id(&repo, FileKind::Key, &need_id()?)?;
            let kf = KeyFile::parse(&repo.load_file(FileKind::Key, &id)?)
                .map_err(|e| Error::format("key", e))?;
            serde_json::to_value(kf).expect("json")
        }
        "masterkey" => serde_json::to_value(repo.key()).expect("json"),
        "lock" => {
            let id = full_id(&repo, FileKind::Lock, &need_id()?)?;
            let sealed = repo.load_file(FileKind::Lock, &id)?;
            let plain = repo.cipher().open(&sealed, 1 << 20).map_err(|e| {
                Error::format(format!("lock {}", id.short()), e)
            })?;
            serde_json::from_slice(&plain)
                .map_err(|e| Error::corrupt(format!("lock {}", id.short()), e))?
        }
        "index" => {
            let id = full_id(&repo, FileKind::Index, &need_id()?)?;
            index_json(&repo.load_index_file(&id)?)
        }
        "pack" => {
            let id = full_id(&repo, FileKind::Data, &need_id()?)?;
            let size = repo.backend().stat(FileKind::Data, &id.to_hex())?;
            let entries = repo.read_pack_header(&id, size)?;
            index_json(&IndexFile {
                packs: vec![cairn_repository::format::index::IndexPack::live(
                    id, entries,
                )],
            })
        }
        "blob" | "tree" => {
            repo.load_index()?;
            let arg = need_id()?;
            let id = match arg.split_once(':') {
                Some((spec, path)) if a.what == "tree" => snapshot_tree(&repo, spec, path)?,
                _ => Id::from_hex(&arg)
                    .ok_or_else(|| Error::usage(format!("{} ids are 64 hex characters", a.what)))?,
            };
            let data = repo.read_blob(&id)?;
            if a.what == "tree" {
                let t: serde_json::Value =
                    serde_json::from_slice(&data).map_err(|e| Error::corrupt("tree", e))?;
                t
            } else {
                std::io::stdout()
                    .write_all(&data)
                    .map_err(|e| Error::io(e, "writing to stdout"))?;
                return Ok(0);
            }
        }
        other => {
            return Err(Error::usage(format!(
            "cannot cat {other:?}: use config, snapshot, index, key, masterkey, lock, pack, tree or blob"
        )))
        }
    };
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    Ok(0)
}

fn index_json(f: &IndexFile) -> serde_json::Value {
    json!({
        "packs": f.packs.iter().map(|p| json!({
            "id": p.id,
            "blobs": p.blobs.iter().map(|b| json!({
                "id": b.id, "type": b.kind, "offset": b.offset, "length": b.length, "uncompressed_length": b.raw_length,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The tree of directory `path` in snapshot `spec` (`latest`, an id or a prefix).
fn snapshot_tree(repo: &cairn_repository::Repository, spec: &str, path: &str) -> Result<Id> {
    use cairn_engine::tree_walk;
    use cairn_repository::format::tree::NodeKind;
    let (_, snap) = repo.find_snapshot(spec, &Default::default())?;
    let path = tree_walk::normalize(std::path::Path::new(path));
    let node = tree_walk::find_node(repo, snap.tree, &path)?;
    match (node.kind, node.subtree) {
        (NodeKind::Dir, Some(t)) => Ok(t),
        (NodeKind::Dir, None) => Err(Error::not_found(format!(
            "{} has no tree in snapshot {spec}",
            path.display()
        ))),
        (kind, _) => Err(Error::usage(format!(
            "{} is a {}, not a directory",
            path.display(),
            kind.as_str()
        ))),
    }
}
