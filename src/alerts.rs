//! Detection: alert rules from the agent file, evaluated as requests pass.
//!
//! Rates are counted in fixed one-minute windows; a rule fires once, when a
//! window first crosses its threshold, so a flood raises one alert a minute
//! rather than one per request. Business hours and large arguments are
//! judged per call and may block it. Firing is reported to the caller of
//! these functions, which writes the `alert` audit event and the WARN line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Datelike, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::agent::model::AlertFile;

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

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    FunctionRate {
        function: String,
        max_per_minute: u64,
    },
    AuthFailures {
        per_minute: u64,
    },
    Calls {
        per_minute: u64,
    },
    BusinessHours {
        hours: Hours,
        functions: Vec<String>,
        block: bool,
    },
    LargeArgument {
        function: String,
        argument: String,
        above: f64,
        block: bool,
    },
}

/// A validated alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub rule: Rule,
}

impl AlertRule {
    /// Whether the rule looks at calls of `function`.
    pub fn applies_to(&self, function: &str) -> bool {
        match &self.rule {
            Rule::FunctionRate { function: f, .. } | Rule::LargeArgument { function: f, .. } => {
                f == function
            }
            Rule::BusinessHours { functions, .. } => {
                functions.is_empty() || functions.iter().any(|f| f == function)
            }
            Rule::AuthFailures { .. } | Rule::Calls { .. } => false,
        }
    }

    /// Checks one `alerts:` entry against the agent's function names.
    pub fn from_file(a: &AlertFile, functions: &[&str]) -> Result<AlertRule, String> {
        let known = |f: &str| -> Result<String, String> {
            if functions.contains(&f) {
                Ok(f.to_owned())
            } else {
                Err(format!(
                    "alert names function `{f}`, which this agent does not have"
                ))
            }
        };
        let shapes = [
            a.max_per_minute.is_some(),
            a.auth_failures_per_minute.is_some(),
            a.calls_per_minute.is_some(),
            a.business_hours.is_some(),
            a.above.is_some() || a.argument.is_some(),
        ];
        if shapes.iter().filter(|s| **s).count() != 1 {
            return Err("an alert needs exactly one of `max_per_minute` (with `function`), `auth_failures_per_minute`, `calls_per_minute`, `business_hours`, or `argument` with `above` (with `function`)".into());
        }
        let block = a.block.unwrap_or(false);
        let rule = if let Some(max) = a.max_per_minute {
            let f = a
                .function
                .as_deref()
                .ok_or("`max_per_minute` needs `function`")?;
            Rule::FunctionRate {
                function: known(f)?,
                max_per_minute: max,
            }
        } else if let Some(n) = a.auth_failures_per_minute {
            Rule::AuthFailures { per_minute: n }
        } else if let Some(n) = a.calls_per_minute {
            Rule::Calls { per_minute: n }
        } else if let Some(h) = &a.business_hours {
            let fs = a.functions.clone().unwrap_or_default();
            for f in &fs {
                known(f)?;
            }
            Rule::BusinessHours {
                hours: Hours::parse(h)?,
                functions: fs,
                block,
            }
        } else {
            let f = a
                .function
                .as_deref()
                .ok_or("`argument`/`above` needs `function`")?;
            let arg = a.argument.clone().ok_or("`above` needs `argument`")?;
            let above = a.above.ok_or("`argument` needs `above`")?;
            Rule::LargeArgument {
                function: known(f)?,
                argument: arg,
                above,
                block,
            }
        };
        if block
            && !matches!(
                rule,
                Rule::BusinessHours { .. } | Rule::LargeArgument { .. }
            )
        {
            return Err(
                "`block` applies only to `business_hours` and `argument`/`above` rules".into(),
            );
        }
        let name = a.name.clone().unwrap_or_else(|| describe(&rule));
        Ok(AlertRule { name, rule })
    }
}

