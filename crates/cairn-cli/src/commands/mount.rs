//! `cairn mount MOUNTPOINT`: browse every snapshot as a read-only file
//! system, in the foreground until Ctrl-C, SIGTERM or SIGHUP (then it
//! unmounts and exits 0) or until unmounted from outside (`fusermount3
//! -u`, also exit 0).
//!
//! Signals: SIGINT, SIGTERM and SIGHUP are blocked before any thread
//! starts and taken by one thread with `sigwait`, so no thread of the
//! mount (FUSE loops, workers, an HTTP client's runtime) is ever
//! interrupted and each of them reaches this command as a request to
//! unmount.

use crate::cli::{GlobalOptions, SnapshotFilterArgs};
use crate::error::{Error, Result};
use cairn_fuse::{CairnFs, MountOptions, Unmounted};
use cairn_repository::Kind;
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// An existing empty directory to mount on
    pub mountpoint: PathBuf,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Name snapshot directories with this Go time layout (restic's syntax; a `/` nests directories)
    #[arg(long, default_value = cairn_fuse::timefmt::DEFAULT_TEMPLATE)]
    pub time_template: String,
    /// Memory for cached file contents, in MiB (re-reads and read-ahead)
    #[arg(long, default_value_t = 128, value_name = "MiB")]
    pub cache_size: u64,
    /// Let other users see the mount (root's default for others in /etc/fuse.conf: user_allow_other); it also unmounts by itself if cairn is killed
    #[arg(long)]
    pub allow_other: bool,
}

/// The signals that end the mount; blocked in every thread from now on.
fn block_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    // Cannot fail: the set is valid and SIG_BLOCK a valid operation.
    let _ = set.thread_block();
    set
}

/// A thread that receives the blocked signals.
fn signal_channel(set: SigSet) -> std::sync::mpsc::Receiver<i32> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || loop {
        if let Ok(sig) = set.wait() {
            if tx.send(sig as i32).is_err() {
                return;
            }
        }
    });
    rx
}

pub fn run(g: &GlobalOptions, a: MountArgs) -> Result<i32> {
    let set = block_signals();
    let signals = signal_channel(set);
    if a.cache_size == 0 {
        return Err(Error::usage("--cache-size must be at least 1 (MiB)"));
    }
    let mountpoint = cairn_fuse::check_mountpoint(&a.mountpoint)?;
    let repo = crate::repo::open(g)?;
    let opts = MountOptions {
        filter: super::snapshot_filter(&a.filter),
        time_template: a.time_template.clone(),
        cache_size: a.cache_size.saturating_mul(1 << 20),
        allow_other: a.allow_other,
        ..MountOptions::default()
    };
    // Loading the index may take a while: an interrupt meanwhile ends it.
    let loading = std::thread::spawn({
        let repo = repo.clone();
        let mountpoint = mountpoint.clone();
        move || CairnFs::new(repo, mountpoint, &opts)
    });
    while !loading.is_finished() {
        if signals.recv_timeout(Duration::from_millis(50)).is_ok() {
            return Err(Error::new(Kind::Interrupted, "interrupted"));
        }
    }
    let fs = loading
        .join()
        .map_err(|_| Error::new(Kind::Io, "loading the repository failed unexpectedly"))??;
    let count = fs.snapshot_count();
    let mounted = cairn_fuse::mount(fs, &mountpoint, a.allow_other)?;
    if !g.quiet {
        eprintln!(
            "mounted {} ({count} snapshots) read-only at {}",
            repo.location(),
            mountpoint.display()
        );
        eprintln!(
            "press Ctrl-C (or send SIGTERM, or run `{}`) to unmount",
            cairn_fuse::unmount_command(&mountpoint)
        );
    }
    loop {
        if let Ok(sig) = signals.recv_timeout(Duration::from_millis(200)) {
            let how = mounted.unmount()?;
            if !g.quiet {
                let name = match sig {
                    libc::SIGINT => "interrupt",
                    libc::SIGHUP => "hangup",
                    _ => "SIGTERM",
                };
                match how {
                    Unmounted::Clean => eprintln!("{name}: unmounted {}", mountpoint.display()),
                    Unmounted::Detached => eprintln!(
                        "{name}: {} is busy; detached it (it goes away when no process uses it)",
                        mountpoint.display()
                    ),
                }
            }
            return Ok(0);
        }
        if mounted.is_finished() {
            mounted.wait()?;
            if !g.quiet {
                eprintln!("{} was unmounted", mountpoint.display());
            }
            return Ok(0);
        }
    }
}
