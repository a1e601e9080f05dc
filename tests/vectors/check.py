#!/usr/bin/env python3
"""Checks every test vector of repo-format.md §13 without cairn's code.

The Rust tests (crates/cairn-format/tests/vectors.rs) check that cairn
writes and reads the vectors; but cairn wrote them, so a mistake in cairn
and in the vectors would agree. This script reads the same vectors from the
same place (the ```vector blocks of repo-format.md, one source of truth)
and recomputes each one from its documented inputs with other
implementations, following only the document's text: libsodium (PyNaCl)
for XChaCha20-Poly1305, the `blake3` package for BLAKE3, libzstd (the
`zstandard` package) for decoding, and Python's hashlib for scrypt, SHA-256
and MD5. The chunker is implemented here from §9's description, with the
mask table read from §9 itself.

Usage: check.py [path/to/repo-format.md]. Prints one line per failed check
and exits 1 if any failed; `cargo xtask test` runs it (with the pinned
packages of requirements.txt in its venv).
"""

import base64
import datetime
import hashlib
import json
import pathlib
import re
import struct
import sys

try:
    import blake3
    import zstandard
    from nacl.bindings import (
        crypto_aead_xchacha20poly1305_ietf_decrypt,
        crypto_aead_xchacha20poly1305_ietf_encrypt,
    )
except ImportError as e:
    sys.exit(f"check.py needs the packages of tests/vectors/requirements.txt: {e}")

ROOT = pathlib.Path(__file__).resolve().parents[2]

# ---- The documented inputs (§13's prose) -----------------------------------

PASSWORD = "pässword"
SALT = b"\x01" * 32
LOG_N, R, P = 10, 8, 1
DATA_KEY = bytes(range(0x00, 0x20))
ID_KEY = bytes(range(0x20, 0x40))
SEED = 0xFEDCBA9876543210
REPO_ID = bytes(range(0x40, 0x60))
BLOB_RAW = b"hello cairn\n"
BLOB_ZSTD = BLOB_RAW * 8
MARKED_AT = 1764547200  # 2025-12-01T00:00:00Z
CHUNKER_INPUT_KEY = b"cairn chunker test vector"
DEFAULT_SIZES = (512 << 10, 1 << 20, 8 << 20)
SMALL_SIZES = (1024, 4096, 16384)


def nonce(byte):
    return bytes([byte]) * 24


# ---- Reading the vectors ----------------------------------------------------


def read_vectors(text):
    """name -> (format, bytes), by §13's rules for the three formats."""
    out = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.startswith("```vector "):
            continue
        attrs = dict(a.split("=", 1) for a in line[len("```vector "):].split())
        name, fmt = attrs["name"], attrs["format"]
        body = []
        for body_line in lines:
            if body_line == "```":
                break
            body.append(body_line)
        else:
            sys.exit(f"repo-format.md: vector {name} has no closing fence")
        if fmt == "hex":
            data = bytes.fromhex("".join("".join(body).split()))
        elif fmt == "json":
            data = "".join(body).encode()
        elif fmt == "text":
            data = "".join(l + "\n" for l in body).encode()
        else:
            sys.exit(f"repo-format.md: vector {name}: unknown format {fmt}")
        if name in out:
            sys.exit(f"repo-format.md: two vectors named {name}")
        out[name] = (fmt, data)
    return out


class Checker:
    def __init__(self, vectors):
        self.vectors = vectors
        self.used = set()
        self.checks = 0
        self.failures = []

    def __getitem__(self, name):
        if name not in self.vectors:
            self.fail(name, "repo-format.md has no such vector")
            return b""
        self.used.add(name)
        return self.vectors[name][1]

    def fail(self, name, why):
        self.failures.append(f"vector {name}: {why}")

    def same(self, name, want, what="the document"):
        """The vector `name` equals `want`, computed independently."""
        self.checks += 1
        got = self[name]
        if got != want:
            at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            if self.vectors.get(name, ("hex",))[0] == "hex":
                show = bytes.hex
            else:
                show = lambda b: b.decode("utf-8", "replace").replace("\n", " / ")  # noqa: E731
            self.fail(
                name,
                f"{what} differs from the independent computation "
                f"({len(got)} and {len(want)} bytes, first difference at byte {at})\n"
                f"    document:    {show(got)}\n    independent: {show(want)}",
            )

    def true(self, name, cond, why):
        self.checks += 1
        if not cond:
            self.fail(name, why)


