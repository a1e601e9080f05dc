//! HTTP Basic authentication against an htpasswd file.
//!
//! Hash forms read: bcrypt (`$2a$`, `$2b$`, `$2y$`, what `htpasswd -B`
//! writes), `{SHA}` (base64 SHA-1, `htpasswd -s`), and Apache's MD5 crypt
//! `$apr1$` (what `htpasswd` writes by default). Other lines are ignored
//! with a warning, as are user names outside letters, digits and `@._-`.
//!
//! The file is re-read when it changes (its size, modification time or inode
//! differ; checked at most once a second, and on SIGHUP). A reload that
//! fails keeps the users already loaded. A verified password is remembered
//! (as a SHA-256 of `user:password`) for a minute, so a client's many
//! requests do not each cost a bcrypt verification; a reload forgets them.
//!
//! An unknown user costs what a known one does: the password is checked
//! against a dummy hash of the users' bcrypt cost, so timing does not tell
//! which user names exist.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const CHECK_INTERVAL: Duration = Duration::from_secs(1);
const CACHE_FOR: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino: m.ino(),
    })
}

struct Loaded {
    users: HashMap<String, String>,
    /// Checked for unknown users: a bcrypt hash of the users' cost.
    dummy: String,
    stamp: Stamp,
    checked: Instant,
    /// user → (SHA-256 of "user:password", valid until)
    verified: HashMap<String, ([u8; 32], Instant)>,
}

pub struct Htpasswd {
    path: PathBuf,
    state: Mutex<Loaded>,
}

/// User names rest-server accepts: letters, digits, `@`, `.`, `_`, `-`.
pub fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "@._-".contains(c))
}

/// Parse htpasswd text into user → hash; warnings for the lines skipped.
pub fn parse(text: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut users = HashMap::new();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, rest)) = line.split_once(':') else {
            warnings.push(format!(
                "line {}: no ':' between user name and hash; ignored",
                n + 1
            ));
            continue;
        };
        let hash = rest.trim_start().split(':').next().unwrap_or("").trim_end();
        if !valid_user(user) {
            warnings.push(format!("line {}: invalid user name {user:?} (letters, digits, '@', '.', '_', '-' only); ignored", n + 1));
            continue;
        }
        if !supported_hash(hash) {
            warnings.push(format!(
                "line {}: user {user:?}: unsupported hash (use bcrypt `htpasswd -B`, `{{SHA}}` or `$apr1$`); ignored",
                n + 1
            ));
            continue;
        }
        users.insert(user.to_string(), hash.to_string());
    }
    (users, warnings)
}

fn supported_hash(hash: &str) -> bool {
    hash.starts_with("{SHA}")
        || hash.starts_with("$apr1$")
        || ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// Does `password` match `hash` (one of the supported forms)?
pub fn verify(hash: &str, password: &str) -> bool {
    if let Some(b64) = hash.strip_prefix("{SHA}") {
        let digest = sha1::Sha1::digest(password.as_bytes());
        return ct_eq(
            base64::engine::general_purpose::STANDARD
                .encode(digest)
                .as_bytes(),
            b64.as_bytes(),
        );
    }
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        let salt = rest.split('$').next().unwrap_or("");
        return ct_eq(
            apr1(password.as_bytes(), salt.as_bytes()).as_bytes(),
            hash.as_bytes(),
        );
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    false
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Apache's MD5 crypt (`$apr1$salt$hash`): the FreeBSD MD5 crypt algorithm
/// with the magic string `$apr1$`.
pub fn apr1(password: &[u8], salt: &[u8]) -> String {
    use md5::Md5;
    const MAGIC: &[u8] = b"$apr1$";
    let salt = &salt[..salt.len().min(8)];
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        ctx.update(&alt[..left.min(16)]);
        left = left.saturating_sub(16);
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::from("$apr1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put(
            ((fin[a] as u32) << 16) | ((fin[b] as u32) << 8) | fin[c] as u32,
            4,
        );
    }
    put(fin[11] as u32, 2);
    out
}

/// What checking credentials found.
pub enum Check {
    /// Verified recently (the cache).
    Ok(String),
    /// No credentials, or not Basic ones.
    Missing,
    /// Needs a verification: [`Htpasswd::verify_slow`], off the async
    /// threads when `slow` (bcrypt). An unknown user gets the dummy hash
    /// and `known: false`, and is refused whatever the password.
    Verify {
        user: String,
        password: String,
        hash: String,
        known: bool,
        slow: bool,
    },
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// The cost of a bcrypt hash (`$2b$10$...`).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    if !is_bcrypt(hash) {
        return None;
    }
    hash.get(4..6)?.parse().ok()
}

