//! Server-enforced guards for sensitive functions: confirmation codes
//! (`confirm: true`) and caller-verification grants (`requires_verification`).
//!
//! Both are stateless HMACs under the token secret, so they hold across
//! replicas that share `SIGNALWIRE_SWAIG_SECRET` and across restarts:
//! - a confirmation code binds call id, function and the canonical JSON of the
//!   arguments, and expires; single use is enforced by [`UsedCodes`];
//! - a verification grant binds the call id and, when the verifier `binds`
//!   arguments, their values (the account whose PIN was checked), and
//!   expires; the platform carries it in `global_data` between function
//!   calls. A bound grant sits under a key derived from what it binds, so one
//!   call can hold grants for several accounts.
//!
//! Single use. The in-memory store refuses a replay within one process. A
//! replay to another replica, or to this one after a restart, inside the
//! code's lifetime is only refused when the replicas share a store folder
//! (`--confirm-store DIR`): each use creates a file named by the code's digest
//! with `O_CREAT|O_EXCL`, which exactly one process can win. Without it the
//! remaining window is the code lifetime (default 5 minutes), for the same
//! call, function and arguments, and only for a caller that already holds
//! Basic Auth credentials and a valid function token.

mod codes;
mod grant;
mod store;

use serde_json::Value;

pub use codes::{check_code, confirmation_code, confirmed_details, Code, CodeVerdict};
pub use grant::{grant, has_grant, identity_of};
pub use store::{store_exposure, UsedCodes, PRUNE_AFTER};

/// The argument swagent adds to confirmed functions in SWML.
pub const CONFIRMATION_ARG: &str = "confirmation";

/// The `global_data` key that carries a verification grant.
pub const GRANT_KEY: &str = "swagent_verified";

/// JSON with object keys sorted at every level: the same arguments always
/// give the same text, whatever order the model wrote them in.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": [2, {"z": 1, "y": 2}], "c": "x"}})),
            r#"{"a":{"c":"x","d":[2,{"y":2,"z":1}]},"b":1}"#
        );
    }
}
