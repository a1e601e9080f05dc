use super::*;
use crate::tree_walk::find_node;
use crate::tree_walk::testutil::local_repo;
use std::fs;
use std::path::PathBuf;

/// Back up `path` as host "h", the parent chosen as usual; returns the
/// result and the warnings the sink received.
fn run(repo: &Arc<Repository>, path: &Path) -> (BackupResult, Vec<String>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = BackupOptions {
        hostname: "h".into(),
        on_warning: Some(Arc::new(move |m: &str| {
            sink.lock().unwrap().push(m.to_string())
        })),
        ..Default::default()
    };
    let source = Source::paths(&[path.to_path_buf()]).unwrap();
    let r = backup(repo.clone(), source, opts, Arc::default()).unwrap();
    let seen = seen.lock().unwrap().clone();
    (r, seen)
}

/// Flip a byte in the middle of a blob, in its pack file.
fn damage_blob(repo_dir: &Path, repo: &Repository, id: &Id) {
    let loc = repo.lookup(id).unwrap();
    let hex = loc.pack.to_hex();
    let path = repo_dir.join("data").join(&hex[..2]).join(&hex);
    let mut bytes = fs::read(&path).unwrap();
    bytes[loc.offset as usize + loc.length as usize / 2] ^= 0x40;
    fs::remove_file(&path).unwrap();
    fs::write(&path, bytes).unwrap();
}

/// A source tree and a repository in a temporary directory.
struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    repo_dir: PathBuf,
    repo: Arc<Repository>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("keep")).unwrap();
    fs::create_dir_all(src.join("damaged/deeper")).unwrap();
    fs::write(src.join("keep/a.txt"), b"kept from the parent").unwrap();
    fs::write(src.join("damaged/b.txt"), b"read again").unwrap();
    fs::write(src.join("damaged/deeper/c.txt"), b"read again too").unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = local_repo(&repo_dir);
    Fixture {
        _tmp: tmp,
        src,
        repo_dir,
        repo,
    }
}

/// The one warning expected.
fn only(warnings: &[String]) -> &str {
    let [w] = warnings else {
        panic!("one warning expected: {warnings:?}")
    };
    w
}

#[test]
fn unreadable_parent_tree_is_reported_and_its_directory_read_in_full() {
    let Fixture {
        src,
        repo_dir,
        repo,
        ..
    } = &fixture();
    let (first, warnings) = run(repo, src);
    assert!(warnings.is_empty() && first.warnings.is_empty());
    assert_eq!(first.snapshot.summary.as_ref().unwrap().files_new, 3);

    // Intact parent: nothing is read again.
    let (second, warnings) = run(repo, src);
    assert!(warnings.is_empty());
    assert_eq!(second.snapshot.parent, Some(first.snapshot_id));
    assert_eq!(
        second.snapshot.summary.as_ref().unwrap().files_unmodified,
        3
    );

    let damaged = find_node(repo, second.snapshot.tree, &src.join("damaged"))
        .unwrap()
        .subtree
        .unwrap();
    damage_blob(repo_dir, repo, &damaged);

    let (third, warnings) = run(repo, src);
    assert_eq!(third.snapshot.parent, Some(second.snapshot_id));
    assert_eq!(warnings, third.warnings);
    let w = only(&warnings);
    let dir = src.join("damaged").display().to_string();
    assert!(
        w.starts_with(&format!(
            "parent snapshot {}: tree {} of {dir} cannot be read (",
            second.snapshot_id.short(),
            damaged.short()
        )) && w.ends_with(&format!("{dir} is backed up in full")),
        "{w}"
    );
    // The damaged directory's files (at every depth) are read, the rest not.
    let s = third.snapshot.summary.as_ref().unwrap();
    assert_eq!((s.files_unmodified, s.files_new), (1, 2));
    assert_eq!(third.errors, 0, "the snapshot is complete");
}

#[test]
fn unreadable_parent_root_is_reported_and_everything_read() {
    let Fixture {
        src,
        repo_dir,
        repo,
        ..
    } = &fixture();
    let (first, _) = run(repo, src);
    damage_blob(repo_dir, repo, &first.snapshot.tree);

    let (second, warnings) = run(repo, src);
    let w = only(&warnings);
    assert!(
        w.starts_with(&format!(
            "parent snapshot {}: tree {} of / cannot be read (",
            first.snapshot_id.short(),
            first.snapshot.tree.short()
        )),
        "{w}"
    );
    let s = second.snapshot.summary.as_ref().unwrap();
    assert_eq!((s.files_unmodified, s.files_new), (0, 3));
}

