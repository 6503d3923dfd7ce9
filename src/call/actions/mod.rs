//! The actions step, after the handler succeeded: the file's own actions
//! rendered for this call ([`render`]), then what the handler's output
//! carried, admitted only as the function allows ([`output`]). A refused
//! action fails the call: the AI hears a safe sentence, the audit log the
//! kind (never the content). An unavailable one fails a static reply too;
//! after a program or an upstream acted, it is dropped and the AI told.

mod output;
mod render;

use serde_json::Value;

use super::{Call, Refusal};
use crate::agent::Handler;
use crate::handlers::Reply;

/// The actions to take: the outcome the handler's JSON names, when the
/// function declares outcomes; else its `actions`.
fn chosen<'a>(
    call: &Call<'a>,
    data: Option<&Value>,
) -> Result<&'a [crate::agent::actions::Action], Refusal> {
    let function = call.function;
    let named = data.and_then(|d| d.get("outcome"));
    match named {
        Some(name) if !function.outcomes.is_empty() => name
            .as_str()
            .and_then(|n| function.outcomes.get(n))
            .map(Vec::as_slice)
            .ok_or(Refusal::OutcomeRefused),
        _ => Ok(&function.actions),
    }
}

/// The handler already acted (a booking made), so its reply stands without
/// the action this call cannot take: logged, audited, and told to the AI
/// so that the caller hears what did not happen, and nobody tries again.
fn not_done(call: &Call<'_>, reply: &mut Reply, refusal: Refusal) {
    let Refusal::ActionUnavailable { kind, .. } = &refusal else {
        return;
    };
    reply.response = format!("{} {}", reply.response, super::say::not_done(kind));
    let function = call.function.name.as_str();
    if let Some(line) = refusal.log_line(function, "") {
        log::warn!("{line}");
    }
    if let Some(event) = refusal.audit() {
        call.state.audit_after(|| {
            event
                .call(call.audit_call_id)
                .function(function)
                .client(call.client)
        });
    }
}

/// The reply with the file's actions and the output's admitted ones.
pub(super) fn apply(call: &Call<'_>, args: &Value, mut reply: Reply) -> Result<Reply, Refusal> {
    let from_output = std::mem::take(&mut reply.output_action);
    // A backend that refused, in words, did nothing to act on.
    if reply.refused {
        return Ok(reply);
    }
    output::admit(call, &from_output)?;
    let (own, unavailable) = render::all(
        call,
        args,
        reply.data.as_ref(),
        chosen(call, reply.data.as_ref())?,
    )?;
    if let Some(refusal) = unavailable.into_iter().next() {
        // A static reply did nothing yet: it says what cannot be done.
        if matches!(call.function.handler, Handler::Static(_)) {
            return Err(refusal);
        }
        not_done(call, &mut reply, refusal);
    }
    reply.action.extend(own);
    reply.action.extend(from_output);
    reply.post_process = call.function.post_process && !reply.action.is_empty();
    Ok(reply)
}
