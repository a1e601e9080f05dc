//! The server's messages: start-up and errors on stderr, `--debug` detail
//! on stderr, and the access log (`--log FILE`, or `-` for stdout) in the
//! combined log format that rest-server writes.

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
        self.debug(|| format!("{method} {uri} -> {}", status.as_u16()));
        let Some(out) = &self.access else { return };
        let when = chrono::Local::now().format("%d/%b/%Y:%H:%M:%S %z");
        let line = format!(
            "{} - {} [{when}] \"{method} {uri} {version:?}\" {} {bytes} \"{}\" \"{}\"\n",
            peer.ip(),
            if user.is_empty() { "-" } else { user },
            status.as_u16(),
            referer.replace('"', "\\\""),
            agent.replace('"', "\\\""),
        );
        let mut w = out.lock().unwrap();
        let _ = w.write_all(line.as_bytes());
        let _ = w.flush();
    }
}
