//! Caller-verification grants: an HMAC under the token secret over the
//! agent, the call id and, when the verifier binds arguments, their values,
//! with an expiry. The platform carries it in `global_data` between calls,
//! under a key derived from what it binds, so one call can hold grants for
//! several accounts.

use serde_json::Value;

use super::{canonical_json, GRANT_KEY};
use crate::token::Secret;

/// What a grant binds besides the call: the canonical JSON of the
/// `identity` arguments' values (see `Function::identity`), or `None` when
/// the grant is for the whole call.
pub fn identity_of(identity: &[(String, String)], args: &Value) -> Option<String> {
    if identity.is_empty() {
        return None;
    }
    let bound: serde_json::Map<String, Value> = identity
        .iter()
        .map(|(name, arg)| {
            let value = args.get(arg).map_or(Value::Null, one_spelling);
            (name.clone(), value)
        })
        .collect();
    Some(canonical_json(&Value::Object(bound)))
}

/// `type: integer` accepts `123456.0` and `1.23456e5` as well as `123456`:
/// one account, which must not get three grants or three lock-out counts.
/// (Above 2^53 a float is the integer it rounded to, as for any reader.)
fn one_spelling(value: &Value) -> Value {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
        _ => value.clone(),
    }
}

fn grant_message(agent: &str, call_id: &str, identity: Option<&str>, expiry: u64) -> String {
    match identity {
        // A bound grant has one line more, so it never equals an unbound one.
        None => format!("verified\n{agent}\n{call_id}\n{expiry}"),
        Some(identity) => format!("verified\n{agent}\n{call_id}\n{expiry}\n{identity}"),
    }
}

/// The `global_data` key of a grant: [`GRANT_KEY`], or for a bound grant
/// that plus a keyed digest of what it binds (the values themselves, such as
/// account numbers, are not written into `global_data`).
fn grant_key(secret: &Secret, agent: &str, call_id: &str, identity: Option<&str>) -> String {
    match identity {
        None => GRANT_KEY.to_owned(),
        Some(identity) => {
            let tag = secret.sign(format!("grant-key\n{agent}\n{call_id}\n{identity}").as_bytes());
            format!("{GRANT_KEY}_{}", &hex::encode(tag.as_ref())[..16])
        }
    }
}

/// A verification grant for `call_id` (and `identity`): the `global_data`
/// key to set, and its value `{expiry}.{64 hex}`.
pub fn grant(
    secret: &Secret,
    agent: &str,
    call_id: &str,
    identity: Option<&str>,
    expiry: u64,
) -> (String, String) {
    let tag = secret.sign(grant_message(agent, call_id, identity, expiry).as_bytes());
    (
        grant_key(secret, agent, call_id, identity),
        format!("{expiry}.{}", hex::encode(tag.as_ref())),
    )
}

/// True when `global_data` carries a valid, unexpired grant for `call_id`
/// and exactly this `identity`.
pub fn has_grant(
    secret: &Secret,
    global_data: &Value,
    agent: &str,
    call_id: &str,
    identity: Option<&str>,
    now: u64,
) -> bool {
    let key = grant_key(secret, agent, call_id, identity);
    let Some(g) = global_data.get(&key).and_then(Value::as_str) else {
        return false;
    };
    let Some((expiry, sig)) = g.split_once('.') else {
        return false;
    };
    let (Ok(expiry), Ok(sig)) = (expiry.parse::<u64>(), hex::decode(sig)) else {
        return false;
    };
    expiry >= now
        && secret.verify(
            grant_message(agent, call_id, identity, expiry).as_bytes(),
            &sig,
        )
}

#[cfg(test)]
mod tests {
    use super::{grant, has_grant, identity_of};
    use crate::guard::GRANT_KEY;
    use crate::token::Secret;
    use serde_json::json;

    #[test]
    fn grants_bind_the_call_and_expire() {
        let s = Secret::new("k");
        let (key, g) = grant(&s, "bank", "c1", None, 1000);
        assert_eq!(key, GRANT_KEY);
        let global = json!({ GRANT_KEY: g });
        let holds = |secret: &Secret, global: &serde_json::Value, call: &str, now: u64| {
            has_grant(secret, global, "bank", call, None, now)
        };
        assert!(holds(&s, &global, "c1", 900));
        assert!(!holds(&s, &global, "c2", 900));
        assert!(!holds(&s, &global, "c1", 1001));
        assert!(!holds(&Secret::new("x"), &global, "c1", 900));
        assert!(!holds(&s, &json!({ GRANT_KEY: "1000.00" }), "c1", 900));
        assert!(!holds(&s, &json!({}), "c1", 900));
    }

    #[test]
    fn bound_grants_hold_only_for_what_was_verified() {
        let s = Secret::new("k");
        let pairs = [("account".to_owned(), "from".to_owned())];
        let a = identity_of(&pairs, &json!({"from": "111111", "to": "222222"}));
        let b = identity_of(&pairs, &json!({"from": "999999", "to": "111111"}));
        assert_eq!(a.as_deref(), Some(r#"{"account":"111111"}"#));
        // One integer account, however the number is spelt; a string stays
        // as written, and a fraction is another value.
        let n = [("account".to_owned(), "account".to_owned())];
        for spelling in [json!(123456), json!(123456.0), json!(1.23456e5)] {
            assert_eq!(
                identity_of(&n, &json!({ "account": spelling })).as_deref(),
                Some(r#"{"account":123456}"#)
            );
        }
        // Long card-like numbers too, past where floats are exact.
        for spelling in [json!(18014398509481984u64), json!(1.8014398509481984e16)] {
            assert_eq!(
                identity_of(&n, &json!({ "account": spelling })).as_deref(),
                Some(r#"{"account":18014398509481984}"#)
            );
        }
        assert_eq!(
            identity_of(&n, &json!({"account": "123456.0"})).as_deref(),
            Some(r#"{"account":"123456.0"}"#)
        );
        assert_eq!(
            identity_of(&n, &json!({"account": 1.5})).as_deref(),
            Some(r#"{"account":1.5}"#)
        );
        let (key, g) = grant(&s, "bank", "c1", a.as_deref(), 1000);
        assert!(
            key.starts_with("swagent_verified_") && !key.contains("111111"),
            "{key}"
        );
        let global = json!({ key.clone(): g.clone() });
        assert!(has_grant(&s, &global, "bank", "c1", a.as_deref(), 900));
        assert!(!has_grant(&s, &global, "bank", "c1", b.as_deref(), 900));
        assert!(!has_grant(&s, &global, "bank", "c2", a.as_deref(), 900));
        // Moved under the unbound key, or under B's key: still refused.
        assert!(!has_grant(
            &s,
            &json!({ GRANT_KEY: g.clone() }),
            "bank",
            "c1",
            None,
            900
        ));
        let (key_b, _) = grant(&s, "bank", "c1", b.as_deref(), 1000);
        assert!(!has_grant(
            &s,
            &json!({ key_b: g }),
            "bank",
            "c1",
            b.as_deref(),
            900
        ));
        // Another agent sharing the secret does not take it.
        assert!(!has_grant(&s, &global, "other", "c1", a.as_deref(), 900));
        let (_, code_b) = grant(&s, "other", "c1", a.as_deref(), 1000);
        assert_ne!(code_b, g);
        // An unbound grant does not stand in for a bound one.
        let (_, unbound) = grant(&s, "bank", "c1", None, 1000);
        assert!(!has_grant(
            &s,
            &json!({ key: unbound }),
            "bank",
            "c1",
            a.as_deref(),
            900
        ));
    }
}
