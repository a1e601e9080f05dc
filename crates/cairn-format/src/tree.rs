//! Tree blobs: one directory listing as JSON, `{"nodes": [...]}`, nodes sorted
//! by name (bytewise). Times are nanoseconds since the Unix epoch; `mode` is
//! the full POSIX `st_mode` (type and permission bits).

use crate::{FormatError, Id};
use base64::Engine;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("tree serializes")
    }
    pub fn from_bytes(b: &[u8]) -> Result<Tree, FormatError> {
        serde_json::from_slice(b).map_err(|e| FormatError::corrupt("tree", e))
    }
}

/// Builds a tree's bytes one node at a time: the same bytes as
/// [`Tree::to_bytes`] of the same nodes, without holding them all (a
/// directory of a million entries is then held once, as its bytes).
pub struct TreeWriter {
    buf: Vec<u8>,
    nodes: usize,
}

impl Default for TreeWriter {
    fn default() -> Self {
        TreeWriter {
            buf: br#"{"nodes":["#.to_vec(),
            nodes: 0,
        }
    }
}

impl TreeWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, node: &Node) {
        if self.nodes > 0 {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, node).expect("node serializes");
        self.nodes += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"]}");
        self.buf.shrink_to_fit();
        self.buf
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    /// Block device.
    Dev,
    Chardev,
    Fifo,
    Socket,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Dir => "dir",
            NodeKind::Symlink => "symlink",
            NodeKind::Dev => "dev",
            NodeKind::Chardev => "chardev",
            NodeKind::Fifo => "fifo",
            NodeKind::Socket => "socket",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub name: ByteString,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub mode: u32,
    pub mtime: i64,
    pub atime: i64,
    pub ctime: i64,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub device: u64,
    #[serde(default)]
    pub links: u64,
    /// Device number (`st_rdev`) of block and character devices.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linktarget: Option<ByteString>,
    /// File content: the data blobs, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// For a directory: its tree blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Node {
    pub fn new(name: impl Into<ByteString>, kind: NodeKind) -> Node {
        Node {
            name: name.into(),
            kind,
            mode: 0,
            mtime: 0,
            atime: 0,
            ctime: 0,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            size: 0,
            inode: 0,
            device: 0,
            links: 0,
            rdev: 0,
            linktarget: None,
            content: Vec::new(),
            subtree: None,
            xattrs: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Xattr {
    pub name: ByteString,
    /// Base64 (standard, padded).
    pub value: String,
}

impl Xattr {
    pub fn new(name: &[u8], value: &[u8]) -> Xattr {
        Xattr {
            name: ByteString(name.to_vec()),
            value: base64::engine::general_purpose::STANDARD.encode(value),
        }
    }
    pub fn value_bytes(&self) -> Result<Vec<u8>, FormatError> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.value)
            .map_err(|e| FormatError::corrupt("xattr", e))
    }
}

/// Bytes that are usually UTF-8 (file names, link targets). Serialized as a
/// JSON string when valid UTF-8, else as `{"b64": "<base64>"}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteString(pub Vec<u8>);

impl ByteString {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for ByteString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl From<&str> for ByteString {
    fn from(s: &str) -> Self {
        ByteString(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for ByteString {
    fn from(v: Vec<u8>) -> Self {
        ByteString(v)
    }
}

impl serde::Serialize for ByteString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "b64",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?;
                m.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for ByteString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Raw { b64: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(s) => Ok(ByteString(s.into_bytes())),
            Repr::Raw { b64 } => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(ByteString)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn non_utf8_names_roundtrip() {
        let mut n = Node::new(ByteString(vec![0x66, 0xff, 0x6f]), NodeKind::File);
        n.content = vec![Id::sha256(b"x")];
        let mut d = Node::new("dir", NodeKind::Dir);
        d.subtree = Some(Id::sha256(b"t"));
        let t = Tree { nodes: vec![n, d] };
        let b = t.to_bytes();
        assert!(String::from_utf8_lossy(&b).contains("\"b64\""));
        assert_eq!(Tree::from_bytes(&b).unwrap(), t);
        assert!(Tree::from_bytes(b"{\"nodes\": [1]}").is_err());
    }

    #[test]
    fn the_writer_gives_the_bytes_of_the_whole_tree() {
        let mut n = Node::new(ByteString(vec![0x66, 0xff, 0x6f]), NodeKind::File);
        n.content = vec![Id::sha256(b"x")];
        n.user = "root".into();
        let mut d = Node::new("d\"ir", NodeKind::Dir);
        d.subtree = Some(Id::sha256(b"t"));
        for nodes in [vec![], vec![n.clone()], vec![n, d]] {
            let mut w = TreeWriter::new();
            for node in &nodes {
                w.push(node);
            }
            assert_eq!(w.finish(), Tree { nodes }.to_bytes());
        }
    }
}
