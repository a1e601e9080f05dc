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

fn main() {
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
