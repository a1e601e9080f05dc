//! restic trees: JSON `{"nodes": [node, …]}`, one node per directory
//! entry, sorted by name.
//!
//! A node's fields as restic writes them (empty ones are omitted):
//! `name`, `type` (`file`, `dir`, `symlink`, `dev`, `chardev`, `fifo`,
//! `socket`), `mode` (Go's `os.FileMode`, see [`Node::posix_mode`]),
//! `mtime`/`atime`/`ctime` (RFC 3339 with nanoseconds), `uid`, `gid`,
//! `user`, `group`, `inode`, `device_id` (`st_dev`), `size`, `links`,
//! `linktarget` (and since restic 0.16 `linktarget_raw`, base64, when the
//! target is not UTF-8), `device` (`st_rdev`), `extended_attributes`
//! (`[{"name", "value": base64}]`), `content` (data blob ids) and
//! `subtree` (a directory's tree blob).
//!
//! **Names are escaped.** Not in the design document, but what restic does
//! (and must, since JSON strings cannot hold the bytes of a name that is
//! not UTF-8): `name` holds the name as Go's `strconv.Quote` writes it,
//! without the surrounding quotes: `\\` for a backslash, `\n` for a
//! newline, `\xe9` for a byte that is not UTF-8, `\u00a0` for an unprintable
//! character. [`Node::name_bytes`] undoes it. restic 0.14 writes symlink
//! targets unescaped, so a target that is not UTF-8 was stored with U+FFFD
//! in place of its bad bytes (restic cannot restore it either); later
//! versions add `linktarget_raw`.

use crate::error::{Error, Result};
use crate::snapshot::null_as_empty;
use crate::Id;
use base64::Engine as _;

#[derive(Clone, Debug, serde::Deserialize)]
pub struct Tree {
    #[serde(deserialize_with = "null_as_empty")]
    pub nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub mode: u32,
    pub mtime: chrono::DateTime<chrono::FixedOffset>,
    pub atime: chrono::DateTime<chrono::FixedOffset>,
    pub ctime: chrono::DateTime<chrono::FixedOffset>,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub device_id: u64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub links: u64,
    #[serde(default)]
    pub linktarget: String,
    #[serde(default)]
    pub linktarget_raw: Option<String>,
    #[serde(default)]
    pub device: u64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub extended_attributes: Vec<ExtendedAttribute>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content: Vec<Id>,
    #[serde(default)]
    pub subtree: Option<Id>,
}

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct ExtendedAttribute {
    pub name: String,
    /// base64 (Go's encoding of `[]byte`); `null` for an empty value.
    #[serde(default)]
    pub value: Option<String>,
}

// Go's os.FileMode bits (the permission bits are the low nine).
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_STICKY: u32 = 1 << 20;

impl Tree {
    pub fn parse(id: &Id, json: &[u8]) -> Result<Tree> {
        serde_json::from_slice(json)
            .map_err(|e| Error::corrupt(format!("restic tree {}", id.short()), e))
    }
}

/// Nanoseconds since the epoch; times outside ±292 years (Go's zero time,
/// year 1, for a time restic could not read) become 0.
pub fn nanos(t: &chrono::DateTime<chrono::FixedOffset>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(0)
}

impl Node {
    /// The POSIX `st_mode` (type and permission bits) from the node's type
    /// and Go's `os.FileMode`; `None` for a type POSIX has no bits for.
    pub fn posix_mode(&self) -> Option<u32> {
        let kind = match self.kind.as_str() {
            "file" => 0o100000,
            "dir" => 0o040000,
            "symlink" => 0o120000,
            "dev" => 0o060000,
            "chardev" => 0o020000,
            "fifo" => 0o010000,
            "socket" => 0o140000,
            _ => return None,
        };
        let mut m = kind | (self.mode & 0o777);
        if self.mode & GO_SETUID != 0 {
            m |= 0o4000;
        }
        if self.mode & GO_SETGID != 0 {
            m |= 0o2000;
        }
        if self.mode & GO_STICKY != 0 {
            m |= 0o1000;
        }
        Some(m)
    }

    /// The entry's name, exactly: `name` with restic's Go escapes undone.
    pub fn name_bytes(&self) -> Result<Vec<u8>> {
        go_unquote(&self.name).ok_or_else(|| {
            Error::corrupt(
                format!("restic node name {:?}", self.name),
                "not a valid Go-escaped string",
            )
        })
    }

    /// A symlink's target, exactly (`linktarget_raw` when restic wrote it).
    pub fn link_target(&self) -> Result<Vec<u8>> {
        match &self.linktarget_raw {
            Some(raw) => base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| Error::corrupt(format!("symlink {:?}", self.name), e)),
            None => Ok(self.linktarget.clone().into_bytes()),
        }
    }

    /// Extended attributes as (name, value) bytes.
    pub fn xattrs(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.extended_attributes
            .iter()
            .map(|x| {
                let value = match &x.value {
                    Some(v) => base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .map_err(|e| {
                            Error::corrupt(format!("xattr {} of {:?}", x.name, self.name), e)
                        })?,
                    None => Vec::new(),
                };
                Ok((x.name.clone().into_bytes(), value))
            })
            .collect()
    }
}

