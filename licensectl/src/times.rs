//! Times and durations as people write them: TIME is RFC 3339 or unix
//! seconds, DURATION is humantime's (`90d`, `12h`, `30m`, `1h 30m`), and
//! times are shown as RFC 3339 with how far they are from now.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the epoch on this machine's clock.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A TIME argument: unix seconds (`1830000000`) or RFC 3339
/// (`2027-01-31T00:00:00Z`, `2027-01-31T01:00:00+01:00`).
pub fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map_err(|_| format!("\"{text}\": too large for unix seconds"));
    }
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("\"{text}\" is neither RFC 3339 (2027-01-31T00:00:00Z) nor unix seconds ({e})"))?;
    u64::try_from(at.unix_timestamp()).map_err(|_| format!("\"{text}\" is before 1970"))
}

/// A DURATION argument (`90d`, `12h`, `30m`, `1h 30m`): whole seconds, at
/// least one.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("\"{text}\" is not a duration like 90d, 12h or 30m ({e})"))?;
    match duration.as_secs() {
        0 => Err(format!("\"{text}\": the duration must be at least one second")),
        seconds => Ok(seconds),
    }
}

/// RFC 3339 in UTC (`2027-01-31T00:00:00Z`), or why a NumericDate has none.
pub fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "after the year 9999".to_string())
}

/// How long `seconds` is, in its largest unit that counts at least two
/// (`90 minutes`, `3 hours`, `29 days`, `2 years`), rounded down.
pub fn span(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const YEAR: u64 = 365 * DAY;
    let (count, unit) = match seconds {
        s if s >= 2 * YEAR => (s / YEAR, "year"),
        s if s >= 2 * DAY => (s / DAY, "day"),
        s if s >= 2 * HOUR => (s / HOUR, "hour"),
        s if s >= 2 * MINUTE => (s / MINUTE, "minute"),
        s => (s, "second"),
    };
    if count == 1 { format!("1 {unit}") } else { format!("{count} {unit}s") }
}

/// `at` relative to `now`: `in 29 days`, `3 hours ago`, `now`.
pub fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Equal => "now".to_string(),
        std::cmp::Ordering::Greater => format!("in {}", span(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - at)),
    }
}

/// An expiry relative to `now`: `expires in 29 days`, `expired 3 hours ago`.
pub fn expiry(exp: u64, now: u64) -> String {
    if exp > now { format!("expires {}", relative(exp, now)) } else { format!("expired {}", relative(exp, now)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1830000000"), Ok(1_830_000_000));
        assert_eq!(parse_time("2027-01-31T00:00:00Z"), Ok(1_801_353_600));
        assert_eq!(parse_time("2027-01-31T01:00:00+01:00"), Ok(1_801_353_600));
        assert_eq!(parse_time(" 0 "), Ok(0));
        for bad in ["", "2027-01-31", "yesterday", "-5", "1969-12-31T23:59:59Z", "99999999999999999999999"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(rfc3339(1_801_353_600), "2027-01-31T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), "after the year 9999");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("1h 30m"), Ok(5_400));
        let error = parse_duration("90x").unwrap_err();
        assert!(error.starts_with("\"90x\" is not a duration like 90d, 12h or 30m (unknown time unit"), "{error}");
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("0s").unwrap_err().contains("at least one second"));
    }

    #[test]
    fn phrases() {
        let now = 1_800_000_000;
        assert_eq!(expiry(now + 29 * 86_400 + 3_600, now), "expires in 29 days");
        assert_eq!(expiry(now - 3 * 3_600 - 59, now), "expired 3 hours ago");
        assert_eq!(expiry(now, now), "expired now");
        assert_eq!(relative(now + 90 * 60, now), "in 90 minutes");
        assert_eq!(relative(now - 1, now), "1 second ago");
        assert_eq!(relative(now + 36 * 3_600, now), "in 36 hours");
        assert_eq!(relative(now + 800 * 86_400, now), "in 2 years");
        assert_eq!(span(119), "119 seconds");
    }
}
