//! What a backup leaves out: patterns, cache directories, marker files,
//! large files, other file systems, and .gitignore rules.

use crate::pattern::PatternSet;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// The CACHEDIR.TAG signature (https://bford.info/cachedir/).
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

#[derive(Clone, Debug)]
pub struct Filters {
    pub exclude: PatternSet,
    pub iexclude: PatternSet,
    pub exclude_caches: bool,
    /// `name` or `name:header` (the file must start with header).
    pub exclude_if_present: Vec<String>,
    pub exclude_larger_than: Option<u64>,
    pub one_file_system: bool,
    pub git_ignore: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            exclude: PatternSet::empty(),
            iexclude: PatternSet::empty(),
            exclude_caches: false,
            exclude_if_present: vec![],
            exclude_larger_than: None,
            one_file_system: false,
            git_ignore: false,
        }
    }
}

impl Filters {
    /// Excluded by name pattern or size?
    pub fn excludes_path(&self, path: &Path, is_file: bool, size: u64) -> bool {
        if self.exclude.matches(path) || self.iexclude.matches(path) {
            return true;
        }
        is_file && self.exclude_larger_than.is_some_and(|max| size > max)
    }

    /// Should directory `dir` be left out because of what it contains?
    pub fn excludes_dir_contents(&self, dir: &Path) -> bool {
        if self.exclude_caches && file_starts_with(&dir.join("CACHEDIR.TAG"), CACHEDIR_SIGNATURE) {
            return true;
        }
        self.exclude_if_present
            .iter()
            .any(|spec| match spec.split_once(':') {
                Some((name, header)) => file_starts_with(&dir.join(name), header.as_bytes()),
                None => dir.join(spec).symlink_metadata().is_ok(),
            })
    }

    /// The .gitignore matcher for `dir`, if it has one and the option is on,
    /// and what went wrong reading it: an unreadable file, or lines that are
    /// not valid patterns (the valid lines still apply). A backup reports
    /// them as errors: the snapshot may hold files the rules meant to leave
    /// out.
    pub fn gitignore_for(&self, dir: &Path) -> (Option<Gitignore>, Vec<String>) {
        if !self.git_ignore {
            return (None, Vec::new());
        }
        let file = dir.join(".gitignore");
        if !file.is_file() {
            return (None, Vec::new());
        }
        let mut b = GitignoreBuilder::new(dir);
        let mut problems: Vec<String> = b.add(&file).into_iter().map(|e| e.to_string()).collect();
        match b.build() {
            Ok(g) => (Some(g), problems),
            Err(e) => {
                problems.push(e.to_string());
                (None, problems)
            }
        }
    }

    pub fn summary(&self) -> Vec<String> {
        let mut v: Vec<String> = self.exclude.patterns().to_vec();
        v.extend(self.iexclude.patterns().iter().cloned());
        v
    }
}

/// Is `path` ignored by the stack of .gitignore matchers (innermost last)?
pub fn git_ignored(stack: &[Gitignore], path: &Path, is_dir: bool) -> bool {
    for m in stack.iter().rev() {
        let r = m.matched(path, is_dir);
        if r.is_ignore() {
            return true;
        }
        if r.is_whitelist() {
            return false;
        }
    }
    false
}

fn file_starts_with(path: &Path, header: &[u8]) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; header.len()];
    f.take(header.len() as u64).read_exact(&mut buf).is_ok() && buf == header
}
