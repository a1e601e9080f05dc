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
mod error;
mod help;
mod metrics;
mod output;
mod profile;
mod progress;
mod repo;
mod secret;
mod size;

use crate::error::Error;
use cairn_repository::Kind;

/// The exit code of an error (the table above); decided here only.
fn exit_code(e: &Error) -> i32 {
    match e {
        Error::Usage(_) | Error::Command { .. } => 1,
        Error::Repo(e) => match e.kind {
            Kind::NoRepository => 10,
            Kind::WrongPassword => 12,
            Kind::Interrupted => 130,
            _ => 1,
        },
    }
}

/// A fatal error as printed on stderr: one line `error: ...`, or with
/// `--json` one JSON object (restic's `exit_error` message).
fn error_line(e: &Error, json: bool) -> String {
    if json {
        serde_json::json!({
            "message_type": "exit_error",
            "code": exit_code(e),
            "message": e.to_string(),
        })
        .to_string()
    } else {
        format!("error: {e}")
    }
}

fn report(e: &Error, json: bool) {
    eprintln!("{}", error_line(e, json));
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
///
/// glibc only: `mallopt` and these parameters are glibc's (musl's allocator
/// has neither, and a musl build has no such function to call).
#[cfg(target_env = "gnu")]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Other C libraries keep their own allocator's defaults.
#[cfg(not(target_env = "gnu"))]
fn tune_allocator() {}

fn main() {
    tune_allocator();
    // Writing to a closed pipe (`cairn ls | head`) ends quietly.
    // SAFETY: restoring the default SIGPIPE disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = match profile::parse_command_line(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(profile::ParseFailure::Profile {
            error,
            monitor: true,
        }) => {
            println!("UNKNOWN - {error}");
            std::process::exit(3);
        }
        Err(profile::ParseFailure::Profile { error, .. }) => {
            let json = std::env::args_os().any(|a| a == "--json");
            report(&error, json);
            std::process::exit(exit_code(&error));
        }
        // A monitoring plugin's usage error is UNKNOWN (3), never CRITICAL (2).
        Err(profile::ParseFailure::Clap {
            error,
            monitor: true,
        }) if error.use_stderr() => {
            println!("UNKNOWN - {}", profile::clap_message(&error));
            std::process::exit(3);
        }
        Err(profile::ParseFailure::Clap { error, .. }) => error.exit(),
    };
    let json = args.global.json;
    let code = match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            report(&e, json);
            exit_code(&e)
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&Error::usage("bad flags")), 1);
        assert_eq!(exit_code(&Error::command("`x` failed", None)), 1);
        for (kind, code) in [
            (Kind::NoRepository, 10),
            (Kind::WrongPassword, 12),
            (Kind::Interrupted, 130),
            (Kind::InvalidInput, 1),
            (Kind::Corrupt, 1),
            (Kind::ResticRepository, 1),
        ] {
            assert_eq!(exit_code(&Error::new(kind, "x")), code, "{kind:?}");
        }
    }

    #[test]
    fn json_errors_are_exit_error_objects() {
        let e = Error::new(Kind::WrongPassword, "wrong password \"x\"");
        assert_eq!(error_line(&e, false), "error: wrong password \"x\"");
        let v: serde_json::Value = serde_json::from_str(&error_line(&e, true)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message_type": "exit_error", "code": 12, "message": "wrong password \"x\""})
        );
    }

    #[test]
    fn errors_keep_their_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no sh");
        let e = Error::command("running --password-command: no sh", Some(io));
        assert_eq!(e.to_string(), "running --password-command: no sh");
        assert!(e.source().is_some());
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::io(io, "reading password file /p");
        assert_eq!(e.to_string(), "reading password file /p: denied");
        assert!(e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .is_some());
    }
}
