//! The test vectors of `repo-format.md` §13, checked against the code.
//!
//! The vectors are read from the document itself (fenced blocks opened by
//! ```` ```vector name=<name> format=<hex|json|text> ````), so document and
//! code cannot drift apart:
//! - [`document_matches_the_code`]: from the documented inputs (keys,
//!   nonces, plaintexts, structures built here), the code writes every
//!   documented byte, and the document holds exactly the vectors built here;
//! - the other tests read the documented bytes with the code (unlock, open,
//!   parse) and check the spec's claims that the vectors illustrate.
//!
//! Two vectors hold zstd output (`blob-zstd-encoded` and the frame inside
//! `snapshot-sealed`). Another zstd version may compress differently, and
//! any frame that decodes is valid, so those frames are taken from the
//! document and checked by decoding them, not by compressing again.
//!
//! To print the vectors as the document should hold them (after a
//! deliberate format change, which also bumps a version):
//! `CAIRN_PRINT_VECTORS=1 cargo test -p cairn-format --test vectors print_vectors -- --nocapture`.

use base64::Engine;
use cairn_format::chunker::{Chunker, ChunkerParams, GEAR};
use cairn_format::config::Config;
use cairn_format::crypto::{decode, encode, Cipher, KdfParams, MasterKey};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::keyfile::KeyFile;
use cairn_format::pack::{self, PackEntry, PackWriter};
use cairn_format::snapshot::{Snapshot, SnapshotSummary};
use cairn_format::tree::{ByteString, Node, NodeKind, Tree, Xattr};
use cairn_format::{BlobKind, FormatError, Id};
use std::collections::BTreeMap;

const SPEC: &str = include_str!("../../../repo-format.md");

// ---- The documented inputs -------------------------------------------------

const PASSWORD: &str = "pässword";
const SALT: [u8; 32] = [0x01; 32];
const KDF: KdfParams = KdfParams {
    log_n: 10,
    r: 8,
    p: 1,
};
const NONCE_KEY: [u8; 24] = [0x10; 24];
const NONCE_CONFIG: [u8; 24] = [0x11; 24];
const NONCE_BLOB_RAW: [u8; 24] = [0x12; 24];
const NONCE_BLOB_ZSTD: [u8; 24] = [0x13; 24];
const NONCE_PACK_HEADER: [u8; 24] = [0x14; 24];
const NONCE_INDEX: [u8; 24] = [0x15; 24];
const NONCE_SNAPSHOT: [u8; 24] = [0x16; 24];
/// Above 2^63 on purpose: a reader parsing JSON numbers as i64 or f64 fails.
const CHUNKER_SEED: u64 = 0xfedc_ba98_7654_3210;
const BLOB_RAW: &[u8] = b"hello cairn\n";
/// The input of the chunk-boundary vectors: the BLAKE3 extendable output
/// of these bytes (unkeyed), as long as needed.
const CHUNKER_INPUT_KEY: &[u8] = b"cairn chunker test vector";
/// Small sizes, so the first vector has many chunks in a short input.
const CHUNKER_SMALL: ChunkerParams = ChunkerParams {
    min_size: 1024,
    avg_size: 4096,
    max_size: 16384,
};
/// When prune marked the second pack of the index vector (2025-12-01T00:00:00Z).
const MARKED_AT: i64 = 1_764_547_200;

fn master() -> MasterKey {
    let mut k = MasterKey {
        data_key: [0; 32],
        id_key: [0; 32],
        chunker_seed: CHUNKER_SEED,
    };
    for i in 0..32 {
        k.data_key[i] = i as u8;
        k.id_key[i] = 0x20 + i as u8;
    }
    k
}

fn blob_zstd_plaintext() -> Vec<u8> {
    BLOB_RAW.repeat(8)
}

fn ts(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap()
}

/// The file `/srv/hello.txt` and its hard link `/srv/hello-link.txt`.
fn hello_node(name: &str) -> Node {
    let mut n = Node::new(name, NodeKind::File);
    n.mode = 0o100644;
    n.mtime = 1_764_097_200_123_456_789;
    n.atime = 1_764_100_800_000_000_000;
    n.ctime = 1_764_097_200_123_456_789;
    n.uid = 1000;
    n.gid = 1000;
    n.user = "alice".into();
    n.group = "alice".into();
    n.size = (BLOB_RAW.len() + blob_zstd_plaintext().len()) as u64;
    n.inode = 12;
    n.device = 2049;
    n.links = 2;
    n.content = vec![
        master().blob_id(BLOB_RAW),
        master().blob_id(&blob_zstd_plaintext()),
    ];
    n.xattrs = vec![Xattr::new(b"user.comment", b"hi\n")];
    n
}

