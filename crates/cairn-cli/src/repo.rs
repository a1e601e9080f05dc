//! Finding the repository and the password, then opening or creating it.

use crate::cli::GlobalOptions;
use cairn_repository::backend::{Backend, LocalBackend};
use cairn_repository::format::crypto::KdfParams;
use cairn_repository::{Error, Kind, OpenOptions, Repository, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// The repository used when none is given: `$XDG_DATA_HOME/cairn/repository`
/// (or `~/.local/share/cairn/repository`).
pub fn default_repository() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("cairn/repository"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        Error::usage("no repository given (-r/--repo or CAIRN_REPOSITORY) and HOME is not set for the default one")
    })?;
    Ok(PathBuf::from(home).join(".local/share/cairn/repository"))
}

/// The backend for a repository location: a local path, `local:PATH`, or
/// `rest:URL` (retried on transient failures, warning on stderr unless --quiet).
pub fn backend_for(spec: &str, g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
    if let Some(path) = spec.strip_prefix("local:") {
        return Ok(Arc::new(LocalBackend::new(path)));
    }
    if spec.starts_with("rest:") {
        return rest_backend(spec, g);
    }
    if let Some((scheme, _)) = spec.split_once(':') {
        if !scheme.contains('/') && scheme.len() > 1 {
            return Err(Error::usage(format!(
                "unknown repository type {scheme:?} in {spec:?} (supported: a local path, local:PATH, rest:URL)"
            )));
        }
    }
    if spec.is_empty() {
        return Err(Error::usage("empty repository location"));
    }
    Ok(Arc::new(LocalBackend::new(spec)))
}

fn rest_backend(spec: &str, g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
    use cairn_repository::backend::{RetryBackend, RetryPolicy};
    let opts = cairn_backend_rest::RestOptions {
        username: std::env::var("CAIRN_REST_USERNAME").ok().filter(|u| !u.is_empty()),
        password: std::env::var("CAIRN_REST_PASSWORD").ok(),
        cacert: g.cacert.clone(),
        ..Default::default()
    };
    let rest = cairn_backend_rest::RestBackend::new(spec, opts).map_err(|e| Error::usage(e.message))?;
    let mut b = RetryBackend::new(rest, RetryPolicy::default());
    if !g.quiet {
        b = b.with_notify(|e, attempt, wait| {
            eprintln!("warning: {e}; retrying in {:.1} s (attempt {} of {})", wait.as_secs_f64(), attempt + 1, RetryPolicy::default().max_attempts)
        });
    }
    Ok(Arc::new(b))
}

pub fn backend(g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
    match &g.repo {
        Some(r) => backend_for(r, g),
        None => {
            let path = default_repository()?;
            // Said once per run, however often a command resolves the backend.
            static SAID: std::sync::Once = std::sync::Once::new();
            if !g.quiet {
                SAID.call_once(|| eprintln!("using default repository at {}", path.display()));
            }
            Ok(Arc::new(LocalBackend::new(path)))
        }
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates within it on success.
    if unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } == 0 {
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..n]).into_owned();
    }
    "localhost".into()
}

pub fn username() -> String {
    // SAFETY: getuid cannot fail.
    let name = cairn_engine::archiver::NameCache::default().user(unsafe { libc::getuid() });
    if name.is_empty() {
        std::env::var("USER").unwrap_or_default()
    } else {
        name
    }
}

fn compression(g: &GlobalOptions) -> Result<Option<i32>> {
    match g.compression.as_str() {
        "auto" => Ok(Some(2)),
        "off" => Ok(None),
        "max" => Ok(Some(19)),
        n => match n.parse::<i32>() {
            Ok(l) if (1..=19).contains(&l) => Ok(Some(l)),
            _ => Err(Error::usage(format!(
                "invalid --compression {n:?}: use auto, off, max or a level 1-19"
            ))),
        },
    }
}

/// scrypt costs for new keys. Debug builds honour CAIRN_TEST_CHEAP_KDF=1 so
/// the test suite stays fast; release builds never do.
fn kdf() -> KdfParams {
    if cfg!(debug_assertions) && std::env::var_os("CAIRN_TEST_CHEAP_KDF").is_some_and(|v| v == "1")
    {
        return KdfParams::INSECURE_TEST;
    }
    KdfParams::DEFAULT
}

pub fn open_options(g: &GlobalOptions) -> Result<OpenOptions> {
    Ok(OpenOptions {
        compression: compression(g)?,
        kdf: kdf(),
        hostname: hostname(),
        username: username(),
    })
}