/// A hash no password is known for, as costly to check as the users' own:
/// bcrypt of their most common cost, or `{SHA}` when none uses bcrypt.
fn dummy_hash(users: &HashMap<String, String>, old: Option<&str>) -> String {
    const NO_PASSWORD: &str = "{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let mut costs: HashMap<u32, usize> = HashMap::new();
    for h in users.values() {
        if let Some(c) = bcrypt_cost(h) {
            *costs.entry(c.clamp(4, 31)).or_default() += 1;
        }
    }
    let Some(cost) = costs
        .into_iter()
        .max_by_key(|&(c, n)| (n, c))
        .map(|(c, _)| c)
    else {
        return NO_PASSWORD.into();
    };
    if let Some(old) = old.filter(|o| bcrypt_cost(o) == Some(cost)) {
        return old.to_string();
    }
    let secret = hex::encode(rand::random::<[u8; 24]>());
    bcrypt::hash(secret, cost).unwrap_or_else(|_| NO_PASSWORD.into())
}

impl Htpasswd {
    /// Load the file; an error names the file and says what to do.
    pub fn load(path: &Path) -> Result<(Htpasswd, Vec<String>), String> {
        let (users, stamp, warnings) = read(path)?;
        let state = Loaded {
            dummy: dummy_hash(&users, None),
            users,
            stamp,
            checked: Instant::now(),
            verified: HashMap::new(),
        };
        Ok((
            Htpasswd {
                path: path.to_path_buf(),
                state: Mutex::new(state),
            },
            warnings,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn user_count(&self) -> usize {
        self.state.lock().unwrap().users.len()
    }

    /// Re-read the file now; on failure the old users stay.
    pub fn reload(&self) -> Result<Vec<String>, String> {
        let (users, stamp, warnings) = read(&self.path)?;
        let old = self.state.lock().unwrap().dummy.clone();
        let dummy = dummy_hash(&users, Some(&old));
        let mut st = self.state.lock().unwrap();
        st.dummy = dummy;
        st.users = users;
        st.stamp = stamp;
        st.verified.clear();
        st.checked = Instant::now();
        Ok(warnings)
    }

    /// Re-read the file if it changed (checked at most once a second).
    /// Returns a message to log when it was reloaded or could not be.
    fn reload_if_changed(&self) -> Option<String> {
        {
            let mut st = self.state.lock().unwrap();
            if st.checked.elapsed() < CHECK_INTERVAL {
                return None;
            }
            st.checked = Instant::now();
            match stamp(&self.path) {
                Ok(s) if s == st.stamp => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(format!(
                        "cannot check {}: {e}; keeping the users loaded",
                        self.path.display()
                    ))
                }
            }
        }
        Some(match self.reload() {
            Ok(w) if w.is_empty() => format!("reloaded {}", self.path.display()),
            Ok(w) => format!("reloaded {} ({})", self.path.display(), w.join("; ")),
            Err(e) => format!("{e}; keeping the users loaded"),
        })
    }

    /// Check an `Authorization` header value. The second value is a message
    /// to log (a reload).
    pub fn check(&self, header: Option<&[u8]>) -> (Check, Option<String>) {
        let note = self.reload_if_changed();
        let Some((user, password)) = header.and_then(basic_credentials) else {
            return (Check::Missing, note);
        };
        let digest = verifier(&user, &password);
        let mut st = self.state.lock().unwrap();
        let (hash, known) = match st.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (st.dummy.clone(), false),
        };
        if let Some((d, until)) = st.verified.get(&user) {
            if known && *until > Instant::now() && ct_eq(d, &digest) {
                st.verified
                    .insert(user.clone(), (digest, Instant::now() + CACHE_FOR));
                return (Check::Ok(user), note);
            }
        }
        drop(st);
        let slow = is_bcrypt(&hash);
        (
            Check::Verify {
                user,
                password,
                hash,
                known,
                slow,
            },
            note,
        )
    }

    /// Verify what [`Htpasswd::check`] could not decide: the user when the
    /// password is right (and remember it for a while), else `None`.
    pub fn verify_slow(
        &self,
        user: String,
        password: String,
        hash: String,
        known: bool,
    ) -> Option<String> {
        let ok = verify(&hash, &password) && known;
        self.remember(user, &password, ok)
    }

    fn remember(&self, user: String, password: &str, ok: bool) -> Option<String> {
        if !ok {
            return None;
        }
        let mut st = self.state.lock().unwrap();
        st.verified.retain(|_, (_, until)| *until > Instant::now());
        st.verified.insert(
            user.clone(),
            (verifier(&user, password), Instant::now() + CACHE_FOR),
        );
        Some(user)
    }
}

fn verifier(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// Users, the file's stamp when read, and warnings about skipped lines.
type Read = (HashMap<String, String>, Stamp, Vec<String>);

fn read(path: &Path) -> Result<Read, String> {
    let what = |e: std::io::Error| format!("cannot read the htpasswd file {}: {e}", path.display());
    let st = stamp(path).map_err(what)?;
    let text = std::fs::read_to_string(path).map_err(what)?;
    let (users, warnings) = parse(&text);
    Ok((users, st, warnings))
}

/// User and password from `Basic base64(user:password)`.
pub fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(header).ok()?.trim();
    let (scheme, b64) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apr1_matches_apache() {
        // `openssl passwd -apr1 -salt xxxxxxxx password` and Apache's htpasswd.
        assert_eq!(
            apr1(b"password", b"xxxxxxxx"),
            "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0"
        );
        assert!(verify("$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", "password"));
        assert!(!verify("$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", "passwore"));
    }

    #[test]
    fn sha_and_bcrypt() {
        // `htpasswd -nbs user password`
        assert!(verify("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password"));
        assert!(!verify("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "Password"));
        let h = bcrypt::hash_with_result("secret", 4).unwrap();
        for v in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let s = h.format_for_version(v);
            assert!(verify(&s, "secret"), "{s}");
            assert!(!verify(&s, "secreT"), "{s}");
        }
        assert!(!verify("plaintext", "plaintext"));
    }

    #[test]
    fn parsing() {
        let (users, warnings) = parse(
            "# comment\n\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbad user:{SHA}x\nbob:$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0\ncarol:plain\nnocolon\n",
        );
        assert_eq!(users.len(), 2);
        assert!(users.contains_key("alice") && users.contains_key("bob"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn unknown_users_cost_as_much_as_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let hash = bcrypt::hash("secret", 6).unwrap();
        std::fs::write(&file, format!("alice:{hash}\n")).unwrap();
        let (h, _) = Htpasswd::load(&file).unwrap();
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let (c, _) = h.check(Some(header("mallory", "secret").as_bytes()));
        let Check::Verify {
            hash: dummy,
            known,
            slow,
            user,
            password,
        } = c
        else {
            panic!("an unknown user must be verified like a known one");
        };
        assert!(!known && slow);
        assert_eq!(bcrypt_cost(&dummy), Some(6), "{dummy}");
        assert_ne!(dummy, hash);
        assert_eq!(h.verify_slow(user, password, dummy, known), None);
        // The known user: verified once, then from the cache.
        let (c, _) = h.check(Some(header("alice", "secret").as_bytes()));
        let Check::Verify {
            user,
            password,
            hash,
            known,
            ..
        } = c
        else {
            panic!("a first check is verified");
        };
        assert_eq!(
            h.verify_slow(user, password, hash, known).as_deref(),
            Some("alice")
        );
        let (c, _) = h.check(Some(header("alice", "secret").as_bytes()));
        assert!(matches!(c, Check::Ok(u) if u == "alice"));
        let (c, _) = h.check(Some(header("alice", "wrong").as_bytes()));
        assert!(matches!(c, Check::Verify { known: true, .. }));
    }

    #[test]
    fn basic_header() {
        assert_eq!(
            basic_credentials(b"Basic YWxpY2U6cGE6c3M="),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials(b"Bearer x"), None);
        assert_eq!(basic_credentials(b"Basic !!"), None);
    }
}