/// The listing of `/srv`: one node of each interesting kind, sorted bytewise.
fn srv_tree() -> Tree {
    let k = master();
    let common = |n: &mut Node, mode: u32, inode: u64| {
        n.mode = mode;
        n.mtime = 1_764_010_800_000_000_000;
        n.atime = 1_764_010_800_000_000_000;
        n.ctime = 1_764_010_800_000_000_000;
        n.uid = 1000;
        n.gid = 1000;
        n.user = "alice".into();
        n.group = "alice".into();
        n.inode = inode;
        n.device = 2049;
        n.links = 1;
    };
    let mut readme = Node::new("README", NodeKind::File);
    common(&mut readme, 0o100644, 10);
    let mut fifo = Node::new(ByteString(b"caf\xe9".to_vec()), NodeKind::Fifo);
    common(&mut fifo, 0o10600, 11);
    let mut docs = Node::new("docs", NodeKind::Dir);
    common(&mut docs, 0o40755, 13);
    docs.links = 2;
    docs.subtree = Some(k.blob_id(&Tree::default().to_bytes()));
    let mut link = Node::new("link", NodeKind::Symlink);
    common(&mut link, 0o120777, 14);
    link.linktarget = Some("hello.txt".into());
    let mut null = Node::new("null", NodeKind::Chardev);
    common(&mut null, 0o20666, 15);
    (null.uid, null.gid) = (0, 0);
    null.user = "root".into();
    null.group = "root".into();
    null.rdev = 259; // major 1, minor 3, as Linux packs a dev_t
    Tree {
        nodes: vec![
            readme,
            fifo,
            docs,
            hello_node("hello-link.txt"),
            hello_node("hello.txt"),
            link,
            null,
        ],
    }
}

fn root_tree() -> Tree {
    let mut srv = Node::new("srv", NodeKind::Dir);
    srv.mode = 0o40755;
    srv.mtime = 1_764_010_800_000_000_000;
    srv.atime = srv.mtime;
    srv.ctime = srv.mtime;
    srv.user = "root".into();
    srv.group = "root".into();
    srv.inode = 2;
    srv.device = 2049;
    srv.links = 3;
    srv.subtree = Some(master().blob_id(&srv_tree().to_bytes()));
    Tree { nodes: vec![srv] }
}

fn snapshot() -> Snapshot {
    Snapshot {
        version: 1,
        time: ts("2026-11-25T20:00:00.123456789+01:00"),
        tree: master().blob_id(&root_tree().to_bytes()),
        paths: vec!["/srv".into()],
        hostname: "example".into(),
        username: "alice".into(),
        uid: 1000,
        gid: 1000,
        tags: vec!["daily".into()],
        excludes: vec!["*.tmp".into()],
        parent: None,
        original: None,
        program_version: "cairn 0.1.0".into(),
        summary: Some(SnapshotSummary {
            backup_start: ts("2026-11-25T20:00:00.123456789+01:00"),
            backup_end: ts("2026-11-25T20:00:01.5+01:00"),
            files_new: 5,
            dirs_new: 3,
            data_blobs: 2,
            tree_blobs: 3,
            data_added: 108,
            data_added_packed: 136,
            total_files_processed: 5,
            total_bytes_processed: 216,
            ..Default::default()
        }),
    }
}

fn config() -> Config {
    let mut id = [0u8; 32];
    for (i, b) in id.iter_mut().enumerate() {
        *b = 0x40 + i as u8;
    }
    Config {
        version: 1,
        id: Id(id),
        chunker: ChunkerParams::DEFAULT,
    }
}

fn chunker_input(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new()
        .update(CHUNKER_INPUT_KEY)
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The chunk lengths the chunker gives for `input` with the documented seed.
fn chunk_lengths(params: ChunkerParams, input: &[u8]) -> Vec<usize> {
    let chunker = Chunker::new(params, CHUNKER_SEED);
    let mut stream = chunker.stream(input, None);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        out.push(chunk.len());
    }
    out
}

