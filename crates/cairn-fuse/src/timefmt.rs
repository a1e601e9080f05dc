//! Snapshot directory names from snapshot times, with Go's layout syntax
//! as restic's `--time-template` takes it: the reference time
//! `Mon Jan 2 15:04:05 MST 2006` written the way the name should look
//! (`2006-01-02T15:04:05Z07:00`, restic's default, gives
//! `2024-05-01T09:30:00+02:00`).
//!
//! Every element of Go's `time.Format` is understood: years (`2006`,
//! `06`), months (`January`, `Jan`, `01`, `1`), days (`02`, `2`, `_2`),
//! days of the year (`002`, `__2`), weekdays (`Monday`, `Mon`), hours
//! (`15` on 24 hours, `03`, `3`), minutes, seconds, `PM`/`pm`, fractions (`.000`,
//! `.999`, also with `,`) and zones (`MST`, `Z07:00`, `-0700`, ... ).
//! Anything else is copied as it is. Times keep the offset the snapshot
//! was written with, as restic shows them.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// restic's default `--time-template`.
pub const DEFAULT_TEMPLATE: &str = "2006-01-02T15:04:05Z07:00";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `t` written with the Go layout `layout`.
pub fn format(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let mut out = String::new();
    let b = layout.as_bytes();
    let mut i = 0;
    let at = |i: usize, s: &str| b[i..].starts_with(s.as_bytes());
    while i < b.len() {
        let (len, text): (usize, String) = match b[i] {
            b'J' if at(i, "January") => (7, MONTHS[t.month0() as usize].into()),
            b'J' if at(i, "Jan") => (3, MONTHS[t.month0() as usize][..3].into()),
            b'M' if at(i, "Monday") => (6, day_name(t).into()),
            b'M' if at(i, "Mon") => (3, day_name(t)[..3].into()),
            b'M' if at(i, "MST") => (3, zone_name(t)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => (
                2,
                match b[i + 1] {
                    b'1' => format!("{:02}", t.month()),
                    b'2' => format!("{:02}", t.day()),
                    b'3' => format!("{:02}", hour12(t)),
                    b'4' => format!("{:02}", t.minute()),
                    b'5' => format!("{:02}", t.second()),
                    _ => format!("{:02}", t.year().rem_euclid(100)),
                },
            ),
            b'0' if at(i, "002") => (3, format!("{:03}", t.ordinal())),
            b'1' if at(i, "15") => (2, format!("{:02}", t.hour())),
            b'1' => (1, t.month().to_string()),
            b'2' if at(i, "2006") => (4, format!("{:04}", t.year())),
            b'2' => (1, t.day().to_string()),
            // `_2006` is a literal `_` before a year.
            b'_' if at(i, "_2") && !at(i, "_2006") => (2, format!("{:>2}", t.day())),
            b'_' if at(i, "__2") => (3, format!("{:>3}", t.ordinal())),
            b'3' => (1, hour12(t).to_string()),
            b'4' => (1, t.minute().to_string()),
            b'5' => (1, t.second().to_string()),
            b'P' if at(i, "PM") => (2, if t.hour() >= 12 { "PM" } else { "AM" }.into()),
            b'p' if at(i, "pm") => (2, if t.hour() >= 12 { "pm" } else { "am" }.into()),
            b'-' | b'Z' => match zone(t, &layout[i..]) {
                Some(z) => z,
                None => (1, (b[i] as char).to_string()),
            },
            b'.' | b',' => match fraction(t, &b[i..]) {
                Some(f) => f,
                None => (1, (b[i] as char).to_string()),
            },
            _ => {
                // Copy one character (layouts may hold any UTF-8).
                let c = layout[i..].chars().next().expect("in bounds");
                (c.len_utf8(), c.to_string())
            }
        };
        out.push_str(&text);
        i += len;
    }
    out
}

fn day_name(t: &DateTime<FixedOffset>) -> &'static str {
    DAYS[t.weekday().num_days_from_monday() as usize]
}

