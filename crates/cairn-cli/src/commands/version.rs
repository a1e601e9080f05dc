//! `cairn version`: the version, the compiler and the platform, as
//! restic's `version` prints them (text, or one JSON object with `--json`).

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::output::json_line;
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct VersionArgs {}

/// The compiler that built this binary (recorded by build.rs).
const RUSTC_VERSION: &str = env!("CAIRN_RUSTC_VERSION");

/// The architecture under restic's (Go's) name: amd64, arm64, 386, ...
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        a => a,
    }
}

/// `cairn 0.1.0 compiled with rustc 1.85.0 on linux/amd64`.
fn text() -> String {
    format!(
        "cairn {} compiled with rustc {RUSTC_VERSION} on {}/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        arch()
    )
}

pub fn run(g: &GlobalOptions, _a: VersionArgs) -> Result<i32> {
    if g.json {
        json_line(&json!({
            "message_type": "version",
            "version": env!("CARGO_PKG_VERSION"),
            "rust_version": RUSTC_VERSION,
            "os": std::env::consts::OS,
            "arch": arch(),
        }));
    } else {
        println!("{}", text());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_version_compiler_and_platform() {
        let t = text();
        assert!(t.starts_with(&format!(
            "cairn {} compiled with rustc ",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(RUSTC_VERSION.starts_with("1."), "{RUSTC_VERSION}");
        assert!(t.ends_with(&format!(" on {}/{}", std::env::consts::OS, arch())));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(arch(), "amd64");
        }
    }
}
