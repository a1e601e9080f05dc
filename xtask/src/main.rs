//! `cargo xtask`: project automation for cairn (the alias lives in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask test`: install what the tests need, build `cairn`, run the
//!   workspace tests, then a smoke run of the benchmark harness.
//! - `cargo xtask bench`: cairn against restic on generated data (issue 5).
//! - `cargo xtask deps`: only the installation step of `test`.
//!
//! Arguments are parsed here, once, into each command's options; the
//! commands themselves never look at the command line. Progress goes to
//! stderr; stdout carries results only (the bench table, the test summary).

mod bench;
mod sys;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--no-install] [--no-bench] [-- CARGO-TEST-ARGS...]
      Install test dependencies (Debian packages, a Python venv with moto),
      build target/debug/cairn, run `cargo test --workspace --exclude xtask`
      with CAIRN_BIN, RESTIC_BIN, RCLONE_BIN, MOTO_SERVER, SSHD_BIN set, then
      run `bench --smoke` on the debug binary. Arguments after `--` go to
      cargo test (e.g. `cargo xtask test -- backup_roundtrip`).

  bench [--quick | --smoke] [--reps N] [--only SET[,SET..]] [--dir DIR]
        [--cairn-bin PATH] [--debug] [--strict] [--clean] [--rest-load]
      Benchmark cairn against restic (issue 5). Sets: tree, big, many, stdin.
      --quick        smaller data, a few minutes
      --smoke        tiny data, 1 repetition (what `test` runs)
      --reps N       repetitions per operation (default 3, smoke 1)
      --only SETS    comma-separated data sets to run
      --dir DIR      data, repositories and restores (default /dev/shm/cairn-bench)
      --cairn-bin P  use this cairn binary instead of building one
      --debug        build and use target/debug/cairn instead of release
      --strict       exit non-zero when any row failed
      --clean        remove the generated data at the end (it is kept
                     in DIR/data/<scale>/ and reused while unchanged)
      --rest-load    instead: the REST load test (issue 4), many concurrent
                     clients uploading and listing against `cairn serve`
                     and `rclone serve restic`: throughput, latency, server
                     peak RSS, nothing lost (scale with --quick / --smoke)

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

fn parse_test(args: Vec<String>) -> Result<test::Options> {
    let mut opts = test::Options {
        install: true,
        bench: true,
        cargo_test_args: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-install" => opts.install = false,
            "--no-bench" => opts.bench = false,
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
            "--dir" => opts.dir = Some(PathBuf::from(value("--dir")?)),
            "--cairn-bin" => opts.cairn_bin = Some(PathBuf::from(value("--cairn-bin")?)),
            "--debug" => opts.debug = true,
            "--strict" => opts.strict = bench::Strict::All,
            "--clean" => opts.clean = true,
            "--rest-load" => opts.rest_load = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("bench: unknown argument `{arg}`\n\n{USAGE}"),
        }
    }
    Ok(opts)
}
