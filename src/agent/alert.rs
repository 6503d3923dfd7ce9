//! Alert rules as the agent file states them, checked when it loads:
//! which of the five shapes each entry is, and the functions it names.
//! Counting and firing at run time is [`crate::alerts`]'.

use super::model::AlertFile;
use super::units::Hours;

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

#[cfg(test)]
mod tests {
    use super::AlertRule;
    use crate::agent::model::AlertFile;
    use serde_json::json;

    fn file(v: serde_json::Value) -> AlertFile {
        serde_json::from_value(v).unwrap()
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
