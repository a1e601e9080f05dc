//! Every rule against kept sets written by hand, including calendar edge
//! cases: ISO weeks across years, DST changes (Europe/Berlin rules), leap days.
//! The kept sets are one table ([`CASES`]): snapshots, a policy, the time
//! now, the time zone, and what is kept.

use super::*;
use chrono::{TimeZone, Weekday};
use Expect::{Count, Times};

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
fn kept_with(times: &[&str], p: &Policy, now: &str, zone: OffsetAt<'_>) -> Vec<String> {
    let (keep, remove) = apply_policy(list(times), p, t(now), zone);
    assert_eq!(keep.len() + remove.len(), times.len());
    keep.iter().map(|k| name_of(&k.snapshot)).collect()
}

fn norm(v: &[&str]) -> Vec<String> {
    v.iter()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_rfc3339())
        .collect()
}

fn reasons(times: &[&str], p: &Policy, zone: OffsetAt<'_>) -> Vec<(String, Vec<String>)> {
    let (keep, _) = apply_policy(list(times), p, t("2100-01-01T00:00:00Z"), zone);
    keep.into_iter()
        .map(|k| (name_of(&k.snapshot), k.reasons))
        .collect()
}

fn d(s: &str) -> CalendarDuration {
    CalendarDuration::parse(s).unwrap()
}

/// A policy from rules such as `"daily 3, within 1d"` (the rules as the
/// CLI's flags name them, without `--keep-`).
fn policy(spec: &str) -> Policy {
    let mut p = Policy::default();
    for rule in spec.split(", ") {
        let (name, value) = rule.split_once(' ').expect("rule and value");
        let count = || parse_count(value).unwrap();
        match name {
            "last" => p.last = count(),
            "hourly" => p.hourly = count(),
            "daily" => p.daily = count(),
            "weekly" => p.weekly = count(),
            "monthly" => p.monthly = count(),
            "yearly" => p.yearly = count(),
            "within" => p.within = d(value),
            "within-hourly" => p.within_hourly = d(value),
            "within-daily" => p.within_daily = d(value),
            "within-weekly" => p.within_weekly = d(value),
            "within-monthly" => p.within_monthly = d(value),
            "within-yearly" => p.within_yearly = d(value),
            _ => panic!("unknown rule {name:?}"),
        }
    }
    p
}

const NOW: &str = "2100-01-01T00:00:00Z";

/// What a case keeps: these snapshots (newest first), or this many.
#[derive(Clone, Copy)]
enum Expect {
    Times(&'static [&'static str]),
    Count(usize),
}

struct Case {
    what: &'static str,
    times: &'static [&'static str],
    policy: &'static str,
    now: &'static str,
    zone: OffsetAt<'static>,
    kept: Expect,
}

const DAYS: &[&str] = &[
    "2021-01-01T10:00:00Z",
    "2021-01-01T20:00:00Z",
    "2021-01-02T08:00:00Z",
    "2021-01-03T09:00:00Z",
    "2021-01-03T23:00:00Z",
];

/// [`DAYS`] in reverse: input order does not matter.
const DAYS_REVERSED: &[&str] = &[
    "2021-01-03T23:00:00Z",
    "2021-01-03T09:00:00Z",
    "2021-01-02T08:00:00Z",
    "2021-01-01T20:00:00Z",
    "2021-01-01T10:00:00Z",
];

const HOURS: &[&str] = &[
    "2021-05-01T10:05:00Z",
    "2021-05-01T10:55:00Z",
    "2021-05-01T11:00:00Z",
    "2021-05-01T11:59:59Z",
    "2021-05-01T13:30:00Z",
];

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

/// 23:30 UTC is the next day in Berlin.
const ZONE_DAYS: &[&str] = &[
    "2021-01-05T23:30:00Z",
    "2021-01-06T10:00:00Z",
    "2021-01-04T12:00:00Z",
];

/// [`ZONE_DAYS`]' instants written with other offsets.
const ZONE_DAYS_SHIFTED: &[&str] = &[
    "2021-01-06T08:30:00+09:00",
    "2021-01-06T05:00:00-05:00",
    "2021-01-04T12:00:00+00:00",
];

