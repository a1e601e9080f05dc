//! Include/exclude patterns with restic's meaning.
//!
//! A pattern is a glob (`*`, `?`, `[...]`, `**` for any number of
//! directories). A pattern starting with `/` is anchored at the root of the
//! absolute path; any other pattern matches at any depth (`*.o` matches
//! `/src/a.o`, `cache/tmp` matches `/home/u/cache/tmp`). A pattern matching a
//! directory also covers everything below it.

use crate::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// A user's pattern as a glob over absolute paths: anchored at the root
/// when it starts with `/`, else matching at any depth.
pub fn anchored(pattern: &str) -> String {
    if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("**/{pattern}")
    }
}

/// Compile glob `g` (made from the user's `pattern`, named in errors) with
/// restic's rules: `*` stops at `/`, `\` escapes.
pub fn glob(g: &str, pattern: &str, case_insensitive: bool) -> Result<globset::Glob> {
    GlobBuilder::new(g)
        .literal_separator(true)
        .case_insensitive(case_insensitive)
        .backslash_escape(true)
        .build()
        .map_err(|e| Error::invalid(format!("invalid pattern {pattern:?}: {e}")))
}

/// The existing paths a shell-style glob names (`backup --files-from`), as
/// Go's `filepath.Glob`: `*`, `?` and `[...]` within one path element,
/// matches sorted within each directory, no match gives nothing, a pattern
/// without wildcards gives itself if it exists (a dangling symlink too).
pub fn expand_glob(pattern: &str) -> Result<Vec<std::path::PathBuf>> {
    use std::path::{Component, PathBuf};
    let has_meta = |s: &str| s.contains(['*', '?', '[', '\\']);
    if !has_meta(pattern) {
        let p = PathBuf::from(pattern);
        return Ok(if p.symlink_metadata().is_ok() {
            vec![p]
        } else {
            vec![]
        });
    }
    let mut found: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in Path::new(pattern).components() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        let literal = !matches!(comp, Component::Normal(_)) || !has_meta(&part);
        let mut next = Vec::new();
        if literal {
            for f in &found {
                next.push(f.join(comp.as_os_str()));
            }
        } else {
            let m = glob(&part, pattern, false)?.compile_matcher();
            for f in &found {
                let dir = if f.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    f.as_path()
                };
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<std::ffi::OsString> = rd
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| m.is_match(Path::new(n)))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| f.join(n)));
            }
        }
        found = next;
    }
    found.retain(|p| p.symlink_metadata().is_ok());
    Ok(found)
}

#[derive(Clone, Debug)]
pub struct PatternSet {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PatternSet {
    pub fn empty() -> PatternSet {
        PatternSet {
            set: GlobSet::empty(),
            patterns: vec![],
        }
    }

    /// `case_insensitive` for `--iexclude` / `--iinclude`.
    pub fn new<S: AsRef<str>>(patterns: &[S], case_insensitive: bool) -> Result<PatternSet> {
        let none: &[&str] = &[];
        if case_insensitive {
            Self::mixed(none, patterns)
        } else {
            Self::mixed(patterns, none)
        }
    }

    /// One set from case-sensitive and case-insensitive patterns (`--exclude` with `--iexclude`).
    pub fn mixed<S: AsRef<str>, T: AsRef<str>>(
        sensitive: &[S],
        insensitive: &[T],
    ) -> Result<PatternSet> {
        let mut b = GlobSetBuilder::new();
        let mut kept = vec![];
        let all = sensitive
            .iter()
            .map(|p| (p.as_ref(), false))
            .chain(insensitive.iter().map(|p| (p.as_ref(), true)));
        for (p, case_insensitive) in all {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                continue;
            }
            let full = anchored(p);
            // Match the path itself or anything below it.
            for g in [full.clone(), format!("{full}/**")] {
                b.add(glob(&g, p, case_insensitive)?);
            }
            kept.push(p.to_string());
        }
        let set = b
            .build()
            .map_err(|e| Error::invalid(format!("invalid patterns: {e}")))?;
        Ok(PatternSet {
            set,
            patterns: kept,
        })
    }

    /// Read patterns from a file: one per line, blank lines and `#` comments ignored.
    pub fn read_file(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(e, format!("reading exclude file {}", path.display())))?;
        Ok(text
            .lines()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.to_string())
            .collect())
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Does the absolute path `path` (or a directory above it) match?
    pub fn matches(&self, path: &Path) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }

    /// Could anything below directory `dir` match? Used by `--include` to
    /// decide whether to descend: true when a pattern could match a path
    /// inside `dir`. Conservative: true unless provably not.
    pub fn may_match_below(&self, dir: &Path) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        if self.matches(dir) {
            return true;
        }
        let d = dir.to_string_lossy();
        self.patterns.iter().any(|p| {
            if !p.starts_with('/') {
                return true;
            }
            // Anchored: compare the literal prefix of the pattern with dir.
            let lit: String = p
                .chars()
                .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
                .collect();
            lit.starts_with(&*d)
                && (lit.len() == d.len() || lit.as_bytes()[d.len()] == b'/' || d == "/")
                || d.starts_with(&lit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_semantics() {
        let p = PatternSet::new(&["*.o", "cache/tmp", "/etc/secret*", "[Bb]uild"], false).unwrap();
        assert!(p.matches(Path::new("/src/a.o")));
        assert!(p.matches(Path::new("/home/u/cache/tmp")));
        assert!(p.matches(Path::new("/home/u/cache/tmp/x/y")));
        assert!(!p.matches(Path::new("/home/u/cache/tmpx")));
        assert!(p.matches(Path::new("/etc/secrets")));
        assert!(!p.matches(Path::new("/x/etc/secrets")));
        assert!(p.matches(Path::new("/p/Build/out.txt")));
        assert!(!p.matches(Path::new("/src/a.c")));
        let i = PatternSet::new(&["*.JPG"], true).unwrap();
        assert!(i.matches(Path::new("/a/b.jpg")));
        assert!(PatternSet::new(&["a[", ""], false).is_err());
    }

    #[test]
    fn include_descends_only_where_useful() {
        let p = PatternSet::new(&["/home/u/docs"], false).unwrap();
        assert!(p.may_match_below(Path::new("/")));
        assert!(p.may_match_below(Path::new("/home")));
        assert!(p.may_match_below(Path::new("/home/u/docs/x")));
        assert!(!p.may_match_below(Path::new("/var")));
    }
}
