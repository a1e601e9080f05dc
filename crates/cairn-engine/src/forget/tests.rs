//! Every rule against kept sets written by hand, including calendar edge
//! cases: ISO weeks across years, DST changes (Europe/Berlin rules), leap days.

use super::*;
use chrono::{TimeZone, Weekday};

fn utc(_: DateTime<Utc>) -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

/// Europe/Berlin: CET (+1), CEST (+2) from the last Sunday of March 01:00 UTC
/// to the last Sunday of October 01:00 UTC.
fn berlin(t: DateTime<Utc>) -> FixedOffset {
    let last_sunday = |month: u32| {
        let mut d = NaiveDate::from_ymd_opt(t.year(), month + 1, 1)
            .unwrap()
            .pred_opt()
            .unwrap();
        while d.weekday() != Weekday::Sun {
            d = d.pred_opt().unwrap();
        }
        Utc.from_utc_datetime(&d.and_hms_opt(1, 0, 0).unwrap())
    };
    let summer = t >= last_sunday(3) && t < last_sunday(10);
    FixedOffset::east_opt(if summer { 7200 } else { 3600 }).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn snap(time: &str, host: &str, paths: &[&str], tags: &[&str]) -> Snapshot {
    Snapshot {
        version: 1,
        time: DateTime::parse_from_rfc3339(time).unwrap(),
        tree: Id::default(),
        paths: paths.iter().map(|s| s.to_string()).collect(),
        hostname: host.into(),
        username: "u".into(),
        uid: 0,
        gid: 0,
        tags: tags.iter().map(|s| s.to_string()).collect(),
        excludes: vec![],
        parent: None,
        original: None,
        program_version: String::new(),
        summary: None,
    }
}

/// Snapshots named by their time (the id is derived from it).
fn list(times: &[&str]) -> Vec<(Id, Snapshot)> {
    times
        .iter()
        .map(|s| (Id::sha256(s.as_bytes()), snap(s, "h", &["/d"], &[])))
        .collect()
}

fn name_of(s: &Snapshot) -> String {
    s.time.to_rfc3339()
}

/// The kept snapshots' times (newest first) after applying `p`.
fn kept_with(times: &[&str], p: &Policy, now: &str, zone: OffsetAt) -> Vec<String> {
    let (keep, remove) = apply_policy(list(times), p, t(now), zone);
    assert_eq!(keep.len() + remove.len(), times.len());
    keep.iter().map(|k| name_of(&k.snapshot)).collect()
}

fn kept(times: &[&str], p: &Policy) -> Vec<String> {
    kept_with(times, p, "2100-01-01T00:00:00Z", &utc)
}

fn norm(v: &[&str]) -> Vec<String> {
    v.iter()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_rfc3339())
        .collect()
}

fn reasons(times: &[&str], p: &Policy, zone: OffsetAt) -> Vec<(String, Vec<String>)> {
    let (keep, _) = apply_policy(list(times), p, t("2100-01-01T00:00:00Z"), zone);
    keep.into_iter()
        .map(|k| (name_of(&k.snapshot), k.reasons))
        .collect()
}

fn d(s: &str) -> CalendarDuration {
    CalendarDuration::parse(s).unwrap()
}

const DAYS: &[&str] = &[
    "2021-01-01T10:00:00Z",
    "2021-01-01T20:00:00Z",
    "2021-01-02T08:00:00Z",
    "2021-01-03T09:00:00Z",
    "2021-01-03T23:00:00Z",
];

#[test]
fn keep_last() {
    let p = Policy {
        last: 3,
        ..Default::default()
    };
    assert_eq!(
        kept(DAYS, &p),
        norm(&[
            "2021-01-03T23:00:00Z",
            "2021-01-03T09:00:00Z",
            "2021-01-02T08:00:00Z"
        ])
    );
    let p = Policy {
        last: 10,
        ..Default::default()
    };
    assert_eq!(kept(DAYS, &p).len(), 5);
    let p = Policy {
        last: UNLIMITED,
        ..Default::default()
    };
    assert_eq!(kept(DAYS, &p).len(), 5);
    // Input order does not matter.
    let mut rev = DAYS.to_vec();
    rev.reverse();
    assert_eq!(
        kept(
            &rev,
            &Policy {
                last: 1,
                ..Default::default()
            }
        ),
        norm(&["2021-01-03T23:00:00Z"])
    );
}

