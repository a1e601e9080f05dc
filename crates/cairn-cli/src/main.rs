//! `cairn`: the command-line interface. Parses arguments once into typed
//! options, dispatches to one module per command, and turns errors into one
//! line on stderr and a documented exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | error |
//! | 2 | bad command-line usage |
//! | 3 | backup finished, but some files could not be read (snapshot incomplete) |
//! | 10 | the repository does not exist |
//! | 12 | wrong password |
//! | 130 | interrupted |

mod cli;
mod commands;
mod output;
mod progress;
mod repo;

use cairn_repository::{Error, Kind};
use clap::Parser;

fn exit_code(e: &Error) -> i32 {
    match e.kind {
        Kind::NoRepository => 10,
        Kind::WrongPassword => 12,
        Kind::Interrupted => 130,
        Kind::Usage => 1,
        _ => 1,
    }
}

/// Allocator settings for pipelines of multi-MiB buffers.
///
/// glibc raises its mmap threshold each time a large block is freed, after
/// which chunk and pack buffers come from per-thread arenas and stay
/// resident when freed; a fixed threshold stops that. It is 16 MiB, above
/// the largest chunk (8 MiB) and read piece: buffers at 4 MiB and above
/// were mmapped and faulted in page by page each time (restore and check
/// 5% slower).
///
/// A fixed mmap threshold also fixes the trim threshold at 128 KiB, so
/// every freed buffer shrank the heap and the next one faulted its pages in
/// again: a third of backup's, check's and restore's system time. Keeping
/// up to 8 MiB free at the top of each arena avoids that (big backup: 2.3
/// → 1.1 system-s), and two arenas bound what that keeps.
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() {
    tune_allocator();
    // Writing to a closed pipe (`cairn ls | head`) ends quietly.
    // SAFETY: restoring the default SIGPIPE disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    let code = match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    };
    std::process::exit(code);
}
