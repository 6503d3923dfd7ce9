//! Detection: the agent's alert rules ([`crate::agent::alert`]), evaluated
//! as requests pass.
//!
//! Rates are counted in fixed one-minute windows; a rule fires once, when a
//! window first crosses its threshold, so a flood raises one alert a minute
//! rather than one per request. Business hours and large arguments are
//! judged per call and may block it. Firing is reported to the caller of
//! these functions, which writes the `alert` audit event and the WARN line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use crate::agent::alert::{AlertRule, Rule};

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
    use super::{AlertRule, Alerts, Rule};
    use crate::agent::model::AlertFile;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn file(v: serde_json::Value) -> AlertFile {
        serde_json::from_value(v).unwrap()
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
}