/// 2021-03-28 02:00 CET became 03:00 CEST (01:00 UTC).
const SPRING: &[&str] = &[
    "2021-03-27T22:30:00Z", // 27th 23:30 CET
    "2021-03-27T23:30:00Z", // 28th 00:30 CET
    "2021-03-28T21:30:00Z", // 28th 23:30 CEST
    "2021-03-28T22:30:00Z", // 29th 00:30 CEST
];

const AROUND_SPRING: &[&str] = &[
    "2021-03-27T12:30:00Z",
    "2021-03-27T13:30:00Z",
    "2021-03-28T12:00:00Z",
];

/// 2021-10-31 03:00 CEST became 02:00 CET (01:00 UTC): 02:xx happened twice.
const FALL: &[&str] = &[
    "2021-10-30T23:50:00Z", // 01:50 CEST
    "2021-10-31T00:15:00Z", // 02:15 CEST
    "2021-10-31T01:45:00Z", // 02:45 CET
    "2021-10-31T02:10:00Z", // 03:10 CET
];

const LEAP: &[&str] = &[
    "2024-02-28T12:00:00Z",
    "2024-02-29T12:00:00Z",
    "2024-03-01T12:00:00Z",
];

/// A year back from a leap day: 2023-02-29 does not exist and becomes 2023-03-01 (Go's AddDate).
const YEAR_BACK_FROM_LEAP_DAY: &[&str] = &[
    "2023-02-28T23:00:00Z",
    "2023-03-01T11:00:00Z",
    "2023-03-01T13:00:00Z",
    "2024-02-29T12:00:00Z",
];

/// A year back from 2025-02-28 is 2024-02-28: the leap day is inside.
const YEAR_BACK_OVER_LEAP_DAY: &[&str] = &[
    "2024-02-28T11:00:00Z",
    "2024-02-29T00:00:00Z",
    "2025-02-28T12:00:00Z",
];

/// A month back from 31 March 2024 is "31 February" = 2 March.
const MONTH_BACK_FROM_31ST: &[&str] = &[
    "2024-03-01T12:00:00Z",
    "2024-03-02T11:00:00Z",
    "2024-03-02T13:00:00Z",
    "2024-03-31T12:00:00Z",
];

const WITHIN: &[&str] = &[
    "2021-01-05T00:00:00Z",
    "2021-01-08T00:00:00Z",
    "2021-01-09T00:00:00Z",
    "2021-01-20T00:00:00Z",
];

const JUNE: &[&str] = &[
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

/// A case at [`NOW`] in UTC, unless `at` or `in_berlin` say otherwise.
impl Case {
    const fn new(
        what: &'static str,
        times: &'static [&'static str],
        policy: &'static str,
        kept: Expect,
    ) -> Case {
        Case {
            what,
            times,
            policy,
            now: NOW,
            zone: &utc,
            kept,
        }
    }

    const fn at(mut self, now: &'static str) -> Case {
        self.now = now;
        self
    }

    const fn in_berlin(mut self) -> Case {
        self.zone = &berlin;
        self
    }
}

