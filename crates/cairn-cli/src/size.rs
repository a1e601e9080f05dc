//! Sizes on the command line, one parser for every option that takes one
//! (`backup --exclude-larger-than`, `prune --max-unused` and
//! `--max-repack-size`, `check --read-data-subset`, `serve --max-size`).
//!
//! A size is a number (`100`, `1.5`) and an optional unit, without or with
//! a space between: `K`, `M`, `G`, `T`, each also written `KB`/`KiB` and in
//! any case. Units are binary, as restic's (`1K` = 1024 bytes, `1KB` too);
//! no unit (or `B`) means bytes. Fractions are rounded down to whole bytes.

use cairn_repository::Error;

/// `s` in bytes, or an error that names the text and the accepted form.
pub fn parse_size(s: &str) -> cairn_repository::Result<u64> {
    let bad = || {
        Error::invalid(format!(
            "invalid size {s:?}: use a number of bytes, or a number with K, M, G or T (binary: 1K = 1024; KB and KiB also accepted)"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') && num.len() == 1 {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match (prefix, unit.as_str()) {
        (_, "" | "b") => 0,
        ("k", _) => 10,
        ("m", _) => 20,
        ("g", _) => 30,
        ("t", _) => 40,
        _ => return Err(bad()),
    };
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(Error::invalid(format!("invalid size {s:?}: too large")));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn every_form_gives_the_same_bytes() {
        for (text, want) in [
            ("0", 0),
            ("100", 100),
            ("100B", 100),
            (" 100 b ", 100),
            ("2K", 2048),
            ("2k", 2048),
            ("2KB", 2048),
            ("2KiB", 2048),
            ("2 kib", 2048),
            ("1.5M", 3 << 19),
            ("1.5MiB", 3 << 19),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("1GB", 1 << 30),
            ("1.5G", 3 << 29),
            ("3GiB", 3 << 30),
            ("1T", 1 << 40),
            ("1TiB", 1 << 40),
            ("0.5", 0),
            ("1.", 1),
        ] {
            assert_eq!(parse_size(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_an_error_naming_it() {
        for text in [
            "",
            " ",
            "x",
            "lots",
            "K",
            "5X",
            "5Q",
            "5KK",
            "5iB",
            "1e3",
            "-1",
            "-1K",
            "inf",
            "NaN",
            ".",
            "1.2.3",
            "5 K B",
            "99999999999T",
        ] {
            let e = parse_size(text).expect_err(text).to_string();
            assert!(e.contains(&format!("{text:?}")), "{text:?}: {e}");
        }
    }
}