/// Chunk lengths as the document writes them: decimal, eight to a line.
fn lengths_text(lengths: &[usize]) -> Vec<u8> {
    lengths
        .chunks(8)
        .map(|line| {
            let words: Vec<String> = line.iter().map(usize::to_string).collect();
            words.join(" ") + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

fn seal(nonce: &[u8; 24], encoded: &[u8]) -> Vec<u8> {
    master().cipher().seal_encoded_with_nonce(encoded, nonce)
}

/// An object a writer sealed under a random nonce, sealed again under
/// `nonce`: the same encoded plaintext, reproducible bytes.
fn reseal(sealed: &[u8], nonce: &[u8; 24]) -> Vec<u8> {
    seal(nonce, &master().cipher().open_encoded(sealed).unwrap())
}

/// The pack of the two data blobs, whose sealed forms are given.
fn pack_entries(raw_sealed: &[u8], zstd_sealed: &[u8]) -> Vec<PackEntry> {
    let k = master();
    vec![
        PackEntry {
            kind: BlobKind::Data,
            id: k.blob_id(BLOB_RAW),
            offset: 0,
            length: raw_sealed.len() as u32,
            raw_length: BLOB_RAW.len() as u32,
        },
        PackEntry {
            kind: BlobKind::Data,
            id: k.blob_id(&blob_zstd_plaintext()),
            offset: raw_sealed.len() as u32,
            length: zstd_sealed.len() as u32,
            raw_length: blob_zstd_plaintext().len() as u32,
        },
    ]
}

fn index_file(pack_id: Id, entries: Vec<PackEntry>) -> IndexFile {
    let empty_tree = Tree::default().to_bytes();
    IndexFile {
        packs: vec![
            IndexPack::live(pack_id, entries),
            IndexPack {
                id: Id([0xee; 32]),
                marked: Some(MARKED_AT),
                blobs: vec![PackEntry {
                    kind: BlobKind::Tree,
                    id: master().blob_id(&empty_tree),
                    offset: 0,
                    length: (empty_tree.len() + 41) as u32,
                    raw_length: empty_tree.len() as u32,
                }],
            },
        ],
    }
}

// ---- Building every vector --------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Hex digits; whitespace is ignored.
    Hex,
    /// Compact JSON broken into lines for reading; the bytes are the lines
    /// joined with nothing between them.
    Json,
    /// The lines, each ended by a newline.
    Text,
}

impl Format {
    fn parse(s: &str) -> Format {
        match s {
            "hex" => Format::Hex,
            "json" => Format::Json,
            "text" => Format::Text,
            other => panic!("repo-format.md: unknown vector format {other:?}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Format::Hex => "hex",
            Format::Json => "json",
            Format::Text => "text",
        }
    }
}

/// Every vector, in document order, as the code writes it. The zstd frames
/// (encoding byte first) are inputs: see the module docs.
fn build(
    blob_zstd_encoded: &[u8],
    snapshot_encoded: &[u8],
) -> Vec<(&'static str, Format, Vec<u8>)> {
    let k = master();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();

    let master_json = serde_json::to_vec(&k).unwrap();
    out.push(("master-key", Format::Json, master_json.clone()));
    out.push(("password", Format::Hex, PASSWORD.as_bytes().to_vec()));
    let kek = KDF.derive(PASSWORD.as_bytes(), &SALT).unwrap();
    out.push(("kek", Format::Hex, kek.to_vec()));
    let key_file = KeyFile {
        version: 1,
        created: "2026-11-25T19:00:00Z".parse().unwrap(),
        hostname: "example".into(),
        username: "alice".into(),
        kdf: "scrypt".into(),
        params: KDF,
        salt: b64.encode(SALT),
        data: b64.encode(
            Cipher::new(&kek).seal_encoded_with_nonce(&encode(&master_json, None), &NONCE_KEY),
        ),
    };
    out.push(("keyfile", Format::Text, key_file.to_bytes()));

    let config_json = to_json(&config());
    out.push(("config", Format::Json, config_json.clone()));
    out.push((
        "config-sealed",
        Format::Hex,
        reseal(&config().seal(&k.cipher()), &NONCE_CONFIG),
    ));

    let raw_sealed = seal(&NONCE_BLOB_RAW, &encode(BLOB_RAW, None));
    out.push(("blob-raw-plaintext", Format::Hex, BLOB_RAW.to_vec()));
    out.push(("blob-raw-id", Format::Hex, k.blob_id(BLOB_RAW).0.to_vec()));
    out.push(("blob-raw-sealed", Format::Hex, raw_sealed.clone()));

    let zstd_plain = blob_zstd_plaintext();
    let zstd_sealed = seal(&NONCE_BLOB_ZSTD, blob_zstd_encoded);
    out.push(("blob-zstd-plaintext", Format::Hex, zstd_plain.clone()));
    out.push((
        "blob-zstd-id",
        Format::Hex,
        k.blob_id(&zstd_plain).0.to_vec(),
    ));
    out.push(("blob-zstd-encoded", Format::Hex, blob_zstd_encoded.to_vec()));
    out.push(("blob-zstd-sealed", Format::Hex, zstd_sealed.clone()));

    // The pack as PackWriter lays it out, with the header that
    // `pack::header_bytes` writes sealed again under the documented nonce
    // (it draws a random one).
    let entries = pack_entries(&raw_sealed, &zstd_sealed);
    let trailed = pack::header_bytes(&k.cipher(), &entries);
    let header = k
        .cipher()
        .open_encoded(&trailed[..trailed.len() - 4])
        .unwrap();
    let sealed_header = seal(&NONCE_PACK_HEADER, &header);
    let mut pack_bytes = [raw_sealed.as_slice(), &zstd_sealed, &sealed_header].concat();
    pack_bytes.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
    let pack_id = Id::sha256(&pack_bytes);
    out.push(("pack-header-encoded", Format::Hex, header));
    out.push(("pack", Format::Hex, pack_bytes));
    out.push(("pack-id", Format::Hex, pack_id.0.to_vec()));

    let index_data = index_file(pack_id, entries).encode();
    let index_sealed = seal(&NONCE_INDEX, &encode(&index_data, None));
    out.push(("index-data", Format::Hex, index_data));
    out.push(("index-sealed", Format::Hex, index_sealed.clone()));
    out.push((
        "index-id",
        Format::Hex,
        Id::sha256(&index_sealed).0.to_vec(),
    ));

    for (name, id_name, tree) in [
        ("tree-empty", "tree-empty-id", Tree::default()),
        ("tree", "tree-id", srv_tree()),
        ("tree-root", "tree-root-id", root_tree()),
    ] {
        let bytes = tree.to_bytes();
        let id = k.blob_id(&bytes);
        out.push((name, Format::Json, bytes));
        out.push((id_name, Format::Hex, id.0.to_vec()));
    }

    let snapshot_sealed = seal(&NONCE_SNAPSHOT, snapshot_encoded);
    out.push(("snapshot", Format::Json, to_json(&snapshot())));
    out.push(("snapshot-sealed", Format::Hex, snapshot_sealed.clone()));
    out.push((
        "snapshot-id",
        Format::Hex,
        Id::sha256(&snapshot_sealed).0.to_vec(),
    ));

    let gear: Vec<u8> = GEAR.iter().flat_map(|g| g.to_be_bytes()).collect();
    out.push(("chunker-gear", Format::Hex, gear));
    out.push(("chunker-input-head", Format::Hex, chunker_input(64)));
    out.push((
        "chunker-cuts-small",
        Format::Text,
        lengths_text(&chunk_lengths(CHUNKER_SMALL, &chunker_input(256 << 10))),
    ));
    out.push((
        "chunker-cuts-default",
        Format::Text,
        lengths_text(&chunk_lengths(
            ChunkerParams::DEFAULT,
            &chunker_input(16 << 20),
        )),
    ));
    out
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

// ---- Reading the document ---------------------------------------------------

struct Vector {
    format: Format,
    bytes: Vec<u8>,
}

fn doc() -> BTreeMap<String, Vector> {
    let mut out = BTreeMap::new();
    let mut lines = SPEC.lines().enumerate();
    while let Some((no, line)) = lines.next() {
        let Some(attrs) = line.strip_prefix("```vector ") else {
            continue;
        };
        let mut name = None;
        let mut format = None;
        for a in attrs.split_whitespace() {
            match a.split_once('=') {
                Some(("name", v)) => name = Some(v.to_string()),
                Some(("format", v)) => format = Some(Format::parse(v)),
                _ => panic!("repo-format.md line {}: bad vector attribute {a:?}", no + 1),
            }
        }
        let name = name.unwrap_or_else(|| panic!("repo-format.md line {}: no name", no + 1));
        let format = format.unwrap_or_else(|| panic!("vector {name}: no format"));
        let mut body = Vec::new();
        loop {
            let (_, l) = lines
                .next()
                .unwrap_or_else(|| panic!("vector {name}: no closing fence"));
            if l == "```" {
                break;
            }
            body.push(l);
        }
        let bytes = match format {
            Format::Hex => {
                let digits: String = body.concat().split_whitespace().collect();
                hex::decode(&digits).unwrap_or_else(|e| panic!("vector {name}: {e}"))
            }
            Format::Json => body.concat().into_bytes(),
            Format::Text => body
                .iter()
                .flat_map(|l| [*l, "\n"])
                .collect::<String>()
                .into_bytes(),
        };
        let old = out.insert(name.clone(), Vector { format, bytes });
        assert!(old.is_none(), "repo-format.md: two vectors named {name}");
    }
    out
}

fn bytes<'a>(doc: &'a BTreeMap<String, Vector>, name: &str) -> &'a [u8] {
    &doc.get(name)
        .unwrap_or_else(|| panic!("repo-format.md has no vector {name}"))
        .bytes
}

/// The zstd-dependent inputs of [`build`], taken from the document.
fn documented_frames(doc: &BTreeMap<String, Vector>) -> (Vec<u8>, Vec<u8>) {
    let snapshot_encoded = master()
        .cipher()
        .open_encoded(bytes(doc, "snapshot-sealed"))
        .expect("snapshot-sealed opens under the documented data_key");
    (bytes(doc, "blob-zstd-encoded").to_vec(), snapshot_encoded)
}

// ---- Writing: the code produces the document's bytes ------------------------

#[test]
fn document_matches_the_code() {
    let doc = doc();
    let (zstd, snap) = documented_frames(&doc);
    let built = build(&zstd, &snap);
    let built_names: Vec<&str> = built.iter().map(|v| v.0).collect();
    let doc_names: Vec<&str> = doc.keys().map(String::as_str).collect();
    let mut sorted = built_names.clone();
    sorted.sort_unstable();
    assert_eq!(
        doc_names, sorted,
        "repo-format.md must hold exactly the vectors this test builds"
    );
    for (name, format, want) in &built {
        let got = &doc[*name];
        assert_eq!(got.format, *format, "vector {name}: format");
        assert!(
            got.bytes == *want,
            "vector {name} differs from what the code writes:\n document: {}\n code:     {}",
            show(*format, &got.bytes),
            show(*format, want),
        );
    }
}

fn show(format: Format, b: &[u8]) -> String {
    match format {
        Format::Hex => hex::encode(b),
        _ => String::from_utf8_lossy(b).into_owned(),
    }
}

/// What [`PackWriter`] writes matches the pack vector, except the header's
/// random nonce: the header it seals decrypts to `pack-header-encoded`.
#[test]
fn pack_writer_writes_the_documented_layout() {
    let doc = doc();
    let c = master().cipher();
    let raw_sealed = bytes(&doc, "blob-raw-sealed");
    let zstd_sealed = bytes(&doc, "blob-zstd-sealed");
    let mut w = PackWriter::new();
    for (sealed, plain) in [
        (raw_sealed, BLOB_RAW.to_vec()),
        (zstd_sealed, blob_zstd_plaintext()),
    ] {
        w.add(
            BlobKind::Data,
            master().blob_id(&plain),
            sealed,
            plain.len() as u32,
        );
    }
    let (written, id, entries) = w.finish(&c);
    assert_eq!(id, Id::sha256(&written));
    let documented = bytes(&doc, "pack");
    assert_eq!(written.len(), documented.len());
    let blobs_end = raw_sealed.len() + zstd_sealed.len();
    assert_eq!(written[..blobs_end], documented[..blobs_end]);
    assert_eq!(
        written[written.len() - 4..],
        documented[documented.len() - 4..]
    );
    let header = c
        .open_encoded(&written[blobs_end..written.len() - 4])
        .unwrap();
    assert_eq!(header, bytes(&doc, "pack-header-encoded"));
    assert_eq!(entries, pack_entries(raw_sealed, zstd_sealed));
}

/// The encoding byte each writer chooses (§2's table).
#[test]
fn writers_choose_the_documented_encodings() {
    let k = master();
    let c = k.cipher();
    let first = |sealed: &[u8], c: &Cipher| c.open_encoded(sealed).unwrap()[0];
    // Key file data and config: always encoding 0.
    let kf = KeyFile::create(&k, None, PASSWORD.as_bytes(), KDF, "h", "u").unwrap();
    let kek = KDF
        .derive(
            PASSWORD.as_bytes(),
            &base64::engine::general_purpose::STANDARD
                .decode(&kf.salt)
                .unwrap(),
        )
        .unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(&kf.data)
        .unwrap();
    assert_eq!(first(&data, &Cipher::new(&kek)), 0);
    assert_eq!(first(&config().seal(&c), &c), 0);
    // Snapshots: zstd when it is smaller.
    assert_eq!(first(&snapshot().seal(&c), &c), 1);
    // Blobs: zstd when compression is on and it is smaller; never for
    // payloads under 64 bytes.
    assert_eq!(first(&c.seal(&blob_zstd_plaintext(), Some(3)), &c), 1);
    assert_eq!(first(&c.seal(&blob_zstd_plaintext(), None), &c), 0);
    assert_eq!(first(&c.seal(BLOB_RAW, Some(3)), &c), 0);
    // Pack headers: encoding 0 (checked in pack_writer_writes_the_documented_layout).
}

// ---- Reading: the code reads the document's bytes ---------------------------

#[test]
fn key_file_unlocks_with_the_password_bytes() {
    let doc = doc();
    let kf = KeyFile::parse(bytes(&doc, "keyfile")).unwrap();
    let password = bytes(&doc, "password");
    assert_eq!(password, "p\u{e4}ssword".as_bytes(), "UTF-8, no newline");
    assert_eq!(
        kf.params.derive(password, &SALT).unwrap().as_slice(),
        bytes(&doc, "kek")
    );
    let mk = kf.unlock(password).unwrap();
    let documented: MasterKey = serde_json::from_slice(bytes(&doc, "master-key")).unwrap();
    assert_eq!(mk.data_key, documented.data_key);
    assert_eq!(mk.id_key, documented.id_key);
    assert_eq!(mk.chunker_seed, documented.chunker_seed);
    assert!(
        mk.chunker_seed > 1 << 63,
        "the vector shows a seed above 2^63"
    );
    // The same password with a trailing newline, or in another Unicode
    // normalization (a + combining diaeresis), is another password.
    for other in ["pässword\n".as_bytes(), "pa\u{308}ssword".as_bytes()] {
        assert!(matches!(kf.unlock(other), Err(FormatError::Decrypt)));
    }
    // The master key inside is encoding 0 JSON, at most 4096 bytes.
    let kek = KDF.derive(password, &SALT).unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(&kf.data)
        .unwrap();
    let encoded = Cipher::new(&kek).open_encoded(&data).unwrap();
    assert_eq!(encoded[0], 0);
    assert_eq!(&encoded[1..], bytes(&doc, "master-key"));
}

#[test]
fn an_unknown_key_file_version_is_a_version_error() {
    let doc = doc();
    let text = String::from_utf8(bytes(&doc, "keyfile").to_vec()).unwrap();
    let v2 = text.replace("\"version\": 1", "\"version\": 2");
    assert_ne!(v2, text);
    assert!(matches!(
        KeyFile::parse(v2.as_bytes()),
        Err(FormatError::Version { found: 2, .. })
    ));
}

#[test]
fn config_opens() {
    let doc = doc();
    let c = master().cipher();
    let opened = Config::open(&c, bytes(&doc, "config-sealed")).unwrap();
    assert_eq!(opened, config());
    assert_eq!(
        serde_json::from_slice::<Config>(bytes(&doc, "config")).unwrap(),
        config()
    );
}

#[test]
fn blobs_open_and_hash_to_their_ids() {
    let doc = doc();
    let k = master();
    let c = k.cipher();
    for (name, encoding) in [("blob-raw", 0u8), ("blob-zstd", 1)] {
        let plain = bytes(&doc, &format!("{name}-plaintext"));
        let sealed = bytes(&doc, &format!("{name}-sealed"));
        assert_eq!(c.open(sealed, plain.len()).unwrap(), plain, "{name}");
        assert_eq!(c.open_encoded(sealed).unwrap()[0], encoding, "{name}");
        assert_eq!(
            k.blob_id(plain).0,
            bytes(&doc, &format!("{name}-id")),
            "{name}"
        );
        // The bound on the decoded size is the index's raw_length.
        assert!(c.open(sealed, plain.len() - 1).is_err(), "{name}: bound");
        for i in [0, 24, sealed.len() - 1] {
            let mut bad = sealed.to_vec();
            bad[i] ^= 1;
            assert!(matches!(
                c.open(&bad, plain.len()),
                Err(FormatError::Decrypt)
            ));
        }
    }
}

#[test]
fn zstd_frames_carry_their_size_and_nothing_follows() {
    let doc = doc();
    let encoded = bytes(&doc, "blob-zstd-encoded");
    let plain = blob_zstd_plaintext();
    assert_eq!(encoded[0], 1);
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&encoded[1..]).ok(),
        Some(Some(plain.len() as u64))
    );
    assert_eq!(decode(encoded, plain.len()).unwrap(), plain);
    // Bytes after the frame: an error (another frame, garbage, one zero byte).
    for tail in [&encoded[1..], b"x", b"\0"] {
        let mut e = encoded.to_vec();
        e.extend_from_slice(tail);
        assert!(decode(&e, 1 << 20).is_err(), "tail {tail:?} rejected");
    }
    // A frame without a content size: an error.
    let mut z = zstd::bulk::Compressor::new(3).unwrap();
    z.include_contentsize(false).unwrap();
    let mut e = vec![1u8];
    e.extend_from_slice(&z.compress(&plain).unwrap());
    assert!(decode(&e, 1 << 20).is_err());
    // Unknown encodings: an error.
    assert!(decode(&[2, 0, 0], 10).is_err());
}

