//! Command-line syntax (clap). Names follow restic's where restic has the
//! same feature, so scripts and habits carry over.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "cairn", version, about = "Encrypted, deduplicating backups", max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// Repository: a local path (or local:PATH). Default: a repository under your data directory
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
}

#[derive(Args, Debug)]
pub struct InitArgs {}

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

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files and directories to back up
    pub paths: Vec<PathBuf>,
    /// Create the repository first if it does not exist
    #[arg(long)]
    pub init: bool,
    /// Back up standard input as one file
    #[arg(long)]
    pub stdin: bool,
    /// File name for --stdin / --stdin-from-command
    #[arg(long, default_value = "stdin")]
    pub stdin_filename: String,
    /// Back up what this command prints (arguments after --); no snapshot if it fails
    #[arg(long)]
    pub stdin_from_command: bool,
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
    /// Exclude directories marked with a valid CACHEDIR.TAG
    #[arg(long)]
    pub exclude_caches: bool,
    /// Exclude directories containing this file (NAME or NAME:HEADER; repeatable)
    #[arg(long)]
    pub exclude_if_present: Vec<String>,
    /// Exclude files larger than this (e.g. 100M, 2G)
    #[arg(long)]
    pub exclude_larger_than: Option<String>,
    /// Do not cross file system boundaries
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Honour .gitignore files
    #[arg(long)]
    pub git_ignore: bool,
    /// Add a tag to the snapshot (repeatable, or comma-separated)
    #[arg(long)]
    pub tag: Vec<String>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, short = 'H', env = "CAIRN_HOST")]
    pub host: Option<String>,
    /// Compare with this snapshot to skip unchanged files (default: the latest of this host and paths)
    #[arg(long)]
    pub parent: Option<String>,
    /// Read every file, ignoring the parent snapshot
    #[arg(short, long)]
    pub force: bool,
    /// The command for --stdin-from-command
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Snapshot ids to show (default: all)
    pub ids: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id or "latest"
    pub snapshot: String,
    /// Only list these paths and what is below them
    #[arg(value_name = "PATH")]
    pub dirs: Vec<String>,
    /// Long listing: mode, owner, size, time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    pub snapshot: String,
    /// Path of a file or directory inside the snapshot
    pub path: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// config, snapshot, index, key, pack or blob
    pub what: String,
    pub id: Option<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id or "latest"
    pub snapshot: String,
    /// Directory to restore into
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this pattern (repeatable)
    #[arg(short, long)]
    pub include: Vec<String>,
    /// As --include, ignoring case
    #[arg(long)]
    pub iinclude: Vec<String>,
    /// Do not restore paths matching this pattern (repeatable)
    #[arg(short, long)]
    pub exclude: Vec<String>,
    /// As --exclude, ignoring case
    #[arg(long)]
    pub iexclude: Vec<String>,
    /// Read the restored files back and check them
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read, decrypt and verify every blob
    #[arg(long)]
    pub read_data: bool,
}
