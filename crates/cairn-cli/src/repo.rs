//! Finding the repository and the password, then opening or creating it.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::secret::Secret;
use cairn_location::{BackendOptions, ExtendedOptions, Location};
use cairn_repository::backend::{Backend, RetryPolicy};
use cairn_repository::format::crypto::KdfParams;
use cairn_repository::{Kind, OpenOptions, Repository};
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

/// The root of the local cache for remote repositories: `--cache-dir`
/// (or `CAIRN_CACHE_DIR`), else `$XDG_CACHE_HOME/cairn`, else
/// `~/.cache/cairn`; `None` with `--no-cache` or without a home.
pub fn cache_dir(g: &GlobalOptions) -> Option<PathBuf> {
    if g.no_cache {
        return None;
    }
    if let Some(d) = &g.cache_dir {
        return Some(d.clone());
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("cairn"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache/cairn"))
}

/// How caches not used for this long are removed by `--cleanup-cache`.
const CACHE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The backend options from the global flags and the environment.
pub fn backend_options(g: &GlobalOptions) -> Result<BackendOptions> {
    let options = ExtendedOptions::parse(&g.options).map_err(|e| Error::usage(e.to_string()))?;
    let mut opts = BackendOptions {
        options,
        cacert: g.cacert.clone(),
        tls_client_cert: g.tls_client_cert.clone(),
        insecure_tls: g.insecure_tls,
        rest_username: std::env::var("CAIRN_REST_USERNAME")
            .ok()
            .filter(|u| !u.is_empty()),
        rest_password: std::env::var("CAIRN_REST_PASSWORD").ok(),
        limit_upload: g.limit_upload.filter(|&l| l > 0),
        limit_download: g.limit_download.filter(|&l| l > 0),
        cache_dir: cache_dir(g),
        ..BackendOptions::default()
    };
    if !g.quiet {
        let max = RetryPolicy::default().max_attempts;
        opts.retry_notify = Some(Arc::new(move |e, attempt, wait| {
            eprintln!(
                "warning: {e}; retrying in {:.1} s (attempt {} of {max})",
                wait.as_secs_f64(),
                attempt + 1
            )
        }));
    }
    Ok(opts)
}

/// The backend for a repository location, through the location registry
/// (`cairn-location`): every form, with retries, limits and the cache for
/// remote ones.
pub fn backend_for(spec: &str, g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
    let location = Location::parse(spec).map_err(|e| Error::usage(e.to_string()))?;
    let mut opts = backend_options(g)?;
    if g.insecure_tls && location.is_remote() && !g.quiet {
        // Said once per run, however often a command resolves the backend.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!("warning: --insecure-tls: the server's TLS certificate is not verified")
        });
    }
    if !location.is_remote() {
        opts.cache_dir = None;
    }
    if g.cleanup_cache {
        cleanup_cache(g);
    }
    Ok(cairn_location::open(&location, &opts)?)
}