#[test]
fn pack_header_lists_the_blobs() {
    let doc = doc();
    let c = master().cipher();
    let pack_bytes = bytes(&doc, "pack");
    let len = pack_bytes.len() as u64;
    assert_eq!(Id::sha256(pack_bytes).0, bytes(&doc, "pack-id"));
    let n = pack::header_length(len, &pack_bytes[pack_bytes.len() - 4..]).unwrap() as usize;
    // No entry count is stored: 2 entries make a header of 24 + 1 + 1 + 2 × 41 + 16 bytes.
    assert_eq!(n, 24 + 1 + 1 + 2 * pack::HEADER_ENTRY_LEN + 16);
    let sealed = &pack_bytes[pack_bytes.len() - 4 - n..pack_bytes.len() - 4];
    let entries = pack::parse_header(&c, sealed, len).unwrap();
    assert_eq!(
        entries,
        pack_entries(
            bytes(&doc, "blob-raw-sealed"),
            bytes(&doc, "blob-zstd-sealed")
        )
    );
    for (e, name) in entries.iter().zip(["blob-raw", "blob-zstd"]) {
        let blob = &pack_bytes[e.offset as usize..(e.offset + e.length) as usize];
        assert_eq!(blob, bytes(&doc, &format!("{name}-sealed")));
        let plain = c.open(blob, e.raw_length as usize).unwrap();
        assert_eq!(master().blob_id(&plain), e.id);
    }
    // The blobs must fill the pack exactly.
    assert!(pack::parse_header(&c, sealed, len + 1).is_err());
}

