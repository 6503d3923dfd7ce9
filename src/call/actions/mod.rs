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

/// The reply with the file's actions and the output's admitted ones.
pub(super) fn apply(call: &Call<'_>, args: &Value, mut reply: Reply) -> Result<Reply, Refusal> {
    let from_output = std::mem::take(&mut reply.output_action);
    output::admit(call, &from_output)?;
    let own = render::all(call, args, reply.data.as_ref())?;
    reply.action.extend(own);
    reply.action.extend(from_output);
    reply.post_process = call.function.post_process && !reply.action.is_empty();
    Ok(reply)
}
