//! `forget`'s policy: which versions of a backup to keep, with restic's meaning (restic's
//! `internal/data/snapshot_policy.go`, `ApplyPolicy`; the documentation's "Removing snapshots according to a
//! policy").
//!
//! Versions are taken newest first. Each rule is a bucket with a count and the period key of the last version it
//! kept: `last` keys each version by its position (so it keeps the `N` newest), `hourly` by the hour
//! (`YYYYMMDDHH`), `daily` by the day, `weekly` by the ISO 8601 week (`year * 100 + week`), `monthly` by
//! `YYYYMM`, `yearly` by `YYYY`. A version is kept by a rule when its key differs from the last one that rule kept
//! (it is the newest of its period) and the rule's count is not used up; the oldest version is also kept by every
//! rule that has a count left (so the history reaches back as far as the counts allow). A version is kept if any
//! rule keeps it; every other version is removed. Periods are counted in UTC (restic uses the snapshot's own time
//! zone; a version records only Unix seconds).

use std::collections::BTreeMap;

/// How many versions each rule keeps; `None`: the rule is not used. Counts are versions, not periods: `daily: 7`
/// keeps the newest version of each of the last 7 days that have one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    /// The `N` newest versions.
    pub last: Option<u32>,
    /// The newest version of each of the last `N` hours that have one.
    pub hourly: Option<u32>,
    /// ... days.
    pub daily: Option<u32>,
    /// ... ISO weeks.
    pub weekly: Option<u32>,
    /// ... months.
    pub monthly: Option<u32>,
    /// ... years.
    pub yearly: Option<u32>,
}

impl KeepPolicy {
    /// Whether no rule keeps anything: none given, or all 0 (restic's meaning; forget refuses that: it would remove
    /// everything).
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, n)| n.unwrap_or(0) == 0)
    }

    fn rules(&self) -> [(Rule, Option<u32>); 6] {
        [
            (Rule::Last, self.last),
            (Rule::Hourly, self.hourly),
            (Rule::Daily, self.daily),
            (Rule::Weekly, self.weekly),
            (Rule::Monthly, self.monthly),
            (Rule::Yearly, self.yearly),
        ]
    }
}

/// A rule of [`KeepPolicy`], named as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// `--keep-last`.
    Last,
    /// `--keep-hourly`.
    Hourly,
    /// `--keep-daily`.
    Daily,
    /// `--keep-weekly`.
    Weekly,
    /// `--keep-monthly`.
    Monthly,
    /// `--keep-yearly`.
    Yearly,
}

impl Rule {
    /// The rule's name (`last`, `hourly`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Last => "last",
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// The period key of a version made at `unix` seconds that is `nr`-th newest.
    fn key(self, unix: u64, nr: usize) -> i64 {
        let days = (unix / 86_400) as i64;
        let (y, m, d) = civil_from_days(days);
        match self {
            Self::Last => nr as i64,
            Self::Hourly => ((y * 100 + m) * 100 + d) * 100 + ((unix % 86_400) / 3600) as i64,
            Self::Daily => (y * 100 + m) * 100 + d,
            Self::Weekly => {
                let (iso_year, week) = iso_week(days);
                iso_year * 100 + week
            }
            Self::Monthly => y * 100 + m,
            Self::Yearly => y,
        }
    }
}

/// What the policy does to one backup's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The versions kept, newest first, with the rules that keep each.
    pub keep: Vec<(u32, Vec<Rule>)>,
    /// The versions removed, newest first.
    pub remove: Vec<u32>,
}

/// Applies `policy` to `versions` (number, Unix seconds when made), in any order. Versions made at the same second
/// are ordered by number (the higher is newer).
pub fn apply(policy: &KeepPolicy, versions: &[(u32, u64)]) -> Decision {
    let mut list: Vec<(u32, u64)> = versions.to_vec();
    list.sort_by_key(|v| std::cmp::Reverse((v.1, v.0)));
    let mut buckets: Vec<(Rule, u32, Option<i64>)> =
        policy.rules().iter().filter_map(|(r, n)| n.map(|n| (*r, n, None))).collect();
    let mut decision = Decision::default();
    let oldest = list.len().saturating_sub(1);
    for (nr, (number, unix)) in list.iter().enumerate() {
        let mut reasons = Vec::new();
        for (rule, count, last) in buckets.iter_mut() {
            if *count == 0 {
                continue;
            }
            let key = rule.key(*unix, nr);
            if *last != Some(key) || nr == oldest {
                *last = Some(key);
                *count -= 1;
                reasons.push(*rule);
            }
        }
        if reasons.is_empty() {
            decision.remove.push(*number);
        } else {
            decision.keep.push((*number, reasons));
        }
    }
    decision
}

/// Year, month (1-12), day (1-31) of the day `days` after 1970-01-01 (proleptic Gregorian; Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days from 1970-01-01 to year `y`, month `m`, day `d` (Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The ISO 8601 week-numbering year and week (1-53) of the day `days` after 1970-01-01: weeks start on Monday and
/// week 1 holds the year's first Thursday.
pub fn iso_week(days: i64) -> (i64, i64) {
    // 1970-01-01 was a Thursday: Monday = 0
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year, week)
}