#[test]
fn index_lists_the_pack_as_its_header_does() {
    let doc = doc();
    let c = master().cipher();
    let sealed = bytes(&doc, "index-sealed");
    assert_eq!(Id::sha256(sealed).0, bytes(&doc, "index-id"));
    let data = c.open(sealed, 1 << 30).unwrap();
    assert_eq!(data, bytes(&doc, "index-data"));
    let index = IndexFile::decode(&data).unwrap();
    let pack_id = Id::from_slice(bytes(&doc, "pack-id")).unwrap();
    let entries = pack_entries(
        bytes(&doc, "blob-raw-sealed"),
        bytes(&doc, "blob-zstd-sealed"),
    );
    assert_eq!(index, index_file(pack_id, entries));
    // The first pack's entries are the pack header's, offsets included.
    let pack_bytes = bytes(&doc, "pack");
    let n = pack::header_length(pack_bytes.len() as u64, &pack_bytes[pack_bytes.len() - 4..])
        .unwrap() as usize;
    let header = pack::parse_header(
        &c,
        &pack_bytes[pack_bytes.len() - 4 - n..pack_bytes.len() - 4],
        pack_bytes.len() as u64,
    )
    .unwrap();
    assert_eq!(index.packs[0].blobs, header);
    assert_eq!(index.packs[1].marked, Some(MARKED_AT));
}

