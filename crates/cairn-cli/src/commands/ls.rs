//! `cairn ls SNAPSHOT [DIR...]`: list a snapshot's nodes as restic's ls
//! does. Without DIR the whole tree; with DIR that directory and its
//! direct children (`--recursive`: everything below it). `--sort` and
//! `--reverse` order the listing (restic 0.17: `name` is the walk order,
//! depth first; other keys sort by that key, then by path).

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
    /// Include files in subfolders of the listed directories
    #[arg(long)]
    pub recursive: bool,
    /// Print sizes in human readable format (with --long)
    #[arg(long)]
    pub human_readable: bool,
    /// Sort output by name, size, time (= mtime), atime, ctime or extension
    #[arg(short = 's', long, value_name = "MODE", default_value = "name", value_parser = ["name", "size", "time", "mtime", "atime", "ctime", "extension"])]
    pub sort: String,
    /// Reverse the sorted output
    #[arg(long)]
    pub reverse: bool,
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
    let sorted = a.sort != "name" || a.reverse;
    let mut collected: Vec<(PathBuf, Node)> = Vec::new();
    let print = |out: &mut dyn Write, path: &Path, node: &Node| -> std::io::Result<()> {
        let shown = path.to_string_lossy();
        if g.json {
            writeln!(out, "{}", node_json(&shown, node))
        } else {
            writeln!(out, "{}", text_line(&shown, node, a.long, a.human_readable))
        }
    };
    let mut visitor = |path: &Path, node: &Node| -> cairn_repository::Result<Visit> {
        // restic's rule: a node inside a listed directory (or the directory
        // itself) is printed; the walk descends only into the listed
        // directories and the ones leading to them, unless --recursive.
        let within = prefixes.is_empty() || prefixes.iter().any(|p| path.starts_with(p));
        let approaching = prefixes.is_empty() || prefixes.iter().any(|p| p.starts_with(path));
        if within {
            if sorted {
                collected.push((path.to_path_buf(), node.clone()));
            } else {
                print(&mut out, path, node)
                    .map_err(|e| cairn_repository::Error::io(e, "writing to stdout"))?;
            }
            if a.recursive {
                return Ok(Visit::Continue);
            }
        }
        Ok(if approaching {
            Visit::Continue
        } else {
            Visit::SkipChildren
        })
    };
    tree_walk::walk(&repo, snap.tree, Path::new("/"), &mut visitor)?;
    if sorted {
        sort_nodes(&mut collected, &a.sort);
        if a.reverse {
            collected.reverse();
        }
        for (path, node) in &collected {
            print(&mut out, path, node)
                .map_err(|e| crate::error::Error::io(e, "writing to stdout"))?;
        }
    }
    out.flush()
        .map_err(|e| crate::error::Error::io(e, "writing to stdout"))?;
    Ok(0)
}

/// A file's size for sorting (restic: other nodes count as 0).
fn file_size(n: &Node) -> u64 {
    if n.kind == NodeKind::File {
        n.size
    } else {
        0
    }
}

/// The extension of a path's last element, dot included ("" if none), as Go's `filepath.Ext`.
fn extension(path: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    match name.iter().rposition(|&b| b == b'.') {
        Some(i) => &name[i..],
        None => b"",
    }
}

/// Order nodes by `mode` (not `name`, which keeps the walk order), ties by path.
fn sort_nodes(nodes: &mut [(PathBuf, Node)], mode: &str) {
    use std::os::unix::ffi::OsStrExt;
    let path = |p: &PathBuf| p.as_os_str().as_bytes().to_vec();
    match mode {
        "size" => nodes.sort_by_key(|a| (file_size(&a.1), path(&a.0))),
        "time" | "mtime" => nodes.sort_by_key(|a| (a.1.mtime, path(&a.0))),
        "atime" => nodes.sort_by_key(|a| (a.1.atime, path(&a.0))),
        "ctime" => nodes.sort_by_key(|a| (a.1.ctime, path(&a.0))),
        "extension" => nodes.sort_by_key(|a| (extension(&a.0).to_vec(), path(&a.0))),
        _ => {}
    }
}

/// One line of the text listing: the path, or with `long` mode, owner,
/// size (`human`: 1.500 KiB), mtime, path and a symlink's target.
fn text_line(shown: &str, node: &Node, long: bool, human: bool) -> String {
    if !long {
        return shown.to_string();
    }
    let owner = |name: &str, id: u32| {
        if name.is_empty() {
            id.to_string()
        } else {
            name.to_string()
        }
    };
    let size = if human {
        crate::output::bytes(node.size)
    } else {
        node.size.to_string()
    };
    let mut line = format!(
        "{} {:>8} {:>8} {:>12} {} {}",
        mode_string(node.kind, node.mode),
        owner(&node.user, node.uid),
        owner(&node.group, node.gid),
        size,
        time_ns(node.mtime).format("%Y-%m-%d %H:%M:%S"),
        shown
    );
    if node.kind == NodeKind::Symlink {
        if let Some(t) = &node.linktarget {
            line.push_str(&format!(" -> {}", t.to_string_lossy()));
        }
    }
    line
}
