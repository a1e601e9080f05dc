//! Request paths: which repository, and what in it.
//!
//! A path is `/{repo}{rest}` where `{repo}` is zero, one or two folder
//! names (`/`, `/alice/`, `/alice/laptop/`) and `{rest}` is one of `/`,
//! `/config`, `/{type}/` or `/{type}/{name}`, as in restic's rest-server.
//! Folder names are taken until a type name (`data`, `index`, `keys`,
//! `locks`, `snapshots`, `config`) or the depth limit is reached.
//!
//! Invariant: every [`Route`] names a directory inside the root. Segments
//! are percent-decoded first; an empty segment, `.`, `..`, a name starting
//! with a dot (which also keeps `.htpasswd` and temporary files out of
//! reach), a `/` or NUL produced by decoding, invalid UTF-8 and over-long
//! names are refused, as are object names that are not 64 lowercase hex
//! characters. Refused paths answer 404, like rest-server; a path that
//! decodes to a control character answers 400 ([`has_control`]) and is
//! never used, so none reaches a file name or a log line.

use cairn_backend::{valid_name, FileKind};
use percent_encoding::percent_decode_str;

/// How many folder levels a repository path may have.
pub const MAX_DEPTH: usize = 2;

/// Longest accepted folder name, in bytes.
const MAX_SEGMENT: usize = 255;

/// Longest accepted request path, in bytes.
pub const MAX_PATH: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `{repo}/`: `POST ?create=true` creates the repository.
    Root,
    /// `{repo}/config`
    Config,
    /// `{repo}/{type}/`: a listing.
    List(FileKind),
    /// `{repo}/{type}/{name}`
    Object(FileKind, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Folder names of the repository below the root (validated).
    pub repo: Vec<String>,
    pub target: Target,
}

impl Route {
    /// The repository as a label: `alice/laptop`, or empty for the root.
    pub fn repo_label(&self) -> String {
        self.repo.join("/")
    }
}

/// The object kind named by a path segment (`config` is not one).
pub fn kind_of(segment: &str) -> Option<FileKind> {
    match segment {
        "data" => Some(FileKind::Data),
        "index" => Some(FileKind::Index),
        "keys" => Some(FileKind::Key),
        "locks" => Some(FileKind::Lock),
        "snapshots" => Some(FileKind::Snapshot),
        _ => None,
    }
}

fn is_reserved(segment: &str) -> bool {
    segment == "config" || kind_of(segment).is_some()
}

fn valid_folder(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SEGMENT
        && !name.starts_with('.')
        && !name.contains(['/', '\0', '\\'])
        && !name.chars().any(char::is_control)
}

/// Does the path, percent-decoded, hold a control character (a newline, an
/// escape, ...)? Such a request is refused with 400.
pub fn has_control(path: &str) -> bool {
    percent_decode_str(path)
        .decode_utf8_lossy()
        .chars()
        .any(char::is_control)
}

/// Parse a request path (the part of the URI before `?`); `None` for anything
/// that is not a valid route.
pub fn parse(path: &str) -> Option<Route> {
    if path.len() > MAX_PATH {
        return None;
    }
    let rest = path.strip_prefix('/')?;
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        let decoded = percent_decode_str(raw).decode_utf8().ok()?;
        if decoded.contains(['/', '\0']) {
            return None;
        }
        segments.push(decoded.into_owned());
    }
    let mut repo = Vec::new();
    let mut i = 0;
    while i + 1 < segments.len() && repo.len() < MAX_DEPTH && !is_reserved(&segments[i]) {
        if !valid_folder(&segments[i]) {
            return None;
        }
        repo.push(segments[i].clone());
        i += 1;
    }
    let target = match &segments[i..] {
        [empty] if empty.is_empty() => Target::Root,
        [c] if c == "config" => Target::Config,
        [t, empty] if empty.is_empty() => Target::List(kind_of(t)?),
        [t, name] => {
            let kind = kind_of(t)?;
            if !valid_name(kind, name) {
                return None;
            }
            Target::Object(kind, name.clone())
        }
        _ => return None,
    };
    Some(Route { repo, target })
}

/// The value of `key` in a query string, percent-decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode_str(k).decode_utf8().ok()? == key)
            .then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn route(repo: &[&str], target: Target) -> Option<Route> {
        Some(Route {
            repo: repo.iter().map(|s| s.to_string()).collect(),
            target,
        })
    }

    #[test]
    fn valid_paths() {
        assert_eq!(parse("/"), route(&[], Target::Root));
        assert_eq!(parse("/config"), route(&[], Target::Config));
        assert_eq!(parse("/keys/"), route(&[], Target::List(FileKind::Key)));
        assert_eq!(
            parse(&format!("/data/{ID}")),
            route(&[], Target::Object(FileKind::Data, ID.into()))
        );
        assert_eq!(parse("/alice/"), route(&["alice"], Target::Root));
        assert_eq!(parse("/alice/config"), route(&["alice"], Target::Config));
        assert_eq!(
            parse("/alice/laptop/"),
            route(&["alice", "laptop"], Target::Root)
        );
        assert_eq!(
            parse("/alice/laptop/snapshots/"),
            route(&["alice", "laptop"], Target::List(FileKind::Snapshot))
        );
        assert_eq!(
            parse(&format!("/a/b/locks/{ID}")),
            route(&["a", "b"], Target::Object(FileKind::Lock, ID.into()))
        );
        assert_eq!(parse("/al%69ce/config"), route(&["alice"], Target::Config));
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "alice/config",
            "/alice",
            "/a/b/c/config",
            "/a/b/c/",
            "/../config",
            "/%2e%2e/config",
            "/./config",
            "/a/../config",
            "/a/%2e%2e/config",
            "/a%2fb/config",
            "/a%00/config",
            "//config",
            "/a//config",
            "/.htpasswd",
            "/.hidden/config",
            "/config/",
            "/data",
            "/data/xyz",
            "/data/../../etc/passwd",
            "/keys/0123",
            "/keys/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
            "/a/%ff/config",
        ] {
            assert_eq!(parse(p), None, "{p:?} should be refused");
        }
        assert_eq!(parse(&format!("/{}/config", "a".repeat(300))), None);
        assert_eq!(parse(&format!("/{}", "a/".repeat(600))), None);
    }

    #[test]
    fn control_characters() {
        for p in [
            "/a%0Ab/",
            "/a%0db/config",
            "/x%1b%5b31m/",
            "/a%7f/",
            "/a%c2%85/",
        ] {
            assert!(has_control(p), "{p}");
            assert_eq!(parse(p), None, "{p}");
        }
        assert!(!has_control("/alice/laptop/config"));
        assert!(!has_control("/caf%c3%a9/config"));
    }

    #[test]
    fn query() {
        assert_eq!(
            query_param(Some("create=true"), "create").as_deref(),
            Some("true")
        );
        assert_eq!(
            query_param(Some("x=1&create=true"), "create").as_deref(),
            Some("true")
        );
        assert_eq!(query_param(Some("create"), "create").as_deref(), Some(""));
        assert_eq!(query_param(None, "create"), None);
    }
}