# ---- The primitives, as §2, §3 and §5 name them -----------------------------


def seal(key, nonce_, encoded):
    return nonce_ + crypto_aead_xchacha20poly1305_ietf_encrypt(encoded, b"", nonce_, key)


def open_sealed(key, sealed):
    return crypto_aead_xchacha20poly1305_ietf_decrypt(sealed[24:], b"", sealed[:24], key)


def blob_id(plaintext):
    return blake3.blake3(plaintext, key=ID_KEY).digest()


def decode(encoded):
    """§2: the encoding byte, then the data as is or one zstd frame that
    carries its content size and is followed by nothing."""
    if encoded[0] == 0:
        return encoded[1:]
    if encoded[0] != 1:
        raise ValueError(f"encoding {encoded[0]}")
    frame = encoded[1:]
    size = zstandard.get_frame_parameters(frame).content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN:
        raise ValueError("the frame carries no content size")
    d = zstandard.ZstdDecompressor().decompressobj()
    data = d.decompress(frame)
    if not d.eof or d.unused_data:
        raise ValueError("bytes follow the frame")
    if len(data) != size:
        raise ValueError(f"{len(data)} bytes, the header says {size}")
    return data


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def parse_json(data):
    """JSON with member order kept; a repeated member is an error (§ conventions)."""

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a member appears twice in {keys}")
        return dict(items)

    return json.loads(data, object_pairs_hook=pairs)


def in_order(keys, order):
    """`keys` is a subsequence of `order`."""
    positions = [order.index(k) if k in order else -1 for k in keys]
    return -1 not in positions and positions == sorted(positions)


# ---- §13 vector by vector ----------------------------------------------------


def check_keys(c):
    master = compact({"data_key": DATA_KEY.hex(), "id_key": ID_KEY.hex(), "chunker_seed": SEED})
    c.same("master-key", master)
    c.true("master-key", str(SEED) in SPEC_TEXT, "§3's warning names another seed")
    c.same("password", PASSWORD.encode("utf-8"))
    kek = hashlib.scrypt(PASSWORD.encode(), salt=SALT, n=1 << LOG_N, r=R, p=P, dklen=32)
    c.same("kek", kek)

    text = c["keyfile"]
    kf = parse_json(text)
    order = ["version", "created", "hostname", "username", "kdf", "log_n", "r", "p", "salt", "data"]
    c.true("keyfile", list(kf) == order, f"members {list(kf)}, §3 writes {order}")
    # §3: indented by two spaces, a newline at the end.
    c.same("keyfile", (json.dumps(kf, indent=2, ensure_ascii=False) + "\n").encode(), "the layout")
    c.true("keyfile", (kf["kdf"], kf["log_n"], kf["r"], kf["p"]) == ("scrypt", LOG_N, R, P), "kdf")
    salt = base64.b64decode(kf["salt"], validate=True)
    c.true("keyfile", salt == SALT and base64.b64encode(salt).decode() == kf["salt"], "salt")
    data = base64.b64decode(kf["data"], validate=True)
    c.true("keyfile", base64.b64encode(data).decode() == kf["data"], "data: padding")
    c.true("keyfile", data == seal(kek, nonce(0x10), b"\x00" + master), "data is not the sealed master key")
    c.true("keyfile", open_sealed(kek, data) == b"\x00" + master, "data does not open to the master key")


