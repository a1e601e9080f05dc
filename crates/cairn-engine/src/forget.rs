//! Which snapshots a retention policy keeps (`cairn forget`), with restic's
//! semantics. Pure: no I/O, no clock, no global time zone.
//!
//! - Snapshots are first split into groups ([`GroupBy`]: host, paths, tags;
//!   default host and paths). The policy applies to each group on its own.
//! - Within a group, snapshots are ordered newest first and every rule looks
//!   at each of them in turn; a snapshot is kept if any rule keeps it, and
//!   its reasons name every rule that did.
//! - `last N`: the N newest snapshots. `hourly/daily/weekly/monthly/yearly N`:
//!   the newest snapshot of each of the N newest calendar buckets that hold
//!   a snapshot. Buckets are local wall-clock periods in the time zone the
//!   caller passes ([`OffsetAt`]): the hour, the day, the ISO-8601 week of
//!   its ISO week-year, the month, the year. If a counting rule still has
//!   count left when it reaches the oldest snapshot of the group, that
//!   snapshot is kept too ("oldest daily snapshot"), so the history kept
//!   reaches back as far as the policy allows (restic 0.17).
//! - `within D`: every snapshot strictly newer than *latest − D*, where
//!   *latest* is the newest snapshot of the group that is not in the future
//!   (relative to `now`) and D is a calendar duration (`1y2m3d4h`): years,
//!   months and days are subtracted on the local calendar (Go's `AddDate`,
//!   which normalises 31 March − 1 month to 3 March), hours as elapsed time.
//! - `within-hourly/daily/… D`: the newest snapshot of each bucket among the
//!   snapshots newer than *latest − D*.
//! - `tag T`: every snapshot having all tags of a tag list (`a,b`). Not counted.
//! - A count of [`UNLIMITED`] keeps one snapshot per bucket without limit.
//!
//! An empty policy keeps everything (the caller decides not to forget).

use crate::{Error, Result};
use cairn_repository::format::snapshot::Snapshot;
use cairn_repository::format::Id;
use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveDateTime,
    Timelike, Utc,
};
use std::fmt;

/// A count that never runs out (`--keep-daily unlimited`).
pub const UNLIMITED: u32 = u32::MAX;

/// The UTC offset of the time zone used for calendar buckets at an instant.
/// The CLI passes the local zone ([`local_offset`]); tests pass fixed rules.
pub type OffsetAt<'a> = &'a dyn Fn(DateTime<Utc>) -> FixedOffset;

/// The local time zone's offset at `t` (the CLI's [`OffsetAt`]).
pub fn local_offset(t: DateTime<Utc>) -> FixedOffset {
    *t.with_timezone(&chrono::Local).offset()
}

/// A calendar duration as restic writes it: `1y2m3d4h` (any subset, in any
/// order; `m` is months).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarDuration {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl CalendarDuration {
    pub fn is_zero(&self) -> bool {
        *self == CalendarDuration::default()
    }

    /// Parse `1y2m3d4h`. Every number needs a unit; negative numbers and
    /// unknown units are errors.
    pub fn parse(s: &str) -> Result<CalendarDuration> {
        let bad = |why: String| {
            Error::invalid(format!("invalid duration {s:?}: {why} (expected e.g. 1y2m3d4h: years, months, days, hours)"))
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(bad("it is empty".into()));
        }
        let mut d = CalendarDuration::default();
        let mut rest = t;
        while !rest.is_empty() {
            if rest.starts_with('-') {
                return Err(bad("negative durations are not allowed".into()));
            }
            let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad(format!(
                    "no number before {:?}",
                    &rest[..rest.chars().next().map_or(0, char::len_utf8)]
                )));
            }
            let n: u32 = rest[..digits]
                .parse()
                .map_err(|_| bad(format!("{} is too large", &rest[..digits])))?;
            rest = &rest[digits..];
            let Some(unit) = rest.chars().next() else {
                return Err(bad(format!("no unit after {n}")));
            };
            match unit {
                'y' => d.years = n,
                'm' => d.months = n,
                'd' => d.days = n,
                'h' => d.hours = n,
                u => return Err(bad(format!("unknown unit {u:?} after {n}"))),
            }
            rest = &rest[unit.len_utf8()..];
        }
        Ok(d)
    }

    /// `t` minus this duration: years, months and days on the local
    /// calendar (normalised as Go's `AddDate`), then hours as elapsed time.
    pub fn before(&self, t: DateTime<Utc>, offset_at: OffsetAt<'_>) -> DateTime<Utc> {
        let local = t.with_timezone(&offset_at(t)).naive_local();
        let months = local.year() as i64 * 12 + local.month0() as i64
            - self.years as i64 * 12
            - self.months as i64;
        let (y, m0) = (months.div_euclid(12) as i32, months.rem_euclid(12) as u32);
        // Day overflow (31 Feb) and underflow roll into the next or previous months, as Go does.
        let day_offset = local.day() as i64 - 1 - self.days as i64;
        let date = NaiveDate::from_ymd_opt(y, m0 + 1, 1)
            .and_then(|first| first.checked_add_signed(ChronoDuration::days(day_offset)))
            .unwrap_or(NaiveDate::MIN);
        let wall = NaiveDateTime::new(date, local.time());
        from_local(wall, offset_at) - ChronoDuration::hours(self.hours as i64)
    }
}

