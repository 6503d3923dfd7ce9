//! The gates of a function call before the guards of verification and
//! confirmation: which function, its token, the kill switch, its rate
//! limit, the call id, its arguments and the alert rules.

use serde_json::Value;

use super::{body::CallBody, record, Call, Refusal};
use crate::agent::{Agent, Function};
use crate::audit::logged_arguments;
use crate::guard::CONFIRMATION_ARG;
use crate::limits::Admission;
use crate::state::AppState;
use crate::template::value_to_text;
use crate::text::printable;
use crate::token::{self, Expect, Verdict};

/// The function the body names, and its index in the agent.
pub(super) fn function<'a>(
    agent: &'a Agent,
    body: &CallBody,
) -> Result<(usize, &'a Function), Refusal> {
    let name = match &body.function {
        Some(Value::String(f)) if !f.is_empty() => f.as_str(),
        Some(_) => return Err(Refusal::BadFunction),
        None => return Err(Refusal::NoFunction),
    };
    agent.callable(name).ok_or(Refusal::UnknownFunction)
}

pub(super) fn token(call: &Call<'_>, presented: Result<String, Verdict>) -> Result<(), Refusal> {
    verify_token(
        call.state,
        presented,
        &call.function.name,
        call.audit_call_id,
        call.client,
    )
}

/// Checks a presented token for `function` in `call_id`; a missing one is
/// refused exactly like a wrong one. Logged (sampled) and raised as an alert
/// here; the refusal's metric and audit event are [`record`]'s.
pub(super) fn verify_token(
    state: &AppState,
    presented: Result<String, Verdict>,
    function: &str,
    call_id: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<(), Refusal> {
    let (verdict, presented) = match presented {
        Ok(presented) => {
            let expect = Expect {
                function: Some(function),
                call_id: Some(call_id.unwrap_or("")),
                now: crate::clock::now(),
            };
            (
                token::check(&state.settings.secret, &presented, expect).0,
                presented,
            )
        }
        Err(verdict) => (verdict, String::new()),
    };
    if verdict == Verdict::Valid {
        return Ok(());
    }
    if let Some(suppressed) = state.log_sampler.token.admit() {
        log::warn!(
            "token rejected for function `{function}` in call `{}`: {} ({suppressed} more since the last such line; all are in the audit log)",
            printable(call_id.unwrap_or("-")),
            verdict.code()
        );
    }
    // A prefix correlates lines without handing out a usable token.
    let refusal = Refusal::Token {
        verdict: verdict.code(),
        prefix: presented.chars().take(8).collect(),
    };
    let refusal = record(state, refusal, function, call_id, client, "");
    // A token this secret did not sign is raised as an alert but does not
    // count toward the lock-out: the sender passed Basic Auth, and a 256-bit
    // HMAC cannot be guessed, while the platform itself sends such tokens
    // after a rotation (calls in progress) or from a replica with another
    // secret, and locking its address out would fail every new call too.
    let forged = matches!(verdict, Verdict::BadSignature | Verdict::Malformed(_));
    if forged && !matches!(refusal, Refusal::AuditUnavailable) {
        state.auth_failed_alert(client);
    }
    Err(refusal)
}

pub(super) fn kill_switch(call: &Call<'_>) -> Result<(), Refusal> {
    match call.state.kill.current().is_disabled(&call.function.name) {
        true => Err(Refusal::Disabled),
        false => Ok(()),
    }
}

pub(super) fn rate_limit(call: &Call<'_>) -> Result<(), Refusal> {
    let name = &call.function.name;
    match call
        .live
        .function_limits
        .check(name, call.audit_call_id.unwrap_or(""))
    {
        Admission::Allowed => Ok(()),
        Admission::Limited { retry_after } => Err(Refusal::RateLimited {
            retry_after: Admission::retry_after_secs(retry_after),
        }),
    }
}

/// The call id: required by a function whose guards bind it to the call
/// (confirmation, verification); empty for others sent without one.
pub(super) fn call_id<'a>(function: &Function, sent: Option<&'a str>) -> Result<&'a str, Refusal> {
    let guarded = function.confirm || function.requires_verification || function.verifies_caller;
    match sent {
        Some(c) if !c.is_empty() => Ok(c),
        _ if guarded => Err(Refusal::CallIdRequired),
        _ => Ok(""),
    }
}

/// The arguments, checked against the function's schema, and the
/// confirmation code among them (taken out: it is no argument of the handler).
pub(super) fn arguments(
    call: &Call<'_>,
    body: &CallBody,
) -> Result<(Value, Option<String>), Refusal> {
    let function = call.function;
    let mut args = body.arguments().map_err(|_| Refusal::ArgumentsNotJson)?;
    let code = if function.confirm {
        args.as_object_mut()
            .and_then(|m| m.remove(CONFIRMATION_ARG))
            .map(|v| value_to_text(&v))
            .filter(|c| !c.trim().is_empty())
    } else {
        None
    };
    match super::validate_arguments(function, &args) {
        Ok(()) => Ok((args, code)),
        Err(invalid) => Err(Refusal::InvalidArguments {
            invalid,
            logged: logged_arguments(&function.parameters, &args),
            took: call.started.elapsed(),
        }),
    }
}

/// The alert rules: each that fires is raised; one that blocks refuses.
pub(super) fn alerts(call: &Call<'_>, args: &Value) -> Result<(), Refusal> {
    let name = &call.function.name;
    let fired = call
        .live
        .alerts
        .function_called(name, args, chrono::Utc::now());
    call.state
        .raise(&fired, call.audit_call_id, Some(name), call.client)?;
    match fired.iter().any(|f| f.block) {
        true => Err(Refusal::Blocked),
        false => Ok(()),
    }
}