#[test]
fn keep_daily_and_the_oldest_snapshot() {
    let p = Policy {
        daily: 2,
        ..Default::default()
    };
    assert_eq!(
        kept(DAYS, &p),
        norm(&["2021-01-03T23:00:00Z", "2021-01-02T08:00:00Z"])
    );
    let p = Policy {
        daily: 3,
        ..Default::default()
    };
    assert_eq!(
        kept(DAYS, &p),
        norm(&[
            "2021-01-03T23:00:00Z",
            "2021-01-02T08:00:00Z",
            "2021-01-01T20:00:00Z"
        ])
    );
    // Count left at the oldest snapshot: it is kept too, to reach back as far as possible.
    let p = Policy {
        daily: 5,
        ..Default::default()
    };
    assert_eq!(
        reasons(DAYS, &p, &utc),
        vec![
            (
                norm(&["2021-01-03T23:00:00Z"])[0].clone(),
                vec!["daily snapshot".to_string()]
            ),
            (
                norm(&["2021-01-02T08:00:00Z"])[0].clone(),
                vec!["daily snapshot".to_string()]
            ),
            (
                norm(&["2021-01-01T20:00:00Z"])[0].clone(),
                vec!["daily snapshot".to_string()]
            ),
            (
                norm(&["2021-01-01T10:00:00Z"])[0].clone(),
                vec!["oldest daily snapshot".to_string()]
            ),
        ]
    );
}

#[test]
fn keep_hourly() {
    let times = [
        "2021-05-01T10:05:00Z",
        "2021-05-01T10:55:00Z",
        "2021-05-01T11:00:00Z",
        "2021-05-01T11:59:59Z",
        "2021-05-01T13:30:00Z",
    ];
    let p = Policy {
        hourly: 2,
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&["2021-05-01T13:30:00Z", "2021-05-01T11:59:59Z"])
    );
    let p = Policy {
        hourly: 3,
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&[
            "2021-05-01T13:30:00Z",
            "2021-05-01T11:59:59Z",
            "2021-05-01T10:55:00Z"
        ])
    );
}

/// 2020-12-28 (Mon) … 2021-01-03 (Sun) is ISO week 2020-W53; 2021-01-04 starts 2021-W01.
const NEW_YEAR: &[&str] = &[
    "2020-12-27T12:00:00Z", // Sun, 2020-W52
    "2020-12-28T12:00:00Z", // Mon, 2020-W53
    "2020-12-31T12:00:00Z", // Thu, 2020-W53
    "2021-01-01T12:00:00Z", // Fri, 2020-W53
    "2021-01-03T12:00:00Z", // Sun, 2020-W53
    "2021-01-04T12:00:00Z", // Mon, 2021-W01
    "2021-01-10T12:00:00Z", // Sun, 2021-W01
    "2021-01-11T12:00:00Z", // Mon, 2021-W02
];

#[test]
fn keep_weekly_uses_iso_weeks_across_the_year_boundary() {
    let p = Policy {
        weekly: 3,
        ..Default::default()
    };
    assert_eq!(
        kept(NEW_YEAR, &p),
        norm(&[
            "2021-01-11T12:00:00Z",
            "2021-01-10T12:00:00Z",
            "2021-01-03T12:00:00Z"
        ])
    );
    let p = Policy {
        weekly: 4,
        ..Default::default()
    };
    assert_eq!(
        kept(NEW_YEAR, &p),
        norm(&[
            "2021-01-11T12:00:00Z",
            "2021-01-10T12:00:00Z",
            "2021-01-03T12:00:00Z",
            "2020-12-27T12:00:00Z"
        ])
    );
}

