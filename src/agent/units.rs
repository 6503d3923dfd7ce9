//! Units of the agent file: durations (`500ms`, `5s`), sizes (`64KiB`),
//! rates (`5/min`) and business hours (`Mon-Fri 08:00-18:00 Europe/Berlin`),
//! parsed and checked. A leaf: the format, the limiters and the alert rules
//! all use it, and it uses none of them.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{Datelike, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// `count` per `per`; `None` for a zero count or an interval too short to
    /// split into `count` steps (a limiter refills one every `per / count`).
    pub fn new(count: u32, per: Duration) -> Option<Rate> {
        let count = NonZeroU32::new(count)?;
        (!(per / count.get()).is_zero()).then_some(Rate { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.per.as_secs() {
            60 => write!(f, "{}/min", self.count),
            3600 => write!(f, "{}/h", self.count),
            s if Duration::from_secs(s) == self.per => write!(f, "{}/{s}s", self.count),
            _ => write!(f, "{}/{}ms", self.count, self.per.as_millis()),
        }
    }
}

/// Parses `5/min`, `100/h`, `2/s`, `10/30s` or `1/500ms`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let err = || format!("`{s}` is not a rate: use e.g. `5/min`, `100/h` or `2/s`");
    let (count, per) = s.trim().split_once('/').ok_or_else(err)?;
    let count: u32 = count.trim().parse().map_err(|_| err())?;
    let per = match per.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86400),
        other => parse_duration(other).map_err(|_| err())?,
    };
    if count == 0 {
        return Err(format!("`{s}`: the count must be at least 1"));
    }
    // Longer would overflow the clock arithmetic of a limiter or lock-out.
    if per > Duration::from_secs(366 * 86_400) {
        return Err(format!("`{s}`: the interval must be at most 366 days"));
    }
    Rate::new(count, per).ok_or_else(|| format!("`{s}`: the interval is too short"))
}

/// A duration: `500ms`, `5s`, `2m`, or plain seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

/// A size in bytes: `64KiB`, `1MiB`, `512B`, or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}` is not a duration: use e.g. `500ms`, `5s`, `2m` or plain seconds")
    })?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86400)),
        _ => {
            return Err(format!(
                "`{s}` is not a duration: use e.g. `500ms`, `5s`, `2m` or plain seconds"
            ))
        }
    };
    Ok(d)
}

/// Parses `64KiB`, `1MiB`, `10KB`, `512B` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let err = || format!("`{s}` is not a size: use e.g. `512B`, `64KiB` or `1MiB`");
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrText::deserialize(d)? {
            NumOrText::Num(n) => Ok(DurationSpec(Duration::from_secs(n))),
            NumOrText::Text(s) => parse_duration(&s)
                .map(DurationSpec)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrText::deserialize(d)? {
            NumOrText::Num(n) => Ok(ByteSize(n)),
            NumOrText::Text(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for RateSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_rate(&s)
            .map(RateSpec)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RateSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A rate: `5/min`, `100/h`, `2/s` or `10/30s`.",
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*/\\s*(s|sec|second|m|min|minute|h|hour|d|day|[0-9]+\\s*(ms|s|m|min|h|d)?)\\s*$"
        })
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: `500ms`, `5s`, `2m`, or plain seconds.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+\\s*(ms|s|m|min|h|d)?$" }
            ]
        })
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: `512B`, `64KiB`, `1MiB`, or a plain number of bytes.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+\\s*(B|K|k|KiB|M|MiB|G|GiB|KB|kB|MB)?$" }
            ]
        })
    }
}

/// A rate: `5/min`, `100/h`, `2/s`, `10/30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec(pub Rate);

/// A business-hours window.
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A day by its three-letter or full English name, in any case: not any
/// word that starts like one (`Monkey` is not Monday).
fn day(s: &str) -> Result<usize, String> {
    let l = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l == *d || l == d[..3])
        .ok_or_else(|| format!("`{s}` is not a day (Mon ... Sun)"))
}