#[test]
fn trees_parse_sorted_with_their_ids() {
    let doc = doc();
    let k = master();
    for (name, want) in [
        ("tree-empty", Tree::default()),
        ("tree", srv_tree()),
        ("tree-root", root_tree()),
    ] {
        let json = bytes(&doc, name);
        let tree = Tree::from_bytes(json).unwrap();
        assert_eq!(tree, want, "{name}");
        assert_eq!(
            k.blob_id(json).0,
            bytes(&doc, &format!("{name}-id")),
            "{name}"
        );
        assert!(
            tree.nodes
                .windows(2)
                .all(|w| w[0].name.as_bytes() < w[1].name.as_bytes()),
            "{name}: sorted bytewise"
        );
    }
    let tree = Tree::from_bytes(bytes(&doc, "tree")).unwrap();
    let names: Vec<&[u8]> = tree.nodes.iter().map(|n| n.name.as_bytes()).collect();
    assert_eq!(
        names[1], b"caf\xe9",
        "a name that is not UTF-8, as {{\"b64\": ...}}"
    );
    let hello = &tree.nodes[4];
    assert_eq!(hello.xattrs[0].value_bytes().unwrap(), b"hi\n");
    // Both hard links carry the content.
    assert_eq!(tree.nodes[3].content, hello.content);
    assert_eq!(tree.nodes[3].inode, hello.inode);
    // A reader ignores fields it does not know.
    let text = String::from_utf8(bytes(&doc, "tree-root").to_vec()).unwrap();
    let extra = text.replacen("{\"name\"", "{\"future\":[1,2],\"name\"", 1);
    assert_ne!(extra, text);
    assert_eq!(Tree::from_bytes(extra.as_bytes()).unwrap(), root_tree());
}