/// The instant a local wall-clock time stands for (for a time in a DST
/// gap or overlap, one of the candidates).
fn from_local(wall: NaiveDateTime, offset_at: OffsetAt<'_>) -> DateTime<Utc> {
    let guess = wall.and_utc();
    let first = guess - ChronoDuration::seconds(offset_at(guess).local_minus_utc() as i64);
    guess - ChronoDuration::seconds(offset_at(first).local_minus_utc() as i64)
}

impl fmt::Display for CalendarDuration {
    /// As restic prints it: the non-zero parts, `1y2m3d4h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

/// Parse a keep count: a number ≥ 0, or `unlimited`.
pub fn parse_count(s: &str) -> Result<u32> {
    match s.trim() {
        "unlimited" => Ok(UNLIMITED),
        t if t.starts_with('-') => Err(Error::invalid(format!(
            "invalid count {s:?}: negative values are not allowed, use 'unlimited' instead"
        ))),
        t => t
            .parse::<u32>()
            .ok()
            .filter(|&n| n != UNLIMITED)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "invalid count {s:?}: expected a number or 'unlimited'"
                ))
            }),
    }
}

/// What to keep. All rules combine: a snapshot is kept if any rule keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: CalendarDuration,
    pub within_hourly: CalendarDuration,
    pub within_daily: CalendarDuration,
    pub within_weekly: CalendarDuration,
    pub within_monthly: CalendarDuration,
    pub within_yearly: CalendarDuration,
    /// Keep snapshots having every tag of any one of these lists.
    pub tags: Vec<Vec<String>>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

impl fmt::Display for Policy {
    /// A one-line description, as restic's "Applying Policy: …".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        let counts = [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ];
        let c: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n != 0)
            .map(|(n, what)| {
                if *n == UNLIMITED {
                    format!("all {what}")
                } else {
                    format!("{n} {what}")
                }
            })
            .collect();
        if !c.is_empty() {
            parts.push(format!("{} snapshots", c.join(", ")));
        }
        let within = [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ];
        for (d, what) in within {
            if !d.is_zero() {
                parts.push(format!("{what} snapshots within {d}"));
            }
        }
        for t in &self.tags {
            parts.push(format!("all snapshots with tags [{}]", t.join(",")));
        }
        if !self.within.is_zero() {
            parts.push(format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        write!(f, "keep {}", parts.join(", "))
    }
}

/// How snapshots are grouped before the policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// `host,paths,tags` in any combination (`path`, `tag` too); `""`: one group.
    pub fn parse(s: &str) -> Result<GroupBy> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => {
                    return Err(Error::invalid(format!(
                    "invalid --group-by {s:?}: unknown option {other:?} (use host, paths, tags)"
                )))
                }
            }
        }
        Ok(g)
    }
}

/// What a group has in common; `None` for what it is not grouped by.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub host: Option<String>,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

