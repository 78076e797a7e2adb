//! Times and durations as the history stores and shows them.
//!
//! Why milliseconds since the Unix epoch in the database: integers aggregate fast in SQL
//! (the metrics over 100,000 runs must take under 200 ms) and have no time-zone ambiguity.
//! Everything a person reads is rendered here, once: RFC 3339 UTC for machines, `4m 23s`
//! like the runbook's dashboard for people.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::HistoryError;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-26T12:46:10.123Z`.
pub fn rfc3339(ms: i64) -> String {
    datetime(ms)
        .format(&Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

/// `2026-11-26 12:46:10 UTC`, for checklists and reports.
pub fn human(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    datetime(ms)
        .format(format)
        .unwrap_or_else(|_| ms.to_string())
}

/// `2026-11-26`, the bucket of the success-rate-over-time chart.
pub fn day(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]");
    datetime(ms)
        .format(format)
        .unwrap_or_else(|_| ms.to_string())
}

/// `20261126-124610`, the timestamp part of a run id (`DEP-20261126-124610`).
pub fn id_stamp(ms: i64) -> String {
    let format = format_description!("[year][month][day]-[hour][minute][second]");
    datetime(ms)
        .format(format)
        .unwrap_or_else(|_| ms.to_string())
}

/// `2026-11-26-12-46`, the runbook's checklist file name prefix.
pub fn checklist_stamp(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]-[hour]-[minute]");
    datetime(ms)
        .format(format)
        .unwrap_or_else(|_| ms.to_string())
}

/// A duration like the runbook writes it: `850ms`, `32s`, `4m 23s`, `1h 2m 3s`.
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let seconds = ms / 1000;
    let (hours, minutes, rest) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{rest}s"),
        (0, _) => format!("{minutes}m {rest}s"),
        _ => format!("{hours}h {minutes}m {rest}s"),
    }
}

/// Reads `--since`: a date (`2026-11-01`, midnight UTC), an RFC 3339 time, or an age
/// (`7d`, `12h`, `30m`) counted back from `now_ms`.
///
/// # Errors
/// [`HistoryError::BadTime`] naming the input.
pub fn parse_since(input: &str, now_ms: i64) -> Result<i64, HistoryError> {
    let bad = || HistoryError::BadTime {
        input: input.to_owned(),
    };
    let text = input.trim();
    if let Ok(age) = parse_duration_ms(text) {
        return Ok(now_ms - age);
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad());
    }
    let date_format = format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, date_format).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Reads a duration like `90s`, `15m`, `1h30m`, `2d` (units d, h, m, s; a bare number is
/// minutes, the unit the runbook's "time to resolve" uses).
///
/// # Errors
/// [`HistoryError::BadDuration`] naming the input.
pub fn parse_duration_ms(input: &str) -> Result<i64, HistoryError> {
    let bad = || HistoryError::BadDuration {
        input: input.to_owned(),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(minutes) = text.parse::<i64>() {
        return minutes
            .checked_mul(60_000)
            .filter(|ms| *ms >= 0)
            .ok_or_else(bad);
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let unit_ms = match character {
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' => 60_000,
            's' => 1000,
            ' ' if number.is_empty() => continue,
            _ => return Err(bad()),
        };
        let value: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = value
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
    }
    if number.is_empty() {
        Ok(total)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_runbook() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(32_400), "32s");
        assert_eq!(duration(263_000), "4m 23s");
        assert_eq!(duration(3_723_000), "1h 2m 3s");
    }

    #[test]
    fn since_accepts_dates_times_and_ages() {
        let now = 1_764_000_000_000;
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("1h30m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_since("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now).unwrap(), 1000);
        assert!(matches!(
            parse_since("yesterday", now),
            Err(HistoryError::BadTime { .. })
        ));
        assert!(parse_duration_ms("5x").is_err());
        assert!(parse_duration_ms("15").is_ok_and(|ms| ms == 900_000));
    }

    #[test]
    fn stamps_have_the_runbook_shapes() {
        let ms = 86_400_000 + 3_723_000;
        assert_eq!(id_stamp(ms), "19700102-010203");
        assert_eq!(checklist_stamp(ms), "1970-01-02-01-02");
        assert_eq!(rfc3339(ms), "1970-01-02T01:02:03Z");
    }
}