#[test]
fn unreadable_parent_root_of_a_stream_is_reported() {
    let Fixture { repo_dir, repo, .. } = &fixture();
    let stream = |data: &'static [u8]| Source::stream("dump", Box::new(data)).unwrap();
    let opts = || BackupOptions {
        hostname: "h".into(),
        ..Default::default()
    };
    let first = backup(repo.clone(), stream(b"one"), opts(), Arc::default()).unwrap();
    damage_blob(repo_dir, repo, &first.snapshot.tree);
    let second = backup(repo.clone(), stream(b"two"), opts(), Arc::default()).unwrap();
    assert_eq!(second.snapshot.parent, Some(first.snapshot_id));
    assert!(only(&second.warnings).contains(&first.snapshot.tree.short()));
    let s = second.snapshot.summary.as_ref().unwrap();
    assert_eq!((s.files_changed, s.files_new), (0, 1));
}

/// A .gitignore line that is not a valid pattern is reported as an error
/// naming the file and the line; its other lines still apply.
#[test]
fn bad_gitignore_lines_are_reported_and_the_rest_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(".gitignore"), "*.log\nbad[z-a]\n").unwrap();
    fs::write(src.join("a.log"), b"ignored").unwrap();
    fs::write(src.join("b.txt"), b"kept").unwrap();
    let repo = local_repo(&tmp.path().join("repo"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut opts = BackupOptions {
        hostname: "h".into(),
        on_error: Some(Arc::new(move |p: &Path, m: &str| {
            sink.lock().unwrap().push(format!("{}: {m}", p.display()))
        })),
        ..Default::default()
    };
    opts.filters.git_ignore = true;
    let source = Source::paths(std::slice::from_ref(&src)).unwrap();
    let r = backup(repo.clone(), source, opts, Arc::default()).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(r.errors, 1, "{seen:?}");
    let [e] = &seen[..] else {
        panic!("one error expected: {seen:?}")
    };
    assert!(e.contains(".gitignore") && e.contains("bad[z-a]"), "{e}");
    let dir = find_node(&repo, r.snapshot.tree, &src).unwrap();
    let listing = repo.load_tree(&dir.subtree.unwrap()).unwrap();
    let names: Vec<String> = listing
        .nodes
        .iter()
        .map(|n| String::from_utf8_lossy(n.name.as_bytes()).into_owned())
        .collect();
    assert_eq!(names, [".gitignore", "b.txt"]);
}

/// As git reads them: a backup of a directory inside a git repository
/// honours the `.gitignore` files above it (up to the repository's top)
/// and the repository's `.git/info/exclude`, also of a repository met
/// inside the walk; nothing above the repository's top applies.
#[test]
fn gitignores_above_the_target_and_info_exclude_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let top = outside.join("repo");
    let src = top.join("a/src");
    let nested = src.join("vendored");
    for d in [&src, &top.join(".git/info"), &nested.join(".git/info")] {
        fs::create_dir_all(d).unwrap();
    }
    // Above the repository's top: not git's business.
    fs::write(outside.join(".gitignore"), "*.txt\n").unwrap();
    fs::write(top.join(".gitignore"), "*.log\n").unwrap();
    fs::write(top.join("a/.gitignore"), "/src/build/\n").unwrap();
    fs::write(top.join(".git/info/exclude"), "*.tmp\n").unwrap();
    fs::write(nested.join(".git/info/exclude"), "secret\n").unwrap();
    fs::create_dir_all(src.join("build")).unwrap();
    for f in [
        "keep.txt",
        "x.log",
        "y.tmp",
        "build/out.o",
        "vendored/secret",
        "vendored/z.txt",
    ] {
        fs::write(src.join(f), b"data").unwrap();
    }
    let repo = local_repo(&tmp.path().join("repo-store"));
    let mut opts = BackupOptions {
        hostname: "h".into(),
        ..Default::default()
    };
    opts.filters.git_ignore = true;
    let source = Source::paths(std::slice::from_ref(&src)).unwrap();
    let r = backup(repo.clone(), source, opts, Arc::default()).unwrap();
    assert_eq!(r.errors, 0);
    let names = |dir: &Path| -> Vec<String> {
        let node = find_node(&repo, r.snapshot.tree, dir).unwrap();
        let mut v: Vec<String> = repo
            .load_tree(&node.subtree.unwrap())
            .unwrap()
            .nodes
            .iter()
            .map(|n| String::from_utf8_lossy(n.name.as_bytes()).into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&src), ["keep.txt", "vendored"]);
    assert_eq!(names(&nested), [".git", "z.txt"]);
}