impl GroupKey {
    pub fn of(s: &Snapshot, by: GroupBy) -> GroupKey {
        let sorted = |v: &Vec<String>| {
            let mut v = v.clone();
            v.sort();
            v
        };
        GroupKey {
            host: by.host.then(|| s.hostname.clone()),
            paths: by.paths.then(|| sorted(&s.paths)),
            tags: by.tags.then(|| sorted(&s.tags)),
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        if let Some(h) = &self.host {
            parts.push(format!("host [{h}]"));
        }
        if let Some(p) = &self.paths {
            parts.push(format!("paths [{}]", p.join(", ")));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags [{}]", t.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("all snapshots")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Counters left after a kept snapshot was evaluated (restic's `counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

#[derive(Clone, Debug)]
pub struct Kept {
    pub id: Id,
    pub snapshot: Snapshot,
    /// Every rule that keeps it, e.g. `daily snapshot`, `within 7d`.
    pub reasons: Vec<String>,
    pub counters: Counters,
}

/// The outcome for one group: kept and removed snapshots, newest first.
#[derive(Clone, Debug)]
pub struct GroupResult {
    pub key: GroupKey,
    pub keep: Vec<Kept>,
    pub remove: Vec<(Id, Snapshot)>,
}

/// Group `snapshots` and apply `policy` to each group. Groups come out in
/// key order.
pub fn forget(
    snapshots: Vec<(Id, Snapshot)>,
    policy: &Policy,
    by: GroupBy,
    now: DateTime<Utc>,
    offset_at: OffsetAt<'_>,
) -> Vec<GroupResult> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<(Id, Snapshot)>> = Default::default();
    for (id, s) in snapshots {
        groups
            .entry(GroupKey::of(&s, by))
            .or_default()
            .push((id, s));
    }
    groups
        .into_iter()
        .map(|(key, list)| {
            let (keep, remove) = apply_policy(list, policy, now, offset_at);
            GroupResult { key, keep, remove }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Bucket {
    Always,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    /// The bucket of a snapshot (`nr`: its position, for `Always`).
    fn of(self, t: DateTime<Utc>, nr: usize, offset_at: OffsetAt<'_>) -> i64 {
        let l = t.with_timezone(&offset_at(t));
        let (y, m, d, h) = (
            l.year() as i64,
            l.month() as i64,
            l.day() as i64,
            l.hour() as i64,
        );
        match self {
            Bucket::Always => nr as i64,
            Bucket::Hour => ((y * 100 + m) * 100 + d) * 100 + h,
            Bucket::Day => (y * 100 + m) * 100 + d,
            Bucket::Week => {
                let w = l.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }
            Bucket::Month => y * 100 + m,
            Bucket::Year => y,
        }
    }
}

fn has_tags(s: &Snapshot, list: &[String]) -> bool {
    list.iter().all(|t| s.tags.contains(t))
}

/// Apply `policy` to one group. Returns (kept, removed), newest first.
pub fn apply_policy(
    mut list: Vec<(Id, Snapshot)>,
    policy: &Policy,
    now: DateTime<Utc>,
    offset_at: OffsetAt<'_>,
) -> (Vec<Kept>, Vec<(Id, Snapshot)>) {
    list.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(&b.0)));
    let n = list.len();
    struct Counted {
        count: u32,
        bucket: Bucket,
        last: Option<i64>,
        reason: &'static str,
    }
    let mut counted = [
        (policy.last, Bucket::Always, "last snapshot"),
        (policy.hourly, Bucket::Hour, "hourly snapshot"),
        (policy.daily, Bucket::Day, "daily snapshot"),
        (policy.weekly, Bucket::Week, "weekly snapshot"),
        (policy.monthly, Bucket::Month, "monthly snapshot"),
        (policy.yearly, Bucket::Year, "yearly snapshot"),
    ]
    .map(|(count, bucket, reason)| Counted {
        count,
        bucket,
        last: None,
        reason,
    });
    struct Within {
        within: CalendarDuration,
        bucket: Bucket,
        last: Option<i64>,
        reason: &'static str,
    }
    let mut within = [
        (policy.within_hourly, Bucket::Hour, "hourly within"),
        (policy.within_daily, Bucket::Day, "daily within"),
        (policy.within_weekly, Bucket::Week, "weekly within"),
        (policy.within_monthly, Bucket::Month, "monthly within"),
        (policy.within_yearly, Bucket::Year, "yearly within"),
    ]
    .map(|(within, bucket, reason)| Within {
        within,
        bucket,
        last: None,
        reason,
    });
    // The newest snapshot that is not in the future; `None`: all are, and
    // every snapshot counts as within any duration (as restic's zero time).
    let latest = list
        .iter()
        .map(|(_, s)| s.time.with_timezone(&Utc))
        .filter(|t| *t < now)
        .max();
    let is_within = |t: DateTime<Utc>, d: &CalendarDuration| match latest {
        Some(l) => t > d.before(l, offset_at),
        None => true,
    };

    let (mut keep, mut remove) = (vec![], vec![]);
    for (nr, (id, s)) in list.into_iter().enumerate() {
        let t = s.time.with_timezone(&Utc);
        let oldest = nr == n - 1;
        let mut reasons = vec![];
        for tl in &policy.tags {
            if has_tags(&s, tl) {
                reasons.push(format!("has tags [{}]", tl.join(",")));
            }
        }
        if !policy.within.is_zero() && is_within(t, &policy.within) {
            reasons.push(format!("within {}", policy.within));
        }
        for b in counted.iter_mut().filter(|b| b.count > 0) {
            let val = b.bucket.of(t, nr, offset_at);
            if b.last != Some(val) || oldest {
                let prefix = if b.last == Some(val) { "oldest " } else { "" };
                reasons.push(format!("{prefix}{}", b.reason));
                b.last = Some(val);
                if b.count != UNLIMITED {
                    b.count -= 1;
                }
            }
        }
        for b in within.iter_mut().filter(|b| !b.within.is_zero()) {
            if !is_within(t, &b.within) {
                continue;
            }
            let val = b.bucket.of(t, nr, offset_at);
            if b.last != Some(val) || oldest {
                let prefix = if b.last == Some(val) { "oldest " } else { "" };
                reasons.push(format!("{prefix}{} {}", b.reason, b.within));
                b.last = Some(val);
            }
        }
        if reasons.is_empty() {
            remove.push((id, s));
        } else {
            let c = |i: usize| counted[i].count;
            let counters = Counters {
                last: c(0),
                hourly: c(1),
                daily: c(2),
                weekly: c(3),
                monthly: c(4),
                yearly: c(5),
            };
            keep.push(Kept {
                id,
                snapshot: s,
                reasons,
                counters,
            });
        }
    }
    (keep, remove)
}

#[cfg(test)]
mod tests;