def check_config(c):
    cfg = {
        "version": 1,
        "id": REPO_ID.hex(),
        "chunker": dict(zip(["min_size", "avg_size", "max_size"], DEFAULT_SIZES)),
    }
    c.same("config", compact(cfg))
    c.same("config-sealed", seal(DATA_KEY, nonce(0x11), b"\x00" + compact(cfg)))


def check_blobs(c):
    c.same("blob-raw-plaintext", BLOB_RAW)
    c.same("blob-raw-id", blob_id(BLOB_RAW))
    c.same("blob-raw-sealed", seal(DATA_KEY, nonce(0x12), b"\x00" + BLOB_RAW))
    c.same("blob-zstd-plaintext", BLOB_ZSTD)
    c.same("blob-zstd-id", blob_id(BLOB_ZSTD))
    encoded = c["blob-zstd-encoded"]
    try:
        c.true("blob-zstd-encoded", decode(encoded) == BLOB_ZSTD and encoded[0] == 1, "wrong data")
        c.true("blob-zstd-encoded", zstandard.get_frame_parameters(encoded[1:]).content_size == 96, "size")
    except (ValueError, zstandard.ZstdError) as e:
        c.fail("blob-zstd-encoded", f"does not decode: {e}")
    c.same("blob-zstd-sealed", seal(DATA_KEY, nonce(0x13), encoded))


def header_entries(blobs):
    """§6's header entries for (kind, sealed, plaintext) in pack order."""
    return [(kind, len(sealed), len(plain), blob_id(plain)) for kind, sealed, plain in blobs]


def parse_pack(pack):
    """Reads a pack as §6 says: trailer, sealed header, entries, blobs."""
    h = struct.unpack("<I", pack[-4:])[0]
    if h < 42 or h + 4 > len(pack):
        raise ValueError(f"header length {h}")
    data = decode(open_sealed(DATA_KEY, pack[-4 - h:-4]))
    if data[0] != 1 or (len(data) - 1) % 41:
        raise ValueError("header version or size")
    entries, offset = [], 0
    for at in range(1, len(data), 41):
        kind, length, raw = struct.unpack("<BII", data[at:at + 9])
        entries.append((kind, offset, length, raw, data[at + 9:at + 41]))
        offset += length
    if offset != len(pack) - 4 - h:
        raise ValueError("blob lengths do not fill the pack")
    return entries


def check_pack_and_index(c):
    blobs = [(0, c["blob-raw-sealed"], BLOB_RAW), (0, c["blob-zstd-sealed"], BLOB_ZSTD)]
    entries = header_entries(blobs)
    header = b"\x00\x01" + b"".join(struct.pack("<BII", k, l, r) + i for k, l, r, i in entries)
    c.same("pack-header-encoded", header)
    sealed_header = seal(DATA_KEY, nonce(0x14), header)
    c.true("pack-header-encoded", len(sealed_header) == 42 + 41 * 2 == 124, "sealed size")
    pack = b"".join(s for _, s, _ in blobs) + sealed_header + struct.pack("<I", len(sealed_header))
    c.same("pack", pack)
    c.same("pack-id", hashlib.sha256(pack).digest())
    try:
        parsed = parse_pack(c["pack"])
        for kind, offset, length, raw, id_ in parsed:
            plain = decode(open_sealed(DATA_KEY, c["pack"][offset:offset + length]))
            c.true("pack", len(plain) == raw and blob_id(plain) == id_ and kind == 0, "a blob")
    except Exception as e:  # a failed tag, a bad frame or header
        c.fail("pack", f"does not read as §6 says: {e}")
        parsed = []

    # §7, the second pack marked at MARKED_AT holding the empty tree.
    c.true("index-data", datetime.datetime.fromtimestamp(MARKED_AT, datetime.timezone.utc)
           == datetime.datetime(2025, 12, 1, tzinfo=datetime.timezone.utc), "mark time")
    empty = b'{"nodes":[]}'
    offsets = [sum(e[1] for e in entries[:k]) for k in range(len(entries))]
    c.true("pack", [(k, o, l, r, i) for (k, l, r, i), o in zip(entries, offsets)] == parsed,
           "its header does not list the blobs as §6 says")
    packs = [
        (hashlib.sha256(pack).digest(), 0, [(k, o, l, r, i) for (k, l, r, i), o in zip(entries, offsets)]),
        (b"\xee" * 32, MARKED_AT, [(1, 0, len(empty) + 41, len(empty), blob_id(empty))]),
    ]
    data = b"CAIRNIDX" + struct.pack("<II", 1, len(packs))
    for pack_id, marked, blobs_ in packs:
        data += pack_id + struct.pack("<qI", marked, len(blobs_))
        for kind, offset, length, raw, id_ in blobs_:
            data += struct.pack("<B", kind) + id_ + struct.pack("<III", offset, length, raw)
    c.same("index-data", data)
    sealed = seal(DATA_KEY, nonce(0x15), b"\x00" + data)
    c.same("index-sealed", sealed)
    c.same("index-id", hashlib.sha256(sealed).digest())