/// The versions each rule keeps, by rule (for `forget --dry-run`'s report).
pub fn by_rule(decision: &Decision) -> BTreeMap<Rule, Vec<u32>> {
    let mut out: BTreeMap<Rule, Vec<u32>> = BTreeMap::new();
    for (number, rules) in &decision.keep {
        for r in rules {
            out.entry(*r).or_default().push(*number);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    fn at(y: i64, m: i64, d: i64, h: u64) -> u64 {
        days_from_civil(y, m, d) as u64 * DAY + h * HOUR
    }

    #[test]
    fn calendar_round_trips_and_iso_weeks() {
        for days in -800_000..800_000i64 {
            if days % 97 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        // ISO weeks at year ends (from the ISO 8601 tables)
        assert_eq!(iso_week(days_from_civil(2026, 12, 7)), (2026, 50));
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), (2020, 53));
        assert_eq!(iso_week(days_from_civil(2021, 1, 4)), (2021, 1));
        assert_eq!(iso_week(days_from_civil(2024, 12, 30)), (2025, 1));
        assert_eq!(iso_week(days_from_civil(2027, 1, 1)), (2026, 53));
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let versions: Vec<(u32, u64)> = (1..=5).map(|n| (n, n as u64 * HOUR)).collect();
        let d = apply(&KeepPolicy { last: Some(2), ..Default::default() }, &versions);
        assert_eq!(d.keep.iter().map(|k| k.0).collect::<Vec<_>>(), vec![5, 4]);
        assert_eq!(d.remove, vec![3, 2, 1]);
        assert!(KeepPolicy::default().is_empty());
        assert!(KeepPolicy { last: Some(0), daily: Some(0), ..Default::default() }.is_empty(), "zeros keep nothing");
        assert!(!KeepPolicy { last: Some(0), daily: Some(1), ..Default::default() }.is_empty());
        let all = apply(&KeepPolicy { last: Some(10), ..Default::default() }, &versions);
        assert!(all.remove.is_empty(), "more count than versions keeps all");
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_and_the_oldest_while_counts_last() {
        // three a day for 5 days
        let mut versions = Vec::new();
        let mut n = 0;
        for day in 1..=5 {
            for h in [1, 9, 17] {
                n += 1;
                versions.push((n, at(2026, 3, day, h)));
            }
        }
        let d = apply(&KeepPolicy { daily: Some(3), ..Default::default() }, &versions);
        // newest of days 5, 4, 3
        assert_eq!(d.keep.iter().map(|k| k.0).collect::<Vec<_>>(), vec![15, 12, 9]);
        let d = apply(&KeepPolicy { daily: Some(10), ..Default::default() }, &versions);
        // newest of each of the 5 days, plus the oldest version (counts are left)
        assert_eq!(d.keep.iter().map(|k| k.0).collect::<Vec<_>>(), vec![15, 12, 9, 6, 3, 1]);
    }

    #[test]
    fn rules_combine_as_a_union_with_their_reasons() {
        // one version a day through 2026 (365)
        let versions: Vec<(u32, u64)> =
            (0..365).map(|i| (i as u32 + 1, days_from_civil(2026, 1, 1) as u64 * DAY + i * DAY + 12 * HOUR)).collect();
        let p = KeepPolicy { last: Some(2), daily: Some(7), weekly: Some(4), monthly: Some(12), ..Default::default() };
        let d = apply(&p, &versions);
        let rules = by_rule(&d);
        assert_eq!(rules[&Rule::Last], vec![365, 364]);
        assert_eq!(rules[&Rule::Daily], (359..=365).rev().collect::<Vec<u32>>());
        // the newest of each ISO week: Sundays (2026-12-31 is a Thursday, so its week's newest is the 31st)
        assert_eq!(rules[&Rule::Weekly][0], 365);
        let sunday = days_from_civil(2026, 12, 27) - days_from_civil(2026, 1, 1) + 1;
        assert_eq!(rules[&Rule::Weekly][1], sunday as u32);
        assert_eq!(rules[&Rule::Monthly].len(), 12);
        assert_eq!(rules[&Rule::Monthly][11], 31, "January's newest: the 31st");
        let kept: Vec<u32> = d.keep.iter().map(|k| k.0).collect();
        assert_eq!(kept.len() + d.remove.len(), 365);
        assert!(kept.windows(2).all(|w| w[0] > w[1]), "newest first");
        // version 365 is kept by last, daily, weekly and monthly at once
        assert_eq!(d.keep[0], (365, vec![Rule::Last, Rule::Daily, Rule::Weekly, Rule::Monthly]));
    }

    #[test]
    fn yearly_and_hourly_and_order_of_input_do_not_matter() {
        let mut versions = vec![(3, at(2025, 6, 1, 0)), (1, at(2023, 1, 1, 0)), (2, at(2024, 12, 31, 23))];
        versions.push((4, at(2025, 6, 1, 0) + 10));
        let d = apply(&KeepPolicy { yearly: Some(5), ..Default::default() }, &versions);
        assert_eq!(d.keep.iter().map(|k| k.0).collect::<Vec<_>>(), vec![4, 2, 1]);
        let d = apply(&KeepPolicy { hourly: Some(1), ..Default::default() }, &versions);
        assert_eq!(d.keep.iter().map(|k| k.0).collect::<Vec<_>>(), vec![4]);
        assert_eq!(d.remove, vec![3, 2, 1]);
    }
}