fn cleanup_cache(g: &GlobalOptions) {
    let Some(dir) = cache_dir(g) else { return };
    match cairn_repository::backend::cache::cleanup(&dir, CACHE_MAX_AGE) {
        Ok(removed) if !g.quiet => {
            for d in &removed {
                eprintln!("removed old cache {}", d.display());
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: cleaning the cache in {}: {e}", dir.display()),
    }
}

/// The repository location the user gave: `-r`/`CAIRN_REPOSITORY`, or the
/// first line of `--repository-file`/`CAIRN_REPOSITORY_FILE` (not both).
pub fn repository_location(g: &GlobalOptions) -> Result<Option<String>> {
    let Some(file) = &g.repository_file else {
        return Ok(g.repo.clone());
    };
    if g.repo.is_some() {
        return Err(Error::usage(
            "-r/--repo and --repository-file are mutually exclusive: give one",
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::io(e, format!("reading repository file {}", file.display())))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(Error::usage(format!(
            "repository file {} is empty",
            file.display()
        )));
    }
    Ok(Some(line.to_string()))
}

pub fn backend(g: &GlobalOptions) -> Result<Arc<dyn Backend>> {
    match repository_location(g)? {
        Some(r) => backend_for(&r, g),
        None => {
            let path = default_repository()?;
            // Said once per run, however often a command resolves the backend.
            static SAID: std::sync::Once = std::sync::Once::new();
            if !g.quiet {
                SAID.call_once(|| eprintln!("using default repository at {}", path.display()));
            }
            Ok(cairn_location::open(
                &Location::Local(path),
                &BackendOptions::default(),
            )?)
        }
    }
}

pub fn hostname() -> String {
    match nix::unistd::gethostname() {
        Ok(name) if !name.is_empty() => name.to_string_lossy().into_owned(),
        _ => "localhost".into(),
    }
}

pub fn username() -> String {
    let name = cairn_engine::archiver::NameCache::default().user(nix::unistd::getuid().as_raw());
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
        key_hint: g.key_hint.clone(),
    })
}

/// The backend, and whether a repository (its `config`) is there: the one
/// look at the location before a password is asked for.
fn locate(g: &GlobalOptions) -> Result<(Arc<dyn Backend>, bool)> {
    let backend = backend(g)?;
    let exists = backend.exists(cairn_repository::backend::FileKind::Config, "config")?;
    Ok((backend, exists))
}

fn open_located(g: &GlobalOptions, backend: Arc<dyn Backend>) -> Result<Arc<Repository>> {
    let pw = cached_password(g)?;
    let repo = Repository::open(backend, &pw, open_options(g)?)?;
    for e in repo.damaged_keys() {
        eprintln!(
            "warning: {} (skipped; `cairn check` lists every damaged key file)",
            e.message
        );
    }
    Ok(Arc::new(repo))
}

fn init_located(g: &GlobalOptions, backend: Arc<dyn Backend>) -> Result<Arc<Repository>> {
    let pw = crate::secret::repository_password(g, true)?;
    Ok(Arc::new(Repository::init(backend, &pw, open_options(g)?)?))
}

/// Open the repository; a missing one fails before the password is asked for.
pub fn open(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let (backend, exists) = locate(g)?;
    if !exists {
        return Err(Error::new(
            Kind::NoRepository,
            format!(
                "repository {} does not exist (create it with `cairn init`)",
                backend.location()
            ),
        ));
    }
    open_located(g, backend)
}

/// Open the repository through a [`DryRunBackend`](cairn_repository::backend::DryRunBackend):
/// the command runs in full, and nothing it writes reaches the repository.
pub fn open_dry_run(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let (backend, exists) = locate(g)?;
    if !exists {
        return Err(Error::new(
            Kind::NoRepository,
            format!(
                "repository {} does not exist (create it with `cairn init`)",
                backend.location()
            ),
        ));
    }
    let dry: Arc<dyn Backend> = Arc::new(cairn_repository::backend::DryRunBackend::new(backend));
    open_located(g, dry)
}

pub fn open_with_index(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let repo = open(g)?;
    repo.load_index()?;
    Ok(repo)
}

/// Create the repository; an existing one is an error.
pub fn init(g: &GlobalOptions) -> Result<Arc<Repository>> {
    let (backend, exists) = locate(g)?;
    if exists {
        return Err(Error::new(
            Kind::AlreadyInitialized,
            format!("repository {} already exists", backend.location()),
        ));
    }
    init_located(g, backend)
}

/// Open the repository, creating it first if it does not exist
/// (`backup --init`); says whether it was created.
pub fn open_or_init(g: &GlobalOptions) -> Result<(Arc<Repository>, bool)> {
    let (backend, exists) = locate(g)?;
    if exists {
        Ok((open_located(g, backend)?, false))
    } else {
        Ok((init_located(g, backend)?, true))
    }
}

/// A password read once and kept for the rest of the process, so a command
/// that opens the repository several times (`run`: backup, forget, check)
/// asks or runs the password command once. Never printed.
#[derive(Clone, Default)]
pub struct PasswordCache(Arc<std::sync::OnceLock<Secret>>);

impl std::fmt::Debug for PasswordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordCache(..)")
    }
}

/// The password for opening the repository: from `g.password_cache` when
/// it holds one, else read (and kept there when there is a cache).
pub fn cached_password(g: &GlobalOptions) -> Result<Secret> {
    let Some(cache) = &g.password_cache else {
        return crate::secret::repository_password(g, false);
    };
    if let Some(p) = cache.0.get() {
        return Ok(p.clone());
    }
    let p = crate::secret::repository_password(g, false)?;
    let _ = cache.0.set(p.clone());
    Ok(p)
}