# §10's table, in the order cairn writes the members.
NODE_MEMBERS = ["name", "type", "mode", "mtime", "atime", "ctime", "uid", "gid", "user", "group",
                "size", "inode", "device", "links", "rdev", "linktarget", "content", "subtree",
                "xattrs"]
NODE_REQUIRED = {"name", "type", "mode", "mtime", "atime", "ctime", "uid", "gid", "size",
                 "inode", "device", "links"}
TYPE_BITS = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000, "dev": 0o060000,
             "chardev": 0o020000, "fifo": 0o010000, "socket": 0o140000}


def name_bytes(v):
    return v.encode() if isinstance(v, str) else base64.b64decode(v["b64"], validate=True)


def check_tree(c, name, blob_lengths, trees):
    data = c[name]
    tree = parse_json(data)
    c.true(name, list(tree) == ["nodes"], "a tree is {\"nodes\": [...]}")
    c.same(name, compact(tree), "the compact form")
    names = [name_bytes(n["name"]) for n in tree["nodes"]]
    c.true(name, names == sorted(set(names)), "nodes not sorted bytewise, or a name twice")
    for node in tree["nodes"]:
        nb = name_bytes(node["name"])
        where = f"{name}, node {nb!r}"
        c.true(where, in_order(list(node), NODE_MEMBERS), f"member order {list(node)}")
        c.true(where, NODE_REQUIRED <= set(node), f"required members missing: {NODE_REQUIRED - set(node)}")
        c.true(where, nb not in (b"", b".", b"..") and b"/" not in nb and b"\0" not in nb, "name")
        if isinstance(node["name"], dict):
            try:
                nb.decode("utf-8")
                c.fail(where, "a UTF-8 name written as {\"b64\": ...}")
            except UnicodeDecodeError:
                pass
        kind = node["type"]
        c.true(where, node["mode"] & 0o170000 == TYPE_BITS[kind], f"mode {oct(node['mode'])}")
        c.true(where, ("subtree" in node) == (kind == "dir"), "subtree only for directories")
        c.true(where, ("linktarget" in node) == (kind == "symlink"), "linktarget only for symlinks")
        c.true(where, "rdev" not in node or (node["rdev"] != 0 and kind in ("dev", "chardev")), "rdev")
        if kind == "dir":
            c.true(where, node["subtree"] in trees, "subtree is not a tree vector's id")
        content = node.get("content", [])
        c.true(where, "content" not in node or content, "an empty content list is left out")
        c.true(where, all(i in blob_lengths for i in content), "content names an unknown blob")
        want_size = sum(blob_lengths.get(i, 0) for i in content) if kind == "file" else 0
        c.true(where, node["size"] == want_size, f"size {node['size']}, blobs say {want_size}")
        for x in node.get("xattrs", []):
            v = base64.b64decode(x["value"], validate=True)
            c.true(where, base64.b64encode(v).decode() == x["value"], "xattr value padding")
        xnames = [name_bytes(x["name"]) for x in node.get("xattrs", [])]
        c.true(where, xnames == sorted(xnames), "xattrs not sorted by name")
    c.same(f"{name}-id", blob_id(data))
    return tree


