//! End-to-end tests: each runs the `cairn` binary against a repository in
//! its own temporary directory (see `cairn_tests::TestEnv`).
//!
//! Build the binary first: `cargo build -p cairn-cli`, then
//! `cargo test -p cairn-tests` (or `cargo xtask test`, which does both).
//!
//! | module | what it shows |
//! |---|---|
//! | `roundtrip` | every file type and metadata survives backup + restore exactly |
//! | `incremental` | unchanged re-backup stores nothing; modified/added/deleted files restore exactly per snapshot |
//! | `stream` | 1 GiB from stdin and back through `dump`; `--stdin-from-command` failure stores nothing |
//! | `interrupt` | SIGKILL midway, then the next backup uploads only what is missing; SIGINT exits 130 |
//! | `cli` | global options as restic has them (`-p`, `--repository-file`, `-v`, TLS, locks), password precedence, `forget` shorts, `version`, `snapshots` grouping, `--json` errors, `check --json`, help, completions and man pages |
//! | `bad_input` | wrong password, missing or existing repository, unreadable files, damaged packs and index files, bad flags |
//! | `filters` | backup excludes, restore include/exclude |
//! | `from_restic` | `copy --from-repo` of repositories the real restic made (v1, v2, compressed or not, local and over REST, pruned, damaged): every snapshot restores exactly; re-runs and killed runs copy only what is new |
//! | `sources` | several paths, a single file, relative paths, symlinks as paths, 5000 small files, `--one-file-system` |
//! | `restic_flags` | restic's flags of ls, find, list, cat, backup, restore and dump, each as restic means it |
//! | `output` | `ls`, `ls --json`, `snapshots --json`, `cat`, `dump`, the default repository |

mod bad_input;
mod cli;
mod filters;
mod from_restic;
mod incremental;
mod interrupt;
mod output;
mod restic_flags;
mod roundtrip;
mod sources;
mod stream;