#[test]
fn keep_monthly_and_yearly_use_the_calendar_year() {
    let p = Policy {
        yearly: 2,
        ..Default::default()
    };
    assert_eq!(
        kept(NEW_YEAR, &p),
        norm(&["2021-01-11T12:00:00Z", "2020-12-31T12:00:00Z"])
    );
    let p = Policy {
        monthly: 1,
        ..Default::default()
    };
    assert_eq!(kept(NEW_YEAR, &p), norm(&["2021-01-11T12:00:00Z"]));
    // Unlimited: one per month, and the oldest.
    let p = Policy {
        monthly: UNLIMITED,
        ..Default::default()
    };
    assert_eq!(
        kept(NEW_YEAR, &p),
        norm(&[
            "2021-01-11T12:00:00Z",
            "2020-12-31T12:00:00Z",
            "2020-12-27T12:00:00Z"
        ])
    );
}

#[test]
fn buckets_follow_the_time_zone_and_the_stored_offset_does_not_matter() {
    // 23:30 UTC is the next day in Berlin.
    let times = [
        "2021-01-05T23:30:00Z",
        "2021-01-06T10:00:00Z",
        "2021-01-04T12:00:00Z",
    ];
    let p = Policy {
        daily: 2,
        ..Default::default()
    };
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &utc),
        norm(&["2021-01-06T10:00:00Z", "2021-01-05T23:30:00Z"])
    );
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &berlin),
        norm(&["2021-01-06T10:00:00Z", "2021-01-04T12:00:00Z"])
    );
    // The same instants written with another offset: same result.
    let shifted = [
        "2021-01-06T08:30:00+09:00",
        "2021-01-06T05:00:00-05:00",
        "2021-01-04T12:00:00+00:00",
    ];
    let got: Vec<DateTime<Utc>> = kept_with(&shifted, &p, "2100-01-01T00:00:00Z", &berlin)
        .iter()
        .map(|s| t(s))
        .collect();
    assert_eq!(
        got,
        vec![t("2021-01-06T10:00:00Z"), t("2021-01-04T12:00:00Z")]
    );
}

#[test]
fn dst_spring_forward_in_berlin() {
    // 2021-03-28 02:00 CET became 03:00 CEST (01:00 UTC).
    let times = [
        "2021-03-27T22:30:00Z", // 27th 23:30 CET
        "2021-03-27T23:30:00Z", // 28th 00:30 CET
        "2021-03-28T21:30:00Z", // 28th 23:30 CEST
        "2021-03-28T22:30:00Z", // 29th 00:30 CEST
    ];
    let p = Policy {
        daily: 3,
        ..Default::default()
    };
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &berlin),
        norm(&[
            "2021-03-28T22:30:00Z",
            "2021-03-28T21:30:00Z",
            "2021-03-27T22:30:00Z"
        ])
    );
    // In UTC the days split differently (and the oldest is kept with count left).
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &utc),
        norm(&[
            "2021-03-28T22:30:00Z",
            "2021-03-27T23:30:00Z",
            "2021-03-27T22:30:00Z"
        ])
    );
    // Within 1d is a calendar day (23 hours here); within 24h is elapsed time.
    let around = [
        "2021-03-27T12:30:00Z",
        "2021-03-27T13:30:00Z",
        "2021-03-28T12:00:00Z",
    ];
    let p = Policy {
        within: d("1d"),
        ..Default::default()
    };
    assert_eq!(
        kept_with(&around, &p, "2100-01-01T00:00:00Z", &berlin),
        norm(&["2021-03-28T12:00:00Z", "2021-03-27T13:30:00Z"])
    );
    let p = Policy {
        within: d("24h"),
        ..Default::default()
    };
    assert_eq!(
        kept_with(&around, &p, "2100-01-01T00:00:00Z", &berlin).len(),
        3
    );
}

