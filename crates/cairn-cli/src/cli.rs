//! Command-line syntax (clap). Names follow restic's where restic has the
//! same feature, so scripts and habits carry over.

use crate::commands::*;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Encrypted, deduplicating backups",
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// Repository: a local path (or local:PATH), or rest:http(s)://[user:pass@]host:port/path/ (user and password also from CAIRN_REST_USERNAME, CAIRN_REST_PASSWORD). Default: a repository under your data directory
    #[arg(short = 'r', long = "repo", env = "CAIRN_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the password from the first line of this file
    #[arg(long, env = "CAIRN_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use the first line it prints as the password
    #[arg(long, env = "CAIRN_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print less: no progress, no summary
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Compression: auto (zstd level 2), off, max, or a zstd level 1-19
    #[arg(long, env = "CAIRN_COMPRESSION", default_value = "auto", global = true)]
    pub compression: String,
    /// Target pack size in MiB
    #[arg(long, env = "CAIRN_PACK_SIZE", default_value_t = 16, global = true)]
    pub pack_size: u32,
    /// Trust the certificate authority in this PEM file for rest: over HTTPS (repeatable)
    #[arg(long, env = "CAIRN_CACERT", value_name = "FILE", global = true)]
    pub cacert: Vec<PathBuf>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct SnapshotFilterArgs {
    /// Only consider snapshots from this host (repeatable)
    #[arg(long = "host", short = 'H')]
    pub hosts: Vec<String>,
    /// Only consider snapshots with these tags (repeatable; "a,b" means both)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only consider snapshots that include this path (repeatable)
    #[arg(long = "path")]
    pub paths: Vec<String>,
}

/// `--exclude`, `--iexclude` and their `-file` forms (backup, rewrite).
#[derive(Args, Debug, Default, Clone)]
pub struct ExcludeArgs {
    /// Exclude paths matching this pattern (repeatable)
    #[arg(short = 'e', long)]
    pub exclude: Vec<String>,
    /// As --exclude, ignoring case
    #[arg(long)]
    pub iexclude: Vec<String>,
    /// Read exclude patterns from a file (repeatable)
    #[arg(long)]
    pub exclude_file: Vec<PathBuf>,
    /// Read case-insensitive exclude patterns from a file (repeatable)
    #[arg(long)]
    pub iexclude_file: Vec<PathBuf>,
}

impl ExcludeArgs {
    /// The case-sensitive and case-insensitive patterns, files read.
    pub fn patterns(&self) -> cairn_repository::Result<(Vec<String>, Vec<String>)> {
        let mut ex = self.exclude.clone();
        for f in &self.exclude_file {
            ex.extend(cairn_engine::pattern::PatternSet::read_file(f)?);
        }
        let mut iex = self.iexclude.clone();
        for f in &self.iexclude_file {
            iex.extend(cairn_engine::pattern::PatternSet::read_file(f)?);
        }
        Ok((ex, iex))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Back up files, directories or a stream into a new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot
    Ls(LsArgs),
    /// Write a file (or a directory, as tar) from a snapshot to stdout
    Dump(DumpArgs),
    /// Print repository internals: config, snapshot, index, key, pack or blob
    Cat(CatArgs),
    /// Restore a snapshot
    Restore(RestoreArgs),
    /// Check the repository for errors
    Check(CheckArgs),
    /// Remove data no snapshot needs (lock-free: safe beside running backups)
    Prune(PruneArgs),
    /// Manage the keys (passwords) that open the repository
    Key(KeyArgs),
    /// Copy snapshots from another repository
    Copy(CopyArgs),
    /// Repair a damaged repository: rebuild the index, rewrite broken snapshots
    Repair(RepairArgs),
    /// Remove stale lock files left by other programs (cairn itself needs no locks)
    Unlock(UnlockArgs),
    /// Remove snapshots by policy (--keep-*) or by id
    Forget(ForgetArgs),
    /// Add, remove or set the tags of snapshots
    Tag(TagArgs),
    /// Show the differences between two snapshots
    Diff(DiffArgs),
    /// Find files, directories, blobs or trees in snapshots
    Find(FindArgs),
    /// Show sizes, deduplication and compression of snapshots
    Stats(StatsArgs),
    /// Write snapshots again without excluded files
    Rewrite(RewriteArgs),
    /// Serve repositories over HTTP to restic and cairn (rest-server's protocol and flags)
    Serve(ServeArgs),
}
