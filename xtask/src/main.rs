//! `cargo xtask`: project automation for cairn (the alias lives in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask test`: install what the tests need, build `cairn`, run the
//!   workspace tests, then a smoke run of the benchmark harness.
//! - `cargo xtask bench`: cairn against restic (and rustic) on generated data.
//! - `cargo xtask deps`: only the installation step of `test`.
//!
//! Arguments are parsed here, once, into each command's options; the
//! commands themselves never look at the command line. Progress goes to
//! stderr; stdout carries results only (the bench table, the test summary).

mod bench;
mod lint;
mod sys;
mod test;
mod torture;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--no-install] [--no-lint] [--no-bench] [-- CARGO-TEST-ARGS...]
      Install test dependencies (Debian packages, a Python venv with moto),
      run the style gate (as `lint`), build target/debug/cairn, run
      `cargo test --workspace`
      with CAIRN_BIN, RESTIC_BIN, RCLONE_BIN, MOTO_SERVER, SSHD_BIN set, then
      run `bench --smoke` on the debug binary. Arguments after `--` go to
      cargo test (e.g. `cargo xtask test -- backup_roundtrip`).

  bench [--quick | --smoke] [--reps N] [--only SET[,SET..]] [--dir DIR]
        [--peers TOOL[,TOOL..]] [--cairn-bin PATH] [--debug] [--strict]
        [--clean] [--rest-load | --mount | --backends | --databases | --scale]
      Benchmark cairn against its peers. Sets: tree, big, many, stdin.
      --quick        smaller data, a few minutes
      --smoke        tiny data, 1 repetition (what `test` runs)
      --reps N       repetitions per operation (default 3, smoke 1)
      --only SETS    comma-separated data sets to run
      --peers TOOLS  tools to compare with: restic (default), rustic;
                     e.g. `--peers restic,rustic`. A missing rustic is
                     installed with `cargo install --locked rustic-rs`
                     (about 16 minutes) or RUSTIC_BIN names it
      --dir DIR      data, repositories and restores (default /dev/shm/cairn-bench)
      --cairn-bin P  use this cairn binary instead of building one
      --debug        build and use target/debug/cairn instead of release
      --strict       exit non-zero when any row failed
      --clean        remove the generated data at the end (it is kept
                     in DIR/data/<scale>/ and reused while unchanged)
      --rest-load    instead: the REST load test, many concurrent
                     clients uploading and listing against `cairn serve`
                     and `rclone serve restic`: throughput, latency, server
                     peak RSS, nothing lost (scale with --quick / --smoke)
      --mount        instead: `cairn mount` against `restic mount` on the
                     tree set and the stdin set's large file: mount time,
                     find + stat, cat of every file, sequential read,
                     1,000 random 4 KiB reads; peak RSS of each mount
      --backends     instead: cairn and restic on the `tree` set against
                     network servers (`cairn serve` over rest:, OpenSSH
                     sshd over sftp:, s3s-fs over s3:), each behind a
                     byte-counting proxy: backup, re-backup, restore with
                     bytes sent and received; then the bytes each tool
                     reads with and without its cache; writes
                     target/bench/backends*.{md,json,csv}
      --databases    instead: a PostgreSQL database of ~1 GiB of SQL
                     (--quick 100 MiB, --smoke 5 MiB) dumped three days
                     running (1% of rows updated in one run of ids, then
                     1% scattered) as plain SQL, -Fc and -Fc -Z0; bytes
                     each backup adds, time and peak RSS, cairn and
                     restic on the same dumps; data in
                     target/bench/databases (or --dir); writes
                     target/bench/databases*.{md,json}
      --scale        instead: time and peak memory as repositories grow:
                     10^5 and 10^6 files of 300 random bytes (--quick
                     10^4/10^5, --smoke 10^3/10^4), 10^6 in one directory,
                     and a synthetic repository whose index holds 10^7
                     blobs (cairn only); backup, unchanged re-backup, ls,
                     restore, check and a tiny backup (the index load), for
                     cairn, restic and rustic (when installed); cairn's
                     index bytes per blob, the memory goal (20 MB + 64 B
                     per blob) and time growth; reps default 1; writes
                     target/bench/scale*.{md,json}

  torture [--quick] [--seed N] [--cairn-bin PATH] [--dir DIR]
      Crash and damage figures: backups, forget --prune and key passwd
      killed with SIGKILL at random instants (check must pass, nothing
      lost, the rerun finishes), and faults injected into packs, indexes,
      snapshots, key files and the config (no panic, no hang, no silently
      wrong byte in a restore). Prints a table; fails on any loss.
      --quick        the short run `test` does (about a minute)
      --seed N       replay a run (the seed is printed; default: the clock)
      --cairn-bin P  use this cairn binary (default: build target/debug/cairn)
      --dir DIR      scratch space (default /dev/shm/cairn-torture)

  lint
      The style gate alone: `cargo fmt --all --check`, `cargo clippy
      --workspace --all-targets -- -D warnings`, and the MSRV check (every
      crate inherits the workspace rust-version, and no locked dependency
      needs a newer rustc).

  deps
      Only install the test dependencies (the first step of `test`).
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("test") => test::run(parse_test(rest)?),
        Some("bench") => bench::run(parse_bench(rest)?),
        Some("torture") => torture::run(parse_torture(rest)?),
        Some("lint") => {
            if !rest.is_empty() {
                bail!("`lint` takes no arguments\n\n{USAGE}");
            }
            lint::run()
        }
        Some("deps") => {
            if !rest.is_empty() {
                bail!("`deps` takes no arguments\n\n{USAGE}");
            }
            test::install_deps().map(|_| ())
        }
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn parse_torture(args: Vec<String>) -> Result<torture::Options> {
    let mut quick = false;
    let mut seed = None;
    let mut cairn_bin = None;
    let mut dir = PathBuf::from("/dev/shm/cairn-torture");
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(
                    v.parse::<u64>()
                        .with_context(|| format!("--seed: `{v}` is not a number"))?,
                );
            }
            "--cairn-bin" => cairn_bin = Some(PathBuf::from(value("--cairn-bin")?)),
            "--dir" => dir = PathBuf::from(value("--dir")?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("torture: unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    let cairn_bin = match cairn_bin {
        Some(p) => p,
        None => {
            sys::run(sys::cargo().args(["build", "-p", "cairn-cli", "--bin", "cairn"]))?;
            sys::target_dir().join("debug/cairn")
        }
    };
    let seed = seed.unwrap_or_else(torture::clock_seed);
    Ok(torture::Options {
        quick,
        seed,
        cairn_bin,
        dir,
    })
}

