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

/// The options every command takes (restic's global flags); `--help`
/// shows them under their own heading.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global Flags")]
pub struct GlobalOptions {
    /// Repository: a local path (or local:PATH), rest:http(s)://[user:pass@]host:port/path/ (user and password also from CAIRN_REST_USERNAME, CAIRN_REST_PASSWORD), sftp:user@host:/path, sftp://user@host:port/path, s3:https://host/bucket/prefix, s3:host/bucket, rclone:remote:path. Default: a repository under your data directory
    #[arg(short = 'r', long = "repo", env = "CAIRN_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the repository location from the first line of this file (instead of -r)
    #[arg(
        long,
        env = "CAIRN_REPOSITORY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub repository_file: Option<PathBuf>,
    /// Read the password from the first line of this file
    #[arg(short = 'p', long, env = "CAIRN_PASSWORD_FILE", global = true)]
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
    /// Print more (repeatable): `backup -v` lists new and modified files, `-vv` every file
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Take no lock in the repository (cairn's commands take none: accepted for restic's scripts)
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// Wait up to DURATION (e.g. 30s, 5m) for a lock held by another process (cairn's commands take none, so they never wait)
    #[arg(long, value_name = "DURATION", global = true)]
    pub retry_lock: Option<String>,
    /// Compression: auto (zstd level 2), off, max, or a zstd level 1-19
    #[arg(long, env = "CAIRN_COMPRESSION", default_value = "auto", global = true)]
    pub compression: String,
    /// Target pack size in MiB
    #[arg(long, env = "CAIRN_PACK_SIZE", default_value_t = 16, global = true)]
    pub pack_size: u32,
    /// Trust the certificate authority in this PEM file for rest: and s3: over HTTPS (repeatable)
    #[arg(long, env = "CAIRN_CACERT", value_name = "FILE", global = true)]
    pub cacert: Vec<PathBuf>,
    /// Present this client certificate to rest: servers over HTTPS (a PEM file with the certificate and its key)
    #[arg(
        long,
        env = "CAIRN_TLS_CLIENT_CERT",
        value_name = "FILE",
        global = true
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// Do not verify the rest: server's TLS certificate: insecure, for tests and self-signed servers
    #[arg(
        long,
        env = "CAIRN_INSECURE_TLS",
        value_parser = clap::builder::FalseyValueParser::new(),
        global = true
    )]
    pub insecure_tls: bool,
    /// Try the key with this ID (or ID prefix) first when opening the repository
    #[arg(long, env = "CAIRN_KEY_HINT", value_name = "ID", global = true)]
    pub key_hint: Option<String>,
    /// Set a backend option (repeatable): connections=N, s3.region=, s3.storage-class=, s3.bucket-lookup=auto|dns|path, sftp.command=, sftp.args=, rclone.program=, rclone.args=
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", global = true)]
    pub options: Vec<String>,
    /// Limit uploads to a network backend to this many KiB/s
    #[arg(
        long,
        value_name = "KIB_PER_S",
        env = "CAIRN_LIMIT_UPLOAD",
        global = true
    )]
    pub limit_upload: Option<u64>,
    /// Limit downloads from a network backend to this many KiB/s
    #[arg(
        long,
        value_name = "KIB_PER_S",
        env = "CAIRN_LIMIT_DOWNLOAD",
        global = true
    )]
    pub limit_download: Option<u64>,
    /// Where to cache metadata of remote repositories (default: $XDG_CACHE_HOME/cairn or ~/.cache/cairn)
    #[arg(long, env = "CAIRN_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Do not use a local cache for remote repositories
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Remove the caches of repositories not used for 30 days
    #[arg(long, global = true)]
    pub cleanup_cache: bool,
    /// Take defaults from this profile ($XDG_CONFIG_HOME/cairn/NAME.toml or /etc/cairn/NAME.toml); flags and the environment override it
    #[arg(
        short = 'P',
        long,
        env = "CAIRN_PROFILE",
        value_name = "NAME",
        global = true
    )]
    pub profile: Option<String>,
    /// The password once read, when a command opens the repository several
    /// times (`run`): asked or computed once.
    #[arg(skip)]
    pub password_cache: Option<crate::repo::PasswordCache>,
    /// `--password-file` or `--password-command` was given on the command
    /// line (not through its environment variable): it wins over
    /// CAIRN_PASSWORD. Set by the parser from clap's value sources.
    #[arg(skip)]
    pub password_flag_given: bool,
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
    pub fn patterns(&self) -> crate::error::Result<(Vec<String>, Vec<String>)> {
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
    /// Print repository internals: config, snapshot, index, key, lock, pack, tree or blob
    Cat(CatArgs),
    /// List ids: blobs, packs, index, snapshots, keys or locks
    List(ListArgs),
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
    /// Browse every snapshot as a read-only file system (FUSE), until Ctrl-C or SIGTERM
    Mount(MountArgs),
    /// List, show and check profiles (TOML files of repository, password and defaults)
    Profile(ProfileArgs),
    /// Run a profile: backup, then forget and prune by its policy, then check
    Run(RunArgs),
    /// Install, list or remove a schedule (systemd timer or crontab line) that runs a profile
    Schedule(ScheduleArgs),
    /// Check the age and completeness of a host's last snapshot (Nagios/Icinga plugin)
    Monitor(MonitorArgs),
    /// Print the version, the compiler and the platform
    Version(VersionArgs),
    /// Write shell completions (bash, zsh, fish) and man pages
    Generate(GenerateArgs),
}