def check_trees(c):
    lengths = {blob_id(BLOB_RAW).hex(): len(BLOB_RAW), blob_id(BLOB_ZSTD).hex(): len(BLOB_ZSTD)}
    trees = {}
    for name in ["tree-empty", "tree", "tree-root"]:  # children first
        tree = check_tree(c, name, lengths, trees)
        trees[blob_id(c[name]).hex()] = tree
    srv = parse_json(c["tree"])["nodes"]
    by_name = {name_bytes(n["name"]): n for n in srv}
    c.true("tree", set(by_name) == {b"README", b"caf\xe9", b"docs", b"hello-link.txt",
                                    b"hello.txt", b"link", b"null"}, "the nodes §13 lists")
    null = by_name.get(b"null", {})
    rdev = null.get("rdev", 0)
    major = ((rdev >> 8) & 0xFFF) | ((rdev >> 32) & 0xFFFFF000)
    minor = (rdev & 0xFF) | ((rdev >> 12) & 0xFFFFFF00)
    c.true("tree", (major, minor) == (1, 3), f"/dev/null's rdev {rdev} is ({major}, {minor})")
    hello = by_name.get(b"hello.txt", {})
    c.true("tree", hello.get("content") == [blob_id(BLOB_RAW).hex(), blob_id(BLOB_ZSTD).hex()],
           "hello.txt holds the two blobs")
    c.true("tree", base64.b64decode(hello["xattrs"][0]["value"]) == b"hi\n", "the xattr")
    docs = by_name.get(b"docs", {})
    c.true("tree", docs.get("atime") == docs.get("mtime"), "a directory's atime is its mtime")


SNAPSHOT_MEMBERS = ["version", "time", "tree", "paths", "hostname", "username", "uid", "gid", "tags",
                    "excludes", "parent", "original", "program_version", "summary"]
SUMMARY_MEMBERS = ["backup_start", "backup_end", "files_new", "files_changed", "files_unmodified",
                   "dirs_new", "dirs_changed", "dirs_unmodified", "data_blobs", "tree_blobs",
                   "data_added", "data_added_packed", "total_files_processed", "total_bytes_processed"]
# §8: RFC 3339, 0, 3, 6 or 9 fractional digits, `Z` for offset zero.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{3}|\d{6}|\d{9}))?(Z|[+-]\d\d:\d\d)$")


def check_snapshot(c):
    data = c["snapshot"]
    s = parse_json(data)
    c.same("snapshot", compact(s), "the compact form")
    c.true("snapshot", in_order(list(s), SNAPSHOT_MEMBERS), f"member order {list(s)}")
    c.true("snapshot", list(s.get("summary", {})) == SUMMARY_MEMBERS, "summary members")
    for t in [s["time"], s["summary"]["backup_start"], s["summary"]["backup_end"]]:
        c.true("snapshot", bool(TIME.match(t)) and not t.endswith("+00:00"), f"time {t}")
        frac = t[19:].split("+")[0].split("-")[0].split("Z")[0].lstrip(".")
        c.true("snapshot", not frac.endswith("000"), f"time {t}: more digits than the value needs")
    c.true("snapshot", s["tree"] == c["tree-root-id"].hex(), "tree is not tree-root-id")
    sealed = c["snapshot-sealed"]
    c.true("snapshot-sealed", sealed[:24] == nonce(0x16), "nonce")
    try:
        encoded = open_sealed(DATA_KEY, sealed)
        c.true("snapshot-sealed", encoded[0] == 1, "snapshots are written with encoding 1")
        c.true("snapshot-sealed", decode(encoded) == data, "does not decode to the snapshot")
        c.same("snapshot-sealed", seal(DATA_KEY, nonce(0x16), encoded))
    except Exception as e:  # a failed tag or a bad frame
        c.fail("snapshot-sealed", f"does not open: {e!r}")
    c.same("snapshot-id", hashlib.sha256(sealed).digest())