fn describe(rule: &Rule) -> String {
    match rule {
        Rule::FunctionRate {
            function,
            max_per_minute,
        } => {
            format!("`{function}` more than {max_per_minute} calls per minute")
        }
        Rule::AuthFailures { per_minute } => {
            format!("more than {per_minute} failed authentications per minute")
        }
        Rule::Calls { per_minute } => format!("more than {per_minute} calls started per minute"),
        Rule::BusinessHours { .. } => "function called outside business hours".into(),
        Rule::LargeArgument {
            function,
            argument,
            above,
            ..
        } => {
            format!("`{function}` with `{argument}` above {above}")
        }
    }
}

/// An alert that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule: String,
    pub observed: String,
    pub threshold: String,
    /// The call should be refused.
    pub block: bool,
}

#[derive(Default)]
struct Window {
    minute: AtomicU64,
    count: AtomicU64,
}

impl Window {
    /// Counts one event in the current minute; returns the count.
    fn hit(&self, minute: u64) -> u64 {
        if self.minute.swap(minute, Ordering::Relaxed) != minute {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The rules of one agent with their counters.
pub struct Alerts {
    rules: Vec<(AlertRule, Arc<Window>)>,
}

impl Alerts {
    pub fn new(rules: Vec<AlertRule>) -> Alerts {
        Alerts::carried(rules, None)
    }

    /// On a reload: a rule that did not change keeps its counter, shared
    /// with the agent it replaces. Starting it afresh would let a reload in
    /// the middle of a burst (to fix a prompt, say) hide the burst, or raise
    /// its alert a second time in the same minute.
    pub fn carried(rules: Vec<AlertRule>, previous: Option<&Alerts>) -> Alerts {
        let kept = |rule: &AlertRule| {
            previous
                .and_then(|p| p.rules.iter().find(|(r, _)| r == rule))
                .map_or_else(Arc::default, |(_, w)| Arc::clone(w))
        };
        Alerts {
            rules: rules
                .into_iter()
                .map(|r| {
                    let window = kept(&r);
                    (r, window)
                })
                .collect(),
        }
    }

    /// True when there is at least one rule.
    pub fn any(&self) -> bool {
        !self.rules.is_empty()
    }

    fn rate(&self, now: chrono::DateTime<Utc>, pick: impl Fn(&Rule) -> Option<u64>) -> Vec<Fired> {
        let minute = u64::try_from(now.timestamp()).unwrap_or(0) / 60;
        let mut fired = Vec::new();
        for (rule, window) in &self.rules {
            if let Some(max) = pick(&rule.rule) {
                let n = window.hit(minute);
                if n == max + 1 {
                    fired.push(Fired {
                        rule: rule.name.clone(),
                        observed: format!("{n} in the current minute"),
                        threshold: max.to_string(),
                        block: false,
                    });
                }
            }
        }
        fired
    }

    /// A call started (SWML fetched).
    pub fn call_started(&self, now: chrono::DateTime<Utc>) -> Vec<Fired> {
        self.rate(now, |r| match r {
            Rule::Calls { per_minute } => Some(*per_minute),
            _ => None,
        })
    }

    /// An authentication failed.
    pub fn auth_failed(&self, now: chrono::DateTime<Utc>) -> Vec<Fired> {
        self.rate(now, |r| match r {
            Rule::AuthFailures { per_minute } => Some(*per_minute),
            _ => None,
        })
    }

    /// A function is about to run with validated `args`.
    pub fn function_called(
        &self,
        function: &str,
        args: &Value,
        now: chrono::DateTime<Utc>,
    ) -> Vec<Fired> {
        let mut fired = self.rate(now, |r| match r {
            Rule::FunctionRate {
                function: f,
                max_per_minute,
            } if f == function => Some(*max_per_minute),
            _ => None,
        });
        for (rule, _) in &self.rules {
            match &rule.rule {
                Rule::BusinessHours {
                    hours,
                    functions,
                    block,
                } if (functions.is_empty() || functions.iter().any(|f| f == function))
                    && !hours.contains(now) =>
                {
                    fired.push(Fired {
                        rule: rule.name.clone(),
                        observed: format!(
                            "called at {}",
                            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                        threshold: "business hours".into(),
                        block: *block,
                    });
                }
                Rule::LargeArgument {
                    function: f,
                    argument,
                    above,
                    block,
                } if f == function => {
                    if let Some(v) = args
                        .get(argument)
                        .and_then(Value::as_f64)
                        .filter(|v| v > above)
                    {
                        fired.push(Fired {
                            rule: rule.name.clone(),
                            observed: v.to_string(),
                            threshold: above.to_string(),
                            block: *block,
                        });
                    }
                }
                _ => {}
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::{AlertRule, Alerts, Hours, Rule};
    use crate::agent::model::AlertFile;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn file(v: serde_json::Value) -> AlertFile {
        serde_json::from_value(v).unwrap()
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

    #[test]
    fn a_rate_rule_fires_once_per_minute_window() {
        let rule =
            AlertRule::from_file(&file(json!({"function": "t", "max_per_minute": 2})), &["t"])
                .unwrap();
        let alerts = Alerts::new(vec![rule]);
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let counts: Vec<usize> = (0..5)
            .map(|_| alerts.function_called("t", &json!({}), t0).len())
            .collect();
        assert_eq!(counts, vec![0, 0, 1, 0, 0]);
        let t1 = t0 + chrono::Duration::minutes(1);
        let counts: Vec<usize> = (0..3)
            .map(|_| alerts.function_called("t", &json!({}), t1).len())
            .collect();
        assert_eq!(counts, vec![0, 0, 1]);
    }

    #[test]
    fn an_unchanged_rule_keeps_its_count_over_a_reload() {
        let rule = |max: u64| {
            AlertRule::from_file(
                &file(json!({"function": "t", "max_per_minute": max})),
                &["t"],
            )
            .unwrap()
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let call = |a: &Alerts| a.function_called("t", &json!({}), now).len();
        let before = Alerts::new(vec![rule(2)]);
        assert_eq!((call(&before), call(&before)), (0, 0));
        // The third call of the minute fires, after the reload as before it.
        let after = Alerts::carried(vec![rule(2)], Some(&before));
        assert_eq!(call(&after), 1);
        // A changed rule starts afresh.
        let changed = Alerts::carried(vec![rule(3)], Some(&after));
        assert_eq!((call(&changed), call(&changed), call(&changed)), (0, 0, 0));
        assert_eq!(call(&changed), 1);
    }

    #[test]
    fn large_arguments_fire_and_may_block() {
        let rule = AlertRule::from_file(
            &file(json!({"function": "t", "argument": "amount", "above": 1000, "block": true})),
            &["t"],
        )
        .unwrap();
        assert!(matches!(rule.rule, Rule::LargeArgument { block: true, .. }));
        let alerts = Alerts::new(vec![rule]);
        let now = Utc::now();
        assert!(alerts
            .function_called("t", &json!({"amount": 1000}), now)
            .is_empty());
        let fired = alerts.function_called("t", &json!({"amount": 1000.5}), now);
        assert_eq!(fired.len(), 1);
        assert!(fired[0].block);
        assert_eq!(fired[0].observed, "1000.5");
    }

    #[test]
    fn bad_rules_are_explained() {
        assert_eq!(
            AlertRule::from_file(
                &file(json!({"function": "nope", "max_per_minute": 2})),
                &["t"]
            )
            .unwrap_err(),
            "alert names function `nope`, which this agent does not have"
        );
        assert_eq!(
            AlertRule::from_file(&file(json!({"calls_per_minute": 2, "block": true})), &[])
                .unwrap_err(),
            "`block` applies only to `business_hours` and `argument`/`above` rules"
        );
        assert!(AlertRule::from_file(&file(json!({})), &[]).is_err());
    }
}
