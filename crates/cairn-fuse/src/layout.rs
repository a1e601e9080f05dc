//! The directories above the snapshots, as restic lays them out:
//!
//! ```text
//! /snapshots/<time>/...        every snapshot; `latest` → the newest
//! /ids/<short id>/...
//! /hosts/<host>/<time>/...     and `latest` in each host
//! /tags/<tag>/<time>/...       and `latest` in each tag
//! ```
//!
//! `<time>` is the snapshot's time written with the time template (see
//! [`crate::timefmt`]); a `/` in it makes nested directories. Within one
//! listing, names are unique: snapshots are taken oldest first (ties by
//! id) and a name already used gets `-1`, `-2`, ... appended, so the same
//! set of snapshots always gives the same names. `latest` is reserved.
//!
//! A [`Layout`] is immutable; a refresh builds a new one. Nodes are kept
//! in one vector, the root at index 0.

use crate::timefmt;
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use std::collections::BTreeMap;

/// One entry of the layout.
#[derive(Clone, Debug, PartialEq)]
pub enum VNode {
    /// A directory: its entries by name, and its time (the newest snapshot
    /// below it, in nanoseconds since the epoch).
    Dir {
        children: BTreeMap<Vec<u8>, usize>,
        mtime: i64,
    },
    /// A snapshot's root directory: an index into [`Layout::snapshots`].
    Snapshot(usize),
    /// A symlink (`latest`), with its target.
    Link { target: Vec<u8>, mtime: i64 },
}

#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The snapshots shown, oldest first.
    pub snapshots: Vec<(Id, Snapshot)>,
    pub nodes: Vec<VNode>,
}

pub const LATEST: &[u8] = b"latest";

