//! `POST /swaig`: one function call, through every gate in order.
//!
//! Body → function → token (secure functions) → argument schema → caller
//! verification → confirmation → handler → grant. Each gate refuses without
//! running anything after it, and each decision is an audit event. What the
//! AI hears on a refusal is a sentence it can act on; details stay in logs.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::routes::{check_token, client_ip, json_body, validate_arguments};
use super::state_of;
use crate::agent::Function;
use crate::audit::{logged_arguments, redact, Event};
use crate::guard::{self, CodeVerdict, CONFIRMATION_ARG};
use crate::handlers::{CallInput, HandlerError, Reply};
use crate::limits::{Admission, Attempt};
use crate::template::value_to_text;

fn say(text: impl Into<String>) -> HttpResponse {
    HttpResponse::Ok().json(Reply::text(text))
}

/// What the AI hears while a verifier's `max_failures` holds an account.
const VERIFICATION_LOCKED: &str = "Too many failed attempts to verify the caller for these details: no more attempts are allowed for now. Do not try again in this call, and do not reveal anything protected. Offer the caller another way to get help.";

/// What the AI hears when a check of the same details is still running.
const VERIFICATION_RUNNING: &str =
    "A check of these details is still running. Wait for its result; do not repeat the check.";

/// The arguments a verifier binds, for log lines (names, never values).
fn bound_names(function: &Function) -> String {
    let names: Vec<String> = function
        .identity
        .iter()
        .map(|(_, arg)| format!("`{arg}`"))
        .collect();
    names.join(", ")
}