#[test]
fn snapshot_opens_and_names_its_tree() {
    let doc = doc();
    let k = master();
    let c = k.cipher();
    let sealed = bytes(&doc, "snapshot-sealed");
    assert_eq!(Id::sha256(sealed).0, bytes(&doc, "snapshot-id"));
    let encoded = c.open_encoded(sealed).unwrap();
    assert_eq!(
        encoded[0], 1,
        "snapshots are zstd-compressed when that pays"
    );
    assert_eq!(decode(&encoded, 64 << 20).unwrap(), bytes(&doc, "snapshot"));
    let s = Snapshot::open(&c, sealed).unwrap();
    assert_eq!(s, snapshot());
    assert_eq!(s.tree.0, bytes(&doc, "tree-root-id"));
}

#[test]
fn chunk_vectors_cover_the_input_within_the_sizes() {
    let doc = doc();
    let gear = bytes(&doc, "chunker-gear");
    assert_eq!(gear.len(), 256 * 8);
    assert_eq!(
        chunker_input(64),
        bytes(&doc, "chunker-input-head"),
        "the input is BLAKE3's extendable output"
    );
    for (name, p, len) in [
        ("chunker-cuts-small", CHUNKER_SMALL, 256 << 10),
        ("chunker-cuts-default", ChunkerParams::DEFAULT, 16 << 20),
    ] {
        let text = std::str::from_utf8(bytes(&doc, name)).unwrap();
        let lengths: Vec<usize> = text
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(
            lengths.iter().sum::<usize>(),
            len,
            "{name}: covers the input"
        );
        let (last, rest) = lengths.split_last().unwrap();
        assert!(*last <= p.max_size as usize, "{name}");
        for &n in rest {
            assert!(
                n >= p.min_size as usize && n <= p.max_size as usize,
                "{name}: {n}"
            );
        }
        // Content-defined: cutting the input without its first chunk gives
        // the same chunks after it.
        let input = chunker_input(len);
        assert_eq!(
            chunk_lengths(p, &input[lengths[0]..]),
            lengths[1..],
            "{name}"
        );
    }
}

/// Prints the vectors as `repo-format.md` should hold them (see the module docs).
#[test]
fn print_vectors() {
    if std::env::var_os("CAIRN_PRINT_VECTORS").is_none() {
        return;
    }
    let built = build(
        &encode(&blob_zstd_plaintext(), Some(3)),
        &encode(&to_json(&snapshot()), Some(3)),
    );
    for (name, format, b) in built {
        println!("```vector name={name} format={}", format.name());
        match format {
            Format::Hex => {
                for chunk in hex::encode(&b).as_bytes().chunks(64) {
                    println!("{}", std::str::from_utf8(chunk).unwrap());
                }
            }
            Format::Json => println!("{}", break_json(std::str::from_utf8(&b).unwrap())),
            Format::Text => print!("{}", std::str::from_utf8(&b).unwrap()),
        }
        println!("```\n");
    }
}

/// Break compact JSON after the commas of its first two levels (outside
/// strings): joined again without separators, the lines give the bytes back.
fn break_json(s: &str) -> String {
    let mut out = String::new();
    let (mut depth, mut in_str, mut escaped) = (0, false, false);
    for ch in s.chars() {
        out.push(ch);
        if in_str {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth <= 2 => out.push('\n'),
            _ => {}
        }
    }
    out
}