/// Nanoseconds since the epoch of a snapshot time (saturating).
pub fn time_ns(s: &Snapshot) -> i64 {
    s.time
        .timestamp_nanos_opt()
        .unwrap_or(if s.time.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// A name usable as one path component: no `/`, no NUL, not empty, `.`
/// or `..`.
fn component(s: &str) -> Vec<u8> {
    let b: Vec<u8> = s
        .bytes()
        .map(|c| if c == b'/' || c == 0 { b'_' } else { c })
        .collect();
    match b.as_slice() {
        b"" | b"." | b".." => [b"_".as_slice(), &b].concat(),
        _ => b,
    }
}

/// The path components a time template gives for `s`.
fn time_path(s: &Snapshot, id: &Id, template: &str) -> Vec<Vec<u8>> {
    let name = timefmt::format(&s.time, template);
    let parts: Vec<Vec<u8>> = name
        .split('/')
        .filter(|p| !p.is_empty())
        .map(component)
        .collect();
    if parts.is_empty() {
        vec![id.short().into_bytes()]
    } else {
        parts
    }
}

impl Layout {
    /// The layout of `snapshots` (any order; they are sorted here).
    pub fn build(mut snapshots: Vec<(Id, Snapshot)>, template: &str) -> Layout {
        snapshots.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        let mut l = Layout {
            snapshots: Vec::new(),
            nodes: vec![VNode::Dir {
                children: BTreeMap::new(),
                mtime: 0,
            }],
        };
        let top: Vec<usize> = ["snapshots", "ids", "hosts", "tags"]
            .iter()
            .map(|n| l.dir_at(0, n.as_bytes()))
            .collect();
        let (all, ids, hosts, tags) = (top[0], top[1], top[2], top[3]);
        for (k, (id, s)) in snapshots.iter().enumerate() {
            let path = time_path(s, id, template);
            let t = time_ns(s);
            l.add_unique(all, &path, k, t);
            l.add_unique(ids, &[id.short().into_bytes()], k, t);
            let host = l.dir_at(hosts, &component(&s.hostname));
            l.add_unique(host, &path, k, t);
            let mut seen: Vec<&String> = Vec::new();
            for tag in &s.tags {
                if seen.contains(&tag) {
                    continue;
                }
                seen.push(tag);
                let d = l.dir_at(tags, &component(tag));
                l.add_unique(d, &path, k, t);
            }
        }
        l.snapshots = snapshots;
        // `latest` in every listing of snapshots by time.
        let mut listings = vec![all];
        for parent in [hosts, tags] {
            if let VNode::Dir { children, .. } = &l.nodes[parent] {
                listings.extend(children.values().copied());
            }
        }
        for d in listings {
            if let Some((target, mtime)) = l.newest_in(d) {
                l.insert(d, LATEST.to_vec(), VNode::Link { target, mtime });
            }
        }
        l
    }

    /// The directory `name` in `dir`, created if missing.
    fn dir_at(&mut self, dir: usize, name: &[u8]) -> usize {
        if let Some(i) = self.child(dir, name) {
            return i;
        }
        self.insert(
            dir,
            name.to_vec(),
            VNode::Dir {
                children: BTreeMap::new(),
                mtime: 0,
            },
        )
    }

    fn insert(&mut self, dir: usize, name: Vec<u8>, node: VNode) -> usize {
        let i = self.nodes.len();
        self.nodes.push(node);
        match &mut self.nodes[dir] {
            VNode::Dir { children, .. } => {
                children.insert(name, i);
            }
            _ => unreachable!("inserting into a directory"),
        }
        i
    }

    pub fn child(&self, dir: usize, name: &[u8]) -> Option<usize> {
        match &self.nodes[dir] {
            VNode::Dir { children, .. } => children.get(name).copied(),
            _ => None,
        }
    }

    /// Can `path` below `dir` hold a new snapshot (every prefix absent or
    /// a directory, the last component absent and not reserved)?
    fn free(&self, dir: usize, path: &[Vec<u8>]) -> bool {
        if path.len() == 1 && path[0] == LATEST {
            return false;
        }
        let mut at = dir;
        for (n, name) in path.iter().enumerate() {
            match self.child(at, name) {
                None => return true,
                Some(i) if n + 1 < path.len() && matches!(self.nodes[i], VNode::Dir { .. }) => {
                    at = i
                }
                Some(_) => return false,
            }
        }
        false
    }

    /// Add snapshot `k` at `path` below `dir`, or at `path` with `-1`,
    /// `-2`, ... appended to its last component when taken.
    fn add_unique(&mut self, dir: usize, path: &[Vec<u8>], k: usize, time: i64) {
        let mut path = path.to_vec();
        if path.len() > 1 && path[0] == LATEST {
            // A directory cannot share the name of the `latest` link.
            path[0] = b"_latest".to_vec();
        }
        let mut candidate = path.clone();
        let mut n = 1;
        while !self.free(dir, &candidate) {
            let last = candidate.len() - 1;
            candidate[last] = [&path[last][..], format!("-{n}").as_bytes()].concat();
            n += 1;
        }
        let mut at = dir;
        self.touch(at, time);
        for name in &candidate[..candidate.len() - 1] {
            at = self.dir_at(at, name);
            self.touch(at, time);
        }
        let last = candidate.last().expect("a path has a component").clone();
        self.insert(at, last, VNode::Snapshot(k));
    }

    fn touch(&mut self, dir: usize, time: i64) {
        if let VNode::Dir { mtime, .. } = &mut self.nodes[dir] {
            *mtime = (*mtime).max(time);
        }
        if let VNode::Dir { mtime, .. } = &mut self.nodes[0] {
            *mtime = (*mtime).max(time);
        }
    }

    /// The relative path to the newest snapshot below `dir`, and its time.
    fn newest_in(&self, dir: usize) -> Option<(Vec<u8>, i64)> {
        let mut best: Option<(usize, Vec<u8>)> = None;
        let mut stack = vec![(dir, Vec::new())];
        while let Some((d, prefix)) = stack.pop() {
            let VNode::Dir { children, .. } = &self.nodes[d] else {
                continue;
            };
            for (name, &i) in children {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    [&prefix[..], b"/", name].concat()
                };
                match self.nodes[i] {
                    VNode::Dir { .. } => stack.push((i, path)),
                    // Snapshots are numbered oldest first.
                    VNode::Snapshot(k) if best.as_ref().is_none_or(|(b, _)| k > *b) => {
                        best = Some((k, path))
                    }
                    _ => {}
                }
            }
        }
        best.map(|(k, path)| (path, time_ns(&self.snapshots[k].1)))
    }

    /// The node at a path of names from the root.
    pub fn resolve(&self, path: &[Vec<u8>]) -> Option<usize> {
        let mut at = 0;
        for name in path {
            at = self.child(at, name)?;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_repository::format::snapshot::SNAPSHOT_VERSION;

    fn snap(time: &str, host: &str, tags: &[&str]) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            time: chrono::DateTime::parse_from_rfc3339(time).unwrap(),
            tree: Id::default(),
            paths: vec!["/data".into()],
            hostname: host.into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            excludes: vec![],
            parent: None,
            original: None,
            program_version: String::new(),
            summary: None,
        }
    }

    fn names(l: &Layout, path: &[&str]) -> Vec<String> {
        let p: Vec<Vec<u8>> = path.iter().map(|s| s.as_bytes().to_vec()).collect();
        match &l.nodes[l.resolve(&p).unwrap()] {
            VNode::Dir { children, .. } => children
                .keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn link(l: &Layout, path: &[&str]) -> String {
        let p: Vec<Vec<u8>> = path.iter().map(|s| s.as_bytes().to_vec()).collect();
        match &l.nodes[l.resolve(&p).unwrap()] {
            VNode::Link { target, .. } => String::from_utf8_lossy(target).into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restic_layout_with_unique_deterministic_names() {
        let same = "2024-01-02T03:04:05Z";
        let snaps = vec![
            (Id([3; 32]), snap(same, "b", &["x"])),
            (Id([1; 32]), snap(same, "a", &["x", "y", "x"])),
            (Id([2; 32]), snap("2024-02-01T00:00:00+01:00", "a/b", &[])),
            (Id([4; 32]), snap(same, "a", &[])),
        ];
        let mut reversed = snaps.clone();
        reversed.reverse();
        for input in [snaps, reversed] {
            let l = Layout::build(input, timefmt::DEFAULT_TEMPLATE);
            assert_eq!(names(&l, &[]), ["hosts", "ids", "snapshots", "tags"]);
            // Equal times: ordered by id, suffixed in that order.
            assert_eq!(
                names(&l, &["snapshots"]),
                [
                    "2024-01-02T03:04:05Z",
                    "2024-01-02T03:04:05Z-1",
                    "2024-01-02T03:04:05Z-2",
                    "2024-02-01T00:00:00+01:00",
                    "latest"
                ]
            );
            let p = |name: &str| vec![b"snapshots".to_vec(), name.as_bytes().to_vec()];
            let k = |name: &str| match l.nodes[l.resolve(&p(name)).unwrap()] {
                VNode::Snapshot(k) => l.snapshots[k].0,
                _ => panic!(),
            };
            assert_eq!(k("2024-01-02T03:04:05Z"), Id([1; 32]));
            assert_eq!(k("2024-01-02T03:04:05Z-1"), Id([3; 32]));
            assert_eq!(k("2024-01-02T03:04:05Z-2"), Id([4; 32]));
            assert_eq!(
                link(&l, &["snapshots", "latest"]),
                "2024-02-01T00:00:00+01:00"
            );
            assert_eq!(
                names(&l, &["ids"]),
                ["01010101", "02020202", "03030303", "04040404"]
            );
            assert_eq!(names(&l, &["hosts"]), ["a", "a_b", "b"]);
            assert_eq!(
                names(&l, &["hosts", "a"]),
                ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z-1", "latest"]
            );
            assert_eq!(
                link(&l, &["hosts", "a", "latest"]),
                "2024-01-02T03:04:05Z-1"
            );
            assert_eq!(names(&l, &["tags"]), ["x", "y"]);
            assert_eq!(
                names(&l, &["tags", "x"]),
                ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z-1", "latest"]
            );
        }
    }

    #[test]
    fn slashes_in_the_template_nest_and_latest_is_reserved() {
        let snaps = vec![
            (Id([1; 32]), snap("2024-01-02T03:04:05Z", "h", &[])),
            (Id([2; 32]), snap("2024-01-03T03:04:05Z", "h", &[])),
        ];
        let l = Layout::build(snaps, "2006/01/02");
        assert_eq!(names(&l, &["snapshots", "2024", "01"]), ["02", "03"]);
        assert_eq!(link(&l, &["snapshots", "latest"]), "2024/01/03");
        let l = Layout::build(
            vec![(Id([1; 32]), snap("2024-01-02T03:04:05Z", "h", &[]))],
            "latest",
        );
        assert_eq!(names(&l, &["snapshots"]), ["latest", "latest-1"]);
        assert_eq!(link(&l, &["snapshots", "latest"]), "latest-1");
        let l = Layout::build(
            vec![(Id([1; 32]), snap("2024-01-02T03:04:05Z", "h", &[]))],
            "latest/2006",
        );
        assert_eq!(names(&l, &["snapshots"]), ["_latest", "latest"]);
        assert_eq!(link(&l, &["snapshots", "latest"]), "_latest/2024");
    }
}