/// Answers a check the lock-out turned away (`refused`, not `Open`): the AI
/// is told, the log names the bound arguments (never their values), and the
/// audit line is `audit(outcome)` (with the redacted arguments, so the
/// incident query can tell which account was asked for).
fn refuse_check(
    state: &super::AppState,
    function: &Function,
    refused: Attempt,
    audit: impl FnOnce(&'static str) -> Event,
) -> Result<HttpResponse, ApiError> {
    let (outcome, why, reply) = match refused {
        Attempt::Running => (
            "concurrent",
            "a check is already running for these",
            VERIFICATION_RUNNING,
        ),
        _ => (
            "locked_out",
            "too many failed checks for these",
            VERIFICATION_LOCKED,
        ),
    };
    log::warn!(
        "function `{}` refused: {why} {}",
        function.name,
        bound_names(function)
    );
    state
        .metrics
        .rate_limited
        .with_label_values(&["verification"])
        .inc();
    state.audit_event(|| {
        let e = audit(outcome);
        match refused {
            Attempt::Locked { retry_after } => {
                e.field("retry_after", Admission::retry_after_secs(retry_after))
            }
            _ => e,
        }
    })?;
    Ok(say(reply))
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

pub(super) async fn swaig(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let started = Instant::now();
    let body = json_body(&req, payload, state).await?;
    let name = match &body.function {
        Some(Value::String(f)) if !f.is_empty() => f.as_str(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`function` must be a non-empty string".into(),
            ))
        }
        None => return Err(ApiError::BadRequest("`function` is missing".into())),
    };
    // The agent of this request, even if a reload swaps it meanwhile.
    let live = state.live();
    let agent = &live.agent;
    let (index, _, function) = agent
        .functions
        .get_full(name)
        .ok_or(ApiError::UnknownFunction)?;
    let series = &live.series[index];
    let call_id = body.call_id();
    let ip = client_ip(&req, state);
    if function.secure {
        check_token(&req, state, &function.name, call_id)?;
    }
    // Before the rate limit: a disabled function says so (and uses up
    // none of its allowance), rather than "too many requests".
    if state.kill.current().is_disabled(&function.name) {
        log::warn!(
            "function `{}` refused: disabled by the kill switch",
            function.name
        );
        state.audit_event(|| {
            Event::new("function_disabled", "refused")
                .call(call_id)
                .function(&function.name)
                .client(ip)
        })?;
        state
            .metrics
            .function_calls
            .with_label_values(&[function.name.as_str(), "disabled"])
            .inc();
        return Ok(say(
            "That service is unavailable right now. Offer the caller another way to get help.",
        ));
    }
    if let Admission::Limited { retry_after } =
        live.function_limits.check(name, call_id.unwrap_or(""))
    {
        log::warn!("function `{name}` refused: over its `rate_limit`");
        state
            .metrics
            .rate_limited
            .with_label_values(&["function"])
            .inc();
        state.audit_event(|| {
            Event::new("rate_limited", "refused")
                .call(call_id)
                .function(&function.name)
                .client(ip)
                .field("limit", "function")
        })?;
        return Err(ApiError::FunctionRateLimited {
            retry_after: Admission::retry_after_secs(retry_after),
        });
    }
    let guarded = function.confirm || function.requires_verification || function.verifies_caller;
    let call_id = match call_id {
        Some(c) if !c.is_empty() => c,
        _ if guarded => {
            return Err(ApiError::BadRequest(
                "`call_id` is required for this function".into(),
            ))
        }
        _ => "",
    };
    let event = |name: &'static str, outcome: &'static str| {
        Event::new(name, outcome)
            .call(Some(call_id).filter(|c| !c.is_empty()))
            .function(&function.name)
            .client(ip)
    };

    let mut args = match body.arguments() {
        Ok(a) => a,
        Err(msg) => return Ok(say(msg)),
    };
    let code = if function.confirm {
        args.as_object_mut()
            .and_then(|m| m.remove(CONFIRMATION_ARG))
            .map(|v| value_to_text(&v))
            .filter(|c| !c.trim().is_empty())
    } else {
        None
    };
    if let Err(invalid) = validate_arguments(function, &args) {
        state.audit_event(|| {
            event("function_called", "invalid_arguments")
                .field("arguments", logged_arguments(&function.parameters, &args))
                .duration(started.elapsed())
        })?;
        return Ok(say(invalid.for_ai()));
    }

    let fired = live
        .alerts
        .function_called(&function.name, &args, chrono::Utc::now());
    state.raise(
        &fired,
        Some(call_id).filter(|c| !c.is_empty()),
        Some(&function.name),
        ip,
    )?;
    if fired.iter().any(|f| f.block) {
        state
            .metrics
            .function_calls
            .with_label_values(&[function.name.as_str(), "blocked"])
            .inc();
        return Ok(say(
            "I can't do that over the phone right now. Offer the caller another way to get help.",
        ));
    }

    let secret = &state.settings.secret;
    let now = crate::clock::now();
    let identity = guard::identity_of(&function.identity, &args);
    // What a verifier checks for (an account) and the verifier are locked
    // together: another account, or another verifier, is its own count.
    let attempt = match identity.as_deref().filter(|_| function.verifies_caller) {
        Some(identity) => live
            .function_limits
            .verification_attempt(&function.name, identity),
        None => Attempt::Open(None),
    };
    let checking = match attempt {
        Attempt::Open(checking) => checking,
        refused => {
            return refuse_check(state, function, refused, |outcome| {
                event("caller_verification", outcome)
                    .field("arguments", logged_arguments(&function.parameters, &args))
            });
        }
    };
    if function.requires_verification {
        let null = Value::Null;
        let global = body.global_data.as_ref().unwrap_or(&null);
        if !guard::has_grant(
            secret,
            global,
            &agent.name,
            call_id,
            identity.as_deref(),
            now,
        ) {
            state.audit_event(|| event("verification_required", "refused"))?;
            let verifiers: Vec<String> = agent
                .functions
                .values()
                .filter(|f| f.verifies_caller)
                .map(|f| format!("`{}`", f.name))
                .collect();
            return Ok(say(format!(
                "The caller has not been verified in this call. Verify the caller first with {}, then try again. Do not reveal anything protected before that.",
                verifiers.join(" or ")
            )));
        }
    }

    if function.confirm {
        let null = Value::Null;
        let details = guard::confirmed_details(
            function,
            &args,
            body.global_data.as_ref().unwrap_or(&null),
            body.meta_data.as_ref().unwrap_or(&null),
        );
        let parsed = code.as_deref().map(guard::Code::parse);
        let presented = parsed.as_ref().and_then(|c| c.as_ref()).map(|c| c.expiry);
        let verdict = parsed.as_ref().map(|c| match c {
            Some(c) => guard::check_code(
                secret,
                c,
                &agent.name,
                call_id,
                &function.name,
                &details,
                now,
            ),
            None => CodeVerdict::Malformed,
        });
        let lead = match (verdict, parsed.flatten()) {
            (Some(CodeVerdict::Valid), Some(code)) => {
                match state
                    .used_codes
                    .consume(&code.canonical(), code.expiry, now)
                {
                    Ok(true) => None,
                    Ok(false) => Some("That confirmation code was already used."),
                    Err(e) => {
                        log::error!("confirmation store failed: {e}");
                        return Ok(say(HandlerError::Failed {
                            function: function.name.clone(),
                            detail: String::new(),
                        }
                        .spoken()));
                    }
                }
            }
            (Some(CodeVerdict::Expired), _) => Some("That confirmation has expired."),
            (Some(_), _) => Some("That confirmation code does not match these details."),
            (None, _) => Some(""),
        };
        if let Some(lead) = lead {
            if let Some(v) = verdict {
                state.audit_event(|| {
                    event("confirmation_rejected", "refused").field(
                        "verdict",
                        if lead.contains("already") {
                            "replayed"
                        } else {
                            v.code()
                        },
                    )
                })?;
            }
            let expiry = now + agent.confirm_ttl.as_secs();
            // A used code presented again within the second it was minted
            // would get itself back, and fail again; a second later is
            // another code. (Only that expiry: a forged one is never copied.)
            let expiry = if presented == Some(expiry) {
                expiry + 1
            } else {
                expiry
            };
            let fresh = guard::confirmation_code(
                secret,
                &agent.name,
                call_id,
                &function.name,
                &details,
                expiry,
            );
            state.audit_event(|| {
                event("confirmation_requested", "pending")
                    .field("arguments", logged_arguments(&function.parameters, &args))
            })?;
            let text = format!(
                "{lead}{}Nothing was done yet. Read these details back to the caller: {}. Ask for an explicit yes. Only if the caller clearly says yes, call `{}` again with exactly the same details and confirmation \"{fresh}\". If the caller says no or changes anything, do not call it with this code.",
                if lead.is_empty() { "" } else { " " },
                readback(function, &args),
                function.name
            );
            return Ok(say(text));
        }
        state.audit_event(|| event("confirmation_accepted", "ok"))?;
    }

    let null = Value::Null;
    let input = CallInput {
        args: &args,
        call_id,
        global_data: body.global_data.as_ref().unwrap_or(&null),
        meta_data: body.meta_data.as_ref().unwrap_or(&null),
    };
    // A required log holds a record of every call before it runs: the one
    // written after may no longer fit (the handler may even be what filled
    // the disk), and then it is lost.
    if state.audit.required() {
        state.audit_event(|| {
            event("function_started", "pending")
                .field("arguments", logged_arguments(&function.parameters, &args))
                .field("handler", function.handler.kind())
        })?;
    }
    let ran = Instant::now();
    let outcome = live.runtime.run(agent, function, input).await;
    series.duration.observe(ran.elapsed().as_secs_f64());
    let failed = match &outcome {
        Ok(_) => None,
        Err(HandlerError::Busy { .. }) => Some("busy"),
        Err(HandlerError::Timeout { .. }) => Some("timeout"),
        Err(HandlerError::Failed { .. }) => Some("failed"),
    };
    match failed {
        None => series.ok.inc(),
        Some(outcome) => state
            .metrics
            .function_calls
            .with_label_values(&[function.name.as_str(), outcome])
            .inc(),
    }
    // From here on the handler has run: its records cannot refuse.
    state.audit_after(|| {
        event(
            "function_called",
            if outcome.is_ok() { "ok" } else { "error" },
        )
        .field("arguments", logged_arguments(&function.parameters, &args))
        .field("handler", function.handler.kind())
        .duration(started.elapsed())
    });
    // Every outcome of a check but a match counts against what it checked: a
    // wrong PIN may come back as an exit status, a 401 or an error key, and a
    // service that fails only for unknown accounts must not leave the known
    // ones unlocked. (`Busy` never ran the check.)
    let verified = matches!(&outcome, Ok(reply) if reply.verified);
    let locked = match &checking {
        Some(c) if !verified && !matches!(outcome, Err(HandlerError::Busy { .. })) => {
            c.failed().is_limited()
        }
        _ => false,
    };
    if locked {
        log::warn!(
            "function `{}`: too many failed checks for these {}; they are locked out",
            function.name,
            bound_names(function)
        );
        state.audit_after(|| event("verification_locked", "locked"));
    }
    match outcome {
        Ok(mut reply) => {
            if function.verifies_caller {
                if reply.verified {
                    let (key, grant) = guard::grant(
                        secret,
                        &agent.name,
                        call_id,
                        identity.as_deref(),
                        now + agent.token_ttl.as_secs(),
                    );
                    reply
                        .action
                        .push(json!({ "set_global_data": { key: grant } }));
                }
                state.audit_after(|| {
                    event(
                        "caller_verification",
                        if reply.verified {
                            "verified"
                        } else {
                            "not_verified"
                        },
                    )
                });
                if locked {
                    // Instead of the handler's words, which may say "try again".
                    reply.response = format!("That check failed. {VERIFICATION_LOCKED}");
                }
            }
            Ok(HttpResponse::Ok().json(reply))
        }
        Err(HandlerError::Busy { .. }) => {
            log::warn!(
                "function `{}` refused: concurrency limit reached",
                function.name
            );
            state.audit_after(|| event("function_failed", "busy"));
            Err(ApiError::Busy)
        }
        Err(e) => {
            log::error!("{e}");
            let (name, outcome) = match &e {
                HandlerError::Timeout { .. } => ("function_timeout", "timeout"),
                _ => ("function_failed", "error"),
            };
            state.audit_after(|| event(name, outcome).duration(started.elapsed()));
            if locked {
                return Ok(say(format!("That check failed. {VERIFICATION_LOCKED}")));
            }
            Ok(say(e.spoken()))
        }
    }
}