#[test]
fn dst_fall_back_in_berlin() {
    // 2021-10-31 03:00 CEST became 02:00 CET (01:00 UTC): 02:xx happened twice.
    let times = [
        "2021-10-30T23:50:00Z", // 01:50 CEST
        "2021-10-31T00:15:00Z", // 02:15 CEST
        "2021-10-31T01:45:00Z", // 02:45 CET
        "2021-10-31T02:10:00Z", // 03:10 CET
    ];
    let p = Policy {
        hourly: 3,
        ..Default::default()
    };
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &berlin),
        norm(&[
            "2021-10-31T02:10:00Z",
            "2021-10-31T01:45:00Z",
            "2021-10-30T23:50:00Z"
        ])
    );
    assert_eq!(
        kept_with(&times, &p, "2100-01-01T00:00:00Z", &utc),
        norm(&[
            "2021-10-31T02:10:00Z",
            "2021-10-31T01:45:00Z",
            "2021-10-31T00:15:00Z"
        ])
    );
    // The 25-hour day is one daily bucket.
    let p = Policy {
        daily: 1,
        ..Default::default()
    };
    assert_eq!(
        kept_with(&times[1..], &p, "2100-01-01T00:00:00Z", &berlin),
        norm(&["2021-10-31T02:10:00Z"])
    );
}

#[test]
fn leap_days() {
    let p = Policy {
        daily: 3,
        ..Default::default()
    };
    let times = [
        "2024-02-28T12:00:00Z",
        "2024-02-29T12:00:00Z",
        "2024-03-01T12:00:00Z",
    ];
    assert_eq!(kept(&times, &p).len(), 3);
    let p = Policy {
        monthly: 2,
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&["2024-03-01T12:00:00Z", "2024-02-29T12:00:00Z"])
    );
    // A year back from a leap day: 2023-02-29 does not exist and becomes 2023-03-01 (Go's AddDate).
    let times = [
        "2023-02-28T23:00:00Z",
        "2023-03-01T11:00:00Z",
        "2023-03-01T13:00:00Z",
        "2024-02-29T12:00:00Z",
    ];
    let p = Policy {
        within: d("1y"),
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&["2024-02-29T12:00:00Z", "2023-03-01T13:00:00Z"])
    );
    // A year back from 2025-02-28 is 2024-02-28: the leap day is inside.
    let times = [
        "2024-02-28T11:00:00Z",
        "2024-02-29T00:00:00Z",
        "2025-02-28T12:00:00Z",
    ];
    assert_eq!(
        kept(&times, &p),
        norm(&["2025-02-28T12:00:00Z", "2024-02-29T00:00:00Z"])
    );
    // A month back from 31 March 2024 is "31 February" = 2 March.
    let times = [
        "2024-03-01T12:00:00Z",
        "2024-03-02T11:00:00Z",
        "2024-03-02T13:00:00Z",
        "2024-03-31T12:00:00Z",
    ];
    let p = Policy {
        within: d("1m"),
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&["2024-03-31T12:00:00Z", "2024-03-02T13:00:00Z"])
    );
}

#[test]
fn keep_within_is_relative_to_the_newest_past_snapshot() {
    let times = [
        "2021-01-05T00:00:00Z",
        "2021-01-08T00:00:00Z",
        "2021-01-09T00:00:00Z",
        "2021-01-20T00:00:00Z",
    ];
    // 01-20 is in the future (now = 01-10): the newest is 01-09, so the cut is 01-07.
    let p = Policy {
        within: d("2d"),
        ..Default::default()
    };
    assert_eq!(
        kept_with(&times, &p, "2021-01-10T00:00:00Z", &utc),
        norm(&[
            "2021-01-20T00:00:00Z",
            "2021-01-09T00:00:00Z",
            "2021-01-08T00:00:00Z"
        ])
    );
    // Strictly after the cut: exactly 4 days before 01-09 is out.
    let p = Policy {
        within: d("4d"),
        ..Default::default()
    };
    assert_eq!(kept_with(&times, &p, "2021-01-10T00:00:00Z", &utc).len(), 3);
    // Combined parts: 1d12h before 01-09 00:00 is 01-07 12:00.
    let p = Policy {
        within: d("1d12h"),
        ..Default::default()
    };
    assert_eq!(kept_with(&times, &p, "2021-01-10T00:00:00Z", &utc).len(), 3);
    // All in the future: all are within.
    assert_eq!(kept_with(&times, &p, "2020-01-01T00:00:00Z", &utc).len(), 4);
}