# ---- §9, the chunker ---------------------------------------------------------

M64 = (1 << 64) - 1


def masks_from_spec():
    """§9's MASK table, read from the document."""
    rows = re.findall(r"^\| (\d+) \| `0x([0-9a-f]{16})` \| (\d+) \| `0x([0-9a-f]{16})` \|$",
                      SPEC_TEXT, re.M)
    table = {}
    for n1, m1, n2, m2 in rows:
        table[int(n1)] = int(m1, 16)
        table[int(n2)] = int(m2, 16)
    if sorted(table) != list(range(7, 25)):
        sys.exit(f"repo-format.md §9: the MASK table has rows {sorted(table)}, not 7..24")
    return table


def chunk_lengths(data, sizes, gear, mask):
    """§9's cuts, literally: one byte a step."""
    mn, avg, mx = sizes
    n = avg.bit_length() - 1
    mask_s, mask_l = mask[n + 1], mask[n - 1]
    out, s = [], 0
    while s < len(data):
        left = len(data) - s
        if left <= mn:
            out.append(left)
            break
        r = min(left, mx)
        c_ = min(avg, r)
        h, i, cut = 0, mn, r
        for limit, m in ((c_ - c_ % 2, mask_s), (r - r % 2, mask_l)):
            while i < limit:
                h = ((h << 1) + gear[data[s + i]]) & M64
                if h & m == 0:
                    cut = i
                    break
                i += 1
            if cut != r:
                break
        out.append(cut)
        s += cut
    return out


def lengths_text(lengths):
    return "".join(" ".join(map(str, lengths[i:i + 8])) + "\n"
                   for i in range(0, len(lengths), 8)).encode()


def check_chunker(c):
    gear = [int.from_bytes(hashlib.md5(bytes([b]) * 64).digest()[:8], "big") for b in range(256)]
    c.same("chunker-gear", b"".join(g.to_bytes(8, "big") for g in gear))
    seeded = [g ^ SEED for g in gear]
    table = b"".join(g.to_bytes(8, "big") for g in seeded)
    c.same("chunker-gear-seeded-head", table[:4 * 8])
    c.same("chunker-gear-seeded-sha256", hashlib.sha256(table).digest())
    data = blake3.blake3(CHUNKER_INPUT_KEY).digest(length=16 << 20)
    c.same("chunker-input-head", data[:64])
    mask = masks_from_spec()
    c.same("chunker-cuts-small", lengths_text(chunk_lengths(data[:256 << 10], SMALL_SIZES, seeded, mask)))
    c.same("chunker-cuts-default", lengths_text(chunk_lengths(data, DEFAULT_SIZES, seeded, mask)))


def main():
    global SPEC_TEXT
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "repo-format.md"
    SPEC_TEXT = path.read_text(encoding="utf-8")
    c = Checker(read_vectors(SPEC_TEXT))
    for step in [check_keys, check_config, check_blobs, check_pack_and_index, check_trees,
                 check_snapshot, check_chunker]:
        try:
            step(c)
        except Exception as e:  # a vector so wrong that the step could not go on
            c.fail(step.__name__, f"stopped with {e!r}")
    for name in sorted(set(c.vectors) - c.used):
        c.fail(name, "no independent check covers it")
    for f in c.failures:
        print(f"FAIL {f}")
    if c.failures:
        print(f"{path}: {len(c.failures)} of {c.checks} vector checks failed")
        return 1
    print(f"{path}: all {c.checks} checks of {len(c.vectors)} vectors agree with an independent computation")
    return 0


SPEC_TEXT = ""

if __name__ == "__main__":
    sys.exit(main())
