//! The checks of caller verification: every verifier binds the same
//! arguments, each function that requires verification carries them in
//! arguments of the right type, and a binding verifier's `max_failures`
//! locks an account for long enough to keep its secret from being guessed.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::Value;

use super::Checker;
use crate::agent::model::{
    FunctionFile, MaxFailuresFile, RequiresVerificationFile, VerifiesCallerFile,
};
use crate::agent::units::Rate;

/// The most failures `max_failures` may allow per interval.
const MAX_FAILURES_COUNT: u32 = 20;
/// The most failures per hour `max_failures` may allow in the long run:
/// 10,000 four-digit PINs then take three weeks per replica.
const MAX_FAILURES_PER_HOUR: u64 = 20;

/// What the agent's verifiers bind: one identity for the whole agent, since
/// a grant from any verifier must mean the same to every function that
/// requires one.
pub(super) struct Bound {
    /// How many functions verify the caller.
    pub(super) verifiers: usize,
    /// The first verifier, and the arguments it binds.
    verifier: String,
    names: Vec<String>,
    /// The declared type of each bound argument at the verifier: a
    /// function whose argument has another type could never match.
    types: HashMap<String, String>,
}

impl Checker<'_> {
    /// What the verifiers bind; every verifier must bind the same arguments.
    pub(super) fn verifiers(&mut self, raw: &IndexMap<String, FunctionFile>) -> Bound {
        let verifiers: Vec<(String, Vec<String>)> = raw
            .iter()
            .filter_map(|(name, f)| {
                let v = f.verifies_caller.as_ref().filter(|v| v.is_on())?;
                Some((name.clone(), v.binds()))
            })
            .collect();
        // One identity for the whole agent: a grant from any verifier must
        // mean the same thing to every function that requires one.
        let bound = verifiers.first().cloned().unwrap_or_default();
        // The declared type of each bound argument at the verifier: a
        // function whose argument has another type could never match.
        let types: HashMap<String, String> = raw
            .get(&bound.0)
            .and_then(|f| f.parameters.as_ref())
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object)
            .map(|props| {
                bound
                    .1
                    .iter()
                    .filter_map(|b| {
                        let ty = props.get(b)?.get("type")?.as_str()?;
                        Some((b.clone(), ty.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (name, binds) in verifiers.iter().skip(1) {
            if *binds != bound.1 {
                let pos = self.spans.value(&["functions", name, "verifies_caller"]);
                self.error(
                    pos,
                    format!(
                        "function `{name}`: every verifier must bind the same arguments; `{}` binds [{}], this one [{}]",
                        bound.0,
                        bound.1.join(", "),
                        binds.join(", ")
                    ),
                );
            }
        }
        Bound {
            verifiers: verifiers.len(),
            verifier: bound.0,
            names: bound.1,
            types,
        }
    }

    /// What this function's side of a verification grant is bound to (see
    /// [`Function::identity`]); `bound` is the first verifier and what it binds.
    pub(super) fn identity(
        &mut self,
        name: &str,
        verifies: Option<VerifiesCallerFile>,
        requires: Option<RequiresVerificationFile>,
        parameters: &Value,
        bound: &Bound,
    ) -> Vec<(String, String)> {
        let (verifier, names) = (&bound.verifier, &bound.names);
        // Which key a finding points at, and what to suggest.
        let (key, hint, pairs): (&str, &str, Vec<(String, String)>) = match (verifies, requires) {
            (Some(v @ VerifiesCallerFile::Binds(_)), _) => {
                let binds = v.binds();
                if binds.is_empty() {
                    let pos = self.spans.value(&["functions", name, "verifies_caller"]);
                    self.error(pos, format!("function `{name}`: `binds` needs at least one argument; or write `verifies_caller: true`"));
                }
                ("verifies_caller", "", binds.into_iter().map(|b| (b.clone(), b)).collect())
            }
            (_, Some(RequiresVerificationFile::Flag(true))) => (
                "requires_verification",
                "; or name the argument that carries it: `requires_verification: { NAME: ARGUMENT }`",
                names.iter().map(|b| (b.clone(), b.clone())).collect(),
            ),
            (_, Some(RequiresVerificationFile::Map(map))) => {
                let pos = self.spans.value(&["functions", name, "requires_verification"]);
                if names.is_empty() {
                    self.error(pos, format!("function `{name}`: `requires_verification` maps bound arguments, but no verifier binds any (`verifies_caller: {{ binds: [...] }}`)"));
                    return Vec::new();
                }
                for b in names {
                    if !map.contains_key(b) {
                        self.error(pos, format!("function `{name}`: `requires_verification` must name the argument that carries `{b}`, which `{verifier}` binds"));
                    }
                }
                for k in map.keys() {
                    if !names.contains(k) {
                        self.error(pos, format!("function `{name}`: `requires_verification` names `{k}`, which `{verifier}` does not bind"));
                    }
                }
                let mut pairs: Vec<(String, String)> =
                    map.into_iter().filter(|(k, _)| names.contains(k)).collect();
                pairs.sort();
                ("requires_verification", "", pairs)
            }
            _ => return Vec::new(),
        };
        let parameters = Some(parameters).filter(|p| !p.is_null());
        for (b, arg) in &pairs {
            let pos = self.spans.value(&["functions", name, key]);
            if let Some(problem) = identity_argument(parameters, arg) {
                let msg = if key == "verifies_caller" {
                    format!("function `{name}`: `binds` names `{arg}`, which {problem}")
                } else {
                    format!("function `{name}`: the verified `{b}` must be in argument `{arg}`, which {problem}{}", hint.replace("NAME", b))
                };
                self.error(pos, msg);
                continue;
            }
            let here = parameters
                .and_then(|p| {
                    p.pointer(&format!(
                        "/properties/{}/type",
                        arg.replace('~', "~0").replace('/', "~1")
                    ))
                })
                .and_then(Value::as_str);
            if let (Some(here), Some(there)) = (here, bound.types.get(b)) {
                if key != "verifies_caller" && here != there {
                    self.error(pos, format!("function `{name}`: the verified `{b}` is `type: {there}` at `{verifier}`, but argument `{arg}` is `type: {here}`; no grant could ever match"));
                }
            }
        }
        pairs
    }

    /// The lock-out of a verifier that binds arguments: there is an account
    /// to count failures for. (A whole-call verifier has none; its
    /// `rate_limit` is what holds it back.)
    pub(super) fn max_failures(
        &mut self,
        name: &str,
        verifies: Option<&VerifiesCallerFile>,
    ) -> Option<Rate> {
        let VerifiesCallerFile::Binds(b) = verifies? else {
            return None;
        };
        match b.max_failures {
            None | Some(MaxFailuresFile::Flag(true)) => Some(crate::agent::default_max_failures()),
            Some(MaxFailuresFile::Rate(r)) => {
                let rate = r.0;
                let (count, per) = (rate.count.get(), rate.per.as_secs());
                // Outside these, the "lock-out" locks nothing a guesser
                // would notice, or locks an honest caller out for days.
                // `count` failures, a lock for the interval, `count` more:
                // the rate a patient guesser keeps up for as long as he likes.
                let per_hour = u64::from(count) * 3600 / per.max(1);
                let problem = if count > MAX_FAILURES_COUNT {
                    Some(format!("allows {count} failures; at most {MAX_FAILURES_COUNT} keep a PIN from being guessed"))
                } else if per_hour > MAX_FAILURES_PER_HOUR {
                    Some(format!("lets a guesser try {per_hour} times an hour on one account, without end; at most {MAX_FAILURES_PER_HOUR} keep a PIN from being guessed"))
                } else if per > 86_400 {
                    Some(
                        "locks for more than a day; an honest caller would be locked out too long"
                            .into(),
                    )
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let pos =
                        self.spans
                            .value(&["functions", name, "verifies_caller", "max_failures"]);
                    self.error(
                        pos,
                        format!("function `{name}`: `max_failures` `{rate}` {problem}; use e.g. `5/15m`"),
                    );
                }
                Some(rate)
            }
            Some(MaxFailuresFile::Flag(false)) => {
                let pos = self
                    .spans
                    .value(&["functions", name, "verifies_caller", "max_failures"]);
                self.warn(
                    pos,
                    format!("function `{name}`: `max_failures: false` lets a caller guess the secret of one account over as many calls as they like"),
                );
                None
            }
        }
    }
}

/// Why `arg` cannot carry a verified identity, if it cannot: it must be a
/// declared, required string or integer, so it is always there and compares
/// exactly (no `1` against `1.0`).
fn identity_argument(parameters: Option<&Value>, arg: &str) -> Option<&'static str> {
    let Some(schema) = parameters
        .and_then(|p| p.get("properties"))
        .and_then(|p| p.get(arg))
    else {
        return Some("is not a declared argument");
    };
    let required = parameters
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v == arg));
    if !required {
        return Some("is not in `required`");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string" | "integer") => None,
        _ => Some("is not declared `type: string` or `integer`"),
    }
}
