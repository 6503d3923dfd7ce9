//! The handler step: run the function's handler, record what it did, count
//! a verifier's failure against what it checked, and turn its success into
//! a verification grant. Once the handler has run, its records cannot refuse
//! the reply: the side effect happened.

use serde_json::{json, Value};

use super::{Call, Guards, Refusal};
use crate::audit::logged_arguments;
use crate::handlers::{CallInput, HandlerError, Reply};
use crate::limits::Checking;

pub(super) async fn run(
    call: &Call<'_>,
    args: &Value,
    identity: Option<&str>,
    checking: Option<Checking>,
    guards: Guards,
) -> Result<Reply, Refusal> {
    let (state, function) = (call.state, call.function);
    // A required log holds a record of every call before it runs: the one
    // written after may no longer fit (the handler may even be what filled
    // the disk), and then it is lost.
    if state.audit.required() {
        state.audit_event(|| {
            call.event("function_started", "pending")
                .field("arguments", logged_arguments(&function.parameters, args))
                .field("handler", function.handler.kind())
        })?;
    }
    let input = CallInput {
        args,
        call_id: call.call_id,
        global_data: call.global_data,
        meta_data: call.meta_data,
        call: None,
        payload: None,
    };
    let series = &call.live.series[call.index];
    let outcome = timed(call, input).await;
    match &outcome {
        Ok(reply) if reply.refused => {
            log::info!(
                "function `{}`: its backend refused, with a reason the caller hears",
                function.name
            );
            state
                .metrics
                .function_calls
                .with_label_values(&[function.name.as_str(), "refused"])
                .inc()
        }
        Ok(_) => series.ok.inc(),
        Err(e) => state
            .metrics
            .function_calls
            .with_label_values(&[function.name.as_str(), outcome_label(e)])
            .inc(),
    }
    state.audit_after(|| {
        let result = match &outcome {
            Ok(reply) if reply.refused => "refused",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        call.event("function_called", result)
            .field("arguments", logged_arguments(&function.parameters, args))
            .field("handler", function.handler.kind())
            .duration(call.started.elapsed())
    });
    let locked = count_failure(call, checking.as_ref(), &outcome);
    match outcome {
        Ok(reply) => {
            let reply = call.check(super::actions::apply(call, args, reply))?;
            Ok(verified(call, reply, identity, locked, guards))
        }
        Err(HandlerError::Busy { .. }) => {
            log::warn!(
                "function `{}` refused: concurrency limit reached",
                function.name
            );
            state.audit_after(|| call.event("function_failed", "busy"));
            Err(Refusal::Busy)
        }
        Err(error) => {
            log::error!("{error}");
            let (name, outcome) = match &error {
                HandlerError::Timeout { .. } => ("function_timeout", "timeout"),
                _ => ("function_failed", "error"),
            };
            state.audit_after(|| call.event(name, outcome).duration(call.started.elapsed()));
            Err(Refusal::Failed { error, locked })
        }
    }
}

/// Runs the call's handler, its time observed in the function's series.
pub(super) async fn timed(call: &Call<'_>, input: CallInput<'_>) -> Result<Reply, HandlerError> {
    let ran = std::time::Instant::now();
    let outcome = call
        .live
        .runtime
        .run(&call.live.agent, call.function, input)
        .await;
    let series = &call.live.series[call.index];
    series.duration.observe(ran.elapsed().as_secs_f64());
    outcome
}

/// The `outcome` label of a handler that did not reply.
pub(super) fn outcome_label(e: &HandlerError) -> &'static str {
    match e {
        HandlerError::Busy { .. } => "busy",
        HandlerError::Timeout { .. } => "timeout",
        HandlerError::Failed { .. } => "failed",
    }
}

/// Every outcome of a check but a match counts against what it checked: a
/// wrong PIN may come back as an exit status, a 401 or an error key, and a
/// service that fails only for unknown accounts must not leave the known
/// ones unlocked. (`Busy` never ran the check.) True when it locked them.
fn count_failure(
    call: &Call<'_>,
    checking: Option<&Checking>,
    outcome: &Result<Reply, HandlerError>,
) -> bool {
    let verified = matches!(outcome, Ok(reply) if reply.verified);
    let locked = match checking {
        Some(c) if !verified && !matches!(outcome, Err(HandlerError::Busy { .. })) => {
            c.failed().is_limited()
        }
        _ => false,
    };
    if locked {
        log::warn!(
            "function `{}`: too many failed checks for these {}; they are locked out",
            call.function.name,
            call.bound_names()
        );
        call.state
            .audit_after(|| call.event("verification_locked", "locked"));
    }
    locked
}

/// A verifier's reply: a grant in `global_data` when it matched (with the
/// verification guard on), recorded either way.
fn verified(
    call: &Call<'_>,
    mut reply: Reply,
    identity: Option<&str>,
    locked: bool,
    guards: Guards,
) -> Reply {
    if !call.function.verifies_caller || !guards.verification {
        return reply;
    }
    let agent = &call.live.agent;
    if reply.verified {
        let (key, grant) = crate::guard::grant(
            &call.state.settings.secret,
            &agent.name,
            call.call_id,
            identity,
            call.now + agent.token_ttl.as_secs(),
        );
        reply
            .action
            .push(json!({ "set_global_data": { key: grant } }));
    }
    call.state.audit_after(|| {
        let outcome = if reply.verified {
            "verified"
        } else {
            "not_verified"
        };
        call.event("caller_verification", outcome)
    });
    if locked {
        // Instead of the handler's words, which may say "try again".
        reply.response = super::say::check_failed_and_locked();
    }
    reply
}
