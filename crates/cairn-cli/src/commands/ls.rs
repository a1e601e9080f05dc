use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::{json_line, mode_string, node_json, snapshot_json, time_ns};
use cairn_engine::tree_walk::{self, Visit};
use cairn_repository::format::tree::{Node, NodeKind};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id or "latest"
    pub snapshot: String,
    /// Only list these paths and what is below them
    #[arg(value_name = "PATH")]
    pub dirs: Vec<String>,
    /// Long listing: mode, owner, size, time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}
use crate::cli::SnapshotFilterArgs;

pub fn run(g: &GlobalOptions, a: LsArgs) -> Result<i32> {
    let repo = crate::repo::open_with_index(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &super::snapshot_filter(&a.filter))?;
    let prefixes: Vec<PathBuf> = a
        .dirs
        .iter()
        .map(|p| tree_walk::normalize(Path::new(p)))
        .collect();
    for p in &prefixes {
        // A path that is not in the snapshot is an error, not an empty listing.
        if p != Path::new("/") {
            tree_walk::find_node(&repo, snap.tree, p)?;
        }
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    if g.json {
        let mut v = snapshot_json(&id, &snap);
        v["struct_type"] = "snapshot".into();
        v["message_type"] = "snapshot".into();
        json_line(&v);
    } else if !g.quiet {
        let _ = writeln!(
            out,
            "snapshot {} of {:?} at {}:",
            id.short(),
            snap.paths,
            snap.time.with_timezone(&chrono::Local)
        );
    }
    let json = g.json;
    let long = a.long;
    let mut visitor = |path: &Path, node: &Node| -> cairn_repository::Result<Visit> {
        let inside = prefixes.is_empty() || prefixes.iter().any(|p| path.starts_with(p));
        if !inside {
            let on_the_way = prefixes.iter().any(|p| p.starts_with(path));
            return Ok(if on_the_way {
                Visit::Continue
            } else {
                Visit::SkipChildren
            });
        }
        let shown = path.to_string_lossy();
        let r = if json {
            writeln!(out, "{}", node_json(&shown, node))
        } else if long {
            let mut line = format!(
                "{} {:>8} {:>8} {:>12} {} {}",
                mode_string(node.kind, node.mode),
                if node.user.is_empty() {
                    node.uid.to_string()
                } else {
                    node.user.clone()
                },
                if node.group.is_empty() {
                    node.gid.to_string()
                } else {
                    node.group.clone()
                },
                node.size,
                time_ns(node.mtime).format("%Y-%m-%d %H:%M:%S"),
                shown
            );
            if node.kind == NodeKind::Symlink {
                if let Some(t) = &node.linktarget {
                    line.push_str(&format!(" -> {}", t.to_string_lossy()));
                }
            }
            writeln!(out, "{line}")
        } else {
            writeln!(out, "{shown}")
        };
        r.map_err(|e| cairn_repository::Error::io(e, "writing to stdout"))?;
        Ok(Visit::Continue)
    };
    tree_walk::walk(&repo, snap.tree, Path::new("/"), &mut visitor)?;
    out.flush()
        .map_err(|e| crate::error::Error::io(e, "writing to stdout"))?;
    Ok(0)
}
