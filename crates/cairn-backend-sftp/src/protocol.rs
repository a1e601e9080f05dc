//! SFTP protocol version 3 (draft-ietf-secsh-filexfer-02, the version
//! OpenSSH speaks): packet types, status codes, file attributes, and the
//! encoding of requests and decoding of replies. Pure: no I/O.
//!
//! Every packet is `uint32 length`, `byte type`, then the payload; every
//! request but INIT and every reply but VERSION starts its payload with a
//! `uint32 request-id`. Strings are `uint32 length` + bytes. Decoding never
//! panics on hostile bytes: a short or malformed reply is an error.

pub const FXP_INIT: u8 = 1;
pub const FXP_VERSION: u8 = 2;
pub const FXP_OPEN: u8 = 3;
pub const FXP_CLOSE: u8 = 4;
pub const FXP_READ: u8 = 5;
pub const FXP_WRITE: u8 = 6;
pub const FXP_LSTAT: u8 = 7;
pub const FXP_OPENDIR: u8 = 11;
pub const FXP_READDIR: u8 = 12;
pub const FXP_REMOVE: u8 = 13;
pub const FXP_MKDIR: u8 = 14;
pub const FXP_STAT: u8 = 17;
pub const FXP_RENAME: u8 = 18;
pub const FXP_EXTENDED: u8 = 200;

pub const FXP_STATUS: u8 = 101;
pub const FXP_HANDLE: u8 = 102;
pub const FXP_DATA: u8 = 103;
pub const FXP_NAME: u8 = 104;
pub const FXP_ATTRS: u8 = 105;
pub const FXP_EXTENDED_REPLY: u8 = 201;

pub const FXF_READ: u32 = 0x01;
pub const FXF_WRITE: u32 = 0x02;
pub const FXF_CREAT: u32 = 0x08;
pub const FXF_TRUNC: u32 = 0x10;
pub const FXF_EXCL: u32 = 0x20;

pub const FX_OK: u32 = 0;
pub const FX_EOF: u32 = 1;
pub const FX_NO_SUCH_FILE: u32 = 2;
pub const FX_PERMISSION_DENIED: u32 = 3;
pub const FX_FAILURE: u32 = 4;
pub const FX_BAD_MESSAGE: u32 = 5;
pub const FX_NO_CONNECTION: u32 = 6;
pub const FX_CONNECTION_LOST: u32 = 7;
pub const FX_OP_UNSUPPORTED: u32 = 8;
/// Later protocol versions; a v3 server should not send them, but some do.
pub const FX_NO_SPACE_ON_FILESYSTEM: u32 = 14;
pub const FX_QUOTA_EXCEEDED: u32 = 15;

const ATTR_SIZE: u32 = 0x01;
const ATTR_UIDGID: u32 = 0x02;
const ATTR_PERMISSIONS: u32 = 0x04;
const ATTR_ACMODTIME: u32 = 0x08;
const ATTR_EXTENDED: u32 = 0x8000_0000;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// The largest reply the client accepts (OpenSSH's own limit is 256 KiB;
/// a little more leaves room for servers that round up).
pub const MAX_PACKET: u32 = 1024 * 1024;

/// File attributes; absent fields are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    pub mtime: Option<u32>,
}

impl Attrs {
    /// A regular file, or unknown (a server that sends no permissions).
    pub fn is_file(&self) -> bool {
        self.permissions.is_none_or(|p| p & S_IFMT == S_IFREG)
    }

    pub fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & S_IFMT == S_IFDIR)
    }
}