#[test]
fn keep_within_daily_and_weekly() {
    let times = [
        "2021-06-01T08:00:00Z",
        "2021-06-01T20:00:00Z",
        "2021-06-02T08:00:00Z",
        "2021-06-02T21:00:00Z",
        "2021-06-03T08:00:00Z",
        "2021-06-03T20:00:00Z",
        "2021-06-04T08:00:00Z",
        "2021-06-04T20:00:00Z",
        "2021-06-05T08:00:00Z",
        "2021-06-05T20:00:00Z",
    ];
    // Cut: 06-02 20:00. Newest per day among the later ones.
    let p = Policy {
        within_daily: d("3d"),
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&[
            "2021-06-05T20:00:00Z",
            "2021-06-04T20:00:00Z",
            "2021-06-03T20:00:00Z",
            "2021-06-02T21:00:00Z"
        ])
    );
    // Everything within: newest per day, and the oldest.
    let p = Policy {
        within_daily: d("10d"),
        ..Default::default()
    };
    let r = reasons(&times, &p, &utc);
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[5],
        (
            norm(&["2021-06-01T08:00:00Z"])[0].clone(),
            vec!["oldest daily within 10d".to_string()]
        )
    );
    // Weekly within 7d: all of 06-01 … 06-05 are ISO week 2021-W22: the newest, and the oldest.
    let p = Policy {
        within_weekly: d("7d"),
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        norm(&["2021-06-05T20:00:00Z", "2021-06-01T08:00:00Z"])
    );
    let p = Policy {
        within_hourly: d("1d"),
        within_monthly: d("1y"),
        within_yearly: d("1y"),
        ..Default::default()
    };
    assert_eq!(
        kept(&times, &p),
        // Hourly within 1d: strictly after 06-04 20:00; monthly and yearly: the newest and the oldest.
        norm(&[
            "2021-06-05T20:00:00Z",
            "2021-06-05T08:00:00Z",
            "2021-06-01T08:00:00Z"
        ])
    );
}

#[test]
fn keep_tags_and_reasons_from_several_rules() {
    let s = vec![
        (
            Id::sha256(b"1"),
            snap("2021-01-01T00:00:00Z", "h", &["/d"], &["a"]),
        ),
        (
            Id::sha256(b"2"),
            snap("2021-01-02T00:00:00Z", "h", &["/d"], &["a", "b"]),
        ),
        (
            Id::sha256(b"3"),
            snap("2021-01-03T00:00:00Z", "h", &["/d"], &["b"]),
        ),
        (
            Id::sha256(b"4"),
            snap("2021-01-04T00:00:00Z", "h", &["/d"], &[]),
        ),
    ];
    let names = |p: &Policy| -> Vec<String> {
        apply_policy(s.clone(), p, t("2100-01-01T00:00:00Z"), &utc)
            .0
            .iter()
            .map(|k| k.snapshot.time.format("%d").to_string())
            .collect()
    };
    let p = Policy {
        tags: vec![vec!["a".into(), "b".into()]],
        ..Default::default()
    };
    assert_eq!(names(&p), ["02"]);
    let p = Policy {
        tags: vec![vec!["a".into()], vec!["b".into()]],
        ..Default::default()
    };
    assert_eq!(names(&p), ["03", "02", "01"]);
    let p = Policy {
        tags: vec![vec!["b".into()]],
        last: 1,
        daily: 1,
        ..Default::default()
    };
    let (keep, remove) = apply_policy(s.clone(), &p, t("2100-01-01T00:00:00Z"), &utc);
    assert_eq!(keep[0].reasons, ["last snapshot", "daily snapshot"]);
    assert_eq!(keep[0].counters, Counters::default());
    assert_eq!(keep[1].reasons, ["has tags [b]"]);
    assert_eq!(keep[2].reasons, ["has tags [b]"]);
    assert_eq!(remove.len(), 1);
}

