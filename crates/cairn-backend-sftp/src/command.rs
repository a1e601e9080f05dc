//! The ssh command line, and what ssh says on stderr when it fails.
//!
//! Built as `ssh [-p PORT] [-l USER] [ARGS...] [-o BatchMode=yes] HOST -s sftp`
//! unless the user gave the whole command (`-o sftp.command=...`), which is
//! used as written. `-o BatchMode=yes` goes after the user's arguments, so
//! an explicit `-o BatchMode=no` among them wins (ssh keeps the first value
//! of each option); it is left out when the terminal is handed to ssh so it
//! can ask for a password (see `conn`).

use crate::SftpConfig;
use cairn_backend::split_words;
use cairn_backend::{BackendError, ErrorKind, Result};

/// A program and its arguments, and a short label for messages
/// (`ssh root@host -p 2222`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCommand {
    pub program: String,
    pub args: Vec<String>,
    pub label: String,
}

/// The command that starts the SFTP session. `interactive`: ssh may prompt
/// on the terminal (no `BatchMode`).
pub fn ssh_command(cfg: &SftpConfig, interactive: bool) -> Result<SshCommand> {
    let invalid = |what: String| BackendError::new(ErrorKind::Permanent, format!("sftp: {what}"));
    if let Some(cmd) = &cfg.command {
        let mut words = split_words(cmd).map_err(|e| invalid(format!("sftp.command: {e}")))?;
        if words.is_empty() {
            return Err(invalid("sftp.command is empty".into()));
        }
        let program = words.remove(0);
        return Ok(SshCommand {
            program,
            args: words,
            label: cmd.trim().to_string(),
        });
    }
    if cfg.host.is_empty() {
        return Err(invalid("no host given".into()));
    }
    // A host or user starting with '-' would be read as an ssh option.
    if cfg.host.starts_with('-') {
        return Err(invalid(format!("invalid host {:?}", cfg.host)));
    }
    if let Some(u) = &cfg.user {
        if u.starts_with('-') || u.is_empty() {
            return Err(invalid(format!("invalid user {u:?}")));
        }
    }
    let mut args = Vec::new();
    if let Some(p) = cfg.port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    if let Some(u) = &cfg.user {
        args.extend(["-l".to_string(), u.clone()]);
    }
    if let Some(extra) = &cfg.args {
        args.extend(split_words(extra).map_err(|e| invalid(format!("sftp.args: {e}")))?);
    }
    if !interactive {
        args.extend(["-o".to_string(), "BatchMode=yes".to_string()]);
    }
    args.extend([cfg.host.clone(), "-s".to_string(), "sftp".to_string()]);
    let mut label = "ssh ".to_string();
    if let Some(u) = &cfg.user {
        label.push_str(u);
        label.push('@');
    }
    label.push_str(&cfg.host);
    if let Some(p) = cfg.port {
        label.push_str(&format!(" -p {p}"));
    }
    Ok(SshCommand {
        program: "ssh".into(),
        args,
        label,
    })
}

/// The lines of ssh's stderr worth showing: without the noise of
/// `Warning: Permanently added ...` and banners' blank lines, and without
/// ssh's own `ssh: ` prefix. Joined with "; ".
pub fn stderr_summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .map(|l| l.strip_prefix("ssh: ").unwrap_or(l))
        .collect();
    // The last few lines carry the reason; a long banner before them does not.
    let start = lines.len().saturating_sub(3);
    lines[start..].join("; ")
}

/// How a failure to connect should be treated, from ssh's stderr.
pub fn classify_stderr(stderr: &str) -> ErrorKind {
    let s = stderr.to_lowercase();
    let has = |p: &str| s.contains(p);
    if has("permission denied") || has("too many authentication failures") {
        ErrorKind::Denied
    } else if has("host key verification failed")
        || has("could not resolve hostname") && !has("temporary failure")
        || has("bad configuration option")
        || has("no such file or directory")
        || has("command not found")
        || has("usage:")
        || has("subsystem request failed")
    {
        ErrorKind::Permanent
    } else {
        // Refused, reset, timed out, unreachable, closed during the key
        // exchange, or no word at all (killed): worth another try.
        ErrorKind::Transient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_ssh_command() {
        let cfg = SftpConfig {
            user: Some("root".into()),
            host: "127.0.0.1".into(),
            port: Some(2222),
            path: "/srv/repo".into(),
            args: Some("-i key -o 'IdentitiesOnly yes'".into()),
            ..Default::default()
        };
        let c = ssh_command(&cfg, false).unwrap();
        assert_eq!(c.program, "ssh");
        assert_eq!(
            c.args,
            [
                "-p",
                "2222",
                "-l",
                "root",
                "-i",
                "key",
                "-o",
                "IdentitiesOnly yes",
                "-o",
                "BatchMode=yes",
                "127.0.0.1",
                "-s",
                "sftp"
            ]
        );
        assert_eq!(c.label, "ssh root@127.0.0.1 -p 2222");
        let c = ssh_command(&cfg, true).unwrap();
        assert!(!c.args.contains(&"BatchMode=yes".to_string()));

        let own = SftpConfig {
            command: Some("ssh -p 22 me@nas -s sftp".into()),
            ..cfg.clone()
        };
        let c = ssh_command(&own, false).unwrap();
        assert_eq!(c.program, "ssh");
        assert_eq!(c.args, ["-p", "22", "me@nas", "-s", "sftp"]);

        for bad in ["-oProxyCommand=x", ""] {
            let cfg = SftpConfig {
                host: bad.into(),
                ..Default::default()
            };
            assert_eq!(
                ssh_command(&cfg, false).unwrap_err().kind,
                ErrorKind::Permanent
            );
        }
    }

    #[test]
    fn reads_what_ssh_said() {
        let err = "Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\nroot@127.0.0.1: Permission denied (publickey).\r\n";
        assert_eq!(
            stderr_summary(err),
            "root@127.0.0.1: Permission denied (publickey)."
        );
        assert_eq!(classify_stderr(err), ErrorKind::Denied);
        let err = "ssh: connect to host 127.0.0.1 port 1: Connection refused\n";
        assert_eq!(
            stderr_summary(err),
            "connect to host 127.0.0.1 port 1: Connection refused"
        );
        assert_eq!(classify_stderr(err), ErrorKind::Transient);
        let err = "ssh: Could not resolve hostname nas.invalid: Name or service not known\n";
        assert_eq!(classify_stderr(err), ErrorKind::Permanent);
        assert_eq!(classify_stderr(""), ErrorKind::Transient);
    }
}
