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
    /// config, snapshot, index, key, pack or blob
    pub what: String,
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
            let id = Id::from_hex(&need_id()?)
                .ok_or_else(|| Error::usage("blob ids are 64 hex characters"))?;
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
            "cannot cat {other:?}: use config, snapshot, index, key, masterkey, pack, tree or blob"
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