fn hour12(t: &DateTime<FixedOffset>) -> u32 {
    match t.hour() % 12 {
        0 => 12,
        h => h,
    }
}

/// Go prints a zone without a name as its offset (`-0700`); UTC is `UTC`.
fn zone_name(t: &DateTime<FixedOffset>) -> String {
    let secs = t.offset().local_minus_utc();
    if secs == 0 {
        return "UTC".into();
    }
    let (sign, a) = if secs < 0 { ('-', -secs) } else { ('+', secs) };
    format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
}

/// The zone elements, longest first as Go matches them.
fn zone(t: &DateTime<FixedOffset>, rest: &str) -> Option<(usize, String)> {
    const FORMS: [&str; 5] = ["070000", "07:00:00", "0700", "07:00", "07"];
    let z = rest.starts_with('Z');
    let form = FORMS.iter().find(|f| rest[1..].starts_with(**f))?;
    let secs = t.offset().local_minus_utc();
    if z && secs == 0 {
        return Some((1 + form.len(), "Z".into()));
    }
    let (sign, a) = if secs < 0 { ('-', -secs) } else { ('+', secs) };
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let text = match *form {
        "070000" => format!("{sign}{h:02}{m:02}{s:02}"),
        "07:00:00" => format!("{sign}{h:02}:{m:02}:{s:02}"),
        "0700" => format!("{sign}{h:02}{m:02}"),
        "07:00" => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}"),
    };
    Some((1 + form.len(), text))
}

/// `.000` (fixed digits) or `.999` (trailing zeros and then the separator
/// dropped), not followed by another digit.
fn fraction(t: &DateTime<FixedOffset>, rest: &[u8]) -> Option<(usize, String)> {
    let digit = *rest.get(1)?;
    if digit != b'0' && digit != b'9' {
        return None;
    }
    let n = rest[1..].iter().take_while(|&&c| c == digit).count();
    if rest.get(1 + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let nanos = format!("{:09}", t.nanosecond().min(999_999_999));
    let mut digits = nanos[..n.min(9)].to_string();
    if digit == b'9' {
        digits = digits.trim_end_matches('0').to_string();
        if digits.is_empty() {
            return Some((1 + n, String::new()));
        }
    }
    Some((1 + n, format!("{}{digits}", rest[0] as char)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn restic_default_and_go_elements() {
        let a = t("2024-05-01T09:03:07.120000+02:00");
        assert_eq!(format(&a, DEFAULT_TEMPLATE), "2024-05-01T09:03:07+02:00");
        assert_eq!(
            format(&t("2024-05-01T09:03:07Z"), DEFAULT_TEMPLATE),
            "2024-05-01T09:03:07Z"
        );
        assert_eq!(
            format(&a, "Mon Monday Jan January 1 01 2 02 _2 06 2006 002 __2"),
            "Wed Wednesday May May 5 05 1 01  1 24 2024 122 122"
        );
        assert_eq!(
            format(&a, "15 3 03 4 04 5 05 PM pm"),
            "09 9 09 3 03 7 07 AM am"
        );
        assert_eq!(
            format(&a, "05.000 05.999 05,9 05.0"),
            "07.120 07.12 07,1 07.1"
        );
        assert_eq!(
            format(&t("2024-05-01T21:00:00Z"), "05.999|3PM|MST"),
            "00|9PM|UTC"
        );
        assert_eq!(
            format(
                &t("2024-05-01T21:00:00-05:30"),
                "-0700 -07 Z07:00 MST -07:00:00"
            ),
            "-0530 -05 -05:30 -0530 -05:30:00"
        );
        // Literal text, a `_` before a year, UTF-8, and slashes for nested names.
        assert_eq!(
            format(&a, "backup_2006/01/02 at 15h — ok"),
            "backup_2024/05/01 at 09h — ok"
        );
    }
}
