//! The actions step, after the handler succeeded: the file's own actions
//! rendered for this call ([`render`]), then what the handler's output
//! carried, admitted only as the function allows ([`output`]). A refused
//! or unavailable action fails the call: the AI hears a safe sentence, the
//! audit log the kind (never the content).

mod output;
mod render;

use serde_json::Value;

use super::{Call, Refusal};
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

/// The reply with the file's actions and the output's admitted ones.
pub(super) fn apply(call: &Call<'_>, args: &Value, mut reply: Reply) -> Result<Reply, Refusal> {
    let from_output = std::mem::take(&mut reply.output_action);
    // A backend that refused, in words, did nothing to act on.
    if reply.refused {
        return Ok(reply);
    }
    output::admit(call, &from_output)?;
    let own = render::all(
        call,
        args,
        reply.data.as_ref(),
        chosen(call, reply.data.as_ref())?,
    )?;
    reply.action.extend(own);
    reply.action.extend(from_output);
    reply.post_process = call.function.post_process && !reply.action.is_empty();
    Ok(reply)
}
