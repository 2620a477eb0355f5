//! `bitdust schedule add PATH --every 1h [--exclude ...] [--keep-daily 7 ...]`, `schedule list`, `schedule remove
//! ID`: backup sets the daemon runs.

use anyhow::{bail, Context, Result};
use bitdust::client::Client;
use bitdust_api::{BackupSet, BackupSets, KeepRules, ScheduleRequest};
use bitdust_node::Home;

use super::print;

/// An interval: a number and a unit (`s`, `m`, `h`, `d`, `w`; none: seconds), as `90s`, `30m`, `1h`, `7d`.
///
/// # Errors
/// If it is not one.
pub fn parse_every(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("{text:?} is not an interval like 30m, 1h or 1d"))?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => bail!("unknown unit {other:?} in {text:?}: use s, m, h, d or w"),
    };
    n.checked_mul(scale).with_context(|| format!("{text:?} is too long"))
}

fn every(secs: u64) -> String {
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// One line about a set: id, interval, path, next run, last result.
pub fn line(s: &BackupSet) -> String {
    let now = bitdust_node::home::unix_now();
    let next = if s.running {
        "running now".to_string()
    } else if s.next_run_unix <= now {
        "due now".to_string()
    } else {
        format!("next in {} s", s.next_run_unix - now)
    };
    let last = match (&s.last_result, s.last_failed) {
        (None, _) => "never run".to_string(),
        (Some(r), false) => format!("last: {r}"),
        (Some(r), true) => format!("last FAILED: {r}"),
    };
    format!("{:>3}  every {:<5} {}  ({next}; {last})", s.id, every(s.request.every_secs), s.request.path)
}

/// `schedule add`.
///
/// # Errors
/// A bad interval or path, or the daemon refuses.
#[allow(clippy::too_many_arguments)]
pub fn add(
    home: &Home,
    path: &std::path::Path,
    every_text: &str,
    exclude: Vec<String>,
    caches: bool,
    one_fs: bool,
    keep: KeepRules,
    json: bool,
) -> Result<()> {
    let abs = std::path::absolute(path).with_context(|| format!("cannot back up {}", path.display()))?;
    let request = ScheduleRequest {
        path: abs.to_string_lossy().into_owned(),
        every_secs: parse_every(every_text)?,
        exclude,
        exclude_caches: caches,
        one_file_system: one_fs,
        keep,
    };
    let set: BackupSet = Client::for_home(home)?.post("/schedules", &request)?;
    print(json, &set, |s| format!("backup set {} added: {}", s.id, line(s).trim_start()));
    Ok(())
}

/// `schedule list`.
///
/// # Errors
/// If the daemon does not answer.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let sets: BackupSets = Client::for_home(home)?.get("/schedules")?;
    print(json, &sets, |v| {
        if v.sets.is_empty() {
            return "no backup sets (bitdust schedule add PATH --every 1h)".into();
        }
        v.sets.iter().map(line).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

/// `schedule remove ID`.
///
/// # Errors
/// An unknown set, or the daemon does not answer.
pub fn remove(home: &Home, id: u32, json: bool) -> Result<()> {
    let set: BackupSet = Client::for_home(home)?.delete(&format!("/schedules/{id}"))?;
    print(json, &set, |s| format!("backup set {} removed ({}); its versions stay", s.id, s.request.path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_and_print_back() {
        assert_eq!(parse_every("90s").unwrap(), 90);
        assert_eq!(parse_every("30m").unwrap(), 1800);
        assert_eq!(parse_every("1h").unwrap(), 3600);
        assert_eq!(parse_every("7d").unwrap(), 7 * 86_400);
        assert_eq!(parse_every("120").unwrap(), 120);
        assert!(parse_every("1y").is_err() && parse_every("h").is_err() && parse_every("").is_err());
        assert!(parse_every("99999999999999999999w").is_err());
        assert_eq!((every(3600), every(90), every(86_400 * 14)), ("1h".into(), "90s".into(), "2w".into()));
    }
}
