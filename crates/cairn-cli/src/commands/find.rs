//! `cairn find PATTERN...`: which snapshots hold matching paths, or with
//! `--blob`/`--tree`, which files and directories reference those ids; as
//! restic's find (snapshots newest first, `--reverse` for oldest first).
//! `--oldest`/`--newest` keep path matches modified in that window;
//! `--pack` looks for every blob of the given packs; `--show-pack-id`
//! ends an id search with the pack holding each id found.

use super::select::select;
use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::Result;
use crate::output::{mode_string, node_json, time_ns};
use cairn_engine::find::{find_paths, FindPattern, IdSearch};
use cairn_repository::format::tree::Node;
use cairn_repository::format::Id;
use clap::Args;
use serde_json::{json, Value};
use std::path::Path;

#[derive(Args, Debug)]
pub struct FindArgs {
    /// Glob patterns (a base name, or a path when it contains "/"); ids with --blob/--tree
    #[arg(required = true)]
    pub patterns: Vec<String>,
    /// Ignore case in patterns
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Only files modified at or after this time ("2006-01-02 15:04:05", local time)
    #[arg(short = 'O', long, value_name = "TIME")]
    pub oldest: Option<String>,
    /// Only files modified at or before this time
    #[arg(short = 'N', long, value_name = "TIME")]
    pub newest: Option<String>,
    /// The patterns are data blob ids (or prefixes): find the files holding them
    #[arg(long, conflicts_with_all = ["tree", "pack"])]
    pub blob: bool,
    /// The patterns are tree ids (or prefixes): find the directories they are
    #[arg(long, conflicts_with = "pack")]
    pub tree: bool,
    /// The patterns are pack ids (or prefixes): find the files and directories whose blobs are in them
    #[arg(long)]
    pub pack: bool,
    /// With --blob or --tree: print the pack holding each id found
    #[arg(long)]
    pub show_pack_id: bool,
    /// Print sizes in human readable format (with --long)
    #[arg(long)]
    pub human_readable: bool,
    /// Only search these snapshots (repeatable)
    #[arg(short = 's', long = "snapshot", value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Search the oldest snapshots first
    #[arg(short = 'R', long)]
    pub reverse: bool,
    /// Long listing: mode, owner, size, time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// For the engine's callbacks, which return the library's errors.
fn io(e: std::io::Error) -> cairn_repository::Error {
    cairn_repository::Error::io(e, "writing to stdout")
}

fn long_line(path: &Path, n: &Node, human: bool) -> String {
    let owner = |name: &str, id: u32| {
        if name.is_empty() {
            id.to_string()
        } else {
            name.to_string()
        }
    };
    format!(
        "{} {:>8} {:>8} {:>12} {} {}",
        mode_string(n.kind, n.mode),
        owner(&n.user, n.uid),
        owner(&n.group, n.gid),
        if human {
            crate::output::bytes(n.size)
        } else {
            n.size.to_string()
        },
        time_ns(n.mtime).format("%Y-%m-%d %H:%M:%S"),
        path.display()
    )
}

pub fn run(g: &GlobalOptions, a: FindArgs) -> Result<i32> {
    use std::io::Write;
    let time = |flag: &str, t: &Option<String>| -> Result<Option<i64>> {
        t.as_deref()
            .map(|t| {
                let d = super::timespec::parse_time(flag, t)?;
                Ok(d.timestamp() * 1_000_000_000 + i64::from(d.timestamp_subsec_nanos()))
            })
            .transpose()
    };
    let oldest = time("--oldest", &a.oldest)?;
    let newest = time("--newest", &a.newest)?;
    if let (Some(o), Some(n)) = (oldest, newest) {
        if o > n {
            return Err(crate::error::Error::usage(
                "--oldest must specify a time before --newest",
            ));
        }
    }
    let ids = a.blob || a.tree || a.pack;
    let pattern = if ids {
        None
    } else {
        Some(FindPattern::new(&a.patterns, a.ignore_case)?)
    };
    let mut search = if a.blob || a.tree {
        Some(IdSearch::new(&a.patterns, a.blob)?)
    } else {
        None
    };
    let repo = crate::repo::open_with_index(g)?;
    if a.pack {
        let (data, trees) = cairn_engine::find::pack_blobs(&repo, &a.patterns)?;
        search = Some(IdSearch::exact(data, trees));
    }
    // The ids found, in order, for --show-pack-id.
    let mut found: Vec<(Id, &'static str)> = Vec::new();
    let mut snaps = select(&repo, &a.snapshots, &super::snapshot_filter(&a.filter))?;
    if !a.reverse {
        snaps.reverse();
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut results: Vec<Value> = Vec::new();
    let mut first = true;
    for (id, s) in &snaps {
        let when = s
            .time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        if let Some(search) = search.as_mut() {
            search.search(&repo, s.tree, &mut |h| {
                if !found.iter().any(|(id, _)| *id == h.id) {
                    found.push((h.id, h.kind));
                }
                if g.json {
                    let mut v = json!({"object_type": h.kind, "id": h.id.to_hex(), "path": h.path.to_string_lossy(), "snapshot": id.to_hex(), "time": crate::output::json_time(&s.time)});
                    if let Some(p) = h.parent_tree {
                        v["parent_tree"] = json!(p.to_hex());
                    }
                    results.push(v);
                } else {
                    writeln!(out, "Found {} {}", h.kind, h.id).map_err(io)?;
                    if let Some(p) = h.parent_tree {
                        writeln!(out, " ... in file {}\n     (tree {})", h.path.display(), p).map_err(io)?;
                    } else {
                        writeln!(out, " ... path {}", h.path.display()).map_err(io)?;
                    }
                    writeln!(out, " ... in snapshot {} ({when})", id.short()).map_err(io)?;
                }
                Ok(())
            })?;
            continue;
        }
        let pattern = pattern.as_ref().expect("a path pattern");
        let mut matches: Vec<Value> = Vec::new();
        let mut hits = 0;
        find_paths(&repo, s.tree, pattern, &mut |path, node| {
            if oldest.is_some_and(|o| node.mtime < o) || newest.is_some_and(|n| node.mtime > n) {
                return Ok(());
            }
            hits += 1;
            if g.json {
                let mut v = node_json(&path.to_string_lossy(), node);
                let m = v.as_object_mut().expect("object");
                for k in ["name", "struct_type", "message_type"] {
                    m.remove(k);
                }
                m.insert("user".into(), json!(node.user));
                m.insert("group".into(), json!(node.group));
                m.insert("links".into(), json!(node.links));
                matches.push(v);
                return Ok(());
            }
            if hits == 1 && !g.quiet {
                if !first {
                    writeln!(out).map_err(io)?;
                }
                first = false;
                writeln!(
                    out,
                    "Found matching entries in snapshot {} from {when}",
                    id.short()
                )
                .map_err(io)?;
            }
            let line = if a.long {
                long_line(path, node, a.human_readable)
            } else {
                path.display().to_string()
            };
            writeln!(out, "{line}").map_err(io)
        })?;
        if g.json && hits > 0 {
            results.push(json!({"matches": matches, "hits": hits, "snapshot": id.to_hex()}));
        }
    }
    if g.json {
        if a.show_pack_id && ids {
            for v in results.iter_mut() {
                let pack = v["id"]
                    .as_str()
                    .and_then(Id::from_hex)
                    .and_then(|id| repo.lookup(&id))
                    .map(|l| l.pack.to_hex());
                v["pack"] = json!(pack);
            }
        }
        writeln!(out, "{}", serde_json::to_string(&results).expect("json")).map_err(io)?;
    } else if a.show_pack_id && ids {
        for (id, kind) in &found {
            match repo.lookup(id) {
                Some(l) => {
                    let t = if *kind == "tree" { "tree" } else { "data" };
                    writeln!(out, "Object belongs to pack {}", l.pack).map_err(io)?;
                    writeln!(out, " ... Pack {}: <{t}/{}>", l.pack, id.short()).map_err(io)?;
                }
                None => writeln!(out, "Object {kind} {} not found in the index", id.short())
                    .map_err(io)?,
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(0)
}