impl Hours {
    /// Parses `Mon-Fri 08:00-18:00 Europe/Berlin` (days: ranges or commas).
    pub fn parse(text: &str) -> Result<Hours, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days_s, times_s, tz_s] = parts.as_slice() else {
            return Err(format!(
                "`{text}` must look like `Mon-Fri 08:00-18:00 Europe/Berlin`"
            ));
        };
        let mut days = [false; 7];
        for item in days_s.split(',') {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        days[d] = true;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => days[day(item)?] = true,
            }
        }
        let (start, end) = times_s
            .split_once('-')
            .ok_or_else(|| format!("`{times_s}` must be a time range like `08:00-18:00`"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| format!("`{t}` is not a time (HH:MM)"))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(format!("`{times_s}`: the window is empty"));
        }
        let tz: Tz = tz_s
            .parse()
            .map_err(|_| format!("`{tz_s}` is not an IANA time zone (like `Europe/Berlin`)"))?;
        Ok(Hours {
            days,
            start,
            end,
            tz,
        })
    }

    /// True when `at` falls inside the window. A window that ends before it
    /// starts (`22:00-06:00`, a night shift) runs past midnight into the next
    /// day, so its days are the days it starts on: `Fri 22:00-06:00` covers
    /// Saturday 05:00 and not Friday 05:00.
    pub fn contains(&self, at: chrono::DateTime<Utc>) -> bool {
        let local = self.tz.from_utc_datetime(&at.naive_utc());
        let d = local.weekday().num_days_from_monday() as usize;
        let t = local.time();
        if self.start < self.end {
            self.days[d] && t >= self.start && t < self.end
        } else {
            let yesterday = (d + 6) % 7;
            (self.days[d] && t >= self.start) || (self.days[yesterday] && t < self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_rate, parse_size, Hours, Rate};
    use chrono::{TimeZone, Utc};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("5 parsecs"),
            Err(
                "`5 parsecs` is not a duration: use e.g. `500ms`, `5s`, `2m` or plain seconds"
                    .into()
            )
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn rates_parse() {
        let min = Duration::from_secs(60);
        assert_eq!(parse_rate("5/min"), Ok(Rate::new(5, min).unwrap()));
        assert_eq!(parse_rate(" 100 / m "), Ok(Rate::new(100, min).unwrap()));
        assert_eq!(
            parse_rate("2/s"),
            Ok(Rate::new(2, Duration::from_secs(1)).unwrap())
        );
        assert_eq!(
            parse_rate("10/30s"),
            Ok(Rate::new(10, Duration::from_secs(30)).unwrap())
        );
        assert_eq!(parse_rate("1/h").unwrap().to_string(), "1/h");
        assert_eq!(parse_rate("5/min").unwrap().to_string(), "5/min");
        assert_eq!(
            parse_rate("0/min"),
            Err("`0/min`: the count must be at least 1".into())
        );
        assert_eq!(
            parse_rate("1/18446744073709551615s"),
            Err("`1/18446744073709551615s`: the interval must be at most 366 days".into())
        );
        assert!(parse_rate("1/366d").is_ok());
        assert_eq!(
            parse_rate("5"),
            Err("`5` is not a rate: use e.g. `5/min`, `100/h` or `2/s`".into())
        );
        assert_eq!(
            parse_rate("5/fortnight"),
            Err("`5/fortnight` is not a rate: use e.g. `5/min`, `100/h` or `2/s`".into())
        );
        assert_eq!(
            parse_rate("5/0s"),
            Err("`5/0s`: the interval is too short".into())
        );
    }

    #[test]
    fn business_hours_in_their_zone() {
        let h = Hours::parse("Mon-Fri 08:00-18:00 Europe/Berlin").unwrap();
        // Wed 2026-11-25 07:30 UTC is 08:30 in Berlin (CET, UTC+1).
        assert!(h.contains(Utc.with_ymd_and_hms(2026, 11, 25, 7, 30, 0).unwrap()));
        assert!(!h.contains(Utc.with_ymd_and_hms(2026, 11, 25, 6, 30, 0).unwrap()));
        // Saturday.
        assert!(!h.contains(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()));
        assert_eq!(
            Hours::parse("Monkey-Frisbee 08:00-18:00 UTC").unwrap_err(),
            "`Monkey` is not a day (Mon ... Sun)"
        );
        assert!(Hours::parse("monday-FRIDAY 08:00-18:00 UTC").is_ok());
        assert_eq!(
            Hours::parse("Mon-Fri 08:00-08:00 UTC").unwrap_err(),
            "`08:00-08:00`: the window is empty"
        );
        assert_eq!(
            Hours::parse("Mon-Fri 08:00-18:00 Mars/Olympus").unwrap_err(),
            "`Mars/Olympus` is not an IANA time zone (like `Europe/Berlin`)"
        );
        let weekend = Hours::parse("Sat,Sun 09:00-12:00 UTC").unwrap();
        assert!(weekend.contains(Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()));
    }

    #[test]
    fn a_night_shift_runs_past_midnight_from_the_days_it_starts_on() {
        let night = Hours::parse("Mon-Fri 22:00-06:00 UTC").unwrap();
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // 2026-11-23 is a Monday.
        assert!(!night.contains(at(23, 5, 0)), "Monday 05:00 follows Sunday");
        assert!(!night.contains(at(23, 21, 59)));
        assert!(night.contains(at(23, 22, 0)));
        assert!(
            night.contains(at(24, 0, 0)),
            "Tuesday 00:00 is Monday's night"
        );
        assert!(night.contains(at(24, 5, 59)));
        assert!(!night.contains(at(24, 6, 0)));
        assert!(
            night.contains(at(28, 5, 0)),
            "Saturday 05:00 is Friday's night"
        );
        assert!(
            !night.contains(at(28, 22, 0)),
            "no night starts on Saturday"
        );
        // Ending at midnight: until the end of the day, not into the next.
        let evening = Hours::parse("Sat 18:00-00:00 Europe/Berlin").unwrap();
        assert!(evening.contains(at(28, 22, 59)), "Saturday 23:59 in Berlin");
        assert!(!evening.contains(at(28, 23, 0)), "Sunday 00:00 in Berlin");
    }
}
