//! A call's summary: the platform posts the answer to the agent's
//! `post_prompt` when the call ends. Its token is checked as a function's
//! is; the summary is logged (escaped and cut) and audited. An agent with
//! `summary` keeps it in the outbox before answering 200, so once the
//! platform hears 200 the summary is swagent's to deliver; an outbox that
//! is full or cannot be written answers 503, and the platform tries again.

use std::net::IpAddr;

use super::{body::CallBody, gates, Refusal};
use crate::audit::Event;
use crate::outbox::{Entry, PutError};
use crate::state::{AppState, Live};
use crate::text::{printable, printable_cut};
use crate::token::Verdict;

/// The most characters of a call summary written to the log.
const LOGGED: usize = 4000;

/// One summary, as the platform sent it.
pub struct SummaryPost<'a> {
    pub body: &'a CallBody,
    /// The body as sent: what the outbox keeps.
    pub sent: &'a [u8],
    pub token: Result<String, Verdict>,
    pub client: Option<IpAddr>,
}

/// Takes the summary of the call the body names.
pub async fn summary(state: &AppState, live: &Live, post: SummaryPost<'_>) -> Result<(), Refusal> {
    let (body, client) = (post.body, post.client);
    let call_id = body.call_id();
    gates::verify_token(state, post.token, "post_prompt", call_id, client)?;
    let summary = body.summary();
    let chars = summary.chars().count();
    let shown_call = printable(call_id.unwrap_or("-"));
    // The summary may quote the caller: its text only at debug level. A
    // newline in it must not start what looks like another log line, and
    // it is capped after escaping (each escaped character is ten).
    log::debug!(
        "summary for call `{shown_call}` of agent `{}`: {}",
        live.agent.name,
        printable_cut(&summary, LOGGED)
    );
    let received = |kept: Option<&str>| {
        let event = Event::new("summary_received", "ok")
            .call(call_id)
            .client(client)
            .field("summary_chars", chars);
        match kept {
            Some(id) => event.field("summary_id", id),
            None => event,
        }
    };
    if live.agent.summary.is_none() {
        log::info!(
            "summary for call `{shown_call}` of agent `{}`: {chars} characters",
            live.agent.name
        );
        return Ok(state.audit_event(|| received(None))?);
    }
    let id = keep(state, &live.agent.name, post.sent, call_id, client).await?;
    log::info!(
        "summary for call `{shown_call}` of agent `{}`: {chars} characters, kept as `{id}`",
        live.agent.name
    );
    // Kept: a failed audit line must not answer 503 now, or the platform
    // would send it again and it would be delivered twice, under two ids.
    state.audit_after(|| received(Some(&id)));
    Ok(())
}

/// Writes the summary into the outbox (off the request's thread: a synced
/// write); its id, or why not.
async fn keep(
    state: &AppState,
    agent: &str,
    sent: &[u8],
    call_id: Option<&str>,
    client: Option<IpAddr>,
) -> Result<String, Refusal> {
    let entry = Entry::received(agent, sent);
    let (outbox, kept) = (state.outbox.clone(), entry.clone());
    let put = actix_web::rt::task::spawn_blocking(move || outbox.put(&kept)).await;
    let refusal = match put {
        Ok(Ok(())) => return Ok(entry.id),
        Ok(Err(PutError::Full {
            entries,
            bytes,
            limit,
        })) => {
            let fired = crate::alerts::Fired {
                rule: "outbox_full".into(),
                observed: format!("{entries} summaries, {bytes} bytes"),
                threshold: limit,
                block: true,
            };
            state.raise(&[fired], call_id, None, client)?;
            Refusal::OutboxFull
        }
        Ok(Err(PutError::Store(e))) => {
            log::error!(
                "summary for call `{}` refused (503): {e}",
                printable(call_id.unwrap_or("-"))
            );
            Refusal::OutboxUnavailable
        }
        Err(e) => {
            log::error!("summary not kept: {e}");
            Refusal::OutboxUnavailable
        }
    };
    state.audit_event(|| {
        Event::new("summary_refused", refusal.code())
            .call(call_id)
            .client(client)
    })?;
    Err(refusal)
}
