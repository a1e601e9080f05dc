//! The help as restic shows it: each command's own options under "Flags",
//! the global options (`GlobalOptions`, headed "Global Flags") apart, and a
//! long description with examples and the exit codes. [`command`] is the
//! clap command that parses the command line, prints `--help` and `cairn
//! help CMD`, and generates completions and man pages.

use crate::cli::Cli;
use clap::{Arg, ArgAction, Command, CommandFactory};

/// Examples per top-level command: (command line, what it does).
fn examples(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "init" => &[
            (
                "cairn -r /srv/backup init",
                "create a repository in /srv/backup",
            ),
            ("cairn -r sftp:me@host:/backup init", "create one over SFTP"),
        ],
        "backup" => &[
            ("cairn -r /srv/backup backup ~/work", "back up a directory"),
            (
                "cairn backup -v --exclude '*.tmp' --tag daily /etc /home",
                "two paths, listing new and changed files",
            ),
            (
                "mysqldump db | cairn backup --stdin --stdin-filename db.sql",
                "back up a stream",
            ),
        ],
        "snapshots" => &[
            ("cairn snapshots", "list every snapshot"),
            (
                "cairn snapshots --latest 1 --group-by host --json",
                "the newest snapshot of each host, as JSON",
            ),
        ],
        "ls" => &[
            ("cairn ls latest", "list the files of the newest snapshot"),
            ("cairn ls -l 1a2b3c4d /home/me", "long listing below a path"),
        ],
        "dump" => &[
            ("cairn dump latest /etc/hosts", "print one file"),
            ("cairn dump latest /etc > etc.tar", "a directory, as tar"),
        ],
        "cat" => &[
            ("cairn cat config", "print the repository's config"),
            ("cairn cat snapshot 1a2b3c4d", "print a snapshot as JSON"),
        ],
        "restore" => &[
            (
                "cairn restore latest --target /tmp/back",
                "restore the newest snapshot",
            ),
            (
                "cairn restore 1a2b3c4d --target / --include /etc/hosts",
                "restore one file in place",
            ),
        ],
        "check" => &[
            ("cairn check", "check the structure"),
            (
                "cairn check --read-data-subset 10%",
                "also read a tenth of the data",
            ),
        ],
        "prune" => &[
            ("cairn prune", "remove data no snapshot needs"),
            ("cairn prune --dry-run", "only show what would be removed"),
        ],
        "key" => &[
            ("cairn key list", "list the keys"),
            ("cairn key add --new-password-file pw.txt", "add a password"),
        ],
        "copy" => &[
            (
                "cairn -r /srv/new copy --from-repo /srv/restic-repo",
                "copy every snapshot from a cairn or restic repository",
            ),
            (
                "cairn copy --from-repo /srv/old --host web latest",
                "copy one host's newest snapshot",
            ),
        ],
        "repair" => &[
            ("cairn repair index", "rebuild the index from the packs"),
            (
                "cairn repair packs 1a2b3c4d",
                "salvage a damaged pack's intact blobs",
            ),
            (
                "cairn repair snapshots --forget",
                "rewrite snapshots without lost data",
            ),
            (
                "cairn repair config",
                "restore a damaged config from the key files",
            ),
        ],
        "list" => &[
            ("cairn list snapshots", "the ids of every snapshot file"),
            ("cairn list blobs", "every blob, `data ID` or `tree ID`"),
        ],
        "unlock" => &[
            ("cairn unlock", "remove stale lock files"),
            ("cairn unlock --remove-all", "remove every lock file"),
        ],
        "forget" => &[
            (
                "cairn forget -d 7 -w 4 -m 12 --prune",
                "keep 7 daily, 4 weekly, 12 monthly snapshots, then prune",
            ),
            ("cairn forget 1a2b3c4d", "remove one snapshot"),
        ],
        "tag" => &[
            ("cairn tag --add keep 1a2b3c4d", "add a tag"),
            (
                "cairn tag --set weekly --host web",
                "set the tags of a host's snapshots",
            ),
        ],
        "diff" => &[
            (
                "cairn diff 1a2b3c4d 5e6f7a8b",
                "what changed between two snapshots",
            ),
            (
                "cairn diff --metadata 1a2b3c4d latest",
                "metadata changes too",
            ),
        ],
        "find" => &[
            (
                "cairn find '*.conf'",
                "find files by name in every snapshot",
            ),
            (
                "cairn find --blob 1a2b3c4d",
                "the files holding a data blob",
            ),
        ],
        "stats" => &[
            ("cairn stats", "the size of a restore of every snapshot"),
            ("cairn stats --mode raw-data latest", "the stored size"),
        ],
        "rewrite" => &[
            (
                "cairn rewrite --exclude '*.iso' --forget",
                "drop ISO images from every snapshot",
            ),
            (
                "cairn rewrite -n --exclude /tmp latest",
                "show what would change",
            ),
        ],
        "serve" => &[
            (
                "cairn serve --path /srv/repos --listen 127.0.0.1:8000 --no-auth",
                "serve repositories to restic and cairn",
            ),
            (
                "cairn serve --path /srv/repos --htpasswd-file /etc/htpasswd --tls",
                "with users and TLS",
            ),
        ],
        "mount" => &[
            ("cairn mount /mnt/backup", "browse every snapshot"),
            ("cairn mount --host web /mnt/web", "one host's snapshots"),
        ],
        "profile" => &[
            ("cairn profile list", "list the profiles"),
            ("cairn profile check home", "check profile home.toml"),
        ],
        "run" => &[
            (
                "cairn run home",
                "back up, forget, prune and check as home.toml says",
            ),
            ("cairn run --all", "run every profile"),
        ],
        "schedule" => &[
            (
                "cairn schedule install home --every daily",
                "run profile home daily",
            ),
            ("cairn schedule list", "list the schedules"),
        ],
        "monitor" => &[
            (
                "cairn -P home monitor --warn 26h --crit 50h",
                "Nagios check of the last backup",
            ),
            ("cairn monitor --host web --json", "the verdict as JSON"),
        ],
        "version" => &[
            ("cairn version", "print the version"),
            ("cairn version --json", "as JSON"),
        ],
        "generate" => &[
            (
                "cairn generate --bash-completion /etc/bash_completion.d/cairn",
                "install bash completion",
            ),
            (
                "cairn generate --man /usr/local/share/man/man1",
                "write the man pages",
            ),
        ],
        _ => &[],
    }
}

