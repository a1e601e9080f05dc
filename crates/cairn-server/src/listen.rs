//! Where to listen: `--listen ADDR` as rest-server reads it (`:8000` means
//! every interface, IPv6 and IPv4), or a socket handed over by systemd
//! (socket activation: `LISTEN_PID`/`LISTEN_FDS`, one socket).

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// Bind `addr`, or take systemd's socket when `socket_activation` is on and
/// one was passed to this process.
pub fn bind(addr: &str, socket_activation: bool) -> Result<(TcpListener, bool), String> {
    if socket_activation {
        if let Some(l) = systemd_listener()? {
            return Ok((l, true));
        }
    }
    if addr.starts_with("unix:") {
        return Err(format!(
            "--listen {addr}: unix sockets are not supported; use HOST:PORT"
        ));
    }
    let candidates: Vec<SocketAddr> = if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("--listen {addr}: {port:?} is not a port number"))?;
        vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]
    } else {
        addr.to_socket_addrs()
            .map_err(|e| format!("--listen {addr}: {e} (expected HOST:PORT or :PORT)"))?
            .collect()
    };
    let mut last = None;
    for a in &candidates {
        match TcpListener::bind(a) {
            Ok(l) => return Ok((l, false)),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("cannot listen on {addr}: {e}"),
        None => format!("--listen {addr}: the address resolves to nothing"),
    })
}

fn systemd_listener() -> Result<Option<TcpListener>, String> {
    use std::os::fd::FromRawFd;
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let fds: usize = match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) if pid_matches => n,
        _ => return Ok(None),
    };
    match fds {
        0 => Ok(None),
        // SAFETY: systemd passes the sockets as file descriptors 3.. and this process owns them.
        1 => Ok(Some(unsafe { TcpListener::from_raw_fd(3) })),
        n => Err(format!("systemd passed {n} sockets; cairn serve takes one")),
    }
}