/// A malformed packet from the server.
#[derive(Debug)]
pub struct Malformed(pub &'static str);

/// Reads the fields of a packet payload in order.
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed("packet too short"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn string(&mut self) -> Result<String, Malformed> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    pub fn attrs(&mut self) -> Result<Attrs, Malformed> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            self.u32()?;
            self.u32()?;
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.permissions = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            self.u32()?;
            a.mtime = Some(self.u32()?);
        }
        if flags & ATTR_EXTENDED != 0 {
            let n = self.u32()?;
            for _ in 0..n {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Ok(a)
    }
}

/// Builds one packet: the length prefix is filled in by [`Packet::finish`].
pub struct Packet {
    buf: Vec<u8>,
}

impl Packet {
    /// A request of `typ` with request id `id`.
    pub fn request(typ: u8, id: u32) -> Packet {
        let mut p = Packet {
            buf: Vec::with_capacity(64),
        };
        p.buf.extend_from_slice(&[0; 4]);
        p.buf.push(typ);
        p.u32(id);
        p
    }

    /// INIT, the one request without an id.
    pub fn init(version: u32) -> Vec<u8> {
        let mut p = Packet { buf: vec![0; 4] };
        p.buf.push(FXP_INIT);
        p.u32(version);
        p.finish(0)
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
        self
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Empty attributes (the server's defaults: umask-based permissions).
    pub fn no_attrs(&mut self) -> &mut Self {
        self.u32(0)
    }

    /// The packet's bytes; `trailing` more bytes will follow them on the wire
    /// (the data of a WRITE, sent without copying it into the packet).
    pub fn finish(mut self, trailing: usize) -> Vec<u8> {
        let len = (self.buf.len() - 4 + trailing) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// A STATUS reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub message: String,
}

impl Status {
    pub fn decode(d: &mut Decoder<'_>) -> Result<Status, Malformed> {
        let code = d.u32()?;
        // Some servers omit the message and language tag.
        let message = if d.is_empty() {
            String::new()
        } else {
            d.string()?
        };
        Ok(Status { code, message })
    }

    /// The server's message, or the standard wording of the code.
    pub fn text(&self) -> String {
        let msg = self.message.trim();
        if !msg.is_empty() {
            return msg.to_lowercase();
        }
        match self.code {
            FX_OK => "ok",
            FX_EOF => "end of file",
            FX_NO_SUCH_FILE => "no such file",
            FX_PERMISSION_DENIED => "permission denied",
            FX_FAILURE => "failure",
            FX_BAD_MESSAGE => "bad message",
            FX_NO_CONNECTION => "no connection",
            FX_CONNECTION_LOST => "connection lost",
            FX_OP_UNSUPPORTED => "operation unsupported",
            FX_NO_SPACE_ON_FILESYSTEM => "no space left on device",
            FX_QUOTA_EXCEEDED => "quota exceeded",
            _ => "unknown error",
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_have_their_length_prefix() {
        let mut p = Packet::request(FXP_OPEN, 7);
        p.string("a/b").u32(FXF_READ).no_attrs();
        let bytes = p.finish(0);
        assert_eq!(
            u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len() - 4
        );
        let mut d = Decoder::new(&bytes[4..]);
        assert_eq!(d.u8().unwrap(), FXP_OPEN);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.string().unwrap(), "a/b");
        assert_eq!(d.u32().unwrap(), FXF_READ);
        assert_eq!(d.attrs().unwrap(), Attrs::default());
        assert!(d.is_empty());
        assert_eq!(Packet::init(3), [0, 0, 0, 5, FXP_INIT, 0, 0, 0, 3]);
        let w = Packet::request(FXP_WRITE, 1).finish(100);
        assert_eq!(u32::from_be_bytes(w[..4].try_into().unwrap()), 5 + 100);
    }

    #[test]
    fn attributes_decode_every_field() {
        let mut b = Vec::new();
        b.extend_from_slice(
            &(ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME | ATTR_EXTENDED)
                .to_be_bytes(),
        );
        b.extend_from_slice(&1234u64.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        b.extend_from_slice(&0o100644u32.to_be_bytes());
        b.extend_from_slice(&5u32.to_be_bytes());
        b.extend_from_slice(&6u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v']);
        let a = Decoder::new(&b).attrs().unwrap();
        assert_eq!(a.size, Some(1234));
        assert_eq!(a.mtime, Some(6));
        assert!(a.is_file() && !a.is_dir());
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        for cut in 0..20 {
            let b = [0xffu8; 20];
            let mut d = Decoder::new(&b[..cut]);
            assert!(d.attrs().is_err());
            let mut d = Decoder::new(&b[..cut]);
            assert!(d.string().is_err());
        }
        let mut d = Decoder::new(&[0, 0, 0, 4]);
        let s = Status::decode(&mut d).unwrap();
        assert_eq!(s.text(), "failure");
    }
}