#[test]
fn counters_count_down() {
    let p = Policy {
        last: 2,
        daily: UNLIMITED,
        ..Default::default()
    };
    let (keep, _) = apply_policy(list(DAYS), &p, t("2100-01-01T00:00:00Z"), &utc);
    assert_eq!(
        (keep[0].counters.last, keep[0].counters.daily),
        (1, UNLIMITED)
    );
    assert_eq!(
        (keep[1].counters.last, keep[1].counters.daily),
        (0, UNLIMITED)
    );
}

#[test]
fn groups() {
    let s = vec![
        (
            Id::sha256(b"1"),
            snap("2021-01-01T00:00:00Z", "h1", &["/a", "/b"], &["x"]),
        ),
        (
            Id::sha256(b"2"),
            snap("2021-01-02T00:00:00Z", "h1", &["/b", "/a"], &[]),
        ),
        (
            Id::sha256(b"3"),
            snap("2021-01-03T00:00:00Z", "h2", &["/a", "/b"], &[]),
        ),
        (
            Id::sha256(b"4"),
            snap("2021-01-04T00:00:00Z", "h1", &["/c"], &["x"]),
        ),
    ];
    let p = Policy {
        last: 1,
        ..Default::default()
    };
    let now = t("2100-01-01T00:00:00Z");
    let g = forget(s.clone(), &p, GroupBy::default(), now, &utc);
    let summary: Vec<(String, usize, usize)> = g
        .iter()
        .map(|g| (g.key.to_string(), g.keep.len(), g.remove.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("host [h1], paths [/a, /b]".to_string(), 1, 1),
            ("host [h1], paths [/c]".to_string(), 1, 0),
            ("host [h2], paths [/a, /b]".to_string(), 1, 0)
        ]
    );
    let g = forget(s.clone(), &p, GroupBy::parse("").unwrap(), now, &utc);
    assert_eq!(
        (g.len(), g[0].keep.len(), g[0].key.to_string()),
        (1, 1, "all snapshots".to_string())
    );
    let g = forget(s.clone(), &p, GroupBy::parse("tags").unwrap(), now, &utc);
    assert_eq!(
        g.iter()
            .map(|g| g.key.tags.clone().unwrap())
            .collect::<Vec<_>>(),
        [vec![], vec!["x".to_string()]]
    );
    assert_eq!(
        GroupBy::parse("host,paths,tags").unwrap(),
        GroupBy {
            host: true,
            paths: true,
            tags: true
        }
    );
    assert!(GroupBy::parse("hosts,colour").is_err());
}

#[test]
fn durations_and_counts() {
    assert_eq!(
        d("1y2m3d4h"),
        CalendarDuration {
            years: 1,
            months: 2,
            days: 3,
            hours: 4
        }
    );
    assert_eq!(d("4h1y").to_string(), "1y4h");
    assert_eq!(d(" 7d ").days, 7);
    assert!(d("0h").is_zero());
    for bad in ["", "1x", "5", "-1d", "h", "1d-2h", "1.5d", "99999999999d"] {
        let e = CalendarDuration::parse(bad).unwrap_err();
        assert!(
            e.message.contains("invalid duration"),
            "{bad}: {}",
            e.message
        );
    }
    assert_eq!(parse_count("unlimited").unwrap(), UNLIMITED);
    assert_eq!(parse_count("7").unwrap(), 7);
    assert!(parse_count("-1").unwrap_err().message.contains("negative"));
    assert!(parse_count("seven").is_err());
    let p = Policy {
        daily: 7,
        monthly: UNLIMITED,
        within: d("2d"),
        within_weekly: d("1m"),
        tags: vec![vec!["a".into()]],
        ..Default::default()
    };
    assert_eq!(
        p.to_string(),
        "keep 7 daily, all monthly snapshots, weekly snapshots within 1m, all snapshots with tags [a], all snapshots within 2d of the newest"
    );
    assert!(Policy::default().is_empty());
}