fn parse_test(args: Vec<String>) -> Result<test::Options> {
    let mut opts = test::Options {
        install: true,
        lint: true,
        bench: true,
        cargo_test_args: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-install" => opts.install = false,
            "--no-bench" => opts.bench = false,
            "--no-lint" => opts.lint = false,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--" => opts.cargo_test_args.extend(args.by_ref()),
            // Anything else (a test name filter, say) goes to cargo test too.
            _ => opts.cargo_test_args.push(arg),
        }
    }
    Ok(opts)
}

fn parse_bench(args: Vec<String>) -> Result<bench::Options> {
    let mut opts = bench::Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--reps 5` and `--reps=5`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--quick" => opts.scale = bench::Scale::Quick,
            "--smoke" => opts.scale = bench::Scale::Smoke,
            "--reps" => {
                let v = value("--reps")?;
                let n: usize = v
                    .parse()
                    .with_context(|| format!("--reps: `{v}` is not a number"))?;
                if n == 0 {
                    bail!("--reps must be at least 1");
                }
                opts.reps = Some(n);
            }
            "--only" => {
                let v = value("--only")?;
                let mut sets = Vec::new();
                for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match bench::SetKind::from_name(name) {
                        Some(set) => sets.push(set),
                        None => bail!(
                            "--only: unknown data set `{name}` (known: tree, big, many, stdin)"
                        ),
                    }
                }
                opts.only = Some(sets);
            }
            "--peers" => {
                let v = value("--peers")?;
                let mut peers = Vec::new();
                for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match bench::Peer::from_name(name) {
                        Some(peer) if !peers.contains(&peer) => peers.push(peer),
                        Some(_) => {}
                        None => bail!("--peers: unknown tool `{name}` (known: restic, rustic)"),
                    }
                }
                if peers.is_empty() {
                    bail!("--peers needs at least one tool (known: restic, rustic)");
                }
                opts.peers = peers;
            }
            "--dir" => opts.dir = Some(PathBuf::from(value("--dir")?)),
            "--cairn-bin" => opts.cairn_bin = Some(PathBuf::from(value("--cairn-bin")?)),
            "--debug" => opts.debug = true,
            "--strict" => opts.strict = bench::Strict::All,
            "--clean" => opts.clean = true,
            "--rest-load" => opts.rest_load = true,
            "--mount" => opts.mount = true,
            "--backends" => opts.backends = true,
            "--databases" => opts.databases = true,
            "--scale" => opts.scaling = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("bench: unknown argument `{arg}`\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_args(args: &[&str]) -> Result<bench::Options> {
        parse_bench(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn peers_default_to_restic_and_parse_as_a_list() {
        use bench::Peer::{Restic, Rustic};
        assert_eq!(bench_args(&[]).unwrap().peers, [Restic]);
        assert_eq!(
            bench_args(&["--peers", "restic,rustic"]).unwrap().peers,
            [Restic, Rustic]
        );
        assert_eq!(
            bench_args(&["--peers=rustic,restic,rustic"]).unwrap().peers,
            [Rustic, Restic]
        );
        let Err(err) = bench_args(&["--peers", "restic,borg"]) else {
            panic!("an unknown peer was accepted");
        };
        assert_eq!(
            err.to_string(),
            "--peers: unknown tool `borg` (known: restic, rustic)"
        );
        assert!(bench_args(&["--peers", ","]).is_err());
        assert!(bench_args(&["--peers"]).is_err());
    }
}
