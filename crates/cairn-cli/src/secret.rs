//! Passwords: one way to read them ([`secret`]) and one type that holds
//! them ([`Secret`], wiped from memory when dropped).
//!
//! A password comes from, in order: an environment variable, a file (its
//! first line), a command (the first line it prints), or a prompt on the
//! terminal (twice when a new password is set). For the repository's
//! password a flag given on the command line comes before the variable
//! ([`repository_password`]). The repository's password
//! ([`repository_password`]), a new key's, and the source repository's of
//! `copy` all go through [`secret`].

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// A password's bytes, overwritten with zeros when dropped. Dereferences to
/// `[u8]`; its `Debug` does not show them.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::ops::Deref for Secret {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where a password comes from.
pub struct SecretSource<'a> {
    /// An environment variable holding the secret itself.
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub command: Option<&'a str>,
    /// How errors name the command (default: `password command "CMD"`).
    pub command_name: Option<&'a str>,
    /// The options that give it, for the error when none does.
    pub options: &'a str,
    /// The terminal prompt, when there is a terminal.
    pub prompt: &'a str,
}

/// The first line of `bytes`, without its line end.
fn first_line(bytes: &[u8]) -> Secret {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..end];
    Secret(Zeroizing::new(
        line.strip_suffix(b"\r").unwrap_or(line).to_vec(),
    ))
}

fn prompt(text: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| Error::io(e, "reading the password from the terminal"))
}

/// Read a secret from, in order, its environment variable, file, command,
/// or a prompt (twice with `confirm`).
pub fn secret(src: &SecretSource<'_>, confirm: bool) -> Result<Secret> {
    if let Some(p) = src.env.and_then(std::env::var_os) {
        use std::os::unix::ffi::OsStrExt;
        return Ok(Secret(Zeroizing::new(p.as_bytes().to_vec())));
    }
    if let Some(f) = src.file {
        let bytes = Zeroizing::new(
            std::fs::read(f)
                .map_err(|e| Error::io(e, format!("reading password file {}", f.display())))?,
        );
        return Ok(first_line(&bytes));
    }
    if let Some(cmd) = src.command {
        let what = src
            .command_name
            .map_or_else(|| format!("password command {cmd:?}"), String::from);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::command(format!("running {what}: {e}"), Some(e)))?;
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            return Err(Error::command(
                format!("{what} failed ({})", out.status),
                None,
            ));
        }
        return Ok(first_line(&stdout));
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = prompt(src.prompt)?;
        if confirm {
            let again = rpassword::prompt_password("enter password again: ")
                .map(Zeroizing::new)
                .map_err(|e| Error::io(e, "reading the password"))?;
            if *again != *p {
                return Err(Error::usage("passwords do not match"));
            }
        }
        if p.is_empty() {
            return Err(Error::usage("an empty password is not allowed"));
        }
        return Ok(Secret(Zeroizing::new(p.as_bytes().to_vec())));
    }
    Err(Error::usage(format!("no password: {}", src.options)))
}

/// The repository's password: --password-file or --password-command given
/// on the command line, else CAIRN_PASSWORD, else --password-file or
/// --password-command from their environment variables
/// (CAIRN_PASSWORD_FILE, CAIRN_PASSWORD_COMMAND), else a prompt on the
/// terminal. A file and a command together are refused.
pub fn repository_password(g: &GlobalOptions, confirm: bool) -> Result<Secret> {
    check_password_options(g)?;
    secret(
        &SecretSource {
            env: (!g.password_flag_given).then_some("CAIRN_PASSWORD"),
            file: g.password_file.as_deref(),
            command: g.password_command.as_deref(),
            command_name: Some("--password-command"),
            options:
                "set CAIRN_PASSWORD, --password-file/CAIRN_PASSWORD_FILE or --password-command",
            prompt: "enter password for repository: ",
        },
        confirm,
    )
}

/// `--password-file` and `--password-command` exclude each other (from the
/// command line or the environment alike), as in restic.
pub fn check_password_options(g: &GlobalOptions) -> Result<()> {
    if g.password_file.is_some() && g.password_command.is_some() {
        return Err(Error::usage(
            "--password-file and --password-command are mutually exclusive: give one",
        ));
    }
    Ok(())
}
