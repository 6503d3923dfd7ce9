//! The confirmation gate of a `confirm: true` function: the first call
//! never runs the handler; it answers with the details to read back and a
//! code, and only a second call with that code and the same details (and
//! the same `${global_data...}`/`${meta_data...}` its handler uses) runs
//! it, once.

use serde_json::Value;

use super::{say, Call, Refusal};
use crate::agent::Function;
use crate::audit::{logged_arguments, redact};
use crate::guard::{self, CodeVerdict};
use crate::template::value_to_text;

pub(super) fn confirmed(call: &Call<'_>, code: Option<&str>, args: &Value) -> Result<(), Refusal> {
    let (function, agent) = (call.function, &call.live.agent);
    let secret = &call.state.settings.secret;
    let details = guard::confirmed_details(function, args, call.global_data, call.meta_data);
    let parsed = code.map(guard::Code::parse);
    let presented = parsed.as_ref().and_then(|c| c.as_ref()).map(|c| c.expiry);
    let verdict = parsed.as_ref().map(|c| match c {
        Some(c) => guard::check_code(
            secret,
            c,
            &agent.name,
            call.call_id,
            &function.name,
            &details,
            call.now,
        ),
        None => CodeVerdict::Malformed,
    });
    let lead = match (verdict, parsed.flatten()) {
        (Some(CodeVerdict::Valid), Some(code)) => {
            match call
                .state
                .used_codes
                .consume(&code.canonical(), code.expiry, call.now)
            {
                Ok(true) => None,
                Ok(false) => Some(say::CODE_USED),
                Err(e) => {
                    log::error!("confirmation store failed: {e}");
                    return Err(Refusal::StoreFailed);
                }
            }
        }
        (Some(CodeVerdict::Expired), _) => Some(say::CODE_EXPIRED),
        (Some(_), _) => Some(say::CODE_MISMATCH),
        (None, _) => Some(""),
    };
    let Some(lead) = lead else {
        call.state
            .audit_event(|| call.event("confirmation_accepted", "ok"))?;
        return Ok(());
    };
    if let Some(v) = verdict {
        let verdict = if lead == say::CODE_USED {
            "replayed"
        } else {
            v.code()
        };
        call.state.audit_event(|| {
            call.event("confirmation_rejected", "refused")
                .field("verdict", verdict)
        })?;
    }
    let expiry = call.now + agent.confirm_ttl.as_secs();
    // A used code presented again within the second it was minted would
    // get itself back, and fail again; a second later is another code.
    // (Only that expiry: a forged one is never copied.)
    let expiry = if presented == Some(expiry) {
        expiry + 1
    } else {
        expiry
    };
    let fresh = guard::confirmation_code(
        secret,
        &agent.name,
        call.call_id,
        &function.name,
        &details,
        expiry,
    );
    Err(Refusal::Confirm {
        text: say::confirm(lead, &readback(function, args), &function.name, &fresh),
        logged: logged_arguments(&function.parameters, args),
    })
}

/// The details a caller confirms, as `name: value` pairs (sensitive ones hidden).
fn readback(function: &Function, args: &Value) -> String {
    let shown = redact(&function.parameters, args);
    let mut pairs: Vec<(String, String)> = shown
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), value_to_text(v)))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        return "no details".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
