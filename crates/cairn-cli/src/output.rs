//! Formatting shared by the commands: sizes, durations, JSON lines, and
//! the restic-compatible JSON shapes.

use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::tree::{Node, NodeKind};
use cairn_repository::format::Id;
use serde_json::{json, Value};

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3} {}", UNITS[u])
    }
}

pub fn duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// Print one JSON value on its own line.
pub fn json_line(v: &Value) {
    println!("{}", serde_json::to_string(v).expect("json"));
}

/// restic's word for what a backup did with a file, padded as restic's `-v` lines.
fn change_word(c: cairn_engine::archiver::FileChange) -> &'static str {
    use cairn_engine::archiver::FileChange::*;
    match c {
        New => "new",
        Modified => "modified",
        Unmodified => "unchanged",
    }
}

/// The `backup -v` listing (restic's): with `-v` each new and modified
/// file, with `-vv` every file; as `verbose_status` lines with `--json`.
/// `None` below `-v` or with `--quiet`.
pub fn backup_file_sink(g: &crate::cli::GlobalOptions) -> Option<cairn_engine::archiver::FileSink> {
    if g.verbose == 0 || g.quiet {
        return None;
    }
    let (all, json) = (g.verbose >= 2, g.json);
    Some(std::sync::Arc::new(
        move |path: &std::path::Path, change| {
            if change == cairn_engine::archiver::FileChange::Unmodified && !all {
                return;
            }
            let word = change_word(change);
            if json {
                json_line(&json!({
                    "message_type": "verbose_status",
                    "action": word,
                    "item": path.display().to_string(),
                }));
            } else {
                println!("{word:<9} {}", path.display());
            }
        },
    ))
}

/// A time as JSON output gives it: RFC 3339 in UTC, ending in `Z`, with
/// as many fractional digits as it has (0, 3, 6 or 9).
pub fn json_time<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>) -> String {
    t.with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A snapshot as restic's `snapshots --json` prints it (times in UTC).
pub fn snapshot_json(id: &Id, s: &Snapshot) -> Value {
    let mut v = serde_json::to_value(s).expect("snapshot json");
    let m = v.as_object_mut().unwrap();
    m.insert("time".into(), json!(json_time(&s.time)));
    if let (Some(sum), Some(Value::Object(out))) = (&s.summary, m.get_mut("summary")) {
        out.insert("backup_start".into(), json!(json_time(&sum.backup_start)));
        out.insert("backup_end".into(), json!(json_time(&sum.backup_end)));
    }
    m.remove("version");
    m.insert("id".into(), json!(id.to_hex()));
    m.insert("short_id".into(), json!(id.short()));
    v
}

pub fn time_ns(ns: i64) -> chrono::DateTime<chrono::Local> {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .with_timezone(&chrono::Local)
}

/// `-rwxr-xr-x` style permissions, with the type letter.
pub fn mode_string(kind: NodeKind, mode: u32) -> String {
    let t = match kind {
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'L',
        NodeKind::Dev => 'D',
        NodeKind::Chardev => 'c',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 'S',
        NodeKind::File => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let on = mode & bit != 0;
        let ch = match i {
            2 if mode & 0o4000 != 0 => {
                if on {
                    's'
                } else {
                    'S'
                }
            }
            5 if mode & 0o2000 != 0 => {
                if on {
                    's'
                } else {
                    'S'
                }
            }
            8 if mode & 0o1000 != 0 => {
                if on {
                    't'
                } else {
                    'T'
                }
            }
            _ if on => *c,
            _ => '-',
        };
        s.push(ch);
    }
    s
}

/// Go's os.FileMode bits, as restic writes `mode` in `ls --json`.
fn go_file_mode(kind: NodeKind, mode: u32) -> u64 {
    let mut m = (mode & 0o777) as u64;
    let t: u64 = match kind {
        NodeKind::Dir => 1 << 31,
        NodeKind::Symlink => 1 << 27,
        NodeKind::Dev => 1 << 26,
        NodeKind::Fifo => 1 << 25,
        NodeKind::Socket => 1 << 24,
        NodeKind::Chardev => (1 << 26) | (1 << 21),
        NodeKind::File => 0,
    };
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m | t
}

/// A node as restic's `ls --json` prints it.
pub fn node_json(path: &str, n: &Node) -> Value {
    let t = |ns: i64| json_time(&time_ns(ns));
    let mut v = json!({
        "name": n.name.to_string_lossy(),
        "type": n.kind.as_str(),
        "path": path,
        "uid": n.uid,
        "gid": n.gid,
        "mode": go_file_mode(n.kind, n.mode),
        "permissions": mode_string(n.kind, n.mode),
        "mtime": t(n.mtime),
        "atime": t(n.atime),
        "ctime": t(n.ctime),
        "inode": n.inode,
        "struct_type": "node",
        "message_type": "node",
    });
    let m = v.as_object_mut().unwrap();
    if n.kind == NodeKind::File {
        m.insert("size".into(), json!(n.size));
    }
    if let Some(l) = &n.linktarget {
        m.insert("linktarget".into(), json!(l.to_string_lossy()));
    }
    v
}