const CASES: &[Case] = &[
    Case::new(
        "last 3",
        DAYS,
        "last 3",
        Times(&[
            "2021-01-03T23:00:00Z",
            "2021-01-03T09:00:00Z",
            "2021-01-02T08:00:00Z",
        ]),
    ),
    Case::new("last more than there are", DAYS, "last 10", Count(5)),
    Case::new("last unlimited", DAYS, "last unlimited", Count(5)),
    Case::new(
        "input order does not matter",
        DAYS_REVERSED,
        "last 1",
        Times(&["2021-01-03T23:00:00Z"]),
    ),
    Case::new(
        "daily 2",
        DAYS,
        "daily 2",
        Times(&["2021-01-03T23:00:00Z", "2021-01-02T08:00:00Z"]),
    ),
    Case::new(
        "daily 3",
        DAYS,
        "daily 3",
        Times(&[
            "2021-01-03T23:00:00Z",
            "2021-01-02T08:00:00Z",
            "2021-01-01T20:00:00Z",
        ]),
    ),
    Case::new(
        "hourly 2",
        HOURS,
        "hourly 2",
        Times(&["2021-05-01T13:30:00Z", "2021-05-01T11:59:59Z"]),
    ),
    Case::new(
        "hourly 3",
        HOURS,
        "hourly 3",
        Times(&[
            "2021-05-01T13:30:00Z",
            "2021-05-01T11:59:59Z",
            "2021-05-01T10:55:00Z",
        ]),
    ),
    Case::new(
        "weekly 3: ISO weeks across the year boundary",
        NEW_YEAR,
        "weekly 3",
        Times(&[
            "2021-01-11T12:00:00Z",
            "2021-01-10T12:00:00Z",
            "2021-01-03T12:00:00Z",
        ]),
    ),
    Case::new(
        "weekly 4: ISO weeks across the year boundary",
        NEW_YEAR,
        "weekly 4",
        Times(&[
            "2021-01-11T12:00:00Z",
            "2021-01-10T12:00:00Z",
            "2021-01-03T12:00:00Z",
            "2020-12-27T12:00:00Z",
        ]),
    ),
    Case::new(
        "yearly 2: the calendar year",
        NEW_YEAR,
        "yearly 2",
        Times(&["2021-01-11T12:00:00Z", "2020-12-31T12:00:00Z"]),
    ),
    Case::new(
        "monthly 1",
        NEW_YEAR,
        "monthly 1",
        Times(&["2021-01-11T12:00:00Z"]),
    ),
    Case::new(
        "monthly unlimited: one per month, and the oldest",
        NEW_YEAR,
        "monthly unlimited",
        Times(&[
            "2021-01-11T12:00:00Z",
            "2020-12-31T12:00:00Z",
            "2020-12-27T12:00:00Z",
        ]),
    ),
    Case::new(
        "daily buckets in UTC",
        ZONE_DAYS,
        "daily 2",
        Times(&["2021-01-06T10:00:00Z", "2021-01-05T23:30:00Z"]),
    ),
    Case::new(
        "daily buckets in Berlin",
        ZONE_DAYS,
        "daily 2",
        Times(&["2021-01-06T10:00:00Z", "2021-01-04T12:00:00Z"]),
    )
    .in_berlin(),
    Case::new(
        "the stored offset does not matter",
        ZONE_DAYS_SHIFTED,
        "daily 2",
        Times(&["2021-01-06T05:00:00-05:00", "2021-01-04T12:00:00+00:00"]),
    )
    .in_berlin(),
    Case::new(
        "spring forward in Berlin",
        SPRING,
        "daily 3",
        Times(&[
            "2021-03-28T22:30:00Z",
            "2021-03-28T21:30:00Z",
            "2021-03-27T22:30:00Z",
        ]),
    )
    .in_berlin(),
    Case::new(
        "spring forward in UTC: other days, the oldest kept with count left",
        SPRING,
        "daily 3",
        Times(&[
            "2021-03-28T22:30:00Z",
            "2021-03-27T23:30:00Z",
            "2021-03-27T22:30:00Z",
        ]),
    ),
    Case::new(
        "within 1d is a calendar day (23 hours here)",
        AROUND_SPRING,
        "within 1d",
        Times(&["2021-03-28T12:00:00Z", "2021-03-27T13:30:00Z"]),
    )
    .in_berlin(),
    Case::new(
        "within 24h is elapsed time",
        AROUND_SPRING,
        "within 24h",
        Count(3),
    )
    .in_berlin(),
    Case::new(
        "fall back in Berlin: 02:xx twice",
        FALL,
        "hourly 3",
        Times(&[
            "2021-10-31T02:10:00Z",
            "2021-10-31T01:45:00Z",
            "2021-10-30T23:50:00Z",
        ]),
    )
    .in_berlin(),
    Case::new(
        "fall back in UTC",
        FALL,
        "hourly 3",
        Times(&[
            "2021-10-31T02:10:00Z",
            "2021-10-31T01:45:00Z",
            "2021-10-31T00:15:00Z",
        ]),
    ),
    Case::new(
        "the 25-hour day is one daily bucket",
        &[
            "2021-10-31T00:15:00Z",
            "2021-10-31T01:45:00Z",
            "2021-10-31T02:10:00Z",
        ],
        "daily 1",
        Times(&["2021-10-31T02:10:00Z"]),
    )
    .in_berlin(),
    Case::new("leap day: daily", LEAP, "daily 3", Count(3)),
    Case::new(
        "leap day: monthly",
        LEAP,
        "monthly 2",
        Times(&["2024-03-01T12:00:00Z", "2024-02-29T12:00:00Z"]),
    ),
    Case::new(
        "a year back from a leap day",
        YEAR_BACK_FROM_LEAP_DAY,
        "within 1y",
        Times(&["2024-02-29T12:00:00Z", "2023-03-01T13:00:00Z"]),
    ),
    Case::new(
        "a year back over a leap day",
        YEAR_BACK_OVER_LEAP_DAY,
        "within 1y",
        Times(&["2025-02-28T12:00:00Z", "2024-02-29T00:00:00Z"]),
    ),
    Case::new(
        "a month back from the 31st",
        MONTH_BACK_FROM_31ST,
        "within 1m",
        Times(&["2024-03-31T12:00:00Z", "2024-03-02T13:00:00Z"]),
    ),
    Case::new(
        "within: relative to the newest past snapshot (01-20 is in the future)",
        WITHIN,
        "within 2d",
        Times(&[
            "2021-01-20T00:00:00Z",
            "2021-01-09T00:00:00Z",
            "2021-01-08T00:00:00Z",
        ]),
    )
    .at("2021-01-10T00:00:00Z"),
    Case::new(
        "within: strictly after the cut",
        WITHIN,
        "within 4d",
        Count(3),
    )
    .at("2021-01-10T00:00:00Z"),
    Case::new(
        "within: combined parts (1d12h before 01-09 is 01-07 12:00)",
        WITHIN,
        "within 1d12h",
        Count(3),
    )
    .at("2021-01-10T00:00:00Z"),
    Case::new(
        "within: all in the future, all within",
        WITHIN,
        "within 1d12h",
        Count(4),
    )
    .at("2020-01-01T00:00:00Z"),
    Case::new(
        "within-daily 3d: newest per day after the cut (06-02 20:00)",
        JUNE,
        "within-daily 3d",
        Times(&[
            "2021-06-05T20:00:00Z",
            "2021-06-04T20:00:00Z",
            "2021-06-03T20:00:00Z",
            "2021-06-02T21:00:00Z",
        ]),
    ),
    Case::new(
        "within-weekly 7d: one ISO week (2021-W22): the newest, and the oldest",
        JUNE,
        "within-weekly 7d",
        Times(&["2021-06-05T20:00:00Z", "2021-06-01T08:00:00Z"]),
    ),
    Case::new(
        "within-hourly 1d (after 06-04 20:00), monthly and yearly: the newest and the oldest",
        JUNE,
        "within-hourly 1d, within-monthly 1y, within-yearly 1y",
        Times(&[
            "2021-06-05T20:00:00Z",
            "2021-06-05T08:00:00Z",
            "2021-06-01T08:00:00Z",
        ]),
    ),
];

#[test]
fn kept_snapshots_by_policy() {
    for c in CASES {
        let got = kept_with(c.times, &policy(c.policy), c.now, c.zone);
        match c.kept {
            Times(want) => assert_eq!(got, norm(want), "{}", c.what),
            Count(n) => assert_eq!(got.len(), n, "{}: {got:?}", c.what),
        }
    }
}

#[test]
fn the_oldest_snapshot_is_kept_with_count_left() {
    // To reach back as far as possible.
    assert_eq!(
        reasons(DAYS, &policy("daily 5"), &utc),
        [
            ("2021-01-03T23:00:00Z", "daily snapshot"),
            ("2021-01-02T08:00:00Z", "daily snapshot"),
            ("2021-01-01T20:00:00Z", "daily snapshot"),
            ("2021-01-01T10:00:00Z", "oldest daily snapshot"),
        ]
        .map(|(t, why)| (norm(&[t])[0].clone(), vec![why.to_string()]))
    );
    // Everything within: the newest per day, and the oldest.
    let r = reasons(JUNE, &policy("within-daily 10d"), &utc);
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[5],
        (
            norm(&["2021-06-01T08:00:00Z"])[0].clone(),
            vec!["oldest daily within 10d".to_string()]
        )
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
