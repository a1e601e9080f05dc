//! `cairn generate`: shell completions and man pages from the command-line
//! definition (as restic's `generate`). `-` as FILE means standard output.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Write bash completion to FILE ("-" for standard output)
    #[arg(long, value_name = "FILE")]
    pub bash_completion: Option<PathBuf>,
    /// Write zsh completion to FILE ("-" for standard output)
    #[arg(long, value_name = "FILE")]
    pub zsh_completion: Option<PathBuf>,
    /// Write fish completion to FILE ("-" for standard output)
    #[arg(long, value_name = "FILE")]
    pub fish_completion: Option<PathBuf>,
    /// Write man pages to DIR: cairn.1 and one per command (cairn-backup.1, cairn-key-add.1, ...)
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
}

/// Write `bytes` to `path`, or to standard output for `-`.
fn write_to(path: &Path, bytes: &[u8]) -> Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io(e, "writing to standard output"));
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(e, format!("writing {}", path.display())))
}

fn completion(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = crate::help::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cairn", &mut out);
    out
}

/// The man page of `cmd` (built, so it has its display name, e.g.
/// `cairn-key-add`) and, recursively, of its subcommands; returns the
/// files written.
fn man_pages(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut bytes)
        .map_err(|e| Error::io(e, format!("rendering the man page of {name}")))?;
    let path = dir.join(format!("{name}.1"));
    write_to(&path, &bytes)?;
    out.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_pages(sub, dir, out)?;
    }
    Ok(())
}

pub fn run(g: &GlobalOptions, a: GenerateArgs) -> Result<i32> {
    use clap_complete::Shell;
    if a.bash_completion.is_none()
        && a.zsh_completion.is_none()
        && a.fish_completion.is_none()
        && a.man.is_none()
    {
        return Err(Error::usage(
            "nothing to generate: give --bash-completion, --zsh-completion, --fish-completion or --man",
        ));
    }
    for (file, shell) in [
        (&a.bash_completion, Shell::Bash),
        (&a.zsh_completion, Shell::Zsh),
        (&a.fish_completion, Shell::Fish),
    ] {
        if let Some(f) = file {
            write_to(f, &completion(shell))?;
            if !g.quiet && f != Path::new("-") {
                eprintln!("wrote {shell} completion to {}", f.display());
            }
        }
    }
    if let Some(dir) = &a.man {
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "--man {}: not a directory",
                dir.display()
            )));
        }
        let mut cmd = crate::help::command();
        cmd.build();
        let mut written = Vec::new();
        man_pages(&cmd, dir, &mut written)?;
        if !g.quiet {
            eprintln!("wrote {} man pages to {}", written.len(), dir.display());
        }
    }
    Ok(0)
}
