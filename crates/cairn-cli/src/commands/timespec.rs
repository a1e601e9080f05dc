//! Times typed on the command line (`find --oldest/--newest`,
//! `backup --time`), in restic's forms: `2006-01-02`, `2006-01-02 15:04`,
//! `2006-01-02 15:04:05`, optionally followed by a numeric zone
//! (`-0700`), the same with `02.01.2006` dates, and RFC 3339. Without a
//! zone the time is local time.

use crate::error::{Error, Result};
use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone};

const NAIVE: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
];
const ZONED: [&str; 2] = ["%Y-%m-%d %H:%M:%S %z", "%d.%m.%Y %H:%M:%S %z"];
const DATES: [&str; 2] = ["%Y-%m-%d", "%d.%m.%Y"];

/// `s` as a time, or a usage error naming `flag` and the accepted forms.
pub fn parse_time(flag: &str, s: &str) -> Result<DateTime<FixedOffset>> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d);
    }
    for f in ZONED {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Ok(d);
        }
    }
    let naive = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            DATES.iter().find_map(|f| {
                NaiveDate::parse_from_str(t, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        });
    let local = naive.and_then(|n| Local.from_local_datetime(&n).earliest());
    local.map(|d| d.fixed_offset()).ok_or_else(|| {
        Error::usage(format!(
            "invalid {flag} {s:?}: expected a time like \"2006-01-02 15:04:05\" (local time), \"2006-01-02\", \"2006-01-02 15:04:05 -0700\" or RFC 3339"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn restic_forms() {
        let utc = |s: &str| parse_time("--t", s).unwrap().timestamp();
        assert_eq!(utc("2021-01-02 03:04:05 +0000"), 1_609_556_645);
        assert_eq!(utc("02.01.2021 03:04:05 +0100"), 1_609_556_645 - 3600);
        assert_eq!(utc("2021-01-02T03:04:05Z"), 1_609_556_645);
        let local = |s: &str| parse_time("--t", s).unwrap().naive_local().to_string();
        assert_eq!(local("2021-01-02 03:04:05"), "2021-01-02 03:04:05");
        assert_eq!(local("2021-01-02 03:04"), "2021-01-02 03:04:00");
        assert_eq!(local("2021-01-02"), "2021-01-02 00:00:00");
        assert_eq!(local("02.01.2021"), "2021-01-02 00:00:00");
        for bad in ["", "yesterday", "2021-13-01", "2021-01-02 25:00"] {
            let e = parse_time("--oldest", bad).unwrap_err().to_string();
            assert!(
                e.contains("--oldest") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }
}
