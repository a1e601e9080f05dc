use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::output::{bytes, json_line};
use cairn_engine::prune::{parse_max_unused, prune, PruneOptions, PruneProgress};
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct PruneArgs {
    /// Only report what would be removed and how much space it frees
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub flags: PruneFlags,
}

/// How prune repacks and deletes: the flags of `prune`, also taken by
/// `forget --prune`.
#[derive(Args, Debug, Clone, Default)]
pub struct PruneFlags {
    /// Unused space to tolerate in partly used packs: a percentage of the used data ("5%"), a size ("1G"), or "unlimited"
    #[arg(long, default_value = "5%")]
    pub max_unused: String,
    /// Read at most this much data for repacking (e.g. "10G")
    #[arg(long)]
    pub max_repack_size: Option<String>,
    /// How long unused packs stay marked before deletion; concurrent backups must finish within it (e.g. "24h", "30m", "0")
    #[arg(long, default_value = "24h")]
    pub keep_delete: String,
}

/// "24h", "30m", "90s", "2d", "0" → seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| Error::usage(format!("invalid duration {s:?} (e.g. 24h, 30m, 2d12h)")))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(Error::usage(format!(
                    "invalid duration {s:?}: unknown unit {c:?} (use s, m, h, d)"
                )))
            }
        };
    }
    if !num.is_empty() || t.is_empty() {
        return Err(Error::usage(format!(
            "invalid duration {s:?} (e.g. 24h, 30m, 2d12h)"
        )));
    }
    Ok(std::time::Duration::from_secs(total))
}

impl PruneFlags {
    /// The engine's options, values checked.
    pub fn options(&self, g: &GlobalOptions, dry_run: bool) -> Result<PruneOptions> {
        let a = self;
        Ok(PruneOptions {
            dry_run,
            max_unused: parse_max_unused(&a.max_unused, crate::size::parse_size)?,
            max_repack_size: a
                .max_repack_size
                .as_deref()
                .map(crate::size::parse_size)
                .transpose()?,
            keep_delete: parse_duration(&a.keep_delete)?,
            pack_size: (g.pack_size.clamp(1, 1024) as usize) << 20,
        })
    }
}

pub fn run(g: &GlobalOptions, a: PruneArgs) -> Result<i32> {
    let repo = crate::repo::open(g)?;
    run_with(g, &repo, &a.flags, a.dry_run)
}

/// Prune an open repository (also used by `forget --prune`).
pub fn run_with(
    g: &GlobalOptions,
    repo: &std::sync::Arc<cairn_repository::Repository>,
    a: &PruneFlags,
    dry_run: bool,
) -> Result<i32> {
    let opts = a.options(g, dry_run)?;
    let r = prune(repo, &opts, &PruneProgress::default())?;
    if g.json {
        json_line(&serde_json::to_value(&r).expect("json"));
        return Ok(0);
    }
    if g.quiet {
        return Ok(0);
    }
    let would = if r.dry_run { "would " } else { "" };
    println!(
        "{} snapshots, {} packs, {}",
        r.snapshots,
        r.packs_total,
        bytes(r.size_total)
    );
    println!("used:   {} blobs, {}", r.blobs_used, bytes(r.size_used));
    println!("unused: {} blobs, {}", r.blobs_unused, bytes(r.size_unused));
    println!(
        "{would}mark {} unused packs for deletion ({})",
        r.packs_marked + r.packs_unindexed,
        bytes(r.size_marked)
    );
    println!(
        "{would}repack {} partly used packs ({}), copying {} of used data",
        r.packs_repacked,
        bytes(r.size_repacked),
        bytes(r.size_rewritten)
    );
    println!(
        "{would}delete {} packs marked earlier ({})",
        r.packs_deleted,
        bytes(r.size_deleted)
    );
    if r.packs_recovered > 0 {
        println!(
            "{would}keep {} marked packs that snapshots need again",
            r.packs_recovered
        );
    }
    println!(
        "unused space left in partly used packs: {}",
        bytes(r.size_unused_after)
    );
    println!("space {would}freed now: {}", bytes(r.size_freed_now));
    if r.size_freed_eventually > r.size_freed_now {
        println!(
            "space freed once marked packs are deleted (by a prune after --keep-delete {}): {}",
            a.keep_delete,
            bytes(r.size_freed_eventually)
        );
    }
    if r.temporaries_removed > 0 {
        println!(
            "removed {} temporary files left by interrupted writers",
            r.temporaries_removed
        );
    }
    if !r.dry_run {
        println!(
            "wrote {} new packs and {} index files, removed {} index files",
            r.packs_written, r.index_files_written, r.index_files_removed
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("0").unwrap().as_secs(), 0);
        assert_eq!(super::parse_duration("24h").unwrap().as_secs(), 86400);
        assert_eq!(super::parse_duration("1d2h3m4s").unwrap().as_secs(), 93784);
        assert!(super::parse_duration("5x").is_err());
        assert!(super::parse_duration("h").is_err());
        assert!(super::parse_duration("12").is_err());
    }
}