/// The exit codes a command can end with (see `main.rs`).
fn exit_status(top: &str) -> &'static [(u8, &'static str)] {
    const REPO: &[(u8, &str)] = &[
        (0, "success"),
        (1, "error"),
        (2, "bad command-line usage"),
        (10, "the repository does not exist"),
        (12, "wrong password"),
        (130, "interrupted"),
    ];
    match top {
        "monitor" => &[
            (0, "OK"),
            (1, "WARNING"),
            (2, "CRITICAL"),
            (3, "UNKNOWN (also bad command-line usage)"),
        ],
        "backup" => &[
            (0, "success"),
            (1, "error: no snapshot was saved"),
            (2, "bad command-line usage"),
            (3, "the snapshot was saved but some files could not be read"),
            (10, "the repository does not exist"),
            (12, "wrong password"),
            (130, "interrupted: no snapshot was saved"),
        ],
        "version" | "generate" | "profile" | "schedule" => {
            &[(0, "success"), (1, "error"), (2, "bad command-line usage")]
        }
        _ => REPO,
    }
}

/// `c` (a command under `top`) with its headings, long description and
/// help flag as restic shows them, and the same for its subcommands.
fn shape(mut c: Command, top: &str) -> Command {
    // mut_arg moves an option to the end: every option is moved, in
    // order, so the headings keep the order of the definition.
    let own: Vec<_> = c
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_global_set())
        .map(|a| a.get_id().clone())
        .collect();
    for id in own {
        c = c.mut_arg(id, |a| match a.get_help_heading() {
            None => a.help_heading("Flags"),
            Some(_) => a,
        });
    }
    c = c.disable_help_flag(true).arg(
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::Help)
            .help("Print help")
            .help_heading("Flags"),
    );
    let mut text = c
        .get_long_about()
        .or(c.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let is_top = c.get_name() == top;
    let ex = if is_top { examples(top) } else { &[] };
    if !ex.is_empty() {
        text.push_str("\n\nExamples:");
        for (line, what) in ex {
            text.push_str(&format!("\n  {line}\n      {what}"));
        }
    }
    text.push_str("\n\nExit status:");
    for (code, what) in exit_status(top) {
        text.push_str(&format!("\n  {code:<4} {what}"));
    }
    c = c.long_about(text);
    c.mut_subcommands(|s| shape(s, top))
}

/// The whole command line: every command shaped by [`shape`].
pub fn command() -> Command {
    Cli::command().mut_subcommands(|c| {
        let top = c.get_name().to_string();
        shape(c, &top)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendered `--help` of `cairn ARGS`.
    fn help(args: &[&str]) -> String {
        let mut argv = vec!["cairn"];
        argv.extend(args);
        let e = command().try_get_matches_from(argv).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        e.render().to_string()
    }

    #[test]
    fn flags_and_global_flags_apart() {
        for args in [&["backup", "--help"][..], &["help", "backup"]] {
            let h = help(args);
            let flags = h.find("\nFlags:").expect(&h);
            let global = h.find("\nGlobal Flags:").expect(&h);
            assert!(flags < global, "{h}");
            let own = &h[flags..global];
            let globals = &h[global..];
            assert!(
                own.contains("--exclude-caches") && own.contains("--help"),
                "{h}"
            );
            assert!(!own.contains("--password-file"), "{h}");
            assert!(
                globals.contains("--password-file") && globals.contains("--repo"),
                "{h}"
            );
            assert!(!h.contains("\nOptions:"), "{h}");
            assert!(
                h.contains("\nExamples:\n  cairn -r /srv/backup backup ~/work"),
                "{h}"
            );
            assert!(
                h.contains("\n  3    the snapshot was saved but some files could not be read"),
                "{h}"
            );
        }
    }

    #[test]
    fn every_command_has_examples_and_exit_status() {
        let root = command();
        for c in root.get_subcommands() {
            if c.get_name() == "help" {
                continue;
            }
            assert!(
                examples(c.get_name()).len() >= 2,
                "{} has no examples",
                c.get_name()
            );
            let mut stack = vec![c];
            while let Some(c) = stack.pop() {
                let about = c
                    .get_long_about()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                assert!(about.contains("Exit status"), "{}: {about}", c.get_name());
                stack.extend(c.get_subcommands());
            }
        }
        // Parsing is unchanged by the shaping.
        command().debug_assert();
    }
}
