//! The style gate `cargo xtask test` runs before any test (and `cargo xtask
//! lint` alone): one format, no clippy warnings, one true MSRV.
//!
//! - `cargo fmt --all --check`: the code is as `rustfmt.toml` formats it.
//! - `cargo clippy --workspace --all-targets -- -D warnings`: the lints of
//!   `[workspace.lints]` in the root `Cargo.toml`, inherited by every crate.
//!   Clippy reads `rust-version` and refuses std APIs newer than it
//!   (`incompatible_msrv`).
//! - MSRV: the workspace's `rust-version` is inherited by every member and
//!   is at least the `rust-version` of every locked dependency, so the
//!   declared value is one that can really build the workspace.

use anyhow::{bail, Context, Result};

use crate::sys;

pub fn run() -> Result<()> {
    sys::run(sys::cargo().args(["fmt", "--all", "--check"]))
        .context("the code is not formatted: run `cargo fmt --all`")?;
    sys::run(sys::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))
    .context("clippy found warnings")?;
    check_msrv()
}

/// A version as (major, minor, patch); missing parts are 0.
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

fn check_msrv() -> Result<()> {
    let out = sys::cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .context("cargo metadata: no workspace_members")?
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let packages = meta["packages"]
        .as_array()
        .context("cargo metadata: no packages")?;
    let (msrv, problems) = msrv_problems(packages, &members)?;
    if !problems.is_empty() {
        bail!("MSRV {msrv}: {}", problems.join("; "));
    }
    eprintln!("msrv: every crate declares {msrv}, and every locked dependency builds with it");
    Ok(())
}

/// The workspace MSRV and what disagrees with it: a member with another
/// (or no) `rust-version`, a dependency that needs a newer rustc.
fn msrv_problems(
    packages: &[serde_json::Value],
    members: &[&str],
) -> Result<(String, Vec<String>)> {
    let version_of = |p: &serde_json::Value| p["rust_version"].as_str().map(str::to_owned);
    let is_member =
        |p: &serde_json::Value| p["id"].as_str().is_some_and(|id| members.contains(&id));
    let msrv = packages
        .iter()
        .filter(|p| is_member(p))
        .find_map(version_of)
        .context("no workspace member declares rust-version")?;
    let ours = parse_version(&msrv).with_context(|| format!("bad rust-version {msrv:?}"))?;
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or("?");
        let declared = version_of(p);
        if is_member(p) {
            if declared.as_deref() != Some(msrv.as_str()) {
                problems.push(format!(
                    "workspace member {name} declares {declared:?}, not the workspace's {msrv}"
                ));
            }
        } else if let Some(needed) = declared.as_deref().and_then(parse_version) {
            if needed > ours {
                problems.push(format!(
                    "dependency {name} {} needs rustc {}",
                    p["version"].as_str().unwrap_or("?"),
                    declared.unwrap_or_default()
                ));
            }
        }
    }
    Ok((msrv, problems))
}

#[cfg(test)]
mod tests {
    use super::{msrv_problems, parse_version};
    use serde_json::json;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("1.88"), Some((1, 88, 0)));
        assert_eq!(parse_version("1.88.1"), Some((1, 88, 1)));
        assert!(parse_version("1.9").unwrap() < parse_version("1.10").unwrap());
        assert_eq!(parse_version("one"), None);
    }

    #[test]
    fn finds_members_that_disagree_and_dependencies_that_need_more() {
        let packages = vec![
            json!({"id": "a", "name": "a", "version": "0.1.0", "rust_version": "1.88"}),
            json!({"id": "b", "name": "b", "version": "0.1.0", "rust_version": "1.80"}),
            json!({"id": "d1", "name": "old", "version": "1.0.0", "rust_version": "1.70"}),
            json!({"id": "d2", "name": "new", "version": "2.0.0", "rust_version": "1.90"}),
            json!({"id": "d3", "name": "none", "version": "3.0.0", "rust_version": null}),
        ];
        let (msrv, problems) = msrv_problems(&packages, &["a", "b"]).unwrap();
        assert_eq!(msrv, "1.88");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("member b"), "{problems:?}");
        assert!(
            problems[1].contains("new 2.0.0 needs rustc 1.90"),
            "{problems:?}"
        );
    }
}
