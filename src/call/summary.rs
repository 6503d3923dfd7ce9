//! A call's summary: the platform posts the answer to the agent's
//! `post_prompt` when the call ends. Its token is checked as a function's
//! is; the summary is logged (escaped and cut) and audited.

use std::net::IpAddr;

use super::{body::CallBody, gates, Refusal};
use crate::audit::Event;
use crate::state::{AppState, Live};
use crate::text::{printable, printable_cut};
use crate::token::Verdict;

/// The most characters of a call summary written to the log.
const LOGGED: usize = 4000;

/// Takes the summary of the call `body` names.
pub fn summary(
    state: &AppState,
    live: &Live,
    body: &CallBody,
    token: Result<String, Verdict>,
    client: Option<IpAddr>,
) -> Result<(), Refusal> {
    let call_id = body.call_id();
    gates::verify_token(state, token, "post_prompt", call_id, client)?;
    let summary = body.summary();
    // The summary is the model's text and may quote the caller: a newline
    // in it must not start what looks like another log line. Capped after
    // escaping: a caller can make the model's summary long, and each
    // escaped character is ten in the log (review 12 wrote 32 KB lines).
    log::info!(
        "summary for call `{}` of agent `{}`: {}",
        printable(call_id.unwrap_or("-")),
        live.agent.name,
        printable_cut(&summary, LOGGED)
    );
    state.audit_event(|| {
        Event::new("summary_received", "ok")
            .call(call_id)
            .client(client)
            .field("summary_chars", summary.chars().count())
    })?;
    Ok(())
}