fn first_line(bytes: &[u8]) -> Vec<u8> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..end];
    line.strip_suffix(b"\r").unwrap_or(line).to_vec()
}

/// The password, from (in order) CAIRN_PASSWORD, --password-file,
/// --password-command, or a prompt on the terminal.
pub fn password(g: &GlobalOptions, confirm: bool) -> Result<Vec<u8>> {
    if let Some(p) = std::env::var_os("CAIRN_PASSWORD") {
        use std::os::unix::ffi::OsStrExt;
        return Ok(p.as_bytes().to_vec());
    }
    if let Some(f) = &g.password_file {
        let bytes = std::fs::read(f)
            .map_err(|e| Error::io(e, format!("reading password file {}", f.display())))?;
        return Ok(first_line(&bytes));
    }
    if let Some(cmd) = &g.password_command {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::new(Kind::Command, format!("running --password-command: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(
                Kind::Command,
                format!("--password-command failed ({})", out.status),
            ));
        }
        return Ok(first_line(&out.stdout));
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password("enter password for repository: ")
            .map_err(|e| Error::io(e, "reading the password from the terminal"))?;
        if confirm {
            let again = rpassword::prompt_password("enter password again: ")
                .map_err(|e| Error::io(e, "reading the password"))?;
            if again != p {
                return Err(Error::usage("passwords do not match"));
            }
        }
        if p.is_empty() {
            return Err(Error::usage("an empty password is not allowed"));
        }
        return Ok(p.into_bytes());
    }
    Err(Error::usage("no password: set CAIRN_PASSWORD, --password-file/CAIRN_PASSWORD_FILE or --password-command"))
}

/// Where a secret other than the repository's password comes from: the
/// new password of `key add`/`key passwd`, or the source repository's
/// password of `copy` and `init --copy-chunker-params`.
pub struct SecretSource<'a> {
    /// An environment variable holding the secret itself.
    pub env: Option<&'a str>,
    pub file: Option<&'a std::path::Path>,
    pub command: Option<&'a str>,
    /// The options that give it, for the error when none does.
    pub options: &'a str,
    /// The terminal prompt, when there is a terminal.
    pub prompt: &'a str,
}

/// Read a secret from, in order, its environment variable, file, command,
/// or a prompt (twice with `confirm`).
pub fn secret(src: &SecretSource, confirm: bool) -> Result<Vec<u8>> {
    if let Some(p) = src.env.and_then(std::env::var_os) {
        use std::os::unix::ffi::OsStrExt;
        return Ok(p.as_bytes().to_vec());
    }
    if let Some(f) = src.file {
        let bytes = std::fs::read(f).map_err(|e| Error::io(e, format!("reading password file {}", f.display())))?;
        return Ok(first_line(&bytes));
    }
    if let Some(cmd) = src.command {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::new(Kind::Command, format!("running password command {cmd:?}: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(Kind::Command, format!("password command {cmd:?} failed ({})", out.status)));
        }
        return Ok(first_line(&out.stdout));
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(src.prompt).map_err(|e| Error::io(e, "reading the password from the terminal"))?;
        if confirm {
            let again = rpassword::prompt_password("enter password again: ").map_err(|e| Error::io(e, "reading the password"))?;
            if again != p {
                return Err(Error::usage("passwords do not match"));
            }
        }
        if p.is_empty() {
            return Err(Error::usage("an empty password is not allowed"));
        }
        return Ok(p.into_bytes());
    }
    Err(Error::usage(format!("no password: {}", src.options)))
}

pub fn open(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let backend = backend(g)?;
    // Fail on a missing repository before asking for a password.
    if !backend.exists(cairn_repository::backend::FileKind::Config, "config")? {
        return Err(Error::new(
            Kind::NoRepository,
            format!(
                "repository {} does not exist (create it with `cairn init`)",
                backend.location()
            ),
        ));
    }
    let pw = password(g, false)?;
    Ok(Arc::new(Repository::open(backend, &pw, open_options(g)?)?))
}

pub fn open_with_index(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let repo = open(g)?;
    repo.load_index()?;
    Ok(repo)
}

pub fn init(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let backend = backend(g)?;
    if backend.exists(cairn_repository::backend::FileKind::Config, "config")? {
        return Err(Error::new(
            Kind::AlreadyInitialized,
            format!("repository {} already exists", backend.location()),
        ));
    }
    let pw = password(g, true)?;
    Ok(Arc::new(Repository::init(backend, &pw, open_options(g)?)?))
}
