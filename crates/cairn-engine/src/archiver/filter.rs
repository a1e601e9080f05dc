//! What a backup leaves out: patterns, cache directories, marker files,
//! large files, other file systems, and .gitignore rules.

use crate::pattern::PatternSet;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::{Path, PathBuf};

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

    /// The ignore matchers `dir` adds, in the order to push them (the last
    /// wins), and what went wrong reading them: an unreadable file, or
    /// lines that are not valid patterns (the valid lines still apply). A
    /// backup reports them as errors: the snapshot may hold files the rules
    /// meant to leave out. As git: a repository's `.git/info/exclude`
    /// first (when `dir` holds one), then `dir/.gitignore`.
    pub fn gitignore_for(&self, dir: &Path) -> (Vec<Gitignore>, Vec<(PathBuf, String)>) {
        let mut matchers = Vec::new();
        let mut problems = Vec::new();
        if !self.git_ignore {
            return (matchers, problems);
        }
        if let Some(exclude) = info_exclude(dir) {
            read_ignore_file(dir, &exclude, &mut matchers, &mut problems);
        }
        read_ignore_file(dir, &dir.join(".gitignore"), &mut matchers, &mut problems);
        (matchers, problems)
    }

    /// The matchers that apply to a backup target `target` from above it,
    /// as git applies them: if `target` is inside a git repository, that
    /// repository's `.git/info/exclude` and the `.gitignore` files of every
    /// directory from the repository's top down to `target`'s parent.
    /// Nothing when `target` is in no repository (or is its top).
    pub fn gitignores_above(&self, target: &Path) -> (Vec<Gitignore>, Vec<(PathBuf, String)>) {
        let mut matchers = Vec::new();
        let mut problems = Vec::new();
        if !self.git_ignore {
            return (matchers, problems);
        }
        let above: Vec<&Path> = target.ancestors().skip(1).collect();
        let Some(top) = above.iter().position(|d| info_exclude(d).is_some()) else {
            return (matchers, problems);
        };
        for (i, dir) in above[..=top].iter().rev().enumerate() {
            if i == 0 {
                if let Some(exclude) = info_exclude(dir) {
                    read_ignore_file(dir, &exclude, &mut matchers, &mut problems);
                }
            }
            read_ignore_file(dir, &dir.join(".gitignore"), &mut matchers, &mut problems);
        }
        (matchers, problems)
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

/// `dir/.git/info/exclude` if `dir` is the top of a git repository (its
/// `.git` a directory, or a file naming one, as in a submodule).
fn info_exclude(dir: &Path) -> Option<PathBuf> {
    let git = dir.join(".git");
    let meta = git.symlink_metadata().ok()?;
    let git_dir = if meta.is_dir() {
        git
    } else if meta.is_file() {
        let text = std::fs::read_to_string(&git).ok()?;
        let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
        dir.join(target)
    } else {
        return None;
    };
    Some(git_dir.join("info/exclude"))
}

/// Adds a matcher rooted at `root` for the ignore file `file`, if it is
/// there, to `matchers`; what went wrong to `problems`.
fn read_ignore_file(
    root: &Path,
    file: &Path,
    matchers: &mut Vec<Gitignore>,
    problems: &mut Vec<(PathBuf, String)>,
) {
    if !file.is_file() {
        return;
    }
    let mut b = GitignoreBuilder::new(root);
    problems.extend(
        b.add(file)
            .into_iter()
            .map(|e| (file.to_path_buf(), e.to_string())),
    );
    match b.build() {
        Ok(g) => matchers.push(g),
        Err(e) => problems.push((file.to_path_buf(), e.to_string())),
    }
}

fn file_starts_with(path: &Path, header: &[u8]) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; header.len()];
    f.take(header.len() as u64).read_exact(&mut buf).is_ok() && buf == header
}
