//! The server's messages: start-up and errors on stderr, `--debug` detail
//! on stderr, and the access log (`--log FILE`, or `-` for stdout) in the
//! combined log format that rest-server writes.
//!
//! What a client sent (path, user name, Referer, User-Agent) is written
//! escaped ([`escape`]): a `"` or a control character cannot end a field
//! or a line, so every line of the log is one request.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;

pub struct Log {
    access: Option<Mutex<Box<dyn Write + Send>>>,
    debug: bool,
    quiet: bool,
}

impl Log {
    pub fn new(access: Option<Box<dyn Write + Send>>, debug: bool, quiet: bool) -> Log {
        Log {
            access: access.map(Mutex::new),
            debug,
            quiet,
        }
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("cairn serve: {msg}");
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("cairn serve: error: {msg}");
    }

    pub fn debug(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            eprintln!("cairn serve: debug: {}", msg());
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn access(
        &self,
        peer: SocketAddr,
        user: &str,
        method: &hyper::Method,
        uri: &hyper::Uri,
        version: hyper::Version,
        status: hyper::StatusCode,
        bytes: u64,
        referer: &str,
        agent: &str,
    ) {
        self.debug(|| {
            format!(
                "{method} {} -> {}",
                escape(&uri.to_string()),
                status.as_u16()
            )
        });
        let Some(out) = &self.access else { return };
        let user = escape(user);
        let when = chrono::Local::now().format("%d/%b/%Y:%H:%M:%S %z");
        let line = format!(
            "{} - {} [{when}] \"{} {} {version:?}\" {} {bytes} \"{}\" \"{}\"\n",
            peer.ip(),
            if user.is_empty() { "-" } else { &user },
            escape(method.as_str()),
            escape(&uri.to_string()),
            status.as_u16(),
            escape(referer),
            escape(agent),
        );
        let mut w = out.lock().unwrap();
        let _ = w.write_all(line.as_bytes());
        let _ = w.flush();
    }
}

/// A client's text for a log line: `\` and `"` backslash-escaped, control
/// characters (and DEL) as `\xNN` or `\u{NNNN}`, as nginx and Apache do.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping() {
        assert_eq!(super::escape("plain/path 1"), "plain/path 1");
        assert_eq!(
            super::escape("a\"b\\c\td\ne\x7f\u{85}"),
            "a\\\"b\\\\c\\x09d\\x0ae\\x7f\\u{0085}"
        );
    }
}
