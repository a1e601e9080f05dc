//! One module per command. Each returns the process exit code or an error.

pub mod backup;
pub use backup::BackupArgs;
mod cat;
pub use cat::CatArgs;
mod check;
pub use check::CheckArgs;
mod copy;
pub use copy::CopyArgs;
mod diff;
pub use diff::DiffArgs;
mod dump;
pub use dump::DumpArgs;
mod find;
pub use find::FindArgs;
mod forget;
pub use forget::ForgetArgs;
mod init;
pub use init::InitArgs;
mod key;
pub use key::KeyArgs;
mod list;
pub use list::ListArgs;
mod ls;
mod mount;
pub use mount::MountArgs;
mod monitor;
pub use monitor::MonitorArgs;
mod profile;
pub use profile::ProfileArgs;
pub mod prune;
pub use ls::LsArgs;
pub use prune::PruneArgs;
mod repair;
pub use repair::RepairArgs;
mod restore;
pub use restore::RestoreArgs;
mod rewrite;
pub use rewrite::RewriteArgs;
mod run;
pub use run::RunArgs;
mod schedule;
pub use schedule::ScheduleArgs;
mod select;
mod serve;
pub use serve::ServeArgs;
mod snapshots;
pub use snapshots::SnapshotsArgs;
mod stats;
pub use stats::StatsArgs;
mod tag;
mod timespec;
pub use tag::TagArgs;
mod unlock;
pub use unlock::UnlockArgs;
mod version;
pub use version::VersionArgs;
mod generate;
pub use generate::GenerateArgs;

use crate::cli::{Cli, Command, SnapshotFilterArgs};
use crate::error::Result;
use cairn_repository::SnapshotFilter;

/// Global options checked before any command runs.
fn check_global(g: &crate::cli::GlobalOptions) -> Result<()> {
    if let Some(d) = &g.retry_lock {
        prune::parse_duration(d)?;
    }
    crate::secret::check_password_options(g)
}

pub fn run(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    check_global(g)?;
    match cli.command {
        Command::Init(a) => init::run(g, a),
        Command::Backup(a) => backup::run(g, a),
        Command::Snapshots(a) => snapshots::run(g, a),
        Command::Ls(a) => ls::run(g, a),
        Command::Dump(a) => dump::run(g, a),
        Command::List(a) => list::run(g, a),
        Command::Cat(a) => cat::run(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::Check(a) => check::run(g, a),
        Command::Prune(a) => prune::run(g, a),
        Command::Key(a) => key::run(g, a),
        Command::Copy(a) => copy::run(g, a),
        Command::Repair(a) => repair::run(g, a),
        Command::Unlock(a) => unlock::run(g, a),
        Command::Forget(a) => forget::run(g, a),
        Command::Tag(a) => tag::run(g, a),
        Command::Diff(a) => diff::run(g, a),
        Command::Find(a) => find::run(g, a),
        Command::Stats(a) => stats::run(g, a),
        Command::Rewrite(a) => rewrite::run(g, a),
        Command::Serve(a) => serve::run(g, a),
        Command::Mount(a) => mount::run(g, a),
        Command::Profile(a) => profile::run(g, a),
        Command::Run(a) => run::run(g, a),
        Command::Schedule(a) => schedule::run(g, a),
        Command::Monitor(a) => monitor::run(g, a),
        Command::Version(a) => version::run(g, a),
        Command::Generate(a) => generate::run(g, a),
    }
}

pub fn snapshot_filter(a: &SnapshotFilterArgs) -> SnapshotFilter {
    SnapshotFilter {
        hosts: a.hosts.clone(),
        tags: a.tags.clone(),
        paths: a.paths.clone(),
    }
}