/// The bytes of a Go double-quoted string literal's inside (what
/// `strconv.Unquote` gives for `"` + `s` + `"`), or `None` if it is not one.
fn go_unquote(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let digits = |from: usize, n: usize, radix: u32| -> Option<u32> {
        let d = b.get(from..from + n)?;
        // Digits only: from_str_radix alone would take a sign.
        if !d.iter().all(|c| (*c as char).is_digit(radix)) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(d).ok()?, radix).ok()
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\n' {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1)?;
        i += 2;
        let simple = match e {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        match e {
            b'x' => {
                out.push(digits(i, 2, 16)? as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let v = digits(i - 1, 3, 8)?;
                if v > 255 {
                    return None;
                }
                out.push(v as u8);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let ch = char::from_u32(digits(i, n, 16)?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes as restic 0.14 wrote them (`restic cat blob`), plus an xattr.
    const TREE: &str = r#"{"nodes":[{"name":"a","type":"file","mode":420,"mtime":"2026-11-30T18:42:42.854644598Z","atime":"2026-11-30T18:42:42.854644598Z","ctime":"2026-11-30T18:42:42.866644598Z","uid":0,"gid":0,"user":"root","group":"root","inode":10018991,"device_id":65024,"size":6,"links":2,"content":["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"],"extended_attributes":[{"name":"user.x","value":"dmFs"},{"name":"user.e","value":null}]},{"name":"f","type":"fifo","mode":33554852,"mtime":"2026-11-30T18:42:42.862644598Z","atime":"2026-11-30T18:42:42.862644598Z","ctime":"2026-11-30T18:42:42.862644598Z","uid":0,"gid":0,"user":"root","group":"root","inode":10018993,"device_id":65024,"content":null},{"name":"l","type":"symlink","mode":134218239,"mtime":"2026-11-30T18:42:42.858644598Z","atime":"2026-11-30T18:42:42.858644598Z","ctime":"2026-11-30T18:42:42.858644598Z","uid":0,"gid":0,"user":"root","group":"root","inode":10018992,"device_id":65024,"links":1,"linktarget":"a","content":null},{"name":"sub","type":"dir","mode":2155872749,"mtime":"2026-11-30T18:42:42.854644598+01:00","atime":"0001-01-01T00:00:00Z","ctime":"2026-11-30T18:42:42.874644599Z","uid":1000,"gid":0,"inode":10018990,"device_id":65024,"content":null,"subtree":"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8"},{"name":"null","type":"chardev","mode":69206454,"mtime":"2026-11-30T18:42:42Z","atime":"2026-11-30T18:42:42Z","ctime":"2026-11-30T18:42:42Z","device":259,"content":null}]}"#;

    #[test]
    fn names_are_unescaped_as_go_quotes_them() {
        // What restic 0.14 stored for names the e2e tree has (seen with
        // `restic cat blob`), and what they are.
        for (stored, name) in [
            ("plain.txt", &b"plain.txt"[..]),
            ("back\\\\slash", b"back\\slash"),
            ("new\\nline", b"new\nline"),
            ("latin1-caf\\xe9.txt", b"latin1-caf\xe9.txt"),
            ("dir-\\xff\\xfe", b"dir-\xff\xfe"),
            (
                "\\a\\b\\f\\r\\t\\v\\\"q",
                b"\x07\x08\x0c\r\t\x0b\"q".as_slice(),
            ),
            ("oct\\101\\377", b"octA\xff"),
            ("nbsp\\u00a0\\U0001F600", "nbsp\u{a0}\u{1F600}".as_bytes()),
            ("日本語のファイル.txt", "日本語のファイル.txt".as_bytes()),
        ] {
            assert_eq!(go_unquote(stored).as_deref(), Some(name), "{stored}");
        }
        for bad in [
            "a\\",
            "a\\q",
            "\\x+1",
            "\\u+123",
            "a\\x4",
            "a\\xzz",
            "\\400",
            "a\"b",
            "\\ud800",
            "\\U00110000",
        ] {
            assert_eq!(go_unquote(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_restic_nodes() {
        let t = Tree::parse(&Id::sha256(b"t"), TREE.as_bytes()).unwrap();
        let [a, f, l, sub, null] = t.nodes.as_slice() else {
            panic!()
        };
        assert_eq!(a.posix_mode(), Some(0o100644));
        assert_eq!(
            (a.inode, a.device_id, a.links, a.size),
            (10018991, 65024, 2, 6)
        );
        assert_eq!(a.content.len(), 1);
        assert_eq!(
            a.xattrs().unwrap(),
            vec![
                (b"user.x".to_vec(), b"val".to_vec()),
                (b"user.e".to_vec(), vec![])
            ]
        );
        assert_eq!(nanos(&a.mtime), 1_796_064_162_854_644_598);
        assert_eq!(f.posix_mode(), Some(0o010644));
        assert_eq!(l.posix_mode(), Some(0o120777));
        assert_eq!(l.link_target().unwrap(), b"a");
        assert_eq!(sub.posix_mode(), Some(0o044755), "setuid from Go's bit 23");
        assert_eq!(nanos(&sub.mtime), nanos(&a.mtime) - 3_600_000_000_000);
        assert_eq!(nanos(&sub.atime), 0, "Go's zero time");
        assert_eq!(sub.uid, 1000);
        assert_eq!(null.posix_mode(), Some(0o020666));
        assert_eq!(null.device, 259);
        let mut raw = l.clone();
        raw.linktarget_raw = Some("//8=".into());
        assert_eq!(raw.link_target().unwrap(), [0xff, 0xff]);
        let mut odd = f.clone();
        odd.kind = "irregular".into();
        assert_eq!(odd.posix_mode(), None);
    }
}
